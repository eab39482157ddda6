/* test_uuid.c - UUIDs (uuid.c): the strict 8-4-4-4-12 form, lowercase
 * output, version 4 bits, nil. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"

#include "hubbub/uuid.h"

static void test_parse_format(void **state) {
  (void)state;
  hb_uuid u, v;
  char s[HB_UUID_STR_BYTES];
  assert_true(hb_uuid_parse("0B1C7A2E-5f3d-4C1B-9a8e-2D4F6B8C0E1A", 36, &u));
  hb_uuid_format(&u, s);
  assert_string_equal(s, "0b1c7a2e-5f3d-4c1b-9a8e-2d4f6b8c0e1a");
  assert_int_equal(u.b[0], 0x0b);
  assert_int_equal(u.b[15], 0x1a);
  assert_true(hb_uuid_parse(s, 36, &v));
  assert_true(hb_uuid_eq(&u, &v));
  const char *bad[] = {"0b1c7a2e5f3d4c1b9a8e2d4f6b8c0e1a",       "{0b1c7a2e-5f3d-4c1b-9a8e-2d4f6b8c0e1a}",
                       "0b1c7a2e-5f3d-4c1b-9a8e-2d4f6b8c0e1",    "0b1c7a2e-5f3d-4c1b-9a8e-2d4f6b8c0e1ag",
                       "0b1c7a2e_5f3d-4c1b-9a8e-2d4f6b8c0e1a",   "0b1c7a2e-5f3d-4c1b-9a8e-2d4f6b8c0e1g",
                       "0b1c7a2-e5f3d-4c1b-9a8e-2d4f6b8c0e1a",   "urn:uuid:0b1c7a2e-5f3d-4c1b-9a8e-2d4f",
                       " 0b1c7a2e-5f3d-4c1b-9a8e-2d4f6b8c0e1",   ""};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (hb_uuid_parse(bad[i], strlen(bad[i]), &u)) fail_msg("'%s' accepted", bad[i]);
}

static void test_v4_and_nil(void **state) {
  (void)state;
  hb_uuid a, b, nil;
  memset(&nil, 0, sizeof nil);
  assert_true(hb_uuid_is_nil(&nil));
  hb_uuid_v4(&a);
  hb_uuid_v4(&b);
  assert_false(hb_uuid_eq(&a, &b));
  assert_false(hb_uuid_is_nil(&a));
  char s[HB_UUID_STR_BYTES];
  for (int i = 0; i < 100; i++) {
    hb_uuid_v4(&a);
    hb_uuid_format(&a, s);
    assert_int_equal(s[14], '4');                      /* version */
    assert_non_null(strchr("89ab", s[19]));            /* variant */
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_parse_format),
      HBT_TEST(test_v4_and_nil),
  };
  return cmocka_run_group_tests_name("uuid", tests, NULL, NULL);
}
