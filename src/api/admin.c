/*
 * admin.c - the admin HTTP API: organizations, plugins, API tokens, user
 * revocations, disconnects, export and import, as the CLI manages them.
 * Off unless `admin_token_sha256` is configured; the router checks the
 * admin credential before a handler runs.
 *
 * No store call runs on an I/O thread: with PostgreSQL one would block the
 * loop on the network for as long as the database takes (or its timeouts,
 * when it is down). A handler copies what the request says (method, body,
 * the id in the path), defers its answer (hb_http_defer: the connection
 * stops reading and keeps any pipelined bytes) and hands the work to the
 * admin worker thread (worker.h), which has a store handle of its own; the
 * answer is written on the connection's thread. A store that cannot be
 * reached answers 503 store_unavailable with Retry-After: 1, and so does a
 * request that waited too long for the worker (HB_ADMIN_QUEUE_WAIT_MS) or
 * found its queue full.
 *
 * What the changes do to running servers (every node: through the store's
 * change notification, within about a second) is the server's business:
 * the credential snapshot reloads, and connections that a deletion, a
 * retired secret, a revocation or a disconnect ends are closed (room.h).
 */
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hubbub/alloc.h"
#include "hubbub/dump.h"
#include "hubbub/field.h"
#include "hubbub/io.h"
#include "hubbub/json.h"
#include "hubbub/log.h"
#include "hubbub/router.h"
#include "hubbub/store.h"
#include "hubbub/user_id.h"
#include "hubbub/worker.h"

/* ---- the job: a request handed to the worker ----------------------------- */

typedef struct admin_job admin_job;
/* Runs on the worker thread: answer j (reply_json / reply_err). */
typedef void (*admin_op)(admin_job *j, hb_store *s);

struct admin_job {
  hb_conn *c; /* held (hb_http_defer) until job_done */
  admin_op op;
  const char *location; /* the store (cfg->data_dir: immutable for the process) */
  unsigned method;
  hb_uuid id; /* the path's id, when the route has one */
  bool include_secrets;
  char *body; /* a copy: the request may be freed if the connection closes meanwhile */
  size_t body_len;
  /* the answer */
  int status;
  hb_strbuf out;
  bool retry_after;
  bool secret; /* the answer holds secrets: wiped after it is queued */
  hb_error err; /* an error answer (HB_OK: none), counted and logged as any other */
  /* for the log lines of actions, copied from the request */
  char cred[HB_LOG_REDACT_BYTES];
  char peer[HB_PEER_NAME_BYTES];
};

static hb_worker *worker;

static void reply_json(admin_job *j, int status, json_t *o) {
  char *s = json_dumps(o, JSON_COMPACT);
  hb_strbuf_reset(&j->out);
  if (s) hb_strbuf_addstr(&j->out, s);
  if (s && j->secret) OPENSSL_cleanse(s, strlen(s));
  free(s); /* jansson's allocator */
  json_decref(o);
  j->status = s ? status : 500;
  j->err.err = HB_OK;
}

static void reply_err(admin_job *j, hb_err err, const char *pointer, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void reply_err(admin_job *j, hb_err err, const char *pointer, const char *fmt, ...) {
  char msg[HB_ERROR_MESSAGE_BYTES] = "";
  hb_error e;
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
  }
  hb_error_set(&e, err, pointer, fmt ? "%s" : NULL, msg);
  j->err = e;
  hb_strbuf_reset(&j->out);
  hb_http_error_body(&j->out, &e);
  j->status = hb_err_http_status(err);
  j->retry_after = err == HB_E_STORE_UNAVAILABLE;
}

/* A store result that is not success or "not found": 503 when the store
 * cannot be reached (worth a retry), else 500. */
static void store_failed(admin_job *j, int rc) {
  if (rc == HB_STORE_UNAVAILABLE) reply_err(j, HB_E_STORE_UNAVAILABLE, NULL, NULL);
  else reply_err(j, HB_E_INTERNAL, NULL, NULL);
}

/* An admin action that changed something, at info: who (the admin token,
 * by the first hex digits of its hash), from where, what, and its id.
 * Never a secret: a token or signing secret is shown once, to the caller.
 * On the worker thread: who and from where were copied at submit(). */
