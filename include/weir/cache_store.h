/*
 * cache_store: the memory store of one [cache NAME], shared by every worker
 * thread. Storage only: whether a response may be stored, how long it is
 * fresh and which stored variant a request may use are cache_policy's
 * (RFC 9111); the store keeps what the caller hands it and finds it again.
 *
 * Shape:
 *  - An entry is one stored response: its primary key (the expanded
 *    cache_key), its secondary key (the request's values of the fields its
 *    Vary names; empty without Vary), its head (the response head as the
 *    caller serialised it), an opaque meta blob (times, validators: the
 *    caller's) and a body. Entries of one primary key are its variants.
 *  - A body is written by one thread (the worker fetching it) while any
 *    number of readers on any thread read what is there: a list of fixed
 *    chunks, each published with a release store, so readers take no lock.
 *    A reader that has read all there is registers a waiter, called once
 *    when more arrives, the body completes or the fill is abandoned.
 *  - Entries are immutable: a revalidation (a 304 updating the stored
 *    head, RFC 9111 §4.3.4) publishes a new entry sharing the old body.
 *  - Coalescing: a lookup that misses takes the key's fill lock (one per
 *    primary key, kept by the store) and becomes the filler; later lookups
 *    of that key see WR_CACHE_WAIT and register a waiter, called when the
 *    filler publishes (they look up again and read the body as it streams)
 *    or gives up. A filler that finds the response uncacheable leaves a
 *    hit-for-miss mark for a while: lookups then say WR_CACHE_PASS, so a
 *    burst for an uncacheable key is not serialised behind one request.
 *  - Shards: the key's hash picks one of WR_CACHE_SHARDS shards, each with
 *    its own mutex, table and CLOCK ring; a hit takes one shard's lock for
 *    the table walk and one atomic increment for its reference. The bytes
 *    count is one atomic for the store; going past max_size (a publish, a
 *    body's new chunk) evicts by CLOCK, one shard at a time in turn (a hit
 *    sets the entry's bit, the hand clears bits and evicts the first entry
 *    found clear). An evicted or replaced entry leaves the table at once
 *    and is freed when its last reader lets go; its bytes count until then
 *    (they are still in memory).
 *
 * Threads: every function may be called from any thread, except where a
 * comment says the filler's (a body's writer is one thread at a time).
 * Waiter callbacks run on the thread that published, appended, completed
 * or gave up, under the store lock that guards the waiter (so that a
 * cancel returning means the callback is not running and never will): they
 * must only hand the news to their own thread (set a bit, write an
 * eventfd) and never call the store. Match callbacks run under a shard
 * lock too: a pure comparison.
 *
 * Layer 2 (storage): pthreads, str; no libevent, no config.
 */
#ifndef WEIR_CACHE_STORE_H
#define WEIR_CACHE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weir/str.h"

#define WR_CACHE_SHARDS 16
/* Body bytes per chunk: an entry's body grows one chunk at a time. */
#define WR_CACHE_CHUNK 16384

struct wr_cache_store;
struct wr_cache_entry;
struct wr_cache_body;

/* Told once: more body bytes, the end, the fill abandoned, or (for a
 * WR_CACHE_WAIT lookup) the key's filler published or gave up. */
typedef void (*wr_cache_notify_fn)(void *arg);

/* One registered interest, owned by the caller and kept alive until it is
 * called or cancelled (wr_cache_*_cancel). Zero it before first use. */
struct wr_cache_waiter {
    wr_cache_notify_fn fn;
    void *arg;
    /* private to cache_store.c */
    struct wr_cache_waiter *next, **pprev;
};

/*
 * A store of at most max_size bytes: keys, heads, meta and body chunks are
 * counted (not allocator overhead). max_object_size: a body growing past
 * it is abandoned (wr_cache_body_append says so). hfm_ms: how long a
 * hit-for-miss mark lasts. inactive_ms: an entry nobody hit for this long
 * goes at the next sweep (wr_cache_store_sweep; 0: never). NULL on
 * allocation failure.
 */
struct wr_cache_store *wr_cache_store_new(uint64_t max_size, uint64_t max_object_size,
                                          uint64_t hfm_ms, uint64_t inactive_ms);

