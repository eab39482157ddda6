/*
 * test_envelope.c - the JSON codec: every error code and pointer of the
 * client messages and the HTTP bodies, raw `data` forwarding, the depth cap,
 * and the exact bytes of every server message.
 *
 * Standalone build:
 *   gcc -std=gnu11 -D_GNU_SOURCE -fsanitize=address,undefined -Iinclude -Isrc \
 *     test/unit/test_envelope.c src/proto/envelope.c src/proto/errors.c \
 *     src/core/alloc.c src/core/strbuf.c src/core/uuid.c src/core/scope.c \
 *     -ljansson -lcrypto -lcmocka -o /tmp/t && /tmp/t
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>

#include "hubbub/alloc.h"
#include "hubbub/cmsg.h"
#include "hubbub/ctreq.h"
#include "hubbub/event_name.h"
#include "hubbub/http.h"
#include "hubbub/json.h"
#include "hubbub/metrics.h"
#include "hubbub/pubreq.h"
#include "hubbub/smsg.h"

/* The event as a subscriber gets it: opened, then closed with its offset. */
static void smsg_event(hb_strbuf *sb, const char *name, size_t nlen, const char *data, size_t dlen, hb_scope scope,
                       const char *mid, int64_t sent_at) {
  hb_smsg_event_open(sb, name, nlen, data, dlen, scope, mid, sent_at);
  hb_smsg_event_close(sb, 7);
}

#define MAX_DATA 32768

/* The second run of every test uses the reference decoders alone (the
 * jansson tree), so each error and value is pinned on both paths. */
static bool tree_only;
static hb_err cmsg_decode(const char *b, size_t n, size_t max, hb_cmsg *m, hb_error *e) {
  return tree_only ? hb_cmsg_decode_tree(b, n, max, m, e) : hb_cmsg_decode(b, n, max, m, e);
}
static hb_err pubreq_decode(const char *b, size_t n, size_t max, hb_pubreq *r, hb_error *e) {
  return tree_only ? hb_pubreq_decode_tree(b, n, max, r, e) : hb_pubreq_decode(b, n, max, r, e);
}
static unsigned long fast_decodes(void) { return (unsigned long)hb_metric_get(HB_M_JSON_FAST_DECODES); }

#define U1 "0b1c7a2e-5f3d-4c1b-9a8e-2d4f6b8c0e1a"
#define U2 "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"

/* Every test must hand back every byte it took through hb_malloc. */
static int64_t live_at_start;
static int setup(void **state) {
  (void)state;
  live_at_start = hb_alloc_live_bytes();
  return 0;
}
static int teardown(void **state) {
  (void)state;
  assert_int_equal(hb_alloc_live_bytes(), live_at_start);
  return 0;
}

/* --- helpers -------------------------------------------------------------- */

/* Decode a client message; check code and pointer; returns the message
 * (cleared by the caller through cmsg_done). */
static hb_err cmsg(const char *s, hb_cmsg *m, hb_error *e) {
  memset(e, 0, sizeof *e);
  return cmsg_decode(s, strlen(s), MAX_DATA, m, e);
}

static void expect_cmsg_err(const char *s, hb_err want, const char *pointer) {
  hb_cmsg m;
  hb_error e;
  hb_err r = cmsg(s, &m, &e);
  if (r != want || strcmp(e.pointer, pointer) != 0)
    print_error("input %s: got %s %s, want %s %s\n", s, hb_err_code(r), e.pointer,
                hb_err_code(want), pointer);
  assert_int_equal(r, want);
  assert_int_equal(e.err, want);
  assert_string_equal(e.pointer, pointer);
  assert_true(e.message[0] != '\0');
  assert_null(m.data);
  hb_cmsg_clear(&m);
}

/* Publish `data_text` (already JSON) and check it is forwarded byte for
 * byte as `want`. */
static void expect_raw_data(const char *msg, const char *want) {
  hb_cmsg m;
  hb_error e;
  hb_err r = cmsg(msg, &m, &e);
  if (r != HB_OK) print_error("input %s: %s %s\n", msg, hb_err_code(r), e.message);
  assert_int_equal(r, HB_OK);
  assert_int_equal(m.type, HB_CMSG_PUBLISH);
  assert_int_equal(m.data_len, strlen(want));
  assert_memory_equal(m.data, want, m.data_len);
  /* The raw span points into the input, not into a copy. */
  assert_true(m.data >= msg && m.data < msg + strlen(msg));
  assert_null(m.data_owned);
  hb_cmsg_clear(&m);
}

static void expect_pub_err(const char *s, hb_err want, const char *pointer) {
  hb_pubreq r;
  hb_error e;
  memset(&e, 0, sizeof e);
  hb_err got = pubreq_decode(s, strlen(s), MAX_DATA, &r, &e);
  if (got != want || strcmp(e.pointer, pointer) != 0)
    print_error("input %s: got %s '%s', want %s '%s'\n", s, hb_err_code(got), e.pointer,
                hb_err_code(want), pointer);
  assert_int_equal(got, want);
  assert_string_equal(e.pointer, pointer);
  hb_pubreq_clear(&r);
}

static void expect_ct_err(const char *s, hb_err want, const char *pointer) {
  hb_ctreq r;
  hb_error e;
  memset(&e, 0, sizeof e);
  hb_err got = hb_ctreq_decode(s, strlen(s), &r, &e);
  if (got != want || strcmp(e.pointer, pointer) != 0)
    print_error("input %s: got %s '%s', want %s '%s'\n", s, hb_err_code(got), e.pointer,
                hb_err_code(want), pointer);
  assert_int_equal(got, want);
  assert_string_equal(e.pointer, pointer);
}

/* `depth` nested containers, alternating objects and arrays and starting
 * with an object, around a 1: {"a":[{"a":[1]}]} */
static char *nest(int depth, const char *prefix, const char *suffix) {
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_strbuf_addstr(&sb, prefix);
  for (int i = 0; i < depth; i++) hb_strbuf_addstr(&sb, i % 2 ? "[" : "{\"a\":");
  hb_strbuf_addstr(&sb, "1");
  for (int i = depth - 1; i >= 0; i--) hb_strbuf_addstr(&sb, i % 2 ? "]" : "}");
  hb_strbuf_addstr(&sb, suffix);
  return hb_strbuf_release(&sb, NULL);
}

/* --- event names ---------------------------------------------------------- */

static void test_event_name(void **state) {
  (void)state;
  assert_true(hb_event_name_valid("a", 1));
  assert_true(hb_event_name_valid("say-hello_1.2:x/y@z", 19));
  assert_true(hb_event_name_valid("ABCxyz09", 8));
  assert_false(hb_event_name_valid("", 0));
  assert_false(hb_event_name_valid("a b", 3));
  assert_false(hb_event_name_valid("a\0b", 3));
  assert_false(hb_event_name_valid("caf\xc3\xa9", 5));
  assert_false(hb_event_name_valid("a#", 2));
  assert_false(hb_event_name_valid("a\"", 2));
  char name[HB_MAX_EVENT_NAME_BYTES + 2];
  memset(name, 'x', sizeof name);
  assert_true(hb_event_name_valid(name, HB_MAX_EVENT_NAME_BYTES));
  assert_false(hb_event_name_valid(name, HB_MAX_EVENT_NAME_BYTES + 1));
}

/* --- client messages: success --------------------------------------------- */

static void test_cmsg_ok(void **state) {
  (void)state;
  hb_cmsg m;
  hb_error e;
  assert_int_equal(cmsg("{\"type\":\"subscribe\",\"eventName\":\"x\",\"id\":\"c1\"}", &m, &e), HB_OK);
  assert_int_equal(m.type, HB_CMSG_SUBSCRIBE);
  assert_true(m.has_id);
  assert_int_equal(m.id_len, 2);
  assert_string_equal(m.id, "c1");
  assert_int_equal(m.event_name_len, 1);
  assert_string_equal(m.event_name, "x");
  hb_cmsg_clear(&m);

  assert_int_equal(cmsg("{\"type\":\"unsubscribe\",\"eventName\":\"a:b\"}", &m, &e), HB_OK);
  assert_int_equal(m.type, HB_CMSG_UNSUBSCRIBE);
  assert_false(m.has_id);
  assert_string_equal(m.event_name, "a:b");
  hb_cmsg_clear(&m);

  assert_int_equal(cmsg("{\"type\":\"ping\",\"id\":\"p1\"}", &m, &e), HB_OK);
  assert_int_equal(m.type, HB_CMSG_PING);
  assert_string_equal(m.id, "p1");
  hb_cmsg_clear(&m);

  /* ping needs nothing else, and ignores eventName/data garbage */
  assert_int_equal(cmsg("{\"type\":\"ping\",\"eventName\":5,\"data\":1}", &m, &e), HB_OK);
  hb_cmsg_clear(&m);

  /* publish: scope default and explicit */
  assert_int_equal(cmsg("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{}}", &m, &e), HB_OK);
  assert_int_equal(m.scope, HB_SCOPE_SESSION);
  assert_int_equal(m.data_len, 2);
  hb_cmsg_clear(&m);
  assert_int_equal(cmsg("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{},\"scope\":\"event\"}", &m, &e), HB_OK);
  assert_int_equal(m.scope, HB_SCOPE_EVENT);
  hb_cmsg_clear(&m);
  assert_int_equal(cmsg("{\"scope\":\"organization\",\"data\":{},\"eventName\":\"x\",\"type\":\"publish\"}", &m, &e), HB_OK);
  assert_int_equal(m.scope, HB_SCOPE_ORGANIZATION);
  hb_cmsg_clear(&m);

  /* unknown fields are ignored (forward compatible) */
  assert_int_equal(cmsg("{\"type\":\"subscribe\",\"eventName\":\"x\",\"v\":2,\"extra\":{\"a\":[1]}}", &m, &e), HB_OK);
  hb_cmsg_clear(&m);

  /* subscribe ignores publish-only fields, even malformed ones */
  assert_int_equal(cmsg("{\"type\":\"subscribe\",\"eventName\":\"x\",\"scope\":7,\"data\":1}", &m, &e), HB_OK);
  hb_cmsg_clear(&m);

  /* an id of exactly 64 bytes, UTF-8 allowed */
  char buf[256];
  snprintf(buf, sizeof buf, "{\"type\":\"ping\",\"id\":\"%064d\"}", 7);
  assert_int_equal(cmsg(buf, &m, &e), HB_OK);
  assert_int_equal(m.id_len, 64);
  hb_cmsg_clear(&m);
  assert_int_equal(cmsg("{\"type\":\"ping\",\"id\":\"\xc3\xa9t\xc3\xa9\"}", &m, &e), HB_OK);
  assert_int_equal(m.id_len, 5);
  hb_cmsg_clear(&m);
  /* escaped id is decoded */
  assert_int_equal(cmsg("{\"type\":\"ping\",\"id\":\"a\\\"b\"}", &m, &e), HB_OK);
  assert_string_equal(m.id, "a\"b");
  hb_cmsg_clear(&m);

  /* the input need not be NUL-terminated */
  const char *full = "{\"type\":\"ping\"}GARBAGE";
  memset(&e, 0, sizeof e);
  assert_int_equal(cmsg_decode(full, 15, MAX_DATA, &m, &e), HB_OK);
  hb_cmsg_clear(&m);
}

