/*
 * auth.h - the credential cache the request paths consult, never SQL.
 *
 * A snapshot of active API-token hashes and plugins (signing secret,
 * organization, allowed origins) loaded from the store. hb_auth_reload()
 * swaps in a new snapshot when the store's data version changed; lookups
 * from any I/O thread take a read lock once per request (not per subscriber).
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

/** Load the first snapshot from `store`. 0 ok, -1 on a store error. */
int hb_auth_init(hb_store *store);
/** Reload if the store changed since the last load (cheap when it did not). */
int hb_auth_reload(hb_store *store);
void hb_auth_shutdown(void);

/**
 * Check the value of an Authorization header ("<token>" or "Bearer <token>").
 * HB_E_MISSING_TOKEN for empty, HB_E_INVALID_TOKEN for unknown or revoked.
 * The comparison is by SHA-256 and constant time.
 */
hb_err hb_auth_api_token(const char *header, size_t len, hb_principal *out);

/**
 * Check an admin credential ("<token>" or "Bearer <token>") against the
 * configured SHA-256 (hex), in constant time.
 */
hb_err hb_auth_admin_token(const char *header, size_t len, const char *sha256_hex);

/**
 * Verify a connection token: find the plugin named by the token, verify with
 * its signing secret, and check the organization claim matches the plugin's.
 */
hb_err hb_auth_conn_token(const char *tok, size_t len, int64_t now_s,
                          hb_conn_claims *out, hb_error *err);

/** The signing secret of a plugin (to mint tokens). 0 ok, -1 unknown. */
int hb_auth_plugin_secret(const hb_uuid *plugin, char *out, size_t outlen);

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
