/*
 * test_jwt.c - connection tokens: mint/verify round trip, time checks with
 * their leeway edges, algorithm refusal, strict base64url, forgeries and the
 * shape of every claim.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>

#include "hubbub/alloc.h"
#include "hubbub/jwt.h"
#include "hubbub/strbuf.h"

#define KEY "hbs_0123456789abcdef0123456789abcdef"
#define NOW 1790000000LL
#define ORG "11111111-1111-4111-8111-111111111111"
#define PLUGIN "22222222-2222-4222-8222-222222222222"
#define EVENT "33333333-3333-4333-8333-333333333333"
#define SESSION "44444444-4444-4444-8444-444444444444"
#define IDS "\"organization_id\":\"" ORG "\",\"plugin_id\":\"" PLUGIN "\",\"event_id\":\"" EVENT \
            "\",\"session_id\":\"" SESSION "\""
#define HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

/* --- token crafting (independent of the code under test) ------------------ */

static void b64url(hb_strbuf *sb, const void *p, size_t n) {
  /* EVP_EncodeBlock writes standard base64 with padding; convert it. */
  unsigned char out[8192];
  int m = EVP_EncodeBlock(out, p, (int)n);
  for (int i = 0; i < m; i++) {
    char c = (char)out[i];
    if (c == '=') break;
    hb_strbuf_addch(sb, c == '+' ? '-' : c == '/' ? '_' : c);
  }
}

/* header.payload.signature signed with `key`; caller frees. */
static char *craft(const char *header, const char *payload, const char *key) {
  hb_strbuf sb = HB_STRBUF_INIT;
  b64url(&sb, header, strlen(header));
  hb_strbuf_addch(&sb, '.');
  b64url(&sb, payload, strlen(payload));
  unsigned char mac[32];
  unsigned int mlen = 0;
  HMAC(EVP_sha256(), key, (int)strlen(key), (unsigned char *)sb.buf, sb.len, mac, &mlen);
  hb_strbuf_addch(&sb, '.');
  b64url(&sb, mac, mlen);
  return hb_strbuf_release(&sb, NULL);
}

/* A payload with the standard ids, `extra` claims appended. */
static char *craft_claims(const char *extra) {
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_strbuf_addf(&sb, "{" IDS ",%s}", extra);
  char *tok = craft(HS256, sb.buf, KEY);
  hb_strbuf_free(&sb);
  return tok;
}

static hb_err verify(const char *tok, hb_conn_claims *c, hb_error *e) {
  memset(e, 0, sizeof *e);
  return hb_jwt_verify(tok, strlen(tok), KEY, strlen(KEY), NOW, c, e);
}

static void expect_fail_tok(const char *tok, hb_err want) {
  hb_conn_claims c;
  hb_error e;
  hb_err r = verify(tok, &c, &e);
  if (r != want) print_error("token %s: got %s (%s)\n", tok, hb_err_code(r), e.message);
  assert_int_equal(r, want);
  assert_int_equal(e.err, want);
  assert_string_equal(e.pointer, "");
  assert_true(e.message[0] != '\0');
  /* The message never echoes the token. */
  const char *dot = strchr(tok, '.');
  if (dot && dot - tok >= 8) {
    char head[9];
    memcpy(head, tok, 8);
    head[8] = '\0';
    assert_null(strstr(e.message, head));
  }
}

static void expect_fail_claims(const char *extra, hb_err want) {
  char *tok = craft_claims(extra);
  expect_fail_tok(tok, want);
  hb_free(tok);
}

static void expect_ok_claims(const char *extra, hb_conn_claims *c) {
  char *tok = craft_claims(extra);
  hb_error e;
  hb_err r = verify(tok, c, &e);
  if (r != HB_OK) print_error("claims %s: %s\n", extra, e.message);
  assert_int_equal(r, HB_OK);
  hb_free(tok);
}

static hb_conn_claims sample(void) {
  hb_conn_claims c;
  memset(&c, 0, sizeof c);
  hb_uuid_parse(ORG, 36, &c.org);
  hb_uuid_parse(PLUGIN, 36, &c.plugin);
  hb_uuid_parse(EVENT, 36, &c.event);
  hb_uuid_parse(SESSION, 36, &c.session);
  snprintf(c.user_id, sizeof c.user_id, "alice");
  c.scopes = HB_SCOPE_BIT(HB_SCOPE_SESSION) | HB_SCOPE_BIT(HB_SCOPE_EVENT);
  c.iat = NOW;
  c.exp = NOW + 3600;
  return c;
}

/* --- round trip ----------------------------------------------------------- */

static void test_roundtrip(void **state) {
  (void)state;
  hb_conn_claims in = sample(), out;
  char *tok = hb_jwt_mint(&in, KEY, strlen(KEY));
  assert_non_null(tok);
  /* header is exactly {"alg":"HS256","typ":"JWT"} */
  assert_memory_equal(tok, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.", 37);
  /* no padding, only the base64url alphabet and two dots */
  int dots = 0;
  for (const char *p = tok; *p; p++) {
    if (*p == '.') dots++;
    else assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p));
  }
  assert_int_equal(dots, 2);
  hb_error e;
  assert_int_equal(verify(tok, &out, &e), HB_OK);
  assert_true(hb_uuid_eq(&in.org, &out.org));
  assert_true(hb_uuid_eq(&in.plugin, &out.plugin));
  assert_true(hb_uuid_eq(&in.event, &out.event));
  assert_true(hb_uuid_eq(&in.session, &out.session));
  assert_string_equal(out.user_id, "alice");
  assert_int_equal(out.scopes, in.scopes);
  assert_int_equal(out.iat, in.iat);
  assert_int_equal(out.exp, in.exp);
  assert_int_equal(out.nbf, 0);
  /* the same token verifies again (no state) and with NULL out/err */
  assert_int_equal(hb_jwt_verify(tok, strlen(tok), KEY, strlen(KEY), NOW, NULL, NULL), HB_OK);
  hb_uuid pl;
  assert_int_equal(hb_jwt_peek_plugin(tok, strlen(tok), &pl), HB_OK);
  assert_true(hb_uuid_eq(&pl, &in.plugin));
  hb_free(tok);
}

