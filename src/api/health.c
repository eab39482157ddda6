/* health.c - GET /healthz, GET /metrics (Prometheus text), GET /. */
#include <string.h>
#include <time.h>

#include "hubbub/alloc.h"
#include "hubbub/io.h"
#include "hubbub/metrics.h"
#include "hubbub/publish.h"
#include "hubbub/router.h"

void hb_api_healthz(hb_conn *c, hb_http_req *req) {
  hb_ioset *set = c->io->set;
  hb_broker *b = hb_publish_broker();
  bool healthy = !b->ops->healthy || b->ops->healthy(b);
  bool stopping = hb_ioset_stopping(set);
  /* The store's file vanished under the server (server.c watches it). */
  bool store_missing = hb_metric_get(HB_M_STORE_MISSING) > 0;
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_strbuf_addf(&sb,
                 "{\"status\":\"%s\",\"broker\":{\"type\":\"%s\",\"state\":\"%s\"},"
                 "\"store\":\"%s\",\"threads\":%d,\"connections\":%d,\"uptime_s\":%lld}",
                 stopping ? "shutting_down" : healthy && !store_missing ? "ok" : "degraded", b->ops->name,
                 b->ops->state ? b->ops->state(b) : "up", store_missing ? "missing" : "ok", set->nio,
                 atomic_load(&set->open_conns), (long long)(time(NULL) - hb_metrics_started_at()));
  /* Degraded (Redis down) still answers 200 for liveness? No: a load
   * balancer should route publishes elsewhere, so it is 503. A missing
   * store is degraded too, but publishes and connections still work (the
   * credential snapshot): 200, so that a probe does not take the node out
   * or restart it into an empty store; the operator is alerted by the
   * status, the log line and hubbub_store_missing. */
  int status = stopping || !healthy ? 503 : 200;
  hb_http_respond(c, status, "application/json", "Cache-Control: no-store\r\n", sb.buf, sb.len, false);
  hb_strbuf_free(&sb);
}

void hb_api_metrics(hb_conn *c, hb_http_req *req) {
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_metrics_render(&sb);
  hb_http_respond(c, 200, "text/plain; version=0.0.4", "Cache-Control: no-store\r\n", sb.buf, sb.len, false);
  hb_strbuf_free(&sb);
}

void hb_api_root(hb_conn *c, hb_http_req *req) {
  static const char body[] =
      "{\"name\":\"hubbub\",\"demo\":\"/demo\",\"sdk\":\"/sdk/hubbub.js\","
      "\"publish\":\"POST /api/v1/pub_subs\",\"websocket\":\"/api/v1/ws?token=...\"}";
  hb_http_respond(c, 200, "application/json", NULL, body, sizeof body - 1, false);
}
