/*
 * Unit tests for cache_store: lookups and fill locks (MISS, WAIT, PASS,
 * hit-for-miss), variants, bodies read while they are written (across
 * chunk boundaries, with waiters), max_object_size, CLOCK eviction within
 * max_size, purges, the inactive sweep, and threads: one filler and many
 * readers on other threads, and a burst of lookups for one cold key that
 * gives exactly one MISS.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weir/cache_store.h"

#define MIB (1024u * 1024u)

static void count_call(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

/* Accepts the variant whose secondary key is the one given. */
static bool match_secondary(const struct wr_cache_entry *e, void *arg)
{
    struct wr_str want = wr_str_from_cstr(arg);
    struct wr_str sec = wr_cache_entry_secondary(e);
    return sec.len == want.len && memcmp(sec.ptr, want.ptr, sec.len) == 0;
}

/* A published entry for key with a complete body "body of KEY"; the
 * caller's reference is dropped (the table keeps one). */
static void put(struct wr_cache_store *st, const char *key, const char *sec, uint64_t now)
{
    struct wr_cache_body *b = wr_cache_body_new(st, UINT64_MAX);
    assert_non_null(b);
    char text[256];
    snprintf(text, sizeof(text), "body of %s", key);
    assert_int_equal(wr_cache_body_append(st, b, text, strlen(text)), 0);
    wr_cache_body_end(st, b);
    struct wr_cache_entry *e = wr_cache_publish(st, wr_str_from_cstr(key), wr_str_from_cstr(sec),
                                                WR_STR("HTTP/1.1 200 OK\r\n\r\n"), WR_STR("m"), b,
                                                false, now);
    assert_non_null(e);
    wr_cache_body_unref(b);
    wr_cache_entry_unref(e);
}

static enum wr_cache_lookup_result look(struct wr_cache_store *st, const char *key,
                                        struct wr_cache_waiter *w, uint64_t now,
                                        struct wr_cache_entry **e)
{
    return wr_cache_lookup(st, wr_str_from_cstr(key), NULL, NULL, true, w, now, e);
}

static void issue_20_store_miss_wait_publish_hit(void **state)
{
    (void)state;
    struct wr_cache_store *st = wr_cache_store_new(MIB, MIB, 1000, 0);
    assert_non_null(st);
    struct wr_cache_entry *e;
    atomic_int called = 0;
    struct wr_cache_waiter w = {.fn = count_call, .arg = &called};
    assert_int_equal(look(st, "/a", &w, 1, &e), WR_CACHE_MISS);
    assert_null(e);
    assert_int_equal(look(st, "/a", &w, 2, &e), WR_CACHE_WAIT);
    /* may_lock false never waits */
    struct wr_cache_waiter w2 = {.fn = count_call, .arg = &called};
    assert_int_equal(wr_cache_lookup(st, WR_STR("/a"), NULL, NULL, false, &w2, 2, &e),
                     WR_CACHE_PASS);
    assert_int_equal(atomic_load(&called), 0);

    struct wr_cache_body *b = wr_cache_body_new(st, 5);
    assert_int_equal(wr_cache_body_append(st, b, "hello", 5), 0);
    struct wr_cache_entry *pub = wr_cache_publish(st, WR_STR("/a"), WR_STR(""), WR_STR("HEAD"),
                                                  WR_STR("META"), b, true, 3);
    assert_non_null(pub);
    assert_int_equal(atomic_load(&called), 1); /* the waiter, once */
    assert_int_equal(look(st, "/a", &w, 4, &e), WR_CACHE_HIT);
    assert_ptr_equal(e, pub);
    assert_memory_equal(wr_cache_entry_key(e).ptr, "/a", 2);
    assert_int_equal(wr_cache_entry_head(e).len, 4);
    assert_memory_equal(wr_cache_entry_head(e).ptr, "HEAD", 4);
    assert_memory_equal(wr_cache_entry_meta(e).ptr, "META", 4);
    assert_int_equal(wr_cache_entry_stored_ms(e), 3);
    assert_int_equal(wr_cache_body_len(wr_cache_entry_body(e)), 5);
    wr_cache_entry_unref(e);
    wr_cache_entry_unref(pub);
    wr_cache_body_end(st, b);
    wr_cache_body_unref(b);
    struct wr_cache_stats s;
    wr_cache_store_stats(st, &s);
    assert_int_equal(s.entries, 1);
    assert_true(s.bytes > WR_CACHE_CHUNK);
    wr_cache_store_free(st);
}

