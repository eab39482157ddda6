/* test_window.c - when an I/O thread holds fan-out output (window.c): the
 * decision from made-up clocks, so no timing is involved. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "check.h"

#include "hubbub/limits.h"
#include "hubbub/window.h"

#define MS 1000000ull

/* A clock the tests move: wall time, the thread's CPU time, its sends and
 * the items they carried (`per_send` each, 1 unless a test says more). */
static hb_window_clock clk;
#define wall clk.now_ns
#define cpu clk.cpu_ns
static unsigned per_send;

static bool window_sample(hb_window *w) { return hb_window_sample(w, &clk); }

/* One sample of HB_WINDOW_SAMPLE_MS during which the thread was busy
 * `permille` of the time, making 100 sends; returns whether the window
 * changed. */
static bool sample(hb_window *w, unsigned permille) {
  wall += HB_WINDOW_SAMPLE_MS * MS;
  cpu += HB_WINDOW_SAMPLE_MS * MS * permille / 1000;
  clk.sends += 100;
  clk.items += 100 * per_send;
  assert_true(hb_window_due(w, wall));
  return window_sample(w);
}

static void start(hb_window *w) {
  clk = (hb_window_clock){.now_ns = 1000 * MS, .cpu_ns = 10 * MS};
  per_send = 1;
  hb_window_init(w, &clk, HB_DEFAULT_FLUSH_INTERVAL_MS, HB_DEFAULT_FLUSH_INTERVAL_MS);
}

/* An idle or merely busy thread never holds anything: a lone delivery, a
 * reply or an HTTP publish at 70 % CPU goes out at the end of its turn. */
static void test_off_until_saturated(void **state) {
  (void)state;
  hb_window w;
  start(&w);
  assert_false(w.on);
  for (int i = 0; i < 40; i++) assert_false(sample(&w, i % 2 ? 0 : HB_WINDOW_BUSY_ON_PERMILLE - 1));
  assert_false(w.on);
  assert_int_equal(w.last_busy_permille, 0);
  /* not due before a whole sample */
  assert_false(hb_window_due(&w, wall + HB_WINDOW_SAMPLE_MS * MS - 1));
}

/* Saturated: on at once, for at least a spell, whatever the next samples
 * say above the idle bound; then off as soon as a sample is under the off
 * bound. */
static void test_on_when_saturated_for_a_spell(void **state) {
  (void)state;
  hb_window w;
  start(&w);
  wall += HB_WINDOW_RETRY_MS * MS * 2;
  assert_false(window_sample(&w)); /* an idle stretch: stays off */
  assert_true(sample(&w, 1000));
  assert_true(w.on);
  assert_int_equal(w.hold_ms, HB_WINDOW_HOLD_MIN_MS);
  int spell = HB_WINDOW_HOLD_MIN_MS / HB_WINDOW_SAMPLE_MS;
  for (int i = 1; i < spell; i++) assert_false(sample(&w, HB_WINDOW_BUSY_IDLE_PERMILLE)); /* the window works: less busy */
  assert_true(w.on);
  assert_true(sample(&w, HB_WINDOW_BUSY_OFF_PERMILLE - 1));
  assert_false(w.on);
}

/* While on, a thread that is still busy keeps it after the spell. */
static void test_stays_on_while_busy(void **state) {
  (void)state;
  hb_window w;
  start(&w);
  assert_true(sample(&w, 950));
  for (int i = 0; i < 100; i++) assert_false(sample(&w, HB_WINDOW_BUSY_OFF_PERMILLE));
  assert_true(w.on);
}

/* A thread that goes idle drops the window at once, spell or not: a lone
 * delivery after a busy spell is not held. */
static void test_idle_ends_it_at_once(void **state) {
  (void)state;
  hb_window w;
  start(&w);
  assert_true(sample(&w, 1000));
  assert_true(sample(&w, HB_WINDOW_BUSY_IDLE_PERMILLE - 1));
  assert_false(w.on);
  /* a long quiet stretch is one sample: nearly no CPU over it */
  assert_true(sample(&w, 1000));
  wall += 10000 * MS;
  cpu += 1 * MS;
  assert_true(window_sample(&w));
  assert_false(w.on);
}

