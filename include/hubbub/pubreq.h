/*
 * pubreq.h - the body of POST /api/v1/pub_subs (SPEC.md "The HTTP publish
 * API"), decoded strictly and bounded; `data` forwarded byte for byte.
 */
#ifndef HUBBUB_PUBREQ_H
#define HUBBUB_PUBREQ_H

#include <stddef.h>
#include <stdint.h>

#include "hubbub/errors.h"
#include "hubbub/limits.h"
#include "hubbub/scope.h"
#include "hubbub/uuid.h"

/* POST /api/v1/pub_subs body (SPEC.md "The HTTP publish API"). */
typedef struct {
  hb_scope scope;
  hb_uuid event_id;   /* zero unless scope is event or session */
  hb_uuid session_id; /* zero unless scope is session */
  uint8_t event_name_len;
  char event_name[HB_MAX_EVENT_NAME_BYTES + 1];
  const char *data; /* as in hb_cmsg */
  size_t data_len;
  char *data_owned;
  /* An item of a batch may carry its own "idempotency_key" (the single
   * publish takes the Idempotency-Key header); 0 length when absent. */
  uint8_t idem_key_len;
  char idem_key[HB_MAX_IDEMPOTENCY_KEY_BYTES + 1];
} hb_pubreq;

hb_err hb_pubreq_decode(const char *buf, size_t len, size_t max_data_bytes,
                        hb_pubreq *out, hb_error *err);
/** The reference decoder (a jansson tree, the precise errors); hb_pubreq_decode
 * reads the common body straight from the text and falls back to it. */
hb_err hb_pubreq_decode_tree(const char *buf, size_t len, size_t max_data_bytes,
                             hb_pubreq *out, hb_error *err);
void hb_pubreq_clear(hb_pubreq *r);

#endif