static void issue_20_store_unlock_and_hit_for_miss(void **state)
{
    (void)state;
    struct wr_cache_store *st = wr_cache_store_new(MIB, MIB, 500, 0);
    struct wr_cache_entry *e;
    atomic_int called = 0;
    struct wr_cache_waiter w = {.fn = count_call, .arg = &called};
    struct wr_cache_waiter gone = {.fn = count_call, .arg = &called};
    assert_int_equal(look(st, "/u", &w, 10, &e), WR_CACHE_MISS);
    assert_int_equal(look(st, "/u", &w, 10, &e), WR_CACHE_WAIT);
    assert_int_equal(look(st, "/u", &gone, 10, &e), WR_CACHE_WAIT);
    wr_cache_wait_cancel(st, WR_STR("/u"), &gone); /* never called now */
    /* Plain unlock: waiters told, and the next lookup may lock. */
    wr_cache_unlock(st, WR_STR("/u"), false, 11);
    assert_int_equal(atomic_load(&called), 1);
    assert_int_equal(look(st, "/u", &w, 12, &e), WR_CACHE_MISS);
    /* Uncacheable: a hit-for-miss mark for 500 ms makes lookups PASS. */
    wr_cache_unlock(st, WR_STR("/u"), true, 20);
    assert_int_equal(look(st, "/u", &w, 21, &e), WR_CACHE_PASS);
    assert_int_equal(look(st, "/u", &w, 519, &e), WR_CACHE_PASS);
    assert_int_equal(look(st, "/u", &w, 520, &e), WR_CACHE_MISS);
    wr_cache_unlock(st, WR_STR("/u"), true, 600);
    /* A purge drops the mark at once; the sweep drops expired ones. */
    wr_cache_purge_key(st, WR_STR("/u"));
    assert_int_equal(look(st, "/u", &w, 601, &e), WR_CACHE_MISS);
    wr_cache_unlock(st, WR_STR("/u"), true, 700);
    wr_cache_store_sweep(st, 1200);
    assert_int_equal(look(st, "/u", &w, 1201, &e), WR_CACHE_MISS);
    wr_cache_unlock(st, WR_STR("/u"), false, 1202);
    assert_int_equal(atomic_load(&called), 1);
    wr_cache_store_free(st);
}

static void issue_20_store_variants(void **state)
{
    (void)state;
    struct wr_cache_store *st = wr_cache_store_new(MIB, MIB, 1000, 0);
    put(st, "/v", "gzip", 1);
    put(st, "/v", "br", 1);
    struct wr_cache_entry *e;
    struct wr_cache_waiter w = {.fn = count_call, .arg = NULL};
    assert_int_equal(wr_cache_lookup(st, WR_STR("/v"), match_secondary, "br", true, &w, 2, &e),
                     WR_CACHE_HIT);
    assert_memory_equal(wr_cache_entry_secondary(e).ptr, "br", 2);
    struct wr_cache_entry *br = e;
    assert_int_equal(wr_cache_lookup(st, WR_STR("/v"), match_secondary, "gzip", true, &w, 2, &e),
                     WR_CACHE_HIT);
    assert_memory_equal(wr_cache_entry_secondary(e).ptr, "gzip", 4);
    wr_cache_entry_unref(e);
    /* No variant for zstd: the caller fetches it (under the key's lock). */
    assert_int_equal(wr_cache_lookup(st, WR_STR("/v"), match_secondary, "zstd", true, &w, 2, &e),
                     WR_CACHE_MISS);
    wr_cache_unlock(st, WR_STR("/v"), false, 2);
    /* The same secondary again replaces; the old reader keeps its entry. */
    put(st, "/v", "br", 3);
    assert_int_equal(wr_cache_lookup(st, WR_STR("/v"), match_secondary, "br", true, &w, 4, &e),
                     WR_CACHE_HIT);
    assert_ptr_not_equal(e, br);
    assert_int_equal(wr_cache_entry_stored_ms(e), 3);
    assert_memory_equal(wr_cache_entry_key(br).ptr, "/v", 2);
    wr_cache_entry_unref(e);
    wr_cache_entry_unref(br);
    struct wr_cache_stats s;
    wr_cache_store_stats(st, &s);
    assert_int_equal(s.entries, 2);
    assert_int_equal(wr_cache_purge_key(st, WR_STR("/v")), 2);
    wr_cache_store_stats(st, &s);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.bytes, 0); /* nothing held: everything freed */
    wr_cache_store_free(st);
}

