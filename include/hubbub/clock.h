/* clock.h - the wall clock in milliseconds (message times, history ages).
 * Deadlines use each loop's monotonic clock instead (hb_io_now_ms). */
#ifndef HUBBUB_CLOCK_H
#define HUBBUB_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t hb_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
