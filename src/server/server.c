/*
 * server.c - `hubbub serve`: wires the layers together and runs until
 * SIGTERM or SIGINT. The only module that knows every layer: it opens the
 * store and the credential snapshot, picks the broker, registers each
 * layer's callbacks with the one below (routes with the HTTP glue, the room
 * protocol with the WebSocket glue, per-thread state with the I/O threads)
 * and handles signals and the credential reload.
 *
 * The reload: with SQLite, a 250 ms timer on the main thread (reading the
 * data version is a shared-memory read); with PostgreSQL, a watcher thread
 * of its own that waits for the store's change notification (at most
 * HB_STORE_WATCH_WAIT_MS, then reads the version anyway), so that no I/O
 * thread and not the main thread ever waits on the network. After every
 * reload that changed the snapshot: every I/O thread re-checks its room
 * connections and applies new disconnects (hb_room_recheck), and the
 * history of deleted plugins goes. While the store cannot be read the node
 * serves from its last snapshot; the transition is logged both ways, shown
 * in /healthz and the hubbub_store_up gauge, and the first reload after it
 * is a full one.
 */
#include "hubbub/server.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

#include "hubbub/alloc.h"
#include "hubbub/auth.h"
#include "hubbub/clock.h"
#include "hubbub/history.h"
#include "hubbub/historydb.h"
#include "hubbub/http.h"
#include "hubbub/idem.h"
#include "hubbub/io.h"
#include "hubbub/iplimit.h"
#include "hubbub/json.h"
#include "hubbub/limits.h"
#include "hubbub/local.h"
#include "hubbub/log.h"
#include "hubbub/metrics.h"
#include "hubbub/presence.h"
#include "hubbub/publish.h"
#include "hubbub/ratelimit.h"
#include "hubbub/redis.h"
#include "hubbub/room.h"
#include "hubbub/router.h"
#include "hubbub/store.h"

typedef struct {
  hb_ioset *set;
  hb_store *store; /* the main thread's (SQLite), or the watcher's (PostgreSQL) */
  const char *where; /* the store location as it may be logged */
  bool store_missing; /* the store's file is not at its path (metric HB_M_STORE_MISSING) */
  uv_loop_t loop;
  uv_signal_t sigterm, sigint, sighup;
  uv_timer_t reload; /* SQLite */
  bool reload_timer;
  uv_timer_t history_flush, history_sweep;
  /* PostgreSQL: the watcher thread. */
  uv_thread_t watcher;
  bool watching;
  atomic_bool stop_watch, force_reload;
  /* Owned by the thread that reloads (the main thread or the watcher). */
  uint64_t applied_gen; /* the snapshot generation the I/O threads last re-checked against */
  bool store_up;
  int64_t down_since;
  uv_timer_t presence_tick;
} main_ctx;

static void close_noop(uv_handle_t *h) { (void)h; }

/* --- after a reload ----------------------------------------------------------- */

/* One re-check, shared by every I/O thread (the last one frees it). */
typedef struct {
  atomic_int refs;
  size_t n;
  hb_auth_disconnect d[];
} recheck_job;

static void recheck_on_thread(void *ctx, void *arg) {
  recheck_job *j = arg;
  if (ctx) { /* else the thread is gone, and its connections with it */
    hb_io *io = ctx;
    size_t closed = hb_room_recheck(io, j->d, j->n);
    if (closed)
      hb_info("thread %d: closed %zu WebSocket connections that a credential change or a disconnect ended",
              io->id, closed);
  }
  if (atomic_fetch_sub(&j->refs, 1) == 1) hb_free(j);
}

/* The snapshot moved: deleted plugins lose their history, and every I/O
 * thread re-checks its connections and applies the new disconnects. */
