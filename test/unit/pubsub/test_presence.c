/*
 * test_presence.c - members, counts and coalesced deltas (pubsub/presence.c):
 * tabs of one user count once, a delta per interval at most with the net
 * joins and leaves, the cap on what one lists, pages in join order with a
 * cursor, event channels across sessions, isolation, and no leak.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#include "hubbub/alloc.h"
#include "hubbub/limits.h"
#include "hubbub/strbuf.h"
#include "hubbub/presence.h"

#define INTERVAL_MS 1000
#define TTL_MS 30000

/* Every delta frame built, as its JSON text. */
static char *frames[256];
static hb_chan_key frame_chan[256];
static int nframes;

static bool capture(hb_msg *m) {
  size_t n;
  const char *json = hb_msg_json(m, &n);
  assert_true(nframes < 256);
  frame_chan[nframes] = m->chan;
  frames[nframes] = malloc(n + 1); /* not strndup: the frame has no NUL to stop at */
  memcpy(frames[nframes], json, n);
  frames[nframes][n] = '\0';
  nframes++;
  return true;
}

static void frames_clear(void) {
  for (int i = 0; i < nframes; i++) free(frames[i]);
  nframes = 0;
}

/* What this node told the other nodes (hb_presence_hooks.replicate): the
 * bytes, and each piece's length and flag. */
static hb_strbuf replicated;
static size_t piece_len[64];
static bool piece_full[64];
static int npieces;
static void replicate(void *ud, const void *batch, size_t len, bool full) {
  (void)ud;
  assert_true(npieces < 64);
  piece_len[npieces] = len;
  piece_full[npieces++] = full;
  hb_strbuf_add(&replicated, batch, len);
}

static void replicated_reset(void) {
  hb_strbuf_reset(&replicated);
  npieces = 0;
}

static void start_with(uint32_t list_max, bool several_nodes) {
  hb_presence_limits lim = {.interval_ms = INTERVAL_MS, .list_max = list_max, .ttl_ms = TTL_MS};
  hb_presence_hooks h = {.deliver = capture, .replicate = several_nodes ? replicate : NULL};
  hb_presence_init(&lim, &h);
}
static void start(uint32_t list_max) { start_with(list_max, false); }
/* The leak check (check.h) around the presence module's whole life. */
static int setup(void **state) {
  (void)state;
  hbt_leak_begin();
  start(100);
  return 0;
}
static int teardown(void **state) {
  (void)state;
  hb_presence_shutdown();
  frames_clear();
  hb_strbuf_free(&replicated);
  npieces = 0;
  hbt_leak_end();
  return 0;
}

/* Session channel of room (org o, plugin p, event e, session s). */
static hb_chan_key session_of(int o, int p, int e, int s) {
  hb_uuid u[4];
  memset(u, 0, sizeof u);
  u[0].b[0] = (uint8_t)o;
  u[1].b[0] = (uint8_t)p;
  u[2].b[0] = (uint8_t)e;
  u[3].b[0] = (uint8_t)s;
  hb_chan_key k;
  hb_chan_key_make(&k, HB_SCOPE_SESSION, &u[0], &u[1], &u[2], &u[3]);
  return k;
}

static hb_chan_key event_of(const hb_chan_key *session) {
  hb_chan_key k;
  hb_chan_key_make(&k, HB_SCOPE_EVENT, &session->org, &session->plugin, &session->event, &session->session);
  return k;
}

static hb_presence_member *join(const hb_chan_key *s, const char *user) {
  return hb_presence_join(s, user, strlen(user), NULL, 0);
}

static void observe(const hb_chan_key *chan, int d) {
  hb_presence_lock(chan);
  hb_presence_observe_locked(chan, d);
  hb_presence_unlock(chan);
}

/* A page as text, and its numbers. */
static char page_text[65536];
static hb_presence_page page(const hb_chan_key *chan, uint64_t after, uint32_t limit) {
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_presence_page pg;
  hb_presence_page_get(chan, after, limit, &sb, &pg);
  snprintf(page_text, sizeof page_text, "%.*s", (int)sb.len, sb.buf);
  hb_strbuf_free(&sb);
  return pg;
}