static void log_action_user(admin_job *j, const char *what, const hb_uuid *id, const char *name, const char *user) {
  hb_log_line l;
  if (!hb_log_begin(&l, HB_LOG_INFO, what)) return;
  char ids[HB_UUID_STR_BYTES];
  hb_uuid_format(id, ids);
  hb_log_str(&l, "admin", j->cred);
  hb_log_str(&l, "peer", j->peer);
  hb_log_str(&l, "id", ids);
  hb_log_str(&l, "name", name);
  hb_log_str(&l, "user", user);
  hb_log_end(&l);
}

static void log_action(admin_job *j, const char *what, const hb_uuid *id, const char *name) {
  log_action_user(j, what, id, name, NULL);
}

/* On the worker thread. */
static void job_run(void *arg) {
  admin_job *j = arg;
  hb_store *s = hb_store_thread(j->location); /* opened on first use, again after a failure */
  if (!s) return reply_err(j, HB_E_STORE_UNAVAILABLE, NULL, NULL);
  j->op(j, s);
}

static void job_late(void *arg) {
  reply_err(arg, HB_E_STORE_UNAVAILABLE, NULL, "the store did not answer in time; try again");
}

static void job_free(admin_job *j) {
  if (j->secret && j->out.buf) OPENSSL_cleanse(j->out.buf, j->out.cap);
  hb_strbuf_free(&j->out);
  if (j->body) OPENSSL_cleanse(j->body, j->body_len); /* an import may carry signing secrets */
  hb_free(j->body);
  hb_free(j);
}

/* On the connection's thread (ctx NULL: its loop is gone, and so is the
 * connection: only release). */
static void job_done(void *ctx, void *arg) {
  admin_job *j = arg;
  if (ctx && hb_http_deferred_open(j->c)) {
    if (j->err.err != HB_OK) hb_http_note_error(j->c, &j->err, 0);
    char extra[64];
    snprintf(extra, sizeof extra, "Cache-Control: no-store\r\n%s", j->retry_after ? "Retry-After: 1\r\n" : "");
    hb_http_respond(j->c, j->status, "application/json", extra, j->out.buf, j->out.len, false);
  }
  hb_http_resume(j->c);
  job_free(j);
}

/* On the I/O thread: copy the request, defer the answer, queue the job. */
static void submit(hb_conn *c, hb_http_req *req, admin_op op, const hb_uuid *id, bool include_secrets) {
  admin_job *j = hb_calloc(1, sizeof *j);
  j->c = c;
  j->op = op;
  j->location = c->io->set->cfg->data_dir;
  j->method = req->method;
  if (id) j->id = *id;
  j->include_secrets = include_secrets;
  snprintf(j->cred, sizeof j->cred, "%s", req->log_cred);
  hb_conn_peer_name(c, j->peer);
  if (req->body.len) {
    j->body = hb_malloc(req->body.len + 1);
    memcpy(j->body, req->body.buf, req->body.len);
    j->body[req->body.len] = '\0';
    j->body_len = req->body.len;
  }
  if (!worker || !hb_worker_submit(worker, c->io, job_run, job_late, HB_ADMIN_QUEUE_WAIT_MS, job_done, j)) {
    job_free(j);
    hb_error e;
    hb_error_set(&e, HB_E_STORE_UNAVAILABLE, NULL, "%s",
                 worker ? "too many admin requests are waiting for the store; try again" : "the admin worker is not running");
    hb_http_respond_error(c, &e, "Retry-After: 1\r\n", false);
    return;
  }
  /* job_done runs from this thread's inbox, so never before this returns. */
  hb_http_defer(c);
  /* The request deadline (slowloris) is for reading it; the answer may
   * take as long as the store's own timeouts allow. */
  c->deadline_ms = hb_io_now_ms(c->io) + HB_ADMIN_ANSWER_TIMEOUT_MS;
}

void hb_api_admin_start(const hb_config *cfg) {
  if (!worker) worker = hb_worker_start("admin", HB_ADMIN_MAX_QUEUED_JOBS, hb_store_thread_close);
}

void hb_api_admin_stop(void) {
  hb_worker_stop(worker);
  worker = NULL;
}

/* ---- helpers (worker thread) --------------------------------------------- */

