/* bucket.c - the token bucket (bucket.h). */
#include "hubbub/bucket.h"

void hb_bucket_init(hb_bucket *b, double burst, uint64_t now_ms) {
  b->tokens = (float)burst;
  b->last_ms = now_ms;
}

bool hb_bucket_take(hb_bucket *b, double rate, double burst, uint64_t now_ms, int *retry_after_s) {
  if (rate <= 0) return true;
  double tokens = b->tokens;
  if (now_ms > b->last_ms) tokens += (double)(now_ms - b->last_ms) * rate / 1000.0;
  if (tokens > burst) tokens = burst;
  b->last_ms = now_ms;
  if (tokens >= 1.0) {
    b->tokens = (float)(tokens - 1.0);
    return true;
  }
  b->tokens = (float)tokens;
  if (retry_after_s) {
    int s = (int)((1.0 - tokens) / rate + 0.999);
    *retry_after_s = s < 1 ? 1 : s;
  }
  return false;
}
