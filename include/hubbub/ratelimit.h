/*
 * ratelimit.h - publish rate limits per API token: token buckets (bucket.h)
 * shared by every I/O thread, keyed by the API token's id.
 *
 * One short mutex hold per HTTP publish; never on the delivery path.
 */
#ifndef HUBBUB_RATELIMIT_H
#define HUBBUB_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "hubbub/uuid.h"

/**
 * Take one token from the bucket of `key` (refilled at `rate` per second up
 * to `burst`). False when empty; then *retry_after_s says when one will be
 * there (at least 1). rate <= 0 disables the limit.
 */
bool hb_ratelimit_take(const hb_uuid *key, double rate, double burst, uint64_t now_ms,
                       int *retry_after_s);

/** Free the tables (at shutdown). */
void hb_ratelimit_shutdown(void);

#endif
