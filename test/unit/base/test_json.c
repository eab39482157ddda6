/*
 * test_json.c - the JSON front door (json.c): the strict loader's errors
 * (depth, duplicates, empty text, numbers too big for jansson), messages
 * that never echo the input, loading a file, the raw-span finder, the
 * readers of a text jscan accepted, and the per-decode arena.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

#include "hubbub/alloc.h"
#include "hubbub/json.h"
#include "hubbub/limits.h"
#include "hubbub/strbuf.h"

/* `depth` nested arrays around a 1 (as text: [[[1]]]). Caller frees. */
static char *arrays(int depth) {
  hb_strbuf sb = HB_STRBUF_INIT;
  for (int i = 0; i < depth; i++) hb_strbuf_addch(&sb, '[');
  hb_strbuf_addch(&sb, '1');
  for (int i = 0; i < depth; i++) hb_strbuf_addch(&sb, ']');
  return hb_strbuf_release(&sb, NULL);
}

static json_t *load(const char *s, hb_error *e) {
  memset(e, 0, sizeof *e);
  return hb_json_load(s, strlen(s), e);
}

/* Refused with invalid_json, no pointer, a message that says where and why,
 * and that quotes nothing of the input. */
static void expect_refused(const char *s, const char *why) {
  hb_error e;
  json_t *j = load(s, &e);
  if (j) fail_msg("accepted: %s", s);
  assert_int_equal(e.err, HB_E_INVALID_JSON);
  assert_string_equal(e.pointer, "");
  if (!strstr(e.message, why)) fail_msg("%s: message '%s' lacks '%s'", s, e.message, why);
  assert_null(strstr(e.message, "near"));
}

/* --- the loader ------------------------------------------------------------ */

static void test_load_any_value(void **state) {
  (void)state;
  const char *ok[] = {"{}", "[]", "42", "-0.5e3", "\"s\"", "true", "null", " \n{\"a\":[1,{\"b\":null}]}\t"};
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
    hb_error e;
    json_t *j = load(ok[i], &e);
    if (!j) fail_msg("%s refused: %s", ok[i], e.message);
    json_decref(j);
  }
  /* NUL inside a string is allowed (JSON_ALLOW_NUL), and kept */
  hb_error e;
  json_t *j = load("\"a\\u0000b\"", &e);
  assert_non_null(j);
  assert_int_equal(json_string_length(j), 3);
  assert_memory_equal(json_string_value(j), "a\0b", 3);
  json_decref(j);
}

static void test_load_errors(void **state) {
  (void)state;
  hb_error e;
  /* empty: said as such, without a byte position */
  assert_null(hb_json_load("", 0, &e));
  assert_int_equal(e.err, HB_E_INVALID_JSON);
  assert_string_equal(e.message, "invalid JSON: the text is empty");
  assert_null(hb_json_load("{}", 0, &e)); /* the length counts, not the NUL */
  expect_refused("   ", "invalid JSON at byte");
  expect_refused("{", "invalid JSON at byte 1:");
  expect_refused("{\"a\":1,}", "invalid JSON at byte");
  expect_refused("[1] [2]", "invalid JSON at byte");
  expect_refused("{\"a\":01}", "invalid JSON at byte");
  expect_refused("\"\xff\"", "invalid JSON at byte");
  /* duplicate keys, at the top and nested, spelled alike or with an escape */
  expect_refused("{\"a\":1,\"a\":2}", "duplicate");
  expect_refused("{\"x\":{\"k\":1,\"k\":1}}", "duplicate");
  expect_refused("{\"k\":1,\"\\u006b\":2}", "duplicate");
}

