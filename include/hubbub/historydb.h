/*
 * historydb.h - where a single node keeps its channels' history across
 * restarts: DIR/history.db, an SQLite file of its own (it is bulky, written
 * all the time and safe to delete, unlike the credentials in hubbub.db).
 *
 * The rows are opaque to this module: a channel is a key (bytes), its epoch
 * and last offset; messages are stored in chunks, one row per channel per
 * flush, whose body the history module encodes (pubsub/history.c). So the
 * cost per message is a copy into a buffer, and the cost per flush one row
 * per channel that changed. Only the thread that owns the handle may use it.
 */
#ifndef HUBBUB_HISTORYDB_H
#define HUBBUB_HISTORYDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HB_HISTORYDB_FILE "history.db"

typedef struct hb_historydb hb_historydb;

/** Open (creating) DIR/history.db and migrate it. -1 and a reason in errbuf. */
int hb_historydb_open(hb_historydb **out, const char *dir, char *errbuf, size_t errlen);
void hb_historydb_close(hb_historydb *db);

typedef struct {
  void (*channel)(void *ud, const void *key, size_t key_len, uint64_t epoch, uint64_t last);
  /* A chunk of one channel (after its channel): offsets first..last, body as written. */
  void (*chunk)(void *ud, const void *key, size_t key_len, uint64_t epoch, uint64_t first,
                uint64_t last, const void *body, size_t body_len);
} hb_historydb_visitor;

/**
 * Read everything back: every channel, then its chunks whose newest message
 * is not older than min_sent_ms, in offset order. *clean says whether the
 * last run marked the file clean (hb_historydb_set_clean) before it ended.
 */
int hb_historydb_load(hb_historydb *db, int64_t min_sent_ms, const hb_historydb_visitor *v, void *ud,
                      bool *clean);

/* Writing: a transaction around any number of the calls below. */
int hb_historydb_begin(hb_historydb *db);
int hb_historydb_commit(hb_historydb *db);
void hb_historydb_rollback(hb_historydb *db);
int hb_historydb_put_channel(hb_historydb *db, const void *key, size_t key_len, uint64_t epoch, uint64_t last);
int hb_historydb_put_chunk(hb_historydb *db, const void *key, size_t key_len, uint64_t epoch, uint64_t first,
                           uint64_t last, int64_t newest_sent_ms, const void *body, size_t body_len);
/** Drop a channel's chunks that end before `keep_from` (or all of another epoch). */
int hb_historydb_trim(hb_historydb *db, const void *key, size_t key_len, uint64_t epoch, uint64_t keep_from);
int hb_historydb_delete_channel(hb_historydb *db, const void *key, size_t key_len);
/** Drop every chunk whose newest message is older than min_sent_ms. */
int hb_historydb_prune(hb_historydb *db, int64_t min_sent_ms);
/** Mark the file clean (at a graceful stop, after the last flush) or in use. */
int hb_historydb_set_clean(hb_historydb *db, bool clean);

#endif
