/*
 * room_socket.c - GET /api/v1/ws: who may open a room connection.
 *
 * The WebSocket glue checks that the request is a valid upgrade; this
 * handler checks what only the server knows — the connection token, the
 * Origin allowlists, the subscribe= list, whether the server is stopping —
 * before the room is joined, then answers 101 and enters the room. The
 * token comes from ?token= or from a Sec-WebSocket-Protocol entry
 * hubbub.token.<jwt> (so that it is in no URL). A refused handshake gets
 * the HTTP status and JSON error of docs/protocol.md §2, or, when the
 * client offered the hubbub.v1 subprotocol, the same refusal in band: a
 * browser cannot read the status of a failed upgrade.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hubbub/auth.h"
#include "hubbub/event_name.h"
#include "hubbub/io.h"
#include "hubbub/log.h"
#include "hubbub/origin.h"
#include "hubbub/publish.h"
#include "hubbub/resume.h"
#include "hubbub/room.h"
#include "hubbub/router.h"
#include "hubbub/smsg.h"
#include "hubbub/ws.h"

/* First allocation for the 101 and the welcome (~130 + ~480 bytes, more
 * with a long user id, which grows it). */
#define HANDSHAKE_OUT_BYTES 1024

/* docs/protocol.md §2: the protocol version a client offers to be refused
 * in band, and the prefix of the subprotocol entry that carries its token. */
#define SUBPROTOCOL_V1 "hubbub.v1"
#define TOKEN_PREFIX "hubbub.token."

/* What the client offered in Sec-WebSocket-Protocol (RFC 6455 4.1: a list of
 * tokens separated by commas, optional whitespace around them). */
typedef struct {
  bool v1;           /* offered hubbub.v1: refusals in band, and the 101 selects it */
  const char *token; /* the hubbub.token.<jwt> entry's token, or NULL */
  size_t token_len;
  int ntokens; /* such entries: more than one is a token given twice */
} offer;

static void read_offer(const hb_http_req *r, offer *o) {
  memset(o, 0, sizeof *o);
  const char *v = r->hdr[HB_H_WS_PROTOCOL], *e;
  size_t pos = 0, n;
  const size_t plen = sizeof TOKEN_PREFIX - 1;
  while (v && hb_http_list_next(v, r->hdr_len[HB_H_WS_PROTOCOL], &pos, &e, &n)) {
    /* Subprotocol names are compared exactly (RFC 6455 4.1: case-sensitive). */
    if (n == sizeof SUBPROTOCOL_V1 - 1 && !memcmp(e, SUBPROTOCOL_V1, n)) {
      o->v1 = true;
    } else if (n >= plen && !memcmp(e, TOKEN_PREFIX, plen)) {
      o->token = e + plen;
      o->token_len = n - plen;
      o->ntokens++;
    }
  }
}

/*
 * Turn the connection away. A client that offered hubbub.v1 is told in band,
 * where a browser can read it: the upgrade completes (101 selecting
 * hubbub.v1), one error message without an id, then a close with 4000 + the
 * HTTP status (1013 for shutting_down) and the code as its reason; the close
 * waits for the client's (hb_ws_close). The room protocol never sees the
 * connection: it is closing before any message could reach it, and it
 * joined no room. Anyone else gets the HTTP status and JSON error.
 */
static void refuse_error(hb_conn *c, hb_http_req *r, const offer *o, hb_error *e) {
  e->pointer[0] = '\0'; /* the handshake has no JSON document to point into */
  if (!o->v1) {
    hb_http_respond_error(c, e, NULL, true);
    return;
  }
  hb_close_code code = hb_err_close_code(e->err);
  hb_http_note_error(c, e, code);
  hb_strbuf out = HB_STRBUF_INIT;
  hb_strbuf_grow(&out, HANDSHAKE_OUT_BYTES);
  hb_ws_accept(r, SUBPROTOCOL_V1, &out);
  size_t mark = hb_ws_frame_begin(&out);
  hb_smsg_error(&out, NULL, 0, e);
  hb_ws_frame_end(&out, mark, HB_WS_OP_TEXT);
  hb_http_note_response(c, 101, out.len); /* before hb_ws_open: the request is the HTTP glue's */
  size_t n;
  char *bytes = hb_strbuf_release(&out, &n);
  hb_ws *ws = hb_ws_open(c);
  hb_conn_send_owned(c, bytes, n);
  hb_ws_refuse(ws, code, hb_err_code(e->err));
}

static void refuse(hb_conn *c, hb_http_req *r, const offer *o, hb_err err, const char *msg) {
  hb_error e;
  hb_error_set(&e, err, NULL, msg ? "%s" : NULL, msg);
  refuse_error(c, r, o, &e);
}

/* The subscribe parameter: event names separated by commas, at most
 * max_subscriptions of them. HB_OK, or the refusal (in `e`): a client that
 * asked for names must not believe it has them. */
