/*
 * Unit tests for cache_policy (issue 20, RFC 9111 / RFC 5861 / RFC 9211):
 * tables of header sets -> Cache-Control directives, storable or why not,
 * freshness lifetime and its source, ages, the lookup verdict,
 * stale-if-error, Vary secondary keys, invalidation targets, 304 updates
 * and Cache-Status values.
 *
 * Header sets are written as "Name: value|Name: value"; "{+N}" or "{-N}"
 * inside a value stands for the IMF-fixdate of T0 + N seconds. Every set is
 * copied into an exact-size heap buffer so ASan sees one-byte over-reads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "weir/cache_policy.h"

/* RFC 9110's example date: Sun, 06 Nov 1994 08:49:37 GMT. */
#define T0 ((int64_t)784111777)

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* An exact-size heap copy of s (free with free()). */
static struct wr_str heap(const char *s)
{
    size_t n = strlen(s);
    char *p = malloc(n ? n : 1);
    assert_non_null(p);
    memcpy(p, s, n);
    return (struct wr_str){p, n};
}

struct fields {
    char *buf; /* owns every slice in h */
    struct wr_http_header h[32];
    size_t n;
};

static size_t format_date(int64_t t, char *out, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    assert_non_null(gmtime_r(&tt, &tm));
    return strftime(out, cap, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Parses "A: 1|B: 2" into f (an exact-size buffer: values are slices). */
static void fields_init(struct fields *f, const char *text)
{
    memset(f, 0, sizeof(*f));
    char tmp[4096];
    size_t len = 0;
    for (const char *p = text; *p;) {
        if (p[0] == '{' && (p[1] == '+' || p[1] == '-')) {
            char *end;
            long off = strtol(p + 1, &end, 10);
            assert_true(*end == '}');
            len += format_date(T0 + off, tmp + len, sizeof(tmp) - len);
            p = end + 1;
        } else {
            assert_true(len + 1 < sizeof(tmp));
            tmp[len++] = *p++;
        }
    }
    f->buf = malloc(len ? len : 1);
    assert_non_null(f->buf);
    memcpy(f->buf, tmp, len);
    size_t start = 0;
    for (size_t i = 0; i <= len && len > 0; i++) {
        if (i < len && f->buf[i] != '|')
            continue;
        struct wr_str line = {f->buf + start, i - start};
        const char *colon = memchr(line.ptr, ':', line.len);
        assert_non_null(colon);
        assert_true(f->n < N_OF(f->h));
        size_t name_len = (size_t)(colon - line.ptr);
        f->h[f->n].name = (struct wr_str){line.ptr, name_len};
        f->h[f->n].value =
            wr_str_trim((struct wr_str){colon + 1, line.len - name_len - 1});
        f->n++;
        start = i + 1;
    }
}

static void fields_fini(struct fields *f)
{
    free(f->buf);
    f->buf = NULL;
}

static struct wr_cache_cc parse_cc(const char *value)
{
    struct wr_cache_cc cc;
    wr_cache_cc_init(&cc);
    struct wr_str v = heap(value);
    wr_cache_cc_parse(&cc, v);
    free((void *)v.ptr);
    return cc;
}

/* ---- Cache-Control ------------------------------------------------------ */

#define F(x) WR_CC_##x

static void issue_20_cc_parse(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        uint32_t flags;
        uint32_t max_age, s_maxage, max_stale, min_fresh, swr, sie;
    } cases[] = {
        {"", 0, 0, 0, 0, 0, 0, 0},
        {"max-age=60", F(MAX_AGE), 60, 0, 0, 0, 0, 0},
        {"MAX-AGE=60", F(MAX_AGE), 60, 0, 0, 0, 0, 0},
        {"max-age=\"60\"", F(MAX_AGE), 60, 0, 0, 0, 0, 0}, /* §5.2: both forms */
        {"public, max-age=60, s-maxage=120", F(PUBLIC) | F(MAX_AGE) | F(S_MAXAGE), 60, 120, 0, 0,
         0, 0},
        {"no-store", F(NO_STORE), 0, 0, 0, 0, 0, 0},
        {"no-cache", F(NO_CACHE), 0, 0, 0, 0, 0, 0},
        {"no-cache=\"Set-Cookie, X-Foo\"", F(NO_CACHE), 0, 0, 0, 0, 0, 0},
        {"private=\"X-Foo\", max-age=5", F(PRIVATE) | F(MAX_AGE), 5, 0, 0, 0, 0, 0},
        {"no-cache=Set-Cookie,max-age=5", F(NO_CACHE) | F(MAX_AGE), 5, 0, 0, 0, 0, 0},
        /* §4.2.1: the first occurrence is used */
        {"max-age=10, max-age=20", F(MAX_AGE), 10, 0, 0, 0, 0, 0},
        {"max-age=20,max-age=0", F(MAX_AGE), 20, 0, 0, 0, 0, 0},
        /* invalid freshness is stale: max-age 0 */
        {"max-age=abc", F(MAX_AGE), 0, 0, 0, 0, 0, 0},
        {"max-age=-1", F(MAX_AGE), 0, 0, 0, 0, 0, 0},
        {"max-age=", F(MAX_AGE), 0, 0, 0, 0, 0, 0},
        {"max-age", F(MAX_AGE), 0, 0, 0, 0, 0, 0},
        {"max-age=1.5", F(MAX_AGE), 0, 0, 0, 0, 0, 0},
        {"max-age=5 6", F(MAX_AGE), 0, 0, 0, 0, 0, 0},
        {"max-age=abc, max-age=60", F(MAX_AGE), 0, 0, 0, 0, 0, 0},
        {"s-maxage=x", F(S_MAXAGE), 0, 0, 0, 0, 0, 0},
        /* §1.2.2: overflow is 2^31 */
        {"max-age=2147483648", F(MAX_AGE), 2147483648u, 0, 0, 0, 0, 0},
        {"max-age=99999999999999999999999999", F(MAX_AGE), 2147483648u, 0, 0, 0, 0, 0},
        {"max-age=2147483647", F(MAX_AGE), 2147483647u, 0, 0, 0, 0, 0},
        {"max-age=007", F(MAX_AGE), 7, 0, 0, 0, 0, 0},
        /* request directives */
        {"max-stale", F(MAX_STALE_ANY), 0, 0, 0, 0, 0, 0},
        {"max-stale=30", F(MAX_STALE), 0, 0, 30, 0, 0, 0},
        {"max-stale=30, max-stale", F(MAX_STALE), 0, 0, 30, 0, 0, 0},
        {"max-stale, max-stale=30", F(MAX_STALE_ANY), 0, 0, 0, 0, 0, 0},
        {"max-stale=x", 0, 0, 0, 0, 0, 0, 0}, /* invalid: ignored, never widens */
        {"min-fresh=20", F(MIN_FRESH), 0, 0, 0, 20, 0, 0},
        {"min-fresh=", 0, 0, 0, 0, 0, 0, 0},
        {"only-if-cached", F(ONLY_IF_CACHED), 0, 0, 0, 0, 0, 0},
        {"no-transform", F(NO_TRANSFORM), 0, 0, 0, 0, 0, 0},
        /* RFC 5861 */
        {"max-age=600, stale-while-revalidate=30", F(MAX_AGE) | F(SWR), 600, 0, 0, 0, 30, 0},
        {"max-age=600, stale-if-error=1200", F(MAX_AGE) | F(SIE), 600, 0, 0, 0, 0, 1200},
        {"stale-if-error=abc", 0, 0, 0, 0, 0, 0, 0},
        {"must-revalidate, proxy-revalidate", F(MUST_REVALIDATE) | F(PROXY_REVALIDATE), 0, 0, 0,
         0, 0, 0},
        {"immutable, max-age=31536000", F(IMMUTABLE) | F(MAX_AGE), 31536000, 0, 0, 0, 0, 0},
        {"must-understand, no-store", F(MUST_UNDERSTAND) | F(NO_STORE), 0, 0, 0, 0, 0, 0},
        /* lists: empty elements, OWS, unknown extensions, quoted commas */
        {" ,, max-age=5 ,  ,public ,", F(MAX_AGE) | F(PUBLIC), 5, 0, 0, 0, 0, 0},
        {"community=\"UCI\", max-age=5", F(MAX_AGE), 5, 0, 0, 0, 0, 0},
        {"foo=\"a,max-age=9\", max-age=5", F(MAX_AGE), 5, 0, 0, 0, 0, 0},
        {"foo=\"a\\\"b,max-age=9\", public", F(PUBLIC), 0, 0, 0, 0, 0, 0},
        {"max-age=\"1\\0\"", F(MAX_AGE), 0, 0, 0, 0, 0, 0}, /* quoted-pair: not a number */
        {"max-age=\"60", F(MAX_AGE), 0, 0, 0, 0, 0, 0},     /* unterminated */
        {"max-age = 60", F(MAX_AGE), 0, 0, 0, 0, 0, 0},     /* no BWS in the grammar */
        /* malformed: restrictive ones still apply, permissive ones do not */
        {"no-store junk", F(NO_STORE), 0, 0, 0, 0, 0, 0},
        {"public junk, max-age=5", F(MAX_AGE), 5, 0, 0, 0, 0, 0},
        {"no-store=1", F(NO_STORE), 0, 0, 0, 0, 0, 0},
        {"=5, public", F(PUBLIC), 0, 0, 0, 0, 0, 0},
        {"max-agex=5", 0, 0, 0, 0, 0, 0, 0},
        {"no-store\x01, public", F(NO_STORE) | F(PUBLIC), 0, 0, 0, 0, 0, 0},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct wr_cache_cc cc = parse_cc(cases[i].value);
        struct wr_cache_cc want = {cases[i].flags,     cases[i].max_age,   cases[i].s_maxage,
                                   cases[i].max_stale, cases[i].min_fresh, cases[i].swr,
                                   cases[i].sie};
        if (memcmp(&cc, &want, sizeof(cc)) != 0)
            fail_msg("\"%s\": flags %#x max-age %u s-maxage %u max-stale %u min-fresh %u "
                     "swr %u sie %u; want flags %#x",
                     cases[i].value, cc.flags, cc.max_age, cc.s_maxage, cc.max_stale,
                     cc.min_fresh, cc.stale_while_revalidate, cc.stale_if_error, want.flags);
    }
}

/* Several field lines accumulate; the first line's value wins. */
static void issue_20_cc_several_lines(void **state)
{
    (void)state;
    struct fields f;
    fields_init(&f, "Cache-Control: max-age=10|Cache-Control: no-cache, max-age=20|"
                    "cache-control: s-maxage=7|Pragma: no-cache");
    struct wr_cache_resp r;
    wr_cache_resp_scan(&r, 200, f.h, f.n, T0);
    assert_int_equal(r.cc.flags, F(MAX_AGE) | F(NO_CACHE) | F(S_MAXAGE));
    assert_int_equal(r.cc.max_age, 10);
    assert_int_equal(r.cc.s_maxage, 7);
    fields_fini(&f);
}

static void issue_20_cc_format(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"", ""},
        {"MAX-AGE=\"60\", Public", "public, max-age=60"},
        {"max-stale", "max-stale"},
        {"max-stale=3, no-cache=\"a\"", "no-cache, max-stale=3"},
        {"max-age=99999999999", "max-age=2147483648"},
        {"no-store, no-cache, private, public, must-revalidate, proxy-revalidate, no-transform, "
         "immutable, must-understand, only-if-cached, max-age=2147483648, "
         "s-maxage=2147483648, max-stale=2147483648, min-fresh=2147483648, "
         "stale-while-revalidate=2147483648, stale-if-error=2147483648",
         NULL /* same as in */},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct wr_cache_cc cc = parse_cc(cases[i].in);
        char out[WR_CACHE_CC_FORMAT_MAX];
        size_t n = wr_cache_cc_format(&cc, out, sizeof(out));
        const char *want = cases[i].want ? cases[i].want : cases[i].in;
        if (n != strlen(want) || memcmp(out, want, n) != 0)
            fail_msg("\"%s\": got \"%.*s\", want \"%s\"", cases[i].in, (int)n, out, want);
        char again[WR_CACHE_CC_FORMAT_MAX + 1];
        memcpy(again, out, n);
        again[n] = '\0';
        struct wr_cache_cc cc2 = parse_cc(again);
        assert_memory_equal(&cc, &cc2, sizeof(cc));
        if (n > 0) /* too small a buffer: 0, never a cut value */
            assert_int_equal(wr_cache_cc_format(&cc, out, n - 1), 0);
    }
}

