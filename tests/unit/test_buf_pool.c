/*
 * Unit tests for buf_pool: reuse without malloc, the bound on kept blocks,
 * and the shrinking after a burst (trim frees half of what stayed unused
 * for a whole period, never what a steady load cycles through).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "weir/buf_pool.h"

static void issue_14_pool_reuses_the_last_block_given(void **state)
{
    (void)state;
    struct wr_buf_pool p;
    wr_buf_pool_init(&p, 2048, 4);
    char *a = wr_buf_pool_take(&p);
    assert_non_null(a);
    memset(a, 'x', 2048); /* ASan: the whole block is ours */
    wr_buf_pool_give(&p, a);
    assert_int_equal(p.n_free, 1);
    assert_ptr_equal(wr_buf_pool_take(&p), a);
    assert_int_equal(p.n_free, 0);
    wr_buf_pool_give(&p, a);
    wr_buf_pool_give(&p, NULL); /* ignored */
    assert_int_equal(p.n_free, 1);
    wr_buf_pool_fini(&p);
    assert_int_equal(p.n_free, 0);
}

static void issue_14_pool_keeps_at_most_max_free(void **state)
{
    (void)state;
    struct wr_buf_pool p;
    wr_buf_pool_init(&p, 64, 3);
    void *b[5];
    for (int i = 0; i < 5; i++)
        b[i] = wr_buf_pool_take(&p);
    for (int i = 0; i < 5; i++)
        wr_buf_pool_give(&p, b[i]); /* the last two are freed (ASan: no leak) */
    assert_int_equal(p.n_free, 3);
    wr_buf_pool_fini(&p);
}

/* Takes k blocks and gives them back: one period of a steady load. */
static void cycle(struct wr_buf_pool *p, size_t k)
{
    void *b[64];
    for (size_t i = 0; i < k; i++)
        b[i] = wr_buf_pool_take(p);
    for (size_t i = 0; i < k; i++)
        wr_buf_pool_give(p, b[i]);
}

static void issue_14_pool_shrinks_after_a_burst(void **state)
{
    (void)state;
    struct wr_buf_pool p;
    wr_buf_pool_init(&p, 128, 64);
    cycle(&p, 64); /* the burst */
    assert_int_equal(p.n_free, 64);
    wr_buf_pool_trim(&p); /* the period of the burst: its low mark was 0 */
    assert_int_equal(p.n_free, 64);
    /* Quiet periods: halves of the unused blocks go, down to none. */
    assert_int_equal(wr_buf_pool_trim(&p), 32);
    assert_int_equal(p.n_free, 32);
    for (int i = 0; i < 10; i++)
        wr_buf_pool_trim(&p);
    assert_int_equal(p.n_free, 0);
    wr_buf_pool_fini(&p);
}

static void issue_14_pool_keeps_what_a_steady_load_cycles(void **state)
{
    (void)state;
    struct wr_buf_pool p;
    wr_buf_pool_init(&p, 128, 64);
    cycle(&p, 40); /* burst */
    wr_buf_pool_trim(&p);
    for (int i = 0; i < 20; i++) {
        cycle(&p, 8); /* 8 blocks in use at once every period */
        wr_buf_pool_trim(&p);
    }
    /* Decayed from 40 towards the 8 the load needs, and never below it. */
    assert_true(p.n_free >= 8);
    assert_true(p.n_free <= 9);
    cycle(&p, 8);
    wr_buf_pool_trim(&p);
    assert_true(p.n_free >= 8);
    wr_buf_pool_fini(&p);
}

static void issue_14_pool_resize_drops_old_blocks(void **state)
{
    (void)state;
    struct wr_buf_pool p;
    wr_buf_pool_init(&p, 100, 8);
    cycle(&p, 4);
    wr_buf_pool_resize(&p, 200);
    assert_int_equal(p.n_free, 0);
    assert_int_equal(p.block_size, 200);
    assert_int_equal(p.max_free, 8);
    char *b = wr_buf_pool_take(&p);
    memset(b, 0, 200);
    wr_buf_pool_give(&p, b);
    wr_buf_pool_fini(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issue_14_pool_reuses_the_last_block_given),
        cmocka_unit_test(issue_14_pool_keeps_at_most_max_free),
        cmocka_unit_test(issue_14_pool_shrinks_after_a_burst),
        cmocka_unit_test(issue_14_pool_keeps_what_a_steady_load_cycles),
        cmocka_unit_test(issue_14_pool_resize_drops_old_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
