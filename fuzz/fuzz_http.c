/*
 * fuzz_http.c - libFuzzer driver for the HTTP glue: raw header-line checker,
 * http-parser callbacks, router, handlers and, after an upgrade, the
 * WebSocket glue, all through hb_http_on_read on one real hb_conn.
 *
 * The connection's uv_tcp_t lives on a real loop but is never connected:
 * nothing is flushed (the queued output is freed by the close callback), so
 * every request of the input reaches the parser. Credentials come from a
 * store in a temporary directory, made once in LLVMFuzzerInitialize.
 *
 * Secrets are random per run, so the input names them with placeholders
 * that the driver substitutes before feeding (they are in http.dict):
 *   @APITOKEN@   the API token of the fuzz plugin
 *   @CONNTOKEN@  a valid connection token for that plugin (scopes: all)
 *   @ADMIN@      the admin token (admin_token_sha256 is set)
 *
 * Input layout: byte 0 and 1 choose up to two split points (1-3 chunks,
 * as several reads would deliver them); the rest is the byte stream.
 *
 * fuzz_ws.c includes this file with HB_FUZZ_GLUE_NO_MAIN for the setup.
 */
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hubbub/alloc.h"
#include "hubbub/auth.h"
#include "hubbub/config.h"
#include "hubbub/conn.h"
#include "hubbub/http.h"
#include "hubbub/io.h"
#include "hubbub/json.h"
#include "hubbub/jwt.h"
#include "hubbub/limits.h"
#include "hubbub/local.h"
#include "hubbub/log.h"
#include "hubbub/metrics.h"
#include "hubbub/publish.h"
#include "hubbub/room.h"
#include "hubbub/router.h"
#include "hubbub/server.h"
#include "hubbub/store.h"
#include "hubbub/ws.h"

#define FZ_ADMIN_TOKEN "hba_fuzz_admin_token_0123456789"
/* An expanded input is at most the input plus this many substitutions. */
#define FZ_MAX_SUBST 8
#define FZ_MAX_INPUT_BYTES (256 * 1024)

static hb_config fz_cfg;
static hb_ioset fz_set;
static hb_io fz_io;
static hb_io *fz_io_list[1];
static char fz_api_token[HB_MAX_API_TOKEN_BYTES + 1];
static char *fz_conn_token; /* minted once; lives for the process */
/* Open for the process (the auth cache was loaded from it); kept here, not
 * in a local, so that LeakSanitizer sees it is still referenced. */
static hb_store *fz_store;
static char fz_tmpdir[] = "/tmp/hubbub-fuzz-XXXXXX";

static void fz_die(const char *what) {
  fprintf(stderr, "fuzz setup: %s\n", what);
  abort();
}

static void fz_hex(const uint8_t *in, size_t n, char *out) {
  static const char hx[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hx[in[i] >> 4];
    out[2 * i + 1] = hx[in[i] & 15];
  }
  out[2 * n] = '\0';
}

/* The temporary store goes away with the process (libFuzzer exits through
 * exit(), also after a finding). */
static void fz_cleanup(void) {
  static const char *const files[] = {HB_STORE_FILE, HB_STORE_FILE "-wal", HB_STORE_FILE "-shm"};
  char p[sizeof fz_tmpdir + 32];
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf(p, sizeof p, "%s/%s", fz_tmpdir, files[i]);
    unlink(p);
  }
  rmdir(fz_tmpdir);
}

static void fz_setup(void) {
  char err[256];
  hb_log_set_level(HB_LOG_ERROR);
  hb_json_init(); /* as the server does */
  hb_metrics_reset();
  if (!mkdtemp(fz_tmpdir)) fz_die("mkdtemp");
  atexit(fz_cleanup);

  hb_config_defaults(&fz_cfg);
  fz_cfg.port = 0;
  snprintf(fz_cfg.data_dir, sizeof fz_cfg.data_dir, "%s", fz_tmpdir);
  /* Small limits so the fuzzer reaches every "over the limit" branch. */
  fz_cfg.max_body_bytes = 4096;
  fz_cfg.max_message_bytes = 4096;
  fz_cfg.max_data_bytes = 1024;
  fz_cfg.max_subscriptions = 8;
  fz_cfg.max_output_bytes = 1 << 20;
  uint8_t sha[SHA256_DIGEST_LENGTH];
  SHA256((const unsigned char *)FZ_ADMIN_TOKEN, strlen(FZ_ADMIN_TOKEN), sha);
  fz_hex(sha, sizeof sha, fz_cfg.admin_token_sha256);
  /* One I/O thread's state, driven from this thread without running its
   * loop's accept: the layers are registered as hb_server_run does. */
  fz_set.cfg = &fz_cfg;
  fz_set.nio = 1;
  fz_set.io = fz_io_list;
  fz_io_list[0] = &fz_io;
  fz_set.hooks.accept_handler = &hb_http_conn_handler;
  fz_set.hooks.conn_ext_bytes = hb_server_conn_ext_bytes();

  if (hb_store_open(&fz_store, fz_tmpdir, err, sizeof err) != 0) fz_die(err);
  hb_store *st = fz_store;
  hb_org_row org;
  hb_plugin_row pl;
  hb_token_row tr;
  if (hb_store_org_create(st, "fuzz-org", &org) != 0) fz_die("org");
  if (hb_store_plugin_create(st, &org.id, "fuzz-plugin", &pl) != 0) fz_die("plugin");
  if (hb_store_token_create(st, &org.id, &pl.id, "fuzz-token", fz_api_token, &tr) != 0) fz_die("token");
  if (hb_auth_init(st) != 0) fz_die("auth");
  /* The auth cache was loaded from `st`; the io thread opens its own on a miss. */

  hb_conn_claims cl;
  memset(&cl, 0, sizeof cl);
  cl.org = org.id;
  cl.plugin = pl.id;
  hb_uuid_v4(&cl.event);
  hb_uuid_v4(&cl.session);
  snprintf(cl.user_id, sizeof cl.user_id, "fuzzer");
  cl.scopes = 7u; /* session, event, organization */
  cl.iat = (int64_t)time(NULL);
  cl.exp = cl.iat + HB_CONN_TOKEN_MAX_TTL_S;
  fz_conn_token = hb_jwt_mint(&cl, pl.signing_secret, strlen(pl.signing_secret));
  if (!fz_conn_token) fz_die("mint");

  fz_io.set = &fz_set;
  fz_io.id = 0;
  hb_uuid_v4(&fz_io.id_base);
  hb_list_init(&fz_io.conns);
  hb_list_init(&fz_io.dirty);
  hb_list_init(&fz_io.later);
  hb_list_init(&fz_io.sweep);
  if (uv_loop_init(&fz_io.loop) != 0) fz_die("loop");
  if (hb_inbox_init(&fz_io.inbox, &fz_io.loop, &fz_io) != 0) fz_die("inbox");
  hb_broker *b = hb_broker_local_new();
  if (b->ops->start(b) != 0) fz_die("broker");
  hb_publish_init(&fz_set, b);
  hb_publish_thread_start(&fz_io);
  hb_room_init();
  hb_router_init();
}

