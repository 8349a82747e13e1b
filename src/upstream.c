/*
 * upstream: which server of an [upstream] a request goes to, and whether a
 * server may be used at all.
 *
 * Responsible for: the four balancers (smooth weighted round robin, least
 * connections, consistent hashing, power of two random choices) over the
 * usable servers, the hash input of a request, passive health (failures
 * reported by the proxy), and the active checker (probes on main's base).
 * Deliberately not: connecting for requests, pooling or retrying (proxy.c,
 * pool.c); they call wr_balancer_pick and wr_upstream_report.
 *
 * Invariants:
 *  - Health is process-wide and lives in the snapshot (wr_server_health:
 *    atomics, relaxed). Workers and the checker write it without locks; a
 *    race near a window boundary may miscount a failure, never corrupt.
 *  - A struct wr_balancer belongs to one worker and one snapshot; an
 *    upstream of another snapshot gets a stateless pick.
 *  - When every server is down, pick returns -1 and the proxy answers 502 at
 *    once. We do not try a failed server anyway (nginx's old "all peers
 *    failed, reset them"): a passively failed server returns when its
 *    fail_timeout ends, a checked one when the checker sees it answer, and
 *    a pool's only server is never taken out by passive health.
 */
#include "weir/upstream.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "weir/hash.h"
#include "weir/log.h"
#include "weir/tls.h"

/* Ring points per unit of weight: with 160 a server's share of keys is
 * within a few percent of its weight. The ring is capped (RING_MAX_POINTS,
 * 512 KiB per upstream per worker) by giving heavy pools fewer points per
 * unit, which keeps distribution fine since each server still has many. */
#define RING_POINTS_PER_WEIGHT 160
#define RING_MAX_POINTS 65536u
/* A status line longer than this is not HTTP: the check fails. */
#define CHECK_LINE_MAX 1024

uint64_t wr_upstream_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- hashing and randomness ------------------------------------------------ */

/* xorshift64*: fast, and good enough to spread load (not for secrets). */
static uint64_t next_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform enough in [0, n) for n far below 2^53; n > 0. */
static uint64_t random_below(uint64_t *state, uint64_t n)
{
    return (next_random(state) >> 11) % n;
}

static uint64_t new_seed(const void *salt)
{
    static atomic_uint_fast64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t n = atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed);
    uint64_t s = wr_hash_mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uintptr_t)salt ^
                       (n * 0x9e3779b97f4a7c15ULL));
    return s != 0 ? s : 0x9e3779b97f4a7c15ULL;
}

/* ---- health ---------------------------------------------------------------- */

static bool is_server(const struct wr_upstream_cfg *up, int server)
{
    return up != NULL && up->health != NULL && server >= 0 && (size_t)server < up->n_servers;
}

bool wr_upstream_is_up(const struct wr_upstream_cfg *up, int server, uint64_t now_ms)
{
    if (!is_server(up, server))
        return false;
    const struct wr_server_health *h = &up->health[server];
    if (atomic_load_explicit(&h->check, memory_order_relaxed) == WR_CHECK_DOWN)
        return false;
    return atomic_load_explicit(&h->down_until_ms, memory_order_relaxed) <= now_ms;
}

/* Counts one failure in the current window (opening a new one when the
 * last started fail_timeout ago or more); returns the count. */
static unsigned count_failure(const struct wr_upstream_cfg *up, struct wr_server_health *h,
                              uint64_t now_ms)
{
    uint64_t start = atomic_load_explicit(&h->fail_window_start_ms, memory_order_relaxed);
    bool is_expired = start == 0 || (now_ms > start && now_ms - start >= up->fail_timeout_ms);
    /* One reporter wins the reset; the others count into the new window. */
    if (is_expired && atomic_compare_exchange_strong_explicit(
                          &h->fail_window_start_ms, &start, now_ms ? now_ms : 1,
                          memory_order_relaxed, memory_order_relaxed)) {
        atomic_store_explicit(&h->fails, 1, memory_order_relaxed);
        return 1;
    }
    return atomic_fetch_add_explicit(&h->fails, 1, memory_order_relaxed) + 1;
}

