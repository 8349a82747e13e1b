/*
 * Unit tests for the timer wheel, on fake time (deadlines are plain
 * numbers; the wheel never reads a clock). Each test checks the two
 * promises of timer.h on every firing: never before the deadline, and in
 * the first run that reaches it. Owners are heap objects where a callback
 * frees them, so ASan sees a use after free; costs are checked through
 * the wheel's counters (steps, cascades), never through time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "weir/timer.h"
#include "weir/units.h"

#define START_MS 1000000007ull /* not a multiple of any level's period */

/* What every test owner records; the checks run in on_fire. */
struct probe {
    uint64_t prev_now_ms;  /* now_ms of the run before the current one */
    uint64_t last_fire_ms; /* deadline of the last timer fired */
    size_t n_fired;
    bool is_ordered;       /* every firing so far in deadline order */
};

struct owner {
    struct wr_timer timer;
    struct probe *probe;
    uint64_t deadline_ms; /* the deadline it was armed for */
    uint64_t fired_at_ms; /* now_ms of the run that fired it; 0 = not yet */
    int n_fires;
    int id;
};

/* Checks a firing against the promises: due, and not due at the run before. */
static void check_firing(struct owner *o, uint64_t now_ms)
{
    struct probe *p = o->probe;
    assert_false(wr_timer_is_armed(&o->timer));
    assert_int_equal(wr_timer_deadline_ms(&o->timer), UINT64_MAX);
    assert_true(o->deadline_ms <= now_ms);      /* never early */
    assert_true(o->deadline_ms > p->prev_now_ms); /* not late: the previous run had it not due */
    p->is_ordered = p->is_ordered && o->deadline_ms >= p->last_fire_ms;
    p->last_fire_ms = o->deadline_ms;
    p->n_fired++;
    o->fired_at_ms = now_ms;
    o->n_fires++;
}

static void on_fire(struct wr_timer_wheel *w, struct wr_timer *t, uint64_t now_ms)
{
    (void)w;
    check_firing(WR_TIMER_OWNER(t, struct owner, timer), now_ms);
}

static void arm(struct wr_timer_wheel *w, struct owner *o, uint64_t deadline_ms)
{
    o->deadline_ms = deadline_ms;
    wr_timer_arm(w, &o->timer, deadline_ms);
    assert_true(wr_timer_is_armed(&o->timer));
    assert_int_equal(wr_timer_deadline_ms(&o->timer), deadline_ms);
}

static size_t run(struct wr_timer_wheel *w, struct probe *p, uint64_t now_ms)
{
    size_t n = wr_timer_wheel_run(w, now_ms);
    p->prev_now_ms = now_ms;
    return n;
}

/* Runs at every wr_timer_wheel_next_ms() until nothing is armed: every
   timer must fire exactly at its deadline. Returns the number of runs. */
static size_t run_to_end(struct wr_timer_wheel *w, struct probe *p)
{
    size_t n_runs = 0;
    while (wr_timer_wheel_count(w) > 0) {
        uint64_t next = wr_timer_wheel_next_ms(w);
        assert_true(next != UINT64_MAX);
        assert_true(next > p->prev_now_ms);
        run(w, p, next);
        n_runs++;
    }
    return n_runs;
}

static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static struct owner *new_owners(size_t n, struct probe *p, wr_timer_fn cb)
{
    struct owner *o = calloc(n, sizeof(*o));
    assert_non_null(o);
    for (size_t i = 0; i < n; i++) {
        wr_timer_init(&o[i].timer, cb);
        o[i].probe = p;
        o[i].id = (int)i;
    }
    return o;
}

static void setup_wheel(struct wr_timer_wheel *w, struct probe *p)
{
    wr_timer_wheel_init(w, START_MS);
    *p = (struct probe){.prev_now_ms = START_MS - 1, .is_ordered = true};
}

/* ---- basics ---------------------------------------------------------- */

