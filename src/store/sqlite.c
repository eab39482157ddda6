/*
 * sqlite.c - the store's SQLite backend: one file, WAL, numbered migrations
 * recorded in PRAGMA user_version.
 *
 * The file is created 0600 (it holds signing secrets). Two processes (a
 * server and the CLI) may open it at once: SQLite serialises writers, and
 * a write transaction starts IMMEDIATE so that waiting for the lock happens
 * at BEGIN, bounded by HB_STORE_BUSY_TIMEOUT_MS, never half-way.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hubbub/alloc.h"
#include "hubbub/log.h"
#include "store/internal.h"

typedef struct {
  hb_store base;
  sqlite3 *db;
  char path[PATH_MAX];
  /* PRAGMA data_version ignores this connection's own commits, so we count
   * them ourselves; data_version() combines both. */
  int64_t own_commits;
  int64_t wait_seen; /* the version hb_store_wait_change last reported */
  bool wait_started;
  /* The file this handle opened, to notice it vanish (hb_store_check_file). */
  dev_t dev;
  ino_t ino;
  hb_store_file file_state; /* as the last check found it */
} sq_store;

static sq_store *SQ(hb_store *s) { return (sq_store *)s; }

/*
 * Migrations: entry i takes the schema from user_version i to i + 1, and
 * pg.c has the same entries for PostgreSQL. Never edit an entry that has
 * shipped; append a new one (to both files).
 */
static const char *const migrations[] = {
    /* 1: the first schema. */
    "CREATE TABLE organizations ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  name TEXT NOT NULL UNIQUE,"
    "  created_at INTEGER NOT NULL"
    ");"
    "CREATE TABLE plugins ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  signing_secret TEXT NOT NULL,"
    "  allowed_origins TEXT NOT NULL DEFAULT '',"
    "  created_at INTEGER NOT NULL,"
    "  UNIQUE (organization_id, name)"
    ");"
    "CREATE INDEX plugins_by_org ON plugins(organization_id);"
    "CREATE TABLE api_tokens ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,"
    "  plugin_id TEXT NOT NULL REFERENCES plugins(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),"
    "  created_at INTEGER NOT NULL,"
    "  revoked_at INTEGER,"
    "  UNIQUE (plugin_id, name)"
    ");"
    "CREATE INDEX api_tokens_by_org ON api_tokens(organization_id);"
    "CREATE INDEX api_tokens_active ON api_tokens(revoked_at);",

    /* 2: signing-secret rotation (a kid per secret, a previous secret),
     * expiring API tokens, connection-token revocations per user, and the
     * change counter every write bumps. Existing secrets get a random kid. */
    "ALTER TABLE plugins ADD COLUMN signing_kid TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE plugins ADD COLUMN secret_created_at INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE plugins ADD COLUMN previous_secret TEXT;"
    "ALTER TABLE plugins ADD COLUMN previous_kid TEXT;"
    "ALTER TABLE plugins ADD COLUMN previous_retire_at INTEGER;"
    "UPDATE plugins SET signing_kid = lower(hex(randomblob(6))), secret_created_at = created_at;"
    "ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;"
    "CREATE TABLE conn_token_revocations ("
    "  plugin_id TEXT NOT NULL REFERENCES plugins(id) ON DELETE CASCADE,"
    "  user_id TEXT NOT NULL,"
    "  revoked_before INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (plugin_id, user_id)"
    ");"
    "CREATE TABLE hubbub_changes ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  version INTEGER NOT NULL"
    ");"
    "INSERT INTO hubbub_changes (id, version) VALUES (1, 0);",
};
_Static_assert(sizeof migrations / sizeof migrations[0] == HB__STORE_SCHEMA_VERSION,
               "sqlite.c and pg.c must have one migration per schema version");

/* ---- errors ------------------------------------------------------------- */

/* An SQLite result as a store result. BUSY/LOCKED: another writer held the
 * lock past the busy timeout, which is "try again", not a broken database. */
