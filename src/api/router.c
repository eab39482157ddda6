/* router.c - map a request to its handler; the checks every route shares (router.h). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "hubbub/router.h"

#include "hubbub/alloc.h"
#include "hubbub/io.h"
#include "hubbub/log.h"
#include "hubbub/metrics.h"
#include "hubbub/origin.h"

enum { M_GET = 1 << 0, M_HEAD = 1 << 1, M_POST = 1 << 2, M_DELETE = 1 << 3 };
/* R_CORS: browsers on the origins of cors_allowed_origins may call it (the
 * HTTP API, /healthz, /metrics). Not the WebSocket (no CORS there: its
 * Origin allowlists apply) nor the static files (open to any origin). */
enum {
  R_AUTH = 1 << 0,   /* an API token */
  R_JSON = 1 << 1,   /* a JSON body (POST) */
  R_WS = 1 << 2,     /* the WebSocket upgrade */
  R_PREFIX = 1 << 3, /* matches a path prefix */
  R_STATIC = 1 << 4, /* an embedded file */
  R_ADMIN = 1 << 5,  /* the admin token */
  R_BATCH = 1 << 6,  /* a body of many publishes: max_batch_body_bytes */
  R_CORS = 1 << 7,   /* cross-origin calls from cors_allowed_origins */
  R_IMPORT = 1 << 8, /* an export document: HB_ADMIN_IMPORT_MAX_BYTES */
};

typedef struct {
  const char *path;
  unsigned methods;
  unsigned flags;
  void (*handle)(hb_conn *c, hb_http_req *req);
  const char *allow; /* the Allow header of a 405 */
} route;

static const route routes[] = {
    {"/api/v1/pub_subs", M_POST, R_AUTH | R_JSON | R_CORS, hb_api_publish, "POST"},
    {"/api/v1/publish", M_POST, R_AUTH | R_JSON | R_CORS, hb_api_publish, "POST"},
    {"/api/v1/pub_subs/batch", M_POST, R_AUTH | R_JSON | R_BATCH | R_CORS, hb_api_publish_batch, "POST"},
    {"/api/v1/history", M_GET, R_AUTH | R_CORS, hb_api_history, "GET"},
    {"/api/v1/presence", M_GET, R_AUTH | R_CORS, hb_api_presence, "GET"},
    {"/api/v1/connection_tokens", M_POST, R_AUTH | R_JSON | R_CORS, hb_api_connection_tokens, "POST"},
    {"/api/v1/ws", M_GET, R_WS, hb_api_room_socket, "GET"},
    {"/healthz", M_GET | M_HEAD, R_CORS, hb_api_healthz, "GET, HEAD"},
    {"/metrics", M_GET | M_HEAD, R_CORS, hb_api_metrics, "GET, HEAD"},
    {"/api/v1/admin/organizations", M_GET | M_POST, R_ADMIN | R_JSON | R_CORS, hb_api_admin_orgs, "GET, POST"},
    {"/api/v1/admin/plugins", M_GET | M_POST, R_ADMIN | R_JSON | R_CORS, hb_api_admin_plugins, "GET, POST"},
    {"/api/v1/admin/tokens", M_GET | M_POST, R_ADMIN | R_JSON | R_CORS, hb_api_admin_tokens, "GET, POST"},
    {"/api/v1/admin/tokens/", M_DELETE, R_ADMIN | R_PREFIX | R_CORS, hb_api_admin_token_revoke, "DELETE"},
    {"/api/v1/admin/organizations/{id}", M_DELETE, R_ADMIN | R_CORS, hb_api_admin_org_delete, "DELETE"},
    {"/api/v1/admin/plugins/{id}", M_DELETE, R_ADMIN | R_CORS, hb_api_admin_plugin_delete, "DELETE"},
    {"/api/v1/admin/plugins/{id}/rotate-secret", M_POST, R_ADMIN | R_JSON | R_CORS, hb_api_admin_rotate_secret, "POST"},
    {"/api/v1/admin/plugins/{id}/revocations", M_POST, R_ADMIN | R_JSON | R_CORS, hb_api_admin_revoke_user, "POST"},
    {"/api/v1/admin/plugins/{id}/disconnects", M_POST, R_ADMIN | R_JSON | R_CORS, hb_api_admin_disconnect, "POST"},
    {"/api/v1/admin/export", M_GET, R_ADMIN | R_CORS, hb_api_admin_export, "GET"},
    {"/api/v1/admin/import", M_POST, R_ADMIN | R_JSON | R_IMPORT | R_CORS, hb_api_admin_import, "POST"},
    {"/sdk/", M_GET | M_HEAD, R_PREFIX | R_STATIC, hb_api_static, "GET, HEAD"},
    {"/demo", M_GET | M_HEAD, R_PREFIX | R_STATIC, hb_api_static, "GET, HEAD"},
    {"/", M_GET | M_HEAD, 0, hb_api_root, "GET, HEAD"},
};

