/*
 * test_conn.c - one connection's output ring and lifecycle (conn.c), on a
 * real I/O thread with real loopback sockets and a test handler table:
 * shared frames written once per connection and released once, owned and
 * static items, the slow-consumer cut-off, dropping a backlog without
 * cutting the write in flight, closing (now, after a flush, lingering), the
 * ring's growth and wrap-around keeping byte order, and the thread's spare
 * rings.
 *
 * What touches a connection runs on its thread (hbt_on_io); the test thread
 * only reads and writes the client sockets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "stack.h"

#include "hubbub/alloc.h"
#include "hubbub/conn.h"
#include "hubbub/io.h"
#include "hubbub/limits.h"

/* --- a handler table that records what happens ------------------------------ */

/* Written on the I/O thread; the test reads it after a job on that thread
 * (hbt_on_io), which orders the two. */
static struct {
  int opens, reads, sweeps, overflows, shutdowns, closes;
  size_t read_bytes;
  size_t out_at_overflow; /* the backlog when on_overflow was called */
} ev;

static void t_open(hb_conn *c, const hb_error *refusal) {
  (void)c;
  assert_null(refusal);
  ev.opens++;
}
static void t_read(hb_conn *c, const char *buf, size_t len) {
  (void)c, (void)buf;
  ev.reads++;
  ev.read_bytes += len;
}
static void t_sweep(hb_conn *c, uint64_t now) { (void)c, (void)now, ev.sweeps++; }
static void t_overflow(hb_conn *c) {
  if (ev.overflows++ == 0) ev.out_at_overflow = c->out_bytes;
}
static void t_shutdown(hb_conn *c) {
  ev.shutdowns++;
  hb_conn_close(c, false);
}
static void t_close(hb_conn *c) { (void)c, ev.closes++; }

static const hb_conn_handler handler = {
    .on_open = t_open,
    .on_read = t_read,
    .on_sweep = t_sweep,
    .on_overflow = t_overflow,
    .on_shutdown = t_shutdown,
    .on_close = t_close,
};

static void start(hbt_stack *s, size_t max_output_bytes) {
  memset(&ev, 0, sizeof ev);
  hbt_stack_init(s);
  s->mode = HBT_CUSTOM;
  s->hooks = (hb_io_hooks){.accept_handler = &handler, .conn_ext_bytes = 8};
  s->cfg.max_output_bytes = max_output_bytes;
  hbt_stack_start(s);
}

/* A shared frame that counts its releases. */
typedef struct {
  hb_shared sh;
  int released;
  hb_io *released_on;
} tshared;

static void tshared_release(hb_shared *s, hb_io *io) {
  tshared *t = (tshared *)s;
  t->released++;
  t->released_on = io;
}

static void tshared_init(tshared *t, const char *bytes, size_t len) {
  memset(t, 0, sizeof *t);
  t->sh.bytes = bytes;
  t->sh.len = (uint32_t)len;
  t->sh.refs = 1; /* the test's own, as publish.c holds one during a fan-out */
  t->sh.release = tshared_release;
}

/* The test's reference goes (on the thread: refs are plain integers). */
static void tshared_put(tshared *t, hb_io *io) {
  if (--t->sh.refs == 0) t->sh.release(&t->sh, io);
}

/* Jobs that take a connection. */
typedef struct {
  hb_conn *c;
  tshared *t;
  const char *bytes;
  size_t len;
  int n;
  bool ok;
  size_t value;
} job;

static bool closes_at_least(void *arg) { return ev.closes >= *(int *)arg; }
static void wait_closes(hb_io *io, int n) { hbt_io_until(io, closes_at_least, &n, "the connections' on_close"); }
static bool is_released(void *arg) { return ((tshared *)arg)->released > 0; }

static void shrink_sndbuf(void *arg);

/* Most tests: one stack, one connection (its peer reading little when
 * `slow_peer`: small buffers on both ends, so that output backs up). */
static struct {
  hbt_stack s;
  hb_io *io;
  int fd;
  job j;
} one;

