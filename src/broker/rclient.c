/*
 * rclient.c - one Redis connection on a libuv loop (rclient.h).
 *
 * Why not hiredis's async API with its libuv adapter: hiredis 0.14 keeps its
 * own per-channel callback table for SUBSCRIBE and asserts when a channel is
 * unsubscribed to zero while another SUBSCRIBE is in flight (what interest
 * routing produces), and it has no connect timeout. Here the connection is a
 * plain uv_tcp_t; hiredis supplies the RESP reply parser (redisReader), and
 * commands are formatted straight into the write buffer.
 */
#include "hubbub/rclient.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "hubbub/alloc.h"
#include "hubbub/limits.h"
#include "hubbub/log.h"
#include "hubbub/strbuf.h"

/* A command waiting for its reply. */
typedef struct {
  hb_rclient_reply_fn cb;
  void *ctx;
  uint64_t queued_ms;
} pending;

struct hb_rclient {
  uv_loop_t *loop;
  hb_rclient_config cfg; /* strings below are copies */
  char *host, *user, *password, *name, *client_name;
  int port;
  hb_rclient_state state;

  uv_tcp_t tcp;
  uv_connect_t connect_req;
  uv_write_t write_req;
  uv_getaddrinfo_t gai;
  uv_timer_t tick;
  bool tcp_open;    /* tcp initialised, its close callback not yet run */
  bool tcp_closing; /* uv_close called on tcp */
  bool resolving;   /* gai in flight */
  bool writing;     /* write_req in flight (owns `inflight`) */
  bool stopping;    /* hb_rclient_stop called: free once the handles are closed */
  int handles;      /* tick + tcp open: the free waits for their close callbacks */
  uint64_t attempt; /* bumped by each connect: a late resolve of an old one is ignored */
  uint64_t resolve_attempt;

  hb_strbuf out;      /* commands not yet handed to libuv */
  hb_strbuf inflight; /* the bytes of the write in flight */
  redisReader *reader;

  pending *fifo; /* ring of pending commands, oldest at head */
  size_t head, len, cap;

  uint64_t deadline_ms; /* CONNECTING/HANDSHAKE: give up then; BACKOFF: retry then */
  uint64_t backoff_ms;
  uint64_t last_tick_ms, last_sent_ms, ready_since_ms;
  uint64_t faults;
  int write_error; /* uv_write failed at once: faulted by the next tick, not inside hb_rclient_cmd */
  char last_fault[160];
};

static const char *const state_names[] = {
    [HB_RCLIENT_STOPPED] = "stopped",     [HB_RCLIENT_CONNECTING] = "connecting",
    [HB_RCLIENT_HANDSHAKE] = "handshake", [HB_RCLIENT_READY] = "ready",
    [HB_RCLIENT_BACKOFF] = "backoff",
};

const char *hb_rclient_state_name(hb_rclient_state s) { return state_names[s]; }
hb_rclient_state hb_rclient_get_state(const hb_rclient *rc) { return rc->state; }
size_t hb_rclient_pending(const hb_rclient *rc) { return rc->len; }
size_t hb_rclient_unsent_bytes(const hb_rclient *rc) { return rc->out.len + rc->inflight.len; }
uint64_t hb_rclient_faults(const hb_rclient *rc) { return rc->faults; }
uint64_t hb_rclient_ready_since_ms(const hb_rclient *rc) { return rc->ready_since_ms; }

bool hb_rclient_reply_is(const redisReply *r, const char *s) {
  return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) && r->len == strlen(s) &&
         strncasecmp(r->str, s, r->len) == 0;
}

static char *dup_or_null(const char *s) { return s ? hb_strndup(s, strlen(s)) : NULL; }

