/*
 * stream: plain and TLS streams over socketpairs (certificates made here
 * with OpenSSL into a temp dir; a weir client stream against a weir server
 * stream). Covers reads and writes, short writes and EAGAIN at each step,
 * peer close, close_notify against a bare close (truncation on the client
 * side, a clean end when idle), the deferred end, sendfile on plain TCP
 * and bounded records on TLS, a file shrinking under us, and the TLS
 * staging contract: a record the socket did not take counts as taken and
 * waits in a buffer that exists only while it waits (issue 14, P2).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "testcert.h"
#include "weir/config.h"
#include "weir/stream.h"
#include "weir/tls.h"

static char dir[64];

/* ---- fixtures -------------------------------------------------------------- */

static struct wr_config *cfg; /* [tls] and an [upstream] with tls = on, its set attached */

static int setup_all(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN); /* OpenSSL writes with write(2) */
    snprintf(dir, sizeof(dir), "/tmp/weir-test-stream-XXXXXX");
    if (!mkdtemp(dir) || testcert_make(dir, "s", "s.test") < 0)
        return -1;
    char text[1024];
    snprintf(text, sizeof(text),
             "[server]\nlisten = 127.0.0.1:1 tls\n[tls]\ncert = %s/s.crt\nkey = %s/s.key\n"
             "[upstream u]\nserver = 127.0.0.1:1\ntls = on\ntls_verify = off\n",
             dir, dir);
    struct wr_config_errors errs = {0};
    cfg = wr_config_parse_string(text, "t.ini", &errs);
    for (size_t i = 0; i < errs.n_lines; i++)
        fprintf(stderr, "%s\n", errs.lines[i]);
    wr_config_errors_fini(&errs);
    if (!cfg)
        return -1;
    struct wr_tls_set *set = wr_tls_set_new(cfg, NULL, NULL, &errs);
    wr_config_errors_fini(&errs);
    if (!set)
        return -1;
    wr_tls_set_attach(cfg, set);
    return 0;
}

static int teardown_all(void **state)
{
    (void)state;
    wr_config_unref(cfg);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Two ends of a non-blocking socketpair: c (the client side) and sv. */
struct ends {
    struct wr_stream c, sv;
    struct wr_stream_stage *c_stage, *sv_stage;
    struct wr_tls_session *slot;
};

static void open_plain(struct ends *e)
{
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    *e = (struct ends){0};
    wr_stream_init(&e->c, fds[0]);
    wr_stream_init(&e->sv, fds[1]);
}

/* Both sides TLS, handshake done, and a first message read by the client
 * (which takes its session ticket with it: nothing is left in flight). */
static void open_tls(struct ends *e)
{
    open_plain(e);
    e->c_stage = wr_stream_stage_new();
    e->sv_stage = wr_stream_stage_new();
    assert_non_null(e->c_stage);
    assert_non_null(e->sv_stage);
    assert_int_equal(wr_stream_tls_client(&e->c, cfg->upstreams[0].tls_client, 0, &e->slot,
                                          e->c_stage),
                     0);
    assert_int_equal(wr_stream_tls_server(&e->sv, cfg->tls_set, e->sv_stage), 0);
    char why[256] = "";
    enum wr_tls_result rc = WR_TLS_WANT_WRITE, rs = WR_TLS_WANT_READ;
    /* The server speaks second: nothing to read yet is its first EAGAIN. */
    assert_int_equal(wr_stream_handshake(&e->sv, why, sizeof(why)), WR_TLS_WANT_READ);
    for (int i = 0; i < 100 && (rc != WR_TLS_DONE || rs != WR_TLS_DONE); i++) {
        if (rc != WR_TLS_DONE)
            rc = wr_stream_handshake(&e->c, why, sizeof(why));
        assert_true(rc != WR_TLS_FAILED);
        if (rs != WR_TLS_DONE)
            rs = wr_stream_handshake(&e->sv, why, sizeof(why));
        assert_true(rs != WR_TLS_FAILED);
    }
    assert_int_equal(rc, WR_TLS_DONE);
    assert_int_equal(rs, WR_TLS_DONE);
    /* The client takes its session ticket with the first bytes it reads. */
    struct iovec iov = {(void *)"hi", 2};
    assert_int_equal(wr_stream_writev(&e->sv, &iov, 1), 2);
    char buf[16];
    assert_int_equal(wr_stream_read(&e->c, buf, sizeof(buf)), 2);
    assert_non_null(wr_stream_tls(&e->c));
}

static void close_ends(struct ends *e)
{
    wr_stream_fini(&e->c);
    wr_stream_fini(&e->sv);
    wr_stream_fini(&e->c); /* twice is harmless */
    wr_stream_stage_free(e->c_stage);
    wr_stream_stage_free(e->sv_stage);
    wr_tls_session_free(e->slot);
}

/* Byte i of the test pattern. */
static char pattern(size_t i)
{
    return (char)('a' + (i * 7 + i / 251) % 26);
}

static void fill(char *buf, size_t len, size_t from)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = pattern(from + i);
}

