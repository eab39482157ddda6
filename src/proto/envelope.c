/*
 * envelope.c - the JSON codec of the v1 wire protocol and of the HTTP bodies.
 *
 * Decoding runs in three steps:
 *   1. a byte scan that refuses nesting deeper than HB_MAX_JSON_DEPTH before
 *      jansson sees the text (jansson's own cap is 2048 levels);
 *   2. jansson with JSON_REJECT_DUPLICATES validates the text (syntax, UTF-8,
 *      duplicate keys) and gives us a tree to check the fields on;
 *   3. for publishes, a small scanner over the validated text finds the byte
 *      span of `data`, which is forwarded as is: re-serialising would turn
 *      0.1 into 0.10000000000000001 and -0 into 0.
 * The common message skips steps 1-2: when hb_jscan_plain() (jscan.c) finds
 * the text valid, with plain unique keys, and every field we read is present,
 * of the right type and plain (no escapes), the fields are read straight from
 * the text (the *_fast decoders below). Anything else, every error included,
 * takes the jansson path, so errors and their messages have one source.
 * Encoders build compact JSON with hb_strbuf appends, in the field order of
 * docs/protocol.md.
 */
#include "hubbub/envelope.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hubbub/alloc.h"
#include "hubbub/hex.h"
#include "hubbub/jscan.h"

#if defined(__SANITIZE_ADDRESS__)
#define HB_ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HB_ARENA_ASAN 1
#endif
#endif
#ifdef HB_ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define ARENA_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define ARENA_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#define ARENA_REDZONE 16 /* poisoned gap after each block: overflows stay visible */
#else
#define ARENA_POISON(p, n) ((void)0)
#define ARENA_UNPOISON(p, n) ((void)0)
#define ARENA_REDZONE 0
#endif

/* jansson flags for every body: duplicates are an error (jansson keeps the
 * last by default, which would let two parties read the same message
 * differently); any top-level value so that we can say "not an object"
 * precisely; NUL allowed inside strings (valid JSON; the fields we read are
 * length-checked, and `data` is forwarded raw). */
#define LOAD_FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL)

/* Append a string literal without a strlen(). */
#define ADD_LIT(sb, lit) hb_strbuf_add((sb), (lit), sizeof(lit) - 1)

bool hb_event_name_valid(const char *s, size_t len) {
  if (len == 0 || len > HB_MAX_EVENT_NAME_BYTES) return false;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) continue;
    if (c == '-' || c == '_' || c == '.' || c == ':' || c == '/' || c == '@') continue;
    return false;
  }
  return true;
}

/* --- jansson's allocations during a decode ------------------------------- */

/*
 * A decode builds a small tree (a publish body: ~50 allocations of a few
 * dozen bytes, objects, hash buckets, strings, the lexer's buffer) and frees
 * all of it before returning. malloc and free for those were ~7 % of the
 * instructions of an HTTP publish (docs/performance.md, W3). While a decode
 * runs, its thread bump-allocates them from a buffer on the decoder's stack;
 * free() of such a block does nothing, and the whole buffer is dropped when
 * the decode ends. Allocations that do not fit, and all jansson use outside
 * a decode (config, admin, JWT claims), go to malloc/free as before.
 * Nothing allocated inside a decode outlives it: every decoder releases its
 * tree before it returns.
 */
typedef struct json_arena {
  char *base;
  size_t cap, used;
  struct json_arena *prev;
} json_arena;

static _Thread_local json_arena *arena_cur;

#define ARENA_ALIGN 16

static void *arena_malloc(size_t n) {
  json_arena *a = arena_cur;
  if (a) {
    size_t need = (n + ARENA_REDZONE + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need >= n && need <= a->cap - a->used) {
      char *p = a->base + a->used;
      a->used += need;
      ARENA_UNPOISON(p, n);
      return p;
    }
  }
  return malloc(n);
}

static void arena_free(void *p) {
  /* Decoders do not nest today; walking the chain keeps free() of an outer
   * arena's block harmless if one ever does. */
  for (json_arena *a = arena_cur; a; a = a->prev) {
    /* Released with the whole arena. (Under ASan the redzones catch
     * overruns; a use after this free is not caught: no size is kept.) */
    if ((char *)p >= a->base && (char *)p < a->base + a->cap) return;
  }
  free(p);
}

static pthread_once_t arena_once = PTHREAD_ONCE_INIT;

static void arena_install(void) { json_set_alloc_funcs(arena_malloc, arena_free); }

void hb_envelope_init(void) { pthread_once(&arena_once, arena_install); }

static void arena_begin(json_arena *a, char *buf, size_t cap) {
  a->base = buf;
  a->cap = cap;
  a->used = 0;
  a->prev = arena_cur;
  ARENA_POISON(buf, cap);
  arena_cur = a;
}

static void arena_end(json_arena *a) {
  arena_cur = a->prev;
  /* stack memory: it must be addressable again when the frame is reused */
  ARENA_UNPOISON(a->base, a->cap);
}

/* --- the raw-bytes scanner ------------------------------------------------ */

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static size_t skip_ws(const char *p, size_t i, size_t n) {
  while (i < n && is_ws(p[i])) i++;
  return i;
}

/*
 * `i` is just past an opening quote; returns the index of the closing one,
 * or n when there is none. A quote closes the string when an even number of
 * backslashes precedes it, which is what a byte loop skipping the character
 * after each backslash decides, for any input; memchr makes the common case
 * (long runs without a quote) cheap: strings are most of a publish body.
 */
