/*
 * store.c - organizations, plugins and API-token hashes in SQLite.
 *
 * The only file of hubbub that speaks SQL. Every statement that carries data
 * is prepared with bound parameters; the only SQL built with printf is the
 * PRAGMA user_version of a migration, whose value is an integer we own.
 *
 * Ids are UUID v4 stored as canonical lowercase TEXT, times are Unix seconds.
 * API tokens are stored only as their SHA-256; plugin signing secrets are
 * stored as they are (they must be: the server signs and verifies with them),
 * which is why the file is created 0600 in a 0700 directory.
 */
#include "hubbub/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hubbub/alloc.h"
#include "hubbub/b64url.h"
#include "hubbub/log.h"
#include "hubbub/strbuf.h"

struct hb_store {
  sqlite3 *db;
  /* PRAGMA data_version ignores this connection's own commits, so we count
   * them ourselves; hb_store_data_version() combines both. */
  int64_t own_commits;
  /* The file this handle opened, to notice it vanish (hb_store_check_file). */
  char *path;
  dev_t dev;
  ino_t ino;
  hb_store_file file_state; /* as the last check found it */
};

/*
 * Migrations: entry i takes the schema from user_version i to i + 1. Never
 * edit an entry that has shipped; append a new one.
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
};
#define MIGRATION_COUNT ((int)(sizeof migrations / sizeof migrations[0]))

/* ---- small helpers ------------------------------------------------------ */

static int64_t now_s(void) { return (int64_t)time(NULL); }

static void errf(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void errf(char *errbuf, size_t errlen, const char *fmt, ...) {
  if (!errbuf || !errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, errlen, fmt, ap);
  va_end(ap);
}

/* prefix + base64url(nbytes random bytes from the OpenSSL CSPRNG). */
static int random_secret(const char *prefix, size_t nbytes, char *out, size_t outlen) {
  uint8_t raw[64];
  if (nbytes > sizeof raw) return -1;
  if (RAND_bytes(raw, (int)nbytes) != 1) return -1;
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_strbuf_addstr(&sb, prefix);
  hb_b64url_encode(&sb, raw, nbytes);
  OPENSSL_cleanse(raw, sizeof raw);
  int rc = sb.len < outlen ? 0 : -1;
  if (rc == 0) memcpy(out, sb.buf, sb.len + 1);
  OPENSSL_cleanse(sb.buf, sb.cap);
  hb_strbuf_free(&sb);
  return rc;
}

const char *hb_store_name_problem(const char *name) {
  size_t n = name ? strlen(name) : 0;
  hb_uuid tmp;
  if (n == 0 || n > HB_MAX_NAME_BYTES) return "must be 1 to " HB_STR(HB_MAX_NAME_BYTES) " bytes";
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) return "must not contain control characters";
  /* Lookups take "a name or a UUID": a name that is a UUID would be ambiguous. */
  if (hb_uuid_parse(name, n, &tmp)) return "must not be a UUID";
  return NULL;
}

static bool valid_name(const char *name) { return hb_store_name_problem(name) == NULL; }

static void db_fail(hb_store *s, const char *what) {
  hb_error_log("store: %s: %s", what, sqlite3_errmsg(s->db));
}

static int prepare(hb_store *s, const char *sql, sqlite3_stmt **st) {
  if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK) {
    db_fail(s, "prepare");
    *st = NULL;
    return -1;
  }
  return 0;
}

static void bind_uuid(sqlite3_stmt *st, int idx, const hb_uuid *u) {
  char buf[HB_UUID_STR_BYTES];
  hb_uuid_format(u, buf);
  sqlite3_bind_text(st, idx, buf, -1, SQLITE_TRANSIENT);
}

static void col_uuid(sqlite3_stmt *st, int col, hb_uuid *out) {
  const char *t = (const char *)sqlite3_column_text(st, col);
  if (!t || !hb_uuid_parse(t, strlen(t), out)) memset(out, 0, sizeof *out);
}

static void col_str(sqlite3_stmt *st, int col, char *out, size_t outlen) {
  const char *t = (const char *)sqlite3_column_text(st, col);
  snprintf(out, outlen, "%s", t ? t : "");
}

/* ---- open and migrate --------------------------------------------------- */

