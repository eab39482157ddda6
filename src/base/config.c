/*
 * config.c - defaults, the JSON config file, and the listen address syntax.
 *
 * The file is one JSON object whose keys are the hb_config fields (plus
 * "listen" for host and port together). A typo must not silently fall back
 * to a default, so unknown keys, duplicate keys, wrong types and values out
 * of range are all errors that name the key.
 */
#include "hubbub/config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hubbub/json.h"
#include "hubbub/limits.h"

void hb_config_defaults(hb_config *c) {
  memset(c, 0, sizeof *c);
  snprintf(c->host, sizeof c->host, "%s", HB_DEFAULT_HOST);
  c->port = HB_DEFAULT_PORT;
  snprintf(c->data_dir, sizeof c->data_dir, "%s", HB_DEFAULT_DATA_DIR);
  c->threads = 0;
  c->max_body_bytes = HB_DEFAULT_MAX_BODY_BYTES;
  c->max_batch_body_bytes = HB_DEFAULT_MAX_BATCH_BODY_BYTES;
  c->max_message_bytes = HB_DEFAULT_MAX_MESSAGE_BYTES;
  c->max_data_bytes = HB_DEFAULT_MAX_DATA_BYTES;
  c->max_output_bytes = HB_DEFAULT_MAX_OUTPUT_BYTES;
  c->max_subscriptions = HB_DEFAULT_MAX_SUBSCRIPTIONS;
  c->max_connections = HB_DEFAULT_MAX_CONNECTIONS;
  c->max_connections_per_ip = HB_DEFAULT_MAX_CONNECTIONS_PER_IP;
  c->ping_interval_ms = HB_WS_PING_INTERVAL_MS;
  c->flush_interval_ms = HB_DEFAULT_FLUSH_INTERVAL_MS;
  c->idle_timeout_ms = HB_WS_IDLE_TIMEOUT_MS;
  c->handshake_timeout_ms = HB_HANDSHAKE_TIMEOUT_MS;
  c->conn_publish_rate = HB_DEFAULT_CONN_PUBLISH_RATE;
  c->conn_publish_burst = HB_DEFAULT_CONN_PUBLISH_BURST;
  c->token_publish_rate = HB_DEFAULT_TOKEN_PUBLISH_RATE;
  c->token_publish_burst = HB_DEFAULT_TOKEN_PUBLISH_BURST;
  snprintf(c->log_level, sizeof c->log_level, "%s", HB_DEFAULT_LOG_LEVEL);
  c->history_size = HB_DEFAULT_HISTORY_SIZE;
  c->history_ttl_s = HB_DEFAULT_HISTORY_TTL_S;
  c->max_recover_messages = HB_DEFAULT_MAX_RECOVER_MESSAGES;
  c->history_persist = 1;
  c->idempotency_ttl_s = HB_DEFAULT_IDEMPOTENCY_TTL_S;
  c->presence_interval_ms = HB_DEFAULT_PRESENCE_INTERVAL_MS;
  c->presence_list_max = HB_DEFAULT_PRESENCE_LIST_MAX;
  c->presence_ttl_s = HB_DEFAULT_PRESENCE_TTL_S;
}

int hb_config_parse_listen(const char *s, char *host, size_t hostlen, int *port) {
  const char *colon, *hs, *he;
  char *end;
  long p;
  if (!s || !*s) return -1;
  if (s[0] == '[') { /* RFC 3986 3.2.2: an IPv6 literal in brackets */
    const char *rb = strchr(s, ']');
    if (!rb || rb[1] != ':' || rb == s + 1) return -1;
    hs = s + 1;
    he = rb;
    colon = rb + 1;
  } else {
    colon = strrchr(s, ':');
    if (!colon) return -1;
    if (memchr(s, ':', (size_t)(colon - s))) return -1; /* bare IPv6 needs brackets */
    hs = s;
    he = colon;
  }
  if (!colon[1]) return -1;
  for (const char *q = colon + 1; *q; q++)
    if (*q < '0' || *q > '9') return -1;
  errno = 0;
  p = strtol(colon + 1, &end, 10);
  if (errno || *end || p < 0 || p > 65535) return -1;
  for (const char *q = hs; q < he; q++)
    if (*q <= ' ' || *q == '/' || *q == '[' || *q == ']') return -1;
  if (he > hs) { /* ":PORT" keeps the caller's host */
    if ((size_t)(he - hs) >= hostlen) return -1;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
  }
  *port = (int)p;
  return 0;
}

