/*
 * stream: a connected socket, plain or TLS (see stream.h).
 *
 * Responsible for: the system calls and OpenSSL calls that move bytes
 * (read, sendmsg, sendfile, pread into a record, SSL_read/SSL_write via
 * tls.c), the one TLS write staging, close_notify and shutdown.
 * Deliberately not: events and deadlines (the owner's), TLS contexts and
 * handshake policy (tls.c), any protocol.
 *
 * Invariants:
 *  - Every entry point branches on s->tls == NULL first: plain TCP pays one
 *    compare for TLS.
 *  - A TLS stream holds a buffer only while ciphertext the socket did not
 *    take waits (tls.c keeps it; wr_tls_waiting > 0), and nothing else is
 *    written until it has gone. OpenSSL is never asked to retry a write, so
 *    no plaintext is kept. The worker's stage (a plaintext record and a
 *    batch of records) is used within one call and never holds anything
 *    between calls, so all streams of a thread share it.
 *  - Several records made in one call leave with one write(2) (a batch):
 *    32 small HTTP/2 responses cost one system call, not one per record.
 *    A stream whose last batch did not all go is given one record at a time
 *    until the socket takes a whole batch again, so a slow reader holds at
 *    most a record's worth of waiting ciphertext, as before batching.
 *  - Once a TLS write failed, ts->error is set and every later write and
 *    read fails with it: the record layer is broken, and a caller that
 *    only learns of the failure on its next event still sees it.
 */
#include "weir/stream.h"

#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_SEGS 16 /* segments looked at per plain write call */
#define BATCH_RECORDS 4
#define BATCH_CAP (BATCH_RECORDS * WR_TLS_RECORD_MAX)

struct wr_stream_stage {
    char *buf;   /* WR_STREAM_RECORD bytes once a write needed them, else NULL */
    char *batch; /* BATCH_CAP bytes once a write made several records, else NULL */
    struct wr_stream_stats stats;
};

struct wr_stream_tls {
    struct wr_tls_conn *conn;      /* owned */
    struct wr_stream_stage *stage; /* borrowed: the thread's */
    size_t waiting;                /* wr_tls_waiting as the stage's stats count it */
    bool is_congested;             /* the last batch did not all go: one record at a time */
    int error;                     /* errno of a failed write (sticky); 0: none */
};

/* ---- the stage ------------------------------------------------------------- */

struct wr_stream_stage *wr_stream_stage_new(void)
{
    return calloc(1, sizeof(struct wr_stream_stage));
}

void wr_stream_stage_free(struct wr_stream_stage *st)
{
    if (!st)
        return;
    assert(st->stats.n_pending == 0); /* a stream still points here */
    free(st->buf);
    free(st->batch);
    free(st);
}

const struct wr_stream_stats *wr_stream_stage_stats(const struct wr_stream_stage *st)
{
    return &st->stats;
}

/* The stage's buffer, allocated on first use; NULL when out of memory. */
static char *stage_buf(struct wr_stream_stage *st)
{
    if (!st->buf && (st->buf = malloc(WR_STREAM_RECORD)))
        st->stats.n_stage_allocs++;
    return st->buf;
}

/* The stage's batch buffer, allocated on first use; NULL when out of memory. */
static char *stage_batch(struct wr_stream_stage *st)
{
    if (!st->batch && (st->batch = malloc(BATCH_CAP)))
        st->stats.n_batch_allocs++;
    return st->batch;
}

/* ---- life ------------------------------------------------------------------ */

void wr_stream_init(struct wr_stream *s, int fd)
{
    s->fd = fd;
    s->tls = NULL;
}

int wr_stream_connect(struct wr_stream *s, const struct wr_listen_addr *addr,
                      bool *is_connecting)
{
    int family = addr->addr.ss_family;
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    *is_connecting = false;
    if (connect(fd, (const struct sockaddr *)&addr->addr, addr->addr_len) < 0) {
        if (errno != EINPROGRESS) {
            int err = errno;
            close(fd);
            errno = err;
            return -1;
        }
        *is_connecting = true;
    }
    wr_stream_init(s, fd);
    return 0;
}

int wr_stream_connect_error(const struct wr_stream *s)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    return err;
}

/* Brings the stage's counters up to what waits in ts now (any TLS call may
 * have left ciphertext waiting: a write, a handshake flight, an answer to
 * a KeyUpdate during a read). */