/* mkdir -p with 0700: the directory holds signing secrets. */
static int make_dirs(const char *dir, char *errbuf, size_t errlen) {
  char path[PATH_MAX];
  size_t n = strlen(dir);
  if (n == 0 || n >= sizeof path) {
    errf(errbuf, errlen, "data directory path is empty or too long");
    return -1;
  }
  memcpy(path, dir, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (path[i] != '/' && path[i] != '\0') continue;
    char saved = path[i];
    path[i] = '\0';
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
      errf(errbuf, errlen, "cannot create data directory '%s': %s", path, strerror(errno));
      return -1;
    }
    path[i] = saved;
  }
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    errf(errbuf, errlen, "data directory '%s' is not a directory", dir);
    return -1;
  }
  return 0;
}

static int get_user_version(hb_store *s, int *out) {
  sqlite3_stmt *st = NULL;
  int rc = -1;
  if (prepare(s, "PRAGMA user_version", &st) != 0) return -1;
  if (sqlite3_step(st) == SQLITE_ROW) {
    *out = sqlite3_column_int(st, 0);
    rc = 0;
  }
  sqlite3_finalize(st);
  return rc;
}

/* Explain an SQLite failure at open the way an operator needs to read it. */
static void explain(int code, const char *path, const char *detail, char *errbuf, size_t errlen) {
  switch (code & 0xff) {
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    errf(errbuf, errlen, "database '%s' is locked by another process (waited %d ms)", path,
         HB_STORE_BUSY_TIMEOUT_MS);
    break;
  case SQLITE_READONLY:
  case SQLITE_PERM:
  case SQLITE_CANTOPEN:
    errf(errbuf, errlen, "cannot open database '%s' for writing: %s", path, detail);
    break;
  case SQLITE_NOTADB:
  case SQLITE_CORRUPT:
    errf(errbuf, errlen, "'%s' is not a hubbub database or is corrupt: %s", path, detail);
    break;
  default:
    errf(errbuf, errlen, "cannot open database '%s': %s", path, detail);
    break;
  }
}

static int exec_simple(hb_store *s, const char *sql, const char *path, char *errbuf, size_t errlen) {
  char *msg = NULL;
  int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK) {
    explain(sqlite3_extended_errcode(s->db), path, msg ? msg : sqlite3_errstr(rc), errbuf, errlen);
    sqlite3_free(msg);
    return -1;
  }
  return 0;
}

/* PRAGMA quick_check: a corrupt file must stop the server at start, not
 * surface as a wrong answer later. Cheap on a database this size. */
static int quick_check(hb_store *s, const char *path, char *errbuf, size_t errlen) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check", -1, &st, NULL);
  if (rc != SQLITE_OK) {
    explain(sqlite3_extended_errcode(s->db), path, sqlite3_errmsg(s->db), errbuf, errlen);
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
      snprintf(first, sizeof first, "%s", !t ? "quick_check failed" : (strncmp(t, "***", 3) == 0 && nl) ? nl + 1 : t);
      first[strcspn(first, "\n")] = '\0';
      errf(errbuf, errlen, "database '%s' is corrupt: %s", path, first);
      ret = -1;
    }
  } else {
    explain(sqlite3_extended_errcode(s->db), path, sqlite3_errmsg(s->db), errbuf, errlen);
    ret = -1;
  }
  sqlite3_finalize(st);
  return ret;
}

