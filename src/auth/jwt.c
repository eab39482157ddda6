/*
 * jwt.c - connection tokens: compact JWS with HS256 (RFC 7515, RFC 7519).
 *
 * Written by hand on OpenSSL's one-shot HMAC and jansson so that every rule
 * is ours to state: one algorithm, strict base64url, a size cap, exactly
 * three segments, and the signature checked (in constant time) before any
 * claim is believed. Error messages say what is wrong but never echo the
 * token or any of its bytes.
 */
#include "hubbub/jwt.h"

#include <jansson.h>
#include <math.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "hubbub/alloc.h"
#include "hubbub/b64url.h"
#include "hubbub/field.h"
#include "hubbub/json.h"
#include "hubbub/user_id.h"
#include "hubbub/strbuf.h"

#define SIG_BYTES 32 /* HMAC-SHA256 output */

/* Largest NumericDate we accept as a real: 2^53, beyond which a double no
 * longer holds every integer (and no sane expiry lives). */
#define MAX_REAL_DATE 9007199254740992.0

/* --- HMAC ----------------------------------------------------------------- */

/*
 * One-shot HMAC() fetches the algorithm, allocates a context, sets the digest
 * by name and derives the padded key every call: about half the instructions
 * of a token check. Each thread instead keeps one EVP_MAC_CTX keyed with the
 * last key it used; a token signed with the same key (every token of one
 * plugin) only re-initialises it (EVP_MAC_init with no key reuses the derived
 * one). The thread's copy of the key serves to notice a different key; it is
 * cleansed, and the context freed, when the thread exits. (The auth snapshot
 * holds every plugin's secret anyway; this copy outlives a rotated secret
 * only until the thread verifies with another key.)
 */
typedef struct {
  EVP_MAC *mac;
  EVP_MAC_CTX *ctx;
  bool keyed;
  size_t key_len;
  unsigned char key[HB_JWT_CACHED_KEY_BYTES];
} hmac_cache;

static _Thread_local hmac_cache tl_hmac;
static pthread_key_t hmac_tkey;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;
static bool hmac_tkey_ok;

static void hmac_cache_free(void *p) {
  hmac_cache *h = p;
  EVP_MAC_CTX_free(h->ctx);
  EVP_MAC_free(h->mac);
  OPENSSL_cleanse(h, sizeof *h);
}

static void hmac_tkey_init(void) { hmac_tkey_ok = pthread_key_create(&hmac_tkey, hmac_cache_free) == 0; }

/* This thread's context, created on first use; NULL when OpenSSL cannot
 * provide one (the caller falls back to one-shot HMAC). */
static hmac_cache *hmac_thread(void) {
  hmac_cache *h = &tl_hmac;
  if (h->ctx) return h;
  pthread_once(&hmac_once, hmac_tkey_init);
  if (!hmac_tkey_ok) return NULL;
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                         OSSL_PARAM_construct_end()};
  h->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  h->ctx = h->mac ? EVP_MAC_CTX_new(h->mac) : NULL;
  if (!h->ctx || !EVP_MAC_CTX_set_params(h->ctx, params) || pthread_setspecific(hmac_tkey, h) != 0) {
    hmac_cache_free(h);
    return NULL;
  }
  return h;
}

static bool hs256_cached(hmac_cache *h, const char *key, size_t key_len, const char *msg,
                         size_t n, unsigned char out[SIG_BYTES]) {
  bool same = h->keyed && h->key_len == key_len && CRYPTO_memcmp(h->key, key, key_len) == 0;
  h->keyed = false; /* until this call succeeded */
  if (!EVP_MAC_init(h->ctx, same ? NULL : (const unsigned char *)key, same ? 0 : key_len, NULL))
    return false;
  size_t out_len = 0;
  if (!EVP_MAC_update(h->ctx, (const unsigned char *)msg, n) ||
      !EVP_MAC_final(h->ctx, out, &out_len, SIG_BYTES) || out_len != SIG_BYTES)
    return false;
  if (!same) {
    memcpy(h->key, key, key_len);
    h->key_len = key_len;
  }
  h->keyed = true;
  return true;
}

