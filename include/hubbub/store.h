/*
 * store.h - the store: organizations, plugins (signing secrets), API-token
 * hashes, connection-token revocations. SQLite (embedded, one machine) or
 * PostgreSQL (one database for every node of a cluster).
 *
 * The only module that touches SQL. Schema changes are numbered migrations,
 * the same numbers for both backends, applied in one transaction at open
 * (SQLite: PRAGMA user_version; PostgreSQL: the hubbub_schema_migrations
 * table, under an advisory lock so that nodes starting together migrate
 * once). A database newer than this build is refused.
 *
 * Locations (hb_store_open):
 *   DIR                       DIR/hubbub.db (created 0700/0600 when missing)
 *   sqlite:PATH               the SQLite file PATH (its directory must exist)
 *   postgres://... , postgresql://...   a libpq connection URI; connect_timeout
 *                             defaults to HB_STORE_PG_CONNECT_TIMEOUT_S
 *
 * Threads: one hb_store per thread (a connection is not shared).
 *
 * Blocking: with SQLite every call is local (a file; a writer may wait up to
 * HB_STORE_BUSY_TIMEOUT_MS for another writer's lock). With PostgreSQL every
 * call except hb_store_is_local(), hb_store_backend(), hb_store_hash_token()
 * and hb_store_close() may block on the network: at most the connect timeout
 * to (re)connect plus the reply timeout per statement (hb_store_options).
 * Never call a PostgreSQL store from an I/O thread; hb_store_is_local() says
 * which kind a store is.
 *
 * Results: 0 success; 1 (HB_STORE_NONE) "not found" or "already exists"
 * where a function says so; -1 (HB_STORE_ERROR) a database error (logged);
 * -2 (HB_STORE_UNAVAILABLE) the database cannot be reached or is busy right
 * now (PostgreSQL down, a broken connection, a timeout, an SQLite lock held
 * past the busy timeout): try again later; a server answers 503. After a
 * broken connection the next call reconnects by itself. A write that failed
 * with -2 at its commit may or may not have been applied.
 *
 * Every write is one transaction that also bumps the change counter (and, on
 * PostgreSQL, sends NOTIFY hubbub_changes, delivered only once committed), so
 * hb_store_data_version() and hb_store_wait_change() see every change.
 */
#ifndef HUBBUB_STORE_H
#define HUBBUB_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hubbub/limits.h"
#include "hubbub/uuid.h"

#define HB_STORE_FILE "hubbub.db"
#define HB_TOKEN_HASH_BYTES 32 /* SHA-256 */

enum {
  HB_STORE_OK = 0,
  HB_STORE_NONE = 1,
  HB_STORE_ERROR = -1,
  HB_STORE_UNAVAILABLE = -2,
};

typedef struct hb_store hb_store;

/* Tuning of hb_store_open_with(); 0 in a field = its default. */
typedef struct {
  /* PostgreSQL: no reply within this many ms drops the connection and the
   * call fails with HB_STORE_UNAVAILABLE (default HB_STORE_PG_REPLY_TIMEOUT_MS;
   * the server's statement_timeout is set a little below it). */
  int reply_timeout_ms;
  /* Open only a store that exists (hb_store_open_existing). */
  bool must_exist;
} hb_store_options;

typedef struct {
  hb_uuid id;
  char name[HB_MAX_NAME_BYTES + 1];
  int64_t created_at;
} hb_org_row;

typedef struct {
  hb_uuid id, org_id;
  char name[HB_MAX_NAME_BYTES + 1];
  /* The current signing secret and its key id (the JOSE header's kid). */
  char signing_secret[HB_SECRET_MAX_BYTES + 1];
  char signing_kid[HB_SIGNING_KID_MAX_BYTES + 1];
  int64_t secret_created_at;
  /* The previous secret after a rotation; "" when there is none. It keeps
   * verifying tokens until previous_retire_at (0 = until retired). */
  char previous_secret[HB_SECRET_MAX_BYTES + 1];
  char previous_kid[HB_SIGNING_KID_MAX_BYTES + 1];
  int64_t previous_retire_at;
  char allowed_origins[1024]; /* space-separated; empty = any */
  int64_t created_at;
} hb_plugin_row;

typedef struct {
  hb_uuid id, org_id, plugin_id;
  char name[HB_MAX_NAME_BYTES + 1];
  uint8_t hash[HB_TOKEN_HASH_BYTES];
  int64_t created_at;
  int64_t revoked_at; /* 0 = active */
  int64_t expires_at; /* 0 = never */
} hb_token_row;

/* "Connection tokens of user_id in plugin_id issued at or before
 * revoked_before are refused" (see hb_auth_conn_token for tokens without iat). */
typedef struct {
  hb_uuid plugin_id;
  char user_id[HB_MAX_USER_ID_BYTES + 1];
  int64_t revoked_before;
  int64_t created_at;
} hb_revocation_row;

