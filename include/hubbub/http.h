/*
 * http.h - HTTP/1.1 requests through http-parser, bounded, and responses.
 *
 * http-parser 2.9.4 is lenient where we must not be (DESIGN.md): a raw
 * header-line checker in front of it rejects bare LF line endings and folded
 * header lines, and the callbacks reject a missing or duplicate Host, header
 * names that are not tokens (a space before the colon), and versions other
 * than HTTP/1.0 and HTTP/1.1. Every size is capped (limits.h).
 */
#ifndef HUBBUB_HTTP_H
#define HUBBUB_HTTP_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>

#include "hubbub/conn.h"
#include "hubbub/errors.h"
#include "hubbub/limits.h"
#include "hubbub/strbuf.h"
#include "hubbub/uuid.h"

#define HB_HTTP_FIELD_BYTES 64 /* longest header name we care to keep */
#define HB_HTTP_ROUTE_DATA_BYTES 64 /* the router's per-request scratch (route_data) */

/* Headers the server reads; everything else is counted and dropped. */
typedef enum {
  HB_H_OTHER = -1,
  HB_H_HOST,
  HB_H_AUTHORIZATION,
  HB_H_CONTENT_TYPE,
  HB_H_CONTENT_LENGTH,
  HB_H_TRANSFER_ENCODING,
  HB_H_CONNECTION,
  HB_H_UPGRADE,
  HB_H_ORIGIN,
  HB_H_WS_KEY,
  HB_H_WS_VERSION,
  HB_H_IF_NONE_MATCH,
  HB_H_IDEMPOTENCY_KEY,
  /* May be repeated: the lines are joined with ", " (RFC 9110 5.3), and its
   * value may be HB_MAX_WS_PROTOCOL_VALUE_BYTES long (a connection token). */
  HB_H_WS_PROTOCOL,
  HB_H_ACR_METHOD, /* Access-Control-Request-Method: a CORS preflight */
  HB__H_COUNT
} hb_hdr;

typedef struct hb_http_req {
  http_parser parser;
  uint8_t hscan_state; /* raw header-line checker state */
  bool in_headers;
  unsigned method; /* enum http_method */
  size_t url_len;
  size_t header_bytes;
  unsigned nheaders;
  size_t field_len;
  size_t name_bytes; /* the current header name's length, to HB_MAX_HEADER_NAME_BYTES */
  bool field_long; /* longer than HB_HTTP_FIELD_BYTES: not one we read */
  bool in_value;
  size_t value_cap; /* the longest value the header being read may have */
  hb_strbuf value;
  char *hdr[HB__H_COUNT]; /* NULL when absent */
  size_t hdr_len[HB__H_COUNT];
  hb_strbuf body;
  size_t max_body;
  bool headers_done;
  bool upgrade;
  bool keep_alive;
  bool failed;      /* an error response was sent; the connection closes */
  uint8_t transport; /* hb_transport: HTTP, or WS for the WebSocket route (the router says) */
  uint64_t started_ns; /* uv_hrtime() at the request's first byte */
  /* Header lines (each ending in CRLF) the router adds to every response to
   * this request (CORS), or NULL. Owned by the request. */
  char *resp_headers;
  /* The credential the request carried, for log lines (never the secret),
   * set by the router: hb_log_redact()'s form, or "admin:<hash prefix>", or
   * (log_cred_id_set) the API token's id, formatted only when a line is
   * written. Empty when none. */
  char log_cred[HB_LOG_REDACT_BYTES];
  bool log_cred_id_set;
  hb_uuid log_cred_id;
  const void *route; /* the router's: the route matched at on_headers */
  /* The router's: what its checks found (the API token's principal), kept
   * here so that no request allocates for it. */
  _Alignas(8) unsigned char route_data[HB_HTTP_ROUTE_DATA_BYTES];
  /* Last, and not zeroed for a new request (url_len and field_len say how
   * much is valid): over 6 KiB that a memset per request would touch. */
  char field[HB_HTTP_FIELD_BYTES + 1];
  char url[HB_MAX_URL_BYTES + 1];
} hb_http_req;

