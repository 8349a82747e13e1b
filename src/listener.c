/*
 * listener: socket(), setsockopt(), bind(), listen() for every `listen`,
 * and the generations of sockets a reload goes through.
 *
 * Not here: accepting (worker) or anything per connection (conn).
 * Invariants: every fd is non-blocking and close-on-exec; a socket is in
 * exactly one set unless a newer set kept it (is_kept in the older one), so
 * it is closed exactly once; a shared socket appears in every row with the
 * same fd and is closed through row 0.
 */
#include "weir/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
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

static bool is_unix(const struct wr_listen_addr *addr)
{
    return addr->addr.ss_family == AF_UNIX;
}

int wr_listener_open_addr(const struct wr_listen_addr *addr)
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

static unsigned port_of(const struct wr_listen_addr *addr)
{
    if (addr->addr.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&addr->addr)->sin_port);
    if (addr->addr.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&addr->addr)->sin6_port);
    return 0;
}

static void log_open_error(const struct wr_listen_addr *addr, int err)
{
    unsigned port = port_of(addr);
    const char *hint = "";
    /* After the privilege drop only the capability can bind these. */
    if (err == EACCES && port > 0 && port < 1024)
        hint = " (ports below 1024 need root or CAP_NET_BIND_SERVICE)";
    wr_log(WR_LOG_ERROR, -1, 0, "listen %s: %s%s", addr->text, strerror(err), hint);
}

struct wr_listener *wr_listener_get(struct wr_listener_set *set, size_t w, size_t i)
{
    return &set->items[w * set->n_listens + i];
}

static int alloc_items(struct wr_listener_set *set, size_t n_workers, size_t n_listens)
{
    *set = (struct wr_listener_set){.n_workers = n_workers, .n_listens = n_listens};
    set->items = calloc(n_workers * n_listens, sizeof(*set->items));
    if (!set->items)
        return -1;
    for (size_t k = 0; k < n_workers * n_listens; k++)
        set->items[k].fd = -1;
    return 0;
}

/* Closes column i of set: every worker's socket for that listen. */
static void close_column(struct wr_listener_set *set, size_t i)
{
    for (size_t w = 0; w < set->n_workers; w++) {
        struct wr_listener *l = wr_listener_get(set, w, i);
        if (l->fd >= 0 && (!l->is_shared || w == 0)) {
            if (is_unix(&l->addr) && !l->is_inherited)
                unlink(((const struct sockaddr_un *)&l->addr.addr)->sun_path);
            close(l->fd);
        }
        l->fd = -1;
    }
}

/*
 * Fills column i with lc's sockets: the inherited one if it matches, else
 * one per worker (reuseport) or one shared unix socket. Returns 0, or -1
 * (logged; the column is closed).
 */
static int open_column(struct wr_listener_set *set, size_t i, const struct wr_listen_cfg *lc,
                       struct wr_listener_inherited *inherited)
{
    int shared_fd = inherited ? wr_listener_claim_inherited(inherited, &lc->addr) : -1;
    bool is_inherited = shared_fd >= 0;
    for (size_t w = 0; w < set->n_workers; w++) {
        struct wr_listener *l = wr_listener_get(set, w, i);
        l->addr = lc->addr;
        l->is_tls = lc->is_tls;
        l->is_inherited = is_inherited;
        l->is_shared = is_inherited || is_unix(&lc->addr);
        if (l->is_shared && shared_fd < 0)
            shared_fd = wr_listener_open_addr(&lc->addr);
        l->fd = l->is_shared ? shared_fd : wr_listener_open_addr(&lc->addr);
        if (l->fd < 0) {
            log_open_error(&lc->addr, errno);
            close_column(set, i);
            return -1;
        }
    }
    return 0;
}

int wr_listener_set_open(struct wr_listener_set *set, const struct wr_config *cfg,
                         size_t n_workers, struct wr_listener_inherited *inherited)
{
    size_t n_listens = cfg->server.n_listens;
    if (alloc_items(set, n_workers, n_listens) < 0)
        return -1;
    for (size_t i = 0; i < n_listens; i++) {
        if (open_column(set, i, &cfg->server.listens[i], inherited) < 0) {
            wr_listener_set_close(set);
            return -1;
        }
    }
    return 0;
}

bool wr_listener_set_matches(const struct wr_listener_set *set, const struct wr_config *cfg)
{
    if (set->n_listens != cfg->server.n_listens)
        return false;
    for (size_t i = 0; i < set->n_listens; i++) {
        const struct wr_listener *l = &set->items[i]; /* row 0 */
        const struct wr_listen_cfg *lc = &cfg->server.listens[i];
        if (strcmp(l->addr.text, lc->addr.text) != 0 || l->is_tls != lc->is_tls)
            return false;
    }
    return true;
}

