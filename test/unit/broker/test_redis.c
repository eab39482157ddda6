/*
 * test_redis.c - the Redis broker (redis.c) against a real redis-server:
 * interest becomes SUBSCRIBE and UNSUBSCRIBE, a message another node
 * published in the payload format is delivered to a subscribed room
 * connection, messages in another format are ignored, the node's own echo
 * is ignored, what the node PUBLISHes is the documented payload, an error
 * reply from Redis faults the link (publishes refused) and it reconnects
 * and subscribes again, and the URL's parts (password, database) are used.
 *
 * The broker's internals are private: everything goes through its public
 * ops, a real room connection (the in-process stack) and a second Redis
 * connection of the test's own (hiredis), as another node or redis-cli
 * would. The redis-server is started here (posix_spawn) on a private port
 * with a temporary directory and stopped at the end; without the binary
 * (`make deps-all` installs it) the tests are skipped, loudly.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "stack.h"

#include "hubbub/alloc.h"
#include "hubbub/publish.h"
#include "hubbub/redis.h"
#include "hubbub/uuid.h"

extern char **environ;

#define REDIS_START_MS 5000

static struct {
  pid_t pid;
  int port;
  char dir[64];
} srv;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int free_port(void) {
  struct sockaddr_in a;
  socklen_t alen = sizeof a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(s, (struct sockaddr *)&a, &alen) != 0)
    return -1;
  close(s);
  return ntohs(a.sin_port);
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
  srv.pid = 0;
  if (access("/usr/bin/redis-server", X_OK) != 0 && system("command -v redis-server >/dev/null 2>&1") != 0) {
    print_message("redis-server not found (make deps-all installs it): the Redis broker tests are skipped\n");
    return 0;
  }
  srv.port = free_port();
  snprintf(srv.dir, sizeof srv.dir, "/tmp/hb_test_redis.XXXXXX");
  if (srv.port < 0 || !mkdtemp(srv.dir)) return -1;
  char port[16];
  snprintf(port, sizeof port, "%d", srv.port);
  char *argv[] = {"redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                  "--protected-mode", "no", "--dir", srv.dir, NULL};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  int r = posix_spawnp(&srv.pid, "redis-server", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (r != 0) {
    print_error("posix_spawn redis-server: %s\n", strerror(r));
    srv.pid = 0;
    return -1;
  }
  uint64_t end = now_ms() + REDIS_START_MS;
  for (;;) {
    redisContext *c = rconnect();
    if (c) {
      redisReply *p = redisCommand(c, "PING");
      bool ok = p && p->type == REDIS_REPLY_STATUS && strcmp(p->str, "PONG") == 0;
      if (p) freeReplyObject(p);
      redisFree(c);
      if (ok) return 0;
    }
    if (now_ms() > end) {
      print_error("redis-server on port %d did not answer within %d ms\n", srv.port, REDIS_START_MS);
      return -1;
    }
    usleep(20000);
  }
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

static int group_teardown(void **state) {
  (void)state;
  if (!srv.pid) return 0;
  kill(srv.pid, SIGTERM);
  uint64_t end = now_ms() + REDIS_START_MS;
  int st;
  while (waitpid(srv.pid, &st, WNOHANG) == 0) {
    if (now_ms() > end) {
      kill(srv.pid, SIGKILL);
      waitpid(srv.pid, &st, 0);
      break;
    }
    usleep(10000);
  }
  nftw(srv.dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
  return 0;
}

/* --- the node under test ------------------------------------------------------- */

static hbt_stack stk;
static hbt_frame fr;

