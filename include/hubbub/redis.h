/*
 * redis.h - the Redis broker (broker.h): publishes travel between nodes
 * over Redis PUBLISH/SUBSCRIBE, with interest routing. See redis.c and
 * docs/scaling.md.
 */
#ifndef HUBBUB_REDIS_H
#define HUBBUB_REDIS_H

#include <stddef.h>

#include "hubbub/broker.h"

/**
 * A Redis broker for redis://[[user]:password@]host[:port][/db]; the URL's
 * password wins over `password` (may be NULL). NULL and a reason in errbuf
 * when the URL is bad.
 */
hb_broker *hb_broker_redis_new(const char *url, const char *password, char *errbuf, size_t errlen);

#endif