/* The column of cur listening on addr, or -1. */
static ptrdiff_t find_column(const struct wr_listener_set *cur, const struct wr_listen_addr *addr)
{
    for (size_t i = 0; i < cur->n_listens; i++) {
        if (strcmp(cur->items[i].addr.text, addr->text) == 0)
            return (ptrdiff_t)i;
    }
    return -1;
}

int wr_listener_set_update(struct wr_listener_set *next, struct wr_listener_set *cur,
                           const struct wr_config *cfg)
{
    size_t n_listens = cfg->server.n_listens;
    if (alloc_items(next, cur->n_workers, n_listens) < 0)
        return -1;
    for (size_t i = 0; i < n_listens; i++) {
        const struct wr_listen_cfg *lc = &cfg->server.listens[i];
        ptrdiff_t j = find_column(cur, &lc->addr);
        if (j < 0) {
            if (open_column(next, i, lc, NULL) == 0)
                continue;
            /* Undo: close only what this update bound. */
            for (size_t k = 0; k < i; k++) {
                if (find_column(cur, &cfg->server.listens[k].addr) < 0)
                    close_column(next, k);
            }
            free(next->items);
            next->items = NULL;
            return -1;
        }
        for (size_t w = 0; w < cur->n_workers; w++) {
            struct wr_listener *l = wr_listener_get(next, w, i);
            *l = *wr_listener_get(cur, w, (size_t)j);
            l->is_tls = lc->is_tls; /* the same socket may change role */
            l->is_kept = false;
        }
    }
    for (size_t i = 0; i < n_listens; i++) {
        ptrdiff_t j = find_column(cur, &cfg->server.listens[i].addr);
        for (size_t w = 0; j >= 0 && w < cur->n_workers; w++)
            wr_listener_get(cur, w, (size_t)j)->is_kept = true;
    }
    return 0;
}

void wr_listener_set_retire(struct wr_listener_set *old)
{
    if (!old->items)
        return;
    for (size_t i = 0; i < old->n_listens; i++) {
        if (!old->items[i].is_kept)
            close_column(old, i);
    }
    free(old->items);
    old->items = NULL;
}

void wr_listener_set_close(struct wr_listener_set *set)
{
    if (!set->items)
        return;
    for (size_t i = 0; i < set->n_listens; i++)
        close_column(set, i);
    free(set->items);
    set->items = NULL;
}

/* ---- socket activation ------------------------------------------------- */

static bool same_address(const struct sockaddr_storage *ss, socklen_t len,
                         const struct wr_listen_addr *addr)
{
    if (ss->ss_family != addr->addr.ss_family)
        return false;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        const struct sockaddr_in *b = (const struct sockaddr_in *)&addr->addr;
        return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)&addr->addr;
        return a->sin6_port == b->sin6_port &&
               memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)) == 0;
    }
    if (ss->ss_family == AF_UNIX && len > offsetof(struct sockaddr_un, sun_path)) {
        const struct sockaddr_un *a = (const struct sockaddr_un *)ss;
        const struct sockaddr_un *b = (const struct sockaddr_un *)&addr->addr;
        size_t n = (size_t)len - offsetof(struct sockaddr_un, sun_path);
        return strnlen(a->sun_path, n) == strlen(b->sun_path) &&
               strncmp(a->sun_path, b->sun_path, n) == 0;
    }
    return false;
}

int wr_listener_claim_inherited(struct wr_listener_inherited *inh,
                                const struct wr_listen_addr *addr)
{
    for (size_t k = 0; k < inh->n_fds; k++) {
        int fd = inh->fds[k];
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) < 0 ||
            !same_address(&ss, len, addr))
            continue;
        inh->fds[k] = -1;
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
            fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        return fd;
    }
    return -1;
}

void wr_listener_describe_fd(int fd, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        snprintf(out, cap, "fd %d (not a socket)", fd);
    } else if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        snprintf(out, cap, "%s:%u", host, ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        snprintf(out, cap, "[%s]:%u", host, ntohs(a->sin6_port));
    } else if (ss.ss_family == AF_UNIX) {
        const struct sockaddr_un *a = (const struct sockaddr_un *)&ss;
        size_t n = len > offsetof(struct sockaddr_un, sun_path)
                       ? (size_t)len - offsetof(struct sockaddr_un, sun_path) : 0;
        snprintf(out, cap, "unix:%.*s", (int)strnlen(a->sun_path, n), a->sun_path);
    } else {
        snprintf(out, cap, "fd %d (family %d)", fd, ss.ss_family);
    }
}
