/*
 * store.c - the store's front: locations, the shared rules, and every data
 * statement, run through a backend (sqlite.c, pg.c; see internal.h).
 *
 * Every statement that carries data is prepared with bound parameters. Ids
 * are UUID v4 stored as canonical lowercase TEXT, times are Unix seconds.
 * API tokens are stored only as their SHA-256; plugin signing secrets are
 * stored as they are (they must be: the server signs and verifies with
 * them), which is why an SQLite file is created 0600 in a 0700 directory.
 *
 * Every write is one transaction: its statements, then the change counter
 * (backend's bump: NOTIFY on PostgreSQL), then COMMIT; any failure rolls
 * the whole of it back.
 */
#include "hubbub/store.h"

#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "hubbub/alloc.h"
#include "hubbub/b64url.h"
#include "hubbub/log.h"
#include "hubbub/strbuf.h"
#include "hubbub/user_id.h"
#include "hubbub/utf8.h"
#include "store/internal.h"

/* ---- small helpers ------------------------------------------------------ */

static int64_t now_s(void) { return (int64_t)time(NULL); }

void hb__store_errf(char *errbuf, size_t errlen, const char *fmt, ...) {
  if (!errbuf || !errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, errlen, fmt, ap);
  va_end(ap);
}

void hb__store_too_new(char *errbuf, size_t errlen, int found) {
  hb__store_errf(errbuf, errlen, "database schema version %d is newer than this hubbub (%d): upgrade hubbub",
                 found, HB__STORE_SCHEMA_VERSION);
}

/* prefix + base64url(nbytes random bytes from the OpenSSL CSPRNG). */
static int random_secret(const char *prefix, size_t nbytes, char *out, size_t outlen) {
  uint8_t raw[64];
  if (nbytes > sizeof raw) return -1;
  if (RAND_bytes(raw, (int)nbytes) != 1) return -1;
  hb_strbuf sb = HB_STRBUF_INIT;
  hb_strbuf_addstr(&sb, prefix);
  hb_b64url_encode(&sb, raw, nbytes);
  OPENSSL_cleanse(raw, sizeof raw);
  int rc = sb.len < outlen ? 0 : -1;
  if (rc == 0) memcpy(out, sb.buf, sb.len + 1);
  OPENSSL_cleanse(sb.buf, sb.cap);
  hb_strbuf_free(&sb);
  return rc;
}

/* A new signing secret and its key id; the kid differs from `avoid`. */
static int new_signing_key(hb_plugin_row *r, const char *avoid) {
  do {
    if (random_secret("", HB_SIGNING_KID_RANDOM_BYTES, r->signing_kid, sizeof r->signing_kid) != 0)
      return -1;
  } while (avoid && strcmp(avoid, r->signing_kid) == 0);
  if (random_secret("hbs_", HB_SIGNING_SECRET_RANDOM_BYTES, r->signing_secret, sizeof r->signing_secret) != 0) {
    hb_error_log("store: no randomness for a signing secret");
    return -1;
  }
  return 0;
}

const char *hb_store_name_problem(const char *name) {
  size_t n = name ? strlen(name) : 0;
  hb_uuid tmp;
  if (n == 0 || n > HB_MAX_NAME_BYTES) return "must be 1 to " HB_STR(HB_MAX_NAME_BYTES) " bytes";
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) return "must not contain control characters";
  /* Names travel in JSON (--json, the admin API), which is UTF-8. */
  if (!hb_utf8_valid((const unsigned char *)name, n)) return "must be UTF-8";
  /* Lookups take "a name or a UUID": a name that is a UUID would be ambiguous. */
  if (hb_uuid_parse(name, n, &tmp)) return "must not be a UUID";
  return NULL;
}

static bool valid_name(const char *name) { return hb_store_name_problem(name) == NULL; }

/* A user id as a token's `sub` carries it (user_id.h). */
static bool valid_user_id(const char *u) { return u && hb_user_id_valid(u, strlen(u)); }

typedef struct {
  char s[HB_UUID_STR_BYTES];
} idstr;

static idstr id_of(const hb_uuid *u) {
  idstr b;
  hb_uuid_format(u, b.s);
  return b;
}

/* Column access through the backend. */
#define C_INT(r, i) ((r)->s->ops->col_int((r), (i)))
#define C_TEXT(r, i) ((r)->s->ops->col_text((r), (i)))
#define C_NULL(r, i) ((r)->s->ops->col_null((r), (i)))

static void col_uuid(const hb__row *r, int col, hb_uuid *out) {
  const char *t = C_TEXT(r, col);
  if (!hb_uuid_parse(t, strlen(t), out)) memset(out, 0, sizeof *out);
}

static void col_str(const hb__row *r, int col, char *out, size_t outlen) {
  snprintf(out, outlen, "%s", C_TEXT(r, col));
}

static int exec(hb_store *s, const char *sql, const hb__val *args, int nargs, int64_t *changes) {
  return s->ops->exec(s, sql, args, nargs, changes);
}

static int query(hb_store *s, const char *sql, const hb__val *args, int nargs, hb__row_fn fn, void *ud) {
  return s->ops->query(s, sql, args, nargs, fn, ud);
}

#define NARGS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- transactions ------------------------------------------------------- */

static int tx_begin(hb_store *s) {
  if (s->tx) {
    hb_error_log("store: a write inside another transaction");
    return HB_STORE_ERROR;
  }
  int rc = s->ops->begin(s);
  if (rc == 0) s->tx = 2;
  return rc == 1 ? HB_STORE_ERROR : rc;
}

/* End the write transaction: with rc == 0 bump the change counter and
 * commit; otherwise (or if that fails) roll back. Returns the outcome. */
static int tx_end(hb_store *s, int rc) {
  if (rc == 0) rc = s->ops->bump(s);
  if (rc == 0 && (rc = s->ops->commit(s)) == 1) rc = HB_STORE_ERROR;
  if (rc != 0) s->ops->rollback(s);
  s->tx = 0;
  return rc;
}

