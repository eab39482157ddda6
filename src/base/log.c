/* log.c - lines on stderr, text or JSON, one write() per line (log.h). */
#include "hubbub/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "hubbub/metrics.h"
#include "hubbub/utf8.h"

static _Atomic int min_level = HB_LOG_INFO;
static _Atomic int format = HB_LOG_TEXT;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void hb_log_set_level(hb_log_level lvl) { atomic_store(&min_level, (int)lvl); }
void hb_log_set_format(hb_log_format fmt) { atomic_store(&format, (int)fmt); }

int hb_log_level_parse(const char *s) {
  for (int i = 0; i < 4; i++)
    if (s && !strcmp(s, level_names[i])) return i;
  return -1;
}

int hb_log_format_parse(const char *s) {
  if (s && !strcmp(s, "text")) return HB_LOG_TEXT;
  if (s && !strcmp(s, "json")) return HB_LOG_JSON;
  return -1;
}

bool hb_log_enabled(hb_log_level lvl) { return (int)lvl >= atomic_load_explicit(&min_level, memory_order_relaxed); }

static bool json_mode(void) { return atomic_load_explicit(&format, memory_order_relaxed) == HB_LOG_JSON; }

/* Room kept at the end of every line for what hb_log_end adds: the
 * truncation mark, the closing brace and the newline. */
#define TAIL_BYTES 24

static size_t room(const hb_log_line *l) {
  return l->len + TAIL_BYTES < sizeof l->buf ? sizeof l->buf - TAIL_BYTES - l->len : 0;
}

static void put(hb_log_line *l, const char *p, size_t n) {
  memcpy(l->buf + l->len, p, n);
  l->len += n;
}

/* The escaped form of v[0..n) (without quotes) into out, at most cap bytes.
 * JSON escapes; bytes of a sequence that is not UTF-8 as \u00XX. Returns
 * the length, or SIZE_MAX when it does not fit. Not hb_strbuf_add_json_str:
 * that one trusts its input to be UTF-8 (the server's own JSON) and
 * allocates; a log value comes from anywhere and goes into a fixed line. */
static size_t escape(const char *v, size_t n, char *out, size_t cap) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    unsigned char ch = (unsigned char)v[i];
    char e = 0;
    switch (ch) {
    case '"': e = '"'; break;
    case '\\': e = '\\'; break;
    case '\n': e = 'n'; break;
    case '\r': e = 'r'; break;
    case '\t': e = 't'; break;
    default: break;
    }
    if (e) {
      if (o + 2 > cap) return SIZE_MAX;
      out[o++] = '\\';
      out[o++] = e;
      i++;
      continue;
    }
    if (ch >= 0x80) {
      size_t k = hb_utf8_seq_len((const unsigned char *)v + i, n - i);
      if (k > 0) {
        if (o + k > cap) return SIZE_MAX;
        memcpy(out + o, v + i, k);
        o += k;
        i += k;
        continue;
      }
    }
    if (ch < 0x20 || ch == 0x7f || ch >= 0x80) {
      if (o + 6 > cap) return SIZE_MAX;
      memcpy(out + o, "\\u00", 4);
      out[o + 4] = hex[ch >> 4];
      out[o + 5] = hex[ch & 15];
      o += 6;
      i++;
      continue;
    }
    if (o + 1 > cap) return SIZE_MAX;
    out[o++] = (char)ch;
    i++;
  }
  return o;
}

/* Can v be written bare in text (key=value)? Token characters only. */
static bool bare(const char *v, size_t n) {
  if (n == 0) return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)v[i];
    if (ch <= 0x20 || ch >= 0x7f || ch == '"' || ch == '=' || ch == '\\') return false;
  }
  return true;
}

/* Append a quoted, escaped string; false (nothing appended) when it does not fit. */
static bool put_quoted(hb_log_line *l, const char *v, size_t n) {
  size_t cap = room(l);
  if (cap < 2) return false;
  size_t m = escape(v, n, l->buf + l->len + 1, cap - 2);
  if (m == SIZE_MAX) return false;
  l->buf[l->len] = '"';
  l->buf[l->len + 1 + m] = '"';
  l->len += m + 2;
  return true;
}

static void begin(hb_log_line *l, hb_log_level lvl, const char *msg) {
  struct timespec ts;
  struct tm tm;
  char stamp[40];
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(stamp + n, sizeof stamp - n, ".%03dZ", (int)(ts.tv_nsec / 1000000));
  l->len = 0;
  l->truncated = false;
  if (json_mode()) {
    l->len = (size_t)snprintf(l->buf, sizeof l->buf, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", stamp,
                              level_names[lvl]);
    size_t mlen = strlen(msg);
    if (!put_quoted(l, msg, mlen)) {
      /* Too long: a prefix that fits even if every byte needs \u00XX. */
      l->truncated = true;
      if (!put_quoted(l, msg, room(l) / 6 < mlen ? room(l) / 6 : mlen)) put(l, "\"\"", 2);
    }
  } else {
    l->len = (size_t)snprintf(l->buf, sizeof l->buf, "%s %s ", stamp, level_names[lvl]);
    /* The message is the server's own text: written as is, but cut at a
     * line break so that nothing can forge a second line. */
    size_t mlen = strcspn(msg, "\r\n");
    size_t cap = room(l);
    if (mlen > cap) {
      mlen = cap;
      l->truncated = true;
    }
    put(l, msg, mlen);
  }
}

