/* presence.c - members of session and event channels, coalesced deltas (presence.h). */
#include "hubbub/presence.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "hubbub/alloc.h"
#include "hubbub/clock.h"
#include "hubbub/hash.h"
#include "hubbub/limits.h"
#include "hubbub/log.h"
#include "hubbub/metrics.h"
#include "hubbub/publish.h"
#include "hubbub/smsg.h"

/*
 * A member of one channel. What holds it: `conns`, this node's connections
 * (of the user in the session, for a session member; in any session of the
 * event, for an event member), and `remote`, the other nodes that hold it
 * (hb_presence_apply). It is in the current state while held (either is
 * non-zero) and in the emitted state while `emitted`; it lives while either
 * is true or it waits on the channel's pending list, and is freed by the
 * tick that emits its leave.
 */
struct hb_presence_member {
  UT_hash_handle hh;                 /* in pchan.members, by user id */
  uint64_t seq;                      /* its position in the join order (while emitted) */
  struct hb_presence_member *up;     /* session member: the event member (valid while conns > 0) */
  struct hb_presence_member *pending_next;
  uint32_t conns;
  uint16_t remote;
  uint16_t info_len;
  uint8_t user_len;
  bool emitted : 1;                  /* in the emitted state */
  bool on_pending : 1;               /* on its channel's pending list */
  char bytes[];                      /* user id, then info */
};

typedef struct hb_presence_member member;

_Static_assert(HB_MAX_USER_ID_BYTES < 256, "member.user_len");
_Static_assert(HB_MAX_PRESENCE_INFO_BYTES < 65536, "member.info_len");

/* The emitted state in join order, for pages: appended when a join is
 * emitted, a tombstone (m NULL) when a leave is, compacted when half dead. */
typedef struct {
  uint64_t seq;
  member *m;
} slot;

typedef struct pchan {
  hb_chan_key key;
  member *members;     /* uthash head: current and emitted members */
  member *pending;     /* members whose state may differ from the emitted one, */
  member *pending_tail; /* in the order they changed (joins are listed, and paged, in that order) */
  uint64_t version;    /* deltas emitted */
  int64_t last_emit_ms;
  uint32_t held;       /* members in the current state */
  uint32_t emitted;    /* members in the emitted state: the count observers know */
  uint32_t observers;  /* this node's presence subscriptions */
  bool on_dirty;
  struct pchan *dirty_next;
  slot *order;
  uint32_t order_n, order_cap, order_dead;
  UT_hash_handle hh;
} pchan;

typedef struct {
  pthread_mutex_t mu;
  pchan *chans;  /* uthash head */
  pchan *dirty;  /* channels with pending members */
  hb_strbuf log; /* this node's holdings that changed, for the other nodes (hb_presence_apply's format) */
} shard;

/* Another node, as far as presence goes: the members it holds, and when it
 * was last heard from (its members leave when it stays silent for ttl). */
typedef struct rhold {
  member *m; /* the key: a member it holds (held, so never freed meanwhile) */
  hb_chan_key chan;
  UT_hash_handle hh;
} rhold;

typedef struct rnode {
  uint64_t id;
  int64_t seen_ms;
  rhold *held; /* uthash head, by member */
  size_t nheld;
  UT_hash_handle hh;
} rnode;

static shard shards[HB_PRESENCE_SHARDS];
static hb_presence_limits limits;
static hb_presence_hooks hooks;
/* Other nodes; taken before any shard lock, never after one. */
static pthread_mutex_t remote_mu = PTHREAD_MUTEX_INITIALIZER;
static rnode *rnodes;
static atomic_long nremote;
static atomic_uint_fast64_t next_seq;
static atomic_long ndirty, nchans, nheld, nobservers;
static atomic_bool resync_wanted; /* the next tick replicates everything this node holds */

static unsigned shard_of(const hb_chan_key *k) { return hb_chan_key_hash(k) % HB_PRESENCE_SHARDS; }

