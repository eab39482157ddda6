/*
 * cmsg.c - decoding the client messages of the room protocol (cmsg.h).
 *
 * The common message skips jansson: when hb_jscan_plain() finds the text
 * valid, with plain unique keys, and every field we read is present, of the
 * right type and plain (no escapes), the fields are read straight from the
 * text (cmsg_fast). Anything else, every error included, takes the tree
 * (hb_cmsg_decode_tree), so errors and their messages have one source.
 * jansson costs ~160 instructions per byte of a message; the scan a few.
 */
#include "hubbub/cmsg.h"

#include <string.h>

#include "hubbub/alloc.h"
#include "hubbub/event_name.h"
#include "hubbub/field.h"
#include "hubbub/json.h"
#include "hubbub/metrics.h"

static hb_err cmsg_id(json_t *root, hb_cmsg *out, hb_error *err) {
  json_t *id = json_object_get(root, "id");
  if (!id) return HB_OK;
  if (!json_is_string(id)) return hb_error_set(err, HB_E_INVALID_TYPE, "/id", "id must be a string");
  size_t n = json_string_length(id);
  const char *s = json_string_value(id);
  if (n == 0 || n > HB_MAX_REQUEST_ID_BYTES)
    return hb_error_set(err, HB_E_INVALID_VALUE, "/id", "id must be 1-%d bytes",
                        HB_MAX_REQUEST_ID_BYTES);
  if (hb_json_has_control(s, n))
    return hb_error_set(err, HB_E_INVALID_VALUE, "/id", "id must not contain control characters");
  memcpy(out->id, s, n);
  out->id[n] = '\0';
  out->id_len = (uint8_t)n;
  out->has_id = true;
  return HB_OK;
}

static const struct {
  const char *name;
  hb_cmsg_type type;
} cmsg_types[] = {
    {"subscribe", HB_CMSG_SUBSCRIBE},
    {"unsubscribe", HB_CMSG_UNSUBSCRIBE},
    {"publish", HB_CMSG_PUBLISH},
    {"ping", HB_CMSG_PING},
    {"presence.subscribe", HB_CMSG_PRESENCE_SUBSCRIBE},
    {"presence.unsubscribe", HB_CMSG_PRESENCE_UNSUBSCRIBE},
    {"presence.get", HB_CMSG_PRESENCE_GET},
};

static bool is_presence(hb_cmsg_type t) {
  return t == HB_CMSG_PRESENCE_SUBSCRIBE || t == HB_CMSG_PRESENCE_UNSUBSCRIBE || t == HB_CMSG_PRESENCE_GET;
}

static hb_err cmsg_type(json_t *root, hb_cmsg *out, hb_error *err) {
  json_t *t = json_object_get(root, "type");
  if (!t) return hb_error_set(err, HB_E_MISSING_FIELD, "/type", "type is required");
  if (!json_is_string(t)) return hb_error_set(err, HB_E_INVALID_TYPE, "/type", "type must be a string");
  size_t n = json_string_length(t);
  for (size_t i = 0; i < sizeof cmsg_types / sizeof cmsg_types[0]; i++) {
    if (strlen(cmsg_types[i].name) == n && memcmp(cmsg_types[i].name, json_string_value(t), n) == 0) {
      out->type = cmsg_types[i].type;
      return HB_OK;
    }
  }
  return hb_error_set(err, HB_E_UNKNOWN_TYPE, "/type",
                      "type must be subscribe, unsubscribe, publish, ping, presence.subscribe, "
                      "presence.unsubscribe or presence.get");
}

/* scope, and for presence.get cursor and limit (docs/protocol.md, "Presence"). */
static hb_err cmsg_presence(json_t *root, hb_cmsg *out, hb_error *err) {
  json_t *sc = json_object_get(root, "scope");
  if (sc) {
    if (!json_is_string(sc)) return hb_error_set(err, HB_E_INVALID_TYPE, "/scope", "scope must be a string");
    if (!hb_scope_parse(json_string_value(sc), json_string_length(sc), &out->scope) ||
        out->scope == HB_SCOPE_ORGANIZATION)
      return hb_error_set(err, HB_E_INVALID_SCOPE, "/scope", "presence is kept for scope session or event");
  }
  json_t *cur = json_object_get(root, "cursor");
  if (cur && out->type == HB_CMSG_PRESENCE_GET) {
    /* The cursor of an earlier page: decimal digits (opaque to clients). */
    const char *s = json_is_string(cur) ? json_string_value(cur) : NULL;
    size_t n = s ? json_string_length(cur) : 0;
    if (!s) return hb_error_set(err, HB_E_INVALID_TYPE, "/cursor", "cursor must be a string from an earlier page");
    if (!hb_field_presence_cursor(s, n, &out->cursor))
      return hb_error_set(err, HB_E_INVALID_VALUE, "/cursor", "cursor is not one an earlier page gave");
  }
  json_t *lim = json_object_get(root, "limit");
  if (lim && out->type == HB_CMSG_PRESENCE_GET) {
    if (!json_is_integer(lim)) return hb_error_set(err, HB_E_INVALID_TYPE, "/limit", "limit must be an integer");
    json_int_t v = json_integer_value(lim);
    if (v < 1 || v > HB_MAX_PRESENCE_PAGE)
      return hb_error_set(err, HB_E_INVALID_VALUE, "/limit", "limit must be 1 to " HB_STR(HB_MAX_PRESENCE_PAGE));
    out->limit = (uint32_t)v;
  }
  return HB_OK;
}

