/*
 * scope.h - who receives a publish, and which scopes a token may publish to.
 */
#ifndef HUBBUB_SCOPE_H
#define HUBBUB_SCOPE_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
  HB_SCOPE_SESSION = 0,      /* one room */
  HB_SCOPE_EVENT = 1,        /* every session of the event */
  HB_SCOPE_ORGANIZATION = 2, /* every room of the organization */
  HB_SCOPE__COUNT
} hb_scope;

/* A set of scopes, bit (1u << scope). */
typedef unsigned hb_scope_set;
#define HB_SCOPE_BIT(s) (1u << (unsigned)(s))
#define HB_SCOPE_SET_DEFAULT HB_SCOPE_BIT(HB_SCOPE_SESSION)

/** "session" / "event" / "organization". */
const char *hb_scope_name(hb_scope s);
/** Parse exactly one of the three names; false otherwise. */
bool hb_scope_parse(const char *s, size_t len, hb_scope *out);

#endif