static int migrate(hb_store *s, const char *path, char *errbuf, size_t errlen) {
  int version = 0;
  if (get_user_version(s, &version) != 0) {
    explain(sqlite3_extended_errcode(s->db), path, sqlite3_errmsg(s->db), errbuf, errlen);
    return -1;
  }
  if (version > MIGRATION_COUNT) goto too_new;
  if (version == MIGRATION_COUNT) return 0;

  /* IMMEDIATE takes the write lock now, so two processes opening a fresh
   * directory at once serialise here and the second sees the new version. */
  if (exec_simple(s, "BEGIN IMMEDIATE", path, errbuf, errlen) != 0) return -1;
  if (get_user_version(s, &version) != 0) {
    explain(sqlite3_extended_errcode(s->db), path, sqlite3_errmsg(s->db), errbuf, errlen);
    goto rollback;
  }
  if (version > MIGRATION_COUNT) {
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    goto too_new;
  }
  for (int v = version; v < MIGRATION_COUNT; v++) {
    char set[64];
    if (exec_simple(s, migrations[v], path, errbuf, errlen) != 0) goto rollback;
    snprintf(set, sizeof set, "PRAGMA user_version = %d", v + 1);
    if (exec_simple(s, set, path, errbuf, errlen) != 0) goto rollback;
    hb_info("store: migrated %s to schema version %d", path, v + 1);
  }
  if (exec_simple(s, "COMMIT", path, errbuf, errlen) != 0) goto rollback;
  s->own_commits++;
  return 0;

rollback:
  sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  return -1;
too_new:
  errf(errbuf, errlen,
       "database '%s' has schema version %d, newer than this hubbub knows (%d): upgrade hubbub",
       path, version, MIGRATION_COUNT);
  return -1;
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

/* Open the store in `dir`; with `create`, make the directory and the file
 * when missing, else refuse (HB_STORE_NONE) without creating anything. */
static int store_open(hb_store **out, const char *dir, bool create, char *errbuf, size_t errlen) {
  char path[PATH_MAX];
  hb_store *s = NULL;
  bool existed;
  int ret = -1;
  struct stat fst;
  *out = NULL;
  if (errbuf && errlen) errbuf[0] = '\0';

  if (!dir || (create && make_dirs(dir, errbuf, errlen) != 0)) goto fail;
  if (snprintf(path, sizeof path, "%s/%s", dir, HB_STORE_FILE) >= (int)sizeof path) {
    errf(errbuf, errlen, "data directory path is too long");
    goto fail;
  }
  if (!create && stat(path, &fst) != 0 && (errno == ENOENT || errno == ENOTDIR)) {
    errf(errbuf, errlen, "there is no store in '%s' (no %s)", dir, HB_STORE_FILE);
    ret = HB_STORE_NONE;
    goto fail;
  }
  /* SQLite opens a read-only file read-only without complaint and only
   * fails at the first write; say it plainly up front instead. WAL also
   * needs to create files next to the database. */
  existed = access(path, F_OK) == 0;
  if (access(dir, W_OK | X_OK) != 0) {
    errf(errbuf, errlen, "data directory '%s' is not writable: %s", dir, strerror(errno));
    goto fail;
  }
  if (existed && access(path, R_OK | W_OK) != 0) {
    errf(errbuf, errlen, "database '%s' is not readable and writable: %s", path, strerror(errno));
    goto fail;
  }
  if (!existed && wal_left_behind(path)) {
    /* SQLite never removes the database and keeps its WAL: a WAL without
     * its database means the database was deleted, perhaps under a server
     * that still uses it. A new database next to that WAL fails with
     * "disk I/O error"; say what happened instead. */
    errf(errbuf, errlen,
         "'%s' is missing but its -wal or -shm file is still there: the database was deleted (a "
         "server may still be using it); restore it from a backup, or stop every server using it "
         "and remove %s-wal and %s-shm to start empty",
         path, path, path);
    goto fail;
  }
  if (!existed) {
    /* Create it 0600 ourselves: SQLite would use 0644, and the file holds
     * signing secrets. */
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) {
      errf(errbuf, errlen, "cannot create database '%s': %s", path, strerror(errno));
      goto fail;
    }
    if (fd >= 0) close(fd);
  }

  s = hb_calloc(1, sizeof *s);
  int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) {
    explain(rc, path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc), errbuf, errlen);
    goto fail;
  }
  sqlite3_extended_result_codes(s->db, 1);
  sqlite3_busy_timeout(s->db, HB_STORE_BUSY_TIMEOUT_MS);

  /* Reading the header first turns "not a database" into a clear error
   * before WAL mode tries to write anything. */
  if (quick_check(s, path, errbuf, errlen) != 0) goto fail;
  if (exec_simple(s, "PRAGMA journal_mode = WAL", path, errbuf, errlen) != 0) goto fail;
  if (exec_simple(s, "PRAGMA foreign_keys = ON", path, errbuf, errlen) != 0) goto fail;
  /* NORMAL is durable in WAL mode except for the last commits on power
   * loss, which for an admin database is the right trade. */
  if (exec_simple(s, "PRAGMA synchronous = NORMAL", path, errbuf, errlen) != 0) goto fail;
  if (migrate(s, path, errbuf, errlen) != 0) goto fail;
  /* Which file SQLite holds open: if the path stops naming it, the server
   * keeps using an orphan that nothing else sees (hb_store_check_file). */
  if (stat(path, &fst) == 0) {
    s->dev = fst.st_dev;
    s->ino = fst.st_ino;
  }
  s->path = hb_strndup(path, strlen(path));
  s->file_state = HB_STORE_FILE_OK;

  *out = s;
  return 0;

