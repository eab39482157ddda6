/*
 * redis.c - the Redis broker: every node publishes through Redis and
 * delivers from it, so that a channel's offsets and epoch are the same on
 * every node (docs/scaling.md).
 *
 * Per channel, Redis holds (keys with the channel name as hash tag, so that
 * a cluster keeps them on the channel's shard):
 *   {<channel>}:m  a hash: e (the epoch, 16 hex digits), o (the last offset),
 *                  r (the run id of the Redis that made the epoch)
 *   {<channel>}:x  a stream of the last history_size messages: id <offset>-0,
 *                  fields t (Redis's clock, ms) and b (the body below)
 * and one key per Idempotency-Key: hubbub:v1:i:<plugin>:<key>. Both channel
 * keys expire history_ttl_s + HB_REDIS_CHANNEL_KEEP_S after the channel's
 * last publish or join.
 *
 * A publish is one Lua script (PUBLISH_LUA, run with EVALSHA): it checks
 * the idempotency key, makes a new epoch when the channel's hash is missing
 * (its history was lost) or was made by another Redis process (a restart:
 * what the old one accepted last may be gone), takes the next offset, adds
 * the message to the stream and PUBLISHes it with its epoch and offset, and
 * answers (epoch, offset). The HTTP answer and the WebSocket ack wait for
 * that reply: a 202 means Redis has the message. A script that runs after
 * the node stopped waiting for it (it sat in a frozen Redis's socket) does
 * nothing (a deadline in Redis's clock), so a 503 also means "not published".
 *
 * Every node delivers a channel's messages from its subscription, in offset
 * order, the publishing node included. A node keeps, per channel with local
 * subscribers, the last offset it delivered; an offset that jumps is a gap:
 * the node reads what it missed from the stream (READ_LUA) and delivers it
 * first, or, when the stream no longer has it, tells the channel's
 * subscribers ({"type":"gap",...}). After its subscribe connection comes
 * back, it catches up every channel from the stream the same way. A join
 * (a WebSocket connection, since= or not) reads its positions and replay
 * from Redis too.
 *
 * Threads. Everything that talks to Redis runs on one thread of its own with
 * its own libuv loop, so a slow or dead Redis never blocks an I/O thread.
 * I/O threads reach it through its inbox (publishes, interest, joins); it
 * answers them through theirs (hb_publish_post) and delivers with
 * hb_publish_deliver_all. Two connections (rclient.h): commands (scripts,
 * reads) and subscriptions.
 *
 * Subscription payload (binary): "HB" 0x03 | epoch (16 hex digits) |
 * offset (decimal) | ':' | body; body = event name length (1 byte) | event
 * name | the event's JSON without its offset (hb_smsg_event_open), which the
 * receiving node completes with the offset. The channel comes from the Redis
 * channel name.
 */
#include <hiredis/hiredis.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <uv.h>

#include "hubbub/alloc.h"
#include "hubbub/clock.h"
#include "hubbub/hash.h"
#include "hubbub/hex.h"
#include "hubbub/inbox.h"
#include "hubbub/limits.h"
#include "hubbub/list.h"
#include "hubbub/log.h"
#include "hubbub/metrics.h"
#include "hubbub/publish.h"
#include "hubbub/rclient.h"
#include "hubbub/redis.h"
#include "hubbub/resume.h"
#include "hubbub/rpresence.h"
#include "hubbub/smsg.h"
#include "hubbub/strbuf.h"
#include "hubbub/uuid.h"

/* "hubbub:v1:s:" + four UUIDs and their separators, with room to spare. */
#define CHAN_NAME_BYTES 192
#define CHAN_PREFIX "hubbub:v1:"
#define IDEM_PREFIX "hubbub:v1:i:"
#define PAYLOAD_MAGIC "HB\x03"
#define PAYLOAD_MAGIC_BYTES 3
#define EPOCH_HEX_BYTES HB_EPOCH_HEX_DIGITS
#define RUN_ID_BYTES 40

/* ------------------------------------------------------------------------ */
/* The scripts                                                               */
/* ------------------------------------------------------------------------ */

/*
 * KEYS: the channel's hash, its stream[, the idempotency key].
 * ARGV: 1 channel name, 2 body, 3 a new epoch (used if the channel needs
 * one), 4 history_size, 5 key lifetime (ms), 6 deadline (Redis's clock, ms;
 * 0: none), 7 Redis's run id as the node knows it, 8 idempotency TTL (ms),
 * 9 message id.
 * Reply: {"ok", epoch, offset} | {"dup", "<epoch> <offset> <message id>"}
 * (the key's first publish) | {"late"} (past the deadline: nothing done).
 */
static const char PUBLISH_LUA[] =
    "local meta, stream = KEYS[1], KEYS[2]\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local deadline = tonumber(ARGV[6])\n"
    "if deadline > 0 and now > deadline then return {'late'} end\n"
    "if KEYS[3] then\n"
    "  local prev = redis.call('GET', KEYS[3])\n"
    "  if prev then return {'dup', prev} end\n"
    "end\n"
    "local m = redis.call('HMGET', meta, 'e', 'o', 'r')\n"
    "local e = m[1]\n"
    "if (not e) or m[3] ~= ARGV[7] then\n"
    "  e = ARGV[3]\n"
    "  redis.call('DEL', stream)\n"
    "  redis.call('HSET', meta, 'e', e, 'r', ARGV[7])\n"
    "end\n"
    "local off = redis.call('HINCRBY', meta, 'o', 1)\n"
    "local id = string.format('%d', off)\n"
    "local size = tonumber(ARGV[4])\n"
    "if size > 0 then\n"
    "  redis.call('XADD', stream, 'MAXLEN', '~', size, id .. '-0', 't', now, 'b', ARGV[2])\n"
    "  redis.call('PEXPIRE', stream, ARGV[5])\n"
    "end\n"
    "redis.call('PEXPIRE', meta, ARGV[5])\n"
    "redis.call('PUBLISH', ARGV[1], 'HB\\3' .. e .. id .. ':' .. ARGV[2])\n"
    "if KEYS[3] then redis.call('SET', KEYS[3], e .. ' ' .. id .. ' ' .. ARGV[9], 'PX', ARGV[8]) end\n"
    "return {'ok', e, off}\n";

/*
 * KEYS: the channel's hash, its stream.
 * ARGV: 1 after (offset), 2 at most this many messages (0: the position
 * only), 3 a new epoch (used if the channel needs one), 4 key lifetime (ms),
 * 5 Redis's run id as the node knows it, 6 the epoch the caller knows (''
 * any: no messages of another epoch), 7 history_ttl (ms).
 * Reply: {epoch, last offset, oldest kept offset (0: none), then per
 * message after `after`: offset, body}.
 */
static const char READ_LUA[] =
    "local meta, stream = KEYS[1], KEYS[2]\n"
    "local m = redis.call('HMGET', meta, 'e', 'o', 'r')\n"
    "local e, last = m[1], tonumber(m[2] or '0')\n"
    "if (not e) or m[3] ~= ARGV[5] then\n"
    "  e = ARGV[3]\n"
    "  redis.call('DEL', stream)\n"
    "  redis.call('HSET', meta, 'e', e, 'o', last, 'r', ARGV[5])\n"
    "end\n"
    "redis.call('PEXPIRE', meta, ARGV[4])\n"
    "redis.call('PEXPIRE', stream, ARGV[4])\n"
    "local t = redis.call('TIME')\n"
    "local min_t = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[7])\n"
    "local function off(id) return tonumber(string.match(id, '^(%d+)')) end\n"
    "local function young(x) return tonumber(x[2][2]) >= min_t end\n"
    "local first = 0\n"
    "local h = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]\n"
    "if h then\n"
    "  if young(h) then first = off(h[1])\n"
    "  else\n"
    "    local tl = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1]\n"
    "    if young(tl) then\n"
    "      local lo, hi = off(h[1]), off(tl[1])\n"
    "      while hi - lo > 1 do\n"
    "        local mid = math.floor((lo + hi) / 2)\n"
    "        local x = redis.call('XRANGE', stream, string.format('%d', mid) .. '-0', '+', 'COUNT', 1)[1]\n"
    "        local xo = off(x[1])\n"
    "        if xo >= hi then break end\n"
    "        if young(x) then hi = xo else lo = xo end\n"
    "      end\n"
    "      first = hi\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local out = {e, last, first}\n"
    "local after, max = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "if (ARGV[6] ~= '' and ARGV[6] ~= e) or max == 0 or first == 0 or after >= last then return out end\n"
    "if after + 1 < first then after = first - 1 end\n"
    "local r = redis.call('XRANGE', stream, string.format('%d', after + 1) .. '-0', '+', 'COUNT', max)\n"
    "for _, x in ipairs(r) do\n"
    "  out[#out + 1] = off(x[1])\n"
    "  out[#out + 1] = x[2][4]\n"
    "end\n"
    "return out\n";

typedef enum { SCRIPT_PUBLISH, SCRIPT_READ, SCRIPT__COUNT } script_id;
static const char *const script_text[SCRIPT__COUNT] = {PUBLISH_LUA, READ_LUA};

/* ------------------------------------------------------------------------ */
/* State                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct rbroker rbroker;

/* Something to run on an I/O thread (an answer), or, once the I/O threads
 * are gone, at the broker's stop (gone = true). */
typedef struct answer {
  void (*run)(struct answer *a, bool gone);
  struct answer *next; /* rbroker.orphans */
} answer;

