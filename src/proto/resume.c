/* resume.c - the resume string (resume.h). */
#include "hubbub/resume.h"

#include <string.h>

#include "hubbub/hex.h"

#define EPOCH_DIGITS HB_EPOCH_HEX_DIGITS
#define OFFSET_MAX_DIGITS 20

/* Lowercase hex only, exactly 16 digits, not zero. */
bool hb_resume_parse_epoch(const char *s, size_t n, uint64_t *out) {
  if (n != EPOCH_DIGITS) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    int h = hb_hexval(s[i]);
    if (h < 0 || (s[i] >= 'A' && s[i] <= 'F')) return false;
    v = v << 4 | (uint64_t)h;
  }
  *out = v;
  return v != 0;
}

/* Decimal, no sign, no leading zero (one spelling per number), fits 64 bits. */
bool hb_resume_parse_offset(const char *s, size_t n, uint64_t *out) {
  if (n == 0 || n > OFFSET_MAX_DIGITS || (n > 1 && s[0] == '0')) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return false;
    uint64_t d = (uint64_t)(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

bool hb_resume_parse(const char *s, size_t len, hb_pos out[HB_SCOPE__COUNT]) {
  if (len < 3 || len > HB_RESUME_MAX_BYTES || memcmp(s, "h1.", 3) != 0) return false;
  size_t i = 3;
  for (int sc = 0; sc < HB_SCOPE__COUNT; sc++) {
    const char *dot = memchr(s + i, '.', len - i);
    if (!dot || !hb_resume_parse_epoch(s + i, (size_t)(dot - s) - i, &out[sc].epoch)) return false;
    i = (size_t)(dot - s) + 1;
    const char *end = memchr(s + i, '.', len - i);
    size_t stop = end ? (size_t)(end - s) : len;
    if ((sc < HB_SCOPE__COUNT - 1) != (end != NULL)) return false; /* exactly six dots */
    if (!hb_resume_parse_offset(s + i, stop - i, &out[sc].offset)) return false;
    i = stop + 1;
  }
  return true;
}

void hb_resume_epoch_hex(uint64_t epoch, char out[HB_EPOCH_HEX_DIGITS]) {
  static const char hex[] = "0123456789abcdef";
  for (int k = 0; k < EPOCH_DIGITS; k++) out[k] = hex[(epoch >> (60 - 4 * k)) & 15];
}

void hb_resume_format(hb_strbuf *sb, const hb_pos pos[HB_SCOPE__COUNT]) {
  hb_strbuf_add(sb, "h1", 2);
  for (int sc = 0; sc < HB_SCOPE__COUNT; sc++) {
    char e[1 + EPOCH_DIGITS];
    e[0] = '.';
    hb_resume_epoch_hex(pos[sc].epoch, e + 1);
    hb_strbuf_add(sb, e, sizeof e);
    hb_strbuf_addf(sb, ".%llu", (unsigned long long)pos[sc].offset);
  }
}