static void test_mint_exact(void **state) {
  (void)state;
  /* A token minted by us equals one crafted independently from the
   * documented claim layout: any JWT library can read ours, and vice versa. */
  hb_conn_claims in = sample();
  in.nbf = NOW - 10;
  snprintf(in.user_id, sizeof in.user_id, "b\"ob\\");
  in.scopes = 7;
  char *tok = hb_jwt_mint(&in, KEY, strlen(KEY));
  char payload[1024];
  snprintf(payload, sizeof payload,
           "{" IDS ",\"sub\":\"b\\\"ob\\\\\",\"scopes\":[\"session\",\"event\",\"organization\"],"
           "\"iat\":%lld,\"exp\":%lld,\"nbf\":%lld}",
           NOW, NOW + 3600, NOW - 10);
  char *want = craft(HS256, payload, KEY);
  assert_string_equal(tok, want);
  hb_conn_claims out;
  hb_error e;
  assert_int_equal(verify(tok, &out, &e), HB_OK);
  assert_string_equal(out.user_id, "b\"ob\\");
  assert_int_equal(out.nbf, NOW - 10);
  assert_int_equal(out.scopes, 7u);
  hb_free(tok);
  hb_free(want);
  /* no scopes at all: an empty array, read back as no scopes */
  in.scopes = 0;
  tok = hb_jwt_mint(&in, KEY, strlen(KEY));
  assert_int_equal(verify(tok, &out, &e), HB_OK);
  assert_int_equal(out.scopes, 0u);
  hb_free(tok);
}

static void test_third_party_shapes(void **state) {
  (void)state;
  hb_conn_claims c;
  hb_error e;
  /* header key order, kid, extra header fields, typ in any case */
  const char *p = "{" IDS ",\"sub\":\"u\",\"exp\":1790003600}";
  const char *headers[] = {
      "{\"typ\":\"JWT\",\"alg\":\"HS256\"}",
      "{\"alg\":\"HS256\"}",
      "{\"alg\":\"HS256\",\"kid\":\"k1\"}",
      "{\"alg\":\"HS256\",\"typ\":\"jwt\",\"cty\":\"x\"}",
      " { \"alg\" : \"HS256\" } ",
  };
  for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
    char *tok = craft(headers[i], p, KEY);
    assert_int_equal(verify(tok, &c, &e), HB_OK);
    hb_free(tok);
  }
  /* default scopes when absent; unknown claims ignored */
  expect_ok_claims("\"sub\":\"u\",\"exp\":1790003600,\"aud\":\"x\",\"jti\":\"1\"", &c);
  assert_int_equal(c.scopes, HB_SCOPE_SET_DEFAULT);
  assert_int_equal(c.iat, 0);
  assert_int_equal(c.nbf, 0);
  /* exp as an integral real (some libraries) */
  expect_ok_claims("\"sub\":\"u\",\"exp\":1.790003600e9", &c);
  assert_int_equal(c.exp, 1790003600LL);
  expect_ok_claims("\"sub\":\"u\",\"exp\":1790003600.0,\"iat\":1790000000.0", &c);
  assert_int_equal(c.iat, 1790000000LL);
  /* uppercase UUIDs */
  char *tok = craft(HS256,
                    "{\"organization_id\":\"AAAAAAAA-1111-4111-8111-111111111111\",\"plugin_id\":\"" PLUGIN
                    "\",\"event_id\":\"" EVENT "\",\"session_id\":\"" SESSION "\",\"sub\":\"u\",\"exp\":1790003600}",
                    KEY);
  assert_int_equal(verify(tok, &c, &e), HB_OK);
  assert_int_equal(c.org.b[0], 0xaa);
  hb_free(tok);
  /* sub of exactly 128 bytes, UTF-8 allowed */
  char extra[512];
  snprintf(extra, sizeof extra, "\"sub\":\"%0128d\",\"exp\":1790003600", 0);
  expect_ok_claims(extra, &c);
  assert_int_equal(strlen(c.user_id), 128);
  expect_ok_claims("\"sub\":\"\xc3\xa9l\xc3\xa8ve\",\"exp\":1790003600", &c);
  assert_string_equal(c.user_id, "\xc3\xa9l\xc3\xa8ve");
}

/* --- time ----------------------------------------------------------------- */

static void test_expiry_and_leeway(void **state) {
  (void)state;
  hb_conn_claims c;
  char extra[128];
  /* valid while now - leeway < exp */
  snprintf(extra, sizeof extra, "\"sub\":\"u\",\"exp\":%lld", NOW - HB_JWT_LEEWAY_S + 1);
  expect_ok_claims(extra, &c);
  snprintf(extra, sizeof extra, "\"sub\":\"u\",\"exp\":%lld", NOW - HB_JWT_LEEWAY_S);
  expect_fail_claims(extra, HB_E_TOKEN_EXPIRED);
  snprintf(extra, sizeof extra, "\"sub\":\"u\",\"exp\":%lld", NOW - 3600);
  expect_fail_claims(extra, HB_E_TOKEN_EXPIRED);
  snprintf(extra, sizeof extra, "\"sub\":\"u\",\"exp\":%lld", 0LL);
  expect_fail_claims(extra, HB_E_TOKEN_EXPIRED);
  expect_fail_claims("\"sub\":\"u\",\"exp\":-5", HB_E_TOKEN_EXPIRED);
  /* far future, no overflow */
  expect_ok_claims("\"sub\":\"u\",\"exp\":9223372036854775807", &c);
  /* nbf: valid once now + leeway >= nbf */
  snprintf(extra, sizeof extra, "\"sub\":\"u\",\"exp\":%lld,\"nbf\":%lld", NOW + 100,
           NOW + HB_JWT_LEEWAY_S);
  expect_ok_claims(extra, &c);
  assert_int_equal(c.nbf, NOW + HB_JWT_LEEWAY_S);
  snprintf(extra, sizeof extra, "\"sub\":\"u\",\"exp\":%lld,\"nbf\":%lld", NOW + 100,
           NOW + HB_JWT_LEEWAY_S + 1);
  expect_fail_claims(extra, HB_E_INVALID_TOKEN);
  snprintf(extra, sizeof extra, "\"sub\":\"u\",\"exp\":%lld,\"nbf\":%lld", NOW + 100, NOW - 100);
  expect_ok_claims(extra, &c);
  /* an expired token whose signature is wrong is invalid, not expired:
   * nothing in an unverified payload is believed */
  char payload[512];
  snprintf(payload, sizeof payload, "{" IDS ",\"sub\":\"u\",\"exp\":%lld}", NOW - 3600);
  char *tok = craft(HS256, payload, "other key");
  expect_fail_tok(tok, HB_E_INVALID_TOKEN);
  hb_free(tok);
}