/* A channel this node has local subscribers on. */
typedef enum {
  CH_SUBSCRIBING, /* SUBSCRIBE sent, or to be sent when the link is up; not confirmed */
  CH_READING,     /* confirmed; reading the stream (baseline, gap, catch-up); live messages wait in `held` */
  CH_LIVE,        /* delivering live messages in offset order */
} chan_state;

typedef struct {
  hb_chan_key key;
  int threads;       /* I/O threads with local subscribers */
  uint64_t gen;      /* this entry's identity: a SUBSCRIBE's reply names it */
  chan_state state;
  bool known;        /* epoch and last were read (the baseline) */
  bool read_wanted;  /* a read is due when the command connection is ready */
  bool read_inflight;
  const char *notice; /* the reason of the gap notice the current read owes ("epoch_changed"), or NULL */
  uint64_t read_seq; /* the current read; a reply to another is stale */
  uint64_t epoch, last;  /* the last message delivered */
  uint64_t epoch_seq;    /* rbroker.reply_seq when a read last confirmed the epoch */
  /* A live message of another epoch makes the node read the stream; if the
   * stream says otherwise, that epoch is foreign (a node on another Redis
   * database publishes on the same Pub/Sub channel) and ignored. */
  uint64_t suspect_epoch, foreign_epoch;
  hb_msgvec held;        /* live messages that arrived while reading, in order */
  hb_list want_link;     /* in rbroker.read_queue while read_wanted */
  UT_hash_handle hh;
} rchan;

/* A join, a subscribe's wait for live channels, or a history page: the
 * Redis thread's side of a request that answers later. */
typedef enum { W_JOIN, W_LIVE, W_PAGE } wait_kind;
typedef enum { J_WAIT_LIVE, J_READ, J_WAIT_DELIVERED } wait_phase;

typedef struct waiter {
  answer a; /* first */
  rbroker *rb;
  wait_kind kind;
  wait_phase phase;
  uint64_t id;
  hb_io *from;
  void *ctx;
  hb_join_done_fn join_done;
  hb_live_done_fn live_done;
  hb_page_done_fn page_done;
  uint64_t deadline_ms;
  int nchans;
  hb_chan_key chans[HB_SCOPE__COUNT];
  bool live;          /* wait for the channels to be live (joins with names, W_LIVE) */
  int sc;             /* the channel being read */
  bool read_inflight, read_wanted, first_page;
  uint64_t after;     /* the next read starts after this offset */
  uint64_t read_seqs[HB_SCOPE__COUNT]; /* rbroker.reply_seq of each channel's position read */
  size_t used;        /* join: messages replayed so far (the budget is shared) */
  hb_join_req req;
  hb_join_result jr;
  hb_page_req preq;
  hb_page_result pr;
  hb_err err;
  UT_hash_handle hh;
} waiter;

typedef struct {
  hb_chan_key key;
  bool on;
} interest_op;

/* A publish on its way: from an I/O thread, through Redis, back. */
typedef struct {
  answer a; /* first */
  rbroker *rb;
  hb_io *from;
  hb_broker_done_fn done;
  void *ctx;
  hb_publish_result r;
  hb_chan_key chan;
  long bytes; /* counted in queued_bytes */
  bool retried; /* sent again with EVAL after NOSCRIPT */
  uint8_t idem_len;
  char idem[HB_MAX_IDEMPOTENCY_KEY_BYTES];
  size_t body_len;
  char body[]; /* event name length, event name, JSON prefix */
} pubjob;

struct rbroker {
  hb_broker base; /* first: the server sees an hb_broker */

  /* Configuration (immutable after new()). */
  char *host, *user, *password;
  int port, db;
  hb_redis_opts opts;
  int64_t keep_ms; /* channel keys live this long after the last publish or join */

  /* Shared with the I/O threads. */
  atomic_int cmd_state, sub_state; /* hb_rclient_state */
  atomic_long queued_bytes;        /* bodies of publishes sent to the thread, not yet answered */
  atomic_long refused;
  hb_inbox inbox;

  /* The Redis thread's own. */
  uv_thread_t thread;
  bool thread_started;
  uv_loop_t loop;
  bool loop_open;
  uv_timer_t tick;
  bool stopping;
  hb_rclient *cmd, *sub;
  hb_rpresence *presence; /* presence between nodes: links of its own on this loop */
  bool was_up;
  char run_id[RUN_ID_BYTES + 1];
  char sha[SCRIPT__COUNT][41];
  int64_t clock_offset_ms; /* Redis's clock minus the loop's, from TIME */
  bool clock_known;
  uint64_t clock_synced_ms;
  uint64_t rng; /* new epochs (splitmix64, seeded from the CSPRNG) */
  uint64_t reply_seq; /* read replies on the command connection, in order */
  uint64_t next_gen, next_waiter;
  rchan *chans; /* uthash */
  size_t nchans;
  /* Channel reads wait here when HB_REDIS_CHAN_READS_IN_FLIGHT are out (a
   * reconnect catches up every channel at once). */
  hb_list read_queue;
  int reads_inflight;
  waiter *waiters; /* uthash by id */
  answer *orphans; /* answers that found their I/O thread gone */
  uint64_t log_window_ms;
  int log_budget, log_suppressed;
};

static hb_rclient_state cmd_state(rbroker *rb) { return (hb_rclient_state)atomic_load(&rb->cmd_state); }
static hb_rclient_state sub_state(rbroker *rb) { return (hb_rclient_state)atomic_load(&rb->sub_state); }
static bool cmd_ready(rbroker *rb) { return rb->cmd && hb_rclient_get_state(rb->cmd) == HB_RCLIENT_READY; }
static bool sub_ready(rbroker *rb) { return rb->sub && hb_rclient_get_state(rb->sub) == HB_RCLIENT_READY; }

/* Gap lines are logged one per gap, at most HB_REDIS_GAP_LOG_PER_S a second
 * (a Redis restart gaps every channel at once); the rest are counted. */
static bool log_ok(rbroker *rb) {
  uint64_t now = uv_now(&rb->loop);
  if (now - rb->log_window_ms >= 1000) {
    if (rb->log_suppressed)
      hb_warn("redis: %d more gap lines in the last second not shown (see hubbub_redis_gap_* metrics)",
              rb->log_suppressed);
    rb->log_window_ms = now;
    rb->log_budget = HB_REDIS_GAP_LOG_PER_S;
    rb->log_suppressed = 0;
  }
  if (rb->log_budget > 0) {
    rb->log_budget--;
    return true;
  }
  rb->log_suppressed++;
  return false;
}

/* ------------------------------------------------------------------------ */
/* Names                                                                     */
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

/* The channel's keys: "{<channel>}:m" and "{<channel>}:x" (the name is the
 * hash tag: a cluster keeps both on the channel's own shard). */
static size_t chan_key(const char *name, size_t nlen, char suffix, char out[CHAN_NAME_BYTES + 8]) {
  out[0] = '{';
  memcpy(out + 1, name, nlen);
  out[nlen + 1] = '}';
  out[nlen + 2] = ':';
  out[nlen + 3] = suffix;
  return nlen + 4;
}

static void epoch_hex(uint64_t e, char out[EPOCH_HEX_BYTES + 1]) {
  hb_resume_epoch_hex(e, out);
  out[EPOCH_HEX_BYTES] = '\0';
}

