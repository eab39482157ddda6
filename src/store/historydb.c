/*
 * historydb.c - the history file of a single node (historydb.h).
 *
 * WAL with synchronous=NORMAL: a commit is not fsynced, so it survives the
 * process being killed (the data is in the OS's page cache) but not the
 * machine losing power; that matches what history promises (recovery across
 * restarts, docs/protocol.md), and keeps a flush to a few tens of
 * microseconds.
 */
#include "hubbub/historydb.h"

#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "hubbub/alloc.h"
#include "hubbub/limits.h"
#include "hubbub/log.h"

struct hb_historydb {
  sqlite3 *db;
  sqlite3_stmt *put_channel, *put_chunk, *trim, *del_channel_chunks, *del_channel, *prune, *set_clean;
};

/* Migrations, as in store.c: entry i takes user_version i to i + 1. */
static const char *const migrations[] = {
    /* 1: channels and chunks of messages. */
    "CREATE TABLE channels ("
    "  chan BLOB PRIMARY KEY NOT NULL,"
    "  epoch INTEGER NOT NULL,"
    "  last INTEGER NOT NULL"
    ");"
    "CREATE TABLE chunks ("
    "  chan BLOB NOT NULL,"
    "  epoch INTEGER NOT NULL,"
    "  first INTEGER NOT NULL,"
    "  last INTEGER NOT NULL,"
    "  newest_ms INTEGER NOT NULL,"
    "  body BLOB NOT NULL,"
    "  PRIMARY KEY (chan, first)"
    ");"
    "CREATE INDEX chunks_by_age ON chunks(newest_ms);"
    "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);"
    "INSERT INTO meta VALUES ('clean', 1);",
};
#define MIGRATION_COUNT ((int)(sizeof migrations / sizeof migrations[0]))

static int fail(hb_historydb *h, const char *what) {
  hb_error_log("history store: %s: %s", what, sqlite3_errmsg(h->db));
  return -1;
}

static int exec(hb_historydb *h, const char *sql) {
  char *msg = NULL;
  if (sqlite3_exec(h->db, sql, NULL, NULL, &msg) == SQLITE_OK) return 0;
  hb_error_log("history store: %s", msg ? msg : sqlite3_errmsg(h->db));
  sqlite3_free(msg);
  return -1;
}

static int user_version(hb_historydb *h) {
  sqlite3_stmt *st;
  int v = -1;
  if (sqlite3_prepare_v2(h->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) return -1;
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return v;
}

static int migrate(hb_historydb *h, char *errbuf, size_t errlen) {
  int v = user_version(h);
  if (v < 0) {
    snprintf(errbuf, errlen, "cannot read the schema version: %s", sqlite3_errmsg(h->db));
    return -1;
  }
  if (v > MIGRATION_COUNT) {
    snprintf(errbuf, errlen, "schema version %d is newer than this hubbub knows (%d): upgrade hubbub", v,
             MIGRATION_COUNT);
    return -1;
  }
  for (; v < MIGRATION_COUNT; v++) {
    char set[64];
    snprintf(set, sizeof set, "PRAGMA user_version = %d", v + 1);
    if (exec(h, "BEGIN IMMEDIATE") || exec(h, migrations[v]) || exec(h, set) || exec(h, "COMMIT")) {
      sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
      snprintf(errbuf, errlen, "cannot migrate to schema version %d: %s", v + 1, sqlite3_errmsg(h->db));
      return -1;
    }
  }
  return 0;
}

static int prepare(hb_historydb *h, const char *sql, sqlite3_stmt **st) {
  return sqlite3_prepare_v3(h->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) == SQLITE_OK ? 0 : -1;
}

int hb_historydb_open(hb_historydb **out, const char *dir, char *errbuf, size_t errlen) {
  char path[PATH_MAX];
  *out = NULL;
  if (snprintf(path, sizeof path, "%s/%s", dir, HB_HISTORYDB_FILE) >= (int)sizeof path) {
    snprintf(errbuf, errlen, "the data directory path is too long");
    return -1;
  }
  hb_historydb *h = hb_calloc(1, sizeof *h);
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path, &h->db, flags, NULL) != SQLITE_OK) {
    snprintf(errbuf, errlen, "cannot open '%s': %s", path, h->db ? sqlite3_errmsg(h->db) : "out of memory");
    goto fail;
  }
  chmod(path, 0600); /* message data is the tenants': not for other local users */
  sqlite3_busy_timeout(h->db, HB_STORE_BUSY_TIMEOUT_MS);
  if (exec(h, "PRAGMA journal_mode=WAL") || exec(h, "PRAGMA synchronous=NORMAL")) {
    snprintf(errbuf, errlen, "cannot set up '%s': %s", path, sqlite3_errmsg(h->db));
    goto fail;
  }
  if (migrate(h, errbuf, errlen) != 0) goto fail;
  if (prepare(h, "INSERT INTO channels(chan, epoch, last) VALUES (?1, ?2, ?3) "
                 "ON CONFLICT(chan) DO UPDATE SET epoch = excluded.epoch, last = excluded.last",
              &h->put_channel) ||
      prepare(h, "INSERT OR REPLACE INTO chunks(chan, epoch, first, last, newest_ms, body) "
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
              &h->put_chunk) ||
      prepare(h, "DELETE FROM chunks WHERE chan = ?1 AND (epoch <> ?2 OR last < ?3)", &h->trim) ||
      prepare(h, "DELETE FROM chunks WHERE chan = ?1", &h->del_channel_chunks) ||
      prepare(h, "DELETE FROM channels WHERE chan = ?1", &h->del_channel) ||
      prepare(h, "DELETE FROM chunks WHERE newest_ms < ?1", &h->prune) ||
      prepare(h, "UPDATE meta SET value = ?1 WHERE key = 'clean'", &h->set_clean)) {
    snprintf(errbuf, errlen, "cannot prepare statements on '%s': %s", path, sqlite3_errmsg(h->db));
    goto fail;
  }
  *out = h;
  return 0;
