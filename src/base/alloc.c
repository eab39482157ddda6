/* alloc.c - the one allocation wrapper: abort on OOM, count live bytes. */
#include "hubbub/alloc.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_llong live_bytes;

/* malloc_usable_size() lets us count without a size header per block,
 * so hb_free() needs no size argument and blocks stay malloc-compatible. */
static void account(void *p, int sign) {
  if (p) atomic_fetch_add_explicit(&live_bytes, sign * (long long)malloc_usable_size(p),
                                   memory_order_relaxed);
}

static void oom(size_t n) {
  fprintf(stderr, "hubbub: out of memory allocating %zu bytes\n", n);
  abort();
}

void *hb_malloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) oom(n);
  account(p, 1);
  return p;
}

void *hb_calloc(size_t count, size_t n) {
  void *p = calloc(count ? count : 1, n ? n : 1);
  if (!p) oom(count * n);
  account(p, 1);
  return p;
}

void *hb_realloc(void *p, size_t n) {
  account(p, -1);
  void *q = realloc(p, n ? n : 1);
  if (!q) oom(n);
  account(q, 1);
  return q;
}

char *hb_strndup(const char *s, size_t n) {
  char *p = hb_malloc(n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

void hb_free(void *p) {
  if (!p) return;
  account(p, -1);
  free(p);
}

int64_t hb_alloc_live_bytes(void) {
  return atomic_load_explicit(&live_bytes, memory_order_relaxed);
}