static bool hs256(const char *key, size_t key_len, const char *msg, size_t n,
                  unsigned char out[SIG_BYTES]) {
  /* An empty key would read as "reuse the previous key" to EVP_MAC_init,
   * and a key longer than the cache holds cannot be compared: both take the
   * one-shot path, as does any failure of the cached context. */
  hmac_cache *h;
  if (key_len > 0 && key_len <= HB_JWT_CACHED_KEY_BYTES && (h = hmac_thread()) &&
      hs256_cached(h, key, key_len, msg, n, out))
    return true;
  unsigned int out_len = 0;
  /* HMAC() wants a non-NULL key even when it is empty. */
  static const unsigned char empty = 0;
  const unsigned char *k = key_len ? (const unsigned char *)key : &empty;
  if (key_len > (size_t)INT32_MAX) return false;
  if (!HMAC(EVP_sha256(), k, (int)key_len, (const unsigned char *)msg, n, out, &out_len))
    return false;
  return out_len == SIG_BYTES;
}

/* --- mint ----------------------------------------------------------------- */

static void add_uuid_claim(hb_strbuf *sb, const char *name, const hb_uuid *u) {
  char s[HB_UUID_STR_BYTES];
  hb_uuid_format(u, s);
  hb_strbuf_addf(sb, "\"%s\":\"%s\",", name, s);
}

/* The header every minted token carries, {"alg":"HS256","typ":"JWT"}, in
 * base64url. Verification recognises it by its bytes and skips parsing it:
 * the same bytes always validate the same way (test_jwt checks both). */
#define MINTED_HEADER_B64 "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
/* The header of a token minted with a kid, up to the kid's first character:
 * {"alg":"HS256","typ":"JWT","kid":"<kid>"}. Verification recognises it
 * without jansson too (read_header). */
#define KID_HEADER_PREFIX "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\""

char *hb_jwt_mint(const hb_conn_claims *c, const char *key, size_t key_len) {
  hb_strbuf payload = HB_STRBUF_INIT, tok = HB_STRBUF_INIT;
  hb_strbuf_addch(&payload, '{');
  add_uuid_claim(&payload, "organization_id", &c->org);
  add_uuid_claim(&payload, "plugin_id", &c->plugin);
  add_uuid_claim(&payload, "event_id", &c->event);
  add_uuid_claim(&payload, "session_id", &c->session);
  hb_strbuf_addstr(&payload, "\"sub\":");
  hb_strbuf_add_json_str(&payload, c->user_id, strnlen(c->user_id, sizeof c->user_id));
  hb_strbuf_addstr(&payload, ",\"scopes\":[");
  bool first = true;
  for (int s = 0; s < HB_SCOPE__COUNT; s++) {
    if (!(c->scopes & HB_SCOPE_BIT(s))) continue;
    hb_strbuf_addf(&payload, "%s\"%s\"", first ? "" : ",", hb_scope_name((hb_scope)s));
    first = false;
  }
  hb_strbuf_addf(&payload, "],\"iat\":%lld,\"exp\":%lld", (long long)c->iat, (long long)c->exp);
  if (c->nbf) hb_strbuf_addf(&payload, ",\"nbf\":%lld", (long long)c->nbf);
  if (c->info_len) {
    hb_strbuf_addstr(&payload, ",\"info\":");
    hb_strbuf_add(&payload, c->info, c->info_len);
  }
  hb_strbuf_addch(&payload, '}');

  if (c->kid[0]) {
    hb_strbuf h = HB_STRBUF_INIT;
    /* The prefix without its opening quote: add_json_str writes both quotes. */
    hb_strbuf_add(&h, KID_HEADER_PREFIX, sizeof KID_HEADER_PREFIX - 2);
    hb_strbuf_add_json_str(&h, c->kid, strnlen(c->kid, sizeof c->kid));
    hb_strbuf_addch(&h, '}');
    hb_b64url_encode(&tok, (const unsigned char *)h.buf, h.len);
    hb_strbuf_free(&h);
  } else {
    hb_strbuf_addstr(&tok, MINTED_HEADER_B64);
  }
  hb_strbuf_addch(&tok, '.');
  hb_b64url_encode(&tok, (const unsigned char *)payload.buf, payload.len);
  unsigned char sig[SIG_BYTES];
  if (!hs256(key, key_len, tok.buf, tok.len, sig)) {
    /* Only reachable when OpenSSL itself is broken: never hand out an
     * unsigned token. */
    hb_strbuf_free(&payload);
    hb_strbuf_free(&tok);
    return NULL;
  }
  hb_strbuf_addch(&tok, '.');
  hb_b64url_encode(&tok, sig, sizeof sig);
  OPENSSL_cleanse(sig, sizeof sig);
  hb_strbuf_free(&payload);
  return hb_strbuf_release(&tok, NULL);
}

