/*
 * uring_probe.c - hb_uring_probe: does io_uring work here, and what does a
 * loopback send cost by each way of making it?
 *
 * It opens N loopback TCP connections; a child process (pinned to another
 * core when there is one) drains their client ends with epoll, as a
 * subscriber would; the parent writes a 100-byte frame to each server end per
 * round, N per round (a flush chunk), sleeping between rounds so the reader
 * goes back to sleep and every round pays its wake-ups, as a fan-out does.
 * For each way of sending it reports the parent's CPU time (user + system,
 * getrusage: io_uring's worker threads included) per frame:
 *
 *   writev1..writevK  one writev per connection carrying 1..K frames (libuv's
 *                     uv_try_write is a writev): the frames-per-write curve
 *   write, sendmsg    one frame per call, through the VFS or straight to the
 *                     socket layer
 *   uring_send        one IORING_OP_SEND per connection, all N submitted with
 *                     one io_uring_enter
 *   uring_sendmsg     the same with IORING_OP_SENDMSG
 *   null_syscall      getppid(), for scale
 *
 * Then the receiving side, as a load generator reads: one frame per write,
 * drained by a reader with epoll + read() (hb_loadgen), then by one with a
 * multishot IORING_OP_RECV per connection into provided buffers; the
 * reader's CPU per frame.
 *
 * It prints one JSON line. io_uring unavailable (ENOSYS, EPERM: a seccomp
 * filter or kernel.io_uring_disabled) is reported, not fatal.
 * usage: hb_uring_probe [--conns N] [--rounds R]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROBE_MAX_CONNS 1024
#define PROBE_FRAME_BYTES 100  /* about one small publish frame */
#define PROBE_MAX_FRAMES 32    /* writev with up to this many frames */
#define PROBE_PAUSE_US 1000    /* between rounds: the reader falls asleep */
#define PROBE_NULL_CALLS 200000

static int g_n = 256, g_rounds = 200;
static int g_srv[PROBE_MAX_CONNS], g_cli[PROBE_MAX_CONNS];
static char g_frame[PROBE_MAX_FRAMES * PROBE_FRAME_BYTES];

static int64_t cpu_ns(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
         ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

static void die(const char *what) {
  fprintf(stderr, "hb_uring_probe: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof set, &set); /* best effort */
}

#define PROBE_RBUF_COUNT 256   /* provided buffers of the io_uring reader */
#define PROBE_RBUF_BYTES 4096

/* Drain with epoll and read(), as hb_loadgen does; returns the bytes read. */
static long long read_epoll(void) {
  static char buf[1 << 16];
  long long bytes = 0;
  int ep = epoll_create1(0);
  for (int i = 0; i < g_n; i++) {
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = g_cli[i]};
    epoll_ctl(ep, EPOLL_CTL_ADD, g_cli[i], &ev);
  }
  int open_conns = g_n;
  struct epoll_event evs[256];
  while (open_conns > 0) {
    int k = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < k; i++) {
      ssize_t r = read(evs[i].data.fd, buf, sizeof buf);
      if (r > 0) bytes += r;
      if (r == 0) {
        close(evs[i].data.fd);
        open_conns--;
      }
    }
  }
  return bytes;
}

/* Drain with one multishot IORING_OP_RECV per connection into a ring of
 * provided buffers: completions are reaped in batches, no system call per
 * read. Returns the bytes read, or -1 if io_uring cannot do it here. */
static long long read_uring(void) {
  struct io_uring ring;
  if (io_uring_queue_init(PROBE_MAX_CONNS * 2, &ring, 0) < 0) return -1;
  int err = 0;
  struct io_uring_buf_ring *br;
  size_t brsz = PROBE_RBUF_COUNT * sizeof(struct io_uring_buf);
  br = aligned_alloc(4096, brsz);
  static char bufs[PROBE_RBUF_COUNT][PROBE_RBUF_BYTES];
  io_uring_buf_ring_init(br);
  struct io_uring_buf_reg reg = {.ring_addr = (unsigned long)br, .ring_entries = PROBE_RBUF_COUNT, .bgid = 1};
  if ((err = io_uring_register_buf_ring(&ring, &reg, 0)) < 0) return -1;
  for (int b = 0; b < PROBE_RBUF_COUNT; b++)
    io_uring_buf_ring_add(br, bufs[b], PROBE_RBUF_BYTES, (unsigned short)b, io_uring_buf_ring_mask(PROBE_RBUF_COUNT), b);
  io_uring_buf_ring_advance(br, PROBE_RBUF_COUNT);
  for (int i = 0; i < g_n; i++) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    io_uring_prep_recv_multishot(sqe, g_cli[i], NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = 1;
    io_uring_sqe_set_data64(sqe, (unsigned long long)i);
  }
  long long bytes = 0;
  int open_conns = g_n;
  while (open_conns > 0) {
    if (io_uring_submit_and_wait(&ring, 1) < 0) break;
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      seen++;
      int i = (int)io_uring_cqe_get_data64(cqe);
      if (cqe->res > 0) {
        bytes += cqe->res;
        unsigned short bid = (unsigned short)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        io_uring_buf_ring_add(br, bufs[bid], PROBE_RBUF_BYTES, bid, io_uring_buf_ring_mask(PROBE_RBUF_COUNT), 0);
        io_uring_buf_ring_advance(br, 1);
      }
      if (cqe->res == 0) {
        close(g_cli[i]);
        open_conns--;
      } else if (!(cqe->flags & IORING_CQE_F_MORE)) {
        if (cqe->res < 0 && cqe->res != -ENOBUFS) return -1;
        /* out of buffers, or the kernel ended it: arm it again */
        struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
        io_uring_prep_recv_multishot(sqe, g_cli[i], NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = 1;
        io_uring_sqe_set_data64(sqe, (unsigned long long)i);
      }
    }
    io_uring_cq_advance(&ring, seen);
  }
  return bytes;
}

