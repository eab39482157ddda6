/*
 * field.c - reading the fields of protocol JSON (field.h): on a jansson tree
 * with precise errors, or straight from a text hb_jscan_plain() accepted.
 */
#include "hubbub/field.h"

#include <string.h>

#include "hubbub/alloc.h"
#include "hubbub/event_name.h"
#include "hubbub/resume.h"

/* A required event name at obj[key]; pointer names it in errors. */
hb_err hb_field_event_name(json_t *obj, const char *key, const char *pointer, char *out,
                             uint8_t *out_len, hb_error *err) {
  json_t *v = json_object_get(obj, key);
  if (!v) return hb_error_set(err, HB_E_MISSING_FIELD, pointer, "%s is required", key);
  if (!json_is_string(v))
    return hb_error_set(err, HB_E_INVALID_TYPE, pointer, "%s must be a string", key);
  size_t n = json_string_length(v);
  if (!hb_event_name_valid(json_string_value(v), n))
    return hb_error_set(err, HB_E_INVALID_EVENT_NAME, pointer, NULL);
  memcpy(out, json_string_value(v), n);
  out[n] = '\0';
  *out_len = (uint8_t)n;
  return HB_OK;
}

hb_err hb_field_data(json_t *obj, const char *pointer, const char *buf, size_t len,
                       const char *const *path, int path_len, size_t max_data_bytes,
                       const char **data, size_t *data_len, char **owned, hb_error *err) {
  json_t *v = json_object_get(obj, "data");
  if (!v) return hb_error_set(err, HB_E_MISSING_FIELD, pointer, "data is required");
  if (!json_is_object(v))
    return hb_error_set(err, HB_E_INVALID_TYPE, pointer, "data must be a JSON object");
  size_t s, e;
  if (hb_json_find_span(buf, len, path, path_len, &s, &e) && buf[s] == '{') {
    *data = buf + s;
    *data_len = e - s;
  } else {
    /* Defensive only: the scanner follows the same grammar jansson just
     * accepted. A re-serialisation is still the same JSON value. */
    size_t need = json_dumpb(v, NULL, 0, JSON_COMPACT);
    *owned = hb_malloc(need + 1);
    json_dumpb(v, *owned, need, JSON_COMPACT);
    (*owned)[need] = '\0';
    *data = *owned;
    *data_len = need;
  }
  if (*data_len > max_data_bytes)
    return hb_error_set(err, HB_E_DATA_TOO_LARGE, pointer,
                        "data is %zu bytes, over the limit of %zu", *data_len, max_data_bytes);
  return HB_OK;
}

/* A required object member; pointer names it in errors. */
hb_err hb_field_object(json_t *obj, const char *key, const char *pointer, json_t **out,
                         hb_error *err) {
  *out = json_object_get(obj, key);
  if (!*out) return hb_error_set(err, HB_E_MISSING_FIELD, pointer, "%s is required", key);
  if (!json_is_object(*out))
    return hb_error_set(err, HB_E_INVALID_TYPE, pointer, "%s must be a JSON object", key);
  return HB_OK;
}

hb_err hb_field_uuid(json_t *obj, const char *key, const char *pointer, hb_uuid *out,
                       hb_error *err) {
  json_t *v = json_object_get(obj, key);
  if (!v) return hb_error_set(err, HB_E_MISSING_FIELD, pointer, "%s is required", key);
  if (!json_is_string(v))
    return hb_error_set(err, HB_E_INVALID_TYPE, pointer, "%s must be a UUID string", key);
  if (!hb_uuid_parse(json_string_value(v), json_string_length(v), out))
    return hb_error_set(err, HB_E_INVALID_UUID, pointer, "%s is not a UUID", key);
  return HB_OK;
}

hb_err hb_field_top_object(const char *buf, size_t len, json_t **root, hb_error *err) {
  *root = hb_json_load(buf, len, err);
  if (!*root) return HB_E_INVALID_JSON;
  if (!json_is_object(*root))
    return hb_error_set(err, HB_E_INVALID_TYPE, HB_POINTER_ROOT, "the body must be a JSON object");
  return HB_OK;
}

bool hb_field_plain_data(const char *p, size_t n, size_t obj, size_t max_data_bytes, const char **data,
                         size_t *data_len) {
  size_t vs, ve;
  if (!hb_json_plain_member(p, n, obj, "data", &vs, &ve) || p[vs] != '{' || ve - vs > max_data_bytes)
    return false;
  *data = p + vs;
  *data_len = ve - vs;
  return true;
}

bool hb_field_idempotency_key_valid(const char *s, size_t n) {
  if (n == 0 || n > HB_MAX_IDEMPOTENCY_KEY_BYTES) return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e) return false;
  return true;
}

hb_err hb_field_idempotency_key(json_t *obj, char *out, uint8_t *len, hb_error *err) {
  json_t *ik = json_object_get(obj, "idempotency_key");
  *len = 0;
  if (!ik) return HB_OK;
  if (!json_is_string(ik) || !hb_field_idempotency_key_valid(json_string_value(ik), json_string_length(ik)))
    return hb_error_set(err, HB_E_INVALID_VALUE, "/idempotency_key",
                        "idempotency_key must be 1-%d printable ASCII characters", HB_MAX_IDEMPOTENCY_KEY_BYTES);
  *len = (uint8_t)json_string_length(ik);
  memcpy(out, json_string_value(ik), *len);
  out[*len] = '\0';
  return HB_OK;
}

bool hb_field_plain_idempotency_key(const char *p, size_t n, size_t obj, char *out, uint8_t *len) {
  size_t vs, ve, kn;
  const char *k;
  *len = 0;
  if (!hb_json_plain_member(p, n, obj, "idempotency_key", &vs, &ve)) return true;
  if (!hb_json_span_str(p, vs, ve, &k, &kn) || !hb_field_idempotency_key_valid(k, kn)) return false;
  memcpy(out, k, kn);
  out[kn] = '\0';
  *len = (uint8_t)kn;
  return true;
}

hb_info_status hb_field_info(json_t *v, char out[HB_MAX_PRESENCE_INFO_BYTES], uint16_t *len) {
  *len = 0;
  if (!v) return HB_INFO_OK;
  if (!json_is_object(v)) return HB_INFO_NOT_OBJECT;
  /* What is measured is what members are sent. json_dumpb returns the size
   * it needs even when that is more than the buffer holds. */
  size_t n = json_dumpb(v, out, HB_MAX_PRESENCE_INFO_BYTES, JSON_COMPACT);
  if (n == 0 || n > HB_MAX_PRESENCE_INFO_BYTES) return HB_INFO_TOO_LARGE;
  *len = (uint16_t)n;
  return HB_INFO_OK;
}

bool hb_field_presence_cursor(const char *s, size_t n, uint64_t *out) {
  /* A position in a channel's join order, spelled as an offset is. */
  return n <= HB_MAX_PRESENCE_CURSOR_BYTES && hb_resume_parse_offset(s, n, out);
}
