/*
 * Unit tests for log: access lines in combined and json format read back
 * from a temp file (escaping of quotes, backslashes, control and non-ASCII
 * bytes; the raw-line form for heads that did not parse; the 8 KiB cut;
 * lines never split across a buffer flush), and wr_log_open/reopen/close_all
 * across a rename as logrotate does it. Issue 13.19: access and error lines
 * to a pipe nobody reads never block their writers (threads standing for
 * workers), the lines that do not fit are counted as dropped, and every
 * line that arrives is whole; a FIFO without a reader fails to open.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "weir/log.h"
#include "weir/log_writer.h"

#define LOG_TIME "21/Sep/2026:14:13:20 +0000"
#define ISO_TIME "2026-09-21T14:13:20Z"

static int temp_fd(void)
{
    char path[] = "/tmp/weir_test_log_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    return fd;
}

/* Everything written to fd so far, NUL-terminated; *len_out gets its size. */
static char *read_all(int fd, size_t *len_out)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    size_t len = (size_t)st.st_size;
    char *buf = malloc(len + 1);
    assert_non_null(buf);
    size_t off = 0;
    while (off < len) {
        ssize_t n = pread(fd, buf + off, len - off, (off_t)off);
        assert_true(n > 0);
        off += (size_t)n;
    }
    buf[len] = '\0';
    if (len_out)
        *len_out = len;
    return buf;
}

static const struct wr_log_format combined = {.kind = WR_LOG_KIND_COMBINED};

static struct wr_access_entry sample_entry(void)
{
    return (struct wr_access_entry){
        .remote_addr = WR_STR("192.0.2.7"),
        .method = WR_STR("GET"),
        .target = WR_STR("/a?b=c"),
        .host = WR_STR("example.org"),
        .referer = WR_STR("https://ref.example/"),
        .user_agent = WR_STR("curl/8.5"),
        .request_id = WR_STR("r-42"),
        .route = WR_STR("site"),
        .minor_version = 1,
        .status = 200,
        .bytes_sent = 1234,
        .request_time_us = 1500,
        .log_time = LOG_TIME,
        .iso_time = ISO_TIME,
    };
}

/* Adds each entry to a fresh access log on a temp file and compares. */
static void expect_lines(const char *format, const struct wr_access_entry *e, size_t n,
                         const char *want)
{
    struct wr_log_format f;
    const char *err = NULL;
    struct wr_str at;
    if (wr_log_format_compile(&f, format, &err, &at) != 0)
        fail_msg("%s: %s", format, err);
    int fd = temp_fd();
    struct wr_access_log al;
    assert_int_equal(wr_access_log_init(&al, fd), 0);
    for (size_t i = 0; i < n; i++)
        wr_access_log_add(&al, &f, &e[i]);
    wr_log_format_fini(&f);
    wr_access_log_flush(&al);
    assert_int_equal(al.len, 0);
    char *got = read_all(fd, NULL);
    if (strcmp(got, want) != 0)
        fail_msg("got:\n%s\nwant:\n%s", got, want);
    free(got);
    wr_access_log_fini(&al);
    assert_null(al.buf);
    close(fd);
}

static void test_combined(void **state)
{
    (void)state;
    struct wr_access_entry e[2] = {sample_entry(), sample_entry()};
    e[1].method = WR_STR("POST");
    e[1].minor_version = 0;
    e[1].status = 404;
    e[1].bytes_sent = 0;
    e[1].referer = (struct wr_str){NULL, 0};
    e[1].user_agent = (struct wr_str){NULL, 0};
    expect_lines("combined", e, 2,
                 "192.0.2.7 - - [" LOG_TIME "] \"GET /a?b=c HTTP/1.1\" 200 1234 "
                 "\"https://ref.example/\" \"curl/8.5\"\n"
                 "192.0.2.7 - - [" LOG_TIME "] \"POST /a?b=c HTTP/1.0\" 404 0 \"-\" \"-\"\n");
}