int hb_store_read(hb_store *s, int (*fn)(hb_store *, void *), void *ud) {
  if (s->tx) return fn(s, ud); /* already inside one */
  int rc = s->ops->begin_read(s);
  if (rc != 0) return rc == 1 ? HB_STORE_ERROR : rc;
  s->tx = 1;
  rc = fn(s, ud);
  if (rc == 0) rc = s->ops->commit(s);
  if (rc != 0) s->ops->rollback(s);
  s->tx = 0;
  return rc;
}

/* ---- locations and open ------------------------------------------------- */

static bool has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* mkdir -p with 0700: the directory holds signing secrets. */
static int make_dirs(const char *dir, char *errbuf, size_t errlen) {
  char path[PATH_MAX];
  size_t n = strlen(dir);
  if (n == 0 || n >= sizeof path) {
    hb__store_errf(errbuf, errlen, "data directory path is empty or too long");
    return -1;
  }
  memcpy(path, dir, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (path[i] != '/' && path[i] != '\0') continue;
    char saved = path[i];
    path[i] = '\0';
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
      hb__store_errf(errbuf, errlen, "cannot create data directory '%s': %s", path, strerror(errno));
      return -1;
    }
    path[i] = saved;
  }
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    hb__store_errf(errbuf, errlen, "data directory '%s' is not a directory", dir);
    return -1;
  }
  return 0;
}

void hb_store_location_describe(const char *loc, char *out, size_t outlen) {
  if (!out || !outlen) return;
  out[0] = '\0';
  if (!loc) return;
  const char *sep = strstr(loc, "://");
  if (!(has_prefix(loc, "postgres://") || has_prefix(loc, "postgresql://")) || !sep) {
    snprintf(out, outlen, "%s", loc);
    return;
  }
  /* scheme://[user[:password]@]host[:port][/db][?k=v&...]: keep all but
   * the password and any password= parameter. */
  size_t o = 0;
#define PUT(p, n)                                                   \
  do {                                                              \
    size_t n_ = (n);                                                \
    if (o + n_ >= outlen) n_ = outlen - 1 - o;                      \
    memcpy(out + o, (p), n_);                                       \
    o += n_;                                                        \
  } while (0)
  const char *auth = sep + 3;
  PUT(loc, (size_t)(auth - loc));
  size_t alen = strcspn(auth, "/?#");
  const char *at = NULL;
  for (size_t i = 0; i < alen; i++)
    if (auth[i] == '@') at = auth + i;
  if (at) {
    const char *colon = memchr(auth, ':', (size_t)(at - auth));
    if (colon) {
      PUT(auth, (size_t)(colon - auth));
      PUT(":***", 4);
      PUT(at, alen - (size_t)(at - auth));
    } else {
      PUT(auth, alen);
    }
  } else {
    PUT(auth, alen);
  }
  const char *rest = auth + alen;
  const char *q = strchr(rest, '?');
  PUT(rest, q ? (size_t)(q - rest) : strlen(rest));
  if (q) {
    PUT("?", 1);
    for (const char *p = q + 1; *p;) {
      size_t n = strcspn(p, "&");
      if (n >= 9 && strncmp(p, "password=", 9) == 0) PUT("password=***", 12);
      else PUT(p, n);
      p += n;
      if (*p == '&') {
        PUT("&", 1);
        p++;
      }
    }
  }
#undef PUT
  out[o] = '\0';
}

/* True, with the reason, when there is no SQLite file at `path` (a store
 * that must exist: nothing is created). */
static bool no_file(const char *path, const char *location, char *errbuf, size_t errlen) {
  struct stat st;
  if (stat(path, &st) == 0 || (errno != ENOENT && errno != ENOTDIR)) return false;
  hb__store_errf(errbuf, errlen, "there is no store in '%s' (no %s): `hubbub init` creates one", location, path);
  return true;
}

int hb_store_open_with(hb_store **out, const char *location, const hb_store_options *opts,
                       char *errbuf, size_t errlen) {
  char path[PATH_MAX];
  bool must_exist = opts && opts->must_exist;
  *out = NULL;
  if (errbuf && errlen) errbuf[0] = '\0';
  if (!location || !*location) {
    hb__store_errf(errbuf, errlen, "the store location is empty");
    return HB_STORE_ERROR;
  }
  if (strlen(location) > HB_STORE_MAX_LOCATION_BYTES) {
    hb__store_errf(errbuf, errlen, "the store location is longer than %d bytes", HB_STORE_MAX_LOCATION_BYTES);
    return HB_STORE_ERROR;
  }
  if (has_prefix(location, "postgres://") || has_prefix(location, "postgresql://"))
    return hb__pg_open(out, location, opts, errbuf, errlen);
  if (has_prefix(location, "postgres:") || has_prefix(location, "postgresql:")) {
    hb__store_errf(errbuf, errlen, "malformed store location: a PostgreSQL location is a URI, "
                                   "postgres://USER@HOST:PORT/DATABASE");
    return HB_STORE_ERROR;
  }
  if (has_prefix(location, "sqlite:")) {
    const char *file = location + 7;
    struct stat st;
    if (!*file || has_prefix(file, "//")) {
      hb__store_errf(errbuf, errlen, "malformed store location '%s': write sqlite:PATH, e.g. sqlite:/var/lib/hubbub/hubbub.db",
                     location);
      return HB_STORE_ERROR;
    }
    if (stat(file, &st) == 0 && S_ISDIR(st.st_mode)) {
      hb__store_errf(errbuf, errlen, "'%s' is a directory: give the directory itself as the location, or sqlite:FILE",
                     file);
      return HB_STORE_ERROR;
    }
    if (must_exist && no_file(file, location, errbuf, errlen)) return HB_STORE_NONE;
    return hb__sqlite_open(out, file, opts, errbuf, errlen);
  }
  /* Any other scheme is a mistake, not a directory named "mysql:". */
  const char *sep = strstr(location, "://");
  if (sep && sep > location && strcspn(location, "/") == (size_t)(sep - location) + 1) {
    hb__store_errf(errbuf, errlen, "unknown store location scheme '%.*s': use a directory, sqlite:PATH or postgres://...",
                   (int)(sep - location), location);
    return HB_STORE_ERROR;
  }
  if (!must_exist && make_dirs(location, errbuf, errlen) != 0) return HB_STORE_ERROR;
  if (snprintf(path, sizeof path, "%s/%s", location, HB_STORE_FILE) >= (int)sizeof path) {
    hb__store_errf(errbuf, errlen, "data directory path is too long");
    return HB_STORE_ERROR;
  }
  if (must_exist && no_file(path, location, errbuf, errlen)) return HB_STORE_NONE;
  return hb__sqlite_open(out, path, opts, errbuf, errlen);
}

