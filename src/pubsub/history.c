/* history.c - channel positions and bounded history in this process (history.h). */
#include "hubbub/history.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <string.h>

#include "hubbub/alloc.h"
#include "hubbub/clock.h"
#include "hubbub/hash.h"
#include "hubbub/historydb.h"
#include "hubbub/limits.h"
#include "hubbub/log.h"
#include "hubbub/metrics.h"

typedef struct entry {
  hb_chan_key key;
  uint64_t epoch;
  uint64_t last;     /* the last offset given */
  hb_msg **ring;     /* the newest `count` messages, oldest at ring[head]; NULL until the first */
  uint32_t head, count;
  uint32_t unsaved;  /* the newest this many in the ring are not in the database yet */
  bool meta_dirty;   /* epoch or last changed since the last flush */
  bool on_dirty;     /* on its shard's dirty list */
  int64_t used_ms;   /* last publish or join: the least recently used go first */
  struct entry *dirty_next;
  UT_hash_handle hh;
} entry;

typedef struct {
  pthread_mutex_t mu;
  entry *entries; /* uthash head */
  entry *dirty;   /* entries with something to save */
  hb_chan_key *dropped; /* entries dropped since the last flush: delete their rows */
  size_t ndropped, dropped_cap;
} shard;

static shard shards[HB_HISTORY_SHARDS];
static hb_history_limits limits;
static hb_historydb *db;
static atomic_long nentries;

static uint64_t new_epoch(void) {
  uint64_t e = 0;
  while (e == 0)
    if (RAND_bytes((unsigned char *)&e, sizeof e) != 1) e = (uint64_t)hb_wall_ms() ^ 0x9e3779b97f4a7c15ull;
  return e;
}

static unsigned shard_of(const hb_chan_key *k) { return hb_chan_key_hash(k) % HB_HISTORY_SHARDS; }

const hb_history_limits *hb_history_limits_get(void) { return &limits; }

const char *hb_history_status_name(hb_history_status s) {
  switch (s) {
  case HB_HISTORY_OK: return "ok";
  case HB_HISTORY_EPOCH_CHANGED: return "epoch_changed";
  case HB_HISTORY_TRIMMED: return "trimmed";
  case HB_HISTORY_TOO_MANY: return "too_many";
  case HB_HISTORY_AHEAD: return "unknown_position";
  }
  return "unknown";
}

void hb_msgvec_push(hb_msgvec *mv, hb_msg *m) {
  if (mv->n == mv->cap) {
    mv->cap = mv->cap ? mv->cap * 2 : 16;
    mv->v = hb_realloc(mv->v, mv->cap * sizeof *mv->v);
  }
  hb_msg_ref(m);
  mv->v[mv->n++] = m;
}

void hb_msgvec_free(hb_msgvec *mv) {
  for (size_t i = 0; i < mv->n; i++) hb_msg_unref(mv->v[i]);
  hb_free(mv->v);
  mv->v = NULL;
  mv->n = mv->cap = 0;
}

/* --- entries (shard lock held) --------------------------------------------- */

static void mark_dirty(shard *s, entry *e) {
  if (!db || e->on_dirty) return;
  e->on_dirty = true;
  e->dirty_next = s->dirty;
  s->dirty = e;
}

static entry *find(shard *s, const hb_chan_key *k) {
  entry *e;
  HASH_FIND(hh, s->entries, k, sizeof *k, e);
  return e;
}

static entry *get(shard *s, const hb_chan_key *k) {
  entry *e = find(s, k);
  if (e) return e;
  e = hb_calloc(1, sizeof *e);
  e->key = *k;
  e->epoch = new_epoch();
  e->meta_dirty = true;
  HASH_ADD(hh, s->entries, key, sizeof e->key, e);
  atomic_fetch_add(&nentries, 1);
  mark_dirty(s, e);
  return e;
}

static hb_msg *ring_at(const entry *e, uint32_t i) { return e->ring[(e->head + i) % limits.size]; }

static void ring_pop(entry *e) {
  hb_msg_unref(e->ring[e->head]);
  e->head = (e->head + 1) % limits.size;
  e->count--;
  if (e->unsaved > e->count) e->unsaved = e->count;
}

static void ring_push(entry *e, hb_msg *m) {
  if (!e->ring) e->ring = hb_calloc(limits.size, sizeof *e->ring);
  if (e->count == limits.size) ring_pop(e);
  hb_msg_ref(m);
  e->ring[(e->head + e->count) % limits.size] = m;
  e->count++;
  e->unsaved++;
}

