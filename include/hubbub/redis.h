/*
 * redis.h - the Redis broker (broker.h): offsets, history and idempotency
 * keys live in Redis, publishes travel between nodes over Redis
 * PUBLISH/SUBSCRIBE with interest routing. See redis.c and docs/scaling.md.
 */
#ifndef HUBBUB_REDIS_H
#define HUBBUB_REDIS_H

#include <stddef.h>

#include "hubbub/broker.h"

/* What the broker needs of the configuration (config.h). */
typedef struct {
  int history_size;      /* messages kept per channel stream (0: none) */
  int history_ttl_s;     /* none older is replayed */
  int idempotency_ttl_s; /* how long Redis keeps an Idempotency-Key's answer */
  int presence_interval_ms; /* presence between nodes (rpresence.h): heartbeats at least this often, */
  int presence_ttl_s;       /* and at least three per presence_ttl_s */
  bool presence;            /* false (presence: false): no presence between nodes */
} hb_redis_opts;

/**
 * A Redis broker for redis://[[user]:password@]host[:port][/db]; the URL's
 * password wins over `password` (may be NULL). NULL and a reason in errbuf
 * when the URL is bad.
 */
hb_broker *hb_broker_redis_new(const char *url, const char *password, const hb_redis_opts *opts, char *errbuf,
                               size_t errlen);

#endif
