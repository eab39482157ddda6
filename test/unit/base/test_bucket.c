/*
 * test_bucket.c - the token bucket (bucket.c): a full bucket at the start,
 * refill at `rate` per second up to `burst`, retry_after when empty, and
 * rate 0 meaning no limit. The clock is the caller's: tests pass it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "check.h"

#include "hubbub/bucket.h"

static void test_burst_then_refill(void **state) {
  (void)state;
  hb_bucket b;
  int retry = -1;
  hb_bucket_init(&b, 5, 1000);
  for (int i = 0; i < 5; i++) assert_true(hb_bucket_take(&b, 10, 5, 1000, &retry));
  assert_false(hb_bucket_take(&b, 10, 5, 1000, &retry));
  assert_int_equal(retry, 1); /* 0.1 s away, said as the minimum of 1 s */
  /* 10 per second: one token every 100 ms */
  assert_false(hb_bucket_take(&b, 10, 5, 1050, NULL)); /* retry_after may be NULL */
  assert_true(hb_bucket_take(&b, 10, 5, 1100, &retry));
  assert_false(hb_bucket_take(&b, 10, 5, 1100, &retry));
  assert_true(hb_bucket_take(&b, 10, 5, 1300, &retry)); /* 2 tokens came */
  assert_true(hb_bucket_take(&b, 10, 5, 1300, &retry));
  assert_false(hb_bucket_take(&b, 10, 5, 1300, &retry));
}

static void test_burst_cap(void **state) {
  (void)state;
  hb_bucket b;
  hb_bucket_init(&b, 3, 0);
  for (int i = 0; i < 3; i++) assert_true(hb_bucket_take(&b, 100, 3, 0, NULL));
  /* an hour idle fills the bucket to the burst, not beyond */
  int ok = 0;
  while (hb_bucket_take(&b, 100, 3, 3600000, NULL)) ok++;
  assert_int_equal(ok, 3);
  /* a clock that goes back adds nothing */
  assert_false(hb_bucket_take(&b, 100, 3, 1000, NULL));
}

static void test_retry_after(void **state) {
  (void)state;
  hb_bucket b;
  int retry = 0;
  hb_bucket_init(&b, 1, 0);
  assert_true(hb_bucket_take(&b, 0.25, 1, 0, &retry));
  assert_false(hb_bucket_take(&b, 0.25, 1, 0, &retry));
  assert_int_equal(retry, 4); /* one token every 4 s */
  assert_false(hb_bucket_take(&b, 0.25, 1, 3000, &retry));
  assert_int_equal(retry, 1); /* 1 s left */
  assert_true(hb_bucket_take(&b, 0.25, 1, 4000, &retry));
}

static void test_unlimited(void **state) {
  (void)state;
  hb_bucket b;
  hb_bucket_init(&b, 0, 0);
  for (int i = 0; i < 100000; i++) assert_true(hb_bucket_take(&b, 0, 0, 0, NULL));
  assert_true(hb_bucket_take(&b, -1, 0, 0, NULL));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_burst_then_refill),
      HBT_TEST(test_burst_cap),
      HBT_TEST(test_retry_after),
      HBT_TEST(test_unlimited),
  };
  return cmocka_run_group_tests_name("bucket", tests, NULL, NULL);
}