static void drop_expired(entry *e, int64_t min_ms) {
  while (e->count && ring_at(e, 0)->sent_ms < min_ms) ring_pop(e);
}

static void entry_free(entry *e) {
  while (e->count) ring_pop(e);
  hb_free(e->ring);
  hb_free(e);
}

/* --- publishing ----------------------------------------------------------- */

hb_msg *hb_history_append(const hb_chan_key *chan, hb_history_build_fn build, void *build_ud,
                          hb_history_deliver_fn deliver, void *deliver_ud) {
  shard *s = &shards[shard_of(chan)];
  pthread_mutex_lock(&s->mu);
  entry *e = get(s, chan);
  hb_pos pos = {e->epoch, ++e->last};
  hb_msg *m = build(build_ud, pos);
  m->epoch = pos.epoch;
  m->offset = pos.offset;
  e->used_ms = m->sent_ms;
  e->meta_dirty = true;
  if (limits.size) ring_push(e, m);
  mark_dirty(s, e);
  deliver(deliver_ud, m);
  pthread_mutex_unlock(&s->mu);
  return m;
}

/* --- joining -------------------------------------------------------------- */

/* The distinct shards of n channels, ascending: the one locking order. */
static int shard_set(const hb_chan_key *chans, int n, unsigned *out) {
  int k = 0;
  for (int i = 0; i < n; i++) {
    unsigned sh = shard_of(&chans[i]);
    int j = k;
    while (j > 0 && out[j - 1] > sh) j--;
    if (j > 0 && out[j - 1] == sh) continue;
    memmove(out + j + 1, out + j, (size_t)(k - j) * sizeof *out);
    out[j] = sh;
    k++;
  }
  return k;
}

#define MAX_LOCKED 8

void hb_history_lock(const hb_chan_key *chans, int n) {
  unsigned set[MAX_LOCKED];
  int k = shard_set(chans, n < MAX_LOCKED ? n : MAX_LOCKED, set);
  for (int i = 0; i < k; i++) pthread_mutex_lock(&shards[set[i]].mu);
}

void hb_history_unlock(const hb_chan_key *chans, int n) {
  unsigned set[MAX_LOCKED];
  int k = shard_set(chans, n < MAX_LOCKED ? n : MAX_LOCKED, set);
  for (int i = k - 1; i >= 0; i--) pthread_mutex_unlock(&shards[set[i]].mu);
}

hb_pos hb_history_position_locked(const hb_chan_key *chan) {
  shard *s = &shards[shard_of(chan)];
  entry *e = get(s, chan);
  e->used_ms = hb_wall_ms();
  return (hb_pos){e->epoch, e->last};
}

hb_history_status hb_history_read_locked(const hb_chan_key *chan, hb_pos since,
                                         bool (*want)(void *ud, const hb_msg *m), void *want_ud,
                                         size_t max, hb_msgvec *out) {
  shard *s = &shards[shard_of(chan)];
  entry *e = get(s, chan);
  if (since.epoch != e->epoch) return HB_HISTORY_EPOCH_CHANGED;
  if (since.offset > e->last) return HB_HISTORY_AHEAD;
  if (since.offset == e->last) return HB_HISTORY_OK; /* nothing missed */
  drop_expired(e, hb_wall_ms() - limits.ttl_ms);
  /* Every message after `since` must still be here: the oldest kept is
   * since + 1 or older. */
  if (e->count == 0 || ring_at(e, 0)->offset > since.offset + 1) return HB_HISTORY_TRIMMED;
  size_t first = out->n;
  for (uint32_t i = 0; i < e->count; i++) {
    hb_msg *m = ring_at(e, i);
    if (m->offset <= since.offset || (want && !want(want_ud, m))) continue;
    if (out->n - first >= max) {
      while (out->n > first) hb_msg_unref(out->v[--out->n]);
      return HB_HISTORY_TOO_MANY;
    }
    hb_msgvec_push(out, m);
  }
  return HB_HISTORY_OK;
}

void hb_history_page(const hb_chan_key *chan, uint64_t after, bool (*want)(void *ud, const hb_msg *m),
                     void *want_ud, size_t limit, hb_msgvec *out, hb_pos *now, uint64_t *first_kept,
                     bool *more) {
  shard *s = &shards[shard_of(chan)];
  pthread_mutex_lock(&s->mu);
  entry *e = get(s, chan);
  drop_expired(e, hb_wall_ms() - limits.ttl_ms);
  *now = (hb_pos){e->epoch, e->last};
  *first_kept = e->count ? ring_at(e, 0)->offset : 0;
  *more = false;
  for (uint32_t i = 0; i < e->count; i++) {
    hb_msg *m = ring_at(e, i);
    if (m->offset <= after || (want && !want(want_ud, m))) continue;
    if (out->n >= limit) {
      *more = true;
      break;
    }
    hb_msgvec_push(out, m);
  }
  pthread_mutex_unlock(&s->mu);
}