/* ---- Storability -------------------------------------------------------- */

static const struct wr_cache_valid valid_302[] = {{302, 600}};

static void issue_20_storable(void **state)
{
    (void)state;
    const struct wr_cache_opts opt_cookie = {.store_set_cookie = true};
    const struct wr_cache_opts opt_valid = {.valid = valid_302, .n_valid = 1};
    const struct wr_cache_opts opt_post = {.methods_mask = 1u << WR_HTTP_POST};
    static const struct wr_cache_valid valid_any[] = {{0, 60}};
    const struct wr_cache_opts opt_any = {.valid = valid_any, .n_valid = 1};
    const struct {
        enum wr_http_method method;
        const char *req;
        int status;
        const char *resp;
        const struct wr_cache_opts *opts;
        enum wr_cache_reason want;
    } cases[] = {
        {WR_HTTP_GET, "", 200, "", NULL, WR_CACHE_OK}, /* heuristically cacheable */
        {WR_HTTP_HEAD, "", 200, "", NULL, WR_CACHE_OK},
        {WR_HTTP_POST, "", 200, "Cache-Control: max-age=60", NULL, WR_CACHE_NO_METHOD},
        {WR_HTTP_POST, "", 200, "Cache-Control: max-age=60", &opt_post, WR_CACHE_OK},
        {WR_HTTP_GET, "", 200, "", &opt_post, WR_CACHE_NO_METHOD},
        {WR_HTTP_OTHER, "", 200, "", NULL, WR_CACHE_NO_METHOD},
        {WR_HTTP_GET, "", 100, "", NULL, WR_CACHE_NO_STATUS},
        {WR_HTTP_GET, "", 206, "Cache-Control: max-age=60", NULL, WR_CACHE_NO_STATUS},
        {WR_HTTP_GET, "", 304, "Cache-Control: max-age=60", NULL, WR_CACHE_NO_STATUS},
        {WR_HTTP_GET, "", 299, "Cache-Control: max-age=60", NULL, WR_CACHE_NO_STATUS},
        {WR_HTTP_GET, "", 599, "Cache-Control: public", NULL, WR_CACHE_NO_STATUS},
        {WR_HTTP_GET, "", 600, "", NULL, WR_CACHE_NO_STATUS},
        {WR_HTTP_GET, "Cache-Control: no-store", 200, "", NULL, WR_CACHE_NO_STORE_REQUEST},
        {WR_HTTP_GET, "", 200, "Cache-Control: no-store", NULL, WR_CACHE_NO_STORE},
        {WR_HTTP_GET, "", 200, "Cache-Control: max-age=60, NO-STORE", NULL, WR_CACHE_NO_STORE},
        {WR_HTTP_GET, "", 200, "Cache-Control: must-understand, no-store", NULL, WR_CACHE_OK},
        {WR_HTTP_GET, "", 200, "Cache-Control: private", NULL, WR_CACHE_NO_PRIVATE},
        {WR_HTTP_GET, "", 200, "Cache-Control: private=\"X-A\", max-age=60", NULL,
         WR_CACHE_NO_PRIVATE},
        {WR_HTTP_GET, "", 200, "Cache-Control: public, private", NULL, WR_CACHE_NO_PRIVATE},
        /* §3.5 */
        {WR_HTTP_GET, "Authorization: Basic eDp5", 200, "Cache-Control: max-age=60", NULL,
         WR_CACHE_NO_AUTHORIZATION},
        {WR_HTTP_GET, "Authorization: Basic eDp5", 200, "", NULL, WR_CACHE_NO_AUTHORIZATION},
        {WR_HTTP_GET, "Authorization: Basic eDp5", 200, "Cache-Control: public", NULL,
         WR_CACHE_OK},
        {WR_HTTP_GET, "Authorization: Basic eDp5", 200, "Cache-Control: s-maxage=60", NULL,
         WR_CACHE_OK},
        {WR_HTTP_GET, "Authorization: Basic eDp5", 200, "Cache-Control: must-revalidate", NULL,
         WR_CACHE_OK},
        {WR_HTTP_GET, "Authorization: Basic eDp5", 200, "Cache-Control: proxy-revalidate",
         NULL, WR_CACHE_NO_AUTHORIZATION},
        {WR_HTTP_GET, "", 200, "Set-Cookie: a=1|Cache-Control: max-age=60", NULL,
         WR_CACHE_NO_SET_COOKIE},
        {WR_HTTP_GET, "", 200, "Set-Cookie: a=1|Cache-Control: max-age=60", &opt_cookie,
         WR_CACHE_OK},
        {WR_HTTP_GET, "", 200, "Vary: Accept-Encoding, *", NULL, WR_CACHE_NO_VARY_STAR},
        {WR_HTTP_GET, "", 200, "Vary: accept|Vary: *", NULL, WR_CACHE_NO_VARY_STAR},
        {WR_HTTP_GET, "", 200, "Vary: Accept-Encoding", NULL, WR_CACHE_OK},
        /* §3: some source of freshness */
        {WR_HTTP_GET, "", 302, "", NULL, WR_CACHE_NO_FRESHNESS},
        {WR_HTTP_GET, "", 302, "Location: /x", &opt_valid, WR_CACHE_OK},
        {WR_HTTP_GET, "", 500, "", &opt_any, WR_CACHE_OK},
        {WR_HTTP_GET, "", 302, "Cache-Control: max-age=60", NULL, WR_CACHE_OK},
        {WR_HTTP_GET, "", 307, "Expires: {+60}", NULL, WR_CACHE_OK},
        {WR_HTTP_GET, "", 307, "Expires: 0", NULL, WR_CACHE_OK}, /* stored stale */
        {WR_HTTP_GET, "", 303, "Cache-Control: public", NULL, WR_CACHE_OK},
        {WR_HTTP_GET, "", 500, "Cache-Control: s-maxage=5", NULL, WR_CACHE_OK},
        {WR_HTTP_GET, "", 503, "Retry-After: 5", NULL, WR_CACHE_NO_FRESHNESS},
        {WR_HTTP_GET, "", 404, "", NULL, WR_CACHE_OK},
        {WR_HTTP_GET, "", 410, "", NULL, WR_CACHE_OK},
        {WR_HTTP_GET, "", 501, "", NULL, WR_CACHE_OK},
        {WR_HTTP_GET, "", 200, "Cache-Control: no-cache", NULL, WR_CACHE_OK},
        {WR_HTTP_GET, "Cache-Control: no-cache", 200, "", NULL, WR_CACHE_OK},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct fields rq, rs;
        fields_init(&rq, cases[i].req);
        fields_init(&rs, cases[i].resp);
        struct wr_cache_req req;
        struct wr_cache_resp resp;
        wr_cache_req_scan(&req, cases[i].method, rq.h, rq.n);
        wr_cache_resp_scan(&resp, cases[i].status, rs.h, rs.n, T0);
        enum wr_cache_reason got = wr_cache_storable(&req, &resp, cases[i].opts);
        if (got != cases[i].want)
            fail_msg("case %zu (%d, \"%s\"): got %s, want %s", i, cases[i].status,
                     cases[i].resp, wr_cache_reason_name(got), wr_cache_reason_name(cases[i].want));
        fields_fini(&rq);
        fields_fini(&rs);
    }
    assert_string_equal(wr_cache_reason_name(WR_CACHE_NO_STORE), "no-store");
    assert_string_equal(wr_cache_reason_name(WR_CACHE_N_REASONS), "");
}

