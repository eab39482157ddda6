/* io.c - I/O threads: one loop, listener, inbox and room index each. */
#include "hubbub/io.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hubbub/alloc.h"
#include "hubbub/auth.h"
#include "hubbub/conn.h"
#include "hubbub/limits.h"
#include "hubbub/log.h"
#include "hubbub/store.h"

/* How often each thread sweeps its connections for deadlines and pings. */
#define HB_SWEEP_INTERVAL_MS 250

static void on_interest(void *ud, const hb_chan_key *chan, bool on) {
  hb_io *io = ud;
  hb_broker *b = io->srv->broker;
  if (b && b->ops->interest) b->ops->interest(b, io, chan, on);
}

static void deliver_one(hb_conn *c, void *ud) { hb_conn_send_msg(c, ud); }

hb_store *hb_io_store(hb_io *io) {
  if (!io->store) {
    char err[256];
    if (hb_store_open(&io->store, io->srv->cfg.data_dir, err, sizeof err) != 0) {
      hb_warn("thread %d: cannot open the store: %s", io->id, err);
      io->store = NULL;
    }
  }
  return io->store;
}

bool hb_io_auth_refresh(hb_io *io) {
  uint64_t now = hb_io_now_ms(io);
  if (io->auth_checked_ms && now - io->auth_checked_ms < HB_AUTH_MISS_RECHECK_MS) return false;
  io->auth_checked_ms = now;
  hb_store *s = hb_io_store(io);
  int64_t v;
  if (!s || hb_store_data_version(s, &v) != 0 || v == io->auth_version) return false;
  io->auth_version = v;
  return hb_auth_reload(s) == 0;
}

void hb_io_new_id(hb_io *io, char out[HB_UUID_STR_BYTES]) {
  hb_uuid u = io->id_base;
  uint64_t n = ++io->id_counter;
  /* The counter replaces the last 8 bytes (all random bits in v4); the
   * version and variant bits stay those of the base. */
  for (int i = 0; i < 8; i++) u.b[8 + i] ^= (uint8_t)(n >> (8 * (7 - i)));
  u.b[8] = (uint8_t)((u.b[8] & 0x3f) | 0x80);
  hb_uuid_format(&u, out);
}

void hb_io_lmsg_unref(hb_io *io, hb_lmsg *lm) {
  if (--lm->refs > 0) return;
  hb_msg_unref(lm->msg);
  lm->next_free = io->lmsg_free;
  io->lmsg_free = lm;
}

size_t hb_io_deliver_local(hb_io *io, hb_msg *msg) {
  hb_lmsg *lm = io->lmsg_free;
  if (lm) io->lmsg_free = lm->next_free;
  else lm = hb_malloc(sizeof *lm);
  hb_msg_ref(msg);
  lm->msg = msg;
  lm->refs = 1; /* held by this function until the fan-out is done */
  size_t n = hb_index_foreach(&io->index, &msg->chan, msg->event_name, msg->event_name_len,
                              deliver_one, lm);
  hb_io_lmsg_unref(io, lm);
  if (n) atomic_fetch_add_explicit(&io->srv->metrics.deliveries, (long long)n, memory_order_relaxed);
  return n;
}

void hb_io_post(hb_io *io, hb_msg *msg) {
  hb_msg_ref(msg);
  pthread_mutex_lock(&io->inbox_lock);
  if (io->inbox_len == io->inbox_cap) {
    io->inbox_cap = io->inbox_cap ? io->inbox_cap * 2 : 64;
    io->inbox = hb_realloc(io->inbox, io->inbox_cap * sizeof *io->inbox);
  }
  io->inbox[io->inbox_len++] = msg;
  pthread_mutex_unlock(&io->inbox_lock);
  uv_async_send(&io->wake); /* coalesced by libuv: one wake-up for a burst */
}

void hb_io_deliver_all(hb_server *srv, hb_io *from, hb_msg *msg) {
  for (int i = 0; i < srv->nio; i++) {
    hb_io *io = srv->io[i];
    if (io == from)
      hb_io_deliver_local(io, msg);
    else
      hb_io_post(io, msg);
  }
}

static void close_cb_noop(uv_handle_t *h) { (void)h; }

