/* test_ws.c - hb_ws_direct_text, the path that hands a single complete text
 * frame to the room without wslay: it must take exactly the frames wslay
 * would deliver as a text message (shape, masking, length encoding, size,
 * UTF-8) and leave everything else to wslay. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include <stdlib.h>
#include <wslay/wslay.h>

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

/* Reference: decode each sequence and check the code point (RFC 3629). */
static bool ref_utf8(const uint8_t *s, size_t n) {
  for (size_t i = 0; i < n;) {
    uint8_t c = s[i];
    size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (!len || i + len > n) return false;
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xc0) != 0x80) return false;
      cp = cp << 6 | (s[i + k] & 0x3f);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

static void expect_utf8(const uint8_t *s, size_t n) {
  size_t r = direct(s, n);
  if (ref_utf8(s, n)) {
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

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_utf8),
      HBT_TEST(test_shapes),
      HBT_TEST(test_same_as_wslay),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