void wr_upstream_report(const struct wr_upstream_cfg *up, int server, bool is_ok,
                        uint64_t now_ms)
{
    if (!is_server(up, server) || up->max_fails == 0 || up->n_servers == 1)
        return;
    struct wr_server_health *h = &up->health[server];
    if (is_ok) {
        /* Read first: a healthy server's line is then never written, so
         * workers do not bounce it between their caches on every request.
         * A success does not end a take-out early: it may be a request that
         * began before the failures (nginx behaves the same). */
        if (atomic_load_explicit(&h->fails, memory_order_relaxed) != 0)
            atomic_store_explicit(&h->fails, 0, memory_order_relaxed);
        return;
    }
    unsigned n = count_failure(up, h, now_ms);
    if (n < up->max_fails)
        return;
    atomic_store_explicit(&h->fails, 0, memory_order_relaxed);
    atomic_store_explicit(&h->fail_window_start_ms, 0, memory_order_relaxed);
    uint64_t prev = atomic_exchange_explicit(&h->down_until_ms, now_ms + up->fail_timeout_ms,
                                             memory_order_relaxed);
    if (prev <= now_ms) /* only the reporter that took it out logs */
        wr_log(WR_LOG_WARN, -1, 0,
               "upstream %s: server %s taken out for %llu ms after %u failures",
               up->name, up->servers[server].label, (unsigned long long)up->fail_timeout_ms, n);
}

static bool same_addr(const struct wr_listen_addr *a, const struct wr_listen_addr *b)
{
    return a->addr_len == b->addr_len && memcmp(&a->addr, &b->addr, a->addr_len) == 0;
}

static void copy_health(struct wr_server_health *to, const struct wr_server_health *from)
{
    atomic_store_explicit(&to->fail_window_start_ms,
                          atomic_load_explicit(&from->fail_window_start_ms, memory_order_relaxed),
                          memory_order_relaxed);
    atomic_store_explicit(&to->fails, atomic_load_explicit(&from->fails, memory_order_relaxed),
                          memory_order_relaxed);
    atomic_store_explicit(&to->down_until_ms,
                          atomic_load_explicit(&from->down_until_ms, memory_order_relaxed),
                          memory_order_relaxed);
    atomic_store_explicit(&to->check, atomic_load_explicit(&from->check, memory_order_relaxed),
                          memory_order_relaxed);
}

static const struct wr_upstream_cfg *find_upstream(const struct wr_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        if (strcmp(cfg->upstreams[i].name, name) == 0)
            return &cfg->upstreams[i];
    }
    return NULL;
}

void wr_upstream_carry_health(const struct wr_config *old_cfg, struct wr_config *new_cfg)
{
    if (old_cfg == NULL || new_cfg == NULL)
        return;
    for (size_t i = 0; i < new_cfg->n_upstreams; i++) {
        struct wr_upstream_cfg *nu = &new_cfg->upstreams[i];
        const struct wr_upstream_cfg *ou = find_upstream(old_cfg, nu->name);
        for (size_t j = 0; ou != NULL && ou->health != NULL && j < nu->n_servers; j++) {
            for (size_t k = 0; k < ou->n_servers; k++) {
                if (same_addr(&nu->servers[j].addr, &ou->servers[k].addr)) {
                    copy_health(&nu->health[j], &ou->health[k]);
                    break;
                }
            }
        }
    }
}

/* ---- the hash key ---------------------------------------------------------- */

static struct wr_str empty_str(void)
{
    return (struct wr_str){NULL, 0};
}

/* The value of cookie name in one Cookie field value: "a=1; b=2" (RFC 6265
 * §4.2.1). Pairs without '=' are skipped; the value is kept as sent (quotes
 * included), which is all a hash needs. found tells an empty value apart. */