static void issue_20_heuristic_statuses(void **state)
{
    (void)state;
    static const int yes[] = {200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501};
    int n_yes = 0;
    for (int s = 0; s < 1000; s++)
        n_yes += wr_cache_status_heuristic(s);
    assert_int_equal(n_yes, N_OF(yes));
    for (size_t i = 0; i < N_OF(yes); i++)
        assert_true(wr_cache_status_heuristic(yes[i]));
}

/* ---- Freshness lifetime ------------------------------------------------- */

static void issue_20_lifetime(void **state)
{
    (void)state;
    static const struct wr_cache_valid valid[] = {{301, 3600}, {0, 60}};
    const struct wr_cache_opts opt_valid = {.valid = valid, .n_valid = 2};
    const struct wr_cache_opts opt_cap = {.heuristic_max_sec = 100};
    const struct {
        int status;
        const char *resp;
        const struct wr_cache_opts *opts;
        uint32_t want;
        enum wr_cache_lifetime_source src;
    } cases[] = {
        {200, "Cache-Control: max-age=60", NULL, 60, WR_CACHE_LIFETIME_MAX_AGE},
        {200, "Cache-Control: max-age=60, s-maxage=10", NULL, 10, WR_CACHE_LIFETIME_S_MAXAGE},
        {200, "Cache-Control: s-maxage=0, max-age=600", NULL, 0, WR_CACHE_LIFETIME_S_MAXAGE},
        /* §5.3: max-age beats Expires */
        {200, "Date: {+0}|Expires: {+3600}|Cache-Control: max-age=5", NULL, 5,
         WR_CACHE_LIFETIME_MAX_AGE},
        {200, "Date: {+0}|Expires: {+3600}", NULL, 3600, WR_CACHE_LIFETIME_EXPIRES},
        {200, "Date: {+100}|Expires: {+3600}", NULL, 3500, WR_CACHE_LIFETIME_EXPIRES},
        {200, "Date: {+0}|Expires: {-10}", NULL, 0, WR_CACHE_LIFETIME_EXPIRES},
        {200, "Date: {+0}|Expires: 0", NULL, 0, WR_CACHE_LIFETIME_EXPIRES},
        {200, "Date: {+0}|Expires: garbage|Last-Modified: {-100000}", NULL, 0,
         WR_CACHE_LIFETIME_EXPIRES}, /* explicit (if invalid): no heuristic */
        {200, "Date: {+0}|Expires: {+60}|Expires: {+6000}", NULL, 60, WR_CACHE_LIFETIME_EXPIRES},
        /* no Date: response_time (T0) stands in */
        {200, "Expires: {+90}", NULL, 90, WR_CACHE_LIFETIME_EXPIRES},
        {200, "Date: nonsense|Expires: {+90}", NULL, 90, WR_CACHE_LIFETIME_EXPIRES},
        {200, "Date: {+0}|Expires: Sun, 06 Nov 1994 08:49:37 GMT", NULL, 0,
         WR_CACHE_LIFETIME_EXPIRES},
        {200, "Expires: Fri, 31 Dec 9999 23:59:59 GMT", NULL, 2147483648u,
         WR_CACHE_LIFETIME_EXPIRES},
        /* heuristic: 10 % of Date - Last-Modified, capped */
        {200, "Date: {+0}|Last-Modified: {-1000}", NULL, 100, WR_CACHE_LIFETIME_HEURISTIC},
        {200, "Date: {+0}|Last-Modified: {-9999}", NULL, 999, WR_CACHE_LIFETIME_HEURISTIC},
        {200, "Date: {+0}|Last-Modified: {-100000000}", NULL, 86400,
         WR_CACHE_LIFETIME_HEURISTIC},
        {200, "Date: {+0}|Last-Modified: {-100000}", &opt_cap, 100,
         WR_CACHE_LIFETIME_HEURISTIC},
        {200, "Date: {+0}|Last-Modified: {+50}", NULL, 0, WR_CACHE_LIFETIME_HEURISTIC},
        {404, "Date: {+0}|Last-Modified: {-1000}", NULL, 100, WR_CACHE_LIFETIME_HEURISTIC},
        {302, "Date: {+0}|Last-Modified: {-1000}", NULL, 0, WR_CACHE_LIFETIME_NONE},
        {302, "Date: {+0}|Last-Modified: {-1000}|Cache-Control: public", NULL, 100,
         WR_CACHE_LIFETIME_HEURISTIC},
        {200, "Date: {+0}|Last-Modified: yesterday", NULL, 0, WR_CACHE_LIFETIME_NONE},
        {200, "Date: {+0}|Last-Modified: yesterday|Last-Modified: {-1000}", NULL, 0,
         WR_CACHE_LIFETIME_NONE}, /* the first line counts, even when bad */
        {200, "Date: {+0}|Last-Modified: {-1000}|Last-Modified: {-5000}", NULL, 100,
         WR_CACHE_LIFETIME_HEURISTIC},
        {200, "", NULL, 0, WR_CACHE_LIFETIME_NONE},
        /* operator fallback: only without explicit freshness or heuristic */
        {301, "", &opt_valid, 3600, WR_CACHE_LIFETIME_FALLBACK},
        {302, "", &opt_valid, 60, WR_CACHE_LIFETIME_FALLBACK},
        {200, "Cache-Control: max-age=7", &opt_valid, 7, WR_CACHE_LIFETIME_MAX_AGE},
        {200, "Cache-Control: no-cache", &opt_valid, 60, WR_CACHE_LIFETIME_FALLBACK},
        {200, "Date: {+0}|Last-Modified: {-1000}", &opt_valid, 100,
         WR_CACHE_LIFETIME_HEURISTIC},
        {200, "Date: {+0}|Expires: 0", &opt_valid, 0, WR_CACHE_LIFETIME_EXPIRES},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct fields rs;
        fields_init(&rs, cases[i].resp);
        struct wr_cache_resp resp;
        wr_cache_resp_scan(&resp, cases[i].status, rs.h, rs.n, T0);
        enum wr_cache_lifetime_source src;
        uint32_t got = wr_cache_lifetime(&resp, cases[i].opts, &src);
        if (got != cases[i].want || src != cases[i].src)
            fail_msg("case %zu (%d, \"%s\"): got %u from %d, want %u from %d", i,
                     cases[i].status, cases[i].resp, got, src, cases[i].want, cases[i].src);
        fields_fini(&rs);
    }
}

