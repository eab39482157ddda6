/* room.c - the v1 room protocol on an open WebSocket (room.h). */
#include "hubbub/room.h"

#include <string.h>
#include <time.h>

#include "hubbub/alloc.h"
#include "hubbub/broker.h"
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

static void send_error_id(hb_peer *p, const char *id, size_t id_len, const hb_error *e) {
  note_error(p, e);
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_smsg_error(&sb, id, id_len, e);
  send_json(p, &sb);
}

static void send_error(hb_peer *p, const hb_cmsg *m, const hb_error *e) {
  send_error_id(p, m && m->has_id ? m->id : NULL, m && m->has_id ? m->id_len : 0, e);
}

/* A request whose answer comes later (from the broker): the connection is
 * held (hb_conn_hold) and the request's id copied. */
typedef struct {
  hb_conn *c;
  bool has_id;
  uint8_t id_len;
  uint8_t name_len; /* subscribe: the name, to take back on a failure */
  char id[HB_MAX_REQUEST_ID_BYTES];
  char name[HB_MAX_EVENT_NAME_BYTES];
} room_wait;

static room_wait *wait_new(hb_peer *p, const hb_cmsg *m) {
  room_wait *w = hb_malloc(sizeof *w);
  w->c = conn_of(p);
  w->has_id = m->has_id;
  w->id_len = (uint8_t)(m->has_id ? m->id_len : 0);
  if (w->id_len) memcpy(w->id, m->id, w->id_len);
  w->name_len = 0;
  return w;
}

static hb_peer *wait_peer(room_wait *w) {
  hb_conn *c = hb_conn_unhold(w->c);
  return c ? peer_of(hb_ws_of(c)) : NULL;
}

static void send_ack_id(hb_peer *p, bool has_id, const char *id, size_t id_len) {
  if (!has_id) return; /* no id, no ack (protocol.md) */
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_smsg_ack(&sb, id, id_len, NULL);
  send_json(p, &sb);
}

/* Unix seconds in 32 bits: 0 stays "none", past 2106 is "never". */
static uint32_t secs32(int64_t t) { return t <= 0 ? 0 : t >= (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)t; }
static void send_ack(hb_peer *p, const hb_cmsg *m) { send_ack_id(p, m->has_id, m->id, m->id_len); }

