/*
 * test_room.c - the room protocol (room.c) in a full in-process stack: the
 * HTTP glue, the router, a store with a real plugin, the local broker, the
 * publish core and one I/O thread. Each client upgrades through the HTTP
 * glue with a connection token minted for the plugin, then talks in frames;
 * what the test reads are the bytes the server wrote.
 *
 * Absence is shown with a marker, never with a pause: a delivery is queued
 * in the same loop turn as the publish's ack (before it, on the publisher's
 * own thread), so a pong asked for after the ack arrives after any event
 * that publish produced.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "stack.h"

#include "hubbub/alloc.h"
#include "hubbub/index.h"
#include "hubbub/limits.h"
#include "hubbub/metrics.h"
#include "hubbub/publish.h"
#include "hubbub/room.h"
#include "hubbub/ws.h"

static hbt_stack stk;
static hb_io *io;
static hbt_frame fr;

static void start(void) {
  hbt_stack_init(&stk);
  stk.cfg.max_subscriptions = 3;
  hbt_stack_start(&stk);
  io = hbt_io(&stk, 0);
}

static bool index_empty(void *arg) {
  hb_index *ix = hb_publish_index(arg);
  return ix->nsubs == 0 && ix->topics == NULL && ix->chans == NULL;
}

/* Every connection gone: the index is empty (nothing points at a closed
 * connection), and the stack stops. */
static void stop(void) {
  hbt_io_until(io, index_empty, io, "an empty room index");
  hbt_stack_stop(&stk);
}

/* A room connection with claims `cl` (fresh ones when NULL). */
static int join(hb_conn_claims *cl, const char *query, hb_strbuf *in) {
  hb_conn_claims mine;
  if (!cl) {
    hbt_claims(&stk, &mine);
    cl = &mine;
  }
  return hbt_room_open(&stk, io, cl, query, in, NULL, &fr);
}

static void send_json(int fd, const char *json) { hbt_ws_text(fd, json); }

/* The next text frame must be exactly `want`. */
static void expect_msg(int fd, hb_strbuf *in, const char *want) {
  hbt_ws_recv(fd, in, &fr);
  if (fr.opcode != HB_WS_OP_TEXT || strcmp(fr.payload, want) != 0)
    fail_msg("got opcode %d '%s', want '%s'", fr.opcode, fr.payload, want);
}

/* The next text frame must start with `prefix`. */
static void expect_prefix(int fd, hb_strbuf *in, const char *prefix) {
  hbt_ws_recv(fd, in, &fr);
  if (fr.opcode != HB_WS_OP_TEXT || strncmp(fr.payload, prefix, strlen(prefix)) != 0)
    fail_msg("got opcode %d '%s', want '%s...'", fr.opcode, fr.payload, prefix);
}

/* Nothing but the pong of a ping sent now: whatever was queued before it would come first. */
static void expect_only_pong(int fd, hb_strbuf *in, const char *id) {
  char ping[64], pong[64];
  snprintf(ping, sizeof ping, "{\"type\":\"ping\",\"id\":\"%s\"}", id);
  snprintf(pong, sizeof pong, "{\"type\":\"pong\",\"id\":\"%s\"}", id);
  send_json(fd, ping);
  expect_msg(fd, in, pong);
}

static void expect_close(int fd, hb_strbuf *in, uint16_t code, const char *reason) {
  for (;;) {
    hbt_ws_recv(fd, in, &fr);
    if (fr.opcode == HB_WS_OP_CLOSE) break;
  }
  if (fr.close_code != code) fail_msg("closed with %u (%s), want %u", fr.close_code, fr.payload + 2, code);
  if (reason) assert_string_equal(fr.payload + 2, reason);
}

/* --- the handshake's welcome --------------------------------------------------- */

