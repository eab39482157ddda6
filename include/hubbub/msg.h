/*
 * msg.h - one publish, serialised once: the complete WebSocket text frame
 * that every subscriber receives, shared by reference between threads and
 * connections, freed when the last reference goes (after the last write).
 */
#ifndef HUBBUB_MSG_H
#define HUBBUB_MSG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "hubbub/limits.h"
#include "hubbub/scope.h"
#include "hubbub/uuid.h"

/* The channel a publish targets: (level, organization, plugin[, event[, session]]).
 * Unused ids are zero, so the struct can be hashed and compared as bytes. */
typedef struct {
  hb_uuid org, plugin, event, session;
  uint8_t level; /* hb_scope */
  uint8_t pad[3];
} hb_chan_key;

/** A hash of the key's bytes (FNV-1a): which shard of a per-channel table
 * (history.c, presence.c) holds it. */
uint32_t hb_chan_key_hash(const hb_chan_key *k);

/** Build the key of channel `level` for the room (org, plugin, event, session). */
void hb_chan_key_make(hb_chan_key *k, hb_scope level, const hb_uuid *org, const hb_uuid *plugin,
                      const hb_uuid *event, const hb_uuid *session);

typedef struct hb_msg {
  atomic_int refs;
  hb_chan_key chan;
  uint64_t epoch;    /* the channel's epoch when the offset was assigned (history.h) */
  uint64_t offset;   /* the message's position in its channel (0: none) */
  int64_t sent_ms;   /* wall clock when the publish was accepted */
  uint8_t event_name_len;
  uint8_t json_off; /* where the JSON starts in frame: the header's size */
  uint8_t gap;      /* a gap notice for the channel, not an event (docs/protocol.md, "Recovery") */
  char event_name[HB_MAX_EVENT_NAME_BYTES + 1];
  uint32_t frame_len;
  /* uv_hrtime() when this node accepted the publish (or received it from
   * another node): the delivery latency histogram starts here. */
  uint64_t accepted_ns;
  char frame[]; /* WebSocket frame header + JSON payload */
} hb_msg;

/**
 * Copy `json` into a new message as one unmasked FIN text frame (RFC 6455
 * 5.2). Starts with one reference, owned by the caller. Its accepted_ns is
 * now.
 */
hb_msg *hb_msg_new(const hb_chan_key *chan, const char *event_name, size_t event_name_len,
                   const char *json, size_t json_len);
/** The same with the JSON in two pieces (a prefix and the part that names the offset). */
hb_msg *hb_msg_new_parts(const hb_chan_key *chan, const char *event_name, size_t event_name_len,
                         const char *a, size_t alen, const char *b, size_t blen);
/** The event's JSON text (the frame's payload), e.g. for another node. */
static inline const char *hb_msg_json(const hb_msg *m, size_t *len) {
  *len = m->frame_len - m->json_off;
  return m->frame + m->json_off;
}
static inline void hb_msg_ref(hb_msg *m) { atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed); }
void hb_msg_unref(hb_msg *m);

#endif
