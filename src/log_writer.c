/*
 * log_writer: the thread that writes log lines to pipes, sockets and
 * terminals, fed by bounded queues that never block their producers.
 *
 * Not here: formatting lines, choosing which descriptor needs the thread,
 * or counting drops (log.c). Invariants:
 * - A queue is a byte ring of whole lines with one producer (or several
 *   serialised by its mutex) and one consumer, this thread: the producer
 *   advances tail (release) after copying in, the writer advances head
 *   (release) after copying out; each reads the other's index with acquire.
 * - Only this thread writes to a descriptor that has a queue, and it never
 *   starts a line on any descriptor while a line is half written on one
 *   (mid_line): two descriptors may be the same pipe (2>&1), and a socket
 *   or a pipe write above PIPE_BUF may be cut short anywhere.
 * - Queues are registered by main into free slots and freed by this thread
 *   once closed and empty (or by wr_log_writer_stop after the join).
 * The writer itself may block: on an inherited blocking terminal a write
 * waits for the terminal (a tty stopped with ^S holds the writer, never a
 * worker); pipes and sockets are written without blocking, after poll.
 */
#include "weir/log_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "weir/clock.h"

#define MAX_QUEUES 1040          /* [server] workers <= 1024, the error log, tests */
#define MIN_QUEUE_CAP (16 * 1024)
#define OUTBOX_CAP (64 * 1024)   /* per descriptor: several of the longest lines (8 KiB) */
#define RETRY_MS 1000            /* after a failed write (a FIFO nobody reads: EPIPE) */

enum sink_kind {
    SINK_SOCKET,   /* send(MSG_DONTWAIT): never blocks, whatever the file's flags */
    SINK_NONBLOCK, /* an O_NONBLOCK description (a FIFO or tty opened by path) */
    SINK_BLOCKING, /* inherited and blocking (stderr on a pipe or tty): written only
                      after poll says POLLOUT, at most PIPE_BUF at a time, which a
                      pipe with room takes without blocking */
};

/* One descriptor's outbox of whole lines. Writer thread only. */
struct sink {
    int fd;
    enum sink_kind kind;
    char *out;            /* owned, OUTBOX_CAP bytes */
    size_t off, len;      /* out[off..len) is still to be written */
    uint64_t retry_at_ms; /* after a failed write: not before */
};

struct wr_log_writer_queue {
    int fd;               /* set before registration, then read-only */
    bool is_shared;
    pthread_mutex_t lock; /* is_shared: serialises the producers. A mutex because
                             error lines come from any thread, rarely (the noisy
                             ones are rate-limited), and vary in length: a
                             lock-free multi-producer ring would need a sequence
                             per slot for no gain; it is held for a memcpy of at
                             most 1 KiB, never across a syscall. */
    char *buf;            /* owned, cap bytes */
    size_t cap;           /* a power of two */
    _Atomic size_t tail;  /* bytes ever pushed: producer writes, writer reads */
    _Atomic size_t head;  /* bytes ever taken: writer writes, producer reads */
    atomic_bool is_closed;
    struct sink *sink;    /* writer only: q->fd's sink, once looked up */
};

enum step { STEP_IDLE, STEP_PROGRESS, STEP_WAIT_WRITABLE, STEP_WAIT_RETRY };

static struct {
    pthread_t thread;
    bool is_running;               /* main only */
    int wake_fd;                   /* eventfd: producers add, the writer reads */
    atomic_bool is_stopping;
    _Atomic uint64_t deadline_ms;  /* stored before is_stopping */
    _Atomic(struct wr_log_writer_queue *) queues[MAX_QUEUES];
    atomic_size_t n_slots;         /* slots used since start: the scan's bound */
    /* writer thread only (and main after the join) */
    struct sink **sinks;
    struct pollfd *pfds;           /* n_sinks + 1: the wake-up, then sinks */
    size_t n_sinks;
    struct sink *mid_line;         /* its last write ended inside a line */
} W = {.wake_fd = -1};

bool wr_log_writer_is_needed(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && !S_ISREG(st.st_mode);
}

static void wake(void)
{
    uint64_t one = 1;
    ssize_t n = write(W.wake_fd, &one, sizeof(one));
    (void)n; /* EAGAIN: the counter is saturated, so a wake-up is pending */
}

