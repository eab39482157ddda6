/* connection_tokens.c - POST /api/v1/connection_tokens: mint a room token. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hubbub/alloc.h"
#include "hubbub/ctreq.h"
#include "hubbub/jwt.h"
#include "hubbub/router.h"

void hb_api_connection_tokens(hb_conn *c, hb_http_req *req) {
  hb_ctreq ct;
  hb_error e;
  memset(&ct, 0, sizeof ct);
  memset(&e, 0, sizeof e);
  hb_err err = hb_ctreq_decode(req->body.buf ? req->body.buf : "", req->body.len, &ct, &e);
  if (err != HB_OK) {
    if (e.err != err) hb_error_set(&e, err, NULL, NULL);
    hb_http_respond_error(c, &e, NULL, false);
    return;
  }
  char secret[HB_SECRET_MAX_BYTES + 1];
  char kid[HB_SIGNING_KID_MAX_BYTES + 1];
  /* The current secret and its key id: tokens carry the kid, so that a
   * rotation (hubbub plugin rotate-secret) keeps them verifiable. */
  if (hb_auth_plugin_key(&hb_router_principal(req)->plugin, secret, sizeof secret, kid, sizeof kid) != 0) {
    /* The token's plugin vanished between the check and now. */
    hb_error_set(&e, HB_E_INVALID_TOKEN, NULL, NULL);
    hb_http_respond_error(c, &e, NULL, false);
    return;
  }
  hb_conn_claims cl;
  memset(&cl, 0, sizeof cl);
  cl.org = hb_router_principal(req)->org;
  cl.plugin = hb_router_principal(req)->plugin;
  cl.event = ct.event_id;
  cl.session = ct.session_id;
  snprintf(cl.user_id, sizeof cl.user_id, "%s", ct.user_id);
  cl.scopes = ct.scopes;
  snprintf(cl.kid, sizeof cl.kid, "%s", kid);
  cl.iat = (int64_t)time(NULL);
  cl.exp = cl.iat + ct.ttl_s;
  cl.info_len = ct.info_len;
  memcpy(cl.info, ct.info, ct.info_len);
  char *tok = hb_jwt_mint(&cl, secret, strlen(secret));
  memset(secret, 0, sizeof secret);
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_strbuf_addstr(&sb, "{\"token\":");
  hb_strbuf_add_json_str(&sb, tok, strlen(tok));
  hb_strbuf_addf(&sb, ",\"expires_at\":%lld}", (long long)cl.exp);
  hb_http_respond(c, 201, "application/json", "Cache-Control: no-store\r\n", sb.buf, sb.len, false);
  hb_strbuf_free(&sb);
  hb_free(tok);
}