fail:
  if (s) {
    if (s->db) sqlite3_close_v2(s->db);
    hb_free(s);
  }
  if (errbuf && errlen && !errbuf[0]) errf(errbuf, errlen, "cannot open the store");
  return ret;
}

int hb_store_open(hb_store **out, const char *dir, char *errbuf, size_t errlen) {
  return store_open(out, dir, true, errbuf, errlen);
}

int hb_store_open_existing(hb_store **out, const char *dir, char *errbuf, size_t errlen) {
  return store_open(out, dir, false, errbuf, errlen);
}

hb_store_file hb_store_check_file(hb_store *s) {
  struct stat st;
  hb_store_file now = HB_STORE_FILE_OK;
  int err = 0;
  if (stat(s->path, &st) != 0) {
    err = errno;
    now = HB_STORE_FILE_MISSING;
  } else if (st.st_dev != s->dev || st.st_ino != s->ino) {
    now = HB_STORE_FILE_REPLACED;
  }
  if (now == s->file_state) return now;
  s->file_state = now;
  if (now == HB_STORE_FILE_MISSING)
    hb_error_log("store: %s is gone (%s) while the server uses it: serving with the credentials loaded "
                 "last, and changes made with the CLI no longer reach this server; put the file back "
                 "(or restore a backup) and restart",
                 s->path, strerror(err));
  else if (now == HB_STORE_FILE_REPLACED)
    hb_error_log("store: %s is now another file than the one this server opened (replaced or "
                 "restored): serving with the credentials loaded last; restart to use the new file",
                 s->path);
  else
    hb_info("store: %s is back: it is the file this server opened", s->path);
  return now;
}

void hb_store_close(hb_store *s) {
  if (!s) return;
  sqlite3_close_v2(s->db);
  hb_free(s->path);
  hb_free(s);
}

/* One handle per thread that asks (an SQLite connection must not be shared
 * by threads that use it at the same time). */
static _Thread_local hb_store *thread_store;
static _Thread_local bool thread_store_warned; /* one warning until it opens */

hb_store *hb_store_thread(const char *dir) {
  if (!thread_store) {
    char err[256];
    /* Never create one: under a running server a missing file means it was
     * deleted, and an empty store would silently refuse every credential. */
    if (hb_store_open_existing(&thread_store, dir, err, sizeof err) != 0) {
      /* Asked again on every unknown credential: say it once, not per request. */
      if (!thread_store_warned) hb_warn("cannot open the store for this thread: %s", err);
      thread_store_warned = true;
      thread_store = NULL;
    } else {
      thread_store_warned = false;
    }
  }
  return thread_store;
}

void hb_store_thread_close(void) {
  hb_store_close(thread_store);
  thread_store = NULL;
}

/* Run a fully bound write statement to completion. 0 ok, 1 constraint, -1 error. */
static int step_write(hb_store *s, sqlite3_stmt *st, const char *what) {
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) {
    s->own_commits++;
    return 0;
  }
  if ((rc & 0xff) == SQLITE_CONSTRAINT) return 1;
  db_fail(s, what);
  return -1;
}

/* ---- organizations ------------------------------------------------------ */

static void read_org(sqlite3_stmt *st, hb_org_row *r) {
  memset(r, 0, sizeof *r);
  col_uuid(st, 0, &r->id);
  col_str(st, 1, r->name, sizeof r->name);
  r->created_at = sqlite3_column_int64(st, 2);
}

int hb_store_org_create(hb_store *s, const char *name, hb_org_row *out) {
  sqlite3_stmt *st = NULL;
  hb_org_row row;
  int rc = -1;
  if (!valid_name(name)) {
    hb_warn("store: organization name must be 1..%d bytes", HB_MAX_NAME_BYTES);
    return -1;
  }
  memset(&row, 0, sizeof row);
  hb_uuid_v4(&row.id);
  snprintf(row.name, sizeof row.name, "%s", name);
  row.created_at = now_s();
  if (prepare(s, "INSERT INTO organizations (id, name, created_at) VALUES (?1, ?2, ?3)", &st) != 0)
    return -1;
  bind_uuid(st, 1, &row.id);
  sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 3, row.created_at);
  rc = step_write(s, st, "create organization");
  sqlite3_finalize(st);
  if (rc == 0 && out) *out = row;
  return rc;
}

