/* text.c - text the tests build or check the same way in several files (text.h). */
#include "text.h"

#include <string.h>

#include "check.h"

char *hbt_nest(int depth, const char *prefix, const char *suffix) {
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_strbuf_addstr(&sb, prefix);
  for (int i = 0; i < depth; i++) hb_strbuf_addstr(&sb, i % 2 ? "[" : "{\"a\":");
  hb_strbuf_addstr(&sb, "1");
  for (int i = depth - 1; i >= 0; i--) hb_strbuf_addstr(&sb, i % 2 ? "]" : "}");
  hb_strbuf_addstr(&sb, suffix);
  return hb_strbuf_release(&sb, NULL);
}

bool hbt_utf8_ref_valid(const uint8_t *s, size_t n) {
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

void hbt_expect_sb(hb_strbuf *sb, const char *want) {
  assert_non_null(sb->buf);
  assert_string_equal(sb->buf, want);
  assert_int_equal(sb->len, strlen(want));
  hb_strbuf_free(sb);
}
