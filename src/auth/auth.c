/*
 * auth.c - the credential cache: API-token hashes and plugins, in memory.
 *
 * The request paths never run SQL. hb_auth_reload() builds a complete new
 * snapshot from the store when its data version moved and swaps it in under
 * the write lock; lookups take the read lock once, copy out what they need
 * (a principal, a signing secret) and release it before any slow work such
 * as HMAC verification.
 */
#include "hubbub/auth.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "hubbub/alloc.h"
#include "hubbub/hash.h"
#include "hubbub/log.h"
#include "hubbub/metrics.h"
#include "hubbub/origin.h"


typedef struct {
  uint8_t hash[HB_TOKEN_HASH_BYTES]; /* key */
  hb_principal who;
  UT_hash_handle hh;
} token_entry;

typedef struct {
  hb_uuid id; /* key */
  hb_uuid org;
  char secret[HB_SECRET_MAX_BYTES + 1];
  char *origins; /* space-separated; NULL = any */
  UT_hash_handle hh;
} plugin_entry;

typedef struct {
  token_entry *tokens;
  plugin_entry *plugins;
} snapshot;

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
  if (!snap) return;
  HASH_ITER(hh, snap->tokens, t, tt) {
    HASH_DEL(snap->tokens, t);
    OPENSSL_cleanse(t, sizeof *t);
    hb_free(t);
  }
  HASH_ITER(hh, snap->plugins, p, pt) {
    HASH_DEL(snap->plugins, p);
    hb_free(p->origins);
    OPENSSL_cleanse(p->secret, sizeof p->secret);
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
  snprintf(e->secret, sizeof e->secret, "%s", r->signing_secret);
  /* Normalise "no allowlist" to NULL so the origin check is one test. */
  if (!hb_origin_list_empty(r->allowed_origins))
    e->origins = hb_strndup(r->allowed_origins, strlen(r->allowed_origins));
  HASH_ADD(hh, snap->plugins, id, sizeof e->id, e);
}

static snapshot *build(hb_store *store) {
  snapshot *snap = hb_calloc(1, sizeof *snap);
  if (hb_store_plugin_list(store, NULL, add_plugin, snap) != 0) goto fail;
  if (hb_store_token_list(store, add_token, snap) != 0) goto fail;
  return snap;
fail:
  snapshot_free(snap);
  return NULL;
}

static hb_log_limit reload_failed_limit;

/* Build and swap unconditionally when force, else only on a new version. */
static int reload(hb_store *store, bool force) {
  int64_t version = 0;
  snapshot *fresh, *old;
  int rc = -1;
  pthread_mutex_lock(&reload_mu);
  if (hb_store_data_version(store, &version) != 0) goto failed;
  if (!force && loaded_from == store && version == loaded_version) {
    rc = 0;
    goto out;
  }
  fresh = build(store);
  if (!fresh) goto failed; /* keep serving the last good snapshot */
  pthread_rwlock_wrlock(&lock);
  old = current;
  current = fresh;
  pthread_rwlock_unlock(&lock);
  snapshot_free(old);
  loaded_from = store;
  loaded_version = version;
  hb_debug("auth: credentials reloaded (%u tokens, %u plugins)", HASH_COUNT(fresh->tokens),
           HASH_COUNT(fresh->plugins));
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
  if (e && CRYPTO_memcmp(e->hash, hash, HB_TOKEN_HASH_BYTES) == 0) {
    if (out) *out = e->who;
    err = HB_OK;
  }
  pthread_rwlock_unlock(&lock);
  return err;
}

/* ---- connection tokens -------------------------------------------------- */

/* Copy a plugin's organization and secret out from under the lock. */
static bool plugin_lookup(const hb_uuid *plugin, hb_uuid *org, char *secret, size_t secretlen) {
  plugin_entry *e = NULL;
  bool found = false;
  pthread_rwlock_rdlock(&lock);
  if (current) HASH_FIND(hh, current->plugins, plugin, sizeof *plugin, e);
  if (e) {
    size_t n = strlen(e->secret);
    if (n < secretlen) {
      memcpy(secret, e->secret, n + 1);
      if (org) *org = e->org;
      found = true;
    }
  }
  pthread_rwlock_unlock(&lock);
  return found;
}

/* hb_jwt_key_fn: the plugin's signing secret from the snapshot; `ud`
 * receives the plugin's organization. */
static bool conn_token_key(const hb_uuid *plugin, char *key, size_t cap, size_t *key_len, void *ud) {
  if (!plugin_lookup(plugin, ud, key, cap)) return false;
  *key_len = strlen(key);
  return true;
}

hb_err hb_auth_conn_token(const char *tok, size_t len, int64_t now_s, hb_conn_claims *out,
                          hb_error *err) {
  hb_uuid org;
  hb_conn_claims claims;
  hb_err rc;

  if (!tok || len == 0) return hb_error_set(err, HB_E_MISSING_TOKEN, NULL, NULL);
  if (len > HB_MAX_CONN_TOKEN_BYTES)
    return hb_error_set(err, HB_E_INVALID_TOKEN, NULL, "connection token is over %d bytes",
                        HB_MAX_CONN_TOKEN_BYTES);
  memset(&claims, 0, sizeof claims);
  rc = hb_jwt_verify_keyed(tok, len, conn_token_key, &org, now_s, &claims, err);
  if (rc != HB_OK) return rc;
  /* The secret belongs to one plugin of one organization: a token signed
   * with it must not claim another organization's rooms. (The plugin
   * claim is the one the key was looked up by.) */
  if (!hb_uuid_eq(&claims.org, &org))
    return hb_error_set(err, HB_E_INVALID_TOKEN, NULL,
                        "organization_id is not the plugin's organization");
  if (out) *out = claims;
  if (err) err->err = HB_OK;
  return HB_OK;
}

int hb_auth_plugin_secret(const hb_uuid *plugin, char *out, size_t outlen) {
  return plugin_lookup(plugin, NULL, out, outlen) ? 0 : -1;
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
  if (!s || hb_store_data_version(s, &v) != 0 || v == miss_version) return false;
  miss_version = v;
  return hb_auth_reload(s) == 0;
}
