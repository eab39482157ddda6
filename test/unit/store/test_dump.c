/*
 * test_dump.c - export and import: a store moved through the document keeps
 * its API tokens (and, with secrets, its connection tokens) working; every
 * malformed or conflicting document is refused with the JSON pointer at
 * fault and changes nothing. The source is always SQLite; the target is
 * SQLite (test_dump) or PostgreSQL (test_dump_pg, through test/pg-harness.sh).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hubbub/alloc.h"
#include "hubbub/auth.h"
#include "hubbub/dump.h"
#include "hubbub/jwt.h"
#include "hubbub/store.h"
#include "store_fixture.h"

typedef struct {
  char src_dir[64];
  hb_test_loc dst;
  hb_store *src, *to;
  hb_org_row org;
  hb_plugin_row plugin;
  char tok[HB_MAX_API_TOKEN_BYTES + 1], revoked_tok[HB_MAX_API_TOKEN_BYTES + 1];
  char *conn_tok;
} fixture;

static hb_store *open_ok(const char *loc) {
  hb_store *s = NULL;
  char err[512];
  if (hb_store_open(&s, loc, err, sizeof err) != 0) fail_msg("open %s: %s", loc, err);
  return s;
}

static int setup(void **state) {
  hbt_leak_begin(); /* the stores, the token and the credential cache are inside the check */
  fixture *f = calloc(1, sizeof *f);
  hb_token_row rt;
  hb_plugin_row p2;
  snprintf(f->src_dir, sizeof f->src_dir, "/tmp/hb_test_dump.XXXXXX");
  assert_non_null(mkdtemp(f->src_dir));
  assert_true(hb_test_loc_make(&f->dst));
  f->src = open_ok(f->src_dir);
  f->to = open_ok(f->dst.loc);
  assert_int_equal(hb_store_org_create(f->src, "acme", &f->org), 0);
  assert_int_equal(hb_store_plugin_create_with_origins(f->src, &f->org.id, "polls", "https://a.example", &f->plugin), 0);
  assert_int_equal(hb_store_token_create(f->src, &f->org.id, &f->plugin.id, "backend", f->tok, NULL), 0);
  assert_int_equal(hb_store_token_create_with_expiry(f->src, &f->org.id, &f->plugin.id, "old", 1999999999,
                                                     f->revoked_tok, &rt), 0);
  assert_int_equal(hb_store_token_revoke(f->src, &rt.id), 0);
  assert_int_equal(hb_store_revoke_user_tokens(f->src, &f->plugin.id, "mallory", (int64_t)time(NULL), NULL), 0);
  assert_int_equal(hb_store_plugin_create(f->src, &f->org.id, "chat", &p2), 0);
  /* A rotation: the plugin has a previous secret too. */
  hb_conn_claims c;
  memset(&c, 0, sizeof c);
  c.org = f->org.id;
  c.plugin = f->plugin.id;
  hb_uuid_v4(&c.event);
  hb_uuid_v4(&c.session);
  snprintf(c.user_id, sizeof c.user_id, "alice");
  c.scopes = HB_SCOPE_SET_DEFAULT;
  c.iat = (int64_t)time(NULL);
  c.exp = c.iat + 600;
  snprintf(c.kid, sizeof c.kid, "%s", f->plugin.signing_kid);
  f->conn_tok = hb_jwt_mint(&c, f->plugin.signing_secret, strlen(f->plugin.signing_secret));
  assert_int_equal(hb_store_plugin_rotate_secret(f->src, &f->plugin.id, 0, NULL), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  hb_auth_shutdown();
  hb_store_close(f->src);
  hb_store_close(f->to);
  hb_test_loc l = {.pg = false};
  snprintf(l.dir, sizeof l.dir, "%s", f->src_dir);
  hb_test_loc_free(&l);
  hb_test_loc_free(&f->dst);
  hb_free(f->conn_tok);
  free(f);
  hbt_leak_end();
  return 0;
}

static char *export_text(hb_store *s, bool secrets) {
  json_t *doc = NULL;
  assert_int_equal(hb_dump_export(s, secrets, &doc), 0);
  char *t = json_dumps(doc, JSON_COMPACT);
  json_decref(doc);
  return t;
}

static int import_text(hb_store *s, const char *t, char *err, size_t errlen, hb_store_import_result *res) {
  hb_store_import_result tmp;
  return hb_dump_import(s, t, strlen(t), res ? res : &tmp, err, errlen);
}

static hb_err api(const char *tok) {
  hb_principal p;
  return hb_auth_api_token(tok, strlen(tok), &p);
}

static hb_err conn(const char *tok) {
  hb_conn_claims c;
  hb_error e;
  return hb_auth_conn_token(tok, strlen(tok), (int64_t)time(NULL), &c, &e);
}