/* The body as a JSON object through the front door (json.h). NULL after answering. */
static json_t *body_object(admin_job *j) {
  json_t *o = NULL;
  hb_error e;
  if (hb_field_top_object(j->body ? j->body : "", j->body_len, &o, &e) != HB_OK) {
    json_decref(o);
    reply_err(j, e.err, e.pointer[0] ? e.pointer : NULL, "%s", e.message);
    return NULL;
  }
  return o;
}

/* A required or optional string member; false after answering. */
static bool str_field(admin_job *j, json_t *o, const char *key, bool required, const char **out) {
  char ptr[64];
  snprintf(ptr, sizeof ptr, "/%s", key);
  json_t *v = json_object_get(o, key);
  *out = NULL;
  if (!v) {
    if (required) reply_err(j, HB_E_MISSING_FIELD, ptr, NULL);
    return !required;
  }
  if (!json_is_string(v)) {
    reply_err(j, HB_E_INVALID_TYPE, ptr, "must be a string");
    return false;
  }
  *out = json_string_value(v);
  return true;
}

/* An optional integer member in [min, max]; *present says whether it was given. */
static bool int_field(admin_job *j, json_t *o, const char *key, long long min, long long max, long long *out,
                      bool *present) {
  char ptr[64];
  snprintf(ptr, sizeof ptr, "/%s", key);
  json_t *v = json_object_get(o, key);
  *present = v != NULL;
  if (!v) return true;
  if (!json_is_integer(v)) {
    reply_err(j, HB_E_INVALID_TYPE, ptr, "must be an integer");
    return false;
  }
  *out = json_integer_value(v);
  if (*out < min || *out > max) {
    reply_err(j, HB_E_INVALID_VALUE, ptr, "must be %lld to %lld", min, max);
    return false;
  }
  return true;
}

/* Refuse members the operation does not know: a typo must not pass as a default. */
static bool only_fields(admin_job *j, json_t *o, const char *const *known) {
  const char *key;
  json_t *v;
  json_object_foreach(o, key, v) {
    bool ok = false;
    for (const char *const *k = known; *k && !ok; k++) ok = strcmp(*k, key) == 0;
    if (!ok) {
      char ptr[HB_ERROR_POINTER_BYTES];
      snprintf(ptr, sizeof ptr, "/%.80s", key);
      reply_err(j, HB_E_INVALID_VALUE, ptr, "unknown field");
      return false;
    }
  }
  return true;
}

/* The store's one rule for names (hb_store_name_problem). */
static bool valid_name(admin_job *j, const char *name, const char *ptr) {
  const char *problem = hb_store_name_problem(name);
  if (problem) reply_err(j, HB_E_INVALID_VALUE, ptr, "the name %s", problem);
  return !problem;
}

static json_t *uuid_json(const hb_uuid *u) {
  char s[HB_UUID_STR_BYTES];
  hb_uuid_format(u, s);
  return json_string(s);
}

static json_t *time_or_null(int64_t t) { return t ? json_integer(t) : json_null(); }

static bool find_org(admin_job *j, hb_store *s, const char *key, hb_org_row *org, const char *ptr) {
  int rc = hb_store_org_find(s, key, org);
  if (rc == 0) return true;
  if (rc == 1) reply_err(j, HB_E_NOT_FOUND, ptr, "no such organization");
  else store_failed(j, rc);
  return false;
}

/* The plugin of the path's id, its secrets wiped. */
static bool find_plugin_by_id(admin_job *j, hb_store *s, hb_plugin_row *p) {
  char id[HB_UUID_STR_BYTES];
  hb_uuid_format(&j->id, id);
  int rc = hb_store_plugin_find(s, NULL, id, p);
  OPENSSL_cleanse(p->signing_secret, sizeof p->signing_secret);
  OPENSSL_cleanse(p->previous_secret, sizeof p->previous_secret);
  if (rc == 0) return true;
  if (rc == 1) reply_err(j, HB_E_NOT_FOUND, NULL, "no such plugin");
  else store_failed(j, rc);
  return false;
}

/* ---- organizations ------------------------------------------------------- */

static void org_row(const hb_org_row *r, void *ud) {
  json_array_append_new(ud, json_pack("{s:o,s:s,s:I}", "id", uuid_json(&r->id), "name", r->name,
                                      "created_at", (json_int_t)r->created_at));
}