int hb_store_open(hb_store **out, const char *location, char *errbuf, size_t errlen) {
  int rc = hb_store_open_with(out, location, NULL, errbuf, errlen);
  if (rc != 0 && errbuf && errlen && !errbuf[0]) hb__store_errf(errbuf, errlen, "cannot open the store");
  return rc;
}

int hb_store_open_existing(hb_store **out, const char *location, char *errbuf, size_t errlen) {
  hb_store_options o = {.must_exist = true};
  return hb_store_open_with(out, location, &o, errbuf, errlen);
}

hb_store_file hb_store_check_file(hb_store *s) { return s->ops->check_file ? s->ops->check_file(s) : HB_STORE_FILE_OK; }

void hb_store_close(hb_store *s) {
  if (s) s->ops->close(s);
}

/* One handle per thread that asks (a connection must not be shared by
 * threads that use it at the same time). */
static _Thread_local hb_store *thread_store;
static _Thread_local bool thread_store_warned; /* one warning until it opens */

hb_store *hb_store_thread(const char *location) {
  if (!thread_store) {
    char err[256];
    /* Never create one: under a running server a missing file means it was
     * deleted, and an empty store would silently refuse every credential. */
    if (hb_store_open_existing(&thread_store, location, err, sizeof err) != 0) {
      /* Asked again on every unknown credential: say it once, not per request. */
      if (!thread_store_warned) hb_warn("cannot open the store for this thread: %s", err);
      thread_store_warned = true;
      thread_store = NULL;
    } else {
      thread_store_warned = false;
    }
  }
  return thread_store;
}

void hb_store_thread_close(void) {
  hb_store_close(thread_store);
  thread_store = NULL;
}

bool hb_store_is_local(const hb_store *s) { return s->ops->local; }
const char *hb_store_backend(const hb_store *s) { return s->ops->name; }
int hb_store_schema_version(hb_store *s, int *out) { return s->ops->schema_version(s, out); }
int hb_store_schema_latest(void) { return HB__STORE_SCHEMA_VERSION; }
int hb_store_data_version(hb_store *s, int64_t *out) { return s->ops->data_version(s, out); }
int hb_store_wait_change(hb_store *s, int timeout_ms) { return s->ops->wait_change(s, timeout_ms); }

/* ---- finding one row ------------------------------------------------------ */

typedef struct {
  void (*read)(const hb__row *, void *);
  void *out;
  bool found;
} one_ctx;

static int one_row(const hb__row *r, void *ud) {
  one_ctx *c = ud;
  c->read(r, c->out);
  c->found = true;
  return 0;
}

/* One row by the given values: 0 found, 1 none, or an error. */
static int find_by(hb_store *s, const char *sql, const hb__val *args, int nargs,
                   void (*read)(const hb__row *, void *), void *out) {
  one_ctx c = {read, out, false};
  int rc = query(s, sql, args, nargs, one_row, &c);
  if (rc != 0) return rc;
  return c.found ? 0 : 1;
}

/* Find by id when `key` is a UUID, else (or when no such id) by name. The
 * scope id, if any, is ?2 in both statements. */
static int find_one(hb_store *s, const char *sql_by_id, const char *sql_by_name, const hb_uuid *scope_id,
                    const char *key, void (*read)(const hb__row *, void *), void *out) {
  hb_uuid id;
  if (!key) return 1;
  bool is_id = hb_uuid_parse(key, strlen(key), &id);
  idstr ids = is_id ? id_of(&id) : (idstr){{0}}, scope = scope_id ? id_of(scope_id) : (idstr){{0}};
  for (int pass = is_id ? 0 : 1; pass < 2; pass++) {
    if (pass == 1 && !sql_by_name) break;
    hb__val args[] = {hb__text(pass == 0 ? ids.s : key), hb__text(scope.s)};
    int rc = find_by(s, pass == 0 ? sql_by_id : sql_by_name, args, scope_id ? 2 : 1, read, out);
    if (rc != 1) return rc;
  }
  return 1;
}

/* ---- organizations ------------------------------------------------------ */

#define ORG_COLS "id, name, created_at"

static void read_org(const hb__row *r, void *out) {
  hb_org_row *o = out;
  memset(o, 0, sizeof *o);
  col_uuid(r, 0, &o->id);
  col_str(r, 1, o->name, sizeof o->name);
  o->created_at = C_INT(r, 2);
}

static int insert_org(hb_store *s, const hb_org_row *o) {
  idstr id = id_of(&o->id);
  hb__val args[] = {hb__text(id.s), hb__text(o->name), hb__int(o->created_at)};
  return exec(s, "INSERT INTO organizations (id, name, created_at) VALUES (?1, ?2, ?3)", args, NARGS(args), NULL);
}

int hb_store_org_create(hb_store *s, const char *name, hb_org_row *out) {
  hb_org_row row;
  int rc;
  if (!valid_name(name)) {
    hb_warn("store: organization name must be 1..%d bytes", HB_MAX_NAME_BYTES);
    return HB_STORE_ERROR;
  }
  memset(&row, 0, sizeof row);
  hb_uuid_v4(&row.id);
  snprintf(row.name, sizeof row.name, "%s", name);
  row.created_at = now_s();
  if ((rc = tx_begin(s)) != 0) return rc;
  rc = tx_end(s, insert_org(s, &row));
  if (rc == 0 && out) *out = row;
  return rc;
}

int hb_store_org_find(hb_store *s, const char *name_or_id, hb_org_row *out) {
  hb_org_row tmp;
  return find_one(s, "SELECT " ORG_COLS " FROM organizations WHERE id = ?1",
                  "SELECT " ORG_COLS " FROM organizations WHERE name = ?1", NULL, name_or_id, read_org,
                  out ? out : &tmp);
}