/* --- algorithms and header ------------------------------------------------ */

static void test_alg(void **state) {
  (void)state;
  const char *p = "{" IDS ",\"sub\":\"u\",\"exp\":1790003600}";
  const char *bad_headers[] = {
      "{\"alg\":\"none\"}",
      "{\"alg\":\"None\",\"typ\":\"JWT\"}",
      "{\"alg\":\"HS512\"}",
      "{\"alg\":\"HS384\"}",
      "{\"alg\":\"RS256\"}",
      "{\"alg\":\"ES256\"}",
      "{\"alg\":\"hs256\"}",
      "{\"alg\":\"HS256 \"}",
      "{\"alg\":\"HS256\\u0000\"}",
      "{\"alg\":256}",
      "{\"alg\":null}",
      "{\"alg\":[\"HS256\"]}",
      "{\"typ\":\"JWT\"}",
      "{}",
      "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
      "{\"alg\":\"HS256\",\"crit\":[]}",
      "{\"alg\":\"HS256\",\"typ\":1}",
      "{\"alg\":\"HS256\",\"kid\":{}}",
      "{\"alg\":\"HS256\",\"alg\":\"HS256\"}",
      "[\"HS256\"]",
      "\"HS256\"",
      "{\"alg\":\"HS256\"",
      "",
  };
  for (size_t i = 0; i < sizeof bad_headers / sizeof bad_headers[0]; i++) {
    char *tok = craft(bad_headers[i], p, KEY);
    expect_fail_tok(tok, HB_E_INVALID_TOKEN);
    hb_free(tok);
  }
  /* alg none with an empty signature, the classic */
  hb_strbuf sb = HB_STRBUF_INIT;
  b64url(&sb, "{\"alg\":\"none\"}", 14);
  hb_strbuf_addch(&sb, '.');
  b64url(&sb, p, strlen(p));
  hb_strbuf_addch(&sb, '.');
  expect_fail_tok(sb.buf, HB_E_INVALID_TOKEN);
  hb_strbuf_free(&sb);
}

/* --- structure and base64url ---------------------------------------------- */

static char *good_token(void) {
  hb_conn_claims in = sample();
  return hb_jwt_mint(&in, KEY, strlen(KEY));
}

static void test_structure(void **state) {
  (void)state;
  char *tok = good_token();
  size_t n = strlen(tok);
  char buf[8192];
  hb_conn_claims c;
  hb_error e;

  expect_fail_tok("", HB_E_INVALID_TOKEN);
  expect_fail_tok("abc", HB_E_INVALID_TOKEN);
  expect_fail_tok("a.b", HB_E_INVALID_TOKEN);
  expect_fail_tok("..", HB_E_INVALID_TOKEN);
  expect_fail_tok("...", HB_E_INVALID_TOKEN);
  /* extra dots anywhere */
  snprintf(buf, sizeof buf, "%s.", tok);
  expect_fail_tok(buf, HB_E_INVALID_TOKEN);
  snprintf(buf, sizeof buf, ".%s", tok);
  expect_fail_tok(buf, HB_E_INVALID_TOKEN);
  snprintf(buf, sizeof buf, "%s.xyz", tok);
  expect_fail_tok(buf, HB_E_INVALID_TOKEN);
  /* JWE-like five parts */
  snprintf(buf, sizeof buf, "%s.a.b", tok);
  expect_fail_tok(buf, HB_E_INVALID_TOKEN);
  /* empty payload or signature */
  const char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
  snprintf(buf, sizeof buf, "%.*s.%s", (int)(d1 - tok), tok, d2);
  expect_fail_tok(buf, HB_E_INVALID_TOKEN);
  snprintf(buf, sizeof buf, "%.*s", (int)(d2 - tok + 1), tok);
  expect_fail_tok(buf, HB_E_INVALID_TOKEN);

  /* padding, standard-alphabet characters, whitespace, NUL: refused */
  const char *inserts[] = {"=", "==", "+", "/", " ", "\n", "%", "\xc3\xa9"};
  for (size_t i = 0; i < sizeof inserts / sizeof inserts[0]; i++) {
    /* at the end of the signature */
    snprintf(buf, sizeof buf, "%s%s", tok, inserts[i]);
    expect_fail_tok(buf, HB_E_INVALID_TOKEN);
    /* at the end of the header */
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(d1 - tok), tok, inserts[i], d1);
    expect_fail_tok(buf, HB_E_INVALID_TOKEN);
    /* replacing a payload character */
    snprintf(buf, sizeof buf, "%s", tok);
    memcpy(buf + (d1 - tok) + 5, inserts[i], 1);
    expect_fail_tok(buf, HB_E_INVALID_TOKEN);
  }
  /* a NUL inside, with the full length given */
  memcpy(buf, tok, n + 1);
  buf[n - 3] = '\0';
  memset(&e, 0, sizeof e);
  assert_int_equal(hb_jwt_verify(buf, n, KEY, strlen(KEY), NOW, &c, &e), HB_E_INVALID_TOKEN);

  /* non-canonical last character of the signature: 43 chars carry 258 bits,
   * the last 2 must be zero. Flipping the lowest bit decodes to the same
   * MAC with a strict-less decoder; we refuse it. */
  memcpy(buf, tok, n + 1);
  const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  int v = (int)(strchr(alpha, buf[n - 1]) - alpha);
  assert_int_equal(v & 3, 0);
  buf[n - 1] = alpha[v | 1];
  expect_fail_tok(buf, HB_E_INVALID_TOKEN);
  /* non-canonical payload tails: a last group of 2 characters carries 4
   * spare bits, one of 3 carries 2; either set is refused even when the
   * token is correctly signed over those characters */
  for (int extra = 0; extra < 3; extra++) {
    hb_strbuf sb = HB_STRBUF_INIT, pl = HB_STRBUF_INIT;
    hb_strbuf_addf(&pl, "{" IDS ",\"sub\":\"u%.*s\",\"exp\":1790003600}", extra, "xx");
    b64url(&sb, HS256, strlen(HS256));
    hb_strbuf_addch(&sb, '.');
    b64url(&sb, pl.buf, pl.len);
    size_t tail = pl.len % 3; /* 1: 2 characters in the last group, 2: 3 */
    if (tail != 0) {
      int last = (int)(strchr(alpha, sb.buf[sb.len - 1]) - alpha);
      assert_int_equal(last & (tail == 1 ? 15 : 3), 0);
      sb.buf[sb.len - 1] = alpha[last | 1];
      unsigned char mac[32];
      unsigned int mlen = 0;
      HMAC(EVP_sha256(), KEY, (int)strlen(KEY), (unsigned char *)sb.buf, sb.len, mac, &mlen);
      hb_strbuf_addch(&sb, '.');
      b64url(&sb, mac, mlen);
      expect_fail_tok(sb.buf, HB_E_INVALID_TOKEN);
      memset(&e, 0, sizeof e);
      verify(sb.buf, &c, &e);
      assert_non_null(strstr(e.message, "base64url"));
    }
    hb_strbuf_free(&sb);
    hb_strbuf_free(&pl);
  }
  /* an impossible base64 length (4k+1) in the payload */
  snprintf(buf, sizeof buf, "%.*sA%s", (int)(d2 - tok), tok, d2);
  expect_fail_tok(buf, HB_E_INVALID_TOKEN);

  /* a signature of the wrong length */
  snprintf(buf, sizeof buf, "%.*sAAAA", (int)(n - 4), tok);
  expect_fail_tok(buf, HB_E_INVALID_TOKEN);
  snprintf(buf, sizeof buf, "%sAAAA", tok);
  expect_fail_tok(buf, HB_E_INVALID_TOKEN);
  snprintf(buf, sizeof buf, "%.*s.AAAA", (int)(d2 - tok), tok);
  expect_fail_tok(buf, HB_E_INVALID_TOKEN);
  hb_free(tok);
}

