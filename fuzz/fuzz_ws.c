/*
 * fuzz_ws.c - libFuzzer driver for the WebSocket glue (frame tracker, wslay,
 * close handling) and the room protocol behind it.
 *
 * Every input starts on a connection that made a real handshake: a valid
 * upgrade request with a connection token (all scopes) goes through
 * hb_http_on_read, so the connection is in the WS state exactly as in the
 * server. The input then becomes client bytes, in one of three modes
 * (byte 0 & 3):
 *   0  raw frame bytes (seeds use the mask key 00000000, so the payload of
 *      a masked frame is readable and mutable in the corpus);
 *   1  each '\n'-separated line becomes one masked text frame: the room
 *      protocol (subscribe, publish, ...) without frame-level noise;
 *   2  as 1, but each line is split in two fragments (text + continuation).
 * Bytes 1 and 2 choose the read boundaries (1-3 chunks).
 *
 * The setup (server, io, store, tokens) is fuzz_http.c's.
 */
#define HB_FUZZ_GLUE_NO_MAIN
#include "fuzz_http.c"

#include "hubbub/strbuf.h"

/* 32 bytes of key material, not a secret: a valid Sec-WebSocket-Key. */
#define FZ_WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="

static size_t fz_frame_hdr(uint8_t *h, uint8_t b0, size_t len) {
  size_t n = 0;
  h[n++] = b0;
  if (len < 126) {
    h[n++] = (uint8_t)(0x80 | len);
  } else if (len < 65536) {
    h[n++] = 0x80 | 126;
    h[n++] = (uint8_t)(len >> 8);
    h[n++] = (uint8_t)len;
  } else {
    h[n++] = 0x80 | 127;
    for (int i = 7; i >= 0; i--) h[n++] = (uint8_t)((uint64_t)len >> (8 * i));
  }
  memset(h + n, 0, 4); /* mask key 0: the payload goes as is */
  return n + 4;
}

static void fz_add_frame(hb_strbuf *sb, uint8_t b0, const char *p, size_t len) {
  uint8_t h[14];
  size_t hl = fz_frame_hdr(h, b0, len);
  hb_strbuf_add(sb, (const char *)h, hl);
  hb_strbuf_add(sb, p, len);
}

/* Lines to masked text frames (fragmented in two when `frag`). */
static void fz_lines_to_frames(hb_strbuf *sb, const char *p, size_t n, bool frag) {
  size_t s = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i < n && p[i] != '\n') continue;
    size_t len = i - s;
    if (frag && len >= 2) {
      size_t half = len / 2;
      fz_add_frame(sb, 0x01, p + s, half);        /* text, not final */
      fz_add_frame(sb, 0x80, p + s + half, len - half); /* final continuation */
    } else {
      fz_add_frame(sb, 0x81, p + s, len);
    }
    s = i + 1;
  }
}

static bool fz_handshake(hb_conn *c) {
  hb_strbuf req = HB_STRBUF_INIT;
  hb_strbuf_addf(&req,
                 "GET /api/v1/ws?token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                 fz_conn_token, FZ_WS_KEY);
  hb_http_on_read(c, req.buf, req.len);
  hb_strbuf_free(&req);
  return c->state == HB_CONN_WS;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3 || size > FZ_MAX_INPUT_BYTES) return 0;
  uint8_t mode = data[0] & 3, s1 = data[1], s2 = data[2];
  size_t n;
  char *buf = fz_expand(data + 3, size - 3, &n);
  uv_update_time(&fz_io.loop);
  hb_conn *c = fz_conn_new();
  if (!fz_handshake(c)) abort(); /* the setup is broken, not the input */
  if (mode == 0 || mode == 3) {
    fz_feed_split(c, buf, n, s1, s2);
  } else {
    hb_strbuf fr = HB_STRBUF_INIT;
    fz_lines_to_frames(&fr, buf, n, mode == 2);
    fz_feed_split(c, fr.buf, fr.len, s1, s2);
    hb_strbuf_free(&fr);
  }
  fz_finish(c);
  hb_free(buf);
  return 0;
}
