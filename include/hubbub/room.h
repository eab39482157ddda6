/*
 * room.h - the v1 room protocol on an open WebSocket: welcome, subscribe,
 * unsubscribe, publish, ping (docs/protocol.md).
 */
#ifndef HUBBUB_ROOM_H
#define HUBBUB_ROOM_H

#include <stddef.h>

#include "hubbub/conn.h"
#include "hubbub/jwt.h"
#include "hubbub/strbuf.h"

struct hb_io;

/** The thread's shared room for `key` (a new reference). */
hb_room *hb_room_acquire(struct hb_io *io, const hb_chan_key *key);
/** Drop a reference; the last one frees the room. NULL is ignored. */
void hb_room_release(struct hb_io *io, hb_room *r);
/** The room's session-level channel key. */
const hb_chan_key *hb_room_key(const hb_room *r);

/**
 * Append the welcome frame (header and message) for a freshly upgraded
 * connection to `out`, which may already hold the 101 response so that the
 * caller queues both as one piece. Sends nothing itself.
 */
/* `subscribed` (may be NULL): the names subscribed at the upgrade, listed
 * in the welcome's "subscribed" field. */
void hb_room_welcome(hb_conn *c, const hb_conn_claims *claims, const char *subscribed,
                     size_t subscribed_len, hb_strbuf *out);
/** Handle one complete, UTF-8 valid text message. */
void hb_room_on_text(hb_conn *c, const char *msg, size_t len);
/** Subscribe the connection to a (valid) event name in its room, as a
 * `subscribe` message does; idempotent. False when the connection already
 * holds max_subscriptions names. */
bool hb_room_subscribe(hb_conn *c, const char *name, size_t len);

#endif