/* A fresh epoch: random, never 0. */
static uint64_t new_epoch(rbroker *rb) {
  uint64_t z;
  do {
    z = (rb->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
  } while (z == 0);
  return z;
}

/* ------------------------------------------------------------------------ */
/* Answers to the I/O threads                                                */
/* ------------------------------------------------------------------------ */

static void answer_job(void *ctx, void *arg) {
  answer *a = arg;
  a->run(a, ctx == NULL);
}

/* Run `a` on I/O thread `io`; once the I/O threads are being stopped, at the
 * broker's stop instead (on the main thread, after they were joined). */
static void answer_post(rbroker *rb, hb_io *io, answer *a) {
  if (hb_publish_post(io, answer_job, a)) return;
  a->next = rb->orphans;
  rb->orphans = a;
}

/* ------------------------------------------------------------------------ */
/* Messages                                                                  */
/* ------------------------------------------------------------------------ */

/* The event of `body` at (epoch, offset): the frame every subscriber gets. */
static hb_msg *msg_from_body(const hb_chan_key *chan, uint64_t epoch, uint64_t offset, const char *body,
                             size_t len) {
  if (len < 1) return NULL;
  size_t name_len = (uint8_t)body[0];
  if (name_len == 0 || name_len > HB_MAX_EVENT_NAME_BYTES || len < 1 + name_len + 2) return NULL;
  const char *name = body + 1, *prefix = body + 1 + name_len;
  size_t prefix_len = len - 1 - name_len;
  if (prefix[0] != '{') return NULL;
  hb_strbuf tb = HB_STRBUF_INIT;
  hb_smsg_event_close(&tb, offset);
  hb_msg *m = hb_msg_new_parts(chan, name, name_len, prefix, prefix_len, tb.buf, tb.len);
  hb_strbuf_free(&tb);
  m->epoch = epoch;
  m->offset = offset;
  return m;
}

/* Tell the channel's subscribers on this node that messages up to `offset`
 * of `epoch` will not come. */
static void gap_notice(rbroker *rb, rchan *c, uint64_t epoch, uint64_t offset, uint64_t lost, const char *reason) {
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_smsg_gap(&sb, (hb_scope)c->key.level, epoch, offset, reason);
  hb_msg *m = hb_msg_new(&c->key, "", 0, sb.buf, sb.len);
  hb_strbuf_free(&sb);
  m->gap = 1;
  m->epoch = epoch;
  m->offset = offset;
  hb_publish_deliver_all(m);
  hb_msg_unref(m);
  hb_metric_inc(HB_M_REDIS_GAP_NOTICES);
  hb_metric_add(HB_M_REDIS_MESSAGES_LOST, (long long)lost);
  if (log_ok(rb)) {
    char name[CHAN_NAME_BYTES];
    chan_name(&c->key, name);
    if (!strcmp(reason, "epoch_changed"))
      hb_warn("redis: %s: its history was lost (new epoch %016llx): subscribers told (gap notice)", name,
              (unsigned long long)epoch);
    else
      hb_warn("redis: %s: %llu messages missed and no longer in the stream (offsets up to %llu): subscribers "
              "told (gap notice)",
              name, (unsigned long long)lost, (unsigned long long)offset);
  }
}

/* ------------------------------------------------------------------------ */
/* Read replies                                                              */
/* ------------------------------------------------------------------------ */

/* READ_LUA's reply: {epoch, last, first kept, offset, body, ...}. */
typedef struct {
  uint64_t epoch, last, first;
  size_t n;                 /* messages */
  const redisReply *const *items; /* offset, body pairs */
} read_reply;

static bool parse_read(const redisReply *r, read_reply *out) {
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3 || (r->elements - 3) % 2) return false;
  const redisReply *e = r->element[0], *l = r->element[1], *f = r->element[2];
  if (e->type != REDIS_REPLY_STRING || !hb_resume_parse_epoch(e->str, e->len, &out->epoch)) return false;
  if (l->type != REDIS_REPLY_INTEGER || f->type != REDIS_REPLY_INTEGER || l->integer < 0 || f->integer < 0)
    return false;
  out->last = (uint64_t)l->integer;
  out->first = (uint64_t)f->integer;
  out->n = (r->elements - 3) / 2;
  out->items = (const redisReply *const *)r->element + 3;
  for (size_t i = 0; i < out->n; i++)
    if (out->items[2 * i]->type != REDIS_REPLY_INTEGER || out->items[2 * i + 1]->type != REDIS_REPLY_STRING)
      return false;
  return true;
}

static uint64_t item_offset(const read_reply *rr, size_t i) { return (uint64_t)rr->items[2 * i]->integer; }

static hb_msg *item_msg(const read_reply *rr, size_t i, const hb_chan_key *chan) {
  const redisReply *b = rr->items[2 * i + 1];
  return msg_from_body(chan, rr->epoch, item_offset(rr, i), b->str, b->len);
}

/* Why a command failed, for the log. */
static const char *why_of(const redisReply *r, const char *err, char *buf, size_t cap) {
  if (!r) return err ? err : "no reply";
  if (r->type == REDIS_REPLY_ERROR) snprintf(buf, cap, "Redis answered: %.*s", (int)(r->len > 120 ? 120 : r->len), r->str);
  else snprintf(buf, cap, "unexpected reply (type %d)", r->type);
  return buf;
}

typedef enum { READ_CHAN, READ_WAITER } read_kind;

typedef struct {
  rbroker *rb;
  read_kind kind;
  hb_chan_key key; /* READ_CHAN */
  uint64_t seq;    /* READ_CHAN: the channel's read; READ_WAITER: the waiter's id */
} readreq;

static void on_read_reply(void *ctx, const redisReply *r, const char *err);

/* EVALSHA READ_LUA for `chan`, or EVAL with the script itself when the
 * script cache lost it. False when the command connection is not ready. */
static bool send_read(rbroker *rb, const hb_chan_key *chan, uint64_t after, size_t max, uint64_t want_epoch,
                      readreq *rq, bool eval) {
  char name[CHAN_NAME_BYTES], km[CHAN_NAME_BYTES + 8], kx[CHAN_NAME_BYTES + 8];
  size_t nlen = chan_name(chan, name);
  size_t kml = chan_key(name, nlen, 'm', km), kxl = chan_key(name, nlen, 'x', kx);
  char a_after[24], a_max[24], a_epoch[EPOCH_HEX_BYTES + 1], a_keep[24], a_want[EPOCH_HEX_BYTES + 1], a_ttl[24];
  int la = snprintf(a_after, sizeof a_after, "%llu", (unsigned long long)after);
  int lm = snprintf(a_max, sizeof a_max, "%zu", max);
  epoch_hex(new_epoch(rb), a_epoch);
  int lk = snprintf(a_keep, sizeof a_keep, "%lld", (long long)rb->keep_ms);
  int lt = snprintf(a_ttl, sizeof a_ttl, "%lld", (long long)rb->opts.history_ttl_s * 1000);
  size_t lw = 0;
  if (want_epoch) {
    epoch_hex(want_epoch, a_want);
    lw = EPOCH_HEX_BYTES;
  }
  hb_rclient_arg argv[] = {
      {eval ? "EVAL" : "EVALSHA", eval ? 4 : 7},
      {eval ? script_text[SCRIPT_READ] : rb->sha[SCRIPT_READ], eval ? strlen(script_text[SCRIPT_READ]) : 40},
      {"2", 1},
      {km, kml},
      {kx, kxl},
      {a_after, (size_t)la},
      {a_max, (size_t)lm},
      {a_epoch, EPOCH_HEX_BYTES},
      {a_keep, (size_t)lk},
      {rb->run_id, strlen(rb->run_id)},
      {a_want, lw},
      {a_ttl, (size_t)lt},
  };
  return hb_rclient_cmd(rb->cmd, on_read_reply, rq, (int)(sizeof argv / sizeof *argv), argv);
}