static size_t closing_quote(const char *p, size_t i, size_t n) {
  while (i < n) {
    const char *q = memchr(p + i, '"', n - i);
    if (!q) return n;
    size_t j = (size_t)(q - p), k = j;
    while (k > i && p[k - 1] == '\\') k--;
    if ((j - k) % 2 == 0) return j;
    i = j + 1; /* an escaped quote; a run of backslashes cannot span it */
  }
  return n;
}

/* `i` is at an opening quote; returns the index just past the closing one
 * (or n when the string is unterminated, which validated text never is). */
static size_t skip_string(const char *p, size_t i, size_t n) {
  size_t j = closing_quote(p, i + 1, n);
  return j < n ? j + 1 : n;
}

/* `i` is at the first byte of a value; returns the index just past it. */
static size_t skip_value(const char *p, size_t i, size_t n) {
  if (i >= n) return n;
  if (p[i] == '"') return skip_string(p, i, n);
  if (p[i] == '{' || p[i] == '[') {
    size_t depth = 0;
    while (i < n) {
      char c = p[i];
      if (c == '"') {
        i = skip_string(p, i, n);
        continue;
      }
      if (c == '{' || c == '[') depth++;
      else if ((c == '}' || c == ']') && --depth == 0) return i + 1;
      i++;
    }
    return n;
  }
  /* number, true, false, null: runs until a delimiter */
  while (i < n && !is_ws(p[i]) && p[i] != ',' && p[i] != '}' && p[i] != ']') i++;
  return i;
}

/*
 * Compare the key whose raw characters are p[a..b) (between the quotes) with
 * an ASCII `want`, decoding escapes: "d\u0061ta" is the key "data" to
 * jansson, so it must be to us too. An escape that decodes outside ASCII can
 * never match an ASCII key.
 */
static bool key_equals(const char *p, size_t a, size_t b, const char *want) {
  size_t w = 0;
  for (size_t i = a; i < b; w++) {
    if (!want[w]) return false;
    unsigned c = (unsigned char)p[i];
    if (c != '\\') {
      i++;
    } else {
      if (i + 1 >= b) return false;
      char e = p[i + 1];
      i += 2;
      switch (e) {
      case '"': c = '"'; break;
      case '\\': c = '\\'; break;
      case '/': c = '/'; break;
      case 'b': c = '\b'; break;
      case 'f': c = '\f'; break;
      case 'n': c = '\n'; break;
      case 'r': c = '\r'; break;
      case 't': c = '\t'; break;
      case 'u': {
        if (i + 4 > b) return false;
        unsigned v = 0;
        for (int k = 0; k < 4; k++) {
          int h = hb_hexval(p[i + (size_t)k]);
          if (h < 0) return false;
          v = v << 4 | (unsigned)h;
        }
        i += 4;
        if (v == 0 || v >= 0x80) return false;
        c = v;
        break;
      }
      default: return false;
      }
    }
    if ((unsigned char)want[w] != c) return false;
  }
  return want[w] == '\0';
}

/*
 * Find the span of the value at `path` (object keys from the top level) in
 * text that jansson has already accepted. The span starts at the value's
 * first byte and ends after its last: no surrounding whitespace. Duplicate
 * keys were rejected, so the first match is the only one.
 */
static bool find_span(const char *p, size_t n, const char *const *path, int path_len,
                      size_t *start, size_t *end) {
  size_t i = skip_ws(p, 0, n);
  for (int level = 0; level < path_len; level++) {
    if (i >= n || p[i] != '{') return false;
    i++;
    for (;;) {
      i = skip_ws(p, i, n);
      if (i >= n || p[i] != '"') return false; /* '}' here: the key is absent */
      size_t kend = skip_string(p, i, n);
      if (kend >= n) return false;
      bool match = key_equals(p, i + 1, kend - 1, path[level]);
      i = skip_ws(p, kend, n);
      if (i >= n || p[i] != ':') return false;
      i = skip_ws(p, i + 1, n);
      if (match) break;
      i = skip_ws(p, skip_value(p, i, n), n);
      if (i >= n || p[i] != ',') return false;
      i++;
    }
  }
  if (i >= n) return false;
  *start = i;
  *end = skip_value(p, i, n);
  return *end > *start && *end <= n;
}

bool hb_name_list_next(const char *s, size_t n, size_t *pos, const char **name, size_t *len) {
  if (n == 0 || *pos > n) return false;
  const char *comma = memchr(s + *pos, ',', n - *pos);
  *name = s + *pos;
  *len = comma ? (size_t)(comma - s) - *pos : n - *pos;
  *pos += *len + 1; /* past the comma; n + 1 after the last name */
  return true;
}

/* --- reading a text hb_jscan_plain() accepted ------------------------------- */

/* Tests and fuzzing turn the fast decoders off to compare both paths, and
 * count the decodes the fast path finished (per thread: no shared counter
 * on the hot path). */
static bool fast_path = true;
static _Thread_local unsigned long fast_decodes;

bool hb_envelope_set_fast_path(bool on) {
  bool was = fast_path;
  fast_path = on;
  return was;
}
unsigned long hb_envelope_fast_decodes(void) { return fast_decodes; }

/*
 * The value of `key` in the object whose '{' is at p[obj], as the span
 * [*vs, *ve). Keys there are plain and unique, so bytes compare as keys.
 */
