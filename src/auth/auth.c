/*
 * auth.c - the credential cache: API-token hashes, plugins (with their
 * signing secrets) and connection-token revocations, in memory.
 *
 * The request paths never run SQL. hb_auth_reload() builds a complete new
 * snapshot from the store, in one read transaction, when its data version
 * moved and swaps it in under the write lock; lookups take the read lock
 * once, copy out what they need (a principal, signing secrets) and release
 * it before any slow work such as HMAC verification.
 */
#include "hubbub/auth.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hubbub/alloc.h"
#include "hubbub/hash.h"
#include "hubbub/log.h"
#include "hubbub/metrics.h"
#include "hubbub/origin.h"


typedef struct {
  uint8_t hash[HB_TOKEN_HASH_BYTES]; /* key */
  hb_principal who;
  int64_t expires_at; /* 0 = never */
  UT_hash_handle hh;
} token_entry;

typedef struct {
  hb_uuid id; /* key */
  hb_uuid org;
  /* [0] the current secret, [1] the previous one (n == 2 while kept) */
  hb_jwt_key keys[2];
  int nkeys;
  int64_t previous_retire_at; /* 0 = until retired */
  char *origins; /* space-separated; NULL = any */
  UT_hash_handle hh;
} plugin_entry;

/* Revocation key: the plugin's 16 bytes, then the user id's bytes. */
#define REVOCATION_KEY_BYTES (sizeof(hb_uuid) + HB_MAX_USER_ID_BYTES)

typedef struct {
  uint8_t key[REVOCATION_KEY_BYTES];
  size_t key_len;
  int64_t before;
  UT_hash_handle hh;
} revocation_entry;

typedef struct {
  token_entry *tokens;
  plugin_entry *plugins;
  revocation_entry *revocations;
} snapshot;

static atomic_uint_fast64_t generation;

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static snapshot *current; /* guarded by lock */

/* Which store connection and version the current snapshot came from. A data
 * version is only comparable with one from the same connection, so a reload
 * through another connection always rebuilds. Guarded by reload_mu, which
 * also serialises concurrent reloads. */
static pthread_mutex_t reload_mu = PTHREAD_MUTEX_INITIALIZER;
static const hb_store *loaded_from;
static int64_t loaded_version;

static void snapshot_free(snapshot *snap) {
  token_entry *t, *tt;
  plugin_entry *p, *pt;
  revocation_entry *r, *rt;
  if (!snap) return;
  HASH_ITER(hh, snap->revocations, r, rt) {
    HASH_DEL(snap->revocations, r);
    hb_free(r);
  }
  HASH_ITER(hh, snap->tokens, t, tt) {
    HASH_DEL(snap->tokens, t);
    OPENSSL_cleanse(t, sizeof *t);
    hb_free(t);
  }
  HASH_ITER(hh, snap->plugins, p, pt) {
    HASH_DEL(snap->plugins, p);
    hb_free(p->origins);
    OPENSSL_cleanse(p->keys, sizeof p->keys);
    hb_free(p);
  }
  hb_free(snap);
}

static void add_token(const hb_token_row *r, void *ud) {
  snapshot *snap = ud;
  token_entry *e, *dup;
  if (r->revoked_at) return; /* a revoked token is simply absent */
  HASH_FIND(hh, snap->tokens, r->hash, HB_TOKEN_HASH_BYTES, dup);
  if (dup) return; /* the schema makes hashes unique; never trust that blindly */
  e = hb_calloc(1, sizeof *e);
  memcpy(e->hash, r->hash, HB_TOKEN_HASH_BYTES);
  e->who.org = r->org_id;
  e->who.plugin = r->plugin_id;
  e->who.token_id = r->id;
  e->expires_at = r->expires_at;
  HASH_ADD(hh, snap->tokens, hash, HB_TOKEN_HASH_BYTES, e);
}

