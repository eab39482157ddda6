/* scope.c - scope names. */
#include "hubbub/scope.h"

#include <string.h>

static const char *const names[HB_SCOPE__COUNT] = {"session", "event", "organization"};

const char *hb_scope_name(hb_scope s) {
  return (unsigned)s < HB_SCOPE__COUNT ? names[s] : "?";
}

bool hb_scope_parse(const char *s, size_t len, hb_scope *out) {
  for (int i = 0; i < HB_SCOPE__COUNT; i++) {
    if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0) {
      *out = (hb_scope)i;
      return true;
    }
  }
  return false;
}