/* --- client messages: errors ---------------------------------------------- */

static void test_cmsg_invalid_json(void **state) {
  (void)state;
  expect_cmsg_err("", HB_E_INVALID_JSON, "");
  expect_cmsg_err("   ", HB_E_INVALID_JSON, "");
  expect_cmsg_err("{", HB_E_INVALID_JSON, "");
  expect_cmsg_err("{\"type\":\"ping\"", HB_E_INVALID_JSON, "");
  expect_cmsg_err("{\"type\":\"ping\"} {}", HB_E_INVALID_JSON, "");
  expect_cmsg_err("{'type':'ping'}", HB_E_INVALID_JSON, "");
  expect_cmsg_err("{\"type\":\"ping\",}", HB_E_INVALID_JSON, "");
  expect_cmsg_err("{\"type\":\"ping\"\"id\":\"x\"}", HB_E_INVALID_JSON, "");
  expect_cmsg_err("{\"a\":01}", HB_E_INVALID_JSON, "");
  expect_cmsg_err("{\"a\":1.}", HB_E_INVALID_JSON, "");
  expect_cmsg_err("{\"a\":NaN}", HB_E_INVALID_JSON, "");
  expect_cmsg_err("{\"a\":\"\t\"}", HB_E_INVALID_JSON, ""); /* raw control char in a string */
  expect_cmsg_err("{\"a\":\"\\x\"}", HB_E_INVALID_JSON, "");
  /* not an object: invalid_json for WebSocket (protocol.md) */
  expect_cmsg_err("[]", HB_E_INVALID_JSON, "");
  expect_cmsg_err("\"ping\"", HB_E_INVALID_JSON, "");
  expect_cmsg_err("42", HB_E_INVALID_JSON, "");
  expect_cmsg_err("null", HB_E_INVALID_JSON, "");
  /* duplicate keys, at the top and nested inside data */
  expect_cmsg_err("{\"type\":\"ping\",\"type\":\"ping\"}", HB_E_INVALID_JSON, "");
  expect_cmsg_err("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{\"a\":1,\"a\":2}}",
                  HB_E_INVALID_JSON, "");
  /* the same key spelled with an escape is still a duplicate */
  expect_cmsg_err("{\"type\":\"ping\",\"t\\u0079pe\":\"ping\"}", HB_E_INVALID_JSON, "");
}

static void test_cmsg_invalid_json_keeps_no_id(void **state) {
  (void)state;
  hb_cmsg m;
  hb_error e;
  assert_int_equal(cmsg("{\"id\":\"c1\",", &m, &e), HB_E_INVALID_JSON);
  assert_false(m.has_id);
  hb_cmsg_clear(&m);
}

static void test_cmsg_id(void **state) {
  (void)state;
  expect_cmsg_err("{\"type\":\"ping\",\"id\":5}", HB_E_INVALID_TYPE, "/id");
  expect_cmsg_err("{\"type\":\"ping\",\"id\":null}", HB_E_INVALID_TYPE, "/id");
  expect_cmsg_err("{\"type\":\"ping\",\"id\":[\"a\"]}", HB_E_INVALID_TYPE, "/id");
  expect_cmsg_err("{\"type\":\"ping\",\"id\":\"\"}", HB_E_INVALID_VALUE, "/id");
  expect_cmsg_err("{\"type\":\"ping\",\"id\":\"a\\nb\"}", HB_E_INVALID_VALUE, "/id");
  expect_cmsg_err("{\"type\":\"ping\",\"id\":\"a\\u0000b\"}", HB_E_INVALID_VALUE, "/id");
  expect_cmsg_err("{\"type\":\"ping\",\"id\":\"\\u007f\"}", HB_E_INVALID_VALUE, "/id");
  char buf[256];
  snprintf(buf, sizeof buf, "{\"type\":\"ping\",\"id\":\"%065d\"}", 7);
  expect_cmsg_err(buf, HB_E_INVALID_VALUE, "/id");
  /* the id is parsed before type, so an invalid id wins */
  expect_cmsg_err("{\"id\":7}", HB_E_INVALID_TYPE, "/id");
}

static void test_cmsg_error_carries_id(void **state) {
  (void)state;
  hb_cmsg m;
  hb_error e;
  assert_int_equal(cmsg("{\"id\":\"c9\",\"type\":\"jump\"}", &m, &e), HB_E_UNKNOWN_TYPE);
  assert_true(m.has_id);
  assert_string_equal(m.id, "c9");
  hb_cmsg_clear(&m);
  assert_int_equal(cmsg("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":[],\"id\":\"c10\"}", &m, &e),
                   HB_E_INVALID_TYPE);
  assert_true(m.has_id);
  assert_string_equal(m.id, "c10");
  hb_cmsg_clear(&m);
}

static void test_cmsg_type(void **state) {
  (void)state;
  expect_cmsg_err("{}", HB_E_MISSING_FIELD, "/type");
  expect_cmsg_err("{\"id\":\"c1\"}", HB_E_MISSING_FIELD, "/type");
  expect_cmsg_err("{\"type\":1}", HB_E_INVALID_TYPE, "/type");
  expect_cmsg_err("{\"type\":null}", HB_E_INVALID_TYPE, "/type");
  expect_cmsg_err("{\"type\":\"Ping\"}", HB_E_UNKNOWN_TYPE, "/type");
  expect_cmsg_err("{\"type\":\"\"}", HB_E_UNKNOWN_TYPE, "/type");
  expect_cmsg_err("{\"type\":\"welcome\"}", HB_E_UNKNOWN_TYPE, "/type");
  expect_cmsg_err("{\"type\":\"ping\\u0000\"}", HB_E_UNKNOWN_TYPE, "/type");
  expect_cmsg_err("{\"type\":\"pings\"}", HB_E_UNKNOWN_TYPE, "/type");
}

static void test_cmsg_event_name(void **state) {
  (void)state;
  expect_cmsg_err("{\"type\":\"subscribe\"}", HB_E_MISSING_FIELD, "/eventName");
  expect_cmsg_err("{\"type\":\"unsubscribe\"}", HB_E_MISSING_FIELD, "/eventName");
  expect_cmsg_err("{\"type\":\"publish\",\"data\":{}}", HB_E_MISSING_FIELD, "/eventName");
  expect_cmsg_err("{\"type\":\"subscribe\",\"eventName\":1}", HB_E_INVALID_TYPE, "/eventName");
  expect_cmsg_err("{\"type\":\"subscribe\",\"eventName\":\"\"}", HB_E_INVALID_EVENT_NAME, "/eventName");
  expect_cmsg_err("{\"type\":\"subscribe\",\"eventName\":\"a b\"}", HB_E_INVALID_EVENT_NAME, "/eventName");
  expect_cmsg_err("{\"type\":\"subscribe\",\"eventName\":\"a\\u0000\"}", HB_E_INVALID_EVENT_NAME,
                  "/eventName");
  expect_cmsg_err("{\"type\":\"publish\",\"eventName\":\"*\",\"data\":{}}", HB_E_INVALID_EVENT_NAME,
                  "/eventName");
  char buf[400];
  snprintf(buf, sizeof buf, "{\"type\":\"subscribe\",\"eventName\":\"%0129d\"}", 1);
  expect_cmsg_err(buf, HB_E_INVALID_EVENT_NAME, "/eventName");
  hb_cmsg m;
  hb_error e;
  snprintf(buf, sizeof buf, "{\"type\":\"subscribe\",\"eventName\":\"%0128d\"}", 1);
  assert_int_equal(cmsg(buf, &m, &e), HB_OK);
  assert_int_equal(m.event_name_len, 128);
  hb_cmsg_clear(&m);
}

