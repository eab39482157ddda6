/*
 * event_name.h - the rule for event names, the key subscribers match on:
 * 1..HB_MAX_EVENT_NAME_BYTES of [A-Za-z0-9] and "-_.:/@" (docs/protocol.md).
 * A comma is not a name character, so a list of names is comma-separated
 * (the WebSocket URL's subscribe= parameter, the welcome's list).
 */
#ifndef HUBBUB_EVENT_NAME_H
#define HUBBUB_EVENT_NAME_H

#include <stdbool.h>
#include <stddef.h>

/** True when s[0..len) is a valid event name. */
bool hb_event_name_valid(const char *s, size_t len);

/**
 * The names of a comma-separated list s[0..n), one per call: start with
 * *pos = 0; false after the last. "a,,b" gives "a", "", "b"; "a," gives
 * "a", ""; an empty list gives none.
 */
bool hb_event_name_list_next(const char *s, size_t n, size_t *pos, const char **name, size_t *len);

#endif