/* Reads from s until want bytes came (bounded), checking the pattern from
 * offset from. While reading, the writer w flushes a waiting record. */
static void expect_pattern(struct wr_stream *s, struct wr_stream *w, size_t from, size_t want)
{
    char buf[8192];
    size_t got = 0;
    for (int i = 0; i < 100000 && got < want; i++) {
        if (w)
            assert_true(wr_stream_flush(w) >= 0);
        size_t cap = want - got < sizeof(buf) ? want - got : sizeof(buf);
        ssize_t n = wr_stream_read(s, buf, cap);
        if (n < 0 && errno == EAGAIN)
            continue;
        assert_true(n > 0);
        for (ssize_t k = 0; k < n; k++) {
            if (buf[k] != pattern(from + got + (size_t)k))
                fail_msg("byte %zu differs", from + got + (size_t)k);
        }
        got += (size_t)n;
    }
    assert_int_equal(got, want);
}

/* A temp file of len pattern bytes, opened for reading. */
static int make_file(size_t len)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/f-XXXXXX", dir);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    char buf[4096];
    for (size_t off = 0; off < len;) {
        size_t n = len - off < sizeof(buf) ? len - off : sizeof(buf);
        fill(buf, n, off);
        assert_int_equal(pwrite(fd, buf, n, (off_t)off), (ssize_t)n);
        off += n;
    }
    return fd;
}

/* ---- plain ----------------------------------------------------------------- */

static void issue_14_plain_read_write_close(void **state)
{
    (void)state;
    struct ends e;
    open_plain(&e);
    char buf[64];
    assert_int_equal(wr_stream_read(&e.sv, buf, sizeof(buf)), -1);
    assert_int_equal(errno, EAGAIN);
    struct iovec iov[2] = {{(void *)"GET / ", 6}, {(void *)"HTTP/1.1", 8}};
    assert_int_equal(wr_stream_writev(&e.c, iov, 2), 14);
    assert_int_equal(wr_stream_read(&e.sv, buf, sizeof(buf)), 14);
    assert_memory_equal(buf, "GET / HTTP/1.1", 14);
    assert_false(wr_stream_is_tls(&e.c));
    assert_false(wr_stream_has_pending(&e.sv));
    assert_false(wr_stream_wants_write(&e.c));
    assert_int_equal(wr_stream_flush(&e.c), 1);
    assert_true(wr_stream_is_reusable(&e.c));
    assert_null(wr_stream_tls(&e.c));
    /* Our direction ends: the peer reads the end, and can still answer. */
    assert_int_equal(wr_stream_shutdown(&e.c), 0);
    assert_int_equal(wr_stream_read(&e.sv, buf, sizeof(buf)), 0);
    assert_int_equal(wr_stream_writev(&e.sv, iov, 1), 6);
    assert_int_equal(wr_stream_discard(&e.c, buf, sizeof(buf)), 6);
    /* The peer closes: a write fails (no SIGPIPE even without SIG_IGN). */
    wr_stream_fini(&e.sv);
    assert_int_equal(wr_stream_read(&e.c, buf, sizeof(buf)), 0);
    assert_int_equal(wr_stream_writev(&e.c, iov, 1), -1);
    assert_int_equal(errno, EPIPE);
    close_ends(&e);
}

/* A full socket: writev takes what fits (a short write), then EAGAIN;
 * after the reader drained, the rest goes, in order. */