static int result_of(sq_store *q, int rc, const char *what) {
  switch (rc & 0xff) {
  case SQLITE_OK:
  case SQLITE_DONE:
  case SQLITE_ROW:
    return 0;
  case SQLITE_CONSTRAINT:
    return 1;
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    hb_warn("store: %s: the database is locked by another writer (waited %d ms)", what,
            HB_STORE_BUSY_TIMEOUT_MS);
    return HB_STORE_UNAVAILABLE;
  default:
    hb_error_log("store: %s: %s", what, sqlite3_errmsg(q->db));
    return HB_STORE_ERROR;
  }
}

/* Explain an SQLite failure at open the way an operator needs to read it. */
static void explain(int code, const char *path, const char *detail, char *errbuf, size_t errlen) {
  switch (code & 0xff) {
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    hb__store_errf(errbuf, errlen, "database '%s' is locked by another process (waited %d ms)", path,
                   HB_STORE_BUSY_TIMEOUT_MS);
    break;
  case SQLITE_READONLY:
  case SQLITE_PERM:
  case SQLITE_CANTOPEN:
    hb__store_errf(errbuf, errlen, "cannot open database '%s' for writing: %s", path, detail);
    break;
  case SQLITE_NOTADB:
  case SQLITE_CORRUPT:
    hb__store_errf(errbuf, errlen, "'%s' is not a hubbub database or is corrupt: %s", path, detail);
    break;
  default:
    hb__store_errf(errbuf, errlen, "cannot open database '%s': %s", path, detail);
    break;
  }
}

/* ---- statements ---------------------------------------------------------- */

static int prepare_bind(sq_store *q, const char *sql, const hb__val *args, int nargs,
                        sqlite3_stmt **out) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL);
  *out = NULL;
  if (rc != SQLITE_OK) return result_of(q, rc, "prepare");
  for (int i = 0; i < nargs; i++) {
    const hb__val *v = &args[i];
    switch (v->t) {
    case HB__V_NULL: rc = sqlite3_bind_null(st, i + 1); break;
    case HB__V_INT: rc = sqlite3_bind_int64(st, i + 1, v->i); break;
    case HB__V_TEXT: rc = sqlite3_bind_text(st, i + 1, v->p, (int)v->n, SQLITE_TRANSIENT); break;
    case HB__V_BLOB: rc = sqlite3_bind_blob(st, i + 1, v->p, (int)v->n, SQLITE_TRANSIENT); break;
    }
    if (rc != SQLITE_OK) {
      int r = result_of(q, rc, "bind");
      sqlite3_finalize(st);
      return r;
    }
  }
  *out = st;
  return 0;
}

static int sq_exec(hb_store *s, const char *sql, const hb__val *args, int nargs, int64_t *changes) {
  sq_store *q = SQ(s);
  sqlite3_stmt *st;
  int rc = prepare_bind(q, sql, args, nargs, &st);
  if (rc != 0) return rc;
  rc = sqlite3_step(st);
  while (rc == SQLITE_ROW) rc = sqlite3_step(st); /* a RETURNING or a SELECT: drain */
  int r = result_of(q, rc, "write");
  if (r == 0 && changes) *changes = sqlite3_changes64(q->db);
  sqlite3_finalize(st);
  return r;
}

static int sq_query(hb_store *s, const char *sql, const hb__val *args, int nargs, hb__row_fn fn,
                    void *ud) {
  sq_store *q = SQ(s);
  sqlite3_stmt *st;
  int rc = prepare_bind(q, sql, args, nargs, &st);
  if (rc != 0) return rc;
  hb__row row = {s, st, 0};
  int stop = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if ((stop = fn(&row, ud)) != 0) break;
    row.row++;
  }
  int r = stop ? stop : result_of(q, rc, "query");
  sqlite3_finalize(st);
  return r;
}

static bool sq_col_null(const hb__row *r, int col) {
  return sqlite3_column_type(r->cur, col) == SQLITE_NULL;
}
static int64_t sq_col_int(const hb__row *r, int col) { return sqlite3_column_int64(r->cur, col); }
static const char *sq_col_text(const hb__row *r, int col) {
  const char *t = (const char *)sqlite3_column_text(r->cur, col);
  return t ? t : "";
}
static size_t sq_col_blob(const hb__row *r, int col, uint8_t *out, size_t cap) {
  const void *p = sqlite3_column_blob(r->cur, col);
  size_t n = (size_t)sqlite3_column_bytes(r->cur, col);
  if (p) memcpy(out, p, n < cap ? n : cap);
  return p ? n : 0;
}