static void one_open(size_t max_output_bytes, bool slow_peer) {
  start(&one.s, max_output_bytes);
  one.io = hbt_io(&one.s, 0);
  memset(&one.j, 0, sizeof one.j);
  one.j.c = hbt_attach(one.io, &one.fd, slow_peer ? 4096 : 0);
  if (slow_peer) hbt_on_io(one.io, shrink_sndbuf, &one.j);
}

/* The peer closes; the connection goes; the stack stops. */
static void one_close(void) {
  close(one.fd);
  wait_closes(one.io, ev.opens);
  hbt_stack_stop(&one.s);
}

/* Nothing more arrives on fd within `ms`: a bounded observation, not a wait for anything. */
static void expect_quiet(int fd, int ms) {
  hb_strbuf extra = HB_STRBUF_INIT;
  long r = hbt_recv(fd, &extra, ms);
  if (r > 0) fail_msg("%zu unexpected bytes", extra.len);
  hb_strbuf_free(&extra);
}

/* --- shared frames ----------------------------------------------------------- */

#define FANOUT 5

static hb_conn *fan_conns[FANOUT];

static void queue_to_all(void *arg) {
  job *j = arg;
  j->ok = true;
  for (int i = 0; i < FANOUT; i++) j->ok &= hb_conn_send_shared(fan_conns[i], &j->t->sh);
  j->value = j->t->sh.refs; /* the test's reference and one per connection */
  tshared_put(j->t, fan_conns[0]->io);
}

/* One frame queued to N connections: each writes it exactly once, and the
 * frame is released once, on its thread, after the last write. */
static void test_shared_frame_written_and_released_once(void **state) {
  (void)state;
  hbt_stack s;
  start(&s, HB_DEFAULT_MAX_OUTPUT_BYTES);
  hb_io *io = hbt_io(&s, 0);
  int fds[FANOUT];
  for (int i = 0; i < FANOUT; i++) fan_conns[i] = hbt_attach(io, &fds[i], 0);
  static const char frame[] = "\x81\x0bhello world";
  tshared t;
  tshared_init(&t, frame, sizeof frame - 1);
  job j = {.t = &t};
  hbt_on_io(io, queue_to_all, &j);
  assert_true(j.ok);
  assert_int_equal(j.value, 1 + FANOUT);
  for (int i = 0; i < FANOUT; i++) {
    hb_strbuf in = HB_STRBUF_INIT;
    hbt_recv_n(fds[i], &in, sizeof frame - 1);
    assert_int_equal(in.len, sizeof frame - 1);
    assert_memory_equal(in.buf, frame, in.len);
    hb_strbuf_free(&in);
  }
  hbt_io_until(io, is_released, &t, "the shared frame's release");
  assert_int_equal(t.released, 1);
  assert_int_equal(t.sh.refs, 0);
  assert_ptr_equal(t.released_on, io);
  for (int i = 0; i < FANOUT; i++) expect_quiet(fds[i], 50); /* written once, not twice */
  for (int i = 0; i < FANOUT; i++) close(fds[i]);
  wait_closes(io, FANOUT);
  hbt_stack_stop(&s);
  assert_int_equal(t.released, 1);
}

/* --- owned, copied and static items ------------------------------------------ */

static void queue_kinds(void *arg) {
  job *j = arg;
  static const char stat[] = "static|";
  char tmp[8] = "copy|";
  hb_conn_send_static(j->c, stat, sizeof stat - 1);
  hb_conn_send_copy(j->c, tmp, 5);
  memcpy(tmp, "XXXX|", 5); /* the copy is the connection's own */
  hb_conn_send_owned(j->c, hb_strndup("owned|", 6), 6);
  hb_conn_send_owned(j->c, hb_malloc(16), 0); /* nothing to write: freed at once */
  hb_conn_send_static(j->c, stat, 0);        /* ignored */
  hb_conn_send_copy(j->c, "end", 3);
}

static void test_owned_copied_static_in_order(void **state) {
  (void)state;
  one_open(HB_DEFAULT_MAX_OUTPUT_BYTES, false);
  hbt_on_io(one.io, queue_kinds, &one.j);
  hb_strbuf in = HB_STRBUF_INIT;
  hbt_recv_n(one.fd, &in, 21);
  assert_string_equal(in.buf, "static|copy|owned|end");
  hb_strbuf_free(&in);
  one_close();
  assert_int_equal(ev.opens, 1);
}