static void test_oversize(void **state) {
  (void)state;
  /* a genuinely signed token over the cap is refused for its size */
  char extra[HB_MAX_CONN_TOKEN_BYTES * 2];
  int n = snprintf(extra, sizeof extra, "\"sub\":\"u\",\"exp\":1790003600,\"pad\":\"");
  memset(extra + n, 'x', HB_MAX_CONN_TOKEN_BYTES);
  snprintf(extra + n + HB_MAX_CONN_TOKEN_BYTES, sizeof extra - (size_t)n - HB_MAX_CONN_TOKEN_BYTES, "\"");
  char *tok = craft_claims(extra);
  assert_true(strlen(tok) > HB_MAX_CONN_TOKEN_BYTES);
  hb_conn_claims c;
  hb_error e;
  assert_int_equal(verify(tok, &c, &e), HB_E_INVALID_TOKEN);
  assert_non_null(strstr(e.message, "longer"));
  hb_uuid pl;
  assert_int_equal(hb_jwt_peek_plugin(tok, strlen(tok), &pl), HB_E_INVALID_TOKEN);
  hb_free(tok);
  /* just under the cap is fine */
  char small[HB_MAX_CONN_TOKEN_BYTES];
  n = snprintf(small, sizeof small, "\"sub\":\"u\",\"exp\":1790003600,\"pad\":\"");
  size_t pad = 2500; /* payload ~2.8 kB -> ~3.8 kB of base64 */
  memset(small + n, 'x', pad);
  snprintf(small + n + pad, sizeof small - (size_t)n - pad, "\"");
  tok = craft_claims(small);
  assert_true(strlen(tok) <= HB_MAX_CONN_TOKEN_BYTES);
  assert_int_equal(verify(tok, &c, &e), HB_OK);
  hb_free(tok);
}

/* --- forgeries ------------------------------------------------------------ */

static void test_forgery(void **state) {
  (void)state;
  char *tok = good_token();
  size_t n = strlen(tok);
  char buf[4096];
  hb_conn_claims c;
  hb_error e;
  /* wrong key, empty key, key that is a prefix */
  memset(&e, 0, sizeof e);
  assert_int_equal(hb_jwt_verify(tok, n, "wrong", 5, NOW, &c, &e), HB_E_INVALID_TOKEN);
  assert_int_equal(hb_jwt_verify(tok, n, "", 0, NOW, &c, &e), HB_E_INVALID_TOKEN);
  assert_int_equal(hb_jwt_verify(tok, n, KEY, strlen(KEY) - 1, NOW, &c, &e), HB_E_INVALID_TOKEN);
  /* every single-character change of the signature is caught */
  const char *d2 = strrchr(tok, '.');
  for (size_t i = (size_t)(d2 - tok) + 1; i < n; i++) {
    memcpy(buf, tok, n + 1);
    buf[i] = buf[i] == 'A' ? 'B' : 'A';
    expect_fail_tok(buf, HB_E_INVALID_TOKEN);
  }
  /* tampered payload: another session, same signature */
  const char *d1 = strchr(tok, '.');
  hb_conn_claims other = sample();
  other.session.b[15] ^= 1;
  char *tok2 = hb_jwt_mint(&other, KEY, strlen(KEY));
  const char *e1 = strchr(tok2, '.'), *e2 = strrchr(tok2, '.');
  snprintf(buf, sizeof buf, "%.*s%.*s%s", (int)(d1 - tok), tok, (int)(e2 - e1), e1, d2);
  expect_fail_tok(buf, HB_E_INVALID_TOKEN);
  /* tampered header: typ removed but signature kept */
  char *tok3 = craft("{\"alg\":\"HS256\"}", "{}", KEY);
  const char *f1 = strchr(tok3, '.');
  snprintf(buf, sizeof buf, "%.*s%s", (int)(f1 - tok3), tok3, d1);
  expect_fail_tok(buf, HB_E_INVALID_TOKEN);
  /* a token signed with a key whose HMAC is the same after hashing long keys
   * is not our concern; a token for another plugin's key is: */
  char *tok4 = craft(HS256, "{" IDS ",\"sub\":\"u\",\"exp\":1790003600}", "another plugin's secret");
  expect_fail_tok(tok4, HB_E_INVALID_TOKEN);
  hb_free(tok);
  hb_free(tok2);
  hb_free(tok3);
  hb_free(tok4);
}

