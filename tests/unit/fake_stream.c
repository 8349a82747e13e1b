/*
 * fake_stream: see fake_stream.h. The __wrap_ functions replace the code
 * under test's calls to wr_stream_read, _send, _writev, _discard, _connect
 * and _fini (ld --wrap); __real_ ones are stream.c's.
 */
#include "fake_stream.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/uio.h>

#include "weir/stream.h"

#define MAX_FD 1024
#define MAX_RULES 16

struct rule {
    unsigned call;
    enum fs_kind kind;
    size_t n;
};

struct side {
    struct rule rules[MAX_RULES];
    unsigned n_rules;
    unsigned n_calls;
    size_t max;
};

struct fd_script {
    struct side rd, wr;
    bool is_blocked;
    unsigned n_finis;
};

static struct fd_script scripts[MAX_FD];
static int last_connect_fd = -1;

ssize_t __real_wr_stream_read(struct wr_stream *s, void *buf, size_t cap);
ssize_t __real_wr_stream_discard(struct wr_stream *s, void *buf, size_t cap);
ssize_t __real_wr_stream_writev(struct wr_stream *s, const struct iovec *iov, int n);
ssize_t __real_wr_stream_send(struct wr_stream *s, const struct wr_stream_seg *segs, size_t n,
                              size_t budget);
int __real_wr_stream_connect(struct wr_stream *s, const struct wr_listen_addr *addr,
                             bool *is_connecting);
void __real_wr_stream_fini(struct wr_stream *s);

/* What the code under test calls instead of the functions above. */
ssize_t __wrap_wr_stream_read(struct wr_stream *s, void *buf, size_t cap);
ssize_t __wrap_wr_stream_discard(struct wr_stream *s, void *buf, size_t cap);
ssize_t __wrap_wr_stream_writev(struct wr_stream *s, const struct iovec *iov, int n);
ssize_t __wrap_wr_stream_send(struct wr_stream *s, const struct wr_stream_seg *segs, size_t n,
                              size_t budget);
int __wrap_wr_stream_connect(struct wr_stream *s, const struct wr_listen_addr *addr,
                             bool *is_connecting);
void __wrap_wr_stream_fini(struct wr_stream *s);

static struct fd_script *script(int fd)
{
    return fd >= 0 && fd < MAX_FD ? &scripts[fd] : NULL;
}

void fs_track(int fd)
{
    struct fd_script *f = script(fd);
    if (f)
        memset(f, 0, sizeof(*f));
}

void fs_reset_all(void)
{
    memset(scripts, 0, sizeof(scripts));
    last_connect_fd = -1;
}

static void add_rule(struct side *sd, unsigned call, enum fs_kind kind, size_t n)
{
    if (sd->n_rules < MAX_RULES)
        sd->rules[sd->n_rules++] = (struct rule){call, kind, n};
}

void fs_on_read(int fd, unsigned call, enum fs_kind kind, size_t n)
{
    if (script(fd))
        add_rule(&script(fd)->rd, call, kind, n);
}

void fs_on_write(int fd, unsigned call, enum fs_kind kind, size_t n)
{
    if (script(fd))
        add_rule(&script(fd)->wr, call, kind, n);
}

void fs_max_read(int fd, size_t max)
{
    if (script(fd))
        script(fd)->rd.max = max;
}

void fs_max_write(int fd, size_t max)
{
    if (script(fd))
        script(fd)->wr.max = max;
}

void fs_block_writes(int fd, int is_on)
{
    if (script(fd))
        script(fd)->is_blocked = is_on != 0;
}

unsigned fs_n_reads(int fd)
{
    return script(fd) ? script(fd)->rd.n_calls : 0;
}

unsigned fs_n_writes(int fd)
{
    return script(fd) ? script(fd)->wr.n_calls : 0;
}

unsigned fs_n_finis(int fd)
{
    return script(fd) ? script(fd)->n_finis : 0;
}

