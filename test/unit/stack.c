/* stack.c - an in-process hubbub for the unit tests (stack.h). */
#include "stack.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#include "hubbub/alloc.h"
#include "hubbub/auth.h"
#include "hubbub/history.h"
#include "hubbub/http.h"
#include "hubbub/idem.h"
#include "hubbub/iplimit.h"
#include "hubbub/json.h"
#include "hubbub/local.h"
#include "hubbub/log.h"
#include "hubbub/metrics.h"
#include "hubbub/presence.h"
#include "hubbub/publish.h"
#include "hubbub/ratelimit.h"
#include "hubbub/room.h"
#include "hubbub/router.h"
#include "hubbub/server.h"

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- the server side ------------------------------------------------------- */

/* The per-thread state of the layers, as server.c sets it up. */
static void thread_start(hb_io *io) { hb_publish_thread_start(io); }

static void thread_stop(hb_io *io) {
  hb_room_thread_stop(io);
  hb_publish_thread_stop(io);
  hb_store_thread_close();
}

void hbt_stack_init(hbt_stack *s) {
  memset(s, 0, sizeof *s);
  s->mode = HBT_SERVER;
  s->nio = 1;
  hb_config_defaults(&s->cfg);
  snprintf(s->cfg.host, sizeof s->cfg.host, "127.0.0.1");
  s->cfg.port = 0;
  s->cfg.flush_interval_ms = 0;
}

static void open_store(hbt_stack *s) {
  char err[512];
  snprintf(s->dir, sizeof s->dir, "/tmp/hb_test_stack.XXXXXX");
  if (!mkdtemp(s->dir)) fail_msg("mkdtemp: %s", strerror(errno));
  snprintf(s->cfg.data_dir, sizeof s->cfg.data_dir, "%s", s->dir);
  if (hb_store_open(&s->store, s->dir, err, sizeof err) != 0) fail_msg("store: %s", err);
  if (hb_store_org_create(s->store, "test-org", &s->org) != 0) fail_msg("org");
  if (hb_store_plugin_create(s->store, &s->org.id, "test-plugin", &s->plugin) != 0) fail_msg("plugin");
  if (hb_store_token_create(s->store, &s->org.id, &s->plugin.id, "test-token", s->api_token, NULL) != 0)
    fail_msg("token");
  if (hb_auth_init(s->store) != 0) fail_msg("auth");
}