static void test_json(void **state)
{
    (void)state;
    struct wr_access_entry e[2] = {sample_entry(), sample_entry()};
    e[1].minor_version = 0;
    e[1].request_time_us = 12000001;
    e[1].referer = (struct wr_str){NULL, 0};
    expect_lines("json", e, 2,
                 "{\"time\":\"" ISO_TIME "\",\"remote_addr\":\"192.0.2.7\",\"request_id\":\"r-42\","
                 "\"method\":\"GET\",\"uri\":\"/a?b=c\",\"protocol\":\"HTTP/1.1\","
                 "\"host\":\"example.org\",\"status\":200,\"bytes_sent\":1234,"
                 "\"request_time\":0.001500,\"route\":\"site\","
                 "\"referer\":\"https://ref.example/\","
                 "\"user_agent\":\"curl/8.5\"}\n"
                 "{\"time\":\"" ISO_TIME "\",\"remote_addr\":\"192.0.2.7\",\"request_id\":\"r-42\","
                 "\"method\":\"GET\",\"uri\":\"/a?b=c\",\"protocol\":\"HTTP/1.0\","
                 "\"host\":\"example.org\",\"status\":200,\"bytes_sent\":1234,"
                 "\"request_time\":12.000001,\"route\":\"site\",\"referer\":\"\","
                 "\"user_agent\":\"curl/8.5\"}\n");
}

static void test_escaping(void **state)
{
    (void)state;
    struct wr_access_entry e = sample_entry();
    e.target = WR_STR("/a\"b\\c\xff\xc3\xa9\x01\x7f\n");
    e.user_agent = WR_STR("x\" \"y");
    e.referer = WR_STR("\t");
    expect_lines("combined", &e, 1,
                 "192.0.2.7 - - [" LOG_TIME "] "
                 "\"GET /a\\x22b\\x5cc\\xff\\xc3\\xa9\\x01\\x7f\\x0a HTTP/1.1\" 200 1234 "
                 "\"\\x09\" \"x\\x22 \\x22y\"\n");
    expect_lines("json", &e, 1,
                 "{\"time\":\"" ISO_TIME "\",\"remote_addr\":\"192.0.2.7\",\"request_id\":\"r-42\","
                 "\"method\":\"GET\","
                 "\"uri\":\"/a\\\"b\\\\c\\u00ff\xc3\xa9\\u0001\\u007f\\u000a\","
                 "\"protocol\":\"HTTP/1.1\",\"host\":\"example.org\",\"status\":200,"
                 "\"bytes_sent\":1234,\"request_time\":0.001500,\"route\":\"site\","
                 "\"referer\":\"\\u0009\","
                 "\"user_agent\":\"x\\\" \\\"y\"}\n");
}

/* Issue 17.9: the json line names the answering route, "" when none did
 * (as /metrics labels it), escaped like any other value; combined stays
 * the standard format, without it. */
static void issue_17_json_route(void **state)
{
    (void)state;
    struct wr_access_entry e[2] = {sample_entry(), sample_entry()};
    e[0].route = WR_STR("a\"b");
    e[1].route = (struct wr_str){NULL, 0};
    e[1].status = 404;
    expect_lines("json", e, 2,
                 "{\"time\":\"" ISO_TIME "\",\"remote_addr\":\"192.0.2.7\",\"request_id\":\"r-42\","
                 "\"method\":\"GET\",\"uri\":\"/a?b=c\",\"protocol\":\"HTTP/1.1\","
                 "\"host\":\"example.org\",\"status\":200,\"bytes_sent\":1234,"
                 "\"request_time\":0.001500,\"route\":\"a\\\"b\","
                 "\"referer\":\"https://ref.example/\","
                 "\"user_agent\":\"curl/8.5\"}\n"
                 "{\"time\":\"" ISO_TIME "\",\"remote_addr\":\"192.0.2.7\",\"request_id\":\"r-42\","
                 "\"method\":\"GET\",\"uri\":\"/a?b=c\",\"protocol\":\"HTTP/1.1\","
                 "\"host\":\"example.org\",\"status\":404,\"bytes_sent\":1234,"
                 "\"request_time\":0.001500,\"route\":\"\","
                 "\"referer\":\"https://ref.example/\","
                 "\"user_agent\":\"curl/8.5\"}\n");
    expect_lines("combined", e, 1,
                 "192.0.2.7 - - [" LOG_TIME "] \"GET /a?b=c HTTP/1.1\" 200 1234 "
                 "\"https://ref.example/\" \"curl/8.5\"\n");
}