static int count_of(const char *s, const char *needle) {
  int n = 0;
  for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) n++;
  return n;
}

static void test_tabs_count_once(void **state) {
  (void)state;
  hb_chan_key s = session_of(1, 1, 1, 1);
  observe(&s, +1);
  hb_presence_member *a1 = join(&s, "alice"), *a2 = join(&s, "alice");
  assert_ptr_equal(a1, a2); /* one member, two connections */
  assert_int_equal(hb_presence_tick(0), 1);
  assert_int_equal(nframes, 1);
  assert_string_equal(frames[0], "{\"type\":\"presence.delta\",\"scope\":\"session\",\"version\":1,\"count\":1,"
                                 "\"joins\":[{\"user_id\":\"alice\"}],\"leaves\":[],\"truncated\":false}");
  /* One tab closes: alice is still there, nothing to say. */
  hb_presence_leave(&s, a1);
  assert_int_equal(hb_presence_tick(5 * INTERVAL_MS), 0);
  hb_presence_stats st;
  hb_presence_stats_get(&st);
  assert_int_equal(st.members, 2); /* alice in the session and in the event */
  hb_presence_leave(&s, a2);
  assert_int_equal(hb_presence_tick(6 * INTERVAL_MS), 1);
  assert_string_equal(frames[1], "{\"type\":\"presence.delta\",\"scope\":\"session\",\"version\":2,\"count\":0,"
                                 "\"joins\":[],\"leaves\":[\"alice\"],\"truncated\":false}");
  observe(&s, -1);
  hb_presence_stats_get(&st);
  assert_int_equal(st.members, 0);
  assert_int_equal(st.observers, 0);
}

static void test_one_delta_per_interval(void **state) {
  (void)state;
  hb_chan_key s = session_of(1, 1, 1, 2);
  observe(&s, +1);
  join(&s, "u0");
  assert_int_equal(hb_presence_tick(10000), 1); /* a quiet channel: at once */
  char user[16];
  hb_presence_member *m[50];
  for (int i = 1; i < 50; i++) {
    snprintf(user, sizeof user, "u%d", i);
    m[i] = join(&s, user);
    /* ticks inside the interval send nothing */
    assert_int_equal(hb_presence_tick(10000 + i * 10), 0);
  }
  assert_int_equal(hb_presence_tick(10000 + INTERVAL_MS), 1);
  assert_int_equal(nframes, 2);
  assert_non_null(strstr(frames[1], "\"version\":2,\"count\":50,"));
  assert_int_equal(count_of(frames[1], "\"user_id\""), 49);
  /* Came and went within one interval: nobody hears of it. */
  hb_presence_member *x = join(&s, "ghost");
  hb_presence_leave(&s, x);
  for (int i = 1; i < 50; i++) hb_presence_leave(&s, m[i]);
  assert_int_equal(hb_presence_tick(10000 + 2 * INTERVAL_MS), 1);
  assert_null(strstr(frames[2], "ghost"));
  assert_non_null(strstr(frames[2], "\"count\":1,\"joins\":[],"));
  assert_int_equal(count_of(strstr(frames[2], "\"leaves\":"), "\"u"), 49);
  hb_presence_member *u0 = join(&s, "u0"); /* again: the same member */
  hb_presence_leave(&s, u0);
  hb_presence_leave(&s, u0);
  hb_presence_tick(10000 + 3 * INTERVAL_MS);
  observe(&s, -1);
}

