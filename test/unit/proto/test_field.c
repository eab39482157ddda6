/*
 * test_field.c - the field readers every decoder shares (field.c): each
 * error with its code and the pointer the caller names, the raw `data`
 * span, and the tree-less reader of a text jscan accepted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"

#include "hubbub/alloc.h"
#include "hubbub/field.h"
#include "hubbub/json.h"

static json_t *tree(const char *s) {
  hb_error e;
  json_t *j = hb_json_load(s, strlen(s), &e);
  if (!j) fail_msg("%s: %s", s, e.message);
  return j;
}

static void expect_err(hb_err got, const hb_error *e, hb_err want, const char *pointer) {
  if (got != want) fail_msg("got %s, want %s", hb_err_code(got), hb_err_code(want));
  assert_int_equal(e->err, want);
  assert_string_equal(e->pointer, pointer);
  assert_true(e->message[0] != '\0');
}

static void test_event_name_field(void **state) {
  (void)state;
  json_t *j = tree("{\"ok\":\"a.b\",\"num\":1,\"bad\":\"a b\",\"empty\":\"\"}");
  char out[HB_MAX_EVENT_NAME_BYTES + 1];
  uint8_t len = 0;
  hb_error e;
  assert_int_equal(hb_field_event_name(j, "ok", "/p/ok", out, &len, &e), HB_OK);
  assert_string_equal(out, "a.b");
  assert_int_equal(len, 3);
  expect_err(hb_field_event_name(j, "none", "/p/none", out, &len, &e), &e, HB_E_MISSING_FIELD, "/p/none");
  expect_err(hb_field_event_name(j, "num", "/num", out, &len, &e), &e, HB_E_INVALID_TYPE, "/num");
  expect_err(hb_field_event_name(j, "bad", "/bad", out, &len, &e), &e, HB_E_INVALID_EVENT_NAME, "/bad");
  expect_err(hb_field_event_name(j, "empty", "/empty", out, &len, &e), &e, HB_E_INVALID_EVENT_NAME, "/empty");
  json_decref(j);
}

static void test_object_and_uuid_fields(void **state) {
  (void)state;
  json_t *j = tree("{\"o\":{},\"a\":[],\"u\":\"0b1c7a2e-5f3d-4c1b-9a8e-2d4f6b8c0e1a\",\"n\":null,\"x\":\"nope\"}");
  json_t *o;
  hb_uuid u;
  hb_error e;
  assert_int_equal(hb_field_object(j, "o", "/o", &o, &e), HB_OK);
  assert_true(json_is_object(o));
  expect_err(hb_field_object(j, "a", "/a", &o, &e), &e, HB_E_INVALID_TYPE, "/a");
  expect_err(hb_field_object(j, "m", "/m", &o, &e), &e, HB_E_MISSING_FIELD, "/m");
  assert_int_equal(hb_field_uuid(j, "u", "/u", &u, &e), HB_OK);
  assert_int_equal(u.b[0], 0x0b);
  expect_err(hb_field_uuid(j, "n", "/n", &u, &e), &e, HB_E_INVALID_TYPE, "/n");
  expect_err(hb_field_uuid(j, "x", "/x", &u, &e), &e, HB_E_INVALID_UUID, "/x");
  expect_err(hb_field_uuid(j, "m", "/m", &u, &e), &e, HB_E_MISSING_FIELD, "/m");
  json_decref(j);
}

static void test_top_object(void **state) {
  (void)state;
  json_t *root;
  hb_error e;
  assert_int_equal(hb_field_top_object("{\"a\":1}", 7, &root, &e), HB_OK);
  json_decref(root);
  memset(&e, 0, sizeof e);
  expect_err(hb_field_top_object("[1]", 3, &root, &e), &e, HB_E_INVALID_TYPE, HB_POINTER_ROOT);
  json_decref(root);
  memset(&e, 0, sizeof e);
  expect_err(hb_field_top_object("{", 1, &root, &e), &e, HB_E_INVALID_JSON, "");
  assert_null(root);
}

static void test_data_field(void **state) {
  (void)state;
  const char *text = "{\"payload\":{\"data\":{\"x\" : 0.10}},\"data\":[1]}";
  json_t *j = tree(text);
  json_t *payload = json_object_get(j, "payload");
  const char *const path[] = {"payload", "data"};
  const char *data = NULL;
  size_t len = 0;
  char *owned = NULL;
  hb_error e;
  /* the bytes as written, pointing into the text */
  assert_int_equal(hb_field_data(payload, "/payload/data", text, strlen(text), path, 2, 64, &data, &len, &owned, &e),
                   HB_OK);
  assert_int_equal(len, strlen("{\"x\" : 0.10}"));
  assert_memory_equal(data, "{\"x\" : 0.10}", len);
  assert_true(data > text && data < text + strlen(text));
  assert_null(owned);
  /* over the limit: data_too_large with the caller's pointer */
  expect_err(hb_field_data(payload, "/payload/data", text, strlen(text), path, 2, len - 1, &data, &len, &owned, &e),
             &e, HB_E_DATA_TOO_LARGE, "/payload/data");
  /* not an object, absent */
  expect_err(hb_field_data(j, "/data", text, strlen(text), path, 1, 64, &data, &len, &owned, &e), &e,
             HB_E_INVALID_TYPE, "/data");
  json_t *empty = tree("{}");
  expect_err(hb_field_data(empty, "/data", "{}", 2, path + 1, 1, 64, &data, &len, &owned, &e), &e,
             HB_E_MISSING_FIELD, "/data");
  json_decref(empty);
  json_decref(j);
  hb_free(owned);
}

static void test_plain_data(void **state) {
  (void)state;
  const char *t = "{\"type\":\"publish\",\"data\":{\"a\":[1,2]},\"s\":\"x\"}";
  size_t n = strlen(t), root;
  const char *data;
  size_t len;
  assert_true(hb_json_plain_root(t, n, &root));
  assert_true(hb_field_plain_data(t, n, root, 64, &data, &len));
  assert_memory_equal(data, "{\"a\":[1,2]}", len);
  assert_false(hb_field_plain_data(t, n, root, len - 1, &data, &len)); /* over the limit: the tree decides */
  const char *arr = "{\"data\":[1]}";
  assert_true(hb_json_plain_root(arr, strlen(arr), &root));
  assert_false(hb_field_plain_data(arr, strlen(arr), root, 64, &data, &len));
  const char *none = "{\"d\":{}}";
  assert_true(hb_json_plain_root(none, strlen(none), &root));
  assert_false(hb_field_plain_data(none, strlen(none), root, 64, &data, &len));
}

int main(void) {
  hb_json_init(); /* as the server does */
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_event_name_field), HBT_TEST(test_object_and_uuid_fields), HBT_TEST(test_top_object),
      HBT_TEST(test_data_field),       HBT_TEST(test_plain_data),
  };
  return cmocka_run_group_tests_name("field", tests, NULL, NULL);
}