/* What the layer above (the router) does with requests. */
typedef struct {
  /** Headers are in: route and check (method, credentials, Content-Type,
   * declared size). Return false after queuing an error response: the
   * connection then closes without parsing the body (a lingering close
   * reads and discards it, bounded: HB_HTTP_LINGER_MS and _MAX_BYTES). */
  bool (*on_headers)(hb_conn *c, hb_http_req *req);
  /** The whole request is in: answer it, or upgrade the connection (then
   * the bytes that follow go to the new handler). */
  void (*on_request)(hb_conn *c, hb_http_req *req);
} hb_http_handlers;

/** Register the router (once, before any connection). */
void hb_http_init(const hb_http_handlers *h);
/** The connection handler of a new connection: HTTP/1.1 requests, keep-alive. */
extern const hb_conn_handler hb_http_conn_handler;
/** Per-connection state of the HTTP glue (in the connection's extension area). */
typedef struct {
  hb_http_req *req; /* the request being read or answered, NULL between requests */
  bool deferred;    /* on_request answers later (hb_http_defer) */
} hb_http_conn;

/**
 * Answering later. From on_request, a handler that waits for something
 * (Redis) calls hb_http_defer(): the connection stops reading (bytes of
 * pipelined requests are kept, not lost) and its memory is held. When the
 * answer is ready, on the connection's thread:
 *
 *   if (hb_http_deferred_open(c)) hb_http_respond(c, ...);  // still there
 *   hb_http_resume(c);                                        // always
 *
 * hb_http_resume releases the hold and, if the connection is still open,
 * ends the request and reads on (the pipelined requests first). A
 * connection that closed meanwhile is never written to, and freed by the
 * release.
 */
void hb_http_defer(hb_conn *c);
bool hb_http_deferred_open(hb_conn *c);
void hb_http_resume(hb_conn *c);

void hb_http_req_free(hb_http_req *r);
/** Feed bytes read on a connection (hb_http_conn_handler.on_read; tests and fuzzers). */
void hb_http_on_read(hb_conn *c, const char *buf, size_t len);

/**
 * Queue a complete response. `extra` holds additional header lines, each
 * ending in CRLF (or NULL). `close` adds Connection: close and closes the
 * connection after the flush: with a lingering close (conn.h) once a
 * request was read from it, so that a client still sending its body reads
 * the answer instead of a reset.
 */
void hb_http_respond(hb_conn *c, int status, const char *ctype, const char *extra,
                     const char *body, size_t len, bool close);
/** A JSON error body ({"error":{...}}) with the error's status. Counted and
 * logged (hb_http_note_error). */
void hb_http_respond_error(hb_conn *c, const hb_error *e, const char *extra, bool close);
/**
 * Count and log an error answered to the connection's current request:
 * hubbub_errors_total, hubbub_refusals_total (refusals, and anything the
 * WebSocket route refuses), and one log line (warn for refusals, error for
 * 5xx but 503, debug otherwise; at most one a second per code and
 * transport). `close_code` is the WebSocket close code of a refusal
 * answered in band, 0 otherwise.
 */
void hb_http_note_error(hb_conn *c, const hb_error *e, unsigned close_code);
/**
 * A response of `bytes` bytes with `status` was queued for the current
 * request other than through hb_http_respond (the 101 of an upgrade): the
 * duration histogram and the access log.
 */
void hb_http_note_response(hb_conn *c, int status, size_t bytes);
/** Reason phrase of a status code. */
const char *hb_http_reason(int status);
/**
 * The next element of a comma-separated header value (RFC 9110 5.6.1:
 * whitespace around elements trimmed, empty ones skipped), from *pos on.
 * False at the end.
 */
bool hb_http_list_next(const char *v, size_t len, size_t *pos, const char **elem, size_t *elen);
/** Case-insensitive: does the comma-separated header value hold `token`? */
bool hb_http_has_token(const char *value, size_t len, const char *token);
/**
 * The percent-decoded value of query parameter `name` (without "=") of a
 * request target, into out (cap bytes with the NUL). Returns its length, 0
 * when absent or empty, -1 when malformed or too long. Only the first
 * occurrence counts.
 */
ssize_t hb_http_query_param(const char *url, const char *name, char *out, size_t cap);
/** HTTP error body: {"error":{"code":..,"message":..,"pointer":..}}. "pointer" is
 * present when e->pointer is non-empty; HB_POINTER_ROOT is written as "pointer":"". */
void hb_http_error_body(hb_strbuf *sb, const hb_error *e);

#endif
