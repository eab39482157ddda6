/* metrics.c - the series table and the Prometheus text rendering (metrics.h). */
#include "hubbub/metrics.h"

#include <dirent.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "hubbub/alloc.h"
#include "hubbub/buildinfo.h"

atomic_llong hb_metric_values[HB_M__COUNT];

/* Entries with the same name are one family: they must be adjacent, and
 * differ by `labels`. */
static const struct {
  const char *name; /* after "hubbub_" */
  const char *type;
  const char *help;
  const char *labels; /* e.g. kind="connection", or NULL */
} table[HB_M__COUNT] = {
    [HB_M_CONNECTIONS_TOTAL] = {"connections_total", "counter", "TCP connections accepted.", NULL},
    [HB_M_CONNECTIONS_REJECTED] = {"connections_rejected_total", "counter", "Connections refused at the connection limit.", NULL},
    [HB_M_PUBLISHES_HTTP] = {"publishes_http_total", "counter", "Publishes accepted over HTTP.", NULL},
    [HB_M_PUBLISHES_WS] = {"publishes_ws_total", "counter", "Publishes accepted over WebSocket.", NULL},
    [HB_M_DELIVERIES] = {"deliveries_total", "counter", "Event frames queued to subscribers.", NULL},
    [HB_M_FANOUT_FLUSHES] = {"fanout_flushes_total", "counter", "Fan-out flushes (writes of what the flush window held).", NULL},
    [HB_M_FANOUT_FLUSH_TURNS] = {"fanout_flush_turns_total", "counter", "Loop turns spent on fan-out flushes (HB_FLUSH_CHUNK_CONNS connections each).", NULL},
    [HB_M_FANOUT_WINDOW_OPENS] = {"fanout_window_opens_total", "counter", "Times an I/O thread began holding fan-out output for flush_interval_ms: saturated, or holding would save much of its time (flush_adaptive, flush_hold_saving).", NULL},
    [HB_M_URING_SUBMITS] = {"uring_submits_total", "counter", "io_uring_enter calls that submitted a batch of sends.", NULL},
    [HB_M_URING_SENDS] = {"uring_sends_total", "counter", "Sends submitted through io_uring (one per connection written).", NULL},
    [HB_M_SLOW_CONSUMERS_CLOSED] = {"slow_consumers_closed_total", "counter", "Connections closed for not reading (4000).", NULL},
    [HB_M_HTTP_REQUESTS] = {"http_requests_total", "counter", "HTTP requests completed.", NULL},
    [HB_M_HTTP_ERRORS] = {"http_errors_total", "counter", "HTTP responses with status >= 400.", NULL},
    [HB_M_JSON_FAST_DECODES] = {"json_fast_decodes_total", "counter", "Messages and bodies decoded without building a JSON tree (jscan).", NULL},
    [HB_M_RATE_LIMITED_CONNECTION] = {"rate_limited_total", "counter", "Publishes refused by a rate limit: per WebSocket connection or per API token.", "kind=\"connection\""},
    [HB_M_RATE_LIMITED_API_TOKEN] = {"rate_limited_total", "counter", NULL, "kind=\"api_token\""},
    [HB_M_CREDENTIAL_RELOAD_FAILURES] = {"credential_reload_failures_total", "counter", "Credential reloads that failed (the store could not be read); the last good credentials stay in use.", NULL},
    [HB_M_LOG_LINES_SUPPRESSED] = {"log_lines_suppressed_total", "counter", "Log lines left out by the repeat limit (one line per kind per second).", NULL},
    [HB_M_HISTORY_SAVE_ERRORS] = {"history_save_errors_total", "counter", "Failed writes of history to history.db (retried).", NULL},
    [HB_M_RECOVERIES] = {"recoveries_total", "counter", "Reconnects that asked to recover (since=) and did.", NULL},
    [HB_M_RECOVERIES_FAILED] = {"recoveries_failed_total", "counter", "Reconnects that asked to recover and got recovered:false.", NULL},
    [HB_M_RECOVERED_MESSAGES] = {"recovered_messages_total", "counter", "Messages replayed to reconnecting clients.", NULL},
    [HB_M_IDEMPOTENT_REPLAYS] = {"idempotent_replays_total", "counter", "Publishes answered from an earlier one with the same Idempotency-Key (not delivered again).", NULL},
    [HB_M_CONTROL_CLOSES] = {"control_closes_total", "counter", "WebSocket connections closed because their plugin was deleted, their secret retired, their user revoked or disconnected, or their room closed (4404, 4401, 4410, 4409).", NULL},
    [HB_M_PRESENCE_MESSAGES] = {"presence_messages_total", "counter", "Presence deltas built (one shared frame per channel per interval at most).", NULL},
    [HB_M_PRESENCE_NODES_EXPIRED] = {"presence_nodes_expired_total", "counter", "Other nodes silent for presence_ttl_s whose members were dropped.", NULL},
    [HB_M_PRESENCE_RESYNCS] = {"presence_resyncs_total", "counter", "Times this node sent the other nodes everything it holds (at start, after its presence link came back, when one asked).", NULL},
    [HB_M_PRESENCE_CHANGES_UNSENT] = {"presence_changes_unsent_total", "counter", "Presence changes not sent to the other nodes (the link to Redis down, or Redis refused them); a resync makes them good.", NULL},
    [HB_M_PRESENCE_BAD_MESSAGES] = {"presence_bad_messages_total", "counter", "Messages on the presence channel that could not be read (ignored).", NULL},
    [HB_M_REDIS_PUBLISHES_FAILED] = {"redis_publishes_failed_total", "counter", "Publishes answered 503 broker_unavailable because Redis did not take them (link down, no reply in time, queue full): nobody received them.", NULL},
    [HB_M_REDIS_GAPS_FILLED] = {"redis_gaps_filled_total", "counter", "Gaps in a channel's offsets (and catch-ups after the subscribe connection came back) filled from the Redis stream.", NULL},
    [HB_M_REDIS_GAP_FILLED_MESSAGES] = {"redis_gap_filled_messages_total", "counter", "Messages delivered from the Redis stream to fill gaps.", NULL},
    [HB_M_REDIS_GAP_NOTICES] = {"redis_gap_notices_total", "counter", "Gap notices sent to a channel's subscribers on this node (messages lost: trimmed from the stream, or the history was lost).", NULL},
    [HB_M_REDIS_MESSAGES_LOST] = {"redis_messages_lost_total", "counter", "Messages this node could not deliver because the stream no longer had them (each told with a gap notice).", NULL},
    [HB_M_LINGERING_CLOSES] = {"lingering_closes_total", "counter", "Connections closed by half-closing and discarding what the peer still sent (HTTP answers that close, WebSocket closes).", NULL},
    [HB_M_LINGERING_CLOSES_CUT] = {"lingering_closes_cut_total", "counter", "Lingering closes ended by their time or byte bound before the peer closed.", NULL},
    [HB_M_CONNECTIONS_OPEN] = {"connections_open", "gauge", "TCP connections open.", NULL},
    [HB_M_WEBSOCKETS_OPEN] = {"websockets_open", "gauge", "WebSocket connections open.", NULL},
    [HB_M_STORE_MISSING] = {"store_missing", "gauge", "1 while the store's file is not the one the server opened (deleted, moved or replaced).", NULL},
    [HB_M_FANOUT_WINDOW_ON] = {"fanout_window_on", "gauge", "I/O threads holding fan-out output now: for flush_interval_ms, up to flush_max_interval_ms while saturated (flush_adaptive, flush_hold_saving).", NULL},
    [HB_M_URING_THREADS] = {"uring_threads", "gauge", "I/O threads writing through io_uring (0: writev, because io_uring is off or the kernel refused it).", NULL},
};

