/*
 * test_router.c - the routes and the checks they share (router.c), in the
 * in-process stack: unknown paths, methods with their Allow header, API
 * token and admin credentials, Content-Type, declared sizes refused before
 * the body, a body where none belongs; and a publish that passes them all.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "check.h"
#include "stack.h"

#include "hubbub/limits.h"

#define ADMIN_TOKEN "hba_router_test_admin_token_0123456789"

static hbt_stack stk;
static hbt_http_resp resp;

static void start(bool admin) {
  hbt_stack_init(&stk);
  stk.cfg.max_body_bytes = 1024;
  if (admin) {
    unsigned char sha[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)ADMIN_TOKEN, strlen(ADMIN_TOKEN), sha);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) snprintf(stk.cfg.admin_token_sha256 + 2 * i, 3, "%02x", sha[i]);
  }
  hbt_stack_start(&stk);
}

/* One request on a new connection; the answer in `resp`. */
static void request(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void request(const char *fmt, ...) {
  char req[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(req, sizeof req, fmt, ap);
  va_end(ap);
  int fd;
  hbt_attach(hbt_io(&stk, 0), &fd, 0);
  hbt_send_str(fd, req);
  hb_strbuf in = HB_STRBUF_INIT;
  hbt_recv_http(fd, &in, &resp, strncmp(req, "HEAD ", 5) == 0);
  hb_strbuf_free(&in);
  close(fd);
}

static void expect(int status, const char *code) {
  if (resp.status != status) fail_msg("status %d, want %d: %s", resp.status, status, resp.body);
  if (code) {
    char want[96];
    snprintf(want, sizeof want, "{\"error\":{\"code\":\"%s\"", code);
    if (strncmp(resp.body, want, strlen(want)) != 0) fail_msg("body %s, want code %s", resp.body, code);
  }
}

#define PUBLISH_BODY "{\"scope\":{\"type\":\"organization\"},\"payload\":{\"event\":{\"eventName\":\"e\",\"data\":{}}}}"

static void test_paths_and_methods(void **state) {
  (void)state;
  start(false);
  request("GET /nope HTTP/1.1\r\nHost: h\r\n\r\n");
  expect(404, "not_found");
  request("GET http://h/healthz HTTP/1.1\r\nHost: h\r\n\r\n"); /* absolute-form is not served */
  expect(404, "not_found");
  request("GET /api/v1/pub_subs HTTP/1.1\r\nHost: h\r\n\r\n");
  expect(405, "method_not_allowed");
  assert_string_equal(hbt_header(&resp, "Allow"), "POST");
  request("DELETE /healthz HTTP/1.1\r\nHost: h\r\n\r\n");
  expect(405, "method_not_allowed");
  assert_string_equal(hbt_header(&resp, "Allow"), "GET, HEAD");
  request("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n");
  expect(200, NULL);
  assert_non_null(strstr(resp.body, "\"status\":\"ok\""));
  request("HEAD /healthz HTTP/1.1\r\nHost: h\r\n\r\n");
  expect(200, NULL);
  assert_int_equal(resp.body_len, 0);
  request("GET /healthz?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"); /* the query is not the path */
  expect(200, NULL);
  request("GET /healthz HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}");
  expect(413, "payload_too_large");
  assert_non_null(strstr(resp.body, "this path takes no body"));
  /* the admin API does not exist unless an admin token is configured */
  request("GET /api/v1/admin/organizations HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer " ADMIN_TOKEN "\r\n\r\n");
  expect(404, "not_found");
  hbt_stack_stop(&stk);
}

static void test_credentials_and_bodies(void **state) {
  (void)state;
  start(true);
  request("POST /api/v1/pub_subs HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
  expect(401, "missing_token");
  assert_string_equal(hbt_header(&resp, "WWW-Authenticate"), "Bearer");
  request("POST /api/v1/pub_subs HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer nope\r\nContent-Type: application/json\r\n"
          "Content-Length: 2\r\n\r\n{}");
  expect(401, "invalid_token");
  request("POST /api/v1/pub_subs HTTP/1.1\r\nHost: h\r\nAuthorization: %s\r\nContent-Type: text/plain\r\n"
          "Content-Length: 2\r\n\r\n{}", stk.api_token);
  expect(415, "unsupported_media_type");
  /* declared over max_body_bytes: refused from the headers, the body never read */
  request("POST /api/v1/pub_subs HTTP/1.1\r\nHost: h\r\nAuthorization: %s\r\nContent-Type: application/json\r\n"
          "Content-Length: 1025\r\n\r\n", stk.api_token);
  expect(413, "payload_too_large");
  /* all checks passed: published; the media type's case and parameters do not matter */
  request("POST /api/v1/publish HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer %s\r\n"
          "Content-Type: Application/JSON; charset=utf-8\r\nContent-Length: %zu\r\n\r\n%s",
          stk.api_token, strlen(PUBLISH_BODY), PUBLISH_BODY);
  expect(202, NULL);
  assert_non_null(strstr(resp.body, "{\"message_id\":\""));
  /* the admin API: its own credential, not an API token */
  request("GET /api/v1/admin/organizations HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer %s\r\n\r\n", stk.api_token);
  expect(401, "invalid_token");
  request("GET /api/v1/admin/organizations HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer " ADMIN_TOKEN "\r\n\r\n");
  expect(200, NULL);
  assert_non_null(strstr(resp.body, "test-org"));
  hbt_stack_stop(&stk);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_paths_and_methods),
      HBT_TEST(test_credentials_and_bodies),
  };
  return cmocka_run_group_tests_name("router", tests, NULL, NULL);
}
