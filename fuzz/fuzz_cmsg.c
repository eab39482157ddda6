/*
 * fuzz_cmsg.c - libFuzzer driver for hb_cmsg_decode (client messages).
 *
 * Beyond "no crash, no leak, no UB" it checks what the codec promises:
 *   - a decoded publish's `data` is an object of at most max_data_bytes,
 *     pointing into the input (or into data_owned);
 *   - those bytes parse to the same JSON value jansson sees at ["data"]
 *     (the raw-span scanner agrees with the parser);
 *   - every encoder output built from the result is valid JSON.
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

/* The event as a subscriber gets it: opened, then closed with its offset. */
static void smsg_event(hb_strbuf *sb, const char *name, size_t nlen, const char *data, size_t dlen, hb_scope scope,
                       const char *mid, int64_t sent_at) {
  hb_smsg_event_open(sb, name, nlen, data, dlen, scope, mid, sent_at);
  hb_smsg_event_close(sb, 7);
}

#define SMALL_MAX_DATA 64

static void check_json(const hb_strbuf *sb) {
  json_error_t je;
  json_t *j = json_loadb(sb->buf, sb->len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
  if (!j || !json_is_object(j)) abort();
  json_decref(j);
}

static void check_publish(const char *in, size_t len, const hb_cmsg *m, size_t max) {
  if (!m->data || m->data_len < 2 || m->data_len > max) abort();
  if (m->data[0] != '{' || m->data[m->data_len - 1] != '}') abort();
  bool inside = m->data >= in && m->data + m->data_len <= in + len;
  if (!inside && m->data != m->data_owned) abort();
  /* Differential check; skipped when jansson cannot hold a number (the
   * codec accepts those on purpose). */
  json_error_t je;
  json_t *whole = json_loadb(in, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
  json_t *span = json_loadb(m->data, m->data_len, JSON_ALLOW_NUL, &je);
  if (whole && span && !json_equal(json_object_get(whole, "data"), span)) abort();
  if (whole && !span) abort();
  json_decref(whole);
  json_decref(span);
  hb_strbuf sb = HB_STRBUF_INIT;
  smsg_event(&sb, m->event_name, m->event_name_len, m->data, m->data_len, m->scope,
                "6f9619ff-8b86-4011-b42d-00c04fc964ff", 1790000000123LL);
  if (whole) check_json(&sb);
  hb_strbuf_free(&sb);
}

static void one(const char *in, size_t len, size_t max) {
  hb_cmsg m;
  hb_error e;
  memset(&e, 0, sizeof e);
  hb_err r = hb_cmsg_decode(in, len, max, &m, &e);
  hb_strbuf sb = HB_STRBUF_INIT;
  if (r != HB_OK) {
    if (e.err != r || m.data) abort();
    hb_smsg_error(&sb, m.has_id ? m.id : NULL, m.id_len, &e);
    check_json(&sb);
  } else {
    if (m.has_id && (m.id_len == 0 || m.id_len > HB_MAX_REQUEST_ID_BYTES)) abort();
    if (m.type != HB_CMSG_PING && !hb_event_name_valid(m.event_name, m.event_name_len)) abort();
    if (m.type == HB_CMSG_PUBLISH) check_publish(in, len, &m, max);
    hb_smsg_ack(&sb, m.has_id ? m.id : NULL, m.id_len, NULL);
    check_json(&sb);
  }
  hb_strbuf_free(&sb);
  hb_cmsg_clear(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hb_json_init(); /* decode through the arena, as the server does */
  /* A private copy with no slack after it, so that any read past `size`
   * is caught by ASan. */
  char *in = malloc(size ? size : 1);
  if (size) memcpy(in, data, size);
  one(in, size, HB_DEFAULT_MAX_DATA_BYTES);
  one(in, size, SMALL_MAX_DATA);
  free(in);
  return 0;
}