static void issue_14_timer_fires_at_deadline_not_before(void **state)
{
    (void)state;
    struct wr_timer_wheel w;
    struct probe p;
    setup_wheel(&w, &p);
    struct owner *o = new_owners(3, &p, on_fire);
    p.prev_now_ms = START_MS - 6; /* o[2] is due from START_MS - 5 on */
    assert_int_equal(wr_timer_wheel_next_ms(&w), UINT64_MAX);
    arm(&w, &o[0], START_MS + 10);
    arm(&w, &o[2], START_MS - 5); /* overdue: the first run fires it */
    arm(&w, &o[1], START_MS);     /* due at the wheel's start */
    assert_int_equal(wr_timer_wheel_count(&w), 3);
    assert_int_equal(wr_timer_wheel_next_ms(&w), START_MS);
    assert_int_equal(run(&w, &p, START_MS), 2);
    assert_int_equal(wr_timer_wheel_next_ms(&w), START_MS + 10);
    assert_int_equal(run(&w, &p, START_MS + 9), 0);
    assert_int_equal(run(&w, &p, START_MS + 9), 0);
    assert_int_equal(run(&w, &p, START_MS + 10), 1);
    assert_int_equal(o[0].fired_at_ms, START_MS + 10);
    assert_int_equal(wr_timer_wheel_count(&w), 0);
    assert_int_equal(wr_timer_wheel_next_ms(&w), UINT64_MAX);
    /* Armed already due (not after the last run's now): the next run with
       a later now, one step late at most. A run with the same now or an
       earlier one (clock not advanced) fires nothing. */
    arm(&w, &o[1], START_MS + 3);
    p.prev_now_ms = START_MS + 2; /* for check_firing: it is due from +3 on */
    p.last_fire_ms = 0;
    assert_int_equal(wr_timer_wheel_run(&w, START_MS + 10), 0);
    assert_int_equal(wr_timer_wheel_run(&w, START_MS + 4), 0);
    assert_int_equal(wr_timer_wheel_run(&w, START_MS + 11), 1);
    assert_int_equal(o[1].fired_at_ms, START_MS + 11);
    assert_true(p.is_ordered);
    wr_timer_wheel_fini(&w);
    free(o);
}

static void issue_14_timer_rearm_and_disarm(void **state)
{
    (void)state;
    struct wr_timer_wheel w;
    struct probe p;
    setup_wheel(&w, &p);
    struct owner *o = new_owners(2, &p, on_fire);
    wr_timer_disarm(&w, &o[0].timer); /* unarmed: a no-op */
    arm(&w, &o[0], START_MS + 100000);
    arm(&w, &o[0], START_MS + 50);     /* moves earlier, across levels */
    arm(&w, &o[1], START_MS + 60);
    arm(&w, &o[1], START_MS + 7000000); /* moves later */
    assert_int_equal(wr_timer_wheel_count(&w), 2);
    assert_int_equal(run(&w, &p, START_MS + 49), 0);
    assert_int_equal(run(&w, &p, START_MS + 50), 1);
    assert_int_equal(run(&w, &p, START_MS + 100000), 0);
    wr_timer_disarm(&w, &o[1].timer);
    assert_false(wr_timer_is_armed(&o[1].timer));
    assert_int_equal(wr_timer_deadline_ms(&o[1].timer), UINT64_MAX);
    wr_timer_disarm(&w, &o[1].timer);
    assert_int_equal(wr_timer_wheel_count(&w), 0);
    assert_int_equal(run(&w, &p, START_MS + 8000000), 0);
    assert_int_equal(w.stats.n_fired, 1);
    wr_timer_wheel_fini(&w);
    free(o);
}

static void issue_14_timer_same_slot_ties(void **state)
{
    (void)state;
    struct wr_timer_wheel w;
    struct probe p;
    setup_wheel(&w, &p);
    struct owner *o = new_owners(40, &p, on_fire);
    /* 10 timers armed 20 ms ahead (level 0), 10 for the same deadline armed
       earlier from far ahead (they cascade), and 20 one tick later. */
    uint64_t d = START_MS + 5000;
    for (int i = 0; i < 10; i++)
        arm(&w, &o[i], d);
    for (int i = 20; i < 40; i++)
        arm(&w, &o[i], d + 1);
    assert_int_equal(run(&w, &p, d - 20), 0);
    for (int i = 10; i < 20; i++)
        arm(&w, &o[i], d);
    assert_int_equal(run(&w, &p, d - 1), 0);
    assert_int_equal(run(&w, &p, d), 20);
    for (int i = 0; i < 40; i++)
        assert_int_equal(o[i].n_fires, i < 20);
    assert_int_equal(run(&w, &p, d + 1), 20);
    assert_true(p.is_ordered);
    wr_timer_wheel_fini(&w);
    free(o);
}