/* --- parsing helpers ------------------------------------------------------ */

typedef struct {
  const char *seg[3];
  size_t seg_len[3];
} parts;

/* Exactly three non-empty segments separated by exactly two dots. */
static hb_err split(const char *tok, size_t len, parts *p, hb_error *err) {
  if (!tok || len == 0) return hb_error_set(err, HB_E_INVALID_TOKEN, NULL, "the token is empty");
  if (len > HB_MAX_CONN_TOKEN_BYTES)
    return hb_error_set(err, HB_E_INVALID_TOKEN, NULL, "the token is longer than %d bytes",
                        HB_MAX_CONN_TOKEN_BYTES);
  size_t start = 0;
  int n = 0;
  while (start <= len) {
    const char *dot = memchr(tok + start, '.', len - start);
    size_t i = dot ? (size_t)(dot - tok) : len;
    if (n == 3)
      return hb_error_set(err, HB_E_INVALID_TOKEN, NULL,
                          "the token must have exactly three dot-separated parts");
    p->seg[n] = tok + start;
    p->seg_len[n] = i - start;
    n++;
    start = i + 1;
  }
  if (n != 3)
    return hb_error_set(err, HB_E_INVALID_TOKEN, NULL,
                        "the token must have exactly three dot-separated parts");
  for (int i = 0; i < 3; i++)
    if (p->seg_len[i] == 0)
      return hb_error_set(err, HB_E_INVALID_TOKEN, NULL, "the token has an empty part");
  return HB_OK;
}

/* Decode a base64url segment holding a JSON object. `*out` is owned by the
 * caller (json_decref) on success. */
static hb_err decode_json_seg(const char *s, size_t n, const char *what, json_t **out,
                              hb_error *err) {
  *out = NULL;
  unsigned char buf[HB_MAX_CONN_TOKEN_BYTES]; /* n <= token length, decoded is smaller */
  long m = hb_b64url_decode(s, n, buf);
  if (m < 0)
    return hb_error_set(err, HB_E_INVALID_TOKEN, NULL, "the token %s is not valid base64url",
                        what);
  hb_error je;
  json_t *j = hb_json_load((const char *)buf, (size_t)m, &je); /* the one front door: same limits */
  if (!j)
    return hb_error_set(err, HB_E_INVALID_TOKEN, NULL, "the token %s is not valid JSON", what);
  if (!json_is_object(j)) {
    json_decref(j);
    return hb_error_set(err, HB_E_INVALID_TOKEN, NULL, "the token %s is not a JSON object",
                        what);
  }
  *out = j;
  return HB_OK;
}

static hb_err uuid_claim(json_t *payload, const char *name, hb_uuid *out, hb_error *err) {
  json_t *v = json_object_get(payload, name);
  if (!v) return hb_error_set(err, HB_E_INVALID_TOKEN, NULL, "the token has no %s claim", name);
  if (!json_is_string(v) || !hb_uuid_parse(json_string_value(v), json_string_length(v), out))
    return hb_error_set(err, HB_E_INVALID_TOKEN, NULL, "the token's %s is not a UUID", name);
  return HB_OK;
}

