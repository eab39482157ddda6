/* http.c - http-parser glue: strict, bounded HTTP/1.1 requests; responses. */
#include "hubbub/http.h"

#include <ctype.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hubbub/alloc.h"
#include "hubbub/io.h"
#include "hubbub/limits.h"
#include "hubbub/log.h"
#include "hubbub/metrics.h"
#include "hubbub/pct.h"

/* States of the raw header-line checker (see http.h for why it exists). */
enum { HS_FIRST, HS_FIRST_CR, HS_LINE, HS_CR, HS_LINE_START, HS_END_CR };

static const char *const hdr_names[HB__H_COUNT] = {
    [HB_H_HOST] = "host",
    [HB_H_AUTHORIZATION] = "authorization",
    [HB_H_CONTENT_TYPE] = "content-type",
    [HB_H_CONTENT_LENGTH] = "content-length",
    [HB_H_TRANSFER_ENCODING] = "transfer-encoding",
    [HB_H_CONNECTION] = "connection",
    [HB_H_UPGRADE] = "upgrade",
    [HB_H_ORIGIN] = "origin",
    [HB_H_WS_KEY] = "sec-websocket-key",
    [HB_H_WS_VERSION] = "sec-websocket-version",
    [HB_H_IF_NONE_MATCH] = "if-none-match",
    [HB_H_IDEMPOTENCY_KEY] = "idempotency-key",
    [HB_H_WS_PROTOCOL] = "sec-websocket-protocol",
    [HB_H_ACR_METHOD] = "access-control-request-method",
};

static const hb_http_handlers *router;

void hb_http_init(const hb_http_handlers *h) { router = h; }

static hb_http_conn *hconn(hb_conn *c) { return hb_conn_ext(c); }

void hb_http_req_free(hb_http_req *r) {
  if (!r) return;
  for (int i = 0; i < HB__H_COUNT; i++) hb_free(r->hdr[i]);
  hb_free(r->resp_headers);
  hb_strbuf_free(&r->value);
  hb_strbuf_free(&r->body);
  hb_free(r);
}

/*
 * One spare request object per thread. A request object is over 6 KiB (the
 * URL buffer); allocating and zeroing one per keep-alive request was the
 * largest cost after JSON parsing (docs/performance.md, W3). A finished
 * request goes back to its thread's slot with its buffers; the next request
 * on any connection of that thread takes it. Idle connections hold none.
 * The key's destructor frees the spare when an I/O thread exits.
 */
static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;

static void spare_destroy(void *p) { hb_http_req_free(p); }

static void spare_key_init(void) {
  if (pthread_key_create(&spare_key, spare_destroy) != 0) abort();
}

/* A zeroed request, the thread's spare if there is one. */
static hb_http_req *req_get(void) {
  pthread_once(&spare_once, spare_key_init);
  hb_http_req *r = pthread_getspecific(spare_key);
  hb_strbuf value = HB_STRBUF_INIT, body = HB_STRBUF_INIT;
  if (r) {
    pthread_setspecific(spare_key, NULL);
    value = r->value;
    body = r->body;
    hb_strbuf_reset(&value);
    hb_strbuf_reset(&body);
  } else {
    r = hb_malloc(sizeof *r);
  }
  /* Everything before the field and URL buffers; those are valid up to
   * field_len and url_len, now 0. */
  memset(r, 0, offsetof(hb_http_req, field));
  r->field[0] = '\0';
  r->url[0] = '\0';
  r->value = value;
  r->body = body;
  return r;
}

/* A finished request: keep it as the thread's spare (without its header
 * copies, and without buffers a large request grew), or free it. */
static void req_put(hb_http_req *r) {
  for (int i = 0; i < HB__H_COUNT; i++) {
    hb_free(r->hdr[i]);
    r->hdr[i] = NULL;
  }
  hb_free(r->resp_headers);
  r->resp_headers = NULL;
  if (r->value.cap > HB_HTTP_SPARE_KEEP_BYTES) hb_strbuf_free(&r->value);
  if (r->body.cap > HB_HTTP_SPARE_KEEP_BYTES) hb_strbuf_free(&r->body);
  if (pthread_getspecific(spare_key)) {
    hb_http_req_free(r);
    return;
  }
  pthread_setspecific(spare_key, r);
}

/* --- responses ----------------------------------------------------------- */