/* A node on redis://<auth>127.0.0.1:<port><path>. */
static void start_node(const char *auth, const char *path) {
  if (!srv.pid) skip();
  hbt_stack_init(&stk);
  char url[256], err[256] = "";
  snprintf(url, sizeof url, "redis://%s127.0.0.1:%d%s", auth, srv.port, path);
  stk.broker = hb_broker_redis_new(url, NULL, err, sizeof err);
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

/* The payload another node would PUBLISH: "HB" 2, its node id, the name's
 * length and the name, the event's JSON but its closing brace (the node
 * that records it appends its offset: "...,"offset":N}"). `json` is given
 * whole here. */
static size_t payload(char *out, const char *node16, const char *name, const char *json) {
  size_t n = 0, nl = strlen(name), jl = strlen(json);
  assert_true(jl > 0 && json[jl - 1] == '}');
  memcpy(out, "HB\x02", 3);
  memcpy(out + 3, node16, 16);
  out[19] = (char)nl;
  n = 20;
  memcpy(out + n, name, nl);
  n += nl;
  memcpy(out + n, json, jl - 1);
  return n + jl - 1;
}

static const char other_node[16] = "another-node-id!";

static void rpublish(redisContext *c, const char *channel, const char *p, size_t n) {
  redis_do(c, "PUBLISH %s %b", channel, p, n);
}

/* The event `json` (whole), as recorded here: with its offset in this node's channel. */
static void expect_event(int fd, hb_strbuf *in, const char *json) {
  hbt_ws_recv(fd, in, &fr);
  size_t jl = strlen(json) - 1;
  const char *tail = fr.payload + jl;
  char *end;
  if (fr.opcode != 0x1 || strncmp(fr.payload, json, jl) != 0 || strncmp(tail, ",\"offset\":", 10) != 0 ||
      strtoull(tail + 10, &end, 10) == 0 || strcmp(end, "}") != 0)
    fail_msg("got opcode %d '%s', want '%.*s,\"offset\":N}'", fr.opcode, fr.payload, (int)jl, json);
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
  int fd = hbt_room_open(&stk, hbt_io(&stk, 0), &cl, "subscribe=n", &in, NULL, &fr);
  wait_numsub(rc, s, 1);
  wait_numsub(rc, e, 1);
  wait_numsub(rc, o, 1);
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

/* --- messages from Redis ------------------------------------------------------------ */

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
  wait_numsub(rc, o, 1);
  char p[512];
  /* not ours: ignored, in the order Redis delivers them, before the good one */
  rpublish(rc, s, "hello", 5);
  rpublish(rc, s, "", 0);
  size_t n = payload(p, other_node, "n", "{\"bad\":\"version\"}");
  p[2] = 9;
  rpublish(rc, s, p, n);
  n = payload(p, other_node, "n", "{}");
  rpublish(rc, s, p, 19); /* cut inside the header */
  n = payload(p, other_node, "n", "{}");
  p[19] = (char)200; /* a name longer than names are */
  rpublish(rc, s, p, n);
  p[19] = 50; /* a name longer than the payload */
  rpublish(rc, s, p, n);
  n = payload(p, other_node, "m", "{\"not\":\"subscribed\"}");
  rpublish(rc, s, p, n);
  /* the good ones: session and organization channels */
  n = payload(p, other_node, "n", "{\"type\":\"event\",\"eventName\":\"n\",\"data\":{\"x\":0.10}}");
  rpublish(rc, s, p, n);
  expect_event(fd, &in, "{\"type\":\"event\",\"eventName\":\"n\",\"data\":{\"x\":0.10}}");
  n = payload(p, other_node, "n", "{\"to\":\"org\"}");
  rpublish(rc, o, p, n);
  expect_event(fd, &in, "{\"to\":\"org\"}");
  redisFree(rc);
  hb_strbuf_free(&in);
  close(fd);
  hbt_stack_stop(&stk);
}

/* What the node PUBLISHes, and its own echo ignored: the publisher's room
 * gets the event once (locally), never a second time from Redis. */
static void test_own_publish_and_echo(void **state) {
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
  wait_numsub(rc, s, 2);
  hbt_ws_text(fd, "{\"type\":\"publish\",\"eventName\":\"n\",\"data\":{\"mine\":1}}");
  hbt_ws_recv(fd, &in, &fr);
  assert_non_null(strstr(fr.payload, "{\"type\":\"event\",\"eventName\":\"n\",\"data\":{\"mine\":1},\"scope\":\"session\""));
  static char event[sizeof fr.payload];
  memcpy(event, fr.payload, fr.len + 1);
  /* on the wire: "HB" 2, the node's id, the name, the same JSON up to its
   * offset (each node that records it writes its own) */
  const char *off = strstr(event, ",\"offset\":");
  assert_non_null(off);
  size_t plen = (size_t)(off - event);
  assert_int_equal(redisGetReply(watch, (void **)&r), REDIS_OK);
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  assert_int_equal(r->elements, 3);
  assert_string_equal(r->element[0]->str, "message");
  assert_string_equal(r->element[1]->str, s);
  redisReply *pl = r->element[2];
  assert_true(pl->len == 20 + 1 + plen);
  assert_memory_equal(pl->str, "HB\x02", 3);
  assert_int_equal(pl->str[19], 1);
  assert_int_equal(pl->str[20], 'n');
  assert_memory_equal(pl->str + 21, event, plen);
  /* the echo reached the node before this marker did: had it been
   * delivered, it would come first */
  char p[256];
  size_t n = payload(p, other_node, "n", "{\"marker\":1}");
  rpublish(rc, s, p, n);
  expect_event(fd, &in, "{\"marker\":1}");
  freeReplyObject(r);
  redisFree(watch);
  redisFree(rc);
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
  char p[256];
  size_t n = payload(p, other_node, "n", "{\"after\":\"reconnect\"}");
  rpublish(rc, s, p, n);
  expect_event(fd, &in, "{\"after\":\"reconnect\"}");
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
  if (!srv.pid) skip();
  redisContext *rc = rconnect();
  redis_do(rc, "CONFIG SET requirepass %s", "p@ss:w/rd"); /* this connection stays in */
  start_node(":p%40ss%3Aw%2Frd@", "/3");
  redisReply *r = redisCommand(rc, "CLIENT LIST");
  assert_non_null(r);
  int in_db3 = 0;
  for (const char *q = r->str; (q = strstr(q, " db=3 ")); q++) in_db3++;
  freeReplyObject(r);
  assert_int_equal(in_db3, 2); /* the node's publish and subscribe connections */
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
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char err[256] = "";
    hb_broker *b = hb_broker_redis_new(bad[i].url, NULL, err, sizeof err);
    if (b) fail_msg("%s accepted", bad[i].url);
    if (!strstr(err, bad[i].why)) fail_msg("%s: '%s' lacks '%s'", bad[i].url, err, bad[i].why);
  }
  char err[256];
  hb_broker *b = hb_broker_redis_new("redis://user:pw@[::1]:6380/2", "ignored", err, sizeof err);
  assert_non_null(b);
  assert_string_equal(b->ops->state(b), "down");
  assert_false(b->ops->healthy(b));
  b->ops->stop(b); /* never started: frees */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_url_errors),
      HBT_TEST(test_interest_subscribes_and_unsubscribes),
      HBT_TEST(test_remote_messages),
      HBT_TEST(test_own_publish_and_echo),
      HBT_TEST(test_error_reply_faults_and_reconnects),
      HBT_TEST(test_url_password_and_db),
  };
  return cmocka_run_group_tests_name("redis", tests, group_setup, group_teardown);
}
