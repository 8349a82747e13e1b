/*
 * Unit tests for clock: the system clocks are monotonic and agree with each
 * other; a fake source drives both functions and NULL restores the system;
 * swapping the source while other threads read the clock is race-free
 * (this program runs under TSan in `make tsan`).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "weir/clock.h"

static _Atomic uint64_t fake_us;

static uint64_t fake_source(void)
{
    return atomic_load_explicit(&fake_us, memory_order_relaxed);
}

static void issue_14_clock_system_is_monotonic(void **state)
{
    (void)state;
    uint64_t ms = wr_clock_now_ms(), us = wr_clock_now_us();
    /* The coarse clock is the fine one as of the last kernel tick: read
       first, it is never ahead. */
    assert_true(ms <= us / 1000);
    for (int i = 0; i < 100000; i++) {
        uint64_t ms2 = wr_clock_now_ms(), us2 = wr_clock_now_us();
        assert_true(ms2 >= ms);
        assert_true(us2 >= us);
        assert_true(ms2 <= us2 / 1000);
        ms = ms2;
        us = us2;
    }
}

static void issue_14_clock_fake_source_drives_both(void **state)
{
    (void)state;
    uint64_t real_ms = wr_clock_now_ms();
    atomic_store(&fake_us, 5);
    wr_clock_set_source(fake_source);
    assert_int_equal(wr_clock_now_us(), 5);
    assert_int_equal(wr_clock_now_ms(), 0);
    atomic_store(&fake_us, 31536000000ull * 1000 + 999); /* 365 days and 999 us */
    assert_int_equal(wr_clock_now_ms(), 31536000000ull);
    assert_int_equal(wr_clock_now_us(), 31536000000999ull);
    wr_clock_set_source(NULL);
    /* Back on the system clock: not the fake 365 d, not before the start. */
    uint64_t ms = wr_clock_now_ms();
    assert_true(ms >= real_ms);
    assert_true(wr_clock_now_us() / 1000 >= ms);
}

struct reader {
    _Atomic bool *stop;
    uint64_t n_reads;
};

static void *read_clock(void *arg)
{
    struct reader *r = arg;
    while (!atomic_load_explicit(r->stop, memory_order_relaxed)) {
        r->n_reads += wr_clock_now_ms() != UINT64_MAX;
        r->n_reads += wr_clock_now_us() != UINT64_MAX;
    }
    return NULL;
}

static void issue_14_clock_set_source_is_race_free(void **state)
{
    (void)state;
    _Atomic bool stop = false;
    struct reader r[2] = {{.stop = &stop}, {.stop = &stop}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, read_clock, &r[i]), 0);
    for (int i = 0; i < 2000; i++) {
        atomic_store(&fake_us, (uint64_t)i * 1000);
        wr_clock_set_source(i % 2 ? fake_source : NULL);
    }
    wr_clock_set_source(NULL);
    atomic_store(&stop, true);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issue_14_clock_system_is_monotonic),
        cmocka_unit_test(issue_14_clock_fake_source_drives_both),
        cmocka_unit_test(issue_14_clock_set_source_is_race_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