/* --- claims --------------------------------------------------------------- */

static void test_claims(void **state) {
  (void)state;
  hb_conn_claims c;
  const char *exp = ",\"exp\":1790003600";
  char x[512];
#define BAD(s) expect_fail_claims(s, HB_E_INVALID_TOKEN)
  /* exp */
  BAD("\"sub\":\"u\"");
  BAD("\"sub\":\"u\",\"exp\":\"1790003600\"");
  BAD("\"sub\":\"u\",\"exp\":null");
  BAD("\"sub\":\"u\",\"exp\":true");
  BAD("\"sub\":\"u\",\"exp\":1790003600.5");
  BAD("\"sub\":\"u\",\"exp\":1e300");
  BAD("\"sub\":\"u\",\"exp\":[1790003600]");
  /* iat, nbf */
  snprintf(x, sizeof x, "\"sub\":\"u\"%s,\"iat\":\"now\"", exp);
  BAD(x);
  snprintf(x, sizeof x, "\"sub\":\"u\"%s,\"nbf\":{}", exp);
  BAD(x);
  snprintf(x, sizeof x, "\"sub\":\"u\"%s,\"nbf\":0.5", exp);
  BAD(x);
  /* sub */
  BAD("\"exp\":1790003600");
  snprintf(x, sizeof x, "\"sub\":\"\"%s", exp);
  BAD(x);
  snprintf(x, sizeof x, "\"sub\":7%s", exp);
  BAD(x);
  snprintf(x, sizeof x, "\"sub\":null%s", exp);
  BAD(x);
  snprintf(x, sizeof x, "\"sub\":\"a\\nb\"%s", exp);
  BAD(x);
  snprintf(x, sizeof x, "\"sub\":\"a\\u0000b\"%s", exp);
  BAD(x);
  snprintf(x, sizeof x, "\"sub\":\"%0129d\"%s", 0, exp);
  BAD(x);
  /* scopes */
  snprintf(x, sizeof x, "\"sub\":\"u\"%s,\"scopes\":\"session\"", exp);
  BAD(x);
  snprintf(x, sizeof x, "\"sub\":\"u\"%s,\"scopes\":[\"room\"]", exp);
  BAD(x);
  snprintf(x, sizeof x, "\"sub\":\"u\"%s,\"scopes\":[\"session\",\"Event\"]", exp);
  BAD(x);
  snprintf(x, sizeof x, "\"sub\":\"u\"%s,\"scopes\":[\"event\",\"event\"]", exp);
  BAD(x);
  snprintf(x, sizeof x, "\"sub\":\"u\"%s,\"scopes\":[1]", exp);
  BAD(x);
  snprintf(x, sizeof x, "\"sub\":\"u\"%s,\"scopes\":null", exp);
  BAD(x);
  snprintf(x, sizeof x, "\"sub\":\"u\"%s,\"scopes\":[\"organization\"]", exp);
  expect_ok_claims(x, &c);
  assert_int_equal(c.scopes, HB_SCOPE_BIT(HB_SCOPE_ORGANIZATION));
  snprintf(x, sizeof x, "\"sub\":\"u\"%s,\"scopes\":[]", exp);
  expect_ok_claims(x, &c);
  assert_int_equal(c.scopes, 0u);
  /* duplicate claims */
  snprintf(x, sizeof x, "\"sub\":\"u\"%s,\"sub\":\"v\"", exp);
  BAD(x);
#undef BAD

  /* each id missing, of the wrong type, not a UUID */
  const char *names[] = {"organization_id", "plugin_id", "event_id", "session_id"};
  for (int i = 0; i < 4; i++) {
    for (int variant = 0; variant < 4; variant++) {
      hb_strbuf sb = HB_STRBUF_INIT;
      hb_strbuf_addch(&sb, '{');
      for (int j = 0; j < 4; j++) {
        if (j == i) {
          if (variant == 0) continue;
          const char *v = variant == 1 ? "5" : variant == 2 ? "\"not-a-uuid\"" : "\"" ORG "0\"";
          hb_strbuf_addf(&sb, "\"%s\":%s,", names[j], v);
        } else {
          hb_strbuf_addf(&sb, "\"%s\":\"%s\",", names[j], ORG);
        }
      }
      hb_strbuf_addstr(&sb, "\"sub\":\"u\",\"exp\":1790003600}");
      char *tok = craft(HS256, sb.buf, KEY);
      expect_fail_tok(tok, HB_E_INVALID_TOKEN);
      hb_free(tok);
      hb_strbuf_free(&sb);
    }
  }
  /* payload that is not an object, or not JSON */
  const char *payloads[] = {"[]", "\"x\"", "1", "{", "", "{\"a\":1}garbage"};
  for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
    char *tok = craft(HS256, payloads[i], KEY);
    expect_fail_tok(tok, HB_E_INVALID_TOKEN);
    hb_free(tok);
  }
}

