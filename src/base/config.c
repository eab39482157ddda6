/*
 * config.c - defaults, the JSON config file, and the listen address syntax.
 *
 * The file is one JSON object whose keys are the hb_config fields (plus
 * "listen" for host and port together). A typo must not silently fall back
 * to a default, so unknown keys, duplicate keys, wrong types and values out
 * of range are all errors that name the key.
 *
 * Every key can also come from the environment as HUBBUB_<KEY> (the twelve-
 * factor way container platforms configure servers). A variable's text is
 * turned into the JSON value the file would hold and goes through the same
 * checks, so both sources accept exactly the same values and fail with the
 * same messages, naming the variable instead of the file.
 */
#include "hubbub/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hubbub/json.h"
#include "hubbub/limits.h"
#include "hubbub/log.h"

void hb_config_defaults(hb_config *c) {
  memset(c, 0, sizeof *c);
  snprintf(c->host, sizeof c->host, "%s", HB_DEFAULT_HOST);
  c->port = HB_DEFAULT_PORT;
  snprintf(c->data_dir, sizeof c->data_dir, "%s", HB_DEFAULT_DATA_DIR);
  c->threads = 0;
  c->max_body_bytes = HB_DEFAULT_MAX_BODY_BYTES;
  c->max_batch_body_bytes = HB_DEFAULT_MAX_BATCH_BODY_BYTES;
  c->max_message_bytes = HB_DEFAULT_MAX_MESSAGE_BYTES;
  c->max_message_fragments = HB_DEFAULT_MAX_MESSAGE_FRAGMENTS;
  c->max_data_bytes = HB_DEFAULT_MAX_DATA_BYTES;
  c->max_output_bytes = HB_DEFAULT_MAX_OUTPUT_BYTES;
  c->max_subscriptions = HB_DEFAULT_MAX_SUBSCRIPTIONS;
  c->max_connections = HB_DEFAULT_MAX_CONNECTIONS;
  c->max_connections_per_ip = HB_DEFAULT_MAX_CONNECTIONS_PER_IP;
  c->ping_interval_ms = HB_WS_PING_INTERVAL_MS;
  c->flush_interval_ms = HB_DEFAULT_FLUSH_INTERVAL_MS;
  c->flush_adaptive = true;
  c->flush_max_interval_ms = HB_DEFAULT_FLUSH_MAX_INTERVAL_MS;
  c->flush_hold_saving = true;
  c->io_uring = true;
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
  c->presence = true;
  c->presence_interval_ms = HB_DEFAULT_PRESENCE_INTERVAL_MS;
  c->presence_list_max = HB_DEFAULT_PRESENCE_LIST_MAX;
  c->presence_ttl_s = HB_DEFAULT_PRESENCE_TTL_S;
  snprintf(c->log_format, sizeof c->log_format, "%s", HB_DEFAULT_LOG_FORMAT);
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

typedef enum { F_STR, F_SIZE, F_INT, F_RATE, F_BOOL } field_kind;

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
#define BOOL(k) {#k, F_BOOL, offsetof(hb_config, k), 0, 0, 0}

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
    INT(max_message_fragments, 1, HB_CONFIG_MAX_MESSAGE_FRAGMENTS),
    SIZE(max_data_bytes, 2),
    SIZE(max_output_bytes, 4096),
    {"max_subscriptions", F_SIZE, offsetof(hb_config, max_subscriptions), 0, 1, HB_CONFIG_MAX_SUBSCRIPTIONS},
    INT(max_connections, 1, HB_CONFIG_MAX_CONNECTIONS),
    INT(max_connections_per_ip, 0, HB_CONFIG_MAX_CONNECTIONS), /* 0 = unlimited */
    INT(ping_interval_ms, 0, HB_CONFIG_MAX_TIMEOUT_MS),        /* 0 = no pings */
    INT(flush_interval_ms, 0, HB_CONFIG_MAX_FLUSH_INTERVAL_MS), /* 0 = every loop turn */
    BOOL(flush_adaptive),
    INT(flush_max_interval_ms, 0, HB_CONFIG_MAX_FLUSH_INTERVAL_MS), /* ≤ flush_interval_ms: no growth */
    BOOL(flush_hold_saving),
    BOOL(io_uring),
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
    BOOL(presence),
    INT(presence_interval_ms, HB_CONFIG_MIN_PRESENCE_INTERVAL_MS, HB_CONFIG_MAX_PRESENCE_INTERVAL_MS),
    INT(presence_list_max, 1, HB_MAX_PRESENCE_PAGE),
    INT(presence_ttl_s, HB_CONFIG_MIN_PRESENCE_TTL_S, HB_CONFIG_MAX_PRESENCE_TTL_S),
    STR(log_format),
    BOOL(access_log),
    STR(cors_allowed_origins),
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
  case F_BOOL:
    if (!json_is_boolean(v)) return fail(errbuf, errlen, "%s: \"%s\" must be true or false", path, f->key);
    *(bool *)base = json_is_true(v);
    return 0;
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

static bool known_log_level(const char *s) { return hb_log_level_parse(s) >= 0; }

/* A CORS entry is a whole origin, "scheme://host[:port]", as browsers send
 * it: no path, not even "/" (it would never match), and no wildcard. "*"
 * is refused: the API answers with credentials (API and admin tokens), and
 * /healthz and /metrics have none, so "any page on the internet" is never
 * what an operator wants (docs/operations.md, CORS). Returns the problem
 * or NULL. */
static const char *cors_list_problem(const char *list, char *bad, size_t badlen) {
  for (const char *p = list; *p;) {
    while (*p == ' ' || *p == '\t') p++;
    const char *q = p;
    while (*q && *q != ' ' && *q != '\t') q++;
    if (q == p) break;
    snprintf(bad, badlen, "%.*s", (int)(q - p), p);
    if (q - p == 1 && *p == '*') return "\"*\" is not allowed: list the origins";
    const char *sep = strstr(bad, "://");
    if (!sep || sep == bad || !sep[3]) return "an origin is scheme://host[:port]";
    for (const char *s = bad; s < sep; s++)
      if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || strchr("+-.", *s)))
        return "an origin is scheme://host[:port]";
    if (strpbrk(sep + 3, "/?#*")) return "an origin has no path (not even \"/\"), query or wildcard";
    p = q;
  }
  return NULL;
}

