/* room.c - the v1 room protocol on an open WebSocket (room.h). */
#include "hubbub/room.h"

#include <string.h>
#include <time.h>

#include "hubbub/alloc.h"
#include "hubbub/cmsg.h"
#include "hubbub/event_name.h"
#include "hubbub/hash.h"
#include "hubbub/history.h"
#include "hubbub/index.h"
#include "hubbub/io.h"
#include "hubbub/limits.h"
#include "hubbub/log.h"
#include "hubbub/metrics.h"
#include "hubbub/presence.h"
#include "hubbub/publish.h"
#include "hubbub/smsg.h"

/* --- rooms: one shared copy of the room key per thread --------------------- */

struct hb_room {
  hb_chan_key key; /* session-level channel key: org, plugin, event, session */
  uint32_t refs;   /* connections of this thread in the room */
  UT_hash_handle hh;
};

static hb_room *rooms[HB_MAX_THREADS]; /* uthash heads, by hb_io.id */

static hb_room *room_acquire(hb_io *io, const hb_chan_key *key) {
  hb_room *r;
  HASH_FIND(hh, rooms[io->id], key, sizeof *key, r);
  if (!r) {
    r = hb_calloc(1, sizeof *r);
    r->key = *key;
    HASH_ADD(hh, rooms[io->id], key, sizeof r->key, r);
  }
  r->refs++;
  return r;
}

static void room_release(hb_io *io, hb_room *r) {
  if (!r || --r->refs > 0) return;
  HASH_DELETE(hh, rooms[io->id], r);
  hb_free(r);
}

void hb_room_thread_stop(hb_io *io) {
  /* Every connection left its room when it closed: the table is empty. */
  hb_room *r, *tmp;
  HASH_ITER(hh, rooms[io->id], r, tmp) {
    HASH_DELETE(hh, rooms[io->id], r);
    hb_free(r);
  }
}

const hb_chan_key *hb_room_key(const hb_room *r) { return &r->key; }

static hb_peer *peer_of(hb_ws *ws) { return (hb_peer *)ws; }
static hb_conn *conn_of(hb_peer *p) { return hb_ws_conn(&p->ws); }
static const hb_config *cfg_of(hb_peer *p) { return conn_of(p)->io->set->cfg; }

/* --- the protocol -------------------------------------------------------- */

static void send_json(hb_peer *p, hb_strbuf *sb) {
  hb_ws_send_text(&p->ws, sb->buf, sb->len);
  hb_strbuf_free(sb);
}

/* One limiter per code: a client hammering scope_forbidden costs a line a second. */
static hb_log_limit refusal_limits[HB_E__COUNT];

/* Every error answered on a room connection is counted; a refusal
 * (scope_forbidden, rate_limited, shutting_down, broker_unavailable) is
 * counted as one and logged at warn, a client's mistake at debug. */
static void note_error(hb_peer *p, const hb_error *e) {
  hb_metric_error(e->err);
  bool refusal = hb_err_is_refusal(e->err);
  if (refusal) hb_metric_refusal(e->err, HB_TRANSPORT_WS);
  hb_log_level lvl = refusal ? HB_LOG_WARN : HB_LOG_DEBUG;
  unsigned long dropped = 0;
  if (!hb_log_enabled(lvl) || (unsigned)e->err >= HB_E__COUNT || !hb_log_limit_take(&refusal_limits[e->err], &dropped))
    return;
  hb_log_line l;
  char peer[HB_PEER_NAME_BYTES], plugin[HB_UUID_STR_BYTES], session[HB_UUID_STR_BYTES];
  hb_conn_peer_name(conn_of(p), peer);
  hb_uuid_format(&p->room->key.plugin, plugin);
  hb_uuid_format(&p->room->key.session, session);
  hb_log_begin(&l, lvl, refusal ? "refused" : "message failed");
  hb_log_str(&l, "transport", "ws");
  hb_log_str(&l, "code", hb_err_code(e->err));
  hb_log_strn(&l, "message", e->message, strnlen(e->message, sizeof e->message));
  hb_log_str(&l, "peer", peer);
  hb_log_str(&l, "plugin", plugin);
  hb_log_str(&l, "session", session);
  if (dropped) hb_log_int(&l, "suppressed", (long long)dropped);
  hb_log_end(&l);
}

