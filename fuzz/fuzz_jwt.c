/*
 * fuzz_jwt.c - libFuzzer driver for connection tokens.
 *
 * The input is used two ways:
 *   - as a token: hb_jwt_peek_plugin and hb_jwt_verify (fixed key and
 *     clock) must not crash, and a token that verifies must carry sane
 *     claims. A random input that verifies would mean a forgery, so verify
 *     is also run with a second key and must then fail; hb_jwt_verify_keyed
 *     (the connection path: payload parsed once, key from its plugin_id)
 *     must agree with hb_jwt_verify, and so must hb_jwt_verify_keys (the
 *     kid-selecting path) with that one key; alternating keys exercise the
 *     per-thread HMAC context;
 *   - as claims: mint from bytes of the input, then verify must succeed and
 *     give the same claims back (round trip).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hubbub/alloc.h"
#include "hubbub/jwt.h"

#define KEY "hbs_fuzz_key_0123456789abcdef"
#define KEY2 "hbs_other_key"
#define NOW 1790000000LL

static bool fixed_key(const hb_uuid *plugin, char *key, size_t cap, size_t *key_len, void *ud) {
  (void)plugin;
  const char *k = ud;
  if (strlen(k) >= cap) return false;
  memcpy(key, k, strlen(k) + 1);
  *key_len = strlen(k);
  return true;
}

/* hb_jwt_keys_fn: KEY alone, with kid "k1"; ud != NULL adds KEY2 as the
 * previous secret (kid "k0"). */
static bool fixed_keys(const hb_uuid *plugin, hb_jwt_keys *out, void *ud) {
  (void)plugin;
  memcpy(out->key[0].secret, KEY, sizeof KEY);
  out->key[0].len = strlen(KEY);
  memcpy(out->key[0].kid, "k1", 3);
  out->n = 1;
  if (ud) {
    memcpy(out->key[1].secret, KEY2, sizeof KEY2);
    out->key[1].len = strlen(KEY2);
    memcpy(out->key[1].kid, "k0", 3);
    out->n = 2;
  }
  return true;
}

static void as_token(const char *in, size_t len) {
  hb_uuid pl;
  bool peeked = hb_jwt_peek_plugin(in, len, &pl) == HB_OK;
  hb_conn_claims c;
  hb_error e;
  memset(&e, 0, sizeof e);
  hb_err r = hb_jwt_verify(in, len, KEY, strlen(KEY), NOW, &c, &e);
  if (r != HB_OK && r != HB_E_INVALID_TOKEN && r != HB_E_TOKEN_EXPIRED) abort();
  if (r != HB_OK && e.err != r) abort();
  if (r == HB_OK) {
    size_t ul = strnlen(c.user_id, sizeof c.user_id);
    if (ul == 0 || ul > HB_MAX_USER_ID_BYTES) abort();
    if (c.scopes & ~7u) abort();
  }
  /* No input may verify under two different keys. */
  if (r == HB_OK && hb_jwt_verify(in, len, KEY2, strlen(KEY2), NOW, NULL, NULL) == HB_OK) abort();
  /* The connection path says what verify says: the same result, message
   * and claims, unless it found no plugin_id to name the key (then verify
   * must refuse too). */
  hb_conn_claims c2;
  hb_error e2;
  memset(&e2, 0, sizeof e2);
  hb_err r2 = hb_jwt_verify_keyed(in, len, fixed_key, (void *)KEY, NOW, &c2, &e2);
  if (r2 == HB_E_INVALID_TOKEN && strcmp(e2.message, "connection token is malformed") == 0) {
    if (r == HB_OK || peeked) abort();
  } else {
    if (r2 != r || strcmp(e2.message, e.message) != 0) abort();
    if (r == HB_OK && (!hb_uuid_eq(&c.org, &c2.org) || !hb_uuid_eq(&c.plugin, &c2.plugin) ||
                       !hb_uuid_eq(&c.event, &c2.event) || !hb_uuid_eq(&c.session, &c2.session) ||
                       strcmp(c.user_id, c2.user_id) != 0 || c.scopes != c2.scopes ||
                       c.iat != c2.iat || c.exp != c2.exp || c.nbf != c2.nbf))
      abort();
  }
  /* The kid-selecting path with one key says what the keyed path says. */
  hb_conn_claims c3;
  hb_error e3;
  memset(&e3, 0, sizeof e3);
  hb_err r3 = hb_jwt_verify_keys(in, len, fixed_keys, NULL, NOW, &c3, &e3);
  if (r3 != r2 || strcmp(e3.message, e2.message) != 0) abort();
  if (r3 == HB_OK && (strcmp(c3.kid, "k1") != 0 || strcmp(c3.user_id, c2.user_id) != 0 || c3.exp != c2.exp))
    abort();
  /* With a second key the result is a success only if one of them signed. */
  hb_err r4 = hb_jwt_verify_keys(in, len, fixed_keys, (void *)1, NOW, NULL, NULL);
  if (r4 == HB_OK && r2 != HB_OK && hb_jwt_verify(in, len, KEY2, strlen(KEY2), NOW, NULL, NULL) != HB_OK) abort();
}

