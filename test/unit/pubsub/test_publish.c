/*
 * test_publish.c - the publish core (publish.c) in an in-process stack with
 * two I/O threads and a recording broker: local delivery counts and the
 * exact shared frame, recording and delivery to every thread through the
 * inboxes (from an I/O thread, and from outside as the Redis thread does),
 * a gap notice to every subscriber of its channel, hb_publish_start end to
 * end, a broker that refuses, the interest callbacks the broker routes by,
 * and the quiesce before shutdown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "stack.h"

#include "hubbub/alloc.h"
#include "hubbub/broker.h"
#include "hubbub/metrics.h"
#include "hubbub/msg.h"
#include "hubbub/publish.h"
#include "hubbub/smsg.h"
#include "hubbub/strbuf.h"
#include "hubbub/ws.h"

/* --- a broker that records ------------------------------------------------------ */

static struct {
  atomic_int publishes, on, off;
  atomic_bool fail;
} bk;

static int tb_start(hb_broker *b) { return (void)b, 0; }
static bool tb_publish(hb_broker *b, hb_io *from, const hb_pub *p, hb_publish_result *r, hb_broker_done_fn done,
                       void *ctx) {
  (void)b, (void)done, (void)ctx;
  atomic_fetch_add(&bk.publishes, 1);
  r->err = atomic_load(&bk.fail) ? HB_E_BROKER_UNAVAILABLE : HB_OK;
  if (r->err == HB_OK) r->pos = hb_publish_record(from, p);
  return true;
}
static void tb_interest(hb_broker *b, const hb_chan_key *k, bool on) {
  (void)b, (void)k;
  atomic_fetch_add(on ? &bk.on : &bk.off, 1);
}
static const char *tb_state(hb_broker *b) { return (void)b, "up"; }
static const char *const tb_states[] = {"up", NULL};
static bool tb_healthy(hb_broker *b) { return (void)b, true; }
static void tb_stop(hb_broker *b) { (void)b; }
static const hb_broker_ops tb_ops = {
    .name = "test",
    .start = tb_start,
    .publish = tb_publish,
    .interest = tb_interest,
    .state = tb_state,
    .states = tb_states,
    .healthy = tb_healthy,
    .stop = tb_stop,
};
static hb_broker test_broker = {&tb_ops};

static hbt_stack stk;
static hbt_frame fr;

static void start(int nio) {
  memset(&bk, 0, sizeof bk);
  hbt_stack_init(&stk);
  stk.nio = nio;
  stk.broker = &test_broker;
  hbt_stack_start(&stk);
}

/* A room member on thread `i`, subscribed to `subs` at the upgrade. */
static int member(int i, hb_conn_claims *cl, const char *subs, hb_strbuf *in) {
  char q[128];
  snprintf(q, sizeof q, "subscribe=%s", subs);
  return hbt_room_open(&stk, hbt_io(&stk, i), cl, q, in, NULL, &fr);
}

static void expect_only_pong(int fd, hb_strbuf *in) {
  hbt_ws_text(fd, "{\"type\":\"ping\",\"id\":\"marker\"}");
  hbt_ws_recv(fd, in, &fr);
  if (strcmp(fr.payload, "{\"type\":\"pong\",\"id\":\"marker\"}") != 0) fail_msg("got '%s' before the pong", fr.payload);
}

/* Read one frame's raw bytes and compare them with `want`. */
static void expect_bytes(int fd, hb_strbuf *in, const hb_strbuf *want) {
  hbt_recv_n(fd, in, want->len);
  if (memcmp(in->buf, want->buf, want->len) != 0) fail_msg("frame differs: '%.*s'", (int)want->len, in->buf);
  hbt_consume(in, want->len);
}

typedef struct {
  hb_io *io;
  hb_msg *msg;
  size_t n;
} deliver_job;

static void deliver_local(void *arg) {
  deliver_job *j = arg;
  j->n = hb_publish_deliver_local(j->io, j->msg);
}

typedef struct {
  hb_io *io;
  hb_pub pub;
  hb_pos pos;
} record_job;

