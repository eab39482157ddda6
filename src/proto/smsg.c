/* smsg.c - encoding the server messages (smsg.h): plain appends, no printf
 * (vsnprintf was most of the welcome's cost and the slowest call of an event). */
#include "hubbub/smsg.h"

#include <string.h>

#include "hubbub/event_name.h"

/* Append a string literal without a strlen(). */
#define ADD_LIT(sb, lit) hb_strbuf_add((sb), (lit), sizeof(lit) - 1)

static void add_id(hb_strbuf *sb, const char *id, size_t id_len) {
  if (!id) return;
  hb_strbuf_addstr(sb, ",\"id\":");
  hb_strbuf_add_json_str(sb, id, id_len);
}

void hb_smsg_ack(hb_strbuf *sb, const char *id, size_t id_len, const char *message_id) {
  hb_strbuf_addstr(sb, "{\"type\":\"ack\"");
  add_id(sb, id, id_len);
  if (message_id) {
    hb_strbuf_addstr(sb, ",\"message_id\":");
    hb_strbuf_add_json_str(sb, message_id, strlen(message_id));
  }
  hb_strbuf_addch(sb, '}');
}

void hb_smsg_error(hb_strbuf *sb, const char *id, size_t id_len, const hb_error *e) {
  hb_strbuf_addstr(sb, "{\"type\":\"error\"");
  add_id(sb, id, id_len);
  hb_strbuf_addstr(sb, ",\"code\":\"");
  hb_strbuf_addstr(sb, hb_err_code(e->err));
  hb_strbuf_addstr(sb, "\",\"message\":");
  hb_strbuf_add_json_str(sb, e->message, strnlen(e->message, sizeof e->message));
  hb_strbuf_addch(sb, '}');
}

void hb_smsg_pong(hb_strbuf *sb, const char *id, size_t id_len) {
  hb_strbuf_addstr(sb, "{\"type\":\"pong\"");
  add_id(sb, id, id_len);
  hb_strbuf_addch(sb, '}');
}

/* Decimal numbers as printf's %llu / %lld would write them; by hand because
 * vsnprintf, called twice per hb_strbuf_addf, was most of the welcome's cost
 * (and the slowest call of an event). */
