/*
 * test_rclient.c - the Redis connection (rclient.h) against a real
 * redis-server of the test's own (redis_server.h): pipelined commands answered in
 * order, error replies, AUTH and SELECT, a wrong password, subscriber pushes,
 * a killed Redis (pending commands fail, the client reconnects), a frozen
 * one (SIGSTOP: the reply deadline fails them), and a stop with commands
 * pending (each callback once; the leak check sees everything freed).
 * Skipped when redis-server is not installed.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "check.h"
#include "redis_server.h"

#include "hubbub/alloc.h"
#include "hubbub/rclient.h"

#define WAIT_MS 5000

static hbt_redis srv;

static pid_t redis_start(int port, const char *password) {
  if (srv.pid) hbt_redis_stop(&srv);
  assert_int_equal(hbt_redis_start(&srv, port, password), 0);
  return srv.pid;
}

static void redis_kill(pid_t pid) {
  assert_int_equal(pid, srv.pid);
  hbt_redis_kill(&srv);
}

static int free_port(void) { return hbt_free_port(); }

/* --- a loop that runs until a condition holds (bounded) ------------------- */

static uv_loop_t loop;

static void on_wake(uv_timer_t *t) { uv_stop(t->loop); }

static bool run_until(bool (*pred)(void *), void *ud, int ms) {
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  uv_timer_start(&t, on_wake, 10, 10);
  uint64_t end = uv_now(&loop) + (uint64_t)ms;
  bool ok = false;
  while (!(ok = pred(ud)) && uv_now(&loop) < end) uv_run(&loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
  return ok;
}

/* --- what the callbacks saw ------------------------------------------------- */

typedef struct {
  int ready, down, pushes;
  int replies, failures, errors;
  long long last_int;
  char last_str[64];
  char last_err[160];
  int order_bad; /* replies out of order */
  int next_expected;
} seen;

static seen S;

static bool is_ready(void *rc) { return hb_rclient_get_state(rc) == HB_RCLIENT_READY; }
static bool is_down(void *rc) { return hb_rclient_get_state(rc) == HB_RCLIENT_BACKOFF; }
static bool replies_at_least(void *n) { return S.replies + S.failures >= *(int *)n; }
static bool pushes_at_least(void *n) { return S.pushes >= *(int *)n; }

static void on_ready(hb_rclient *rc, void *ud) { S.ready++; }
static void on_down(hb_rclient *rc, void *ud, const char *why, bool was_ready) { S.down++; }
static void on_push(hb_rclient *rc, void *ud, const redisReply *m) {
  if (m->elements == 3 && m->element[2]->type == REDIS_REPLY_STRING) {
    snprintf(S.last_str, sizeof S.last_str, "%.*s", (int)m->element[2]->len, m->element[2]->str);
    S.pushes++;
  }
}

static void on_reply(void *ctx, const redisReply *r, const char *err) {
  int idx = (int)(intptr_t)ctx;
  if (idx >= 0) {
    if (idx != S.next_expected) S.order_bad++;
    S.next_expected = idx + 1;
  }
  if (!r) {
    S.failures++;
    snprintf(S.last_err, sizeof S.last_err, "%s", err);
    return;
  }
  S.replies++;
  if (r->type == REDIS_REPLY_ERROR) S.errors++;
  if (r->type == REDIS_REPLY_INTEGER) S.last_int = r->integer;
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
    snprintf(S.last_str, sizeof S.last_str, "%.*s", (int)r->len, r->str);
}

static hb_rclient *client(int port, const char *password, int db, bool subscriber, uint32_t reply_timeout_ms) {
  hb_rclient_config cfg = {
      .name = subscriber ? "subscribe" : "commands",
      .host = "127.0.0.1",
      .port = port,
      .password = password,
      .db = db,
      .connect_timeout_ms = 1000,
      .reply_timeout_ms = reply_timeout_ms,
      .ping_interval_ms = 200,
      .backoff_min_ms = 50,
      .backoff_max_ms = 200,
      .subscriber = subscriber,
      .on_ready = on_ready,
      .on_down = on_down,
      .on_push = on_push,
  };
  return hb_rclient_new(&loop, &cfg);
}

static void stop_and_drain(hb_rclient *rc) {
  hb_rclient_stop(rc);
  for (int i = 0; i < 100; i++) uv_run(&loop, UV_RUN_NOWAIT);
}

static int setup(void **state) {
  if (!hbt_redis_available()) {
    print_message("redis-server not found (make deps-all installs it): skipped\n");
    skip();
  }
  hbt_leak_begin();
  memset(&S, 0, sizeof S);
  uv_loop_init(&loop);
  return 0;
}

/* Every client was stopped: the loop ends by itself, and then nothing
 * allocated through hb_malloc is left (the leak check). */
static int teardown(void **state) {
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  hbt_redis_stop(&srv);
  hbt_leak_end();
  return 0;
}

#define CMD(rc, idx, ...)                                                                   \
  do {                                                                                      \
    const char *argv_[] = {__VA_ARGS__};                                                    \
    assert_true(hb_rclient_cmd_strs((rc), on_reply, (void *)(intptr_t)(idx),               \
                                    (int)(sizeof argv_ / sizeof *argv_), argv_));           \
  } while (0)

/* --- the tests ----------------------------------------------------------------- */

static void test_pipelined_in_order(void **state) {
  int port = free_port();
  pid_t pid = redis_start(port, NULL);
  hb_rclient *rc = client(port, NULL, 2, false, 3000);
  /* Not started: commands are refused, no callback. */
  const char *ping[] = {"PING"};
  assert_false(hb_rclient_cmd_strs(rc, on_reply, NULL, 1, ping));
  hb_rclient_start(rc);
  assert_true(run_until(is_ready, rc, WAIT_MS));
  assert_int_equal(S.ready, 1);
  const int n = 2000;
  for (int i = 0; i < n; i++) {
    char v[16];
    snprintf(v, sizeof v, "%d", i);
    if (i % 2 == 0) CMD(rc, i, "INCR", "counter");
    else CMD(rc, i, "SET", "k", v);
  }
  CMD(rc, n, "GET", "k");
  CMD(rc, n + 1, "NOSUCHCOMMAND");
  int want = n + 2;
  assert_true(run_until(replies_at_least, &want, WAIT_MS));
  assert_int_equal(S.order_bad, 0);
  assert_int_equal(S.failures, 0);
  assert_int_equal(S.errors, 1); /* the unknown command: a reply, not a fault */
  assert_int_equal(S.down, 0);
  /* SELECT 2 took effect: the key is not in db 0. */
  hb_rclient *rc0 = client(port, NULL, 0, false, 3000);
  hb_rclient_start(rc0);
  assert_true(run_until(is_ready, rc0, WAIT_MS));
  S.next_expected = 0;
  S.replies = 0;
  CMD(rc0, 0, "EXISTS", "k");
  want = 1;
  assert_true(run_until(replies_at_least, &want, WAIT_MS));
  assert_int_equal(S.last_int, 0);
  stop_and_drain(rc0);
  stop_and_drain(rc);
  redis_kill(pid);
}

static void test_auth(void **state) {
  int port = free_port();
  pid_t pid = redis_start(port, "s3cret");
  hb_rclient *bad = client(port, "wrong", 0, false, 3000);
  hb_rclient_start(bad);
  assert_true(run_until(is_down, bad, WAIT_MS));
  assert_int_equal(S.ready, 0);
  assert_true(hb_rclient_faults(bad) >= 1);
  stop_and_drain(bad);
  hb_rclient *good = client(port, "s3cret", 0, false, 3000);
  hb_rclient_start(good);
  assert_true(run_until(is_ready, good, WAIT_MS));
  CMD(good, 0, "PING");
  int want = 1;
  assert_true(run_until(replies_at_least, &want, WAIT_MS));
  assert_string_equal(S.last_str, "PONG");
  stop_and_drain(good);
  redis_kill(pid);
}

static void test_subscriber_pushes(void **state) {
  int port = free_port();
  pid_t pid = redis_start(port, NULL);
  hb_rclient *sub = client(port, NULL, 0, true, 3000);
  hb_rclient *pub = client(port, NULL, 0, false, 3000);
  hb_rclient_start(sub);
  hb_rclient_start(pub);
  assert_true(run_until(is_ready, sub, WAIT_MS));
  assert_true(run_until(is_ready, pub, WAIT_MS));
  CMD(sub, 0, "SUBSCRIBE", "ch1");
  CMD(sub, 1, "SUBSCRIBE", "ch2");
  CMD(sub, 2, "UNSUBSCRIBE", "ch2");
  CMD(sub, 3, "PING"); /* ["pong",""] in subscribed mode: a reply */
  int want = 4;
  assert_true(run_until(replies_at_least, &want, WAIT_MS));
  assert_int_equal(S.order_bad, 0);
  S.next_expected = 0;
  S.replies = 0;
  CMD(pub, 0, "PUBLISH", "ch2", "not-for-us");
  CMD(pub, 1, "PUBLISH", "ch1", "hello");
  want = 2;
  assert_true(run_until(replies_at_least, &want, WAIT_MS));
  int one = 1;
  assert_true(run_until(pushes_at_least, &one, WAIT_MS));
  assert_int_equal(S.pushes, 1);
  assert_string_equal(S.last_str, "hello");
  stop_and_drain(sub);
  stop_and_drain(pub);
  redis_kill(pid);
}

static void test_killed_then_back(void **state) {
  int port = free_port();
  pid_t pid = redis_start(port, NULL);
  hb_rclient *rc = client(port, NULL, 0, false, 3000);
  hb_rclient_start(rc);
  assert_true(run_until(is_ready, rc, WAIT_MS));
  /* BLPOP holds its reply: the kill fails it and what follows it. */
  CMD(rc, 0, "BLPOP", "nothing", "10");
  CMD(rc, 1, "PING");
  for (int i = 0; i < 5; i++) uv_run(&loop, UV_RUN_NOWAIT);
  redis_kill(pid);
  int want = 2;
  assert_true(run_until(replies_at_least, &want, WAIT_MS));
  assert_int_equal(S.failures, 2);
  assert_int_equal(S.order_bad, 0);
  assert_non_null(strstr(S.last_err, "Redis link lost"));
  assert_int_equal(S.down, 1);
  const char *ping[] = {"PING"};
  assert_false(hb_rclient_cmd_strs(rc, on_reply, NULL, 1, ping)); /* not ready: refused */
  pid = redis_start(port, NULL);
  assert_true(run_until(is_ready, rc, WAIT_MS));
  assert_int_equal(S.ready, 2);
  stop_and_drain(rc);
  redis_kill(pid);
}

static void test_frozen_reply_deadline(void **state) {
  int port = free_port();
  pid_t pid = redis_start(port, NULL);
  hb_rclient *rc = client(port, NULL, 0, false, 300);
  hb_rclient_start(rc);
  assert_true(run_until(is_ready, rc, WAIT_MS));
  kill(pid, SIGSTOP);
  CMD(rc, 0, "INCR", "x");
  int want = 1;
  assert_true(run_until(replies_at_least, &want, WAIT_MS));
  assert_int_equal(S.failures, 1);
  assert_non_null(strstr(S.last_err, "no reply for 300 ms"));
  kill(pid, SIGCONT);
  assert_true(run_until(is_ready, rc, WAIT_MS));
  stop_and_drain(rc);
  redis_kill(pid);
}

static void test_stop_with_pending(void **state) {
  int port = free_port();
  pid_t pid = redis_start(port, NULL);
  hb_rclient *rc = client(port, NULL, 0, false, 3000);
  hb_rclient_start(rc);
  assert_true(run_until(is_ready, rc, WAIT_MS));
  for (int i = 0; i < 100; i++) CMD(rc, i, "BLPOP", "nothing", "10");
  hb_rclient_stop(rc); /* every callback now, once, in order */
  assert_int_equal(S.failures, 100);
  assert_int_equal(S.order_bad, 0);
  assert_string_equal(S.last_err, "stopped");
  for (int i = 0; i < 100; i++) uv_run(&loop, UV_RUN_NOWAIT);
  redis_kill(pid);
}

static void test_unreachable_backs_off(void **state) {
  int port = free_port(); /* nobody listens */
  hb_rclient *rc = client(port, NULL, 0, false, 3000);
  hb_rclient_start(rc);
  assert_true(run_until(is_down, rc, WAIT_MS));
  uint64_t f = hb_rclient_faults(rc);
  int more = 0;
  for (int i = 0; i < 100 && hb_rclient_faults(rc) < f + 2; i++) uv_run(&loop, UV_RUN_ONCE);
  more = (int)(hb_rclient_faults(rc) - f);
  assert_true(more >= 2); /* it keeps trying */
  assert_int_equal(S.ready, 0);
  stop_and_drain(rc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_pipelined_in_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
      cmocka_unit_test_setup_teardown(test_subscriber_pushes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_killed_then_back, setup, teardown),
      cmocka_unit_test_setup_teardown(test_frozen_reply_deadline, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stop_with_pending, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unreachable_backs_off, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