static bool plain_member(const char *p, size_t n, size_t obj, const char *key, size_t *vs,
                         size_t *ve) {
  size_t klen = strlen(key);
  size_t i = skip_ws(p, obj + 1, n);
  while (i < n && p[i] == '"') {
    size_t kend = closing_quote(p, i + 1, n);
    bool match = kend - i - 1 == klen && memcmp(p + i + 1, key, klen) == 0;
    i = skip_ws(p, kend + 1, n); /* at ':' */
    i = skip_ws(p, i + 1, n);
    size_t e = skip_value(p, i, n);
    if (match) {
      *vs = i;
      *ve = e;
      return true;
    }
    i = skip_ws(p, e, n);
    if (i >= n || p[i] != ',') break;
    i = skip_ws(p, i + 1, n);
  }
  return false;
}

/* The value at [vs, ve) is a string written without escapes: its bytes
 * are its value. */
static bool span_str(const char *p, size_t vs, size_t ve, const char **s, size_t *len) {
  if (p[vs] != '"') return false;
  *s = p + vs + 1;
  *len = ve - vs - 2;
  return memchr(*s, '\\', *len) == NULL;
}

/* A string member written without escapes. */
static bool plain_str(const char *p, size_t n, size_t obj, const char *key, const char **s,
                      size_t *len) {
  size_t vs, ve;
  return plain_member(p, n, obj, key, &vs, &ve) && span_str(p, vs, ve, s, len);
}

/* An object member; *at is its '{'. */
static bool plain_obj(const char *p, size_t n, size_t obj, const char *key, size_t *at) {
  size_t ve;
  return plain_member(p, n, obj, key, at, &ve) && p[*at] == '{';
}

/* The `data` member: an object within the size limit. */
static bool plain_data(const char *p, size_t n, size_t obj, size_t max_data_bytes,
                       const char **data, size_t *data_len) {
  size_t vs, ve;
  if (!plain_member(p, n, obj, "data", &vs, &ve) || p[vs] != '{' || ve - vs > max_data_bytes)
    return false;
  *data = p + vs;
  *data_len = ve - vs;
  return true;
}

/* The top-level object of an accepted text; *root is its '{'. */
static bool plain_root(const char *p, size_t n, size_t *root) {
  if (!fast_path || !hb_jscan_plain(p, n)) return false;
  *root = skip_ws(p, 0, n);
  return p[*root] == '{';
}

/* --- validation helpers --------------------------------------------------- */

/* Nesting above `max` levels of [ and {, counted outside strings. Run before
 * jansson so that a 1 MB "[[[[..." never reaches its recursive parser. */
static bool too_deep(const char *p, size_t n, int max) {
  int depth = 0;
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    if (c == '"') {
      i = closing_quote(p, i + 1, n); /* i is then at the closing quote */
    } else if (c == '[' || c == '{') {
      if (++depth > max) return true;
    } else if (c == ']' || c == '}') {
      depth--;
    }
  }
  return false;
}

/*
 * jansson refuses valid JSON numbers it cannot represent ("too big integer"
 * for 2^64, "real number overflow" for 1e400), yet JSON.stringify(2**65)
 * writes a 20-digit integer. The numbers inside `data` are forwarded raw and
 * never read, so for validation we hand jansson a copy in which every
 * well-formed number is replaced by "0" padded with spaces (same length, so
 * error positions still hold). Malformed numbers are left for jansson to
 * refuse. Returns a buffer owned by the caller (hb_free).
 */
static char *neutralise_numbers(const char *p, size_t n) {
  char *q = hb_malloc(n ? n : 1);
  if (n) memcpy(q, p, n);
  for (size_t i = 0; i < n;) {
    char c = q[i];
    if (c == '"') {
      i = skip_string(q, i, n);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      size_t m = hb_jscan_number_len(q, i, n);
      if (m == 0) {
        i++;
        continue;
      }
      q[i] = '0';
      memset(q + i + 1, ' ', m - 1);
      i += m;
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      /* skip whole bare words so that digits inside them are not touched */
      while (i < n && ((q[i] >= 'a' && q[i] <= 'z') || (q[i] >= 'A' && q[i] <= 'Z') ||
                       (q[i] >= '0' && q[i] <= '9')))
        i++;
    } else {
      i++;
    }
  }
  return q;
}

static hb_err invalid_json(hb_error *err, const json_error_t *je) {
  /* jansson's text ends in "near '<token>'": cut it, never echo input. */
  char why[80];
  snprintf(why, sizeof why, "%.79s", je->text);
  char *near = strstr(why, " near");
  if (near) *near = '\0';
  return hb_error_set(err, HB_E_INVALID_JSON, NULL, "invalid JSON at byte %d: %s",
                      je->position, why);
}

/* Parse `buf` into a tree. Returns NULL and fills `err` (invalid_json). */
static json_t *load(const char *buf, size_t len, hb_error *err) {
  if (too_deep(buf, len, HB_MAX_JSON_DEPTH)) {
    hb_error_set(err, HB_E_INVALID_JSON, NULL, "JSON nests deeper than %d levels",
                 HB_MAX_JSON_DEPTH);
    return NULL;
  }
  json_error_t je;
  json_t *root = json_loadb(buf, len, LOAD_FLAGS, &je);
  if (root) return root;
  if (json_error_code(&je) == json_error_numeric_overflow) {
    char *copy = neutralise_numbers(buf, len);
    root = json_loadb(copy, len, LOAD_FLAGS, &je);
    hb_free(copy);
    if (root) return root;
  }
  invalid_json(err, &je);
  return NULL;
}

