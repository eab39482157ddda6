/*
 * index.h - one I/O thread's room index: which local connections subscribed
 * to which event name in which channel.
 *
 * A connection in room (o, p, e, s) that subscribes to `name` is linked into
 * three topics: (session channel o/p/e/s, name), (event channel o/p/e, name)
 * and (organization channel o/p, name). A publish targets exactly one
 * channel, so a lookup of (channel, eventName) yields exactly the connections
 * that must receive it — each once — with no filtering at delivery time.
 * Not thread-safe: each thread owns its index.
 */
#ifndef HUBBUB_INDEX_H
#define HUBBUB_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hubbub/list.h"
#include "hubbub/msg.h"

struct hb_conn;
typedef struct hb_topic hb_topic;
typedef struct hb_chan hb_chan;

/* One subscription of one connection to one event name: one allocation. */
typedef struct hb_sub {
  hb_list conn_link;                     /* in the connection's subscriptions */
  hb_list topic_link[HB_SCOPE__COUNT];   /* in the topic of each level */
  hb_topic *topic[HB_SCOPE__COUNT];
  struct hb_conn *conn;
} hb_sub;

/* Called when this thread gains its first subscriber on a channel (on=true)
 * or loses its last (on=false): the broker's interest routing hangs off it.
 * Subscriptions to reserved names (starting with '$': presence topics) do
 * not count: the broker never carries them. */
typedef void (*hb_index_interest_cb)(void *ud, const hb_chan_key *chan, bool on);

typedef struct {
  hb_topic *topics; /* uthash head */
  hb_chan *chans;   /* uthash head */
  size_t nsubs;
  hb_index_interest_cb on_interest;
  void *ud;
} hb_index;

void hb_index_init(hb_index *ix, hb_index_interest_cb cb, void *ud);
/** Frees every topic and subscription (the connections must be gone). */
void hb_index_destroy(hb_index *ix);

/**
 * Subscribe `conn` (in the room given by the session-level key `room`) to
 * `name`. The caller checks for a duplicate first (hb_index_find_sub).
 */
hb_sub *hb_index_subscribe(hb_index *ix, struct hb_conn *conn, const hb_chan_key *room,
                           const char *name, size_t name_len);
void hb_index_unsubscribe(hb_index *ix, hb_sub *sub);
/** The subscription of a connection to `name` in its list, or NULL. */
hb_sub *hb_index_find_sub(hb_list *conn_subs, const char *name, size_t name_len);
/** The event name of a subscription. */
const char *hb_sub_name(const hb_sub *sub, size_t *len);

/**
 * Visit every local subscriber of (chan, name). `fn` must not subscribe or
 * unsubscribe (delivery only queues; closes are deferred). Returns the count.
 */
size_t hb_index_foreach(hb_index *ix, const hb_chan_key *chan, const char *name, size_t name_len,
                        void (*fn)(struct hb_conn *conn, void *ud), void *ud);

/**
 * Visit every local subscriber of `chan`, whatever the names it subscribed
 * to (reserved ones aside: a presence observer subscribed to no event is
 * not visited), each connection once (a gap notice). Same rules as
 * hb_index_foreach.
 */
size_t hb_index_foreach_chan(hb_index *ix, const hb_chan_key *chan, void (*fn)(struct hb_conn *conn, void *ud),
                             void *ud);

#endif
