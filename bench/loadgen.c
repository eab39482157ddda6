/*
 * loadgen.c - hb_loadgen, the benchmark load generator.
 *
 * One thread, one epoll set, its own minimal WebSocket client (handshake,
 * masked client frames, unmasked server frames). It opens N real WebSocket
 * connections to hubbub, nginx+nchan or the uWebSockets peer, subscribes them,
 * publishes with a send timestamp inside every payload, and prints ONE JSON
 * line: deliveries/s, loss, end-to-end latency p50/p90/p99/max (from the
 * generator writing the publish, WebSocket or HTTP, to each subscriber reading
 * it; 1 us resolution below 65 ms), the same for the first and for the last
 * subscriber of each message (how long a fan-out waited before it started,
 * and how long it took), the server's CPU time per delivery and per publish
 * (its threads' time on a CPU from /proc/PID/task/TID/schedstat, before and
 * after), its write and read
 * system calls (syscw/syscr of /proc/PID/io), its RSS, the generator's own
 * CPU time (a generator near 100 % measures itself) and the share of the run
 * in which some task on the machine waited for a CPU (/proc/pressure/cpu: the
 * machine is shared; above a few % the run measured the neighbours too).
 *
 * Workloads (--workload):
 *   fanout  R rooms x S connections; either one publisher per room (--pub one)
 *           or every connection publishing into its own room (--pub all);
 *           paced (--rate msg/s in total, or --per-conn-rate) or closed loop
 *           (--inflight K: at most K messages not yet seen by every subscriber).
 *           Paced publishing is --pace even by default: message k leaves at
 *           start + k/rate (a nanosecond timeout, not a 1 ms tick) and
 *           consecutive messages go to consecutive rooms (message k from room
 *           k mod R, member (k / R) mod S), so every room sees its share spread
 *           evenly in time. --pace burst is the older generator: 1 ms ticks and
 *           the publishers taken in connection order, i.e. a room's 100
 *           members one after the other, so a room gets bursts.
 *   http    R rooms of S subscribers; H keep-alive HTTP connections publish
 *           (room = connection mod R) with at most one request outstanding
 *           each: as fast as they are answered, or paced with --rate (even,
 *           as above; a message waits for a free connection if none is).
 *   idle    N subscribed idle connections: server RSS per connection; holds
 *           them --hold seconds (the wrk run of W3 uses this for subscribers).
 *   connect N connections opened as fast as the server accepts them
 *           (--window in progress at a time): connections per second.
 *   limit   N connections held, then one more (must be refused cleanly, or at
 *           least fail without harming the server), then one closed and a new
 *           one opened (the server must still accept).
 *   presence (hubbub) K observers subscribe to the presence of one session,
 *           then N members (distinct users, tokens minted here with --secret;
 *           --distinct 0: all one user) join as fast as the server takes them:
 *           the server CPU for the joins and its RSS per member; then --churn
 *           percent of the members are replaced every second for --duration
 *           seconds: presence messages and bytes per observer per second.
 * With --pub-port P2 the publishers (the HTTP connections; with --pub one the
 * first connection of each room) connect to P2: another node of a cluster.
 *
 * It does not link hubbub_core, so heap goes through lg_alloc (abort on OOM,
 * like hb_malloc) rather than hb_malloc.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

/* --- limits of the generator (bench-local: not server limits) ------------ */
#define LG_MAX_CONNS 20000          /* the machine caps a process at 20,000 fds */
#define LG_MAX_ROOMS 1024
#define LG_RING (1u << 21)          /* message records; > messages per run */
#define LG_HIST_FINE_US 65536       /* 1 us buckets below this latency */
#define LG_HIST_COARSE_US 100       /* then 100 us buckets */
#define LG_HIST_RANGE_US 10500000   /* 10.5 s of latency range */
#define LG_HIST_BUCKETS (LG_HIST_FINE_US + (LG_HIST_RANGE_US - LG_HIST_FINE_US) / LG_HIST_COARSE_US)
#define LG_POLL_TICK_NS 1000000LL   /* longest sleep while publishing */
#define LG_LATE_SEND_NS 1000000LL   /* a paced publish this late counts in late_sends */
#define LG_READ_BUF (256 * 1024)    /* one shared read buffer */
#define LG_MSG_TIMEOUT_NS 2000000000LL /* a message unseen this long is lost */
#define LG_DRAIN_NS 2000000000LL    /* wait for stragglers after publishing */
#define LG_SETUP_TIMEOUT_NS 60000000000LL
#define LG_MAX_EVENTS 1024
#define LG_PAYLOAD_PAD 64           /* filler bytes in each payload */

enum target { T_HUBBUB, T_NCHAN, T_UWS };
enum cstate { S_CONNECTING, S_HS_SENT, S_OPEN, S_READY, S_HTTP, S_CLOSED, S_FAILED };

struct conn {
  int fd;
  int room;
  uint8_t state;
  uint8_t is_http;
  uint8_t http_busy;
  char *rbuf; /* leftover bytes of an incomplete frame / response */
  uint32_t rlen, rcap;
  char *wbuf; /* output the kernel did not take yet */
  uint32_t wlen, wcap;
  int64_t t_start;
  int64_t next_pub_ns;
  char *tok;           /* presence: this connection's own token (else its room's) */
  uint8_t observer;    /* presence: subscribes to the presence and counts what it gets */
  uint32_t last_count; /* presence: the count of the last presence message */
  uint64_t p_msgs, p_bytes; /* presence messages and bytes received */
};

struct rec {
  uint64_t seq;
  int64_t t;
  int64_t t_first; /* first delivery seen, 0 before */
  uint32_t expected;
  uint32_t got;
  uint8_t done;
};

/* --- options ---------------------------------------------------------------- */
static enum target g_target = T_HUBBUB;
static const char *g_workload = "fanout";
static int g_port = 8080;
static int g_pub_port = 0; /* --pub-port: publishers connect here (another node of a cluster) */
static int g_rooms = 1;
static int g_subs = 100;       /* connections per room */
static int g_pub_all;          /* --pub all */
static int g_inflight;         /* closed loop when > 0 */
static int g_sub_at_upgrade;   /* hubbub: --subscribe upgrade (?subscribe=) instead of a message */
static double g_rate;          /* total msg/s when > 0 */
static int g_pace_burst;       /* --pace burst: the older 1 ms tick, room-ordered publishers */
static double g_per_conn_rate; /* msg/s per connection (--pub all) */
static double g_duration = 5;
static double g_hold;
static int g_http_conns = 16;
static int g_window = 256;
static int g_pid;
static const char *g_tokens_file; /* hubbub: "event_id session_id token" per room */
static const char *g_api_token;
static const char *g_label = "";
static const char *g_secret, *g_org, *g_plugin; /* presence: mint per-connection tokens */
static int g_observers = 10;
static int g_distinct = 1;
static double g_churn_pct = 1.0;
static int g_ready_on_welcome; /* a connection is ready at its welcome (no subscribe) */
static const char *g_ready_file; /* written when publishing starts (bench/profile.sh) */