static struct wr_str cookie_in_field(struct wr_str field, struct wr_str name, bool *found)
{
    const char *p = field.ptr, *end = field.ptr + field.len;
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *stop = semi ? semi : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        if (eq != NULL) {
            struct wr_str n = wr_str_trim((struct wr_str){p, (size_t)(eq - p)});
            if (wr_str_eq(n, name)) {
                *found = true;
                return wr_str_trim((struct wr_str){eq + 1, (size_t)(stop - eq - 1)});
            }
        }
        p = stop + 1;
    }
    return empty_str();
}

static struct wr_str find_cookie(const struct wr_http_request *req, struct wr_str name)
{
    for (size_t i = 0; i < req->n_headers; i++) {
        if (!wr_str_eq_nocase(req->headers[i].name, WR_STR("Cookie")))
            continue;
        bool found = false;
        struct wr_str v = cookie_in_field(req->headers[i].value, name, &found);
        if (found)
            return v;
    }
    return empty_str();
}

struct wr_str wr_upstream_hash_key(const struct wr_upstream_cfg *up,
                                   const struct wr_http_request *req, struct wr_str client_ip)
{
    const char *k = up->hash_key != NULL ? up->hash_key : "client_ip";
    if (strcmp(k, "client_ip") == 0)
        return client_ip;
    if (req == NULL)
        return empty_str();
    if (strcmp(k, "uri") == 0)
        return req->target;
    if (strncmp(k, "header:", 7) == 0) {
        const struct wr_http_header *h = wr_http_find_header(req, wr_str_from_cstr(k + 7));
        return h != NULL ? h->value : empty_str();
    }
    if (strncmp(k, "cookie:", 7) == 0)
        return find_cookie(req, wr_str_from_cstr(k + 7));
    return empty_str();
}

/* ---- balancer state ---------------------------------------------------------- */

struct ring_point {
    uint32_t pos;    /* place on the ring (top 32 bits of a 64-bit hash) */
    uint32_t server; /* index into up->servers */
};

/* One upstream's state on one worker. */
struct ups_state {
    int64_t *current;        /* smooth WRR current weights, per server */
    unsigned *active;        /* requests in flight from this worker, per server */
    struct ring_point *ring; /* sorted by pos; hash only */
    size_t n_points;
};

struct wr_balancer {
    const struct wr_config *cfg; /* borrowed */
    struct ups_state *ups;       /* one per cfg->upstreams[i] */
    int *scratch;                /* candidate indexes; room for the largest pool */
    uint64_t rng;
};

static int compare_points(const void *a, const void *b)
{
    const struct ring_point *x = a, *y = b;
    if (x->pos != y->pos)
        return x->pos < y->pos ? -1 : 1;
    return x->server < y->server ? -1 : x->server > y->server; /* ties: stable order */
}

/* Point j of a server hangs off the hash of its label (name and address),
 * not its index, so adding or removing a server moves only its own keys. */
static int build_ring(struct ups_state *st, const struct wr_upstream_cfg *up)
{
    uint64_t total_weight = 0;
    for (size_t i = 0; i < up->n_servers; i++)
        total_weight += up->servers[i].weight;
    uint64_t per_weight = RING_MAX_POINTS / (total_weight ? total_weight : 1);
    per_weight = per_weight > RING_POINTS_PER_WEIGHT ? RING_POINTS_PER_WEIGHT
                 : per_weight < 1                   ? 1
                                                    : per_weight;
    st->ring = malloc((size_t)(total_weight * per_weight) * sizeof(*st->ring) + 1);
    if (st->ring == NULL)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < up->n_servers; i++) {
        const char *label = up->servers[i].label;
        uint64_t base = wr_hash_bytes(label, strlen(label));
        for (uint64_t j = 0; j < up->servers[i].weight * per_weight; j++) {
            uint64_t h = wr_hash_mix64(base ^ wr_hash_mix64(j + 1));
            st->ring[n++] = (struct ring_point){(uint32_t)(h >> 32), (uint32_t)i};
        }
    }
    qsort(st->ring, n, sizeof(*st->ring), compare_points);
    st->n_points = n;
    return 0;
}

