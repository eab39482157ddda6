/*
 * test_metrics.c - the one table of series (metrics.c): counters and
 * gauges, the Prometheus text format (every series a HELP, a TYPE and one
 * sample, in that order), gauge callbacks, and reset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

/* The text format, family by family: "# HELP <name> <text>", "# TYPE
 * <name> counter|gauge|histogram", then its samples: "<name>[{labels}]
 * <number>" (a histogram's are <name>_bucket{le=..}, <name>_sum and
 * <name>_count, its +Inf bucket equal to its count). Counters end in _total;
 * no family twice; every series of the table is there; the text ends with a
 * newline. */
static void test_format(void **state) {
  (void)state;
  hb_metrics_reset();
  hb_metric_observe_ns(HB_H_DELIVERY_LATENCY, 300000); /* 0.3 ms */
  hb_metric_observe_ns(HB_H_DELIVERY_LATENCY, 20000000000ULL); /* over every bound */
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_metrics_render(&sb);
  assert_true(sb.len > 0 && sb.buf[sb.len - 1] == '\n');
  char names[128][80];
  int nfam = 0;
  char fam[80] = "", type[16] = "";
  int samples = 0;
  long long inf_bucket = -1;
  char *save = NULL;
  for (char *line = strtok_r(sb.buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    int used = 0;
    if (!strncmp(line, "# HELP ", 7)) {
      if (nfam > 0 && samples == 0) fail_msg("family %s has no sample", fam);
      if (sscanf(line, "# HELP %79s %n", fam, &used) != 1 || used == 0 || line[used] == '\0')
        fail_msg("expected a HELP line with text, got '%s'", line);
      for (int i = 0; i < nfam; i++)
        if (!strcmp(names[i], fam)) fail_msg("%s twice", fam);
      assert_true(nfam < 128);
      snprintf(names[nfam++], sizeof names[0], "%s", fam);
      line = strtok_r(NULL, "\n", &save);
      char fam2[80];
      if (!line || sscanf(line, "# TYPE %79s %15s", fam2, type) != 2 || strcmp(fam, fam2) != 0)
        fail_msg("expected '# TYPE %s', got '%s'", fam, line ? line : "(end)");
      assert_true(!strcmp(type, "counter") || !strcmp(type, "gauge") || !strcmp(type, "histogram"));
      size_t nl = strlen(fam);
      if (!strcmp(type, "counter") && (nl < 6 || strcmp(fam + nl - 6, "_total") != 0))
        fail_msg("counter %s does not end in _total", fam);
      samples = 0;
      continue;
    }
    /* a sample of the current family */
    size_t fl = strlen(fam);
    if (strncmp(line, fam, fl) != 0) fail_msg("sample '%s' outside its family %s", line, fam);
    const char *rest = line + fl;
    if (!strcmp(type, "histogram")) {
      bool timed = !strcmp(fam, "hubbub_delivery_latency_seconds"); /* the one observed above */
      if (!strncmp(rest, "_bucket{le=\"+Inf\"} ", 19)) {
        if (timed) inf_bucket = atoll(rest + 19);
      } else if (!strncmp(rest, "_count ", 7) && timed)
        assert_int_equal(atoll(rest + 7), inf_bucket);
      else if (strncmp(rest, "_bucket{", 8) && strncmp(rest, "_sum ", 5) && strncmp(rest, "_count ", 7))
        fail_msg("not a histogram sample: '%s'", line);
    } else if (*rest == '{') {
      rest = strchr(rest, '}');
      if (!rest || rest[1] != ' ') fail_msg("labels not closed: '%s'", line);
      rest++;
    }
    const char *val = strrchr(line, ' ');
    char *endp;
    assert_non_null(val);
    (void)strtod(val + 1, &endp);
    if (endp == val + 1 || *endp) fail_msg("not a number in '%s'", line);
    samples++;
  }
  if (samples == 0) fail_msg("family %s has no sample", fam);
  /* the table's series, the labelled ones and the histograms */
  static const char *const want[] = {"hubbub_connections_total", "hubbub_deliveries_total", "hubbub_rate_limited_total",
                                     "hubbub_refusals_total", "hubbub_errors_total", "hubbub_ws_closes_total",
                                     "hubbub_delivery_latency_seconds", "hubbub_http_request_duration_seconds",
                                     "hubbub_recoveries_total", "hubbub_heap_bytes", "hubbub_websockets_open"};
  for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
    int found = 0;
    for (int i = 0; i < nfam; i++) found |= !strcmp(names[i], want[w]);
    if (!found) fail_msg("no family %s", want[w]);
  }
  assert_int_equal(inf_bucket, 2);
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