typedef struct {
  void (*cb)(const void *, void *);
  void *ud;
  void (*read)(const hb__row *, void *);
  size_t size;
} list_ctx;

/* Read each row into a stack copy and hand it to the caller; the copy is
 * cleansed after (plugin rows carry secrets). */
static int list_row(const hb__row *r, void *ud) {
  list_ctx *c = ud;
  union {
    hb_org_row o;
    hb_plugin_row p;
    hb_token_row t;
    hb_revocation_row v;
  } row;
  c->read(r, &row);
  c->cb(&row, c->ud);
  OPENSSL_cleanse(&row, c->size);
  return 0;
}

static int list(hb_store *s, const char *sql, const hb__val *args, int nargs, void (*read)(const hb__row *, void *),
                size_t size, void (*cb)(const void *, void *), void *ud) {
  list_ctx c = {cb, ud, read, size};
  return query(s, sql, args, nargs, list_row, &c);
}

int hb_store_org_list(hb_store *s, void (*cb)(const hb_org_row *, void *), void *ud) {
  return list(s, "SELECT " ORG_COLS " FROM organizations ORDER BY created_at, rowid", NULL, 0, read_org,
              sizeof(hb_org_row), (void (*)(const void *, void *))cb, ud);
}

/* Delete one row by id in a transaction: 0, 1 none, or an error. */
static int delete_by_id(hb_store *s, const char *sql, const hb_uuid *id) {
  idstr ids = id_of(id);
  hb__val args[] = {hb__text(ids.s)};
  int64_t n = 0;
  int rc = tx_begin(s);
  if (rc != 0) return rc;
  rc = exec(s, sql, args, 1, &n);
  if (rc == 0 && n == 0) rc = 1;
  return tx_end(s, rc);
}

int hb_store_org_delete(hb_store *s, const hb_uuid *org) {
  /* ON DELETE CASCADE takes its plugins, and through them their tokens and
   * revocations, in the same statement. */
  return delete_by_id(s, "DELETE FROM organizations WHERE id = ?1", org);
}

/* ---- plugins ------------------------------------------------------------ */

#define PLUGIN_COLS                                                                                  \
  "id, organization_id, name, signing_secret, allowed_origins, created_at, signing_kid,"             \
  " secret_created_at, previous_secret, previous_kid, previous_retire_at"

static void read_plugin(const hb__row *r, void *out) {
  hb_plugin_row *p = out;
  memset(p, 0, sizeof *p);
  col_uuid(r, 0, &p->id);
  col_uuid(r, 1, &p->org_id);
  col_str(r, 2, p->name, sizeof p->name);
  col_str(r, 3, p->signing_secret, sizeof p->signing_secret);
  col_str(r, 4, p->allowed_origins, sizeof p->allowed_origins);
  p->created_at = C_INT(r, 5);
  col_str(r, 6, p->signing_kid, sizeof p->signing_kid);
  p->secret_created_at = C_INT(r, 7);
  col_str(r, 8, p->previous_secret, sizeof p->previous_secret);
  col_str(r, 9, p->previous_kid, sizeof p->previous_kid);
  p->previous_retire_at = C_INT(r, 10);
  if (!p->previous_secret[0]) p->previous_kid[0] = '\0';
}

static int insert_plugin(hb_store *s, const hb_plugin_row *p) {
  idstr id = id_of(&p->id), org = id_of(&p->org_id);
  bool prev = p->previous_secret[0] != '\0';
  hb__val args[] = {hb__text(id.s),
                    hb__text(org.s),
                    hb__text(p->name),
                    hb__text(p->signing_secret),
                    hb__text(p->allowed_origins),
                    hb__int(p->created_at),
                    hb__text(p->signing_kid),
                    hb__int(p->secret_created_at),
                    prev ? hb__text(p->previous_secret) : hb__null(),
                    prev ? hb__text(p->previous_kid) : hb__null(),
                    hb__int(prev ? p->previous_retire_at : 0)};
  return exec(s,
              "INSERT INTO plugins (" PLUGIN_COLS ")"
              " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULLIF(?11, 0))",
              args, NARGS(args), NULL);
}

int hb_store_plugin_create_with_origins(hb_store *s, const hb_uuid *org, const char *name, const char *origins,
                                        hb_plugin_row *out) {
  hb_plugin_row row;
  int rc;
  if (!valid_name(name)) {
    hb_warn("store: plugin name must be 1..%d bytes", HB_MAX_NAME_BYTES);
    return HB_STORE_ERROR;
  }
  if (!origins) origins = "";
  if (strlen(origins) >= sizeof row.allowed_origins) {
    hb_warn("store: allowed origins list is too long");
    return HB_STORE_ERROR;
  }
  memset(&row, 0, sizeof row);
  hb_uuid_v4(&row.id);
  row.org_id = *org;
  snprintf(row.name, sizeof row.name, "%s", name);
  snprintf(row.allowed_origins, sizeof row.allowed_origins, "%s", origins);
  row.created_at = row.secret_created_at = now_s();
  if (new_signing_key(&row, NULL) != 0) return HB_STORE_ERROR;
  if ((rc = tx_begin(s)) == 0) rc = tx_end(s, insert_plugin(s, &row));
  if (rc == 0 && out) *out = row;
  OPENSSL_cleanse(&row, sizeof row);
  return rc;
}

int hb_store_plugin_create(hb_store *s, const hb_uuid *org, const char *name, hb_plugin_row *out) {
  return hb_store_plugin_create_with_origins(s, org, name, "", out);
}

int hb_store_plugin_set_origins(hb_store *s, const hb_uuid *plugin, const char *origins) {
  int64_t n = 0;
  int rc;
  if (!origins) origins = "";
  if (strlen(origins) >= sizeof(((hb_plugin_row *)0)->allowed_origins)) {
    hb_warn("store: allowed origins list is too long");
    return HB_STORE_ERROR;
  }
  idstr id = id_of(plugin);
  hb__val args[] = {hb__text(origins), hb__text(id.s)};
  if ((rc = tx_begin(s)) != 0) return rc;
  rc = exec(s, "UPDATE plugins SET allowed_origins = ?1 WHERE id = ?2", args, 2, &n);
  if (rc == 0 && n == 0) rc = 1;
  return tx_end(s, rc);
}

