/*
 * cache_store: entries in sharded tables with CLOCK eviction, bodies as
 * chunk lists written by one thread and read by many without locks, and
 * per-key fill locks for coalescing. See cache_store.h for the contract.
 *
 * Locks: a shard's mutex guards its buckets, CLOCK ring, entry fields
 * marked (shard) and its fill-lock records with their waiters. A body's
 * mutex guards its waiters and its state changes. No thread holds two of
 * them at once; frees of entries and bodies happen outside both.
 */
#include "weir/cache_store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "weir/hash.h"

#define LOCK_BUCKETS 64
/* Steps one eviction pass may take: a bound on the work a publish or an
 * append does for room, whatever readers keep alive. */
#define EVICT_STEPS 256

struct chunk {
    _Atomic(struct chunk *) next;
    _Atomic size_t len; /* bytes of data published */
    uint64_t start;     /* body offset of data[0] */
    char data[WR_CACHE_CHUNK];
};

struct wr_cache_body {
    atomic_uint refs;
    pthread_mutex_t mu;          /* waiters, state changes */
    atomic_int state;            /* enum wr_cache_body_state */
    _Atomic uint64_t len;        /* bytes published */
    _Atomic(struct chunk *) first;
    struct chunk *tail;          /* the filler's */
    struct wr_cache_waiter *waiters; /* (mu) */
    struct wr_cache_store *st;   /* for the bytes count at free */
    uint64_t counted;            /* bytes of chunks counted in st->bytes */
};

struct shard;

struct wr_cache_entry {
    atomic_uint refs;
    struct wr_cache_entry *hnext;          /* (shard) bucket chain */
    struct wr_cache_entry *cprev, *cnext;  /* (shard) CLOCK ring */
    struct shard *shard;
    bool is_in_table;                      /* (shard) */
    bool clock_bit;                        /* (shard) hit since the hand passed */
    uint64_t last_hit_ms;                  /* (shard) */
    uint64_t stored_ms;
    uint64_t hash;
    uint64_t counted; /* bytes of this struct counted in st->bytes */
    struct wr_cache_body *body;            /* a reference */
    size_t key_len, sec_len, head_len, meta_len;
    char bytes[]; /* key, secondary, head, meta */
};

/* A key being filled, or a hit-for-miss mark, in its shard. */
struct fill_lock {
    struct fill_lock *next;
    uint64_t hash;
    bool is_held;
    uint64_t hfm_until_ms; /* 0: no mark */
    struct wr_cache_waiter *waiters;
    size_t key_len;
    char key[];
};

struct shard {
    pthread_mutex_t mu;
    struct wr_cache_entry **buckets;
    size_t mask;
    struct wr_cache_entry *hand; /* CLOCK ring, NULL when empty */
    uint64_t n_entries;
    uint64_t evictions, inactive;
    struct fill_lock *locks[LOCK_BUCKETS];
};

struct wr_cache_store {
    struct shard shards[WR_CACHE_SHARDS];
    uint64_t max_size, max_object_size, hfm_ms, inactive_ms;
    uint64_t seed;
    _Atomic uint64_t bytes;
    atomic_uint evict_turn;
};

/* ---- hashing -------------------------------------------------------------- */

/* Keys carry client input (the URI): a per-store random seed in the
 * state keeps anyone from aiming collisions at one bucket. */
static uint64_t hash_key(const struct wr_cache_store *st, struct wr_str key)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ st->seed;
    for (size_t i = 0; i < key.len; i++) {
        h ^= (unsigned char)key.ptr[i];
        h *= 0x100000001b3ULL;
    }
    return wr_hash_mix64(h ^ key.len);
}

static struct shard *shard_of(struct wr_cache_store *st, uint64_t hash)
{
    return &st->shards[hash % WR_CACHE_SHARDS];
}

/* ---- waiters --------------------------------------------------------------- */