static bool has_control(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return true;
  return false;
}

/* A required event name at obj[key]; pointer names it in errors. */
static hb_err get_event_name(json_t *obj, const char *key, const char *pointer, char *out,
                             uint8_t *out_len, hb_error *err) {
  json_t *v = json_object_get(obj, key);
  if (!v) return hb_error_set(err, HB_E_MISSING_FIELD, pointer, "%s is required", key);
  if (!json_is_string(v))
    return hb_error_set(err, HB_E_INVALID_TYPE, pointer, "%s must be a string", key);
  size_t n = json_string_length(v);
  if (!hb_event_name_valid(json_string_value(v), n))
    return hb_error_set(err, HB_E_INVALID_EVENT_NAME, pointer, NULL);
  memcpy(out, json_string_value(v), n);
  out[n] = '\0';
  *out_len = (uint8_t)n;
  return HB_OK;
}

/*
 * The `data` object at obj["data"], located in `buf` by `path`. On success
 * *data / *data_len are the original bytes (or *owned a compact
 * re-serialisation when the scanner could not find them).
 */
static hb_err get_data(json_t *obj, const char *pointer, const char *buf, size_t len,
                       const char *const *path, int path_len, size_t max_data_bytes,
                       const char **data, size_t *data_len, char **owned, hb_error *err) {
  json_t *v = json_object_get(obj, "data");
  if (!v) return hb_error_set(err, HB_E_MISSING_FIELD, pointer, "data is required");
  if (!json_is_object(v))
    return hb_error_set(err, HB_E_INVALID_TYPE, pointer, "data must be a JSON object");
  size_t s, e;
  if (find_span(buf, len, path, path_len, &s, &e) && buf[s] == '{') {
    *data = buf + s;
    *data_len = e - s;
  } else {
    /* Defensive only: the scanner follows the same grammar jansson just
     * accepted. A re-serialisation is still the same JSON value. */
    size_t need = json_dumpb(v, NULL, 0, JSON_COMPACT);
    *owned = hb_malloc(need + 1);
    json_dumpb(v, *owned, need, JSON_COMPACT);
    (*owned)[need] = '\0';
    *data = *owned;
    *data_len = need;
  }
  if (*data_len > max_data_bytes)
    return hb_error_set(err, HB_E_DATA_TOO_LARGE, pointer,
                        "data is %zu bytes, over the limit of %zu", *data_len, max_data_bytes);
  return HB_OK;
}

/* --- client messages ------------------------------------------------------ */

static hb_err cmsg_id(json_t *root, hb_cmsg *out, hb_error *err) {
  json_t *id = json_object_get(root, "id");
  if (!id) return HB_OK;
  if (!json_is_string(id)) return hb_error_set(err, HB_E_INVALID_TYPE, "/id", "id must be a string");
  size_t n = json_string_length(id);
  const char *s = json_string_value(id);
  if (n == 0 || n > HB_MAX_REQUEST_ID_BYTES)
    return hb_error_set(err, HB_E_INVALID_VALUE, "/id", "id must be 1-%d bytes",
                        HB_MAX_REQUEST_ID_BYTES);
  if (has_control(s, n))
    return hb_error_set(err, HB_E_INVALID_VALUE, "/id", "id must not contain control characters");
  memcpy(out->id, s, n);
  out->id[n] = '\0';
  out->id_len = (uint8_t)n;
  out->has_id = true;
  return HB_OK;
}

static const struct {
  const char *name;
  hb_cmsg_type type;
} cmsg_types[] = {
    {"subscribe", HB_CMSG_SUBSCRIBE},
    {"unsubscribe", HB_CMSG_UNSUBSCRIBE},
    {"publish", HB_CMSG_PUBLISH},
    {"ping", HB_CMSG_PING},
};

static hb_err cmsg_type(json_t *root, hb_cmsg *out, hb_error *err) {
  json_t *t = json_object_get(root, "type");
  if (!t) return hb_error_set(err, HB_E_MISSING_FIELD, "/type", "type is required");
  if (!json_is_string(t)) return hb_error_set(err, HB_E_INVALID_TYPE, "/type", "type must be a string");
  size_t n = json_string_length(t);
  for (size_t i = 0; i < sizeof cmsg_types / sizeof cmsg_types[0]; i++) {
    if (strlen(cmsg_types[i].name) == n && memcmp(cmsg_types[i].name, json_string_value(t), n) == 0) {
      out->type = cmsg_types[i].type;
      return HB_OK;
    }
  }
  return hb_error_set(err, HB_E_UNKNOWN_TYPE, "/type",
                      "type must be subscribe, unsubscribe, publish or ping");
}

/* The common client message without jansson (see the top of this file);
 * false leaves the decision, and any error, to the jansson path. */
