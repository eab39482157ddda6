/*
 * test_auth.c - the credential cache: API tokens (revoked, expiring),
 * reloads, connection tokens (rotated secrets, kids, revoked users), deleted
 * organizations and plugins, origins. Runs on SQLite (test_auth) and on a
 * private PostgreSQL (test_auth_pg, through test/pg-harness.sh).
 */
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
#include "store_fixture.h"

typedef struct {
  hb_test_loc loc;
  hb_store *s;     /* the server's connection */
  hb_store *admin; /* another connection, as the CLI would be */
  hb_org_row org, org2;
  hb_plugin_row plugin, plugin2;
  hb_token_row tok_row;
  char tok[HB_MAX_API_TOKEN_BYTES + 1];
} fixture;

static int setup(void **state) {
  hbt_leak_begin(); /* the store and the credential cache are inside the check */
  fixture *f = calloc(1, sizeof *f);
  char err[512];
  assert_true(hb_test_loc_make(&f->loc));
  assert_int_equal(hb_store_open(&f->s, f->loc.loc, err, sizeof err), 0);
  assert_int_equal(hb_store_open(&f->admin, f->loc.loc, err, sizeof err), 0);
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
  hb_test_loc_free(&f->loc);
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

static char *mint_as(const hb_uuid *org, const hb_uuid *plugin, const char *secret, int64_t exp,
                     const char *user, int64_t iat, const char *kid) {
  hb_conn_claims c;
  memset(&c, 0, sizeof c);
  c.org = *org;
  c.plugin = *plugin;
  hb_uuid_v4(&c.event);
  hb_uuid_v4(&c.session);
  snprintf(c.user_id, sizeof c.user_id, "%s", user);
  c.scopes = HB_SCOPE_SET_DEFAULT;
  c.iat = iat;
  c.exp = exp;
  if (kid) snprintf(c.kid, sizeof c.kid, "%s", kid);
  char *t = hb_jwt_mint(&c, secret, strlen(secret));
  assert_non_null(t);
  return t;
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


static hb_err conn(const char *t, hb_conn_claims *out) {
  hb_error err;
  memset(&err, 0, sizeof err);
  hb_err e = hb_auth_conn_token(t, strlen(t), (int64_t)time(NULL), out, &err);
  if (e != HB_OK) print_message("refused: %s: %s\n", hb_err_code(e), err.message);
  return e;
}

static void test_rotated_secret(void **state) {
  fixture *f = *state;
  hb_conn_claims out;
  hb_plugin_row r1, r2;
  char secret[HB_SECRET_MAX_BYTES + 1], kid[HB_SIGNING_KID_MAX_BYTES + 1];
  int64_t now = (int64_t)time(NULL);
  const hb_uuid *o = &f->org.id, *p = &f->plugin.id;
  /* Tokens minted before the rotation: offline without a kid, and by the
   * server with the current kid. */
  char *old_nokid = mint_as(o, p, f->plugin.signing_secret, now + 600, "alice", now, NULL);
  char *old_kid = mint_as(o, p, f->plugin.signing_secret, now + 600, "alice", now, f->plugin.signing_kid);
  char *bogus_kid = mint_as(o, p, f->plugin.signing_secret, now + 600, "alice", now, "not-a-kid-we-know");
  assert_int_equal(conn(old_kid, &out), HB_OK);
  assert_string_equal(out.kid, f->plugin.signing_kid);
  assert_int_equal(hb_auth_plugin_key(p, secret, sizeof secret, kid, sizeof kid), 0);
  assert_string_equal(kid, f->plugin.signing_kid);

  assert_int_equal(hb_store_plugin_rotate_secret(f->admin, p, 0, &r1), 0);
  uint64_t g0 = hb_auth_generation();
  assert_int_equal(hb_auth_reload(f->s), 0);
  assert_true(hb_auth_generation() > g0);
  assert_int_equal(hb_auth_plugin_key(p, secret, sizeof secret, kid, sizeof kid), 0);
  assert_string_equal(secret, r1.signing_secret);
  assert_string_equal(kid, r1.signing_kid);
  /* Old tokens keep working through the previous secret; new ones too. */
  assert_int_equal(conn(old_nokid, &out), HB_OK);
  assert_string_equal(out.kid, f->plugin.signing_kid);
  assert_int_equal(conn(old_kid, &out), HB_OK);
  assert_int_equal(conn(bogus_kid, &out), HB_OK); /* an unknown kid is tried like none */
  char *new_kid = mint_as(o, p, r1.signing_secret, now + 600, "alice", now, r1.signing_kid);
  char *new_nokid = mint_as(o, p, r1.signing_secret, now + 600, "alice", now, NULL);
  assert_int_equal(conn(new_kid, &out), HB_OK);
  assert_string_equal(out.kid, r1.signing_kid);
  assert_int_equal(conn(new_nokid, &out), HB_OK);
  /* The new kid on a token signed with the old secret: that kid's secret
   * only, which does not match. */
  char *crossed = mint_as(o, p, f->plugin.signing_secret, now + 600, "alice", now, r1.signing_kid);
  assert_int_equal(conn(crossed, &out), HB_E_INVALID_TOKEN);
  /* A live connection verified with the previous secret may stay. */
  hb_conn_claims live;
  assert_int_equal(conn(old_kid, &live), HB_OK);
  assert_int_equal(hb_auth_conn_recheck(&live, now), HB_OK);

  /* Rotating again with a previous TTL: the first secret is gone at once,
   * the second kept until its retire_at. */
  assert_int_equal(hb_store_plugin_rotate_secret(f->admin, p, 60, &r2), 0);
  assert_int_equal(hb_auth_reload(f->s), 0);
  assert_int_equal(conn(old_nokid, &out), HB_E_INVALID_TOKEN);
  assert_int_equal(conn(old_kid, &out), HB_E_INVALID_TOKEN);
  assert_int_equal(hb_auth_conn_recheck(&live, now), HB_E_INVALID_TOKEN);
  assert_int_equal(conn(new_kid, &out), HB_OK);
  hb_error err;
  assert_int_equal(hb_auth_conn_token(new_kid, strlen(new_kid), now + 61, &out, &err), HB_E_INVALID_TOKEN);
  /* Retired now: only the newest secret verifies. */
  assert_int_equal(hb_store_plugin_retire_previous(f->admin, p, NULL), 0);
  assert_int_equal(hb_auth_reload(f->s), 0);
  assert_int_equal(conn(new_kid, &out), HB_E_INVALID_TOKEN);
  char *newest = mint_as(o, p, r2.signing_secret, now + 600, "alice", now, r2.signing_kid);
  assert_int_equal(conn(newest, &out), HB_OK);
  hb_free(old_nokid), hb_free(old_kid), hb_free(bogus_kid), hb_free(new_kid), hb_free(new_nokid);
  hb_free(crossed), hb_free(newest);
}

static void test_revoked_user(void **state) {
  fixture *f = *state;
  hb_conn_claims out, live;
  int64_t now = (int64_t)time(NULL);
  const hb_uuid *o = &f->org.id, *p = &f->plugin.id;
  const char *sec = f->plugin.signing_secret;
  char *before = mint_as(o, p, sec, now + 600, "alice", now - 10, NULL);
  char *same_second = mint_as(o, p, sec, now + 600, "alice", now, NULL);
  char *no_iat = mint_as(o, p, sec, now + 600, "alice", 0, NULL);
  char *bob = mint_as(o, p, sec, now + 600, "bob", now - 10, NULL);
  char *other_plugin = mint_as(&f->org2.id, &f->plugin2.id, f->plugin2.signing_secret, now + 600, "alice", now - 10, NULL);
  assert_int_equal(conn(before, &live), HB_OK);

  assert_int_equal(hb_store_revoke_user_tokens(f->admin, p, "alice", now, NULL), 0);
  assert_int_equal(hb_auth_reload(f->s), 0);
  hb_error err;
  assert_int_equal(hb_auth_conn_token(before, strlen(before), now, &out, &err), HB_E_TOKEN_REVOKED);
  assert_string_equal(hb_err_code(err.err), "token_revoked");
  assert_int_equal(hb_err_http_status(HB_E_TOKEN_REVOKED), 401);
  assert_int_equal(conn(same_second, &out), HB_E_TOKEN_REVOKED);
  assert_int_equal(conn(no_iat, &out), HB_E_TOKEN_REVOKED); /* cannot show it is newer */
  assert_int_equal(hb_auth_conn_recheck(&live, now), HB_E_TOKEN_REVOKED);
  /* Another user, another plugin: untouched. A token issued after: fine. */
  assert_int_equal(conn(bob, &out), HB_OK);
  assert_int_equal(conn(other_plugin, &out), HB_OK);
  char *after = mint_as(o, p, sec, now + 600, "alice", now + 1, NULL);
  assert_int_equal(conn(after, &out), HB_OK);
  assert_int_equal(hb_auth_conn_recheck(&out, now), HB_OK);
  hb_free(before), hb_free(same_second), hb_free(no_iat), hb_free(bob), hb_free(other_plugin), hb_free(after);
}

static void test_deleted_org_and_plugin(void **state) {
  fixture *f = *state;
  hb_principal pr;
  hb_conn_claims out, live;
  int64_t now = (int64_t)time(NULL);
  char tok2[HB_MAX_API_TOKEN_BYTES + 1];
  assert_int_equal(hb_store_token_create(f->admin, &f->org2.id, &f->plugin2.id, "t2", tok2, NULL), 0);
  assert_int_equal(hb_auth_reload(f->s), 0);
  char *ct = mint(&f->org.id, &f->plugin.id, f->plugin.signing_secret, now + 600);
  char *ct2 = mint(&f->org2.id, &f->plugin2.id, f->plugin2.signing_secret, now + 600);
  assert_int_equal(conn(ct, &live), HB_OK);
  assert_int_equal(conn(ct2, &out), HB_OK);

  assert_int_equal(hb_store_plugin_delete(f->admin, &f->plugin.id), 0);
  assert_int_equal(hb_auth_reload(f->s), 0);
  assert_int_equal(check(f->tok, &pr), HB_E_INVALID_TOKEN);
  assert_int_equal(conn(ct, &out), HB_E_INVALID_TOKEN);
  assert_int_equal(hb_auth_conn_recheck(&live, now), HB_E_INVALID_TOKEN);
  assert_int_equal(check(tok2, &pr), HB_OK);

  assert_int_equal(hb_store_org_delete(f->admin, &f->org2.id), 0);
  assert_int_equal(hb_auth_reload(f->s), 0);
  assert_int_equal(check(tok2, &pr), HB_E_INVALID_TOKEN);
  assert_int_equal(conn(ct2, &out), HB_E_INVALID_TOKEN);
  assert_false(hb_auth_origin_allowed(&f->plugin2.id, NULL, 0));
  hb_free(ct), hb_free(ct2);
}

static void test_api_token_expiry(void **state) {
  fixture *f = *state;
  hb_principal pr;
  char soon[HB_MAX_API_TOKEN_BYTES + 1], later[HB_MAX_API_TOKEN_BYTES + 1], gone[HB_MAX_API_TOKEN_BYTES + 1];
  int64_t now = (int64_t)time(NULL);
  assert_int_equal(hb_store_token_create_with_expiry(f->admin, &f->org.id, &f->plugin.id, "soon", now + 2, soon, NULL), 0);
  assert_int_equal(hb_store_token_create_with_expiry(f->admin, &f->org.id, &f->plugin.id, "later", now + 3600, later, NULL), 0);
  assert_int_equal(hb_store_token_create_with_expiry(f->admin, &f->org.id, &f->plugin.id, "gone", now - 1, gone, NULL), 0);
  assert_int_equal(hb_auth_reload(f->s), 0);
  assert_int_equal(check(later, &pr), HB_OK);
  assert_int_equal(check(gone, &pr), HB_E_INVALID_TOKEN); /* like a revoked one */
  /* Expiry is checked at each use, not only at a reload. */
  int r = check(soon, &pr);
  if (r == HB_OK) {
    struct timespec ts = {3, 0};
    nanosleep(&ts, NULL);
    assert_int_equal(check(soon, &pr), HB_E_INVALID_TOKEN);
  } else {
    assert_true(time(NULL) >= now + 2); /* the machine was that slow */
  }
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
      cmocka_unit_test_setup_teardown(test_rotated_secret, setup, teardown),
      cmocka_unit_test_setup_teardown(test_revoked_user, setup, teardown),
      cmocka_unit_test_setup_teardown(test_deleted_org_and_plugin, setup, teardown),
      cmocka_unit_test_setup_teardown(test_api_token_expiry, setup, teardown),
  };
  print_message("store backend: %s\n", hb_test_pg_mode() ? "postgresql" : "sqlite");
  return cmocka_run_group_tests(tests, NULL, NULL);
}
