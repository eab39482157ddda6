/*
 * limits.h - every size, count and timeout of hubbub in one place.
 *
 * Units are part of every name (_BYTES, _MS, _S, a plain count otherwise).
 * Limits that an operator may change in the config file take their default
 * from here (see docs/operations.md); the others are fixed by the protocol.
 */
#ifndef HUBBUB_LIMITS_H
#define HUBBUB_LIMITS_H

/* A limit spelled out in a message: HB_STR(HB_MAX_NAME_BYTES) is "128". */
#define HB_STR_(x) #x
#define HB_STR(x) HB_STR_(x)

/* --- listening ----------------------------------------------------------- */
#define HB_DEFAULT_HOST "127.0.0.1"
#define HB_DEFAULT_PORT 8080
#define HB_DEFAULT_DATA_DIR "data"
#define HB_MAX_THREADS 64
#define HB_LISTEN_BACKLOG 1024
/* Out of file descriptors (EMFILE/ENFILE): a thread closes its listener and
 * tries to listen again after this long, instead of spinning on accept. */
#define HB_ACCEPT_RETRY_MS 100
/* Connections per process. The default sits under the usual 20,000
 * descriptor cap so that the next connection is refused cleanly instead of
 * failing accept() with EMFILE. */
#define HB_DEFAULT_MAX_CONNECTIONS 19000
#define HB_DEFAULT_MAX_CONNECTIONS_PER_IP 0 /* 0 = unlimited */

/* How often each I/O thread sweeps its connections: deadlines, pings, token
 * expiry, spare buffers (io.c, conn.c). */
#define HB_SWEEP_INTERVAL_MS 250
/* A connection closing after its queue is written gives up on a peer that
 * does not read after this long. */
#define HB_CLOSE_FLUSH_TIMEOUT_MS 2000

/* --- HTTP/1.1 ------------------------------------------------------------ */
#define HB_MAX_URL_BYTES 6144 /* room for a connection token in the query */
/* The WebSocket URL's optional subscribe=<name>,<name>... (decoded): event
 * names subscribed at the upgrade, without a subscribe round trip each. */
#define HB_WS_SUBSCRIBE_PARAM_BYTES 2048
#define HB_MAX_HEADER_BYTES 16384 /* request line + all headers */
#define HB_MAX_HEADERS 64
#define HB_MAX_HEADER_VALUE_BYTES 4096
/* Sec-WebSocket-Protocol may carry a connection token of up to
 * HB_MAX_CONN_TOKEN_BYTES ("hubbub.token.<jwt>", docs/protocol.md §2) next to
 * the other subprotocols offered: its value may be this long. */
#define HB_MAX_WS_PROTOCOL_VALUE_BYTES (HB_MAX_CONN_TOKEN_BYTES + 512)
/* A header name: the longest registered ones are under 40 bytes; a longer
 * one is an attack or a bug, answered 431 like the other header limits. */
#define HB_MAX_HEADER_NAME_BYTES 256
#define HB_DEFAULT_MAX_BODY_BYTES 65536
#define HB_DEFAULT_MAX_BATCH_BODY_BYTES (1024 * 1024) /* POST /api/v1/pub_subs/batch */
#define HB_HTTP_IDLE_TIMEOUT_MS 30000   /* keep-alive connection without a request */
#define HB_HTTP_REQUEST_TIMEOUT_MS 10000 /* a started request must complete within */
/* An answer that closes the connection (an early 401, 413, 415..., a 408)
 * is followed by a lingering close (conn.c): half-close, then read and
 * discard what the client still sends, so that a client that writes its
 * whole body before it reads gets the answer instead of a reset (RFC 9112
 * 9.6; nginx's lingering_close). Bounded in time and bytes: at most this
 * long, at most this many bytes, then the connection is closed. The
 * connection keeps counting against max_connections meanwhile, and holds no
 * buffer (reads go to the thread's buffer), so lingering cannot hold more
 * than the connection limit already allows, and never longer than a
 * client that trickles a request could anyway. */
