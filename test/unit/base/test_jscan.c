/*
 * test_jscan.c - the fast JSON check: what it accepts, what it leaves to
 * jansson, and that jansson (with json.c's flags) accepts everything it
 * accepts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

#include <jansson.h>

#include "hubbub/jscan.h"
#include "hubbub/limits.h"

/* The flags hb_json_load (json.c) parses with. */
#define FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL)

static bool jansson_accepts(const char *s, size_t n) {
  json_error_t je;
  json_t *j = json_loadb(s, n, FLAGS, &je);
  json_decref(j);
  return j != NULL;
}

static void expect_n(const char *s, size_t n, bool want) {
  bool got = hb_jscan_plain(s, n);
  if (got != want) fail_msg("%.*s: got %d, want %d", (int)n, s, got, want);
  /* The contract: never accept what jansson refuses (numbers aside: see
   * test_numbers_of_any_size). */
  if (got && !jansson_accepts(s, n)) fail_msg("%.*s: accepted, but jansson refuses it", (int)n, s);
}

static void expect(const char *s, bool want) { expect_n(s, strlen(s), want); }

static void test_values(void **state) {
  (void)state;
  expect("{}", true);
  expect("[]", true);
  expect(" \t\r\n{ } \n", true);
  expect("\"x\"", true);
  expect("0", true);
  expect("-0", true);
  expect("true", true);
  expect("false", true);
  expect("null", true);
  expect("{\"a\":[1,2.5,-3e7,1E+2,0.0e-0,true,false,null,\"s\",{},[]]}", true);
  expect("{ \"a\" : 1 , \"b\" : { \"a\" : 2 } }", true);
  expect("[[[[]]],[{}]]", true);
}