static int init_state(struct ups_state *st, const struct wr_upstream_cfg *up)
{
    size_t n = up->n_servers ? up->n_servers : 1;
    st->current = calloc(n, sizeof(*st->current));
    st->active = calloc(n, sizeof(*st->active));
    if (st->current == NULL || st->active == NULL)
        return -1;
    return up->balance == WR_BALANCE_HASH ? build_ring(st, up) : 0;
}

void wr_balancer_free(struct wr_balancer *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; b->ups != NULL && i < b->cfg->n_upstreams; i++) {
        free(b->ups[i].current);
        free(b->ups[i].active);
        free(b->ups[i].ring);
    }
    free(b->ups);
    free(b->scratch);
    free(b);
}

struct wr_balancer *wr_balancer_new(const struct wr_config *cfg)
{
    struct wr_balancer *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->cfg = cfg;
    b->rng = new_seed(b);
    size_t most = 1;
    for (size_t i = 0; i < cfg->n_upstreams; i++)
        most = cfg->upstreams[i].n_servers > most ? cfg->upstreams[i].n_servers : most;
    b->ups = calloc(cfg->n_upstreams ? cfg->n_upstreams : 1, sizeof(*b->ups));
    b->scratch = calloc(most, sizeof(*b->scratch));
    if (b->ups == NULL || b->scratch == NULL)
        goto free_b;
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        if (init_state(&b->ups[i], &cfg->upstreams[i]) < 0)
            goto free_b;
    }
    return b;
free_b:
    wr_balancer_free(b);
    return NULL;
}

/* b's state for up, or NULL when up is not of b's snapshot. Compared as
 * integers: relational operators on pointers into different arrays are
 * undefined in C. */
static struct ups_state *state_of(const struct wr_balancer *b, const struct wr_upstream_cfg *up)
{
    if (b == NULL || up == NULL || b->cfg->n_upstreams == 0)
        return NULL;
    uintptr_t first = (uintptr_t)b->cfg->upstreams, at = (uintptr_t)up;
    if (at < first || at >= first + b->cfg->n_upstreams * sizeof(*up))
        return NULL;
    size_t i = (at - first) / sizeof(*up);
    return up == &b->cfg->upstreams[i] ? &b->ups[i] : NULL;
}

void wr_balancer_begin(struct wr_balancer *b, const struct wr_upstream_cfg *up, int server)
{
    struct ups_state *st = state_of(b, up);
    if (st != NULL && server >= 0 && (size_t)server < up->n_servers)
        st->active[server]++;
}

void wr_balancer_end(struct wr_balancer *b, const struct wr_upstream_cfg *up, int server)
{
    struct ups_state *st = state_of(b, up);
    if (st != NULL && server >= 0 && (size_t)server < up->n_servers && st->active[server] > 0)
        st->active[server]--;
}

unsigned wr_balancer_active(const struct wr_balancer *b, const struct wr_upstream_cfg *up,
                            int server)
{
    const struct ups_state *st = state_of(b, up);
    if (st == NULL || server < 0 || (size_t)server >= up->n_servers)
        return 0;
    return st->active[server];
}

/* ---- picking ----------------------------------------------------------------- */

static bool is_candidate(const struct wr_upstream_cfg *up, size_t i, const uint64_t *tried,
                         uint64_t now_ms)
{
    if (tried != NULL && wr_upstream_set_has(tried, i))
        return false;
    return wr_upstream_is_up(up, (int)i, now_ms);
}

/* nginx's smooth weighted round robin over list: each candidate's current
 * weight grows by its weight, the largest wins and pays the total back.
 * Weights 5,1,1 give a a b a c a a: spread out, never a burst of five. */
static int swrr_pick(struct ups_state *st, const struct wr_upstream_cfg *up, const int *list,
                     size_t n)
{
    int64_t total = 0;
    int best = -1;
    for (size_t k = 0; k < n; k++) {
        int i = list[k];
        st->current[i] += up->servers[i].weight;
        total += up->servers[i].weight;
        if (best < 0 || st->current[i] > st->current[best])
            best = i;
    }
    st->current[best] -= total;
    return best;
}