#define HB_HTTP_LINGER_MS 5000
#define HB_HTTP_LINGER_MAX_BYTES (64 * 1024 * 1024)
#define HB_HTTP_SPARE_KEEP_BYTES 8192 /* body/value buffers a thread's spare request keeps */

/* --- WebSocket ----------------------------------------------------------- */
#define HB_DEFAULT_MAX_MESSAGE_BYTES 65536 /* one client message, after reassembly */
/* Frames of one fragmented message (the first and its continuations): past
 * it the connection is closed with 1008. Empty continuation frames cost the
 * sender 6 bytes each and would otherwise keep a message open forever. */
#define HB_DEFAULT_MAX_MESSAGE_FRAGMENTS 16384
#define HB_HANDSHAKE_TIMEOUT_MS 10000
#define HB_WS_PING_INTERVAL_MS 25000
#define HB_WS_IDLE_TIMEOUT_MS 60000 /* nothing received (not even a pong) */
#define HB_WS_CLOSE_TIMEOUT_MS 2000 /* wait this long for the peer's close */
/* After our close frame, what the peer may still send (the rest of a
 * message in flight, its close) before it is cut off: as HTTP's lingering. */
#define HB_WS_CLOSE_MAX_BYTES HB_HTTP_LINGER_MAX_BYTES
#define HB_MAX_CLOSE_REASON_BYTES 123 /* RFC 6455 5.5: control payload <= 125 */
/* A client message up to this long that arrives as one read holding exactly
 * its one frame is unmasked on the stack and handled without wslay (ws.c). */
#define HB_WS_DIRECT_MAX_BYTES 4096

/* --- messages ------------------------------------------------------------ */
#define HB_MAX_EVENT_NAME_BYTES 128
#define HB_MAX_REQUEST_ID_BYTES 64
#define HB_MAX_USER_ID_BYTES 128
#define HB_MAX_JSON_DEPTH 32
#define HB_JSCAN_MAX_KEYS 64 /* keys of open objects jscan.c remembers for its duplicate check; more: jansson decides */
#define HB_JSON_ARENA_BYTES 16384 /* stack buffer for jansson's allocations during one decode (json.h) */
#define HB_DEFAULT_MAX_DATA_BYTES 32768 /* the `data` value of one publish */
#define HB_DEFAULT_MAX_SUBSCRIPTIONS 256 /* per connection */

/* --- history and recovery (docs/protocol.md, "Recovery") ----------------- */
#define HB_DEFAULT_HISTORY_SIZE 100         /* messages kept per channel; 0 = no history */
#define HB_CONFIG_MAX_HISTORY_SIZE 100000
#define HB_DEFAULT_HISTORY_TTL_S 300        /* none older is kept */
#define HB_CONFIG_MAX_HISTORY_TTL_S 86400
#define HB_DEFAULT_MAX_RECOVER_MESSAGES 500 /* a reconnect replays at most this many, else recovered:false */
#define HB_CONFIG_MAX_RECOVER_MESSAGES 100000
#define HB_DEFAULT_HISTORY_MAX_CHANNELS 1000000 /* channel entries kept (~200 B each without messages) */
#define HB_HISTORY_SHARDS 64                /* locks over the channel table (history.c) */
#define HB_HISTORY_FLUSH_MS 50              /* single node: history saved this often (main thread) */
#define HB_HISTORY_SWEEP_MS 1000            /* expired messages dropped this often */
/* A channel with no kept message and no publish or join for the TTL and
 * this much longer is forgotten (its epoch with it). */
#define HB_HISTORY_FORGET_GRACE_MS 60000
#define HB_DEFAULT_IDEMPOTENCY_TTL_S 300    /* a retried publish with the same key answers the first result */
#define HB_CONFIG_MAX_IDEMPOTENCY_TTL_S 86400
#define HB_MAX_IDEMPOTENCY_KEY_BYTES 128
#define HB_DEFAULT_IDEMPOTENCY_MAX_KEYS 1000000 /* remembered keys per node (oldest dropped first) */
#define HB_MAX_BATCH_ITEMS 100              /* POST /api/v1/pub_subs/batch */
#define HB_MAX_HISTORY_PAGE 1000            /* GET /api/v1/history: most messages per answer */
#define HB_DEFAULT_HISTORY_PAGE 100

