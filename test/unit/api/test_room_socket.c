/*
 * test_room_socket.c - who may open a room connection (room_socket.c), in
 * the in-process stack: every refusal answers with its HTTP status and
 * JSON error, never a 101 (the token missing, malformed, forged; the
 * subscribe= list; the Origin allowlist; another WebSocket version), and a
 * good upgrade gets the 101 and the welcome in one piece.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "stack.h"

#include "hubbub/alloc.h"
#include "hubbub/limits.h"

static hbt_stack stk;
static hbt_http_resp resp;
static hbt_frame fr;

static void start(void) {
  hbt_stack_init(&stk);
  stk.cfg.max_subscriptions = 2;
  snprintf(stk.cfg.allowed_origins, sizeof stk.cfg.allowed_origins, "https://app.example");
  hbt_stack_start(&stk);
}

/* An upgrade request for `target` with `extra` header lines; the answer in resp. */
static void upgrade(const char *target, const char *extra, const char *version) {
  char req[8192];
  snprintf(req, sizeof req,
           "GET %s HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: %s\r\n%s\r\n",
           target, version, extra ? extra : "");
  int fd;
  hbt_attach(hbt_io(&stk, 0), &fd, 0);
  hbt_send_str(fd, req);
  hb_strbuf in = HB_STRBUF_INIT;
  hbt_recv_http(fd, &in, &resp, false);
  if (resp.status == 101) {
    hbt_ws_recv(fd, &in, &fr); /* the welcome, written with the 101 */
    assert_non_null(strstr(fr.payload, "\"type\":\"welcome\""));
  } else {
    hbt_recv_eof(fd, &in); /* a refusal closes */
  }
  hb_strbuf_free(&in);
  close(fd);
}

static void expect(int status, const char *code) {
  if (resp.status != status) fail_msg("status %d, want %d: %s", resp.status, status, resp.body);
  char want[96];
  snprintf(want, sizeof want, "{\"error\":{\"code\":\"%s\"", code);
  if (strncmp(resp.body, want, strlen(want)) != 0) fail_msg("body %s, want code %s", resp.body, code);
}

static void test_refusals_and_upgrade(void **state) {
  (void)state;
  start();
  hb_conn_claims cl;
  hbt_claims(&stk, &cl);
  char *tok = hbt_mint(&stk, &cl);
  char target[HB_MAX_CONN_TOKEN_BYTES + 256];
  const char *origin = "Origin: https://app.example\r\n";

  upgrade("/api/v1/ws", origin, "13");
  expect(401, "missing_token");
  upgrade("/api/v1/ws?token=%zz", origin, "13");
  expect(401, "invalid_token");
  upgrade("/api/v1/ws?token=not.a.jwt", origin, "13");
  expect(401, "invalid_token");
  hb_conn_claims other = cl;
  hb_uuid_v4(&other.plugin); /* a plugin the store does not know */
  char *forged = hb_jwt_mint(&other, "some other secret", 17);
  snprintf(target, sizeof target, "/api/v1/ws?token=%s", forged);
  upgrade(target, origin, "13");
  expect(401, "invalid_token");
  hb_free(forged);

  snprintf(target, sizeof target, "/api/v1/ws?token=%s&subscribe=a,,b", tok);
  upgrade(target, origin, "13");
  expect(422, "invalid_event_name");
  snprintf(target, sizeof target, "/api/v1/ws?token=%s&subscribe=a,b,c", tok);
  upgrade(target, origin, "13");
  expect(422, "too_many_subscriptions");
  snprintf(target, sizeof target, "/api/v1/ws?token=%s&subscribe=a%%2", tok);
  upgrade(target, origin, "13");
  expect(400, "bad_request");

  snprintf(target, sizeof target, "/api/v1/ws?token=%s", tok);
  upgrade(target, "Origin: https://evil.example\r\n", "13");
  expect(403, "origin_forbidden");
  upgrade(target, NULL, "13"); /* an allowlist: no Origin is not allowed either */
  expect(403, "origin_forbidden");
  upgrade(target, origin, "12");
  expect(426, "upgrade_required");
  assert_string_equal(hbt_header(&resp, "Sec-WebSocket-Version"), "13");

  snprintf(target, sizeof target, "/api/v1/ws?token=%s&subscribe=a,b", tok);
  upgrade(target, "Origin: HTTPS://App.Example\r\n", "13");
  assert_int_equal(resp.status, 101);
  assert_string_equal(hbt_header(&resp, "Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  assert_non_null(strstr(fr.payload, "\"subscribed\":[\"a\",\"b\"]"));
  hb_free(tok);
  hbt_stack_stop(&stk);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_refusals_and_upgrade),
  };
  return cmocka_run_group_tests_name("room_socket", tests, NULL, NULL);
}
