/*
 * uring.h - many sends, one system call: an I/O thread's io_uring
 * (config io_uring).
 *
 * A loopback or VM send costs microseconds of kernel entry and exit whatever
 * it carries (docs/performance.md: ~6 us for a one-frame write here, ~3.7
 * us as one of 256 sends submitted together). A flush queues one send per
 * connection (its whole ring as one msghdr) and submits them with one
 * io_uring_enter. Every send is MSG_DONTWAIT, so it completes during that
 * call (bytes sent, or -EAGAIN when the socket's buffer is full) and the
 * caller learns every result before it returns: nothing stays in flight,
 * so a connection and its frames need not outlive the flush.
 *
 * Where io_uring cannot be used (built without liburing, an old kernel, a
 * seccomp filter or kernel.io_uring_disabled), hb_uring_new says why and the
 * caller writes with writev as before.
 */
#ifndef HUBBUB_URING_H
#define HUBBUB_URING_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

typedef struct hb_uring hb_uring;

/* A send's result when it never reached the kernel (the submission failed):
 * the caller writes those bytes another way. */
#define HB_URING_NOT_SENT (-100000)

/**
 * A ring for the calling thread with room for `entries` queued sends; NULL
 * when io_uring is not usable here, with the reason in `why`.
 */
hb_uring *hb_uring_new(unsigned entries, char *why, size_t whylen);
void hb_uring_free(hb_uring *u);

/** The ring's file descriptor (-1 without liburing): for tests that make a
 * submission fail by putting another file in its place. */
int hb_uring_fd(const hb_uring *u);
/** False once a submission failed: the ring must not be used again. */
bool hb_uring_usable(const hb_uring *u);
/** Sends queued and not submitted yet. */
unsigned hb_uring_queued(const hb_uring *u);
/** Room for another send? */
bool hb_uring_full(const hb_uring *u);

/**
 * Queue a send of iov[0..n) on socket `fd` (MSG_DONTWAIT | MSG_NOSIGNAL),
 * reported to the submit's callback with `tag`. The iovec array is copied;
 * the bytes it points at must stay until hb_uring_submit returns. The ring
 * must not be full.
 */
void hb_uring_queue(hb_uring *u, int fd, const struct iovec *iov, int n, void *tag);

/**
 * Submit the queued sends with one io_uring_enter, wait for their results
 * (immediate: MSG_DONTWAIT) and call done(tag, res) for each: bytes sent,
 * -errno (-EAGAIN: the socket's buffer is full), or HB_URING_NOT_SENT when
 * the submission failed (then the ring is no longer usable; a send
 * submitted without a result comes back as -EIO). Returns how many sends
 * were submitted: fewer than were queued means the ring broke.
 */
int hb_uring_submit(hb_uring *u, void (*done)(void *tag, int res));

#endif
