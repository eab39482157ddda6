/*
 * cmsg.h - the client messages of the room protocol (docs/protocol.md):
 * subscribe, unsubscribe, publish, ping and the presence requests, decoded
 * strictly and bounded.
 * `data` is forwarded as the original bytes the client sent.
 */
#ifndef HUBBUB_CMSG_H
#define HUBBUB_CMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hubbub/errors.h"
#include "hubbub/limits.h"
#include "hubbub/scope.h"

typedef enum {
  HB_CMSG_SUBSCRIBE,
  HB_CMSG_UNSUBSCRIBE,
  HB_CMSG_PUBLISH,
  HB_CMSG_PING, /* {"type":"ping"} application-level ping, answered by "pong" */
  HB_CMSG_PRESENCE_SUBSCRIBE,   /* {"type":"presence.subscribe","scope":..}: snapshot, then deltas */
  HB_CMSG_PRESENCE_UNSUBSCRIBE, /* {"type":"presence.unsubscribe","scope":..} */
  HB_CMSG_PRESENCE_GET,         /* {"type":"presence.get","scope":..,"cursor":..,"limit":n}: one page */
} hb_cmsg_type;

typedef struct {
  hb_cmsg_type type;
  bool has_id;
  uint8_t id_len;
  char id[HB_MAX_REQUEST_ID_BYTES + 1];
  uint8_t event_name_len;
  char event_name[HB_MAX_EVENT_NAME_BYTES + 1];
  hb_scope scope;   /* publish and presence.*; default HB_SCOPE_SESSION */
  /* presence.get: the page after this position (its `cursor`; 0: from the
   * first member) and at most this many members (0: presence_list_max). */
  uint64_t cursor;
  uint32_t limit;
  /* publish only: the exact bytes of `data`. Points into the decoded input
   * buffer, or into `data_owned` when the original bytes could not be
   * located (then it is jansson's compact re-serialisation). */
  const char *data;
  size_t data_len;
  char *data_owned;
  /* publish only: `idempotency_key` (docs/protocol.md), or 0 length. */
  uint8_t idem_key_len;
  char idem_key[HB_MAX_IDEMPOTENCY_KEY_BYTES + 1];
} hb_cmsg;

/**
 * Decode one client message (a complete, UTF-8 valid text message): the
 * common shape straight from the text (jscan), anything else, every error
 * included, through hb_cmsg_decode_tree.
 * On failure returns the error and fills `err`; `out->id`/`has_id` are still
 * set when the message had a usable id, so the error can carry it.
 * `max_data_bytes` caps the `data` value (HB_E_DATA_TOO_LARGE).
 * Always call hb_cmsg_clear() afterwards.
 */
hb_err hb_cmsg_decode(const char *buf, size_t len, size_t max_data_bytes,
                      hb_cmsg *out, hb_error *err);
/** The reference decoder: builds a jansson tree, gives the precise errors.
 * Same contract as hb_cmsg_decode, which falls back to it. */
hb_err hb_cmsg_decode_tree(const char *buf, size_t len, size_t max_data_bytes,
                           hb_cmsg *out, hb_error *err);
void hb_cmsg_clear(hb_cmsg *m);

#endif
