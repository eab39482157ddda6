/*
 * publish.h - the publish core, one path for HTTP and WebSocket publishes:
 * check the idempotency key, serialise the event once, hand it to the
 * broker, which records it in its channel (a position: history.h) and
 * delivers it to this node's subscribers on every I/O thread.
 *
 * Delivery: each I/O thread has its own room index (index.h). With the
 * local broker a message is posted to every thread's inbox under its
 * channel's lock, so that every subscriber sees a channel's messages in
 * offset order; the publishing thread runs its inbox first (what others
 * posted before) and delivers its own message at once. With Redis, the
 * broker's thread posts each channel's messages in Redis's order
 * (hb_publish_deliver_all). A thread queues one reference to the shared
 * frame on each of its subscribers (hb_shared, conn.h), counted in a
 * thread-local view of the message, so no contended cache line is touched
 * per subscriber.
 *
 * A connection that is joining (its welcome waits for Redis) has its
 * deliveries kept aside (hb_publish_hold), to be sent after its replay and
 * welcome, newer ones only (hb_publish_unhold).
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
/** Refuse deliveries and answers from outside the I/O threads from now on
 * and wait for those in progress: after the I/O threads ended, before their
 * inboxes are destroyed (main thread; hb_ioset_wait, then hb_ioset_join). */
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

/* The answer to a publish that completed later (hb_publish_start). */
typedef void (*hb_publish_done_fn)(void *ctx, const hb_publish_result *r);

/**
 * Publish from I/O thread `io`. True: answered now in *out (err, the
 * message id and its position). False: the broker answers later (Redis):
 * done(ctx, r) runs on io's thread, never from within this call, exactly
 * once (broker.h: with HB_E_SHUTTING_DOWN if the server stopped meanwhile).
 * With an idempotency key already used for this plugin within
 * idempotency_ttl_s, the answer is that publish's (replayed) and nothing is
 * delivered.
 */
bool hb_publish_start(hb_io *io, const hb_publish_req *req, hb_publish_result *out, hb_publish_done_fn done,
                      void *ctx);

/**
 * For the local broker: record a publish in its channel's history (the
 * position) and deliver it to this node's subscribers on every thread, in
 * order. `from` is the calling I/O thread. Returns the position.
 */
hb_pos hb_publish_record(hb_io *from, const hb_pub *p);

/**
 * For a broker's own thread (Redis): deliver `msg` (its frame carries its
 * offset; a gap notice when msg->gap) to this node's subscribers on every
 * I/O thread, in the order of the calls. Takes no reference of the
 * caller's. False once hb_publish_quiesce() ran (nothing was delivered).
 */
bool hb_publish_deliver_all(hb_msg *msg);
/**
 * For a broker's own thread: run fn(io, arg) on I/O thread `io` (an
 * answer). False once hb_publish_quiesce() ran: then nothing was posted and
 * the broker answers at its stop instead (broker.h).
 */
bool hb_publish_post(hb_io *io, hb_job_fn fn, void *arg);

/** Queue `msg` on one connection (a replay), sharing its frame. False when
 * the connection is not open or was cut off. On the connection's thread. */
bool hb_publish_send(hb_conn *c, hb_msg *msg);
/** Deliver to the subscribers of this thread only (on io's thread). Returns the count. */
size_t hb_publish_deliver_local(hb_io *io, hb_msg *msg);

/**
 * A joining connection (its replay and welcome are not sent yet): keep what
 * is delivered to it aside, in order, instead of sending it. On its thread.
 */
void hb_publish_hold(hb_conn *c);
/**
 * Stop keeping deliveries aside: send those for which `keep` says yes (NULL:
 * none: they are dropped), in order. On its thread; also when it closed.
 */
void hb_publish_unhold(hb_conn *c, bool (*keep)(void *ud, const hb_msg *m), void *ud);
/** True while deliveries to `c` are kept aside. */
bool hb_publish_held(const hb_conn *c);

#endif
