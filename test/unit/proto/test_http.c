/* test_http.c - the HTTP glue (http.c): error bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

#include "hubbub/alloc.h"
#include "hubbub/http.h"
#include "hubbub/json.h"
#include "hubbub/pubreq.h"
#include "hubbub/strbuf.h"

#define MAX_DATA 32768

static void expect_sb(hb_strbuf *sb, const char *want) {
  assert_non_null(sb->buf);
  assert_string_equal(sb->buf, want);
  assert_int_equal(sb->len, strlen(want));
  hb_strbuf_free(sb);
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
  for (int tree = 0; tree < 2; tree++) { /* on both decoding paths */
    hb_pubreq r;
    memset(&e, 0, sizeof e);
    hb_err got = tree ? hb_pubreq_decode_tree("[1]", 3, MAX_DATA, &r, &e) : hb_pubreq_decode("[1]", 3, MAX_DATA, &r, &e);
    assert_int_equal(got, HB_E_INVALID_TYPE);
    hb_http_error_body(&sb, &e);
    assert_non_null(strstr(sb.buf, ",\"pointer\":\"\"}}"));
    hb_strbuf_free(&sb);
    hb_pubreq_clear(&r);
  }
  /* a pointer with characters that need escaping */
  hb_error_set(&e, HB_E_INVALID_VALUE, "/a\"b", NULL);
  hb_http_error_body(&sb, &e);
  expect_sb(&sb, "{\"error\":{\"code\":\"invalid_value\",\"message\":\"a value is out of range\","
                 "\"pointer\":\"/a\\\"b\"}}");
}

int main(void) {
  hb_json_init(); /* as the server does */
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_http_error_body),
  };
  return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
