/* event_name.c - the event-name rule and comma-separated lists (event_name.h). */
#include "hubbub/event_name.h"

#include <string.h>

#include "hubbub/limits.h"

bool hb_event_name_valid(const char *s, size_t len) {
  if (len == 0 || len > HB_MAX_EVENT_NAME_BYTES) return false;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) continue;
    if (c == '-' || c == '_' || c == '.' || c == ':' || c == '/' || c == '@') continue;
    return false;
  }
  return true;
}

bool hb_event_name_list_next(const char *s, size_t n, size_t *pos, const char **name, size_t *len) {
  if (n == 0 || *pos > n) return false;
  const char *comma = memchr(s + *pos, ',', n - *pos);
  *name = s + *pos;
  *len = comma ? (size_t)(comma - s) - *pos : n - *pos;
  *pos += *len + 1; /* past the comma; n + 1 after the last name */
  return true;
}
