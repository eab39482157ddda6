/* static.c - the embedded SDK (/sdk/...) and demo room (/demo, /demo/...). */
#include <stdio.h>
#include <string.h>

#include "hubbub/router.h"
#include "hubbub/static_files.h"

static const hb_static_file *lookup(const char *path, size_t len) {
  /* /demo and /demo/ are the demo page itself. */
  if ((len == 5 && memcmp(path, "/demo", 5) == 0) || (len == 6 && memcmp(path, "/demo/", 6) == 0)) {
    path = "/demo/demo.html";
    len = strlen(path);
  }
  for (size_t i = 0; i < hb_static_files_count; i++) {
    const hb_static_file *f = &hb_static_files[i];
    if (strlen(f->path) == len && memcmp(f->path, path, len) == 0) return f;
  }
  return NULL;
}

bool hb_api_static_exists(const char *path, size_t len) { return lookup(path, len) != NULL; }

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static const char *content_type(const char *path) {
  if (ends_with(path, ".d.ts") || ends_with(path, ".d.mts")) return "application/typescript; charset=utf-8";
  if (ends_with(path, ".js") || ends_with(path, ".mjs")) return "text/javascript; charset=utf-8";
  if (ends_with(path, ".html")) return "text/html; charset=utf-8";
  if (ends_with(path, ".css")) return "text/css; charset=utf-8";
  if (ends_with(path, ".svg")) return "image/svg+xml";
  if (ends_with(path, ".png")) return "image/png";
  if (ends_with(path, ".json")) return "application/json";
  return "application/octet-stream";
}

void hb_api_static(hb_conn *c, hb_http_req *req) {
  size_t plen = strcspn(req->url, "?#");
  const hb_static_file *f = lookup(req->url, plen);
  if (!f) { /* the router checked; keep the handler safe on its own */
    hb_error e;
    hb_error_set(&e, HB_E_NOT_FOUND, NULL, NULL);
    hb_http_respond_error(c, &e, NULL, false);
    return;
  }
  /* Revalidate with the content hash: always fresh after an upgrade, cheap
   * otherwise. CORS open so plugins on any origin can import the module. */
  char extra[256];
  snprintf(extra, sizeof extra,
           "ETag: %s\r\nCache-Control: public, max-age=300, must-revalidate\r\n"
           "Access-Control-Allow-Origin: *\r\nX-Content-Type-Options: nosniff\r\n",
           f->etag);
  const char *inm = req->hdr[HB_H_IF_NONE_MATCH];
  if (inm && strstr(inm, f->etag)) {
    hb_http_respond(c, 304, NULL, extra, NULL, 0, false);
    return;
  }
  /* Headers as one chunk, the embedded body by reference: no copy. */
  bool head = req->method == HTTP_HEAD;
  hb_http_respond(c, 200, content_type(f->path), extra, NULL, f->len, false);
  if (!head && c->state != HB_CONN_CLOSED) hb_conn_send_static(c, (const char *)f->data, f->len);
}
