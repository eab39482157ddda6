/* test_ws.c - the WebSocket layer (ws.c). hb_ws_direct_text, the path that
 * hands a single complete text frame to the room without wslay: it must
 * take exactly the frames wslay would deliver as a text message (shape,
 * masking, length encoding, size, UTF-8) and leave everything else to
 * wslay. The one frame builder, for every length class; the upgrade check
 * and the 101; and a real connection switched to WebSocket with an echo
 * handler: both receive paths, fragments, control frames, the close frame
 * the server sends and the ones it answers with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "text.h"
#include <stdlib.h>
#include <wslay/wslay.h>

#include "stack.h"

#include "hubbub/alloc.h"
#include "hubbub/http.h"
#include "hubbub/limits.h"
#include "hubbub/ws.h"

static const uint8_t MASK[4] = {0x12, 0x34, 0x56, 0x78};

/* A client frame: b0 (FIN/RSV/opcode), masked or not, length in the given
 * form (0: shortest, 126 or 127: forced). Returns its size. */
static size_t frame(uint8_t *f, uint8_t b0, bool masked, int form, const uint8_t *pl, size_t n) {
  size_t h = 0;
  f[h++] = b0;
  uint8_t m = masked ? 0x80 : 0;
  if (form == 127) {
    f[h++] = m | 127;
    for (int i = 7; i >= 0; i--) f[h++] = (uint8_t)(n >> (8 * i));
  } else if (form == 126 || n >= 126) {
    f[h++] = m | 126;
    f[h++] = (uint8_t)(n >> 8);
    f[h++] = (uint8_t)n;
  } else {
    f[h++] = m | (uint8_t)n;
  }
  if (masked) {
    memcpy(f + h, MASK, 4);
    h += 4;
  }
  for (size_t i = 0; i < n; i++) f[h + i] = masked ? pl[i] ^ MASK[i & 3] : pl[i];
  return h + n;
}

static uint8_t fbuf[HB_WS_DIRECT_MAX_BYTES + 64], out[HB_WS_DIRECT_MAX_BYTES];

static size_t direct(const uint8_t *pl, size_t n) {
  size_t len = frame(fbuf, 0x81, true, 0, pl, n);
  return hb_ws_direct_text(fbuf, len, 65536, out);
}


static void expect_utf8(const uint8_t *s, size_t n) {
  size_t r = direct(s, n);
  if (hbt_utf8_ref_valid(s, n)) {
    assert_int_equal(r, n);
    assert_memory_equal(out, s, n);
  } else {
    assert_int_equal(r, SIZE_MAX);
  }
}

static void test_utf8(void **state) {
  (void)state;
  uint8_t s[8];
  /* every 1- and 2-byte string, every 3-byte string with a 3-byte lead */
  for (int a = 0; a < 256; a++) {
    s[0] = (uint8_t)a;
    expect_utf8(s, 1);
    for (int b = 0; b < 256; b++) {
      s[1] = (uint8_t)b;
      expect_utf8(s, 2);
      if (a >= 0xe0 && a <= 0xef)
        for (int c = 0; c < 256; c++) {
          s[2] = (uint8_t)c;
          expect_utf8(s, 3);
        }
    }
  }
  /* 4-byte leads (and the invalid f5..ff) with every second byte and edge
   * values of the third and fourth */
  const uint8_t edge[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0xbf, 0xc0, 0xff};
  for (int a = 0xf0; a < 256; a++)
    for (int b = 0; b < 256; b++)
      for (size_t c = 0; c < sizeof edge; c++)
        for (size_t d = 0; d < sizeof edge; d++) {
          s[0] = (uint8_t)a, s[1] = (uint8_t)b, s[2] = edge[c], s[3] = edge[d];
          expect_utf8(s, 4);
          expect_utf8(s, 3); /* truncated */
        }
  /* valid sequences inside a message, and one cut at the end */
  const uint8_t mixed[] = "{\"id\":\"a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\xee\x80\x80\"}";
  expect_utf8(mixed, sizeof mixed - 1);
  assert_int_equal(direct(mixed, sizeof mixed - 1), sizeof mixed - 1);
  expect_utf8(mixed, 12); /* ends inside the euro sign */
  assert_int_equal(direct(mixed, 12), SIZE_MAX);
}

