/* uring.c - many sends, one system call (uring.h). */
#include "hubbub/uring.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "hubbub/alloc.h"
#include "hubbub/limits.h"

#ifdef HB_HAVE_URING
#include <liburing.h>
#include <sys/socket.h>

typedef struct {
  struct msghdr msg;
  struct iovec iov[HB_MAX_IOV];
  void *tag;
} send_slot;

struct hb_uring {
  struct io_uring ring;
  unsigned entries;
  unsigned queued;
  bool broken;
  send_slot *slots; /* one per queued send: its msghdr and iovec until the submit */
};

hb_uring *hb_uring_new(unsigned entries, char *why, size_t whylen) {
  hb_uring *u = hb_calloc(1, sizeof *u);
  /* The completion queue is twice the submission queue (liburing's
   * default): every queued send's result fits. */
  int r = io_uring_queue_init(entries, &u->ring, 0);
  if (r < 0) {
    snprintf(why, whylen, "io_uring_setup: %s", strerror(-r));
    hb_free(u);
    return NULL;
  }
  /* Since 5.5 the kernel has read everything a submission points at (the
   * msghdr, the iovec array) by the time io_uring_enter returns: the slots
   * are reused by the next batch. */
  if (!(u->ring.features & IORING_FEAT_SUBMIT_STABLE)) {
    snprintf(why, whylen, "the kernel's io_uring lacks IORING_FEAT_SUBMIT_STABLE");
    io_uring_queue_exit(&u->ring);
    hb_free(u);
    return NULL;
  }
  u->entries = entries;
  u->slots = hb_calloc(entries, sizeof *u->slots);
  return u;
}

void hb_uring_free(hb_uring *u) {
  if (!u) return;
  io_uring_queue_exit(&u->ring);
  hb_free(u->slots);
  hb_free(u);
}

int hb_uring_fd(const hb_uring *u) { return u->ring.ring_fd; }
bool hb_uring_usable(const hb_uring *u) { return !u->broken; }
unsigned hb_uring_queued(const hb_uring *u) { return u->queued; }
bool hb_uring_full(const hb_uring *u) { return u->queued == u->entries; }

void hb_uring_queue(hb_uring *u, int fd, const struct iovec *iov, int n, void *tag) {
  send_slot *s = &u->slots[u->queued++];
  if (n > HB_MAX_IOV) n = HB_MAX_IOV;
  memcpy(s->iov, iov, (size_t)n * sizeof *iov);
  memset(&s->msg, 0, sizeof s->msg);
  s->msg.msg_iov = s->iov;
  s->msg.msg_iovlen = (size_t)n;
  s->tag = tag;
  struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring); /* never NULL: queued <= entries */
  io_uring_prep_sendmsg(sqe, fd, &s->msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  io_uring_sqe_set_data(sqe, s);
}

int hb_uring_submit(hb_uring *u, void (*done)(void *tag, int res)) {
  unsigned n = u->queued;
  if (n == 0) return 0;
  u->queued = 0;
  int submitted;
  do {
    /* EINTR: nothing was submitted (the kernel reports a count once any
     * went); the queue is still there for the next try. */
    submitted = io_uring_submit_and_wait(&u->ring, n);
  } while (submitted == -EINTR);
  if (submitted < 0) submitted = 0;
  /* What was not submitted would go with a later enter, out of order with
   * what the caller writes meanwhile: the ring is not used again. */
  if ((unsigned)submitted < n) u->broken = true;
  /* The results, in completion order; each names its slot. */
  int seen = 0;
  while (seen < submitted) {
    struct io_uring_cqe *cqe;
    int r = io_uring_wait_cqe(&u->ring, &cqe); /* at once: MSG_DONTWAIT sends complete inline */
    if (r == -EINTR) continue;
    if (r < 0) {
      u->broken = true;
      break;
    }
    send_slot *s = io_uring_cqe_get_data(cqe);
    int res = cqe->res;
    io_uring_cqe_seen(&u->ring, cqe);
    seen++;
    void *tag = s->tag;
    s->tag = NULL;
    done(tag, res);
  }
  if (u->broken) {
    /* Submissions go in queue order: slots from `submitted` on never
     * reached the kernel; one submitted without a result is in an unknown
     * state (-EIO: its connection is closed). */
    for (unsigned i = 0; i < n; i++) {
      if (!u->slots[i].tag) continue;
      void *tag = u->slots[i].tag;
      u->slots[i].tag = NULL;
      done(tag, i < (unsigned)submitted ? -EIO : HB_URING_NOT_SENT);
    }
  }
  return submitted;
}

#else /* built without liburing */

hb_uring *hb_uring_new(unsigned entries, char *why, size_t whylen) {
  (void)entries;
  snprintf(why, whylen, "built without liburing");
  return NULL;
}
void hb_uring_free(hb_uring *u) { (void)u; }
int hb_uring_fd(const hb_uring *u) { (void)u; return -1; }
bool hb_uring_usable(const hb_uring *u) { return u != NULL; }
unsigned hb_uring_queued(const hb_uring *u) { (void)u; return 0; }
bool hb_uring_full(const hb_uring *u) { (void)u; return true; }
void hb_uring_queue(hb_uring *u, int fd, const struct iovec *iov, int n, void *tag) {
  (void)u, (void)fd, (void)iov, (void)n, (void)tag;
}
int hb_uring_submit(hb_uring *u, void (*done)(void *tag, int res)) {
  (void)u, (void)done;
  return 0;
}

#endif
