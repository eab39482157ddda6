/* user_id.c - the rule for user ids (user_id.h). */
#include "hubbub/user_id.h"

#include "hubbub/limits.h"

bool hb_user_id_valid(const char *s, size_t n) {
  if (n == 0 || n > HB_MAX_USER_ID_BYTES) return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return false;
  return true;
}
