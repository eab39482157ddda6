/*
 * main.c - the `hubbub` binary: `serve`, and the admin commands that manage
 * organizations, plugins, API tokens and connection tokens in the store.
 *
 * Admin commands talk to the store directly (the SQLite file, or the
 * PostgreSQL database every node shares), so they work whether or not a
 * server is running; a running server picks changes up by itself
 * (hb_auth_reload). The store location is --store, else --data, else the
 * configuration's data_dir (HUBBUB_DATA_DIR / HUBBUB_DATA, the config file),
 * else "data". Only `serve` and `init` create a store.
 *
 * Output contract (test/unit/cli_smoke.sh and cli_store.sh check it):
 *   - human text on stdout, errors on stderr; exit 0 on success, 1 for a
 *     failure, 2 for a usage error, 3 when the store is unavailable
 *     (PostgreSQL down or unreachable, a lock held too long: try again);
 *   - with --json, stdout carries exactly one JSON document whatever happens:
 *     the result, or {"error":{"code","message"}} with the same exit codes
 *     (the human error line still goes to stderr);
 *   - `--help`/`-h` after any command, and `hubbub help COMMAND`, print that
 *     command's usage on stdout and exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hubbub/alloc.h"
#include "hubbub/config.h"
#include "hubbub/dump.h"
#include "hubbub/field.h"
#include "hubbub/json.h"
#include "hubbub/jwt.h"
#include "hubbub/limits.h"
#include "hubbub/log.h"
#include "hubbub/scope.h"
#include "hubbub/server.h"
#include "hubbub/store.h"
#include "hubbub/utf8.h"
#include "hubbub/uuid.h"

#ifndef HB_VERSION
#define HB_VERSION "0.1.0"
#endif

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define EXIT_UNAVAILABLE 3
#define MAX_ARGS 32
#define MAX_MESSAGE_BYTES 1024

/* Stable codes of {"error":{"code"}} with --json. */
#define E_USAGE "usage"                 /* exit 2: the command line is wrong */
#define E_NOT_FOUND "not_found"         /* an organization, plugin or token */
#define E_ALREADY_EXISTS "already_exists"
#define E_CONFIG "invalid_config"       /* the config file or a HUBBUB_* variable */
#define E_STORE "store_error"           /* the store cannot be opened, read or written */
#define E_UNAVAILABLE "unavailable"     /* exit 3: the store cannot be reached now; try again */
#define E_IMPORT "import_refused"       /* an import document that is invalid or conflicts */
#define E_IO "io_error"                 /* a file to read or write (export --out, import FILE) */
#define E_INTERNAL "internal"

extern char **environ;

/* ---- the commands ------------------------------------------------------- */

typedef struct args args;
typedef struct command command;

/* Each command: its words, what it takes, and its help. */
struct command {
  const char *group, *verb; /* verb NULL: a one-word command */
  const char *options;      /* options taking a value, space separated; --json and --help always */
  const char *flags;        /* options taking no value (--yes...), space separated */
  const char *required;     /* required options, space separated */
  int npos;                 /* exact number of positional arguments */
  const char *posname;      /* what the positional argument is */
  bool store;               /* opens the store (and so takes --store, --data and --config) */
  int (*run)(const command *, const args *, hb_store *);
  const char *synopsis;     /* after "hubbub " */
  const char *help;         /* what it does, and its options */
};

typedef struct {
  char name[32];
  const char *value;
} opt;

struct args {
  const char *pos[MAX_ARGS];
  int npos;
  opt opts[MAX_ARGS];
  int nopts;
  const char *flags[8]; /* the command's value-less options given (--yes...) */
  int nflags;
  bool json, help;
};

/* --json anywhere on the command line: every outcome is one JSON document. */
static bool g_json;
/* The command being run, for "run `hubbub help ...`" in usage errors. */
static const char *g_cmd = NULL;

/* ---- errors ------------------------------------------------------------- */

/*
 * A JSON string of `s`, which may not be UTF-8 (an echo of the command line,
 * a name stored before names had to be): each byte that does not start a
 * well-formed sequence becomes '?', so a document is always printed.
 */
static json_t *jtext(const char *s) {
  size_t n = strlen(s);
  if (hb_utf8_valid((const unsigned char *)s, n)) return json_stringn(s, n);
  char *copy = strdup(s);
  if (!copy) return json_string("?");
  for (size_t i = 0; i < n;) {
    size_t k = (unsigned char)copy[i] < 0x80 ? 1 : hb_utf8_seq_len((unsigned char *)copy + i, n - i);
    if (k == 0) copy[i++] = '?';
    else i += k;
  }
  json_t *j = json_stringn(copy, n);
  free(copy);
  return j;
}

/* Print the message on stderr and, with --json, the error document on
 * stdout. Returns `exit_code`. */
static int report(int exit_code, const char *code, const char *fmt, va_list ap) {
  char msg[MAX_MESSAGE_BYTES];
  vsnprintf(msg, sizeof msg, fmt, ap);
  fprintf(stderr, "hubbub: %s\n", msg);
  if (exit_code == EXIT_USAGE) fprintf(stderr, "(run `hubbub help%s%s` for usage)\n", g_cmd ? " " : "", g_cmd ? g_cmd : "");
  if (g_json) {
    json_t *o = json_pack("{s:{s:s,s:o}}", "error", "code", code, "message", jtext(msg));
    if (o) json_dumpf(o, stdout, JSON_COMPACT | JSON_ENSURE_ASCII);
    fputc('\n', stdout);
    fflush(stdout);
    json_decref(o);
  }
  return exit_code;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = report(EXIT_USAGE, E_USAGE, fmt, ap);
  va_end(ap);
  return rc;
}

