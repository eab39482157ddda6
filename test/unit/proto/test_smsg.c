/* test_smsg.c - the exact bytes of every server message (smsg.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "text.h"

#include "hubbub/alloc.h"
#include "hubbub/cmsg.h"
#include "hubbub/json.h"
#include "hubbub/smsg.h"
#include "hubbub/strbuf.h"

#define MAX_DATA 32768

/* The event as a subscriber gets it: opened, then closed with its offset. */
static void smsg_event(hb_strbuf *sb, const char *name, size_t nlen, const char *data, size_t dlen, hb_scope scope,
                       const char *mid, int64_t sent_at) {
  hb_smsg_event_open(sb, name, nlen, data, dlen, scope, mid, sent_at);
  hb_smsg_event_close(sb, 7);
}


static void test_smsg_simple(void **state) {
  (void)state;
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_smsg_ack(&sb, "c3", 2, "6f9619ff-8b86-4011-b42d-00c04fc964ff");
  hbt_expect_sb(&sb, "{\"type\":\"ack\",\"id\":\"c3\",\"message_id\":\"6f9619ff-8b86-4011-b42d-00c04fc964ff\"}");
  hb_smsg_ack(&sb, "c1", 2, NULL);
  hbt_expect_sb(&sb, "{\"type\":\"ack\",\"id\":\"c1\"}");
  hb_smsg_ack(&sb, "a\"\\b", 4, NULL);
  hbt_expect_sb(&sb, "{\"type\":\"ack\",\"id\":\"a\\\"\\\\b\"}");
  hb_smsg_pong(&sb, "p1", 2);
  hbt_expect_sb(&sb, "{\"type\":\"pong\",\"id\":\"p1\"}");
  hb_smsg_pong(&sb, NULL, 0);
  hbt_expect_sb(&sb, "{\"type\":\"pong\"}");

  hb_error e;
  hb_error_set(&e, HB_E_SCOPE_FORBIDDEN, "/scope", "no \"event\" scope");
  hb_smsg_error(&sb, "c3", 2, &e);
  hbt_expect_sb(&sb, "{\"type\":\"error\",\"id\":\"c3\",\"code\":\"scope_forbidden\",\"message\":\"no \\\"event\\\" scope\"}");
  hb_smsg_error(&sb, NULL, 0, &e);
  hbt_expect_sb(&sb, "{\"type\":\"error\",\"code\":\"scope_forbidden\",\"message\":\"no \\\"event\\\" scope\"}");
  /* appends, never resets */
  hb_strbuf_addstr(&sb, "X");
  hb_smsg_pong(&sb, NULL, 0);
  hbt_expect_sb(&sb, "X{\"type\":\"pong\"}");
}

static void test_smsg_welcome(void **state) {
  (void)state;
  hb_uuid o, p, ev, s;
  hb_uuid_parse("00000000-0000-4000-8000-000000000001", 36, &o);
  hb_uuid_parse("00000000-0000-4000-8000-000000000002", 36, &p);
  hb_uuid_parse("00000000-0000-4000-8000-000000000003", 36, &ev);
  hb_uuid_parse("00000000-0000-4000-8000-0000000000AB", 36, &s);
  hb_welcome w = {
      .connection_id = "11111111-2222-4333-8444-555555555555",
      .org = &o, .plugin = &p, .event = &ev, .session = &s,
      .user_id = "al\"ice",
      .scopes = HB_SCOPE_BIT(HB_SCOPE_ORGANIZATION) | HB_SCOPE_BIT(HB_SCOPE_SESSION),
      .expires_at = 1790000000,
      .max_message_bytes = 65536, .max_data_bytes = 32768, .max_subscriptions = 256,
      .presence_list_max = 100, .ping_interval_ms = 25000,
  };
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_smsg_welcome(&sb, &w);
  hbt_expect_sb(&sb,
            "{\"type\":\"welcome\",\"protocol\":1,\"connection_id\":\"11111111-2222-4333-8444-555555555555\","
            "\"room\":{\"organization_id\":\"00000000-0000-4000-8000-000000000001\","
            "\"plugin_id\":\"00000000-0000-4000-8000-000000000002\","
            "\"event_id\":\"00000000-0000-4000-8000-000000000003\","
            "\"session_id\":\"00000000-0000-4000-8000-0000000000ab\"},"
            "\"user_id\":\"al\\\"ice\",\"scopes\":[\"session\",\"organization\"],\"expires_at\":1790000000,"
            "\"ping_interval_ms\":25000,"
            "\"limits\":{\"max_message_bytes\":65536,\"max_data_bytes\":32768,\"max_subscriptions\":256,"
            "\"presence_list_max\":100}}");
  w.scopes = 0;
  hb_smsg_welcome(&sb, &w);
  assert_non_null(strstr(sb.buf, "\"scopes\":[],"));
  hb_strbuf_free(&sb);
  /* the numbers are written by hand: the same digits as printf, at the edges */
  const int64_t exps[] = {0, 9, 10, -1, -10, 1790000000, INT64_MAX, INT64_MIN};
  const size_t sizes[] = {0, 1, 99, 1073741824, SIZE_MAX};
  const int pings[] = {0, 7, 25000, 2147483647};
  for (size_t i = 0; i < sizeof exps / sizeof *exps; i++) {
    w.expires_at = exps[i];
    w.max_message_bytes = sizes[i % 5];
    w.max_data_bytes = sizes[(i + 1) % 5];
    w.max_subscriptions = sizes[(i + 2) % 5];
    w.presence_list_max = sizes[(i + 3) % 5];
    w.ping_interval_ms = pings[i % 4];
    char want[512];
    snprintf(want, sizeof want,
             "\"expires_at\":%lld,\"ping_interval_ms\":%d,\"limits\":{\"max_message_bytes\":%zu,"
             "\"max_data_bytes\":%zu,\"max_subscriptions\":%zu,\"presence_list_max\":%zu}}",
             (long long)w.expires_at, w.ping_interval_ms, w.max_message_bytes, w.max_data_bytes,
             w.max_subscriptions, w.presence_list_max);
    hb_smsg_welcome(&sb, &w);
    assert_true(sb.len > strlen(want));
    assert_string_equal(sb.buf + sb.len - strlen(want), want);
    hb_strbuf_free(&sb);
  }
}

