/*
 * Unit tests for conn.c, the HTTP/1 front end's state machine (issue 14,
 * point 5): a struct wr_conns on a real event base, the fake clock
 * (clock.h), one end of a socketpair handed to wr_conn_take and the other
 * end played by the test. Faults come from the fake stream under conn
 * (fake_stream.h, linked in with ld --wrap): EAGAIN, short I/O, resets and
 * ends at a chosen read or write. The loop runs on the test thread
 * (one EVLOOP_ONCE | EVLOOP_NONBLOCK pass at a time): no threads, no sleeps, no wall-clock timing.
 *
 * Every case checks that the connection closes exactly once (wr_stream_fini
 * on its descriptor) when it should, and ASan that nothing leaks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fake_stream.h"
#include "weir/clock.h"
#include "weir/conn.h"
#include "weir/limits.h"
#include "weir/metrics.h"

#define MAX_PASSES 400 /* loop passes any case may need; every wait is bounded by it */

static const char config_text[] =
    "[server]\nlisten = unix:/tmp/weir_test_conn.sock\nworkers = 1\naccess_log = off\n"
    "error_log = stderr\n"
    "[limits]\nheader_timeout = 10s\nbody_timeout = 7s\nkeepalive_timeout = 30s\n"
    "send_timeout = 5s\nmax_body_size = 1k\n"
    "[route a]\nmatch = exact:/a\nreturn = 200 A\n"
    "[route b]\nmatch = prefix:/\nreturn = 200 B\n";

static const char get_a[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
static const char get_b[] = "GET /b HTTP/1.1\r\nHost: x\r\n\r\n";

/* ---- the fake clock --------------------------------------------------- */

static _Atomic uint64_t fake_now_us = 1000000000;

static uint64_t fake_clock(void)
{
    return atomic_load(&fake_now_us);
}

static void advance_ms(uint64_t ms)
{
    atomic_fetch_add(&fake_now_us, ms * 1000);
}

/* ---- the fixture ------------------------------------------------------ */

struct fx {
    struct event_base *base;
    struct wr_config *cfg;
    struct wr_metrics *metrics;
    struct wr_limits *limits;
    atomic_uint_fast64_t n_conns;
    struct wr_conns cs;
    int fd;            /* the connection's end (conn owns it once taken) */
    int peer;          /* the client: the test's end; -1 once closed */
    char out[64 * 1024];
    size_t out_len;
    bool is_eof;       /* the client read the end of the stream */
    /* The proxied cases: the test also plays the server behind route p. */
    int up_listen;     /* listening at up_path, or -1 */
    int up;            /* the server's end of weir's upstream connection, or -1 */
    char up_in[8192];  /* what the server received on up */
    size_t up_in_len;
    bool is_up_eof;    /* weir closed the upstream connection */
};

/* A route p proxying to a server on a unix socket the test listens on. */
static const char proxy_config_fmt[] =
    "[server]\nlisten = unix:/tmp/weir_test_conn.sock\nworkers = 1\naccess_log = off\n"
    "error_log = stderr\n"
    "[limits]\nheader_timeout = 10s\nbody_timeout = 7s\nkeepalive_timeout = 30s\n"
    "send_timeout = 5s\nmax_body_size = 1k\n"
    "[upstream app]\nserver = unix:%s\n"
    "[route p]\nmatch = prefix:/\nproxy = app\n";
static char up_path[100];

static int setup_with(void **state, const char *text, int up_listen)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->up_listen = up_listen;
    f->up = -1;
    wr_clock_set_source(fake_clock);
    fs_reset_all();
    struct wr_config_errors errs = {0};
    f->cfg = wr_config_parse_string(text, "test.ini", &errs);
    wr_config_errors_fini(&errs);
    assert_non_null(f->cfg);
    f->base = event_base_new();
    f->metrics = wr_metrics_new(1);
    f->limits = wr_limits_new();
    assert_non_null(f->base);
    assert_non_null(f->metrics);
    assert_non_null(f->limits);
    atomic_init(&f->n_conns, 0);
    const struct wr_access_log_fds no_logs = {.server = -1};
    assert_int_equal(wr_conns_init(&f->cs, 0, f->base, f->cfg, &no_logs, &f->n_conns, f->limits),
                     0);
    f->cs.metrics = wr_metrics_worker(f->metrics, 0);
    f->fd = f->peer = -1;
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, config_text, -1);
}

