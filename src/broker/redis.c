/*
 * redis.c - the Redis broker: publishes travel between nodes over Redis
 * PUBLISH/SUBSCRIBE, with interest-based routing (a node subscribes only to
 * the channels it has local subscribers on).
 *
 * Threads. Everything that talks to Redis runs on one thread of its own with
 * its own libuv loop, so a slow or dead Redis never blocks an I/O thread. The
 * I/O threads reach it through its inbox (inbox.h, the same as theirs):
 * publishes and interest changes are jobs. The link state is an atomic that
 * publish() reads without a lock.
 *
 * Why not hiredis's async API and its libuv adapter (as first sketched):
 * hiredis 0.14 keeps its own per-channel callback table for SUBSCRIBE and
 * asserts (aborts the process) when a channel is unsubscribed to zero while
 * another SUBSCRIBE is in flight, and it loses a channel's callback on a
 * quick subscribe/unsubscribe/subscribe sequence: exactly what interest
 * routing produces. It also has no connect timeout. So the two connections
 * here are plain uv_tcp_t streams; hiredis supplies the RESP reply parser
 * (redisReader), and commands are formatted straight into the write buffer.
 *
 * Link state (DOWN -> CONNECTING -> UP, any fault -> BACKOFF -> CONNECTING):
 * CONNECTING resolves the host, opens both connections, sends AUTH and
 * SELECT, SUBSCRIBEs every channel with local interest, then a PING; the
 * link is UP once both PINGs are answered (so every re-SUBSCRIBE before it
 * has been processed). While UP each connection is PINGed; a reply that is
 * late by HB_REDIS_REPLY_TIMEOUT_MS counts as a fault (a Redis that stopped
 * answering). A fault closes both connections, drops the publishes not yet
 * written and retries with exponential backoff.
 *
 * Exactly once: the publishing node delivers to its own subscribers at once
 * and sends one PUBLISH; every payload carries the node's random id, and a
 * node ignores the echo of its own publishes.
 *
 * Positions: each node records what it delivers in its own channel history
 * (history.h), so offsets and epochs are per node: a client that reconnects
 * to the same node recovers; one that reconnects to another node gets
 * recovered:false (the epochs differ), never a wrong replay.
 *
 * Payload (binary): "HB" 0x02 | node id (16 bytes) | name length (1 byte) |
 * event name | the event's JSON without its offset (hb_smsg_event_open),
 * which the receiving node's channel assigns. Version 1 (the whole JSON)
 * is still read: its closing brace is dropped. The channel comes from the
 * Redis channel name.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "hubbub/alloc.h"
#include "hubbub/clock.h"
#include "hubbub/hash.h"
#include "hubbub/hex.h"
#include "hubbub/inbox.h"
#include "hubbub/publish.h"
#include "hubbub/redis.h"
#include "hubbub/limits.h"
#include "hubbub/log.h"
#include "hubbub/strbuf.h"
#include "hubbub/uuid.h"


/* "hubbub:v1:s:" + four UUIDs and their separators, with room to spare. */
#define CHAN_NAME_BYTES 192
#define CHAN_PREFIX "hubbub:v1:"
#define PAYLOAD_MAGIC0 'H'
#define PAYLOAD_MAGIC1 'B'
#define PAYLOAD_VERSION 2
#define PAYLOAD_VERSION_WHOLE_JSON 1
#define PAYLOAD_HEADER_BYTES (3 + HB_UUID_BYTES + 1)

typedef enum {
  HB_REDIS_DOWN = 0,   /* not started, or stopped */
  HB_REDIS_CONNECTING, /* resolving, connecting, AUTH/SELECT/re-SUBSCRIBE */
  HB_REDIS_UP,         /* both connections answered their PING */
  HB_REDIS_BACKOFF,    /* a fault: waiting before the next attempt */
} hb_redis_state;

static const char *const state_names[] = {
    [HB_REDIS_DOWN] = "down",
    [HB_REDIS_CONNECTING] = "connecting",
    [HB_REDIS_UP] = "up",
    [HB_REDIS_BACKOFF] = "backoff",
    NULL, /* the end, for hubbub_broker_state */
};

typedef struct rbroker rbroker;

/* One TCP connection to Redis (publish or subscribe). */
typedef struct {
  rbroker *rb;
  const char *name;
  uv_tcp_t tcp;
  uv_connect_t connect_req;
  uv_write_t write_req;
  bool handle_open; /* tcp initialised; uv_close not yet completed */
  bool closing;     /* uv_close called */
  bool connected;   /* TCP up and no fault since */
  bool ready;       /* the handshake PING was answered */
  bool writing;     /* write_req in flight (owns `inflight`) */
  hb_strbuf out;      /* commands not yet handed to libuv */
  hb_strbuf inflight; /* the bytes of the write in flight */
  redisReader *reader;
  uint64_t ping_sent_ms; /* 0 when no PING is outstanding */
  uint64_t last_ping_ms;
} rlink;

