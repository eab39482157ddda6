/*
 * test_http.c - the HTTP glue (http.c) on real connections, with a test
 * router registered through hb_http_init: requests split at every byte,
 * pipelining, keep-alive, the strict line checks (bare LF, folding, a space
 * before the colon, a duplicate Host) and the size limits, each refused with
 * its status and closed; HEAD answered without a body; the query-parameter
 * reader and the error body.
 *
 * A request is either fed to hb_http_on_read on the connection's thread (to
 * choose exactly how it is split into reads) or written to the socket; the
 * answer is always read from the socket.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "text.h"
#include "stack.h"

#include "hubbub/alloc.h"
#include "hubbub/http.h"
#include "hubbub/json.h"
#include "hubbub/limits.h"
#include "hubbub/metrics.h"
#include "hubbub/pubreq.h"
#include "hubbub/strbuf.h"

#define MAX_DATA 32768
#define MAX_BODY 1024

/* --- the test router ----------------------------------------------------------- */

static int headers_seen, requests_seen; /* on the I/O thread */

/* "/refuse..." is refused from its headers (its body is never read);
 * anything else is answered with what the glue parsed. */
static bool r_headers(hb_conn *c, hb_http_req *req) {
  headers_seen++;
  if (strncmp(req->url, "/refuse", 7) == 0) {
    hb_error e;
    hb_error_set(&e, HB_E_NOT_FOUND, NULL, NULL);
    hb_http_respond_error(c, &e, NULL, true);
    return false;
  }
  return true;
}

static void r_request(hb_conn *c, hb_http_req *req) {
  requests_seen++;
  hb_strbuf b = HB_STRBUF_INIT;
  hb_strbuf_addf(&b, "%s %s host=%s body=", http_method_str(req->method), req->url,
                 req->hdr[HB_H_HOST] ? req->hdr[HB_H_HOST] : "-");
  if (req->body.len) hb_strbuf_add(&b, req->body.buf, req->body.len);
  hb_http_respond(c, 200, "text/plain", NULL, b.buf, b.len, false);
  hb_strbuf_free(&b);
}

static const hb_http_handlers router = {r_headers, r_request};

static hbt_stack stk;
static hb_io *io;

static void start(void) {
  headers_seen = requests_seen = 0;
  hbt_stack_init(&stk);
  stk.mode = HBT_CUSTOM;
  stk.hooks = (hb_io_hooks){.accept_handler = &hb_http_conn_handler, .conn_ext_bytes = sizeof(hb_http_conn)};
  stk.cfg.max_body_bytes = MAX_BODY;
  hb_http_init(&router);
  hbt_stack_start(&stk);
  io = hbt_io(&stk, 0);
}

typedef struct {
  hb_conn *c;
  const char *p;
  size_t n, split;
} feed_job;

/* As reads would deliver it: p[0..split), then the rest (split 0: one byte a read). */
static void feed(void *arg) {
  feed_job *f = arg;
  if (f->split == 0) {
    for (size_t i = 0; i < f->n && f->c->state == HB_CONN_OPEN; i++) hb_http_on_read(f->c, f->p + i, 1);
    return;
  }
  hb_http_on_read(f->c, f->p, f->split);
  if (f->c->state == HB_CONN_OPEN) hb_http_on_read(f->c, f->p + f->split, f->n - f->split);
}

static void expect_echo(int fd, hb_strbuf *in, const char *want) {
  hbt_http_resp r;
  hbt_recv_http(fd, in, &r, false);
  assert_int_equal(r.status, 200);
  if (strcmp(r.body, want) != 0) fail_msg("got '%s', want '%s'", r.body, want);
  assert_null(hbt_header(&r, "Connection"));
}

/* --- requests in pieces ---------------------------------------------------------- */

static const char POST[] = "POST /echo?x=1 HTTP/1.1\r\nHost: example\r\nContent-Type: text/plain\r\n"
                           "Content-Length: 11\r\n\r\nhello world";
#define POST_ECHO "POST /echo?x=1 host=example body=hello world"

/* Every split point of a request, then one byte a read: the same answer
 * each time, all on one keep-alive connection. */
