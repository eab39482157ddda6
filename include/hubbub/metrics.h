/*
 * metrics.h - the server's counters, gauges and histograms, one table for
 * every layer, rendered in the Prometheus text format 0.0.4.
 *
 * Each series is an entry of hb_metric with its Prometheus name, labels and
 * help in metrics.c, so /metrics and docs/operations.md have one source.
 * Updates are relaxed atomics: a counter is read approximately, and nothing
 * on the delivery path touches one per subscriber (deliveries are added per
 * fan-out batch, latency observed per message and thread). Gauges whose
 * value lives elsewhere (heap bytes, open connections per thread, the
 * broker's state...) are read through callbacks registered by the layer
 * that knows them.
 */
#ifndef HUBBUB_METRICS_H
#define HUBBUB_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "hubbub/errors.h"
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
  HB_M_FANOUT_WINDOW_OPENS,
  HB_M_URING_SUBMITS,
  HB_M_URING_SENDS,
  HB_M_SLOW_CONSUMERS_CLOSED,
  HB_M_HTTP_REQUESTS,
  HB_M_HTTP_ERRORS,
  HB_M_JSON_FAST_DECODES,
  HB_M_HISTORY_SAVE_ERRORS,
  HB_M_RECOVERIES,
  HB_M_RECOVERIES_FAILED,
  HB_M_RECOVERED_MESSAGES,
  HB_M_IDEMPOTENT_REPLAYS,
  HB_M_CONTROL_CLOSES,
  HB_M_PRESENCE_MESSAGES,
  HB_M_PRESENCE_NODES_EXPIRED,
  HB_M_PRESENCE_RESYNCS,
  HB_M_PRESENCE_CHANGES_UNSENT,
  HB_M_PRESENCE_BAD_MESSAGES,
  HB_M_REDIS_PUBLISHES_FAILED,
  HB_M_REDIS_GAPS_FILLED,
  HB_M_REDIS_GAP_FILLED_MESSAGES,
  HB_M_REDIS_GAP_NOTICES,
  HB_M_REDIS_MESSAGES_LOST,
  /* one family, one entry per label value: keep them adjacent */
  HB_M_RATE_LIMITED_CONNECTION,
  HB_M_RATE_LIMITED_API_TOKEN,
  HB_M_CREDENTIAL_RELOAD_FAILURES,
  HB_M_LOG_LINES_SUPPRESSED,
  HB_M_LINGERING_CLOSES,
  HB_M_LINGERING_CLOSES_CUT,
  /* gauges kept as up/down counters */
  HB_M_CONNECTIONS_OPEN,
  HB_M_WEBSOCKETS_OPEN,
  HB_M_STORE_MISSING, /* 0 or 1: set by the server's store watch */
  HB_M_FANOUT_WINDOW_ON, /* I/O threads holding fan-out output now */
  HB_M_URING_THREADS,    /* I/O threads writing through io_uring */
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

/* --- counters with a label from a fixed set ---------------------------------- */

/** Which protocol a refusal answered (the `transport` label). */
typedef enum { HB_TRANSPORT_HTTP, HB_TRANSPORT_WS, HB_TRANSPORT__COUNT } hb_transport;

/** An error answered to a client, HTTP or WebSocket: hubbub_errors_total{code}. */
void hb_metric_error(hb_err e);
/** A request or connection refused: hubbub_refusals_total{reason,transport}. */
void hb_metric_refusal(hb_err reason, hb_transport t);
/** A close frame the server initiated: hubbub_ws_closes_total{code}. */
void hb_metric_ws_close(unsigned code);

/* --- histograms -------------------------------------------------------------- */

typedef enum {
  /* publish accepted -> written to the last local subscriber, per message and thread */
  HB_H_DELIVERY_LATENCY,
  /* first byte of an HTTP request -> its response queued */
  HB_H_HTTP_REQUEST_DURATION,
  HB_H__COUNT
} hb_histogram;

/** Observe a duration in nanoseconds: two relaxed atomic adds. */
void hb_metric_observe_ns(hb_histogram h, uint64_t ns);

/* --- values read when /metrics is rendered ------------------------------------ */

/** A gauge read when /metrics is rendered (`name` without the hubbub_ prefix). */
typedef long long (*hb_gauge_fn)(void *ud);
void hb_metrics_gauge(const char *name, const char *help, hb_gauge_fn fn, void *ud);

/**
 * A one-hot gauge: one series per entry of `states` (NULL-terminated),
 * labelled `label`="<state>", 1 for the state `current` returns, 0 for the
 * others (hubbub_broker_state{state="up"} 1). The strings must outlive the
 * process's metrics (static).
 */
typedef const char *(*hb_state_fn)(void *ud);
void hb_metrics_state_gauge(const char *name, const char *help, const char *label,
                            const char *const *states, hb_state_fn current, void *ud);

/** Append every series in the Prometheus text format (version 0.0.4). */
void hb_metrics_render(hb_strbuf *sb);

/** Zero every counter and histogram, forget the gauges and note the start
 * time (at process start, and in tests). */
void hb_metrics_reset(void);
/** Unix seconds of the last hb_metrics_reset(): the server's start. */
int64_t hb_metrics_started_at(void);

#endif
