/*
 * conn.h - one client TCP connection: reading, a corked output queue,
 * deadlines and closing. What the bytes mean belongs to the layer above.
 *
 * A connection is driven by a handler table (hb_conn_handler) that an upper
 * layer installs: the HTTP glue handles a new connection; a WebSocket
 * upgrade installs the WebSocket glue's table. The upper layer keeps its
 * per-connection state in the connection's extension area (hb_conn_ext),
 * sized once for the process (hb_io_hooks.conn_ext_bytes), so a connection
 * is one allocation whatever protocol it speaks.
 *
 * States: OPEN -> CLOSING (flushing what is queued) -> CLOSED (uv_close
 * called; freed in its callback, libuv handle.rst). Output is a queue of
 * references (shared frames, small owned chunks, static bytes) flushed once
 * per loop turn with one vectored write; past max_output_bytes the
 * connection's handler is told to cut it off, never buffered forever.
 */
#ifndef HUBBUB_CONN_H
#define HUBBUB_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "hubbub/errors.h"
#include "hubbub/iplimit.h"
#include "hubbub/limits.h"
#include "hubbub/list.h"

struct hb_io;
typedef struct hb_conn hb_conn;

typedef enum {
  HB_CONN_OPEN,    /* reading and writing */
  HB_CONN_CLOSING, /* flushing what is queued, then closing */
  HB_CONN_CLOSED,  /* uv_close called; freed in its callback */
} hb_conn_state;

/*
 * What an upper layer does with its connections. Every callback runs on the
 * connection's I/O thread; none may free the connection (they close it).
 */
typedef struct {
  /** Accepted (refusal NULL), or accepted only to be refused (over a
   * connection limit): then answer `refusal` and close. */
  void (*on_open)(hb_conn *c, const hb_error *refusal);
  /** Bytes read; all of buf is consumed within the call. */
  void (*on_read)(hb_conn *c, const char *buf, size_t len);
  /** The sweep (every HB_SWEEP_INTERVAL_MS): deadlines, pings. `now_ms` is
   * the loop's clock. */
  void (*on_sweep)(hb_conn *c, uint64_t now_ms);
  /** The output backlog stayed over max_output_bytes too long, or went far
   * over it (HB_OUTPUT_HARD_FACTOR): cut the connection off. Called in the
   * middle of a fan-out: queue a close, never close synchronously. */
  void (*on_overflow)(hb_conn *c);
  /** The server is stopping: wind the connection down. */
  void (*on_shutdown)(hb_conn *c);
  /** The connection is closing for good: leave whatever points at it and
   * release the extension area's resources. Called once, before the free. */
  void (*on_close)(hb_conn *c);
} hb_conn_handler;

typedef enum { HB_OUT_OWNED, HB_OUT_SHARED, HB_OUT_STATIC } hb_out_kind;

/*
 * Bytes shared by many connections of one I/O thread (a publish frame):
 * the queue holds a pointer and counts a reference in `refs` (plain, not
 * atomic: only this thread touches it); when the last connection has
 * written it, `release` runs on the thread. The owner embeds this.
 */
typedef struct hb_shared {
  const char *bytes;
  uint32_t len;
  uint32_t refs;
  void (*release)(struct hb_shared *s, struct hb_io *io);
} hb_shared;

typedef struct {
  uint8_t kind; /* hb_out_kind */
  uint32_t len, off;
  union {
    hb_shared *shared;
    char *own;
    const char *stat;
  } u;
} hb_out_item;

/*
 * Field order and widths matter: an idle subscriber costs this struct plus
 * its extension area plus its subscriptions, and it is kept free of padding
 * holes (docs/performance.md, W4). Upper layers read `io` and `state`; the
 * rest is this module's.
 */
