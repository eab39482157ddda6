/* test_io.c - the I/O threads (io.c) and what they assume of the kernel's sockets. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

/* io.c sets TCP_NODELAY on the listener only, and relies on accepted
 * sockets inheriting it (Linux copies the listener's options into the
 * child socket). If this fails, connections would write with Nagle on. */
static void test_accepted_socket_inherits_nodelay(void **state) {
  (void)state;
  int one = 1;
  int l = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(l >= 0);
  assert_int_equal(setsockopt(l, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof a;
  assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(l, 1), 0);
  assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);

  int c = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(c >= 0);
  assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof a), 0);
  int s = accept(l, NULL, NULL);
  assert_true(s >= 0);

  int v = 0;
  socklen_t vlen = sizeof v;
  assert_int_equal(getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &v, &vlen), 0);
  assert_int_not_equal(v, 0);
  /* and the client side, which set nothing, does not have it */
  assert_int_equal(getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v, &vlen), 0);
  assert_int_equal(v, 0);
  close(s);
  close(c);
  close(l);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_accepted_socket_inherits_nodelay),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
