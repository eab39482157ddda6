/*
 * pg.c - the store's PostgreSQL backend (libpq): one database shared by
 * every node of a cluster.
 *
 * Bounded waits. Connecting is bounded by connect_timeout (the URI's, else
 * HB_STORE_PG_CONNECT_TIMEOUT_S). Every statement is sent asynchronously and
 * its reply awaited with poll() until the reply timeout: a server that is
 * down, frozen or cut off costs a caller at most that long, then the call
 * fails with HB_STORE_UNAVAILABLE and the connection is dropped. The next
 * call reconnects (a connection found closed while idle is replaced before
 * use, and a read or a BEGIN that fails on a stale connection is tried once
 * more on a fresh one). The server's statement_timeout is set just below the
 * reply timeout so that a merely slow statement is cancelled server-side.
 *
 * Several nodes at once: migrations run under a transaction-level advisory
 * lock (nodes starting together migrate once, the others wait and find the
 * work done); uniqueness is enforced by the database's constraints; every
 * write is one transaction (the front's), which bumps the change counter and
 * sends NOTIFY hubbub_changes, delivered to listeners only after COMMIT.
 *
 * The URI may carry a password: it is kept only in this struct (cleansed on
 * close) and never written to a log or an error message.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hubbub/alloc.h"
#include "hubbub/hex.h"
#include "hubbub/log.h"
#include "store/internal.h"

/* Type OIDs of the parameters we send (pg_type.h is server-side only). */
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25

/* Key of the advisory lock that serialises migrations across nodes: the
 * bytes "hubbub" and a version of the locking scheme. */
#define MIGRATION_LOCK_KEY "7526769238540369921"

#define NOTIFY_CHANNEL "hubbub_changes"

typedef struct {
  hb_store base;
  char *uri;      /* owned; may hold a password: cleansed on close */
  char where[256]; /* the URI without its password, for messages */
  PGconn *conn;   /* statements */
  PGconn *listen; /* hb_store_wait_change's LISTEN connection */
  int reply_timeout_ms;
  int statement_timeout_ms;
  bool timed_out; /* the last failure was a timeout (no retry) */
  /* An outage is logged once as a warning (then at debug level, a server
   * retries every 250 ms) and its end once. */
  bool down_logged;
} pg_store;

static pg_store *PG(hb_store *s) { return (pg_store *)s; }

/*
 * Migrations: entry i takes the schema from version i to i + 1, as sqlite.c.
 * The columns are those of SQLite with PostgreSQL's types; `rowid` is an
 * identity column standing in for SQLite's rowid, so that "ORDER BY
 * created_at, rowid" lists in insertion order on both.
 */