/* a's load (active / weight) compared with b's: < 0, 0 or > 0. */
static int compare_load(const struct ups_state *st, const struct wr_upstream_cfg *up, int a, int b)
{
    uint64_t la = (uint64_t)st->active[a] * up->servers[b].weight;
    uint64_t lb = (uint64_t)st->active[b] * up->servers[a].weight;
    return la < lb ? -1 : la > lb;
}

/* The least loaded candidates share the requests by smooth WRR, so ties
 * (idle servers above all) follow the weights and never favour index 0. */
static int least_conn_pick(struct ups_state *st, const struct wr_upstream_cfg *up, int *list,
                           size_t n)
{
    int least = list[0];
    for (size_t k = 1; k < n; k++) {
        if (compare_load(st, up, list[k], least) < 0)
            least = list[k];
    }
    size_t m = 0;
    for (size_t k = 0; k < n; k++) {
        if (compare_load(st, up, list[k], least) == 0)
            list[m++] = list[k];
    }
    return swrr_pick(st, up, list, m);
}

/* One candidate drawn with probability weight / total; skip (>= 0) is left out. */
static int weighted_draw(uint64_t *rng, const struct wr_upstream_cfg *up, const int *list,
                         size_t n, int skip)
{
    uint64_t total = 0;
    for (size_t k = 0; k < n; k++)
        total += list[k] == skip ? 0 : up->servers[list[k]].weight;
    uint64_t r = random_below(rng, total);
    for (size_t k = 0; k < n; k++) {
        uint64_t w = list[k] == skip ? 0 : up->servers[list[k]].weight;
        if (r < w)
            return list[k];
        r -= w;
    }
    return list[n - 1]; /* not reached: r < total */
}

/* Power of two choices: two distinct weighted draws, the less loaded wins.
 * Nearly as even as least_conn, without every worker herding onto the same
 * momentarily idle server. */
static int p2c_pick(struct wr_balancer *b, struct ups_state *st, const struct wr_upstream_cfg *up,
                    const int *list, size_t n)
{
    int first = weighted_draw(&b->rng, up, list, n, -1);
    if (n == 1)
        return first;
    int second = weighted_draw(&b->rng, up, list, n, first);
    return compare_load(st, up, second, first) < 0 ? second : first;
}

/* The first point at or after the key's place, then clockwise to the first
 * usable, untried server. */
static int ring_pick(const struct ups_state *st, const struct wr_upstream_cfg *up,
                     struct wr_str key, const uint64_t *tried, uint64_t now_ms)
{
    uint32_t pos = (uint32_t)(wr_hash_bytes(key.ptr, key.len) >> 32);
    size_t lo = 0, hi = st->n_points;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (st->ring[mid].pos < pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t k = 0; k < st->n_points; k++) {
        uint32_t i = st->ring[(lo + k) % st->n_points].server;
        if (is_candidate(up, i, tried, now_ms))
            return (int)i;
    }
    return -1;
}

/* Rendezvous hashing: the candidate with the highest score for key. Used
 * for an upstream of an older snapshot, which has no ring on this worker. */
static int rendezvous_pick(const struct wr_upstream_cfg *up, struct wr_str key,
                           const uint64_t *tried, uint64_t now_ms)
{
    uint64_t kh = wr_hash_bytes(key.ptr, key.len), best_score = 0;
    int best = -1;
    for (size_t i = 0; i < up->n_servers; i++) {
        if (!is_candidate(up, i, tried, now_ms))
            continue;
        const char *label = up->servers[i].label;
        uint64_t score = wr_hash_mix64(kh ^ wr_hash_bytes(label, strlen(label)));
        if (best < 0 || score > best_score) {
            best = (int)i;
            best_score = score;
        }
    }
    return best;
}

