/*
 * store_fixture.h - a fresh, empty store location per test, for the suites
 * that run against both backends (test_store, test_auth, test_dump).
 *
 * Without HB_PG_URI: a temporary directory (SQLite). With it (ctest's *_pg
 * targets run through test/pg-harness.sh, which exports it): a new schema in
 * that database, named by the URI's search_path, dropped after (a schema
 * costs milliseconds, a database more than a second). Also raw SQL on the
 * location, for what the store's API does not show.
 */
#ifndef HB_TEST_STORE_FIXTURE_H
#define HB_TEST_STORE_FIXTURE_H

#include <ftw.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hubbub/store.h"

typedef struct {
  char loc[1024]; /* what hb_store_open takes */
  char dir[256];  /* a temporary directory (always made; the SQLite data dir) */
  char ns[64];    /* PostgreSQL: the schema's name */
  bool pg;
} hb_test_loc;

static inline const char *hb_test_pg_uri(void) {
  const char *u = getenv("HB_PG_URI");
  return u && *u ? u : NULL;
}

static inline bool hb_test_pg_mode(void) { return hb_test_pg_uri() != NULL; }

/* HB_PG_URI with the schema `ns` first on its search_path. */
static inline void hb_test_pg_uri_for(const char *ns, char *out, size_t outlen) {
  const char *u = hb_test_pg_uri();
  snprintf(out, outlen, "%s%soptions=-csearch_path%%3D%s", u, strchr(u, '?') ? "&" : "?", ns);
}

static inline int hb__test_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

static inline void hb__test_quiet(void *arg, const char *msg) { (void)arg, (void)msg; }

/* Run SQL on the harness's own database (to create and drop test schemas). */
static inline bool hb_test_pg_admin(const char *sql) {
  PGconn *c = PQconnectdb(hb_test_pg_uri());
  bool ok = PQstatus(c) == CONNECTION_OK;
  if (ok) {
    PQsetNoticeProcessor(c, hb__test_quiet, NULL); /* "drop cascades to ..." */
    PGresult *r = PQexec(c, sql);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) fprintf(stderr, "pg admin: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
  } else {
    fprintf(stderr, "pg admin: %s", PQerrorMessage(c));
  }
  PQfinish(c);
  return ok;
}

static inline bool hb_test_loc_make(hb_test_loc *l) {
  static int counter;
  memset(l, 0, sizeof *l);
  snprintf(l->dir, sizeof l->dir, "/tmp/hb_test_loc.XXXXXX");
  if (!mkdtemp(l->dir)) return false;
  if (!hb_test_pg_mode()) {
    snprintf(l->loc, sizeof l->loc, "%s", l->dir);
    return true;
  }
  char sql[128];
  l->pg = true;
  snprintf(l->ns, sizeof l->ns, "hbt_%d_%d", (int)getpid(), ++counter);
  snprintf(sql, sizeof sql, "CREATE SCHEMA %s", l->ns);
  if (!hb_test_pg_admin(sql)) return false;
  hb_test_pg_uri_for(l->ns, l->loc, sizeof l->loc);
  return true;
}

static inline void hb_test_loc_free(hb_test_loc *l) {
  if (l->pg && l->ns[0]) {
    char sql[128];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", l->ns);
    hb_test_pg_admin(sql);
  }
  if (l->dir[0]) nftw(l->dir, hb__test_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* The first column of the first row as an integer (-1 when no row), or
 * execute when `exec_only`. Aborts the test on an SQL error. */
static inline long long hb_test_sql(const hb_test_loc *l, const char *sql, bool exec_only) {
  long long v = -1;
  if (l->pg) {
    PGconn *c = PQconnectdb(l->loc);
    if (PQstatus(c) != CONNECTION_OK) {
      fprintf(stderr, "sql: %s", PQerrorMessage(c));
      abort();
    }
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      fprintf(stderr, "sql: %s: %s", sql, PQerrorMessage(c));
      abort();
    }
    if (!exec_only && st == PGRES_TUPLES_OK && PQntuples(r) > 0) v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return v;
  }
  char path[1100];
  sqlite3 *db;
  snprintf(path, sizeof path, "%s/%s", l->dir, HB_STORE_FILE);
  if (sqlite3_open(path, &db) != SQLITE_OK) abort();
  if (exec_only) {
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
      fprintf(stderr, "sql: %s: %s\n", sql, msg);
      abort();
    }
  } else {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
      fprintf(stderr, "sql: %s: %s\n", sql, sqlite3_errmsg(db));
      abort();
    }
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return v;
}

#define hb_test_sql_int(l, sql) hb_test_sql((l), (sql), false)
#define hb_test_sql_exec(l, sql) ((void)hb_test_sql((l), (sql), true))

#endif