static void add_digits(hb_strbuf *sb, bool neg, uint64_t u) {
  char num[24];
  size_t n = 0;
  do {
    num[sizeof num - 1 - n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (neg) num[sizeof num - 1 - n++] = '-';
  hb_strbuf_add(sb, num + sizeof num - n, n);
}
static void add_uint(hb_strbuf *sb, uint64_t v) { add_digits(sb, false, v); }
static void add_int(hb_strbuf *sb, int64_t v) {
  add_digits(sb, v < 0, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v);
}

void hb_smsg_publish_ack(hb_strbuf *sb, const char *id, size_t id_len, const char *message_id, const hb_pos *pos) {
  hb_strbuf_addstr(sb, "{\"type\":\"ack\"");
  add_id(sb, id, id_len);
  hb_strbuf_addstr(sb, ",\"message_id\":");
  hb_strbuf_add_json_str(sb, message_id, strlen(message_id));
  hb_strbuf_addstr(sb, ",\"offset\":");
  add_uint(sb, pos->offset);
  hb_strbuf_addstr(sb, ",\"epoch\":");
  hb_smsg_epoch(sb, pos->epoch);
  hb_strbuf_addch(sb, '}');
}

static void add_uuid_field(hb_strbuf *sb, const char *name_lit, size_t name_len, const hb_uuid *u) {
  char s[HB_UUID_STR_BYTES];
  hb_uuid_format(u, s);
  hb_strbuf_add(sb, name_lit, name_len);
  hb_strbuf_add(sb, s, HB_UUID_STR_BYTES - 1);
  hb_strbuf_addch(sb, '"');
}
#define ADD_UUID_FIELD(sb, lit, u) add_uuid_field((sb), (lit), sizeof(lit) - 1, (u))

static void add_scopes(hb_strbuf *sb, hb_scope_set set) {
  hb_strbuf_addch(sb, '[');
  bool first = true;
  for (int s = 0; s < HB_SCOPE__COUNT; s++) {
    if (!(set & HB_SCOPE_BIT(s))) continue;
    if (!first) hb_strbuf_addch(sb, ',');
    hb_strbuf_addch(sb, '"');
    hb_strbuf_addstr(sb, hb_scope_name((hb_scope)s));
    hb_strbuf_addch(sb, '"');
    first = false;
  }
  hb_strbuf_addch(sb, ']');
}

/* Once per connection: plain appends, no printf. */
void hb_smsg_welcome(hb_strbuf *sb, const hb_welcome *w) {
  size_t ulen = strlen(w->user_id);
  /* ~420 bytes of names, ids and numbers besides the user id (escaped, at
   * most 6 bytes per byte); an estimate only: the appends grow as needed. */
  hb_strbuf_grow(sb, 512 + 6 * ulen);
  ADD_LIT(sb, "{\"type\":\"welcome\",\"protocol\":1,\"connection_id\":");
  hb_strbuf_add_json_str(sb, w->connection_id, strlen(w->connection_id));
  ADD_LIT(sb, ",\"room\":{");
  ADD_UUID_FIELD(sb, "\"organization_id\":\"", w->org);
  ADD_UUID_FIELD(sb, ",\"plugin_id\":\"", w->plugin);
  ADD_UUID_FIELD(sb, ",\"event_id\":\"", w->event);
  ADD_UUID_FIELD(sb, ",\"session_id\":\"", w->session);
  ADD_LIT(sb, "},\"user_id\":");
  hb_strbuf_add_json_str(sb, w->user_id, ulen);
  ADD_LIT(sb, ",\"scopes\":");
  add_scopes(sb, w->scopes);
  ADD_LIT(sb, ",\"expires_at\":");
  add_int(sb, w->expires_at);
  ADD_LIT(sb, ",\"ping_interval_ms\":");
  add_int(sb, w->ping_interval_ms);
  ADD_LIT(sb, ",\"limits\":{\"max_message_bytes\":");
  add_uint(sb, w->max_message_bytes);
  ADD_LIT(sb, ",\"max_data_bytes\":");
  add_uint(sb, w->max_data_bytes);
  ADD_LIT(sb, ",\"max_subscriptions\":");
  add_uint(sb, w->max_subscriptions);
  ADD_LIT(sb, ",\"presence_list_max\":");
  add_uint(sb, w->presence_list_max);
  ADD_LIT(sb, "}");
  if (w->positions) {
    ADD_LIT(sb, ",\"positions\":{");
    for (int sc = 0; sc < HB_SCOPE__COUNT; sc++) {
      if (sc) ADD_LIT(sb, ",");
      hb_strbuf_addch(sb, '"');
      hb_strbuf_addstr(sb, hb_scope_name((hb_scope)sc));
      ADD_LIT(sb, "\":{\"epoch\":");
      hb_smsg_epoch(sb, w->positions[sc].epoch);
      ADD_LIT(sb, ",\"offset\":");
      add_uint(sb, w->positions[sc].offset);
      ADD_LIT(sb, "}");
    }
    ADD_LIT(sb, "}");
  }
  if (w->recovery_asked) {
    ADD_LIT(sb, ",\"recovered\":");
    if (w->recovered) {
      ADD_LIT(sb, "true");
    } else {
      ADD_LIT(sb, "false,\"recovery\":{\"failed\":{");
      bool first = true;
      for (int sc = 0; sc < HB_SCOPE__COUNT; sc++) {
        if (!w->recovery_failed || !w->recovery_failed[sc]) continue;
        if (!first) ADD_LIT(sb, ",");
        first = false;
        hb_strbuf_addch(sb, '"');
        hb_strbuf_addstr(sb, hb_scope_name((hb_scope)sc));
        ADD_LIT(sb, "\":\"");
        hb_strbuf_addstr(sb, w->recovery_failed[sc]);
        hb_strbuf_addch(sb, '"');
      }
      ADD_LIT(sb, "}}");
    }
  }
  if (w->subscribed && w->subscribed_len) {
    /* Tells the client which names it holds without an ack each; a client
     * that sees no such field (an older server) subscribes by message. */
    ADD_LIT(sb, ",\"subscribed\":[");
    size_t pos = 0, len;
    const char *name;
    while (hb_event_name_list_next(w->subscribed, w->subscribed_len, &pos, &name, &len)) {
      if (name != w->subscribed) ADD_LIT(sb, ",");
      hb_strbuf_add_json_str(sb, name, len);
    }
    ADD_LIT(sb, "]");
  }
  ADD_LIT(sb, "}");
}

/* A JSON string literal; copied in one piece when nothing needs escaping,
 * which is always the case for event names and message ids. */
static void add_str_fast(hb_strbuf *sb, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == '"' || c == '\\') {
      hb_strbuf_add_json_str(sb, s, n);
      return;
    }
  }
  hb_strbuf_addch(sb, '"');
  hb_strbuf_add(sb, s, n);
  hb_strbuf_addch(sb, '"');
}

