/*
 * fuzz_jscan.c - libFuzzer driver for the fast JSON check and the fast
 * decoders built on it (proto/cmsg.c, proto/pubreq.c).
 *
 * Checks: whatever hb_jscan_plain() accepts, jansson accepts too with the
 * flags hb_json_load() uses (or refuses only for a number it cannot
 * hold, which hb_json_load() handles); and hb_cmsg_decode / hb_pubreq_decode
 * give the same result, field for field and error for error, with the fast
 * path on and with jansson alone.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hubbub/cmsg.h"
#include "hubbub/event_name.h"
#include "hubbub/http.h"
#include "hubbub/json.h"
#include "hubbub/pubreq.h"
#include "hubbub/smsg.h"
#include "hubbub/jscan.h"

#define FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL)
#define SMALL_MAX_DATA 64

static void scan(const char *in, size_t len) {
  if (!hb_jscan_plain(in, len)) return;
  json_error_t je;
  json_t *j = json_loadb(in, len, FLAGS, &je);
  if (!j && json_error_code(&je) != json_error_numeric_overflow) abort();
  json_decref(j);
}

static void same_error(hb_err ra, hb_err rb, const hb_error *ea, const hb_error *eb) {
  if (ra != rb || strcmp(ea->message, eb->message) != 0 || strcmp(ea->pointer, eb->pointer) != 0)
    abort();
}

static void cmsg(const char *in, size_t len, size_t max) {
  hb_cmsg a, b;
  hb_error ea, eb;
  memset(&ea, 0, sizeof ea);
  memset(&eb, 0, sizeof eb);
  hb_err ra = hb_cmsg_decode(in, len, max, &a, &ea);
  hb_err rb = hb_cmsg_decode_tree(in, len, max, &b, &eb);
  same_error(ra, rb, &ea, &eb);
  if (a.has_id != b.has_id || a.id_len != b.id_len || memcmp(a.id, b.id, a.id_len) != 0) abort();
  if (ra == HB_OK) {
    if (a.type != b.type || a.scope != b.scope) abort();
    if (a.event_name_len != b.event_name_len ||
        memcmp(a.event_name, b.event_name, a.event_name_len) != 0)
      abort();
    if (a.data_len != b.data_len || (a.data_len && memcmp(a.data, b.data, a.data_len) != 0))
      abort();
  }
  hb_cmsg_clear(&a);
  hb_cmsg_clear(&b);
}

static void pubreq(const char *in, size_t len, size_t max) {
  hb_pubreq a, b;
  hb_error ea, eb;
  memset(&ea, 0, sizeof ea);
  memset(&eb, 0, sizeof eb);
  hb_err ra = hb_pubreq_decode(in, len, max, &a, &ea);
  hb_err rb = hb_pubreq_decode_tree(in, len, max, &b, &eb);
  same_error(ra, rb, &ea, &eb);
  if (ra == HB_OK) {
    if (a.scope != b.scope || !hb_uuid_eq(&a.event_id, &b.event_id) ||
        !hb_uuid_eq(&a.session_id, &b.session_id))
      abort();
    if (a.event_name_len != b.event_name_len ||
        memcmp(a.event_name, b.event_name, a.event_name_len) != 0)
      abort();
    if (a.data_len != b.data_len || memcmp(a.data, b.data, a.data_len) != 0) abort();
  }
  hb_pubreq_clear(&a);
  hb_pubreq_clear(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hb_json_init(); /* decode through the arena, as the server does */
  /* A private copy with no slack after it: a read past `size` is caught. */
  char *in = malloc(size ? size : 1);
  if (size) memcpy(in, data, size);
  scan(in, size);
  cmsg(in, size, HB_DEFAULT_MAX_DATA_BYTES);
  cmsg(in, size, SMALL_MAX_DATA);
  pubreq(in, size, HB_DEFAULT_MAX_DATA_BYTES);
  pubreq(in, size, SMALL_MAX_DATA);
  free(in);
  return 0;
}