static void test_cmsg_publish_errors(void **state) {
  (void)state;
  expect_cmsg_err("{\"type\":\"publish\",\"eventName\":\"x\"}", HB_E_MISSING_FIELD, "/data");
  expect_cmsg_err("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":[]}", HB_E_INVALID_TYPE, "/data");
  expect_cmsg_err("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":\"s\"}", HB_E_INVALID_TYPE, "/data");
  expect_cmsg_err("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":null}", HB_E_INVALID_TYPE, "/data");
  expect_cmsg_err("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":1}", HB_E_INVALID_TYPE, "/data");
  expect_cmsg_err("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{},\"scope\":\"room\"}",
                  HB_E_INVALID_SCOPE, "/scope");
  expect_cmsg_err("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{},\"scope\":\"Session\"}",
                  HB_E_INVALID_SCOPE, "/scope");
  expect_cmsg_err("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{},\"scope\":\"\"}",
                  HB_E_INVALID_SCOPE, "/scope");
  expect_cmsg_err("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{},\"scope\":1}",
                  HB_E_INVALID_TYPE, "/scope");
  expect_cmsg_err("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{},\"scope\":null}",
                  HB_E_INVALID_TYPE, "/scope");
  expect_cmsg_err("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{},\"scope\":[\"event\"]}",
                  HB_E_INVALID_TYPE, "/scope");
}

static void test_cmsg_data_too_large(void **state) {
  (void)state;
  /* data of exactly max bytes passes, one more fails */
  size_t max = 100;
  char data[200], msg[400];
  hb_cmsg m;
  hb_error e;
  /* {"k":"xxxx"} is 8 + n bytes */
  memset(data, 0, sizeof data);
  memcpy(data, "{\"k\":\"", 6);
  memset(data + 6, 'x', max - 8);
  memcpy(data + 6 + max - 8, "\"}", 2);
  assert_int_equal(strlen(data), max);
  snprintf(msg, sizeof msg, "{\"type\":\"publish\",\"eventName\":\"x\",\"data\":%s}", data);
  memset(&e, 0, sizeof e);
  assert_int_equal(cmsg_decode(msg, strlen(msg), max, &m, &e), HB_OK);
  assert_int_equal(m.data_len, max);
  hb_cmsg_clear(&m);
  assert_int_equal(cmsg_decode(msg, strlen(msg), max - 1, &m, &e), HB_E_DATA_TOO_LARGE);
  assert_string_equal(e.pointer, "/data");
  assert_int_equal(hb_err_http_status(e.err), 413);
  hb_cmsg_clear(&m);
  /* surrounding whitespace does not count */
  snprintf(msg, sizeof msg, "{\"type\":\"publish\",\"eventName\":\"x\",\"data\":  \n%s\t  }", data);
  assert_int_equal(cmsg_decode(msg, strlen(msg), max, &m, &e), HB_OK);
  hb_cmsg_clear(&m);
}

/* --- raw data forwarding -------------------------------------------------- */

static void test_raw_numbers(void **state) {
  (void)state;
  expect_raw_data("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{\"a\":0.1}}", "{\"a\":0.1}");
  expect_raw_data("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{\"a\":-0}}", "{\"a\":-0}");
  expect_raw_data("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{\"a\":1.0}}", "{\"a\":1.0}");
  expect_raw_data("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{\"a\":1E2}}", "{\"a\":1E2}");
  expect_raw_data("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{\"a\":-1.5e-300}}",
                  "{\"a\":-1.5e-300}");
  /* beyond double precision but inside int64 */
  expect_raw_data("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{\"a\":9007199254740993}}",
                  "{\"a\":9007199254740993}");
  /* beyond int64 (JSON.stringify(2**65) writes this) and beyond double */
  expect_raw_data("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{\"a\":36893488147419103000}}",
                  "{\"a\":36893488147419103000}");
  expect_raw_data("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{\"a\":-123456789012345678901234567890}}",
                  "{\"a\":-123456789012345678901234567890}");
  expect_raw_data("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{\"a\":1e400,\"b\":[2e-400]}}",
                  "{\"a\":1e400,\"b\":[2e-400]}");
  /* a big number elsewhere in the message does not matter either */
  expect_raw_data("{\"type\":\"publish\",\"n\":99999999999999999999999,\"eventName\":\"x\",\"data\":{}}", "{}");
}

static void test_raw_big_numbers_still_validated(void **state) {
  (void)state;
  /* The big-number retry must not let malformed text through. */
  expect_cmsg_err("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{\"a\":99999999999999999999999,\"b\":01}}",
                  HB_E_INVALID_JSON, "");
  expect_cmsg_err("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{\"a\":99999999999999999999999,\"a\":1}}",
                  HB_E_INVALID_JSON, "");
  expect_cmsg_err("{\"a\":99999999999999999999999 1}", HB_E_INVALID_JSON, "");
  expect_cmsg_err("{\"a\":-99999999999999999999999.}", HB_E_INVALID_JSON, "");
  expect_cmsg_err("{\"a\":99999999999999999999999", HB_E_INVALID_JSON, "");
  /* a big ttl is a value out of range, not a parse error */
  expect_ct_err("{\"event_id\":\"" U1 "\",\"session_id\":\"" U2 "\",\"ttl\":99999999999999999999999}",
                HB_E_INVALID_VALUE, "/ttl");
}

static void test_raw_strings_and_nesting(void **state) {
  (void)state;
  expect_raw_data("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{\"s\":\"\\u00e9\\ud83d\\ude00\"}}",
                  "{\"s\":\"\\u00e9\\ud83d\\ude00\"}");
  expect_raw_data("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{\"s\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}}",
                  "{\"s\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}");
  /* braces and quotes inside strings do not confuse the scanner */
  expect_raw_data("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{\"s\":\"}]\\\"{[\\\\\",\"t\":\"\\\\\"}}",
                  "{\"s\":\"}]\\\"{[\\\\\",\"t\":\"\\\\\"}");
  /* runs of backslashes before a quote: odd escapes it, even closes the string */
  expect_raw_data("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{\"s\":\"a\\\\\\\"[{\",\"t\":[\"b\\\\\",{\"u\":\"\\\\\\\\\"}]}}",
                  "{\"s\":\"a\\\\\\\"[{\",\"t\":[\"b\\\\\",{\"u\":\"\\\\\\\\\"}]}");
  expect_raw_data("{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{\"a\":{\"b\":[1,{\"c\":[[],{}]},\"x\"]},\"d\":null,\"e\":true,\"f\":false}}",
                  "{\"a\":{\"b\":[1,{\"c\":[[],{}]},\"x\"]},\"d\":null,\"e\":true,\"f\":false}");
  /* keys order preserved, inner whitespace preserved, outer stripped */
  expect_raw_data("{\"type\":\"publish\",\"eventName\":\"x\",\"data\" :\r\n\t { \"z\" : 1 ,\n \"a\" : 2 } \n}",
                  "{ \"z\" : 1 ,\n \"a\" : 2 }");
  /* data first, data last, among other fields with look-alike content */
  expect_raw_data("{\"data\":{\"data\":{\"q\":1}},\"type\":\"publish\",\"eventName\":\"x\"}",
                  "{\"data\":{\"q\":1}}");
  expect_raw_data("{\"type\":\"publish\",\"x\":{\"data\":{\"no\":1}},\"y\":[\"data\",{\"data\":2}],\"z\":\"\\\"data\\\":\",\"eventName\":\"x\",\"data\":{\"yes\":1}}",
                  "{\"yes\":1}");
  /* a key spelled with escapes is found too */
  expect_raw_data("{\"type\":\"publish\",\"eventName\":\"x\",\"\\u0064ata\":{\"a\":0.10}}", "{\"a\":0.10}");
  expect_raw_data("{\"type\":\"publish\",\"eventName\":\"x\",\"d\\u0061t\\u0061\":{}}", "{}");
  /* a key that only looks like data after wrong unescaping */
  expect_raw_data("{\"type\":\"publish\",\"eventName\":\"x\",\"dat\\u0061x\":{\"no\":1},\"data\":{\"ok\":1}}",
                  "{\"ok\":1}");
  /* leading whitespace before the message */
  expect_raw_data(" \n {\"type\":\"publish\",\"eventName\":\"x\",\"data\":{}}  ", "{}");
}

static void test_depth_limit(void **state) {
  (void)state;
  hb_cmsg m;
  hb_error e;
  /* 32 levels in total (the message object plus 31 inside data) is fine */
  char *ok = nest(HB_MAX_JSON_DEPTH - 1, "{\"type\":\"publish\",\"eventName\":\"x\",\"data\":", "}");
  /* nest() alternates objects and arrays starting with an object */
  assert_int_equal(cmsg(ok, &m, &e), HB_OK);
  hb_cmsg_clear(&m);
  hb_free(ok);
  char *deep = nest(HB_MAX_JSON_DEPTH, "{\"type\":\"publish\",\"eventName\":\"x\",\"data\":", "}");
  expect_cmsg_err(deep, HB_E_INVALID_JSON, "");
  hb_free(deep);
  /* brackets inside strings do not count */
  char buf[512];
  snprintf(buf, sizeof buf, "{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{\"s\":\"%s\"}}",
           "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{\\\"[[[[[");
  assert_int_equal(cmsg(buf, &m, &e), HB_OK);
  hb_cmsg_clear(&m);
  /* a huge depth is refused cheaply, before jansson recurses */
  char *huge = nest(100000, "", "");
  memset(&e, 0, sizeof e);
  assert_int_equal(cmsg_decode(huge, strlen(huge), MAX_DATA, &m, &e), HB_E_INVALID_JSON);
  hb_cmsg_clear(&m);
  hb_free(huge);
  /* HTTP bodies: same cap */
  char *pub = nest(HB_MAX_JSON_DEPTH - 3,
                   "{\"scope\":{\"type\":\"organization\"},\"payload\":{\"event\":{\"eventName\":\"x\",\"data\":",
                   "}}}");
  hb_pubreq r;
  memset(&e, 0, sizeof e);
  assert_int_equal(pubreq_decode(pub, strlen(pub), MAX_DATA, &r, &e), HB_OK);
  hb_pubreq_clear(&r);
  hb_free(pub);
  pub = nest(HB_MAX_JSON_DEPTH - 2,
             "{\"scope\":{\"type\":\"organization\"},\"payload\":{\"event\":{\"eventName\":\"x\",\"data\":",
             "}}}");
  expect_pub_err(pub, HB_E_INVALID_JSON, "");
  hb_free(pub);
}