static void record_from(void *arg) {
  record_job *j = arg;
  j->pos = hb_publish_record(j->io, &j->pub);
}

/* A publish as a broker gets it: the event serialised but for its offset. */
static void pub_for(hb_pub *p, hb_strbuf *prefix, const hb_conn_claims *cl, hb_scope level, const char *name,
                    const char *data) {
  hb_chan_key_make(&p->chan, level, &cl->org, &cl->plugin, &cl->event, &cl->session);
  p->name = name;
  p->name_len = strlen(name);
  p->sent_ms = 1;
  hb_smsg_event_open(prefix, name, strlen(name), data, strlen(data), level, "m", 1);
  p->prefix = prefix->buf;
  p->prefix_len = prefix->len;
}

/* The frame a subscriber gets for `p` at `offset`. */
static void frame_of(hb_strbuf *frame, const hb_pub *p, uint64_t offset) {
  hb_strbuf json = HB_STRBUF_INIT;
  hb_strbuf_add(&json, p->prefix, p->prefix_len);
  hb_smsg_event_close(&json, offset);
  hb_ws_frame(frame, HB_WS_OP_TEXT, json.buf, json.len);
  hb_strbuf_free(&json);
}

/* The message of `p` at `offset`, as the Redis broker builds it. */
static hb_msg *msg_at(const hb_pub *p, uint64_t offset) {
  hb_strbuf json = HB_STRBUF_INIT;
  hb_strbuf_add(&json, p->prefix, p->prefix_len);
  hb_smsg_event_close(&json, offset);
  hb_msg *m = hb_msg_new(&p->chan, p->name, p->name_len, json.buf, json.len);
  hb_strbuf_free(&json);
  m->offset = offset;
  return m;
}

static hb_msg *msg_for(const hb_conn_claims *cl, hb_scope level, const char *name, const char *json) {
  hb_chan_key k;
  hb_chan_key_make(&k, level, &cl->org, &cl->plugin, &cl->event, &cl->session);
  return hb_msg_new(&k, name, strlen(name), json, strlen(json));
}

/* --- local delivery ---------------------------------------------------------------- */

static void test_deliver_local_counts_and_bytes(void **state) {
  (void)state;
  start(1);
  hb_conn_claims r, r2;
  hbt_claims(&stk, &r);
  r2 = r;
  hb_uuid_v4(&r2.session);
  hb_strbuf in[4] = {HB_STRBUF_INIT, HB_STRBUF_INIT, HB_STRBUF_INIT, HB_STRBUF_INIT};
  int fd[4] = {member(0, &r, "n", &in[0]), member(0, &r, "n,m", &in[1]), member(0, &r, "m", &in[2]),
               member(0, &r2, "n", &in[3])};
  long long deliveries = hb_metric_get(HB_M_DELIVERIES);
  static const char json[] = "{\"type\":\"event\",\"eventName\":\"n\",\"data\":{\"x\":1}}";
  hb_strbuf frame = HB_STRBUF_INIT;
  hb_ws_frame(&frame, HB_WS_OP_TEXT, json, sizeof json - 1);
  /* the session channel of r: the two members of r subscribed to n */
  deliver_job j = {hbt_io(&stk, 0), msg_for(&r, HB_SCOPE_SESSION, "n", json), 0};
  hbt_on_io(j.io, deliver_local, &j);
  hb_msg_unref(j.msg); /* the caller's reference; the queued frames hold their own */
  assert_int_equal(j.n, 2);
  expect_bytes(fd[0], &in[0], &frame);
  expect_bytes(fd[1], &in[1], &frame);
  /* the event channel: r's two and r2's one */
  j.msg = msg_for(&r, HB_SCOPE_EVENT, "n", json);
  hbt_on_io(j.io, deliver_local, &j);
  hb_msg_unref(j.msg);
  assert_int_equal(j.n, 3);
  expect_bytes(fd[0], &in[0], &frame);
  expect_bytes(fd[1], &in[1], &frame);
  expect_bytes(fd[3], &in[3], &frame);
  assert_int_equal(hb_metric_get(HB_M_DELIVERIES) - deliveries, 5);
  /* nobody subscribed to that name there */
  j.msg = msg_for(&r2, HB_SCOPE_SESSION, "m", json);
  hbt_on_io(j.io, deliver_local, &j);
  hb_msg_unref(j.msg);
  assert_int_equal(j.n, 0);
  for (int i = 0; i < 4; i++) expect_only_pong(fd[i], &in[i]);
  for (int i = 0; i < 4; i++) {
    close(fd[i]);
    hb_strbuf_free(&in[i]);
  }
  hb_strbuf_free(&frame);
  hbt_stack_stop(&stk);
}