/* The info claim: a JSON object, kept as compact JSON, bounded. */
static void test_info_claim(void **state) {
  (void)state;
  hb_conn_claims c;
  const char *base = "\"sub\":\"u\",\"exp\":1790003600";
  char x[4096];
  snprintf(x, sizeof x, "%s,\"info\": { \"name\" : \"Ada\", \"tags\": [1, 2] }", base);
  expect_ok_claims(x, &c);
  assert_int_equal(c.info_len, strlen("{\"name\":\"Ada\",\"tags\":[1,2]}"));
  assert_memory_equal(c.info, "{\"name\":\"Ada\",\"tags\":[1,2]}", c.info_len);
  expect_ok_claims(base, &c);
  assert_int_equal(c.info_len, 0);
  snprintf(x, sizeof x, "%s,\"info\":{}", base);
  expect_ok_claims(x, &c);
  assert_int_equal(c.info_len, 2);
  const char *bad[] = {"\"Ada\"", "[]", "null", "1", "true"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(x, sizeof x, "%s,\"info\":%s", base, bad[i]);
    expect_fail_claims(x, HB_E_INVALID_TOKEN);
  }
  /* exactly the limit as compact JSON passes, one byte more fails: {"n":"xxx"} */
  int pad = HB_MAX_PRESENCE_INFO_BYTES - (int)strlen("{\"n\":\"\"}");
  snprintf(x, sizeof x, "%s,\"info\":{\"n\":  \"%0*d\"}", base, pad, 0);
  expect_ok_claims(x, &c);
  assert_int_equal(c.info_len, HB_MAX_PRESENCE_INFO_BYTES);
  snprintf(x, sizeof x, "%s,\"info\":{\"n\":\"%0*d\"}", base, pad + 1, 0);
  expect_fail_claims(x, HB_E_INVALID_TOKEN);
  /* minted tokens carry it, byte for byte */
  hb_conn_claims in = sample(), out;
  memcpy(in.info, "{\"role\":\"host\"}", 15);
  in.info_len = 15;
  char *tok = hb_jwt_mint(&in, KEY, strlen(KEY));
  hb_error e;
  assert_int_equal(verify(tok, &out, &e), HB_OK);
  assert_int_equal(out.info_len, 15);
  assert_memory_equal(out.info, "{\"role\":\"host\"}", 15);
  hb_free(tok);
}

/* --- peek ----------------------------------------------------------------- */

static void test_peek(void **state) {
  (void)state;
  hb_uuid pl, want;
  hb_uuid_parse(PLUGIN, 36, &want);
  /* peek does not check the signature: it only finds the key */
  char *tok = craft(HS256, "{\"plugin_id\":\"" PLUGIN "\"}", "whatever");
  assert_int_equal(hb_jwt_peek_plugin(tok, strlen(tok), &pl), HB_OK);
  assert_true(hb_uuid_eq(&pl, &want));
  hb_free(tok);
  tok = craft(HS256, "{\"plugin_id\":5}", KEY);
  assert_int_equal(hb_jwt_peek_plugin(tok, strlen(tok), &pl), HB_E_INVALID_TOKEN);
  hb_free(tok);
  tok = craft(HS256, "{\"sub\":\"x\"}", KEY);
  assert_int_equal(hb_jwt_peek_plugin(tok, strlen(tok), &pl), HB_E_INVALID_TOKEN);
  hb_free(tok);
  assert_int_equal(hb_jwt_peek_plugin("", 0, &pl), HB_E_INVALID_TOKEN);
  assert_int_equal(hb_jwt_peek_plugin("a.b.c", 5, &pl), HB_E_INVALID_TOKEN);
  assert_int_equal(hb_jwt_peek_plugin("a.b.c.d", 7, &pl), HB_E_INVALID_TOKEN);
  assert_int_equal(hb_jwt_peek_plugin("e30.e30=.x", 10, &pl), HB_E_INVALID_TOKEN);
}

/* hb_jwt_verify_keyed: the key comes from the token's own plugin_id. */
typedef struct {
  int calls;
  hb_uuid asked;
  const char *key; /* NULL: unknown plugin */
} key_probe;

static bool probe_key(const hb_uuid *plugin, char *key, size_t cap, size_t *key_len, void *ud) {
  key_probe *k = ud;
  k->calls++;
  k->asked = *plugin;
  if (!k->key || strlen(k->key) >= cap) return false;
  memcpy(key, k->key, strlen(k->key) + 1);
  *key_len = strlen(k->key);
  return true;
}

static void test_verify_keyed(void **state) {
  (void)state;
  hb_uuid want;
  hb_uuid_parse(PLUGIN, 36, &want);
  hb_conn_claims c;
  hb_error e;
  char *tok = craft_claims("\"sub\":\"u\",\"exp\":1790003600");

  key_probe k = {.key = KEY};
  assert_int_equal(hb_jwt_verify_keyed(tok, strlen(tok), probe_key, &k, NOW, &c, &e), HB_OK);
  assert_int_equal(k.calls, 1);
  assert_true(hb_uuid_eq(&k.asked, &want));
  assert_true(hb_uuid_eq(&c.plugin, &want));

  k = (key_probe){.key = "another key"};
  assert_int_equal(hb_jwt_verify_keyed(tok, strlen(tok), probe_key, &k, NOW, &c, &e), HB_E_INVALID_TOKEN);
  assert_string_equal(e.message, "the token signature does not match");

  k = (key_probe){.key = NULL};
  assert_int_equal(hb_jwt_verify_keyed(tok, strlen(tok), probe_key, &k, NOW, &c, &e), HB_E_INVALID_TOKEN);
  assert_string_equal(e.message, "connection token names an unknown plugin");
  hb_free(tok);

  /* no readable plugin_id: the key is never looked up */
  k = (key_probe){.key = KEY};
  tok = craft(HS256, "{\"plugin_id\":5}", KEY);
  assert_int_equal(hb_jwt_verify_keyed(tok, strlen(tok), probe_key, &k, NOW, &c, &e), HB_E_INVALID_TOKEN);
  assert_string_equal(e.message, "connection token is malformed");
  assert_int_equal(k.calls, 0);
  hb_free(tok);
  assert_int_equal(hb_jwt_verify_keyed("a.b", 3, probe_key, &k, NOW, &c, &e), HB_E_INVALID_TOKEN);
  assert_int_equal(k.calls, 0);
}

/* Minted tokens' header is recognised by its bytes; any other header that
 * says the same is parsed and accepted, and one that differs is refused. */
