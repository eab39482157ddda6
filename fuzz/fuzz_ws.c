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
 * Raw inputs are also checked against wslay directly: whatever
 * hb_ws_direct_text (the wslay-free path for a read that is one small text
 * frame) takes must be exactly the one text message a fresh wslay context
 * delivers for those bytes, without a close.
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

typedef struct {
  const uint8_t *in;
  size_t in_len;
  int msgs, opcode;
  uint8_t *msg;
  size_t msg_len;
} fz_wsl;

static ssize_t fz_wsl_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud) {
  fz_wsl *r = ud;
  if (r->in_len == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  size_t n = len < r->in_len ? len : r->in_len;
  memcpy(buf, r->in, n);
  r->in += n;
  r->in_len -= n;
  return (ssize_t)n;
}

static ssize_t fz_wsl_send(wslay_event_context_ptr ctx, const uint8_t *d, size_t len, int flags,
                           void *ud) {
  return (ssize_t)len;
}

static void fz_wsl_on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                          void *ud) {
  fz_wsl *r = ud;
  if (r->msgs++ == 0) {
    r->opcode = arg->opcode;
    r->msg_len = arg->msg_length;
    r->msg = malloc(arg->msg_length ? arg->msg_length : 1);
    if (arg->msg_length) memcpy(r->msg, arg->msg, arg->msg_length);
  }
}

static void fz_direct_vs_wslay(const uint8_t *p, size_t n, size_t max) {
  static uint8_t out[HB_WS_DIRECT_MAX_BYTES];
  size_t d = hb_ws_direct_text(p, n, max, out);
  if (d == SIZE_MAX) return;
  static const struct wslay_event_callbacks cb = {
      .recv_callback = fz_wsl_recv, .send_callback = fz_wsl_send, .on_msg_recv_callback = fz_wsl_on_msg};
  fz_wsl r = {.in = p, .in_len = n};
  wslay_event_context_ptr ctx;
  if (wslay_event_context_server_init(&ctx, &cb, &r) != 0) abort();
  wslay_event_config_set_max_recv_msg_length(ctx, max);
  int rc = wslay_event_recv(ctx);
  wslay_event_send(ctx);
  bool closed = rc != 0 || wslay_event_get_close_sent(ctx);
  wslay_event_context_free(ctx);
  if (closed || r.msgs != 1 || r.opcode != WSLAY_TEXT_FRAME || r.msg_len != d ||
      (d && memcmp(r.msg, out, d) != 0))
    abort();
  free(r.msg);
}

static bool fz_handshake(hb_conn *c) {
  hb_strbuf req = HB_STRBUF_INIT;
  hb_strbuf_addf(&req,
                 "GET /api/v1/ws?token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                 fz_conn_token, FZ_WS_KEY);
  hb_http_on_read(c, req.buf, req.len);
  hb_strbuf_free(&req);
  return c->state == HB_CONN_OPEN && c->h == &hb_ws_conn_handler;
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
    size_t max = fz_cfg.max_message_bytes;
    fz_direct_vs_wslay((const uint8_t *)buf, n, max);
    fz_direct_vs_wslay((const uint8_t *)buf, n, s1 < max ? s1 : max);
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
