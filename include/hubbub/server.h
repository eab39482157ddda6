/*
 * server.h - `hubbub serve`: start the I/O threads and serve until SIGTERM
 * or SIGINT. Prints "hubbub listening on http://HOST:PORT" to stderr once
 * every thread listens (with port 0, the port the kernel chose).
 */
#ifndef HUBBUB_SERVER_H
#define HUBBUB_SERVER_H

#include "hubbub/config.h"

/** Run the server; returns the process exit code (0 after a clean shutdown). */
int hb_server_run(const hb_config *cfg);

#endif