static void test_header_fast_path(void **state) {
  (void)state;
  hb_conn_claims c;
  hb_error e;
  const char *payload = "{" IDS ",\"sub\":\"u\",\"exp\":1790003600}";
  char *tok = craft(HS256, payload, KEY);
  assert_true(strncmp(tok, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.", 37) == 0);
  assert_int_equal(verify(tok, &c, &e), HB_OK);
  hb_free(tok);
  tok = craft("{\"typ\":\"JWT\",\"alg\":\"HS256\"}", payload, KEY);
  assert_int_equal(verify(tok, &c, &e), HB_OK);
  hb_free(tok);
  tok = craft("{\"alg\":\"HS256\"}", payload, KEY);
  assert_int_equal(verify(tok, &c, &e), HB_OK);
  hb_free(tok);
  tok = craft("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", payload, KEY);
  expect_fail_tok(tok, HB_E_INVALID_TOKEN);
  hb_free(tok);
}

/* Each thread keeps an HMAC context keyed with the last key it used: a change
 * of key, a key that extends or shortens the last one, and keys too long to
 * be kept must all still give the right answer, in any order. */
static void test_hmac_key_changes(void **state) {
  (void)state;
  char long_key[HB_JWT_CACHED_KEY_BYTES + 40], edge_key[HB_JWT_CACHED_KEY_BYTES + 1];
  memset(long_key, 'k', sizeof long_key - 1);
  long_key[sizeof long_key - 1] = '\0';
  memset(edge_key, 'e', sizeof edge_key - 1);
  edge_key[sizeof edge_key - 1] = '\0';
  const char *keys[] = {KEY, "short", KEY "x", "", long_key, edge_key, "shor", edge_key + 1};
  enum { NKEYS = sizeof keys / sizeof *keys };
  hb_conn_claims in = sample();
  char *toks[NKEYS];
  for (int k = 0; k < NKEYS; k++) {
    toks[k] = hb_jwt_mint(&in, keys[k], strlen(keys[k]));
    assert_non_null(toks[k]);
    /* minted with the cached context, it matches an independent HMAC */
    char *want = craft(HS256, "{" IDS ",\"sub\":\"alice\",\"scopes\":[\"session\",\"event\"],"
                       "\"iat\":1790000000,\"exp\":1790003600}", keys[k]);
    assert_string_equal(toks[k], want);
    hb_free(want);
  }
  for (int round = 0; round < 3; round++) {
    for (int t = 0; t < NKEYS; t++) {
      for (int k = 0; k < NKEYS; k++) {
        int idx = (t + k + round) % NKEYS;
        hb_err r = hb_jwt_verify(toks[t], strlen(toks[t]), keys[idx], strlen(keys[idx]), NOW, NULL, NULL);
        assert_int_equal(r, idx == t ? HB_OK : HB_E_INVALID_TOKEN);
        /* the same key twice in a row (the re-initialised context) */
        r = hb_jwt_verify(toks[t], strlen(toks[t]), keys[idx], strlen(keys[idx]), NOW, NULL, NULL);
        assert_int_equal(r, idx == t ? HB_OK : HB_E_INVALID_TOKEN);
      }
    }
  }
  for (int k = 0; k < NKEYS; k++) hb_free(toks[k]);
}

/* The contexts are per thread: threads verifying with different keys at the
 * same time never see each other's key, and a thread's context is freed when
 * it exits (the sanitizer build checks for the leak). */
typedef struct {
  const char *key, *tok_ok, *tok_bad;
  int failures;
} hmac_worker;

static void *hmac_worker_run(void *arg) {
  hmac_worker *w = arg;
  for (int i = 0; i < 200; i++) {
    if (hb_jwt_verify(w->tok_ok, strlen(w->tok_ok), w->key, strlen(w->key), NOW, NULL, NULL) != HB_OK)
      w->failures++;
    if (hb_jwt_verify(w->tok_bad, strlen(w->tok_bad), w->key, strlen(w->key), NOW, NULL, NULL) !=
        HB_E_INVALID_TOKEN)
      w->failures++;
  }
  return NULL;
}

static void test_hmac_threads(void **state) {
  (void)state;
  hb_conn_claims in = sample();
  char *a = hb_jwt_mint(&in, "key-a", 5), *b = hb_jwt_mint(&in, "key-b", 5);
  hmac_worker w[4] = {{"key-a", a, b, 0}, {"key-b", b, a, 0}, {"key-a", a, b, 0}, {"key-b", b, a, 0}};
  pthread_t th[4];
  for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&th[i], NULL, hmac_worker_run, &w[i]), 0);
  hmac_worker mine = {KEY, NULL, a, 0};
  char *own = hb_jwt_mint(&in, KEY, strlen(KEY));
  mine.tok_ok = own;
  hmac_worker_run(&mine);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(w[i].failures, 0);
  }
  assert_int_equal(mine.failures, 0);
  hb_free(a);
  hb_free(b);
  hb_free(own);
}


/* hb_jwt_verify_keys: a current and a previous secret, selected by kid. */
#define KEY_OLD "hbs_the-previous-secret-0123456789"
typedef struct {
  int n; /* how many keys the plugin has */
  int calls;
} keys_probe;

static bool probe_keys(const hb_uuid *plugin, hb_jwt_keys *out, void *ud) {
  keys_probe *k = ud;
  (void)plugin;
  k->calls++;
  if (k->n == 0) return false;
  snprintf(out->key[0].secret, sizeof out->key[0].secret, "%s", KEY);
  out->key[0].len = strlen(KEY);
  snprintf(out->key[0].kid, sizeof out->key[0].kid, "cur1");
  snprintf(out->key[1].secret, sizeof out->key[1].secret, "%s", KEY_OLD);
  out->key[1].len = strlen(KEY_OLD);
  snprintf(out->key[1].kid, sizeof out->key[1].kid, "old0");
  out->n = k->n;
  return true;
}

static hb_err verify_keys(const char *tok, int nkeys, hb_conn_claims *c, hb_error *e) {
  keys_probe k = {nkeys, 0};
  memset(e, 0, sizeof *e);
  memset(c, 0, sizeof *c);
  return hb_jwt_verify_keys(tok, strlen(tok), probe_keys, &k, NOW, c, e);
}