const char *hb_http_reason(int status) {
  switch (status) {
  case 101: return "Switching Protocols";
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 204: return "No Content";
  case 302: return "Found";
  case 304: return "Not Modified";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 413: return "Content Too Large";
  case 414: return "URI Too Long";
  case 415: return "Unsupported Media Type";
  case 422: return "Unprocessable Content";
  case 426: return "Upgrade Required";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 503: return "Service Unavailable";
  default: return "Unknown";
  }
}

/* Append a string literal without a strlen(). */
#define ADD_LIT(sb, lit) hb_strbuf_add((sb), (lit), sizeof(lit) - 1)

/* Decimal digits of `v`, by hand: vfprintf was the slowest call of a 202
 * (docs/performance.md, W3). */
static void add_uint(hb_strbuf *sb, size_t v) { hb_strbuf_add_uint(sb, v); }

/* The head of every response, in one buffer sized for it and the body
 * (`body_room`), so that appending the body does not reallocate. */
static void respond_head(hb_strbuf *sb, int status, const char *ctype, const char *extra, const char *more,
                         size_t len, bool close, size_t body_room) {
  const char *reason = hb_http_reason(status);
  size_t rlen = strlen(reason);
  size_t clen = ctype ? strlen(ctype) : 0;
  size_t xlen = extra ? strlen(extra) : 0;
  size_t mlen = more ? strlen(more) : 0;
  /* the fixed text of the lines below is under 128 bytes */
  hb_strbuf_grow(sb, 128 + rlen + clen + xlen + mlen + body_room);
  ADD_LIT(sb, "HTTP/1.1 ");
  add_uint(sb, (size_t)(status < 0 ? 0 : status));
  hb_strbuf_addch(sb, ' ');
  hb_strbuf_add(sb, reason, rlen);
  ADD_LIT(sb, "\r\nServer: hubbub\r\n");
  if (ctype) {
    ADD_LIT(sb, "Content-Type: ");
    hb_strbuf_add(sb, ctype, clen);
    ADD_LIT(sb, "\r\n");
  }
  ADD_LIT(sb, "Content-Length: ");
  add_uint(sb, len);
  ADD_LIT(sb, "\r\n");
  if (extra) hb_strbuf_add(sb, extra, xlen);
  if (more) hb_strbuf_add(sb, more, mlen);
  if (close) ADD_LIT(sb, "Connection: close\r\n");
  ADD_LIT(sb, "\r\n");
}

static bool must_close(hb_conn *c, bool close) {
  hb_http_req *r = hconn(c)->req;
  return close || (r && !r->keep_alive) || c->io->stopping;
}

/* --- what a response tells the operator ------------------------------------ */

/* The request's path without its query (which may hold a token) for a log
 * line, at most HB_LOG_PATH_BYTES of it. */
static void log_path(hb_log_line *l, const hb_http_req *r) {
  size_t n = strcspn(r->url, "?#");
  hb_log_strn(l, "path", r->url, n < HB_LOG_PATH_BYTES ? n : HB_LOG_PATH_BYTES);
}

void hb_http_note_response(hb_conn *c, int status, size_t bytes) {
  hb_http_req *r = hconn(c)->req;
  if (!r || !r->started_ns) return; /* refused at accept: no request */
  uint64_t ns = uv_hrtime() - r->started_ns;
  hb_metric_observe_ns(HB_H_HTTP_REQUEST_DURATION, ns);
  if (!c->io->set->cfg->access_log) return;
  /* Asked for on its own, whatever log_level says. */
  hb_log_line l;
  char peer[HB_PEER_NAME_BYTES];
  hb_conn_peer_name(c, peer);
  hb_log_begin_always(&l, HB_LOG_INFO, "access");
  hb_log_str(&l, "method", http_method_str(r->method));
  log_path(&l, r);
  hb_log_int(&l, "status", status);
  hb_log_int(&l, "bytes", (long long)bytes);
  hb_log_int(&l, "duration_us", (long long)(ns / 1000));
  hb_log_str(&l, "peer", peer);
  hb_log_end(&l);
}

/* One limiter per code and transport: a flood of one kind of bad request
 * costs a line a second, another kind still gets its own. */
static hb_log_limit error_limits[HB_TRANSPORT__COUNT][HB_E__COUNT];

