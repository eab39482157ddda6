/* redis.c - the Redis broker (being written: see docs/scaling.md when it lands).
 * Until then `--redis` refuses to start rather than pretending to scale out. */
#include <stdio.h>

#include "hubbub/broker.h"

hb_broker *hb_broker_redis_new(struct hb_server *srv, const char *url, const char *password,
                               char *errbuf, size_t errlen) {
  (void)srv, (void)url, (void)password;
  snprintf(errbuf, errlen, "redis broker not built yet");
  return NULL;
}
