/*
 * log.h - one line per event on stderr: "2026-11-28T12:00:00Z level msg".
 * Secrets (tokens) are never logged; callers pass hb_log_redact() output.
 */
#ifndef HUBBUB_LOG_H
#define HUBBUB_LOG_H

typedef enum { HB_LOG_DEBUG, HB_LOG_INFO, HB_LOG_WARN, HB_LOG_ERROR } hb_log_level;

void hb_log_set_level(hb_log_level lvl);
void hb_log(hb_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define hb_debug(...) hb_log(HB_LOG_DEBUG, __VA_ARGS__)
#define hb_info(...) hb_log(HB_LOG_INFO, __VA_ARGS__)
#define hb_warn(...) hb_log(HB_LOG_WARN, __VA_ARGS__)
#define hb_error_log(...) hb_log(HB_LOG_ERROR, __VA_ARGS__)

#endif