static bool cmsg_fast(const char *buf, size_t len, size_t max_data_bytes, hb_cmsg *out) {
  size_t root, vs, ve, n;
  const char *s;
  if (!plain_root(buf, len, &root)) return false;
  if (plain_member(buf, len, root, "id", &vs, &ve)) {
    if (!span_str(buf, vs, ve, &s, &n) || n == 0 || n > HB_MAX_REQUEST_ID_BYTES ||
        has_control(s, n))
      return false;
    memcpy(out->id, s, n);
    out->id[n] = '\0';
    out->id_len = (uint8_t)n;
    out->has_id = true;
  }
  if (!plain_str(buf, len, root, "type", &s, &n)) return false;
  size_t t = 0, types = sizeof cmsg_types / sizeof cmsg_types[0];
  while (t < types && !(strlen(cmsg_types[t].name) == n && memcmp(cmsg_types[t].name, s, n) == 0))
    t++;
  if (t == types) return false;
  out->type = cmsg_types[t].type;
  if (out->type == HB_CMSG_PING) return true;
  if (!plain_str(buf, len, root, "eventName", &s, &n) || !hb_event_name_valid(s, n)) return false;
  memcpy(out->event_name, s, n);
  out->event_name[n] = '\0';
  out->event_name_len = (uint8_t)n;
  if (out->type != HB_CMSG_PUBLISH) return true;
  if (!plain_data(buf, len, root, max_data_bytes, &out->data, &out->data_len)) return false;
  if (plain_member(buf, len, root, "scope", &vs, &ve) &&
      (!span_str(buf, vs, ve, &s, &n) || !hb_scope_parse(s, n, &out->scope)))
    return false;
  return true;
}

hb_err hb_cmsg_decode(const char *buf, size_t len, size_t max_data_bytes, hb_cmsg *out,
                      hb_error *err) {
  static const char *const data_path[] = {"data"};
  memset(out, 0, sizeof *out);
  out->scope = HB_SCOPE_SESSION;
  if (cmsg_fast(buf, len, max_data_bytes, out)) {
    fast_decodes++;
    return HB_OK;
  }
  memset(out, 0, sizeof *out);
  out->scope = HB_SCOPE_SESSION;
  hb_err e;
  _Alignas(ARENA_ALIGN) char abuf[HB_JSON_ARENA_BYTES];
  json_arena arena;
  arena_begin(&arena, abuf, sizeof abuf);
  json_t *root = load(buf, len, err);
  if (!root) {
    arena_end(&arena);
    return HB_E_INVALID_JSON;
  }
  if (!json_is_object(root)) {
    e = hb_error_set(err, HB_E_INVALID_JSON, NULL, "a message must be a JSON object");
    goto out;
  }
  if ((e = cmsg_id(root, out, err))) goto out;
  if ((e = cmsg_type(root, out, err))) goto out;
  if (out->type == HB_CMSG_PING) goto out;
  e = get_event_name(root, "eventName", "/eventName", out->event_name, &out->event_name_len, err);
  if (e || out->type != HB_CMSG_PUBLISH) goto out;
  e = get_data(root, "/data", buf, len, data_path, 1, max_data_bytes, &out->data, &out->data_len,
               &out->data_owned, err);
  if (e) goto out;
  json_t *sc = json_object_get(root, "scope");
  if (sc) {
    if (!json_is_string(sc)) {
      e = hb_error_set(err, HB_E_INVALID_TYPE, "/scope", "scope must be a string");
      goto out;
    }
    if (!hb_scope_parse(json_string_value(sc), json_string_length(sc), &out->scope)) {
      e = hb_error_set(err, HB_E_INVALID_SCOPE, "/scope", NULL);
      goto out;
    }
  }
out:
  json_decref(root);
  arena_end(&arena);
  if (e) {
    /* `data` is only meaningful for a decoded publish. */
    hb_free(out->data_owned);
    out->data_owned = NULL;
    out->data = NULL;
    out->data_len = 0;
  }
  return e;
}

void hb_cmsg_clear(hb_cmsg *m) {
  hb_free(m->data_owned);
  m->data_owned = NULL;
  m->data = NULL;
  m->data_len = 0;
}

/* --- HTTP bodies ---------------------------------------------------------- */

/* A required object member; pointer names it in errors. */
static hb_err get_object(json_t *obj, const char *key, const char *pointer, json_t **out,
                         hb_error *err) {
  *out = json_object_get(obj, key);
  if (!*out) return hb_error_set(err, HB_E_MISSING_FIELD, pointer, "%s is required", key);
  if (!json_is_object(*out))
    return hb_error_set(err, HB_E_INVALID_TYPE, pointer, "%s must be a JSON object", key);
  return HB_OK;
}

static hb_err get_uuid(json_t *obj, const char *key, const char *pointer, hb_uuid *out,
                       hb_error *err) {
  json_t *v = json_object_get(obj, key);
  if (!v) return hb_error_set(err, HB_E_MISSING_FIELD, pointer, "%s is required", key);
  if (!json_is_string(v))
    return hb_error_set(err, HB_E_INVALID_TYPE, pointer, "%s must be a UUID string", key);
  if (!hb_uuid_parse(json_string_value(v), json_string_length(v), out))
    return hb_error_set(err, HB_E_INVALID_UUID, pointer, "%s is not a UUID", key);
  return HB_OK;
}

static hb_err top_object(const char *buf, size_t len, json_t **root, hb_error *err) {
  *root = load(buf, len, err);
  if (!*root) return HB_E_INVALID_JSON;
  if (!json_is_object(*root))
    return hb_error_set(err, HB_E_INVALID_TYPE, HB_POINTER_ROOT, "the body must be a JSON object");
  return HB_OK;
}