static void test_shapes(void **state) {
  (void)state;
  uint8_t pl[HB_WS_DIRECT_MAX_BYTES + 1];
  memset(pl, 'a', sizeof pl);
  size_t len;
  /* taken: short, 16-bit length, empty, exactly the limits */
  assert_int_equal(direct(pl, 45), 45);
  assert_int_equal(direct(pl, 200), 200);
  assert_int_equal(direct(pl, 1), 1);
  assert_int_equal(direct(pl, HB_WS_DIRECT_MAX_BYTES), HB_WS_DIRECT_MAX_BYTES);
  len = frame(fbuf, 0x81, true, 0, pl, 100);
  assert_int_equal(hb_ws_direct_text(fbuf, len, 100, out), 100);
  /* left to wslay */
  assert_int_equal(direct(pl, 0), SIZE_MAX); /* empty: wslay passes NULL to the room */
  assert_int_equal(direct(pl, HB_WS_DIRECT_MAX_BYTES + 1), SIZE_MAX);
  assert_int_equal(hb_ws_direct_text(fbuf, len, 99, out), SIZE_MAX);     /* over max_message_bytes */
  assert_int_equal(hb_ws_direct_text(fbuf, len - 1, 100, out), SIZE_MAX); /* incomplete */
  fbuf[len] = 0x81;
  assert_int_equal(hb_ws_direct_text(fbuf, len + 1, 100, out), SIZE_MAX); /* more after it */
  const uint8_t b0s[] = {0x01 /* no FIN */, 0x82 /* binary */, 0x80 /* continuation */,
                         0x89 /* ping */, 0x88 /* close */, 0x8a /* pong */, 0xc1 /* RSV1 */,
                         0xa1 /* RSV2 */, 0x91 /* RSV3 */, 0x83 /* reserved opcode */};
  for (size_t i = 0; i < sizeof b0s; i++) {
    len = frame(fbuf, b0s[i], true, 0, pl, 10);
    assert_int_equal(hb_ws_direct_text(fbuf, len, 65536, out), SIZE_MAX);
  }
  len = frame(fbuf, 0x81, false, 0, pl, 10); /* unmasked */
  assert_int_equal(hb_ws_direct_text(fbuf, len, 65536, out), SIZE_MAX);
  len = frame(fbuf, 0x81, true, 126, pl, 25); /* non-minimal 16-bit length */
  assert_int_equal(hb_ws_direct_text(fbuf, len, 65536, out), SIZE_MAX);
  len = frame(fbuf, 0x81, true, 127, pl, 200); /* 64-bit length */
  assert_int_equal(hb_ws_direct_text(fbuf, len, 65536, out), SIZE_MAX);
  for (size_t n = 0; n < 6; n++) assert_int_equal(hb_ws_direct_text(fbuf, n, 65536, out), SIZE_MAX);
}

/* --- against wslay itself -------------------------------------------------- */

/* What a fresh wslay server context (as ws.c configures it) does with the
 * bytes of one read: the messages it delivers and whether it queues a close. */
typedef struct {
  const uint8_t *in;
  size_t in_len;
  int msgs, opcode;
  size_t msg_len;
  uint8_t msg[HB_WS_DIRECT_MAX_BYTES + 64];
  bool closed;
} wsl_run;

static ssize_t wsl_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud) {
  (void)flags;
  wsl_run *r = ud;
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

static ssize_t wsl_send(wslay_event_context_ptr ctx, const uint8_t *d, size_t len, int flags, void *ud) {
  (void)ctx, (void)d, (void)flags, (void)ud;
  return (ssize_t)len;
}

static void wsl_on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                       void *ud) {
  (void)ctx;
  wsl_run *r = ud;
  if (r->msgs++ == 0) {
    r->opcode = arg->opcode;
    r->msg_len = arg->msg_length;
    if (arg->msg_length <= sizeof r->msg && arg->msg_length) memcpy(r->msg, arg->msg, arg->msg_length);
  }
}