/* hb_conn_accept minus the listener: the socket is never connected (reading
 * does not start), so the input reaches the handler only through fz_feed. */
static hb_conn *fz_conn_new(void) {
  hb_conn *c = hb_conn_new(&fz_io);
  hb_conn_start(c);
  return c;
}

/* Feed as the read callback does: to whichever handler drives the
 * connection now, stopping once it closes. */
static void fz_feed(hb_conn *c, const char *p, size_t n) {
  if (n == 0 || c->state != HB_CONN_OPEN) return;
  c->h->on_read(c, p, n);
}

/* Feed in 1-3 chunks with split points from s1, s2. */
static void fz_feed_split(hb_conn *c, const char *p, size_t n, uint8_t s1, uint8_t s2) {
  size_t a = n ? (size_t)s1 * n / 256 : 0;
  size_t b = n ? (size_t)s2 * n / 256 : 0;
  if (a > b) {
    size_t t = a;
    a = b;
    b = t;
  }
  fz_feed(c, p, a);
  fz_feed(c, p + a, b - a);
  fz_feed(c, p + b, n - b);
}

/* End of one input: the sweep once (deadlines far in the past), then
 * close and let the close callback free everything. */
static void fz_finish(hb_conn *c) {
  hb_conn_sweep(&fz_io, hb_io_now_ms(&fz_io) + HB_CONFIG_MAX_TIMEOUT_MS);
  if (c->state != HB_CONN_CLOSED) hb_conn_close(c, false);
  /* Deliveries queued to a closed connection were dropped; the dirty list
   * holds only live connections, and there are none left. */
  uv_run(&fz_io.loop, UV_RUN_NOWAIT);
}

/* Replace the placeholders with this run's secrets. Caller frees. */
static char *fz_expand(const uint8_t *d, size_t n, size_t *outn) {
  static const struct {
    const char *ph;
    size_t phlen;
  } ph[] = {{"@APITOKEN@", 10}, {"@CONNTOKEN@", 11}, {"@ADMIN@", 7}};
  const char *val[3] = {fz_api_token, fz_conn_token, FZ_ADMIN_TOKEN};
  size_t cap = n + FZ_MAX_SUBST * (strlen(fz_conn_token) + 1) + 1;
  char *o = hb_malloc(cap);
  size_t on = 0, subst = 0;
  for (size_t i = 0; i < n;) {
    bool done = false;
    if (d[i] == '@' && subst < FZ_MAX_SUBST) {
      for (size_t k = 0; k < 3; k++) {
        if (n - i >= ph[k].phlen && memcmp(d + i, ph[k].ph, ph[k].phlen) == 0) {
          size_t vl = strlen(val[k]);
          memcpy(o + on, val[k], vl);
          on += vl;
          i += ph[k].phlen;
          subst++;
          done = true;
          break;
        }
      }
    }
    if (!done) o[on++] = (char)d[i++];
  }
  *outn = on;
  return o;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fz_setup();
  return 0;
}

#ifndef HB_FUZZ_GLUE_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2 || size > FZ_MAX_INPUT_BYTES) return 0;
  uint8_t s1 = data[0], s2 = data[1];
  size_t n;
  char *buf = fz_expand(data + 2, size - 2, &n);
  uv_update_time(&fz_io.loop);
  hb_conn *c = fz_conn_new();
  fz_feed_split(c, buf, n, s1, s2);
  fz_finish(c);
  hb_free(buf);
  return 0;
}
#endif