/* The common publish body without jansson (see the top of this file);
 * false leaves the decision, and any error, to the jansson path. */
static bool pubreq_fast(const char *buf, size_t len, size_t max_data_bytes, hb_pubreq *out) {
  size_t root, scope, payload, event, n;
  const char *s;
  if (!plain_root(buf, len, &root) || !plain_obj(buf, len, root, "scope", &scope)) return false;
  if (!plain_str(buf, len, scope, "type", &s, &n) || !hb_scope_parse(s, n, &out->scope))
    return false;
  if (out->scope != HB_SCOPE_ORGANIZATION &&
      (!plain_str(buf, len, scope, "event_id", &s, &n) || !hb_uuid_parse(s, n, &out->event_id)))
    return false;
  if (out->scope == HB_SCOPE_SESSION &&
      (!plain_str(buf, len, scope, "session_id", &s, &n) || !hb_uuid_parse(s, n, &out->session_id)))
    return false;
  if (!plain_obj(buf, len, root, "payload", &payload) ||
      !plain_obj(buf, len, payload, "event", &event))
    return false;
  if (!plain_str(buf, len, event, "eventName", &s, &n) || !hb_event_name_valid(s, n)) return false;
  memcpy(out->event_name, s, n);
  out->event_name[n] = '\0';
  out->event_name_len = (uint8_t)n;
  return plain_data(buf, len, event, max_data_bytes, &out->data, &out->data_len);
}

hb_err hb_pubreq_decode(const char *buf, size_t len, size_t max_data_bytes, hb_pubreq *out,
                        hb_error *err) {
  static const char *const data_path[] = {"payload", "event", "data"};
  memset(out, 0, sizeof *out);
  if (pubreq_fast(buf, len, max_data_bytes, out)) {
    fast_decodes++;
    return HB_OK;
  }
  memset(out, 0, sizeof *out);
  json_t *root, *scope, *payload, *event;
  _Alignas(ARENA_ALIGN) char abuf[HB_JSON_ARENA_BYTES];
  json_arena arena;
  arena_begin(&arena, abuf, sizeof abuf);
  hb_err e = top_object(buf, len, &root, err);
  if (e) goto out;

  if ((e = get_object(root, "scope", "/scope", &scope, err))) goto out;
  json_t *t = json_object_get(scope, "type");
  if (!t) {
    e = hb_error_set(err, HB_E_MISSING_FIELD, "/scope/type", "scope.type is required");
    goto out;
  }
  if (!json_is_string(t)) {
    e = hb_error_set(err, HB_E_INVALID_TYPE, "/scope/type", "scope.type must be a string");
    goto out;
  }
  if (!hb_scope_parse(json_string_value(t), json_string_length(t), &out->scope)) {
    e = hb_error_set(err, HB_E_INVALID_SCOPE, "/scope/type", NULL);
    goto out;
  }
  /* Ids a scope does not use are ignored, not checked: a caller may keep
   * one body shape and only change scope.type. */
  if (out->scope != HB_SCOPE_ORGANIZATION &&
      (e = get_uuid(scope, "event_id", "/scope/event_id", &out->event_id, err)))
    goto out;
  if (out->scope == HB_SCOPE_SESSION &&
      (e = get_uuid(scope, "session_id", "/scope/session_id", &out->session_id, err)))
    goto out;

  if ((e = get_object(root, "payload", "/payload", &payload, err))) goto out;
  if ((e = get_object(payload, "event", "/payload/event", &event, err))) goto out;
  e = get_event_name(event, "eventName", "/payload/event/eventName", out->event_name,
                     &out->event_name_len, err);
  if (e) goto out;
  e = get_data(event, "/payload/event/data", buf, len, data_path, 3, max_data_bytes, &out->data,
               &out->data_len, &out->data_owned, err);
out:
  json_decref(root);
  arena_end(&arena);
  if (e) hb_pubreq_clear(out);
  return e;
}

void hb_pubreq_clear(hb_pubreq *r) {
  hb_free(r->data_owned);
  r->data_owned = NULL;
  r->data = NULL;
  r->data_len = 0;
}

static hb_err ctreq_scopes(json_t *root, hb_scope_set *out, hb_error *err) {
  json_t *v = json_object_get(root, "scopes");
  *out = HB_SCOPE_SET_DEFAULT;
  if (!v) return HB_OK;
  if (!json_is_array(v))
    return hb_error_set(err, HB_E_INVALID_TYPE, "/scopes", "scopes must be an array of scope names");
  /* An empty array is allowed: a client that may subscribe but not publish. */
  *out = 0;
  size_t i;
  json_t *s;
  json_array_foreach(v, i, s) {
    char ptr[32];
    snprintf(ptr, sizeof ptr, "/scopes/%zu", i);
    if (!json_is_string(s))
      return hb_error_set(err, HB_E_INVALID_TYPE, ptr, "scopes[%zu] must be a string", i);
    hb_scope sc;
    if (!hb_scope_parse(json_string_value(s), json_string_length(s), &sc))
      return hb_error_set(err, HB_E_INVALID_SCOPE, ptr, NULL);
    if (*out & HB_SCOPE_BIT(sc))
      return hb_error_set(err, HB_E_INVALID_VALUE, ptr, "scopes lists %s twice", hb_scope_name(sc));
    *out |= HB_SCOPE_BIT(sc);
  }
  return HB_OK;
}