static bool is_noscript(const redisReply *r) {
  return r && r->type == REDIS_REPLY_ERROR && r->len >= 8 && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

/* ------------------------------------------------------------------------ */
/* Channels: subscribe, read, deliver in order                               */
/* ------------------------------------------------------------------------ */

static void waiters_check(rbroker *rb);
static void chan_start_read(rbroker *rb, rchan *c);

static rchan *chan_find(rbroker *rb, const hb_chan_key *k) {
  rchan *c = NULL;
  HASH_FIND(hh, rb->chans, k, sizeof *k, c);
  return c;
}

static void chan_unqueue(rchan *c) {
  if (!c->read_wanted) return;
  c->read_wanted = false;
  hb_list_remove(&c->want_link);
}

static void chan_free(rchan *c) {
  chan_unqueue(c);
  hb_msgvec_free(&c->held);
  hb_free(c);
}

typedef struct {
  rbroker *rb;
  hb_chan_key key;
  uint64_t gen;
} subreq;

static void on_subscribed(void *ctx, const redisReply *r, const char *err) {
  subreq *s = ctx;
  rbroker *rb = s->rb;
  if (r && r->type == REDIS_REPLY_ERROR) {
    char why[160];
    hb_rclient_fault(rb->sub, why_of(r, err, why, sizeof why));
  } else if (r) {
    rchan *c = chan_find(rb, &s->key);
    /* Confirmed: every publish from now on reaches this node. */
    if (c && c->gen == s->gen && c->state == CH_SUBSCRIBING) chan_start_read(rb, c);
  }
  hb_free(s);
}

static bool chan_cmd(rbroker *rb, const char *verb, rchan *c) {
  char name[CHAN_NAME_BYTES];
  size_t n = chan_name(&c->key, name);
  hb_rclient_arg argv[] = {{verb, strlen(verb)}, {name, n}};
  if (verb[0] == 'U') return hb_rclient_cmd(rb->sub, NULL, NULL, 2, argv);
  subreq *s = hb_malloc(sizeof *s);
  *s = (subreq){rb, c->key, c->gen};
  if (hb_rclient_cmd(rb->sub, on_subscribed, s, 2, argv)) return true;
  hb_free(s);
  return false;
}

static void deliver(rbroker *rb, rchan *c, hb_msg *m) {
  hb_publish_deliver_all(m);
  c->last = m->offset;
}

/* A live message in channel `c`: in order, a duplicate, or after a gap. */
static void chan_on_live(rbroker *rb, rchan *c, hb_msg *m) {
  switch (c->state) {
  case CH_SUBSCRIBING:
    return; /* from a subscription being replaced: the read after the confirmation covers it */
  case CH_READING:
    if (c->held.n >= HB_REDIS_HELD_MAX_MESSAGES) {
      /* Too many to keep: the stream has them; the next gap reads them. */
      hb_msgvec_free(&c->held);
      return;
    }
    hb_msgvec_push(&c->held, m);
    return;
  case CH_LIVE:
    if (m->epoch == c->foreign_epoch) return;
    if (m->epoch == c->epoch && m->offset <= c->last) return; /* delivered already (by a read) */
    if (m->epoch == c->epoch && m->offset == c->last + 1) {
      deliver(rb, c, m);
      return;
    }
    /* A jump in the offsets, or another epoch: read what is missing first. */
    if (m->epoch != c->epoch) c->suspect_epoch = m->epoch;
    hb_msgvec_push(&c->held, m);
    chan_start_read(rb, c);
    return;
  }
}

/* Read channel `c`'s stream now, or queue it (the command connection is not
 * ready, or enough reads are out). */
static void chan_send_read(rbroker *rb, rchan *c) {
  if (!cmd_ready(rb) || rb->reads_inflight >= HB_REDIS_CHAN_READS_IN_FLIGHT) {
    if (!c->read_wanted) {
      c->read_wanted = true;
      hb_list_insert_tail(&rb->read_queue, &c->want_link);
    }
    return;
  }
  chan_unqueue(c);
  readreq *rq = hb_malloc(sizeof *rq);
  *rq = (readreq){rb, READ_CHAN, c->key, c->read_seq};
  bool baseline = !c->known;
  if (!send_read(rb, &c->key, baseline ? 0 : c->last, baseline ? 0 : HB_REDIS_READ_PAGE_MESSAGES, 0, rq, false)) {
    hb_free(rq);
    c->read_wanted = true;
    hb_list_insert_tail(&rb->read_queue, &c->want_link);
    return;
  }
  rb->reads_inflight++;
  c->read_inflight = true;
}

/* Send the queued channel reads that fit. */
static void chan_pump_reads(rbroker *rb) {
  while (cmd_ready(rb) && rb->reads_inflight < HB_REDIS_CHAN_READS_IN_FLIGHT && !hb_list_empty(&rb->read_queue)) {
    rchan *c = hb_container_of(rb->read_queue.next, rchan, want_link);
    chan_unqueue(c);
    if (c->state == CH_READING && !c->read_inflight) chan_send_read(rb, c);
  }
}

static void chan_start_read(rbroker *rb, rchan *c) {
  if (c->state == CH_READING && (c->read_inflight || c->read_wanted)) return;
  c->state = CH_READING;
  c->read_seq++;
  chan_send_read(rb, c);
}

/* The read is done: deliver what waited, in order (it may start another). */
static void chan_go_live(rbroker *rb, rchan *c) {
  c->state = CH_LIVE;
  hb_msgvec held = c->held;
  memset(&c->held, 0, sizeof c->held);
  for (size_t i = 0; i < held.n; i++) chan_on_live(rb, c, held.v[i]);
  hb_msgvec_free(&held);
}

static void chan_on_read(rbroker *rb, rchan *c, const read_reply *rr) {
  c->read_inflight = false;
  c->epoch_seq = rb->reply_seq;
  if (!c->known) { /* the baseline: every later publish reaches this node */
    c->known = true;
    c->epoch = rr->epoch;
    c->last = rr->last;
    chan_go_live(rb, c);
    return;
  }
  if (rr->epoch != c->epoch) {
    /* The channel's history was lost (Redis restarted without it, or the
     * channel's keys expired): start over in the new epoch, and say so. */
    c->epoch = rr->epoch;
    c->last = 0;
    c->suspect_epoch = 0;
    c->notice = "epoch_changed";
    c->read_seq++;
    chan_send_read(rb, c);
    return;
  }
  if (c->suspect_epoch && c->suspect_epoch != rr->epoch) {
    /* Read after that message came, the stream has another epoch. */
    if (c->foreign_epoch != c->suspect_epoch && log_ok(rb)) {
      char name[CHAN_NAME_BYTES];
      chan_name(&c->key, name);
      hb_warn("redis: %s: ignoring messages of epoch %016llx that its stream does not have (a node using "
              "another Redis database? every node must use the same one)",
              name, (unsigned long long)c->suspect_epoch);
    }
    c->foreign_epoch = c->suspect_epoch;
  }
  c->suspect_epoch = 0;
  size_t delivered = 0;
  uint64_t first = rr->n ? item_offset(rr, 0) : rr->last + 1;
  if (c->notice || first > c->last + 1) {
    uint64_t upto = first - 1 > rr->last ? rr->last : first - 1;
    if (upto < c->last) upto = c->last;
    gap_notice(rb, c, c->epoch, upto, upto - c->last, c->notice ? c->notice : "trimmed");
    c->last = upto;
    c->notice = NULL;
  }
  for (size_t i = 0; i < rr->n; i++) {
    uint64_t off = item_offset(rr, i);
    if (off != c->last + 1) continue;
    hb_msg *m = item_msg(rr, i, &c->key);
    if (!m) continue;
    deliver(rb, c, m);
    hb_msg_unref(m);
    delivered++;
  }
  if (delivered) {
    hb_metric_inc(HB_M_REDIS_GAPS_FILLED);
    hb_metric_add(HB_M_REDIS_GAP_FILLED_MESSAGES, (long long)delivered);
    if (log_ok(rb)) {
      char name[CHAN_NAME_BYTES];
      chan_name(&c->key, name);
      hb_info("redis: %s: %zu missed messages read from the stream and delivered in order (up to offset %llu)",
              name, delivered, (unsigned long long)c->last);
    }
  }
  if (c->last < rr->last && rr->n == HB_REDIS_READ_PAGE_MESSAGES) {
    chan_send_read(rb, c); /* more pages */
    return;
  }
  if (c->last < rr->last) { /* the rest is gone too (trimmed or too old meanwhile) */
    gap_notice(rb, c, c->epoch, rr->last, rr->last - c->last, "trimmed");
    c->last = rr->last;
  }
  chan_go_live(rb, c);
}

static void apply_interest(rbroker *rb, const interest_op *op) {
  rchan *c = chan_find(rb, &op->key);
  if (op->on) {
    if (!c) {
      c = hb_calloc(1, sizeof *c);
      c->key = op->key;
      c->gen = ++rb->next_gen;
      c->state = CH_SUBSCRIBING;
      HASH_ADD(hh, rb->chans, key, sizeof c->key, c);
      rb->nchans++;
    }
    /* Not connected: the handshake SUBSCRIBEs every channel. */
    if (c->threads++ == 0) chan_cmd(rb, "SUBSCRIBE", c);
  } else if (c && --c->threads == 0) {
    chan_cmd(rb, "UNSUBSCRIBE", c);
    HASH_DEL(rb->chans, c);
    chan_free(c);
    rb->nchans--;
  }
}

/* A message pushed on the subscribe connection. */
static void on_push(hb_rclient *rc, void *ud, const redisReply *msg) {
  rbroker *rb = ud;
  const redisReply *ch = msg->element[1], *pl = msg->element[2];
  hb_chan_key k;
  if (ch->type != REDIS_REPLY_STRING || pl->type != REDIS_REPLY_STRING || !chan_parse(ch->str, ch->len, &k)) return;
  rchan *c = chan_find(rb, &k);
  if (!c) return;
  const char *p = pl->str, *end = p + pl->len;
  uint64_t epoch, offset;
  if (pl->len < PAYLOAD_MAGIC_BYTES + EPOCH_HEX_BYTES + 2 || memcmp(p, PAYLOAD_MAGIC, PAYLOAD_MAGIC_BYTES) != 0 ||
      !hb_resume_parse_epoch(p + PAYLOAD_MAGIC_BYTES, EPOCH_HEX_BYTES, &epoch)) {
    static atomic_bool warned;
    if (!atomic_exchange(&warned, true))
      hb_warn("redis: ignored a message in another format on %.*s (a node of another version? upgrade every node)",
              (int)ch->len, ch->str);
    return;
  }
  const char *o = p + PAYLOAD_MAGIC_BYTES + EPOCH_HEX_BYTES;
  const char *colon = memchr(o, ':', (size_t)(end - o));
  if (!colon || !hb_resume_parse_offset(o, (size_t)(colon - o), &offset) || offset == 0) return;
  hb_msg *m = msg_from_body(&k, epoch, offset, colon + 1, (size_t)(end - colon - 1));
  if (!m) return;
  chan_on_live(rb, c, m);
  hb_msg_unref(m);
  if (rb->waiters) waiters_check(rb);
}

/* ------------------------------------------------------------------------ */
/* Publishes                                                                 */
/* ------------------------------------------------------------------------ */

static void pub_answer_run(answer *a, bool gone) {
  pubjob *j = (pubjob *)a;
  if (gone && j->r.err == HB_OK) j->r.err = HB_E_SHUTTING_DOWN;
  j->done(j->ctx, &j->r);
  hb_free(j);
}

static void pub_finish(rbroker *rb, pubjob *j, hb_err err) {
  atomic_fetch_sub(&rb->queued_bytes, j->bytes);
  j->r.err = err;
  if (err != HB_OK) hb_metric_inc(HB_M_REDIS_PUBLISHES_FAILED);
  j->a.run = pub_answer_run;
  answer_post(rb, j->from, &j->a);
}

static void on_publish_reply(void *ctx, const redisReply *r, const char *err);

static bool send_publish(rbroker *rb, pubjob *j, bool eval) {
  char name[CHAN_NAME_BYTES], km[CHAN_NAME_BYTES + 8], kx[CHAN_NAME_BYTES + 8];
  char ki[sizeof IDEM_PREFIX + HB_UUID_STR_BYTES + 1 + HB_MAX_IDEMPOTENCY_KEY_BYTES];
  size_t nlen = chan_name(&j->chan, name);
  size_t kml = chan_key(name, nlen, 'm', km), kxl = chan_key(name, nlen, 'x', kx), kil = 0;
  if (j->idem_len) {
    char plugin[HB_UUID_STR_BYTES];
    hb_uuid_format(&j->chan.plugin, plugin);
    kil = (size_t)snprintf(ki, sizeof ki, IDEM_PREFIX "%s:%.*s", plugin, (int)j->idem_len, j->idem);
  }
  char a_epoch[EPOCH_HEX_BYTES + 1], a_size[16], a_keep[24], a_deadline[24], a_ittl[24];
  epoch_hex(new_epoch(rb), a_epoch);
  int ls = snprintf(a_size, sizeof a_size, "%d", rb->opts.history_size);
  int lk = snprintf(a_keep, sizeof a_keep, "%lld", (long long)rb->keep_ms);
  /* Past this moment (Redis's clock) the script does nothing: by then this
   * node has stopped waiting and answered 503. */
  long long deadline =
      rb->clock_known ? (long long)uv_now(&rb->loop) + rb->clock_offset_ms + HB_REDIS_SCRIPT_DEADLINE_MS : 0;
  int ld = snprintf(a_deadline, sizeof a_deadline, "%lld", deadline);
  int li = snprintf(a_ittl, sizeof a_ittl, "%lld", (long long)rb->opts.idempotency_ttl_s * 1000);
  hb_rclient_arg argv[16];
  int n = 0;
  argv[n++] = (hb_rclient_arg){eval ? "EVAL" : "EVALSHA", eval ? 4 : 7};
  argv[n++] = eval ? (hb_rclient_arg){script_text[SCRIPT_PUBLISH], strlen(script_text[SCRIPT_PUBLISH])}
                   : (hb_rclient_arg){rb->sha[SCRIPT_PUBLISH], 40};
  argv[n++] = kil ? (hb_rclient_arg){"3", 1} : (hb_rclient_arg){"2", 1};
  argv[n++] = (hb_rclient_arg){km, kml};
  argv[n++] = (hb_rclient_arg){kx, kxl};
  if (kil) argv[n++] = (hb_rclient_arg){ki, kil};
  argv[n++] = (hb_rclient_arg){name, nlen};
  argv[n++] = (hb_rclient_arg){j->body, j->body_len};
  argv[n++] = (hb_rclient_arg){a_epoch, EPOCH_HEX_BYTES};
  argv[n++] = (hb_rclient_arg){a_size, (size_t)ls};
  argv[n++] = (hb_rclient_arg){a_keep, (size_t)lk};
  argv[n++] = (hb_rclient_arg){a_deadline, (size_t)ld};
  argv[n++] = (hb_rclient_arg){rb->run_id, strlen(rb->run_id)};
  argv[n++] = (hb_rclient_arg){a_ittl, (size_t)li};
  argv[n++] = (hb_rclient_arg){j->r.message_id, strlen(j->r.message_id)};
  return hb_rclient_cmd(rb->cmd, on_publish_reply, j, n, argv);
}

static void on_publish_reply(void *ctx, const redisReply *r, const char *err) {
  pubjob *j = ctx;
  rbroker *rb = j->rb;
  if (is_noscript(r) && !j->retried && cmd_ready(rb)) {
    /* The script cache was flushed: this once with the script itself
     * (which caches it again for the EVALSHAs that follow). */
    j->retried = true;
    if (send_publish(rb, j, true)) return;
  }
  const redisReply *k = r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 ? r->element[0] : NULL;
  if (k && hb_rclient_reply_is(k, "ok") && r->elements == 3 && r->element[1]->type == REDIS_REPLY_STRING &&
      r->element[2]->type == REDIS_REPLY_INTEGER &&
      hb_resume_parse_epoch(r->element[1]->str, r->element[1]->len, &j->r.pos.epoch) && r->element[2]->integer > 0) {
    j->r.pos.offset = (uint64_t)r->element[2]->integer;
    pub_finish(rb, j, HB_OK);
    return;
  }
  if (k && hb_rclient_reply_is(k, "dup") && r->elements == 2 && r->element[1]->type == REDIS_REPLY_STRING) {
    /* "<epoch> <offset> <message id>": the first publish with this key. */
    const char *s = r->element[1]->str, *end = s + r->element[1]->len;
    const char *sp1 = memchr(s, ' ', (size_t)(end - s));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1)) : NULL;
    if (sp2 && hb_resume_parse_epoch(s, (size_t)(sp1 - s), &j->r.pos.epoch) &&
        hb_resume_parse_offset(sp1 + 1, (size_t)(sp2 - sp1 - 1), &j->r.pos.offset) &&
        (size_t)(end - sp2 - 1) == HB_UUID_STR_BYTES - 1) {
      memcpy(j->r.message_id, sp2 + 1, HB_UUID_STR_BYTES - 1);
      j->r.message_id[HB_UUID_STR_BYTES - 1] = '\0';
      j->r.replayed = true;
      hb_metric_inc(HB_M_IDEMPOTENT_REPLAYS);
      pub_finish(rb, j, HB_OK);
      return;
    }
  }
  char why[200];
  if (k && hb_rclient_reply_is(k, "late")) {
    snprintf(why, sizeof why, "Redis ran it more than %d ms after it was sent", HB_REDIS_SCRIPT_DEADLINE_MS);
  } else {
    why_of(r, err, why, sizeof why);
  }
  if (atomic_fetch_add(&rb->refused, 1) % HB_REDIS_LOG_EVERY == 0)
    hb_warn("redis: a publish was refused (503 broker_unavailable; nothing delivered): %s", why);
  pub_finish(rb, j, HB_E_BROKER_UNAVAILABLE);
}

