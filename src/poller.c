/*
 * poller: one epoll set per worker for the read readiness of its client
 * sockets, watched as one libevent event (see poller.h).
 *
 * Invariants:
 *  - An item is on at most one list: queue (activated, ev_kick pending;
 *    queue_tail points at its last item's next, or at queue when empty)
 *    or running (the kick's run took it); pprev NULL: on none.
 *  - Reports collected by epoll_wait but not run yet are batch[batch_next,
 *    batch_len); unwatch and forget clear their item's report there, so
 *    nothing is called after it stopped watching (libevent's event_del
 *    drops an active event the same way).
 *  - Level-triggered: a socket left readable is reported again on the next
 *    run, so a callback that reads once per call is enough (it is what
 *    libevent's epoll backend does without EV_ET).
 *  - Pausing is EPOLL_CTL_DEL, not a MOD to no events: epoll reports
 *    EPOLLHUP and EPOLLERR whatever the mask, and a paused socket whose peer
 *    is gone would then be reported on every run.
 */
#include "weir/poller.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

static void unlink_item(struct wr_poller *p, struct wr_poller_item *it)
{
    if (!it->pprev)
        return;
    if (p->queue_tail == &it->next)
        p->queue_tail = it->pprev; /* it was last in the queue */
    *it->pprev = it->next;
    if (it->next)
        it->next->pprev = it->pprev;
    it->next = NULL;
    it->pprev = NULL;
}

/* Clears it's reports still to run in the current batch. */
static void cancel_reports(struct wr_poller *p, const struct wr_poller_item *it)
{
    for (int i = p->batch_next; i < p->batch_len; i++) {
        if (p->batch[i].data.ptr == it)
            p->batch[i].data.ptr = NULL;
    }
}

/* epfd is readable: runs what epoll has ready, at most one batch (more
 * stays readable and comes on the loop's next turn, after other events). */
static void on_ready(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wr_poller *p = arg;
    int n = epoll_wait(p->epfd, p->batch, WR_POLLER_BATCH, 0);
    if (n <= 0)
        return;
    p->batch_len = n;
    for (p->batch_next = 0; p->batch_next < p->batch_len;) {
        struct wr_poller_item *it = p->batch[p->batch_next++].data.ptr;
        if (!it)
            continue; /* unwatched or forgotten by an earlier callback */
        unlink_item(p, it); /* an activation merges into this call */
        p->cb(it);
    }
    p->batch_next = p->batch_len = 0;
}

/* Runs the activations queued so far; those made meanwhile wait for the
 * next kick (after the events that are ready now). */
static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wr_poller *p = arg;
    p->running = p->queue;
    p->queue = NULL;
    p->queue_tail = &p->queue;
    if (p->running)
        p->running->pprev = &p->running;
    while (p->running) {
        struct wr_poller_item *it = p->running;
        unlink_item(p, it);
        p->cb(it);
    }
}

int wr_poller_init(struct wr_poller *p, struct event_base *base, wr_poller_fn cb)
{
    *p = (struct wr_poller){.epfd = epoll_create1(EPOLL_CLOEXEC), .cb = cb};
    p->queue_tail = &p->queue;
    p->batch = malloc(WR_POLLER_BATCH * sizeof(*p->batch));
    if (p->epfd >= 0)
        p->ev_ready = event_new(base, p->epfd, EV_READ | EV_PERSIST, on_ready, p);
    p->ev_kick = event_new(base, -1, 0, on_kick, p);
    if (p->epfd < 0 || !p->batch || !p->ev_ready || !p->ev_kick ||
        event_add(p->ev_ready, NULL) < 0) {
        int saved = p->epfd < 0 ? errno : ENOMEM;
        wr_poller_fini(p);
        errno = saved;
        return -1;
    }
    return 0;
}

void wr_poller_fini(struct wr_poller *p)
{
    if (p->ev_ready)
        event_free(p->ev_ready);
    if (p->ev_kick)
        event_free(p->ev_kick);
    if (p->epfd >= 0)
        close(p->epfd);
    free(p->batch);
    *p = (struct wr_poller){.epfd = -1};
    p->queue_tail = &p->queue;
}

int wr_poller_watch(struct wr_poller *p, int fd, struct wr_poller_item *it, bool is_on)
{
    if (!is_on) {
        cancel_reports(p, it);
        return epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL);
    }
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = it};
    return epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &e);
}

void wr_poller_activate(struct wr_poller *p, struct wr_poller_item *it)
{
    if (it->pprev)
        return; /* queued already: activations merge */
    if (!p->queue)
        event_active(p->ev_kick, EV_TIMEOUT, 0);
    /* FIFO, as libevent's active queue: first activated, first run. */
    it->next = NULL;
    it->pprev = p->queue_tail;
    *p->queue_tail = it;
    p->queue_tail = &it->next;
}

void wr_poller_forget(struct wr_poller *p, int fd, struct wr_poller_item *it, bool is_watched)
{
    unlink_item(p, it);
    cancel_reports(p, it);
    if (is_watched && fd >= 0)
        epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL);
}
