/*
 * worker: a thread running one libevent loop.
 *
 * Not here: anything per connection (conn). Invariants: everything reached
 * from w->base is touched by this thread only, except the pending command
 * bits and the wake-up eventfd (main posts to both) and is_done (read by
 * main); the loop ends by itself once a drain leaves no connection, or at
 * once on STOP.
 *
 * Control queue: main sets a bit in w->pending, then adds 1 to the eventfd;
 * the worker reads (resets) the eventfd, then takes every bit at once. A
 * bit set after the worker's take comes with a write after its read, so the
 * eventfd wakes it again: no command is missed, and the eventfd never
 * fills (its counter saturates near 2^64, and a failed add means a wake-up
 * is pending anyway). A pipe of one-byte messages lost STOP once full.
 */
#include "weir/worker.h"

#include <errno.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "weir/log.h"

#define TICK_MS 100
#define MAX_ACCEPTS_PER_WAKEUP 64 /* fairness: new connections vs. live ones */

struct wr_worker_accept {
    struct wr_worker *worker; /* borrowed */
    struct wr_listener *listener; /* borrowed */
    struct event *ev;         /* owned */
    bool is_tls;              /* the listener's, copied: read on every accept */
    bool is_h2c;              /* likewise */
    bool is_proxy_protocol;   /* likewise */
    bool is_deferred;         /* ours, TCP: accepted with its first bytes there */
};

static void switch_listeners(struct wr_worker *w, struct wr_listener_set *set);

static void pause_accepting(struct wr_worker *w)
{
    if (w->is_accept_paused)
        return;
    for (size_t i = 0; i < w->n_accepts; i++)
        event_del(w->accepts[i].ev);
    w->is_accept_paused = true;
}

static void resume_accepting(struct wr_worker *w)
{
    for (size_t i = 0; i < w->n_accepts; i++)
        event_add(w->accepts[i].ev, NULL);
    w->is_accept_paused = false;
}

/* Reserves a slot under max_connections before accepting, so that workers
 * racing each other can never overshoot it. */
static bool reserve_slot(struct wr_worker *w)
{
    uint64_t before = atomic_fetch_add_explicit(&w->shared->n_conns, 1, memory_order_relaxed);
    if (before < atomic_load_explicit(&w->shared->max_connections, memory_order_relaxed))
        return true;
    atomic_fetch_sub_explicit(&w->shared->n_conns, 1, memory_order_relaxed);
    return false;
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct wr_worker_accept *a = arg;
    struct wr_worker *w = a->worker;
    for (int i = 0; i < MAX_ACCEPTS_PER_WAKEUP; i++) {
        if (!reserve_slot(w)) {
            pause_accepting(w); /* resumed by the tick once below the limit */
            return;
        }
        struct sockaddr_storage peer;
        socklen_t len = sizeof(peer);
        int cfd = accept4(fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd >= 0) {
            wr_conn_take(&w->conns, cfd, (struct sockaddr *)&peer, len,
                         (a->is_tls ? WR_CONN_TLS : 0u) | (a->is_h2c ? WR_CONN_H2C : 0u) |
                             (a->is_proxy_protocol ? WR_CONN_PROXY_PROTOCOL : 0u) |
                             (a->is_deferred ? WR_CONN_DATA_FIRST : 0u));
            continue;
        }
        atomic_fetch_sub_explicit(&w->shared->n_conns, 1, memory_order_relaxed);
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* Out of descriptors: stop for a tick instead of spinning on a
             * readable listener we cannot empty. */
            wr_log(WR_LOG_ERROR, w->id, 0, "accept: %s; pausing", strerror(errno));
            pause_accepting(w);
        }
        return;
    }
}

static void close_own_listeners(struct wr_worker *w)
{
    for (size_t i = 0; i < w->n_accepts; i++) {
        event_del(w->accepts[i].ev);
        struct wr_listener *l = w->accepts[i].listener;
        /* A SO_REUSEPORT socket left open would keep receiving connections
         * nobody accepts; a shared unix socket is closed by main. */
        if (!l->is_shared && l->fd >= 0) {
            close(l->fd);
            l->fd = -1;
        }
    }
    w->is_accept_paused = true;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wr_worker *w = arg;
    wr_conns_tick(&w->conns);
    if (w->conns.is_draining) {
        if (w->conns.n_live == 0)
            event_base_loopbreak(w->base);
        return;
    }
    uint64_t n = atomic_load_explicit(&w->shared->n_conns, memory_order_relaxed);
    if (w->is_accept_paused &&
        n < atomic_load_explicit(&w->shared->max_connections, memory_order_relaxed))
        resume_accepting(w);
}

