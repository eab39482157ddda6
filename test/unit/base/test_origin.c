/*
 * test_origin.c - the one Origin matcher (origin.c): whole entries,
 * separated by spaces or tabs, compared ignoring ASCII case; no prefix,
 * suffix or wildcard matches; an empty list allows nothing by itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"

#include "hubbub/origin.h"

static bool in(const char *list, const char *origin) {
  return hb_origin_in_list(list, origin, origin ? strlen(origin) : 0);
}

static void test_match(void **state) {
  (void)state;
  const char *list = "https://app.example.com \t http://localhost:3000\thttps://b.example";
  assert_true(in(list, "https://app.example.com"));
  assert_true(in(list, "http://localhost:3000"));
  assert_true(in(list, "https://b.example"));
  /* case-insensitive both ways (RFC 6454 serialises in lowercase) */
  assert_true(in(list, "HTTPS://App.Example.COM"));
  assert_true(in("https://App.Example.com", "https://app.example.com"));
  /* whole entries only */
  assert_false(in(list, "https://app.example.co"));
  assert_false(in(list, "https://app.example.com.evil.test"));
  assert_false(in(list, "https://app.example.com:443"));
  assert_false(in(list, "http://localhost"));
  assert_false(in(list, "localhost:3000"));
  assert_false(in(list, "https://app.example.com http://localhost:3000")); /* two entries are not one */
  assert_false(in("*", "https://any.example"));                        /* no wildcards */
  assert_false(in("https://*.example.com", "https://a.example.com"));
  /* only `len` bytes of the origin count */
  assert_true(hb_origin_in_list(list, "https://b.exampleXYZ", 17));
  assert_false(hb_origin_in_list(list, "https://b.example", 16));
}

static void test_empty(void **state) {
  (void)state;
  assert_false(in("", "https://a.example"));
  assert_false(in(" \t ", "https://a.example"));
  assert_false(in(NULL, "https://a.example"));
  assert_false(in("https://a.example", NULL));
  assert_false(in("https://a.example", ""));
  assert_true(hb_origin_list_empty(""));
  assert_true(hb_origin_list_empty(" \t  "));
  assert_true(hb_origin_list_empty(NULL));
  assert_false(hb_origin_list_empty(" x "));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_match),
      HBT_TEST(test_empty),
  };
  return cmocka_run_group_tests_name("origin", tests, NULL, NULL);
}
