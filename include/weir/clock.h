/*
 * clock: the one monotonic clock of weir, and the seam that lets tests
 * drive time.
 *
 * wr_clock_now_ms() is what timeouts, timers and ages read: millisecond
 * CLOCK_MONOTONIC_COARSE, a few ns through the vDSO, advancing once per
 * kernel tick (1 to 10 ms). wr_clock_now_us() is for durations reported to
 * people (access log request times, latency histograms): CLOCK_MONOTONIC,
 * microseconds. Both are on the same time base, but the coarse clock lags
 * the fine one by up to a kernel tick, so a computation takes both ends of
 * an interval from the same function.
 *
 * It is not wall-clock time (Date headers, log stamps use time()/realtime)
 * and not a timer: timer.h fires callbacks, this only reads the time.
 *
 * A test installs a fake source with wr_clock_set_source(); both functions
 * then derive from it. The source is process-wide: set it on the main thread
 * before any worker starts, or in a test. Setting it is free of data races
 * (an atomic pointer: TSan-clean even while other threads read the clock),
 * but a clock that changes source under running timers jumps, so the daemon
 * never does it. Layer 0: no libevent, no OpenSSL, callable from any thread.
 */
#ifndef WEIR_CLOCK_H
#define WEIR_CLOCK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * A fake time source: returns monotonic microseconds (never decreasing,
 * any origin). Called from whichever thread reads the clock, so it must be
 * thread-safe if threads run (e.g. an atomic variable the test advances).
 */
typedef uint64_t (*wr_clock_source_fn)(void);

/* The installed fake source, or NULL: read only by the two functions
 * below, written only by wr_clock_set_source. */
extern _Atomic(wr_clock_source_fn) wr_clock_source;

/*
 * Monotonic milliseconds (CLOCK_MONOTONIC_COARSE: origin unspecified, at
 * boot on Linux), or the fake source's microseconds / 1000. Never fails.
 * Any thread. Inline: request paths read the clock several times per
 * request, and a call per read cost more than the vDSO read itself
 * (measured with callgrind, issue 14: about 15 instructions a read).
 */
static inline uint64_t wr_clock_now_ms(void)
{
    wr_clock_source_fn fn = atomic_load_explicit(&wr_clock_source, memory_order_acquire);
    if (__builtin_expect(fn != NULL, 0))
        return fn() / 1000;
    struct timespec ts;
    /* Cannot fail for a clock id the kernel has had since 2.6.32. */
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Monotonic microseconds (CLOCK_MONOTONIC), or the fake source's value.
 * Never fails. Any thread. Inline, as above.
 */
static inline uint64_t wr_clock_now_us(void)
{
    wr_clock_source_fn fn = atomic_load_explicit(&wr_clock_source, memory_order_acquire);
    if (__builtin_expect(fn != NULL, 0))
        return fn();
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/*
 * Installs fn as the time source of both functions above; NULL restores
 * the system clocks. Main thread before workers start, or tests (see the
 * header comment); the previous source may still be running on another
 * thread when this returns.
 */
void wr_clock_set_source(wr_clock_source_fn fn);

#endif
