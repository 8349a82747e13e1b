/*
 * The timer wheel (weir/timer.h): what arming costs a connection, and what
 * a worker's tick costs when 10,000 connections sit idle.
 *
 *   arm+disarm       arm a timer 1..75 s ahead, then disarm it (10,000
 *                    timers armed in the wheel meanwhile)
 *   re-arm           move an armed timer to another deadline 1..75 s ahead
 *   lazy re-arm      wr_timer_arm_lazy with a later deadline: what a
 *                    connection pays per event under the lazy pattern
 *   run, none due    wr_timer_wheel_run every 100 ms (a worker's tick) with
 *                    10,000 timers armed 1 to 2 hours ahead
 *   run, keep-alive  the same with 10,000 timers 60..75 s ahead, over the
 *                    60 s before the first is due: cascades included
 *   run, all fire    the keep-alive timers run to the end: ns per timer
 *                    fired (its cascades and the runs included)
 *   walk             for comparison: today's wr_conns_tick, a linked walk
 *                    over 10,000 heap structs the size of a struct wr_conn
 *                    with one deadline compare each
 *
 *   clock            wr_clock_now_ms / wr_clock_now_us (clock.h) beside a
 *                    bare clock_gettime of the same clock: what the
 *                    injectable source costs
 *
 * Each figure is the median of 9 repetitions. Fake time: the wheel takes
 * now_ms as a number, so the bench runs hours of ticks in milliseconds.
 * Built by `cmake --build build/release --target micro_benches`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "weir/clock.h"
#include "weir/timer.h"

#define N_TIMERS 10000
#define N_REPEAT 9
#define TICK_MS 100
#define START_MS 123456789ull

struct owner {
    struct wr_timer timer;
    uint64_t n_fired;
};

/* The fields wr_conns_tick reads, spread over a struct wr_conn's size. */
struct walked {
    char event[128];
    struct walked *next;
    void *proxy;
    uint64_t deadline_ms;
    int state;
    void *io;
    char rest[160];
};

static struct owner owners[N_TIMERS];
static uint64_t deadlines[N_TIMERS];
static struct wr_timer_wheel wheel;
static volatile uint64_t sink;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v)
{
    qsort(v, N_REPEAT, sizeof(*v), cmp_double);
    return v[N_REPEAT / 2];
}

static void on_fire(struct wr_timer_wheel *w, struct wr_timer *t, uint64_t now_ms)
{
    (void)w;
    (void)now_ms;
    WR_TIMER_OWNER(t, struct owner, timer)->n_fired++;
}

static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A fresh wheel at START_MS with every owner armed lo..hi ms ahead. */
static void fill(uint64_t lo_ms, uint64_t hi_ms)
{
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    wr_timer_wheel_init(&wheel, START_MS);
    for (int i = 0; i < N_TIMERS; i++) {
        wr_timer_init(&owners[i].timer, on_fire);
        deadlines[i] = START_MS + lo_ms + next_random(&seed) % (hi_ms - lo_ms);
        wr_timer_arm(&wheel, &owners[i].timer, deadlines[i]);
    }
}

/* ns per arm+disarm, per re-arm and per lazy re-arm, ROUNDS each. */
#define ROUNDS 2000000
static void bench_arming(double *arm_disarm, double *rearm, double *lazy)
{
    fill(1000, 75000);
    struct wr_timer t;
    wr_timer_init(&t, on_fire);
    double t0 = now_ns();
    for (long i = 0; i < ROUNDS; i++) {
        wr_timer_arm(&wheel, &t, deadlines[i % N_TIMERS]);
        wr_timer_disarm(&wheel, &t);
    }
    double t1 = now_ns();
    for (long i = 0; i < ROUNDS; i++)
        wr_timer_arm(&wheel, &owners[i % N_TIMERS].timer, deadlines[(i * 7 + 1) % N_TIMERS]);
    double t2 = now_ns();
    for (long i = 0; i < ROUNDS; i++) {
        struct wr_timer *x = &owners[i % N_TIMERS].timer;
        wr_timer_arm_lazy(&wheel, x, wr_timer_deadline_ms(x) + 1 + (uint64_t)(i & 7));
    }
    double t3 = now_ns();
    *arm_disarm = (t1 - t0) / ROUNDS;
    *rearm = (t2 - t1) / ROUNDS;
    *lazy = (t3 - t2) / ROUNDS;
    wr_timer_wheel_fini(&wheel);
}

/* ns per run, one run per TICK_MS over span_ms, timers lo..hi ms ahead. */
static double bench_run(uint64_t lo_ms, uint64_t hi_ms, uint64_t span_ms, uint64_t *n_cascaded)
{
    fill(lo_ms, hi_ms);
    uint64_t n_runs = 0;
    size_t n_fired = 0;
    double t0 = now_ns();
    for (uint64_t now = START_MS; now < START_MS + span_ms; now += TICK_MS, n_runs++)
        n_fired += wr_timer_wheel_run(&wheel, now);
    double t1 = now_ns();
    if (n_fired != 0)
        fprintf(stderr, "micro_timer: %zu timers fired, expected none\n", n_fired);
    *n_cascaded = wheel.stats.n_cascaded;
    wr_timer_wheel_fini(&wheel);
    return (t1 - t0) / (double)n_runs;
}

