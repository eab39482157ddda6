/*
 * test_errors.c - the error table (errors.c): every hb_err has a stable
 * code, an HTTP status and a message; the WebSocket close code of a
 * refusal; hb_error_set's defaults and bounds.
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"

#include "hubbub/errors.h"

static void test_every_error(void **state) {
  (void)state;
  for (int e = 0; e < HB_E__COUNT; e++) {
    const char *code = hb_err_code(e);
    const char *msg = hb_err_message(e);
    int status = hb_err_http_status(e);
    assert_non_null(code);
    assert_non_null(msg);
    if (!code[0] || !msg[0]) fail_msg("error %d has an empty code or message", e);
    for (const char *p = code; *p; p++)
      if (!islower((unsigned char)*p) && *p != '_') fail_msg("code '%s' is not snake_case", code);
    for (int k = 0; k < e; k++)
      if (strcmp(code, hb_err_code(k)) == 0) fail_msg("code '%s' used twice", code);
    if (e == HB_OK) assert_int_equal(status, 200);
    else if (!((status >= 400 && status < 432) || status == 500 || status == 503))
      fail_msg("%s: status %d", code, status);
  }
  assert_string_equal(hb_err_code(HB_OK), "ok");
  assert_string_equal(hb_err_code(HB_E_INVALID_UUID), "invalid_uuid");
  assert_int_equal(hb_err_http_status(HB_E_DATA_TOO_LARGE), 413);
  assert_int_equal(hb_err_http_status(HB_E_RATE_LIMITED), 429);
  /* outside the table: internal, never NULL */
  assert_string_equal(hb_err_code(HB_E__COUNT), "internal");
  assert_string_equal(hb_err_code((hb_err)-1), "internal");
  assert_int_equal(hb_err_http_status(HB_E__COUNT), 500);
  assert_non_null(hb_err_message(HB_E__COUNT));
}

/* A refusal at the handshake closes with 4000 + its 4xx status, 1013 for a
 * 503 (try again later), 1011 for anything else; token_revoked with 4410
 * (a 401 that says the user's tokens were revoked). */
static void test_close_codes(void **state) {
  (void)state;
  for (int e = 1; e < HB_E__COUNT; e++) {
    int status = hb_err_http_status(e);
    int want = e == HB_E_TOKEN_REVOKED ? 4410 : status >= 400 && status < 500 ? 4000 + status : status == 503 ? 1013 : 1011;
    if ((int)hb_err_close_code(e) != want) fail_msg("%s: close code %d, want %d", hb_err_code(e), hb_err_close_code(e), want);
  }
  assert_int_equal(hb_err_close_code(HB_E_INVALID_TOKEN), HB_CLOSE_UNAUTHORIZED);
  assert_int_equal(hb_err_close_code(HB_E_TOKEN_EXPIRED), HB_CLOSE_UNAUTHORIZED);
  assert_int_equal(hb_err_close_code(HB_E_TOKEN_REVOKED), HB_CLOSE_TOKEN_REVOKED);
  assert_int_equal(hb_err_close_code(HB_E_ORIGIN_FORBIDDEN), HB_CLOSE_FORBIDDEN);
  assert_int_equal(hb_err_close_code(HB_E_UNKNOWN_TYPE), HB_CLOSE_UNPROCESSABLE);
  assert_int_equal(hb_err_close_code(HB_E_BAD_REQUEST), HB_CLOSE_BAD_REQUEST);
  assert_int_equal(hb_err_close_code(HB_E_SHUTTING_DOWN), HB_CLOSE_TRY_AGAIN_LATER);
  assert_int_equal(hb_err_close_code(HB_E_BROKER_UNAVAILABLE), HB_CLOSE_TRY_AGAIN_LATER);
  assert_int_equal(hb_err_close_code(HB_E_INTERNAL), HB_CLOSE_INTERNAL_ERROR);
}

static void test_error_set(void **state) {
  (void)state;
  hb_error e;
  memset(&e, 'x', sizeof e);
  assert_int_equal(hb_error_set(&e, HB_E_MISSING_TOKEN, NULL, NULL), HB_E_MISSING_TOKEN);
  assert_int_equal(e.err, HB_E_MISSING_TOKEN);
  assert_string_equal(e.pointer, "");
  assert_string_equal(e.message, hb_err_message(HB_E_MISSING_TOKEN));
  hb_error_set(&e, HB_E_INVALID_VALUE, "/ttl", "ttl must be at most %d", 86400);
  assert_string_equal(e.pointer, "/ttl");
  assert_string_equal(e.message, "ttl must be at most 86400");
  /* NULL: only the code comes back */
  assert_int_equal(hb_error_set(NULL, HB_E_INTERNAL, "/x", "y"), HB_E_INTERNAL);
  /* a pointer or message too long is cut, always terminated */
  char long_text[1000];
  memset(long_text, 'p', sizeof long_text - 1);
  long_text[sizeof long_text - 1] = '\0';
  hb_error_set(&e, HB_E_INVALID_TYPE, long_text, "%s", long_text);
  assert_int_equal(strlen(e.pointer), HB_ERROR_POINTER_BYTES - 1);
  assert_int_equal(strlen(e.message), HB_ERROR_MESSAGE_BYTES - 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_every_error),
      HBT_TEST(test_close_codes),
      HBT_TEST(test_error_set),
  };
  return cmocka_run_group_tests_name("errors", tests, NULL, NULL);
}