/**
 * Open (creating the SQLite directory and file if needed) and migrate. On
 * failure returns -1 (HB_STORE_UNAVAILABLE when PostgreSQL cannot be
 * reached) and writes a human reason into errbuf (malformed location,
 * locked, read-only, corrupt, unreachable, schema newer than this build...);
 * the reason never contains a password.
 */
int hb_store_open(hb_store **out, const char *location, char *errbuf, size_t errlen);
int hb_store_open_with(hb_store **out, const char *location, const hb_store_options *opts,
                       char *errbuf, size_t errlen);
/** hb_store_open() of a store that must exist: HB_STORE_NONE, nothing
 * created and a reason in errbuf, when the location holds none (SQLite: no
 * file; PostgreSQL: the database must exist anyway). Only `hubbub serve`
 * and `hubbub init` create a store; the admin commands and a server's
 * per-thread handles never do. */
int hb_store_open_existing(hb_store **out, const char *location, char *errbuf, size_t errlen);
void hb_store_close(hb_store *s);

/* Is the file a handle opened still at its path? SQLite keeps using a file
 * that was deleted or replaced (the handle holds it open), so nothing
 * fails: the server must look. (PostgreSQL: always OK; an outage shows as
 * HB_STORE_UNAVAILABLE instead.) */
typedef enum {
  HB_STORE_FILE_OK,
  HB_STORE_FILE_MISSING,  /* nothing at the path (deleted, moved, unreadable directory) */
  HB_STORE_FILE_REPLACED, /* another file at the path (restored, recreated) */
} hb_store_file;
/** stat() the path and compare device and inode with what was opened; log
 * a change from the last check (an error when the file went, info when it
 * is back). Cheap: the server calls it on every credential reload tick. */
hb_store_file hb_store_check_file(hb_store *s);

/**
 * The calling thread's own handle on the store in `dir`, opened on first
 * use (NULL, logged, when it cannot be: never created) and kept until
 * hb_store_thread_close() on the same thread.
 */
hb_store *hb_store_thread(const char *dir);
void hb_store_thread_close(void);

/**
 * The one rule for organization, plugin and API-token names: NULL when
 * `name` is valid, else what is wrong with it ("must not be a UUID"...).
 */
const char *hb_store_name_problem(const char *name);

/* All functions return 0 on success, 1 for "not found / already exists"
 * where documented, -1 on a database error (logged). */
/** True for SQLite: every call is local, and hb_store_data_version() reads
 * shared memory without a system call, cheap enough for an I/O thread.
 * False for PostgreSQL: never call such a store from an I/O thread. */
bool hb_store_is_local(const hb_store *s);
/** "sqlite" or "postgresql". */
const char *hb_store_backend(const hb_store *s);
/**
 * The location as it may be logged: a PostgreSQL URI without its password
 * (and without any query parameter value named password); anything else as
 * given. Truncated to outlen.
 */
void hb_store_location_describe(const char *location, char *out, size_t outlen);
/** The schema version of the open database, and the one this build knows. */
int hb_store_schema_version(hb_store *s, int *out);
int hb_store_schema_latest(void);

/* ---- organizations ---- */

int hb_store_org_create(hb_store *s, const char *name, hb_org_row *out); /* 1 = name taken */
int hb_store_org_find(hb_store *s, const char *name_or_id, hb_org_row *out); /* 1 = none */
int hb_store_org_list(hb_store *s, void (*cb)(const hb_org_row *, void *), void *ud);
/** Delete an organization with its plugins, API tokens and revocations. 1 = none. */
int hb_store_org_delete(hb_store *s, const hb_uuid *org);

/* ---- plugins ---- */

int hb_store_plugin_create(hb_store *s, const hb_uuid *org, const char *name,
                           hb_plugin_row *out); /* 1 = name taken in org */
/** As hb_store_plugin_create with an Origin allowlist, in one transaction. */
int hb_store_plugin_create_with_origins(hb_store *s, const hb_uuid *org, const char *name,
                                        const char *origins, hb_plugin_row *out);
/** Replace a plugin's Origin allowlist (space-separated; "" = any). 1 = no such plugin. */
int hb_store_plugin_set_origins(hb_store *s, const hb_uuid *plugin, const char *origins);
/** `org` NULL: find by id only (names are unique only inside an organization). */
int hb_store_plugin_find(hb_store *s, const hb_uuid *org, const char *name_or_id,
                         hb_plugin_row *out);
int hb_store_plugin_list(hb_store *s, const hb_uuid *org /* or NULL */,
                         void (*cb)(const hb_plugin_row *, void *), void *ud);
/** Delete a plugin with its API tokens and revocations. 1 = none. */
int hb_store_plugin_delete(hb_store *s, const hb_uuid *plugin);
/**
 * Make a new current signing secret (new kid); the old current becomes the
 * previous one (an older previous is dropped), verifying tokens for
 * `previous_ttl_s` more seconds (0 = until hb_store_plugin_retire_previous).
 * `out` receives the plugin with the new secret. 1 = no such plugin.
 */