int hb_store_plugin_find(hb_store *s, const hb_uuid *org, const char *name_or_id, hb_plugin_row *out) {
  hb_plugin_row tmp;
  int rc;
  /* Names are only unique inside an organization, so without one only an
   * id can name a plugin. */
  if (org)
    rc = find_one(s, "SELECT " PLUGIN_COLS " FROM plugins WHERE id = ?1 AND organization_id = ?2",
                  "SELECT " PLUGIN_COLS " FROM plugins WHERE name = ?1 AND organization_id = ?2", org, name_or_id,
                  read_plugin, out ? out : &tmp);
  else
    rc = find_one(s, "SELECT " PLUGIN_COLS " FROM plugins WHERE id = ?1", NULL, NULL, name_or_id, read_plugin,
                  out ? out : &tmp);
  OPENSSL_cleanse(&tmp, sizeof tmp);
  return rc;
}

int hb_store_plugin_list(hb_store *s, const hb_uuid *org, void (*cb)(const hb_plugin_row *, void *), void *ud) {
  idstr id = org ? id_of(org) : (idstr){{0}};
  hb__val args[] = {hb__text(id.s)};
  return list(s,
              org ? "SELECT " PLUGIN_COLS " FROM plugins WHERE organization_id = ?1 ORDER BY created_at, rowid"
                  : "SELECT " PLUGIN_COLS " FROM plugins ORDER BY created_at, rowid",
              args, org ? 1 : 0, read_plugin, sizeof(hb_plugin_row), (void (*)(const void *, void *))cb, ud);
}

int hb_store_plugin_delete(hb_store *s, const hb_uuid *plugin) {
  return delete_by_id(s, "DELETE FROM plugins WHERE id = ?1", plugin);
}

static int plugin_by_id(hb_store *s, const hb_uuid *plugin, hb_plugin_row *out) {
  idstr id = id_of(plugin);
  hb__val args[] = {hb__text(id.s)};
  return find_by(s, "SELECT " PLUGIN_COLS " FROM plugins WHERE id = ?1", args, 1, read_plugin, out);
}

int hb_store_plugin_rotate_secret(hb_store *s, const hb_uuid *plugin, int64_t previous_ttl_s, hb_plugin_row *out) {
  hb_plugin_row cur, next;
  int64_t n = 0, now = now_s();
  int rc;
  if (previous_ttl_s < 0) return HB_STORE_ERROR;
  memset(&next, 0, sizeof next);
  if ((rc = tx_begin(s)) != 0) return rc;
  if ((rc = plugin_by_id(s, plugin, &cur)) != 0) goto out;
  if (new_signing_key(&next, cur.signing_kid) != 0) {
    rc = HB_STORE_ERROR;
    goto out;
  }
  idstr id = id_of(plugin);
  /* Every right-hand side reads the row as it was: the old current secret
   * becomes the previous one, whatever previous there was is dropped. */
  hb__val args[] = {hb__text(id.s), hb__int(previous_ttl_s ? now + previous_ttl_s : 0),
                    hb__text(next.signing_secret), hb__text(next.signing_kid), hb__int(now)};
  rc = exec(s,
            "UPDATE plugins SET previous_secret = signing_secret, previous_kid = signing_kid,"
            " previous_retire_at = NULLIF(?2, 0), signing_secret = ?3, signing_kid = ?4,"
            " secret_created_at = ?5 WHERE id = ?1",
            args, NARGS(args), &n);
  if (rc == 0 && n == 0) rc = 1;
  if (rc == 0 && out) rc = plugin_by_id(s, plugin, out);
out:
  rc = tx_end(s, rc);
  if (rc != 0 && out) OPENSSL_cleanse(out, sizeof *out);
  OPENSSL_cleanse(&cur, sizeof cur);
  OPENSSL_cleanse(&next, sizeof next);
  return rc;
}

int hb_store_plugin_retire_previous(hb_store *s, const hb_uuid *plugin, bool *had_previous) {
  hb_plugin_row cur;
  int64_t n = 0;
  int rc;
  idstr id = id_of(plugin);
  hb__val args[] = {hb__text(id.s)};
  if (had_previous) *had_previous = false;
  if ((rc = tx_begin(s)) != 0) return rc;
  rc = exec(s,
            "UPDATE plugins SET previous_secret = NULL, previous_kid = NULL, previous_retire_at = NULL"
            " WHERE id = ?1 AND previous_secret IS NOT NULL",
            args, 1, &n);
  if (rc == 0 && n == 0) rc = plugin_by_id(s, plugin, &cur); /* 1 if there is no such plugin */
  if (rc == 0 && had_previous) *had_previous = n > 0;
  OPENSSL_cleanse(&cur, sizeof cur);
  return tx_end(s, rc);
}

/* ---- API tokens --------------------------------------------------------- */

/* SHA-256 fetched from the provider once. EVP_sha256() makes EVP_Digest
 * fetch the implementation on every call (OpenSSL 3: a locked lookup, ~40 %
 * of the digest's cost for a token), and every HTTP publish hashes its token. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void) { sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL); }

void hb_store_hash_token(const char *tok, size_t len, uint8_t out[HB_TOKEN_HASH_BYTES]) {
  unsigned int n = 0;
  pthread_once(&sha256_once, sha256_fetch);
  const EVP_MD *md = sha256_md ? sha256_md : EVP_sha256();
  if (EVP_Digest(tok, len, out, &n, md, NULL) != 1 || n != HB_TOKEN_HASH_BYTES)
    memset(out, 0, HB_TOKEN_HASH_BYTES); /* never matches: stored hashes are real digests */
}

#define TOKEN_COLS "id, organization_id, plugin_id, name, token_hash, created_at, revoked_at, expires_at"