fail:
  hb_historydb_close(h);
  return -1;
}

void hb_historydb_close(hb_historydb *h) {
  if (!h) return;
  sqlite3_finalize(h->put_channel);
  sqlite3_finalize(h->put_chunk);
  sqlite3_finalize(h->trim);
  sqlite3_finalize(h->del_channel_chunks);
  sqlite3_finalize(h->del_channel);
  sqlite3_finalize(h->prune);
  sqlite3_finalize(h->set_clean);
  sqlite3_close_v2(h->db);
  hb_free(h);
}

/* Run a prepared statement to completion and reset it for the next use. */
static int run(hb_historydb *h, sqlite3_stmt *st, const char *what) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc == SQLITE_DONE ? 0 : fail(h, what);
}

int hb_historydb_load(hb_historydb *h, int64_t min_sent_ms, const hb_historydb_visitor *v, void *ud,
                      bool *clean) {
  sqlite3_stmt *st = NULL;
  *clean = false;
  if (sqlite3_prepare_v2(h->db, "SELECT value FROM meta WHERE key = 'clean'", -1, &st, NULL) != SQLITE_OK)
    return fail(h, "read the clean mark");
  if (sqlite3_step(st) == SQLITE_ROW) *clean = sqlite3_column_int64(st, 0) != 0;
  sqlite3_finalize(st);
  if (sqlite3_prepare_v2(h->db, "SELECT chan, epoch, last FROM channels", -1, &st, NULL) != SQLITE_OK)
    return fail(h, "read channels");
  while (sqlite3_step(st) == SQLITE_ROW)
    v->channel(ud, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
               (uint64_t)sqlite3_column_int64(st, 1), (uint64_t)sqlite3_column_int64(st, 2));
  sqlite3_finalize(st);
  if (sqlite3_prepare_v2(h->db,
                         "SELECT chan, epoch, first, last, body FROM chunks WHERE newest_ms >= ?1 "
                         "ORDER BY chan, first",
                         -1, &st, NULL) != SQLITE_OK)
    return fail(h, "read chunks");
  sqlite3_bind_int64(st, 1, min_sent_ms);
  while (sqlite3_step(st) == SQLITE_ROW)
    v->chunk(ud, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
             (uint64_t)sqlite3_column_int64(st, 1), (uint64_t)sqlite3_column_int64(st, 2),
             (uint64_t)sqlite3_column_int64(st, 3), sqlite3_column_blob(st, 4),
             (size_t)sqlite3_column_bytes(st, 4));
  sqlite3_finalize(st);
  return 0;
}

int hb_historydb_begin(hb_historydb *h) { return exec(h, "BEGIN"); }
int hb_historydb_commit(hb_historydb *h) { return exec(h, "COMMIT"); }
void hb_historydb_rollback(hb_historydb *h) { sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL); }

int hb_historydb_put_channel(hb_historydb *h, const void *key, size_t key_len, uint64_t epoch, uint64_t last) {
  sqlite3_bind_blob(h->put_channel, 1, key, (int)key_len, SQLITE_STATIC);
  sqlite3_bind_int64(h->put_channel, 2, (sqlite3_int64)epoch);
  sqlite3_bind_int64(h->put_channel, 3, (sqlite3_int64)last);
  return run(h, h->put_channel, "save a channel");
}

int hb_historydb_put_chunk(hb_historydb *h, const void *key, size_t key_len, uint64_t epoch, uint64_t first,
                           uint64_t last, int64_t newest_ms, const void *body, size_t body_len) {
  sqlite3_bind_blob(h->put_chunk, 1, key, (int)key_len, SQLITE_STATIC);
  sqlite3_bind_int64(h->put_chunk, 2, (sqlite3_int64)epoch);
  sqlite3_bind_int64(h->put_chunk, 3, (sqlite3_int64)first);
  sqlite3_bind_int64(h->put_chunk, 4, (sqlite3_int64)last);
  sqlite3_bind_int64(h->put_chunk, 5, newest_ms);
  sqlite3_bind_blob(h->put_chunk, 6, body, (int)body_len, SQLITE_STATIC);
  return run(h, h->put_chunk, "save messages");
}

int hb_historydb_trim(hb_historydb *h, const void *key, size_t key_len, uint64_t epoch, uint64_t keep_from) {
  sqlite3_bind_blob(h->trim, 1, key, (int)key_len, SQLITE_STATIC);
  sqlite3_bind_int64(h->trim, 2, (sqlite3_int64)epoch);
  sqlite3_bind_int64(h->trim, 3, (sqlite3_int64)keep_from);
  return run(h, h->trim, "trim a channel");
}

int hb_historydb_delete_channel(hb_historydb *h, const void *key, size_t key_len) {
  sqlite3_bind_blob(h->del_channel_chunks, 1, key, (int)key_len, SQLITE_STATIC);
  if (run(h, h->del_channel_chunks, "delete a channel's messages") != 0) return -1;
  sqlite3_bind_blob(h->del_channel, 1, key, (int)key_len, SQLITE_STATIC);
  return run(h, h->del_channel, "delete a channel");
}

int hb_historydb_prune(hb_historydb *h, int64_t min_sent_ms) {
  sqlite3_bind_int64(h->prune, 1, min_sent_ms);
  return run(h, h->prune, "drop expired messages");
}

int hb_historydb_set_clean(hb_historydb *h, bool clean) {
  sqlite3_bind_int64(h->set_clean, 1, clean ? 1 : 0);
  return run(h, h->set_clean, "mark the file");
}
