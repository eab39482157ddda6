/*
 * store.h - the SQLite store: organizations, plugins, API token hashes.
 *
 * The only module that touches SQL. Schema changes are numbered migrations
 * applied at open (PRAGMA user_version). The file is DIR/hubbub.db.
 * Never called on the publish path: the server reads it at start and when
 * hb_store_data_version() says another process (the CLI) changed it.
 * One hb_store per thread; SQLite serialises writers across processes.
 */
#ifndef HUBBUB_STORE_H
#define HUBBUB_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "hubbub/limits.h"
#include "hubbub/uuid.h"

#define HB_STORE_FILE "hubbub.db"
#define HB_TOKEN_HASH_BYTES 32 /* SHA-256 */

typedef struct hb_store hb_store;

typedef struct {
  hb_uuid id;
  char name[HB_MAX_NAME_BYTES + 1];
  int64_t created_at;
} hb_org_row;

typedef struct {
  hb_uuid id, org_id;
  char name[HB_MAX_NAME_BYTES + 1];
  char signing_secret[HB_SECRET_MAX_BYTES + 1];
  char allowed_origins[1024]; /* space-separated; empty = any */
  int64_t created_at;
} hb_plugin_row;

typedef struct {
  hb_uuid id, org_id, plugin_id;
  char name[HB_MAX_NAME_BYTES + 1];
  uint8_t hash[HB_TOKEN_HASH_BYTES];
  int64_t created_at;
  int64_t revoked_at; /* 0 = active */
} hb_token_row;

/**
 * Open (creating DIR and the file if needed) and migrate. On failure returns
 * -1 and writes a human reason into errbuf (locked, read-only, corrupt...).
 * Only `hubbub serve` and `hubbub init` create a store.
 */
int hb_store_open(hb_store **out, const char *dir, char *errbuf, size_t errlen);
/** hb_store_open() of a store that must exist: HB_STORE_NONE (nothing
 * created, a reason in errbuf) when DIR holds none. */
int hb_store_open_existing(hb_store **out, const char *dir, char *errbuf, size_t errlen);
#define HB_STORE_NONE (-2)
void hb_store_close(hb_store *s);

/* Is the file a handle opened still at its path? SQLite keeps using a file
 * that was deleted or replaced (the handle holds it open), so nothing
 * fails: the server must look. */
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

int hb_store_org_create(hb_store *s, const char *name, hb_org_row *out); /* 1 = name taken */
int hb_store_org_find(hb_store *s, const char *name_or_id, hb_org_row *out); /* 1 = none */
int hb_store_org_list(hb_store *s, void (*cb)(const hb_org_row *, void *), void *ud);

int hb_store_plugin_create(hb_store *s, const hb_uuid *org, const char *name,
                           hb_plugin_row *out); /* 1 = name taken in org */
/** Replace a plugin's Origin allowlist (space-separated; "" = any). 1 = no such plugin. */
int hb_store_plugin_set_origins(hb_store *s, const hb_uuid *plugin, const char *origins);
/** `org` NULL: find by id only (names are unique only inside an organization). */
int hb_store_plugin_find(hb_store *s, const hb_uuid *org, const char *name_or_id,
                         hb_plugin_row *out);
int hb_store_plugin_list(hb_store *s, const hb_uuid *org /* or NULL */,
                         void (*cb)(const hb_plugin_row *, void *), void *ud);

/**
 * Create an API token. `token_out` (>= HB_MAX_API_TOKEN_BYTES + 1) receives
 * the secret, shown once; only its SHA-256 is stored.
 */
int hb_store_token_create(hb_store *s, const hb_uuid *org, const hb_uuid *plugin,
                          const char *name, char *token_out, hb_token_row *out);
int hb_store_token_revoke(hb_store *s, const hb_uuid *id); /* 1 = no such token */
int hb_store_token_list(hb_store *s, void (*cb)(const hb_token_row *, void *), void *ud);

/** Changes whenever any connection (any process) commits; cheap. */
int hb_store_data_version(hb_store *s, int64_t *out);

/** SHA-256 of an API token, as stored. */
void hb_store_hash_token(const char *tok, size_t len, uint8_t out[HB_TOKEN_HASH_BYTES]);

#endif
