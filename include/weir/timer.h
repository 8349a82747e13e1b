/*
 * timer: a worker's timeouts on a hierarchical timing wheel.
 *
 * A struct wr_timer is embedded in its owner (a connection, an upstream
 * exchange, a pooled connection): arming allocates nothing. Arm, re-arm and
 * disarm are O(1). wr_timer_wheel_run(w, now_ms) fires every timer whose
 * deadline is <= now_ms; its cost is proportional to the timers that fire
 * plus cascading (a timer moves down a level at most five times before it
 * fires), never to the timers that are merely armed: 10,000 idle connections
 * cost nothing per tick.
 *
 * Resolution is 1 ms: deadlines are absolute monotonic milliseconds
 * (clock.h's wr_clock_now_ms()). A timer never fires early: it fires in
 * the first run whose now_ms is >= its deadline, >= the wheel's start and
 * > the now_ms of every run before it was armed. So a timer armed already
 * due (deadline <= the last run's now_ms) waits for a run with a later
 * now_ms: at most one step (1 ms) late relative to the runs. How late
 * relative to real time is up to how often the owner of the wheel runs it
 * (the worker's tick, or wr_timer_wheel_next_ms()). Timers with equal
 * deadlines fire in the same run, in an unspecified order.
 *
 * Any deadline is accepted: up to 2^36 ms (795 days, over twice the config's
 * 365-day cap) ahead a timer sits in its slot, further ones are parked and
 * placed again every 795 days. The wheel computes deadline - now, never
 * now + duration, so nothing wraps for times below 2^63 ms; the owner's
 * now + timeout cannot either with timeouts capped at 365 days (units.h).
 *
 * Reentrancy: a callback may arm, re-arm or disarm any timer of its wheel,
 * its own included, and may free the owner of the timer that fired (the
 * wheel unlinks a timer before calling it and never touches it again). A
 * timer armed from a callback for a deadline <= now_ms may fire in the same
 * run, but only at a later step than the one being fired, so a callback
 * that keeps re-arming its timer for now_ms fires at most twice per run
 * (never a livelock). Not allowed from a callback: wr_timer_wheel_run()
 * and wr_timer_wheel_fini() (asserted).
 *
 * Ownership: the wheel never owns a timer, it links it. An owner disarms
 * its timer before freeing it (disarming an unarmed timer is a no-op, so
 * the free path just calls it). Not thread-safe: a wheel and its timers
 * belong to one thread (one per worker). Layer 2: no libevent, no OpenSSL;
 * running the wheel from the event loop is the owner's business.
 *
 * The lazy pattern, for an owner whose deadline moves on every event (a
 * connection's send or body timeout runs from its last I/O):
 *
 *     on every event:   c->deadline_ms = now + timeout;
 *                       wr_timer_arm_lazy(w, &c->timer, c->deadline_ms);
 *     in the callback:  if (wr_timer_rearm_if_early(w, t, c->deadline_ms, now))
 *                           return;   (fired before the real deadline)
 *                       ... the timeout happened ...
 *
 * The owner keeps its real deadline; the timer is moved only when the
 * deadline comes earlier than the armed one or the timer is unarmed (one
 * compare on the hot path), and when it fires early it is re-armed at the
 * real deadline. A deadline that moves later by every event costs one
 * re-arm per timeout period instead of one per event. An owner with no
 * deadline any more disarms, or leaves the timer armed and returns from
 * the callback without re-arming (testing for "no deadline" before
 * wr_timer_rearm_if_early, which would take a 0 for long past).
 */
#ifndef WEIR_TIMER_H
#define WEIR_TIMER_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WR_TIMER_BITS 6                      /* slots per level: 64 */
#define WR_TIMER_SLOTS (1u << WR_TIMER_BITS)
#define WR_TIMER_LEVELS 6                    /* 6 x 6 bits: 2^36 ms, 795 days */

/* The owner of a timer embedded as member `member` of a `type`. */
#define WR_TIMER_OWNER(t, type, member) ((type *)(void *)((char *)(t) - offsetof(type, member)))

struct wr_timer;
struct wr_timer_wheel;

/*
 * Called by wr_timer_wheel_run() for a timer that is due. t is unarmed when
 * called; now_ms is the run's. See the header comment for what it may do.
 */
typedef void (*wr_timer_fn)(struct wr_timer_wheel *w, struct wr_timer *t, uint64_t now_ms);

/* A doubly linked list node; the wheel's slots are sentinels of these. */
struct wr_timer_link {
    struct wr_timer_link *next, *prev;
};

/* Members are private to timer.c; read them through the functions below. */
struct wr_timer {
    struct wr_timer_link link; /* in a slot; next == NULL while unarmed */
    uint64_t deadline_ms;      /* armed: the deadline; unarmed: UINT64_MAX */
    wr_timer_fn cb;
};