static void test_raw_line(void **state)
{
    (void)state;
    struct wr_access_entry e = sample_entry();
    e.method = (struct wr_str){NULL, 0};
    e.target = WR_STR("GARBAGE \"\x01 HTTP/9");
    e.status = 400;
    e.bytes_sent = 0;
    e.referer = (struct wr_str){NULL, 0};
    e.user_agent = (struct wr_str){NULL, 0};
    expect_lines("combined", &e, 1,
                 "192.0.2.7 - - [" LOG_TIME "] \"GARBAGE \\x22\\x01 HTTP/9\" 400 0 \"-\" \"-\"\n");
}

static void test_off(void **state)
{
    (void)state;
    struct wr_access_log al;
    assert_int_equal(wr_access_log_init(&al, -1), 0);
    struct wr_access_entry e = sample_entry();
    wr_access_log_add(&al, &combined, &e); /* no buffer, no write, no crash */
    wr_access_log_flush(&al);
    wr_access_log_fini(&al);
}

/* Long lines are cut at 8 KiB plus the newline, and a buffer flush between
 * them never splits one. */
static void test_long_lines(void **state)
{
    (void)state;
    enum { TARGET_LEN = 10000, N_LINES = 20, LINE_LEN = 8 * 1024 + 1 };
    char *target = malloc(TARGET_LEN);
    assert_non_null(target);
    memset(target, 'a', TARGET_LEN);
    struct wr_access_entry e = sample_entry();
    e.target = (struct wr_str){target, TARGET_LEN};
    int fd = temp_fd();
    struct wr_access_log al;
    assert_int_equal(wr_access_log_init(&al, fd), 0);
    for (int i = 0; i < N_LINES; i++)
        wr_access_log_add(&al, &combined, &e);
    wr_access_log_fini(&al);
    size_t len;
    char *got = read_all(fd, &len);
    assert_int_equal(len, (size_t)N_LINES * LINE_LEN);
    const char *prefix = "192.0.2.7 - - [" LOG_TIME "] \"GET aaaa";
    for (int i = 0; i < N_LINES; i++) {
        const char *line = got + (size_t)i * LINE_LEN;
        assert_memory_equal(line, prefix, strlen(prefix));
        assert_int_equal(line[LINE_LEN - 1], '\n');
        assert_null(memchr(line, '\n', LINE_LEN - 1));
    }
    free(got);
    free(target);
    close(fd);
}

static void write_str(int fd, const char *s)
{
    assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

static void expect_file(const char *path, const char *want)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    char *got = read_all(fd, NULL);
    assert_string_equal(got, want);
    free(got);
    close(fd);
}

static void test_open_reopen(void **state)
{
    (void)state;
    char dir[] = "/tmp/weir_test_logdir_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], rotated[128];
    snprintf(path, sizeof(path), "%s/access.log", dir);
    snprintf(rotated, sizeof(rotated), "%s/access.log.1", dir);

    assert_int_equal(wr_log_open("stderr"), 2);
    int fd = wr_log_open(path);
    assert_true(fd > 2);
    assert_int_equal(wr_log_open(path), fd); /* same path, same descriptor */
    write_str(fd, "one\n");

    assert_int_equal(rename(path, rotated), 0);
    write_str(fd, "two\n"); /* still the old file until reopen */
    assert_int_equal(wr_log_reopen(), 0);
    write_str(fd, "three\n"); /* same number, new file */
    expect_file(rotated, "one\ntwo\n");
    expect_file(path, "three\n");

    wr_log_close_all();
    errno = 0;
    assert_int_equal(fcntl(fd, F_GETFD), -1);
    assert_int_equal(errno, EBADF);
    assert_int_equal(wr_log_reopen(), 0); /* nothing left to reopen */

    /* After close_all the path can be opened afresh. */
    int fd2 = wr_log_open(path);
    assert_true(fd2 > 2);
    write_str(fd2, "four\n");
    expect_file(path, "three\nfour\n");
    wr_log_close_all();

    unlink(path);
    unlink(rotated);
    rmdir(dir);
}


/* ---- issue 13.19: pipes ---------------------------------------------------- */

/* A worker would hang on a full pipe before the fix: fail instead. */
#define HANG_GUARD_S 30
#define N_PRODUCERS 2
#define N_ACCESS_LINES 150 /* per producer: ~1.2 MB each, far past every bound */
#define PAD_LEN 7900       /* lines near the 8 KiB cap, longer than PIPE_BUF */
#define N_ERROR_THREADS 4
#define N_ERROR_LINES 3000 /* per thread */

