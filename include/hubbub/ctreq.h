/*
 * ctreq.h - the body of POST /api/v1/connection_tokens (docs/http-api.md).
 */
#ifndef HUBBUB_CTREQ_H
#define HUBBUB_CTREQ_H

#include <stddef.h>
#include <stdint.h>

#include "hubbub/errors.h"
#include "hubbub/limits.h"
#include "hubbub/scope.h"
#include "hubbub/uuid.h"

/* POST /api/v1/connection_tokens body:
 * {"event_id","session_id","user_id","scopes":[...],"ttl":seconds,"info":{...}}
 * user_id: optional string 1..HB_MAX_USER_ID_BYTES (default "anonymous");
 * scopes: optional, default ["session"]; ttl: optional integer
 * 1..HB_CONN_TOKEN_MAX_TTL_S, default HB_CONN_TOKEN_DEFAULT_TTL_S;
 * info: optional object, the user's public presence info (compact JSON of at
 * most HB_MAX_PRESENCE_INFO_BYTES). */
typedef struct {
  hb_uuid event_id;
  hb_uuid session_id;
  char user_id[HB_MAX_USER_ID_BYTES + 1];
  hb_scope_set scopes;
  int64_t ttl_s;
  uint16_t info_len; /* 0: none */
  char info[HB_MAX_PRESENCE_INFO_BYTES];
} hb_ctreq;

hb_err hb_ctreq_decode(const char *buf, size_t len, hb_ctreq *out, hb_error *err);

#endif
