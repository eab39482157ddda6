/*
 * conn.h - one client TCP connection: HTTP first, maybe a WebSocket after.
 *
 * State machine: HTTP -> (upgrade) WS -> CLOSING -> CLOSED. The object
 * embeds its uv_tcp_t and is freed only in the close callback (libuv
 * handle.rst). Output is a queue of references (shared publish frames, or
 * small owned chunks) flushed once per loop turn with one vectored write;
 * past max_output_bytes the connection is cut off, never buffered forever.
 */
#ifndef HUBBUB_CONN_H
#define HUBBUB_CONN_H

#include <http_parser.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>
#include <wslay/wslay.h>

#include "hubbub/errors.h"
#include "hubbub/limits.h"
#include "hubbub/list.h"
#include "hubbub/msg.h"
#include "hubbub/scope.h"
#include "hubbub/uuid.h"

struct hb_io;
struct hb_http_req;

typedef enum {
  HB_CONN_HTTP,    /* reading HTTP requests (keep-alive) */
  HB_CONN_WS,      /* upgraded: WebSocket frames */
  HB_CONN_CLOSING, /* flushing what is queued, then closing */
  HB_CONN_CLOSED,  /* uv_close called; freed in its callback */
} hb_conn_state;

typedef enum { HB_OUT_OWNED, HB_OUT_MSG, HB_OUT_STATIC } hb_out_kind;

typedef struct {
  uint8_t kind; /* hb_out_kind */
  uint32_t len, off;
  union {
    struct hb_lmsg *lmsg;
    char *own;
    const char *stat;
  } u;
} hb_out_item;

/* The room (session-level channel key) a WebSocket belongs to: interned per
 * I/O thread and shared by its connections (room.c), so 5,000 attendees of
 * one session hold one copy of the key. */
typedef struct hb_room hb_room;

/*
 * Field order and widths matter: an idle subscriber costs this struct plus
 * its subscription, and the struct is kept free of padding holes (see
 * docs/performance.md, W4). Flags are bits; sizes that cannot exceed 32 bits
 * by a configured limit are 32-bit.
 */
typedef struct hb_conn {
  uv_tcp_t tcp;
  struct hb_io *io;
  uv_write_t *wreq;          /* borrowed from the thread while a write is in flight */
  struct hb_http_req *req;   /* HTTP: everything lives in the request object, per request */
  /* WebSocket. The wslay context (~8 KiB) exists only while a frame or a
   * fragmented message is partly received; the frame tracker (ft_*) knows
   * where frames end so an idle connection can give it back (ws.c). */
  wslay_event_context_ptr ws;
  struct hb_room *room;
  hb_list link;       /* io->conns */
  hb_list dirty_link; /* io->dirty */
  hb_list subs;       /* hb_sub.conn_link */

  /* output queue: a ring of items, allocated while there is output (an idle
   * connection holds none) */
  hb_out_item *out;
  size_t out_bytes;
  uint32_t out_head, out_count, out_cap;
  uint32_t inflight_bytes; /* bytes handed to the in-flight uv_write */

  uint64_t deadline_ms;   /* handshake / request / idle deadline (0 = none) */
  uint64_t next_ping_ms;  /* WebSocket: when to send the next ping */
  uint64_t over_since_ms; /* when the backlog went over max_output_bytes (0: it is not) */
  uint64_t bucket_ms;     /* publish rate limit: last refill */
  int64_t expires_at;     /* the connection token's exp (0 = none) */
  uint32_t ft_left;       /* payload bytes left in the current frame (<= max_message_bytes) */
  uint32_t nsubs;
  float bucket_tokens;    /* publish rate limit: tokens (a float is exact enough for a burst <= 1e6) */
  uint8_t ft_hdr[14];     /* a frame header split across reads */
  uint8_t ip[16];         /* peer address key (ratelimit.h) */
  uint16_t close_code;    /* WebSocket close code we sent, 0 if none */
  /* one 32-bit unit of bit-fields */
  unsigned rate_strikes : 10; /* publishes refused in a row (< HB_RATE_STRIKES_BEFORE_CLOSE) */
  unsigned state : 3;     /* hb_conn_state */
  unsigned scopes : 4;    /* hb_scope_set the token allows */
  unsigned ft_hlen : 4;   /* frame header bytes collected so far (<= 14) */
  bool writing : 1;       /* a uv_write is in flight */
  bool close_after_flush : 1;
  bool dirty : 1;         /* on io->dirty or io->later, waiting for a flush */
  bool later : 1;         /* on io->later: only fan-out output, held by the flush window */
  bool counted : 1;       /* counted in the server's connection total */
  bool linger : 1;        /* WebSocket close sent: half-close and read until the peer's EOF */
  bool shut : 1;          /* uv_shutdown issued */
  bool ft_frag : 1;       /* inside a fragmented data message */
  bool ip_counted : 1;    /* counted against max_connections_per_ip */
} hb_conn;

/* The bit-fields above must hold their largest values. */
_Static_assert(HB_CONN_CLOSED < (1 << 3), "hb_conn.state");
_Static_assert(HB_SCOPE__COUNT <= 4, "hb_conn.scopes");
_Static_assert(HB_RATE_STRIKES_BEFORE_CLOSE < (1 << 10), "hb_conn.rate_strikes");

/** Accept a new connection on `io` from its listener. */
void hb_conn_accept(struct hb_io *io, uv_stream_t *listener);

/** Queue a shared message (takes a thread-local reference). False if the conn was cut off. */
bool hb_conn_send_msg(hb_conn *c, struct hb_lmsg *lm);
/** Queue a copy of `len` bytes. */
void hb_conn_send_copy(hb_conn *c, const void *p, size_t len);
/** Queue an allocated buffer (ownership passes to the connection). */
void hb_conn_send_owned(hb_conn *c, char *p, size_t len);
/** Queue static bytes that outlive the connection. */
void hb_conn_send_static(hb_conn *c, const char *p, size_t len);
/** Queue a text frame holding `json`. */
void hb_conn_send_text(hb_conn *c, const char *json, size_t len);

/**
 * WebSocket close: queue a close frame with `code` and `reason`, stop
 * reading, close after the flush (or after HB_WS_CLOSE_TIMEOUT_MS).
 * When `drop_pending` is set, queued frames not yet started are dropped
 * first (a slow consumer's backlog).
 */
void hb_conn_ws_close(hb_conn *c, uint16_t code, const char *reason, bool drop_pending);
/** Close now (after flushing what is queued when `flush` is true). */
void hb_conn_close(hb_conn *c, bool flush);

/** Flush up to `max` connections from the head of `list` (io->dirty,
 * io->sweep), taking each off it. */
void hb_conn_flush_list(hb_list *list, size_t max);
/** The 1 s sweep: deadlines, pings, idle timeouts, token expiry. */
void hb_conn_sweep(struct hb_io *io, uint64_t now_ms);
/** Free the thread's spare output rings (at thread teardown). */
void hb_conn_rings_free(struct hb_io *io);

#endif
