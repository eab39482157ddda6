/* server.c - `hubbub serve`: store, credentials, broker, threads, signals. */
#include "hubbub/server.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hubbub/alloc.h"
#include "hubbub/auth.h"
#include "hubbub/broker.h"
#include "hubbub/envelope.h"
#include "hubbub/io.h"
#include "hubbub/limits.h"
#include "hubbub/log.h"
#include "hubbub/ratelimit.h"
#include "hubbub/store.h"

typedef struct {
  hb_server *srv;
  hb_store *store;
  uv_loop_t loop;
  uv_signal_t sigterm, sigint, sighup;
  uv_timer_t reload;
  uv_timer_t stop_check;
} main_ctx;

static void close_noop(uv_handle_t *h) { (void)h; }

static void on_reload_timer(uv_timer_t *t) {
  main_ctx *m = t->data;
  /* The CLI may have created or revoked tokens: cheap when nothing changed. */
  hb_auth_reload(m->store);
}

static void on_stop_signal(uv_signal_t *s, int signum) {
  main_ctx *m = s->data;
  if (atomic_exchange(&m->srv->shutting_down, true)) return;
  hb_info("%s: shutting down (closing WebSockets with 1001, finishing HTTP requests)",
          signum == SIGTERM ? "SIGTERM" : "SIGINT");
  hb_io_request_stop_all(m->srv);
  uv_close((uv_handle_t *)&m->sigterm, close_noop);
  uv_close((uv_handle_t *)&m->sigint, close_noop);
  uv_close((uv_handle_t *)&m->sighup, close_noop);
  uv_close((uv_handle_t *)&m->reload, close_noop);
}

static void on_hup(uv_signal_t *s, int signum) {
  main_ctx *m = s->data;
  /* The listen address, threads and limits are fixed for the process's life
   * (sockets and buffers are sized from them); credentials reload live. */
  hb_auth_reload(m->store);
  hb_info("SIGHUP: credentials reloaded");
}

int hb_server_run(const hb_config *cfg) {
  int rc = 1;
  main_ctx m;
  memset(&m, 0, sizeof m);
  hb_server *srv = hb_calloc(1, sizeof *srv);
  srv->cfg = *cfg;
  srv->started_at = (int64_t)time(NULL);
  srv->nio = cfg->threads > 0 ? cfg->threads : (int)uv_available_parallelism();
  if (srv->nio < 1) srv->nio = 1;
  if (srv->nio > HB_MAX_THREADS) srv->nio = HB_MAX_THREADS;
  if (!strcmp(cfg->log_level, "debug")) hb_log_set_level(HB_LOG_DEBUG);
  else if (!strcmp(cfg->log_level, "warn")) hb_log_set_level(HB_LOG_WARN);
  else if (!strcmp(cfg->log_level, "error")) hb_log_set_level(HB_LOG_ERROR);
  signal(SIGPIPE, SIG_IGN); /* a peer that vanished is an EPIPE, not a crash */
  hb_envelope_init(); /* jansson's allocator: before any other thread starts */

  char err[512];
  size_t alen = strlen(cfg->admin_token_sha256);
  if (alen && (alen != 64 || strspn(cfg->admin_token_sha256, "0123456789abcdefABCDEF") != 64)) {
    hb_error_log("admin_token_sha256 must be 64 hex digits (see `hubbub admin-token create`)");
    goto out;
  }
  if (hb_store_open(&m.store, cfg->data_dir, err, sizeof err) != 0) {
    hb_error_log("cannot open the store in %s: %s", cfg->data_dir, err);
    goto out;
  }
  if (hb_auth_init(m.store) != 0) {
    hb_error_log("cannot load credentials from %s", cfg->data_dir);
    goto out;
  }
  if (cfg->redis_url[0]) {
    srv->broker = hb_broker_redis_new(srv, cfg->redis_url, cfg->redis_password, err, sizeof err);
    if (!srv->broker) {
      hb_error_log("redis: %s", err);
      goto out;
    }
  } else {
    srv->broker = hb_broker_local_new(srv);
  }
  if (srv->broker->ops->start(srv->broker) != 0) {
    hb_error_log("broker %s failed to start", srv->broker->ops->name);
    goto out;
  }
  if (hb_io_start_all(srv) != 0) goto out_broker;

  uv_loop_init(&m.loop);
  m.srv = srv;
  uv_signal_init(&m.loop, &m.sigterm);
  uv_signal_init(&m.loop, &m.sigint);
  uv_signal_init(&m.loop, &m.sighup);
  m.sigterm.data = m.sigint.data = m.sighup.data = &m;
  uv_signal_start(&m.sigterm, on_stop_signal, SIGTERM);
  uv_signal_start(&m.sigint, on_stop_signal, SIGINT);
  uv_signal_start(&m.sighup, on_hup, SIGHUP);
  uv_timer_init(&m.loop, &m.reload);
  m.reload.data = &m;
  uv_timer_start(&m.reload, on_reload_timer, HB_AUTH_RELOAD_INTERVAL_MS, HB_AUTH_RELOAD_INTERVAL_MS);

  hb_info("hubbub listening on http://%s%s%s:%d (%d threads, broker %s, data %s)",
          strchr(cfg->host, ':') ? "[" : "", cfg->host, strchr(cfg->host, ':') ? "]" : "", srv->port,
          srv->nio, srv->broker->ops->name, cfg->data_dir);
  uv_run(&m.loop, UV_RUN_DEFAULT);
  uv_loop_close(&m.loop);

  hb_io_join_all(srv);
  hb_info("stopped");
  rc = 0;
out_broker:
  /* On a failed start the process exits: threads that never ran are not joined. */
out:
  if (srv->broker) srv->broker->ops->stop(srv->broker);
  hb_auth_shutdown();
  hb_ratelimit_shutdown();
  if (m.store) hb_store_close(m.store);
  hb_free(srv);
  return rc;
}