static void read_token(const hb__row *r, void *out) {
  hb_token_row *t = out;
  uint8_t h[HB_TOKEN_HASH_BYTES];
  memset(t, 0, sizeof *t);
  col_uuid(r, 0, &t->id);
  col_uuid(r, 1, &t->org_id);
  col_uuid(r, 2, &t->plugin_id);
  col_str(r, 3, t->name, sizeof t->name);
  if (r->s->ops->col_blob(r, 4, h, sizeof h) == HB_TOKEN_HASH_BYTES) memcpy(t->hash, h, sizeof h);
  t->created_at = C_INT(r, 5);
  t->revoked_at = C_NULL(r, 6) ? 0 : C_INT(r, 6);
  t->expires_at = C_NULL(r, 7) ? 0 : C_INT(r, 7);
}

/* Insert a token row; 1 for a constraint, and also when the plugin is not
 * in the token's organization (nothing inserted). */
static int insert_token(hb_store *s, const hb_token_row *t) {
  idstr id = id_of(&t->id), org = id_of(&t->org_id), plugin = id_of(&t->plugin_id);
  int64_t n = 0;
  hb__val args[] = {hb__text(id.s),
                    hb__text(org.s),
                    hb__text(plugin.s),
                    hb__text(t->name),
                    hb__blob(t->hash, HB_TOKEN_HASH_BYTES),
                    hb__int(t->created_at),
                    hb__int(t->revoked_at),
                    hb__int(t->expires_at)};
  /* The SELECT ... WHERE EXISTS refuses a plugin of another organization:
   * a token must never speak for two tenants. */
  int rc = exec(s,
                "INSERT INTO api_tokens (" TOKEN_COLS ")"
                " SELECT ?1, ?2, ?3, ?4, ?5, ?6, NULLIF(?7, 0), NULLIF(?8, 0)"
                " WHERE EXISTS (SELECT 1 FROM plugins WHERE id = ?3 AND organization_id = ?2)",
                args, NARGS(args), &n);
  if (rc == 0 && n == 0) return 2;
  return rc;
}

int hb_store_token_create_with_expiry(hb_store *s, const hb_uuid *org, const hb_uuid *plugin, const char *name,
                                      int64_t expires_at, char *token_out, hb_token_row *out) {
  hb_token_row row;
  char tok[HB_MAX_API_TOKEN_BYTES + 1];
  int rc;
  if (expires_at < 0) return HB_STORE_ERROR;
  memset(&row, 0, sizeof row);
  hb_uuid_v4(&row.id);
  row.org_id = *org;
  row.plugin_id = *plugin;
  row.created_at = now_s();
  row.expires_at = expires_at;
  if (name && *name) {
    if (!valid_name(name)) {
      hb_warn("store: token name must be 1..%d bytes", HB_MAX_NAME_BYTES);
      return HB_STORE_ERROR;
    }
    snprintf(row.name, sizeof row.name, "%s", name);
  } else {
    /* Names are unique per plugin; an unnamed token gets one from its id. */
    idstr id = id_of(&row.id);
    snprintf(row.name, sizeof row.name, "token-%.8s", id.s);
  }
  if (random_secret("hbk_", HB_API_TOKEN_RANDOM_BYTES, tok, sizeof tok) != 0) {
    hb_error_log("store: no randomness for an API token");
    return HB_STORE_ERROR;
  }
  hb_store_hash_token(tok, strlen(tok), row.hash);
  if ((rc = tx_begin(s)) == 0) {
    rc = insert_token(s, &row);
    if (rc == 2) {
      hb_warn("store: token not created: the plugin is not in that organization");
      rc = HB_STORE_ERROR;
    }
    rc = tx_end(s, rc);
  }
  if (rc == 0) {
    if (token_out) memcpy(token_out, tok, strlen(tok) + 1);
    if (out) *out = row;
  }
  OPENSSL_cleanse(tok, sizeof tok);
  return rc;
}

int hb_store_token_create(hb_store *s, const hb_uuid *org, const hb_uuid *plugin, const char *name,
                          char *token_out, hb_token_row *out) {
  return hb_store_token_create_with_expiry(s, org, plugin, name, 0, token_out, out);
}

int hb_store_token_revoke(hb_store *s, const hb_uuid *id) {
  idstr ids = id_of(id);
  hb__val args[] = {hb__int(now_s()), hb__text(ids.s)};
  int64_t n = 0;
  int rc = tx_begin(s);
  if (rc != 0) return rc;
  /* COALESCE keeps the first revocation time: revoking twice is a no-op. */
  rc = exec(s, "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?1) WHERE id = ?2", args, 2, &n);
  if (rc == 0 && n == 0) rc = 1;
  return tx_end(s, rc);
}

int hb_store_token_list(hb_store *s, void (*cb)(const hb_token_row *, void *), void *ud) {
  return list(s, "SELECT " TOKEN_COLS " FROM api_tokens ORDER BY created_at, rowid", NULL, 0, read_token,
              sizeof(hb_token_row), (void (*)(const void *, void *))cb, ud);
}

/* ---- connection-token revocations ---------------------------------------- */

#define REVOCATION_COLS "plugin_id, user_id, revoked_before, created_at"

static void read_revocation(const hb__row *r, void *out) {
  hb_revocation_row *v = out;
  memset(v, 0, sizeof *v);
  col_uuid(r, 0, &v->plugin_id);
  col_str(r, 1, v->user_id, sizeof v->user_id);
  v->revoked_before = C_INT(r, 2);
  v->created_at = C_INT(r, 3);
}

static int find_revocation(hb_store *s, const hb_uuid *plugin, const char *user, hb_revocation_row *out) {
  idstr id = id_of(plugin);
  hb__val args[] = {hb__text(id.s), hb__text(user)};
  return find_by(s, "SELECT " REVOCATION_COLS " FROM conn_token_revocations WHERE plugin_id = ?1 AND user_id = ?2",
                 args, 2, read_revocation, out);
}

static int prune(hb_store *s, int64_t older_than, int64_t *n) {
  hb__val args[] = {hb__int(older_than)};
  return exec(s, "DELETE FROM conn_token_revocations WHERE revoked_before < ?1", args, 1, n);
}