static void test_kid(void **state) {
  (void)state;
  hb_conn_claims in, c;
  hb_error e;
  memset(&in, 0, sizeof in);
  hb_uuid_parse(ORG, 36, &in.org);
  hb_uuid_parse(PLUGIN, 36, &in.plugin);
  hb_uuid_parse(EVENT, 36, &in.event);
  hb_uuid_parse(SESSION, 36, &in.session);
  snprintf(in.user_id, sizeof in.user_id, "u");
  in.scopes = HB_SCOPE_SET_DEFAULT;
  in.iat = NOW;
  in.exp = NOW + 60;

  /* Minted with a kid: the header says so, exactly. */
  snprintf(in.kid, sizeof in.kid, "cur1");
  char *cur = hb_jwt_mint(&in, KEY, strlen(KEY));
  char *cur_craft = craft("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"cur1\"}",
                          "{" IDS ",\"sub\":\"u\",\"scopes\":[\"session\"],\"iat\":1790000000,\"exp\":1790000060}", KEY);
  assert_string_equal(cur, cur_craft);
  assert_int_equal(verify(cur, &c, &e), HB_OK); /* a kid is allowed by the plain verify */
  assert_string_equal(c.kid, "");
  assert_int_equal(verify_keys(cur, 2, &c, &e), HB_OK);
  assert_string_equal(c.kid, "cur1");

  /* Signed with the previous secret, with and without its kid. */
  snprintf(in.kid, sizeof in.kid, "old0");
  char *old = hb_jwt_mint(&in, KEY_OLD, strlen(KEY_OLD));
  in.kid[0] = '\0';
  char *old_nokid = hb_jwt_mint(&in, KEY_OLD, strlen(KEY_OLD));
  char *cur_nokid = hb_jwt_mint(&in, KEY, strlen(KEY));
  assert_int_equal(verify_keys(old, 2, &c, &e), HB_OK);
  assert_string_equal(c.kid, "old0");
  assert_int_equal(verify_keys(old_nokid, 2, &c, &e), HB_OK);
  assert_string_equal(c.kid, "old0");
  assert_int_equal(verify_keys(cur_nokid, 2, &c, &e), HB_OK);
  assert_string_equal(c.kid, "cur1");
  /* Once the previous secret is retired (one key left), it verifies nothing. */
  assert_int_equal(verify_keys(old, 1, &c, &e), HB_E_INVALID_TOKEN);
  assert_int_equal(verify_keys(old_nokid, 1, &c, &e), HB_E_INVALID_TOKEN);
  assert_string_equal(e.message, "the token signature does not match");
  assert_int_equal(verify_keys(cur_nokid, 1, &c, &e), HB_OK);
  /* A kid names its key only: the current kid on a token of the old secret fails. */
  snprintf(in.kid, sizeof in.kid, "cur1");
  char *crossed = hb_jwt_mint(&in, KEY_OLD, strlen(KEY_OLD));
  assert_int_equal(verify_keys(crossed, 2, &c, &e), HB_E_INVALID_TOKEN);
  /* An unknown kid (another tool's) is tried like none: both keys. */
  snprintf(in.kid, sizeof in.kid, "someone-elses-kid");
  char *foreign = hb_jwt_mint(&in, KEY_OLD, strlen(KEY_OLD));
  assert_int_equal(verify_keys(foreign, 2, &c, &e), HB_OK);
  assert_string_equal(c.kid, "old0");
  /* Unknown plugin; and the same checks as every token on the way. */
  assert_int_equal(verify_keys(cur, 0, &c, &e), HB_E_INVALID_TOKEN);
  assert_string_equal(e.message, "connection token names an unknown plugin");

  /* Other header shapes with a kid go through jansson, same answers. */
  char *reordered = craft("{\"kid\":\"old0\",\"alg\":\"HS256\"}", "{" IDS ",\"sub\":\"u\",\"exp\":1790000060}", KEY_OLD);
  assert_int_equal(verify_keys(reordered, 2, &c, &e), HB_OK);
  assert_string_equal(c.kid, "old0");
  char *numkid = craft("{\"alg\":\"HS256\",\"kid\":5}", "{" IDS ",\"sub\":\"u\",\"exp\":1790000060}", KEY);
  assert_int_equal(verify_keys(numkid, 2, &c, &e), HB_E_INVALID_TOKEN);
  assert_string_equal(e.message, "the token kid is not a string");
  char *none = craft("{\"alg\":\"none\",\"kid\":\"cur1\"}", "{" IDS ",\"sub\":\"u\",\"exp\":1790000060}", KEY);
  assert_int_equal(verify_keys(none, 2, &c, &e), HB_E_INVALID_TOKEN);
  assert_string_equal(e.message, "the token alg must be HS256");
  /* The fast path's shape with a kid longer than any of ours, or with a
   * character outside base64url: parsed, and tried like no kid. */
  char *longkid = craft("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"0123456789012345678901234567890123456789\"}",
                        "{" IDS ",\"sub\":\"u\",\"exp\":1790000060}", KEY);
  assert_int_equal(verify_keys(longkid, 2, &c, &e), HB_OK);
  assert_string_equal(c.kid, "cur1");
  char *oddkid = craft("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"a b\"}", "{" IDS ",\"sub\":\"u\",\"exp\":1790000060}", KEY_OLD);
  assert_int_equal(verify_keys(oddkid, 2, &c, &e), HB_OK);
  char *expired = craft("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"cur1\"}", "{" IDS ",\"sub\":\"u\",\"exp\":1}", KEY);
  assert_int_equal(verify_keys(expired, 2, &c, &e), HB_E_TOKEN_EXPIRED);

  hb_free(cur), hb_free(cur_craft), hb_free(old), hb_free(old_nokid), hb_free(cur_nokid), hb_free(crossed);
  hb_free(foreign), hb_free(reordered), hb_free(numkid), hb_free(none), hb_free(longkid), hb_free(oddkid);
  hb_free(expired);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_verify_keyed),
      HBT_TEST(test_header_fast_path),
      HBT_TEST(test_hmac_key_changes),
      HBT_TEST(test_hmac_threads),
      HBT_TEST(test_roundtrip),
      HBT_TEST(test_mint_exact),
      HBT_TEST(test_third_party_shapes),
      HBT_TEST(test_expiry_and_leeway),
      HBT_TEST(test_alg),
      HBT_TEST(test_structure),
      HBT_TEST(test_oversize),
      HBT_TEST(test_forgery),
      HBT_TEST(test_claims),
      HBT_TEST(test_peek),
      HBT_TEST(test_kid),
      HBT_TEST(test_info_claim),
  };
  return cmocka_run_group_tests_name("jwt", tests, NULL, NULL);
}
