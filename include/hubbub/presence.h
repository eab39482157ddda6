/*
 * presence.h - who is in a session or an event: exact counts and member
 * lists, and one coalesced delta per channel per interval
 * (docs/protocol.md, "Presence").
 *
 * A member is a user (the connection token's sub) in a channel, with the
 * public info of its token (the info claim, compact JSON). Every room
 * connection is a member of its session channel and of its event channel
 * from its join to its close; several connections (tabs) of one user count
 * once, and the user leaves when the last one closes.
 *
 * One process-wide table, sharded over HB_PRESENCE_SHARDS locks by channel
 * (as history.c), so a channel is counted exactly whatever threads its
 * members' connections live on. Each channel has two states:
 *   - the current one: who is connected now;
 *   - the emitted one: what observers were last told, with a version.
 * hb_presence_tick() (the main thread's timer) turns the difference into at
 * most one delta per channel per presence_interval_ms: the net joins and
 * leaves since the last delta (at most presence_list_max of them listed)
 * and the new exact count, built once as a shared frame and delivered to
 * the channel's observers on every I/O thread through the publish core
 * (hb_publish_deliver_all). A channel whose last delta is older than the
 * interval sends its next change at the next tick: a small room hears a
 * join at once, a large one a count and a sample per interval.
 *
 * Snapshots and pages read the emitted state. The delta is posted to the
 * I/O threads under the channel's lock, and an observer takes its snapshot
 * under that lock after running its thread's inbox (hb_presence_lock), so
 * it gets every delta after the snapshot's version and none before: the
 * snapshot plus the deltas that follow is always the emitted state.
 *
 * Memory: a member is one allocation (its user id and info inline) in its
 * channel's hash table, plus a slot in the channel's join-order array
 * while it is in the emitted state; a connection holds one pointer.
 */
#ifndef HUBBUB_PRESENCE_H
#define HUBBUB_PRESENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hubbub/msg.h"
#include "hubbub/scope.h"
#include "hubbub/strbuf.h"

typedef struct hb_presence_member hb_presence_member;

typedef struct {
  int64_t interval_ms; /* presence_interval_ms */
  uint32_t list_max;   /* presence_list_max: joins + leaves listed per delta */
  int64_t ttl_ms;      /* presence_ttl_s: another node silent this long is gone (0: never) */
} hb_presence_limits;

typedef struct {
  /** How a delta frame reaches the observers: NULL is hb_publish_deliver_all
   * (the server); a test captures. Takes its own reference if it keeps `msg`. */
  bool (*deliver)(hb_msg *msg);
  /** Several nodes: carry this node's changed holdings (a batch for
   * hb_presence_apply) to every other node; called by the tick, in pieces
   * of at most HB_PRESENCE_REPLICATE_CHUNK_BYTES. `full`: this piece starts
   * a resync (hb_presence_resync): it and the pieces after it in this tick
   * are everything this node holds, and replace what it said before (the
   * receiver drops the node, then applies; a resync of nothing is one empty
   * piece). NULL on one node: then nothing is recorded for it. */
  void (*replicate)(void *ud, const void *batch, size_t len, bool full);
  void *ud;
} hb_presence_hooks;

/** Start with these limits and hooks (may be NULL: one node, deltas through
 * the publish core), on the main thread before the I/O threads. */
void hb_presence_init(const hb_presence_limits *lim, const hb_presence_hooks *hooks);
/** Free everything (main thread, after the I/O threads stopped: every
 * connection has left). Logs a warning if a member is still held. */
void hb_presence_shutdown(void);

/** Presence is kept for these scopes (session and event, not organization). */
static inline bool hb_presence_scope_ok(hb_scope s) { return s == HB_SCOPE_SESSION || s == HB_SCOPE_EVENT; }

/**
 * The reserved event name under which a connection observing the presence
 * of `scope` is subscribed in its thread's room index, and under which that
 * channel's deltas are delivered. It starts with '$', which no client
 * event name can (event_name.h), so it never meets a publish.
 */
const char *hb_presence_topic(hb_scope scope, size_t *len);

/**
 * A connection of `user` (with `info`, compact JSON, or NULL) joins the
 * session channel `session` and its event channel. Returns the handle the
 * connection gives back to hb_presence_leave. Any thread.
 */
hb_presence_member *hb_presence_join(const hb_chan_key *session, const char *user, size_t user_len,
                                     const char *info, size_t info_len);
/** That connection leaves (it closed). Any thread. */
void hb_presence_leave(const hb_chan_key *session, hb_presence_member *m);

