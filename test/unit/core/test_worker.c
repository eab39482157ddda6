/* test_worker.c - blocking jobs off the I/O threads (worker.c): a job runs
 * on the worker thread and its answer on the I/O thread that asked, in the
 * order they were queued; a job that waited past its deadline runs its
 * "late" function instead; a full queue refuses (and calls nothing); stop
 * runs what is queued, posts every answer and runs the thread's exit hook
 * on the worker thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "stack.h"

#include "hubbub/io.h"
#include "hubbub/worker.h"

#define JOBS 50

static void t_open(hb_conn *c, const hb_error *refusal) { (void)c, (void)refusal; }
static void t_read(hb_conn *c, const char *buf, size_t len) { (void)c, (void)buf, (void)len; }
static void t_sweep(hb_conn *c, uint64_t now) { (void)c, (void)now; }
static void t_close_now(hb_conn *c) { hb_conn_close(c, false); }
static void t_close(hb_conn *c) { (void)c; }
static const hb_conn_handler handler = {t_open, t_read, t_sweep, t_close_now, t_close_now, t_close};

static void custom(hbt_stack *s) {
  hbt_stack_init(s);
  s->mode = HBT_CUSTOM;
  s->nio = 1;
  s->hooks = (hb_io_hooks){.accept_handler = &handler, .conn_ext_bytes = 8};
}

/* What the jobs saw. The worker thread writes ran/late/order; the I/O
 * thread writes done; the test reads them after waiting on markers. */
static struct {
  uv_thread_t test_thread;
  hb_io *io;
  atomic_int ran, late, done, exits;
  atomic_bool wrong_thread, null_ctx;
  int order[JOBS];
  atomic_int norder;
  /* a job that blocks the worker until the test releases it */
  atomic_bool blocked, release;
} ev;

static void reset(hb_io *io) {
  memset(&ev, 0, sizeof ev);
  ev.test_thread = uv_thread_self();
  ev.io = io;
}

static bool on_thread(uv_thread_t t) {
  uv_thread_t self = uv_thread_self();
  return uv_thread_equal(&self, &t);
}

static void run(void *arg) {
  if (on_thread(ev.test_thread)) ev.wrong_thread = true; /* the worker's own thread, never the caller's */
  ev.order[atomic_fetch_add(&ev.norder, 1)] = (int)(intptr_t)arg;
  ev.ran++;
}

static void run_late(void *arg) {
  (void)arg;
  ev.late++;
}

static void run_blocking(void *arg) {
  (void)arg;
  ev.blocked = true;
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  while (!ev.release) {
    clock_gettime(CLOCK_MONOTONIC, &t);
    if ((t.tv_sec - t0.tv_sec) * 1000 > HBT_WAIT_MS) break; /* the test failed already */
    struct timespec nap = {0, 1000000};
    nanosleep(&nap, NULL);
  }
  ev.ran++;
}

static void done(void *ctx, void *arg) {
  (void)arg;
  if (!ctx) ev.null_ctx = true;
  else if (ctx != ev.io) ev.wrong_thread = true;
  ev.done++;
}

static void exit_hook(void) {
  if (on_thread(ev.test_thread)) ev.wrong_thread = true;
  ev.exits++;
}

static int target;
static bool done_reached(void *arg) {
  (void)arg;
  return ev.done >= target;
}

static void wait_done(hb_io *io, int n) {
  target = n;
  hbt_io_until(io, done_reached, NULL, "the worker's answers");
}

static void wait_blocked(void) {
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  while (!ev.blocked) {
    clock_gettime(CLOCK_MONOTONIC, &t);
    if ((t.tv_sec - t0.tv_sec) * 1000 > HBT_WAIT_MS) fail_msg("the blocking job never started");
    struct timespec nap = {0, 1000000};
    nanosleep(&nap, NULL);
  }
}

static void test_jobs_run_off_the_thread_in_order(void **state) {
  (void)state;
  hbt_stack s;
  custom(&s);
  hbt_stack_start(&s);
  reset(hbt_io(&s, 0));
  hb_worker *w = hb_worker_start("test", JOBS, exit_hook);
  assert_non_null(w);
  for (int i = 0; i < JOBS; i++)
    assert_true(hb_worker_submit(w, ev.io, run, run_late, HBT_WAIT_MS, done, (void *)(intptr_t)i));
  wait_done(ev.io, JOBS);
  assert_int_equal(ev.ran, JOBS);
  assert_int_equal(ev.late, 0);
  for (int i = 0; i < JOBS; i++) assert_int_equal(ev.order[i], i);
  assert_int_equal(hb_worker_backlog(w), 0);
  hb_worker_stop(w);
  assert_int_equal(ev.exits, 1);
  assert_false(ev.wrong_thread);
  assert_false(ev.null_ctx);
  hbt_stack_stop(&s);
}