/* --- state ------------------------------------------------------------------- */
static int g_ep;
static struct conn *g_conns;
static int g_nconns;
static char *g_tok[LG_MAX_ROOMS], *g_ev[LG_MAX_ROOMS], *g_se[LG_MAX_ROOMS];
static int g_room_ready[LG_MAX_ROOMS];
static struct rec *g_ring;
/* latency histograms: every delivery; the first and the last of each message */
struct hist {
  uint32_t *b;
  int64_t max_ns;
  uint64_t n;
  double sum_ns;
};
static struct hist g_lat, g_first, g_last;
static uint64_t g_seq, g_oldest = 1;
static uint64_t g_published, g_expected, g_delivered, g_late, g_dup, g_errors;
static uint64_t g_http_ok, g_http_bad, g_refused, g_hs_fail, g_closed_by_server;
static uint64_t g_late_sends; /* paced publishes written > LG_LATE_SEND_NS after their time */
static int g_inflight_now;
static int g_ready, g_opened, g_connecting;
static char g_readbuf[LG_READ_BUF];
static uint64_t g_rng = 0x9e3779b97f4a7c15ULL;

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "hb_loadgen: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(2);
}

static void *lg_alloc(size_t n) {
  void *p = calloc(1, n);
  if (!p) die("out of memory (%zu bytes)", n);
  return p;
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint32_t rnd32(void) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return (uint32_t)g_rng;
}

/* --- /proc of the server ---------------------------------------------------- */
/* utime+stime of /proc/PID/stat: clock ticks (10 ms), every thread, dead ones too. */
static int64_t proc_stat_cpu_ns(int pid) {
  char path[64], buf[2048];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  /* the command name may hold spaces: fields count from after the last ')' */
  char *p = strrchr(buf, ')');
  if (!p) return 0;
  p += 2;
  unsigned long long ut = 0, st = 0;
  int field = 3;
  char *save = NULL;
  for (char *t = strtok_r(p, " ", &save); t; t = strtok_r(NULL, " ", &save), field++) {
    if (field == 14) ut = strtoull(t, NULL, 10);
    if (field == 15) {
      st = strtoull(t, NULL, 10);
      break;
    }
  }
  long hz = sysconf(_SC_CLK_TCK);
  return (int64_t)((ut + st) * (1000000000ULL / (unsigned long long)hz));
}

/*
 * The server's CPU time in ns: the first field of /proc/PID/task/TID/schedstat
 * (time on a CPU, ns) summed over its threads, which resolves the few ms a
 * lone publish costs where /proc/PID/stat counts 10 ms ticks. A thread that
 * ends during the run would be lost: none of the servers ends one. Falls back
 * to /proc/PID/stat.
 */
static int64_t proc_cpu_ns(int pid) {
  char path[96];
  if (pid <= 0) return 0;
  snprintf(path, sizeof path, "/proc/%d/task", pid);
  DIR *d = opendir(path);
  if (!d) return proc_stat_cpu_ns(pid);
  int64_t sum = 0;
  int ok = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    snprintf(path, sizeof path, "/proc/%d/task/%.16s/schedstat", pid, e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    unsigned long long ns;
    if (fscanf(f, "%llu", &ns) == 1) {
      sum += (int64_t)ns;
      ok = 1;
    }
    fclose(f);
  }
  closedir(d);
  return ok ? sum : proc_stat_cpu_ns(pid);
}

static long proc_rss_kb(int pid) {
  char path[64], line[256];
  long kb = 0;
  if (pid <= 0) return 0;
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) kb = strtol(line + 6, NULL, 10);
  fclose(f);
  return kb;
}

/* syscr and syscw of /proc/PID/io: the server's read and write system calls
 * (write, writev, send*; read, readv, recv*). 0 when unreadable. */
static void proc_syscalls(int pid, long long *r, long long *w) {
  char path[64], line[256];
  *r = *w = 0;
  if (pid <= 0) return;
  snprintf(path, sizeof path, "/proc/%d/io", pid);
  FILE *f = fopen(path, "r");
  if (!f) return;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "syscr:", 6) == 0) *r = strtoll(line + 6, NULL, 10);
    if (strncmp(line, "syscw:", 6) == 0) *w = strtoll(line + 6, NULL, 10);
  }
  fclose(f);
}

/* The "some" total of /proc/pressure/cpu: microseconds in which at least one
 * runnable task waited for a CPU, machine-wide (-1 without PSI). Over a run
 * it says whether something else competed for the cores (the machine is
 * shared): the server and the generator, each pinned to its own core, do not
 * wait for each other. */
static long long psi_cpu_some_us(void) {
  char line[256];
  long long v = -1;
  FILE *f = fopen("/proc/pressure/cpu", "r");
  if (!f) return -1;
  while (fgets(line, sizeof line, f)) {
    const char *t = strstr(line, "total=");
    if (strncmp(line, "some", 4) == 0 && t) v = strtoll(t + 6, NULL, 10);
  }
  fclose(f);
  return v;
}

/* This process's CPU time (user + system), ns. */
static int64_t self_cpu_ns(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
         ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

/* --- output ------------------------------------------------------------------ */
static void conn_want_write(struct conn *c, int on) {
  struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
  epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_fail(struct conn *c, uint8_t state) {
  if (c->fd >= 0) {
    struct linger lg = {1, 0}; /* RST: no TIME_WAIT to exhaust ports between runs */
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(c->fd);
  }
  if (c->state == S_READY && c->room >= 0) g_room_ready[c->room]--;
  if (c->state == S_READY || c->state == S_OPEN || c->state == S_HTTP) g_opened--;
  if (c->state == S_CONNECTING || c->state == S_HS_SENT) g_connecting--;
  c->fd = -1;
  c->state = state;
}

/* Write now; keep what the kernel does not take for EPOLLOUT. */
static void conn_send(struct conn *c, const char *p, size_t n) {
  if (c->fd < 0) return;
  if (c->wlen == 0) {
    ssize_t w = write(c->fd, p, n);
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      conn_fail(c, S_FAILED);
      return;
    }
    if (w > 0) {
      p += w;
      n -= (size_t)w;
    }
    if (n == 0) return;
  }
  if (c->wlen + n > c->wcap) {
    uint32_t cap = c->wcap ? c->wcap : 4096;
    while (cap < c->wlen + n) cap *= 2;
    char *nb = lg_alloc(cap);
    if (c->wlen) memcpy(nb, c->wbuf, c->wlen);
    free(c->wbuf);
    c->wbuf = nb;
    c->wcap = cap;
  }
  memcpy(c->wbuf + c->wlen, p, n);
  c->wlen += (uint32_t)n;
  conn_want_write(c, 1);
}

static void conn_flush(struct conn *c) {
  while (c->wlen > 0) {
    ssize_t w = write(c->fd, c->wbuf, c->wlen);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      conn_fail(c, S_FAILED);
      return;
    }
    memmove(c->wbuf, c->wbuf + w, c->wlen - (size_t)w);
    c->wlen -= (uint32_t)w;
  }
  conn_want_write(c, 0);
}

/* One masked client frame. */
static void ws_send(struct conn *c, int opcode, const char *p, size_t n) {
  char stackbuf[4096];
  char *f = n + 14 <= sizeof stackbuf ? stackbuf : lg_alloc(n + 14);
  size_t h = 0;
  f[h++] = (char)(0x80 | opcode);
  if (n < 126) {
    f[h++] = (char)(0x80 | n);
  } else if (n < 65536) {
    f[h++] = (char)(0x80 | 126);
    f[h++] = (char)(n >> 8);
    f[h++] = (char)n;
  } else {
    f[h++] = (char)(0x80 | 127);
    for (int i = 7; i >= 0; i--) f[h++] = (char)((uint64_t)n >> (8 * i));
  }
  uint32_t key = rnd32();
  uint8_t k[4];
  memcpy(k, &key, 4);
  memcpy(f + h, k, 4);
  h += 4;
  for (size_t i = 0; i < n; i++) f[h + i] = (char)(p[i] ^ k[i & 3]);
  conn_send(c, f, h + n);
  if (f != stackbuf) free(f);
}