static void test_load_depth(void **state) {
  (void)state;
  hb_error e;
  char *ok = arrays(HB_MAX_JSON_DEPTH);
  json_t *j = load(ok, &e);
  assert_non_null(j);
  json_decref(j);
  hb_free(ok);
  char *deep = arrays(HB_MAX_JSON_DEPTH + 1);
  expect_refused(deep, "JSON nests deeper than " HB_STR(HB_MAX_JSON_DEPTH) " levels");
  hb_free(deep);
  /* objects count as arrays do; brackets inside strings do not count */
  hb_strbuf sb = HB_STRBUF_INIT;
  for (int i = 0; i < HB_MAX_JSON_DEPTH; i++) hb_strbuf_addstr(&sb, "{\"k\":");
  hb_strbuf_addstr(&sb, "\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{\"");
  for (int i = 0; i < HB_MAX_JSON_DEPTH; i++) hb_strbuf_addch(&sb, '}');
  j = hb_json_load(sb.buf, sb.len, &e);
  assert_non_null(j);
  json_decref(j);
  hb_strbuf_free(&sb);
  /* a megabyte of '[' is refused before jansson recurses into it */
  size_t n = 1 << 20;
  char *huge = hb_malloc(n);
  memset(huge, '[', n);
  assert_null(hb_json_load(huge, n, &e));
  assert_non_null(strstr(e.message, "nests deeper"));
  hb_free(huge);
}

/* Valid JSON numbers jansson cannot hold (2^65, 1e400) are accepted: what
 * is forwarded raw is never read as a number. Malformed ones stay refused. */
static void test_load_big_numbers(void **state) {
  (void)state;
  const char *ok[] = {"36893488147419103000", "-123456789012345678901234567890", "1e400", "[2e-400,1]",
                      "{\"a\":99999999999999999999999,\"b\":\"keep 12345678901234567890123\",\"c\":true}"};
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
    hb_error e;
    json_t *j = load(ok[i], &e);
    if (!j) fail_msg("%s refused: %s", ok[i], e.message);
    json_decref(j);
  }
  hb_error e;
  json_t *j = load("{\"a\":99999999999999999999999,\"b\":\"keep 12345678901234567890123\",\"c\":true}", &e);
  /* the other members read as written (digits in a string untouched) */
  assert_string_equal(json_string_value(json_object_get(j, "b")), "keep 12345678901234567890123");
  assert_true(json_is_true(json_object_get(j, "c")));
  json_decref(j);
  expect_refused("{\"a\":99999999999999999999999,\"b\":01}", "invalid JSON at byte");
  expect_refused("{\"a\":99999999999999999999999,\"a\":1}", "duplicate");
  expect_refused("[99999999999999999999999 1]", "invalid JSON at byte");
  expect_refused("[-99999999999999999999999.]", "invalid JSON at byte");
  expect_refused("[99999999999999999999999", "invalid JSON at byte");
}

/* jansson's message ends in "near '<token>'": that part is cut, so no error
 * ever carries a piece of the input (a token, a secret) back out. */
static void test_load_message_never_echoes(void **state) {
  (void)state;
  const char *inputs[] = {"{\"type\":SECRETTOKEN}", "SECRETTOKEN", "{\"SECRETTOKEN\":1,\"SECRETTOKEN\":2}",
                          "[\"SECRETTOKEN\" \"x\"]", "{\"a\":\"SECRETTOKEN\\q\"}"};
  for (size_t i = 0; i < sizeof inputs / sizeof *inputs; i++) {
    hb_error e;
    assert_null(load(inputs[i], &e));
    if (strstr(e.message, "SECRET")) fail_msg("%s: message '%s' echoes the input", inputs[i], e.message);
  }
}

static void test_load_file(void **state) {
  (void)state;
  char path[] = "/tmp/hb_test_json.XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "{\"a\":[1,2]}", 11), 11);
  close(fd);
  char err[256] = "";
  json_t *j = hb_json_load_file(path, 1024, err, sizeof err);
  assert_non_null(j);
  assert_int_equal(json_array_size(json_object_get(j, "a")), 2);
  json_decref(j);
  /* over the size cap: named with the cap */
  assert_null(hb_json_load_file(path, 10, err, sizeof err));
  assert_non_null(strstr(err, path));
  assert_non_null(strstr(err, "at most 10 bytes"));
  /* invalid content: the file and the loader's reason */
  FILE *f = fopen(path, "w");
  fputs("{\"a\":", f);
  fclose(f);
  assert_null(hb_json_load_file(path, 1024, err, sizeof err));
  assert_non_null(strstr(err, path));
  assert_non_null(strstr(err, "invalid JSON at byte"));
  unlink(path);
  /* missing, and not a regular file */
  assert_null(hb_json_load_file(path, 1024, err, sizeof err));
  assert_non_null(strstr(err, "No such file"));
  assert_null(hb_json_load_file("/tmp", 1024, err, sizeof err));
  assert_non_null(strstr(err, "not a regular file"));
}

