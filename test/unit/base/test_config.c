/* test_config.c - defaults, the JSON config file, HUBBUB_* variables, listen addresses. */
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
  assert_true(c.flush_adaptive); /* the window only while saturated */
  assert_int_equal(c.flush_max_interval_ms, HB_DEFAULT_FLUSH_MAX_INTERVAL_MS);
  assert_true(c.flush_hold_saving);
  assert_true(c.io_uring);       /* where the kernel allows it */
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

/* The values test_file_all_keys and test_env_all_keys give every key. */
static void assert_every_key_set(const hb_config *cfg) {
  const hb_config c = *cfg;
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
  assert_int_equal(c.flush_interval_ms, 0);
  assert_true(c.conn_publish_rate == 2.5);
  assert_true(c.conn_publish_burst == 5);
  assert_true(c.token_publish_rate == 0);
  assert_string_equal(c.allowed_origins, "https://a.example");
  assert_string_equal(c.admin_token_sha256, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  assert_string_equal(c.log_level, "debug");
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
                        "\"handshake_timeout_ms\":2000,\"flush_interval_ms\":0,\"conn_publish_rate\":2.5,\"conn_publish_burst\":5,"
                        "\"token_publish_rate\":0,\"token_publish_burst\":1,"
                        "\"allowed_origins\":\"https://a.example\",\"admin_token_sha256\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
                        "\"log_level\":\"debug\"}",
                        err, sizeof err),
                   0);
  assert_every_key_set(&c);
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

/* ---- the environment ---------------------------------------------------- */

extern char **environ;

/* Remove every HUBBUB_* variable, so each test starts from a known state. */
static void clear_hubbub_env(void) {
  for (;;) {
    char name[128] = "";
    for (char **e = environ; *e; e++) {
      if (strncmp(*e, "HUBBUB_", 7) != 0) continue;
      size_t n = strcspn(*e, "=");
      snprintf(name, sizeof name, "%.*s", (int)n, *e);
      break;
    }
    if (!name[0]) return;
    unsetenv(name);
  }
}

static int env_setup(void **state) {
  clear_hubbub_env();
  return setup(state);
}

static int env_teardown(void **state) {
  clear_hubbub_env();
  return teardown(state);
}

static void test_env_all_keys(void **state) {
  hb_config c;
  char err[256] = "";
  hb_config_defaults(&c);
  setenv("HUBBUB_LISTEN", "0.0.0.0:9001", 1);
  setenv("HUBBUB_DATA_DIR", "/var/lib/hubbub", 1);
  setenv("HUBBUB_THREADS", "4", 1);
  setenv("HUBBUB_REDIS_URL", "redis://127.0.0.1:6379", 1);
  setenv("HUBBUB_REDIS_PASSWORD", "pw", 1);
  setenv("HUBBUB_MAX_BODY_BYTES", "1000", 1);
  setenv("HUBBUB_MAX_MESSAGE_BYTES", "2000", 1);
  setenv("HUBBUB_MAX_DATA_BYTES", "1500", 1);
  setenv("HUBBUB_MAX_OUTPUT_BYTES", "100000", 1);
  setenv("HUBBUB_MAX_SUBSCRIPTIONS", "10", 1);
  setenv("HUBBUB_MAX_CONNECTIONS", "50", 1);
  setenv("HUBBUB_MAX_CONNECTIONS_PER_IP", "5", 1);
  setenv("HUBBUB_PING_INTERVAL_MS", "1000", 1);
  setenv("HUBBUB_FLUSH_INTERVAL_MS", "0", 1);
  setenv("HUBBUB_IDLE_TIMEOUT_MS", "5000", 1);
  setenv("HUBBUB_HANDSHAKE_TIMEOUT_MS", "2000", 1);
  setenv("HUBBUB_CONN_PUBLISH_RATE", "2.5", 1);
  setenv("HUBBUB_CONN_PUBLISH_BURST", "5", 1);
  setenv("HUBBUB_TOKEN_PUBLISH_RATE", "0", 1);
  setenv("HUBBUB_TOKEN_PUBLISH_BURST", "1", 1);
  setenv("HUBBUB_ALLOWED_ORIGINS", "https://a.example", 1);
  setenv("HUBBUB_ADMIN_TOKEN_SHA256", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1);
  setenv("HUBBUB_LOG_LEVEL", "debug", 1);
  if (hb_config_load_env(&c, err, sizeof err) != 0) fail_msg("%s", err);
  assert_every_key_set(&c);
  /* Numbers take the exponent form too. */
  setenv("HUBBUB_TOKEN_PUBLISH_BURST", "1e3", 1);
  if (hb_config_load_env(&c, err, sizeof err) != 0) fail_msg("%s", err);
  assert_true(c.token_publish_burst == 1000);
}