/* --- publishing ------------------------------------------------------------- */
/* The payload every target delivers unchanged: {"s":seq,"t":ns,"p":"..."} */
static size_t make_payload(char *out, size_t cap, uint64_t seq, int64_t t) {
  static const char pad[] = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
  int n = snprintf(out, cap, "{\"s\":%llu,\"t\":%lld,\"p\":\"%.*s\"}", (unsigned long long)seq,
                   (long long)t, LG_PAYLOAD_PAD, pad);
  return (size_t)n;
}

static uint64_t new_message(int room) {
  uint64_t seq = ++g_seq;
  struct rec *r = &g_ring[seq & (LG_RING - 1)];
  int64_t t = now_ns();
  if (r->seq && !r->done) die("record ring too small for this run");
  r->seq = seq;
  r->t = t;
  r->expected = (uint32_t)g_room_ready[room];
  r->got = 0;
  r->t_first = 0;
  r->done = r->expected == 0;
  g_expected += r->expected;
  g_published++;
  if (g_inflight > 0 && !r->done) g_inflight_now++;
  return seq;
}

static void publish_ws(struct conn *c) {
  char payload[256], msg[512];
  uint64_t seq = new_message(c->room);
  size_t n = make_payload(payload, sizeof payload, seq, g_ring[seq & (LG_RING - 1)].t);
  if (g_target == T_HUBBUB) {
    int m = snprintf(msg, sizeof msg, "{\"type\":\"publish\",\"eventName\":\"b\",\"data\":%s}", payload);
    ws_send(c, 1, msg, (size_t)m);
  } else {
    ws_send(c, 1, payload, n);
  }
}

static void publish_http(struct conn *c) {
  char payload[256], body[1024], req[2048];
  int room = c->room;
  uint64_t seq = new_message(room);
  make_payload(payload, sizeof payload, seq, g_ring[seq & (LG_RING - 1)].t);
  int bn, rn;
  if (g_target == T_HUBBUB) {
    bn = snprintf(body, sizeof body,
                  "{\"scope\":{\"type\":\"session\",\"event_id\":\"%s\",\"session_id\":\"%s\"},"
                  "\"payload\":{\"event\":{\"eventName\":\"b\",\"data\":%s}}}",
                  g_ev[room], g_se[room], payload);
    rn = snprintf(req, sizeof req,
                  "POST /api/v1/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                  "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                  g_api_token, bn, body);
  } else {
    bn = (int)strlen(payload);
    rn = snprintf(req, sizeof req,
                  "POST /pub/r%d HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  "Content-Length: %d\r\n\r\n%s",
                  room, bn, payload);
  }
  c->http_busy = 1;
  conn_send(c, req, (size_t)rn);
}

/* --- receiving ---------------------------------------------------------------- */
static uint64_t num_after(const char *p, size_t n, const char *key, int *found) {
  const char *k = memmem(p, n, key, strlen(key));
  *found = 0;
  if (!k) return 0;
  k += strlen(key);
  uint64_t v = 0;
  while (k < p + n && *k >= '0' && *k <= '9') {
    v = v * 10 + (uint64_t)(*k - '0');
    k++;
    *found = 1;
  }
  return v;
}

static void hist_add(struct hist *h, int64_t ns) {
  if (ns < 0) ns = 0;
  if (ns > h->max_ns) h->max_ns = ns;
  uint64_t us = (uint64_t)ns / 1000;
  uint64_t b = us < LG_HIST_FINE_US ? us : LG_HIST_FINE_US + (us - LG_HIST_FINE_US) / LG_HIST_COARSE_US;
  if (b >= LG_HIST_BUCKETS) b = LG_HIST_BUCKETS - 1;
  h->b[b]++;
  h->n++;
  h->sum_ns += (double)ns;
}

/* The upper edge of bucket i, in ms. */
static double hist_edge_ms(uint32_t i) {
  if (i < LG_HIST_FINE_US) return (double)(i + 1) / 1000.0;
  return (double)(LG_HIST_FINE_US + (uint64_t)(i - LG_HIST_FINE_US + 1) * LG_HIST_COARSE_US) / 1000.0;
}

/* The message is complete (or written off): its last delivery is now. */
static void message_done(struct rec *r, int64_t now) {
  r->done = 1;
  if (r->got > 0) {
    hist_add(&g_first, r->t_first - r->t);
    if (r->got >= r->expected) hist_add(&g_last, now - r->t);
  }
  if (g_inflight > 0) g_inflight_now--;
}

static void presence_text(struct conn *c, const char *p, size_t n);

static void on_text(struct conn *c, const char *p, size_t n) {
  if (g_ready_on_welcome) {
    presence_text(c, p, n);
    return;
  }
  if (c->state == S_OPEN) {
    /* hubbub: the welcome, then the ack of our subscribe (with
     * --subscribe upgrade the welcome alone: the server subscribed the
     * connection before writing it) */
    if (memmem(p, n, g_sub_at_upgrade ? "\"type\":\"welcome\"" : "\"type\":\"ack\"",
               g_sub_at_upgrade ? 16 : 12)) {
      c->state = S_READY;
      g_ready++;
      g_room_ready[c->room]++;
    } else if (memmem(p, n, "\"type\":\"error\"", 14)) {
      g_errors++;
    }
    return;
  }
  int fs, ft;
  uint64_t seq = num_after(p, n, "\"s\":", &fs);
  int64_t t = (int64_t)num_after(p, n, "\"t\":", &ft);
  if (!fs || !ft) {
    if (memmem(p, n, "\"type\":\"error\"", 14)) g_errors++;
    return;
  }
  int64_t now = now_ns();
  struct rec *r = &g_ring[seq & (LG_RING - 1)];
  if (r->seq != seq || r->done) {
    if (r->seq == seq && r->got >= r->expected) g_dup++;
    else g_late++; /* written off as lost, arrived after all */
    return;
  }
  hist_add(&g_lat, now - t);
  g_delivered++;
  if (r->got++ == 0) r->t_first = now;
  if (r->got >= r->expected) message_done(r, now);
}

/* Parse server frames from p[0..n); return bytes consumed. */
static size_t ws_parse(struct conn *c, const char *p, size_t n) {
  size_t off = 0;
  while (c->fd >= 0 && n - off >= 2) {
    const uint8_t *b = (const uint8_t *)p + off;
    int op = b[0] & 0x0f;
    uint64_t len = b[1] & 0x7f;
    size_t h = 2;
    if (len == 126) {
      if (n - off < 4) break;
      len = ((uint64_t)b[2] << 8) | b[3];
      h = 4;
    } else if (len == 127) {
      if (n - off < 10) break;
      len = 0;
      for (int i = 0; i < 8; i++) len = (len << 8) | b[2 + i];
      h = 10;
    }
    if (b[1] & 0x80) h += 4; /* servers do not mask; skip a key if one came */
    if (n - off < h + len) break;
    const char *pl = p + off + h;
    if (op == 1 || op == 0 || op == 2) {
      on_text(c, pl, (size_t)len);
    } else if (op == 9) {
      ws_send(c, 0xA, pl, (size_t)len);
    } else if (op == 8) {
      g_closed_by_server++;
      conn_fail(c, S_CLOSED);
      return n;
    }
    off += h + (size_t)len;
  }
  return off;
}