static int simple(sq_store *q, const char *sql, const char *what) {
  return result_of(q, sqlite3_exec(q->db, sql, NULL, NULL, NULL), what);
}

static int sq_begin(hb_store *s) { return simple(SQ(s), "BEGIN IMMEDIATE", "begin"); }
static int sq_begin_read(hb_store *s) { return simple(SQ(s), "BEGIN DEFERRED", "begin"); }
static int sq_commit(hb_store *s) {
  int rc = simple(SQ(s), "COMMIT", "commit");
  if (rc == 0 && s->tx == 2) SQ(s)->own_commits++;
  return rc;
}
static void sq_rollback(hb_store *s) { sqlite3_exec(SQ(s)->db, "ROLLBACK", NULL, NULL, NULL); }

static int sq_bump(hb_store *s) {
  return sq_exec(s, "UPDATE hubbub_changes SET version = version + 1 WHERE id = 1", NULL, 0, NULL);
}

static int int_pragma(sq_store *q, const char *sql, int64_t *out) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL);
  if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    *out = sqlite3_column_int64(st, 0);
    rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  return rc;
}

static int sq_data_version(hb_store *s, int64_t *out) {
  sq_store *q = SQ(s);
  int64_t dv = 0;
  int rc = int_pragma(q, "PRAGMA data_version", &dv);
  if (rc != SQLITE_OK) return result_of(q, rc, "data_version");
  /* data_version moves on other connections' commits, own_commits on ours;
   * keeping them in separate halves makes any change visible. */
  *out = (int64_t)((uint64_t)dv << 32) + (q->own_commits & 0xffffffff);
  return 0;
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int sq_wait_change(hb_store *s, int timeout_ms) {
  sq_store *q = SQ(s);
  int64_t v = 0, deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
  int rc;
  if (!q->wait_started) {
    if ((rc = sq_data_version(s, &q->wait_seen)) != 0) return rc;
    q->wait_started = true;
  }
  for (;;) {
    if ((rc = sq_data_version(s, &v)) != 0) return rc;
    if (v != q->wait_seen) {
      q->wait_seen = v;
      return 1;
    }
    int64_t left = deadline - mono_ms();
    if (left <= 0) return 0;
    struct timespec ts = {0, (long)(left < HB_STORE_LOCAL_POLL_MS ? left : HB_STORE_LOCAL_POLL_MS) * 1000000L};
    nanosleep(&ts, NULL);
  }
}

static int sq_schema_version(hb_store *s, int *out) {
  int64_t v = 0;
  int rc = int_pragma(SQ(s), "PRAGMA user_version", &v);
  if (rc != SQLITE_OK) return result_of(SQ(s), rc, "user_version");
  *out = (int)v;
  return 0;
}

static void sq_close(hb_store *s) {
  if (!s) return;
  sqlite3_close_v2(SQ(s)->db);
  hb_free(s);
}

static hb_store_file sq_check_file(hb_store *s) {
  sq_store *q = SQ(s);
  struct stat st;
  hb_store_file now = HB_STORE_FILE_OK;
  int err = 0;
  if (stat(q->path, &st) != 0) {
    err = errno;
    now = HB_STORE_FILE_MISSING;
  } else if (st.st_dev != q->dev || st.st_ino != q->ino) {
    now = HB_STORE_FILE_REPLACED;
  }
  if (now == q->file_state) return now;
  q->file_state = now;
  if (now == HB_STORE_FILE_MISSING)
    hb_error_log("store: %s is gone (%s) while the server uses it: serving with the credentials loaded "
                 "last, and changes made with the CLI no longer reach this server; put the file back "
                 "(or restore a backup) and restart",
                 q->path, strerror(err));
  else if (now == HB_STORE_FILE_REPLACED)
    hb_error_log("store: %s is now another file than the one this server opened (replaced or "
                 "restored): serving with the credentials loaded last; restart to use the new file",
                 q->path);
  else
    hb_info("store: %s is back: it is the file this server opened", q->path);
  return now;
}

/* Is there a -wal or -shm file for the database at `path`? */
static bool wal_left_behind(const char *path) {
  char side[PATH_MAX];
  static const char *const suffixes[] = {"-wal", "-shm"};
  for (size_t i = 0; i < 2; i++) {
    if (snprintf(side, sizeof side, "%s%s", path, suffixes[i]) >= (int)sizeof side) continue;
    if (access(side, F_OK) == 0) return true;
  }
  return false;
}

static const hb__store_ops sqlite_ops = {
    .name = "sqlite",
    .local = true,
    .close = sq_close,
    .exec = sq_exec,
    .query = sq_query,
    .col_null = sq_col_null,
    .col_int = sq_col_int,
    .col_text = sq_col_text,
    .col_blob = sq_col_blob,
    .begin = sq_begin,
    .begin_read = sq_begin_read,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .bump = sq_bump,
    .data_version = sq_data_version,
    .wait_change = sq_wait_change,
    .schema_version = sq_schema_version,
    .check_file = sq_check_file,
};

/* ---- open and migrate ---------------------------------------------------- */

static int exec_open(sq_store *q, const char *sql, char *errbuf, size_t errlen) {
  char *msg = NULL;
  int rc = sqlite3_exec(q->db, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK) {
    explain(sqlite3_extended_errcode(q->db), q->path, msg ? msg : sqlite3_errstr(rc), errbuf, errlen);
    sqlite3_free(msg);
    return -1;
  }
  return 0;
}

/* PRAGMA quick_check: a corrupt file must stop the server at start, not
 * surface as a wrong answer later. Cheap on a database this size. */
static int quick_check(sq_store *q, char *errbuf, size_t errlen) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(q->db, "PRAGMA quick_check", -1, &st, NULL);
  if (rc != SQLITE_OK) {
    explain(sqlite3_extended_errcode(q->db), q->path, sqlite3_errmsg(q->db), errbuf, errlen);
    return -1;
  }
  int ret = 0;
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    const char *t = (const char *)sqlite3_column_text(st, 0);
    if (!t || strcmp(t, "ok") != 0) {
      /* The first row may start with a "*** in database main ***"
       * heading line; what is wrong comes after it. */
      char first[256];
      const char *nl = t ? strchr(t, '\n') : NULL;
      snprintf(first, sizeof first, "%s",
               !t ? "quick_check failed" : (strncmp(t, "***", 3) == 0 && nl) ? nl + 1 : t);
      first[strcspn(first, "\n")] = '\0';
      hb__store_errf(errbuf, errlen, "database '%s' is corrupt: %s", q->path, first);
      ret = -1;
    }
  } else {
    explain(sqlite3_extended_errcode(q->db), q->path, sqlite3_errmsg(q->db), errbuf, errlen);
    ret = -1;
  }
  sqlite3_finalize(st);
  return ret;
}

