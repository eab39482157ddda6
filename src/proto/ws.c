/* ws.c - the RFC 6455 upgrade, the wslay glue, the server's frames (ws.h). */
#include "hubbub/ws.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define HB_WS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HB_WS_ASAN 1
#endif
#endif
#ifdef HB_WS_ASAN
#include <sanitizer/asan_interface.h>
#define WS_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define WS_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define WS_POISON(p, n) ((void)0)
#define WS_UNPOISON(p, n) ((void)0)
#endif

#include "hubbub/alloc.h"
#include "hubbub/io.h"
#include "hubbub/limits.h"
#include "hubbub/log.h"
#include "hubbub/metrics.h"
#include "hubbub/utf8.h"

/* RFC 6455 4.2.2: the GUID appended to the key before hashing. */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_KEY_B64_BYTES 24 /* base64 of the 16-byte nonce */

static const hb_ws_handler *upper;

void hb_ws_init(const hb_ws_handler *h) { upper = h; }

static const hb_config *cfg_of(hb_ws *ws) { return hb_ws_conn(ws)->io->set->cfg; }

/* --- the server's frames -------------------------------------------------- */

size_t hb_ws_frame_header(uint8_t *out, uint8_t opcode, uint64_t len) {
  out[0] = (uint8_t)(0x80 | opcode); /* FIN, no RSV bits */
  if (len < 126) {
    out[1] = (uint8_t)len; /* server frames are never masked (RFC 6455 5.1) */
    return 2;
  }
  if (len <= 0xffff) {
    out[1] = 126;
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    return 4;
  }
  out[1] = 127;
  for (int i = 0; i < 8; i++) out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
  return 10;
}

void hb_ws_frame(hb_strbuf *sb, uint8_t opcode, const void *payload, size_t len) {
  uint8_t hdr[10];
  size_t hlen = hb_ws_frame_header(hdr, opcode, len);
  hb_strbuf_grow(sb, hlen + len);
  hb_strbuf_add(sb, hdr, hlen);
  if (len) hb_strbuf_add(sb, payload, len);
}

/* Room reserved before a payload whose length is not known yet: the header
 * of a payload of 126 to 65,535 bytes (a welcome, an error); others move. */
#define FRAME_GAP 4

size_t hb_ws_frame_begin(hb_strbuf *sb) {
  size_t mark = sb->len;
  hb_strbuf_add(sb, "\0\0\0\0", FRAME_GAP);
  return mark;
}

void hb_ws_frame_end(hb_strbuf *sb, size_t mark, uint8_t opcode) {
  size_t len = sb->len - mark - FRAME_GAP;
  uint8_t hdr[10];
  size_t hlen = hb_ws_frame_header(hdr, opcode, len);
  if (hlen != FRAME_GAP) {
    hb_strbuf_grow(sb, hlen);
    memmove(sb->buf + mark + hlen, sb->buf + mark + FRAME_GAP, len);
    sb->len = mark + hlen + len;
    sb->buf[sb->len] = '\0';
  }
  memcpy(sb->buf + mark, hdr, hlen);
}

static void send_frame(hb_ws *ws, uint8_t opcode, const void *payload, size_t len) {
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_ws_frame(&sb, opcode, payload, len);
  size_t n;
  char *p = hb_strbuf_release(&sb, &n);
  hb_conn_send_owned(hb_ws_conn(ws), p, n);
}

void hb_ws_send_text(hb_ws *ws, const char *json, size_t len) { send_frame(ws, HB_WS_OP_TEXT, json, len); }

void hb_ws_send_binary(hb_ws *ws, const void *p, size_t len) { send_frame(ws, HB_WS_OP_BINARY, p, len); }

/* --- closes the server initiates: counted, and logged at a level that says
 * whether an operator should look (docs/operations.md, "Logs") ------------ */

