/* test_auth.c - the credential cache: API tokens, reloads, connection tokens, origins. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include "check.h"

#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hubbub/alloc.h"
#include "hubbub/auth.h"
#include "hubbub/jwt.h"
#include "hubbub/store.h"

typedef struct {
  char dir[64];
  hb_store *s;     /* the server's connection */
  hb_store *admin; /* another connection, as the CLI would be */
  hb_org_row org, org2;
  hb_plugin_row plugin, plugin2;
  hb_token_row tok_row;
  char tok[HB_MAX_API_TOKEN_BYTES + 1];
} fixture;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

static int setup(void **state) {
  hbt_leak_begin(); /* the store and the credential cache are inside the check */
  fixture *f = calloc(1, sizeof *f);
  char err[512];
  snprintf(f->dir, sizeof f->dir, "/tmp/hb_test_auth.XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  assert_int_equal(hb_store_open(&f->s, f->dir, err, sizeof err), 0);
  assert_int_equal(hb_store_open(&f->admin, f->dir, err, sizeof err), 0);
  assert_int_equal(hb_store_org_create(f->admin, "acme", &f->org), 0);
  assert_int_equal(hb_store_org_create(f->admin, "globex", &f->org2), 0);
  assert_int_equal(hb_store_plugin_create(f->admin, &f->org.id, "polls", &f->plugin), 0);
  assert_int_equal(hb_store_plugin_create(f->admin, &f->org2.id, "chat", &f->plugin2), 0);
  assert_int_equal(hb_store_token_create(f->admin, &f->org.id, &f->plugin.id, "backend", f->tok, &f->tok_row), 0);
  assert_int_equal(hb_auth_init(f->s), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  hb_auth_shutdown();
  hb_store_close(f->s);
  hb_store_close(f->admin);
  nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(f);
  hbt_leak_end();
  return 0;
}

static hb_err check(const char *header, hb_principal *p) {
  return hb_auth_api_token(header, strlen(header), p);
}

static void test_api_token_forms(void **state) {
  fixture *f = *state;
  hb_principal p;
  char buf[256];
  memset(&p, 0, sizeof p);
  assert_int_equal(check(f->tok, &p), HB_OK);
  assert_true(hb_uuid_eq(&p.org, &f->org.id));
  assert_true(hb_uuid_eq(&p.plugin, &f->plugin.id));
  assert_true(hb_uuid_eq(&p.token_id, &f->tok_row.id));
  const char *forms[] = {"Bearer %s", "bearer %s", "BEARER   %s  ", "  %s ", "\tBearer\t%s"};
  for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
    snprintf(buf, sizeof buf, forms[i], f->tok);
    assert_int_equal(check(buf, &p), HB_OK);
  }
  snprintf(buf, sizeof buf, "Bearer%s", f->tok); /* no separator: not the scheme */
  assert_int_equal(check(buf, &p), HB_E_INVALID_TOKEN);
  snprintf(buf, sizeof buf, "Basic %s", f->tok);
  assert_int_equal(check(buf, &p), HB_E_INVALID_TOKEN);
}

static void test_api_token_missing_unknown_oversized(void **state) {
  fixture *f = *state;
  hb_principal p;
  char big[HB_MAX_API_TOKEN_BYTES + 32];
  assert_int_equal(check("", &p), HB_E_MISSING_TOKEN);
  assert_int_equal(check("   ", &p), HB_E_MISSING_TOKEN);
  assert_int_equal(check("Bearer ", &p), HB_E_MISSING_TOKEN);
  assert_int_equal(hb_auth_api_token(NULL, 0, &p), HB_E_MISSING_TOKEN);
  assert_int_equal(check("hbk_unknown", &p), HB_E_INVALID_TOKEN);
  char almost[HB_MAX_API_TOKEN_BYTES + 1];
  snprintf(almost, sizeof almost, "%s", f->tok);
  almost[strlen(almost) - 1] ^= 1; /* one bit off */
  assert_int_equal(check(almost, &p), HB_E_INVALID_TOKEN);
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  assert_int_equal(check(big, &p), HB_E_INVALID_TOKEN);
  /* A header is not NUL-terminated: only `len` bytes count. */
  snprintf(big, sizeof big, "%sXYZ", f->tok);
  assert_int_equal(hb_auth_api_token(big, strlen(f->tok), &p), HB_OK);
}

static void test_reload_after_revoke_and_create(void **state) {
  fixture *f = *state;
  hb_principal p;
  char tok2[HB_MAX_API_TOKEN_BYTES + 1];
  assert_int_equal(check(f->tok, &p), HB_OK);
  assert_int_equal(hb_auth_reload(f->s), 0); /* nothing changed */
  assert_int_equal(hb_store_token_revoke(f->admin, &f->tok_row.id), 0);
  assert_int_equal(check(f->tok, &p), HB_OK); /* the snapshot is unchanged until a reload */
  assert_int_equal(hb_auth_reload(f->s), 0);
  assert_int_equal(check(f->tok, &p), HB_E_INVALID_TOKEN);

  assert_int_equal(hb_store_token_create(f->admin, &f->org2.id, &f->plugin2.id, NULL, tok2, NULL), 0);
  assert_int_equal(check(tok2, &p), HB_E_INVALID_TOKEN);
  assert_int_equal(hb_auth_reload(f->s), 0);
  assert_int_equal(check(tok2, &p), HB_OK);
  assert_true(hb_uuid_eq(&p.plugin, &f->plugin2.id));
}

static void test_reload_sees_own_writes(void **state) {
  fixture *f = *state;
  hb_principal p;
  char tok2[HB_MAX_API_TOKEN_BYTES + 1];
  /* A write through the server's own connection (an admin HTTP API) does
   * not move PRAGMA data_version; the store's own counter must. */
  assert_int_equal(hb_store_token_create(f->s, &f->org.id, &f->plugin.id, "own", tok2, NULL), 0);
  assert_int_equal(hb_auth_reload(f->s), 0);
  assert_int_equal(check(tok2, &p), HB_OK);
}

static char *mint(const hb_uuid *org, const hb_uuid *plugin, const char *secret, int64_t exp) {
  hb_conn_claims c;
  memset(&c, 0, sizeof c);
  c.org = *org;
  c.plugin = *plugin;
  hb_uuid_v4(&c.event);
  hb_uuid_v4(&c.session);
  snprintf(c.user_id, sizeof c.user_id, "alice");
  c.scopes = HB_SCOPE_SET_DEFAULT | HB_SCOPE_BIT(HB_SCOPE_EVENT);
  c.iat = (int64_t)time(NULL);
  c.exp = exp;
  char *t = hb_jwt_mint(&c, secret, strlen(secret));
  assert_non_null(t);
  return t;
}

static void test_conn_token(void **state) {
  fixture *f = *state;
  hb_conn_claims out;
  hb_error err;
  int64_t now = (int64_t)time(NULL);
  char *t;

  t = mint(&f->org.id, &f->plugin.id, f->plugin.signing_secret, now + 600);
  memset(&out, 0, sizeof out);
  assert_int_equal(hb_auth_conn_token(t, strlen(t), now, &out, &err), HB_OK);
  assert_true(hb_uuid_eq(&out.org, &f->org.id));
  assert_true(hb_uuid_eq(&out.plugin, &f->plugin.id));
  assert_string_equal(out.user_id, "alice");
  assert_int_equal(out.scopes, HB_SCOPE_SET_DEFAULT | HB_SCOPE_BIT(HB_SCOPE_EVENT));
  hb_free(t);

  /* Signed with the right secret but claiming another organization. */
  t = mint(&f->org2.id, &f->plugin.id, f->plugin.signing_secret, now + 600);
  assert_int_equal(hb_auth_conn_token(t, strlen(t), now, &out, &err), HB_E_INVALID_TOKEN);
  assert_int_equal(err.err, HB_E_INVALID_TOKEN);
  assert_non_null(strstr(err.message, "organization"));
  hb_free(t);

  /* Names plugin 1 but signed with plugin 2's secret. */
  t = mint(&f->org.id, &f->plugin.id, f->plugin2.signing_secret, now + 600);
  assert_int_equal(hb_auth_conn_token(t, strlen(t), now, &out, &err), HB_E_INVALID_TOKEN);
  hb_free(t);

  /* An unknown plugin. */
  hb_uuid ghost;
  hb_uuid_v4(&ghost);
  t = mint(&f->org.id, &ghost, f->plugin.signing_secret, now + 600);
  assert_int_equal(hb_auth_conn_token(t, strlen(t), now, &out, &err), HB_E_INVALID_TOKEN);
  hb_free(t);

  /* Expired. */
  t = mint(&f->org.id, &f->plugin.id, f->plugin.signing_secret, now - 3600);
  assert_int_equal(hb_auth_conn_token(t, strlen(t), now, &out, &err), HB_E_TOKEN_EXPIRED);
  hb_free(t);

  assert_int_equal(hb_auth_conn_token("", 0, now, &out, &err), HB_E_MISSING_TOKEN);
  assert_int_equal(hb_auth_conn_token("not.a.jwt", 9, now, &out, &err), HB_E_INVALID_TOKEN);
}

static void test_plugin_secret(void **state) {
  fixture *f = *state;
  char secret[HB_SECRET_MAX_BYTES + 1], tiny[8];
  hb_uuid ghost;
  assert_int_equal(hb_auth_plugin_secret(&f->plugin.id, secret, sizeof secret), 0);
  assert_string_equal(secret, f->plugin.signing_secret);
  assert_int_equal(hb_auth_plugin_secret(&f->plugin.id, tiny, sizeof tiny), -1);
  hb_uuid_v4(&ghost);
  assert_int_equal(hb_auth_plugin_secret(&ghost, secret, sizeof secret), -1);
}

static bool origin_ok(const hb_uuid *p, const char *o) {
  return hb_auth_origin_allowed(p, o, o ? strlen(o) : 0);
}

static void test_origins(void **state) {
  fixture *f = *state;
  hb_uuid ghost;
  assert_true(origin_ok(&f->plugin.id, "https://anything.example")); /* no allowlist */
  assert_true(origin_ok(&f->plugin.id, NULL));
  assert_int_equal(hb_store_plugin_set_origins(f->admin, &f->plugin.id,
                                               "https://app.example.com  http://localhost:3000"),
                   0);
  assert_int_equal(hb_auth_reload(f->s), 0);
  assert_true(origin_ok(&f->plugin.id, "https://app.example.com"));
  assert_true(origin_ok(&f->plugin.id, "http://localhost:3000"));
  assert_false(origin_ok(&f->plugin.id, "https://app.example.co"));
  assert_false(origin_ok(&f->plugin.id, "https://app.example.com.evil.test"));
  assert_false(origin_ok(&f->plugin.id, "http://localhost"));
  assert_false(origin_ok(&f->plugin.id, NULL));
  assert_true(origin_ok(&f->plugin2.id, "https://elsewhere.example"));
  hb_uuid_v4(&ghost);
  assert_false(origin_ok(&ghost, "https://app.example.com"));
}

static atomic_bool readers_stop;

typedef struct {
  const char *tok;
  long ok, bad; /* one per thread: no shared counters */
} reader_ctx;

static void *reader(void *arg) {
  reader_ctx *r = arg;
  hb_principal p;
  memset(&p, 0, sizeof p);
  while (!atomic_load(&readers_stop)) {
    if (hb_auth_api_token(r->tok, strlen(r->tok), &p) == HB_OK) r->ok++;
    else r->bad++;
    (void)hb_auth_origin_allowed(&p.plugin, "https://x.example", 17);
  }
  return NULL;
}

/* Lookups from I/O threads while the snapshot is swapped underneath them
 * (run under ThreadSanitizer to check the locking). */
static void test_concurrent_reload(void **state) {
  fixture *f = *state;
  reader_ctx r[2] = {{.tok = f->tok}, {.tok = f->tok}};
  pthread_t th[2];
  atomic_store(&readers_stop, false);
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&th[i], NULL, reader, &r[i]), 0);
  for (int i = 0; i < 30; i++) {
    char name[32], tok[HB_MAX_API_TOKEN_BYTES + 1];
    snprintf(name, sizeof name, "t%d", i);
    assert_int_equal(hb_store_token_create(f->admin, &f->org.id, &f->plugin.id, name, tok, NULL), 0);
    assert_int_equal(hb_auth_reload(f->s), 0);
  }
  atomic_store(&readers_stop, true);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  /* The token stayed valid through every swap. */
  assert_int_equal(r[0].bad + r[1].bad, 0);
  assert_true(r[0].ok + r[1].ok > 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_api_token_forms, setup, teardown),
      cmocka_unit_test_setup_teardown(test_api_token_missing_unknown_oversized, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reload_after_revoke_and_create, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reload_sees_own_writes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_conn_token, setup, teardown),
      cmocka_unit_test_setup_teardown(test_plugin_secret, setup, teardown),
      cmocka_unit_test_setup_teardown(test_origins, setup, teardown),
      cmocka_unit_test_setup_teardown(test_concurrent_reload, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