/* --- every thread ---------------------------------------------------------------------- */

static bool one_sub(void *arg) { return hb_publish_index(arg)->nsubs == 1; }

static void test_deliver_all_reaches_every_thread(void **state) {
  (void)state;
  start(2);
  hb_conn_claims r;
  hbt_claims(&stk, &r);
  hb_strbuf in[2] = {HB_STRBUF_INIT, HB_STRBUF_INIT};
  int fd[2] = {member(0, &r, "n", &in[0]), member(1, &r, "n", &in[1])};
  /* each thread's index holds its own connections only */
  for (int i = 0; i < 2; i++) hbt_io_until(hbt_io(&stk, i), one_sub, hbt_io(&stk, i), "one subscription per thread");
  hb_strbuf p1 = HB_STRBUF_INIT, p2 = HB_STRBUF_INIT, f1 = HB_STRBUF_INIT, f2 = HB_STRBUF_INIT;
  record_job j = {.io = hbt_io(&stk, 0)};
  pub_for(&j.pub, &p1, &r, HB_SCOPE_SESSION, "n", "{\"from\":\"io0\"}");
  /* from I/O thread 0: its own subscriber directly, thread 1's through its inbox */
  hbt_on_io(j.io, record_from, &j);
  assert_int_equal(j.pos.offset, 1);
  frame_of(&f1, &j.pub, 1);
  /* from outside the I/O threads (the Redis thread delivers a message at
   * the position Redis gave it): both through inboxes */
  hb_pub outside;
  pub_for(&outside, &p2, &r, HB_SCOPE_SESSION, "n", "{\"from\":\"outside\"}");
  hb_msg *m = msg_at(&outside, 2);
  assert_true(hb_publish_deliver_all(m));
  hb_msg_unref(m);
  frame_of(&f2, &outside, 2);
  for (int i = 0; i < 2; i++) {
    expect_bytes(fd[i], &in[i], &f1);
    expect_bytes(fd[i], &in[i], &f2);
    expect_only_pong(fd[i], &in[i]);
  }
  for (int i = 0; i < 2; i++) {
    close(fd[i]);
    hb_strbuf_free(&in[i]);
  }
  hb_strbuf_free(&f1);
  hb_strbuf_free(&f2);
  hb_strbuf_free(&p1);
  hb_strbuf_free(&p2);
  hbt_stack_stop(&stk);
}

/* --- gap notices ----------------------------------------------------------------------- */

/* A gap notice (the Redis broker's: messages of a channel that will not
 * come) goes to every subscriber of its channel on every thread, whatever
 * names they subscribed to; it is no delivery of a publish. */