/*
 * Who a failed cross-key check blames: the config file's path, or (for the
 * environment) the variables that set the keys involved. The config was
 * valid before this source was merged, so at least one of those keys came
 * from this source.
 */
typedef struct {
  const char *path;     /* the file; NULL for the environment */
  const bool *from_env; /* per fields[] entry: set by a variable */
} blame_src;

static const field *find_field(const char *key) {
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
    if (!strcmp(fields[i].key, key)) return &fields[i];
  return NULL;
}

/* "HUBBUB_" + the key in upper case. */
static void env_name(const char *key, char *out, size_t len) {
  size_t n = snprintf(out, len, "HUBBUB_%s", key);
  for (size_t i = sizeof "HUBBUB_" - 1; i < n && i < len; i++)
    out[i] = (char)toupper((unsigned char)out[i]);
}

static const char *blame(const blame_src *b, const char *k1, const char *k2, char *buf, size_t len) {
  if (b->path) return b->path;
  buf[0] = '\0';
  const char *keys[2] = {k1, k2};
  for (int i = 0; i < 2; i++) {
    const field *f = keys[i] ? find_field(keys[i]) : NULL;
    if (!f || !b->from_env[f - fields]) continue;
    char name[64];
    env_name(f->key, name, sizeof name);
    size_t used = strlen(buf);
    snprintf(buf + used, len - used, "%s%s", used ? ", " : "", name);
  }
  if (!buf[0]) snprintf(buf, len, "environment");
  return buf;
}

/* The rules that involve more than one key, or a value set rather than a
 * range, over a fully merged config. */