/* The documented order: defaults < file < environment (flags are main.c's). */
static void test_env_over_file(void **state) {
  hb_config c;
  char err[256];
  hb_config_defaults(&c);
  assert_int_equal(load(&c, "{\"threads\":2,\"max_body_bytes\":5000,\"listen\":\"0.0.0.0:9000\"}", err, sizeof err), 0);
  setenv("HUBBUB_THREADS", "3", 1);
  setenv("HUBBUB_PORT", "9100", 1);
  assert_int_equal(hb_config_load_env(&c, err, sizeof err), 0);
  assert_int_equal(c.threads, 3);           /* the variable wins */
  assert_int_equal(c.max_body_bytes, 5000); /* the file's stays */
  assert_string_equal(c.host, "0.0.0.0");   /* the file's host, the variable's port */
  assert_int_equal(c.port, 9100);
  assert_int_equal(c.max_connections, HB_DEFAULT_MAX_CONNECTIONS); /* default stays */

  /* No variable: nothing changes. */
  clear_hubbub_env();
  hb_config before = c;
  assert_int_equal(hb_config_load_env(&c, err, sizeof err), 0);
  assert_memory_equal(&c, &before, sizeof c);
}

static void test_env_listen_host_port_data_alias(void **state) {
  hb_config c;
  char err[256];
  hb_config_defaults(&c);
  setenv("HUBBUB_LISTEN", "[::1]:7000", 1);
  setenv("HUBBUB_HOST", "127.0.0.2", 1); /* more specific: wins over LISTEN */
  setenv("HUBBUB_DATA", "/srv/hubbub", 1);
  assert_int_equal(hb_config_load_env(&c, err, sizeof err), 0);
  assert_string_equal(c.host, "127.0.0.2");
  assert_int_equal(c.port, 7000);
  assert_string_equal(c.data_dir, "/srv/hubbub");

  setenv("HUBBUB_DATA_DIR", "/srv/hubbub", 1); /* the same directory twice is fine */
  assert_int_equal(hb_config_load_env(&c, err, sizeof err), 0);
  setenv("HUBBUB_DATA_DIR", "/srv/other", 1);
  hb_config before = c;
  assert_int_equal(hb_config_load_env(&c, err, sizeof err), -1);
  assert_non_null(strstr(err, "HUBBUB_DATA_DIR and HUBBUB_DATA"));
  assert_memory_equal(&c, &before, sizeof c);

  /* A set but empty string variable is used: redis_url "" = in process. */
  clear_hubbub_env();
  snprintf(c.redis_url, sizeof c.redis_url, "redis://x:1");
  setenv("HUBBUB_REDIS_URL", "", 1);
  assert_int_equal(hb_config_load_env(&c, err, sizeof err), 0);
  assert_string_equal(c.redis_url, "");
}

/* Each bad variable fails, names the variable and what is wrong, and leaves
 * the config untouched; the messages are the file's. */
