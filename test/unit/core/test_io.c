/* test_io.c - the I/O threads (io.c) and what they assume of the kernel's
 * sockets: TCP_NODELAY inherited from the listener, the refusal to share a
 * port another process listens on, jobs posted to a thread, ids. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "stack.h"

#include "hubbub/io.h"
#include "hubbub/uuid.h"

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

/* --- the I/O threads --------------------------------------------------------- */

static struct {
  int opens, closes;
  hb_conn *last;
} ev;

static void t_open(hb_conn *c, const hb_error *refusal) {
  (void)refusal;
  ev.opens++;
  ev.last = c;
}
static void t_read(hb_conn *c, const char *buf, size_t len) { (void)c, (void)buf, (void)len; }
static void t_sweep(hb_conn *c, uint64_t now) { (void)c, (void)now; }
static void t_overflow(hb_conn *c) { hb_conn_close(c, false); }
static void t_shutdown(hb_conn *c) { hb_conn_close(c, false); }
static void t_close(hb_conn *c) {
  (void)c;
  ev.closes++;
}

static const hb_conn_handler handler = {t_open, t_read, t_sweep, t_overflow, t_shutdown, t_close};

static void custom(hbt_stack *s, int nio) {
  memset(&ev, 0, sizeof ev);
  hbt_stack_init(s);
  s->mode = HBT_CUSTOM;
  s->nio = nio;
  s->hooks = (hb_io_hooks){.accept_handler = &handler, .conn_ext_bytes = 8};
}

static int connect_to(int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

static bool opened(void *arg) { return ev.opens >= *(int *)arg; }
static bool closed(void *arg) { return ev.closes >= *(int *)arg; }

static void probe_nodelay(void *arg) {
  uv_os_fd_t fd;
  assert_int_equal(uv_fileno((uv_handle_t *)&ev.last->tcp, &fd), 0);
  socklen_t len = sizeof(int);
  assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, arg, &len), 0);
}

/* Port 0: the kernel chooses; a connection to it is accepted, driven by the
 * accept handler, with TCP_NODELAY on (inherited from the listener). */
static void test_port_zero_accepts_with_nodelay(void **state) {
  (void)state;
  hbt_stack s;
  custom(&s, 1);
  hbt_stack_start(&s);
  assert_true(s.set.port > 0);
  hb_io *io = hbt_io(&s, 0);
  int fd = connect_to(s.set.port);
  int one = 1;
  hbt_io_until(io, opened, &one, "the connection accepted");
  int nodelay = 0;
  hbt_on_io(io, probe_nodelay, &nodelay);
  assert_int_not_equal(nodelay, 0);
  close(fd);
  hbt_io_until(io, closed, &one, "the connection closed");
  hbt_stack_stop(&s);
}

/* A plain listening socket on 127.0.0.1, port chosen by the kernel. */
static int plain_listener(int *port) {
  struct sockaddr_in a;
  socklen_t alen = sizeof a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int l = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(l >= 0);
  assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(l, 1), 0);
  assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);
  *port = ntohs(a.sin_port);
  return l;
}

/* SO_REUSEPORT is for this process's own threads: a port another socket
 * listens on is refused (-1), instead of joining it and taking half of its
 * connections. */
static void test_port_in_use_refused(void **state) {
  (void)state;
  int port;
  int l = plain_listener(&port);
  hbt_stack s;
  custom(&s, 2);
  s.cfg.port = port;
  assert_int_equal(hb_ioset_start(&s.set, &s.cfg, s.nio, &s.hooks), -1);
  assert_null(s.set.io); /* refused before any thread or listener was made */
  close(l);
  /* the same port once it is free */
  memset(&s.set, 0, sizeof s.set);
  hbt_stack_start(&s);
  assert_int_equal(s.set.port, port);
  /* and a second set on a port the first one serves */
  hbt_stack t;
  custom(&t, 1);
  t.cfg.port = port;
  assert_int_equal(hb_ioset_start(&t.set, &t.cfg, t.nio, &t.hooks), -1);
  hbt_stack_stop(&s);
}