static void issue_14_plain_short_writes(void **state)
{
    (void)state;
    struct ends e;
    open_plain(&e);
    enum { LEN = 1 << 20 };
    char *out = malloc(LEN);
    assert_non_null(out);
    fill(out, LEN, 0);
    size_t sent = 0;
    bool was_short = false, was_eagain = false;
    char buf[65536];
    size_t got = 0;
    for (int i = 0; i < 100000 && got < LEN; i++) {
        if (sent < LEN) {
            struct iovec iov[2] = {{out + sent, (LEN - sent) / 2},
                                   {out + sent + (LEN - sent) / 2, LEN - sent - (LEN - sent) / 2}};
            ssize_t w = wr_stream_writev(&e.c, iov, 2);
            if (w < 0) {
                assert_int_equal(errno, EAGAIN);
                was_eagain = true;
            } else {
                was_short = was_short || (size_t)w < LEN - sent;
                sent += (size_t)w;
            }
        }
        if (!was_eagain)
            continue; /* drain only once the socket was full */
        ssize_t n = wr_stream_read(&e.sv, buf, sizeof(buf));
        if (n < 0 && errno == EAGAIN)
            continue;
        assert_true(n > 0);
        assert_memory_equal(buf, out + got, (size_t)n);
        got += (size_t)n;
    }
    assert_true(was_short);
    assert_true(was_eagain);
    assert_int_equal(got, LEN);
    free(out);
    close_ends(&e);
}

/* sendfile: bounded by len, from any offset; a file that shrank is EIO. */
static void issue_14_plain_sendfile(void **state)
{
    (void)state;
    struct ends e;
    open_plain(&e);
    int fd = make_file(100000);
    assert_int_equal(wr_stream_sendfile(&e.c, fd, 1000, 3000), 3000);
    expect_pattern(&e.sv, NULL, 1000, 3000);
    /* A response head and its file: the memory goes first, alone. */
    struct wr_stream_seg segs[2] = {{.ptr = "head", .len = 4, .fd = -1},
                                    {.len = 500, .fd = fd, .off = 0}};
    assert_int_equal(wr_stream_send(&e.c, segs, 2, 1 << 20), 4);
    assert_int_equal(wr_stream_send(&e.c, segs + 1, 1, 200), 200); /* the budget bounds it */
    char buf[16];
    assert_int_equal(wr_stream_read(&e.sv, buf, 4), 4);
    assert_memory_equal(buf, "head", 4);
    expect_pattern(&e.sv, NULL, 0, 200);
    /* The file shrinks under us: the body cannot be completed. */
    assert_int_equal(ftruncate(fd, 5000), 0);
    assert_int_equal(wr_stream_sendfile(&e.c, fd, 4000, 2000), 1000);
    assert_int_equal(wr_stream_sendfile(&e.c, fd, 5000, 1000), -1);
    assert_int_equal(errno, EIO);
    close(fd);
    close_ends(&e);
}

static void issue_14_plain_connect(void **state)
{
    (void)state;
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct wr_listen_addr addr = {0};
    struct sockaddr_un *sun = (struct sockaddr_un *)&addr.addr;
    sun->sun_family = AF_UNIX;
    snprintf(sun->sun_path, sizeof(sun->sun_path), "%s/l.sock", dir);
    addr.addr_len = sizeof(*sun);
    struct wr_stream s;
    bool is_connecting;
    assert_int_equal(wr_stream_connect(&s, &addr, &is_connecting), -1); /* nobody listens */
    assert_int_equal(errno, ENOENT);
    assert_int_equal(bind(lfd, (struct sockaddr *)sun, sizeof(*sun)), 0);
    assert_int_equal(listen(lfd, 4), 0);
    assert_int_equal(wr_stream_connect(&s, &addr, &is_connecting), 0);
    assert_false(is_connecting); /* unix sockets connect at once */
    assert_int_equal(wr_stream_connect_error(&s), 0);
    assert_true(fcntl(s.fd, F_GETFL) & O_NONBLOCK);
    wr_stream_fini(&s);
    close(lfd);
}

/* ---- TLS ------------------------------------------------------------------- */