static size_t path_len(const char *url) {
  size_t n = strcspn(url, "?#");
  return n;
}

/* The "{id}" segment of a route's path: where it is in `path`, or NULL. */
#define ID_SEGMENT "{id}"

/* Does a path with one "{id}" segment match url[0..n)? Any non-empty
 * segment stands for the id there (the handler parses it). */
static bool id_path_matches(const char *path, const char *brace, const char *url, size_t n) {
  size_t pre = (size_t)(brace - path);
  const char *post = brace + sizeof ID_SEGMENT - 1;
  size_t postn = strlen(post);
  if (n < pre + 1 + postn || memcmp(url, path, pre) != 0 || memcmp(url + n - postn, post, postn) != 0) return false;
  return memchr(url + pre, '/', n - pre - postn) == NULL;
}

static const route *find_route(const char *url) {
  if (url[0] != '/') return NULL; /* absolute-form and '*' targets are not served */
  size_t n = path_len(url);
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    const route *r = &routes[i];
    size_t rl = strlen(r->path);
    const char *brace = strstr(r->path, ID_SEGMENT);
    if (brace) {
      if (id_path_matches(r->path, brace, url, n)) return r;
    } else if (r->flags & R_PREFIX) {
      if (n > rl - (r->flags & R_STATIC ? 1 : 0) && memcmp(url, r->path, rl) == 0 &&
          (!(r->flags & R_STATIC) || hb_api_static_exists(url, n)))
        return r;
    } else if (n == rl && memcmp(url, r->path, rl) == 0) {
      return r;
    }
  }
  return NULL;
}

static unsigned method_bit(unsigned m) {
  switch (m) {
  case HTTP_GET: return M_GET;
  case HTTP_HEAD: return M_HEAD;
  case HTTP_POST: return M_POST;
  case HTTP_DELETE: return M_DELETE;
  default: return 0;
  }
}

static bool reject(hb_conn *c, hb_err err, const char *extra, const char *msg) {
  hb_error e;
  hb_error_set(&e, err, NULL, msg ? "%s" : NULL, msg);
  hb_http_respond_error(c, &e, extra, true);
  return false;
}

_Static_assert(sizeof(hb_principal) <= HB_HTTP_ROUTE_DATA_BYTES, "the principal fits route_data");

const hb_principal *hb_router_principal(const hb_http_req *req) {
  return (const hb_principal *)(const void *)req->route_data;
}

bool hb_router_path_uuid(const hb_http_req *req, hb_uuid *out) {
  const route *r = req->route;
  const char *brace = r ? strstr(r->path, ID_SEGMENT) : NULL;
  if (!brace) return false;
  size_t pre = (size_t)(brace - r->path), n = path_len(req->url);
  size_t seg = n - pre - strlen(brace + sizeof ID_SEGMENT - 1);
  return hb_uuid_parse(req->url + pre, seg, out);
}

/* RFC 9110 8.3.1: the media type is case-insensitive; parameters may follow. */
static bool is_json(const char *ct, size_t len) {
  static const char want[] = "application/json";
  size_t n = strcspn(ct, ";");
  while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) n--;
  return n == sizeof want - 1 && strncasecmp(ct, want, n) == 0;
}

/* --- CORS (https://fetch.spec.whatwg.org/#http-cors-protocol) -------------- */

