/* check.c - the leak check every unit test ends with (check.h). */
#include "check.h"

#include "hubbub/alloc.h"

static int64_t live_at_start;
static uv_loop_t *pending_loop;

void hbt_leak_begin(void) {
  pending_loop = NULL;
  live_at_start = hb_alloc_live_bytes();
}

static void close_left(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

void hbt_leak_loop(uv_loop_t *loop) { pending_loop = loop; }

void hbt_leak_end(void) {
  if (pending_loop) {
    uv_loop_t *loop = pending_loop;
    pending_loop = NULL;
    /* Handles the test left open are closed, and every close callback runs:
     * that is where libuv users free what hangs off a handle. */
    uv_walk(loop, close_left, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    if (uv_loop_close(loop) != 0) fail_msg("the test's loop still has handles after running to completion");
  }
  int64_t now = hb_alloc_live_bytes();
  if (now != live_at_start)
    fail_msg("leak check: %lld bytes allocated through hb_malloc at the start, %lld at the end (%+lld)",
             (long long)live_at_start, (long long)now, (long long)(now - live_at_start));
}

int hbt_leak_setup(void **state) {
  (void)state;
  hbt_leak_begin();
  return 0;
}

int hbt_leak_teardown(void **state) {
  (void)state;
  hbt_leak_end();
  return 0;
}