struct pipe_text {
    char *buf;
    size_t len, cap;
};

/* Reads what the pipe has within wait_ms into t; returns the bytes read. */
static size_t read_some(int fd, struct pipe_text *t, int wait_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, wait_ms) <= 0)
        return 0;
    if (t->cap - t->len < 65536) {
        t->cap = t->cap * 2 + 65536;
        t->buf = realloc(t->buf, t->cap + 1);
        assert_non_null(t->buf);
    }
    ssize_t n = read(fd, t->buf + t->len, t->cap - t->len);
    if (n <= 0)
        return 0;
    t->len += (size_t)n;
    t->buf[t->len] = '\0';
    return (size_t)n;
}

static size_t count_lines(const struct pipe_text *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->len; i++)
        n += t->buf[i] == '\n';
    return n;
}

/* Reads until lines + dropped() reaches want (bounded). */
static void read_until(int fd, struct pipe_text *t, size_t want, uint64_t (*dropped)(void))
{
    for (int i = 0; i < 200 && count_lines(t) + dropped() < want; i++)
        while (read_some(fd, t, 50) > 0)
            ;
    assert_int_equal(count_lines(t) + dropped(), want);
}

static int reader_pipe(int p[2])
{
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
    return 0;
}

struct producer {
    int id;
    struct wr_access_log al;
    _Atomic uint64_t dropped;
};

static _Atomic uint64_t *access_drops[N_PRODUCERS];

static uint64_t access_dropped(void)
{
    uint64_t n = 0;
    for (int i = 0; i < N_PRODUCERS; i++)
        n += atomic_load(access_drops[i]);
    return n;
}

/* A worker: long lines, flushed now and then, to a pipe nobody reads. */
static void *produce_access(void *arg)
{
    struct producer *p = arg;
    char *target = malloc(PAD_LEN + 64);
    assert_non_null(target);
    for (int i = 0; i < N_ACCESS_LINES; i++) {
        int n = snprintf(target, 64, "/r/%d-%04d?pad=", p->id, i);
        memset(target + n, 'a', PAD_LEN);
        struct wr_access_entry e = sample_entry();
        e.target = (struct wr_str){target, (size_t)n + PAD_LEN};
        wr_access_log_add(&p->al, &combined, &e);
        if (i % 5 == 4)
            wr_access_log_flush(&p->al);
    }
    wr_access_log_fini(&p->al);
    free(target);
    return NULL;
}

/* Each line is one entry of produce_access, whole; each appears once. */
static void check_access_lines(const struct pipe_text *t)
{
    static bool seen[N_PRODUCERS][N_ACCESS_LINES];
    memset(seen, 0, sizeof(seen));
    const char *prefix = "192.0.2.7 - - [" LOG_TIME "] \"GET /r/";
    const char *suffix = " HTTP/1.1\" 200 1234 \"https://ref.example/\" \"curl/8.5\"";
    for (const char *line = t->buf, *end = t->buf + t->len; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        assert_non_null(nl);
        assert_memory_equal(line, prefix, strlen(prefix));
        int id, i, n = 0;
        assert_int_equal(sscanf(line + strlen(prefix), "%d-%4d?pad=%n", &id, &i, &n), 2);
        assert_true(n > 0 && id >= 0 && id < N_PRODUCERS && i >= 0 && i < N_ACCESS_LINES);
        assert_false(seen[id][i]);
        seen[id][i] = true;
        const char *pad = line + strlen(prefix) + n;
        assert_int_equal((size_t)(nl - pad), PAD_LEN + strlen(suffix));
        for (size_t k = 0; k < PAD_LEN; k++)
            assert_int_equal(pad[k], 'a');
        assert_memory_equal(pad + PAD_LEN, suffix, strlen(suffix));
        line = nl + 1;
    }
}

