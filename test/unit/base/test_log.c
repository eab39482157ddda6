/*
 * test_log.c - log lines (log.c): "<UTC time> <level> <message>", one
 * line per call, below the level nothing, a message too long for the line
 * cut and still ended with its newline.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

#include "hubbub/log.h"

/* stderr into a pipe for the duration of a test; what was written comes back. */
static int saved_stderr = -1, pipe_rd = -1;

static void capture(void) {
  int p[2];
  assert_int_equal(pipe2(p, O_NONBLOCK), 0);
  saved_stderr = dup(2);
  dup2(p[1], 2);
  close(p[1]);
  pipe_rd = p[0];
}

static size_t release(char *out, size_t cap) {
  dup2(saved_stderr, 2);
  close(saved_stderr);
  ssize_t n = read(pipe_rd, out, cap - 1);
  close(pipe_rd);
  if (n < 0) n = 0;
  out[n] = '\0';
  return (size_t)n;
}

/* "2026-11-28T12:00:00Z " */
static void expect_stamp(const char *line) {
  int y, mo, d, h, mi, s;
  char z;
  if (sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d%c ", &y, &mo, &d, &h, &mi, &s, &z) != 7 || z != 'Z')
    fail_msg("no UTC time stamp at the start of '%s'", line);
}

static void test_levels_and_format(void **state) {
  (void)state;
  char out[4096];
  capture();
  hb_log_set_level(HB_LOG_WARN);
  hb_debug("not %s", "shown");
  hb_info("not shown either");
  hb_warn("disk %d%% full", 93);
  hb_error_log("gone");
  hb_log_set_level(HB_LOG_DEBUG);
  hb_debug("now shown");
  hb_log_set_level(HB_LOG_INFO);
  size_t n = release(out, sizeof out);
  assert_true(n > 0 && out[n - 1] == '\n');
  char *lines[4];
  int count = 0;
  for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
    assert_true(count < 4);
    lines[count++] = l;
  }
  assert_int_equal(count, 3);
  for (int i = 0; i < 3; i++) expect_stamp(lines[i]);
  assert_string_equal(lines[0] + 21, "warn disk 93% full");
  assert_string_equal(lines[1] + 21, "error gone");
  assert_string_equal(lines[2] + 21, "debug now shown");
}

static void test_long_message_cut(void **state) {
  (void)state;
  char big[3000], out[4096];
  memset(big, 'm', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  capture();
  hb_info("%s", big);
  hb_info("next");
  size_t n = release(out, sizeof out);
  char *nl = strchr(out, '\n');
  assert_non_null(nl);
  assert_true((size_t)(nl - out) < 1024); /* one line, cut to the line buffer */
  assert_non_null(strstr(nl + 1, "info next\n")); /* the next line starts clean */
  assert_int_equal(out[n - 1], '\n');
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_levels_and_format),
      HBT_TEST(test_long_message_cut),
  };
  return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