static void add_plugin(const hb_plugin_row *r, void *ud) {
  snapshot *snap = ud;
  plugin_entry *e, *dup;
  HASH_FIND(hh, snap->plugins, &r->id, sizeof r->id, dup);
  if (dup) return;
  e = hb_calloc(1, sizeof *e);
  e->id = r->id;
  e->org = r->org_id;
  snprintf(e->keys[0].secret, sizeof e->keys[0].secret, "%s", r->signing_secret);
  e->keys[0].len = strlen(e->keys[0].secret);
  snprintf(e->keys[0].kid, sizeof e->keys[0].kid, "%s", r->signing_kid);
  e->nkeys = 1;
  if (r->previous_secret[0]) {
    snprintf(e->keys[1].secret, sizeof e->keys[1].secret, "%s", r->previous_secret);
    e->keys[1].len = strlen(e->keys[1].secret);
    snprintf(e->keys[1].kid, sizeof e->keys[1].kid, "%s", r->previous_kid);
    e->previous_retire_at = r->previous_retire_at;
    e->nkeys = 2;
  }
  /* Normalise "no allowlist" to NULL so the origin check is one test. */
  if (!hb_origin_list_empty(r->allowed_origins))
    e->origins = hb_strndup(r->allowed_origins, strlen(r->allowed_origins));
  HASH_ADD(hh, snap->plugins, id, sizeof e->id, e);
}

static size_t revocation_key(uint8_t key[REVOCATION_KEY_BYTES], const hb_uuid *plugin, const char *user,
                             size_t user_len) {
  if (user_len > HB_MAX_USER_ID_BYTES) user_len = HB_MAX_USER_ID_BYTES;
  memcpy(key, plugin, sizeof *plugin);
  memcpy(key + sizeof *plugin, user, user_len);
  return sizeof *plugin + user_len;
}

static void add_revocation(const hb_revocation_row *r, void *ud) {
  snapshot *snap = ud;
  revocation_entry *e = hb_calloc(1, sizeof *e), *dup;
  e->key_len = revocation_key(e->key, &r->plugin_id, r->user_id, strlen(r->user_id));
  e->before = r->revoked_before;
  HASH_FIND(hh, snap->revocations, e->key, e->key_len, dup);
  if (dup) { /* the primary key makes them unique; keep the later one */
    if (e->before > dup->before) dup->before = e->before;
    hb_free(e);
    return;
  }
  HASH_ADD(hh, snap->revocations, key[0], e->key_len, e);
}

/* The three lists in one read transaction: a token is never seen without
 * its plugin, nor a revocation without its plugin's deletion. */
static int build_in_tx(hb_store *store, void *ud) {
  snapshot *snap = ud;
  int rc = hb_store_plugin_list(store, NULL, add_plugin, snap);
  if (rc == 0) rc = hb_store_token_list(store, add_token, snap);
  if (rc == 0) rc = hb_store_revocation_list(store, NULL, add_revocation, snap);
  return rc;
}

static snapshot *build(hb_store *store, int *rc) {
  snapshot *snap = hb_calloc(1, sizeof *snap);
  if ((*rc = hb_store_read(store, build_in_tx, snap)) == 0) return snap;
  snapshot_free(snap);
  return NULL;
}

static hb_log_limit reload_failed_limit;

