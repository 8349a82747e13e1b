/*
 * relay: two streams, one buffer per direction (see relay.h).
 *
 * Direction d moves side d -> side 1 - d. Its events are ev_read[d] (its
 * source) and ev_write[1 - d] (its destination), so every event belongs to
 * exactly one direction and a callback pumps only that direction.
 *
 * Invariants:
 *  - A direction reads only into an empty buffer and only while its
 *    destination holds no waiting TLS record: at most one buffer and one
 *    record in flight per direction (the backpressure bound).
 *  - After every callback, sync_events leaves exactly the events the state
 *    asks for: a read while the direction may read, a write while bytes or
 *    a record wait for the destination.
 *  - Once is_ended, nothing is armed and nothing is touched after on_end.
 */
#include "weir/relay.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "weir/clock.h"
#include "weir/metrics.h"

#define MAX_ROUNDS 8 /* fairness: buffers moved per direction and event */

static void on_read_0(evutil_socket_t fd, short what, void *arg);
static void on_read_1(evutil_socket_t fd, short what, void *arg);
static void on_write_0(evutil_socket_t fd, short what, void *arg);
static void on_write_1(evutil_socket_t fd, short what, void *arg);
static void on_timer(struct wr_timer_wheel *w, struct wr_timer *t, uint64_t now_ms);

static void count(_Atomic uint64_t *counter, uint64_t n)
{
    if (counter)
        wr_metrics_add(counter, n);
}

int wr_relay_init(struct wr_relay *r, struct event_base *base, struct wr_timer_wheel *wheel,
                  struct wr_stream *a, struct wr_stream *b, const struct wr_relay_cfg *cfg,
                  size_t max_pending, wr_relay_end_fn on_end, void *arg)
{
    *r = (struct wr_relay){.side = {a, b}, .wheel = wheel, .cfg = *cfg, .on_end = on_end,
                           .arg = arg};
    event_assign(&r->ev_read[0], base, a->fd, EV_READ | EV_PERSIST, on_read_0, r);
    event_assign(&r->ev_read[1], base, b->fd, EV_READ | EV_PERSIST, on_read_1, r);
    event_assign(&r->ev_write[0], base, a->fd, EV_WRITE | EV_PERSIST, on_write_0, r);
    event_assign(&r->ev_write[1], base, b->fd, EV_WRITE | EV_PERSIST, on_write_1, r);
    wr_timer_init(&r->timer, on_timer);
    size_t cap = cfg->buf_bytes > max_pending ? cfg->buf_bytes : max_pending;
    char *mem = malloc(2 * cap);
    if (!mem) {
        errno = ENOMEM;
        return -1;
    }
    for (int d = 0; d < 2; d++)
        r->dir[d] = (struct wr_relay_dir){.buf = mem + (size_t)d * cap, .cap = cap};
    return 0;
}

void wr_relay_fini(struct wr_relay *r)
{
    if (!r->wheel)
        return; /* never initialised */
    for (int i = 0; i < 2; i++) {
        event_del(&r->ev_read[i]);
        event_del(&r->ev_write[i]);
        r->is_read_on[i] = r->is_write_on[i] = false;
    }
    wr_timer_disarm(r->wheel, &r->timer);
    free(r->dir[0].buf); /* both buffers: one block */
    r->dir[0].buf = r->dir[1].buf = NULL;
}

uint64_t wr_relay_bytes_read(const struct wr_relay *r, int side)
{
    return r->dir[side].n_read;
}

uint64_t wr_relay_bytes_written(const struct wr_relay *r, int side)
{
    return r->dir[1 - side].n_written;
}

/* Bytes were read: the idle deadline moves (the timer only if earlier). */
static void touch(struct wr_relay *r)
{
    if (r->cfg.idle_timeout_ms == 0)
        return;
    r->deadline_ms = wr_clock_now_ms() + r->cfg.idle_timeout_ms;
    wr_timer_arm_lazy(r->wheel, &r->timer, r->deadline_ms);
}

/* Writes direction d's buffer, then any record its destination holds.
 * Returns 1 when nothing waits for the destination any more, 0 when it is
 * full, -1 when it failed. */
static int drain(struct wr_relay *r, int d)
{
    struct wr_relay_dir *x = &r->dir[d];
    struct wr_stream *to = r->side[1 - d];
    while (x->start < x->len) {
        struct iovec iov = {x->buf + x->start, x->len - x->start};
        ssize_t w = wr_stream_writev(to, &iov, 1);
        if (w <= 0)
            return w < 0 && errno != EAGAIN ? -1 : 0;
        x->start += (size_t)w;
        x->n_written += (uint64_t)w;
        count(r->cfg.written_counter[1 - d], (uint64_t)w);
    }
    x->start = x->len = 0;
    return wr_stream_wants_write(to) ? wr_stream_flush(to) : 1;
}

