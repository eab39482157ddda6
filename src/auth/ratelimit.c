/* ratelimit.c - per-API-token publish buckets (ratelimit.h). */
#include "hubbub/ratelimit.h"

#include <pthread.h>
#include <string.h>

#include "hubbub/alloc.h"
#include "hubbub/bucket.h"
#include "hubbub/hash.h"


typedef struct {
  hb_uuid key;
  hb_bucket b;
  UT_hash_handle hh;
} bucket;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bucket *buckets;

bool hb_ratelimit_take(const hb_uuid *key, double rate, double burst, uint64_t now_ms,
                       int *retry_after_s) {
  if (rate <= 0) return true;
  pthread_mutex_lock(&lock);
  bucket *b;
  HASH_FIND(hh, buckets, key, sizeof *key, b);
  if (!b) {
    /* One entry per API token that ever published: bounded by the store. */
    b = hb_calloc(1, sizeof *b);
    b->key = *key;
    hb_bucket_init(&b->b, burst, now_ms);
    HASH_ADD(hh, buckets, key, sizeof b->key, b);
  }
  bool ok = hb_bucket_take(&b->b, rate, burst, now_ms, retry_after_s);
  pthread_mutex_unlock(&lock);
  return ok;
}

void hb_ratelimit_shutdown(void) {
  pthread_mutex_lock(&lock);
  bucket *b, *bt;
  HASH_ITER(hh, buckets, b, bt) {
    HASH_DEL(buckets, b);
    hb_free(b);
  }
  pthread_mutex_unlock(&lock);
}
