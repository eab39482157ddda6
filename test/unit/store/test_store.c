/*
 * test_store.c - the store against both backends: migrations, rows, token
 * hashes, rotation, revocations, deletes, change tracking, import; then what
 * only one backend has (SQLite's file errors; PostgreSQL's outages).
 *
 * The same binary runs twice under ctest: test_store (SQLite, a temporary
 * directory per test) and test_store_pg (test/pg-harness.sh starts a private
 * PostgreSQL and exports HB_PG_URI; each test gets a schema of its own).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include "check.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hubbub/store.h"
#include "store_fixture.h"

#define LATEST "2"

/* ---- fixtures ----------------------------------------------------------- */

static int setup(void **state) {
  hbt_leak_begin();
  hb_test_loc *l = calloc(1, sizeof *l);
  assert_true(hb_test_loc_make(l));
  *state = l;
  return 0;
}

static int teardown(void **state) {
  hb_test_loc_free(*state);
  free(*state);
  hbt_leak_end();
  return 0;
}

static hb_store *open_ok(const char *loc) {
  hb_store *s = NULL;
  char err[512] = "";
  int rc = hb_store_open(&s, loc, err, sizeof err);
  if (rc != 0) fail_msg("open %s: %s", loc, err);
  assert_non_null(s);
  return s;
}

static hb_store *open_fx(void **state) { return open_ok(((hb_test_loc *)*state)->loc); }

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void count_cb(const void *row, void *ud) {
  (void)row;
  (*(int *)ud)++;
}

/* ---- both backends ------------------------------------------------------- */

static void test_migrates_from_empty(void **state) {
  hb_test_loc *l = *state;
  hb_store *s = open_fx(state);
  int v = 0;
  assert_int_equal(hb_store_schema_version(s, &v), 0);
  assert_int_equal(v, hb_store_schema_latest());
  assert_string_equal(hb_store_backend(s), l->pg ? "postgresql" : "sqlite");
  assert_int_equal(hb_store_is_local(s), !l->pg);
  hb_store_close(s);
  for (const char *t = "organizations\0plugins\0api_tokens\0conn_token_revocations\0"; *t; t += strlen(t) + 1) {
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", t);
    assert_int_equal(hb_test_sql_int(l, sql), 0);
  }
  assert_int_equal(hb_test_sql_int(l, "SELECT version FROM hubbub_changes"), 0);
  if (l->pg) {
    assert_int_equal(hb_test_sql_int(l, "SELECT count(*) FROM hubbub_schema_migrations"), hb_store_schema_latest());
  } else {
    assert_int_equal(hb_test_sql_int(l, "PRAGMA user_version"), hb_store_schema_latest());
  }
}

static void test_migrates_nested_dir_private(void **state) {
  hb_test_loc *l = *state;
  char dir[1024], path[1100];
  struct stat st;
  if (l->pg) skip();
  snprintf(dir, sizeof dir, "%s/nested/data", l->dir); /* created with its parents */
  hb_store_close(open_ok(dir));
  snprintf(path, sizeof path, "%s/%s", dir, HB_STORE_FILE);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 077, 0); /* the file holds signing secrets */
  assert_int_equal(stat(dir, &st), 0);
  assert_int_equal(st.st_mode & 077, 0);
}

static void test_reopen_is_idempotent(void **state) {
  hb_org_row org, found;
  hb_store *s = open_fx(state);
  assert_int_equal(hb_store_org_create(s, "acme", &org), 0);
  hb_store_close(s);
  hb_store_close(open_fx(state));
  s = open_fx(state);
  assert_int_equal(hb_store_org_find(s, "acme", &found), 0);
  assert_true(hb_uuid_eq(&org.id, &found.id));
  int v = 0;
  assert_int_equal(hb_store_schema_version(s, &v), 0);
  assert_int_equal(v, hb_store_schema_latest());
  hb_store_close(s);
}

/* The schema of version 1, as hubbub 0.1 shipped it (and the same for
 * PostgreSQL), with one row of each kind. */
static void make_v1(hb_test_loc *l) {
  if (l->pg) {
    hb_test_sql_exec(l,
                     "CREATE TABLE hubbub_schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL);"
                     "INSERT INTO hubbub_schema_migrations VALUES (1, 0);"
                     "CREATE TABLE organizations (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
                     " created_at BIGINT NOT NULL, rowid BIGINT GENERATED ALWAYS AS IDENTITY);"
                     "CREATE TABLE plugins (id TEXT PRIMARY KEY, organization_id TEXT NOT NULL REFERENCES"
                     " organizations(id) ON DELETE CASCADE, name TEXT NOT NULL, signing_secret TEXT NOT NULL,"
                     " allowed_origins TEXT NOT NULL DEFAULT '', created_at BIGINT NOT NULL,"
                     " rowid BIGINT GENERATED ALWAYS AS IDENTITY, UNIQUE (organization_id, name));"
                     "CREATE TABLE api_tokens (id TEXT PRIMARY KEY, organization_id TEXT NOT NULL REFERENCES"
                     " organizations(id) ON DELETE CASCADE, plugin_id TEXT NOT NULL REFERENCES plugins(id) ON DELETE"
                     " CASCADE, name TEXT NOT NULL, token_hash BYTEA NOT NULL UNIQUE, created_at BIGINT NOT NULL,"
                     " revoked_at BIGINT, rowid BIGINT GENERATED ALWAYS AS IDENTITY, UNIQUE (plugin_id, name));"
                     "INSERT INTO organizations (id, name, created_at) VALUES"
                     " ('11111111-1111-4111-8111-111111111111', 'old', 100);"
                     "INSERT INTO plugins (id, organization_id, name, signing_secret, created_at) VALUES"
                     " ('22222222-2222-4222-8222-222222222222', '11111111-1111-4111-8111-111111111111', 'p',"
                     " 'hbs_old', 100);"
                     "INSERT INTO api_tokens (id, organization_id, plugin_id, name, token_hash, created_at) VALUES"
                     " ('33333333-3333-4333-8333-333333333333', '11111111-1111-4111-8111-111111111111',"
                     " '22222222-2222-4222-8222-222222222222', 't', decode(repeat('ab', 32), 'hex'), 100);");
  } else {
    hb_test_sql_exec(l,
                     "CREATE TABLE organizations (id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL UNIQUE,"
                     " created_at INTEGER NOT NULL);"
                     "CREATE TABLE plugins (id TEXT PRIMARY KEY NOT NULL, organization_id TEXT NOT NULL REFERENCES"
                     " organizations(id) ON DELETE CASCADE, name TEXT NOT NULL, signing_secret TEXT NOT NULL,"
                     " allowed_origins TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL,"
                     " UNIQUE (organization_id, name));"
                     "CREATE INDEX plugins_by_org ON plugins(organization_id);"
                     "CREATE TABLE api_tokens (id TEXT PRIMARY KEY NOT NULL, organization_id TEXT NOT NULL REFERENCES"
                     " organizations(id) ON DELETE CASCADE, plugin_id TEXT NOT NULL REFERENCES plugins(id) ON DELETE"
                     " CASCADE, name TEXT NOT NULL, token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),"
                     " created_at INTEGER NOT NULL, revoked_at INTEGER, UNIQUE (plugin_id, name));"
                     "INSERT INTO organizations VALUES ('11111111-1111-4111-8111-111111111111', 'old', 100);"
                     "INSERT INTO plugins VALUES ('22222222-2222-4222-8222-222222222222',"
                     " '11111111-1111-4111-8111-111111111111', 'p', 'hbs_old', '', 100);"
                     "INSERT INTO api_tokens VALUES ('33333333-3333-4333-8333-333333333333',"
                     " '11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222', 't',"
                     " randomblob(32), 100, NULL);"
                     "PRAGMA user_version = 1;");
  }
}