/* ---- Age (§4.2.3) ------------------------------------------------------- */

static void issue_20_age(void **state)
{
    (void)state;
    static const struct {
        const char *resp;
        int64_t request_time, response_time, now;
        uint32_t initial, current;
    } cases[] = {
        /* no Date, no Age, no delay */
        {"", 0, 0, 0, 0, 0},
        {"", 0, 0, 30, 0, 30},
        /* apparent age: the origin's clock is 10 s behind ours */
        {"Date: {-10}", 0, 0, 0, 10, 10},
        /* a Date in the future is not a negative age */
        {"Date: {+50}", 0, 0, 5, 0, 5},
        /* Age plus the response delay */
        {"Date: {+0}|Age: 100", -2, 0, 0, 102, 102},
        {"Date: {+0}|Age: 100", -2, 0, 60, 102, 162},
        /* the larger of apparent age and corrected Age */
        {"Date: {-300}|Age: 100", -2, 0, 0, 300, 300},
        {"Date: {-3}|Age: 10", -1, 0, 7, 11, 18},
        /* invalid Age is ignored; first line wins */
        {"Date: {+0}|Age: -5", 0, 0, 0, 0, 0},
        {"Date: {+0}|Age: 1.5", 0, 0, 0, 0, 0},
        {"Date: {+0}|Age: 7|Age: 9", 0, 0, 0, 7, 7},
        {"Date: {+0}|Age: x|Age: 9", 0, 0, 0, 0, 0},
        {"Date: {-10}|Date: {-500}", 0, 0, 0, 10, 10},
        {"Date: {+0}|Age:  8 ", 0, 0, 0, 8, 8},
        /* caps: §1.2.2 */
        {"Date: {+0}|Age: 99999999999999", 0, 0, 0, 2147483648u, 2147483648u},
        {"Date: {+0}|Age: 2147483000", 0, 0, 100000, 2147483000u, 2147483648u},
        /* a clock that steps back: no negative delay or residence */
        {"Date: {+0}|Age: 5", 10, 0, -100, 5, 5},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct fields rs;
        fields_init(&rs, cases[i].resp);
        struct wr_cache_resp resp;
        int64_t rt = T0 + cases[i].response_time;
        wr_cache_resp_scan(&resp, 200, rs.h, rs.n, rt);
        uint32_t initial = wr_cache_initial_age(&resp, T0 + cases[i].request_time, rt);
        struct wr_cache_fresh f;
        wr_cache_fresh_init(&f, &resp, NULL, T0 + cases[i].request_time, rt);
        uint32_t current = wr_cache_current_age(&f, T0 + cases[i].now);
        if (initial != cases[i].initial || current != cases[i].current || f.initial_age != initial)
            fail_msg("case %zu \"%s\": initial %u current %u, want %u %u", i, cases[i].resp,
                     initial, current, cases[i].initial, cases[i].current);
        fields_fini(&rs);
    }
}

/* ---- The lookup decision ------------------------------------------------ */

