/*
 * admin.c - the admin HTTP API: organizations, plugins and API tokens, as
 * the CLI manages them. Off unless `admin_token_sha256` is configured; the
 * router checks the admin credential before a handler runs.
 *
 * These calls write SQLite on the I/O thread that received them. They are
 * rare, small, and WAL keeps them short; the publish path never waits on
 * them (it reads the credential cache, which the main thread reloads when
 * the store's data version moves).
 */
#include <stdio.h>
#include <string.h>

#include "hubbub/alloc.h"
#include "hubbub/field.h"
#include "hubbub/io.h"
#include "hubbub/json.h"
#include "hubbub/log.h"
#include "hubbub/router.h"
#include "hubbub/store.h"

static void respond_json(hb_conn *c, int status, json_t *o) {
  char *s = json_dumps(o, JSON_COMPACT);
  hb_http_respond(c, status, "application/json", "Cache-Control: no-store\r\n", s, strlen(s), false);
  free(s); /* jansson's allocator */
  json_decref(o);
}

static void respond_err(hb_conn *c, hb_err err, const char *pointer, const char *msg) {
  hb_error e;
  hb_error_set(&e, err, pointer, msg ? "%s" : NULL, msg);
  hb_http_respond_error(c, &e, NULL, false);
}

static hb_store *store_of(hb_conn *c) { return hb_store_thread(c->io->set->cfg->data_dir); }

/* An admin action that changed something, at info: who (the admin token,
 * by the first hex digits of its hash), from where, what, and its id.
 * Never a secret: a token or signing secret is shown once, to the caller. */
static void log_action(hb_conn *c, hb_http_req *req, const char *what, const hb_uuid *id, const char *name) {
  hb_log_line l;
  if (!hb_log_begin(&l, HB_LOG_INFO, what)) return;
  char peer[HB_PEER_NAME_BYTES], ids[HB_UUID_STR_BYTES];
  hb_conn_peer_name(c, peer);
  hb_uuid_format(id, ids);
  hb_log_str(&l, "admin", req->log_cred);
  hb_log_str(&l, "peer", peer);
  hb_log_str(&l, "id", ids);
  hb_log_str(&l, "name", name);
  hb_log_end(&l);
}

/* Parse the body as a JSON object through the front door (json.h): the same
 * limits and error wording as every other body. Answers the error itself. */
static json_t *body_object(hb_conn *c, hb_http_req *req) {
  json_t *o = NULL;
  hb_error e;
  if (hb_field_top_object(req->body.buf, req->body.len, &o, &e) != HB_OK) {
    json_decref(o);
    hb_http_respond_error(c, &e, NULL, false);
    return NULL;
  }
  return o;
}

/* A required or optional string field; answers the error itself. */
static bool str_field(hb_conn *c, json_t *o, const char *key, bool required, const char **out) {
  char ptr[64];
  snprintf(ptr, sizeof ptr, "/%s", key);
  json_t *v = json_object_get(o, key);
  *out = NULL;
  if (!v) {
    if (required) respond_err(c, HB_E_MISSING_FIELD, ptr, NULL);
    return !required;
  }
  if (!json_is_string(v)) {
    respond_err(c, HB_E_INVALID_TYPE, ptr, "must be a string");
    return false;
  }
  *out = json_string_value(v);
  return true;
}

/* The store's one rule for names (hb_store_name_problem). */
static bool valid_name(hb_conn *c, const char *name, const char *ptr) {
  const char *problem = hb_store_name_problem(name);
  if (!problem) return true;
  hb_error e;
  hb_error_set(&e, HB_E_INVALID_VALUE, ptr, "the name %s", problem);
  hb_http_respond_error(c, &e, NULL, false);
  return false;
}

static json_t *uuid_json(const hb_uuid *u) {
  char s[HB_UUID_STR_BYTES];
  hb_uuid_format(u, s);
  return json_string(s);
}

/* --- organizations ------------------------------------------------------- */

static void org_row(const hb_org_row *r, void *ud) {
  json_array_append_new(ud, json_pack("{s:o,s:s,s:I}", "id", uuid_json(&r->id), "name", r->name,
                                      "created_at", (json_int_t)r->created_at));
}

void hb_api_admin_orgs(hb_conn *c, hb_http_req *req) {
  hb_store *s = store_of(c);
  if (!s) return respond_err(c, HB_E_INTERNAL, NULL, "the store cannot be opened");
  if (req->method != HTTP_POST) {
    json_t *arr = json_array();
    hb_store_org_list(s, org_row, arr);
    return respond_json(c, 200, json_pack("{s:o}", "organizations", arr));
  }
  json_t *o = body_object(c, req);
  const char *name;
  if (!o) return;
  if (str_field(c, o, "name", true, &name) && valid_name(c, name, "/name")) {
    hb_org_row row;
    int r = hb_store_org_create(s, name, &row);
    if (r == 1) respond_err(c, HB_E_ALREADY_EXISTS, "/name", "an organization with that name exists");
    else if (r != 0) respond_err(c, HB_E_INTERNAL, NULL, NULL);
    else {
      log_action(c, req, "admin: organization created", &row.id, row.name);
      respond_json(c, 201, json_pack("{s:o,s:s}", "id", uuid_json(&row.id), "name", row.name));
    }
  }
  json_decref(o);
}

/* --- plugins ------------------------------------------------------------- */

static bool find_org(hb_conn *c, hb_store *s, const char *key, hb_org_row *org, const char *ptr) {
  if (hb_store_org_find(s, key, org) == 0) return true;
  respond_err(c, HB_E_NOT_FOUND, ptr, "no such organization");
  return false;
}

