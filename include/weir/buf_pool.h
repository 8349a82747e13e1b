/*
 * buf_pool: a bounded free list of equal-size memory blocks, for the
 * buffers a worker hands to connections and exchanges on demand (the read
 * buffer a head grows into, the output block a response takes).
 *
 * Why: a buffer taken per request must not cost a malloc (STYLE §6), and a
 * burst of connections must not pin its buffers for ever afterwards (§7).
 * Blocks given back are kept up to max_free; wr_buf_pool_trim, run now and
 * then (the worker's tick), frees half of the blocks that stayed unused
 * since the previous trim, so the list decays towards what is really used.
 *
 * Not thread-safe: one pool belongs to one worker. Layer 0: malloc only.
 * It counts bytes it holds free; what it hands out is the caller's to count.
 */
#ifndef WEIR_BUF_POOL_H
#define WEIR_BUF_POOL_H

#include <stddef.h>

struct wr_buf_pool {
    size_t block_size; /* bytes per block (at least a pointer) */
    size_t max_free;   /* most blocks kept on the free list */
    size_t n_free;     /* blocks on the free list now */
    size_t low_free;   /* fewest blocks on the list since the last trim */
    void *free;        /* owned: the free blocks, linked through their first word */
};

/* Prepares an empty pool of block_size-byte blocks (block_size is raised to
 * sizeof(void *) if smaller) keeping at most max_free of them. */
void wr_buf_pool_init(struct wr_buf_pool *p, size_t block_size, size_t max_free);

/* Frees every block on the free list. Blocks handed out stay the caller's
 * (free them with free()). p can be initialised again afterwards. */
void wr_buf_pool_fini(struct wr_buf_pool *p);

/* A block of p->block_size bytes, uninitialised: from the free list, else
 * malloc'd. NULL when out of memory. The caller owns it until it gives it
 * back (wr_buf_pool_give) or frees it (free). */
void *wr_buf_pool_take(struct wr_buf_pool *p);

/* Takes back a block of p->block_size bytes (from this pool or malloc'd
 * with that size): kept for reuse when the list has room, else freed.
 * NULL is ignored. */
void wr_buf_pool_give(struct wr_buf_pool *p, void *block);

/* Frees half (rounded up) of the blocks that stayed on the free list the
 * whole time since the previous trim; returns how many it freed. Run at a
 * steady pace (e.g. once a second): after a burst, the list shrinks
 * geometrically while a steady load keeps what it cycles through. */
size_t wr_buf_pool_trim(struct wr_buf_pool *p);

/* Changes the block size: the free list (blocks of the old size) is freed.
 * Blocks of the old size handed out must not be given back afterwards. */
void wr_buf_pool_resize(struct wr_buf_pool *p, size_t block_size);

#endif
