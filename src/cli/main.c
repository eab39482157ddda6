/*
 * main.c - the `hubbub` binary: `serve`, and the admin commands that manage
 * organizations, plugins, API tokens and connection tokens in the store.
 *
 * Admin commands talk to the SQLite file directly, so they work whether or
 * not a server is running; a running server picks changes up by itself
 * (hb_auth_reload). Every admin command prints one JSON object on stdout
 * with --json, friendly text otherwise. Errors go to stderr: exit 1 for a
 * failure, 2 for a usage error.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hubbub/alloc.h"
#include "hubbub/config.h"
#include "hubbub/field.h"
#include "hubbub/json.h"
#include "hubbub/jwt.h"
#include "hubbub/limits.h"
#include "hubbub/log.h"
#include "hubbub/scope.h"
#include "hubbub/server.h"
#include "hubbub/store.h"
#include "hubbub/uuid.h"

#ifndef HB_VERSION
#define HB_VERSION "0.1.0"
#endif

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define MAX_ARGS 32

static const char usage_text[] =
    "usage:\n"
    "  hubbub serve [--listen HOST:PORT] [--data DIR] [--threads N] [--config FILE]\n"
    "               [--redis URL] [--redis-password PASSWORD] [--log-level LEVEL]\n"
    "  hubbub org create NAME\n"
    "  hubbub org list\n"
    "  hubbub plugin create --org ORG NAME [--origins \"https://a https://b\"]\n"
    "  hubbub plugin list [--org ORG]\n"
    "  hubbub plugin update --org ORG PLUGIN --origins \"https://a https://b\"  (\"\" = any)\n"
    "  hubbub token create --org ORG --plugin PLUGIN [--name LABEL]\n"
    "  hubbub token list\n"
    "  hubbub token revoke ID\n"
    "  hubbub connection-token create --org ORG --plugin PLUGIN --event UUID --session UUID\n"
    "               [--user ID] [--scopes session,event,organization] [--ttl SECONDS]\n"
    "               [--info '{\"name\":\"Ada\"}']  (public user info shown in presence)\n"
    "  hubbub admin-token create      (prints a token for the admin HTTP API and its config line)\n"
    "  hubbub version\n"
    "  hubbub help\n"
    "\n"
    "Admin commands take --data DIR (default \"" HB_DEFAULT_DATA_DIR "\") and --json.\n"
    "ORG and PLUGIN are a name or a UUID.\n";

/* ---- argument parsing --------------------------------------------------- */

typedef struct {
  char name[32];
  const char *value;
} opt;

