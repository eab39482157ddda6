/* utf8.c - well-formed UTF-8, checked by the ranges of Unicode Table 3-7. */
#include "hubbub/utf8.h"

size_t hb_utf8_seq_len(const unsigned char *p, size_t n) {
  unsigned char c = p[0];
  size_t len;
  /* The second byte's range is what excludes overlong forms (E0, F0),
   * surrogates (ED) and code points above U+10FFFF (F4). */
  unsigned char lo = 0x80, hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0; /* ASCII is not a multi-byte sequence; 80-C1 and F5-FF never lead */
  }
  if (n < len || p[1] < lo || p[1] > hi) return 0;
  for (size_t k = 2; k < len; k++)
    if ((p[k] & 0xc0) != 0x80) return 0;
  return len;
}

bool hb_utf8_valid(const unsigned char *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    if (p[i] < 0x80) {
      i++;
      continue;
    }
    size_t m = hb_utf8_seq_len(p + i, n - i);
    if (m == 0) return false;
    i += m;
  }
  return true;
}
