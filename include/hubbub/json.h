/*
 * json.h - the one front door for JSON text: every JSON hubbub reads (client
 * messages, HTTP bodies, the admin API, the config file, token claims) goes
 * through hb_json_load(), so the same limits and error wording hold for all.
 *
 * The rules: jansson with JSON_REJECT_DUPLICATES (jansson keeps the last
 * duplicate by default, which would let two parties read the same message
 * differently), nesting capped at HB_MAX_JSON_DEPTH before jansson sees the
 * text (its own cap is 2048 levels of recursion), any top-level value (so a
 * caller can say "not an object" precisely), NUL allowed inside strings.
 * Errors never echo the input: "invalid JSON at byte N: <why>".
 *
 * Besides the loader, this module holds the raw-text helpers the decoders
 * use to forward values byte for byte (re-serialising would turn 0.1 into
 * 0.10000000000000001 and -0 into 0): locating the span of a value, and
 * reading members of a text that hb_jscan_plain() accepted without building
 * a tree at all.
 */
#ifndef HUBBUB_JSON_H
#define HUBBUB_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "hubbub/errors.h"
#include "hubbub/limits.h"

/**
 * Route jansson's allocations through the per-decode arena (hb_json_arena_*).
 * Call once before other threads use jansson: it sets jansson's process-wide
 * allocator. Everything works without it, only slower.
 */
void hb_json_init(void);

/*
 * A decode builds a small tree (a publish body: ~50 allocations of a few
 * dozen bytes) and frees all of it before returning; malloc and free for
 * those were ~7 % of an HTTP publish (docs/performance.md, W3). Between
 * hb_json_arena_begin() and _end(), jansson's allocations on this thread are
 * bump-allocated from a caller's stack buffer, free() of such a block does
 * nothing, and the buffer is dropped at the end. Nothing allocated inside
 * may outlive the arena. Allocations that do not fit go to malloc.
 */
typedef struct hb_json_arena {
  char *base;
  size_t cap, used;
  struct hb_json_arena *prev;
} hb_json_arena;

#define HB_JSON_ARENA_ALIGN 16
/** Declare a stack buffer for an arena: `HB_JSON_ARENA_BUF(buf);`. */
#define HB_JSON_ARENA_BUF(name) _Alignas(HB_JSON_ARENA_ALIGN) char name[HB_JSON_ARENA_BYTES]

void hb_json_arena_begin(hb_json_arena *a, char *buf, size_t cap);
void hb_json_arena_end(hb_json_arena *a);

/**
 * Parse `buf[0..len)` under the rules above. Returns a new reference, or
 * NULL with `err` set to HB_E_INVALID_JSON and a message that says where and
 * why (never quoting the input).
 */
json_t *hb_json_load(const char *buf, size_t len, hb_error *err);

/**
 * Read a whole file of at most `max_bytes` and parse it with hb_json_load.
 * On failure returns NULL and writes "PATH: why" into errbuf.
 */
json_t *hb_json_load_file(const char *path, size_t max_bytes, char *errbuf, size_t errlen);

/* --- raw text ------------------------------------------------------------- */

static inline bool hb_json_is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static inline size_t hb_json_skip_ws(const char *p, size_t i, size_t n) {
  while (i < n && hb_json_is_ws(p[i])) i++;
  return i;
}

/**
 * In text jansson accepted, the span [*start, *end) of the value at `path`
 * (object keys from the top level; keys compare after unescaping). False
 * when a key is absent or a level is not an object.
 */
bool hb_json_find_span(const char *p, size_t n, const char *const *path, int path_len,
                       size_t *start, size_t *end);

/**
 * The elements of an array, in text jansson accepted: start with *i at its
 * '['; each call gives the next element's span [*s, *e); false after the last.
 */
bool hb_json_array_next(const char *p, size_t n, size_t *i, size_t *s, size_t *e);

/* Reading a text hb_jscan_plain() accepted: keys there are plain (no
 * escapes) and unique, so bytes compare as keys. `obj` is the index of an
 * object's '{'. */

/** The top-level object: true and *root = its '{' when `p` passes hb_jscan_plain and is an object. */
bool hb_json_plain_root(const char *p, size_t n, size_t *root);
/** The value of `key` in the object at `obj`, as the span [*vs, *ve). */
bool hb_json_plain_member(const char *p, size_t n, size_t obj, const char *key, size_t *vs, size_t *ve);
/** The span [vs, ve) is a string written without escapes: *s, *len are its bytes. */
bool hb_json_span_str(const char *p, size_t vs, size_t ve, const char **s, size_t *len);
/** A string member written without escapes. */
bool hb_json_plain_str(const char *p, size_t n, size_t obj, const char *key, const char **s, size_t *len);
/** An object member; *at is its '{'. */
bool hb_json_plain_obj(const char *p, size_t n, size_t obj, const char *key, size_t *at);

/** True when s[0..n) holds a control character (below 0x20, or DEL). */
bool hb_json_has_control(const char *s, size_t n);

#endif
