/*
 * text.h - text the tests build or check the same way in several files:
 * nested JSON for the depth limits, the reference UTF-8 rule, a buffer's
 * exact contents.
 */
#ifndef HBT_TEXT_H
#define HBT_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hubbub/strbuf.h"

/**
 * `depth` nested containers, alternating objects and arrays and starting
 * with an object, around a 1 ({"a":[{"a":[1]}]}), between prefix and
 * suffix. Caller frees (hb_free).
 */
char *hbt_nest(int depth, const char *prefix, const char *suffix);

/** UTF-8 by decoding each sequence and checking its code point (RFC 3629),
 * independent of the code under test. */
bool hbt_utf8_ref_valid(const uint8_t *s, size_t n);

/** `sb` holds exactly `want`; then it is freed. */
void hbt_expect_sb(hb_strbuf *sb, const char *want);

#endif
