/*
 * test_redis.c - the Redis broker (redis.c) against a real redis-server:
 * interest becomes SUBSCRIBE and UNSUBSCRIBE; a publish runs the script
 * (offset and epoch from Redis, the message in the channel's stream, the
 * payload v3 on Pub/Sub) and is delivered from the subscription, once; a
 * message another node published is delivered in offset order, anything in
 * another format or of a foreign epoch ignored; a jump in the offsets is
 * filled from the stream, or told with a gap notice when the stream no
 * longer has the messages, and a lost history (new epoch) is told too; a
 * join with since= replays from Redis before the welcome; a history page
 * comes from Redis; an Idempotency-Key answers a repeat without a second
 * delivery; an error reply from Redis faults the link (publishes refused)
 * and it reconnects and subscribes again; the URL's parts (password,
 * database) are used.
 *
 * The broker's internals are private: everything goes through its public
 * ops, a real room connection (the in-process stack) and a second Redis
 * connection of the test's own (hiredis), as another node or redis-cli
 * would. The redis-server is the test's own (redis_server.h); without the
 * binary the tests are skipped, loudly.
 */
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "redis_server.h"
#include "stack.h"

#include "hubbub/alloc.h"
#include "hubbub/metrics.h"
#include "hubbub/publish.h"
#include "hubbub/redis.h"
#include "hubbub/uuid.h"

static hbt_redis srv;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The test's own connection to Redis (another node, or redis-cli). */
static redisContext *rconnect(void) {
  struct timeval tv = {2, 0};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", srv.port, tv);
  if (!c || c->err) {
    if (c) redisFree(c);
    return NULL;
  }
  redisSetTimeout(c, tv);
  return c;
}

/* A command whose reply must be there; its integer, or -1 for other replies. */
static long long redis_do(redisContext *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = redisvCommand(c, fmt, ap);
  va_end(ap);
  if (!r) fail_msg("redis: %s", c->errstr);
  long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
  if (r->type == REDIS_REPLY_ERROR) fail_msg("redis answered %s", r->str);
  freeReplyObject(r);
  return v;
}

static int group_setup(void **state) {
  (void)state;
  if (!hbt_redis_available()) {
    print_message("redis-server not found (make deps-all installs it): the Redis broker tests are skipped\n");
    return 0;
  }
  return hbt_redis_start(&srv, 0, NULL);
}

static int group_teardown(void **state) {
  (void)state;
  hbt_redis_stop(&srv);
  return 0;
}

/* --- the node under test ------------------------------------------------------- */

static hbt_stack stk;
static hbt_frame fr;

/* A node on redis://<auth>127.0.0.1:<port><path>. */
static void start_node(const char *auth, const char *path) {
  if (!srv.pid) skip(); /* no redis-server */
  hbt_stack_init(&stk);
  char url[256], err[256] = "";
  snprintf(url, sizeof url, "redis://%s127.0.0.1:%d%s", auth, srv.port, path);
  hb_redis_opts ro = {
      .history_size = stk.cfg.history_size,
      .history_ttl_s = stk.cfg.history_ttl_s,
      .idempotency_ttl_s = stk.cfg.idempotency_ttl_s,
      .presence_interval_ms = stk.cfg.presence_interval_ms,
      .presence_ttl_s = stk.cfg.presence_ttl_s,
      .presence = stk.cfg.presence,
  };
  stk.broker = hb_broker_redis_new(url, NULL, &ro, err, sizeof err);
  if (!stk.broker) fail_msg("%s: %s", url, err);
  hbt_stack_start(&stk); /* the broker's start waits for Redis */
  assert_true(stk.broker->ops->healthy(stk.broker));
  assert_string_equal(stk.broker->ops->state(stk.broker), "up");
}

static void chan(const hb_conn_claims *cl, char level, char *out, size_t cap) {
  char o[HB_UUID_STR_BYTES], p[HB_UUID_STR_BYTES], e[HB_UUID_STR_BYTES], s[HB_UUID_STR_BYTES];
  hb_uuid_format(&cl->org, o);
  hb_uuid_format(&cl->plugin, p);
  hb_uuid_format(&cl->event, e);
  hb_uuid_format(&cl->session, s);
  if (level == 'o') snprintf(out, cap, "hubbub:v1:o:%s:%s", o, p);
  else if (level == 'e') snprintf(out, cap, "hubbub:v1:e:%s:%s:%s", o, p, e);
  else snprintf(out, cap, "hubbub:v1:s:%s:%s:%s:%s", o, p, e, s);
}

static long long numsub(redisContext *c, const char *channel) {
  redisReply *r = redisCommand(c, "PUBSUB NUMSUB %s", channel);
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) fail_msg("PUBSUB NUMSUB: %s", c->errstr);
  long long n = r->element[1]->integer;
  freeReplyObject(r);
  return n;
}

