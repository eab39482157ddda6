/*
 * channel_query.h - the query string of the channel-reading GET routes
 * (/api/v1/history, /api/v1/presence): the channel named as a publish's
 * scope object names it, flattened (docs/http-api.md):
 *
 *   ?scope=session&event_id=<uuid>&session_id=<uuid>
 *
 * event_id for event and session, session_id for session. The channel is
 * always in the API token's organization and plugin: a query names no
 * other.
 */
#ifndef HUBBUB_CHANNEL_QUERY_H
#define HUBBUB_CHANNEL_QUERY_H

#include <stdbool.h>
#include <stdint.h>

#include "hubbub/conn.h"
#include "hubbub/http.h"
#include "hubbub/scope.h"
#include "hubbub/uuid.h"

/** Answer `err` with `msg` (400/422...: the status is the error's). */
void hb_channel_query_refuse(hb_conn *c, hb_err err, const char *msg);
/**
 * scope, event_id and session_id of the request's query: true with them
 * filled (unused ids zero), or false after answering the error
 * (missing_field, invalid_scope, invalid_uuid).
 */
bool hb_channel_query_scope(hb_conn *c, const hb_http_req *req, hb_scope *scope, hb_uuid *event, hb_uuid *session);
/** A decimal query parameter within [lo, hi]: true (and *out set) when
 * valid, true (and *out kept) when absent, false when malformed. */
bool hb_channel_query_uint(const char *url, const char *name, uint64_t lo, uint64_t hi, uint64_t *out);

#endif
