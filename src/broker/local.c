/* local.c - the in-process broker: a publish goes straight to every thread (local.h). */
#include "hubbub/local.h"

#include "hubbub/alloc.h"
#include "hubbub/publish.h"

static int local_start(hb_broker *b) { return 0; }

/* Always at once: the publish core keeps Idempotency-Keys for this broker. */
static bool local_publish(hb_broker *b, hb_io *from, const hb_pub *p, hb_publish_result *r, hb_broker_done_fn done,
                          void *ctx) {
  r->pos = hb_publish_record(from, p);
  r->err = HB_OK;
  return true;
}

static const char *local_state(hb_broker *b) { return "up"; }
static const char *const local_states[] = {"up", NULL};
static bool local_healthy(hb_broker *b) { return true; }
static void local_stop(hb_broker *b) { hb_free(b); }

static const hb_broker_ops local_ops = {
    .name = "local",
    .start = local_start,
    .publish = local_publish,
    .interest = NULL, /* every thread is in this process: nothing to route */
    .join = NULL,     /* history.c is this process's: the room protocol reads it at once */
    .live = NULL,     /* a subscription is live as soon as it is in the index */
    .page = NULL,
    .presence = NULL, /* one node: presence.c counts everyone itself */
    .state = local_state,
    .states = local_states,
    .healthy = local_healthy,
    .stop = local_stop,
};

hb_broker *hb_broker_local_new(void) {
  hb_broker *b = hb_calloc(1, sizeof *b);
  b->ops = &local_ops;
  return b;
}
