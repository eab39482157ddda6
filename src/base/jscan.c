/*
 * jscan.c - a strict JSON check in one pass, without allocation or recursion.
 *
 * Why it exists: jansson costs ~160 instructions per byte of a publish body
 * (it builds a tree, one value at a time, through a character stream), which
 * was half of the user-space time of an HTTP publish. The decoders in
 * the protocol decoders (proto/) only need to know that the text is valid and where a handful of
 * fields are, so for the common message this check plus a raw scan replaces
 * the tree. Everything unusual still goes to jansson (see jscan.h), so this
 * file never has to produce an error message or decode an escape.
 *
 * What "valid" means here is jansson's rule set with our flags
 * (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL):
 *   - RFC 8259 grammar; whitespace is space, tab, LF, CR; nothing after the
 *     value but whitespace;
 *   - strings: no raw byte below 0x20, escapes \" \\ \/ \b \f \n \r \t \uXXXX
 *     (\u0000 allowed), UTF-8 without overlong forms, surrogates or code
 *     points above U+10FFFF;
 *   - nesting of at most HB_MAX_JSON_DEPTH arrays and objects, as the depth
 *     check of hb_json_load() (json.c) counts it;
 *   - no key twice in one object.
 * Where checking jansson's rule exactly would cost code (surrogate pairs in
 * \u escapes, keys equal only after unescaping), the check says "no".
 */
#include "hubbub/jscan.h"

#include <stdint.h>
#include <string.h>

#include "hubbub/hex.h"
#include "hubbub/json.h"
#include "hubbub/limits.h"
#include "hubbub/utf8.h"

/* Byte classes inside a string: 0 continues a run of plain ASCII. */
enum { C_PLAIN = 0, C_QUOTE, C_ESCAPE, C_CONTROL, C_HIGH };

static const uint8_t string_class[256] = {
    [0x00 ... 0x1f] = C_CONTROL,
    ['"'] = C_QUOTE,
    ['\\'] = C_ESCAPE,
    [0x80 ... 0xff] = C_HIGH,
};

/*
 * `i` is at an opening quote. Returns the index just past the closing quote,
 * or 0 when the string is refused. *escaped tells whether it had an escape.
 */
static size_t scan_string(const char *text, size_t i, size_t n, bool *escaped) {
  const unsigned char *p = (const unsigned char *)text;
  i++;
  for (;;) {
    while (i < n && string_class[p[i]] == C_PLAIN) i++;
    if (i >= n) return 0;
    switch (string_class[p[i]]) {
    case C_QUOTE:
      return i + 1;
    case C_ESCAPE:
      *escaped = true;
      if (i + 1 >= n) return 0;
      switch (p[i + 1]) {
      case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
        i += 2;
        break;
      case 'u': {
        if (n - i < 6) return 0;
        unsigned v = 0;
        for (size_t k = 2; k < 6; k++) {
          int h = hb_hexval(p[i + k]);
          if (h < 0) return 0;
          v = v << 4 | (unsigned)h;
        }
        if (v >= 0xd800 && v <= 0xdfff) return 0; /* pairs: jansson decides */
        i += 6;
        break;
      }
      default:
        return 0;
      }
      break;
    case C_HIGH: {
      size_t m = hb_utf8_seq_len(p + i, n - i);
      if (m == 0) return 0;
      i += m;
      break;
    }
    default: /* C_CONTROL */
      return 0;
    }
  }
}

size_t hb_jscan_number_len(const char *p, size_t i, size_t n) {
  size_t j = i;
  if (j < n && p[j] == '-') j++;
  if (j >= n) return 0;
  if (p[j] == '0') {
    j++;
  } else if (p[j] >= '1' && p[j] <= '9') {
    while (j < n && p[j] >= '0' && p[j] <= '9') j++;
  } else {
    return 0;
  }
  if (j < n && p[j] == '.') {
    size_t k = ++j;
    while (j < n && p[j] >= '0' && p[j] <= '9') j++;
    if (j == k) return 0;
  }
  if (j < n && (p[j] == 'e' || p[j] == 'E')) {
    j++;
    if (j < n && (p[j] == '+' || p[j] == '-')) j++;
    size_t k = j;
    while (j < n && p[j] >= '0' && p[j] <= '9') j++;
    if (j == k) return 0;
  }
  return j - i;
}

static size_t literal(const char *p, size_t i, size_t n, const char *word, size_t len) {
  return n - i >= len && memcmp(p + i, word, len) == 0 ? len : 0;
}

/* A key seen in an object that is still open: the bytes between its quotes. */
typedef struct {
  uint32_t off;
  uint32_t len;
} key_span;

bool hb_jscan_plain(const char *p, size_t n) {
  char open[HB_MAX_JSON_DEPTH];           /* '{' or '[' per level */
  uint16_t keys_from[HB_MAX_JSON_DEPTH];  /* first entry of keys[] per object */
  key_span keys[HB_JSCAN_MAX_KEYS];
  size_t nkeys = 0;
  int depth = 0;
  size_t i = 0, m;
  bool escaped;

  if (n > UINT32_MAX) return false; /* key_span offsets; never for our bodies */

value:
  i = hb_json_skip_ws(p, i, n);
  if (i >= n) return false;
  switch (p[i]) {
  case '{':
  case '[':
    if (depth == HB_MAX_JSON_DEPTH) return false;
    open[depth] = p[i];
    keys_from[depth] = (uint16_t)nkeys;
    depth++;
    i = hb_json_skip_ws(p, i + 1, n);
    if (i < n && p[i] == (open[depth - 1] == '{' ? '}' : ']')) {
      depth--;
      i++;
      goto after;
    }
    if (open[depth - 1] == '{') goto key;
    goto value;
  case '"':
    escaped = false;
    if (!(i = scan_string(p, i, n, &escaped))) return false;
    goto after;
  case 't': m = literal(p, i, n, "true", 4); break;
  case 'f': m = literal(p, i, n, "false", 5); break;
  case 'n': m = literal(p, i, n, "null", 4); break;
  default: m = hb_jscan_number_len(p, i, n); break;
  }
  if (!m) return false;
  i += m;
  goto after;

key:
  if (i >= n || p[i] != '"') return false;
  escaped = false;
  size_t end = scan_string(p, i, n, &escaped);
  if (!end || escaped) return false;
  key_span k = {(uint32_t)(i + 1), (uint32_t)(end - i - 2)};
  for (size_t j = keys_from[depth - 1]; j < nkeys; j++)
    if (keys[j].len == k.len && memcmp(p + keys[j].off, p + k.off, k.len) == 0) return false;
  if (nkeys == HB_JSCAN_MAX_KEYS) return false;
  keys[nkeys++] = k;
  i = hb_json_skip_ws(p, end, n);
  if (i >= n || p[i] != ':') return false;
  i++;
  goto value;

after:
  i = hb_json_skip_ws(p, i, n);
  if (depth == 0) return i == n;
  if (i >= n) return false;
  if (p[i] == ',') {
    i = hb_json_skip_ws(p, i + 1, n);
    if (open[depth - 1] == '{') goto key;
    goto value;
  }
  if (p[i] != (open[depth - 1] == '{' ? '}' : ']')) return false;
  depth--;
  nkeys = keys_from[depth]; /* the closed object's keys are done */
  i++;
  goto after;
}
