/*
 * listener: socket(), setsockopt(), bind(), listen() for every `listen`,
 * and the generations of sockets a reload goes through.
 *
 * Not here: accepting (worker) or anything per connection (conn).
 * Invariants: an address is never shared with another process (a probe
 * before binding, a sock_diag check after: see check_unshared), though each
 * worker has its own SO_REUSEPORT socket; every fd is non-blocking and
 * close-on-exec; a socket is in
 * exactly one set unless a newer set kept it (is_kept in the older one), so
 * it is closed exactly once; a shared socket appears in every row with the
 * same fd and is closed through row 0.
 */
#include "weir/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
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

/*
 * A socket file at the path: one nobody accepts on (ECONNREFUSED) is a
 * crashed run's and is removed, since it would make bind fail; one that
 * answers belongs to a live process and is never taken over (EADDRINUSE).
 * Anything else at the path is the operator's: bind reports it.
 */
static int clear_stale_unix(const struct wr_listen_addr *addr)
{
    const struct sockaddr_un *sun = (const struct sockaddr_un *)&addr->addr;
    struct stat st;
    if (lstat(sun->sun_path, &st) != 0 || !S_ISSOCK(st.st_mode))
        return 0;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int rc = connect(fd, (const struct sockaddr *)sun, addr->addr_len);
    int err = errno;
    close(fd);
    if (rc == 0 || err == EAGAIN) { /* EAGAIN: its backlog is full */
        errno = EADDRINUSE;
        return -1;
    }
    if (err != ECONNREFUSED) { /* e.g. EACCES: another user's, maybe live */
        errno = err;
        return -1;
    }
    unlink(sun->sun_path);
    return 0;
}

static bool is_unix(const struct wr_listen_addr *addr)
{
    return addr->addr.ss_family == AF_UNIX;
}

/*
 * A bound (and, with do_listen, listening) socket for addr. SO_REUSEPORT
 * only with is_reuseport: the kernel then lets sockets of the same user
 * join the same address, which is what spreads connections over the
 * workers' sockets, and also what would let another process of that user
 * join silently; see open_column for how that is ruled out.
 */
static int open_socket(const struct wr_listen_addr *addr, bool is_reuseport, bool do_listen)
{
    int family = addr->addr.ss_family;
    if (family == AF_UNIX && clear_stale_unix(addr) < 0)
        return -1;
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (family != AF_UNIX) {
        if (set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1) < 0 ||
            (is_reuseport && set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1) < 0))
            goto close_fd;
        /* [::]:80 must not swallow IPv4: 0.0.0.0:80 may be listed too. */
        if (family == AF_INET6 && set_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1) < 0)
            goto close_fd;
        /* Accepted sockets inherit TCP_NODELAY from their listener: set
         * once here, not with a system call per connection. */
        if (set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1) < 0)
            goto close_fd;
        /* An HTTP, TLS or PROXY client always speaks first, so a
         * connection is handed to weir only once its first bytes are
         * there: accept and the first read come in one wake-up, and a
         * worker under a stream of short connections sleeps and wakes
         * about 7 times less (measured: bench conn_close_1k). A client
         * that stays silent is accepted after about a second anyway (the
         * kernel's SYN-ACK retransmit), and header_timeout then applies. */
        if (set_int_opt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, 1) < 0)
            goto close_fd;
    }
    if (bind(fd, (const struct sockaddr *)&addr->addr, addr->addr_len) < 0)
        goto close_fd;
    if (do_listen && listen(fd, LISTEN_BACKLOG) < 0)
        goto close_fd;
    return fd;
close_fd: {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}
}