static void fault(hb_rclient *rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void flush(hb_rclient *rc);
static void begin_connect(hb_rclient *rc);

/* --- the FIFO of pending commands ----------------------------------------- */

static void fifo_push(hb_rclient *rc, hb_rclient_reply_fn cb, void *ctx) {
  if (rc->len == rc->cap) {
    size_t ncap = rc->cap ? rc->cap * 2 : 64;
    pending *n = hb_malloc(ncap * sizeof *n);
    for (size_t i = 0; i < rc->len; i++) n[i] = rc->fifo[(rc->head + i) % rc->cap];
    hb_free(rc->fifo);
    rc->fifo = n;
    rc->cap = ncap;
    rc->head = 0;
  }
  pending *p = &rc->fifo[(rc->head + rc->len) % rc->cap];
  p->cb = cb;
  p->ctx = ctx;
  p->queued_ms = uv_now(rc->loop);
  rc->len++;
}

static pending fifo_pop(hb_rclient *rc) {
  pending p = rc->fifo[rc->head];
  rc->head = (rc->head + 1) % rc->cap;
  rc->len--;
  return p;
}

/* Fail every pending command. The ring is detached first: a callback may
 * queue again (it is refused: the state is no longer READY). */
static void fail_all(hb_rclient *rc, const char *why) {
  pending *f = rc->fifo;
  size_t head = rc->head, len = rc->len, cap = rc->cap;
  rc->fifo = NULL;
  rc->head = rc->len = rc->cap = 0;
  for (size_t i = 0; i < len; i++) {
    pending *p = &f[(head + i) % cap];
    if (p->cb) p->cb(p->ctx, NULL, why);
  }
  hb_free(f);
}

/* --- RESP commands, formatted into the output buffer ---------------------- */

static void add_uint(hb_strbuf *sb, char lead, size_t v) {
  hb_strbuf_addch(sb, lead);
  hb_strbuf_add_uint(sb, v);
  hb_strbuf_add(sb, "\r\n", 2);
}

static void format_cmd(hb_strbuf *sb, int argc, const hb_rclient_arg *argv) {
  add_uint(sb, '*', (size_t)argc);
  for (int i = 0; i < argc; i++) {
    add_uint(sb, '$', argv[i].len);
    hb_strbuf_add(sb, argv[i].p, argv[i].len);
    hb_strbuf_add(sb, "\r\n", 2);
  }
}

/* Queue a command on a live connection. False (nothing queued, cb never
 * called) once a fault closed it: a command queued then would be matched
 * with a reply of the next connection. */
static bool send_cmd(hb_rclient *rc, hb_rclient_reply_fn cb, void *ctx, int argc, const hb_rclient_arg *argv) {
  if (rc->state != HB_RCLIENT_READY && rc->state != HB_RCLIENT_HANDSHAKE) return false;
  format_cmd(&rc->out, argc, argv);
  fifo_push(rc, cb, ctx);
  rc->last_sent_ms = uv_now(rc->loop);
  flush(rc);
  return true;
}

bool hb_rclient_cmd(hb_rclient *rc, hb_rclient_reply_fn cb, void *ctx, int argc, const hb_rclient_arg *argv) {
  return send_cmd(rc, cb, ctx, argc, argv);
}

bool hb_rclient_cmd_strs(hb_rclient *rc, hb_rclient_reply_fn cb, void *ctx, int argc, const char *const *argv) {
  hb_rclient_arg a[16];
  if (argc > 16) return false;
  for (int i = 0; i < argc; i++) a[i] = (hb_rclient_arg){argv[i], strlen(argv[i])};
  return hb_rclient_cmd(rc, cb, ctx, argc, a);
}

/* --- writing --------------------------------------------------------------- */

static void on_write(uv_write_t *req, int status) {
  hb_rclient *rc = req->data;
  rc->writing = false;
  /* Keep the buffer for the next write unless a burst made it large. */
  if (rc->inflight.cap > HB_REDIS_MAX_OUTPUT_BYTES) hb_strbuf_free(&rc->inflight);
  else hb_strbuf_reset(&rc->inflight);
  if (status < 0) {
    if (status != UV_ECANCELED) fault(rc, "write: %s", uv_strerror(status));
    return;
  }
  flush(rc);
}

/* Hand what is queued to libuv: one write in flight at a time. */
static void flush(hb_rclient *rc) {
  if (rc->writing || rc->out.len == 0 || rc->write_error) return;
  if (rc->state != HB_RCLIENT_HANDSHAKE && rc->state != HB_RCLIENT_READY) return;
  hb_strbuf t = rc->inflight; /* empty: swap the buffers rather than copy */
  rc->inflight = rc->out;
  rc->out = t;
  rc->write_req.data = rc;
  uv_buf_t buf = uv_buf_init(rc->inflight.buf, (unsigned)rc->inflight.len);
  int r = uv_write(&rc->write_req, (uv_stream_t *)&rc->tcp, &buf, 1, on_write);
  if (r) {
    /* Not now: the caller may be hb_rclient_cmd, whose callback must never
     * run within the call. The tick faults the connection. */
    rc->write_error = r;
    return;
  }
  rc->writing = true;
}

/* --- closing and freeing ---------------------------------------------------- */

static void maybe_free(hb_rclient *rc) {
  if (!rc->stopping || rc->handles > 0 || rc->resolving) return;
  if (rc->reader) redisReaderFree(rc->reader);
  hb_strbuf_free(&rc->out);
  hb_strbuf_free(&rc->inflight);
  hb_free(rc->fifo);
  hb_free(rc->host);
  hb_free(rc->user);
  hb_free(rc->name);
  hb_free(rc->client_name);
  if (rc->password) {
    memset(rc->password, 0, strlen(rc->password)); /* a secret: not left in freed memory */
    hb_free(rc->password);
  }
  hb_free(rc);
}

static void on_tcp_closed(uv_handle_t *h) {
  hb_rclient *rc = h->data;
  rc->tcp_open = rc->tcp_closing = false;
  rc->handles--;
  if (rc->reader) redisReaderFree(rc->reader);
  rc->reader = NULL;
  hb_strbuf_reset(&rc->out);
  hb_strbuf_free(&rc->inflight);
  maybe_free(rc);
}

static void close_tcp(hb_rclient *rc) {
  if (rc->tcp_open && !rc->tcp_closing) {
    rc->tcp_closing = true;
    uv_close((uv_handle_t *)&rc->tcp, on_tcp_closed);
  }
}

/* A fault: close, fail what is pending, tell the owner, back off. */
static void fault(hb_rclient *rc, const char *fmt, ...) {
  hb_rclient_state was = rc->state;
  if (was != HB_RCLIENT_CONNECTING && was != HB_RCLIENT_HANDSHAKE && was != HB_RCLIENT_READY) return;
  char why[sizeof rc->last_fault];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  rc->state = HB_RCLIENT_BACKOFF;
  rc->faults++;
  close_tcp(rc);
  hb_strbuf_reset(&rc->out);
  uint64_t now = uv_now(rc->loop);
  rc->deadline_ms = now + rc->backoff_ms;
  /* While Redis stays away every attempt fails the same way: say it once. */
  if (was == HB_RCLIENT_READY || strcmp(why, rc->last_fault) != 0)
    hb_warn("redis: %s connection: %s %s:%d: %s; retrying in %llu ms", rc->name,
            was == HB_RCLIENT_READY ? "link lost to" : "cannot reach", rc->host, rc->port, why,
            (unsigned long long)rc->backoff_ms);
  else
    hb_debug("redis: %s connection: %s; retrying in %llu ms", rc->name, why, (unsigned long long)rc->backoff_ms);
  snprintf(rc->last_fault, sizeof rc->last_fault, "%s", why);
  rc->backoff_ms *= 2;
  if (rc->backoff_ms > rc->cfg.backoff_max_ms) rc->backoff_ms = rc->cfg.backoff_max_ms;
  char failed[sizeof why + 32];
  snprintf(failed, sizeof failed, "Redis link lost: %s", why);
  fail_all(rc, failed);
  if (rc->cfg.on_down) rc->cfg.on_down(rc, rc->cfg.ud, why, was == HB_RCLIENT_READY);
}

void hb_rclient_fault(hb_rclient *rc, const char *why) { fault(rc, "%s", why); }

/* --- reading ---------------------------------------------------------------- */

static bool is_push(const redisReply *r) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) return false;
  const redisReply *k = r->element[0];
  return hb_rclient_reply_is(k, "message") || hb_rclient_reply_is(k, "smessage") ||
         hb_rclient_reply_is(k, "pmessage");
}

