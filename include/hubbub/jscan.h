/*
 * jscan.h - a fast, strict, allocation-free check of a JSON text, used to let
 * the common, well-formed message skip jansson (see json.h).
 *
 * hb_jscan_plain() says "yes" only for a text that jansson, with the flags
 * hb_json_load() uses, also accepts, and whose object keys are all
 * "plain": written without escapes and unique within their object. It never
 * explains a "no": a refused text, and any shape it does not handle cheaply
 * (an escaped key, a \u escape of a surrogate, more than HB_JSCAN_MAX_KEYS
 * keys open at once), goes to jansson, which accepts it or gives the precise
 * error. So the check may refuse more than jansson does, never less; the
 * fuzz driver fuzz_jscan holds it to that.
 */
#ifndef HUBBUB_JSCAN_H
#define HUBBUB_JSCAN_H

#include <stdbool.h>
#include <stddef.h>

/**
 * True when `p[0..n)` is one RFC 8259 JSON value, optionally surrounded by
 * whitespace, nested at most HB_MAX_JSON_DEPTH levels, with valid UTF-8 in
 * its strings, valid escapes, and plain unique keys (see above).
 * Numbers of any size are accepted: hb_json_load() hands jansson a copy without
 * them when it refuses one as too large.
 */
bool hb_jscan_plain(const char *p, size_t n);

/** Length of the RFC 8259 number that starts at p[i] (i < n), or 0 when the
 * bytes there do not start one. */
size_t hb_jscan_number_len(const char *p, size_t i, size_t n);

#endif