/* ---- ordering and cascading ------------------------------------------ */

/* Deadlines at and around every level boundary, from an unaligned start. */
static void issue_14_timer_cascades_across_levels_exactly(void **state)
{
    (void)state;
    struct wr_timer_wheel w;
    struct probe p;
    setup_wheel(&w, &p);
    enum { N_LEVEL_CASES = 7 * 5 };
    struct owner *o = new_owners(N_LEVEL_CASES + 4, &p, on_fire);
    int n = 0;
    for (unsigned l = 1; l <= 7; l++) { /* 2^6 .. 2^42: past the reach too */
        uint64_t edge = 1ull << (6 * l);
        const uint64_t ahead[] = {edge - 1, edge, edge + 1, edge + 63, 2 * edge - 1};
        for (size_t k = 0; k < 5; k++)
            arm(&w, &o[n++], START_MS + ahead[k]);
    }
    arm(&w, &o[n++], START_MS + WR_UNITS_DURATION_MAX_MS);
    arm(&w, &o[n++], START_MS + WR_UNITS_DURATION_MAX_MS - 1);
    arm(&w, &o[n++], START_MS + WR_UNITS_DURATION_MAX_MS + 1);
    arm(&w, &o[n++], START_MS + 1);
    size_t n_runs = run_to_end(&w, &p);
    assert_int_equal(p.n_fired, (size_t)n);
    for (int i = 0; i < n; i++)
        assert_int_equal(o[i].fired_at_ms, o[i].deadline_ms);
    assert_true(p.is_ordered);
    /* next_ms is a cascade time at worst: a few runs per level per timer. */
    assert_true(n_runs <= (size_t)n * WR_TIMER_LEVELS * 2);
    wr_timer_wheel_fini(&w);
    free(o);
}

/* Random deadlines from 0 to 365 days, random run steps: every timer fires
   in the first run that reaches its deadline, all in deadline order. */
static void random_order_case(uint64_t seed, uint64_t max_ahead_ms, uint64_t max_step_ms)
{
    enum { N = 3000 };
    struct wr_timer_wheel w;
    struct probe p;
    setup_wheel(&w, &p);
    struct owner *o = new_owners(N, &p, on_fire);
    for (int i = 0; i < N; i++)
        arm(&w, &o[i], START_MS + next_random(&seed) % (max_ahead_ms + 1));
    uint64_t now = START_MS;
    while (wr_timer_wheel_count(&w) > 0) {
        run(&w, &p, now);
        now += 1 + next_random(&seed) % max_step_ms;
    }
    assert_int_equal(p.n_fired, N);
    assert_true(p.is_ordered);
    wr_timer_wheel_fini(&w);
    free(o);
}

static void issue_14_timer_fires_in_deadline_order(void **state)
{
    (void)state;
    random_order_case(0x9e3779b97f4a7c15ull, 1000, 3);             /* level 0-1, fine steps */
    random_order_case(0x2545f4914f6cdd1dull, 300000, 100);         /* a worker's tick */
    random_order_case(0x123456789abcdefull, WR_UNITS_DURATION_MAX_MS,
                      WR_UNITS_DURATION_MAX_MS / 2000);            /* 365 d, coarse steps */
}

/* ---- 365 days -------------------------------------------------------- */