/* The request headers a page may send to the API, and the response header
 * it may read besides the CORS-safelisted ones. */
#define CORS_ALLOW_HEADERS "Authorization, Content-Type, Idempotency-Key"
#define CORS_EXPOSE_HEADERS "Retry-After, Idempotent-Replayed"

static hb_log_limit cors_refused_limit;

/* What every response to a CORS route carries when cors_allowed_origins is
 * set: the Origin back when it is listed (a browser then lets the page read
 * the response), and Vary: Origin in any case (a cache must not hand one
 * origin's answer to another). True when the Origin is allowed. */
static bool cors_headers(hb_conn *c, hb_http_req *req, const char *list) {
  const char *origin = req->hdr[HB_H_ORIGIN];
  size_t olen = origin ? req->hdr_len[HB_H_ORIGIN] : 0;
  bool ok = origin && hb_origin_in_list(list, origin, olen);
  hb_strbuf sb = HB_STRBUF_INIT;
  if (ok) {
    hb_strbuf_addstr(&sb, "Access-Control-Allow-Origin: ");
    hb_strbuf_add(&sb, origin, olen);
    hb_strbuf_addstr(&sb, "\r\nAccess-Control-Expose-Headers: " CORS_EXPOSE_HEADERS "\r\n");
  }
  hb_strbuf_addstr(&sb, req->method == HTTP_OPTIONS
                            ? "Vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers\r\n"
                            : "Vary: Origin\r\n");
  req->resp_headers = hb_strbuf_release(&sb, NULL);
  unsigned long dropped = 0;
  if (origin && !ok && hb_log_enabled(HB_LOG_DEBUG) && hb_log_limit_take(&cors_refused_limit, &dropped)) {
    /* No CORS headers: the browser keeps the answer from the page. */
    hb_log_line l;
    hb_log_begin(&l, HB_LOG_DEBUG, "cors: origin not allowed");
    hb_log_strn(&l, "origin", origin, olen);
    hb_log_strn(&l, "path", req->url, strcspn(req->url, "?#"));
    if (dropped) hb_log_int(&l, "suppressed", (long long)dropped);
    hb_log_end(&l);
  }
  return ok;
}

/* OPTIONS on a CORS route: a preflight from an allowed Origin gets what the
 * route accepts; anything else gets 204 and no CORS permission. */
static void cors_preflight(hb_conn *c, hb_http_req *req, const route *r, bool allowed) {
  char extra[256];
  extra[0] = '\0';
  if (allowed && req->hdr[HB_H_ACR_METHOD])
    snprintf(extra, sizeof extra,
             "Access-Control-Allow-Methods: %s\r\nAccess-Control-Allow-Headers: " CORS_ALLOW_HEADERS
             "\r\nAccess-Control-Max-Age: %d\r\n",
             r->allow, HB_CORS_MAX_AGE_S);
  else
    snprintf(extra, sizeof extra, "Allow: OPTIONS, %s\r\n", r->allow);
  hb_http_respond(c, 204, NULL, extra, NULL, 0, false);
}

/* --- the checks every route shares ------------------------------------------ */

/* The credential of an Authorization header as log lines show it. */
static void note_cred(hb_http_req *req, const char *h, size_t hl, const hb_uuid *id) {
  if (id) { /* on every authenticated request: formatted only if a line is written */
    req->log_cred_id = *id;
    req->log_cred_id_set = true;
  } else if (hl) {
    hb_log_redact(h, hl, req->log_cred);
  }
}