/* A NumericDate: an integer, or a real holding an integral value (some
 * libraries write 1.79e9). Returns false on any other JSON value. */
static bool numeric_date(json_t *v, int64_t *out) {
  if (json_is_integer(v)) {
    *out = (int64_t)json_integer_value(v);
    return true;
  }
  if (json_is_real(v)) {
    double d = json_real_value(v);
    if (!isfinite(d) || d != floor(d) || fabs(d) > MAX_REAL_DATE) return false;
    *out = (int64_t)d;
    return true;
  }
  return false;
}

static hb_err date_claim(json_t *payload, const char *name, bool required, int64_t *out,
                         hb_error *err) {
  *out = 0;
  json_t *v = json_object_get(payload, name);
  if (!v) {
    if (required)
      return hb_error_set(err, HB_E_INVALID_TOKEN, NULL, "the token has no %s claim", name);
    return HB_OK;
  }
  if (!numeric_date(v, out))
    return hb_error_set(err, HB_E_INVALID_TOKEN, NULL,
                        "the token's %s is not an integer NumericDate", name);
  return HB_OK;
}

/* The optional info claim (docs/protocol.md, "Presence"). */
static hb_err info_claim(json_t *v, hb_conn_claims *out, hb_error *err) {
  switch (hb_field_info(v, out->info, &out->info_len)) {
  case HB_INFO_OK: return HB_OK;
  case HB_INFO_NOT_OBJECT:
    return hb_error_set(err, HB_E_INVALID_TOKEN, NULL, "the token's info claim is not a JSON object");
  case HB_INFO_TOO_LARGE:
    return hb_error_set(err, HB_E_INVALID_TOKEN, NULL,
                        "the token's info claim is over " HB_STR(HB_MAX_PRESENCE_INFO_BYTES) " bytes as compact JSON");
  }
  return HB_E_INVALID_TOKEN;
}

static hb_err claims_from(json_t *p, hb_conn_claims *out, hb_error *err) {
  hb_err e;
  if ((e = uuid_claim(p, "organization_id", &out->org, err))) return e;
  if ((e = uuid_claim(p, "plugin_id", &out->plugin, err))) return e;
  if ((e = uuid_claim(p, "event_id", &out->event, err))) return e;
  if ((e = uuid_claim(p, "session_id", &out->session, err))) return e;

  json_t *sub = json_object_get(p, "sub");
  if (!sub) return hb_error_set(err, HB_E_INVALID_TOKEN, NULL, "the token has no sub claim");
  if (!json_is_string(sub))
    return hb_error_set(err, HB_E_INVALID_TOKEN, NULL, "the token's sub is not a string");
  size_t sl = json_string_length(sub);
  const char *ss = json_string_value(sub);
  if (!hb_user_id_valid(ss, sl)) /* the one rule for user ids (user_id.h) */
    return hb_error_set(err, HB_E_INVALID_TOKEN, NULL,
                        "the token's sub must be 1-%d bytes without control characters", HB_MAX_USER_ID_BYTES);
  memcpy(out->user_id, ss, sl);
  out->user_id[sl] = '\0';

  json_t *sc = json_object_get(p, "scopes");
  if (!sc) {
    out->scopes = HB_SCOPE_SET_DEFAULT;
  } else {
    if (!json_is_array(sc))
      return hb_error_set(err, HB_E_INVALID_TOKEN, NULL, "the token's scopes is not an array");
    out->scopes = 0;
    size_t i;
    json_t *v;
    json_array_foreach(sc, i, v) {
      hb_scope s;
      if (!json_is_string(v) || !hb_scope_parse(json_string_value(v), json_string_length(v), &s))
        return hb_error_set(err, HB_E_INVALID_TOKEN, NULL,
                            "the token's scopes[%zu] is not session, event or organization", i);
      if (out->scopes & HB_SCOPE_BIT(s))
        return hb_error_set(err, HB_E_INVALID_TOKEN, NULL,
                            "the token's scopes lists %s twice", hb_scope_name(s));
      out->scopes |= HB_SCOPE_BIT(s);
    }
  }

  if ((e = date_claim(p, "exp", true, &out->exp, err))) return e;
  if ((e = date_claim(p, "iat", false, &out->iat, err))) return e;
  if ((e = date_claim(p, "nbf", false, &out->nbf, err))) return e;
  return info_claim(json_object_get(p, "info"), out, err);
}