/* Reads everything available from b after c into out; returns the state. */
static enum wr_cache_body_state drain(const struct wr_cache_body *b, struct wr_cache_cursor *c,
                                      char *out, size_t cap, size_t *len)
{
    for (;;) {
        struct wr_str piece;
        enum wr_cache_body_state s = wr_cache_body_read(b, c, &piece);
        if (piece.len == 0)
            return s;
        assert_true(*len + piece.len <= cap);
        memcpy(out + *len, piece.ptr, piece.len);
        *len += piece.len;
    }
}

static void issue_20_body_streams_across_chunks(void **state)
{
    (void)state;
    struct wr_cache_store *st = wr_cache_store_new(4 * MIB, MIB, 1000, 0);
    struct wr_cache_body *b = wr_cache_body_new(st, UINT64_MAX);
    size_t total = 3 * WR_CACHE_CHUNK + 123;
    char *want = malloc(total), *got = malloc(total);
    for (size_t i = 0; i < total; i++)
        want[i] = (char)(i * 7 + i / 251);
    struct wr_cache_cursor c = {0};
    size_t got_len = 0;
    atomic_int called = 0;
    struct wr_cache_waiter w = {.fn = count_call, .arg = &called};
    assert_int_equal(drain(b, &c, got, total, &got_len), WR_CACHE_BODY_FILLING);
    assert_true(wr_cache_body_wait(b, c.offset, &w)); /* nothing yet: registered */
    size_t at = 0;
    const size_t steps[] = {1, WR_CACHE_CHUNK - 2, 1, 2, WR_CACHE_CHUNK * 2, 117};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        assert_int_equal(wr_cache_body_append(st, b, want + at, steps[i]), 0);
        at += steps[i];
        assert_int_equal(atomic_load(&called), 1); /* called on the first, once */
        assert_int_equal(drain(b, &c, got, total, &got_len), WR_CACHE_BODY_FILLING);
        assert_int_equal(got_len, at);
        assert_int_equal(c.offset, at);
    }
    assert_int_equal(wr_cache_body_append(st, b, want + at, total - at), 0);
    assert_false(wr_cache_body_wait(b, c.offset, &w)); /* more is there: read at once */
    wr_cache_body_end(st, b);
    assert_int_equal(drain(b, &c, got, total, &got_len), WR_CACHE_BODY_COMPLETE);
    assert_int_equal(got_len, total);
    assert_memory_equal(got, want, total);
    assert_false(wr_cache_body_wait(b, c.offset, &w)); /* complete: nothing to wait for */
    /* A second reader from the start sees the same bytes. */
    struct wr_cache_cursor c2 = {0};
    size_t len2 = 0;
    memset(got, 0, total);
    assert_int_equal(drain(b, &c2, got, total, &len2), WR_CACHE_BODY_COMPLETE);
    assert_int_equal(len2, total);
    assert_memory_equal(got, want, total);
    assert_int_equal(wr_cache_body_append(st, b, "x", 1), -1); /* ended */
    wr_cache_body_unref(b);
    struct wr_cache_stats s;
    wr_cache_store_stats(st, &s);
    assert_int_equal(s.bytes, 0);
    free(want);
    free(got);
    wr_cache_store_free(st);
}

static void issue_20_body_max_object_size(void **state)
{
    (void)state;
    struct wr_cache_store *st = wr_cache_store_new(4 * MIB, 1000, 1000, 0);
    assert_null(wr_cache_body_new(st, 1001)); /* known too large: not stored */
    struct wr_cache_body *b = wr_cache_body_new(st, UINT64_MAX);
    char buf[600] = {0};
    atomic_int called = 0;
    struct wr_cache_waiter w = {.fn = count_call, .arg = &called};
    assert_int_equal(wr_cache_body_append(st, b, buf, 600), 0);
    struct wr_cache_entry *e = wr_cache_publish(st, WR_STR("/big"), WR_STR(""), WR_STR("H"),
                                                WR_STR(""), b, false, 1);
    assert_true(wr_cache_body_wait(b, 600, &w));
    /* Growing past max_object_size abandons the body; readers are told. */
    assert_int_equal(wr_cache_body_append(st, b, buf, 401), -1);
    assert_int_equal(atomic_load(&called), 1);
    struct wr_cache_cursor c = {.offset = 0};
    struct wr_str piece;
    assert_int_equal(wr_cache_body_read(b, &c, &piece), WR_CACHE_BODY_ABANDONED);
    /* ... and the next lookup drops the entry that holds it. */
    struct wr_cache_entry *hit;
    struct wr_cache_waiter w2 = {.fn = count_call, .arg = &called};
    assert_int_equal(look(st, "/big", &w2, 2, &hit), WR_CACHE_MISS);
    wr_cache_unlock(st, WR_STR("/big"), false, 2);
    struct wr_cache_stats s;
    wr_cache_store_stats(st, &s);
    assert_int_equal(s.entries, 0);
    wr_cache_entry_unref(e);
    wr_cache_body_unref(b);
    wr_cache_store_stats(st, &s);
    assert_int_equal(s.bytes, 0);
    wr_cache_store_free(st);
}