static hb_log_level close_level(unsigned code) {
  switch (code) {
  case HB_CLOSE_SLOW_CONSUMER:
  case HB_CLOSE_RATE_LIMITED: return HB_LOG_WARN;
  case HB_CLOSE_INTERNAL_ERROR: return HB_LOG_ERROR;
  case HB_CLOSE_IDLE_TIMEOUT:
  case HB_CLOSE_UNAUTHORIZED:
  case HB_CLOSE_PROTOCOL_ERROR:
  case HB_CLOSE_UNSUPPORTED_DATA:
  case HB_CLOSE_INVALID_PAYLOAD:
  case HB_CLOSE_MESSAGE_TOO_BIG: return HB_LOG_INFO;
  default: return HB_LOG_DEBUG; /* 1000, 1001 at shutdown, the codes of in-band refusals */
  }
}

/* One limiter per close code: 1000-1015, 4000-4015, 4400-4431, the rest. */
#define CLOSE_LIMITS 65
static hb_log_limit close_limits[CLOSE_LIMITS];

static hb_log_limit *close_limit(unsigned code) {
  if (code >= 1000 && code < 1016) return &close_limits[code - 1000];
  if (code >= 4000 && code < 4016) return &close_limits[16 + code - 4000];
  if (code >= 4400 && code < 4432) return &close_limits[32 + code - 4400];
  return &close_limits[CLOSE_LIMITS - 1];
}

static void note_close(hb_conn *c, unsigned code, const char *reason, size_t rlen) {
  hb_metric_ws_close(code);
  hb_log_level lvl = close_level(code);
  unsigned long dropped = 0;
  if (!hb_log_enabled(lvl) || !hb_log_limit_take(close_limit(code), &dropped)) return;
  hb_log_line l;
  char peer[HB_PEER_NAME_BYTES];
  hb_conn_peer_name(c, peer);
  hb_log_begin(&l, lvl, "websocket closed");
  hb_log_int(&l, "code", code);
  hb_log_strn(&l, "reason", reason, rlen);
  hb_log_str(&l, "peer", peer);
  if (code == HB_CLOSE_SLOW_CONSUMER) hb_log_int(&l, "queued_bytes", (long long)c->out_bytes);
  if (dropped) hb_log_int(&l, "suppressed", (long long)dropped);
  hb_log_end(&l);
}

static void ws_close(hb_ws *ws, hb_close_code code, const char *reason, bool drop_pending, bool log) {
  hb_conn *c = hb_ws_conn(ws);
  if (c->state != HB_CONN_OPEN || ws->closing) return;
  size_t rlen = reason ? strlen(reason) : 0;
  if (rlen > HB_MAX_CLOSE_REASON_BYTES) rlen = HB_MAX_CLOSE_REASON_BYTES;
  if (log) note_close(c, code, reason ? reason : "", rlen);
  else hb_metric_ws_close(code);
  if (drop_pending) hb_conn_drop_pending(c);
  uint8_t body[2 + HB_MAX_CLOSE_REASON_BYTES];
  body[0] = (uint8_t)(code >> 8);
  body[1] = (uint8_t)code;
  if (rlen) memcpy(body + 2, reason, rlen);
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_ws_frame(&sb, HB_WS_OP_CLOSE, body, 2 + rlen);
  size_t n;
  char *p = hb_strbuf_release(&sb, &n);
  hb_conn_send_owned(c, p, n);
  ws->closing = true;
  if (ws->ctx) wslay_event_shutdown_write(ws->ctx); /* it must not send a second close */
  hb_conn_close_linger(c, HB_WS_CLOSE_TIMEOUT_MS, HB_WS_CLOSE_MAX_BYTES);
}

void hb_ws_close(hb_ws *ws, hb_close_code code, const char *reason, bool drop_pending) {
  ws_close(ws, code, reason, drop_pending, true);
}

void hb_ws_refuse(hb_ws *ws, hb_close_code code, const char *reason) { ws_close(ws, code, reason, false, false); }

/* --- wslay callbacks ----------------------------------------------------- */

/* The bytes wslay's recv callback pulls from: set around wslay_event_recv()
 * on this thread, empty otherwise. */
static _Thread_local const char *ws_in;
static _Thread_local size_t ws_in_len;

static ssize_t ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud) {
  if (ws_in_len == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  size_t n = len < ws_in_len ? len : ws_in_len;
  memcpy(buf, ws_in, n);
  ws_in += n;
  ws_in_len -= n;
  return (ssize_t)n;
}

/* wslay's own frames: pongs and the close reply. Copied into the queue
 * whole, so they never interleave with the server's frames. */
static ssize_t ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *ud) {
  hb_conn *c = hb_ws_conn(ud);
  if (c->state == HB_CONN_OPEN) hb_conn_send_copy(c, data, len);
  return (ssize_t)len;
}

