/* log.c - timestamped lines on stderr, one write() per line so threads do not interleave. */
#include "hubbub/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static hb_log_level min_level = HB_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void hb_log_set_level(hb_log_level lvl) { min_level = lvl; }

void hb_log(hb_log_level lvl, const char *fmt, ...) {
  if (lvl < min_level) return;
  char line[1024];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  int n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ ", &tm);
  n += snprintf(line + n, sizeof line - (size_t)n, "%s ", level_names[lvl]);
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (m < 0) m = 0;
  n += m;
  if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  ssize_t w = write(STDERR_FILENO, line, (size_t)n);
  (void)w;
}