static void test_migrates_from_v1(void **state) {
  hb_test_loc *l = *state;
  hb_plugin_row p;
  int n = 0;
  make_v1(l);
  hb_store *s = open_fx(state);
  assert_int_equal(hb_store_plugin_find(s, NULL, "22222222-2222-4222-8222-222222222222", &p), 0);
  assert_string_equal(p.signing_secret, "hbs_old"); /* the secret is kept */
  assert_true(strlen(p.signing_kid) >= 8);            /* and got a kid */
  assert_int_equal(p.secret_created_at, 100);
  assert_string_equal(p.previous_secret, "");
  assert_int_equal(hb_store_token_list(s, (void (*)(const hb_token_row *, void *))count_cb, &n), 0);
  assert_int_equal(n, 1);
  /* A new row after the old ones, and writes work on the migrated schema. */
  assert_int_equal(hb_store_org_create(s, "new", NULL), 0);
  assert_int_equal(hb_store_plugin_rotate_secret(s, &p.id, 0, NULL), 0);
  hb_store_close(s);
}

static void test_newer_schema_refused(void **state) {
  hb_test_loc *l = *state;
  char err[512] = "";
  hb_store *s = open_fx(state);
  hb_store_close(s);
  s = NULL;
  if (l->pg) hb_test_sql_exec(l, "INSERT INTO hubbub_schema_migrations VALUES (99, 0)");
  else hb_test_sql_exec(l, "PRAGMA user_version = 99");
  assert_int_equal(hb_store_open(&s, l->loc, err, sizeof err), -1);
  assert_null(s);
  print_message("error: %s\n", err);
  assert_string_equal(err, "database schema version 99 is newer than this hubbub (" LATEST "): upgrade hubbub");
}

static void test_orgs(void **state) {
  hb_org_row a, b, f;
  char idbuf[HB_UUID_STR_BYTES];
  int n = 0;
  hb_store *s = open_fx(state);
  assert_int_equal(hb_store_org_create(s, "acme", &a), 0);
  assert_int_equal(hb_store_org_create(s, "globex", &b), 0);
  assert_false(hb_uuid_eq(&a.id, &b.id));
  assert_true(a.created_at > 0);
  assert_int_equal(hb_store_org_create(s, "acme", NULL), 1); /* names are unique */
  assert_int_equal(hb_store_org_create(s, "", NULL), -1);

  assert_int_equal(hb_store_org_find(s, "globex", &f), 0);
  assert_true(hb_uuid_eq(&f.id, &b.id));
  assert_string_equal(f.name, "globex");
  hb_uuid_format(&a.id, idbuf);
  assert_int_equal(hb_store_org_find(s, idbuf, &f), 0);
  assert_string_equal(f.name, "acme");
  for (char *p = idbuf; *p; p++) *p = (char)(*p >= 'a' && *p <= 'f' ? *p - 32 : *p); /* uppercase */
  assert_int_equal(hb_store_org_find(s, idbuf, &f), 0);
  assert_int_equal(hb_store_org_find(s, "initech", &f), 1);
  assert_int_equal(hb_store_org_find(s, "00000000-0000-4000-8000-000000000000", &f), 1);

  assert_int_equal(hb_store_org_list(s, (void (*)(const hb_org_row *, void *))count_cb, &n), 0);
  assert_int_equal(n, 2);
  hb_store_close(s);
}

static void names_cb(const hb_org_row *r, void *ud) {
  strcat(ud, r->name);
  strcat(ud, ",");
}

static void test_list_in_creation_order(void **state) {
  char names[256] = "";
  hb_store *s = open_fx(state);
  /* Created within one second: the tie is broken by insertion order. */
  assert_int_equal(hb_store_org_create(s, "zeta", NULL), 0);
  assert_int_equal(hb_store_org_create(s, "alpha", NULL), 0);
  assert_int_equal(hb_store_org_create(s, "mid", NULL), 0);
  assert_int_equal(hb_store_org_list(s, names_cb, names), 0);
  assert_string_equal(names, "zeta,alpha,mid,");
  hb_store_close(s);
}

static void test_plugins(void **state) {
  hb_org_row o1, o2;
  hb_plugin_row p, q, f;
  char idbuf[HB_UUID_STR_BYTES];
  int n = 0;
  hb_store *s = open_fx(state);
  assert_int_equal(hb_store_org_create(s, "acme", &o1), 0);
  assert_int_equal(hb_store_org_create(s, "globex", &o2), 0);
  assert_int_equal(hb_store_plugin_create(s, &o1.id, "polls", &p), 0);
  assert_true(hb_uuid_eq(&p.org_id, &o1.id));
  assert_memory_equal(p.signing_secret, "hbs_", 4);
  assert_int_equal(strlen(p.signing_secret), 4 + 43); /* base64url of 32 bytes, unpadded */
  assert_null(strpbrk(p.signing_secret, "+/="));
  assert_int_equal(strlen(p.signing_kid), 8); /* base64url of 6 bytes */
  assert_string_equal(p.previous_secret, "");
  assert_true(p.secret_created_at > 0);
  assert_int_equal(hb_store_plugin_create(s, &o1.id, "polls", NULL), 1);
  assert_int_equal(hb_store_plugin_create(s, &o2.id, "polls", &q), 0); /* unique per org only */
  assert_string_not_equal(p.signing_secret, q.signing_secret);
  assert_string_not_equal(p.signing_kid, q.signing_kid);

  assert_int_equal(hb_store_plugin_find(s, &o1.id, "polls", &f), 0);
  assert_true(hb_uuid_eq(&f.id, &p.id));
  assert_string_equal(f.signing_secret, p.signing_secret);
  assert_string_equal(f.signing_kid, p.signing_kid);
  assert_string_equal(f.allowed_origins, "");
  hb_uuid_format(&q.id, idbuf);
  assert_int_equal(hb_store_plugin_find(s, &o2.id, idbuf, &f), 0);
  assert_int_equal(hb_store_plugin_find(s, &o1.id, idbuf, &f), 1); /* not in that org */
  assert_int_equal(hb_store_plugin_find(s, NULL, idbuf, &f), 0);
  assert_int_equal(hb_store_plugin_find(s, NULL, "polls", &f), 1); /* names need an org */

  assert_int_equal(hb_store_plugin_set_origins(s, &p.id, "https://a.example https://b.example"), 0);
  assert_int_equal(hb_store_plugin_find(s, &o1.id, "polls", &f), 0);
  assert_string_equal(f.allowed_origins, "https://a.example https://b.example");
  assert_int_equal(hb_store_plugin_set_origins(s, &o1.id, ""), 1); /* no such plugin */

  assert_int_equal(hb_store_plugin_create_with_origins(s, &o1.id, "chat", "https://c.example", &f), 0);
  assert_string_equal(f.allowed_origins, "https://c.example");
  assert_int_equal(hb_store_plugin_find(s, &o1.id, "chat", &f), 0);
  assert_string_equal(f.allowed_origins, "https://c.example");

  assert_int_equal(hb_store_plugin_list(s, NULL, (void (*)(const hb_plugin_row *, void *))count_cb, &n), 0);
  assert_int_equal(n, 3);
  n = 0;
  assert_int_equal(hb_store_plugin_list(s, &o2.id, (void (*)(const hb_plugin_row *, void *))count_cb, &n), 0);
  assert_int_equal(n, 1);
  hb_store_close(s);
}

typedef struct {
  int total, revoked;
  hb_token_row last;
} token_tally;

static void tally(const hb_token_row *r, void *ud) {
  token_tally *t = ud;
  t->total++;
  if (r->revoked_at) t->revoked++;
  t->last = *r;
}