/* setup with route p proxying to a unix socket the test accepts on. */
static int setup_proxy(void **state)
{
    snprintf(up_path, sizeof(up_path), "/tmp/weir_test_conn_up.%d.sock", (int)getpid());
    unlink(up_path);
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(l >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", up_path);
    assert_int_equal(bind(l, (const struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(l, 16), 0);
    char text[1024];
    snprintf(text, sizeof(text), proxy_config_fmt, up_path);
    return setup_with(state, text, l);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->peer >= 0)
        close(f->peer);
    if (f->up >= 0)
        close(f->up);
    if (f->up_listen >= 0) {
        close(f->up_listen);
        unlink(up_path);
    }
    wr_conns_fini(&f->cs);
    assert_int_equal(atomic_load(&f->n_conns), 0);
    event_base_free(f->base);
    wr_config_unref(f->cfg);
    wr_metrics_free(f->metrics);
    wr_limits_free(f->limits);
    wr_clock_set_source(NULL);
    free(f);
    return 0;
}

/* A new client connection, taken by conn; the previous one's end closed. */
static void open_conn(struct fx *f)
{
    if (f->peer >= 0)
        close(f->peer);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    f->fd = sv[0];
    f->peer = sv[1];
    f->out_len = 0;
    f->is_eof = false;
    fs_track(f->fd);
    atomic_fetch_add(&f->n_conns, 1);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    wr_conn_take(&f->cs, f->fd, (const struct sockaddr *)&sa, sizeof(sa.sun_family), 0);
}

/* What the client can read now. */
static void read_peer(struct fx *f)
{
    while (f->peer >= 0 && !f->is_eof && f->out_len < sizeof(f->out) - 1) {
        ssize_t n = read(f->peer, f->out + f->out_len, sizeof(f->out) - 1 - f->out_len);
        if (n == 0)
            f->is_eof = true;
        if (n <= 0)
            break;
        f->out_len += (size_t)n;
    }
    f->out[f->out_len] = '\0';
}

/* n passes of the loop, reading what the client got after each. */
static void pump(struct fx *f, int n)
{
    for (int i = 0; i < n; i++) {
        event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        read_peer(f);
    }
}

static void send_peer(struct fx *f, const char *p, size_t n)
{
    assert_int_equal(write(f->peer, p, n), (ssize_t)n);
}

static size_t count(const char *hay, const char *needle)
{
    size_t k = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        k++;
    return k;
}

static size_t n_responses(const struct fx *f)
{
    return count(f->out, "HTTP/1.1 ");
}

/* Pumps until the client holds n responses whose bodies have all arrived
 * (bounded). The bodies are one byte ("A", "B"). */
static void pump_until_responses(struct fx *f, size_t n)
{
    for (int i = 0; i < MAX_PASSES; i++) {
        if (n_responses(f) >= n && f->out_len > 0 &&
            count(f->out, "\r\n\r\n") >= n && f->out[f->out_len - 1] != '\n')
            return;
        pump(f, 1);
    }
}

/* The bodies of the responses the client got, in order ("AB..."). */
static void bodies(const struct fx *f, char *out, size_t cap)
{
    size_t k = 0;
    for (const char *p = f->out; (p = strstr(p, "\r\n\r\n")) && k + 1 < cap; p += 4) {
        if (p[4] != '\0' && p[4] != 'H')
            out[k++] = p[4];
    }
    out[k] = '\0';
}

/* The connection is gone, closed exactly once. */
static void assert_closed_once(const struct fx *f)
{
    assert_int_equal(f->cs.n_live, 0);
    assert_int_equal(fs_n_finis(f->fd), 1);
}

static void assert_open(const struct fx *f)
{
    assert_int_equal(f->cs.n_live, 1);
    assert_int_equal(fs_n_finis(f->fd), 0);
}

/* The client ends its side, and the connection is closed (at once, or
 * after its lingering close sees that end). */
static void end_and_check_closed(struct fx *f)
{
    shutdown(f->peer, SHUT_WR);
    pump(f, 4);
    assert_closed_once(f);
}

/* ---- framing: splits, pipelining, keep-alive, bodies -------------------- */

/* A head split at every byte boundary is answered once, when complete. */
static void issue_14_conn_split_every_byte(void **state)
{
    struct fx *f = *state;
    size_t len = strlen(get_a);
    for (size_t k = 1; k < len; k++) {
        open_conn(f);
        send_peer(f, get_a, k);
        pump(f, 4);
        assert_int_equal(f->out_len, 0);
        send_peer(f, get_a + k, len - k);
        pump_until_responses(f, 1);
        assert_int_equal(n_responses(f), 1);
        assert_non_null(strstr(f->out, "\r\n\r\nA"));
        assert_open(f);
        end_and_check_closed(f);
    }
    /* Every read takes one byte: the head arrives in len reads. */
    open_conn(f);
    fs_max_read(f->fd, 1);
    send_peer(f, get_a, len);
    pump_until_responses(f, 1);
    assert_int_equal(n_responses(f), 1);
    assert_true(fs_n_reads(f->fd) >= len);
    end_and_check_closed(f);
}

/* Three requests in one write are answered in order; read one byte at a
 * time they are too. An HTTP/1.0 request ends the connection: what follows
 * it is never answered. */
static void issue_14_conn_pipelined(void **state)
{
    struct fx *f = *state;
    char three[256];
    snprintf(three, sizeof(three), "%s%s%s", get_a, get_b, get_a);
    for (size_t max = 0; max <= 1; max++) {
        open_conn(f);
        fs_max_read(f->fd, max);
        send_peer(f, three, strlen(three));
        pump_until_responses(f, 3);
        char got[8];
        bodies(f, got, sizeof(got));
        assert_string_equal(got, "ABA");
        assert_open(f);
        end_and_check_closed(f);
    }
    open_conn(f);
    snprintf(three, sizeof(three), "GET /a HTTP/1.0\r\n\r\n%s", get_b);
    send_peer(f, three, strlen(three));
    pump(f, 8);
    assert_true(f->is_eof); /* our side shut after the answer: lingering */
    assert_int_equal(n_responses(f), 1); /* HTTP/1.1 is what we speak, to 1.0 too */
    assert_null(strstr(f->out, "\r\n\r\nB"));
    assert_non_null(strstr(f->out, "Connection: close"));
    end_and_check_closed(f);
}

/* Keep-alive: requests with idle gaps on one connection; the idle one is
 * closed after keepalive_timeout (fake clock), not before. */
static void issue_14_conn_keep_alive(void **state)
{
    struct fx *f = *state;
    open_conn(f);
    for (int i = 0; i < 3; i++) {
        send_peer(f, get_b, strlen(get_b));
        pump_until_responses(f, (size_t)i + 1);
        assert_int_equal(n_responses(f), (size_t)i + 1);
        advance_ms(20000); /* idle, under keepalive_timeout */
        wr_conns_tick(&f->cs);
        pump(f, 2);
        assert_open(f);
    }
    advance_ms(9000); /* 29 s idle */
    wr_conns_tick(&f->cs);
    pump(f, 2);
    assert_open(f);
    advance_ms(2000);
    wr_conns_tick(&f->cs);
    pump(f, 2);
    assert_closed_once(f);
    assert_true(f->is_eof);
}

/* A body arriving in pieces (split at every byte boundary) is read and
 * discarded; the answer is held until the body is complete, and the
 * pipelined request behind it is answered next. Content-Length and
 * chunked. */
static void issue_14_conn_body_in_pieces(void **state)
{
    struct fx *f = *state;
    static const char *const reqs[] = {
        "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789",
        "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n0a\r\n0123456789\r\n0\r\n\r\n",
    };
    for (size_t r = 0; r < 2; r++) {
        char all[256];
        snprintf(all, sizeof(all), "%s%s", reqs[r], get_b);
        size_t body_end = strlen(reqs[r]), len = strlen(all);
        size_t head_end = (size_t)(strstr(all, "\r\n\r\n") - all) + 4;
        for (size_t k = head_end; k < body_end; k++) {
            open_conn(f);
            send_peer(f, all, k);
            pump(f, 4);
            assert_int_equal(f->out_len, 0); /* held: the body is not complete */
            send_peer(f, all + k, len - k);
            pump_until_responses(f, 2);
            char got[8];
            bodies(f, got, sizeof(got));
            assert_string_equal(got, "AB");
            assert_open(f);
            end_and_check_closed(f);
        }
    }
}

/* Bad framing is a 400 with Connection: close, then the lingering close;
 * a body over max_body_size a 413. */
static void issue_14_conn_bad_framing_400(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *req;
        const char *status;
    } cases[] = {
        {"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
         "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "HTTP/1.1 400"},
        {"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
         "HTTP/1.1 400"},
        {"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", "HTTP/1.1 400"},
        {"GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", "HTTP/1.1 400"},
        {"GARBAGE\r\n\r\n", "HTTP/1.1 400"},
        {"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", "HTTP/1.1 413"},
        {"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n",
         NULL /* the 413 comes once the chunk's size is read: below */},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        open_conn(f);
        send_peer(f, cases[i].req, strlen(cases[i].req));
        if (!cases[i].status) {
            char big[1100];
            memset(big, 'x', sizeof(big));
            send_peer(f, big, sizeof(big));
        }
        pump(f, 8);
        const char *status = cases[i].status ? cases[i].status : "HTTP/1.1 413";
        if (strncmp(f->out, status, strlen(status)) != 0)
            fail_msg("case %zu: got \"%.40s\"", i, f->out);
        assert_int_equal(n_responses(f), 1);
        assert_non_null(strstr(f->out, "Connection: close"));
        assert_true(f->is_eof); /* shut after the answer: lingering now */
        end_and_check_closed(f);
    }
}

/* ---- faults at every step ---------------------------------------------- */

/* The reference answer to get_a, byte for byte (the Date line does not
 * move: the fixture's clock is refreshed by ticks only). */
static void reference(struct fx *f, char *out, size_t cap)
{
    open_conn(f);
    send_peer(f, get_a, strlen(get_a));
    pump_until_responses(f, 1);
    assert_true(f->out_len < cap);
    memcpy(out, f->out, f->out_len + 1);
    end_and_check_closed(f);
}

/* EAGAIN at every read (5 bytes a read) and at every write (7 bytes a
 * write) of one exchange: the same answer, the connection still open. */
static void issue_14_conn_eagain_every_step(void **state)
{
    struct fx *f = *state;
    char want[1024];
    reference(f, want, sizeof(want));
    size_t n_reads = strlen(get_a) / 5 + 2, n_writes = strlen(want) / 7 + 2;
    for (unsigned k = 0; k < n_reads; k++) {
        open_conn(f);
        fs_max_read(f->fd, 5);
        fs_on_read(f->fd, k, FS_EAGAIN, 0);
        send_peer(f, get_a, strlen(get_a));
        pump_until_responses(f, 1);
        assert_string_equal(f->out, want);
        assert_open(f);
        end_and_check_closed(f);
    }
    for (unsigned k = 0; k < n_writes; k++) {
        open_conn(f);
        fs_max_write(f->fd, 7);
        fs_on_write(f->fd, k, FS_EAGAIN, 0);
        fs_on_write(f->fd, k + 1, FS_EAGAIN, 0);
        send_peer(f, get_a, strlen(get_a));
        pump_until_responses(f, 1);
        assert_string_equal(f->out, want);
        assert_open(f);
        end_and_check_closed(f);
    }
}

/* The client closes after every prefix of its request: nothing is
 * answered to a partial head, the whole one is (a half-close after the
 * request is not an abort), and the connection closes exactly once. */
static void issue_14_conn_peer_close_every_step(void **state)
{
    struct fx *f = *state;
    size_t len = strlen(get_a);
    for (size_t k = 0; k <= len; k++) {
        open_conn(f);
        send_peer(f, get_a, k);
        shutdown(f->peer, SHUT_WR);
        pump(f, 8);
        assert_int_equal(n_responses(f), k == len ? 1 : 0);
        assert_true(f->is_eof);
        assert_closed_once(f);
    }
    /* A body cut by the client's end: closed, unanswered (the answer was
     * held for the body). */
    static const char post[] = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab";
    open_conn(f);
    send_peer(f, post, strlen(post));
    pump(f, 4);
    shutdown(f->peer, SHUT_WR);
    pump(f, 4);
    assert_int_equal(f->out_len, 0);
    assert_closed_once(f);
}

/* A reset or an end of the stream at every read step (3 bytes a read),
 * and a failed write at every write step (7 bytes a write): the connection
 * closes exactly once and nothing leaks. */
static void issue_14_conn_faults_every_step(void **state)
{
    struct fx *f = *state;
    char want[1024];
    reference(f, want, sizeof(want));
    static const enum fs_kind kinds[] = {FS_RESET, FS_EOF};
    for (size_t i = 0; i < 2; i++) {
        for (unsigned k = 0; k < strlen(get_a) / 3 + 2; k++) {
            open_conn(f);
            fs_max_read(f->fd, 3);
            fs_on_read(f->fd, k, kinds[i], 0);
            send_peer(f, get_a, strlen(get_a));
            pump(f, 24);
            if (fs_n_reads(f->fd) <= k) { /* the fault came after the request: unused */
                assert_string_equal(f->out, want);
                assert_open(f);
                end_and_check_closed(f);
                continue;
            }
            assert_closed_once(f);
            assert_int_equal(n_responses(f), 0);
        }
    }
    for (unsigned k = 0; k < strlen(want) / 7 + 1; k++) {
        open_conn(f);
        fs_max_write(f->fd, 7);
        fs_on_write(f->fd, k, FS_RESET, 0);
        send_peer(f, get_a, strlen(get_a));
        pump(f, 24);
        assert_closed_once(f);
        assert_int_equal(f->out_len, 7 * k); /* what went before the failure */
    }
}

/* ---- deadlines (fake clock) ------------------------------------------- */

/* A client that stops reading: send_timeout after the last write progress
 * closes it, not earlier. A half-sent head: header_timeout. */
static void issue_14_conn_timeouts(void **state)
{
    struct fx *f = *state;
    open_conn(f);
    fs_block_writes(f->fd, 1);
    send_peer(f, get_a, strlen(get_a));
    pump(f, 4);
    assert_int_equal(f->out_len, 0);
    advance_ms(4800);
    wr_conns_tick(&f->cs);
    pump(f, 2);
    assert_open(f);
    advance_ms(400); /* 5.2 s: past send_timeout (5 s) by more than a tick */
    wr_conns_tick(&f->cs);
    pump(f, 2);
    assert_closed_once(f);

    open_conn(f);
    send_peer(f, get_a, 10);
    pump(f, 4);
    advance_ms(9800);
    wr_conns_tick(&f->cs);
    pump(f, 2);
    assert_open(f);
    advance_ms(400);
    wr_conns_tick(&f->cs);
    pump(f, 2);
    assert_closed_once(f);
    assert_int_equal(n_responses(f), 0);
}

/* ---- a proxied exchange in flight (route p, the test as the server) ---- */

/* What the server can read now on weir's upstream connection. */
static void read_up(struct fx *f)
{
    while (f->up >= 0 && !f->is_up_eof && f->up_in_len < sizeof(f->up_in) - 1) {
        ssize_t n = read(f->up, f->up_in + f->up_in_len, sizeof(f->up_in) - 1 - f->up_in_len);
        if (n == 0)
            f->is_up_eof = true;
        if (n <= 0)
            break;
        f->up_in_len += (size_t)n;
    }
    f->up_in[f->up_in_len] = '\0';
}

/* Pumps until weir has connected to the server and the server holds
 * needle (bounded); the connection is accepted on the way. */
static void pump_until_up_has(struct fx *f, const char *needle)
{
    for (int i = 0; i < MAX_PASSES; i++) {
        if (f->up < 0) {
            f->up = accept4(f->up_listen, NULL, NULL, SOCK_NONBLOCK);
            f->up_in_len = 0;
            f->is_up_eof = false;
        }
        read_up(f);
        if (f->up >= 0 && strstr(f->up_in, needle))
            return;
        pump(f, 1);
    }
    fail_msg("the server never got \"%s\" (has \"%s\")", needle, f->up_in);
}

/* Pumps until the client's output holds needle (bounded). */
static void pump_until_out_has(struct fx *f, const char *needle)
{
    for (int i = 0; i < MAX_PASSES && !strstr(f->out, needle); i++)
        pump(f, 1);
    if (!strstr(f->out, needle))
        fail_msg("the client never got \"%s\" (has \"%s\")", needle, f->out);
}

/* Pumps until weir has closed the upstream connection (bounded). */
static void pump_until_up_closed(struct fx *f)
{
    for (int i = 0; i < MAX_PASSES && !f->is_up_eof; i++) {
        pump(f, 1);
        read_up(f);
    }
    assert_true(f->is_up_eof);
}

static void up_send(struct fx *f, const char *p, size_t n)
{
    assert_int_equal(write(f->up, p, n), (ssize_t)n);
}

/* The server's end of the upstream connection goes; the next proxied
 * request gets a new one. */
static void up_close(struct fx *f)
{
    close(f->up);
    f->up = -1;
}

/* Expect: 100-continue through the proxy: the interim 100 goes to the
 * client once the handler wants the body (the server has the head), the
 * body follows, the final answer is relayed and the connection goes on. */
static void issue_14_conn_proxied_continue(void **state)
{
    struct fx *f = *state;
    static const char head[] = "POST /u HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                               "Content-Length: 5\r\n\r\n";
    open_conn(f);
    send_peer(f, head, strlen(head));
    pump_until_up_has(f, "\r\n\r\n");
    pump_until_out_has(f, "HTTP/1.1 100 Continue\r\n\r\n");
    assert_null(strstr(f->up_in, "hello"));
    send_peer(f, "hello", 5);
    pump_until_up_has(f, "\r\n\r\nhello");
    static const char resp[] = "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
    up_send(f, resp, strlen(resp));
    pump_until_out_has(f, "\r\n\r\nok");
    const char *cont = strstr(f->out, "100 Continue");
    const char *final = strstr(f->out, "201 Created");
    assert_non_null(final);
    assert_true(cont < final);
    assert_open(f);
    /* The connection serves the next request through the pooled server
     * connection. */
    f->out_len = 0;
    f->out[0] = '\0';
    f->up_in_len = 0;
    f->up_in[0] = '\0';
    send_peer(f, get_a, strlen(get_a));
    pump_until_up_has(f, "GET /a");
    up_send(f, resp, strlen(resp));
    pump_until_out_has(f, "\r\n\r\nok");
    end_and_check_closed(f);
}

/* The client goes away in the middle of a relayed body: the exchange is
 * stopped when its write fails, the connection closes once, and the
 * upstream connection (mid-response) is closed, not pooled. */
static void issue_14_conn_proxied_client_gone(void **state)
{
    struct fx *f = *state;
    open_conn(f);
    send_peer(f, get_a, strlen(get_a));
    pump_until_up_has(f, "\r\n\r\n");
    static const char part[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345";
    up_send(f, part, strlen(part));
    pump_until_out_has(f, "12345");
    close(f->peer);
    f->peer = -1;
    up_send(f, "678", 3);
    pump_until_up_closed(f);
    assert_closed_once(f);
}

/* The server closes after every prefix of its response: before the whole
 * head the client gets a 502 (and the connection goes on); after it, the
 * head and what came of the body, then the connection is cut (a truncated
 * body must not look complete). Every upstream connection is closed. */
static void issue_14_conn_proxied_server_close_every_step(void **state)
{
    struct fx *f = *state;
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd";
    size_t head_len = strlen(resp) - 4;
    for (size_t k = 0; k < strlen(resp); k++) {
        open_conn(f);
        send_peer(f, get_a, strlen(get_a));
        pump_until_up_has(f, "\r\n\r\n");
        up_send(f, resp, k);
        up_close(f);
        if (k < head_len) {
            pump_until_out_has(f, "HTTP/1.1 502 ");
            assert_open(f);
            end_and_check_closed(f);
        } else {
            for (int i = 0; i < MAX_PASSES && !f->is_eof; i++)
                pump(f, 1);
            assert_true(f->is_eof);
            /* weir's own head (Date, Server...), then exactly the body
             * bytes the server sent, then the end. */
            assert_int_equal(strncmp(f->out, "HTTP/1.1 200 OK\r\n", 17), 0);
            assert_non_null(strstr(f->out, "Content-Length: 4\r\n"));
            const char *body = strstr(f->out, "\r\n\r\n") + 4;
            assert_int_equal(strlen(body), k - head_len);
            assert_int_equal(strncmp(body, resp + head_len, k - head_len), 0);
            assert_closed_once(f);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(issue_14_conn_split_every_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_14_conn_pipelined, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_14_conn_keep_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_14_conn_body_in_pieces, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_14_conn_bad_framing_400, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_14_conn_eagain_every_step, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_14_conn_peer_close_every_step, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_14_conn_faults_every_step, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_14_conn_timeouts, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_14_conn_proxied_continue, setup_proxy, teardown),
        cmocka_unit_test_setup_teardown(issue_14_conn_proxied_client_gone, setup_proxy,
                                        teardown),
        cmocka_unit_test_setup_teardown(issue_14_conn_proxied_server_close_every_step,
                                        setup_proxy, teardown),
    };
    signal(SIGPIPE, SIG_IGN); /* as weir: a client gone mid-write is an EPIPE */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
