/* ws.c - the RFC 6455 handshake and the wslay glue. */
#include "hubbub/ws.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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
#include "hubbub/auth.h"
#include "hubbub/envelope.h"
#include "hubbub/hex.h"
#include "hubbub/io.h"
#include "hubbub/limits.h"
#include "hubbub/log.h"
#include "hubbub/room.h"
#include "hubbub/utf8.h"

/* RFC 6455 4.2.2: the GUID appended to the key before hashing. */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_KEY_B64_BYTES 24 /* base64 of the 16-byte nonce */
/* First allocation for the 101 and the welcome (~130 + ~480 bytes, more
 * with a long user id, which grows it). */
#define WS_HANDSHAKE_OUT_BYTES 1024

/* --- wslay callbacks ----------------------------------------------------- */

static ssize_t ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud) {
  hb_io *io = ((hb_conn *)ud)->io;
  if (io->ws_in_len == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  size_t n = len < io->ws_in_len ? len : io->ws_in_len;
  memcpy(buf, io->ws_in, n);
  io->ws_in += n;
  io->ws_in_len -= n;
  return (ssize_t)n;
}

/* wslay's own frames: pongs and the close reply. Copied into the queue
 * whole, so they never interleave with the server's frames. */
static ssize_t ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *ud) {
  hb_conn *c = ud;
  if (c->state == HB_CONN_WS) hb_conn_send_copy(c, data, len);
  return (ssize_t)len;
}

static void ws_on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                      void *ud) {
  hb_conn *c = ud;
  if (c->state != HB_CONN_WS) return;
  switch (arg->opcode) {
  case WSLAY_TEXT_FRAME: hb_room_on_text(c, (const char *)arg->msg, arg->msg_length); break;
  case WSLAY_BINARY_FRAME:
    wslay_event_shutdown_read(ctx);
    hb_conn_ws_close(c, 1003, "binary messages are not supported", false);
    break;
  default: break; /* close: wslay queued the reply; ping: the pong; pong: nothing */
  }
}

static const struct wslay_event_callbacks ws_callbacks = {
    .recv_callback = ws_recv,
    .send_callback = ws_send,
    .on_msg_recv_callback = ws_on_msg,
};

/* Follow frame boundaries (RFC 6455 5.2) without interpreting anything
 * else: wslay does the checking. This only tells when no frame and no
 * fragmented message is partly received. */