/* Find by id when `key` is a UUID, else (or when no such id) by name. */
static int find_one(hb_store *s, const char *sql_by_id, const char *sql_by_name,
                    const hb_uuid *scope_id, const char *key,
                    void (*read)(sqlite3_stmt *, void *), void *out) {
  hb_uuid id;
  bool is_id = key && hb_uuid_parse(key, strlen(key), &id);
  if (!key) return 1;
  for (int pass = is_id ? 0 : 1; pass < 2; pass++) {
    sqlite3_stmt *st = NULL;
    if (pass == 1 && !sql_by_name) break;
    if (prepare(s, pass == 0 ? sql_by_id : sql_by_name, &st) != 0) return -1;
    if (pass == 0) bind_uuid(st, 1, &id);
    else sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    if (scope_id) bind_uuid(st, 2, scope_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      read(st, out);
      sqlite3_finalize(st);
      return 0;
    }
    if (rc != SQLITE_DONE) {
      db_fail(s, "find");
      sqlite3_finalize(st);
      return -1;
    }
    sqlite3_finalize(st);
  }
  return 1;
}

static void read_org_v(sqlite3_stmt *st, void *out) { read_org(st, out); }

int hb_store_org_find(hb_store *s, const char *name_or_id, hb_org_row *out) {
  hb_org_row tmp;
  return find_one(s, "SELECT id, name, created_at FROM organizations WHERE id = ?1",
                  "SELECT id, name, created_at FROM organizations WHERE name = ?1", NULL,
                  name_or_id, read_org_v, out ? out : &tmp);
}

int hb_store_org_list(hb_store *s, void (*cb)(const hb_org_row *, void *), void *ud) {
  sqlite3_stmt *st = NULL;
  int rc;
  if (prepare(s, "SELECT id, name, created_at FROM organizations ORDER BY created_at, rowid", &st) != 0)
    return -1;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    hb_org_row r;
    read_org(st, &r);
    cb(&r, ud);
  }
  if (rc != SQLITE_DONE) db_fail(s, "list organizations");
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- plugins ------------------------------------------------------------ */

#define PLUGIN_COLS "id, organization_id, name, signing_secret, allowed_origins, created_at"

static void read_plugin(sqlite3_stmt *st, void *out) {
  hb_plugin_row *r = out;
  memset(r, 0, sizeof *r);
  col_uuid(st, 0, &r->id);
  col_uuid(st, 1, &r->org_id);
  col_str(st, 2, r->name, sizeof r->name);
  col_str(st, 3, r->signing_secret, sizeof r->signing_secret);
  col_str(st, 4, r->allowed_origins, sizeof r->allowed_origins);
  r->created_at = sqlite3_column_int64(st, 5);
}

int hb_store_plugin_create(hb_store *s, const hb_uuid *org, const char *name, hb_plugin_row *out) {
  sqlite3_stmt *st = NULL;
  hb_plugin_row row;
  int rc = -1;
  if (!valid_name(name)) {
    hb_warn("store: plugin name must be 1..%d bytes", HB_MAX_NAME_BYTES);
    return -1;
  }
  memset(&row, 0, sizeof row);
  hb_uuid_v4(&row.id);
  row.org_id = *org;
  snprintf(row.name, sizeof row.name, "%s", name);
  row.created_at = now_s();
  if (random_secret("hbs_", HB_SIGNING_SECRET_RANDOM_BYTES, row.signing_secret,
                    sizeof row.signing_secret) != 0) {
    hb_error_log("store: no randomness for a signing secret");
    return -1;
  }
  if (prepare(s,
              "INSERT INTO plugins (id, organization_id, name, signing_secret, allowed_origins, created_at)"
              " VALUES (?1, ?2, ?3, ?4, '', ?5)",
              &st) != 0)
    goto out;
  bind_uuid(st, 1, &row.id);
  bind_uuid(st, 2, org);
  sqlite3_bind_text(st, 3, name, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 4, row.signing_secret, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 5, row.created_at);
  rc = step_write(s, st, "create plugin");
  if (rc == 0 && out) *out = row;
out:
  sqlite3_finalize(st);
  OPENSSL_cleanse(row.signing_secret, sizeof row.signing_secret);
  return rc;
}