/* RELOAD: the latest snapshot and, unless draining, the latest listeners. */
static void take_reload(struct wr_worker *w)
{
    struct wr_config *cfg = atomic_exchange(&w->next_cfg, NULL);
    if (cfg)
        wr_conns_set_config(&w->conns, cfg);
    struct wr_listener_set *set = atomic_exchange(&w->next_listeners, NULL);
    if (set && !w->conns.is_draining)
        switch_listeners(w, set);
    if (set)
        atomic_store_explicit(&w->is_switch_pending, false, memory_order_release);
}

static void start_drain(struct wr_worker *w)
{
    if (w->conns.is_draining)
        return;
    close_own_listeners(w);
    wr_conns_drain(&w->conns);
    if (w->conns.n_live == 0)
        event_base_loopbreak(w->base);
}

static void on_control(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct wr_worker *w = arg;
    uint64_t n_wakeups;
    /* Reset the wake-up before taking the bits (see the header comment). */
    ssize_t n = read(fd, &n_wakeups, sizeof(n_wakeups));
    (void)n; /* EAGAIN: a spurious wake-up; the bits below decide */
    unsigned cmds = atomic_exchange_explicit(&w->pending, 0, memory_order_acquire);
    if (cmds & WR_WORKER_STOP) {
        event_base_loopbreak(w->base); /* the rest is moot: everything closes now */
        return;
    }
    /* RELOAD before DRAIN: listeners a reload just handed over are closed by
     * the drain too, instead of sitting in their backlog unaccepted. */
    if (cmds & WR_WORKER_RELOAD)
        take_reload(w);
    if (cmds & WR_WORKER_DRAIN)
        start_drain(w);
}

/* Watches this worker's row of w->listeners (added unless accepting is
 * paused: resume_accepting adds them then). */
static int add_accept_events(struct wr_worker *w)
{
    size_t n = w->listeners->n_listens;
    w->accepts = calloc(n, sizeof(*w->accepts));
    if (!w->accepts)
        return -1;
    w->n_accepts = n;
    for (size_t i = 0; i < n; i++) {
        struct wr_worker_accept *a = &w->accepts[i];
        a->worker = w;
        a->listener = wr_listener_get(w->listeners, (size_t)w->id, i);
        a->is_tls = a->listener->is_tls;
        a->is_h2c = a->listener->is_h2c;
        a->is_proxy_protocol = a->listener->is_proxy_protocol;
        /* Every TCP listener defers its accepts (listener.c on the sockets
         * it makes, main.c on inherited ones); a unix socket does not. */
        a->is_deferred = a->listener->addr.addr.ss_family != AF_UNIX;
        a->ev = event_new(w->base, a->listener->fd, EV_READ | EV_PERSIST, on_accept, a);
        if (!a->ev || (!w->is_accept_paused && event_add(a->ev, NULL) < 0))
            return -1;
    }
    return 0;
}

static void free_accept_events(struct wr_worker *w)
{
    for (size_t i = 0; i < w->n_accepts; i++) {
        if (w->accepts[i].ev)
            event_free(w->accepts[i].ev);
    }
    free(w->accepts);
    w->accepts = NULL;
    w->n_accepts = 0;
}

/*
 * Moves to a new listener set. Kept sockets are the same fds, so a
 * connection waiting in their backlog is accepted from the new event; the
 * sockets only the old set has are closed by main once every worker
 * switched (a socket still in another worker's epoll must not be closed).
 */
static void switch_listeners(struct wr_worker *w, struct wr_listener_set *set)
{
    /* Listens the new set did not take over are going: their HTTP/2
     * connections get GOAWAY (the sockets close when main retires the set). */
    struct wr_listener_set *old = w->listeners;
    for (size_t i = 0; old && i < old->n_listens; i++) {
        const struct wr_listener *l = wr_listener_get(old, (size_t)w->id, i);
        if (!l->is_kept)
            wr_conns_listen_removed(&w->conns, &l->addr);
    }
    free_accept_events(w);
    w->listeners = set;
    if (add_accept_events(w) < 0) {
        wr_log(WR_LOG_ERROR, w->id, 0, "reload: cannot watch the new listeners: %s",
               strerror(errno));
        free_accept_events(w);
    }
}