static void test_move_with_secrets(void **state) {
  fixture *f = *state;
  hb_store_import_result res;
  char err[512] = "";
  char *t = export_text(f->src, true);
  assert_non_null(strstr(t, "\"includes_secrets\":true"));
  assert_non_null(strstr(t, f->plugin.signing_secret)); /* now the previous secret */
  assert_null(strstr(t, f->tok + 4));                   /* API tokens only as hashes */
  int rc = import_text(f->to, t, err, sizeof err, &res);
  if (rc != 0) fail_msg("import: %s", err);
  assert_int_equal(res.created[0], 1);
  assert_int_equal(res.created[1], 2);
  assert_int_equal(res.created[2], 2);
  assert_int_equal(res.created[3], 1);
  assert_int_equal(res.new_secrets, 0);

  /* The imported store serves the same credentials. */
  assert_int_equal(hb_auth_init(f->to), 0);
  assert_int_equal(api(f->tok), HB_OK);
  assert_int_equal(api(f->revoked_tok), HB_E_INVALID_TOKEN);
  assert_int_equal(conn(f->conn_tok), HB_OK); /* signed with what is now the previous secret */

  /* The same document again: nothing new. Exporting the target gives the
   * same lists. */
  assert_int_equal(import_text(f->to, t, err, sizeof err, &res), 0);
  assert_int_equal(res.created[0] + res.created[1] + res.created[2] + res.created[3], 0);
  assert_int_equal(res.unchanged[0] + res.unchanged[1] + res.unchanged[2] + res.unchanged[3], 6);
  char *t2 = export_text(f->to, true);
  json_t *a = json_loads(t, 0, NULL), *b = json_loads(t2, 0, NULL);
  json_object_del(a, "exported_at");
  json_object_del(b, "exported_at");
  assert_true(json_equal(a, b));
  json_decref(a);
  json_decref(b);
  free(t);
  free(t2);
}

static void test_move_without_secrets(void **state) {
  fixture *f = *state;
  hb_store_import_result res;
  char err[512] = "";
  char *t = export_text(f->src, false);
  assert_non_null(strstr(t, "\"includes_secrets\":false"));
  assert_null(strstr(t, "hbs_"));
  assert_null(strstr(t, "signing"));
  assert_int_equal(import_text(f->to, t, err, sizeof err, &res), 0);
  assert_int_equal(res.new_secrets, 2);
  assert_int_equal(hb_auth_init(f->to), 0);
  assert_int_equal(api(f->tok), HB_OK);                  /* hashes travel */
  assert_int_equal(conn(f->conn_tok), HB_E_INVALID_TOKEN); /* secrets did not */
  free(t);
}

/* Replace the first occurrence of `from` in the export with `to` and expect
 * a refusal whose message starts with `want`. */
static void refused(fixture *f, const char *base, const char *from, const char *to, const char *want) {
  char err[512] = "";
  const char *at = from ? strstr(base, from) : NULL;
  if (from) assert_non_null(at);
  size_t n = strlen(base) + (to ? strlen(to) : 0) + 1;
  char *t = malloc(n);
  if (from) snprintf(t, n, "%.*s%s%s", (int)(at - base), base, to, at + strlen(from));
  else snprintf(t, n, "%s", to);
  int rc = import_text(f->to, t, err, sizeof err, NULL);
  print_message("%-40.40s -> %s\n", to, err);
  if (rc != 1 || strncmp(err, want, strlen(want)) != 0) fail_msg("rc %d, '%s', expected '%s'", rc, err, want);
  free(t);
}