/* Read a file whole; NULL when it does not exist. */
static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  size_t cap = 0, n = 0, r;
  if (!f) return NULL;
  do {
    if (n + 65536 > cap) buf = realloc(buf, cap = (cap + 65536) * 2);
    r = fread(buf + n, 1, 65536, f);
    n += r;
  } while (r > 0);
  fclose(f);
  *len = n;
  return buf;
}

static bool file_contains(const char *path, const void *needle, size_t nlen) {
  size_t len = 0;
  char *buf = slurp(path, &len);
  bool found = buf && memmem(buf, len, needle, nlen) != NULL;
  free(buf);
  return found;
}

static void test_tokens(void **state) {
  hb_test_loc *l = *state;
  hb_org_row o;
  hb_plugin_row p;
  hb_token_row t, t2;
  char tok[HB_MAX_API_TOKEN_BYTES + 1], tok2[HB_MAX_API_TOKEN_BYTES + 1];
  uint8_t h[HB_TOKEN_HASH_BYTES];
  token_tally tt = {0};
  hb_store *s = open_fx(state);
  assert_int_equal(hb_store_org_create(s, "acme", &o), 0);
  assert_int_equal(hb_store_plugin_create(s, &o.id, "polls", &p), 0);
  assert_int_equal(hb_store_token_create(s, &o.id, &p.id, "backend", tok, &t), 0);
  assert_memory_equal(tok, "hbk_", 4);
  assert_int_equal(strlen(tok), 4 + 43);
  assert_true(strlen(tok) <= HB_MAX_API_TOKEN_BYTES);
  hb_store_hash_token(tok, strlen(tok), h);
  assert_memory_equal(h, t.hash, HB_TOKEN_HASH_BYTES);
  assert_string_equal(t.name, "backend");
  assert_int_equal(t.revoked_at, 0);
  assert_int_equal(t.expires_at, 0);

  assert_int_equal(hb_store_token_create(s, &o.id, &p.id, "backend", tok2, NULL), 1); /* name taken */
  assert_int_equal(hb_store_token_create(s, &p.id, &p.id, "x", tok2, NULL), -1);        /* no such org */
  hb_org_row other;
  assert_int_equal(hb_store_org_create(s, "globex", &other), 0);
  assert_int_equal(hb_store_token_create(s, &other.id, &p.id, "x", tok2, NULL), -1); /* plugin of acme */
  assert_int_equal(hb_store_token_create(s, &o.id, &p.id, NULL, tok2, &t2), 0);    /* generated name */
  assert_true(strncmp(t2.name, "token-", 6) == 0);
  assert_string_not_equal(tok, tok2);

  if (!l->pg) {
    /* Only the hash reaches the disk: neither the token nor its random
     * part is in the database or its write-ahead log. */
    char path[1100], wal[1100];
    snprintf(path, sizeof path, "%s/%s", l->dir, HB_STORE_FILE);
    snprintf(wal, sizeof wal, "%s/%s-wal", l->dir, HB_STORE_FILE);
    assert_false(file_contains(path, tok + 4, strlen(tok) - 4));
    assert_false(file_contains(wal, tok + 4, strlen(tok) - 4));
    assert_true(file_contains(path, h, sizeof h) || file_contains(wal, h, sizeof h));
  } else {
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM api_tokens WHERE position('%s' in encode(token_hash, 'escape')) > 0",
             tok + 4);
    assert_int_equal(hb_test_sql_int(l, sql), 0);
  }

  assert_int_equal(hb_store_token_revoke(s, &t.id), 0);
  assert_int_equal(hb_store_token_revoke(s, &t.id), 0); /* idempotent */
  assert_int_equal(hb_store_token_revoke(s, &o.id), 1); /* no such token */
  assert_int_equal(hb_store_token_list(s, tally, &tt), 0);
  assert_int_equal(tt.total, 2);
  assert_int_equal(tt.revoked, 1);
  assert_memory_equal(tt.last.hash, t2.hash, HB_TOKEN_HASH_BYTES); /* the hash reads back exactly */
  hb_store_close(s);
  assert_int_equal(hb_test_sql_int(l, "SELECT count(*) FROM api_tokens WHERE revoked_at IS NOT NULL"), 1);
}

static void test_token_expiry(void **state) {
  hb_org_row o;
  hb_plugin_row p;
  hb_token_row t;
  token_tally tt = {0};
  char tok[HB_MAX_API_TOKEN_BYTES + 1];
  hb_store *s = open_fx(state);
  assert_int_equal(hb_store_org_create(s, "acme", &o), 0);
  assert_int_equal(hb_store_plugin_create(s, &o.id, "polls", &p), 0);
  assert_int_equal(hb_store_token_create_with_expiry(s, &o.id, &p.id, "short", 1999999999, tok, &t), 0);
  assert_int_equal(t.expires_at, 1999999999);
  assert_int_equal(hb_store_token_create_with_expiry(s, &o.id, &p.id, "bad", -1, tok, NULL), -1);
  assert_int_equal(hb_store_token_list(s, tally, &tt), 0);
  assert_int_equal(tt.total, 1);
  assert_int_equal(tt.last.expires_at, 1999999999);
  hb_store_close(s);
}

static void test_rotate_and_retire(void **state) {
  hb_org_row o;
  hb_plugin_row p, r1, r2, f;
  bool had = true;
  hb_store *s = open_fx(state);
  assert_int_equal(hb_store_org_create(s, "acme", &o), 0);
  assert_int_equal(hb_store_plugin_create(s, &o.id, "polls", &p), 0);

  /* No previous yet: retiring is a no-op that says so. */
  assert_int_equal(hb_store_plugin_retire_previous(s, &p.id, &had), 0);
  assert_false(had);

  int64_t t0 = (int64_t)time(NULL);
  assert_int_equal(hb_store_plugin_rotate_secret(s, &p.id, 600, &r1), 0);
  assert_string_not_equal(r1.signing_secret, p.signing_secret);
  assert_string_not_equal(r1.signing_kid, p.signing_kid);
  assert_string_equal(r1.previous_secret, p.signing_secret);
  assert_string_equal(r1.previous_kid, p.signing_kid);
  assert_true(r1.previous_retire_at >= t0 + 600 && r1.previous_retire_at <= (int64_t)time(NULL) + 600);
  assert_int_equal(hb_store_plugin_find(s, &o.id, "polls", &f), 0);
  assert_string_equal(f.signing_secret, r1.signing_secret);
  assert_string_equal(f.previous_kid, p.signing_kid);

  /* Again, keeping the previous until retired: the first secret is gone. */
  assert_int_equal(hb_store_plugin_rotate_secret(s, &p.id, 0, &r2), 0);
  assert_string_equal(r2.previous_secret, r1.signing_secret);
  assert_string_equal(r2.previous_kid, r1.signing_kid);
  assert_int_equal(r2.previous_retire_at, 0);
  assert_string_not_equal(r2.signing_secret, p.signing_secret);
  assert_string_not_equal(r2.previous_secret, p.signing_secret);

  assert_int_equal(hb_store_plugin_retire_previous(s, &p.id, &had), 0);
  assert_true(had);
  assert_int_equal(hb_store_plugin_find(s, &o.id, "polls", &f), 0);
  assert_string_equal(f.previous_secret, "");
  assert_string_equal(f.previous_kid, "");
  assert_string_equal(f.signing_secret, r2.signing_secret);

  assert_int_equal(hb_store_plugin_rotate_secret(s, &o.id, 0, NULL), 1); /* no such plugin */
  assert_int_equal(hb_store_plugin_retire_previous(s, &o.id, NULL), 1);
  assert_int_equal(hb_store_plugin_rotate_secret(s, &p.id, -5, NULL), -1);
  hb_store_close(s);
}