/* Build and swap unconditionally when force, else only on a new version. */
static int reload(hb_store *store, bool force) {
  int64_t version = 0;
  snapshot *fresh, *old;
  int rc;
  pthread_mutex_lock(&reload_mu);
  if ((rc = hb_store_data_version(store, &version)) != 0) goto failed;
  if (!force && loaded_from == store && version == loaded_version) goto out;
  fresh = build(store, &rc);
  if (!fresh) goto failed; /* keep serving the last good snapshot */
  pthread_rwlock_wrlock(&lock);
  old = current;
  current = fresh;
  pthread_rwlock_unlock(&lock);
  atomic_fetch_add(&generation, 1);
  snapshot_free(old);
  loaded_from = store;
  loaded_version = version;
  hb_debug("auth: credentials reloaded (%u tokens, %u plugins, %u revocations)", HASH_COUNT(fresh->tokens),
           HASH_COUNT(fresh->plugins), HASH_COUNT(fresh->revocations));
  rc = 0;
  goto out;
failed:
  /* Not silent: the server keeps the last good credentials, and says so
   * (the store logged its own error), once a second at most. */
  hb_metric_inc(HB_M_CREDENTIAL_RELOAD_FAILURES);
  unsigned long dropped = 0;
  if (hb_log_limit_take(&reload_failed_limit, &dropped))
    hb_error_log("auth: credentials not reloaded: the store cannot be read; serving the last good ones (%lu "
                 "more failures not logged)", dropped);
out:
  pthread_mutex_unlock(&reload_mu);
  return rc;
}

int hb_auth_init(hb_store *store) { return reload(store, true); }

int hb_auth_reload(hb_store *store) { return reload(store, false); }

int hb_auth_reload_force(hb_store *store) { return reload(store, true); }

uint64_t hb_auth_generation(void) { return atomic_load(&generation); }

void hb_auth_shutdown(void) {
  snapshot *old;
  pthread_mutex_lock(&reload_mu);
  pthread_rwlock_wrlock(&lock);
  old = current;
  current = NULL;
  pthread_rwlock_unlock(&lock);
  loaded_from = NULL;
  loaded_version = 0;
  pthread_mutex_unlock(&reload_mu);
  snapshot_free(old);
}

/* ---- API tokens --------------------------------------------------------- */

static bool is_space(char c) { return c == ' ' || c == '\t'; }

/* Hash the credential of an Authorization value ("<token>" or "Bearer <token>"). */
static hb_err credential_hash(const char *header, size_t len, uint8_t hash[HB_TOKEN_HASH_BYTES]) {
  const char *p = header ? header : "";
  const char *end = p + (header ? len : 0);

  while (p < end && is_space(*p)) p++;
  while (end > p && is_space(end[-1])) end--;
  /* RFC 7235 2.1: the scheme is case-insensitive. A bare token is accepted
   * too, as SPEC.md promises. */
  if (end - p >= 6 && strncasecmp(p, "bearer", 6) == 0 && (end - p == 6 || is_space(p[6]))) {
    p += 6; /* "Bearer" alone (its trailing spaces trimmed) is no token at all */
    while (p < end && is_space(*p)) p++;
  }
  if (p == end) return HB_E_MISSING_TOKEN;
  if ((size_t)(end - p) > HB_MAX_API_TOKEN_BYTES) return HB_E_INVALID_TOKEN;
  hb_store_hash_token(p, (size_t)(end - p), hash);
  return HB_OK;
}

hb_err hb_auth_admin_token(const char *header, size_t len, const char *sha256_hex) {
  uint8_t hash[HB_TOKEN_HASH_BYTES], want[HB_TOKEN_HASH_BYTES];
  hb_err err = credential_hash(header, len, hash);
  if (err != HB_OK) return err;
  if (strlen(sha256_hex) != 2 * HB_TOKEN_HASH_BYTES) return HB_E_INVALID_TOKEN;
  for (size_t i = 0; i < HB_TOKEN_HASH_BYTES; i++) {
    unsigned v;
    if (sscanf(sha256_hex + 2 * i, "%2x", &v) != 1) return HB_E_INVALID_TOKEN;
    want[i] = (uint8_t)v;
  }
  return CRYPTO_memcmp(hash, want, HB_TOKEN_HASH_BYTES) == 0 ? HB_OK : HB_E_INVALID_TOKEN;
}

