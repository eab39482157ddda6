/*
 * pub_subs.c - POST /api/v1/pub_subs (and /api/v1/publish) and
 * POST /api/v1/pub_subs/batch: the HTTP way into the publish core
 * (pubsub/publish.c).
 */
#include <stdio.h>
#include <string.h>

#include "hubbub/field.h"
#include "hubbub/io.h"
#include "hubbub/json.h"
#include "hubbub/metrics.h"
#include "hubbub/publish.h"
#include "hubbub/pubreq.h"
#include "hubbub/ratelimit.h"
#include "hubbub/router.h"
#include "hubbub/smsg.h"

/*
 * One publish body: rate limit (per item), decode, publish. Fills *r and
 * returns its error; on an error, `e` says why (with a pointer into the body).
 * `idem` is the Idempotency-Key header (single publish) or NULL: a batch
 * item carries its own in the body.
 */
static hb_err publish_body(hb_conn *c, const hb_principal *who, const char *body, size_t len, const char *idem,
                           size_t idem_len, hb_publish_result *r, hb_error *e, int *retry) {
  const hb_config *cfg = c->io->set->cfg;
  memset(r, 0, sizeof *r);
  if (!hb_ratelimit_take(&who->token_id, cfg->token_publish_rate, cfg->token_publish_burst, hb_io_now_ms(c->io),
                         retry)) {
    hb_metric_inc(HB_M_RATE_LIMITED_API_TOKEN);
    return r->err = hb_error_set(e, HB_E_RATE_LIMITED, NULL, "over %.0f publishes per second for this API token",
                                 cfg->token_publish_rate);
  }
  hb_pubreq pr;
  hb_err err = hb_pubreq_decode(body, len, cfg->max_data_bytes, &pr, e);
  if (err == HB_OK && hb_ioset_stopping(c->io->set)) err = hb_error_set(e, HB_E_SHUTTING_DOWN, NULL, NULL);
  if (err == HB_OK) {
    hb_chan_key room;
    hb_chan_key_make(&room, HB_SCOPE_SESSION, &who->org, &who->plugin, &pr.event_id, &pr.session_id);
    hb_publish_req req = {
        .room = &room,
        .scope = pr.scope,
        .event_name = pr.event_name,
        .event_name_len = pr.event_name_len,
        .data = pr.data,
        .data_len = pr.data_len,
        .idem_key = idem ? idem : pr.idem_key_len ? pr.idem_key : NULL,
        .idem_key_len = idem ? idem_len : pr.idem_key_len,
    };
    err = hb_publish(c->io, &req, r);
    if (err == HB_OK && !r->replayed) hb_metric_inc(HB_M_PUBLISHES_HTTP);
    if (err != HB_OK) hb_error_set(e, err, NULL, NULL);
  } else if (e->err != err) {
    hb_error_set(e, err, NULL, NULL);
  }
  hb_pubreq_clear(&pr);
  return r->err = err;
}

/* {"message_id":"<uuid>","offset":n,"epoch":"<hex>"} */
static void result_json(hb_strbuf *sb, const hb_publish_result *r) {
  hb_strbuf_addstr(sb, "{\"message_id\":\"");
  hb_strbuf_add(sb, r->message_id, strnlen(r->message_id, HB_UUID_STR_BYTES - 1));
  hb_strbuf_addf(sb, "\",\"offset\":%llu,\"epoch\":", (unsigned long long)r->pos.offset);
  hb_smsg_epoch(sb, r->pos.epoch);
  hb_strbuf_addch(sb, '}');
}

void hb_api_publish(hb_conn *c, hb_http_req *req) {
  const hb_principal *who = hb_router_principal(req);
  const char *idem = req->hdr[HB_H_IDEMPOTENCY_KEY];
  size_t idem_len = idem ? req->hdr_len[HB_H_IDEMPOTENCY_KEY] : 0;
  hb_error e;
  memset(&e, 0, sizeof e);
  if (idem && !hb_field_idempotency_key_valid(idem, idem_len)) {
    hb_error_set(&e, HB_E_BAD_REQUEST, NULL, "Idempotency-Key must be 1-%d printable ASCII characters",
                 HB_MAX_IDEMPOTENCY_KEY_BYTES);
    hb_http_respond_error(c, &e, NULL, false);
    return;
  }
  hb_publish_result r;
  int retry = 1;
  hb_err err = publish_body(c, who, req->body.buf ? req->body.buf : "", req->body.len, idem, idem_len, &r, &e, &retry);
  if (err != HB_OK) {
    char extra[48] = "";
    if (err == HB_E_RATE_LIMITED) snprintf(extra, sizeof extra, "Retry-After: %d\r\n", retry);
    if (err == HB_E_BROKER_UNAVAILABLE) snprintf(extra, sizeof extra, "Retry-After: 1\r\n");
    hb_http_respond_error(c, &e, extra[0] ? extra : NULL, false);
    return;
  }
  hb_strbuf sb = HB_STRBUF_INIT;
  result_json(&sb, &r);
  /* A retried publish answered from its first attempt says so (as Stripe's API does). */
  hb_http_respond(c, 202, "application/json", r.replayed ? "Idempotent-Replayed: true\r\n" : NULL, sb.buf,
                  sb.len, false);
  hb_strbuf_free(&sb);
}

