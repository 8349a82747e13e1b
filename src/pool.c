/*
 * pool: upstream connections of one worker (see pool.h).
 *
 * Each distinct server address gets a struct wr_pool_server holding its
 * idle list; lookups scan the short list of servers this worker has talked
 * to (a handful per upstream). A connection's read event is registered once
 * at connect and stays until close: idle connections need it to notice a
 * server closing them, busy ones to read responses.
 */
#include "weir/pool.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>


struct wr_pool_server {
    struct wr_pool_server *next;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    struct wr_upconn *idle; /* most recently used first */
    uint64_t n_idle;
};

struct wr_pool {
    struct event_base *base;
    struct wr_pool_server *servers;
    struct wr_pool_stats stats;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct wr_pool *wr_pool_new(struct event_base *base)
{
    struct wr_pool *pool = calloc(1, sizeof(*pool));
    if (pool)
        pool->base = base;
    return pool;
}

static struct wr_pool_server *find_server(struct wr_pool *pool, const struct wr_listen_addr *addr,
                                          bool is_creating)
{
    for (struct wr_pool_server *s = pool->servers; s; s = s->next) {
        if (s->addr_len == addr->addr_len && memcmp(&s->addr, &addr->addr, addr->addr_len) == 0)
            return s;
    }
    if (!is_creating)
        return NULL;
    struct wr_pool_server *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    memcpy(&s->addr, &addr->addr, addr->addr_len);
    s->addr_len = addr->addr_len;
    s->next = pool->servers;
    pool->servers = s;
    return s;
}

static void unlink_idle(struct wr_upconn *uc)
{
    struct wr_pool_server *s = uc->server;
    for (struct wr_upconn **pp = &s->idle; *pp; pp = &(*pp)->next) {
        if (*pp == uc) {
            *pp = uc->next;
            s->n_idle--;
            uc->pool->stats.n_idle--;
            uc->next = NULL;
            return;
        }
    }
}

static void free_upconn(struct wr_upconn *uc)
{
    event_del(&uc->ev_read);
    event_del(&uc->ev_write);
    close(uc->fd);
    uc->pool->stats.n_open--;
    free(uc);
}

static void on_upconn_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct wr_upconn *uc = arg;
    if (uc->on_event) {
        uc->on_event(uc, what, uc->arg);
        return;
    }
    /* Idle: the server closed it, or sent something nobody asked for. */
    unlink_idle(uc);
    free_upconn(uc);
}

struct wr_upconn *wr_pool_get(struct wr_pool *pool, const struct wr_listen_addr *addr,
                              wr_upconn_fn on_event, void *arg)
{
    struct wr_pool_server *s = find_server(pool, addr, false);
    struct wr_upconn *uc = s ? s->idle : NULL;
    if (!uc) {
        pool->stats.n_misses++;
        return NULL;
    }
    s->idle = uc->next;
    s->n_idle--;
    pool->stats.n_idle--;
    pool->stats.n_hits++;
    uc->next = NULL;
    uc->on_event = on_event;
    uc->arg = arg;
    uc->n_requests++;
    return uc;
}

struct wr_upconn *wr_pool_connect(struct wr_pool *pool, const struct wr_listen_addr *addr,
                                  wr_upconn_fn on_event, void *arg)
{
    struct wr_pool_server *s = find_server(pool, addr, true);
    if (!s) {
        errno = ENOMEM;
        return NULL;
    }
    int family = addr->addr.ss_family;
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    if (family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    bool is_connecting = false;
    if (connect(fd, (const struct sockaddr *)&addr->addr, addr->addr_len) < 0) {
        if (errno != EINPROGRESS) {
            int err = errno;
            close(fd);
            errno = err;
            return NULL;
        }
        is_connecting = true;
    }
    struct wr_upconn *uc = calloc(1, sizeof(*uc));
    if (!uc) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    uc->fd = fd;
    uc->pool = pool;
    uc->server = s;
    uc->on_event = on_event;
    uc->arg = arg;
    uc->n_requests = 1;
    uc->is_connecting = is_connecting;
    event_assign(&uc->ev_read, pool->base, fd, EV_READ | EV_PERSIST, on_upconn_event, uc);
    event_assign(&uc->ev_write, pool->base, fd, EV_WRITE | EV_PERSIST, on_upconn_event, uc);
    pool->stats.n_open++;
    if (event_add(&uc->ev_read, NULL) < 0) {
        free_upconn(uc);
        errno = ENOMEM;
        return NULL;
    }
    if (is_connecting)
        wr_upconn_want_write(uc, true);
    return uc;
}

int wr_upconn_connect_error(struct wr_upconn *uc)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(uc->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err == 0)
        uc->is_connecting = false;
    return err;
}

void wr_upconn_close(struct wr_upconn *uc)
{
    free_upconn(uc);
}

void wr_pool_put(struct wr_upconn *uc, uint64_t max_idle, uint64_t idle_ms)
{
    struct wr_pool_server *s = uc->server;
    if (s->n_idle >= max_idle || uc->is_connecting) {
        free_upconn(uc);
        return;
    }
    uc->on_event = NULL;
    uc->arg = NULL;
    wr_upconn_want_write(uc, false);
    wr_upconn_pause_read(uc, false);
    uc->idle_until_ms = now_ms() + idle_ms;
    uc->next = s->idle;
    s->idle = uc;
    s->n_idle++;
    uc->pool->stats.n_idle++;
}

void wr_upconn_pause_read(struct wr_upconn *uc, bool is_paused)
{
    if (is_paused == uc->is_read_paused)
        return;
    if (is_paused)
        event_del(&uc->ev_read);
    else
        event_add(&uc->ev_read, NULL);
    uc->is_read_paused = is_paused;
}

void wr_upconn_want_write(struct wr_upconn *uc, bool is_wanted)
{
    if (is_wanted == uc->is_write_armed)
        return;
    if (is_wanted)
        event_add(&uc->ev_write, NULL);
    else
        event_del(&uc->ev_write);
    uc->is_write_armed = is_wanted;
}

void wr_pool_tick(struct wr_pool *pool, uint64_t now)
{
    for (struct wr_pool_server *s = pool->servers; s; s = s->next) {
        struct wr_upconn **pp = &s->idle;
        while (*pp) {
            struct wr_upconn *uc = *pp;
            if (now < uc->idle_until_ms) {
                pp = &uc->next;
                continue;
            }
            *pp = uc->next;
            s->n_idle--;
            pool->stats.n_idle--;
            free_upconn(uc);
        }
    }
}

void wr_pool_free(struct wr_pool *pool)
{
    if (!pool)
        return;
    while (pool->servers) {
        struct wr_pool_server *s = pool->servers;
        pool->servers = s->next;
        while (s->idle) {
            struct wr_upconn *uc = s->idle;
            s->idle = uc->next;
            free_upconn(uc);
        }
        free(s);
    }
    free(pool);
}

const struct wr_pool_stats *wr_pool_stats(const struct wr_pool *pool)
{
    return &pool->stats;
}