/* A channel some I/O thread has local subscribers on, with the count of such threads. */
typedef struct {
  hb_chan_key key;
  int threads;
  UT_hash_handle hh;
} rchan;

typedef struct {
  hb_chan_key key;
  bool on;
} interest_op;

struct rbroker {
  hb_broker base; /* first: the server sees an hb_broker */

  /* Configuration (immutable after new()). */
  char *host, *user, *password;
  int port, db;
  hb_uuid node_id;

  /* Shared with the I/O threads. */
  atomic_int state;   /* hb_redis_state */
  atomic_long queued_bytes; /* frames of publishes accepted, not yet written or dropped */
  atomic_long dropped, refused;
  hb_inbox inbox; /* publishes and interest changes from the I/O threads */

  /* The Redis thread's own. */
  uv_thread_t thread;
  bool thread_started;
  uv_loop_t loop;
  bool loop_open;
  uv_timer_t tick;
  uv_getaddrinfo_t gai;
  bool resolving;
  uint64_t attempt;          /* bumped by every connect attempt */
  uint64_t resolve_attempt;  /* the attempt the running lookup belongs to */
  uint64_t connect_deadline_ms, retry_at_ms;
  uint64_t backoff_ms;
  bool stopping;
  char last_fault[160];
  rlink pub, sub;
  rchan *chans; /* uthash: channels with local interest */
  size_t nchans;
  hb_msg **fifo; /* publishes taken from the inbox, waiting for room in pub.out */
  size_t fifo_head, fifo_len, fifo_cap;
  char readbuf[HB_REDIS_READ_BUFFER_BYTES]; /* shared by both reads: consumed in the callback */
};

