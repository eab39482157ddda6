/*
 * broker.h - how a publish reaches every node's I/O threads.
 *
 * A small table of functions (as nchan's store or Mosquitto's mux): `local`
 * delivers in process, `redis` carries publishes between nodes. The I/O
 * threads only ever call through this table.
 */
#ifndef HUBBUB_BROKER_H
#define HUBBUB_BROKER_H

#include <stdbool.h>

#include "hubbub/errors.h"
#include "hubbub/msg.h"

struct hb_server;
struct hb_io;

typedef struct hb_broker hb_broker;

typedef struct {
  const char *name;
  /** Called once on the main thread before the I/O threads start. 0 ok. */
  int (*start)(hb_broker *b);
  /**
   * Publish `msg` from I/O thread `from` (the caller keeps its reference).
   * HB_OK, or HB_E_BROKER_UNAVAILABLE when it cannot reach the cluster
   * (then nobody received it).
   */
  hb_err (*publish)(hb_broker *b, struct hb_io *from, hb_msg *msg);
  /** Thread `io` gained its first (on) or lost its last (off) subscriber on `chan`. */
  void (*interest)(hb_broker *b, struct hb_io *io, const hb_chan_key *chan, bool on);
  /** "up", "down", "connecting"...: for /healthz. */
  const char *(*state)(hb_broker *b);
  bool (*healthy)(hb_broker *b);
  /** Called on the main thread after the I/O threads stopped; frees `b`. */
  void (*stop)(hb_broker *b);
} hb_broker_ops;

struct hb_broker {
  const hb_broker_ops *ops;
  struct hb_server *srv;
};

/** The in-process broker. */
hb_broker *hb_broker_local_new(struct hb_server *srv);
/** The Redis broker (NULL and a reason in errbuf when the URL is bad). */
hb_broker *hb_broker_redis_new(struct hb_server *srv, const char *url, const char *password,
                               char *errbuf, size_t errlen);

#endif