hb_peer *hb_room_join(hb_ws *ws, const hb_conn_claims *cl) {
  hb_peer *p = peer_of(ws);
  hb_conn *c = conn_of(p);
  const hb_config *cfg = c->io->set->cfg;
  hb_chan_key room;
  hb_chan_key_make(&room, HB_SCOPE_SESSION, &cl->org, &cl->plugin, &cl->event, &cl->session);
  p->room = room_acquire(c->io, &room);
  hb_list_init(&p->subs);
  p->scopes = cl->scopes & ((1u << HB_SCOPE__COUNT) - 1);
  hb_auth_conn_ref ref;
  hb_auth_conn_ref_of(cl, &ref);
  p->user_hash = ref.user_hash;
  p->iat = secs32(ref.iat);
  p->exp = secs32(ref.exp);
  p->kid_hash = ref.kid_hash;
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

/*
 * The end of a join, once the positions (and with since, the replay and why
 * a channel cannot be recovered) are known: replayed events first, in
 * offset order per channel, as they were sent live — all or nothing, never a
 * partial replay — then the welcome, appended to `out`. What `out` already
 * holds (the 101) goes out before the replay. Returns whether it recovered.
 */
static bool finish_enter(hb_peer *p, const hb_conn_claims *cl, const char *subs, size_t subs_len, bool asked,
                         const hb_pos *now, const hb_history_status *st, hb_msgvec *replay, hb_strbuf *out) {
  hb_conn *c = conn_of(p);
  bool recovered = true;
  const char *failed[HB_SCOPE__COUNT] = {NULL};
  for (int sc = 0; asked && sc < HB_SCOPE__COUNT; sc++)
    if (st[sc] != HB_HISTORY_OK) {
      recovered = false;
      failed[sc] = hb_history_status_name(st[sc]);
    }
  if (asked) hb_metric_inc(recovered ? HB_M_RECOVERIES : HB_M_RECOVERIES_FAILED);
  if (recovered && asked) {
    size_t n, replayed = 0;
    char *head = hb_strbuf_release(out, &n);
    if (head) hb_conn_send_owned(c, head, n);
    for (int sc = 0; sc < HB_SCOPE__COUNT; sc++)
      for (size_t k = 0; k < replay[sc].n; k++, replayed++) hb_publish_send(c, replay[sc].v[k]);
    hb_metric_add(HB_M_RECOVERED_MESSAGES, (long long)replayed);
  }
  welcome(p, cl, subs, subs_len, now, asked, recovered, failed, out);
  return recovered;
}

static void room_chans(const hb_conn_claims *cl, hb_chan_key chans[HB_SCOPE__COUNT]) {
  for (int sc = 0; sc < HB_SCOPE__COUNT; sc++)
    hb_chan_key_make(&chans[sc], (hb_scope)sc, &cl->org, &cl->plugin, &cl->event, &cl->session);
}

static void subscribe_list(hb_peer *p, const char *subs, size_t subs_len) {
  size_t pos = 0, len;
  const char *name;
  while (hb_event_name_list_next(subs, subs_len, &pos, &name, &len))
    hb_room_subscribe(p, name, len); /* names and count were checked by the caller */
}

bool hb_room_enter(hb_peer *p, const hb_conn_claims *cl, const char *subs, size_t subs_len,
                   const hb_pos *since, hb_strbuf *out) {
  hb_conn *c = conn_of(p);
  const hb_config *cfg = c->io->set->cfg;
  hb_chan_key chans[HB_SCOPE__COUNT];
  room_chans(cl, chans);
  hb_pos now[HB_SCOPE__COUNT];
  hb_history_status st[HB_SCOPE__COUNT] = {0};
  hb_msgvec replay[HB_SCOPE__COUNT];
  memset(replay, 0, sizeof replay);
  names_filter f = {subs, subs_len};
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
  }
  subscribe_list(p, subs, subs_len);
  hb_history_unlock(chans, HB_SCOPE__COUNT);
  bool recovered = finish_enter(p, cl, subs, subs_len, since != NULL, now, st, replay, out);
  for (int sc = 0; sc < HB_SCOPE__COUNT; sc++) hb_msgvec_free(&replay[sc]);
  return recovered;
}

/* --- a join that waits for the broker (Redis) ----------------------------------- */

typedef struct {
  hb_conn *c; /* held */
  hb_conn_claims cl;
  names_filter f; /* f.names is the copy below */
  bool asked;
  char subs[];
} join_wait;

/* After the welcome: only what is newer than the positions it gave. */
static bool newer(void *ud, const hb_msg *m) {
  const hb_pos *now = ud;
  const hb_pos *p = &now[m->chan.level < HB_SCOPE__COUNT ? m->chan.level : 0];
  return m->epoch != p->epoch || m->offset > p->offset;
}

static void on_joined(void *ctx, hb_join_result *r) {
  join_wait *jw = ctx;
  hb_conn *c = hb_conn_unhold(jw->c);
  if (c) {
    hb_peer *p = peer_of(hb_ws_of(c));
    if (r->err != HB_OK) {
      /* No positions, no welcome: the client tries again later. */
      hb_publish_unhold(c, NULL, NULL);
      hb_ws_close(&p->ws, HB_CLOSE_TRY_AGAIN_LATER, "the cluster (Redis) is not answering", false);
    } else {
      hb_strbuf out = HB_STRBUF_INIT;
      finish_enter(p, &jw->cl, jw->f.names, jw->f.len, jw->asked, r->now, r->st, r->replay, &out);
      size_t n;
      char *bytes = hb_strbuf_release(&out, &n);
      hb_conn_send_owned(c, bytes, n);
      hb_publish_unhold(c, newer, r->now);
      hb_conn_resume(c); /* what the client sent meanwhile, then the socket */
    }
  }
  hb_free(jw);
}

