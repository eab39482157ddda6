/* router.c - map a request to its handler; the checks every route shares (router.h). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "hubbub/router.h"

#include "hubbub/io.h"

enum { M_GET = 1 << 0, M_HEAD = 1 << 1, M_POST = 1 << 2, M_DELETE = 1 << 3 };
enum {
  R_AUTH = 1 << 0,   /* an API token */
  R_JSON = 1 << 1,   /* a JSON body (POST) */
  R_WS = 1 << 2,     /* the WebSocket upgrade */
  R_PREFIX = 1 << 3, /* matches a path prefix */
  R_STATIC = 1 << 4, /* an embedded file */
  R_ADMIN = 1 << 5,  /* the admin token */
  R_BATCH = 1 << 6,  /* a body of many publishes: max_batch_body_bytes */
};

typedef struct {
  const char *path;
  unsigned methods;
  unsigned flags;
  void (*handle)(hb_conn *c, hb_http_req *req);
  const char *allow; /* the Allow header of a 405 */
} route;

static const route routes[] = {
    {"/api/v1/pub_subs", M_POST, R_AUTH | R_JSON, hb_api_publish, "POST"},
    {"/api/v1/publish", M_POST, R_AUTH | R_JSON, hb_api_publish, "POST"},
    {"/api/v1/pub_subs/batch", M_POST, R_AUTH | R_JSON | R_BATCH, hb_api_publish_batch, "POST"},
    {"/api/v1/history", M_GET | M_HEAD, R_AUTH, hb_api_history, "GET, HEAD"},
    {"/api/v1/presence", M_GET, R_AUTH, hb_api_presence, "GET"},
    {"/api/v1/connection_tokens", M_POST, R_AUTH | R_JSON, hb_api_connection_tokens, "POST"},
    {"/api/v1/ws", M_GET, R_WS, hb_api_room_socket, "GET"},
    {"/healthz", M_GET | M_HEAD, 0, hb_api_healthz, "GET, HEAD"},
    {"/metrics", M_GET | M_HEAD, 0, hb_api_metrics, "GET, HEAD"},
    {"/api/v1/admin/organizations", M_GET | M_POST, R_ADMIN | R_JSON, hb_api_admin_orgs, "GET, POST"},
    {"/api/v1/admin/plugins", M_GET | M_POST, R_ADMIN | R_JSON, hb_api_admin_plugins, "GET, POST"},
    {"/api/v1/admin/tokens", M_GET | M_POST, R_ADMIN | R_JSON, hb_api_admin_tokens, "GET, POST"},
    {"/api/v1/admin/tokens/", M_DELETE, R_ADMIN | R_PREFIX, hb_api_admin_token_revoke, "DELETE"},
    {"/sdk/", M_GET | M_HEAD, R_PREFIX | R_STATIC, hb_api_static, "GET, HEAD"},
    {"/demo", M_GET | M_HEAD, R_PREFIX | R_STATIC, hb_api_static, "GET, HEAD"},
    {"/", M_GET | M_HEAD, 0, hb_api_root, "GET, HEAD"},
};

static size_t path_len(const char *url) {
  size_t n = strcspn(url, "?#");
  return n;
}

static const route *find_route(const char *url) {
  if (url[0] != '/') return NULL; /* absolute-form and '*' targets are not served */
  size_t n = path_len(url);
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    const route *r = &routes[i];
    size_t rl = strlen(r->path);
    if (r->flags & R_PREFIX) {
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

/* RFC 9110 8.3.1: the media type is case-insensitive; parameters may follow. */
static bool is_json(const char *ct, size_t len) {
  static const char want[] = "application/json";
  size_t n = strcspn(ct, ";");
  while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) n--;
  return n == sizeof want - 1 && strncasecmp(ct, want, n) == 0;
}

static bool on_headers(hb_conn *c, hb_http_req *req) {
  const hb_config *cfg = c->io->set->cfg;
  const route *r = find_route(req->url);
  if (!r) return reject(c, HB_E_NOT_FOUND, NULL, NULL);
  req->route = r;
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
    if (err != HB_OK) return reject(c, err, "WWW-Authenticate: Bearer\r\n", NULL);
  }
  if (r->flags & R_ADMIN) {
    /* Off unless configured: then the paths do not exist at all. */
    if (!cfg->admin_token_sha256[0]) return reject(c, HB_E_NOT_FOUND, NULL, NULL);
    const char *h = req->hdr[HB_H_AUTHORIZATION];
    hb_err err = hb_auth_admin_token(h ? h : "", h ? req->hdr_len[HB_H_AUTHORIZATION] : 0,
                                     cfg->admin_token_sha256);
    if (err != HB_OK) return reject(c, err, "WWW-Authenticate: Bearer\r\n", NULL);
  }
  if (r->flags & R_BATCH) req->max_body = cfg->max_batch_body_bytes;
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