static void test_grammar_refused(void **state) {
  (void)state;
  const char *bad[] = {
      "",      " ",      "{",        "}",       "[",       "[1,]",     "{\"a\":1,}", "{\"a\"}",
      "{\"a\" 1}", "{1:2}", "{a:1}",   "[1 2]",   "{}{}",    "{} x",     "tru",      "truex",
      "nul",   "False",  "01",       "1.",      ".5",      "-",        "+1",       "1e",
      "1e+",   "0x10",   "--1",      "1.e5",    "'a'",     "[,]",      "{,}",      "\"abc",
      "[1]]",  "NaN",    "Infinity", "\xef\xbb\xbf{}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) expect(bad[i], false);
}

static void test_strings(void **state) {
  (void)state;
  expect("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\u0000 \\uFFFF\"", true);
  expect("\"\x7f\"", true);                     /* DEL is not a control character to JSON */
  expect("\"\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", true); /* 2, 3 and 4 bytes */
  expect("\"\xed\x9f\xbf \xee\x80\x80 \xf4\x8f\xbf\xbf\"", true); /* edges: U+D7FF, U+E000, U+10FFFF */
  expect("\"\\x\"", false);
  expect("\"\\u12G4\"", false);
  expect("\"\\u12\"", false);
  expect("\"\\", false);
  expect("\"a\tb\"", false); /* raw control character */
  expect("\"\x1f\"", false);
  expect_n("\"\0\"", 3, false); /* raw NUL */
  /* surrogate escapes, paired or not: left to jansson */
  expect("\"\\ud83d\\ude00\"", false);
  expect("\"\\ud800\"", false);
  expect("\"\\udc00\"", false);
}

static void test_utf8_refused(void **state) {
  (void)state;
  const char *bad[] = {
      "\"\x80\"",             /* lone continuation */
      "\"\xc0\x80\"",         /* overlong NUL */
      "\"\xc1\xbf\"",         /* overlong */
      "\"\xe0\x80\x80\"",     /* overlong 3 */
      "\"\xe0\x9f\xbf\"",     /* overlong 3, edge */
      "\"\xed\xa0\x80\"",     /* UTF-8 surrogate U+D800 */
      "\"\xed\xbf\xbf\"",     /* U+DFFF */
      "\"\xf0\x80\x80\x80\"", /* overlong 4 */
      "\"\xf0\x8f\xbf\xbf\"", /* overlong 4, edge */
      "\"\xf4\x90\x80\x80\"", /* above U+10FFFF */
      "\"\xf5\x80\x80\x80\"", /* no such lead */
      "\"\xff\"",
      "\"\xc3\"",             /* truncated by the quote */
      "\"\xe2\x82\"",
      "\"\xf0\x9f\x98\"",
      "\"\xc3\x28\"", /* bad continuation */
      "\"\xe2\x28\xa1\"",
      "\"\xf0\x9f\x28\x80\"",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) expect(bad[i], false);
  expect_n("\"\xc3", 2, false); /* truncated by the end of the text */
}

static void test_keys(void **state) {
  (void)state;
  expect("{\"a\":1,\"a\":2}", false);
  expect("{\"a\":1,\"b\":{\"a\":2},\"c\":3}", true); /* same key, other object */
  expect("{\"a\":{\"b\":1},\"b\":2}", true);         /* an inner object's keys are forgotten */
  expect("{\"a\":{\"b\":1,\"b\":1}}", false);
  expect("[{\"a\":1},{\"a\":1}]", true);
  expect("{\"ab\":1,\"a\":2,\"b\":3,\"\":4}", true);
  expect("{\"\":1,\"\":2}", false);
  /* a key with an escape (may equal another once decoded): jansson decides */
  expect("{\"d\\u0061ta\":1}", false);
  expect("{\"a\\\"\":1}", false);
}

/* More keys open at once than the duplicate check remembers: jansson decides. */
static void test_many_keys(void **state) {
  (void)state;
  char buf[16 * (HB_JSCAN_MAX_KEYS + 2)];
  for (int keys = HB_JSCAN_MAX_KEYS; keys <= HB_JSCAN_MAX_KEYS + 1; keys++) {
    size_t n = 0;
    buf[n++] = '{';
    for (int k = 0; k < keys; k++)
      n += (size_t)snprintf(buf + n, sizeof buf - n, "%s\"k%d\":%d", k ? "," : "", k, k);
    buf[n++] = '}';
    expect_n(buf, n, keys <= HB_JSCAN_MAX_KEYS);
  }
  /* keys of a closed object no longer count */
  size_t n = 0;
  buf[n++] = '[';
  for (int o = 0; o < 3; o++) {
    n += (size_t)snprintf(buf + n, sizeof buf - n, "%s{", o ? "," : "");
    for (int k = 0; k < HB_JSCAN_MAX_KEYS / 2; k++)
      n += (size_t)snprintf(buf + n, sizeof buf - n, "%s\"k%d\":0", k ? "," : "", k);
    buf[n++] = '}';
  }
  buf[n++] = ']';
  expect_n(buf, n, true);
}

/* The same count as json.c's depth cap: HB_MAX_JSON_DEPTH levels pass. */
static void test_depth(void **state) {
  (void)state;
  char buf[8 * HB_MAX_JSON_DEPTH + 8];
  for (int d = HB_MAX_JSON_DEPTH; d <= HB_MAX_JSON_DEPTH + 1; d++) {
    memset(buf, '[', (size_t)d);
    memset(buf + d, ']', (size_t)d);
    expect_n(buf, 2 * (size_t)d, d <= HB_MAX_JSON_DEPTH);
    /* objects count the same: {"k":{"k":...1...}} */
    size_t n = 0;
    for (int i = 0; i < d; i++) n += (size_t)sprintf(buf + n, "{\"k\":");
    buf[n++] = '1';
    memset(buf + n, '}', (size_t)d);
    expect_n(buf, n + (size_t)d, d <= HB_MAX_JSON_DEPTH);
  }
}

/* Numbers jansson cannot hold are valid JSON: accepted here, and json.c
 * hands jansson a copy without them when it validates on the slow path. */
static void test_numbers_of_any_size(void **state) {
  (void)state;
  const char *big[] = {"123456789012345678901234567890", "1e400", "-1e400", "[1e999]"};
  for (size_t i = 0; i < sizeof big / sizeof big[0]; i++)
    if (!hb_jscan_plain(big[i], strlen(big[i]))) fail_msg("%s refused", big[i]);
  assert_int_equal(hb_jscan_number_len("-12.5e+3,", 0, 9), 8);
  assert_int_equal(hb_jscan_number_len("x", 0, 1), 0);
  assert_int_equal(hb_jscan_number_len("-", 0, 1), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_values),        HBT_TEST(test_grammar_refused),
      HBT_TEST(test_strings),       HBT_TEST(test_utf8_refused),
      HBT_TEST(test_keys),          HBT_TEST(test_many_keys),
      HBT_TEST(test_depth),         HBT_TEST(test_numbers_of_any_size),
  };
  return cmocka_run_group_tests_name("jscan", tests, NULL, NULL);
}