struct hb_conn {
  uv_tcp_t tcp;
  struct hb_io *io;
  const hb_conn_handler *h;
  hb_list link;       /* io->conns */
  hb_list dirty_link; /* io->dirty, io->later or io->sweep */
  /* output queue: a ring of items, allocated while there is output (an idle
   * connection holds none) */
  hb_out_item *out;
  size_t out_bytes;
  uint32_t out_head, out_count, out_cap;
  uint32_t inflight_bytes; /* bytes handed to the in-flight uv_write */
  uint64_t deadline_ms;    /* the upper layer's deadline; CLOSING: when to give up flushing */
  uint64_t over_since_ms;  /* when the backlog went over max_output_bytes (0: it is not) */
  uint8_t ip[HB_IP_KEY_BYTES]; /* peer address key (iplimit.h) */
  /* one 32-bit unit of bit-fields */
  unsigned state : 2;          /* hb_conn_state */
  bool writing : 1;            /* a uv_write is in flight */
  bool close_after_flush : 1;
  bool dirty : 1;              /* on io->dirty or io->later, waiting for a flush */
  bool later : 1;              /* on io->later: only fan-out output, held by the flush window */
  bool counted : 1;            /* counted in the open-connection total */
  bool linger : 1;             /* after the flush: half-close and read until the peer's EOF */
  bool shut : 1;               /* uv_shutdown issued */
  bool ip_counted : 1;         /* counted against max_connections_per_ip */
  bool paused : 1;             /* reading stopped (hb_conn_pause) */
  bool free_later : 1;         /* closed while held: the last hb_conn_unhold frees it */
  unsigned holds : 12;         /* operations that will come back to it (hb_conn_hold) */
  unsigned upper : 8;          /* free bits for the upper layers: bit 0 is publish.c's (deliveries held) */
  union {
    /* lingering close (`linger`): bytes it may still read and discard */
    uint32_t linger_left;
    /* otherwise: the loop clock (ms, wrapping) when its last fan-out frame
     * was queued, for the window's "would merge" count (conn.c) */
    uint32_t last_fanout_ms;
  } u32;
  /* the extension area follows, aligned for any field (hb_conn_ext) */
};

_Static_assert(HB_CONN_CLOSED < (1 << 2), "hb_conn.state");
#define HB_CONN_MAX_HOLDS ((1u << 12) - 1)
/* The extension area starts right after the struct: every member of an
 * upper layer's state needs at most 8-byte alignment. */
#define HB_CONN_EXT_OFFSET sizeof(hb_conn)
_Static_assert(sizeof(hb_conn) % 8 == 0, "hb_conn: the extension area must be 8-byte aligned");

/** The upper layer's per-connection area (hb_io_hooks.conn_ext_bytes). */
static inline void *hb_conn_ext(hb_conn *c) { return (char *)c + HB_CONN_EXT_OFFSET; }
/** The connection whose extension area is `ext`. */
static inline hb_conn *hb_conn_of_ext(void *ext) { return (hb_conn *)((char *)ext - HB_CONN_EXT_OFFSET); }

/** Accept a new connection on `io` from its listener: hb_conn_new, uv_accept, hb_conn_start. */
void hb_conn_accept(struct hb_io *io, uv_stream_t *listener);
/** The first half of an accept: a connection on `io` whose uv_tcp_t is
 * initialised, not yet connected, driven by the accept handler. */
hb_conn *hb_conn_new(struct hb_io *io);
/** The second half: admit it (connection limits), call the handler's
 * on_open, and start reading when it was admitted. */
void hb_conn_start(hb_conn *c);
/** Install another handler (a protocol upgrade). */
void hb_conn_set_handler(hb_conn *c, const hb_conn_handler *h);
/**
 * Have bytes arrived that were not read yet? A loop turn runs its timers
 * (the sweep) before it reads, so after the thread was held up (a loaded
 * machine, a long flush), a deadline can pass while the peer's bytes wait
 * in the kernel: a connection is not idle then.
 */
bool hb_conn_input_waiting(hb_conn *c);

/** Queue a shared frame (counts a reference); it may wait for the thread's
 * flush window. False when the connection is not open or was cut off. */