static void issue_14_timer_365_days(void **state)
{
    (void)state;
    struct wr_timer_wheel w;
    struct probe p;
    setup_wheel(&w, &p);
    struct owner *o = new_owners(3, &p, on_fire);
    uint64_t d = START_MS + WR_UNITS_DURATION_MAX_MS;
    arm(&w, &o[0], d);
    arm(&w, &o[1], d + 1);
    arm(&w, &o[2], UINT64_MAX - 1); /* parked: never due here */
    /* A day at a time (a worker suspended for days, or a clock jump). */
    for (uint64_t now = START_MS; now < d; now += 86400000)
        assert_int_equal(run(&w, &p, now), 0);
    assert_int_equal(run(&w, &p, d - 1), 0);
    assert_int_equal(run(&w, &p, d), 1);
    assert_int_equal(run(&w, &p, d + 1), 1);
    assert_true(wr_timer_is_armed(&o[2].timer));
    /* Parked, it is moved once per reach of the wheel, not per run. */
    assert_true(w.stats.n_cascaded < 20);
    assert_int_equal(run(&w, &p, d + 2 * WR_UNITS_DURATION_MAX_MS), 0);
    assert_true(wr_timer_is_armed(&o[2].timer));
    wr_timer_wheel_fini(&w);
    assert_false(wr_timer_is_armed(&o[2].timer));
    free(o);
}

/* ---- callbacks that change the wheel ------------------------------------ */

struct chain {
    struct owner *others; /* the other owners of the test */
    int n_others;
    uint64_t rearm_after_ms; /* self re-arm delay; UINT64_MAX: none */
};

static struct chain the_chain;

/* Disarms every other owner with the same deadline (they wait in the
   firing list), re-arms one for later, arms another for "now", and
   re-arms itself. */
static void on_fire_meddling(struct wr_timer_wheel *w, struct wr_timer *t, uint64_t now_ms)
{
    struct owner *o = WR_TIMER_OWNER(t, struct owner, timer);
    check_firing(o, now_ms);
    for (int i = 0; i < the_chain.n_others; i++) {
        struct owner *x = &the_chain.others[i];
        if (x == o || !wr_timer_is_armed(&x->timer))
            continue;
        if (x->id == 1)
            wr_timer_disarm(w, &x->timer);
        else if (x->id == 2)
            arm(w, x, now_ms + 500);
        else if (x->id == 3 && x->n_fires == 0)
            arm(w, x, now_ms);
    }
    if (o->id == 0 && o->n_fires < 3)
        arm(w, o, now_ms + the_chain.rearm_after_ms);
}

static void issue_14_timer_arm_and_disarm_from_callbacks(void **state)
{
    (void)state;
    struct wr_timer_wheel w;
    struct probe p;
    setup_wheel(&w, &p);
    struct owner *o = new_owners(4, &p, on_fire_meddling);
    the_chain = (struct chain){.others = o, .n_others = 4, .rearm_after_ms = 100};
    uint64_t d = START_MS + 1000;
    for (int i = 0; i < 4; i++)
        arm(&w, &o[i], d);
    /* o[0] fires first (armed first, same slot): disarms o[1], moves o[2]
       to d + 500, re-arms o[3] for d (already due: fires in a later step
       of the same run), re-arms itself for d + 100. */
    p.prev_now_ms = d - 1;
    size_t n = wr_timer_wheel_run(&w, d + 50);
    p.prev_now_ms = d + 50;
    assert_int_equal(n, 2);
    assert_int_equal(o[0].n_fires, 1);
    assert_int_equal(o[1].n_fires, 0);
    assert_false(wr_timer_is_armed(&o[1].timer));
    assert_int_equal(o[3].n_fires, 1);
    assert_int_equal(wr_timer_deadline_ms(&o[2].timer), d + 50 + 500);
    assert_int_equal(wr_timer_deadline_ms(&o[0].timer), d + 50 + 100);
    assert_int_equal(run(&w, &p, d + 150), 1); /* o[0] again, moves o[2] again */
    assert_int_equal(o[0].n_fires, 2);
    assert_int_equal(wr_timer_deadline_ms(&o[2].timer), d + 150 + 500);
    run_to_end(&w, &p);
    assert_int_equal(o[0].n_fires, 3);
    assert_int_equal(o[2].n_fires, 1);
    assert_int_equal(o[2].fired_at_ms, d + 250 + 500);
    wr_timer_wheel_fini(&w);
    free(o);
}