static void op_orgs(admin_job *j, hb_store *s) {
  if (j->method != HTTP_POST) {
    json_t *arr = json_array();
    int rc = hb_store_org_list(s, org_row, arr);
    if (rc != 0) {
      json_decref(arr);
      return store_failed(j, rc);
    }
    return reply_json(j, 200, json_pack("{s:o}", "organizations", arr));
  }
  static const char *const known[] = {"name", NULL};
  json_t *o = body_object(j);
  const char *name;
  if (!o) return;
  if (only_fields(j, o, known) && str_field(j, o, "name", true, &name) && valid_name(j, name, "/name")) {
    hb_org_row row;
    int rc = hb_store_org_create(s, name, &row);
    if (rc == 1) reply_err(j, HB_E_ALREADY_EXISTS, "/name", "an organization with that name exists");
    else if (rc != 0) store_failed(j, rc);
    else {
      log_action(j, "admin: organization created", &row.id, row.name);
      reply_json(j, 201, json_pack("{s:o,s:s}", "id", uuid_json(&row.id), "name", row.name));
    }
  }
  json_decref(o);
}

void hb_api_admin_orgs(hb_conn *c, hb_http_req *req) { submit(c, req, op_orgs, NULL, false); }

static void op_org_delete(admin_job *j, hb_store *s) {
  char id[HB_UUID_STR_BYTES];
  hb_org_row org;
  hb_uuid_format(&j->id, id);
  if (!find_org(j, s, id, &org, NULL)) return;
  int rc = hb_store_org_delete(s, &org.id);
  if (rc == 1) return reply_err(j, HB_E_NOT_FOUND, NULL, "no such organization");
  if (rc != 0) return store_failed(j, rc);
  log_action(j, "admin: organization deleted, with its plugins and tokens", &org.id, org.name);
  reply_json(j, 200, json_pack("{s:o,s:s,s:b}", "id", uuid_json(&org.id), "name", org.name, "deleted", 1));
}

/* ---- plugins ------------------------------------------------------------- */

static void plugin_row(const hb_plugin_row *r, void *ud) {
  /* Never a signing secret: it is shown once, at creation or rotation. */
  json_t *o = json_pack("{s:o,s:s,s:o,s:s,s:I,s:s}", "id", uuid_json(&r->id), "name", r->name, "organization_id",
                        uuid_json(&r->org_id), "allowed_origins", r->allowed_origins, "created_at",
                        (json_int_t)r->created_at, "signing_kid", r->signing_kid);
  bool prev = r->previous_secret[0] != '\0';
  json_object_set_new(o, "previous_kid", prev ? json_string(r->previous_kid) : json_null());
  json_object_set_new(o, "previous_retire_at", time_or_null(prev ? r->previous_retire_at : 0));
  json_array_append_new(ud, o);
}

static void op_plugins(admin_job *j, hb_store *s) {
  if (j->method != HTTP_POST) {
    json_t *arr = json_array();
    int rc = hb_store_plugin_list(s, NULL, plugin_row, arr);
    if (rc != 0) {
      json_decref(arr);
      return store_failed(j, rc);
    }
    return reply_json(j, 200, json_pack("{s:o}", "plugins", arr));
  }
  static const char *const known[] = {"organization", "name", "allowed_origins", NULL};
  json_t *o = body_object(j);
  if (!o) return;
  const char *orgkey, *name, *origins;
  hb_org_row org;
  hb_plugin_row p;
  if (only_fields(j, o, known) && str_field(j, o, "organization", true, &orgkey) &&
      str_field(j, o, "name", true, &name) && str_field(j, o, "allowed_origins", false, &origins) &&
      valid_name(j, name, "/name")) {
    if (origins && strlen(origins) >= sizeof p.allowed_origins) {
      reply_err(j, HB_E_INVALID_VALUE, "/allowed_origins", "at most %zu bytes", sizeof p.allowed_origins - 1);
    } else if (find_org(j, s, orgkey, &org, "/organization")) {
      /* The plugin and its allowlist in one transaction. */
      int rc = hb_store_plugin_create_with_origins(s, &org.id, name, origins, &p);
      j->secret = true;
      if (rc == 1) reply_err(j, HB_E_ALREADY_EXISTS, "/name", "a plugin with that name exists in the organization");
      else if (rc != 0) store_failed(j, rc);
      else {
        log_action(j, "admin: plugin created", &p.id, p.name);
        reply_json(j, 201, json_pack("{s:o,s:s,s:o,s:s,s:s,s:s}", "id", uuid_json(&p.id), "name", p.name,
                                     "organization_id", uuid_json(&p.org_id), "allowed_origins", p.allowed_origins,
                                     "signing_secret", p.signing_secret, "signing_kid", p.signing_kid));
      }
      OPENSSL_cleanse(&p, sizeof p);
    }
  }
  json_decref(o);
}

