/*
 * test_history.c - positions and bounded history (pubsub/history.c), the
 * resume string (proto/resume.c), idempotent publishes (pubsub/idem.c) and
 * the history file (store/historydb.c): statuses of a recovery, order,
 * limits, the save and the load, the clean mark.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

#include "hubbub/alloc.h"
#include "hubbub/clock.h"
#include "hubbub/history.h"
#include "hubbub/historydb.h"
#include "hubbub/idem.h"
#include "hubbub/limits.h"
#include "hubbub/resume.h"


static hb_chan_key chan_of(int n) {
  hb_uuid u[4];
  memset(u, 0, sizeof u);
  for (int i = 0; i < 4; i++) u[i].b[0] = (uint8_t)(n + i + 1);
  hb_chan_key k;
  hb_chan_key_make(&k, HB_SCOPE_SESSION, &u[0], &u[1], &u[2], &u[3]);
  return k;
}

typedef struct {
  const hb_chan_key *chan;
  const char *name;
  int64_t sent_ms;
} build_arg;

static hb_msg *build(void *ud, hb_pos pos) {
  build_arg *a = ud;
  char json[64];
  int n = snprintf(json, sizeof json, "{\"offset\":%llu}", (unsigned long long)pos.offset);
  hb_msg *m = hb_msg_new(a->chan, a->name, strlen(a->name), json, (size_t)n);
  m->sent_ms = a->sent_ms;
  return m;
}

static int delivered;
static uint64_t last_delivered;
static void deliver(void *ud, hb_msg *m) {
  (void)ud;
  delivered++;
  assert_true(m->offset > last_delivered); /* under the lock, in order */
  last_delivered = m->offset;
}

static hb_pos append(const hb_chan_key *k, const char *name) {
  build_arg a = {k, name, hb_wall_ms()};
  hb_msg *m = hb_history_append(k, build, &a, deliver, NULL);
  hb_pos p = {m->epoch, m->offset};
  hb_msg_unref(m);
  return p;
}

static hb_history_status read_since(const hb_chan_key *k, hb_pos since, size_t max, hb_msgvec *out) {
  hb_history_lock(k, 1);
  hb_history_status st = hb_history_read_locked(k, since, NULL, NULL, max, out);
  hb_history_unlock(k, 1);
  return st;
}

static void start(uint32_t size, int64_t ttl_ms) {
  hb_history_limits lim = {.size = size, .ttl_ms = ttl_ms, .max_channels = 1000};
  assert_int_equal(hb_history_init(&lim, NULL), 0);
  delivered = 0;
  last_delivered = 0;
}

static void test_positions_and_statuses(void **state) {
  (void)state;
  start(5, 60000);
  hb_chan_key k = chan_of(1), other = chan_of(2);
  hb_history_lock(&k, 1);
  hb_pos p0 = hb_history_position_locked(&k);
  hb_history_unlock(&k, 1);
  assert_int_not_equal(p0.epoch, 0);
  assert_int_equal(p0.offset, 0);
  for (int i = 1; i <= 3; i++) {
    hb_pos p = append(&k, "a");
    assert_int_equal(p.epoch, p0.epoch);
    assert_int_equal(p.offset, (uint64_t)i);
  }
  assert_int_equal(delivered, 3);
  hb_msgvec mv = {0};
  assert_int_equal(read_since(&k, p0, 100, &mv), HB_HISTORY_OK);
  assert_int_equal(mv.n, 3);
  for (size_t i = 0; i < mv.n; i++) assert_int_equal(mv.v[i]->offset, i + 1);
  hb_msgvec_free(&mv);
  /* nothing missed */
  assert_int_equal(read_since(&k, (hb_pos){p0.epoch, 3}, 100, &mv), HB_HISTORY_OK);
  assert_int_equal(mv.n, 0);
  /* too many: nothing appended */
  assert_int_equal(read_since(&k, p0, 2, &mv), HB_HISTORY_TOO_MANY);
  assert_int_equal(mv.n, 0);
  /* another epoch, a future offset */
  assert_int_equal(read_since(&k, (hb_pos){p0.epoch ^ 1, 0}, 100, &mv), HB_HISTORY_EPOCH_CHANGED);
  assert_int_equal(read_since(&k, (hb_pos){p0.epoch, 4}, 100, &mv), HB_HISTORY_AHEAD);
  /* another channel's epoch never matches this one's */
  hb_history_lock(&other, 1);
  hb_pos po = hb_history_position_locked(&other);
  hb_history_unlock(&other, 1);
  assert_int_not_equal(po.epoch, p0.epoch);
  /* past the ring: trimmed */
  for (int i = 0; i < 4; i++) append(&k, "a");
  assert_int_equal(read_since(&k, p0, 100, &mv), HB_HISTORY_TRIMMED);
  assert_int_equal(read_since(&k, (hb_pos){p0.epoch, 2}, 100, &mv), HB_HISTORY_OK);
  assert_int_equal(mv.n, 5);
  hb_msgvec_free(&mv);
  hb_history_shutdown();
}