/* --- presence (docs/protocol.md, "Presence") ----------------------------- */
/* Presence messages per channel: at most one per this interval, carrying the
 * joins and leaves since the last one (config presence_interval_ms). */
#define HB_DEFAULT_PRESENCE_INTERVAL_MS 1000
#define HB_CONFIG_MIN_PRESENCE_INTERVAL_MS 50
#define HB_CONFIG_MAX_PRESENCE_INTERVAL_MS 60000
/* Members in a snapshot or page by default, and joins + leaves listed in one
 * presence message at most (config presence_list_max): what a room of
 * 100,000 sends its observers stays this small. */
#define HB_DEFAULT_PRESENCE_LIST_MAX 100
#define HB_MAX_PRESENCE_PAGE 1000 /* a page asked for with `limit`, and presence_list_max's upper bound */
/* Several nodes: a node that stopped refreshing its members (dead, or cut
 * off from Redis) has them expire after this long (config presence_ttl_s). */
#define HB_DEFAULT_PRESENCE_TTL_S 30
#define HB_CONFIG_MIN_PRESENCE_TTL_S 3
#define HB_CONFIG_MAX_PRESENCE_TTL_S 3600
/* The `info` claim of a connection token (public user info shown to the
 * room), as compact JSON. */
#define HB_MAX_PRESENCE_INFO_BYTES 1024
#define HB_PRESENCE_SHARDS 64    /* locks over the presence table (presence.c) */
#define HB_PRESENCE_TICK_MS 25   /* how often due channels are looked for (main thread) */
/* Several nodes: what one node tells the others goes in pieces of at most
 * this (whole records), so that a resync of 100,000 members is many
 * messages, none near Redis's limits on one client's output. */
#define HB_PRESENCE_REPLICATE_CHUNK_BYTES 65536
/* Several nodes: at most one warning per this long about presence messages
 * Redis refused or that could not be read (the metrics count them all). */
#define HB_RPRESENCE_WARN_MS 10000
/* A node heard from that this node does not count is asked for a resync at
 * most once per this many heartbeats (its answer is on the way). */
#define HB_RPRESENCE_ASK_EVERY_BEATS 4
/* Presence messages waiting to be written to Redis at most; past it changes
 * are dropped and a resync follows once Redis has caught up. */
#define HB_RPRESENCE_MAX_UNSENT_BYTES (32 * 1024 * 1024)
#define HB_MAX_PRESENCE_CURSOR_BYTES 20 /* a page cursor: the decimal digits of a 64-bit position */

/* --- output and backpressure --------------------------------------------- */
#define HB_DEFAULT_MAX_OUTPUT_BYTES (1024 * 1024) /* queued, per connection */
#define HB_MAX_IOV 64 /* frames handed to one writev */
/* Output ring slots a connection starts with (doubling as needed): an idle
 * subscriber holds a ring this small. */
/* Fan-out deliveries on a thread are written at most once per this many
 * milliseconds while messages keep coming (config flush_interval_ms): a
 * delivery that follows a quiet spell is written at the end of the loop
 * turn, one inside the window waits for it, so a busy subscriber gets
 * several frames per system call. Replies (acks, pongs, HTTP responses,
 * the handshake) are never held. */
#define HB_DEFAULT_FLUSH_INTERVAL_MS 5
#define HB_CONFIG_MAX_FLUSH_INTERVAL_MS 1000
/* Connections a fan-out flush writes per loop turn before it reads again
 * (io.c): ~2 ms of writes on a loopback VM. */