static void on_handshake_done(struct conn *c) {
  g_connecting--;
  g_opened++;
  if (c->is_http) {
    c->state = S_HTTP;
    return;
  }
  if (g_target == T_HUBBUB) {
    static const char sub[] = "{\"type\":\"subscribe\",\"eventName\":\"b\",\"id\":\"s\"}";
    c->state = S_OPEN;
    if (!g_sub_at_upgrade && !g_ready_on_welcome) ws_send(c, 1, sub, sizeof sub - 1);
  } else {
    /* nchan and the uWS peer subscribe the socket to its room at the upgrade */
    c->state = S_READY;
    g_ready++;
    g_room_ready[c->room]++;
  }
}

/* Returns bytes consumed from p (the 101 head), or 0 when incomplete. */
static size_t handshake_parse(struct conn *c, const char *p, size_t n) {
  const char *e = memmem(p, n, "\r\n\r\n", 4);
  if (!e) return 0;
  if (n >= 12 && memcmp(p + 9, "101", 3) == 0) {
    on_handshake_done(c);
  } else {
    if (n >= 12 && memcmp(p + 9, "503", 3) == 0) g_refused++;
    else g_hs_fail++;
    conn_fail(c, S_FAILED);
  }
  return (size_t)(e + 4 - p);
}

/* HTTP responses of the publishers: status line, Content-Length, body. */
static size_t http_parse(struct conn *c, const char *p, size_t n) {
  size_t off = 0;
  for (;;) {
    const char *e = memmem(p + off, n - off, "\r\n\r\n", 4);
    if (!e) break;
    size_t head = (size_t)(e + 4 - (p + off));
    long cl = 0;
    const char *h = p + off;
    for (const char *q = h; q < e; q++) {
      if ((*q == 'C' || *q == 'c') && (size_t)(e - q) > 15 && strncasecmp(q, "content-length:", 15) == 0) {
        cl = strtol(q + 15, NULL, 10);
        break;
      }
    }
    if (n - off < head + (size_t)cl) break;
    if (n - off >= 12 && h[9] == '2') g_http_ok++;
    else g_http_bad++;
    c->http_busy = 0;
    off += head + (size_t)cl;
  }
  return off;
}

static void conn_readable(struct conn *c) {
  for (;;) {
    ssize_t r = read(c->fd, g_readbuf, sizeof g_readbuf);
    if (r == 0) {
      g_closed_by_server++;
      conn_fail(c, S_CLOSED);
      return;
    }
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      conn_fail(c, S_FAILED);
      return;
    }
    const char *p = g_readbuf;
    size_t n = (size_t)r;
    char *joined = NULL;
    if (c->rlen) {
      /* prepend the leftover of the previous read */
      joined = lg_alloc(c->rlen + n);
      memcpy(joined, c->rbuf, c->rlen);
      memcpy(joined + c->rlen, p, n);
      p = joined;
      n += c->rlen;
      c->rlen = 0;
    }
    size_t used = 0;
    if (c->state == S_HS_SENT) {
      used = handshake_parse(c, p, n);
    }
    if (c->fd >= 0 && c->state != S_HS_SENT) {
      if (c->state == S_HTTP) used += http_parse(c, p + used, n - used);
      else used += ws_parse(c, p + used, n - used);
    }
    if (c->fd >= 0 && used < n) {
      size_t left = n - used;
      if (left > c->rcap) {
        free(c->rbuf);
        c->rcap = (uint32_t)(left < 4096 ? 4096 : left);
        c->rbuf = lg_alloc(c->rcap);
      }
      memmove(c->rbuf, p + used, left);
      c->rlen = (uint32_t)left;
    }
    free(joined);
    if (c->fd < 0) return;
    if ((size_t)r < sizeof g_readbuf) return;
  }
}

static void send_handshake(struct conn *c) {
  char req[8192];
  int n;
  if (c->is_http) {
    on_handshake_done(c);
    return;
  }
  const char *hdr =
      "Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  if (g_target == T_HUBBUB)
    n = snprintf(req, sizeof req, "GET /api/v1/ws?token=%s%s HTTP/1.1\r\n%s", c->tok ? c->tok : g_tok[c->room],
                 g_sub_at_upgrade ? "&subscribe=b" : "", hdr);
  else if (g_target == T_NCHAN)
    n = snprintf(req, sizeof req, "GET /ps/r%d HTTP/1.1\r\n%s", c->room, hdr);
  else
    n = snprintf(req, sizeof req, "GET /ws/r%d HTTP/1.1\r\n%s", c->room, hdr);
  c->state = S_HS_SENT;
  conn_send(c, req, (size_t)n);
}

/* Publishers (the HTTP connections, and with --pub one the first connection
 * of each room) go to --pub-port when it is set: subscribers on one node,
 * publishers on another. */
static int conn_port(const struct conn *c) {
  long i = c - g_conns;
  if (!g_pub_port) return g_port;
  if (c->is_http || (!g_pub_all && i < (long)g_rooms * g_subs && i % g_subs == 0)) return g_pub_port;
  return g_port;
}

static void conn_start(struct conn *c) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)conn_port(c))};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) {
    c->state = S_FAILED;
    g_hs_fail++;
    return;
  }
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->t_start = now_ns();
  c->state = S_CONNECTING;
  g_connecting++;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
  epoll_ctl(g_ep, EPOLL_CTL_ADD, c->fd, &ev);
  if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
    g_hs_fail++;
    conn_fail(c, S_FAILED);
  }
}

static void on_event(struct conn *c, uint32_t events) {
  if (c->fd < 0) return;
  if (c->state == S_CONNECTING) {
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
      g_hs_fail++;
      conn_fail(c, S_FAILED);
      return;
    }
    if (!(events & (EPOLLOUT | EPOLLIN))) return;
    conn_want_write(c, 0);
    send_handshake(c);
    if (c->fd < 0) return;
  }
  if ((events & EPOLLOUT) && c->wlen) conn_flush(c);
  if (c->fd >= 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) conn_readable(c);
}

static void loop_once(int timeout_ms) {
  struct epoll_event evs[LG_MAX_EVENTS];
  int n = epoll_wait(g_ep, evs, LG_MAX_EVENTS, timeout_ms);
  for (int i = 0; i < n; i++) on_event(evs[i].data.ptr, evs[i].events);
}

/* One poll that sleeps at most timeout_ns (epoll_pwait2: a paced publish is
 * not rounded to the next millisecond). */
static void loop_once_ns(int64_t timeout_ns) {
  struct epoll_event evs[LG_MAX_EVENTS];
  if (timeout_ns < 0) timeout_ns = 0;
  struct timespec ts = {.tv_sec = timeout_ns / 1000000000LL, .tv_nsec = timeout_ns % 1000000000LL};
  int n = epoll_pwait2(g_ep, evs, LG_MAX_EVENTS, &ts, NULL);
  for (int i = 0; i < n; i++) on_event(evs[i].data.ptr, evs[i].events);
}

/* Open conns [from, to) keeping at most g_window handshakes in progress;
 * return when each is ready (subscribed), failed, or the deadline passed. */
