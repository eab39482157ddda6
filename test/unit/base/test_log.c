/* test_log.c - log lines (log.h): text and JSON with hostile field values,
 * truncation that keeps a line whole, credential redaction, the repeat limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include <jansson.h>

#include "hubbub/log.h"

/* Run `fn` with stderr sent to a file; return what it wrote (static buffer). */
static const char *capture(void (*fn)(void)) {
  static char out[8192];
  FILE *f = tmpfile();
  assert_non_null(f);
  fflush(stderr);
  int saved = dup(STDERR_FILENO);
  dup2(fileno(f), STDERR_FILENO);
  fn();
  dup2(saved, STDERR_FILENO);
  close(saved);
  rewind(f);
  size_t n = fread(out, 1, sizeof out - 1, f);
  out[n] = '\0';
  fclose(f);
  return out;
}

static const char hostile[] = "a \"q\" \\ \n\r\t\x01\x7f \xff \xc3\xa9 end";

static void line_with_fields(void) {
  hb_log_line l;
  if (!hb_log_begin(&l, HB_LOG_WARN, "refused")) return;
  hb_log_str(&l, "code", "invalid_token");
  hb_log_int(&l, "status", 401);
  hb_log_strn(&l, "path", hostile, sizeof hostile - 1);
  hb_log_str(&l, "empty", "");
  hb_log_end(&l);
}

static void text_format(void **state) {
  hb_log_set_format(HB_LOG_TEXT);
  hb_log_set_level(HB_LOG_INFO);
  const char *s = capture(line_with_fields);
  /* One line: the hostile value's newline is escaped. */
  assert_non_null(strchr(s, '\n'));
  assert_int_equal(strchr(s, '\n') - s, (long)strlen(s) - 1);
  const char *body = strstr(s, "Z warn refused ");
  assert_non_null(body);
  assert_int_equal(body - s, 23); /* 2026-01-01T12:00:00.123 */
  assert_string_equal(body + 15,
                      "code=invalid_token status=401 path=\"a \\\"q\\\" \\\\ \\n\\r\\t\\u0001\\u007f \\u00ff \xc3\xa9 end\" "
                      "empty=\"\"\n");
}

static void json_format(void **state) {
  hb_log_set_format(HB_LOG_JSON);
  const char *s = capture(line_with_fields);
  hb_log_set_format(HB_LOG_TEXT);
  json_error_t err;
  json_t *o = json_loads(s, JSON_REJECT_DUPLICATES, &err);
  assert_non_null(o);
  assert_string_equal(json_string_value(json_object_get(o, "level")), "warn");
  assert_string_equal(json_string_value(json_object_get(o, "msg")), "refused");
  assert_int_equal(json_integer_value(json_object_get(o, "status")), 401);
  /* The byte 0xff (not UTF-8) comes back as U+00FF; the rest as it was. */
  assert_string_equal(json_string_value(json_object_get(o, "path")),
                      "a \"q\" \\ \n\r\t\x01\x7f \xc3\xbf \xc3\xa9 end");
  assert_non_null(json_object_get(o, "ts"));
  json_decref(o);
}

static void long_field(void) {
  char big[3000];
  memset(big, 'x', sizeof big);
  hb_log_line l;
  hb_log_begin(&l, HB_LOG_ERROR, "big");
  hb_log_str(&l, "before", "kept");
  hb_log_strn(&l, "big", big, sizeof big);
  hb_log_str(&l, "after", "kept too");
  hb_log_end(&l);
}

static void truncation(void **state) {
  hb_log_set_format(HB_LOG_JSON);
  const char *s = capture(long_field);
  hb_log_set_format(HB_LOG_TEXT);
  assert_true(strlen(s) <= HB_LOG_LINE_BYTES);
  json_t *o = json_loads(s, 0, NULL);
  assert_non_null(o);
  assert_null(json_object_get(o, "big"));
  assert_string_equal(json_string_value(json_object_get(o, "after")), "kept too");
  assert_true(json_is_true(json_object_get(o, "truncated")));
  json_decref(o);
}

static void below_level(void) {
  hb_log_line l;
  assert_false(hb_log_begin(&l, HB_LOG_INFO, "hidden"));
  hb_log(HB_LOG_DEBUG, "hidden too %d", 1);
  hb_log(HB_LOG_ERROR, "shown %s", "line\nforged");
}

static void levels(void **state) {
  hb_log_set_level(HB_LOG_WARN);
  const char *s = capture(below_level);
  hb_log_set_level(HB_LOG_INFO);
  assert_null(strstr(s, "hidden"));
  /* A message is cut at a line break: nothing forges a second line. */
  assert_non_null(strstr(s, " error shown line\n"));
  assert_null(strstr(s, "forged"));
  assert_int_equal(hb_log_level_parse("warn"), HB_LOG_WARN);
  assert_int_equal(hb_log_level_parse("loud"), -1);
  assert_int_equal(hb_log_format_parse("json"), HB_LOG_JSON);
  assert_int_equal(hb_log_format_parse("xml"), -1);
}

static void redaction(void **state) {
  char out[HB_LOG_REDACT_BYTES];
  hb_log_redact("Bearer hbk_abcdefghijklmnopqrstuvwxyz", 37, out);
  assert_string_equal(out, "hbk_abcd\xe2\x80\xa6");
  hb_log_redact("  bearer   eyJhbGciOiJIUzI1NiJ9.e30.sig", 39, out);
  assert_string_equal(out, "eyJhbGci\xe2\x80\xa6");
  hb_log_redact("abcdef", 6, out); /* short: never more than half */
  assert_string_equal(out, "abc\xe2\x80\xa6");
  hb_log_redact("", 0, out);
  assert_string_equal(out, "\xe2\x80\xa6");
  hb_log_redact(NULL, 0, out);
  assert_string_equal(out, "\xe2\x80\xa6");
  hb_log_redact("a\"b=c\\d\nefghijklmnop", 20, out); /* nothing that needs quoting */
  assert_string_equal(out, "a?b?c?d?\xe2\x80\xa6");
}

static void repeat_limit(void **state) {
  hb_log_limit lim;
  memset(&lim, 0, sizeof lim);
  unsigned long dropped = 99;
  assert_true(hb_log_limit_take(&lim, &dropped));
  assert_int_equal(dropped, 0);
  for (int i = 0; i < 5; i++) assert_false(hb_log_limit_take(&lim, &dropped));
  atomic_store(&lim.next_ms, 0); /* the interval has passed */
  assert_true(hb_log_limit_take(&lim, &dropped));
  assert_int_equal(dropped, 5);
  assert_false(hb_log_limit_take(&lim, &dropped));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(text_format), HBT_TEST(json_format), HBT_TEST(truncation),
      HBT_TEST(levels),      HBT_TEST(redaction),   HBT_TEST(repeat_limit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
