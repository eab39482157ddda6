/*
 * test_b64url.c - base64url without padding (b64url.c): the encoding
 * against OpenSSL's base64, and the strict decoder: padding, characters
 * outside the alphabet, impossible lengths and non-canonical tails refused,
 * so every byte string has exactly one accepted encoding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "check.h"

#include "hubbub/b64url.h"
#include "hubbub/strbuf.h"

/* The reference: OpenSSL's standard base64, converted to the URL alphabet
 * without padding. */
static size_t reference(const unsigned char *p, size_t n, char *out) {
  unsigned char b[512];
  int m = EVP_EncodeBlock(b, p, (int)n);
  size_t o = 0;
  for (int i = 0; i < m && b[i] != '='; i++) out[o++] = b[i] == '+' ? '-' : b[i] == '/' ? '_' : (char)b[i];
  out[o] = '\0';
  return o;
}

static long decode(const char *s, unsigned char *out) { return hb_b64url_decode(s, strlen(s), out); }

static void test_round_trip(void **state) {
  (void)state;
  unsigned char in[200], back[200];
  char want[300];
  srand(4648);
  for (size_t n = 0; n <= sizeof in - 1; n++) {
    for (size_t i = 0; i < n; i++) in[i] = (unsigned char)rand();
    if (n == 100) memset(in, 0xff, n); /* every bit set: the last characters of the alphabet */
    size_t wl = reference(in, n, want);
    hb_strbuf sb = HB_STRBUF_INIT;
    hb_strbuf_addstr(&sb, "x"); /* appends */
    hb_b64url_encode(&sb, in, n);
    assert_int_equal(sb.len, 1 + wl);
    assert_int_equal(wl, HB_B64URL_LEN(n));
    assert_string_equal(sb.buf + 1, want);
    assert_int_equal(hb_b64url_decode(sb.buf + 1, wl, back), (long)n);
    if (n) assert_memory_equal(back, in, n);
    hb_strbuf_free(&sb);
  }
}

static void test_strict(void **state) {
  (void)state;
  unsigned char out[64];
  assert_int_equal(decode("", out), 0);
  assert_int_equal(decode("QQ", out), 1);
  assert_int_equal(out[0], 'A');
  assert_int_equal(decode("QUI", out), 2);
  assert_memory_equal(out, "AB", 2);
  assert_int_equal(decode("-_-_", out), 3); /* the URL alphabet's two characters */
  assert_memory_equal(out, "\xfb\xff\xbf", 3);
  /* padding, and the standard alphabet's characters */
  assert_int_equal(decode("QQ==", out), -1);
  assert_int_equal(decode("QUI=", out), -1);
  assert_int_equal(decode("+/+/", out), -1);
  /* anything outside the alphabet, anywhere */
  const char *bad[] = {"QU I", "QUI\n", " QUI", "QU.I", "QUI\t", "QUJD*", "Q\xc3\xa9I"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (decode(bad[i], out) != -1) fail_msg("'%s' accepted", bad[i]);
  assert_int_equal(hb_b64url_decode("QU\0I", 4, out), -1);
  /* an impossible length: one character cannot carry a byte */
  assert_int_equal(decode("Q", out), -1);
  assert_int_equal(decode("QUJDR", out), -1);
  /* non-canonical tails: bits set after the last byte. "QR" would also
   * decode to "A" if the unused bits were ignored. */
  assert_int_equal(decode("QR", out), -1);
  assert_int_equal(decode("Q_", out), -1);
  assert_int_equal(decode("QUJ", out), -1); /* "QUI" is the one encoding of "AB" */
  assert_int_equal(decode("QUIB", out), 3);   /* a full group has no unused bits */
}

/* Every 2- and 3-character tail: accepted exactly when the encoder would
 * write it, and then it decodes to the bytes that produce it. */
static void test_every_tail(void **state) {
  (void)state;
  static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  unsigned char out[4];
  char s[4] = "", enc[8];
  int accepted = 0;
  for (int a = 0; a < 64; a++)
    for (int b = 0; b < 64; b++)
      for (int c = -1; c < 64; c++) {
        s[0] = alpha[a], s[1] = alpha[b], s[2] = c < 0 ? '\0' : alpha[c];
        long n = decode(s, out);
        if (n < 0) continue;
        accepted++;
        reference(out, (size_t)n, enc);
        if (strcmp(enc, s) != 0) fail_msg("'%s' accepted as a non-canonical form of '%s'", s, enc);
      }
  assert_int_equal(accepted, 256 + 65536); /* one per byte string of 1 and 2 bytes */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_round_trip),
      HBT_TEST(test_strict),
      HBT_TEST(test_every_tail),
  };
  return cmocka_run_group_tests_name("b64url", tests, NULL, NULL);
}