static void plugin_row(const hb_plugin_row *r, void *ud) {
  /* Never the signing secret: it is shown once, at creation. */
  json_array_append_new(ud, json_pack("{s:o,s:s,s:o,s:s,s:I}", "id", uuid_json(&r->id), "name", r->name,
                                      "organization_id", uuid_json(&r->org_id), "allowed_origins",
                                      r->allowed_origins, "created_at", (json_int_t)r->created_at));
}

void hb_api_admin_plugins(hb_conn *c, hb_http_req *req) {
  hb_store *s = store_of(c);
  if (!s) return respond_err(c, HB_E_INTERNAL, NULL, "the store cannot be opened");
  if (req->method != HTTP_POST) {
    json_t *arr = json_array();
    hb_store_plugin_list(s, NULL, plugin_row, arr);
    return respond_json(c, 200, json_pack("{s:o}", "plugins", arr));
  }
  json_t *o = body_object(c, req);
  if (!o) return;
  const char *orgkey, *name, *origins;
  hb_org_row org;
  if (str_field(c, o, "organization", true, &orgkey) && str_field(c, o, "name", true, &name) &&
      str_field(c, o, "allowed_origins", false, &origins) && valid_name(c, name, "/name") &&
      find_org(c, s, orgkey, &org, "/organization")) {
    hb_plugin_row p;
    int r = hb_store_plugin_create(s, &org.id, name, &p);
    if (r == 0 && origins && *origins) {
      if (strlen(origins) >= sizeof p.allowed_origins) r = -2;
      else r = hb_store_plugin_set_origins(s, &p.id, origins);
    }
    if (r == 1) respond_err(c, HB_E_ALREADY_EXISTS, "/name", "a plugin with that name exists in the organization");
    else if (r == -2) respond_err(c, HB_E_INVALID_VALUE, "/allowed_origins", "too long");
    else if (r != 0) respond_err(c, HB_E_INTERNAL, NULL, NULL);
    else {
      log_action(c, req, "admin: plugin created", &p.id, p.name);
      respond_json(c, 201, json_pack("{s:o,s:s,s:o,s:s}", "id", uuid_json(&p.id), "name", p.name,
                                     "organization_id", uuid_json(&p.org_id), "signing_secret",
                                     p.signing_secret));
    }
  }
  json_decref(o);
}

/* --- API tokens ---------------------------------------------------------- */

static void token_row(const hb_token_row *r, void *ud) {
  json_t *t = json_pack("{s:o,s:s,s:o,s:o,s:I}", "id", uuid_json(&r->id), "name", r->name,
                        "organization_id", uuid_json(&r->org_id), "plugin_id", uuid_json(&r->plugin_id),
                        "created_at", (json_int_t)r->created_at);
  json_object_set_new(t, "revoked_at", r->revoked_at ? json_integer(r->revoked_at) : json_null());
  json_array_append_new(ud, t);
}

void hb_api_admin_tokens(hb_conn *c, hb_http_req *req) {
  hb_store *s = store_of(c);
  if (!s) return respond_err(c, HB_E_INTERNAL, NULL, "the store cannot be opened");
  if (req->method != HTTP_POST) {
    json_t *arr = json_array();
    hb_store_token_list(s, token_row, arr);
    return respond_json(c, 200, json_pack("{s:o}", "tokens", arr));
  }
  json_t *o = body_object(c, req);
  if (!o) return;
  const char *orgkey, *plugkey, *name;
  hb_org_row org;
  if (str_field(c, o, "organization", true, &orgkey) && str_field(c, o, "plugin", true, &plugkey) &&
      str_field(c, o, "name", false, &name) && (!name || valid_name(c, name, "/name")) &&
      find_org(c, s, orgkey, &org, "/organization")) {
    hb_plugin_row p;
    if (hb_store_plugin_find(s, &org.id, plugkey, &p) != 0) {
      respond_err(c, HB_E_NOT_FOUND, "/plugin", "no such plugin in that organization");
    } else {
      char tok[HB_MAX_API_TOKEN_BYTES + 1];
      hb_token_row t;
      int r = hb_store_token_create(s, &org.id, &p.id, name, tok, &t);
      if (r == 1) respond_err(c, HB_E_ALREADY_EXISTS, "/name", "a token with that name exists");
      else if (r != 0) respond_err(c, HB_E_INTERNAL, NULL, NULL);
      else {
        log_action(c, req, "admin: token created", &t.id, t.name);
        respond_json(c, 201, json_pack("{s:o,s:s,s:o,s:o,s:s}", "id", uuid_json(&t.id), "token", tok,
                                       "organization_id", uuid_json(&t.org_id), "plugin_id",
                                       uuid_json(&t.plugin_id), "name", t.name));
      }
      memset(tok, 0, sizeof tok);
    }
  }
  json_decref(o);
}

void hb_api_admin_token_revoke(hb_conn *c, hb_http_req *req) {
  static const char prefix[] = "/api/v1/admin/tokens/";
  hb_store *s = store_of(c);
  if (!s) return respond_err(c, HB_E_INTERNAL, NULL, "the store cannot be opened");
  const char *id = req->url + sizeof prefix - 1;
  size_t n = strcspn(id, "?#");
  hb_uuid u;
  if (!hb_uuid_parse(id, n, &u)) return respond_err(c, HB_E_INVALID_UUID, NULL, "the token id must be a UUID");
  int r = hb_store_token_revoke(s, &u);
  if (r == 1) return respond_err(c, HB_E_NOT_FOUND, NULL, "no such token");
  if (r != 0) return respond_err(c, HB_E_INTERNAL, NULL, NULL);
  log_action(c, req, "admin: token revoked", &u, NULL);
  respond_json(c, 200, json_pack("{s:s#,s:b}", "id", id, (int)n, "revoked", 1));
}
