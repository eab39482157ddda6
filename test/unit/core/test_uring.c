/*
 * test_uring.c - many sends, one system call (uring.c): sends queued to
 * several sockets go with one submit and each reports its bytes; a socket
 * whose buffer is full reports -EAGAIN instead of waiting; a closed peer an
 * error; the queue's bound. Where the kernel or a sandbox refuses io_uring
 * (a container's seccomp profile often does), hb_uring_new says why and
 * these tests are skipped: the server then writes with writev, which
 * test_conn runs both ways.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

#include "hubbub/uring.h"

/* A loopback TCP pair: *srv non-blocking (as libuv's), *cli blocking. */
static void tcp_pair(int *srv, int *cli) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof a;
  assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(l, 4), 0);
  assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);
  *cli = socket(AF_INET, SOCK_STREAM, 0);
  assert_int_equal(connect(*cli, (struct sockaddr *)&a, sizeof a), 0);
  *srv = accept(l, NULL, NULL);
  assert_true(*srv >= 0);
  fcntl(*srv, F_SETFL, fcntl(*srv, F_GETFL) | O_NONBLOCK);
  close(l);
}

static hb_uring *ring_or_skip(unsigned entries) {
  char why[128];
  hb_uring *u = hb_uring_new(entries, why, sizeof why);
  if (!u) {
    print_message("io_uring is not available here (%s): skipped\n", why);
    skip();
  }
  return u;
}

#define MAX_RESULTS 8
static struct {
  int n;
  void *tag[MAX_RESULTS];
  int res[MAX_RESULTS];
} got;

static void record(void *tag, int res) {
  assert_true(got.n < MAX_RESULTS);
  got.tag[got.n] = tag;
  got.res[got.n++] = res;
}

static int result_of(void *tag) {
  for (int i = 0; i < got.n; i++)
    if (got.tag[i] == tag) return got.res[i];
  fail_msg("no result for a send");
  return 0;
}

static void read_exactly(int fd, char *buf, size_t n) {
  size_t have = 0;
  while (have < n) {
    ssize_t r = read(fd, buf + have, n - have);
    assert_true(r > 0);
    have += (size_t)r;
  }
}

/* Two connections, two frames for one and one for the other: one submit,
 * each send's bytes reported under its tag, the bytes in order on the wire. */
static void test_sends_of_several_sockets_in_one_submit(void **state) {
  (void)state;
  hb_uring *u = ring_or_skip(4);
  int s1, c1, s2, c2;
  tcp_pair(&s1, &c1);
  tcp_pair(&s2, &c2);
  memset(&got, 0, sizeof got);
  struct iovec a[2] = {{.iov_base = "hello ", .iov_len = 6}, {.iov_base = "world", .iov_len = 5}};
  struct iovec b[1] = {{.iov_base = "second", .iov_len = 6}};
  int tag1, tag2;
  assert_int_equal(hb_uring_queued(u), 0);
  hb_uring_queue(u, s1, a, 2, &tag1);
  hb_uring_queue(u, s2, b, 1, &tag2);
  assert_int_equal(hb_uring_queued(u), 2);
  assert_false(hb_uring_full(u));
  assert_int_equal(hb_uring_submit(u, record), 2);
  assert_int_equal(hb_uring_queued(u), 0);
  assert_int_equal(got.n, 2);
  assert_int_equal(result_of(&tag1), 11);
  assert_int_equal(result_of(&tag2), 6);
  assert_true(hb_uring_usable(u));
  char buf[16] = {0};
  read_exactly(c1, buf, 11);
  assert_memory_equal(buf, "hello world", 11);
  read_exactly(c2, buf, 6);
  assert_memory_equal(buf, "second", 6);
  assert_int_equal(hb_uring_submit(u, record), 0); /* nothing queued: no system call */
  hb_uring_free(u);
  close(s1), close(c1), close(s2), close(c2);
}