static int n_self_fires;

static void on_fire_rearm_now(struct wr_timer_wheel *w, struct wr_timer *t, uint64_t now_ms)
{
    n_self_fires++;
    wr_timer_arm(w, t, now_ms); /* "again, right now": must not livelock */
}

static void issue_14_timer_self_rearm_for_now_is_bounded(void **state)
{
    (void)state;
    struct wr_timer_wheel w;
    wr_timer_wheel_init(&w, START_MS);
    struct wr_timer t;
    wr_timer_init(&t, on_fire_rearm_now);
    wr_timer_arm(&w, &t, START_MS + 10);
    n_self_fires = 0;
    wr_timer_wheel_run(&w, START_MS + 1000); /* fires at +10, then at +1000 */
    assert_int_equal(n_self_fires, 2);
    n_self_fires = 0;
    wr_timer_wheel_run(&w, START_MS + 1000); /* same now: nothing */
    assert_int_equal(n_self_fires, 0);
    wr_timer_wheel_run(&w, START_MS + 1001);
    assert_int_equal(n_self_fires, 1);
    assert_true(wr_timer_is_armed(&t));
    wr_timer_wheel_fini(&w);
}

static void on_fire_rearm_a_turn_later(struct wr_timer_wheel *w, struct wr_timer *t,
                                       uint64_t now_ms)
{
    n_self_fires++;
    wr_timer_arm(w, t, now_ms + WR_TIMER_SLOTS); /* lands in the slot being fired */
}

static void issue_14_timer_rearm_one_turn_later_from_callback(void **state)
{
    (void)state;
    struct wr_timer_wheel w;
    wr_timer_wheel_init(&w, START_MS);
    struct wr_timer t;
    wr_timer_init(&t, on_fire_rearm_a_turn_later);
    wr_timer_arm(&w, &t, START_MS + 10);
    n_self_fires = 0;
    assert_int_equal(wr_timer_wheel_run(&w, START_MS + 10), 1);
    assert_int_equal(wr_timer_deadline_ms(&t), START_MS + 10 + WR_TIMER_SLOTS);
    assert_int_equal(wr_timer_wheel_run(&w, START_MS + 9 + WR_TIMER_SLOTS), 0);
    assert_int_equal(wr_timer_wheel_run(&w, START_MS + 10 + WR_TIMER_SLOTS), 1);
    assert_int_equal(n_self_fires, 2);
    wr_timer_wheel_fini(&w);
}

/* ---- freeing owners from callbacks (ASan) ------------------------------ */

struct conn_like {
    int id;
    struct wr_timer idle; /* not the first member: the owner macro works */
    struct conn_like *peer; /* freed along with this one, if set */
    int *n_freed;
};

static void free_conn_like(struct wr_timer_wheel *w, struct conn_like *c)
{
    wr_timer_disarm(w, &c->idle); /* an owner disarms before freeing */
    (*c->n_freed)++;
    memset(c, 0xa5, sizeof(*c));
    free(c);
}

static void on_idle_free(struct wr_timer_wheel *w, struct wr_timer *t, uint64_t now_ms)
{
    (void)now_ms;
    struct conn_like *c = WR_TIMER_OWNER(t, struct conn_like, idle);
    if (c->peer) {
        c->peer->peer = NULL;
        free_conn_like(w, c->peer); /* may be waiting in the same firing list */
    }
    free_conn_like(w, c);
}

static void issue_14_timer_callback_frees_owner(void **state)
{
    (void)state;
    struct wr_timer_wheel w;
    wr_timer_wheel_init(&w, START_MS);
    enum { N = 64 };
    struct conn_like *c[N];
    int n_freed = 0;
    for (int i = 0; i < N; i++) {
        c[i] = calloc(1, sizeof(*c[i]));
        assert_non_null(c[i]);
        *c[i] = (struct conn_like){.id = i, .n_freed = &n_freed};
        wr_timer_init(&c[i]->idle, on_idle_free);
    }
    /* Pairs share a deadline: the first to fire frees both. */
    for (int i = 0; i < N; i += 2) {
        c[i]->peer = c[i + 1];
        c[i + 1]->peer = c[i];
        wr_timer_arm(&w, &c[i]->idle, START_MS + 100 + (uint64_t)i);
        wr_timer_arm(&w, &c[i + 1]->idle, START_MS + 100 + (uint64_t)i);
    }
    assert_int_equal(wr_timer_wheel_run(&w, START_MS + 1000), N / 2);
    assert_int_equal(n_freed, N);
    assert_int_equal(wr_timer_wheel_count(&w), 0);
    wr_timer_wheel_fini(&w);
}

