/*
 * bucket.h - the token bucket, the one rate rule: a publish takes a token;
 * tokens refill at `rate` per second up to `burst`. Used per WebSocket
 * connection (room protocol) and per API token (ratelimit.c).
 */
#ifndef HUBBUB_BUCKET_H
#define HUBBUB_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
  uint64_t last_ms; /* last refill, on the caller's monotonic clock */
  float tokens;     /* a float is exact enough for a burst <= HB_CONFIG_MAX_RATE */
} hb_bucket;

/** A full bucket at `now_ms`. */
void hb_bucket_init(hb_bucket *b, double burst, uint64_t now_ms);

/**
 * Take one token. False when the bucket is empty; then *retry_after_s (may
 * be NULL) says when one will be there, at least 1. rate <= 0 means
 * unlimited (always true).
 */
bool hb_bucket_take(hb_bucket *b, double rate, double burst, uint64_t now_ms, int *retry_after_s);

#endif