void hb_http_note_error(hb_conn *c, const hb_error *e, unsigned close_code) {
  hb_http_req *r = hconn(c)->req;
  hb_transport t = r && r->transport == HB_TRANSPORT_WS ? HB_TRANSPORT_WS : HB_TRANSPORT_HTTP;
  int status = hb_err_http_status(e->err);
  hb_metric_error(e->err);
  /* Every refusal of a WebSocket handshake turns a connection away, whatever its code. */
  bool refusal = hb_err_is_refusal(e->err) || (t == HB_TRANSPORT_WS && r && !r->failed);
  if (refusal) hb_metric_refusal(e->err, t);
  hb_log_level lvl = refusal ? HB_LOG_WARN : status >= 500 ? HB_LOG_ERROR : HB_LOG_DEBUG;
  unsigned long dropped = 0;
  if (!hb_log_enabled(lvl) || (unsigned)e->err >= HB_E__COUNT || !hb_log_limit_take(&error_limits[t][e->err], &dropped))
    return;
  hb_log_line l;
  char peer[HB_PEER_NAME_BYTES];
  hb_conn_peer_name(c, peer);
  hb_log_begin(&l, lvl, refusal ? "refused" : "request failed");
  hb_log_str(&l, "transport", t == HB_TRANSPORT_WS ? "ws" : "http");
  if (r && r->headers_done) {
    hb_log_str(&l, "method", http_method_str(r->method));
    log_path(&l, r);
  }
  hb_log_int(&l, "status", close_code ? 101 : status);
  if (close_code) hb_log_int(&l, "close", close_code);
  hb_log_str(&l, "code", hb_err_code(e->err));
  hb_log_strn(&l, "message", e->message, strnlen(e->message, sizeof e->message));
  hb_log_str(&l, "peer", peer);
  if (r && r->log_cred_id_set) {
    char id[3 + HB_UUID_STR_BYTES] = "id:";
    hb_uuid_format(&r->log_cred_id, id + 3);
    hb_log_str(&l, "token", id);
  } else if (r && r->log_cred[0]) {
    hb_log_str(&l, "token", r->log_cred);
  }
  if (dropped) hb_log_int(&l, "suppressed", (long long)dropped);
  hb_log_end(&l);
}

void hb_http_respond(hb_conn *c, int status, const char *ctype, const char *extra, const char *body,
                     size_t len, bool close) {
  close = must_close(c, close);
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_http_req *r = hconn(c)->req;
  bool head = r && r->method == HTTP_HEAD;
  respond_head(&sb, status, ctype, extra, r ? r->resp_headers : NULL, len, close, body && !head ? len : 0);
  size_t head_len = sb.len;
  if (body && !head) hb_strbuf_add(&sb, body, len);
  size_t n;
  char *p = hb_strbuf_release(&sb, &n);
  hb_conn_send_owned(c, p, n);
  if (status >= 400) hb_metric_inc(HB_M_HTTP_ERRORS);
  /* The body of a static file is queued by the caller, after this. */
  hb_http_note_response(c, status, head_len + (head ? 0 : len));
  if (!close) return;
  if (hconn(c)->req) {
    /* Bytes of the request (its body, more requests) may still be coming:
     * an early answer must not turn into a reset before the client, which
     * may write its whole body before reading, has read it (limits.h). */
    hb_conn_close_linger(c, HB_HTTP_LINGER_MS, HB_HTTP_LINGER_MAX_BYTES);
  } else {
    /* No request read (a refusal at the connection limit, an idle
     * connection at shutdown): close once written, never linger. */
    hb_conn_close(c, true);
  }
}

void hb_http_respond_error(hb_conn *c, const hb_error *e, const char *extra, bool close) {
  hb_http_note_error(c, e, 0);
  hb_strbuf body = HB_STRBUF_INIT;
  hb_http_error_body(&body, e);
  hb_http_respond(c, hb_err_http_status(e->err), "application/json", extra, body.buf, body.len, close);
  hb_strbuf_free(&body);
}

/* --- request parsing ----------------------------------------------------- */

static void fail(hb_conn *c, hb_err err, const char *msg) {
  hb_http_req *r = hconn(c)->req;
  if (r->failed) return;
  r->failed = true;
  hb_error e;
  hb_error_set(&e, err, NULL, "%s", msg);
  hb_http_respond_error(c, &e, NULL, true);
}

