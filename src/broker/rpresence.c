/* rpresence.c - presence between nodes over Redis Pub/Sub (rpresence.h). */
#include "hubbub/rpresence.h"

#include <hiredis/hiredis.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hubbub/alloc.h"
#include "hubbub/clock.h"
#include "hubbub/hash.h"
#include "hubbub/limits.h"
#include "hubbub/log.h"
#include "hubbub/metrics.h"
#include "hubbub/presence.h"
#include "hubbub/rclient.h"
#include "hubbub/strbuf.h"

#define MAGIC "HP\x01"
#define MAGIC_BYTES 3
#define HEADER_BYTES (MAGIC_BYTES + 8 + 1) /* magic, node id, kind */

/* A node this one asked for a resync, and when: one question per node per
 * HB_RPRESENCE_ASK_EVERY_BEATS heartbeats, however many of its messages
 * arrive before its answer. */
typedef struct asked {
  uint64_t node;
  uint64_t at_ms;
  UT_hash_handle hh;
} asked;

struct hb_rpresence {
  uv_loop_t *loop;
  hb_rclient *pub, *sub;
  uv_timer_t timer; /* heartbeats; at a stop, the stop after the goodbye's reply */
  uint64_t node;
  uint32_t heartbeat_ms;
  bool started, stopping;
  bool subscribed;      /* the subscription is confirmed (Redis said so) */
  bool sharded;         /* SSUBSCRIBE worked: SPUBLISH; else PUBLISH */
  bool could_send;      /* the last time we looked, both links were up */
  bool resync_due;      /* a publish was refused: resync at the next heartbeat */
  uint64_t last_warn_ms;
  asked *asked;         /* uthash head */
  hb_strbuf msg;        /* the message being built */
};

/* Both links up, for /metrics: process-wide, not in an hb_rpresence that a
 * stop may have freed (gauges stay registered); one per process. */
static atomic_bool links_up;

static bool pub_ready(const hb_rpresence *rp) {
  return rp->pub && hb_rclient_get_state(rp->pub) == HB_RCLIENT_READY;
}

/* A warning at most once per HB_RPRESENCE_WARN_MS; the metric counts them all. */
static bool warn_ok(hb_rpresence *rp) {
  uint64_t now = uv_now(rp->loop);
  if (rp->last_warn_ms && now - rp->last_warn_ms < HB_RPRESENCE_WARN_MS) return false;
  rp->last_warn_ms = now;
  return true;
}

/* --- sending ------------------------------------------------------------------ */

static void on_sent(void *ctx, const redisReply *r, const char *err) {
  hb_rpresence *rp = ctx;
  (void)err;
  /* No reply: the link failed, and its return brings a resync anyway. */
  if (!r || r->type != REDIS_REPLY_ERROR || rp->stopping) return;
  hb_metric_inc(HB_M_PRESENCE_CHANGES_UNSENT);
  rp->resync_due = true;
  if (warn_ok(rp))
    hb_warn("presence: Redis refused a presence message: %.*s (resyncing)", (int)(r->len > 120 ? 120 : r->len),
            r->str);
}

/* Publish kind + body on the presence channel; false if it cannot go now. */
static bool publish(hb_rpresence *rp, char kind, const void *body, size_t len, hb_rclient_reply_fn cb) {
  if (!rp->could_send) return false;
  hb_strbuf_reset(&rp->msg);
  hb_strbuf_add(&rp->msg, MAGIC, MAGIC_BYTES);
  uint8_t id[8];
  for (int i = 0; i < 8; i++) id[i] = (uint8_t)(rp->node >> (8 * i));
  hb_strbuf_add(&rp->msg, id, sizeof id);
  hb_strbuf_addch(&rp->msg, kind);
  if (len) hb_strbuf_add(&rp->msg, body, len);
  static const char chan[] = HB_RPRESENCE_CHANNEL;
  hb_rclient_arg argv[3] = {
      {rp->sharded ? "SPUBLISH" : "PUBLISH", rp->sharded ? 8 : 7},
      {chan, sizeof chan - 1},
      {rp->msg.buf, rp->msg.len},
  };
  return hb_rclient_cmd(rp->pub, cb, rp, 3, argv);
}