static void test_welcome(void **state) {
  (void)state;
  start();
  hb_conn_claims cl;
  hbt_claims(&stk, &cl);
  hb_strbuf in = HB_STRBUF_INIT;
  int fd = join(&cl, "subscribe=a,b.c", &in);
  char o[HB_UUID_STR_BYTES], s[HB_UUID_STR_BYTES], want[512];
  hb_uuid_format(&cl.org, o);
  hb_uuid_format(&cl.session, s);
  snprintf(want, sizeof want, "\"organization_id\":\"%s\"", o);
  assert_non_null(strstr(fr.payload, want));
  snprintf(want, sizeof want, "\"session_id\":\"%s\"}", s);
  assert_non_null(strstr(fr.payload, want));
  assert_non_null(strstr(fr.payload, "\"user_id\":\"tester\",\"scopes\":[\"session\",\"event\",\"organization\"]"));
  assert_non_null(strstr(fr.payload, "\"max_subscriptions\":3"));
  assert_non_null(strstr(fr.payload, "\"subscribed\":[\"a\",\"b.c\"]"));
  /* subscribed at the upgrade: a publish to "a" reaches it at once */
  send_json(fd, "{\"type\":\"publish\",\"eventName\":\"a\",\"data\":{}}");
  expect_prefix(fd, &in, "{\"type\":\"event\",\"eventName\":\"a\",\"data\":{},\"scope\":\"session\",\"message_id\":\"");
  hb_strbuf_free(&in);
  close(fd);
  stop();
}

/* --- subscribe, publish, unsubscribe -------------------------------------------- */

static void test_subscribe_publish_unsubscribe(void **state) {
  (void)state;
  start();
  hb_strbuf in = HB_STRBUF_INIT;
  int fd = join(NULL, NULL, &in);
  long long before = hb_metric_get(HB_M_PUBLISHES_WS);
  send_json(fd, "{\"type\":\"subscribe\",\"eventName\":\"chat\",\"id\":\"s1\"}");
  expect_msg(fd, &in, "{\"type\":\"ack\",\"id\":\"s1\"}");
  send_json(fd, "{\"type\":\"subscribe\",\"eventName\":\"chat\",\"id\":\"s2\"}"); /* idempotent */
  expect_msg(fd, &in, "{\"type\":\"ack\",\"id\":\"s2\"}");
  /* its own publish, to its own subscription: the event (queued by the
   * publish), then the ack with the same message id; once */
  send_json(fd, "{\"type\":\"publish\",\"eventName\":\"chat\",\"data\":{\"n\":0.10},\"id\":\"p1\"}");
  static const char ev_head[] = "{\"type\":\"event\",\"eventName\":\"chat\",\"data\":{\"n\":0.10},\"scope\":\"session\",\"message_id\":\"";
  expect_prefix(fd, &in, ev_head);
  char mid[HB_UUID_STR_BYTES];
  snprintf(mid, sizeof mid, "%.36s", fr.payload + strlen(ev_head));
  hb_uuid u;
  assert_true(hb_uuid_parse(mid, 36, &u));
  assert_non_null(strstr(fr.payload, ",\"offset\":1}")); /* the first in its channel */
  /* the ack: the same message id and its position (offset, the channel's epoch) */
  char ack[160];
  snprintf(ack, sizeof ack, "{\"type\":\"ack\",\"id\":\"p1\",\"message_id\":\"%s\",\"offset\":1,\"epoch\":\"", mid);
  expect_prefix(fd, &in, ack);
  const char *epoch = fr.payload + strlen(ack);
  assert_int_equal(strspn(epoch, "0123456789abcdef"), 16);
  assert_string_equal(epoch + 16, "\"}");
  expect_only_pong(fd, &in, "after-p1"); /* delivered once */
  /* a publish without an id: no ack, the event still comes */
  send_json(fd, "{\"type\":\"publish\",\"eventName\":\"chat\",\"data\":{}}");
  expect_prefix(fd, &in, "{\"type\":\"event\",\"eventName\":\"chat\",\"data\":{}");
  expect_only_pong(fd, &in, "after-no-id");
  /* another name: not subscribed, nothing comes */
  send_json(fd, "{\"type\":\"publish\",\"eventName\":\"other\",\"data\":{},\"id\":\"p2\"}");
  expect_prefix(fd, &in, "{\"type\":\"ack\",\"id\":\"p2\"");
  expect_only_pong(fd, &in, "after-p2");
  /* unsubscribed: acked, and its publishes no longer come back */
  send_json(fd, "{\"type\":\"unsubscribe\",\"eventName\":\"chat\",\"id\":\"u1\"}");
  expect_msg(fd, &in, "{\"type\":\"ack\",\"id\":\"u1\"}");
  send_json(fd, "{\"type\":\"unsubscribe\",\"eventName\":\"never\",\"id\":\"u2\"}"); /* not subscribed: still acked */
  expect_msg(fd, &in, "{\"type\":\"ack\",\"id\":\"u2\"}");
  send_json(fd, "{\"type\":\"publish\",\"eventName\":\"chat\",\"data\":{},\"id\":\"p3\"}");
  expect_prefix(fd, &in, "{\"type\":\"ack\",\"id\":\"p3\"");
  expect_only_pong(fd, &in, "after-p3");
  assert_int_equal(hb_metric_get(HB_M_PUBLISHES_WS) - before, 4);
  hb_strbuf_free(&in);
  close(fd);
  stop();
}