static void link_fault(rbroker *rb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static hb_redis_state get_state(rbroker *rb) { return (hb_redis_state)atomic_load(&rb->state); }

static void set_state(rbroker *rb, hb_redis_state s) { atomic_store(&rb->state, (int)s); }

/* ------------------------------------------------------------------------ */
/* Channel names                                                             */
/* ------------------------------------------------------------------------ */

/* hubbub:v1:o:<org>:<plugin>, hubbub:v1:e:<org>:<plugin>:<event>,
 * hubbub:v1:s:<org>:<plugin>:<event>:<session>. Returns the length. */
static size_t chan_name(const hb_chan_key *k, char out[CHAN_NAME_BYTES]) {
  static const char level_ch[HB_SCOPE__COUNT] = {'s', 'e', 'o'};
  char o[HB_UUID_STR_BYTES], p[HB_UUID_STR_BYTES], e[HB_UUID_STR_BYTES], s[HB_UUID_STR_BYTES];
  hb_uuid_format(&k->org, o);
  hb_uuid_format(&k->plugin, p);
  int n;
  if (k->level == HB_SCOPE_ORGANIZATION) {
    n = snprintf(out, CHAN_NAME_BYTES, CHAN_PREFIX "%c:%s:%s", level_ch[k->level], o, p);
  } else if (k->level == HB_SCOPE_EVENT) {
    hb_uuid_format(&k->event, e);
    n = snprintf(out, CHAN_NAME_BYTES, CHAN_PREFIX "%c:%s:%s:%s", level_ch[k->level], o, p, e);
  } else {
    hb_uuid_format(&k->event, e);
    hb_uuid_format(&k->session, s);
    n = snprintf(out, CHAN_NAME_BYTES, CHAN_PREFIX "%c:%s:%s:%s:%s", 's', o, p, e, s);
  }
  return (size_t)n;
}

/* The inverse of chan_name(); false for anything else. */
static bool chan_parse(const char *name, size_t len, hb_chan_key *k) {
  const size_t plen = sizeof CHAN_PREFIX - 1;
  if (len < plen + 2 || memcmp(name, CHAN_PREFIX, plen) != 0 || name[plen + 1] != ':') return false;
  hb_scope level;
  int nids;
  switch (name[plen]) {
    case 'o': level = HB_SCOPE_ORGANIZATION, nids = 2; break;
    case 'e': level = HB_SCOPE_EVENT, nids = 3; break;
    case 's': level = HB_SCOPE_SESSION, nids = 4; break;
    default: return false;
  }
  const size_t idlen = HB_UUID_STR_BYTES - 1;
  if (len != plen + 1 + (size_t)nids * (1 + idlen)) return false;
  hb_uuid ids[4];
  memset(ids, 0, sizeof ids);
  const char *p = name + plen + 1;
  for (int i = 0; i < nids; i++, p += 1 + idlen) {
    if (*p != ':' || !hb_uuid_parse(p + 1, idlen, &ids[i])) return false;
  }
  hb_chan_key_make(k, level, &ids[0], &ids[1], &ids[2], &ids[3]);
  return true;
}

/* ------------------------------------------------------------------------ */
/* RESP commands, formatted straight into a link's output buffer             */
/* ------------------------------------------------------------------------ */

static void resp_array(hb_strbuf *sb, size_t n) { hb_strbuf_addf(sb, "*%zu\r\n", n); }

static void resp_bulk(hb_strbuf *sb, const char *s, size_t n) {
  hb_strbuf_addf(sb, "$%zu\r\n", n);
  hb_strbuf_add(sb, s, n);
  hb_strbuf_add(sb, "\r\n", 2);
}

static void resp_str(hb_strbuf *sb, const char *s) { resp_bulk(sb, s, strlen(s)); }

static void cmd_chan(rlink *l, const char *verb, const hb_chan_key *k) {
  char name[CHAN_NAME_BYTES];
  size_t n = chan_name(k, name);
  resp_array(&l->out, 2);
  resp_str(&l->out, verb);
  resp_bulk(&l->out, name, n);
}

static void cmd_ping(rlink *l, uint64_t now) {
  resp_array(&l->out, 1);
  resp_str(&l->out, "PING");
  l->ping_sent_ms = now ? now : 1;
  l->last_ping_ms = now;
}

/* PUBLISH <channel> <header + name + json>, without building the payload apart. */
static void cmd_publish(rbroker *rb, rlink *l, const hb_msg *m) {
  char name[CHAN_NAME_BYTES];
  size_t nlen = chan_name(&m->chan, name);
  size_t json_len;
  const char *json = hb_msg_json(m, &json_len);
  uint8_t head[PAYLOAD_HEADER_BYTES];
  head[0] = PAYLOAD_MAGIC0;
  head[1] = PAYLOAD_MAGIC1;
  head[2] = PAYLOAD_VERSION;
  memcpy(head + 3, rb->node_id.b, HB_UUID_BYTES);
  head[3 + HB_UUID_BYTES] = m->event_name_len;
  resp_array(&l->out, 3);
  resp_str(&l->out, "PUBLISH");
  resp_bulk(&l->out, name, nlen);
  hb_strbuf_addf(&l->out, "$%zu\r\n", sizeof head + m->event_name_len + json_len);
  hb_strbuf_add(&l->out, head, sizeof head);
  hb_strbuf_add(&l->out, m->event_name, m->event_name_len);
  hb_strbuf_add(&l->out, json, json_len);
  hb_strbuf_add(&l->out, "\r\n", 2);
}

/* ------------------------------------------------------------------------ */
/* Connections                                                               */
/* ------------------------------------------------------------------------ */

static void drain_publishes(rbroker *rb);
static void link_flush(rlink *l);

static void on_write(uv_write_t *req, int status) {
  rlink *l = req->data;
  l->writing = false;
  /* Keep the buffer for the next write unless a burst made it large. */
  if (l->inflight.cap > HB_REDIS_MAX_OUTPUT_BYTES) hb_strbuf_free(&l->inflight);
  else hb_strbuf_reset(&l->inflight);
  if (status < 0) {
    if (status != UV_ECANCELED) link_fault(l->rb, "write to Redis (%s): %s", l->name, uv_strerror(status));
    return;
  }
  /* Commands queued while this write was in flight go now; on the publish
   * connection, so do publishes that waited for room. */
  if (l == &l->rb->pub && get_state(l->rb) == HB_REDIS_UP) drain_publishes(l->rb);
  link_flush(l);
}

/* Hand the queued commands to libuv: one write in flight per connection. */
static void link_flush(rlink *l) {
  if (!l->connected || l->writing || l->out.len == 0) return;
  hb_strbuf t = l->inflight; /* empty: swap buffers rather than copy */
  l->inflight = l->out;
  l->out = t;
  l->write_req.data = l;
  uv_buf_t buf = uv_buf_init(l->inflight.buf, (unsigned)l->inflight.len);
  int r = uv_write(&l->write_req, (uv_stream_t *)&l->tcp, &buf, 1, on_write);
  if (r) {
    link_fault(l->rb, "write to Redis (%s): %s", l->name, uv_strerror(r));
    return;
  }
  l->writing = true;
}

static void on_link_closed(uv_handle_t *h) {
  rlink *l = h->data;
  l->handle_open = l->closing = false;
  if (l->reader) redisReaderFree(l->reader);
  l->reader = NULL;
  hb_strbuf_free(&l->out);
  hb_strbuf_free(&l->inflight);
}

/* Close the connection; its memory goes in the close callback. */
static void link_close(rlink *l) {
  l->connected = l->ready = false;
  l->ping_sent_ms = 0;
  if (l->handle_open && !l->closing) {
    l->closing = true;
    uv_close((uv_handle_t *)&l->tcp, on_link_closed);
  }
}

static void begin_connect(rbroker *rb);

static void drop_fifo(rbroker *rb) {
  size_t n = rb->fifo_len;
  long bytes = 0;
  for (size_t i = 0; i < n; i++) {
    bytes += (long)rb->fifo[rb->fifo_head + i]->frame_len;
    hb_msg_unref(rb->fifo[rb->fifo_head + i]);
  }
  rb->fifo_head = rb->fifo_len = 0;
  if (n) {
    atomic_fetch_sub(&rb->queued_bytes, bytes);
    atomic_fetch_add(&rb->dropped, (long)n);
    hb_warn("redis: %zu publishes not sent to Redis (link lost); their local subscribers had them", n);
  }
}

/* A fault on either connection: close both, retry after the backoff. */
static void link_fault(rbroker *rb, const char *fmt, ...) {
  hb_redis_state was = get_state(rb);
  if (was != HB_REDIS_CONNECTING && was != HB_REDIS_UP) return; /* already handled */
  char why[sizeof rb->last_fault];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  set_state(rb, HB_REDIS_BACKOFF);
  link_close(&rb->pub);
  link_close(&rb->sub);
  drop_fifo(rb);
  uint64_t now = uv_now(&rb->loop);
  rb->retry_at_ms = now + rb->backoff_ms;
  /* While Redis stays away every attempt fails the same way: say it once. */
  if (was == HB_REDIS_UP || strcmp(why, rb->last_fault) != 0)
    hb_warn("redis: %s %s:%d: %s; clients stay connected, publishes are refused; retrying in %llu ms",
            was == HB_REDIS_UP ? "link lost to" : "cannot reach", rb->host, rb->port, why,
            (unsigned long long)rb->backoff_ms);
  else
    hb_debug("redis: %s; retrying in %llu ms", why, (unsigned long long)rb->backoff_ms);
  snprintf(rb->last_fault, sizeof rb->last_fault, "%s", why);
  rb->backoff_ms *= 2;
  if (rb->backoff_ms > HB_REDIS_BACKOFF_MAX_MS) rb->backoff_ms = HB_REDIS_BACKOFF_MAX_MS;
}

static void deliver_remote(rbroker *rb, const redisReply *chan, const redisReply *payload) {
  hb_chan_key k;
  if (chan->type != REDIS_REPLY_STRING || payload->type != REDIS_REPLY_STRING) return;
  if (!chan_parse(chan->str, chan->len, &k)) return;
  const uint8_t *p = (const uint8_t *)payload->str;
  size_t len = payload->len;
  if (len < PAYLOAD_HEADER_BYTES || p[0] != PAYLOAD_MAGIC0 || p[1] != PAYLOAD_MAGIC1 ||
      (p[2] != PAYLOAD_VERSION && p[2] != PAYLOAD_VERSION_WHOLE_JSON)) {
    hb_debug("redis: ignored a message in an unknown format on %.*s", (int)chan->len, chan->str);
    return;
  }
  /* Our own publish, echoed: its local subscribers had it already. */
  if (memcmp(p + 3, rb->node_id.b, HB_UUID_BYTES) == 0) return;
  size_t name_len = p[3 + HB_UUID_BYTES];
  if (name_len > HB_MAX_EVENT_NAME_BYTES || len < PAYLOAD_HEADER_BYTES + name_len) return;
  const char *name = (const char *)p + PAYLOAD_HEADER_BYTES;
  hb_pub pub = {.chan = k, .name = name, .name_len = name_len, .prefix = name + name_len};
  pub.prefix_len = len - PAYLOAD_HEADER_BYTES - name_len;
  if (p[2] == PAYLOAD_VERSION_WHOLE_JSON) {
    if (pub.prefix_len == 0 || pub.prefix[pub.prefix_len - 1] != '}') return;
    pub.prefix_len--; /* a node one version behind sent the whole JSON */
  }
  pub.sent_ms = hb_wall_ms(); /* when this node took it: its history's clock */
  hb_publish_record(NULL, &pub); /* refused once the I/O threads stop */
}

static bool is_str(const redisReply *r, const char *s) {
  return (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) && r->len == strlen(s) &&
         strncasecmp(r->str, s, r->len) == 0;
}

static void on_pong(rlink *l) {
  rbroker *rb = l->rb;
  l->ping_sent_ms = 0;
  if (l->ready) return;
  l->ready = true; /* the handshake's PING: everything before it was processed */
  if (get_state(rb) == HB_REDIS_CONNECTING && rb->pub.ready && rb->sub.ready) {
    set_state(rb, HB_REDIS_UP);
    rb->backoff_ms = HB_REDIS_BACKOFF_MIN_MS;
    rb->last_fault[0] = '\0';
    hb_info("redis: up (%s:%d db %d, %zu channels subscribed)", rb->host, rb->port, rb->db, rb->nchans);
    drain_publishes(rb);
  }
}

/* One reply from Redis. Replies come in command order on each connection. */
static void on_reply(rlink *l, redisReply *r) {
  rbroker *rb = l->rb;
  if (r->type == REDIS_REPLY_ERROR) {
    link_fault(rb, "Redis answered (%s): %.*s", l->name, (int)(r->len > 120 ? 120 : r->len), r->str);
    return;
  }
  if (is_str(r, "PONG")) {
    on_pong(l);
    return;
  }
  if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 && l == &rb->sub) {
    const redisReply *kind = r->element[0];
    if (is_str(kind, "message") && r->elements == 3) deliver_remote(rb, r->element[1], r->element[2]);
    else if (is_str(kind, "pong")) on_pong(l); /* PING in subscribed mode (RESP2) */
    /* subscribe/unsubscribe confirmations need nothing. */
  }
  /* +OK (AUTH, SELECT) and :n (PUBLISH receivers) need nothing either. */
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  rlink *l = h->data;
  *buf = uv_buf_init(l->rb->readbuf, sizeof l->rb->readbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  rlink *l = s->data;
  if (nread == 0) return;
  if (nread < 0) {
    link_fault(l->rb, "%s connection: %s", l->name,
               nread == UV_EOF ? "closed by Redis" : uv_strerror((int)nread));
    return;
  }
  if (redisReaderFeed(l->reader, buf->base, (size_t)nread) != REDIS_OK) {
    link_fault(l->rb, "%s connection: %s", l->name, l->reader->errstr);
    return;
  }
  /* A reply may fault the link: the reader lives until the close callback,
   * but stop reading from it once the connection is gone. */
  while (l->connected) {
    void *reply = NULL;
    if (redisReaderGetReply(l->reader, &reply) != REDIS_OK) {
      link_fault(l->rb, "%s connection: bad reply: %s", l->name, l->reader->errstr);
      break;
    }
    if (!reply) break;
    on_reply(l, reply);
    freeReplyObject(reply);
  }
}

/* AUTH and SELECT first; the subscribe connection re-SUBSCRIBEs every
 * channel with local interest; a PING last marks the end of the handshake. */
static void send_handshake(rlink *l) {
  rbroker *rb = l->rb;
  if (rb->password) {
    resp_array(&l->out, rb->user ? 3 : 2);
    resp_str(&l->out, "AUTH");
    if (rb->user) resp_str(&l->out, rb->user);
    resp_str(&l->out, rb->password);
  }
  if (rb->db) {
    char db[16];
    snprintf(db, sizeof db, "%d", rb->db);
    resp_array(&l->out, 2);
    resp_str(&l->out, "SELECT");
    resp_str(&l->out, db);
  }
  if (l == &rb->sub) {
    rchan *c, *tmp;
    HASH_ITER(hh, rb->chans, c, tmp) cmd_chan(l, "SUBSCRIBE", &c->key);
  }
  cmd_ping(l, uv_now(&rb->loop));
  link_flush(l);
}

static void on_connect(uv_connect_t *req, int status) {
  rlink *l = req->data;
  if (status == UV_ECANCELED) return; /* closed by a fault or stop */
  if (status < 0) {
    link_fault(l->rb, "connect %s:%d: %s", l->rb->host, l->rb->port, uv_strerror(status));
    return;
  }
  l->connected = true;
  int r = uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read);
  if (r) {
    link_fault(l->rb, "read from Redis: %s", uv_strerror(r));
    return;
  }
  send_handshake(l);
}