int hb_store_plugin_set_origins(hb_store *s, const hb_uuid *plugin, const char *origins) {
  sqlite3_stmt *st = NULL;
  int rc;
  if (!origins) origins = "";
  if (strlen(origins) >= sizeof(((hb_plugin_row *)0)->allowed_origins)) {
    hb_warn("store: allowed origins list is too long");
    return -1;
  }
  if (prepare(s, "UPDATE plugins SET allowed_origins = ?1 WHERE id = ?2", &st) != 0) return -1;
  sqlite3_bind_text(st, 1, origins, -1, SQLITE_TRANSIENT);
  bind_uuid(st, 2, plugin);
  rc = step_write(s, st, "set plugin origins");
  if (rc == 0 && sqlite3_changes(s->db) == 0) rc = 1;
  sqlite3_finalize(st);
  return rc;
}

int hb_store_plugin_find(hb_store *s, const hb_uuid *org, const char *name_or_id, hb_plugin_row *out) {
  hb_plugin_row tmp;
  /* Names are only unique inside an organization, so without one only an
   * id can name a plugin. */
  if (org)
    return find_one(s, "SELECT " PLUGIN_COLS " FROM plugins WHERE id = ?1 AND organization_id = ?2",
                    "SELECT " PLUGIN_COLS " FROM plugins WHERE name = ?1 AND organization_id = ?2", org,
                    name_or_id, read_plugin, out ? out : &tmp);
  return find_one(s, "SELECT " PLUGIN_COLS " FROM plugins WHERE id = ?1", NULL, NULL, name_or_id,
                  read_plugin, out ? out : &tmp);
}

int hb_store_plugin_list(hb_store *s, const hb_uuid *org, void (*cb)(const hb_plugin_row *, void *),
                         void *ud) {
  sqlite3_stmt *st = NULL;
  int rc;
  if (prepare(s,
              org ? "SELECT " PLUGIN_COLS " FROM plugins WHERE organization_id = ?1 ORDER BY created_at, rowid"
                  : "SELECT " PLUGIN_COLS " FROM plugins ORDER BY created_at, rowid",
              &st) != 0)
    return -1;
  if (org) bind_uuid(st, 1, org);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    hb_plugin_row r;
    read_plugin(st, &r);
    cb(&r, ud);
    OPENSSL_cleanse(r.signing_secret, sizeof r.signing_secret);
  }
  if (rc != SQLITE_DONE) db_fail(s, "list plugins");
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- API tokens --------------------------------------------------------- */

/* SHA-256 fetched from the provider once. EVP_sha256() makes EVP_Digest
 * fetch the implementation on every call (OpenSSL 3: a locked lookup, ~40 %
 * of the digest's cost for a token), and every HTTP publish hashes its token. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void) { sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL); }

void hb_store_hash_token(const char *tok, size_t len, uint8_t out[HB_TOKEN_HASH_BYTES]) {
  unsigned int n = 0;
  pthread_once(&sha256_once, sha256_fetch);
  const EVP_MD *md = sha256_md ? sha256_md : EVP_sha256();
  if (EVP_Digest(tok, len, out, &n, md, NULL) != 1 || n != HB_TOKEN_HASH_BYTES)
    memset(out, 0, HB_TOKEN_HASH_BYTES); /* never matches: stored hashes are real digests */
}

static void read_token(sqlite3_stmt *st, hb_token_row *r) {
  memset(r, 0, sizeof *r);
  col_uuid(st, 0, &r->id);
  col_uuid(st, 1, &r->org_id);
  col_uuid(st, 2, &r->plugin_id);
  col_str(st, 3, r->name, sizeof r->name);
  if (sqlite3_column_bytes(st, 4) == HB_TOKEN_HASH_BYTES)
    memcpy(r->hash, sqlite3_column_blob(st, 4), HB_TOKEN_HASH_BYTES);
  r->created_at = sqlite3_column_int64(st, 5);
  r->revoked_at = sqlite3_column_type(st, 6) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 6);
}