void hb_api_admin_plugins(hb_conn *c, hb_http_req *req) { submit(c, req, op_plugins, NULL, false); }

static void op_plugin_delete(admin_job *j, hb_store *s) {
  hb_plugin_row p;
  if (!find_plugin_by_id(j, s, &p)) return;
  int rc = hb_store_plugin_delete(s, &p.id);
  if (rc == 1) return reply_err(j, HB_E_NOT_FOUND, NULL, "no such plugin");
  if (rc != 0) return store_failed(j, rc);
  log_action(j, "admin: plugin deleted, with its tokens", &p.id, p.name);
  reply_json(j, 200, json_pack("{s:o,s:s,s:o,s:b}", "id", uuid_json(&p.id), "name", p.name, "organization_id",
                               uuid_json(&p.org_id), "deleted", 1));
}

/* {} rotates (the previous secret kept until retired), {"previous_ttl_s": N}
 * rotates keeping it N seconds, {"retire_previous": true} only retires. */
static void op_rotate_secret(admin_job *j, hb_store *s) {
  static const char *const known[] = {"previous_ttl_s", "retire_previous", NULL};
  json_t *o = body_object(j);
  if (!o) return;
  long long ttl = 0;
  bool has_ttl;
  json_t *retire = json_object_get(o, "retire_previous");
  hb_plugin_row p, r;
  if (!only_fields(j, o, known) || !int_field(j, o, "previous_ttl_s", 0, HB_API_TOKEN_MAX_TTL_S, &ttl, &has_ttl)) {
    /* answered */
  } else if (retire && !json_is_boolean(retire)) {
    reply_err(j, HB_E_INVALID_TYPE, "/retire_previous", "must be true or false");
  } else if (json_is_true(retire) && has_ttl) {
    reply_err(j, HB_E_INVALID_VALUE, "/previous_ttl_s", "retire_previous rotates nothing: no previous_ttl_s");
  } else if (find_plugin_by_id(j, s, &p)) {
    if (json_is_true(retire)) {
      bool had = false;
      int rc = hb_store_plugin_retire_previous(s, &p.id, &had);
      if (rc == 1) reply_err(j, HB_E_NOT_FOUND, NULL, "no such plugin");
      else if (rc != 0) store_failed(j, rc);
      else {
        if (had) log_action(j, "admin: previous signing secret retired", &p.id, p.name);
        reply_json(j, 200, json_pack("{s:o,s:s,s:b,s:o}", "id", uuid_json(&p.id), "name", p.name, "retired", had,
                                     "previous_kid", had ? json_string(p.previous_kid) : json_null()));
      }
    } else {
      int rc = hb_store_plugin_rotate_secret(s, &p.id, ttl, &r);
      j->secret = true;
      if (rc == 1) reply_err(j, HB_E_NOT_FOUND, NULL, "no such plugin");
      else if (rc != 0) store_failed(j, rc);
      else {
        log_action(j, "admin: signing secret rotated", &r.id, r.name);
        reply_json(j, 200, json_pack("{s:o,s:s,s:s,s:s,s:s,s:o}", "id", uuid_json(&r.id), "name", r.name,
                                     "signing_secret", r.signing_secret, "signing_kid", r.signing_kid, "previous_kid",
                                     r.previous_kid, "previous_retire_at", time_or_null(r.previous_retire_at)));
      }
      OPENSSL_cleanse(&r, sizeof r);
    }
  }
  json_decref(o);
}

