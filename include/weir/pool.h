/*
 * pool: a worker's connections to upstream servers, idle ones kept for
 * reuse.
 *
 * A struct wr_upconn is one socket to one server. While a proxied exchange
 * uses it, the exchange is its owner and gets its events through on_event;
 * while idle, the pool owns it: it sits on its server's idle list (most
 * recently used first), is closed when the server closes it or sends
 * anything unasked, and expires after the upstream's keepalive_timeout.
 * The read event stays registered for the connection's whole life, so
 * taking a pooled connection or giving it back costs no epoll_ctl.
 * Servers are told apart by address, so connections survive a reload that
 * keeps the address. Worker thread only. Layer 2.
 */
#ifndef WEIR_POOL_H
#define WEIR_POOL_H

#include <event2/event_struct.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weir/units.h"

struct event_base;
struct wr_pool;
struct wr_pool_server;
struct wr_upconn;

/* what: EV_READ and/or EV_WRITE. */
typedef void (*wr_upconn_fn)(struct wr_upconn *uc, short what, void *arg);

struct wr_upconn {
    int fd;
    struct event ev_read, ev_write;
    struct wr_pool *pool;          /* borrowed */
    struct wr_pool_server *server; /* borrowed: the pool's entry for its address */
    struct wr_upconn *next;        /* idle list */
    wr_upconn_fn on_event;         /* the owner's callback; NULL while idle */
    void *arg;
    uint64_t idle_until_ms;        /* while idle: monotonic expiry */
    uint64_t n_requests;           /* exchanges started on it */
    bool is_connecting;            /* connect() in progress: first EV_WRITE tells */
    bool is_read_paused;           /* ev_read removed (owner's backpressure) */
    bool is_write_armed;
};

/* Per-worker counters, read by metrics. */
struct wr_pool_stats {
    uint64_t n_hits;     /* a request got an idle connection */
    uint64_t n_misses;   /* a request had to connect */
    uint64_t n_idle;     /* idle connections now */
    uint64_t n_open;     /* upstream connections now, idle or busy */
};

struct wr_pool *wr_pool_new(struct event_base *base);

/* Closes every connection (idle or not: owners must be gone). NULL ok. */
void wr_pool_free(struct wr_pool *pool);

/*
 * An idle connection to addr, now owned by the caller with on_event/arg,
 * or NULL when there is none. Counts a hit or a miss.
 */
struct wr_upconn *wr_pool_get(struct wr_pool *pool, const struct wr_listen_addr *addr,
                              wr_upconn_fn on_event, void *arg);

/*
 * Starts a non-blocking connect to addr. Returns the connection (owned by
 * the caller; its first EV_WRITE event reports the outcome, see
 * wr_upconn_connect_error) or NULL with errno set when it failed at once.
 */
struct wr_upconn *wr_pool_connect(struct wr_pool *pool, const struct wr_listen_addr *addr,
                                  wr_upconn_fn on_event, void *arg);

/* After an EV_WRITE on a connecting connection: 0 when connected (clears
 * is_connecting), else the errno of the failure. */
int wr_upconn_connect_error(struct wr_upconn *uc);

/*
 * Gives uc back: kept idle for idle_ms when its server has fewer than
 * max_idle idle connections, else closed. The caller guarantees the last
 * response was read completely and both sides allow keep-alive.
 */
void wr_pool_put(struct wr_upconn *uc, uint64_t max_idle, uint64_t idle_ms);

/* Closes uc (owned by the caller). */
void wr_upconn_close(struct wr_upconn *uc);

/* Owner's flow control: stop or resume EV_READ events; want EV_WRITE. */
void wr_upconn_pause_read(struct wr_upconn *uc, bool is_paused);
void wr_upconn_want_write(struct wr_upconn *uc, bool is_wanted);

/* Closes idle connections past their time (the worker's tick). */
void wr_pool_tick(struct wr_pool *pool, uint64_t now_ms);

const struct wr_pool_stats *wr_pool_stats(const struct wr_pool *pool);

#endif
