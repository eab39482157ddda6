/*
 * wsecho.c - hb_wsecho, the echo target for external RFC 6455 conformance
 * suites (the Autobahn testsuite's fuzzingclient, and test/e2e/19-wsecho).
 *
 * A test-only program: built with the tests, not part of the server binary,
 * never installed. It runs hubbub's own I/O threads, connections, HTTP glue
 * and WebSocket glue (core/io.c, core/conn.c, proto/http.c, proto/ws.c with
 * wslay), registered the way server.c registers the real layers, and puts
 * an echo where the room protocol would be: every GET that is a valid
 * upgrade gets a 101 (any path), and every text and binary message comes
 * back as one frame of the same type. So a suite pointed at it exercises
 * the framing, fragmentation, UTF-8, close, ping and limit handling the
 * server uses. See test/wsecho/README.md.
 *
 *   build/hb_wsecho --listen 127.0.0.1:9001 [--threads N] [--config FILE]
 *                   [--max-message-bytes N] [--max-message-fragments N]
 *                   [--log-level LEVEL]
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hubbub/config.h"
#include "hubbub/http.h"
#include "hubbub/io.h"
#include "hubbub/limits.h"
#include "hubbub/log.h"
#include "hubbub/metrics.h"
#include "hubbub/ws.h"

#define ECHO_DEFAULT_LISTEN "127.0.0.1:9001"

/* --- HTTP: every GET is a WebSocket handshake ------------------------------ */

static bool echo_headers(hb_conn *c, hb_http_req *req) {
  if (req->method == HTTP_GET) return true;
  hb_error e;
  hb_error_set(&e, HB_E_METHOD_NOT_ALLOWED, NULL, "the echo target takes WebSocket handshakes (GET) only");
  hb_http_respond_error(c, &e, "Allow: GET\r\n", true);
  return false;
}

static void echo_request(hb_conn *c, hb_http_req *req) {
  hb_error e;
  hb_err err = hb_ws_check_upgrade(req, &e);
  if (err != HB_OK) {
    hb_http_respond_error(c, &e, err == HB_E_UPGRADE_REQUIRED ? hb_ws_version_header() : NULL, true);
    return;
  }
  hb_strbuf out = HB_STRBUF_INIT;
  hb_ws_accept(req, NULL, &out);
  hb_ws_open(c);
  size_t n;
  char *p = hb_strbuf_release(&out, &n);
  hb_conn_send_owned(c, p, n);
}

static const hb_http_handlers echo_http = {.on_headers = echo_headers, .on_request = echo_request};

/* --- WebSocket: echo ------------------------------------------------------- */

static void echo_text(hb_ws *ws, const char *msg, size_t len) { hb_ws_send_text(ws, msg, len); }
static void echo_binary(hb_ws *ws, const uint8_t *msg, size_t len) { hb_ws_send_binary(ws, msg, len); }
static void echo_sweep(hb_ws *ws, uint64_t now_ms) { (void)ws, (void)now_ms; }
static void echo_close(hb_ws *ws) { (void)ws; }

static const hb_ws_handler echo_ws = {
    .on_text = echo_text,
    .on_binary = echo_binary,
    .on_sweep = echo_sweep,
    .on_close = echo_close,
};

/* The extension area holds the HTTP glue's state, then the WebSocket's. */
typedef union {
  hb_http_conn http;
  hb_ws ws;
} echo_ext;

/* --- main ------------------------------------------------------------------ */

typedef struct {
  hb_ioset *set;
  uv_signal_t sigterm, sigint;
} echo_main;

static void close_noop(uv_handle_t *h) { (void)h; }

static void on_stop_signal(uv_signal_t *s, int signum) {
  echo_main *m = s->data;
  hb_info("hb_wsecho: %s: stopping (WebSockets close with 1001)", signum == SIGTERM ? "SIGTERM" : "SIGINT");
  hb_ioset_request_stop(m->set);
  uv_close((uv_handle_t *)&m->sigterm, close_noop);
  uv_close((uv_handle_t *)&m->sigint, close_noop);
}