typedef struct {
  int n;
  hb_revocation_row last;
} rev_tally;

static void rev_cb(const hb_revocation_row *r, void *ud) {
  rev_tally *t = ud;
  t->n++;
  t->last = *r;
}

static void test_revocations(void **state) {
  hb_test_loc *l = *state;
  hb_org_row o;
  hb_plugin_row p, q;
  hb_revocation_row r;
  rev_tally t = {0};
  int64_t now = (int64_t)time(NULL), pruned = -1;
  hb_store *s = open_fx(state);
  assert_int_equal(hb_store_org_create(s, "acme", &o), 0);
  assert_int_equal(hb_store_plugin_create(s, &o.id, "polls", &p), 0);
  assert_int_equal(hb_store_plugin_create(s, &o.id, "chat", &q), 0);

  assert_int_equal(hb_store_revoke_user_tokens(s, &p.id, "alice", now, &r), 0);
  assert_true(hb_uuid_eq(&r.plugin_id, &p.id));
  assert_string_equal(r.user_id, "alice");
  assert_int_equal(r.revoked_before, now);
  /* An earlier time does not shrink it; a later one moves it. */
  assert_int_equal(hb_store_revoke_user_tokens(s, &p.id, "alice", now - 100, &r), 0);
  assert_int_equal(r.revoked_before, now);
  assert_int_equal(hb_store_revoke_user_tokens(s, &p.id, "alice", now + 5, &r), 0);
  assert_int_equal(r.revoked_before, now + 5);
  assert_int_equal(hb_store_revoke_user_tokens(s, &q.id, "alice", now, NULL), 0);
  assert_int_equal(hb_store_revoke_user_tokens(s, &p.id, "bob \xc3\xa9", now, NULL), 0);

  assert_int_equal(hb_store_revoke_user_tokens(s, &o.id, "alice", now, NULL), 1); /* no such plugin */
  assert_int_equal(hb_store_revoke_user_tokens(s, &p.id, "", now, NULL), -1);
  assert_int_equal(hb_store_revoke_user_tokens(s, &p.id, "a\nb", now, NULL), -1);
  assert_int_equal(hb_store_revoke_user_tokens(s, &p.id, "alice", 0, NULL), -1);

  assert_int_equal(hb_store_revocation_list(s, NULL, rev_cb, &t), 0);
  assert_int_equal(t.n, 3);
  t.n = 0;
  assert_int_equal(hb_store_revocation_list(s, &q.id, rev_cb, &t), 0);
  assert_int_equal(t.n, 1);

  /* Old revocations go: explicitly, and at the next revocation. */
  hb_test_sql_exec(l, "UPDATE conn_token_revocations SET revoked_before = 1000 WHERE user_id = 'bob \xc3\xa9'");
  assert_int_equal(hb_store_revocation_prune(s, 1001, &pruned), 0);
  assert_int_equal(pruned, 1);
  hb_test_sql_exec(l, "UPDATE conn_token_revocations SET revoked_before = 1000");
  assert_int_equal(hb_store_revoke_user_tokens(s, &p.id, "carol", now, NULL), 0);
  t.n = 0;
  assert_int_equal(hb_store_revocation_list(s, NULL, rev_cb, &t), 0);
  assert_int_equal(t.n, 1);
  assert_string_equal(t.last.user_id, "carol");
  hb_store_close(s);
}

static void test_delete_cascades(void **state) {
  hb_test_loc *l = *state;
  hb_org_row o, o2;
  hb_plugin_row p, p2, q;
  char tok[HB_MAX_API_TOKEN_BYTES + 1];
  hb_store *s = open_fx(state);
  assert_int_equal(hb_store_org_create(s, "acme", &o), 0);
  assert_int_equal(hb_store_org_create(s, "globex", &o2), 0);
  assert_int_equal(hb_store_plugin_create(s, &o.id, "polls", &p), 0);
  assert_int_equal(hb_store_plugin_create(s, &o.id, "chat", &p2), 0);
  assert_int_equal(hb_store_plugin_create(s, &o2.id, "polls", &q), 0);
  assert_int_equal(hb_store_token_create(s, &o.id, &p.id, "a", tok, NULL), 0);
  assert_int_equal(hb_store_token_create(s, &o.id, &p2.id, "b", tok, NULL), 0);
  assert_int_equal(hb_store_token_create(s, &o2.id, &q.id, "c", tok, NULL), 0);
  int64_t now = (int64_t)time(NULL);
  assert_int_equal(hb_store_revoke_user_tokens(s, &p.id, "alice", now, NULL), 0);
  assert_int_equal(hb_store_revoke_user_tokens(s, &p2.id, "alice", now, NULL), 0);
  assert_int_equal(hb_store_revoke_user_tokens(s, &q.id, "alice", now, NULL), 0);

  /* A plugin takes its tokens and revocations with it. */
  assert_int_equal(hb_store_plugin_delete(s, &p.id), 0);
  assert_int_equal(hb_store_plugin_delete(s, &p.id), 1);
  assert_int_equal(hb_store_plugin_find(s, NULL, "polls", NULL), 1);
  assert_int_equal(hb_test_sql_int(l, "SELECT count(*) FROM api_tokens"), 2);
  assert_int_equal(hb_test_sql_int(l, "SELECT count(*) FROM conn_token_revocations"), 2);

  /* An organization takes its plugins, and their tokens and revocations. */
  assert_int_equal(hb_store_org_delete(s, &o.id), 0);
  assert_int_equal(hb_store_org_delete(s, &o.id), 1);
  assert_int_equal(hb_store_org_find(s, "acme", NULL), 1);
  assert_int_equal(hb_test_sql_int(l, "SELECT count(*) FROM plugins"), 1);
  assert_int_equal(hb_test_sql_int(l, "SELECT count(*) FROM api_tokens"), 1);
  assert_int_equal(hb_test_sql_int(l, "SELECT count(*) FROM conn_token_revocations"), 1);
  /* The other organization is untouched, and the name is free again. */
  assert_int_equal(hb_store_org_find(s, "globex", NULL), 0);
  assert_int_equal(hb_store_org_create(s, "acme", NULL), 0);
  hb_store_close(s);
}

static void test_every_write_bumps_the_counter(void **state) {
  hb_test_loc *l = *state;
  hb_org_row o;
  hb_plugin_row p;
  hb_token_row t;
  char tok[HB_MAX_API_TOKEN_BYTES + 1];
  hb_store *s = open_fx(state);
  long long v0 = hb_test_sql_int(l, "SELECT version FROM hubbub_changes");
  assert_int_equal(hb_store_org_create(s, "acme", &o), 0);
  assert_int_equal(hb_store_plugin_create(s, &o.id, "polls", &p), 0);
  assert_int_equal(hb_store_plugin_set_origins(s, &p.id, "https://a.example"), 0);
  assert_int_equal(hb_store_token_create(s, &o.id, &p.id, "a", tok, &t), 0);
  assert_int_equal(hb_store_token_revoke(s, &t.id), 0);
  assert_int_equal(hb_store_plugin_rotate_secret(s, &p.id, 0, NULL), 0);
  assert_int_equal(hb_store_plugin_retire_previous(s, &p.id, NULL), 0);
  assert_int_equal(hb_store_revoke_user_tokens(s, &p.id, "u", 100, NULL), 0);
  assert_int_equal(hb_store_plugin_delete(s, &p.id), 0);
  assert_int_equal(hb_store_org_delete(s, &o.id), 0);
  assert_int_equal(hb_test_sql_int(l, "SELECT version FROM hubbub_changes"), v0 + 10);
  /* A refused write changes nothing, the counter included. */
  assert_int_equal(hb_store_org_create(s, "x", NULL), 0);
  assert_int_equal(hb_store_org_create(s, "x", NULL), 1);
  assert_int_equal(hb_test_sql_int(l, "SELECT version FROM hubbub_changes"), v0 + 11);
  hb_store_close(s);
}

