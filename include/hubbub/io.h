/*
 * io.h - the server and its I/O threads.
 *
 * One libuv loop per I/O thread, each with its own SO_REUSEPORT listener,
 * connections and room index. Threads never touch each other's connections:
 * a publish reaches another thread as a message reference pushed onto that
 * thread's inbox and woken by uv_async_t.
 */
#ifndef HUBBUB_IO_H
#define HUBBUB_IO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "hubbub/broker.h"
#include "hubbub/config.h"
#include "hubbub/index.h"
#include "hubbub/list.h"
#include "hubbub/msg.h"
#include "hubbub/uuid.h"

#define HB_READ_BUFFER_BYTES 65536

typedef struct hb_io {
  struct hb_server *srv;
  int id; /* 0..nio-1 */
  uv_loop_t loop;
  uv_tcp_t listener;
  uv_async_t wake;      /* inbox or stop request */
  uv_check_t flush;     /* end-of-turn corked writes */
  uv_timer_t tick;      /* 1 s sweep: timeouts, pings */
  uv_timer_t flush_timer; /* the end of the fan-out flush window */
  uv_timer_t accept_retry; /* out of descriptors: when to listen again */
  uv_idle_t sweeping;   /* active while a fan-out flush is in progress: the poll must not sleep */
  uv_thread_t thread;
  bool listening;

  pthread_mutex_t inbox_lock;
  hb_msg **inbox;       /* references owned by the inbox */
  size_t inbox_len, inbox_cap;
  atomic_bool stop_requested;
  bool stopping;
  uint64_t stop_deadline_ms;

  hb_list conns;        /* every hb_conn of this thread */
  hb_list dirty;        /* connections with output to flush this turn */
  hb_list later;        /* connections with only fan-out output: flushed by the window */
  hb_list sweep;        /* the fan-out flush in progress: connections not written yet (io.c) */
  uint64_t later_flushed_ms; /* when `later` was last flushed */
  size_t nconns;
  hb_index index;
  struct hb_room *rooms; /* uthash head: the rooms of this thread's WebSockets (room.c) */
  char readbuf[HB_READ_BUFFER_BYTES]; /* shared by all reads: data is consumed in the callback */
  const char *ws_in;    /* the bytes wslay's recv callback pulls from (ws.c) */
  size_t ws_in_len;
  uv_write_t *wreq_free; /* a stack of spare write requests (conn.c) */
  hb_lmsg *lmsg_free;    /* a stack of spare thread-local message views */
  void *ring_free;       /* a stack of spare output rings of HB_OUT_RING_KEEP slots (conn.c) */
  uint32_t ring_free_n;  /* rings on that stack */
  uint32_t ring_free_low; /* fewest on it since the last sweep: those were not needed */
  struct hb_store *store; /* opened on first use: admin API, credential re-checks */
  hb_uuid id_base;          /* random per thread: message and connection ids (hb_io_new_id) */
  uint64_t id_counter;
  uint64_t auth_checked_ms; /* last credential re-check (hb_io_auth_refresh) */
  int64_t auth_version;     /* the store's data version seen by that check */
} hb_io;

/* Counters for /metrics; relaxed atomics, read approximately. */
typedef struct {
  atomic_llong connections_total, connections_open, ws_open;
  atomic_llong publishes_http, publishes_ws, deliveries, slow_consumers_closed;
  atomic_llong http_requests, http_errors, rejected_connections;
  atomic_llong fanout_flushes, fanout_flush_turns;
} hb_metrics;

typedef struct hb_server {
  hb_config cfg;
  int nio;
  hb_io **io;
  hb_broker *broker;
  hb_metrics metrics;
  atomic_int open_conns;
  atomic_bool shutting_down;
  int port; /* the bound port (resolved when cfg.port was 0) */
  int64_t started_at;
} hb_server;

/** Monotonic milliseconds of the thread's loop. */
static inline uint64_t hb_io_now_ms(hb_io *io) { return uv_now(&io->loop); }

/**
 * Deliver `msg` to this node's local subscribers of its channel: directly on
 * `from` (if not NULL) and through the inbox of every other thread. The
 * caller keeps its reference. Thread-safe.
 */
void hb_io_deliver_all(hb_server *srv, hb_io *from, hb_msg *msg);
/** Deliver to subscribers of this thread only (must run on io's thread). */
size_t hb_io_deliver_local(hb_io *io, hb_msg *msg);
/**
 * A credential was not in the cache: if the store changed since this thread
 * last looked (checked at most every HB_AUTH_MISS_RECHECK_MS), reload the
 * cache now and return true so the caller looks again.
 */
bool hb_io_auth_refresh(hb_io *io);
/** The thread's store connection, opened on first use (NULL if it cannot be). */
struct hb_store *hb_io_store(hb_io *io);
/**
 * A fresh id in UUID v4 form for a message or a connection: a random
 * per-thread base plus a counter, so neither the publish path nor the
 * handshake makes a CSPRNG call (OpenSSL's RAND_bytes costs a getpid() and a
 * lock per call). Unique for the process's life. Not a secret: message and
 * connection ids are labels (protocol.md), never credentials.
 */
void hb_io_new_id(hb_io *io, char out[HB_UUID_STR_BYTES]);
/** Drop a thread-local reference (on io's thread). */
void hb_io_lmsg_unref(hb_io *io, hb_lmsg *lm);
/** Push a reference to `io`'s inbox (any thread). */
void hb_io_post(hb_io *io, hb_msg *msg);

int hb_io_start_all(hb_server *srv);
void hb_io_request_stop_all(hb_server *srv);
void hb_io_join_all(hb_server *srv);

#endif
