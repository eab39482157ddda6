/*
 * publish.h - the publish core, one path for HTTP and WebSocket publishes:
 * check the idempotency key, serialise the event once, hand it to the
 * broker, which records it in its channel (a position: history.h) and
 * delivers it to this node's subscribers on every I/O thread.
 *
 * Delivery: each I/O thread has its own room index (index.h). A message is
 * posted to every thread's inbox under its channel's lock, so that every
 * subscriber sees a channel's messages in offset order; the publishing
 * thread runs its inbox first (what others posted before) and delivers its
 * own message at once. A thread queues one reference to the shared frame
 * on each of its subscribers (hb_shared, conn.h), counted in a
 * thread-local view of the message, so no contended cache line is touched
 * per subscriber.
 */
#ifndef HUBBUB_PUBLISH_H
#define HUBBUB_PUBLISH_H

#include <stddef.h>

#include "hubbub/broker.h"
#include "hubbub/errors.h"
#include "hubbub/idem.h"
#include "hubbub/index.h"
#include "hubbub/io.h"
#include "hubbub/msg.h"
#include "hubbub/resume.h"
#include "hubbub/scope.h"

/** Set the I/O threads and the broker (main thread, before they start). */
void hb_publish_init(hb_ioset *set, hb_broker *broker);
/** Refuse deliveries from outside the I/O threads from now on and wait for
 * those in progress: before the I/O threads are joined (main thread). */
void hb_publish_quiesce(void);
/** The broker in use (for /healthz). */
hb_broker *hb_publish_broker(void);
/** Per-thread state: on the I/O thread at its start and after its end. */
void hb_publish_thread_start(hb_io *io);
void hb_publish_thread_stop(hb_io *io);
/** The thread's room index (subscriptions are made by the room protocol). */
hb_index *hb_publish_index(hb_io *io);

/* A publish as the HTTP API and the room protocol make it. */
typedef struct {
  const hb_chan_key *room; /* the session-level channel key of the room */
  hb_scope scope;
  const char *event_name;
  size_t event_name_len;
  const char *data; /* the exact bytes of the `data` object */
  size_t data_len;
  const char *idem_key; /* NULL, or an idempotency key (hb_field_idempotency_key_valid) */
  size_t idem_key_len;
} hb_publish_req;

/**
 * Publish from I/O thread `io`. Fills *out (err, the message id and its
 * position) and returns out->err. With an idempotency key already used for
 * this plugin within idempotency_ttl_s, answers that publish's result and
 * delivers nothing.
 */
hb_err hb_publish(hb_io *io, const hb_publish_req *req, hb_publish_result *out);

/**
 * For brokers: record a publish in its channel's history (the position)
 * and deliver it to this node's subscribers on every thread, in order.
 * `from` is the calling I/O thread, or NULL from another thread (the Redis
 * thread). Returns the position.
 */
hb_pos hb_publish_record(hb_io *from, const hb_pub *p);

/**
 * Deliver `msg` (no position, no history: a presence delta) to this node's
 * subscribers of (msg->chan, msg->event_name) on every I/O thread, by
 * posting it to each thread's inbox. From a thread that is not an I/O
 * thread; nothing is posted after hb_publish_quiesce().
 */
void hb_publish_deliver_all(hb_msg *msg);

/** Queue `msg` on one connection (a replay), sharing its frame. False when
 * the connection is not open or was cut off. On the connection's thread. */
bool hb_publish_send(hb_conn *c, hb_msg *msg);
/** Deliver to the subscribers of this thread only (on io's thread). Returns the count. */
size_t hb_publish_deliver_local(hb_io *io, hb_msg *msg);

#endif