/* --- raw spans ------------------------------------------------------------- */

static void expect_span(const char *text, const char *const *path, int n, const char *want) {
  size_t s, e;
  bool found = hb_json_find_span(text, strlen(text), path, n, &s, &e);
  if (!want) {
    if (found) fail_msg("%s: found '%.*s', want none", text, (int)(e - s), text + s);
    return;
  }
  if (!found) fail_msg("%s: not found, want '%s'", text, want);
  if (e - s != strlen(want) || memcmp(text + s, want, e - s) != 0)
    fail_msg("%s: got '%.*s', want '%s'", text, (int)(e - s), text + s, want);
}

static void test_find_span(void **state) {
  (void)state;
  const char *data[] = {"data"};
  const char *ped[] = {"payload", "event", "data"};
  expect_span("{\"data\":{\"a\":0.10}}", data, 1, "{\"a\":0.10}");
  expect_span(" { \"x\" : [1, {\"data\":2}] , \"data\" :\t-0 } ", data, 1, "-0");
  expect_span("{\"data\":\"a \\\"}\\\\\",\"z\":1}", data, 1, "\"a \\\"}\\\\\"");
  expect_span("{\"data\":[1,[2,{\"q\":\"]\"}]]}", data, 1, "[1,[2,{\"q\":\"]\"}]]");
  expect_span("{\"data\":true}", data, 1, "true");
  expect_span("{\"d\\u0061ta\":null}", data, 1, "null"); /* keys compare after unescaping */
  expect_span("{\"dat\\u0061x\":1,\"data\":2}", data, 1, "2");
  expect_span("{\"\\u00e9\":1,\"data\":2}", data, 1, "2"); /* a non-ASCII key never matches */
  expect_span("{\"payload\":{\"data\":1,\"event\":{\"data\":{\"deep\":[]}}}}", ped, 3, "{\"deep\":[]}");
  /* absent, or a level that is not an object */
  expect_span("{\"datum\":1}", data, 1, NULL);
  expect_span("{}", data, 1, NULL);
  expect_span("[{\"data\":1}]", data, 1, NULL);
  expect_span("{\"payload\":{\"event\":[1]}}", ped, 3, NULL);
  expect_span("{\"payload\":{\"event\":{}}}", ped, 3, NULL);
  /* a path of zero keys is the whole value */
  expect_span("  [1,2] ", NULL, 0, "[1,2]");
}

static void test_plain_readers(void **state) {
  (void)state;
  const char *t = " {\"name\":\"abc\",\"esc\":\"a\\nb\",\"n\":12,\"o\":{\"k\":\"v\"},\"a\":[1]} ";
  size_t n = strlen(t), root, vs, ve, at, len;
  const char *s;
  assert_true(hb_json_plain_root(t, n, &root));
  assert_int_equal(root, 1);
  assert_true(hb_json_plain_member(t, n, root, "n", &vs, &ve));
  assert_memory_equal(t + vs, "12", ve - vs);
  assert_true(hb_json_plain_str(t, n, root, "name", &s, &len));
  assert_int_equal(len, 3);
  assert_memory_equal(s, "abc", 3);
  /* a string with an escape is not read plain: its bytes are not its value */
  assert_false(hb_json_plain_str(t, n, root, "esc", &s, &len));
  assert_false(hb_json_plain_str(t, n, root, "n", &s, &len)); /* not a string */
  assert_false(hb_json_plain_str(t, n, root, "missing", &s, &len));
  assert_true(hb_json_plain_obj(t, n, root, "o", &at));
  assert_int_equal(t[at], '{');
  assert_true(hb_json_plain_str(t, n, at, "k", &s, &len));
  assert_memory_equal(s, "v", 1);
  assert_false(hb_json_plain_obj(t, n, root, "a", &at)); /* an array */
  assert_false(hb_json_plain_member(t, n, root, "k", &vs, &ve)); /* only the object's own keys */
  /* the root must be an object that jscan accepts */
  assert_false(hb_json_plain_root("[1]", 3, &root));
  assert_false(hb_json_plain_root("{\"a\":1,\"a\":2}", 13, &root));
  assert_false(hb_json_plain_root("{", 1, &root));
  assert_true(hb_json_plain_root("{}", 2, &root));
  assert_false(hb_json_plain_member("{}", 2, 0, "a", &vs, &ve));
  assert_true(hb_json_span_str("\"\"", 0, 2, &s, &len));
  assert_int_equal(len, 0);
}