static void wslay_run(wsl_run *r, const uint8_t *p, size_t len, size_t max) {
  static const struct wslay_event_callbacks cb = {
      .recv_callback = wsl_recv, .send_callback = wsl_send, .on_msg_recv_callback = wsl_on_msg};
  memset(r, 0, sizeof *r);
  r->in = p;
  r->in_len = len;
  wslay_event_context_ptr ctx;
  assert_int_equal(wslay_event_context_server_init(&ctx, &cb, r), 0);
  wslay_event_config_set_max_recv_msg_length(ctx, max);
  int rc = wslay_event_recv(ctx);
  wslay_event_send(ctx);
  r->closed = rc != 0 || wslay_event_get_close_sent(ctx);
  wslay_event_context_free(ctx);
}

/* A payload of mostly valid UTF-8 (ASCII, 2-4 byte sequences), sometimes
 * one bad byte or a sequence cut short. */
static size_t rand_payload(uint8_t *pl, size_t want) {
  static const char *const seqs[] = {"a", "{", "\"", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                     "\xf4\x8f\xbf\xbf", "\xed\x9f\xbf", "\xee\x80\x80", "\xc2\x80"};
  size_t n = 0;
  while (n + 4 <= want) {
    const char *q = seqs[rand() % (int)(sizeof seqs / sizeof *seqs)];
    size_t ql = strlen(q);
    memcpy(pl + n, q, ql);
    n += ql;
  }
  if (n && rand() % 4 == 0) pl[rand() % (int)n] = (uint8_t)rand();
  if (n && rand() % 8 == 0) n--;
  return n;
}

/* Whatever hb_ws_direct_text takes, wslay delivers as exactly that one text
 * message, without closing; and a single well-formed small text frame that
 * wslay delivers is taken (the fast path is not dead). */
static void test_same_as_wslay(void **state) {
  (void)state;
  static uint8_t pl[HB_WS_DIRECT_MAX_BYTES + 8], f[HB_WS_DIRECT_MAX_BYTES + 64];
  static wsl_run r;
  int taken = 0, bad_utf8 = 0;
  srand(6455);
  for (int iter = 0; iter < 60000; iter++) {
    size_t want = (size_t)(rand() % 4 == 0 ? rand() % (HB_WS_DIRECT_MAX_BYTES + 4) : rand() % 300);
    size_t n = rand_payload(pl, want);
    uint8_t b0 = 0x81;
    int shape = rand() % 16;
    if (shape == 0) b0 = (uint8_t)rand();
    bool masked = shape != 1;
    int form = shape == 2 ? 126 : shape == 3 ? 127 : 0;
    size_t len = frame(f, b0, masked, form, pl, n);
    if (shape == 4 && len > 1) len -= 1 + (size_t)rand() % (len - 1); /* cut short */
    if (shape == 5) f[len++] = 0x89;                                 /* more after it */
    if (shape == 6) f[1 + rand() % 3] ^= (uint8_t)(1u << (rand() % 8)); /* a header bit */
    size_t max = rand() % 3 == 0 ? (size_t)(rand() % (int)(n + 2)) : 65536;
    size_t d = hb_ws_direct_text(f, len, max, out);
    wslay_run(&r, f, len, max);
    if (d != SIZE_MAX) {
      assert_false(r.closed);
      assert_int_equal(r.msgs, 1);
      assert_int_equal(r.opcode, WSLAY_TEXT_FRAME);
      assert_int_equal(r.msg_len, d);
      assert_memory_equal(r.msg, out, d);
      taken++;
    } else if (shape >= 7 && n > 0 && n <= HB_WS_DIRECT_MAX_BYTES && n <= max) {
      /* an intact minimal masked text frame: refused only for its UTF-8,
       * which wslay refuses too (1007) */
      assert_true(r.closed);
      assert_int_equal(r.msgs, 0);
      bad_utf8++;
    }
    if (shape >= 7 && !r.closed && r.msgs == 1 && n > 0 && n <= max && n <= HB_WS_DIRECT_MAX_BYTES)
      assert_int_not_equal(d, SIZE_MAX);
  }
  /* both outcomes were exercised many times */
  assert_true(taken > 10000);
  assert_true(bad_utf8 > 5000);
}

