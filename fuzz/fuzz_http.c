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
#include "hubbub/broker.h"
#include "hubbub/config.h"
#include "hubbub/conn.h"
#include "hubbub/envelope.h"
#include "hubbub/http.h"
#include "hubbub/io.h"
#include "hubbub/jwt.h"
#include "hubbub/limits.h"
#include "hubbub/log.h"
#include "hubbub/store.h"
#include "hubbub/ws.h"

#define FZ_ADMIN_TOKEN "hba_fuzz_admin_token_0123456789"
/* An expanded input is at most the input plus this many substitutions. */
#define FZ_MAX_SUBST 8
#define FZ_MAX_INPUT_BYTES (256 * 1024)

static hb_server fz_srv;
static hb_io fz_io;
static hb_io *fz_io_list[1];
static char fz_api_token[HB_MAX_API_TOKEN_BYTES + 1];
static char *fz_conn_token; /* minted once; lives for the process */
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
  hb_envelope_init(); /* as the server does */
  if (!mkdtemp(fz_tmpdir)) fz_die("mkdtemp");
  atexit(fz_cleanup);

  hb_config_defaults(&fz_srv.cfg);
  fz_srv.cfg.port = 0;
  snprintf(fz_srv.cfg.data_dir, sizeof fz_srv.cfg.data_dir, "%s", fz_tmpdir);
  /* Small limits so the fuzzer reaches every "over the limit" branch. */
  fz_srv.cfg.max_body_bytes = 4096;
  fz_srv.cfg.max_message_bytes = 4096;
  fz_srv.cfg.max_data_bytes = 1024;
  fz_srv.cfg.max_subscriptions = 8;
  fz_srv.cfg.max_output_bytes = 1 << 20;
  uint8_t sha[SHA256_DIGEST_LENGTH];
  SHA256((const unsigned char *)FZ_ADMIN_TOKEN, strlen(FZ_ADMIN_TOKEN), sha);
  fz_hex(sha, sizeof sha, fz_srv.cfg.admin_token_sha256);
  fz_srv.nio = 1;
  fz_srv.io = fz_io_list;
  fz_io_list[0] = &fz_io;
  fz_srv.started_at = (int64_t)time(NULL);

  hb_store *st = NULL;
  if (hb_store_open(&st, fz_tmpdir, err, sizeof err) != 0) fz_die(err);
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

  fz_io.srv = &fz_srv;
  fz_io.id = 0;
  hb_uuid_v4(&fz_io.id_base);
  hb_list_init(&fz_io.conns);
  hb_list_init(&fz_io.dirty);
  hb_index_init(&fz_io.index, NULL, NULL);
  pthread_mutex_init(&fz_io.inbox_lock, NULL);
  if (uv_loop_init(&fz_io.loop) != 0) fz_die("loop");
  fz_srv.broker = hb_broker_local_new(&fz_srv);
  if (fz_srv.broker->ops->start(fz_srv.broker) != 0) fz_die("broker");
  /* The store stays open: the auth cache and the admin API may use it. */
  fz_io.store = st;
}

/* What hb_conn_accept sets up, minus the listener. */
static hb_conn *fz_conn_new(void) {
  hb_conn *c = hb_calloc(1, sizeof *c);
  uv_tcp_init(&fz_io.loop, &c->tcp);
  c->tcp.data = c;
  c->io = &fz_io;
  hb_list_init(&c->subs);
  hb_list_init(&c->dirty_link);
  hb_list_insert_tail(&fz_io.conns, &c->link);
  fz_io.nconns++;
  c->state = HB_CONN_HTTP;
  c->deadline_ms = hb_io_now_ms(&fz_io) + (uint64_t)fz_srv.cfg.handshake_timeout_ms;
  c->counted = true;
  atomic_fetch_add_explicit(&fz_srv.open_conns, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&fz_srv.metrics.connections_open, 1, memory_order_relaxed);
  return c;
}

/* Feed like on_read does: by state, stopping once the connection closes. */
static void fz_feed(hb_conn *c, const char *p, size_t n) {
  if (n == 0) return;
  switch (c->state) {
  case HB_CONN_HTTP: hb_http_on_read(c, p, n); break;
  case HB_CONN_WS: hb_ws_on_read(c, p, n); break;
  default: break;
  }
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

/* End of one input: the 1 s sweep once (deadlines far in the past), then
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