static void send_error(hb_peer *p, const hb_cmsg *m, const hb_error *e) {
  note_error(p, e);
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_smsg_error(&sb, m && m->has_id ? m->id : NULL, m && m->has_id ? m->id_len : 0, e);
  send_json(p, &sb);
}

static void send_ack(hb_peer *p, const hb_cmsg *m) {
  if (!m->has_id) return; /* no id, no ack (protocol.md) */
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_smsg_ack(&sb, m->id, m->id_len, NULL);
  send_json(p, &sb);
}

hb_peer *hb_room_join(hb_ws *ws, const hb_conn_claims *cl) {
  hb_peer *p = peer_of(ws);
  hb_conn *c = conn_of(p);
  const hb_config *cfg = c->io->set->cfg;
  hb_chan_key room;
  hb_chan_key_make(&room, HB_SCOPE_SESSION, &cl->org, &cl->plugin, &cl->event, &cl->session);
  p->room = room_acquire(c->io, &room);
  hb_list_init(&p->subs);
  p->scopes = cl->scopes & ((1u << HB_SCOPE__COUNT) - 1);
  p->expires_at = cl->exp <= 0 ? 0 : cl->exp >= UINT32_MAX ? UINT32_MAX : (uint32_t)cl->exp;
  hb_bucket_init(&p->bucket, cfg->conn_publish_burst, hb_io_now_ms(c->io));
  /* presence: false: nobody is counted (the member stays NULL, its leave a no-op). */
  p->presence = cfg->presence ? hb_presence_join(&room, cl->user_id, strlen(cl->user_id), cl->info, cl->info_len)
                              : NULL;
  return p;
}

/* The welcome frame, appended to `out`. */
static void welcome(hb_peer *p, const hb_conn_claims *cl, const char *subscribed, size_t subscribed_len,
                    const hb_pos *positions, bool asked, bool recovered, const char *const *failed,
                    hb_strbuf *out) {
  hb_conn *c = conn_of(p);
  const hb_config *cfg = c->io->set->cfg;
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
      .presence_list_max = (size_t)cfg->presence_list_max,
      .ping_interval_ms = cfg->ping_interval_ms,
      .subscribed = subscribed,
      .subscribed_len = subscribed_len,
      .positions = positions,
      .recovery_asked = asked,
      .recovered = recovered,
      .recovery_failed = failed,
  };
  size_t mark = hb_ws_frame_begin(out);
  hb_smsg_welcome(out, &w);
  hb_ws_frame_end(out, mark, HB_WS_OP_TEXT);
}

/* Replay only the names the connection subscribed to at the upgrade. */
typedef struct {
  const char *names;
  size_t len;
} names_filter;

static bool wanted(void *ud, const hb_msg *m) {
  const names_filter *f = ud;
  size_t pos = 0, len;
  const char *name;
  while (hb_event_name_list_next(f->names, f->len, &pos, &name, &len))
    if (len == m->event_name_len && memcmp(name, m->event_name, len) == 0) return true;
  return false;
}

