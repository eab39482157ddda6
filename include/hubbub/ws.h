/*
 * ws.h - WebSocket connections (RFC 6455): the upgrade, the wslay glue for
 * receiving, and the one builder of the frames the server sends.
 *
 * wslay parses and reassembles client frames (masking, reserved bits,
 * opcodes, control frames, UTF-8 of text and close reasons, the maximum
 * message length) and answers pings and closes; the frame tracker in front
 * of it refuses what wslay would take too long to notice (a frame announcing
 * more than a message may hold, too many fragments in one message). The
 * server builds its own frames: a publish frame is built once and shared
 * (pubsub/msg.c).
 *
 * The layer above (the room protocol, or a test's echo) registers one
 * hb_ws_handler with hb_ws_init() and keeps its per-connection state in the
 * connection's extension area, starting with the hb_ws this module owns.
 */
#ifndef HUBBUB_WS_H
#define HUBBUB_WS_H

#include <stddef.h>
#include <stdint.h>
#include <wslay/wslay.h>

#include "hubbub/conn.h"
#include "hubbub/errors.h"
#include "hubbub/http.h"
#include "hubbub/strbuf.h"

/* RFC 6455 5.2 opcodes. */
typedef enum {
  HB_WS_OP_CONTINUATION = 0x0,
  HB_WS_OP_TEXT = 0x1,
  HB_WS_OP_BINARY = 0x2,
  HB_WS_OP_CLOSE = 0x8,
  HB_WS_OP_PING = 0x9,
  HB_WS_OP_PONG = 0xa,
} hb_ws_opcode;

/* The WebSocket state of a connection: the first member of the upper
 * layer's state in the extension area (hb_ws_of / hb_ws_conn). */
typedef struct hb_ws {
  /* The wslay context (~8 KiB) exists only while a frame or a fragmented
   * message is partly received; the frame tracker (ft_*) knows where frames
   * end so that an idle connection can give it back. */
  wslay_event_context_ptr ctx;
  uint32_t ft_left;   /* payload bytes left in the current frame (<= max_message_bytes) */
  uint8_t ft_hdr[14]; /* a frame header split across reads */
  unsigned ft_hlen : 4; /* frame header bytes collected so far (<= 14) */
  bool ft_frag : 1;     /* inside a fragmented data message */
  bool pinged : 1;      /* a ping was sent since the peer last sent anything */
  bool closing : 1;     /* our close frame is queued */
  uint32_t ft_frames;   /* frames of the fragmented message so far (<= max_message_fragments) */
} hb_ws;

typedef struct {
  /** One complete, UTF-8 valid text message. */
  void (*on_text)(hb_ws *ws, const char *msg, size_t len);
  /** One complete binary message. NULL: binary messages are refused with
   * 1003 (the room protocol is text only; the echo target takes them). */
  void (*on_binary)(hb_ws *ws, const uint8_t *msg, size_t len);
  /** Every sweep while open (HB_SWEEP_INTERVAL_MS): the upper layer's
   * deadlines (a token's expiry). */
  void (*on_sweep)(hb_ws *ws, uint64_t now_ms);
  /** Closing for good: leave everything that points at the connection. */
  void (*on_close)(hb_ws *ws);
} hb_ws_handler;

/** Register the layer above (once, before any upgrade). */
void hb_ws_init(const hb_ws_handler *h);

static inline hb_ws *hb_ws_of(hb_conn *c) { return (hb_ws *)hb_conn_ext(c); }
static inline hb_conn *hb_ws_conn(hb_ws *ws) { return hb_conn_of_ext(ws); }

/**
 * Is `req` a valid WebSocket upgrade (GET, Upgrade: websocket, Connection:
 * upgrade, version 13, a well-formed key)? HB_OK, or the error to answer
 * with (HB_E_BAD_REQUEST; HB_E_UPGRADE_REQUIRED for another version, whose
 * answer must carry hb_ws_version_header()).
 */
hb_err hb_ws_check_upgrade(const hb_http_req *req, hb_error *err);
/** The extra header line of a 426 (RFC 6455 4.4: the versions we speak). */
const char *hb_ws_version_header(void);

/**
 * Append the 101 answer to a checked upgrade to `out`, selecting
 * `subprotocol` (or none when NULL). The caller then calls hb_ws_open(),
 * may append first frames (hb_ws_frame), and queues `out` as one piece
 * (hb_conn_send_owned): one buffer, one write for the 101 and the welcome.
 */
void hb_ws_accept(const hb_http_req *req, const char *subprotocol, hb_strbuf *out);
/**
 * Switch the connection to WebSocket: install the handler and zero the
 * extension area (the HTTP glue's until now; the upper layer's state past
 * the hb_ws starts zeroed). Returns the connection's hb_ws.
 */
hb_ws *hb_ws_open(hb_conn *c);

/** Write a server frame header for `payload_len` into out (<= 10 bytes); returns its size. */
size_t hb_ws_frame_header(uint8_t *out, uint8_t opcode, uint64_t payload_len);
/** Append one whole server frame (FIN, unmasked: RFC 6455 5.1) to `sb`. */
void hb_ws_frame(hb_strbuf *sb, uint8_t opcode, const void *payload, size_t len);

/**
 * A frame whose payload is appended in place: hb_ws_frame_begin() reserves
 * room for the header and returns a mark; append the payload to `sb`;
 * hb_ws_frame_end() writes the header (moving the payload if it needed
 * another size). No copy for payloads of 126 to 65,535 bytes.
 */
size_t hb_ws_frame_begin(hb_strbuf *sb);
void hb_ws_frame_end(hb_strbuf *sb, size_t mark, uint8_t opcode);

/** Queue a text frame holding `json`. */
void hb_ws_send_text(hb_ws *ws, const char *json, size_t len);
/** Queue a binary frame. */
void hb_ws_send_binary(hb_ws *ws, const void *p, size_t len);
/**
 * Close: queue a close frame with `code` and `reason` (cut to 123 bytes),
 * stop reading, write what is queued and wait for the peer's close (at most
 * HB_WS_CLOSE_TIMEOUT_MS). With `drop_pending`, queued frames not yet
 * started are dropped first (a slow consumer's backlog).
 */
void hb_ws_close(hb_ws *ws, hb_close_code code, const char *reason, bool drop_pending);
/* Every close the server initiates is counted (hubbub_ws_closes_total{code})
 * and logged: warn for 4000 and 4008, error for 1011, info for 4001, 4401
 * and protocol violations, debug for the rest; one line a second per code. */

/**
 * Refuse a connection just upgraded for it (docs/protocol.md §2, in band):
 * hb_ws_close without a log line of its own (the refusal was logged with
 * its reason); the close is counted all the same.
 */
void hb_ws_refuse(hb_ws *ws, hb_close_code code, const char *reason);

/**
 * If `p[0..len)` is exactly one complete, final, masked text frame without
 * reserved bits, its length minimally encoded, 1 to max_message_bytes and
 * HB_WS_DIRECT_MAX_BYTES long and valid UTF-8, unmask it into `out` (room for
 * HB_WS_DIRECT_MAX_BYTES) and return its length: the message wslay would
 * deliver for these bytes. SIZE_MAX for anything else, which goes to wslay.
 */
size_t hb_ws_direct_text(const uint8_t *p, size_t len, size_t max_message_bytes, uint8_t *out);

/** The connection handler of an upgraded connection (tests, the echo target). */
extern const hb_conn_handler hb_ws_conn_handler;

#endif