typedef struct {
  const char *pos[MAX_ARGS];
  int npos;
  opt opts[MAX_ARGS];
  int nopts;
  bool json;
  const char *data; /* --data, default "data" */
  bool data_given;  /* serve: only an explicit --data overrides the config file */
} args;

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
  va_list ap;
  fputs("hubbub: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs("\n(run `hubbub help` for usage)\n", stderr);
  return EXIT_USAGE;
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...) {
  va_list ap;
  fputs("hubbub: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return EXIT_FAIL;
}

/*
 * Split argv into positional words and --name VALUE / --name=VALUE options.
 * `allowed` is a space-separated list of option names this command takes
 * (besides --json and --data, which every admin command takes). Returns 0,
 * or EXIT_USAGE after printing why.
 */
static int parse_args(int argc, char **argv, const char *allowed, args *a) {
  memset(a, 0, sizeof *a);
  a->data = HB_DEFAULT_DATA_DIR;
  for (int i = 0; i < argc; i++) {
    const char *s = argv[i];
    if (strcmp(s, "--") == 0) { /* everything after is positional */
      for (i++; i < argc; i++) {
        if (a->npos == MAX_ARGS) return usage_error("too many arguments");
        a->pos[a->npos++] = argv[i];
      }
      break;
    }
    if (strncmp(s, "--", 2) != 0 || s[2] == '\0') {
      if (a->npos == MAX_ARGS) return usage_error("too many arguments");
      a->pos[a->npos++] = s;
      continue;
    }
    char name[64];
    const char *eq = strchr(s + 2, '='), *value = NULL;
    size_t nlen = eq ? (size_t)(eq - s - 2) : strlen(s + 2);
    if (nlen >= sizeof name) return usage_error("unknown option '%s'", s);
    memcpy(name, s + 2, nlen);
    name[nlen] = '\0';
    if (strcmp(name, "json") == 0 && !eq) {
      a->json = true;
      continue;
    }
    /* Whole-word match against the allowed list. */
    bool ok = strcmp(name, "data") == 0;
    for (const char *p = allowed; !ok && p && *p;) {
      const char *q = strchr(p, ' ');
      size_t n = q ? (size_t)(q - p) : strlen(p);
      if (n == nlen && strncmp(p, name, n) == 0) ok = true;
      p = q ? q + 1 : p + n;
    }
    if (!ok) return usage_error("unknown option '--%s'", name);
    if (eq) value = eq + 1;
    else if (i + 1 < argc) value = argv[++i];
    else return usage_error("option '--%s' needs a value", name);
    if (strcmp(name, "data") == 0) {
      if (!*value) return usage_error("--data needs a directory");
      a->data = value;
      a->data_given = true;
      continue;
    }
    for (int k = 0; k < a->nopts; k++)
      if (strcmp(a->opts[k].name, name) == 0) return usage_error("option '--%s' given twice", name);
    if (a->nopts == MAX_ARGS) return usage_error("too many options");
    if (nlen >= sizeof a->opts[0].name) return usage_error("unknown option '--%s'", name);
    memcpy(a->opts[a->nopts].name, name, nlen + 1);
    a->opts[a->nopts++].value = value;
  }
  return 0;
}

static const char *get_opt(const args *a, const char *name) {
  for (int k = 0; k < a->nopts; k++)
    if (strcmp(a->opts[k].name, name) == 0) return a->opts[k].value;
  return NULL;
}

/* ---- output ------------------------------------------------------------- */

/* Print one JSON object on stdout and release it. */
static int emit(json_t *o) {
  int rc = 0;
  if (!o || json_dumpf(o, stdout, JSON_COMPACT | JSON_ENSURE_ASCII) != 0) rc = -1;
  fputc('\n', stdout);
  json_decref(o);
  if (fflush(stdout) != 0) rc = -1;
  return rc == 0 ? 0 : fail("cannot write the output");
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

/* ---- shared lookups ----------------------------------------------------- */

static int open_store(const args *a, hb_store **s) {
  char err[512];
  if (hb_store_open(s, a->data, err, sizeof err) != 0)
    return fail("cannot open the store in '%s': %s", a->data, err);
  return 0;
}

/* The store's one rule for names (hb_store_name_problem), as a usage error. */
static int check_name(const char *what, const char *name) {
  const char *problem = hb_store_name_problem(name);
  return problem ? usage_error("%s name %s", what, problem) : 0;
}

static int find_org(hb_store *s, const char *key, hb_org_row *org) {
  int rc = hb_store_org_find(s, key, org);
  if (rc == 1) return fail("org '%s' not found", key);
  if (rc != 0) return fail("cannot read organizations");
  return 0;
}

static int find_plugin(hb_store *s, const hb_org_row *org, const char *key, hb_plugin_row *p) {
  int rc = hb_store_plugin_find(s, &org->id, key, p);
  if (rc == 1) return fail("plugin '%s' not found in org '%s'", key, org->name);
  if (rc != 0) return fail("cannot read plugins");
  return 0;
}

/* ---- org ---------------------------------------------------------------- */

static int cmd_org_create(hb_store *s, const args *a) {
  hb_org_row org;
  char id[HB_UUID_STR_BYTES];
  int rc = hb_store_org_create(s, a->pos[0], &org);
  if (rc == 1) return fail("organization name '%s' already exists", a->pos[0]);
  if (rc != 0) return fail("cannot create organization '%s'", a->pos[0]);
  if (a->json) return emit(json_pack("{s:o,s:s}", "id", juuid(&org.id), "name", org.name));
  printf("Created organization '%s'\n  id: %s\n", org.name, uuid_str(&org.id, id));
  return 0;
}

static void org_row_json(const hb_org_row *r, void *ud) {
  json_array_append_new(ud, json_pack("{s:o,s:s,s:I}", "id", juuid(&r->id), "name", r->name,
                                      "created_at", (json_int_t)r->created_at));
}

static int cmd_org_list(hb_store *s, const args *a) {
  json_t *arr = json_array();
  if (hb_store_org_list(s, org_row_json, arr) != 0) {
    json_decref(arr);
    return fail("cannot list organizations");
  }
  if (a->json) return emit(json_pack("{s:o}", "organizations", arr));
  if (json_array_size(arr) == 0) printf("No organizations yet: hubbub org create NAME\n");
  else printf("%-36s  %-20s  %s\n", "ID", "CREATED", "NAME");
  size_t i;
  json_t *o;
  json_array_foreach(arr, i, o) {
    char t[32];
    printf("%-36s  %-20s  %s\n", json_string_value(json_object_get(o, "id")),
           time_str(json_integer_value(json_object_get(o, "created_at")), t, sizeof t),
           json_string_value(json_object_get(o, "name")));
  }
  json_decref(arr);
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
    for (const char *c = p; c < q; c++)
      if ((unsigned char)*c < 0x21 || *c == 0x7f) return usage_error("origin '%.*s' has a control character", (int)n, p);
    p = q;
  }
  return 0;
}

static int cmd_plugin_create(hb_store *s, const args *a) {
  hb_org_row org;
  hb_plugin_row p;
  char id[HB_UUID_STR_BYTES], oid[HB_UUID_STR_BYTES];
  const char *origins = get_opt(a, "origins");
  int rc;
  if (origins && strlen(origins) >= sizeof p.allowed_origins)
    return usage_error("--origins is too long (at most %zu bytes)", sizeof p.allowed_origins - 1);
  if (origins && check_origins(origins) != 0) return EXIT_USAGE;
  if ((rc = find_org(s, get_opt(a, "org"), &org)) != 0) return rc;
  rc = hb_store_plugin_create(s, &org.id, a->pos[0], &p);
  if (rc == 1) return fail("plugin name '%s' already exists in org '%s'", a->pos[0], org.name);
  if (rc != 0) return fail("cannot create plugin '%s'", a->pos[0]);
  /* Two statements, not one transaction: a failure here leaves a plugin
   * that accepts any Origin, so say so loudly. */
  if (origins && *origins && hb_store_plugin_set_origins(s, &p.id, origins) != 0) {
    OPENSSL_cleanse(p.signing_secret, sizeof p.signing_secret);
    return fail("plugin '%s' created (id %s) but its origins could not be saved", p.name,
                uuid_str(&p.id, id));
  }
  if (a->json) {
    rc = emit(json_pack("{s:o,s:s,s:o,s:s}", "id", juuid(&p.id), "name", p.name, "organization_id",
                        juuid(&p.org_id), "signing_secret", p.signing_secret));
  } else {
    printf("Created plugin '%s' in organization '%s'\n"
           "  id:              %s\n"
           "  organization_id: %s\n"
           "  allowed origins: %s\n"
           "  signing secret:  %s\n"
           "\n"
           "The signing secret is shown once: store it now. Your backend signs\n"
           "connection tokens (HS256 JWTs) with it; see docs/protocol.md.\n",
           p.name, org.name, uuid_str(&p.id, id), uuid_str(&p.org_id, oid),
           origins && *origins ? origins : "any", p.signing_secret);
    rc = 0;
  }
  OPENSSL_cleanse(p.signing_secret, sizeof p.signing_secret);
  return rc;
}

/* Replace a plugin's Origin allowlist ("" = any Origin). */
static int cmd_plugin_update(hb_store *s, const args *a) {
  hb_org_row org;
  hb_plugin_row p;
  char id[HB_UUID_STR_BYTES];
  const char *origins = get_opt(a, "origins");
  int rc;
  if (!origins) return usage_error("plugin update: --origins is required (\"\" allows any origin)");
  if (strlen(origins) >= sizeof p.allowed_origins)
    return usage_error("--origins is too long (at most %zu bytes)", sizeof p.allowed_origins - 1);
  if (check_origins(origins) != 0) return EXIT_USAGE;
  if ((rc = find_org(s, get_opt(a, "org"), &org)) != 0) return rc;
  if ((rc = find_plugin(s, &org, a->pos[0], &p)) != 0) return rc;
  OPENSSL_cleanse(p.signing_secret, sizeof p.signing_secret);
  if (hb_store_plugin_set_origins(s, &p.id, origins) != 0) return fail("cannot update plugin '%s'", p.name);
  if (a->json)
    return emit(json_pack("{s:o,s:s,s:o,s:s}", "id", juuid(&p.id), "name", p.name, "organization_id",
                          juuid(&p.org_id), "allowed_origins", origins));
  printf("Plugin '%s' (%s) now accepts WebSocket connections from %s\n", p.name, uuid_str(&p.id, id),
         *origins ? origins : "any origin");
  return 0;
}

static void plugin_row_json(const hb_plugin_row *r, void *ud) {
  /* Never the signing secret: it was shown once, at creation. */
  json_array_append_new(ud, json_pack("{s:o,s:s,s:o,s:s,s:I}", "id", juuid(&r->id), "name", r->name,
                                      "organization_id", juuid(&r->org_id), "allowed_origins",
                                      r->allowed_origins, "created_at", (json_int_t)r->created_at));
}

static int cmd_plugin_list(hb_store *s, const args *a) {
  hb_org_row org;
  const char *key = get_opt(a, "org");
  int rc;
  if (key && (rc = find_org(s, key, &org)) != 0) return rc;
  json_t *arr = json_array();
  if (hb_store_plugin_list(s, key ? &org.id : NULL, plugin_row_json, arr) != 0) {
    json_decref(arr);
    return fail("cannot list plugins");
  }
  if (a->json) return emit(json_pack("{s:o}", "plugins", arr));
  if (json_array_size(arr) == 0) printf("No plugins yet: hubbub plugin create --org ORG NAME\n");
  else printf("%-36s  %-36s  %-20s  %s\n", "ID", "ORGANIZATION", "CREATED", "NAME");
  size_t i;
  json_t *o;
  json_array_foreach(arr, i, o) {
    char t[32];
    printf("%-36s  %-36s  %-20s  %s\n", json_string_value(json_object_get(o, "id")),
           json_string_value(json_object_get(o, "organization_id")),
           time_str(json_integer_value(json_object_get(o, "created_at")), t, sizeof t),
           json_string_value(json_object_get(o, "name")));
  }
  json_decref(arr);
  return 0;
}

/* ---- token -------------------------------------------------------------- */

static int cmd_token_create(hb_store *s, const args *a) {
  hb_org_row org;
  hb_plugin_row p;
  hb_token_row t;
  char tok[HB_MAX_API_TOKEN_BYTES + 1], id[HB_UUID_STR_BYTES];
  const char *name = get_opt(a, "name");
  int rc;
  if (name && (rc = check_name("token", name)) != 0) return rc;
  if ((rc = find_org(s, get_opt(a, "org"), &org)) != 0) return rc;
  if ((rc = find_plugin(s, &org, get_opt(a, "plugin"), &p)) != 0) return rc;
  OPENSSL_cleanse(p.signing_secret, sizeof p.signing_secret);
  rc = hb_store_token_create(s, &org.id, &p.id, name, tok, &t);
  if (rc == 1) return fail("token name '%s' already exists for plugin '%s'", name ? name : "", p.name);
  if (rc != 0) return fail("cannot create the token");
  if (a->json) {
    rc = emit(json_pack("{s:o,s:s,s:o,s:o,s:s}", "id", juuid(&t.id), "token", tok, "organization_id",
                        juuid(&t.org_id), "plugin_id", juuid(&t.plugin_id), "name", t.name));
  } else {
    printf("Created API token '%s' for plugin '%s' of organization '%s'\n"
           "  id:    %s\n"
           "  token: %s\n"
           "\n"
           "This token is shown once and only its hash is stored: copy it now.\n"
           "Use it as:  Authorization: Bearer <token>\n"
           "Revoke it:  hubbub token revoke %s\n",
           t.name, p.name, org.name, uuid_str(&t.id, id), tok, id);
    rc = 0;
  }
  OPENSSL_cleanse(tok, sizeof tok);
  return rc;
}

static void token_row_json(const hb_token_row *r, void *ud) {
  /* Never the hash: it is useless to a human and only helps an attacker. */
  json_array_append_new(
      ud, json_pack("{s:o,s:s,s:o,s:o,s:I,s:o}", "id", juuid(&r->id), "name", r->name, "organization_id",
                    juuid(&r->org_id), "plugin_id", juuid(&r->plugin_id), "created_at",
                    (json_int_t)r->created_at,
                    "revoked_at", r->revoked_at ? json_integer(r->revoked_at) : json_null()));
}

static int cmd_token_list(hb_store *s, const args *a) {
  json_t *arr = json_array();
  if (hb_store_token_list(s, token_row_json, arr) != 0) {
    json_decref(arr);
    return fail("cannot list tokens");
  }
  if (a->json) return emit(json_pack("{s:o}", "tokens", arr));
  if (json_array_size(arr) == 0) printf("No API tokens yet: hubbub token create --org ORG --plugin PLUGIN\n");
  else printf("%-36s  %-36s  %-20s  %-20s  %s\n", "ID", "PLUGIN", "CREATED", "REVOKED", "NAME");
  size_t i;
  json_t *o;
  json_array_foreach(arr, i, o) {
    char t1[32], t2[32];
    json_t *rv = json_object_get(o, "revoked_at");
    printf("%-36s  %-36s  %-20s  %-20s  %s\n", json_string_value(json_object_get(o, "id")),
           json_string_value(json_object_get(o, "plugin_id")),
           time_str(json_integer_value(json_object_get(o, "created_at")), t1, sizeof t1),
           json_is_integer(rv) ? time_str(json_integer_value(rv), t2, sizeof t2) : "-",
           json_string_value(json_object_get(o, "name")));
  }
  json_decref(arr);
  return 0;
}

static int cmd_token_revoke(hb_store *s, const args *a) {
  hb_uuid id;
  const char *key = a->pos[0];
  if (!hb_uuid_parse(key, strlen(key), &id)) return usage_error("token ID '%s' is not a UUID", key);
  int rc = hb_store_token_revoke(s, &id);
  if (rc == 1) return fail("token '%s' not found", key);
  if (rc != 0) return fail("cannot revoke token '%s'", key);
  if (a->json) return emit(json_pack("{s:o,s:b}", "id", juuid(&id), "revoked", 1));
  printf("Revoked token %s (a running server stops accepting it within a second)\n", key);
  return 0;
}

/* ---- connection-token --------------------------------------------------- */

static int parse_uuid_opt(const args *a, const char *name, hb_uuid *out) {
  const char *v = get_opt(a, name);
  if (!v) return usage_error("--%s UUID is required", name);
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

static int cmd_conn_token_create(hb_store *s, const args *a) {
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
  if (!*user || strlen(user) > HB_MAX_USER_ID_BYTES)
    return usage_error("--user must be 1 to %d bytes", HB_MAX_USER_ID_BYTES);
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
  if ((rc = find_plugin(s, &org, get_opt(a, "plugin"), &p)) != 0) return rc;
  c.org = org.id;
  c.plugin = p.id;
  c.iat = (int64_t)time(NULL);
  c.exp = c.iat + ttl;
  tok = hb_jwt_mint(&c, p.signing_secret, strlen(p.signing_secret));
  OPENSSL_cleanse(p.signing_secret, sizeof p.signing_secret);
  if (!tok) return fail("cannot mint the connection token");
  if (a->json) {
    rc = emit(json_pack("{s:s,s:I}", "token", tok, "expires_at", (json_int_t)c.exp));
  } else {
    char t[32];
    printf("%s\n(expires %s; connect with GET /api/v1/ws?token=...)\n", tok, time_str(c.exp, t, sizeof t));
    rc = 0;
  }
  hb_free(tok);
  return rc;
}

/* ---- serve -------------------------------------------------------------- */

static int cmd_serve(int argc, char **argv) {
  hb_config cfg;
  args a;
  char err[512];
  const char *v;
  int rc = parse_args(argc, argv, "listen threads config redis redis-password web log-level", &a);
  if (rc != 0) return rc;
  if (a.npos > 0) {
    rc = usage_error("serve takes no argument '%s'", a.pos[0]);
    goto out;
  }
  if (a.json) {
    rc = usage_error("serve does not take --json");
    goto out;
  }
  /* Defaults, then the file, then flags: the most specific wins. */
  hb_config_defaults(&cfg);
  if ((v = get_opt(&a, "config")) && hb_config_load_file(&cfg, v, err, sizeof err) != 0) {
    rc = fail("bad config file: %s", err);
    goto out;
  }
  if ((v = get_opt(&a, "listen")) && hb_config_parse_listen(v, cfg.host, sizeof cfg.host, &cfg.port) != 0) {
    rc = usage_error("--listen '%s' must be HOST:PORT, [IPv6]:PORT or :PORT", v);
    goto out;
  }
  if (a.data_given) {
    if (strlen(a.data) >= sizeof cfg.data_dir) {
      rc = usage_error("--data is too long");
      goto out;
    }
    snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", a.data);
  }
  if ((v = get_opt(&a, "threads"))) {
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < 0 || n > HB_MAX_THREADS) {
      rc = usage_error("--threads must be 0 (one per core) to %d", HB_MAX_THREADS);
      goto out;
    }
    cfg.threads = (int)n;
  }
#define COPY_FLAG(flag, field)                                                     \
  if ((v = get_opt(&a, flag))) {                                                   \
    if (strlen(v) >= sizeof cfg.field) {                                           \
      rc = usage_error("--%s is too long", flag);                                  \
      goto out;                                                                    \
    }                                                                              \
    snprintf(cfg.field, sizeof cfg.field, "%s", v);                                \
  }
  COPY_FLAG("redis", redis_url)
  COPY_FLAG("redis-password", redis_password)
  COPY_FLAG("log-level", log_level)
#undef COPY_FLAG
  if (strcmp(cfg.log_level, "debug") && strcmp(cfg.log_level, "info") && strcmp(cfg.log_level, "warn") &&
      strcmp(cfg.log_level, "error")) {
    rc = usage_error("--log-level must be debug, info, warn or error");
    goto out;
  }
  return hb_server_run(&cfg);
out:
  return rc;
}

/* The admin HTTP API's credential: a random token, of which the server only
 * keeps the SHA-256 (config key admin_token_sha256). Printed once. */
static int cmd_admin_token_create(bool json) {
  unsigned char raw[HB_API_TOKEN_RANDOM_BYTES];
  if (RAND_bytes(raw, sizeof raw) != 1) {
    fprintf(stderr, "hubbub: no randomness available\n");
    return EXIT_FAIL;
  }
  char tok[8 + 2 * HB_API_TOKEN_RANDOM_BYTES + 1] = "hba_";
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < sizeof raw; i++) {
    tok[4 + 2 * i] = hex[raw[i] >> 4];
    tok[5 + 2 * i] = hex[raw[i] & 15];
  }
  tok[4 + 2 * sizeof raw] = '\0';
  uint8_t h[HB_TOKEN_HASH_BYTES];
  hb_store_hash_token(tok, strlen(tok), h);
  char hh[2 * HB_TOKEN_HASH_BYTES + 1];
  for (size_t i = 0; i < sizeof h; i++) {
    hh[2 * i] = hex[h[i] >> 4];
    hh[2 * i + 1] = hex[h[i] & 15];
  }
  hh[sizeof hh - 1] = '\0';
  if (json) {
    printf("{\"token\":\"%s\",\"admin_token_sha256\":\"%s\"}\n", tok, hh);
  } else {
    printf("admin token (shown once): %s\n", tok);
    printf("add to the config file:   \"admin_token_sha256\": \"%s\"\n", hh);
  }
  return 0;
}