static int link_open(rlink *l, const struct sockaddr *addr) {
  rbroker *rb = l->rb;
  int r = uv_tcp_init(&rb->loop, &l->tcp);
  if (r) return r;
  l->handle_open = true;
  l->tcp.data = l;
  l->reader = redisReaderCreate();
  if (!l->reader) return UV_ENOMEM;
  uv_tcp_nodelay(&l->tcp, 1); /* small PUBLISH commands must not wait for Nagle */
  l->connect_req.data = l;
  return uv_tcp_connect(&l->connect_req, &l->tcp, addr, on_connect);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  rbroker *rb = req->data;
  rb->resolving = false;
  if (rb->stopping || get_state(rb) != HB_REDIS_CONNECTING || rb->resolve_attempt != rb->attempt) goto out;
  if (status < 0 || !res) {
    link_fault(rb, "resolve %s: %s", rb->host, status < 0 ? uv_strerror(status) : "no address");
    goto out;
  }
  int r = link_open(&rb->pub, res->ai_addr);
  if (r == 0) r = link_open(&rb->sub, res->ai_addr);
  if (r) link_fault(rb, "connect %s:%d: %s", rb->host, rb->port, uv_strerror(r));
out:
  if (res) uv_freeaddrinfo(res);
}

static void begin_connect(rbroker *rb) {
  set_state(rb, HB_REDIS_CONNECTING);
  hb_debug("redis: connecting to %s:%d", rb->host, rb->port);
  rb->attempt++;
  rb->connect_deadline_ms = uv_now(&rb->loop) + HB_REDIS_CONNECT_TIMEOUT_MS;
  char port[8];
  snprintf(port, sizeof port, "%d", rb->port);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  rb->gai.data = rb;
  rb->resolve_attempt = rb->attempt;
  int r = uv_getaddrinfo(&rb->loop, &rb->gai, on_resolved, rb->host, port, &hints);
  if (r) {
    link_fault(rb, "resolve %s: %s", rb->host, uv_strerror(r));
    return;
  }
  rb->resolving = true;
}

