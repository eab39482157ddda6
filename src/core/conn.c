/* conn.c - connection lifecycle, the corked output queue, deadlines (conn.h). */
#include "hubbub/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "hubbub/alloc.h"
#include "hubbub/hash.h"
#include "hubbub/io.h"
#include "hubbub/limits.h"
#include "hubbub/log.h"
#include "hubbub/metrics.h"
#include "hubbub/uring.h"

/* --- output queue -------------------------------------------------------- */

/* Ring capacities are powers of two (they start at HB_OUT_RING_INITIAL,
 * double, and are cut back to HB_OUT_RING_KEEP), so an index wraps with a
 * mask instead of a division: three per delivery on the fan-out path. */
_Static_assert((HB_OUT_RING_INITIAL & (HB_OUT_RING_INITIAL - 1)) == 0, "ring size: power of two");
_Static_assert((HB_OUT_RING_KEEP & (HB_OUT_RING_KEEP - 1)) == 0, "ring size: power of two");

static hb_out_item *out_at(hb_conn *c, uint32_t i) {
  return &c->out[(c->out_head + i) & (c->out_cap - 1)];
}

static void item_release(hb_io *io, hb_out_item *it) {
  if (it->kind == HB_OUT_SHARED) {
    hb_shared *s = it->u.shared;
    if (--s->refs == 0) s->release(s, io);
  } else if (it->kind == HB_OUT_OWNED) {
    hb_free(it->u.own);
  }
}

static const char *item_ptr(const hb_out_item *it) {
  switch (it->kind) {
  case HB_OUT_SHARED: return it->u.shared->bytes;
  case HB_OUT_OWNED: return it->u.own;
  default: return it->u.stat;
  }
}

/* Output to write at the end of this loop turn. A connection held by the
 * flush window moves to the end-of-turn list with all it has queued. */
static void mark_dirty(hb_conn *c) {
  if (c->state == HB_CONN_CLOSED || (c->dirty && !c->later)) return;
  if (c->later) hb_list_remove(&c->dirty_link);
  c->dirty = true;
  c->later = false;
  hb_list_insert_tail(&c->io->dirty, &c->dirty_link);
}

/* Fan-out output: may wait for the thread's flush window (io.c). */
static void mark_later(hb_conn *c) {
  if (c->state == HB_CONN_CLOSED || c->dirty) return;
  c->dirty = true;
  c->later = true;
  hb_list_insert_tail(&c->io->later, &c->dirty_link);
}

/* --- spare rings: a stack per I/O thread, linked through the rings -------- */

static hb_out_item *ring_take(hb_io *io) {
  void *r = io->ring_free;
  if (!r) return hb_malloc(HB_OUT_RING_KEEP * sizeof(hb_out_item));
  memcpy(&io->ring_free, r, sizeof(void *));
  if (--io->ring_free_n < io->ring_free_low) io->ring_free_low = io->ring_free_n;
  return r;
}

static void ring_give(hb_io *io, hb_out_item *r) {
  if (io->ring_free_n >= HB_OUT_RING_CACHE_MAX) {
    hb_free(r);
    return;
  }
  memcpy(r, &io->ring_free, sizeof(void *));
  io->ring_free = r;
  io->ring_free_n++;
}

/* Free the rings that stayed on the stack for a whole sweep interval. */
static void ring_trim(hb_io *io) {
  for (uint32_t n = io->ring_free_low; n > 0 && io->ring_free; n--) {
    void *r = io->ring_free;
    memcpy(&io->ring_free, r, sizeof(void *));
    io->ring_free_n--;
    hb_free(r);
  }
  io->ring_free_low = io->ring_free_n;
}

/* A ring of `cap` slots: the common size comes from the stack. */
static hb_out_item *ring_new(hb_io *io, uint32_t cap) {
  return cap == HB_OUT_RING_KEEP ? ring_take(io) : hb_malloc(cap * sizeof(hb_out_item));
}

