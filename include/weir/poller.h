/*
 * poller: read readiness of many sockets for the price of one libevent
 * event (Linux: epoll).
 *
 * Why: a libevent `struct event` is 128 bytes, and libevent keeps about 50
 * more per watched descriptor; an idle keep-alive client connection needs
 * nothing but to hear that its socket became readable (issue 14: an idle
 * connection costs <= 0.25 KiB). Here a worker's client sockets share one
 * epoll set, watched as ONE event on the worker's base; an item embedded
 * in its owner (16 bytes) is all a descriptor costs in user memory.
 *
 * What it offers, with libevent's semantics for a persistent EV_READ
 * event, level-triggered:
 *  - watch / unwatch (event_add / event_del): a watched descriptor's item
 *    is called back while the socket is readable (or at its end or error);
 *  - activate (event_active): the item is called back once from the loop
 *    soon, readable or not; activations before that merge into one, and a
 *    readiness callback in between takes the activation with it;
 *  - after unwatch or forget, no callback for that readiness or activation
 *    comes any more, even one already collected in the batch being run.
 * Not here: writability (the owner's own libevent event, which it needs
 * only while output is pending), timers, edge-triggered modes.
 *
 * One poller belongs to one thread (the worker's) and one event base.
 * Layer 2.
 */
#ifndef WEIR_POLLER_H
#define WEIR_POLLER_H

#include <stdbool.h>
#include <stddef.h>

struct event;
struct event_base;
struct epoll_event;

/* Embedded in the owner (no allocation); recover the owner with
 * offsetof. Zero or wr_poller_item_init before first use. */
struct wr_poller_item {
    struct wr_poller_item *next;   /* in the activation queue */
    struct wr_poller_item **pprev; /* NULL: not queued for activation */
};

/* Called with the item that is readable or was activated. It may
 * watch, unwatch, activate or forget any item, its own included, and
 * free its owner after forgetting it. */
typedef void (*wr_poller_fn)(struct wr_poller_item *it);

#define WR_POLLER_BATCH 128 /* readiness reports taken per run */

struct wr_poller {
    int epfd;                       /* owned: the epoll set; -1 when none */
    struct event *ev_ready;         /* owned: epfd's readability on the base */
    struct event *ev_kick;          /* owned: runs the activation queue */
    wr_poller_fn cb;
    struct wr_poller_item *queue;   /* activated, waiting for ev_kick (FIFO) */
    struct wr_poller_item **queue_tail; /* where the next activation links in */
    struct wr_poller_item *running; /* taken off queue by the run under way */
    struct epoll_event *batch;      /* owned: WR_POLLER_BATCH reports */
    int batch_next, batch_len;      /* reports [batch_next, batch_len) still to run */
};

/* Prepares p on base, calling cb back. Returns 0, or -1 (errno set) when
 * the epoll set or an event could not be made (p then holds nothing). */
int wr_poller_init(struct wr_poller *p, struct event_base *base, wr_poller_fn cb);

/* Frees what p owns. Watched descriptors are not closed; items left in
 * the queue are dropped (their owners must not rely on a callback). */
void wr_poller_fini(struct wr_poller *p);

static inline void wr_poller_item_init(struct wr_poller_item *it)
{
    it->next = NULL;
    it->pprev = NULL;
}

/* Starts (is_on) or stops watching fd's readability for it. The caller
 * keeps track: start only an unwatched descriptor, stop only a watched
 * one. Returns 0, or -1 with errno from epoll_ctl. */
int wr_poller_watch(struct wr_poller *p, int fd, struct wr_poller_item *it, bool is_on);

/* Calls it back from the loop soon (libevent's event_active). Never
 * calls back from inside this call. */
void wr_poller_activate(struct wr_poller *p, struct wr_poller_item *it);

/* it's owner is going away: no callback for it any more (queued
 * activations and reports already collected are dropped). fd, if watched
 * (is_watched), is unwatched first. Call before closing fd. */
void wr_poller_forget(struct wr_poller *p, int fd, struct wr_poller_item *it, bool is_watched);

#endif