static void test_env_errors(void **state) {
  struct {
    const char *name, *value, *expect;
  } cases[] = {
      {"HUBBUB_THREADS", "-1", "HUBBUB_THREADS: \"threads\" must be between 0 and 64, got -1"},
      {"HUBBUB_THREADS", "9999", "HUBBUB_THREADS: \"threads\" must be between"},
      {"HUBBUB_THREADS", "", "HUBBUB_THREADS: \"threads\" must be an integer"},
      {"HUBBUB_THREADS", "four", "HUBBUB_THREADS: \"threads\" must be an integer, got \"four\""},
      {"HUBBUB_THREADS", "4 ", "HUBBUB_THREADS: \"threads\" must be an integer"},
      {"HUBBUB_THREADS", " 4", "HUBBUB_THREADS: \"threads\" must be an integer"},
      {"HUBBUB_THREADS", "1.5", "HUBBUB_THREADS: \"threads\" must be an integer"},
      {"HUBBUB_THREADS", "0x10", "HUBBUB_THREADS: \"threads\" must be an integer"},
      {"HUBBUB_MAX_BODY_BYTES", "99999999999999999999999", "HUBBUB_MAX_BODY_BYTES: \"max_body_bytes\" must be between"},
      {"HUBBUB_MAX_BODY_BYTES", "0", "HUBBUB_MAX_BODY_BYTES: \"max_body_bytes\" must be between 256"},
      {"HUBBUB_PORT", "70000", "HUBBUB_PORT: \"port\" must be between 0 and 65535"},
      {"HUBBUB_CONN_PUBLISH_RATE", "fast", "HUBBUB_CONN_PUBLISH_RATE: \"conn_publish_rate\" must be a number"},
      {"HUBBUB_CONN_PUBLISH_RATE", "inf", "HUBBUB_CONN_PUBLISH_RATE: \"conn_publish_rate\" must be a number"},
      {"HUBBUB_CONN_PUBLISH_RATE", "-1", "HUBBUB_CONN_PUBLISH_RATE: \"conn_publish_rate\" must be between"},
      {"HUBBUB_LISTEN", "nope", "HUBBUB_LISTEN: \"listen\" must be"},
      {"HUBBUB_LISTEN", "", "HUBBUB_LISTEN: \"listen\" must be"},
      {"HUBBUB_DATA_DIR", "", "HUBBUB_DATA_DIR: \"data_dir\" must not be empty"},
      {"HUBBUB_HOST", "", "HUBBUB_HOST: \"host\" must not be empty"},
      {"HUBBUB_LOG_LEVEL", "loud", "HUBBUB_LOG_LEVEL: \"log_level\" must be debug, info, warn or error"},
      {"HUBBUB_MAX_DATA_BYTES", "100000",
       "HUBBUB_MAX_DATA_BYTES: \"max_data_bytes\" (100000) must not exceed \"max_message_bytes\""},
      {"HUBBUB_IDLE_TIMEOUT_MS", "1000", "HUBBUB_IDLE_TIMEOUT_MS: \"ping_interval_ms\" must be less than"},
      {"HUBBUB_ADMIN_TOKEN_SHA256", "x", NULL}, /* a string of any content is the file's rule too */
  };
  char toolong[64]; /* log_level holds 15 bytes */
  memset(toolong, 'a', sizeof toolong - 1);
  toolong[sizeof toolong - 1] = '\0';
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hb_config c, before;
    char err[256] = "";
    clear_hubbub_env();
    hb_config_defaults(&c);
    before = c;
    setenv(cases[i].name, cases[i].value, 1);
    int rc = hb_config_load_env(&c, err, sizeof err);
    if (!cases[i].expect) {
      if (rc != 0) fail_msg("%s=%s refused: %s", cases[i].name, cases[i].value, err);
      continue;
    }
    if (rc != -1) fail_msg("accepted %s=%s", cases[i].name, cases[i].value);
    if (!strstr(err, cases[i].expect))
      fail_msg("%s=%s: error '%s' lacks '%s'", cases[i].name, cases[i].value, err, cases[i].expect);
    assert_memory_equal(&c, &before, sizeof c);
  }
  /* Longer than the field: refused, not cut. */
  hb_config c;
  char err[256];
  clear_hubbub_env();
  hb_config_defaults(&c);
  setenv("HUBBUB_LOG_LEVEL", toolong, 1);
  assert_int_equal(hb_config_load_env(&c, err, sizeof err), -1);
  assert_non_null(strstr(err, "HUBBUB_LOG_LEVEL: \"log_level\" is too long"));
  /* A conflict with a value from the file blames the variable that made it. */
  clear_hubbub_env();
  hb_config_defaults(&c);
  assert_int_equal(load(&c, "{\"max_message_bytes\":1000,\"max_data_bytes\":500}", err, sizeof err), 0);
  setenv("HUBBUB_MAX_DATA_BYTES", "2000", 1);
  assert_int_equal(hb_config_load_env(&c, err, sizeof err), -1);
  assert_non_null(strstr(err, "HUBBUB_MAX_DATA_BYTES: \"max_data_bytes\" (2000) must not exceed \"max_message_bytes\" (1000)"));
  assert_int_equal(c.max_data_bytes, 500);
}

