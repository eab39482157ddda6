/*
 * envelope.h - the JSON codec of the v1 wire protocol and of the HTTP bodies.
 *
 * Decoders are strict and bounded: jansson with JSON_REJECT_DUPLICATES, a
 * nesting cap of HB_MAX_JSON_DEPTH, size caps, and precise errors with a JSON
 * pointer to the faulty field. `data` is forwarded as the original bytes the
 * client sent (jansson would rewrite numbers such as 0.1 or -0), found by a
 * scanner over the already-validated text.
 *
 * Encoders append compact JSON to an hb_strbuf; they never fail.
 */
#ifndef HUBBUB_ENVELOPE_H
#define HUBBUB_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hubbub/errors.h"
#include "hubbub/limits.h"
#include "hubbub/scope.h"
#include "hubbub/strbuf.h"
#include "hubbub/uuid.h"

/**
 * Route jansson's allocations through the decoders' per-call arena (see
 * envelope.c). Call once before other threads use jansson (it sets jansson's
 * process-wide allocator); decoding works without it, only slower.
 */
void hb_envelope_init(void);

/**
 * Tests and fuzzing only: false sends every decode through jansson, so that
 * both decoding paths can be compared on the same input. Default true.
 * Returns the previous setting.
 */
bool hb_envelope_set_fast_path(bool on);
/** Tests only: decodes the calling thread finished without jansson. */
unsigned long hb_envelope_fast_decodes(void);

/** Event names: 1..HB_MAX_EVENT_NAME_BYTES of [A-Za-z0-9] and "-_.:/@". */
bool hb_event_name_valid(const char *s, size_t len);

/**
 * The names of a comma-separated list s[0..n) (a comma is no event-name
 * character), one per call: start with *pos = 0; false after the last.
 * "a,,b" gives "a", "", "b"; "a," gives "a", ""; an empty list gives none.
 */
bool hb_name_list_next(const char *s, size_t n, size_t *pos, const char **name, size_t *len);

/* --- client -> server (WebSocket) --------------------------------------- */

typedef enum {
  HB_CMSG_SUBSCRIBE,
  HB_CMSG_UNSUBSCRIBE,
  HB_CMSG_PUBLISH,
  HB_CMSG_PING, /* {"type":"ping"} application-level ping, answered by "pong" */
} hb_cmsg_type;

typedef struct {
  hb_cmsg_type type;
  bool has_id;
  uint8_t id_len;
  char id[HB_MAX_REQUEST_ID_BYTES + 1];
  uint8_t event_name_len;
  char event_name[HB_MAX_EVENT_NAME_BYTES + 1];
  hb_scope scope;   /* publish only; default HB_SCOPE_SESSION */
  /* publish only: the exact bytes of `data`. Points into the decoded input
   * buffer, or into `data_owned` when the original bytes could not be
   * located (then it is jansson's compact re-serialisation). */
  const char *data;
  size_t data_len;
  char *data_owned;
} hb_cmsg;

/**
 * Decode one client message (a complete, UTF-8 valid text message).
 * On failure returns the error and fills `err`; `out->id`/`has_id` are still
 * set when the message had a usable id, so the error can carry it.
 * `max_data_bytes` caps the `data` value (HB_E_DATA_TOO_LARGE).
 * Always call hb_cmsg_clear() afterwards.
 */
hb_err hb_cmsg_decode(const char *buf, size_t len, size_t max_data_bytes,
                      hb_cmsg *out, hb_error *err);
void hb_cmsg_clear(hb_cmsg *m);

/* --- HTTP bodies --------------------------------------------------------- */

/* POST /api/v1/pub_subs body (SPEC.md "The HTTP publish API"). */
typedef struct {
  hb_scope scope;
  hb_uuid event_id;   /* zero unless scope is event or session */
  hb_uuid session_id; /* zero unless scope is session */
  uint8_t event_name_len;
  char event_name[HB_MAX_EVENT_NAME_BYTES + 1];
  const char *data; /* as in hb_cmsg */
  size_t data_len;
  char *data_owned;
} hb_pubreq;

hb_err hb_pubreq_decode(const char *buf, size_t len, size_t max_data_bytes,
                        hb_pubreq *out, hb_error *err);
void hb_pubreq_clear(hb_pubreq *r);

/* POST /api/v1/connection_tokens body:
 * {"event_id","session_id","user_id","scopes":[...],"ttl":seconds}
 * user_id: optional string 1..HB_MAX_USER_ID_BYTES (default "anonymous");
 * scopes: optional, default ["session"]; ttl: optional integer
 * 1..HB_CONN_TOKEN_MAX_TTL_S, default HB_CONN_TOKEN_DEFAULT_TTL_S. */
typedef struct {
  hb_uuid event_id;
  hb_uuid session_id;
  char user_id[HB_MAX_USER_ID_BYTES + 1];
  hb_scope_set scopes;
  int64_t ttl_s;
} hb_ctreq;

hb_err hb_ctreq_decode(const char *buf, size_t len, hb_ctreq *out, hb_error *err);

/* --- server -> client ---------------------------------------------------- */

/* Every encoder appends one complete JSON object to `sb`. `id` may be NULL
 * (then no id field is written). Strings are escaped. */
void hb_smsg_ack(hb_strbuf *sb, const char *id, size_t id_len, const char *message_id /* or NULL */);
void hb_smsg_error(hb_strbuf *sb, const char *id, size_t id_len, const hb_error *e);
void hb_smsg_pong(hb_strbuf *sb, const char *id, size_t id_len);

typedef struct {
  const char *connection_id; /* uuid string */
  const hb_uuid *org, *plugin, *event, *session;
  const char *user_id;
  hb_scope_set scopes;
  int64_t expires_at; /* unix seconds */
  size_t max_message_bytes, max_data_bytes, max_subscriptions;
  int ping_interval_ms;
  /* The event names subscribed at the upgrade, comma-separated (valid names:
   * no escaping needed), or NULL: then the field is left out. */
  const char *subscribed;
  size_t subscribed_len;
} hb_welcome;
void hb_smsg_welcome(hb_strbuf *sb, const hb_welcome *w);

/** {"type":"event","eventName":..,"data":<raw>,"scope":..,"message_id":..,"sent_at":ms} */
void hb_smsg_event(hb_strbuf *sb, const char *event_name, size_t event_name_len,
                   const char *data, size_t data_len, hb_scope scope,
                   const char *message_id, int64_t sent_at_ms);

/*
 * The pointer of an error about the whole body (e.g. the top level is not an
 * object). In hb_error.pointer, "" means "no pointer" (the field is omitted)
 * and this sentinel means the RFC 6901 pointer "" to the whole document; it
 * is the document's URI-fragment form (RFC 6901 section 6), never a valid
 * plain pointer, so it cannot clash with a field's pointer.
 */
#define HB_POINTER_ROOT "#"

/** HTTP error body: {"error":{"code":..,"message":..,"pointer":..}}.
 * "pointer" is present when e->pointer is non-empty; HB_POINTER_ROOT is
 * written as "pointer":"". */
void hb_http_error_body(hb_strbuf *sb, const hb_error *e);

#endif