static void test_list_cap(void **state) {
  (void)state;
  hb_presence_shutdown();
  start(10);
  hb_chan_key s = session_of(2, 1, 1, 1);
  observe(&s, +1);
  hb_presence_member *m[30];
  char user[16];
  for (int i = 0; i < 30; i++) {
    snprintf(user, sizeof user, "u%d", i);
    m[i] = join(&s, user);
  }
  hb_presence_tick(0);
  assert_int_equal(nframes, 1);
  assert_non_null(strstr(frames[0], "\"count\":30,"));
  assert_int_equal(count_of(frames[0], "\"user_id\""), 10);
  assert_non_null(strstr(frames[0], "\"truncated\":true}"));
  /* 20 leave and 20 join: at most 10 listed, shared between them. */
  for (int i = 0; i < 20; i++) hb_presence_leave(&s, m[i]);
  for (int i = 0; i < 20; i++) {
    snprintf(user, sizeof user, "v%d", i);
    m[i] = join(&s, user);
  }
  hb_presence_tick(INTERVAL_MS);
  assert_non_null(strstr(frames[1], "\"count\":30,"));
  assert_int_equal(count_of(frames[1], "\"user_id\":\"v"), 5);
  assert_int_equal(count_of(strstr(frames[1], "\"leaves\":"), "\"u"), 5);
  for (int i = 0; i < 30; i++) hb_presence_leave(&s, m[i]);
  hb_presence_tick(2 * INTERVAL_MS);
  observe(&s, -1);
}

static void test_pages(void **state) {
  (void)state;
  hb_chan_key s = session_of(3, 1, 1, 1);
  hb_presence_member *m[25];
  char user[16];
  for (int i = 0; i < 25; i++) {
    snprintf(user, sizeof user, "p%02d", i);
    m[i] = hb_presence_join(&s, user, strlen(user), "{\"n\":1}", 7);
  }
  /* Pages read the emitted state: nothing before the tick. */
  hb_presence_page pg = page(&s, 0, 10);
  assert_int_equal(pg.count, 0);
  assert_string_equal(page_text, "[]");
  assert_int_equal(hb_presence_tick(0), 0); /* no observer: no frame, but emitted */
  assert_int_equal(nframes, 0);
  pg = page(&s, 0, 10);
  assert_int_equal(pg.count, 25);
  assert_int_equal(pg.version, 1);
  assert_int_equal(pg.listed, 10);
  assert_true(pg.truncated);
  assert_non_null(strstr(page_text, "{\"user_id\":\"p00\",\"info\":{\"n\":1}}"));
  /* Between pages, p11 (on page 2) and p02 (on page 1) leave, q joins. */
  hb_presence_leave(&s, m[11]);
  hb_presence_leave(&s, m[2]);
  hb_presence_member *q = join(&s, "q");
  hb_presence_tick(INTERVAL_MS);
  uint64_t cur = pg.cursor;
  pg = page(&s, cur, 10);
  assert_int_equal(pg.count, 24);
  assert_int_equal(pg.listed, 10);
  assert_true(pg.truncated);
  assert_non_null(strstr(page_text, "\"p10\""));
  assert_null(strstr(page_text, "\"p11\""));
  assert_non_null(strstr(page_text, "\"p20\""));
  pg = page(&s, pg.cursor, 10);
  assert_int_equal(pg.listed, 5); /* p21..p24 and q, who joined last */
  assert_false(pg.truncated);
  assert_non_null(strstr(page_text, "\"q\""));
  /* A cursor past everyone: an empty page. */
  pg = page(&s, UINT64_MAX, 10);
  assert_int_equal(pg.listed, 0);
  assert_int_equal(pg.count, 24);
  for (int i = 0; i < 25; i++)
    if (i != 2 && i != 11) hb_presence_leave(&s, m[i]);
  hb_presence_leave(&s, q);
  hb_presence_tick(2 * INTERVAL_MS);
  pg = page(&s, 0, 10);
  assert_int_equal(pg.count, 0);
  assert_int_equal(pg.listed, 0);
}