static void sync_waiting(struct wr_stream_tls *ts)
{
    size_t now = wr_tls_waiting(ts->conn);
    struct wr_stream_stats *st = &ts->stage->stats;
    if (now == ts->waiting)
        return;
    if (ts->waiting == 0) {
        st->n_pending++;
        st->n_blocked++;
    } else if (now == 0) {
        st->n_pending--;
    }
    st->pending_bytes = st->pending_bytes - ts->waiting + now;
    ts->waiting = now;
}

/* Makes conn (owned from now on; NULL: allocation failed) s's TLS. */
static int attach_tls(struct wr_stream *s, struct wr_tls_conn *conn,
                      struct wr_stream_stage *stage)
{
    assert(stage != NULL && s->tls == NULL);
    struct wr_stream_tls *ts = conn ? malloc(sizeof(*ts)) : NULL;
    if (!ts) {
        wr_tls_conn_free(conn);
        errno = ENOMEM;
        return -1;
    }
    *ts = (struct wr_stream_tls){.conn = conn, .stage = stage};
    s->tls = ts;
    return 0;
}

int wr_stream_tls_server(struct wr_stream *s, const struct wr_tls_set *set,
                         struct wr_stream_stage *stage)
{
    return attach_tls(s, wr_tls_conn_new(set, s->fd), stage);
}

int wr_stream_tls_client(struct wr_stream *s, const struct wr_tls_client *client, size_t server,
                         struct wr_tls_session **slot, struct wr_stream_stage *stage)
{
    return attach_tls(s, wr_tls_client_conn_new(client, server, s->fd, slot), stage);
}

enum wr_tls_result wr_stream_handshake(struct wr_stream *s, char *why, size_t cap)
{
    enum wr_tls_result r = wr_tls_handshake(s->tls->conn, why, cap);
    sync_waiting(s->tls);
    return r;
}

void wr_stream_drop_tls(struct wr_stream *s)
{
    struct wr_stream_tls *ts = s->tls;
    if (!ts)
        return;
    struct wr_stream_stats *st = &ts->stage->stats;
    if (ts->waiting > 0) {
        st->n_pending--;
        st->pending_bytes -= ts->waiting;
    }
    wr_tls_conn_free(ts->conn);
    free(ts);
    s->tls = NULL;
}