/* ------------------------------------------------------------------------ */
/* The Redis thread: queue, interest, timers                                 */
/* ------------------------------------------------------------------------ */

/* Move publishes into the publish connection while its output has room:
 * a Redis that reads slowly makes the FIFO, then the shared queue, grow
 * until publish() refuses (HB_REDIS_MAX_QUEUED_BYTES). */
static void drain_publishes(rbroker *rb) {
  rlink *l = &rb->pub;
  if (get_state(rb) != HB_REDIS_UP) {
    drop_fifo(rb);
    return;
  }
  long sent = 0;
  while (rb->fifo_len && l->out.len < HB_REDIS_MAX_OUTPUT_BYTES) {
    hb_msg *m = rb->fifo[rb->fifo_head++];
    rb->fifo_len--;
    cmd_publish(rb, l, m);
    sent += (long)m->frame_len;
    hb_msg_unref(m);
  }
  if (!rb->fifo_len) rb->fifo_head = 0;
  if (sent) atomic_fetch_sub(&rb->queued_bytes, sent);
  link_flush(l);
}

static void apply_interest(rbroker *rb, const interest_op *op) {
  rchan *c = NULL;
  HASH_FIND(hh, rb->chans, &op->key, sizeof op->key, c);
  /* Commands are only written on a connected link; a link that is not yet
   * connected SUBSCRIBEs the whole table in its handshake. */
  bool live = rb->sub.connected;
  if (op->on) {
    if (!c) {
      c = hb_calloc(1, sizeof *c);
      c->key = op->key;
      HASH_ADD(hh, rb->chans, key, sizeof c->key, c);
      rb->nchans++;
    }
    if (c->threads++ == 0 && live) cmd_chan(&rb->sub, "SUBSCRIBE", &c->key);
  } else if (c && --c->threads == 0) {
    if (live) cmd_chan(&rb->sub, "UNSUBSCRIBE", &c->key);
    HASH_DEL(rb->chans, c);
    hb_free(c);
    rb->nchans--;
  }
}