/* --- the frame builder ------------------------------------------------------- */

static void test_frame_header_every_length_class(void **state) {
  (void)state;
  uint8_t h[10];
  assert_int_equal(hb_ws_frame_header(h, HB_WS_OP_TEXT, 0), 2);
  assert_memory_equal(h, "\x81\x00", 2);
  assert_int_equal(hb_ws_frame_header(h, HB_WS_OP_TEXT, 125), 2);
  assert_memory_equal(h, "\x81\x7d", 2);
  assert_int_equal(hb_ws_frame_header(h, HB_WS_OP_CLOSE, 126), 4);
  assert_memory_equal(h, "\x88\x7e\x00\x7e", 4);
  assert_int_equal(hb_ws_frame_header(h, HB_WS_OP_TEXT, 65535), 4);
  assert_memory_equal(h, "\x81\x7e\xff\xff", 4);
  assert_int_equal(hb_ws_frame_header(h, HB_WS_OP_PING, 65536), 10);
  assert_memory_equal(h, "\x89\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
  assert_int_equal(hb_ws_frame_header(h, HB_WS_OP_BINARY, 0x0102030405060708ull), 10);
  assert_memory_equal(h, "\x82\x7f\x01\x02\x03\x04\x05\x06\x07\x08", 10);
}

/* hb_ws_frame and the in-place begin/end build the same bytes, after what
 * the buffer held, for payloads on both sides of each length boundary. */
static void test_frame_builders_agree(void **state) {
  (void)state;
  static const size_t lens[] = {0, 1, 124, 125, 126, 127, 1000, 65534, 65535, 65536, 70000};
  static char payload[70000];
  for (size_t i = 0; i < sizeof payload; i++) payload[i] = (char)('a' + i % 23);
  for (size_t k = 0; k < sizeof lens / sizeof *lens; k++) {
    size_t n = lens[k];
    hb_strbuf a = HB_STRBUF_INIT, b = HB_STRBUF_INIT;
    hb_strbuf_addstr(&a, "prefix");
    hb_strbuf_addstr(&b, "prefix");
    hb_ws_frame(&a, HB_WS_OP_TEXT, payload, n);
    size_t mark = hb_ws_frame_begin(&b);
    assert_int_equal(mark, 6);
    hb_strbuf_add(&b, payload, n);
    hb_ws_frame_end(&b, mark, HB_WS_OP_TEXT);
    size_t hl = n < 126 ? 2 : n <= 65535 ? 4 : 10;
    assert_int_equal(a.len, 6 + hl + n);
    assert_int_equal(b.len, a.len);
    assert_memory_equal(a.buf, b.buf, a.len);
    assert_memory_equal(a.buf, "prefix", 6);
    assert_int_equal((uint8_t)a.buf[6], 0x81);
    assert_int_equal(b.buf[b.len], '\0');
    hb_strbuf_free(&a);
    hb_strbuf_free(&b);
  }
}

/* --- the upgrade ----------------------------------------------------------------- */

static hb_http_req upgrade_req;

static void set_hdr(hb_hdr h, const char *v) {
  upgrade_req.hdr[h] = (char *)v;
  upgrade_req.hdr_len[h] = v ? strlen(v) : 0;
}

static void good_upgrade(void) {
  memset(&upgrade_req, 0, offsetof(hb_http_req, field));
  upgrade_req.upgrade = true;
  set_hdr(HB_H_UPGRADE, "websocket");
  set_hdr(HB_H_CONNECTION, "Upgrade");
  set_hdr(HB_H_WS_VERSION, "13");
  set_hdr(HB_H_WS_KEY, "dGhlIHNhbXBsZSBub25jZQ==");
}

static hb_err check_upgrade(void) {
  hb_error e;
  memset(&e, 0, sizeof e);
  hb_err r = hb_ws_check_upgrade(&upgrade_req, &e);
  assert_int_equal(e.err, r);
  return r;
}

static void test_check_upgrade(void **state) {
  (void)state;
  good_upgrade();
  assert_int_equal(check_upgrade(), HB_OK);
  set_hdr(HB_H_UPGRADE, "WebSocket");
  set_hdr(HB_H_CONNECTION, "keep-alive, upgrade");
  assert_int_equal(check_upgrade(), HB_OK);
  /* not an upgrade to WebSocket */
  const char *bad_up[] = {NULL, "h2c", "websocket2"};
  for (size_t i = 0; i < 3; i++) {
    good_upgrade();
    set_hdr(HB_H_UPGRADE, bad_up[i]);
    assert_int_equal(check_upgrade(), HB_E_BAD_REQUEST);
  }
  good_upgrade();
  set_hdr(HB_H_CONNECTION, "keep-alive");
  assert_int_equal(check_upgrade(), HB_E_BAD_REQUEST);
  good_upgrade();
  set_hdr(HB_H_CONNECTION, NULL);
  assert_int_equal(check_upgrade(), HB_E_BAD_REQUEST);
  good_upgrade();
  upgrade_req.upgrade = false; /* http-parser did not see an upgrade */
  assert_int_equal(check_upgrade(), HB_E_BAD_REQUEST);
  /* another version: 426 with the versions we speak */
  const char *versions[] = {NULL, "8", "14", "13, 8", " 13"};
  for (size_t i = 0; i < 5; i++) {
    good_upgrade();
    set_hdr(HB_H_WS_VERSION, versions[i]);
    assert_int_equal(check_upgrade(), HB_E_UPGRADE_REQUIRED);
  }
  assert_string_equal(hb_ws_version_header(), "Sec-WebSocket-Version: 13\r\n");
  /* the key: base64 of 16 bytes */
  const char *keys[] = {NULL, "", "dGhlIHNhbXBsZSBub25jZQ=", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ===",
                        "dGhlIHNhbXBsZSBub25jZ===", "dGhl-HNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25j ZQ=="};
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
    good_upgrade();
    set_hdr(HB_H_WS_KEY, keys[i]);
    if (check_upgrade() != HB_E_BAD_REQUEST) fail_msg("key '%s' accepted", keys[i] ? keys[i] : "(none)");
  }
}

