/* test_store.c - the SQLite store: migrations, rows, token hashes, open errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hubbub/store.h"

/* ---- fixtures ----------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

static int setup_dir(void **state) {
  char *dir = strdup("/tmp/hb_test_store.XXXXXX");
  assert_non_null(mkdtemp(dir));
  *state = dir;
  return 0;
}

static int teardown_dir(void **state) {
  nftw(*state, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(*state);
  return 0;
}

static hb_store *open_ok(const char *dir) {
  hb_store *s = NULL;
  char err[512] = "";
  int rc = hb_store_open(&s, dir, err, sizeof err);
  if (rc != 0) fail_msg("open %s: %s", dir, err);
  assert_non_null(s);
  return s;
}

static int sql_int(const char *dir, const char *sql) {
  char path[1024];
  sqlite3 *db;
  sqlite3_stmt *st;
  int v = -1;
  snprintf(path, sizeof path, "%s/%s", dir, HB_STORE_FILE);
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

static void sql_exec(const char *dir, const char *sql) {
  char path[1024];
  sqlite3 *db;
  snprintf(path, sizeof path, "%s/%s", dir, HB_STORE_FILE);
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
}

static void count_cb(const void *row, void *ud) {
  (void)row;
  (*(int *)ud)++;
}

/* ---- tests -------------------------------------------------------------- */

static void test_migrates_from_empty(void **state) {
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/nested/data", (char *)*state); /* created with its parents */
  hb_store *s = open_ok(dir);
  hb_store_close(s);
  assert_int_equal(sql_int(dir, "PRAGMA user_version"), 1);
  assert_int_equal(sql_int(dir, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN "
                                "('organizations','plugins','api_tokens')"),
                   3);
  char path[1100];
  struct stat st;
  snprintf(path, sizeof path, "%s/%s", dir, HB_STORE_FILE);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 077, 0); /* the file holds signing secrets */
}

static void test_reopen_is_idempotent(void **state) {
  const char *dir = *state;
  hb_org_row org, found;
  hb_store *s = open_ok(dir);
  assert_int_equal(hb_store_org_create(s, "acme", &org), 0);
  hb_store_close(s);
  s = open_ok(dir);
  hb_store_close(s);
  s = open_ok(dir);
  assert_int_equal(hb_store_org_find(s, "acme", &found), 0);
  assert_true(hb_uuid_eq(&org.id, &found.id));
  hb_store_close(s);
  assert_int_equal(sql_int(dir, "PRAGMA user_version"), 1);
}