static void test_smsg_event(void **state) {
  (void)state;
  hb_strbuf sb = HB_STRBUF_INIT;
  const char *data = "{\"custom\":\"payload\",\"n\":0.1}";
  smsg_event(&sb, "say-hello", 9, data, strlen(data), HB_SCOPE_SESSION,
                "6f9619ff-8b86-4011-b42d-00c04fc964ff", 1790000000123LL);
  hbt_expect_sb(&sb, "{\"type\":\"event\",\"eventName\":\"say-hello\",\"data\":{\"custom\":\"payload\",\"n\":0.1},"
                 "\"scope\":\"session\",\"message_id\":\"6f9619ff-8b86-4011-b42d-00c04fc964ff\","
                 "\"sent_at\":1790000000123,\"offset\":7}");
  smsg_event(&sb, "e", 1, "{}", 2, HB_SCOPE_ORGANIZATION, "m", 0);
  hbt_expect_sb(&sb, "{\"type\":\"event\",\"eventName\":\"e\",\"data\":{},\"scope\":\"organization\","
                 "\"message_id\":\"m\",\"sent_at\":0,\"offset\":7}");
  smsg_event(&sb, "e", 1, "{}", 2, HB_SCOPE_EVENT, "m", -5);
  hbt_expect_sb(&sb, "{\"type\":\"event\",\"eventName\":\"e\",\"data\":{},\"scope\":\"event\","
                 "\"message_id\":\"m\",\"sent_at\":-5,\"offset\":7}");
  /* names are validated upstream, but the encoder still escapes */
  smsg_event(&sb, "a\"\\\n", 4, "{}", 2, HB_SCOPE_EVENT, "m\"", 0);
  hbt_expect_sb(&sb, "{\"type\":\"event\",\"eventName\":\"a\\\"\\\\\\n\",\"data\":{},\"scope\":\"event\","
                 "\"message_id\":\"m\\\"\",\"sent_at\":0,\"offset\":7}");
  smsg_event(&sb, "e", 1, "{}", 2, HB_SCOPE_EVENT, "m", INT64_MAX);
  hbt_expect_sb(&sb, "{\"type\":\"event\",\"eventName\":\"e\",\"data\":{},\"scope\":\"event\","
                 "\"message_id\":\"m\",\"sent_at\":9223372036854775807,\"offset\":7}");
  smsg_event(&sb, "e", 1, "{}", 2, HB_SCOPE_EVENT, "m", INT64_MIN);
  hbt_expect_sb(&sb, "{\"type\":\"event\",\"eventName\":\"e\",\"data\":{},\"scope\":\"event\","
                 "\"message_id\":\"m\",\"sent_at\":-9223372036854775808,\"offset\":7}");
}

/* An event built from a decoded publish carries the publisher's exact bytes,
 * whichever decoding path (the fast one or the tree) read the publish. */
static void test_roundtrip_publish_to_event(void **state) {
  (void)state;
  const char *in = "{\"type\":\"publish\",\"eventName\":\"n\",\"data\":{\"a\":-0,\"b\":1E2,\"c\":\"\\u00e9\"}}";
  for (int tree = 0; tree < 2; tree++) {
    hb_cmsg m;
    hb_error e;
    memset(&e, 0, sizeof e);
    hb_err r = tree ? hb_cmsg_decode_tree(in, strlen(in), MAX_DATA, &m, &e)
                    : hb_cmsg_decode(in, strlen(in), MAX_DATA, &m, &e);
    assert_int_equal(r, HB_OK);
    hb_strbuf sb = HB_STRBUF_INIT;
    smsg_event(&sb, m.event_name, m.event_name_len, m.data, m.data_len, m.scope, "m", 1);
    hbt_expect_sb(&sb, "{\"type\":\"event\",\"eventName\":\"n\",\"data\":{\"a\":-0,\"b\":1E2,\"c\":\"\\u00e9\"},"
                   "\"scope\":\"session\",\"message_id\":\"m\",\"sent_at\":1,\"offset\":7}");
    hb_cmsg_clear(&m);
  }
}

int main(void) {
  hb_json_init(); /* as the server does */
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_smsg_simple),
      HBT_TEST(test_smsg_welcome),
      HBT_TEST(test_smsg_event),
      HBT_TEST(test_roundtrip_publish_to_event),
  };
  return cmocka_run_group_tests_name("smsg", tests, NULL, NULL);
}