/* Entries of about one chunk each in a store of ten chunks: a key hit
 * between inserts keeps its CLOCK bit and survives; the bytes stay within
 * max_size once nothing is held. */
static void issue_20_store_clock_eviction(void **state)
{
    (void)state;
    uint64_t max = 10 * (WR_CACHE_CHUNK + 512);
    struct wr_cache_store *st = wr_cache_store_new(max, MIB, 1000, 0);
    struct wr_cache_waiter w = {.fn = count_call, .arg = NULL};
    struct wr_cache_entry *e;
    char key[32];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "/k%d", i);
        put(st, key, "", (uint64_t)i);
        assert_int_equal(look(st, "/k0", &w, (uint64_t)i, &e), WR_CACHE_HIT); /* hot */
        wr_cache_entry_unref(e);
        struct wr_cache_stats s;
        wr_cache_store_stats(st, &s);
        assert_true(s.bytes <= max);
    }
    struct wr_cache_stats s;
    wr_cache_store_stats(st, &s);
    assert_true(s.evictions >= 85);
    assert_true(s.entries >= 5 && s.entries <= 10);
    assert_int_equal(look(st, "/k99", &w, 200, &e), WR_CACHE_HIT); /* the newest */
    wr_cache_entry_unref(e);
    assert_int_equal(look(st, "/k1", &w, 200, &e), WR_CACHE_MISS); /* long gone */
    wr_cache_unlock(st, WR_STR("/k1"), false, 200);
    wr_cache_store_free(st);
}

static void issue_20_store_purge_and_sweep(void **state)
{
    (void)state;
    struct wr_cache_store *st = wr_cache_store_new(MIB * 8, MIB, 1000, 10000);
    put(st, "https://a.example/x/1", "", 0);
    put(st, "https://a.example/x/2", "", 0);
    put(st, "https://a.example/y", "", 0);
    put(st, "https://b.example/x/1", "", 0);
    assert_int_equal(wr_cache_purge_prefix(st, WR_STR("https://a.example/x/")), 2);
    assert_int_equal(wr_cache_purge_key(st, WR_STR("https://a.example/x/1")), 0);
    struct wr_cache_waiter w = {.fn = count_call, .arg = NULL};
    struct wr_cache_entry *e;
    assert_int_equal(look(st, "https://b.example/x/1", &w, 9000, &e), WR_CACHE_HIT);
    wr_cache_entry_unref(e);
    /* Not hit for inactive (10 s): the sweep takes it; the one hit stays. */
    assert_int_equal(wr_cache_store_sweep(st, 9999), 0);
    assert_int_equal(wr_cache_store_sweep(st, 10000), 1);
    assert_int_equal(look(st, "https://b.example/x/1", &w, 10001, &e), WR_CACHE_HIT);
    wr_cache_entry_unref(e);
    struct wr_cache_stats s;
    wr_cache_store_stats(st, &s);
    assert_int_equal(s.entries, 1);
    assert_int_equal(s.inactive, 1);
    wr_cache_store_free(st);
}

/* ---- threads ------------------------------------------------------------------- */

/* A waiter that wakes one thread blocked on a condition variable. */
struct wakeup {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool is_set;
};

