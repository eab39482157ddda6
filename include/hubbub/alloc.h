/*
 * alloc.h - the one allocation wrapper.
 *
 * Every heap allocation of hubbub goes through here: out-of-memory aborts
 * with a message (a server that cannot allocate cannot keep its promises),
 * and live bytes are counted for /metrics.
 */
#ifndef HUBBUB_ALLOC_H
#define HUBBUB_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *hb_malloc(size_t n);
void *hb_calloc(size_t count, size_t n);
void *hb_realloc(void *p, size_t n);
char *hb_strndup(const char *s, size_t n);
void hb_free(void *p);
/** Bytes currently allocated through this module. */
int64_t hb_alloc_live_bytes(void);

#endif
