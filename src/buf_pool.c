/*
 * buf_pool: bounded free lists of equal-size blocks that shrink after a
 * burst (weir/buf_pool.h). Invariants: n_free blocks are linked from
 * p->free through their first word; n_free <= max_free; low_free <= n_free.
 */
#include "weir/buf_pool.h"

#include <stdlib.h>
#include <string.h>

void wr_buf_pool_init(struct wr_buf_pool *p, size_t block_size, size_t max_free)
{
    *p = (struct wr_buf_pool){
        .block_size = block_size < sizeof(void *) ? sizeof(void *) : block_size,
        .max_free = max_free,
    };
}

static void *next_of(void *block)
{
    void *next;
    memcpy(&next, block, sizeof(next));
    return next;
}

void wr_buf_pool_fini(struct wr_buf_pool *p)
{
    while (p->free) {
        void *next = next_of(p->free);
        free(p->free);
        p->free = next;
    }
    p->n_free = p->low_free = 0;
}

void *wr_buf_pool_take(struct wr_buf_pool *p)
{
    void *block = p->free;
    if (!block)
        return malloc(p->block_size);
    p->free = next_of(block);
    p->n_free--;
    if (p->n_free < p->low_free)
        p->low_free = p->n_free;
    return block;
}

void wr_buf_pool_give(struct wr_buf_pool *p, void *block)
{
    if (!block)
        return;
    if (p->n_free >= p->max_free) {
        free(block);
        return;
    }
    memcpy(block, &p->free, sizeof(p->free));
    p->free = block;
    p->n_free++;
}

size_t wr_buf_pool_trim(struct wr_buf_pool *p)
{
    /* The low-water mark: blocks nobody needed for a whole period. */
    size_t n = (p->low_free + 1) / 2;
    for (size_t i = 0; i < n; i++) {
        void *next = next_of(p->free);
        free(p->free);
        p->free = next;
    }
    p->n_free -= n;
    p->low_free = p->n_free;
    return n;
}

void wr_buf_pool_resize(struct wr_buf_pool *p, size_t block_size)
{
    size_t max_free = p->max_free;
    wr_buf_pool_fini(p);
    wr_buf_pool_init(p, block_size, max_free);
}