static void test_malformed(void **state) {
  fixture *f = *state;
  char *t = export_text(f->src, true);
  refused(f, t, NULL, "", "not valid JSON");
  refused(f, t, NULL, "[1]", "/: the document must be a JSON object");
  refused(f, t, NULL, "{\"format\":\"hubbub-export\",\"format\":\"x\"}", "not valid JSON");
  refused(f, t, NULL, "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", "/: the document nests deeper");
  refused(f, t, "\"format\":\"hubbub-export\"", "\"format\":\"other\"", "/format: must be \"hubbub-export\"");
  refused(f, t, "\"format_version\":1", "\"format_version\":2", "/format_version: this hubbub reads");
  refused(f, t, "\"schema_version\":2", "\"schema_version\":99", "/schema_version: exported by a newer hubbub");
  refused(f, t, "\"includes_secrets\":true", "\"includes_secrets\":1", "/includes_secrets: must be true or false");
  refused(f, t, "\"includes_secrets\":true", "\"includes_secrets\":false", "/plugins/0/signing: present, but");
  refused(f, t, "\"format\":", "\"extra\":1,\"format\":", "/extra: unknown field");
  refused(f, t, "\"format\":", "\"a/b~c\":1,\"format\":", "/a~1b~0c: unknown field");
  refused(f, t, "\"name\":\"acme\"", "\"name\":\"acme\",\"color\":\"red\"", "/organizations/0/color: unknown field");
  refused(f, t, "\"name\":\"acme\"", "\"name\":\"\"", "/organizations/0/name: must be 1 to 128 bytes");
  refused(f, t, "\"name\":\"acme\"", "\"name\":\"a\\u0001b\"", "/organizations/0/name: must not contain control");
  refused(f, t, "\"name\":\"acme\"", "\"name\":\"11111111-2222-4333-8444-555555555555\"", "/organizations/0/name: a name must not look like a UUID");
  refused(f, t, "\"name\":\"acme\"", "\"name\":5", "/organizations/0/name: must be a string");
  refused(f, t, "\"name\":\"polls\"", "\"name\":\"polls\",\"organization_id\":\"x\"", "not valid JSON");
  refused(f, t, "\"organizations\":[", "\"organizations\":[7,", "/organizations/0: must be an object");
#define DOC(orgs) "{\"format\":\"hubbub-export\",\"format_version\":1,\"schema_version\":2,\"exported_at\":1," \
                  "\"includes_secrets\":false,\"organizations\":[" orgs "],\"plugins\":[],\"api_tokens\":[],\"revocations\":[]}"
#define ORG1 "\"id\":\"11111111-2222-4333-8444-555555555555\",\"name\":\"a\""
  refused(f, t, NULL, DOC("{" ORG1 ",\"created_at\":-1}"), "/organizations/0/created_at: must be a non-negative");
  refused(f, t, NULL, DOC("{" ORG1 ",\"created_at\":1.5}"), "/organizations/0/created_at: must be a non-negative");
  refused(f, t, NULL, DOC("{" ORG1 "}"), "/organizations/0/created_at: missing");
  refused(f, t, NULL, DOC("{" ORG1 ",\"created_at\":1},{" ORG1 ",\"created_at\":1}"),
          "/organizations/1: the id appears twice");
  refused(f, t, NULL, DOC("{\"id\":\"nope\",\"name\":\"a\",\"created_at\":1}"), "/organizations/0/id: must be a UUID");
  refused(f, t, "\"token_sha256\":\"", "\"token_sha256\":\"zz", "/api_tokens/0/token_sha256: must be exactly 64 bytes");
  refused(f, t, "\"revoked_at\":null", "\"revoked_at\":\"soon\"", "/api_tokens/0/revoked_at: must be a positive integer");
  refused(f, t, "\"secret\":\"", "\"secret\":\"has space ", "/plugins/0/signing/secret: must be printable");
  refused(f, t, "\"kid\":\"", "\"kid\":\"bad kid!", "/plugins/0/signing/kid: must be letters");
  refused(f, t, "\"revocations\":[", "\"revocations\":[{\"plugin_id\":\"11111111-2222-4333-8444-555555555555\",\"user_id\":\"u\",\"revoked_before\":1,\"created_at\":1},",
          "/revocations/0/plugin_id: no such plugin in the document");
  refused(f, t, NULL, "{\"format\":\"hubbub-export\",\"format_version\":1,\"schema_version\":2,\"exported_at\":1,"
                      "\"includes_secrets\":false,\"organizations\":[],\"plugins\":[],\"api_tokens\":5,\"revocations\":[]}",
          "/api_tokens: must be an array");
  refused(f, t, NULL, "{\"format\":\"hubbub-export\",\"format_version\":1,\"schema_version\":2,\"exported_at\":1,"
                      "\"includes_secrets\":false,\"organizations\":[],\"plugins\":[],\"api_tokens\":[]}",
          "/revocations: missing");
  free(t);
  /* Nothing of any of that reached the store. */
  int n = 0;
  assert_int_equal(hb_test_sql_int(&f->dst, "SELECT count(*) FROM organizations"), n);
}

static void test_conflict_changes_nothing(void **state) {
  fixture *f = *state;
  char err[512] = "";
  /* The target already has an "acme" of its own. */
  assert_int_equal(hb_store_org_create(f->to, "acme", NULL), 0);
  long long v0 = hb_test_sql_int(&f->dst, "SELECT version FROM hubbub_changes");
  char *t = export_text(f->src, true);
  assert_int_equal(import_text(f->to, t, err, sizeof err, NULL), 1);
  print_message("%s\n", err);
  assert_non_null(strstr(err, "/organizations/0/name: an organization named 'acme' exists with another id"));
  assert_int_equal(hb_test_sql_int(&f->dst, "SELECT count(*) FROM organizations"), 1);
  assert_int_equal(hb_test_sql_int(&f->dst, "SELECT count(*) FROM plugins"), 0);
  assert_int_equal(hb_test_sql_int(&f->dst, "SELECT version FROM hubbub_changes"), v0);
  free(t);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_move_with_secrets),
      T(test_move_without_secrets),
      T(test_malformed),
      T(test_conflict_changes_nothing),
  };
  print_message("import target: %s\n", hb_test_pg_mode() ? "postgresql" : "sqlite");
  return cmocka_run_group_tests(tests, NULL, NULL);
}
