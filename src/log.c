/*
 * log: error and access logs.
 *
 * Not here: deciding what to log (the module that makes a decision logs it,
 * once), nor the thread that writes to pipes and sockets (log_writer).
 * Invariants: the descriptor numbers handed out by wr_log_open stay valid
 * for the whole run (reopen dup2s onto them), which is what lets workers
 * write without locks while main rotates files. Lines are never split
 * between writers:
 * - a regular file (opened O_APPEND) gets each batch of whole lines in one
 *   write(), which the kernel applies atomically at the end of the file
 *   whoever else writes it, and which never waits for a reader: workers
 *   write these directly, as cheaply as before;
 * - anything else (a pipe or FIFO, a socket such as systemd's journal on
 *   stderr, a terminal) keeps whole only writes of at most PIPE_BUF (pipes)
 *   or none (sockets), and blocks its writer when its reader is slow. Lines
 *   for those go through log_writer: a worker hands its access lines to its
 *   own bounded queue (256 KiB) at each flush and goes on; what does not
 *   fit is dropped and counted (weir_access_log_dropped_lines_total).
 *   Error lines (from any thread) share one queue (64 KiB), under a mutex
 *   held for a memcpy; drops are counted likewise
 *   (weir_error_log_dropped_lines_total).
 */
#include "weir/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "weir/log_writer.h"

#define MAX_LOG_FILES 8
#define ERROR_LINE_MAX 1024
#define ACCESS_BUF_CAP (64 * 1024)
#define ACCESS_LINE_MAX (8 * 1024)
#define LOG_TARGET_MAX 256 /* bytes of a request target in an error-log line */
#define ACCESS_QUEUE_CAP (256 * 1024) /* per worker, past its 64 KiB buffer */
#define ERROR_QUEUE_CAP (64 * 1024)   /* every thread's error lines */
#define WRITER_STOP_MS 2000           /* at exit, a stalled log reader delays it this long */

/* Written by main before workers start, then only read: no lock needed. */
static struct {
    char *path;
    int fd;
} log_files[MAX_LOG_FILES];
static size_t n_log_files;
static int error_fd = 2;
/* Set by main before workers start when error_fd is not a regular file;
 * NULL: error lines are written directly. */
static _Atomic(struct wr_log_writer_queue *) error_queue;
/* Error lines the queue had no room for; any thread adds. */
static _Atomic uint64_t error_lines_dropped;
/* Read by every thread, changed by main on reload. */
static _Atomic int error_level = WR_LOG_INFO;
/* Set by main while it starts: warn and error lines also go to stderr. */
static _Atomic bool is_echo_stderr;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* O_NONBLOCK: opening a FIFO for writing would otherwise wait, forever,
 * for a reader to open it; with it, no reader is ENXIO, an error at start
 * naming the path. Regular files ignore the flag; on a FIFO or terminal it
 * lets the log writer write without blocking. */
static int open_append(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0644);
}

int wr_log_open(const char *path)
{
    /* Used as they are, not reopened: systemd may have connected them to
     * the journal's socket, which open() cannot reach (ENXIO). */
    if (strcmp(path, "stderr") == 0 || strcmp(path, "/dev/stderr") == 0)
        return 2;
    if (strcmp(path, "/dev/stdout") == 0)
        return 1;
    for (size_t i = 0; i < n_log_files; i++) {
        if (strcmp(log_files[i].path, path) == 0)
            return log_files[i].fd;
    }
    if (n_log_files == MAX_LOG_FILES) {
        errno = EMFILE;
        return -1;
    }
    int fd = open_append(path);
    if (fd < 0)
        return -1;
    char *copy = strdup(path);
    if (!copy) {
        close(fd);
        return -1;
    }
    log_files[n_log_files].path = copy;
    log_files[n_log_files].fd = fd;
    n_log_files++;
    return fd;
}

int wr_log_reopen(void)
{
    int rc = 0;
    for (size_t i = 0; i < n_log_files; i++) {
        int fd = open_append(log_files[i].path);
        /* dup2 swaps the file under the same number atomically: a worker
         * writing at this instant lands in the old or the new file, whole. */
        if (fd < 0 || dup2(fd, log_files[i].fd) < 0) {
            wr_log(WR_LOG_ERROR, -1, 0, "reopen %s: %s", log_files[i].path, strerror(errno));
            rc = -1;
        }
        if (fd >= 0)
            close(fd);
    }
    return rc;
}

const char *wr_log_strerror(int err)
{
    if (err == ENXIO)
        return "no process has this FIFO open for reading (start the reader first)";
    return strerror(err);
}

