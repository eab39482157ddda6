/* test_alloc.c - the allocation wrapper (alloc.c): live bytes counted up
 * and down by every call, zero-size requests, strndup. The leak check of
 * every other test relies on this count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"

#include "hubbub/alloc.h"

static void test_counts(void **state) {
  (void)state;
  int64_t base = hb_alloc_live_bytes();
  char *a = hb_malloc(100);
  int64_t after_a = hb_alloc_live_bytes();
  assert_true(after_a - base >= 100);
  int *z = hb_calloc(10, sizeof *z);
  for (int i = 0; i < 10; i++) assert_int_equal(z[i], 0);
  assert_true(hb_alloc_live_bytes() - after_a >= 40);
  a = hb_realloc(a, 5000);
  memset(a, 1, 5000);
  assert_true(hb_alloc_live_bytes() - base >= 5040);
  char *s = hb_strndup("hello world", 5);
  assert_string_equal(s, "hello");
  void *zero = hb_malloc(0); /* a real block: freeing it must balance too */
  assert_non_null(zero);
  void *zc = hb_calloc(0, 0);
  assert_non_null(zc);
  hb_free(zero);
  hb_free(zc);
  hb_free(s);
  hb_free(z);
  hb_free(a);
  hb_free(NULL);
  assert_int_equal(hb_alloc_live_bytes(), base);
  /* realloc of NULL is a malloc */
  char *r = hb_realloc(NULL, 10);
  assert_true(hb_alloc_live_bytes() > base);
  hb_free(r);
  assert_int_equal(hb_alloc_live_bytes(), base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_counts),
  };
  return cmocka_run_group_tests_name("alloc", tests, NULL, NULL);
}
