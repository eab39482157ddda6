/*
 * dump.c - the store as one JSON document: export (hb_store_read + lists) and
 * a strict import (validated here, written by hb_store_import in one
 * transaction). No SQL here: that stays in store.c.
 */
#include "hubbub/dump.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hubbub/alloc.h"
#include "hubbub/hex.h"
#include "hubbub/limits.h"

/* ---- export ---------------------------------------------------------------- */

static json_t *juuid(const hb_uuid *u) {
  char b[HB_UUID_STR_BYTES];
  hb_uuid_format(u, b);
  return json_string(b);
}

static json_t *jtime(int64_t t) { return t ? json_integer((json_int_t)t) : json_null(); }

typedef struct {
  bool secrets;
  json_t *orgs, *plugins, *tokens, *revocations;
} export_ctx;

static void ex_org(const hb_org_row *r, void *ud) {
  export_ctx *x = ud;
  json_array_append_new(x->orgs, json_pack("{s:o,s:s,s:I}", "id", juuid(&r->id), "name", r->name, "created_at",
                                           (json_int_t)r->created_at));
}

static void ex_plugin(const hb_plugin_row *r, void *ud) {
  export_ctx *x = ud;
  json_t *p = json_pack("{s:o,s:o,s:s,s:s,s:I}", "id", juuid(&r->id), "organization_id", juuid(&r->org_id), "name",
                        r->name, "allowed_origins", r->allowed_origins, "created_at", (json_int_t)r->created_at);
  if (x->secrets) {
    json_t *prev = r->previous_secret[0]
                       ? json_pack("{s:s,s:s,s:o}", "kid", r->previous_kid, "secret", r->previous_secret,
                                   "retire_at", jtime(r->previous_retire_at))
                       : json_null();
    json_object_set_new(p, "signing",
                        json_pack("{s:s,s:s,s:I,s:o}", "kid", r->signing_kid, "secret", r->signing_secret,
                                  "created_at", (json_int_t)r->secret_created_at, "previous", prev));
  }
  json_array_append_new(x->plugins, p);
}

static void ex_token(const hb_token_row *r, void *ud) {
  export_ctx *x = ud;
  static const char hex[] = "0123456789abcdef";
  char h[2 * HB_TOKEN_HASH_BYTES + 1];
  for (size_t i = 0; i < HB_TOKEN_HASH_BYTES; i++) {
    h[2 * i] = hex[r->hash[i] >> 4];
    h[2 * i + 1] = hex[r->hash[i] & 15];
  }
  h[sizeof h - 1] = '\0';
  json_array_append_new(x->tokens,
                        json_pack("{s:o,s:o,s:o,s:s,s:s,s:I,s:o,s:o}", "id", juuid(&r->id), "organization_id",
                                  juuid(&r->org_id), "plugin_id", juuid(&r->plugin_id), "name", r->name,
                                  "token_sha256", h, "created_at", (json_int_t)r->created_at, "revoked_at",
                                  jtime(r->revoked_at), "expires_at", jtime(r->expires_at)));
}

static void ex_revocation(const hb_revocation_row *r, void *ud) {
  export_ctx *x = ud;
  json_array_append_new(x->revocations,
                        json_pack("{s:o,s:s,s:I,s:I}", "plugin_id", juuid(&r->plugin_id), "user_id", r->user_id,
                                  "revoked_before", (json_int_t)r->revoked_before, "created_at",
                                  (json_int_t)r->created_at));
}

static int export_in_tx(hb_store *s, void *ud) {
  export_ctx *x = ud;
  int rc = hb_store_org_list(s, ex_org, x);
  if (rc == 0) rc = hb_store_plugin_list(s, NULL, ex_plugin, x);
  if (rc == 0) rc = hb_store_token_list(s, ex_token, x);
  if (rc == 0) rc = hb_store_revocation_list(s, NULL, ex_revocation, x);
  return rc;
}

