/* errors.c - the error enum mapped once to codes, HTTP statuses and messages. */
#include "hubbub/errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
  const char *code;
  int status;
  const char *message;
} table[HB_E__COUNT] = {
    [HB_OK] = {"ok", 200, "ok"},
    [HB_E_BAD_REQUEST] = {"bad_request", 400, "malformed HTTP request"},
    [HB_E_INVALID_JSON] = {"invalid_json", 400, "the body is not valid JSON"},
    [HB_E_MISSING_FIELD] = {"missing_field", 422, "a required field is missing"},
    [HB_E_INVALID_TYPE] = {"invalid_type", 422, "a field has the wrong type"},
    [HB_E_INVALID_UUID] = {"invalid_uuid", 422, "not a UUID"},
    [HB_E_INVALID_SCOPE] = {"invalid_scope", 422, "scope must be session, event or organization"},
    [HB_E_INVALID_EVENT_NAME] = {"invalid_event_name", 422,
                                 "eventName must be 1-128 characters of A-Z a-z 0-9 - _ . : / @"},
    [HB_E_INVALID_VALUE] = {"invalid_value", 422, "a value is out of range"},
    [HB_E_DATA_TOO_LARGE] = {"data_too_large", 413, "data is over the size limit"},
    [HB_E_MISSING_TOKEN] = {"missing_token", 401, "no token given"},
    [HB_E_INVALID_TOKEN] = {"invalid_token", 401, "the token is not valid"},
    [HB_E_TOKEN_EXPIRED] = {"token_expired", 401, "the token has expired"},
    [HB_E_SCOPE_FORBIDDEN] = {"scope_forbidden", 403, "the token does not allow this scope"},
    [HB_E_ORIGIN_FORBIDDEN] = {"origin_forbidden", 403, "this Origin may not connect"},
    [HB_E_NOT_FOUND] = {"not_found", 404, "no such path"},
    [HB_E_METHOD_NOT_ALLOWED] = {"method_not_allowed", 405, "method not allowed on this path"},
    [HB_E_PAYLOAD_TOO_LARGE] = {"payload_too_large", 413, "the body is over the size limit"},
    [HB_E_UNSUPPORTED_MEDIA_TYPE] = {"unsupported_media_type", 415,
                                     "Content-Type must be application/json"},
    [HB_E_UPGRADE_REQUIRED] = {"upgrade_required", 426, "WebSocket version 13 is required"},
    [HB_E_RATE_LIMITED] = {"rate_limited", 429, "too many requests"},
    [HB_E_TOO_MANY_SUBSCRIPTIONS] = {"too_many_subscriptions", 422,
                                     "too many subscriptions on this connection"},
    [HB_E_UNKNOWN_TYPE] = {"unknown_type", 422, "unknown message type"},
    [HB_E_TOO_MANY_CONNECTIONS] = {"too_many_connections", 503, "connection limit reached"},
    [HB_E_SHUTTING_DOWN] = {"shutting_down", 503, "the server is shutting down"},
    [HB_E_BROKER_UNAVAILABLE] = {"broker_unavailable", 503, "the cluster cannot be reached"},
    [HB_E_INTERNAL] = {"internal", 500, "internal error"},
    [HB_E_HEADERS_TOO_LARGE] = {"headers_too_large", 431, "request headers are too large"},
    [HB_E_URI_TOO_LONG] = {"uri_too_long", 414, "the request target is too long"},
    [HB_E_REQUEST_TIMEOUT] = {"request_timeout", 408, "the request took too long"},
    [HB_E_ALREADY_EXISTS] = {"already_exists", 409, "that name is already taken"},
    [HB_E_TOKEN_REVOKED] = {"token_revoked", 401, "the connection tokens of this user were revoked"},
};

const char *hb_err_code(hb_err e) {
  return (unsigned)e < HB_E__COUNT ? table[e].code : "internal";
}

int hb_err_http_status(hb_err e) { return (unsigned)e < HB_E__COUNT ? table[e].status : 500; }

const char *hb_err_message(hb_err e) {
  return (unsigned)e < HB_E__COUNT ? table[e].message : "internal error";
}

bool hb_err_is_refusal(hb_err e) {
  switch (hb_err_http_status(e)) {
  case 401: case 403: case 413: case 415: case 429: case 503: return true;
  default: return false;
  }
}

hb_close_code hb_err_close_code(hb_err e) {
  /* A revoked user's token: 4410, so a client asks for a new token (and the
   * operator's "revoked" is told apart from a plain expiry). */
  if (e == HB_E_TOKEN_REVOKED) return HB_CLOSE_TOKEN_REVOKED;
  int status = hb_err_http_status(e);
  if (status >= 400 && status < 500) return (hb_close_code)(4000 + status);
  return status == 503 ? HB_CLOSE_TRY_AGAIN_LATER : HB_CLOSE_INTERNAL_ERROR;
}

hb_err hb_error_set(hb_error *out, hb_err e, const char *pointer, const char *fmt, ...) {
  if (!out) return e;
  out->err = e;
  out->pointer[0] = '\0';
  if (pointer) snprintf(out->pointer, sizeof out->pointer, "%s", pointer);
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof out->message, fmt, ap);
    va_end(ap);
  } else {
    snprintf(out->message, sizeof out->message, "%s", hb_err_message(e));
  }
  return e;
}
