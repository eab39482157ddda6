/*
 * origin.h - the one rule for matching a request's Origin against an
 * allowlist (the server's allowed_origins, a plugin's origins, CORS).
 *
 * An allowlist is origins separated by spaces or tabs, each compared whole
 * with the request's Origin ("https://app.example.com:8443"), ignoring ASCII
 * case: RFC 6454 serialises scheme and host in lowercase, and browsers do,
 * so "https://App.Example.com" in a list still means that origin. No
 * wildcards: an origin is allowed by being named.
 */
#ifndef HUBBUB_ORIGIN_H
#define HUBBUB_ORIGIN_H

#include <stdbool.h>
#include <stddef.h>

/** True when origin[0..len) is one of the entries of `list`. */
bool hb_origin_in_list(const char *list, const char *origin, size_t len);

/** True when `list` names no origin at all (empty or only whitespace). */
bool hb_origin_list_empty(const char *list);

#endif