static int migrate(sq_store *q, char *errbuf, size_t errlen) {
  int version = 0;
  if (sq_schema_version(&q->base, &version) != 0) {
    explain(sqlite3_extended_errcode(q->db), q->path, sqlite3_errmsg(q->db), errbuf, errlen);
    return -1;
  }
  if (version > HB__STORE_SCHEMA_VERSION) goto too_new;
  if (version == HB__STORE_SCHEMA_VERSION) return 0;

  /* IMMEDIATE takes the write lock now, so two processes opening a fresh
   * directory at once serialise here and the second sees the new version. */
  if (exec_open(q, "BEGIN IMMEDIATE", errbuf, errlen) != 0) return -1;
  if (sq_schema_version(&q->base, &version) != 0) {
    explain(sqlite3_extended_errcode(q->db), q->path, sqlite3_errmsg(q->db), errbuf, errlen);
    goto rollback;
  }
  if (version > HB__STORE_SCHEMA_VERSION) {
    sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
    goto too_new;
  }
  for (int v = version; v < HB__STORE_SCHEMA_VERSION; v++) {
    char set[64];
    if (exec_open(q, migrations[v], errbuf, errlen) != 0) goto rollback;
    snprintf(set, sizeof set, "PRAGMA user_version = %d", v + 1);
    if (exec_open(q, set, errbuf, errlen) != 0) goto rollback;
    hb_info("store: migrated %s to schema version %d", q->path, v + 1);
  }
  if (exec_open(q, "COMMIT", errbuf, errlen) != 0) goto rollback;
  q->own_commits++;
  return 0;

rollback:
  sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
  return -1;
too_new:
  hb__store_too_new(errbuf, errlen, version);
  return -1;
}