static void test_many_leave_compacts(void **state) {
  (void)state;
  hb_chan_key s = session_of(3, 2, 1, 1);
  enum { N = 2000 };
  static hb_presence_member *m[N];
  char user[16];
  for (int i = 0; i < N; i++) {
    snprintf(user, sizeof user, "m%d", i);
    m[i] = join(&s, user);
  }
  hb_presence_tick(0);
  for (int i = 0; i < N; i++)
    if (i % 10) hb_presence_leave(&s, m[i]);
  hb_presence_tick(INTERVAL_MS);
  /* Every tenth is left; pages of 50 list them all, in order, once. */
  int seen = 0;
  uint64_t after = 0;
  for (;;) {
    hb_presence_page pg = page(&s, after, 50);
    assert_int_equal(pg.count, N / 10);
    seen += (int)pg.listed;
    if (!pg.truncated) break;
    after = pg.cursor;
  }
  assert_int_equal(seen, N / 10);
  for (int i = 0; i < N; i += 10) hb_presence_leave(&s, m[i]);
  hb_presence_tick(2 * INTERVAL_MS);
}

static void test_event_channel(void **state) {
  (void)state;
  hb_chan_key s1 = session_of(4, 1, 7, 1), s2 = session_of(4, 1, 7, 2), ev = event_of(&s1);
  observe(&ev, +1);
  observe(&s1, +1);
  hb_presence_member *a1 = join(&s1, "alice"), *a2 = join(&s2, "alice"), *b = join(&s2, "bob");
  hb_presence_tick(0);
  /* Two deltas: session 1's (alice) and the event's (alice once, bob). */
  assert_int_equal(nframes, 2);
  int evf = memcmp(&frame_chan[0], &ev, sizeof ev) == 0 ? 0 : 1;
  assert_non_null(strstr(frames[evf], "\"scope\":\"event\",\"version\":1,\"count\":2,"));
  assert_non_null(strstr(frames[1 - evf], "\"scope\":\"session\",\"version\":1,\"count\":1,"));
  /* alice leaves session 1 but is still in the event (session 2). */
  hb_presence_leave(&s1, a1);
  hb_presence_tick(INTERVAL_MS);
  assert_int_equal(nframes, 3);
  assert_non_null(strstr(frames[2], "\"scope\":\"session\""));
  assert_int_equal(page(&ev, 0, 10).count, 2);
  hb_presence_leave(&s2, a2);
  hb_presence_leave(&s2, b);
  hb_presence_tick(2 * INTERVAL_MS);
  assert_int_equal(nframes, 4);
  assert_non_null(strstr(frames[3], "\"scope\":\"event\",\"version\":2,\"count\":0,\"joins\":[],\"leaves\":["));
  observe(&ev, -1);
  observe(&s1, -1);
}

static void test_isolation(void **state) {
  (void)state;
  /* Same ids in another plugin, another organization, another session. */
  hb_chan_key s = session_of(5, 1, 1, 1), other_plugin = session_of(5, 2, 1, 1), other_org = session_of(6, 1, 1, 1),
              other_session = session_of(5, 1, 1, 2);
  hb_presence_member *m = join(&s, "alice");
  hb_presence_tick(0);
  assert_int_equal(page(&s, 0, 10).count, 1);
  assert_int_equal(page(&other_plugin, 0, 10).count, 0);
  assert_int_equal(page(&other_org, 0, 10).count, 0);
  assert_int_equal(page(&other_session, 0, 10).count, 0);
  hb_chan_key ev = event_of(&other_plugin);
  assert_int_equal(page(&ev, 0, 10).count, 0);
  hb_presence_leave(&s, m);
  hb_presence_tick(INTERVAL_MS);
}

