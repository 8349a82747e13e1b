/* Unit tests of h2_guard: the HTTP/2 flood budgets (issue 15). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "weir/h2_guard.h"

/* Spends kind at now_ms until refused; returns how many were allowed. */
static unsigned spend_all(struct wr_h2_guard *g, enum wr_h2_guard_kind kind, uint64_t now_ms)
{
    unsigned n = 0;
    while (n < 100000 && wr_h2_guard_spend(g, kind, now_ms))
        n++;
    return n;
}

/* Rapid reset: 2 x max_concurrent_streams at once, then 10 a second. */
static void issue_15_guard_reset_burst_and_rate(void **state)
{
    (void)state;
    struct wr_h2_guard g;
    wr_h2_guard_init(&g, 100, 1000);
    assert_int_equal(spend_all(&g, WR_H2_GUARD_RESET, 1000), 200);
    assert_false(wr_h2_guard_spend(&g, WR_H2_GUARD_RESET, 1050)); /* half a token */
    assert_true(wr_h2_guard_spend(&g, WR_H2_GUARD_RESET, 1100));
    assert_int_equal(spend_all(&g, WR_H2_GUARD_RESET, 2100), 10);
    /* a long pause refills up to the burst, never past it */
    assert_int_equal(spend_all(&g, WR_H2_GUARD_RESET, 3600000), 200);
    /* the other buckets are untouched */
    assert_int_equal(spend_all(&g, WR_H2_GUARD_CONTROL, 3600000), 100);
    assert_int_equal(spend_all(&g, WR_H2_GUARD_PRIORITY, 3600000), 400);
    assert_string_equal(wr_h2_guard_reason(WR_H2_GUARD_RESET), "rapid_reset");
}

/* WINDOW_UPDATEs are earned by DATA frames sent, up to the bucket size. */
static void issue_15_guard_earn(void **state)
{
    (void)state;
    struct wr_h2_guard g;
    wr_h2_guard_init(&g, 1, 0);
    assert_int_equal(spend_all(&g, WR_H2_GUARD_WINDOW_UPDATE, 0), 100);
    wr_h2_guard_earn(&g, WR_H2_GUARD_WINDOW_UPDATE, 2);
    assert_int_equal(spend_all(&g, WR_H2_GUARD_WINDOW_UPDATE, 0), 2);
    wr_h2_guard_earn(&g, WR_H2_GUARD_WINDOW_UPDATE, 1000000);
    assert_int_equal(spend_all(&g, WR_H2_GUARD_WINDOW_UPDATE, 0), 100);
    /* a clock that goes back does not refill nor underflow */
    assert_false(wr_h2_guard_spend(&g, WR_H2_GUARD_WINDOW_UPDATE, 0));
    assert_int_equal(spend_all(&g, WR_H2_GUARD_RESET, 0), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issue_15_guard_reset_burst_and_rate),
        cmocka_unit_test(issue_15_guard_earn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