bool hb_room_enter(hb_peer *p, const hb_conn_claims *cl, const char *subs, size_t subs_len,
                   const hb_pos *since, hb_strbuf *out) {
  hb_conn *c = conn_of(p);
  const hb_config *cfg = c->io->set->cfg;
  hb_chan_key chans[HB_SCOPE__COUNT];
  for (int sc = 0; sc < HB_SCOPE__COUNT; sc++)
    hb_chan_key_make(&chans[sc], (hb_scope)sc, &cl->org, &cl->plugin, &cl->event, &cl->session);
  hb_pos now[HB_SCOPE__COUNT];
  hb_history_status st[HB_SCOPE__COUNT] = {0};
  hb_msgvec replay[HB_SCOPE__COUNT];
  memset(replay, 0, sizeof replay);
  names_filter f = {subs, subs_len};
  bool recovered = true;
  /*
   * Under the three channels' locks, no publish to them can take a position.
   * Deliveries other threads posted to this one before are run first; so
   * every message up to the positions read below either is in the replay or
   * was missed (then the client is told), and every later one reaches the
   * subscriptions made here, once, after the welcome.
   */
  hb_history_lock(chans, HB_SCOPE__COUNT);
  hb_inbox_run(&c->io->inbox);
  for (int sc = 0; sc < HB_SCOPE__COUNT; sc++) {
    now[sc] = hb_history_position_locked(&chans[sc]);
    if (!since) continue;
    size_t budget = cfg->max_recover_messages;
    for (int k = 0; k < sc; k++) budget -= replay[k].n;
    st[sc] = subs_len ? hb_history_read_locked(&chans[sc], since[sc], wanted, &f, budget, &replay[sc])
                      : (since[sc].epoch != now[sc].epoch ? HB_HISTORY_EPOCH_CHANGED : HB_HISTORY_OK);
    if (st[sc] != HB_HISTORY_OK) recovered = false;
  }
  size_t pos = 0, len;
  const char *name;
  while (hb_event_name_list_next(subs, subs_len, &pos, &name, &len))
    hb_room_subscribe(p, name, len); /* names and count were checked by the caller */
  hb_history_unlock(chans, HB_SCOPE__COUNT);

  const char *failed[HB_SCOPE__COUNT] = {NULL};
  size_t replayed = 0;
  if (since) {
    for (int sc = 0; sc < HB_SCOPE__COUNT; sc++)
      if (st[sc] != HB_HISTORY_OK) failed[sc] = hb_history_status_name(st[sc]);
    hb_metric_inc(recovered ? HB_M_RECOVERIES : HB_M_RECOVERIES_FAILED);
  }
  /* Replayed events go first, in offset order per channel, as they were
   * sent live; all or nothing: never a partial replay. */
  if (recovered && since) {
    size_t n;
    char *head = hb_strbuf_release(out, &n);
    hb_conn_send_owned(c, head, n);
    for (int sc = 0; sc < HB_SCOPE__COUNT; sc++)
      for (size_t k = 0; k < replay[sc].n; k++, replayed++) hb_publish_send(c, replay[sc].v[k]);
    hb_metric_add(HB_M_RECOVERED_MESSAGES, (long long)replayed);
  }
  for (int sc = 0; sc < HB_SCOPE__COUNT; sc++) hb_msgvec_free(&replay[sc]);
  welcome(p, cl, subs, subs_len, now, since != NULL, recovered, failed, out);
  return recovered;
}

bool hb_room_subscribe(hb_peer *p, const char *name, size_t len) {
  if (hb_index_find_sub(&p->subs, name, len)) return true;
  if (p->nsubs >= cfg_of(p)->max_subscriptions) return false;
  hb_conn *c = conn_of(p);
  hb_sub *s = hb_index_subscribe(hb_publish_index(c->io), c, &p->room->key, name, len);
  hb_list_insert_tail(&p->subs, &s->conn_link);
  p->nsubs++;
  return true;
}

static void do_subscribe(hb_peer *p, const hb_cmsg *m) {
  hb_error e;
  if (!hb_room_subscribe(p, m->event_name, m->event_name_len)) {
    hb_error_set(&e, HB_E_TOO_MANY_SUBSCRIPTIONS, "/eventName", "at most %zu event names per connection",
                 cfg_of(p)->max_subscriptions);
    send_error(p, m, &e);
    return;
  }
  send_ack(p, m);
}

static void do_unsubscribe(hb_peer *p, const hb_cmsg *m) {
  hb_sub *s = hb_index_find_sub(&p->subs, m->event_name, m->event_name_len);
  if (s) {
    hb_index_unsubscribe(hb_publish_index(conn_of(p)->io), s);
    p->nsubs--;
  }
  send_ack(p, m);
}

