/*
 * smsg.h - the server messages of the room protocol (docs/protocol.md):
 * compact JSON appended to an hb_strbuf, in the field order of the docs.
 * Encoders never fail. The caller frames them (ws.h).
 */
#ifndef HUBBUB_SMSG_H
#define HUBBUB_SMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hubbub/errors.h"
#include "hubbub/resume.h"
#include "hubbub/scope.h"
#include "hubbub/strbuf.h"
#include "hubbub/uuid.h"

/* Every encoder appends one complete JSON object to `sb`. `id` may be NULL
 * (then no id field is written). Strings are escaped. */
void hb_smsg_ack(hb_strbuf *sb, const char *id, size_t id_len, const char *message_id /* or NULL */);
/** A publish's ack: {"type":"ack","id":..,"message_id":..,"offset":n,"epoch":".."}. */
void hb_smsg_publish_ack(hb_strbuf *sb, const char *id, size_t id_len, const char *message_id, const hb_pos *pos);
void hb_smsg_error(hb_strbuf *sb, const char *id, size_t id_len, const hb_error *e);
void hb_smsg_pong(hb_strbuf *sb, const char *id, size_t id_len);

typedef struct {
  const char *connection_id; /* uuid string */
  const hb_uuid *org, *plugin, *event, *session;
  const char *user_id;
  hb_scope_set scopes;
  int64_t expires_at; /* unix seconds */
  size_t max_message_bytes, max_data_bytes, max_subscriptions, presence_list_max;
  int ping_interval_ms;
  /* The event names subscribed at the upgrade, comma-separated (valid names:
   * no escaping needed), or NULL: then the field is left out. */
  const char *subscribed;
  size_t subscribed_len;
  /* The current positions of the session, event and organization channels
   * (docs/protocol.md, "Recovery"), or NULL to leave them out. */
  const hb_pos *positions;
  /* A reconnect that asked to recover (since=): whether it was, and which
   * scopes could not be (bit per hb_scope) with why (an hb_err code string
   * each, NULL for a scope that recovered). */
  bool recovery_asked, recovered;
  const char *const *recovery_failed;
} hb_welcome;
void hb_smsg_welcome(hb_strbuf *sb, const hb_welcome *w);

/**
 * {"type":"event","eventName":..,"data":<raw>,"scope":..,"message_id":..,
 * "sent_at":ms,"offset":n}. Written in two steps, because the offset is
 * known only once the channel assigns it: hb_smsg_event_open() writes all
 * but the offset and the closing brace (the "prefix"), hb_smsg_event_close()
 * the rest.
 */
void hb_smsg_event_open(hb_strbuf *sb, const char *event_name, size_t event_name_len,
                        const char *data, size_t data_len, hb_scope scope,
                        const char *message_id, int64_t sent_at_ms);
void hb_smsg_event_close(hb_strbuf *sb, uint64_t offset);

/* --- presence (docs/protocol.md, "Presence") --- */

/** One member: {"user_id":..} with ,"info":<info> when info_len > 0 (info
 * is compact JSON, written as is). */
void hb_smsg_presence_member(hb_strbuf *sb, const char *user, size_t user_len, const char *info, size_t info_len);
/**
 * The fields of a page of members, without braces (the HTTP answer and the
 * snapshot message share them): "scope":..,"version":v,"count":n,
 * "members":<members, a JSON array>,"truncated":b and, when truncated,
 * "cursor":"<cursor>".
 */
void hb_smsg_presence_page(hb_strbuf *sb, hb_scope scope, uint64_t version, uint32_t count, const char *members,
                           size_t members_len, bool truncated, uint64_t cursor);
/** {"type":"presence.snapshot","id":..,<the page's fields>}. */
void hb_smsg_presence_snapshot(hb_strbuf *sb, const char *id, size_t id_len, hb_scope scope, uint64_t version,
                               uint32_t count, const char *members, size_t members_len, bool truncated,
                               uint64_t cursor);
/** {"type":"presence.delta","scope":..,"version":v,"count":n,"joins":<array
 * of members>,"leaves":<array of user ids>,"truncated":b}. */
void hb_smsg_presence_delta(hb_strbuf *sb, hb_scope scope, uint64_t version, uint32_t count, const char *joins,
                            size_t joins_len, const char *leaves, size_t leaves_len, bool truncated);
/**
 * A gap notice: {"type":"gap","scope":..,"epoch":"<hex>","offset":n,"reason":..}.
 * Messages of that scope's channel up to `offset` of `epoch` that the
 * client did not receive will not come; the next event has offset + 1.
 * `reason` is a protocol word ("trimmed", "epoch_changed").
 */
void hb_smsg_gap(hb_strbuf *sb, hb_scope scope, uint64_t epoch, uint64_t offset, const char *reason);

/** Append "epoch" as the protocol writes it: 16 lowercase hex digits, quoted. */
void hb_smsg_epoch(hb_strbuf *sb, uint64_t epoch);

#endif
