/*
 * timer: a hierarchical timing wheel with cascading (timer.h).
 *
 * Six levels of 64 slots. Level l's slot covers 64^l ms; a timer due
 * delta = deadline - cur_ms ahead sits at level floor(log64(delta)), in the
 * slot its deadline's bits at that level name (so a slot holds only
 * deadlines of one 64^l-long period). Every tick below cur_ms is processed;
 * processing tick t means: at every level l where t is a multiple of 64^l,
 * move the timers of the slot t names there down to where they belong now
 * (cascading), then fire level 0's slot for t, which then holds exactly
 * the timers due at t. Placement by the deadline's own bits is what makes
 * that exact: a timer placed at level l is moved down precisely at the
 * start of its deadline's period (the Linux 2.6 wheel's argument), so no
 * timer fires early, and since levels are walked by the first tick with
 * work rather than one tick at a time, a run never visits a slot that is
 * empty: its cost is the timers fired and moved, plus O(levels) per step.
 *
 * Invariants:
 * - occupied[l] bit i is set iff slot (l, i) is non-empty.
 * - A timer is armed iff its link.next is non-NULL; then it is in exactly
 *   one slot, or in the firing list during its run step.
 * - An unarmed timer's deadline_ms is UINT64_MAX (the lazy pattern's one
 *   compare relies on it).
 * - A timer more than 2^36 ms ahead is parked in the top level's last
 *   slot before the end of the wheel's reach and placed again by its real
 *   deadline when that slot cascades; only deadline - cur_ms is computed,
 *   and only for deadline >= cur_ms, so nothing wraps.
 */
#include "weir/timer.h"

#include <assert.h>

#define SLOT_MASK (WR_TIMER_SLOTS - 1)
#define N_SLOTS (WR_TIMER_LEVELS * WR_TIMER_SLOTS)
#define FIRING N_SLOTS /* index of the firing list in slots[] */
#define REACH_MS (1ull << (WR_TIMER_BITS * WR_TIMER_LEVELS))

static struct wr_timer *timer_of(struct wr_timer_link *l)
{
    return WR_TIMER_OWNER(l, struct wr_timer, link);
}

static void list_init(struct wr_timer_link *head)
{
    head->next = head->prev = head;
}

static bool list_is_empty(const struct wr_timer_link *head)
{
    return head->next == head;
}

static void list_append(struct wr_timer_link *head, struct wr_timer_link *l)
{
    l->prev = head->prev;
    l->next = head;
    head->prev->next = l;
    head->prev = l;
}

/* Moves every node of from (not empty) to the empty list to. */
static void list_move_all(struct wr_timer_link *from, struct wr_timer_link *to)
{
    to->next = from->next;
    to->prev = from->prev;
    to->next->prev = to;
    to->prev->next = to;
    list_init(from);
}

/* Takes an armed t out of its slot (or the firing list) and unarms it. */
static void unlink_timer(struct wr_timer_wheel *w, struct wr_timer *t)
{
    struct wr_timer_link *prev = t->link.prev, *next = t->link.next;
    prev->next = next;
    next->prev = prev;
    /* prev == next only if t was the one node besides its list's head,
       which both now point to: the slot became empty. */
    if (prev == next) {
        size_t i = (size_t)(prev - w->slots);
        assert(i <= FIRING); /* armed in this wheel */
        if (i < N_SLOTS)
            w->occupied[i / WR_TIMER_SLOTS] &= ~(1ull << (i % WR_TIMER_SLOTS));
    }
    t->link.next = t->link.prev = NULL;
    t->deadline_ms = UINT64_MAX;
    w->n_armed--;
}

/* Links t (unlinked, deadline_ms set) into the slot its deadline names. */
static void place(struct wr_timer_wheel *w, struct wr_timer *t)
{
    /* Already due: the slot of the first tick not processed yet. */
    uint64_t at = t->deadline_ms > w->cur_ms ? t->deadline_ms : w->cur_ms;
    uint64_t delta = at - w->cur_ms;
    if (delta >= REACH_MS) { /* parked: placed again when its slot cascades */
        delta = REACH_MS - 1;
        at = w->cur_ms + delta;
    }
    unsigned level = (unsigned)(63 - __builtin_clzll(delta | 1)) / WR_TIMER_BITS;
    unsigned i = (unsigned)(at >> (level * WR_TIMER_BITS)) & SLOT_MASK;
    list_append(&w->slots[level * WR_TIMER_SLOTS + i], &t->link);
    w->occupied[level] |= 1ull << i;
}

void wr_timer_init(struct wr_timer *t, wr_timer_fn cb)
{
    assert(cb);
    t->link.next = t->link.prev = NULL;
    t->deadline_ms = UINT64_MAX;
    t->cb = cb;
}

void wr_timer_wheel_init(struct wr_timer_wheel *w, uint64_t now_ms)
{
    *w = (struct wr_timer_wheel){.cur_ms = now_ms};
    for (size_t i = 0; i <= FIRING; i++)
        list_init(&w->slots[i]);
}

