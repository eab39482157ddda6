/* idem.c - idempotent publishes on one node (idem.h). */
#include "hubbub/idem.h"

#include <pthread.h>
#include <string.h>

#include "hubbub/alloc.h"
#include "hubbub/hash.h"
#include "hubbub/limits.h"
#include "hubbub/list.h"

#define IDEM_SHARDS 16

typedef struct {
  hb_uuid plugin;
  uint8_t len;
  char key[HB_MAX_IDEMPOTENCY_KEY_BYTES]; /* zero-filled past len: hashed as bytes */
} idem_key;

typedef struct {
  idem_key k;
  hb_publish_result r;
  int64_t expires_ms;
  hb_list age; /* the shard's entries, oldest first */
  UT_hash_handle hh;
} idem_entry;

typedef struct {
  pthread_mutex_t mu;
  idem_entry *table;
  hb_list by_age;
  uint32_t n;
} idem_shard;

static idem_shard shards[IDEM_SHARDS];
static int64_t ttl_ms;
static uint32_t max_per_shard;

static void make_key(idem_key *k, const hb_uuid *plugin, const char *key, size_t len) {
  memset(k, 0, sizeof *k);
  k->plugin = *plugin;
  k->len = (uint8_t)len;
  memcpy(k->key, key, len);
}

static idem_shard *shard_of(const idem_key *k) {
  uint32_t h = 2166136261u;
  const unsigned char *p = (const unsigned char *)k;
  for (size_t i = 0; i < sizeof *k; i++) h = (h ^ p[i]) * 16777619u;
  return &shards[h % IDEM_SHARDS];
}

static void drop(idem_shard *s, idem_entry *e) {
  HASH_DEL(s->table, e);
  hb_list_remove(&e->age);
  s->n--;
  hb_free(e);
}

/* Entries expire in insertion order (one TTL for all): drop from the head. */
static void expire(idem_shard *s, int64_t now_ms) {
  while (!hb_list_empty(&s->by_age)) {
    idem_entry *e = hb_container_of(s->by_age.next, idem_entry, age);
    if (e->expires_ms > now_ms && s->n <= max_per_shard) break;
    drop(s, e);
  }
}

void hb_idem_init(int64_t ttl, uint32_t max_keys) {
  ttl_ms = ttl;
  max_per_shard = max_keys / IDEM_SHARDS + 1;
  for (int i = 0; i < IDEM_SHARDS; i++) {
    pthread_mutex_init(&shards[i].mu, NULL);
    shards[i].table = NULL;
    shards[i].n = 0;
    hb_list_init(&shards[i].by_age);
  }
}

void hb_idem_shutdown(void) {
  for (int i = 0; i < IDEM_SHARDS; i++) {
    while (!hb_list_empty(&shards[i].by_age))
      drop(&shards[i], hb_container_of(shards[i].by_age.next, idem_entry, age));
    pthread_mutex_destroy(&shards[i].mu);
  }
}

bool hb_idem_lock_find(const hb_uuid *plugin, const char *key, size_t len, int64_t now_ms,
                       hb_publish_result *out) {
  idem_key k;
  make_key(&k, plugin, key, len);
  idem_shard *s = shard_of(&k);
  pthread_mutex_lock(&s->mu);
  expire(s, now_ms);
  idem_entry *e;
  HASH_FIND(hh, s->table, &k, sizeof k, e);
  if (!e) return false; /* still locked: the caller publishes, then stores */
  *out = e->r;
  pthread_mutex_unlock(&s->mu);
  return true;
}

void hb_idem_store_unlock(const hb_uuid *plugin, const char *key, size_t len, int64_t now_ms,
                          const hb_publish_result *r) {
  idem_key k;
  make_key(&k, plugin, key, len);
  idem_shard *s = shard_of(&k);
  /* A refused publish is not remembered: the client may retry it. */
  if (r->err == HB_OK) {
    idem_entry *e = hb_calloc(1, sizeof *e);
    e->k = k;
    e->r = *r;
    e->expires_ms = now_ms + ttl_ms;
    HASH_ADD(hh, s->table, k, sizeof e->k, e);
    hb_list_insert_tail(&s->by_age, &e->age);
    s->n++;
    expire(s, now_ms);
  }
  pthread_mutex_unlock(&s->mu);
}