/* --- labelled counters ----------------------------------------------------- */

static atomic_llong errors[HB_E__COUNT];
static atomic_llong refusals[HB_E__COUNT][HB_TRANSPORT__COUNT];
static const char *const transport_names[HB_TRANSPORT__COUNT] = {"http", "ws"};

/* Every close code the server sends (errors.h, and wslay's for violations);
 * anything else is counted as "other". */
static const unsigned close_codes[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011, 1013,
                                       4000, 4001, 4008, 4400, 4401, 4403, 4404, 4409, 4410, 4422};
#define NCLOSE (sizeof close_codes / sizeof close_codes[0])
static atomic_llong closes[NCLOSE + 1];

void hb_metric_error(hb_err e) {
  if ((unsigned)e < HB_E__COUNT) atomic_fetch_add_explicit(&errors[e], 1, memory_order_relaxed);
}

void hb_metric_refusal(hb_err e, hb_transport t) {
  if ((unsigned)e < HB_E__COUNT && (unsigned)t < HB_TRANSPORT__COUNT)
    atomic_fetch_add_explicit(&refusals[e][t], 1, memory_order_relaxed);
}

void hb_metric_ws_close(unsigned code) {
  size_t i = 0;
  while (i < NCLOSE && close_codes[i] != code) i++;
  atomic_fetch_add_explicit(&closes[i], 1, memory_order_relaxed);
}

