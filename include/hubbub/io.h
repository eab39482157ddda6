/*
 * io.h - the I/O threads: one libuv loop each, with its own listener,
 * connections, inbox and timers.
 *
 * Threads never touch each other's connections; work reaches another thread
 * as a job on its inbox (inbox.h). Upper layers plug in through hb_io_hooks:
 * the handler of a new connection, the size of their per-connection state,
 * and per-thread start/stop callbacks for their own per-thread state (kept
 * by the upper module, indexed by hb_io.id).
 */
#ifndef HUBBUB_IO_H
#define HUBBUB_IO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "hubbub/config.h"
#include "hubbub/conn.h"
#include "hubbub/inbox.h"
#include "hubbub/list.h"
#include "hubbub/uuid.h"
#include "hubbub/window.h"

#define HB_READ_BUFFER_BYTES 65536

typedef struct hb_ioset hb_ioset;

typedef struct hb_io {
  hb_ioset *set;
  int id; /* 0..nio-1 */
  uv_loop_t loop;
  uv_tcp_t listener;
  hb_inbox inbox;         /* jobs from other threads (deliveries, the stop request) */
  uv_check_t flush;       /* end-of-turn corked writes */
  uv_timer_t tick;        /* the sweep, every HB_SWEEP_INTERVAL_MS: deadlines, pings */
  uv_timer_t flush_timer; /* the end of the fan-out flush window */
  uv_timer_t accept_retry; /* out of descriptors: when to listen again */
  uv_idle_t sweeping;     /* active while a fan-out flush is in progress: the poll must not sleep */
  uv_thread_t thread;
  bool joined; /* hb_ioset_wait joined the thread */
  bool listening;
  bool stopping;
  uint64_t stop_deadline_ms;

  hb_list conns;        /* every hb_conn of this thread */
  hb_list dirty;        /* connections with output to flush this turn */
  hb_list later;        /* connections with only fan-out output: flushed by the window */
  hb_list sweep;        /* the fan-out flush in progress: connections not written yet */
  uint64_t later_flushed_ms; /* when `later` was last flushed */
  hb_window window;     /* whether `later` is held now (flush_adaptive) */
  uint64_t sends, send_items; /* fan-out-only connections written, and the frames they held (conn.c): for the window */
  uint64_t all_sends;   /* every connection written at the end of a turn or in a flush chunk (conn.c) */
  uint64_t mergeable;   /* writes the window would have saved: a fan-out frame that found nothing queued, within flush_interval_ms of the connection's previous one (conn.c) */
  uint64_t write_ns;    /* wall time in the end-of-turn flushes (io.c): what the sends cost */
  uint64_t pass_ms;     /* the longest fan-out flush pass since the window's last sample */
  struct hb_uring *uring; /* the flushes' batched sends (uring.h); NULL: writev */
  size_t nconns;
  char readbuf[HB_READ_BUFFER_BYTES]; /* shared by all reads: data is consumed in the callback */
  uv_write_t *wreq_free; /* a stack of spare write requests (conn.c) */
  void *ring_free;       /* a stack of spare output rings of HB_OUT_RING_KEEP slots (conn.c) */
  uint32_t ring_free_n;  /* rings on that stack */
  uint32_t ring_free_low; /* fewest on it since the last sweep: those were not needed */
  void *kept;            /* bytes read by paused connections, not yet consumed (conn.c, uthash) */
  hb_uuid id_base;       /* random per thread: message and connection ids (hb_io_new_id) */
  uint64_t id_counter;
} hb_io;

/* What the layers above plug into the I/O threads. */
typedef struct {
  const hb_conn_handler *accept_handler; /* drives every new connection */
  size_t conn_ext_bytes;                 /* per-connection state of the upper layers (hb_conn_ext) */
  /* On the I/O thread before it accepts, and after its loop ended (every
   * connection closed): the upper layers' per-thread state. May be NULL. */
  void (*thread_start)(hb_io *io);
  void (*thread_stop)(hb_io *io);
} hb_io_hooks;

struct hb_ioset {
  const hb_config *cfg;
  hb_io_hooks hooks;
  int nio;
  hb_io **io;
  atomic_int open_conns;
  atomic_bool shutting_down;
  int port; /* the bound port (resolved when cfg->port was 0) */
};

/** Monotonic milliseconds of the thread's loop. */
static inline uint64_t hb_io_now_ms(hb_io *io) { return uv_now(&io->loop); }

/**
 * Open the listeners and start `nio` threads. Refuses (-1, logged) when the
 * address is taken by another process: SO_REUSEPORT is only for this
 * process's own threads. `cfg` must outlive the set.
 */
int hb_ioset_start(hb_ioset *set, const hb_config *cfg, int nio, const hb_io_hooks *hooks);
/** Begin a graceful stop (any thread): connections get on_shutdown. */
void hb_ioset_request_stop(hb_ioset *set);
/** Wait for every thread to end (their inboxes still take posts: they run at
 * hb_ioset_join, with ctx NULL). */
void hb_ioset_wait(hb_ioset *set);
/** Wait for every thread to end (if hb_ioset_wait did not) and free them. */
void hb_ioset_join(hb_ioset *set);
/** True once a stop was requested. */
static inline bool hb_ioset_stopping(hb_ioset *set) { return atomic_load(&set->shutting_down); }

/** Run fn(io, arg) on io's thread; any thread may call (inbox.h). */
void hb_io_post(hb_io *io, hb_job_fn fn, void *arg);

/**
 * A fresh id in UUID v4 form for a message or a connection: a random
 * per-thread base plus a counter, so neither the publish path nor the
 * handshake makes a CSPRNG call (OpenSSL's RAND_bytes costs a getpid() and a
 * lock per call). Unique for the process's life. Not a secret: message and
 * connection ids are labels (protocol.md), never credentials.
 */
void hb_io_new_id(hb_io *io, char out[HB_UUID_STR_BYTES]);

#endif