static int check_merged(const hb_config *c, const blame_src *b, char *errbuf, size_t errlen) {
  char who[160];
  if (!c->host[0]) return fail(errbuf, errlen, "%s: \"host\" must not be empty", blame(b, "host", NULL, who, sizeof who));
  if (!c->data_dir[0])
    return fail(errbuf, errlen, "%s: \"data_dir\" must not be empty", blame(b, "data_dir", NULL, who, sizeof who));
  if (!known_log_level(c->log_level))
    return fail(errbuf, errlen, "%s: \"log_level\" must be debug, info, warn or error",
                blame(b, "log_level", NULL, who, sizeof who));
  /* A publish carries its data inside one message, so data must fit. */
  if (c->max_data_bytes > c->max_message_bytes)
    return fail(errbuf, errlen, "%s: \"max_data_bytes\" (%zu) must not exceed \"max_message_bytes\" (%zu)",
                blame(b, "max_data_bytes", "max_message_bytes", who, sizeof who), c->max_data_bytes,
                c->max_message_bytes);
  /* Pings are what keeps a quiet browser from hitting the idle timeout. */
  if (c->ping_interval_ms > 0 && c->ping_interval_ms >= c->idle_timeout_ms)
    return fail(errbuf, errlen, "%s: \"ping_interval_ms\" must be less than \"idle_timeout_ms\"",
                blame(b, "ping_interval_ms", "idle_timeout_ms", who, sizeof who));
  if (hb_log_format_parse(c->log_format) < 0)
    return fail(errbuf, errlen, "%s: \"log_format\" must be text or json", blame(b, "log_format", NULL, who, sizeof who));
  char bad[128];
  const char *problem = cors_list_problem(c->cors_allowed_origins, bad, sizeof bad);
  if (problem)
    return fail(errbuf, errlen, "%s: \"cors_allowed_origins\": \"%s\": %s",
                blame(b, "cors_allowed_origins", NULL, who, sizeof who), bad, problem);
  return 0;
}

int hb_config_load_file(hb_config *c, const char *path, char *errbuf, size_t errlen) {
  json_t *root = NULL, *v;
  const char *key;
  hb_config next = *c; /* all or nothing: a bad file leaves `c` untouched */
  blame_src b = {path, NULL};
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
    const field *f = find_field(key);
    if (!f) {
      fail(errbuf, errlen, "%s: unknown key \"%s\"", path, key);
      goto out;
    }
    if (set_field(&next, f, v, path, errbuf, errlen) != 0) goto out;
  }
  if (check_merged(&next, &b, errbuf, errlen) != 0) goto out;
  *c = next;
  rc = 0;
out:
  json_decref(root);
  return rc;
}

/* ---- the environment ---------------------------------------------------- */

/*
 * A variable's text as the JSON value the file would hold, so that
 * set_field applies the very same type and range checks and messages.
 * Integers are decimal digits with an optional sign (no "0x", no spaces:
 * strtoll alone would take " 12abc" apart silently); numbers are what
 * strtod reads entirely. NULL and a message when the text is not one.
 */
static json_t *env_value(const field *f, const char *name, const char *text, char *errbuf, size_t errlen) {
  char *end;
  switch (f->kind) {
  case F_STR:
    /* Any bytes: a path need not be UTF-8. The environment has no NUL. */
    return json_stringn_nocheck(text, strlen(text));
  case F_SIZE:
  case F_INT: {
    const char *p = text + (text[0] == '-' || text[0] == '+');
    bool digits = *p != '\0';
    for (; *p; p++)
      if (*p < '0' || *p > '9') digits = false;
    errno = 0;
    long long n = digits ? strtoll(text, &end, 10) : 0;
    if (!digits || *end) {
      fail(errbuf, errlen, "%s: \"%s\" must be an integer, got \"%s\"", name, f->key, text);
      return NULL;
    }
    if (errno == ERANGE) {
      fail(errbuf, errlen, "%s: \"%s\" must be between %.0f and %.0f, got %s", name, f->key, f->min, f->max, text);
      return NULL;
    }
    return json_integer((json_int_t)n);
  }
  case F_RATE: {
    errno = 0;
    double d = strtod(text, &end);
    if (!text[0] || isspace((unsigned char)text[0]) || *end || errno || !isfinite(d)) {
      fail(errbuf, errlen, "%s: \"%s\" must be a number, got \"%s\"", name, f->key, text);
      return NULL;
    }
    return json_real(d);
  }
  case F_BOOL:
    /* The file's spelling, and the usual 1/0 of shell scripts. */
    if (!strcmp(text, "true") || !strcmp(text, "1")) return json_true();
    if (!strcmp(text, "false") || !strcmp(text, "0")) return json_false();
    fail(errbuf, errlen, "%s: \"%s\" must be true or false, got \"%s\"", name, f->key, text);
    return NULL;
  }
  return NULL;
}