static void on_reply(hb_rclient *rc, redisReply *r) {
  if (rc->cfg.subscriber && is_push(r)) {
    if (rc->cfg.on_push) rc->cfg.on_push(rc, rc->cfg.ud, r);
    return;
  }
  if (rc->len == 0) {
    fault(rc, "a reply nothing asked for");
    return;
  }
  pending p = fifo_pop(rc);
  if (p.cb) p.cb(p.ctx, r, NULL);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static _Thread_local char readbuf[HB_REDIS_READ_BUFFER_BYTES]; /* consumed in on_read */
  *buf = uv_buf_init(readbuf, sizeof readbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  hb_rclient *rc = s->data;
  if (nread == 0) return;
  if (nread < 0) {
    fault(rc, "%s", nread == UV_EOF ? "closed by Redis" : uv_strerror((int)nread));
    return;
  }
  if (redisReaderFeed(rc->reader, buf->base, (size_t)nread) != REDIS_OK) {
    fault(rc, "%s", rc->reader->errstr);
    return;
  }
  /* A callback may fault the link: stop at once (the reader lives until the
   * close callback, but what it still holds belongs to a dead connection). */
  while (rc->state == HB_RCLIENT_HANDSHAKE || rc->state == HB_RCLIENT_READY) {
    void *reply = NULL;
    if (redisReaderGetReply(rc->reader, &reply) != REDIS_OK) {
      fault(rc, "bad reply: %s", rc->reader->errstr);
      break;
    }
    if (!reply) break;
    on_reply(rc, reply);
    freeReplyObject(reply);
  }
}

/* --- the handshake ---------------------------------------------------------- */

static void on_handshake_reply(void *ctx, const redisReply *r, const char *err) {
  hb_rclient *rc = ctx;
  if (!r) return; /* the fault that failed it was reported */
  if (r->type == REDIS_REPLY_ERROR)
    fault(rc, "Redis answered: %.*s", (int)(r->len > 120 ? 120 : r->len), r->str);
}

static void on_handshake_pong(void *ctx, const redisReply *r, const char *err) {
  hb_rclient *rc = ctx;
  if (!r || rc->state != HB_RCLIENT_HANDSHAKE) return;
  if (r->type == REDIS_REPLY_ERROR) {
    fault(rc, "Redis answered: %.*s", (int)(r->len > 120 ? 120 : r->len), r->str);
    return;
  }
  rc->state = HB_RCLIENT_READY;
  rc->backoff_ms = rc->cfg.backoff_min_ms;
  rc->last_fault[0] = '\0';
  rc->ready_since_ms = uv_now(rc->loop);
  hb_debug("redis: %s connection ready (%s:%d db %d)", rc->name, rc->host, rc->port, rc->cfg.db);
  if (rc->cfg.on_ready) rc->cfg.on_ready(rc, rc->cfg.ud);
}

static void on_ping_reply(void *ctx, const redisReply *r, const char *err) {
  hb_rclient *rc = ctx;
  if (r && r->type == REDIS_REPLY_ERROR)
    fault(rc, "PING: %.*s", (int)(r->len > 120 ? 120 : r->len), r->str);
}

/* AUTH and SELECT first, then the owner's commands, a PING last. */
static void send_handshake(hb_rclient *rc) {
  rc->state = HB_RCLIENT_HANDSHAKE;
  rc->write_error = 0;
  if (rc->password) {
    hb_rclient_arg a[3] = {{"AUTH", 4}};
    int n = 1;
    if (rc->user) a[n++] = (hb_rclient_arg){rc->user, strlen(rc->user)};
    a[n++] = (hb_rclient_arg){rc->password, strlen(rc->password)};
    send_cmd(rc, on_handshake_reply, rc, n, a);
  }
  if (rc->cfg.db) {
    char db[16];
    int n = snprintf(db, sizeof db, "%d", rc->cfg.db);
    send_cmd(rc, on_handshake_reply, rc, 2, (hb_rclient_arg[]){{"SELECT", 6}, {db, (size_t)n}});
  }
  if (rc->client_name) {
    /* A name for CLIENT LIST; a Redis (or an ACL) that refuses it is fine. */
    hb_rclient_arg a[3] = {{"CLIENT", 6}, {"SETNAME", 7}, {rc->client_name, strlen(rc->client_name)}};
    send_cmd(rc, NULL, NULL, 3, a);
  }
  if (rc->cfg.on_handshake) rc->cfg.on_handshake(rc, rc->cfg.ud);
  if (rc->state != HB_RCLIENT_HANDSHAKE) return; /* the owner faulted it */
  send_cmd(rc, on_handshake_pong, rc, 1, (hb_rclient_arg[]){{"PING", 4}});
}

static void on_connect(uv_connect_t *req, int status) {
  hb_rclient *rc = req->data;
  if (status == UV_ECANCELED || rc->state != HB_RCLIENT_CONNECTING) return;
  if (status < 0) {
    fault(rc, "connect: %s", uv_strerror(status));
    return;
  }
  int r = uv_read_start((uv_stream_t *)&rc->tcp, on_alloc, on_read);
  if (r) {
    fault(rc, "read: %s", uv_strerror(r));
    return;
  }
  send_handshake(rc);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  hb_rclient *rc = req->data;
  rc->resolving = false;
  if (rc->stopping || rc->state != HB_RCLIENT_CONNECTING || rc->resolve_attempt != rc->attempt) goto out;
  if (status < 0 || !res) {
    fault(rc, "resolve %s: %s", rc->host, status < 0 ? uv_strerror(status) : "no address");
    goto out;
  }
  int r = uv_tcp_init(rc->loop, &rc->tcp);
  if (r) {
    fault(rc, "socket: %s", uv_strerror(r));
    goto out;
  }
  rc->tcp_open = true;
  rc->handles++;
  rc->tcp.data = rc;
  rc->reader = redisReaderCreate();
  uv_tcp_nodelay(&rc->tcp, 1); /* small commands must not wait for Nagle */
  rc->connect_req.data = rc;
  r = uv_tcp_connect(&rc->connect_req, &rc->tcp, res->ai_addr, on_connect);
  if (r) fault(rc, "connect: %s", uv_strerror(r));
out:
  if (res) uv_freeaddrinfo(res);
  maybe_free(rc);
}

static void begin_connect(hb_rclient *rc) {
  rc->state = HB_RCLIENT_CONNECTING;
  rc->attempt++;
  rc->deadline_ms = uv_now(rc->loop) + rc->cfg.connect_timeout_ms;
  char port[8];
  snprintf(port, sizeof port, "%d", rc->port);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  rc->gai.data = rc;
  rc->resolve_attempt = rc->attempt;
  int r = uv_getaddrinfo(rc->loop, &rc->gai, on_resolved, rc->host, port, &hints);
  if (r) {
    fault(rc, "resolve %s: %s", rc->host, uv_strerror(r));
    return;
  }
  rc->resolving = true;
}

/* --- the timer --------------------------------------------------------------- */

static void on_tick(uv_timer_t *t) {
  hb_rclient *rc = t->data;
  uint64_t now = uv_now(rc->loop);
  /* The loop did not run for a while (the process was stopped): replies
   * that arrived meanwhile are read before anything is judged late. */
  bool stalled = now - rc->last_tick_ms > HB_RCLIENT_STALL_MS;
  rc->last_tick_ms = now;
  if (rc->write_error) {
    int e = rc->write_error;
    rc->write_error = 0;
    fault(rc, "write: %s", uv_strerror(e));
    return;
  }
  switch (rc->state) {
  case HB_RCLIENT_CONNECTING:
  case HB_RCLIENT_HANDSHAKE:
    if (!stalled && now >= rc->deadline_ms) fault(rc, "no answer within %u ms", rc->cfg.connect_timeout_ms);
    break;
  case HB_RCLIENT_READY:
    if (stalled) break;
    if (rc->len && now - rc->fifo[rc->head].queued_ms > rc->cfg.reply_timeout_ms) {
      fault(rc, "no reply for %u ms", rc->cfg.reply_timeout_ms);
    } else if (!rc->len && rc->cfg.ping_interval_ms && now - rc->last_sent_ms >= rc->cfg.ping_interval_ms) {
      send_cmd(rc, on_ping_reply, rc, 1, (hb_rclient_arg[]){{"PING", 4}});
    }
    break;
  case HB_RCLIENT_BACKOFF:
    /* The old connection must be closed before its handle is reused. */
    if (now >= rc->deadline_ms && !rc->tcp_open && !rc->resolving) begin_connect(rc);
    break;
  case HB_RCLIENT_STOPPED:
    break;
  }
}

/* --- life cycle ---------------------------------------------------------------- */

hb_rclient *hb_rclient_new(uv_loop_t *loop, const hb_rclient_config *cfg) {
  hb_rclient *rc = hb_calloc(1, sizeof *rc);
  rc->loop = loop;
  rc->cfg = *cfg;
  rc->name = dup_or_null(cfg->name ? cfg->name : "redis");
  rc->host = dup_or_null(cfg->host);
  rc->client_name = dup_or_null(cfg->client_name);
  rc->cfg.client_name = rc->client_name;
  rc->user = dup_or_null(cfg->user);
  rc->password = cfg->password && cfg->password[0] ? dup_or_null(cfg->password) : NULL;
  rc->port = cfg->port;
  rc->cfg.name = rc->name;
  rc->cfg.host = rc->host;
  rc->cfg.user = rc->user;
  rc->cfg.password = NULL; /* only rc->password holds it */
  if (!rc->cfg.backoff_min_ms) rc->cfg.backoff_min_ms = HB_REDIS_BACKOFF_MIN_MS;
  if (!rc->cfg.backoff_max_ms) rc->cfg.backoff_max_ms = HB_REDIS_BACKOFF_MAX_MS;
  if (!rc->cfg.connect_timeout_ms) rc->cfg.connect_timeout_ms = HB_REDIS_CONNECT_TIMEOUT_MS;
  if (!rc->cfg.reply_timeout_ms) rc->cfg.reply_timeout_ms = HB_REDIS_REPLY_TIMEOUT_MS;
  rc->backoff_ms = rc->cfg.backoff_min_ms;
  rc->state = HB_RCLIENT_STOPPED;
  uv_timer_init(loop, &rc->tick);
  rc->tick.data = rc;
  rc->handles = 1;
  return rc;
}

void hb_rclient_start(hb_rclient *rc) {
  if (rc->state != HB_RCLIENT_STOPPED || rc->stopping) return;
  rc->last_tick_ms = uv_now(rc->loop);
  uv_timer_start(&rc->tick, on_tick, HB_RCLIENT_TICK_MS, HB_RCLIENT_TICK_MS);
  begin_connect(rc);
}

static void on_tick_closed(uv_handle_t *h) {
  hb_rclient *rc = h->data;
  rc->handles--;
  maybe_free(rc);
}

void hb_rclient_stop(hb_rclient *rc) {
  if (rc->stopping) return;
  rc->stopping = true;
  rc->state = HB_RCLIENT_STOPPED;
  close_tcp(rc);
  if (rc->resolving) uv_cancel((uv_req_t *)&rc->gai); /* its callback runs (cancelled) and frees nothing */
  uv_close((uv_handle_t *)&rc->tick, on_tick_closed);
  fail_all(rc, "stopped");
}
