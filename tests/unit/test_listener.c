/*
 * Unit tests for listener: which addresses overlap, and the check made
 * after binding that no other process shares a listen address (issue
 * 13.10). The check is the part that closes the probe's race, which a test
 * against the binary cannot time; here a "foreign" SO_REUSEPORT socket
 * joins the address first and the group is bound without the probe, as it
 * would be when two processes probe at the same moment. Real sockets on
 * loopback, port 0. Includes listener.c to reach its static helpers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <poll.h>

#include "../../src/listener.c"

static struct cover cover4(const char *ip, uint16_t port)
{
    struct cover c = {.port = port, .has_v4 = true};
    assert_int_equal(inet_pton(AF_INET, ip, &c.v4), 1);
    return c;
}

static struct cover cover6(const char *ip, uint16_t port, bool is_v6only)
{
    struct cover c = {.port = port};
    struct in6_addr a;
    assert_int_equal(inet_pton(AF_INET6, ip, &a), 1);
    cover_v6(&c, &a, is_v6only);
    return c;
}

static void issue_13_overlaps(void **state)
{
    (void)state;
    struct cover lo = cover4("127.0.0.1", 80), any = cover4("0.0.0.0", 80);
    struct cover other = cover4("127.0.0.2", 80), lo81 = cover4("127.0.0.1", 81);
    assert_true(overlaps(&lo, &lo));
    assert_true(overlaps(&lo, &any) && overlaps(&any, &lo)); /* a wildcard held elsewhere */
    assert_false(overlaps(&lo, &other));
    assert_false(overlaps(&lo, &lo81));
    struct cover v6lo = cover6("::1", 80, true), v6any = cover6("::", 80, true);
    struct cover dual = cover6("::", 80, false), mapped = cover6("::ffff:127.0.0.1", 80, false);
    assert_true(overlaps(&v6lo, &v6any));
    assert_false(overlaps(&v6lo, &lo));     /* families apart */
    assert_false(overlaps(&v6any, &any));   /* [::] with V6ONLY leaves IPv4 alone */
    assert_true(overlaps(&dual, &lo));      /* [::] without V6ONLY takes IPv4 too */
    assert_true(overlaps(&dual, &v6lo));
    assert_true(overlaps(&mapped, &lo));    /* a v4-mapped bind is an IPv4 one */
    assert_false(overlaps(&mapped, &v6lo));
}

/* A listening SO_REUSEPORT socket on ip:port (0: any free port). */
static int foreign_socket(int family, const char *ip, uint16_t *port)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1), 0);
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(*port);
        assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
        len = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(*port);
        assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
        assert_int_equal(set_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1), 0);
        len = sizeof(*a);
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
        close(fd);
        return -1;
    }
    assert_int_equal(listen(fd, 8), 0);
    len = sizeof(ss);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    *port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                    : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

/* A set of n_workers reuseport sockets on each text address, bound as
 * open_column would but without the probe. */
static void bind_set(struct wr_listener_set *set, size_t n_workers, const char *const *texts,
                     size_t n)
{
    assert_int_equal(alloc_items(set, n_workers, n), 0);
    for (size_t i = 0; i < n; i++) {
        for (size_t w = 0; w < n_workers; w++) {
            struct wr_listener *l = wr_listener_get(set, w, i);
            assert_int_equal(wr_units_parse_listen(texts[i], &l->addr), 0);
            l->fd = open_socket(&l->addr, true, true);
            assert_true(l->fd >= 0);
        }
    }
}

static int check(struct wr_listener_set *set, const struct wr_listener_set *other)
{
    bool is_new[4] = {true, true, true, true};
    assert_true(set->n_listens <= 4);
    return check_unshared(set, other, is_new);
}

static void issue_13_check_unshared(void **state)
{
    (void)state;
    /* Alone on an address: fine, whatever the number of workers. */
    uint16_t port = 0;
    int probe = foreign_socket(AF_INET, "127.0.0.1", &port);
    close(probe); /* only to learn a free port */
    char a[64], b[64];
    snprintf(a, sizeof(a), "127.0.0.1:%u", port);
    snprintf(b, sizeof(b), "0.0.0.0:%u", port);
    const char *const alone[] = {a};
    struct wr_listener_set set;
    bind_set(&set, 3, alone, 1);
    assert_int_equal(check(&set, NULL), 0);
    /* Another process's socket joins the group: found, whichever side came first. */
    uint16_t same = port;
    int foreign = foreign_socket(AF_INET, "127.0.0.1", &same);
    assert_true(foreign >= 0);
    assert_int_equal(check(&set, NULL), -1);
    close(foreign);
    assert_int_equal(check(&set, NULL), 0);
    /* Our own overlapping listens (the wildcard and loopback) coexist. */
    wr_listener_set_close(&set);
    const char *const both[] = {b, a};
    bind_set(&set, 2, both, 2);
    assert_int_equal(check(&set, NULL), 0);
    /* ...and a previous generation's sockets count as ours (reload). */
    struct wr_listener_set next;
    const char *const one[] = {a};
    bind_set(&next, 2, one, 1);
    assert_int_equal(check(&next, &set), 0);
    wr_listener_set_close(&next);
    wr_listener_set_close(&set);
}