static bool on_headers(hb_conn *c, hb_http_req *req) {
  const hb_config *cfg = c->io->set->cfg;
  const route *r = find_route(req->url);
  if (!r) return reject(c, HB_E_NOT_FOUND, NULL, NULL);
  req->route = r;
  if (r->flags & R_WS) req->transport = HB_TRANSPORT_WS;
  /* Off unless configured: then the admin paths do not exist at all. */
  if ((r->flags & R_ADMIN) && !cfg->admin_token_sha256[0]) return reject(c, HB_E_NOT_FOUND, NULL, NULL);
  if ((r->flags & R_CORS) && !hb_origin_list_empty(cfg->cors_allowed_origins)) {
    bool allowed = cors_headers(c, req, cfg->cors_allowed_origins);
    if (req->method == HTTP_OPTIONS) {
      if (req->parser.content_length != ULLONG_MAX && req->parser.content_length > 0)
        return reject(c, HB_E_PAYLOAD_TOO_LARGE, NULL, "a preflight takes no body");
      req->route_data[0] = allowed; /* on_request answers once the request is in */
      return true;
    }
  }
  if (!(method_bit(req->method) & r->methods)) {
    char allow[64];
    snprintf(allow, sizeof allow, "Allow: %s\r\n", r->allow);
    return reject(c, HB_E_METHOD_NOT_ALLOWED, allow, NULL);
  }
  if (r->flags & R_AUTH) {
    const char *h = req->hdr[HB_H_AUTHORIZATION];
    size_t hl = h ? req->hdr_len[HB_H_AUTHORIZATION] : 0;
    hb_principal *who = (hb_principal *)(void *)req->route_data;
    hb_err err = hb_auth_api_token(h ? h : "", hl, who);
    if (err == HB_E_INVALID_TOKEN && hb_auth_refresh_on_miss(cfg->data_dir, hb_io_now_ms(c->io)))
      err = hb_auth_api_token(h ? h : "", hl, who);
    note_cred(req, h, hl, err == HB_OK ? &who->token_id : NULL);
    if (err != HB_OK) return reject(c, err, "WWW-Authenticate: Bearer\r\n", NULL);
  }
  if (r->flags & R_ADMIN) {
    const char *h = req->hdr[HB_H_AUTHORIZATION];
    size_t hl = h ? req->hdr_len[HB_H_AUTHORIZATION] : 0;
    hb_err err = hb_auth_admin_token(h ? h : "", hl, cfg->admin_token_sha256);
    _Static_assert(sizeof "admin:" + 8 <= HB_LOG_REDACT_BYTES, "admin:<8 hex digits> fits log_cred");
    if (err == HB_OK) /* the admin token is known by its hash: its first hex digits name it */
      snprintf(req->log_cred, sizeof req->log_cred, "admin:%.8s", cfg->admin_token_sha256);
    else
      note_cred(req, h, hl, NULL);
    if (err != HB_OK) return reject(c, err, "WWW-Authenticate: Bearer\r\n", NULL);
  }
  if (r->flags & R_BATCH) req->max_body = cfg->max_batch_body_bytes;
  if (r->flags & R_IMPORT) req->max_body = HB_ADMIN_IMPORT_MAX_BYTES;
  if ((r->flags & R_JSON) && req->method == HTTP_POST) {
    const char *ct = req->hdr[HB_H_CONTENT_TYPE];
    if (!ct || !is_json(ct, req->hdr_len[HB_H_CONTENT_TYPE]))
      return reject(c, HB_E_UNSUPPORTED_MEDIA_TYPE, NULL, NULL);
    /* Refuse a declared oversize body before reading a byte of it. */
    if (req->parser.content_length != ULLONG_MAX && req->parser.content_length > req->max_body)
      return reject(c, HB_E_PAYLOAD_TOO_LARGE, NULL, NULL);
  } else if (!(r->flags & (R_WS | R_JSON)) && req->parser.content_length != ULLONG_MAX && req->parser.content_length > 0) {
    return reject(c, HB_E_PAYLOAD_TOO_LARGE, NULL, "this path takes no body");
  }
  return true;
}

static void on_request(hb_conn *c, hb_http_req *req) {
  const route *r = req->route;
  if (!r || req->failed) return;
  if (req->method == HTTP_OPTIONS) { /* on_headers let it through: CORS is on for the route */
    cors_preflight(c, req, r, req->route_data[0]);
    return;
  }
  if (!(r->flags & R_WS) && req->upgrade) {
    /* http-parser treats what follows an Upgrade request as the other
     * protocol's bytes: answer this request, then close. */
    req->keep_alive = false;
  }
  r->handle(c, req);
}

static const hb_http_handlers handlers = {
    .on_headers = on_headers,
    .on_request = on_request,
};

void hb_router_init(void) { hb_http_init(&handlers); }