/* --- peek and verify ------------------------------------------------------ */

/* Split the token and parse its payload WITHOUT verifying anything, for
 * the plugin_id that names the key. On success *payload is owned by the
 * caller (json_decref). */
static hb_err peek(const char *tok, size_t len, parts *p, json_t **payload, hb_uuid *plugin) {
  *payload = NULL;
  if (split(tok, len, p, NULL) != HB_OK ||
      decode_json_seg(p->seg[1], p->seg_len[1], "payload", payload, NULL) != HB_OK ||
      uuid_claim(*payload, "plugin_id", plugin, NULL) != HB_OK) {
    json_decref(*payload);
    *payload = NULL;
    return HB_E_INVALID_TOKEN;
  }
  return HB_OK;
}

hb_err hb_jwt_peek_plugin(const char *tok, size_t len, hb_uuid *plugin) {
  parts p;
  json_t *payload;
  hb_err e = peek(tok, len, &p, &payload, plugin);
  json_decref(payload);
  return e;
}

static hb_err check_header(json_t *h, hb_error *err) {
  json_t *alg = json_object_get(h, "alg");
  if (!alg) return hb_error_set(err, HB_E_INVALID_TOKEN, NULL, "the token header has no alg");
  /* RFC 8725 3.1: accept exactly the one algorithm we use; "none" and
   * every other name (HS512, RS256 for key confusion...) are refused. */
  if (!json_is_string(alg) || json_string_length(alg) != 5 ||
      memcmp(json_string_value(alg), "HS256", 5) != 0)
    return hb_error_set(err, HB_E_INVALID_TOKEN, NULL, "the token alg must be HS256");
  /* RFC 7515 4.1.11: we understand no extension, so any crit is fatal. */
  if (json_object_get(h, "crit"))
    return hb_error_set(err, HB_E_INVALID_TOKEN, NULL,
                        "the token header has a crit parameter, which is not supported");
  json_t *typ = json_object_get(h, "typ");
  if (typ && !json_is_string(typ))
    return hb_error_set(err, HB_E_INVALID_TOKEN, NULL, "the token typ is not a string");
  json_t *kid = json_object_get(h, "kid");
  if (kid && !json_is_string(kid))
    return hb_error_set(err, HB_E_INVALID_TOKEN, NULL, "the token kid is not a string");
  return HB_OK;
}

/* Is the header that of a minted token? Then it needs no parsing. */
static bool minted_header(const parts *p) {
  return p->seg_len[0] == sizeof MINTED_HEADER_B64 - 1 &&
         memcmp(p->seg[0], MINTED_HEADER_B64, sizeof MINTED_HEADER_B64 - 1) == 0;
}

/* The signature against `key`: HB_OK, HB_E_INVALID_TOKEN with *mismatch
 * set when another key might match, or an error that no key changes. */
static hb_err check_sig(const char *tok, const parts *p, const char *key, size_t key_len, bool *mismatch,
                        hb_error *err) {
  unsigned char sig[SIG_BYTES + 3], want[SIG_BYTES];
  hb_err e = HB_OK;
  *mismatch = false;
  /* A 32-byte MAC is 43 base64url characters; anything else cannot match. */
  if (p->seg_len[2] != 43 || hb_b64url_decode(p->seg[2], p->seg_len[2], sig) != SIG_BYTES)
    return hb_error_set(err, HB_E_INVALID_TOKEN, NULL, "the token signature is malformed");
  size_t signed_len = p->seg_len[0] + 1 + p->seg_len[1];
  if (!hs256(key, key_len, tok, signed_len, want)) {
    e = hb_error_set(err, HB_E_INTERNAL, NULL, "HMAC failed");
  } else if (CRYPTO_memcmp(sig, want, SIG_BYTES) != 0) {
    *mismatch = true;
    e = hb_error_set(err, HB_E_INVALID_TOKEN, NULL, "the token signature does not match");
  }
  OPENSSL_cleanse(want, sizeof want);
  return e;
}