int wr_listener_open_addr(const struct wr_listen_addr *addr)
{
    /* One socket: no SO_REUSEPORT, so an address someone holds fails. */
    return open_socket(addr, false, true);
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

/* ---- an address is never shared with another process ----------------- */

/* What a listening TCP socket covers: IPv4 and/or IPv6 addresses of a port. */
struct cover {
    uint16_t port;   /* host order */
    bool has_v4, has_v6;
    uint32_t v4;     /* network order; INADDR_ANY covers them all */
    struct in6_addr v6; /* :: covers them all */
    uint32_t inode;  /* of the socket (inet_diag's idiag_inode) */
};

/* An IPv6 socket bound to a v4-mapped address is an IPv4 one; [::] without
 * IPV6_V6ONLY covers both families. */
static void cover_v6(struct cover *c, const struct in6_addr *a, bool is_v6only)
{
    if (IN6_IS_ADDR_V4MAPPED(a)) {
        c->has_v4 = true;
        memcpy(&c->v4, &a->s6_addr[12], sizeof(c->v4));
        return;
    }
    c->has_v6 = true;
    c->v6 = *a;
    if (IN6_IS_ADDR_UNSPECIFIED(a) && !is_v6only) {
        c->has_v4 = true;
        c->v4 = htonl(INADDR_ANY);
    }
}

/* Our listen address as a cover (we always set IPV6_V6ONLY); false for unix. */
static bool cover_of(const struct wr_listen_addr *a, struct cover *c)
{
    *c = (struct cover){.port = (uint16_t)port_of(a)};
    if (a->addr.ss_family == AF_INET) {
        c->has_v4 = true;
        c->v4 = ((const struct sockaddr_in *)&a->addr)->sin_addr.s_addr;
        return true;
    }
    if (a->addr.ss_family == AF_INET6) {
        cover_v6(c, &((const struct sockaddr_in6 *)&a->addr)->sin6_addr, true);
        return true;
    }
    return false;
}

/* True when a connection could be meant for either: the same port and the
 * same address, or a wildcard of the same family on either side. */
static bool overlaps(const struct cover *a, const struct cover *b)
{
    if (a->port != b->port)
        return false;
    if (a->has_v4 && b->has_v4 &&
        (a->v4 == b->v4 || a->v4 == htonl(INADDR_ANY) || b->v4 == htonl(INADDR_ANY)))
        return true;
    return a->has_v6 && b->has_v6 &&
           (IN6_ARE_ADDR_EQUAL(&a->v6, &b->v6) || IN6_IS_ADDR_UNSPECIFIED(&a->v6) ||
            IN6_IS_ADDR_UNSPECIFIED(&b->v6));
}

static void cover_text(const struct cover *c, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (c->has_v6)
        inet_ntop(AF_INET6, &c->v6, host, sizeof(host));
    else
        inet_ntop(AF_INET, &c->v4, host, sizeof(host));
    snprintf(out, cap, c->has_v6 ? "[%s]:%u" : "%s:%u", host, c->port);
}

/* True when a socket of set (column i excluded when i < n_listens) or of
 * other (may be NULL) already covers part of addr: weir's own overlapping
 * listens (0.0.0.0:80 and 127.0.0.1:80) may coexist. */
static bool has_own_overlap(const struct wr_listener_set *set, size_t i,
                            const struct wr_listener_set *other, const struct wr_listen_addr *addr)
{
    struct cover want, have;
    if (!cover_of(addr, &want))
        return false;
    const struct wr_listener_set *sets[2] = {set, other};
    for (size_t k = 0; k < 2; k++) {
        for (size_t j = 0; sets[k] && sets[k]->items && j < sets[k]->n_listens; j++) {
            const struct wr_listener *l = &sets[k]->items[j]; /* row 0 */
            if ((sets[k] != set || j != i) && l->fd >= 0 && cover_of(&l->addr, &have) &&
                overlaps(&want, &have))
                return true;
        }
    }
    return false;
}

/*
 * Before a reuseport group is bound: a probe bound to addr without
 * SO_REUSEPORT fails with EADDRINUSE when any socket listens on it, or on
 * a wildcard that covers it (the kernel's bind conflict rules, the same
 * ones nginx relies on). Without it, another weir of the same user would
 * join the address and the kernel would split its traffic between two
 * unrelated processes. Racy on its own: see check_unshared.
 */
static int probe_free(const struct wr_listen_addr *addr)
{
    int fd = open_socket(addr, false, false);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

/* Every listening socket of this network namespace, as the kernel lists
 * them (inet_diag), and the inodes of ours. */
struct listening {
    struct cover *all; /* owned */
    size_t n, cap;
    uint32_t *ours;    /* owned */
    size_t n_ours;
};

static int add_listener(struct listening *ls, const struct nlmsghdr *h)
{
    const struct inet_diag_msg *m = NLMSG_DATA(h);
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)) || m->idiag_state != TCP_LISTEN)
        return 0;
    bool is_v6only = false;
    int attr_len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
    for (const struct rtattr *a = (const struct rtattr *)(m + 1); RTA_OK(a, attr_len);
         a = RTA_NEXT(a, attr_len)) {
        if (a->rta_type == INET_DIAG_SKV6ONLY && RTA_PAYLOAD(a) >= 1)
            is_v6only = *(const uint8_t *)RTA_DATA(a) != 0;
    }
    struct cover c = {.port = ntohs(m->id.idiag_sport), .inode = m->idiag_inode};
    if (m->idiag_family == AF_INET) {
        c.has_v4 = true;
        c.v4 = m->id.idiag_src[0];
    } else {
        struct in6_addr a;
        memcpy(&a, m->id.idiag_src, sizeof(a));
        cover_v6(&c, &a, is_v6only);
    }
    if (ls->n == ls->cap) {
        size_t cap = ls->cap ? ls->cap * 2 : 64;
        struct cover *more = realloc(ls->all, cap * sizeof(*more));
        if (!more)
            return -1;
        ls->all = more;
        ls->cap = cap;
    }
    ls->all[ls->n++] = c;
    return 0;
}

