/*
 * pub_subs.c - POST /api/v1/pub_subs (and /api/v1/publish) and
 * POST /api/v1/pub_subs/batch: the HTTP way into the publish core
 * (pubsub/publish.c).
 */
#include <stdio.h>
#include <string.h>

#include "hubbub/alloc.h"
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
 * One publish body: rate limit (per item), decode, publish. Returns true when
 * it is answered now (*r and, on an error, `e` — with a pointer into the
 * body — say how), false when the broker answers later through
 * done(ctx, r) (Redis). `idem` is the Idempotency-Key header (single
 * publish) or NULL: a batch item carries its own in the body.
 */
static bool publish_body(hb_conn *c, const hb_principal *who, const char *body, size_t len, const char *idem,
                         size_t idem_len, hb_publish_result *r, hb_error *e, int *retry, hb_publish_done_fn done,
                         void *ctx) {
  const hb_config *cfg = c->io->set->cfg;
  memset(r, 0, sizeof *r);
  if (!hb_ratelimit_take(&who->token_id, cfg->token_publish_rate, cfg->token_publish_burst, hb_io_now_ms(c->io),
                         retry)) {
    hb_metric_inc(HB_M_RATE_LIMITED_API_TOKEN);
    r->err = hb_error_set(e, HB_E_RATE_LIMITED, NULL, "over %.0f publishes per second for this API token",
                          cfg->token_publish_rate);
    return true;
  }
  hb_pubreq pr;
  bool now = true;
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
    now = hb_publish_start(c->io, &req, r, done, ctx);
    if (now) err = r->err;
    if (now && err == HB_OK && !r->replayed) hb_metric_inc(HB_M_PUBLISHES_HTTP);
    if (now && err != HB_OK) hb_error_set(e, err, NULL, NULL);
  } else if (e->err != err) {
    hb_error_set(e, err, NULL, NULL);
  }
  hb_pubreq_clear(&pr);
  if (now) r->err = err;
  return now;
}

/* {"message_id":"<uuid>","offset":n,"epoch":"<hex>"} */
static void result_json(hb_strbuf *sb, const hb_publish_result *r) {
  hb_strbuf_addstr(sb, "{\"message_id\":\"");
  hb_strbuf_add(sb, r->message_id, strnlen(r->message_id, HB_UUID_STR_BYTES - 1));
  hb_strbuf_addf(sb, "\",\"offset\":%llu,\"epoch\":", (unsigned long long)r->pos.offset);
  hb_smsg_epoch(sb, r->pos.epoch);
  hb_strbuf_addch(sb, '}');
}

/* The answer to a single publish. */
static void answer(hb_conn *c, const hb_publish_result *r, const hb_error *e, int retry) {
  if (r->err != HB_OK) {
    char extra[48] = "";
    if (r->err == HB_E_RATE_LIMITED) snprintf(extra, sizeof extra, "Retry-After: %d\r\n", retry);
    if (r->err == HB_E_BROKER_UNAVAILABLE) snprintf(extra, sizeof extra, "Retry-After: 1\r\n");
    hb_http_respond_error(c, e, extra[0] ? extra : NULL, false);
    return;
  }
  hb_strbuf sb = HB_STRBUF_INIT;
  result_json(&sb, r);
  /* A retried publish answered from its first attempt says so (as Stripe's API does). */
  hb_http_respond(c, 202, "application/json", r->replayed ? "Idempotent-Replayed: true\r\n" : NULL, sb.buf,
                  sb.len, false);
  hb_strbuf_free(&sb);
}

/* A publish answered by the broker later (Redis). */
static void on_published(void *ctx, const hb_publish_result *r) {
  hb_conn *c = ctx;
  if (hb_http_deferred_open(c)) {
    if (r->err == HB_OK && !r->replayed) hb_metric_inc(HB_M_PUBLISHES_HTTP);
    hb_error e;
    hb_error_set(&e, r->err, NULL, NULL);
    answer(c, r, &e, 1);
  }
  hb_http_resume(c);
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
  if (!publish_body(c, who, req->body.buf ? req->body.buf : "", req->body.len, idem, idem_len, &r, &e, &retry,
                    on_published, c)) {
    hb_http_defer(c); /* the broker answers later: on_published */
    return;
  }
  answer(c, &r, &e, retry);
}