static void test_snapshot_then_deltas_exact(void **state) {
  (void)state;
  /* A client that applies the deltas after its snapshot's version to the
   * snapshot holds the emitted state, whatever happened in between. */
  hb_chan_key s = session_of(7, 1, 1, 1);
  hb_presence_member *a = join(&s, "a"), *b = join(&s, "b");
  hb_presence_tick(0);
  hb_presence_leave(&s, b); /* pending when the snapshot is taken */
  observe(&s, +1);
  hb_presence_page pg = page(&s, 0, 10);
  assert_int_equal(pg.version, 1);
  assert_string_equal(page_text, "[{\"user_id\":\"a\"},{\"user_id\":\"b\"}]");
  b = join(&s, "b"); /* back within the interval: no net change */
  hb_presence_member *c = join(&s, "c");
  hb_presence_tick(INTERVAL_MS);
  assert_int_equal(nframes, 1);
  assert_string_equal(frames[0], "{\"type\":\"presence.delta\",\"scope\":\"session\",\"version\":2,\"count\":3,"
                                 "\"joins\":[{\"user_id\":\"c\"}],\"leaves\":[],\"truncated\":false}");
  hb_presence_leave(&s, a);
  hb_presence_leave(&s, b);
  hb_presence_leave(&s, c);
  hb_presence_tick(2 * INTERVAL_MS);
  observe(&s, -1);
}

/* --- several nodes ---------------------------------------------------------- */

/* A record of a batch as another node writes it (presence.h). */
static void rec(hb_strbuf *b, char kind, const hb_chan_key *chan, const char *user, const char *info) {
  hb_strbuf_addch(b, kind);
  hb_strbuf_add(b, chan, sizeof *chan);
  hb_strbuf_addch(b, (char)strlen(user));
  hb_strbuf_addstr(b, user);
  size_t il = info ? strlen(info) : 0;
  hb_strbuf_addch(b, (char)(il & 0xff));
  hb_strbuf_addch(b, (char)(il >> 8));
  if (il) hb_strbuf_add(b, info, il);
}

static int apply(uint64_t node, hb_strbuf *b, int64_t now) {
  int rc = hb_presence_apply(node, b->buf, b->len, now);
  hb_strbuf_reset(b);
  return rc;
}

#define NODE_B 0xb0b0b0b0b0b0b0b0ull
#define NODE_C 0xc0c0c0c0c0c0c0c0ull

static void test_nodes_count_users_once(void **state) {
  (void)state;
  hb_presence_shutdown();
  start_with(100, true);
  hb_chan_key s = session_of(8, 1, 1, 1), ev = event_of(&s);
  observe(&s, +1);
  hb_strbuf b = HB_STRBUF_INIT;
  /* node B holds alice (with her info) and bob in the session and the event */
  rec(&b, 'J', &s, "alice", "{\"name\":\"Alice\"}");
  rec(&b, 'J', &ev, "alice", "{\"name\":\"Alice\"}");
  rec(&b, 'J', &s, "bob", NULL);
  rec(&b, 'J', &s, "bob", NULL); /* said twice: held once */
  assert_int_equal(apply(NODE_B, &b, 0), 0);
  /* and this node has a tab of alice */
  hb_presence_member *a = join(&s, "alice");
  hb_presence_tick(0);
  assert_int_equal(nframes, 1);
  assert_non_null(strstr(frames[0], "\"count\":2,"));
  assert_non_null(strstr(frames[0], "{\"user_id\":\"alice\",\"info\":{\"name\":\"Alice\"}}"));
  assert_int_equal(page(&ev, 0, 10).count, 1);
  /* what this node told the others: alice joined the session and the event */
  /* (with the info the member already had: B's) */
  assert_true(replicated.len == 2 * (1 + sizeof(hb_chan_key) + 1 + 5 + 2 + 16));
  assert_int_equal(replicated.buf[0], 'J');
  replicated_reset();
  /* B lets alice go: she is still here through this node */
  rec(&b, 'L', &s, "alice", NULL);
  rec(&b, 'L', &s, "nobody", NULL); /* not held by B: ignored */
  assert_int_equal(apply(NODE_B, &b, 100), 0);
  hb_presence_tick(INTERVAL_MS);
  assert_int_equal(nframes, 1);
  /* this node's alice leaves: now she is gone, and the others are told */
  hb_presence_leave(&s, a);
  hb_presence_tick(2 * INTERVAL_MS);
  assert_int_equal(nframes, 2);
  assert_non_null(strstr(frames[1], "\"count\":1,\"joins\":[],\"leaves\":[\"alice\"]"));
  assert_int_equal(replicated.buf[0], 'L');
  /* B says goodbye: bob leaves with it, and B is no longer known */
  assert_true(hb_presence_node_known(NODE_B));
  hb_presence_drop_node(NODE_B);
  assert_false(hb_presence_node_known(NODE_B));
  hb_presence_tick(3 * INTERVAL_MS);
  assert_non_null(strstr(frames[2], "\"count\":0,\"joins\":[],\"leaves\":[\"bob\"]"));
  hb_strbuf_free(&b);
  observe(&s, -1);
}