/* ---- the config file ---------------------------------------------------- */

typedef enum { F_STR, F_SIZE, F_INT, F_RATE } field_kind;

typedef struct {
  const char *key;
  field_kind kind;
  size_t off, len; /* len: the char array's size for F_STR */
  double min, max;
} field;

#define STR(k) {#k, F_STR, offsetof(hb_config, k), sizeof(((hb_config *)0)->k), 0, 0}
#define SIZE(k, lo) {#k, F_SIZE, offsetof(hb_config, k), 0, lo, HB_CONFIG_MAX_SIZE_BYTES}
#define INT(k, lo, hi) {#k, F_INT, offsetof(hb_config, k), 0, lo, hi}
#define RATE(k) {#k, F_RATE, offsetof(hb_config, k), 0, 0, HB_CONFIG_MAX_RATE}

static const field fields[] = {
    STR(host),
    INT(port, 0, 65535),
    STR(data_dir),
    INT(threads, 0, HB_MAX_THREADS),
    STR(redis_url),
    STR(redis_password),
    /* The smallest sizes still fit one minimal request or message. */
    SIZE(max_body_bytes, 256),
    SIZE(max_batch_body_bytes, 256),
    SIZE(max_message_bytes, 256),
    SIZE(max_data_bytes, 2),
    SIZE(max_output_bytes, 4096),
    {"max_subscriptions", F_SIZE, offsetof(hb_config, max_subscriptions), 0, 1, HB_CONFIG_MAX_SUBSCRIPTIONS},
    INT(max_connections, 1, HB_CONFIG_MAX_CONNECTIONS),
    INT(max_connections_per_ip, 0, HB_CONFIG_MAX_CONNECTIONS), /* 0 = unlimited */
    INT(ping_interval_ms, 0, HB_CONFIG_MAX_TIMEOUT_MS),        /* 0 = no pings */
    INT(flush_interval_ms, 0, HB_CONFIG_MAX_FLUSH_INTERVAL_MS), /* 0 = every loop turn */
    INT(idle_timeout_ms, 1000, HB_CONFIG_MAX_TIMEOUT_MS),
    INT(handshake_timeout_ms, 100, HB_CONFIG_MAX_TIMEOUT_MS),
    RATE(conn_publish_rate), /* 0 = unlimited */
    RATE(conn_publish_burst),
    RATE(token_publish_rate),
    RATE(token_publish_burst),
    STR(allowed_origins),
    STR(admin_token_sha256),
    STR(log_level),
    INT(history_size, 0, HB_CONFIG_MAX_HISTORY_SIZE),   /* 0 = no history */
    INT(history_ttl_s, 1, HB_CONFIG_MAX_HISTORY_TTL_S),
    INT(max_recover_messages, 0, HB_CONFIG_MAX_RECOVER_MESSAGES),
    INT(history_persist, 0, 1),
    INT(idempotency_ttl_s, 1, HB_CONFIG_MAX_IDEMPOTENCY_TTL_S),
    INT(presence_interval_ms, HB_CONFIG_MIN_PRESENCE_INTERVAL_MS, HB_CONFIG_MAX_PRESENCE_INTERVAL_MS),
    INT(presence_list_max, 1, HB_MAX_PRESENCE_PAGE),
    INT(presence_ttl_s, HB_CONFIG_MIN_PRESENCE_TTL_S, HB_CONFIG_MAX_PRESENCE_TTL_S),
};

