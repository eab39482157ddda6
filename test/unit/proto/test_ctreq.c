/* test_ctreq.c - the connection-token body (ctreq.c): defaults, every error code and pointer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

#include "hubbub/alloc.h"
#include "hubbub/ctreq.h"
#include "hubbub/json.h"

#define U1 "0b1c7a2e-5f3d-4c1b-9a8e-2d4f6b8c0e1a"
#define U2 "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"

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

/* A ttl beyond int64 is a value out of range, not a parse error (the
 * loader's big-number retry must still give the precise error). */
static void test_ctreq_big_ttl(void **state) {
  (void)state;
  expect_ct_err("{\"event_id\":\"" U1 "\",\"session_id\":\"" U2 "\",\"ttl\":99999999999999999999999}",
                HB_E_INVALID_VALUE, "/ttl");
}

int main(void) {
  hb_json_init(); /* as the server does */
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_ctreq_ok),
      HBT_TEST(test_ctreq_errors),
      HBT_TEST(test_ctreq_big_ttl),
  };
  return cmocka_run_group_tests_name("ctreq", tests, NULL, NULL);
}