bool hb_conn_send_shared(hb_conn *c, hb_shared *s);
/** Queue a copy of `len` bytes. */
void hb_conn_send_copy(hb_conn *c, const void *p, size_t len);
/** Queue an allocated buffer (ownership passes to the connection). */
void hb_conn_send_owned(hb_conn *c, char *p, size_t len);
/** Queue static bytes that outlive the connection. */
void hb_conn_send_static(hb_conn *c, const char *p, size_t len);
/**
 * Keep the connection's memory for an operation that will come back to it
 * later on its thread (an answer from Redis). The connection may close
 * meanwhile; it is freed only once every hold is released. False (nothing
 * held) when HB_CONN_MAX_HOLDS are taken already.
 */
bool hb_conn_hold(hb_conn *c);
/**
 * Release a hold: returns `c` when it is still open (use it now), NULL when
 * it closed meanwhile (it may have been freed: do not touch it).
 */
hb_conn *hb_conn_unhold(hb_conn *c);

/**
 * Stop reading (an answer is awaited before the next request may be read).
 * Bytes already read that the handler does not consume now go back with
 * hb_conn_keep; hb_conn_resume hands them to the handler first.
 */
void hb_conn_pause(hb_conn *c);
/** Keep bytes read but not consumed for after hb_conn_resume (in order). */
void hb_conn_keep(hb_conn *c, const char *p, size_t len);
/** Read again: the kept bytes first (through on_read), then the socket. */
void hb_conn_resume(hb_conn *c);
/** Hand bytes to the current handler, or keep them while paused (the rest
 * of a read after a protocol switch). */
void hb_conn_feed(hb_conn *c, const char *p, size_t len);

/** Drop what is queued and not yet started (a slow consumer's backlog). */
void hb_conn_drop_pending(hb_conn *c);

/** Close now; or, with `flush`, after what is queued is written (at most
 * HB_CLOSE_FLUSH_TIMEOUT_MS). */
void hb_conn_close(hb_conn *c, bool flush);
/**
 * Close gracefully (a lingering close): write what is queued, half-close,
 * and read (discarding) until the peer closes, `timeout_ms` passes or more
 * than `max_bytes` arrived, then close. Closing at once would make the
 * kernel reset a connection with unread input, and the peer would lose the
 * last bytes we sent (RFC 6455 7.1.1, RFC 9112 9.6). Counted in
 * hubbub_lingering_closes_total; one that reaches a bound before the peer's
 * EOF also in hubbub_lingering_closes_cut_total.
 */
void hb_conn_close_linger(hb_conn *c, uint32_t timeout_ms, uint32_t max_bytes);

/* "[ffff:...:1]:65535" and its NUL. */
#define HB_PEER_NAME_BYTES 56
/** The peer's address as "1.2.3.4:5678" or "[::1]:5678" (for log lines:
 * one system call, so only when a line is written); "?" when unknown. */
void hb_conn_peer_name(hb_conn *c, char out[HB_PEER_NAME_BYTES]);

/** True when the backlog has been over the limit longer than the grace period. */
bool hb_conn_overdue(const hb_conn *c, uint64_t now_ms);

/** Flush up to `max` connections from the head of `list` (io->dirty,
 * io->sweep), taking each off it. With the thread's io_uring (uring.h) their
 * sends are only queued: hb_conn_flush_submit must follow before the loop
 * turn ends. */
void hb_conn_flush_list(hb_list *list, size_t max);
/** Submit the sends hb_conn_flush_list queued on the thread's io_uring (one
 * system call for all) and finish each connection's flush with its result.
 * Without a ring, nothing to do. */
void hb_conn_flush_submit(struct hb_io *io);
/** The sweep: CLOSING deadlines here, the rest through on_sweep. */
void hb_conn_sweep(struct hb_io *io, uint64_t now_ms);
/** The thread stops: on_shutdown for each connection. */
void hb_conn_shutdown_all(struct hb_io *io);
/** Free the thread's spare output rings and write requests (at teardown). */
void hb_conn_thread_free(struct hb_io *io);

#endif
