/*
 * test_metrics.c - the one table of series (metrics.c): counters and
 * gauges, the Prometheus text format (every series a HELP, a TYPE and one
 * sample, in that order), gauge callbacks, and reset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "check.h"

#include "hubbub/metrics.h"
#include "hubbub/strbuf.h"

/* The value of `name`'s sample in a rendering, or -1 when absent. */
static long long sample(const char *text, const char *name) {
  char want[128];
  snprintf(want, sizeof want, "\n%s ", name);
  const char *p = strstr(text, want);
  long long v = -1;
  if (p) sscanf(p + strlen(want), "%lld", &v);
  return v;
}

static void test_counters(void **state) {
  (void)state;
  hb_metrics_reset();
  for (int m = 0; m < HB_M__COUNT; m++) assert_int_equal(hb_metric_get(m), 0);
  hb_metric_inc(HB_M_PUBLISHES_WS);
  hb_metric_inc(HB_M_PUBLISHES_WS);
  hb_metric_add(HB_M_DELIVERIES, 1000);
  hb_metric_add(HB_M_CONNECTIONS_OPEN, 3);
  hb_metric_add(HB_M_CONNECTIONS_OPEN, -1);
  assert_int_equal(hb_metric_get(HB_M_PUBLISHES_WS), 2);
  assert_int_equal(hb_metric_get(HB_M_DELIVERIES), 1000);
  assert_int_equal(hb_metric_get(HB_M_CONNECTIONS_OPEN), 2);
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_metrics_render(&sb);
  assert_int_equal(sample(sb.buf, "hubbub_publishes_ws_total"), 2);
  assert_int_equal(sample(sb.buf, "hubbub_deliveries_total"), 1000);
  assert_int_equal(sample(sb.buf, "hubbub_connections_open"), 2);
  assert_int_equal(sample(sb.buf, "hubbub_http_errors_total"), 0);
  hb_strbuf_free(&sb);
  int64_t before = (int64_t)time(NULL);
  hb_metrics_reset();
  assert_int_equal(hb_metric_get(HB_M_DELIVERIES), 0);
  assert_true(hb_metrics_started_at() >= before);
}

/* Every line is "# HELP hubbub_<name> <text>", then "# TYPE hubbub_<name>
 * counter|gauge", then "hubbub_<name> <integer>"; counters end in _total;
 * no name twice; the text ends with a newline. */
static void test_format(void **state) {
  (void)state;
  hb_metrics_reset();
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_metrics_render(&sb);
  assert_true(sb.len > 0 && sb.buf[sb.len - 1] == '\n');
  char names[64][80];
  int nseries = 0;
  char *save = NULL;
  char *line = strtok_r(sb.buf, "\n", &save);
  while (line) {
    char name[80], name2[80], name3[80], type[16];
    long long v;
    int used = 0;
    if (sscanf(line, "# HELP %79s %n", name, &used) != 1 || used == 0 || line[used] == '\0')
      fail_msg("expected a HELP line with text, got '%s'", line);
    line = strtok_r(NULL, "\n", &save);
    assert_non_null(line);
    if (sscanf(line, "# TYPE %79s %15s", name2, type) != 2 || strcmp(name, name2) != 0)
      fail_msg("expected '# TYPE %s', got '%s'", name, line);
    assert_true(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0);
    line = strtok_r(NULL, "\n", &save);
    assert_non_null(line);
    char end;
    if (sscanf(line, "%79s %lld%c", name3, &v, &end) != 2 || strcmp(name, name3) != 0)
      fail_msg("expected the sample of %s, got '%s'", name, line);
    assert_memory_equal(name, "hubbub_", 7);
    size_t nl = strlen(name);
    if (strcmp(type, "counter") == 0 && (nl < 6 || strcmp(name + nl - 6, "_total") != 0))
      fail_msg("counter %s does not end in _total", name);
    for (int i = 0; i < nseries; i++)
      if (strcmp(names[i], name) == 0) fail_msg("%s twice", name);
    assert_true(nseries < 64);
    snprintf(names[nseries++], sizeof names[0], "%s", name);
    line = strtok_r(NULL, "\n", &save);
  }
  /* every table entry and the heap gauge */
  assert_int_equal(nseries, HB_M__COUNT + 1);
  hb_strbuf_free(&sb);
}

static long long read_ll(void *ud) { return *(long long *)ud; }
static long long forty_two(void *ud) {
  (void)ud;
  return 42;
}

static void test_gauges(void **state) {
  (void)state;
  static const char name[] = "test_queue_depth";
  long long depth = 7;
  hb_metrics_reset();
  hb_metrics_gauge(name, "A gauge read through a callback.", read_ll, &depth);
  hb_metrics_gauge("test_answer", "Always 42.", forty_two, NULL);
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_metrics_render(&sb);
  assert_non_null(strstr(sb.buf, "# HELP hubbub_test_queue_depth A gauge read through a callback.\n"
                                 "# TYPE hubbub_test_queue_depth gauge\nhubbub_test_queue_depth 7\n"));
  assert_int_equal(sample(sb.buf, "hubbub_test_answer"), 42);
  hb_strbuf_reset(&sb);
  /* read at every rendering */
  depth = 9;
  hb_metrics_render(&sb);
  assert_int_equal(sample(sb.buf, "hubbub_test_queue_depth"), 9);
  hb_strbuf_reset(&sb);
  /* registered again under the same name: the latest callback wins, once */
  long long other = 123;
  hb_metrics_gauge(name, "A gauge read through a callback.", read_ll, &other);
  hb_metrics_render(&sb);
  assert_int_equal(sample(sb.buf, "hubbub_test_queue_depth"), 123);
  assert_null(strstr(strstr(sb.buf, "\nhubbub_test_queue_depth ") + 1, "\nhubbub_test_queue_depth "));
  hb_strbuf_reset(&sb);
  /* reset forgets them */
  hb_metrics_reset();
  hb_metrics_render(&sb);
  assert_null(strstr(sb.buf, "test_queue_depth"));
  assert_null(strstr(sb.buf, "test_answer"));
  assert_true(sample(sb.buf, "hubbub_heap_bytes") > 0);
  hb_strbuf_free(&sb);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_counters),
      HBT_TEST(test_format),
      HBT_TEST(test_gauges),
  };
  return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