static void issue_13_check_unshared_wildcard(void **state)
{
    (void)state;
    /* A wildcard held elsewhere covers our loopback address. */
    uint16_t port = 0;
    int foreign = foreign_socket(AF_INET, "0.0.0.0", &port);
    char a[64];
    snprintf(a, sizeof(a), "127.0.0.1:%u", port);
    const char *const ours[] = {a};
    struct wr_listener_set set;
    bind_set(&set, 2, ours, 1);
    assert_int_equal(check(&set, NULL), -1);
    wr_listener_set_close(&set);
    close(foreign);
    /* IPv6, where the machine has it: [::] (V6ONLY) held elsewhere covers
     * [::1], but not 127.0.0.1. */
    port = 0;
    foreign = foreign_socket(AF_INET6, "::", &port);
    if (foreign < 0)
        return;
    char v6[64], v4[64];
    snprintf(v6, sizeof(v6), "[::1]:%u", port);
    snprintf(v4, sizeof(v4), "127.0.0.1:%u", port);
    const char *const six[] = {v6};
    const char *const four[] = {v4};
    struct wr_listen_addr probe_addr;
    assert_int_equal(wr_units_parse_listen(v6, &probe_addr), 0);
    int fd = open_socket(&probe_addr, true, true); /* fails where there is no ::1 */
    if (fd >= 0) {
        close(fd);
        bind_set(&set, 2, six, 1);
        assert_int_equal(check(&set, NULL), -1);
        wr_listener_set_close(&set);
    }
    bind_set(&set, 2, four, 1);
    assert_int_equal(check(&set, NULL), 0);
    wr_listener_set_close(&set);
    close(foreign);
}

/* The probe: free, held (any kind of listener), or held by our own
 * overlapping column (which open_column then does not probe). */
static void issue_13_probe(void **state)
{
    (void)state;
    uint16_t port = 0;
    int foreign = foreign_socket(AF_INET, "0.0.0.0", &port);
    struct wr_listen_addr addr;
    char text[64];
    snprintf(text, sizeof(text), "127.0.0.1:%u", port);
    assert_int_equal(wr_units_parse_listen(text, &addr), 0);
    errno = 0;
    assert_int_equal(probe_free(&addr), -1);
    assert_int_equal(errno, EADDRINUSE);
    close(foreign);
    assert_int_equal(probe_free(&addr), 0);
}

/* Issue 18: a TCP listener carries TCP_NODELAY, and the sockets it
 * accepts inherit it: no setsockopt per connection. */
/* Listeners set TCP_NODELAY for their connections and defer the accept
 * until the client's first bytes. */
static void issue_18_nodelay_inherited(void **state)
{
    (void)state;
    /* a free port: bound once, let go */
    int probe = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t any_len = sizeof(any);
    assert_int_equal(bind(probe, (struct sockaddr *)&any, sizeof(any)), 0);
    assert_int_equal(getsockname(probe, (struct sockaddr *)&any, &any_len), 0);
    close(probe);
    char text[32];
    snprintf(text, sizeof(text), "127.0.0.1:%u", ntohs(any.sin_port));
    struct wr_listen_addr addr;
    assert_int_equal(wr_units_parse_listen(text, &addr), 0);
    int lfd = wr_listener_open_addr(&addr);
    assert_true(lfd >= 0);
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(cfd, (struct sockaddr *)&sin, len), 0);
    struct pollfd pfd = {.fd = lfd, .events = POLLIN}; /* the listener is non-blocking */
    /* TCP_DEFER_ACCEPT: a silent connection is not handed over yet ... */
    assert_int_equal(poll(&pfd, 1, 200), 0);
    int defer = 0;
    socklen_t defer_len = sizeof(defer);
    assert_int_equal(getsockopt(lfd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, &defer_len), 0);
    assert_true(defer > 0);
    /* ... its first byte makes it acceptable at once. */
    assert_int_equal(write(cfd, "G", 1), 1);
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    int afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    assert_true(afd >= 0);
    int on = 0;
    socklen_t on_len = sizeof(on);
    assert_int_equal(getsockopt(afd, IPPROTO_TCP, TCP_NODELAY, &on, &on_len), 0);
    assert_int_equal(on, 1);
    close(afd);
    close(cfd);
    close(lfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issue_13_overlaps),
        cmocka_unit_test(issue_13_check_unshared),
        cmocka_unit_test(issue_13_check_unshared_wildcard),
        cmocka_unit_test(issue_13_probe),
        cmocka_unit_test(issue_18_nodelay_inherited),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
