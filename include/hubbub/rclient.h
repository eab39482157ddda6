/*
 * rclient.h - one connection to Redis on a libuv loop: commands pipelined,
 * each with a callback, matched to the replies in order (RESP2); a deadline
 * on replies; AUTH/SELECT handshake; reconnect with backoff. The Redis
 * broker runs two (commands, subscriptions); anything else that must talk
 * to Redis from a loop (presence) can run its own.
 *
 * Threads: everything here runs on the loop's thread (callbacks included);
 * nothing is thread-safe.
 *
 * States (hb_rclient_state), an explicit machine:
 *
 *   STOPPED --start--> CONNECTING --TCP up--> HANDSHAKE --PING answered--> READY
 *                          ^                      |                           |
 *                          +---- BACKOFF <--------+------ any fault ----------+
 *
 *   CONNECTING  resolving the host and opening TCP (connect_timeout_ms for
 *               this and the handshake together)
 *   HANDSHAKE   AUTH [user] password, SELECT db, CLIENT SETNAME, then the owner's
 *               on_handshake() commands (SCRIPT LOAD, re-SUBSCRIBE...), then a
 *               PING; READY once the PING is answered, so everything the
 *               owner queued in on_handshake was processed by Redis
 *   READY       hb_rclient_cmd() sends at once (pipelined)
 *   BACKOFF     a fault closed the connection; the next attempt after the
 *               backoff (backoff_min_ms, doubling to backoff_max_ms; reset by
 *               READY)
 *
 * Faults: a read or write error, EOF, a reply that cannot be parsed, a
 * handshake error reply (a wrong password), no handshake within
 * connect_timeout_ms, or a command unanswered for reply_timeout_ms (a Redis
 * that stopped answering: frozen, overloaded, a silent network). A fault
 * fails every pending command (its callback runs once with reply NULL and
 * the reason), then on_down() runs, then the backoff starts. The first fault
 * of a run of identical ones is logged at warn ("redis: <name> connection:
 * link lost to host:port: <why>; retrying in N ms"), repeats at debug. The
 * password never appears in a log line.
 *
 * Liveness: when nothing is outstanding for ping_interval_ms, a PING is sent,
 * so a dead peer is found by the reply deadline even on an idle connection.
 * If the loop itself did not run for a while (the process was stopped, e.g.
 * SIGSTOP), replies that waited in the socket are read before any deadline
 * is judged: a late tick skips its reply check once.
 *
 * Subscriber connections (config.subscriber): Redis pushes "message",
 * "smessage" and "pmessage" arrays at any time; they go to on_push(). Every
 * other reply (the one per SUBSCRIBE/UNSUBSCRIBE of one channel, the
 * ["pong",""] of a PING) answers the oldest pending command as usual. Send
 * one channel per SUBSCRIBE/UNSUBSCRIBE so that each command gets exactly
 * one reply.
 *
 * Memory: an rclient frees itself after hb_rclient_stop() once its libuv
 * handles are closed (run the loop until then).
 */
#ifndef HUBBUB_RCLIENT_H
#define HUBBUB_RCLIENT_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct hb_rclient hb_rclient;

typedef enum {
  HB_RCLIENT_STOPPED = 0,
  HB_RCLIENT_CONNECTING,
  HB_RCLIENT_HANDSHAKE,
  HB_RCLIENT_READY,
  HB_RCLIENT_BACKOFF,
} hb_rclient_state;

/** One argument of a command (binary-safe). */
typedef struct {
  const void *p;
  size_t len;
} hb_rclient_arg;

/**
 * The answer to one command, exactly once: `reply` is Redis's reply (an
 * error reply, REDIS_REPLY_ERROR, is a reply too), valid only during the
 * call; or reply NULL and `err` says why there is none (the link failed, the
 * reply deadline passed, the client stopped). The callback may queue new
 * commands; it must not call hb_rclient_stop().
 */
typedef void (*hb_rclient_reply_fn)(void *ctx, const redisReply *reply, const char *err);

typedef struct {
  const char *name; /* in log lines: "commands", "subscribe" */
  const char *host; /* copied */
  int port;
  const char *user;     /* NULL: AUTH password (copied) */
  const char *password; /* NULL: no AUTH (copied; wiped when freed) */
  int db;               /* SELECT when not 0 */
  const char *client_name; /* CLIENT SETNAME (CLIENT LIST shows it), or NULL; refused: ignored */
  uint32_t connect_timeout_ms;
  uint32_t reply_timeout_ms;
  uint32_t ping_interval_ms; /* 0: never */
  uint32_t backoff_min_ms, backoff_max_ms;
  bool subscriber; /* pushed messages go to on_push */
  /* Callbacks, on the loop's thread; any may be NULL. */
  void (*on_handshake)(hb_rclient *rc, void *ud); /* queue what must precede READY */
  void (*on_ready)(hb_rclient *rc, void *ud);
  void (*on_down)(hb_rclient *rc, void *ud, const char *why, bool was_ready);
  void (*on_push)(hb_rclient *rc, void *ud, const redisReply *msg);
  void *ud;
} hb_rclient_config;

/** A client on `loop` (not connected until hb_rclient_start). */
hb_rclient *hb_rclient_new(uv_loop_t *loop, const hb_rclient_config *cfg);
/** Connect, and reconnect after every fault until stopped. */
void hb_rclient_start(hb_rclient *rc);
/**
 * Fail every pending command ("stopped"), close the connection; the client
 * frees itself once its handles are closed. Not from one of its callbacks.
 */
void hb_rclient_stop(hb_rclient *rc);

/**
 * Queue a command (argv[0] is its name). Only in HANDSHAKE (from
 * on_handshake) and READY: otherwise returns false and `cb` is not called.
 * True: `cb` runs exactly once, later (never from within this call).
 */
bool hb_rclient_cmd(hb_rclient *rc, hb_rclient_reply_fn cb, void *ctx, int argc, const hb_rclient_arg *argv);
/** The same with NUL-terminated strings. */
bool hb_rclient_cmd_strs(hb_rclient *rc, hb_rclient_reply_fn cb, void *ctx, int argc, const char *const *argv);

/** Declare a fault now (e.g. a handshake command of the owner failed). */
void hb_rclient_fault(hb_rclient *rc, const char *why);

hb_rclient_state hb_rclient_get_state(const hb_rclient *rc);
/** "stopped", "connecting", "handshake", "ready", "backoff". */
const char *hb_rclient_state_name(hb_rclient_state s);
/** Commands sent or queued and not yet answered. */
size_t hb_rclient_pending(const hb_rclient *rc);
/** Bytes of commands not yet handed to the kernel. */
size_t hb_rclient_unsent_bytes(const hb_rclient *rc);
/** Faults since the start (each one failed the pending commands). */
uint64_t hb_rclient_faults(const hb_rclient *rc);
/** The loop's clock when the connection last became READY (0: never). */
uint64_t hb_rclient_ready_since_ms(const hb_rclient *rc);

/** True for a reply that is a simple/bulk string equal to `s` (case-insensitive). */
bool hb_rclient_reply_is(const redisReply *r, const char *s);

#endif
