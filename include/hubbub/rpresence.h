/*
 * rpresence.h - presence between nodes over Redis (docs/scaling.md,
 * "Presence"): what this node's presence table says it holds goes to every
 * other node, what they say comes into this node's table (presence.h), and
 * each node is heard from at least every heartbeat, so that one that dies or
 * is cut off from Redis has its members leave the others after
 * presence_ttl_s.
 *
 * Transport: one Redis Pub/Sub channel, HB_RPRESENCE_CHANNEL, on two
 * connections of its own (rclient.h: one to publish, one subscribed), run on
 * the Redis broker's loop (redis.c), never on an I/O thread. Sharded Pub/Sub
 * (SPUBLISH/SSUBSCRIBE, Redis 7) when Redis has it, plain PUBLISH/SUBSCRIBE
 * otherwise: the channel then lives on one shard of a cluster, and its
 * traffic does not count among the publishes of events.
 *
 * Message (binary): "HP" 0x01 | node id (8 bytes, little endian) | kind |
 * body. Kinds:
 *   B  changes: a batch of presence records (hb_presence_apply)
 *   S  resync: the node drops all it said before, then this batch applies
 *      (the B messages right after it complete it)
 *   H  heartbeat: the node is alive
 *   Q  query: the node may have missed messages; every node answers with a
 *      resync (hb_presence_resync). With a body (8 bytes: a node id), only
 *      that node answers: sent to a node heard from but not counted (its
 *      resync was never heard, or its members were dropped while it was
 *      only slow or cut off)
 *   G  goodbye: the node stops; everything it held leaves now
 * A node's messages go out on one connection, so every other node reads
 * them in the order they were sent (Redis keeps a publisher's order per
 * subscriber). When this node cannot send (a link down) its changes are
 * dropped and counted; once it can again it sends a resync and a query, so
 * that lost messages in either direction are made good.
 *
 * Threads: everything here runs on the loop's thread.
 */
#ifndef HUBBUB_RPRESENCE_H
#define HUBBUB_RPRESENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define HB_RPRESENCE_CHANNEL "hubbub:v1:presence"

typedef struct hb_rpresence hb_rpresence;

typedef struct {
  const char *host; /* copied by the connections */
  int port;
  const char *user, *password; /* as rclient.h */
  int db;
  uint32_t heartbeat_ms; /* how often this node says it is alive (below presence_ttl_s) */
} hb_rpresence_config;

/** Presence over Redis on `loop` (not connected until hb_rpresence_start).
 * Picks this node's id (64 random bits). */
hb_rpresence *hb_rpresence_new(uv_loop_t *loop, const hb_rpresence_config *cfg);
/** Connect (and reconnect) both links; the loop's thread. */
void hb_rpresence_start(hb_rpresence *rp);
/** This node's changes (or, `full`, the start of a resync), from the
 * presence tick through the broker (broker.h's presence op). */
void hb_rpresence_send(hb_rpresence *rp, const void *batch, size_t len, bool full);
/**
 * Say goodbye if the link is up (the other nodes drop this node's members
 * at once), then close both links; `rp` frees itself once its handles are
 * closed (run the loop until then). The goodbye waits at most for the
 * publish link's reply deadline. /metrics: hubbub_presence_redis_up is 1
 * while both links are up and subscribed (this node hears and is heard).
 */
void hb_rpresence_stop(hb_rpresence *rp);

#endif
