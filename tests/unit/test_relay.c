/*
 * relay: two plain streams over socketpairs, driven by a real event base
 * run without blocking, and a timer wheel on a fake clock. Covers both
 * directions, bytes given to start, backpressure against a peer that does
 * not read (and the bytes all arriving, in order, once it does), the
 * half-close passed on each way and the end once both are done, a reset
 * destination, the idle timeout, and the live counters (issue 14).
 */
#include <errno.h>
#include <event2/event.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "weir/clock.h"
#include "weir/relay.h"
#include "weir/stream.h"
#include "weir/timer.h"

#define BUF 4096
#define SPINS 2000 /* event loop turns a wait may take, at most */

static _Atomic uint64_t fake_us = 1000000000;

static uint64_t fake_clock(void)
{
    return fake_us;
}

/* a_peer <-> [a  relay  b] <-> b_peer */
struct fx {
    struct event_base *base;
    struct wr_timer_wheel wheel;
    int a_peer, b_peer;
    struct wr_stream a, b;
    struct wr_relay relay;
    int n_ends;
    enum wr_relay_end why;
    _Atomic uint64_t read_count[2], written_count[2];
};

static void on_end(struct wr_relay *r, enum wr_relay_end why, void *arg)
{
    struct fx *f = arg;
    assert_ptr_equal(r, &f->relay);
    f->n_ends++;
    f->why = why;
    wr_relay_fini(r); /* allowed inside on_end */
}

static void pair(int *mine, int *peer)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    *mine = sv[0];
    *peer = sv[1];
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    signal(SIGPIPE, SIG_IGN);
    wr_clock_set_source(fake_clock);
    f->base = event_base_new();
    wr_timer_wheel_init(&f->wheel, wr_clock_now_ms());
    int a, b;
    pair(&a, &f->a_peer);
    pair(&b, &f->b_peer);
    wr_stream_init(&f->a, a);
    wr_stream_init(&f->b, b);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    wr_relay_fini(&f->relay);
    wr_stream_fini(&f->a);
    wr_stream_fini(&f->b);
    if (f->a_peer >= 0)
        close(f->a_peer);
    if (f->b_peer >= 0)
        close(f->b_peer);
    wr_timer_wheel_fini(&f->wheel);
    event_base_free(f->base);
    wr_clock_set_source(NULL);
    free(f);
    return 0;
}

static void start(struct fx *f, uint64_t idle_ms, const char *pending, size_t len)
{
    struct wr_relay_cfg cfg = {.buf_bytes = BUF, .idle_timeout_ms = idle_ms,
                               .read_counter = {&f->read_count[0], &f->read_count[1]},
                               .written_counter = {&f->written_count[0], &f->written_count[1]}};
    assert_int_equal(wr_relay_init(&f->relay, f->base, &f->wheel, &f->a, &f->b, &cfg, len,
                                   on_end, f), 0);
    wr_relay_start(&f->relay, pending, len, NULL, 0);
}

static void spin(struct fx *f, int n)
{
    for (int i = 0; i < n; i++)
        event_base_loop(f->base, EVLOOP_NONBLOCK);
}

/* Reads exactly n bytes from fd into out, turning the loop meanwhile. */
static void read_exactly(struct fx *f, int fd, char *out, size_t n)
{
    size_t got = 0;
    for (int i = 0; i < SPINS * 10 && got < n; i++) {
        spin(f, 1);
        ssize_t k = read(fd, out + got, n - got);
        if (k > 0)
            got += (size_t)k;
        else
            assert_true(k < 0 && errno == EAGAIN);
    }
    assert_int_equal(got, n);
}

/* True once fd reads the end of the stream (nothing else may come). */
static bool sees_eof(struct fx *f, int fd)
{
    char c;
    for (int i = 0; i < SPINS; i++) {
        spin(f, 1);
        ssize_t k = read(fd, &c, 1);
        if (k == 0)
            return true;
        assert_true(k < 0 && errno == EAGAIN);
    }
    return false;
}

static void issue_14_relay_both_directions(void **state)
{
    struct fx *f = *state;
    start(f, 0, NULL, 0);
    char out[64];
    assert_int_equal(write(f->a_peer, "hello up", 8), 8);
    read_exactly(f, f->b_peer, out, 8);
    assert_memory_equal(out, "hello up", 8);
    assert_int_equal(write(f->b_peer, "and down", 8), 8);
    read_exactly(f, f->a_peer, out, 8);
    assert_memory_equal(out, "and down", 8);
    assert_int_equal(wr_relay_bytes_read(&f->relay, 0), 8);
    assert_int_equal(wr_relay_bytes_written(&f->relay, 1), 8);
    assert_int_equal(wr_relay_bytes_read(&f->relay, 1), 8);
    assert_int_equal(wr_relay_bytes_written(&f->relay, 0), 8);
    assert_int_equal(f->read_count[0], 8);
    assert_int_equal(f->written_count[0], 8);
    assert_int_equal(f->n_ends, 0);
}