static void open_range(int from, int to, int64_t deadline) {
  int next = from;
  for (;;) {
    while (next < to && g_connecting < g_window) conn_start(&g_conns[next++]);
    int pending = 0;
    for (int i = from; i < to; i++) {
      uint8_t s = g_conns[i].state;
      if (s == S_CONNECTING || s == S_HS_SENT || s == S_OPEN) pending = 1;
      if (pending) break;
    }
    if (next >= to && !pending) return;
    if (now_ns() > deadline) return;
    loop_once(5);
  }
}

/* Write off messages nobody will complete; advance the oldest pointer. */
static void expire_old(int64_t now, int force) {
  while (g_oldest <= g_seq) {
    struct rec *r = &g_ring[g_oldest & (LG_RING - 1)];
    if (!r->done) {
      if (!force && now - r->t < LG_MSG_TIMEOUT_NS) return;
      message_done(r, now);
    }
    g_oldest++;
  }
}

/* p50, p90, p99 of h in ms (bucket upper edges); 0 when empty. */
static void hist_percentiles(const struct hist *h, double out[3]) {
  static const double want[3] = {0.50, 0.90, 0.99};
  uint64_t acc = 0;
  int k = 0;
  out[0] = out[1] = out[2] = 0;
  if (!h->n) return;
  for (uint32_t i = 0; i < LG_HIST_BUCKETS && k < 3; i++) {
    acc += h->b[i];
    while (k < 3 && (double)acc >= want[k] * (double)h->n) out[k++] = hist_edge_ms(i);
  }
}

/* "name":{"p50":..,"p90":..,"p99":..,"max":..,"mean":..} in ms, 3 decimals (1 us). */
static void hist_json(char *out, size_t cap, const char *name, const struct hist *h) {
  double q[3];
  hist_percentiles(h, q);
  snprintf(out, cap, "\"%s\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f,\"mean\":%.3f}", name,
           q[0], q[1], q[2], (double)h->max_ns / 1e6, h->n ? h->sum_ns / (double)h->n / 1e6 : 0.0);
}

static void usage(void) {
  fprintf(stderr,
          "usage: hb_loadgen --target hubbub|nchan|uws --port P [--pub-port P2] --workload fanout|http|idle|connect|limit|presence\n"
          "  [--rooms R] [--subs S] [--pub one|all] [--inflight K] [--rate MSG_S]\n"
          "  [--per-conn-rate MSG_S] [--pace even|burst] [--duration S] [--hold S] [--http-conns H] [--window W]\n"
          "  [--pid SERVER_PID] [--tokens FILE] [--api-token T] [--label TEXT] [--ready-file PATH]\n"
          "  [--subscribe message|upgrade]  (hubbub: a subscribe message, or ?subscribe= at the upgrade)\n"
          "  presence: --secret SIGNING_SECRET --org ORG_ID --plugin PLUGIN_ID [--observers K]\n"
          "            [--distinct 1|0] [--churn PCT_PER_S]\n");
  exit(2);
}

static void parse_args(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (i + 1 >= argc) usage();
    const char *v = argv[++i];
    if (!strcmp(a, "--target")) {
      if (!strcmp(v, "hubbub")) g_target = T_HUBBUB;
      else if (!strcmp(v, "nchan")) g_target = T_NCHAN;
      else if (!strcmp(v, "uws")) g_target = T_UWS;
      else usage();
    } else if (!strcmp(a, "--workload")) g_workload = v;
    else if (!strcmp(a, "--port")) g_port = atoi(v);
    else if (!strcmp(a, "--pub-port")) g_pub_port = atoi(v);
    else if (!strcmp(a, "--rooms")) g_rooms = atoi(v);
    else if (!strcmp(a, "--subs")) g_subs = atoi(v);
    else if (!strcmp(a, "--pub")) g_pub_all = !strcmp(v, "all");
    else if (!strcmp(a, "--inflight")) g_inflight = atoi(v);
    else if (!strcmp(a, "--rate")) g_rate = atof(v);
    else if (!strcmp(a, "--pace")) {
      if (!strcmp(v, "burst")) g_pace_burst = 1;
      else if (strcmp(v, "even")) usage();
    }
    else if (!strcmp(a, "--per-conn-rate")) g_per_conn_rate = atof(v);
    else if (!strcmp(a, "--duration")) g_duration = atof(v);
    else if (!strcmp(a, "--hold")) g_hold = atof(v);
    else if (!strcmp(a, "--http-conns")) g_http_conns = atoi(v);
    else if (!strcmp(a, "--window")) g_window = atoi(v);
    else if (!strcmp(a, "--subscribe")) {
      if (!strcmp(v, "upgrade")) g_sub_at_upgrade = 1;
      else if (strcmp(v, "message")) usage();
    }
    else if (!strcmp(a, "--pid")) g_pid = atoi(v);
    else if (!strcmp(a, "--tokens")) g_tokens_file = v;
    else if (!strcmp(a, "--api-token")) g_api_token = v;
    else if (!strcmp(a, "--label")) g_label = v;
    else if (!strcmp(a, "--secret")) g_secret = v;
    else if (!strcmp(a, "--org")) g_org = v;
    else if (!strcmp(a, "--plugin")) g_plugin = v;
    else if (!strcmp(a, "--observers")) g_observers = atoi(v);
    else if (!strcmp(a, "--distinct")) g_distinct = atoi(v);
    else if (!strcmp(a, "--churn")) g_churn_pct = atof(v);
    else if (!strcmp(a, "--ready-file")) g_ready_file = v;
    else usage();
  }
  if (g_rooms < 1 || g_rooms > LG_MAX_ROOMS) die("--rooms out of range");
  if (g_subs < 1) die("--subs out of range");
}

static void load_tokens(void) {
  char line[8192];
  int r = 0;
  if (g_target != T_HUBBUB) return;
  if (!g_tokens_file) die("--tokens FILE is required for hubbub");
  FILE *f = fopen(g_tokens_file, "r");
  if (!f) die("cannot open %s", g_tokens_file);
  while (r < g_rooms && fgets(line, sizeof line, f)) {
    char ev[64], se[64], tok[8000];
    if (sscanf(line, "%63s %63s %7999s", ev, se, tok) != 3) continue;
    g_ev[r] = strdup(ev);
    g_se[r] = strdup(se);
    g_tok[r] = strdup(tok);
    r++;
  }
  fclose(f);
  if (r < g_rooms) die("%s has %d rooms, %d needed", g_tokens_file, r, g_rooms);
}

static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static void print_common(const char *extra_fmt, ...) {
  printf("{\"target\":\"%s\",\"workload\":\"%s\",\"label\":\"%s\",\"rooms\":%d,\"subs_per_room\":%d,",
         g_target == T_HUBBUB ? "hubbub" : g_target == T_NCHAN ? "nchan" : "uws", g_workload, g_label,
         g_rooms, g_subs);
  va_list ap;
  va_start(ap, extra_fmt);
  vprintf(extra_fmt, ap);
  va_end(ap);
  printf("}\n");
  fflush(stdout);
}

/* The connection that sends paced message number k, or NULL if it cannot
 * now (not ready; for HTTP, no free connection). */
