/* io.c - I/O threads: one loop, listener, inbox and timers each (io.h). */
#include "hubbub/io.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hubbub/alloc.h"
#include "hubbub/conn.h"
#include "hubbub/limits.h"
#include "hubbub/log.h"
#include "hubbub/metrics.h"
#include "hubbub/uring.h"

void hb_io_new_id(hb_io *io, char out[HB_UUID_STR_BYTES]) {
  hb_uuid u = io->id_base;
  uint64_t n = ++io->id_counter;
  /* The counter replaces the last 8 bytes (all random bits in v4); the
   * version and variant bits stay those of the base. */
  for (int i = 0; i < 8; i++) u.b[8 + i] ^= (uint8_t)(n >> (8 * (7 - i)));
  u.b[8] = (uint8_t)((u.b[8] & 0x3f) | 0x80);
  hb_uuid_format(&u, out);
}

void hb_io_post(hb_io *io, hb_job_fn fn, void *arg) { hb_inbox_post(&io->inbox, fn, arg); }

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
  /* WebSockets close with 1001, idle keep-alive connections close, an HTTP
   * request in flight finishes (its response says Connection: close). */
  hb_conn_shutdown_all(io);
}

static void stop_job(void *ctx, void *arg) {
  if (ctx) begin_stop(ctx);
}

static void finish_stop(hb_io *io) {
  hb_inbox_close(&io->inbox, close_cb_noop);
  uv_close((uv_handle_t *)&io->flush, close_cb_noop);
  uv_close((uv_handle_t *)&io->tick, close_cb_noop);
  uv_close((uv_handle_t *)&io->flush_timer, close_cb_noop);
  uv_close((uv_handle_t *)&io->accept_retry, close_cb_noop);
  uv_close((uv_handle_t *)&io->sweeping, close_cb_noop);
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
  if (hb_list_empty(&io->sweep) && hb_list_empty(&io->later)) {
    /* the window's timer found nothing left: its connections were written
     * with a reply or closed meanwhile */
    uv_idle_stop(&io->sweeping);
    return;
  }
  if (hb_list_empty(&io->sweep)) {
    io->later_flushed_ms = hb_io_now_ms(io);
    hb_list_splice_tail(&io->sweep, &io->later);
    hb_metric_inc(HB_M_FANOUT_FLUSHES);
  }
  hb_metric_inc(HB_M_FANOUT_FLUSH_TURNS);
  hb_conn_flush_list(&io->sweep, io->stopping ? SIZE_MAX : HB_FLUSH_CHUNK_CONNS);
  if (hb_list_empty(&io->sweep)) {
    /* the pass is over: how long it took decides whether a longer window
     * would merge more (window.h) */
    uint64_t pass_ms = hb_io_now_ms(io) - io->later_flushed_ms;
    if (pass_ms > io->pass_ms) io->pass_ms = pass_ms;
    uv_idle_stop(&io->sweeping);
  } else if (!uv_is_active((uv_handle_t *)&io->sweeping)) {
    uv_idle_start(&io->sweeping, on_sweeping);
  }
}

static void on_flush_timer(uv_timer_t *t) {
  hb_io *io = t->data;
  if (hb_list_empty(&io->sweep)) { /* else on_flush carries it on */
    uint64_t t0 = uv_hrtime();
    flush_sweep(io);
    hb_conn_flush_submit(io);
    io->write_ns += uv_hrtime() - t0;
  }
}

static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The window this turn's fan-out output may wait for: flush_interval_ms,
 * or with flush_adaptive only while the thread is saturated, growing up to
 * flush_max_interval_ms while it stays so (window.h). The
 * thread's CPU time is read once per sample (a system call every
 * HB_WINDOW_SAMPLE_MS at most, and only while there is fan-out output). */
static uint64_t flush_window_ms(hb_io *io) {
  const hb_config *cfg = io->set->cfg;
  if (!cfg->flush_adaptive || cfg->flush_interval_ms == 0) return (uint64_t)cfg->flush_interval_ms;
  uint64_t now = uv_hrtime();
  if (!hb_window_due(&io->window, now)) return hb_window_ms(&io->window);
  hb_window_clock at = {.now_ns = now, .cpu_ns = thread_cpu_ns(), .sends = io->sends, .items = io->send_items,
                        .all_sends = io->all_sends, .mergeable = io->mergeable, .write_ns = io->write_ns,
                        .pass_ms = io->pass_ms};
  io->pass_ms = 0; /* the longest pass of the next sample */
  if (hb_window_sample(&io->window, &at)) {
    hb_metric_add(HB_M_FANOUT_WINDOW_ON, io->window.on ? 1 : -1);
    if (io->window.on) hb_metric_inc(HB_M_FANOUT_WINDOW_OPENS);
  }
  return hb_window_ms(&io->window);
}

