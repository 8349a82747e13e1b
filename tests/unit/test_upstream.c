/*
 * Unit tests for upstream.c: the balancers (sequences, weights, loads,
 * consistent hashing), tried_mask, passive health with an injected clock,
 * the hash key of a request, carrying health across a reload, and the
 * active checker against real sockets opened here (TCP, unix, and TLS with
 * a throwaway certificate: probes run on the stream, issue 14), run on a
 * private event base with every wait bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <signal.h>

#include "testcert.h"
#include "weir/clock.h"
#include "weir/stream.h"
#include "weir/tls.h"
#include "weir/upstream.h"

#define SERVER_SECTION "[server]\nlisten = 127.0.0.1:8080\n"
#define T0 1000000u /* an arbitrary "now" in ms; 0 is never used as a time */

static struct wr_config *load(const char *upstreams)
{
    char text[8192];
    snprintf(text, sizeof(text), "%s%s", SERVER_SECTION, upstreams);
    struct wr_config_errors errs = {0};
    struct wr_config *cfg = wr_config_parse_string(text, "t.ini", &errs);
    for (size_t i = 0; i < errs.n_lines; i++)
        print_error("unexpected: %s\n", errs.lines[i]);
    assert_int_equal(errs.n_lines, 0);
    assert_non_null(cfg);
    wr_config_errors_fini(&errs);
    return cfg;
}

static int pick(struct wr_balancer *b, const struct wr_upstream_cfg *up, const char *key)
{
    return wr_balancer_pick(b, up, wr_str_from_cstr(key), NULL, T0);
}

/* A tried set of one word (servers 0..63) for the small pools below. */
#define TRIED(mask) ((const uint64_t[]){(mask)})

/* ---- round robin ------------------------------------------------------------ */

static void test_swrr_sequence(void **state)
{
    (void)state;
    struct wr_config *cfg = load("[upstream u]\nserver = 10.0.0.1:80 weight=5\n"
                                 "server = 10.0.0.2:80\nserver = 10.0.0.3:80\n");
    struct wr_balancer *b = wr_balancer_new(cfg);
    assert_non_null(b);
    const int want[] = {0, 0, 1, 0, 2, 0, 0}; /* a a b a c a a, then again */
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < 7; i++)
            assert_int_equal(pick(b, &cfg->upstreams[0], ""), want[i]);
    }
    wr_balancer_free(b);
    wr_config_unref(cfg);
}

static void count_picks(struct wr_balancer *b, const struct wr_upstream_cfg *up, int n,
                        int *counts)
{
    char key[32];
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        int s = pick(b, up, key);
        assert_true(s >= 0 && (size_t)s < up->n_servers);
        counts[s]++;
    }
}

static void test_weights_respected(void **state)
{
    (void)state;
    static const char *const balances[] = {"round_robin", "least_conn", "random", "hash"};
    for (size_t k = 0; k < 4; k++) {
        char text[512];
        snprintf(text, sizeof(text),
                 "[upstream u]\nbalance = %s\nserver = 10.0.0.1:80 weight=3\n"
                 "server = 10.0.0.2:80 weight=2\nserver = 10.0.0.3:80\n",
                 balances[k]);
        struct wr_config *cfg = load(text);
        struct wr_balancer *b = wr_balancer_new(cfg);
        int counts[3] = {0};
        count_picks(b, &cfg->upstreams[0], 6000, counts);
        /* Exact for the deterministic ones; a wide margin for random and
         * hash (expected 3000/2000/1000, sd < 40; ring spread a few %). */
        int slack = k < 2 ? 1 : 300;
        assert_in_range(counts[0], 3000 - slack, 3000 + slack);
        assert_in_range(counts[1], 2000 - slack, 2000 + slack);
        assert_in_range(counts[2], 1000 - slack, 1000 + slack);
        wr_balancer_free(b);
        wr_config_unref(cfg);
    }
}

/* ---- least_conn and p2c ----------------------------------------------------- */

static void test_least_conn(void **state)
{
    (void)state;
    struct wr_config *cfg = load("[upstream u]\nbalance = least_conn\nserver = 10.0.0.1:80\n"
                                 "server = 10.0.0.2:80\nserver = 10.0.0.3:80\n"
                                 "[upstream w]\nbalance = least_conn\n"
                                 "server = 10.0.0.1:80 weight=4\nserver = 10.0.0.2:80\n");
    struct wr_balancer *b = wr_balancer_new(cfg);
    const struct wr_upstream_cfg *u = &cfg->upstreams[0], *w = &cfg->upstreams[1];
    /* Idle servers take turns: not always index 0. */
    int seen[3] = {0};
    for (int i = 0; i < 3; i++)
        seen[pick(b, u, "")]++;
    assert_int_equal(seen[0] + seen[1] + seen[2], 3);
    assert_true(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);
    wr_balancer_begin(b, u, 0);
    wr_balancer_begin(b, u, 0);
    wr_balancer_begin(b, u, 1);
    assert_int_equal(wr_balancer_active(b, u, 0), 2);
    for (int i = 0; i < 5; i++)
        assert_int_equal(pick(b, u, ""), 2);
    wr_balancer_begin(b, u, 2);
    wr_balancer_begin(b, u, 2);
    assert_int_equal(pick(b, u, ""), 1); /* 2, 1, 2 active */
    wr_balancer_end(b, u, 0);
    wr_balancer_end(b, u, 0);
    wr_balancer_end(b, u, 0); /* one too many: stays at 0 */
    assert_int_equal(wr_balancer_active(b, u, 0), 0);
    assert_int_equal(pick(b, u, ""), 0);
    /* Weighted: 3 active on weight 4 (0.75) beats 1 active on weight 1. */
    for (int i = 0; i < 3; i++)
        wr_balancer_begin(b, w, 0);
    wr_balancer_begin(b, w, 1);
    assert_int_equal(pick(b, w, ""), 0);
    wr_balancer_begin(b, w, 0);
    wr_balancer_begin(b, w, 0); /* 5/4 > 1/1 */
    assert_int_equal(pick(b, w, ""), 1);
    wr_balancer_free(b);
    wr_config_unref(cfg);
}