static void issue_14_relay_pending_first(void **state)
{
    struct fx *f = *state;
    start(f, 0, "early", 5);
    assert_int_equal(write(f->a_peer, "-late", 5), 5);
    char out[10];
    read_exactly(f, f->b_peer, out, 10);
    assert_memory_equal(out, "early-late", 10);
    /* Pending bytes count as read, but the owner counted them already. */
    assert_int_equal(wr_relay_bytes_read(&f->relay, 0), 10);
    assert_int_equal(f->read_count[0], 5);
}

/* Fills a_peer -> relay -> b while b_peer reads nothing. */
static size_t fill_up(struct fx *f, const char *data, size_t size)
{
    size_t sent = 0;
    for (int i = 0; i < SPINS && sent < size; i++) {
        ssize_t k = write(f->a_peer, data + sent, size - sent);
        if (k > 0)
            sent += (size_t)k;
        spin(f, 1);
    }
    return sent;
}

static void issue_14_relay_backpressure(void **state)
{
    struct fx *f = *state;
    start(f, 0, NULL, 0);
    size_t size = 8 << 20; /* far beyond what two socket pairs and a buffer hold */
    char *data = malloc(size), *got = malloc(size);
    for (size_t i = 0; i < size; i++)
        data[i] = (char)(i * 31 + (i >> 13));
    size_t sent = fill_up(f, data, size);
    assert_true(sent < size); /* the writer was stopped */
    /* The relay stopped reading: it holds at most one buffer. */
    assert_false(f->relay.is_read_on[0]);
    assert_true(f->relay.is_write_on[1]);
    uint64_t held = wr_relay_bytes_read(&f->relay, 0) - wr_relay_bytes_written(&f->relay, 1);
    assert_true(held > 0 && held <= BUF);
    /* The reader comes back: everything arrives, in order. */
    size_t n = 0;
    for (int i = 0; i < SPINS * 50 && n < size; i++) {
        ssize_t k = write(f->a_peer, data + sent, size - sent);
        if (k > 0)
            sent += (size_t)k;
        spin(f, 1);
        k = read(f->b_peer, got + n, size - n);
        if (k > 0)
            n += (size_t)k;
    }
    assert_int_equal(n, size);
    assert_memory_equal(got, data, size);
    assert_int_equal(f->n_ends, 0);
    free(data);
    free(got);
}

static void issue_14_relay_half_close(void **state)
{
    struct fx *f = *state;
    start(f, 0, NULL, 0);
    assert_int_equal(write(f->a_peer, "last", 4), 4);
    assert_int_equal(shutdown(f->a_peer, SHUT_WR), 0);
    char out[16];
    read_exactly(f, f->b_peer, out, 4);
    assert_true(sees_eof(f, f->b_peer)); /* the end passed on, after the bytes */
    /* The other way still works. */
    assert_int_equal(write(f->b_peer, "reply", 5), 5);
    read_exactly(f, f->a_peer, out, 5);
    assert_memory_equal(out, "reply", 5);
    assert_int_equal(f->n_ends, 0);
    assert_int_equal(shutdown(f->b_peer, SHUT_WR), 0);
    assert_true(sees_eof(f, f->a_peer));
    assert_int_equal(f->n_ends, 1);
    assert_int_equal(f->why, WR_RELAY_DONE);
}

static void issue_14_relay_reset_destination(void **state)
{
    struct fx *f = *state;
    start(f, 0, NULL, 0);
    close(f->b_peer);
    f->b_peer = -1;
    for (int i = 0; i < SPINS && f->n_ends == 0; i++) {
        ssize_t k = write(f->a_peer, "x", 1); /* a's read side is still open */
        (void)k;
        spin(f, 1);
    }
    assert_int_equal(f->n_ends, 1);
    assert_int_equal(f->why, WR_RELAY_ERROR);
}

static void issue_14_relay_idle_timeout(void **state)
{
    struct fx *f = *state;
    start(f, 1000, NULL, 0);
    fake_us += 900 * 1000;
    wr_timer_wheel_run(&f->wheel, wr_clock_now_ms());
    assert_int_equal(f->n_ends, 0);
    /* A byte read moves the deadline: 1000 ms from now. */
    char out[1];
    assert_int_equal(write(f->a_peer, "k", 1), 1);
    read_exactly(f, f->b_peer, out, 1);
    fake_us += 900 * 1000;
    wr_timer_wheel_run(&f->wheel, wr_clock_now_ms());
    assert_int_equal(f->n_ends, 0);
    fake_us += 101 * 1000;
    wr_timer_wheel_run(&f->wheel, wr_clock_now_ms());
    assert_int_equal(f->n_ends, 1);
    assert_int_equal(f->why, WR_RELAY_IDLE);
    assert_int_equal(wr_timer_wheel_count(&f->wheel), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(issue_14_relay_both_directions, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_14_relay_pending_first, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_14_relay_backpressure, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_14_relay_half_close, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_14_relay_reset_destination, setup, teardown),
        cmocka_unit_test_setup_teardown(issue_14_relay_idle_timeout, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
