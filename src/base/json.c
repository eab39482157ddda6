/*
 * json.c - the JSON front door (json.h): the strict loader every reader of
 * JSON shares, the per-decode allocation arena, and the raw-text helpers
 * that let decoders forward values byte for byte.
 */
#include "hubbub/json.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* jansson flags for every text (json.h says why). */
#define LOAD_FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL)

/* --- the arena ------------------------------------------------------------ */

static _Thread_local hb_json_arena *arena_cur;

static void *arena_malloc(size_t n) {
  hb_json_arena *a = arena_cur;
  if (a) {
    size_t need = (n + ARENA_REDZONE + HB_JSON_ARENA_ALIGN - 1) & ~(size_t)(HB_JSON_ARENA_ALIGN - 1);
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
  /* Arenas may nest (a decode inside a decode); walking the chain keeps
   * free() of an outer arena's block harmless. */
  for (hb_json_arena *a = arena_cur; a; a = a->prev) {
    /* Released with the whole arena. (Under ASan the redzones catch
     * overruns; a use after this free is not caught: no size is kept.) */
    if ((char *)p >= a->base && (char *)p < a->base + a->cap) return;
  }
  free(p);
}

static pthread_once_t arena_once = PTHREAD_ONCE_INIT;

static void arena_install(void) { json_set_alloc_funcs(arena_malloc, arena_free); }

void hb_json_init(void) { pthread_once(&arena_once, arena_install); }

void hb_json_arena_begin(hb_json_arena *a, char *buf, size_t cap) {
  a->base = buf;
  a->cap = cap;
  a->used = 0;
  a->prev = arena_cur;
  ARENA_POISON(buf, cap);
  arena_cur = a;
}

void hb_json_arena_end(hb_json_arena *a) {
  arena_cur = a->prev;
  /* stack memory: it must be addressable again when the frame is reused */
  ARENA_UNPOISON(a->base, a->cap);
}

/* --- the raw-bytes scanner ------------------------------------------------ */

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
  while (i < n && !hb_json_is_ws(p[i]) && p[i] != ',' && p[i] != '}' && p[i] != ']') i++;
  return i;
}

/* The value of the \u escape at p[i..i+4), or -1. */
static long hex4(const char *p, size_t i, size_t b) {
  if (i + 4 > b) return -1;
  long v = 0;
  for (int k = 0; k < 4; k++) {
    int h = hb_hexval(p[i + (size_t)k]);
    if (h < 0) return -1;
    v = v << 4 | h;
  }
  return v;
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
        long v = hex4(p, i, b);
        if (v <= 0 || v >= 0x80) return false;
        i += 4;
        c = (unsigned)v;
        break;
      }
      default: return false;
      }
    }
    if ((unsigned char)want[w] != c) return false;
  }
  return want[w] == '\0';
}

bool hb_json_find_span(const char *p, size_t n, const char *const *path, int path_len,
                       size_t *start, size_t *end) {
  size_t i = hb_json_skip_ws(p, 0, n);
  for (int level = 0; level < path_len; level++) {
    if (i >= n || p[i] != '{') return false;
    i++;
    for (;;) {
      i = hb_json_skip_ws(p, i, n);
      if (i >= n || p[i] != '"') return false; /* '}' here: the key is absent */
      size_t kend = skip_string(p, i, n);
      if (kend >= n) return false;
      bool match = key_equals(p, i + 1, kend - 1, path[level]);
      i = hb_json_skip_ws(p, kend, n);
      if (i >= n || p[i] != ':') return false;
      i = hb_json_skip_ws(p, i + 1, n);
      if (match) break;
      i = hb_json_skip_ws(p, skip_value(p, i, n), n);
      if (i >= n || p[i] != ',') return false;
      i++;
    }
  }
  if (i >= n) return false;
  *start = i;
  *end = skip_value(p, i, n);
  return *end > *start && *end <= n;
}

bool hb_json_array_next(const char *p, size_t n, size_t *i, size_t *s, size_t *e) {
  size_t k = *i;
  if (k < n && (p[k] == '[' || p[k] == ',')) k = hb_json_skip_ws(p, k + 1, n);
  if (k >= n || p[k] == ']') return false;
  *s = k;
  *e = skip_value(p, k, n);
  *i = hb_json_skip_ws(p, *e, n);
  return *e > *s;
}

