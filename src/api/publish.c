/* publish.c - POST /api/v1/pub_subs (and /api/v1/publish), and the publish
 * core shared with the WebSocket path. */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "hubbub/api.h"
#include "hubbub/envelope.h"
#include "hubbub/io.h"
#include "hubbub/ratelimit.h"

static int64_t now_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

hb_err hb_api_do_publish(hb_io *io, const hb_chan_key *room, hb_scope scope, const char *name,
                         size_t name_len, const char *data, size_t data_len,
                         char message_id[HB_UUID_STR_BYTES]) {
  hb_io_new_id(io, message_id);
  hb_chan_key k;
  hb_chan_key_make(&k, scope, &room->org, &room->plugin, &room->event, &room->session);
  /* Serialise once; every subscriber on every thread shares this frame. */
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_smsg_event(&sb, name, name_len, data, data_len, scope, message_id, now_ms());
  hb_msg *m = hb_msg_new(&k, name, name_len, sb.buf, sb.len);
  hb_strbuf_free(&sb);
  hb_broker *b = io->srv->broker;
  hb_err err = b->ops->publish(b, io, m);
  hb_msg_unref(m);
  return err;
}

void hb_api_publish(hb_conn *c, hb_http_req *req) {
  hb_server *srv = c->io->srv;
  hb_pubreq pr;
  hb_error e;
  memset(&pr, 0, sizeof pr);
  memset(&e, 0, sizeof e);
  int retry = 1;
  if (!hb_ratelimit_take(&req->principal.token_id, srv->cfg.token_publish_rate,
                         srv->cfg.token_publish_burst, hb_io_now_ms(c->io), &retry)) {
    char extra[48];
    snprintf(extra, sizeof extra, "Retry-After: %d\r\n", retry);
    hb_error_set(&e, HB_E_RATE_LIMITED, NULL, "over %.0f publishes per second for this API token",
                 srv->cfg.token_publish_rate);
    hb_http_respond_error(c, &e, extra, false);
    return;
  }
  hb_err err = hb_pubreq_decode(req->body.buf ? req->body.buf : "", req->body.len,
                                srv->cfg.max_data_bytes, &pr, &e);
  if (err == HB_OK && atomic_load(&srv->shutting_down)) err = hb_error_set(&e, HB_E_SHUTTING_DOWN, NULL, NULL);
  if (err == HB_OK) {
    hb_chan_key room;
    hb_chan_key_make(&room, HB_SCOPE_SESSION, &req->principal.org, &req->principal.plugin, &pr.event_id,
                     &pr.session_id);
    char mid[HB_UUID_STR_BYTES];
    err = hb_api_do_publish(c->io, &room, pr.scope, pr.event_name, pr.event_name_len, pr.data,
                            pr.data_len, mid);
    if (err == HB_OK) {
      atomic_fetch_add_explicit(&srv->metrics.publishes_http, 1, memory_order_relaxed);
      /* {"message_id":"<uuid>"} by hand: no vfprintf per publish. */
      static const char pre[] = "{\"message_id\":\"", post[] = "\"}";
      char body[sizeof pre + HB_UUID_STR_BYTES + sizeof post];
      size_t plen = sizeof pre - 1, mlen = strnlen(mid, HB_UUID_STR_BYTES - 1);
      memcpy(body, pre, plen);
      memcpy(body + plen, mid, mlen);
      memcpy(body + plen + mlen, post, sizeof post - 1);
      size_t n = plen + mlen + sizeof post - 1;
      hb_http_respond(c, 202, "application/json", NULL, body, n, false);
    } else {
      hb_error_set(&e, err, NULL, NULL);
    }
  }
  if (err != HB_OK) {
    if (e.err != err) hb_error_set(&e, err, NULL, NULL);
    hb_http_respond_error(c, &e, err == HB_E_BROKER_UNAVAILABLE ? "Retry-After: 1\r\n" : NULL, false);
  }
  hb_pubreq_clear(&pr);
}