static void ring_drop(hb_io *io, hb_out_item *r, uint32_t cap) {
  if (r && cap == HB_OUT_RING_KEEP)
    ring_give(io, r);
  else
    hb_free(r);
}

static hb_out_item *out_push(hb_conn *c) {
  if (!c->out) {
    /* out_cap is kept from the last burst (bounded by out_release) */
    if (!c->out_cap) c->out_cap = HB_OUT_RING_INITIAL;
    c->out = ring_new(c->io, c->out_cap);
    c->out_head = 0;
  } else if (c->out_count == c->out_cap) {
    /* Grow the ring and unwrap it; amortised, so no allocation per frame. */
    uint32_t ncap = c->out_cap * 2; /* a ring in use has a capacity */
    hb_out_item *n = ring_new(c->io, ncap);
    for (uint32_t i = 0; i < c->out_count; i++) n[i] = *out_at(c, i);
    ring_drop(c->io, c->out, c->out_cap);
    c->out = n;
    c->out_cap = ncap;
    c->out_head = 0;
  }
  hb_out_item *it = out_at(c, c->out_count++);
  memset(it, 0, sizeof *it);
  return it;
}

/* An idle connection holds no ring: it is given back when it empties and
 * taken again by the next send (rings of the common busy size from the
 * thread's stack, others from malloc). The capacity is remembered,
 * up to HB_OUT_RING_KEEP slots, so a busy subscriber does not regrow it
 * from the minimum on every turn. */
static void out_release(hb_conn *c) {
  if (c->out_count > 0 || !c->out) return;
  ring_drop(c->io, c->out, c->out_cap);
  c->out = NULL;
  c->out_head = 0;
  if (c->out_cap > HB_OUT_RING_KEEP) c->out_cap = HB_OUT_RING_KEEP;
}

/* Drop `n` written bytes from the head of the queue. */
static void out_consume(hb_conn *c, size_t n) {
  c->out_bytes -= n;
  if (c->out_bytes <= c->io->set->cfg->max_output_bytes) c->over_since_ms = 0;
  while (n > 0 && c->out_count > 0) {
    hb_out_item *it = out_at(c, 0);
    size_t left = it->len - it->off;
    if (n < left) {
      it->off += (uint32_t)n;
      return;
    }
    n -= left;
    item_release(c->io, it);
    c->out_head = (c->out_head + 1) & (c->out_cap - 1);
    c->out_count--;
  }
  out_release(c);
}

static int gather(hb_conn *c, uv_buf_t *iov, size_t *total) {
  int n = 0;
  *total = 0;
  for (uint32_t i = 0; i < c->out_count && n < HB_MAX_IOV; i++) {
    hb_out_item *it = out_at(c, i);
    iov[n++] = uv_buf_init((char *)item_ptr(it) + it->off, it->len - it->off);
    *total += it->len - it->off;
  }
  return n;
}

/* Hand what is queued to the kernel now, without closing or starting an
 * asynchronous write (safe in the middle of a fan-out). Returns a negative
 * libuv error when the socket failed; the caller decides when to close. */
static int try_drain(hb_conn *c) {
  uv_buf_t iov[HB_MAX_IOV];
  size_t total;
  while (!c->writing && c->out_count > 0) {
    int n = gather(c, iov, &total);
    int r = uv_try_write((uv_stream_t *)&c->tcp, iov, (unsigned)n);
    if (r == UV_EAGAIN || r == UV_ENOSYS) return 0;
    if (r < 0) return r;
    out_consume(c, (size_t)r);
    if ((size_t)r < total) return 0;
  }
  return 0;
}