static void ws_on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                      void *ud) {
  hb_ws *ws = ud;
  if (hb_ws_conn(ws)->state != HB_CONN_OPEN || ws->closing) return;
  switch (arg->opcode) {
  case WSLAY_TEXT_FRAME: upper->on_text(ws, (const char *)arg->msg, arg->msg_length); break;
  case WSLAY_BINARY_FRAME:
    if (upper->on_binary) {
      upper->on_binary(ws, arg->msg, arg->msg_length);
      break;
    }
    wslay_event_shutdown_read(ctx);
    hb_ws_close(ws, HB_CLOSE_UNSUPPORTED_DATA, "binary messages are not supported", false);
    break;
  case WSLAY_PING:
    /* wslay queued the pong; write it out now, so that it goes before the
     * answers to messages that complete later in this same read (a ping
     * between the fragments of a message is answered first, RFC 6455 5.4). */
    wslay_event_send(ctx);
    break;
  default: break; /* close: wslay queued the reply; pong: nothing */
  }
}

static const struct wslay_event_callbacks ws_callbacks = {
    .recv_callback = ws_recv,
    .send_callback = ws_send,
    .on_msg_recv_callback = ws_on_msg,
};

/* Follow frame boundaries (RFC 6455 5.2) without interpreting anything
 * else: wslay does the checking. This tells when no frame and no
 * fragmented message is partly received, and refuses from a frame's header
 * what wslay would only notice late or never: a data frame longer than a
 * message may be (1009), a message of more than max_frames frames (1008). */
static uint16_t track_frames(hb_ws *ws, uint64_t max, uint32_t max_frames, const uint8_t *p, size_t len,
                             const char **why) {
  uint16_t bad = 0; /* a close code when a frame header alone is a violation */
  while (len > 0) {
    if (ws->ft_left > 0) {
      size_t n = len < ws->ft_left ? len : (size_t)ws->ft_left;
      ws->ft_left -= n;
      p += n;
      len -= n;
      continue;
    }
    ws->ft_hdr[ws->ft_hlen++] = *p++;
    len--;
    if (ws->ft_hlen < 2) continue;
    uint8_t len7 = ws->ft_hdr[1] & 0x7f;
    size_t need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((ws->ft_hdr[1] & 0x80) ? 4 : 0);
    if (ws->ft_hlen < need) continue;
    uint64_t plen = len7;
    if (len7 == 126) plen = (uint64_t)ws->ft_hdr[2] << 8 | ws->ft_hdr[3];
    if (len7 == 127) {
      plen = 0;
      for (int i = 0; i < 8; i++) plen = plen << 8 | ws->ft_hdr[2 + i];
    }
    bool fin = ws->ft_hdr[0] & 0x80;
    uint8_t op = ws->ft_hdr[0] & 0x0f;
    if ((op == 0x1 || op == 0x2) && !fin) {
      ws->ft_frag = true;
      ws->ft_frames = 1;
    }
    /* Empty continuation frames cost the sender 6 bytes each and would keep
     * a message open for ever: they are counted (a continuation without a
     * start is wslay's 1002). */
    bool too_many = op == 0x0 && ws->ft_frag && ++ws->ft_frames > max_frames;
    if (op == 0x0 && fin) ws->ft_frag = false;
    /* RFC 6455 5.5.1: a close body is empty or at least a 2-byte code;
     * wslay would read one byte as "no code" and echo 1005. */
    if (op == 0x8 && plen == 1) bad = 1002, *why = "close frame with a 1-byte payload";
    /* A data frame that announces more than a message may hold is refused
     * from its header, not after the client trickles its first byte. */
    if (len7 == 127 && (plen >> 63)) bad = 1002, *why = "frame length with the high bit set"; /* RFC 6455 5.2 */
    else if (op <= 0x2 && plen > max) bad = 1009, *why = "message too big";
    else if (plen > max) bad = 1002, *why = "control or reserved frame too long"; /* RFC 6455 5.2, 5.5 */
    else if (too_many) bad = 1008, *why = "too many fragments in one message";
    ws->ft_hlen = 0;
    /* The connection closes: what follows is not looked at. So a tracked
     * frame is never longer than max_message_bytes and fits in 32 bits. */
    if (bad) return bad;
    ws->ft_left = (uint32_t)plen;
  }
  return 0;
}