/* The reader process: drain every client end until the parent closes them,
 * then report its CPU time and the bytes it read on `report`. */
static void reader(int use_uring, int report) {
  int64_t c0 = cpu_ns();
  long long bytes = use_uring ? read_uring() : read_epoll();
  long long r[2] = {cpu_ns() - c0, bytes};
  if (write(report, r, sizeof r) != (ssize_t)sizeof r) _exit(1);
  _exit(0);
}

static void connect_all(void) {
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) || listen(ls, PROBE_MAX_CONNS) ||
      getsockname(ls, (struct sockaddr *)&sa, &sl))
    die("listen");
  int one = 1;
  for (int i = 0; i < g_n; i++) {
    g_cli[i] = socket(AF_INET, SOCK_STREAM, 0);
    if (g_cli[i] < 0 || connect(g_cli[i], (struct sockaddr *)&sa, sizeof sa)) die("connect");
    g_srv[i] = accept(ls, NULL, NULL);
    if (g_srv[i] < 0) die("accept");
    setsockopt(g_srv[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  close(ls);
}

/* CPU ns per frame of R rounds of `send_round`, with a pause between rounds. */
static double timed(void (*send_round)(int), int arg, int frames_per_call) {
  int64_t c0 = cpu_ns();
  for (int r = 0; r < g_rounds; r++) {
    send_round(arg);
    usleep(PROBE_PAUSE_US);
  }
  return (double)(cpu_ns() - c0) / ((double)g_rounds * g_n * frames_per_call);
}

static void round_writev(int k) {
  struct iovec iov[PROBE_MAX_FRAMES];
  for (int j = 0; j < k; j++) iov[j] = (struct iovec){g_frame + j * PROBE_FRAME_BYTES, PROBE_FRAME_BYTES};
  for (int i = 0; i < g_n; i++)
    if (writev(g_srv[i], iov, k) < 0) die("writev");
}

static void round_write(int unused) {
  (void)unused;
  for (int i = 0; i < g_n; i++)
    if (write(g_srv[i], g_frame, PROBE_FRAME_BYTES) < 0) die("write");
}

static void round_sendmsg(int unused) {
  (void)unused;
  struct iovec iov = {g_frame, PROBE_FRAME_BYTES};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
  for (int i = 0; i < g_n; i++)
    if (sendmsg(g_srv[i], &mh, MSG_NOSIGNAL) < 0) die("sendmsg");
}

static struct io_uring g_ring;

static void round_uring(int use_sendmsg) {
  static struct iovec iov[PROBE_MAX_CONNS];
  static struct msghdr mh[PROBE_MAX_CONNS];
  for (int i = 0; i < g_n; i++) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&g_ring);
    if (use_sendmsg) {
      iov[i] = (struct iovec){g_frame, PROBE_FRAME_BYTES};
      mh[i] = (struct msghdr){.msg_iov = &iov[i], .msg_iovlen = 1};
      io_uring_prep_sendmsg(sqe, g_srv[i], &mh[i], MSG_NOSIGNAL);
    } else {
      io_uring_prep_send(sqe, g_srv[i], g_frame, PROBE_FRAME_BYTES, MSG_NOSIGNAL);
    }
  }
  /* one system call submits the chunk and waits for its completions */
  if (io_uring_submit_and_wait(&g_ring, (unsigned)g_n) < 0) die("io_uring_submit_and_wait");
  struct io_uring_cqe *cqe;
  unsigned head, seen = 0;
  io_uring_for_each_cqe(&g_ring, head, cqe) {
    if (cqe->res != PROBE_FRAME_BYTES) {
      errno = cqe->res < 0 ? -cqe->res : EIO;
      die("io_uring send");
    }
    seen++;
  }
  io_uring_cq_advance(&g_ring, seen);
}