/* End of a loop turn (uv_check). Replies are written now. Fan-out output is
 * written now too unless the thread holds it (flush_window_ms) and flushed
 * fan-out less than the window ago: then it waits for the rest of that
 * window, and everything that arrives meanwhile goes out in the same
 * writes. A quiet room pays no latency; a busy one pays at most the window. */
static void flush_lists(hb_io *io) {
  hb_conn_flush_list(&io->dirty, SIZE_MAX);
  if (!hb_list_empty(&io->sweep)) {
    flush_sweep(io); /* the next chunk of the flush in progress */
    return;
  }
  if (hb_list_empty(&io->later)) return;
  uint64_t window = flush_window_ms(io);
  uv_update_time(&io->loop); /* the poll may have slept: judge the window on the clock */
  uint64_t now = hb_io_now_ms(io);
  if (window == 0 || io->stopping || now - io->later_flushed_ms >= window) {
    uv_timer_stop(&io->flush_timer);
    flush_sweep(io);
  } else if (!uv_is_active((uv_handle_t *)&io->flush_timer)) {
    uv_timer_start(&io->flush_timer, on_flush_timer, io->later_flushed_ms + window - now, 0);
  }
}

/* The replies and the fan-out of this turn go to the kernel together: one
 * io_uring_enter for all of them (uring.h), or a writev each. */