bool hb_conn_send_shared(hb_conn *c, hb_shared *s) {
  if (c->state != HB_CONN_OPEN) return false;
  size_t cap = c->io->set->cfg->max_output_bytes;
  /* The cap is on what the peer has not taken, not on what this loop turn
   * queued: a burst to a healthy reader goes to the kernel first. */
  if (c->out_bytes + s->len > cap) try_drain(c);
  size_t after = c->out_bytes + s->len;
  uint64_t now = hb_io_now_ms(c->io);
  if (after > cap && !c->over_since_ms) c->over_since_ms = now;
  if (after > cap * HB_OUTPUT_HARD_FACTOR ||
      (after > cap && now - c->over_since_ms > HB_SLOW_CONSUMER_GRACE_MS)) {
    /* A subscriber that does not read is cut off rather than buffered
     * forever (Redis client-output-buffer-limit). The handler queues the
     * close; it happens at the end-of-turn flush, never mid fan-out. */
    c->h->on_overflow(c);
    return false;
  }
  /* A frame that begins a new write (nothing queued for the connection
   * yet) within the window after its previous frame: that write would not
   * happen if the thread held fan-out (window.h). */
  if (!c->linger) {
    if (!c->dirty && (uint32_t)now - c->u32.last_fanout_ms < (uint32_t)c->io->set->cfg->flush_interval_ms)
      c->io->mergeable++;
    c->u32.last_fanout_ms = (uint32_t)now;
  }
  s->refs++;
  hb_out_item *it = out_push(c);
  it->kind = HB_OUT_SHARED;
  it->u.shared = s;
  it->len = s->len;
  c->out_bytes += s->len;
  mark_later(c);
  return true;
}

/* A reply, an error, a static file: written at the end of this loop turn. */
static void queue_now(hb_conn *c, hb_out_kind kind, const char *p, size_t len) {
  hb_out_item *it = out_push(c);
  it->kind = kind;
  if (kind == HB_OUT_OWNED) it->u.own = (char *)p;
  else it->u.stat = p;
  it->len = (uint32_t)len;
  c->out_bytes += len;
  mark_dirty(c);
}

void hb_conn_send_owned(hb_conn *c, char *p, size_t len) {
  if (c->state == HB_CONN_CLOSED || len == 0) hb_free(p);
  else queue_now(c, HB_OUT_OWNED, p, len);
}

void hb_conn_send_copy(hb_conn *c, const void *p, size_t len) {
  char *b = hb_malloc(len);
  memcpy(b, p, len);
  hb_conn_send_owned(c, b, len);
}

void hb_conn_send_static(hb_conn *c, const char *p, size_t len) {
  if (c->state != HB_CONN_CLOSED && len > 0) queue_now(c, HB_OUT_STATIC, p, len);
}

/* Keep what is already being written; drop the rest of the backlog. */
void hb_conn_drop_pending(hb_conn *c) {
  size_t keep_bytes = c->writing ? c->inflight_bytes : 0;
  uint32_t keep = 0;
  size_t acc = 0;
  while (keep < c->out_count) {
    hb_out_item *it = out_at(c, keep);
    if (acc >= keep_bytes && it->off == 0) break;
    acc += it->len - it->off;
    keep++;
  }
  for (uint32_t i = keep; i < c->out_count; i++) {
    hb_out_item *it = out_at(c, i);
    c->out_bytes -= it->len - it->off;
    item_release(c->io, it);
  }
  c->out_count = keep;
  out_release(c);
}

void hb_conn_peer_name(hb_conn *c, char out[HB_PEER_NAME_BYTES]) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  char ip[INET6_ADDRSTRLEN];
  snprintf(out, HB_PEER_NAME_BYTES, "?");
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0) return;
  if (ss.ss_family == AF_INET && uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip) == 0)
    snprintf(out, HB_PEER_NAME_BYTES, "%s:%u", ip, ntohs(((struct sockaddr_in *)&ss)->sin_port));
  else if (ss.ss_family == AF_INET6 && uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip) == 0)
    snprintf(out, HB_PEER_NAME_BYTES, "[%s]:%u", ip, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
}

bool hb_conn_overdue(const hb_conn *c, uint64_t now_ms) {
  return c->over_since_ms && now_ms - c->over_since_ms > HB_SLOW_CONSUMER_GRACE_MS;
}

/* --- holds, pause and kept bytes --------------------------------------------- */

