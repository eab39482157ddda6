/*
 * internal.h - what the store's front (store.c) and its backends (sqlite.c,
 * pg.c) share. Not part of hubbub's API: nothing outside src/store includes it.
 *
 * A backend is a small SQL driver: run one statement with bound values,
 * iterate rows, transactions, the change counter, the schema version. The
 * front holds every rule and every data statement, written once in the
 * dialect both understand: parameters are ?1, ?2 ... (pg.c turns them into
 * $1, $2 ...), ids and names are TEXT, times INTEGER/BIGINT seconds, the
 * token hash a BLOB/BYTEA. What differs (DDL, migrations' bookkeeping,
 * locking, NOTIFY) stays in the backend.
 */
#ifndef HUBBUB_STORE_INTERNAL_H
#define HUBBUB_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hubbub/store.h"

/* The schema version this build knows: both backends have exactly this many
 * migrations, numbered alike (each file checks it at compile time). */
#define HB__STORE_SCHEMA_VERSION 2

/* Most parameters one statement binds. */
#define HB__STORE_MAX_ARGS 16

typedef enum { HB__V_NULL, HB__V_INT, HB__V_TEXT, HB__V_BLOB } hb__vtype;

/* A value bound to a statement. Text and blobs are borrowed for the call. */
typedef struct {
  hb__vtype t;
  int64_t i;
  const void *p;
  size_t n;
} hb__val;

/* One result row, read through the backend's column accessors. */
typedef struct {
  hb_store *s;
  void *cur; /* the backend's statement or result */
  int row;
} hb__row;

/* Called once per row; a non-zero return stops the iteration (and is
 * returned by query). */
typedef int (*hb__row_fn)(const hb__row *r, void *ud);

typedef struct {
  const char *name; /* "sqlite", "postgresql" */
  bool local;       /* see hb_store_is_local() */
  void (*close)(hb_store *s);
  /*
   * Run one statement. Results: 0, 1 (a constraint refused it: unique,
   * foreign key, check), HB_STORE_ERROR, HB_STORE_UNAVAILABLE. `changes`
   * (may be NULL) receives the number of rows written.
   */
  int (*exec)(hb_store *s, const char *sql, const hb__val *args, int nargs, int64_t *changes);
  /* Run one query and call fn for each row. 0 or an error as exec. */
  int (*query)(hb_store *s, const char *sql, const hb__val *args, int nargs, hb__row_fn fn, void *ud);
  bool (*col_null)(const hb__row *r, int col);
  int64_t (*col_int)(const hb__row *r, int col);
  /* NUL-terminated, valid until the next row; "" for NULL. */
  const char *(*col_text)(const hb__row *r, int col);
  /* Copies at most cap bytes into out; returns the blob's length. */
  size_t (*col_blob)(const hb__row *r, int col, uint8_t *out, size_t cap);
  /* A write transaction (begin_read: a consistent read-only snapshot). */
  int (*begin)(hb_store *s);
  int (*begin_read)(hb_store *s);
  int (*commit)(hb_store *s);
  void (*rollback)(hb_store *s);
  /* Inside a write transaction: bump the change counter (and NOTIFY). */
  int (*bump)(hb_store *s);
  int (*data_version)(hb_store *s, int64_t *out);
  int (*wait_change)(hb_store *s, int timeout_ms);
  int (*schema_version)(hb_store *s, int *out);
  /* Is the file still the one opened (hb_store_check_file)? NULL: no file. */
  hb_store_file (*check_file)(hb_store *s);
} hb__store_ops;

/* Every backend's store starts with this. */
struct hb_store {
  const hb__store_ops *ops;
  int tx; /* 0 none, 1 read, 2 write: the front's bookkeeping */
};

/* Open a backend. `target` is the file path (sqlite) or the libpq URI (pg).
 * On failure -1 (or HB_STORE_UNAVAILABLE) with a reason in errbuf that never
 * contains a password. */
int hb__sqlite_open(hb_store **out, const char *path, const hb_store_options *o, char *errbuf,
                    size_t errlen);
int hb__pg_open(hb_store **out, const char *uri, const hb_store_options *o, char *errbuf,
                size_t errlen);

/* snprintf into errbuf when it is not NULL. */
void hb__store_errf(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The error message for a database newer than this build. */
void hb__store_too_new(char *errbuf, size_t errlen, int found);

/* Value constructors. */
static inline hb__val hb__int(int64_t i) { return (hb__val){HB__V_INT, i, NULL, 0}; }
static inline hb__val hb__text(const char *s) {
  return s ? (hb__val){HB__V_TEXT, 0, s, __builtin_strlen(s)} : (hb__val){HB__V_NULL, 0, NULL, 0};
}
static inline hb__val hb__blob(const void *p, size_t n) { return (hb__val){HB__V_BLOB, 0, p, n}; }
static inline hb__val hb__null(void) { return (hb__val){HB__V_NULL, 0, NULL, 0}; }

#endif
