/*
 * test_iplimit.c - connections per peer address (iplimit.c): the address
 * key of IPv4 and IPv6 peers (never the port), the count against the
 * limit, release, unlimited, and the table freed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"

#include "hubbub/iplimit.h"

static void key4(const char *ip, uint16_t port, uint8_t k[HB_IP_KEY_BYTES]) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in *a = (struct sockaddr_in *)&ss;
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
  hb_iplimit_key(&ss, k);
}

static void key6(const char *ip, uint16_t port, uint8_t k[HB_IP_KEY_BYTES]) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
  a->sin6_family = AF_INET6;
  a->sin6_port = htons(port);
  assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
  hb_iplimit_key(&ss, k);
}

static void test_keys(void **state) {
  (void)state;
  uint8_t a[HB_IP_KEY_BYTES], b[HB_IP_KEY_BYTES];
  key4("10.1.2.3", 1000, a);
  key4("10.1.2.3", 2000, b); /* the port does not count */
  assert_memory_equal(a, b, sizeof a);
  assert_memory_equal(a, "\x0a\x01\x02\x03\0\0\0\0\0\0\0\0\0\0\0\0", 16);
  key4("10.1.2.4", 1000, b);
  assert_memory_not_equal(a, b, sizeof a);
  key6("2001:db8::1", 1, a);
  key6("2001:db8::1", 2, b);
  assert_memory_equal(a, b, sizeof a);
  assert_int_equal(a[0], 0x20);
  assert_int_equal(a[15], 0x01);
  struct sockaddr_storage none;
  memset(&none, 0, sizeof none); /* no address family: all zero */
  hb_iplimit_key(&none, a);
  memset(b, 0, sizeof b);
  assert_memory_equal(a, b, sizeof a);
}

static void test_limit(void **state) {
  (void)state;
  uint8_t a[HB_IP_KEY_BYTES], b[HB_IP_KEY_BYTES];
  key4("192.0.2.1", 1, a);
  key4("192.0.2.2", 1, b);
  assert_true(hb_iplimit_acquire(a, 2));
  assert_true(hb_iplimit_acquire(a, 2));
  assert_false(hb_iplimit_acquire(a, 2)); /* the third from that address */
  assert_true(hb_iplimit_acquire(b, 2));  /* another address counts apart */
  hb_iplimit_release(a);
  assert_true(hb_iplimit_acquire(a, 2)); /* room again */
  assert_false(hb_iplimit_acquire(a, 2));
  for (int i = 0; i < 100; i++) assert_true(hb_iplimit_acquire(a, 0)); /* 0: unlimited, not counted */
  hb_iplimit_release(a);
  hb_iplimit_release(a);
  hb_iplimit_release(b);
  hb_iplimit_release(b); /* more releases than acquires: harmless */
  assert_true(hb_iplimit_acquire(a, 1));
  hb_iplimit_shutdown(); /* frees what is left */
  assert_true(hb_iplimit_acquire(a, 1)); /* counting starts over */
  hb_iplimit_shutdown();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_keys),
      HBT_TEST(test_limit),
  };
  return cmocka_run_group_tests_name("iplimit", tests, NULL, NULL);
}
