/*
 * fuzz_pubreq.c - libFuzzer driver for the HTTP bodies: hb_pubreq_decode
 * (POST /api/v1/pub_subs) and hb_ctreq_decode (POST
 * /api/v1/connection_tokens) on the same input.
 *
 * Checks: an error always has its code set and renders as a valid JSON
 * error body; a decoded publish's `data` is an object within the limit that
 * parses to what jansson sees at ["payload"]["event"]["data"]; a decoded
 * token request stays inside its documented ranges.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hubbub/cmsg.h"
#include "hubbub/ctreq.h"
#include "hubbub/event_name.h"
#include "hubbub/http.h"
#include "hubbub/json.h"
#include "hubbub/pubreq.h"
#include "hubbub/smsg.h"

#define SMALL_MAX_DATA 64

static void check_error_body(const hb_error *e, hb_err r) {
  if (e->err != r) abort();
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_http_error_body(&sb, e);
  json_error_t je;
  json_t *j = json_loadb(sb.buf, sb.len, JSON_REJECT_DUPLICATES, &je);
  if (!j || !json_is_object(json_object_get(j, "error"))) abort();
  json_decref(j);
  hb_strbuf_free(&sb);
}

static void pub(const char *in, size_t len, size_t max) {
  hb_pubreq r;
  hb_error e;
  memset(&e, 0, sizeof e);
  hb_err err = hb_pubreq_decode(in, len, max, &r, &e);
  if (err != HB_OK) {
    if (r.data) abort();
    check_error_body(&e, err);
    hb_pubreq_clear(&r);
    return;
  }
  if (!hb_event_name_valid(r.event_name, r.event_name_len)) abort();
  if (!r.data || r.data_len > max || r.data[0] != '{' || r.data[r.data_len - 1] != '}') abort();
  if ((unsigned)r.scope >= HB_SCOPE__COUNT) abort();
  if (r.scope == HB_SCOPE_ORGANIZATION && !hb_uuid_is_nil(&r.event_id)) abort();
  if (r.scope != HB_SCOPE_SESSION && !hb_uuid_is_nil(&r.session_id)) abort();
  json_error_t je;
  json_t *whole = json_loadb(in, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
  json_t *span = json_loadb(r.data, r.data_len, JSON_ALLOW_NUL, &je);
  if (whole) {
    json_t *want = json_object_get(json_object_get(json_object_get(whole, "payload"), "event"), "data");
    if (!span || !json_equal(want, span)) abort();
  }
  json_decref(whole);
  json_decref(span);
  hb_pubreq_clear(&r);
}

static void ct(const char *in, size_t len) {
  hb_ctreq r;
  hb_error e;
  memset(&e, 0, sizeof e);
  hb_err err = hb_ctreq_decode(in, len, &r, &e);
  if (err != HB_OK) {
    check_error_body(&e, err);
    return;
  }
  size_t ul = strnlen(r.user_id, sizeof r.user_id);
  if (ul == 0 || ul > HB_MAX_USER_ID_BYTES) abort();
  if (r.ttl_s < 1 || r.ttl_s > HB_CONN_TOKEN_MAX_TTL_S) abort();
  if (r.scopes & ~7u) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hb_json_init(); /* decode through the arena, as the server does */
  char *in = malloc(size ? size : 1);
  if (size) memcpy(in, data, size);
  pub(in, size, HB_DEFAULT_MAX_DATA_BYTES);
  pub(in, size, SMALL_MAX_DATA);
  ct(in, size);
  free(in);
  return 0;
}
