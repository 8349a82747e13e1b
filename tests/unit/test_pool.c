/*
 * Unit tests for pool.c: connections to a real listening socket on
 * 127.0.0.1, driven by a private event base. Covers connect completion,
 * hits and misses, the per-server idle cap, expiry, a server closing an
 * idle connection, refused connects, server entries reclaimed once no
 * snapshot in use names them (issue 13.4), and a TLS connection on the
 * stream: a record the socket did not take waits in the connection only
 * while it waits and the pool sends it by itself (issue 14).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "testcert.h"
#include "weir/config.h"
#include "weir/pool.h"
#include "weir/stream.h"

struct fixture {
    struct event_base *base;
    struct wr_pool *pool;
    int listen_fd;
    struct wr_listen_addr addr;
    int n_events;
    short last_what;
};

static void on_event(struct wr_upconn *uc, short what, void *arg)
{
    (void)uc;
    struct fixture *f = arg;
    f->n_events++;
    f->last_what = what;
}

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    f.base = event_base_new();
    f.pool = wr_pool_new(f.base);
    f.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(f.listen_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(f.listen_fd, 16), 0);
    socklen_t len = sizeof(sin);
    getsockname(f.listen_fd, (struct sockaddr *)&sin, &len);
    memcpy(&f.addr.addr, &sin, sizeof(sin));
    f.addr.addr_len = sizeof(sin);
    strcpy(f.addr.text, "127.0.0.1");
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    wr_pool_free(f->pool);
    event_base_free(f->base);
    close(f->listen_fd);
    return 0;
}

/* Runs the loop until an owner event arrived (bounded). */
static void run_until_event(struct fixture *f)
{
    int before = f->n_events;
    for (int i = 0; i < 200 && f->n_events == before; i++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(f->base, &tv);
        event_base_dispatch(f->base);
    }
}

static void run_briefly(struct fixture *f)
{
    struct timeval tv = {0, 20000};
    event_base_loopexit(f->base, &tv);
    event_base_dispatch(f->base);
}

static struct wr_upconn *connected(struct fixture *f, int *server_fd)
{
    struct wr_upconn *uc = wr_pool_connect(f->pool, &f->addr, NULL, 0, on_event, f);
    assert_non_null(uc);
    if (uc->is_connecting) {
        char why[64];
        run_until_event(f);
        assert_true(f->last_what & EV_WRITE);
        assert_int_equal(wr_upconn_connect_error(uc, why, sizeof(why)), 0);
        wr_upconn_want_write(uc, false);
    }
    assert_false(uc->is_connecting);
    *server_fd = accept(f->listen_fd, NULL, NULL);
    assert_true(*server_fd >= 0);
    return uc;
}

static void test_reuse_and_stats(void **state)
{
    struct fixture *f = *state;
    int sfd;
    assert_null(wr_pool_get(f->pool, &f->addr, NULL, on_event, f));
    struct wr_upconn *uc = connected(f, &sfd);
    assert_int_equal(wr_pool_stats(f->pool)->n_open, 1);
    wr_pool_put(uc, 4, 60000);
    assert_int_equal(wr_pool_stats(f->pool)->n_idle, 1);
    struct wr_upconn *again = wr_pool_get(f->pool, &f->addr, NULL, on_event, f);
    assert_ptr_equal(again, uc);
    assert_int_equal(again->n_requests, 2);
    assert_int_equal(wr_pool_stats(f->pool)->n_hits, 1);
    assert_int_equal(wr_pool_stats(f->pool)->n_misses, 1);
    assert_int_equal(wr_pool_stats(f->pool)->n_idle, 0);
    /* Another address is another server: no hit. */
    struct wr_listen_addr other = f->addr;
    ((struct sockaddr_in *)&other.addr)->sin_port ^= 1;
    assert_null(wr_pool_get(f->pool, &other, NULL, on_event, f));
    wr_upconn_close(again);
    assert_int_equal(wr_pool_stats(f->pool)->n_open, 0);
    close(sfd);
}

static void test_idle_cap(void **state)
{
    struct fixture *f = *state;
    int sfd[3];
    struct wr_upconn *uc[3];
    /* One busy at a time: the cap holds at put. */
    for (int i = 0; i < 3; i++) {
        uc[i] = connected(f, &sfd[i]);
        wr_pool_put(uc[i], 2, 60000);
    }
    assert_int_equal(wr_pool_stats(f->pool)->n_idle, 2);
    assert_int_equal(wr_pool_stats(f->pool)->n_open, 2);
    /* Most recently used first. */
    assert_ptr_equal(wr_pool_get(f->pool, &f->addr, NULL, on_event, f), uc[1]);
    wr_upconn_close(uc[1]);
    for (int i = 0; i < 3; i++)
        close(sfd[i]);
}

