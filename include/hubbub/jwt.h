/*
 * jwt.h - connection tokens: compact JWS, HS256 only (RFC 7515, RFC 7519).
 *
 * The key is the plugin's signing secret, used as the ASCII bytes printed by
 * `hubbub plugin create`, so any JWT library can mint tokens offline.
 * Claims (docs/protocol.md, "Connection tokens"):
 *   organization_id, plugin_id, event_id, session_id  (UUID strings, required)
 *   sub      user id, string (required, 1..HB_MAX_USER_ID_BYTES)
 *   scopes   array of "session" | "event" | "organization" (default ["session"])
 *   exp      required; iat, nbf optional (NumericDate, seconds)
 *   info     optional JSON object: public user info shown in presence, kept
 *            as compact JSON of at most HB_MAX_PRESENCE_INFO_BYTES
 * The header must say {"alg":"HS256"}: "none" and every other algorithm are
 * refused before any signature work (no algorithm confusion). A `kid`
 * (RFC 7515 4.1.4) names which of the plugin's signing secrets signed it:
 * tokens minted by hubbub carry the current secret's kid. A plugin has a
 * current secret and, after a rotation, a previous one (hb_jwt_verify_keys).
 */
#ifndef HUBBUB_JWT_H
#define HUBBUB_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "hubbub/errors.h"
#include "hubbub/limits.h"
#include "hubbub/scope.h"
#include "hubbub/uuid.h"

typedef struct {
  hb_uuid org, plugin, event, session;
  char user_id[HB_MAX_USER_ID_BYTES + 1];
  hb_scope_set scopes;
  int64_t iat, exp, nbf; /* iat and nbf 0 when absent */
  uint16_t info_len;     /* 0: no info claim */
  char info[HB_MAX_PRESENCE_INFO_BYTES]; /* the info claim's object as compact JSON (not NUL-terminated) */
  /* Minting: the kid to put in the header ("" = none). Verifying with
   * hb_jwt_verify_keys: the kid of the secret that matched (also when the
   * token named none); "" after hb_jwt_verify. */
  char kid[HB_SIGNING_KID_MAX_BYTES + 1];
} hb_conn_claims;

/**
 * Mint a token; returns a NUL-terminated string owned by the caller (hb_free).
 * The header is {"alg":"HS256","typ":"JWT"}, with "kid" when c->kid is set.
 */
char *hb_jwt_mint(const hb_conn_claims *c, const char *key, size_t key_len);

/**
 * Read plugin_id from the payload WITHOUT verifying anything, so the caller
 * can find the key. Returns HB_E_INVALID_TOKEN when the token is malformed.
 */
hb_err hb_jwt_peek_plugin(const char *tok, size_t len, hb_uuid *plugin);

/**
 * Verify signature (constant time), alg, exp/nbf with HB_JWT_LEEWAY_S, and
 * the claims' shapes. HB_E_TOKEN_EXPIRED for exp in the past, otherwise
 * HB_E_INVALID_TOKEN with a message saying what is wrong.
 */
hb_err hb_jwt_verify(const char *tok, size_t len, const char *key, size_t key_len,
                     int64_t now_s, hb_conn_claims *out, hb_error *err);

/** Find the key of `plugin`: copy it into key (cap bytes), set *key_len; false if unknown. */
typedef bool (*hb_jwt_key_fn)(const hb_uuid *plugin, char *key, size_t cap, size_t *key_len,
                              void *ud);

/**
 * hb_jwt_verify with the key looked up from the token's plugin_id: the
 * payload is parsed once (hb_jwt_peek_plugin followed by hb_jwt_verify
 * would parse it twice). "connection token is malformed" when there is no
 * readable plugin_id, "names an unknown plugin" when key_fn finds none.
 */
hb_err hb_jwt_verify_keyed(const char *tok, size_t len, hb_jwt_key_fn key_fn, void *ud,
                           int64_t now_s, hb_conn_claims *out, hb_error *err);

/* A plugin's signing secrets that may verify a token now. */
typedef struct {
  char secret[HB_SECRET_MAX_BYTES + 1];
  size_t len;
  char kid[HB_SIGNING_KID_MAX_BYTES + 1];
} hb_jwt_key;

typedef struct {
  hb_jwt_key key[2]; /* [0] the current secret, [1] the previous one */
  int n;             /* 1, or 2 while the previous one is not retired */
} hb_jwt_keys;

/** Fill `out` with the keys of `plugin`; false if the plugin is unknown. */
typedef bool (*hb_jwt_keys_fn)(const hb_uuid *plugin, hb_jwt_keys *out, void *ud);

/**
 * hb_jwt_verify_keyed with a plugin's current and previous secrets. A token
 * whose kid names one of them is checked with that one only; a token
 * without a kid, or with a kid naming neither (minted by another tool, or
 * by a secret since retired), is checked with the current secret, then the
 * previous one. out->kid says which matched. The keys are cleansed after.
 */
hb_err hb_jwt_verify_keys(const char *tok, size_t len, hb_jwt_keys_fn keys_fn, void *ud,
                          int64_t now_s, hb_conn_claims *out, hb_error *err);

#endif
