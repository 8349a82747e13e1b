/*
 * worker: one thread, one event base, its own listening sockets and every
 * connection it accepts.
 *
 * Main talks to a worker only through its control queue: a word of pending
 * command bits (set by main, taken by the worker) and an eventfd that only
 * wakes the worker. Commands are states, not messages (pick up the latest
 * snapshot, drain, stop), so a command posted twice before the worker looks
 * is one command, and none is ever lost to a full queue. Workers share only
 * the immutable config snapshot and the process-wide connection counter.
 * Layer 5.
 */
#ifndef WEIR_WORKER_H
#define WEIR_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "weir/conn.h"
#include "weir/listener.h"
#include "weir/metrics.h"

/* State every worker reads; owned by main, outlives the workers. */
struct wr_worker_shared {
    atomic_uint_fast64_t n_conns; /* open client connections, whole process */
    atomic_uint_fast64_t max_connections; /* written by main (start, reload) */
    struct wr_limits *limits; /* owned by main: per-address counts and rates */
    struct wr_metrics *metrics;           /* main's; worker i writes block i only */
};

struct wr_worker_accept; /* one per listening socket of the worker */

struct wr_worker {
    int id;
    pthread_t thread;
    struct event_base *base;           /* owned */
    struct wr_conns conns;
    struct wr_listener_set *listeners; /* borrowed: main's; this worker uses row id;
                                          replaced on a reload that changes listeners */
    struct wr_worker_accept *accepts;  /* owned, one per listen */
    size_t n_accepts;
    struct event *tick_event, *ctl_event; /* owned */
    int wake_fd;                       /* eventfd: main adds to it, the worker reads it */
    atomic_uint pending;               /* enum wr_worker_cmd bits: set by main, taken
                                          (exchanged with 0) by the worker */
    struct wr_worker_shared *shared;   /* borrowed */
    bool is_accept_paused;             /* at max_connections or out of fds */
    bool is_started;
    atomic_bool is_done;               /* set by the thread as it exits its loop */
    _Atomic(struct wr_config *) next_cfg; /* ref held: published by main, taken
                                             by the worker on WR_WORKER_RELOAD */
    _Atomic(struct wr_listener_set *) next_listeners; /* borrowed: likewise, NULL
                                                         when listeners are unchanged */
    atomic_bool is_switch_pending;     /* set by main with next_listeners, cleared by
                                          the worker once it polls only the new set */
};

/*
 * Commands main sends, one bit each. When several are pending at once the
 * worker applies RELOAD, then DRAIN, unless STOP is pending: STOP wins and
 * the others are moot. A RELOAD taken while draining updates the snapshot
 * but never starts polling new listeners.
 */
enum wr_worker_cmd {
    WR_WORKER_DRAIN = 1u << 0,  /* stop accepting, close idle connections, exit when none
                                   remain */
    WR_WORKER_STOP = 1u << 1,   /* close everything now and exit */
    WR_WORKER_RELOAD = 1u << 2, /* new connections start under the latest next_cfg, and the
                                   worker polls the latest next_listeners */
};

/*
 * Hands cfg to worker w (taking a reference for it) and tells it to switch:
 * connections it accepts from then on use cfg; open ones keep theirs.
 * Main thread.
 */
void wr_worker_publish(struct wr_worker *w, struct wr_config *cfg);

/*
 * Hands the worker a new listener set (borrowed: main frees it only after
 * the worker moved off it) to poll from the next WR_WORKER_RELOAD on; call
 * before wr_worker_publish. Until wr_worker_is_switched, the worker may
 * still poll the previous set. Main thread.
 */
void wr_worker_publish_listeners(struct wr_worker *w, struct wr_listener_set *set);

/* True once the worker polls only the set last published (any thread). */
bool wr_worker_is_switched(struct wr_worker *w);

/*
 * Prepares worker id (base, accept events, conns under cfg, writing to the
 * access logs in logs) without starting its thread. Returns 0, or -1
 * (logged) with nothing left to free. Main thread.
 */
int wr_worker_init(struct wr_worker *w, int id, struct wr_config *cfg,
                   struct wr_listener_set *listeners, const struct wr_access_log_fds *logs,
                   struct wr_worker_shared *shared);

/* Starts the thread. Returns 0 or -1 (errno). Main thread. */
int wr_worker_start(struct wr_worker *w);

/*
 * Posts a command: sets its bit and wakes the worker. Never blocks, never
 * fails: a command posted again before the worker took it is the same
 * command. Safe from main at any time while the worker exists (between
 * wr_worker_init and wr_worker_fini), whether or not its thread runs.
 */
void wr_worker_send(struct wr_worker *w, enum wr_worker_cmd cmd);

/* True once the worker's loop has ended (any thread). */
bool wr_worker_is_done(struct wr_worker *w);

/* Joins the thread (if started) and frees everything the worker owns. */
void wr_worker_fini(struct wr_worker *w);

#endif