/* One page of a channel's emitted state. */
typedef struct {
  uint64_t version; /* deltas emitted so far: a snapshot is followed by version + 1 */
  uint32_t count;   /* members (exact) */
  uint32_t listed;  /* members written to the page */
  bool truncated;   /* members remain after the page: continue with `cursor` */
  uint64_t cursor;  /* the last listed member's position (0: none listed) */
} hb_presence_page;

/**
 * Lock `chan`'s shard: while it is held no delta of `chan` is posted, so a
 * caller that runs its thread's inbox and then reads a page and subscribes
 * misses no delta and sees none twice. Lock and unlock on the same thread.
 */
void hb_presence_lock(const hb_chan_key *chan);
void hb_presence_unlock(const hb_chan_key *chan);

/**
 * With the lock held: up to `limit` members of the emitted state after
 * position `after` (0: from the first), in the order they joined, appended
 * to `members` as a JSON array ([{"user_id":..,"info":{..}},..]).
 */
void hb_presence_page_locked(const hb_chan_key *chan, uint64_t after, uint32_t limit, hb_strbuf *members,
                             hb_presence_page *pg);
/** The same, taking the lock itself (the HTTP API). */
void hb_presence_page_get(const hb_chan_key *chan, uint64_t after, uint32_t limit, hb_strbuf *members,
                          hb_presence_page *pg);
/** With the lock held: one more (+1) or one fewer (-1) observer of `chan`
 * on this node. A channel nobody observes builds no delta frames. */
void hb_presence_observe_locked(const hb_chan_key *chan, int delta);

/**
 * The tick (main thread's timer, every HB_PRESENCE_TICK_MS; `now_ms` a
 * monotonic clock): hand this node's changed holdings to `replicate`,
 * forget other nodes silent for ttl (their members leave), and send the
 * deltas that are due. Returns the number of delta messages built.
 */
size_t hb_presence_tick(int64_t now_ms);

/*
 * Several nodes. Each node counts every node's members itself: a member of
 * a channel is held by this node's connections and by the other nodes that
 * said they hold it. A node tells the others when its own holding of a
 * member changes (its first connection of the user in the channel, its
 * last) in batches (the `replicate` hook, once per tick), and is heard from
 * at least every interval (a batch or a heartbeat); one silent for ttl is
 * dropped with all it held. The broker carries batches and heartbeats
 * (broker.h, docs/scaling.md).
 *
 * A batch is a sequence of records: 'J' (holds) or 'L' (no longer holds),
 * the channel key (sizeof(hb_chan_key) bytes, as this build lays it out),
 * the user id's length (1 byte, 1..HB_MAX_USER_ID_BYTES) and bytes, the
 * info's length (2 bytes, little endian, at most HB_MAX_PRESENCE_INFO_BYTES)
 * and bytes (compact JSON of an object, or nothing).
 */

/**
 * Apply a batch from node `node` (heard at `now_ms`): its joins and leaves
 * count in every channel they name. Idempotent per node: a node holds a
 * member once however often it says so. 0, or -1 when the batch cannot be
 * read to its end (what came before applies). Any thread.
 */
int hb_presence_apply(uint64_t node, const void *batch, size_t len, int64_t now_ms);
/** Node `node` is alive (its heartbeat) at `now_ms`. Any thread. */
void hb_presence_heartbeat(uint64_t node, int64_t now_ms);
/** Does this node count node `node` (heard from it, not dropped or expired
 * since)? A node heard from that is not known must be asked for a resync:
 * what it said before was dropped, or never heard. Any thread. */
bool hb_presence_node_known(uint64_t node);
/** Node `node` is gone (it said goodbye, or must be resynchronised): every
 * member it held leaves now. Any thread. */
void hb_presence_drop_node(uint64_t node);
/** Append a batch of every member this node holds (joins only). Any thread. */
void hb_presence_dump(hb_strbuf *out);
/**
 * The other nodes must hear everything this node holds again (this node's
 * link to them was cut, so batches were lost; or another node asked): the
 * next tick replicates a resync instead of the changes. Any thread.
 */
void hb_presence_resync(void);

/* What the table holds, for /metrics and tests. */
typedef struct {
  long channels;  /* channel entries */
  long members;   /* members in the current state, over all channels */
  long observers; /* presence subscriptions on this node */
  long nodes;     /* other nodes heard from */
} hb_presence_stats;
void hb_presence_stats_get(hb_presence_stats *st);

#endif