static struct conn *paced_publisher(uint64_t k, int nsubs, int http) {
  if (http) {
    /* connection k mod H (whose room is its index mod R), else the next free one */
    for (int i = 0; i < g_http_conns; i++) {
      struct conn *c = &g_conns[nsubs + (int)((k + (uint64_t)i) % (uint64_t)g_http_conns)];
      if (c->state == S_HTTP && !c->http_busy) return c;
    }
    return NULL;
  }
  uint64_t room, member;
  if (g_pace_burst) {
    /* the older order: connections in index order, a room's members in a row */
    uint64_t i = k % (uint64_t)(g_pub_all ? nsubs : g_rooms);
    room = g_pub_all ? i / (uint64_t)g_subs : i;
    member = g_pub_all ? i % (uint64_t)g_subs : 0;
  } else {
    room = k % (uint64_t)g_rooms;
    member = g_pub_all ? (k / (uint64_t)g_rooms) % (uint64_t)g_subs : 0;
  }
  struct conn *c = &g_conns[room * (uint64_t)g_subs + member];
  return c->state == S_READY ? c : NULL;
}

static int run_delivery(int http) {
  int nsubs = g_rooms * g_subs;
  int64_t t0 = now_ns();
  long rss0 = proc_rss_kb(g_pid);
  open_range(0, nsubs, t0 + LG_SETUP_TIMEOUT_NS);
  int ready = g_ready;
  if (http) {
    for (int i = 0; i < g_http_conns; i++) {
      struct conn *c = &g_conns[nsubs + i];
      c->is_http = 1;
      c->room = i % g_rooms;
    }
    open_range(nsubs, nsubs + g_http_conns, now_ns() + LG_SETUP_TIMEOUT_NS);
  }
  /* let the last subscriptions settle before the clock starts */
  int64_t settle = now_ns() + 200000000LL;
  while (now_ns() < settle) loop_once(5);
  long rss_setup = proc_rss_kb(g_pid);
  long long sr0, sw0, sr1, sw1;
  proc_syscalls(g_pid, &sr0, &sw0);
  if (g_ready_file) {
    /* a profiler waits for this to attach to the publishing phase only */
    FILE *rf = fopen(g_ready_file, "w");
    if (rf) {
      /* the start, CLOCK_MONOTONIC, as perf --clockid monotonic stamps samples */
      int64_t t = now_ns();
      fprintf(rf, "%lld.%09lld\n", (long long)(t / 1000000000LL), (long long)(t % 1000000000LL));
      fclose(rf);
    }
  }
  int64_t cpu0 = proc_cpu_ns(g_pid), gen0 = self_cpu_ns();
  long long psi0 = psi_cpu_some_us();
  int64_t start = now_ns();
  int64_t end = start + (int64_t)(g_duration * 1e9);
  /* paced: a total rate (--rate), or per publisher (--per-conn-rate: every
   * ready connection with --pub all, else one per room) */
  double total_rate = g_rate > 0 ? g_rate : g_per_conn_rate * (g_pub_all ? ready : g_rooms);
  uint64_t rr = 0, skipped = 0;
  int64_t now;
  while ((now = now_ns()) < end) {
    int64_t next_due = now + LG_POLL_TICK_NS;
    if (total_rate > 0) {
      /* message rr is due at start + rr / rate */
      for (;;) {
        int64_t due = start + (int64_t)((double)rr * 1e9 / total_rate);
        if (due > now) {
          next_due = due;
          break;
        }
        struct conn *c = paced_publisher(rr, nsubs, http);
        if (!c) {
          if (http) break; /* wait for a response to free a connection */
          rr++;            /* a publisher that is not ready: its turn is lost */
          if (++skipped > (uint64_t)nsubs && g_ready == 0) break;
          continue;
        }
        if (now - due > LG_LATE_SEND_NS) g_late_sends++;
        rr++;
        if (http) publish_http(c);
        else publish_ws(c);
      }
    } else if (http) {
      for (int i = nsubs; i < nsubs + g_http_conns; i++) {
        struct conn *c = &g_conns[i];
        if (c->state == S_HTTP && !c->http_busy) publish_http(c);
      }
    } else if (g_inflight > 0) {
      int guard = 0;
      while (g_inflight_now < g_inflight && guard++ < g_inflight) {
        struct conn *c = &g_conns[(rr++ % (uint64_t)g_rooms) * (uint64_t)g_subs];
        if (c->state != S_READY) break;
        publish_ws(c);
      }
    }
    expire_old(now, 0);
    if (g_pace_burst || total_rate <= 0) loop_once(1);
    else loop_once_ns(next_due - now_ns());
  }
  int64_t pub_end = now_ns();
  /* drain: stragglers until every message is seen or written off */
  int64_t drain_end = pub_end + LG_DRAIN_NS;
  while (now_ns() < drain_end) {
    expire_old(now_ns(), 0);
    if (g_oldest > g_seq) break;
    loop_once(5);
  }
  expire_old(now_ns(), 1);
  int64_t cpu1 = proc_cpu_ns(g_pid), gen1 = self_cpu_ns();
  long long psi1 = psi_cpu_some_us();
  int64_t drained = now_ns();
  proc_syscalls(g_pid, &sr1, &sw1);
  long rss1 = proc_rss_kb(g_pid);
  double secs = (double)(pub_end - start) / 1e9;
  double loss = g_expected ? 100.0 * (double)(g_expected - g_delivered) / (double)g_expected : 0;
  double cpu_per = g_delivered && g_pid ? (double)(cpu1 - cpu0) / (double)g_delivered : 0;
  double cpu_per_pub = g_published && g_pid ? (double)(cpu1 - cpu0) / (double)g_published : 0;
  char lat[256], first[256], last[256];
  hist_json(lat, sizeof lat, "lat_ms", &g_lat);
  hist_json(first, sizeof first, "first_ms", &g_first);
  hist_json(last, sizeof last, "last_ms", &g_last);
  print_common("\"inflight\":%d,\"rate\":%.1f,\"per_conn_rate\":%.2f,\"pace\":\"%s\",\"http_conns\":%d,"
               "\"subscribed\":%d,\"of\":%d,\"duration_s\":%.3f,\"published\":%llu,"
               "\"publish_per_s\":%.1f,\"late_sends\":%llu,\"http_ok\":%llu,\"http_bad\":%llu,"
               "\"expected\":%llu,\"delivered\":%llu,\"deliveries_per_s\":%.1f,\"loss_pct\":%.4f,"
               "\"late\":%llu,\"errors\":%llu,\"closed_by_server\":%llu,%s,%s,%s,"
               "\"server_cpu_s\":%.3f,\"server_cpu_pct\":%.1f,\"cpu_ns_per_delivery\":%.1f,"
               "\"cpu_ns_per_publish\":%.1f,"
               "\"server_writes\":%lld,\"server_reads\":%lld,\"deliveries_per_write\":%.2f,"
               "\"gen_cpu_pct\":%.1f,\"cpu_wait_pct\":%.1f,"
               "\"server_rss_kb_start\":%ld,\"server_rss_kb_setup\":%ld,\"server_rss_kb\":%ld",
               g_inflight, total_rate > 0 ? total_rate : 0.0, g_per_conn_rate,
               total_rate <= 0 ? "closed" : g_pace_burst ? "burst" : "even", http ? g_http_conns : 0,
               ready, nsubs, secs, (unsigned long long)g_published, (double)g_published / secs,
               (unsigned long long)g_late_sends, (unsigned long long)g_http_ok,
               (unsigned long long)g_http_bad, (unsigned long long)g_expected,
               (unsigned long long)g_delivered, (double)g_delivered / secs, loss,
               (unsigned long long)g_late, (unsigned long long)g_errors,
               (unsigned long long)g_closed_by_server, lat, first, last, (double)(cpu1 - cpu0) / 1e9,
               100.0 * (double)(cpu1 - cpu0) / (double)(drained - start), cpu_per, cpu_per_pub, sw1 - sw0, sr1 - sr0,
               sw1 > sw0 ? (double)g_delivered / (double)(sw1 - sw0) : 0.0,
               100.0 * (double)(gen1 - gen0) / (double)(drained - start),
               psi0 < 0 ? -1.0 : 100.0 * (double)(psi1 - psi0) * 1000.0 / (double)(drained - start), rss0,
               rss_setup, rss1);
  return ready == nsubs && g_delivered > 0 ? 0 : 1;
}

