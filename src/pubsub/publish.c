/* publish.c - the publish core: serialise once, broker, local delivery (publish.h). */
#include "hubbub/publish.h"

#include <string.h>

#include "hubbub/alloc.h"
#include "hubbub/clock.h"
#include "hubbub/hash.h"
#include "hubbub/history.h"
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

/* Deliveries kept aside for a joining connection (hb_publish_hold). */
typedef struct {
  hb_conn *c; /* the key */
  hb_msgvec msgs;
  UT_hash_handle hh;
} held;

/* conn->upper bit: deliveries to this connection are held. */
#define HELD_BIT 0x1u

/* The publish core's per-thread state, indexed by hb_io.id. */
typedef struct {
  hb_index index;
  lmsg *lmsg_free; /* a stack of spare views */
  held *held;      /* uthash: joining connections (few at a time) */
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
  held *h, *tmp;
  HASH_ITER(hh, t->held, h, tmp) { /* empty: every joining connection closed */
    HASH_DEL(t->held, h);
    hb_msgvec_free(&h->msgs);
    hb_free(h);
  }
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

/* --- joining connections: deliveries held until the welcome ------------------- */

static held *held_find(hb_conn *c) {
  held *h = NULL;
  HASH_FIND_PTR(threads[c->io->id].held, &c, h);
  return h;
}

void hb_publish_hold(hb_conn *c) {
  if (c->upper & HELD_BIT) return;
  held *h = hb_calloc(1, sizeof *h);
  h->c = c;
  HASH_ADD_PTR(threads[c->io->id].held, c, h);
  c->upper |= HELD_BIT;
}

bool hb_publish_held(const hb_conn *c) { return c->upper & HELD_BIT; }

void hb_publish_unhold(hb_conn *c, bool (*keep)(void *ud, const hb_msg *m), void *ud) {
  if (!(c->upper & HELD_BIT)) return;
  c->upper &= ~HELD_BIT;
  held *h = held_find(c);
  if (!h) return;
  HASH_DEL(threads[c->io->id].held, h);
  for (size_t i = 0; keep && i < h->msgs.n; i++)
    if (keep(ud, h->msgs.v[i])) hb_publish_send(c, h->msgs.v[i]);
  hb_msgvec_free(&h->msgs);
  hb_free(h);
}

static void deliver_one(hb_conn *c, void *ud) {
  hb_shared *sh = ud;
  if (c->upper & HELD_BIT) {
    held *h = held_find(c);
    if (h) hb_msgvec_push(&h->msgs, ((lmsg *)sh)->msg);
    return;
  }
  hb_conn_send_shared(c, sh);
}

/* A view of `msg` for this thread, held by the caller (refs 1). */
static lmsg *view_new(hb_io *io, hb_msg *msg) {
  thread_state *t = &threads[io->id];
  lmsg *lm = t->lmsg_free;
  if (lm) t->lmsg_free = lm->next_free;
  else lm = hb_malloc(sizeof *lm);
  hb_msg_ref(msg);
  lm->msg = msg;
  lm->sh.bytes = msg->frame;
  lm->sh.len = msg->frame_len;
  lm->sh.release = lmsg_release;
  lm->sh.refs = 1;
  lm->queued = false;
  return lm;
}

static void view_done(hb_io *io, lmsg *lm) {
  if (--lm->sh.refs == 0) lmsg_release(&lm->sh, io);
}

size_t hb_publish_deliver_local(hb_io *io, hb_msg *msg) {
  thread_state *t = &threads[io->id];
  lmsg *lm = view_new(io, msg); /* held by this function until the fan-out is done */
  /* A gap notice goes to every subscriber of the channel, whatever the name. */
  size_t n = msg->gap ? hb_index_foreach_chan(&t->index, &msg->chan, deliver_one, &lm->sh)
                      : hb_index_foreach(&t->index, &msg->chan, msg->event_name, msg->event_name_len, deliver_one,
                                         &lm->sh);
  /* A connection cut off (slow consumer) takes no reference. A replay
   * (hb_publish_send) is never timed: its message was accepted long ago;
   * nor is a gap notice: it is no publish. */
  lm->queued = !msg->gap && lm->sh.refs > 1;
  view_done(io, lm);
  if (n && !msg->gap) hb_metric_add(HB_M_DELIVERIES, (long long)n);
  return n;
}

bool hb_publish_send(hb_conn *c, hb_msg *msg) {
  lmsg *lm = view_new(c->io, msg);
  bool ok = hb_conn_send_shared(c, &lm->sh);
  view_done(c->io, lm);
  return ok;
}

/* A delivery posted to another thread; ctx NULL: the thread is gone. */
static void deliver_job(void *ctx, void *arg) {
  if (ctx) hb_publish_deliver_local(ctx, arg);
  hb_msg_unref(arg);
}

/* Under the channel's lock (history.c): every thread gets the message in
 * offset order. The publishing thread first runs what other threads posted
 * to it before (their earlier messages), then delivers its own at once. */
static void deliver_locked(void *ud, hb_msg *m) {
  hb_io *from = ud;
  for (int i = 0; i < ioset->nio; i++) {
    hb_io *io = ioset->io[i];
    if (io == from) {
      hb_inbox_run(&io->inbox);
      hb_publish_deliver_local(io, m);
    } else {
      hb_msg_ref(m); /* owned by the job */
      hb_io_post(io, deliver_job, m);
    }
  }
}

typedef struct {
  const hb_pub *p;
} build_ctx;

/* The frame, once the channel has given the position. */
static hb_msg *build(void *ud, hb_pos pos) {
  const hb_pub *p = ((build_ctx *)ud)->p;
  hb_strbuf tail = HB_STRBUF_INIT;
  hb_smsg_event_close(&tail, pos.offset);
  hb_msg *m = hb_msg_new_parts(&p->chan, p->name, p->name_len, p->prefix, p->prefix_len, tail.buf, tail.len);
  hb_strbuf_free(&tail);
  m->sent_ms = p->sent_ms;
  return m;
}

hb_pos hb_publish_record(hb_io *from, const hb_pub *p) {
  build_ctx bc = {p};
  hb_msg *m = hb_history_append(&p->chan, build, &bc, deliver_locked, from);
  hb_pos pos = {m->epoch, m->offset};
  hb_msg_unref(m);
  return pos;
}

/* --- from a broker's own thread ------------------------------------------------ */

/* The I/O threads' inboxes are destroyed after hb_publish_quiesce(), so a
 * post from another thread counts itself in first. */
static bool remote_enter(void) {
  atomic_fetch_add(&remote_inflight, 1);
  if (!atomic_load(&remote_closed)) return true;
  atomic_fetch_sub(&remote_inflight, 1);
  return false;
}

static void remote_leave(void) { atomic_fetch_sub(&remote_inflight, 1); }

bool hb_publish_deliver_all(hb_msg *m) {
  if (!remote_enter()) return false;
  for (int i = 0; i < ioset->nio; i++) {
    hb_msg_ref(m); /* owned by the job */
    hb_io_post(ioset->io[i], deliver_job, m);
  }
  remote_leave();
  return true;
}

bool hb_publish_post(hb_io *io, hb_job_fn fn, void *arg) {
  if (!remote_enter()) return false;
  hb_io_post(io, fn, arg);
  remote_leave();
  return true;
}

/* --- publishing ------------------------------------------------------------------ */

static bool publish_once(hb_io *io, const hb_publish_req *r, int64_t now, hb_publish_result *out,
                         hb_publish_done_fn done, void *ctx) {
  hb_io_new_id(io, out->message_id);
  hb_pub p;
  hb_chan_key_make(&p.chan, r->scope, &r->room->org, &r->room->plugin, &r->room->event, &r->room->session);
  p.name = r->event_name;
  p.name_len = r->event_name_len;
  p.sent_ms = now;
  p.message_id = out->message_id;
  p.idem_key = broker->ops->idempotency ? r->idem_key : NULL;
  p.idem_key_len = p.idem_key ? r->idem_key_len : 0;
  /* Serialise once; every subscriber on every thread shares this frame. */
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_smsg_event_open(&sb, r->event_name, r->event_name_len, r->data, r->data_len, r->scope, out->message_id, now);
  p.prefix = sb.buf;
  p.prefix_len = sb.len;
  bool now_done = broker->ops->publish(broker, io, &p, out, done, ctx);
  hb_strbuf_free(&sb);
  return now_done;
}

bool hb_publish_start(hb_io *io, const hb_publish_req *r, hb_publish_result *out, hb_publish_done_fn done,
                      void *ctx) {
  int64_t now = hb_wall_ms();
  memset(out, 0, sizeof *out);
  /* Keys are the broker's (Redis: shared by every node), or this node's. */
  if (!r->idem_key || broker->ops->idempotency) return publish_once(io, r, now, out, done, ctx);
  if (hb_idem_lock_find(&r->room->plugin, r->idem_key, r->idem_key_len, now, out)) {
    out->replayed = true;
    hb_metric_inc(HB_M_IDEMPOTENT_REPLAYS);
    return true;
  }
  /* A broker without keys of its own answers at once (local). */
  publish_once(io, r, now, out, done, ctx);
  hb_idem_store_unlock(&r->room->plugin, r->idem_key, r->idem_key_len, now, out);
  return true;
}
