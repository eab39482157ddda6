/*
 * user_id.h - the rule for a user id: a connection token's `sub`, the
 * `user_id` of a connection-token request, a revocation's user (the store):
 * 1..HB_MAX_USER_ID_BYTES bytes, no control characters (it is shown in
 * welcomes, presence lists and logs).
 */
#ifndef HUBBUB_USER_ID_H
#define HUBBUB_USER_ID_H

#include <stdbool.h>
#include <stddef.h>

bool hb_user_id_valid(const char *s, size_t n);

#endif
