/* strbuf.c - growable byte buffer. */
#include "hubbub/strbuf.h"

#include <stdio.h>
#include <string.h>

#include "hubbub/alloc.h"

void hb_strbuf_grow(hb_strbuf *sb, size_t extra) {
  size_t need = sb->len + extra + 1; /* room for the NUL */
  if (need <= sb->cap) return;
  size_t cap = sb->cap ? sb->cap : 64;
  while (cap < need) cap *= 2;
  sb->buf = hb_realloc(sb->buf, cap);
  sb->cap = cap;
}

void hb_strbuf_add(hb_strbuf *sb, const void *p, size_t n) {
  hb_strbuf_grow(sb, n);
  if (n) memcpy(sb->buf + sb->len, p, n);
  sb->len += n;
  sb->buf[sb->len] = '\0';
}

void hb_strbuf_addstr(hb_strbuf *sb, const char *s) { hb_strbuf_add(sb, s, strlen(s)); }

void hb_strbuf_addch(hb_strbuf *sb, char c) { hb_strbuf_add(sb, &c, 1); }

void hb_strbuf_addf(hb_strbuf *sb, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n <= 0) return;
  hb_strbuf_grow(sb, (size_t)n);
  va_start(ap, fmt);
  vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  sb->len += (size_t)n;
}

void hb_strbuf_add_json_str(hb_strbuf *sb, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  hb_strbuf_grow(sb, n + 2);
  hb_strbuf_addch(sb, '"');
  size_t run = 0; /* start of the bytes that need no escaping, copied in one piece */
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    hb_strbuf_add(sb, s + run, i - run);
    run = i + 1;
    switch (c) {
    case '"': hb_strbuf_add(sb, "\\\"", 2); break;
    case '\\': hb_strbuf_add(sb, "\\\\", 2); break;
    case '\n': hb_strbuf_add(sb, "\\n", 2); break;
    case '\r': hb_strbuf_add(sb, "\\r", 2); break;
    case '\t': hb_strbuf_add(sb, "\\t", 2); break;
    default: {
      char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      hb_strbuf_add(sb, esc, 6);
    }
    }
  }
  hb_strbuf_add(sb, s + run, n - run);
  hb_strbuf_addch(sb, '"');
}

void hb_strbuf_reset(hb_strbuf *sb) {
  sb->len = 0;
  if (sb->buf) sb->buf[0] = '\0';
}

void hb_strbuf_free(hb_strbuf *sb) {
  hb_free(sb->buf);
  sb->buf = NULL;
  sb->len = sb->cap = 0;
}

char *hb_strbuf_release(hb_strbuf *sb, size_t *len) {
  if (!sb->buf) hb_strbuf_grow(sb, 0);
  char *p = sb->buf;
  if (len) *len = sb->len;
  sb->buf = NULL;
  sb->len = sb->cap = 0;
  return p;
}

void hb_strbuf_add_uint(hb_strbuf *sb, uint64_t v) {
  char num[24];
  size_t n = 0;
  do {
    num[sizeof num - 1 - n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  hb_strbuf_add(sb, num + sizeof num - n, n);
}