size_t hb_ws_direct_text(const uint8_t *p, size_t len, size_t max_message_bytes, uint8_t *out) {
  /* FIN, no reserved bits, opcode text; masked, as client frames must be. */
  if (len < 6 || p[0] != 0x81 || !(p[1] & 0x80)) return SIZE_MAX;
  size_t plen = p[1] & 0x7f, h = 2;
  if (plen == 127) return SIZE_MAX;
  if (plen == 126) {
    plen = (size_t)p[2] << 8 | p[3];
    if (plen < 126) return SIZE_MAX; /* not minimally encoded: wslay says 1002 */
    h = 4;
  }
  /* An empty message is left to wslay too: it hands it over as NULL, which
   * the decoder words differently from an empty buffer. */
  if (len != h + 4 + plen || plen == 0 || plen > max_message_bytes || plen > HB_WS_DIRECT_MAX_BYTES)
    return SIZE_MAX;
  const uint8_t *mask = p + h, *src = p + h + 4;
  for (size_t i = 0; i < plen; i++) out[i] = src[i] ^ mask[i & 3];
  return hb_utf8_valid(out, plen) ? plen : SIZE_MAX;
}


static bool ws_ctx_new(hb_ws *ws) {
  if (wslay_event_context_server_init(&ws->ctx, &ws_callbacks, ws) != 0) {
    ws->ctx = NULL;
    return false;
  }
  /* wslay's default is 2 GiB (DESIGN.md): always cap it. */
  wslay_event_config_set_max_recv_msg_length(ws->ctx, cfg_of(ws)->max_message_bytes);
  return true;
}

static void ws_read(hb_conn *c, const char *buf, size_t len) {
  hb_ws *ws = hb_ws_of(c);
  if (ws->closing) return;
  /* Activity means a new frame starting: bytes that only continue a frame
   * do not extend the deadline, so a frame trickled byte by byte is cut
   * off at the idle timeout (the WebSocket form of slowloris). */
  if (!ws->ft_left && !ws->ft_hlen && !ws->ft_frag) {
    c->deadline_ms = hb_io_now_ms(c->io) + (uint64_t)c->io->set->cfg->idle_timeout_ms;
    ws->pinged = false;
  }
  size_t max = c->io->set->cfg->max_message_bytes;
  if (!ws->ctx && !ws->ft_left && !ws->ft_hlen && !ws->ft_frag) {
    /* Between messages, a read that is exactly one small text message (a
     * subscribe, a publish) is handed up without wslay: setting up a
     * context (two 4 KiB buffers) to free it again right after cost more
     * than the rest of the message's handling. */
    uint8_t msg[HB_WS_DIRECT_MAX_BYTES];
    size_t n = hb_ws_direct_text((const uint8_t *)buf, len, max, msg);
    if (n != SIZE_MAX) {
      /* wslay's copy is a heap block of exactly n bytes: poison the rest of
       * this one so that the sanitizer build still catches a read past the
       * message (no-ops otherwise). */
      WS_POISON(msg + n, sizeof msg - n);
      upper->on_text(ws, (const char *)msg, n);
      WS_UNPOISON(msg + n, sizeof msg - n);
      return;
    }
  }
  if (!ws->ctx && !ws_ctx_new(ws)) {
    hb_ws_close(ws, HB_CLOSE_INTERNAL_ERROR, "internal error", false);
    return;
  }
  const char *why = NULL;
  uint32_t max_frames = (uint32_t)c->io->set->cfg->max_message_fragments;
  uint16_t bad = track_frames(ws, max, max_frames, (const uint8_t *)buf, len, &why);
  if (bad) {
    hb_ws_close(ws, (hb_close_code)bad, why, false);
    return;
  }
  ws_in = buf;
  ws_in_len = len;
  int r = wslay_event_recv(ws->ctx);
  ws_in = NULL;
  ws_in_len = 0;
  if (c->state != HB_CONN_OPEN || ws->closing) return; /* a handler closed it */
  if (r == WSLAY_ERR_CALLBACK_FAILURE) {
    /* Our recv callback never fails, so this is a frame-level violation
     * (fragmented or oversized control frame, bad length): wslay would send
     * a close without a code; RFC 6455 7.4.1 says 1002. */
    hb_ws_close(ws, HB_CLOSE_PROTOCOL_ERROR, "protocol error", false);
    return;
  }
  if (r != 0) {
    hb_ws_close(ws, HB_CLOSE_INTERNAL_ERROR, "internal error", false);
    return;
  }
  wslay_event_send(ws->ctx);
  if (wslay_event_get_close_sent(ws->ctx)) {
    /* wslay answered a close, or closed for a violation it found (1002 for
     * reserved bits, opcodes, masking; 1007 UTF-8; 1009 size). */
    if (!wslay_event_get_close_received(ws->ctx)) {
      static const char violation[] = "protocol violation";
      note_close(c, wslay_event_get_status_code_sent(ws->ctx), violation, sizeof violation - 1);
    }
    ws->closing = true;
    hb_conn_close_linger(c, HB_WS_CLOSE_TIMEOUT_MS, HB_WS_CLOSE_MAX_BYTES);
    return;
  }
  if (ws->ft_left == 0 && ws->ft_hlen == 0 && !ws->ft_frag && !wslay_event_want_write(ws->ctx)) {
    /* Between messages wslay holds nothing we need: give its buffers back so
     * an idle subscriber costs a few hundred bytes, not ~8 KiB. */
    wslay_event_context_free(ws->ctx);
    ws->ctx = NULL;
  }
}

