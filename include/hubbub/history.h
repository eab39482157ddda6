/*
 * history.h - every channel's position and bounded history, in this
 * process (the local broker's; with Redis the positions live in Redis).
 *
 * Each channel (session, event or organization channel of a plugin) has an
 * epoch and a last offset; a publish takes the next offset under the
 * channel's lock, and the message (one shared frame that carries its
 * offset) is kept in a ring of the last `history_size` messages, none older
 * than `history_ttl_s`. A reconnecting client's position is either
 * recoverable from the ring (every message after it is still there) or not
 * (history_status), never partly.
 *
 * Locks are per shard of channels. hb_history_append runs the caller's
 * `deliver` callback under the channel's lock, so that deliveries to every
 * thread are posted in offset order; a join takes the locks of its three
 * channels while it reads them and subscribes (hb_history_lock).
 *
 * Persistence: when a history database is attached (hb_history_persist),
 * hb_history_flush() writes what was appended since the last flush in one
 * transaction (called off the I/O threads, on the main thread's timer), and
 * hb_history_init() loads what the last run left: the epochs and offsets,
 * and the messages still within the limits. After a run that did not end
 * cleanly (kill -9), messages accepted after the last flush may be gone, so
 * every channel gets a new epoch: clients learn they lost something
 * (recovered:false), never silently.
 */
#ifndef HUBBUB_HISTORY_H
#define HUBBUB_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hubbub/errors.h"
#include "hubbub/msg.h"
#include "hubbub/resume.h"

struct hb_historydb;

typedef struct {
  uint32_t size;            /* messages kept per channel; 0 keeps none (offsets still count) */
  int64_t ttl_ms;           /* none older than this is kept or replayed */
  uint32_t max_channels;    /* channel entries kept, the least recently used dropped first */
} hb_history_limits;

/** Start with these limits; with `db`, load what the last run saved and keep
 * saving (main thread, before any publish). 0, or -1 when `db` cannot be read. */
int hb_history_init(const hb_history_limits *lim, struct hb_historydb *db);
/** Write what is left, mark the database clean, free everything (main
 * thread, after the I/O threads stopped). */
void hb_history_shutdown(void);
/** The limits in force. */
const hb_history_limits *hb_history_limits_get(void);

/**
 * Builds the message for position `pos` (called once, under the channel's
 * lock): the caller's frame with the offset written into it. Returns a new
 * reference that hb_history_append hands back to the caller.
 */
typedef hb_msg *(*hb_history_build_fn)(void *ud, hb_pos pos);
/** Runs under the channel's lock right after the message is recorded. */
typedef void (*hb_history_deliver_fn)(void *ud, hb_msg *msg);

/**
 * Take the next position of `chan`, build the message, keep it, and call
 * `deliver` with it, all under the channel's lock. Returns the message
 * (the caller's reference). Thread-safe.
 */
hb_msg *hb_history_append(const hb_chan_key *chan, hb_history_build_fn build, void *build_ud,
                          hb_history_deliver_fn deliver, void *deliver_ud);

/** Lock the shards of `n` channels (in a fixed order: no deadlock). */
void hb_history_lock(const hb_chan_key *chans, int n);
void hb_history_unlock(const hb_chan_key *chans, int n);

/** The current position of `chan` (creating its entry: a new epoch). Lock held. */
hb_pos hb_history_position_locked(const hb_chan_key *chan);

/* Why a position cannot be recovered (HB_OK when it can). */
typedef enum {
  HB_HISTORY_OK = 0,
  HB_HISTORY_EPOCH_CHANGED, /* the position is from another history of the channel (or another room) */
  HB_HISTORY_TRIMMED,       /* messages after it are no longer kept (size or age) */
  HB_HISTORY_TOO_MANY,      /* more than max_recover_messages would have to be replayed */
  HB_HISTORY_AHEAD,         /* an offset past the channel's last: not a position it gave */
} hb_history_status;

/** The protocol's word for a status ("epoch_changed", "trimmed", ...). */
const char *hb_history_status_name(hb_history_status s);

/** A growable list of message references (owned: hb_msgvec_free unrefs them). */
typedef struct {
  hb_msg **v;
  size_t n, cap;
} hb_msgvec;
void hb_msgvec_push(hb_msgvec *mv, hb_msg *m); /* takes a new reference */
void hb_msgvec_free(hb_msgvec *mv);

/**
 * With the channel's lock held: the messages after `since` for which
 * `want` (may be NULL: all) says yes, in offset order, appended to `out`,
 * at most `max` of them; the status says whether that is all of them.
 * Nothing is appended unless the status is HB_HISTORY_OK.
 */
hb_history_status hb_history_read_locked(const hb_chan_key *chan, hb_pos since,
                                         bool (*want)(void *ud, const hb_msg *m), void *want_ud,
                                         size_t max, hb_msgvec *out);

/**
 * For the HTTP history API: up to `limit` messages after offset `after`
 * (0: from the oldest kept) for which `want` says yes; *now is the channel's
 * position, *first_kept the oldest offset it still keeps (0: none); *more
 * is set when messages remain after the last one returned.
 */
void hb_history_page(const hb_chan_key *chan, uint64_t after, bool (*want)(void *ud, const hb_msg *m),
                     void *want_ud, size_t limit, hb_msgvec *out, hb_pos *now, uint64_t *first_kept,
                     bool *more);

/** Drop messages past their age and channels over max_channels (any thread,
 * e.g. a timer). */
void hb_history_sweep(int64_t now_ms);
/**
 * Forget every channel of the `n` plugins (deleted, alone or with their
 * organization): its messages and its position here, and its rows in the
 * history database at the next flush. A client that comes back with a
 * position in one gets recovered:false. Any thread. Returns how many
 * channels were dropped.
 */
size_t hb_history_drop_plugins(const hb_uuid *plugins, size_t n);
/** Write what was appended since the last flush (the thread that owns the
 * database). Returns -1 when the write failed (logged; retried next time). */
int hb_history_flush(void);

#endif
