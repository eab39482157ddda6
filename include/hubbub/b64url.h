/*
 * b64url.h - base64url (RFC 4648 section 5) without padding: JWT segments,
 * generated secrets and API tokens.
 */
#ifndef HUBBUB_B64URL_H
#define HUBBUB_B64URL_H

#include <stdbool.h>
#include <stddef.h>

#include "hubbub/strbuf.h"

/** Characters needed for `n` bytes (no padding, no NUL). */
#define HB_B64URL_LEN(n) (((n) * 4 + 2) / 3)

/** Append the encoding of p[0..n) to sb. */
void hb_b64url_encode(hb_strbuf *sb, const unsigned char *p, size_t n);

/**
 * Decode `n` characters into `out` (room for n * 3 / 4 bytes). Strict: no
 * padding, no characters outside the alphabet, no impossible length (n % 4
 * == 1) and no set bits in the unused tail, so that every byte string has
 * exactly one accepted encoding (a signature cannot be altered without
 * changing what it decodes to). Returns the decoded length or -1.
 */
long hb_b64url_decode(const char *s, size_t n, unsigned char *out);
/** True for a character of the base64url alphabet (A-Z a-z 0-9 - _). */
bool hb_b64url_is_char(unsigned char c);

#endif
