/*
 * iplimit.h - connections per peer address (max_connections_per_ip),
 * counted across every I/O thread; one short mutex hold per accepted and
 * per closed connection.
 */
#ifndef HUBBUB_IPLIMIT_H
#define HUBBUB_IPLIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define HB_IP_KEY_BYTES 16

/** The address part of a peer (IPv4 in the first 4 bytes, the rest zero). */
void hb_iplimit_key(const struct sockaddr_storage *addr, uint8_t key[HB_IP_KEY_BYTES]);
/**
 * Count a connection from `key`; false (and nothing counted) when that
 * address already has `max` (max <= 0: unlimited). Pair with hb_iplimit_release.
 */
bool hb_iplimit_acquire(const uint8_t key[HB_IP_KEY_BYTES], int max);
void hb_iplimit_release(const uint8_t key[HB_IP_KEY_BYTES]);
/** Free the table (at shutdown). */
void hb_iplimit_shutdown(void);

#endif