/* --- reading a text hb_jscan_plain() accepted ------------------------------- */

bool hb_json_plain_member(const char *p, size_t n, size_t obj, const char *key, size_t *vs,
                          size_t *ve) {
  size_t klen = strlen(key);
  size_t i = hb_json_skip_ws(p, obj + 1, n);
  while (i < n && p[i] == '"') {
    size_t kend = closing_quote(p, i + 1, n);
    bool match = kend - i - 1 == klen && memcmp(p + i + 1, key, klen) == 0;
    i = hb_json_skip_ws(p, kend + 1, n); /* at ':' */
    i = hb_json_skip_ws(p, i + 1, n);
    size_t e = skip_value(p, i, n);
    if (match) {
      *vs = i;
      *ve = e;
      return true;
    }
    i = hb_json_skip_ws(p, e, n);
    if (i >= n || p[i] != ',') break;
    i = hb_json_skip_ws(p, i + 1, n);
  }
  return false;
}

bool hb_json_span_str(const char *p, size_t vs, size_t ve, const char **s, size_t *len) {
  if (p[vs] != '"') return false;
  *s = p + vs + 1;
  *len = ve - vs - 2;
  return memchr(*s, '\\', *len) == NULL;
}

bool hb_json_plain_str(const char *p, size_t n, size_t obj, const char *key, const char **s,
                       size_t *len) {
  size_t vs, ve;
  return hb_json_plain_member(p, n, obj, key, &vs, &ve) && hb_json_span_str(p, vs, ve, s, len);
}

bool hb_json_plain_obj(const char *p, size_t n, size_t obj, const char *key, size_t *at) {
  size_t ve;
  return hb_json_plain_member(p, n, obj, key, at, &ve) && p[*at] == '{';
}

bool hb_json_plain_root(const char *p, size_t n, size_t *root) {
  if (!hb_jscan_plain(p, n)) return false;
  *root = hb_json_skip_ws(p, 0, n);
  return p[*root] == '{';
}

bool hb_json_has_control(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return true;
  return false;
}

/* --- the loader ----------------------------------------------------------- */

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
 * writes a 20-digit integer. Values that are forwarded raw are never read as
 * numbers, so for validation jansson gets a copy in which every well-formed
 * number is replaced by "0" padded with spaces (same length, so error
 * positions still hold). Malformed numbers are left for jansson to refuse.
 * Returns a buffer owned by the caller (hb_free).
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

static void invalid_json(hb_error *err, const json_error_t *je) {
  /* jansson's text ends in "near '<token>'": cut it, never echo input. */
  char why[80];
  snprintf(why, sizeof why, "%.79s", je->text);
  char *near = strstr(why, " near");
  if (near) *near = '\0';
  hb_error_set(err, HB_E_INVALID_JSON, NULL, "invalid JSON at byte %d: %s", je->position, why);
}

json_t *hb_json_load(const char *buf, size_t len, hb_error *err) {
  if (len == 0) {
    hb_error_set(err, HB_E_INVALID_JSON, NULL, "invalid JSON: the text is empty");
    return NULL;
  }
  if (too_deep(buf, len, HB_MAX_JSON_DEPTH)) {
    hb_error_set(err, HB_E_INVALID_JSON, NULL, "JSON nests deeper than %d levels", HB_MAX_JSON_DEPTH);
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

json_t *hb_json_load_file(const char *path, size_t max_bytes, char *errbuf, size_t errlen) {
  FILE *f = fopen(path, "rb");
  struct stat st;
  json_t *root = NULL;
  char *buf = NULL;
  if (!f) {
    snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
    return NULL;
  }
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max_bytes) {
    snprintf(errbuf, errlen, "%s: not a regular file of at most %zu bytes", path, max_bytes);
    goto out;
  }
  buf = hb_malloc((size_t)st.st_size + 1);
  size_t n = fread(buf, 1, (size_t)st.st_size + 1, f);
  if (ferror(f) || n > (size_t)st.st_size) {
    snprintf(errbuf, errlen, "%s: cannot read it whole (it changed while read?)", path);
    goto out;
  }
  hb_error e;
  root = hb_json_load(buf, n, &e);
  if (!root) snprintf(errbuf, errlen, "%s: %s", path, e.message);
out:
  hb_free(buf);
  fclose(f);
  return root;
}
