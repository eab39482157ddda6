/* test_config.c - defaults, the JSON config file, listen addresses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hubbub/config.h"
#include "hubbub/limits.h"

static char path[64];

static int setup(void **state) {
  (void)state;
  hbt_leak_begin();
  snprintf(path, sizeof path, "/tmp/hb_test_config.XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  unlink(path);
  hbt_leak_end();
  return 0;
}

/* Write `json` to the temp file and load it over `c`. */
static int load(hb_config *c, const char *json, char *err, size_t errlen) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(json, f);
  fclose(f);
  err[0] = '\0';
  return hb_config_load_file(c, path, err, errlen);
}

static void test_defaults(void **state) {
  hb_config c;
  hb_config_defaults(&c);
  assert_string_equal(c.host, "127.0.0.1");
  assert_int_equal(c.port, 8080);
  assert_string_equal(c.data_dir, "data");
  assert_int_equal(c.threads, 0);
  assert_string_equal(c.redis_url, "");
  assert_int_equal(c.max_body_bytes, HB_DEFAULT_MAX_BODY_BYTES);
  assert_int_equal(c.max_message_bytes, HB_DEFAULT_MAX_MESSAGE_BYTES);
  assert_int_equal(c.max_data_bytes, HB_DEFAULT_MAX_DATA_BYTES);
  assert_int_equal(c.max_output_bytes, HB_DEFAULT_MAX_OUTPUT_BYTES);
  assert_int_equal(c.max_subscriptions, HB_DEFAULT_MAX_SUBSCRIPTIONS);
  assert_int_equal(c.max_connections, HB_DEFAULT_MAX_CONNECTIONS);
  assert_int_equal(c.ping_interval_ms, HB_WS_PING_INTERVAL_MS);
  assert_int_equal(c.flush_interval_ms, HB_DEFAULT_FLUSH_INTERVAL_MS);
  assert_int_equal(c.idle_timeout_ms, HB_WS_IDLE_TIMEOUT_MS);
  assert_int_equal(c.handshake_timeout_ms, HB_HANDSHAKE_TIMEOUT_MS);
  assert_true(c.conn_publish_rate == HB_DEFAULT_CONN_PUBLISH_RATE);
  assert_true(c.token_publish_burst == HB_DEFAULT_TOKEN_PUBLISH_BURST);
  assert_string_equal(c.log_level, "info");
}

static void test_listen(void **state) {
  char host[64] = "keep";
  int port = -1;
  assert_int_equal(hb_config_parse_listen("0.0.0.0:9000", host, sizeof host, &port), 0);
  assert_string_equal(host, "0.0.0.0");
  assert_int_equal(port, 9000);
  assert_int_equal(hb_config_parse_listen("[::1]:0", host, sizeof host, &port), 0);
  assert_string_equal(host, "::1");
  assert_int_equal(port, 0);
  assert_int_equal(hb_config_parse_listen("localhost:65535", host, sizeof host, &port), 0);
  assert_string_equal(host, "localhost");
  strcpy(host, "127.0.0.1");
  assert_int_equal(hb_config_parse_listen(":8081", host, sizeof host, &port), 0);
  assert_string_equal(host, "127.0.0.1"); /* kept */
  assert_int_equal(port, 8081);

  const char *bad[] = {"",          "8080",        "host:",      "host:65536", "host:-1",
                       "host:80x",  "::1:80",      "[::1]80",    "[]:80",      "[::1:80",
                       "a b:80",    "host:+80",    "host: 80",   NULL};
  for (int i = 0; bad[i]; i++) {
    port = 7;
    if (hb_config_parse_listen(bad[i], host, sizeof host, &port) != -1) fail_msg("accepted '%s'", bad[i]);
    assert_int_equal(port, 7);
  }
  char small[4];
  assert_int_equal(hb_config_parse_listen("example.com:80", small, sizeof small, &port), -1);
}

