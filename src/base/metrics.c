/* metrics.c - the series table and the Prometheus text rendering (metrics.h). */
#include "hubbub/metrics.h"

#include <pthread.h>
#include <time.h>

#include "hubbub/alloc.h"

atomic_llong hb_metric_values[HB_M__COUNT];

static const struct {
  const char *name; /* after "hubbub_" */
  const char *type;
  const char *help;
} table[HB_M__COUNT] = {
    [HB_M_CONNECTIONS_TOTAL] = {"connections_total", "counter", "TCP connections accepted."},
    [HB_M_CONNECTIONS_REJECTED] = {"connections_rejected_total", "counter", "Connections refused at the connection limit."},
    [HB_M_PUBLISHES_HTTP] = {"publishes_http_total", "counter", "Publishes accepted over HTTP."},
    [HB_M_PUBLISHES_WS] = {"publishes_ws_total", "counter", "Publishes accepted over WebSocket."},
    [HB_M_DELIVERIES] = {"deliveries_total", "counter", "Event frames queued to subscribers."},
    [HB_M_FANOUT_FLUSHES] = {"fanout_flushes_total", "counter", "Fan-out flushes (writes of what the flush window held)."},
    [HB_M_FANOUT_FLUSH_TURNS] = {"fanout_flush_turns_total", "counter", "Loop turns spent on fan-out flushes (HB_FLUSH_CHUNK_CONNS connections each)."},
    [HB_M_SLOW_CONSUMERS_CLOSED] = {"slow_consumers_closed_total", "counter", "Connections closed for not reading (4000)."},
    [HB_M_HTTP_REQUESTS] = {"http_requests_total", "counter", "HTTP requests completed."},
    [HB_M_HTTP_ERRORS] = {"http_errors_total", "counter", "HTTP responses with status >= 400."},
    [HB_M_JSON_FAST_DECODES] = {"json_fast_decodes_total", "counter", "Messages and bodies decoded without building a JSON tree (jscan)."},
    [HB_M_HISTORY_SAVE_ERRORS] = {"history_save_errors_total", "counter", "Failed writes of history to history.db (retried)."},
    [HB_M_RECOVERIES] = {"recoveries_total", "counter", "Reconnects that asked to recover (since=) and did."},
    [HB_M_RECOVERIES_FAILED] = {"recoveries_failed_total", "counter", "Reconnects that asked to recover and got recovered:false."},
    [HB_M_RECOVERED_MESSAGES] = {"recovered_messages_total", "counter", "Messages replayed to reconnecting clients."},
    [HB_M_IDEMPOTENT_REPLAYS] = {"idempotent_replays_total", "counter", "Publishes answered from an earlier one with the same Idempotency-Key (not delivered again)."},
    [HB_M_PRESENCE_MESSAGES] = {"presence_messages_total", "counter", "Presence deltas built (one shared frame per channel per interval at most)."},
    [HB_M_PRESENCE_NODES_EXPIRED] = {"presence_nodes_expired_total", "counter", "Other nodes silent for presence_ttl_s whose members were dropped."},
    [HB_M_CONNECTIONS_OPEN] = {"connections_open", "gauge", "TCP connections open."},
    [HB_M_WEBSOCKETS_OPEN] = {"websockets_open", "gauge", "WebSocket connections open."},
};

#define MAX_GAUGES 16

static pthread_mutex_t gauges_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
  const char *name, *help;
  hb_gauge_fn fn;
  void *ud;
} gauges[MAX_GAUGES];
static int ngauges;

void hb_metrics_gauge(const char *name, const char *help, hb_gauge_fn fn, void *ud) {
  pthread_mutex_lock(&gauges_mu);
  for (int i = 0; i < ngauges; i++) {
    if (gauges[i].name == name) { /* registered again: the latest wins */
      gauges[i].fn = fn;
      gauges[i].ud = ud;
      pthread_mutex_unlock(&gauges_mu);
      return;
    }
  }
  if (ngauges < MAX_GAUGES) {
    gauges[ngauges].name = name;
    gauges[ngauges].help = help;
    gauges[ngauges].fn = fn;
    gauges[ngauges].ud = ud;
    ngauges++;
  }
  pthread_mutex_unlock(&gauges_mu);
}

static void series(hb_strbuf *sb, const char *name, const char *type, const char *help, long long v) {
  hb_strbuf_addf(sb, "# HELP hubbub_%s %s\n# TYPE hubbub_%s %s\nhubbub_%s %lld\n", name, help, name, type,
                 name, v);
}

void hb_metrics_render(hb_strbuf *sb) {
  for (int m = 0; m < HB_M__COUNT; m++) series(sb, table[m].name, table[m].type, table[m].help, hb_metric_get(m));
  pthread_mutex_lock(&gauges_mu);
  for (int i = 0; i < ngauges; i++) series(sb, gauges[i].name, "gauge", gauges[i].help, gauges[i].fn(gauges[i].ud));
  pthread_mutex_unlock(&gauges_mu);
  series(sb, "heap_bytes", "gauge", "Bytes allocated through the allocator.", (long long)hb_alloc_live_bytes());
}

static _Atomic int64_t started_at;

int64_t hb_metrics_started_at(void) { return atomic_load(&started_at); }

void hb_metrics_reset(void) {
  atomic_store(&started_at, (int64_t)time(NULL));
  for (int m = 0; m < HB_M__COUNT; m++) atomic_store(&hb_metric_values[m], 0);
  pthread_mutex_lock(&gauges_mu);
  ngauges = 0;
  pthread_mutex_unlock(&gauges_mu);
}
