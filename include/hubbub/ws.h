/*
 * ws.h - WebSocket connections: the RFC 6455 handshake and the wslay glue.
 *
 * wslay parses and reassembles client frames (masking, reserved bits,
 * opcodes, control frames, UTF-8 of text and close reasons, the maximum
 * message length) and answers pings and closes. The server builds its own
 * frames: a publish frame is built once and shared (msg.h).
 */
#ifndef HUBBUB_WS_H
#define HUBBUB_WS_H

#include <stddef.h>
#include <stdint.h>

#include "hubbub/conn.h"
#include "hubbub/http.h"

/** Handle GET /api/v1/ws: check, answer 101 or an HTTP error. */
void hb_ws_handshake(hb_conn *c, hb_http_req *req);
/** Feed bytes read on an upgraded connection. */
void hb_ws_on_read(hb_conn *c, const char *buf, size_t len);
/**
 * If `p[0..len)` is exactly one complete, final, masked text frame without
 * reserved bits, its length minimally encoded, 1 to max_message_bytes and
 * HB_WS_DIRECT_MAX_BYTES long and valid UTF-8, unmask it into `out` (room for
 * HB_WS_DIRECT_MAX_BYTES) and return its length: the message wslay would
 * deliver for these bytes. SIZE_MAX for anything else, which goes to wslay.
 */
size_t hb_ws_direct_text(const uint8_t *p, size_t len, size_t max_message_bytes, uint8_t *out);
/** Free the WebSocket state of a closing connection. */
void hb_ws_destroy(hb_conn *c);

#endif
