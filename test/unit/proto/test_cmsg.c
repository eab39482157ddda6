/*
 * test_cmsg.c - the client messages (cmsg.c): every error code and pointer,
 * raw `data` forwarding, the depth cap; every test runs twice, as the server
 * decodes (the fast path first) and with the reference tree decoder alone,
 * and the two paths are held to the same result.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "text.h"

#include <stdlib.h>

#include "hubbub/alloc.h"
#include "hubbub/cmsg.h"
#include "hubbub/json.h"
#include "hubbub/metrics.h"
#include "hubbub/strbuf.h"

#define MAX_DATA 32768

/* The second run of every test uses the reference decoder alone (the
 * jansson tree), so each error and value is pinned on both paths. */
static bool tree_only;
static hb_err cmsg_decode(const char *b, size_t n, size_t max, hb_cmsg *m, hb_error *e) {
  return tree_only ? hb_cmsg_decode_tree(b, n, max, m, e) : hb_cmsg_decode(b, n, max, m, e);
}
static unsigned long fast_decodes(void) { return (unsigned long)hb_metric_get(HB_M_JSON_FAST_DECODES); }

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


/* --- success -------------------------------------------------------------- */

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

/* --- errors --------------------------------------------------------------- */

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
  char *ok = hbt_nest(HB_MAX_JSON_DEPTH - 1, "{\"type\":\"publish\",\"eventName\":\"x\",\"data\":", "}");
  /* hbt_nest() alternates objects and arrays starting with an object */
  assert_int_equal(cmsg(ok, &m, &e), HB_OK);
  hb_cmsg_clear(&m);
  hb_free(ok);
  char *deep = hbt_nest(HB_MAX_JSON_DEPTH, "{\"type\":\"publish\",\"eventName\":\"x\",\"data\":", "}");
  expect_cmsg_err(deep, HB_E_INVALID_JSON, "");
  hb_free(deep);
  /* brackets inside strings do not count */
  char buf[512];
  snprintf(buf, sizeof buf, "{\"type\":\"publish\",\"eventName\":\"x\",\"data\":{\"s\":\"%s\"}}",
           "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{\\\"[[[[[");
  assert_int_equal(cmsg(buf, &m, &e), HB_OK);
  hb_cmsg_clear(&m);
  /* a huge depth is refused cheaply, before jansson recurses */
  char *huge = hbt_nest(100000, "", "");
  memset(&e, 0, sizeof e);
  assert_int_equal(cmsg_decode(huge, strlen(huge), MAX_DATA, &m, &e), HB_E_INVALID_JSON);
  hb_cmsg_clear(&m);
  hb_free(huge);
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

}

int main(void) {
  hb_json_init(); /* as the server does: every test decodes through the arena */
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_cmsg_ok),
      HBT_TEST(test_cmsg_presence),
      HBT_TEST(test_cmsg_invalid_json),
      HBT_TEST(test_cmsg_invalid_json_keeps_no_id),
      HBT_TEST(test_cmsg_id),
      HBT_TEST(test_cmsg_error_carries_id),
      HBT_TEST(test_cmsg_type),
      HBT_TEST(test_cmsg_event_name),
      HBT_TEST(test_cmsg_publish_errors),
      HBT_TEST(test_cmsg_data_too_large),
      HBT_TEST(test_raw_numbers),
      HBT_TEST(test_raw_big_numbers_still_validated),
      HBT_TEST(test_raw_strings_and_nesting),
      HBT_TEST(test_depth_limit),
      HBT_TEST(test_error_messages_do_not_echo),
      HBT_TEST(test_fast_path_agrees),
  };
  /* Every test twice: as the server decodes (the fast path first), and with
   * jansson alone, so each error and value is pinned on both paths. */
  int failed = cmocka_run_group_tests_name("cmsg", tests, NULL, NULL);
  tree_only = true;
  failed += cmocka_run_group_tests_name("cmsg, jansson only", tests, NULL, NULL);
  return failed;
}