void hbt_stack_start(hbt_stack *s) {
  hb_log_set_level(HB_LOG_ERROR);
  hb_json_init();
  if (s->mode == HBT_SERVER) {
    open_store(s);
    if (!s->broker) s->broker = hb_broker_local_new();
    /* History in memory (no history.db), with the config's limits, as the
     * server runs it. */
    hb_history_limits hl = {
        .size = (uint32_t)s->cfg.history_size,
        .ttl_ms = (int64_t)s->cfg.history_ttl_s * 1000,
        .max_channels = HB_DEFAULT_HISTORY_MAX_CHANNELS,
    };
    if (hb_history_init(&hl, NULL) != 0) fail_msg("history");
    hb_idem_init((int64_t)s->cfg.idempotency_ttl_s * 1000, HB_DEFAULT_IDEMPOTENCY_MAX_KEYS);
    /* Presence with the config's limits, deltas delivered by the publish
     * core (one node: nothing replicated). */
    hb_presence_limits pl = {
        .interval_ms = s->cfg.presence_interval_ms,
        .list_max = (uint32_t)s->cfg.presence_list_max,
        .ttl_ms = (int64_t)s->cfg.presence_ttl_s * 1000,
    };
    hb_presence_hooks ph = {.deliver = hb_publish_deliver_all};
    hb_presence_init(&pl, &ph);
    hb_publish_init(&s->set, s->broker);
    hb_room_init();
    hb_router_init();
    if (s->broker->ops->start(s->broker) != 0) fail_msg("broker %s did not start", s->broker->ops->name);
    /* The admin API's store calls run on its worker thread, as in the server. */
    if (s->cfg.admin_token_sha256[0]) hb_api_admin_start(&s->cfg);
    s->hooks = (hb_io_hooks){
        .accept_handler = &hb_http_conn_handler,
        .conn_ext_bytes = hb_server_conn_ext_bytes(),
        .thread_start = thread_start,
        .thread_stop = thread_stop,
    };
  }
  if (hb_ioset_start(&s->set, &s->cfg, s->nio, &s->hooks) != 0) fail_msg("hb_ioset_start failed");
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

void hbt_stack_stop(hbt_stack *s) {
  /* As the server stops: the I/O threads finish (answers from Redis
   * included), then no more posts from the broker's thread, then their
   * inboxes go. */
  hb_ioset_request_stop(&s->set);
  hb_ioset_wait(&s->set);
  if (s->mode == HBT_SERVER) {
    hb_publish_quiesce();
    hb_api_admin_stop(); /* before the join: its last answers post to the I/O threads */
  }
  hb_ioset_join(&s->set);
  if (s->broker) s->broker->ops->stop(s->broker);
  s->broker = NULL;
  if (s->mode == HBT_SERVER) {
    hb_presence_shutdown(); /* every connection has left */
    hb_history_shutdown();
    hb_idem_shutdown();
    hb_auth_shutdown();
    hb_ratelimit_shutdown();
    hb_store_close(s->store);
    s->store = NULL;
    nftw(s->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  }
  hb_iplimit_shutdown();
}

/* A call made on an I/O thread. Allocated with calloc, not hb_malloc: it is
 * the harness's, not the code's under test (and if the thread never answers
 * the call is left behind rather than freed under it). */
typedef struct {
  void (*fn)(void *arg);
  void *arg;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool done, ran;
} io_call;

static void io_call_job(void *ctx, void *arg) {
  io_call *c = arg;
  if (ctx) c->fn(c->arg);
  pthread_mutex_lock(&c->mu);
  c->ran = ctx != NULL;
  c->done = true;
  pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

void hbt_on_io(hb_io *io, void (*fn)(void *arg), void *arg) {
  io_call *c = calloc(1, sizeof *c);
  c->fn = fn;
  c->arg = arg;
  pthread_mutex_init(&c->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&c->cv, &ca);
  pthread_condattr_destroy(&ca);
  struct timespec dl;
  clock_gettime(CLOCK_MONOTONIC, &dl);
  dl.tv_sec += HBT_WAIT_MS / 1000;
  hb_io_post(io, io_call_job, c);
  pthread_mutex_lock(&c->mu);
  int r = 0;
  while (!c->done && r == 0) r = pthread_cond_timedwait(&c->cv, &c->mu, &dl);
  bool done = c->done, ran = c->ran;
  pthread_mutex_unlock(&c->mu);
  if (!done) fail_msg("I/O thread %d did not run a job within %d ms", io->id, HBT_WAIT_MS);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->cv);
  free(c);
  if (!ran) fail_msg("I/O thread %d stopped before running a job", io->id);
}

typedef struct {
  bool (*pred)(void *arg);
  void *arg;
  bool ok;
} until_call;

static void until_job(void *arg) {
  until_call *u = arg;
  u->ok = u->pred(u->arg);
}

void hbt_io_until(hb_io *io, bool (*pred)(void *arg), void *arg, const char *what) {
  uint64_t end = now_ms() + HBT_WAIT_MS;
  until_call u = {pred, arg, false};
  for (;;) {
    hbt_on_io(io, until_job, &u);
    if (u.ok) return;
    if (now_ms() > end) fail_msg("timed out after %d ms waiting for %s", HBT_WAIT_MS, what);
    usleep(1000);
  }
}

typedef struct {
  hb_io *io;
  int fd;
  hb_conn *c;
} attach_call;

static void attach_job(void *arg) {
  attach_call *a = arg;
  hb_conn *c = hb_conn_new(a->io);
  if (uv_tcp_open(&c->tcp, a->fd) != 0) {
    close(a->fd);
    hb_conn_close(c, false);
    return;
  }
  hb_conn_start(c);
  a->c = c;
}

hb_conn *hbt_attach(hb_io *io, int *client_fd, int rcvbuf) {
  int one = 1;
  struct sockaddr_in a;
  socklen_t alen = sizeof a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(l >= 0);
  /* as io.c's listeners: accepted sockets inherit TCP_NODELAY */
  setsockopt(l, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(l, 1), 0);
  assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  if (rcvbuf) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  int sfd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  assert_true(sfd >= 0);
  close(l);
  attach_call call = {io, sfd, NULL};
  hbt_on_io(io, attach_job, &call);
  if (!call.c) fail_msg("uv_tcp_open failed");
  *client_fd = fd;
  return call.c;
}

/* --- the client side ------------------------------------------------------- */

void hbt_send(int fd, const void *p, size_t n) {
  const char *b = p;
  while (n > 0) {
    ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) fail_msg("send: %s", strerror(errno));
    b += w;
    n -= (size_t)w;
  }
}

long hbt_recv(int fd, hb_strbuf *in, int ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  int r;
  do r = poll(&p, 1, ms);
  while (r < 0 && errno == EINTR);
  if (r == 0) return -1;
  char buf[65536];
  ssize_t n = recv(fd, buf, sizeof buf, 0);
  if (n < 0 && errno == ECONNRESET) return 0; /* the peer is gone either way */
  if (n < 0) fail_msg("recv: %s", strerror(errno));
  hb_strbuf_add(in, buf, (size_t)n);
  return n;
}

static int ms_left(uint64_t end) {
  uint64_t now = now_ms();
  return now >= end ? 0 : (int)(end - now);
}

void hbt_recv_n(int fd, hb_strbuf *in, size_t n) {
  uint64_t end = now_ms() + HBT_WAIT_MS;
  while (in->len < n) {
    long r = hbt_recv(fd, in, ms_left(end));
    if (r == 0) fail_msg("the server closed after %zu of %zu bytes", in->len, n);
    if (r < 0) fail_msg("timed out after %d ms with %zu of %zu bytes", HBT_WAIT_MS, in->len, n);
  }
}

void hbt_recv_eof(int fd, hb_strbuf *in) {
  uint64_t end = now_ms() + HBT_WAIT_MS;
  for (;;) {
    long r = hbt_recv(fd, in, ms_left(end));
    if (r == 0) return;
    if (r < 0) fail_msg("timed out after %d ms waiting for the server to close", HBT_WAIT_MS);
  }
}

void hbt_consume(hb_strbuf *in, size_t n) {
  memmove(in->buf, in->buf + n, in->len - n);
  in->len -= n;
  if (in->buf) in->buf[in->len] = '\0';
}

size_t hbt_http_complete(const char *p, size_t n, bool head) {
  const char *end = memmem(p, n, "\r\n\r\n", 4);
  if (!end) return 0;
  size_t hlen = (size_t)(end - p) + 4;
  int status = 0;
  sscanf(p, "HTTP/1.%*d %d", &status);
  size_t body = 0;
  if (!head && status >= 200 && status != 204 && status != 304) {
    for (const char *q = p; q < end; q++) {
      if (*q == '\n' && strncasecmp(q + 1, "Content-Length:", 15) == 0) {
        body = (size_t)strtoul(q + 16, NULL, 10);
        break;
      }
    }
  }
  return n >= hlen + body ? hlen + body : 0;
}

void hbt_recv_http(int fd, hb_strbuf *in, hbt_http_resp *r, bool head) {
  uint64_t end = now_ms() + HBT_WAIT_MS;
  size_t n = 0;
  while (!in->len || !(n = hbt_http_complete(in->buf, in->len, head))) {
    long got = hbt_recv(fd, in, ms_left(end));
    if (got == 0) fail_msg("the server closed before a complete response: '%.*s'", (int)in->len, in->buf ? in->buf : "");
    if (got < 0) fail_msg("timed out waiting for a response: '%.*s'", (int)in->len, in->buf ? in->buf : "");
  }
  const char *hend = memmem(in->buf, n, "\r\n\r\n", 4);
  size_t hlen = (size_t)(hend - in->buf);
  memset(r, 0, sizeof *r);
  sscanf(in->buf, "HTTP/1.%*d %d", &r->status);
  snprintf(r->head, sizeof r->head, "%.*s", (int)hlen, in->buf);
  r->body_len = n - hlen - 4;
  if (r->body_len >= sizeof r->body) fail_msg("a response body of %zu bytes", r->body_len);
  memcpy(r->body, hend + 4, r->body_len);
  r->body[r->body_len] = '\0';
  r->len = n;
  hbt_consume(in, n);
}

const char *hbt_header(const hbt_http_resp *r, const char *name) {
  static char value[1024];
  size_t nl = strlen(name);
  for (const char *q = strstr(r->head, "\r\n"); q; q = strstr(q + 2, "\r\n")) {
    if (strncasecmp(q + 2, name, nl) == 0 && q[2 + nl] == ':') {
      const char *v = q + 3 + nl;
      while (*v == ' ') v++;
      const char *e = strstr(v, "\r\n");
      snprintf(value, sizeof value, "%.*s", (int)(e ? e - v : (long)strlen(v)), v);
      return value;
    }
  }
  return NULL;
}

/* --- WebSocket, the client side -------------------------------------------- */

void hbt_ws_send(int fd, uint8_t b0, const void *p, size_t n) {
  static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
  hb_strbuf f = HB_STRBUF_INIT;
  uint8_t h[14];
  size_t hl = 0;
  h[hl++] = b0;
  if (n < 126) {
    h[hl++] = (uint8_t)(0x80 | n);
  } else if (n <= 0xffff) {
    h[hl++] = 0x80 | 126;
    h[hl++] = (uint8_t)(n >> 8);
    h[hl++] = (uint8_t)n;
  } else {
    h[hl++] = 0x80 | 127;
    for (int i = 7; i >= 0; i--) h[hl++] = (uint8_t)((uint64_t)n >> (8 * i));
  }
  memcpy(h + hl, mask, 4);
  hl += 4;
  hb_strbuf_add(&f, h, hl);
  for (size_t i = 0; i < n; i++) hb_strbuf_addch(&f, (char)(((const uint8_t *)p)[i] ^ mask[i & 3]));
  hbt_send(fd, f.buf, f.len);
  hb_strbuf_free(&f);
}

/* Length of the first whole server frame in p[0..n), 0 when incomplete. */
static size_t frame_complete(const uint8_t *p, size_t n, size_t *hl, size_t *plen) {
  if (n < 2) return 0;
  if (p[1] & 0x80) fail_msg("a masked frame from the server (RFC 6455 5.1)");
  size_t len = p[1] & 0x7f, h = 2;
  if (len == 126) {
    if (n < 4) return 0;
    len = (size_t)p[2] << 8 | p[3];
    h = 4;
  } else if (len == 127) {
    if (n < 10) return 0;
    len = 0;
    for (int i = 0; i < 8; i++) len = len << 8 | p[2 + i];
    h = 10;
  }
  *hl = h;
  *plen = len;
  return n >= h + len ? h + len : 0;
}

void hbt_ws_recv(int fd, hb_strbuf *in, hbt_frame *f) {
  uint64_t end = now_ms() + HBT_WAIT_MS;
  size_t n, hl = 0, plen = 0;
  while (!(n = frame_complete((const uint8_t *)in->buf, in->len, &hl, &plen))) {
    long got = hbt_recv(fd, in, ms_left(end));
    if (got == 0) fail_msg("the server closed the connection before a frame (%zu bytes in)", in->len);
    if (got < 0) fail_msg("timed out after %d ms waiting for a frame", HBT_WAIT_MS);
  }
  if (plen >= sizeof f->payload) {
    fail_msg("a frame of %zu bytes", plen);
    return;
  }
  const uint8_t *p = (const uint8_t *)in->buf;
  f->fin = p[0] & 0x80;
  f->opcode = p[0] & 0x0f;
  f->len = plen;
  memcpy(f->payload, p + hl, plen);
  f->payload[plen] = '\0';
  f->close_code = 0;
  if (f->opcode == 0x8) f->close_code = plen >= 2 ? (uint16_t)((uint8_t)f->payload[0] << 8 | (uint8_t)f->payload[1]) : 1005;
  hbt_consume(in, n);
}

void hbt_ws_recv_text(int fd, hb_strbuf *in, const char *needle, hbt_frame *f) {
  for (;;) {
    hbt_ws_recv(fd, in, f);
    if (f->opcode == 0x8) fail_msg("closed (%u %s) while waiting for a message with %s", f->close_code,
                                   f->len > 2 ? f->payload + 2 : "", needle);
    if (f->opcode != 0x1) continue; /* a ping */
    if (strstr(f->payload, needle)) return;
  }
}

void hbt_ws_upgrade_request(hb_strbuf *out, const char *target) {
  hb_strbuf_addf(out,
                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                 target);
}

/* --- room credentials ------------------------------------------------------ */

void hbt_claims(hbt_stack *s, hb_conn_claims *cl) {
  memset(cl, 0, sizeof *cl);
  cl->org = s->org.id;
  cl->plugin = s->plugin.id;
  hb_uuid_v4(&cl->event);
  hb_uuid_v4(&cl->session);
  snprintf(cl->user_id, sizeof cl->user_id, "tester");
  cl->scopes = HB_SCOPE_BIT(HB_SCOPE_SESSION) | HB_SCOPE_BIT(HB_SCOPE_EVENT) | HB_SCOPE_BIT(HB_SCOPE_ORGANIZATION);
  cl->iat = (int64_t)time(NULL);
  cl->exp = cl->iat + 600;
}

char *hbt_mint(hbt_stack *s, const hb_conn_claims *cl) {
  char *t = hb_jwt_mint(cl, s->plugin.signing_secret, strlen(s->plugin.signing_secret));
  if (!t) fail_msg("hb_jwt_mint failed");
  return t;
}

int hbt_room_upgrade(hbt_stack *s, hb_io *io, const hb_conn_claims *cl, const char *query, hb_strbuf *in,
                     hb_conn **conn) {
  int fd;
  hb_conn *c = hbt_attach(io, &fd, 0);
  if (conn) *conn = c;
  char *tok = hbt_mint(s, cl);
  hb_strbuf target = HB_STRBUF_INIT, req = HB_STRBUF_INIT;
  hb_strbuf_addf(&target, "/api/v1/ws?token=%s%s%s", tok, query ? "&" : "", query ? query : "");
  hbt_ws_upgrade_request(&req, target.buf);
  hbt_send(fd, req.buf, req.len);
  hb_free(tok);
  hb_strbuf_free(&target);
  hb_strbuf_free(&req);
  hbt_http_resp r;
  hbt_recv_http(fd, in, &r, false);
  if (r.status != 101) fail_msg("upgrade refused: %d %s", r.status, r.body);
  return fd;
}

int hbt_room_open(hbt_stack *s, hb_io *io, const hb_conn_claims *cl, const char *query, hb_strbuf *in,
                  hb_conn **conn, hbt_frame *welcome) {
  int fd = hbt_room_upgrade(s, io, cl, query, in, conn);
  hbt_ws_recv(fd, in, welcome);
  if (welcome->opcode != 0x1 || !strstr(welcome->payload, "\"type\":\"welcome\""))
    fail_msg("expected the welcome, got opcode %d '%s'", welcome->opcode, welcome->payload);
  return fd;
}