/* Scopes: an event-scope publish reaches another session of the event, an
 * organization one another event; a session one neither. */
static void test_scopes_between_rooms(void **state) {
  (void)state;
  start();
  hb_conn_claims a, b, c;
  hbt_claims(&stk, &a);
  b = a;
  hb_uuid_v4(&b.session); /* same event, another session */
  c = a;
  hb_uuid_v4(&c.event); /* another event of the organization */
  hb_strbuf ina = HB_STRBUF_INIT, inb = HB_STRBUF_INIT, inc = HB_STRBUF_INIT;
  int fa = join(&a, "subscribe=x", &ina), fb = join(&b, "subscribe=x", &inb), fc = join(&c, "subscribe=x", &inc);
  send_json(fa, "{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{\"to\":\"session\"},\"id\":\"1\"}");
  send_json(fa, "{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{\"to\":\"event\"},\"scope\":\"event\",\"id\":\"2\"}");
  send_json(fa, "{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{\"to\":\"org\"},\"scope\":\"organization\",\"id\":\"3\"}");
  hbt_ws_recv(fb, &inb, &fr); /* not the session one: the event one comes first */
  assert_non_null(strstr(fr.payload, "{\"to\":\"event\"}"));
  hbt_ws_recv(fb, &inb, &fr);
  assert_non_null(strstr(fr.payload, "{\"to\":\"org\"}"));
  hbt_ws_recv(fc, &inc, &fr);
  assert_non_null(strstr(fr.payload, "{\"to\":\"org\"}")); /* the first thing c gets */
  expect_only_pong(fb, &inb, "b");
  expect_only_pong(fc, &inc, "c");
  hb_strbuf_free(&ina);
  hb_strbuf_free(&inb);
  hb_strbuf_free(&inc);
  close(fa);
  close(fb);
  close(fc);
  stop();
}

/* --- refusals --------------------------------------------------------------------- */

static void test_errors(void **state) {
  (void)state;
  start();
  hb_conn_claims cl;
  hbt_claims(&stk, &cl);
  cl.scopes = HB_SCOPE_BIT(HB_SCOPE_SESSION);
  hb_strbuf in = HB_STRBUF_INIT;
  int fd = join(&cl, NULL, &in);
  send_json(fd, "{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{},\"scope\":\"event\",\"id\":\"e1\"}");
  expect_msg(fd, &in, "{\"type\":\"error\",\"id\":\"e1\",\"code\":\"scope_forbidden\","
                      "\"message\":\"this connection may not publish to scope 'event'\"}");
  send_json(fd, "{\"type\":\"jump\",\"id\":\"e2\"}");
  expect_prefix(fd, &in, "{\"type\":\"error\",\"id\":\"e2\",\"code\":\"unknown_type\"");
  send_json(fd, "{\"type\":");
  expect_prefix(fd, &in, "{\"type\":\"error\",\"code\":\"invalid_json\",\"message\":\"invalid JSON at byte");
  send_json(fd, "{\"type\":\"subscribe\",\"eventName\":\"bad name\",\"id\":\"e3\"}");
  expect_prefix(fd, &in, "{\"type\":\"error\",\"id\":\"e3\",\"code\":\"invalid_event_name\"");
  for (int i = 0; i < 3; i++) {
    char m[96];
    snprintf(m, sizeof m, "{\"type\":\"subscribe\",\"eventName\":\"n%d\"}", i);
    send_json(fd, m); /* no id: no ack */
  }
  send_json(fd, "{\"type\":\"subscribe\",\"eventName\":\"n3\",\"id\":\"e4\"}");
  expect_msg(fd, &in, "{\"type\":\"error\",\"id\":\"e4\",\"code\":\"too_many_subscriptions\","
                      "\"message\":\"at most 3 event names per connection\"}");
  send_json(fd, "{\"type\":\"ping\"}");
  expect_msg(fd, &in, "{\"type\":\"pong\"}");
  hb_strbuf_free(&in);
  close(fd);
  stop();
}

/* Over the publish rate: rate_limited for each, and after
 * HB_RATE_STRIKES_BEFORE_CLOSE refused in a row the connection is closed
 * with 4008; what follows is not read. */