#define HB_FLUSH_CHUNK_CONNS 256
/* The adaptive window (window.h, config flush_adaptive): a thread judges
 * how busy it is once per sample (its CPU time over the wall time), and
 * holds fan-out output for flush_interval_ms only while it is saturated. */
#define HB_WINDOW_SAMPLE_MS 50           /* one decision per this much time at most */
#define HB_WINDOW_BUSY_ON_PERMILLE 900   /* a sample this busy (CPU / wall) turns the window on */
#define HB_WINDOW_BUSY_OFF_PERMILLE 600  /* on: less busy than this ends it once its spell is over */
#define HB_WINDOW_BUSY_IDLE_PERMILLE 300 /* less busy than this ends it at once */
/* While on, each sample still this busy (HB_WINDOW_BUSY_ON_PERMILLE) doubles
 * the window, up to flush_max_interval_ms; each less busy than this halves
 * it, down to flush_interval_ms (window.h). */
#define HB_WINDOW_BUSY_SHRINK_PERMILLE 700
/* Not saturated, the window also applies for a spell when holding would
 * save this much of the thread's time (the writes it would have avoided, at
 * the sample's cost per write; config flush_hold_saving, window.h); a
 * saturated spell that ends with a hold saving at least the OFF share goes
 * on as such a hold; a hold saving less than the IDLE share ends at once. */
#define HB_WINDOW_SAVE_ON_PERMILLE 500
#define HB_WINDOW_SAVE_OFF_PERMILLE 250
#define HB_WINDOW_SAVE_IDLE_PERMILLE 50
/* The window's longest length while the thread stays saturated (config
 * flush_max_interval_ms). */
#define HB_DEFAULT_FLUSH_MAX_INTERVAL_MS 20
/* A saturated thread whose fan-out writes already carry this many frames
 * each (on average over the sample) gains nothing from holding: the
 * per-send cost is spread already, and holding would only add latency
 * (HTTP publishes as fast as answered: each loop turn reads many requests;
 * no less CPU with a window, docs/performance.md). */
#define HB_WINDOW_MERGED_ITEMS_PER_SEND 8
/* An ON spell lasts at least HB_WINDOW_HOLD_MIN_MS; when the thread saturates
 * again within HB_WINDOW_RETRY_MS of turning it off (the window was what kept
 * it below saturation), the next spell is twice as long, up to the max. */
#define HB_WINDOW_HOLD_MIN_MS 250
#define HB_WINDOW_HOLD_MAX_MS 4000
#define HB_WINDOW_RETRY_MS 500
/* io_uring (uring.h, config io_uring): sends submitted per io_uring_enter,
 * the size of the submission queue (one flush chunk). */
#define HB_URING_BATCH_SENDS HB_FLUSH_CHUNK_CONNS
#define HB_OUT_RING_INITIAL 2
/* The ring is freed whenever it empties; the next one starts at the size the
 * last one reached, up to this many slots (24 B each: stays in malloc's
 * per-thread cache). */
#define HB_OUT_RING_KEEP 32
/* Rings of HB_OUT_RING_KEEP slots (a subscriber that gets several frames per
 * flush) are kept for reuse by their I/O thread instead of going back to
 * malloc on every flush: with 5,000 subscribers that was 5,000 malloc/free
 * pairs per flush, and malloc kept growing its heap for them (~5 % of W1).
 * A ring the thread did not need for a whole sweep interval is freed; at
 * most this many are kept (x 768 B). */
#define HB_OUT_RING_CACHE_MAX 8192
/* max_output_bytes is a soft limit (as Redis's client-output-buffer-limit):
 * a backlog over it for longer than the grace period, or over the hard
 * factor times it at any moment, closes the connection with 4000. A healthy
 * reader that a burst put briefly over the limit is left alone. */
#define HB_SLOW_CONSUMER_GRACE_MS 1000
#define HB_OUTPUT_HARD_FACTOR 4