static void apply_changes(main_ctx *m) {
  uint64_t gen = hb_auth_generation();
  if (gen == m->applied_gen) return;
  m->applied_gen = gen;
  hb_auth_changes ch;
  hb_auth_take_changes(&ch);
  if (ch.ndeleted_plugins) {
    size_t n = hb_history_drop_plugins(ch.deleted_plugins, ch.ndeleted_plugins);
    hb_info("store: %zu plugins deleted; their connections close, %zu history channels dropped",
            ch.ndeleted_plugins, n);
  }
  if (ch.ndisconnects) hb_info("store: %zu disconnects to apply", ch.ndisconnects);
  recheck_job *j = hb_malloc(sizeof *j + ch.ndisconnects * sizeof j->d[0]);
  atomic_init(&j->refs, m->set->nio);
  j->n = ch.ndisconnects;
  if (j->n) memcpy(j->d, ch.disconnects, j->n * sizeof j->d[0]);
  hb_auth_changes_free(&ch);
  for (int i = 0; i < m->set->nio; i++) hb_io_post(m->set->io[i], recheck_on_thread, j);
}

/* The outcome of a reload: log and publish the transitions, once each. */
static void note_store(main_ctx *m, int rc) {
  bool up = rc == 0;
  if (up == m->store_up) return;
  int64_t now = (int64_t)time(NULL);
  m->store_up = up;
  hb_auth_store_set_up(up, now);
  if (!up) {
    m->down_since = now;
    hb_warn("store: %s cannot be read (%s): serving from the last credential snapshot; admin changes answer "
            "503 store_unavailable until it is back",
            m->where, rc == HB_STORE_UNAVAILABLE ? "unavailable" : "database error");
  } else {
    hb_info("store: %s is back after %lld s; credentials reloaded", m->where, (long long)(now - m->down_since));
  }
}

/* A reload (full after an outage or when asked), then what it changed. */
static void reload_and_apply(main_ctx *m, bool force) {
  int rc = force || !m->store_up ? hb_auth_reload_force(m->store) : hb_auth_reload(m->store);
  note_store(m, rc);
  apply_changes(m);
}

/* SQLite keeps using a store file that was deleted or replaced under it,
 * so nothing would fail: look (one stat), say so once (store.c logs it),
 * and tell /healthz and /metrics. The server keeps serving from the
 * credential snapshot; it never creates a new store while it runs. */
static void watch_store(main_ctx *m) {
  bool missing = hb_store_check_file(m->store) != HB_STORE_FILE_OK;
  if (missing == m->store_missing) return;
  m->store_missing = missing;
  hb_metric_add(HB_M_STORE_MISSING, missing ? 1 : -1);
}

static void on_reload_timer(uv_timer_t *t) {
  main_ctx *m = t->data;
  watch_store(m);
  /* The CLI may have created or revoked tokens: cheap when nothing changed. */
  reload_and_apply(m, false);
}

/* PostgreSQL: woken by NOTIFY hubbub_changes, or every HB_STORE_WATCH_WAIT_MS
 * to read the version anyway (a missed notification, a frozen server). */
static void watch_main(void *arg) {
  main_ctx *m = arg;
  while (!atomic_load(&m->stop_watch)) {
    int rc = hb_store_wait_change(m->store, HB_STORE_WATCH_WAIT_MS);
    if (atomic_load(&m->stop_watch)) break;
    if (rc == HB_STORE_UNAVAILABLE) {
      note_store(m, rc);
      continue;
    }
    reload_and_apply(m, atomic_exchange(&m->force_reload, false));
  }
}

static long long gauge_store_up(void *ud) {
  hb_auth_store_status st;
  hb_auth_store_status_get(&st);
  return st.up;
}

/* History is saved off the I/O threads, here, in batches (history.h). */
static void on_history_flush(uv_timer_t *t) { hb_history_flush(); }
static void on_history_sweep(uv_timer_t *t) { hb_history_sweep(hb_wall_ms()); }
/* Presence deltas that are due, one per channel per interval (presence.h). */
static void on_presence_tick(uv_timer_t *t) { hb_presence_tick((int64_t)uv_now(t->loop)); }

