/* origin.c - matching an Origin against an allowlist (origin.h). */
#include "hubbub/origin.h"

#include <strings.h>

static bool is_sep(char c) { return c == ' ' || c == '\t'; }

bool hb_origin_in_list(const char *list, const char *origin, size_t len) {
  if (!list || !origin || len == 0) return false;
  for (const char *p = list; *p;) {
    while (is_sep(*p)) p++;
    const char *q = p;
    while (*q && !is_sep(*q)) q++;
    if ((size_t)(q - p) == len && strncasecmp(p, origin, len) == 0) return true;
    p = q;
  }
  return false;
}

bool hb_origin_list_empty(const char *list) {
  if (!list) return true;
  while (is_sep(*list)) list++;
  return *list == '\0';
}