static void issue_20_decide(void **state)
{
    (void)state;
    const struct wr_cache_opts swr_route = {.stale_while_revalidate_sec = 30};
    const struct {
        const char *resp; /* stored at T0, Date T0, request sent at T0 */
        const struct wr_cache_opts *opts;
        const char *req;
        int64_t now;      /* seconds after T0 */
        enum wr_cache_verdict want;
        bool forced;
        int64_t ttl;
    } cases[] = {
        {"Cache-Control: max-age=60", NULL, "", 0, WR_CACHE_SERVE, false, 60},
        {"Cache-Control: max-age=60", NULL, "", 59, WR_CACHE_SERVE, false, 1},
        /* fresh means lifetime > current_age: at 60 it is stale */
        {"Cache-Control: max-age=60", NULL, "", 60, WR_CACHE_REVALIDATE, false, 0},
        {"Cache-Control: max-age=60", NULL, "", 100, WR_CACHE_REVALIDATE, false, -40},
        {"Cache-Control: max-age=0", NULL, "", 0, WR_CACHE_REVALIDATE, false, 0},
        {"Cache-Control: max-age=60|Age: 50", NULL, "", 9, WR_CACHE_SERVE, false, 1},
        {"Cache-Control: max-age=60|Age: 50", NULL, "", 10, WR_CACHE_REVALIDATE, false, 0},
        /* response no-cache: always revalidated, even fresh */
        {"Cache-Control: max-age=60, no-cache", NULL, "", 0, WR_CACHE_REVALIDATE, false, 60},
        {"Cache-Control: max-age=60, no-cache", NULL, "Cache-Control: max-stale", 90,
         WR_CACHE_REVALIDATE, false, -30},
        /* request no-cache, Pragma */
        {"Cache-Control: max-age=60", NULL, "Cache-Control: no-cache", 0, WR_CACHE_REVALIDATE,
         true, 60},
        {"Cache-Control: max-age=60", NULL, "Pragma: no-cache", 0, WR_CACHE_REVALIDATE, true,
         60},
        {"Cache-Control: max-age=60", NULL, "Pragma: no-cache|Cache-Control: max-stale", 0,
         WR_CACHE_SERVE, false, 60}, /* §5.4: Pragma ignored next to Cache-Control */
        {"Cache-Control: max-age=60", NULL, "Cache-Control: no-cache", 70, WR_CACHE_REVALIDATE,
         false, -10},
        /* request max-age */
        {"Cache-Control: max-age=60", NULL, "Cache-Control: max-age=10", 5, WR_CACHE_SERVE,
         false, 55},
        {"Cache-Control: max-age=60", NULL, "Cache-Control: max-age=10", 11,
         WR_CACHE_REVALIDATE, true, 49},
        {"Cache-Control: max-age=60", NULL, "Cache-Control: max-age=0", 0, WR_CACHE_SERVE,
         false, 60},
        {"Cache-Control: max-age=60", NULL, "Cache-Control: max-age=0", 1, WR_CACHE_REVALIDATE,
         true, 59},
        {"Cache-Control: max-age=60", NULL, "Cache-Control: max-age=100, max-stale=50", 80,
         WR_CACHE_SERVE_STALE, false, -20},
        {"Cache-Control: max-age=60", NULL, "Cache-Control: max-age=70, max-stale=50", 80,
         WR_CACHE_REVALIDATE, false, -20},
        /* min-fresh */
        {"Cache-Control: max-age=60", NULL, "Cache-Control: min-fresh=20", 40, WR_CACHE_SERVE,
         false, 20},
        {"Cache-Control: max-age=60", NULL, "Cache-Control: min-fresh=20", 41,
         WR_CACHE_REVALIDATE, true, 19},
        {"Cache-Control: max-age=60", NULL, "Cache-Control: min-fresh=20, max-stale", 70,
         WR_CACHE_REVALIDATE, false, -10},
        /* max-stale */
        {"Cache-Control: max-age=60", NULL, "Cache-Control: max-stale", 1000000,
         WR_CACHE_SERVE_STALE, false, -999940},
        {"Cache-Control: max-age=60", NULL, "Cache-Control: max-stale=10", 70,
         WR_CACHE_SERVE_STALE, false, -10},
        {"Cache-Control: max-age=60", NULL, "Cache-Control: max-stale=10", 71,
         WR_CACHE_REVALIDATE, false, -11},
        {"Cache-Control: max-age=60", NULL, "Cache-Control: max-stale=bad", 61,
         WR_CACHE_REVALIDATE, false, -1},
        /* §4.2.4: directives that forbid serving stale */
        {"Cache-Control: max-age=60, must-revalidate", NULL, "Cache-Control: max-stale", 61,
         WR_CACHE_REVALIDATE, false, -1},
        {"Cache-Control: max-age=60, proxy-revalidate", NULL, "Cache-Control: max-stale", 61,
         WR_CACHE_REVALIDATE, false, -1},
        {"Cache-Control: s-maxage=60", NULL, "Cache-Control: max-stale", 61,
         WR_CACHE_REVALIDATE, false, -1},
        {"Cache-Control: max-age=60, must-revalidate", NULL, "", 59, WR_CACHE_SERVE, false, 1},
        /* stale-while-revalidate (RFC 5861 §3), response or route default */
        {"Cache-Control: max-age=60, stale-while-revalidate=30", NULL, "", 61,
         WR_CACHE_SERVE_REFRESH, false, -1},
        {"Cache-Control: max-age=60, stale-while-revalidate=30", NULL, "", 90,
         WR_CACHE_SERVE_REFRESH, false, -30},
        {"Cache-Control: max-age=60, stale-while-revalidate=30", NULL, "", 91,
         WR_CACHE_REVALIDATE, false, -31},
        {"Cache-Control: max-age=60", &swr_route, "", 85, WR_CACHE_SERVE_REFRESH, false, -25},
        {"Cache-Control: max-age=60, stale-while-revalidate=0", &swr_route, "", 61,
         WR_CACHE_REVALIDATE, false, -1}, /* the response's own value wins */
        {"Cache-Control: max-age=60, stale-while-revalidate=30, must-revalidate", NULL, "", 61,
         WR_CACHE_REVALIDATE, false, -1},
        {"Cache-Control: max-age=60, stale-while-revalidate=30", NULL,
         "Cache-Control: no-cache", 61, WR_CACHE_REVALIDATE, false, -1},
        {"Cache-Control: max-age=60, stale-while-revalidate=30", NULL,
         "Cache-Control: max-stale=5", 62, WR_CACHE_SERVE_STALE, false, -2},
        /* only-if-cached: whatever would go upstream is a 504 */
        {"Cache-Control: max-age=60", NULL, "Cache-Control: only-if-cached", 0, WR_CACHE_SERVE,
         false, 60},
        {"Cache-Control: max-age=60", NULL, "Cache-Control: only-if-cached", 61,
         WR_CACHE_GATEWAY_TIMEOUT, false, -1},
        {"Cache-Control: max-age=60", NULL, "Cache-Control: only-if-cached, max-stale", 61,
         WR_CACHE_SERVE_STALE, false, -1},
        {"Cache-Control: max-age=60, no-cache", NULL, "Cache-Control: only-if-cached", 0,
         WR_CACHE_GATEWAY_TIMEOUT, false, 60},
        /* Expires-based and heuristic entries age the same way */
        {"Date: {+0}|Expires: {+30}", NULL, "", 29, WR_CACHE_SERVE, false, 1},
        {"Date: {+0}|Last-Modified: {-1000}", NULL, "", 99, WR_CACHE_SERVE, false, 1},
        {"Date: {+0}|Last-Modified: {-1000}", NULL, "", 100, WR_CACHE_REVALIDATE, false, 0},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct fields rs, rq;
        fields_init(&rs, cases[i].resp);
        fields_init(&rq, cases[i].req);
        struct wr_cache_resp resp;
        struct wr_cache_req req;
        wr_cache_resp_scan(&resp, 200, rs.h, rs.n, T0);
        wr_cache_req_scan(&req, WR_HTTP_GET, rq.h, rq.n);
        struct wr_cache_fresh f;
        wr_cache_fresh_init(&f, &resp, cases[i].opts, T0, T0);
        struct wr_cache_decision d = wr_cache_decide(&f, &req, T0 + cases[i].now);
        if (d.verdict != cases[i].want || d.is_request_forced != cases[i].forced ||
            d.ttl != cases[i].ttl)
            fail_msg("case %zu (\"%s\" / \"%s\" at +%lld): verdict %d forced %d ttl %lld, "
                     "want %d %d %lld",
                     i, cases[i].resp, cases[i].req, (long long)cases[i].now, d.verdict,
                     d.is_request_forced, (long long)d.ttl, cases[i].want, cases[i].forced,
                     (long long)cases[i].ttl);
        assert_int_equal(d.age, wr_cache_current_age(&f, T0 + cases[i].now));
        fields_fini(&rs);
        fields_fini(&rq);
    }
}