/* Runs once per publish: plain appends into one pre-sized buffer. */
void hb_smsg_event_open(hb_strbuf *sb, const char *event_name, size_t event_name_len,
                        const char *data, size_t data_len, hb_scope scope, const char *message_id,
                        int64_t sent_at_ms) {
  size_t mid_len = message_id ? strlen(message_id) : 0;
  /* fixed text ~90 bytes, the scope name, a 20-digit time; escaping of the
   * (already validated) name and id never triggers, so this is exact. */
  hb_strbuf_grow(sb, 128 + event_name_len + data_len + mid_len);
  ADD_LIT(sb, "{\"type\":\"event\",\"eventName\":");
  add_str_fast(sb, event_name, event_name_len);
  ADD_LIT(sb, ",\"data\":");
  hb_strbuf_add(sb, data, data_len);
  ADD_LIT(sb, ",\"scope\":\"");
  hb_strbuf_addstr(sb, hb_scope_name(scope));
  ADD_LIT(sb, "\",\"message_id\":");
  add_str_fast(sb, message_id ? message_id : "", mid_len);
  ADD_LIT(sb, ",\"sent_at\":");
  add_int(sb, sent_at_ms);
}

void hb_smsg_event_close(hb_strbuf *sb, uint64_t offset) {
  ADD_LIT(sb, ",\"offset\":");
  add_uint(sb, offset);
  hb_strbuf_addch(sb, '}');
}

void hb_smsg_gap(hb_strbuf *sb, hb_scope scope, uint64_t epoch, uint64_t offset, const char *reason) {
  hb_strbuf_addstr(sb, "{\"type\":\"gap\",\"scope\":\"");
  hb_strbuf_addstr(sb, hb_scope_name(scope));
  hb_strbuf_addstr(sb, "\",\"epoch\":");
  hb_smsg_epoch(sb, epoch);
  hb_strbuf_addstr(sb, ",\"offset\":");
  add_uint(sb, offset);
  hb_strbuf_addstr(sb, ",\"reason\":\"");
  hb_strbuf_addstr(sb, reason);
  hb_strbuf_addstr(sb, "\"}");
}

void hb_smsg_epoch(hb_strbuf *sb, uint64_t epoch) {
  static const char hex[] = "0123456789abcdef";
  char s[18];
  s[0] = s[17] = '"';
  for (int i = 0; i < 16; i++) s[1 + i] = hex[(epoch >> (60 - 4 * i)) & 15];
  hb_strbuf_add(sb, s, sizeof s);
}


/* --- presence ----------------------------------------------------------- */

void hb_smsg_presence_member(hb_strbuf *sb, const char *user, size_t user_len, const char *info, size_t info_len) {
  ADD_LIT(sb, "{\"user_id\":");
  hb_strbuf_add_json_str(sb, user, user_len);
  if (info_len) {
    ADD_LIT(sb, ",\"info\":");
    hb_strbuf_add(sb, info, info_len); /* compact JSON, checked when the token was */
  }
  hb_strbuf_addch(sb, '}');
}

void hb_smsg_presence_page(hb_strbuf *sb, hb_scope scope, uint64_t version, uint32_t count, const char *members,
                           size_t members_len, bool truncated, uint64_t cursor) {
  ADD_LIT(sb, "\"scope\":\"");
  hb_strbuf_addstr(sb, hb_scope_name(scope));
  ADD_LIT(sb, "\",\"version\":");
  add_uint(sb, version);
  ADD_LIT(sb, ",\"count\":");
  add_uint(sb, count);
  ADD_LIT(sb, ",\"members\":");
  hb_strbuf_add(sb, members, members_len);
  if (truncated) {
    /* A string: opaque to clients, whatever it holds. */
    ADD_LIT(sb, ",\"truncated\":true,\"cursor\":\"");
    add_uint(sb, cursor);
    hb_strbuf_addch(sb, '"');
  } else {
    ADD_LIT(sb, ",\"truncated\":false");
  }
}

void hb_smsg_presence_snapshot(hb_strbuf *sb, const char *id, size_t id_len, hb_scope scope, uint64_t version,
                               uint32_t count, const char *members, size_t members_len, bool truncated,
                               uint64_t cursor) {
  ADD_LIT(sb, "{\"type\":\"presence.snapshot\"");
  add_id(sb, id, id_len);
  hb_strbuf_addch(sb, ',');
  hb_smsg_presence_page(sb, scope, version, count, members, members_len, truncated, cursor);
  hb_strbuf_addch(sb, '}');
}

void hb_smsg_presence_delta(hb_strbuf *sb, hb_scope scope, uint64_t version, uint32_t count, const char *joins,
                            size_t joins_len, const char *leaves, size_t leaves_len, bool truncated) {
  ADD_LIT(sb, "{\"type\":\"presence.delta\",\"scope\":\"");
  hb_strbuf_addstr(sb, hb_scope_name(scope));
  ADD_LIT(sb, "\",\"version\":");
  add_uint(sb, version);
  ADD_LIT(sb, ",\"count\":");
  add_uint(sb, count);
  ADD_LIT(sb, ",\"joins\":");
  hb_strbuf_add(sb, joins, joins_len);
  ADD_LIT(sb, ",\"leaves\":");
  hb_strbuf_add(sb, leaves, leaves_len);
  if (truncated) ADD_LIT(sb, ",\"truncated\":true}");
  else ADD_LIT(sb, ",\"truncated\":false}");
}