/* --- the slow consumer --------------------------------------------------------- */

#define SMALL_CAP (16 * 1024)
#define FRAME_BYTES 4096

static char big_frame[FRAME_BYTES];

static void shrink_sndbuf(void *arg) {
  job *j = arg;
  int v = 4096;
  uv_send_buffer_size((uv_handle_t *)&j->c->tcp, &v);
}

/* Queue one shared frame after another to a peer that reads nothing: the
 * kernel's buffers fill, then the backlog grows past max_output_bytes (the
 * soft limit: no cut within the grace period), and the frame that would take
 * it past max_output_bytes x HB_OUTPUT_HARD_FACTOR is refused with
 * on_overflow. */
static void flood(void *arg) {
  job *j = arg;
  hb_io *io = j->c->io;
  for (j->n = 0; j->n < 100000; j->n++) {
    if (!hb_conn_send_shared(j->c, &j->t->sh)) break;
  }
  uint64_t now = hb_io_now_ms(io);
  j->ok = !hb_conn_overdue(j->c, now) && hb_conn_overdue(j->c, now + HB_SLOW_CONSUMER_GRACE_MS + 1);
  j->value = j->c->out_bytes;
  tshared_put(j->t, io);
}

static void close_now(void *arg) { hb_conn_close(((job *)arg)->c, false); }

static void test_slow_consumer_overflow(void **state) {
  (void)state;
  one_open(SMALL_CAP, true);
  hb_io *io = one.io;
  job j = one.j;
  memset(big_frame, 'f', sizeof big_frame);
  tshared t;
  tshared_init(&t, big_frame, sizeof big_frame);
  j.t = &t;
  hbt_on_io(io, flood, &j);
  assert_int_equal(ev.overflows, 1);
  assert_true(j.n > 0 && j.n < 100000);
  /* over the soft limit, yet not cut for it: the grace period runs */
  assert_true(ev.out_at_overflow > SMALL_CAP);
  assert_true(j.ok); /* overdue only once the grace period has passed */
  /* cut exactly when the next frame would pass the hard limit */
  assert_true(ev.out_at_overflow + FRAME_BYTES > (size_t)SMALL_CAP * HB_OUTPUT_HARD_FACTOR);
  assert_true(ev.out_at_overflow <= (size_t)SMALL_CAP * HB_OUTPUT_HARD_FACTOR);
  assert_int_equal(j.value, ev.out_at_overflow);
  assert_int_equal(t.released, 0); /* still queued */
  /* closing drops the backlog: the frame is released with the last reference */
  hbt_on_io(io, close_now, &j);
  hbt_io_until(io, is_released, &t, "the shared frame's release");
  assert_int_equal(t.released, 1);
  one_close();
}

/* --- dropping a backlog ---------------------------------------------------------- */

#define INFLIGHT_BYTES (256 * 1024)

static void queue_big(void *arg) {
  job *j = arg;
  char *p = hb_malloc(INFLIGHT_BYTES);
  memset(p, 'A', INFLIGHT_BYTES);
  hb_conn_send_owned(j->c, p, INFLIGHT_BYTES);
}

static bool is_writing(void *arg) { return ((job *)arg)->c->writing; }

static void queue_more_and_drop(void *arg) {
  job *j = arg;
  hb_conn *c = j->c;
  j->value = c->inflight_bytes;
  char b[1000];
  memset(b, 'B', sizeof b);
  hb_conn_send_copy(c, b, sizeof b);
  hb_conn_send_static(c, "CCCC", 4);
  hb_conn_drop_pending(c);
  j->n = (int)c->out_count;
  j->ok = c->writing && c->out_bytes == j->value;
}

static void close_after_flush(void *arg) { hb_conn_close(((job *)arg)->c, true); }

/* A slow consumer's backlog is dropped (to queue a close frame instead) but
 * the write in flight is kept whole: the peer gets every byte libuv was
 * given, and none of what was dropped. */
