/*
 * test_msg.c - a publish serialised once (msg.c): channel keys compared as
 * bytes, the frame (header + JSON) and hb_msg_json, reference counting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"

#include "hubbub/alloc.h"
#include "hubbub/msg.h"
#include "hubbub/strbuf.h"
#include "hubbub/ws.h"

static hb_uuid U(uint8_t tag) {
  hb_uuid u;
  memset(&u, tag, sizeof u);
  return u;
}

/* Ids a level does not use are zero, so that keys of one channel made from
 * different rooms are equal byte for byte. */
static void test_chan_key(void **state) {
  (void)state;
  hb_uuid o = U(1), p = U(2), e1 = U(3), e2 = U(4), s1 = U(5), s2 = U(6), zero = U(0);
  hb_chan_key a, b;
  memset(&a, 0xee, sizeof a); /* padding included */
  memset(&b, 0x11, sizeof b);
  hb_chan_key_make(&a, HB_SCOPE_ORGANIZATION, &o, &p, &e1, &s1);
  hb_chan_key_make(&b, HB_SCOPE_ORGANIZATION, &o, &p, &e2, &s2);
  assert_memory_equal(&a, &b, sizeof a);
  assert_memory_equal(&a.event, &zero, sizeof zero);
  assert_memory_equal(&a.session, &zero, sizeof zero);
  hb_chan_key_make(&a, HB_SCOPE_EVENT, &o, &p, &e1, &s1);
  hb_chan_key_make(&b, HB_SCOPE_EVENT, &o, &p, &e1, &s2);
  assert_memory_equal(&a, &b, sizeof a);
  assert_memory_equal(&a.session, &zero, sizeof zero);
  hb_chan_key_make(&b, HB_SCOPE_EVENT, &o, &p, &e2, &s1);
  assert_memory_not_equal(&a, &b, sizeof a);
  hb_chan_key_make(&a, HB_SCOPE_SESSION, &o, &p, &e1, &s1);
  hb_chan_key_make(&b, HB_SCOPE_SESSION, &o, &p, &e1, &s2);
  assert_memory_not_equal(&a, &b, sizeof a);
  assert_int_equal(a.level, HB_SCOPE_SESSION);
  /* the same ids at another level are another channel */
  hb_chan_key_make(&b, HB_SCOPE_EVENT, &o, &p, &e1, &s1);
  assert_memory_not_equal(&a, &b, sizeof a);
}

/* The frame is one unmasked FIN text frame of exactly the JSON, for each
 * length class of the header; hb_msg_json gives the JSON back. */
static void test_frame(void **state) {
  (void)state;
  hb_uuid o = U(1);
  hb_chan_key k;
  hb_chan_key_make(&k, HB_SCOPE_ORGANIZATION, &o, &o, &o, &o);
  static char json[70000];
  static const size_t lens[] = {2, 125, 126, 65535, 65536, sizeof json};
  for (size_t i = 0; i < sizeof json; i++) json[i] = (char)('a' + i % 26);
  for (size_t t = 0; t < sizeof lens / sizeof *lens; t++) {
    size_t n = lens[t];
    hb_msg *m = hb_msg_new(&k, "name", 4, json, n);
    hb_strbuf want = HB_STRBUF_INIT;
    hb_ws_frame(&want, HB_WS_OP_TEXT, json, n);
    assert_int_equal(m->frame_len, want.len);
    assert_memory_equal(m->frame, want.buf, want.len);
    size_t jl;
    const char *j = hb_msg_json(m, &jl);
    assert_int_equal(jl, n);
    assert_ptr_equal(j, m->frame + m->json_off);
    assert_memory_equal(j, json, n);
    assert_string_equal(m->event_name, "name");
    assert_int_equal(m->event_name_len, 4);
    assert_memory_equal(&m->chan, &k, sizeof k);
    hb_strbuf_free(&want);
    hb_msg_unref(m);
  }
  /* a name longer than a name may be is cut, never overrun */
  char longname[HB_MAX_EVENT_NAME_BYTES + 10];
  memset(longname, 'n', sizeof longname);
  hb_msg *m = hb_msg_new(&k, longname, sizeof longname, "{}", 2);
  assert_int_equal(m->event_name_len, HB_MAX_EVENT_NAME_BYTES);
  assert_int_equal(m->event_name[HB_MAX_EVENT_NAME_BYTES], '\0');
  hb_msg_unref(m);
}

/* Freed with the last reference (the leak check says it was, and not before). */
static void test_refs(void **state) {
  (void)state;
  hb_uuid o = U(1);
  hb_chan_key k;
  hb_chan_key_make(&k, HB_SCOPE_ORGANIZATION, &o, &o, &o, &o);
  hb_msg *m = hb_msg_new(&k, "e", 1, "{}", 2);
  assert_int_equal(atomic_load(&m->refs), 1);
  hb_msg_ref(m);
  hb_msg_ref(m);
  hb_msg_unref(m);
  hb_msg_unref(m);
  assert_int_equal(atomic_load(&m->refs), 1);
  assert_memory_equal(m->frame, "\x81\x02{}", 4); /* still there */
  hb_msg_unref(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_chan_key),
      HBT_TEST(test_frame),
      HBT_TEST(test_refs),
  };
  return cmocka_run_group_tests_name("msg", tests, NULL, NULL);
}