static void test_data_version_sees_other_connection(void **state) {
  int64_t v0, v1, v2, w0, w1;
  hb_store *a = open_fx(state), *b = open_fx(state);
  assert_int_equal(hb_store_data_version(a, &v0), 0);
  assert_int_equal(hb_store_data_version(a, &v1), 0);
  assert_true(v0 == v1); /* no change, no new version */
  assert_int_equal(hb_store_data_version(b, &w0), 0);
  assert_int_equal(hb_store_org_create(b, "acme", NULL), 0);
  assert_int_equal(hb_store_data_version(a, &v2), 0);
  assert_true(v2 != v1); /* another connection's commit */
  assert_int_equal(hb_store_data_version(b, &w1), 0);
  assert_true(w1 != w0); /* this connection's own commit */
  hb_store_close(a);
  hb_store_close(b);
}

typedef struct {
  const char *loc;
  int result;
  int64_t ms;
  atomic_bool ready; /* the watcher is waiting (PostgreSQL: LISTENing) */
} waiter;

static void *wait_thread(void *arg) {
  waiter *w = arg;
  hb_store *s = open_ok(w->loc);
  /* The first call of a PostgreSQL store connects, LISTENs and says
   * "perhaps"; SQLite's takes its baseline. Then it waits. */
  hb_store_wait_change(s, 50);
  atomic_store(&w->ready, true);
  int64_t t0 = mono_ms();
  w->result = hb_store_wait_change(s, 10000);
  w->ms = mono_ms() - t0;
  hb_store_close(s);
  return NULL;
}

static void test_wait_change(void **state) {
  hb_test_loc *l = *state;
  hb_store *s = open_fx(state), *w = open_fx(state);
  /* Nothing happens: the timeout, and 0. */
  int first = hb_store_wait_change(w, 50);
  assert_true(first == 0 || (first == 1 && l->pg)); /* pg: the first call LISTENs: "perhaps" */
  assert_int_equal(hb_store_wait_change(w, 200), 0);
  /* A refused write (rolled back) notifies nobody. */
  assert_int_equal(hb_store_org_create(s, "acme", NULL), 0);
  assert_int_equal(hb_store_wait_change(w, 2000), 1);
  assert_int_equal(hb_store_org_create(s, "acme", NULL), 1);
  assert_int_equal(hb_store_wait_change(w, 300), 0);
  /* A change made while nobody waited is reported at the next wait. */
  assert_int_equal(hb_store_org_create(s, "globex", NULL), 0);
  assert_int_equal(hb_store_wait_change(w, 2000), 1);
  assert_int_equal(hb_store_wait_change(w, 100), 0);
  hb_store_close(w);

  /* A watcher thread blocked in wait wakes up on a commit, well before its
   * timeout. */
  waiter wt = {l->loc, -9, 0, false};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, wait_thread, &wt), 0);
  for (int i = 0; i < 1000 && !atomic_load(&wt.ready); i++) {
    struct timespec ts = {0, 10 * 1000000L};
    nanosleep(&ts, NULL);
  }
  assert_true(atomic_load(&wt.ready));
  assert_int_equal(hb_store_org_create(s, "initech", NULL), 0);
  pthread_join(th, NULL);
  print_message("woke after %lld ms\n", (long long)wt.ms);
  assert_int_equal(wt.result, 1);
  assert_true(wt.ms < 10000);
  hb_store_close(s);
}

typedef struct {
  hb_org_row o;
  hb_plugin_row p;
  int orgs, plugins;
} snap;

static void snap_org(const hb_org_row *r, void *ud) { ((snap *)ud)->orgs++, (void)r; }
static void snap_plugin(const hb_plugin_row *r, void *ud) { ((snap *)ud)->plugins++, (void)r; }

static int read_both(hb_store *s, void *ud) {
  snap *sn = ud;
  int rc = hb_store_org_list(s, snap_org, sn);
  if (rc == 0) rc = hb_store_plugin_list(s, NULL, snap_plugin, sn);
  return rc;
}

static int refuse_write(hb_store *s, void *ud) {
  (void)ud;
  return hb_store_org_create(s, "inside", NULL);
}

static void test_read_snapshot(void **state) {
  snap sn;
  memset(&sn, 0, sizeof sn);
  hb_store *s = open_fx(state);
  assert_int_equal(hb_store_org_create(s, "acme", &sn.o), 0);
  assert_int_equal(hb_store_plugin_create(s, &sn.o.id, "polls", NULL), 0);
  assert_int_equal(hb_store_read(s, read_both, &sn), 0);
  assert_int_equal(sn.orgs, 1);
  assert_int_equal(sn.plugins, 1);
  assert_int_equal(hb_store_read(s, refuse_write, NULL), -1); /* no writes in a read */
  assert_int_equal(hb_store_org_create(s, "after", NULL), 0);  /* and the store is usable after */
  hb_store_close(s);
}

typedef struct {
  const char *loc;
  int open_rc, create_rc;
} opener;

static void *open_thread(void *arg) {
  opener *o = arg;
  hb_store *s = NULL;
  char err[512];
  o->open_rc = hb_store_open(&s, o->loc, err, sizeof err);
  if (o->open_rc != 0) {
    fprintf(stderr, "open: %s\n", err);
    return NULL;
  }
  o->create_rc = hb_store_org_create(s, "same-name", NULL);
  hb_store_close(s);
  return NULL;
}

static void test_concurrent_open_and_unique(void **state) {
  hb_test_loc *l = *state;
  enum { N = 6 };
  opener o[N];
  pthread_t th[N];
  /* Nodes starting together on an empty database: each migrates or finds
   * the work done; the schema is created once; one name, one winner. */
  for (int i = 0; i < N; i++) {
    o[i] = (opener){l->loc, -9, -9};
    assert_int_equal(pthread_create(&th[i], NULL, open_thread, &o[i]), 0);
  }
  int won = 0, lost = 0;
  for (int i = 0; i < N; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(o[i].open_rc, 0);
    if (o[i].create_rc == 0) won++;
    else if (o[i].create_rc == 1) lost++;
    else if (o[i].create_rc == HB_STORE_UNAVAILABLE && !l->pg) lost++; /* SQLite busy past the timeout */
  }
  assert_int_equal(won, 1);
  assert_int_equal(won + lost, N);
  if (l->pg) assert_int_equal(hb_test_sql_int(l, "SELECT count(*) FROM hubbub_schema_migrations"), hb_store_schema_latest());
  assert_int_equal(hb_test_sql_int(l, "SELECT count(*) FROM organizations"), 1);
}