static void issue_20_stale_if_error(void **state)
{
    (void)state;
    const struct wr_cache_opts sie_route = {.stale_if_error_sec = 100};
    const struct {
        const char *resp;
        const struct wr_cache_opts *opts;
        const char *req;
        int64_t now;
        bool want;
    } cases[] = {
        {"Cache-Control: max-age=60", NULL, "", 61, false},
        {"Cache-Control: max-age=60, stale-if-error=60", NULL, "", 61, true},
        {"Cache-Control: max-age=60, stale-if-error=60", NULL, "", 120, true},
        {"Cache-Control: max-age=60, stale-if-error=60", NULL, "", 121, false},
        {"Cache-Control: max-age=60", &sie_route, "", 160, true},
        {"Cache-Control: max-age=60", &sie_route, "", 161, false},
        {"Cache-Control: max-age=60, stale-if-error=10", &sie_route, "", 80, false},
        /* RFC 5861 §4: the request may widen the window */
        {"Cache-Control: max-age=60", NULL, "Cache-Control: stale-if-error=300", 300, true},
        {"Cache-Control: max-age=60, stale-if-error=10", NULL,
         "Cache-Control: stale-if-error=300", 300, true},
        /* must-revalidate and kin: 504 rather than stale (§5.2.2.2) */
        {"Cache-Control: max-age=60, stale-if-error=60, must-revalidate", NULL, "", 61, false},
        {"Cache-Control: s-maxage=60, stale-if-error=60", NULL, "", 61, false},
        {"Cache-Control: max-age=60, stale-if-error=60, proxy-revalidate", NULL, "", 61, false},
        {"Cache-Control: max-age=60, stale-if-error=60, no-cache", NULL, "", 61, false},
        /* a client that demanded validation, unless it said otherwise */
        {"Cache-Control: max-age=60, stale-if-error=60", NULL, "Cache-Control: no-cache", 61,
         false},
        {"Cache-Control: max-age=60, stale-if-error=60", NULL,
         "Cache-Control: no-cache, stale-if-error=5", 61, true},
        /* fresh (revalidation forced by the client) within a window */
        {"Cache-Control: max-age=60, stale-if-error=60", NULL, "", 10, true},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct fields rs, rq;
        fields_init(&rs, cases[i].resp);
        fields_init(&rq, cases[i].req);
        struct wr_cache_resp resp;
        struct wr_cache_req req;
        wr_cache_resp_scan(&resp, 200, rs.h, rs.n, T0);
        wr_cache_req_scan(&req, WR_HTTP_GET, rq.h, rq.n);
        struct wr_cache_fresh f;
        wr_cache_fresh_init(&f, &resp, cases[i].opts, T0, T0);
        bool got = wr_cache_stale_if_error(&f, &req, T0 + cases[i].now);
        if (got != cases[i].want)
            fail_msg("case %zu (\"%s\" / \"%s\" at +%lld): got %d", i, cases[i].resp,
                     cases[i].req, (long long)cases[i].now, got);
        fields_fini(&rs);
        fields_fini(&rq);
    }
}

/* ---- Vary --------------------------------------------------------------- */

static void issue_20_vary_names(void **state)
{
    (void)state;
    static const struct {
        const char *resp;
        int want_len; /* -1 for a refusal */
        const char *want;
    } cases[] = {
        {"", 0, ""},
        {"Content-Type: text/html", 0, ""},
        {"Vary: Accept-Encoding", 15, "accept-encoding"},
        {"Vary: User-Agent, accept-encoding", 26, "accept-encoding,user-agent"},
        {"Vary: Accept-Encoding|VARY: ACCEPT-ENCODING, Accept", 22, "accept,accept-encoding"},
        {"Vary: ,, Cookie ,", 6, "cookie"},
        {"Vary: *", -1, ""},
        {"Vary: Accept|Vary: *", -1, ""},
        {"Vary: Accept, *", -1, ""},
        {"Vary: Acc ept", -1, ""},
        {"Vary: a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v, w, x, y, z,"
         " a1, a2, a3, a4, a5, a6, a7",
         -1, ""}, /* more names than weir keeps apart */
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct fields rs;
        fields_init(&rs, cases[i].resp);
        char out[WR_CACHE_VARY_NAMES_MAX];
        int n = wr_cache_vary_names(rs.h, rs.n, out, sizeof(out));
        if (n != cases[i].want_len || (n > 0 && memcmp(out, cases[i].want, (size_t)n) != 0))
            fail_msg("\"%s\": got %d \"%.*s\"", cases[i].resp, n, n > 0 ? n : 0, out);
        if (n > 0) /* too small: refused, not cut */
            assert_int_equal(wr_cache_vary_names(rs.h, rs.n, out, (size_t)n - 1), -1);
        fields_fini(&rs);
    }
}

static void issue_20_vary_match(void **state)
{
    (void)state;
    static const struct {
        const char *names, *stored_req, *new_req;
        bool want;
    } cases[] = {
        {"", "Accept-Encoding: gzip", "Accept-Encoding: br", true},
        {"accept-encoding", "Accept-Encoding: gzip", "accept-encoding: gzip", true},
        {"accept-encoding", "Accept-Encoding: gzip", "Accept-Encoding: br", false},
        {"accept-encoding", "Accept-Encoding: gzip, br", "Accept-Encoding: gzip|Accept-Encoding: br",
         true}, /* lines combined with ", " (§4.1) */
        {"accept-encoding", "Accept-Encoding:   gzip  ", "Accept-Encoding: gzip", true},
        {"accept-encoding", "Accept-Encoding: gzip,br", "Accept-Encoding: gzip, br", false},
        {"accept-encoding", "Accept-Encoding: GZIP", "Accept-Encoding: gzip", false},
        /* absent only matches absent; empty is not absent */
        {"accept-encoding", "", "", true},
        {"accept-encoding", "", "Accept-Encoding: gzip", false},
        {"accept-encoding", "", "Accept-Encoding: ", false},
        {"accept-encoding", "Accept-Encoding: ", "Accept-Encoding:", true},
        {"accept,accept-encoding", "Accept: a|Accept-Encoding: b",
         "Accept-Encoding: b|Accept: a", true},
        {"accept,accept-encoding", "Accept: a|Accept-Encoding: b", "Accept: a", false},
        {"accept,accept-encoding", "Accept: a", "Accept-Encoding: a", false},
        {"accept,cookie", "Accept: a|Cookie: x", "Accept: a|Cookie: y", false},
        /* a value that spells another field's separator does not collide */
        {"a,b", "A: x|B: y", "A: x, y", false},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct fields s, n;
        fields_init(&s, cases[i].stored_req);
        fields_init(&n, cases[i].new_req);
        struct wr_str names = heap(cases[i].names);
        char key[WR_CACHE_VARY_KEY_MAX], key2[WR_CACHE_VARY_KEY_MAX];
        int len = wr_cache_vary_values(names, s.h, s.n, key, sizeof(key));
        int len2 = wr_cache_vary_values(names, n.h, n.n, key2, sizeof(key2));
        assert_true(len >= 0 && len2 >= 0);
        char *exact = malloc(len ? (size_t)len : 1);
        assert_non_null(exact);
        memcpy(exact, key, (size_t)len);
        struct wr_str stored = {exact, (size_t)len}; /* exact size */
        bool got = wr_cache_vary_match(names, stored, n.h, n.n);
        bool same = len == len2 && memcmp(key, key2, (size_t)len) == 0;
        if (got != cases[i].want || same != cases[i].want)
            fail_msg("case %zu (%s: \"%s\" vs \"%s\"): match %d, keys equal %d", i,
                     cases[i].names, cases[i].stored_req, cases[i].new_req, got, same);
        assert_true(wr_cache_vary_match(names, stored, s.h, s.n));
        if (len > 0)
            assert_int_equal(wr_cache_vary_values(names, s.h, s.n, key, (size_t)len - 1), -1);
        free(exact);
        free((void *)names.ptr);
        fields_fini(&s);
        fields_fini(&n);
    }
}

