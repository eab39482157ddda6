/*
 * broker.h - how a publish reaches every node: the interface the publish
 * core (publish.c) calls, implemented by the broker layer above it (`local`
 * in process, `redis` between nodes). A small table of functions, as
 * nchan's store or Mosquitto's mux; the server picks one at start
 * (hb_publish_init) and the publish core only ever calls through it.
 *
 * An implementation delivers to this node's subscribers with
 * hb_publish_deliver_all() (publish.h) and never touches connections.
 */
#ifndef HUBBUB_BROKER_H
#define HUBBUB_BROKER_H

#include <stdbool.h>

#include "hubbub/errors.h"
#include "hubbub/msg.h"

struct hb_io;

typedef struct hb_broker hb_broker;

typedef struct {
  const char *name;
  /** Called once on the main thread before the I/O threads start. 0 ok. */
  int (*start)(hb_broker *b);
  /**
   * Publish `msg` from I/O thread `from` (the caller keeps its reference):
   * deliver to this node's subscribers and to every other node's. HB_OK, or
   * HB_E_BROKER_UNAVAILABLE when it cannot reach the cluster (then nobody
   * received it).
   */
  hb_err (*publish)(hb_broker *b, struct hb_io *from, hb_msg *msg);
  /** Some thread gained its first (on) or lost its last (off) subscriber on
   * `chan`: interest routing. Any I/O thread. May be NULL. */
  void (*interest)(hb_broker *b, const hb_chan_key *chan, bool on);
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