static void issue_13_access_log_pipe_never_blocks(void **state)
{
    (void)state;
    int p[2];
    reader_pipe(p);
    struct producer prod[N_PRODUCERS];
    pthread_t threads[N_PRODUCERS];
    alarm(HANG_GUARD_S);
    for (int i = 0; i < N_PRODUCERS; i++) {
        prod[i].id = i;
        atomic_init(&prod[i].dropped, 0);
        access_drops[i] = &prod[i].dropped;
        assert_int_equal(wr_access_log_init(&prod[i].al, p[1]), 0);
        prod[i].al.dropped_lines = &prod[i].dropped;
    }
    for (int i = 0; i < N_PRODUCERS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, produce_access, &prod[i]), 0);
    for (int i = 0; i < N_PRODUCERS; i++)
        pthread_join(threads[i], NULL); /* the reader has read nothing yet */
    assert_true(access_dropped() > 0);
    struct pipe_text t = {0};
    read_until(p[0], &t, N_PRODUCERS * N_ACCESS_LINES, access_dropped);
    check_access_lines(&t);
    alarm(0);
    wr_log_writer_stop(1000);
    free(t.buf);
    close(p[0]);
    close(p[1]);
}

static uint64_t error_drops_at_start;

static uint64_t error_dropped(void)
{
    return wr_log_error_lines_dropped() - error_drops_at_start;
}

static void *produce_errors(void *arg)
{
    int id = (int)(intptr_t)arg;
    char pad[201];
    memset(pad, 'e', 200);
    pad[200] = '\0';
    for (int i = 0; i < N_ERROR_LINES; i++)
        wr_log(WR_LOG_WARN, id, 0, "line %d-%04d %s", id, i, pad);
    return NULL;
}

static void check_error_lines(const struct pipe_text *t)
{
    for (const char *line = t->buf, *end = t->buf + t->len; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        assert_non_null(nl);
        int w, id, i, n = 0;
        /* 2026-11-23T10:00:00.123Z [warn] w1: line 1-0042 eee...e */
        assert_int_equal(sscanf(line + 24, " [warn] w%d: line %d-%4d %n", &w, &id, &i, &n), 3);
        assert_int_equal(w, id);
        assert_int_equal(nl - (line + 24 + n), 200);
        line = nl + 1;
    }
}

static void issue_13_error_log_pipe_never_blocks(void **state)
{
    (void)state;
    int p[2];
    reader_pipe(p);
    error_drops_at_start = wr_log_error_lines_dropped();
    wr_log_set_error(p[1], WR_LOG_INFO);
    alarm(HANG_GUARD_S);
    pthread_t threads[N_ERROR_THREADS];
    for (int i = 0; i < N_ERROR_THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, produce_errors, (void *)(intptr_t)i),
                         0);
    for (int i = 0; i < N_ERROR_THREADS; i++)
        pthread_join(threads[i], NULL);
    assert_true(error_dropped() > 0);
    struct pipe_text t = {0};
    read_until(p[0], &t, N_ERROR_THREADS * N_ERROR_LINES, error_dropped);
    check_error_lines(&t);
    alarm(0);
    wr_log_close_all(); /* stops the writer; errors go to fd 2 directly again */
    wr_log_set_error(2, WR_LOG_INFO);
    wr_log_close_all();
    free(t.buf);
    close(p[0]);
    close(p[1]);
}

/* Opening a FIFO nobody reads fails at once (ENXIO) instead of waiting for
 * a reader; with one, it opens. /dev/stdout is weir's own fd 1. */
static void issue_13_open_fifo(void **state)
{
    (void)state;
    char dir[] = "/tmp/weir_test_fifo_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/access.fifo", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    alarm(HANG_GUARD_S);
    errno = 0;
    assert_int_equal(wr_log_open(path), -1);
    assert_int_equal(errno, ENXIO);
    assert_non_null(strstr(wr_log_strerror(ENXIO), "FIFO"));
    int reader = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    assert_true(reader >= 0);
    int fd = wr_log_open(path);
    assert_true(fd > 2);
    assert_true(wr_log_writer_is_needed(fd));
    alarm(0);
    assert_int_equal(wr_log_open("/dev/stdout"), 1);
    assert_int_equal(wr_log_open("/dev/stderr"), 2);
    wr_log_close_all();
    close(reader);
    unlink(path);
    rmdir(dir);
}

/* Issue 13.9: a per-request error line names the client, the request
 * (escaped, the target cut at 256 bytes) and its request id. */