static void test_file_all_keys(void **state) {
  hb_config c;
  char err[256];
  hb_config_defaults(&c);
  assert_int_equal(load(&c,
                        "{\"listen\":\"0.0.0.0:9001\",\"data_dir\":\"/var/lib/hubbub\",\"threads\":4,"
                        "\"redis_url\":\"redis://127.0.0.1:6379\",\"redis_password\":\"pw\","
                        "\"max_body_bytes\":1000,\"max_message_bytes\":2000,\"max_data_bytes\":1500,"
                        "\"max_output_bytes\":100000,\"max_subscriptions\":10,\"max_connections\":50,"
                        "\"max_connections_per_ip\":5,\"ping_interval_ms\":1000,\"idle_timeout_ms\":5000,"
                        "\"handshake_timeout_ms\":2000,\"conn_publish_rate\":2.5,\"conn_publish_burst\":5,"
                        "\"token_publish_rate\":0,\"token_publish_burst\":1,"
                        "\"allowed_origins\":\"https://a.example\",\"admin_token_sha256\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
                        "\"log_level\":\"debug\"}",
                        err, sizeof err),
                   0);
  assert_string_equal(c.host, "0.0.0.0");
  assert_int_equal(c.port, 9001);
  assert_string_equal(c.data_dir, "/var/lib/hubbub");
  assert_int_equal(c.threads, 4);
  assert_string_equal(c.redis_url, "redis://127.0.0.1:6379");
  assert_string_equal(c.redis_password, "pw");
  assert_int_equal(c.max_body_bytes, 1000);
  assert_int_equal(c.max_message_bytes, 2000);
  assert_int_equal(c.max_data_bytes, 1500);
  assert_int_equal(c.max_output_bytes, 100000);
  assert_int_equal(c.max_subscriptions, 10);
  assert_int_equal(c.max_connections, 50);
  assert_int_equal(c.max_connections_per_ip, 5);
  assert_int_equal(c.ping_interval_ms, 1000);
  assert_int_equal(c.idle_timeout_ms, 5000);
  assert_int_equal(c.handshake_timeout_ms, 2000);
  assert_true(c.conn_publish_rate == 2.5);
  assert_true(c.conn_publish_burst == 5);
  assert_true(c.token_publish_rate == 0);
  assert_string_equal(c.allowed_origins, "https://a.example");
  assert_string_equal(c.admin_token_sha256, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  assert_string_equal(c.log_level, "debug");
}

static void test_file_partial_keeps_the_rest(void **state) {
  hb_config c;
  char err[256];
  hb_config_defaults(&c);
  assert_int_equal(load(&c, "{\"threads\":2}", err, sizeof err), 0);
  assert_int_equal(c.threads, 2);
  assert_int_equal(c.port, 8080);
  assert_int_equal(load(&c, "{}", err, sizeof err), 0);
}

/* Each bad file fails, names what is wrong, and leaves the config untouched. */
static void test_file_errors(void **state) {
  struct {
    const char *json, *expect;
  } cases[] = {
      {"{\"thraeds\":2}", "unknown key \"thraeds\""},
      {"{\"threads\":2,\"threads\":3}", "duplicate"},
      {"{\"threads\":-1}", "\"threads\" must be between"},
      {"{\"threads\":9999}", "\"threads\" must be between"},
      {"{\"threads\":\"4\"}", "\"threads\" must be an integer"},
      {"{\"threads\":1.5}", "\"threads\" must be an integer"},
      {"{\"max_body_bytes\":0}", "\"max_body_bytes\""},
      {"{\"max_connections\":0}", "\"max_connections\""},
      {"{\"conn_publish_rate\":-1}", "\"conn_publish_rate\""},
      {"{\"conn_publish_rate\":true}", "\"conn_publish_rate\" must be a number"},
      {"{\"listen\":\"nope\"}", "\"listen\""},
      {"{\"listen\":8080}", "\"listen\""},
      {"{\"port\":70000}", "\"port\""},
      {"{\"data_dir\":\"\"}", "\"data_dir\""},
      {"{\"data_dir\":7}", "\"data_dir\" must be a string"},
      {"{\"log_level\":\"loud\"}", "\"log_level\""},
      {"{\"max_data_bytes\":100000}", "\"max_data_bytes\""},
      {"{\"ping_interval_ms\":60000}", "\"ping_interval_ms\""},
      {"{\"flush_interval_ms\":1001}", "\"flush_interval_ms\" must be between"},
      {"{\"flush_interval_ms\":-1}", "\"flush_interval_ms\" must be between"},
      {"[1,2]", "must be a JSON object"},
      {"{\"threads\":", "hb_test_config"},
      {"", "hb_test_config"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hb_config c, before;
    char err[256];
    hb_config_defaults(&c);
    before = c;
    if (load(&c, cases[i].json, err, sizeof err) != -1) fail_msg("accepted %s", cases[i].json);
    if (!strstr(err, cases[i].expect)) fail_msg("%s: error '%s' lacks '%s'", cases[i].json, err, cases[i].expect);
    assert_memory_equal(&c, &before, sizeof c);
  }
}

static void test_missing_file(void **state) {
  hb_config c;
  char err[256];
  hb_config_defaults(&c);
  assert_int_equal(hb_config_load_file(&c, "/nonexistent/hubbub.json", err, sizeof err), -1);
  assert_non_null(strstr(err, "/nonexistent/hubbub.json"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_defaults),
      HBT_TEST(test_listen),
      cmocka_unit_test_setup_teardown(test_file_all_keys, setup, teardown),
      cmocka_unit_test_setup_teardown(test_file_partial_keeps_the_rest, setup, teardown),
      cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
      HBT_TEST(test_missing_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