static void test_invalid_utf8(void **state) {
  (void)state;
  /* WebSocket text is validated by the server first; HTTP bodies are not, so
   * jansson's UTF-8 check must map to invalid_json. */
  expect_pub_err("{\"scope\":{\"type\":\"organization\"},\"payload\":{\"event\":{\"eventName\":\"x\","
                 "\"data\":{\"s\":\"\xff\"}}}}",
                 HB_E_INVALID_JSON, "");
  expect_pub_err("{\"scope\":{\"type\":\"organization\"},\"payload\":{\"event\":{\"eventName\":\"x\","
                 "\"data\":{\"s\":\"\xc3\"}}}}",
                 HB_E_INVALID_JSON, "");
  expect_pub_err("{\"scope\":{\"type\":\"organization\"},\"payload\":{\"event\":{\"eventName\":\"x\","
                 "\"data\":{\"s\":\"\xed\xa0\x80\"}}}}", /* encoded surrogate */
                 HB_E_INVALID_JSON, "");
  expect_pub_err("{\"scope\":{\"type\":\"organization\"},\"payload\":{\"event\":{\"eventName\":\"x\","
                 "\"data\":{\"s\":\"\xc0\xaf\"}}}}", /* overlong */
                 HB_E_INVALID_JSON, "");
  expect_pub_err("\xef\xbb\xbf{}", HB_E_INVALID_JSON, ""); /* BOM is not JSON text */
}

/* --- HTTP publish body ---------------------------------------------------- */

#define PUB_OK_SCOPE "{\"type\":\"session\",\"event_id\":\"" U1 "\",\"session_id\":\"" U2 "\"}"
#define PUB_OK_PAYLOAD "{\"event\":{\"eventName\":\"hello\",\"data\":{\"foo\":\"bar\"}}}"

static void test_pubreq_ok(void **state) {
  (void)state;
  const char *body = "{\"scope\":" PUB_OK_SCOPE ",\"payload\":" PUB_OK_PAYLOAD "}";
  hb_pubreq r;
  hb_error e;
  memset(&e, 0, sizeof e);
  assert_int_equal(pubreq_decode(body, strlen(body), MAX_DATA, &r, &e), HB_OK);
  assert_int_equal(r.scope, HB_SCOPE_SESSION);
  hb_uuid u1, u2;
  assert_true(hb_uuid_parse(U1, 36, &u1));
  assert_true(hb_uuid_parse(U2, 36, &u2));
  assert_true(hb_uuid_eq(&r.event_id, &u1));
  assert_true(hb_uuid_eq(&r.session_id, &u2));
  assert_string_equal(r.event_name, "hello");
  assert_int_equal(r.event_name_len, 5);
  assert_int_equal(r.data_len, strlen("{\"foo\":\"bar\"}"));
  assert_memory_equal(r.data, "{\"foo\":\"bar\"}", r.data_len);
  hb_pubreq_clear(&r);

  /* event scope: session_id ignored, even when malformed */
  body = "{\"scope\":{\"type\":\"event\",\"event_id\":\"" U1 "\",\"session_id\":5},\"payload\":" PUB_OK_PAYLOAD "}";
  assert_int_equal(pubreq_decode(body, strlen(body), MAX_DATA, &r, &e), HB_OK);
  assert_int_equal(r.scope, HB_SCOPE_EVENT);
  assert_true(hb_uuid_is_nil(&r.session_id));
  hb_pubreq_clear(&r);

  /* organization scope: both ids ignored */
  body = "{\"scope\":{\"type\":\"organization\",\"event_id\":\"nope\"},\"payload\":" PUB_OK_PAYLOAD "}";
  assert_int_equal(pubreq_decode(body, strlen(body), MAX_DATA, &r, &e), HB_OK);
  assert_int_equal(r.scope, HB_SCOPE_ORGANIZATION);
  assert_true(hb_uuid_is_nil(&r.event_id));
  hb_pubreq_clear(&r);

  /* uppercase UUIDs, payload before scope, extra fields, pretty-printed */
  body = "{\n  \"payload\": {\"event\": {\"data\": { \"n\": 0.1 } , \"eventName\": \"a.b\", \"x\": 1}},\n"
         "  \"scope\": {\"type\": \"event\", \"event_id\": \"0B1C7A2E-5F3D-4C1B-9A8E-2D4F6B8C0E1A\"},\n"
         "  \"extra\": [1, 2]\n}\n";
  assert_int_equal(pubreq_decode(body, strlen(body), MAX_DATA, &r, &e), HB_OK);
  assert_true(hb_uuid_eq(&r.event_id, &u1));
  assert_int_equal(r.data_len, strlen("{ \"n\": 0.1 }"));
  assert_memory_equal(r.data, "{ \"n\": 0.1 }", r.data_len);
  hb_pubreq_clear(&r);

  /* a "data" key higher up is not the payload's data */
  body = "{\"data\":{\"wrong\":1},\"scope\":{\"type\":\"organization\"},\"payload\":{\"data\":{\"wrong\":2},"
         "\"event\":{\"eventName\":\"e\",\"data\":{\"right\":3}}}}";
  assert_int_equal(pubreq_decode(body, strlen(body), MAX_DATA, &r, &e), HB_OK);
  assert_memory_equal(r.data, "{\"right\":3}", r.data_len);
  hb_pubreq_clear(&r);
}

static void test_pubreq_errors(void **state) {
  (void)state;
  /* syntax */
  expect_pub_err("", HB_E_INVALID_JSON, "");
  expect_pub_err("{", HB_E_INVALID_JSON, "");
  expect_pub_err("{\"scope\":1,\"scope\":2}", HB_E_INVALID_JSON, "");
  /* top level not an object: invalid_type with the root pointer */
  expect_pub_err("[]", HB_E_INVALID_TYPE, HB_POINTER_ROOT);
  expect_pub_err("\"x\"", HB_E_INVALID_TYPE, HB_POINTER_ROOT);
  expect_pub_err("1", HB_E_INVALID_TYPE, HB_POINTER_ROOT);
  expect_pub_err("null", HB_E_INVALID_TYPE, HB_POINTER_ROOT);
  /* scope */
  expect_pub_err("{}", HB_E_MISSING_FIELD, "/scope");
  expect_pub_err("{\"payload\":" PUB_OK_PAYLOAD "}", HB_E_MISSING_FIELD, "/scope");
  expect_pub_err("{\"scope\":\"session\"}", HB_E_INVALID_TYPE, "/scope");
  expect_pub_err("{\"scope\":null}", HB_E_INVALID_TYPE, "/scope");
  expect_pub_err("{\"scope\":{}}", HB_E_MISSING_FIELD, "/scope/type");
  expect_pub_err("{\"scope\":{\"type\":1}}", HB_E_INVALID_TYPE, "/scope/type");
  expect_pub_err("{\"scope\":{\"type\":\"room\"}}", HB_E_INVALID_SCOPE, "/scope/type");
  expect_pub_err("{\"scope\":{\"type\":\"Session\"}}", HB_E_INVALID_SCOPE, "/scope/type");
  expect_pub_err("{\"scope\":{\"type\":\"session\"}}", HB_E_MISSING_FIELD, "/scope/event_id");
  expect_pub_err("{\"scope\":{\"type\":\"event\"}}", HB_E_MISSING_FIELD, "/scope/event_id");
  expect_pub_err("{\"scope\":{\"type\":\"session\",\"event_id\":\"" U1 "\"}}", HB_E_MISSING_FIELD,
                 "/scope/session_id");
  expect_pub_err("{\"scope\":{\"type\":\"event\",\"event_id\":\"x\"}}", HB_E_INVALID_UUID, "/scope/event_id");
  expect_pub_err("{\"scope\":{\"type\":\"event\",\"event_id\":\"{" U1 "}\"}}", HB_E_INVALID_UUID,
                 "/scope/event_id");
  expect_pub_err("{\"scope\":{\"type\":\"event\",\"event_id\":7}}", HB_E_INVALID_TYPE, "/scope/event_id");
  expect_pub_err("{\"scope\":{\"type\":\"session\",\"event_id\":\"" U1 "\",\"session_id\":\"" U1 "x\"}}",
                 HB_E_INVALID_UUID, "/scope/session_id");
  expect_pub_err("{\"scope\":{\"type\":\"session\",\"event_id\":\"" U1 "\",\"session_id\":null}}",
                 HB_E_INVALID_TYPE, "/scope/session_id");
  /* payload */
  expect_pub_err("{\"scope\":" PUB_OK_SCOPE "}", HB_E_MISSING_FIELD, "/payload");
  expect_pub_err("{\"scope\":" PUB_OK_SCOPE ",\"payload\":[]}", HB_E_INVALID_TYPE, "/payload");
  expect_pub_err("{\"scope\":" PUB_OK_SCOPE ",\"payload\":{}}", HB_E_MISSING_FIELD, "/payload/event");
  expect_pub_err("{\"scope\":" PUB_OK_SCOPE ",\"payload\":{\"event\":\"x\"}}", HB_E_INVALID_TYPE,
                 "/payload/event");
  expect_pub_err("{\"scope\":" PUB_OK_SCOPE ",\"payload\":{\"event\":{}}}", HB_E_MISSING_FIELD,
                 "/payload/event/eventName");
  expect_pub_err("{\"scope\":" PUB_OK_SCOPE ",\"payload\":{\"event\":{\"eventName\":[]}}}", HB_E_INVALID_TYPE,
                 "/payload/event/eventName");
  expect_pub_err("{\"scope\":" PUB_OK_SCOPE ",\"payload\":{\"event\":{\"eventName\":\"\"}}}",
                 HB_E_INVALID_EVENT_NAME, "/payload/event/eventName");
  expect_pub_err("{\"scope\":" PUB_OK_SCOPE ",\"payload\":{\"event\":{\"eventName\":\"a b\"}}}",
                 HB_E_INVALID_EVENT_NAME, "/payload/event/eventName");
  expect_pub_err("{\"scope\":" PUB_OK_SCOPE ",\"payload\":{\"event\":{\"eventName\":\"x\"}}}",
                 HB_E_MISSING_FIELD, "/payload/event/data");
  expect_pub_err("{\"scope\":" PUB_OK_SCOPE ",\"payload\":{\"event\":{\"eventName\":\"x\",\"data\":\"s\"}}}",
                 HB_E_INVALID_TYPE, "/payload/event/data");
  expect_pub_err("{\"scope\":" PUB_OK_SCOPE ",\"payload\":{\"event\":{\"eventName\":\"x\",\"data\":[1]}}}",
                 HB_E_INVALID_TYPE, "/payload/event/data");
  /* a data field outside payload.event does not count */
  expect_pub_err("{\"scope\":" PUB_OK_SCOPE ",\"data\":{},\"payload\":{\"data\":{},\"event\":{\"eventName\":\"x\"}}}",
                 HB_E_MISSING_FIELD, "/payload/event/data");
  /* the order of checks is scope before payload */
  expect_pub_err("{\"scope\":{\"type\":\"x\"},\"payload\":1}", HB_E_INVALID_SCOPE, "/scope/type");
}

