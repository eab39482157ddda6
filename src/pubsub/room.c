/* room.c - the v1 room protocol on an open WebSocket. */
#include "hubbub/room.h"

#include <string.h>

#include "hubbub/alloc.h"
#include "hubbub/hash.h"
#include "hubbub/api.h"
#include "hubbub/envelope.h"
#include "hubbub/io.h"
#include "hubbub/limits.h"
#include "hubbub/msg.h"


/* --- rooms: one shared copy of the room key per thread --------------------- */

struct hb_room {
  hb_chan_key key; /* session-level channel key: org, plugin, event, session */
  uint32_t refs;   /* connections of this thread in the room */
  UT_hash_handle hh;
};

hb_room *hb_room_acquire(hb_io *io, const hb_chan_key *key) {
  hb_room *r;
  HASH_FIND(hh, io->rooms, key, sizeof *key, r);
  if (!r) {
    r = hb_calloc(1, sizeof *r);
    r->key = *key;
    HASH_ADD(hh, io->rooms, key, sizeof r->key, r);
  }
  r->refs++;
  return r;
}

void hb_room_release(hb_io *io, hb_room *r) {
  if (!r || --r->refs > 0) return;
  HASH_DELETE(hh, io->rooms, r);
  hb_free(r);
}

const hb_chan_key *hb_room_key(const hb_room *r) { return &r->key; }

/* --- the protocol -------------------------------------------------------- */

static void send_json(hb_conn *c, hb_strbuf *sb) {
  hb_conn_send_text(c, sb->buf, sb->len);
  hb_strbuf_free(sb);
}

static void send_error(hb_conn *c, const hb_cmsg *m, const hb_error *e) {
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_smsg_error(&sb, m && m->has_id ? m->id : NULL, m && m->has_id ? m->id_len : 0, e);
  send_json(c, &sb);
}

static void send_ack(hb_conn *c, const hb_cmsg *m, const char *message_id) {
  if (!m->has_id) return; /* no id, no ack (protocol.md) */
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_smsg_ack(&sb, m->id, m->id_len, message_id);
  send_json(c, &sb);
}

void hb_room_welcome(hb_conn *c, const hb_conn_claims *cl, const char *subscribed,
                     size_t subscribed_len, hb_strbuf *out) {
  const hb_config *cfg = &c->io->srv->cfg;
  char conn_id[HB_UUID_STR_BYTES];
  hb_io_new_id(c->io, conn_id);
  hb_welcome w = {
      .connection_id = conn_id,
      .org = &cl->org,
      .plugin = &cl->plugin,
      .event = &cl->event,
      .session = &cl->session,
      .user_id = cl->user_id,
      .scopes = cl->scopes,
      .expires_at = cl->exp,
      .max_message_bytes = cfg->max_message_bytes,
      .max_data_bytes = cfg->max_data_bytes,
      .max_subscriptions = cfg->max_subscriptions,
      .ping_interval_ms = cfg->ping_interval_ms,
      .subscribed = subscribed,
      .subscribed_len = subscribed_len,
  };
  /* The message is written after a gap for the frame header, whose size
   * depends on the message length: 4 bytes (126 to 65,535 bytes), which a
   * welcome always is; the general case moves the message. */
  enum { GAP = 4 };
  size_t start = out->len;
  hb_strbuf_add(out, "\0\0\0\0", GAP);
  hb_smsg_welcome(out, &w);
  size_t len = out->len - start - GAP;
  uint8_t hdr[10];
  size_t hlen = hb_ws_frame_header(hdr, 0x1, len);
  if (hlen != GAP) {
    hb_strbuf_grow(out, hlen);
    memmove(out->buf + start + hlen, out->buf + start + GAP, len);
    out->len = start + hlen + len;
    out->buf[out->len] = '\0';
  }
  memcpy(out->buf + start, hdr, hlen);
}

/* Token bucket per connection: refill at conn_publish_rate per second up to
 * conn_publish_burst. */
static bool rate_ok(hb_conn *c) {
  const hb_config *cfg = &c->io->srv->cfg;
  if (cfg->conn_publish_rate <= 0) return true;
  uint64_t now = hb_io_now_ms(c->io);
  double tokens = c->bucket_tokens + (double)(now - c->bucket_ms) * cfg->conn_publish_rate / 1000.0;
  if (tokens > cfg->conn_publish_burst) tokens = cfg->conn_publish_burst;
  c->bucket_ms = now;
  bool ok = tokens >= 1.0;
  c->bucket_tokens = (float)(ok ? tokens - 1.0 : tokens);
  return ok;
}