static void test_drop_pending_keeps_inflight_write(void **state) {
  (void)state;
  one_open(HB_DEFAULT_MAX_OUTPUT_BYTES, true);
  hb_io *io = one.io;
  job j = one.j;
  hbt_on_io(io, queue_big, &j);
  hbt_io_until(io, is_writing, &j, "a write in flight");
  hbt_on_io(io, queue_more_and_drop, &j);
  assert_true(j.value > 0 && j.value <= INFLIGHT_BYTES);
  assert_int_equal(j.n, 1); /* the item being written, alone */
  assert_true(j.ok);
  hbt_on_io(io, close_after_flush, &j);
  hb_strbuf in = HB_STRBUF_INIT;
  hbt_recv_eof(one.fd, &in);
  assert_int_equal(in.len, INFLIGHT_BYTES);
  for (size_t i = 0; i < in.len; i++)
    if (in.buf[i] != 'A') fail_msg("byte %zu is '%c': dropped output was written", i, in.buf[i]);
  hb_strbuf_free(&in);
  one_close();
}

/* --- closing ------------------------------------------------------------------- */

static void send_and_close(void *arg) {
  job *j = arg;
  hb_conn_send_copy(j->c, j->bytes, j->len);
  hb_conn_close(j->c, j->ok);
  j->n = (int)j->c->state;
}

static void test_close_flush_and_now(void **state) {
  (void)state;
  hbt_stack s;
  start(&s, HB_DEFAULT_MAX_OUTPUT_BYTES);
  hb_io *io = hbt_io(&s, 0);
  /* with flush: CLOSING until what is queued is written, then closed */
  int fd;
  job j = {.c = hbt_attach(io, &fd, 0), .bytes = "goodbye", .len = 7, .ok = true};
  hbt_on_io(io, send_and_close, &j);
  assert_int_equal(j.n, HB_CONN_CLOSING);
  hb_strbuf in = HB_STRBUF_INIT;
  hbt_recv_eof(fd, &in);
  assert_string_equal(in.buf, "goodbye");
  close(fd);
  wait_closes(io, 1);
  /* without: closed at once, what was queued is dropped and freed */
  hb_strbuf_reset(&in);
  int fd2;
  static char lots[1 << 20];
  job k = {.c = hbt_attach(io, &fd2, 0), .bytes = lots, .len = sizeof lots, .ok = false};
  hbt_on_io(io, send_and_close, &k);
  assert_int_equal(k.n, HB_CONN_CLOSED);
  hbt_recv_eof(fd2, &in);
  assert_true(in.len < sizeof lots);
  hb_strbuf_free(&in);
  close(fd2);
  wait_closes(io, 2);
  hbt_stack_stop(&s);
  assert_int_equal(ev.closes, 2);
}

/* A close with flush to a peer that never reads gives up after
 * HB_CLOSE_FLUSH_TIMEOUT_MS (the sweep closes it): waited for by its
 * on_close, not by the clock. */
static void test_close_flush_gives_up(void **state) {
  (void)state;
  static char lots[4 << 20];
  one_open(HB_DEFAULT_MAX_OUTPUT_BYTES, true);
  job j = {.c = one.j.c, .bytes = lots, .len = sizeof lots, .ok = true};
  hbt_on_io(one.io, send_and_close, &j);
  assert_int_equal(j.n, HB_CONN_CLOSING);
  wait_closes(one.io, 1); /* by the sweep, while the peer still reads nothing */
  one_close();
}

static void linger(void *arg) {
  job *j = arg;
  hb_conn_send_static(j->c, "last words", 10);
  hb_conn_close_linger(j->c, HBT_WAIT_MS, 1 << 20);
}

static bool read_six(void *arg) {
  (void)arg;
  return ev.read_bytes == 6;
}

static void conn_state(void *arg) {
  job *j = arg;
  j->n = ev.closes;
  j->value = (size_t)ev.reads;
  j->ok = j->c->state == HB_CONN_CLOSING;
}

/* Lingering: write what is queued, half-close, then read and discard until
 * the peer closes (closing at once could reset the connection and lose the
 * last bytes). */