static void test_pubreq_data_too_large(void **state) {
  (void)state;
  char body[512];
  snprintf(body, sizeof body, "{\"scope\":" PUB_OK_SCOPE ",\"payload\":{\"event\":{\"eventName\":\"x\","
                              "\"data\":{\"k\":\"0123456789\"}}}}");
  hb_pubreq r;
  hb_error e;
  memset(&e, 0, sizeof e);
  assert_int_equal(pubreq_decode(body, strlen(body), 18, &r, &e), HB_OK);
  hb_pubreq_clear(&r);
  assert_int_equal(pubreq_decode(body, strlen(body), 17, &r, &e), HB_E_DATA_TOO_LARGE);
  assert_string_equal(e.pointer, "/payload/event/data");
  assert_null(r.data);
  hb_pubreq_clear(&r);
}

/* --- connection-token body ------------------------------------------------ */

static void test_ctreq_ok(void **state) {
  (void)state;
  hb_ctreq r;
  hb_error e;
  const char *body = "{\"event_id\":\"" U1 "\",\"session_id\":\"" U2 "\"}";
  assert_int_equal(hb_ctreq_decode(body, strlen(body), &r, &e), HB_OK);
  assert_string_equal(r.user_id, "anonymous");
  assert_int_equal(r.scopes, HB_SCOPE_SET_DEFAULT);
  assert_int_equal(r.ttl_s, HB_CONN_TOKEN_DEFAULT_TTL_S);
  hb_uuid u1;
  hb_uuid_parse(U1, 36, &u1);
  assert_true(hb_uuid_eq(&r.event_id, &u1));

  body = "{\"event_id\":\"" U1 "\",\"session_id\":\"" U2 "\",\"user_id\":\"alice\","
         "\"scopes\":[\"session\",\"event\",\"organization\"],\"ttl\":86400,\"x\":1}";
  assert_int_equal(hb_ctreq_decode(body, strlen(body), &r, &e), HB_OK);
  assert_string_equal(r.user_id, "alice");
  assert_int_equal(r.scopes, 7u);
  assert_int_equal(r.ttl_s, 86400);

  body = "{\"event_id\":\"" U1 "\",\"session_id\":\"" U2 "\",\"scopes\":[],\"ttl\":1}";
  assert_int_equal(hb_ctreq_decode(body, strlen(body), &r, &e), HB_OK);
  assert_int_equal(r.scopes, 0u); /* subscribe-only client */
  assert_int_equal(r.ttl_s, 1);

  char buf[512];
  snprintf(buf, sizeof buf, "{\"event_id\":\"" U1 "\",\"session_id\":\"" U2 "\",\"user_id\":\"%0128d\"}", 0);
  assert_int_equal(hb_ctreq_decode(buf, strlen(buf), &r, &e), HB_OK);
  assert_int_equal(strlen(r.user_id), 128);
}

#define CT_IDS "\"event_id\":\"" U1 "\",\"session_id\":\"" U2 "\""

static void test_ctreq_errors(void **state) {
  (void)state;
  expect_ct_err("{", HB_E_INVALID_JSON, "");
  expect_ct_err("[]", HB_E_INVALID_TYPE, HB_POINTER_ROOT);
  expect_ct_err("{}", HB_E_MISSING_FIELD, "/event_id");
  expect_ct_err("{\"event_id\":1}", HB_E_INVALID_TYPE, "/event_id");
  expect_ct_err("{\"event_id\":\"nope\"}", HB_E_INVALID_UUID, "/event_id");
  expect_ct_err("{\"event_id\":\"" U1 "\"}", HB_E_MISSING_FIELD, "/session_id");
  expect_ct_err("{\"event_id\":\"" U1 "\",\"session_id\":false}", HB_E_INVALID_TYPE, "/session_id");
  expect_ct_err("{\"event_id\":\"" U1 "\",\"session_id\":\"\"}", HB_E_INVALID_UUID, "/session_id");
  expect_ct_err("{" CT_IDS ",\"user_id\":1}", HB_E_INVALID_TYPE, "/user_id");
  expect_ct_err("{" CT_IDS ",\"user_id\":null}", HB_E_INVALID_TYPE, "/user_id");
  expect_ct_err("{" CT_IDS ",\"user_id\":\"\"}", HB_E_INVALID_VALUE, "/user_id");
  expect_ct_err("{" CT_IDS ",\"user_id\":\"a\\tb\"}", HB_E_INVALID_VALUE, "/user_id");
  expect_ct_err("{" CT_IDS ",\"user_id\":\"a\\u0000b\"}", HB_E_INVALID_VALUE, "/user_id");
  char buf[512];
  snprintf(buf, sizeof buf, "{" CT_IDS ",\"user_id\":\"%0129d\"}", 0);
  expect_ct_err(buf, HB_E_INVALID_VALUE, "/user_id");
  expect_ct_err("{" CT_IDS ",\"scopes\":\"session\"}", HB_E_INVALID_TYPE, "/scopes");
  expect_ct_err("{" CT_IDS ",\"scopes\":{}}", HB_E_INVALID_TYPE, "/scopes");
  expect_ct_err("{" CT_IDS ",\"scopes\":[\"room\"]}", HB_E_INVALID_SCOPE, "/scopes/0");
  expect_ct_err("{" CT_IDS ",\"scopes\":[\"session\",\"Event\"]}", HB_E_INVALID_SCOPE, "/scopes/1");
  expect_ct_err("{" CT_IDS ",\"scopes\":[\"session\",1]}", HB_E_INVALID_TYPE, "/scopes/1");
  expect_ct_err("{" CT_IDS ",\"scopes\":[\"event\",\"event\"]}", HB_E_INVALID_VALUE, "/scopes/1");
  expect_ct_err("{" CT_IDS ",\"ttl\":\"60\"}", HB_E_INVALID_TYPE, "/ttl");
  expect_ct_err("{" CT_IDS ",\"ttl\":60.0}", HB_E_INVALID_TYPE, "/ttl");
  expect_ct_err("{" CT_IDS ",\"ttl\":1.5}", HB_E_INVALID_TYPE, "/ttl");
  expect_ct_err("{" CT_IDS ",\"ttl\":null}", HB_E_INVALID_TYPE, "/ttl");
  expect_ct_err("{" CT_IDS ",\"ttl\":0}", HB_E_INVALID_VALUE, "/ttl");
  expect_ct_err("{" CT_IDS ",\"ttl\":-1}", HB_E_INVALID_VALUE, "/ttl");
  expect_ct_err("{" CT_IDS ",\"ttl\":86401}", HB_E_INVALID_VALUE, "/ttl");
  expect_ct_err("{" CT_IDS ",\"info\":\"Ada\"}", HB_E_INVALID_TYPE, "/info");
  expect_ct_err("{" CT_IDS ",\"info\":[]}", HB_E_INVALID_TYPE, "/info");
  expect_ct_err("{" CT_IDS ",\"info\":null}", HB_E_INVALID_TYPE, "/info");
  char big[2048];
  snprintf(big, sizeof big, "{" CT_IDS ",\"info\":{\"n\":\"%01020d\"}}", 0);
  expect_ct_err(big, HB_E_INVALID_VALUE, "/info");
}