/* Issue 15: under N requests in flight, the connections given back stay
 * pooled past keepalive (the next burst finds them), and once the load
 * passed the ticks trim them back to keepalive, half the excess a second. */
static void issue_15_pool_keeps_burst(void **state)
{
    struct fixture *f = *state;
    enum { N = 4 };
    int sfd[N];
    struct wr_upconn *uc[N];
    for (int i = 0; i < N; i++)
        uc[i] = connected(f, &sfd[i]);
    for (int i = 0; i < N; i++)
        wr_pool_put(uc[i], 1, 60000);
    assert_int_equal(wr_pool_stats(f->pool)->n_idle, N);
    /* The next burst of N: every one a hit, none connects. */
    for (int i = 0; i < N; i++)
        assert_non_null(wr_pool_get(f->pool, &f->addr, NULL, on_event, f));
    assert_int_equal(wr_pool_stats(f->pool)->n_misses, 0);
    for (int i = 0; i < N; i++)
        wr_pool_put(uc[i], 1, 60000);
    uint64_t t = uc[0]->idle_until_ms - 60000;
    wr_pool_tick(f->pool, t); /* the burst's window ends: still its demand */
    assert_int_equal(wr_pool_stats(f->pool)->n_idle, N);
    wr_pool_tick(f->pool, t + 999); /* within the window: nothing */
    assert_int_equal(wr_pool_stats(f->pool)->n_idle, N);
    wr_pool_tick(f->pool, t + 1000); /* no demand: half of 3 over the cap */
    assert_int_equal(wr_pool_stats(f->pool)->n_idle, 2);
    wr_pool_tick(f->pool, t + 2000);
    assert_int_equal(wr_pool_stats(f->pool)->n_idle, 1);
    wr_pool_tick(f->pool, t + 3000);
    assert_int_equal(wr_pool_stats(f->pool)->n_idle, 1);
    assert_int_equal(wr_pool_stats(f->pool)->n_open, 1);
    /* The one kept is the most recently used. */
    assert_ptr_equal(wr_pool_get(f->pool, &f->addr, NULL, on_event, f), uc[N - 1]);
    wr_upconn_close(uc[N - 1]);
    for (int i = 0; i < N; i++)
        close(sfd[i]);
}

static void test_expiry(void **state)
{
    struct fixture *f = *state;
    int sfd;
    struct wr_upconn *uc = connected(f, &sfd);
    wr_pool_put(uc, 4, 1000);
    wr_pool_tick(f->pool, uc->idle_until_ms - 1);
    assert_int_equal(wr_pool_stats(f->pool)->n_idle, 1);
    wr_pool_tick(f->pool, uc->idle_until_ms);
    assert_int_equal(wr_pool_stats(f->pool)->n_idle, 0);
    assert_int_equal(wr_pool_stats(f->pool)->n_open, 0);
    close(sfd);
}

static void test_server_closes_idle(void **state)
{
    struct fixture *f = *state;
    int sfd;
    struct wr_upconn *uc = connected(f, &sfd);
    wr_pool_put(uc, 4, 60000);
    close(sfd);
    for (int i = 0; i < 50 && wr_pool_stats(f->pool)->n_idle > 0; i++)
        run_briefly(f);
    assert_int_equal(wr_pool_stats(f->pool)->n_idle, 0);
    assert_null(wr_pool_get(f->pool, &f->addr, NULL, on_event, f));
}

static void test_refused(void **state)
{
    struct fixture *f = *state;
    struct wr_listen_addr dead = f->addr;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&sin, sizeof(sin));
    socklen_t len = sizeof(sin);
    getsockname(fd, (struct sockaddr *)&sin, &len);
    close(fd); /* bound once, now nobody listens there */
    memcpy(&dead.addr, &sin, sizeof(sin));
    struct wr_upconn *uc = wr_pool_connect(f->pool, &dead, NULL, 0, on_event, f);
    if (uc == NULL) {
        assert_int_equal(errno, ECONNREFUSED);
        return;
    }
    char why[64];
    run_until_event(f);
    assert_int_equal(wr_upconn_connect_error(uc, why, sizeof(why)), ECONNREFUSED);
    assert_string_equal(why, "connect: Connection refused");
    wr_upconn_close(uc);
}