int hb_store_revoke_user_tokens(hb_store *s, const hb_uuid *plugin, const char *user_id, int64_t before,
                                hb_revocation_row *out) {
  hb_plugin_row p;
  int64_t now = now_s();
  int rc;
  if (!valid_user_id(user_id)) {
    hb_warn("store: a user id is 1..%d bytes without control characters", HB_MAX_USER_ID_BYTES);
    return HB_STORE_ERROR;
  }
  if (before <= 0) return HB_STORE_ERROR;
  idstr id = id_of(plugin);
  hb__val args[] = {hb__text(id.s), hb__text(user_id), hb__int(before), hb__int(now)};
  if ((rc = tx_begin(s)) != 0) return rc;
  if ((rc = plugin_by_id(s, plugin, &p)) != 0) goto out;
  /* Pruned first, so that the row written below is never taken with them. */
  if ((rc = prune(s, now - HB_CONN_REVOCATION_KEEP_S, NULL)) != 0) goto out;
  /* Revoking again keeps the later time: a revocation never shrinks. */
  rc = exec(s,
            "INSERT INTO conn_token_revocations (" REVOCATION_COLS ") VALUES (?1, ?2, ?3, ?4)"
            " ON CONFLICT (plugin_id, user_id) DO UPDATE SET"
            " revoked_before = CASE WHEN excluded.revoked_before > conn_token_revocations.revoked_before"
            " THEN excluded.revoked_before ELSE conn_token_revocations.revoked_before END,"
            " created_at = excluded.created_at",
            args, NARGS(args), NULL);
  if (rc == 0 && out) rc = find_revocation(s, plugin, user_id, out);
out:
  OPENSSL_cleanse(&p, sizeof p);
  return tx_end(s, rc);
}

int hb_store_revocation_list(hb_store *s, const hb_uuid *plugin, void (*cb)(const hb_revocation_row *, void *),
                             void *ud) {
  idstr id = plugin ? id_of(plugin) : (idstr){{0}};
  hb__val args[] = {hb__text(id.s)};
  return list(s,
              plugin ? "SELECT " REVOCATION_COLS " FROM conn_token_revocations WHERE plugin_id = ?1"
                       " ORDER BY plugin_id, user_id"
                     : "SELECT " REVOCATION_COLS " FROM conn_token_revocations ORDER BY plugin_id, user_id",
              args, plugin ? 1 : 0, read_revocation, sizeof(hb_revocation_row), (void (*)(const void *, void *))cb,
              ud);
}

int hb_store_revocation_prune(hb_store *s, int64_t older_than, int64_t *pruned) {
  int64_t n = 0;
  int rc = tx_begin(s);
  if (rc != 0) return rc;
  rc = tx_end(s, prune(s, older_than, &n));
  if (pruned) *pruned = rc == 0 ? n : 0;
  return rc;
}

/* ---- import --------------------------------------------------------------- */

enum { K_ORGS, K_PLUGINS, K_TOKENS, K_REVOCATIONS };
static const char *const kind_names[] = {"organizations", "plugins", "api_tokens", "revocations"};