void hb_rpresence_send(hb_rpresence *rp, const void *batch, size_t len, bool full) {
  if (rp->stopping) return;
  if (rp->could_send && hb_rclient_unsent_bytes(rp->pub) + len > HB_RPRESENCE_MAX_UNSENT_BYTES) {
    /* Redis does not take them as fast as they come: drop, and resync once
     * it has caught up, rather than buffer without bound. */
    hb_metric_inc(HB_M_PRESENCE_CHANGES_UNSENT);
    rp->resync_due = true;
    if (warn_ok(rp)) hb_warn("presence: over %d bytes waiting for Redis: changes dropped (resyncing)", HB_RPRESENCE_MAX_UNSENT_BYTES);
    return;
  }
  if (!publish(rp, full ? 'S' : 'B', batch, len, on_sent)) {
    /* Lost for the others; the resync when the links are back makes it good. */
    hb_metric_inc(HB_M_PRESENCE_CHANGES_UNSENT);
    return;
  }
  if (full) hb_metric_inc(HB_M_PRESENCE_RESYNCS);
}

/* Both links up and subscribed: on the way up, everything this node holds
 * goes out again (what it sent meanwhile was dropped) and the others are
 * asked for theirs (what they sent meanwhile was missed). */
static void check_links(hb_rpresence *rp) {
  bool can = !rp->stopping && pub_ready(rp) && rp->subscribed;
  bool was = rp->could_send;
  rp->could_send = can;
  atomic_store(&links_up, can);
  if (!can) {
    if (was) hb_info("presence: the link to the other nodes is down: they drop this node's members after presence_ttl_s");
    return;
  }
  if (was) return;
  hb_info("presence: linked to the other nodes through Redis (%s Pub/Sub), node %016llx",
          rp->sharded ? "sharded" : "plain", (unsigned long long)rp->node);
  hb_presence_resync();
  publish(rp, 'Q', NULL, 0, on_sent);
}

/* Forget questions old enough to be asked again. */
static void asked_prune(hb_rpresence *rp, uint64_t now) {
  asked *a, *tmp;
  HASH_ITER(hh, rp->asked, a, tmp) {
    if (now - a->at_ms < (uint64_t)rp->heartbeat_ms * HB_RPRESENCE_ASK_EVERY_BEATS) continue;
    HASH_DEL(rp->asked, a);
    hb_free(a);
  }
}

/* Heard from `node`, which this node does not count (it never heard its
 * resync, or dropped it: expired while the node was only slow, or cut off):
 * ask it, and it alone, for everything it holds. */
static void ask(hb_rpresence *rp, uint64_t node) {
  asked *a;
  HASH_FIND(hh, rp->asked, &node, sizeof node, a);
  if (a) return;
  uint8_t target[8];
  for (int i = 0; i < 8; i++) target[i] = (uint8_t)(node >> (8 * i));
  if (!publish(rp, 'Q', target, sizeof target, on_sent)) return;
  a = hb_malloc(sizeof *a);
  a->node = node;
  a->at_ms = uv_now(rp->loop);
  HASH_ADD(hh, rp->asked, node, sizeof a->node, a);
}

static void on_heartbeat(uv_timer_t *t) {
  hb_rpresence *rp = t->data;
  asked_prune(rp, uv_now(rp->loop));
  check_links(rp);
  if (rp->resync_due && rp->could_send) {
    rp->resync_due = false;
    hb_presence_resync();
  }
  publish(rp, 'H', NULL, 0, on_sent);
}

/* --- receiving ---------------------------------------------------------------- */

static void bad_message(hb_rpresence *rp, const char *why, size_t len) {
  hb_metric_inc(HB_M_PRESENCE_BAD_MESSAGES);
  if (warn_ok(rp))
    hb_warn("presence: ignored a message on " HB_RPRESENCE_CHANNEL " (%zu bytes): %s (a node of another version?)",
            len, why);
}