static void test_silent_node_expires(void **state) {
  (void)state;
  hb_presence_shutdown();
  start_with(100, true);
  hb_chan_key s = session_of(8, 2, 1, 1);
  hb_strbuf b = HB_STRBUF_INIT;
  for (int i = 0; i < 20; i++) {
    char u[8];
    snprintf(u, sizeof u, "c%d", i);
    rec(&b, 'J', &s, u, NULL);
  }
  assert_int_equal(apply(NODE_C, &b, 1000), 0);
  rec(&b, 'J', &s, "b0", NULL);
  assert_int_equal(apply(NODE_B, &b, 1000), 0);
  hb_presence_tick(1000);
  assert_int_equal(page(&s, 0, 100).count, 21);
  hb_presence_stats st;
  hb_presence_stats_get(&st);
  assert_int_equal(st.nodes, 2);
  /* B keeps beating, C falls silent: after the TTL, C's members leave */
  for (int64_t t = 1000; t <= 1000 + TTL_MS + 2000; t += 1000) {
    hb_presence_heartbeat(NODE_B, t);
    hb_presence_tick(t);
  }
  assert_int_equal(page(&s, 0, 100).count, 1);
  hb_presence_stats_get(&st);
  assert_int_equal(st.nodes, 1);
  assert_false(hb_presence_node_known(NODE_C)); /* heard from again: it must be asked for a resync */
  assert_true(hb_presence_node_known(NODE_B));
  /* a node that comes back is counted again */
  rec(&b, 'J', &s, "c0", NULL);
  assert_int_equal(apply(NODE_C, &b, 40000), 0);
  hb_presence_tick(40000);
  assert_int_equal(page(&s, 0, 100).count, 2);
  hb_strbuf_free(&b);
}

static void test_bad_batches(void **state) {
  (void)state;
  hb_chan_key s = session_of(8, 3, 1, 1), org;
  hb_chan_key_make(&org, HB_SCOPE_ORGANIZATION, &s.org, &s.plugin, &s.event, &s.session);
  hb_strbuf b = HB_STRBUF_INIT;
  rec(&b, 'J', &s, "ok", NULL);
  rec(&b, 'X', &s, "bad", NULL);
  rec(&b, 'J', &s, "never", NULL);
  assert_int_equal(apply(NODE_B, &b, 0), -1); /* what came before applies */
  rec(&b, 'J', &org, "org", NULL);
  assert_int_equal(apply(NODE_B, &b, 0), -1); /* no presence per organization */
  rec(&b, 'J', &s, "", NULL);
  assert_int_equal(apply(NODE_B, &b, 0), -1);
  rec(&b, 'J', &s, "x", "[1]");
  assert_int_equal(apply(NODE_B, &b, 0), -1);
  rec(&b, 'J', &s, "truncated", "{\"a\":1}");
  b.len -= 3;
  assert_int_equal(apply(NODE_B, &b, 0), -1);
  hb_strbuf_addch(&b, 'J');
  assert_int_equal(apply(NODE_B, &b, 0), -1);
  hb_presence_tick(0);
  hb_presence_page pg = page(&s, 0, 10);
  assert_int_equal(pg.count, 1);
  assert_string_equal(page_text, "[{\"user_id\":\"ok\"}]");
  hb_strbuf_free(&b);
}