/* --- tokens -------------------------------------------------------------- */
#define HB_API_TOKEN_RANDOM_BYTES 32
#define HB_MAX_API_TOKEN_BYTES 128
#define HB_MAX_CONN_TOKEN_BYTES 4096
/* A plugin signing secret (the HMAC key of its connection tokens). */
#define HB_SECRET_MAX_BYTES 128
#define HB_SIGNING_SECRET_RANDOM_BYTES 32
/* A signing secret's key id (the JOSE header's kid): random bytes, written as
 * base64url (8 characters); ids up to the maximum are accepted on import. */
#define HB_SIGNING_KID_RANDOM_BYTES 6
#define HB_SIGNING_KID_MAX_BYTES 32
#define HB_CONN_TOKEN_DEFAULT_TTL_S 3600
#define HB_CONN_TOKEN_MAX_TTL_S 86400
#define HB_JWT_LEEWAY_S 30
/* A connection-token revocation is kept this long: past it every token it
 * could refuse (server-minted ones live at most HB_CONN_TOKEN_MAX_TTL_S) has
 * expired, and it is pruned at the next revocation. */
#define HB_CONN_REVOCATION_KEEP_S (HB_CONN_TOKEN_MAX_TTL_S + 2 * HB_JWT_LEEWAY_S)
/* An operator's disconnect (of a user or a room, without a revocation) is
 * kept this long in the store, so that a node cut off from it for less
 * still applies it when it is back; it is pruned at the next disconnect. */
#define HB_CONN_DISCONNECT_KEEP_S 3600
/* `hubbub token create --ttl`: at most ten years. */
#define HB_API_TOKEN_MAX_TTL_S (10LL * 366 * 86400)
/* Signing keys up to this long are kept, with an HMAC context keyed with
 * them, per thread (jwt.c); longer ones are verified with one-shot HMAC.
 * Covers every plugin secret (HB_SECRET_MAX_BYTES). */
#define HB_JWT_CACHED_KEY_BYTES 256
#define HB_AUTH_RELOAD_INTERVAL_MS 250 /* a revoke takes effect within 1 s */
/* An unknown credential makes its thread check the store's data version
 * (one cheap PRAGMA) at most this often, so a token works as soon as the
 * CLI created it while a flood of garbage tokens costs next to nothing. */
#define HB_AUTH_MISS_RECHECK_MS 20
/* Disconnects (store.h) seen in new snapshots and not yet taken by the
 * server (hb_auth_take_disconnects): more are dropped, logged. */
#define HB_AUTH_MAX_PENDING_DISCONNECTS 4096
#define HB_MAX_NAME_BYTES 128 /* organization, plugin and token labels */

/* --- rate limits (token buckets) ----------------------------------------- */
#define HB_DEFAULT_CONN_PUBLISH_RATE 100   /* per second, per connection */
#define HB_DEFAULT_CONN_PUBLISH_BURST 200
#define HB_DEFAULT_TOKEN_PUBLISH_RATE 1000 /* per second, per API token */
#define HB_DEFAULT_TOKEN_PUBLISH_BURST 2000
/* Rate-limited publishes in a row (none accepted between) that count as
 * sustained abuse: the connection is closed with 4008. A burst a few hundred
 * over the limit only gets rate_limited errors. */
#define HB_RATE_STRIKES_BEFORE_CLOSE 500

/* --- shutdown ------------------------------------------------------------ */
#define HB_SHUTDOWN_GRACE_MS 5000

/* --- store, config (added by the store/CLI module) ------------------------ */
#define HB_STORE_BUSY_TIMEOUT_MS 5000 /* wait this long for another writer (the CLI, a migration) */
/* Processes opening a new SQLite file together: switching it to WAL is
 * retried this often (SQLite refuses at once where waiting could deadlock),
 * within HB_STORE_BUSY_TIMEOUT_MS in all. */
