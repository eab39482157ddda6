/*
 * test_ratelimit.c - publish rate limits per API token (ratelimit.c): one
 * bucket per token, shared by every thread, refilled on the caller's clock;
 * rate 0 is no limit; shutdown frees the table.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"

#include "hubbub/ratelimit.h"
#include "hubbub/uuid.h"

static hb_uuid key(uint8_t tag) {
  hb_uuid u;
  memset(&u, tag, sizeof u);
  return u;
}

static void test_per_token_buckets(void **state) {
  (void)state;
  hb_uuid a = key(1), b = key(2);
  int retry = 0;
  for (int i = 0; i < 3; i++) assert_true(hb_ratelimit_take(&a, 10, 3, 1000, &retry));
  assert_false(hb_ratelimit_take(&a, 10, 3, 1000, &retry));
  assert_int_equal(retry, 1);
  /* another token has its own bucket */
  assert_true(hb_ratelimit_take(&b, 10, 3, 1000, &retry));
  /* a's refills at 10 per second */
  assert_true(hb_ratelimit_take(&a, 10, 3, 1100, &retry));
  assert_false(hb_ratelimit_take(&a, 10, 3, 1100, &retry));
  hb_ratelimit_shutdown(); /* forgets every bucket: a is full again */
  for (int i = 0; i < 3; i++) assert_true(hb_ratelimit_take(&a, 10, 3, 1100, &retry));
  hb_ratelimit_shutdown();
}

static void test_rate_zero_is_unlimited(void **state) {
  (void)state;
  hb_uuid a = key(3);
  for (int i = 0; i < 10000; i++) assert_true(hb_ratelimit_take(&a, 0, 0, 0, NULL));
  hb_ratelimit_shutdown(); /* nothing was made for it: the leak check agrees either way */
}

#define PER_THREAD 5000
static atomic_int granted;

static void *taker(void *arg) {
  hb_uuid *k = arg;
  for (int i = 0; i < PER_THREAD; i++)
    if (hb_ratelimit_take(k, 1, 1000, 5000, NULL)) atomic_fetch_add(&granted, 1);
  return NULL;
}

/* Threads share one bucket per token: between them exactly the burst is
 * granted (the clock does not move), never more. */
static void test_shared_between_threads(void **state) {
  (void)state;
  hb_uuid k = key(4);
  atomic_store(&granted, 0);
  pthread_t th[4];
  for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&th[i], NULL, taker, &k), 0);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  assert_int_equal(atomic_load(&granted), 1000);
  hb_ratelimit_shutdown();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_per_token_buckets),
      HBT_TEST(test_rate_zero_is_unlimited),
      HBT_TEST(test_shared_between_threads),
  };
  return cmocka_run_group_tests_name("ratelimit", tests, NULL, NULL);
}