/* Wait (bounded) until the node's subscription count on `channel` is `want`. */
static void wait_numsub(redisContext *c, const char *channel, long long want) {
  uint64_t end = now_ms() + HBT_WAIT_MS;
  while (numsub(c, channel) != want) {
    if (now_ms() > end) fail_msg("%s: %lld subscribers, want %lld", channel, numsub(c, channel), want);
    usleep(2000);
  }
}

static void wait_state(const char *want, bool is) {
  uint64_t end = now_ms() + HBT_WAIT_MS;
  while ((strcmp(stk.broker->ops->state(stk.broker), want) == 0) != is) {
    if (now_ms() > end) fail_msg("broker state %s, waiting for %s%s", stk.broker->ops->state(stk.broker), is ? "" : "not ", want);
    usleep(2000);
  }
}

/* --- the channel in Redis, as another node sees it ------------------------------------ */

/* A channel's position in Redis: {<chan>}:m holds e (the epoch, 16 hex
 * digits) and o (the last offset). */
typedef struct {
  char epoch[17];
  unsigned long long last;
} rpos;

static rpos redis_pos(redisContext *c, const char *channel) {
  redisReply *r = redisCommand(c, "HMGET {%s}:m e o", channel);
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING)
    fail_msg("HMGET {%s}:m: no epoch", channel);
  rpos p;
  snprintf(p.epoch, sizeof p.epoch, "%s", r->element[0]->str);
  p.last = r->element[1]->type == REDIS_REPLY_STRING ? strtoull(r->element[1]->str, NULL, 10) : 0;
  freeReplyObject(r);
  return p;
}

/* A message body as a node stores and publishes it: the name's length (1
 * byte), the name, the event's JSON without its closing brace (the
 * receiving node appends ,"offset":N}). `json` is given whole. */
static size_t body_of(char *out, const char *name, const char *json) {
  size_t nl = strlen(name), jl = strlen(json);
  assert_true(jl > 0 && json[jl - 1] == '}');
  out[0] = (char)nl;
  memcpy(out + 1, name, nl);
  memcpy(out + 1 + nl, json, jl - 1);
  return 1 + nl + jl - 1;
}

/* The payload v3 of the message at (epoch, offset): "HB" 3, the epoch,
 * the offset in decimal, ':', the body. */
static size_t payload(char *out, const char *epoch, unsigned long long off, const char *name, const char *json) {
  memcpy(out, "HB\x03", 3);
  memcpy(out + 3, epoch, 16);
  size_t n = 19 + (size_t)sprintf(out + 19, "%llu:", off);
  return n + body_of(out + n, name, json);
}