static void test_rate_limited_then_4008(void **state) {
  (void)state;
  hbt_stack_init(&stk);
  stk.cfg.conn_publish_rate = 0.001; /* one token now, the next in 1000 s */
  stk.cfg.conn_publish_burst = 1;
  hbt_stack_start(&stk);
  io = hbt_io(&stk, 0);
  hb_strbuf in = HB_STRBUF_INIT;
  int fd = join(NULL, NULL, &in);
  hb_strbuf burst = HB_STRBUF_INIT;
  for (int i = 0; i < HB_RATE_STRIKES_BEFORE_CLOSE + 10; i++) {
    char m[96];
    int n = snprintf(m, sizeof m, "{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{},\"id\":\"%d\"}", i);
    size_t mark = burst.len;
    hb_strbuf_add(&burst, "\x81\x80\0\0\0\0", 6); /* masked with a zero key: the payload as is */
    burst.buf[mark + 1] = (char)(0x80 | n);
    hb_strbuf_add(&burst, m, (size_t)n);
  }
  hbt_send(fd, burst.buf, burst.len);
  hb_strbuf_free(&burst);
  expect_prefix(fd, &in, "{\"type\":\"ack\",\"id\":\"0\"");
  for (int i = 1; i <= HB_RATE_STRIKES_BEFORE_CLOSE; i++) {
    char want[160];
    snprintf(want, sizeof want, "{\"type\":\"error\",\"id\":\"%d\",\"code\":\"rate_limited\",", i);
    expect_prefix(fd, &in, want);
  }
  expect_close(fd, &in, HB_CLOSE_RATE_LIMITED, "publish rate limit exceeded");
  hb_strbuf_free(&in);
  close(fd);
  stop();
}

typedef struct {
  hb_conn *c;
  hb_conn_claims cl;
} expiry_job;

/* The room of an expired token, entered directly (hb_room_join, as the
 * handshake does after checking the token): the upgrade would refuse a
 * token this old, the sweep must close a connection whose token ran out. */
static void join_expired(void *arg) {
  expiry_job *j = arg;
  hb_peer *p = hb_room_join(hb_ws_open(j->c), &j->cl);
  assert_true(hb_room_subscribe(p, "x", 1));
}

static void test_token_expiry_closes_4401(void **state) {
  (void)state;
  start();
  int fd;
  expiry_job j;
  j.c = hbt_attach(io, &fd, 0);
  hbt_claims(&stk, &j.cl);
  j.cl.exp = (int64_t)time(NULL) - HB_JWT_LEEWAY_S - 10;
  hbt_on_io(io, join_expired, &j);
  hb_strbuf in = HB_STRBUF_INIT;
  expect_close(fd, &in, HB_CLOSE_UNAUTHORIZED, "token expired");
  hb_strbuf_free(&in);
  close(fd);
  stop();
}

/* Connections that end every way a room connection ends all leave the
 * index: the client closes with a close frame, the client vanishes, the
 * server closes (4401). stop() checks the index is empty; the leak check
 * that everything else went too. */
static void test_every_connection_leaves_the_index(void **state) {
  (void)state;
  start();
  hb_strbuf in = HB_STRBUF_INIT;
  int a = join(NULL, "subscribe=a,b,c", &in);
  hb_strbuf_reset(&in);
  int b = join(NULL, "subscribe=a", &in);
  hb_strbuf_reset(&in);
  hbt_ws_send(a, 0x88, "\x03\xe8", 2);
  expect_close(a, &in, 1000, NULL);
  hbt_recv_eof(a, &in);
  close(a);
  close(b); /* gone without a close frame */
  int fd;
  expiry_job j;
  j.c = hbt_attach(io, &fd, 0);
  hbt_claims(&stk, &j.cl);
  j.cl.exp = 1;
  hbt_on_io(io, join_expired, &j);
  hb_strbuf_reset(&in);
  expect_close(fd, &in, HB_CLOSE_UNAUTHORIZED, NULL);
  hb_strbuf_free(&in);
  close(fd);
  stop();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_welcome),
      HBT_TEST(test_subscribe_publish_unsubscribe),
      HBT_TEST(test_scopes_between_rooms),
      HBT_TEST(test_errors),
      HBT_TEST(test_rate_limited_then_4008),
      HBT_TEST(test_token_expiry_closes_4401),
      HBT_TEST(test_every_connection_leaves_the_index),
  };
  return cmocka_run_group_tests_name("room", tests, NULL, NULL);
}