/* Frees the store and every entry in it. No thread may still use it, and
 * every entry and body reference must have been released. NULL ok. */
void wr_cache_store_free(struct wr_cache_store *st);

/* ---- lookup and coalescing ------------------------------------------------ */

enum wr_cache_lookup_result {
    WR_CACHE_HIT,  /* *entry: a variant match accepted (a reference) */
    WR_CACHE_MISS, /* the caller holds the key's fill lock: fetch, then
                      wr_cache_publish or wr_cache_unlock */
    WR_CACHE_WAIT, /* another request is fetching this key: the waiter will
                      be called when it publishes or gives up; look up again
                      then (or give up waiting: wr_cache_wait_cancel) */
    WR_CACHE_PASS, /* a hit-for-miss mark, or no memory for a lock: fetch
                      without storing */
};

/* Whether a stored variant suits the request: the caller compares the
 * entry's secondary key with the request's (cache_policy's Vary rules). */
typedef bool (*wr_cache_match_fn)(const struct wr_cache_entry *e, void *arg);

/*
 * Looks key up at now_ms. The first variant for which match says yes is a
 * HIT (its CLOCK bit set, its last-hit time now_ms). No such variant: when
 * nobody holds the key's fill lock and no hit-for-miss mark is current, the
 * caller gets the lock (MISS); with a lock held by another, WAIT with w
 * registered (w must be zeroed or called or cancelled before); with a
 * current mark, PASS. With may_lock false a miss is PASS without a lock
 * and never WAIT (e.g. only-if-cached, or a request that may not wait).
 */
enum wr_cache_lookup_result wr_cache_lookup(struct wr_cache_store *st, struct wr_str key,
                                            wr_cache_match_fn match, void *match_arg,
                                            bool may_lock, struct wr_cache_waiter *w,
                                            uint64_t now_ms, struct wr_cache_entry **entry);

/* Unregisters w, registered by a WAIT lookup of key, if it was not called
 * yet (then it will not be). Any thread. */
void wr_cache_wait_cancel(struct wr_cache_store *st, struct wr_str key,
                          struct wr_cache_waiter *w);

/*
 * The filler gives the key's lock back without publishing: waiters are
 * called (they look up again: one of them may get the lock). With hfm
 * true the response was uncacheable: a hit-for-miss mark for hfm_ms makes
 * lookups PASS meanwhile. Only by the lock's holder, once.
 */
void wr_cache_unlock(struct wr_cache_store *st, struct wr_str key, bool hfm, uint64_t now_ms);

/* ---- entries ---------------------------------------------------------------- */

/*
 * A body to fill: the filler appends to it, then ends or abandons it.
 * expected_len: the Content-Length when known (UINT64_MAX: not known); an
 * expected length over max_object_size gives NULL (do not store). NULL
 * also on allocation failure. The caller holds one reference.
 */
struct wr_cache_body *wr_cache_body_new(struct wr_cache_store *st, uint64_t expected_len);

/*
 * Publishes a new entry for key / secondary with head, meta and body (one
 * more reference taken on body) and releases the key's fill lock when
 * the caller held it (calling its waiters); an entry of the same key and
 * secondary key is replaced (readers keep theirs). Returns the entry with
 * one reference for the caller, or NULL when it cannot be stored (no
 * memory, or key, head and meta over an eighth of max_size): then the lock, if
 * held, is released as by wr_cache_unlock(hfm false).
 */
struct wr_cache_entry *wr_cache_publish(struct wr_cache_store *st, struct wr_str key,
                                        struct wr_str secondary, struct wr_str head,
                                        struct wr_str meta, struct wr_cache_body *body,
                                        bool held_lock, uint64_t now_ms);

/* One more reference to e / lets go of one (freed with the last). */
void wr_cache_entry_ref(struct wr_cache_entry *e);
void wr_cache_entry_unref(struct wr_cache_entry *e);