const char *hb_presence_topic(hb_scope scope, size_t *len) {
  static const char session[] = "$presence.session", event[] = "$presence.event";
  if (scope == HB_SCOPE_EVENT) {
    *len = sizeof event - 1;
    return event;
  }
  *len = sizeof session - 1;
  return session;
}

/* --- channels and members (shard lock held) ------------------------------- */

static pchan *chan_find(shard *s, const hb_chan_key *k) {
  pchan *c;
  HASH_FIND(hh, s->chans, k, sizeof *k, c);
  return c;
}

static pchan *chan_get(shard *s, const hb_chan_key *k) {
  pchan *c = chan_find(s, k);
  if (c) return c;
  c = hb_calloc(1, sizeof *c);
  c->key = *k;
  HASH_ADD(hh, s->chans, key, sizeof c->key, c);
  atomic_fetch_add(&nchans, 1);
  return c;
}

/* Forget a channel nobody is in, watches, or waits to hear about. */
static void chan_maybe_free(shard *s, pchan *c) {
  if (c->members || c->observers || c->on_dirty) return;
  HASH_DELETE(hh, s->chans, c);
  hb_free(c->order);
  hb_free(c);
  atomic_fetch_sub(&nchans, 1);
}

static member *member_find(pchan *c, const char *user, size_t len) {
  member *m;
  HASH_FIND(hh, c->members, user, len, m);
  return m;
}

static member *member_get(pchan *c, const char *user, size_t len, const char *info, size_t info_len) {
  member *m = member_find(c, user, len);
  if (m) return m;
  m = hb_calloc(1, sizeof *m + len + info_len);
  m->user_len = (uint8_t)len;
  m->info_len = (uint16_t)info_len;
  memcpy(m->bytes, user, len);
  if (info_len) memcpy(m->bytes + len, info, info_len);
  HASH_ADD_KEYPTR(hh, c->members, m->bytes, len, m);
  return m;
}

static void mark_pending(shard *s, pchan *c, member *m) {
  if (!m->on_pending) {
    m->on_pending = true;
    m->pending_next = NULL;
    if (c->pending_tail) c->pending_tail->pending_next = m;
    else c->pending = m;
    c->pending_tail = m;
  }
  if (!c->on_dirty) {
    c->on_dirty = true;
    c->dirty_next = s->dirty;
    s->dirty = c;
    atomic_fetch_add(&ndirty, 1);
  }
}

static bool held(const member *m) { return m->conns || m->remote; }

/* One record of a batch (hb_presence_apply): J or L, the channel key, the
 * user id with its length (1 byte), the info with its length (2 bytes, little
 * endian; none for a leave). */
static void put_record(hb_strbuf *out, const hb_chan_key *chan, const member *m, bool join) {
  uint16_t info_len = join ? m->info_len : 0;
  hb_strbuf_addch(out, join ? 'J' : 'L');
  hb_strbuf_add(out, chan, sizeof *chan);
  hb_strbuf_addch(out, (char)m->user_len);
  hb_strbuf_add(out, m->bytes, m->user_len);
  hb_strbuf_addch(out, (char)(info_len & 0xff));
  hb_strbuf_addch(out, (char)(info_len >> 8));
  hb_strbuf_add(out, m->bytes + m->user_len, info_len);
}

/* This node's holding of `m` changed: the other nodes must hear of it. */
static void log_change(shard *s, const pchan *c, const member *m, bool join) {
  if (hooks.replicate) put_record(&s->log, &c->key, m, join); /* one node: nobody to tell */
}

/* `m` was not held and is now, or the other way round. */
static void held_changed(shard *s, pchan *c, member *m) {
  if (held(m)) {
    c->held++;
    atomic_fetch_add(&nheld, 1);
  } else {
    c->held--;
    atomic_fetch_sub(&nheld, 1);
  }
  mark_pending(s, c, m);
}

/* One more connection of this node holds `m`. */
static void hold(shard *s, pchan *c, member *m) {
  bool was = held(m);
  if (m->conns++ == 0) log_change(s, c, m, true);
  if (!was) held_changed(s, c, m);
}

