/*
 * channel_history.c - GET /api/v1/history: what a channel still keeps, for
 * a backend that resyncs (docs/http-api.md).
 *
 *   ?scope=session&event_id=<uuid>&session_id=<uuid>   (the scope object of a
 *    publish, flattened: event_id for event and session, session_id for session)
 *   &eventName=<name>   only that event name (optional)
 *   &since=<offset>     messages after it (optional; default: the oldest kept)
 *   &limit=<n>          at most n (1..1000, default 100)
 *
 * 200 {"epoch":"<hex>","offset":<last>,"first_offset":<oldest kept>|null,
 *      "trimmed":<messages after since are missing>,"more":<another page>,
 *      "messages":[<event>, ...]}
 * Each event is the JSON a subscriber received, offset included. The epoch
 * tells a caller whether its offsets still mean anything: a different epoch
 * means the channel's history was lost in between.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hubbub/alloc.h"
#include "hubbub/channel_query.h"
#include "hubbub/event_name.h"
#include "hubbub/history.h"
#include "hubbub/io.h"
#include "hubbub/publish.h"
#include "hubbub/router.h"
#include "hubbub/smsg.h"

typedef struct {
  char name[HB_MAX_EVENT_NAME_BYTES + 1];
  size_t len;
} name_filter;

static bool by_name(void *ud, const hb_msg *m) {
  const name_filter *f = ud;
  return m->event_name_len == f->len && memcmp(m->event_name, f->name, f->len) == 0;
}

static void answer(hb_conn *c, uint64_t since, hb_pos now, uint64_t oldest, bool more, const hb_msgvec *mv) {
  /* Messages after `since` are missing when the channel no longer keeps the
   * one right after it. */
  bool trimmed = since < now.offset && (oldest == 0 || oldest > since + 1);
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_strbuf_addstr(&sb, "{\"epoch\":");
  hb_smsg_epoch(&sb, now.epoch);
  hb_strbuf_addf(&sb, ",\"offset\":%llu,\"first_offset\":", (unsigned long long)now.offset);
  if (oldest) hb_strbuf_addf(&sb, "%llu", (unsigned long long)oldest);
  else hb_strbuf_addstr(&sb, "null");
  hb_strbuf_addf(&sb, ",\"trimmed\":%s,\"more\":%s,\"messages\":[", trimmed ? "true" : "false", more ? "true" : "false");
  for (size_t i = 0; i < mv->n; i++) {
    size_t jl;
    const char *json = hb_msg_json(mv->v[i], &jl);
    if (i) hb_strbuf_addch(&sb, ',');
    hb_strbuf_add(&sb, json, jl);
  }
  hb_strbuf_addstr(&sb, "]}");
  hb_http_respond(c, 200, "application/json", "Cache-Control: no-store\r\n", sb.buf, sb.len, false);
  hb_strbuf_free(&sb);
}

/* A page read from Redis, answered later. */
typedef struct {
  hb_conn *c;
  name_filter f;
  uint64_t since;
} page_wait;

static void on_page(void *ctx, hb_page_result *r) {
  page_wait *w = ctx;
  if (hb_http_deferred_open(w->c)) {
    if (r->err != HB_OK) {
      hb_error e;
      hb_error_set(&e, r->err, NULL, NULL);
      hb_http_respond_error(w->c, &e, r->err == HB_E_BROKER_UNAVAILABLE ? "Retry-After: 1\r\n" : NULL, false);
    } else {
      answer(w->c, w->since, r->now, r->first_kept, r->more, &r->msgs);
    }
  }
  hb_http_resume(w->c);
  hb_free(w);
}

void hb_api_history(hb_conn *c, hb_http_req *req) {
  const hb_principal *who = hb_router_principal(req);
  hb_scope scope;
  hb_uuid event, session;
  if (!hb_channel_query_scope(c, req, &scope, &event, &session)) return;
  name_filter f;
  ssize_t fl = hb_http_query_param(req->url, "eventName", f.name, sizeof f.name);
  if (fl < 0 || (fl > 0 && !hb_event_name_valid(f.name, (size_t)fl)))
    return hb_channel_query_refuse(c, HB_E_INVALID_EVENT_NAME, "eventName must be 1-128 characters of A-Z a-z 0-9 - _ . : / @");
  f.len = (size_t)fl;
  uint64_t since = 0, limit = HB_DEFAULT_HISTORY_PAGE;
  if (!hb_channel_query_uint(req->url, "since", 0, UINT64_MAX, &since))
    return hb_channel_query_refuse(c, HB_E_INVALID_VALUE, "since must be an offset (a decimal number)");
  if (!hb_channel_query_uint(req->url, "limit", 1, HB_MAX_HISTORY_PAGE, &limit))
    return hb_channel_query_refuse(c, HB_E_INVALID_VALUE, "limit must be 1 to " HB_STR(HB_MAX_HISTORY_PAGE));

  /* The channel is the API token's organization and plugin: never another's. */
  hb_chan_key chan;
  hb_chan_key_make(&chan, scope, &who->org, &who->plugin, &event, &session);
  hb_broker *b = hb_publish_broker();
  if (b->ops->page) { /* Redis: the history is there, the answer comes later */
    page_wait *w = hb_malloc(sizeof *w);
    w->c = c;
    w->f = f;
    w->since = since;
    hb_page_req pr = {.chan = chan, .after = since, .limit = (size_t)limit, .want = f.len ? by_name : NULL,
                      .want_ud = &w->f};
    hb_http_defer(c);
    b->ops->page(b, c->io, &pr, on_page, w);
    return;
  }
  hb_msgvec mv = {0};
  hb_pos now;
  uint64_t oldest;
  bool more;
  hb_history_page(&chan, since, f.len ? by_name : NULL, &f, (size_t)limit, &mv, &now, &oldest, &more);
  answer(c, since, now, oldest, more, &mv);
  hb_msgvec_free(&mv);
}