/* ---- many timers, idle cost -------------------------------------------- */

static void issue_14_timer_100k_timers(void **state)
{
    (void)state;
    enum { N = 100000 };
    struct wr_timer_wheel w;
    struct probe p;
    setup_wheel(&w, &p);
    struct owner *o = new_owners(N, &p, on_fire);
    uint64_t seed = 0xdeadbeefcafef00dull;
    for (int i = 0; i < N; i++)
        arm(&w, &o[i], START_MS + 1 + next_random(&seed) % (3600 * 1000));
    for (int i = 0; i < N; i += 2) /* disarm half */
        wr_timer_disarm(&w, &o[i].timer);
    for (int i = 0; i < N; i += 4) /* re-arm a quarter, some sooner */
        arm(&w, &o[i], START_MS + 1 + next_random(&seed) % (3600 * 1000));
    assert_int_equal(wr_timer_wheel_count(&w), N / 2 + N / 4);
    uint64_t now = START_MS;
    while (wr_timer_wheel_count(&w) > 0)
        run(&w, &p, now += 100); /* a worker's tick */
    assert_int_equal(p.n_fired, N / 2 + N / 4);
    for (int i = 0; i < N; i++)
        assert_int_equal(o[i].n_fires, (i % 2 == 1 || i % 4 == 0) ? 1 : 0);
    assert_true(p.is_ordered);
    /* Each timer moved down at most once per level above 0. */
    assert_true(w.stats.n_cascaded <= (uint64_t)p.n_fired * (WR_TIMER_LEVELS - 1));
    wr_timer_wheel_fini(&w);
    free(o);
}

/* 10,000 keep-alive-like timers (60-75 s) under a 100 ms tick for 60 s:
   the walk of today's wr_conns_tick would make 6 million visits; the
   wheel must do at most two moves per timer plus one step per 64 ms. */
static void issue_14_timer_idle_timers_cost_nothing_per_tick(void **state)
{
    (void)state;
    enum { N = 10000 };
    struct wr_timer_wheel w;
    struct probe p;
    setup_wheel(&w, &p);
    struct owner *o = new_owners(N, &p, on_fire);
    for (int i = 0; i < N; i++)
        arm(&w, &o[i], START_MS + 60000 + (uint64_t)i * 3 / 2);
    for (uint64_t now = START_MS; now < START_MS + 60000; now += 100)
        assert_int_equal(run(&w, &p, now), 0);
    assert_int_equal(run(&w, &p, START_MS + 59999), 0);
    assert_true(w.stats.n_cascaded <= 2 * N);
    assert_true(w.stats.n_steps <= 60000 / 64 + 60000 / 4096 + 2);
    wr_timer_wheel_fini(&w); /* unarms them all, so `far` may take them */
    /* Far timers (an hour): not a single step or move in a minute. */
    struct wr_timer_wheel far;
    struct probe pf;
    setup_wheel(&far, &pf);
    for (int i = 0; i < N; i++)
        arm(&far, &o[i], START_MS + 3600000 + (uint64_t)i * 360);
    for (uint64_t now = START_MS; now <= START_MS + 60000; now += 100)
        assert_int_equal(run(&far, &pf, now), 0);
    assert_int_equal(far.stats.n_steps, 0);
    assert_int_equal(far.stats.n_cascaded, 0);
    wr_timer_wheel_fini(&far);
    free(o);
}

/* ---- the lazy pattern ---------------------------------------------------- */

