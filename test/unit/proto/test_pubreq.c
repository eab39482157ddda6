/*
 * test_pubreq.c - the HTTP publish body (pubreq.c): every error code and
 * pointer, raw `data` forwarding, the depth cap, invalid UTF-8, the decode
 * arena; every test runs twice, as the server decodes (the fast path first)
 * and with the reference tree decoder alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "text.h"

#include <jansson.h>
#include <stdlib.h>

#include "hubbub/alloc.h"
#include "hubbub/cmsg.h"
#include "hubbub/json.h"
#include "hubbub/metrics.h"
#include "hubbub/pubreq.h"
#include "hubbub/strbuf.h"

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

/* --- helpers -------------------------------------------------------------- */

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

static void test_depth_limit(void **state) {
  (void)state;
  hb_error e;
  /* HTTP bodies: same cap */
  char *pub = hbt_nest(HB_MAX_JSON_DEPTH - 3,
                   "{\"scope\":{\"type\":\"organization\"},\"payload\":{\"event\":{\"eventName\":\"x\",\"data\":",
                   "}}}");
  hb_pubreq r;
  memset(&e, 0, sizeof e);
  assert_int_equal(pubreq_decode(pub, strlen(pub), MAX_DATA, &r, &e), HB_OK);
  hb_pubreq_clear(&r);
  hb_free(pub);
  pub = hbt_nest(HB_MAX_JSON_DEPTH - 2,
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

/* jansson's allocations during a decode come from a fixed stack arena
 * (json.c); a body whose tree does not fit spills to malloc, and frees
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

int main(void) {
  hb_json_init(); /* as the server does: every test decodes through the arena */
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_pubreq_ok),
      HBT_TEST(test_pubreq_errors),
      HBT_TEST(test_pubreq_data_too_large),
      HBT_TEST(test_depth_limit),
      HBT_TEST(test_invalid_utf8),
      HBT_TEST(test_arena_spill_and_outside_use),
      HBT_TEST(test_fast_path_agrees),
  };
  /* Every test twice: as the server decodes (the fast path first), and with
   * jansson alone, so each error and value is pinned on both paths. */
  int failed = cmocka_run_group_tests_name("pubreq", tests, NULL, NULL);
  tree_only = true;
  failed += cmocka_run_group_tests_name("pubreq, jansson only", tests, NULL, NULL);
  return failed;
}
