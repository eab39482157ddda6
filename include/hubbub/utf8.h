/*
 * utf8.h - well-formed UTF-8 (RFC 3629; Unicode Table 3-7): no overlong
 * forms, no surrogates, nothing above U+10FFFF, no truncated sequence.
 * The set jansson and wslay accept; used where hubbub checks text without
 * them (jscan.c, the direct text-frame path in ws.c).
 */
#ifndef HUBBUB_UTF8_H
#define HUBBUB_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/** Length of the well-formed multi-byte sequence at p[0] (a byte >= 0x80)
 * within the n bytes available, or 0 when it is not one. */
size_t hb_utf8_seq_len(const unsigned char *p, size_t n);

/** True when p[0..n) is well-formed UTF-8. */
bool hb_utf8_valid(const unsigned char *p, size_t n);

#endif