/* Weighted random without any per-upstream state. */
static int stateless_pick(struct wr_balancer *b, const struct wr_upstream_cfg *up,
                          struct wr_str key, const uint64_t *tried, uint64_t now_ms)
{
    if (up->balance == WR_BALANCE_HASH)
        return rendezvous_pick(up, key, tried, now_ms);
    uint64_t local_rng = new_seed(up);
    uint64_t *rng = b != NULL ? &b->rng : &local_rng;
    uint64_t total = 0;
    for (size_t i = 0; i < up->n_servers; i++)
        total += is_candidate(up, i, tried, now_ms) ? up->servers[i].weight : 0;
    if (total == 0)
        return -1;
    uint64_t r = random_below(rng, total);
    int last = -1;
    for (size_t i = 0; i < up->n_servers; i++) {
        if (!is_candidate(up, i, tried, now_ms))
            continue; /* health may change meanwhile: then the last candidate seen */
        last = (int)i;
        if (r < up->servers[i].weight)
            return last;
        r -= up->servers[i].weight;
    }
    return last;
}

int wr_balancer_pick(struct wr_balancer *b, const struct wr_upstream_cfg *up,
                     struct wr_str key, const uint64_t *tried, uint64_t now_ms)
{
    if (up == NULL || up->n_servers == 0)
        return -1;
    struct ups_state *st = state_of(b, up);
    if (st == NULL)
        return stateless_pick(b, up, key, tried, now_ms);
    if (up->balance == WR_BALANCE_HASH)
        return ring_pick(st, up, key, tried, now_ms);
    size_t n = 0;
    for (size_t i = 0; i < up->n_servers; i++) {
        if (is_candidate(up, i, tried, now_ms))
            b->scratch[n++] = (int)i;
    }
    if (n == 0)
        return -1;
    switch (up->balance) {
    case WR_BALANCE_LEAST_CONN:
        return least_conn_pick(st, up, b->scratch, n);
    case WR_BALANCE_RANDOM:
        return p2c_pick(b, st, up, b->scratch, n);
    default:
        return swrr_pick(st, up, b->scratch, n);
    }
}

/* ---- the active checker (main's event base) -------------------------------- */

/* One checked server: its interval timer and the check in flight, if any. */
struct probe {
    struct wr_health_checker *hc;
    const struct wr_upstream_cfg *up; /* borrowed from hc->cfg */
    size_t server;
    struct event *tick;      /* every health_interval (EV_PERSIST) */
    struct event *deadline;  /* health_timeout of the check in flight */
    struct bufferevent *bev; /* the check in flight, or NULL */
    bool is_connected;       /* of the check in flight */
};

struct wr_health_checker {
    struct event_base *base; /* borrowed: main's */
    struct wr_config *cfg;   /* a reference, or NULL */
    struct probe *probes;    /* one per server of every checked upstream */
    size_t n_probes;
};

/* Publishes a verdict; logs only transitions (a failing server is not
 * logged again at every interval). */
static void publish_verdict(const struct probe *p, bool is_up, const char *why)
{
    struct wr_server_health *h = &p->up->health[p->server];
    int next = is_up ? WR_CHECK_UP : WR_CHECK_DOWN;
    int prev = atomic_exchange_explicit(&h->check, next, memory_order_relaxed);
    const char *label = p->up->servers[p->server].label;
    if (!is_up && prev != WR_CHECK_DOWN)
        wr_log(WR_LOG_WARN, -1, 0, "upstream %s: server %s failed its health check (%s): "
               "taken out", p->up->name, label, why);
    else if (is_up && prev == WR_CHECK_DOWN)
        wr_log(WR_LOG_INFO, -1, 0, "upstream %s: server %s passed its health check: back in",
               p->up->name, label);
}

static void end_check(struct probe *p)
{
    if (p->bev != NULL)
        bufferevent_free(p->bev); /* safe inside its own callbacks */
    p->bev = NULL;
    if (p->deadline != NULL)
        evtimer_del(p->deadline);
}