static void test_split_at_every_byte(void **state) {
  (void)state;
  start();
  int fd;
  feed_job f = {.c = hbt_attach(io, &fd, 0), .p = POST, .n = sizeof POST - 1};
  hb_strbuf in = HB_STRBUF_INIT;
  for (f.split = 1; f.split < f.n; f.split++) {
    hbt_on_io(io, feed, &f);
    expect_echo(fd, &in, POST_ECHO);
  }
  f.split = 0;
  hbt_on_io(io, feed, &f);
  expect_echo(fd, &in, POST_ECHO);
  assert_int_equal(requests_seen, (int)f.n);
  hb_strbuf_free(&in);
  close(fd);
  hbt_stack_stop(&stk);
}

/* Three requests in one read, and split anywhere: answered in order. */
static void test_pipelining(void **state) {
  (void)state;
  start();
  int fd;
  static const char three[] = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                              "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz"
                              "GET /c HTTP/1.1\r\nHost: h\r\n\r\n";
  feed_job f = {.c = hbt_attach(io, &fd, 0), .p = three, .n = sizeof three - 1};
  hb_strbuf in = HB_STRBUF_INIT;
  for (f.split = 1; f.split < f.n; f.split += 7) {
    hbt_on_io(io, feed, &f);
    expect_echo(fd, &in, "GET /a host=h body=");
    expect_echo(fd, &in, "POST /b host=h body=xyz");
    expect_echo(fd, &in, "GET /c host=h body=");
  }
  /* and through the socket, as a client pipelines */
  hbt_send_str(fd, three);
  expect_echo(fd, &in, "GET /a host=h body=");
  expect_echo(fd, &in, "POST /b host=h body=xyz");
  expect_echo(fd, &in, "GET /c host=h body=");
  hb_strbuf_free(&in);
  close(fd);
  hbt_stack_stop(&stk);
}

/* HTTP/1.1 keeps the connection; "Connection: close" and HTTP/1.0 (without
 * keep-alive) get "Connection: close" and the server closes after the
 * answer; HTTP/1.0 may leave out Host. */
