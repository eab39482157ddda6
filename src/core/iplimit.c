/* iplimit.c - connections per peer address (iplimit.h). */
#include "hubbub/iplimit.h"

#include <netinet/in.h>
#include <pthread.h>
#include <string.h>

#include "hubbub/alloc.h"
#include "hubbub/hash.h"

typedef struct {
  uint8_t addr[HB_IP_KEY_BYTES]; /* IPv4 mapped into the first 4 bytes, rest zero */
  int count;
  UT_hash_handle hh;
} ipcount;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static ipcount *ips;

void hb_iplimit_key(const struct sockaddr_storage *a, uint8_t out[HB_IP_KEY_BYTES]) {
  memset(out, 0, HB_IP_KEY_BYTES);
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

void hb_iplimit_shutdown(void) {
  pthread_mutex_lock(&lock);
  ipcount *e, *et;
  HASH_ITER(hh, ips, e, et) {
    HASH_DEL(ips, e);
    hb_free(e);
  }
  pthread_mutex_unlock(&lock);
}