/* e's parts, valid while the caller holds a reference. */
struct wr_str wr_cache_entry_key(const struct wr_cache_entry *e);
struct wr_str wr_cache_entry_secondary(const struct wr_cache_entry *e);
struct wr_str wr_cache_entry_head(const struct wr_cache_entry *e);
struct wr_str wr_cache_entry_meta(const struct wr_cache_entry *e);
struct wr_cache_body *wr_cache_entry_body(const struct wr_cache_entry *e);
/* When it was published (now_ms of wr_cache_publish). */
uint64_t wr_cache_entry_stored_ms(const struct wr_cache_entry *e);

/* Removes e from the table if it is still there (a stale entry the policy
 * says must go, a failed revalidation). Readers keep theirs. */
void wr_cache_remove(struct wr_cache_store *st, struct wr_cache_entry *e);

/* Removes every entry of key (all variants); returns how many. */
size_t wr_cache_purge_key(struct wr_cache_store *st, struct wr_str key);

/* Removes every entry whose key starts with prefix; returns how many. */
size_t wr_cache_purge_prefix(struct wr_cache_store *st, struct wr_str prefix);

/* Removes entries not hit for inactive_ms and hit-for-miss marks past their
 * time; returns how many entries went. Cheap enough for once a second. */
size_t wr_cache_store_sweep(struct wr_cache_store *st, uint64_t now_ms);

/* ---- bodies ---------------------------------------------------------------- */

/* One more reference to b / lets go of one (freed with the last). */
void wr_cache_body_ref(struct wr_cache_body *b);
void wr_cache_body_unref(struct wr_cache_body *b);

/*
 * Filler: appends len bytes. Returns 0, or -1 when the body would pass
 * max_object_size or memory ran out: the body is then abandoned (readers
 * are told; the entry holding it, if published, leaves the table) and the
 * filler carries on without it. Waiters are called after the bytes are
 * visible.
 */
int wr_cache_body_append(struct wr_cache_store *st, struct wr_cache_body *b, const void *data,
                         size_t len);

/* Filler: the body is complete (waiters called). */
void wr_cache_body_end(struct wr_cache_store *st, struct wr_cache_body *b);

/* Filler: the body will never be complete (the upstream failed): readers
 * are told, and an entry holding it leaves the table. */
void wr_cache_body_abandon(struct wr_cache_store *st, struct wr_cache_body *b);

enum wr_cache_body_state {
    WR_CACHE_BODY_FILLING,
    WR_CACHE_BODY_COMPLETE,
    WR_CACHE_BODY_ABANDONED,
};

/* A reader's position in a body. Zero it to read from the start. */
struct wr_cache_cursor {
    const void *chunk; /* private */
    uint64_t offset;   /* bytes read so far */
};

/*
 * Reader: the next contiguous bytes after c (at most one chunk's worth)
 * into *out, borrowed while the caller holds a reference on b; advances c
 * past them. An empty *out with FILLING: nothing more yet (register with
 * wr_cache_body_wait). With COMPLETE and an empty *out, the body is read
 * whole. ABANDONED: the rest will never come.
 */
enum wr_cache_body_state wr_cache_body_read(const struct wr_cache_body *b,
                                            struct wr_cache_cursor *c, struct wr_str *out);

/*
 * Reader: calls w once more bytes than offset exist or the state leaves
 * FILLING. Returns false (w not registered) when that is already so: read
 * again at once. Any thread; w must be zeroed, called or cancelled before.
 */
bool wr_cache_body_wait(struct wr_cache_body *b, uint64_t offset, struct wr_cache_waiter *w);

/* Unregisters w if it was not called yet. */
void wr_cache_body_wait_cancel(struct wr_cache_body *b, struct wr_cache_waiter *w);

/* Bytes appended so far (a snapshot). */
uint64_t wr_cache_body_len(const struct wr_cache_body *b);

/* ---- figures ------------------------------------------------------------------ */

struct wr_cache_stats {
    uint64_t bytes;       /* counted bytes of entries in the table */
    uint64_t entries;     /* entries in the table */
    uint64_t evictions;   /* entries evicted for room (total) */
    uint64_t inactive;    /* entries removed by the sweep (total) */
};

/* A snapshot, summed over the shards (each read under its lock). */
void wr_cache_store_stats(struct wr_cache_store *st, struct wr_cache_stats *out);

#endif