/* A user_id member by the rule of a token's sub (user_id.h). */
static bool user_field(admin_job *j, json_t *o, bool required, const char **out) {
  if (!str_field(j, o, "user_id", required, out)) return false;
  if (*out && !hb_user_id_valid(*out, strlen(*out))) {
    reply_err(j, HB_E_INVALID_VALUE, "/user_id", "must be 1 to %d bytes of UTF-8 without control characters",
              HB_MAX_USER_ID_BYTES);
    return false;
  }
  return true;
}

/* Revoke a user's connection tokens issued until now: new handshakes with
 * them get 401 token_revoked, and every node closes the user's open
 * connections with 4410. */
static void op_revoke_user(admin_job *j, hb_store *s) {
  static const char *const known[] = {"user_id", NULL};
  json_t *o = body_object(j);
  if (!o) return;
  const char *user;
  hb_revocation_row r;
  if (only_fields(j, o, known) && user_field(j, o, true, &user)) {
    int rc = hb_store_revoke_user_tokens(s, &j->id, user, (int64_t)time(NULL), &r);
    if (rc == 1) reply_err(j, HB_E_NOT_FOUND, NULL, "no such plugin");
    else if (rc != 0) store_failed(j, rc);
    else {
      log_action_user(j, "admin: user revoked", &r.plugin_id, NULL, r.user_id);
      reply_json(j, 201, json_pack("{s:o,s:s,s:I}", "plugin_id", uuid_json(&r.plugin_id), "user_id", r.user_id,
                                   "revoked_before", (json_int_t)r.revoked_before));
    }
  }
  json_decref(o);
}

/* Close the connections open now of a user ({"user_id"}) or of a room
 * ({"event_id", "session_id"?}) on every node, without refusing anything
 * afterwards. Accepted: the nodes apply it within about a second. */
static void op_disconnect(admin_job *j, hb_store *s) {
  static const char *const known[] = {"user_id", "event_id", "session_id", NULL};
  json_t *o = body_object(j);
  if (!o) return;
  const char *user;
  hb_disconnect_row d;
  hb_error e;
  memset(&d, 0, sizeof d);
  d.plugin_id = j->id;
  bool has_event = json_object_get(o, "event_id") != NULL, has_session = json_object_get(o, "session_id") != NULL;
  if (!only_fields(j, o, known) || !user_field(j, o, false, &user)) goto out;
  if ((user != NULL) == has_event) {
    reply_err(j, user ? HB_E_INVALID_VALUE : HB_E_MISSING_FIELD, user ? "/event_id" : "/user_id",
              "give user_id (a user) or event_id with an optional session_id (a room), not both");
    goto out;
  }
  if (user) {
    if (has_session) {
      reply_err(j, HB_E_INVALID_VALUE, "/session_id", "a session belongs to a room: give event_id with it");
      goto out;
    }
    snprintf(d.user_id, sizeof d.user_id, "%s", user);
  } else {
    d.room = true;
    if (hb_field_uuid(o, "event_id", "/event_id", &d.event_id, &e) != HB_OK ||
        (has_session && hb_field_uuid(o, "session_id", "/session_id", &d.session_id, &e) != HB_OK)) {
      reply_err(j, e.err, e.pointer, "%s", e.message);
      goto out;
    }
  }
  int rc = hb_store_disconnect_create(s, &d);
  if (rc == 1) {
    reply_err(j, HB_E_NOT_FOUND, NULL, "no such plugin");
  } else if (rc != 0) {
    store_failed(j, rc);
  } else {
    log_action_user(j, d.room ? "admin: room disconnected" : "admin: user disconnected", &d.plugin_id, NULL,
                    d.room ? NULL : d.user_id);
    json_t *r = json_pack("{s:o,s:o,s:I}", "id", uuid_json(&d.id), "plugin_id", uuid_json(&d.plugin_id),
                          "created_at", (json_int_t)d.created_at);
    if (d.room) {
      json_object_set_new(r, "event_id", uuid_json(&d.event_id));
      json_object_set_new(r, "session_id", has_session ? uuid_json(&d.session_id) : json_null());
    } else {
      json_object_set_new(r, "user_id", json_string(d.user_id));
    }
    reply_json(j, 202, r);
  }
out:
  json_decref(o);
}