/* Saturating again right after the window went off means the window was
 * what kept the thread below saturation: each such return doubles the
 * spell, up to the maximum; a return after a longer while starts over. */
static void test_spell_doubles_when_off_resaturates(void **state) {
  (void)state;
  hb_window w;
  start(&w);
  uint32_t expect = HB_WINDOW_HOLD_MIN_MS;
  for (int round = 0; round < 8; round++) {
    assert_true(sample(&w, 1000));
    assert_int_equal(w.hold_ms, expect);
    /* the spell, with the window making the thread half busy */
    for (uint32_t t = HB_WINDOW_SAMPLE_MS; t < w.hold_ms; t += HB_WINDOW_SAMPLE_MS) assert_false(sample(&w, 500));
    assert_true(sample(&w, 500)); /* over, and under the off bound */
    assert_false(w.on);
    expect = expect * 2 > HB_WINDOW_HOLD_MAX_MS ? HB_WINDOW_HOLD_MAX_MS : expect * 2;
  }
  assert_int_equal(expect, HB_WINDOW_HOLD_MAX_MS);
  /* off for longer than the retry bound: the next spell is the shortest */
  for (int i = 0; i <= HB_WINDOW_RETRY_MS / HB_WINDOW_SAMPLE_MS; i++) assert_false(sample(&w, 700));
  assert_true(sample(&w, 1000));
  assert_int_equal(w.hold_ms, HB_WINDOW_HOLD_MIN_MS);
}

/* CPU time can run a little ahead of the wall clock (two clocks, read one
 * after the other): capped at 1000 permille, never wrapped. */
static void test_busy_capped(void **state) {
  (void)state;
  hb_window w;
  start(&w);
  wall += HB_WINDOW_SAMPLE_MS * MS;
  cpu += HB_WINDOW_SAMPLE_MS * MS + 5 * MS;
  window_sample(&w);
  assert_int_equal(w.last_busy_permille, 1000);
  assert_false(window_sample(&w)); /* an empty sample decides nothing */
}

/* Saturated, but every send already carries many items (HTTP publishes as
 * fast as answered: each turn reads many requests): holding would add
 * latency and merge little more, so the window stays off. */
static void test_merged_sends_keep_it_off(void **state) {
  (void)state;
  hb_window w;
  start(&w);
  per_send = HB_WINDOW_MERGED_ITEMS_PER_SEND;
  for (int i = 0; i < 20; i++) assert_false(sample(&w, 1000));
  per_send = HB_WINDOW_MERGED_ITEMS_PER_SEND - 1;
  assert_true(sample(&w, 1000));
  /* a sample without any send (the thread busy with something else) is
   * judged on its CPU alone */
  start(&w);
  wall += HB_WINDOW_SAMPLE_MS * MS;
  cpu += HB_WINDOW_SAMPLE_MS * MS;
  assert_true(window_sample(&w));
}

/* While saturated with the window on, the window doubles each sample up to
 * its maximum; headroom halves it, and it ends only once back at its base
 * (the longer hold may be what made the headroom). */