/* --- the connection handler ----------------------------------------------- */

static void ws_conn_open(hb_conn *c, const hb_error *refusal) {
  (void)refusal; /* never the handler of a new connection */
  hb_conn_close(c, false);
}

static void ws_sweep(hb_conn *c, uint64_t now) {
  hb_ws *ws = hb_ws_of(c);
  const hb_config *cfg = c->io->set->cfg;
  if (hb_conn_overdue(c, now)) {
    hb_metric_inc(HB_M_SLOW_CONSUMERS_CLOSED);
    hb_ws_close(ws, HB_CLOSE_SLOW_CONSUMER, "slow consumer: output buffer full", true);
    return;
  }
  upper->on_sweep(ws, now);
  if (c->state != HB_CONN_OPEN || ws->closing) return;
  if (c->deadline_ms && now >= c->deadline_ms) {
    hb_ws_close(ws, HB_CLOSE_IDLE_TIMEOUT, "idle timeout", false);
  } else if (cfg->ping_interval_ms > 0 && !ws->pinged &&
             now + (uint64_t)cfg->idle_timeout_ms >= c->deadline_ms + (uint64_t)cfg->ping_interval_ms) {
    /* Quiet for ping_interval_ms: ask for a pong (browsers answer on their
     * own), which counts as activity and moves the idle deadline. */
    static const char ping[2] = {(char)(0x80 | HB_WS_OP_PING), 0x00};
    hb_conn_send_static(c, ping, sizeof ping);
    ws->pinged = true;
  }
}

static void ws_overflow(hb_conn *c) {
  hb_metric_inc(HB_M_SLOW_CONSUMERS_CLOSED);
  hb_ws_close(hb_ws_of(c), HB_CLOSE_SLOW_CONSUMER, "slow consumer: output buffer full", true);
}

static void ws_shutdown(hb_conn *c) {
  hb_ws_close(hb_ws_of(c), HB_CLOSE_GOING_AWAY, "server shutting down", false);
}

static void ws_conn_close(hb_conn *c) {
  hb_ws *ws = hb_ws_of(c);
  upper->on_close(ws);
  if (ws->ctx) wslay_event_context_free(ws->ctx);
  ws->ctx = NULL;
  hb_metric_add(HB_M_WEBSOCKETS_OPEN, -1);
}

const hb_conn_handler hb_ws_conn_handler = {
    .on_open = ws_conn_open,
    .on_read = ws_read,
    .on_sweep = ws_sweep,
    .on_overflow = ws_overflow,
    .on_shutdown = ws_shutdown,
    .on_close = ws_conn_close,
};