/* Reads one inet_diag dump from fd into ls. Returns 0 or -1 with errno. */
static int read_dump(int fd, struct listening *ls)
{
    /* Aligned for nlmsghdr; a dump comes in many datagrams of up to a page
     * or so each, so reads are bounded (a million listening sockets). */
    long buf[8192 / sizeof(long)];
    for (int round = 0; round < 100000; round++) {
        ssize_t len = recv(fd, buf, sizeof(buf), 0);
        if (len < 0 && errno == EINTR)
            continue;
        if (len <= 0)
            return -1;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len);
             h = NLMSG_NEXT(h, len)) {
            if (h->nlmsg_type == NLMSG_DONE)
                return 0;
            if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(h);
                errno = e->error < 0 ? -e->error : EPROTO;
                return -1;
            }
            if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY && add_listener(ls, h) < 0)
                return -1;
        }
    }
    errno = EOVERFLOW;
    return -1;
}

/* Appends every listening TCP socket of family to ls. Returns 0 or -1. */
static int list_family(struct listening *ls, int family)
{
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0)
        return -1;
    struct timeval limit = {1, 0}; /* the kernel answers at once; never hang a reload */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 req;
    } msg = {
        .nlh = {.nlmsg_len = sizeof(msg), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP},
        .req = {.sdiag_family = (uint8_t)family, .sdiag_protocol = IPPROTO_TCP,
                .idiag_states = 1u << TCP_LISTEN},
    };
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    int rc = sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0
                 ? -1
                 : read_dump(fd, ls);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

static int add_own_inodes(struct listening *ls, const struct wr_listener_set *set)
{
    size_t n = set->n_workers * set->n_listens;
    uint32_t *more = realloc(ls->ours, (ls->n_ours + n + 1) * sizeof(*more));
    if (!more)
        return -1;
    ls->ours = more;
    for (size_t k = 0; k < n; k++) {
        struct stat st;
        if (set->items[k].fd >= 0 && fstat(set->items[k].fd, &st) == 0)
            ls->ours[ls->n_ours++] = (uint32_t)st.st_ino;
    }
    return 0;
}

static void listening_fini(struct listening *ls)
{
    free(ls->all);
    free(ls->ours);
    *ls = (struct listening){0};
}

static bool is_ours(const struct listening *ls, uint32_t inode)
{
    for (size_t k = 0; k < ls->n_ours; k++) {
        if (ls->ours[k] == inode)
            return true;
    }
    return false;
}

/* The first socket in ls covering part of addr that is not ours, or NULL. */
static const struct cover *find_foreign(const struct listening *ls,
                                        const struct wr_listen_addr *addr)
{
    struct cover want;
    if (!cover_of(addr, &want))
        return NULL;
    for (size_t k = 0; k < ls->n; k++) {
        if (overlaps(&want, &ls->all[k]) && !is_ours(ls, ls->all[k].inode))
            return &ls->all[k];
    }
    return NULL;
}

/*
 * After binding: closes the race the probe leaves (two processes probe,
 * both find the address free, both bind their groups and share it). Every
 * listening socket that covers part of a column is_new says to check must
 * be one of set's or other's (other may be NULL); if not, the address is
 * in use: logged, -1. The other process's own check fails the same way,
 * so neither keeps a shared address. When the kernel cannot be asked
 * (netlink refused, e.g. by a unit's RestrictAddressFamilies=), this is
 * logged and the probe's answer stands.
 */
static int check_unshared(const struct wr_listener_set *set, const struct wr_listener_set *other,
                          const bool *is_new)
{
    bool is_any_new = false;
    for (size_t i = 0; i < set->n_listens; i++)
        is_any_new = is_any_new || is_new[i];
    if (!is_any_new)
        return 0;
    struct listening ls = {0};
    if (list_family(&ls, AF_INET) < 0 || list_family(&ls, AF_INET6) < 0 ||
        add_own_inodes(&ls, set) < 0 || (other && add_own_inodes(&ls, other) < 0)) {
        wr_log(WR_LOG_WARN, -1, 0, "listen: cannot list listening sockets (%s); only the "
                                   "bind probe checked that no other process shares an address",
               strerror(errno));
        listening_fini(&ls);
        return 0;
    }
    int rc = 0;
    for (size_t i = 0; i < set->n_listens && rc == 0; i++) {
        const struct cover *c = is_new[i] ? find_foreign(&ls, &set->items[i].addr) : NULL;
        if (c) {
            char where[INET6_ADDRSTRLEN + 16];
            cover_text(c, where, sizeof(where));
            wr_log(WR_LOG_ERROR, -1, 0, "listen %s: %s (another process listens on %s)",
                   set->items[i].addr.text, strerror(EADDRINUSE), where);
            rc = -1;
        }
    }
    listening_fini(&ls);
    return rc;
}

