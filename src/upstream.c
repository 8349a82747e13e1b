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
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "weir/clock.h"
#include "weir/hash.h"
#include "weir/log.h"
#include "weir/proxy_protocol.h"
#include "weir/stream.h"
#include "weir/tls.h"

/* Ring points per unit of weight: with 160 a server's share of keys is
 * within a few percent of its weight. The ring is capped (RING_MAX_POINTS,
 * 512 KiB per upstream per worker) by giving heavy pools fewer points per
 * unit, which keeps distribution fine since each server still has many. */
#define RING_POINTS_PER_WEIGHT 160
#define RING_MAX_POINTS 65536u
/* A status line longer than this is not HTTP: the check fails. */
#define CHECK_LINE_MAX 1024

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
    uint64_t n = atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed);
    uint64_t s = wr_hash_mix64(wr_clock_now_us() ^ (uintptr_t)salt ^ (n * 0x9e3779b97f4a7c15ULL));
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

/* Whether up has a server at addr. */
static bool has_server_at(const struct wr_upstream_cfg *up, const struct wr_listen_addr *addr)
{
    for (size_t k = 0; up != NULL && k < up->n_servers; k++) {
        if (same_addr(&up->servers[k].addr, addr))
            return true;
    }
    return false;
}

void wr_upstream_retire_vanished(const struct wr_config *old_cfg,
                                 const struct wr_config *new_cfg)
{
    for (size_t i = 0; old_cfg != NULL && new_cfg != NULL && i < old_cfg->n_upstreams; i++) {
        const struct wr_upstream_cfg *ou = &old_cfg->upstreams[i];
        const struct wr_upstream_cfg *nu = find_upstream(new_cfg, ou->name);
        size_t n_kept = 0;
        for (size_t k = 0; k < ou->n_servers; k++)
            n_kept += has_server_at(nu, &ou->servers[k].addr);
        if (nu == NULL || n_kept == 0)
            continue; /* better the old addresses than a 502 for those requests */
        for (size_t k = 0; k < ou->n_servers; k++) {
            if (!has_server_at(nu, &ou->servers[k].addr))
                atomic_store_explicit(&ou->health[k].check, WR_CHECK_DOWN,
                                      memory_order_relaxed);
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
    /* hash_kind: read from hash_key once, at load */
    if (up->hash_kind == WR_HASH_KEY_CLIENT_IP)
        return client_ip;
    if (req == NULL)
        return empty_str();
    switch (up->hash_kind) {
    case WR_HASH_KEY_URI:
        return req->target;
    case WR_HASH_KEY_HEADER: {
        const struct wr_http_header *h = wr_http_find_header(req, up->hash_name);
        return h != NULL ? h->value : empty_str();
    }
    case WR_HASH_KEY_COOKIE:
        return find_cookie(req, up->hash_name);
    default:
        return empty_str();
    }
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

/* Where the check in flight of a probe is. */
enum probe_step {
    STEP_IDLE = 0,   /* no check in flight */
    STEP_CONNECTING, /* TCP connect in progress */
    STEP_HANDSHAKE,  /* TLS handshake (tls = on) */
    STEP_SENDING,    /* writing the request */
    STEP_READING,    /* waiting for the status line */
};

/* One checked server: its interval timer and the check in flight, if any.
 * A check is a plain or TLS stream (stream.h) carrying one request and the
 * first line of its response. */
struct probe {
    struct wr_health_checker *hc;
    const struct wr_upstream_cfg *up; /* borrowed from hc->cfg */
    size_t server;
    struct event *tick;      /* every health_interval (EV_PERSIST) */
    struct event *deadline;  /* health_timeout of the check in flight */
    struct event io;         /* the check's socket, one direction at a time */
    bool is_io_assigned;     /* io was assigned for the check in flight */
    bool is_connected;       /* of the check in flight: TCP and TLS are up */
    enum probe_step step;
    struct wr_stream s;      /* the check in flight (fd -1 when none) */
    char *buf;               /* owned: the request, then CHECK_LINE_MAX for the line */
    size_t req_len, req_sent, line_len;
};

struct wr_health_checker {
    struct event_base *base; /* borrowed: main's */
    struct wr_stream_stage *stage; /* owned: TLS staging of the probes */
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
    if (p->is_io_assigned)
        event_del(&p->io);
    p->is_io_assigned = false;
    if (p->s.fd >= 0)
        wr_stream_close_notify(&p->s); /* polite, when TLS got that far */
    wr_stream_fini(&p->s);
    free(p->buf);
    p->buf = NULL;
    p->step = STEP_IDLE;
    if (p->deadline != NULL)
        evtimer_del(p->deadline);
}

static void finish_check(struct probe *p, bool is_up, const char *why)
{
    end_check(p);
    publish_verdict(p, is_up, why);
}

__attribute__((format(printf, 2, 3))) static void fail_check(struct probe *p, const char *fmt,
                                                             ...)
{
    char why[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    finish_check(p, false, why);
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

/* Each step below returns the event to wait for (EV_READ, EV_WRITE), or 0
 * when it moved to the next step or ended the check (step IDLE). */

static short probe_connect(struct probe *p)
{
    int err = wr_stream_connect_error(&p->s);
    if (err != 0) {
        fail_check(p, "connect: %s", strerror(err));
        return 0;
    }
    if (p->up->send_proxy_protocol) {
        /* A server that expects a PROXY header on every connection gets
         * one from the checks too: LOCAL (v2) or UNKNOWN (v1), no client. */
        char h[WR_PP_OUT_MAX];
        size_t n = wr_pp_write(h, p->up->send_proxy_protocol, NULL, NULL, true);
        if (send(p->s.fd, h, n, MSG_NOSIGNAL) != (ssize_t)n) {
            fail_check(p, "send: %s", strerror(errno));
            return 0;
        }
    }
    p->step = wr_stream_is_tls(&p->s) ? STEP_HANDSHAKE : STEP_SENDING;
    return 0;
}

static short probe_handshake(struct probe *p)
{
    char why[128];
    enum wr_tls_result r = wr_stream_handshake(&p->s, why, sizeof(why));
    if (r == WR_TLS_WANT_READ || r == WR_TLS_WANT_WRITE)
        return r == WR_TLS_WANT_READ ? EV_READ : EV_WRITE;
    if (r != WR_TLS_DONE) {
        fail_check(p, "TLS: %s", why); /* OpenSSL's reason, and the certificate's */
        return 0;
    }
    p->step = STEP_SENDING;
    return 0;
}

static short probe_send(struct probe *p)
{
    p->is_connected = true;
    while (p->req_sent < p->req_len) {
        struct iovec iov = {p->buf + p->req_sent, p->req_len - p->req_sent};
        ssize_t w = wr_stream_writev(&p->s, &iov, 1);
        if (w < 0 && errno == EAGAIN)
            return EV_WRITE;
        if (w < 0) {
            fail_check(p, "send: %s", strerror(errno));
            return 0;
        }
        p->req_sent += (size_t)w;
    }
    int r = wr_stream_flush(&p->s); /* TLS: a record taken may still wait */
    if (r == 0)
        return EV_WRITE;
    if (r < 0) {
        fail_check(p, "send: %s", strerror(errno));
        return 0;
    }
    p->step = STEP_READING;
    return 0;
}

/* The status line, ended by LF or CRLF, judged. */
static void judge_line(struct probe *p, const char *line, size_t len)
{
    if (len > 0 && line[len - 1] == '\r')
        len--;
    int status = parse_status_line(line, len);
    if (status < 0) {
        finish_check(p, false, "malformed status line");
        return;
    }
    char why[64];
    snprintf(why, sizeof(why), "status %d", status);
    finish_check(p, status >= 200 && status < 400, why);
}

static short probe_read(struct probe *p)
{
    char *line = p->buf + p->req_len;
    for (;;) { /* each turn reads bytes into a bounded buffer, or ends */
        ssize_t n = wr_stream_read(&p->s, line + p->line_len, CHECK_LINE_MAX - p->line_len);
        if (n < 0 && errno == EAGAIN)
            return EV_READ;
        if (n == 0 || (n < 0 && errno == WR_TLS_ETRUNCATED)) {
            finish_check(p, false, "closed before the status line");
            return 0;
        }
        if (n < 0) {
            fail_check(p, "read: %s", strerror(errno));
            return 0;
        }
        const char *eol = memchr(line + p->line_len, '\n', (size_t)n);
        p->line_len += (size_t)n;
        if (eol) {
            judge_line(p, line, (size_t)(eol - line));
            return 0;
        }
        if (p->line_len == CHECK_LINE_MAX) {
            finish_check(p, false, "no status line in the first 1 KiB");
            return 0;
        }
    }
}

static void on_probe_io(evutil_socket_t fd, short what, void *arg);

/* Runs the check's steps until one has to wait (then watches the socket
 * for it) or the check ended. */
static void advance_check(struct probe *p)
{
    short wait = 0;
    while (wait == 0 && p->step != STEP_IDLE) {
        switch (p->step) {
        case STEP_CONNECTING:
            wait = probe_connect(p);
            break;
        case STEP_HANDSHAKE:
            wait = probe_handshake(p);
            break;
        case STEP_SENDING:
            wait = probe_send(p);
            break;
        default:
            wait = probe_read(p);
            break;
        }
    }
    if (wait == 0)
        return;
    if (p->is_io_assigned)
        event_del(&p->io);
    event_assign(&p->io, p->hc->base, p->s.fd, wait, on_probe_io, p);
    p->is_io_assigned = true;
    if (event_add(&p->io, NULL) < 0)
        finish_check(p, false, "cannot watch the socket");
}

static void on_probe_io(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    advance_check(arg);
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

/* The check's request, then room for the status line, into p->buf. */
static int make_request(struct probe *p)
{
#define CHECK_REQUEST                                                                       \
    "%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: weir-health\r\nConnection: close\r\n\r\n"
    const char *authority = p->up->servers[p->server].authority;
    int len = snprintf(NULL, 0, CHECK_REQUEST, p->up->health_check, authority);
    if (len < 0 || !(p->buf = malloc((size_t)len + 1 + CHECK_LINE_MAX)))
        return -1;
    snprintf(p->buf, (size_t)len + 1, CHECK_REQUEST, p->up->health_check, authority);
#undef CHECK_REQUEST
    p->req_len = (size_t)len;
    return 0;
}

static void start_check(struct probe *p)
{
    p->is_connected = false;
    p->req_sent = p->line_len = 0;
    if (p->up->tls && !p->up->tls_client) {
        finish_check(p, false, "no TLS client context");
        return;
    }
    if (make_request(p) < 0) {
        finish_check(p, false, "out of memory");
        return;
    }
    bool is_connecting;
    if (wr_stream_connect(&p->s, &p->up->servers[p->server].addr, &is_connecting) < 0) {
        fail_check(p, "connect: %s", strerror(errno));
        return;
    }
    /* The upstream's client context: the workers' SNI and verification;
     * no resumption (one probe per interval needs none). */
    if (p->up->tls &&
        wr_stream_tls_client(&p->s, p->up->tls_client, p->server, NULL, p->hc->stage) < 0) {
        finish_check(p, false, "out of memory");
        return;
    }
    struct timeval tv = ms_to_tv(p->up->health_timeout_ms);
    evtimer_add(p->deadline, &tv);
    p->step = STEP_CONNECTING;
    if (is_connecting) {
        p->is_io_assigned = true;
        event_assign(&p->io, p->hc->base, p->s.fd, EV_WRITE, on_probe_io, p);
        if (event_add(&p->io, NULL) < 0)
            finish_check(p, false, "cannot watch the socket");
        return;
    }
    advance_check(p);
}

static void on_check_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct probe *p = arg;
    if (p->step == STEP_IDLE) /* else the last check is still running (timeout > interval) */
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
    *p = (struct probe){.hc = hc, .up = up, .server = server, .s = {.fd = -1}};
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
    if (hc != NULL && (hc->stage = wr_stream_stage_new()) == NULL) {
        free(hc);
        return NULL;
    }
    if (hc != NULL)
        hc->base = base;
    return hc;
}

void wr_health_checker_free(struct wr_health_checker *hc)
{
    if (hc == NULL)
        return;
    stop_all(hc);
    wr_stream_stage_free(hc->stage);
    free(hc);
}