void wr_timer_wheel_fini(struct wr_timer_wheel *w)
{
    assert(!w->is_running);
    for (size_t i = 0; i < N_SLOTS; i++)
        while (!list_is_empty(&w->slots[i]))
            unlink_timer(w, timer_of(w->slots[i].next));
    assert(w->n_armed == 0);
}

void wr_timer_arm(struct wr_timer_wheel *w, struct wr_timer *t, uint64_t deadline_ms)
{
    assert(t->cb); /* initialised */
    if (wr_timer_is_armed(t))
        unlink_timer(w, t);
    t->deadline_ms = deadline_ms;
    place(w, t);
    w->n_armed++;
}

void wr_timer_disarm(struct wr_timer_wheel *w, struct wr_timer *t)
{
    if (wr_timer_is_armed(t))
        unlink_timer(w, t);
}

/*
 * The first tick >= cur_ms at which one of level's non-empty slots is
 * processed (fired at level 0, cascaded above). Slot periods of level l
 * start at multiples of 64^l; the slot named by the first period starting
 * at or after cur_ms comes first, then the following ones, wrapping.
 */
static uint64_t level_next_tick(const struct wr_timer_wheel *w, unsigned level)
{
    unsigned shift = level * WR_TIMER_BITS;
    uint64_t first = (w->cur_ms + ((1ull << shift) - 1)) >> shift;
    unsigned from = (unsigned)first & SLOT_MASK;
    uint64_t bits = w->occupied[level];
    uint64_t ahead = bits & (~0ull << from);
    unsigned dist = ahead ? (unsigned)__builtin_ctzll(ahead) - from
                          : (unsigned)__builtin_ctzll(bits) + WR_TIMER_SLOTS - from;
    return (first + dist) << shift;
}

/* The first tick >= cur_ms with a non-empty slot to process; UINT64_MAX if none. */
static uint64_t next_step(const struct wr_timer_wheel *w)
{
    uint64_t best = UINT64_MAX;
    for (unsigned l = 0; l < WR_TIMER_LEVELS; l++) {
        if (w->occupied[l]) {
            uint64_t tick = level_next_tick(w, l);
            best = tick < best ? tick : best;
        }
    }
    return best;
}

uint64_t wr_timer_wheel_next_ms(const struct wr_timer_wheel *w)
{
    return next_step(w);
}

/* At tick (== cur_ms): moves down the slots whose period starts at tick. */
static void cascade(struct wr_timer_wheel *w, uint64_t tick)
{
    for (unsigned l = 1; l < WR_TIMER_LEVELS; l++) {
        unsigned shift = l * WR_TIMER_BITS;
        if (tick & ((1ull << shift) - 1))
            break; /* not a period start here, so not at any higher level */
        unsigned i = (unsigned)(tick >> shift) & SLOT_MASK;
        if (!(w->occupied[l] & (1ull << i)))
            continue;
        /* Taken out first: a parked timer may land in this level again. */
        struct wr_timer_link moving;
        list_move_all(&w->slots[l * WR_TIMER_SLOTS + i], &moving);
        w->occupied[l] &= ~(1ull << i);
        while (!list_is_empty(&moving)) {
            struct wr_timer_link *n = moving.next;
            moving.next = n->next;
            n->next->prev = &moving;
            place(w, timer_of(n));
            w->stats.n_cascaded++;
        }
    }
}

/*
 * Fires level 0's slot for tick (== cur_ms), all due at tick. The slot is
 * moved to the firing list first, so timers armed by callbacks (even for
 * tick) land in slots of later ticks, and a callback disarming a timer
 * still waiting in the firing list takes it out like from any slot.
 */
static size_t fire(struct wr_timer_wheel *w, uint64_t tick, uint64_t now_ms)
{
    unsigned i = (unsigned)tick & SLOT_MASK;
    w->cur_ms = tick + 1;
    if (!(w->occupied[0] & (1ull << i)))
        return 0;
    struct wr_timer_link *firing = &w->slots[FIRING];
    list_move_all(&w->slots[i], firing);
    w->occupied[0] &= ~(1ull << i);
    size_t n = 0;
    while (!list_is_empty(firing)) {
        struct wr_timer *t = timer_of(firing->next);
        unlink_timer(w, t);
        w->stats.n_fired++;
        n++;
        t->cb(w, t, now_ms); /* may free t's owner: t is not touched again */
    }
    return n;
}

size_t wr_timer_wheel_run(struct wr_timer_wheel *w, uint64_t now_ms)
{
    assert(!w->is_running); /* not from a callback */
    if (now_ms == UINT64_MAX)
        now_ms--; /* cur_ms = now_ms + 1 below must not wrap */
    if (now_ms < w->cur_ms)
        return 0;
    w->is_running = true;
    size_t n = 0;
    for (uint64_t tick; (tick = next_step(w)) <= now_ms;) {
        w->cur_ms = tick;
        w->stats.n_steps++;
        cascade(w, tick);
        n += fire(w, tick, now_ms);
    }
    w->cur_ms = now_ms + 1;
    w->is_running = false;
    return n;
}