static int run_idle(void) {
  int n = g_rooms * g_subs;
  long rss0 = proc_rss_kb(g_pid);
  int64_t t0 = now_ns();
  open_range(0, n, t0 + LG_SETUP_TIMEOUT_NS);
  int64_t t1 = now_ns();
  /* settle: the server's lazily grown buffers and the ack writes are done */
  int64_t settle = now_ns() + 1000000000LL;
  while (now_ns() < settle) loop_once(10);
  long rss1 = proc_rss_kb(g_pid);
  int ready = g_ready;
  int64_t hold_end = now_ns() + (int64_t)(g_hold * 1e9);
  while (now_ns() < hold_end) loop_once(50);
  double per = ready ? (double)(rss1 - rss0) * 1024.0 / ready : 0;
  print_common("\"subscribed\":%d,\"of\":%d,\"setup_s\":%.3f,\"server_rss_kb_start\":%ld,"
               "\"server_rss_kb\":%ld,\"rss_bytes_per_conn\":%.1f,\"refused\":%llu,"
               "\"handshake_failed\":%llu,\"closed_by_server\":%llu",
               ready, n, (double)(t1 - t0) / 1e9, rss0, rss1, per, (unsigned long long)g_refused,
               (unsigned long long)g_hs_fail, (unsigned long long)g_closed_by_server);
  return ready == n ? 0 : 1;
}

static int run_connect(int limit) {
  int n = g_rooms * g_subs;
  int64_t cpu0 = proc_cpu_ns(g_pid);
  int64_t t0 = now_ns();
  open_range(0, n, t0 + LG_SETUP_TIMEOUT_NS);
  int64_t t1 = now_ns();
  int64_t cpu1 = proc_cpu_ns(g_pid);
  int ready = g_ready;
  int extra_refused_cleanly = -1, reopen_ok = -1;
  if (limit && n + 2 <= LG_MAX_CONNS) {
    /* one more than the server allows: it must be refused (503), not hang */
    uint64_t ref0 = g_refused;
    open_range(n, n + 1, now_ns() + 5000000000LL);
    extra_refused_cleanly = g_refused > ref0 && g_conns[n].state == S_FAILED;
    if (g_conns[n].state == S_READY) extra_refused_cleanly = 0;
    /* the server is unharmed: close one, and a new one gets in */
    conn_fail(&g_conns[0], S_CLOSED);
    int64_t wait = now_ns() + 300000000LL;
    while (now_ns() < wait) loop_once(10);
    int before = g_ready;
    open_range(n + 1, n + 2, now_ns() + 5000000000LL);
    reopen_ok = g_conns[n + 1].state == S_READY && g_ready == before + 1;
  }
  long rss = proc_rss_kb(g_pid);
  double secs = (double)(t1 - t0) / 1e9;
  print_common("\"window\":%d,\"established\":%d,\"of\":%d,\"seconds\":%.3f,\"conn_per_s\":%.1f,"
               "\"server_cpu_us_per_conn\":%.2f,\"refused\":%llu,\"handshake_failed\":%llu,"
               "\"closed_by_server\":%llu,\"extra_refused_cleanly\":%d,\"reopen_after_close_ok\":%d,"
               "\"server_rss_kb\":%ld",
               g_window, ready, n, secs, ready / secs,
               ready ? (double)(cpu1 - cpu0) / 1e3 / ready : 0.0, (unsigned long long)g_refused,
               (unsigned long long)g_hs_fail, (unsigned long long)g_closed_by_server,
               extra_refused_cleanly, reopen_ok, rss);
  if (limit) return ready == n && extra_refused_cleanly == 1 && reopen_ok == 1 ? 0 : 1;
  return ready == n ? 0 : 1;
}

/* --- presence ------------------------------------------------------------------ */

static void b64url(const unsigned char *in, size_t n, char *out) {
  static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t o = 0, i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    out[o++] = al[v >> 18 & 63], out[o++] = al[v >> 12 & 63], out[o++] = al[v >> 6 & 63], out[o++] = al[v & 63];
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    out[o++] = al[v >> 18 & 63], out[o++] = al[v >> 12 & 63];
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
    out[o++] = al[v >> 18 & 63], out[o++] = al[v >> 12 & 63], out[o++] = al[v >> 6 & 63];
  }
  out[o] = 0;
}