bool hb_room_subscribe(hb_conn *c, const char *name, size_t len) {
  if (hb_index_find_sub(&c->subs, name, len)) return true;
  if (c->nsubs >= c->io->srv->cfg.max_subscriptions) return false;
  hb_sub *s = hb_index_subscribe(&c->io->index, c, &c->room->key, name, len);
  hb_list_insert_tail(&c->subs, &s->conn_link);
  c->nsubs++;
  return true;
}

static void do_subscribe(hb_conn *c, const hb_cmsg *m) {
  hb_error e;
  if (!hb_room_subscribe(c, m->event_name, m->event_name_len)) {
    hb_error_set(&e, HB_E_TOO_MANY_SUBSCRIPTIONS, "/eventName",
                 "at most %zu event names per connection", c->io->srv->cfg.max_subscriptions);
    send_error(c, m, &e);
    return;
  }
  send_ack(c, m, NULL);
}

static void do_unsubscribe(hb_conn *c, const hb_cmsg *m) {
  hb_sub *s = hb_index_find_sub(&c->subs, m->event_name, m->event_name_len);
  if (s) {
    hb_index_unsubscribe(&c->io->index, s);
    c->nsubs--;
  }
  send_ack(c, m, NULL);
}

static void do_publish(hb_conn *c, const hb_cmsg *m) {
  hb_error e;
  hb_server *srv = c->io->srv;
  if (!(c->scopes & HB_SCOPE_BIT(m->scope))) {
    hb_error_set(&e, HB_E_SCOPE_FORBIDDEN, "/scope", "this connection may not publish to scope '%s'",
                 hb_scope_name(m->scope));
    send_error(c, m, &e);
    return;
  }
  if (atomic_load(&srv->shutting_down)) {
    hb_error_set(&e, HB_E_SHUTTING_DOWN, NULL, NULL);
    send_error(c, m, &e);
    return;
  }
  if (!rate_ok(c)) {
    hb_error_set(&e, HB_E_RATE_LIMITED, NULL, "over %.0f publishes per second", srv->cfg.conn_publish_rate);
    send_error(c, m, &e);
    if (++c->rate_strikes >= HB_RATE_STRIKES_BEFORE_CLOSE)
      hb_conn_ws_close(c, 4008, "publish rate limit exceeded", false);
    return;
  }
  c->rate_strikes = 0;
  char mid[HB_UUID_STR_BYTES];
  hb_err err = hb_api_do_publish(c->io, &c->room->key, m->scope, m->event_name, m->event_name_len,
                                 m->data, m->data_len, mid);
  if (err != HB_OK) {
    hb_error_set(&e, err, NULL, NULL);
    send_error(c, m, &e);
    return;
  }
  atomic_fetch_add_explicit(&srv->metrics.publishes_ws, 1, memory_order_relaxed);
  send_ack(c, m, mid);
}

void hb_room_on_text(hb_conn *c, const char *msg, size_t len) {
  hb_cmsg m;
  hb_error e;
  memset(&m, 0, sizeof m);
  memset(&e, 0, sizeof e);
  hb_err err = hb_cmsg_decode(msg, len, c->io->srv->cfg.max_data_bytes, &m, &e);
  if (err != HB_OK) {
    if (e.err != err) hb_error_set(&e, err, NULL, NULL);
    send_error(c, &m, &e);
    goto out;
  }
  switch (m.type) {
  case HB_CMSG_SUBSCRIBE: do_subscribe(c, &m); break;
  case HB_CMSG_UNSUBSCRIBE: do_unsubscribe(c, &m); break;
  case HB_CMSG_PUBLISH: do_publish(c, &m); break;
  case HB_CMSG_PING: {
    hb_strbuf sb = HB_STRBUF_INIT;
    hb_smsg_pong(&sb, m.has_id ? m.id : NULL, m.has_id ? m.id_len : 0);
    send_json(c, &sb);
    break;
  }
  }
out:
  hb_cmsg_clear(&m);
}
