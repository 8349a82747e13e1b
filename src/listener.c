/*
 * listener: socket(), setsockopt(), bind(), listen() for every `listen`.
 *
 * Not here: accepting (worker) or anything per connection (conn).
 * Invariants: sockets are created before workers start and before
 * privileges drop; every fd is non-blocking and close-on-exec.
 */
#include "weir/listener.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "weir/log.h"

/* The kernel caps this at net.core.somaxconn. */
#define LISTEN_BACKLOG 4096

static int set_int_opt(int fd, int level, int name, int value)
{
    return setsockopt(fd, level, name, &value, sizeof(value));
}

/* A stale socket file left by a crashed run would make bind fail; a regular
 * file at the path is the operator's and is never removed. */
static void remove_stale_unix(const struct sockaddr_un *sun)
{
    struct stat st;
    if (lstat(sun->sun_path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(sun->sun_path);
}

static int open_one(const struct wr_listen_addr *addr)
{
    int family = addr->addr.ss_family;
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (family != AF_UNIX) {
        if (set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1) < 0 ||
            set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1) < 0)
            goto close_fd;
        /* [::]:80 must not swallow IPv4: 0.0.0.0:80 may be listed too. */
        if (family == AF_INET6 && set_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1) < 0)
            goto close_fd;
    } else {
        remove_stale_unix((const struct sockaddr_un *)&addr->addr);
    }
    if (bind(fd, (const struct sockaddr *)&addr->addr, addr->addr_len) < 0)
        goto close_fd;
    if (listen(fd, LISTEN_BACKLOG) < 0)
        goto close_fd;
    return fd;
close_fd: {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}
}

struct wr_listener *wr_listener_get(struct wr_listener_set *set, size_t w, size_t i)
{
    return &set->items[w * set->n_listens + i];
}

int wr_listener_set_open(struct wr_listener_set *set, const struct wr_config *cfg,
                         size_t n_workers)
{
    size_t n_listens = cfg->server.n_listens;
    *set = (struct wr_listener_set){.n_workers = n_workers, .n_listens = n_listens};
    set->items = calloc(n_workers * n_listens, sizeof(*set->items));
    if (!set->items)
        return -1;
    for (size_t k = 0; k < n_workers * n_listens; k++)
        set->items[k].fd = -1;
    for (size_t i = 0; i < n_listens; i++) {
        const struct wr_listen_cfg *lc = &cfg->server.listens[i];
        bool is_unix = lc->addr.addr.ss_family == AF_UNIX;
        for (size_t w = 0; w < n_workers; w++) {
            struct wr_listener *l = wr_listener_get(set, w, i);
            l->cfg = lc;
            l->is_tls = lc->is_tls;
            l->is_shared = is_unix;
            l->fd = (is_unix && w > 0) ? wr_listener_get(set, 0, i)->fd : open_one(&lc->addr);
            if (l->fd < 0) {
                wr_log(WR_LOG_ERROR, -1, 0, "listen %s: %s", lc->addr.text, strerror(errno));
                wr_listener_set_close(set);
                return -1;
            }
        }
    }
    return 0;
}

void wr_listener_set_close(struct wr_listener_set *set)
{
    if (!set->items)
        return;
    for (size_t i = 0; i < set->n_listens; i++) {
        for (size_t w = 0; w < set->n_workers; w++) {
            struct wr_listener *l = wr_listener_get(set, w, i);
            if (l->fd < 0)
                continue;
            if (!l->is_shared || w == 0) {
                if (l->cfg->addr.addr.ss_family == AF_UNIX)
                    unlink(((const struct sockaddr_un *)&l->cfg->addr.addr)->sun_path);
                close(l->fd);
            }
            l->fd = -1;
        }
    }
    free(set->items);
    set->items = NULL;
}