static void begin_stop(hb_io *io) {
  if (io->stopping) return;
  io->stopping = true;
  io->stop_deadline_ms = hb_io_now_ms(io) + HB_SHUTDOWN_GRACE_MS;
  uv_timer_stop(&io->accept_retry);
  if (io->listening) {
    uv_close((uv_handle_t *)&io->listener, close_cb_noop);
    io->listening = false;
  }
  hb_list *it, *tmp;
  hb_list_foreach_safe(it, tmp, &io->conns) {
    hb_conn *c = hb_container_of(it, hb_conn, link);
    if (c->state == HB_CONN_WS)
      hb_conn_ws_close(c, 1001, "server shutting down", false);
    else if (c->state == HB_CONN_HTTP && !c->req)
      hb_conn_close(c, true); /* idle keep-alive: nothing in flight */
    /* An HTTP request in flight finishes; its response says Connection: close. */
  }
}

static void finish_stop(hb_io *io) {
  uv_close((uv_handle_t *)&io->wake, close_cb_noop);
  uv_close((uv_handle_t *)&io->flush, close_cb_noop);
  uv_close((uv_handle_t *)&io->tick, close_cb_noop);
  uv_close((uv_handle_t *)&io->flush_timer, close_cb_noop);
  uv_close((uv_handle_t *)&io->accept_retry, close_cb_noop);
  uv_close((uv_handle_t *)&io->sweeping, close_cb_noop);
}

static void on_wake(uv_async_t *h) {
  hb_io *io = h->data;
  pthread_mutex_lock(&io->inbox_lock);
  hb_msg **batch = io->inbox;
  size_t n = io->inbox_len;
  io->inbox = NULL;
  io->inbox_len = io->inbox_cap = 0;
  pthread_mutex_unlock(&io->inbox_lock);
  for (size_t i = 0; i < n; i++) {
    hb_io_deliver_local(io, batch[i]);
    hb_msg_unref(batch[i]);
  }
  hb_free(batch);
  if (atomic_load(&io->stop_requested)) begin_stop(io);
}

/* The idle handle only keeps the poll from sleeping; on_flush does the work. */
static void on_sweeping(uv_idle_t *h) { (void)h; }

/*
 * A fan-out flush takes the connections waiting for the window (io->later)
 * and writes them HB_FLUSH_CHUNK_CONNS per loop turn, reading in between.
 * With 5,000 subscribers a flush is 5,000 system calls, ~40 ms on a loopback
 * VM: written in one go, a message published meanwhile waited for the whole
 * flush to end before it was even read, then for a whole flush of its own.
 * Read between chunks, it joins the rings of the connections this flush has
 * not reached yet and goes out with them. A connection already written goes
 * back on io->later for the next flush (mark_later), so each is written at
 * most once per flush.
 */
static void flush_sweep(hb_io *io) {
  hb_metrics *m = &io->srv->metrics;
  if (hb_list_empty(&io->sweep) && hb_list_empty(&io->later)) {
    /* the window's timer found nothing left: its connections were written
     * with a reply or closed meanwhile */
    uv_idle_stop(&io->sweeping);
    return;
  }
  if (hb_list_empty(&io->sweep)) {
    io->later_flushed_ms = hb_io_now_ms(io);
    hb_list_splice_tail(&io->sweep, &io->later);
    atomic_fetch_add_explicit(&m->fanout_flushes, 1, memory_order_relaxed);
  }
  atomic_fetch_add_explicit(&m->fanout_flush_turns, 1, memory_order_relaxed);
  hb_conn_flush_list(&io->sweep, io->stopping ? SIZE_MAX : HB_FLUSH_CHUNK_CONNS);
  if (hb_list_empty(&io->sweep))
    uv_idle_stop(&io->sweeping);
  else if (!uv_is_active((uv_handle_t *)&io->sweeping))
    uv_idle_start(&io->sweeping, on_sweeping);
}

static void on_flush_timer(uv_timer_t *t) {
  hb_io *io = t->data;
  if (hb_list_empty(&io->sweep)) flush_sweep(io); /* else on_flush carries it on */
}

/* End of a loop turn (uv_check). Replies are written now. Fan-out output is
 * written now too unless the thread flushed fan-out less than
 * flush_interval_ms ago: then it waits for the rest of that window, and
 * everything that arrives meanwhile goes out in the same writes. A quiet
 * room pays no latency; a busy one pays at most the window. */