/* ---- producers ------------------------------------------------------------ */

size_t wr_log_writer_push(struct wr_log_writer_queue *q, const char *lines, size_t len)
{
    if (q->is_shared)
        pthread_mutex_lock(&q->lock);
    size_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    size_t room = q->cap - (tail - atomic_load_explicit(&q->head, memory_order_acquire));
    size_t n = len;
    if (n > room) {
        const char *nl = room > 0 ? memrchr(lines, '\n', room) : NULL;
        n = nl ? (size_t)(nl - lines) + 1 : 0;
    }
    size_t at = tail & (q->cap - 1);
    size_t first = n < q->cap - at ? n : q->cap - at;
    memcpy(q->buf + at, lines, first);
    memcpy(q->buf, lines + first, n - first);
    atomic_store_explicit(&q->tail, tail + n, memory_order_release);
    if (q->is_shared)
        pthread_mutex_unlock(&q->lock);
    if (n > 0)
        wake();
    return n;
}

void wr_log_writer_queue_close(struct wr_log_writer_queue *q)
{
    atomic_store_explicit(&q->is_closed, true, memory_order_release);
    wake(); /* q may be freed from here on */
}

/* ---- the writer thread ---------------------------------------------------- */

static enum sink_kind kind_of(int fd)
{
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode))
        return SINK_SOCKET;
    int flags = fcntl(fd, F_GETFL);
    return flags >= 0 && (flags & O_NONBLOCK) ? SINK_NONBLOCK : SINK_BLOCKING;
}

/* fd's sink, made on first use; NULL when out of memory (retried later). */
static struct sink *sink_for(int fd)
{
    for (size_t i = 0; i < W.n_sinks; i++) {
        if (W.sinks[i]->fd == fd)
            return W.sinks[i];
    }
    struct sink **sinks = realloc(W.sinks, (W.n_sinks + 1) * sizeof(*sinks));
    if (sinks)
        W.sinks = sinks;
    struct pollfd *pfds = realloc(W.pfds, (W.n_sinks + 2) * sizeof(*pfds));
    if (pfds)
        W.pfds = pfds;
    struct sink *s = calloc(1, sizeof(*s));
    char *out = malloc(OUTBOX_CAP);
    if (!sinks || !pfds || !s || !out) {
        free(s);
        free(out);
        return NULL;
    }
    *s = (struct sink){.fd = fd, .kind = kind_of(fd), .out = out};
    W.sinks[W.n_sinks++] = s;
    return s;
}

/* Copies n bytes of q's ring from position at into out. */
static void copy_out(const struct wr_log_writer_queue *q, size_t at, char *out, size_t n)
{
    size_t i = at & (q->cap - 1);
    size_t first = n < q->cap - i ? n : q->cap - i;
    memcpy(out, q->buf + i, first);
    memcpy(out + first, q->buf, n - first);
}

/* Moves the whole lines of q that fit into s's outbox. True when any moved. */
static bool collect(struct wr_log_writer_queue *q, struct sink *s)
{
    size_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    size_t avail = atomic_load_explicit(&q->tail, memory_order_acquire) - head;
    if (avail == 0)
        return false;
    if (s->off > 0 && s->len + avail > OUTBOX_CAP) {
        memmove(s->out, s->out + s->off, s->len - s->off);
        s->len -= s->off;
        s->off = 0;
    }
    size_t room = OUTBOX_CAP - s->len;
    size_t n = avail < room ? avail : room;
    copy_out(q, head, s->out + s->len, n);
    if (n < avail) {
        /* Only whole lines: the rest waits for the outbox to drain. (An
         * empty outbox takes a line longer than itself, which producers
         * never make, rather than stall on it.) */
        const char *nl = memrchr(s->out + s->len, '\n', n);
        if (nl || s->len > 0)
            n = nl ? (size_t)(nl - (s->out + s->len)) + 1 : 0;
    }
    s->len += n;
    atomic_store_explicit(&q->head, head + n, memory_order_release);
    return n > 0;
}