static void do_publish(hb_peer *p, const hb_cmsg *m) {
  hb_error e;
  hb_conn *c = conn_of(p);
  const hb_config *cfg = c->io->set->cfg;
  if (!(p->scopes & HB_SCOPE_BIT(m->scope))) {
    hb_error_set(&e, HB_E_SCOPE_FORBIDDEN, "/scope", "this connection may not publish to scope '%s'",
                 hb_scope_name(m->scope));
    send_error(p, m, &e);
    return;
  }
  if (hb_ioset_stopping(c->io->set)) {
    hb_error_set(&e, HB_E_SHUTTING_DOWN, NULL, NULL);
    send_error(p, m, &e);
    return;
  }
  if (!hb_bucket_take(&p->bucket, cfg->conn_publish_rate, cfg->conn_publish_burst, hb_io_now_ms(c->io), NULL)) {
    hb_metric_inc(HB_M_RATE_LIMITED_CONNECTION);
    hb_error_set(&e, HB_E_RATE_LIMITED, NULL, "over %.0f publishes per second", cfg->conn_publish_rate);
    send_error(p, m, &e);
    if (++p->rate_strikes >= HB_RATE_STRIKES_BEFORE_CLOSE)
      hb_ws_close(&p->ws, HB_CLOSE_RATE_LIMITED, "publish rate limit exceeded", false);
    return;
  }
  p->rate_strikes = 0;
  hb_publish_req req = {
      .room = &p->room->key,
      .scope = m->scope,
      .event_name = m->event_name,
      .event_name_len = m->event_name_len,
      .data = m->data,
      .data_len = m->data_len,
      .idem_key = m->idem_key_len ? m->idem_key : NULL,
      .idem_key_len = m->idem_key_len,
  };
  hb_publish_result r;
  if (hb_publish(c->io, &req, &r) != HB_OK) {
    hb_error_set(&e, r.err, NULL, NULL);
    send_error(p, m, &e);
    return;
  }
  if (!r.replayed) hb_metric_inc(HB_M_PUBLISHES_WS);
  if (!m->has_id) return; /* no id, no ack (protocol.md) */
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_smsg_publish_ack(&sb, m->id, m->id_len, r.message_id, &r.pos);
  send_json(p, &sb);
}

/* --- presence (presence.h; docs/protocol.md, "Presence") ------------------- */

/* The presence channel of `scope` for this connection's room. */
static void presence_chan(hb_peer *p, hb_scope scope, hb_chan_key *out) {
  const hb_chan_key *r = &p->room->key;
  hb_chan_key_make(out, scope, &r->org, &r->plugin, &r->event, &r->session);
}

/* May this connection see the presence of the request's scope? (The
 * scopes of its token: the ones it may publish to.) */
static bool presence_allowed(hb_peer *p, const hb_cmsg *m) {
  if (p->scopes & HB_SCOPE_BIT(m->scope)) return true;
  hb_error e;
  hb_error_set(&e, HB_E_SCOPE_FORBIDDEN, "/scope", "this connection's token does not allow the presence of scope '%s'",
               hb_scope_name(m->scope));
  send_error(p, m, &e);
  return false;
}

/*
 * A page of the channel's members, queued on the connection as a
 * presence.snapshot; with `observe`, also subscribe to its deltas. Under the
 * channel's lock and after this thread's inbox (the deltas posted before),
 * so the page's version is followed on the wire by exactly the deltas
 * after it (presence.h).
 */
static void presence_snapshot(hb_peer *p, const hb_cmsg *m, uint64_t after, uint32_t limit, bool observe) {
  hb_conn *c = conn_of(p);
  hb_chan_key chan;
  presence_chan(p, m->scope, &chan);
  hb_strbuf members = HB_STRBUF_INIT, sb = HB_STRBUF_INIT;
  hb_presence_page pg;
  hb_presence_lock(&chan);
  hb_inbox_run(&c->io->inbox);
  hb_presence_page_locked(&chan, after, limit, &members, &pg);
  if (observe && !(p->observing & HB_SCOPE_BIT(m->scope))) {
    size_t tlen;
    const char *topic = hb_presence_topic(m->scope, &tlen);
    /* Linked with the connection's subscriptions (so it goes when the
     * connection does) but not counted in max_subscriptions. */
    hb_sub *s = hb_index_subscribe(hb_publish_index(c->io), c, &p->room->key, topic, tlen);
    hb_list_insert_tail(&p->subs, &s->conn_link);
    hb_presence_observe_locked(&chan, +1);
    p->observing |= HB_SCOPE_BIT(m->scope);
  }
  hb_smsg_presence_snapshot(&sb, m->has_id ? m->id : NULL, m->has_id ? m->id_len : 0, m->scope, pg.version,
                            pg.count, members.buf, members.len, pg.truncated, pg.cursor);
  hb_ws_send_text(&p->ws, sb.buf, sb.len);
  hb_presence_unlock(&chan);
  hb_strbuf_free(&sb);
  hb_strbuf_free(&members);
}