static void wake(void *arg)
{
    struct wakeup *k = arg;
    pthread_mutex_lock(&k->mu);
    k->is_set = true;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

static void wait_wakeup(struct wakeup *k)
{
    pthread_mutex_lock(&k->mu);
    while (!k->is_set)
        pthread_cond_wait(&k->cv, &k->mu);
    k->is_set = false;
    pthread_mutex_unlock(&k->mu);
}

#define STREAM_LEN (MIB + 777)
#define READERS 4

struct reader_arg {
    struct wr_cache_body *body;
    const char *want;
    size_t got;
    bool is_equal;
};

static void *reader(void *p)
{
    struct reader_arg *a = p;
    struct wakeup k = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    struct wr_cache_waiter w = {.fn = wake, .arg = &k};
    struct wr_cache_cursor c = {0};
    a->is_equal = true;
    for (;;) {
        struct wr_str piece;
        enum wr_cache_body_state s = wr_cache_body_read(a->body, &c, &piece);
        if (piece.len > 0) {
            a->is_equal &= memcmp(piece.ptr, a->want + a->got, piece.len) == 0;
            a->got += piece.len;
            continue;
        }
        if (s != WR_CACHE_BODY_FILLING)
            break;
        if (wr_cache_body_wait(a->body, c.offset, &w))
            wait_wakeup(&k);
    }
    return NULL;
}

static void issue_20_body_one_writer_many_readers(void **state)
{
    (void)state;
    struct wr_cache_store *st = wr_cache_store_new(8 * MIB, 4 * MIB, 1000, 0);
    struct wr_cache_body *b = wr_cache_body_new(st, STREAM_LEN);
    char *want = malloc(STREAM_LEN);
    for (size_t i = 0; i < STREAM_LEN; i++)
        want[i] = (char)(i ^ (i >> 9));
    pthread_t t[READERS];
    struct reader_arg args[READERS];
    for (int i = 0; i < READERS; i++) {
        args[i] = (struct reader_arg){.body = b, .want = want};
        assert_int_equal(pthread_create(&t[i], NULL, reader, &args[i]), 0);
    }
    unsigned seed = 7;
    for (size_t at = 0; at < STREAM_LEN;) {
        size_t n = 1 + (size_t)(rand_r(&seed) % 40000);
        if (n > STREAM_LEN - at)
            n = STREAM_LEN - at;
        assert_int_equal(wr_cache_body_append(st, b, want + at, n), 0);
        at += n;
    }
    wr_cache_body_end(st, b);
    for (int i = 0; i < READERS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(args[i].got, STREAM_LEN);
        assert_true(args[i].is_equal);
    }
    wr_cache_body_unref(b);
    free(want);
    wr_cache_store_free(st);
}

#define BURST 8

struct burst_arg {
    struct wr_cache_store *st;
    pthread_barrier_t *start;
    atomic_int *n_miss;
    enum wr_cache_lookup_result first;
    bool is_hit_after_wait;
};

/* One request of a cold-key burst: the MISS publishes; a WAIT waits for
 * the wake-up and must then HIT. */
static void *burst(void *p)
{
    struct burst_arg *a = p;
    struct wakeup k = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    struct wr_cache_waiter w = {.fn = wake, .arg = &k};
    struct wr_cache_entry *e;
    pthread_barrier_wait(a->start);
    a->first = look(a->st, "/cold", &w, 1, &e);
    if (a->first == WR_CACHE_MISS) {
        atomic_fetch_add(a->n_miss, 1);
        put(a->st, "/cold", "", 2); /* not the lock holder's publish: */
        wr_cache_unlock(a->st, WR_STR("/cold"), false, 2); /* ... so unlock too */
    } else if (a->first == WR_CACHE_WAIT) {
        wait_wakeup(&k);
        a->is_hit_after_wait = look(a->st, "/cold", &w, 3, &e) == WR_CACHE_HIT;
        if (a->is_hit_after_wait)
            wr_cache_entry_unref(e);
    } else if (a->first == WR_CACHE_HIT) {
        wr_cache_entry_unref(e);
    }
    return NULL;
}

static void issue_20_store_cold_burst_one_miss(void **state)
{
    (void)state;
    for (int round = 0; round < 20; round++) {
        struct wr_cache_store *st = wr_cache_store_new(MIB, MIB, 1000, 0);
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, BURST);
        atomic_int n_miss = 0;
        pthread_t t[BURST];
        struct burst_arg args[BURST];
        for (int i = 0; i < BURST; i++) {
            args[i] = (struct burst_arg){.st = st, .start = &start, .n_miss = &n_miss};
            assert_int_equal(pthread_create(&t[i], NULL, burst, &args[i]), 0);
        }
        for (int i = 0; i < BURST; i++)
            pthread_join(t[i], NULL);
        assert_int_equal(atomic_load(&n_miss), 1);
        for (int i = 0; i < BURST; i++) {
            assert_true(args[i].first != WR_CACHE_PASS);
            if (args[i].first == WR_CACHE_WAIT)
                assert_true(args[i].is_hit_after_wait);
        }
        pthread_barrier_destroy(&start);
        wr_cache_store_free(st);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issue_20_store_miss_wait_publish_hit),
        cmocka_unit_test(issue_20_store_unlock_and_hit_for_miss),
        cmocka_unit_test(issue_20_store_variants),
        cmocka_unit_test(issue_20_body_streams_across_chunks),
        cmocka_unit_test(issue_20_body_max_object_size),
        cmocka_unit_test(issue_20_store_clock_eviction),
        cmocka_unit_test(issue_20_store_purge_and_sweep),
        cmocka_unit_test(issue_20_body_one_writer_many_readers),
        cmocka_unit_test(issue_20_store_cold_burst_one_miss),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