/* --- histograms ------------------------------------------------------------ */

#define MAX_BUCKETS 16

/* Bucket upper bounds in nanoseconds (rendered in seconds). Counts are kept
 * per bucket, not cumulated: an observation is one add to its bucket and
 * one to the sum; _count is the total of the buckets, so the +Inf bucket
 * and _count always agree. */
static const struct {
  const char *name, *help;
  uint64_t bounds_ns[MAX_BUCKETS];
  int nbounds;
} hist_table[HB_H__COUNT] = {
    [HB_H_DELIVERY_LATENCY] = {"delivery_latency_seconds",
                               "From a publish's acceptance to its write to the last subscriber of an I/O thread, "
                               "per message and thread (a message from another node: from its arrival).",
                               {100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 25000000, 50000000,
                                100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000, 10000000000},
                               16},
    [HB_H_HTTP_REQUEST_DURATION] = {"http_request_duration_seconds",
                                    "From the first byte of an HTTP request to its response queued.",
                                    {50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 25000000,
                                     50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000, 10000000000},
                                    16},
};

static struct {
  atomic_ullong buckets[MAX_BUCKETS + 1]; /* the last one: over every bound (+Inf) */
  atomic_ullong sum_ns;
} hists[HB_H__COUNT];

void hb_metric_observe_ns(hb_histogram h, uint64_t ns) {
  int i = 0, n = hist_table[h].nbounds;
  while (i < n && ns > hist_table[h].bounds_ns[i]) i++;
  atomic_fetch_add_explicit(&hists[h].buckets[i], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&hists[h].sum_ns, ns, memory_order_relaxed);
}

/* --- gauges read at render time -------------------------------------------- */

#define MAX_GAUGES 16

static pthread_mutex_t gauges_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
  const char *name, *help;
  hb_gauge_fn fn;
  const char *label;
  const char *const *states; /* a one-hot gauge when set */
  hb_state_fn state;
  void *ud;
} gauges[MAX_GAUGES];
static int ngauges;

static void gauge_register(const char *name, const char *help, hb_gauge_fn fn, const char *label,
                           const char *const *states, hb_state_fn state, void *ud) {
  pthread_mutex_lock(&gauges_mu);
  int i = 0;
  while (i < ngauges && gauges[i].name != name) i++; /* registered again: the latest wins */
  if (i < MAX_GAUGES) {
    gauges[i].name = name;
    gauges[i].help = help;
    gauges[i].fn = fn;
    gauges[i].label = label;
    gauges[i].states = states;
    gauges[i].state = state;
    gauges[i].ud = ud;
    if (i == ngauges) ngauges++;
  }
  pthread_mutex_unlock(&gauges_mu);
}

void hb_metrics_gauge(const char *name, const char *help, hb_gauge_fn fn, void *ud) {
  gauge_register(name, help, fn, NULL, NULL, NULL, ud);
}

void hb_metrics_state_gauge(const char *name, const char *help, const char *label, const char *const *states,
                            hb_state_fn current, void *ud) {
  gauge_register(name, help, NULL, label, states, current, ud);
}

/* --- rendering --------------------------------------------------------------- */

/* "# HELP" and "# TYPE" of a family. `prefix` is "hubbub_" or "" (process_*). */
static void family(hb_strbuf *sb, const char *prefix, const char *name, const char *type, const char *help) {
  hb_strbuf_addf(sb, "# HELP %s%s %s\n# TYPE %s%s %s\n", prefix, name, help, prefix, name, type);
}

/* A label value, escaped as the text format says (backslash, quote, newline). */
static void label_value(hb_strbuf *sb, const char *v) {
  for (; *v; v++) {
    if (*v == '\\' || *v == '"') hb_strbuf_addch(sb, '\\');
    if (*v == '\n') {
      hb_strbuf_addstr(sb, "\\n");
      continue;
    }
    hb_strbuf_addch(sb, *v);
  }
}

