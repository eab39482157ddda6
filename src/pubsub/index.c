/* index.c - per-thread room index: (channel, eventName) -> local subscribers. */
#include "hubbub/index.h"

#include <stdlib.h>
#include <string.h>

#include "hubbub/alloc.h"
#include "hubbub/hash.h"


typedef struct {
  hb_chan_key chan;
  uint8_t name_len;
  char name[HB_MAX_EVENT_NAME_BYTES]; /* zero-filled past name_len: hashed as bytes */
} topic_key;

struct hb_topic {
  topic_key key;
  hb_list subs; /* hb_sub.topic_link[key.chan.level] */
  hb_chan *chan;
  hb_list chan_link; /* in chan->topics */
  UT_hash_handle hh;
};

struct hb_chan {
  hb_chan_key key;
  uint32_t nsubs;
  uint32_t ninterest; /* subscriptions to names the broker feeds (not '$'-reserved ones) */
  hb_list topics; /* its topics (one per event name subscribed) */
  UT_hash_handle hh;
};

void hb_index_init(hb_index *ix, hb_index_interest_cb cb, void *ud) {
  memset(ix, 0, sizeof *ix);
  ix->on_interest = cb;
  ix->ud = ud;
}

static void make_topic_key(topic_key *k, const hb_chan_key *chan, const char *name, size_t len) {
  memset(k, 0, sizeof *k);
  k->chan = *chan;
  k->name_len = (uint8_t)len;
  memcpy(k->name, name, len);
}

/* A reserved name ('$', which no client event name can start with): a
 * presence topic (presence.h), fed by this node's presence table, never by
 * the broker, so it makes no interest (no Redis subscription). */
static bool reserved(const char *name, size_t len) { return len && name[0] == '$'; }

static hb_sub *sub_of_link(hb_list *link, unsigned level) {
  return (hb_sub *)((char *)link - offsetof(hb_sub, topic_link) - level * sizeof(hb_list));
}

static hb_topic *topic_get(hb_index *ix, const hb_chan_key *chan, const char *name, size_t len) {
  topic_key k;
  make_topic_key(&k, chan, name, len);
  hb_topic *t;
  HASH_FIND(hh, ix->topics, &k, sizeof k, t);
  if (t) return t;

  hb_chan *c;
  HASH_FIND(hh, ix->chans, chan, sizeof *chan, c);
  if (!c) {
    c = hb_calloc(1, sizeof *c);
    c->key = *chan;
    hb_list_init(&c->topics);
    HASH_ADD(hh, ix->chans, key, sizeof c->key, c);
  }
  t = hb_calloc(1, sizeof *t);
  t->key = k;
  t->chan = c;
  hb_list_init(&t->subs);
  hb_list_insert_tail(&c->topics, &t->chan_link);
  HASH_ADD(hh, ix->topics, key, sizeof t->key, t);
  return t;
}

hb_sub *hb_index_subscribe(hb_index *ix, struct hb_conn *conn, const hb_chan_key *room,
                           const char *name, size_t len) {
  if (len > HB_MAX_EVENT_NAME_BYTES) return NULL;
  hb_sub *s = hb_calloc(1, sizeof *s);
  s->conn = conn;
  hb_list_init(&s->conn_link);
  for (unsigned lvl = 0; lvl < HB_SCOPE__COUNT; lvl++) {
    hb_chan_key k;
    hb_chan_key_make(&k, (hb_scope)lvl, &room->org, &room->plugin, &room->event, &room->session);
    hb_topic *t = topic_get(ix, &k, name, len);
    s->topic[lvl] = t;
    hb_list_insert_tail(&t->subs, &s->topic_link[lvl]);
    t->chan->nsubs++;
    if (!reserved(name, len) && t->chan->ninterest++ == 0 && ix->on_interest)
      ix->on_interest(ix->ud, &t->chan->key, true);
  }
  ix->nsubs++;
  return s;
}