/* A publish from an I/O thread (ctx NULL: the inbox is being destroyed at stop). */
static void publish_job(void *ctx, void *arg) {
  rbroker *rb = ctx;
  pubjob *j = arg;
  if (!rb) {
    atomic_fetch_sub(&j->rb->queued_bytes, j->bytes);
    j->r.err = HB_E_SHUTTING_DOWN;
    pub_answer_run(&j->a, true);
    return;
  }
  if (!cmd_ready(rb) || !send_publish(rb, j, false)) pub_finish(rb, j, HB_E_BROKER_UNAVAILABLE);
}

/* ------------------------------------------------------------------------ */
/* Joins, subscribe waits, history pages                                     */
/* ------------------------------------------------------------------------ */

static void waiter_answer_run(answer *a, bool gone) {
  waiter *w = (waiter *)a;
  switch (w->kind) {
  case W_JOIN:
    if (gone) w->jr.err = HB_E_SHUTTING_DOWN;
    w->join_done(w->ctx, &w->jr);
    for (int sc = 0; sc < HB_SCOPE__COUNT; sc++) hb_msgvec_free(&w->jr.replay[sc]);
    break;
  case W_LIVE: w->live_done(w->ctx, gone ? HB_E_SHUTTING_DOWN : w->err); break;
  case W_PAGE:
    if (gone) w->pr.err = HB_E_SHUTTING_DOWN;
    w->page_done(w->ctx, &w->pr);
    hb_msgvec_free(&w->pr.msgs);
    break;
  }
  hb_free(w);
}

/* Answer now (the waiter leaves the table). */
static void waiter_finish(rbroker *rb, waiter *w, hb_err err) {
  HASH_DEL(rb->waiters, w);
  w->err = err;
  if (w->kind == W_JOIN) {
    w->jr.err = err;
    if (err != HB_OK)
      for (int sc = 0; sc < HB_SCOPE__COUNT; sc++) hb_msgvec_free(&w->jr.replay[sc]);
  }
  if (w->kind == W_PAGE) w->pr.err = err;
  w->a.run = waiter_answer_run;
  answer_post(rb, w->from, &w->a);
}

static void waiter_send_read(rbroker *rb, waiter *w) {
  if (!cmd_ready(rb)) {
    w->read_wanted = true;
    return;
  }
  readreq *rq = hb_malloc(sizeof *rq);
  *rq = (readreq){.rb = rb, .kind = READ_WAITER, .seq = w->id};
  const hb_chan_key *chan = &w->chans[w->sc];
  size_t max;
  uint64_t want_epoch = 0;
  if (w->kind == W_PAGE) {
    /* Without a filter, exactly what the page needs (and one more: "more"). */
    max = w->preq.want ? HB_REDIS_READ_PAGE_MESSAGES : w->preq.limit + 1;
    if (!w->first_page) want_epoch = w->pr.now.epoch;
  } else {
    /* A join reads messages only to replay them (since=, same epoch). */
    bool replay = w->req.has_since;
    max = replay ? HB_REDIS_READ_PAGE_MESSAGES : 0;
    want_epoch = replay ? w->req.since[w->sc].epoch : 0;
  }
  if (!send_read(rb, chan, w->after, max, want_epoch, rq, false)) {
    hb_free(rq);
    w->read_wanted = true;
    return;
  }
  w->read_wanted = false;
  w->read_inflight = true;
}

static void join_next_channel(rbroker *rb, waiter *w) {
  if (++w->sc < w->nchans) {
    w->first_page = true;
    w->after = w->req.has_since ? w->req.since[w->sc].offset : 0;
    waiter_send_read(rb, w);
    return;
  }
  w->phase = J_WAIT_DELIVERED;
  waiters_check(rb);
}

/* A page of a join's channel `sc`: its position, and with since= what the
 * connection missed, judged as history.c judges a position on one node. */
