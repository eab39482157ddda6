/*
 * room.h - the v1 room protocol on an open WebSocket: who a connection is
 * (its room, scopes, token expiry), its subscriptions, and the messages
 * welcome, subscribe, unsubscribe, publish, ping, and the presence
 * requests (docs/protocol.md).
 *
 * A room is (organization, plugin, event, session) from the signed
 * connection token; each I/O thread keeps one shared copy of a room's key
 * for all its connections in that room.
 */
#ifndef HUBBUB_ROOM_H
#define HUBBUB_ROOM_H

#include <stddef.h>
#include <stdint.h>

#include "hubbub/auth.h"
#include "hubbub/bucket.h"
#include "hubbub/jwt.h"
#include "hubbub/list.h"
#include "hubbub/msg.h"
#include "hubbub/resume.h"
#include "hubbub/strbuf.h"
#include "hubbub/ws.h"

typedef struct hb_room hb_room;

/* A connection in a room: its state in the connection's extension area.
 * Field order keeps it free of padding holes (W4, docs/performance.md).
 * What a re-check after a credential reload needs (hb_room_recheck) is
 * kept compactly: the room key holds the organization and plugin; the user
 * id as its 64-bit hash, the kid as its 32-bit hash, iat and exp as 32-bit
 * Unix seconds (until 2106; later values are kept as UINT32_MAX); the
 * counters and the presence it observes share one 32-bit unit. */
typedef struct hb_peer {
  hb_ws ws;          /* first: the WebSocket glue's state (ws.h) */
  hb_room *room;
  struct hb_presence_member *presence; /* its membership of its session and event (presence.h) */
  hb_list subs;      /* hb_sub.conn_link (index.h) */
  hb_bucket bucket;  /* publish rate limit (conn_publish_rate/burst) */
  uint64_t user_hash; /* hb_auth_user_hash of the token's sub */
  uint32_t iat;       /* the token's iat (0 = none) */
  uint32_t exp;       /* the token's exp (0 = none) */
  uint32_t kid_hash;  /* hb_auth_kid_hash of the secret that verified the token */
  unsigned nsubs : 17;        /* event names subscribed (<= HB_CONFIG_MAX_SUBSCRIPTIONS) */
  unsigned scopes : 3;        /* hb_scope_set the token allows */
  unsigned rate_strikes : 10; /* publishes refused in a row (< HB_RATE_STRIKES_BEFORE_CLOSE) */
  unsigned observing : 2;     /* hb_scope_set: the presence it subscribed to (session, event) */
} hb_peer;

_Static_assert(HB_SCOPE__COUNT <= 3, "hb_peer.scopes");
_Static_assert(HB_RATE_STRIKES_BEFORE_CLOSE < (1 << 10), "hb_peer.rate_strikes");
_Static_assert(HB_CONFIG_MAX_SUBSCRIPTIONS < (1 << 17), "hb_peer.nsubs");

/** Register the room protocol as the WebSocket glue's upper layer (once). */
void hb_room_init(void);
/** Per-thread room table: on the I/O thread at its start and after its end. */
void hb_room_thread_stop(struct hb_io *io);

/**
 * Enter the room of `claims` on a connection that hb_ws_open() just
 * switched to WebSocket. Returns its peer state.
 */
hb_peer *hb_room_join(hb_ws *ws, const hb_conn_claims *claims);
/**
 * Subscribe to a (valid) event name in the peer's room, as a `subscribe`
 * message does; idempotent. False when the connection already holds
 * max_subscriptions names.
 */
bool hb_room_subscribe(hb_peer *p, const char *name, size_t len);
/**
 * The rest of the handshake after hb_room_join: subscribe to the names of
 * `subs` (comma-separated, already checked), and append the welcome frame to
 * `out` (which holds the 101: both go out as one piece). With `since` (the
 * three positions of a resume string), first replay what the connection
 * missed in its session, event and organization channels for those names
 * — all of it, in offset order, or nothing — and say in the welcome
 * whether it recovered. Returns whether it did (true without `since`).
 */
bool hb_room_enter(hb_peer *p, const hb_conn_claims *claims, const char *subs, size_t subs_len,
                   const hb_pos *since, hb_strbuf *out);

/**
 * The same when the positions come from a broker that answers later (Redis:
 * broker.h, ops->join): the 101 in `out` goes now; the names are subscribed,
 * live deliveries kept aside and reading stopped; when the broker answers,
 * the replay, the welcome, then what was kept aside that is newer than the
 * welcome's positions (each once), then reading again. If the broker does
 * not answer in time the connection closes with 1013 (try again later).
 */
void hb_room_enter_later(hb_peer *p, const hb_conn_claims *claims, const char *subs, size_t subs_len,
                         const hb_pos *since, hb_strbuf *out);

/** The room's session-level channel key. */
const hb_chan_key *hb_room_key(const hb_room *r);

/**
 * On the I/O thread, after a credential reload: close every room
 * connection of this thread that may no longer stay (hb_auth_conn_check)
 * — 4404 plugin_deleted, 4401 invalid_token (its secret retired) or
 * token_expired, 4410 token_revoked — or that one of the `n` disconnects
 * names: 4410 user_disconnected, 4409 room_closed. Returns how many closed.
 */
size_t hb_room_recheck(struct hb_io *io, const hb_auth_disconnect *d, size_t n);

#endif