/* The claims, once the signature matched. `*payload` is the already parsed
 * payload, or NULL to parse it here (it stays owned by the caller). */
static hb_err check_claims(const parts *p, json_t **payload, int64_t now_s, hb_conn_claims *out,
                           hb_error *err) {
  hb_conn_claims c;
  hb_err e;
  memset(&c, 0, sizeof c);
  /* Only now is the payload trusted enough to talk about its contents. */
  if (!*payload && (e = decode_json_seg(p->seg[1], p->seg_len[1], "payload", payload, err))) return e;
  if ((e = claims_from(*payload, &c, err))) return e;
  /* RFC 7519 4.1.4: reject at or after exp; the leeway absorbs clock skew.
   * Written as now - leeway so that a huge exp cannot overflow. */
  if (now_s - HB_JWT_LEEWAY_S >= c.exp) return hb_error_set(err, HB_E_TOKEN_EXPIRED, NULL, "the token expired");
  if (c.nbf && now_s + HB_JWT_LEEWAY_S < c.nbf)
    return hb_error_set(err, HB_E_INVALID_TOKEN, NULL, "the token is not valid yet (nbf)");
  if (out) *out = c;
  return HB_OK;
}

/* Everything after the split. `payload` is the already parsed (untrusted)
 * payload, or NULL to parse it once the signature is known good; it is
 * consumed either way. */
static hb_err verify_parts(const char *tok, const parts *pp, json_t *payload, const char *key,
                           size_t key_len, int64_t now_s, hb_conn_claims *out, hb_error *err) {
  json_t *header = NULL;
  bool mismatch;
  hb_err e = HB_OK;
  if (!minted_header(pp)) {
    e = decode_json_seg(pp->seg[0], pp->seg_len[0], "header", &header, err);
    if (!e) e = check_header(header, err);
  }
  if (!e) e = check_sig(tok, pp, key, key_len, &mismatch, err);
  if (!e) e = check_claims(pp, &payload, now_s, out, err);
  json_decref(header);
  json_decref(payload);
  return e;
}

static bool kid_char(unsigned char ch) { return hb_b64url_is_char(ch); }

/*
 * Check the header and read its kid into kid (kid_len 0 when there is none,
 * or when it cannot be one of ours: too long, or holding a NUL). Minted
 * headers, with or without a base64url kid, are recognised by their bytes;
 * anything else goes through jansson and check_header.
 */
static hb_err read_header(const parts *p, char kid[HB_SIGNING_KID_MAX_BYTES + 1], size_t *kid_len,
                          hb_error *err) {
  unsigned char buf[HB_MAX_CONN_TOKEN_BYTES];
  const size_t plen = sizeof KID_HEADER_PREFIX - 1;
  json_t *h = NULL;
  *kid_len = 0;
  if (minted_header(p)) return HB_OK;
  long m = hb_b64url_decode(p->seg[0], p->seg_len[0], buf);
  if (m > (long)plen + 2 && memcmp(buf, KID_HEADER_PREFIX, plen) == 0) {
    size_t i = plen;
    while (i < (size_t)m && kid_char(buf[i])) i++;
    size_t n = i - plen;
    if (n >= 1 && n <= HB_SIGNING_KID_MAX_BYTES && (size_t)m == i + 2 && buf[i] == '"' && buf[i + 1] == '}') {
      memcpy(kid, buf + plen, n);
      kid[n] = '\0';
      *kid_len = n;
      return HB_OK;
    }
  }
  hb_err e = decode_json_seg(p->seg[0], p->seg_len[0], "header", &h, err);
  if (!e) e = check_header(h, err);
  json_t *k = e ? NULL : json_object_get(h, "kid");
  if (k) {
    size_t n = json_string_length(k);
    const char *v = json_string_value(k);
    if (n >= 1 && n <= HB_SIGNING_KID_MAX_BYTES && !memchr(v, '\0', n)) {
      memcpy(kid, v, n);
      kid[n] = '\0';
      *kid_len = n;
    }
  }
  json_decref(h);
  return e;
}

