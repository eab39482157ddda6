/*
 * publish.h - the publish core, one path for HTTP and WebSocket publishes:
 * serialise the event once (a shared frame), hand it to the broker, and
 * deliver it to this node's subscribers on every I/O thread.
 *
 * Delivery: each I/O thread has its own room index (index.h). A publish is
 * delivered on the publishing thread directly and reaches every other
 * thread as a job on its inbox; a thread queues one reference to the shared
 * frame on each of its subscribers (hb_shared, conn.h), counted in a
 * thread-local view of the message so that no contended cache line is
 * touched per subscriber.
 */
#ifndef HUBBUB_PUBLISH_H
#define HUBBUB_PUBLISH_H

#include <stddef.h>

#include "hubbub/broker.h"
#include "hubbub/errors.h"
#include "hubbub/index.h"
#include "hubbub/io.h"
#include "hubbub/msg.h"
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

/**
 * Publish `data` as `event_name` to `scope` of the room `room` (a session-
 * level channel key), from I/O thread `io`: serialise once, hand to the
 * broker. Writes the new message id into message_id. HB_OK, or the
 * broker's error (nothing was delivered then).
 */
hb_err hb_publish(hb_io *io, const hb_chan_key *room, hb_scope scope, const char *event_name,
                  size_t event_name_len, const char *data, size_t data_len,
                  char message_id[HB_UUID_STR_BYTES]);

/**
 * Deliver `msg` to this node's subscribers of its channel: directly on
 * `from` (if not NULL; it must be the calling I/O thread) and through the
 * inbox of every other thread. The caller keeps its reference. Any thread.
 */
void hb_publish_deliver_all(hb_io *from, hb_msg *msg);
/** Deliver to the subscribers of this thread only (on io's thread). Returns the count. */
size_t hb_publish_deliver_local(hb_io *io, hb_msg *msg);

#endif
