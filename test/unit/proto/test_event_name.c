/* test_event_name.c - the event-name rule and comma-separated name lists (event_name.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

#include "hubbub/alloc.h"
#include "hubbub/event_name.h"
#include "hubbub/limits.h"

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
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_event_name),
      HBT_TEST(test_name_list),
  };
  return cmocka_run_group_tests_name("event_name", tests, NULL, NULL);
}