/* Bytes a paused connection read but did not consume: a per-thread table,
 * because few connections are ever paused at once (an HTTP request waiting
 * for Redis with more requests pipelined behind it). */
typedef struct {
  hb_conn *c; /* the key */
  hb_strbuf bytes;
  UT_hash_handle hh;
} kept_bytes;

static kept_bytes *kept_find(hb_conn *c) {
  kept_bytes *k = NULL;
  kept_bytes *head = c->io->kept;
  HASH_FIND_PTR(head, &c, k);
  return k;
}

static void kept_drop(hb_conn *c) {
  kept_bytes *k = kept_find(c);
  if (!k) return;
  kept_bytes *head = c->io->kept;
  HASH_DEL(head, k);
  c->io->kept = head;
  hb_strbuf_free(&k->bytes);
  hb_free(k);
}

bool hb_conn_hold(hb_conn *c) {
  if (c->holds >= HB_CONN_MAX_HOLDS) return false;
  c->holds++;
  return true;
}

hb_conn *hb_conn_unhold(hb_conn *c) {
  c->holds--;
  if (c->state == HB_CONN_OPEN) return c;
  if (c->free_later && c->holds == 0) hb_free(c);
  return NULL;
}

void hb_conn_pause(hb_conn *c) {
  if (c->paused || c->state == HB_CONN_CLOSED) return;
  c->paused = true;
  uv_read_stop((uv_stream_t *)&c->tcp);
}