static void issue_14_tls_read_write(void **state)
{
    (void)state;
    struct ends e;
    open_tls(&e);
    char buf[64];
    assert_int_equal(wr_stream_read(&e.sv, buf, sizeof(buf)), -1);
    assert_int_equal(errno, EAGAIN);
    /* One piece goes to OpenSSL in place: the stage is not even allocated. */
    struct iovec one = {(void *)"ping", 4};
    assert_int_equal(wr_stream_writev(&e.c, &one, 1), 4);
    assert_int_equal(wr_stream_stage_stats(e.c_stage)->n_stage_allocs, 0);
    assert_int_equal(wr_stream_read(&e.sv, buf, sizeof(buf)), 4);
    assert_memory_equal(buf, "ping", 4);
    /* Several pieces are assembled into one record in the (shared) stage. */
    struct iovec iov[3] = {{(void *)"GET ", 4}, {(void *)"/x ", 3}, {(void *)"HTTP/1.1", 8}};
    for (int round = 0; round < 3; round++) {
        assert_int_equal(wr_stream_writev(&e.c, iov, 3), 15);
        assert_int_equal(wr_stream_read(&e.sv, buf, sizeof(buf)), 15);
        assert_memory_equal(buf, "GET /x HTTP/1.1", 15);
    }
    assert_int_equal(wr_stream_stage_stats(e.c_stage)->n_stage_allocs, 1);
    assert_int_equal(wr_stream_stage_stats(e.c_stage)->n_blocked, 0);
    assert_true(wr_stream_is_tls(&e.c));
    assert_true(wr_stream_is_reusable(&e.c));
    /* Issue 15: more than a record's worth goes as a batch of records
     * (one write), in the stage's batch buffer; at most four per call. */
    enum { BIG = 50000, HUGE = 100000 };
    char *big = malloc(HUGE);
    assert_non_null(big);
    fill(big, HUGE, 0);
    struct iovec b = {big, BIG};
    assert_int_equal(wr_stream_writev(&e.c, &b, 1), BIG);
    expect_pattern(&e.sv, &e.c, 0, BIG);
    assert_int_equal(wr_stream_stage_stats(e.c_stage)->n_batch_allocs, 1);
    struct iovec h = {big, HUGE};
    assert_int_equal(wr_stream_writev(&e.c, &h, 1), 4 * WR_STREAM_RECORD);
    expect_pattern(&e.sv, &e.c, 0, 4 * WR_STREAM_RECORD);
    assert_int_equal(wr_stream_stage_stats(e.c_stage)->n_blocked, 0);
    free(big);
    close_ends(&e);
}

/* Writes records from the client until one is taken but not sent (the
 * server reads nothing meanwhile). Returns the bytes taken in all. */
static size_t write_until_blocked(struct ends *e, char *out, size_t cap)
{
    size_t sent = 0;
    for (int i = 0; i < 10000 && !wr_stream_wants_write(&e->c); i++) {
        assert_true(sent + 3000 <= cap);
        struct iovec iov[2] = {{out + sent, 1000}, {out + sent + 1000, 2000}};
        ssize_t w = wr_stream_writev(&e->c, iov, 2);
        assert_true(w > 0); /* never EAGAIN before a record waits */
        sent += (size_t)w;
    }
    assert_true(wr_stream_wants_write(&e->c));
    return sent;
}

/* The staging contract: a record the socket did not take counts as taken
 * and waits in a buffer of the stream's own, which exists exactly while it
 * waits; nothing else is written (nor a close_notify) before it went. */