static const char *const migrations[] = {
    /* 1: the first schema. */
    "CREATE TABLE organizations ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  created_at BIGINT NOT NULL,"
    "  rowid BIGINT GENERATED ALWAYS AS IDENTITY"
    ");"
    "CREATE TABLE plugins ("
    "  id TEXT PRIMARY KEY,"
    "  organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  signing_secret TEXT NOT NULL,"
    "  allowed_origins TEXT NOT NULL DEFAULT '',"
    "  created_at BIGINT NOT NULL,"
    "  rowid BIGINT GENERATED ALWAYS AS IDENTITY,"
    "  UNIQUE (organization_id, name)"
    ");"
    "CREATE INDEX plugins_by_org ON plugins(organization_id);"
    "CREATE TABLE api_tokens ("
    "  id TEXT PRIMARY KEY,"
    "  organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,"
    "  plugin_id TEXT NOT NULL REFERENCES plugins(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  token_hash BYTEA NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),"
    "  created_at BIGINT NOT NULL,"
    "  revoked_at BIGINT,"
    "  rowid BIGINT GENERATED ALWAYS AS IDENTITY,"
    "  UNIQUE (plugin_id, name)"
    ");"
    "CREATE INDEX api_tokens_by_org ON api_tokens(organization_id);"
    "CREATE INDEX api_tokens_by_plugin ON api_tokens(plugin_id);"
    "CREATE INDEX api_tokens_active ON api_tokens(revoked_at);",

    /* 2: as sqlite.c's second migration. */
    "ALTER TABLE plugins"
    "  ADD COLUMN signing_kid TEXT NOT NULL DEFAULT '',"
    "  ADD COLUMN secret_created_at BIGINT NOT NULL DEFAULT 0,"
    "  ADD COLUMN previous_secret TEXT,"
    "  ADD COLUMN previous_kid TEXT,"
    "  ADD COLUMN previous_retire_at BIGINT;"
    "UPDATE plugins SET signing_kid = substr(md5(random()::text || id), 1, 12),"
    "  secret_created_at = created_at;"
    "ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;"
    "CREATE TABLE conn_token_revocations ("
    "  plugin_id TEXT NOT NULL REFERENCES plugins(id) ON DELETE CASCADE,"
    "  user_id TEXT NOT NULL,"
    "  revoked_before BIGINT NOT NULL,"
    "  created_at BIGINT NOT NULL,"
    "  PRIMARY KEY (plugin_id, user_id)"
    ");"
    "CREATE TABLE hubbub_changes ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  version BIGINT NOT NULL"
    ");"
    "INSERT INTO hubbub_changes (id, version) VALUES (1, 0);",
};
_Static_assert(sizeof migrations / sizeof migrations[0] == HB__STORE_SCHEMA_VERSION,
               "sqlite.c and pg.c must have one migration per schema version");

