/* worker.c - blocking jobs off the I/O threads (worker.h). */
#include "hubbub/worker.h"

#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <uv.h>

#include "hubbub/alloc.h"
#include "hubbub/io.h"
#include "hubbub/log.h"

typedef struct job {
  struct job *next;
  hb_io *io;
  void (*run)(void *arg);
  void (*run_late)(void *arg);
  uint64_t deadline_ms; /* monotonic */
  hb_job_fn done;
  void *arg;
} job;

struct hb_worker {
  char name[32];
  uv_thread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  job *head, *tail; /* guarded by mu */
  size_t queued, max_queued; /* waiting or running */
  bool stopping;             /* guarded by mu */
  void (*thread_exit)(void);
};

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void worker_main(void *arg) {
  hb_worker *w = arg;
  for (;;) {
    pthread_mutex_lock(&w->mu);
    while (!w->head && !w->stopping) pthread_cond_wait(&w->cv, &w->mu);
    job *j = w->head;
    if (!j) { /* stopping, and nothing left */
      pthread_mutex_unlock(&w->mu);
      break;
    }
    w->head = j->next;
    if (!w->head) w->tail = NULL;
    pthread_mutex_unlock(&w->mu);

    if (mono_ms() > j->deadline_ms) j->run_late(j->arg);
    else j->run(j->arg);
    hb_io_post(j->io, j->done, j->arg);

    pthread_mutex_lock(&w->mu);
    w->queued--;
    pthread_mutex_unlock(&w->mu);
    hb_free(j);
  }
  if (w->thread_exit) w->thread_exit();
}

hb_worker *hb_worker_start(const char *name, size_t max_queued, void (*thread_exit)(void)) {
  hb_worker *w = hb_calloc(1, sizeof *w);
  snprintf(w->name, sizeof w->name, "%s", name);
  w->max_queued = max_queued;
  w->thread_exit = thread_exit;
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  if (uv_thread_create(&w->thread, worker_main, w) != 0) {
    hb_error_log("%s: cannot start its thread", w->name);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    hb_free(w);
    return NULL;
  }
  return w;
}

bool hb_worker_submit(hb_worker *w, hb_io *io, void (*run)(void *arg), void (*run_late)(void *arg),
                      uint64_t max_wait_ms, hb_job_fn done, void *arg) {
  pthread_mutex_lock(&w->mu);
  if (w->stopping || w->queued >= w->max_queued) {
    pthread_mutex_unlock(&w->mu);
    return false;
  }
  job *j = hb_calloc(1, sizeof *j);
  *j = (job){NULL, io, run, run_late, mono_ms() + max_wait_ms, done, arg};
  if (w->tail) w->tail->next = j;
  else w->head = j;
  w->tail = j;
  w->queued++;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  return true;
}

size_t hb_worker_backlog(hb_worker *w) {
  pthread_mutex_lock(&w->mu);
  size_t n = w->queued;
  pthread_mutex_unlock(&w->mu);
  return n;
}

void hb_worker_stop(hb_worker *w) {
  if (!w) return;
  pthread_mutex_lock(&w->mu);
  w->stopping = true;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  uv_thread_join(&w->thread);
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
  hb_free(w);
}
