/*
 * channel_presence.c - GET /api/v1/presence: who is in a session or an
 * event, for a backend (docs/http-api.md).
 *
 *   ?scope=session&event_id=<uuid>&session_id=<uuid>  (channel_query.h;
 *    scope session or event: presence is not kept per organization)
 *   &cursor=<cursor>   the page after the one that gave it (optional)
 *   &limit=<n>         at most n members (1..1000, default presence_list_max)
 *
 * 200 {"scope":..,"version":v,"count":n,"members":[{"user_id":..,"info":{..}},..],
 *      "truncated":b[,"cursor":".."]}
 * The count is exact; the members are listed in the order they joined, so
 * paging with the cursor lists everyone present throughout exactly once.
 */
#include <string.h>

#include "hubbub/channel_query.h"
#include "hubbub/field.h"
#include "hubbub/io.h"
#include "hubbub/presence.h"
#include "hubbub/router.h"
#include "hubbub/smsg.h"

void hb_api_presence(hb_conn *c, hb_http_req *req) {
  const hb_config *cfg = c->io->set->cfg;
  const hb_principal *who = hb_router_principal(req);
  hb_scope scope;
  hb_uuid event, session;
  if (!cfg->presence) return hb_channel_query_refuse(c, HB_E_NOT_FOUND, "presence is turned off on this server (presence: false)");
  if (!hb_channel_query_scope(c, req, &scope, &event, &session)) return;
  if (!hb_presence_scope_ok(scope))
    return hb_channel_query_refuse(c, HB_E_INVALID_SCOPE, "presence is kept for scope session or event");
  char cs[HB_MAX_PRESENCE_CURSOR_BYTES + 1];
  ssize_t cn = hb_http_query_param(req->url, "cursor", cs, sizeof cs);
  uint64_t after = 0, limit = (uint64_t)cfg->presence_list_max;
  if (cn < 0 || (cn > 0 && !hb_field_presence_cursor(cs, (size_t)cn, &after)))
    return hb_channel_query_refuse(c, HB_E_INVALID_VALUE, "cursor is not one an earlier page gave");
  if (!hb_channel_query_uint(req->url, "limit", 1, HB_MAX_PRESENCE_PAGE, &limit))
    return hb_channel_query_refuse(c, HB_E_INVALID_VALUE, "limit must be 1 to " HB_STR(HB_MAX_PRESENCE_PAGE));

  /* The channel is the API token's organization and plugin: never another's. */
  hb_chan_key chan;
  hb_chan_key_make(&chan, scope, &who->org, &who->plugin, &event, &session);
  hb_strbuf members = HB_STRBUF_INIT, sb = HB_STRBUF_INIT;
  hb_presence_page pg;
  hb_presence_page_get(&chan, after, (uint32_t)limit, &members, &pg);
  hb_strbuf_addch(&sb, '{');
  hb_smsg_presence_page(&sb, scope, pg.version, pg.count, members.buf, members.len, pg.truncated, pg.cursor);
  hb_strbuf_addch(&sb, '}');
  hb_http_respond(c, 200, "application/json", "Cache-Control: no-store\r\n", sb.buf, sb.len, false);
  hb_strbuf_free(&sb);
  hb_strbuf_free(&members);
}