/* ---- dispatch ----------------------------------------------------------- */

typedef struct {
  const char *group, *verb;
  const char *options;  /* allowed besides --data and --json */
  const char *required; /* required options, space separated */
  int npos;             /* exact number of positional arguments */
  const char *posname;  /* what the positional argument is, for usage errors */
  int (*run)(hb_store *, const args *);
} command;

static const command commands[] = {
    {"org", "create", "", "", 1, "NAME", cmd_org_create},
    {"org", "list", "", "", 0, NULL, cmd_org_list},
    {"plugin", "create", "org origins", "org", 1, "NAME", cmd_plugin_create},
    {"plugin", "list", "org", "", 0, NULL, cmd_plugin_list},
    {"plugin", "update", "org origins", "org", 1, "PLUGIN", cmd_plugin_update},
    {"token", "create", "org plugin name", "org plugin", 0, NULL, cmd_token_create},
    {"token", "list", "", "", 0, NULL, cmd_token_list},
    {"token", "revoke", "", "", 1, "ID", cmd_token_revoke},
    {"connection-token", "create", "org plugin event session user scopes ttl info", "org plugin event session", 0,
     NULL, cmd_conn_token_create},
};

static int run_admin(const command *cmd, int argc, char **argv) {
  args a;
  hb_store *s = NULL;
  int rc = parse_args(argc, argv, cmd->options, &a);
  if (rc != 0) return rc;
  if (a.npos != cmd->npos) {
    if (a.npos > cmd->npos) rc = usage_error("%s %s: unexpected argument '%s'", cmd->group, cmd->verb, a.pos[cmd->npos]);
    else rc = usage_error("%s %s: missing %s", cmd->group, cmd->verb, cmd->posname);
    goto out;
  }
  for (const char *p = cmd->required; *p;) {
    const char *q = strchr(p, ' ');
    size_t n = q ? (size_t)(q - p) : strlen(p);
    char name[32];
    snprintf(name, sizeof name, "%.*s", (int)n, p);
    const char *v = get_opt(&a, name);
    if (!v || !*v) {
      rc = usage_error("%s %s: --%s is required", cmd->group, cmd->verb, name);
      goto out;
    }
    p = q ? q + 1 : p + n;
  }
  if (cmd->npos == 1 && strcmp(cmd->verb, "create") == 0 &&
      (rc = check_name(strcmp(cmd->group, "org") == 0 ? "organization" : cmd->group, a.pos[0])) != 0)
    goto out;
  /* The admin commands' output is their result; routine log lines (a
   * migration) would only get in the way of scripts reading stderr. */
  hb_log_set_level(HB_LOG_WARN);
  if ((rc = open_store(&a, &s)) != 0) goto out;
  rc = cmd->run(s, &a);
out:
  hb_store_close(s);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs(usage_text, stderr);
    return EXIT_USAGE;
  }
  const char *group = argv[1];
  if (!strcmp(group, "help") || !strcmp(group, "--help") || !strcmp(group, "-h")) {
    fputs(usage_text, stdout);
    return 0;
  }
  if (!strcmp(group, "version") || !strcmp(group, "--version")) {
    printf("hubbub %s\n", HB_VERSION);
    return 0;
  }
  if (!strcmp(group, "serve")) return cmd_serve(argc - 2, argv + 2);
  if (!strcmp(group, "admin-token")) {
    if (argc < 3 || strcmp(argv[2], "create") != 0) return usage_error("'admin-token' needs a subcommand: create");
    return cmd_admin_token_create(argc > 3 && !strcmp(argv[3], "--json"));
  }
  bool known_group = false;
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
    if (strcmp(commands[i].group, group) != 0) continue;
    known_group = true;
    if (argc >= 3 && !strcmp(commands[i].verb, argv[2])) return run_admin(&commands[i], argc - 3, argv + 3);
  }
  if (known_group)
    return usage_error("'%s' needs a subcommand: %s", group,
                       !strcmp(group, "org") ? "create or list"
                       : !strcmp(group, "plugin") ? "create, list or update"
                       : !strcmp(group, "token") ? "create, list or revoke"
                                                 : "create");
  return usage_error("unknown command '%s'", group);
}