static void join_on_read(rbroker *rb, waiter *w, const read_reply *rr) {
  int sc = w->sc;
  hb_join_result *jr = &w->jr;
  if (w->first_page) {
    w->first_page = false;
    jr->now[sc] = (hb_pos){rr->epoch, rr->last};
    w->read_seqs[sc] = rb->reply_seq;
    if (!w->req.has_since) {
      join_next_channel(rb, w);
      return;
    }
    hb_pos since = w->req.since[sc];
    hb_history_status st = HB_HISTORY_OK;
    if (since.epoch != rr->epoch) st = HB_HISTORY_EPOCH_CHANGED;
    else if (since.offset > rr->last) st = HB_HISTORY_AHEAD;
    else if (since.offset == rr->last) st = HB_HISTORY_OK;
    else if (rr->last - since.offset > w->req.history_size || rr->first == 0 || rr->first > since.offset + 1)
      st = HB_HISTORY_TRIMMED;
    jr->st[sc] = st;
    if (st != HB_HISTORY_OK || since.offset == rr->last) {
      join_next_channel(rb, w);
      return;
    }
  } else if (rr->epoch != jr->now[sc].epoch) {
    jr->st[sc] = HB_HISTORY_EPOCH_CHANGED; /* lost while it was being read */
    hb_msgvec_free(&jr->replay[sc]);
    join_next_channel(rb, w);
    return;
  }
  uint64_t target = jr->now[sc].offset;
  for (size_t i = 0; i < rr->n; i++) {
    uint64_t off = item_offset(rr, i);
    if (off <= w->after || off > target) continue;
    if (off != w->after + 1) { /* trimmed while it was being read */
      jr->st[sc] = HB_HISTORY_TRIMMED;
      break;
    }
    w->after = off;
    hb_msg *m = item_msg(rr, i, &w->chans[sc]);
    if (!m) continue;
    if (!w->req.want || w->req.want(w->req.want_ud, m)) {
      if (w->used >= w->req.max_replay) jr->st[sc] = HB_HISTORY_TOO_MANY;
      else {
        hb_msgvec_push(&jr->replay[sc], m);
        w->used++;
      }
    }
    hb_msg_unref(m);
    if (jr->st[sc] != HB_HISTORY_OK) break;
  }
  if (jr->st[sc] == HB_HISTORY_OK && w->after < target) {
    if (rr->n == HB_REDIS_READ_PAGE_MESSAGES) {
      waiter_send_read(rb, w); /* the next page */
      return;
    }
    jr->st[sc] = HB_HISTORY_TRIMMED; /* the rest was trimmed meanwhile */
  }
  if (jr->st[sc] != HB_HISTORY_OK) {
    w->used -= jr->replay[sc].n;
    hb_msgvec_free(&jr->replay[sc]);
  }
  join_next_channel(rb, w);
}

static void page_on_read(rbroker *rb, waiter *w, const read_reply *rr) {
  hb_page_result *pr = &w->pr;
  if (w->first_page) {
    w->first_page = false;
    pr->now = (hb_pos){rr->epoch, rr->last};
    pr->first_kept = rr->first;
  } else if (rr->epoch != pr->now.epoch) {
    waiter_finish(rb, w, HB_OK); /* lost meanwhile: what was read stands */
    return;
  }
  for (size_t i = 0; i < rr->n; i++) {
    uint64_t off = item_offset(rr, i);
    if (off <= w->after || off > pr->now.offset) continue;
    w->after = off;
    hb_msg *m = item_msg(rr, i, &w->chans[0]);
    if (!m) continue;
    if (!w->preq.want || w->preq.want(w->preq.want_ud, m)) {
      if (pr->msgs.n >= w->preq.limit) {
        pr->more = true;
        hb_msg_unref(m);
        waiter_finish(rb, w, HB_OK);
        return;
      }
      hb_msgvec_push(&pr->msgs, m);
    }
    hb_msg_unref(m);
  }
  if (w->preq.want && w->after < pr->now.offset && rr->n == HB_REDIS_READ_PAGE_MESSAGES) {
    waiter_send_read(rb, w);
    return;
  }
  waiter_finish(rb, w, HB_OK);
}

static bool chan_live(rbroker *rb, const hb_chan_key *k) {
  rchan *c = chan_find(rb, k);
  return !c || (c->state == CH_LIVE && c->known);
}

/* Has this node delivered channel sc up to the join's position? */
static bool chan_caught_up(rbroker *rb, waiter *w, int sc) {
  rchan *c = chan_find(rb, &w->chans[sc]);
  if (!c) return true; /* nobody here listens any more (the connection left) */
  hb_pos want = w->jr.now[sc];
  if (c->state != CH_LIVE) return false;
  if (c->epoch == want.epoch) return c->last >= want.offset;
  /* Another epoch: if this node learnt its epoch after the join read its
   * position, the join's is the older one (the node has told its
   * subscribers, the joining one too, after its welcome); otherwise make
   * the node look (it learns the join's epoch, and says so). */
  if (c->epoch_seq > w->read_seqs[sc]) return true;
  chan_start_read(rb, c);
  return false;
}

static void waiter_step(rbroker *rb, waiter *w) {
  if (w->phase == J_WAIT_LIVE) {
    for (int i = 0; w->live && i < w->nchans; i++)
      if (!chan_live(rb, &w->chans[i])) return;
    if (w->kind == W_LIVE) {
      waiter_finish(rb, w, HB_OK);
      return;
    }
    w->phase = J_READ;
    w->sc = 0;
    w->first_page = true;
    w->after = w->kind == W_PAGE ? w->preq.after : w->req.has_since ? w->req.since[0].offset : 0;
    waiter_send_read(rb, w);
    return;
  }
  if (w->phase == J_READ) {
    if (w->read_wanted && !w->read_inflight) waiter_send_read(rb, w);
    return;
  }
  for (int sc = 0; w->live && sc < w->nchans; sc++)
    if (!chan_caught_up(rb, w, sc)) return;
  waiter_finish(rb, w, HB_OK);
}

static void waiters_check(rbroker *rb) {
  waiter *w, *tmp;
  HASH_ITER(hh, rb->waiters, w, tmp) waiter_step(rb, w);
}

static void waiter_add(rbroker *rb, waiter *w, uint32_t timeout_ms) {
  w->rb = rb;
  w->id = ++rb->next_waiter;
  w->deadline_ms = uv_now(&rb->loop) + timeout_ms;
  w->phase = J_WAIT_LIVE;
  HASH_ADD(hh, rb->waiters, id, sizeof w->id, w);
  waiter_step(rb, w);
}

static void waiter_job(void *ctx, void *arg) {
  rbroker *rb = ctx;
  waiter *w = arg;
  if (!rb || rb->stopping) {
    waiter_answer_run(&w->a, true);
    return;
  }
  waiter_add(rb, w, w->kind == W_PAGE ? HB_REDIS_PAGE_TIMEOUT_MS : HB_REDIS_JOIN_TIMEOUT_MS);
}

/* ------------------------------------------------------------------------ */
/* Replies to reads                                                          */
/* ------------------------------------------------------------------------ */

static void on_read_reply(void *ctx, const redisReply *r, const char *err) {
  readreq *rq = ctx;
  rbroker *rb = rq->rb;
  read_reply rr;
  bool ok = r && parse_read(r, &rr);
  if (r) rb->reply_seq++;
  if (is_noscript(r) && cmd_ready(rb)) {
    /* The script cache was flushed: load it again, then read again. */
    const char *argv[] = {"SCRIPT", "LOAD", script_text[SCRIPT_READ]};
    hb_rclient_cmd_strs(rb->cmd, NULL, NULL, 3, argv);
  } else if (r && !ok && log_ok(rb)) {
    char why[160];
    hb_warn("redis: a read failed (retried): %s", why_of(r, err, why, sizeof why));
  }
  if (rq->kind == READ_CHAN) {
    rb->reads_inflight--;
    rchan *c = chan_find(rb, &rq->key);
    if (c && c->read_seq == rq->seq && c->state == CH_READING) {
      c->read_inflight = false;
      if (ok) chan_on_read(rb, c, &rr);
      else chan_send_read(rb, c); /* again, queued until the command connection is ready */
    } else if (c && c->read_seq == rq->seq) {
      c->read_inflight = false;
    }
    chan_pump_reads(rb);
  } else {
    waiter *w = NULL;
    HASH_FIND(hh, rb->waiters, &rq->seq, sizeof rq->seq, w);
    if (w && w->read_inflight) {
      w->read_inflight = false;
      if (!ok) w->read_wanted = true;
      else if (w->kind == W_PAGE) page_on_read(rb, w, &rr);
      else join_on_read(rb, w, &rr);
    }
  }
  hb_free(rq);
  if (rb->waiters) waiters_check(rb);
}

/* ------------------------------------------------------------------------ */
/* The two connections                                                       */
/* ------------------------------------------------------------------------ */

static void log_up(rbroker *rb) {
  bool up = cmd_ready(rb) && sub_ready(rb);
  if (up && !rb->was_up)
    hb_info("redis: up (%s:%d db %d, %zu channels subscribed)", rb->host, rb->port, rb->db, rb->nchans);
  rb->was_up = up;
}

static void sync_states(rbroker *rb) {
  atomic_store(&rb->cmd_state, rb->cmd ? (int)hb_rclient_get_state(rb->cmd) : (int)HB_RCLIENT_STOPPED);
  atomic_store(&rb->sub_state, rb->sub ? (int)hb_rclient_get_state(rb->sub) : (int)HB_RCLIENT_STOPPED);
}

typedef struct {
  rbroker *rb;
  script_id id;
} loadreq;

static void on_load_reply(void *ctx, const redisReply *r, const char *err) {
  loadreq *lq = ctx;
  rbroker *rb = lq->rb;
  if (r && r->type == REDIS_REPLY_STRING && r->len == 40) {
    memcpy(rb->sha[lq->id], r->str, 40);
    rb->sha[lq->id][40] = '\0';
  } else if (r) {
    char why[160];
    hb_rclient_fault(rb->cmd, why_of(r, err, why, sizeof why));
  }
  hb_free(lq);
}

