/* publish.c - POST /api/v1/pub_subs (and /api/v1/publish): the HTTP way
 * into the publish core (pubsub/publish.c). */
#include <stdio.h>
#include <string.h>

#include "hubbub/io.h"
#include "hubbub/metrics.h"
#include "hubbub/publish.h"
#include "hubbub/pubreq.h"
#include "hubbub/ratelimit.h"
#include "hubbub/router.h"

void hb_api_publish(hb_conn *c, hb_http_req *req) {
  const hb_config *cfg = c->io->set->cfg;
  const hb_principal *who = hb_router_principal(req);
  hb_pubreq pr;
  hb_error e;
  memset(&pr, 0, sizeof pr);
  memset(&e, 0, sizeof e);
  int retry = 1;
  if (!hb_ratelimit_take(&who->token_id, cfg->token_publish_rate,
                         cfg->token_publish_burst, hb_io_now_ms(c->io), &retry)) {
    hb_metric_inc(HB_M_RATE_LIMITED_API_TOKEN);
    char extra[48];
    snprintf(extra, sizeof extra, "Retry-After: %d\r\n", retry);
    hb_error_set(&e, HB_E_RATE_LIMITED, NULL, "over %.0f publishes per second for this API token",
                 cfg->token_publish_rate);
    hb_http_respond_error(c, &e, extra, false);
    return;
  }
  hb_err err = hb_pubreq_decode(req->body.buf ? req->body.buf : "", req->body.len,
                                cfg->max_data_bytes, &pr, &e);
  if (err == HB_OK && hb_ioset_stopping(c->io->set)) err = hb_error_set(&e, HB_E_SHUTTING_DOWN, NULL, NULL);
  if (err == HB_OK) {
    hb_chan_key room;
    hb_chan_key_make(&room, HB_SCOPE_SESSION, &who->org, &who->plugin, &pr.event_id, &pr.session_id);
    char mid[HB_UUID_STR_BYTES];
    err = hb_publish(c->io, &room, pr.scope, pr.event_name, pr.event_name_len, pr.data, pr.data_len, mid);
    if (err == HB_OK) {
      hb_metric_inc(HB_M_PUBLISHES_HTTP);
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