/* Redis's clock in milliseconds (the stream's t field). */
static long long redis_ms(redisContext *c) {
  redisReply *r = redisCommand(c, "TIME");
  assert_true(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
  long long ms = strtoll(r->element[0]->str, NULL, 10) * 1000 + strtoll(r->element[1]->str, NULL, 10) / 1000;
  freeReplyObject(r);
  return ms;
}

/* What another node's publish script does for message `off` of the
 * channel, atomically as the script does (MULTI/EXEC), with steps a test
 * may leave out: the offset taken (HSET o), the message kept in the stream
 * (XADD), published (PUBLISH). */
static void other_node(redisContext *c, const char *channel, const char *epoch, unsigned long long off,
                       const char *name, const char *json, bool keep, bool publish) {
  char p[512], b[512];
  long long now = redis_ms(c);
  redis_do(c, "MULTI");
  redis_do(c, "HSET {%s}:m o %llu", channel, off);
  if (keep) {
    size_t bn = body_of(b, name, json);
    char id[32];
    snprintf(id, sizeof id, "%llu-0", off);
    redis_do(c, "XADD {%s}:x %s t %lld b %b", channel, id, now, b, bn);
  }
  if (publish) {
    size_t n = payload(p, epoch, off, name, json);
    redis_do(c, "PUBLISH %s %b", channel, p, n);
  }
  redis_do(c, "EXEC");
}

/* --- the client side ------------------------------------------------------------------- */

/* The next frame is the event `json` (whole) at offset `off`. */
static void expect_event(int fd, hb_strbuf *in, const char *json, unsigned long long off) {
  hbt_ws_recv(fd, in, &fr);
  size_t jl = strlen(json) - 1;
  char want[1024];
  snprintf(want, sizeof want, "%.*s,\"offset\":%llu}", (int)jl, json, off);
  if (fr.opcode != 0x1 || strcmp(fr.payload, want) != 0)
    fail_msg("got opcode %d '%s', want '%s'", fr.opcode, fr.payload, want);
}

/* A member of a JSON text (a frame's payload), as a new reference. */
static json_t *member(const char *text, const char *path) {
  json_error_t je;
  json_t *root = json_loads(text, 0, &je);
  if (!root) fail_msg("not JSON: %s", text);
  json_t *v = root;
  char key[64];
  for (const char *p = path; v && *p;) {
    const char *dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : strlen(p);
    snprintf(key, sizeof key, "%.*s", (int)n, p);
    v = json_object_get(v, key);
    p += n + (dot ? 1 : 0);
  }
  if (!v) fail_msg("%s: no %s", text, path);
  json_incref(v);
  json_decref(root);
  return v;
}

static unsigned long long member_uint(const char *text, const char *path) {
  json_t *v = member(text, path);
  unsigned long long n = (unsigned long long)json_integer_value(v);
  json_decref(v);
  return n;
}

static void member_str(const char *text, const char *path, char *out, size_t cap) {
  json_t *v = member(text, path);
  snprintf(out, cap, "%s", json_string_value(v) ? json_string_value(v) : "");
  json_decref(v);
}

/* The resume string of a welcome's positions: h1.<e>.<o>.<e>.<o>.<e>.<o>. */
static void since_of(const char *welcome, char *out, size_t cap) {
  static const char *const scopes[] = {"session", "event", "organization"};
  size_t n = (size_t)snprintf(out, cap, "since=h1");
  for (int i = 0; i < 3; i++) {
    char path[64], e[32];
    snprintf(path, sizeof path, "positions.%s.epoch", scopes[i]);
    member_str(welcome, path, e, sizeof e);
    snprintf(path, sizeof path, "positions.%s.offset", scopes[i]);
    n += (size_t)snprintf(out + n, cap - n, ".%s.%llu", e, member_uint(welcome, path));
  }
}

/* Two frames in either order (an ack comes on the command connection's
 * reply, the event on the subscription's: no order between them). */
static void recv_ack_and_event(int fd, hb_strbuf *in, char *ack, char *event, size_t cap) {
  ack[0] = event[0] = '\0';
  for (int i = 0; i < 2; i++) {
    hbt_ws_recv(fd, in, &fr);
    if (strstr(fr.payload, "\"type\":\"ack\"")) snprintf(ack, cap, "%s", fr.payload);
    else if (strstr(fr.payload, "\"type\":\"event\"")) snprintf(event, cap, "%s", fr.payload);
    else fail_msg("neither an ack nor an event: %s", fr.payload);
  }
  if (!ack[0] || !event[0]) fail_msg("want an ack and an event, got '%s' '%s'", ack, event);
}

/* --- interest ------------------------------------------------------------------- */

static void test_interest_subscribes_and_unsubscribes(void **state) {
  (void)state;
  start_node("", "");
  redisContext *rc = rconnect();
  assert_non_null(rc);
  hb_conn_claims cl;
  hbt_claims(&stk, &cl);
  char s[192], e[192], o[192];
  chan(&cl, 's', s, sizeof s);
  chan(&cl, 'e', e, sizeof e);
  chan(&cl, 'o', o, sizeof o);
  assert_int_equal(numsub(rc, s), 0);
  hb_strbuf in = HB_STRBUF_INIT, in2 = HB_STRBUF_INIT;
  /* the welcome comes once the channels are live: subscribed already */
  int fd = hbt_room_open(&stk, hbt_io(&stk, 0), &cl, "subscribe=n", &in, NULL, &fr);
  assert_int_equal(numsub(rc, s), 1);
  assert_int_equal(numsub(rc, e), 1);
  assert_int_equal(numsub(rc, o), 1);
  int fd2 = hbt_room_open(&stk, hbt_io(&stk, 0), &cl, "subscribe=m", &in2, NULL, &fr);
  close(fd); /* the other connection keeps the channels */
  hbt_ws_text(fd2, "{\"type\":\"ping\"}");
  hbt_ws_recv(fd2, &in2, &fr);
  assert_int_equal(numsub(rc, s), 1);
  close(fd2); /* the last one: UNSUBSCRIBE */
  wait_numsub(rc, s, 0);
  wait_numsub(rc, e, 0);
  wait_numsub(rc, o, 0);
  redisFree(rc);
  hb_strbuf_free(&in);
  hb_strbuf_free(&in2);
  hbt_stack_stop(&stk);
}

/* --- the node's own publishes ----------------------------------------------------------- */

/* A publish runs the script: the ack carries Redis's offset and epoch, the
 * stream keeps the message, the payload v3 goes out on the channel, and the
 * publisher's room gets the event once, from the subscription. */
static void test_own_publish(void **state) {
  (void)state;
  start_node("", "");
  redisContext *rc = rconnect(), *watch = rconnect();
  hb_conn_claims cl;
  hbt_claims(&stk, &cl);
  char s[192];
  chan(&cl, 's', s, sizeof s);
  redisReply *r = redisCommand(watch, "SUBSCRIBE %s", s);
  assert_non_null(r);
  freeReplyObject(r);
  hb_strbuf in = HB_STRBUF_INIT;
  int fd = hbt_room_open(&stk, hbt_io(&stk, 0), &cl, "subscribe=n", &in, NULL, &fr);
  char wepoch[32];
  member_str(fr.payload, "positions.session.epoch", wepoch, sizeof wepoch);
  assert_int_equal(member_uint(fr.payload, "positions.session.offset"), 0);
  rpos p0 = redis_pos(rc, s); /* the join made the channel's epoch */
  assert_string_equal(p0.epoch, wepoch);
  hbt_ws_text(fd, "{\"type\":\"publish\",\"eventName\":\"n\",\"data\":{\"mine\":1},\"id\":\"p1\"}");
  static char ack[sizeof fr.payload], event[sizeof fr.payload];
  recv_ack_and_event(fd, &in, ack, event, sizeof ack);
  char aepoch[32];
  member_str(ack, "epoch", aepoch, sizeof aepoch);
  assert_string_equal(aepoch, wepoch);
  assert_int_equal(member_uint(ack, "offset"), 1);
  assert_non_null(strstr(event, "{\"type\":\"event\",\"eventName\":\"n\",\"data\":{\"mine\":1},\"scope\":\"session\""));
  assert_int_equal(member_uint(event, "offset"), 1);
  assert_int_equal(redis_pos(rc, s).last, 1);
  /* on the wire: "HB" 3, the epoch, "1:", the name, the JSON up to its offset */
  const char *off = strstr(event, ",\"offset\":");
  assert_non_null(off);
  size_t plen = (size_t)(off - event);
  assert_int_equal(redisGetReply(watch, (void **)&r), REDIS_OK);
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  assert_int_equal(r->elements, 3);
  assert_string_equal(r->element[0]->str, "message");
  assert_string_equal(r->element[1]->str, s);
  redisReply *pl = r->element[2];
  assert_int_equal(pl->len, 3 + 16 + 2 + 2 + plen);
  assert_memory_equal(pl->str, "HB\x03", 3);
  assert_memory_equal(pl->str + 3, wepoch, 16);
  assert_memory_equal(pl->str + 19, "1:\x01n", 4);
  assert_memory_equal(pl->str + 23, event, plen);
  freeReplyObject(r);
  /* the stream: id 1-0, t (Redis's clock) and b (the body) */
  r = redisCommand(rc, "XRANGE {%s}:x - +", s);
  assert_true(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
  assert_string_equal(r->element[0]->element[0]->str, "1-0");
  redisReply *f = r->element[0]->element[1];
  assert_int_equal(f->elements, 4);
  assert_string_equal(f->element[0]->str, "t");
  assert_string_equal(f->element[2]->str, "b");
  assert_int_equal(f->element[3]->len, 2 + plen);
  assert_memory_equal(f->element[3]->str + 2, event, plen);
  freeReplyObject(r);
  /* delivered once: the next event is the next publish */
  hbt_ws_text(fd, "{\"type\":\"publish\",\"eventName\":\"n\",\"data\":{\"mine\":2},\"id\":\"p2\"}");
  recv_ack_and_event(fd, &in, ack, event, sizeof ack);
  assert_int_equal(member_uint(event, "offset"), 2);
  redisFree(watch);
  redisFree(rc);
  hb_strbuf_free(&in);
  close(fd);
  hbt_stack_stop(&stk);
}

/* The same idempotency_key twice: the first answer again, one delivery. */
static void test_idempotent_publish(void **state) {
  (void)state;
  start_node("", "");
  hb_conn_claims cl;
  hbt_claims(&stk, &cl);
  hb_strbuf in = HB_STRBUF_INIT;
  int fd = hbt_room_open(&stk, hbt_io(&stk, 0), &cl, "subscribe=n", &in, NULL, &fr);
  static char ack[sizeof fr.payload], event[sizeof fr.payload], ack2[sizeof fr.payload];
  hbt_ws_text(fd, "{\"type\":\"publish\",\"eventName\":\"n\",\"data\":{\"k\":1},\"id\":\"a\",\"idempotency_key\":\"k-1\"}");
  recv_ack_and_event(fd, &in, ack, event, sizeof ack);
  hbt_ws_text(fd, "{\"type\":\"publish\",\"eventName\":\"n\",\"data\":{\"k\":1},\"id\":\"a\",\"idempotency_key\":\"k-1\"}");
  hbt_ws_recv(fd, &in, &fr);
  snprintf(ack2, sizeof ack2, "%s", fr.payload);
  assert_non_null(strstr(ack2, "\"type\":\"ack\""));
  assert_int_equal(member_uint(ack2, "offset"), member_uint(ack, "offset"));
  char m1[64], m2[64];
  member_str(ack, "message_id", m1, sizeof m1);
  member_str(ack2, "message_id", m2, sizeof m2);
  assert_string_equal(m1, m2);
  /* not delivered again: the next event is the next publish */
  hbt_ws_text(fd, "{\"type\":\"publish\",\"eventName\":\"n\",\"data\":{\"k\":2},\"id\":\"b\"}");
  recv_ack_and_event(fd, &in, ack, event, sizeof ack);
  assert_int_equal(member_uint(event, "offset"), member_uint(ack2, "offset") + 1);
  hb_strbuf_free(&in);
  close(fd);
  hbt_stack_stop(&stk);
}

/* --- messages from other nodes ------------------------------------------------------------ */

static void test_remote_messages(void **state) {
  (void)state;
  start_node("", "");
  redisContext *rc = rconnect();
  hb_conn_claims cl;
  hbt_claims(&stk, &cl);
  char s[192], o[192];
  chan(&cl, 's', s, sizeof s);
  chan(&cl, 'o', o, sizeof o);
  hb_strbuf in = HB_STRBUF_INIT;
  int fd = hbt_room_open(&stk, hbt_io(&stk, 0), &cl, "subscribe=n", &in, NULL, &fr);
  rpos ps = redis_pos(rc, s), po = redis_pos(rc, o);
  char p[512];
  /* not ours: ignored, in the order Redis delivers them, before the good one */
  redis_do(rc, "PUBLISH %s %b", s, "hello", (size_t)5);
  redis_do(rc, "PUBLISH %s %b", s, "", (size_t)0);
  size_t n = payload(p, ps.epoch, ps.last + 1, "n", "{\"old\":\"version\"}");
  p[2] = 2;
  redis_do(rc, "PUBLISH %s %b", s, p, n);
  redis_do(rc, "PUBLISH %s %b", s, p, (size_t)12); /* cut inside the header */
  n = payload(p, "xyz3456789abcdef", ps.last + 1, "n", "{\"bad\":\"epoch\"}");
  redis_do(rc, "PUBLISH %s %b", s, p, n);
  n = payload(p, ps.epoch, ps.last + 1, "n", "{\"no\":\"colon\"}");
  p[20] = '-';
  redis_do(rc, "PUBLISH %s %b", s, p, n);
  n = payload(p, ps.epoch, 0, "n", "{\"offset\":0}");
  redis_do(rc, "PUBLISH %s %b", s, p, n);
  n = payload(p, ps.epoch, ps.last + 1, "n", "{}");
  p[21] = (char)200; /* a name longer than names are */
  redis_do(rc, "PUBLISH %s %b", s, p, n);
  p[21] = 50; /* a name longer than the payload */
  redis_do(rc, "PUBLISH %s %b", s, p, n);
  /* the good ones, in offset order per channel: a name nobody here
   * subscribed to takes its offset and is not delivered */
  other_node(rc, s, ps.epoch, ps.last + 1, "m", "{\"not\":\"subscribed\"}", true, true);
  other_node(rc, s, ps.epoch, ps.last + 2, "n", "{\"type\":\"event\",\"eventName\":\"n\",\"data\":{\"x\":0.10}}", true,
             true);
  expect_event(fd, &in, "{\"type\":\"event\",\"eventName\":\"n\",\"data\":{\"x\":0.10}}", ps.last + 2);
  /* a repeat of an offset delivered already is not delivered again */
  other_node(rc, s, ps.epoch, ps.last + 2, "n", "{\"again\":1}", false, true);
  other_node(rc, o, po.epoch, po.last + 1, "n", "{\"to\":\"org\"}", true, true);
  expect_event(fd, &in, "{\"to\":\"org\"}", po.last + 1);
  /* a message of an epoch the stream does not have (a node on another
   * database): read, found foreign, ignored */
  n = payload(p, "0123456789abcdef", ps.last + 3, "n", "{\"foreign\":1}");
  redis_do(rc, "PUBLISH %s %b", s, p, n);
  other_node(rc, s, ps.epoch, ps.last + 3, "n", "{\"after\":\"foreign\"}", true, true);
  expect_event(fd, &in, "{\"after\":\"foreign\"}", ps.last + 3);
  redisFree(rc);
  hb_strbuf_free(&in);
  close(fd);
  hbt_stack_stop(&stk);
}

/* An offset that jumps: what the stream still has is read and delivered
 * first, in order; what it no longer has is told with a gap notice, to
 * every subscriber of the channel on the node, whatever its names. */
static void test_gap_filled_or_told(void **state) {
  (void)state;
  start_node("", "");
  redisContext *rc = rconnect();
  hb_conn_claims cl;
  hbt_claims(&stk, &cl);
  char s[192];
  chan(&cl, 's', s, sizeof s);
  hb_strbuf in = HB_STRBUF_INIT, in2 = HB_STRBUF_INIT;
  int fd = hbt_room_open(&stk, hbt_io(&stk, 0), &cl, "subscribe=n", &in, NULL, &fr);
  int fd2 = hbt_room_open(&stk, hbt_io(&stk, 0), &cl, "subscribe=other", &in2, NULL, &fr);
  rpos ps = redis_pos(rc, s);
  unsigned long long L = ps.last;
  long long filled = hb_metric_get(HB_M_REDIS_GAPS_FILLED), filled_msgs = hb_metric_get(HB_M_REDIS_GAP_FILLED_MESSAGES);
  long long notices = hb_metric_get(HB_M_REDIS_GAP_NOTICES), lost = hb_metric_get(HB_M_REDIS_MESSAGES_LOST);
  /* two messages kept but not published (this node missed them), then one published */
  other_node(rc, s, ps.epoch, L + 1, "n", "{\"i\":1}", true, false);
  other_node(rc, s, ps.epoch, L + 2, "n", "{\"i\":2}", true, false);
  other_node(rc, s, ps.epoch, L + 3, "n", "{\"i\":3}", true, true);
  expect_event(fd, &in, "{\"i\":1}", L + 1);
  expect_event(fd, &in, "{\"i\":2}", L + 2);
  expect_event(fd, &in, "{\"i\":3}", L + 3);
  /* one fill, which read the published one from the stream too (it was
   * there before it reached the node) */
  assert_int_equal(hb_metric_get(HB_M_REDIS_GAPS_FILLED), filled + 1);
  assert_int_equal(hb_metric_get(HB_M_REDIS_GAP_FILLED_MESSAGES), filled_msgs + 3);
  /* four offsets taken that the stream no longer has, then one published */
  other_node(rc, s, ps.epoch, L + 8, "n", "{\"i\":8}", true, true);
  char gap[256];
  snprintf(gap, sizeof gap, "{\"type\":\"gap\",\"scope\":\"session\",\"epoch\":\"%s\",\"offset\":%llu,\"reason\":\"trimmed\"}",
           ps.epoch, L + 7);
  hbt_ws_recv(fd, &in, &fr);
  assert_string_equal(fr.payload, gap);
  expect_event(fd, &in, "{\"i\":8}", L + 8);
  hbt_ws_recv(fd2, &in2, &fr); /* subscribed to another name: the notice all the same */
  assert_string_equal(fr.payload, gap);
  assert_int_equal(hb_metric_get(HB_M_REDIS_GAP_NOTICES), notices + 1);
  assert_int_equal(hb_metric_get(HB_M_REDIS_MESSAGES_LOST), lost + 4);
  redisFree(rc);
  hb_strbuf_free(&in);
  hb_strbuf_free(&in2);
  close(fd);
  close(fd2);
  hbt_stack_stop(&stk);
}

/* The channel's history lost in Redis (its keys gone, as after a restart
 * without persistence): the next publish starts a new epoch at offset 1,
 * and the subscribers are told before they get it. */
static void test_epoch_changed_told(void **state) {
  (void)state;
  start_node("", "");
  redisContext *rc = rconnect();
  hb_conn_claims cl;
  hbt_claims(&stk, &cl);
  char s[192];
  chan(&cl, 's', s, sizeof s);
  hb_strbuf in = HB_STRBUF_INIT;
  int fd = hbt_room_open(&stk, hbt_io(&stk, 0), &cl, "subscribe=n", &in, NULL, &fr);
  rpos p0 = redis_pos(rc, s);
  static char ack[sizeof fr.payload], event[sizeof fr.payload];
  hbt_ws_text(fd, "{\"type\":\"publish\",\"eventName\":\"n\",\"data\":{\"before\":1},\"id\":\"a\"}");
  recv_ack_and_event(fd, &in, ack, event, sizeof ack);
  redis_do(rc, "DEL {%s}:m {%s}:x", s, s);
  hbt_ws_text(fd, "{\"type\":\"publish\",\"eventName\":\"n\",\"data\":{\"after\":1}}");
  hbt_ws_recv(fd, &in, &fr);
  rpos p1 = redis_pos(rc, s);
  assert_string_not_equal(p1.epoch, p0.epoch);
  assert_int_equal(p1.last, 1);
  char gap[256];
  snprintf(gap, sizeof gap, "{\"type\":\"gap\",\"scope\":\"session\",\"epoch\":\"%s\",\"offset\":0,\"reason\":\"epoch_changed\"}",
           p1.epoch);
  assert_string_equal(fr.payload, gap);
  hbt_ws_recv(fd, &in, &fr);
  assert_non_null(strstr(fr.payload, "\"data\":{\"after\":1}"));
  assert_int_equal(member_uint(fr.payload, "offset"), 1);
  redisFree(rc);
  hb_strbuf_free(&in);
  close(fd);
  hbt_stack_stop(&stk);
}

/* --- joins and pages ---------------------------------------------------------------------- */

/* A reconnect with since= gets what it missed of its names from Redis
 * (every scope, in order), then welcome recovered:true; a position of
 * another epoch gets recovered:false and nothing. A history page comes
 * from the stream too. */
static void test_join_replays_and_page(void **state) {
  (void)state;
  start_node("", "");
  hb_conn_claims cl;
  hbt_claims(&stk, &cl);
  hb_strbuf in = HB_STRBUF_INIT, in2 = HB_STRBUF_INIT;
  int fd = hbt_room_open(&stk, hbt_io(&stk, 0), &cl, "subscribe=n", &in, NULL, &fr);
  char since[512];
  since_of(fr.payload, since, sizeof since);
  static char ack[sizeof fr.payload], event[sizeof fr.payload];
  hbt_ws_text(fd, "{\"type\":\"publish\",\"eventName\":\"n\",\"data\":{\"i\":1},\"id\":\"a\"}");
  recv_ack_and_event(fd, &in, ack, event, sizeof ack);
  hbt_ws_text(fd, "{\"type\":\"publish\",\"eventName\":\"m\",\"data\":{\"i\":2},\"id\":\"b\"}");
  hbt_ws_recv(fd, &in, &fr); /* the ack: fd did not subscribe to m */
  hbt_ws_text(fd, "{\"type\":\"publish\",\"eventName\":\"n\",\"data\":{\"i\":3},\"scope\":\"event\",\"id\":\"c\"}");
  recv_ack_and_event(fd, &in, ack, event, sizeof ack);
  /* recovered: n's two messages (session 1, event 1), not m's */
  char q[640];
  snprintf(q, sizeof q, "subscribe=n&%s", since);
  int fd2 = hbt_room_upgrade(&stk, hbt_io(&stk, 0), &cl, q, &in2, NULL);
  hbt_ws_recv(fd2, &in2, &fr);
  assert_non_null(strstr(fr.payload, "\"data\":{\"i\":1}"));
  hbt_ws_recv(fd2, &in2, &fr);
  assert_non_null(strstr(fr.payload, "\"data\":{\"i\":3}"));
  hbt_ws_recv(fd2, &in2, &fr);
  assert_non_null(strstr(fr.payload, "\"type\":\"welcome\""));
  assert_non_null(strstr(fr.payload, "\"recovered\":true"));
  assert_int_equal(member_uint(fr.payload, "positions.session.offset"), 2);
  assert_int_equal(member_uint(fr.payload, "positions.event.offset"), 1);
  close(fd2);
  hb_strbuf_free(&in2);
  /* another epoch: recovered:false, nothing replayed */
  char *e = strstr(since, "h1.") + 3;
  memcpy(e, "0123456789abcdef", 16);
  snprintf(q, sizeof q, "subscribe=n&%s", since);
  fd2 = hbt_room_upgrade(&stk, hbt_io(&stk, 0), &cl, q, &in2, NULL);
  hbt_ws_recv(fd2, &in2, &fr);
  assert_non_null(strstr(fr.payload, "\"type\":\"welcome\""));
  assert_non_null(strstr(fr.payload, "\"recovered\":false"));
  assert_non_null(strstr(fr.payload, "\"recovery\":{\"failed\":{\"session\":\"epoch_changed\"}}"));
  close(fd2);
  hb_strbuf_free(&in2);
  /* GET /api/v1/history: the session channel's two messages, from Redis */
  int hfd;
  hbt_attach(hbt_io(&stk, 0), &hfd, 0);
  char ev[HB_UUID_STR_BYTES], se[HB_UUID_STR_BYTES];
  hb_uuid_format(&cl.event, ev);
  hb_uuid_format(&cl.session, se);
  hb_strbuf req = HB_STRBUF_INIT;
  hb_strbuf_addf(&req,
                 "GET /api/v1/history?scope=session&event_id=%s&session_id=%s HTTP/1.1\r\nHost: t\r\n"
                 "Authorization: %s\r\n\r\n",
                 ev, se, stk.api_token);
  hbt_send(hfd, req.buf, req.len);
  hb_strbuf_free(&req);
  static hbt_http_resp hr;
  hbt_recv_http(hfd, &in2, &hr, false);
  assert_int_equal(hr.status, 200);
  assert_int_equal(member_uint(hr.body, "offset"), 2);
  json_t *msgs = member(hr.body, "messages");
  assert_int_equal(json_array_size(msgs), 2);
  json_decref(msgs);
  close(hfd);
  hb_strbuf_free(&in2);
  hb_strbuf_free(&in);
  close(fd);
  hbt_stack_stop(&stk);
}

/* --- faults ------------------------------------------------------------------------ */

/* How many NOAUTH error replies Redis has sent (INFO errorstats). */
static long long noauth_replies(redisContext *c) {
  redisReply *r = redisCommand(c, "INFO errorstats");
  if (!r || r->type != REDIS_REPLY_STRING) fail_msg("INFO errorstats: %s", c->errstr);
  long long n = 0;
  const char *q = strstr(r->str, "errorstat_NOAUTH:count=");
  if (q) n = strtoll(q + strlen("errorstat_NOAUTH:count="), NULL, 10);
  freeReplyObject(r);
  return n;
}

/* Redis starts requiring a password the node does not have: its links are
 * killed, the reconnect's commands get -NOAUTH error replies, the link is
 * faulted (not up, publishes refused with broker_unavailable) and retried
 * with backoff; once Redis lets it in again it is up and subscribed again. */
static void test_error_reply_faults_and_reconnects(void **state) {
  (void)state;
  start_node("", "");
  redisContext *rc = rconnect();
  hb_conn_claims cl;
  hbt_claims(&stk, &cl);
  char s[192];
  chan(&cl, 's', s, sizeof s);
  hb_strbuf in = HB_STRBUF_INIT;
  int fd = hbt_room_open(&stk, hbt_io(&stk, 0), &cl, "subscribe=n", &in, NULL, &fr);
  wait_numsub(rc, s, 1);
  long long noauth = noauth_replies(rc);
  redis_do(rc, "CONFIG SET requirepass %s", "only-the-test-knows");
  redis_do(rc, "CLIENT KILL TYPE pubsub");
  redis_do(rc, "CLIENT KILL TYPE normal SKIPME yes");
  wait_state("up", false);
  /* the reconnect's commands were answered with errors (the marker: Redis's own count) */
  uint64_t end = now_ms() + HBT_WAIT_MS;
  while (noauth_replies(rc) < noauth + 2) {
    if (now_ms() > end) fail_msg("the node's reconnect got no NOAUTH error replies");
    usleep(5000);
  }
  assert_false(stk.broker->ops->healthy(stk.broker)); /* faulted by them, not up */
  assert_false(stk.broker->ops->healthy(stk.broker));
  hbt_ws_text(fd, "{\"type\":\"publish\",\"eventName\":\"n\",\"data\":{},\"id\":\"p\"}");
  hbt_ws_recv(fd, &in, &fr);
  assert_string_equal(fr.payload, "{\"type\":\"error\",\"id\":\"p\",\"code\":\"broker_unavailable\","
                                  "\"message\":\"the cluster cannot be reached\"}");
  redis_do(rc, "CONFIG SET requirepass %s", "");
  wait_state("up", true);
  wait_numsub(rc, s, 1); /* subscribed again in the reconnect's handshake */
  rpos ps = redis_pos(rc, s);
  other_node(rc, s, ps.epoch, ps.last + 1, "n", "{\"after\":\"reconnect\"}", true, true);
  expect_event(fd, &in, "{\"after\":\"reconnect\"}", ps.last + 1);
  redisFree(rc);
  hb_strbuf_free(&in);
  close(fd);
  hbt_stack_stop(&stk);
}

/* --- the URL -------------------------------------------------------------------------- */

/* The URL's password, percent-decoded (it holds '@', ':' and '/'), and its
 * database: the node gets in, and its connections use that database. */
static void test_url_password_and_db(void **state) {
  (void)state;
  if (!srv.pid) skip(); /* no redis-server */
  redisContext *rc = rconnect();
  redis_do(rc, "CONFIG SET requirepass %s", "p@ss:w/rd"); /* this connection stays in */
  start_node(":p%40ss%3Aw%2Frd@", "/3");
  redisReply *r = redisCommand(rc, "CLIENT LIST");
  assert_non_null(r);
  int in_db3 = 0;
  for (const char *q = r->str; (q = strstr(q, " db=3 ")); q++) in_db3++;
  freeReplyObject(r);
  assert_int_equal(in_db3, 4); /* the node's publish and subscribe connections, and presence's two */
  hbt_stack_stop(&stk);
  redis_do(rc, "CONFIG SET requirepass %s", "");
  redisFree(rc);
}

static void test_url_errors(void **state) {
  (void)state;
  static const struct {
    const char *url, *why;
  } bad[] = {
      {"rediss://127.0.0.1", "TLS"},
      {"http://127.0.0.1", "redis://"},
      {"redis://", "bad host"},
      {"redis://:pw@", "bad host"},
      {"redis://127.0.0.1:0", "bad port"},
      {"redis://127.0.0.1:65536", "bad port"},
      {"redis://127.0.0.1:6x", "bad port"},
      {"redis://127.0.0.1/x", "bad database"},
      {"redis://127.0.0.1/1000001", "bad database"},
      {"redis://[::1", "bad host"},
  };
  hb_redis_opts ro = {.history_size = 100, .history_ttl_s = 300, .idempotency_ttl_s = 300};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char err[256] = "";
    hb_broker *b = hb_broker_redis_new(bad[i].url, NULL, &ro, err, sizeof err);
    if (b) fail_msg("%s accepted", bad[i].url);
    if (!strstr(err, bad[i].why)) fail_msg("%s: '%s' lacks '%s'", bad[i].url, err, bad[i].why);
  }
  char err[256];
  hb_broker *b = hb_broker_redis_new("redis://user:pw@[::1]:6380/2", "ignored", &ro, err, sizeof err);
  assert_non_null(b);
  assert_string_equal(b->ops->state(b), "down");
  assert_false(b->ops->healthy(b));
  b->ops->stop(b); /* never started: frees */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_url_errors),
      HBT_TEST(test_interest_subscribes_and_unsubscribes),
      HBT_TEST(test_own_publish),
      HBT_TEST(test_idempotent_publish),
      HBT_TEST(test_remote_messages),
      HBT_TEST(test_gap_filled_or_told),
      HBT_TEST(test_epoch_changed_told),
      HBT_TEST(test_join_replays_and_page),
      HBT_TEST(test_error_reply_faults_and_reconnects),
      HBT_TEST(test_url_password_and_db),
  };
  return cmocka_run_group_tests_name("redis", tests, group_setup, group_teardown);
}
