/*
 * test_pct.c - strict percent-decoding (pct.c): escapes in either case,
 * '+' left alone, every malformed escape refused, and a result that does
 * not fit its buffer (with the NUL) refused rather than cut.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "check.h"

#include "hubbub/pct.h"

static ssize_t dec(const char *s, char *out, size_t cap) { return hb_pct_decode(s, strlen(s), out, cap); }

static void test_escapes(void **state) {
  (void)state;
  char out[64];
  assert_int_equal(dec("", out, sizeof out), 0);
  assert_string_equal(out, "");
  assert_int_equal(dec("plain-token_1.2~x", out, sizeof out), 17);
  assert_string_equal(out, "plain-token_1.2~x");
  assert_int_equal(dec("a%20b", out, sizeof out), 3);
  assert_string_equal(out, "a b");
  assert_int_equal(dec("%41%42%43", out, sizeof out), 3);
  assert_string_equal(out, "ABC");
  assert_int_equal(dec("%2f%2F%3a%3A", out, sizeof out), 4); /* hex in either case */
  assert_string_equal(out, "//::");
  assert_int_equal(dec("a+b", out, sizeof out), 3); /* '+' is not a space in a URL */
  assert_string_equal(out, "a+b");
  assert_int_equal(dec("%25%32%30", out, sizeof out), 3); /* decoded once, not twice */
  assert_string_equal(out, "%20");
  assert_int_equal(dec("p%40ss%3Aw%2Frd", out, sizeof out), 9);
  assert_string_equal(out, "p@ss:w/rd");
  assert_int_equal(dec("%00x", out, sizeof out), 2); /* a NUL is a byte like any other */
  assert_memory_equal(out, "\0x", 3);
  assert_int_equal(dec("%C3%A9", out, sizeof out), 2);
  assert_string_equal(out, "\xc3\xa9");
  /* only n bytes are read */
  assert_int_equal(hb_pct_decode("ab%41", 2, out, sizeof out), 2);
  assert_string_equal(out, "ab");
}

static void test_malformed(void **state) {
  (void)state;
  char out[64];
  const char *bad[] = {"%", "a%", "%4", "ab%4", "%4G", "%G4", "%%41", "%-1", "% 41", "%x", "100%"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (dec(bad[i], out, sizeof out) != -1) fail_msg("'%s' accepted", bad[i]);
  /* an escape cut by the length given is malformed too */
  assert_int_equal(hb_pct_decode("%41", 2, out, sizeof out), -1);
}

static void test_capacity(void **state) {
  (void)state;
  char out[8];
  memset(out, 'z', sizeof out);
  assert_int_equal(dec("abcdefg", out, 8), 7); /* 7 bytes and the NUL: exactly fits */
  assert_string_equal(out, "abcdefg");
  assert_int_equal(dec("abcdefgh", out, 8), -1);
  assert_int_equal(dec("abcdef%41", out, 8), 7);
  assert_int_equal(dec("abcdefg%41", out, 8), -1); /* the escape does not fit */
  assert_int_equal(dec("%41%41%41%41%41%41%41%41", out, 8), -1);
  assert_int_equal(dec("", out, 1), 0);
  assert_int_equal(dec("", out, 0), -1); /* no room even for the NUL */
  assert_int_equal(dec("a", out, 1), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_escapes),
      HBT_TEST(test_malformed),
      HBT_TEST(test_capacity),
  };
  return cmocka_run_group_tests_name("pct", tests, NULL, NULL);
}