bool hb_log_begin(hb_log_line *l, hb_log_level lvl, const char *msg) {
  if (!hb_log_enabled(lvl)) return false;
  begin(l, lvl, msg);
  return true;
}

void hb_log_begin_always(hb_log_line *l, hb_log_level lvl, const char *msg) { begin(l, lvl, msg); }

/* The key and separator of a field; false when even that does not fit. */
static bool field_key(hb_log_line *l, const char *key) {
  size_t k = strlen(key);
  if (room(l) < k + 4) return false;
  if (json_mode()) {
    put(l, ",\"", 2);
    put(l, key, k);
    put(l, "\":", 2);
  } else {
    put(l, " ", 1);
    put(l, key, k);
    put(l, "=", 1);
  }
  return true;
}

void hb_log_strn(hb_log_line *l, const char *key, const char *v, size_t n) {
  size_t mark = l->len;
  if (!field_key(l, key)) goto cut;
  if (!json_mode() && bare(v, n)) {
    if (room(l) < n) goto cut;
    put(l, v, n);
    return;
  }
  if (put_quoted(l, v, n)) return;
cut:
  l->len = mark;
  l->truncated = true;
}

void hb_log_str(hb_log_line *l, const char *key, const char *v) {
  if (v) hb_log_strn(l, key, v, strlen(v));
}

void hb_log_int(hb_log_line *l, const char *key, long long v) {
  char num[24];
  int n = snprintf(num, sizeof num, "%lld", v);
  size_t mark = l->len;
  if (!field_key(l, key) || room(l) < (size_t)n) {
    l->len = mark;
    l->truncated = true;
    return;
  }
  put(l, num, (size_t)n);
}

void hb_log_end(hb_log_line *l) {
  /* TAIL_BYTES were kept for this. */
  if (l->truncated) {
    if (json_mode()) put(l, ",\"truncated\":true", 17);
    else put(l, " truncated=true", 15);
  }
  if (json_mode()) put(l, "}", 1);
  put(l, "\n", 1);
  ssize_t w = write(STDERR_FILENO, l->buf, l->len);
  (void)w;
}

void hb_log(hb_log_level lvl, const char *fmt, ...) {
  if (!hb_log_enabled(lvl)) return;
  char msg[HB_LOG_LINE_BYTES];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  hb_log_line l;
  begin(&l, lvl, msg);
  hb_log_end(&l);
}

/* --- secrets --------------------------------------------------------------- */

void hb_log_redact(const char *s, size_t len, char out[HB_LOG_REDACT_BYTES]) {
  const char *p = s ? s : "", *end = p + (s ? len : 0);
  while (p < end && (*p == ' ' || *p == '\t')) p++;
  if (end - p > 7 && strncasecmp(p, "bearer ", 7) == 0) {
    p += 7;
    while (p < end && (*p == ' ' || *p == '\t')) p++;
  }
  size_t n = (size_t)(end - p);
  /* A short credential loses most of its secrecy to 8 characters. */
  size_t keep = n / 2 < HB_LOG_REDACT_CHARS ? n / 2 : HB_LOG_REDACT_CHARS;
  size_t o = 0;
  for (size_t i = 0; i < keep; i++) {
    unsigned char ch = (unsigned char)p[i];
    out[o++] = (ch > 0x20 && ch < 0x7f && ch != '"' && ch != '\\' && ch != '=') ? (char)ch : '?';
  }
  memcpy(out + o, "\xe2\x80\xa6", 3); /* U+2026 HORIZONTAL ELLIPSIS */
  out[o + 3] = '\0';
}

/* --- repeated lines -------------------------------------------------------- */

static uint64_t coarse_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool hb_log_limit_take(hb_log_limit *lim, unsigned long *dropped) {
  uint64_t now = coarse_ms();
  uint64_t next = atomic_load_explicit(&lim->next_ms, memory_order_relaxed);
  /* One thread wins the interval; the others count what they left out. */
  if (now < next ||
      !atomic_compare_exchange_strong_explicit(&lim->next_ms, &next, now + HB_LOG_LIMIT_INTERVAL_MS,
                                               memory_order_relaxed, memory_order_relaxed)) {
    atomic_fetch_add_explicit(&lim->dropped, 1, memory_order_relaxed);
    hb_metric_inc(HB_M_LOG_LINES_SUPPRESSED);
    return false;
  }
  *dropped = atomic_exchange_explicit(&lim->dropped, 0, memory_order_relaxed);
  return true;
}
