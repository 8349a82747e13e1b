/*
 * listener: creates and binds listening sockets and hands them out.
 *
 * Every TCP `listen` gets one socket per worker, bound with SO_REUSEPORT, so
 * the kernel spreads connections and each worker accepts only its own: a
 * connection never crosses threads. SO_REUSEPORT would also let another
 * process of the same user join the address and take part of its traffic;
 * that is refused: an address another process listens on (or a wildcard
 * covering it) fails to open with EADDRINUSE, logged as "listen ADDR:
 * Address already in use", at start and on reload. A unix socket cannot be shared that way,
 * nor can a socket inherited from the service manager (socket activation):
 * its one socket is given to every worker, and whichever accept() wins owns
 * the connection (the others see EAGAIN and go back to their loop).
 *
 * A set is one generation of sockets. A reload builds the next set from the
 * current one: a listen whose address is unchanged keeps its sockets (the
 * same fds, so no connection is refused), a new one is bound, and a removed
 * one is closed by wr_listener_set_retire once no worker polls it any more.
 * Layer 5. Main thread only, except that a worker may close the sockets of
 * its own row when it drains (setting fd to -1).
 */
#ifndef WEIR_LISTENER_H
#define WEIR_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

#include "weir/config.h"

struct wr_listener {
    int fd;            /* owned by the set; -1 once closed */
    struct wr_listen_addr addr; /* a copy: a set outlives the snapshot it came from */
    bool is_tls;
    bool is_h2c;       /* the listen's h2c flag */
    bool is_proxy_protocol; /* the listen's proxy_protocol flag */
    bool is_shared;    /* one socket for every worker: unix, or inherited */
    bool is_inherited; /* socket activation: the service manager owns the address */
    bool is_kept;      /* a newer set took this socket over: retiring skips it */
};

/* All listening sockets of a generation: items[worker * n_listens + i]. */
struct wr_listener_set {
    struct wr_listener *items; /* owned */
    size_t n_workers, n_listens;
};

/* Sockets passed by the service manager (sd_listen_fds). */
struct wr_listener_inherited {
    int *fds;     /* borrowed; an entry becomes -1 once a listen claims it */
    size_t n_fds;
};

/*
 * Binds every listen of cfg for n_workers workers; a listen whose address
 * matches an inherited socket (inherited may be NULL) takes it instead.
 * Returns 0, or -1 after logging which address failed and why, e.g. one
 * another process listens on (everything opened so far is closed; claimed
 * inherited fds stay claimed and closed).
 */
int wr_listener_set_open(struct wr_listener_set *set, const struct wr_config *cfg,
                         size_t n_workers, struct wr_listener_inherited *inherited);

/* True when set serves exactly cfg's listen lines (addresses, order, tls). */
bool wr_listener_set_matches(const struct wr_listener_set *set, const struct wr_config *cfg);

/*
 * Builds next for cfg from cur (same worker count): unchanged addresses take
 * cur's sockets over (marked is_kept in cur), new ones are bound now (cur's
 * sockets count as weir's own, not as another process's).
 * Returns 0, or -1 after logging the address that failed (e.g. a port below
 * 1024 without CAP_NET_BIND_SERVICE, or one another process listens on);
 * then next holds nothing and cur is as it was.
 */
int wr_listener_set_update(struct wr_listener_set *next, struct wr_listener_set *cur,
                           const struct wr_config *cfg);

/* Closes the sockets of old that no newer set kept (removing unix socket
 * files weir created) and frees old's items. Only once no worker polls old. */
void wr_listener_set_retire(struct wr_listener_set *old);

/* The listener for listen i of worker w. */
struct wr_listener *wr_listener_get(struct wr_listener_set *set, size_t w, size_t i);

/* Closes every socket and removes unix socket files weir created. */
void wr_listener_set_close(struct wr_listener_set *set);

/*
 * One listening socket for addr (the admin endpoint), without SO_REUSEPORT:
 * an address anyone listens on fails with EADDRINUSE, as does a unix socket
 * file a live process accepts on (a stale one is replaced). Returns the fd
 * (non-blocking, close-on-exec) or -1 with errno.
 */
int wr_listener_open_addr(const struct wr_listen_addr *addr);

/* Takes the inherited socket bound to addr out of inh: returns its fd
 * (made non-blocking and close-on-exec) or -1 when none matches. */
int wr_listener_claim_inherited(struct wr_listener_inherited *inh,
                                const struct wr_listen_addr *addr);

/* "127.0.0.1:80", "[::1]:80" or "unix:/path" for a bound socket, for
 * messages. */
void wr_listener_describe_fd(int fd, char *out, size_t cap);

#endif