void wr_stream_fini(struct wr_stream *s)
{
    wr_stream_drop_tls(s);
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

/* ---- writing --------------------------------------------------------------- */

/* Sends the waiting ciphertext. 1: nothing waits (any more), 0: some
 * still waits, -1: the stream broke (errno, sticky). */
static int tls_flush(struct wr_stream_tls *ts)
{
    if (ts->error) {
        errno = ts->error;
        return -1;
    }
    int r = wr_tls_flush(ts->conn);
    if (r < 0)
        ts->error = errno;
    sync_waiting(ts);
    return r;
}

/* Copies up to cap bytes of segs into stage: memory copied, file bytes
 * pread (a large file is never read whole). Returns the bytes staged, or
 * -1 with errno when the first file range fails before anything was
 * staged (EIO: it ended early, the file shrank under us). */
static ssize_t gather(char *stage, const struct wr_stream_seg *segs, size_t n, size_t cap)
{
    size_t len = 0;
    for (size_t i = 0; i < n && len < cap; i++) {
        const struct wr_stream_seg *sg = &segs[i];
        size_t take = sg->len < cap - len ? sg->len : cap - len;
        if (take == 0)
            continue;
        if (sg->fd < 0) {
            memcpy(stage + len, sg->ptr, take);
            len += take;
            continue;
        }
        ssize_t got;
        do {
            got = pread(sg->fd, stage + len, take, sg->off);
        } while (got < 0 && errno == EINTR);
        if (got > 0)
            len += (size_t)got;
        if (got != (ssize_t)take) {
            if (len > 0)
                break; /* send what we have; the error shows on the next call */
            if (got == 0)
                errno = EIO;
            return -1;
        }
    }
    return (ssize_t)len;
}

/* One TLS record from segs, at most cap bytes (see wr_stream_send).
 * Returns bytes taken or -1 (errno; ts->error once the stream broke). */
static ssize_t tls_record(struct wr_stream_tls *ts, const struct wr_stream_seg *segs, size_t n,
                          size_t cap)
{
    const char *src;
    size_t len;
    if (segs[0].fd < 0 && (n == 1 || segs[0].len >= cap)) {
        /* One piece: OpenSSL encrypts it in place, nothing is copied. */
        src = segs[0].ptr;
        len = segs[0].len < cap ? segs[0].len : cap;
    } else {
        char *stage = stage_buf(ts->stage);
        if (!stage) {
            errno = ENOMEM;
            return -1;
        }
        ssize_t got = gather(stage, segs, n, cap);
        if (got < 0)
            return -1;
        src = stage;
        len = (size_t)got;
    }
    if (len == 0)
        return 0;
    ssize_t w = wr_tls_send(ts->conn, src, len);
    if (w < 0)
        ts->error = errno;
    return w;
}

/* Moves the first of segs[0..*n) on by k bytes, dropping emptied ones. */
static const struct wr_stream_seg *skip_segs(struct wr_stream_seg *segs, size_t *first, size_t n,
                                             size_t k)
{
    while (k > 0 && *first < n) {
        struct wr_stream_seg *sg = &segs[*first];
        size_t take = k < sg->len ? k : sg->len;
        if (sg->fd >= 0)
            sg->off += (off_t)take;
        else
            sg->ptr += take;
        sg->len -= take;
        k -= take;
        if (sg->len == 0)
            (*first)++;
    }
    return segs + *first;
}

/* Records from segs within budget, collected into one write (see the
 * header comment): the first record's failure is returned, a later one's
 * shows on the next call. */
static ssize_t tls_batch(struct wr_stream_tls *ts, const struct wr_stream_seg *segs, size_t n,
                         size_t budget, char *batch)
{
    struct wr_stream_seg cur[WR_STREAM_MAX_SEGS];
    memcpy(cur, segs, n * sizeof(*cur));
    size_t first = 0, taken = 0;
    wr_tls_batch_begin(ts->conn, batch, BATCH_CAP);
    while (first < n && taken < budget && wr_tls_batch_room(ts->conn) >= WR_TLS_RECORD_MAX) {
        size_t cap = budget - taken < WR_STREAM_RECORD ? budget - taken : WR_STREAM_RECORD;
        ssize_t w = tls_record(ts, cur + first, n - first, cap);
        if (w <= 0) {
            if (taken == 0 && w < 0) {
                int err = errno;
                wr_tls_batch_end(ts->conn);
                errno = err;
                return -1;
            }
            break;
        }
        taken += (size_t)w;
        skip_segs(cur, &first, n, (size_t)w);
    }
    if (wr_tls_batch_end(ts->conn) < 0)
        ts->error = errno; /* the taken bytes are lost with the stream */
    return (ssize_t)taken;
}

static ssize_t tls_send(struct wr_stream_tls *ts, const struct wr_stream_seg *segs, size_t n,
                        size_t budget)
{
    int r = tls_flush(ts);
    if (r <= 0) {
        if (r == 0)
            errno = EAGAIN;
        return -1;
    }
    size_t offered = 0;
    for (size_t i = 0; i < n && offered <= WR_STREAM_RECORD; i++)
        offered += segs[i].len;
    char *batch = NULL;
    if (offered > WR_STREAM_RECORD && budget > WR_STREAM_RECORD && !ts->is_congested)
        batch = stage_batch(ts->stage);
    ssize_t w;
    if (batch)
        w = tls_batch(ts, segs, n, budget, batch);
    else
        w = tls_record(ts, segs, n, budget < WR_STREAM_RECORD ? budget : WR_STREAM_RECORD);
    /* A batch the socket did not all take: one record at a time until
     * one goes whole (a slow reader waits on a record's worth). */
    ts->is_congested = wr_tls_waiting(ts->conn) > 0;
    sync_waiting(ts);
    return w;
}

/* The leading memory segments of segs with one sendmsg. */
static ssize_t plain_send_mem(int fd, const struct wr_stream_seg *segs, size_t n, size_t budget)
{
    struct iovec iov[MAX_SEGS];
    size_t k = 0, total = 0;
    for (; k < n && k < MAX_SEGS && segs[k].fd < 0 && total < budget; k++) {
        size_t take = segs[k].len < budget - total ? segs[k].len : budget - total;
        iov[k] = (struct iovec){(void *)segs[k].ptr, take};
        total += take;
    }
    /* A head followed by a file body: MSG_MORE lets the kernel put the head
     * and the first file bytes in one segment (what TCP_CORK does for nginx)
     * instead of a tiny packet of its own under TCP_NODELAY. */
    bool is_file_next = k < n && k < MAX_SEGS && segs[k].fd >= 0;
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = k};
    ssize_t w;
    do {
        w = sendmsg(fd, &msg, MSG_NOSIGNAL | (is_file_next ? MSG_MORE : 0));
    } while (w < 0 && errno == EINTR);
    return w;
}

/* A leading file range with one sendfile. */
static ssize_t plain_send_file(int fd, const struct wr_stream_seg *seg, size_t budget)
{
    size_t want = seg->len < budget ? seg->len : budget;
    off_t off = seg->off;
    ssize_t w;
    do {
        w = sendfile(fd, seg->fd, &off, want);
    } while (w < 0 && errno == EINTR);
    if (w == 0 && want > 0) {
        errno = EIO; /* the file shrank under us: the body cannot be completed */
        return -1;
    }
    return w;
}