/* RFC 6455 1.3's example: that key gives that accept value. */
static void test_accept(void **state) {
  (void)state;
  good_upgrade();
  hb_strbuf resp = HB_STRBUF_INIT;
  hb_ws_accept(&upgrade_req, NULL, &resp);
  assert_string_equal(resp.buf, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
  hb_strbuf_reset(&resp);
  hb_ws_accept(&upgrade_req, "hubbub.v1", &resp);
  assert_non_null(strstr(resp.buf, "\r\nSec-WebSocket-Protocol: hubbub.v1\r\n\r\n"));
  hb_strbuf_free(&resp);
}

/* --- a live connection ------------------------------------------------------------ */

static struct {
  int texts, closes;
} echo_ev;

static void echo_text(hb_ws *ws, const char *msg, size_t len) {
  echo_ev.texts++;
  hb_ws_send_text(ws, msg, len);
}
static void echo_sweep(hb_ws *ws, uint64_t now) { (void)ws, (void)now; }
static void echo_close(hb_ws *ws) { (void)ws, echo_ev.closes++; }
static const hb_ws_handler echo = {.on_text = echo_text, .on_sweep = echo_sweep, .on_close = echo_close};

static void n_open(hb_conn *c, const hb_error *r) { (void)c, (void)r; }
static void n_read(hb_conn *c, const char *b, size_t n) { (void)c, (void)b, (void)n; }
static void n_sweep(hb_conn *c, uint64_t now) { (void)c, (void)now; }
static void n_close(hb_conn *c) { (void)c; }
static const hb_conn_handler before_upgrade = {n_open, n_read, n_sweep, n_close, n_close, n_close};

static hbt_stack stk;
static hb_io *io;
static hbt_frame fr;

static void to_ws(void *arg) { hb_ws_open(arg); }

/* A connection switched to WebSocket with the echo handler on top. */
static int ws_conn(hb_conn **conn) {
  int fd;
  hb_conn *c = hbt_attach(io, &fd, 0);
  hbt_on_io(io, to_ws, c);
  if (conn) *conn = c;
  return fd;
}

static void start(size_t max_message_bytes) {
  memset(&echo_ev, 0, sizeof echo_ev);
  hbt_stack_init(&stk);
  stk.mode = HBT_CUSTOM;
  stk.hooks = (hb_io_hooks){.accept_handler = &before_upgrade, .conn_ext_bytes = sizeof(hb_ws)};
  stk.cfg.max_message_bytes = max_message_bytes;
  hb_ws_init(&echo);
  hbt_stack_start(&stk);
  io = hbt_io(&stk, 0);
}

static bool all_closed(void *arg) { return echo_ev.closes == *(int *)arg; }

static void stop(int conns) {
  hbt_io_until(io, all_closed, &conns, "the WebSocket connections closed");
  hbt_stack_stop(&stk);
}

static void expect_text(int fd, hb_strbuf *in, const char *want) {
  hbt_ws_recv(fd, in, &fr);
  assert_int_equal(fr.opcode, HB_WS_OP_TEXT);
  assert_true(fr.fin);
  assert_string_equal(fr.payload, want);
}

static void expect_close(int fd, hb_strbuf *in, uint16_t code) {
  hbt_ws_recv(fd, in, &fr);
  if (fr.opcode != HB_WS_OP_CLOSE || fr.close_code != code)
    fail_msg("expected a close with %u, got opcode %d code %u", code, fr.opcode, fr.close_code);
}

/* Both receive paths deliver the same messages: one small frame in one read
 * (direct), two frames in one read, a frame split across reads, a
 * fragmented message, and one over the direct path's size (wslay). Pings
 * are answered with their payload. */
static void test_live_messages(void **state) {
  (void)state;
  start(HB_DEFAULT_MAX_MESSAGE_BYTES);
  int fd = ws_conn(NULL);
  hb_strbuf in = HB_STRBUF_INIT;
  hbt_ws_text(fd, "{\"direct\":1}");
  expect_text(fd, &in, "{\"direct\":1}");
  hbt_ws_text(fd, "one");
  hbt_ws_text(fd, "two");
  expect_text(fd, &in, "one");
  expect_text(fd, &in, "two");
  /* fragmented: text without FIN, a ping between the fragments, the continuation */
  hbt_ws_send(fd, 0x01, "frag", 4);
  hbt_ws_send(fd, 0x89, "pp", 2);
  hbt_ws_send(fd, 0x80, "mented", 6);
  int pongs = 0, texts = 0;
  for (int k = 0; k < 2; k++) { /* wslay sends its pong after the read: either order */
    hbt_ws_recv(fd, &in, &fr);
    if (fr.opcode == HB_WS_OP_PONG && strcmp(fr.payload, "pp") == 0) pongs++;
    else if (fr.opcode == HB_WS_OP_TEXT && strcmp(fr.payload, "fragmented") == 0) texts++;
  }
  assert_int_equal(pongs, 1);
  assert_int_equal(texts, 1);
  /* over HB_WS_DIRECT_MAX_BYTES, with a 16-bit length */
  static char big[HB_WS_DIRECT_MAX_BYTES + 500];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  hbt_ws_text(fd, big);
  expect_text(fd, &in, big);
  assert_int_equal(echo_ev.texts, 5);
  /* the client closes: the server answers with the same code and closes */
  hbt_ws_send(fd, 0x88, "\x03\xe8", 2);
  expect_close(fd, &in, 1000);
  hbt_recv_eof(fd, &in);
  hb_strbuf_free(&in);
  close(fd);
  stop(1);
}

/* A frame trickled in pieces goes through wslay whole. */
static void test_live_split_frame(void **state) {
  (void)state;
  start(HB_DEFAULT_MAX_MESSAGE_BYTES);
  int fd = ws_conn(NULL);
  static const uint8_t frame[] = {0x81, 0x85, 1, 2, 3, 4, 'h' ^ 1, 'e' ^ 2, 'l' ^ 3, 'l' ^ 4, 'o' ^ 1};
  hb_strbuf in = HB_STRBUF_INIT;
  for (size_t i = 0; i < sizeof frame; i++) {
    hbt_send(fd, frame + i, 1);
    usleep(1000); /* lets each byte be its own read most of the time; the answer is the same either way */
  }
  expect_text(fd, &in, "hello");
  hb_strbuf_free(&in);
  close(fd);
  stop(1);
}

/* What the server closes with: 1003 for a binary message, 1009 for a
 * message over max_message_bytes (from the header, before the payload),
 * 1007 for text that is not UTF-8, 1002 for an unmasked frame. */
static void test_live_violations(void **state) {
  (void)state;
  start(1000);
  static const struct {
    uint8_t b0;
    const char *payload;
    size_t len;
    uint16_t code;
  } cases[] = {
      {0x82, "bin", 3, 1003},
      {0x81, NULL, 1001, 1009},
      {0x81, "a\xff", 2, 1007},
  };
  static char big[1001];
  memset(big, 'a', sizeof big);
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    int fd = ws_conn(NULL);
    hb_strbuf in = HB_STRBUF_INIT;
    hbt_ws_send(fd, cases[k].b0, cases[k].payload ? cases[k].payload : big, cases[k].len);
    expect_close(fd, &in, cases[k].code);
    hbt_recv_eof(fd, &in); /* half-closed after the close frame */
    hb_strbuf_free(&in);
    close(fd);
  }
  int fd = ws_conn(NULL);
  hb_strbuf in = HB_STRBUF_INIT;
  hbt_send(fd, "\x81\x02hi", 4); /* unmasked */
  expect_close(fd, &in, 1002);
  hb_strbuf_free(&in);
  close(fd);
  assert_int_equal(echo_ev.texts, 0);
  stop(4);
}