static void test_p2c(void **state)
{
    (void)state;
    struct wr_config *cfg = load("[upstream two]\nbalance = random\nserver = 10.0.0.1:80\n"
                                 "server = 10.0.0.2:80\n"
                                 "[upstream three]\nbalance = random\nserver = 10.0.0.1:80\n"
                                 "server = 10.0.0.2:80\nserver = 10.0.0.3:80\n");
    struct wr_balancer *b = wr_balancer_new(cfg);
    const struct wr_upstream_cfg *two = &cfg->upstreams[0], *three = &cfg->upstreams[1];
    /* Two servers: both are always drawn, so the idle one always wins. */
    for (int i = 0; i < 10; i++)
        wr_balancer_begin(b, two, 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(pick(b, two, ""), 1);
    /* Three: the idle one wins whenever drawn (2 draws in 3): ~2/3. */
    for (int i = 0; i < 5; i++) {
        wr_balancer_begin(b, three, 0);
        wr_balancer_begin(b, three, 1);
    }
    int counts[3] = {0};
    count_picks(b, three, 3000, counts);
    assert_in_range(counts[2], 1700, 2300);
    /* One usable: that one. */
    assert_int_equal(wr_balancer_pick(b, three, WR_STR(""), TRIED(0x3), T0), 2);
    wr_balancer_free(b);
    wr_config_unref(cfg);
}

/* ---- hashing ------------------------------------------------------------------ */

/* The label of the server chosen for key i in each config. */
static const char *hash_owner(struct wr_balancer *b, const struct wr_config *cfg, int i)
{
    char key[32];
    snprintf(key, sizeof(key), "/user/%d?x=%d", i, i * 7);
    int s = pick(b, &cfg->upstreams[0], key);
    assert_true(s >= 0);
    return cfg->upstreams[0].servers[s].label;
}

static struct wr_config *hash_config(const char *servers)
{
    char text[512];
    snprintf(text, sizeof(text), "[upstream u]\nbalance = hash\nhash_key = uri\n%s", servers);
    return load(text);
}

static void test_hash_stability(void **state)
{
    (void)state;
    struct wr_config *three = hash_config("server = 10.0.0.1:80\nserver = 10.0.0.2:80\n"
                                          "server = 10.0.0.3:80\n");
    struct wr_config *four = hash_config("server = 10.0.0.1:80\nserver = 10.0.0.2:80\n"
                                         "server = 10.0.0.3:80\nserver = 10.0.0.4:80\n");
    struct wr_config *two = hash_config("server = 10.0.0.1:80\nserver = 10.0.0.3:80\n");
    struct wr_balancer *b3 = wr_balancer_new(three), *b4 = wr_balancer_new(four);
    struct wr_balancer *b2 = wr_balancer_new(two), *again = wr_balancer_new(three);
    int moved_add = 0, moved_other = 0, share[3] = {0};
    for (int i = 0; i < 10000; i++) {
        const char *owner = hash_owner(b3, three, i);
        assert_ptr_equal(owner, hash_owner(b3, three, i));        /* same key, same server */
        assert_string_equal(owner, hash_owner(again, three, i)); /* same on another worker */
        share[owner[7] - '1']++;
        moved_add += strcmp(owner, hash_owner(b4, four, i)) != 0;
        /* Removing 10.0.0.2 moves only its own keys. */
        if (strcmp(owner, "10.0.0.2:80") != 0)
            moved_other += strcmp(owner, hash_owner(b2, two, i)) != 0;
    }
    assert_true(moved_add < 4000); /* about 1/4 expected */
    assert_true(moved_add > 1500);
    assert_int_equal(moved_other, 0);
    for (int i = 0; i < 3; i++)
        assert_in_range(share[i], 2500, 4200);
    wr_balancer_free(b3);
    wr_balancer_free(b4);
    wr_balancer_free(b2);
    wr_balancer_free(again);
    wr_config_unref(three);
    wr_config_unref(four);
    wr_config_unref(two);
}

/* ---- tried_mask and health ----------------------------------------------------- */

static void test_tried_mask(void **state)
{
    (void)state;
    struct wr_config *cfg = load("[upstream rr]\nserver = 10.0.0.1:80\nserver = 10.0.0.2:80\n"
                                 "server = 10.0.0.3:80\n"
                                 "[upstream h]\nbalance = hash\nhash_key = uri\n"
                                 "server = 10.0.0.1:80\nserver = 10.0.0.2:80\n"
                                 "server = 10.0.0.3:80\n");
    struct wr_balancer *b = wr_balancer_new(cfg);
    const struct wr_upstream_cfg *rr = &cfg->upstreams[0], *h = &cfg->upstreams[1];
    for (int i = 0; i < 10; i++)
        assert_int_equal(wr_balancer_pick(b, rr, WR_STR(""), TRIED(0x3), T0), 2);
    assert_int_equal(wr_balancer_pick(b, rr, WR_STR(""), TRIED(0x7), T0), -1);
    for (int i = 0; i < 100; i++) {
        char key[16];
        snprintf(key, sizeof(key), "/%d", i);
        struct wr_str k = wr_str_from_cstr(key);
        int first = wr_balancer_pick(b, h, k, NULL, T0);
        int second = wr_balancer_pick(b, h, k, TRIED(1ull << first), T0);
        assert_true(second >= 0 && second != first);
        assert_int_equal(wr_balancer_pick(b, h, k, TRIED(1ull << first), T0), second); /* stable */
        int third = wr_balancer_pick(b, h, k, TRIED((1ull << first) | (1ull << second)), T0);
        assert_true(third >= 0 && third != first && third != second);
        assert_int_equal(wr_balancer_pick(b, h, k, TRIED(0x7), T0), -1);
    }
    wr_balancer_free(b);
    wr_config_unref(cfg);
}

/* Issue 13.5: an upstream of more servers than a 64-bit mask. 100 servers
 * (say four names of 25 addresses each), every balancer, on this worker's
 * snapshot and on another one (stateless picks): a request's retries go to
 * 100 distinct servers, then find none. */
#define MANY_SERVERS 100

static struct wr_config *load_many(const char *balance)
{
    static char text[16384];
    int n = snprintf(text, sizeof(text), "%s[upstream many]\nbalance = %s\nmax_fails = 0\n",
                     SERVER_SECTION, balance);
    for (int i = 0; i < MANY_SERVERS; i++)
        n += snprintf(text + n, sizeof(text) - (size_t)n, "server = 10.0.%d.%d:80\n", i / 50,
                      i % 50 + 1);
    assert_true(n > 0 && (size_t)n < sizeof(text));
    struct wr_config_errors errs = {0};
    struct wr_config *cfg = wr_config_parse_string(text, "t.ini", &errs);
    assert_int_equal(errs.n_lines, 0);
    assert_non_null(cfg);
    wr_config_errors_fini(&errs);
    return cfg;
}

/* Picks until none is left, as the proxy's retries do: each pick must be a
 * server not tried yet. Returns how many distinct servers were picked. */
static int exhaust(struct wr_balancer *b, const struct wr_upstream_cfg *up, struct wr_str key)
{
    uint64_t tried[WR_UPSTREAM_SET_WORDS(MANY_SERVERS)] = {0};
    int n = 0;
    for (int k = 0; k < 2 * MANY_SERVERS; k++) {
        int s = wr_balancer_pick(b, up, key, tried, T0);
        if (s < 0)
            break;
        assert_in_range(s, 0, MANY_SERVERS - 1);
        assert_false(wr_upstream_set_has(tried, (size_t)s)); /* never the same one twice */
        wr_upstream_set_add(tried, (size_t)s);
        wr_balancer_begin(b, up, s);
        n++;
    }
    for (int s = 0; s < MANY_SERVERS; s++)
        wr_balancer_end(b, up, s);
    return n;
}

static void issue_13_tried_beyond_64(void **state)
{
    (void)state;
    static const char *const balances[] = {"round_robin", "least_conn", "random", "hash"};
    for (size_t i = 0; i < sizeof(balances) / sizeof(balances[0]); i++) {
        struct wr_config *cfg = load_many(balances[i]), *other = load_many(balances[i]);
        struct wr_balancer *b = wr_balancer_new(cfg);
        assert_non_null(b);
        assert_int_equal(cfg->upstreams[0].n_servers, MANY_SERVERS);
        for (int r = 0; r < 3; r++) {
            char key[16];
            snprintf(key, sizeof(key), "/k%d", r);
            assert_int_equal(exhaust(b, &cfg->upstreams[0], wr_str_from_cstr(key)), MANY_SERVERS);
            assert_int_equal(exhaust(b, &other->upstreams[0], wr_str_from_cstr(key)),
                             MANY_SERVERS);
        }
        wr_balancer_free(b);
        wr_config_unref(cfg);
        wr_config_unref(other);
    }
}

static void test_all_down(void **state)
{
    (void)state;
    static const char *const balances[] = {"round_robin", "least_conn", "random", "hash"};
    for (size_t k = 0; k < 4; k++) {
        char text[256];
        snprintf(text, sizeof(text),
                 "[upstream u]\nbalance = %s\nserver = 10.0.0.1:80\nserver = 10.0.0.2:80\n",
                 balances[k]);
        struct wr_config *cfg = load(text);
        struct wr_upstream_cfg *u = &cfg->upstreams[0];
        struct wr_balancer *b = wr_balancer_new(cfg);
        atomic_store(&u->health[0].check, WR_CHECK_DOWN);
        for (int i = 0; i < 20; i++)
            assert_int_equal(pick(b, u, "x"), 1);
        atomic_store(&u->health[1].check, WR_CHECK_DOWN);
        assert_int_equal(pick(b, u, "x"), -1);
        atomic_store(&u->health[0].check, WR_CHECK_UP);
        assert_int_equal(pick(b, u, "x"), 0);
        /* Passive down too: none again, and no silent resurrection. */
        u->max_fails = 1; /* test-only edit of a private snapshot */
        wr_upstream_report(u, 0, false, T0);
        assert_false(wr_upstream_is_up(u, 0, T0));
        assert_int_equal(pick(b, u, "x"), -1);
        wr_balancer_free(b);
        wr_config_unref(cfg);
    }
}

static void test_passive_health(void **state)
{
    (void)state;
    struct wr_config *cfg = load("[upstream u]\nmax_fails = 3\nfail_timeout = 10s\n"
                                 "server = 10.0.0.1:80\nserver = 10.0.0.2:80\n");
    const struct wr_upstream_cfg *u = &cfg->upstreams[0];
    /* Two failures, then the window ends: the third starts a new count. */
    wr_upstream_report(u, 0, false, T0);
    wr_upstream_report(u, 0, false, T0 + 1000);
    wr_upstream_report(u, 0, false, T0 + 10000);
    assert_true(wr_upstream_is_up(u, 0, T0 + 10000));
    /* A success resets the count. */
    wr_upstream_report(u, 0, false, T0 + 10001);
    wr_upstream_report(u, 0, true, T0 + 10002);
    wr_upstream_report(u, 0, false, T0 + 10003);
    assert_true(wr_upstream_is_up(u, 0, T0 + 10003));
    /* Three within the window: out for fail_timeout, then back. */
    uint64_t t = T0 + 50000;
    for (int i = 0; i < 3; i++)
        wr_upstream_report(u, 0, false, t + (uint64_t)i);
    assert_false(wr_upstream_is_up(u, 0, t + 2));
    assert_false(wr_upstream_is_up(u, 0, t + 2 + 9999));
    assert_true(wr_upstream_is_up(u, 0, t + 2 + 10000));
    assert_true(wr_upstream_is_up(u, 1, t)); /* the other is untouched */
    /* A success during the take-out does not end it early. */
    for (int i = 0; i < 3; i++)
        wr_upstream_report(u, 1, false, t);
    wr_upstream_report(u, 1, true, t + 1);
    assert_false(wr_upstream_is_up(u, 1, t + 1));
    /* Out of range: never up, reports ignored. */
    assert_false(wr_upstream_is_up(u, 2, t));
    assert_false(wr_upstream_is_up(u, -1, t));
    wr_upstream_report(u, 7, false, t);
    wr_config_unref(cfg);
}

static void test_passive_off_and_single(void **state)
{
    (void)state;
    struct wr_config *cfg = load("[upstream off]\nmax_fails = 0\nserver = 10.0.0.1:80\n"
                                 "server = 10.0.0.2:80\n"
                                 "[upstream one]\nmax_fails = 1\nserver = 10.0.0.1:80\n");
    for (size_t k = 0; k < 2; k++) {
        const struct wr_upstream_cfg *u = &cfg->upstreams[k];
        for (int i = 0; i < 100; i++)
            wr_upstream_report(u, 0, false, T0 + (uint64_t)i);
        assert_true(wr_upstream_is_up(u, 0, T0 + 100));
    }
    /* The active checker can still take the only server out. */
    atomic_store(&cfg->upstreams[1].health[0].check, WR_CHECK_DOWN);
    assert_false(wr_upstream_is_up(&cfg->upstreams[1], 0, T0));
    wr_config_unref(cfg);
}

struct reporter {
    const struct wr_upstream_cfg *up;
    int server;
    unsigned n_up;
};

static void *report_many(void *arg)
{
    struct reporter *r = arg;
    for (uint64_t i = 0; i < 20000; i++) {
        wr_upstream_report(r->up, r->server, i % 3 == 0, T0 + i / 4);
        r->n_up += wr_upstream_is_up(r->up, r->server, T0 + i / 4);
    }
    return NULL;
}

/* Workers report at once with no lock: TSan-clean, and the state stays sane
 * (a server that keeps failing is out at the end; fail_timeout 1s). */
static void test_concurrent_reports(void **state)
{
    (void)state;
    struct wr_config *cfg = load("[upstream u]\nmax_fails = 2\nfail_timeout = 1s\n"
                                 "server = 10.0.0.1:80\nserver = 10.0.0.2:80\n");
    const struct wr_upstream_cfg *u = &cfg->upstreams[0];
    struct reporter r[2] = {{u, 0, 0}, {u, 0, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, report_many, &r[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    wr_upstream_report(u, 0, false, T0 + 6000);
    wr_upstream_report(u, 0, false, T0 + 6000);
    assert_false(wr_upstream_is_up(u, 0, T0 + 6000));
    assert_true(wr_upstream_is_up(u, 0, T0 + 7000));
    assert_true(wr_upstream_is_up(u, 1, T0));
    wr_config_unref(cfg);
}

/* ---- snapshots ---------------------------------------------------------------- */

static void test_other_snapshot(void **state)
{
    (void)state;
    const char *text = "[upstream rr]\nserver = 10.0.0.1:80\nserver = 10.0.0.2:80 weight=3\n"
                       "[upstream h]\nbalance = hash\nserver = 10.0.0.1:80\n"
                       "server = 10.0.0.2:80\nserver = 10.0.0.3:80\n";
    struct wr_config *old_cfg = load(text), *cur = load(text);
    struct wr_balancer *b = wr_balancer_new(cur);
    const struct wr_upstream_cfg *rr = &old_cfg->upstreams[0], *h = &old_cfg->upstreams[1];
    int counts[2] = {0};
    count_picks(b, rr, 4000, counts);
    assert_in_range(counts[1], 2700, 3300);
    assert_int_equal(wr_balancer_pick(b, rr, WR_STR(""), TRIED(0x2), T0), 0);
    assert_int_equal(wr_balancer_pick(b, rr, WR_STR(""), TRIED(0x3), T0), -1);
    assert_int_equal(wr_balancer_pick(NULL, rr, WR_STR(""), TRIED(0x2), T0), 0);
    for (int i = 0; i < 50; i++) {
        char key[16];
        snprintf(key, sizeof(key), "10.1.1.%d", i);
        int s = pick(b, h, key);
        assert_true(s >= 0 && s < 3);
        assert_int_equal(pick(b, h, key), s);
    }
    wr_balancer_begin(b, rr, 0); /* no effect, no crash */
    wr_balancer_end(b, rr, 0);
    assert_int_equal(wr_balancer_active(b, rr, 0), 0);
    wr_balancer_free(b);
    wr_balancer_free(NULL);
    wr_config_unref(old_cfg);
    wr_config_unref(cur);
}

static void test_carry_health(void **state)
{
    (void)state;
    struct wr_config *old_cfg = load("[upstream u]\nserver = 10.0.0.1:80\nserver = 10.0.0.2:80\n"
                                     "[upstream v]\nserver = 10.0.0.1:80\n");
    struct wr_config *new_cfg = load("[upstream v]\nserver = 10.0.0.1:80\n"
                                     "[upstream u]\nserver = 10.0.0.3:80\nserver = 10.0.0.2:80\n");
    atomic_store(&old_cfg->upstreams[0].health[1].down_until_ms, T0 + 5000);
    atomic_store(&old_cfg->upstreams[0].health[0].check, WR_CHECK_DOWN);
    atomic_store(&old_cfg->upstreams[1].health[0].check, WR_CHECK_UP);
    wr_upstream_carry_health(old_cfg, new_cfg);
    const struct wr_upstream_cfg *u = &new_cfg->upstreams[1], *v = &new_cfg->upstreams[0];
    assert_true(wr_upstream_is_up(u, 0, T0));  /* new server: healthy */
    assert_false(wr_upstream_is_up(u, 1, T0)); /* carried: still out */
    assert_true(wr_upstream_is_up(u, 1, T0 + 5000));
    assert_int_equal(atomic_load(&v->health[0].check), WR_CHECK_UP);
    wr_upstream_carry_health(NULL, new_cfg);
    wr_config_unref(old_cfg);
    wr_config_unref(new_cfg);
}

/* ---- the hash key ------------------------------------------------------------- */

struct parsed {
    char *buf; /* owned: the request bytes, which req points into */
    struct wr_http_request req;
};

static void parse_request(struct parsed *p, const char *text)
{
    size_t len = strlen(text);
    p->buf = malloc(len);
    assert_non_null(p->buf);
    memcpy(p->buf, text, len);
    struct wr_http_limits limits = {.max_head_bytes = 16384};
    assert_int_equal(wr_http_parse_request(p->buf, len, 0, &limits, &p->req), (ssize_t)len);
}

static void expect_key(const char *hash_key, const struct wr_http_request *req, const char *want)
{
    struct wr_upstream_cfg up = {.hash_key = (char *)hash_key};
    wr_upstream_cfg_compile_hash_key(&up);
    struct wr_str got = wr_upstream_hash_key(&up, req, WR_STR("192.0.2.7"));
    if (!wr_str_eq(got, wr_str_from_cstr(want)))
        print_error("%s: got \"%.*s\", want \"%s\"\n", hash_key, (int)got.len,
                    got.ptr ? got.ptr : "", want);
    assert_true(wr_str_eq(got, wr_str_from_cstr(want)));
}

static void test_hash_key(void **state)
{
    (void)state;
    struct parsed p;
    parse_request(&p, "GET /a/b?c=d HTTP/1.1\r\nHost: x\r\nX-User: alice \r\n"
                      "Cookie: theme=dark; sidx=no;sid=abc123 ; lang=en\r\n"
                      "x-user: bob\r\ncookie: sid=second; other=\"q v\"\r\n"
                      "Cookie: flag; empty=\r\n\r\n");
    expect_key("client_ip", &p.req, "192.0.2.7");
    expect_key("uri", &p.req, "/a/b?c=d");
    expect_key("header:x-user", &p.req, "alice"); /* the first field, case-insensitive */
    expect_key("header:X-Missing", &p.req, "");
    expect_key("cookie:sid", &p.req, "abc123");   /* not sidx; first field wins */
    expect_key("cookie:lang", &p.req, "en");
    expect_key("cookie:other", &p.req, "\"q v\""); /* from the second Cookie field */
    expect_key("cookie:empty", &p.req, "");
    expect_key("cookie:flag", &p.req, "");        /* no '=': not a cookie pair */
    expect_key("cookie:SID", &p.req, "");         /* cookie names are case-sensitive */
    expect_key("cookie:nope", &p.req, "");
    struct wr_upstream_cfg dflt = {.hash_key = NULL};
    assert_true(wr_str_eq(wr_upstream_hash_key(&dflt, NULL, WR_STR("::1")), WR_STR("::1")));
    expect_key("uri", NULL, "");
    free(p.buf);
    parse_request(&p, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_key("cookie:sid", &p.req, "");
    free(p.buf);
}

/* ---- the active checker, against sockets opened here ---------------------------- */

#define MAX_PEERS 16

struct fake_server;

struct peer {
    struct fake_server *fs;
    struct wr_stream s;      /* plain, or TLS when fs->tls */
    bool is_handshaken;
    struct event *ev;
    char buf[1024];
    size_t len;
};

struct fake_server {
    struct event_base *base;
    int lfd;
    struct event *accept_ev;
    int status;     /* answered; 0 = accept and stay silent */
    const struct wr_tls_set *tls;   /* set: peers speak TLS (borrowed) */
    struct wr_stream_stage *stage;  /* with tls */
    bool is_split;        /* the status line goes in two writes (two TLS records) */
    bool is_close_notify; /* TLS: close_notify after the response, else a bare close */
    char last[1024]; /* the last complete request head */
    int n_requests;
    struct peer *peers[MAX_PEERS];
};

static void close_peer(struct peer *p)
{
    for (int i = 0; i < MAX_PEERS; i++) {
        if (p->fs->peers[i] == p)
            p->fs->peers[i] = NULL;
    }
    event_free(p->ev);
    wr_stream_fini(&p->s);
    free(p);
}

static void peer_write(struct peer *p, const char *text, size_t len)
{
    struct iovec iov = {(void *)text, len};
    assert_int_equal(wr_stream_writev(&p->s, &iov, 1), (ssize_t)len);
}

/* Answers fs->status, in one write or (is_split) two, and closes. */
static void peer_answer(struct peer *p)
{
    char resp[128];
    int m = snprintf(resp, sizeof(resp), "HTTP/1.1 %d X\r\nContent-Length: 0\r\n\r\n",
                     p->fs->status);
    size_t first = p->fs->is_split ? 10 : (size_t)m; /* "HTTP/1.1 2" | "00 X..." */
    peer_write(p, resp, first);
    if (first < (size_t)m)
        peer_write(p, resp + first, (size_t)m - first);
    if (p->fs->is_close_notify)
        wr_stream_shutdown(&p->s);
    close_peer(p);
}

static void on_peer_read(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct peer *p = arg;
    if (wr_stream_is_tls(&p->s) && !p->is_handshaken) {
        char why[128];
        enum wr_tls_result r = wr_stream_handshake(&p->s, why, sizeof(why));
        if (r == WR_TLS_FAILED || r == WR_TLS_PLAIN_HTTP) {
            close_peer(p);
            return;
        }
        p->is_handshaken = r == WR_TLS_DONE;
        if (!p->is_handshaken)
            return;
        /* The request may have come with the handshake's last flight. */
    }
    ssize_t n = wr_stream_read(&p->s, p->buf + p->len, sizeof(p->buf) - 1 - p->len);
    if (n < 0 && errno == EAGAIN)
        return;
    if (n <= 0) {
        close_peer(p);
        return;
    }
    p->len += (size_t)n;
    p->buf[p->len] = '\0';
    if (strstr(p->buf, "\r\n\r\n") == NULL)
        return;
    snprintf(p->fs->last, sizeof(p->fs->last), "%s", p->buf);
    p->fs->n_requests++;
    if (p->fs->status == 0)
        return; /* silent: the checker's timeout must fire */
    peer_answer(p);
}

static void on_fake_accept(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct fake_server *fs = arg;
    int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0)
        return;
    struct peer *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    p->fs = fs;
    wr_stream_init(&p->s, c);
    if (fs->tls)
        assert_int_equal(wr_stream_tls_server(&p->s, fs->tls, fs->stage), 0);
    p->ev = event_new(fs->base, c, EV_READ | EV_PERSIST, on_peer_read, p);
    event_add(p->ev, NULL);
    for (int i = 0; i < MAX_PEERS; i++) {
        if (fs->peers[i] == NULL) {
            fs->peers[i] = p;
            return;
        }
    }
    close_peer(p);
}

static void fake_start(struct fake_server *fs, struct event_base *base,
                       const struct sockaddr *sa, socklen_t len)
{
    memset(fs, 0, sizeof(*fs));
    fs->base = base;
    fs->status = 200;
    fs->lfd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fs->lfd >= 0);
    assert_int_equal(bind(fs->lfd, sa, len), 0);
    assert_int_equal(listen(fs->lfd, 16), 0);
    fs->accept_ev = event_new(base, fs->lfd, EV_READ | EV_PERSIST, on_fake_accept, fs);
    event_add(fs->accept_ev, NULL);
}

static int fake_tcp_port(const struct fake_server *fs)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    assert_int_equal(getsockname(fs->lfd, (struct sockaddr *)&sin, &len), 0);
    return ntohs(sin.sin_port);
}

static void fake_stop(struct fake_server *fs)
{
    for (int i = 0; i < MAX_PEERS; i++) {
        if (fs->peers[i] != NULL)
            close_peer(fs->peers[i]);
    }
    event_free(fs->accept_ev);
    close(fs->lfd);
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* Runs base until server's verdict is want, at most limit_ms. */
static bool wait_verdict(struct event_base *base, const struct wr_upstream_cfg *up, int server,
                         int want, uint64_t limit_ms)
{
    struct event *poll = event_new(base, -1, EV_PERSIST, on_poll, NULL);
    struct timeval every = {0, 10000};
    event_add(poll, &every);
    uint64_t end = wr_clock_now_ms() + limit_ms;
    while (atomic_load(&up->health[server].check) != want && wr_clock_now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(poll);
    return atomic_load(&up->health[server].check) == want;
}

static void test_checker_tcp(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct fake_server fs;
    fake_start(&fs, base, (struct sockaddr *)&sin, sizeof(sin));
    char text[512];
    snprintf(text, sizeof(text),
             "[upstream u]\nserver = localhost:%d\nhealth_check = HEAD /hc?x=1\n"
             "health_interval = 50ms\nhealth_timeout = 300ms\n[upstream unchecked]\n"
             "server = 127.0.0.1:9\n",
             fake_tcp_port(&fs));
    struct wr_config *cfg = load(text);
    const struct wr_upstream_cfg *u = &cfg->upstreams[0];
    struct wr_health_checker *hc = wr_health_checker_new(base);
    wr_health_checker_set_config(hc, cfg);
    assert_true(wait_verdict(base, u, 0, WR_CHECK_UP, 5000));
    char want[256];
    snprintf(want, sizeof(want),
             "HEAD /hc?x=1 HTTP/1.1\r\nHost: localhost:%d\r\nUser-Agent: weir-health\r\n"
             "Connection: close\r\n\r\n",
             fake_tcp_port(&fs));
    assert_string_equal(fs.last, want);
    fs.status = 503;
    assert_true(wait_verdict(base, u, 0, WR_CHECK_DOWN, 5000));
    assert_false(wr_upstream_is_up(u, 0, wr_clock_now_ms()));
    fs.status = 302; /* 3xx counts as up */
    assert_true(wait_verdict(base, u, 0, WR_CHECK_UP, 5000));
    fs.status = 0; /* accepts, never answers: the timeout takes it out */
    assert_true(wait_verdict(base, u, 0, WR_CHECK_DOWN, 5000));
    fs.status = 200;
    assert_true(wait_verdict(base, u, 0, WR_CHECK_UP, 5000));
    int port = fake_tcp_port(&fs);
    fake_stop(&fs); /* refused from now on */
    assert_true(wait_verdict(base, u, 0, WR_CHECK_DOWN, 5000));
    assert_int_equal(atomic_load(&cfg->upstreams[1].health[0].check), WR_CHECK_UNKNOWN);
    /* A reload restarts the checks and drops the old snapshot's reference. */
    wr_health_checker_set_config(hc, cfg);
    wr_health_checker_set_config(hc, NULL);
    wr_health_checker_free(hc);
    wr_health_checker_free(NULL);
    wr_config_unref(cfg);
    (void)port;
    event_base_free(base);
}

static void test_checker_unix_and_garbage(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "/tmp/weir-test-hc-%d.sock", (int)getpid());
    unlink(sun.sun_path);
    struct fake_server fs;
    fake_start(&fs, base, (struct sockaddr *)&sun, sizeof(sun));
    char text[512];
    snprintf(text, sizeof(text),
             "[upstream u]\nserver = unix:%s\nserver = unix:/nonexistent/weir.sock\n"
             "health_check = GET /\nhealth_interval = 50ms\nhealth_timeout = 1s\n",
             sun.sun_path);
    struct wr_config *cfg = load(text);
    const struct wr_upstream_cfg *u = &cfg->upstreams[0];
    struct wr_health_checker *hc = wr_health_checker_new(base);
    wr_health_checker_set_config(hc, cfg);
    assert_true(wait_verdict(base, u, 0, WR_CHECK_UP, 5000));
    assert_true(wait_verdict(base, u, 1, WR_CHECK_DOWN, 5000));
    assert_non_null(strstr(fs.last, "Host: localhost\r\n"));
    fs.status = 99; /* "HTTP/1.1 99 X": not a status line */
    assert_true(wait_verdict(base, u, 0, WR_CHECK_DOWN, 5000));
    /* Freed while checks may be in flight. */
    wr_health_checker_free(hc);
    fake_stop(&fs);
    unlink(sun.sun_path);
    wr_config_unref(cfg);
    event_base_free(base);
}

/* Probes over TLS, on the stream: the request arrives through TLS, a
 * status line split over two records is put together, a bare close after
 * it and a close_notify are both fine, silence times out. */
static void issue_14_checker_tls(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    char dir[64];
    snprintf(dir, sizeof(dir), "/tmp/weir-test-hc-XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(testcert_make(dir, "s", "s.test"), 0);
    struct event_base *base = event_base_new();
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct fake_server fs;
    fake_start(&fs, base, (struct sockaddr *)&sin, sizeof(sin));
    char text[1024];
    snprintf(text, sizeof(text),
             "[server]\nlisten = 127.0.0.1:1 tls\n[tls]\ncert = %s/s.crt\nkey = %s/s.key\n"
             "[upstream u]\nserver = 127.0.0.1:%d\ntls = on\ntls_verify = off\n"
             "health_check = GET /hc\nhealth_interval = 50ms\nhealth_timeout = 300ms\n",
             dir, dir, fake_tcp_port(&fs));
    struct wr_config_errors errs = {0};
    struct wr_config *cfg = wr_config_parse_string(text, "t.ini", &errs);
    assert_non_null(cfg);
    struct wr_tls_set *set = wr_tls_set_new(cfg, NULL, NULL, &errs);
    assert_non_null(set);
    wr_config_errors_fini(&errs);
    wr_tls_set_attach(cfg, set);
    fs.tls = cfg->tls_set;
    fs.stage = wr_stream_stage_new();
    const struct wr_upstream_cfg *u = &cfg->upstreams[0];
    struct wr_health_checker *hc = wr_health_checker_new(base);
    wr_health_checker_set_config(hc, cfg);
    assert_true(wait_verdict(base, u, 0, WR_CHECK_UP, 5000));
    assert_non_null(strstr(fs.last, "GET /hc HTTP/1.1\r\n"));
    assert_non_null(strstr(fs.last, "User-Agent: weir-health\r\n"));
    fs.status = 503;
    assert_true(wait_verdict(base, u, 0, WR_CHECK_DOWN, 5000));
    fs.status = 200;
    fs.is_split = true;
    assert_true(wait_verdict(base, u, 0, WR_CHECK_UP, 5000));
    fs.status = 0; /* silent */
    assert_true(wait_verdict(base, u, 0, WR_CHECK_DOWN, 5000));
    fs.status = 204;
    fs.is_split = false;
    fs.is_close_notify = true;
    assert_true(wait_verdict(base, u, 0, WR_CHECK_UP, 5000));
    wr_health_checker_free(hc);
    fake_stop(&fs);
    wr_stream_stage_free(fs.stage);
    wr_config_unref(cfg);
    event_base_free(base);
    snprintf(text, sizeof(text), "rm -rf %s", dir);
    assert_int_equal(system(text), 0);
}

/* Issue 19.3: after a DNS change, the replaced snapshot stops picking the
 * addresses that vanished (its keep-alive connections); an upstream all of
 * whose addresses went is left alone, and one that no longer exists too. */
static void issue_19_retire_vanished(void **state)
{
    (void)state;
    struct wr_config *old_cfg = load("[upstream a]\nserver = 10.0.0.1:80\nserver = 10.0.0.2:80\n"
                                     "[upstream b]\nserver = 10.0.1.1:80\n"
                                     "[upstream c]\nserver = 10.0.2.1:80\n");
    struct wr_config *new_cfg = load("[upstream a]\nserver = 10.0.0.2:80\nserver = 10.0.0.3:80\n"
                                     "[upstream b]\nserver = 10.0.1.9:80\n");
    wr_upstream_retire_vanished(old_cfg, new_cfg);
    assert_false(wr_upstream_is_up(&old_cfg->upstreams[0], 0, T0)); /* 10.0.0.1 went */
    assert_true(wr_upstream_is_up(&old_cfg->upstreams[0], 1, T0));  /* 10.0.0.2 stays */
    assert_true(wr_upstream_is_up(&old_cfg->upstreams[1], 0, T0));  /* all went: kept */
    assert_true(wr_upstream_is_up(&old_cfg->upstreams[2], 0, T0));  /* no such upstream */
    for (size_t i = 0; i < new_cfg->upstreams[0].n_servers; i++)
        assert_true(wr_upstream_is_up(&new_cfg->upstreams[0], (int)i, T0));
    wr_upstream_retire_vanished(NULL, new_cfg);
    wr_config_unref(old_cfg);
    wr_config_unref(new_cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_swrr_sequence),    cmocka_unit_test(test_weights_respected),
        cmocka_unit_test(test_least_conn),       cmocka_unit_test(test_p2c),
        cmocka_unit_test(test_hash_stability),   cmocka_unit_test(test_tried_mask),
        cmocka_unit_test(issue_13_tried_beyond_64),
        cmocka_unit_test(test_all_down),         cmocka_unit_test(test_passive_health),
        cmocka_unit_test(test_passive_off_and_single), cmocka_unit_test(test_concurrent_reports),
        cmocka_unit_test(test_other_snapshot),
        cmocka_unit_test(test_carry_health),     cmocka_unit_test(test_hash_key),
        cmocka_unit_test(test_checker_tcp),      cmocka_unit_test(test_checker_unix_and_garbage),
        cmocka_unit_test(issue_14_checker_tls),
        cmocka_unit_test(issue_19_retire_vanished),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
