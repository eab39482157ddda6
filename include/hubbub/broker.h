/*
 * broker.h - how a publish reaches every node: the interface the publish
 * core (publish.c) calls, implemented by the broker layer above it (`local`
 * in process, `redis` between nodes). A small table of functions, as
 * nchan's store or Mosquitto's mux; the server picks one at start
 * (hb_publish_init) and the publish core only ever calls through it.
 *
 * An implementation records and delivers on this node with
 * hb_publish_record() (publish.h) and never touches connections.
 */
#ifndef HUBBUB_BROKER_H
#define HUBBUB_BROKER_H

#include <stdbool.h>

#include "hubbub/errors.h"
#include "hubbub/msg.h"
#include "hubbub/resume.h"

struct hb_io;

typedef struct hb_broker hb_broker;

/* One publish as a broker takes it: where it goes, and the event's JSON
 * without its position (hb_smsg_event_open's text), which the channel
 * assigns. */
typedef struct {
  hb_chan_key chan;
  const char *name;
  size_t name_len;
  const char *prefix;
  size_t prefix_len;
  int64_t sent_ms;
} hb_pub;

typedef struct {
  const char *name;
  /** Called once on the main thread before the I/O threads start. 0 ok. */
  int (*start)(hb_broker *b);
  /**
   * Publish from I/O thread `from`: assign the message its position in
   * its channel (*pos), and deliver it to this node's subscribers and to
   * every other node's. HB_OK, or HB_E_BROKER_UNAVAILABLE when it cannot
   * reach the cluster (then nobody received it).
   */
  hb_err (*publish)(hb_broker *b, struct hb_io *from, const hb_pub *p, hb_pos *pos);
  /** Some thread gained its first (on) or lost its last (off) subscriber on
   * `chan`: interest routing. Any I/O thread. May be NULL. */
  void (*interest)(hb_broker *b, const hb_chan_key *chan, bool on);
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
  /** Called on the main thread after the I/O threads stopped; frees `b`. */
  void (*stop)(hb_broker *b);
} hb_broker_ops;

struct hb_broker {
  const hb_broker_ops *ops;
};

#endif