static ssize_t write_out(const struct sink *s, size_t n)
{
    if (s->kind == SINK_SOCKET)
        return send(s->fd, s->out + s->off, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    return write(s->fd, s->out + s->off, n);
}

/* One write of s's outbox, if it can be made without blocking. */
static enum step flush_sink(struct sink *s, uint64_t now)
{
    size_t n = s->len - s->off;
    if (n == 0)
        return STEP_IDLE;
    if (now < s->retry_at_ms)
        return STEP_WAIT_RETRY;
    if (s->kind == SINK_BLOCKING) {
        struct pollfd p = {.fd = s->fd, .events = POLLOUT};
        if (poll(&p, 1, 0) == 0)
            return STEP_WAIT_WRITABLE;
        if (n > PIPE_BUF)
            n = PIPE_BUF;
    }
    ssize_t w = write_out(s, n);
    if (w < 0 && errno == EINTR)
        return STEP_PROGRESS;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return STEP_WAIT_WRITABLE;
    if (w <= 0) {
        /* EPIPE (no reader now; one may come back), EIO, ENOSPC: keep the
         * lines and retry later; meanwhile the queues fill and drop. */
        s->retry_at_ms = now + RETRY_MS;
        return STEP_WAIT_RETRY;
    }
    s->off += (size_t)w;
    W.mid_line = s->out[s->off - 1] == '\n' ? NULL : s;
    if (s->off == s->len)
        s->off = s->len = 0;
    return STEP_PROGRESS;
}

static void free_queue(struct wr_log_writer_queue *q)
{
    if (q->is_shared)
        pthread_mutex_destroy(&q->lock);
    free(q->buf);
    free(q);
}

/* Moves every queue's lines into the outboxes and frees the queues that
 * are closed and empty. Sets *has_pending when a queue still holds lines. */
static bool collect_all(bool *has_pending)
{
    bool progress = false;
    size_t n = atomic_load_explicit(&W.n_slots, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        struct wr_log_writer_queue *q = atomic_load_explicit(&W.queues[i], memory_order_acquire);
        if (!q)
            continue;
        bool is_closed = atomic_load_explicit(&q->is_closed, memory_order_acquire);
        if (!q->sink)
            q->sink = sink_for(q->fd);
        if (q->sink)
            progress |= collect(q, q->sink);
        size_t left = atomic_load_explicit(&q->tail, memory_order_acquire) -
                      atomic_load_explicit(&q->head, memory_order_relaxed);
        if (is_closed && left == 0) {
            atomic_store_explicit(&W.queues[i], NULL, memory_order_release);
            free_queue(q);
        }
        *has_pending |= left > 0;
    }
    return progress;
}

/* Writes what the outboxes hold (only the half-written line's descriptor
 * while there is one). Fills W.pfds from index 1 with what to wait for;
 * returns how many, and lowers *timeout_ms to the earliest retry. */
static size_t flush_all(uint64_t now, bool *progress, bool *has_pending, int *timeout_ms)
{
    size_t n_wait = 0;
    for (size_t i = 0; i < W.n_sinks; i++) {
        struct sink *s = W.sinks[i];
        if (!W.mid_line || W.mid_line == s) {
            enum step step = flush_sink(s, now);
            *progress |= step == STEP_PROGRESS;
            if (step == STEP_WAIT_WRITABLE)
                W.pfds[1 + n_wait++] = (struct pollfd){.fd = s->fd, .events = POLLOUT};
            if (step == STEP_WAIT_RETRY && (*timeout_ms < 0 || s->retry_at_ms - now <
                                                                   (uint64_t)*timeout_ms))
                *timeout_ms = (int)(s->retry_at_ms - now);
        }
        *has_pending |= s->len > s->off;
    }
    return n_wait;
}

static void *writer_main(void *arg)
{
    (void)arg;
    for (;;) {
        uint64_t now = wr_clock_now_ms();
        bool is_stopping = atomic_load_explicit(&W.is_stopping, memory_order_acquire);
        bool has_pending = false;
        bool progress = collect_all(&has_pending);
        int timeout_ms = -1;
        size_t n_wait = W.pfds ? flush_all(now, &progress, &has_pending, &timeout_ms) : 0;
        if (is_stopping) {
            uint64_t deadline = atomic_load_explicit(&W.deadline_ms, memory_order_relaxed);
            if (!has_pending || now >= deadline)
                break; /* a reader stalled past the deadline loses the rest */
            if (timeout_ms < 0 || deadline - now < (uint64_t)timeout_ms)
                timeout_ms = (int)(deadline - now);
        }
        if (progress)
            continue;
        struct pollfd wake_only = {.fd = W.wake_fd, .events = POLLIN};
        struct pollfd *pfds = W.pfds ? W.pfds : &wake_only;
        pfds[0] = wake_only;
        if (poll(pfds, 1 + n_wait, timeout_ms) > 0 && (pfds[0].revents & POLLIN)) {
            uint64_t n_wakeups;
            ssize_t r = read(W.wake_fd, &n_wakeups, sizeof(n_wakeups));
            (void)r; /* reset before the next collect: a push after it wakes us again */
        }
    }
    return NULL;
}

/* ---- life (main) ---------------------------------------------------------- */

static int start_writer(void)
{
    if (W.is_running)
        return 0;
    W.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (W.wake_fd < 0)
        return -1;
    atomic_store_explicit(&W.is_stopping, false, memory_order_relaxed);
    /* Signals stay with main: the writer blocks them all (so a write to a
     * FIFO whose reader left is an EPIPE here, never a SIGPIPE). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&W.thread, NULL, writer_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        close(W.wake_fd);
        W.wake_fd = -1;
        errno = rc;
        return -1;
    }
    W.is_running = true;
    return 0;
}

static struct wr_log_writer_queue *queue_alloc(int fd, size_t cap, bool is_shared)
{
    struct wr_log_writer_queue *q = calloc(1, sizeof(*q));
    size_t c = MIN_QUEUE_CAP;
    while (c < cap)
        c *= 2;
    if (!q || !(q->buf = malloc(c))) {
        free(q);
        errno = ENOMEM;
        return NULL;
    }
    q->fd = fd;
    q->cap = c;
    q->is_shared = is_shared;
    atomic_init(&q->tail, 0);
    atomic_init(&q->head, 0);
    atomic_init(&q->is_closed, false);
    if (is_shared)
        pthread_mutex_init(&q->lock, NULL);
    return q;
}

struct wr_log_writer_queue *wr_log_writer_queue_new(int fd, size_t cap, bool is_shared)
{
    size_t n = atomic_load_explicit(&W.n_slots, memory_order_relaxed);
    size_t slot = 0;
    while (slot < n && atomic_load_explicit(&W.queues[slot], memory_order_acquire))
        slot++;
    if (slot == MAX_QUEUES) {
        errno = EMFILE;
        return NULL;
    }
    struct wr_log_writer_queue *q = queue_alloc(fd, cap, is_shared);
    if (!q)
        return NULL;
    if (start_writer() < 0) {
        free_queue(q);
        return NULL;
    }
    atomic_store_explicit(&W.queues[slot], q, memory_order_release);
    if (slot == n)
        atomic_store_explicit(&W.n_slots, n + 1, memory_order_release);
    return q;
}

void wr_log_writer_stop(uint64_t timeout_ms)
{
    if (!W.is_running)
        return;
    atomic_store_explicit(&W.deadline_ms, wr_clock_now_ms() + timeout_ms, memory_order_relaxed);
    atomic_store_explicit(&W.is_stopping, true, memory_order_release);
    wake();
    pthread_join(W.thread, NULL);
    size_t n = atomic_load_explicit(&W.n_slots, memory_order_relaxed);
    for (size_t i = 0; i < n; i++) {
        struct wr_log_writer_queue *q = atomic_load_explicit(&W.queues[i], memory_order_relaxed);
        if (q)
            free_queue(q);
        atomic_store_explicit(&W.queues[i], NULL, memory_order_relaxed);
    }
    atomic_store_explicit(&W.n_slots, 0, memory_order_relaxed);
    for (size_t i = 0; i < W.n_sinks; i++) {
        free(W.sinks[i]->out);
        free(W.sinks[i]);
    }
    free(W.sinks);
    free(W.pfds);
    W.sinks = NULL;
    W.pfds = NULL;
    W.n_sinks = 0;
    W.mid_line = NULL;
    close(W.wake_fd);
    W.wake_fd = -1;
    W.is_running = false;
}