static void on_flush(uv_check_t *h) {
  hb_io *io = h->data;
  hb_conn_flush_list(&io->dirty, SIZE_MAX);
  if (!hb_list_empty(&io->sweep)) {
    flush_sweep(io); /* the next chunk of the flush in progress */
    return;
  }
  if (hb_list_empty(&io->later)) return;
  uint64_t window = (uint64_t)io->srv->cfg.flush_interval_ms;
  uv_update_time(&io->loop); /* the poll may have slept: judge the window on the clock */
  uint64_t now = hb_io_now_ms(io);
  if (window == 0 || io->stopping || now - io->later_flushed_ms >= window) {
    uv_timer_stop(&io->flush_timer);
    flush_sweep(io);
  } else if (!uv_is_active((uv_handle_t *)&io->flush_timer)) {
    uv_timer_start(&io->flush_timer, on_flush_timer, io->later_flushed_ms + window - now, 0);
  }
}

static void on_tick(uv_timer_t *t) {
  hb_io *io = t->data;
  uint64_t now = hb_io_now_ms(io);
  hb_conn_sweep(io, now);
  if (io->stopping) {
    if (now >= io->stop_deadline_ms) {
      hb_list *it, *tmp;
      hb_list_foreach_safe(it, tmp, &io->conns) hb_conn_close(hb_container_of(it, hb_conn, link), false);
    }
    if (hb_list_empty(&io->conns)) finish_stop(io);
  }
}

static int make_listener(const char *host, int port, int *bound_port);
static void on_connection(uv_stream_t *listener, int status);
static void on_accept_retry(uv_timer_t *t);

/* Serve the bound socket `fd` as this thread's listener. On failure the
 * handle may be initialised: the caller closes it. */
static int listen_on(hb_io *io, int fd) {
  int r;
  uv_tcp_init(&io->loop, &io->listener);
  io->listener.data = io;
  if ((r = uv_tcp_open(&io->listener, fd)) != 0) {
    close(fd);
    return r;
  }
  if ((r = uv_listen((uv_stream_t *)&io->listener, HB_LISTEN_BACKLOG, on_connection)) != 0) return r;
  io->listening = true;
  return 0;
}

static void listener_closed_for_retry(uv_handle_t *h) {
  hb_io *io = h->data;
  if (!io->stopping) uv_timer_start(&io->accept_retry, on_accept_retry, HB_ACCEPT_RETRY_MS, 0);
}

static void on_accept_retry(uv_timer_t *t) {
  hb_io *io = t->data;
  if (io->stopping || io->listening) return;
  int bound = 0;
  int fd = make_listener(io->srv->cfg.host, io->srv->port, &bound);
  if (fd < 0) { /* still out of descriptors */
    uv_timer_start(&io->accept_retry, on_accept_retry, HB_ACCEPT_RETRY_MS, 0);
    return;
  }
  if (listen_on(io, fd) != 0) {
    uv_close((uv_handle_t *)&io->listener, listener_closed_for_retry);
    return;
  }
  hb_warn("thread %d accepts connections again", io->id);
}

static void on_connection(uv_stream_t *listener, int status) {
  hb_io *io = listener->data;
  if (status == UV_EMFILE || status == UV_ENFILE) {
    /* libuv retries accept() in a loop while it fails this way, and the
     * thread would spin there until a descriptor frees up. Closing the
     * listener ends that loop (its backlog is reset; clients retry); the
     * established connections keep being served, and the thread listens
     * again as soon as it can open a socket. Other threads' listeners
     * (SO_REUSEPORT) keep the port open meanwhile if they can. */
    if (io->listening) {
      hb_warn("thread %d is out of file descriptors: not accepting for %d ms", io->id, HB_ACCEPT_RETRY_MS);
      io->listening = false;
      uv_close((uv_handle_t *)listener, listener_closed_for_retry);
    }
    return;
  }
  if (status < 0) {
    hb_warn("accept on thread %d: %s", io->id, uv_strerror(status));
    return;
  }
  hb_conn_accept(io, listener);
}

/* Each thread gets its own socket bound with SO_REUSEPORT, so the kernel
 * spreads new connections across threads without a shared accept lock.
 * libuv 1.44 has no flag for it, hence the raw socket and uv_tcp_open(). */
