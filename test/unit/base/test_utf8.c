/* test_utf8.c - well-formed UTF-8 (utf8.c), against a decoder that checks
 * each code point (RFC 3629): every string of up to 3 bytes, and 4-byte
 * sequences at their edges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "text.h"

#include "hubbub/utf8.h"


static void check(const uint8_t *s, size_t n) {
  bool want = hbt_utf8_ref_valid(s, n);
  if (hb_utf8_valid(s, n) != want) fail_msg("%02x %02x %02x %02x (%zu bytes): want %d", s[0], n > 1 ? s[1] : 0,
                                            n > 2 ? s[2] : 0, n > 3 ? s[3] : 0, n, want);
  if (n && s[0] >= 0x80) {
    size_t len = hb_utf8_seq_len(s, n);
    if (len == n) assert_true(want);
  }
}

static void test_exhaustive(void **state) {
  (void)state;
  uint8_t s[4];
  for (int a = 0; a < 256; a++) {
    s[0] = (uint8_t)a;
    check(s, 1);
    for (int b = 0; b < 256; b++) {
      s[1] = (uint8_t)b;
      check(s, 2);
      for (int c = 0; c < 256; c += (a >= 0xe0 ? 1 : 17)) {
        s[2] = (uint8_t)c;
        check(s, 3);
      }
    }
  }
  const uint8_t edge[] = {0x00, 0x7f, 0x80, 0x8f, 0x90, 0xbf, 0xc0, 0xff};
  for (int a = 0xf0; a < 256; a++)
    for (int b = 0; b < 256; b++)
      for (size_t c = 0; c < sizeof edge; c++)
        for (size_t d = 0; d < sizeof edge; d++) {
          s[0] = (uint8_t)a, s[1] = (uint8_t)b, s[2] = edge[c], s[3] = edge[d];
          check(s, 4);
        }
  assert_true(hb_utf8_valid((const uint8_t *)"", 0));
  assert_int_equal(hb_utf8_seq_len((const uint8_t *)"\xe2\x82\xac", 3), 3);
  assert_int_equal(hb_utf8_seq_len((const uint8_t *)"\xe2\x82\xac", 2), 0); /* cut short */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_exhaustive),
  };
  return cmocka_run_group_tests_name("utf8", tests, NULL, NULL);
}
