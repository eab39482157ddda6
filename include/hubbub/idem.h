/*
 * idem.h - idempotent publishes on one node: a publish that carries a key
 * (HTTP `Idempotency-Key`, WebSocket `idempotency_key`) and comes again
 * within idempotency_ttl_s gets the first one's answer and is not
 * delivered again. Keys are per plugin: two plugins never share one.
 *
 * The check and the publish happen under the key's shard lock
 * (hb_idem_lock_find ... hb_idem_store_unlock), so two requests with one key
 * at once — on two threads — deliver once and both answer the same.
 */
#ifndef HUBBUB_IDEM_H
#define HUBBUB_IDEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hubbub/errors.h"
#include "hubbub/resume.h"
#include "hubbub/uuid.h"

/* What a publish answered. */
typedef struct {
  hb_err err;
  hb_pos pos;
  char message_id[HB_UUID_STR_BYTES];
  bool replayed; /* answered from an earlier publish with the same key: not delivered again */
} hb_publish_result;

void hb_idem_init(int64_t ttl_ms, uint32_t max_keys);
void hb_idem_shutdown(void);

/**
 * Look the key up and lock its shard. True: a result within the TTL was
 * found (copied to *out) and the shard is unlocked again. False: none; the
 * shard stays locked until hb_idem_store_unlock.
 */
bool hb_idem_lock_find(const hb_uuid *plugin, const char *key, size_t len, int64_t now_ms,
                       hb_publish_result *out);
/** Remember `r` for the key (only an accepted publish is remembered) and unlock. */
void hb_idem_store_unlock(const hb_uuid *plugin, const char *key, size_t len, int64_t now_ms,
                          const hb_publish_result *r);

#endif