void wr_log_close_all(void)
{
    struct wr_log_writer_queue *q = atomic_exchange(&error_queue, NULL);
    if (q)
        wr_log_writer_queue_close(q);
    wr_log_writer_stop(WRITER_STOP_MS);
    for (size_t i = 0; i < n_log_files; i++) {
        if (log_files[i].fd == error_fd)
            error_fd = 2;
        close(log_files[i].fd);
        free(log_files[i].path);
        log_files[i].path = NULL;
    }
    n_log_files = 0;
}

void wr_log_set_error(int fd, enum wr_log_level level)
{
    struct wr_log_writer_queue *old = atomic_exchange(&error_queue, NULL);
    if (old)
        wr_log_writer_queue_close(old);
    error_fd = fd;
    wr_log_set_level(level);
    /* Without a queue (out of memory), lines are written directly: they
     * may then wait for the reader, but are not lost. */
    if (wr_log_writer_is_needed(fd))
        atomic_store(&error_queue, wr_log_writer_queue_new(fd, ERROR_QUEUE_CAP, true));
}

uint64_t wr_log_error_lines_dropped(void)
{
    return atomic_load_explicit(&error_lines_dropped, memory_order_relaxed);
}

void wr_log_set_level(enum wr_log_level level)
{
    atomic_store_explicit(&error_level, (int)level, memory_order_relaxed);
}

bool wr_log_is_enabled(enum wr_log_level level)
{
    return (int)level <= atomic_load_explicit(&error_level, memory_order_relaxed);
}

static void append_request(char *buf, size_t *n, size_t cap, const struct wr_log_request *rq);

/* Formats and writes one error-log line; rq (may be NULL) names the request. */
__attribute__((format(printf, 5, 0))) static void
write_line(enum wr_log_level level, int worker, uint64_t conn_id, const struct wr_log_request *rq,
           const char *fmt, va_list ap)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char line[ERROR_LINE_MAX];
    size_t n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    int m;
    if (worker < 0)
        m = snprintf(line + n, sizeof(line) - n, ".%03ldZ [%s] main: ", (long)tv.tv_usec / 1000,
                     level_names[level]);
    else if (conn_id == 0)
        m = snprintf(line + n, sizeof(line) - n, ".%03ldZ [%s] w%d: ", (long)tv.tv_usec / 1000,
                     level_names[level], worker);
    else
        m = snprintf(line + n, sizeof(line) - n, ".%03ldZ [%s] w%d c%llu: ",
                     (long)tv.tv_usec / 1000, level_names[level], worker,
                     (unsigned long long)conn_id);
    n += (size_t)m;
    int k = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    if (k > 0)
        n += (size_t)k < sizeof(line) - n - 1 ? (size_t)k : sizeof(line) - n - 2;
    if (rq)
        append_request(line, &n, sizeof(line) - 1, rq);
    line[n++] = '\n';
    if (level <= WR_LOG_WARN && error_fd != 2 &&
        atomic_load_explicit(&is_echo_stderr, memory_order_relaxed)) {
        ssize_t e = write(2, line, n);
        (void)e; /* stderr may be closed: the log still gets the line */
    }
    struct wr_log_writer_queue *q = atomic_load_explicit(&error_queue, memory_order_acquire);
    if (q) {
        if (wr_log_writer_push(q, line, n) < n)
            atomic_fetch_add_explicit(&error_lines_dropped, 1, memory_order_relaxed);
        return;
    }
    ssize_t w = write(error_fd, line, n);
    (void)w; /* nowhere left to report a failing error log */
}