static void finish_check(struct probe *p, bool is_up, const char *why)
{
    end_check(p);
    publish_verdict(p, is_up, why);
}

/* "HTTP/1.x SSS ..." -> SSS, or -1. */
static int parse_status_line(const char *line, size_t len)
{
    if (len < 12 || memcmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') ||
        line[8] != ' ')
        return -1;
    int status = 0;
    for (size_t i = 9; i < 12; i++) {
        if (line[i] < '0' || line[i] > '9')
            return -1;
        status = status * 10 + (line[i] - '0');
    }
    return (len == 12 || line[12] == ' ') && status >= 100 ? status : -1;
}

static void on_check_read(struct bufferevent *bev, void *arg)
{
    struct probe *p = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t eol_len = 0;
    struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
    if (eol.pos < 0) {
        if (evbuffer_get_length(in) > CHECK_LINE_MAX)
            finish_check(p, false, "no status line in the first 1 KiB");
        return;
    }
    char line[CHECK_LINE_MAX];
    size_t len = (size_t)eol.pos < sizeof(line) ? (size_t)eol.pos : sizeof(line) - 1;
    evbuffer_copyout(in, line, len);
    int status = parse_status_line(line, len);
    char why[64];
    if (status < 0) {
        finish_check(p, false, "malformed status line");
    } else {
        snprintf(why, sizeof(why), "status %d", status);
        finish_check(p, status >= 200 && status < 400, why);
    }
}

static void on_check_event(struct bufferevent *bev, short what, void *arg)
{
    struct probe *p = arg;
    int err = errno;
    char why[128];
    if (what & BEV_EVENT_CONNECTED) {
        p->is_connected = true; /* TLS: the handshake succeeded too */
        return;
    }
    unsigned long tls_err = p->up->tls ? bufferevent_get_openssl_error(bev) : 0;
    if (tls_err != 0) {
        char reason[96];
        wr_tls_client_failure(bufferevent_openssl_get_ssl(bev), tls_err, reason, sizeof(reason));
        snprintf(why, sizeof(why), "TLS: %s", reason);
    } else if (what & BEV_EVENT_ERROR)
        snprintf(why, sizeof(why), "%s: %s", p->is_connected ? "read" : "connect",
                 err != 0 ? strerror(err) : "failed");
    else
        snprintf(why, sizeof(why), "closed before the status line");
    finish_check(p, false, why);
}

static void on_check_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct probe *p = arg;
    char why[96];
    snprintf(why, sizeof(why), "%s within %llu ms", p->is_connected ? "no status line" :
             "no connection", (unsigned long long)p->up->health_timeout_ms);
    finish_check(p, false, why);
}

static struct timeval ms_to_tv(uint64_t ms)
{
    return (struct timeval){.tv_sec = (time_t)(ms / 1000),
                            .tv_usec = (suseconds_t)(ms % 1000) * 1000};
}

/* The check's connection: plain, or TLS with the upstream's client
 * context (the same verification as the workers' connections). The
 * libevent OpenSSL filter is plenty for one probe per interval. */