typedef struct {
  hb_conn *c;
  uint16_t code;
  const char *reason;
} close_job;

static void server_close(void *arg) {
  close_job *j = arg;
  hb_ws_close(hb_ws_of(j->c), j->code, j->reason, false);
  hb_ws_close(hb_ws_of(j->c), 1000, "a second close is not sent", false);
}

/* The close frame the server sends: the code, then the reason cut to
 * HB_MAX_CLOSE_REASON_BYTES (a control frame holds 125 bytes); then the
 * connection half-closes and waits for the peer. */
static void test_server_close_frame(void **state) {
  (void)state;
  start(HB_DEFAULT_MAX_MESSAGE_BYTES);
  char reason[300];
  memset(reason, 'r', sizeof reason - 1);
  reason[sizeof reason - 1] = '\0';
  static const struct {
    uint16_t code;
    const char *reason;
    size_t want_len;
  } cases[] = {{4403, "forbidden", 9}, {1001, NULL, 0}, {4000, NULL, HB_MAX_CLOSE_REASON_BYTES}};
  for (size_t k = 0; k < 3; k++) {
    close_job j = {.code = cases[k].code, .reason = k == 2 ? reason : cases[k].reason};
    int fd = ws_conn(&j.c);
    hbt_on_io(io, server_close, &j);
    hb_strbuf in = HB_STRBUF_INIT;
    expect_close(fd, &in, cases[k].code);
    assert_int_equal(fr.len, 2 + cases[k].want_len);
    if (cases[k].want_len) assert_memory_equal(fr.payload + 2, j.reason, cases[k].want_len);
    hbt_recv_eof(fd, &in); /* nothing after the close frame: the second close was not sent */
    assert_int_equal(in.len, 0);
    hbt_ws_send(fd, 0x88, "\x03\xe8", 2);
    hb_strbuf_free(&in);
    close(fd);
  }
  stop(3);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_utf8),
      HBT_TEST(test_shapes),
      HBT_TEST(test_same_as_wslay),
      HBT_TEST(test_frame_header_every_length_class),
      HBT_TEST(test_frame_builders_agree),
      HBT_TEST(test_check_upgrade),
      HBT_TEST(test_accept),
      HBT_TEST(test_live_messages),
      HBT_TEST(test_live_split_frame),
      HBT_TEST(test_live_violations),
      HBT_TEST(test_server_close_frame),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
