/*
 * errors.h - the one error enum of hubbub, mapped to the outside world once.
 *
 * Every failure a client can cause is one of these. hb_err_code() is the
 * stable machine-readable code (documented in docs/protocol.md and
 * docs/http-api.md), hb_err_http_status() the HTTP status it answers with.
 */
#ifndef HUBBUB_ERRORS_H
#define HUBBUB_ERRORS_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
  HB_OK = 0,
  HB_E_BAD_REQUEST,           /* 400 malformed HTTP request */
  HB_E_INVALID_JSON,          /* 400 body is not valid JSON (or nests too deep) */
  HB_E_MISSING_FIELD,         /* 422 a required field is absent */
  HB_E_INVALID_TYPE,          /* 422 a field has the wrong JSON type */
  HB_E_INVALID_UUID,          /* 422 an id is not a UUID */
  HB_E_INVALID_SCOPE,         /* 422 unknown scope type */
  HB_E_INVALID_EVENT_NAME,    /* 422 empty, too long or bad characters */
  HB_E_INVALID_VALUE,         /* 422 a value out of its range (ttl, user_id...) */
  HB_E_DATA_TOO_LARGE,        /* 413 `data` over max_data_bytes */
  HB_E_MISSING_TOKEN,         /* 401 no credentials */
  HB_E_INVALID_TOKEN,         /* 401 unknown, revoked, malformed or forged */
  HB_E_TOKEN_EXPIRED,         /* 401 connection token past exp */
  HB_E_SCOPE_FORBIDDEN,       /* 403 publish to a scope the token does not allow */
  HB_E_ORIGIN_FORBIDDEN,      /* 403 WebSocket Origin not allowed */
  HB_E_NOT_FOUND,             /* 404 unknown path */
  HB_E_METHOD_NOT_ALLOWED,    /* 405 */
  HB_E_PAYLOAD_TOO_LARGE,     /* 413 body over max_body_bytes */
  HB_E_UNSUPPORTED_MEDIA_TYPE,/* 415 Content-Type is not application/json */
  HB_E_UPGRADE_REQUIRED,      /* 426 WebSocket version other than 13 */
  HB_E_RATE_LIMITED,          /* 429 with Retry-After */
  HB_E_TOO_MANY_SUBSCRIPTIONS,/* 422 (WebSocket only) */
  HB_E_UNKNOWN_TYPE,          /* 422 (WebSocket only) unknown message type */
  HB_E_TOO_MANY_CONNECTIONS,  /* 503 connection limit reached */
  HB_E_SHUTTING_DOWN,         /* 503 */
  HB_E_BROKER_UNAVAILABLE,    /* 503 the cluster (Redis) cannot be reached */
  HB_E_INTERNAL,              /* 500 */
  HB_E_HEADERS_TOO_LARGE,     /* 431 request line + headers over the limit */
  HB_E_URI_TOO_LONG,          /* 414 */
  HB_E_REQUEST_TIMEOUT,       /* 408 */
  HB_E_ALREADY_EXISTS,        /* 409 admin: a name already taken */
  HB_E_TOKEN_REVOKED,         /* 401 connection token of a user whose tokens were revoked */
  HB_E__COUNT
} hb_err;

/*
 * WebSocket close codes hubbub sends (docs/protocol.md, "Close codes"): the
 * RFC 6455 7.4.1 codes, and application codes split into 4000-4399
 * "reconnect with backoff" and 4400-4499 "do not reconnect without a
 * change" (a new token, a fixed client). A refusal at the handshake closes
 * with 4000 + the HTTP status it would have answered (hb_err_close_code).
 */
typedef enum {
  HB_CLOSE_NORMAL = 1000,
  HB_CLOSE_GOING_AWAY = 1001,       /* the server is shutting down */
  HB_CLOSE_PROTOCOL_ERROR = 1002,
  HB_CLOSE_UNSUPPORTED_DATA = 1003, /* a binary message */
  HB_CLOSE_INVALID_PAYLOAD = 1007,  /* text or close reason not UTF-8 */
  HB_CLOSE_POLICY_VIOLATION = 1008, /* a message in more than max_message_fragments frames */
  HB_CLOSE_MESSAGE_TOO_BIG = 1009,
  HB_CLOSE_INTERNAL_ERROR = 1011,
  HB_CLOSE_TRY_AGAIN_LATER = 1013,
  HB_CLOSE_SLOW_CONSUMER = 4000,
  HB_CLOSE_IDLE_TIMEOUT = 4001,
  HB_CLOSE_RATE_LIMITED = 4008,
  HB_CLOSE_BAD_REQUEST = 4400,
  HB_CLOSE_UNAUTHORIZED = 4401,     /* missing, invalid or expired token */
  HB_CLOSE_FORBIDDEN = 4403,
  HB_CLOSE_TOKEN_REVOKED = 4410,
  HB_CLOSE_UNPROCESSABLE = 4422,
} hb_close_code;

/**
 * Is `e` a refusal (docs/operations.md, "Logs"): a client turned away for
 * its credentials, its origin, a limit or because the server cannot serve
 * (401, 403, 413, 415, 429, 503), not for a mistake in what it sent.
 * Refusals are logged at warn and counted in hubbub_refusals_total.
 */
bool hb_err_is_refusal(hb_err e);

/** The close code of a refusal with `e` (4000 + its 4xx status; 1013 for a 503). */
hb_close_code hb_err_close_code(hb_err e);

/* Longest JSON pointer and message an hb_error carries. */
#define HB_ERROR_POINTER_BYTES 96
#define HB_ERROR_MESSAGE_BYTES 192

/*
 * The pointer of an error about the whole body (e.g. the top level is not an
 * object). In hb_error.pointer, "" means "no pointer" (the field is omitted)
 * and this sentinel means the RFC 6901 pointer "" to the whole document; it
 * is the document's URI-fragment form (RFC 6901 section 6), never a valid
 * plain pointer, so it cannot clash with a field's pointer.
 */
#define HB_POINTER_ROOT "#"

/* A failure with its details: which field (a JSON pointer, RFC 6901, or
 * empty) and a human message. Lives on the stack; owns nothing. */
typedef struct {
  hb_err err;
  char pointer[HB_ERROR_POINTER_BYTES];
  char message[HB_ERROR_MESSAGE_BYTES];
} hb_error;

/** Stable code, e.g. "invalid_uuid". Never NULL. */
const char *hb_err_code(hb_err e);
/** HTTP status for this error (200 for HB_OK). */
int hb_err_http_status(hb_err e);
/** Default human message for this error. */
const char *hb_err_message(hb_err e);

/**
 * Fill `out` (may be NULL: then only the code is returned). `pointer` may be
 * NULL. `fmt` may be NULL for the default message. Returns `e` so callers
 * can write `return hb_error_set(err, HB_E_..., "/scope", "...")`.
 */
hb_err hb_error_set(hb_error *out, hb_err e, const char *pointer,
                    const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