hb_err hb_auth_api_token(const char *header, size_t len, hb_principal *out) {
  uint8_t hash[HB_TOKEN_HASH_BYTES];
  token_entry *e = NULL;
  hb_err err = credential_hash(header, len, hash);
  if (err != HB_OK) return err;
  err = HB_E_INVALID_TOKEN;

  pthread_rwlock_rdlock(&lock);
  if (current) HASH_FIND(hh, current->tokens, hash, HB_TOKEN_HASH_BYTES, e);
  /* The hash lookup already matched; the constant-time compare keeps the
   * final decision free of data-dependent timing all the same. */
  if (e && CRYPTO_memcmp(e->hash, hash, HB_TOKEN_HASH_BYTES) == 0 &&
      (!e->expires_at || (int64_t)time(NULL) < e->expires_at)) {
    if (out) *out = e->who;
    err = HB_OK;
  }
  pthread_rwlock_unlock(&lock);
  return err;
}

/* ---- connection tokens -------------------------------------------------- */

/* A plugin's keys usable at `now`: the previous secret only until its
 * retire_at. Called under the read lock. */
static void usable_keys(const plugin_entry *e, int64_t now, hb_jwt_keys *out) {
  out->n = 1;
  out->key[0] = e->keys[0];
  if (e->nkeys == 2 && (!e->previous_retire_at || now < e->previous_retire_at)) {
    out->key[1] = e->keys[1];
    out->n = 2;
  }
}

typedef struct {
  int64_t now;
  hb_uuid org; /* out: the plugin's organization */
} keys_ctx;

/* hb_jwt_keys_fn: the plugin's usable secrets, copied from the snapshot. */
static bool conn_token_keys(const hb_uuid *plugin, hb_jwt_keys *out, void *ud) {
  keys_ctx *k = ud;
  plugin_entry *e = NULL;
  pthread_rwlock_rdlock(&lock);
  if (current) HASH_FIND(hh, current->plugins, plugin, sizeof *plugin, e);
  if (e) {
    usable_keys(e, k->now, out);
    k->org = e->org;
  }
  pthread_rwlock_unlock(&lock);
  return e != NULL;
}

/* Under the read lock: is (plugin, user) revoked for a token issued at iat
 * (0 = unknown: revoked whenever a revocation exists)? */
static bool revoked_locked(const hb_uuid *plugin, const char *user, int64_t iat) {
  uint8_t key[REVOCATION_KEY_BYTES];
  revocation_entry *r = NULL;
  size_t n = revocation_key(key, plugin, user, strnlen(user, HB_MAX_USER_ID_BYTES));
  if (current) HASH_FIND(hh, current->revocations, key, n, r);
  /* iat has one-second resolution: a token issued in the same second as
   * the revocation cannot be told apart from one issued just before it,
   * so it is refused too. */
  return r && (iat <= 0 || iat <= r->before);
}

hb_err hb_auth_conn_token(const char *tok, size_t len, int64_t now_s, hb_conn_claims *out,
                          hb_error *err) {
  keys_ctx k = {now_s, {{0}}};
  hb_conn_claims claims;
  hb_err rc;

  if (!tok || len == 0) return hb_error_set(err, HB_E_MISSING_TOKEN, NULL, NULL);
  if (len > HB_MAX_CONN_TOKEN_BYTES)
    return hb_error_set(err, HB_E_INVALID_TOKEN, NULL, "connection token is over %d bytes",
                        HB_MAX_CONN_TOKEN_BYTES);
  memset(&claims, 0, sizeof claims);
  rc = hb_jwt_verify_keys(tok, len, conn_token_keys, &k, now_s, &claims, err);
  if (rc != HB_OK) return rc;
  /* The secret belongs to one plugin of one organization: a token signed
   * with it must not claim another organization's rooms. (The plugin
   * claim is the one the key was looked up by.) */
  if (!hb_uuid_eq(&claims.org, &k.org))
    return hb_error_set(err, HB_E_INVALID_TOKEN, NULL,
                        "organization_id is not the plugin's organization");
  pthread_rwlock_rdlock(&lock);
  bool revoked = revoked_locked(&claims.plugin, claims.user_id, claims.iat);
  pthread_rwlock_unlock(&lock);
  if (revoked)
    return hb_error_set(err, HB_E_TOKEN_REVOKED, NULL,
                        "the connection tokens of this user were revoked; ask for a new one");
  if (out) *out = claims;
  if (err) err->err = HB_OK;
  return HB_OK;
}