static void issue_13_request_line(void **state)
{
    (void)state;
    char path[] = "/tmp/weir_test_reqline_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    wr_log_set_error(fd, WR_LOG_INFO);
    char target[400];
    memset(target, 'a', sizeof(target));
    memcpy(target, "/x\"\n", 4);
    struct wr_log_request rq = {WR_STR("0123abcd"), WR_STR("192.0.2.7"), WR_STR("GET"),
                                {target, sizeof(target)}};
    wr_log_request(WR_LOG_WARN, 1, 1025, &rq, "upstream %s: refused", "app");
    struct wr_log_request empty = {0};
    wr_log_request(WR_LOG_ERROR, 0, 7, &empty, "short");
    wr_log_request(WR_LOG_DEBUG, 0, 7, &rq, "below the level: not written");
    wr_log_set_error(2, WR_LOG_INFO);
    char got[4096];
    ssize_t n = pread(fd, got, sizeof(got) - 1, 0);
    assert_true(n > 0);
    got[n] = '\0';
    char want[1024];
    int k = snprintf(want, sizeof(want),
                     "[warn] w1 c1025: upstream app: refused, client: 192.0.2.7, request: "
                     "\"GET /x\\x22\\x0a%.*s...\", request_id: 0123abcd\n",
                     256 - 4, target + 4);
    assert_true(k > 0 && (size_t)k < sizeof(want));
    assert_non_null(strstr(got, want));
    assert_non_null(strstr(got, "[error] w0 c7: short, client: , request: \" \", "
                                "request_id: -\n"));
    assert_null(strstr(got, "below the level"));
    close(fd);
    unlink(path);
}

/* Issue 13.15: a request-derived path in an error message is escaped like
 * the request suffix and cut, "..." marking the cut (by max_len or by cap). */
static void issue_13_log_escape(void **state)
{
    (void)state;
    char out[32];
    assert_string_equal(wr_log_escape(out, sizeof(out), WR_STR("a/b.txt"), 256), "a/b.txt");
    assert_string_equal(wr_log_escape(out, sizeof(out), WR_STR("q\"x\n\\\xff"), 256),
                        "q\\x22x\\x0a\\x5c\\xff");
    assert_string_equal(wr_log_escape(out, sizeof(out), WR_STR("abcdefgh"), 4), "abcd...");
    /* 31 bytes fit exactly; 32 do not */
    const char *fits = "0123456789012345678901234567890";
    assert_string_equal(wr_log_escape(out, sizeof(out), wr_str_from_cstr(fits), 256), fits);
    wr_log_escape(out, sizeof(out), WR_STR("01234567890123456789012345678901"), 256);
    assert_string_equal(out, "0123456789012345678901234567...");
    wr_log_escape(out, sizeof(out), WR_STR("\x01\x01\x01\x01\x01\x01\x01\x01"), 256);
    assert_true(strlen(out) <= sizeof(out) - 1);
    assert_string_equal(out + strlen(out) - 3, "...");
    assert_string_equal(wr_log_escape(out, sizeof(out), WR_STR(""), 256), "");
}

/* Issue 13.15: at most per_second lines a second; the first line allowed
 * after refusals says how many there were. */
static void issue_13_log_budget(void **state)
{
    (void)state;
    struct wr_log_budget b = {0};
    uint64_t n = 99;
    for (int i = 0; i < 3; i++) {
        assert_true(wr_log_budget_take(&b, 3, 5000 + (uint64_t)i, &n));
        assert_int_equal(n, 0);
    }
    for (int i = 0; i < 7; i++)
        assert_false(wr_log_budget_take(&b, 3, 5999, &n));
    assert_true(wr_log_budget_take(&b, 3, 6000, &n));
    assert_int_equal(n, 7);
    assert_true(wr_log_budget_take(&b, 3, 6001, &n));
    assert_int_equal(n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_combined),
        cmocka_unit_test(test_json),
        cmocka_unit_test(issue_17_json_route),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_raw_line),
        cmocka_unit_test(test_off),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_open_reopen),
        cmocka_unit_test(issue_13_access_log_pipe_never_blocks),
        cmocka_unit_test(issue_13_error_log_pipe_never_blocks),
        cmocka_unit_test(issue_13_open_fifo),
        cmocka_unit_test(issue_13_request_line),
        cmocka_unit_test(issue_13_log_escape),
        cmocka_unit_test(issue_13_log_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