static void on_info_reply(void *ctx, const redisReply *r, const char *err) {
  rbroker *rb = ctx;
  if (!r || r->type != REDIS_REPLY_STRING) return; /* INFO renamed or denied: "none" stays */
  const char *p = strstr(r->str, "run_id:");
  if (!p) return;
  p += 7;
  size_t n = strcspn(p, "\r\n");
  if (n > RUN_ID_BYTES) n = RUN_ID_BYTES;
  memcpy(rb->run_id, p, n);
  rb->run_id[n] = '\0';
}

typedef struct {
  rbroker *rb;
  uint64_t sent_ms;
} timereq;

/* TIME: Redis's clock against this loop's, for the publish deadline. */
static void on_time_reply(void *ctx, const redisReply *r, const char *err) {
  timereq *tq = ctx;
  rbroker *rb = tq->rb;
  if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
      r->element[1]->type == REDIS_REPLY_STRING) {
    long long s = atoll(r->element[0]->str), us = atoll(r->element[1]->str);
    uint64_t now = uv_now(&rb->loop);
    int64_t mid = (int64_t)(tq->sent_ms + now) / 2;
    rb->clock_offset_ms = s * 1000 + us / 1000 - mid;
    rb->clock_known = true;
    rb->clock_synced_ms = now;
  }
  hb_free(tq);
}

static void send_time(rbroker *rb) {
  timereq *tq = hb_malloc(sizeof *tq);
  *tq = (timereq){rb, uv_now(&rb->loop)};
  const char *argv[] = {"TIME"};
  if (!hb_rclient_cmd_strs(rb->cmd, on_time_reply, tq, 1, argv)) hb_free(tq);
  rb->clock_synced_ms = uv_now(&rb->loop);
}

/* Before the command connection is ready: the scripts, Redis's run id and
 * its clock. */
static void cmd_handshake(hb_rclient *rc, void *ud) {
  rbroker *rb = ud;
  snprintf(rb->run_id, sizeof rb->run_id, "none");
  rb->sha[SCRIPT_PUBLISH][0] = rb->sha[SCRIPT_READ][0] = '\0';
  const char *info[] = {"INFO", "server"};
  hb_rclient_cmd_strs(rc, on_info_reply, rb, 2, info);
  for (int i = 0; i < SCRIPT__COUNT; i++) {
    loadreq *lq = hb_malloc(sizeof *lq);
    *lq = (loadreq){rb, (script_id)i};
    const char *argv[] = {"SCRIPT", "LOAD", script_text[i]};
    if (!hb_rclient_cmd_strs(rc, on_load_reply, lq, 3, argv)) hb_free(lq);
  }
  send_time(rb);
}

static void cmd_ready_cb(hb_rclient *rc, void *ud) {
  rbroker *rb = ud;
  sync_states(rb);
  log_up(rb);
  chan_pump_reads(rb);
  waiters_check(rb);
}

static void cmd_down(hb_rclient *rc, void *ud, const char *why, bool was_ready) {
  rbroker *rb = ud;
  sync_states(rb);
  rb->was_up = false;
  rb->clock_known = false;
}

/* The subscribe connection: every channel with local subscribers again. */
static void sub_handshake(hb_rclient *rc, void *ud) {
  rbroker *rb = ud;
  rchan *c, *tmp;
  HASH_ITER(hh, rb->chans, c, tmp) {
    c->state = CH_SUBSCRIBING;
    chan_cmd(rb, "SUBSCRIBE", c);
  }
}

static void sub_ready_cb(hb_rclient *rc, void *ud) {
  rbroker *rb = ud;
  sync_states(rb);
  log_up(rb);
}

/* Whatever was published while the subscription was gone is in the streams:
 * each channel reads it after its SUBSCRIBE is confirmed again. */
static void sub_down(hb_rclient *rc, void *ud, const char *why, bool was_ready) {
  rbroker *rb = ud;
  sync_states(rb);
  rb->was_up = false;
  rchan *c, *tmp;
  HASH_ITER(hh, rb->chans, c, tmp) {
    c->state = CH_SUBSCRIBING;
    c->read_seq++; /* a reply to a read out now is stale (still counted in reads_inflight) */
    c->read_inflight = false;
    chan_unqueue(c);
    hb_msgvec_free(&c->held);
  }
}

/* ------------------------------------------------------------------------ */
/* The Redis thread                                                          */
/* ------------------------------------------------------------------------ */

static void interest_job(void *ctx, void *arg) {
  rbroker *rb = ctx;
  if (rb && !rb->stopping) apply_interest(rb, arg);
  hb_free(arg);
}

static void on_tick(uv_timer_t *t) {
  rbroker *rb = t->data;
  uint64_t now = uv_now(&rb->loop);
  sync_states(rb);
  if (cmd_ready(rb) && now - rb->clock_synced_ms >= HB_REDIS_CLOCK_SYNC_MS) send_time(rb);
  chan_pump_reads(rb); /* reads that could not be sent (a reconnecting link) */
  waiter *w, *wt;
  HASH_ITER(hh, rb->waiters, w, wt) {
    if (now >= w->deadline_ms) waiter_finish(rb, w, HB_E_BROKER_UNAVAILABLE);
    else waiter_step(rb, w);
  }
}

static void stop_job(void *ctx, void *arg) {
  rbroker *rb = ctx;
  if (!rb || rb->stopping) return;
  rb->stopping = true;
  /* Pending commands fail now: their answers become orphans (the I/O
   * threads are stopping), answered at the end of redis_stop. */
  hb_rclient_stop(rb->cmd);
  hb_rclient_stop(rb->sub);
  rb->cmd = rb->sub = NULL;
  /* Its goodbye still goes out (the I/O threads are gone: every member of
   * this node has left); the loop runs until its links are closed. */
  hb_rpresence_stop(rb->presence);
  rb->presence = NULL;
  sync_states(rb);
  waiter *w, *wt;
  HASH_ITER(hh, rb->waiters, w, wt) waiter_finish(rb, w, HB_E_SHUTTING_DOWN);
  uv_close((uv_handle_t *)&rb->tick, NULL);
  hb_inbox_close(&rb->inbox, NULL);
}

static void thread_main(void *arg) {
  rbroker *rb = arg;
  hb_rclient_start(rb->cmd);
  hb_rclient_start(rb->sub);
  if (rb->presence) hb_rpresence_start(rb->presence);
  uv_run(&rb->loop, UV_RUN_DEFAULT);
}

/* ------------------------------------------------------------------------ */
/* The broker ops (I/O threads and main thread)                              */
/* ------------------------------------------------------------------------ */

static hb_rclient *new_link(rbroker *rb, const char *name, bool subscriber) {
  char client_name[64];
  snprintf(client_name, sizeof client_name, "hubbub:%s:%d", name, (int)getpid());
  hb_rclient_config cfg = {
      .client_name = client_name,
      .name = name,
      .host = rb->host,
      .port = rb->port,
      .user = rb->user,
      .password = rb->password,
      .db = rb->db,
      .connect_timeout_ms = HB_REDIS_CONNECT_TIMEOUT_MS,
      /* Publishes wait for these replies: a Redis that stops answering is
       * noticed within this bound, not only by a ping. */
      .reply_timeout_ms = subscriber ? HB_REDIS_REPLY_TIMEOUT_MS : HB_REDIS_PUBLISH_TIMEOUT_MS,
      .ping_interval_ms = HB_REDIS_PING_INTERVAL_MS,
      .backoff_min_ms = HB_REDIS_BACKOFF_MIN_MS,
      .backoff_max_ms = HB_REDIS_BACKOFF_MAX_MS,
      .subscriber = subscriber,
      .on_handshake = subscriber ? sub_handshake : cmd_handshake,
      .on_ready = subscriber ? sub_ready_cb : cmd_ready_cb,
      .on_down = subscriber ? sub_down : cmd_down,
      .on_push = subscriber ? on_push : NULL,
      .ud = rb,
  };
  return hb_rclient_new(&rb->loop, &cfg);
}

static bool both_ready(rbroker *rb) {
  return cmd_state(rb) == HB_RCLIENT_READY && sub_state(rb) == HB_RCLIENT_READY;
}

static int redis_start(hb_broker *b) {
  rbroker *rb = (rbroker *)b;
  if (uv_loop_init(&rb->loop) != 0) return -1;
  rb->loop_open = true;
  hb_inbox_init(&rb->inbox, &rb->loop, rb);
  uv_timer_init(&rb->loop, &rb->tick);
  rb->tick.data = rb;
  uv_timer_start(&rb->tick, on_tick, HB_REDIS_TICK_MS, HB_REDIS_TICK_MS);
  rb->cmd = new_link(rb, "commands", false);
  rb->sub = new_link(rb, "subscribe", true);
  /* Heartbeats every presence_interval_ms, and at least three per TTL, so
   * that one late heartbeat never expires a live node. */
  uint32_t beat = (uint32_t)(rb->opts.presence_interval_ms > 0 ? rb->opts.presence_interval_ms
                                                                 : HB_DEFAULT_PRESENCE_INTERVAL_MS);
  uint32_t ttl_ms = (uint32_t)(rb->opts.presence_ttl_s > 0 ? rb->opts.presence_ttl_s : HB_DEFAULT_PRESENCE_TTL_S) * 1000;
  if (beat > ttl_ms / 3) beat = ttl_ms / 3;
  hb_rpresence_config pc = {
      .host = rb->host,
      .port = rb->port,
      .user = rb->user,
      .password = rb->password,
      .db = rb->db,
      .heartbeat_ms = beat,
  };
  if (rb->opts.presence) rb->presence = hb_rpresence_new(&rb->loop, &pc);
  if (uv_thread_create(&rb->thread, thread_main, rb) != 0) return -1;
  rb->thread_started = true;
  /* Give Redis a moment so a node that starts with the cluster is ready
   * when it says it is listening; if Redis is away it starts degraded.
   * A deadline on the clock, not a count of sleeps: on a loaded machine each
   * sleep overruns, and the wait must stay HB_REDIS_START_WAIT_MS. */
  uint64_t deadline_ns = uv_hrtime() + (uint64_t)HB_REDIS_START_WAIT_MS * 1000000u;
  while (!both_ready(rb) && uv_hrtime() < deadline_ns) uv_sleep(10);
  if (both_ready(rb)) return 0;
  hb_warn("redis: not up after %d ms; serving anyway (publishes are refused until it is)",
          HB_REDIS_START_WAIT_MS);
  return 0;
}