/* A snapshot whose one plain upstream has one server at addr. */
struct one_server_cfg {
    struct wr_config cfg;
    struct wr_upstream_cfg up;
    struct wr_upstream_server_cfg srv;
};

static void one_server_cfg_init(struct one_server_cfg *o, const struct wr_listen_addr *addr)
{
    memset(o, 0, sizeof(*o));
    o->srv.addr = *addr;
    o->up.servers = &o->srv;
    o->up.n_servers = 1;
    o->cfg.upstreams = &o->up;
    o->cfg.n_upstreams = 1;
}

static uint64_t n_entries(const struct fixture *f)
{
    return wr_pool_stats(f->pool)->n_servers;
}

/* Every reload brings new TLS contexts (and re-resolved addresses): the
 * entries of snapshots nobody uses any more go, idle connections first;
 * the entries of snapshots in use stay, with their idle connections. */
static void issue_13_pool_entries_swept(void **state)
{
    struct fixture *f = *state;
    struct one_server_cfg live, gone;
    struct wr_listen_addr other = f->addr;
    ((struct sockaddr_in *)&other.addr)->sin_port ^= 1;
    one_server_cfg_init(&live, &f->addr);
    one_server_cfg_init(&gone, &other);
    int sfd;
    wr_pool_put(connected(f, &sfd), 4, 60000);
    assert_int_equal(n_entries(f), 1);
    /* Named by a snapshot in use: kept, and so is its idle connection. */
    wr_pool_keep(f->pool, &gone.cfg);
    wr_pool_keep(f->pool, &live.cfg);
    wr_pool_sweep(f->pool);
    assert_int_equal(n_entries(f), 1);
    assert_int_equal(wr_pool_stats(f->pool)->n_idle, 1);
    /* A keep counts for one sweep only: named by nobody now, it goes. */
    wr_pool_sweep(f->pool);
    assert_int_equal(n_entries(f), 0);
    assert_int_equal(wr_pool_stats(f->pool)->n_idle, 0);
    assert_int_equal(wr_pool_stats(f->pool)->n_open, 0);
    close(sfd);
    /* Many snapshots come and go: the count stays at what is in use. */
    for (int i = 0; i < 50; i++) {
        struct wr_upconn *uc = connected(f, &sfd);
        wr_pool_put(uc, 4, 60000);
        close(sfd);
        wr_pool_keep(f->pool, &gone.cfg);
        wr_pool_sweep(f->pool);
        assert_int_equal(n_entries(f), 0);
    }
}

/* An entry swept while a connection is busy is retired: that connection
 * closes when given back (no snapshot could take it), and the entry goes
 * with it; asked for again before, it serves as before. */
static void issue_13_pool_retired_entry(void **state)
{
    struct fixture *f = *state;
    int sfd[2];
    struct wr_upconn *busy = connected(f, &sfd[0]);
    wr_pool_sweep(f->pool);
    assert_int_equal(n_entries(f), 1);
    wr_pool_put(busy, 4, 60000);
    assert_int_equal(wr_pool_stats(f->pool)->n_idle, 0);
    assert_int_equal(wr_pool_stats(f->pool)->n_open, 0);
    assert_int_equal(n_entries(f), 0);
    close(sfd[0]);
    /* Retired, then wanted again by a live snapshot: pooled as usual. */
    busy = connected(f, &sfd[0]);
    wr_pool_sweep(f->pool);
    struct wr_upconn *again = connected(f, &sfd[1]);
    wr_pool_put(again, 4, 60000);
    assert_int_equal(wr_pool_stats(f->pool)->n_idle, 1);
    wr_upconn_close(busy);
    assert_int_equal(n_entries(f), 1);
    assert_ptr_equal(wr_pool_get(f->pool, &f->addr, NULL, on_event, f), again);
    wr_upconn_close(again);
    for (int i = 0; i < 2; i++)
        close(sfd[i]);
}

/* ---- TLS on the stream (issue 14) -------------------------------------------- */

/* A snapshot with [tls] (a throwaway certificate in dir) and one upstream
 * with tls = on, its contexts attached. */
static struct wr_config *tls_config(const char *dir)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "[server]\nlisten = 127.0.0.1:1 tls\n[tls]\ncert = %s/s.crt\nkey = %s/s.key\n"
             "[upstream u]\nserver = 127.0.0.1:1\ntls = on\ntls_verify = off\n",
             dir, dir);
    struct wr_config_errors errs = {0};
    struct wr_config *cfg = wr_config_parse_string(text, "t.ini", &errs);
    assert_non_null(cfg);
    struct wr_tls_set *set = wr_tls_set_new(cfg, NULL, NULL, &errs);
    assert_non_null(set);
    wr_config_errors_fini(&errs);
    wr_tls_set_attach(cfg, set);
    return cfg;
}