int hb__sqlite_open(hb_store **out, const char *path, const hb_store_options *o, char *errbuf,
                    size_t errlen) {
  (void)o;
  char dir[PATH_MAX];
  sq_store *q = NULL;
  bool existed;
  *out = NULL;

  size_t plen = strlen(path);
  if (plen == 0 || plen >= sizeof q->path) {
    hb__store_errf(errbuf, errlen, "database path is empty or too long");
    return -1;
  }
  /* The directory holding the file: SQLite creates the -wal and -shm
   * files next to it. */
  const char *slash = strrchr(path, '/');
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == path) snprintf(dir, sizeof dir, "/");
  else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    hb__store_errf(errbuf, errlen, "the directory '%s' of database '%s' does not exist", dir, path);
    return -1;
  }
  /* SQLite opens a read-only file read-only without complaint and only
   * fails at the first write; say it plainly up front instead. */
  existed = access(path, F_OK) == 0;
  if (access(dir, W_OK | X_OK) != 0) {
    hb__store_errf(errbuf, errlen, "data directory '%s' is not writable: %s", dir, strerror(errno));
    return -1;
  }
  if (existed && access(path, R_OK | W_OK) != 0) {
    hb__store_errf(errbuf, errlen, "database '%s' is not readable and writable: %s", path,
                   strerror(errno));
    return -1;
  }
  if (!existed && wal_left_behind(path)) {
    /* SQLite never removes the database and keeps its WAL: a WAL without
     * its database means the database was deleted, perhaps under a server
     * that still uses it. A new database next to that WAL fails with
     * "disk I/O error"; say what happened instead. */
    hb__store_errf(errbuf, errlen,
                   "'%s' is missing but its -wal or -shm file is still there: the database was deleted (a "
                   "server may still be using it); restore it from a backup, or stop every server using it "
                   "and remove %s-wal and %s-shm to start empty",
                   path, path, path);
    return -1;
  }
  if (!existed) {
    /* Create it 0600 ourselves: SQLite would use 0644, and the file holds
     * signing secrets. */
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) {
      hb__store_errf(errbuf, errlen, "cannot create database '%s': %s", path, strerror(errno));
      return -1;
    }
    if (fd >= 0) close(fd);
  }

  q = hb_calloc(1, sizeof *q);
  q->base.ops = &sqlite_ops;
  memcpy(q->path, path, plen + 1);
  int rc = sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) {
    explain(rc, path, q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc), errbuf, errlen);
    goto fail;
  }
  sqlite3_extended_result_codes(q->db, 1);
  sqlite3_busy_timeout(q->db, HB_STORE_BUSY_TIMEOUT_MS);

  /* Reading the header first turns "not a database" into a clear error
   * before WAL mode tries to write anything. */
  if (quick_check(q, errbuf, errlen) != 0) goto fail;
  if (exec_open(q, "PRAGMA journal_mode = WAL", errbuf, errlen) != 0) goto fail;
  if (exec_open(q, "PRAGMA foreign_keys = ON", errbuf, errlen) != 0) goto fail;
  /* NORMAL is durable in WAL mode except for the last commits on power
   * loss, which for an admin database is the right trade. */
  if (exec_open(q, "PRAGMA synchronous = NORMAL", errbuf, errlen) != 0) goto fail;
  if (migrate(q, errbuf, errlen) != 0) goto fail;
  /* Which file SQLite holds open: if the path stops naming it, the server
   * keeps using an orphan that nothing else sees (hb_store_check_file). */
  if (stat(path, &st) == 0) {
    q->dev = st.st_dev;
    q->ino = st.st_ino;
  }
  q->file_state = HB_STORE_FILE_OK;
  *out = &q->base;
  return 0;

fail:
  if (q->db) sqlite3_close_v2(q->db);
  hb_free(q);
  return -1;
}
