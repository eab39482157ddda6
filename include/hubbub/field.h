/*
 * field.h - the fields of protocol JSON, read one way for every message and
 * body: a tree from hb_json_load() with errors that carry a JSON pointer to
 * the field at fault, or (the common message) straight from a text that
 * hb_jscan_plain() accepted, without a tree.
 *
 * On a tree, each reader fills `err` and returns its code when the field is
 * missing, of the wrong type or out of range; HB_OK otherwise.
 */
#ifndef HUBBUB_FIELD_H
#define HUBBUB_FIELD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hubbub/errors.h"
#include "hubbub/json.h"
#include "hubbub/limits.h"
#include "hubbub/uuid.h"

/** A required event name at obj[key] into out (HB_MAX_EVENT_NAME_BYTES + 1). */
hb_err hb_field_event_name(json_t *obj, const char *key, const char *pointer, char *out,
                           uint8_t *out_len, hb_error *err);
/**
 * The required `data` object at obj["data"], located in the text `buf` by
 * `path` (keys from the top level) so that it is forwarded byte for byte:
 * *data / *data_len point into buf (or into *owned, a compact
 * re-serialisation, should the scanner not find it). Over max_data_bytes:
 * HB_E_DATA_TOO_LARGE.
 */
hb_err hb_field_data(json_t *obj, const char *pointer, const char *buf, size_t len,
                     const char *const *path, int path_len, size_t max_data_bytes,
                     const char **data, size_t *data_len, char **owned, hb_error *err);
/** A required object member. */
hb_err hb_field_object(json_t *obj, const char *key, const char *pointer, json_t **out, hb_error *err);
/** A required UUID string member. */
hb_err hb_field_uuid(json_t *obj, const char *key, const char *pointer, hb_uuid *out, hb_error *err);
/** Parse a body that must be a JSON object (the pointer of that error is the whole body). */
hb_err hb_field_top_object(const char *buf, size_t len, json_t **root, hb_error *err);

/** The rule for idempotency keys (HTTP Idempotency-Key, WebSocket
 * idempotency_key): 1..HB_MAX_IDEMPOTENCY_KEY_BYTES of printable ASCII, no space. */
bool hb_field_idempotency_key_valid(const char *s, size_t n);

/** The optional "idempotency_key" member of obj into out (HB_MAX_IDEMPOTENCY_KEY_BYTES + 1); *len 0 when absent. */
hb_err hb_field_idempotency_key(json_t *obj, char *out, uint8_t *len, hb_error *err);
/** The same in a jscan-accepted text; false when present but not a plain valid key (the tree path decides). */
bool hb_field_plain_idempotency_key(const char *p, size_t n, size_t obj, char *out, uint8_t *len);

/* The presence `info` object (a connection token's claim, a connection-token
 * request's field): public user info, kept and forwarded as compact JSON. */
typedef enum { HB_INFO_OK, HB_INFO_NOT_OBJECT, HB_INFO_TOO_LARGE } hb_info_status;
/** `v` (NULL: absent, *len 0) as compact JSON into out; over
 * HB_MAX_PRESENCE_INFO_BYTES is HB_INFO_TOO_LARGE. */
hb_info_status hb_field_info(json_t *v, char out[HB_MAX_PRESENCE_INFO_BYTES], uint16_t *len);

/** A presence page cursor (HTTP `cursor`, presence.get's `cursor`): 1 to
 * HB_MAX_PRESENCE_CURSOR_BYTES decimal digits, no leading zero, a value
 * that fits 64 bits. */
bool hb_field_presence_cursor(const char *s, size_t n, uint64_t *out);

/** In a jscan-accepted text: the `data` member of the object at `obj`, an
 * object within max_data_bytes. */
bool hb_field_plain_data(const char *p, size_t n, size_t obj, size_t max_data_bytes, const char **data,
                         size_t *data_len);

#endif