/* ---- Invalidation (§4.4) ------------------------------------------------ */

static void issue_20_invalidates(void **state)
{
    (void)state;
    static const struct {
        enum wr_http_method method;
        int status;
        bool want;
    } cases[] = {
        {WR_HTTP_POST, 200, true},    {WR_HTTP_POST, 201, true},    {WR_HTTP_PUT, 204, true},
        {WR_HTTP_DELETE, 200, true},  {WR_HTTP_PATCH, 303, true},   {WR_HTTP_OTHER, 200, true},
        {WR_HTTP_POST, 399, true},    {WR_HTTP_POST, 400, false},   {WR_HTTP_POST, 404, false},
        {WR_HTTP_POST, 500, false},   {WR_HTTP_POST, 100, false},   {WR_HTTP_GET, 200, false},
        {WR_HTTP_HEAD, 200, false},   {WR_HTTP_OPTIONS, 200, false}, {WR_HTTP_TRACE, 200, false},
    };
    for (size_t i = 0; i < N_OF(cases); i++)
        if (wr_cache_invalidates(cases[i].method, cases[i].status) != cases[i].want)
            fail_msg("case %zu", i);
}

static void issue_20_invalidation_target(void **state)
{
    (void)state;
    static const struct {
        const char *scheme, *authority, *uri;
        bool want;
        const char *host;
        int port;
        const char *path;
    } cases[] = {
        {"http", "example.com", "/a/b?c=1", true, "example.com", 80, "/a/b?c=1"},
        {"http", "example.com", "/a#frag", true, "example.com", 80, "/a"},
        {"http", "example.com", "  /a  ", true, "example.com", 80, "/a"},
        {"http", "example.com", "http://example.com/x", true, "example.com", 80, "/x"},
        {"http", "example.com", "HTTP://EXAMPLE.COM:80/x", true, "EXAMPLE.COM", 80, "/x"},
        {"http", "example.com:80", "http://example.com/x", true, "example.com", 80, "/x"},
        {"http", "example.com:8080", "http://example.com:8080/x", true, "example.com", 8080,
         "/x"},
        {"http", "example.com:8080", "/x", true, "example.com", 8080, "/x"},
        {"http", "example.com", "http://example.com", true, "example.com", 80, "/"},
        {"http", "example.com", "http://example.com:/y", true, "example.com", 80, "/y"},
        {"http", "example.com", "//example.com/z", true, "example.com", 80, "/z"},
        {"https", "example.com", "https://example.com:443/s", true, "example.com", 443, "/s"},
        {"http", "[::1]:8080", "http://[::1]:8080/v6", true, "[::1]", 8080, "/v6"},
        /* other origins: never (§4.4) */
        {"http", "example.com", "https://example.com/x", false, NULL, 0, NULL},
        {"https", "example.com", "http://example.com/x", false, NULL, 0, NULL},
        {"http", "example.com:443", "https://example.com/x", false, NULL, 0, NULL},
        {"https", "example.com:80", "http://example.com/x", false, NULL, 0, NULL},
        {"http", "example.com", "http://example.com:81/x", false, NULL, 0, NULL},
        {"http", "example.com", "http://evil.example/x", false, NULL, 0, NULL},
        {"http", "example.com", "//evil.example/x", false, NULL, 0, NULL},
        {"http", "example.com", "http://example.com@evil.example/x", false, NULL, 0, NULL},
        {"http", "example.com", "http://user@example.com/x", false, NULL, 0, NULL},
        {"http", "[::1]:8080", "http://[::2]:8080/", false, NULL, 0, NULL},
        /* not understood */
        {"http", "example.com", "x/y", false, NULL, 0, NULL},
        {"http", "example.com", "../y", false, NULL, 0, NULL},
        {"http", "example.com", "mailto:a@b", false, NULL, 0, NULL},
        {"http", "example.com", "ftp://example.com/x", false, NULL, 0, NULL},
        {"http", "example.com", "", false, NULL, 0, NULL},
        {"http", "example.com", "http://example.com:99999/x", false, NULL, 0, NULL},
        {"http", "example.com", "http://example.com?q", false, NULL, 0, NULL},
        {"http", "example.com", "http:/x", false, NULL, 0, NULL},
        {"ws", "example.com", "/x", false, NULL, 0, NULL},
        {"http", "", "/x", false, NULL, 0, NULL},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct wr_str scheme = heap(cases[i].scheme), auth = heap(cases[i].authority),
                      uri = heap(cases[i].uri);
        struct wr_cache_target t;
        bool got = wr_cache_invalidation_target(scheme, auth, uri, &t);
        if (got != cases[i].want)
            fail_msg("case %zu (%s): got %d", i, cases[i].uri, got);
        if (got) {
            assert_true(wr_str_eq(t.scheme, scheme));
            assert_true(wr_str_eq(t.host, wr_str_from_cstr(cases[i].host)));
            assert_int_equal(t.port, cases[i].port);
            assert_true(wr_str_eq(t.path_query, wr_str_from_cstr(cases[i].path)));
        }
        free((void *)scheme.ptr);
        free((void *)auth.ptr);
        free((void *)uri.ptr);
    }
}

/* ---- 304 (§3.2, §4.3.4) ------------------------------------------------- */

static struct wr_str opt_str(const char *s)
{
    return s ? wr_str_from_cstr(s) : (struct wr_str){NULL, 0};
}

