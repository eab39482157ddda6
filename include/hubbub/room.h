/*
 * room.h - the v1 room protocol on an open WebSocket: welcome, subscribe,
 * unsubscribe, publish, ping (docs/protocol.md).
 */
#ifndef HUBBUB_ROOM_H
#define HUBBUB_ROOM_H

#include <stddef.h>

#include "hubbub/conn.h"
#include "hubbub/jwt.h"

/** Send the welcome message to a freshly upgraded connection. */
void hb_room_welcome(hb_conn *c, const hb_conn_claims *claims);
/** Handle one complete, UTF-8 valid text message. */
void hb_room_on_text(hb_conn *c, const char *msg, size_t len);

#endif