int hb_dump_export(hb_store *s, bool include_secrets, json_t **out) {
  export_ctx x = {include_secrets, json_array(), json_array(), json_array(), json_array()};
  int version = 0;
  *out = NULL;
  int rc = hb_store_read(s, export_in_tx, &x);
  if (rc == 0) rc = hb_store_schema_version(s, &version);
  if (rc != 0) {
    json_decref(x.orgs), json_decref(x.plugins), json_decref(x.tokens), json_decref(x.revocations);
    return rc;
  }
  *out = json_pack("{s:s,s:i,s:i,s:I,s:b,s:o,s:o,s:o,s:o}", "format", HB_DUMP_FORMAT, "format_version",
                   HB_DUMP_FORMAT_VERSION, "schema_version", version, "exported_at", (json_int_t)time(NULL),
                   "includes_secrets", include_secrets, "organizations", x.orgs, "plugins", x.plugins,
                   "api_tokens", x.tokens, "revocations", x.revocations);
  return *out ? 0 : HB_STORE_ERROR;
}

/* ---- validation ------------------------------------------------------------ */

typedef struct {
  char *err;
  size_t errlen;
} vctx;

static int bad(vctx *v, const char *ptr, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(vctx *v, const char *ptr, const char *fmt, ...) {
  char why[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  if (v->err && v->errlen) snprintf(v->err, v->errlen, "%s: %s", *ptr ? ptr : "/", why);
  return 1;
}

/* RFC 6901: "~" is written "~0" and "/" is written "~1" in a pointer. */
static void ptr_join(char *out, size_t outlen, const char *base, const char *key) {
  size_t o = (size_t)snprintf(out, outlen, "%s/", base);
  for (const char *k = key; *k && o + 3 < outlen; k++) {
    if (*k == '~' || *k == '/') {
      out[o++] = '~';
      out[o++] = *k == '~' ? '0' : '1';
    } else {
      out[o++] = *k;
    }
  }
  if (o < outlen) out[o] = '\0';
}

/* Refuse any member not in `allowed` (NULL-terminated). */
static int only(vctx *v, json_t *obj, const char *base, const char *const *allowed) {
  const char *key;
  json_t *val;
  json_object_foreach(obj, key, val) {
    bool ok = false;
    for (const char *const *a = allowed; *a && !ok; a++) ok = strcmp(*a, key) == 0;
    if (!ok) {
      char p[160];
      ptr_join(p, sizeof p, base, key);
      return bad(v, p, "unknown field");
    }
  }
  return 0;
}

static json_t *member(vctx *v, json_t *obj, const char *base, const char *key, char *p, size_t plen, int *rc) {
  json_t *m = json_object_get(obj, key);
  ptr_join(p, plen, base, key);
  *rc = m ? 0 : bad(v, p, "missing");
  return m;
}

/* A string of 1..max bytes without control characters. */
static int text(vctx *v, json_t *obj, const char *base, const char *key, size_t min, size_t max, char *out,
                size_t outlen) {
  char p[160];
  int rc;
  json_t *m = member(v, obj, base, key, p, sizeof p, &rc);
  if (rc) return rc;
  if (!json_is_string(m)) return bad(v, p, "must be a string");
  size_t n = json_string_length(m);
  const char *s = json_string_value(m);
  if (n < min || n > max || n >= outlen)
    return min == max ? bad(v, p, "must be exactly %zu bytes", min) : bad(v, p, "must be %zu to %zu bytes", min, max);
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return bad(v, p, "must not contain control characters");
  memcpy(out, s, n + 1);
  return 0;
}

static int name(vctx *v, json_t *obj, const char *base, char *out, size_t outlen) {
  hb_uuid tmp;
  int rc = text(v, obj, base, "name", 1, HB_MAX_NAME_BYTES, out, outlen);
  if (rc) return rc;
  if (hb_uuid_parse(out, strlen(out), &tmp)) {
    char p[160];
    ptr_join(p, sizeof p, base, "name");
    return bad(v, p, "a name must not look like a UUID (names and ids are both accepted as keys)");
  }
  return 0;
}

static int uuid(vctx *v, json_t *obj, const char *base, const char *key, hb_uuid *out) {
  char p[160];
  int rc;
  json_t *m = member(v, obj, base, key, p, sizeof p, &rc);
  if (rc) return rc;
  if (!json_is_string(m) || !hb_uuid_parse(json_string_value(m), json_string_length(m), out))
    return bad(v, p, "must be a UUID string");
  return 0;
}

/* Unix seconds, 0..2^53; null (read as 0) when nullable. */
static int when(vctx *v, json_t *obj, const char *base, const char *key, bool nullable, int64_t *out) {
  char p[160];
  int rc;
  json_t *m = member(v, obj, base, key, p, sizeof p, &rc);
  *out = 0;
  if (rc) return rc;
  if (nullable && json_is_null(m)) return 0;
  if (!json_is_integer(m) || json_integer_value(m) < (nullable ? 1 : 0) ||
      json_integer_value(m) > 9007199254740992LL)
    return bad(v, p, nullable ? "must be a positive integer (Unix seconds) or null"
                              : "must be a non-negative integer (Unix seconds)");
  *out = (int64_t)json_integer_value(m);
  return 0;
}

static int kid(vctx *v, json_t *obj, const char *base, char *out, size_t outlen) {
  int rc = text(v, obj, base, "kid", 1, HB_SIGNING_KID_MAX_BYTES, out, outlen);
  if (rc) return rc;
  if (strspn(out, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != strlen(out)) {
    char p[160];
    ptr_join(p, sizeof p, base, "kid");
    return bad(v, p, "must be letters, digits, '-' and '_'");
  }
  return 0;
}

static int secret(vctx *v, json_t *obj, const char *base, char *out, size_t outlen) {
  int rc = text(v, obj, base, "secret", 1, HB_SECRET_MAX_BYTES, out, outlen);
  if (rc) return rc;
  for (const char *c = out; *c; c++)
    if ((unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e) {
      char p[160];
      ptr_join(p, sizeof p, base, "secret");
      return bad(v, p, "must be printable ASCII without spaces");
    }
  return 0;
}

static int array(vctx *v, json_t *doc, const char *key, json_t **out) {
  char p[160];
  int rc;
  *out = member(v, doc, "", key, p, sizeof p, &rc);
  if (rc) return rc;
  if (!json_is_array(*out)) return bad(v, p, "must be an array");
  if (json_array_size(*out) > HB_DUMP_MAX_ENTRIES) return bad(v, p, "more than %d entries", HB_DUMP_MAX_ENTRIES);
  return 0;
}

/* Each element an object: its pointer in `base`. */
static int element(vctx *v, const char *list, size_t i, json_t *e, char *base, size_t baselen) {
  snprintf(base, baselen, "/%s/%zu", list, i);
  return json_is_object(e) ? 0 : bad(v, base, "must be an object");
}

/* The index of `id` among the first n plugins / orgs, or -1. */
static long find_org(const hb_org_row *o, size_t n, const hb_uuid *id) {
  for (size_t i = 0; i < n; i++)
    if (hb_uuid_eq(&o[i].id, id)) return (long)i;
  return -1;
}
static long find_plugin(const hb_plugin_row *p, size_t n, const hb_uuid *id) {
  for (size_t i = 0; i < n; i++)
    if (hb_uuid_eq(&p[i].id, id)) return (long)i;
  return -1;
}

static int read_orgs(vctx *v, json_t *arr, hb_org_row *out) {
  static const char *const keys[] = {"id", "name", "created_at", NULL};
  char b[96];
  size_t i;
  json_t *e;
  json_array_foreach(arr, i, e) {
    hb_org_row *o = &out[i];
    int rc;
    if ((rc = element(v, "organizations", i, e, b, sizeof b)) || (rc = only(v, e, b, keys)) ||
        (rc = uuid(v, e, b, "id", &o->id)) || (rc = name(v, e, b, o->name, sizeof o->name)) ||
        (rc = when(v, e, b, "created_at", false, &o->created_at)))
      return rc;
    if (find_org(out, i, &o->id) >= 0) return bad(v, b, "the id appears twice in the document");
  }
  return 0;
}

static int read_signing(vctx *v, json_t *e, const char *b, hb_plugin_row *p) {
  static const char *const keys[] = {"kid", "secret", "created_at", "previous", NULL};
  static const char *const prev_keys[] = {"kid", "secret", "retire_at", NULL};
  char sb[128], pb[160];
  int rc;
  json_t *sg = member(v, e, b, "signing", sb, sizeof sb, &rc);
  if (rc) return bad(v, sb, "missing: the document says includes_secrets");
  if (!json_is_object(sg)) return bad(v, sb, "must be an object");
  if ((rc = only(v, sg, sb, keys)) || (rc = kid(v, sg, sb, p->signing_kid, sizeof p->signing_kid)) ||
      (rc = secret(v, sg, sb, p->signing_secret, sizeof p->signing_secret)) ||
      (rc = when(v, sg, sb, "created_at", false, &p->secret_created_at)))
    return rc;
  json_t *pv = member(v, sg, sb, "previous", pb, sizeof pb, &rc);
  if (rc) return rc;
  if (json_is_null(pv)) return 0;
  if (!json_is_object(pv)) return bad(v, pb, "must be an object or null");
  if ((rc = only(v, pv, pb, prev_keys)) || (rc = kid(v, pv, pb, p->previous_kid, sizeof p->previous_kid)) ||
      (rc = secret(v, pv, pb, p->previous_secret, sizeof p->previous_secret)) ||
      (rc = when(v, pv, pb, "retire_at", true, &p->previous_retire_at)))
    return rc;
  if (!strcmp(p->previous_kid, p->signing_kid)) return bad(v, pb, "the previous kid equals the current one");
  return 0;
}

static int read_plugins(vctx *v, json_t *arr, bool secrets, const hb_org_row *orgs, size_t norgs,
                        hb_plugin_row *out) {
  static const char *const keys[] = {"id", "organization_id", "name", "allowed_origins", "created_at", "signing", NULL};
  char b[96];
  size_t i;
  json_t *e;
  json_array_foreach(arr, i, e) {
    hb_plugin_row *p = &out[i];
    int rc;
    if ((rc = element(v, "plugins", i, e, b, sizeof b)) || (rc = only(v, e, b, keys)) ||
        (rc = uuid(v, e, b, "id", &p->id)) || (rc = uuid(v, e, b, "organization_id", &p->org_id)) ||
        (rc = name(v, e, b, p->name, sizeof p->name)) ||
        (rc = text(v, e, b, "allowed_origins", 0, sizeof p->allowed_origins - 1, p->allowed_origins,
                   sizeof p->allowed_origins)) ||
        (rc = when(v, e, b, "created_at", false, &p->created_at)))
      return rc;
    if (find_plugin(out, i, &p->id) >= 0) return bad(v, b, "the id appears twice in the document");
    if (find_org(orgs, norgs, &p->org_id) < 0) {
      char pp[128];
      ptr_join(pp, sizeof pp, b, "organization_id");
      return bad(v, pp, "no such organization in the document");
    }
    if (secrets) {
      if ((rc = read_signing(v, e, b, p))) return rc;
    } else if (json_object_get(e, "signing")) {
      char pp[128];
      ptr_join(pp, sizeof pp, b, "signing");
      return bad(v, pp, "present, but the document says includes_secrets is false");
    }
  }
  return 0;
}

static int read_tokens(vctx *v, json_t *arr, const hb_plugin_row *plugins, size_t nplugins, hb_token_row *out) {
  static const char *const keys[] = {"id",         "organization_id", "plugin_id",  "name", "token_sha256",
                                     "created_at", "revoked_at",      "expires_at", NULL};
  char b[96], hex[2 * HB_TOKEN_HASH_BYTES + 1];
  size_t i;
  json_t *e;
  json_array_foreach(arr, i, e) {
    hb_token_row *t = &out[i];
    int rc;
    if ((rc = element(v, "api_tokens", i, e, b, sizeof b)) || (rc = only(v, e, b, keys)) ||
        (rc = uuid(v, e, b, "id", &t->id)) || (rc = uuid(v, e, b, "organization_id", &t->org_id)) ||
        (rc = uuid(v, e, b, "plugin_id", &t->plugin_id)) ||
        (rc = text(v, e, b, "name", 1, HB_MAX_NAME_BYTES, t->name, sizeof t->name)) ||
        (rc = text(v, e, b, "token_sha256", 2 * HB_TOKEN_HASH_BYTES, 2 * HB_TOKEN_HASH_BYTES, hex, sizeof hex)) ||
        (rc = when(v, e, b, "created_at", false, &t->created_at)) ||
        (rc = when(v, e, b, "revoked_at", true, &t->revoked_at)) ||
        (rc = when(v, e, b, "expires_at", true, &t->expires_at)))
      return rc;
    for (size_t k = 0; k < HB_TOKEN_HASH_BYTES; k++) {
      int hi = hb_hexval(hex[2 * k]), lo = hb_hexval(hex[2 * k + 1]);
      if (hi < 0 || lo < 0) {
        char pp[128];
        ptr_join(pp, sizeof pp, b, "token_sha256");
        return bad(v, pp, "must be 64 hexadecimal digits");
      }
      t->hash[k] = (uint8_t)(hi << 4 | lo);
    }
    for (size_t k = 0; k < i; k++)
      if (hb_uuid_eq(&out[k].id, &t->id)) return bad(v, b, "the id appears twice in the document");
    long pi = find_plugin(plugins, nplugins, &t->plugin_id);
    if (pi < 0 || !hb_uuid_eq(&plugins[pi].org_id, &t->org_id)) {
      char pp[128];
      ptr_join(pp, sizeof pp, b, "plugin_id");
      return bad(v, pp, pi < 0 ? "no such plugin in the document" : "the plugin is not in the token's organization");
    }
  }
  return 0;
}

static int read_revocations(vctx *v, json_t *arr, const hb_plugin_row *plugins, size_t nplugins,
                            hb_revocation_row *out) {
  static const char *const keys[] = {"plugin_id", "user_id", "revoked_before", "created_at", NULL};
  char b[96];
  size_t i;
  json_t *e;
  json_array_foreach(arr, i, e) {
    hb_revocation_row *r = &out[i];
    int rc;
    if ((rc = element(v, "revocations", i, e, b, sizeof b)) || (rc = only(v, e, b, keys)) ||
        (rc = uuid(v, e, b, "plugin_id", &r->plugin_id)) ||
        (rc = text(v, e, b, "user_id", 1, HB_MAX_USER_ID_BYTES, r->user_id, sizeof r->user_id)) ||
        (rc = when(v, e, b, "revoked_before", false, &r->revoked_before)) ||
        (rc = when(v, e, b, "created_at", false, &r->created_at)))
      return rc;
    if (find_plugin(plugins, nplugins, &r->plugin_id) < 0) {
      char pp[128];
      ptr_join(pp, sizeof pp, b, "plugin_id");
      return bad(v, pp, "no such plugin in the document");
    }
    for (size_t k = 0; k < i; k++)
      if (hb_uuid_eq(&out[k].plugin_id, &r->plugin_id) && !strcmp(out[k].user_id, r->user_id))
        return bad(v, b, "this plugin and user appear twice in the document");
  }
  return 0;
}

/* Nesting above `max` levels of [ and {, counted outside strings, so that
 * a deep "[[[[..." never reaches jansson's recursive parser. */
static bool too_deep(const char *p, size_t n, int max) {
  int depth = 0;
  bool in_str = false;
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    if (in_str) {
      if (c == '\\') i++;
      else if (c == '"') in_str = false;
    } else if (c == '"') {
      in_str = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max) return true;
    } else if (c == ']' || c == '}') {
      depth--;
    }
  }
  return false;
}

int hb_dump_import(hb_store *s, const char *text_in, size_t len, hb_store_import_result *res, char *errbuf,
                   size_t errlen) {
  static const char *const keys[] = {"format",   "format_version", "schema_version", "exported_at", "includes_secrets",
                                     "organizations", "plugins",   "api_tokens",     "revocations", NULL};
  vctx v = {errbuf, errlen};
  json_error_t je;
  json_t *doc = NULL, *orgs_j, *plugins_j, *tokens_j, *revs_j, *m;
  hb_org_row *orgs = NULL;
  hb_plugin_row *plugins = NULL;
  hb_token_row *tokens = NULL;
  hb_revocation_row *revs = NULL;
  char p[64];
  size_t no = 0, np = 0, nt = 0, nr = 0;
  int rc = 1;
  memset(res, 0, sizeof *res);
  if (errbuf && errlen) errbuf[0] = '\0';

  if (len > HB_DUMP_MAX_BYTES) return bad(&v, "", "the document is over %d bytes", HB_DUMP_MAX_BYTES);
  if (too_deep(text_in, len, HB_DUMP_MAX_DEPTH))
    return bad(&v, "", "the document nests deeper than %d levels", HB_DUMP_MAX_DEPTH);
  doc = json_loadb(text_in, len, JSON_REJECT_DUPLICATES, &je);
  if (!doc) {
    if (errbuf && errlen)
      snprintf(errbuf, errlen, "not valid JSON (line %d, column %d): %s", je.line, je.column, je.text);
    return 1;
  }
  if (!json_is_object(doc)) {
    bad(&v, "", "the document must be a JSON object");
    goto out;
  }
  if (only(&v, doc, "", keys)) goto out;
  m = member(&v, doc, "", "format", p, sizeof p, &rc);
  if (rc) goto out;
  if (!json_is_string(m) || strcmp(json_string_value(m), HB_DUMP_FORMAT) != 0) {
    rc = bad(&v, p, "must be \"%s\"", HB_DUMP_FORMAT);
    goto out;
  }
  m = member(&v, doc, "", "format_version", p, sizeof p, &rc);
  if (rc) goto out;
  if (!json_is_integer(m) || json_integer_value(m) != HB_DUMP_FORMAT_VERSION) {
    rc = bad(&v, p, "this hubbub reads format_version %d", HB_DUMP_FORMAT_VERSION);
    goto out;
  }
  m = member(&v, doc, "", "schema_version", p, sizeof p, &rc);
  if (rc) goto out;
  if (!json_is_integer(m) || json_integer_value(m) < 1) {
    rc = bad(&v, p, "must be a positive integer");
    goto out;
  }
  if (json_integer_value(m) > hb_store_schema_latest()) {
    rc = bad(&v, p, "exported by a newer hubbub (schema version %lld, this one knows %d): upgrade hubbub",
             (long long)json_integer_value(m), hb_store_schema_latest());
    goto out;
  }
  int64_t exported_at;
  if ((rc = when(&v, doc, "", "exported_at", false, &exported_at))) goto out;
  m = member(&v, doc, "", "includes_secrets", p, sizeof p, &rc);
  if (rc) goto out;
  if (!json_is_boolean(m)) {
    rc = bad(&v, p, "must be true or false");
    goto out;
  }
  bool secrets = json_is_true(m);
  if ((rc = array(&v, doc, "organizations", &orgs_j)) || (rc = array(&v, doc, "plugins", &plugins_j)) ||
      (rc = array(&v, doc, "api_tokens", &tokens_j)) || (rc = array(&v, doc, "revocations", &revs_j)))
    goto out;

  no = json_array_size(orgs_j), np = json_array_size(plugins_j), nt = json_array_size(tokens_j),
  nr = json_array_size(revs_j);
  orgs = hb_calloc(no ? no : 1, sizeof *orgs);
  plugins = hb_calloc(np ? np : 1, sizeof *plugins);
  tokens = hb_calloc(nt ? nt : 1, sizeof *tokens);
  revs = hb_calloc(nr ? nr : 1, sizeof *revs);
  if ((rc = read_orgs(&v, orgs_j, orgs)) || (rc = read_plugins(&v, plugins_j, secrets, orgs, no, plugins)) ||
      (rc = read_tokens(&v, tokens_j, plugins, np, tokens)) ||
      (rc = read_revocations(&v, revs_j, plugins, np, revs)))
    goto out;

  hb_store_import_set set = {orgs, no, plugins, np, tokens, nt, revs, nr};
  rc = hb_store_import(s, &set, res);
  if (rc == 1) {
    char b[96], pp[160];
    snprintf(b, sizeof b, "/%s/%zu", res->kind, res->index);
    ptr_join(pp, sizeof pp, b, res->field);
    bad(&v, pp, "%s", res->why);
  } else if (rc != 0 && errbuf && errlen) {
    snprintf(errbuf, errlen, "%s", rc == HB_STORE_UNAVAILABLE ? "the store is unavailable" : "the store failed");
  }
out:
  if (plugins) OPENSSL_cleanse(plugins, (np ? np : 1) * sizeof *plugins);
  hb_free(orgs);
  hb_free(plugins);
  hb_free(tokens);
  hb_free(revs);
  json_decref(doc);
  return rc;
}