static struct bufferevent *new_check_bev(const struct probe *p)
{
    if (!p->up->tls)
        return bufferevent_socket_new(p->hc->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!p->up->tls_client)
        return NULL;
    struct ssl_st *ssl = wr_tls_client_ssl_new(p->up->tls_client, p->server);
    if (ssl == NULL)
        return NULL;
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        p->hc->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        wr_tls_ssl_free(ssl);
        return NULL;
    }
    /* The server may close right after its response, without close_notify. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

static void start_check(struct probe *p)
{
    const struct wr_upstream_server_cfg *srv = &p->up->servers[p->server];
    p->is_connected = false;
    p->bev = new_check_bev(p);
    if (p->bev == NULL) {
        finish_check(p, false, p->up->tls && !p->up->tls_client ? "no TLS client context"
                                                                 : "out of memory");
        return;
    }
    bufferevent_setcb(p->bev, on_check_read, NULL, on_check_event, p);
    /* Queued before connecting: libevent sends it once connected. */
    if (evbuffer_add_printf(bufferevent_get_output(p->bev),
                                           "%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: weir-health"
                                           "\r\nConnection: close\r\n\r\n",
                                           p->up->health_check, srv->authority) < 0) {
        finish_check(p, false, "out of memory");
        return;
    }
    errno = 0;
    if (bufferevent_socket_connect(p->bev, (const struct sockaddr *)&srv->addr.addr,
                                   (int)srv->addr.addr_len) < 0) {
        if (p->bev == NULL) /* libevent already reported it through on_check_event */
            return;
        char why[128];
        snprintf(why, sizeof(why), "connect: %s", errno ? strerror(errno) : "failed");
        finish_check(p, false, why);
        return;
    }
    if (bufferevent_enable(p->bev, EV_READ | EV_WRITE) < 0) {
        finish_check(p, false, "cannot watch the socket");
        return;
    }
    struct timeval tv = ms_to_tv(p->up->health_timeout_ms);
    evtimer_add(p->deadline, &tv);
}

static void on_check_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct probe *p = arg;
    if (p->bev == NULL) /* else the last check is still running (timeout > interval) */
        start_check(p);
}

static void stop_all(struct wr_health_checker *hc)
{
    for (size_t i = 0; i < hc->n_probes; i++) {
        struct probe *p = &hc->probes[i];
        end_check(p);
        if (p->tick != NULL)
            event_free(p->tick);
        if (p->deadline != NULL)
            event_free(p->deadline);
    }
    free(hc->probes);
    hc->probes = NULL;
    hc->n_probes = 0;
    wr_config_unref(hc->cfg);
    hc->cfg = NULL;
}

/* Arms the probe's timers; its first check runs on the next loop turn. */
static int arm_probe(struct wr_health_checker *hc, struct probe *p,
                     const struct wr_upstream_cfg *up, size_t server)
{
    *p = (struct probe){.hc = hc, .up = up, .server = server};
    p->tick = event_new(hc->base, -1, EV_PERSIST, on_check_tick, p);
    p->deadline = evtimer_new(hc->base, on_check_deadline, p);
    struct timeval every = ms_to_tv(up->health_interval_ms);
    if (p->tick == NULL || p->deadline == NULL || event_add(p->tick, &every) < 0)
        return -1;
    event_active(p->tick, EV_TIMEOUT, 1);
    return 0;
}

static size_t count_checked(const struct wr_config *cfg)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_upstreams; i++)
        n += cfg->upstreams[i].health_check != NULL ? cfg->upstreams[i].n_servers : 0;
    return n;
}

void wr_health_checker_set_config(struct wr_health_checker *hc, struct wr_config *cfg)
{
    stop_all(hc);
    if (cfg == NULL || count_checked(cfg) == 0)
        return;
    hc->cfg = wr_config_ref(cfg);
    hc->probes = calloc(count_checked(cfg), sizeof(*hc->probes));
    if (hc->probes == NULL) {
        wr_log(WR_LOG_ERROR, -1, 0, "health checks: out of memory; servers are not checked");
        return;
    }
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        const struct wr_upstream_cfg *up = &cfg->upstreams[i];
        for (size_t j = 0; up->health_check != NULL && j < up->n_servers; j++) {
            /* Counted first, so stop_all frees a half-armed probe too. */
            struct probe *p = &hc->probes[hc->n_probes++];
            if (arm_probe(hc, p, up, j) < 0) {
                wr_log(WR_LOG_ERROR, -1, 0, "health checks: cannot arm a timer; "
                       "servers are not checked");
                stop_all(hc);
                return;
            }
        }
    }
}

struct wr_health_checker *wr_health_checker_new(struct event_base *base)
{
    struct wr_health_checker *hc = calloc(1, sizeof(*hc));
    if (hc != NULL)
        hc->base = base;
    return hc;
}

void wr_health_checker_free(struct wr_health_checker *hc)
{
    if (hc == NULL)
        return;
    stop_all(hc);
    free(hc);
}