/*
 * {"publishes":[<publish body>, ...]}: each item is published on its own
 * (one failing does not stop the others) and answered in order:
 * {"results":[{"status":202,"message_id":..,"offset":..,"epoch":..},
 *             {"status":422,"error":{"code":..,"message":..,"pointer":"/publishes/1/scope/type"}}]}
 */
void hb_api_publish_batch(hb_conn *c, hb_http_req *req) {
  const hb_principal *who = hb_router_principal(req);
  const char *body = req->body.buf ? req->body.buf : "";
  size_t len = req->body.len;
  hb_error e;
  json_t *root = NULL;
  if (hb_field_top_object(body, len, &root, &e) != HB_OK) goto refuse;
  json_t *items = json_object_get(root, "publishes");
  if (!items) {
    hb_error_set(&e, HB_E_MISSING_FIELD, "/publishes", "publishes is required");
    goto refuse;
  }
  if (!json_is_array(items)) {
    hb_error_set(&e, HB_E_INVALID_TYPE, "/publishes", "publishes must be an array of publish bodies");
    goto refuse;
  }
  size_t n = json_array_size(items);
  if (n == 0 || n > HB_MAX_BATCH_ITEMS) {
    hb_error_set(&e, HB_E_INVALID_VALUE, "/publishes", "publishes must hold 1 to %d items", HB_MAX_BATCH_ITEMS);
    goto refuse;
  }
  json_decref(root);
  root = NULL;
  /* Each item is decoded from its own bytes, so `data` is forwarded as sent. */
  static const char *const path[] = {"publishes"};
  size_t as, ae, i, s, en, k = 0;
  if (!hb_json_find_span(body, len, path, 1, &as, &ae)) {
    hb_error_set(&e, HB_E_INTERNAL, NULL, NULL);
    goto refuse;
  }
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_strbuf_addstr(&sb, "{\"results\":[");
  i = as;
  while (hb_json_array_next(body, ae, &i, &s, &en)) {
    hb_publish_result r;
    hb_error ie;
    int retry = 1;
    memset(&ie, 0, sizeof ie);
    if (k) hb_strbuf_addch(&sb, ',');
    if (publish_body(c, who, body + s, en - s, NULL, 0, &r, &ie, &retry) == HB_OK) {
      hb_strbuf_addstr(&sb, "{\"status\":202,");
      size_t mark = sb.len;
      result_json(&sb, &r);
      memmove(sb.buf + mark, sb.buf + mark + 1, sb.len - mark - 1); /* drop result_json's '{' */
      sb.len--;
      sb.buf[sb.len] = '\0';
    } else {
      /* The item's pointer, prefixed with its place in the batch. */
      char ptr[HB_ERROR_POINTER_BYTES + 32];
      const char *own = ie.pointer[0] == HB_POINTER_ROOT[0] && !ie.pointer[1] ? "" : ie.pointer;
      snprintf(ptr, sizeof ptr, "/publishes/%zu%s", k, own);
      snprintf(ie.pointer, sizeof ie.pointer, "%.*s", (int)sizeof ie.pointer - 1, ptr);
      hb_strbuf_addf(&sb, "{\"status\":%d,", hb_err_http_status(ie.err));
      size_t mark = sb.len;
      hb_http_error_body(&sb, &ie);
      memmove(sb.buf + mark, sb.buf + mark + 1, sb.len - mark - 1);
      sb.len--;
      sb.buf[sb.len] = '\0';
    }
    k++;
  }
  hb_strbuf_addstr(&sb, "]}");
  hb_http_respond(c, 200, "application/json", NULL, sb.buf, sb.len, false);
  hb_strbuf_free(&sb);
  return;
refuse:
  json_decref(root);
  hb_http_respond_error(c, &e, NULL, false);
}