int fs_last_connect_fd(void)
{
    return last_connect_fd;
}

/* This call's rule on sd (counted), or NULL; *cap lowered to the limits. */
static const struct rule *next_call(struct side *sd, size_t *cap)
{
    unsigned call = sd->n_calls++;
    if (sd->max > 0 && *cap > sd->max)
        *cap = sd->max;
    for (unsigned i = 0; i < sd->n_rules; i++) {
        if (sd->rules[i].call != call)
            continue;
        if (sd->rules[i].kind == FS_SHORT && *cap > sd->rules[i].n)
            *cap = sd->rules[i].n;
        return &sd->rules[i];
    }
    return NULL;
}

/* -1 with the rule's errno, or 0 for a read's end; 1: go on. */
static int apply_failure(const struct rule *r, bool is_read, ssize_t *out)
{
    if (!r || r->kind == FS_SHORT)
        return 1;
    if (r->kind == FS_EOF && is_read) {
        *out = 0;
        return 0;
    }
    errno = r->kind == FS_EAGAIN ? EAGAIN : r->kind == FS_EOF ? EPIPE : ECONNRESET;
    *out = -1;
    return 0;
}

ssize_t __wrap_wr_stream_read(struct wr_stream *s, void *buf, size_t cap)
{
    struct fd_script *f = script(s->fd);
    if (!f)
        return __real_wr_stream_read(s, buf, cap);
    ssize_t out;
    if (apply_failure(next_call(&f->rd, &cap), true, &out) == 0)
        return out;
    return __real_wr_stream_read(s, buf, cap);
}

ssize_t __wrap_wr_stream_discard(struct wr_stream *s, void *buf, size_t cap)
{
    return __real_wr_stream_discard(s, buf, cap); /* lingering: only counted as reads */
}

/* The write's byte limit for fd now, or -1 with errno for a failed call. */
static ssize_t write_limit(struct fd_script *f, size_t *cap)
{
    ssize_t out = 1;
    const struct rule *r = next_call(&f->wr, cap);
    if (f->is_blocked) {
        errno = EAGAIN;
        return -1;
    }
    if (apply_failure(r, false, &out) == 0)
        return out;
    return 1;
}

ssize_t __wrap_wr_stream_send(struct wr_stream *s, const struct wr_stream_seg *segs, size_t n,
                              size_t budget)
{
    struct fd_script *f = script(s->fd);
    if (!f || n == 0)
        return __real_wr_stream_send(s, segs, n, budget);
    if (write_limit(f, &budget) < 0)
        return -1;
    return __real_wr_stream_send(s, segs, n, budget);
}

ssize_t __wrap_wr_stream_writev(struct wr_stream *s, const struct iovec *iov, int n)
{
    struct fd_script *f = script(s->fd);
    if (!f || n <= 0)
        return __real_wr_stream_writev(s, iov, n);
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    size_t cap = total;
    if (write_limit(f, &cap) < 0)
        return -1;
    if (cap == total)
        return __real_wr_stream_writev(s, iov, n);
    /* A short write: offer only the first cap bytes. */
    struct iovec v[64];
    int k = 0;
    for (int i = 0; i < n && k < 64 && cap > 0; i++) {
        size_t len = iov[i].iov_len < cap ? iov[i].iov_len : cap;
        v[k++] = (struct iovec){iov[i].iov_base, len};
        cap -= len;
    }
    return __real_wr_stream_writev(s, v, k);
}

int __wrap_wr_stream_connect(struct wr_stream *s, const struct wr_listen_addr *addr,
                             bool *is_connecting)
{
    int r = __real_wr_stream_connect(s, addr, is_connecting);
    if (r == 0) {
        last_connect_fd = s->fd;
        fs_track(s->fd);
    }
    return r;
}

void __wrap_wr_stream_fini(struct wr_stream *s)
{
    struct fd_script *f = script(s->fd);
    if (f)
        f->n_finis++;
    __real_wr_stream_fini(s);
}