hb_err hb_auth_conn_recheck(const hb_conn_claims *c, int64_t now_s) {
  plugin_entry *e = NULL;
  hb_err rc = HB_OK;
  if (now_s - HB_JWT_LEEWAY_S >= c->exp) return HB_E_TOKEN_EXPIRED;
  pthread_rwlock_rdlock(&lock);
  if (current) HASH_FIND(hh, current->plugins, &c->plugin, sizeof c->plugin, e);
  if (!e || !hb_uuid_eq(&e->org, &c->org)) {
    rc = HB_E_INVALID_TOKEN;
  } else if (c->kid[0]) {
    hb_jwt_keys keys;
    usable_keys(e, now_s, &keys);
    bool found = false;
    for (int i = 0; i < keys.n; i++) found |= strcmp(keys.key[i].kid, c->kid) == 0;
    OPENSSL_cleanse(&keys, sizeof keys);
    if (!found) rc = HB_E_INVALID_TOKEN; /* its secret was retired */
  }
  if (rc == HB_OK && revoked_locked(&c->plugin, c->user_id, c->iat)) rc = HB_E_TOKEN_REVOKED;
  pthread_rwlock_unlock(&lock);
  return rc;
}

int hb_auth_plugin_key(const hb_uuid *plugin, char *secret, size_t secretlen, char *kid, size_t kidlen) {
  plugin_entry *e = NULL;
  int rc = -1;
  pthread_rwlock_rdlock(&lock);
  if (current) HASH_FIND(hh, current->plugins, plugin, sizeof *plugin, e);
  if (e && e->keys[0].len < secretlen && (!kid || strlen(e->keys[0].kid) < kidlen)) {
    memcpy(secret, e->keys[0].secret, e->keys[0].len + 1);
    if (kid) memcpy(kid, e->keys[0].kid, strlen(e->keys[0].kid) + 1);
    rc = 0;
  }
  pthread_rwlock_unlock(&lock);
  return rc;
}

int hb_auth_plugin_secret(const hb_uuid *plugin, char *out, size_t outlen) {
  return hb_auth_plugin_key(plugin, out, outlen, NULL, 0);
}

bool hb_auth_origin_allowed(const hb_uuid *plugin, const char *origin, size_t len) {
  plugin_entry *e = NULL;
  bool ok = false;
  pthread_rwlock_rdlock(&lock);
  if (current) HASH_FIND(hh, current->plugins, plugin, sizeof *plugin, e);
  /* No allowlist: any Origin (and none); an allowlist requires a listed one. */
  if (e) ok = !e->origins || hb_origin_in_list(e->origins, origin, len);
  pthread_rwlock_unlock(&lock);
  return ok;
}

/* Per thread: when it last looked at the store's version on a miss. */
static _Thread_local uint64_t miss_checked_ms;
static _Thread_local int64_t miss_version;

bool hb_auth_refresh_on_miss(const char *store_dir, uint64_t now_ms) {
  if (miss_checked_ms && now_ms - miss_checked_ms < HB_AUTH_MISS_RECHECK_MS) return false;
  miss_checked_ms = now_ms;
  hb_store *s = hb_store_thread(store_dir);
  int64_t v;
  /* Only a local store (SQLite) is cheap enough to ask from an I/O thread;
   * a remote one (PostgreSQL) tells the server's watcher of its changes. */
  if (!s || !hb_store_is_local(s) || hb_store_data_version(s, &v) != 0 || v == miss_version) return false;
  miss_version = v;
  return hb_auth_reload(s) == 0;
}