void hb_index_unsubscribe(hb_index *ix, hb_sub *s) {
  for (unsigned lvl = 0; lvl < HB_SCOPE__COUNT; lvl++) {
    hb_topic *t = s->topic[lvl];
    hb_list_remove(&s->topic_link[lvl]);
    hb_chan *c = t->chan;
    if (!reserved(t->key.name, t->key.name_len) && --c->ninterest == 0 && ix->on_interest)
      ix->on_interest(ix->ud, &c->key, false);
    if (hb_list_empty(&t->subs)) {
      HASH_DEL(ix->topics, t);
      hb_list_remove(&t->chan_link);
      hb_free(t);
    }
    if (--c->nsubs == 0) {
      HASH_DEL(ix->chans, c);
      hb_free(c);
    }
  }
  if (!hb_list_unlinked(&s->conn_link)) hb_list_remove(&s->conn_link);
  ix->nsubs--;
  hb_free(s);
}

const char *hb_sub_name(const hb_sub *s, size_t *len) {
  *len = s->topic[0]->key.name_len;
  return s->topic[0]->key.name;
}

hb_sub *hb_index_find_sub(hb_list *conn_subs, const char *name, size_t len) {
  hb_list *it;
  hb_list_foreach(it, conn_subs) {
    hb_sub *s = hb_container_of(it, hb_sub, conn_link);
    size_t n;
    const char *sn = hb_sub_name(s, &n);
    if (n == len && memcmp(sn, name, len) == 0) return s;
  }
  return NULL;
}

size_t hb_index_foreach(hb_index *ix, const hb_chan_key *chan, const char *name, size_t len,
                        void (*fn)(struct hb_conn *conn, void *ud), void *ud) {
  if (len > HB_MAX_EVENT_NAME_BYTES || chan->level >= HB_SCOPE__COUNT) return 0;
  topic_key k;
  make_topic_key(&k, chan, name, len);
  hb_topic *t;
  HASH_FIND(hh, ix->topics, &k, sizeof k, t);
  if (!t) return 0;
  size_t n = 0;
  hb_list *it;
  hb_list_foreach(it, &t->subs) {
    fn(sub_of_link(it, chan->level)->conn, ud);
    n++;
  }
  return n;
}

static int conn_cmp(const void *a, const void *b) {
  uintptr_t x = (uintptr_t) * (struct hb_conn *const *)a, y = (uintptr_t) * (struct hb_conn *const *)b;
  return x < y ? -1 : x > y;
}

size_t hb_index_foreach_chan(hb_index *ix, const hb_chan_key *chan, void (*fn)(struct hb_conn *conn, void *ud),
                             void *ud) {
  if (chan->level >= HB_SCOPE__COUNT) return 0;
  hb_chan *c;
  HASH_FIND(hh, ix->chans, chan, sizeof *chan, c);
  if (!c) return 0;
  /* A connection subscribed to several names is in several topics: collect,
   * sort, and visit each once (rare: gap notices only). */
  struct hb_conn **v = NULL;
  size_t n = 0, cap = 0;
  hb_list *ti, *si;
  hb_list_foreach(ti, &c->topics) {
    hb_topic *t = hb_container_of(ti, hb_topic, chan_link);
    if (reserved(t->key.name, t->key.name_len)) continue; /* a presence observer is told nothing of events */
    hb_list_foreach(si, &t->subs) {
      if (n == cap) {
        cap = cap ? cap * 2 : 16;
        v = hb_realloc(v, cap * sizeof *v);
      }
      v[n++] = sub_of_link(si, chan->level)->conn;
    }
  }
  qsort(v, n, sizeof *v, conn_cmp);
  size_t visited = 0;
  for (size_t i = 0; i < n; i++) {
    if (i && v[i] == v[i - 1]) continue;
    fn(v[i], ud);
    visited++;
  }
  hb_free(v);
  return visited;
}

void hb_index_destroy(hb_index *ix) {
  hb_topic *t, *tt;
  HASH_ITER(hh, ix->topics, t, tt) {
    HASH_DEL(ix->topics, t);
    hb_free(t);
  }
  hb_chan *c, *ct;
  HASH_ITER(hh, ix->chans, c, ct) {
    HASH_DEL(ix->chans, c);
    hb_free(c);
  }
}