static int conflict(hb_store_import_result *res, int kind, size_t index, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int conflict(hb_store_import_result *res, int kind, size_t index, const char *field, const char *fmt, ...) {
  va_list ap;
  res->kind = kind_names[kind];
  res->index = index;
  res->field = field;
  va_start(ap, fmt);
  vsnprintf(res->why, sizeof res->why, fmt, ap);
  va_end(ap);
  return 1;
}

static int import_org(hb_store *s, const hb_org_row *o, size_t i, hb_store_import_result *res) {
  hb_org_row cur;
  idstr id = id_of(&o->id);
  hb__val by_id[] = {hb__text(id.s)}, by_name[] = {hb__text(o->name)};
  int rc = find_by(s, "SELECT " ORG_COLS " FROM organizations WHERE id = ?1", by_id, 1, read_org, &cur);
  if (rc == 0) {
    if (strcmp(cur.name, o->name) != 0 || cur.created_at != o->created_at)
      return conflict(res, K_ORGS, i, "id", "organization %s exists with other content (name '%s')", id.s, cur.name);
    res->unchanged[K_ORGS]++;
    return 0;
  }
  if (rc != 1) return rc;
  rc = find_by(s, "SELECT " ORG_COLS " FROM organizations WHERE name = ?1", by_name, 1, read_org, &cur);
  if (rc == 0) {
    idstr other = id_of(&cur.id);
    return conflict(res, K_ORGS, i, "name", "an organization named '%s' exists with another id (%s)", o->name,
                    other.s);
  }
  if (rc != 1) return rc;
  rc = insert_org(s, o);
  if (rc == 1) return conflict(res, K_ORGS, i, "id", "conflicts with an existing organization");
  if (rc == 0) res->created[K_ORGS]++;
  return rc;
}

static bool same_plugin(const hb_plugin_row *a, const hb_plugin_row *b, bool secrets) {
  if (!hb_uuid_eq(&a->org_id, &b->org_id) || strcmp(a->name, b->name) || strcmp(a->allowed_origins, b->allowed_origins) ||
      a->created_at != b->created_at)
    return false;
  if (!secrets) return true;
  return !strcmp(a->signing_secret, b->signing_secret) && !strcmp(a->signing_kid, b->signing_kid) &&
         a->secret_created_at == b->secret_created_at && !strcmp(a->previous_secret, b->previous_secret) &&
         !strcmp(a->previous_kid, b->previous_kid) &&
         (a->previous_secret[0] ? a->previous_retire_at == b->previous_retire_at : true);
}

static int import_plugin(hb_store *s, const hb_plugin_row *p, size_t i, hb_store_import_result *res) {
  hb_plugin_row cur, fresh;
  idstr id = id_of(&p->id), org = id_of(&p->org_id);
  bool secrets = p->signing_secret[0] != '\0';
  int rc = plugin_by_id(s, &p->id, &cur);
  if (rc == 0) {
    bool same = same_plugin(&cur, p, secrets);
    OPENSSL_cleanse(&cur, sizeof cur);
    if (!same)
      return conflict(res, K_PLUGINS, i, "id", "plugin %s exists with other content%s", id.s,
                      secrets ? " (or other signing secrets)" : "");
    res->unchanged[K_PLUGINS]++;
    return 0;
  }
  if (rc != 1) return rc;
  hb__val by_name[] = {hb__text(p->name), hb__text(org.s)};
  rc = find_by(s, "SELECT " PLUGIN_COLS " FROM plugins WHERE name = ?1 AND organization_id = ?2", by_name, 2,
               read_plugin, &cur);
  OPENSSL_cleanse(&cur, sizeof cur);
  if (rc == 0)
    return conflict(res, K_PLUGINS, i, "name", "a plugin named '%s' exists in that organization with another id",
                    p->name);
  if (rc != 1) return rc;
  const hb_plugin_row *ins = p;
  if (!secrets) {
    /* Exported without its secrets: it gets new ones here, so tokens signed
     * with the old secret will not verify against this store. */
    fresh = *p;
    fresh.previous_secret[0] = fresh.previous_kid[0] = '\0';
    fresh.previous_retire_at = 0;
    fresh.secret_created_at = now_s();
    if (new_signing_key(&fresh, NULL) != 0) return HB_STORE_ERROR;
    ins = &fresh;
  }
  rc = insert_plugin(s, ins);
  if (ins == &fresh) OPENSSL_cleanse(&fresh, sizeof fresh);
  if (rc == 1) return conflict(res, K_PLUGINS, i, "id", "conflicts with an existing plugin");
  if (rc == 0) {
    res->created[K_PLUGINS]++;
    if (!secrets) res->new_secrets++;
  }
  return rc;
}

static int import_token(hb_store *s, const hb_token_row *t, size_t i, hb_store_import_result *res) {
  hb_token_row cur;
  idstr id = id_of(&t->id), plugin = id_of(&t->plugin_id);
  hb__val by_id[] = {hb__text(id.s)};
  int rc = find_by(s, "SELECT " TOKEN_COLS " FROM api_tokens WHERE id = ?1", by_id, 1, read_token, &cur);
  if (rc == 0) {
    if (!hb_uuid_eq(&cur.org_id, &t->org_id) || !hb_uuid_eq(&cur.plugin_id, &t->plugin_id) ||
        strcmp(cur.name, t->name) || CRYPTO_memcmp(cur.hash, t->hash, HB_TOKEN_HASH_BYTES) ||
        cur.created_at != t->created_at || cur.revoked_at != t->revoked_at || cur.expires_at != t->expires_at)
      return conflict(res, K_TOKENS, i, "id", "API token %s exists with other content", id.s);
    res->unchanged[K_TOKENS]++;
    return 0;
  }
  if (rc != 1) return rc;
  hb__val by_hash[] = {hb__blob(t->hash, HB_TOKEN_HASH_BYTES)};
  rc = find_by(s, "SELECT " TOKEN_COLS " FROM api_tokens WHERE token_hash = ?1", by_hash, 1, read_token, &cur);
  if (rc == 0) return conflict(res, K_TOKENS, i, "token_hash", "an API token with this hash exists with another id");
  if (rc != 1) return rc;
  hb__val by_name[] = {hb__text(plugin.s), hb__text(t->name)};
  rc = find_by(s, "SELECT " TOKEN_COLS " FROM api_tokens WHERE plugin_id = ?1 AND name = ?2", by_name, 2, read_token,
               &cur);
  if (rc == 0)
    return conflict(res, K_TOKENS, i, "name", "the plugin has an API token named '%s' with another id", t->name);
  if (rc != 1) return rc;
  rc = insert_token(s, t);
  if (rc == 2) return conflict(res, K_TOKENS, i, "plugin_id", "the plugin is not in the token's organization");
  if (rc == 1) return conflict(res, K_TOKENS, i, "id", "conflicts with an existing API token");
  if (rc == 0) res->created[K_TOKENS]++;
  return rc;
}

static int import_revocation(hb_store *s, const hb_revocation_row *v, size_t i, hb_store_import_result *res) {
  hb_revocation_row cur;
  int rc = find_revocation(s, &v->plugin_id, v->user_id, &cur);
  if (rc == 0) {
    if (cur.revoked_before != v->revoked_before || cur.created_at != v->created_at)
      return conflict(res, K_REVOCATIONS, i, "revoked_before", "a revocation for this plugin and user exists with other times");
    res->unchanged[K_REVOCATIONS]++;
    return 0;
  }
  if (rc != 1) return rc;
  idstr id = id_of(&v->plugin_id);
  hb__val args[] = {hb__text(id.s), hb__text(v->user_id), hb__int(v->revoked_before), hb__int(v->created_at)};
  rc = exec(s, "INSERT INTO conn_token_revocations (" REVOCATION_COLS ") VALUES (?1, ?2, ?3, ?4)", args,
            NARGS(args), NULL);
  if (rc == 1) return conflict(res, K_REVOCATIONS, i, "plugin_id", "conflicts with the store (no such plugin?)");
  if (rc == 0) res->created[K_REVOCATIONS]++;
  return rc;
}

int hb_store_import(hb_store *s, const hb_store_import_set *set, hb_store_import_result *res) {
  int rc;
  memset(res, 0, sizeof *res);
  if ((rc = tx_begin(s)) != 0) return rc;
  for (size_t i = 0; rc == 0 && i < set->norgs; i++) rc = import_org(s, &set->orgs[i], i, res);
  for (size_t i = 0; rc == 0 && i < set->nplugins; i++) rc = import_plugin(s, &set->plugins[i], i, res);
  for (size_t i = 0; rc == 0 && i < set->ntokens; i++) rc = import_token(s, &set->tokens[i], i, res);
  for (size_t i = 0; rc == 0 && i < set->nrevocations; i++) rc = import_revocation(s, &set->revocations[i], i, res);
  rc = tx_end(s, rc);
  if (rc != 0) {
    /* Nothing was written: the counts describe a transaction rolled back. */
    memset(res->created, 0, sizeof res->created);
    memset(res->unchanged, 0, sizeof res->unchanged);
    res->new_secrets = 0;
  }
  return rc;
}