static void on_push(hb_rclient *rc, void *ud, const redisReply *msg) {
  hb_rpresence *rp = ud;
  (void)rc;
  if (rp->stopping || msg->elements < 3) return;
  const redisReply *pl = msg->element[2];
  if (pl->type != REDIS_REPLY_STRING) return;
  const char *p = pl->str;
  size_t len = pl->len;
  if (len < HEADER_BYTES || memcmp(p, MAGIC, MAGIC_BYTES) != 0) {
    bad_message(rp, "not a presence message", len);
    return;
  }
  uint64_t node = 0;
  for (int i = 0; i < 8; i++) node |= (uint64_t)(uint8_t)p[MAGIC_BYTES + i] << (8 * i);
  if (node == rp->node) return; /* this node's own, back from Redis */
  char kind = p[MAGIC_BYTES + 8];
  const char *body = p + HEADER_BYTES;
  size_t blen = len - HEADER_BYTES;
  int64_t now = (int64_t)uv_now(rp->loop);
  /* A resync or a goodbye stands alone; anything else from a node this one
   * does not count means it lacks what that node holds. */
  bool known = kind == 'S' || kind == 'G' || hb_presence_node_known(node);
  switch (kind) {
  case 'S': /* a resync: what the node said before goes, then the batch */
  case 'B':
    if (kind == 'S') hb_presence_drop_node(node);
    if (hb_presence_apply(node, body, blen, now) != 0) bad_message(rp, "a batch that cannot be read", len);
    break;
  case 'H': hb_presence_heartbeat(node, now); break;
  case 'Q': { /* to every node (no body), or to one */
    uint64_t target = 0;
    for (size_t i = 0; blen == 8 && i < 8; i++) target |= (uint64_t)(uint8_t)body[i] << (8 * i);
    if (blen != 0 && blen != 8) {
      bad_message(rp, "a query that cannot be read", len);
      return;
    }
    hb_presence_heartbeat(node, now);
    if (blen == 0 || target == rp->node) hb_presence_resync(); /* everything this node holds, at the next tick */
    break;
  }
  case 'G': {
    hb_presence_drop_node(node);
    asked *a;
    HASH_FIND(hh, rp->asked, &node, sizeof node, a);
    if (a) {
      HASH_DEL(rp->asked, a);
      hb_free(a);
    }
    return;
  }
  default: bad_message(rp, "an unknown kind", len); return;
  }
  if (!known) ask(rp, node);
}

/* --- the links ---------------------------------------------------------------- */

static void on_subscribed(void *ctx, const redisReply *r, const char *err) {
  hb_rpresence *rp = ctx;
  (void)err;
  if (!r || rp->stopping) return; /* a fault: the next handshake subscribes again */
  if (r->type == REDIS_REPLY_ERROR) {
    if (rp->sharded) {
      /* A Redis without sharded Pub/Sub (before 7): the plain kind. */
      rp->sharded = false;
      hb_info("presence: Redis has no SSUBSCRIBE (%.*s): presence travels on PUBLISH/SUBSCRIBE",
              (int)(r->len > 80 ? 80 : r->len), r->str);
      const char *argv[] = {"SUBSCRIBE", HB_RPRESENCE_CHANNEL};
      if (!hb_rclient_cmd_strs(rp->sub, on_subscribed, rp, 2, argv)) hb_rclient_fault(rp->sub, "SUBSCRIBE not sent");
      return;
    }
    hb_rclient_fault(rp->sub, "SUBSCRIBE " HB_RPRESENCE_CHANNEL " refused");
    return;
  }
  rp->subscribed = true;
  check_links(rp);
}

static void sub_handshake(hb_rclient *rc, void *ud) {
  hb_rpresence *rp = ud;
  rp->subscribed = false;
  rp->sharded = true; /* tried first; on_subscribed falls back */
  const char *argv[] = {"SSUBSCRIBE", HB_RPRESENCE_CHANNEL};
  hb_rclient_cmd_strs(rc, on_subscribed, rp, 2, argv);
}

static void on_down(hb_rclient *rc, void *ud, const char *why, bool was_ready) {
  hb_rpresence *rp = ud;
  (void)why, (void)was_ready;
  if (rc == rp->sub) rp->subscribed = false;
  if (!rp->stopping) check_links(rp);
}