static void on_flush(uv_check_t *h) {
  hb_io *io = h->data;
  uint64_t t0 = uv_hrtime(); /* vDSO: no system call */
  flush_lists(io);
  hb_conn_flush_submit(io);
  io->write_ns += uv_hrtime() - t0;
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

/* --- listening ------------------------------------------------------------ */

static void on_connection(uv_stream_t *listener, int status);
static void on_accept_retry(uv_timer_t *t);

static int sockaddr_of(const char *host, int port, struct sockaddr_storage *ss, socklen_t *slen) {
  memset(ss, 0, sizeof *ss);
  if (strchr(host, ':')) {
    *slen = sizeof(struct sockaddr_in6);
    return uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0 ? AF_INET6 : -EINVAL;
  }
  *slen = sizeof(struct sockaddr_in);
  return uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0 ? AF_INET : -EINVAL;
}

/*
 * Is HOST:PORT free? A socket without SO_REUSEPORT cannot bind where any
 * socket listens, SO_REUSEPORT or not; so a second server on a busy port is
 * refused here, instead of joining the first one's port and taking half of
 * its connections (the kernel spreads SO_REUSEPORT connections across every
 * process of the same user). SO_REUSEADDR keeps a port in TIME_WAIT usable.
 * The probe closes before the real listeners bind: two servers started in
 * the same instant could both pass; anything later is refused.
 */
static int port_free(const char *host, int port) {
  struct sockaddr_storage ss;
  socklen_t slen;
  int family = sockaddr_of(host, port, &ss, &slen);
  if (family < 0) return family;
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int r = bind(fd, (struct sockaddr *)&ss, slen) == 0 ? 0 : -errno;
  close(fd);
  return r;
}

/* Each thread gets its own socket bound with SO_REUSEPORT, so the kernel
 * spreads new connections across threads without a shared accept lock.
 * libuv 1.44 has no flag for it, hence the raw socket and uv_tcp_open(). */
static int make_listener(const char *host, int port, int *bound_port) {
  struct sockaddr_storage ss;
  socklen_t slen;
  int family = sockaddr_of(host, port, &ss, &slen);
  if (family < 0) return family;
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  /* Accepted sockets inherit TCP_NODELAY from the listener on Linux
   * (test/unit/core/test_io.c checks it), which saves a setsockopt per
   * connection: every write is a whole frame or response, never worth
   * delaying for Nagle. */
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
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
  int fd = make_listener(io->set->cfg->host, io->set->port, &bound);
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

/* --- threads -------------------------------------------------------------- */

/* The thread's io_uring for its flushes, made on the thread that uses it.
 * Thread 0 says which way the server writes; a thread that cannot have a
 * ring when thread 0 could says why. */
static void uring_start(hb_io *io) {
  char why[128] = "off in the config (io_uring)";
  if (io->set->cfg->io_uring) io->uring = hb_uring_new(HB_URING_BATCH_SENDS, why, sizeof why);
  if (io->uring) hb_metric_inc(HB_M_URING_THREADS);
  if (io->id == 0) {
    if (io->uring) hb_info("writes: io_uring, up to %d sends per system call", HB_URING_BATCH_SENDS);
    else hb_info("writes: writev, not io_uring: %s", why);
  } else if (!io->uring && io->set->cfg->io_uring) {
    hb_info("thread %d writes with writev, not io_uring: %s", io->id, why);
  }
}

static void io_thread_main(void *arg) {
  hb_io *io = arg;
  hb_window_clock at = {.now_ns = uv_hrtime(), .cpu_ns = thread_cpu_ns()}; /* this thread's CPU time */
  const hb_config *cfg = io->set->cfg;
  hb_window_init(&io->window, &at, (uint32_t)cfg->flush_interval_ms, (uint32_t)cfg->flush_max_interval_ms);
  hb_window_set_hold_saving(&io->window, cfg->flush_hold_saving);
  uring_start(io);
  if (io->set->hooks.thread_start) io->set->hooks.thread_start(io);
  uv_run(&io->loop, UV_RUN_DEFAULT);
  if (io->uring) {
    hb_uring_free(io->uring);
    io->uring = NULL;
    hb_metric_add(HB_M_URING_THREADS, -1);
  }
  /* Every connection and handle is closed: the upper layers' per-thread
   * state has no user left. */
  if (io->set->hooks.thread_stop) io->set->hooks.thread_stop(io);
}

static int io_init(hb_ioset *set, hb_io *io, int index, int fd) {
  io->set = set;
  io->id = index;
  hb_uuid_v4(&io->id_base);
  hb_list_init(&io->conns);
  hb_list_init(&io->dirty);
  hb_list_init(&io->later);
  hb_list_init(&io->sweep);
  int r = uv_loop_init(&io->loop);
  if (r) return r;
  hb_inbox_init(&io->inbox, &io->loop, io);
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

static long long gauge_threads(void *ud) { return ((hb_ioset *)ud)->nio; }

int hb_ioset_start(hb_ioset *set, const hb_config *cfg, int nio, const hb_io_hooks *hooks) {
  set->cfg = cfg;
  set->hooks = *hooks;
  set->nio = nio;
  atomic_init(&set->open_conns, 0);
  atomic_init(&set->shutting_down, false);
  int port = cfg->port;
  if (port != 0) {
    int r = port_free(cfg->host, port);
    if (r == -EADDRINUSE) {
      hb_error_log("cannot listen on %s:%d: the address is already in use by another process "
                   "(another hubbub?); refusing to share it", cfg->host, port);
      return -1;
    }
    if (r < 0) {
      hb_error_log("cannot listen on %s:%d: %s", cfg->host, port, strerror(-r));
      return -1;
    }
  }
  set->io = hb_calloc((size_t)nio, sizeof *set->io);
  for (int i = 0; i < nio; i++) {
    int bound = port;
    int fd = make_listener(cfg->host, port, &bound);
    if (fd < 0) {
      hb_error_log("cannot listen on %s:%d: %s", cfg->host, port, strerror(-fd));
      return -1;
    }
    port = bound; /* with port 0, every further thread joins the port the first got */
    set->io[i] = hb_calloc(1, sizeof(hb_io));
    int r = io_init(set, set->io[i], i, fd);
    if (r) {
      hb_error_log("thread %d: %s", i, uv_strerror(r));
      return -1;
    }
  }
  set->port = port;
  hb_metrics_gauge("io_threads", "I/O threads serving connections.", gauge_threads, set);
  for (int i = 0; i < nio; i++) {
    if (uv_thread_create(&set->io[i]->thread, io_thread_main, set->io[i]) != 0) return -1;
  }
  return 0;
}

void hb_ioset_request_stop(hb_ioset *set) {
  atomic_store(&set->shutting_down, true);
  for (int i = 0; i < set->nio; i++) hb_io_post(set->io[i], stop_job, NULL);
}

void hb_ioset_wait(hb_ioset *set) {
  for (int i = 0; i < set->nio; i++) {
    hb_io *io = set->io[i];
    if (!io->joined) uv_thread_join(&io->thread);
    io->joined = true;
  }
}

void hb_ioset_join(hb_ioset *set) {
  hb_ioset_wait(set);
  for (int i = 0; i < set->nio; i++) {
    hb_io *io = set->io[i];
    hb_inbox_destroy(&io->inbox);
    hb_conn_thread_free(io);
    if (uv_loop_close(&io->loop) != 0) hb_warn("thread %d: loop closed with live handles", i);
    hb_free(io);
  }
  hb_free(set->io);
  set->io = NULL;
}
