/*
 * worker.h - a thread that runs blocking jobs (store calls to PostgreSQL)
 * off the I/O threads, one at a time, and hands each result back to the
 * I/O thread that asked.
 *
 *   hb_worker_submit(w, io, run, done, arg)
 *     worker thread:  run(arg)              may block (bounded by its own timeouts)
 *     io's thread:    done(io, arg)         through io's inbox (inbox.h): answer
 *
 * `done` always runs exactly once per accepted job: with ctx NULL when io's
 * inbox was destroyed first (then it must only release what arg holds).
 * The queue is bounded: a full queue refuses the job, and a job that waited
 * longer than its deadline is not run: run_late(arg) replaces run(arg)
 * (say "try again" rather than do the work after the asker gave up).
 */
#ifndef HUBBUB_WORKER_H
#define HUBBUB_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hubbub/inbox.h"

struct hb_io;
typedef struct hb_worker hb_worker;

/** Start the thread; `max_queued` jobs may wait; `thread_exit` (may be
 * NULL) runs on it last (to close its store handle). NULL if it cannot
 * start (logged). */
hb_worker *hb_worker_start(const char *name, size_t max_queued, void (*thread_exit)(void));

/**
 * Queue a job (any thread). `max_wait_ms`: if the job has not started by
 * then, `run_late` runs instead of `run`. False when the queue is full or
 * the worker is stopping: nothing was queued and nothing will be called.
 */
bool hb_worker_submit(hb_worker *w, struct hb_io *io, void (*run)(void *arg), void (*run_late)(void *arg),
                      uint64_t max_wait_ms, hb_job_fn done, void *arg);

/**
 * Stop: jobs already queued still run (or run_late), each `done` is
 * posted; then the thread is joined and everything freed. Call before the
 * I/O threads' inboxes are destroyed (hb_ioset_join). NULL is a no-op.
 */
void hb_worker_stop(hb_worker *w);

/** Jobs waiting or running now (a gauge). */
size_t hb_worker_backlog(hb_worker *w);

#endif