hb_err hb_ctreq_decode(const char *buf, size_t len, hb_ctreq *out, hb_error *err) {
  memset(out, 0, sizeof *out);
  json_t *root;
  _Alignas(ARENA_ALIGN) char abuf[HB_JSON_ARENA_BYTES];
  json_arena arena;
  arena_begin(&arena, abuf, sizeof abuf);
  hb_err e = top_object(buf, len, &root, err);
  if (e) goto out;
  if ((e = get_uuid(root, "event_id", "/event_id", &out->event_id, err))) goto out;
  if ((e = get_uuid(root, "session_id", "/session_id", &out->session_id, err))) goto out;

  json_t *u = json_object_get(root, "user_id");
  if (!u) {
    snprintf(out->user_id, sizeof out->user_id, "%s", "anonymous");
  } else if (!json_is_string(u)) {
    e = hb_error_set(err, HB_E_INVALID_TYPE, "/user_id", "user_id must be a string");
    goto out;
  } else {
    size_t n = json_string_length(u);
    if (n == 0 || n > HB_MAX_USER_ID_BYTES || has_control(json_string_value(u), n)) {
      e = hb_error_set(err, HB_E_INVALID_VALUE, "/user_id",
                       "user_id must be 1-%d bytes without control characters",
                       HB_MAX_USER_ID_BYTES);
      goto out;
    }
    memcpy(out->user_id, json_string_value(u), n);
    out->user_id[n] = '\0';
  }

  if ((e = ctreq_scopes(root, &out->scopes, err))) goto out;

  json_t *ttl = json_object_get(root, "ttl");
  out->ttl_s = HB_CONN_TOKEN_DEFAULT_TTL_S;
  if (ttl) {
    if (!json_is_integer(ttl)) {
      e = hb_error_set(err, HB_E_INVALID_TYPE, "/ttl", "ttl must be an integer number of seconds");
      goto out;
    }
    json_int_t v = json_integer_value(ttl);
    if (v < 1 || v > HB_CONN_TOKEN_MAX_TTL_S) {
      e = hb_error_set(err, HB_E_INVALID_VALUE, "/ttl", "ttl must be 1-%d seconds",
                       HB_CONN_TOKEN_MAX_TTL_S);
      goto out;
    }
    out->ttl_s = (int64_t)v;
  }
out:
  json_decref(root);
  arena_end(&arena);
  return e;
}

/* --- server messages ------------------------------------------------------ */

static void add_id(hb_strbuf *sb, const char *id, size_t id_len) {
  if (!id) return;
  hb_strbuf_addstr(sb, ",\"id\":");
  hb_strbuf_add_json_str(sb, id, id_len);
}

void hb_smsg_ack(hb_strbuf *sb, const char *id, size_t id_len, const char *message_id) {
  hb_strbuf_addstr(sb, "{\"type\":\"ack\"");
  add_id(sb, id, id_len);
  if (message_id) {
    hb_strbuf_addstr(sb, ",\"message_id\":");
    hb_strbuf_add_json_str(sb, message_id, strlen(message_id));
  }
  hb_strbuf_addch(sb, '}');
}

void hb_smsg_error(hb_strbuf *sb, const char *id, size_t id_len, const hb_error *e) {
  hb_strbuf_addstr(sb, "{\"type\":\"error\"");
  add_id(sb, id, id_len);
  hb_strbuf_addstr(sb, ",\"code\":\"");
  hb_strbuf_addstr(sb, hb_err_code(e->err));
  hb_strbuf_addstr(sb, "\",\"message\":");
  hb_strbuf_add_json_str(sb, e->message, strnlen(e->message, sizeof e->message));
  hb_strbuf_addch(sb, '}');
}

void hb_smsg_pong(hb_strbuf *sb, const char *id, size_t id_len) {
  hb_strbuf_addstr(sb, "{\"type\":\"pong\"");
  add_id(sb, id, id_len);
  hb_strbuf_addch(sb, '}');
}

/* Decimal numbers as printf's %llu / %lld would write them; by hand because
 * vsnprintf, called twice per hb_strbuf_addf, was most of the welcome's cost
 * (and the slowest call of an event). */
