/*
 * window.h - when an I/O thread holds fan-out output (the adaptive flush
 * window, config flush_adaptive).
 *
 * Holding deliveries for flush_interval_ms merges the frames a subscriber
 * gets meanwhile into one write, and a write costs microseconds whatever it
 * carries; but every held delivery waits, and a thread with spare time
 * would rather have written it at once (docs/performance.md: the window was
 * the whole HTTP delivery-latency gap to uWebSockets). So the window applies
 * only while the thread is saturated: its CPU time over a sample of wall
 * time (HB_WINDOW_SAMPLE_MS) reached HB_WINDOW_BUSY_ON_PERMILLE, and its
 * fan-out writes carried fewer than HB_WINDOW_MERGED_ITEMS_PER_SEND frames
 * each (more, and they are merged enough without holding). It stays on
 * for a spell (HB_WINDOW_HOLD_MIN_MS), and ends when a sample is less busy
 * than HB_WINDOW_BUSY_OFF_PERMILLE after the spell (or less than
 * HB_WINDOW_BUSY_IDLE_PERMILLE at any time). When the thread saturates again
 * soon after (HB_WINDOW_RETRY_MS) it was the window that kept it below
 * saturation, and the next spell lasts twice as long (up to
 * HB_WINDOW_HOLD_MAX_MS): a workload the window serves keeps it, with a
 * short probe without it now and then.
 *
 * The window itself starts at flush_interval_ms (base_ms) and doubles with
 * each sample in which the thread is still saturated and its flush passes
 * took at least half the window, up to flush_max_interval_ms (max_ms): when
 * a pass over thousands of connections takes longer than the window, a
 * short window merges nothing more than the pass does by itself, and only a
 * longer hold spreads a write over more frames (docs/performance.md: the
 * even reaction storm). A short pass (a small room) is merged by the window
 * already: a longer one would only add latency. A sample
 * less busy than HB_WINDOW_BUSY_SHRINK_PERMILLE halves it again; the window
 * ends (below) only once it is back at base_ms, so a longer hold that took
 * the thread out of saturation is shortened before it is dropped.
 *
 * Not saturated, the window also applies when holding would save much: the
 * fan-out writes it would have saved (a frame that found nothing queued for
 * its connection, within flush_interval_ms of the connection's previous
 * frame) times what a write cost in the sample (the time in the end-of-turn
 * flushes over the connections written) reached HB_WINDOW_SAVE_ON_PERMILLE
 * of the wall time (fewer than HB_WINDOW_MERGED_ITEMS_PER_SEND frames per
 * write, as above), at its base length. Holding, the thread cannot tell
 * which writes would have merged anyway, so the spell ends and the next
 * sample, without the window, judges again (a load the window serves gets
 * it back at once, for twice as long); what it saves while holding (the
 * frames it merged, frames written less writes, at that cost) ends it at
 * once under HB_WINDOW_SAVE_IDLE_PERMILLE (a lone delivery is never held),
 * and keeps a saturated spell that ends with the thread no longer saturated
 * going as such a hold when at least HB_WINDOW_SAVE_OFF_PERMILLE.
 * A reaction storm in bursts (W2) saves ~2/3 of its CPU that way; HTTP
 * publishes to a small room (W3-paced) would save ~1/5 and are not held:
 * their latency is the one that competes (docs/performance.md).
 *
 * Pure bookkeeping: the caller passes the clock and the thread's CPU time,
 * so the decision is tested with made-up numbers (test/unit/core/test_window.c).
 */
#ifndef HUBBUB_WINDOW_H
#define HUBBUB_WINDOW_H

#include <stdbool.h>
#include <stdint.h>

#include "hubbub/limits.h"

typedef struct {
  bool on;              /* hold fan-out output for flush_interval_ms */
  uint32_t hold_ms;     /* the length of the next (or current) ON spell */
  uint32_t base_ms, max_ms; /* the window's shortest and longest length */
  bool hold_saving;     /* also hold, unsaturated, for what holding saves (config flush_hold_saving) */
  uint32_t window_ms;   /* while on: how long fan-out output is held now */
  uint64_t changed_ms;  /* when `on` last changed */
  uint64_t sample_ns;   /* the current sample began: wall clock */
  uint64_t sample_cpu_ns; /* and the thread's CPU time then */
  uint64_t sample_sends, sample_items; /* and the thread's send and item counts then */
  uint64_t sample_all_sends, sample_mergeable, sample_write_ns; /* and these */
  uint32_t last_busy_permille; /* the last sample's CPU / wall (for tests) */
  uint32_t last_saved_permille; /* the last sample's estimate of what holding saves, of the wall time */
  bool for_saving;      /* on because holding saves much (not saturated) */
} hb_window;

/* What a sample is judged on: the thread's counters, read at its ends. */
typedef struct {
  uint64_t now_ns; /* monotonic clock */
  uint64_t cpu_ns; /* the thread's CPU time */
  uint64_t sends;  /* connections with only fan-out output the thread wrote */
  uint64_t items;  /* the frames they held */
  uint64_t all_sends; /* every connection the thread wrote (replies too) */
  uint64_t mergeable; /* fan-out writes that holding would have saved: a frame that found nothing queued for its connection, within flush_interval_ms of its previous frame */
  uint64_t write_ns;  /* wall time the thread spent writing (its end-of-turn flushes) */
  uint64_t pass_ms;   /* the longest fan-out flush pass (all its chunks) since the last sample */
} hb_window_clock;

/**
 * Start off, with a sample beginning at `at`. While on, the window is
 * base_ms long at first and grows up to max_ms (taken as base_ms when
 * smaller: no growth).
 */
void hb_window_init(hb_window *w, const hb_window_clock *at, uint32_t base_ms, uint32_t max_ms);

/** Also hold while not saturated when holding saves much (the default). */
static inline void hb_window_set_hold_saving(hb_window *w, bool on) { w->hold_saving = on; }

/** How long fan-out output is held now: 0 while off. */
static inline uint32_t hb_window_ms(const hb_window *w) { return w->on ? w->window_ms : 0; }

/** Is a sample due at `now_ns` (HB_WINDOW_SAMPLE_MS since the last)? */
static inline bool hb_window_due(const hb_window *w, uint64_t now_ns) {
  return now_ns - w->sample_ns >= (uint64_t)HB_WINDOW_SAMPLE_MS * 1000000u;
}

/**
 * End the current sample at `at`, decide, and begin the next. Returns true
 * when `on` changed.
 */
bool hb_window_sample(hb_window *w, const hb_window_clock *at);

#endif