/* A job queued behind a slow one, with a deadline that passes meanwhile,
 * is answered by run_late (the asker was told "try again"), not run. */
static void test_late_job_runs_late(void **state) {
  (void)state;
  hbt_stack s;
  custom(&s);
  hbt_stack_start(&s);
  reset(hbt_io(&s, 0));
  hb_worker *w = hb_worker_start("test", 4, NULL);
  assert_true(hb_worker_submit(w, ev.io, run_blocking, run_late, HBT_WAIT_MS, done, NULL));
  wait_blocked();
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  assert_true(hb_worker_submit(w, ev.io, run, run_late, 1, done, NULL));
  assert_true(hb_worker_submit(w, ev.io, run, run_late, HBT_WAIT_MS, done, (void *)(intptr_t)7));
  assert_int_equal(hb_worker_backlog(w), 3);
  /* The 1 ms deadline passes while the first job holds the worker. */
  do {
    clock_gettime(CLOCK_MONOTONIC, &t);
  } while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 3000000L);
  ev.release = true;
  wait_done(ev.io, 3);
  assert_int_equal(ev.late, 1);
  assert_int_equal(ev.ran, 2); /* the blocking one and the one with time to spare */
  assert_int_equal(ev.order[0], 7);
  hb_worker_stop(w);
  assert_false(ev.wrong_thread);
  hbt_stack_stop(&s);
}

/* A full queue refuses: nothing queued, nothing called. */
static void test_full_queue_refuses(void **state) {
  (void)state;
  hbt_stack s;
  custom(&s);
  hbt_stack_start(&s);
  reset(hbt_io(&s, 0));
  hb_worker *w = hb_worker_start("test", 2, NULL);
  assert_true(hb_worker_submit(w, ev.io, run_blocking, run_late, HBT_WAIT_MS, done, NULL));
  wait_blocked();
  assert_true(hb_worker_submit(w, ev.io, run, run_late, HBT_WAIT_MS, done, NULL));
  assert_false(hb_worker_submit(w, ev.io, run, run_late, HBT_WAIT_MS, done, NULL));
  assert_int_equal(hb_worker_backlog(w), 2);
  ev.release = true;
  wait_done(ev.io, 2);
  assert_int_equal(ev.ran, 2);
  assert_int_equal(ev.late, 0);
  /* Room again once the queue drained. */
  assert_true(hb_worker_submit(w, ev.io, run, run_late, HBT_WAIT_MS, done, NULL));
  wait_done(ev.io, 3);
  hb_worker_stop(w);
  hbt_stack_stop(&s);
}

/* Stop while jobs wait: each still runs and is answered, then the exit
 * hook runs on the worker thread; a stopped worker is gone (NULL is a no-op). */
static void test_stop_drains(void **state) {
  (void)state;
  hbt_stack s;
  custom(&s);
  hbt_stack_start(&s);
  reset(hbt_io(&s, 0));
  hb_worker *w = hb_worker_start("test", 8, exit_hook);
  assert_true(hb_worker_submit(w, ev.io, run_blocking, run_late, HBT_WAIT_MS, done, NULL));
  wait_blocked();
  for (int i = 0; i < 3; i++) assert_true(hb_worker_submit(w, ev.io, run, run_late, HBT_WAIT_MS, done, NULL));
  ev.release = true;
  hb_worker_stop(w);
  assert_int_equal(ev.ran, 4);
  assert_int_equal(ev.exits, 1);
  wait_done(ev.io, 4);
  hb_worker_stop(NULL);
  assert_false(ev.wrong_thread);
  assert_false(ev.null_ctx);
  hbt_stack_stop(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_jobs_run_off_the_thread_in_order),
      HBT_TEST(test_late_job_runs_late),
      HBT_TEST(test_full_queue_refuses),
      HBT_TEST(test_stop_drains),
  };
  return cmocka_run_group_tests_name("worker", tests, NULL, NULL);
}