static uint16_t track_frames(hb_conn *c, const uint8_t *p, size_t len, const char **why) {
  uint16_t bad = 0; /* a close code when a frame header alone is a violation */
  uint64_t max = c->io->srv->cfg.max_message_bytes;
  while (len > 0) {
    if (c->ft_left > 0) {
      size_t n = len < c->ft_left ? len : (size_t)c->ft_left;
      c->ft_left -= n;
      p += n;
      len -= n;
      continue;
    }
    c->ft_hdr[c->ft_hlen++] = *p++;
    len--;
    if (c->ft_hlen < 2) continue;
    uint8_t len7 = c->ft_hdr[1] & 0x7f;
    size_t need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((c->ft_hdr[1] & 0x80) ? 4 : 0);
    if (c->ft_hlen < need) continue;
    uint64_t plen = len7;
    if (len7 == 126) plen = (uint64_t)c->ft_hdr[2] << 8 | c->ft_hdr[3];
    if (len7 == 127) {
      plen = 0;
      for (int i = 0; i < 8; i++) plen = plen << 8 | c->ft_hdr[2 + i];
    }
    bool fin = c->ft_hdr[0] & 0x80;
    uint8_t op = c->ft_hdr[0] & 0x0f;
    if ((op == 0x1 || op == 0x2) && !fin) c->ft_frag = true;
    if (op == 0x0 && fin) c->ft_frag = false;
    /* RFC 6455 5.5.1: a close body is empty or at least a 2-byte code;
     * wslay would read one byte as "no code" and echo 1005. */
    if (op == 0x8 && plen == 1) bad = 1002, *why = "close frame with a 1-byte payload";
    /* A data frame that announces more than a message may hold is refused
     * from its header, not after the client trickles its first byte. */
    if (len7 == 127 && (plen >> 63)) bad = 1002, *why = "frame length with the high bit set"; /* RFC 6455 5.2 */
    else if (op <= 0x2 && plen > max) bad = 1009, *why = "message too big";
    else if (plen > max) bad = 1002, *why = "control or reserved frame too long"; /* RFC 6455 5.2, 5.5 */
    c->ft_hlen = 0;
    /* The connection closes: what follows is not looked at. So a tracked
     * frame is never longer than max_message_bytes and fits in 32 bits. */
    if (bad) return bad;
    c->ft_left = (uint32_t)plen;
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

static bool ws_ctx_new(hb_conn *c) {
  if (wslay_event_context_server_init(&c->ws, &ws_callbacks, c) != 0) {
    c->ws = NULL;
    return false;
  }
  /* wslay's default is 2 GiB (DESIGN.md): always cap it. */
  wslay_event_config_set_max_recv_msg_length(c->ws, c->io->srv->cfg.max_message_bytes);
  return true;
}

void hb_ws_on_read(hb_conn *c, const char *buf, size_t len) {
  if (c->state != HB_CONN_WS) return;
  if (!c->ws && !c->ft_left && !c->ft_hlen && !c->ft_frag) {
    /* Between messages, a read that is exactly one small text message (a
     * subscribe, a publish) is handed to the room without wslay: setting up
     * a context (two 4 KiB buffers) to free it again right after cost more
     * than the rest of the message's handling. */
    uint8_t msg[HB_WS_DIRECT_MAX_BYTES];
    size_t n = hb_ws_direct_text((const uint8_t *)buf, len, c->io->srv->cfg.max_message_bytes, msg);
    if (n != SIZE_MAX) {
      /* wslay's copy is a heap block of exactly n bytes: poison the rest of
       * this one so that the sanitizer build still catches a read past the
       * message (no-ops otherwise). */
      WS_POISON(msg + n, sizeof msg - n);
      hb_room_on_text(c, (const char *)msg, n);
      WS_UNPOISON(msg + n, sizeof msg - n);
      return;
    }
  }
  if (!c->ws && !ws_ctx_new(c)) {
    hb_conn_ws_close(c, 1011, "internal error", false);
    return;
  }
  const char *why = NULL;
  uint16_t bad = track_frames(c, (const uint8_t *)buf, len, &why);
  if (bad) {
    hb_conn_ws_close(c, bad, why, false);
    return;
  }
  hb_io *io = c->io;
  io->ws_in = buf;
  io->ws_in_len = len;
  int r = wslay_event_recv(c->ws);
  io->ws_in = NULL;
  io->ws_in_len = 0;
  if (c->state != HB_CONN_WS) return; /* a handler closed it */
  if (r == WSLAY_ERR_CALLBACK_FAILURE) {
    /* Our recv callback never fails, so this is a frame-level violation
     * (fragmented or oversized control frame, bad length): wslay would send
     * a close without a code; RFC 6455 7.4.1 says 1002. */
    hb_conn_ws_close(c, 1002, "protocol error", false);
    return;
  }
  if (r != 0) {
    hb_conn_ws_close(c, 1011, "internal error", false);
    return;
  }
  wslay_event_send(c->ws);
  if (wslay_event_get_close_sent(c->ws)) {
    /* wslay answered a close, or closed for a violation it found (1002 for
     * reserved bits, opcodes, masking; 1007 UTF-8; 1009 size). */
    c->close_code = wslay_event_get_status_code_sent(c->ws);
    c->linger = true;
    hb_conn_close(c, true);
    return;
  }
  if (c->ft_left == 0 && c->ft_hlen == 0 && !c->ft_frag && !wslay_event_want_write(c->ws)) {
    /* Between messages wslay holds nothing we need: give its buffers back so
     * an idle subscriber costs a few hundred bytes, not ~8 KiB. */
    wslay_event_context_free(c->ws);
    c->ws = NULL;
  }
}

void hb_ws_destroy(hb_conn *c) {
  if (c->ws) wslay_event_context_free(c->ws);
  c->ws = NULL;
}

/* --- handshake ----------------------------------------------------------- */

/* SHA1() looks the algorithm up by name on every call; fetched once (and
 * kept for the life of the process) the digest of the key costs half. */
static EVP_MD *sha1_md;
static pthread_once_t sha1_once = PTHREAD_ONCE_INIT;
static void sha1_fetch(void) { sha1_md = EVP_MD_fetch(NULL, "SHA1", NULL); }

static void refuse(hb_conn *c, hb_err err, const char *extra, const char *msg) {
  hb_error e;
  hb_error_set(&e, err, NULL, msg ? "%s" : NULL, msg);
  hb_http_respond_error(c, &e, extra, true);
}

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

/* Find `name` ("token=") in the query and percent-decode its value into
 * out. Returns its length, 0 when absent or empty, -1 when malformed or too
 * long. */
static ssize_t query_param(const char *url, const char *name, char *out, size_t outlen) {
  const char *q = strchr(url, '?');
  size_t nlen = strlen(name);
  if (!q) return 0;
  q++;
  while (*q) {
    const char *end = strchr(q, '&');
    size_t plen = end ? (size_t)(end - q) : strlen(q);
    if (plen > nlen && memcmp(q, name, nlen) == 0) {
      size_t o = 0;
      for (size_t i = nlen; i < plen;) {
        /* Copy up to the next escape in one piece (a token has none). */
        const char *pct = memchr(q + i, '%', plen - i);
        size_t run = pct ? (size_t)(pct - q) - i : plen - i;
        if (o + run >= outlen) return -1;
        memcpy(out + o, q + i, run);
        o += run;
        i += run;
        if (i == plen) break;
        if (i + 2 >= plen || hb_hexval(q[i + 1]) < 0 || hb_hexval(q[i + 2]) < 0) return -1;
        if (o + 1 >= outlen) return -1;
        out[o++] = (char)(hb_hexval(q[i + 1]) << 4 | hb_hexval(q[i + 2]));
        i += 3;
      }
      out[o] = '\0';
      return (ssize_t)o;
    }
    if (!end) break;
    q = end + 1;
  }
  return 0;
}

/* The subscribe parameter: event names separated by commas (a comma is not
 * a valid event-name character), at most max_subscriptions of them. Refuses
 * the upgrade (and returns false) when one is invalid or there are too many:
 * a client that asked for names must not believe it has them. */
static bool subscribe_list_valid(const hb_server *srv, hb_conn *c, const char *s, size_t n) {
  size_t count = 0, pos = 0, len;
  const char *name;
  while (hb_name_list_next(s, n, &pos, &name, &len)) {
    if (len == 0) { /* ",a", "a,,b", "a," */
      refuse(c, HB_E_INVALID_EVENT_NAME, NULL, "subscribe: an empty event name");
      return false;
    }
    if (!hb_event_name_valid(name, len)) {
      char msg[120];
      snprintf(msg, sizeof msg,
               "subscribe: event names are 1-%d bytes of A-Z a-z 0-9 - _ . : / @, separated by commas",
               HB_MAX_EVENT_NAME_BYTES);
      refuse(c, HB_E_INVALID_EVENT_NAME, NULL, msg);
      return false;
    }
    if (++count > srv->cfg.max_subscriptions) {
      char msg[80];
      snprintf(msg, sizeof msg, "subscribe: at most %zu event names per connection",
               srv->cfg.max_subscriptions);
      refuse(c, HB_E_TOO_MANY_SUBSCRIPTIONS, NULL, msg);
      return false;
    }
  }
  return true;
}

static bool origin_in_list(const char *list, const char *origin, size_t olen) {
  const char *p = list;
  while (*p) {
    while (*p == ' ') p++;
    const char *s = p;
    while (*p && *p != ' ') p++;
    if ((size_t)(p - s) == olen && memcmp(s, origin, olen) == 0) return true;
  }
  return false;
}

void hb_ws_handshake(hb_conn *c, hb_http_req *r) {
  hb_server *srv = c->io->srv;
  const char *up = r->hdr[HB_H_UPGRADE], *conn = r->hdr[HB_H_CONNECTION];
  if (!r->upgrade || !up || !hb_http_has_token(up, r->hdr_len[HB_H_UPGRADE], "websocket") || !conn ||
      !hb_http_has_token(conn, r->hdr_len[HB_H_CONNECTION], "upgrade")) {
    refuse(c, HB_E_BAD_REQUEST, NULL, "expected a WebSocket upgrade (Upgrade: websocket)");
    return;
  }
  const char *ver = r->hdr[HB_H_WS_VERSION];
  if (!ver || strcmp(ver, "13") != 0) {
    /* RFC 6455 4.4: answer with the versions we speak. */
    refuse(c, HB_E_UPGRADE_REQUIRED, "Sec-WebSocket-Version: 13\r\n", NULL);
    return;
  }
  const char *key = r->hdr[HB_H_WS_KEY];
  if (!key || !valid_ws_key(key, r->hdr_len[HB_H_WS_KEY])) {
    refuse(c, HB_E_BAD_REQUEST, NULL, "missing or malformed Sec-WebSocket-Key");
    return;
  }
  if (atomic_load(&srv->shutting_down)) {
    refuse(c, HB_E_SHUTTING_DOWN, NULL, NULL);
    return;
  }
  char tok[HB_MAX_CONN_TOKEN_BYTES + 1];
  ssize_t tlen = query_param(r->url, "token=", tok, sizeof tok);
  if (tlen < 0) {
    refuse(c, HB_E_INVALID_TOKEN, NULL, "the token parameter is malformed or too long");
    return;
  }
  if (tlen == 0) {
    refuse(c, HB_E_MISSING_TOKEN, NULL, "connect with ?token=<connection token>");
    return;
  }
  hb_conn_claims claims;
  hb_error e;
  memset(&e, 0, sizeof e);
  hb_err err = hb_auth_conn_token(tok, (size_t)tlen, (int64_t)time(NULL), &claims, &e);
  if (err == HB_E_INVALID_TOKEN && hb_io_auth_refresh(c->io)) {
    memset(&e, 0, sizeof e); /* perhaps a plugin created a moment ago */
    err = hb_auth_conn_token(tok, (size_t)tlen, (int64_t)time(NULL), &claims, &e);
  }
  if (err != HB_OK) {
    if (e.err != err) hb_error_set(&e, err, NULL, NULL);
    e.pointer[0] = '\0';
    hb_http_respond_error(c, &e, NULL, true);
    return;
  }
  char subs[HB_WS_SUBSCRIBE_PARAM_BYTES + 1];
  ssize_t slen = query_param(r->url, "subscribe=", subs, sizeof subs);
  if (slen < 0) {
    refuse(c, HB_E_BAD_REQUEST, NULL, "the subscribe parameter is malformed or too long");
    return;
  }
  if (!subscribe_list_valid(srv, c, subs, (size_t)slen)) return;
  const char *origin = r->hdr[HB_H_ORIGIN];
  size_t olen = origin ? r->hdr_len[HB_H_ORIGIN] : 0;
  /* Cross-site WebSocket hijacking: browsers always send Origin, so an
   * allowlist (global or the plugin's) is checked here, before the upgrade. */
  if ((srv->cfg.allowed_origins[0] && (!origin || !origin_in_list(srv->cfg.allowed_origins, origin, olen))) ||
      !hb_auth_origin_allowed(&claims.plugin, origin, olen)) {
    refuse(c, HB_E_ORIGIN_FORBIDDEN, NULL, NULL);
    return;
  }

  /* Sec-WebSocket-Accept = base64(SHA-1(key + GUID)) (RFC 6455 4.2.2). */
  char src[WS_KEY_B64_BYTES + sizeof WS_GUID];
  memcpy(src, key, WS_KEY_B64_BYTES);
  memcpy(src + WS_KEY_B64_BYTES, WS_GUID, sizeof WS_GUID - 1);
  unsigned char sha[SHA_DIGEST_LENGTH];
  pthread_once(&sha1_once, sha1_fetch);
  if (!sha1_md || !EVP_Digest(src, WS_KEY_B64_BYTES + sizeof WS_GUID - 1, sha, NULL, sha1_md, NULL))
    SHA1((const unsigned char *)src, WS_KEY_B64_BYTES + sizeof WS_GUID - 1, sha);
  char accept[32];
  int alen = EVP_EncodeBlock((unsigned char *)accept, sha, SHA_DIGEST_LENGTH);

  /* The 101 and the welcome frame go out as one queued piece (one buffer,
   * one allocation), built without printf. */
  static const char head[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\nSec-WebSocket-Accept: ";
  hb_strbuf out = HB_STRBUF_INIT;
  hb_strbuf_grow(&out, WS_HANDSHAKE_OUT_BYTES);
  hb_strbuf_add(&out, head, sizeof head - 1);
  hb_strbuf_add(&out, accept, (size_t)alen);
  hb_strbuf_add(&out, "\r\n\r\n", 4);

  hb_chan_key room;
  hb_chan_key_make(&room, HB_SCOPE_SESSION, &claims.org, &claims.plugin, &claims.event, &claims.session);
  c->room = hb_room_acquire(c->io, &room);
  c->scopes = (uint8_t)claims.scopes;
  c->expires_at = claims.exp;
  c->state = HB_CONN_WS;
  uint64_t now = hb_io_now_ms(c->io);
  c->deadline_ms = now + (uint64_t)srv->cfg.idle_timeout_ms;
  c->next_ping_ms = now + (uint64_t)srv->cfg.ping_interval_ms;
  c->bucket_tokens = (float)srv->cfg.conn_publish_burst;
  c->bucket_ms = now;
  atomic_fetch_add_explicit(&srv->metrics.ws_open, 1, memory_order_relaxed);
  /* Subscribed before anything is written: the client gets every event
   * published after the welcome, as after an acked subscribe. */
  size_t pos = 0, len;
  const char *name;
  while (hb_name_list_next(subs, (size_t)slen, &pos, &name, &len))
    hb_room_subscribe(c, name, len); /* names and count were checked above */
  hb_room_welcome(c, &claims, subs, (size_t)slen, &out);
  size_t n;
  char *p = hb_strbuf_release(&out, &n);
  hb_conn_send_owned(c, p, n);
}