static void shutdown_thread(rbroker *rb) {
  rb->stopping = true;
  set_state(rb, HB_REDIS_DOWN);
  link_close(&rb->pub);
  link_close(&rb->sub);
  if (rb->resolving) uv_cancel((uv_req_t *)&rb->gai); /* else its callback frees it */
  uv_close((uv_handle_t *)&rb->tick, NULL);
  hb_inbox_close(&rb->inbox, NULL);
}

/* A publish from an I/O thread: behind those already waiting, then as much
 * as the publish connection takes (drain_publishes). ctx NULL: dropped. */
static void publish_job(void *ctx, void *arg) {
  rbroker *rb = ctx;
  hb_msg *m = arg;
  if (!rb) {
    hb_msg_unref(m);
    return;
  }
  if (rb->fifo_head && rb->fifo_head + rb->fifo_len == rb->fifo_cap) {
    memmove(rb->fifo, rb->fifo + rb->fifo_head, rb->fifo_len * sizeof *rb->fifo);
    rb->fifo_head = 0;
  }
  if (rb->fifo_head + rb->fifo_len == rb->fifo_cap) {
    rb->fifo_cap = rb->fifo_cap ? rb->fifo_cap * 2 : 64;
    rb->fifo = hb_realloc(rb->fifo, rb->fifo_cap * sizeof *rb->fifo);
  }
  rb->fifo[rb->fifo_head + rb->fifo_len++] = m;
  drain_publishes(rb);
}

static void interest_job(void *ctx, void *arg) {
  rbroker *rb = ctx;
  interest_op *op = arg;
  if (rb) {
    apply_interest(rb, op);
    link_flush(&rb->sub);
  }
  hb_free(op);
}

static void stop_job(void *ctx, void *arg) {
  rbroker *rb = ctx;
  if (rb && !rb->stopping) shutdown_thread(rb);
}

static void ping_check(rbroker *rb, rlink *l, uint64_t now) {
  if (l->ping_sent_ms) {
    if (now - l->ping_sent_ms > HB_REDIS_REPLY_TIMEOUT_MS)
      link_fault(rb, "%s connection: no reply for %d ms", l->name, HB_REDIS_REPLY_TIMEOUT_MS);
  } else if (now - l->last_ping_ms >= HB_REDIS_PING_INTERVAL_MS) {
    cmd_ping(l, now);
    link_flush(l);
  }
}

static void on_tick(uv_timer_t *t) {
  rbroker *rb = t->data;
  uint64_t now = uv_now(&rb->loop);
  switch (get_state(rb)) {
    case HB_REDIS_CONNECTING:
      if (now >= rb->connect_deadline_ms)
        link_fault(rb, "no answer within %d ms", HB_REDIS_CONNECT_TIMEOUT_MS);
      break;
    case HB_REDIS_BACKOFF:
      /* The old connections must be fully closed before their structs are reused. */
      if (now >= rb->retry_at_ms && !rb->pub.handle_open && !rb->sub.handle_open && !rb->resolving)
        begin_connect(rb);
      break;
    case HB_REDIS_UP:
      ping_check(rb, &rb->pub, now);
      if (get_state(rb) == HB_REDIS_UP) ping_check(rb, &rb->sub, now);
      break;
    case HB_REDIS_DOWN:
      break;
  }
}

static void thread_main(void *arg) {
  rbroker *rb = arg;
  begin_connect(rb);
  uv_run(&rb->loop, UV_RUN_DEFAULT);
}

