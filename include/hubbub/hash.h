/*
 * hash.h - uthash, allocating through the one allocation wrapper (alloc.h)
 * so that its buckets count in heap_bytes like everything else. Include this
 * instead of <uthash.h>.
 */
#ifndef HUBBUB_HASH_H
#define HUBBUB_HASH_H

#include "hubbub/alloc.h"

#undef uthash_malloc
#undef uthash_free
#define uthash_malloc(sz) hb_malloc(sz)
#define uthash_free(ptr, sz) hb_free(ptr)
#include <uthash.h>

#endif
