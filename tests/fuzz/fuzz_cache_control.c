/*
 * libFuzzer target for cache_policy (issue 20). The input is a
 * Cache-Control value; it is also tried as a request's and a response's
 * field, as a Vary value and as a Location. Beyond not crashing (ASan
 * catches any read past the exact-size copy), results must keep the
 * promises of cache_policy.h; any violation aborts:
 *  - every number is at most 2^31, and 0 unless its flag is set;
 *    max-stale is never both "any" and a value;
 *  - the canonical form fits WR_CACHE_CC_FORMAT_MAX, is empty exactly when
 *    nothing was parsed, and parses back to an equal struct;
 *  - parsing the value as two field lines equals parsing it once (the
 *    first occurrence wins, flags accumulate);
 *  - the lookup verdict is one of the enum's, an age is capped, and a
 *    SERVE verdict means the response is fresh;
 *  - a normalised Vary list is lower-case, sorted and without duplicates,
 *    and a request always matches its own secondary key;
 *  - an invalidation target is same-origin and its path starts with "/".
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "weir/cache_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_cc_invariants(const struct wr_cache_cc *cc)
{
    const struct {
        uint32_t value, flag;
    } nums[] = {
        {cc->max_age, WR_CC_MAX_AGE},   {cc->s_maxage, WR_CC_S_MAXAGE},
        {cc->max_stale, WR_CC_MAX_STALE}, {cc->min_fresh, WR_CC_MIN_FRESH},
        {cc->stale_while_revalidate, WR_CC_SWR}, {cc->stale_if_error, WR_CC_SIE},
    };
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        if (nums[i].value > WR_CACHE_DELTA_MAX || (nums[i].value && !(cc->flags & nums[i].flag)))
            abort();
    }
    if ((cc->flags & WR_CC_MAX_STALE) && (cc->flags & WR_CC_MAX_STALE_ANY))
        abort();
    if (cc->flags >= (WR_CC_SIE << 1))
        abort();
}

static void check_round_trip(const struct wr_cache_cc *cc, struct wr_str v)
{
    char out[WR_CACHE_CC_FORMAT_MAX];
    size_t n = wr_cache_cc_format(cc, out, sizeof(out));
    if ((n == 0) != (cc->flags == 0))
        abort();
    char *exact = malloc(n ? n : 1);
    if (!exact)
        abort();
    memcpy(exact, out, n);
    struct wr_cache_cc again;
    wr_cache_cc_init(&again);
    wr_cache_cc_parse(&again, (struct wr_str){exact, n});
    free(exact);
    if (memcmp(&again, cc, sizeof(again)) != 0)
        abort();
    struct wr_cache_cc twice;
    wr_cache_cc_init(&twice);
    wr_cache_cc_parse(&twice, v);
    wr_cache_cc_parse(&twice, v);
    if (memcmp(&twice, cc, sizeof(twice)) != 0)
        abort();
}

static void check_decisions(struct wr_str v, int64_t now_off)
{
    const int64_t t0 = 784111777;
    struct wr_http_header h = {WR_STR("Cache-Control"), v};
    struct wr_cache_req req;
    struct wr_cache_resp resp;
    wr_cache_req_scan(&req, WR_HTTP_GET, &h, 1);
    wr_cache_resp_scan(&resp, 200, &h, 1, t0);
    const struct wr_cache_opts opts = {.stale_while_revalidate_sec = 5};
    enum wr_cache_reason r = wr_cache_storable(&req, &resp, &opts);
    if ((unsigned)r >= WR_CACHE_N_REASONS)
        abort();
    struct wr_cache_fresh f;
    wr_cache_fresh_init(&f, &resp, &opts, t0, t0);
    struct wr_cache_decision d = wr_cache_decide(&f, &req, t0 + now_off);
    if ((unsigned)d.verdict > WR_CACHE_GATEWAY_TIMEOUT || d.age > WR_CACHE_DELTA_MAX)
        abort();
    if (d.verdict == WR_CACHE_SERVE && d.ttl <= 0)
        abort();
    (void)wr_cache_stale_if_error(&f, &req, t0 + now_off);
}

static void check_vary(struct wr_str v)
{
    struct wr_http_header h[2] = {{WR_STR("Vary"), v}, {WR_STR("Accept"), v}};
    char names[WR_CACHE_VARY_NAMES_MAX];
    int n = wr_cache_vary_names(h, 1, names, sizeof(names));
    if (n < 0)
        return;
    size_t start = 0;
    struct wr_str prev = {NULL, 0};
    for (size_t i = 0; i <= (size_t)n && n > 0; i++) {
        if (i < (size_t)n && names[i] != ',')
            continue;
        struct wr_str name = {names + start, i - start};
        for (size_t k = 0; k < name.len; k++)
            if (name.ptr[k] >= 'A' && name.ptr[k] <= 'Z')
                abort();
        if (name.len == 0)
            abort();
        if (prev.ptr) {
            size_t m = prev.len < name.len ? prev.len : name.len;
            int c = memcmp(prev.ptr, name.ptr, m);
            if (c > 0 || (c == 0 && prev.len >= name.len))
                abort(); /* not sorted, or a duplicate */
        }
        prev = name;
        start = i + 1;
    }
    char key[WR_CACHE_VARY_KEY_MAX];
    int k = wr_cache_vary_values((struct wr_str){names, (size_t)n}, h, 2, key, sizeof(key));
    if (k >= 0 && !wr_cache_vary_match((struct wr_str){names, (size_t)n},
                                       (struct wr_str){key, (size_t)k}, h, 2))
        abort();
}

static void check_target(struct wr_str v)
{
    struct wr_cache_target t;
    if (!wr_cache_invalidation_target(WR_STR("http"), WR_STR("example.com"), v, &t))
        return;
    if (t.path_query.len == 0 || t.path_query.ptr[0] != '/' || t.port != 80 ||
        !wr_str_eq_nocase(t.host, WR_STR("example.com")))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1); /* exact size: over-reads are ASan reports */
    if (!copy)
        abort();
    memcpy(copy, data, size);
    struct wr_str v = {copy, size};
    struct wr_cache_cc cc;
    wr_cache_cc_init(&cc);
    wr_cache_cc_parse(&cc, v);
    check_cc_invariants(&cc);
    check_round_trip(&cc, v);
    check_decisions(v, size > 0 ? (int64_t)data[0] * 7 : 0);
    check_vary(v);
    check_target(v);
    free(copy);
    return 0;
}