/* Calls fn with every variable name hb_config_load_env reads, and
 * HUBBUB_CONFIG; stops and returns true when fn does. */
static bool each_env_name(bool (*fn)(const char *known, void *ud), void *ud) {
  char name[64];
  if (fn(HB_CONFIG_ENV_FILE, ud) || fn(HB_CONFIG_ENV_DATA_ALIAS, ud)) return true;
  env_name("listen", name, sizeof name);
  if (fn(name, ud)) return true;
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    env_name(fields[i].key, name, sizeof name);
    if (fn(name, ud)) return true;
  }
  return false;
}

static bool same_name(const char *known, void *ud) { return !strcmp(known, ud); }

bool hb_config_env_known(const char *name) { return each_env_name(same_name, (void *)name); }

/* Levenshtein distance, capped: names are short and the cap keeps the
 * table small. */
#define SUGGEST_MAX_NAME 64
static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b), row[SUGGEST_MAX_NAME + 1];
  if (la > SUGGEST_MAX_NAME || lb > SUGGEST_MAX_NAME) return SIZE_MAX;
  for (size_t j = 0; j <= lb; j++) row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

typedef struct {
  const char *name;
  char *out;
  size_t outlen;
  size_t best;
} suggest_ctx;

static bool closer(const char *known, void *ud) {
  suggest_ctx *s = ud;
  size_t n = strlen(s->name), d = edit_distance(s->name, known);
  /* HUBBUB_REDIS for HUBBUB_REDIS_URL: a name but its last word. (Not
   * more: HUBBUB_TOKEN, a user's own, is not HUBBUB_TOKEN_PUBLISH_RATE.) */
  if (!strncmp(known, s->name, n) && known[n] == '_' && !strchr(known + n + 1, '_')) d = 1;
  if (d < s->best) {
    s->best = d;
    snprintf(s->out, s->outlen, "%s", known);
  }
  return false;
}

bool hb_config_env_suggest(const char *name, char *out, size_t outlen) {
  suggest_ctx s = {name, out, outlen, SIZE_MAX};
  if (hb_config_env_known(name)) return false;
  each_env_name(closer, &s);
  return s.best <= HB_CONFIG_ENV_SUGGEST_DISTANCE;
}

int hb_config_load_env(hb_config *c, char *errbuf, size_t errlen) {
  hb_config next = *c; /* all or nothing, as for the file */
  bool from_env[sizeof fields / sizeof fields[0]] = {false};
  blame_src b = {NULL, from_env};
  char name[64];
  const char *v;

  /* HUBBUB_LISTEN first, so that HUBBUB_HOST and HUBBUB_PORT, being more
   * specific, win over it. */
  env_name("listen", name, sizeof name);
  if ((v = getenv(name)) != NULL) {
    if (hb_config_parse_listen(v, next.host, sizeof next.host, &next.port) != 0)
      return fail(errbuf, errlen, "%s: \"listen\" must be \"HOST:PORT\", \"[IPv6]:PORT\" or \":PORT\", got \"%s\"",
                  name, v);
    from_env[find_field("host") - fields] = from_env[find_field("port") - fields] = true;
  }
  /* HUBBUB_DATA is the --data flag's name; HUBBUB_DATA_DIR the key's. */
  const char *alias = getenv(HB_CONFIG_ENV_DATA_ALIAS);
  env_name("data_dir", name, sizeof name);
  if (alias && getenv(name) && strcmp(alias, getenv(name)) != 0)
    return fail(errbuf, errlen, "%s and %s are both set, to different directories: set one", name,
                HB_CONFIG_ENV_DATA_ALIAS);
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    const field *f = &fields[i];
    env_name(f->key, name, sizeof name);
    v = getenv(name);
    if (!v && f->off == offsetof(hb_config, data_dir) && alias) {
      v = alias;
      snprintf(name, sizeof name, "%s", HB_CONFIG_ENV_DATA_ALIAS);
    }
    if (!v) continue;
    json_t *j = env_value(f, name, v, errbuf, errlen);
    if (!j) return -1;
    int rc = set_field(&next, f, j, name, errbuf, errlen);
    json_decref(j);
    if (rc != 0) return -1;
    from_env[i] = true;
  }
  if (check_merged(&next, &b, errbuf, errlen) != 0) return -1;
  *c = next;
  return 0;
}