static void test_gap_notice_reaches_every_subscriber(void **state) {
  (void)state;
  start(2);
  hb_conn_claims r, r2;
  hbt_claims(&stk, &r);
  r2 = r;
  hb_uuid_v4(&r2.session);
  hb_strbuf in[3] = {HB_STRBUF_INIT, HB_STRBUF_INIT, HB_STRBUF_INIT};
  int fd[3] = {member(0, &r, "n", &in[0]), member(1, &r, "m", &in[1]), member(0, &r2, "n", &in[2])};
  long long deliveries = hb_metric_get(HB_M_DELIVERIES);
  hb_chan_key k;
  hb_chan_key_make(&k, HB_SCOPE_SESSION, &r.org, &r.plugin, &r.event, &r.session);
  hb_strbuf json = HB_STRBUF_INIT, frame = HB_STRBUF_INIT;
  hb_smsg_gap(&json, HB_SCOPE_SESSION, 0x9f1c2a7b3d4e5f60ull, 57, "trimmed");
  assert_string_equal(json.buf, "{\"type\":\"gap\",\"scope\":\"session\",\"epoch\":\"9f1c2a7b3d4e5f60\",\"offset\":57,"
                                "\"reason\":\"trimmed\"}");
  hb_ws_frame(&frame, HB_WS_OP_TEXT, json.buf, json.len);
  hb_msg *m = hb_msg_new(&k, "", 0, json.buf, json.len);
  m->gap = 1;
  assert_true(hb_publish_deliver_all(m));
  hb_msg_unref(m);
  expect_bytes(fd[0], &in[0], &frame);
  expect_bytes(fd[1], &in[1], &frame);
  for (int i = 0; i < 3; i++) expect_only_pong(fd[i], &in[i]); /* not the other session's */
  assert_int_equal(hb_metric_get(HB_M_DELIVERIES), deliveries);
  for (int i = 0; i < 3; i++) {
    close(fd[i]);
    hb_strbuf_free(&in[i]);
  }
  hb_strbuf_free(&json);
  hb_strbuf_free(&frame);
  hbt_stack_stop(&stk);
}

/* --- hb_publish_start ---------------------------------------------------------------- */

typedef struct {
  hb_io *io;
  hb_chan_key room;
  hb_publish_result res;
  hb_err err;
} publish_job;

static void do_publish(void *arg) {
  publish_job *p = arg;
  hb_publish_req req = {
      .room = &p->room, .scope = HB_SCOPE_EVENT, .event_name = "n", .event_name_len = 1,
      .data = "{\"k\": 0.10}", .data_len = 11,
  };
  p->err = hb_publish_start(p->io, &req, &p->res, NULL, NULL) ? p->res.err : HB_E_INTERNAL;
}

/* Serialised once as the event message, handed to the broker, delivered on
 * both threads; the id it returns is the event's message_id. The local
 * broker's kind answers at once. */
static void test_publish_end_to_end(void **state) {
  (void)state;
  start(2);
  hb_conn_claims r, other;
  hbt_claims(&stk, &r);
  other = r;
  hb_uuid_v4(&other.session); /* the event scope reaches another session */
  hb_strbuf in[2] = {HB_STRBUF_INIT, HB_STRBUF_INIT};
  int fd[2] = {member(0, &r, "n", &in[0]), member(1, &other, "n", &in[1])};
  publish_job p = {.io = hbt_io(&stk, 1)};
  hb_chan_key_make(&p.room, HB_SCOPE_SESSION, &r.org, &r.plugin, &r.event, &r.session);
  hbt_on_io(p.io, do_publish, &p);
  assert_int_equal(p.err, HB_OK);
  hb_uuid u;
  assert_true(hb_uuid_parse(p.res.message_id, 36, &u));
  assert_int_equal(p.res.pos.offset, 1); /* the first in the event channel */
  assert_int_equal(atomic_load(&bk.publishes), 1);
  char want[256];
  snprintf(want, sizeof want,
           "{\"type\":\"event\",\"eventName\":\"n\",\"data\":{\"k\": 0.10},\"scope\":\"event\",\"message_id\":\"%s\","
           "\"sent_at\":",
           p.res.message_id);
  for (int i = 0; i < 2; i++) {
    hbt_ws_recv(fd[i], &in[i], &fr);
    if (strncmp(fr.payload, want, strlen(want)) != 0) fail_msg("got '%s', want '%s...'", fr.payload, want);
  }
  /* a broker that cannot reach the cluster: the error, nothing delivered */
  atomic_store(&bk.fail, true);
  hbt_on_io(p.io, do_publish, &p);
  assert_int_equal(p.err, HB_E_BROKER_UNAVAILABLE);
  hbt_ws_text(fd[0], "{\"type\":\"publish\",\"eventName\":\"n\",\"data\":{},\"id\":\"p\"}");
  hbt_ws_recv(fd[0], &in[0], &fr);
  assert_string_equal(fr.payload, "{\"type\":\"error\",\"id\":\"p\",\"code\":\"broker_unavailable\","
                                  "\"message\":\"the cluster cannot be reached\"}");
  for (int i = 0; i < 2; i++) expect_only_pong(fd[i], &in[i]);
  for (int i = 0; i < 2; i++) {
    close(fd[i]);
    hb_strbuf_free(&in[i]);
  }
  hbt_stack_stop(&stk);
}