void hb_conn_keep(hb_conn *c, const char *p, size_t len) {
  if (!len || c->state == HB_CONN_CLOSED) return;
  kept_bytes *k = kept_find(c);
  if (!k) {
    k = hb_calloc(1, sizeof *k);
    k->c = c;
    kept_bytes *head = c->io->kept;
    HASH_ADD_PTR(head, c, k);
    c->io->kept = head;
  }
  hb_strbuf_add(&k->bytes, p, len);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

void hb_conn_feed(hb_conn *c, const char *p, size_t len) {
  if (!len || c->state != HB_CONN_OPEN) return;
  if (c->paused) hb_conn_keep(c, p, len);
  else c->h->on_read(c, p, len);
}

void hb_conn_resume(hb_conn *c) {
  if (!c->paused || c->state != HB_CONN_OPEN) return;
  c->paused = false;
  /* The kept bytes first; handling them may pause the connection again
   * (another request waiting), which keeps what it did not consume anew. */
  kept_bytes *k = kept_find(c);
  if (k) {
    kept_bytes *head = c->io->kept;
    HASH_DEL(head, k);
    c->io->kept = head;
    c->h->on_read(c, k->bytes.buf, k->bytes.len);
    hb_strbuf_free(&k->bytes);
    hb_free(k);
  }
  if (c->state == HB_CONN_OPEN && !c->paused) uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* --- closing ------------------------------------------------------------- */

static void on_close(uv_handle_t *h) {
  hb_conn *c = h->data;
  for (uint32_t i = 0; i < c->out_count; i++) item_release(c->io, out_at(c, i));
  ring_drop(c->io, c->out, c->out_cap);
  c->out = NULL;
  c->out_count = 0;
  /* An answer still on its way holds the memory: the last hold frees it. */
  if (c->holds) c->free_later = true;
  else hb_free(c);
}

void hb_conn_close(hb_conn *c, bool flush) {
  if (c->state == HB_CONN_CLOSED) return;
  if (flush && c->out_count > 0) {
    c->state = HB_CONN_CLOSING;
    c->close_after_flush = true;
    uint64_t dl = hb_io_now_ms(c->io) + HB_CLOSE_FLUSH_TIMEOUT_MS;
    if (!c->deadline_ms || c->deadline_ms > dl) c->deadline_ms = dl;
    mark_dirty(c);
    return;
  }
  hb_ioset *set = c->io->set;
  c->state = HB_CONN_CLOSED;
  /* The upper layer leaves everything that points at the connection now
   * (room index, timers): nothing may reach a closed connection. */
  c->h->on_close(c);
  hb_list_remove(&c->link);
  if (c->dirty) {
    hb_list_remove(&c->dirty_link);
    c->dirty = false;
    c->later = false;
  }
  c->io->nconns--;
  kept_drop(c);
  if (c->ip_counted) hb_iplimit_release(c->ip);
  if (c->counted) {
    atomic_fetch_sub_explicit(&set->open_conns, 1, memory_order_relaxed);
    hb_metric_add(HB_M_CONNECTIONS_OPEN, -1);
  }
  uv_read_stop((uv_stream_t *)&c->tcp);
  uv_close((uv_handle_t *)&c->tcp, on_close);
}

void hb_conn_close_linger(hb_conn *c, uint32_t timeout_ms, uint32_t max_bytes) {
  if (c->state == HB_CONN_CLOSED) return;
  if (!c->linger) hb_metric_inc(HB_M_LINGERING_CLOSES);
  c->linger = true;
  c->u32.linger_left = max_bytes;
  if (c->paused) {
    /* A lingering close reads (and discards) until the peer's EOF: bytes
     * kept for a request that will never be answered go now. */
    c->paused = false;
    kept_drop(c);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  }
  c->close_after_flush = true;
  c->state = HB_CONN_CLOSING;
  c->deadline_ms = hb_io_now_ms(c->io) + timeout_ms;
  mark_dirty(c); /* the flush does the half-close once the queue is empty */
}

/* --- writing ------------------------------------------------------------- */

static void conn_flush(hb_conn *c);

static uv_write_t *wreq_get(hb_io *io) {
  uv_write_t *w = io->wreq_free;
  if (w) {
    io->wreq_free = w->data;
    return w;
  }
  return hb_malloc(sizeof *w);
}

static void wreq_put(hb_io *io, uv_write_t *w) {
  /* Kept on a per-thread stack: a write request costs nothing per idle connection. */
  w->data = io->wreq_free;
  io->wreq_free = w;
}

static void on_write(uv_write_t *req, int status) {
  hb_conn *c = req->data;
  wreq_put(c->io, req);
  c->writing = false;
  if (c->state == HB_CONN_CLOSED) return; /* cancelled by uv_close; on_close frees */
  if (status < 0) {
    hb_conn_close(c, false);
    return;
  }
  out_consume(c, c->inflight_bytes);
  c->inflight_bytes = 0;
  conn_flush(c);
}

static void on_shutdown(uv_shutdown_t *req, int status) { hb_free(req); }

/* One vectored write for everything queued this turn: try it synchronously
 * (no allocation, no callback); hand what the socket did not take to
 * uv_write, and wait for it before writing more. */
static void conn_flush(hb_conn *c) {
  uv_buf_t iov[HB_MAX_IOV];
  size_t total;
  if (!c->writing && c->out_count > 0 && c->state != HB_CONN_CLOSED) {
    if (try_drain(c) < 0) {
      hb_conn_close(c, false);
      return;
    }
    if (c->out_count > 0) {
      int n = gather(c, iov, &total);
      uv_write_t *w = wreq_get(c->io);
      w->data = c;
      if (uv_write(w, (uv_stream_t *)&c->tcp, iov, (unsigned)n, on_write) != 0) {
        wreq_put(c->io, w);
        hb_conn_close(c, false);
        return;
      }
      c->writing = true;
      c->inflight_bytes = (uint32_t)total;
      return;
    }
  }
  if (c->out_count == 0 && c->close_after_flush && c->state != HB_CONN_CLOSED) {
    if (!c->linger) {
      hb_conn_close(c, false);
    } else if (!c->shut) {
      /* Half-close and keep reading (discarding, on_read below) until the
       * peer closes or the deadline: see hb_conn_close_linger. */
      c->shut = true;
      uv_shutdown_t *req = hb_malloc(sizeof *req);
      req->data = c;
      if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        hb_free(req);
        hb_conn_close(c, false);
      }
    }
  }
}

/* --- batched sends (io_uring) ---------------------------------------------- */

/* gather() fills uv_buf_t; io_uring takes struct iovec: the same layout on
 * Unix, as libuv documents (and its own writev relies on). */
_Static_assert(sizeof(uv_buf_t) == sizeof(struct iovec) && offsetof(uv_buf_t, base) == offsetof(struct iovec, iov_base) &&
                   offsetof(uv_buf_t, len) == offsetof(struct iovec, iov_len),
               "uv_buf_t is a struct iovec");

/* A send of the flush came back (uring.h): consume what went and finish the
 * connection's flush the usual way (the rest, if any, through writev and
 * uv_write; a close after the flush). */
static void uring_done(void *tag, int res) {
  hb_conn *c = tag;
  c->writing = false;
  c->inflight_bytes = 0;
  if (c->state == HB_CONN_CLOSED) return; /* closed meanwhile: on_close releases the queue */
  if (res >= 0) {
    out_consume(c, (size_t)res);
  } else if (res != -EAGAIN && res != HB_URING_NOT_SENT) {
    hb_conn_close(c, false); /* the socket failed (EPIPE, ECONNRESET, ...) */
    return;
  }
  conn_flush(c);
}

void hb_conn_flush_submit(hb_io *io) {
  hb_uring *u = io->uring;
  if (!u || hb_uring_queued(u) == 0) return;
  unsigned n = hb_uring_queued(u);
  hb_metric_inc(HB_M_URING_SUBMITS);
  hb_metric_add(HB_M_URING_SENDS, n);
  hb_uring_submit(u, uring_done);
  if (!hb_uring_usable(u)) {
    hb_warn("thread %d: io_uring submission failed: writing with writev from now on", io->id);
    hb_uring_free(u);
    io->uring = NULL;
    hb_metric_add(HB_M_URING_THREADS, -1);
  }
}

/* Queue the connection's output as one send of the thread's next batch.
 * False when it does not go that way (no ring, nothing to write, a write
 * in flight, closed): conn_flush handles it. */
static bool uring_queue(hb_conn *c) {
  hb_uring *u = c->io->uring;
  uv_os_fd_t fd;
  if (!u || c->writing || c->out_count == 0 || c->state == HB_CONN_CLOSED ||
      uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
    return false;
  if (hb_uring_full(u)) hb_conn_flush_submit(c->io);
  if (!c->io->uring) return false; /* that submission broke the ring */
  uv_buf_t iov[HB_MAX_IOV];
  size_t total;
  int n = gather(c, iov, &total);
  hb_uring_queue(u, fd, (const struct iovec *)iov, n, c);
  /* Until its result nothing else writes it, and hb_conn_drop_pending keeps
   * what the send carries. */
  c->writing = true;
  c->inflight_bytes = (uint32_t)total;
  return true;
}

void hb_conn_flush_list(hb_list *list, size_t max) {
  for (; max > 0 && !hb_list_empty(list); max--) {
    hb_conn *c = hb_container_of(list->next, hb_conn, dirty_link);
    hb_list_remove(&c->dirty_link);
    c->io->all_sends++;
    if (c->later) { /* fan-out only: what the window judges (window.h) */
      c->io->sends++;
      c->io->send_items += c->out_count;
    }
    c->dirty = false;
    c->later = false;
    if (!uring_queue(c)) conn_flush(c);
  }
}

/* --- reading ------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  hb_conn *c = h->data;
  /* One buffer per thread: every read is consumed inside on_read (the
   * handler contract), so idle connections hold none. */
  *buf = uv_buf_init(c->io->readbuf, sizeof c->io->readbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  hb_conn *c = s->data;
  if (nread == 0) return;
  if (nread < 0) {
    hb_conn_close(c, false);
    return;
  }
  if (c->state == HB_CONN_OPEN) {
    hb_conn_feed(c, buf->base, (size_t)nread);
  } else if (c->linger) {
    /* Closing: what the peer still sends is discarded, up to the budget of
     * the lingering close; past it the peer gets a reset. */
    if ((size_t)nread > c->u32.linger_left) {
      hb_metric_inc(HB_M_LINGERING_CLOSES_CUT);
      hb_conn_close(c, false);
      return;
    }
    c->u32.linger_left -= (uint32_t)nread;
  }
}

void hb_conn_set_handler(hb_conn *c, const hb_conn_handler *h) { c->h = h; }

bool hb_conn_input_waiting(hb_conn *c) {
  uv_os_fd_t fd;
  char b;
  return uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 && recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
}

hb_conn *hb_conn_new(hb_io *io) {
  hb_conn *c = hb_calloc(1, HB_CONN_EXT_OFFSET + io->set->hooks.conn_ext_bytes);
  uv_tcp_init(&io->loop, &c->tcp);
  c->tcp.data = c;
  c->io = io;
  c->h = io->set->hooks.accept_handler;
  hb_list_init(&c->dirty_link);
  hb_list_init(&c->link);
  return c;
}

void hb_conn_start(hb_conn *c) {
  hb_io *io = c->io;
  hb_ioset *set = io->set;
  const hb_config *cfg = set->cfg;
  /* TCP_NODELAY comes from the listener (io.c make_listener). */
  hb_list_insert_tail(&io->conns, &c->link);
  io->nconns++;
  c->state = HB_CONN_OPEN;
  hb_metric_inc(HB_M_CONNECTIONS_TOTAL);

  int open = atomic_fetch_add_explicit(&set->open_conns, 1, memory_order_relaxed) + 1;
  c->counted = true;
  hb_metric_inc(HB_M_CONNECTIONS_OPEN);
  hb_error refusal;
  refusal.err = HB_OK;
  if (cfg->max_connections > 0 && open > cfg->max_connections) {
    hb_error_set(&refusal, HB_E_TOO_MANY_CONNECTIONS, NULL, NULL);
  } else if (cfg->max_connections_per_ip > 0) {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len);
    hb_iplimit_key(&ss, c->ip);
    if (hb_iplimit_acquire(c->ip, cfg->max_connections_per_ip)) c->ip_counted = true;
    else hb_error_set(&refusal, HB_E_TOO_MANY_CONNECTIONS, NULL, "too many connections from this address");
  }
  if (refusal.err != HB_OK) hb_metric_inc(HB_M_CONNECTIONS_REJECTED);
  c->h->on_open(c, refusal.err != HB_OK ? &refusal : NULL);
  if (refusal.err == HB_OK && c->state == HB_CONN_OPEN)
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

void hb_conn_accept(hb_io *io, uv_stream_t *listener) {
  hb_conn *c = hb_conn_new(io);
  if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, on_close);
    return;
  }
  hb_conn_start(c);
}

