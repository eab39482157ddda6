/*
 * log.h - one line per event on stderr, one write() per line so that
 * threads never interleave.
 *
 * Two formats (config log_format):
 *   text  2026-11-28T12:00:00.123Z warn refused transport=http status=401 code=invalid_token
 *   json  {"ts":"2026-11-28T12:00:00.123Z","level":"warn","msg":"refused","transport":"http",...}
 * A line is a message and optional fields. In text, a field is key=value,
 * the value quoted (JSON escapes) when it holds anything but token
 * characters; in JSON every value is escaped as RFC 8259 says, bytes that
 * are not UTF-8 as \u00XX. So a field taken from a request (a path, an
 * Origin) can never start a line of its own or break the JSON.
 *
 * Secrets are never logged: a credential is logged as hb_log_redact()
 * makes it (its first characters), or by its id.
 *
 *   hb_log_line l;
 *   if (hb_log_begin(&l, HB_LOG_WARN, "refused")) {   // false: below the level
 *     hb_log_str(&l, "code", "invalid_token");
 *     hb_log_int(&l, "status", 401);
 *     hb_log_end(&l);
 *   }
 */
#ifndef HUBBUB_LOG_H
#define HUBBUB_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hubbub/limits.h"

typedef enum { HB_LOG_DEBUG, HB_LOG_INFO, HB_LOG_WARN, HB_LOG_ERROR } hb_log_level;
typedef enum { HB_LOG_TEXT, HB_LOG_JSON } hb_log_format;

void hb_log_set_level(hb_log_level lvl);
void hb_log_set_format(hb_log_format fmt);
/** "debug", "info", "warn", "error" -> the level; -1 for anything else. */
int hb_log_level_parse(const char *s);
/** "text", "json" -> the format; -1 for anything else. */
int hb_log_format_parse(const char *s);
/** Would a line at `lvl` be written? */
bool hb_log_enabled(hb_log_level lvl);

/** A line whose message is printf-formatted, without fields. */
void hb_log(hb_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define hb_debug(...) hb_log(HB_LOG_DEBUG, __VA_ARGS__)
#define hb_info(...) hb_log(HB_LOG_INFO, __VA_ARGS__)
#define hb_warn(...) hb_log(HB_LOG_WARN, __VA_ARGS__)
#define hb_error_log(...) hb_log(HB_LOG_ERROR, __VA_ARGS__)

/* --- lines with fields ----------------------------------------------------- */

/* A line being built, on the caller's stack. A field that does not fit is
 * left out and the line says "truncated". */
typedef struct {
  size_t len;
  bool truncated;
  char buf[HB_LOG_LINE_BYTES];
} hb_log_line;

/** Start a line at `lvl` with message `msg`. False when `lvl` is below the
 * configured level: then nothing else needs calling. */
bool hb_log_begin(hb_log_line *l, hb_log_level lvl, const char *msg);
/** Start a line whatever the level (the access log: asked for on its own). */
void hb_log_begin_always(hb_log_line *l, hb_log_level lvl, const char *msg);
/** A string field of `len` bytes. */
void hb_log_strn(hb_log_line *l, const char *key, const char *v, size_t len);
/** A NUL-terminated string field (nothing when v is NULL). */
void hb_log_str(hb_log_line *l, const char *key, const char *v);
/** An integer field (a JSON number). */
void hb_log_int(hb_log_line *l, const char *key, long long v);
/** Write the line (one write()). */
void hb_log_end(hb_log_line *l);

/* --- secrets --------------------------------------------------------------- */

/**
 * A credential as it may be logged: its first HB_LOG_REDACT_CHARS characters
 * (fewer for a short one: never more than half of it) and "…". For an
 * Authorization value, pass the whole value: a "Bearer " prefix is skipped.
 * Only token characters are kept, so the result is safe to print as is.
 */
void hb_log_redact(const char *secret, size_t len, char out[HB_LOG_REDACT_BYTES]);

/* --- repeated lines -------------------------------------------------------- */

/*
 * At most one line per HB_LOG_LIMIT_INTERVAL_MS for one kind of event (a
 * refusal reason, a close code): a flood of garbage costs a line a second,
 * and that line says how many like it were left out. Any thread; lock-free.
 * Zero-initialised (static storage) means ready.
 */
typedef struct {
  _Atomic uint64_t next_ms;
  atomic_ulong dropped;
} hb_log_limit;

/** True when a line may be written now; then *dropped gets how many lines
 * this limiter refused since the last one it allowed. */
bool hb_log_limit_take(hb_log_limit *lim, unsigned long *dropped);

#endif