static hb_err subscribe_list_check(const hb_config *cfg, const char *s, size_t n, hb_error *e) {
  size_t count = 0, pos = 0, len;
  const char *name;
  while (hb_event_name_list_next(s, n, &pos, &name, &len)) {
    if (len == 0) /* ",a", "a,,b", "a," */
      return hb_error_set(e, HB_E_INVALID_EVENT_NAME, NULL, "subscribe: an empty event name");
    if (!hb_event_name_valid(name, len))
      return hb_error_set(e, HB_E_INVALID_EVENT_NAME, NULL,
                          "subscribe: event names are 1-%d bytes of A-Z a-z 0-9 - _ . : / @, separated by commas",
                          HB_MAX_EVENT_NAME_BYTES);
    if (++count > cfg->max_subscriptions)
      return hb_error_set(e, HB_E_TOO_MANY_SUBSCRIPTIONS, NULL, "subscribe: at most %zu event names per connection",
                          cfg->max_subscriptions);
  }
  return HB_OK;
}

void hb_api_room_socket(hb_conn *c, hb_http_req *r) {
  const hb_config *cfg = c->io->set->cfg;
  hb_error e;
  hb_err err = hb_ws_check_upgrade(r, &e);
  if (err != HB_OK) { /* not a WebSocket: nothing to refuse in band */
    hb_http_respond_error(c, &e, err == HB_E_UPGRADE_REQUIRED ? hb_ws_version_header() : NULL, true);
    return;
  }
  offer o;
  read_offer(r, &o);
  if (hb_ioset_stopping(c->io->set)) {
    refuse(c, r, &o, HB_E_SHUTTING_DOWN, NULL);
    return;
  }
  char tok[HB_MAX_CONN_TOKEN_BYTES + 1];
  ssize_t tlen = hb_http_query_param(r->url, "token", tok, sizeof tok);
  if (o.ntokens > 1 || (o.ntokens == 1 && tlen != 0)) {
    refuse(c, r, &o, HB_E_BAD_REQUEST, "the token is given twice: send it once, as a subprotocol or as ?token=");
    return;
  }
  const char *token = tok;
  if (o.ntokens == 1) { /* a JWT is all token characters: no decoding */
    token = o.token;
    tlen = o.token_len > HB_MAX_CONN_TOKEN_BYTES ? -1 : (ssize_t)o.token_len;
    if (tlen == 0) {
      refuse(c, r, &o, HB_E_INVALID_TOKEN, "the hubbub.token. subprotocol entry is empty");
      return;
    }
  }
  if (tlen > 0) hb_log_redact(token, (size_t)tlen, r->log_cred);
  if (tlen < 0) {
    refuse(c, r, &o, HB_E_INVALID_TOKEN, "the token is malformed or too long");
    return;
  }
  if (tlen == 0) {
    refuse(c, r, &o, HB_E_MISSING_TOKEN,
           "connect with the subprotocol hubbub.token.<connection token> or ?token=<connection token>");
    return;
  }
  hb_conn_claims claims;
  memset(&e, 0, sizeof e);
  err = hb_auth_conn_token(token, (size_t)tlen, (int64_t)time(NULL), &claims, &e);
  if (err == HB_E_INVALID_TOKEN && hb_auth_refresh_on_miss(cfg->data_dir, hb_io_now_ms(c->io))) {
    memset(&e, 0, sizeof e); /* perhaps a plugin created a moment ago */
    err = hb_auth_conn_token(token, (size_t)tlen, (int64_t)time(NULL), &claims, &e);
  }
  if (err != HB_OK) {
    if (e.err != err) hb_error_set(&e, err, NULL, NULL);
    refuse_error(c, r, &o, &e);
    return;
  }
  char subs[HB_WS_SUBSCRIBE_PARAM_BYTES + 1];
  ssize_t slen = hb_http_query_param(r->url, "subscribe", subs, sizeof subs);
  if (slen < 0) {
    refuse(c, r, &o, HB_E_BAD_REQUEST, "the subscribe parameter is malformed or too long");
    return;
  }
  if (subscribe_list_check(cfg, subs, (size_t)slen, &e) != HB_OK) {
    refuse_error(c, r, &o, &e);
    return;
  }
  /* since=<resume string>: positions to recover from. A malformed one is
   * refused; a foreign one (another room's epochs) simply does not match. */
  char since_s[HB_RESUME_MAX_BYTES + 1];
  ssize_t sn = hb_http_query_param(r->url, "since", since_s, sizeof since_s);
  hb_pos since[HB_SCOPE__COUNT];
  if (sn < 0 || (sn > 0 && !hb_resume_parse(since_s, (size_t)sn, since))) {
    refuse(c, r, &o, HB_E_BAD_REQUEST, "since must be a resume string (h1.<epoch>.<offset>... as given by the SDK)");
    return;
  }
  const char *origin = r->hdr[HB_H_ORIGIN];
  size_t olen = origin ? r->hdr_len[HB_H_ORIGIN] : 0;
  /* Cross-site WebSocket hijacking: browsers always send Origin, so an
   * allowlist (the server's or the plugin's) is checked before the upgrade. */
  if ((!hb_origin_list_empty(cfg->allowed_origins) && !hb_origin_in_list(cfg->allowed_origins, origin, olen)) ||
      !hb_auth_origin_allowed(&claims.plugin, origin, olen)) {
    refuse(c, r, &o, HB_E_ORIGIN_FORBIDDEN, NULL);
    return;
  }

  hb_strbuf out = HB_STRBUF_INIT;
  hb_strbuf_grow(&out, HANDSHAKE_OUT_BYTES);
  /* Never the token entry: only the protocol version is selected. */
  hb_ws_accept(r, o.v1 ? SUBPROTOCOL_V1 : NULL, &out);
  hb_http_note_response(c, 101, out.len); /* before hb_ws_open: the request is the HTTP glue's */
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
