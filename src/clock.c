/*
 * clock: monotonic time in ms and us, with an injectable source (clock.h).
 *
 * Not a cache: every call reads the clock (the vDSO makes that a few ns),
 * so there is no per-thread state to keep fresh. The one piece of state is
 * the fake source pointer; it is atomic so that a test swapping it while
 * threads read the clock is not a data race. An acquire load is a plain
 * load on x86 (ldar on arm64), so the production path pays one load and
 * one predictable branch.
 */
#include "weir/clock.h"

#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

static _Atomic(wr_clock_source_fn) fake_source;

uint64_t wr_clock_now_ms(void)
{
    wr_clock_source_fn fn = atomic_load_explicit(&fake_source, memory_order_acquire);
    if (fn)
        return fn() / 1000;
    struct timespec ts;
    /* Cannot fail for a clock id the kernel has had since 2.6.32. */
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t wr_clock_now_us(void)
{
    wr_clock_source_fn fn = atomic_load_explicit(&fake_source, memory_order_acquire);
    if (fn)
        return fn();
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void wr_clock_set_source(wr_clock_source_fn fn)
{
    atomic_store_explicit(&fake_source, fn, memory_order_release);
}