static void on_ready(hb_rclient *rc, void *ud) {
  (void)rc;
  hb_rpresence *rp = ud;
  if (!rp->stopping) check_links(rp);
}

static hb_rclient *link_new(hb_rpresence *rp, const hb_rpresence_config *cfg, const char *name, bool subscriber) {
  char client_name[64];
  snprintf(client_name, sizeof client_name, "hubbub:%s:%d", name, (int)getpid());
  hb_rclient_config rc = {
      .name = name,
      .host = cfg->host,
      .port = cfg->port,
      .user = cfg->user,
      .password = cfg->password,
      .db = cfg->db,
      .client_name = client_name,
      .connect_timeout_ms = HB_REDIS_CONNECT_TIMEOUT_MS,
      .reply_timeout_ms = HB_REDIS_REPLY_TIMEOUT_MS,
      .ping_interval_ms = HB_REDIS_PING_INTERVAL_MS,
      .backoff_min_ms = HB_REDIS_BACKOFF_MIN_MS,
      .backoff_max_ms = HB_REDIS_BACKOFF_MAX_MS,
      .subscriber = subscriber,
      .on_handshake = subscriber ? sub_handshake : NULL,
      .on_ready = on_ready,
      .on_down = on_down,
      .on_push = subscriber ? on_push : NULL,
      .ud = rp,
  };
  return hb_rclient_new(rp->loop, &rc);
}

static long long gauge_up(void *ud) {
  (void)ud;
  return atomic_load(&links_up);
}

hb_rpresence *hb_rpresence_new(uv_loop_t *loop, const hb_rpresence_config *cfg) {
  hb_rpresence *rp = hb_calloc(1, sizeof *rp);
  rp->loop = loop;
  rp->heartbeat_ms = cfg->heartbeat_ms ? cfg->heartbeat_ms : HB_DEFAULT_PRESENCE_INTERVAL_MS;
  if (RAND_bytes((unsigned char *)&rp->node, sizeof rp->node) != 1)
    rp->node = (uint64_t)hb_wall_ms() * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
  rp->pub = link_new(rp, cfg, "presence", false);
  rp->sub = link_new(rp, cfg, "presence-subscribe", true);
  uv_timer_init(loop, &rp->timer);
  rp->timer.data = rp;
  hb_metrics_gauge("presence_redis_up", "1 while this node's presence links to Redis are up (several nodes).",
                   gauge_up, NULL);
  return rp;
}

void hb_rpresence_start(hb_rpresence *rp) {
  rp->started = true;
  hb_rclient_start(rp->pub);
  hb_rclient_start(rp->sub);
  uv_timer_start(&rp->timer, on_heartbeat, rp->heartbeat_ms, rp->heartbeat_ms);
}

/* --- stopping ----------------------------------------------------------------- */

static void on_timer_closed(uv_handle_t *h) {
  hb_rpresence *rp = h->data;
  asked *a, *tmp;
  HASH_ITER(hh, rp->asked, a, tmp) {
    HASH_DEL(rp->asked, a);
    hb_free(a);
  }
  hb_strbuf_free(&rp->msg);
  hb_free(rp);
}

static void finish_stop(hb_rpresence *rp) {
  hb_rclient_stop(rp->pub);
  hb_rclient_stop(rp->sub);
  rp->pub = rp->sub = NULL;
  uv_close((uv_handle_t *)&rp->timer, on_timer_closed);
}

static void on_stop_timer(uv_timer_t *t) { finish_stop(t->data); }

/* The goodbye's answer (or its failure): stop from the timer, not from an
 * rclient callback (rclient.h). */
static void on_goodbye(void *ctx, const redisReply *r, const char *err) {
  hb_rpresence *rp = ctx;
  (void)r, (void)err;
  uv_timer_start(&rp->timer, on_stop_timer, 0, 0);
}

void hb_rpresence_stop(hb_rpresence *rp) {
  if (!rp) return;
  uv_timer_stop(&rp->timer);
  bool said = rp->started && publish(rp, 'G', NULL, 0, on_goodbye);
  rp->stopping = true;
  atomic_store(&links_up, false);
  if (!said) finish_stop(rp);
}
