/* health.c - GET /healthz, GET /metrics (Prometheus text), GET /. */
#include <string.h>
#include <time.h>

#include "hubbub/alloc.h"
#include "hubbub/api.h"
#include "hubbub/io.h"

void hb_api_healthz(hb_conn *c, hb_http_req *req) {
  hb_server *srv = c->io->srv;
  hb_broker *b = srv->broker;
  bool healthy = !b->ops->healthy || b->ops->healthy(b);
  bool stopping = atomic_load(&srv->shutting_down);
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_strbuf_addf(&sb,
                 "{\"status\":\"%s\",\"broker\":{\"type\":\"%s\",\"state\":\"%s\"},"
                 "\"threads\":%d,\"connections\":%d,\"uptime_s\":%lld}",
                 stopping ? "shutting_down" : healthy ? "ok" : "degraded", b->ops->name,
                 b->ops->state ? b->ops->state(b) : "up", srv->nio, atomic_load(&srv->open_conns),
                 (long long)(time(NULL) - srv->started_at));
  /* Degraded (Redis down) still answers 200 for liveness? No: a load
   * balancer should route publishes elsewhere, so it is 503. */
  int status = stopping || !healthy ? 503 : 200;
  hb_http_respond(c, status, "application/json", "Cache-Control: no-store\r\n", sb.buf, sb.len, false);
  hb_strbuf_free(&sb);
}

void hb_api_metrics(hb_conn *c, hb_http_req *req) {
  hb_server *srv = c->io->srv;
  hb_metrics *m = &srv->metrics;
  hb_strbuf sb = HB_STRBUF_INIT;
#define COUNTER(name, help, v)                                                                     \
  hb_strbuf_addf(&sb, "# HELP hubbub_" name " " help "\n# TYPE hubbub_" name " counter\nhubbub_" name " %lld\n", \
                 (long long)atomic_load(&(v)))
#define GAUGE(name, help, v)                                                                       \
  hb_strbuf_addf(&sb, "# HELP hubbub_" name " " help "\n# TYPE hubbub_" name " gauge\nhubbub_" name " %lld\n", \
                 (long long)(v))
  COUNTER("connections_total", "TCP connections accepted.", m->connections_total);
  GAUGE("connections_open", "TCP connections open.", atomic_load(&m->connections_open));
  GAUGE("websockets_open", "WebSocket connections open.", atomic_load(&m->ws_open));
  COUNTER("connections_rejected_total", "Connections refused at the connection limit.", m->rejected_connections);
  COUNTER("publishes_http_total", "Publishes accepted over HTTP.", m->publishes_http);
  COUNTER("publishes_ws_total", "Publishes accepted over WebSocket.", m->publishes_ws);
  COUNTER("deliveries_total", "Event frames queued to subscribers.", m->deliveries);
  COUNTER("fanout_flushes_total", "Fan-out flushes (writes of what the flush window held).", m->fanout_flushes);
  COUNTER("fanout_flush_turns_total", "Loop turns spent on fan-out flushes (HB_FLUSH_CHUNK_CONNS connections each).", m->fanout_flush_turns);
  COUNTER("slow_consumers_closed_total", "Connections closed for not reading (4000).", m->slow_consumers_closed);
  COUNTER("http_requests_total", "HTTP requests completed.", m->http_requests);
  COUNTER("http_errors_total", "HTTP responses with status >= 400.", m->http_errors);
  GAUGE("heap_bytes", "Bytes allocated through the allocator.", hb_alloc_live_bytes());
#undef COUNTER
#undef GAUGE
  hb_http_respond(c, 200, "text/plain; version=0.0.4", "Cache-Control: no-store\r\n", sb.buf, sb.len, false);
  hb_strbuf_free(&sb);
}

void hb_api_root(hb_conn *c, hb_http_req *req) {
  static const char body[] =
      "{\"name\":\"hubbub\",\"demo\":\"/demo\",\"sdk\":\"/sdk/hubbub.js\","
      "\"publish\":\"POST /api/v1/pub_subs\",\"websocket\":\"/api/v1/ws?token=...\"}";
  hb_http_respond(c, 200, "application/json", NULL, body, sizeof body - 1, false);
}