static void test_orgs(void **state) {
  hb_org_row a, b, f;
  char idbuf[HB_UUID_STR_BYTES];
  int n = 0;
  hb_store *s = open_ok(*state);
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

static void test_plugins(void **state) {
  hb_org_row o1, o2;
  hb_plugin_row p, q, f;
  char idbuf[HB_UUID_STR_BYTES];
  int n = 0;
  hb_store *s = open_ok(*state);
  assert_int_equal(hb_store_org_create(s, "acme", &o1), 0);
  assert_int_equal(hb_store_org_create(s, "globex", &o2), 0);
  assert_int_equal(hb_store_plugin_create(s, &o1.id, "polls", &p), 0);
  assert_true(hb_uuid_eq(&p.org_id, &o1.id));
  assert_memory_equal(p.signing_secret, "hbs_", 4);
  assert_int_equal(strlen(p.signing_secret), 4 + 43); /* base64url of 32 bytes, unpadded */
  assert_null(strpbrk(p.signing_secret, "+/="));
  assert_int_equal(hb_store_plugin_create(s, &o1.id, "polls", NULL), 1);
  assert_int_equal(hb_store_plugin_create(s, &o2.id, "polls", &q), 0); /* unique per org only */
  assert_string_not_equal(p.signing_secret, q.signing_secret);

  assert_int_equal(hb_store_plugin_find(s, &o1.id, "polls", &f), 0);
  assert_true(hb_uuid_eq(&f.id, &p.id));
  assert_string_equal(f.signing_secret, p.signing_secret);
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

  assert_int_equal(hb_store_plugin_list(s, NULL, (void (*)(const hb_plugin_row *, void *))count_cb, &n), 0);
  assert_int_equal(n, 2);
  n = 0;
  assert_int_equal(hb_store_plugin_list(s, &o2.id, (void (*)(const hb_plugin_row *, void *))count_cb, &n), 0);
  assert_int_equal(n, 1);
  hb_store_close(s);
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

static void test_tokens(void **state) {
  const char *dir = *state;
  hb_org_row o;
  hb_plugin_row p;
  hb_token_row t, t2;
  char tok[HB_MAX_API_TOKEN_BYTES + 1], tok2[HB_MAX_API_TOKEN_BYTES + 1];
  uint8_t h[HB_TOKEN_HASH_BYTES];
  token_tally tt = {0};
  hb_store *s = open_ok(dir);
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

  assert_int_equal(hb_store_token_create(s, &o.id, &p.id, "backend", tok2, NULL), 1); /* name taken */
  assert_int_equal(hb_store_token_create(s, &p.id, &p.id, "x", tok2, NULL), -1);        /* no such org */
  hb_org_row other;
  assert_int_equal(hb_store_org_create(s, "globex", &other), 0);
  assert_int_equal(hb_store_token_create(s, &other.id, &p.id, "x", tok2, NULL), -1); /* plugin of acme */
  assert_int_equal(hb_store_token_create(s, &o.id, &p.id, NULL, tok2, &t2), 0);    /* generated name */
  assert_true(strncmp(t2.name, "token-", 6) == 0);
  assert_string_not_equal(tok, tok2);

  /* Only the hash reaches the disk: neither the token nor its random part
   * is in the database or its write-ahead log. */
  char path[1100], wal[1100];
  snprintf(path, sizeof path, "%s/%s", dir, HB_STORE_FILE);
  snprintf(wal, sizeof wal, "%s/%s-wal", dir, HB_STORE_FILE);
  assert_false(file_contains(path, tok + 4, strlen(tok) - 4));
  assert_false(file_contains(wal, tok + 4, strlen(tok) - 4));
  assert_true(file_contains(path, h, sizeof h) || file_contains(wal, h, sizeof h));

  assert_int_equal(hb_store_token_revoke(s, &t.id), 0);
  assert_int_equal(hb_store_token_revoke(s, &t.id), 0); /* idempotent */
  assert_int_equal(hb_store_token_revoke(s, &o.id), 1); /* no such token */
  assert_int_equal(hb_store_token_list(s, tally, &tt), 0);
  assert_int_equal(tt.total, 2);
  assert_int_equal(tt.revoked, 1);
  hb_store_close(s);
  assert_int_equal(sql_int(dir, "SELECT count(*) FROM api_tokens WHERE revoked_at IS NOT NULL"), 1);
}

static void test_data_version_sees_other_connection(void **state) {
  int64_t v0, v1, v2, w0, w1;
  hb_store *a = open_ok(*state), *b = open_ok(*state);
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

static void test_not_a_database(void **state) {
  char path[1100], err[512] = "";
  hb_store *s = NULL;
  snprintf(path, sizeof path, "%s/%s", (char *)*state, HB_STORE_FILE);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  for (int i = 0; i < 1000; i++) fputs("this is not an SQLite database. ", f);
  fclose(f);
  assert_int_equal(hb_store_open(&s, *state, err, sizeof err), -1);
  assert_null(s);
  print_message("error: %s\n", err);
  assert_non_null(strstr(err, "not a hubbub database or is corrupt"));
}

static void test_corrupt_database(void **state) {
  const char *dir = *state;
  char path[1100], err[512] = "";
  hb_store *s = open_ok(dir);
  for (int i = 0; i < 200; i++) {
    char name[64];
    snprintf(name, sizeof name, "org-%03d-with-a-longer-name-to-fill-pages", i);
    assert_int_equal(hb_store_org_create(s, name, NULL), 0);
  }
  hb_store_close(s); /* checkpoints the WAL into the main file */
  /* Scribble over the second page onwards, keeping the header valid. */
  snprintf(path, sizeof path, "%s/%s", dir, HB_STORE_FILE);
  FILE *f = fopen(path, "r+b");
  assert_non_null(f);
  fseek(f, 4096, SEEK_SET);
  for (int i = 0; i < 4096 * 3; i++) fputc(0x5a, f);
  fclose(f);
  assert_int_equal(hb_store_open(&s, dir, err, sizeof err), -1);
  print_message("error: %s\n", err);
  assert_non_null(strstr(err, "corrupt"));
}

static void test_newer_schema(void **state) {
  char err[512] = "";
  hb_store *s = open_ok(*state);
  hb_store_close(s);
  sql_exec(*state, "PRAGMA user_version = 99");
  assert_int_equal(hb_store_open(&s, *state, err, sizeof err), -1);
  assert_non_null(strstr(err, "newer than this hubbub"));
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
  char dir[1100], open_dir[1100], path[1200];
  snprintf(dir, sizeof dir, "%s/ro", (char *)*state);
  snprintf(open_dir, sizeof open_dir, "%s/rw", (char *)*state);
  assert_int_equal(chmod(*state, 0755), 0);
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
  char dir[1100], err[512] = "";
  hb_store *s = NULL;
  snprintf(dir, sizeof dir, "%s/file", (char *)*state);
  FILE *f = fopen(dir, "w");
  fclose(f);
  assert_int_equal(hb_store_open(&s, dir, err, sizeof err), -1);
  assert_non_null(strstr(err, "not a directory"));
}

static void test_locked(void **state) {
  char path[1100], err[512] = "";
  sqlite3 *db;
  hb_store *s = NULL;
  /* Another process holds an exclusive lock on a database that still needs
   * migrating: open must give up after the busy timeout and say why. */
  snprintf(path, sizeof path, "%s/%s", (char *)*state, HB_STORE_FILE);
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "CREATE TABLE x(y); BEGIN EXCLUSIVE; INSERT INTO x VALUES (1);", NULL,
                                NULL, NULL),
                   SQLITE_OK);
  assert_int_equal(hb_store_open(&s, *state, err, sizeof err), -1);
  print_message("error: %s\n", err);
  assert_non_null(strstr(err, "locked"));
  sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close(db);
}

/* Only hb_store_open creates: opening an existing store refuses a
 * directory without one and creates nothing, not even the directory. */
static void test_open_existing(void **state) {
  char dir[1100], err[512] = "";
  hb_store *s = NULL;
  snprintf(dir, sizeof dir, "%s/not-there", (char *)*state);
  assert_int_equal(hb_store_open_existing(&s, dir, err, sizeof err), HB_STORE_NONE);
  assert_null(s);
  assert_non_null(strstr(err, "no store"));
  assert_int_equal(access(dir, F_OK), -1);
  assert_int_equal(hb_store_open_existing(&s, *state, err, sizeof err), HB_STORE_NONE);
  char path[1200];
  snprintf(path, sizeof path, "%s/%s", (char *)*state, HB_STORE_FILE);
  assert_int_equal(access(path, F_OK), -1);
  hb_store_close(open_ok(*state));
  assert_int_equal(hb_store_open_existing(&s, *state, err, sizeof err), 0);
  hb_store_close(s);
}

/* SQLite keeps using a file deleted under it: the check sees it. */
static void test_check_file(void **state) {
  char path[1100], moved[1100], side[1200], err[512] = "";
  hb_store *s = open_ok(*state), *again = NULL;
  snprintf(path, sizeof path, "%s/%s", (char *)*state, HB_STORE_FILE);
  snprintf(moved, sizeof moved, "%s/moved.db", (char *)*state);
  assert_int_equal(hb_store_check_file(s), HB_STORE_FILE_OK);
  assert_int_equal(rename(path, moved), 0);
  assert_int_equal(hb_store_check_file(s), HB_STORE_FILE_MISSING);
  assert_int_equal(hb_store_org_create(s, "still-works", NULL), 0); /* the orphan */
  /* A new database next to the old one's WAL is refused, with the reason. */
  assert_int_equal(hb_store_open(&again, *state, err, sizeof err), -1);
  print_message("error: %s\n", err);
  assert_non_null(strstr(err, "-wal or -shm file is still there"));
  assert_int_equal(access(path, F_OK), -1);
  for (int i = 0; i < 2; i++) {
    snprintf(side, sizeof side, "%s%s", path, i ? "-shm" : "-wal");
    unlink(side);
  }
  hb_store_close(open_ok(*state)); /* another file at the path */
  assert_int_equal(hb_store_check_file(s), HB_STORE_FILE_REPLACED);
  hb_store_close(s);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_dir, teardown_dir)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_migrates_from_empty),
      T(test_reopen_is_idempotent),
      T(test_orgs),
      T(test_plugins),
      T(test_tokens),
      T(test_data_version_sees_other_connection),
      T(test_not_a_database),
      T(test_corrupt_database),
      T(test_newer_schema),
      T(test_unwritable),
      T(test_data_dir_is_a_file),
      T(test_locked),
      T(test_open_existing),
      T(test_check_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