/* --- upkeep --------------------------------------------------------------- */

static void remember_dropped(shard *s, const hb_chan_key *k) {
  if (!db) return;
  if (s->ndropped == s->dropped_cap) {
    s->dropped_cap = s->dropped_cap ? s->dropped_cap * 2 : 16;
    s->dropped = hb_realloc(s->dropped, s->dropped_cap * sizeof *s->dropped);
  }
  s->dropped[s->ndropped++] = *k;
}

static void unlink_dirty(shard *s, entry *e) {
  for (entry **p = &s->dirty; *p; p = &(*p)->dirty_next)
    if (*p == e) {
      *p = e->dirty_next;
      break;
    }
  e->on_dirty = false;
}

void hb_history_sweep(int64_t now_ms) {
  int64_t min_ms = now_ms - limits.ttl_ms;
  for (int i = 0; i < HB_HISTORY_SHARDS; i++) {
    shard *s = &shards[i];
    pthread_mutex_lock(&s->mu);
    entry *e, *tmp;
    HASH_ITER(hh, s->entries, e, tmp) {
      drop_expired(e, min_ms);
      /* A channel with nothing kept and nobody joining or publishing for
       * the TTL and a grace beyond it is forgotten: a client away that long
       * gets recovered:false (its epoch is no longer known), which it would
       * mostly get anyway, and memory follows activity. */
      if (e->count == 0 && e->used_ms < min_ms - HB_HISTORY_FORGET_GRACE_MS) {
        HASH_DEL(s->entries, e);
        if (e->on_dirty) unlink_dirty(s, e);
        remember_dropped(s, &e->key);
        entry_free(e);
        atomic_fetch_sub(&nentries, 1);
      }
    }
    pthread_mutex_unlock(&s->mu);
  }
  /* Over the channel cap: drop the least recently used, a shard at a time
   * (approximate LRU: each shard drops its own oldest share). */
  long over = atomic_load(&nentries) - (long)limits.max_channels;
  if (over <= 0) return;
  long per_shard = over / HB_HISTORY_SHARDS + 1;
  for (int i = 0; i < HB_HISTORY_SHARDS && over > 0; i++) {
    shard *s = &shards[i];
    pthread_mutex_lock(&s->mu);
    for (long k = 0; k < per_shard && s->entries; k++) {
      entry *e, *tmp, *oldest = NULL;
      HASH_ITER(hh, s->entries, e, tmp) if (!oldest || e->used_ms < oldest->used_ms) oldest = e;
      if (!oldest) break;
      HASH_DEL(s->entries, oldest);
      if (oldest->on_dirty) unlink_dirty(s, oldest);
      remember_dropped(s, &oldest->key);
      entry_free(oldest);
      atomic_fetch_sub(&nentries, 1);
      over--;
    }
    pthread_mutex_unlock(&s->mu);
  }
}

static bool listed(const hb_uuid *id, const hb_uuid *ids, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (hb_uuid_eq(id, &ids[i])) return true;
  return false;
}

size_t hb_history_drop_plugins(const hb_uuid *plugins, size_t n) {
  size_t dropped = 0;
  if (n == 0) return 0;
  for (int i = 0; i < HB_HISTORY_SHARDS; i++) {
    shard *s = &shards[i];
    pthread_mutex_lock(&s->mu);
    entry *e, *tmp;
    HASH_ITER(hh, s->entries, e, tmp) {
      if (!listed(&e->key.plugin, plugins, n)) continue;
      HASH_DEL(s->entries, e);
      if (e->on_dirty) unlink_dirty(s, e);
      remember_dropped(s, &e->key);
      entry_free(e);
      atomic_fetch_sub(&nentries, 1);
      dropped++;
    }
    pthread_mutex_unlock(&s->mu);
  }
  return dropped;
}

/* --- persistence ---------------------------------------------------------- */

/* A chunk's body: per message, its offset, sent_ms, name and event JSON. */
typedef struct __attribute__((packed)) {
  uint64_t offset;
  int64_t sent_ms;
  uint32_t json_len;
  uint8_t name_len;
} rec_head;

