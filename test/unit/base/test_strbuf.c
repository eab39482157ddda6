/* test_strbuf.c - JSON string escaping (RFC 8259 7): every byte value, and
 * runs of plain bytes around escaped ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

#include "hubbub/alloc.h"
#include "hubbub/strbuf.h"

/* The escaping rules, one byte at a time (independent of the code under test). */
static void reference(char *out, const unsigned char *s, size_t n) {
  size_t o = 0;
  out[o++] = '"';
  for (size_t i = 0; i < n; i++) {
    unsigned char c = s[i];
    if (c == '"') o += (size_t)sprintf(out + o, "\\\"");
    else if (c == '\\') o += (size_t)sprintf(out + o, "\\\\");
    else if (c == '\n') o += (size_t)sprintf(out + o, "\\n");
    else if (c == '\r') o += (size_t)sprintf(out + o, "\\r");
    else if (c == '\t') o += (size_t)sprintf(out + o, "\\t");
    else if (c < 0x20) o += (size_t)sprintf(out + o, "\\u%04x", c);
    else out[o++] = (char)c;
  }
  out[o++] = '"';
  out[o] = '\0';
}

static void expect_escaped(const unsigned char *s, size_t n) {
  char want[4096];
  reference(want, s, n);
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_strbuf_addstr(&sb, "x"); /* appends after what is there */
  hb_strbuf_add_json_str(&sb, (const char *)s, n);
  assert_int_equal(sb.len, 1 + strlen(want));
  assert_string_equal(sb.buf + 1, want);
  hb_strbuf_free(&sb);
}

static void test_json_str(void **state) {
  (void)state;
  unsigned char s[600];
  /* every byte alone, and between plain runs */
  for (int c = 0; c < 256; c++) {
    s[0] = (unsigned char)c;
    expect_escaped(s, 1);
    memcpy(s, "abc", 3);
    s[3] = (unsigned char)c;
    memcpy(s + 4, "def", 3);
    expect_escaped(s, 7);
  }
  expect_escaped((const unsigned char *)"", 0);
  expect_escaped((const unsigned char *)"\"\"\\\n", 4);
  /* all 256 byte values in a row, twice (UTF-8 is passed through) */
  for (int i = 0; i < 512; i++) s[i] = (unsigned char)(i * 7);
  expect_escaped(s, 512);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_json_str),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
