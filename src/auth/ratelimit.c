/* ratelimit.c - per-token publish buckets and per-address connection counts. */
#include "hubbub/ratelimit.h"

#include <netinet/in.h>
#include <pthread.h>
#include <string.h>

#include "hubbub/alloc.h"
#include "hubbub/hash.h"


typedef struct {
  hb_uuid key;
  double tokens;
  uint64_t last_ms;
  UT_hash_handle hh;
} bucket;

typedef struct {
  uint8_t addr[16]; /* IPv4 mapped into the first 4 bytes, rest zero */
  int count;
  UT_hash_handle hh;
} ipcount;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bucket *buckets;
static ipcount *ips;

bool hb_ratelimit_take(const hb_uuid *key, double rate, double burst, uint64_t now_ms,
                       int *retry_after_s) {
  if (rate <= 0) return true;
  bool ok;
  pthread_mutex_lock(&lock);
  bucket *b;
  HASH_FIND(hh, buckets, key, sizeof *key, b);
  if (!b) {
    /* One entry per API token that ever published: bounded by the store. */
    b = hb_calloc(1, sizeof *b);
    b->key = *key;
    b->tokens = burst;
    b->last_ms = now_ms;
    HASH_ADD(hh, buckets, key, sizeof b->key, b);
  }
  if (now_ms > b->last_ms) b->tokens += (double)(now_ms - b->last_ms) * rate / 1000.0;
  if (b->tokens > burst) b->tokens = burst;
  b->last_ms = now_ms;
  ok = b->tokens >= 1.0;
  if (ok) {
    b->tokens -= 1.0;
  } else if (retry_after_s) {
    int s = (int)((1.0 - b->tokens) / rate + 0.999);
    *retry_after_s = s < 1 ? 1 : s;
  }
  pthread_mutex_unlock(&lock);
  return ok;
}

void hb_iplimit_key(const struct sockaddr_storage *a, uint8_t out[HB_IP_KEY_BYTES]) {
  memset(out, 0, 16);
  if (a->ss_family == AF_INET)
    memcpy(out, &((const struct sockaddr_in *)a)->sin_addr, 4);
  else if (a->ss_family == AF_INET6)
    memcpy(out, &((const struct sockaddr_in6 *)a)->sin6_addr, 16);
}

bool hb_iplimit_acquire(const uint8_t k[HB_IP_KEY_BYTES], int max) {
  if (max <= 0) return true;
  bool ok = true;
  pthread_mutex_lock(&lock);
  ipcount *e;
  HASH_FIND(hh, ips, k, HB_IP_KEY_BYTES, e);
  if (!e) {
    e = hb_calloc(1, sizeof *e);
    memcpy(e->addr, k, HB_IP_KEY_BYTES);
    HASH_ADD(hh, ips, addr, sizeof e->addr, e);
  }
  if (e->count >= max) ok = false;
  else e->count++;
  pthread_mutex_unlock(&lock);
  return ok;
}

void hb_iplimit_release(const uint8_t k[HB_IP_KEY_BYTES]) {
  pthread_mutex_lock(&lock);
  ipcount *e;
  HASH_FIND(hh, ips, k, HB_IP_KEY_BYTES, e);
  if (e && --e->count <= 0) {
    HASH_DEL(ips, e);
    hb_free(e);
  }
  pthread_mutex_unlock(&lock);
}

void hb_ratelimit_shutdown(void) {
  pthread_mutex_lock(&lock);
  bucket *b, *bt;
  HASH_ITER(hh, buckets, b, bt) {
    HASH_DEL(buckets, b);
    hb_free(b);
  }
  ipcount *e, *et;
  HASH_ITER(hh, ips, e, et) {
    HASH_DEL(ips, e);
    hb_free(e);
  }
  pthread_mutex_unlock(&lock);
}
