/* channel_query.c - the channel named by a GET route's query string (channel_query.h). */
#include "hubbub/channel_query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hubbub/router.h"

void hb_channel_query_refuse(hb_conn *c, hb_err err, const char *msg) {
  hb_error e;
  hb_error_set(&e, err, NULL, "%s", msg);
  hb_http_respond_error(c, &e, NULL, false);
}

bool hb_channel_query_uint(const char *url, const char *name, uint64_t lo, uint64_t hi, uint64_t *out) {
  char s[24];
  ssize_t n = hb_http_query_param(url, name, s, sizeof s);
  if (n == 0) return true;
  if (n < 0) return false;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (*end || s[0] < '0' || s[0] > '9' || v < lo || v > hi) return false;
  *out = v;
  return true;
}

static bool uuid_param(hb_conn *c, const char *url, const char *name, hb_uuid *out) {
  char s[HB_UUID_STR_BYTES + 1];
  ssize_t n = hb_http_query_param(url, name, s, sizeof s);
  char msg[96];
  if (n == 0) {
    snprintf(msg, sizeof msg, "%s is required for this scope", name);
    hb_channel_query_refuse(c, HB_E_MISSING_FIELD, msg);
    return false;
  }
  if (n < 0 || !hb_uuid_parse(s, (size_t)n, out)) {
    snprintf(msg, sizeof msg, "%s is not a UUID", name);
    hb_channel_query_refuse(c, HB_E_INVALID_UUID, msg);
    return false;
  }
  return true;
}

bool hb_channel_query_scope(hb_conn *c, const hb_http_req *req, hb_scope *scope, hb_uuid *event, hb_uuid *session) {
  char sc[16];
  ssize_t n = hb_http_query_param(req->url, "scope", sc, sizeof sc);
  memset(event, 0, sizeof *event);
  memset(session, 0, sizeof *session);
  if (n == 0) {
    hb_channel_query_refuse(c, HB_E_MISSING_FIELD, "scope is required (session, event or organization)");
    return false;
  }
  if (n < 0 || !hb_scope_parse(sc, (size_t)n, scope)) {
    hb_channel_query_refuse(c, HB_E_INVALID_SCOPE, "scope must be session, event or organization");
    return false;
  }
  if (*scope != HB_SCOPE_ORGANIZATION && !uuid_param(c, req->url, "event_id", event)) return false;
  if (*scope == HB_SCOPE_SESSION && !uuid_param(c, req->url, "session_id", session)) return false;
  return true;
}