/* Counters for tests and benchmarks; they only grow. */
struct wr_timer_wheel_stats {
    uint64_t n_fired;    /* callbacks called */
    uint64_t n_cascaded; /* timers moved down a level */
    uint64_t n_steps;    /* ticks at which a run found a slot to process */
};

/* Members are private to timer.c. About 6 KiB: embed it in the worker. */
struct wr_timer_wheel {
    uint64_t cur_ms;                      /* every tick < cur_ms is processed */
    uint64_t occupied[WR_TIMER_LEVELS];   /* bit i: slot i of the level is non-empty */
    size_t n_armed;
    bool is_running;                      /* inside wr_timer_wheel_run */
    struct wr_timer_wheel_stats stats;
    /* Level l's slot i at [l * 64 + i]; the last one holds the timers of
       the slot being fired, so a callback can disarm them. */
    struct wr_timer_link slots[WR_TIMER_LEVELS * WR_TIMER_SLOTS + 1];
};

/*
 * Makes t an unarmed timer that calls cb (not NULL) when it fires. Call it
 * once before any other use (a zeroed struct is not an unarmed timer), and
 * again only while t is unarmed. Never fails.
 */
void wr_timer_init(struct wr_timer *t, wr_timer_fn cb);

/* Whether t is linked in a wheel. t initialised. */
static inline bool wr_timer_is_armed(const struct wr_timer *t)
{
    return t->link.next != NULL;
}

/* t's deadline while armed, UINT64_MAX while unarmed. */
static inline uint64_t wr_timer_deadline_ms(const struct wr_timer *t)
{
    return t->deadline_ms;
}

/*
 * Sets up an empty wheel whose time starts at now_ms: a timer armed for
 * now_ms fires in a run with that now_ms. Never fails. w's thread only,
 * from now on.
 */
void wr_timer_wheel_init(struct wr_timer_wheel *w, uint64_t now_ms);

/*
 * Unlinks every armed timer without calling it (they are unarmed
 * afterwards, so their owners may still disarm them), and leaves w empty.
 * Not from a callback.
 */
void wr_timer_wheel_fini(struct wr_timer_wheel *w);

/*
 * Arms t (initialised, unarmed or armed in w) to fire at deadline_ms, any
 * value: one in the past fires in the next run with a later time, one
 * beyond 795 days is parked. Re-arming an armed timer moves it. O(1),
 * never fails, allocates nothing.
 */
void wr_timer_arm(struct wr_timer_wheel *w, struct wr_timer *t, uint64_t deadline_ms);

/* Unarms t if it is armed in w; a no-op if unarmed. O(1). */
void wr_timer_disarm(struct wr_timer_wheel *w, struct wr_timer *t);

/*
 * Fires, in deadline order, every timer armed in w whose deadline is
 * <= now_ms (a timer armed already due counts as due at the wheel's next
 * step, and see the header comment for timers armed meanwhile). now_ms
 * below a previous run's is harmless (nothing fires). Returns the number
 * of callbacks called. Not from a callback.
 */
size_t wr_timer_wheel_run(struct wr_timer_wheel *w, uint64_t now_ms);

/*
 * A time at which running w has work to do: never after the earliest
 * deadline of an armed timer (exact when it is less than 64 ms away; else
 * the time of the next cascade, which may fire nothing), possibly before
 * the current time if a timer is overdue. UINT64_MAX when nothing is
 * armed. For an event loop that sleeps until the next timer. O(levels).
 */
uint64_t wr_timer_wheel_next_ms(const struct wr_timer_wheel *w);

/* Timers armed in w now. */
static inline size_t wr_timer_wheel_count(const struct wr_timer_wheel *w)
{
    return w->n_armed;
}

/*
 * The lazy pattern's hot path (header comment): arms t at deadline_ms if
 * that is earlier than its armed deadline or t is unarmed (an unarmed
 * timer's deadline reads UINT64_MAX, so that is one compare); otherwise
 * leaves t armed early, for wr_timer_rearm_if_early to catch.
 */
static inline void wr_timer_arm_lazy(struct wr_timer_wheel *w, struct wr_timer *t,
                                     uint64_t deadline_ms)
{
    assert(t->cb); /* a zeroed, uninitialised timer would never arm here */
    if (deadline_ms < t->deadline_ms)
        wr_timer_arm(w, t, deadline_ms);
}

/*
 * The lazy pattern's callback check: in t's callback, with the owner's
 * real deadline. If deadline_ms is after now_ms the timer fired early:
 * re-arms t at deadline_ms and returns true (the owner returns). Returns
 * false when the deadline has passed: the timeout is real, t stays unarmed.
 */
static inline bool wr_timer_rearm_if_early(struct wr_timer_wheel *w, struct wr_timer *t,
                                           uint64_t deadline_ms, uint64_t now_ms)
{
    if (deadline_ms <= now_ms)
        return false;
    wr_timer_arm(w, t, deadline_ms);
    return true;
}

#endif
