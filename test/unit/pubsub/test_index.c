/* test_index.c - the room index: scope matching, event-name filtering,
 * isolation, interest callbacks, unsubscribe. Connections are opaque to the
 * index, so plain tagged structs stand in for them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"

#include "hubbub/alloc.h"
#include "hubbub/index.h"

struct hb_conn {
  int id;
  int hits;
};

typedef struct {
  int on, off;
} interest_log;

static void on_interest(void *ud, const hb_chan_key *k, bool on) {
  interest_log *l = ud;
  if (on) l->on++;
  else l->off++;
}

static void count_hit(struct hb_conn *c, void *ud) {
  c->hits++;
  (*(int *)ud)++;
}

static hb_uuid U(uint8_t tag) {
  hb_uuid u;
  memset(&u, tag, sizeof u);
  return u;
}

static hb_chan_key room(uint8_t o, uint8_t p, uint8_t e, uint8_t s) {
  hb_uuid uo = U(o), up = U(p), ue = U(e), us = U(s);
  hb_chan_key k;
  hb_chan_key_make(&k, HB_SCOPE_SESSION, &uo, &up, &ue, &us);
  return k;
}

static size_t publish(hb_index *ix, hb_scope scope, const hb_chan_key *r, const char *name) {
  hb_chan_key k;
  hb_chan_key_make(&k, scope, &r->org, &r->plugin, &r->event, &r->session);
  int n = 0;
  size_t m = hb_index_foreach(ix, &k, name, strlen(name), count_hit, &n);
  assert_int_equal(m, (size_t)n);
  return m;
}

static hb_sub *sub(hb_index *ix, hb_list *list, struct hb_conn *c, const hb_chan_key *r, const char *name) {
  hb_sub *s = hb_index_subscribe(ix, c, r, name, strlen(name));
  assert_non_null(s);
  hb_list_insert_tail(list, &s->conn_link);
  return s;
}

static void test_scopes_nest(void **state) {
  interest_log log = {0};
  hb_index ix;
  hb_index_init(&ix, on_interest, &log);
  hb_list l1, l2, l3;
  hb_list_init(&l1);
  hb_list_init(&l2);
  hb_list_init(&l3);
  struct hb_conn a = {1, 0}, b = {2, 0}, c = {3, 0};
  hb_chan_key ra = room(1, 1, 1, 1), rb = room(1, 1, 1, 2), rc = room(1, 1, 2, 3);
  sub(&ix, &l1, &a, &ra, "x");
  sub(&ix, &l2, &b, &rb, "x");
  sub(&ix, &l3, &c, &rc, "x");
  /* session: only room a; event 1: a and b; organization: all three */
  assert_int_equal(publish(&ix, HB_SCOPE_SESSION, &ra, "x"), 1);
  assert_int_equal(a.hits, 1);
  assert_int_equal(publish(&ix, HB_SCOPE_EVENT, &ra, "x"), 2);
  assert_int_equal(c.hits, 0);
  assert_int_equal(publish(&ix, HB_SCOPE_ORGANIZATION, &rc, "x"), 3);
  assert_int_equal(a.hits, 3);
  assert_int_equal(b.hits, 2);
  assert_int_equal(c.hits, 1);
  /* 3 subs x 3 levels over channels: s1 s2 s3, e1 e2, o = 6 channels */
  assert_int_equal(log.on, 6);
  while (!hb_list_empty(&l1)) hb_index_unsubscribe(&ix, hb_container_of(l1.next, hb_sub, conn_link));
  while (!hb_list_empty(&l2)) hb_index_unsubscribe(&ix, hb_container_of(l2.next, hb_sub, conn_link));
  while (!hb_list_empty(&l3)) hb_index_unsubscribe(&ix, hb_container_of(l3.next, hb_sub, conn_link));
  assert_int_equal(log.off, 6);
  assert_int_equal(ix.nsubs, 0);
  hb_index_destroy(&ix);
}

/* A presence topic ('$'-reserved name) is delivered like any name but makes
 * no interest: the broker never carries it. */