static void body_add(hb_strbuf *b, const hb_msg *m) {
  size_t jlen;
  const char *json = hb_msg_json(m, &jlen);
  rec_head h = {m->offset, m->sent_ms, (uint32_t)jlen, m->event_name_len};
  hb_strbuf_add(b, &h, sizeof h);
  hb_strbuf_add(b, m->event_name, m->event_name_len);
  hb_strbuf_add(b, json, jlen);
}

typedef struct {
  hb_chan_key key;
  uint64_t epoch, last;
  bool meta;
  hb_msgvec msgs; /* the unsaved ones, oldest first */
  uint64_t keep_from; /* the oldest offset still kept */
} save_item;

int hb_history_flush(void) {
  if (!db) return 0;
  save_item *items = NULL;
  size_t n = 0, cap = 0;
  hb_chan_key *dropped = NULL;
  size_t ndropped = 0;
  /* Under each shard's lock only copy references; SQLite runs outside. */
  for (int i = 0; i < HB_HISTORY_SHARDS; i++) {
    shard *s = &shards[i];
    pthread_mutex_lock(&s->mu);
    for (entry *e = s->dirty; e; e = e->dirty_next) {
      if (n == cap) {
        cap = cap ? cap * 2 : 64;
        items = hb_realloc(items, cap * sizeof *items);
      }
      save_item *it = &items[n++];
      memset(it, 0, sizeof *it);
      it->key = e->key;
      it->epoch = e->epoch;
      it->last = e->last;
      it->meta = e->meta_dirty;
      it->keep_from = e->count ? ring_at(e, 0)->offset : e->last + 1;
      for (uint32_t k = e->count - e->unsaved; k < e->count; k++) hb_msgvec_push(&it->msgs, ring_at(e, k));
      e->unsaved = 0;
      e->meta_dirty = false;
      e->on_dirty = false;
    }
    s->dirty = NULL;
    if (s->ndropped) {
      dropped = hb_realloc(dropped, (ndropped + s->ndropped) * sizeof *dropped);
      memcpy(dropped + ndropped, s->dropped, s->ndropped * sizeof *dropped);
      ndropped += s->ndropped;
      s->ndropped = 0;
    }
    pthread_mutex_unlock(&s->mu);
  }
  int rc = 0;
  if (n || ndropped) {
    hb_strbuf body = HB_STRBUF_INIT;
    rc = hb_historydb_begin(db);
    for (size_t i = 0; rc == 0 && i < n; i++) {
      save_item *it = &items[i];
      if (it->meta) rc = hb_historydb_put_channel(db, &it->key, sizeof it->key, it->epoch, it->last);
      if (rc == 0 && it->msgs.n) {
        hb_strbuf_reset(&body);
        for (size_t k = 0; k < it->msgs.n; k++) body_add(&body, it->msgs.v[k]);
        hb_msg *first = it->msgs.v[0], *lastm = it->msgs.v[it->msgs.n - 1];
        rc = hb_historydb_put_chunk(db, &it->key, sizeof it->key, it->epoch, first->offset, lastm->offset,
                                    lastm->sent_ms, body.buf, body.len);
      }
      if (rc == 0) rc = hb_historydb_trim(db, &it->key, sizeof it->key, it->epoch, it->keep_from);
    }
    for (size_t i = 0; rc == 0 && i < ndropped; i++)
      rc = hb_historydb_delete_channel(db, &dropped[i], sizeof dropped[i]);
    if (rc == 0) rc = hb_historydb_prune(db, hb_wall_ms() - limits.ttl_ms);
    if (rc == 0) rc = hb_historydb_commit(db);
    if (rc != 0) {
      hb_historydb_rollback(db);
      /* Not lost for a running server (the rings hold them); a restart
       * after a crash changes the epochs, as for anything unsaved. */
      hb_warn("history: could not save %zu channels to %s; will retry", n, HB_HISTORYDB_FILE);
      hb_metric_inc(HB_M_HISTORY_SAVE_ERRORS);
    }
    hb_strbuf_free(&body);
  }
  for (size_t i = 0; i < n; i++) hb_msgvec_free(&items[i].msgs);
  if (rc != 0) {
    /* Put them back on the dirty lists: the next flush tries again. */
    for (size_t i = 0; i < n; i++) {
      shard *s = &shards[shard_of(&items[i].key)];
      pthread_mutex_lock(&s->mu);
      entry *e = find(s, &items[i].key);
      if (e) {
        e->meta_dirty = true;
        mark_dirty(s, e);
      }
      pthread_mutex_unlock(&s->mu);
    }
  }
  hb_free(items);
  hb_free(dropped);
  return rc;
}

/* Loading: channels first, then their chunks in offset order. */
typedef struct {
  bool clean;
  int64_t min_ms;
  size_t messages;
} load_ctx;