static void render_errors(hb_strbuf *sb) {
  family(sb, "hubbub_", "errors_total", "counter",
         "Errors answered to clients, HTTP and WebSocket, by code (docs/http-api.md, docs/protocol.md).");
  for (int e = HB_OK + 1; e < HB_E__COUNT; e++)
    hb_strbuf_addf(sb, "hubbub_errors_total{code=\"%s\"} %lld\n", hb_err_code(e),
                   atomic_load_explicit(&errors[e], memory_order_relaxed));
  family(sb, "hubbub_", "refusals_total", "counter",
         "Requests and connections refused (401, 403, 413, 415, 429, 503, and every WebSocket handshake refusal), "
         "by reason and transport.");
  for (int t = 0; t < HB_TRANSPORT__COUNT; t++) {
    for (int e = HB_OK + 1; e < HB_E__COUNT; e++) {
      long long v = atomic_load_explicit(&refusals[e][t], memory_order_relaxed);
      /* The reasons that are refusals anywhere are always listed, so that
       * an alert on their rate has a series from the start. */
      if (v == 0 && !hb_err_is_refusal(e)) continue;
      hb_strbuf_addf(sb, "hubbub_refusals_total{reason=\"%s\",transport=\"%s\"} %lld\n", hb_err_code(e),
                     transport_names[t], v);
    }
  }
  family(sb, "hubbub_", "ws_closes_total", "counter",
         "WebSocket closes the server initiated, by close code (docs/protocol.md, section 4).");
  for (size_t i = 0; i <= NCLOSE; i++) {
    long long v = atomic_load_explicit(&closes[i], memory_order_relaxed);
    if (i < NCLOSE) hb_strbuf_addf(sb, "hubbub_ws_closes_total{code=\"%u\"} %lld\n", close_codes[i], v);
    else hb_strbuf_addf(sb, "hubbub_ws_closes_total{code=\"other\"} %lld\n", v);
  }
}

static void render_histograms(hb_strbuf *sb) {
  for (int h = 0; h < HB_H__COUNT; h++) {
    const char *name = hist_table[h].name;
    family(sb, "hubbub_", name, "histogram", hist_table[h].help);
    unsigned long long acc = 0;
    for (int i = 0; i <= hist_table[h].nbounds; i++) {
      acc += atomic_load_explicit(&hists[h].buckets[i], memory_order_relaxed);
      if (i < hist_table[h].nbounds)
        hb_strbuf_addf(sb, "hubbub_%s_bucket{le=\"%g\"} %llu\n", name, (double)hist_table[h].bounds_ns[i] / 1e9,
                       acc);
      else
        hb_strbuf_addf(sb, "hubbub_%s_bucket{le=\"+Inf\"} %llu\n", name, acc);
    }
    unsigned long long sum = atomic_load_explicit(&hists[h].sum_ns, memory_order_relaxed);
    hb_strbuf_addf(sb, "hubbub_%s_sum %.9f\nhubbub_%s_count %llu\n", name, (double)sum / 1e9, name, acc);
  }
}

static void render_gauges(hb_strbuf *sb) {
  pthread_mutex_lock(&gauges_mu);
  for (int i = 0; i < ngauges; i++) {
    family(sb, "hubbub_", gauges[i].name, "gauge", gauges[i].help);
    if (!gauges[i].states) {
      hb_strbuf_addf(sb, "hubbub_%s %lld\n", gauges[i].name, gauges[i].fn(gauges[i].ud));
      continue;
    }
    const char *cur = gauges[i].state(gauges[i].ud);
    for (const char *const *s = gauges[i].states; *s; s++) {
      hb_strbuf_addf(sb, "hubbub_%s{%s=\"", gauges[i].name, gauges[i].label);
      label_value(sb, *s);
      hb_strbuf_addf(sb, "\"} %d\n", cur && !strcmp(cur, *s));
    }
  }
  pthread_mutex_unlock(&gauges_mu);
}

/* --- the process (from /proc/self, as the Prometheus client libraries do) -- */

/* Fields of /proc/self/stat after the command name (which may hold spaces
 * and parentheses: everything up to the last ')'). Field 3 is `state`. */
