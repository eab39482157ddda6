/*
 * stack.h - an in-process hubbub for the unit tests that need connections.
 *
 * The server side is real: I/O threads (hb_ioset) on 127.0.0.1 with a port
 * the kernel chose, the layers registered as hb_server_run registers them
 * (routes, room protocol, publish core, a broker, a store with an
 * organization, a plugin and an API token in a temporary directory), or only
 * what a test registers itself (its own handler table, its own router). The
 * client side is plain blocking sockets, so a test sees exactly the bytes a
 * client would, and sends exactly the bytes it wants.
 *
 * Connections are made by the test (hbt_attach): a loopback TCP pair whose
 * server end is handed to a chosen I/O thread (hb_conn_new, uv_tcp_open,
 * hb_conn_start), so a test decides which thread owns which connection.
 * Code that must run on an I/O thread (anything touching a connection) runs
 * there through its inbox: hbt_on_io() posts it and waits until it ran.
 *
 * Every wait is bounded by HBT_WAIT_MS and fails the test when it expires;
 * none is an upper bound on how fast anything must be.
 */
#ifndef HBT_STACK_H
#define HBT_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hubbub/broker.h"
#include "hubbub/config.h"
#include "hubbub/conn.h"
#include "hubbub/io.h"
#include "hubbub/jwt.h"
#include "hubbub/store.h"
#include "hubbub/strbuf.h"

/* The longest any single wait of a test may take before it fails. */
#define HBT_WAIT_MS 10000

typedef enum {
  HBT_SERVER, /* the server's layers: router, room protocol, publish core, store */
  HBT_CUSTOM, /* only `hooks` as the test set them; the test registers its own layers */
} hbt_mode;

typedef struct {
  /* Set by hbt_stack_init, changed by the test before hbt_stack_start. */
  hbt_mode mode;
  hb_config cfg;
  int nio;
  hb_io_hooks hooks;  /* HBT_CUSTOM: the test's */
  hb_broker *broker;  /* HBT_SERVER: NULL for the local broker; freed by stop */
  /* Filled by hbt_stack_start. */
  hb_ioset set;
  char dir[64];
  hb_store *store;
  hb_org_row org;
  hb_plugin_row plugin;
  char api_token[HB_MAX_API_TOKEN_BYTES + 1];
} hbt_stack;

/** Defaults: HBT_SERVER, one I/O thread, 127.0.0.1 port 0, flush window 0. */
void hbt_stack_init(hbt_stack *s);
/** Start (fails the test if it cannot). */
void hbt_stack_start(hbt_stack *s);
/** Stop and free everything: close the test's client sockets first. */
void hbt_stack_stop(hbt_stack *s);
static inline hb_io *hbt_io(hbt_stack *s, int i) { return s->set.io[i]; }

/** Run fn(arg) on io's thread and wait until it has run. */
void hbt_on_io(hb_io *io, void (*fn)(void *arg), void *arg);
/** Wait until pred(arg), evaluated on io's thread, is true; `what` names it
 * in the failure. */
void hbt_io_until(hb_io *io, bool (*pred)(void *arg), void *arg, const char *what);

/**
 * A new connection on `io` (on_open of the accept handler has run). Its
 * client end is *client_fd (blocking). rcvbuf, when not 0, is the client
 * socket's SO_RCVBUF, set before connecting (a peer that takes little).
 */
hb_conn *hbt_attach(hb_io *io, int *client_fd, int rcvbuf);

/* --- the client side ------------------------------------------------------- */

/** Write all of p[0..n) (fails the test on error). */
void hbt_send(int fd, const void *p, size_t n);
static inline void hbt_send_str(int fd, const char *s);
/** Read what is there within `ms` into `in` (appending). Returns bytes read,
 * 0 at EOF, -1 when nothing came in time. */
long hbt_recv(int fd, hb_strbuf *in, int ms);
/** Read until `in` holds at least `n` bytes (fails the test on EOF or timeout). */
void hbt_recv_n(int fd, hb_strbuf *in, size_t n);
/** Read until the peer closes; everything read is appended to `in`. */
void hbt_recv_eof(int fd, hb_strbuf *in);
/** Drop the first n bytes of `in`. */
void hbt_consume(hb_strbuf *in, size_t n);

/* An HTTP/1.1 response. */
typedef struct {
  int status;
  char head[4096]; /* status line and headers, NUL-terminated */
  char body[65536];
  size_t body_len;
  size_t len; /* bytes of the whole response */
} hbt_http_resp;

/** Length of the first complete response in p[0..n) (Content-Length
 * framing, none for 1xx/204/304 and HEAD when `head`), 0 when incomplete. */
size_t hbt_http_complete(const char *p, size_t n, bool head);
/** Read one response (from `in`, reading more as needed) and consume it. */
void hbt_recv_http(int fd, hb_strbuf *in, hbt_http_resp *r, bool head);
/** The value of header `name` (case-insensitive) in r->head, or NULL (static buffer). */
const char *hbt_header(const hbt_http_resp *r, const char *name);

/* --- WebSocket, the client side ------------------------------------------- */

/** Send one masked client frame. */
void hbt_ws_send(int fd, uint8_t b0, const void *p, size_t n);
static inline void hbt_ws_text(int fd, const char *s);

typedef struct {
  uint8_t opcode;
  bool fin;
  char payload[65536 + 1]; /* NUL-terminated */
  size_t len;
  uint16_t close_code; /* close frames: the code (1005 when none) */
} hbt_frame;

/** Read one server frame (unmasked, as RFC 6455 5.1 requires) and consume it. */
void hbt_ws_recv(int fd, hb_strbuf *in, hbt_frame *f);
/** The next text frame whose payload holds `needle` (skipping others, which
 * must be text); fails the test on a close or timeout. */
void hbt_ws_recv_text(int fd, hb_strbuf *in, const char *needle, hbt_frame *f);
/** A WebSocket upgrade request for `target`. */
void hbt_ws_upgrade_request(hb_strbuf *out, const char *target);

/* --- room credentials (HBT_SERVER) ----------------------------------------- */

/** Claims for a fresh room of the stack's plugin: all scopes, valid 10 min. */
void hbt_claims(hbt_stack *s, hb_conn_claims *cl);
/** A connection token for `cl`, signed with the plugin's secret (hb_free). */
char *hbt_mint(hbt_stack *s, const hb_conn_claims *cl);
/**
 * A room connection on `io` as a client makes it: a new connection, the
 * upgrade to /api/v1/ws?token=<token for cl>[&query], the 101 and the
 * welcome (into *welcome). Returns the client socket; *conn (may be NULL)
 * is the server's connection.
 */
int hbt_room_open(hbt_stack *s, hb_io *io, const hb_conn_claims *cl, const char *query, hb_strbuf *in,
                  hb_conn **conn, hbt_frame *welcome);

static inline void hbt_send_str(int fd, const char *s) { hbt_send(fd, s, __builtin_strlen(s)); }
static inline void hbt_ws_text(int fd, const char *s) { hbt_ws_send(fd, 0x81, s, __builtin_strlen(s)); }

#endif
