/*
 * inbox.h - how one thread hands work to another thread's libuv loop.
 *
 * A mutex-protected array of jobs and a uv_async_t: hb_inbox_post() appends
 * from any thread and wakes the loop (libuv coalesces a burst into one
 * wake-up); the loop runs every job in posting order on its own thread.
 * The I/O threads receive deliveries and their stop request this way, the
 * Redis thread its publishes and interest changes.
 */
#ifndef HUBBUB_INBOX_H
#define HUBBUB_INBOX_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

/**
 * A job runs on the inbox's loop thread with the inbox's `ctx`. When the
 * inbox is destroyed with jobs still queued, each runs once with ctx NULL:
 * it must then only release what `arg` holds.
 */
typedef void (*hb_job_fn)(void *ctx, void *arg);

typedef struct {
  hb_job_fn fn;
  void *arg;
} hb_job;

typedef struct {
  uv_async_t async; /* first: the handle's data is the inbox */
  pthread_mutex_t lock;
  hb_job *jobs; /* guarded by lock */
  size_t len, cap;
  atomic_size_t len_hint; /* len, readable without the lock (hb_inbox_run) */
  void *ctx;
  bool closed; /* guarded by lock: the wake-up handle is closed; jobs wait for hb_inbox_destroy */
} hb_inbox;

/** Initialise on `loop` (from the loop's thread, before others post). 0 or a libuv error. */
int hb_inbox_init(hb_inbox *ib, uv_loop_t *loop, void *ctx);
/** Queue a job and wake the loop. Any thread, until hb_inbox_destroy: once
 * the inbox is closed the job is kept and runs (with ctx NULL) at destroy. */
void hb_inbox_post(hb_inbox *ib, hb_job_fn fn, void *arg);
/**
 * Run what is queued now, on the loop's thread (as the wake-up would): a
 * thread that must not overtake messages other threads already posted to
 * it (a publish of its own, a join) runs its inbox first.
 */
void hb_inbox_run(hb_inbox *ib);
/** Close the wake-up handle (on the loop's thread); `cb` may be NULL. Posts
 * from other threads stay safe: they no longer wake the loop. */
void hb_inbox_close(hb_inbox *ib, uv_close_cb cb);
/** After the loop ended: drop what is still queued (each job with ctx NULL), free. */
void hb_inbox_destroy(hb_inbox *ib);

#endif
