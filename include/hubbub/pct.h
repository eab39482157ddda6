/*
 * pct.h - percent-decoding (RFC 3986 2.1): query parameters of the WebSocket
 * URL, credentials in a Redis URL. One strict rule for all: '%' must be
 * followed by two hex digits, anything else is refused, never passed
 * through (a lenient decoder lets two readers see different values).
 */
#ifndef HUBBUB_PCT_H
#define HUBBUB_PCT_H

#include <stddef.h>
#include <sys/types.h>

/**
 * Decode s[0..n) into out (cap bytes, room for the NUL included); '+' is
 * not a space (that is HTML forms, not URLs). Returns the decoded length,
 * or -1 for a malformed escape or a result that does not fit.
 */
ssize_t hb_pct_decode(const char *s, size_t n, char *out, size_t cap);

#endif