/* --- the sweep ----------------------------------------------------------- */

void hb_conn_sweep(hb_io *io, uint64_t now) {
  ring_trim(io);
  hb_list *it, *tmp;
  hb_list_foreach_safe(it, tmp, &io->conns) {
    hb_conn *c = hb_container_of(it, hb_conn, link);
    if (c->state == HB_CONN_OPEN) c->h->on_sweep(c, now);
    else if (c->state == HB_CONN_CLOSING && c->deadline_ms && now >= c->deadline_ms) {
      if (c->linger) hb_metric_inc(HB_M_LINGERING_CLOSES_CUT); /* the peer neither closed nor stopped */
      hb_conn_close(c, false);
    }
  }
}

void hb_conn_shutdown_all(hb_io *io) {
  hb_list *it, *tmp;
  hb_list_foreach_safe(it, tmp, &io->conns) {
    hb_conn *c = hb_container_of(it, hb_conn, link);
    if (c->state == HB_CONN_OPEN) c->h->on_shutdown(c);
  }
}

void hb_conn_thread_free(hb_io *io) {
  io->ring_free_low = io->ring_free_n;
  ring_trim(io);
  while (io->wreq_free) {
    uv_write_t *w = io->wreq_free;
    io->wreq_free = w->data;
    hb_free(w);
  }
}