struct lazy_owner {
    struct wr_timer timer;
    uint64_t deadline_ms; /* the real one, moved by every event */
    int n_early;          /* callbacks before the real deadline */
    uint64_t timed_out_at_ms;
};

static void on_lazy_fire(struct wr_timer_wheel *w, struct wr_timer *t, uint64_t now_ms)
{
    struct lazy_owner *l = WR_TIMER_OWNER(t, struct lazy_owner, timer);
    if (wr_timer_rearm_if_early(w, t, l->deadline_ms, now_ms)) {
        l->n_early++;
        return;
    }
    assert_true(l->deadline_ms <= now_ms);
    assert_int_equal(l->timed_out_at_ms, 0);
    l->timed_out_at_ms = now_ms;
}

static void issue_14_timer_lazy_rearm(void **state)
{
    (void)state;
    struct wr_timer_wheel w;
    wr_timer_wheel_init(&w, START_MS);
    struct lazy_owner l = {0};
    wr_timer_init(&l.timer, on_lazy_fire);
    /* An event every 10 ms for 10 s, each moving a 1 s timeout later. */
    uint64_t now = START_MS;
    for (; now < START_MS + 10000; now += 10) {
        wr_timer_wheel_run(&w, now);
        l.deadline_ms = now + 1000;
        wr_timer_arm_lazy(&w, &l.timer, l.deadline_ms);
        assert_true(wr_timer_deadline_ms(&l.timer) <= l.deadline_ms);
    }
    assert_int_equal(l.timed_out_at_ms, 0);
    assert_true(l.n_early >= 8 && l.n_early <= 11); /* about one per second */
    /* A deadline moving earlier re-arms at once. */
    l.deadline_ms = now + 5;
    wr_timer_arm_lazy(&w, &l.timer, l.deadline_ms);
    assert_int_equal(wr_timer_deadline_ms(&l.timer), now + 5);
    /* Events stop: the timeout fires in the first run past the deadline. */
    for (; l.timed_out_at_ms == 0; now += 3)
        wr_timer_wheel_run(&w, now);
    assert_true(l.timed_out_at_ms >= l.deadline_ms && l.timed_out_at_ms < l.deadline_ms + 3);
    assert_false(wr_timer_is_armed(&l.timer));
    wr_timer_wheel_fini(&w);
}

static void issue_14_timer_fini_unlinks_armed(void **state)
{
    (void)state;
    struct wr_timer_wheel *w = malloc(sizeof(*w));
    assert_non_null(w);
    wr_timer_wheel_init(w, START_MS);
    struct probe p = {.is_ordered = true};
    struct owner *o = new_owners(100, &p, on_fire);
    for (int i = 0; i < 100; i++)
        arm(w, &o[i], START_MS + (uint64_t)i * 1000);
    wr_timer_wheel_fini(w);
    free(w);
    for (int i = 0; i < 100; i++) {
        assert_false(wr_timer_is_armed(&o[i].timer));
        wr_timer_disarm(NULL, &o[i].timer); /* unarmed: never touches the wheel */
    }
    assert_int_equal(p.n_fired, 0);
    free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issue_14_timer_fires_at_deadline_not_before),
        cmocka_unit_test(issue_14_timer_rearm_and_disarm),
        cmocka_unit_test(issue_14_timer_same_slot_ties),
        cmocka_unit_test(issue_14_timer_cascades_across_levels_exactly),
        cmocka_unit_test(issue_14_timer_fires_in_deadline_order),
        cmocka_unit_test(issue_14_timer_365_days),
        cmocka_unit_test(issue_14_timer_arm_and_disarm_from_callbacks),
        cmocka_unit_test(issue_14_timer_self_rearm_for_now_is_bounded),
        cmocka_unit_test(issue_14_timer_rearm_one_turn_later_from_callback),
        cmocka_unit_test(issue_14_timer_callback_frees_owner),
        cmocka_unit_test(issue_14_timer_100k_timers),
        cmocka_unit_test(issue_14_timer_idle_timers_cost_nothing_per_tick),
        cmocka_unit_test(issue_14_timer_lazy_rearm),
        cmocka_unit_test(issue_14_timer_fini_unlinks_armed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
