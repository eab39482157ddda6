/* hex.h - the value of one hexadecimal digit (percent-escapes, UUIDs, \u escapes). */
#ifndef HUBBUB_HEX_H
#define HUBBUB_HEX_H

/** 0-15 for '0'-'9', 'a'-'f', 'A'-'F'; -1 for any other byte. */
static inline int hb_hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

#endif