static void test_helpers(void **state) {
  (void)state;
  assert_true(hb_json_has_control("a\tb", 3));
  assert_true(hb_json_has_control("\x7f", 1));
  assert_true(hb_json_has_control("a\0b", 3));
  assert_false(hb_json_has_control("plain \xc3\xa9 text", 13));
  assert_false(hb_json_has_control("", 0));
  assert_int_equal(hb_json_skip_ws(" \t\r\nx", 0, 5), 4);
  assert_int_equal(hb_json_skip_ws("   ", 1, 3), 3);
  assert_false(hb_json_is_ws('\v'));
  assert_false(hb_json_is_ws('\f'));
}

/* --- the arena --------------------------------------------------------------- */

/* Inside an arena jansson's blocks come from the caller's buffer until it is
 * full, then from malloc; frees of both kinds go to the right place (the
 * ASan build would catch a wrong free), nested arenas included. Outside any
 * arena jansson uses malloc (json_dumps' result is released with free()). */
static void test_arena(void **state) {
  (void)state;
  hb_strbuf big = HB_STRBUF_INIT;
  hb_strbuf_addch(&big, '[');
  for (int i = 0; i < 2000; i++) hb_strbuf_addf(&big, "%s{\"k%d\":[\"v\",%d]}", i ? "," : "", i, i);
  hb_strbuf_addch(&big, ']');

  HB_JSON_ARENA_BUF(outer_buf);
  hb_json_arena outer;
  hb_json_arena_begin(&outer, outer_buf, sizeof outer_buf);
  hb_error e;
  json_t *small = load("{\"a\":[1,2,3],\"b\":\"x\"}", &e);
  assert_non_null(small);
  assert_true(outer.used > 0 && outer.used <= outer.cap); /* from the buffer */
  size_t used_small = outer.used;

  char inner_buf[256];
  hb_json_arena inner;
  hb_json_arena_begin(&inner, inner_buf, sizeof inner_buf);
  json_t *spill = hb_json_load(big.buf, big.len, &e); /* far more than 256 bytes: spills to malloc */
  assert_non_null(spill);
  assert_int_equal(json_array_size(spill), 2000);
  assert_true(inner.used <= inner.cap);
  json_decref(small); /* a block of the outer arena freed while the inner is current */
  json_decref(spill);
  hb_json_arena_end(&inner);
  assert_int_equal(outer.used, used_small); /* the inner arena took nothing from the outer */

  /* an error path frees a half-built tree from the arena and from malloc */
  big.len--; /* drop the closing ']' */
  hb_strbuf_addstr(&big, ",{\"k\":1,\"k\":2}]");
  assert_null(hb_json_load(big.buf, big.len, &e));
  assert_non_null(strstr(e.message, "duplicate"));
  hb_json_arena_end(&outer);

  json_t *o = json_pack("{s:i}", "n", 7);
  char *text = json_dumps(o, JSON_COMPACT);
  assert_string_equal(text, "{\"n\":7}");
  free(text);
  json_decref(o);
  hb_strbuf_free(&big);
}

int main(void) {
  hb_json_init(); /* as the server does: jansson allocates through the arena */
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_load_any_value),   HBT_TEST(test_load_errors),
      HBT_TEST(test_load_depth),       HBT_TEST(test_load_big_numbers),
      HBT_TEST(test_load_message_never_echoes), HBT_TEST(test_load_file),
      HBT_TEST(test_find_span),        HBT_TEST(test_plain_readers),
      HBT_TEST(test_helpers),          HBT_TEST(test_arena),
  };
  return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