static void test_import(void **state) {
  hb_test_loc *l = *state;
  hb_store_import_result res;
  hb_org_row orgs[2];
  hb_plugin_row plugins[2];
  hb_token_row tokens[1];
  hb_revocation_row revs[1];
  memset(orgs, 0, sizeof orgs);
  memset(plugins, 0, sizeof plugins);
  memset(tokens, 0, sizeof tokens);
  memset(revs, 0, sizeof revs);
  hb_uuid_v4(&orgs[0].id);
  snprintf(orgs[0].name, sizeof orgs[0].name, "acme");
  orgs[0].created_at = 1000;
  hb_uuid_v4(&orgs[1].id);
  snprintf(orgs[1].name, sizeof orgs[1].name, "globex");
  orgs[1].created_at = 1001;
  hb_uuid_v4(&plugins[0].id);
  plugins[0].org_id = orgs[0].id;
  snprintf(plugins[0].name, sizeof plugins[0].name, "polls");
  snprintf(plugins[0].signing_secret, sizeof plugins[0].signing_secret, "hbs_imported");
  snprintf(plugins[0].signing_kid, sizeof plugins[0].signing_kid, "kid1");
  snprintf(plugins[0].previous_secret, sizeof plugins[0].previous_secret, "hbs_older");
  snprintf(plugins[0].previous_kid, sizeof plugins[0].previous_kid, "kid0");
  plugins[0].previous_retire_at = 2000000000;
  plugins[0].created_at = plugins[0].secret_created_at = 1002;
  hb_uuid_v4(&plugins[1].id);
  plugins[1].org_id = orgs[1].id;
  snprintf(plugins[1].name, sizeof plugins[1].name, "chat"); /* no secret: one is made */
  plugins[1].created_at = 1003;
  hb_uuid_v4(&tokens[0].id);
  tokens[0].org_id = orgs[0].id;
  tokens[0].plugin_id = plugins[0].id;
  snprintf(tokens[0].name, sizeof tokens[0].name, "backend");
  hb_store_hash_token("hbk_x", 5, tokens[0].hash);
  tokens[0].created_at = 1004;
  tokens[0].expires_at = 2000000000;
  revs[0].plugin_id = plugins[0].id;
  snprintf(revs[0].user_id, sizeof revs[0].user_id, "alice");
  revs[0].revoked_before = 1005;
  revs[0].created_at = 1006;
  hb_store_import_set set = {orgs, 2, plugins, 2, tokens, 1, revs, 1};

  hb_store *s = open_fx(state);
  assert_int_equal(hb_store_import(s, &set, &res), 0);
  assert_int_equal(res.created[0], 2);
  assert_int_equal(res.created[1], 2);
  assert_int_equal(res.created[2], 1);
  assert_int_equal(res.created[3], 1);
  assert_int_equal(res.new_secrets, 1);
  hb_plugin_row f;
  assert_int_equal(hb_store_plugin_find(s, &orgs[0].id, "polls", &f), 0);
  assert_string_equal(f.signing_secret, "hbs_imported");
  assert_string_equal(f.previous_kid, "kid0");
  assert_int_equal(f.previous_retire_at, 2000000000);
  assert_int_equal(hb_store_plugin_find(s, &orgs[1].id, "chat", &f), 0);
  assert_memory_equal(f.signing_secret, "hbs_", 4);

  /* The same again: all unchanged (the secret-less plugin keeps the secret
   * it was given). */
  assert_int_equal(hb_store_import(s, &set, &res), 0);
  assert_int_equal(res.created[0] + res.created[1] + res.created[2] + res.created[3], 0);
  assert_int_equal(res.unchanged[0] + res.unchanged[1] + res.unchanged[2] + res.unchanged[3], 6);

  /* A conflict anywhere changes nothing, and says where. */
  long long v0 = hb_test_sql_int(l, "SELECT version FROM hubbub_changes");
  hb_org_row extra[3];
  memcpy(extra, orgs, sizeof orgs);
  hb_uuid_v4(&extra[2].id);
  snprintf(extra[2].name, sizeof extra[2].name, "initech");
  extra[2].created_at = 5;
  tokens[0].revoked_at = 7; /* the token now differs */
  hb_store_import_set bad = {extra, 3, plugins, 2, tokens, 1, revs, 1};
  assert_int_equal(hb_store_import(s, &bad, &res), 1);
  assert_string_equal(res.kind, "api_tokens");
  assert_int_equal(res.index, 0);
  assert_string_equal(res.field, "id");
  assert_int_equal(hb_store_org_find(s, "initech", NULL), 1); /* rolled back */
  assert_int_equal(hb_test_sql_int(l, "SELECT version FROM hubbub_changes"), v0);
  tokens[0].revoked_at = 0;

  /* A name taken by another id. */
  hb_uuid_v4(&extra[2].id);
  snprintf(extra[2].name, sizeof extra[2].name, "acme");
  assert_int_equal(hb_store_import(s, &bad, &res), 1);
  assert_string_equal(res.kind, "organizations");
  assert_int_equal(res.index, 2);
  assert_string_equal(res.field, "name");
  print_message("conflict: %s\n", res.why);
  hb_store_close(s);
}

