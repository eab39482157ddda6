/* ctreq.c - the connection-token request body (ctreq.h). */
#include "hubbub/ctreq.h"

#include <stdio.h>
#include <string.h>

#include "hubbub/field.h"
#include "hubbub/json.h"
#include "hubbub/user_id.h"

static hb_err ctreq_scopes(json_t *root, hb_scope_set *out, hb_error *err) {
  json_t *v = json_object_get(root, "scopes");
  *out = HB_SCOPE_SET_DEFAULT;
  if (!v) return HB_OK;
  if (!json_is_array(v))
    return hb_error_set(err, HB_E_INVALID_TYPE, "/scopes", "scopes must be an array of scope names");
  /* An empty array is allowed: a client that may subscribe but not publish. */
  *out = 0;
  size_t i;
  json_t *s;
  json_array_foreach(v, i, s) {
    char ptr[32];
    snprintf(ptr, sizeof ptr, "/scopes/%zu", i);
    if (!json_is_string(s))
      return hb_error_set(err, HB_E_INVALID_TYPE, ptr, "scopes[%zu] must be a string", i);
    hb_scope sc;
    if (!hb_scope_parse(json_string_value(s), json_string_length(s), &sc))
      return hb_error_set(err, HB_E_INVALID_SCOPE, ptr, NULL);
    if (*out & HB_SCOPE_BIT(sc))
      return hb_error_set(err, HB_E_INVALID_VALUE, ptr, "scopes lists %s twice", hb_scope_name(sc));
    *out |= HB_SCOPE_BIT(sc);
  }
  return HB_OK;
}

hb_err hb_ctreq_decode(const char *buf, size_t len, hb_ctreq *out, hb_error *err) {
  memset(out, 0, sizeof *out);
  json_t *root;
  HB_JSON_ARENA_BUF(abuf);
  hb_json_arena arena;
  hb_json_arena_begin(&arena, abuf, sizeof abuf);
  hb_err e = hb_field_top_object(buf, len, &root, err);
  if (e) goto out;
  if ((e = hb_field_uuid(root, "event_id", "/event_id", &out->event_id, err))) goto out;
  if ((e = hb_field_uuid(root, "session_id", "/session_id", &out->session_id, err))) goto out;

  json_t *u = json_object_get(root, "user_id");
  if (!u) {
    snprintf(out->user_id, sizeof out->user_id, "%s", "anonymous");
  } else if (!json_is_string(u)) {
    e = hb_error_set(err, HB_E_INVALID_TYPE, "/user_id", "user_id must be a string");
    goto out;
  } else {
    size_t n = json_string_length(u);
    if (!hb_user_id_valid(json_string_value(u), n)) {
      e = hb_error_set(err, HB_E_INVALID_VALUE, "/user_id",
                       "user_id must be 1-%d bytes without control characters",
                       HB_MAX_USER_ID_BYTES);
      goto out;
    }
    memcpy(out->user_id, json_string_value(u), n);
    out->user_id[n] = '\0';
  }

  if ((e = ctreq_scopes(root, &out->scopes, err))) goto out;

  json_t *ttl = json_object_get(root, "ttl");
  out->ttl_s = HB_CONN_TOKEN_DEFAULT_TTL_S;
  if (ttl) {
    if (!json_is_integer(ttl)) {
      e = hb_error_set(err, HB_E_INVALID_TYPE, "/ttl", "ttl must be an integer number of seconds");
      goto out;
    }
    json_int_t v = json_integer_value(ttl);
    if (v < 1 || v > HB_CONN_TOKEN_MAX_TTL_S) {
      e = hb_error_set(err, HB_E_INVALID_VALUE, "/ttl", "ttl must be 1-%d seconds",
                       HB_CONN_TOKEN_MAX_TTL_S);
      goto out;
    }
    out->ttl_s = (int64_t)v;
  }
  switch (hb_field_info(json_object_get(root, "info"), out->info, &out->info_len)) {
  case HB_INFO_OK: break;
  case HB_INFO_NOT_OBJECT:
    e = hb_error_set(err, HB_E_INVALID_TYPE, "/info", "info must be a JSON object (the user's public presence info)");
    goto out;
  case HB_INFO_TOO_LARGE:
    e = hb_error_set(err, HB_E_INVALID_VALUE, "/info",
                     "info must be at most " HB_STR(HB_MAX_PRESENCE_INFO_BYTES) " bytes as compact JSON");
    goto out;
  }
out:
  json_decref(root);
  hb_json_arena_end(&arena);
  return e;
}