static void test_window_grows_while_saturated(void **state) {
  (void)state;
  hb_window w;
  start(&w);
  hb_window_init(&w, &clk, 5, 20);
  assert_int_equal(hb_window_ms(&w), 0); /* off: nothing held */
  assert_true(sample(&w, 1000));
  assert_int_equal(hb_window_ms(&w), 5);
  /* saturated, but a flush pass is short (a small room): the window merges
   * what it can already; longer would only add latency */
  clk.pass_ms = 2;
  for (int i = 0; i < 5; i++) assert_false(sample(&w, 1000));
  assert_int_equal(hb_window_ms(&w), 5);
  /* passes over thousands of connections, as long as the window or longer */
  clk.pass_ms = 17;
  assert_false(sample(&w, HB_WINDOW_BUSY_ON_PERMILLE));
  assert_int_equal(hb_window_ms(&w), 10);
  assert_false(sample(&w, 1000));
  assert_int_equal(hb_window_ms(&w), 20);
  assert_false(sample(&w, 1000));
  assert_int_equal(hb_window_ms(&w), 20); /* the maximum */
  assert_false(sample(&w, HB_WINDOW_BUSY_SHRINK_PERMILLE)); /* busy, not saturated: kept */
  assert_int_equal(hb_window_ms(&w), 20);
  /* the spell is over by now, and the thread under the off bound: shorter
   * first, off only from the base */
  assert_true(HB_WINDOW_HOLD_MIN_MS <= 5 * HB_WINDOW_SAMPLE_MS);
  assert_false(sample(&w, HB_WINDOW_BUSY_OFF_PERMILLE - 1));
  assert_int_equal(hb_window_ms(&w), 10);
  assert_false(sample(&w, HB_WINDOW_BUSY_OFF_PERMILLE - 1));
  assert_int_equal(hb_window_ms(&w), 5);
  assert_true(sample(&w, HB_WINDOW_BUSY_OFF_PERMILLE - 1));
  assert_int_equal(hb_window_ms(&w), 0);
  /* on again: from the base */
  assert_true(sample(&w, 1000));
  assert_int_equal(hb_window_ms(&w), 5);
}

/* An idle thread drops a grown window at once; a maximum under the base
 * means no growth. */
static void test_grown_window_idle_and_no_growth(void **state) {
  (void)state;
  hb_window w;
  start(&w);
  hb_window_init(&w, &clk, 5, 40);
  clk.pass_ms = 40;
  assert_true(sample(&w, 1000));
  for (int i = 0; i < 5; i++) assert_false(sample(&w, 1000));
  assert_int_equal(hb_window_ms(&w), 40);
  assert_true(sample(&w, HB_WINDOW_BUSY_IDLE_PERMILLE - 1));
  assert_int_equal(hb_window_ms(&w), 0);
  start(&w);
  hb_window_init(&w, &clk, 5, 2);
  clk.pass_ms = 40;
  assert_true(sample(&w, 1000));
  for (int i = 0; i < 5; i++) assert_false(sample(&w, 1000));
  assert_int_equal(hb_window_ms(&w), 5);
}

/* One sample in which the thread was busy `permille` and spent
 * `write_permille` of the wall time writing 100 connections (fan-out only,
 * `per_send` frames each), of which `saved` writes were ones that holding
 * would have saved. What the window estimates: off, `saved` writes at the
 * sample's cost per write; holding, the frames it merged (frames less
 * writes) at that cost. */
static bool sample_writes(hb_window *w, unsigned permille, unsigned write_permille, unsigned saved) {
  clk.all_sends += 100;
  clk.mergeable += saved;
  clk.write_ns += HB_WINDOW_SAMPLE_MS * MS * write_permille / 1000;
  return sample(w, permille);
}

/* Not saturated, but most of the thread's time goes into writes that the
 * window would save (a reaction storm in bursts): it holds, at its base
 * length, until holding saves little. HTTP publishes into a small room
 * (a third of the time writing, every write one the window would save)
 * are not held. */
