/*
 * api.h - the HTTP routes and their handlers (one handler per file).
 */
#ifndef HUBBUB_API_H
#define HUBBUB_API_H

#include <stdbool.h>

#include "hubbub/conn.h"
#include "hubbub/http.h"

/**
 * Headers are in: find the route, check method, credentials, Content-Type
 * and declared size. Returns false when an error response was queued (the
 * connection then closes without reading the body).
 */
bool hb_api_on_headers(hb_conn *c, hb_http_req *req);
/** The whole request is in: run the handler. */
void hb_api_on_message(hb_conn *c, hb_http_req *req);

/* Handlers (src/api/<name>.c). */
void hb_api_publish(hb_conn *c, hb_http_req *req);
void hb_api_connection_tokens(hb_conn *c, hb_http_req *req);
void hb_api_healthz(hb_conn *c, hb_http_req *req);
void hb_api_metrics(hb_conn *c, hb_http_req *req);
void hb_api_static(hb_conn *c, hb_http_req *req);
void hb_api_root(hb_conn *c, hb_http_req *req);
void hb_api_admin_orgs(hb_conn *c, hb_http_req *req);
void hb_api_admin_plugins(hb_conn *c, hb_http_req *req);
void hb_api_admin_tokens(hb_conn *c, hb_http_req *req);
void hb_api_admin_token_revoke(hb_conn *c, hb_http_req *req);
/** Is there an embedded file at this path (for the router)? */
bool hb_api_static_exists(const char *path, size_t len);

/**
 * Publish `data` as `event_name` to `scope` of the room `room` (a session-
 * level key): serialise once, hand to the broker. Shared by HTTP and
 * WebSocket. Writes the new message id into message_id.
 */
hb_err hb_api_do_publish(struct hb_io *io, const hb_chan_key *room, hb_scope scope,
                         const char *event_name, size_t event_name_len, const char *data,
                         size_t data_len, char message_id[HB_UUID_STR_BYTES]);

#endif