int hb_store_token_create(hb_store *s, const hb_uuid *org, const hb_uuid *plugin, const char *name,
                          char *token_out, hb_token_row *out) {
  sqlite3_stmt *st = NULL;
  hb_token_row row;
  char tok[HB_MAX_API_TOKEN_BYTES + 1];
  int rc = -1;
  memset(&row, 0, sizeof row);
  hb_uuid_v4(&row.id);
  row.org_id = *org;
  row.plugin_id = *plugin;
  row.created_at = now_s();
  if (name && *name) {
    if (!valid_name(name)) {
      hb_warn("store: token name must be 1..%d bytes", HB_MAX_NAME_BYTES);
      return -1;
    }
    snprintf(row.name, sizeof row.name, "%s", name);
  } else {
    /* Names are unique per plugin; an unnamed token gets one from its id. */
    char idbuf[HB_UUID_STR_BYTES];
    hb_uuid_format(&row.id, idbuf);
    snprintf(row.name, sizeof row.name, "token-%.8s", idbuf);
  }
  if (random_secret("hbk_", HB_API_TOKEN_RANDOM_BYTES, tok, sizeof tok) != 0) {
    hb_error_log("store: no randomness for an API token");
    return -1;
  }
  hb_store_hash_token(tok, strlen(tok), row.hash);
  if (prepare(s,
              /* The SELECT ... WHERE EXISTS refuses a plugin of another
               * organization: a token must never speak for two tenants. */
              "INSERT INTO api_tokens (id, organization_id, plugin_id, name, token_hash, created_at)"
              " SELECT ?1, ?2, ?3, ?4, ?5, ?6"
              " WHERE EXISTS (SELECT 1 FROM plugins WHERE id = ?3 AND organization_id = ?2)",
              &st) != 0)
    goto out;
  bind_uuid(st, 1, &row.id);
  bind_uuid(st, 2, org);
  bind_uuid(st, 3, plugin);
  sqlite3_bind_text(st, 4, row.name, -1, SQLITE_TRANSIENT);
  sqlite3_bind_blob(st, 5, row.hash, HB_TOKEN_HASH_BYTES, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 6, row.created_at);
  rc = step_write(s, st, "create token");
  if (rc == 0 && sqlite3_changes(s->db) == 0) {
    hb_warn("store: token not created: the plugin is not in that organization");
    rc = -1;
  }
  if (rc == 0) {
    if (token_out) memcpy(token_out, tok, strlen(tok) + 1);
    if (out) *out = row;
  }
out:
  sqlite3_finalize(st);
  OPENSSL_cleanse(tok, sizeof tok);
  return rc;
}

int hb_store_token_revoke(hb_store *s, const hb_uuid *id) {
  sqlite3_stmt *st = NULL;
  int rc;
  /* COALESCE keeps the first revocation time: revoking twice is a no-op. */
  if (prepare(s, "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?1) WHERE id = ?2", &st) != 0)
    return -1;
  sqlite3_bind_int64(st, 1, now_s());
  bind_uuid(st, 2, id);
  rc = step_write(s, st, "revoke token");
  if (rc == 0 && sqlite3_changes(s->db) == 0) rc = 1;
  sqlite3_finalize(st);
  return rc;
}

int hb_store_token_list(hb_store *s, void (*cb)(const hb_token_row *, void *), void *ud) {
  sqlite3_stmt *st = NULL;
  int rc;
  if (prepare(s,
              "SELECT id, organization_id, plugin_id, name, token_hash, created_at, revoked_at"
              " FROM api_tokens ORDER BY created_at, rowid",
              &st) != 0)
    return -1;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    hb_token_row r;
    read_token(st, &r);
    cb(&r, ud);
  }
  if (rc != SQLITE_DONE) db_fail(s, "list tokens");
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? 0 : -1;
}

int hb_store_data_version(hb_store *s, int64_t *out) {
  sqlite3_stmt *st = NULL;
  int rc = -1;
  if (prepare(s, "PRAGMA data_version", &st) != 0) return -1;
  if (sqlite3_step(st) == SQLITE_ROW) {
    /* data_version moves on other connections' commits, own_commits on ours;
     * keeping them in separate halves makes any change visible. */
    *out = (int64_t)((uint64_t)sqlite3_column_int64(st, 0) << 32) + (s->own_commits & 0xffffffff);
    rc = 0;
  } else {
    db_fail(s, "data_version");
  }
  sqlite3_finalize(st);
  return rc;
}
