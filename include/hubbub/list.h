/*
 * list.h - intrusive circular doubly-linked lists (as libuv's queue.h).
 * A node lives inside the object it links, so a membership costs no
 * allocation, and removal is O(1) given the object.
 */
#ifndef HUBBUB_LIST_H
#define HUBBUB_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct hb_list {
  struct hb_list *next, *prev;
} hb_list;

#define hb_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void hb_list_init(hb_list *h) { h->next = h->prev = h; }
static inline bool hb_list_empty(const hb_list *h) { return h->next == h; }
/** A node that is not on any list (after hb_list_init or hb_list_remove). */
static inline bool hb_list_unlinked(const hb_list *n) { return n->next == n; }

static inline void hb_list_insert_tail(hb_list *h, hb_list *n) {
  n->next = h;
  n->prev = h->prev;
  h->prev->next = n;
  h->prev = n;
}

static inline void hb_list_remove(hb_list *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->next = n->prev = n;
}

/* Move every node of `from` to the tail of `to`; `from` ends empty. */
static inline void hb_list_splice_tail(hb_list *to, hb_list *from) {
  if (hb_list_empty(from)) return;
  from->next->prev = to->prev;
  to->prev->next = from->next;
  from->prev->next = to;
  to->prev = from->prev;
  hb_list_init(from);
}

#define hb_list_foreach(it, head) for ((it) = (head)->next; (it) != (head); (it) = (it)->next)
/* Safe against removal of `it` inside the loop. */
#define hb_list_foreach_safe(it, tmp, head)                                        \
  for ((it) = (head)->next, (tmp) = (it)->next; (it) != (head); (it) = (tmp), (tmp) = (it)->next)

#endif