/* One connection fewer. */
static void release(shard *s, pchan *c, member *m) {
  if (--m->conns == 0) log_change(s, c, m, false);
  if (!held(m)) held_changed(s, c, m);
}

/* --- the join order ------------------------------------------------------- */

/* The first slot whose seq is greater than `after`. */
static uint32_t order_after(const pchan *c, uint64_t after) {
  uint32_t lo = 0, hi = c->order_n;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (c->order[mid].seq <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

static void order_append(pchan *c, member *m) {
  if (c->order_n == c->order_cap) {
    c->order_cap = c->order_cap ? c->order_cap * 2 : 8;
    c->order = hb_realloc(c->order, c->order_cap * sizeof *c->order);
  }
  c->order[c->order_n++] = (slot){m->seq, m};
}

static void order_compact(pchan *c) {
  uint32_t k = 0;
  for (uint32_t i = 0; i < c->order_n; i++)
    if (c->order[i].m) c->order[k++] = c->order[i];
  c->order_n = k;
  c->order_dead = 0;
  if (c->order_cap > 8 && k < c->order_cap / 4) {
    c->order_cap = k > 8 ? k * 2 : 8;
    c->order = hb_realloc(c->order, c->order_cap * sizeof *c->order);
  }
}

static void order_remove(pchan *c, member *m) {
  uint32_t i = order_after(c, m->seq - 1);
  if (i < c->order_n && c->order[i].m == m) {
    c->order[i].m = NULL;
    c->order_dead++;
  }
  /* Tombstones cost a page a skip each: never more than the living. */
  if (c->order_dead > 32 && c->order_dead > c->order_n / 2) order_compact(c);
}

/* --- joining and leaving -------------------------------------------------- */

static void event_key_of(const hb_chan_key *session, hb_chan_key *ev) {
  hb_chan_key_make(ev, HB_SCOPE_EVENT, &session->org, &session->plugin, &session->event, &session->session);
}

/* Lock the shards of a session channel and its event channel, ascending. */
static void lock_pair(unsigned a, unsigned b) {
  if (a > b) {
    unsigned t = a;
    a = b;
    b = t;
  }
  pthread_mutex_lock(&shards[a].mu);
  if (b != a) pthread_mutex_lock(&shards[b].mu);
}

static void unlock_pair(unsigned a, unsigned b) {
  pthread_mutex_unlock(&shards[a].mu);
  if (b != a) pthread_mutex_unlock(&shards[b].mu);
}

hb_presence_member *hb_presence_join(const hb_chan_key *session, const char *user, size_t user_len,
                                     const char *info, size_t info_len) {
  if (user_len > HB_MAX_USER_ID_BYTES) user_len = HB_MAX_USER_ID_BYTES; /* checked with the token */
  if (info_len > HB_MAX_PRESENCE_INFO_BYTES) info_len = 0;
  hb_chan_key ev;
  event_key_of(session, &ev);
  unsigned ss = shard_of(session), es = shard_of(&ev);
  lock_pair(ss, es);
  pchan *sc = chan_get(&shards[ss], session);
  member *m = member_get(sc, user, user_len, info, info_len);
  pchan *ec = chan_get(&shards[es], &ev);
  /* `up` is valid only while the session member is held: once released,
   * the event member may be freed by a tick before this one is. */
  if (!m->conns) m->up = member_get(ec, user, user_len, info, info_len);
  hold(&shards[ss], sc, m);
  hold(&shards[es], ec, m->up);
  unlock_pair(ss, es);
  return m;
}

void hb_presence_leave(const hb_chan_key *session, hb_presence_member *m) {
  if (!m) return;
  hb_chan_key ev;
  event_key_of(session, &ev);
  unsigned ss = shard_of(session), es = shard_of(&ev);
  lock_pair(ss, es);
  pchan *sc = chan_find(&shards[ss], session), *ec = chan_find(&shards[es], &ev);
  /* Both exist: a held member keeps its channels. */
  release(&shards[es], ec, m->up);
  release(&shards[ss], sc, m);
  if (!m->conns) m->up = NULL;
  unlock_pair(ss, es);
}

/* --- pages ------------------------------------------------------------------ */

void hb_presence_lock(const hb_chan_key *chan) { pthread_mutex_lock(&shards[shard_of(chan)].mu); }
void hb_presence_unlock(const hb_chan_key *chan) { pthread_mutex_unlock(&shards[shard_of(chan)].mu); }

void hb_presence_page_locked(const hb_chan_key *chan, uint64_t after, uint32_t limit, hb_strbuf *out,
                             hb_presence_page *pg) {
  memset(pg, 0, sizeof *pg);
  pchan *c = chan_find(&shards[shard_of(chan)], chan);
  hb_strbuf_addch(out, '[');
  if (c) {
    pg->version = c->version;
    pg->count = c->emitted;
    for (uint32_t i = order_after(c, after); i < c->order_n; i++) {
      member *m = c->order[i].m;
      if (!m) continue;
      if (pg->listed == limit) {
        pg->truncated = true;
        break;
      }
      if (pg->listed++) hb_strbuf_addch(out, ',');
      hb_smsg_presence_member(out, m->bytes, m->user_len, m->bytes + m->user_len, m->info_len);
      pg->cursor = m->seq;
    }
  }
  hb_strbuf_addch(out, ']');
}

void hb_presence_page_get(const hb_chan_key *chan, uint64_t after, uint32_t limit, hb_strbuf *members,
                          hb_presence_page *pg) {
  hb_presence_lock(chan);
  hb_presence_page_locked(chan, after, limit, members, pg);
  hb_presence_unlock(chan);
}

void hb_presence_observe_locked(const hb_chan_key *chan, int delta) {
  shard *s = &shards[shard_of(chan)];
  pchan *c = delta > 0 ? chan_get(s, chan) : chan_find(s, chan);
  if (!c) return;
  if (delta > 0) {
    c->observers++;
    atomic_fetch_add(&nobservers, 1);
  } else if (c->observers > 0) {
    c->observers--;
    atomic_fetch_sub(&nobservers, 1);
    chan_maybe_free(s, c);
  }
}

/* --- deltas ----------------------------------------------------------------- */

/* Scratch lists for one emission (the tick runs on one thread). */
typedef struct {
  member **v;
  size_t n, cap;
} mvec;

static void mvec_push(mvec *mv, member *m) {
  if (mv->n == mv->cap) {
    mv->cap = mv->cap ? mv->cap * 2 : 64;
    mv->v = hb_realloc(mv->v, mv->cap * sizeof *mv->v);
  }
  mv->v[mv->n++] = m;
}

typedef struct {
  mvec joins, leaves, gone;
  hb_strbuf a, b, frame;
} scratch;

static void member_free(pchan *c, member *m) {
  HASH_DELETE(hh, c->members, m);
  hb_free(m);
}

/* Deliver the delta of `c` to its observers on every I/O thread, as one
 * shared frame (under the channel's lock: see presence.h). */
static void send_delta(pchan *c, scratch *sc) {
  uint32_t cap = limits.list_max;
  /* List joins and leaves alike when both are many: up to half each, the
   * rest to whichever has more. */
  size_t ln = sc->leaves.n < cap / 2 ? sc->leaves.n : cap / 2;
  size_t jn = sc->joins.n < cap - ln ? sc->joins.n : cap - ln;
  if (ln < sc->leaves.n && jn + ln < cap) ln = sc->leaves.n < cap - jn ? sc->leaves.n : cap - jn;
  hb_strbuf_reset(&sc->a);
  hb_strbuf_reset(&sc->b);
  hb_strbuf_reset(&sc->frame);
  hb_strbuf_addch(&sc->a, '[');
  for (size_t i = 0; i < jn; i++) {
    member *m = sc->joins.v[i];
    if (i) hb_strbuf_addch(&sc->a, ',');
    hb_smsg_presence_member(&sc->a, m->bytes, m->user_len, m->bytes + m->user_len, m->info_len);
  }
  hb_strbuf_addch(&sc->a, ']');
  hb_strbuf_addch(&sc->b, '[');
  for (size_t i = 0; i < ln; i++) {
    member *m = sc->leaves.v[i];
    if (i) hb_strbuf_addch(&sc->b, ',');
    hb_strbuf_add_json_str(&sc->b, m->bytes, m->user_len);
  }
  hb_strbuf_addch(&sc->b, ']');
  hb_smsg_presence_delta(&sc->frame, (hb_scope)c->key.level, c->version, c->emitted, sc->a.buf, sc->a.len, sc->b.buf,
                         sc->b.len, jn < sc->joins.n || ln < sc->leaves.n);
  size_t tlen;
  const char *topic = hb_presence_topic((hb_scope)c->key.level, &tlen);
  hb_msg *msg = hb_msg_new(&c->key, topic, tlen, sc->frame.buf, sc->frame.len);
  hooks.deliver(msg);
  hb_msg_unref(msg);
  hb_metric_inc(HB_M_PRESENCE_MESSAGES);
}

/* Make the emitted state of `c` its current one; tell its observers. */
static bool emit(shard *s, pchan *c, int64_t now_ms, scratch *sc) {
  sc->joins.n = sc->leaves.n = sc->gone.n = 0;
  for (member *m = c->pending, *next; m; m = next) {
    next = m->pending_next;
    m->pending_next = NULL;
    m->on_pending = false;
    bool is_held = held(m);
    if (is_held && !m->emitted) {
      m->emitted = true;
      m->seq = atomic_fetch_add(&next_seq, 1);
      order_append(c, m);
      c->emitted++;
      mvec_push(&sc->joins, m);
    } else if (!is_held && m->emitted) {
      m->emitted = false;
      order_remove(c, m);
      c->emitted--;
      mvec_push(&sc->leaves, m);
      mvec_push(&sc->gone, m);
    } else if (!is_held) {
      mvec_push(&sc->gone, m); /* came and went within one interval: nobody heard */
    }
  }
  c->pending = c->pending_tail = NULL;
  bool changed = sc->joins.n || sc->leaves.n;
  if (changed) {
    c->version++;
    c->last_emit_ms = now_ms;
    if (c->observers) send_delta(c, sc);
  }
  for (size_t i = 0; i < sc->gone.n; i++) member_free(c, sc->gone.v[i]);
  return changed && c->observers;
}

/* --- other nodes --------------------------------------------------------------- */

static rnode *rnode_get(uint64_t id, int64_t now_ms) {
  rnode *n;
  HASH_FIND(hh, rnodes, &id, sizeof id, n);
  if (!n) {
    n = hb_calloc(1, sizeof *n);
    n->id = id;
    HASH_ADD(hh, rnodes, id, sizeof n->id, n);
    atomic_fetch_add(&nremote, 1);
  }
  n->seen_ms = now_ms;
  return n;
}

/* Everything node `n` held leaves; the node is forgotten (remote_mu held). */
static void rnode_drop(rnode *n) {
  rhold *h, *tmp;
  HASH_ITER(hh, n->held, h, tmp) {
    shard *s = &shards[shard_of(&h->chan)];
    pthread_mutex_lock(&s->mu);
    pchan *c = chan_find(s, &h->chan);
    h->m->remote--;
    if (!held(h->m)) held_changed(s, c, h->m);
    pthread_mutex_unlock(&s->mu);
    HASH_DELETE(hh, n->held, h);
    hb_free(h);
  }
  HASH_DELETE(hh, rnodes, n);
  hb_free(n);
  atomic_fetch_sub(&nremote, 1);
}

/* One record of a batch: J|L, channel key, user, info. */
typedef struct {
  bool join;
  hb_chan_key chan;
  const char *user, *info;
  size_t user_len, info_len;
} record;

static bool record_next(const char *p, size_t len, size_t *pos, record *r) {
  size_t i = *pos;
  if (len - i < 1 + sizeof r->chan + 1) return false;
  if (p[i] != 'J' && p[i] != 'L') return false;
  r->join = p[i++] == 'J';
  memcpy(&r->chan, p + i, sizeof r->chan);
  i += sizeof r->chan;
  r->user_len = (uint8_t)p[i++];
  if (!hb_presence_scope_ok((hb_scope)r->chan.level) || r->user_len == 0 || r->user_len > HB_MAX_USER_ID_BYTES ||
      len - i < r->user_len + 2)
    return false;
  r->user = p + i;
  i += r->user_len;
  r->info_len = (size_t)(uint8_t)p[i] | (size_t)(uint8_t)p[i + 1] << 8;
  i += 2;
  if (r->info_len > HB_MAX_PRESENCE_INFO_BYTES || len - i < r->info_len) return false;
  r->info = p + i;
  /* compact JSON of an object, as the other node's token had it */
  if (r->info_len && (r->info_len < 2 || r->info[0] != '{' || r->info[r->info_len - 1] != '}')) return false;
  *pos = i + r->info_len;
  return true;
}

int hb_presence_apply(uint64_t node, const void *batch, size_t len, int64_t now_ms) {
  const char *p = batch;
  size_t pos = 0;
  record r;
  int rc = 0;
  pthread_mutex_lock(&remote_mu);
  rnode *n = rnode_get(node, now_ms);
  while (pos < len) {
    if (!record_next(p, len, &pos, &r)) {
      rc = -1; /* what came before applies; the rest cannot be read */
      break;
    }
    shard *s = &shards[shard_of(&r.chan)];
    pthread_mutex_lock(&s->mu);
    pchan *c = chan_get(s, &r.chan);
    member *m = r.join ? member_get(c, r.user, r.user_len, r.info, r.info_len) : member_find(c, r.user, r.user_len);
    rhold *h = NULL;
    if (m) HASH_FIND(hh, n->held, &m, sizeof m, h);
    if (r.join && !h) {
      h = hb_calloc(1, sizeof *h);
      h->m = m;
      h->chan = r.chan;
      HASH_ADD(hh, n->held, m, sizeof h->m, h);
      n->nheld++;
      bool was = held(m);
      m->remote++;
      if (!was) held_changed(s, c, m);
    } else if (!r.join && h) {
      HASH_DELETE(hh, n->held, h);
      hb_free(h);
      n->nheld--;
      m->remote--;
      if (!held(m)) held_changed(s, c, m);
    }
    chan_maybe_free(s, c);
    pthread_mutex_unlock(&s->mu);
  }
  pthread_mutex_unlock(&remote_mu);
  return rc;
}

void hb_presence_heartbeat(uint64_t node, int64_t now_ms) {
  pthread_mutex_lock(&remote_mu);
  rnode_get(node, now_ms);
  pthread_mutex_unlock(&remote_mu);
}

bool hb_presence_node_known(uint64_t node) {
  pthread_mutex_lock(&remote_mu);
  rnode *n;
  HASH_FIND(hh, rnodes, &node, sizeof node, n);
  pthread_mutex_unlock(&remote_mu);
  return n != NULL;
}

void hb_presence_drop_node(uint64_t node) {
  pthread_mutex_lock(&remote_mu);
  rnode *n;
  HASH_FIND(hh, rnodes, &node, sizeof node, n);
  if (n) rnode_drop(n);
  pthread_mutex_unlock(&remote_mu);
}

/* Nodes silent for longer than the TTL: dead, or cut off from the others. */
static void expire_nodes(int64_t now_ms) {
  if (!limits.ttl_ms || atomic_load(&nremote) == 0) return;
  pthread_mutex_lock(&remote_mu);
  rnode *n, *tmp;
  HASH_ITER(hh, rnodes, n, tmp) {
    if (now_ms - n->seen_ms <= limits.ttl_ms) continue;
    hb_warn("presence: node %016llx silent for over %lld s: its %zu memberships leave",
            (unsigned long long)n->id, (long long)(limits.ttl_ms / 1000), n->nheld);
    hb_metric_inc(HB_M_PRESENCE_NODES_EXPIRED);
    rnode_drop(n);
  }
  pthread_mutex_unlock(&remote_mu);
}

/* What this node holds in shard `s` (its lock held), as joins. */
static void dump_locked(shard *s, hb_strbuf *out) {
  pchan *c, *ct;
  HASH_ITER(hh, s->chans, c, ct) {
    member *m, *mt;
    HASH_ITER(hh, c->members, m, mt) if (m->conns) put_record(out, &c->key, m, true);
  }
}

void hb_presence_dump(hb_strbuf *out) {
  for (int i = 0; i < HB_PRESENCE_SHARDS; i++) {
    shard *s = &shards[i];
    pthread_mutex_lock(&s->mu);
    dump_locked(s, out);
    pthread_mutex_unlock(&s->mu);
  }
}

void hb_presence_resync(void) { atomic_store(&resync_wanted, true); }

/* The length of the record at p (written by put_record: well formed). */
static size_t record_len(const char *p) {
  size_t user_len = (uint8_t)p[1 + sizeof(hb_chan_key)];
  const char *il = p + 1 + sizeof(hb_chan_key) + 1 + user_len;
  return 1 + sizeof(hb_chan_key) + 1 + user_len + 2 + ((size_t)(uint8_t)il[0] | (size_t)(uint8_t)il[1] << 8);
}

/* Hand `len` bytes of records to the replicate hook in pieces of at most
 * HB_PRESENCE_REPLICATE_CHUNK_BYTES (whole records), the first one flagged
 * `full` for a resync; a resync of nothing is one empty piece. */
static void replicate_chunks(const char *p, size_t len, bool full) {
  size_t start = 0, pos = 0;
  while (pos < len) {
    size_t n = record_len(p + pos);
    if (pos > start && pos - start + n > HB_PRESENCE_REPLICATE_CHUNK_BYTES) {
      hooks.replicate(hooks.ud, p + start, pos - start, full);
      full = false;
      start = pos;
    }
    pos += n;
  }
  if (pos > start || full) hooks.replicate(hooks.ud, p + start, pos - start, full);
}

/* The tick runs on one thread (the main thread's timer). */
static scratch sc;

size_t hb_presence_tick(int64_t now_ms) {
  expire_nodes(now_ms);
  if (hooks.replicate) {
    /* This node's changes, to the other nodes, before its own deltas; or,
     * when a resync was asked for, everything it holds. Each shard's log is
     * taken (or its holdings written) under the shard's lock, so what this
     * node says is one ordered story: a change is either in the resync or
     * in a later batch, never in an earlier one that arrives after it. */
    bool full = atomic_exchange(&resync_wanted, false);
    hb_strbuf_reset(&sc.frame);
    for (int i = 0; i < HB_PRESENCE_SHARDS; i++) {
      shard *s = &shards[i];
      pthread_mutex_lock(&s->mu);
      if (full) dump_locked(s, &sc.frame);
      else if (s->log.len) hb_strbuf_add(&sc.frame, s->log.buf, s->log.len);
      hb_strbuf_reset(&s->log);
      pthread_mutex_unlock(&s->mu);
    }
    replicate_chunks(sc.frame.buf, sc.frame.len, full);
  }
  if (atomic_load(&ndirty) == 0) return 0;
  size_t sent = 0;
  for (int i = 0; i < HB_PRESENCE_SHARDS; i++) {
    shard *s = &shards[i];
    pthread_mutex_lock(&s->mu);
    pchan *keep = NULL;
    for (pchan *c = s->dirty, *next; c; c = next) {
      next = c->dirty_next;
      /* At most one delta per interval; one after a quiet spell goes now. A
       * channel nobody observes sends nothing, so it settles at every tick:
       * pages (the HTTP API) are current within a tick, and the members who
       * left are freed then, not an interval later. */
      if (c->observers && c->version && now_ms - c->last_emit_ms < limits.interval_ms) {
        c->dirty_next = keep;
        keep = c;
        continue;
      }
      c->on_dirty = false;
      c->dirty_next = NULL;
      atomic_fetch_sub(&ndirty, 1);
      if (emit(s, c, now_ms, &sc)) sent++;
      chan_maybe_free(s, c);
    }
    s->dirty = keep;
    pthread_mutex_unlock(&s->mu);
  }
  return sent;
}

/* --- setup and teardown ------------------------------------------------------ */

static long long gauge(void *ud) { return atomic_load((atomic_long *)ud); }

void hb_presence_stats_get(hb_presence_stats *st) {
  st->channels = atomic_load(&nchans);
  st->members = atomic_load(&nheld);
  st->observers = atomic_load(&nobservers);
  st->nodes = atomic_load(&nremote);
}

void hb_presence_init(const hb_presence_limits *lim, const hb_presence_hooks *h) {
  limits = *lim;
  memset(&hooks, 0, sizeof hooks);
  if (h) hooks = *h;
  if (!hooks.deliver) hooks.deliver = hb_publish_deliver_all;
  if (limits.list_max == 0) limits.list_max = HB_DEFAULT_PRESENCE_LIST_MAX;
  for (int i = 0; i < HB_PRESENCE_SHARDS; i++) {
    memset(&shards[i], 0, sizeof shards[i]);
    pthread_mutex_init(&shards[i].mu, NULL);
  }
  /* Positions grow across restarts (from the clock), so a page cursor kept
   * over a restart never points into the new order's middle. */
  atomic_store(&next_seq, (uint64_t)hb_wall_ms() * 1000);
  atomic_store(&ndirty, 0);
  atomic_store(&nchans, 0);
  atomic_store(&nheld, 0);
  atomic_store(&nobservers, 0);
  atomic_store(&nremote, 0);
  atomic_store(&resync_wanted, false);
  hb_metrics_gauge("presence_channels", "Session and event channels with members or presence observers.", gauge,
                   &nchans);
  hb_metrics_gauge("presence_members", "Members present (a user counts once per channel), over all channels.",
                   gauge, &nheld);
  hb_metrics_gauge("presence_observers", "Presence subscriptions of this node's connections.", gauge, &nobservers);
  hb_metrics_gauge("presence_nodes", "Other nodes whose members this node counts (several nodes).", gauge, &nremote);
}

void hb_presence_shutdown(void) {
  pthread_mutex_lock(&remote_mu);
  while (rnodes) rnode_drop(rnodes); /* their members leave with them */
  pthread_mutex_unlock(&remote_mu);
  long still = atomic_load(&nheld);
  if (still) hb_warn("presence: %ld members still held at shutdown (a connection did not leave)", still);
  for (int i = 0; i < HB_PRESENCE_SHARDS; i++) {
    shard *s = &shards[i];
    pchan *c, *ct;
    HASH_ITER(hh, s->chans, c, ct) {
      member *m, *mt;
      HASH_ITER(hh, c->members, m, mt) member_free(c, m);
      HASH_DELETE(hh, s->chans, c);
      hb_free(c->order);
      hb_free(c);
    }
    s->dirty = NULL;
    hb_strbuf_free(&s->log);
    pthread_mutex_destroy(&s->mu);
  }
  hb_free(sc.joins.v);
  hb_free(sc.leaves.v);
  hb_free(sc.gone.v);
  hb_strbuf_free(&sc.a);
  hb_strbuf_free(&sc.b);
  hb_strbuf_free(&sc.frame);
  memset(&sc, 0, sizeof sc);
  atomic_store(&ndirty, 0);
  atomic_store(&nchans, 0);
  atomic_store(&nheld, 0);
  atomic_store(&nobservers, 0);
}