static void test_location_errors(void **state) {
  hb_test_loc *l = *state;
  char err[512], loc[1200];
  hb_store *s = NULL;
  const struct {
    const char *loc, *expect;
  } bad[] = {
      {"", "empty"},
      {"mysql://localhost/db", "unknown store location scheme 'mysql'"},
      {"postgres:localhost", "malformed store location"},
      {"sqlite:", "malformed store location"},
      {"sqlite://x.db", "malformed store location"},
      {"sqlite:/nonexistent-dir-hb/x.db", "does not exist"},
      {"postgresql://u@h:notaport/db", "malformed PostgreSQL URI"},
      {"postgres://u@h/db?nosuchparam=1", "malformed PostgreSQL URI"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = '\0';
    assert_true(hb_store_open(&s, bad[i].loc, err, sizeof err) < 0);
    assert_null(s);
    print_message("'%s': %s\n", bad[i].loc, err);
    if (!strstr(err, bad[i].expect)) fail_msg("'%s' said '%s', expected '%s'", bad[i].loc, err, bad[i].expect);
  }
  snprintf(loc, sizeof loc, "sqlite:%s", l->dir);
  assert_int_equal(hb_store_open(&s, loc, err, sizeof err), -1);
  assert_non_null(strstr(err, "is a directory"));
  /* sqlite:FILE names the file itself. */
  snprintf(loc, sizeof loc, "sqlite:%s/other.db", l->dir);
  s = open_ok(loc);
  assert_string_equal(hb_store_backend(s), "sqlite");
  hb_store_close(s);
  snprintf(loc, sizeof loc, "%s/other.db", l->dir);
  assert_int_equal(access(loc, F_OK), 0);
}

static void test_location_describe(void **state) {
  (void)state;
  char out[256];
  const char *cases[][2] = {
      {"/var/lib/hubbub", "/var/lib/hubbub"},
      {"postgres://hubbub:s3cret@db.example:5432/hubbub", "postgres://hubbub:***@db.example:5432/hubbub"},
      {"postgresql://hubbub@db/hubbub?sslmode=require", "postgresql://hubbub@db/hubbub?sslmode=require"},
      {"postgresql://db/hubbub?user=x&password=s3cret&sslmode=require",
       "postgresql://db/hubbub?user=x&password=***&sslmode=require"},
      {"postgresql://a:b@c@d/e", "postgresql://a:***@d/e"},
      {"postgresql://", "postgresql://"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hb_store_location_describe(cases[i][0], out, sizeof out);
    assert_string_equal(out, cases[i][1]);
  }
  hb_store_location_describe("postgres://u:pw@host/db", out, 12); /* truncated, terminated */
  assert_int_equal(strlen(out), 11);
}

/* ---- SQLite only ---------------------------------------------------------- */

static void test_not_a_database(void **state) {
  hb_test_loc *l = *state;
  char path[1100], err[512] = "";
  hb_store *s = NULL;
  if (l->pg) skip();
  snprintf(path, sizeof path, "%s/%s", l->dir, HB_STORE_FILE);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  for (int i = 0; i < 1000; i++) fputs("this is not an SQLite database. ", f);
  fclose(f);
  assert_int_equal(hb_store_open(&s, l->dir, err, sizeof err), -1);
  assert_null(s);
  print_message("error: %s\n", err);
  assert_non_null(strstr(err, "not a hubbub database or is corrupt"));
}

static void test_corrupt_database(void **state) {
  hb_test_loc *l = *state;
  char path[1100], err[512] = "";
  if (l->pg) skip();
  hb_store *s = open_ok(l->dir);
  for (int i = 0; i < 200; i++) {
    char name[64];
    snprintf(name, sizeof name, "org-%03d-with-a-longer-name-to-fill-pages", i);
    assert_int_equal(hb_store_org_create(s, name, NULL), 0);
  }
  hb_store_close(s); /* checkpoints the WAL into the main file */
  /* Scribble over the second page onwards, keeping the header valid. */
  snprintf(path, sizeof path, "%s/%s", l->dir, HB_STORE_FILE);
  FILE *f = fopen(path, "r+b");
  assert_non_null(f);
  fseek(f, 4096, SEEK_SET);
  for (int i = 0; i < 4096 * 3; i++) fputc(0x5a, f);
  fclose(f);
  assert_int_equal(hb_store_open(&s, l->dir, err, sizeof err), -1);
  print_message("error: %s\n", err);
  assert_non_null(strstr(err, "corrupt"));
}

/* Open `dir` as an unprivileged user (root writes anywhere, so a root test
 * run drops to "nobody" in a child) and check the error says `expect`. */
static void expect_open_error_unprivileged(const char *dir, const char *expect) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char err[512] = "";
    hb_store *s = NULL;
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(3);
    if (hb_store_open(&s, dir, err, sizeof err) != -1) _exit(1);
    fprintf(stderr, "error: %s\n", err);
    _exit(strstr(err, expect) ? 0 : 2);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_unwritable(void **state) {
  hb_test_loc *l = *state;
  char dir[1100], open_dir[1100], path[1200];
  if (l->pg) skip();
  snprintf(dir, sizeof dir, "%s/ro", l->dir);
  snprintf(open_dir, sizeof open_dir, "%s/rw", l->dir);
  assert_int_equal(chmod(l->dir, 0755), 0);
  assert_int_equal(mkdir(dir, 0555), 0);
  expect_open_error_unprivileged(dir, "not writable");

  /* A writable directory holding a database the user may only read. */
  hb_store *s = open_ok(open_dir);
  hb_store_close(s);
  snprintf(path, sizeof path, "%s/%s", open_dir, HB_STORE_FILE);
  assert_int_equal(chmod(open_dir, 0777), 0);
  assert_int_equal(chmod(path, geteuid() == 0 ? 0644 : 0444), 0);
  expect_open_error_unprivileged(open_dir, "not readable and writable");
  chmod(dir, 0700);
}

static void test_data_dir_is_a_file(void **state) {
  hb_test_loc *l = *state;
  char dir[1100], err[512] = "";
  hb_store *s = NULL;
  if (l->pg) skip();
  snprintf(dir, sizeof dir, "%s/file", l->dir);
  FILE *f = fopen(dir, "w");
  fclose(f);
  assert_int_equal(hb_store_open(&s, dir, err, sizeof err), -1);
  assert_non_null(strstr(err, "not a directory"));
}

static void test_locked(void **state) {
  hb_test_loc *l = *state;
  char path[1100], err[512] = "";
  sqlite3 *db;
  hb_store *s = NULL;
  if (l->pg) skip();
  /* Another process holds an exclusive lock on a database that still needs
   * migrating: open must give up after the busy timeout and say why. */
  snprintf(path, sizeof path, "%s/%s", l->dir, HB_STORE_FILE);
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "CREATE TABLE x(y); BEGIN EXCLUSIVE; INSERT INTO x VALUES (1);", NULL, NULL, NULL),
                   SQLITE_OK);
  assert_int_equal(hb_store_open(&s, l->dir, err, sizeof err), -1);
  print_message("error: %s\n", err);
  assert_non_null(strstr(err, "locked"));
  sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close(db);
}

static void test_write_while_locked_is_unavailable(void **state) {
  hb_test_loc *l = *state;
  char path[1100];
  sqlite3 *db;
  if (l->pg) skip();
  hb_store *s = open_ok(l->dir);
  snprintf(path, sizeof path, "%s/%s", l->dir, HB_STORE_FILE);
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
  /* Another writer holds the lock past the busy timeout: "try again". */
  assert_int_equal(hb_store_org_create(s, "acme", NULL), HB_STORE_UNAVAILABLE);
  sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close(db);
  assert_int_equal(hb_store_org_create(s, "acme", NULL), 0);
  hb_store_close(s);
}

/* Only hb_store_open creates: opening an existing store refuses a
 * directory without one and creates nothing, not even the directory. */
static void test_open_existing(void **state) {
  hb_test_loc *l = *state;
  char dir[1100], path[1200], err[512] = "";
  hb_store *s = NULL;
  if (l->pg) skip();
  snprintf(dir, sizeof dir, "%s/not-there", l->dir);
  assert_int_equal(hb_store_open_existing(&s, dir, err, sizeof err), HB_STORE_NONE);
  assert_null(s);
  assert_non_null(strstr(err, "no store"));
  assert_int_equal(access(dir, F_OK), -1);
  assert_int_equal(hb_store_open_existing(&s, l->dir, err, sizeof err), HB_STORE_NONE);
  snprintf(path, sizeof path, "%s/%s", l->dir, HB_STORE_FILE);
  assert_int_equal(access(path, F_OK), -1);
  /* sqlite:FILE alike */
  char loc[1300];
  snprintf(loc, sizeof loc, "sqlite:%s", path);
  assert_int_equal(hb_store_open_existing(&s, loc, err, sizeof err), HB_STORE_NONE);
  assert_int_equal(access(path, F_OK), -1);
  hb_store_close(open_ok(l->dir));
  assert_int_equal(hb_store_open_existing(&s, l->dir, err, sizeof err), 0);
  hb_store_close(s);
  assert_int_equal(hb_store_open_existing(&s, loc, err, sizeof err), 0);
  hb_store_close(s);
}

/* SQLite keeps using a file deleted under it: the check sees it. */
static void test_check_file(void **state) {
  hb_test_loc *l = *state;
  char path[1100], moved[1100], side[1200], err[512] = "";
  if (l->pg) skip();
  hb_store *s = open_ok(l->dir), *again = NULL;
  snprintf(path, sizeof path, "%s/%s", l->dir, HB_STORE_FILE);
  snprintf(moved, sizeof moved, "%s/moved.db", l->dir);
  assert_int_equal(hb_store_check_file(s), HB_STORE_FILE_OK);
  assert_int_equal(rename(path, moved), 0);
  assert_int_equal(hb_store_check_file(s), HB_STORE_FILE_MISSING);
  assert_int_equal(hb_store_org_create(s, "still-works", NULL), 0); /* the orphan */
  /* A new database next to the old one's WAL is refused, with the reason. */
  assert_int_equal(hb_store_open(&again, l->dir, err, sizeof err), -1);
  print_message("error: %s\n", err);
  assert_non_null(strstr(err, "-wal or -shm file is still there"));
  assert_int_equal(access(path, F_OK), -1);
  for (int i = 0; i < 2; i++) {
    snprintf(side, sizeof side, "%s%s", path, i ? "-shm" : "-wal");
    unlink(side);
  }
  hb_store_close(open_ok(l->dir)); /* another file at the path */
  assert_int_equal(hb_store_check_file(s), HB_STORE_FILE_REPLACED);
  hb_store_close(s);
}

/* ---- PostgreSQL only ------------------------------------------------------ */

/* test/pg-harness.sh pause|resume: stop the server (keeping its data and
 * port) or start it again. */
static void harness(const char *verb) {
  const char *script = getenv("HB_PG_HARNESS"), *dir = getenv("HB_PG_DIR");
  char cmd[2048];
  assert_non_null(script);
  assert_non_null(dir);
  snprintf(cmd, sizeof cmd, "'%s' %s '%s'", script, verb, dir);
  assert_int_equal(system(cmd), 0);
}