#define HB_STORE_WAL_RETRY_MS 10
#define HB_STORE_MAX_LOCATION_BYTES 1023 /* a directory, sqlite:PATH or a PostgreSQL URI */
/* PostgreSQL: connect_timeout when the URI gives none (libpq's minimum is 2). */
#define HB_STORE_PG_CONNECT_TIMEOUT_S 2
/* PostgreSQL: no reply to a statement within this drops the connection and
 * the call fails as unavailable; the server's statement_timeout is set
 * HB_STORE_PG_TIMEOUT_MARGIN_MS below it, so a slow statement is usually
 * cancelled by the server first and the connection kept. */
#define HB_STORE_PG_REPLY_TIMEOUT_MS 5000
#define HB_STORE_PG_TIMEOUT_MARGIN_MS 500
/* PostgreSQL: a transaction left open this long (a hung admin client) is
 * ended by the server, releasing its locks. */
#define HB_STORE_PG_IDLE_TX_TIMEOUT_MS 30000
/* hb_store_wait_change on SQLite reads data_version this often. */
#define HB_STORE_LOCAL_POLL_MS 100
/* `hubbub import`: the largest document read, and its deepest nesting. */
#define HB_DUMP_MAX_BYTES (64 * 1024 * 1024)
/* The admin HTTP API: an import body (POST /api/v1/admin/import) is at
 * most this (the CLI takes HB_DUMP_MAX_BYTES from a file). */
#define HB_ADMIN_IMPORT_MAX_BYTES (16 * 1024 * 1024)
/* Admin requests waiting for the store's worker thread; more answer 503. */
#define HB_ADMIN_MAX_QUEUED_JOBS 64
/* An admin request that waited this long for the worker (the store is slow
 * or down) is answered 503 without being run: the client may retry. */
#define HB_ADMIN_QUEUE_WAIT_MS 5000
/* How long a connection may wait for its admin answer (the store calls'
 * own timeouts bound it well below). */
#define HB_ADMIN_ANSWER_TIMEOUT_MS 30000
/* The server's store watcher (PostgreSQL) waits this long for a change
 * notification, then reads the data version anyway: missed notifications
 * and a frozen database are noticed within about a second. */
#define HB_STORE_WATCH_WAIT_MS 1000
#define HB_DUMP_MAX_DEPTH 8
#define HB_DUMP_MAX_ENTRIES 100000 /* per list (organizations, plugins...) */
#define HB_CONFIG_MAX_FILE_BYTES (1024 * 1024)
#define HB_CONFIG_MAX_SIZE_BYTES (1024 * 1024 * 1024) /* upper bound of every *_bytes setting */
#define HB_CONFIG_MAX_CONNECTIONS 1000000
#define HB_CONFIG_MAX_SUBSCRIPTIONS 65536
#define HB_CONFIG_MAX_MESSAGE_FRAGMENTS 1000000
#define HB_CONFIG_MAX_TIMEOUT_MS 3600000 /* upper bound of every *_ms setting */
#define HB_CONFIG_MAX_RATE 1000000.0     /* publishes per second, and burst */
#define HB_DEFAULT_WEB_DIR "." /* holds web/ (the demo) and sdk/js/dist/ */
#define HB_DEFAULT_LOG_LEVEL "info"
#define HB_DEFAULT_LOG_FORMAT "text" /* or "json": one object per line */

/* --- logs and metrics (log.c, metrics.c) ---------------------------------- */
#define HB_LOG_LINE_BYTES 2048 /* one log line; a field that does not fit is left out */
/* A credential in a log line: its first characters and an ellipsis. */
#define HB_LOG_REDACT_CHARS 8
#define HB_LOG_REDACT_BYTES 16 /* HB_LOG_REDACT_CHARS + the 3-byte ellipsis + NUL */
/* One line per kind of event (a refusal reason, a close code) per interval;
 * the next line says how many were left out. */
#define HB_LOG_LIMIT_INTERVAL_MS 1000
#define HB_LOG_PATH_BYTES 256 /* of a request path in a log line */
/* CORS preflight answers may be cached by the browser this long. */
#define HB_CORS_MAX_AGE_S 600

