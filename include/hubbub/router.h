/*
 * router.h - the HTTP routes: which handler answers which path, and the
 * checks every route shares (method, credentials, Content-Type, declared
 * size). Registered with the HTTP glue by hb_router_init(). One handler per
 * file in src/api/.
 */
#ifndef HUBBUB_ROUTER_H
#define HUBBUB_ROUTER_H

#include <stdbool.h>

#include "hubbub/auth.h"
#include "hubbub/config.h"
#include "hubbub/conn.h"
#include "hubbub/http.h"

/** Register the routes with the HTTP glue (once, before any connection). */
void hb_router_init(void);

/** The API token's principal of an authenticated request (routes with credentials). */
const hb_principal *hb_router_principal(const hb_http_req *req);
/** The UUID in the "{id}" segment of the request's route (false: none, or not a UUID). */
bool hb_router_path_uuid(const hb_http_req *req, hb_uuid *out);

/* Handlers (src/api/<name>.c). */
void hb_api_publish(hb_conn *c, hb_http_req *req);
void hb_api_publish_batch(hb_conn *c, hb_http_req *req);
void hb_api_history(hb_conn *c, hb_http_req *req);
void hb_api_presence(hb_conn *c, hb_http_req *req);
void hb_api_connection_tokens(hb_conn *c, hb_http_req *req);
void hb_api_room_socket(hb_conn *c, hb_http_req *req);
void hb_api_healthz(hb_conn *c, hb_http_req *req);
void hb_api_metrics(hb_conn *c, hb_http_req *req);
void hb_api_static(hb_conn *c, hb_http_req *req);
void hb_api_root(hb_conn *c, hb_http_req *req);
void hb_api_admin_orgs(hb_conn *c, hb_http_req *req);
void hb_api_admin_plugins(hb_conn *c, hb_http_req *req);
void hb_api_admin_tokens(hb_conn *c, hb_http_req *req);
void hb_api_admin_token_revoke(hb_conn *c, hb_http_req *req);
void hb_api_admin_org_delete(hb_conn *c, hb_http_req *req);
void hb_api_admin_plugin_delete(hb_conn *c, hb_http_req *req);
void hb_api_admin_rotate_secret(hb_conn *c, hb_http_req *req);
void hb_api_admin_revoke_user(hb_conn *c, hb_http_req *req);
void hb_api_admin_disconnect(hb_conn *c, hb_http_req *req);
void hb_api_admin_export(hb_conn *c, hb_http_req *req);
void hb_api_admin_import(hb_conn *c, hb_http_req *req);
/**
 * The admin API's store calls run on a worker thread of their own (never
 * on an I/O thread, which PostgreSQL would block): start it with the
 * server (when admin_token_sha256 is set), stop it before the I/O threads
 * are joined. Without it every admin request answers 503 store_unavailable.
 */
void hb_api_admin_start(const hb_config *cfg);
void hb_api_admin_stop(void);
/** Is there an embedded file at this path (for the router)? */
bool hb_api_static_exists(const char *path, size_t len);

#endif