void wr_log(enum wr_log_level level, int worker, uint64_t conn_id, const char *fmt, ...)
{
    if (!wr_log_is_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    write_line(level, worker, conn_id, NULL, fmt, ap);
    va_end(ap);
}

void wr_log_request(enum wr_log_level level, int worker, uint64_t conn_id,
                    const struct wr_log_request *rq, const char *fmt, ...)
{
    if (!wr_log_is_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    write_line(level, worker, conn_id, rq, fmt, ap);
    va_end(ap);
}

void wr_log_echo_stderr(bool is_on)
{
    atomic_store_explicit(&is_echo_stderr, is_on, memory_order_relaxed);
}

uint64_t wr_log_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int wr_access_log_init(struct wr_access_log *al, int fd)
{
    *al = (struct wr_access_log){.fd = fd};
    if (fd < 0)
        return 0;
    al->buf = malloc(ACCESS_BUF_CAP);
    if (!al->buf)
        return -1;
    al->cap = ACCESS_BUF_CAP;
    if (wr_log_writer_is_needed(fd) &&
        !(al->queue = wr_log_writer_queue_new(fd, ACCESS_QUEUE_CAP, false))) {
        free(al->buf);
        al->buf = NULL;
        return -1;
    }
    return 0;
}

static void count_dropped(struct wr_access_log *al, const char *lines, size_t len)
{
    uint64_t n = 0;
    for (const char *p = lines, *end = lines + len; p < end; p++) {
        p = memchr(p, '\n', (size_t)(end - p));
        if (!p)
            break;
        n++;
    }
    if (al->dropped_lines)
        atomic_store_explicit(al->dropped_lines,
                              atomic_load_explicit(al->dropped_lines, memory_order_relaxed) + n,
                              memory_order_relaxed);
}

void wr_access_log_flush(struct wr_access_log *al)
{
    if (al->queue) {
        size_t n = wr_log_writer_push(al->queue, al->buf, al->len);
        if (n < al->len)
            count_dropped(al, al->buf + n, al->len - n);
        al->len = 0;
        return;
    }
    size_t off = 0;
    while (off < al->len) {
        ssize_t w = write(al->fd, al->buf + off, al->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* disk full or similar: drop this batch rather than stall */
        off += (size_t)w;
    }
    al->len = 0;
}

void wr_access_log_fini(struct wr_access_log *al)
{
    if (al->buf)
        wr_access_log_flush(al);
    if (al->queue)
        wr_log_writer_queue_close(al->queue);
    al->queue = NULL;
    free(al->buf);
    al->buf = NULL;
}

/*
 * ", client: 192.0.2.1, request: "GET /x?y", request_id: 5f0c..." after an
 * error-log message (nginx's order, plus the id the access log shows).
 * The target is cut at LOG_TARGET_MAX bytes ("..." marks the cut) and, like
 * every request byte, escaped: a line can never be forged from a request.
 */
static void append_request(char *buf, size_t *n, size_t cap, const struct wr_log_request *rq)
{
    struct wr_log_line l = {buf + *n, 0, cap - *n};
    wr_log_put_cstr(&l, ", client: ");
    wr_log_put_escaped(&l, rq->client);
    wr_log_put_cstr(&l, ", request: \"");
    wr_log_put_escaped(&l, rq->method);
    wr_log_put(&l, " ", 1);
    struct wr_str target = rq->target;
    bool is_cut = target.len > LOG_TARGET_MAX;
    if (is_cut)
        target.len = LOG_TARGET_MAX;
    wr_log_put_escaped(&l, target);
    if (is_cut)
        wr_log_put_cstr(&l, "...");
    wr_log_put_cstr(&l, "\", request_id: ");
    wr_log_put_escaped(&l, rq->id.len > 0 ? rq->id : WR_STR("-"));
    *n += l.len;
}

const char *wr_log_escape(char *out, size_t cap, struct wr_str s, size_t max_len)
{
    bool is_cut = s.len > max_len;
    if (is_cut)
        s.len = max_len;
    size_t need = 0; /* escaped length: put_escaped's rule */
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        need += c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? 1 : 4;
    }
    is_cut = is_cut || need > cap - 1;
    struct wr_log_line l = {out, 0, is_cut ? cap - 4 : cap - 1}; /* room for "..." and the NUL */
    wr_log_put_escaped(&l, s);
    if (is_cut) {
        l.cap = cap - 1;
        wr_log_put_cstr(&l, "...");
    }
    out[l.len] = '\0';
    return out;
}

bool wr_log_budget_take(struct wr_log_budget *b, unsigned per_second, uint64_t now_ms,
                        uint64_t *n_suppressed)
{
    uint64_t second = now_ms / 1000;
    if (second != b->second) {
        b->second = second;
        b->n_logged = 0;
    }
    if (b->n_logged >= per_second) {
        b->n_suppressed++;
        return false;
    }
    b->n_logged++;
    *n_suppressed = b->n_suppressed;
    b->n_suppressed = 0;
    return true;
}

void wr_access_log_add(struct wr_access_log *al, const struct wr_log_format *f,
                       const struct wr_access_entry *e)
{
    if (al->fd < 0)
        return;
    if (al->cap - al->len < ACCESS_LINE_MAX + 1)
        wr_access_log_flush(al);
    struct wr_log_line l = {al->buf + al->len, 0, ACCESS_LINE_MAX};
    wr_log_format_line(f, e, &l);
    l.p[l.len++] = '\n'; /* cap leaves room for it */
    al->len += l.len;
}