static void test_keep_alive(void **state) {
  (void)state;
  start();
  const char *closing[] = {"GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", "GET /x HTTP/1.0\r\n\r\n"};
  for (int i = 0; i < 2; i++) {
    int fd;
    hbt_attach(io, &fd, 0);
    hb_strbuf in = HB_STRBUF_INIT;
    hbt_send_str(fd, closing[i]);
    hbt_http_resp r;
    hbt_recv_http(fd, &in, &r, false);
    assert_int_equal(r.status, 200);
    assert_string_equal(hbt_header(&r, "Connection"), "close");
    hbt_recv_eof(fd, &in);
    assert_int_equal(in.len, 0);
    hb_strbuf_free(&in);
    close(fd);
  }
  int fd;
  hbt_attach(io, &fd, 0);
  hb_strbuf in = HB_STRBUF_INIT;
  hbt_send_str(fd, "GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  expect_echo(fd, &in, "GET /1 host=- body=");
  hbt_send_str(fd, "GET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
  expect_echo(fd, &in, "GET /2 host=h body=");
  hb_strbuf_free(&in);
  close(fd);
  hbt_stack_stop(&stk);
}

/* HEAD: the headers of the answer (Content-Length of the body it would
 * have), no body bytes; the next request on the connection parses. */
static void test_head_without_body(void **state) {
  (void)state;
  start();
  int fd;
  hbt_attach(io, &fd, 0);
  hb_strbuf in = HB_STRBUF_INIT;
  hbt_send_str(fd, "HEAD /h HTTP/1.1\r\nHost: h\r\n\r\nGET /g HTTP/1.1\r\nHost: h\r\n\r\n");
  hbt_http_resp r;
  hbt_recv_http(fd, &in, &r, true);
  assert_int_equal(r.status, 200);
  assert_string_equal(hbt_header(&r, "Content-Length"), "20"); /* of "HEAD /h host=h body=" */
  expect_echo(fd, &in, "GET /g host=h body=");
  hb_strbuf_free(&in);
  close(fd);
  hbt_stack_stop(&stk);
}

/* --- refusals ------------------------------------------------------------------- */

/* Send `req` on a new connection: the answer has `status` and error `code`,
 * says Connection: close, and the server closes. */
static void expect_refused(const char *req, size_t len, int status, const char *code, const char *msg) {
  int fd;
  hbt_attach(io, &fd, 0);
  hbt_send(fd, req, len);
  hb_strbuf in = HB_STRBUF_INIT;
  hbt_http_resp r;
  hbt_recv_http(fd, &in, &r, false);
  if (r.status != status) fail_msg("'%.40s...': status %d, want %d (%s)", req, r.status, status, r.body);
  char want[128];
  snprintf(want, sizeof want, "{\"error\":{\"code\":\"%s\"", code);
  if (strncmp(r.body, want, strlen(want)) != 0) fail_msg("'%.40s...': body %s, want code %s", req, r.body, code);
  if (msg && !strstr(r.body, msg)) fail_msg("'%.40s...': body %s lacks '%s'", req, r.body, msg);
  assert_string_equal(hbt_header(&r, "Connection"), "close");
  assert_string_equal(hbt_header(&r, "Content-Type"), "application/json");
  hbt_recv_eof(fd, &in);
  hb_strbuf_free(&in);
  close(fd);
}

#define REFUSED(req, status, code, msg) expect_refused(req, sizeof(req) - 1, status, code, msg)

static void test_strict_lines(void **state) {
  (void)state;
  start();
  long long errors = hb_metric_get(HB_M_HTTP_ERRORS);
  REFUSED("GET / HTTP/1.1\nHost: h\n\n", 400, "bad_request", "CRLF line endings");
  REFUSED("GET / HTTP/1.1\r\nHost: h\nX-A: 1\r\n\r\n", 400, "bad_request", "CRLF line endings");
  REFUSED("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", 400, "bad_request", "no folding");
  REFUSED("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb\r\n\r\n", 400, "bad_request", "no folding");
  REFUSED("GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400, "bad_request", "invalid character in a header name");
  REFUSED("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400, "bad_request", "duplicate host header");
  REFUSED("GET / HTTP/1.1\r\nX: y\r\n\r\n", 400, "bad_request", "missing Host header");
  REFUSED("GET / HTTP/1.2\r\nHost: h\r\n\r\n", 400, "bad_request", "HTTP/1.0 and HTTP/1.1");
  /* smuggling: http-parser refuses the pair itself ("unexpected content-length"), the glue
   * checks it again in case a version lets it through */
  REFUSED("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc", 400,
          "bad_request", NULL);
  REFUSED("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc", 400,
          "bad_request", NULL);
  REFUSED("\r\n\n", 400, "bad_request", NULL);
  REFUSED("GARBAGE\r\n\r\n", 400, "bad_request", "malformed request");
  assert_int_equal(hb_metric_get(HB_M_HTTP_ERRORS) - errors, 12);
  /* a router's refusal at the headers: its body is never read */
  REFUSED("POST /refuse HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nabcde", 404, "not_found", NULL);
  hbt_stack_stop(&stk);
  assert_int_equal(requests_seen, 0);
}

static void test_limits(void **state) {
  (void)state;
  start();
  hb_strbuf r = HB_STRBUF_INIT;
  /* the request target */
  hb_strbuf_addstr(&r, "GET /");
  for (int i = 0; i < HB_MAX_URL_BYTES; i++) hb_strbuf_addch(&r, 'u');
  hb_strbuf_addstr(&r, " HTTP/1.1\r\nHost: h\r\n\r\n");
  expect_refused(r.buf, r.len, 414, "uri_too_long", NULL);
  /* one header value */
  hb_strbuf_reset(&r);
  hb_strbuf_addstr(&r, "GET / HTTP/1.1\r\nHost: h\r\nX-Big: ");
  for (int i = 0; i <= HB_MAX_HEADER_VALUE_BYTES; i++) hb_strbuf_addch(&r, 'v');
  hb_strbuf_addstr(&r, "\r\n\r\n");
  expect_refused(r.buf, r.len, 431, "headers_too_large", "a header value");
  /* the number of header fields */
  hb_strbuf_reset(&r);
  hb_strbuf_addstr(&r, "GET / HTTP/1.1\r\nHost: h\r\n");
  for (int i = 0; i < HB_MAX_HEADERS; i++) hb_strbuf_addf(&r, "X-%d: 1\r\n", i);
  hb_strbuf_addstr(&r, "\r\n");
  expect_refused(r.buf, r.len, 431, "headers_too_large", "too many header fields");
  /* all headers together */
  hb_strbuf_reset(&r);
  hb_strbuf_addstr(&r, "GET / HTTP/1.1\r\nHost: h\r\n");
  for (int i = 0; i < 8; i++) {
    hb_strbuf_addf(&r, "X-%d: ", i);
    for (int k = 0; k < HB_MAX_HEADER_BYTES / 8; k++) hb_strbuf_addch(&r, 'w');
    hb_strbuf_addstr(&r, "\r\n");
  }
  hb_strbuf_addstr(&r, "\r\n");
  expect_refused(r.buf, r.len, 431, "headers_too_large", "over the size limit");
  /* the body: the limit passes, one byte more does not */
  hb_strbuf_reset(&r);
  hb_strbuf_addf(&r, "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n", MAX_BODY);
  size_t head = r.len;
  for (int i = 0; i < MAX_BODY; i++) hb_strbuf_addch(&r, 'b');
  int fd;
  hbt_attach(io, &fd, 0);
  hbt_send(fd, r.buf, r.len);
  hb_strbuf in = HB_STRBUF_INIT;
  hbt_http_resp resp;
  hbt_recv_http(fd, &in, &resp, false);
  assert_int_equal(resp.status, 200);
  assert_int_equal(resp.body_len, strlen("POST /b host=h body=") + MAX_BODY);
  hb_strbuf_free(&in);
  close(fd);
  hb_strbuf_reset(&r);
  hb_strbuf_addf(&r, "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n", MAX_BODY + 1);
  for (int i = 0; i <= MAX_BODY; i++) hb_strbuf_addch(&r, 'b');
  expect_refused(r.buf, r.len, 413, "payload_too_large", NULL);
  (void)head;
  /* a chunked body is counted as it comes */
  hb_strbuf_reset(&r);
  hb_strbuf_addstr(&r, "POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
  for (int i = 0; i < 3; i++) {
    hb_strbuf_addf(&r, "%x\r\n", MAX_BODY / 2);
    for (int k = 0; k < MAX_BODY / 2; k++) hb_strbuf_addch(&r, 'c');
    hb_strbuf_addstr(&r, "\r\n");
  }
  hb_strbuf_addstr(&r, "0\r\n\r\n");
  expect_refused(r.buf, r.len, 413, "payload_too_large", NULL);
  hb_strbuf_free(&r);
  hbt_stack_stop(&stk);
}

/* --- the pure helpers ------------------------------------------------------------ */

static void test_query_param(void **state) {
  (void)state;
  char out[16];
  assert_int_equal(hb_http_query_param("/ws?token=abc&x=1", "token", out, sizeof out), 3);
  assert_string_equal(out, "abc");
  assert_int_equal(hb_http_query_param("/ws?x=1&token=a%2Bb%20c", "token", out, sizeof out), 5);
  assert_string_equal(out, "a+b c");
  assert_int_equal(hb_http_query_param("/ws?token=first&token=second", "token", out, sizeof out), 5);
  assert_string_equal(out, "first"); /* only the first occurrence counts */
  assert_int_equal(hb_http_query_param("/ws?tokens=x&mytoken=y", "token", out, sizeof out), 0);
  assert_int_equal(hb_http_query_param("/ws?token=", "token", out, sizeof out), 0);
  assert_int_equal(hb_http_query_param("/ws?token", "token", out, sizeof out), 0);
  assert_int_equal(hb_http_query_param("/ws", "token", out, sizeof out), 0);
  assert_int_equal(hb_http_query_param("/ws?", "token", out, sizeof out), 0);
  assert_int_equal(hb_http_query_param("/ws?a=1&&token=z", "token", out, sizeof out), 1);
  assert_int_equal(hb_http_query_param("/ws?token=%zz", "token", out, sizeof out), -1);
  assert_int_equal(hb_http_query_param("/ws?token=%4", "token", out, sizeof out), -1);
  assert_int_equal(hb_http_query_param("/ws?token=0123456789abcdef", "token", out, sizeof out), -1); /* too long */
  assert_int_equal(hb_http_query_param("/ws?token=0123456789abcde", "token", out, sizeof out), 15);
}

static void test_tokens_and_reasons(void **state) {
  (void)state;
  const char *v = "keep-alive, Upgrade ,\tfoo";
  assert_true(hb_http_has_token(v, strlen(v), "upgrade"));
  assert_true(hb_http_has_token(v, strlen(v), "KEEP-ALIVE"));
  assert_true(hb_http_has_token(v, strlen(v), "foo"));
  assert_false(hb_http_has_token(v, strlen(v), "up"));
  assert_false(hb_http_has_token(v, strlen(v), "grade"));
  assert_false(hb_http_has_token("", 0, "upgrade"));
  assert_false(hb_http_has_token("upgrade", 6, "upgrade")); /* only `len` bytes */
  for (int e = 0; e < HB_E__COUNT; e++)
    if (strcmp(hb_http_reason(hb_err_http_status(e)), "Unknown") == 0)
      fail_msg("status %d of %s has no reason phrase", hb_err_http_status(e), hb_err_code(e));
  assert_string_equal(hb_http_reason(101), "Switching Protocols");
  assert_string_equal(hb_http_reason(299), "Unknown");
}


static void test_http_error_body(void **state) {
  (void)state;
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_error e;
  hb_error_set(&e, HB_E_INVALID_UUID, "/scope/event_id", "event_id is not a UUID");
  hb_http_error_body(&sb, &e);
  hbt_expect_sb(&sb, "{\"error\":{\"code\":\"invalid_uuid\",\"message\":\"event_id is not a UUID\","
                 "\"pointer\":\"/scope/event_id\"}}");
  hb_error_set(&e, HB_E_MISSING_TOKEN, NULL, NULL);
  hb_http_error_body(&sb, &e);
  hbt_expect_sb(&sb, "{\"error\":{\"code\":\"missing_token\",\"message\":\"no token given\"}}");
  hb_error_set(&e, HB_E_INVALID_TYPE, HB_POINTER_ROOT, "the body must be a JSON object");
  hb_http_error_body(&sb, &e);
  hbt_expect_sb(&sb, "{\"error\":{\"code\":\"invalid_type\",\"message\":\"the body must be a JSON object\","
                 "\"pointer\":\"\"}}");
  /* decoded errors go straight into the body */
  for (int tree = 0; tree < 2; tree++) { /* on both decoding paths */
    hb_pubreq r;
    memset(&e, 0, sizeof e);
    hb_err got = tree ? hb_pubreq_decode_tree("[1]", 3, MAX_DATA, &r, &e) : hb_pubreq_decode("[1]", 3, MAX_DATA, &r, &e);
    assert_int_equal(got, HB_E_INVALID_TYPE);
    hb_http_error_body(&sb, &e);
    assert_non_null(strstr(sb.buf, ",\"pointer\":\"\"}}"));
    hb_strbuf_free(&sb);
    hb_pubreq_clear(&r);
  }
  /* a pointer with characters that need escaping */
  hb_error_set(&e, HB_E_INVALID_VALUE, "/a\"b", NULL);
  hb_http_error_body(&sb, &e);
  hbt_expect_sb(&sb, "{\"error\":{\"code\":\"invalid_value\",\"message\":\"a value is out of range\","
                 "\"pointer\":\"/a\\\"b\"}}");
}


int main(void) {
  hb_json_init(); /* as the server does */
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_split_at_every_byte),
      HBT_TEST(test_pipelining),
      HBT_TEST(test_keep_alive),
      HBT_TEST(test_head_without_body),
      HBT_TEST(test_strict_lines),
      HBT_TEST(test_limits),
      HBT_TEST(test_query_param),
      HBT_TEST(test_tokens_and_reasons),
      HBT_TEST(test_http_error_body),
  };
  return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