static void on_stop_signal(uv_signal_t *s, int signum) {
  main_ctx *m = s->data;
  if (hb_ioset_stopping(m->set)) return;
  hb_info("%s: shutting down (closing WebSockets with 1001, finishing HTTP requests)",
          signum == SIGTERM ? "SIGTERM" : "SIGINT");
  hb_ioset_request_stop(m->set);
  uv_close((uv_handle_t *)&m->sigterm, close_noop);
  uv_close((uv_handle_t *)&m->sigint, close_noop);
  uv_close((uv_handle_t *)&m->sighup, close_noop);
  if (m->reload_timer) uv_close((uv_handle_t *)&m->reload, close_noop);
  uv_close((uv_handle_t *)&m->history_flush, close_noop);
  uv_close((uv_handle_t *)&m->history_sweep, close_noop);
  uv_close((uv_handle_t *)&m->presence_tick, close_noop);
}

static void on_hup(uv_signal_t *s, int signum) {
  main_ctx *m = s->data;
  /* The listen address, threads and limits are fixed for the process's life
   * (sockets and buffers are sized from them); credentials reload live. A
   * remote store is the watcher's: it reloads within HB_STORE_WATCH_WAIT_MS. */
  if (m->watching) {
    atomic_store(&m->force_reload, true);
    hb_info("SIGHUP: credentials reload within a second");
    return;
  }
  reload_and_apply(m, true);
  hb_info("SIGHUP: credentials reloaded");
}

static void replicate_presence(void *ud, const void *batch, size_t len, bool full) {
  hb_broker *b = ud;
  b->ops->presence(b, batch, len, full);
}

/* The broker as /metrics shows it: up or not, and its state one-hot. */
static long long gauge_broker_up(void *ud) {
  hb_broker *b = ud;
  return !b->ops->healthy || b->ops->healthy(b);
}

static const char *broker_state(void *ud) {
  hb_broker *b = ud;
  return b->ops->state ? b->ops->state(b) : "up";
}

/* Each layer's per-thread state, on the I/O thread. */
static void thread_start(hb_io *io) { hb_publish_thread_start(io); }

static void thread_stop(hb_io *io) {
  hb_room_thread_stop(io);
  hb_publish_thread_stop(io);
  hb_store_thread_close();
}

/* The extension area of a connection holds whichever protocol drives it. */
typedef union {
  hb_http_conn http;
  hb_peer peer;
} conn_ext;

size_t hb_server_conn_ext_bytes(void) { return sizeof(conn_ext); }

