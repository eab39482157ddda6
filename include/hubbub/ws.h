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

#include "hubbub/conn.h"
#include "hubbub/http.h"

/** Handle GET /api/v1/ws: check, answer 101 or an HTTP error. */
void hb_ws_handshake(hb_conn *c, hb_http_req *req);
/** Feed bytes read on an upgraded connection. */
void hb_ws_on_read(hb_conn *c, const char *buf, size_t len);
/** Free the WebSocket state of a closing connection. */
void hb_ws_destroy(hb_conn *c);

#endif