static void test_close_linger(void **state) {
  (void)state;
  one_open(HB_DEFAULT_MAX_OUTPUT_BYTES, false);
  hb_io *io = one.io;
  int fd = one.fd;
  job j = one.j;
  hbt_send(fd, "before", 6);
  hbt_io_until(io, read_six, NULL, "the first bytes read");
  hbt_on_io(io, linger, &j);
  hb_strbuf in = HB_STRBUF_INIT;
  hbt_recv_eof(fd, &in); /* the half-close: EOF on our side, the connection still open */
  assert_string_equal(in.buf, "last words");
  hb_strbuf_free(&in);
  hbt_on_io(io, conn_state, &j);
  assert_true(j.ok);
  assert_int_equal(j.n, 0);
  int reads_before = (int)j.value;
  hbt_send(fd, "after the close: discarded", 26);
  shutdown(fd, SHUT_WR); /* our EOF ends the linger */
  wait_closes(io, 1);
  assert_int_equal(ev.reads, reads_before);
  one_close();
}

/* --- the ring ------------------------------------------------------------------ */

#define ITEM_BYTES 2048
#define FIRST_ITEMS 32
#define MORE_ITEMS 40

static void item(int i, char *out) {
  memset(out, 'a' + i % 26, ITEM_BYTES);
  snprintf(out, 16, "[%05d]", i);
  out[7] = '.';
}

static void queue_items(void *arg) {
  job *j = arg;
  char b[ITEM_BYTES];
  for (int k = 0; k < j->n; k++) {
    item((int)j->value + k, b);
    hb_conn_send_copy(j->c, b, ITEM_BYTES);
  }
  j->ok = j->c->out_count == (uint32_t)j->n;
}

static void ring_state(void *arg) {
  job *j = arg;
  j->n = (int)j->c->out_head;
  j->value = j->c->out_count;
  j->ok = j->c->writing;
}

static void ring_after(void *arg) {
  job *j = arg;
  j->ok = j->c->out == NULL && j->c->out_count == 0;
  j->value = j->c->out_cap;
}

static bool drained(void *arg) { return ((job *)arg)->c->out_count == 0 && !((job *)arg)->c->writing; }

/* More items than the ring's first size, some written (the head moves),
 * then more queued while a write is in flight: the ring wraps and grows
 * (past HB_OUT_RING_KEEP slots) and the bytes still arrive in order. */
static void test_ring_growth_and_wrap_keep_order(void **state) {
  (void)state;
  one_open(HB_DEFAULT_MAX_OUTPUT_BYTES, true);
  hb_io *io = one.io;
  job j = one.j;
  j.n = FIRST_ITEMS, j.value = 0;
  hbt_on_io(io, queue_items, &j);
  assert_true(j.ok);
  hbt_io_until(io, is_writing, &j, "a write in flight");
  hbt_on_io(io, ring_state, &j);
  /* the kernel took some items whole but not all of them */
  if (j.n == 0 || !j.ok) fail_msg("expected a moved head and a write in flight (head %d)", j.n);
  size_t left = j.value;
  assert_true(left > 0 && left < FIRST_ITEMS);
  j.n = MORE_ITEMS, j.value = FIRST_ITEMS;
  hbt_on_io(io, queue_items, &j); /* wraps at the end of the ring, then grows */
  hb_strbuf in = HB_STRBUF_INIT;
  hbt_recv_n(one.fd, &in, (size_t)(FIRST_ITEMS + MORE_ITEMS) * ITEM_BYTES);
  char want[ITEM_BYTES];
  for (int i = 0; i < FIRST_ITEMS + MORE_ITEMS; i++) {
    item(i, want);
    if (memcmp(in.buf + (size_t)i * ITEM_BYTES, want, ITEM_BYTES) != 0)
      fail_msg("item %d out of place: '%.8s'", i, in.buf + (size_t)i * ITEM_BYTES);
  }
  hb_strbuf_free(&in);
  hbt_io_until(io, drained, &j, "the queue drained");
  hbt_on_io(io, ring_after, &j);
  assert_true(j.ok); /* an empty queue holds no ring */
  assert_int_equal(j.value, HB_OUT_RING_KEEP); /* the size it remembers is capped */
  one_close();
}

