/* b64url.c - base64url without padding (b64url.h). */
#include "hubbub/b64url.h"

#include <stdint.h>

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* One more than the value of each base64url character; 0 for every other
 * byte ('=' padding, '+', '/', whitespace: all refused). */
static const uint8_t b64url_table[256] = {
    ['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7, ['H'] = 8,
    ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15,
    ['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22,
    ['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29,
    ['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
    ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42, ['q'] = 43,
    ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49, ['x'] = 50,
    ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56, ['4'] = 57,
    ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['-'] = 63, ['_'] = 64,
};

void hb_b64url_encode(hb_strbuf *sb, const unsigned char *p, size_t n) {
  hb_strbuf_grow(sb, (n + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
    char q[4] = {b64url_alphabet[v >> 18], b64url_alphabet[(v >> 12) & 63],
                 b64url_alphabet[(v >> 6) & 63], b64url_alphabet[v & 63]};
    hb_strbuf_add(sb, q, 4);
  }
  if (n - i == 1) {
    unsigned v = (unsigned)p[i] << 16;
    char q[2] = {b64url_alphabet[v >> 18], b64url_alphabet[(v >> 12) & 63]};
    hb_strbuf_add(sb, q, 2);
  } else if (n - i == 2) {
    unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
    char q[3] = {b64url_alphabet[v >> 18], b64url_alphabet[(v >> 12) & 63],
                 b64url_alphabet[(v >> 6) & 63]};
    hb_strbuf_add(sb, q, 3);
  }
}

/* Strict (b64url.h says why): a table lookup per character, four at a time. */
long hb_b64url_decode(const char *s, size_t n, unsigned char *out) {
  const unsigned char *u = (const unsigned char *)s;
  if (n % 4 == 1) return -1;
  size_t o = 0, i = 0;
  /* Four characters to three bytes; a value of -1 marks a bad one. */
  for (; i + 4 <= n; i += 4) {
    int32_t a = b64url_table[u[i]] - 1, b = b64url_table[u[i + 1]] - 1,
            c = b64url_table[u[i + 2]] - 1, d = b64url_table[u[i + 3]] - 1;
    if ((a | b | c | d) < 0) return -1;
    uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
    out[o++] = (unsigned char)(v >> 16);
    out[o++] = (unsigned char)(v >> 8);
    out[o++] = (unsigned char)v;
  }
  if (i < n) {
    /* 2 characters (12 bits) carry one byte, 3 (18 bits) two; the bits
     * left over must be zero (non-canonical otherwise). */
    int32_t a = b64url_table[u[i]] - 1, b = b64url_table[u[i + 1]] - 1;
    int32_t c = n - i == 3 ? b64url_table[u[i + 2]] - 1 : 0;
    if ((a | b | c) < 0) return -1;
    uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6;
    out[o++] = (unsigned char)(v >> 16);
    if (n - i == 3) out[o++] = (unsigned char)(v >> 8);
    if (v & (n - i == 3 ? 0xffu : 0xffffu)) return -1;
  }
  return (long)o;
}

bool hb_b64url_is_char(unsigned char c) { return b64url_table[c] != 0; }
