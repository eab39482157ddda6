/*
 * test_inbox.c - handing jobs to a loop (inbox.c): jobs run on the loop's
 * thread in posting order, from any thread, a job may post again, and a
 * destroyed inbox runs what is left once with ctx NULL so that it can
 * release its argument.
 */
#include <pthread.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "check.h"

#include "hubbub/alloc.h"
#include "hubbub/inbox.h"

#define JOBS 1000

typedef struct {
  hb_inbox ib;
  uv_loop_t loop;
  uv_thread_t loop_thread;
  int ran[2 * JOBS + 8]; /* the order the jobs ran in */
  int nran;
  int null_ctx;
  bool wrong_thread;
} fixture;

static fixture fx;

static void record(void *ctx, void *arg) {
  int *v = arg;
  if (!ctx) {
    fx.null_ctx++;
  } else {
    uv_thread_t self = uv_thread_self();
    if (!uv_thread_equal(&self, &fx.loop_thread)) fx.wrong_thread = true;
    fx.ran[fx.nran++] = *v;
  }
  hb_free(v); /* the job owns its argument, with or without a ctx */
}

static void post_value(int v) {
  int *p = hb_malloc(sizeof *p);
  *p = v;
  hb_inbox_post(&fx.ib, record, p);
}

static void run_until(int n) {
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  while (fx.nran < n) {
    uv_run(&fx.loop, UV_RUN_ONCE);
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (t.tv_sec - t0.tv_sec > 10) fail_msg("%d of %d jobs ran within 10 s", fx.nran, n);
  }
}

static int setup(void **state) {
  (void)state;
  hbt_leak_begin();
  memset(&fx, 0, sizeof fx);
  assert_int_equal(uv_loop_init(&fx.loop), 0);
  fx.loop_thread = uv_thread_self();
  assert_int_equal(hb_inbox_init(&fx.ib, &fx.loop, &fx), 0);
  hbt_leak_loop(&fx.loop); /* the teardown closes the wake-up handle and runs the loop out */
  return 0;
}

static int teardown(void **state) {
  (void)state;
  hbt_leak_end();
  hb_inbox_destroy(&fx.ib); /* nothing left: runs nothing, frees nothing */
  return 0;
}

static void test_order_on_the_loop_thread(void **state) {
  (void)state;
  for (int i = 0; i < JOBS; i++) post_value(i);
  run_until(JOBS);
  assert_int_equal(fx.nran, JOBS);
  for (int i = 0; i < JOBS; i++) assert_int_equal(fx.ran[i], i);
  assert_false(fx.wrong_thread);
}

static void *poster(void *arg) {
  int base = *(int *)arg;
  for (int i = 0; i < JOBS; i++) post_value(base + i);
  return NULL;
}

/* Two other threads post at once: every job runs once, on the loop's
 * thread, each thread's jobs in the order it posted them. */
static void test_posted_from_other_threads(void **state) {
  (void)state;
  pthread_t th[2];
  int bases[2] = {0, 100000};
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&th[i], NULL, poster, &bases[i]), 0);
  run_until(2 * JOBS);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  assert_int_equal(fx.nran, 2 * JOBS);
  assert_false(fx.wrong_thread);
  int next[2] = {0, 100000};
  for (int i = 0; i < fx.nran; i++) {
    int t = fx.ran[i] >= 100000;
    assert_int_equal(fx.ran[i], next[t]);
    next[t]++;
  }
}

static void repost(void *ctx, void *arg) {
  record(ctx, arg);
  if (ctx && fx.nran < 3) post_value(fx.nran); /* posting from a job must not deadlock */
}

static void test_job_posts_again(void **state) {
  (void)state;
  int *p = hb_malloc(sizeof *p);
  *p = 0;
  hb_inbox_post(&fx.ib, repost, p);
  run_until(2);
  assert_int_equal(fx.ran[0], 0);
  assert_int_equal(fx.ran[1], 1);
}

/* Jobs still queued when the loop is gone run once with ctx NULL, in
 * order, and free what they hold (the leak check says so). */
static void test_destroy_drops_with_null_ctx(void **state) {
  (void)state;
  for (int i = 0; i < 5; i++) post_value(i);
  hb_inbox_close(&fx.ib, NULL);
  uv_run(&fx.loop, UV_RUN_DEFAULT); /* the close callback; the jobs stay queued */
  assert_int_equal(fx.nran, 0);
  hb_inbox_destroy(&fx.ib);
  assert_int_equal(fx.null_ctx, 5);
  /* the teardown destroys it again: an empty inbox runs nothing */
  assert_int_equal(hb_inbox_init(&fx.ib, &fx.loop, &fx), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_order_on_the_loop_thread, setup, teardown),
      cmocka_unit_test_setup_teardown(test_posted_from_other_threads, setup, teardown),
      cmocka_unit_test_setup_teardown(test_job_posts_again, setup, teardown),
      cmocka_unit_test_setup_teardown(test_destroy_drops_with_null_ctx, setup, teardown),
  };
  return cmocka_run_group_tests_name("inbox", tests, NULL, NULL);
}