static void waiter_add(struct wr_cache_waiter **head, struct wr_cache_waiter *w)
{
    w->next = *head;
    w->pprev = head;
    if (*head)
        (*head)->pprev = &w->next;
    *head = w;
}

static void waiter_unlink(struct wr_cache_waiter *w)
{
    if (!w->pprev)
        return;
    *w->pprev = w->next;
    if (w->next)
        w->next->pprev = w->pprev;
    w->next = NULL;
    w->pprev = NULL;
}

/* Calls and detaches every waiter of *head; under the lock guarding it. */
static void waiters_call(struct wr_cache_waiter **head)
{
    struct wr_cache_waiter *w = *head;
    *head = NULL;
    while (w) {
        struct wr_cache_waiter *next = w->next;
        w->next = NULL;
        w->pprev = NULL;
        w->fn(w->arg);
        w = next;
    }
}

/* ---- the store --------------------------------------------------------------- */

static size_t bucket_count(uint64_t max_size)
{
    /* About one bucket per 4 KiB of the shard's share, 64 to 64 Ki. */
    uint64_t want = max_size / WR_CACHE_SHARDS / 4096;
    size_t n = 64;
    while (n < want && n < 65536)
        n *= 2;
    return n;
}

struct wr_cache_store *wr_cache_store_new(uint64_t max_size, uint64_t max_object_size,
                                          uint64_t hfm_ms, uint64_t inactive_ms)
{
    struct wr_cache_store *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    *st = (struct wr_cache_store){.max_size = max_size, .max_object_size = max_object_size,
                                  .hfm_ms = hfm_ms, .inactive_ms = inactive_ms};
    if (getrandom(&st->seed, sizeof(st->seed), 0) != (ssize_t)sizeof(st->seed))
        st->seed = (uint64_t)(uintptr_t)st ^ 0x9e3779b97f4a7c15ULL;
    size_t n = bucket_count(max_size);
    for (size_t i = 0; i < WR_CACHE_SHARDS; i++) {
        struct shard *sh = &st->shards[i];
        sh->buckets = calloc(n, sizeof(*sh->buckets));
        sh->mask = n - 1;
        pthread_mutex_init(&sh->mu, NULL);
        if (!sh->buckets) {
            for (size_t j = 0; j <= i; j++) {
                free(st->shards[j].buckets);
                pthread_mutex_destroy(&st->shards[j].mu);
            }
            free(st);
            return NULL;
        }
    }
    return st;
}

static void entry_free(struct wr_cache_entry *e);

void wr_cache_store_free(struct wr_cache_store *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < WR_CACHE_SHARDS; i++) {
        struct shard *sh = &st->shards[i];
        for (size_t b = 0; b <= sh->mask; b++) {
            for (struct wr_cache_entry *e = sh->buckets[b], *next; e; e = next) {
                next = e->hnext;
                entry_free(e);
            }
        }
        for (size_t b = 0; b < LOCK_BUCKETS; b++) {
            for (struct fill_lock *l = sh->locks[b], *next; l; l = next) {
                next = l->next;
                free(l);
            }
        }
        free(sh->buckets);
        pthread_mutex_destroy(&sh->mu);
    }
    free(st);
}

/* ---- bodies ------------------------------------------------------------------ */

struct wr_cache_body *wr_cache_body_new(struct wr_cache_store *st, uint64_t expected_len)
{
    if (expected_len != UINT64_MAX && expected_len > st->max_object_size)
        return NULL;
    struct wr_cache_body *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    atomic_init(&b->refs, 1);
    atomic_init(&b->state, WR_CACHE_BODY_FILLING);
    pthread_mutex_init(&b->mu, NULL);
    b->st = st;
    return b;
}

void wr_cache_body_ref(struct wr_cache_body *b)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
}