static void issue_20_304_selects(void **state)
{
    (void)state;
    static const struct {
        const char *stored_etag, *stored_lm, *new_etag, *new_lm;
        bool want;
    } cases[] = {
        {"\"a\"", NULL, "\"a\"", NULL, true},
        {"\"a\"", NULL, "\"b\"", NULL, false},
        {"W/\"a\"", NULL, "\"a\"", NULL, false}, /* strong needs strong */
        {NULL, "Sun, 06 Nov 1994 08:49:37 GMT", "\"a\"", NULL, false},
        {"\"a\"", "Sun, 06 Nov 1994 08:49:37 GMT", "\"a\"", "Mon, 07 Nov 1994 08:49:37 GMT",
         true}, /* the strong tag decides */
        {"W/\"a\"", NULL, "W/\"a\"", NULL, true},
        {"\"a\"", NULL, "W/\"a\"", NULL, true},
        {"W/\"a\"", NULL, "W/\"b\"", NULL, false},
        {NULL, NULL, "W/\"a\"", NULL, false},
        {NULL, "Sun, 06 Nov 1994 08:49:37 GMT", NULL, "Sunday, 06-Nov-94 08:49:37 GMT", true},
        {NULL, "Sun, 06 Nov 1994 08:49:37 GMT", NULL, "Sun, 06 Nov 1994 08:49:38 GMT", false},
        {NULL, NULL, NULL, "Sun, 06 Nov 1994 08:49:37 GMT", false},
        {"W/\"a\"", "Sun, 06 Nov 1994 08:49:37 GMT", "W/\"a\"", "Sun, 06 Nov 1994 08:49:38 GMT",
         false},
        {NULL, "bogus", NULL, "bogus", true},
        /* no validators on either side: the one stored response */
        {NULL, NULL, NULL, NULL, true},
        {"\"a\"", NULL, NULL, NULL, false},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        bool got = wr_cache_304_selects(opt_str(cases[i].stored_etag), opt_str(cases[i].stored_lm),
                                        opt_str(cases[i].new_etag), opt_str(cases[i].new_lm));
        if (got != cases[i].want)
            fail_msg("case %zu: got %d", i, got);
    }
}

static void issue_20_304_updates(void **state)
{
    (void)state;
    static const struct {
        const char *name, *connection;
        bool updates, stored;
    } cases[] = {
        {"Cache-Control", "", true, true},
        {"ETag", "", true, true},
        {"Expires", "", true, true},
        {"Date", "", true, true},
        {"Content-Type", "", true, true},
        {"X-Custom", "", true, true},
        {"Set-Cookie", "", true, true},
        {"Content-Length", "", false, true},
        {"content-length", "", false, true},
        {"Content-Encoding", "", false, true},
        {"Content-Range", "", false, true},
        {"Age", "", false, false},
        {"Connection", "", false, false},
        {"Keep-Alive", "", false, false},
        {"Proxy-Connection", "", false, false},
        {"TE", "", false, false},
        {"Transfer-Encoding", "", false, false},
        {"Upgrade", "", false, false},
        {"Proxy-Authenticate", "", false, false},
        {"Proxy-Authentication-Info", "", false, false},
        {"Proxy-Authorization", "", false, false},
        {"X-Hop", "close, x-hop", false, false},
        {"X-Hop", "close", true, true},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct wr_str name = heap(cases[i].name), conn = heap(cases[i].connection);
        if (wr_cache_304_updates(name, conn) != cases[i].updates ||
            wr_cache_field_stored(name, conn) != cases[i].stored)
            fail_msg("%s (Connection: %s)", cases[i].name, cases[i].connection);
        free((void *)name.ptr);
        free((void *)conn.ptr);
    }
}

/* ---- Cache-Status (RFC 9211) -------------------------------------------- */

static void issue_20_cache_status(void **state)
{
    (void)state;
    static const struct {
        struct wr_cache_status s;
        const char *name, *want;
    } cases[] = {
        {{.is_hit = true, .has_ttl = true, .ttl = 376}, "", "weir; hit; ttl=376"},
        {{.fwd = WR_CACHE_FWD_URI_MISS, .is_stored = true}, "", "weir; fwd=uri-miss; stored"},
        {{.fwd = WR_CACHE_FWD_STALE, .fwd_status = 304, .has_ttl = true, .ttl = -3},
         "",
         "weir; fwd=stale; fwd-status=304; ttl=-3"},
        {{.fwd = WR_CACHE_FWD_REQUEST, .fwd_status = 200, .is_stored = true}, "",
         "weir; fwd=request; fwd-status=200; stored"},
        {{.fwd = WR_CACHE_FWD_METHOD}, "", "weir; fwd=method"},
        {{.fwd = WR_CACHE_FWD_BYPASS}, "", "weir; fwd=bypass"},
        {{.fwd = WR_CACHE_FWD_VARY_MISS}, "", "weir; fwd=vary-miss"},
        {{.fwd = WR_CACHE_FWD_MISS, .is_collapsed = true}, "", "weir; fwd=miss; collapsed"},
        {{.fwd = WR_CACHE_FWD_URI_MISS, .detail = "no-store"}, "",
         "weir; fwd=uri-miss; detail=no-store"},
        {{.fwd = WR_CACHE_FWD_URI_MISS, .detail = "too big"}, "",
         "weir; fwd=uri-miss; detail=\"too big\""},
        {{.fwd = WR_CACHE_FWD_URI_MISS, .detail = "a\"b\\"}, "",
         "weir; fwd=uri-miss; detail=\"a\\\"b\\\\\""},
        {{.fwd = WR_CACHE_FWD_URI_MISS, .detail = "1x"}, "", "weir; fwd=uri-miss; detail=\"1x\""},
        {{.is_hit = true}, "pages", "pages; hit"},
        /* RFC 9211 §2 and §3 examples */
        {{.is_hit = true}, "ExampleCache", "ExampleCache; hit"},
        {{.fwd = WR_CACHE_FWD_URI_MISS, .is_stored = true}, "ExampleCache",
         "ExampleCache; fwd=uri-miss; stored"},
        {{.fwd = WR_CACHE_FWD_VARY_MISS, .is_collapsed = true}, "ExampleCache",
         "ExampleCache; fwd=vary-miss; collapsed"},
        {{.is_hit = true, .has_ttl = true, .ttl = 545}, "CDN Company Here",
         "\"CDN Company Here\"; hit; ttl=545"},
        {{.is_hit = true, .has_ttl = true, .ttl = 1100}, "OriginCache", "OriginCache; hit; ttl=1100"},
        {{.is_hit = true}, "my cache", "\"my cache\"; hit"},
        {{.is_hit = true, .has_ttl = true, .ttl = 0}, "", "weir; hit; ttl=0"},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        char out[WR_CACHE_STATUS_MAX];
        size_t n = wr_cache_status_format(&cases[i].s, wr_str_from_cstr(cases[i].name), out,
                                          sizeof(out));
        if (n != strlen(cases[i].want) || memcmp(out, cases[i].want, n) != 0)
            fail_msg("case %zu: got \"%.*s\", want \"%s\"", i, (int)n, out, cases[i].want);
        assert_int_equal(wr_cache_status_format(&cases[i].s, wr_str_from_cstr(cases[i].name),
                                                out, n - 1),
                         0);
    }
    struct wr_cache_status bad = {.detail = "tab\there"};
    char out[WR_CACHE_STATUS_MAX];
    assert_int_equal(wr_cache_status_format(&bad, WR_STR(""), out, sizeof(out)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issue_20_cc_parse),
        cmocka_unit_test(issue_20_cc_several_lines),
        cmocka_unit_test(issue_20_cc_format),
        cmocka_unit_test(issue_20_storable),
        cmocka_unit_test(issue_20_heuristic_statuses),
        cmocka_unit_test(issue_20_lifetime),
        cmocka_unit_test(issue_20_age),
        cmocka_unit_test(issue_20_decide),
        cmocka_unit_test(issue_20_stale_if_error),
        cmocka_unit_test(issue_20_vary_names),
        cmocka_unit_test(issue_20_vary_match),
        cmocka_unit_test(issue_20_invalidates),
        cmocka_unit_test(issue_20_invalidation_target),
        cmocka_unit_test(issue_20_304_selects),
        cmocka_unit_test(issue_20_304_updates),
        cmocka_unit_test(issue_20_cache_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