static void as_claims(const uint8_t *d, size_t n) {
  hb_conn_claims in, out;
  memset(&in, 0, sizeof in);
  if (n < 4 * HB_UUID_BYTES + 8) return;
  memcpy(in.org.b, d, HB_UUID_BYTES);
  memcpy(in.plugin.b, d + 16, HB_UUID_BYTES);
  memcpy(in.event.b, d + 32, HB_UUID_BYTES);
  memcpy(in.session.b, d + 48, HB_UUID_BYTES);
  in.scopes = d[64] & 7u;
  in.iat = NOW - d[65];
  in.exp = NOW + 1 + d[66] * 100;
  in.nbf = d[67] & 1 ? NOW - d[67] : 0;
  /* the rest is the user id: printable or UTF-8 bytes, no controls */
  size_t ul = 0;
  for (size_t i = 68; i < n && ul < HB_MAX_USER_ID_BYTES; i++)
    if (d[i] >= 0x20 && d[i] != 0x7f) in.user_id[ul++] = (char)d[i];
  if (ul == 0) in.user_id[ul++] = 'u';
  in.user_id[ul] = '\0';
  /* A kid from the input (when the first byte says so), of base64url
   * characters as hubbub's are. */
  if (d[65] & 1) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t kl = 1 + d[66] % HB_SIGNING_KID_MAX_BYTES;
    for (size_t i = 0; i < kl; i++) in.kid[i] = alphabet[d[(67 + i) % n] & 63];
  }
  char *tok = hb_jwt_mint(&in, KEY, strlen(KEY));
  if (!tok) abort();
  if (in.kid[0]) {
    hb_conn_claims k;
    hb_err rk = hb_jwt_verify_keys(tok, strlen(tok), fixed_keys, (void *)1, NOW, &k, NULL);
    if (rk == HB_OK && strcmp(k.kid, "k1") != 0) abort();
  }
  hb_error e;
  hb_err r = hb_jwt_verify(tok, strlen(tok), KEY, strlen(KEY), NOW, &out, &e);
  /* Invalid UTF-8 in the user id cannot survive jansson: then the token is
   * refused, which is the right outcome; anything else must round-trip. */
  if (r == HB_OK) {
    if (!hb_uuid_eq(&in.org, &out.org) || !hb_uuid_eq(&in.plugin, &out.plugin) ||
        !hb_uuid_eq(&in.event, &out.event) || !hb_uuid_eq(&in.session, &out.session) ||
        strcmp(in.user_id, out.user_id) != 0 || in.scopes != out.scopes || in.exp != out.exp ||
        in.iat != out.iat || in.nbf != out.nbf)
      abort();
  } else {
    /* only a sub with non-ASCII bytes (possibly bad UTF-8) may fail */
    bool high = false;
    for (size_t i = 0; i < ul; i++) high |= (unsigned char)in.user_id[i] >= 0x80;
    if (r != HB_E_INVALID_TOKEN || !high) abort();
  }
  hb_free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *in = malloc(size ? size : 1);
  if (size) memcpy(in, data, size);
  as_token(in, size);
  as_claims(data, size);
  free(in);
  return 0;
}
