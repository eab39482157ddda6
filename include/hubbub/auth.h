/*
 * auth.h - the credential cache the request paths consult, never SQL.
 *
 * A snapshot of active API-token hashes (with their expiry), plugins
 * (organization, current and previous signing secret with their kids,
 * allowed origins) and connection-token revocations, loaded from the store
 * in one read transaction. hb_auth_reload() swaps in a new snapshot when the
 * store's data version changed; lookups from any I/O thread take a read lock
 * once per request (not per subscriber) and never touch the store.
 *
 * With a PostgreSQL store, hb_auth_init/hb_auth_reload block on the network
 * (store.h): call them from a thread that may block (a watcher thread
 * looping on hb_store_wait_change), never from an I/O thread. If a reload
 * fails the last good snapshot keeps serving.
 */
#ifndef HUBBUB_AUTH_H
#define HUBBUB_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hubbub/errors.h"
#include "hubbub/jwt.h"
#include "hubbub/store.h"
#include "hubbub/uuid.h"

/* Who an API token speaks for. */
typedef struct {
  hb_uuid org, plugin, token_id;
} hb_principal;

/** Load the first snapshot from `store`. 0 ok, or the store's error
 * (HB_STORE_UNAVAILABLE when PostgreSQL cannot be reached). */
int hb_auth_init(hb_store *store);
/** Reload if the store changed since the last load (cheap when it did not).
 * 0 ok (reloaded or nothing to do), or the store's error. */
int hb_auth_reload(hb_store *store);
/** Reload now, whatever the data version says (after a reconnect, when
 * change notifications may have been missed). */
int hb_auth_reload_force(hb_store *store);
void hb_auth_shutdown(void);

/**
 * Incremented at every snapshot swap. An I/O thread that remembers the
 * generation it last checked its connections against can tell, with one
 * atomic read, that it should re-check them (hb_auth_conn_recheck).
 */
uint64_t hb_auth_generation(void);

/**
 * Check the value of an Authorization header ("<token>" or "Bearer <token>").
 * HB_E_MISSING_TOKEN for empty, HB_E_INVALID_TOKEN for unknown, revoked
 * or expired (expires_at is compared with the clock at each call). The
 * comparison is by SHA-256 and constant time.
 */
hb_err hb_auth_api_token(const char *header, size_t len, hb_principal *out);

/**
 * Check an admin credential ("<token>" or "Bearer <token>") against the
 * configured SHA-256 (hex), in constant time.
 */
hb_err hb_auth_admin_token(const char *header, size_t len, const char *sha256_hex);

/**
 * Verify a connection token: find the plugin named by the token, verify with
 * its signing secret (the one its kid names; else the current one, then the
 * previous one until it is retired or its retire_at passed: hb_jwt_verify_keys),
 * check the organization claim matches the plugin's, and that the user's
 * tokens were not revoked: HB_E_TOKEN_REVOKED when a revocation of (plugin,
 * sub) exists and the token's iat is at or before its time. A token without
 * iat cannot show when it was issued: it is refused while any revocation of
 * its user is kept (HB_CONN_REVOCATION_KEEP_S). out->kid is the kid of the
 * secret that matched.
 */
hb_err hb_auth_conn_token(const char *tok, size_t len, int64_t now_s,
                          hb_conn_claims *out, hb_error *err);

/**
 * Whether a connection accepted earlier with these claims may stay, against
 * the current snapshot: HB_OK; HB_E_INVALID_TOKEN when its plugin is gone (or
 * moved organization) or the secret that verified it (claims->kid) was
 * retired; HB_E_TOKEN_REVOKED when its user's tokens were revoked since;
 * HB_E_TOKEN_EXPIRED past exp. For the server to close such connections
 * after a reload (hb_auth_generation). Takes the read lock once.
 */
hb_err hb_auth_conn_recheck(const hb_conn_claims *claims, int64_t now_s);

/** The current signing secret of a plugin (to mint tokens). 0 ok, -1 unknown. */
int hb_auth_plugin_secret(const hb_uuid *plugin, char *out, size_t outlen);

/**
 * The current signing secret and its kid (>= HB_SIGNING_KID_MAX_BYTES + 1
 * bytes), to mint a token the way the server should: claims.kid = kid, then
 * hb_jwt_mint. 0 ok, -1 unknown plugin.
 */
int hb_auth_plugin_key(const hb_uuid *plugin, char *secret, size_t secretlen, char *kid, size_t kidlen);

/**
 * Whether a WebSocket Origin header value may connect to this plugin.
 * A plugin without an allowlist accepts any Origin (and none).
 */
bool hb_auth_origin_allowed(const hb_uuid *plugin, const char *origin, size_t len);

/**
 * A credential was not in the snapshot: if the store in `store_dir` changed
 * since this thread last looked (at most every HB_AUTH_MISS_RECHECK_MS),
 * reload the snapshot now and return true so that the caller looks again.
 * A token the CLI created a moment ago works at once, while a flood of
 * unknown tokens costs one cheap version read per interval per thread.
 */
bool hb_auth_refresh_on_miss(const char *store_dir, uint64_t now_ms);

#endif