static void add_digits(hb_strbuf *sb, bool neg, uint64_t u) {
  char num[24];
  size_t n = 0;
  do {
    num[sizeof num - 1 - n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (neg) num[sizeof num - 1 - n++] = '-';
  hb_strbuf_add(sb, num + sizeof num - n, n);
}
static void add_uint(hb_strbuf *sb, uint64_t v) { add_digits(sb, false, v); }
static void add_int(hb_strbuf *sb, int64_t v) {
  add_digits(sb, v < 0, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v);
}

static void add_uuid_field(hb_strbuf *sb, const char *name_lit, size_t name_len, const hb_uuid *u) {
  char s[HB_UUID_STR_BYTES];
  hb_uuid_format(u, s);
  hb_strbuf_add(sb, name_lit, name_len);
  hb_strbuf_add(sb, s, HB_UUID_STR_BYTES - 1);
  hb_strbuf_addch(sb, '"');
}
#define ADD_UUID_FIELD(sb, lit, u) add_uuid_field((sb), (lit), sizeof(lit) - 1, (u))

static void add_scopes(hb_strbuf *sb, hb_scope_set set) {
  hb_strbuf_addch(sb, '[');
  bool first = true;
  for (int s = 0; s < HB_SCOPE__COUNT; s++) {
    if (!(set & HB_SCOPE_BIT(s))) continue;
    if (!first) hb_strbuf_addch(sb, ',');
    hb_strbuf_addch(sb, '"');
    hb_strbuf_addstr(sb, hb_scope_name((hb_scope)s));
    hb_strbuf_addch(sb, '"');
    first = false;
  }
  hb_strbuf_addch(sb, ']');
}

/* Once per connection: plain appends, no printf. */
void hb_smsg_welcome(hb_strbuf *sb, const hb_welcome *w) {
  size_t ulen = strlen(w->user_id);
  /* ~420 bytes of names, ids and numbers besides the user id (escaped, at
   * most 6 bytes per byte); an estimate only: the appends grow as needed. */
  hb_strbuf_grow(sb, 512 + 6 * ulen);
  ADD_LIT(sb, "{\"type\":\"welcome\",\"protocol\":1,\"connection_id\":");
  hb_strbuf_add_json_str(sb, w->connection_id, strlen(w->connection_id));
  ADD_LIT(sb, ",\"room\":{");
  ADD_UUID_FIELD(sb, "\"organization_id\":\"", w->org);
  ADD_UUID_FIELD(sb, ",\"plugin_id\":\"", w->plugin);
  ADD_UUID_FIELD(sb, ",\"event_id\":\"", w->event);
  ADD_UUID_FIELD(sb, ",\"session_id\":\"", w->session);
  ADD_LIT(sb, "},\"user_id\":");
  hb_strbuf_add_json_str(sb, w->user_id, ulen);
  ADD_LIT(sb, ",\"scopes\":");
  add_scopes(sb, w->scopes);
  ADD_LIT(sb, ",\"expires_at\":");
  add_int(sb, w->expires_at);
  ADD_LIT(sb, ",\"ping_interval_ms\":");
  add_int(sb, w->ping_interval_ms);
  ADD_LIT(sb, ",\"limits\":{\"max_message_bytes\":");
  add_uint(sb, w->max_message_bytes);
  ADD_LIT(sb, ",\"max_data_bytes\":");
  add_uint(sb, w->max_data_bytes);
  ADD_LIT(sb, ",\"max_subscriptions\":");
  add_uint(sb, w->max_subscriptions);
  ADD_LIT(sb, "}");
  if (w->subscribed && w->subscribed_len) {
    /* Tells the client which names it holds without an ack each; a client
     * that sees no such field (an older server) subscribes by message. */
    ADD_LIT(sb, ",\"subscribed\":[");
    size_t pos = 0, len;
    const char *name;
    while (hb_name_list_next(w->subscribed, w->subscribed_len, &pos, &name, &len)) {
      if (name != w->subscribed) ADD_LIT(sb, ",");
      hb_strbuf_add_json_str(sb, name, len);
    }
    ADD_LIT(sb, "]");
  }
  ADD_LIT(sb, "}");
}

/* A JSON string literal; copied in one piece when nothing needs escaping,
 * which is always the case for event names and message ids. */
static void add_str_fast(hb_strbuf *sb, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == '"' || c == '\\') {
      hb_strbuf_add_json_str(sb, s, n);
      return;
    }
  }
  hb_strbuf_addch(sb, '"');
  hb_strbuf_add(sb, s, n);
  hb_strbuf_addch(sb, '"');
}

/* Runs once per publish: plain appends into one pre-sized buffer. */
void hb_smsg_event(hb_strbuf *sb, const char *event_name, size_t event_name_len,
                   const char *data, size_t data_len, hb_scope scope, const char *message_id,
                   int64_t sent_at_ms) {
  size_t mid_len = message_id ? strlen(message_id) : 0;
  /* fixed text ~90 bytes, the scope name, a 20-digit time; escaping of the
   * (already validated) name and id never triggers, so this is exact. */
  hb_strbuf_grow(sb, 128 + event_name_len + data_len + mid_len);
  ADD_LIT(sb, "{\"type\":\"event\",\"eventName\":");
  add_str_fast(sb, event_name, event_name_len);
  ADD_LIT(sb, ",\"data\":");
  hb_strbuf_add(sb, data, data_len);
  ADD_LIT(sb, ",\"scope\":\"");
  hb_strbuf_addstr(sb, hb_scope_name(scope));
  ADD_LIT(sb, "\",\"message_id\":");
  add_str_fast(sb, message_id ? message_id : "", mid_len);
  ADD_LIT(sb, ",\"sent_at\":");
  add_int(sb, sent_at_ms);
  hb_strbuf_addch(sb, '}');
}

void hb_http_error_body(hb_strbuf *sb, const hb_error *e) {
  hb_strbuf_addstr(sb, "{\"error\":{\"code\":\"");
  hb_strbuf_addstr(sb, hb_err_code(e->err));
  hb_strbuf_addstr(sb, "\",\"message\":");
  hb_strbuf_add_json_str(sb, e->message, strnlen(e->message, sizeof e->message));
  size_t plen = strnlen(e->pointer, sizeof e->pointer);
  if (plen == 1 && e->pointer[0] == HB_POINTER_ROOT[0]) {
    hb_strbuf_addstr(sb, ",\"pointer\":\"\"");
  } else if (plen > 0) {
    hb_strbuf_addstr(sb, ",\"pointer\":");
    hb_strbuf_add_json_str(sb, e->pointer, plen);
  }
  hb_strbuf_addstr(sb, "}}");
}