/* ------------------------------------------------------------------------ */
/* The broker ops (I/O threads and main thread)                              */
/* ------------------------------------------------------------------------ */

static int redis_start(hb_broker *b) {
  rbroker *rb = (rbroker *)b;
  if (uv_loop_init(&rb->loop) != 0) return -1;
  rb->loop_open = true;
  hb_inbox_init(&rb->inbox, &rb->loop, rb);
  uv_timer_init(&rb->loop, &rb->tick);
  rb->tick.data = rb;
  uv_timer_start(&rb->tick, on_tick, HB_REDIS_TICK_MS, HB_REDIS_TICK_MS);
  if (uv_thread_create(&rb->thread, thread_main, rb) != 0) return -1;
  rb->thread_started = true;
  /* Give Redis a moment so a node that starts with the cluster is ready
   * when it says it is listening; if Redis is away it starts degraded. */
  for (int waited = 0; waited < HB_REDIS_START_WAIT_MS; waited += 10) {
    if (get_state(rb) == HB_REDIS_UP) return 0;
    uv_sleep(10);
  }
  hb_warn("redis: not up after %d ms; serving anyway (publishes are refused until it is)",
          HB_REDIS_START_WAIT_MS);
  return 0;
}

static hb_err redis_publish(hb_broker *b, hb_io *from, const hb_pub *p, hb_pos *pos) {
  rbroker *rb = (rbroker *)b;
  if (get_state(rb) != HB_REDIS_UP) return HB_E_BROKER_UNAVAILABLE;
  /* The bytes other nodes need; the JSON is the prefix without the offset. */
  hb_msg *msg = hb_msg_new(&p->chan, p->name, p->name_len, p->prefix, p->prefix_len);
  long len = (long)msg->frame_len;
  if (atomic_fetch_add(&rb->queued_bytes, len) + len > HB_REDIS_MAX_QUEUED_BYTES) {
    /* Redis does not keep up: refuse rather than buffer without bound. */
    atomic_fetch_sub(&rb->queued_bytes, len);
    if (atomic_fetch_add(&rb->refused, 1) % HB_REDIS_LOG_EVERY == 0)
      hb_warn("redis: over %d bytes waiting for Redis: refusing publishes", HB_REDIS_MAX_QUEUED_BYTES);
    hb_msg_unref(msg);
    return HB_E_BROKER_UNAVAILABLE;
  }
  hb_inbox_post(&rb->inbox, publish_job, msg); /* the job owns the reference */
  /* Local subscribers now; other nodes through Redis (our echo is ignored). */
  *pos = hb_publish_record(from, p);
  return HB_OK;
}

static void redis_interest(hb_broker *b, const hb_chan_key *chan, bool on) {
  rbroker *rb = (rbroker *)b;
  interest_op *op = hb_malloc(sizeof *op);
  op->key = *chan;
  op->on = on;
  hb_inbox_post(&rb->inbox, interest_job, op);
}

static const char *redis_state(hb_broker *b) { return state_names[get_state((rbroker *)b)]; }

static bool redis_healthy(hb_broker *b) { return get_state((rbroker *)b) == HB_REDIS_UP; }

static void redis_stop(hb_broker *b) {
  rbroker *rb = (rbroker *)b;
  if (rb->thread_started) {
    hb_inbox_post(&rb->inbox, stop_job, NULL);
    uv_thread_join(&rb->thread);
  } else if (rb->loop_open) {
    /* start() failed before the thread ran: close the handles here. */
    uv_close((uv_handle_t *)&rb->tick, NULL);
    hb_inbox_close(&rb->inbox, NULL);
    uv_run(&rb->loop, UV_RUN_DEFAULT);
  }
  if (rb->loop_open) hb_inbox_destroy(&rb->inbox);
  if (rb->loop_open && uv_loop_close(&rb->loop) != 0) hb_warn("redis: loop closed with live handles");
  long dropped = atomic_load(&rb->dropped), refused = atomic_load(&rb->refused);
  if (dropped || refused)
    hb_info("redis: %ld publishes dropped on link loss, %ld refused (queue full)", dropped, refused);
  for (size_t i = 0; i < rb->fifo_len; i++) hb_msg_unref(rb->fifo[rb->fifo_head + i]);
  hb_free(rb->fifo);
  rchan *c, *tmp;
  HASH_ITER(hh, rb->chans, c, tmp) {
    HASH_DEL(rb->chans, c);
    hb_free(c);
  }
  /* Normally freed in the close callbacks; here if the thread never ran. */
  if (rb->pub.reader) redisReaderFree(rb->pub.reader);
  if (rb->sub.reader) redisReaderFree(rb->sub.reader);
  hb_strbuf_free(&rb->pub.out);
  hb_strbuf_free(&rb->sub.out);
  hb_strbuf_free(&rb->pub.inflight);
  hb_strbuf_free(&rb->sub.inflight);
  hb_free(rb->host);
  hb_free(rb->user);
  if (rb->password) {
    memset(rb->password, 0, strlen(rb->password)); /* a secret: not left in freed memory */
    hb_free(rb->password);
  }
  hb_free(rb);
}