/* The queue holds `entries` sends; the caller submits when it is full. */
static void test_full_queue(void **state) {
  (void)state;
  hb_uring *u = ring_or_skip(2);
  int s, c;
  tcp_pair(&s, &c);
  memset(&got, 0, sizeof got);
  struct iovec v = {.iov_base = "x", .iov_len = 1};
  int t1, t2;
  hb_uring_queue(u, s, &v, 1, &t1);
  assert_false(hb_uring_full(u));
  hb_uring_queue(u, s, &v, 1, &t2);
  assert_true(hb_uring_full(u));
  assert_int_equal(hb_uring_submit(u, record), 2);
  assert_int_equal(result_of(&t1), 1);
  assert_int_equal(result_of(&t2), 1);
  hb_uring_free(u);
  close(s), close(c);
}

/* A peer that does not read: the send takes what fits and then reports
 * -EAGAIN at once, instead of waiting for room (the caller hands the rest
 * to libuv's uv_write, which waits for writability). */
static void test_full_socket_buffer_is_eagain(void **state) {
  (void)state;
  hb_uring *u = ring_or_skip(2);
  int s, c;
  tcp_pair(&s, &c);
  static char big[256 * 1024];
  struct iovec v = {.iov_base = big, .iov_len = sizeof big};
  int tag, last = 0;
  for (int i = 0; i < 200 && last != -EAGAIN; i++) {
    memset(&got, 0, sizeof got);
    hb_uring_queue(u, s, &v, 1, &tag);
    assert_int_equal(hb_uring_submit(u, record), 1);
    last = result_of(&tag);
    assert_true(last > 0 || last == -EAGAIN);
  }
  assert_int_equal(last, -EAGAIN);
  hb_uring_free(u);
  close(s), close(c);
}

/* A peer gone with a reset: the send reports the socket's error. */
static void test_reset_peer_is_an_error(void **state) {
  (void)state;
  hb_uring *u = ring_or_skip(2);
  int s, c;
  tcp_pair(&s, &c);
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(c); /* RST */
  char one = 'x';
  for (int i = 0; i < 100; i++) { /* the reset arrives at once on loopback; bounded anyway */
    if (recv(s, &one, 1, MSG_PEEK | MSG_DONTWAIT) == -1 && errno != EAGAIN) break;
    usleep(1000);
  }
  memset(&got, 0, sizeof got);
  struct iovec v = {.iov_base = "late", .iov_len = 4};
  int tag;
  hb_uring_queue(u, s, &v, 1, &tag);
  assert_int_equal(hb_uring_submit(u, record), 1);
  int r = result_of(&tag);
  assert_true(r == -ECONNRESET || r == -EPIPE);
  hb_uring_free(u);
  close(s);
}

/* A submission that fails (here: the ring's descriptor is no longer a
 * ring) sends nothing: every queued send is reported HB_URING_NOT_SENT, so
 * the caller writes those bytes with writev, and the ring is unusable. */
static void test_failed_submission_reports_not_sent(void **state) {
  (void)state;
  hb_uring *u = ring_or_skip(4);
  int s, c;
  tcp_pair(&s, &c);
  int devnull = open("/dev/null", O_RDWR);
  assert_true(dup2(devnull, hb_uring_fd(u)) >= 0);
  close(devnull);
  memset(&got, 0, sizeof got);
  struct iovec v = {.iov_base = "x", .iov_len = 1};
  int t1, t2;
  hb_uring_queue(u, s, &v, 1, &t1);
  hb_uring_queue(u, s, &v, 1, &t2);
  assert_int_equal(hb_uring_submit(u, record), 0);
  assert_int_equal(result_of(&t1), HB_URING_NOT_SENT);
  assert_int_equal(result_of(&t2), HB_URING_NOT_SENT);
  assert_false(hb_uring_usable(u));
  char b;
  assert_int_equal(recv(c, &b, 1, MSG_DONTWAIT), -1); /* nothing went */
  hb_uring_free(u);
  close(s), close(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_sends_of_several_sockets_in_one_submit),
      HBT_TEST(test_full_queue),
      HBT_TEST(test_full_socket_buffer_is_eagain),
      HBT_TEST(test_reset_peer_is_an_error),
      HBT_TEST(test_failed_submission_reports_not_sent),
  };
  return cmocka_run_group_tests_name("uring", tests, NULL, NULL);
}
