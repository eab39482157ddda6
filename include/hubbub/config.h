/*
 * config.h - the server's configuration: defaults from limits.h, then the
 * JSON config file (--config), then command-line flags.
 */
#ifndef HUBBUB_CONFIG_H
#define HUBBUB_CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  char host[256];
  int port;
  char data_dir[1024];
  int threads; /* 0 = one per core */
  char redis_url[1024]; /* empty = in-process broker */
  char redis_password[256];
  size_t max_body_bytes;
  size_t max_message_bytes;
  int max_message_fragments; /* frames of one fragmented WebSocket message */
  size_t max_data_bytes;
  size_t max_output_bytes;
  size_t max_subscriptions;
  int max_connections;
  int max_connections_per_ip;
  int ping_interval_ms;
  int flush_interval_ms; /* fan-out writes at most once per this many ms per thread while busy */
  int idle_timeout_ms;
  int handshake_timeout_ms;
  double conn_publish_rate, conn_publish_burst;
  double token_publish_rate, token_publish_burst;
  char allowed_origins[2048]; /* global allowlist, space separated; empty = any */
  /* SHA-256 (hex) of the admin token that opens /api/v1/admin/...; empty =
   * the admin HTTP API is off. `hubbub admin-token create` makes one. */
  char admin_token_sha256[65];
  char log_level[16];
} hb_config;

void hb_config_defaults(hb_config *c);
/** Merge a JSON config file. -1 and a reason in errbuf on failure. */
int hb_config_load_file(hb_config *c, const char *path, char *errbuf, size_t errlen);

/**
 * Parse "HOST:PORT", "[IPv6]:PORT" or ":PORT" (host left empty: the caller
 * keeps its default). Port 0..65535 (0 = the kernel chooses). 0 ok, -1 bad.
 */
int hb_config_parse_listen(const char *s, char *host, size_t hostlen, int *port);

#endif