/* The routes with an organization's or a plugin's id in the path. */
static void id_route(hb_conn *c, hb_http_req *req, admin_op op) {
  hb_uuid id;
  if (!hb_router_path_uuid(req, &id)) {
    hb_error e;
    hb_error_set(&e, HB_E_INVALID_UUID, NULL, "the id in the path must be a UUID");
    return hb_http_respond_error(c, &e, NULL, false);
  }
  submit(c, req, op, &id, false);
}

void hb_api_admin_org_delete(hb_conn *c, hb_http_req *req) { id_route(c, req, op_org_delete); }
void hb_api_admin_plugin_delete(hb_conn *c, hb_http_req *req) { id_route(c, req, op_plugin_delete); }
void hb_api_admin_rotate_secret(hb_conn *c, hb_http_req *req) { id_route(c, req, op_rotate_secret); }
void hb_api_admin_revoke_user(hb_conn *c, hb_http_req *req) { id_route(c, req, op_revoke_user); }
void hb_api_admin_disconnect(hb_conn *c, hb_http_req *req) { id_route(c, req, op_disconnect); }

/* ---- API tokens ---------------------------------------------------------- */

static void token_row(const hb_token_row *r, void *ud) {
  json_t *t = json_pack("{s:o,s:s,s:o,s:o,s:I}", "id", uuid_json(&r->id), "name", r->name,
                        "organization_id", uuid_json(&r->org_id), "plugin_id", uuid_json(&r->plugin_id),
                        "created_at", (json_int_t)r->created_at);
  json_object_set_new(t, "revoked_at", time_or_null(r->revoked_at));
  json_object_set_new(t, "expires_at", time_or_null(r->expires_at));
  json_array_append_new(ud, t);
}

static void op_tokens(admin_job *j, hb_store *s) {
  if (j->method != HTTP_POST) {
    json_t *arr = json_array();
    int rc = hb_store_token_list(s, token_row, arr);
    if (rc != 0) {
      json_decref(arr);
      return store_failed(j, rc);
    }
    return reply_json(j, 200, json_pack("{s:o}", "tokens", arr));
  }
  static const char *const known[] = {"organization", "plugin", "name", "ttl_s", NULL};
  json_t *o = body_object(j);
  if (!o) return;
  const char *orgkey, *plugkey, *name;
  long long ttl = 0;
  bool has_ttl;
  hb_org_row org;
  if (only_fields(j, o, known) && str_field(j, o, "organization", true, &orgkey) &&
      str_field(j, o, "plugin", true, &plugkey) && str_field(j, o, "name", false, &name) &&
      (!name || valid_name(j, name, "/name")) && int_field(j, o, "ttl_s", 1, HB_API_TOKEN_MAX_TTL_S, &ttl, &has_ttl) &&
      find_org(j, s, orgkey, &org, "/organization")) {
    hb_plugin_row p;
    int rc = hb_store_plugin_find(s, &org.id, plugkey, &p);
    OPENSSL_cleanse(&p.signing_secret, sizeof p.signing_secret);
    OPENSSL_cleanse(&p.previous_secret, sizeof p.previous_secret);
    if (rc == 1) {
      reply_err(j, HB_E_NOT_FOUND, "/plugin", "no such plugin in that organization");
    } else if (rc != 0) {
      store_failed(j, rc);
    } else {
      char tok[HB_MAX_API_TOKEN_BYTES + 1];
      hb_token_row t;
      int64_t expires_at = has_ttl ? (int64_t)time(NULL) + ttl : 0;
      rc = hb_store_token_create_with_expiry(s, &org.id, &p.id, name, expires_at, tok, &t);
      j->secret = true;
      if (rc == 1) reply_err(j, HB_E_ALREADY_EXISTS, "/name", "a token with that name exists");
      else if (rc != 0) store_failed(j, rc);
      else {
        log_action(j, "admin: token created", &t.id, t.name);
        reply_json(j, 201, json_pack("{s:o,s:s,s:o,s:o,s:s,s:o}", "id", uuid_json(&t.id), "token", tok,
                                     "organization_id", uuid_json(&t.org_id), "plugin_id", uuid_json(&t.plugin_id),
                                     "name", t.name, "expires_at", time_or_null(t.expires_at)));
      }
      OPENSSL_cleanse(tok, sizeof tok);
    }
  }
  json_decref(o);
}