/* presence.subscribe / unsubscribe / get: scope, cursor, limit. */
static void test_cmsg_presence(void **state) {
  (void)state;
  hb_cmsg m;
  hb_error e;
  assert_int_equal(cmsg("{\"type\":\"presence.subscribe\",\"id\":\"p1\"}", &m, &e), HB_OK);
  assert_int_equal(m.type, HB_CMSG_PRESENCE_SUBSCRIBE);
  assert_int_equal(m.scope, HB_SCOPE_SESSION);
  assert_string_equal(m.id, "p1");
  assert_int_equal(cmsg("{\"type\":\"presence.unsubscribe\",\"scope\":\"event\"}", &m, &e), HB_OK);
  assert_int_equal(m.type, HB_CMSG_PRESENCE_UNSUBSCRIBE);
  assert_int_equal(m.scope, HB_SCOPE_EVENT);
  assert_int_equal(cmsg("{\"type\":\"presence.get\",\"scope\":\"event\",\"cursor\":\"18446744073709551615\","
                        "\"limit\":1000}",
                        &m, &e),
                   HB_OK);
  assert_int_equal(m.type, HB_CMSG_PRESENCE_GET);
  assert_true(m.cursor == UINT64_MAX);
  assert_int_equal(m.limit, 1000);
  assert_int_equal(cmsg("{\"type\":\"presence.get\"}", &m, &e), HB_OK);
  assert_true(m.cursor == 0 && m.limit == 0);
  expect_cmsg_err("{\"type\":\"presence.subscribe\",\"scope\":\"organization\"}", HB_E_INVALID_SCOPE, "/scope");
  expect_cmsg_err("{\"type\":\"presence.subscribe\",\"scope\":\"room\"}", HB_E_INVALID_SCOPE, "/scope");
  expect_cmsg_err("{\"type\":\"presence.subscribe\",\"scope\":1}", HB_E_INVALID_TYPE, "/scope");
  expect_cmsg_err("{\"type\":\"presence.get\",\"cursor\":5}", HB_E_INVALID_TYPE, "/cursor");
  expect_cmsg_err("{\"type\":\"presence.get\",\"cursor\":\"\"}", HB_E_INVALID_VALUE, "/cursor");
  expect_cmsg_err("{\"type\":\"presence.get\",\"cursor\":\"01\"}", HB_E_INVALID_VALUE, "/cursor");
  expect_cmsg_err("{\"type\":\"presence.get\",\"cursor\":\"-1\"}", HB_E_INVALID_VALUE, "/cursor");
  expect_cmsg_err("{\"type\":\"presence.get\",\"cursor\":\"18446744073709551616\"}", HB_E_INVALID_VALUE, "/cursor");
  expect_cmsg_err("{\"type\":\"presence.get\",\"limit\":0}", HB_E_INVALID_VALUE, "/limit");
  expect_cmsg_err("{\"type\":\"presence.get\",\"limit\":1001}", HB_E_INVALID_VALUE, "/limit");
  expect_cmsg_err("{\"type\":\"presence.get\",\"limit\":\"5\"}", HB_E_INVALID_TYPE, "/limit");
  expect_cmsg_err("{\"type\":\"presence\"}", HB_E_UNKNOWN_TYPE, "/type");
}

/* --- server messages ------------------------------------------------------ */

static void expect_sb(hb_strbuf *sb, const char *want) {
  assert_non_null(sb->buf);
  assert_string_equal(sb->buf, want);
  assert_int_equal(sb->len, strlen(want));
  hb_strbuf_free(sb);
}

static void test_smsg_simple(void **state) {
  (void)state;
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_smsg_ack(&sb, "c3", 2, "6f9619ff-8b86-4011-b42d-00c04fc964ff");
  expect_sb(&sb, "{\"type\":\"ack\",\"id\":\"c3\",\"message_id\":\"6f9619ff-8b86-4011-b42d-00c04fc964ff\"}");
  hb_smsg_ack(&sb, "c1", 2, NULL);
  expect_sb(&sb, "{\"type\":\"ack\",\"id\":\"c1\"}");
  hb_smsg_ack(&sb, "a\"\\b", 4, NULL);
  expect_sb(&sb, "{\"type\":\"ack\",\"id\":\"a\\\"\\\\b\"}");
  hb_smsg_pong(&sb, "p1", 2);
  expect_sb(&sb, "{\"type\":\"pong\",\"id\":\"p1\"}");
  hb_smsg_pong(&sb, NULL, 0);
  expect_sb(&sb, "{\"type\":\"pong\"}");

  hb_error e;
  hb_error_set(&e, HB_E_SCOPE_FORBIDDEN, "/scope", "no \"event\" scope");
  hb_smsg_error(&sb, "c3", 2, &e);
  expect_sb(&sb, "{\"type\":\"error\",\"id\":\"c3\",\"code\":\"scope_forbidden\",\"message\":\"no \\\"event\\\" scope\"}");
  hb_smsg_error(&sb, NULL, 0, &e);
  expect_sb(&sb, "{\"type\":\"error\",\"code\":\"scope_forbidden\",\"message\":\"no \\\"event\\\" scope\"}");
  /* appends, never resets */
  hb_strbuf_addstr(&sb, "X");
  hb_smsg_pong(&sb, NULL, 0);
  expect_sb(&sb, "X{\"type\":\"pong\"}");
}

static void test_smsg_welcome(void **state) {
  (void)state;
  hb_uuid o, p, ev, s;
  hb_uuid_parse("00000000-0000-4000-8000-000000000001", 36, &o);
  hb_uuid_parse("00000000-0000-4000-8000-000000000002", 36, &p);
  hb_uuid_parse("00000000-0000-4000-8000-000000000003", 36, &ev);
  hb_uuid_parse("00000000-0000-4000-8000-0000000000AB", 36, &s);
  hb_welcome w = {
      .connection_id = "11111111-2222-4333-8444-555555555555",
      .org = &o, .plugin = &p, .event = &ev, .session = &s,
      .user_id = "al\"ice",
      .scopes = HB_SCOPE_BIT(HB_SCOPE_ORGANIZATION) | HB_SCOPE_BIT(HB_SCOPE_SESSION),
      .expires_at = 1790000000,
      .max_message_bytes = 65536, .max_data_bytes = 32768, .max_subscriptions = 256,
      .presence_list_max = 100, .ping_interval_ms = 25000,
  };
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_smsg_welcome(&sb, &w);
  expect_sb(&sb,
            "{\"type\":\"welcome\",\"protocol\":1,\"connection_id\":\"11111111-2222-4333-8444-555555555555\","
            "\"room\":{\"organization_id\":\"00000000-0000-4000-8000-000000000001\","
            "\"plugin_id\":\"00000000-0000-4000-8000-000000000002\","
            "\"event_id\":\"00000000-0000-4000-8000-000000000003\","
            "\"session_id\":\"00000000-0000-4000-8000-0000000000ab\"},"
            "\"user_id\":\"al\\\"ice\",\"scopes\":[\"session\",\"organization\"],\"expires_at\":1790000000,"
            "\"ping_interval_ms\":25000,"
            "\"limits\":{\"max_message_bytes\":65536,\"max_data_bytes\":32768,\"max_subscriptions\":256,"
            "\"presence_list_max\":100}}");
  w.scopes = 0;
  hb_smsg_welcome(&sb, &w);
  assert_non_null(strstr(sb.buf, "\"scopes\":[],"));
  hb_strbuf_free(&sb);
  /* the numbers are written by hand: the same digits as printf, at the edges */
  const int64_t exps[] = {0, 9, 10, -1, -10, 1790000000, INT64_MAX, INT64_MIN};
  const size_t sizes[] = {0, 1, 99, 1073741824, SIZE_MAX};
  const int pings[] = {0, 7, 25000, 2147483647};
  for (size_t i = 0; i < sizeof exps / sizeof *exps; i++) {
    w.expires_at = exps[i];
    w.max_message_bytes = sizes[i % 5];
    w.max_data_bytes = sizes[(i + 1) % 5];
    w.max_subscriptions = sizes[(i + 2) % 5];
    w.presence_list_max = sizes[(i + 3) % 5];
    w.ping_interval_ms = pings[i % 4];
    char want[512];
    snprintf(want, sizeof want,
             "\"expires_at\":%lld,\"ping_interval_ms\":%d,\"limits\":{\"max_message_bytes\":%zu,"
             "\"max_data_bytes\":%zu,\"max_subscriptions\":%zu,\"presence_list_max\":%zu}}",
             (long long)w.expires_at, w.ping_interval_ms, w.max_message_bytes, w.max_data_bytes,
             w.max_subscriptions, w.presence_list_max);
    hb_smsg_welcome(&sb, &w);
    assert_true(sb.len > strlen(want));
    assert_string_equal(sb.buf + sb.len - strlen(want), want);
    hb_strbuf_free(&sb);
  }
}