/*
 * {"publishes":[<publish body>, ...]}: each item is published on its own
 * (one failing does not stop the others) and answered in order:
 * {"results":[{"status":202,"message_id":..,"offset":..,"epoch":..},
 *             {"status":422,"error":{"code":..,"message":..,"pointer":"/publishes/1/scope/type"}}]}
 * With Redis the items are published together (pipelined) and the answer
 * waits for the last.
 */
typedef struct batch batch;
typedef struct {
  batch *b;
  hb_publish_result r;
  hb_error e;
} batch_item;

struct batch {
  hb_conn *c;
  size_t n, pending;
  batch_item items[];
};

static void batch_answer(batch *b) {
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_strbuf_addstr(&sb, "{\"results\":[");
  for (size_t k = 0; k < b->n; k++) {
    batch_item *it = &b->items[k];
    if (k) hb_strbuf_addch(&sb, ',');
    if (it->r.err == HB_OK) {
      hb_strbuf_addstr(&sb, "{\"status\":202,");
      size_t mark = sb.len;
      result_json(&sb, &it->r);
      memmove(sb.buf + mark, sb.buf + mark + 1, sb.len - mark - 1); /* drop result_json's '{' */
      sb.len--;
      sb.buf[sb.len] = '\0';
    } else {
      /* The item's pointer, prefixed with its place in the batch. */
      hb_error *ie = &it->e;
      char ptr[HB_ERROR_POINTER_BYTES + 32];
      const char *own = ie->pointer[0] == HB_POINTER_ROOT[0] && !ie->pointer[1] ? "" : ie->pointer;
      snprintf(ptr, sizeof ptr, "/publishes/%zu%s", k, own);
      snprintf(ie->pointer, sizeof ie->pointer, "%.*s", (int)sizeof ie->pointer - 1, ptr);
      hb_strbuf_addf(&sb, "{\"status\":%d,", hb_err_http_status(ie->err));
      size_t mark = sb.len;
      hb_http_error_body(&sb, ie);
      memmove(sb.buf + mark, sb.buf + mark + 1, sb.len - mark - 1);
      sb.len--;
      sb.buf[sb.len] = '\0';
    }
  }
  hb_strbuf_addstr(&sb, "]}");
  hb_http_respond(b->c, 200, "application/json", NULL, sb.buf, sb.len, false);
  hb_strbuf_free(&sb);
}

static void on_batch_item(void *ctx, const hb_publish_result *r) {
  batch_item *it = ctx;
  batch *b = it->b;
  it->r = *r;
  hb_error_set(&it->e, r->err, NULL, NULL);
  if (r->err == HB_OK && !r->replayed) hb_metric_inc(HB_M_PUBLISHES_HTTP);
  if (--b->pending) return;
  if (hb_http_deferred_open(b->c)) batch_answer(b);
  hb_http_resume(b->c);
  hb_free(b);
}

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
  batch *b = hb_calloc(1, sizeof *b + n * sizeof *b->items);
  b->c = c;
  b->pending = 1; /* this function's own: the answer waits for the loop's end */
  i = as;
  while (k < n && hb_json_array_next(body, ae, &i, &s, &en)) {
    batch_item *it = &b->items[k++];
    it->b = b;
    int retry = 1;
    if (publish_body(c, who, body + s, en - s, NULL, 0, &it->r, &it->e, &retry, on_batch_item, it)) continue;
    b->pending++;
  }
  b->n = k;
  if (--b->pending == 0) {
    batch_answer(b);
    hb_free(b);
    return;
  }
  hb_http_defer(c); /* the broker answers later: on_batch_item */
  return;
refuse:
  json_decref(root);
  hb_http_respond_error(c, &e, NULL, false);
}