ssize_t wr_stream_send(struct wr_stream *s, const struct wr_stream_seg *segs, size_t n,
                       size_t budget)
{
    if (n == 0 || budget == 0)
        return 0;
    if (s->tls)
        return tls_send(s->tls, segs, n < WR_STREAM_MAX_SEGS ? n : WR_STREAM_MAX_SEGS, budget);
    if (segs[0].fd >= 0)
        return plain_send_file(s->fd, &segs[0], budget);
    return plain_send_mem(s->fd, segs, n, budget);
}

ssize_t wr_stream_writev(struct wr_stream *s, const struct iovec *iov, int n)
{
    if (!s->tls) {
        struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
        ssize_t w;
        do {
            w = sendmsg(s->fd, &msg, MSG_NOSIGNAL);
        } while (w < 0 && errno == EINTR);
        return w;
    }
    struct wr_stream_seg segs[MAX_SEGS];
    size_t k = 0;
    for (int i = 0; i < n && k < MAX_SEGS; i++)
        segs[k++] = (struct wr_stream_seg){.ptr = iov[i].iov_base, .len = iov[i].iov_len, .fd = -1};
    return k ? tls_send(s->tls, segs, k, BATCH_RECORDS * WR_STREAM_RECORD) : 0;
}

ssize_t wr_stream_sendfile(struct wr_stream *s, int fd, off_t off, size_t len)
{
    struct wr_stream_seg seg = {.len = len, .fd = fd, .off = off};
    return wr_stream_send(s, &seg, 1, len);
}

int wr_stream_flush(struct wr_stream *s)
{
    return s->tls ? tls_flush(s->tls) : 1;
}

bool wr_stream_wants_write(const struct wr_stream *s)
{
    return s->tls && s->tls->waiting > 0;
}

/* ---- reading --------------------------------------------------------------- */

ssize_t wr_stream_read(struct wr_stream *s, void *buf, size_t cap)
{
    ssize_t n;
    if (!s->tls) {
        do {
            n = read(s->fd, buf, cap);
        } while (n < 0 && errno == EINTR);
        return n;
    }
    if (s->tls->error) {
        errno = s->tls->error;
        return -1;
    }
    n = wr_tls_recv(s->tls->conn, buf, cap);
    if (wr_tls_waiting(s->tls->conn) != s->tls->waiting) {
        int err = errno;
        sync_waiting(s->tls); /* an answer to a KeyUpdate: wants_write tells */
        errno = err;
    }
    return n;
}

bool wr_stream_has_pending(const struct wr_stream *s)
{
    return s->tls && wr_tls_has_pending(s->tls->conn);
}

ssize_t wr_stream_discard(struct wr_stream *s, void *buf, size_t cap)
{
    ssize_t n;
    do {
        n = read(s->fd, buf, cap);
    } while (n < 0 && errno == EINTR);
    return n;
}

/* ---- ending ---------------------------------------------------------------- */

void wr_stream_close_notify(struct wr_stream *s)
{
    struct wr_stream_tls *ts = s->tls;
    if (ts && !ts->error && ts->waiting == 0) {
        wr_tls_close_notify(ts->conn);
        sync_waiting(ts);
    }
}

int wr_stream_shutdown(struct wr_stream *s)
{
    if (s->tls) {
        /* The close_notify must follow the data, never overtake it. */
        if (tls_flush(s->tls) == 0) {
            errno = EAGAIN;
            return -1;
        }
        wr_stream_close_notify(s);
    }
    return shutdown(s->fd, SHUT_WR);
}

/* ---- state ----------------------------------------------------------------- */

struct wr_tls_conn *wr_stream_tls(const struct wr_stream *s)
{
    return s->tls ? s->tls->conn : NULL;
}

void wr_stream_set_idle(struct wr_stream *s, bool is_idle)
{
    if (s->tls)
        wr_tls_set_idle(s->tls->conn, is_idle);
}

bool wr_stream_idle_check(struct wr_stream *s)
{
    return s->tls && !s->tls->error && wr_tls_idle_check(s->tls->conn);
}

bool wr_stream_is_reusable(const struct wr_stream *s)
{
    const struct wr_stream_tls *ts = s->tls;
    return !ts || (ts->waiting == 0 && !ts->error && wr_tls_is_healthy(ts->conn) &&
                   !wr_tls_has_pending(ts->conn));
}