static void test_on_for_what_it_saves(void **state) {
  (void)state;
  hb_window w;
  start(&w);
  hb_window_init(&w, &clk, 5, 20);
  for (int i = 0; i < 10; i++) assert_false(sample_writes(&w, 600, 350, 100)); /* saves 35 %: no */
  assert_int_equal(w.last_saved_permille, 350);
  assert_false(sample_writes(&w, 700, 600, 50)); /* only half of the writes: 30 % */
  assert_true(sample_writes(&w, 700, 600, 100));
  assert_true(w.on);
  assert_true(w.for_saving);
  assert_int_equal(hb_window_ms(&w), 5);
  /* holding works: the thread is less busy, each write carries 4 frames:
   * it stays for its spell, and does not grow */
  per_send = 4;
  int spell = HB_WINDOW_HOLD_MIN_MS / HB_WINDOW_SAMPLE_MS;
  for (int i = 1; i < spell; i++) assert_false(sample_writes(&w, 250, 150, 0));
  assert_int_equal(w.last_saved_permille, 450); /* 3 frames merged per write, at its cost */
  assert_int_equal(hb_window_ms(&w), 5);
  /* then a sample without it judges again (holding, writes that would
   * have merged anyway count as saved): still worth it, so on again at
   * once, for a spell twice as long */
  assert_true(sample_writes(&w, 250, 150, 0));
  assert_false(w.on);
  per_send = 1;
  assert_true(sample_writes(&w, 700, 600, 100));
  assert_true(w.for_saving);
  assert_int_equal(w.hold_ms, 2 * HB_WINDOW_HOLD_MIN_MS);
  per_send = 4;
  /* saturated after all, with long passes: the saturated rules take over
   * (and grow it) */
  clk.pass_ms = 10;
  assert_false(sample_writes(&w, 1000, 150, 0));
  assert_false(w.for_saving);
  assert_int_equal(hb_window_ms(&w), 10);
  assert_false(sample_writes(&w, 500, 150, 0)); /* shrinks first */
  assert_int_equal(hb_window_ms(&w), 5);
  /* the spell over and under the off bound of busy, but holding still
   * saves much: kept for that ... */
  for (int i = 0; i < 2 * spell; i++) assert_false(sample_writes(&w, 700, 150, 0));
  assert_false(sample_writes(&w, 500, 150, 0));
  assert_true(w.on);
  assert_true(w.for_saving);
  /* ... until the next sample, which ends the spell: the one after judges
   * without the window */
  assert_true(sample_writes(&w, 500, 150, 0));
  assert_false(w.on);
}

/* Held for what it saves, a sample with next to no fan-out (a lone
 * delivery) ends it at once, spell or not; and writes merged enough
 * already (HTTP as fast as answered) are not held for saving either. */
static void test_saving_lone_and_merged(void **state) {
  (void)state;
  hb_window w;
  start(&w);
  assert_true(sample_writes(&w, 600, 600, 100));
  assert_true(w.for_saving);
  assert_true(sample_writes(&w, 100, 10, 0));
  assert_false(w.on);
  /* saturated and then idle, but the hold still merges much: held for that */
  start(&w);
  assert_true(sample(&w, 1000));
  assert_false(w.for_saving);
  per_send = 8;
  for (int i = 1; i < HB_WINDOW_HOLD_MIN_MS / HB_WINDOW_SAMPLE_MS; i++) assert_false(sample(&w, 950));
  assert_false(sample_writes(&w, 200, 100, 0));
  assert_true(w.on);
  assert_true(w.for_saving);
  start(&w);
  per_send = HB_WINDOW_MERGED_ITEMS_PER_SEND;
  for (int i = 0; i < 10; i++) assert_false(sample_writes(&w, 800, 800, 100));
  /* flush_hold_saving false: only saturation turns it on, and it ends as
   * it did before that rule */
  start(&w);
  hb_window_set_hold_saving(&w, false);
  for (int i = 0; i < 10; i++) assert_false(sample_writes(&w, 700, 600, 100));
  assert_true(sample(&w, 1000));
  per_send = 8;
  assert_true(sample_writes(&w, 200, 100, 0));
  assert_false(w.on);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_off_until_saturated),
      HBT_TEST(test_on_when_saturated_for_a_spell),
      HBT_TEST(test_stays_on_while_busy),
      HBT_TEST(test_idle_ends_it_at_once),
      HBT_TEST(test_spell_doubles_when_off_resaturates),
      HBT_TEST(test_busy_capped),
      HBT_TEST(test_merged_sends_keep_it_off),
      HBT_TEST(test_window_grows_while_saturated),
      HBT_TEST(test_grown_window_idle_and_no_growth),
      HBT_TEST(test_on_for_what_it_saves),
      HBT_TEST(test_saving_lone_and_merged),
  };
  return cmocka_run_group_tests_name("window", tests, NULL, NULL);
}