/* ns per fired timer, running every TICK_MS until all of lo..hi fired. */
static double bench_fire_all(uint64_t lo_ms, uint64_t hi_ms)
{
    fill(lo_ms, hi_ms);
    size_t n_fired = 0;
    double t0 = now_ns();
    for (uint64_t now = START_MS; wr_timer_wheel_count(&wheel) > 0; now += TICK_MS)
        n_fired += wr_timer_wheel_run(&wheel, now);
    double t1 = now_ns();
    wr_timer_wheel_fini(&wheel);
    return (t1 - t0) / (double)n_fired;
}

/* ns per walk of N_TIMERS heap structs, as wr_conns_tick walks conns. */
static double bench_walk(void)
{
    struct walked *head = NULL;
    for (int i = 0; i < N_TIMERS; i++) {
        struct walked *c = calloc(1, sizeof(*c));
        if (!c)
            exit(1);
        c->deadline_ms = START_MS + 60000 + (uint64_t)i;
        c->next = head;
        head = c;
    }
    const int n_walks = 2000;
    double t0 = now_ns();
    for (int k = 0; k < n_walks; k++) {
        uint64_t now = START_MS + (uint64_t)k * TICK_MS / 100, n_idle = 0;
        for (struct walked *c = head; c; c = c->next) {
            if (c->proxy)
                sink++;
            if (c->deadline_ms != 0 && now >= c->deadline_ms)
                sink++;
            else
                n_idle += c->state == 0 && !c->io;
        }
        sink += n_idle;
    }
    double t1 = now_ns();
    while (head) {
        struct walked *next = head->next;
        free(head);
        head = next;
    }
    return (t1 - t0) / n_walks;
}

/* ns per call of each: wr_clock_now_ms, COARSE direct, wr_clock_now_us, MONOTONIC direct. */
#define CLOCK_ROUNDS 5000000
static void bench_clock(double out[4])
{
    struct timespec ts;
    uint64_t acc = 0;
    double t0 = now_ns();
    for (long i = 0; i < CLOCK_ROUNDS; i++)
        acc += wr_clock_now_ms();
    double t1 = now_ns();
    for (long i = 0; i < CLOCK_ROUNDS; i++) {
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
        acc += (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    }
    double t2 = now_ns();
    for (long i = 0; i < CLOCK_ROUNDS; i++)
        acc += wr_clock_now_us();
    double t3 = now_ns();
    for (long i = 0; i < CLOCK_ROUNDS; i++) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        acc += (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
    }
    double t4 = now_ns();
    sink += acc;
    out[0] = (t1 - t0) / CLOCK_ROUNDS;
    out[1] = (t2 - t1) / CLOCK_ROUNDS;
    out[2] = (t3 - t2) / CLOCK_ROUNDS;
    out[3] = (t4 - t3) / CLOCK_ROUNDS;
}

int main(void)
{
    double arm_disarm[N_REPEAT], rearm[N_REPEAT], lazy[N_REPEAT];
    double idle[N_REPEAT], keepalive[N_REPEAT], fire_all[N_REPEAT], walk[N_REPEAT];
    double clk[4][N_REPEAT];
    uint64_t n_cascaded_idle = 0, n_cascaded_keepalive = 0;
    for (int r = 0; r < N_REPEAT; r++) {
        double c[4];
        bench_clock(c);
        for (int k = 0; k < 4; k++)
            clk[k][r] = c[k];
        bench_arming(&arm_disarm[r], &rearm[r], &lazy[r]);
        idle[r] = bench_run(3600000, 7200000, 1800000, &n_cascaded_idle);
        keepalive[r] = bench_run(60000, 75000, 60000, &n_cascaded_keepalive);
        fire_all[r] = bench_fire_all(60000, 75000);
        walk[r] = bench_walk();
    }
    printf("sizeof(struct wr_timer) %zu B, sizeof(struct wr_timer_wheel) %zu B\n",
           sizeof(struct wr_timer), sizeof(struct wr_timer_wheel));
    printf("arm+disarm:  %6.1f ns\n", median(arm_disarm));
    printf("re-arm:      %6.1f ns\n", median(rearm));
    printf("lazy re-arm: %6.1f ns (deadline moved later: one compare)\n", median(lazy));
    printf("run every %d ms, %d timers 1-2 h ahead, none due: %6.1f ns per run "
           "(%llu cascaded in 30 min)\n",
           TICK_MS, N_TIMERS, median(idle), (unsigned long long)n_cascaded_idle);
    printf("run every %d ms, %d timers 60-75 s ahead, over the 60 s before the first is due: "
           "%6.1f ns per run (%llu cascaded)\n",
           TICK_MS, N_TIMERS, median(keepalive), (unsigned long long)n_cascaded_keepalive);
    printf("run every %d ms until all %d fired: %6.1f ns per timer fired\n", TICK_MS, N_TIMERS,
           median(fire_all));
    printf("walk of %d conn-sized structs (today's wr_conns_tick loop): %8.1f ns per tick\n",
           N_TIMERS, median(walk));
    printf("wr_clock_now_ms: %.1f ns (clock_gettime COARSE: %.1f ns), "
           "wr_clock_now_us: %.1f ns (clock_gettime MONOTONIC: %.1f ns)\n",
           median(clk[0]), median(clk[1]), median(clk[2]), median(clk[3]));
    return 0;
}
