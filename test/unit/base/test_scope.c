/* test_scope.c - scope names (scope.c): exactly three, exact case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"

#include "hubbub/scope.h"

static void test_names(void **state) {
  (void)state;
  hb_scope s;
  for (int i = 0; i < HB_SCOPE__COUNT; i++) {
    const char *n = hb_scope_name(i);
    assert_true(hb_scope_parse(n, strlen(n), &s));
    assert_int_equal(s, i);
  }
  assert_string_equal(hb_scope_name(HB_SCOPE_SESSION), "session");
  assert_string_equal(hb_scope_name(HB_SCOPE_EVENT), "event");
  assert_string_equal(hb_scope_name(HB_SCOPE_ORGANIZATION), "organization");
  assert_string_equal(hb_scope_name(HB_SCOPE__COUNT), "?");
  const char *bad[] = {"Session", "sessions", "sessio", "", "room", "org", "event\0"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (hb_scope_parse(bad[i], strlen(bad[i]) + (i == 6), &s)) fail_msg("'%s' accepted", bad[i]);
  assert_int_equal(HB_SCOPE_SET_DEFAULT, HB_SCOPE_BIT(HB_SCOPE_SESSION));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_names),
  };
  return cmocka_run_group_tests_name("scope", tests, NULL, NULL);
}
