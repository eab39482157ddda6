/*
 * ratelimit.h - token buckets shared by every I/O thread, keyed by an id
 * (the API token's id), and per-address connection counts.
 *
 * One short mutex hold per HTTP publish or per accepted connection; never
 * on the delivery path.
 */
#ifndef HUBBUB_RATELIMIT_H
#define HUBBUB_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "hubbub/uuid.h"

/**
 * Take one token from the bucket of `key` (refilled at `rate` per second up
 * to `burst`). False when empty; then *retry_after_s says when one will be
 * there (at least 1). rate <= 0 disables the limit.
 */
bool hb_ratelimit_take(const hb_uuid *key, double rate, double burst, uint64_t now_ms,
                       int *retry_after_s);

#define HB_IP_KEY_BYTES 16

/** The address part of a peer (IPv4 in the first 4 bytes, the rest zero). */
void hb_iplimit_key(const struct sockaddr_storage *addr, uint8_t key[HB_IP_KEY_BYTES]);
/**
 * Count a connection from `key`; false (and nothing counted) when that
 * address already has `max` (max <= 0: unlimited). Pair with hb_iplimit_release.
 */
bool hb_iplimit_acquire(const uint8_t key[HB_IP_KEY_BYTES], int max);
void hb_iplimit_release(const uint8_t key[HB_IP_KEY_BYTES]);

/** Free the tables (at shutdown). */
void hb_ratelimit_shutdown(void);

#endif