static void test_smsg_event(void **state) {
  (void)state;
  hb_strbuf sb = HB_STRBUF_INIT;
  const char *data = "{\"custom\":\"payload\",\"n\":0.1}";
  smsg_event(&sb, "say-hello", 9, data, strlen(data), HB_SCOPE_SESSION,
                "6f9619ff-8b86-4011-b42d-00c04fc964ff", 1790000000123LL);
  expect_sb(&sb, "{\"type\":\"event\",\"eventName\":\"say-hello\",\"data\":{\"custom\":\"payload\",\"n\":0.1},"
                 "\"scope\":\"session\",\"message_id\":\"6f9619ff-8b86-4011-b42d-00c04fc964ff\","
                 "\"sent_at\":1790000000123,\"offset\":7}");
  smsg_event(&sb, "e", 1, "{}", 2, HB_SCOPE_ORGANIZATION, "m", 0);
  expect_sb(&sb, "{\"type\":\"event\",\"eventName\":\"e\",\"data\":{},\"scope\":\"organization\","
                 "\"message_id\":\"m\",\"sent_at\":0,\"offset\":7}");
  smsg_event(&sb, "e", 1, "{}", 2, HB_SCOPE_EVENT, "m", -5);
  expect_sb(&sb, "{\"type\":\"event\",\"eventName\":\"e\",\"data\":{},\"scope\":\"event\","
                 "\"message_id\":\"m\",\"sent_at\":-5,\"offset\":7}");
  /* names are validated upstream, but the encoder still escapes */
  smsg_event(&sb, "a\"\\\n", 4, "{}", 2, HB_SCOPE_EVENT, "m\"", 0);
  expect_sb(&sb, "{\"type\":\"event\",\"eventName\":\"a\\\"\\\\\\n\",\"data\":{},\"scope\":\"event\","
                 "\"message_id\":\"m\\\"\",\"sent_at\":0,\"offset\":7}");
  smsg_event(&sb, "e", 1, "{}", 2, HB_SCOPE_EVENT, "m", INT64_MAX);
  expect_sb(&sb, "{\"type\":\"event\",\"eventName\":\"e\",\"data\":{},\"scope\":\"event\","
                 "\"message_id\":\"m\",\"sent_at\":9223372036854775807,\"offset\":7}");
  smsg_event(&sb, "e", 1, "{}", 2, HB_SCOPE_EVENT, "m", INT64_MIN);
  expect_sb(&sb, "{\"type\":\"event\",\"eventName\":\"e\",\"data\":{},\"scope\":\"event\","
                 "\"message_id\":\"m\",\"sent_at\":-9223372036854775808,\"offset\":7}");
}

/* An event built from a decoded publish carries the publisher's exact bytes. */
static void test_roundtrip_publish_to_event(void **state) {
  (void)state;
  const char *in = "{\"type\":\"publish\",\"eventName\":\"n\",\"data\":{\"a\":-0,\"b\":1E2,\"c\":\"\\u00e9\"}}";
  hb_cmsg m;
  hb_error e;
  assert_int_equal(cmsg(in, &m, &e), HB_OK);
  hb_strbuf sb = HB_STRBUF_INIT;
  smsg_event(&sb, m.event_name, m.event_name_len, m.data, m.data_len, m.scope, "m", 1);
  expect_sb(&sb, "{\"type\":\"event\",\"eventName\":\"n\",\"data\":{\"a\":-0,\"b\":1E2,\"c\":\"\\u00e9\"},"
                 "\"scope\":\"session\",\"message_id\":\"m\",\"sent_at\":1,\"offset\":7}");
  hb_cmsg_clear(&m);
}

static void test_http_error_body(void **state) {
  (void)state;
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_error e;
  hb_error_set(&e, HB_E_INVALID_UUID, "/scope/event_id", "event_id is not a UUID");
  hb_http_error_body(&sb, &e);
  expect_sb(&sb, "{\"error\":{\"code\":\"invalid_uuid\",\"message\":\"event_id is not a UUID\","
                 "\"pointer\":\"/scope/event_id\"}}");
  hb_error_set(&e, HB_E_MISSING_TOKEN, NULL, NULL);
  hb_http_error_body(&sb, &e);
  expect_sb(&sb, "{\"error\":{\"code\":\"missing_token\",\"message\":\"no token given\"}}");
  hb_error_set(&e, HB_E_INVALID_TYPE, HB_POINTER_ROOT, "the body must be a JSON object");
  hb_http_error_body(&sb, &e);
  expect_sb(&sb, "{\"error\":{\"code\":\"invalid_type\",\"message\":\"the body must be a JSON object\","
                 "\"pointer\":\"\"}}");
  /* decoded errors go straight into the body */
  hb_pubreq r;
  memset(&e, 0, sizeof e);
  assert_int_equal(pubreq_decode("[1]", 3, MAX_DATA, &r, &e), HB_E_INVALID_TYPE);
  hb_http_error_body(&sb, &e);
  assert_non_null(strstr(sb.buf, ",\"pointer\":\"\"}}"));
  hb_strbuf_free(&sb);
  hb_pubreq_clear(&r);
  /* a pointer with characters that need escaping */
  hb_error_set(&e, HB_E_INVALID_VALUE, "/a\"b", NULL);
  hb_http_error_body(&sb, &e);
  expect_sb(&sb, "{\"error\":{\"code\":\"invalid_value\",\"message\":\"a value is out of range\","
                 "\"pointer\":\"/a\\\"b\"}}");
}

static void test_error_messages_do_not_echo(void **state) {
  (void)state;
  /* jansson says "near '<token>'": that part is cut. */
  hb_cmsg m;
  hb_error e;
  assert_int_equal(cmsg("{\"type\":SECRETTOKEN}", &m, &e), HB_E_INVALID_JSON);
  assert_null(strstr(e.message, "SECRET"));
  hb_cmsg_clear(&m);
}

/* jansson's allocations during a decode come from a fixed stack arena
 * (envelope.c); a body whose tree does not fit spills to malloc, and frees
 * of both kinds must go to the right place. jansson outside a decode uses
 * malloc as before: what json_dumps returns is released with free(). */
static void test_arena_spill_and_outside_use(void **state) {
  (void)state;
  hb_strbuf data = HB_STRBUF_INIT;
  hb_strbuf_addch(&data, '{');
  for (int i = 0; i < 3000; i++) hb_strbuf_addf(&data, "%s\"key%d\":[\"v%d\",{\"n\":%d}]", i ? "," : "", i, i, i);
  hb_strbuf_addch(&data, '}');
  hb_strbuf body = HB_STRBUF_INIT;
  hb_strbuf_addstr(&body, "{\"scope\":" PUB_OK_SCOPE ",\"payload\":{\"event\":{\"eventName\":\"big\",\"data\":");
  hb_strbuf_add(&body, data.buf, data.len);
  hb_strbuf_addstr(&body, "}}}");
  hb_pubreq r;
  hb_error e;
  memset(&e, 0, sizeof e);
  assert_int_equal(pubreq_decode(body.buf, body.len, 1 << 20, &r, &e), HB_OK);
  assert_int_equal(r.data_len, data.len);
  assert_memory_equal(r.data, data.buf, data.len);
  hb_pubreq_clear(&r);

  /* the same tree, then a duplicate key at its very end: the error path
   * releases a half-built tree from both the arena and malloc */
  body.len -= 4; /* drop "}}}" and the closing brace of data */
  hb_strbuf_addstr(&body, ",\"key0\":1}}}}");
  assert_int_equal(pubreq_decode(body.buf, body.len, 1 << 20, &r, &e), HB_E_INVALID_JSON);
  hb_pubreq_clear(&r);

  hb_cmsg m;
  const char *msg = "{\"type\":\"publish\",\"eventName\":\"e\",\"data\":{\"a\":[1,2,3]}}";
  assert_int_equal(cmsg_decode(msg, strlen(msg), MAX_DATA, &m, &e), HB_OK);
  assert_memory_equal(m.data, "{\"a\":[1,2,3]}", m.data_len);
  hb_cmsg_clear(&m);

  json_t *o = json_pack("{s:s,s:[i,i]}", "a", "b", "c", 1, 2);
  assert_non_null(o);
  char *s = json_dumps(o, JSON_COMPACT);
  assert_string_equal(s, "{\"a\":\"b\",\"c\":[1,2]}");
  free(s); /* jansson's allocator outside a decode is malloc (admin.c relies on it) */
  json_decref(o);
  hb_strbuf_free(&data);
  hb_strbuf_free(&body);
}

/* --- the fast path and the jansson path agree ------------------------------ */

typedef struct {
  const char *text;
  bool fast; /* expected to be decoded without jansson */
} fast_case;

static void same_cmsg(const char *s, bool want_fast) {
  hb_cmsg a, b;
  hb_error ea, eb;
  memset(&ea, 0, sizeof ea);
  memset(&eb, 0, sizeof eb);
  unsigned long before = fast_decodes();
  hb_err ra = hb_cmsg_decode(s, strlen(s), 64, &a, &ea);
  bool was_fast = fast_decodes() != before;
  hb_err rb = hb_cmsg_decode_tree(s, strlen(s), 64, &b, &eb);
  if (was_fast != want_fast) fail_msg("%s: fast path %d, want %d", s, was_fast, want_fast);
  if (ra != rb) fail_msg("%s: %s vs %s", s, hb_err_code(ra), hb_err_code(rb));
  assert_int_equal(a.type, b.type);
  assert_int_equal(a.has_id, b.has_id);
  assert_int_equal(a.id_len, b.id_len);
  assert_memory_equal(a.id, b.id, a.id_len);
  assert_int_equal(a.event_name_len, b.event_name_len);
  assert_memory_equal(a.event_name, b.event_name, a.event_name_len);
  assert_int_equal(a.data_len, b.data_len);
  if (a.data_len) assert_memory_equal(a.data, b.data, a.data_len);
  if (ra == HB_OK) assert_int_equal(a.scope, b.scope);
  assert_string_equal(ea.message, eb.message);
  hb_cmsg_clear(&a);
  hb_cmsg_clear(&b);
}