static int fail_code(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail_code(const char *code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = report(EXIT_FAIL, code, fmt, ap);
  va_end(ap);
  return rc;
}

static int report_code(int exit_code, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int report_code(int exit_code, const char *code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = report(exit_code, code, fmt, ap);
  va_end(ap);
  return rc;
}

/* ---- argument parsing --------------------------------------------------- */

/* Whole-word match of `name` (n bytes) in a space-separated list. */
static bool in_list(const char *list, const char *name, size_t n) {
  for (const char *p = list; p && *p;) {
    const char *q = strchr(p, ' ');
    size_t len = q ? (size_t)(q - p) : strlen(p);
    if (len == n && strncmp(p, name, n) == 0) return true;
    p = q ? q + 1 : p + len;
  }
  return false;
}

static bool is_help(const char *s) { return !strcmp(s, "--help") || !strcmp(s, "-h"); }

/* The flags that never take a value, and are never taken as one. */
static bool is_flag(const char *s) { return is_help(s) || !strcmp(s, "--json"); }

/*
 * Find --json and --help the way parse_args will read the line (the word
 * after an option that takes a value is that value, unless it is one of
 * these flags), so that errors found before the command is known are
 * already in the right form.
 */
static void scan_flags(int argc, char **argv, bool *json, bool *help) {
  *json = *help = false;
  for (int i = 0; i < argc; i++) {
    const char *s = argv[i];
    if (!strcmp(s, "--")) break;
    if (!strcmp(s, "--json")) *json = true;
    else if (is_help(s)) *help = true;
    else if (!strncmp(s, "--", 2) && s[2] && !strchr(s, '=') && i + 1 < argc && !is_flag(argv[i + 1]))
      i++; /* its value */
  }
}

static const char *get_opt(const args *a, const char *name) {
  for (int k = 0; k < a->nopts; k++)
    if (strcmp(a->opts[k].name, name) == 0) return a->opts[k].value;
  return NULL;
}

static bool has_flag(const args *a, const char *name) {
  for (int k = 0; k < a->nflags; k++)
    if (strcmp(a->flags[k], name) == 0) return true;
  return false;
}

/*
 * Split argv into positional words and --name VALUE / --name=VALUE options
 * of `cmd`. Returns 0, or EXIT_USAGE after printing why. --help wins over
 * any mistake, so that a user who got the line wrong can still ask.
 */
static int parse_args(const command *cmd, int argc, char **argv, args *a) {
  char first_error[MAX_MESSAGE_BYTES] = "";
#define BAD(...)                                                                                     \
  do {                                                                                               \
    if (!first_error[0]) snprintf(first_error, sizeof first_error, __VA_ARGS__);                     \
  } while (0)
  memset(a, 0, sizeof *a);
  for (int i = 0; i < argc; i++) {
    const char *s = argv[i];
    if (strcmp(s, "--") == 0) { /* everything after is positional */
      for (i++; i < argc; i++) {
        if (a->npos == MAX_ARGS) BAD("too many arguments");
        else a->pos[a->npos++] = argv[i];
      }
      break;
    }
    if (is_help(s)) {
      a->help = true;
      continue;
    }
    if (strncmp(s, "--", 2) != 0 || s[2] == '\0') {
      if (a->npos == MAX_ARGS) BAD("too many arguments");
      else a->pos[a->npos++] = s;
      continue;
    }
    const char *eq = strchr(s + 2, '=');
    size_t nlen = eq ? (size_t)(eq - s - 2) : strlen(s + 2);
    if (!strcmp(s, "--json")) {
      a->json = true;
      continue;
    }
    if (in_list(cmd->flags, s + 2, nlen)) {
      bool dup = false;
      for (int k = 0; k < a->nflags; k++) dup |= !strcmp(a->flags[k], s + 2);
      if (eq) BAD("option '--%.*s' takes no value", (int)nlen, s + 2);
      else if (dup) BAD("option '%s' given twice", s);
      else if (a->nflags == (int)(sizeof a->flags / sizeof a->flags[0])) BAD("too many options");
      else a->flags[a->nflags++] = s + 2;
      continue;
    }
    bool ok = nlen < sizeof a->opts[0].name &&
              (in_list(cmd->options, s + 2, nlen) ||
               (cmd->store && (in_list("store data config", s + 2, nlen))));
    const char *value = NULL;
    if (eq) value = eq + 1;
    else if (i + 1 < argc && !is_flag(argv[i + 1])) value = argv[++i];
    if (!ok) {
      BAD("unknown option '--%.*s'", (int)nlen, s + 2);
      continue;
    }
    if (!value) {
      BAD("option '--%.*s' needs a value", (int)nlen, s + 2);
      continue;
    }
    bool dup = false;
    for (int k = 0; k < a->nopts; k++)
      if (strlen(a->opts[k].name) == nlen && !strncmp(a->opts[k].name, s + 2, nlen)) dup = true;
    if (dup) {
      BAD("option '--%.*s' given twice", (int)nlen, s + 2);
      continue;
    }
    if (a->nopts == MAX_ARGS) {
      BAD("too many options");
      continue;
    }
    memcpy(a->opts[a->nopts].name, s + 2, nlen);
    a->opts[a->nopts].name[nlen] = '\0';
    a->opts[a->nopts++].value = value;
  }
  /* One store location: --store names any kind, --data a directory. */
  const char *store = get_opt(a, "store"), *data = get_opt(a, "data");
  if (store && data) BAD("give --data DIR or --store LOCATION, not both");
  if (store && !*store) BAD("--store needs a location (a directory, sqlite:FILE or postgresql://...)");
  if (store && strlen(store) > HB_STORE_MAX_LOCATION_BYTES)
    BAD("--store is longer than %d bytes", HB_STORE_MAX_LOCATION_BYTES);
  if (data && !*data) BAD("--data needs a directory");
#undef BAD
  if (a->help || !first_error[0]) return 0;
  return usage_error("%s", first_error);
}


/* ---- output ------------------------------------------------------------- */

/* Print one JSON document on stdout and release it. */
static int emit(json_t *o) {
  int rc = 0;
  if (!o || json_dumpf(o, stdout, JSON_COMPACT | JSON_ENSURE_ASCII) != 0) rc = -1;
  fputc('\n', stdout);
  json_decref(o);
  if (fflush(stdout) != 0) rc = -1;
  if (rc == 0) return 0;
  fprintf(stderr, "hubbub: cannot write the output\n"); /* stdout is what failed */
  return EXIT_FAIL;
}

static json_t *juuid(const hb_uuid *u) {
  char buf[HB_UUID_STR_BYTES];
  hb_uuid_format(u, buf);
  return json_string(buf);
}

static const char *uuid_str(const hb_uuid *u, char buf[HB_UUID_STR_BYTES]) {
  hb_uuid_format(u, buf);
  return buf;
}

static const char *time_str(int64_t t, char *buf, size_t len) {
  time_t tt = (time_t)t;
  struct tm tm;
  if (!gmtime_r(&tt, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(buf, len, "%lld", (long long)t);
  return buf;
}

static const char *jstr(json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : "";
}

/*
 * Print `rows` (an array of objects) as a table: one column per key in
 * `keys`, headed by the matching word of `heads`, as wide as its widest
 * cell. The last column is not padded. Integer cells are Unix times.
 */
static void print_table(json_t *rows, const char *const *keys, const char *const *heads, int ncols) {
  size_t width[8] = {0};
  char cell[64];
  for (int c = 0; c < ncols; c++) width[c] = strlen(heads[c]);
  size_t i;
  json_t *r;
  json_array_foreach(rows, i, r) {
    for (int c = 0; c < ncols; c++) {
      json_t *v = json_object_get(r, keys[c]);
      size_t n = json_is_string(v) ? json_string_length(v) : json_is_integer(v) ? 20 : 1;
      if (n > width[c]) width[c] = n;
    }
  }
  for (int c = 0; c < ncols; c++) printf("%-*s%s", c + 1 < ncols ? (int)width[c] : 0, heads[c], c + 1 < ncols ? "  " : "\n");
  json_array_foreach(rows, i, r) {
    for (int c = 0; c < ncols; c++) {
      json_t *v = json_object_get(r, keys[c]);
      const char *text = json_is_string(v)    ? json_string_value(v)
                         : json_is_integer(v) ? time_str(json_integer_value(v), cell, sizeof cell)
                                              : "-";
      if (json_is_string(v) && !*text) text = "-";
      printf("%-*s%s", c + 1 < ncols ? (int)width[c] : 0, text, c + 1 < ncols ? "  " : "\n");
    }
  }
}

/* ---- configuration ------------------------------------------------------ */

/* Warn about HUBBUB_* variables that look like a misspelt setting. */
static void warn_unknown_env(void) {
  for (char **e = environ; *e; e++) {
    if (strncmp(*e, "HUBBUB_", 7) != 0) continue;
    char name[128], hint[64];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(*e, "="), *e);
    if (hb_config_env_suggest(name, hint, sizeof hint))
      fprintf(stderr, "hubbub: warning: %s is not a hubbub setting (did you mean %s?); ignored\n", name, hint);
  }
}

/*
 * Defaults, then the config file (--config, else HUBBUB_CONFIG), then the
 * HUBBUB_* environment; the caller applies its flags last. 0, or an exit
 * code after printing why.
 */
static int load_config(const args *a, hb_config *cfg) {
  char err[512];
  const char *file = get_opt(a, "config");
  const char *from = "--config";
  if (!file && (file = getenv(HB_CONFIG_ENV_FILE)) != NULL) from = HB_CONFIG_ENV_FILE;
  hb_config_defaults(cfg);
  warn_unknown_env();
  if (file && !*file) return usage_error("%s is empty: give the config file's path", from);
  if (file && hb_config_load_file(cfg, file, err, sizeof err) != 0)
    return fail_code(E_CONFIG, "bad config file (%s): %s", from, err);
  if (hb_config_load_env(cfg, err, sizeof err) != 0) return fail_code(E_CONFIG, "bad environment: %s", err);
  return 0;
}

/*
 * The admin commands' store: --store, else --data, else the configuration's
 * data_dir (which the environment may set). Exit 3 when it cannot be
 * reached now (PostgreSQL down), 1 when it is wrong.
 */
static int open_store(const args *a, hb_store **s) {
  hb_config cfg;
  char err[512], where[512];
  const char *loc = get_opt(a, "store");
  int rc;
  if (!loc) loc = get_opt(a, "data");
  if ((rc = load_config(a, &cfg)) != 0) return rc;
  if (!loc) loc = cfg.data_dir;
  /* Never created here (`hubbub init` and `serve` do): a mistyped --data or
   * --store says so instead of making an empty store. */
  rc = hb_store_open_existing(s, loc, err, sizeof err);
  if (rc == 0) return 0;
  hb_store_location_describe(loc, where, sizeof where); /* never the password */
  if (rc == HB_STORE_UNAVAILABLE)
    return report_code(EXIT_UNAVAILABLE, E_UNAVAILABLE, "cannot open the store at '%s': %s", where, err);
  return fail_code(E_STORE, "cannot open the store at '%s': %s", where, err);
}

/* A store call that failed: "unavailable" (exit 3) is worth a retry. */
static int store_fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int store_fail(int rc, const char *fmt, ...) {
  char msg[MAX_MESSAGE_BYTES];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (rc == HB_STORE_UNAVAILABLE)
    return report_code(EXIT_UNAVAILABLE, E_UNAVAILABLE,
                       "%s: the store is unavailable (PostgreSQL down or unreachable?); try again", msg);
  return fail_code(E_STORE, "%s", msg);
}

/* ---- shared lookups ----------------------------------------------------- */

/* The store's one rule for names (hb_store_name_problem), as a usage error. */
static int check_name(const char *what, const char *name) {
  const char *problem = hb_store_name_problem(name);
  return problem ? usage_error("%s name %s", what, problem) : 0;
}

static int find_org(hb_store *s, const char *key, hb_org_row *org) {
  int rc = hb_store_org_find(s, key, org);
  if (rc == 1) return fail_code(E_NOT_FOUND, "org '%s' not found", key);
  if (rc != 0) return store_fail(rc, "cannot read organizations");
  return 0;
}

/* A plugin row's secrets, wiped as soon as a command no longer needs them. */
static void cleanse_secrets(hb_plugin_row *p) {
  OPENSSL_cleanse(p->signing_secret, sizeof p->signing_secret);
  OPENSSL_cleanse(p->previous_secret, sizeof p->previous_secret);
}

/* The plugin, without its secrets (connection-token create reads them itself). */
static int find_plugin(hb_store *s, const hb_org_row *org, const char *key, hb_plugin_row *p) {
  int rc = hb_store_plugin_find(s, &org->id, key, p);
  cleanse_secrets(p);
  if (rc == 1) return fail_code(E_NOT_FOUND, "plugin '%s' not found in org '%s'", key, org->name);
  if (rc != 0) return store_fail(rc, "cannot read plugins");
  return 0;
}

/* A whole number of seconds in [min, max]. */
static int parse_seconds(const char *what, const char *v, long long min, long long max, long long *out) {
  char *end;
  errno = 0;
  long long n = strtoll(v, &end, 10);
  if (errno || end == v || *end || n < min || n > max)
    return usage_error("%s must be %lld to %lld seconds", what, min, max);
  *out = n;
  return 0;
}

/* The rule of POST /api/v1/connection_tokens' user_id: 1 to
 * HB_MAX_USER_ID_BYTES of UTF-8 without control characters. */
static bool user_id_valid(const char *user) {
  size_t n = strlen(user);
  for (const char *u = user; *u; u++)
    if ((unsigned char)*u < 0x20 || *u == 0x7f) return false;
  return n > 0 && n <= HB_MAX_USER_ID_BYTES && hb_utf8_valid((const unsigned char *)user, n);
}

/* id -> name maps of every organization and plugin, for listings. */
static void org_name_cb(const hb_org_row *r, void *ud) {
  char id[HB_UUID_STR_BYTES];
  json_object_set_new(ud, uuid_str(&r->id, id), jtext(r->name));
}

static void plugin_name_cb(const hb_plugin_row *r, void *ud) {
  char id[HB_UUID_STR_BYTES];
  json_object_set_new(ud, uuid_str(&r->id, id), jtext(r->name));
}

/* The name (a JSON string, borrowed) of an id; "?" for a row deleted between the two reads. */
static json_t *name_of(json_t *names, const char *id) {
  static json_t *unknown;
  json_t *n = json_object_get(names, id);
  if (n) return n;
  if (!unknown) unknown = json_string("?");
  return unknown;
}

/* ---- org ---------------------------------------------------------------- */

static int cmd_org_create(const command *cmd, const args *a, hb_store *s) {
  hb_org_row org;
  char id[HB_UUID_STR_BYTES];
  int rc = hb_store_org_create(s, a->pos[0], &org);
  if (rc == 1) return fail_code(E_ALREADY_EXISTS, "organization name '%s' already exists", a->pos[0]);
  if (rc != 0) return store_fail(rc, "cannot create organization '%s'", a->pos[0]);
  if (a->json) return emit(json_pack("{s:o,s:o}", "id", juuid(&org.id), "name", jtext(org.name)));
  printf("Created organization '%s'\n  id: %s\n", org.name, uuid_str(&org.id, id));
  return 0;
}

static void org_row_json(const hb_org_row *r, void *ud) {
  json_array_append_new(ud, json_pack("{s:o,s:o,s:I}", "id", juuid(&r->id), "name", jtext(r->name),
                                      "created_at", (json_int_t)r->created_at));
}

static int cmd_org_list(const command *cmd, const args *a, hb_store *s) {
  json_t *arr = json_array();
  int rc = hb_store_org_list(s, org_row_json, arr);
  if (rc != 0) {
    json_decref(arr);
    return store_fail(rc, "cannot list organizations");
  }
  if (a->json) return emit(json_pack("{s:o}", "organizations", arr));
  if (json_array_size(arr) == 0) {
    printf("No organizations yet: hubbub org create NAME\n");
  } else {
    static const char *const keys[] = {"id", "created_at", "name"}, *const heads[] = {"ID", "CREATED", "NAME"};
    print_table(arr, keys, heads, 3);
  }
  json_decref(arr);
  return 0;
}

/* Deleting cannot be undone: without --yes, say what would go and stop (exit 2). */
static int need_yes(const args *a, const char *what) {
  if (has_flag(a, "yes")) return 0;
  return usage_error("%s: add --yes to confirm (this cannot be undone)", what);
}

static int cmd_org_delete(const command *cmd, const args *a, hb_store *s) {
  hb_org_row org;
  char id[HB_UUID_STR_BYTES], what[512];
  int rc;
  if ((rc = find_org(s, a->pos[0], &org)) != 0) return rc;
  snprintf(what, sizeof what, "org delete would delete organization '%s' with all its plugins and API tokens",
           org.name);
  if ((rc = need_yes(a, what)) != 0) return rc;
  rc = hb_store_org_delete(s, &org.id);
  if (rc == 1) return fail_code(E_NOT_FOUND, "org '%s' not found", a->pos[0]);
  if (rc != 0) return store_fail(rc, "cannot delete organization '%s'", org.name);
  if (a->json) return emit(json_pack("{s:o,s:o,s:b}", "id", juuid(&org.id), "name", jtext(org.name), "deleted", 1));
  printf("Deleted organization '%s' (%s) with its plugins, API tokens and revocations.\n"
         "Running servers refuse their tokens and close their connections within a second.\n",
         org.name, uuid_str(&org.id, id));
  return 0;
}

/* ---- plugin ------------------------------------------------------------- */

/* Origins are exact "scheme://host[:port]" values, space separated. */
static int check_origins(const char *list) {
  for (const char *p = list; *p;) {
    while (*p == ' ') p++;
    if (!*p) break;
    const char *q = p;
    while (*q && *q != ' ') q++;
    size_t n = (size_t)(q - p);
    bool scheme = (n > 7 && strncmp(p, "http://", 7) == 0) || (n > 8 && strncmp(p, "https://", 8) == 0);
    const char *host = scheme ? strstr(p, "://") + 3 : NULL;
    if (!scheme || memchr(host, '/', (size_t)(q - host)))
      return usage_error("origin '%.*s' must look like https://app.example.com (no path, no trailing slash)",
                         (int)n, p);
    /* RFC 6454 6.2: an origin's serialization is ASCII (punycode hosts). */
    for (const char *c = p; c < q; c++)
      if ((unsigned char)*c < 0x21 || (unsigned char)*c >= 0x7f)
        return usage_error("origin '%.*s' must be printable ASCII (an international domain in its xn-- form)", (int)n, p);
    p = q;
  }
  return 0;
}

static int cmd_plugin_create(const command *cmd, const args *a, hb_store *s) {
  hb_org_row org;
  hb_plugin_row p;
  char id[HB_UUID_STR_BYTES], oid[HB_UUID_STR_BYTES];
  const char *origins = get_opt(a, "origins");
  int rc;
  if (origins && strlen(origins) >= sizeof p.allowed_origins)
    return usage_error("--origins is too long (at most %zu bytes)", sizeof p.allowed_origins - 1);
  if (origins && check_origins(origins) != 0) return EXIT_USAGE;
  if ((rc = find_org(s, get_opt(a, "org"), &org)) != 0) return rc;
  /* The plugin and its allowlist in one transaction: never a plugin that
   * accepts any Origin because the second half failed. */
  rc = hb_store_plugin_create_with_origins(s, &org.id, a->pos[0], origins, &p);
  if (rc == 1) return fail_code(E_ALREADY_EXISTS, "plugin name '%s' already exists in org '%s'", a->pos[0], org.name);
  if (rc != 0) return store_fail(rc, "cannot create plugin '%s'", a->pos[0]);
  if (a->json) {
    rc = emit(json_pack("{s:o,s:o,s:o,s:o,s:s,s:s,s:s}", "id", juuid(&p.id), "name", jtext(p.name),
                        "organization_id", juuid(&p.org_id), "organization_name", jtext(org.name),
                        "allowed_origins", origins ? origins : "", "signing_secret", p.signing_secret,
                        "signing_kid", p.signing_kid));
  } else {
    printf("Created plugin '%s' in organization '%s'\n"
           "  id:              %s\n"
           "  organization_id: %s\n"
           "  allowed origins: %s\n"
           "  signing secret:  %s\n"
           "  kid:             %s\n"
           "\n"
           "The signing secret is shown once: store it now. Your backend signs\n"
           "connection tokens (HS256 JWTs) with it, with the kid in their header;\n"
           "see docs/protocol.md.\n",
           p.name, org.name, uuid_str(&p.id, id), uuid_str(&p.org_id, oid),
           origins && *origins ? origins : "any", p.signing_secret, p.signing_kid);
    rc = 0;
  }
  cleanse_secrets(&p);
  return rc;
}

/* Replace a plugin's Origin allowlist ("" = any Origin). */
static int cmd_plugin_update(const command *cmd, const args *a, hb_store *s) {
  hb_org_row org;
  hb_plugin_row p;
  char id[HB_UUID_STR_BYTES];
  const char *origins = get_opt(a, "origins");
  int rc;
  if (strlen(origins) >= sizeof p.allowed_origins)
    return usage_error("--origins is too long (at most %zu bytes)", sizeof p.allowed_origins - 1);
  if (check_origins(origins) != 0) return EXIT_USAGE;
  if ((rc = find_org(s, get_opt(a, "org"), &org)) != 0) return rc;
  if ((rc = find_plugin(s, &org, a->pos[0], &p)) != 0) return rc;
  rc = hb_store_plugin_set_origins(s, &p.id, origins);
  if (rc == 1) return fail_code(E_NOT_FOUND, "plugin '%s' not found in org '%s'", a->pos[0], org.name);
  if (rc != 0) return store_fail(rc, "cannot update plugin '%s'", p.name);
  if (a->json)
    return emit(json_pack("{s:o,s:o,s:o,s:o,s:s}", "id", juuid(&p.id), "name", jtext(p.name), "organization_id",
                          juuid(&p.org_id), "organization_name", jtext(org.name), "allowed_origins", origins));
  printf("Plugin '%s' (%s) now accepts WebSocket connections from %s\n", p.name, uuid_str(&p.id, id),
         *origins ? origins : "any origin");
  return 0;
}

static void plugin_row_json(const hb_plugin_row *r, void *ud) {
  /* Never a signing secret: it is shown once, at creation or rotation. Its
   * key id is no secret. */
  json_t *o = json_pack("{s:o,s:o,s:o,s:o,s:I,s:s}", "id", juuid(&r->id), "name", jtext(r->name), "organization_id",
                        juuid(&r->org_id), "allowed_origins", jtext(r->allowed_origins), "created_at",
                        (json_int_t)r->created_at, "signing_kid", r->signing_kid);
  bool prev = r->previous_secret[0] != '\0';
  json_object_set_new(o, "previous_kid", prev ? json_string(r->previous_kid) : json_null());
  json_object_set_new(o, "previous_retire_at",
                      prev && r->previous_retire_at ? json_integer(r->previous_retire_at) : json_null());
  json_array_append_new(ud, o);
}

static int cmd_plugin_list(const command *cmd, const args *a, hb_store *s) {
  hb_org_row org;
  const char *key = get_opt(a, "org");
  int rc;
  if (key && (rc = find_org(s, key, &org)) != 0) return rc;
  json_t *arr = json_array(), *orgs = json_object();
  if ((rc = hb_store_plugin_list(s, key ? &org.id : NULL, plugin_row_json, arr)) != 0 ||
      (rc = hb_store_org_list(s, org_name_cb, orgs)) != 0) {
    json_decref(arr);
    json_decref(orgs);
    return store_fail(rc, "cannot list plugins");
  }
  size_t i;
  json_t *o;
  json_array_foreach(arr, i, o) {
    json_object_set_new(o, "organization_name", json_incref(name_of(orgs, jstr(o, "organization_id"))));
  }
  json_decref(orgs);
  if (a->json) return emit(json_pack("{s:o}", "plugins", arr));
  if (json_array_size(arr) == 0) {
    printf("No plugins yet: hubbub plugin create --org ORG NAME\n");
  } else {
    /* The table's PREVIOUS column: the previous kid and until when it verifies. */
    json_array_foreach(arr, i, o) {
      json_t *pk = json_object_get(o, "previous_kid"), *ra = json_object_get(o, "previous_retire_at");
      char cell[96], t[32];
      if (!json_is_string(pk)) snprintf(cell, sizeof cell, "-");
      else if (json_is_integer(ra))
        snprintf(cell, sizeof cell, "%s until %s", json_string_value(pk), time_str(json_integer_value(ra), t, sizeof t));
      else snprintf(cell, sizeof cell, "%s until retired", json_string_value(pk));
      json_object_set_new(o, "previous_text", json_string(cell));
    }
    static const char *const keys[] = {"id", "organization_name", "signing_kid", "previous_text", "allowed_origins",
                                       "created_at", "name"};
    static const char *const heads[] = {"ID", "ORGANIZATION", "KID", "PREVIOUS", "ORIGINS", "CREATED", "NAME"};
    print_table(arr, keys, heads, 7);
  }
  json_decref(arr);
  return 0;
}

static int cmd_plugin_delete(const command *cmd, const args *a, hb_store *s) {
  hb_org_row org;
  hb_plugin_row p;
  char id[HB_UUID_STR_BYTES], what[512];
  int rc;
  if ((rc = find_org(s, get_opt(a, "org"), &org)) != 0) return rc;
  if ((rc = find_plugin(s, &org, a->pos[0], &p)) != 0) return rc;
  snprintf(what, sizeof what, "plugin delete would delete plugin '%s' of organization '%s' with its API tokens",
           p.name, org.name);
  if ((rc = need_yes(a, what)) != 0) return rc;
  rc = hb_store_plugin_delete(s, &p.id);
  if (rc == 1) return fail_code(E_NOT_FOUND, "plugin '%s' not found in org '%s'", a->pos[0], org.name);
  if (rc != 0) return store_fail(rc, "cannot delete plugin '%s'", p.name);
  if (a->json)
    return emit(json_pack("{s:o,s:o,s:o,s:o,s:b}", "id", juuid(&p.id), "name", jtext(p.name), "organization_id",
                          juuid(&org.id), "organization_name", jtext(org.name), "deleted", 1));
  printf("Deleted plugin '%s' (%s) of organization '%s' with its API tokens and revocations.\n"
         "Running servers refuse its tokens and close its connections within a second.\n",
         p.name, uuid_str(&p.id, id), org.name);
  return 0;
}

static int retire_previous(const args *a, hb_store *s, const hb_org_row *org, const hb_plugin_row *p) {
  bool had = false;
  int rc = hb_store_plugin_retire_previous(s, &p->id, &had);
  if (rc == 1) return fail_code(E_NOT_FOUND, "plugin '%s' not found in org '%s'", p->name, org->name);
  if (rc != 0) return store_fail(rc, "cannot retire the previous secret of plugin '%s'", p->name);
  if (a->json)
    return emit(json_pack("{s:o,s:o,s:o,s:o,s:b,s:o}", "id", juuid(&p->id), "name", jtext(p->name),
                          "organization_id", juuid(&org->id), "organization_name", jtext(org->name), "retired", had,
                          "previous_kid", had ? json_string(p->previous_kid) : json_null()));
  if (had)
    printf("Retired the previous signing secret (kid %s) of plugin '%s': connection tokens signed with it\n"
           "are refused, and their connections closed, from now on (running servers: within a second).\n",
           p->previous_kid, p->name);
  else
    printf("Plugin '%s' has no previous signing secret: nothing to retire.\n", p->name);
  return 0;
}

static int cmd_plugin_rotate_secret(const command *cmd, const args *a, hb_store *s) {
  hb_org_row org;
  hb_plugin_row p, r;
  char id[HB_UUID_STR_BYTES], t[32];
  const char *ttl_s = get_opt(a, "previous-ttl");
  long long ttl = 0;
  bool retire = has_flag(a, "retire-previous");
  int rc;
  if (retire && ttl_s) return usage_error("plugin rotate-secret: --retire-previous takes no --previous-ttl");
  if (ttl_s && (rc = parse_seconds("--previous-ttl", ttl_s, 0, HB_API_TOKEN_MAX_TTL_S, &ttl)) != 0) return rc;
  if ((rc = find_org(s, get_opt(a, "org"), &org)) != 0) return rc;
  if ((rc = find_plugin(s, &org, a->pos[0], &p)) != 0) return rc;
  if (retire) return retire_previous(a, s, &org, &p);
  rc = hb_store_plugin_rotate_secret(s, &p.id, ttl, &r);
  if (rc == 1) return fail_code(E_NOT_FOUND, "plugin '%s' not found in org '%s'", a->pos[0], org.name);
  if (rc != 0) return store_fail(rc, "cannot rotate the signing secret of plugin '%s'", p.name);
  if (a->json) {
    json_t *o = json_pack("{s:o,s:o,s:o,s:o,s:s,s:s,s:s}", "id", juuid(&r.id), "name", jtext(r.name),
                          "organization_id", juuid(&org.id), "organization_name", jtext(org.name), "signing_secret",
                          r.signing_secret, "signing_kid", r.signing_kid, "previous_kid", r.previous_kid);
    json_object_set_new(o, "previous_retire_at", r.previous_retire_at ? json_integer(r.previous_retire_at) : json_null());
    rc = emit(o);
  } else {
    printf("Rotated the signing secret of plugin '%s' (%s) of organization '%s'\n"
           "  signing secret: %s\n"
           "  kid:            %s\n"
           "  previous kid:   %s, accepted %s%s\n"
           "\n"
           "The new secret is shown once: store it now. Sign new connection tokens with it and\n"
           "put the kid in their header ({\"alg\":\"HS256\",\"kid\":\"%s\"}); tokens signed with\n"
           "the previous secret keep working until it is retired:\n"
           "  hubbub plugin rotate-secret --org %s %s --retire-previous\n",
           r.name, uuid_str(&r.id, id), org.name, r.signing_secret, r.signing_kid, r.previous_kid,
           r.previous_retire_at ? "until " : "until you retire it",
           r.previous_retire_at ? time_str(r.previous_retire_at, t, sizeof t) : "", r.signing_kid, org.name, r.name);
    rc = 0;
  }
  cleanse_secrets(&r);
  return rc;
}

/* ---- token -------------------------------------------------------------- */

static int cmd_token_create(const command *cmd, const args *a, hb_store *s) {
  hb_org_row org;
  hb_plugin_row p;
  hb_token_row t;
  char tok[HB_MAX_API_TOKEN_BYTES + 1], id[HB_UUID_STR_BYTES], exp[32];
  const char *name = get_opt(a, "name"), *ttl_s = get_opt(a, "ttl");
  int64_t expires_at = 0;
  int rc;
  if (name && (rc = check_name("token", name)) != 0) return rc;
  if (ttl_s) {
    long long ttl;
    if ((rc = parse_seconds("--ttl", ttl_s, 1, HB_API_TOKEN_MAX_TTL_S, &ttl)) != 0) return rc;
    expires_at = (int64_t)time(NULL) + ttl;
  }
  if ((rc = find_org(s, get_opt(a, "org"), &org)) != 0) return rc;
  if ((rc = find_plugin(s, &org, get_opt(a, "plugin"), &p)) != 0) return rc;
  rc = hb_store_token_create_with_expiry(s, &org.id, &p.id, name, expires_at, tok, &t);
  if (rc == 1)
    return fail_code(E_ALREADY_EXISTS, "token name '%s' already exists for plugin '%s'", name ? name : "", p.name);
  if (rc != 0) return store_fail(rc, "cannot create the token");
  if (a->json) {
    json_t *o = json_pack("{s:o,s:s,s:o,s:o,s:o,s:o,s:o}", "id", juuid(&t.id), "token", tok, "organization_id",
                          juuid(&t.org_id), "organization_name", jtext(org.name), "plugin_id", juuid(&t.plugin_id),
                          "plugin_name", jtext(p.name), "name", jtext(t.name));
    json_object_set_new(o, "expires_at", t.expires_at ? json_integer(t.expires_at) : json_null());
    rc = emit(o);
  } else {
    printf("Created API token '%s' for plugin '%s' of organization '%s'\n"
           "  id:      %s\n"
           "  token:   %s\n"
           "  expires: %s\n"
           "\n"
           "This token is shown once and only its hash is stored: copy it now.\n"
           "Use it as:  Authorization: Bearer <token>\n"
           "Revoke it:  hubbub token revoke %s\n",
           t.name, p.name, org.name, uuid_str(&t.id, id), tok,
           t.expires_at ? time_str(t.expires_at, exp, sizeof exp) : "never", id);
    rc = 0;
  }
  OPENSSL_cleanse(tok, sizeof tok);
  return rc;
}

static void token_row_json(const hb_token_row *r, void *ud) {
  /* Never the hash: it is useless to a human and only helps an attacker. */
  json_t *o = json_pack("{s:o,s:o,s:o,s:o,s:I}", "id", juuid(&r->id), "name", jtext(r->name), "organization_id",
                        juuid(&r->org_id), "plugin_id", juuid(&r->plugin_id), "created_at", (json_int_t)r->created_at);
  json_object_set_new(o, "revoked_at", r->revoked_at ? json_integer(r->revoked_at) : json_null());
  json_object_set_new(o, "expires_at", r->expires_at ? json_integer(r->expires_at) : json_null());
  json_array_append_new(ud, o);
}

static int cmd_token_list(const command *cmd, const args *a, hb_store *s) {
  hb_org_row org;
  hb_plugin_row p;
  char want_org[HB_UUID_STR_BYTES] = "", want_plugin[HB_UUID_STR_BYTES] = "";
  const char *org_key = get_opt(a, "org"), *plugin_key = get_opt(a, "plugin");
  int rc;
  if (plugin_key && !org_key) return usage_error("token list: --plugin needs --org");
  if (org_key) {
    if ((rc = find_org(s, org_key, &org)) != 0) return rc;
    uuid_str(&org.id, want_org);
  }
  if (plugin_key) {
    if ((rc = find_plugin(s, &org, plugin_key, &p)) != 0) return rc;
    uuid_str(&p.id, want_plugin);
  }
  json_t *all = json_array(), *orgs = json_object(), *plugins = json_object();
  if ((rc = hb_store_token_list(s, token_row_json, all)) != 0 || (rc = hb_store_org_list(s, org_name_cb, orgs)) != 0 ||
      (rc = hb_store_plugin_list(s, NULL, plugin_name_cb, plugins)) != 0) {
    json_decref(all);
    json_decref(orgs);
    json_decref(plugins);
    return store_fail(rc, "cannot list tokens");
  }
  json_t *arr = json_array();
  size_t i;
  json_t *o;
  json_array_foreach(all, i, o) {
    if (want_org[0] && strcmp(jstr(o, "organization_id"), want_org) != 0) continue;
    if (want_plugin[0] && strcmp(jstr(o, "plugin_id"), want_plugin) != 0) continue;
    json_object_set_new(o, "organization_name", json_incref(name_of(orgs, jstr(o, "organization_id"))));
    json_object_set_new(o, "plugin_name", json_incref(name_of(plugins, jstr(o, "plugin_id"))));
    json_array_append(arr, o);
  }
  json_decref(all);
  json_decref(orgs);
  json_decref(plugins);
  if (a->json) return emit(json_pack("{s:o}", "tokens", arr));
  if (json_array_size(arr) == 0) {
    printf("No API tokens yet: hubbub token create --org ORG --plugin PLUGIN\n");
  } else {
    static const char *const keys[] = {"id", "organization_name", "plugin_name", "created_at", "revoked_at",
                                       "expires_at", "name"};
    static const char *const heads[] = {"ID", "ORGANIZATION", "PLUGIN", "CREATED", "REVOKED", "EXPIRES", "NAME"};
    print_table(arr, keys, heads, 7);
  }
  json_decref(arr);
  return 0;
}

static int cmd_token_revoke(const command *cmd, const args *a, hb_store *s) {
  hb_uuid id;
  const char *key = a->pos[0];
  if (!hb_uuid_parse(key, strlen(key), &id)) return usage_error("token ID '%s' is not a UUID", key);
  int rc = hb_store_token_revoke(s, &id);
  if (rc == 1) return fail_code(E_NOT_FOUND, "token '%s' not found", key);
  if (rc != 0) return store_fail(rc, "cannot revoke token '%s'", key);
  if (a->json) return emit(json_pack("{s:o,s:b}", "id", juuid(&id), "revoked", 1));
  printf("Revoked token %s (a running server stops accepting it within a second)\n", key);
  return 0;
}

/* ---- user --------------------------------------------------------------- */

static int cmd_user_revoke(const command *cmd, const args *a, hb_store *s) {
  hb_org_row org;
  hb_plugin_row p;
  hb_revocation_row r;
  char t[32];
  const char *user = a->pos[0];
  int rc;
  if (!user_id_valid(user))
    return usage_error("USER_ID must be 1 to %d bytes of UTF-8 without control characters", HB_MAX_USER_ID_BYTES);
  if ((rc = find_org(s, get_opt(a, "org"), &org)) != 0) return rc;
  if ((rc = find_plugin(s, &org, get_opt(a, "plugin"), &p)) != 0) return rc;
  rc = hb_store_revoke_user_tokens(s, &p.id, user, (int64_t)time(NULL), &r);
  if (rc == 1) return fail_code(E_NOT_FOUND, "plugin '%s' not found in org '%s'", p.name, org.name);
  if (rc != 0) return store_fail(rc, "cannot revoke the connection tokens of '%s'", user);
  if (a->json)
    return emit(json_pack("{s:o,s:o,s:o,s:o,s:o,s:I}", "user_id", jtext(r.user_id), "plugin_id", juuid(&p.id),
                          "plugin_name", jtext(p.name), "organization_id", juuid(&org.id), "organization_name",
                          jtext(org.name), "revoked_before", (json_int_t)r.revoked_before));
  printf("Revoked the connection tokens of user '%s' in plugin '%s' of organization '%s'\n"
         "issued until %s: running servers refuse them (401 token_revoked) and close the\n"
         "user's connections (4410) within a second. Tokens issued from the next second on work.\n"
         "A token without iat stays refused until this revocation is pruned (%d s from now).\n",
         r.user_id, p.name, org.name, time_str(r.revoked_before, t, sizeof t), HB_CONN_REVOCATION_KEEP_S);
  return 0;
}

/* An operator's disconnect (store.h): recorded, then applied by every
 * running server within a second. Nothing is refused afterwards. */
static int record_disconnect(const args *a, hb_store *s, hb_disconnect_row *d, const hb_org_row *org,
                             const hb_plugin_row *p) {
  char t[32];
  int rc = hb_store_disconnect_create(s, d);
  if (rc == 1) return fail_code(E_NOT_FOUND, "plugin '%s' not found in org '%s'", p->name, org->name);
  if (rc != 0) return store_fail(rc, "cannot record the disconnect");
  if (a->json) {
    json_t *o = json_pack("{s:o,s:o,s:o,s:o,s:o,s:I}", "id", juuid(&d->id), "plugin_id", juuid(&p->id), "plugin_name",
                          jtext(p->name), "organization_id", juuid(&org->id), "organization_name", jtext(org->name),
                          "created_at", (json_int_t)d->created_at);
    if (d->room) {
      static const hb_uuid any;
      json_object_set_new(o, "event_id", juuid(&d->event_id));
      json_object_set_new(o, "session_id", hb_uuid_eq(&d->session_id, &any) ? json_null() : juuid(&d->session_id));
    } else {
      json_object_set_new(o, "user_id", jtext(d->user_id));
    }
    return emit(o);
  }
  printf("Recorded at %s: running servers close %s within a second\n"
         "(close code %s). The same tokens may connect again.\n",
         time_str(d->created_at, t, sizeof t), d->room ? "the room's connections" : "the user's connections",
         d->room ? "4409 room_closed" : "4410 user_disconnected");
  return 0;
}

static int cmd_user_disconnect(const command *cmd, const args *a, hb_store *s) {
  hb_org_row org;
  hb_plugin_row p;
  hb_disconnect_row d;
  int rc;
  if (!user_id_valid(a->pos[0]))
    return usage_error("USER_ID must be 1 to %d bytes of UTF-8 without control characters", HB_MAX_USER_ID_BYTES);
  if ((rc = find_org(s, get_opt(a, "org"), &org)) != 0) return rc;
  if ((rc = find_plugin(s, &org, get_opt(a, "plugin"), &p)) != 0) return rc;
  memset(&d, 0, sizeof d);
  d.plugin_id = p.id;
  snprintf(d.user_id, sizeof d.user_id, "%s", a->pos[0]);
  return record_disconnect(a, s, &d, &org, &p);
}

static int parse_uuid_opt(const args *a, const char *name, hb_uuid *out);

static int cmd_room_disconnect(const command *cmd, const args *a, hb_store *s) {
  hb_org_row org;
  hb_plugin_row p;
  hb_disconnect_row d;
  int rc;
  memset(&d, 0, sizeof d);
  d.room = true;
  if ((rc = parse_uuid_opt(a, "event", &d.event_id)) != 0) return rc;
  if (get_opt(a, "session") && (rc = parse_uuid_opt(a, "session", &d.session_id)) != 0) return rc;
  if ((rc = find_org(s, get_opt(a, "org"), &org)) != 0) return rc;
  if ((rc = find_plugin(s, &org, get_opt(a, "plugin"), &p)) != 0) return rc;
  d.plugin_id = p.id;
  return record_disconnect(a, s, &d, &org, &p);
}

/* ---- export, import ----------------------------------------------------- */

/* Write `text` and a newline to `path`, created 0600 (it may hold signing secrets). */
static int write_private(const char *path, const char *text, size_t len) {
  FILE *f = NULL;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fail_code(E_IO, "cannot write '%s': %s", path, strerror(errno));
  if (fchmod(fd, 0600) != 0 || !(f = fdopen(fd, "w"))) { /* an existing file keeps its mode otherwise */
    int e = errno;
    close(fd);
    return fail_code(E_IO, "cannot write '%s': %s", path, strerror(e));
  }
  bool ok = fwrite(text, 1, len, f) == len && fputc('\n', f) != EOF;
  int e = errno;
  if (fclose(f) != 0) ok = false, e = errno;
  return ok ? 0 : fail_code(E_IO, "cannot write '%s': %s", path, strerror(e));
}

static int cmd_export(const command *cmd, const args *a, hb_store *s) {
  json_t *doc = NULL;
  bool secrets = has_flag(a, "include-secrets");
  const char *out = get_opt(a, "out");
  int rc = hb_dump_export(s, secrets, &doc);
  if (rc != 0) return store_fail(rc, "cannot export the store");
  /* Compact with --json (one line), indented for a person. */
  char *text = json_dumps(doc, (a->json ? JSON_COMPACT : JSON_INDENT(1)) | JSON_ENSURE_ASCII);
  json_decref(doc);
  if (!text) return fail_code(E_INTERNAL, "cannot export the store: out of memory");
  size_t len = strlen(text);
  if (out) {
    rc = write_private(out, text, len);
    /* --json: the one document on stdout says where it went. */
    if (rc == 0 && a->json) rc = emit(json_pack("{s:o,s:b}", "out", jtext(out), "includes_secrets", secrets));
    else if (rc == 0) printf("Exported %s to %s (mode 0600)\n", hb_store_backend(s), out);
  } else if (fwrite(text, 1, len, stdout) != len || fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
    fprintf(stderr, "hubbub: cannot write the output\n"); /* stdout is what failed */
    rc = EXIT_FAIL;
  }
  OPENSSL_cleanse(text, len);
  free(text); /* jansson's allocator */
  if (rc != 0) return rc;
  if (!secrets)
    fprintf(stderr, "hubbub: exported without signing secrets: an import gives each plugin a new secret, so\n"
                    "connection tokens signed with the old ones will not verify there (API tokens will).\n"
                    "Add --include-secrets to move them, and keep the file as safe as the store.\n");
  else if (!out)
    fprintf(stderr, "hubbub: the export holds signing secrets: keep it as safe as the store\n");
  return 0;
}

/* A whole file ("-" = standard input) of at most `max` bytes, in hb_malloc'd memory. */
static int read_bounded(const char *path, size_t max, char **out, size_t *len) {
  bool in = strcmp(path, "-") == 0;
  FILE *f = in ? stdin : fopen(path, "rb");
  if (!f) return fail_code(E_IO, "cannot read '%s': %s", path, strerror(errno));
  size_t cap = 65536, n = 0;
  char *buf = hb_malloc(cap);
  for (;;) {
    if (n == cap) {
      if (cap > max) break; /* read one byte past max: too long */
      buf = hb_realloc(buf, cap *= 2);
    }
    size_t r = fread(buf + n, 1, cap - n, f);
    n += r;
    if (r == 0) break;
  }
  bool err = ferror(f);
  if (!in) fclose(f);
  if (err || n > max) {
    OPENSSL_cleanse(buf, n);
    hb_free(buf);
    return err ? fail_code(E_IO, "cannot read '%s'", path) : fail_code(E_IO, "'%s' is over %zu bytes", path, max);
  }
  *out = buf;
  *len = n;
  return 0;
}

static int cmd_import(const command *cmd, const args *a, hb_store *s) {
  static const char *const kinds[] = {"organizations", "plugins", "api_tokens", "revocations"};
  hb_store_import_result res;
  char err[512], *text = NULL;
  size_t len = 0;
  int rc = read_bounded(a->pos[0], HB_DUMP_MAX_BYTES, &text, &len);
  if (rc != 0) return rc;
  rc = hb_dump_import(s, text, len, &res, err, sizeof err);
  OPENSSL_cleanse(text, len); /* it may hold signing secrets */
  hb_free(text);
  if (rc == 1) return fail_code(E_IMPORT, "import refused, nothing changed: %s", err);
  if (rc != 0) return store_fail(rc, "import failed, nothing changed");
  if (a->json) {
    json_t *created = json_object(), *unchanged = json_object();
    for (int k = 0; k < 4; k++) {
      json_object_set_new(created, kinds[k], json_integer((json_int_t)res.created[k]));
      json_object_set_new(unchanged, kinds[k], json_integer((json_int_t)res.unchanged[k]));
    }
    rc = emit(json_pack("{s:b,s:o,s:o,s:I}", "imported", 1, "created", created, "unchanged", unchanged,
                        "new_signing_secrets", (json_int_t)res.new_secrets));
  } else {
    printf("Imported into %s:\n", hb_store_backend(s));
    for (int k = 0; k < 4; k++)
      printf("  %-14s %zu created, %zu already there\n", kinds[k], res.created[k], res.unchanged[k]);
    rc = 0;
  }
  if (res.new_secrets)
    fprintf(stderr, "hubbub: %zu plugins were exported without their signing secrets and got new ones:\n"
                    "connection tokens signed with the old secrets do not verify here. Get a secret you\n"
                    "can use with: hubbub plugin rotate-secret --org ORG PLUGIN (then --retire-previous)\n",
            res.new_secrets);
  return rc;
}

/* ---- connection-token --------------------------------------------------- */

static int parse_uuid_opt(const args *a, const char *name, hb_uuid *out) {
  const char *v = get_opt(a, name);
  if (!hb_uuid_parse(v, strlen(v), out)) return usage_error("--%s '%s' is not a UUID", name, v);
  return 0;
}

static int parse_scopes(const char *list, hb_scope_set *out) {
  *out = 0;
  for (const char *p = list;;) {
    const char *q = strchr(p, ',');
    size_t n = q ? (size_t)(q - p) : strlen(p);
    hb_scope sc;
    if (!hb_scope_parse(p, n, &sc))
      return usage_error("--scopes: '%.*s' is not session, event or organization", (int)n, p);
    *out |= HB_SCOPE_BIT(sc);
    if (!q) break;
    p = q + 1;
  }
  return 0;
}

/* stdout gets the token alone, so that `T=$(hubbub connection-token create
 * ...)` works; what a human wants to know besides goes to stderr. */
static int cmd_conn_token_create(const command *cmd, const args *a, hb_store *s) {
  hb_org_row org;
  hb_plugin_row p;
  hb_conn_claims c;
  const char *user = get_opt(a, "user"), *scopes = get_opt(a, "scopes"), *ttl_s = get_opt(a, "ttl");
  long ttl = HB_CONN_TOKEN_DEFAULT_TTL_S;
  char *tok = NULL;
  int rc;

  memset(&c, 0, sizeof c);
  if ((rc = parse_uuid_opt(a, "event", &c.event)) != 0) return rc;
  if ((rc = parse_uuid_opt(a, "session", &c.session)) != 0) return rc;
  if (!user) user = "cli";
  if (!user_id_valid(user))
    return usage_error("--user must be 1 to %d bytes of UTF-8 without control characters", HB_MAX_USER_ID_BYTES);
  snprintf(c.user_id, sizeof c.user_id, "%s", user);
  c.scopes = HB_SCOPE_SET_DEFAULT;
  if (scopes && (rc = parse_scopes(scopes, &c.scopes)) != 0) return rc;
  if (ttl_s) {
    char *end;
    errno = 0;
    ttl = strtol(ttl_s, &end, 10);
    if (errno || end == ttl_s || *end || ttl < 1 || ttl > HB_CONN_TOKEN_MAX_TTL_S)
      return usage_error("--ttl must be 1 to %d seconds", HB_CONN_TOKEN_MAX_TTL_S);
  }
  const char *info = get_opt(a, "info");
  if (info) {
    hb_error je;
    json_t *j = hb_json_load(info, strlen(info), &je);
    hb_info_status st = j ? hb_field_info(j, c.info, &c.info_len) : HB_INFO_NOT_OBJECT;
    json_decref(j);
    if (st == HB_INFO_NOT_OBJECT) return usage_error("--info must be a JSON object, e.g. '{\"name\":\"Ada\"}'");
    if (st == HB_INFO_TOO_LARGE)
      return usage_error("--info must be at most %d bytes as compact JSON", HB_MAX_PRESENCE_INFO_BYTES);
  }
  if ((rc = find_org(s, get_opt(a, "org"), &org)) != 0) return rc;
  /* find_plugin wipes the secret; this command needs it to sign. */
  rc = hb_store_plugin_find(s, &org.id, get_opt(a, "plugin"), &p);
  if (rc == 1) return fail_code(E_NOT_FOUND, "plugin '%s' not found in org '%s'", get_opt(a, "plugin"), org.name);
  if (rc != 0) return store_fail(rc, "cannot read plugins");
  c.org = org.id;
  c.plugin = p.id;
  /* The kid names the secret that signs, so that after a rotation the
   * server checks the token with that secret alone. */
  snprintf(c.kid, sizeof c.kid, "%s", p.signing_kid);
  c.iat = (int64_t)time(NULL);
  c.exp = c.iat + ttl;
  tok = hb_jwt_mint(&c, p.signing_secret, strlen(p.signing_secret));
  cleanse_secrets(&p);
  if (!tok) return fail_code(E_INTERNAL, "cannot mint the connection token");
  if (a->json) {
    rc = emit(json_pack("{s:s,s:I}", "token", tok, "expires_at", (json_int_t)c.exp));
  } else {
    char t[32];
    printf("%s\n", tok);
    rc = fflush(stdout) == 0 ? 0 : EXIT_FAIL;
    fprintf(stderr, "Connection token for user '%s' in plugin '%s' of organization '%s', expires %s.\n"
                    "Connect with GET /api/v1/ws?token=<token> (the SDK: PubSub.connect({ url, token })).\n",
            c.user_id, p.name, org.name, time_str(c.exp, t, sizeof t));
  }
  hb_free(tok);
  return rc;
}

/* ---- init --------------------------------------------------------------- */

/* `hubbub init`: create the store (directory 0700, file 0600), or migrate
 * the one there; either way it is ready afterwards. With `serve`, the only
 * command that creates a store: an admin command run in the wrong directory
 * must not leave an empty store behind for a server to start on. */
static int cmd_init(const command *cmd, const args *a, hb_store *unused) {
  hb_config cfg;
  char err[512], where[512];
  hb_store *s = NULL;
  const char *loc = get_opt(a, "store");
  int rc;
  if (!loc) loc = get_opt(a, "data");
  if ((rc = load_config(a, &cfg)) != 0) return rc;
  if (!loc) loc = cfg.data_dir;
  hb_store_location_describe(loc, where, sizeof where); /* never the password */
  hb_log_set_level(HB_LOG_WARN);
  bool created = false;
  rc = hb_store_open_existing(&s, loc, err, sizeof err);
  if (rc == HB_STORE_NONE) {
    created = true;
    rc = hb_store_open(&s, loc, err, sizeof err);
  }
  if (rc == HB_STORE_UNAVAILABLE)
    return report_code(EXIT_UNAVAILABLE, E_UNAVAILABLE, "cannot open the store at '%s': %s", where, err);
  if (rc != 0) return fail_code(E_STORE, "cannot %s the store at '%s': %s", created ? "create" : "open", where, err);
  hb_store_close(s);
  if (a->json) return emit(json_pack("{s:s,s:b}", "store", where, "created", created));
  printf("%s %s\n", created ? "created the store at" : "the store is ready at", where);
  return 0;
}

/* ---- serve -------------------------------------------------------------- */

static int cmd_serve(const command *cmd, const args *a, hb_store *unused) {
  hb_config cfg;
  const char *v;
  int rc;
  if (a->json) return usage_error("serve does not take --json (it logs to stderr)");
  /* Defaults, the file, the environment, then flags: the most specific wins. */
  if ((rc = load_config(a, &cfg)) != 0) return rc;
  if ((v = get_opt(a, "listen")) && hb_config_parse_listen(v, cfg.host, sizeof cfg.host, &cfg.port) != 0)
    return usage_error("--listen '%s' must be HOST:PORT, [IPv6]:PORT or :PORT", v);
  /* The store location: --store (any kind) or --data (a directory); the
   * server opens cfg.data_dir with hb_store_open, which takes either. */
  if ((v = get_opt(a, "store")) || (v = get_opt(a, "data"))) {
    if (strlen(v) >= sizeof cfg.data_dir)
      return usage_error("--%s is too long (at most %zu bytes)", get_opt(a, "store") ? "store" : "data",
                         sizeof cfg.data_dir - 1);
    snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", v);
  }
  if ((v = get_opt(a, "threads"))) {
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < 0 || n > HB_MAX_THREADS)
      return usage_error("--threads must be 0 (one per core) to %d", HB_MAX_THREADS);
    cfg.threads = (int)n;
  }
#define COPY_FLAG(flag, field)                                                                      \
  if ((v = get_opt(a, flag))) {                                                                     \
    if (strlen(v) >= sizeof cfg.field) return usage_error("--%s is too long", flag);                \
    snprintf(cfg.field, sizeof cfg.field, "%s", v);                                                 \
  }
  COPY_FLAG("redis", redis_url)
  COPY_FLAG("redis-password", redis_password)
  COPY_FLAG("log-level", log_level)
#undef COPY_FLAG
  if (strcmp(cfg.log_level, "debug") && strcmp(cfg.log_level, "info") && strcmp(cfg.log_level, "warn") &&
      strcmp(cfg.log_level, "error"))
    return usage_error("--log-level must be debug, info, warn or error");
  return hb_server_run(&cfg);
}

/* ---- admin-token, version ----------------------------------------------- */

/* The admin HTTP API's credential: a random token, of which the server only
 * keeps the SHA-256 (config key admin_token_sha256). Printed once. */
static int cmd_admin_token_create(const command *cmd, const args *a, hb_store *unused) {
  static const char hex[] = "0123456789abcdef";
  unsigned char raw[HB_API_TOKEN_RANDOM_BYTES];
  char tok[8 + 2 * HB_API_TOKEN_RANDOM_BYTES + 1] = "hba_";
  uint8_t h[HB_TOKEN_HASH_BYTES];
  char hh[2 * HB_TOKEN_HASH_BYTES + 1];
  int rc;
  if (RAND_bytes(raw, sizeof raw) != 1) return fail_code(E_INTERNAL, "no randomness available");
  for (size_t i = 0; i < sizeof raw; i++) {
    tok[4 + 2 * i] = hex[raw[i] >> 4];
    tok[5 + 2 * i] = hex[raw[i] & 15];
  }
  tok[4 + 2 * sizeof raw] = '\0';
  OPENSSL_cleanse(raw, sizeof raw);
  hb_store_hash_token(tok, strlen(tok), h);
  for (size_t i = 0; i < sizeof h; i++) {
    hh[2 * i] = hex[h[i] >> 4];
    hh[2 * i + 1] = hex[h[i] & 15];
  }
  hh[sizeof hh - 1] = '\0';
  if (a->json) {
    rc = emit(json_pack("{s:s,s:s}", "token", tok, "admin_token_sha256", hh));
  } else {
    printf("admin token (shown once): %s\n", tok);
    printf("add to the config file:   \"admin_token_sha256\": \"%s\"\n", hh);
    printf("or to the environment:    HUBBUB_ADMIN_TOKEN_SHA256=%s\n", hh);
    rc = 0;
  }
  OPENSSL_cleanse(tok, sizeof tok);
  return rc;
}

static int cmd_version(const command *cmd, const args *a, hb_store *unused) {
  if (a->json) return emit(json_pack("{s:s,s:s}", "name", "hubbub", "version", HB_VERSION));
  printf("hubbub %s\n", HB_VERSION);
  return 0;
}

static int cmd_help(const command *cmd, const args *a, hb_store *unused);

/* ---- the table ---------------------------------------------------------- */

#define ADMIN_OPTIONS                                                                               \
  "\nEvery admin command also takes:\n"                                                             \
  "  --store LOCATION  the store: a directory, sqlite:FILE or postgresql://USER@HOST[:PORT]/DB\n"    \
  "                    (the password in PGPASSWORD or ~/.pgpass, not on the command line)\n"        \
  "  --data DIR        the data directory, instead of --store (default: the configuration's\n"      \
  "                    data_dir, $HUBBUB_DATA_DIR, else \"" HB_DEFAULT_DATA_DIR "\")\n"               \
  "  --config FILE     read data_dir from this config file (default: $HUBBUB_CONFIG)\n"             \
  "  --json            print one JSON document on stdout, errors included\n"                        \
  "Exit status: 0 done, 1 failed, 2 usage error, 3 the store is unavailable (try again).\n"

static const command commands[] = {
    {"serve", NULL, "listen store data threads config redis redis-password log-level", "", "", 0, NULL, false,
     cmd_serve,
     "serve [--listen HOST:PORT] [--store LOCATION | --data DIR] [--threads N] [--config FILE]\n"
     "               [--redis URL] [--redis-password PASSWORD] [--log-level LEVEL]",
     "Run the server until SIGTERM or SIGINT (SIGHUP reloads credentials).\n"
     "\n"
     "  --listen HOST:PORT    address to listen on, also [IPv6]:PORT or :PORT (default " HB_DEFAULT_HOST ":8080)\n"
     "  --store LOCATION      the store: a directory, sqlite:FILE or postgresql://USER@HOST[:PORT]/DB\n"
     "                        (one PostgreSQL for every node of a cluster; see docs/scaling.md)\n"
     "  --data DIR            the data directory, instead of --store (default \"" HB_DEFAULT_DATA_DIR "\")\n"
     "  --threads N           I/O threads, 0 = one per core (default 0)\n"
     "  --config FILE         a JSON config file (default: $HUBBUB_CONFIG, if set)\n"
     "  --redis URL           redis://[[user]:password@]host[:port][/db]: run as one node of several\n"
     "  --redis-password PW   Redis AUTH password\n"
     "  --log-level LEVEL     debug, info, warn or error (default info)\n"
     "\n"
     "Every config file key can also be set as HUBBUB_<KEY> (HUBBUB_LISTEN,\n"
     "HUBBUB_DATA_DIR, HUBBUB_MAX_CONNECTIONS, ...). Flags win over the\n"
     "environment, which wins over the file. See docs/operations.md.\n"},
    {"org", "create", "", "", "", 1, "NAME", true, cmd_org_create, "org create NAME",
     "Create an organization (a tenant). NAME: 1-128 bytes, not a UUID.\n" ADMIN_OPTIONS},
    {"org", "list", "", "", "", 0, NULL, true, cmd_org_list, "org list", "List the organizations.\n" ADMIN_OPTIONS},
    {"org", "delete", "", "yes", "", 1, "ORG", true, cmd_org_delete, "org delete ORG --yes",
     "Delete an organization with its plugins, API tokens and user revocations.\n"
     "Running servers refuse its tokens and close its WebSocket connections (4404)\n"
     "within a second; its message history goes. Without --yes, say what would be\n"
     "deleted and change nothing (exit 2).\n" ADMIN_OPTIONS},
    {"plugin", "create", "org origins", "", "org", 1, "NAME", true, cmd_plugin_create,
     "plugin create --org ORG NAME [--origins \"https://a https://b\"]",
     "Create a plugin in an organization and print its signing secret (once) and\n"
     "the secret's key id (kid).\n"
     "\n"
     "  --org ORG         the organization, by name or UUID\n"
     "  --origins LIST    the Origins allowed to open a WebSocket, space separated (default: any)\n" ADMIN_OPTIONS},
    {"plugin", "list", "org", "", "", 0, NULL, true, cmd_plugin_list, "plugin list [--org ORG]",
     "List the plugins (never their secrets): the current kid, and the previous one\n"
     "with when it is retired. Of one organization with --org.\n" ADMIN_OPTIONS},
    {"plugin", "update", "org origins", "", "org origins", 1, "PLUGIN", true, cmd_plugin_update,
     "plugin update --org ORG PLUGIN --origins \"https://a https://b\"",
     "Replace a plugin's Origin allowlist (\"\" allows any Origin). Takes effect in a\n"
     "running server within a second.\n" ADMIN_OPTIONS},
    {"plugin", "rotate-secret", "org previous-ttl", "retire-previous", "org", 1, "PLUGIN", true,
     cmd_plugin_rotate_secret,
     "plugin rotate-secret --org ORG PLUGIN [--previous-ttl SECONDS | --retire-previous]",
     "Give a plugin a new signing secret and print it and its kid (once). The old\n"
     "secret becomes the previous one and keeps verifying connection tokens until it\n"
     "is retired: after --previous-ttl seconds, or with --retire-previous (which\n"
     "rotates nothing; connections whose token it signed are then closed, 4404).\n"
     "\n"
     "  --org ORG               the organization, by name or UUID\n"
     "  --previous-ttl SECONDS  how long the previous secret verifies (default: until retired)\n"
     "  --retire-previous       drop the previous secret now\n" ADMIN_OPTIONS},
    {"plugin", "delete", "org", "yes", "org", 1, "PLUGIN", true, cmd_plugin_delete, "plugin delete --org ORG PLUGIN --yes",
     "Delete a plugin with its API tokens and user revocations. Running servers\n"
     "refuse its tokens and close its WebSocket connections (4404) within a second;\n"
     "its message history goes. Without --yes, say what would be deleted and change\n"
     "nothing (exit 2).\n" ADMIN_OPTIONS},
    {"token", "create", "org plugin name ttl", "", "org plugin", 0, NULL, true, cmd_token_create,
     "token create --org ORG --plugin PLUGIN [--name LABEL] [--ttl SECONDS]",
     "Create an API token for one plugin and print it (once; only its hash is kept).\n"
     "\n"
     "  --org ORG         the organization, by name or UUID\n"
     "  --plugin PLUGIN   the plugin, by name or UUID\n"
     "  --name LABEL      a label, unique per plugin (default: generated)\n"
     "  --ttl SECONDS     expire after this long (default: never)\n" ADMIN_OPTIONS},
    {"token", "list", "org plugin", "", "", 0, NULL, true, cmd_token_list, "token list [--org ORG [--plugin PLUGIN]]",
     "List API tokens (never the tokens themselves), with their organization, plugin,\n"
     "and when they were revoked or expire.\n" ADMIN_OPTIONS},
    {"token", "revoke", "", "", "", 1, "ID", true, cmd_token_revoke, "token revoke ID",
     "Revoke an API token by its id (from `token list`). A running server refuses\n"
     "it within a second.\n" ADMIN_OPTIONS},
    {"user", "revoke", "org plugin", "", "org plugin", 1, "USER_ID", true, cmd_user_revoke,
     "user revoke --org ORG --plugin PLUGIN USER_ID",
     "Refuse every connection token of USER_ID (the `sub` claim) in a plugin issued\n"
     "until now (401 token_revoked), and close the user's open connections on every\n"
     "node (4410 token_revoked) within a second. Tokens issued later work.\n" ADMIN_OPTIONS},
    {"user", "disconnect", "org plugin", "", "org plugin", 1, "USER_ID", true, cmd_user_disconnect,
     "user disconnect --org ORG --plugin PLUGIN USER_ID",
     "Close the open connections of USER_ID in a plugin on every node (4410\n"
     "user_disconnected) within a second, without refusing anything: the same\n"
     "tokens may connect again (the SDK asks its getToken for a new one).\n" ADMIN_OPTIONS},
    {"room", "disconnect", "org plugin event session", "", "org plugin event", 0, NULL, true, cmd_room_disconnect,
     "room disconnect --org ORG --plugin PLUGIN --event UUID [--session UUID]",
     "Close every open connection of a room on every node (4409 room_closed; the\n"
     "SDK does not reconnect) within a second: one session, or without --session\n"
     "every session of the event. Nothing is refused afterwards.\n" ADMIN_OPTIONS},
    {"connection-token", "create", "org plugin event session user scopes ttl info", "", "org plugin event session", 0,
     NULL, true, cmd_conn_token_create,
     "connection-token create --org ORG --plugin PLUGIN --event UUID --session UUID\n"
     "               [--user ID] [--scopes session,event,organization] [--ttl SECONDS]\n"
     "               [--info '{\"name\":\"Ada\"}']",
     "Mint a connection token (an HS256 JWT, with the signing secret's kid) for one\n"
     "room client and print it alone on stdout (the expiry goes to stderr; with\n"
     "--json: {\"token\",\"expires_at\"}).\n"
     "\n"
     "  --event UUID, --session UUID   the room\n"
     "  --user ID         the user (the `sub` claim; default \"cli\")\n"
     "  --scopes LIST     the scopes it may publish to (default: session)\n"
     "  --ttl SECONDS     1-86400 (default 3600)\n"
     "  --info JSON       public user info shown in presence (the `info` claim): a JSON\n"
     "                    object, bounded in size (docs/protocol.md, \"Presence\")\n" ADMIN_OPTIONS},
    {"export", NULL, "out", "include-secrets", "", 0, NULL, true, cmd_export, "export [--include-secrets] [--out FILE]",
     "Print the store as one JSON document (organizations, plugins, API-token hashes,\n"
     "user revocations), to back it up or move it (SQLite to PostgreSQL: `import`).\n"
     "\n"
     "  --include-secrets  add the plugins' signing secrets (keep the file as safe as the\n"
     "                     store); without them an import gives each plugin a new secret\n"
     "  --out FILE         write it to FILE (created 0600) instead of stdout\n" ADMIN_OPTIONS},
    {"import", NULL, "", "", "", 1, "FILE", true, cmd_import, "import FILE",
     "Import a document of `hubbub export` (FILE, or - for standard input), all or\n"
     "nothing in one transaction. Entries already there with the same content are\n"
     "kept; an id, name or token hash there with other content refuses the import,\n"
     "naming the entry (nothing changed, exit 1).\n" ADMIN_OPTIONS},
    {"admin-token", "create", "", "", "", 0, NULL, false, cmd_admin_token_create, "admin-token create",
     "Make a token for the admin HTTP API: prints the token (once) and the SHA-256\n"
     "to put in the configuration (admin_token_sha256 / HUBBUB_ADMIN_TOKEN_SHA256).\n"
     "Takes --json.\n"},
    {"init", NULL, "store data config", "", "", 0, NULL, false, cmd_init,
     "init [--data DIR | --store LOCATION] [--config FILE]",
     "Create the store (SQLite: the data directory 0700, hubbub.db 0600; PostgreSQL:\n"
     "the schema, in a database that exists) or migrate the one there. `serve`\n"
     "creates it too; the admin commands never do: they refuse a location without\n"
     "a store.\n"
     "\n"
     "  --data DIR         the data directory (default: the configuration's data_dir, \"" HB_DEFAULT_DATA_DIR "\")\n"
     "  --store LOCATION   a directory, sqlite:FILE or postgresql://USER@HOST:PORT/DATABASE\n"
     "  --config FILE      read data_dir from this config file (default: $HUBBUB_CONFIG)\n"
     "  --json             print {\"store\":LOCATION,\"created\":true|false} (never a password)\n"},
    {"version", NULL, "", "", "", 0, NULL, false, cmd_version, "version", "Print the version. Takes --json.\n"},
    {"help", NULL, "", "", "", -1, NULL, false, cmd_help, "help [COMMAND]",
     "Print the usage of every command, or of one (`hubbub help token create`).\n"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void print_overview(FILE *f) {
  fputs("usage:\n", f);
  for (size_t i = 0; i < NCOMMANDS; i++) fprintf(f, "  hubbub %s\n", commands[i].synopsis);
  fputs("\n"
        "Admin commands take --store LOCATION (a directory, sqlite:FILE or postgresql://...) or\n"
        "--data DIR (default \"" HB_DEFAULT_DATA_DIR "\"), and --json; every command takes --help.\n"
        "ORG and PLUGIN are a name or a UUID. `hubbub help COMMAND` tells more.\n",
        f);
}

static void print_group(FILE *f, const char *group) {
  fputs("usage:\n", f);
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (!strcmp(commands[i].group, group)) fprintf(f, "  hubbub %s\n", commands[i].synopsis);
  fprintf(f, "\n`hubbub help %s VERB` tells more.\n", group);
}

static void print_help(FILE *f, const command *cmd, const char *group) {
  if (cmd) fprintf(f, "usage: hubbub %s\n\n%s", cmd->synopsis, cmd->help);
  else if (group) print_group(f, group);
  else print_overview(f);
}

static bool is_group(const char *w) {
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (commands[i].verb && !strcmp(commands[i].group, w)) return true;
  return false;
}

/* "create, list or revoke": the verbs of a group, for usage errors. */
static const char *verbs_of(const char *group, char *buf, size_t len) {
  size_t n = 0, total = 0, k = 0;
  for (size_t i = 0; i < NCOMMANDS; i++) total += commands[i].verb && !strcmp(commands[i].group, group);
  buf[0] = '\0';
  for (size_t i = 0; i < NCOMMANDS && n < len; i++) {
    if (!commands[i].verb || strcmp(commands[i].group, group) != 0) continue;
    k++;
    n += snprintf(buf + n, len - n, "%s%s", k == 1 ? "" : k == total ? " or " : ", ", commands[i].verb);
  }
  return buf;
}

/* The command named by words[0] (and words[1]), or NULL. */
static const command *lookup(int n, char **words) {
  for (size_t i = 0; n > 0 && i < NCOMMANDS; i++) {
    if (strcmp(commands[i].group, words[0]) != 0) continue;
    if (!commands[i].verb) return &commands[i];
    if (n > 1 && !strcmp(commands[i].verb, words[1])) return &commands[i];
  }
  return NULL;
}

/* Help on stdout, exit 0; with --json, one {"usage": text} document. */
static int show_help(const command *cmd, const char *group) {
  if (!g_json) {
    print_help(stdout, cmd, group);
    return fflush(stdout) == 0 ? 0 : EXIT_FAIL;
  }
  char *text = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&text, &len);
  if (!m) return fail_code(E_INTERNAL, "out of memory");
  print_help(m, cmd, group);
  fclose(m);
  int rc = emit(json_pack("{s:s}", "usage", text));
  free(text);
  return rc;
}

static int cmd_help(const command *self, const args *a, hb_store *unused) {
  char *words[2] = {(char *)(a->npos > 0 ? a->pos[0] : ""), (char *)(a->npos > 1 ? a->pos[1] : "")};
  if (a->npos == 0) return show_help(NULL, NULL);
  const command *cmd = lookup(a->npos, words);
  if (cmd && a->npos <= (cmd->verb ? 2 : 1)) return show_help(cmd, NULL);
  if (a->npos == 1 && is_group(words[0])) return show_help(NULL, words[0]);
  return usage_error("help: no command '%s%s%s'", words[0], a->npos > 1 ? " " : "", words[1]);
}

/* ---- dispatch ----------------------------------------------------------- */

static int run_command(const command *cmd, int argc, char **argv) {
  static char name[64];
  args a;
  hb_store *s = NULL;
  int rc;
  snprintf(name, sizeof name, "%s%s%s", cmd->group, cmd->verb ? " " : "", cmd->verb ? cmd->verb : "");
  g_cmd = name;
  if ((rc = parse_args(cmd, argc, argv, &a)) != 0) return rc;
  if (a.help) return show_help(cmd, NULL);
  if (cmd->npos >= 0 && a.npos != cmd->npos) {
    if (a.npos > cmd->npos) return usage_error("%s: unexpected argument '%s'", name, a.pos[cmd->npos]);
    return usage_error("%s: missing %s", name, cmd->posname);
  }
  for (const char *p = cmd->required; *p;) {
    const char *q = strchr(p, ' ');
    size_t n = q ? (size_t)(q - p) : strlen(p);
    char opt_name[32];
    snprintf(opt_name, sizeof opt_name, "%.*s", (int)n, p);
    const char *v = get_opt(&a, opt_name);
    /* --origins "" is a value (any origin); the other required options are names or ids. */
    if (!v || (!*v && strcmp(opt_name, "origins") != 0)) return usage_error("%s: --%s is required", name, opt_name);
    p = q ? q + 1 : p + n;
  }
  if (cmd->npos == 1 && cmd->verb && !strcmp(cmd->verb, "create") &&
      (rc = check_name(!strcmp(cmd->group, "org") ? "organization" : cmd->group, a.pos[0])) != 0)
    return rc;
  if (cmd->store) {
    /* The admin commands' output is their result; routine log lines (a
     * migration) would only get in the way of scripts reading stderr. */
    hb_log_set_level(HB_LOG_WARN);
    if ((rc = open_store(&a, &s)) != 0) return rc;
  }
  rc = cmd->run(cmd, &a, s);
  hb_store_close(s);
  return rc;
}

int main(int argc, char **argv) {
  bool help;
  char verbs[128];
  scan_flags(argc - 1, argv + 1, &g_json, &help);
  if (argc < 2) {
    print_overview(stderr);
    return EXIT_USAGE;
  }
  const char *first = argv[1];
  if (is_help(first)) return show_help(NULL, NULL);
  if (!strcmp(first, "--version")) first = argv[1] = "version";
  const command *cmd = lookup(argc - 1, argv + 1);
  if (cmd) return run_command(cmd, argc - (cmd->verb ? 3 : 2), argv + (cmd->verb ? 3 : 2));
  if (is_group(first)) {
    g_cmd = first;
    if (help) return show_help(NULL, first); /* `hubbub token --help` */
    if (argc == 2) return usage_error("'%s' needs a subcommand: %s", first, verbs_of(first, verbs, sizeof verbs));
    return usage_error("'%s' has no subcommand '%s' (it has %s)", first, argv[2], verbs_of(first, verbs, sizeof verbs));
  }
  return usage_error("unknown command '%s'", first);
}