/* Direction d's source ended and everything before the end went out:
 * pass the end on (RFC 9112 §9.6's half-close, or TLS close_notify).
 * Returns 0, or -1 when the destination failed. */
static int end_direction(struct wr_relay *r, int d)
{
    struct wr_relay_dir *x = &r->dir[d];
    if (x->is_shut)
        return 0;
    if (wr_stream_shutdown(r->side[1 - d]) < 0) {
        if (errno == EAGAIN)
            return 0; /* a record waits: drain flushes it first */
        /* The destination is gone already (its peer closed): nothing to
         * tell it; the other direction finds out on its own. */
    }
    x->is_shut = true;
    return 0;
}

/* Moves what direction d can now, in bounded rounds. Returns -1 on error. */
static int pump(struct wr_relay *r, int d)
{
    struct wr_relay_dir *x = &r->dir[d];
    for (int round = 0; round < MAX_ROUNDS; round++) {
        int k = drain(r, d);
        if (k <= 0)
            return k;
        if (x->is_eof)
            return end_direction(r, d);
        ssize_t n = wr_stream_read(r->side[d], x->buf, x->cap);
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        if (n == 0) {
            x->is_eof = true;
            continue; /* nothing to drain: pass the end on */
        }
        x->len = (size_t)n;
        x->n_read += (uint64_t)n;
        count(r->cfg.read_counter[d], (uint64_t)n);
        touch(r);
    }
    return 0;
}

static void set_event(struct event *ev, bool *is_on, bool should_be_on)
{
    if (should_be_on == *is_on)
        return;
    if (should_be_on)
        event_add(ev, NULL);
    else
        event_del(ev);
    *is_on = should_be_on;
}

/* Arms what each direction waits for (see the invariants). */
static void sync_events(struct wr_relay *r)
{
    for (int d = 0; d < 2; d++) {
        const struct wr_relay_dir *x = &r->dir[d];
        struct wr_stream *from = r->side[d], *to = r->side[1 - d];
        bool is_waiting = x->start < x->len || wr_stream_wants_write(to);
        bool may_read = !x->is_eof && !is_waiting;
        set_event(&r->ev_read[d], &r->is_read_on[d], may_read);
        set_event(&r->ev_write[1 - d], &r->is_write_on[1 - d], is_waiting);
        /* Records already off the socket never make it readable again. */
        if (may_read && wr_stream_has_pending(from))
            event_active(&r->ev_read[d], EV_READ, 0);
    }
}

/* The relay is over: nothing stays armed; on_end is the last call. */
static void end(struct wr_relay *r, enum wr_relay_end why)
{
    r->is_ended = true;
    for (int i = 0; i < 2; i++) {
        set_event(&r->ev_read[i], &r->is_read_on[i], false);
        set_event(&r->ev_write[i], &r->is_write_on[i], false);
    }
    wr_timer_disarm(r->wheel, &r->timer);
    r->on_end(r, why, r->arg);
}

static void on_direction(struct wr_relay *r, int d)
{
    if (r->is_ended)
        return; /* an activation that outlived the end */
    if (pump(r, d) < 0) {
        end(r, WR_RELAY_ERROR);
        return;
    }
    if (r->dir[0].is_shut && r->dir[1].is_shut) {
        end(r, WR_RELAY_DONE);
        return;
    }
    sync_events(r);
}

static void on_read_0(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    on_direction(arg, 0);
}

static void on_read_1(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    on_direction(arg, 1);
}

/* Side 0 writable: it is direction 1's destination. */
static void on_write_0(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    on_direction(arg, 1);
}

static void on_write_1(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    on_direction(arg, 0);
}

static void on_timer(struct wr_timer_wheel *w, struct wr_timer *t, uint64_t now_ms)
{
    struct wr_relay *r = WR_TIMER_OWNER(t, struct wr_relay, timer);
    if (r->is_ended || r->deadline_ms == 0 || wr_timer_rearm_if_early(w, t, r->deadline_ms, now_ms))
        return;
    end(r, WR_RELAY_IDLE);
}

void wr_relay_start(struct wr_relay *r, const char *pending_a, size_t len_a,
                    const char *pending_b, size_t len_b)
{
    const char *pending[2] = {pending_a, pending_b};
    size_t len[2] = {len_a, len_b};
    for (int d = 0; d < 2; d++) {
        struct wr_relay_dir *x = &r->dir[d];
        if (len[d] > 0)
            memcpy(x->buf, pending[d], len[d]);
        x->start = 0;
        x->len = len[d];
        x->n_read = len[d]; /* the owner counted them when it read them */
    }
    r->is_started = true;
    touch(r);
    sync_events(r); /* pending bytes wait for writable: the first event sends them */
}
