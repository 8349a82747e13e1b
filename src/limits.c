/*
 * limits: shared tables for per-address connection counts and per-route
 * request rates (see weir/limits.h for the contract).
 *
 * Rate slots pack a 16-bit key tag and a 48-bit theoretical arrival time
 * (TAT, microseconds of the monotonic clock) into one 64-bit word. The
 * bucket is full (a fresh key) when TAT <= now; a request moves TAT on by
 * one interval and is refused when that would put it more than burst
 * intervals ahead of now. A slot whose TAT is in the past holds nothing
 * worth keeping, so any key may take it over; an empty slot is 0.
 */
#include "weir/limits.h"

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "weir/hash.h"

#define TAT_BITS 48
#define TAT_MASK ((UINT64_C(1) << TAT_BITS) - 1)
#define MAX_CAS_TRIES 64

struct wr_limits {
    uint64_t seed;
    _Atomic uint64_t log_last_ms;
    _Atomic uint64_t log_suppressed;
    _Atomic uint32_t conns[WR_LIMITS_CONN_SLOTS];
    _Atomic uint64_t rates[WR_LIMITS_RATE_SETS * WR_LIMITS_RATE_WAYS];
};

_Static_assert((WR_LIMITS_CONN_SLOTS & (WR_LIMITS_CONN_SLOTS - 1)) == 0, "power of two");
_Static_assert((WR_LIMITS_RATE_SETS & (WR_LIMITS_RATE_SETS - 1)) == 0, "power of two");

struct wr_limits *wr_limits_new(void)
{
    /* calloc of this size is an mmap: untouched slots cost no memory. */
    struct wr_limits *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    if (getrandom(&l->seed, sizeof(l->seed), 0) != sizeof(l->seed)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        l->seed = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15u ^ (uint64_t)ts.tv_sec;
    }
    return l;
}

void wr_limits_free(struct wr_limits *l)
{
    free(l);
}

/* Never 0: 0 means "no key" (exempt). */
static uint64_t finish_key(uint64_t h)
{
    return h != 0 ? h : 1;
}

uint64_t wr_limits_peer_key(const struct wr_limits *l, const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        uint32_t a;
        memcpy(&a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return finish_key(wr_hash_mix64(l->seed ^ wr_hash_mix64((uint64_t)a | (UINT64_C(4) << 32))));
    }
    if (sa->sa_family != AF_INET6)
        return 0;
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a6)) {
        uint32_t a;
        memcpy(&a, a6->s6_addr + 12, 4);
        return finish_key(wr_hash_mix64(l->seed ^ wr_hash_mix64((uint64_t)a | (UINT64_C(4) << 32))));
    }
    uint64_t prefix; /* the /64: a client roams the rest of it at will */
    memcpy(&prefix, a6->s6_addr, 8);
    return finish_key(wr_hash_mix64(l->seed ^ wr_hash_mix64(prefix ^ UINT64_C(6))));
}

/* ---- connections per address --------------------------------------------- */

bool wr_limits_conn_acquire(struct wr_limits *l, uint64_t key, uint64_t max, uint32_t *slot)
{
    uint32_t i = (uint32_t)(key & (WR_LIMITS_CONN_SLOTS - 1));
    uint32_t before = atomic_fetch_add_explicit(&l->conns[i], 1, memory_order_relaxed);
    if (before >= max) {
        atomic_fetch_sub_explicit(&l->conns[i], 1, memory_order_relaxed);
        return false;
    }
    *slot = i;
    return true;
}

void wr_limits_conn_release(struct wr_limits *l, uint32_t slot)
{
    if (slot != WR_LIMITS_NO_SLOT)
        atomic_fetch_sub_explicit(&l->conns[slot], 1, memory_order_relaxed);
}

uint64_t wr_limits_conn_count(const struct wr_limits *l, uint64_t key)
{
    uint32_t i = (uint32_t)(key & (WR_LIMITS_CONN_SLOTS - 1));
    return atomic_load_explicit(&l->conns[i], memory_order_relaxed);
}

/* ---- request rates ---------------------------------------------------------- */

static uint64_t hash_name(const char *s)
{
    return wr_hash_bytes(s, strlen(s));
}

/*
 * Picks the slot for tag in set: its own, else one holding an expired
 * bucket (nothing to lose), else the set's first (shared: over-counts).
 * *old is the slot's value as read.
 */
static _Atomic uint64_t *pick_slot(_Atomic uint64_t *set, uint64_t tag, uint64_t now_us,
                                   uint64_t *old)
{
    _Atomic uint64_t *spare = NULL;
    uint64_t spare_old = 0;
    for (int i = 0; i < WR_LIMITS_RATE_WAYS; i++) {
        uint64_t v = atomic_load_explicit(&set[i], memory_order_relaxed);
        if (v >> TAT_BITS == tag) {
            *old = v;
            return &set[i];
        }
        if (!spare && (v & TAT_MASK) <= now_us) {
            spare = &set[i];
            spare_old = v;
        }
    }
    if (spare) {
        *old = spare_old;
        return spare;
    }
    *old = atomic_load_explicit(&set[0], memory_order_relaxed);
    return &set[0];
}

uint64_t wr_limits_rate_check(struct wr_limits *l, uint64_t key, const char *route_name,
                              const struct wr_rate_limit *rate, uint64_t now_us)
{
    uint64_t h = wr_hash_mix64(key ^ hash_name(route_name));
    _Atomic uint64_t *set = &l->rates[(h & (WR_LIMITS_RATE_SETS - 1)) * WR_LIMITS_RATE_WAYS];
    uint64_t tag = (h >> 48) | 1; /* never 0: an empty slot is 0 */
    uint64_t interval = rate->interval_us;
    uint64_t window = rate->burst * interval; /* how far ahead TAT may run */
    now_us &= TAT_MASK;
    for (int tries = 0; tries < MAX_CAS_TRIES; tries++) {
        uint64_t old;
        _Atomic uint64_t *slot = pick_slot(set, tag, now_us, &old);
        uint64_t tat = old & TAT_MASK;
        /* A shared slot (another key's) keeps its tag: both are charged. */
        uint64_t slot_tag = (old >> TAT_BITS == tag || tat <= now_us) ? tag : old >> TAT_BITS;
        if (tat < now_us)
            tat = now_us;
        uint64_t next = tat + interval;
        if (next - now_us > window) {
            uint64_t wait_us = next - now_us - window;
            return (wait_us + 999999) / 1000000;
        }
        uint64_t v = slot_tag << TAT_BITS | (next & TAT_MASK);
        if (atomic_compare_exchange_weak_explicit(slot, &old, v, memory_order_relaxed,
                                                  memory_order_relaxed))
            return 0;
    }
    /* Lost the race to other workers MAX_CAS_TRIES times in a row: the key
     * is being hammered right now, so refusing errs on the safe side. */
    return 1;
}

bool wr_limits_log_due(struct wr_limits *l, uint64_t now_ms, uint64_t *n_suppressed)
{
    uint64_t last = atomic_load_explicit(&l->log_last_ms, memory_order_relaxed);
    if ((last == 0 || now_ms - last >= 1000) &&
        atomic_compare_exchange_strong_explicit(&l->log_last_ms, &last, now_ms,
                                                memory_order_relaxed, memory_order_relaxed)) {
        *n_suppressed = atomic_exchange_explicit(&l->log_suppressed, 0, memory_order_relaxed);
        return true;
    }
    atomic_fetch_add_explicit(&l->log_suppressed, 1, memory_order_relaxed);
    return false;
}