static void test_env_known(void **state) {
  assert_true(hb_config_env_known("HUBBUB_CONFIG"));
  assert_true(hb_config_env_known("HUBBUB_LISTEN"));
  assert_true(hb_config_env_known("HUBBUB_DATA"));
  assert_true(hb_config_env_known("HUBBUB_DATA_DIR"));
  assert_true(hb_config_env_known("HUBBUB_MAX_CONNECTIONS_PER_IP"));
  assert_true(hb_config_env_known("HUBBUB_ADMIN_TOKEN_SHA256"));
  assert_false(hb_config_env_known("HUBBUB_THRAEDS"));
  assert_false(hb_config_env_known("HUBBUB_threads"));
  assert_false(hb_config_env_known("THREADS"));

  char hint[64];
  assert_true(hb_config_env_suggest("HUBBUB_THRAEDS", hint, sizeof hint));
  assert_string_equal(hint, "HUBBUB_THREADS");
  assert_true(hb_config_env_suggest("HUBBUB_MAX_CONECTIONS", hint, sizeof hint));
  assert_string_equal(hint, "HUBBUB_MAX_CONNECTIONS");
  assert_true(hb_config_env_suggest("HUBBUB_REDIS", hint, sizeof hint));
  assert_string_equal(hint, "HUBBUB_REDIS_URL");
  assert_true(hb_config_env_suggest("HUBBUB_LISTENS", hint, sizeof hint));
  assert_string_equal(hint, "HUBBUB_LISTEN");
  /* Known names, and names of other tools, get no hint. */
  assert_false(hb_config_env_suggest("HUBBUB_THREADS", hint, sizeof hint));
  assert_false(hb_config_env_suggest("HUBBUB_TOKEN", hint, sizeof hint));
  assert_false(hb_config_env_suggest("HUBBUB_BIN", hint, sizeof hint));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_defaults),
      HBT_TEST(test_listen),
      cmocka_unit_test_setup_teardown(test_file_all_keys, setup, teardown),
      cmocka_unit_test_setup_teardown(test_file_partial_keeps_the_rest, setup, teardown),
      cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
      HBT_TEST(test_missing_file),
      cmocka_unit_test_setup_teardown(test_env_all_keys, env_setup, env_teardown),
      cmocka_unit_test_setup_teardown(test_env_over_file, env_setup, env_teardown),
      cmocka_unit_test_setup_teardown(test_env_listen_host_port_data_alias, env_setup, env_teardown),
      cmocka_unit_test_setup_teardown(test_env_errors, env_setup, env_teardown),
      HBT_TEST(test_env_known),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