/* --- the upgrade ----------------------------------------------------------- */

/* SHA1() looks the algorithm up by name on every call; fetched once (and
 * kept for the life of the process) the digest of the key costs half. */
static EVP_MD *sha1_md;
static pthread_once_t sha1_once = PTHREAD_ONCE_INIT;
static void sha1_fetch(void) { sha1_md = EVP_MD_fetch(NULL, "SHA1", NULL); }

static bool valid_ws_key(const char *k, size_t len) {
  if (len != WS_KEY_B64_BYTES || k[22] != '=' || k[23] != '=') return false;
  for (size_t i = 0; i < 22; i++) {
    char ch = k[i];
    if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
          ch == '+' || ch == '/'))
      return false;
  }
  return true;
}


hb_err hb_ws_check_upgrade(const hb_http_req *r, hb_error *err) {
  const char *up = r->hdr[HB_H_UPGRADE], *conn = r->hdr[HB_H_CONNECTION];
  if (!r->upgrade || !up || !hb_http_has_token(up, r->hdr_len[HB_H_UPGRADE], "websocket") || !conn ||
      !hb_http_has_token(conn, r->hdr_len[HB_H_CONNECTION], "upgrade"))
    return hb_error_set(err, HB_E_BAD_REQUEST, NULL, "expected a WebSocket upgrade (Upgrade: websocket)");
  const char *ver = r->hdr[HB_H_WS_VERSION];
  if (!ver || strcmp(ver, "13") != 0) return hb_error_set(err, HB_E_UPGRADE_REQUIRED, NULL, NULL);
  const char *key = r->hdr[HB_H_WS_KEY];
  if (!key || !valid_ws_key(key, r->hdr_len[HB_H_WS_KEY]))
    return hb_error_set(err, HB_E_BAD_REQUEST, NULL, "missing or malformed Sec-WebSocket-Key");
  return HB_OK;
}

const char *hb_ws_version_header(void) { return "Sec-WebSocket-Version: 13\r\n"; }

void hb_ws_accept(const hb_http_req *r, const char *subprotocol, hb_strbuf *out) {
  /* Sec-WebSocket-Accept = base64(SHA-1(key + GUID)) (RFC 6455 4.2.2). */
  char src[WS_KEY_B64_BYTES + sizeof WS_GUID];
  memcpy(src, r->hdr[HB_H_WS_KEY], WS_KEY_B64_BYTES);
  memcpy(src + WS_KEY_B64_BYTES, WS_GUID, sizeof WS_GUID - 1);
  unsigned char sha[SHA_DIGEST_LENGTH];
  pthread_once(&sha1_once, sha1_fetch);
  if (!sha1_md || !EVP_Digest(src, WS_KEY_B64_BYTES + sizeof WS_GUID - 1, sha, NULL, sha1_md, NULL))
    SHA1((const unsigned char *)src, WS_KEY_B64_BYTES + sizeof WS_GUID - 1, sha);
  char accept[32];
  int alen = EVP_EncodeBlock((unsigned char *)accept, sha, SHA_DIGEST_LENGTH);
  /* Built without printf: this runs once per connection. */
  static const char head[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\nSec-WebSocket-Accept: ";
  hb_strbuf_add(out, head, sizeof head - 1);
  hb_strbuf_add(out, accept, (size_t)alen);
  if (subprotocol) {
    hb_strbuf_addstr(out, "\r\nSec-WebSocket-Protocol: ");
    hb_strbuf_addstr(out, subprotocol);
  }
  hb_strbuf_add(out, "\r\n\r\n", 4);
}

hb_ws *hb_ws_open(hb_conn *c) {
  const hb_config *cfg = c->io->set->cfg;
  /* The extension area was the HTTP glue's until now. */
  memset(hb_conn_ext(c), 0, c->io->set->hooks.conn_ext_bytes);
  hb_conn_set_handler(c, &hb_ws_conn_handler);
  c->deadline_ms = hb_io_now_ms(c->io) + (uint64_t)cfg->idle_timeout_ms;
  hb_metric_inc(HB_M_WEBSOCKETS_OPEN);
  return hb_ws_of(c);
}