void wr_cache_body_unref(struct wr_cache_body *b)
{
    if (!b || atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (struct chunk *c = atomic_load(&b->first), *next; c; c = next) {
        next = atomic_load(&c->next);
        free(c);
    }
    atomic_fetch_sub(&b->st->bytes, b->counted);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

/* Moves the body to state (from FILLING only) and tells its waiters. */
static void body_settle(struct wr_cache_body *b, enum wr_cache_body_state state)
{
    pthread_mutex_lock(&b->mu);
    int filling = WR_CACHE_BODY_FILLING;
    atomic_compare_exchange_strong(&b->state, &filling, (int)state);
    waiters_call(&b->waiters);
    pthread_mutex_unlock(&b->mu);
}

static void make_room(struct wr_cache_store *st);

/* A new chunk at the body's end, counted; NULL when out of memory. */
static struct chunk *body_grow(struct wr_cache_store *st, struct wr_cache_body *b)
{
    struct chunk *c = malloc(sizeof(*c));
    if (!c)
        return NULL;
    atomic_init(&c->next, NULL);
    atomic_init(&c->len, 0);
    c->start = atomic_load_explicit(&b->len, memory_order_relaxed);
    b->counted += sizeof(*c);
    atomic_fetch_add(&st->bytes, sizeof(*c));
    if (b->tail)
        atomic_store_explicit(&b->tail->next, c, memory_order_release);
    else
        atomic_store_explicit(&b->first, c, memory_order_release);
    b->tail = c;
    return c;
}

int wr_cache_body_append(struct wr_cache_store *st, struct wr_cache_body *b, const void *data,
                         size_t len)
{
    if (atomic_load(&b->state) != WR_CACHE_BODY_FILLING)
        return -1;
    uint64_t have = atomic_load_explicit(&b->len, memory_order_relaxed);
    if (have + len > st->max_object_size) {
        body_settle(b, WR_CACHE_BODY_ABANDONED);
        return -1;
    }
    bool is_grown = false;
    const char *p = data;
    while (len > 0) {
        struct chunk *c = b->tail;
        size_t used = c ? atomic_load_explicit(&c->len, memory_order_relaxed) : WR_CACHE_CHUNK;
        if (used == WR_CACHE_CHUNK) {
            if (!(c = body_grow(st, b))) {
                body_settle(b, WR_CACHE_BODY_ABANDONED);
                return -1;
            }
            used = 0;
            is_grown = true;
        }
        size_t n = WR_CACHE_CHUNK - used < len ? WR_CACHE_CHUNK - used : len;
        memcpy(c->data + used, p, n);
        /* Bytes first, then the lengths readers load with acquire. */
        atomic_store_explicit(&c->len, used + n, memory_order_release);
        atomic_fetch_add_explicit(&b->len, n, memory_order_release);
        p += n;
        len -= n;
    }
    pthread_mutex_lock(&b->mu);
    waiters_call(&b->waiters);
    pthread_mutex_unlock(&b->mu);
    if (is_grown && atomic_load(&st->bytes) > st->max_size)
        make_room(st);
    return 0;
}

void wr_cache_body_end(struct wr_cache_store *st, struct wr_cache_body *b)
{
    (void)st;
    body_settle(b, WR_CACHE_BODY_COMPLETE);
}

void wr_cache_body_abandon(struct wr_cache_store *st, struct wr_cache_body *b)
{
    (void)st;
    body_settle(b, WR_CACHE_BODY_ABANDONED);
}

enum wr_cache_body_state wr_cache_body_read(const struct wr_cache_body *b,
                                            struct wr_cache_cursor *c, struct wr_str *out)
{
    /* The state first: COMPLETE seen before an empty read means the end. */
    enum wr_cache_body_state state = atomic_load_explicit(&b->state, memory_order_acquire);
    *out = (struct wr_str){NULL, 0};
    struct chunk *ch = (struct chunk *)c->chunk;
    if (!ch && !(ch = atomic_load_explicit(&((struct wr_cache_body *)b)->first,
                                           memory_order_acquire)))
        return state;
    for (;;) {
        size_t pos = (size_t)(c->offset - ch->start);
        size_t len = atomic_load_explicit(&ch->len, memory_order_acquire);
        if (len > pos) {
            *out = (struct wr_str){ch->data + pos, len - pos};
            c->chunk = ch;
            c->offset += len - pos;
            return state;
        }
        struct chunk *next = pos == WR_CACHE_CHUNK
                                 ? atomic_load_explicit(&ch->next, memory_order_acquire)
                                 : NULL;
        c->chunk = ch;
        if (!next)
            return state;
        ch = next;
    }
}

bool wr_cache_body_wait(struct wr_cache_body *b, uint64_t offset, struct wr_cache_waiter *w)
{
    pthread_mutex_lock(&b->mu);
    bool is_waiting = atomic_load(&b->state) == WR_CACHE_BODY_FILLING &&
                      atomic_load(&b->len) <= offset;
    if (is_waiting)
        waiter_add(&b->waiters, w);
    pthread_mutex_unlock(&b->mu);
    return is_waiting;
}

void wr_cache_body_wait_cancel(struct wr_cache_body *b, struct wr_cache_waiter *w)
{
    pthread_mutex_lock(&b->mu);
    waiter_unlink(w);
    pthread_mutex_unlock(&b->mu);
}

uint64_t wr_cache_body_len(const struct wr_cache_body *b)
{
    return atomic_load(&((struct wr_cache_body *)b)->len);
}

/* ---- entries --------------------------------------------------------------- */

static void entry_free(struct wr_cache_entry *e)
{
    wr_cache_body_unref(e->body);
    free(e);
}

void wr_cache_entry_ref(struct wr_cache_entry *e)
{
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
}

void wr_cache_entry_unref(struct wr_cache_entry *e)
{
    if (e && atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1) {
        struct wr_cache_store *st = e->body->st;
        atomic_fetch_sub(&st->bytes, e->counted);
        entry_free(e);
    }
}

struct wr_str wr_cache_entry_key(const struct wr_cache_entry *e)
{
    return (struct wr_str){e->bytes, e->key_len};
}

struct wr_str wr_cache_entry_secondary(const struct wr_cache_entry *e)
{
    return (struct wr_str){e->bytes + e->key_len, e->sec_len};
}

struct wr_str wr_cache_entry_head(const struct wr_cache_entry *e)
{
    return (struct wr_str){e->bytes + e->key_len + e->sec_len, e->head_len};
}

struct wr_str wr_cache_entry_meta(const struct wr_cache_entry *e)
{
    return (struct wr_str){e->bytes + e->key_len + e->sec_len + e->head_len, e->meta_len};
}

struct wr_cache_body *wr_cache_entry_body(const struct wr_cache_entry *e)
{
    return e->body;
}

uint64_t wr_cache_entry_stored_ms(const struct wr_cache_entry *e)
{
    return e->stored_ms;
}

static bool entry_is_key(const struct wr_cache_entry *e, uint64_t hash, struct wr_str key)
{
    return e->hash == hash && e->key_len == key.len && memcmp(e->bytes, key.ptr, key.len) == 0;
}

/* A list of entries taken out of the table under a shard lock, to be
 * released after it (a release may free, and frees take no lock). */
struct removed {
    struct wr_cache_entry *head;
};

/* Takes e out of its bucket and ring (shard lock held); the table's
 * reference moves to *out. */
static void unlink_entry(struct shard *sh, struct wr_cache_entry *e, struct removed *out)
{
    struct wr_cache_entry **pp = &sh->buckets[e->hash & sh->mask];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (e->cnext == e) {
        sh->hand = NULL;
    } else {
        e->cprev->cnext = e->cnext;
        e->cnext->cprev = e->cprev;
        if (sh->hand == e)
            sh->hand = e->cnext;
    }
    e->is_in_table = false;
    sh->n_entries--;
    e->hnext = out->head;
    out->head = e;
}

static void release_removed(struct removed *r)
{
    for (struct wr_cache_entry *e = r->head, *next; e; e = next) {
        next = e->hnext;
        wr_cache_entry_unref(e);
    }
    r->head = NULL;
}

/* Puts e in the table (shard lock held), behind the hand: the last the
 * hand reaches. */
static void link_entry(struct shard *sh, struct wr_cache_entry *e)
{
    struct wr_cache_entry **bucket = &sh->buckets[e->hash & sh->mask];
    e->hnext = *bucket;
    *bucket = e;
    if (!sh->hand) {
        e->cprev = e->cnext = e;
        sh->hand = e;
    } else {
        e->cnext = sh->hand;
        e->cprev = sh->hand->cprev;
        e->cprev->cnext = e;
        sh->hand->cprev = e;
    }
    e->is_in_table = true;
    sh->n_entries++;
}

/* ---- fill locks --------------------------------------------------------------- */

static struct fill_lock **lock_slot(struct shard *sh, uint64_t hash, struct wr_str key)
{
    struct fill_lock **pp = &sh->locks[(hash / WR_CACHE_SHARDS) % LOCK_BUCKETS];
    while (*pp && !((*pp)->hash == hash && (*pp)->key_len == key.len &&
                    memcmp((*pp)->key, key.ptr, key.len) == 0))
        pp = &(*pp)->next;
    return pp;
}

static struct fill_lock *lock_new(struct shard *sh, uint64_t hash, struct wr_str key)
{
    struct fill_lock *l = calloc(1, sizeof(*l) + key.len);
    if (!l)
        return NULL;
    l->hash = hash;
    l->key_len = key.len;
    memcpy(l->key, key.ptr, key.len);
    struct fill_lock **bucket = &sh->locks[(hash / WR_CACHE_SHARDS) % LOCK_BUCKETS];
    l->next = *bucket;
    *bucket = l;
    return l;
}

/* Lets the key's lock go (shard lock held): waiters told; the record stays
 * as a hit-for-miss mark until hfm_until_ms, or goes. */
static void lock_release(struct shard *sh, struct fill_lock **slot, uint64_t hfm_until_ms)
{
    struct fill_lock *l = *slot;
    (void)sh;
    l->is_held = false;
    waiters_call(&l->waiters);
    l->hfm_until_ms = hfm_until_ms;
    if (hfm_until_ms == 0) {
        *slot = l->next;
        free(l);
    }
}

/* ---- lookup ------------------------------------------------------------------- */

/* The first usable variant of key (shard lock held): one whose body was
 * not abandoned (those leave the table here) and that match accepts. */
static struct wr_cache_entry *find_variant(struct shard *sh, uint64_t hash, struct wr_str key,
                                           wr_cache_match_fn match, void *arg,
                                           struct removed *dead)
{
    struct wr_cache_entry *e = sh->buckets[hash & sh->mask];
    while (e) {
        struct wr_cache_entry *next = e->hnext;
        if (entry_is_key(e, hash, key)) {
            if (atomic_load(&e->body->state) == WR_CACHE_BODY_ABANDONED)
                unlink_entry(sh, e, dead);
            else if (!match || match(e, arg))
                return e;
        }
        e = next;
    }
    return NULL;
}

/* No variant matched: who fetches (shard lock held). */
static enum wr_cache_lookup_result miss(struct shard *sh, uint64_t hash, struct wr_str key,
                                        bool may_lock, struct wr_cache_waiter *w,
                                        uint64_t now_ms)
{
    struct fill_lock **slot = lock_slot(sh, hash, key);
    struct fill_lock *l = *slot;
    if (l && l->is_held) {
        if (!may_lock)
            return WR_CACHE_PASS;
        waiter_add(&l->waiters, w);
        return WR_CACHE_WAIT;
    }
    if (l && l->hfm_until_ms > now_ms)
        return WR_CACHE_PASS;
    if (!may_lock)
        return WR_CACHE_PASS;
    if (!l && !(l = lock_new(sh, hash, key)))
        return WR_CACHE_PASS;
    l->is_held = true;
    l->hfm_until_ms = 0;
    return WR_CACHE_MISS;
}

enum wr_cache_lookup_result wr_cache_lookup(struct wr_cache_store *st, struct wr_str key,
                                            wr_cache_match_fn match, void *match_arg,
                                            bool may_lock, struct wr_cache_waiter *w,
                                            uint64_t now_ms, struct wr_cache_entry **entry)
{
    uint64_t hash = hash_key(st, key);
    struct shard *sh = shard_of(st, hash);
    struct removed dead = {NULL};
    enum wr_cache_lookup_result res = WR_CACHE_HIT;
    *entry = NULL;
    pthread_mutex_lock(&sh->mu);
    struct wr_cache_entry *e = find_variant(sh, hash, key, match, match_arg, &dead);
    if (e) {
        e->clock_bit = true;
        e->last_hit_ms = now_ms;
        wr_cache_entry_ref(e);
        *entry = e;
    } else {
        res = miss(sh, hash, key, may_lock, w, now_ms);
    }
    pthread_mutex_unlock(&sh->mu);
    release_removed(&dead);
    return res;
}

void wr_cache_wait_cancel(struct wr_cache_store *st, struct wr_str key,
                          struct wr_cache_waiter *w)
{
    struct shard *sh = shard_of(st, hash_key(st, key));
    pthread_mutex_lock(&sh->mu);
    waiter_unlink(w);
    pthread_mutex_unlock(&sh->mu);
}

void wr_cache_unlock(struct wr_cache_store *st, struct wr_str key, bool hfm, uint64_t now_ms)
{
    uint64_t hash = hash_key(st, key);
    struct shard *sh = shard_of(st, hash);
    pthread_mutex_lock(&sh->mu);
    struct fill_lock **slot = lock_slot(sh, hash, key);
    if (*slot && (*slot)->is_held)
        lock_release(sh, slot, hfm ? now_ms + (st->hfm_ms ? st->hfm_ms : 1) : 0);
    pthread_mutex_unlock(&sh->mu);
}

/* ---- publishing and removal ------------------------------------------------- */

static struct wr_cache_entry *entry_new(struct wr_str key, struct wr_str secondary,
                                        struct wr_str head, struct wr_str meta)
{
    size_t n = key.len + secondary.len + head.len + meta.len;
    struct wr_cache_entry *e = calloc(1, sizeof(*e) + n);
    if (!e)
        return NULL;
    e->counted = sizeof(*e) + n;
    e->key_len = key.len;
    e->sec_len = secondary.len;
    e->head_len = head.len;
    e->meta_len = meta.len;
    char *p = e->bytes;
    const struct wr_str parts[] = {key, secondary, head, meta};
    for (size_t i = 0; i < 4; i++) {
        if (parts[i].len)
            memcpy(p, parts[i].ptr, parts[i].len);
        p += parts[i].len;
    }
    return e;
}

/* The entry of key with exactly secondary (shard lock held), or NULL. */
static struct wr_cache_entry *find_exact(struct shard *sh, uint64_t hash, struct wr_str key,
                                         struct wr_str secondary)
{
    for (struct wr_cache_entry *e = sh->buckets[hash & sh->mask]; e; e = e->hnext) {
        struct wr_str sec = wr_cache_entry_secondary(e);
        if (entry_is_key(e, hash, key) && sec.len == secondary.len &&
            (sec.len == 0 || memcmp(sec.ptr, secondary.ptr, sec.len) == 0))
            return e;
    }
    return NULL;
}

struct wr_cache_entry *wr_cache_publish(struct wr_cache_store *st, struct wr_str key,
                                        struct wr_str secondary, struct wr_str head,
                                        struct wr_str meta, struct wr_cache_body *body,
                                        bool held_lock, uint64_t now_ms)
{
    uint64_t hash = hash_key(st, key);
    struct shard *sh = shard_of(st, hash);
    struct wr_cache_entry *e = NULL;
    if (key.len + secondary.len + head.len + meta.len <= st->max_size / 8)
        e = entry_new(key, secondary, head, meta);
    if (!e) {
        if (held_lock)
            wr_cache_unlock(st, key, false, now_ms);
        return NULL;
    }
    atomic_init(&e->refs, 2); /* the table's and the caller's */
    e->shard = sh;
    e->hash = hash;
    e->stored_ms = e->last_hit_ms = now_ms;
    e->body = body;
    wr_cache_body_ref(body);
    atomic_fetch_add(&st->bytes, e->counted);
    struct removed dead = {NULL};
    pthread_mutex_lock(&sh->mu);
    struct wr_cache_entry *old = find_exact(sh, hash, key, secondary);
    if (old)
        unlink_entry(sh, old, &dead);
    link_entry(sh, e);
    struct fill_lock **slot = lock_slot(sh, hash, key);
    if (held_lock && *slot && (*slot)->is_held)
        lock_release(sh, slot, 0);
    pthread_mutex_unlock(&sh->mu);
    release_removed(&dead);
    if (atomic_load(&st->bytes) > st->max_size)
        make_room(st);
    return e;
}

void wr_cache_remove(struct wr_cache_store *st, struct wr_cache_entry *e)
{
    (void)st;
    struct shard *sh = e->shard;
    struct removed dead = {NULL};
    pthread_mutex_lock(&sh->mu);
    if (e->is_in_table)
        unlink_entry(sh, e, &dead);
    pthread_mutex_unlock(&sh->mu);
    release_removed(&dead);
}

/* CLOCK in sh (its lock held): evicts the first entry found with its bit
 * clear, clearing bits on the way, at most one turn of the ring (so a hot
 * entry alone in its shard is passed over for the other shards' entries,
 * not evicted on the second look). *steps counts the entries looked at.
 * True when one went. */
static bool evict_one(struct shard *sh, struct removed *dead, unsigned *steps)
{
    for (uint64_t turn = sh->n_entries; sh->hand && turn > 0 && *steps < EVICT_STEPS; turn--) {
        struct wr_cache_entry *e = sh->hand;
        (*steps)++;
        if (e->clock_bit) {
            e->clock_bit = false;
            sh->hand = e->cnext;
            continue;
        }
        unlink_entry(sh, e, dead);
        sh->evictions++;
        return true;
    }
    return false;
}

/* Evicts until the bytes fit max_size or EVICT_STEPS entries were looked
 * at, one shard at a time in turn (bytes readers still hold do not go
 * down at once: the step bound keeps that from emptying the store). Two
 * rounds of shards without an eviction end it: the first may only have
 * cleared bits. */
static void make_room(struct wr_cache_store *st)
{
    unsigned steps = 0, empty = 0;
    while (steps < EVICT_STEPS && empty < 2 * WR_CACHE_SHARDS &&
           atomic_load(&st->bytes) > st->max_size) {
        unsigned turn = atomic_fetch_add(&st->evict_turn, 1) % WR_CACHE_SHARDS;
        struct shard *sh = &st->shards[turn];
        struct removed dead = {NULL};
        pthread_mutex_lock(&sh->mu);
        bool is_evicted = evict_one(sh, &dead, &steps);
        pthread_mutex_unlock(&sh->mu);
        release_removed(&dead);
        empty = is_evicted ? 0 : empty + 1;
    }
}

/* Drops a hit-for-miss mark of key (shard lock held): a purge starts over. */
static void drop_mark(struct shard *sh, uint64_t hash, struct wr_str key)
{
    struct fill_lock **slot = lock_slot(sh, hash, key);
    struct fill_lock *l = *slot;
    if (l && !l->is_held) {
        *slot = l->next;
        free(l);
    }
}

size_t wr_cache_purge_key(struct wr_cache_store *st, struct wr_str key)
{
    uint64_t hash = hash_key(st, key);
    struct shard *sh = shard_of(st, hash);
    struct removed dead = {NULL};
    size_t n = 0;
    pthread_mutex_lock(&sh->mu);
    for (struct wr_cache_entry *e = sh->buckets[hash & sh->mask], *next; e; e = next) {
        next = e->hnext;
        if (entry_is_key(e, hash, key)) {
            unlink_entry(sh, e, &dead);
            n++;
        }
    }
    drop_mark(sh, hash, key);
    pthread_mutex_unlock(&sh->mu);
    release_removed(&dead);
    return n;
}

/* Removes the entries of sh that pred keeps (its lock held); counts them. */
static size_t remove_where(struct shard *sh, bool (*pred)(const struct wr_cache_entry *, void *),
                           void *arg, struct removed *dead)
{
    size_t n = 0;
    for (size_t b = 0; b <= sh->mask; b++) {
        for (struct wr_cache_entry *e = sh->buckets[b], *next; e; e = next) {
            next = e->hnext;
            if (pred(e, arg)) {
                unlink_entry(sh, e, dead);
                n++;
            }
        }
    }
    return n;
}

static bool has_prefix(const struct wr_cache_entry *e, void *arg)
{
    return wr_str_has_prefix(wr_cache_entry_key(e), *(const struct wr_str *)arg);
}

size_t wr_cache_purge_prefix(struct wr_cache_store *st, struct wr_str prefix)
{
    size_t n = 0;
    for (size_t i = 0; i < WR_CACHE_SHARDS; i++) {
        struct shard *sh = &st->shards[i];
        struct removed dead = {NULL};
        pthread_mutex_lock(&sh->mu);
        n += remove_where(sh, has_prefix, &prefix, &dead);
        pthread_mutex_unlock(&sh->mu);
        release_removed(&dead);
    }
    return n;
}

struct sweep_arg {
    uint64_t now_ms, inactive_ms;
};

static bool is_inactive(const struct wr_cache_entry *e, void *arg)
{
    const struct sweep_arg *a = arg;
    return a->inactive_ms > 0 && e->last_hit_ms + a->inactive_ms <= a->now_ms;
}

/* Frees hit-for-miss marks past their time (shard lock held). */
static void sweep_marks(struct shard *sh, uint64_t now_ms)
{
    for (size_t b = 0; b < LOCK_BUCKETS; b++) {
        for (struct fill_lock **pp = &sh->locks[b]; *pp;) {
            struct fill_lock *l = *pp;
            if (!l->is_held && l->hfm_until_ms <= now_ms) {
                *pp = l->next;
                free(l);
            } else {
                pp = &l->next;
            }
        }
    }
}

size_t wr_cache_store_sweep(struct wr_cache_store *st, uint64_t now_ms)
{
    struct sweep_arg a = {now_ms, st->inactive_ms};
    size_t n = 0;
    for (size_t i = 0; i < WR_CACHE_SHARDS; i++) {
        struct shard *sh = &st->shards[i];
        struct removed dead = {NULL};
        pthread_mutex_lock(&sh->mu);
        size_t k = remove_where(sh, is_inactive, &a, &dead);
        sh->inactive += k;
        sweep_marks(sh, now_ms);
        pthread_mutex_unlock(&sh->mu);
        release_removed(&dead);
        n += k;
    }
    return n;
}

void wr_cache_store_stats(struct wr_cache_store *st, struct wr_cache_stats *out)
{
    *out = (struct wr_cache_stats){.bytes = atomic_load(&st->bytes)};
    for (size_t i = 0; i < WR_CACHE_SHARDS; i++) {
        struct shard *sh = &st->shards[i];
        pthread_mutex_lock(&sh->mu);
        out->entries += sh->n_entries;
        out->evictions += sh->evictions;
        out->inactive += sh->inactive;
        pthread_mutex_unlock(&sh->mu);
    }
}
