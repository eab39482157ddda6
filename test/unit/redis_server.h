/*
 * redis_server.h - a private redis-server for the unit tests that need one
 * (broker/test_rclient.c, broker/test_redis.c).
 *
 * It listens on 127.0.0.1 on a port the kernel chose (or one given, to
 * start it again where a client reconnects), with no persistence and its
 * own temporary directory, its output thrown away. A test that finds no
 * redis-server (hbt_redis_available) skips, loudly: `make deps-all`
 * installs it.
 */
#ifndef HBT_REDIS_SERVER_H
#define HBT_REDIS_SERVER_H

#include <stdbool.h>
#include <sys/types.h>

/* How long a redis-server may take to answer its first PING. */
#define HBT_REDIS_START_MS 5000

typedef struct {
  pid_t pid; /* 0: not running */
  int port;
  char dir[64]; /* its --dir, removed by hbt_redis_stop */
} hbt_redis;

/** redis-server is installed (REDIS_SERVER_BIN names another binary). */
bool hbt_redis_available(void);
/** A 127.0.0.1 port nobody listens on now, or -1. */
int hbt_free_port(void);
/**
 * Start a redis-server on `port` (0: a free one) with `password` (NULL:
 * none) and wait until it answers. 0, or -1 after printing why. On a
 * restart (r->pid 0 and r->port set by the first start), pass r->port.
 */
int hbt_redis_start(hbt_redis *r, int port, const char *password);
/** SIGKILL (after SIGCONT: it may be stopped) and reap; the port and the
 * directory stay for a restart. */
void hbt_redis_kill(hbt_redis *r);
/** Stop it (SIGTERM, SIGKILL after HBT_REDIS_START_MS) and remove its directory. */
void hbt_redis_stop(hbt_redis *r);

#endif