static void test_ttl_and_sweep(void **state) {
  (void)state;
  start(10, 1000);
  hb_chan_key k = chan_of(3);
  hb_history_lock(&k, 1);
  hb_pos p0 = hb_history_position_locked(&k);
  hb_history_unlock(&k, 1);
  build_arg old = {&k, "a", hb_wall_ms() - 5000};
  hb_msg_unref(hb_history_append(&k, build, &old, deliver, NULL));
  hb_msgvec mv = {0};
  assert_int_equal(read_since(&k, p0, 100, &mv), HB_HISTORY_TRIMMED); /* too old */
  /* An entry with nothing kept is not forgotten as soon as its messages
   * expire (a client back then learns "trimmed")... */
  hb_history_sweep(hb_wall_ms() + 10000);
  hb_history_lock(&k, 1);
  assert_int_equal(hb_history_position_locked(&k).epoch, p0.epoch);
  hb_history_unlock(&k, 1);
  /* ...but after the TTL and HB_HISTORY_FORGET_GRACE_MS without use. */
  hb_history_sweep(hb_wall_ms() + 10000 + HB_HISTORY_FORGET_GRACE_MS);
  hb_history_lock(&k, 1);
  hb_pos p1 = hb_history_position_locked(&k);
  hb_history_unlock(&k, 1);
  assert_int_not_equal(p1.epoch, p0.epoch);
  hb_history_shutdown();
}

static void test_page(void **state) {
  (void)state;
  start(4, 60000);
  hb_chan_key k = chan_of(4);
  for (int i = 0; i < 6; i++) append(&k, i % 2 ? "odd" : "even");
  hb_msgvec mv = {0};
  hb_pos now;
  uint64_t first;
  bool more;
  hb_history_page(&k, 0, NULL, NULL, 2, &mv, &now, &first, &more);
  assert_int_equal(now.offset, 6);
  assert_int_equal(first, 3);
  assert_int_equal(mv.n, 2);
  assert_int_equal(mv.v[0]->offset, 3);
  assert_true(more);
  hb_msgvec_free(&mv);
  hb_history_page(&k, 4, NULL, NULL, 10, &mv, &now, &first, &more);
  assert_int_equal(mv.n, 2);
  assert_false(more);
  hb_msgvec_free(&mv);
  hb_history_shutdown();
}