void hb_room_enter_later(hb_peer *p, const hb_conn_claims *cl, const char *subs, size_t subs_len,
                         const hb_pos *since, hb_strbuf *out) {
  hb_conn *c = conn_of(p);
  const hb_config *cfg = c->io->set->cfg;
  hb_broker *b = hb_publish_broker();
  join_wait *jw = hb_malloc(sizeof *jw + subs_len + 1);
  jw->c = c;
  jw->cl = *cl;
  jw->asked = since != NULL;
  memcpy(jw->subs, subs, subs_len);
  jw->subs[subs_len] = '\0';
  jw->f.names = jw->subs;
  jw->f.len = subs_len;
  /* Live deliveries wait until the replay and the welcome are out; the
   * client's first messages wait too (it may not speak before the welcome). */
  hb_publish_hold(c);
  subscribe_list(p, subs, subs_len);
  hb_conn_pause(c);
  hb_conn_hold(c);
  size_t n;
  char *head = hb_strbuf_release(out, &n); /* the 101 now */
  hb_conn_send_owned(c, head, n);
  hb_join_req req;
  memset(&req, 0, sizeof req);
  room_chans(cl, req.chans);
  req.live = subs_len > 0;
  req.has_since = since != NULL;
  if (since) memcpy(req.since, since, sizeof req.since);
  req.want = subs_len ? wanted : NULL;
  req.want_ud = &jw->f;
  req.max_replay = cfg->max_recover_messages;
  req.history_size = (uint32_t)cfg->history_size;
  b->ops->join(b, c->io, &req, on_joined, jw);
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

/* A subscribe's ack waits until this node delivers the room's channels
 * live (Redis: its SUBSCRIBE took effect); if that does not happen in time,
 * the name is taken back and the client told. */
static void on_live(void *ctx, hb_err err) {
  room_wait *w = ctx;
  hb_peer *p = wait_peer(w);
  if (p && err != HB_OK) {
    hb_sub *s = hb_index_find_sub(&p->subs, w->name, w->name_len);
    if (s) {
      hb_index_unsubscribe(hb_publish_index(conn_of(p)->io), s);
      p->nsubs--;
    }
    hb_error e;
    hb_error_set(&e, err, NULL, NULL);
    send_error_id(p, w->has_id ? w->id : NULL, w->id_len, &e);
  } else if (p) {
    send_ack_id(p, w->has_id, w->id, w->id_len);
  }
  hb_free(w);
}

static void do_subscribe(hb_peer *p, const hb_cmsg *m) {
  hb_error e;
  if (!hb_room_subscribe(p, m->event_name, m->event_name_len)) {
    hb_error_set(&e, HB_E_TOO_MANY_SUBSCRIPTIONS, "/eventName", "at most %zu event names per connection",
                 cfg_of(p)->max_subscriptions);
    send_error(p, m, &e);
    return;
  }
  hb_broker *b = hb_publish_broker();
  hb_conn *c = conn_of(p);
  if (b->ops->live && hb_conn_hold(c)) {
    hb_chan_key chans[HB_SCOPE__COUNT];
    for (int sc = 0; sc < HB_SCOPE__COUNT; sc++)
      hb_chan_key_make(&chans[sc], (hb_scope)sc, &p->room->key.org, &p->room->key.plugin, &p->room->key.event,
                       &p->room->key.session);
    room_wait *w = wait_new(p, m);
    w->name_len = (uint8_t)m->event_name_len;
    memcpy(w->name, m->event_name, m->event_name_len);
    if (!b->ops->live(b, c->io, chans, HB_SCOPE__COUNT, on_live, w)) return; /* answered later */
    hb_free(w);
    hb_conn_unhold(c);
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

/* The ack of a publish (with its id, offset and epoch), or its error. */
static void answer_publish(hb_peer *p, bool has_id, const char *id, size_t id_len, const hb_publish_result *r) {
  if (r->err != HB_OK) {
    hb_error e;
    hb_error_set(&e, r->err, NULL, NULL);
    send_error_id(p, has_id ? id : NULL, has_id ? id_len : 0, &e);
    return;
  }
  if (!r->replayed) hb_metric_inc(HB_M_PUBLISHES_WS);
  if (!has_id) return; /* no id, no ack (protocol.md) */
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_smsg_publish_ack(&sb, id, id_len, r->message_id, &r->pos);
  send_json(p, &sb);
}

static void on_published(void *ctx, const hb_publish_result *r) {
  room_wait *w = ctx;
  hb_peer *p = wait_peer(w);
  if (p) answer_publish(p, w->has_id, w->id, w->id_len, r);
  hb_free(w);
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
  if (!hb_conn_hold(c)) { /* thousands of publishes waiting for Redis on one connection */
    hb_error_set(&e, HB_E_BROKER_UNAVAILABLE, NULL, "too many publishes waiting for the cluster");
    send_error(p, m, &e);
    return;
  }
  room_wait *w = wait_new(p, m);
  hb_publish_result r;
  if (!hb_publish_start(c->io, &req, &r, on_published, w)) return; /* answered later */
  hb_conn_unhold(c);
  hb_free(w);
  answer_publish(p, m->has_id, m->id, m->id_len, &r);
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
  if (p->exp && (int64_t)time(NULL) > (int64_t)p->exp + HB_JWT_LEEWAY_S)
    hb_ws_close(ws, HB_CLOSE_UNAUTHORIZED, "token expired", false);
}

/* --- re-checks after a credential reload ----------------------------------- */

static void peer_ref(const hb_peer *p, hb_auth_conn_ref *r) {
  const hb_chan_key *k = &p->room->key;
  r->org = k->org;
  r->plugin = k->plugin;
  r->event = k->event;
  r->session = k->session;
  r->user_hash = p->user_hash;
  r->iat = p->iat;
  r->exp = p->exp;
  r->kid_hash = p->kid_hash;
}

size_t hb_room_recheck(hb_io *io, const hb_auth_disconnect *d, size_t nd) {
  int64_t now = (int64_t)time(NULL);
  size_t closed = 0;
  hb_list *it, *tmp;
  hb_list_foreach_safe(it, tmp, &io->conns) {
    hb_conn *c = hb_container_of(it, hb_conn, link);
    if (c->state != HB_CONN_OPEN || c->h != &hb_ws_conn_handler) continue;
    hb_peer *p = peer_of(hb_ws_of(c));
    if (!p->room || p->ws.closing) continue; /* upgraded but not in a room yet, or leaving */
    hb_auth_conn_ref r;
    peer_ref(p, &r);
    hb_close_code code = 0;
    const char *why = NULL;
    /* The reasons are the codes the SDK reports (protocol.md §4). */
    switch (hb_auth_conn_check(&r, now)) {
    case HB_OK: break;
    case HB_E_NOT_FOUND: code = HB_CLOSE_GONE, why = "plugin_deleted"; break;
    case HB_E_TOKEN_REVOKED: code = HB_CLOSE_TOKEN_REVOKED, why = "token_revoked"; break;
    case HB_E_TOKEN_EXPIRED: code = HB_CLOSE_UNAUTHORIZED, why = "token_expired"; break;
    default: code = HB_CLOSE_UNAUTHORIZED, why = "invalid_token"; break; /* its secret was retired */
    }
    for (size_t i = 0; !code && i < nd; i++) {
      if (!hb_auth_disconnect_matches(&d[i], &r)) continue;
      if (d[i].room) code = HB_CLOSE_ROOM_CLOSED, why = "room_closed";
      else code = HB_CLOSE_TOKEN_REVOKED, why = "user_disconnected";
    }
    if (!code) continue;
    hb_ws_close(&p->ws, code, why, true);
    closed++;
  }
  if (closed) hb_metric_add(HB_M_CONTROL_CLOSES, (long long)closed);
  return closed;
}

/* Leave every room now: the index must never point at a closed connection. */
static void room_on_close(hb_ws *ws) {
  hb_peer *p = peer_of(ws);
  hb_conn *c = conn_of(p);
  if (!p->room) return; /* upgraded but never joined */
  hb_publish_unhold(c, NULL, NULL); /* a join never finished: drop what it held */
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