/* The common client message without a tree (see the top of this file);
 * false leaves the decision, and any error, to the jansson path. */
static bool cmsg_fast(const char *buf, size_t len, size_t max_data_bytes, hb_cmsg *out) {
  size_t root, vs, ve, n;
  const char *s;
  if (!hb_json_plain_root(buf, len, &root)) return false;
  if (hb_json_plain_member(buf, len, root, "id", &vs, &ve)) {
    if (!hb_json_span_str(buf, vs, ve, &s, &n) || n == 0 || n > HB_MAX_REQUEST_ID_BYTES ||
        hb_json_has_control(s, n))
      return false;
    memcpy(out->id, s, n);
    out->id[n] = '\0';
    out->id_len = (uint8_t)n;
    out->has_id = true;
  }
  if (!hb_json_plain_str(buf, len, root, "type", &s, &n)) return false;
  size_t t = 0, types = sizeof cmsg_types / sizeof cmsg_types[0];
  while (t < types && !(strlen(cmsg_types[t].name) == n && memcmp(cmsg_types[t].name, s, n) == 0))
    t++;
  if (t == types) return false;
  out->type = cmsg_types[t].type;
  if (out->type == HB_CMSG_PING) return true;
  if (is_presence(out->type)) return false; /* rare: the tree reads them */
  if (!hb_json_plain_str(buf, len, root, "eventName", &s, &n) || !hb_event_name_valid(s, n)) return false;
  memcpy(out->event_name, s, n);
  out->event_name[n] = '\0';
  out->event_name_len = (uint8_t)n;
  if (out->type != HB_CMSG_PUBLISH) return true;
  if (!hb_field_plain_data(buf, len, root, max_data_bytes, &out->data, &out->data_len)) return false;
  if (hb_json_plain_member(buf, len, root, "scope", &vs, &ve) &&
      (!hb_json_span_str(buf, vs, ve, &s, &n) || !hb_scope_parse(s, n, &out->scope)))
    return false;
  return hb_field_plain_idempotency_key(buf, len, root, out->idem_key, &out->idem_key_len);
}

hb_err hb_cmsg_decode(const char *buf, size_t len, size_t max_data_bytes, hb_cmsg *out,
                      hb_error *err) {
  memset(out, 0, sizeof *out);
  out->scope = HB_SCOPE_SESSION;
  if (cmsg_fast(buf, len, max_data_bytes, out)) {
    hb_metric_inc(HB_M_JSON_FAST_DECODES);
    return HB_OK;
  }
  return hb_cmsg_decode_tree(buf, len, max_data_bytes, out, err);
}

hb_err hb_cmsg_decode_tree(const char *buf, size_t len, size_t max_data_bytes, hb_cmsg *out,
                           hb_error *err) {
  static const char *const data_path[] = {"data"};
  memset(out, 0, sizeof *out);
  out->scope = HB_SCOPE_SESSION;
  hb_err e;
  HB_JSON_ARENA_BUF(abuf);
  hb_json_arena arena;
  hb_json_arena_begin(&arena, abuf, sizeof abuf);
  json_t *root = hb_json_load(buf, len, err);
  if (!root) {
    hb_json_arena_end(&arena);
    return HB_E_INVALID_JSON;
  }
  if (!json_is_object(root)) {
    e = hb_error_set(err, HB_E_INVALID_JSON, NULL, "a message must be a JSON object");
    goto out;
  }
  if ((e = cmsg_id(root, out, err))) goto out;
  if ((e = cmsg_type(root, out, err))) goto out;
  if (out->type == HB_CMSG_PING) goto out;
  if (is_presence(out->type)) {
    e = cmsg_presence(root, out, err);
    goto out;
  }
  e = hb_field_event_name(root, "eventName", "/eventName", out->event_name, &out->event_name_len, err);
  if (e || out->type != HB_CMSG_PUBLISH) goto out;
  e = hb_field_data(root, "/data", buf, len, data_path, 1, max_data_bytes, &out->data, &out->data_len,
               &out->data_owned, err);
  if (e) goto out;
  json_t *sc = json_object_get(root, "scope");
  if (sc) {
    if (!json_is_string(sc)) {
      e = hb_error_set(err, HB_E_INVALID_TYPE, "/scope", "scope must be a string");
      goto out;
    }
    if (!hb_scope_parse(json_string_value(sc), json_string_length(sc), &out->scope)) {
      e = hb_error_set(err, HB_E_INVALID_SCOPE, "/scope", NULL);
      goto out;
    }
  }
  e = hb_field_idempotency_key(root, out->idem_key, &out->idem_key_len, err);
out:
  json_decref(root);
  hb_json_arena_end(&arena);
  if (e) {
    /* `data` is only meaningful for a decoded publish. */
    hb_free(out->data_owned);
    out->data_owned = NULL;
    out->data = NULL;
    out->data_len = 0;
  }
  return e;
}

void hb_cmsg_clear(hb_cmsg *m) {
  hb_free(m->data_owned);
  m->data_owned = NULL;
  m->data = NULL;
  m->data_len = 0;
}

