/*
 * dump.h - the store as one JSON document (`hubbub export`, `hubbub import`),
 * to move a deployment from one store to another (SQLite to PostgreSQL).
 *
 * The document (format_version 1):
 *   {"format":"hubbub-export","format_version":1,"schema_version":N,
 *    "exported_at":T,"includes_secrets":B,
 *    "organizations":[{"id","name","created_at"}],
 *    "plugins":[{"id","organization_id","name","allowed_origins","created_at",
 *                "signing":{"kid","secret","created_at",
 *                           "previous":{"kid","secret","retire_at"}|null}}],
 *    "api_tokens":[{"id","organization_id","plugin_id","name","token_sha256",
 *                   "created_at","revoked_at","expires_at"}],
 *    "revocations":[{"plugin_id","user_id","revoked_before","created_at"}]}
 * API tokens are only ever their SHA-256 (hex). "signing" is present exactly
 * when includes_secrets is true: without it an import gives each new plugin
 * a fresh signing secret, so connection tokens signed with the old secrets
 * do not verify against the imported store (API tokens do: their hashes
 * travel). Times are Unix seconds; revoked_at, expires_at, retire_at may be
 * null.
 *
 * Import is strict: the text is at most HB_DUMP_MAX_BYTES, nested at most
 * HB_DUMP_MAX_DEPTH, parsed by jansson with JSON_REJECT_DUPLICATES; unknown
 * fields, wrong types, bad values and dangling references are refused with
 * the JSON pointer at fault. Then hb_store_import() writes it in one
 * transaction: an entry already present with the same content is left
 * alone, one that conflicts refuses the whole import.
 */
#ifndef HUBBUB_DUMP_H
#define HUBBUB_DUMP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "hubbub/store.h"

#define HB_DUMP_FORMAT "hubbub-export"
#define HB_DUMP_FORMAT_VERSION 1

/**
 * The store as a document, read in one consistent snapshot. *out is owned
 * by the caller (json_decref). 0, or the store's error.
 */
int hb_dump_export(hb_store *s, bool include_secrets, json_t **out);

/**
 * Validate `text` and import it into `s`. 0 imported (res says how much was
 * created and how much was already there); 1 refused, nothing changed, with
 * "POINTER: why" (or a JSON syntax error with its line and column) in
 * errbuf; or the store's error (HB_STORE_UNAVAILABLE...).
 */
int hb_dump_import(hb_store *s, const char *text, size_t len, hb_store_import_result *res, char *errbuf,
                   size_t errlen);

#endif