#define POSTS 200

typedef struct {
  hb_io *io;
  int seen[POSTS];
  int n;
  bool wrong_thread, wrong_ctx;
} post_log;

typedef struct {
  post_log *log;
  int value;
} post_arg;

static post_log logs[2];
static post_arg post_args[2][POSTS];

static void logged(void *ctx, void *arg) {
  post_arg *a = arg;
  post_log *l = a->log;
  if (ctx != l->io) l->wrong_ctx = true;
  uv_thread_t self = uv_thread_self();
  if (!uv_thread_equal(&self, &l->io->thread)) l->wrong_thread = true;
  l->seen[l->n++] = a->value;
}

static void nothing(void *arg) { (void)arg; }

/* hb_io_post runs the job on that thread's loop, with the thread as ctx, in
 * posting order. */
static void test_post_runs_on_the_thread(void **state) {
  (void)state;
  hbt_stack s;
  custom(&s, 2);
  hbt_stack_start(&s);
  memset(logs, 0, sizeof logs);
  for (int i = 0; i < 2; i++) {
    logs[i].io = hbt_io(&s, i);
    for (int k = 0; k < POSTS; k++) {
      post_args[i][k] = (post_arg){&logs[i], k};
      hb_io_post(logs[i].io, logged, &post_args[i][k]);
    }
  }
  for (int i = 0; i < 2; i++) hbt_on_io(hbt_io(&s, i), nothing, NULL); /* after every job before it */
  for (int i = 0; i < 2; i++) {
    assert_int_equal(logs[i].n, POSTS);
    for (int k = 0; k < POSTS; k++) assert_int_equal(logs[i].seen[k], k);
    assert_false(logs[i].wrong_thread);
    assert_false(logs[i].wrong_ctx);
  }
  hbt_stack_stop(&s);
}

#define IDS_PER_THREAD 5000

static char ids[2 * IDS_PER_THREAD][HB_UUID_STR_BYTES];

typedef struct {
  hb_io *io;
  char (*out)[HB_UUID_STR_BYTES];
} id_job;

static void make_ids(void *arg) {
  id_job *j = arg;
  for (int k = 0; k < IDS_PER_THREAD; k++) hb_io_new_id(j->io, j->out[k]);
}

static int cmp_id(const void *a, const void *b) { return strcmp(a, b); }

/* Message and connection ids: UUID v4 form, never the same twice in the
 * process, across threads. */
static void test_new_id_unique(void **state) {
  (void)state;
  hbt_stack s;
  custom(&s, 2);
  hbt_stack_start(&s);
  for (int i = 0; i < 2; i++) {
    id_job j = {hbt_io(&s, i), ids + i * IDS_PER_THREAD};
    hbt_on_io(j.io, make_ids, &j);
  }
  hbt_stack_stop(&s);
  for (int k = 0; k < 2 * IDS_PER_THREAD; k++) {
    hb_uuid u;
    if (!hb_uuid_parse(ids[k], 36, &u)) fail_msg("'%s' is not a UUID", ids[k]);
    assert_int_equal(ids[k][14], '4');
    assert_non_null(strchr("89ab", ids[k][19]));
  }
  qsort(ids, 2 * IDS_PER_THREAD, sizeof ids[0], cmp_id);
  for (int k = 1; k < 2 * IDS_PER_THREAD; k++)
    if (strcmp(ids[k - 1], ids[k]) == 0) fail_msg("id %s twice", ids[k]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      HBT_TEST(test_accepted_socket_inherits_nodelay),
      HBT_TEST(test_port_zero_accepts_with_nodelay),
      HBT_TEST(test_port_in_use_refused),
      HBT_TEST(test_post_runs_on_the_thread),
      HBT_TEST(test_new_id_unique),
  };
  return cmocka_run_group_tests_name("io", tests, NULL, NULL);
}