static int usage(const char *why) {
  fprintf(stderr,
          "hb_wsecho: %s\n"
          "usage: hb_wsecho [--listen HOST:PORT] [--threads N] [--config FILE]\n"
          "                 [--max-message-bytes N] [--max-message-fragments N] [--log-level LEVEL]\n"
          "  --listen defaults to " ECHO_DEFAULT_LISTEN " (port 0: any free port, printed at start);\n"
          "  --config takes hubbub's JSON config file (the WebSocket limits apply, docs/operations.md);\n"
          "  flags override it. See test/wsecho/README.md.\n",
          why);
  return 2;
}

/* A positive number within [lo, hi], or -1. */
static long long number(const char *s, long long lo, long long hi) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return -1;
  return v;
}

int main(int argc, char **argv) {
  hb_config cfg;
  hb_config_defaults(&cfg);
  cfg.threads = 1;
  const char *listen = ECHO_DEFAULT_LISTEN;
  const char *level = "info";
  char err[512];
  long long max_bytes = 0, max_frags = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage("an echo target for RFC 6455 suites"), 0;
    if (i + 1 >= argc) return usage("every option takes a value");
    const char *v = argv[++i];
    if (!strcmp(a, "--listen")) {
      listen = v;
    } else if (!strcmp(a, "--config")) {
      if (hb_config_load_file(&cfg, v, err, sizeof err) != 0) {
        fprintf(stderr, "hb_wsecho: bad config file: %s\n", err);
        return 1;
      }
    } else if (!strcmp(a, "--threads")) {
      long long n = number(v, 1, HB_MAX_THREADS);
      if (n < 0) return usage("--threads must be 1 to " HB_STR(HB_MAX_THREADS));
      cfg.threads = (int)n;
    } else if (!strcmp(a, "--max-message-bytes")) {
      if ((max_bytes = number(v, 256, HB_CONFIG_MAX_SIZE_BYTES)) < 0)
        return usage("--max-message-bytes must be 256 to " HB_STR(HB_CONFIG_MAX_SIZE_BYTES));
    } else if (!strcmp(a, "--max-message-fragments")) {
      if ((max_frags = number(v, 1, HB_CONFIG_MAX_MESSAGE_FRAGMENTS)) < 0)
        return usage("--max-message-fragments must be 1 to " HB_STR(HB_CONFIG_MAX_MESSAGE_FRAGMENTS));
    } else if (!strcmp(a, "--log-level")) {
      level = v;
    } else {
      return usage("unknown option");
    }
  }
  if (max_bytes) cfg.max_message_bytes = (size_t)max_bytes;
  if (max_frags) cfg.max_message_fragments = (int)max_frags;
  if (hb_config_parse_listen(listen, cfg.host, sizeof cfg.host, &cfg.port) != 0)
    return usage("--listen must be HOST:PORT, [IPv6]:PORT or :PORT");
  hb_log_set_level(!strcmp(level, "debug") ? HB_LOG_DEBUG
                   : !strcmp(level, "warn") ? HB_LOG_WARN
                   : !strcmp(level, "error") ? HB_LOG_ERROR
                                             : HB_LOG_INFO);
  signal(SIGPIPE, SIG_IGN);
  hb_metrics_reset();

  hb_http_init(&echo_http);
  hb_ws_init(&echo_ws);
  hb_io_hooks hooks = {.accept_handler = &hb_http_conn_handler, .conn_ext_bytes = sizeof(echo_ext)};
  hb_ioset set;
  memset(&set, 0, sizeof set);
  if (hb_ioset_start(&set, &cfg, cfg.threads, &hooks) != 0) return 1;

  echo_main m = {.set = &set};
  uv_loop_t loop;
  uv_loop_init(&loop);
  uv_signal_init(&loop, &m.sigterm);
  uv_signal_init(&loop, &m.sigint);
  m.sigterm.data = m.sigint.data = &m;
  uv_signal_start(&m.sigterm, on_stop_signal, SIGTERM);
  uv_signal_start(&m.sigint, on_stop_signal, SIGINT);
  hb_info("hb_wsecho listening on ws://%s%s%s:%d (%d threads; max_message_bytes %zu, max_message_fragments %d, "
          "idle_timeout_ms %d, ping_interval_ms %d)",
          strchr(cfg.host, ':') ? "[" : "", cfg.host, strchr(cfg.host, ':') ? "]" : "", set.port, cfg.threads,
          cfg.max_message_bytes, cfg.max_message_fragments, cfg.idle_timeout_ms, cfg.ping_interval_ms);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  hb_ioset_join(&set);
  hb_info("hb_wsecho: stopped");
  return 0;
}
