/* pubreq.c - the HTTP publish body (pubreq.h); the same two paths as cmsg.c. */
#include "hubbub/pubreq.h"

#include <string.h>

#include "hubbub/alloc.h"
#include "hubbub/event_name.h"
#include "hubbub/field.h"
#include "hubbub/json.h"
#include "hubbub/metrics.h"

/* The common publish body without a tree (see cmsg.c for why);
 * false leaves the decision, and any error, to the jansson path. */
static bool pubreq_fast(const char *buf, size_t len, size_t max_data_bytes, hb_pubreq *out) {
  size_t root, scope, payload, event, n;
  const char *s;
  if (!hb_json_plain_root(buf, len, &root) || !hb_json_plain_obj(buf, len, root, "scope", &scope)) return false;
  if (!hb_json_plain_str(buf, len, scope, "type", &s, &n) || !hb_scope_parse(s, n, &out->scope))
    return false;
  if (out->scope != HB_SCOPE_ORGANIZATION &&
      (!hb_json_plain_str(buf, len, scope, "event_id", &s, &n) || !hb_uuid_parse(s, n, &out->event_id)))
    return false;
  if (out->scope == HB_SCOPE_SESSION &&
      (!hb_json_plain_str(buf, len, scope, "session_id", &s, &n) || !hb_uuid_parse(s, n, &out->session_id)))
    return false;
  if (!hb_json_plain_obj(buf, len, root, "payload", &payload) ||
      !hb_json_plain_obj(buf, len, payload, "event", &event))
    return false;
  if (!hb_json_plain_str(buf, len, event, "eventName", &s, &n) || !hb_event_name_valid(s, n)) return false;
  memcpy(out->event_name, s, n);
  out->event_name[n] = '\0';
  out->event_name_len = (uint8_t)n;
  if (!hb_field_plain_data(buf, len, event, max_data_bytes, &out->data, &out->data_len)) return false;
  return hb_field_plain_idempotency_key(buf, len, root, out->idem_key, &out->idem_key_len);
}

hb_err hb_pubreq_decode(const char *buf, size_t len, size_t max_data_bytes, hb_pubreq *out,
                        hb_error *err) {
  memset(out, 0, sizeof *out);
  if (pubreq_fast(buf, len, max_data_bytes, out)) {
    hb_metric_inc(HB_M_JSON_FAST_DECODES);
    return HB_OK;
  }
  return hb_pubreq_decode_tree(buf, len, max_data_bytes, out, err);
}

hb_err hb_pubreq_decode_tree(const char *buf, size_t len, size_t max_data_bytes, hb_pubreq *out,
                             hb_error *err) {
  static const char *const data_path[] = {"payload", "event", "data"};
  memset(out, 0, sizeof *out);
  json_t *root, *scope, *payload, *event;
  HB_JSON_ARENA_BUF(abuf);
  hb_json_arena arena;
  hb_json_arena_begin(&arena, abuf, sizeof abuf);
  hb_err e = hb_field_top_object(buf, len, &root, err);
  if (e) goto out;

  if ((e = hb_field_object(root, "scope", "/scope", &scope, err))) goto out;
  json_t *t = json_object_get(scope, "type");
  if (!t) {
    e = hb_error_set(err, HB_E_MISSING_FIELD, "/scope/type", "scope.type is required");
    goto out;
  }
  if (!json_is_string(t)) {
    e = hb_error_set(err, HB_E_INVALID_TYPE, "/scope/type", "scope.type must be a string");
    goto out;
  }
  if (!hb_scope_parse(json_string_value(t), json_string_length(t), &out->scope)) {
    e = hb_error_set(err, HB_E_INVALID_SCOPE, "/scope/type", NULL);
    goto out;
  }
  /* Ids a scope does not use are ignored, not checked: a caller may keep
   * one body shape and only change scope.type. */
  if (out->scope != HB_SCOPE_ORGANIZATION &&
      (e = hb_field_uuid(scope, "event_id", "/scope/event_id", &out->event_id, err)))
    goto out;
  if (out->scope == HB_SCOPE_SESSION &&
      (e = hb_field_uuid(scope, "session_id", "/scope/session_id", &out->session_id, err)))
    goto out;

  if ((e = hb_field_object(root, "payload", "/payload", &payload, err))) goto out;
  if ((e = hb_field_object(payload, "event", "/payload/event", &event, err))) goto out;
  e = hb_field_event_name(event, "eventName", "/payload/event/eventName", out->event_name,
                     &out->event_name_len, err);
  if (e) goto out;
  e = hb_field_data(event, "/payload/event/data", buf, len, data_path, 3, max_data_bytes, &out->data,
               &out->data_len, &out->data_owned, err);
  if (e) goto out;
  e = hb_field_idempotency_key(root, out->idem_key, &out->idem_key_len, err);
out:
  json_decref(root);
  hb_json_arena_end(&arena);
  if (e) hb_pubreq_clear(out);
  return e;
}

void hb_pubreq_clear(hb_pubreq *r) {
  hb_free(r->data_owned);
  r->data_owned = NULL;
  r->data = NULL;
  r->data_len = 0;
}