static void test_dump_and_round_trip(void **state) {
  (void)state;
  hb_presence_shutdown();
  start_with(100, true);
  hb_chan_key s = session_of(8, 4, 1, 1), ev = event_of(&s);
  hb_presence_member *m1 = hb_presence_join(&s, "dora", 4, "{\"r\":\"host\"}", 12), *m2 = join(&s, "eve");
  hb_strbuf dump = HB_STRBUF_INIT;
  hb_presence_dump(&dump);
  /* a node that applies this node's dump counts what it holds */
  hb_presence_leave(&s, m1);
  hb_presence_leave(&s, m2);
  hb_presence_tick(0);
  assert_int_equal(hb_presence_apply(NODE_B, dump.buf, dump.len, 0), 0);
  hb_presence_tick(INTERVAL_MS);
  hb_presence_page pg = page(&s, 0, 10);
  assert_int_equal(pg.count, 2);
  assert_non_null(strstr(page_text, "{\"user_id\":\"dora\",\"info\":{\"r\":\"host\"}}"));
  assert_int_equal(page(&ev, 0, 10).count, 2);
  hb_strbuf_free(&dump);
}

/* A resync: everything this node holds, in whole-record pieces of at most
 * HB_PRESENCE_REPLICATE_CHUNK_BYTES, the first flagged; then changes again. */
static void test_resync(void **state) {
  (void)state;
  hb_presence_shutdown();
  start_with(100, true);
  /* nothing held: one empty piece that says so (the others drop this node) */
  hb_presence_resync();
  hb_presence_tick(0);
  assert_int_equal(npieces, 1);
  assert_true(piece_full[0] && piece_len[0] == 0);
  replicated_reset();
  hb_presence_tick(1); /* asked once, sent once */
  assert_int_equal(npieces, 0);
  /* 600 members with some info in one session (and its event): several pieces */
  hb_chan_key s = session_of(8, 5, 1, 1);
  enum { N = 600 };
  static hb_presence_member *held_m[N];
  char info[160];
  snprintf(info, sizeof info, "{\"pad\":\"%0120d\"}", 0);
  for (int i = 0; i < N; i++) {
    char u[16];
    snprintf(u, sizeof u, "user%d", i);
    held_m[i] = hb_presence_join(&s, u, strlen(u), info, strlen(info));
  }
  hb_presence_resync(); /* before the tick: the joins go out in the resync, not twice */
  hb_presence_tick(2);
  assert_true(npieces > 1);
  size_t total = 0;
  for (int i = 0; i < npieces; i++) {
    assert_true(piece_len[i] > 0 && piece_len[i] <= HB_PRESENCE_REPLICATE_CHUNK_BYTES);
    assert_int_equal(piece_full[i], i == 0);
    /* every piece is whole records: another node can apply it alone */
    assert_int_equal(hb_presence_apply(NODE_C, replicated.buf + total, piece_len[i], 2), 0);
    total += piece_len[i];
  }
  hb_strbuf dump = HB_STRBUF_INIT;
  hb_presence_dump(&dump);
  assert_int_equal(total, dump.len);
  assert_memory_equal(replicated.buf, dump.buf, dump.len);
  hb_strbuf_free(&dump);
  hb_presence_drop_node(NODE_C);
  replicated_reset();
  /* then changes only: one leave in the session and the event */
  hb_presence_leave(&s, held_m[0]);
  hb_presence_tick(3);
  assert_int_equal(npieces, 1);
  assert_false(piece_full[0]);
  assert_int_equal(replicated.buf[0], 'L');
  assert_int_equal(piece_len[0], 2 * (1 + sizeof(hb_chan_key) + 1 + 5 + 2));
  for (int i = 1; i < N; i++) hb_presence_leave(&s, held_m[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_tabs_count_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_one_delta_per_interval, setup, teardown),
      cmocka_unit_test_setup_teardown(test_list_cap, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pages, setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_leave_compacts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_event_channel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_isolation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_snapshot_then_deltas_exact, setup, teardown),
      cmocka_unit_test_setup_teardown(test_nodes_count_users_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_silent_node_expires, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_batches, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dump_and_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resync, setup, teardown),
  };
  return cmocka_run_group_tests_name("presence", tests, NULL, NULL);
}