static void issue_14_tls_pending_record(void **state)
{
    (void)state;
    struct ends e;
    open_tls(&e);
    int small = 4096;
    setsockopt(e.c.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    enum { CAP = 8 << 20 };
    char *out = malloc(CAP);
    assert_non_null(out);
    fill(out, CAP, 0);
    const struct wr_stream_stats *st = wr_stream_stage_stats(e.c_stage);
    assert_int_equal(st->n_pending, 0);
    size_t sent = write_until_blocked(&e, out, CAP);
    assert_int_equal(st->n_pending, 1);
    assert_int_equal(st->n_blocked, 1);
    /* ciphertext: the record's 3000 bytes and its overhead (at most 29
     * bytes with AES-GCM) */
    assert_true(st->pending_bytes > 0 && st->pending_bytes <= 3000 + 29);
    assert_false(wr_stream_is_reusable(&e.c));
    /* Blocked: another write and the shutdown wait, nothing is lost. */
    struct iovec more = {out + sent, 3000};
    assert_int_equal(wr_stream_writev(&e.c, &more, 1), -1);
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(wr_stream_flush(&e.c), 0);
    assert_int_equal(wr_stream_shutdown(&e.c), -1);
    assert_int_equal(errno, EAGAIN);
    /* The server drains; the client's flushes send the waiting record. */
    expect_pattern(&e.sv, &e.c, 0, sent);
    assert_int_equal(wr_stream_flush(&e.c), 1);
    assert_false(wr_stream_wants_write(&e.c));
    assert_int_equal(st->n_pending, 0);
    assert_int_equal(st->pending_bytes, 0);
    assert_true(wr_stream_is_reusable(&e.c));
    /* And the stream carries on, then ends with close_notify. */
    assert_int_equal(wr_stream_writev(&e.c, &more, 1), 3000);
    expect_pattern(&e.sv, &e.c, sent, 3000);
    assert_int_equal(wr_stream_shutdown(&e.c), 0);
    char buf[16];
    assert_int_equal(wr_stream_read(&e.sv, buf, sizeof(buf)), 0);
    free(out);
    close_ends(&e);
}

/* A stream freed while a record waits gives its buffer back. */
static void issue_14_tls_pending_freed(void **state)
{
    (void)state;
    struct ends e;
    open_tls(&e);
    int small = 4096;
    setsockopt(e.c.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    enum { CAP = 8 << 20 };
    char *out = malloc(CAP);
    assert_non_null(out);
    fill(out, CAP, 0);
    write_until_blocked(&e, out, CAP);
    assert_int_equal(wr_stream_stage_stats(e.c_stage)->n_pending, 1);
    wr_stream_close_notify(&e.c); /* skipped: it would overtake the record */
    wr_stream_fini(&e.c);
    assert_int_equal(wr_stream_stage_stats(e.c_stage)->n_pending, 0);
    assert_int_equal(wr_stream_stage_stats(e.c_stage)->pending_bytes, 0);
    free(out);
    close_ends(&e);
}

/* close_notify: the end (0). A bare TCP close: a truncation on the client
 * side, unless the stream is idle; the server side takes it as the end. */
static void issue_14_tls_close_notify_vs_bare_close(void **state)
{
    (void)state;
    char buf[64];
    struct ends e;
    open_tls(&e);
    assert_int_equal(wr_stream_shutdown(&e.sv), 0);
    assert_int_equal(wr_stream_read(&e.c, buf, sizeof(buf)), 0);
    assert_int_equal(wr_stream_read(&e.c, buf, sizeof(buf)), 0); /* and again */
    close_ends(&e);

    open_tls(&e);
    close(e.sv.fd); /* no close_notify */
    e.sv.fd = -1;
    assert_int_equal(wr_stream_read(&e.c, buf, sizeof(buf)), -1);
    assert_int_equal(errno, WR_TLS_ETRUNCATED);
    assert_false(wr_stream_is_reusable(&e.c));
    close_ends(&e);

    open_tls(&e);
    wr_stream_set_idle(&e.c, true); /* pooled: nothing can be truncated */
    close(e.sv.fd);
    e.sv.fd = -1;
    assert_false(wr_stream_idle_check(&e.c)); /* closed: drop it */
    assert_int_equal(wr_stream_read(&e.c, buf, sizeof(buf)), 0); /* a clean end */
    close_ends(&e);

    open_tls(&e);
    close(e.c.fd); /* a client's bare close ends a server stream cleanly */
    e.c.fd = -1;
    assert_int_equal(wr_stream_read(&e.sv, buf, sizeof(buf)), 0);
    close_ends(&e);
}

/* An idle client stream: a late TLS message is housekeeping, data is not. */
static void issue_14_tls_idle_check(void **state)
{
    (void)state;
    struct ends e;
    open_tls(&e);
    wr_stream_set_idle(&e.c, true);
    assert_true(wr_stream_idle_check(&e.c)); /* nothing there: still fine */
    struct iovec iov = {(void *)"x", 1};
    assert_int_equal(wr_stream_writev(&e.sv, &iov, 1), 1);
    assert_false(wr_stream_idle_check(&e.c)); /* a response nobody asked for */
    close_ends(&e);

    struct ends p;
    open_plain(&p);
    assert_false(wr_stream_idle_check(&p.c)); /* plain: any event means close */
    close_ends(&p);
}

/* Bytes and the end arrive together: bytes first, the end on the next
 * read, has_pending true in between (the socket will not say so). */
static void issue_14_tls_deferred_end(void **state)
{
    (void)state;
    struct ends e;
    open_tls(&e);
    struct iovec iov = {(void *)"last", 4};
    assert_int_equal(wr_stream_writev(&e.sv, &iov, 1), 4);
    assert_int_equal(wr_stream_shutdown(&e.sv), 0);
    char buf[64];
    assert_int_equal(wr_stream_read(&e.c, buf, sizeof(buf)), 4);
    assert_true(wr_stream_has_pending(&e.c));
    assert_int_equal(wr_stream_read(&e.c, buf, sizeof(buf)), 0);
    assert_false(wr_stream_has_pending(&e.c));
    close_ends(&e);
}

/* A write to a peer that is gone fails, and the stream stays failed: reads
 * report the same error, nothing is pooled, no close_notify is sent. */
static void issue_14_tls_peer_gone(void **state)
{
    (void)state;
    struct ends e;
    open_tls(&e);
    wr_stream_fini(&e.sv);
    char data[4000];
    fill(data, sizeof(data), 0);
    struct iovec iov = {data, sizeof(data)};
    ssize_t w = 0;
    for (int i = 0; i < 100 && w >= 0; i++)
        w = wr_stream_writev(&e.c, &iov, 1);
    assert_int_equal(w, -1);
    int err = errno;
    assert_true(err == EPIPE || err == ECONNRESET);
    char buf[16];
    assert_int_equal(wr_stream_read(&e.c, buf, sizeof(buf)), -1);
    assert_int_equal(errno, err);
    assert_int_equal(wr_stream_flush(&e.c), -1);
    assert_false(wr_stream_is_reusable(&e.c));
    wr_stream_close_notify(&e.c);
    close_ends(&e);
}

/* sendfile on TLS: one record per call (pread), a head and the start of
 * its file in one record, and a file that shrank is EIO once the bytes
 * before it went. */
static void issue_14_tls_sendfile(void **state)
{
    (void)state;
    struct ends e;
    open_tls(&e);
    enum { LEN = 40000 };
    int fd = make_file(LEN);
    size_t off = 0;
    for (int i = 0; i < 10 && off < LEN; i++) {
        ssize_t w = wr_stream_sendfile(&e.c, fd, (off_t)off, LEN - off);
        assert_true(w > 0 && w <= 4 * WR_STREAM_RECORD);
        off += (size_t)w;
        expect_pattern(&e.sv, &e.c, off - (size_t)w, (size_t)w);
    }
    assert_int_equal(off, LEN);
    /* Head + file in records (the head and the file's start in the
     * first), all of them in one batch. */
    struct wr_stream_seg segs[2] = {{.ptr = "HEAD", .len = 4, .fd = -1},
                                    {.len = LEN, .fd = fd, .off = 0}};
    assert_int_equal(wr_stream_send(&e.c, segs, 2, 1 << 20), 4 + LEN);
    char buf[8];
    assert_int_equal(wr_stream_read(&e.sv, buf, 4), 4);
    assert_memory_equal(buf, "HEAD", 4);
    expect_pattern(&e.sv, &e.c, 0, LEN);
    /* The budget bounds the record. */
    assert_int_equal(wr_stream_send(&e.c, segs + 1, 1, 100), 100);
    expect_pattern(&e.sv, &e.c, 0, 100);
    /* The file shrinks under us: what was read goes, then EIO. */
    assert_int_equal(ftruncate(fd, 1000), 0);
    segs[1].off = 500;
    assert_int_equal(wr_stream_send(&e.c, segs, 2, 1 << 20), 4 + 500);
    assert_int_equal(wr_stream_sendfile(&e.c, fd, 1000, 100), -1);
    assert_int_equal(errno, EIO);
    assert_int_equal(wr_stream_stage_stats(e.c_stage)->n_stage_allocs, 1);
    close(fd);
    close_ends(&e);
}

/* Issue 15: many small pieces (HTTP/2 frames) go as a batch of records;
 * once the socket did not take a whole batch, the stream waits on at most
 * that batch, and then writes one record at a time until a record goes
 * whole; every byte arrives in order. */
static void issue_15_tls_batch_congested(void **state)
{
    (void)state;
    struct ends e;
    open_tls(&e);
    int small = 4096;
    setsockopt(e.c.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    enum { CAP = 16 << 20, PIECE = 1000, N = 64 };
    char *out = malloc(CAP);
    assert_non_null(out);
    fill(out, CAP, 0);
    const struct wr_stream_stats *st = wr_stream_stage_stats(e.c_stage);
    size_t sent = 0;
    struct wr_stream_seg segs[N];
    for (int round = 0; round < 1000 && !wr_stream_wants_write(&e.c); round++) {
        assert_true(sent + N * PIECE <= CAP);
        for (int i = 0; i < N; i++)
            segs[i] = (struct wr_stream_seg){.ptr = out + sent + (size_t)i * PIECE, .len = PIECE,
                                             .fd = -1};
        ssize_t w = wr_stream_send(&e.c, segs, N, 1 << 20);
        assert_true(w > WR_STREAM_RECORD); /* a batch while the socket keeps up */
        sent += (size_t)w;
    }
    assert_true(wr_stream_wants_write(&e.c));
    assert_int_equal(st->n_pending, 1);
    assert_true(st->pending_bytes <= 4 * WR_TLS_RECORD_MAX);
    assert_int_equal(wr_stream_send(&e.c, segs, N, 1 << 20), -1);
    assert_int_equal(errno, EAGAIN);
    expect_pattern(&e.sv, &e.c, 0, sent);
    assert_false(wr_stream_wants_write(&e.c));
    assert_int_equal(st->pending_bytes, 0);
    /* Congested: one record, then batches again once it went whole (the
     * socket has room now). */
    int roomy = 1 << 20;
    setsockopt(e.c.fd, SOL_SOCKET, SO_SNDBUF, &roomy, sizeof(roomy));
    for (int i = 0; i < N; i++)
        segs[i] = (struct wr_stream_seg){.ptr = out + sent + (size_t)i * PIECE, .len = PIECE,
                                         .fd = -1};
    ssize_t w = wr_stream_send(&e.c, segs, N, 1 << 20);
    assert_int_equal(w, WR_STREAM_RECORD);
    expect_pattern(&e.sv, &e.c, sent, (size_t)w);
    sent += (size_t)w;
    struct iovec rest = {out + sent, 40000};
    assert_int_equal(wr_stream_writev(&e.c, &rest, 1), 40000);
    expect_pattern(&e.sv, &e.c, sent, 40000);
    assert_int_equal(st->n_batch_allocs, 1);
    free(out);
    close_ends(&e);
}

/* A client that speaks plain HTTP to a TLS port: the server stream drops
 * its TLS and answers in clear. */
static void issue_14_tls_plain_http(void **state)
{
    (void)state;
    struct ends e;
    open_plain(&e);
    e.sv_stage = wr_stream_stage_new();
    assert_int_equal(wr_stream_tls_server(&e.sv, cfg->tls_set, e.sv_stage), 0);
    struct iovec req = {(void *)"GET / HTTP/1.1\r\n\r\n", 18};
    assert_int_equal(wr_stream_writev(&e.c, &req, 1), 18);
    char why[128];
    assert_int_equal(wr_stream_handshake(&e.sv, why, sizeof(why)), WR_TLS_PLAIN_HTTP);
    wr_stream_drop_tls(&e.sv);
    assert_false(wr_stream_is_tls(&e.sv));
    struct iovec resp = {(void *)"HTTP/1.1 400", 12};
    assert_int_equal(wr_stream_writev(&e.sv, &resp, 1), 12);
    char buf[32];
    assert_int_equal(wr_stream_read(&e.c, buf, sizeof(buf)), 12);
    close_ends(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issue_14_plain_read_write_close),
        cmocka_unit_test(issue_14_plain_short_writes),
        cmocka_unit_test(issue_14_plain_sendfile),
        cmocka_unit_test(issue_14_plain_connect),
        cmocka_unit_test(issue_14_tls_read_write),
        cmocka_unit_test(issue_14_tls_pending_record),
        cmocka_unit_test(issue_14_tls_pending_freed),
        cmocka_unit_test(issue_14_tls_close_notify_vs_bare_close),
        cmocka_unit_test(issue_14_tls_idle_check),
        cmocka_unit_test(issue_14_tls_deferred_end),
        cmocka_unit_test(issue_14_tls_peer_gone),
        cmocka_unit_test(issue_14_tls_sendfile),
        cmocka_unit_test(issue_15_tls_batch_congested),
        cmocka_unit_test(issue_14_tls_plain_http),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