/*
 * Fills column i with lc's sockets: the inherited one if it matches, else
 * one per worker (reuseport) or one shared unix socket. Returns 0, or -1
 * (logged; the column is closed).
 */
static int open_column(struct wr_listener_set *set, size_t i, const struct wr_listen_cfg *lc,
                       struct wr_listener_inherited *inherited, const struct wr_listener_set *cur)
{
    int shared_fd = inherited ? wr_listener_claim_inherited(inherited, &lc->addr) : -1;
    bool is_inherited = shared_fd >= 0;
    bool is_group = !is_inherited && !is_unix(&lc->addr);
    if (is_group && !has_own_overlap(set, i, cur, &lc->addr) && probe_free(&lc->addr) < 0) {
        log_open_error(&lc->addr, errno);
        return -1;
    }
    for (size_t w = 0; w < set->n_workers; w++) {
        struct wr_listener *l = wr_listener_get(set, w, i);
        l->addr = lc->addr;
        l->is_tls = lc->is_tls;
        l->is_h2c = lc->is_h2c;
        l->is_proxy_protocol = lc->is_proxy_protocol;
        l->is_inherited = is_inherited;
        l->is_shared = !is_group;
        if (l->is_shared && shared_fd < 0)
            shared_fd = wr_listener_open_addr(&lc->addr);
        l->fd = l->is_shared ? shared_fd : open_socket(&lc->addr, true, true);
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
    bool *is_new = calloc(n_listens + 1, sizeof(*is_new)); /* reuseport groups to check */
    int rc = is_new ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < n_listens; i++) {
        rc = open_column(set, i, &cfg->server.listens[i], inherited, NULL);
        /* An inherited socket is the service manager's to guard. */
        is_new[i] = rc == 0 && !set->items[i].is_shared;
    }
    if (rc == 0)
        rc = check_unshared(set, NULL, is_new);
    free(is_new);
    if (rc < 0)
        wr_listener_set_close(set);
    return rc;
}

bool wr_listener_set_matches(const struct wr_listener_set *set, const struct wr_config *cfg)
{
    if (set->n_listens != cfg->server.n_listens)
        return false;
    for (size_t i = 0; i < set->n_listens; i++) {
        const struct wr_listener *l = &set->items[i]; /* row 0 */
        const struct wr_listen_cfg *lc = &cfg->server.listens[i];
        if (strcmp(l->addr.text, lc->addr.text) != 0 || l->is_tls != lc->is_tls ||
            l->is_h2c != lc->is_h2c || l->is_proxy_protocol != lc->is_proxy_protocol)
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

/* A failed update: closes what it bound (the columns cur does not have;
 * those not bound yet hold -1), nothing of cur's. */
static int undo_update(struct wr_listener_set *next, const struct wr_listener_set *cur,
                       const struct wr_config *cfg, bool *is_new)
{
    for (size_t k = 0; k < next->n_listens; k++) {
        if (find_column(cur, &cfg->server.listens[k].addr) < 0)
            close_column(next, k);
    }
    free(is_new);
    free(next->items);
    next->items = NULL;
    return -1;
}

int wr_listener_set_update(struct wr_listener_set *next, struct wr_listener_set *cur,
                           const struct wr_config *cfg)
{
    size_t n_listens = cfg->server.n_listens;
    if (alloc_items(next, cur->n_workers, n_listens) < 0)
        return -1;
    bool *is_new = calloc(n_listens + 1, sizeof(*is_new));
    if (!is_new)
        return undo_update(next, cur, cfg, is_new);
    for (size_t i = 0; i < n_listens; i++) {
        const struct wr_listen_cfg *lc = &cfg->server.listens[i];
        ptrdiff_t j = find_column(cur, &lc->addr);
        if (j < 0) {
            if (open_column(next, i, lc, NULL, cur) < 0)
                return undo_update(next, cur, cfg, is_new);
            is_new[i] = !next->items[i].is_shared;
            continue;
        }
        for (size_t w = 0; w < cur->n_workers; w++) {
            struct wr_listener *l = wr_listener_get(next, w, i);
            *l = *wr_listener_get(cur, w, (size_t)j);
            l->is_tls = lc->is_tls; /* the same socket may change role */
            l->is_h2c = lc->is_h2c;
            l->is_proxy_protocol = lc->is_proxy_protocol;
            l->is_kept = false;
        }
    }
    /* cur's sockets are ours too: a removed listen stays open until the
     * workers let go of it. */
    if (check_unshared(next, cur, is_new) < 0)
        return undo_update(next, cur, cfg, is_new);
    free(is_new);
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
