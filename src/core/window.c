/* window.c - when an I/O thread holds fan-out output (window.h). */
#include "hubbub/window.h"

#include "hubbub/limits.h"

#define NS_PER_MS 1000000u

void hb_window_init(hb_window *w, const hb_window_clock *at, uint32_t base_ms, uint32_t max_ms) {
  /* changed_ms 0: the first saturation is not a return right after a spell */
  *w = (hb_window){.hold_ms = HB_WINDOW_HOLD_MIN_MS, .base_ms = base_ms, .max_ms = max_ms > base_ms ? max_ms : base_ms,
                   .window_ms = base_ms, .sample_ns = at->now_ns, .sample_cpu_ns = at->cpu_ns,
                   .sample_sends = at->sends, .sample_items = at->items};
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
  if (wall == 0) return false;
  uint64_t busy = cpu * 1000u / wall;
  if (busy > 1000) busy = 1000; /* clock granularity */
  w->last_busy_permille = (uint32_t)busy;
  uint64_t now_ms = now_ns / NS_PER_MS;
  if (!w->on) {
    if (busy < HB_WINDOW_BUSY_ON_PERMILLE) return false;
    /* Saturated, but its sends are merged enough already: holding would
     * add latency and save nothing. */
    if (sends > 0 && items >= sends * HB_WINDOW_MERGED_ITEMS_PER_SEND) return false;
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
  if (busy < HB_WINDOW_BUSY_IDLE_PERMILLE) { /* idle: never hold a lone delivery */
    w->on = false;
    w->changed_ms = now_ms;
    return true;
  }
  if (busy >= HB_WINDOW_BUSY_ON_PERMILLE) {
    /* Still saturated with the window on: the pass is longer than the
     * window, so hold longer. */
    w->window_ms = w->window_ms * 2 > w->max_ms ? w->max_ms : w->window_ms * 2;
    return false;
  }
  if (busy < HB_WINDOW_BUSY_SHRINK_PERMILLE && w->window_ms > w->base_ms) {
    /* Headroom again: a shorter hold first, the window off only once it is
     * back at its base (the longer hold may be what made the headroom). */
    w->window_ms = w->window_ms / 2 < w->base_ms ? w->base_ms : w->window_ms / 2;
    return false;
  }
  bool spell_over = now_ms - w->changed_ms >= w->hold_ms;
  if (spell_over && busy < HB_WINDOW_BUSY_OFF_PERMILLE && w->window_ms <= w->base_ms) {
    w->on = false;
    w->changed_ms = now_ms;
    return true;
  }
  return false;
}
