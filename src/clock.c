/*
 * clock: monotonic time in ms and us, with an injectable source (clock.h).
 *
 * Not a cache: every call reads the clock (the vDSO makes that a few ns),
 * so there is no per-thread state to keep fresh. The one piece of state is
 * the fake source pointer; it is atomic so that a test swapping it while
 * threads read the clock is not a data race. An acquire load is a plain
 * load on x86 (ldar on arm64), so the production path pays one load and
 * one predictable branch. The reads themselves are inline in clock.h.
 */
#include "weir/clock.h"

#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

_Atomic(wr_clock_source_fn) wr_clock_source;

void wr_clock_set_source(wr_clock_source_fn fn)
{
    atomic_store_explicit(&wr_clock_source, fn, memory_order_release);
}