/* ---- time and waiting ---------------------------------------------------- */

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_until(int64_t deadline) {
  int64_t left = deadline - mono_ms();
  if (left <= 0) return;
  struct timespec ts = {(time_t)(left / 1000), (long)(left % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Wait for the socket of c: 1 ready, 0 deadline passed, -1 error. */
static int wait_socket(PGconn *c, short events, int64_t deadline) {
  int fd = PQsocket(c);
  if (fd < 0) return -1;
  for (;;) {
    int64_t left = deadline - mono_ms();
    if (left <= 0) return 0;
    struct pollfd pfd = {fd, events, 0};
    int r = poll(&pfd, 1, (int)left);
    if (r > 0) return 1;
    if (r < 0 && errno != EINTR) return -1;
  }
}

/* ---- connections --------------------------------------------------------- */

/* Notices (a skipped CREATE ... IF NOT EXISTS) are not for the operator. */
static void on_notice(void *arg, const char *msg) {
  (void)arg;
  hb_debug("store: postgresql: %.*s", (int)strcspn(msg, "\n"), msg);
}

static void drop(PGconn **c) {
  if (*c) PQfinish(*c);
  *c = NULL;
}

static int run_simple(pg_store *p, PGconn *c, const char *sql);

/*
 * A new connection. Our defaults come before "dbname" (the URI), so that the
 * URI's own settings (connect_timeout, keepalives...) win. Keepalives let
 * the idle LISTEN connection notice a vanished server. On failure NULL with
 * libpq's reason (which does not contain the password) in errbuf.
 */
static PGconn *connect_db(pg_store *p, char *errbuf, size_t errlen) {
  char ct[16];
  snprintf(ct, sizeof ct, "%d", HB_STORE_PG_CONNECT_TIMEOUT_S);
  const char *kw[] = {"connect_timeout", "application_name", "keepalives", "keepalives_idle",
                      "keepalives_interval", "keepalives_count", "dbname", NULL};
  const char *val[] = {ct, "hubbub", "1", "10", "5", "3", p->uri, NULL};
  PGconn *c = PQconnectdbParams(kw, val, 1);
  if (!c || PQstatus(c) != CONNECTION_OK) {
    const char *m = c ? PQerrorMessage(c) : "out of memory";
    hb__store_errf(errbuf, errlen, "cannot connect to PostgreSQL at %s: %.*s", p->where,
                   (int)strcspn(m, "\n"), m);
    if (c) PQfinish(c);
    return NULL;
  }
  PQsetNoticeProcessor(c, on_notice, NULL);
  char setup[256];
  snprintf(setup, sizeof setup,
           "SET statement_timeout = %d; SET idle_in_transaction_session_timeout = %d;"
           " SET client_min_messages = warning",
           p->statement_timeout_ms, HB_STORE_PG_IDLE_TX_TIMEOUT_MS);
  if (run_simple(p, c, setup) != 0) {
    hb__store_errf(errbuf, errlen, "cannot set up the PostgreSQL session at %s", p->where);
    PQfinish(c);
    return NULL;
  }
  return c;
}

/* The statement connection, connected (or found healthy). Outside a
 * transaction, a connection the server closed while it sat idle is
 * noticed here (reading the socket finds the EOF) and replaced. */
static int ensure_conn(pg_store *p) {
  if (p->conn && p->base.tx == 0 && (!PQconsumeInput(p->conn) || PQstatus(p->conn) != CONNECTION_OK))
    drop(&p->conn);
  if (p->conn) return 0;
  if (p->base.tx != 0) return HB_STORE_UNAVAILABLE; /* the transaction died with its connection */
  char err[512];
  p->conn = connect_db(p, err, sizeof err);
  if (!p->conn) {
    if (!p->down_logged) hb_warn("store: %s (retrying at each call; logged again when it is back)", err);
    else hb_debug("store: %s", err);
    p->down_logged = true;
    return HB_STORE_UNAVAILABLE;
  }
  if (p->down_logged) hb_info("store: connected to PostgreSQL at %s again", p->where);
  else hb_debug("store: connected to PostgreSQL at %s", p->where);
  p->down_logged = false;
  return 0;
}

/* ---- statements ---------------------------------------------------------- */

/*
 * Await every result of what was sent on c, keeping the first error (or
 * the last result). 0 with *out set, or HB_STORE_UNAVAILABLE on a timeout
 * (p->timed_out) or a broken connection.
 */
static int await_results(pg_store *p, PGconn *c, PGresult **out) {
  int64_t deadline = mono_ms() + p->reply_timeout_ms;
  PGresult *keep = NULL;
  int f;
  *out = NULL;
  p->timed_out = false;
  while ((f = PQflush(c)) == 1) {
    int w = wait_socket(c, POLLIN | POLLOUT, deadline);
    if (w == 0) p->timed_out = true;
    if (w <= 0 || !PQconsumeInput(c)) goto broken;
  }
  if (f != 0) goto broken;
  for (;;) {
    while (PQisBusy(c)) {
      int w = wait_socket(c, POLLIN, deadline);
      if (w == 0) p->timed_out = true;
      if (w <= 0 || !PQconsumeInput(c)) goto broken;
    }
    PGresult *r = PQgetResult(c);
    if (!r) break;
    if (keep && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
      PQclear(r);
    } else {
      PQclear(keep);
      keep = r;
    }
  }
  if (!keep || PQstatus(c) != CONNECTION_OK) goto broken;
  *out = keep;
  return 0;
broken:
  PQclear(keep);
  return HB_STORE_UNAVAILABLE;
}

/* A result as a store result; SQLSTATE classes decide. */
static int result_of(pg_store *p, PGconn *c, const PGresult *r, const char *what) {
  ExecStatusType st = PQresultStatus(r);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return 0;
  const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
  if (!state) state = "";
  if (!msg) msg = PQresStatus(st);
  if (strncmp(state, "23", 2) == 0) return 1; /* integrity constraint violation */
  /* Connection exceptions, shutdowns, a cancelled (timed out) statement,
   * serialization failures, deadlocks, locks not available, resources
   * exhausted: the database is there but cannot serve now. */
  if (strncmp(state, "08", 2) == 0 || strncmp(state, "57", 2) == 0 || strncmp(state, "53", 2) == 0 ||
      !strcmp(state, "40001") || !strcmp(state, "40P01") || !strcmp(state, "55P03") ||
      PQstatus(c) != CONNECTION_OK) {
    hb_warn("store: %s: PostgreSQL is unavailable: %s (%s)", what, msg, state);
    return HB_STORE_UNAVAILABLE;
  }
  hb_error_log("store: %s: %s (%s)", what, msg, state);
  (void)p;
  return HB_STORE_ERROR;
}

/* Several statements in one string (session setup, migrations), no values. */
static int run_simple(pg_store *p, PGconn *c, const char *sql) {
  PGresult *r = NULL;
  if (!PQsendQuery(c, sql)) return HB_STORE_UNAVAILABLE;
  int rc = await_results(p, c, &r);
  if (rc == 0) rc = result_of(p, c, r, "statement");
  PQclear(r);
  return rc;
}

/* "?N" placeholders (the front's dialect) as "$N". The SQL is ours: no
 * question mark appears in a literal. Owned by the caller (hb_free). */
static char *dollar_params(const char *sql) {
  size_t n = strlen(sql);
  char *out = hb_malloc(n + 1);
  for (size_t i = 0; i <= n; i++)
    out[i] = (sql[i] == '?' && sql[i + 1] >= '0' && sql[i + 1] <= '9') ? '$' : sql[i];
  return out;
}

/*
 * Run one statement with values on the statement connection: 0 with *out,
 * or an error. Outside a transaction, a failure of a connection we had
 * before this call (it went stale: the server restarted) is retried once on
 * a new connection; a timeout is not (the caller has waited enough).
 */
static int run(pg_store *p, const char *sql, const hb__val *args, int nargs, PGresult **out,
               const char *what) {
  Oid types[HB__STORE_MAX_ARGS];
  const char *values[HB__STORE_MAX_ARGS];
  int lengths[HB__STORE_MAX_ARGS], formats[HB__STORE_MAX_ARGS];
  char ints[HB__STORE_MAX_ARGS][24];
  int rc = HB_STORE_ERROR;
  *out = NULL;
  if (nargs > HB__STORE_MAX_ARGS) return HB_STORE_ERROR;
  for (int i = 0; i < nargs; i++) {
    const hb__val *v = &args[i];
    lengths[i] = 0;
    formats[i] = 0;
    switch (v->t) {
    case HB__V_NULL: types[i] = 0; values[i] = NULL; break;
    case HB__V_INT:
      types[i] = OID_INT8;
      snprintf(ints[i], sizeof ints[i], "%lld", (long long)v->i);
      values[i] = ints[i];
      break;
    case HB__V_TEXT: types[i] = OID_TEXT; values[i] = v->p; break;
    case HB__V_BLOB:
      types[i] = OID_BYTEA;
      values[i] = v->p;
      lengths[i] = (int)v->n;
      formats[i] = 1; /* binary: the bytes as they are */
      break;
    }
  }
  char *q = dollar_params(sql);
  for (int attempt = 0; attempt < 2; attempt++) {
    bool had_conn = p->conn != NULL;
    if ((rc = ensure_conn(p)) != 0) break;
    PGresult *r = NULL;
    if (PQsendQueryParams(p->conn, q, nargs, types, values, lengths, formats, 0))
      rc = await_results(p, p->conn, &r);
    else
      rc = HB_STORE_UNAVAILABLE;
    if (rc == 0) {
      rc = result_of(p, p->conn, r, what);
      if (rc == 0) {
        *out = r;
        break;
      }
    }
    PQclear(r);
    if (rc != HB_STORE_UNAVAILABLE) break;
    bool broken = !p->conn || PQstatus(p->conn) != CONNECTION_OK || p->timed_out;
    if (broken) {
      /* A timed-out connection may be stuck mid-reply: never reuse it. */
      drop(&p->conn);
      hb_warn("store: %s: %s PostgreSQL at %s", what,
              p->timed_out ? "no reply within the timeout from" : "lost the connection to", p->where);
    }
    if (!broken || p->timed_out || !had_conn || p->base.tx != 0) break;
  }
  hb_free(q);
  return rc;
}

static int pg_exec(hb_store *s, const char *sql, const hb__val *args, int nargs, int64_t *changes) {
  PGresult *r;
  int rc = run(PG(s), sql, args, nargs, &r, "write");
  if (rc == 0 && changes) *changes = strtoll(PQcmdTuples(r), NULL, 10);
  PQclear(r);
  return rc;
}

static int pg_query(hb_store *s, const char *sql, const hb__val *args, int nargs, hb__row_fn fn,
                    void *ud) {
  PGresult *r;
  int rc = run(PG(s), sql, args, nargs, &r, "query");
  if (rc != 0) return rc;
  int n = PQntuples(r);
  hb__row row = {s, r, 0};
  for (int i = 0; i < n && rc == 0; i++) {
    row.row = i;
    rc = fn(&row, ud);
  }
  PQclear(r);
  return rc;
}

static bool pg_col_null(const hb__row *r, int col) { return PQgetisnull(r->cur, r->row, col) != 0; }
static int64_t pg_col_int(const hb__row *r, int col) {
  return PQgetisnull(r->cur, r->row, col) ? 0 : strtoll(PQgetvalue(r->cur, r->row, col), NULL, 10);
}
static const char *pg_col_text(const hb__row *r, int col) { return PQgetvalue(r->cur, r->row, col); }

/* bytea in text form is "\x" and two hex digits a byte. */
static size_t pg_col_blob(const hb__row *r, int col, uint8_t *out, size_t cap) {
  const char *t = PQgetvalue(r->cur, r->row, col);
  size_t len = (size_t)PQgetlength(r->cur, r->row, col);
  if (len < 2 || t[0] != '\\' || t[1] != 'x' || len % 2) return 0;
  size_t n = (len - 2) / 2;
  for (size_t i = 0; i < n && i < cap; i++) {
    int hi = hb_hexval(t[2 + 2 * i]), lo = hb_hexval(t[3 + 2 * i]);
    if (hi < 0 || lo < 0) return 0;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return n;
}

static int exec_plain(hb_store *s, const char *sql) { return pg_exec(s, sql, NULL, 0, NULL); }

static int pg_begin(hb_store *s) { return exec_plain(s, "BEGIN"); }
/* REPEATABLE READ: every list in the snapshot sees the same committed state. */
static int pg_begin_read(hb_store *s) { return exec_plain(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); }
static int pg_commit(hb_store *s) { return exec_plain(s, "COMMIT"); }
static void pg_rollback(hb_store *s) {
  pg_store *p = PG(s);
  PGresult *r = NULL;
  /* No retry and no reconnect: a transaction whose connection died is
   * already rolled back by the server. */
  if (p->conn && PQstatus(p->conn) == CONNECTION_OK && PQsendQuery(p->conn, "ROLLBACK") &&
      await_results(p, p->conn, &r) == 0) {
    PQclear(r);
    return;
  }
  drop(&p->conn);
}

/* One round trip: bump the counter and queue the notification (sent by the
 * server at COMMIT, dropped on ROLLBACK). The payload is the new version. */
static int pg_bump(hb_store *s) {
  return exec_plain(s, "WITH v AS (UPDATE hubbub_changes SET version = version + 1 WHERE id = 1"
                       " RETURNING version)"
                       " SELECT pg_notify('" NOTIFY_CHANNEL "', version::text) FROM v");
}

static int one_int(const hb__row *r, void *ud) {
  *(int64_t *)ud = pg_col_int(r, 0);
  return 0;
}

static int pg_data_version(hb_store *s, int64_t *out) {
  int64_t v = -1;
  int rc = pg_query(s, "SELECT version FROM hubbub_changes WHERE id = 1", NULL, 0, one_int, &v);
  if (rc == 0 && v < 0) rc = HB_STORE_ERROR;
  if (rc == 0) *out = v;
  return rc;
}

static int pg_schema_version(hb_store *s, int *out) {
  int64_t v = 0, exists = 0;
  int rc = pg_query(s, "SELECT count(*) FROM pg_catalog.pg_tables WHERE tablename = 'hubbub_schema_migrations'"
                       " AND schemaname = current_schema()",
                    NULL, 0, one_int, &exists);
  if (rc == 0 && exists)
    rc = pg_query(s, "SELECT coalesce(max(version), 0) FROM hubbub_schema_migrations", NULL, 0, one_int, &v);
  if (rc == 0) *out = (int)v;
  return rc;
}

/* ---- change notifications ------------------------------------------------ */

/* Drain queued notifications: true if there was any. */
static bool drain_notifies(PGconn *c) {
  bool any = false;
  PGnotify *n;
  while ((n = PQnotifies(c)) != NULL) {
    any = true;
    PQfreemem(n);
  }
  return any;
}

static int pg_wait_change(hb_store *s, int timeout_ms) {
  pg_store *p = PG(s);
  int64_t deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
  if (!p->listen || PQstatus(p->listen) != CONNECTION_OK) {
    char err[512];
    drop(&p->listen);
    p->listen = connect_db(p, err, sizeof err);
    if (!p->listen || run_simple(p, p->listen, "LISTEN " NOTIFY_CHANNEL) != 0) {
      if (p->listen) snprintf(err, sizeof err, "cannot LISTEN on PostgreSQL at %s", p->where);
      drop(&p->listen);
      if (!p->down_logged) hb_warn("store: change watch: %s", err);
      else hb_debug("store: change watch: %s", err);
      p->down_logged = true;
      sleep_until(deadline); /* a loop around us must not spin */
      return HB_STORE_UNAVAILABLE;
    }
    /* Changes made while nobody listened are unknown: say "perhaps". */
    if (p->down_logged) hb_info("store: change watch: listening on PostgreSQL at %s again", p->where);
    p->down_logged = false;
    return 1;
  }
  for (;;) {
    if (!PQconsumeInput(p->listen)) break;
    if (drain_notifies(p->listen)) return 1;
    int w = wait_socket(p->listen, POLLIN, deadline);
    if (w == 0) return 0;
    if (w < 0) break;
  }
  /* The connection broke: the next call reconnects (and says "perhaps"). */
  hb_warn("store: change watch: lost the LISTEN connection to PostgreSQL at %s", p->where);
  drop(&p->listen);
  sleep_until(deadline);
  return HB_STORE_UNAVAILABLE;
}

/* ---- open and migrate ---------------------------------------------------- */

static int migrate(pg_store *p, char *errbuf, size_t errlen) {
  hb_store *s = &p->base;
  int version = 0, rc;
  /* Fast path without the lock: nodes restarting on an up-to-date schema do
   * not queue behind each other. */
  if ((rc = pg_schema_version(s, &version)) != 0) goto failed;
  if (version > HB__STORE_SCHEMA_VERSION) goto too_new;
  if (version == HB__STORE_SCHEMA_VERSION) return 0;

  if ((rc = pg_begin(s)) != 0) goto failed;
  s->tx = 2;
  /* Held until COMMIT/ROLLBACK: a second node waits here, then finds the
   * schema migrated (its statement_timeout bounds the wait). */
  if ((rc = exec_plain(s, "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK_KEY ")")) != 0) goto rollback;
  if ((rc = exec_plain(s, "CREATE TABLE IF NOT EXISTS hubbub_schema_migrations ("
                          "  version INTEGER PRIMARY KEY,"
                          "  applied_at BIGINT NOT NULL)")) != 0)
    goto rollback;
  if ((rc = pg_schema_version(s, &version)) != 0) goto rollback;
  if (version > HB__STORE_SCHEMA_VERSION) {
    pg_rollback(s);
    s->tx = 0;
    goto too_new;
  }
  for (int v = version; v < HB__STORE_SCHEMA_VERSION; v++) {
    hb__val args[] = {hb__int(v + 1), hb__int((int64_t)time(NULL))};
    if ((rc = run_simple(p, p->conn, migrations[v])) != 0) goto rollback;
    if ((rc = pg_exec(s, "INSERT INTO hubbub_schema_migrations (version, applied_at) VALUES (?1, ?2)",
                      args, 2, NULL)) != 0)
      goto rollback;
    hb_info("store: migrated PostgreSQL at %s to schema version %d", p->where, v + 1);
  }
  if ((rc = pg_commit(s)) != 0) goto rollback;
  s->tx = 0;
  return 0;

rollback:
  pg_rollback(s);
  s->tx = 0;
failed:
  hb__store_errf(errbuf, errlen, "cannot %s the schema of PostgreSQL at %s (see the log above)",
                 version ? "migrate" : "create", p->where);
  return rc == HB_STORE_UNAVAILABLE ? HB_STORE_UNAVAILABLE : HB_STORE_ERROR;
too_new:
  hb__store_too_new(errbuf, errlen, version);
  return HB_STORE_ERROR;
}

static void pg_close(hb_store *s) {
  pg_store *p = PG(s);
  if (!p) return;
  drop(&p->conn);
  drop(&p->listen);
  if (p->uri) {
    OPENSSL_cleanse(p->uri, strlen(p->uri));
    hb_free(p->uri);
  }
  hb_free(p);
}

static const hb__store_ops pg_ops = {
    .name = "postgresql",
    .local = false,
    .close = pg_close,
    .exec = pg_exec,
    .query = pg_query,
    .col_null = pg_col_null,
    .col_int = pg_col_int,
    .col_text = pg_col_text,
    .col_blob = pg_col_blob,
    .begin = pg_begin,
    .begin_read = pg_begin_read,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .bump = pg_bump,
    .data_version = pg_data_version,
    .wait_change = pg_wait_change,
    .schema_version = pg_schema_version,
};

int hb__pg_open(hb_store **out, const char *uri, const hb_store_options *o, char *errbuf,
                size_t errlen) {
  char *perr = NULL;
  *out = NULL;
  /* Parse first, so that a malformed URI says so rather than "cannot connect". */
  PQconninfoOption *opts = PQconninfoParse(uri, &perr);
  if (!opts) {
    hb__store_errf(errbuf, errlen, "malformed PostgreSQL URI: %.*s",
                   perr ? (int)strcspn(perr, "\n") : 13, perr ? perr : "cannot parse");
    PQfreemem(perr);
    return HB_STORE_ERROR;
  }
  /* libpq checks numbers only when it connects, and would report them as a
   * failure to connect: check them here. */
  for (PQconninfoOption *o2 = opts; o2->keyword; o2++) {
    if (!o2->val || (strcmp(o2->keyword, "port") && strcmp(o2->keyword, "connect_timeout"))) continue;
    for (const char *v = o2->val; *v;) {
      size_t n = strcspn(v, ","), digits = strspn(v, "0123456789");
      if (digits < n || n > 5 || (n && !strcmp(o2->keyword, "port") && (atoi(v) < 1 || atoi(v) > 65535))) {
        hb__store_errf(errbuf, errlen, "malformed PostgreSQL URI: %s must be a number", o2->keyword);
        PQconninfoFree(opts);
        return HB_STORE_ERROR;
      }
      v += n + (v[n] == ',');
    }
  }
  PQconninfoFree(opts);

  pg_store *p = hb_calloc(1, sizeof *p);
  p->base.ops = &pg_ops;
  p->uri = hb_strndup(uri, strlen(uri));
  hb_store_location_describe(uri, p->where, sizeof p->where);
  p->reply_timeout_ms = o && o->reply_timeout_ms > 0 ? o->reply_timeout_ms : HB_STORE_PG_REPLY_TIMEOUT_MS;
  p->statement_timeout_ms = p->reply_timeout_ms - HB_STORE_PG_TIMEOUT_MARGIN_MS;
  if (p->statement_timeout_ms < p->reply_timeout_ms / 2) p->statement_timeout_ms = p->reply_timeout_ms / 2;
  if (p->statement_timeout_ms < 1) p->statement_timeout_ms = 1;

  p->conn = connect_db(p, errbuf, errlen);
  if (!p->conn) {
    pg_close(&p->base);
    return HB_STORE_UNAVAILABLE;
  }
  int rc = migrate(p, errbuf, errlen);
  if (rc != 0) {
    pg_close(&p->base);
    return rc;
  }
  *out = &p->base;
  return 0;
}
