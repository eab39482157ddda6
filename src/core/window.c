/* window.c - when an I/O thread holds fan-out output (window.h). */
#include "hubbub/window.h"

#include "hubbub/limits.h"

#define NS_PER_MS 1000000u

void hb_window_init(hb_window *w, const hb_window_clock *at, uint32_t base_ms, uint32_t max_ms) {
  /* changed_ms 0: the first saturation is not a return right after a spell */
  *w = (hb_window){.hold_ms = HB_WINDOW_HOLD_MIN_MS, .base_ms = base_ms, .max_ms = max_ms > base_ms ? max_ms : base_ms,
                   .hold_saving = true, .window_ms = base_ms, .sample_ns = at->now_ns, .sample_cpu_ns = at->cpu_ns,
                   .sample_sends = at->sends, .sample_items = at->items, .sample_all_sends = at->all_sends,
                   .sample_mergeable = at->mergeable, .sample_write_ns = at->write_ns};
}

bool hb_window_sample(hb_window *w, const hb_window_clock *at) {
  uint64_t now_ns = at->now_ns;
  uint64_t wall = now_ns - w->sample_ns;
  uint64_t cpu = at->cpu_ns - w->sample_cpu_ns;
  uint64_t sends = at->sends - w->sample_sends, items = at->items - w->sample_items;
  w->sample_ns = now_ns;
  w->sample_cpu_ns = at->cpu_ns;
  w->sample_sends = at->sends;
  w->sample_items = at->items;
  uint64_t all_sends = at->all_sends - w->sample_all_sends, mergeable = at->mergeable - w->sample_mergeable;
  uint64_t write_ns = at->write_ns - w->sample_write_ns;
  w->sample_all_sends = at->all_sends;
  w->sample_mergeable = at->mergeable;
  w->sample_write_ns = at->write_ns;
  if (wall == 0) return false;
  uint64_t busy = cpu * 1000u / wall;
  if (busy > 1000) busy = 1000; /* clock granularity */
  w->last_busy_permille = (uint32_t)busy;
  /* What holding saves, at what a write cost in this sample: off, the
   * writes it would have saved; holding, the frames it merged. */
  uint64_t saves = w->on ? (items > sends ? items - sends : 0) : mergeable;
  uint64_t saved = all_sends ? saves * write_ns / all_sends * 1000u / wall : 0;
  if (saved > 1000) saved = 1000;
  w->last_saved_permille = (uint32_t)saved;
  uint64_t now_ms = now_ns / NS_PER_MS;
  if (!w->on) {
    bool saturated = busy >= HB_WINDOW_BUSY_ON_PERMILLE;
    if (!saturated && (!w->hold_saving || saved < HB_WINDOW_SAVE_ON_PERMILLE)) return false;
    /* Its sends are merged enough already: holding would add latency and
     * save little. */
    if (sends > 0 && items >= sends * HB_WINDOW_MERGED_ITEMS_PER_SEND) return false;
    w->for_saving = !saturated;
    /* Saturated again right after the last spell ended: the window was
     * what kept the thread below saturation. Hold it longer this time. */
    if (now_ms - w->changed_ms <= HB_WINDOW_RETRY_MS) {
      w->hold_ms *= 2;
      if (w->hold_ms > HB_WINDOW_HOLD_MAX_MS) w->hold_ms = HB_WINDOW_HOLD_MAX_MS;
    } else {
      w->hold_ms = HB_WINDOW_HOLD_MIN_MS;
    }
    w->on = true;
    w->window_ms = w->base_ms;
    w->changed_ms = now_ms;
    return true;
  }
  bool spell_over = now_ms - w->changed_ms >= w->hold_ms;
  if (busy >= HB_WINDOW_BUSY_ON_PERMILLE) {
    /* Still saturated with the window on, and a pass takes as long as half
     * the window or more: hold longer, so that a write carries more than
     * what arrives during one pass. */
    w->for_saving = false;
    if (at->pass_ms * 2 >= w->window_ms) w->window_ms = w->window_ms * 2 > w->max_ms ? w->max_ms : w->window_ms * 2;
    return false;
  }
  if (w->for_saving) {
    /* On for what it saves: the thread is not short of CPU, so the window
     * stays at its base. Holding, the thread cannot tell what it would
     * save without (writes merged anyway count as saved), so the spell
     * ends and the next sample, without the window, judges again: a load
     * the window serves gets it back at once, for twice as long (up to
     * HB_WINDOW_HOLD_MAX_MS). It ends at once when there is little
     * fan-out: never hold a lone delivery. */
    if (saved >= HB_WINDOW_SAVE_IDLE_PERMILLE && !spell_over) return false;
  } else {
    bool idle = busy < HB_WINDOW_BUSY_IDLE_PERMILLE; /* never hold a lone delivery */
    if (!idle && busy < HB_WINDOW_BUSY_SHRINK_PERMILLE && w->window_ms > w->base_ms) {
      /* Headroom again: a shorter hold first, the window off only once it
       * is back at its base (the longer hold may be what made the headroom). */
      w->window_ms = w->window_ms / 2 < w->base_ms ? w->base_ms : w->window_ms / 2;
      return false;
    }
    if (!idle && !(spell_over && busy < HB_WINDOW_BUSY_OFF_PERMILLE && w->window_ms <= w->base_ms)) return false;
    if (w->hold_saving && saved >= HB_WINDOW_SAVE_OFF_PERMILLE) {
      /* no longer short of CPU, but holding still saves much: kept for that */
      w->for_saving = true;
      w->window_ms = w->base_ms;
      return false;
    }
  }
  w->on = false;
  w->for_saving = false;
  w->changed_ms = now_ms;
  return true;
}