static void same_pubreq(const char *s, bool want_fast) {
  hb_pubreq a, b;
  hb_error ea, eb;
  memset(&ea, 0, sizeof ea);
  memset(&eb, 0, sizeof eb);
  unsigned long before = fast_decodes();
  hb_err ra = hb_pubreq_decode(s, strlen(s), 64, &a, &ea);
  bool was_fast = fast_decodes() != before;
  hb_err rb = hb_pubreq_decode_tree(s, strlen(s), 64, &b, &eb);
  if (was_fast != want_fast) fail_msg("%s: fast path %d, want %d", s, was_fast, want_fast);
  if (ra != rb) fail_msg("%s: %s vs %s", s, hb_err_code(ra), hb_err_code(rb));
  assert_int_equal(a.scope, b.scope);
  assert_true(hb_uuid_eq(&a.event_id, &b.event_id));
  assert_true(hb_uuid_eq(&a.session_id, &b.session_id));
  assert_int_equal(a.event_name_len, b.event_name_len);
  assert_memory_equal(a.event_name, b.event_name, a.event_name_len);
  assert_int_equal(a.data_len, b.data_len);
  if (a.data_len) assert_memory_equal(a.data, b.data, a.data_len);
  assert_string_equal(ea.message, eb.message);
  hb_pubreq_clear(&a);
  hb_pubreq_clear(&b);
}

static void test_fast_path_agrees(void **state) {
  (void)state;
  static const fast_case cmsgs[] = {
      {"{\"type\":\"publish\",\"eventName\":\"a\",\"data\":{\"x\":[1,2,{\"y\":null}]}}", true},
      {" {\"id\":\"r1\", \"type\":\"subscribe\", \"eventName\":\"chat:msg\"} ", true},
      {"{\"type\":\"unsubscribe\",\"eventName\":\"a\",\"data\":5}", true}, /* data ignored */
      {"{\"type\":\"ping\"}", true},
      {"{\"type\":\"ping\",\"id\":\"p\",\"eventName\":7}", true},
      {"{\"type\":\"publish\",\"eventName\":\"a\",\"data\":{},\"scope\":\"event\"}", true},
      {"{\"type\":\"publish\",\"eventName\":\"a\",\"data\":{\"n\":1e400,\"m\":12345678901234567890123}}", true},
      {"{\"type\":\"publish\",\"eventName\":\"a\",\"data\":{\"s\":\"caf\\u00e9 \\\"q\\\"\"}}", true},
      /* left to jansson: escapes in fields we read, escaped keys, surrogates */
      {"{\"type\":\"publ\\u0069sh\",\"eventName\":\"a\",\"data\":{}}", false},
      {"{\"t\\u0079pe\":\"ping\"}", false},
      {"{\"type\":\"publish\",\"eventName\":\"a\",\"data\":{\"e\":\"\\ud83d\\ude00\"}}", false},
      {"{\"id\":\"a\\\"b\",\"type\":\"ping\"}", false},
      /* and every error */
      {"{\"type\":\"publish\",\"eventName\":\"a\",\"data\":{\"x\":\"" "0123456789012345678901234567890123456789012345678901234567890123" "\"}}", false},
      {"{\"type\":\"publish\",\"eventName\":\"a\",\"data\":[]}", false},
      {"{\"type\":\"publish\",\"eventName\":\"a\"}", false},
      {"{\"type\":\"publish\",\"eventName\":\"a\",\"data\":{},\"scope\":\"world\"}", false},
      {"{\"type\":\"publish\",\"eventName\":\"a\",\"data\":{},\"scope\":1}", false},
      {"{\"type\":\"publish\",\"eventName\":\"a b\",\"data\":{}}", false},
      {"{\"type\":\"subscribe\"}", false},
      {"{\"type\":\"nope\"}", false},
      {"{\"type\":\"ping\",\"type\":\"ping\"}", false},
      {"{\"id\":\"\",\"type\":\"ping\"}", false},
      {"{\"id\":\"\x7f\",\"type\":\"ping\"}", false},
      {"{\"id\":5,\"type\":\"ping\"}", false},
      {"[]", false},
      {"{\"type\":\"ping\"} x", false},
  };
  for (size_t i = 0; i < sizeof cmsgs / sizeof cmsgs[0]; i++) same_cmsg(cmsgs[i].text, cmsgs[i].fast);

#define SC_SESSION "{\"type\":\"session\",\"event_id\":\"" U1 "\",\"session_id\":\"" U2 "\"}"
  static const fast_case bodies[] = {
      {"{\"scope\":" SC_SESSION ",\"payload\":{\"event\":{\"eventName\":\"b\",\"data\":{\"s\":1}}}}", true},
      {"{\"payload\":{\"event\":{\"data\":{},\"eventName\":\"b\"}},\"scope\":{\"type\":\"organization\"}}", true},
      {"{\"scope\":{\"type\":\"event\",\"event_id\":\"" U1 "\",\"session_id\":false},"
       "\"payload\":{\"event\":{\"eventName\":\"b\",\"data\":{}}},\"extra\":[1,{\"scope\":2}]}", true},
      {"{\"scope\":{\"type\":\"event\",\"event_id\":\"" U1 "\"},\"payload\":{\"event\":{\"eventName\":\"b\",\"data\":{\"scope\":{\"type\":1}}}}}", true},
      {"{\"scope\":{\"type\":\"organization\",\"event_id\":\"x\"},\"payload\":{\"event\":{\"eventName\":\"b\",\"data\":{}}}}", true},
      {"{\"scope\":{\"type\":\"se\\u0073sion\"},\"payload\":{\"event\":{\"eventName\":\"b\",\"data\":{}}}}", false},
      {"{\"scope\":{\"type\":\"session\",\"event_id\":\"" U1 "\"},\"payload\":{\"event\":{\"eventName\":\"b\",\"data\":{}}}}", false},
      {"{\"scope\":{\"type\":\"event\",\"event_id\":\"nope\"},\"payload\":{\"event\":{\"eventName\":\"b\",\"data\":{}}}}", false},
      {"{\"scope\":{\"type\":\"organization\"},\"payload\":{\"event\":{\"eventName\":\"b\"}}}", false},
      {"{\"scope\":{\"type\":\"organization\"},\"payload\":{\"event\":{\"eventName\":\"\",\"data\":{}}}}", false},
      {"{\"scope\":{\"type\":\"organization\"},\"payload\":{\"event\":[]}}", false},
      {"{\"scope\":{\"type\":\"organization\"},\"payload\":{\"event\":{\"eventName\":\"b\",\"data\":{}}},\"payload\":1}", false},
      {"{\"scope\":\"organization\",\"payload\":{\"event\":{\"eventName\":\"b\",\"data\":{}}}}", false},
      {"{}", false},
      {"", false},
  };
  for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) same_pubreq(bodies[i].text, bodies[i].fast);
}

static void test_name_list(void **state) {
  (void)state;
  static const struct {
    const char *list;
    const char *want; /* the names joined with '|' */
  } cases[] = {{"", ""}, {"a", "a"}, {"a,bc", "a|bc"}, {"a,,b", "a||b"}, {"a,", "a|"}, {",", "|"}, {",a", "|a"}};
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    char got[32] = "";
    size_t pos = 0, len, n = 0;
    const char *name;
    while (hb_event_name_list_next(cases[k].list, strlen(cases[k].list), &pos, &name, &len)) {
      n += (size_t)snprintf(got + n, sizeof got - n, "%s%.*s", n || name != cases[k].list ? "|" : "", (int)len, name);
    }
    if (strcmp(got, cases[k].want) != 0) fail_msg("\"%s\": got \"%s\", want \"%s\"", cases[k].list, got, cases[k].want);
  }
}

int main(void) {
  hb_json_init(); /* as the server does: every test decodes through the arena */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_event_name, setup, teardown),
      cmocka_unit_test_setup_teardown(test_name_list, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cmsg_ok, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cmsg_presence, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cmsg_invalid_json, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cmsg_invalid_json_keeps_no_id, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cmsg_id, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cmsg_error_carries_id, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cmsg_type, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cmsg_event_name, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cmsg_publish_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cmsg_data_too_large, setup, teardown),
      cmocka_unit_test_setup_teardown(test_raw_numbers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_raw_big_numbers_still_validated, setup, teardown),
      cmocka_unit_test_setup_teardown(test_raw_strings_and_nesting, setup, teardown),
      cmocka_unit_test_setup_teardown(test_depth_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_invalid_utf8, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pubreq_ok, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pubreq_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pubreq_data_too_large, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ctreq_ok, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ctreq_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_smsg_simple, setup, teardown),
      cmocka_unit_test_setup_teardown(test_smsg_welcome, setup, teardown),
      cmocka_unit_test_setup_teardown(test_smsg_event, setup, teardown),
      cmocka_unit_test_setup_teardown(test_roundtrip_publish_to_event, setup, teardown),
      cmocka_unit_test_setup_teardown(test_http_error_body, setup, teardown),
      cmocka_unit_test_setup_teardown(test_error_messages_do_not_echo, setup, teardown),
      cmocka_unit_test_setup_teardown(test_arena_spill_and_outside_use, setup, teardown),
      cmocka_unit_test_setup_teardown(test_fast_path_agrees, setup, teardown),
  };
  /* Every test twice: as the server decodes (the fast path first), and with
   * jansson alone, so each error and value is pinned on both paths. */
  int failed = cmocka_run_group_tests_name("envelope", tests, NULL, NULL);
  tree_only = true;
  failed += cmocka_run_group_tests_name("envelope, jansson only", tests, NULL, NULL);
  return failed;
}