static void load_channel(void *ud, const void *key, size_t key_len, uint64_t epoch, uint64_t last) {
  load_ctx *lc = ud;
  if (key_len != sizeof(hb_chan_key) || epoch == 0) return;
  hb_chan_key k;
  memcpy(&k, key, sizeof k);
  shard *s = &shards[shard_of(&k)];
  entry *e = get(s, &k);
  /* After a run that did not end cleanly, what it accepted after its last
   * flush is gone: a new epoch tells every client so. Offsets go on from
   * the last saved one (they only ever grow). */
  e->epoch = lc->clean ? epoch : new_epoch();
  e->last = last;
  e->used_ms = hb_wall_ms();
  e->meta_dirty = !lc->clean;
}

static void load_chunk(void *ud, const void *key, size_t key_len, uint64_t epoch, uint64_t first, uint64_t last,
                       const void *body, size_t body_len) {
  load_ctx *lc = ud;
  if (!lc->clean || key_len != sizeof(hb_chan_key) || limits.size == 0) return;
  hb_chan_key k;
  memcpy(&k, key, sizeof k);
  shard *s = &shards[shard_of(&k)];
  entry *e = find(s, &k);
  if (!e || e->epoch != epoch) return;
  const char *p = body, *end = p + body_len;
  while ((size_t)(end - p) >= sizeof(rec_head)) {
    rec_head h;
    memcpy(&h, p, sizeof h);
    p += sizeof h;
    if ((size_t)(end - p) < (size_t)h.name_len + h.json_len || h.name_len > HB_MAX_EVENT_NAME_BYTES) break;
    const char *name = p, *json = p + h.name_len;
    p += h.name_len + h.json_len;
    if (h.sent_ms < lc->min_ms || h.offset > e->last || (e->count && h.offset <= ring_at(e, e->count - 1)->offset))
      continue;
    hb_msg *m = hb_msg_new(&k, name, h.name_len, json, h.json_len);
    m->epoch = epoch;
    m->offset = h.offset;
    m->sent_ms = h.sent_ms;
    ring_push(e, m);
    hb_msg_unref(m);
    lc->messages++;
  }
  e->unsaved = 0; /* they came from the file */
  (void)first;
  (void)last;
}

int hb_history_init(const hb_history_limits *lim, hb_historydb *attach) {
  limits = *lim;
  atomic_store(&nentries, 0);
  for (int i = 0; i < HB_HISTORY_SHARDS; i++) {
    memset(&shards[i], 0, sizeof shards[i]);
    pthread_mutex_init(&shards[i].mu, NULL);
  }
  db = attach;
  if (!db) return 0;
  load_ctx lc = {.min_ms = hb_wall_ms() - limits.ttl_ms};
  hb_historydb_visitor v = {.channel = load_channel, .chunk = load_chunk};
  /* The clean mark is read before the rows: the callbacks see it in lc. */
  if (hb_historydb_load(db, lc.min_ms, &v, &lc, &lc.clean) != 0) return -1;
  long channels = atomic_load(&nentries);
  if (!lc.clean && channels > 0) {
    hb_warn("history: the last run did not stop cleanly: %ld channels start a new epoch "
            "(clients get recovered:false; what they missed cannot be vouched for)",
            channels);
    for (int i = 0; i < HB_HISTORY_SHARDS; i++) {
      entry *e, *tmp;
      HASH_ITER(hh, shards[i].entries, e, tmp) mark_dirty(&shards[i], e);
    }
  } else if (channels > 0) {
    hb_info("history: %ld channels and %zu messages restored from %s", channels, lc.messages, HB_HISTORYDB_FILE);
  }
  /* In use until a graceful stop marks it clean again. */
  return hb_historydb_set_clean(db, false) == 0 && hb_history_flush() == 0 ? 0 : -1;
}

void hb_history_shutdown(void) {
  if (db) {
    if (hb_history_flush() == 0) hb_historydb_set_clean(db, true);
    else hb_warn("history: the last flush failed: the next start changes every epoch");
  }
  for (int i = 0; i < HB_HISTORY_SHARDS; i++) {
    shard *s = &shards[i];
    entry *e, *tmp;
    HASH_ITER(hh, s->entries, e, tmp) {
      HASH_DEL(s->entries, e);
      entry_free(e);
    }
    hb_free(s->dropped);
    s->dropped = NULL;
    s->ndropped = s->dropped_cap = 0;
    s->dirty = NULL;
    pthread_mutex_destroy(&s->mu);
  }
  atomic_store(&nentries, 0);
  db = NULL;
}
