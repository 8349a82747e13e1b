/*
 * h2_guard: token buckets against HTTP/2 floods (see weir/h2_guard.h).
 *
 * Budgets. A bucket holds `burst` tokens and refills at `rate` per
 * second; what is spent past it cuts the connection. Browsers stay far
 * below every one of them; an attack runs at thousands of frames a second
 * and empties the bucket within a fraction of one.
 *  - RESET: 2 x max_concurrent_streams, 10/s. A page navigation may cancel
 *    every stream it has open, twice; rapid reset (CVE-2023-44487) churns
 *    thousands a second. Each reset stream may have started a handler (an
 *    upstream connection), so the budget is tighter than nghttp2's own
 *    (1000 burst, 33/s, which stays on underneath as a backstop).
 *  - CONTROL (PING, SETTINGS): 100, 10/s. nghttp2 only limits the ACKs a
 *    client leaves unread (max_outbound_ack); a client that reads them can
 *    make us answer at line rate.
 *  - PRIORITY: 4 x max_concurrent_streams, 10/s, plus one per stream
 *    opened: nginx's priority_limit (4 x concurrent_streams, +1 a request).
 *  - EMPTY_DATA: 100, 10/s. An empty DATA frame without END_STREAM does
 *    nothing (Envoy allows one in a row; nginx none); CVE-2019-9518.
 *  - WINDOW_UPDATE: 100, 10/s, plus 2 per DATA frame we send (one for the
 *    stream, one for the connection): a client opens windows for the data
 *    it receives; Envoy allows 10 per DATA frame sent. CVE-2019-9517-class.
 * Pure; no clock of its own.
 */
#include "weir/h2_guard.h"

#include <stddef.h>

struct budget {
    uint64_t burst_per_stream; /* burst = this x max_streams when nonzero */
    uint64_t burst;            /* else this */
    uint64_t rate;             /* tokens per second */
    const char *reason;
};

static const struct budget budgets[WR_H2_GUARD_N] = {
    [WR_H2_GUARD_RESET] = {2, 0, 10, "rapid_reset"},
    [WR_H2_GUARD_CONTROL] = {0, 100, 10, "control_flood"},
    [WR_H2_GUARD_PRIORITY] = {4, 0, 10, "priority_flood"},
    [WR_H2_GUARD_EMPTY_DATA] = {0, 100, 10, "empty_data_flood"},
    [WR_H2_GUARD_WINDOW_UPDATE] = {0, 100, 10, "window_update_flood"},
};

void wr_h2_guard_init(struct wr_h2_guard *g, uint64_t max_streams, uint64_t now_ms)
{
    for (int k = 0; k < WR_H2_GUARD_N; k++) {
        const struct budget *b = &budgets[k];
        uint64_t burst = b->burst_per_stream ? b->burst_per_stream * max_streams : b->burst;
        g->cap_milli[k] = burst * 1000;
        g->milli[k] = g->cap_milli[k];
    }
    g->last_ms = now_ms;
}

/* Refills every bucket for the time since the last refill. */
static void refill(struct wr_h2_guard *g, uint64_t now_ms)
{
    if (now_ms <= g->last_ms)
        return;
    uint64_t dt_ms = now_ms - g->last_ms;
    g->last_ms = now_ms;
    for (int k = 0; k < WR_H2_GUARD_N; k++) {
        /* rate tokens a second are rate thousandths a millisecond */
        uint64_t add = dt_ms * budgets[k].rate;
        uint64_t room = g->cap_milli[k] - g->milli[k];
        g->milli[k] += add < room ? add : room;
    }
}

bool wr_h2_guard_spend(struct wr_h2_guard *g, enum wr_h2_guard_kind kind, uint64_t now_ms)
{
    refill(g, now_ms);
    if (g->milli[kind] < 1000)
        return false;
    g->milli[kind] -= 1000;
    return true;
}

void wr_h2_guard_earn(struct wr_h2_guard *g, enum wr_h2_guard_kind kind, uint64_t n)
{
    uint64_t room = g->cap_milli[kind] - g->milli[kind];
    uint64_t add = n * 1000;
    g->milli[kind] += add < room ? add : room;
}

const char *wr_h2_guard_reason(enum wr_h2_guard_kind kind)
{
    return kind >= 0 && kind < WR_H2_GUARD_N ? budgets[kind].reason : "?";
}