/* --- interest ------------------------------------------------------------------------- */

static bool offs_are(void *arg) { return atomic_load(&bk.off) == *(int *)arg; }

/* The broker hears when a thread gains its first subscriber on a channel
 * and loses its last: three channels (session, event, organization) per
 * room, per thread. */
static void test_interest_per_thread(void **state) {
  (void)state;
  start(2);
  hb_conn_claims r;
  hbt_claims(&stk, &r);
  hb_strbuf in[3] = {HB_STRBUF_INIT, HB_STRBUF_INIT, HB_STRBUF_INIT};
  int a = member(0, &r, "n", &in[0]);
  assert_int_equal(atomic_load(&bk.on), 3);
  int b = member(0, &r, "n", &in[1]); /* the same channels on the same thread */
  assert_int_equal(atomic_load(&bk.on), 3);
  hbt_ws_text(b, "{\"type\":\"subscribe\",\"eventName\":\"other\",\"id\":\"s\"}"); /* same channels, another name */
  hbt_ws_recv(b, &in[1], &fr);
  assert_int_equal(atomic_load(&bk.on), 3);
  int c = member(1, &r, "n", &in[2]); /* the other thread: its own interest */
  assert_int_equal(atomic_load(&bk.on), 6);
  close(a); /* b still holds thread 0's channels: no loss of interest yet */
  close(b);
  int three = 3;
  hbt_io_until(hbt_io(&stk, 0), offs_are, &three, "thread 0 losing interest");
  close(c);
  int six = 6;
  hbt_io_until(hbt_io(&stk, 1), offs_are, &six, "thread 1 losing interest");
  for (int i = 0; i < 3; i++) hb_strbuf_free(&in[i]);
  hbt_stack_stop(&stk);
  assert_int_equal(atomic_load(&bk.on), 6);
}

/* --- quiesce ------------------------------------------------------------------------- */

static void nothing(void *arg) { (void)arg; }

/* Before the I/O threads are joined, deliveries from outside them are
 * refused (their inboxes are about to go). */
static void test_quiesce_refuses_remote_deliveries(void **state) {
  (void)state;
  start(1);
  hb_conn_claims r;
  hbt_claims(&stk, &r);
  hb_strbuf in = HB_STRBUF_INIT;
  int fd = member(0, &r, "n", &in);
  hb_publish_quiesce();
  hb_strbuf prefix = HB_STRBUF_INIT;
  hb_pub late;
  pub_for(&late, &prefix, &r, HB_SCOPE_SESSION, "n", "{\"late\":true}");
  hb_msg *m = msg_at(&late, 1);
  assert_false(hb_publish_deliver_all(m)); /* refused */
  assert_false(hb_publish_post(hbt_io(&stk, 0), NULL, NULL));
  hb_msg_unref(m);
  hb_strbuf_free(&prefix);
  hbt_on_io(hbt_io(&stk, 0), nothing, NULL); /* a delivery job posted before would have run by now */
  expect_only_pong(fd, &in);
  close(fd);
  hb_strbuf_free(&in);
  hbt_stack_stop(&stk);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_deliver_local_counts_and_bytes),
      HBT_TEST(test_deliver_all_reaches_every_thread),
      HBT_TEST(test_gap_notice_reaches_every_subscriber),
      HBT_TEST(test_publish_end_to_end),
      HBT_TEST(test_interest_per_thread),
      HBT_TEST(test_quiesce_refuses_remote_deliveries),
  };
  return cmocka_run_group_tests_name("publish", tests, NULL, NULL);
}
