/*
 * Fuzz target for the HTTP/2 front end: the client connection preface, then
 * arbitrary bytes as frames, into a real server session on an h2c
 * connection (conn.c spots the preface and hands over to h2.c, nghttp2
 * decodes, weir's callbacks validate and dispatch to the handlers of a
 * small route table: return, redirect, static files (a file body under
 * flow control, a small one from the open-file cache), 404, 405).
 *
 * The loop is a real event base on this thread and the client is the other
 * end of a socketpair, so readiness, backpressure and the session's own
 * writes behave as in the daemon. Each input ends with the client's end
 * of the stream; the connection must then be gone (no hang), and ASan /
 * LeakSanitizer see every byte the session took (no leak, bounded memory
 * under -rss_limit_mb).
 */
#include <event2/event.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "weir/config.h"
#include "weir/conn.h"
#include "weir/h2.h"
#include "weir/limits.h"
#include "weir/metrics.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PASSES 2000 /* loop passes an input may take to be read and closed */

/* %s: the static root (a temporary directory made once). */
static const char config_fmt[] =
    "[server]\nlisten = unix:/tmp/weir_fuzz_h2.sock h2c\nworkers = 1\naccess_log = off\n"
    "error_log = /dev/null\n"
    "[limits]\nmax_body_size = 4k\nmax_header_size = 8k\n"
    "[http2]\nmax_concurrent_streams = 16\n"
    "[route ret]\nmatch = prefix:/r\nmethods = GET HEAD POST\nreturn = 200 hello $host\n"
    "[route go]\nmatch = prefix:/g\nredirect = 301 /r$request_uri\n"
    "[route files]\nmatch = prefix:/f/\nstrip_prefix = /f\nroot = %s\n"
    /* A WebSocket route (extended CONNECT offered) to a server that is
     * never there: the connect fails at once (502). */
    "[upstream none]\nserver = unix:/tmp/weir_fuzz_h2_none.sock\n"
    "[route ws]\nmatch = prefix:/w\nproxy = none\nwebsocket = on\n";

/* A file larger than the client's first window (65535): its DATA waits
 * on WINDOW_UPDATEs the input may or may not send. */
#define BIG_FILE_BYTES (100 * 1024)

static char root[] = "/tmp/weir_fuzz_h2.XXXXXX";

static void remove_root(void)
{
    char path[sizeof(root) + 16];
    snprintf(path, sizeof(path), "%s/big.bin", root);
    unlink(path);
    snprintf(path, sizeof(path), "%s/small.txt", root);
    unlink(path);
    rmdir(root);
}

static void write_file(const char *dir, const char *name, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    for (size_t i = 0; i < len; i++)
        fputc('a' + (int)(i % 26), f);
    fclose(f);
}

static struct {
    struct event_base *base;
    struct wr_config *cfg;
    struct wr_metrics *metrics;
    struct wr_limits *limits;
    atomic_uint_fast64_t n_conns;
    struct wr_conns cs;
} w;

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_h2: %s\n", what);
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN); /* as weir: a client gone mid-write is an EPIPE */
    check(mkdtemp(root) != NULL, "mkdtemp");
    atexit(remove_root);
    write_file(root, "big.bin", BIG_FILE_BYTES);
    write_file(root, "small.txt", 100);
    static char config_text[sizeof(config_fmt) + sizeof(root)];
    snprintf(config_text, sizeof(config_text), config_fmt, root);
    struct wr_config_errors errs = {0};
    w.cfg = wr_config_parse_string(config_text, "fuzz.ini", &errs);
    wr_config_errors_fini(&errs);
    check(w.cfg != NULL, "config");
    w.base = event_base_new();
    w.metrics = wr_metrics_new(1);
    w.limits = wr_limits_new();
    check(w.base && w.metrics && w.limits, "setup");
    atomic_init(&w.n_conns, 0);
    const struct wr_access_log_fds no_logs = {.server = -1};
    check(wr_conns_init(&w.cs, 0, w.base, w.cfg, &no_logs, &w.n_conns, w.limits) == 0, "conns");
    w.cs.metrics = wr_metrics_worker(w.metrics, 0);
    return 0;
}

/* One pass of the loop, then whatever the client can read is discarded
 * (a client that reads keeps the session's writes moving). */
static void pass(int peer)
{
    event_base_loop(w.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    char sink[16384];
    for (int i = 0; i < 64 && read(peer, sink, sizeof(sink)) > 0; i++)
        ;
}

/* Writes all of p to the connection, running the loop while the socket
 * is full; false when the server closed first. */
static bool feed(int peer, const uint8_t *p, size_t n)
{
    for (int i = 0; i < MAX_PASSES && n > 0; i++) {
        ssize_t k = write(peer, p, n);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
        } else if (k < 0 && errno != EAGAIN) {
            return false;
        }
        pass(peer);
        if (w.cs.n_live == 0)
            return false;
    }
    return n == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int sv[2];
    check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0, "socketpair");
    atomic_fetch_add(&w.n_conns, 1);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    wr_conn_take(&w.cs, sv[0], (const struct sockaddr *)&sa, sizeof(sa.sun_family),
                 WR_CONN_H2C);
    if (feed(sv[1], (const uint8_t *)WR_H2_PREFACE, WR_H2_PREFACE_LEN))
        feed(sv[1], data, size);
    for (int i = 0; i < 8; i++)
        pass(sv[1]);
    /* The client ends its side: every stream stops, the session ends. */
    shutdown(sv[1], SHUT_WR);
    for (int i = 0; i < MAX_PASSES && w.cs.n_live > 0; i++)
        pass(sv[1]);
    check(w.cs.n_live == 0, "the connection outlived its client's end");
    check(atomic_load(&w.n_conns) == 0, "connection count");
    close(sv[1]);
    return 0;
}