int main(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--conns")) g_n = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--rounds")) g_rounds = atoi(argv[i + 1]);
  }
  if (g_n < 1 || g_n > PROBE_MAX_CONNS || g_rounds < 1) {
    fprintf(stderr, "usage: hb_uring_probe [--conns 1..%d] [--rounds R]\n", PROBE_MAX_CONNS);
    return 2;
  }
  memset(g_frame, 'x', sizeof g_frame);
  signal(SIGPIPE, SIG_IGN);
  struct utsname u;
  uname(&u);
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

  /* is io_uring there at all? */
  int ur = io_uring_queue_init(PROBE_MAX_CONNS, &g_ring, 0);
  char uring[160];
  if (ur < 0) snprintf(uring, sizeof uring, "unavailable: io_uring_setup: %s", strerror(-ur));
  else snprintf(uring, sizeof uring, "ok");

  /* The senders: one reader (epoll) for every way of sending. */
  int rep[2];
  if (pipe(rep)) die("pipe");
  connect_all();
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    /* the server ends are the parent's: closing them there must reach us */
    for (int i = 0; i < g_n; i++) close(g_srv[i]);
    if (ncpu > 1) pin(1);
    reader(0, rep[1]);
  }
  for (int i = 0; i < g_n; i++) close(g_cli[i]);
  if (ncpu > 1) pin(0);

  int64_t c0 = cpu_ns();
  for (int i = 0; i < PROBE_NULL_CALLS; i++) syscall(SYS_getppid);
  double null_ns = (double)(cpu_ns() - c0) / PROBE_NULL_CALLS;

  timed(round_write, 0, 1); /* warm up: buffers, caches, the reader's first wake-ups */
  static const int ks[] = {1, 2, 4, 8, 16, 32};
  double wv[6];
  for (int j = 0; j < 6; j++) wv[j] = timed(round_writev, ks[j], ks[j]);
  double w = timed(round_write, 0, 1);
  double sm = timed(round_sendmsg, 0, 1);
  double us = -1, usm = -1;
  if (ur >= 0) {
    us = timed(round_uring, 0, 1);
    usm = timed(round_uring, 1, 1);
  }
  for (int i = 0; i < g_n; i++) close(g_srv[i]);
  waitpid(child, NULL, 0);
  long long dummy[2];
  if (read(rep[0], dummy, sizeof dummy) != (ssize_t)sizeof dummy) die("reader report");

  /* The readers: one frame per write(), read with epoll + read() and then
   * with multishot io_uring receives; the reader's CPU per frame. */
  double rd[2] = {-1, -1};
  for (int mode = 0; mode < (ur >= 0 ? 2 : 1); mode++) {
    connect_all();
    child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
      for (int i = 0; i < g_n; i++) close(g_srv[i]);
      if (ncpu > 1) pin(1);
      reader(mode, rep[1]);
    }
    for (int i = 0; i < g_n; i++) close(g_cli[i]);
    timed(round_write, 0, 1);
    for (int i = 0; i < g_n; i++) close(g_srv[i]);
    waitpid(child, NULL, 0);
    long long r[2];
    if (read(rep[0], r, sizeof r) != (ssize_t)sizeof r) die("reader report");
    if (r[1] > 0) rd[mode] = (double)r[0] / ((double)r[1] / PROBE_FRAME_BYTES);
  }

  printf("{\"tool\":\"uring_probe\",\"kernel\":\"%s\",\"io_uring\":\"%s\",\"conns\":%d,\"rounds\":%d,"
         "\"frame_bytes\":%d,\"cpu_ns_per_frame\":{\"null_syscall\":%.0f,\"write\":%.0f,\"sendmsg\":%.0f,"
         "\"writev1\":%.0f,\"writev2\":%.0f,\"writev4\":%.0f,\"writev8\":%.0f,\"writev16\":%.0f,"
         "\"writev32\":%.0f,\"uring_send\":%.0f,\"uring_sendmsg\":%.0f},"
         "\"reader_cpu_ns_per_frame\":{\"epoll_read\":%.0f,\"uring_recv_multishot\":%.0f}}\n",
         u.release, uring, g_n, g_rounds, PROBE_FRAME_BYTES, null_ns, w, sm, wv[0], wv[1], wv[2], wv[3],
         wv[4], wv[5], us, usm, rd[0], rd[1]);
  if (ur >= 0) io_uring_queue_exit(&g_ring);
  return 0;
}