static bool redis_publish(hb_broker *b, hb_io *from, const hb_pub *p, hb_publish_result *r, hb_broker_done_fn done,
                          void *ctx) {
  rbroker *rb = (rbroker *)b;
  if (cmd_state(rb) != HB_RCLIENT_READY) {
    r->err = HB_E_BROKER_UNAVAILABLE;
    return true;
  }
  size_t body_len = 1 + p->name_len + p->prefix_len;
  long bytes = (long)body_len;
  if (atomic_fetch_add(&rb->queued_bytes, bytes) + bytes > HB_REDIS_MAX_QUEUED_BYTES) {
    /* Redis does not keep up: refuse rather than buffer without bound. */
    atomic_fetch_sub(&rb->queued_bytes, bytes);
    if (atomic_fetch_add(&rb->refused, 1) % HB_REDIS_LOG_EVERY == 0)
      hb_warn("redis: over %d bytes of publishes waiting for Redis: refusing publishes", HB_REDIS_MAX_QUEUED_BYTES);
    hb_metric_inc(HB_M_REDIS_PUBLISHES_FAILED);
    r->err = HB_E_BROKER_UNAVAILABLE;
    return true;
  }
  pubjob *j = hb_malloc(sizeof *j + body_len);
  memset(j, 0, sizeof *j);
  j->rb = rb;
  j->from = from;
  j->done = done;
  j->ctx = ctx;
  j->chan = p->chan;
  j->bytes = bytes;
  memcpy(j->r.message_id, p->message_id, HB_UUID_STR_BYTES);
  if (p->idem_key) {
    j->idem_len = (uint8_t)p->idem_key_len;
    memcpy(j->idem, p->idem_key, p->idem_key_len);
  }
  j->body_len = body_len;
  j->body[0] = (char)p->name_len;
  memcpy(j->body + 1, p->name, p->name_len);
  memcpy(j->body + 1 + p->name_len, p->prefix, p->prefix_len);
  hb_inbox_post(&rb->inbox, publish_job, j);
  return false;
}

static void redis_interest(hb_broker *b, const hb_chan_key *chan, bool on) {
  rbroker *rb = (rbroker *)b;
  interest_op *op = hb_malloc(sizeof *op);
  op->key = *chan;
  op->on = on;
  hb_inbox_post(&rb->inbox, interest_job, op);
}

static void redis_join(hb_broker *b, hb_io *from, const hb_join_req *req, hb_join_done_fn done, void *ctx) {
  rbroker *rb = (rbroker *)b;
  waiter *w = hb_calloc(1, sizeof *w);
  w->kind = W_JOIN;
  w->from = from;
  w->ctx = ctx;
  w->join_done = done;
  w->req = *req;
  w->nchans = HB_SCOPE__COUNT;
  memcpy(w->chans, req->chans, sizeof w->chans);
  w->live = req->live;
  hb_inbox_post(&rb->inbox, waiter_job, w);
}

static bool redis_live(hb_broker *b, hb_io *from, const hb_chan_key *chans, int n, hb_live_done_fn done, void *ctx) {
  rbroker *rb = (rbroker *)b;
  waiter *w = hb_calloc(1, sizeof *w);
  w->kind = W_LIVE;
  w->from = from;
  w->ctx = ctx;
  w->live_done = done;
  w->nchans = n > HB_SCOPE__COUNT ? HB_SCOPE__COUNT : n;
  memcpy(w->chans, chans, (size_t)w->nchans * sizeof *chans);
  w->live = true;
  hb_inbox_post(&rb->inbox, waiter_job, w);
  return false;
}

static void redis_page(hb_broker *b, hb_io *from, const hb_page_req *req, hb_page_done_fn done, void *ctx) {
  rbroker *rb = (rbroker *)b;
  waiter *w = hb_calloc(1, sizeof *w);
  w->kind = W_PAGE;
  w->from = from;
  w->ctx = ctx;
  w->page_done = done;
  w->preq = *req;
  w->nchans = 1;
  w->chans[0] = req->chan;
  hb_inbox_post(&rb->inbox, waiter_job, w);
}

/* This node's presence changes, to its links on the Redis thread (in order:
 * the inbox keeps it). */
typedef struct {
  size_t len;
  bool full;
  char batch[];
} presence_msg;

static void presence_job(void *ctx, void *arg) {
  rbroker *rb = ctx;
  presence_msg *pm = arg;
  if (rb && !rb->stopping && rb->presence) hb_rpresence_send(rb->presence, pm->batch, pm->len, pm->full);
  hb_free(pm);
}

static void redis_presence(hb_broker *b, const void *batch, size_t len, bool full) {
  rbroker *rb = (rbroker *)b;
  presence_msg *pm = hb_malloc(sizeof *pm + len);
  pm->len = len;
  pm->full = full;
  if (len) memcpy(pm->batch, batch, len);
  hb_inbox_post(&rb->inbox, presence_job, pm);
}

/* Every value redis_state returns, for hubbub_broker_state. */
static const char *const state_names[] = {"down", "connecting", "up", "backoff", NULL};

static const char *redis_state(hb_broker *b) {
  rbroker *rb = (rbroker *)b;
  hb_rclient_state c = cmd_state(rb), s = sub_state(rb);
  if (c == HB_RCLIENT_READY && s == HB_RCLIENT_READY) return "up";
  if (c == HB_RCLIENT_STOPPED || s == HB_RCLIENT_STOPPED) return "down";
  if (c == HB_RCLIENT_BACKOFF || s == HB_RCLIENT_BACKOFF) return "backoff";
  return "connecting";
}

static bool redis_healthy(hb_broker *b) { return both_ready((rbroker *)b); }

static void redis_stop(hb_broker *b) {
  rbroker *rb = (rbroker *)b;
  if (rb->thread_started) {
    hb_inbox_post(&rb->inbox, stop_job, NULL);
    uv_thread_join(&rb->thread);
  } else if (rb->loop_open) {
    /* start() failed before the thread ran: close the handles here. */
    if (rb->cmd) hb_rclient_stop(rb->cmd);
    if (rb->sub) hb_rclient_stop(rb->sub);
    hb_rpresence_stop(rb->presence);
    rb->presence = NULL;
    uv_close((uv_handle_t *)&rb->tick, NULL);
    hb_inbox_close(&rb->inbox, NULL);
    uv_run(&rb->loop, UV_RUN_DEFAULT);
  }
  /* The I/O threads are gone: what is still queued for Redis, and the
   * answers that found their thread gone, are answered here. */
  if (rb->loop_open) hb_inbox_destroy(&rb->inbox);
  while (rb->orphans) {
    answer *a = rb->orphans;
    rb->orphans = a->next;
    a->run(a, true);
  }
  if (rb->loop_open && uv_loop_close(&rb->loop) != 0) hb_warn("redis: loop closed with live handles");
  long refused = atomic_load(&rb->refused);
  if (refused) hb_info("redis: %ld publishes refused (Redis unreachable, slow or over the queue bound)", refused);
  rchan *c, *tmp;
  HASH_ITER(hh, rb->chans, c, tmp) {
    HASH_DEL(rb->chans, c);
    chan_free(c);
  }
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
    .idempotency = true,
    .start = redis_start,
    .publish = redis_publish,
    .interest = redis_interest,
    .join = redis_join,
    .live = redis_live,
    .page = redis_page,
    .presence = redis_presence,
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

hb_broker *hb_broker_redis_new(const char *url, const char *password, const hb_redis_opts *opts, char *errbuf,
                               size_t errlen) {
  rbroker *rb = hb_calloc(1, sizeof *rb);
  rb->base.ops = &redis_ops;
  atomic_init(&rb->cmd_state, HB_RCLIENT_STOPPED);
  atomic_init(&rb->sub_state, HB_RCLIENT_STOPPED);
  atomic_init(&rb->queued_bytes, 0);
  atomic_init(&rb->refused, 0);
  rb->opts = *opts;
  hb_list_init(&rb->read_queue);
  rb->keep_ms = ((int64_t)opts->history_ttl_s + HB_REDIS_CHANNEL_KEEP_S) * 1000;
  snprintf(rb->run_id, sizeof rb->run_id, "none");
  if (RAND_bytes((unsigned char *)&rb->rng, sizeof rb->rng) != 1) rb->rng = (uint64_t)hb_wall_ms();
  if (parse_url(rb, url, errbuf, errlen) != 0) {
    redis_stop(&rb->base);
    return NULL;
  }
  /* The URL's password wins; the config key serves URLs without one. */
  if (!rb->password && password && password[0]) rb->password = hb_strndup(password, strlen(password));
  return &rb->base;
}