static hb_conn *spare_conns[2];

/* Within one job nothing is written (the flush is at the end of the turn):
 * a ring grows to HB_OUT_RING_KEEP slots, is given back to the thread when
 * the queue empties, and the next one of that size is taken from there. */
static void use_spare_rings(void *arg) {
  job *j = arg;
  hb_io *io = spare_conns[0]->io;
  hb_conn *c = spare_conns[0];
  int ok = 0;
  for (int k = 0; k < 20; k++) hb_conn_send_copy(c, "x", 1); /* grows 2, 4, 8, 16, 32 */
  ok += c->out_cap == HB_OUT_RING_KEEP;
  hb_conn_drop_pending(c); /* empty: the ring goes to the thread's stack */
  uint32_t spare = io->ring_free_n;
  ok += c->out == NULL && spare >= 1;
  for (int k = 0; k < 20; k++) hb_conn_send_copy(c, "x", 1); /* the remembered size: from the stack */
  ok += io->ring_free_n == spare - 1;
  hb_conn_drop_pending(c);
  ok += io->ring_free_n == spare;
  /* another connection's ring reaching that size comes from the stack too */
  for (int k = 0; k < 20; k++) hb_conn_send_copy(spare_conns[1], "x", 1);
  ok += io->ring_free_n == spare - 1;
  hb_conn_drop_pending(spare_conns[1]);
  ok += io->ring_free_n == spare;
  j->n = ok;
  j->value = io->ring_free_n;
}

static bool no_spare_rings(void *arg) { return ((hb_io *)arg)->ring_free_n == 0; }

static void test_spare_rings_reused_and_trimmed(void **state) {
  (void)state;
  hbt_stack s;
  start(&s, HB_DEFAULT_MAX_OUTPUT_BYTES);
  hb_io *io = hbt_io(&s, 0);
  int fds[2];
  spare_conns[0] = hbt_attach(io, &fds[0], 0);
  spare_conns[1] = hbt_attach(io, &fds[1], 0);
  job j = {0};
  hbt_on_io(io, use_spare_rings, &j);
  assert_int_equal(j.n, 6);
  assert_true(j.value >= 1);
  /* unused for a whole sweep interval: freed by the sweep */
  hbt_io_until(io, no_spare_rings, io, "the spare rings trimmed");
  close(fds[0]);
  close(fds[1]);
  wait_closes(io, 2);
  hbt_stack_stop(&s);
}

/* --- the thread stops -------------------------------------------------------------- */

static bool swept(void *arg) {
  (void)arg;
  return ev.sweeps > 0;
}

static void test_shutdown_reaches_every_connection(void **state) {
  (void)state;
  hbt_stack s;
  start(&s, HB_DEFAULT_MAX_OUTPUT_BYTES);
  hb_io *io = hbt_io(&s, 0);
  int fds[3];
  for (int i = 0; i < 3; i++) hbt_attach(io, &fds[i], 0);
  hbt_io_until(io, swept, NULL, "a sweep over the connections");
  hbt_stack_stop(&s); /* on_shutdown closes each; the join returns once they are gone */
  assert_int_equal(ev.shutdowns, 3);
  assert_int_equal(ev.closes, 3);
  for (int i = 0; i < 3; i++) {
    hb_strbuf in = HB_STRBUF_INIT;
    hbt_recv_eof(fds[i], &in);
    hb_strbuf_free(&in);
    close(fds[i]);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_shared_frame_written_and_released_once),
      HBT_TEST(test_owned_copied_static_in_order),
      HBT_TEST(test_slow_consumer_overflow),
      HBT_TEST(test_drop_pending_keeps_inflight_write),
      HBT_TEST(test_close_flush_and_now),
      HBT_TEST(test_close_flush_gives_up),
      HBT_TEST(test_close_linger),
      HBT_TEST(test_ring_growth_and_wrap_keep_order),
      HBT_TEST(test_spare_rings_reused_and_trimmed),
      HBT_TEST(test_shutdown_reaches_every_connection),
  };
  return cmocka_run_group_tests_name("conn", tests, NULL, NULL);
}
