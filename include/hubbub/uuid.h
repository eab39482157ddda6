/*
 * uuid.h - UUIDs as 16 bytes inside the server, 36 characters outside.
 */
#ifndef HUBBUB_UUID_H
#define HUBBUB_UUID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HB_UUID_BYTES 16
#define HB_UUID_STR_BYTES 37 /* 36 characters and the NUL */

typedef struct { uint8_t b[HB_UUID_BYTES]; } hb_uuid;

/** Strict 8-4-4-4-12 hex form, either case; no braces, no urn:. */
bool hb_uuid_parse(const char *s, size_t len, hb_uuid *out);
/** Lowercase canonical form into out[HB_UUID_STR_BYTES]. */
void hb_uuid_format(const hb_uuid *u, char *out);
/** Random version 4 UUID from the OpenSSL CSPRNG. */
void hb_uuid_v4(hb_uuid *out);
bool hb_uuid_is_nil(const hb_uuid *u);
static inline bool hb_uuid_eq(const hb_uuid *a, const hb_uuid *b) {
  for (int i = 0; i < HB_UUID_BYTES; i++)
    if (a->b[i] != b->b[i]) return false;
  return true;
}

#endif