int hb_server_run(const hb_config *cfg) {
  int rc = 1;
  main_ctx m;
  memset(&m, 0, sizeof m);
  hb_ioset set;
  memset(&set, 0, sizeof set);
  m.set = &set;
  hb_broker *broker = NULL;
  hb_historydb *hdb = NULL;
  bool history_up = false, presence_up = false;
  int nio = cfg->threads > 0 ? cfg->threads : (int)uv_available_parallelism();
  if (nio < 1) nio = 1;
  if (nio > HB_MAX_THREADS) nio = HB_MAX_THREADS;
  /* Checked by the config file's reader and the CLI: unknown names keep the defaults. */
  int lvl = hb_log_level_parse(cfg->log_level), fmt = hb_log_format_parse(cfg->log_format);
  hb_log_set_level(lvl >= 0 ? (hb_log_level)lvl : HB_LOG_INFO);
  hb_log_set_format(fmt >= 0 ? (hb_log_format)fmt : HB_LOG_TEXT);
  signal(SIGPIPE, SIG_IGN); /* a peer that vanished is an EPIPE, not a crash */
  hb_json_init(); /* jansson's allocator: before any other thread starts */
  hb_metrics_reset();

  char err[512];
  size_t alen = strlen(cfg->admin_token_sha256);
  if (alen && (alen != 64 || strspn(cfg->admin_token_sha256, "0123456789abcdefABCDEF") != 64)) {
    hb_error_log("admin_token_sha256 must be 64 hex digits (see `hubbub admin-token create`)");
    goto out;
  }
  /* The location as it may be logged: a PostgreSQL URI without its password. */
  char where[512];
  hb_store_location_describe(cfg->data_dir, where, sizeof where);
  m.where = where;
  m.store_up = true;
  if (hb_store_open(&m.store, cfg->data_dir, err, sizeof err) != 0) {
    hb_error_log("cannot open the store at %s: %s", where, err);
    goto out;
  }
  if (hb_auth_init(m.store) != 0) {
    hb_error_log("cannot load credentials from %s", where);
    goto out;
  }
  m.applied_gen = hb_auth_generation();
  hb_metrics_gauge("store_up", "1 while the credential store answers, 0 while the node serves from its last snapshot.",
                   gauge_store_up, NULL);
  if (cfg->redis_url[0]) {
    hb_redis_opts ro = {
        .history_size = cfg->history_size,
        .history_ttl_s = cfg->history_ttl_s,
        .idempotency_ttl_s = cfg->idempotency_ttl_s,
        .presence_interval_ms = cfg->presence_interval_ms,
        .presence_ttl_s = cfg->presence_ttl_s,
        .presence = cfg->presence,
    };
    broker = hb_broker_redis_new(cfg->redis_url, cfg->redis_password, &ro, err, sizeof err);
    if (!broker) {
      hb_error_log("redis: %s", err);
      goto out;
    }
  } else {
    broker = hb_broker_local_new();
  }
  /* History: kept in process; on one node (no Redis) saved to history.db
   * too, so that it survives a restart. */
  /* history.db lives beside the SQLite store (the data directory, or the
   * directory of a sqlite:FILE location); a PostgreSQL location has none. */
  char hdir[1024];
  snprintf(hdir, sizeof hdir, "%s", strncmp(cfg->data_dir, "sqlite:", 7) == 0 ? cfg->data_dir + 7 : cfg->data_dir);
  if (strncmp(cfg->data_dir, "sqlite:", 7) == 0) {
    char *slash = strrchr(hdir, '/');
    if (slash) *slash = '\0';
    else snprintf(hdir, sizeof hdir, ".");
  }
  if (cfg->history_persist && !cfg->redis_url[0] && hb_store_is_local(m.store) &&
      hb_historydb_open(&hdb, hdir, err, sizeof err) != 0) {
    hb_error_log("cannot open the history store in %s: %s (history_persist: 0 runs without it)", cfg->data_dir,
                 err);
    goto out;
  }
  hb_history_limits hl = {
      .size = (uint32_t)cfg->history_size,
      .ttl_ms = (int64_t)cfg->history_ttl_s * 1000,
      .max_channels = HB_DEFAULT_HISTORY_MAX_CHANNELS,
  };
  if (hb_history_init(&hl, hdb) != 0) {
    hb_error_log("cannot load history from %s/%s", cfg->data_dir, HB_HISTORYDB_FILE);
    goto out;
  }
  history_up = true;
  hb_idem_init((int64_t)cfg->idempotency_ttl_s * 1000, HB_DEFAULT_IDEMPOTENCY_MAX_KEYS);
  hb_presence_limits pl = {
      .interval_ms = cfg->presence_interval_ms,
      .list_max = (uint32_t)cfg->presence_list_max,
      .ttl_ms = (int64_t)cfg->presence_ttl_s * 1000,
  };
  /* Several nodes: the broker carries each node's presence to the others. */
  hb_presence_hooks ph = {
      .deliver = hb_publish_deliver_all,
      .replicate = broker->ops->presence && cfg->presence ? replicate_presence : NULL,
      .ud = broker,
  };
  hb_presence_init(&pl, &ph);
  presence_up = true;
  hb_publish_init(&set, broker);
  hb_room_init();
  hb_router_init();
  hb_metrics_gauge("broker_up", "1 when the broker can carry publishes (local: always; redis: the link is up).",
                   gauge_broker_up, broker);
  if (broker->ops->states)
    hb_metrics_state_gauge("broker_state", "The broker's state, one-hot (redis: down, connecting, up, backoff).",
                           "state", broker->ops->states, broker_state, broker);
  if (broker->ops->start(broker) != 0) {
    hb_error_log("broker %s failed to start", broker->ops->name);
    goto out;
  }
  if (cfg->admin_token_sha256[0]) hb_api_admin_start(cfg);
  hb_io_hooks hooks = {
      .accept_handler = &hb_http_conn_handler,
      .conn_ext_bytes = hb_server_conn_ext_bytes(),
      .thread_start = thread_start,
      .thread_stop = thread_stop,
  };
  /* On a failed start the process exits: threads that never ran are not joined. */
  if (hb_ioset_start(&set, cfg, nio, &hooks) != 0) goto out;
  if (!hb_store_is_local(m.store)) {
    if (uv_thread_create(&m.watcher, watch_main, &m) != 0) {
      hb_error_log("cannot start the store watcher thread");
      hb_ioset_request_stop(&set);
      hb_ioset_join(&set);
      goto out;
    }
    m.watching = true; /* from now on m.store is the watcher's */
  }

  uv_loop_init(&m.loop);
  uv_signal_init(&m.loop, &m.sigterm);
  uv_signal_init(&m.loop, &m.sigint);
  uv_signal_init(&m.loop, &m.sighup);
  m.sigterm.data = m.sigint.data = m.sighup.data = &m;
  uv_signal_start(&m.sigterm, on_stop_signal, SIGTERM);
  uv_signal_start(&m.sigint, on_stop_signal, SIGINT);
  uv_signal_start(&m.sighup, on_hup, SIGHUP);
  if (!m.watching) {
    uv_timer_init(&m.loop, &m.reload);
    m.reload.data = &m;
    uv_timer_start(&m.reload, on_reload_timer, HB_AUTH_RELOAD_INTERVAL_MS, HB_AUTH_RELOAD_INTERVAL_MS);
    m.reload_timer = true;
  }
  uv_timer_init(&m.loop, &m.history_flush);
  uv_timer_init(&m.loop, &m.history_sweep);
  if (hdb) uv_timer_start(&m.history_flush, on_history_flush, HB_HISTORY_FLUSH_MS, HB_HISTORY_FLUSH_MS);
  uv_timer_start(&m.history_sweep, on_history_sweep, HB_HISTORY_SWEEP_MS, HB_HISTORY_SWEEP_MS);
  uv_timer_init(&m.loop, &m.presence_tick);
  uv_timer_start(&m.presence_tick, on_presence_tick, HB_PRESENCE_TICK_MS, HB_PRESENCE_TICK_MS);

  hb_info("hubbub listening on http://%s%s%s:%d (%d threads, broker %s, data %s)",
          strchr(cfg->host, ':') ? "[" : "", cfg->host, strchr(cfg->host, ':') ? "]" : "", set.port, nio,
          broker->ops->name, where);
  uv_run(&m.loop, UV_RUN_DEFAULT);
  uv_loop_close(&m.loop);

  /* The I/O threads finish their requests (answers from Redis and from the
   * admin worker included), then no more posts from the broker's thread. */
  hb_ioset_wait(&set);
  hb_publish_quiesce();
  /* Nothing may post to the I/O threads once their inboxes are destroyed:
   * the watcher and the admin worker stop first (their last posts run at
   * hb_ioset_join, with ctx NULL since the threads have ended). */
  if (m.watching) {
    atomic_store(&m.stop_watch, true);
    uv_thread_join(&m.watcher);
    m.watching = false;
  }
  hb_api_admin_stop();
  hb_ioset_join(&set);
  hb_info("stopped");
  rc = 0;
out:
  hb_api_admin_stop();
  if (broker) broker->ops->stop(broker);
  if (presence_up) hb_presence_shutdown(); /* every connection has left */
  if (history_up) {
    hb_history_shutdown(); /* the last flush, and the clean mark */
    hb_idem_shutdown();
  }
  hb_historydb_close(hdb);
  hb_auth_shutdown();
  hb_ratelimit_shutdown();
  hb_iplimit_shutdown();
  if (m.store) hb_store_close(m.store);
  return rc;
}
