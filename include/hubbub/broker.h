/*
 * broker.h - how a publish reaches every node: the interface the publish
 * core (publish.c) and the room protocol call, implemented by the broker
 * layer above them (`local` in process, `redis` between nodes). A small
 * table of functions, as nchan's store or Mosquitto's mux; the server picks
 * one at start (hb_publish_init) and the pubsub layer only ever calls
 * through it.
 *
 * Synchronous or not. The local broker answers at once. The Redis broker
 * answers when Redis does: an operation that cannot answer at once returns
 * false and calls `done(ctx, ...)` later, exactly once, on the I/O thread
 * `from` (through its inbox); if that thread is gone by then (the server
 * stopped), `done` runs on the main thread after the I/O threads were
 * joined, with HB_E_SHUTTING_DOWN. The caller keeps `ctx` valid until then
 * (a connection is held with hb_conn_hold: it may close meanwhile).
 *
 * An implementation delivers on this node through the publish core
 * (hb_publish_record for the local broker; hb_publish_deliver_all and
 * hb_publish_post from another thread) and never touches connections.
 */
#ifndef HUBBUB_BROKER_H
#define HUBBUB_BROKER_H

#include <stdbool.h>

#include "hubbub/errors.h"
#include "hubbub/history.h"
#include "hubbub/idem.h"
#include "hubbub/msg.h"
#include "hubbub/resume.h"

struct hb_io;

typedef struct hb_broker hb_broker;

/* One publish as a broker takes it: where it goes, and the event's JSON
 * without its position (hb_smsg_event_open's text), which the channel
 * assigns. Only valid during the call: a broker that answers later copies
 * what it needs. */
typedef struct {
  hb_chan_key chan;
  const char *name;
  size_t name_len;
  const char *prefix;
  size_t prefix_len;
  int64_t sent_ms;
  const char *message_id; /* the publish's id (HB_UUID_STR_BYTES - 1 characters) */
  /* With ops->idempotency: the publish's Idempotency-Key, or NULL. */
  const char *idem_key;
  size_t idem_key_len;
} hb_pub;

typedef void (*hb_broker_done_fn)(void *ctx, const hb_publish_result *r);

/* A join (docs/protocol.md, "Recovery"): the positions of a connection's
 * three channels and, with `since`, what it missed. */
typedef struct {
  hb_chan_key chans[HB_SCOPE__COUNT];
  /* The connection subscribed names in these channels: answer only once this
   * node delivers them live and has delivered everything up to the
   * positions it answers, so that every later message reaches it once. */
  bool live;
  bool has_since;
  hb_pos since[HB_SCOPE__COUNT];
  /* Which messages a replay holds (the names subscribed at the upgrade);
   * called on the broker's thread; NULL: all. */
  bool (*want)(void *ud, const hb_msg *m);
  void *want_ud;
  size_t max_replay;     /* max_recover_messages: more is HB_HISTORY_TOO_MANY */
  uint32_t history_size; /* a position more than this behind is HB_HISTORY_TRIMMED */
} hb_join_req;

typedef struct {
  hb_err err; /* HB_OK; HB_E_BROKER_UNAVAILABLE when the cluster did not answer in time */
  hb_pos now[HB_SCOPE__COUNT];
  hb_history_status st[HB_SCOPE__COUNT]; /* with since: why a channel cannot be recovered */
  hb_msgvec replay[HB_SCOPE__COUNT];     /* with since and every st OK: what it missed, in offset order */
} hb_join_result;

/* `r` is the callee's for the call: it may take the replay's references
 * (and clear the vectors); the broker frees what is left. */
typedef void (*hb_join_done_fn)(void *ctx, hb_join_result *r);

/* A page of a channel's history (GET /api/v1/history). */
typedef struct {
  hb_chan_key chan;
  uint64_t after; /* messages after this offset (0: from the oldest kept) */
  size_t limit;
  bool (*want)(void *ud, const hb_msg *m); /* broker's thread; NULL: all */
  void *want_ud;
} hb_page_req;

typedef struct {
  hb_err err;
  hb_pos now;          /* the channel's position */
  uint64_t first_kept; /* the oldest offset kept (0: none) */
  bool more;           /* messages remain after the last one returned */
  hb_msgvec msgs;
} hb_page_result;

typedef void (*hb_page_done_fn)(void *ctx, hb_page_result *r);
typedef void (*hb_live_done_fn)(void *ctx, hb_err err);

typedef struct {
  const char *name;
  /** The broker keeps Idempotency-Keys itself (across nodes): the publish
   * core hands them over in hb_pub instead of checking idem.h. */
  bool idempotency;
  /** Called once on the main thread before the I/O threads start. 0 ok. */
  int (*start)(hb_broker *b);
  /**
   * Publish from I/O thread `from`: the message gets its position in its
   * channel and reaches this node's subscribers and every other node's.
   * True: answered now in *r (err, pos, message_id, replayed). False:
   * `done(ctx, r)` answers later (see above). An error (err !=
   * HB_OK, e.g. HB_E_BROKER_UNAVAILABLE) means nobody received it.
   */
  bool (*publish)(hb_broker *b, struct hb_io *from, const hb_pub *p, hb_publish_result *r,
                  hb_broker_done_fn done, void *ctx);
  /** Some thread gained its first (on) or lost its last (off) subscriber on
   * `chan`: interest routing. Any I/O thread. May be NULL. */
  void (*interest)(hb_broker *b, const hb_chan_key *chan, bool on);
  /** A join's positions and replay, answered later through `done`. NULL:
   * the channels' history is this process's (history.h): the room
   * protocol reads it itself, at once. */
  void (*join)(hb_broker *b, struct hb_io *from, const hb_join_req *req, hb_join_done_fn done, void *ctx);
  /** Wait until this node delivers `chans` live (a subscribe's ack): true
   * now, or false and done(ctx, err) later. NULL: always live. */
  bool (*live)(hb_broker *b, struct hb_io *from, const hb_chan_key *chans, int n, hb_live_done_fn done,
               void *ctx);
  /** A page of history, answered later. NULL: history.h answers at once. */
  void (*page)(hb_broker *b, struct hb_io *from, const hb_page_req *req, hb_page_done_fn done, void *ctx);
  /**
   * Presence between nodes (presence.h): carry `batch`, this node's changed
   * holdings (or, `full`, the start of a resync: everything it holds), to
   * every other node, which applies it with hb_presence_apply(this node's
   * id, ...) (after hb_presence_drop_node when `full`). Main thread, from
   * the presence tick, in order. NULL on one node (`local`): then
   * presence.c records nothing for it. An implementation also sends a
   * heartbeat at least every presence_interval_ms (receivers call
   * hb_presence_heartbeat), a goodbye at a graceful stop
   * (hb_presence_drop_node), calls hb_presence_resync when what it sent may
   * have been lost, and asks the others to resync when it may have missed
   * what they sent: docs/scaling.md, "Presence".
   */
  void (*presence)(hb_broker *b, const void *batch, size_t len, bool full);
  /** "up", "down", "connecting"...: for /healthz and hubbub_broker_state. */
  const char *(*state)(hb_broker *b);
  /** Every value state() may return, NULL-terminated (the one-hot gauge). */
  const char *const *states;
  bool (*healthy)(hb_broker *b);
  /** Called on the main thread after the I/O threads stopped; answers what
   * is still pending (HB_E_SHUTTING_DOWN) and frees `b`. */
  void (*stop)(hb_broker *b);
} hb_broker_ops;

struct hb_broker {
  const hb_broker_ops *ops;
};

#endif