static void test_reserved_names_make_no_interest(void **state) {
  interest_log log = {0};
  hb_index ix;
  hb_index_init(&ix, on_interest, &log);
  hb_list l1, l2;
  hb_list_init(&l1);
  hb_list_init(&l2);
  struct hb_conn a = {1, 0}, b = {2, 0};
  hb_chan_key ra = room(1, 1, 1, 1);
  sub(&ix, &l1, &a, &ra, "$presence.session");
  assert_int_equal(log.on, 0);
  assert_int_equal(publish(&ix, HB_SCOPE_SESSION, &ra, "$presence.session"), 1);
  sub(&ix, &l2, &b, &ra, "x"); /* a real name: the three channels now */
  assert_int_equal(log.on, 3);
  while (!hb_list_empty(&l2)) hb_index_unsubscribe(&ix, hb_container_of(l2.next, hb_sub, conn_link));
  assert_int_equal(log.off, 3); /* the presence observer left no interest behind */
  assert_int_equal(publish(&ix, HB_SCOPE_SESSION, &ra, "$presence.session"), 1);
  while (!hb_list_empty(&l1)) hb_index_unsubscribe(&ix, hb_container_of(l1.next, hb_sub, conn_link));
  assert_int_equal(log.on, 3);
  assert_int_equal(log.off, 3);
  assert_int_equal(ix.nsubs, 0);
  hb_index_destroy(&ix);
}

static void test_isolation(void **state) {
  hb_index ix;
  hb_index_init(&ix, NULL, NULL);
  hb_list l1;
  hb_list_init(&l1);
  struct hb_conn a = {1, 0};
  hb_chan_key ra = room(1, 1, 1, 1);
  sub(&ix, &l1, &a, &ra, "x");
  hb_chan_key other_plugin = room(1, 2, 1, 1), other_org = room(2, 1, 1, 1);
  hb_chan_key other_session = room(1, 1, 1, 9), other_event = room(1, 1, 9, 1);
  assert_int_equal(publish(&ix, HB_SCOPE_SESSION, &other_plugin, "x"), 0);
  assert_int_equal(publish(&ix, HB_SCOPE_ORGANIZATION, &other_plugin, "x"), 0);
  assert_int_equal(publish(&ix, HB_SCOPE_ORGANIZATION, &other_org, "x"), 0);
  assert_int_equal(publish(&ix, HB_SCOPE_SESSION, &other_session, "x"), 0);
  assert_int_equal(publish(&ix, HB_SCOPE_EVENT, &other_event, "x"), 0);
  /* event scope from another session of the same event does reach a */
  assert_int_equal(publish(&ix, HB_SCOPE_EVENT, &other_session, "x"), 1);
  /* names are exact: no prefix, case or wildcard matching */
  assert_int_equal(publish(&ix, HB_SCOPE_SESSION, &ra, "X"), 0);
  assert_int_equal(publish(&ix, HB_SCOPE_SESSION, &ra, "x "), 0);
  assert_int_equal(publish(&ix, HB_SCOPE_SESSION, &ra, "*"), 0);
  assert_int_equal(publish(&ix, HB_SCOPE_SESSION, &ra, ""), 0);
  hb_index_unsubscribe(&ix, hb_container_of(l1.next, hb_sub, conn_link));
  assert_int_equal(publish(&ix, HB_SCOPE_SESSION, &ra, "x"), 0);
  hb_index_destroy(&ix);
}

static void test_find_and_names(void **state) {
  hb_index ix;
  hb_index_init(&ix, NULL, NULL);
  hb_list l;
  hb_list_init(&l);
  struct hb_conn a = {1, 0};
  hb_chan_key ra = room(1, 1, 1, 1);
  sub(&ix, &l, &a, &ra, "alpha");
  sub(&ix, &l, &a, &ra, "beta");
  hb_sub *s = hb_index_find_sub(&l, "beta", 4);
  assert_non_null(s);
  size_t n;
  const char *name = hb_sub_name(s, &n);
  assert_int_equal(n, 4);
  assert_memory_equal(name, "beta", 4);
  assert_null(hb_index_find_sub(&l, "gamma", 5));
  assert_null(hb_index_find_sub(&l, "bet", 3));
  /* a name over the limit is refused rather than truncated */
  char longname[HB_MAX_EVENT_NAME_BYTES + 2];
  memset(longname, 'a', sizeof longname);
  assert_null(hb_index_subscribe(&ix, &a, &ra, longname, sizeof longname));
  while (!hb_list_empty(&l)) hb_index_unsubscribe(&ix, hb_container_of(l.next, hb_sub, conn_link));
  hb_index_destroy(&ix);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_scopes_nest),
      HBT_TEST(test_reserved_names_make_no_interest),
      HBT_TEST(test_isolation),
      HBT_TEST(test_find_and_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