/* --- Redis broker (added by the redis module, src/broker/redis.c) --------- */
#define HB_REDIS_DEFAULT_PORT 6379
#define HB_REDIS_MAX_DB 1000000
/* Resolve, connect, AUTH, SELECT, SCRIPT LOAD and re-SUBSCRIBE must finish within this. */
#define HB_REDIS_CONNECT_TIMEOUT_MS 2000
/* Reconnect backoff: doubles from MIN after each failed attempt, up to MAX. */
#define HB_REDIS_BACKOFF_MIN_MS 100
#define HB_REDIS_BACKOFF_MAX_MS 5000
/* Each connection is PINGed when it was quiet this long; a reply (to the
 * PING or to anything sent before it) late by the timeout marks Redis as
 * gone: 3 s on the subscribe connection; on the command connection, which
 * carries the publishes, 1 s, so that a frozen Redis is noticed from the
 * publishes' own replies and publishes are refused (503) within a second. */
#define HB_REDIS_PING_INTERVAL_MS 1000
#define HB_REDIS_REPLY_TIMEOUT_MS 3000
#define HB_REDIS_PUBLISH_TIMEOUT_MS 1000
/* A publish script that Redis runs later than this after it was sent (in
 * Redis's clock, synchronised with TIME every HB_REDIS_CLOCK_SYNC_MS) does
 * nothing: by then the node may have answered 503. Under the publish
 * timeout, with room for the reply's way back. */
#define HB_REDIS_SCRIPT_DEADLINE_MS 500
#define HB_REDIS_CLOCK_SYNC_MS 5000
/* A join (WebSocket handshake) waits this long for Redis (its positions,
 * its replay, this node's subscriptions live), then closes with 1013; a
 * history page waits the second. */
#define HB_REDIS_JOIN_TIMEOUT_MS 8000
#define HB_REDIS_PAGE_TIMEOUT_MS 3000
/* Messages per read of a channel's stream (a replay, a gap, a catch-up):
 * at most ~6.4 MiB per reply with 32 KiB of data each. */
#define HB_REDIS_READ_PAGE_MESSAGES 200
/* Channel reads out at once on the command connection; more wait (after a
 * reconnect every channel catches up: publishes must not queue behind
 * thousands of reads and trip the reply timeout). */
#define HB_REDIS_CHAN_READS_IN_FLIGHT 32
/* Live messages a channel keeps while it reads its stream; more are
 * dropped (the stream has them: the next read finds them). */
#define HB_REDIS_HELD_MAX_MESSAGES 10000
/* A channel's keys in Redis live this long after history_ttl_s past its
 * last publish or join, then expire (a client away longer gets
 * recovered:false). */
#define HB_REDIS_CHANNEL_KEEP_S 3600
#define HB_REDIS_GAP_LOG_PER_S 20 /* gap log lines per second; the rest are counted */
#define HB_REDIS_TICK_MS 100 /* the Redis thread's timer: deadlines and pings */
/* Bytes of publishes sent to the Redis thread and not yet answered by
 * Redis; over it publish answers broker_unavailable instead of buffering
 * without bound. */
#define HB_REDIS_MAX_QUEUED_BYTES (16 * 1024 * 1024)
/* A Redis connection's write buffer is freed after a write this large
 * (kept for the next write otherwise). */
#define HB_REDIS_MAX_OUTPUT_BYTES (4 * 1024 * 1024)
#define HB_REDIS_READ_BUFFER_BYTES 65536
/* At startup, wait this long for Redis before listening (then start degraded). */
#define HB_REDIS_START_WAIT_MS 3000
#define HB_REDIS_LOG_EVERY 1000 /* one warning per this many refused publishes */
/* One Redis connection (rclient.c): its timer (connect and reply deadlines,
 * pings, backoff) ticks this often. A tick later than the stall bound means
 * the loop itself did not run (the process was stopped): replies waiting in
 * the socket are read before any deadline is judged. */
#define HB_RCLIENT_TICK_MS 50
#define HB_RCLIENT_STALL_MS 500

#endif
