/* uuid.c - parse, format and generate UUIDs (RFC 9562 textual form). */
#include "hubbub/uuid.h"

#include <openssl/rand.h>
#include <stdlib.h>

#include "hubbub/hex.h"

bool hb_uuid_parse(const char *s, size_t len, hb_uuid *out) {
  if (len != 36) return false;
  int bi = 0;
  for (size_t i = 0; i < 36;) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
      i++;
      continue;
    }
    int hi = hb_hexval(s[i]), lo = hb_hexval(s[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->b[bi++] = (uint8_t)(hi << 4 | lo);
    i += 2;
  }
  return true;
}

void hb_uuid_format(const hb_uuid *u, char *out) {
  static const char hex[] = "0123456789abcdef";
  int o = 0;
  for (int i = 0; i < HB_UUID_BYTES; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = hex[u->b[i] >> 4];
    out[o++] = hex[u->b[i] & 15];
  }
  out[o] = '\0';
}

void hb_uuid_v4(hb_uuid *out) {
  if (RAND_bytes(out->b, HB_UUID_BYTES) != 1) abort(); /* no entropy: cannot go on safely */
  out->b[6] = (uint8_t)((out->b[6] & 0x0f) | 0x40);
  out->b[8] = (uint8_t)((out->b[8] & 0x3f) | 0x80);
}

bool hb_uuid_is_nil(const hb_uuid *u) {
  for (int i = 0; i < HB_UUID_BYTES; i++)
    if (u->b[i]) return false;
  return true;
}
