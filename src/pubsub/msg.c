/* msg.c - publishes serialised once and shared by reference. */
#include "hubbub/msg.h"

#include <string.h>
#include <uv.h>

#include "hubbub/alloc.h"
#include "hubbub/ws.h"

void hb_chan_key_make(hb_chan_key *k, hb_scope level, const hb_uuid *org, const hb_uuid *plugin,
                      const hb_uuid *event, const hb_uuid *session) {
  memset(k, 0, sizeof *k); /* zero padding and unused ids: keys are compared as bytes */
  k->level = (uint8_t)level;
  k->org = *org;
  k->plugin = *plugin;
  if (level <= HB_SCOPE_EVENT) k->event = *event;
  if (level == HB_SCOPE_SESSION) k->session = *session;
}

uint32_t hb_chan_key_hash(const hb_chan_key *k) {
  /* Zero-padded, so the bytes are the key. */
  const unsigned char *p = (const unsigned char *)k;
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < sizeof *k; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

hb_msg *hb_msg_new_parts(const hb_chan_key *chan, const char *event_name, size_t event_name_len,
                        const char *a, size_t alen, const char *b, size_t blen) {
  uint8_t hdr[10];
  size_t json_len = alen + blen;
  size_t hlen = hb_ws_frame_header(hdr, HB_WS_OP_TEXT, json_len);
  hb_msg *m = hb_malloc(sizeof *m + hlen + json_len);
  atomic_init(&m->refs, 1);
  m->chan = *chan;
  m->epoch = m->offset = 0;
  m->sent_ms = 0;
  m->gap = 0;
  if (event_name_len > HB_MAX_EVENT_NAME_BYTES) event_name_len = HB_MAX_EVENT_NAME_BYTES;
  memset(m->event_name, 0, sizeof m->event_name);
  memcpy(m->event_name, event_name, event_name_len);
  m->event_name_len = (uint8_t)event_name_len;
  m->json_off = (uint8_t)hlen;
  memcpy(m->frame, hdr, hlen);
  memcpy(m->frame + hlen, a, alen);
  if (blen) memcpy(m->frame + hlen + alen, b, blen);
  m->frame_len = (uint32_t)(hlen + json_len);
  m->accepted_ns = uv_hrtime();
  return m;
}

hb_msg *hb_msg_new(const hb_chan_key *chan, const char *event_name, size_t event_name_len, const char *json,
                   size_t json_len) {
  return hb_msg_new_parts(chan, event_name, event_name_len, json, json_len, NULL, 0);
}

void hb_msg_unref(hb_msg *m) {
  if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) hb_free(m);
}
