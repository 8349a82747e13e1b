/*
 * The cost of one counter increment as a worker does it: a relaxed load
 * and store (single writer, what metrics.h does) against a relaxed
 * atomic_fetch_add (a locked instruction). One thread, hot cache line: the
 * difference is the lock prefix itself. Prints ns per increment.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "weir/metrics.h"

#define ROUNDS 200000000L

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static _Atomic uint64_t counter;

int main(void)
{
    double t0 = seconds();
    for (long i = 0; i < ROUNDS; i++)
        wr_metrics_add(&counter, 1);
    double t1 = seconds();
    for (long i = 0; i < ROUNDS; i++)
        atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed);
    double t2 = seconds();
    printf("relaxed load+store: %.2f ns, atomic_fetch_add relaxed: %.2f ns (total %llu)\n",
           (t1 - t0) * 1e9 / ROUNDS, (t2 - t1) * 1e9 / ROUNDS,
           (unsigned long long)atomic_load(&counter));
    return 0;
}