static void test_resume_string(void **state) {
  (void)state;
  hb_pos p[3] = {{0x0123456789abcdefull, 0}, {0xfedcba9876543210ull, 42}, {1, UINT64_MAX}};
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_resume_format(&sb, p);
  assert_string_equal(sb.buf, "h1.0123456789abcdef.0.fedcba9876543210.42.0000000000000001.18446744073709551615");
  hb_pos q[3];
  assert_true(hb_resume_parse(sb.buf, sb.len, q));
  assert_memory_equal(p, q, sizeof p);
  hb_strbuf_free(&sb);
  static const char *const bad[] = {
      "", "h1", "h1.", "h2.0123456789abcdef.0.0123456789abcdef.0.0123456789abcdef.0",
      "h1.0123456789abcdef.0.0123456789abcdef.0.0123456789abcdef", /* two and a half */
      "h1.0123456789abcdef.0.0123456789abcdef.0.0123456789abcdef.0.", /* trailing dot */
      "h1.0123456789ABCDEF.0.0123456789abcdef.0.0123456789abcdef.0", /* upper case */
      "h1.0000000000000000.0.0123456789abcdef.0.0123456789abcdef.0", /* epoch 0 */
      "h1.0123456789abcdef.01.0123456789abcdef.0.0123456789abcdef.0", /* leading zero */
      "h1.0123456789abcdef.18446744073709551616.0123456789abcdef.0.0123456789abcdef.0", /* 2^64 */
      "h1.0123456789abcde.0.0123456789abcdef.0.0123456789abcdef.0", /* 15 digits */
      "h1.0123456789abcdef.-1.0123456789abcdef.0.0123456789abcdef.0",
      "h1.0123456789abcdef.1 .0123456789abcdef.0.0123456789abcdef.0",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (hb_resume_parse(bad[i], strlen(bad[i]), q)) fail_msg("accepted: %s", bad[i]);
}

static void test_idempotency(void **state) {
  (void)state;
  hb_idem_init(1000, 100);
  hb_uuid plugin = {{1}}, other = {{2}};
  hb_publish_result r, got;
  memset(&r, 0, sizeof r);
  int64_t now = 1000000;
  assert_false(hb_idem_lock_find(&plugin, "k", 1, now, &got));
  r.err = HB_OK;
  r.pos = (hb_pos){7, 9};
  snprintf(r.message_id, sizeof r.message_id, "m1");
  hb_idem_store_unlock(&plugin, "k", 1, now, &r);
  assert_true(hb_idem_lock_find(&plugin, "k", 1, now + 10, &got));
  assert_string_equal(got.message_id, "m1");
  assert_int_equal(got.pos.offset, 9);
  /* per plugin */
  assert_false(hb_idem_lock_find(&other, "k", 1, now, &got));
  hb_idem_store_unlock(&other, "k", 1, now, &(hb_publish_result){.err = HB_E_RATE_LIMITED});
  assert_false(hb_idem_lock_find(&other, "k", 1, now, &got)); /* a refusal is not remembered */
  hb_idem_store_unlock(&other, "k", 1, now, &(hb_publish_result){.err = HB_E_RATE_LIMITED});
  /* past the TTL */
  assert_false(hb_idem_lock_find(&plugin, "k", 1, now + 2000, &got));
  hb_idem_store_unlock(&plugin, "k", 1, now + 2000, &(hb_publish_result){.err = HB_E_INTERNAL});
  hb_idem_shutdown();
}

static void test_persistence(void **state) {
  (void)state;
  char dir[] = "/tmp/hubbub-history-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char err[256];
  hb_historydb *db = NULL;
  hb_chan_key k = chan_of(5);
  hb_history_limits lim = {.size = 3, .ttl_ms = 60000, .max_channels = 100};

  delivered = 0;
  last_delivered = 0;
  /* A run that stops gracefully: everything comes back. */
  assert_int_equal(hb_historydb_open(&db, dir, err, sizeof err), 0);
  assert_int_equal(hb_history_init(&lim, db), 0);
  hb_pos last = {0, 0};
  for (int i = 0; i < 5; i++) last = append(&k, "p");
  assert_int_equal(hb_history_flush(), 0);
  hb_history_shutdown();
  hb_historydb_close(db);

  assert_int_equal(hb_historydb_open(&db, dir, err, sizeof err), 0);
  assert_int_equal(hb_history_init(&lim, db), 0);
  hb_msgvec mv = {0};
  assert_int_equal(read_since(&k, (hb_pos){last.epoch, 2}, 100, &mv), HB_HISTORY_OK);
  assert_int_equal(mv.n, 3);
  assert_int_equal(mv.v[0]->offset, 3);
  size_t jl;
  const char *json = hb_msg_json(mv.v[2], &jl);
  assert_int_equal(jl, strlen("{\"offset\":5}"));
  assert_memory_equal(json, "{\"offset\":5}", jl);
  hb_msgvec_free(&mv);
  /* ... then a run that crashes: its file is left marked in use (which is
   * all a crash leaves behind that matters here). */
  append(&k, "p");
  hb_history_shutdown();
  assert_int_equal(hb_historydb_set_clean(db, false), 0);
  hb_historydb_close(db);
  assert_int_equal(hb_historydb_open(&db, dir, err, sizeof err), 0);
  assert_int_equal(hb_history_init(&lim, db), 0);
  hb_history_lock(&k, 1);
  hb_pos now = hb_history_position_locked(&k);
  hb_history_unlock(&k, 1);
  assert_int_not_equal(now.epoch, last.epoch); /* a new epoch */
  assert_int_equal(now.offset, 6);             /* offsets go on */
  assert_int_equal(read_since(&k, (hb_pos){last.epoch, 5}, 100, &mv), HB_HISTORY_EPOCH_CHANGED);
  hb_history_shutdown();
  hb_historydb_close(db);

  char path[512];
  snprintf(path, sizeof path, "rm -rf '%s'", dir);
  assert_int_equal(system(path), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_positions_and_statuses),
      HBT_TEST(test_ttl_and_sweep),
      HBT_TEST(test_page),
      HBT_TEST(test_resume_string),
      HBT_TEST(test_idempotency),
      HBT_TEST(test_persistence),
  };
  return cmocka_run_group_tests_name("history", tests, NULL, NULL);
}