/* An HS256 connection token for user `sub` in room 0 (docs/protocol.md §1). */
static char *mint(const char *sub) {
  char payload[1024], tok[2048], seg[1400];
  int pn = snprintf(payload, sizeof payload,
                    "{\"organization_id\":\"%s\",\"plugin_id\":\"%s\",\"event_id\":\"%s\",\"session_id\":\"%s\","
                    "\"sub\":\"%s\",\"scopes\":[\"session\"],\"exp\":%lld,\"info\":{\"name\":\"%s\"}}",
                    g_org, g_plugin, g_ev[0], g_se[0], sub, (long long)time(NULL) + 7200, sub);
  strcpy(tok, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."); /* {"alg":"HS256","typ":"JWT"} */
  b64url((const unsigned char *)payload, (size_t)pn, seg);
  strcat(tok, seg);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int ml = 0;
  HMAC(EVP_sha256(), g_secret, (int)strlen(g_secret), (const unsigned char *)tok, strlen(tok), mac, &ml);
  b64url(mac, ml, seg);
  strcat(tok, ".");
  strcat(tok, seg);
  return strdup(tok);
}

/* A member is ready at its welcome; an observer then subscribes to the
 * presence and counts every presence message (its count, its bytes). */
static void presence_text(struct conn *c, const char *p, size_t n) {
  if (c->state == S_OPEN) {
    if (memmem(p, n, "\"type\":\"welcome\"", 16)) {
      c->state = S_READY;
      g_ready++;
      if (c->observer) {
        static const char sub[] = "{\"type\":\"presence.subscribe\",\"id\":\"p\"}";
        ws_send(c, 1, sub, sizeof sub - 1);
      }
    } else if (memmem(p, n, "\"type\":\"error\"", 14)) {
      g_errors++;
    }
    return;
  }
  if (!c->observer || !memmem(p, n, "\"type\":\"presence.", 17)) {
    if (memmem(p, n, "\"type\":\"error\"", 14)) g_errors++;
    return;
  }
  int found;
  uint64_t count = num_after(p, n, "\"count\":", &found);
  if (found) c->last_count = (uint32_t)count;
  c->p_msgs++;
  c->p_bytes += n;
}

static int observers_at(int from, int k, uint32_t count) {
  for (int i = from; i < from + k; i++)
    if (g_conns[i].state != S_READY || g_conns[i].last_count != count) return 0;
  return 1;
}

/* Loop until every observer's last count is `count`, or the deadline. */
static int wait_count(int k, uint32_t count, int64_t deadline) {
  while (!observers_at(0, k, count)) {
    if (now_ns() > deadline) return 0;
    loop_once(5);
  }
  return 1;
}

static int run_presence(void) {
  if (g_target != T_HUBBUB || !g_secret || !g_org || !g_plugin) die("presence: hubbub with --secret, --org and --plugin");
  int k = g_observers, n = g_subs;
  int churn = (int)((double)n * g_churn_pct / 100.0 + 0.5);
  int spare = churn * ((int)g_duration + 1);
  if (k + n + spare > g_nconns) die("presence: too many connections");
  g_ready_on_welcome = 1;
  char sub[64];
  for (int i = 0; i < k + n + spare; i++) {
    struct conn *c = &g_conns[i];
    c->room = 0;
    c->observer = i < k;
    if (i < k) snprintf(sub, sizeof sub, "observer-%d", i);
    else snprintf(sub, sizeof sub, "u%d", g_distinct ? i - k : 0);
    c->tok = mint(sub);
  }
  long rss0 = proc_rss_kb(g_pid);
  open_range(0, k, now_ns() + LG_SETUP_TIMEOUT_NS);
  int ok = wait_count(k, (uint32_t)k, now_ns() + 10000000000LL);
  int64_t settle = now_ns() + 1500000000LL;
  while (now_ns() < settle) loop_once(10);
  long rss_obs = proc_rss_kb(g_pid);

  /* the joins, until every observer counts them all */
  uint32_t members = (uint32_t)(g_distinct ? n : 1);
  int64_t cpu0 = proc_cpu_ns(g_pid), t0 = now_ns();
  open_range(k, k + n, t0 + LG_SETUP_TIMEOUT_NS);
  int64_t t_open = now_ns();
  ok = ok && wait_count(k, (uint32_t)k + members, now_ns() + 60000000000LL);
  int64_t t1 = now_ns(), cpu1 = proc_cpu_ns(g_pid);
  int joined = g_ready - k;
  settle = now_ns() + 1500000000LL;
  while (now_ns() < settle) loop_once(10);
  long rss1 = proc_rss_kb(g_pid);

  /* churn: `churn` members leave and as many new ones join, every second */
  uint64_t msgs0 = 0, bytes0 = 0;
  for (int i = 0; i < k; i++) msgs0 += g_conns[i].p_msgs, bytes0 += g_conns[i].p_bytes;
  int64_t start = now_ns(), end = start + (int64_t)(g_duration * 1e9);
  int next_new = k + n, next_old = k;
  for (int sec = 0; now_ns() < end && churn > 0; sec++) {
    for (int j = 0; j < churn && next_old < k + n + spare; j++) conn_fail(&g_conns[next_old++], S_CLOSED);
    int from = next_new;
    next_new += churn;
    if (next_new > k + n + spare) next_new = k + n + spare;
    open_range(from, next_new, now_ns() + 10000000000LL);
    int64_t tick = start + (int64_t)(sec + 1) * 1000000000LL;
    while (now_ns() < tick && now_ns() < end) loop_once(5);
  }
  while (now_ns() < end) loop_once(5);
  double secs = (double)(now_ns() - start) / 1e9;
  uint64_t msgs = 0, bytes = 0;
  for (int i = 0; i < k; i++) msgs += g_conns[i].p_msgs, bytes += g_conns[i].p_bytes;
  msgs -= msgs0;
  bytes -= bytes0;
  /* after the churn the count is back to k + members */
  int final_ok = wait_count(k, (uint32_t)k + members, now_ns() + 10000000000LL);
  double per = members ? (double)(rss1 - rss_obs) * 1024.0 / n : 0;
  print_common("\"observers\":%d,\"members\":%u,\"connections\":%d,\"distinct\":%d,\"joined\":%d,"
               "\"join_s\":%.3f,\"open_s\":%.3f,\"server_cpu_s_joins\":%.3f,\"server_cpu_us_per_join\":%.2f,"
               "\"server_rss_kb_start\":%ld,\"server_rss_kb_observers\":%ld,\"server_rss_kb\":%ld,"
               "\"rss_bytes_per_member\":%.1f,\"churn_per_s\":%d,\"churn_s\":%.2f,"
               "\"presence_msgs_per_s\":%.3f,\"presence_bytes_per_s\":%.1f,\"counts_exact\":%d,\"errors\":%llu,"
               "\"closed_by_server\":%llu",
               k, members, n, g_distinct, joined, (double)(t1 - t0) / 1e9, (double)(t_open - t0) / 1e9,
               (double)(cpu1 - cpu0) / 1e9, n ? (double)(cpu1 - cpu0) / 1e3 / n : 0.0, rss0, rss_obs, rss1, per, churn,
               secs, secs > 0 ? (double)msgs / k / secs : 0.0, secs > 0 ? (double)bytes / k / secs : 0.0,
               ok && final_ok, (unsigned long long)g_errors, (unsigned long long)g_closed_by_server);
  return ok && final_ok && g_errors == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  raise_nofile();
  load_tokens();
  g_ep = epoll_create1(EPOLL_CLOEXEC);
  if (g_ep < 0) die("epoll_create1: %s", strerror(errno));
  int total = g_rooms * g_subs + g_http_conns + 2;
  if (!strcmp(g_workload, "presence")) /* observers, and the members of the churn */
    total = g_observers + g_subs + (int)((double)g_subs * g_churn_pct / 100.0 + 0.5) * ((int)g_duration + 1) + 2;
  if (total > LG_MAX_CONNS) die("too many connections (%d > %d)", total, LG_MAX_CONNS);
  g_conns = lg_alloc(sizeof *g_conns * (size_t)total);
  for (int i = 0; i < total; i++) {
    g_conns[i].fd = -1;
    g_conns[i].state = S_CLOSED;
    g_conns[i].room = i < g_rooms * g_subs ? i / g_subs : 0;
  }
  g_nconns = total;
  g_ring = lg_alloc(sizeof *g_ring * LG_RING);
  g_lat.b = lg_alloc(sizeof *g_lat.b * LG_HIST_BUCKETS);
  g_first.b = lg_alloc(sizeof *g_first.b * LG_HIST_BUCKETS);
  g_last.b = lg_alloc(sizeof *g_last.b * LG_HIST_BUCKETS);
  g_rng ^= (uint64_t)now_ns();
  prctl(PR_SET_TIMERSLACK, 1UL); /* paced publishes leave on time, not 50 us late */
  int rc;
  if (!strcmp(g_workload, "fanout")) rc = run_delivery(0);
  else if (!strcmp(g_workload, "http")) rc = run_delivery(1);
  else if (!strcmp(g_workload, "idle")) rc = run_idle();
  else if (!strcmp(g_workload, "connect")) rc = run_connect(0);
  else if (!strcmp(g_workload, "limit")) rc = run_connect(1);
  else if (!strcmp(g_workload, "presence")) rc = run_presence();
  else usage();
  for (int i = 0; i < g_nconns; i++)
    if (g_conns[i].fd >= 0) conn_fail(&g_conns[i], S_CLOSED);
  return rc;
}
