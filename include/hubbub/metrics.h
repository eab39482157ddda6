/*
 * metrics.h - the server's counters and gauges, one table for every layer.
 *
 * Each series is an entry of hb_metric with its Prometheus name and help in
 * metrics.c, so /metrics and docs/operations.md have one source. Updates
 * are relaxed atomics: a counter is read approximately, and nothing on the
 * delivery path touches one per subscriber (deliveries are added per
 * fan-out batch). Gauges whose value lives elsewhere (heap bytes, open
 * connections per thread...) are read through callbacks registered with
 * hb_metrics_gauge().
 */
#ifndef HUBBUB_METRICS_H
#define HUBBUB_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "hubbub/strbuf.h"

typedef enum {
  /* counters */
  HB_M_CONNECTIONS_TOTAL,
  HB_M_CONNECTIONS_REJECTED,
  HB_M_PUBLISHES_HTTP,
  HB_M_PUBLISHES_WS,
  HB_M_DELIVERIES,
  HB_M_FANOUT_FLUSHES,
  HB_M_FANOUT_FLUSH_TURNS,
  HB_M_SLOW_CONSUMERS_CLOSED,
  HB_M_HTTP_REQUESTS,
  HB_M_HTTP_ERRORS,
  HB_M_JSON_FAST_DECODES,
  HB_M_HISTORY_SAVE_ERRORS,
  HB_M_RECOVERIES,
  HB_M_RECOVERIES_FAILED,
  HB_M_RECOVERED_MESSAGES,
  HB_M_IDEMPOTENT_REPLAYS,
  HB_M_PRESENCE_MESSAGES,
  HB_M_PRESENCE_NODES_EXPIRED,
  /* gauges kept as up/down counters */
  HB_M_CONNECTIONS_OPEN,
  HB_M_WEBSOCKETS_OPEN,
  HB_M__COUNT
} hb_metric;

extern atomic_llong hb_metric_values[HB_M__COUNT];

static inline void hb_metric_add(hb_metric m, long long n) {
  atomic_fetch_add_explicit(&hb_metric_values[m], n, memory_order_relaxed);
}
static inline void hb_metric_inc(hb_metric m) { hb_metric_add(m, 1); }
static inline long long hb_metric_get(hb_metric m) {
  return atomic_load_explicit(&hb_metric_values[m], memory_order_relaxed);
}

/** A gauge read when /metrics is rendered (`name` without the hubbub_ prefix). */
typedef long long (*hb_gauge_fn)(void *ud);
void hb_metrics_gauge(const char *name, const char *help, hb_gauge_fn fn, void *ud);

/** Append every series in the Prometheus text format (version 0.0.4). */
void hb_metrics_render(hb_strbuf *sb);

/** Zero every counter, forget the gauges and note the start time (at
 * process start, and in tests). */
void hb_metrics_reset(void);
/** Unix seconds of the last hb_metrics_reset(): the server's start. */
int64_t hb_metrics_started_at(void);

#endif
