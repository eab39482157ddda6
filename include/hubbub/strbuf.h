/*
 * strbuf.h - a growable byte buffer (NUL-terminated for convenience).
 * The buffer owns `buf`; hb_strbuf_release() hands ownership to the caller.
 */
#ifndef HUBBUB_STRBUF_H
#define HUBBUB_STRBUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  char *buf;
  size_t len;
  size_t cap;
} hb_strbuf;

#define HB_STRBUF_INIT {NULL, 0, 0}

void hb_strbuf_grow(hb_strbuf *sb, size_t extra);
void hb_strbuf_add(hb_strbuf *sb, const void *p, size_t n);
void hb_strbuf_addstr(hb_strbuf *sb, const char *s);
void hb_strbuf_addch(hb_strbuf *sb, char c);
/** Append `v` in decimal (without printf: a hot path's numbers). */
void hb_strbuf_add_uint(hb_strbuf *sb, uint64_t v);
void hb_strbuf_addf(hb_strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Append `s` as a JSON string literal, quotes included, escaping as RFC 8259. */
void hb_strbuf_add_json_str(hb_strbuf *sb, const char *s, size_t n);
void hb_strbuf_reset(hb_strbuf *sb);
void hb_strbuf_free(hb_strbuf *sb);
/** Take the buffer; `sb` is empty afterwards. */
char *hb_strbuf_release(hb_strbuf *sb, size_t *len);

#endif