hb_err hb_jwt_verify(const char *tok, size_t len, const char *key, size_t key_len,
                     int64_t now_s, hb_conn_claims *out, hb_error *err) {
  parts p;
  hb_err e = split(tok, len, &p, err);
  if (e) return e;
  return verify_parts(tok, &p, NULL, key, key_len, now_s, out, err);
}

hb_err hb_jwt_verify_keyed(const char *tok, size_t len, hb_jwt_key_fn key_fn, void *ud,
                           int64_t now_s, hb_conn_claims *out, hb_error *err) {
  parts p;
  json_t *payload = NULL;
  hb_uuid plugin;
  char key[HB_SECRET_MAX_BYTES + 1];
  size_t key_len = 0;
  /* The payload is parsed once: here, untrusted, for the plugin that names
   * the key, and its claims are read only after the signature matched. */
  if (peek(tok, len, &p, &payload, &plugin) != HB_OK)
    return hb_error_set(err, HB_E_INVALID_TOKEN, NULL, "connection token is malformed");
  if (!key_fn(&plugin, key, sizeof key, &key_len, ud)) {
    json_decref(payload);
    return hb_error_set(err, HB_E_INVALID_TOKEN, NULL, "connection token names an unknown plugin");
  }
  hb_err e = verify_parts(tok, &p, payload, key, key_len, now_s, out, err);
  OPENSSL_cleanse(key, sizeof key);
  return e;
}

hb_err hb_jwt_verify_keys(const char *tok, size_t len, hb_jwt_keys_fn keys_fn, void *ud, int64_t now_s,
                          hb_conn_claims *out, hb_error *err) {
  parts p;
  json_t *payload = NULL;
  hb_uuid plugin;
  hb_jwt_keys keys;
  char kid[HB_SIGNING_KID_MAX_BYTES + 1];
  size_t kid_len = 0;
  hb_conn_claims c;
  hb_err e;
  /* As hb_jwt_verify_keyed: the payload parsed once, untrusted, for the
   * plugin that names the keys; its claims believed only after a match. */
  if (peek(tok, len, &p, &payload, &plugin) != HB_OK)
    return hb_error_set(err, HB_E_INVALID_TOKEN, NULL, "connection token is malformed");
  memset(&keys, 0, sizeof keys);
  if (!keys_fn(&plugin, &keys, ud) || keys.n < 1) {
    e = hb_error_set(err, HB_E_INVALID_TOKEN, NULL, "connection token names an unknown plugin");
    goto out;
  }
  if (keys.n > 2) keys.n = 2;
  if ((e = read_header(&p, kid, &kid_len, err))) goto out;
  /* A kid that names one of the keys selects it; otherwise each is tried,
   * the current one first. */
  int first = 0, last = keys.n - 1;
  for (int i = 0; kid_len && i < keys.n; i++)
    if (strlen(keys.key[i].kid) == kid_len && memcmp(keys.key[i].kid, kid, kid_len) == 0) first = last = i;
  int matched = -1;
  for (int i = first; i <= last; i++) {
    bool mismatch = false;
    e = check_sig(tok, &p, keys.key[i].secret, keys.key[i].len, &mismatch, err);
    if (e == HB_OK) {
      matched = i;
      break;
    }
    if (!mismatch) break;
  }
  if (matched < 0) goto out;
  if ((e = check_claims(&p, &payload, now_s, &c, err))) goto out;
  snprintf(c.kid, sizeof c.kid, "%s", keys.key[matched].kid);
  if (out) *out = c;
out:
  OPENSSL_cleanse(&keys, sizeof keys);
  json_decref(payload);
  return e;
}