void hb_api_admin_tokens(hb_conn *c, hb_http_req *req) { submit(c, req, op_tokens, NULL, false); }

static void op_token_revoke(admin_job *j, hb_store *s) {
  int rc = hb_store_token_revoke(s, &j->id);
  if (rc == 1) return reply_err(j, HB_E_NOT_FOUND, NULL, "no such token");
  if (rc != 0) return store_failed(j, rc);
  log_action(j, "admin: token revoked", &j->id, NULL);
  reply_json(j, 200, json_pack("{s:o,s:b}", "id", uuid_json(&j->id), "revoked", 1));
}

void hb_api_admin_token_revoke(hb_conn *c, hb_http_req *req) {
  static const char prefix[] = "/api/v1/admin/tokens/";
  const char *id = req->url + sizeof prefix - 1;
  hb_uuid u;
  if (!hb_uuid_parse(id, strcspn(id, "?#"), &u)) {
    hb_error e;
    hb_error_set(&e, HB_E_INVALID_UUID, NULL, "the token id must be a UUID");
    return hb_http_respond_error(c, &e, NULL, false);
  }
  submit(c, req, op_token_revoke, &u, false);
}

/* ---- export, import ------------------------------------------------------ */

static void op_export(admin_job *j, hb_store *s) {
  json_t *doc = NULL;
  int rc = hb_dump_export(s, j->include_secrets, &doc);
  if (rc != 0) return store_failed(j, rc);
  j->secret = j->include_secrets;
  reply_json(j, 200, doc);
}

/* GET /api/v1/admin/export[?include_secrets=true]: the `hubbub export` document. */
void hb_api_admin_export(hb_conn *c, hb_http_req *req) {
  char v[8];
  ssize_t n = hb_http_query_param(req->url, "include_secrets", v, sizeof v);
  bool secrets = n == 4 && memcmp(v, "true", 4) == 0;
  if (n != 0 && !secrets && !(n == 5 && memcmp(v, "false", 5) == 0)) {
    hb_error e;
    hb_error_set(&e, HB_E_INVALID_VALUE, NULL, "include_secrets must be true or false");
    return hb_http_respond_error(c, &e, NULL, false);
  }
  submit(c, req, op_export, NULL, secrets);
}

static void op_import(admin_job *j, hb_store *s) {
  static const char *const kinds[] = {"organizations", "plugins", "api_tokens", "revocations"};
  hb_store_import_result res;
  char err[HB_ERROR_MESSAGE_BYTES];
  int rc = hb_dump_import(s, j->body ? j->body : "", j->body_len, &res, err, sizeof err);
  if (rc == 1) {
    /* "POINTER: why" (or a JSON syntax error): the pointer apart. A
     * conflict with what the store holds is a 409, a bad document a 422. */
    char ptr[HB_ERROR_POINTER_BYTES] = "";
    const char *why = err, *sep = err[0] == '/' ? strstr(err, ": ") : NULL;
    if (sep && (size_t)(sep - err) < sizeof ptr) {
      memcpy(ptr, err, (size_t)(sep - err));
      ptr[sep - err] = '\0';
      why = sep + 2;
    }
    return reply_err(j, res.kind ? HB_E_ALREADY_EXISTS : HB_E_INVALID_VALUE, ptr[0] ? ptr : NULL,
                     "import refused, nothing changed: %s", why);
  }
  if (rc != 0) return store_failed(j, rc);
  json_t *created = json_object(), *unchanged = json_object();
  for (int k = 0; k < 4; k++) {
    json_object_set_new(created, kinds[k], json_integer((json_int_t)res.created[k]));
    json_object_set_new(unchanged, kinds[k], json_integer((json_int_t)res.unchanged[k]));
  }
  hb_info("admin: imported an export document (%zu organizations, %zu plugins, %zu API tokens created)",
          res.created[0], res.created[1], res.created[2]);
  reply_json(j, 200, json_pack("{s:b,s:o,s:o,s:I}", "imported", 1, "created", created, "unchanged", unchanged,
                               "new_signing_secrets", (json_int_t)res.new_secrets));
}

void hb_api_admin_import(hb_conn *c, hb_http_req *req) { submit(c, req, op_import, NULL, false); }