/* RFC 9110 5.6.2: header names are tokens. A space before the colon or any
 * other separator makes the request malformed (http-parser lets it pass). */
static bool is_tchar(unsigned char ch) {
  return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int finish_header(hb_conn *c) {
  hb_http_req *r = hconn(c)->req;
  if (!r->in_value && r->field_len == 0) return 0;
  if (++r->nheaders > HB_MAX_HEADERS) {
    fail(c, HB_E_HEADERS_TOO_LARGE, "too many header fields");
    return -1;
  }
  if (!r->field_long) {
    for (int i = 0; i < HB__H_COUNT; i++) {
      if (strlen(hdr_names[i]) != r->field_len || strncasecmp(hdr_names[i], r->field, r->field_len)) continue;
      if (r->hdr[i] && i == HB_H_WS_PROTOCOL) {
        /* A list header given twice is the same list (RFC 9110 5.3). */
        size_t old = r->hdr_len[i], n = r->value.len;
        if (old + 2 + n > HB_MAX_WS_PROTOCOL_VALUE_BYTES) {
          fail(c, HB_E_HEADERS_TOO_LARGE, "a header value is over the size limit");
          return -1;
        }
        char *joined = hb_malloc(old + 2 + n + 1);
        memcpy(joined, r->hdr[i], old);
        memcpy(joined + old, ", ", 2);
        memcpy(joined + old + 2, r->value.buf ? r->value.buf : "", n);
        joined[old + 2 + n] = '\0';
        hb_free(r->hdr[i]);
        r->hdr[i] = joined;
        r->hdr_len[i] = old + 2 + n;
        break;
      }
      if (r->hdr[i]) {
        char msg[96];
        snprintf(msg, sizeof msg, "duplicate %s header", hdr_names[i]);
        fail(c, HB_E_BAD_REQUEST, msg);
        return -1;
      }
      /* Trim optional whitespace (RFC 9110 5.5). */
      const char *v = r->value.buf ? r->value.buf : "";
      size_t n = r->value.len;
      while (n && (*v == ' ' || *v == '\t')) v++, n--;
      while (n && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
      r->hdr[i] = hb_strndup(v, n);
      r->hdr_len[i] = n;
      break;
    }
  }
  r->field_len = 0;
  r->name_bytes = 0;
  r->field_long = false;
  r->in_value = false;
  hb_strbuf_reset(&r->value);
  return 0;
}

static int count_bytes(hb_conn *c, size_t n) {
  hb_http_req *r = hconn(c)->req;
  r->header_bytes += n;
  if (r->header_bytes > HB_MAX_HEADER_BYTES) {
    fail(c, HB_E_HEADERS_TOO_LARGE, "request headers are over the size limit");
    return -1;
  }
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t n) {
  hb_conn *c = p->data;
  hb_http_req *r = hconn(c)->req;
  if (r->url_len + n > HB_MAX_URL_BYTES) {
    fail(c, HB_E_URI_TOO_LONG, "the request target is over the size limit");
    return -1;
  }
  memcpy(r->url + r->url_len, at, n);
  r->url_len += n;
  r->url[r->url_len] = '\0';
  return count_bytes(c, n);
}

static int on_header_field(http_parser *p, const char *at, size_t n) {
  hb_conn *c = p->data;
  hb_http_req *r = hconn(c)->req;
  if (r->in_value && finish_header(c) != 0) return -1;
  if (count_bytes(c, n) != 0) return -1;
  r->name_bytes += n; /* a name may come in pieces (split reads) */
  if (r->name_bytes > HB_MAX_HEADER_NAME_BYTES) {
    fail(c, HB_E_HEADERS_TOO_LARGE, "a header name is over the size limit");
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    if (!is_tchar((unsigned char)at[i])) {
      fail(c, HB_E_BAD_REQUEST, "invalid character in a header name");
      return -1;
    }
  }
  if (r->field_len + n > HB_HTTP_FIELD_BYTES) {
    r->field_long = true;
  } else {
    memcpy(r->field + r->field_len, at, n);
    r->field_len += n;
  }
  return 0;
}

/* Sec-WebSocket-Protocol may carry a connection token (limits.h): its
 * value has a cap of its own. Decided once per header, by length first. */
static size_t value_cap(const hb_http_req *r) {
  static const char name[] = "sec-websocket-protocol";
  bool is = !r->field_long && r->field_len == sizeof name - 1 && !strncasecmp(r->field, name, sizeof name - 1);
  return is ? HB_MAX_WS_PROTOCOL_VALUE_BYTES : HB_MAX_HEADER_VALUE_BYTES;
}

static int on_header_value(http_parser *p, const char *at, size_t n) {
  hb_conn *c = p->data;
  hb_http_req *r = hconn(c)->req;
  if (!r->in_value) r->value_cap = value_cap(r);
  r->in_value = true;
  if (count_bytes(c, n) != 0) return -1;
  if (r->value.len + n > r->value_cap) {
    fail(c, HB_E_HEADERS_TOO_LARGE, "a header value is over the size limit");
    return -1;
  }
  hb_strbuf_add(&r->value, at, n);
  return 0;
}

static int on_headers_complete(http_parser *p) {
  hb_conn *c = p->data;
  hb_http_req *r = hconn(c)->req;
  if (r->in_value && finish_header(c) != 0) return -1;
  if (p->http_major != 1 || p->http_minor > 1) {
    fail(c, HB_E_BAD_REQUEST, "only HTTP/1.0 and HTTP/1.1 are supported");
    return -1;
  }
  if (!r->hdr[HB_H_HOST] && p->http_minor == 1) {
    fail(c, HB_E_BAD_REQUEST, "missing Host header"); /* RFC 9112 3.2 */
    return -1;
  }
  if (r->hdr[HB_H_TRANSFER_ENCODING] && r->hdr[HB_H_CONTENT_LENGTH]) {
    fail(c, HB_E_BAD_REQUEST, "both Content-Length and Transfer-Encoding"); /* smuggling */
    return -1;
  }
  r->method = p->method;
  r->headers_done = true;
  r->upgrade = p->upgrade;
  r->keep_alive = http_should_keep_alive(p);
  if (!router->on_headers(c, r)) {
    r->failed = true;
    return -1;
  }
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t n) {
  hb_conn *c = p->data;
  hb_http_req *r = hconn(c)->req;
  if (r->body.len + n > r->max_body) {
    fail(c, HB_E_PAYLOAD_TOO_LARGE, "the body is over the size limit");
    return -1;
  }
  hb_strbuf_add(&r->body, at, n);
  return 0;
}

static int on_message_complete(http_parser *p) {
  hb_conn *c = p->data;
  hb_http_req *r = hconn(c)->req;
  r->keep_alive = http_should_keep_alive(p);
  hb_metric_inc(HB_M_HTTP_REQUESTS);
  if (!r->failed) router->on_request(c, r);
  /* Stop here so the next pipelined request goes through the line checker. */
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Check header lines before http-parser sees them: CRLF only, no folding.
 * Returns -1 on a violation, 1 with *end just past the blank line, 0 when
 * the headers continue past this chunk. */
static int hscan(hb_conn *c, const char *p, size_t len, size_t *end) {
  uint8_t st = hconn(c)->req->hscan_state;
  for (size_t i = 0; i < len; i++) {
    char ch = p[i];
    switch (st) {
    case HS_FIRST: /* RFC 9112 2.2: ignore empty lines before the request line */
      if (ch == '\r') st = HS_FIRST_CR;
      else if (ch == '\n') return -1;
      else st = HS_LINE;
      break;
    case HS_FIRST_CR:
      if (ch != '\n') return -1;
      st = HS_FIRST;
      break;
    case HS_LINE: {
      /* Most of a head is line content: jump to its CR with memchr; an LF
       * before it is a bare LF. */
      const char *cr = memchr(p + i, '\r', len - i);
      size_t stop = cr ? (size_t)(cr - p) : len;
      if (memchr(p + i, '\n', stop - i)) return -1; /* bare LF */
      if (!cr) {
        i = len - 1; /* the line continues in the next chunk */
        break;
      }
      i = stop; /* at the CR */
      st = HS_CR;
      break;
    }
    case HS_CR:
      if (ch != '\n') return -1;
      st = HS_LINE_START;
      break;
    case HS_LINE_START:
      if (ch == ' ' || ch == '\t') return -1; /* obs-fold (RFC 9112 5.2) */
      if (ch == '\r') st = HS_END_CR;
      else if (ch == '\n') return -1;
      else st = HS_LINE;
      break;
    case HS_END_CR:
      if (ch != '\n') return -1;
      hconn(c)->req->hscan_state = HS_FIRST;
      *end = i + 1;
      return 1;
    }
  }
  hconn(c)->req->hscan_state = st;
  return 0;
}

static void start_request(hb_conn *c) {
  hb_http_req *r = req_get();
  r->max_body = c->io->set->cfg->max_body_bytes;
  hconn(c)->req = r;
  http_parser_init(&r->parser, HTTP_REQUEST);
  r->parser.data = c;
  r->in_headers = true;
  r->started_ns = uv_hrtime();
  r->hscan_state = HS_FIRST;
  /* A started request must complete in bounded time (slowloris). */
  uint64_t dl = hb_io_now_ms(c->io) + HB_HTTP_REQUEST_TIMEOUT_MS;
  if (!c->deadline_ms || dl < c->deadline_ms) c->deadline_ms = dl;
}

void hb_http_on_read(hb_conn *c, const char *buf, size_t len) {
  size_t pos = 0;
  while (pos < len && c->state == HB_CONN_OPEN) {
    if (!hconn(c)->req) start_request(c);
    hb_http_req *r = hconn(c)->req;
    size_t chunk = len - pos;
    if (r->in_headers) {
      size_t end = 0;
      int s = hscan(c, buf + pos, chunk, &end);
      if (s < 0) {
        fail(c, HB_E_BAD_REQUEST, "malformed request line or header (CRLF line endings, no folding)");
        return;
      }
      if (s == 1) {
        chunk = end;
        r->in_headers = false;
      }
    }
    size_t n = http_parser_execute(&r->parser, &settings, buf + pos, chunk);
    if (c->h != &hb_http_conn_handler) {
      /* Upgraded (the handler installed another protocol, which owns the
       * extension area now): the rest of the bytes are that protocol's
       * (kept for it if it paused the connection). */
      req_put(r);
      pos += n;
      if (pos < len) hb_conn_feed(c, buf + pos, len - pos);
      return;
    }
    if (c->state != HB_CONN_OPEN) return; /* an error closed it */
    if (r->failed) return;
    enum http_errno err = HTTP_PARSER_ERRNO(&r->parser);
    if (err == HPE_PAUSED && hconn(c)->deferred) {
      /* Answered later: what follows waits for hb_http_resume. */
      pos += n;
      if (pos < len) hb_conn_keep(c, buf + pos, len - pos);
      return;
    }
    if (err == HPE_PAUSED) {
      /* One request done; the next starts with a fresh parser and checker. */
      http_parser_pause(&r->parser, 0);
      req_put(r);
      hconn(c)->req = NULL;
      c->deadline_ms = hb_io_now_ms(c->io) + HB_HTTP_IDLE_TIMEOUT_MS;
      pos += n;
      continue;
    }
    if (err != HPE_OK) {
      char msg[128];
      snprintf(msg, sizeof msg, "malformed request: %s", http_errno_description(err));
      fail(c, HB_E_BAD_REQUEST, msg);
      return;
    }
    if (r->upgrade && r->headers_done) {
      /* An Upgrade to something we do not speak, after a complete request:
       * http-parser stops here, so answer and close (done in on_message). */
      return;
    }
    pos += n;
  }
}

void hb_http_defer(hb_conn *c) {
  hconn(c)->deferred = true;
  hb_conn_hold(c); /* one per connection at a time: never over the limit */
  hb_conn_pause(c);
}

bool hb_http_deferred_open(hb_conn *c) { return c->state == HB_CONN_OPEN; }

void hb_http_resume(hb_conn *c) {
  if (c->state == HB_CONN_OPEN && hconn(c)->deferred) {
    hconn(c)->deferred = false;
    hb_http_req *r = hconn(c)->req;
    if (r) {
      http_parser_pause(&r->parser, 0);
      req_put(r);
      hconn(c)->req = NULL;
    }
    c->deadline_ms = hb_io_now_ms(c->io) + HB_HTTP_IDLE_TIMEOUT_MS;
    hb_conn_resume(c); /* the pipelined requests, then the socket */
  }
  hb_conn_unhold(c);
}

bool hb_http_list_next(const char *v, size_t len, size_t *pos, const char **elem, size_t *elen) {
  size_t i = *pos;
  while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
  if (i >= len) {
    *pos = len;
    return false;
  }
  size_t s = i;
  while (i < len && v[i] != ',') i++;
  size_t e = i;
  while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
  *elem = v + s;
  *elen = e - s;
  *pos = i;
  return true;
}

bool hb_http_has_token(const char *v, size_t len, const char *token) {
  size_t tl = strlen(token), pos = 0, n;
  const char *e;
  while (hb_http_list_next(v, len, &pos, &e, &n))
    if (n == tl && strncasecmp(e, token, tl) == 0) return true;
  return false;
}

ssize_t hb_http_query_param(const char *url, const char *name, char *out, size_t cap) {
  const char *q = strchr(url, '?');
  size_t nlen = strlen(name);
  if (!q) return 0;
  q++;
  while (*q) {
    const char *end = strchr(q, '&');
    size_t plen = end ? (size_t)(end - q) : strlen(q);
    if (plen > nlen && memcmp(q, name, nlen) == 0 && q[nlen] == '=')
      return hb_pct_decode(q + nlen + 1, plen - nlen - 1, out, cap);
    if (!end) break;
    q = end + 1;
  }
  return 0;
}

void hb_http_error_body(hb_strbuf *sb, const hb_error *e) {
  hb_strbuf_addstr(sb, "{\"error\":{\"code\":\"");
  hb_strbuf_addstr(sb, hb_err_code(e->err));
  hb_strbuf_addstr(sb, "\",\"message\":");
  hb_strbuf_add_json_str(sb, e->message, strnlen(e->message, sizeof e->message));
  size_t plen = strnlen(e->pointer, sizeof e->pointer);
  if (plen == 1 && e->pointer[0] == HB_POINTER_ROOT[0]) {
    hb_strbuf_addstr(sb, ",\"pointer\":\"\"");
  } else if (plen > 0) {
    hb_strbuf_addstr(sb, ",\"pointer\":");
    hb_strbuf_add_json_str(sb, e->pointer, plen);
  }
  hb_strbuf_addstr(sb, "}}");
}

/* --- the connection handler ----------------------------------------------- */

static void http_open(hb_conn *c, const hb_error *refusal) {
  hconn(c)->req = NULL;
  c->deadline_ms = hb_io_now_ms(c->io) + (uint64_t)c->io->set->cfg->handshake_timeout_ms;
  /* Over a connection limit: an HTTP answer the client can read, then close. */
  if (refusal) hb_http_respond_error(c, refusal, "Retry-After: 5\r\n", true);
}

/* Handshake, request (slowloris) or keep-alive idle deadline. A request
 * that started (some of its bytes arrived) and did not complete gets a 408
 * (RFC 9110 15.5.9) and a lingering close; a connection that never started
 * one (new, or idle between keep-alive requests) is closed without a word,
 * as every server does: there is no request to answer. */
static void http_sweep(hb_conn *c, uint64_t now) {
  if (!c->deadline_ms || now < c->deadline_ms) return;
  /* A request answered later (hb_http_defer) arrived whole: what it waits
   * for answers it within its own bound (the broker's timeouts), and a 408
   * would tell the client it was not taken when it may have been. */
  if (hconn(c)->deferred) return;
  hb_http_req *r = hconn(c)->req;
  if (r && !r->failed) {
    fail(c, HB_E_REQUEST_TIMEOUT, "the request did not complete in time");
  } else if (!hb_conn_input_waiting(c)) {
    hb_conn_close(c, false);
  }
  /* else: a request arrived while the thread was held up and is read in
   * this loop turn; it starts against the deadline that passed, so if it
   * is not complete the next sweep answers 408. */
}

/* HTTP responses are owned chunks: they never trip the fan-out limit. */
static void http_overflow(hb_conn *c) { hb_conn_close(c, false); }

/* Idle keep-alive connections close; a request in flight finishes and its
 * response says Connection: close (must_close). */
static void http_shutdown(hb_conn *c) {
  if (!hconn(c)->req) hb_conn_close(c, true);
}

static void http_close(hb_conn *c) {
  hb_http_req_free(hconn(c)->req);
  hconn(c)->req = NULL;
}

const hb_conn_handler hb_http_conn_handler = {
    .on_open = http_open,
    .on_read = hb_http_on_read,
    .on_sweep = http_sweep,
    .on_overflow = http_overflow,
    .on_shutdown = http_shutdown,
    .on_close = http_close,
};