static int fail(char *errbuf, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *errbuf, size_t errlen, const char *fmt, ...) {
  if (errbuf && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static int set_field(hb_config *c, const field *f, json_t *v, const char *path, char *errbuf,
                     size_t errlen) {
  char *base = (char *)c + f->off;
  switch (f->kind) {
  case F_STR: {
    if (!json_is_string(v)) return fail(errbuf, errlen, "%s: \"%s\" must be a string", path, f->key);
    size_t n = json_string_length(v);
    if (n >= f->len || strlen(json_string_value(v)) != n)
      return fail(errbuf, errlen, "%s: \"%s\" is too long (at most %zu bytes) or contains NUL", path,
                  f->key, f->len - 1);
    memcpy(base, json_string_value(v), n + 1);
    return 0;
  }
  case F_SIZE:
  case F_INT: {
    if (!json_is_integer(v)) return fail(errbuf, errlen, "%s: \"%s\" must be an integer", path, f->key);
    json_int_t n = json_integer_value(v);
    if ((double)n < f->min || (double)n > f->max)
      return fail(errbuf, errlen, "%s: \"%s\" must be between %.0f and %.0f, got %" JSON_INTEGER_FORMAT,
                  path, f->key, f->min, f->max, n);
    if (f->kind == F_SIZE) *(size_t *)base = (size_t)n;
    else *(int *)base = (int)n;
    return 0;
  }
  case F_RATE: {
    if (!json_is_number(v)) return fail(errbuf, errlen, "%s: \"%s\" must be a number", path, f->key);
    double d = json_number_value(v);
    if (!isfinite(d) || d < f->min || d > f->max)
      return fail(errbuf, errlen, "%s: \"%s\" must be between %g and %g", path, f->key, f->min, f->max);
    *(double *)base = d;
    return 0;
  }
  }
  return -1;
}

static bool known_log_level(const char *s) {
  return !strcmp(s, "debug") || !strcmp(s, "info") || !strcmp(s, "warn") || !strcmp(s, "error");
}

int hb_config_load_file(hb_config *c, const char *path, char *errbuf, size_t errlen) {
  json_t *root = NULL, *v;
  const char *key;
  hb_config next = *c; /* all or nothing: a bad file leaves `c` untouched */
  int rc = -1;

  /* The JSON front door: the same strictness (duplicates, depth) as every
   * other JSON the server reads. */
  root = hb_json_load_file(path, HB_CONFIG_MAX_FILE_BYTES, errbuf, errlen);
  if (!root) goto out;
  if (!json_is_object(root)) {
    fail(errbuf, errlen, "%s: the config file must be a JSON object", path);
    goto out;
  }
  json_object_foreach(root, key, v) {
    if (!strcmp(key, "listen")) {
      if (!json_is_string(v) ||
          hb_config_parse_listen(json_string_value(v), next.host, sizeof next.host, &next.port) != 0) {
        fail(errbuf, errlen, "%s: \"listen\" must be \"HOST:PORT\", \"[IPv6]:PORT\" or \":PORT\"", path);
        goto out;
      }
      continue;
    }
    const field *f = NULL;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
      if (!strcmp(fields[i].key, key)) f = &fields[i];
    if (!f) {
      fail(errbuf, errlen, "%s: unknown key \"%s\"", path, key);
      goto out;
    }
    if (set_field(&next, f, v, path, errbuf, errlen) != 0) goto out;
  }
  if (!next.host[0]) {
    fail(errbuf, errlen, "%s: \"host\" must not be empty", path);
    goto out;
  }
  if (!next.data_dir[0]) {
    fail(errbuf, errlen, "%s: \"data_dir\" must not be empty", path);
    goto out;
  }
  if (!known_log_level(next.log_level)) {
    fail(errbuf, errlen, "%s: \"log_level\" must be debug, info, warn or error", path);
    goto out;
  }
  /* A publish carries its data inside one message, so data must fit. */
  if (next.max_data_bytes > next.max_message_bytes) {
    fail(errbuf, errlen, "%s: \"max_data_bytes\" (%zu) must not exceed \"max_message_bytes\" (%zu)", path,
         next.max_data_bytes, next.max_message_bytes);
    goto out;
  }
  /* Pings are what keeps a quiet browser from hitting the idle timeout. */
  if (next.ping_interval_ms > 0 && next.ping_interval_ms >= next.idle_timeout_ms) {
    fail(errbuf, errlen, "%s: \"ping_interval_ms\" must be less than \"idle_timeout_ms\"", path);
    goto out;
  }
  *c = next;
  rc = 0;
out:
  json_decref(root);
  return rc;
}