static void presence_unobserve(hb_peer *p, hb_scope scope) {
  if (!(p->observing & HB_SCOPE_BIT(scope))) return;
  hb_conn *c = conn_of(p);
  size_t tlen;
  const char *topic = hb_presence_topic(scope, &tlen);
  hb_sub *s = hb_index_find_sub(&p->subs, topic, tlen);
  if (s) hb_index_unsubscribe(hb_publish_index(c->io), s);
  hb_chan_key chan;
  presence_chan(p, scope, &chan);
  hb_presence_lock(&chan);
  hb_presence_observe_locked(&chan, -1);
  hb_presence_unlock(&chan);
  p->observing &= ~HB_SCOPE_BIT(scope);
}

static void do_presence(hb_peer *p, const hb_cmsg *m) {
  uint32_t list_max = (uint32_t)cfg_of(p)->presence_list_max;
  if (!cfg_of(p)->presence) {
    /* Turned off: answered as by a server without presence. */
    hb_error e;
    hb_error_set(&e, HB_E_UNKNOWN_TYPE, "/type", "presence is turned off on this server (presence: false)");
    send_error(p, m, &e);
    return;
  }
  switch (m->type) {
  case HB_CMSG_PRESENCE_SUBSCRIBE:
    /* Again while subscribed: a fresh snapshot, still one subscription. */
    if (presence_allowed(p, m)) presence_snapshot(p, m, 0, list_max, true);
    break;
  case HB_CMSG_PRESENCE_GET:
    if (presence_allowed(p, m)) presence_snapshot(p, m, m->cursor, m->limit ? m->limit : list_max, false);
    break;
  case HB_CMSG_PRESENCE_UNSUBSCRIBE:
    presence_unobserve(p, m->scope);
    send_ack(p, m);
    break;
  default: break;
  }
}

static void room_on_text(hb_ws *ws, const char *msg, size_t len) {
  hb_peer *p = peer_of(ws);
  hb_cmsg m;
  hb_error e;
  memset(&e, 0, sizeof e);
  hb_err err = hb_cmsg_decode(msg, len, cfg_of(p)->max_data_bytes, &m, &e);
  if (err != HB_OK) {
    if (e.err != err) hb_error_set(&e, err, NULL, NULL);
    send_error(p, &m, &e);
    goto out;
  }
  switch (m.type) {
  case HB_CMSG_SUBSCRIBE: do_subscribe(p, &m); break;
  case HB_CMSG_UNSUBSCRIBE: do_unsubscribe(p, &m); break;
  case HB_CMSG_PUBLISH: do_publish(p, &m); break;
  case HB_CMSG_PING: {
    hb_strbuf sb = HB_STRBUF_INIT;
    hb_smsg_pong(&sb, m.has_id ? m.id : NULL, m.has_id ? m.id_len : 0);
    send_json(p, &sb);
    break;
  }
  case HB_CMSG_PRESENCE_SUBSCRIBE:
  case HB_CMSG_PRESENCE_UNSUBSCRIBE:
  case HB_CMSG_PRESENCE_GET: do_presence(p, &m); break;
  }
out:
  hb_cmsg_clear(&m);
}

/* The token's expiry, checked on every sweep against the wall clock. */
static void room_on_sweep(hb_ws *ws, uint64_t now_ms) {
  hb_peer *p = peer_of(ws);
  if (p->expires_at && p->expires_at != UINT32_MAX && (int64_t)time(NULL) > (int64_t)p->expires_at + HB_JWT_LEEWAY_S)
    hb_ws_close(ws, HB_CLOSE_UNAUTHORIZED, "token expired", false);
}

/* Leave every room now: the index must never point at a closed connection. */
static void room_on_close(hb_ws *ws) {
  hb_peer *p = peer_of(ws);
  hb_conn *c = conn_of(p);
  if (!p->room) return; /* upgraded but never joined */
  presence_unobserve(p, HB_SCOPE_SESSION);
  presence_unobserve(p, HB_SCOPE_EVENT);
  hb_index *ix = hb_publish_index(c->io);
  while (!hb_list_empty(&p->subs)) {
    hb_sub *s = hb_container_of(p->subs.next, hb_sub, conn_link);
    hb_index_unsubscribe(ix, s);
  }
  hb_presence_leave(&p->room->key, p->presence);
  p->presence = NULL;
  room_release(c->io, p->room);
  p->room = NULL;
}

static const hb_ws_handler room_ws_handler = {
    .on_text = room_on_text,
    .on_sweep = room_on_sweep,
    .on_close = room_on_close,
};

void hb_room_init(void) { hb_ws_init(&room_ws_handler); }