static void test_pg_unreachable(void **state) {
  hb_test_loc *l = *state;
  char err[512] = "";
  hb_store *s = NULL;
  if (!l->pg) skip();
  /* Nothing listens on port 1: refused at once; the password stays out of
   * the message. */
  int64_t t0 = mono_ms();
  assert_int_equal(hb_store_open(&s, "postgresql://hubbub:topsecret@127.0.0.1:1/hubbub", err, sizeof err),
                   HB_STORE_UNAVAILABLE);
  print_message("error (%lld ms): %s\n", (long long)(mono_ms() - t0), err);
  assert_non_null(strstr(err, "cannot connect to PostgreSQL at postgresql://hubbub:***@127.0.0.1:1/hubbub"));
  assert_null(strstr(err, "topsecret"));
  /* A wrong password is refused too (and not echoed). */
  char uri[1100];
  snprintf(uri, sizeof uri, "%s", l->loc);
  char *at = strchr(uri + 13, '@'), *colon = strchr(uri + 13, ':');
  assert_true(at && colon && colon < at);
  char wrong[1200];
  snprintf(wrong, sizeof wrong, "%.*s:wrongpassword%s", (int)(colon - uri), uri, at);
  assert_int_equal(hb_store_open(&s, wrong, err, sizeof err), HB_STORE_UNAVAILABLE);
  print_message("error: %s\n", err);
  assert_null(strstr(err, "wrongpassword"));
}

static void test_pg_outage_and_recovery(void **state) {
  hb_test_loc *l = *state;
  char err[512];
  hb_store *s = NULL, *w = NULL;
  hb_org_row o;
  int64_t v;
  if (!l->pg) skip();
  assert_int_equal(hb_store_open(&s, l->loc, err, sizeof err), 0);
  assert_int_equal(hb_store_open(&w, l->loc, err, sizeof err), 0);
  assert_int_equal(hb_store_org_create(s, "before", &o), 0);
  assert_int_equal(hb_store_wait_change(w, 100), 1); /* LISTENing now */

  harness("pause");
  /* Down: every call fails fast as "unavailable", reads and writes. */
  int64_t t0 = mono_ms();
  assert_int_equal(hb_store_org_find(s, "before", NULL), HB_STORE_UNAVAILABLE);
  assert_int_equal(hb_store_org_create(s, "during", NULL), HB_STORE_UNAVAILABLE);
  assert_int_equal(hb_store_data_version(s, &v), HB_STORE_UNAVAILABLE);
  int64_t took = mono_ms() - t0;
  print_message("three calls while down: %lld ms\n", (long long)took);
  /* Bounded by the connect timeout (2 s) per call at worst; refused
   * connections come back at once. Generous: the machine is shared. */
  assert_true(took < 3 * (HB_STORE_PG_CONNECT_TIMEOUT_S * 1000 + 2000));
  /* The watcher says so too, after its timeout (so a loop does not spin). */
  assert_int_equal(hb_store_wait_change(w, 300), HB_STORE_UNAVAILABLE);

  harness("resume");
  /* Back: the same store works on its next call, without reopening. */
  assert_int_equal(hb_store_org_find(s, "before", NULL), 0);
  assert_int_equal(hb_store_org_create(s, "after", NULL), 0);
  assert_int_equal(hb_store_org_find(s, "during", NULL), 1); /* the failed write left nothing */
  /* The watcher reconnects and says "perhaps changed". */
  int r = hb_store_wait_change(w, 2000);
  if (r == HB_STORE_UNAVAILABLE) r = hb_store_wait_change(w, 2000);
  assert_int_equal(r, 1);
  hb_store_close(s);
  hb_store_close(w);
}

/* The pid of the server process serving the store's statement connection
 * (application_name hubbub, not in LISTEN; the only store open). */
static long backend_pid(hb_test_loc *l) {
  char sql[512];
  snprintf(sql, sizeof sql, "%s",
           "SELECT pid FROM pg_stat_activity WHERE application_name = 'hubbub' AND datname = current_database()"
           " AND query NOT LIKE 'LISTEN%%' AND pid <> pg_backend_pid() ORDER BY backend_start LIMIT 1");
  return (long)hb_test_sql_int(l, sql);
}

static void test_pg_frozen_server_times_out(void **state) {
  hb_test_loc *l = *state;
  hb_store_options opt = {.reply_timeout_ms = 1000};
  char err[512];
  hb_store *s = NULL;
  if (!l->pg) skip();
  /* Migrated first with the default timeout, so that opening with a short
   * one is two quick reads even on a loaded machine. */
  hb_store_close(open_fx(state));
  int rc = hb_store_open_with(&s, l->loc, &opt, err, sizeof err);
  if (rc != 0) fail_msg("open: %s", err);
  assert_int_equal(hb_store_org_create(s, "acme", NULL), 0);

  /* A statement that waits on a lock is cancelled by the server's
   * statement_timeout: unavailable, and the connection is kept. */
  PGconn *blocker = PQconnectdb(l->loc);
  assert_int_equal(PQstatus(blocker), CONNECTION_OK);
  PQclear(PQexec(blocker, "BEGIN; LOCK TABLE organizations IN ACCESS EXCLUSIVE MODE"));
  int64_t t0 = mono_ms();
  assert_int_equal(hb_store_org_find(s, "acme", NULL), HB_STORE_UNAVAILABLE);
  print_message("locked out: %lld ms\n", (long long)(mono_ms() - t0));
  PQclear(PQexec(blocker, "ROLLBACK"));
  assert_int_equal(hb_store_org_find(s, "acme", NULL), 0);

  /* A server process that stops answering (SIGSTOP): the client's own
   * deadline gives up, drops the connection, and the next call connects
   * afresh. */
  long pid = backend_pid(l);
  assert_true(pid > 0);
  assert_int_equal(kill((pid_t)pid, SIGSTOP), 0);
  t0 = mono_ms();
  rc = hb_store_org_find(s, "acme", NULL);
  int64_t took = mono_ms() - t0;
  kill((pid_t)pid, SIGCONT);
  print_message("frozen: %d after %lld ms\n", rc, (long long)took);
  assert_int_equal(rc, HB_STORE_UNAVAILABLE);
  assert_true(took >= opt.reply_timeout_ms - 50);
  assert_int_equal(hb_store_org_find(s, "acme", NULL), 0);
  PQfinish(blocker);
  hb_store_close(s);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_migrates_from_empty),
      T(test_migrates_nested_dir_private),
      T(test_reopen_is_idempotent),
      T(test_migrates_from_v1),
      T(test_newer_schema_refused),
      T(test_orgs),
      T(test_list_in_creation_order),
      T(test_plugins),
      T(test_tokens),
      T(test_token_expiry),
      T(test_rotate_and_retire),
      T(test_revocations),
      T(test_delete_cascades),
      T(test_every_write_bumps_the_counter),
      T(test_data_version_sees_other_connection),
      T(test_wait_change),
      T(test_read_snapshot),
      T(test_concurrent_open_and_unique),
      T(test_import),
      T(test_location_errors),
      T(test_location_describe),
      T(test_not_a_database),
      T(test_corrupt_database),
      T(test_unwritable),
      T(test_data_dir_is_a_file),
      T(test_locked),
      T(test_write_while_locked_is_unavailable),
      T(test_open_existing),
      T(test_check_file),
      T(test_pg_unreachable),
      T(test_pg_outage_and_recovery),
      T(test_pg_frozen_server_times_out),
  };
  print_message("store backend: %s\n", hb_test_pg_mode() ? "postgresql" : "sqlite");
  return cmocka_run_group_tests(tests, NULL, NULL);
}