int wr_worker_init(struct wr_worker *w, int id, struct wr_config *cfg,
                   struct wr_listener_set *listeners, const struct wr_access_log_fds *logs,
                   struct wr_worker_shared *shared)
{
    *w = (struct wr_worker){.id = id, .listeners = listeners, .shared = shared, .wake_fd = -1};
    atomic_init(&w->is_done, false);
    atomic_init(&w->pending, 0);
    atomic_init(&w->next_cfg, NULL);
    atomic_init(&w->next_listeners, NULL);
    atomic_init(&w->is_switch_pending, false);
    struct event_config *ec = event_config_new();
    if (!ec)
        goto fail;
    /* One thread per base: libevent needs no locks of its own here. */
    event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
    w->base = event_base_new_with_config(ec);
    event_config_free(ec);
    if (!w->base)
        goto fail;
    if (wr_conns_init(&w->conns, id, w->base, cfg, logs, &shared->n_conns,
                      shared->limits) < 0)
        goto fail_base;
    w->conns.metrics = wr_metrics_worker(shared->metrics, (size_t)id);
    w->conns.access_log.dropped_lines = &w->conns.metrics->access_log_dropped_lines;
    for (size_t i = 0; i < w->conns.n_route_logs; i++)
        w->conns.route_logs[i].dropped_lines = &w->conns.metrics->access_log_dropped_lines;
    if ((w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
        goto fail_conns;
    struct timeval tick = {0, TICK_MS * 1000};
    w->tick_event = event_new(w->base, -1, EV_PERSIST, on_tick, w);
    w->ctl_event = event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST, on_control, w);
    if (!w->tick_event || !w->ctl_event || event_add(w->tick_event, &tick) < 0 ||
        event_add(w->ctl_event, NULL) < 0 || add_accept_events(w) < 0)
        goto fail_conns;
    return 0;
fail_conns:
    wr_worker_fini(w);
    wr_log(WR_LOG_ERROR, -1, 0, "worker %d: cannot set up its event loop", id);
    return -1;
fail_base:
    event_base_free(w->base);
fail:
    wr_log(WR_LOG_ERROR, -1, 0, "worker %d: cannot create its event base", id);
    w->base = NULL;
    return -1;
}

static void *worker_main(void *arg)
{
    struct wr_worker *w = arg;
    event_base_dispatch(w->base);
    /* Everything the loop owned goes while still on this thread. */
    wr_conns_fini(&w->conns);
    atomic_store_explicit(&w->is_done, true, memory_order_release);
    return NULL;
}

int wr_worker_start(struct wr_worker *w)
{
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    w->is_started = true;
    return 0;
}

void wr_worker_publish(struct wr_worker *w, struct wr_config *cfg)
{
    /* A snapshot the worker has not picked up yet is simply replaced. */
    struct wr_config *stale = atomic_exchange(&w->next_cfg, wr_config_ref(cfg));
    wr_config_unref(stale);
    wr_worker_send(w, WR_WORKER_RELOAD);
}

void wr_worker_publish_listeners(struct wr_worker *w, struct wr_listener_set *set)
{
    atomic_store_explicit(&w->is_switch_pending, true, memory_order_relaxed);
    atomic_store(&w->next_listeners, set);
}

bool wr_worker_is_switched(struct wr_worker *w)
{
    return !atomic_load_explicit(&w->is_switch_pending, memory_order_acquire);
}

void wr_worker_send(struct wr_worker *w, enum wr_worker_cmd cmd)
{
    /* Release: what main published before (next_cfg, next_listeners) is
     * visible to the worker that takes the bit. */
    atomic_fetch_or_explicit(&w->pending, (unsigned)cmd, memory_order_release);
    uint64_t one = 1;
    ssize_t n = write(w->wake_fd, &one, sizeof(one));
    (void)n; /* EAGAIN only when the counter is saturated: a wake-up is pending */
}

bool wr_worker_is_done(struct wr_worker *w)
{
    return atomic_load_explicit(&w->is_done, memory_order_acquire);
}

void wr_worker_fini(struct wr_worker *w)
{
    if (w->is_started) {
        pthread_join(w->thread, NULL);
        w->is_started = false;
    } else if (w->base) {
        wr_conns_fini(&w->conns);
    }
    free_accept_events(w);
    if (w->tick_event)
        event_free(w->tick_event);
    if (w->ctl_event)
        event_free(w->ctl_event);
    w->tick_event = w->ctl_event = NULL;
    if (w->wake_fd >= 0)
        close(w->wake_fd);
    w->wake_fd = -1;
    if (w->base)
        event_base_free(w->base);
    w->base = NULL;
    wr_config_unref(atomic_exchange(&w->next_cfg, NULL));
}