static bool proc_stat(unsigned long long *utime, unsigned long long *stime, unsigned long long *start,
                      unsigned long long *vsize, long long *rss_pages) {
  char buf[1024];
  FILE *f = fopen("/proc/self/stat", "r");
  if (!f) return false;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  if (!p) return false;
  /* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
   * utime stime cutime cstime priority nice threads itrealvalue starttime vsize rss */
  return sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu %llu %lld",
                utime, stime, start, vsize, rss_pages) == 5;
}

/* The boot time (btime of /proc/stat), Unix seconds. */
static long long boot_time(void) {
  char line[256];
  long long bt = 0;
  FILE *f = fopen("/proc/stat", "r");
  if (!f) return 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "btime %lld", &bt) == 1) break;
  fclose(f);
  return bt;
}

static long long open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  long long n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - 1; /* the directory's own descriptor */
}

static void render_process(hb_strbuf *sb) {
  unsigned long long ut, st, start, vsize;
  long long rss;
  double tck = (double)sysconf(_SC_CLK_TCK);
  if (proc_stat(&ut, &st, &start, &vsize, &rss) && tck > 0) {
    family(sb, "", "process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.");
    hb_strbuf_addf(sb, "process_cpu_seconds_total %.2f\n", (double)(ut + st) / tck);
    family(sb, "", "process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch, in seconds.");
    hb_strbuf_addf(sb, "process_start_time_seconds %.2f\n", (double)boot_time() + (double)start / tck);
    family(sb, "", "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    hb_strbuf_addf(sb, "process_resident_memory_bytes %lld\n", rss * (long long)sysconf(_SC_PAGESIZE));
    family(sb, "", "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    hb_strbuf_addf(sb, "process_virtual_memory_bytes %llu\n", vsize);
  }
  long long fds = open_fds();
  if (fds >= 0) {
    family(sb, "", "process_open_fds", "gauge", "Open file descriptors.");
    hb_strbuf_addf(sb, "process_open_fds %lld\n", fds);
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    family(sb, "", "process_max_fds", "gauge", "The limit on open file descriptors.");
    hb_strbuf_addf(sb, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
  }
}

void hb_metrics_render(hb_strbuf *sb) {
  for (int m = 0; m < HB_M__COUNT; m++) {
    if (m == 0 || strcmp(table[m].name, table[m - 1].name) != 0)
      family(sb, "hubbub_", table[m].name, table[m].type, table[m].help);
    if (table[m].labels)
      hb_strbuf_addf(sb, "hubbub_%s{%s} %lld\n", table[m].name, table[m].labels, hb_metric_get(m));
    else
      hb_strbuf_addf(sb, "hubbub_%s %lld\n", table[m].name, hb_metric_get(m));
  }
  render_errors(sb);
  render_histograms(sb);
  render_gauges(sb);
  family(sb, "hubbub_", "heap_bytes", "gauge", "Bytes allocated through the allocator.");
  hb_strbuf_addf(sb, "hubbub_heap_bytes %lld\n", (long long)hb_alloc_live_bytes());
  family(sb, "hubbub_", "build_info", "gauge", "Always 1: the version and the git commit this binary was built from.");
  hb_strbuf_addstr(sb, "hubbub_build_info{version=\"");
  label_value(sb, hb_build_version());
  hb_strbuf_addstr(sb, "\",commit=\"");
  label_value(sb, hb_build_commit());
  hb_strbuf_addstr(sb, "\"} 1\n");
  render_process(sb);
}

static _Atomic int64_t started_at;

int64_t hb_metrics_started_at(void) { return atomic_load(&started_at); }

void hb_metrics_reset(void) {
  atomic_store(&started_at, (int64_t)time(NULL));
  for (int m = 0; m < HB_M__COUNT; m++) atomic_store(&hb_metric_values[m], 0);
  for (int e = 0; e < HB_E__COUNT; e++) {
    atomic_store(&errors[e], 0);
    for (int t = 0; t < HB_TRANSPORT__COUNT; t++) atomic_store(&refusals[e][t], 0);
  }
  for (size_t i = 0; i <= NCLOSE; i++) atomic_store(&closes[i], 0);
  for (int h = 0; h < HB_H__COUNT; h++) {
    for (int i = 0; i <= MAX_BUCKETS; i++) atomic_store(&hists[h].buckets[i], 0);
    atomic_store(&hists[h].sum_ns, 0);
  }
  pthread_mutex_lock(&gauges_mu);
  ngauges = 0;
  pthread_mutex_unlock(&gauges_mu);
}