static const hb_broker_ops redis_ops = {
    .name = "redis",
    .start = redis_start,
    .publish = redis_publish,
    .interest = redis_interest,
    .state = redis_state,
    .states = state_names,
    .healthy = redis_healthy,
    .stop = redis_stop,
};

/* ------------------------------------------------------------------------ */
/* URL: redis://[[user]:password@]host[:port][/db]                           */
/* ------------------------------------------------------------------------ */

/* A percent-decoded copy of s[0..n) (passwords may hold '@', ':' or '/'). */
static char *pct_decode(const char *s, size_t n) {
  char *out = hb_malloc(n + 1);
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n && hb_hexval(s[i + 1]) >= 0 && hb_hexval(s[i + 2]) >= 0) {
      out[j++] = (char)(hb_hexval(s[i + 1]) * 16 + hb_hexval(s[i + 2]));
      i += 2;
    } else {
      out[j++] = s[i];
    }
  }
  out[j] = '\0';
  return out;
}

static bool parse_int(const char *s, size_t n, long min, long max, int *out) {
  if (n == 0 || n > 9) return false;
  long v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  if (v < min || v > max) return false;
  *out = (int)v;
  return true;
}

static int parse_url(rbroker *rb, const char *url, char *errbuf, size_t errlen) {
  static const char scheme[] = "redis://";
  if (strncasecmp(url, "rediss://", 9) == 0) {
    snprintf(errbuf, errlen, "rediss:// (TLS) is not supported: use redis:// through a TLS tunnel");
    return -1;
  }
  if (strncasecmp(url, scheme, sizeof scheme - 1) != 0) {
    snprintf(errbuf, errlen, "the Redis URL must look like redis://[:password@]host[:port][/db]");
    return -1;
  }
  const char *auth = url + sizeof scheme - 1;
  const char *slash = strchr(auth, '/');
  const char *end = slash ? slash : auth + strlen(auth);
  const char *at = NULL;
  for (const char *p = auth; p < end; p++)
    if (*p == '@') at = p; /* the last '@': the password may not be encoded */
  const char *host = auth;
  if (at) {
    const char *colon = memchr(auth, ':', (size_t)(at - auth));
    if (colon) {
      if (colon > auth) rb->user = pct_decode(auth, (size_t)(colon - auth));
      if (at > colon + 1) rb->password = pct_decode(colon + 1, (size_t)(at - colon - 1));
    } else if (at > auth) {
      rb->user = pct_decode(auth, (size_t)(at - auth));
    }
    host = at + 1;
  }
  const char *host_end, *port_start = NULL;
  if (*host == '[') { /* [IPv6]:port */
    const char *bracket = memchr(host, ']', (size_t)(end - host));
    if (!bracket) goto bad;
    host_end = bracket;
    host++;
    if (bracket + 1 < end) {
      if (bracket[1] != ':') goto bad;
      port_start = bracket + 2;
    }
  } else {
    const char *colon = memchr(host, ':', (size_t)(end - host));
    host_end = colon ? colon : end;
    if (colon) port_start = colon + 1;
  }
  if (host_end == host) goto bad;
  rb->host = hb_strndup(host, (size_t)(host_end - host));
  rb->port = HB_REDIS_DEFAULT_PORT;
  if (port_start && !parse_int(port_start, (size_t)(end - port_start), 1, 65535, &rb->port)) {
    snprintf(errbuf, errlen, "bad port in the Redis URL");
    return -1;
  }
  rb->db = 0;
  if (slash && slash[1] && !parse_int(slash + 1, strlen(slash + 1), 0, HB_REDIS_MAX_DB, &rb->db)) {
    snprintf(errbuf, errlen, "bad database number in the Redis URL (redis://host:port/N)");
    return -1;
  }
  return 0;
bad:
  snprintf(errbuf, errlen, "bad host in the Redis URL (redis://[:password@]host[:port][/db])");
  return -1;
}

hb_broker *hb_broker_redis_new(const char *url, const char *password, char *errbuf, size_t errlen) {
  rbroker *rb = hb_calloc(1, sizeof *rb);
  rb->base.ops = &redis_ops;
  atomic_init(&rb->state, HB_REDIS_DOWN);
  atomic_init(&rb->queued_bytes, 0);
  atomic_init(&rb->dropped, 0);
  atomic_init(&rb->refused, 0);
  rb->backoff_ms = HB_REDIS_BACKOFF_MIN_MS;
  rb->pub.rb = rb->sub.rb = rb;
  rb->pub.name = "publish";
  rb->sub.name = "subscribe";
  hb_uuid_v4(&rb->node_id);
  if (parse_url(rb, url, errbuf, errlen) != 0) {
    redis_stop(&rb->base);
    return NULL;
  }
  /* The URL's password wins; the config key serves URLs without one. */
  if (!rb->password && password && password[0]) rb->password = hb_strndup(password, strlen(password));
  return &rb->base;
}
