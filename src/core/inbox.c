/* inbox.c - jobs handed to a loop from other threads (inbox.h). */
#include "hubbub/inbox.h"

#include "hubbub/alloc.h"

#define INBOX_INITIAL_JOBS 64

void hb_inbox_run(hb_inbox *ib) {
  /* Take the whole batch under the lock and run it outside: a job may post
   * again (to this inbox too) without deadlocking. The length is read first
   * without the lock: an empty inbox (the common case when a thread runs
   * its own before a publish) costs one atomic load. */
  if (atomic_load_explicit(&ib->len_hint, memory_order_acquire) == 0) return;
  pthread_mutex_lock(&ib->lock);
  atomic_store_explicit(&ib->len_hint, 0, memory_order_relaxed);
  hb_job *batch = ib->jobs;
  size_t n = ib->len;
  ib->jobs = NULL;
  ib->len = ib->cap = 0;
  pthread_mutex_unlock(&ib->lock);
  for (size_t i = 0; i < n; i++) batch[i].fn(ib->ctx, batch[i].arg);
  hb_free(batch);
}

static void on_async(uv_async_t *h) { hb_inbox_run((hb_inbox *)h); }

int hb_inbox_init(hb_inbox *ib, uv_loop_t *loop, void *ctx) {
  ib->jobs = NULL;
  ib->len = ib->cap = 0;
  atomic_init(&ib->len_hint, 0);
  ib->ctx = ctx;
  ib->closed = false;
  pthread_mutex_init(&ib->lock, NULL);
  int r = uv_async_init(loop, &ib->async, on_async);
  ib->async.data = ib;
  return r;
}

void hb_inbox_post(hb_inbox *ib, hb_job_fn fn, void *arg) {
  pthread_mutex_lock(&ib->lock);
  if (ib->len == ib->cap) {
    ib->cap = ib->cap ? ib->cap * 2 : INBOX_INITIAL_JOBS;
    ib->jobs = hb_realloc(ib->jobs, ib->cap * sizeof *ib->jobs);
  }
  ib->jobs[ib->len].fn = fn;
  ib->jobs[ib->len].arg = arg;
  ib->len++;
  atomic_store_explicit(&ib->len_hint, ib->len, memory_order_release);
  /* Under the lock, so that the loop cannot close the handle in between
   * (hb_inbox_close): another thread's answer may arrive as the loop ends. */
  if (!ib->closed) uv_async_send(&ib->async); /* coalesced by libuv: one wake-up for a burst */
  pthread_mutex_unlock(&ib->lock);
}

void hb_inbox_close(hb_inbox *ib, uv_close_cb cb) {
  pthread_mutex_lock(&ib->lock);
  ib->closed = true;
  pthread_mutex_unlock(&ib->lock);
  uv_close((uv_handle_t *)&ib->async, cb);
}

void hb_inbox_destroy(hb_inbox *ib) {
  for (size_t i = 0; i < ib->len; i++) ib->jobs[i].fn(NULL, ib->jobs[i].arg);
  hb_free(ib->jobs);
  ib->jobs = NULL;
  ib->len = ib->cap = 0;
  pthread_mutex_destroy(&ib->lock);
}