int hb_store_plugin_rotate_secret(hb_store *s, const hb_uuid *plugin, int64_t previous_ttl_s,
                                  hb_plugin_row *out);
/** Drop the previous signing secret now. 1 = no such plugin; *had_previous
 * (may be NULL) says whether there was one. */
int hb_store_plugin_retire_previous(hb_store *s, const hb_uuid *plugin, bool *had_previous);

/* ---- API tokens ---- */

/**
 * Create an API token. `token_out` (>= HB_MAX_API_TOKEN_BYTES + 1) receives
 * the secret, shown once; only its SHA-256 is stored.
 */
int hb_store_token_create(hb_store *s, const hb_uuid *org, const hb_uuid *plugin,
                          const char *name, char *token_out, hb_token_row *out);
/** As hb_store_token_create, expiring at `expires_at` (Unix seconds; 0 = never). */
int hb_store_token_create_with_expiry(hb_store *s, const hb_uuid *org, const hb_uuid *plugin,
                                      const char *name, int64_t expires_at, char *token_out,
                                      hb_token_row *out);
int hb_store_token_revoke(hb_store *s, const hb_uuid *id); /* 1 = no such token */
int hb_store_token_list(hb_store *s, void (*cb)(const hb_token_row *, void *), void *ud);

/* ---- connection-token revocations ---- */

/**
 * Refuse every connection token of `user_id` in `plugin` issued at or
 * before `before` (Unix seconds). Revoking again keeps the later time. In
 * the same transaction, revocations older than HB_CONN_REVOCATION_KEEP_S
 * are pruned. `out` (may be NULL) receives the stored row. 1 = no such plugin.
 */
int hb_store_revoke_user_tokens(hb_store *s, const hb_uuid *plugin, const char *user_id,
                                int64_t before, hb_revocation_row *out);
int hb_store_revocation_list(hb_store *s, const hb_uuid *plugin /* or NULL */,
                             void (*cb)(const hb_revocation_row *, void *), void *ud);
/** Delete revocations whose revoked_before is older than `older_than`. */
int hb_store_revocation_prune(hb_store *s, int64_t older_than, int64_t *pruned);

/* ---- consistency and change tracking ---- */

/**
 * Run fn inside one read-only transaction, so that the lists it reads are a
 * consistent snapshot (the credential cache, export). fn must not write.
 * Returns fn's result, or the store's error when the snapshot cannot start.
 */
int hb_store_read(hb_store *s, int (*fn)(hb_store *, void *), void *ud);

/**
 * A number that changes whenever any connection (any process, any node)
 * commits a change. SQLite: PRAGMA data_version combined with this
 * connection's own commits, comparable only with values from the same
 * hb_store. PostgreSQL: the shared change counter (one round trip).
 */
int hb_store_data_version(hb_store *s, int64_t *out);

/**
 * Block until the store may have changed, or timeout_ms passed; for a
 * dedicated watcher thread with its own hb_store. Returns 1 (changed, or
 * perhaps changed: after a reconnect, notifications may have been missed),
 * 0 (timeout, no change seen), or HB_STORE_UNAVAILABLE (returned once
 * timeout_ms passed, so a loop around it does not spin). Then re-read with
 * hb_store_data_version(). PostgreSQL: LISTEN hubbub_changes on a
 * connection of its own, polling its socket. SQLite: data_version is read
 * every HB_STORE_LOCAL_POLL_MS; a change is one since the previous call.
 */
int hb_store_wait_change(hb_store *s, int timeout_ms);

/** SHA-256 of an API token, as stored. */
void hb_store_hash_token(const char *tok, size_t len, uint8_t out[HB_TOKEN_HASH_BYTES]);

/* ---- import (the document side is dump.h) ---- */

typedef struct {
  const hb_org_row *orgs;
  size_t norgs;
  /* A plugin whose signing_secret is "" gets a fresh secret and kid. */
  const hb_plugin_row *plugins;
  size_t nplugins;
  const hb_token_row *tokens;
  size_t ntokens;
  const hb_revocation_row *revocations;
  size_t nrevocations;
} hb_store_import_set;

typedef struct {
  size_t created[4], unchanged[4]; /* orgs, plugins, tokens, revocations */
  size_t new_secrets;              /* plugins given a fresh signing secret */
  /* On a conflict: which list ("organizations", "plugins", "api_tokens",
   * "revocations"), which entry, which field, and why. */
  const char *kind;
  size_t index;
  const char *field;
  char why[256];
} hb_store_import_result;

/**
 * Insert the set in one transaction. An entry whose id (or key) exists with
 * the same content is left as it is; an id, name or token hash that exists
 * with different content is a conflict: nothing is changed, 1 is returned
 * and `res` says where. The set is expected to be validated (dump.c).
 */
int hb_store_import(hb_store *s, const hb_store_import_set *set, hb_store_import_result *res);

#endif
