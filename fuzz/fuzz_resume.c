/*
 * fuzz_resume.c - libFuzzer driver for the resume string (proto/resume.c).
 *
 * Beyond "no crash, no UB": a string the parser accepts has exactly one
 * spelling, so formatting what it parsed gives back the input byte for
 * byte, and what it formats always parses to the same positions.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hubbub/resume.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hb_pos a[HB_SCOPE__COUNT], b[HB_SCOPE__COUNT];
  if (!hb_resume_parse((const char *)data, size, a)) return 0;
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_resume_format(&sb, a);
  if (sb.len != size || memcmp(sb.buf, data, size) != 0) abort();
  if (!hb_resume_parse(sb.buf, sb.len, b) || memcmp(a, b, sizeof a) != 0) abort();
  for (int i = 0; i < HB_SCOPE__COUNT; i++)
    if (a[i].epoch == 0) abort();
  hb_strbuf_free(&sb);
  return 0;
}