/* Connects with TLS; the server side (a stream on the accepted socket) is
 * driven between turns of the pool's loop until the owner hears. */
static struct wr_upconn *tls_connected(struct fixture *f, const struct wr_config *cfg,
                                       struct wr_stream *sv, struct wr_stream_stage *stage)
{
    struct wr_upconn *uc =
        wr_pool_connect(f->pool, &f->addr, cfg->upstreams[0].tls_client, 0, on_event, f);
    assert_non_null(uc);
    int sfd = accept(f->listen_fd, NULL, NULL);
    assert_true(sfd >= 0);
    fcntl(sfd, F_SETFL, O_NONBLOCK);
    wr_stream_init(sv, sfd);
    assert_int_equal(wr_stream_tls_server(sv, cfg->tls_set, stage), 0);
    char why[128];
    bool is_server_done = false;
    int before = f->n_events;
    for (int i = 0; i < 200 && f->n_events == before; i++) {
        if (!is_server_done)
            is_server_done = wr_stream_handshake(sv, why, sizeof(why)) == WR_TLS_DONE;
        run_briefly(f);
    }
    assert_true(f->last_what & EV_WRITE);
    assert_int_equal(wr_upconn_connect_error(uc, why, sizeof(why)), 0);
    assert_false(uc->is_connecting);
    return uc;
}

/* A pooled TLS connection holds no plaintext buffer while it is not
 * blocked: one appears when a record cannot go, the pool sends it on the
 * next writable event without the owner asking, and it goes away. */
static void issue_14_pool_tls_record_waits(void **state)
{
    struct fixture *f = *state;
    signal(SIGPIPE, SIG_IGN);
    char dir[64];
    snprintf(dir, sizeof(dir), "/tmp/weir-test-pool-XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(testcert_make(dir, "s", "s.test"), 0);
    struct wr_config *cfg = tls_config(dir);
    struct wr_stream_stage *stage = wr_stream_stage_new();
    struct wr_stream sv;
    struct wr_upconn *uc = tls_connected(f, cfg, &sv, stage);
    const struct wr_stream_stats *st = wr_pool_stream_stats(f->pool);
    assert_int_equal(st->n_pending, 0);
    int small = 4096;
    setsockopt(uc->s.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    char chunk[3000];
    memset(chunk, 'x', sizeof(chunk));
    struct iovec iov[2] = {{chunk, 1000}, {chunk + 1000, 2000}};
    size_t sent = 0;
    for (int i = 0; i < 10000 && st->n_pending == 0; i++) {
        ssize_t w = wr_upconn_writev(uc, iov, 2);
        assert_true(w > 0); /* taken, even the record that must wait */
        sent += (size_t)w;
    }
    assert_int_equal(st->n_pending, 1);
    assert_true(uc->is_write_armed);   /* the pool's own need... */
    assert_false(uc->is_write_wanted); /* ...not the owner's */
    int before = f->n_events;
    char buf[16384];
    size_t got = 0;
    for (int i = 0; i < 2000 && (got < sent || st->n_pending > 0); i++) {
        ssize_t n = wr_stream_read(&sv, buf, sizeof(buf));
        if (n > 0)
            got += (size_t)n;
        run_briefly(f);
    }
    assert_int_equal(got, sent);
    assert_int_equal(st->n_pending, 0);
    assert_int_equal(st->pending_bytes, 0);
    assert_false(uc->is_write_armed);
    assert_int_equal(f->n_events, before); /* the owner heard nothing */
    /* Idle in the pool: nothing held but the connection itself. */
    wr_pool_put(uc, 4, 60000);
    assert_int_equal(wr_pool_stats(f->pool)->n_idle, 1);
    assert_ptr_equal(wr_pool_get(f->pool, &f->addr, cfg->upstreams[0].tls_client, on_event, f),
                     uc);
    wr_upconn_close(uc);
    wr_stream_fini(&sv);
    wr_stream_stage_free(stage);
    wr_config_unref(cfg);
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reuse_and_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_15_pool_keeps_burst, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_closes_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_13_pool_entries_swept, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_13_pool_retired_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_14_pool_tls_record_waits, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