static int make_listener(const char *host, int port, int *bound_port) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  int family = strchr(host, ':') ? AF_INET6 : AF_INET;
  if (family == AF_INET6) {
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0) return -EINVAL;
  } else if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0) {
    return -EINVAL;
  }
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  /* Accepted sockets inherit TCP_NODELAY from the listener on Linux
   * (test/unit/test_net.c checks it), which saves a setsockopt per
   * connection: every write is a whole frame or response, never worth
   * delaying for Nagle. */
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  socklen_t slen = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  if (bind(fd, (struct sockaddr *)&ss, slen) != 0 || listen(fd, HB_LISTEN_BACKLOG) != 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  if (getsockname(fd, (struct sockaddr *)&ss, &slen) == 0)
    *bound_port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                           : ((struct sockaddr_in *)&ss)->sin_port);
  return fd;
}

static void io_thread_main(void *arg) {
  hb_io *io = arg;
  uv_run(&io->loop, UV_RUN_DEFAULT);
}

static int io_init(hb_server *srv, hb_io *io, int index, int fd) {
  io->srv = srv;
  io->id = index;
  hb_uuid_v4(&io->id_base);
  hb_list_init(&io->conns);
  hb_list_init(&io->dirty);
  hb_list_init(&io->later);
  hb_list_init(&io->sweep);
  hb_index_init(&io->index, on_interest, io);
  pthread_mutex_init(&io->inbox_lock, NULL);
  atomic_init(&io->stop_requested, false);
  int r = uv_loop_init(&io->loop);
  if (r) return r;
  uv_async_init(&io->loop, &io->wake, on_wake);
  io->wake.data = io;
  uv_check_init(&io->loop, &io->flush);
  io->flush.data = io;
  uv_check_start(&io->flush, on_flush);
  uv_timer_init(&io->loop, &io->flush_timer);
  io->flush_timer.data = io;
  uv_idle_init(&io->loop, &io->sweeping);
  io->sweeping.data = io;
  uv_timer_init(&io->loop, &io->accept_retry);
  io->accept_retry.data = io;
  uv_timer_init(&io->loop, &io->tick);
  io->tick.data = io;
  uv_timer_start(&io->tick, on_tick, HB_SWEEP_INTERVAL_MS, HB_SWEEP_INTERVAL_MS);
  return listen_on(io, fd);
}

int hb_io_start_all(hb_server *srv) {
  int port = srv->cfg.port;
  srv->io = hb_calloc((size_t)srv->nio, sizeof *srv->io);
  for (int i = 0; i < srv->nio; i++) {
    int bound = port;
    int fd = make_listener(srv->cfg.host, port, &bound);
    if (fd < 0) {
      hb_error_log("cannot listen on %s:%d: %s", srv->cfg.host, port, strerror(-fd));
      return -1;
    }
    port = bound; /* with port 0, every further thread joins the port the first got */
    srv->io[i] = hb_calloc(1, sizeof(hb_io));
    int r = io_init(srv, srv->io[i], i, fd);
    if (r) {
      hb_error_log("thread %d: %s", i, uv_strerror(r));
      return -1;
    }
  }
  srv->port = port;
  for (int i = 0; i < srv->nio; i++) {
    if (uv_thread_create(&srv->io[i]->thread, io_thread_main, srv->io[i]) != 0) return -1;
  }
  return 0;
}

void hb_io_request_stop_all(hb_server *srv) {
  for (int i = 0; i < srv->nio; i++) {
    atomic_store(&srv->io[i]->stop_requested, true);
    uv_async_send(&srv->io[i]->wake);
  }
}

void hb_io_join_all(hb_server *srv) {
  for (int i = 0; i < srv->nio; i++) {
    hb_io *io = srv->io[i];
    uv_thread_join(&io->thread);
    for (size_t k = 0; k < io->inbox_len; k++) hb_msg_unref(io->inbox[k]);
    hb_free(io->inbox);
    hb_index_destroy(&io->index);
    if (io->store) hb_store_close(io->store);
    while (io->lmsg_free) {
      hb_lmsg *lm = io->lmsg_free;
      io->lmsg_free = lm->next_free;
      hb_free(lm);
    }
    hb_conn_rings_free(io);
    while (io->wreq_free) {
      uv_write_t *w = io->wreq_free;
      io->wreq_free = w->data;
      hb_free(w);
    }
    if (uv_loop_close(&io->loop) != 0) hb_warn("thread %d: loop closed with live handles", i);
    pthread_mutex_destroy(&io->inbox_lock);
    hb_free(io);
  }
  hb_free(srv->io);
  srv->io = NULL;
}
