/*
 * listener: creates and binds listening sockets and hands them out.
 *
 * Every TCP `listen` gets one socket per worker, bound with SO_REUSEPORT, so
 * the kernel spreads connections and each worker accepts only its own: a
 * connection never crosses threads. A unix socket cannot be shared that way;
 * its one socket is given to every worker, and whichever accept() wins owns
 * the connection. Layer 5. Main thread only.
 */
#ifndef WEIR_LISTENER_H
#define WEIR_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

#include "weir/config.h"

struct wr_listener {
    int fd;            /* owned, non-blocking, close-on-exec */
    const struct wr_listen_cfg *cfg; /* borrowed from the snapshot it came from */
    bool is_tls;
    bool is_shared;    /* unix socket: the same fd for every worker */
};

/* All listening sockets of a run: fds[worker * n_listens + i]. */
struct wr_listener_set {
    struct wr_listener *items; /* owned */
    size_t n_workers, n_listens;
};

/*
 * Binds every listen of cfg for n_workers workers. Returns 0, or -1 after
 * logging which address failed and why (everything opened so far is closed).
 */
int wr_listener_set_open(struct wr_listener_set *set, const struct wr_config *cfg,
                         size_t n_workers);

/* The listener for listen i of worker w. */
struct wr_listener *wr_listener_get(struct wr_listener_set *set, size_t w, size_t i);

/* Closes every socket and removes unix socket files. NULL-safe items. */
void wr_listener_set_close(struct wr_listener_set *set);

#endif
