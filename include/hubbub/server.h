/*
 * server.h - `hubbub serve`: start the I/O threads and serve until SIGTERM
 * or SIGINT. Prints "hubbub listening on http://HOST:PORT" to stderr once
 * every thread listens (with port 0, the port the kernel chose).
 */
#ifndef HUBBUB_SERVER_H
#define HUBBUB_SERVER_H

#include "hubbub/config.h"

#include <stddef.h>

/** Run the server; returns the process exit code (0 after a clean shutdown). */
int hb_server_run(const hb_config *cfg);

/** The per-connection room the layers need (hb_io_hooks.conn_ext_bytes):
 * the largest of the protocols' states. */
size_t hb_server_conn_ext_bytes(void);

#endif
