/* publish.c - the publish core: serialise once, broker, local delivery (publish.h). */
#include "hubbub/publish.h"

#include <sys/time.h>

#include "hubbub/alloc.h"
#include "hubbub/metrics.h"
#include "hubbub/smsg.h"

/*
 * A thread's view of a message: one shared (atomic) reference to the
 * message per thread, and a plain counter (the hb_shared) for the
 * connections of that thread that still have the frame queued.
 */
typedef struct lmsg {
  hb_shared sh; /* first: the output queue holds &sh */
  bool queued;  /* some connection queued the frame: its release is a delivery to time */
  hb_msg *msg;
  struct lmsg *next_free;
} lmsg;

/* The publish core's per-thread state, indexed by hb_io.id. */
typedef struct {
  hb_index index;
  lmsg *lmsg_free; /* a stack of spare views */
} thread_state;

static hb_ioset *ioset;
static hb_broker *broker;
static thread_state threads[HB_MAX_THREADS];
/* Deliveries from outside the I/O threads (the Redis thread) in progress,
 * and whether they are still let in (hb_publish_quiesce). */
static atomic_int remote_inflight;
static atomic_bool remote_closed;

void hb_publish_init(hb_ioset *set, hb_broker *b) {
  ioset = set;
  broker = b;
  atomic_store(&remote_closed, false);
}

void hb_publish_quiesce(void) {
  atomic_store(&remote_closed, true);
  /* A delivery that got in before the flag finishes posting in microseconds. */
  while (atomic_load(&remote_inflight) > 0) uv_sleep(1);
}

hb_broker *hb_publish_broker(void) { return broker; }

hb_index *hb_publish_index(hb_io *io) { return &threads[io->id].index; }

/* The index says when this thread gains its first or loses its last
 * subscriber on a channel: the broker's interest routing hangs off it. */
static void on_interest(void *ud, const hb_chan_key *chan, bool on) {
  if (broker && broker->ops->interest) broker->ops->interest(broker, chan, on);
}

void hb_publish_thread_start(hb_io *io) { hb_index_init(&threads[io->id].index, on_interest, io); }

void hb_publish_thread_stop(hb_io *io) {
  thread_state *t = &threads[io->id];
  hb_index_destroy(&t->index);
  while (t->lmsg_free) {
    lmsg *lm = t->lmsg_free;
    t->lmsg_free = lm->next_free;
    hb_free(lm);
  }
}

/* The last connection of the thread wrote the frame. */
static void lmsg_release(hb_shared *s, hb_io *io) {
  lmsg *lm = (lmsg *)s;
  thread_state *t = &threads[io->id];
  /* Once per message and thread, never per subscriber: the last local
   * subscriber has been written to (or its connection dropped the frame). */
  if (lm->queued) hb_metric_observe_ns(HB_H_DELIVERY_LATENCY, uv_hrtime() - lm->msg->accepted_ns);
  hb_msg_unref(lm->msg);
  lm->next_free = t->lmsg_free;
  t->lmsg_free = lm;
}

static void deliver_one(hb_conn *c, void *ud) { hb_conn_send_shared(c, ud); }

size_t hb_publish_deliver_local(hb_io *io, hb_msg *msg) {
  thread_state *t = &threads[io->id];
  lmsg *lm = t->lmsg_free;
  if (lm) t->lmsg_free = lm->next_free;
  else lm = hb_malloc(sizeof *lm);
  hb_msg_ref(msg);
  lm->msg = msg;
  lm->sh.bytes = msg->frame;
  lm->sh.len = msg->frame_len;
  lm->sh.release = lmsg_release;
  lm->sh.refs = 1; /* held by this function until the fan-out is done */
  size_t n = hb_index_foreach(&t->index, &msg->chan, msg->event_name, msg->event_name_len, deliver_one,
                              &lm->sh);
  lm->queued = lm->sh.refs > 1; /* a connection cut off (slow consumer) takes no reference */
  if (--lm->sh.refs == 0) lmsg_release(&lm->sh, io);
  if (n) hb_metric_add(HB_M_DELIVERIES, (long long)n);
  return n;
}

/* A delivery posted to another thread; ctx NULL: the thread is gone. */
static void deliver_job(void *ctx, void *arg) {
  if (ctx) hb_publish_deliver_local(ctx, arg);
  hb_msg_unref(arg);
}

void hb_publish_deliver_all(hb_io *from, hb_msg *msg) {
  if (!from) {
    /* From another node: the I/O threads' inboxes are destroyed after
     * hb_publish_quiesce(), so count ourselves in before touching them. */
    atomic_fetch_add(&remote_inflight, 1);
    if (atomic_load(&remote_closed)) {
      atomic_fetch_sub(&remote_inflight, 1);
      return;
    }
  }
  for (int i = 0; i < ioset->nio; i++) {
    hb_io *io = ioset->io[i];
    if (io == from) {
      hb_publish_deliver_local(io, msg);
    } else {
      hb_msg_ref(msg); /* owned by the job */
      hb_io_post(io, deliver_job, msg);
    }
  }
  if (!from) atomic_fetch_sub(&remote_inflight, 1);
}

static int64_t wall_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

hb_err hb_publish(hb_io *io, const hb_chan_key *room, hb_scope scope, const char *name, size_t name_len,
                  const char *data, size_t data_len, char message_id[HB_UUID_STR_BYTES]) {
  hb_io_new_id(io, message_id);
  hb_chan_key k;
  hb_chan_key_make(&k, scope, &room->org, &room->plugin, &room->event, &room->session);
  /* Serialise once; every subscriber on every thread shares this frame. */
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_smsg_event(&sb, name, name_len, data, data_len, scope, message_id, wall_ms());
  hb_msg *m = hb_msg_new(&k, name, name_len, sb.buf, sb.len);
  hb_strbuf_free(&sb);
  hb_err err = broker->ops->publish(broker, io, m);
  hb_msg_unref(m);
  return err;
}
