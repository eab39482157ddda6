/* pct.c - strict percent-decoding (pct.h). */
#include "hubbub/pct.h"

#include <string.h>

#include "hubbub/hex.h"

ssize_t hb_pct_decode(const char *s, size_t n, char *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    /* Copy up to the next escape in one piece (a token has none). */
    const char *pct = memchr(s + i, '%', n - i);
    size_t run = pct ? (size_t)(pct - s) - i : n - i;
    if (o + run >= cap) return -1;
    memcpy(out + o, s + i, run);
    o += run;
    i += run;
    if (i == n) break;
    if (i + 2 >= n) return -1; /* "%" or "%x" at the end */
    int hi = hb_hexval(s[i + 1]), lo = hb_hexval(s[i + 2]);
    if (hi < 0 || lo < 0 || o + 1 >= cap) return -1;
    out[o++] = (char)(hi << 4 | lo);
    i += 3;
  }
  if (o >= cap) return -1;
  out[o] = '\0';
  return (ssize_t)o;
}
