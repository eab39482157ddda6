/*
 * room_socket.c - GET /api/v1/ws: who may open a room connection.
 *
 * The WebSocket glue checks that the request is a valid upgrade; this
 * handler checks what only the server knows — the connection token, the
 * Origin allowlists, the subscribe= list, whether the server is stopping —
 * before anything is upgraded, then answers 101 and enters the room. A
 * refused handshake never gets a 101: it gets the HTTP status and JSON
 * error of docs/protocol.md §2.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hubbub/auth.h"
#include "hubbub/event_name.h"
#include "hubbub/io.h"
#include "hubbub/origin.h"
#include "hubbub/publish.h"
#include "hubbub/resume.h"
#include "hubbub/room.h"
#include "hubbub/router.h"
#include "hubbub/ws.h"

/* First allocation for the 101 and the welcome (~130 + ~480 bytes, more
 * with a long user id, which grows it). */
#define HANDSHAKE_OUT_BYTES 1024

static void refuse(hb_conn *c, hb_err err, const char *extra, const char *msg) {
  hb_error e;
  hb_error_set(&e, err, NULL, msg ? "%s" : NULL, msg);
  hb_http_respond_error(c, &e, extra, true);
}

/* The subscribe parameter: event names separated by commas, at most
 * max_subscriptions of them. Refuses the upgrade (and returns false) when
 * one is invalid or there are too many: a client that asked for names must
 * not believe it has them. */
static bool subscribe_list_valid(const hb_config *cfg, hb_conn *c, const char *s, size_t n) {
  size_t count = 0, pos = 0, len;
  const char *name;
  while (hb_event_name_list_next(s, n, &pos, &name, &len)) {
    if (len == 0) { /* ",a", "a,,b", "a," */
      refuse(c, HB_E_INVALID_EVENT_NAME, NULL, "subscribe: an empty event name");
      return false;
    }
    if (!hb_event_name_valid(name, len)) {
      char msg[120];
      snprintf(msg, sizeof msg,
               "subscribe: event names are 1-%d bytes of A-Z a-z 0-9 - _ . : / @, separated by commas",
               HB_MAX_EVENT_NAME_BYTES);
      refuse(c, HB_E_INVALID_EVENT_NAME, NULL, msg);
      return false;
    }
    if (++count > cfg->max_subscriptions) {
      char msg[80];
      snprintf(msg, sizeof msg, "subscribe: at most %zu event names per connection", cfg->max_subscriptions);
      refuse(c, HB_E_TOO_MANY_SUBSCRIPTIONS, NULL, msg);
      return false;
    }
  }
  return true;
}

void hb_api_room_socket(hb_conn *c, hb_http_req *r) {
  const hb_config *cfg = c->io->set->cfg;
  hb_error e;
  hb_err err = hb_ws_check_upgrade(r, &e);
  if (err != HB_OK) {
    hb_http_respond_error(c, &e, err == HB_E_UPGRADE_REQUIRED ? hb_ws_version_header() : NULL, true);
    return;
  }
  if (hb_ioset_stopping(c->io->set)) {
    refuse(c, HB_E_SHUTTING_DOWN, NULL, NULL);
    return;
  }
  char tok[HB_MAX_CONN_TOKEN_BYTES + 1];
  ssize_t tlen = hb_http_query_param(r->url, "token", tok, sizeof tok);
  if (tlen < 0) {
    refuse(c, HB_E_INVALID_TOKEN, NULL, "the token parameter is malformed or too long");
    return;
  }
  if (tlen == 0) {
    refuse(c, HB_E_MISSING_TOKEN, NULL, "connect with ?token=<connection token>");
    return;
  }
  hb_conn_claims claims;
  memset(&e, 0, sizeof e);
  err = hb_auth_conn_token(tok, (size_t)tlen, (int64_t)time(NULL), &claims, &e);
  if (err == HB_E_INVALID_TOKEN && hb_auth_refresh_on_miss(cfg->data_dir, hb_io_now_ms(c->io))) {
    memset(&e, 0, sizeof e); /* perhaps a plugin created a moment ago */
    err = hb_auth_conn_token(tok, (size_t)tlen, (int64_t)time(NULL), &claims, &e);
  }
  if (err != HB_OK) {
    if (e.err != err) hb_error_set(&e, err, NULL, NULL);
    e.pointer[0] = '\0';
    hb_http_respond_error(c, &e, NULL, true);
    return;
  }
  char subs[HB_WS_SUBSCRIBE_PARAM_BYTES + 1];
  ssize_t slen = hb_http_query_param(r->url, "subscribe", subs, sizeof subs);
  if (slen < 0) {
    refuse(c, HB_E_BAD_REQUEST, NULL, "the subscribe parameter is malformed or too long");
    return;
  }
  if (!subscribe_list_valid(cfg, c, subs, (size_t)slen)) return;
  /* since=<resume string>: positions to recover from. A malformed one is
   * refused; a foreign one (another room's epochs) simply does not match. */
  char since_s[HB_RESUME_MAX_BYTES + 1];
  ssize_t sn = hb_http_query_param(r->url, "since", since_s, sizeof since_s);
  hb_pos since[HB_SCOPE__COUNT];
  if (sn < 0 || (sn > 0 && !hb_resume_parse(since_s, (size_t)sn, since))) {
    refuse(c, HB_E_BAD_REQUEST, NULL, "since must be a resume string (h1.<epoch>.<offset>... as given by the SDK)");
    return;
  }
  const char *origin = r->hdr[HB_H_ORIGIN];
  size_t olen = origin ? r->hdr_len[HB_H_ORIGIN] : 0;
  /* Cross-site WebSocket hijacking: browsers always send Origin, so an
   * allowlist (the server's or the plugin's) is checked before the upgrade. */
  if ((!hb_origin_list_empty(cfg->allowed_origins) && !hb_origin_in_list(cfg->allowed_origins, origin, olen)) ||
      !hb_auth_origin_allowed(&claims.plugin, origin, olen)) {
    refuse(c, HB_E_ORIGIN_FORBIDDEN, NULL, NULL);
    return;
  }

  hb_strbuf out = HB_STRBUF_INIT;
  hb_strbuf_grow(&out, HANDSHAKE_OUT_BYTES);
  hb_ws_accept(r, NULL, &out);
  hb_peer *p = hb_room_join(hb_ws_open(c), &claims);
  /* Subscribed before anything is written: the client gets every event
   * published after the welcome, as after an acked subscribe; with since=,
   * what it missed before the welcome. */
  hb_broker *b = hb_publish_broker();
  if (b->ops->join) { /* Redis: positions and replay come later */
    hb_room_enter_later(p, &claims, subs, (size_t)slen, sn > 0 ? since : NULL, &out);
    return;
  }
  hb_room_enter(p, &claims, subs, (size_t)slen, sn > 0 ? since : NULL, &out);
  size_t n;
  char *bytes = hb_strbuf_release(&out, &n);
  hb_conn_send_owned(c, bytes, n);
}
