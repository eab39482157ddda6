/*
 * config.h - the server's configuration: defaults from limits.h, then the
 * JSON config file (--config or HUBBUB_CONFIG), then HUBBUB_* environment
 * variables, then command-line flags: the most specific source wins.
 */
#ifndef HUBBUB_CONFIG_H
#define HUBBUB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The config file's path, when --config is not given. */
#define HB_CONFIG_ENV_FILE "HUBBUB_CONFIG"
/* Another name of HUBBUB_DATA_DIR, after the --data flag. */
#define HB_CONFIG_ENV_DATA_ALIAS "HUBBUB_DATA"

typedef struct {
  char host[256];
  int port;
  char data_dir[1024];
  int threads; /* 0 = one per core */
  char redis_url[1024]; /* empty = in-process broker */
  char redis_password[256];
  size_t max_body_bytes;
  size_t max_batch_body_bytes; /* POST /api/v1/pub_subs/batch */
  size_t max_message_bytes;
  int max_message_fragments; /* frames of one fragmented WebSocket message */
  size_t max_data_bytes;
  size_t max_output_bytes;
  size_t max_subscriptions;
  int max_connections;
  int max_connections_per_ip;
  int ping_interval_ms;
  int flush_interval_ms; /* fan-out writes at most once per this many ms per thread while busy */
  /* true: the window above applies only while the thread is saturated
   * (window.h); false: whenever deliveries follow each other within it */
  bool flush_adaptive;
  /* with flush_adaptive: the window grows up to this while the thread
   * stays saturated (window.h); ≤ flush_interval_ms: it does not grow */
  int flush_max_interval_ms;
  /* with flush_adaptive: hold also while the thread is not saturated when
   * holding would save much of its time (window.h) */
  bool flush_hold_saving;
  bool io_uring; /* batch the system calls of a flush with io_uring when the kernel allows it */
  int idle_timeout_ms;
  int handshake_timeout_ms;
  double conn_publish_rate, conn_publish_burst;
  double token_publish_rate, token_publish_burst;
  char allowed_origins[2048]; /* global allowlist, space separated; empty = any */
  /* SHA-256 (hex) of the admin token that opens /api/v1/admin/...; empty =
   * the admin HTTP API is off. `hubbub admin-token create` makes one. */
  char admin_token_sha256[65];
  char log_level[16];
  /* History and recovery (docs/protocol.md, "Recovery"). */
  int history_size;          /* messages kept per channel; 0 = off */
  int history_ttl_s;         /* none older is kept */
  int max_recover_messages;  /* a reconnect replays at most this many */
  int history_persist;       /* single node: keep history in DATA/history.db across restarts (0/1) */
  int idempotency_ttl_s;     /* how long an Idempotency-Key is remembered */
  /* Presence (docs/protocol.md, "Presence"). */
  bool presence;             /* kept and served (default); false: no member is counted, presence requests are unknown */
  int presence_interval_ms;  /* at most one presence message per channel per this */
  int presence_list_max;     /* members per snapshot by default; joins + leaves per message at most */
  int presence_ttl_s;        /* several nodes: a silent node's members expire after this */
  char log_format[8]; /* "text" or "json" (log.h) */
  bool access_log;    /* one line per HTTP request, whatever log_level says */
  /* Origins whose pages may call the HTTP API from a browser (CORS), space
   * separated, compared as origin.h says; empty = no CORS headers. */
  char cors_allowed_origins[2048];
} hb_config;

void hb_config_defaults(hb_config *c);
/** Merge a JSON config file. -1 and a reason in errbuf on failure. */
int hb_config_load_file(hb_config *c, const char *path, char *errbuf, size_t errlen);

/**
 * Merge the environment: HUBBUB_<KEY> for every config file key (the key in
 * upper case: HUBBUB_MAX_BODY_BYTES, HUBBUB_LISTEN, ...), and HUBBUB_DATA as
 * another name of HUBBUB_DATA_DIR. HUBBUB_HOST and HUBBUB_PORT win over
 * HUBBUB_LISTEN. A set variable is used even when empty. Values pass the
 * file's checks; on failure returns -1, leaves `c` untouched and puts in
 * errbuf a message that starts with the variable's name.
 */
int hb_config_load_env(hb_config *c, char *errbuf, size_t errlen);

/** Whether `name` is a variable hb_config_load_env reads, or HUBBUB_CONFIG. */
bool hb_config_env_known(const char *name);

/* How far (edits) a HUBBUB_* name may be from a known one to be taken for a typo. */
#define HB_CONFIG_ENV_SUGGEST_DISTANCE 2

/**
 * For a HUBBUB_* name that hubbub does not read but that looks like one it
 * does (a typo, or the start of one: HUBBUB_REDIS), write the known name to
 * `out` and return true, so that the caller can warn. Names far from every
 * known one (HUBBUB_TOKEN in a user's shell) return false: other tools share
 * the prefix.
 */
bool hb_config_env_suggest(const char *name, char *out, size_t outlen);

/**
 * Parse "HOST:PORT", "[IPv6]:PORT" or ":PORT" (host left empty: the caller
 * keeps its default). Port 0..65535 (0 = the kernel chooses). 0 ok, -1 bad.
 */
int hb_config_parse_listen(const char *s, char *host, size_t hostlen, int *port);

#endif
