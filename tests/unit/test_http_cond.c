/*
 * Unit tests for http_cond: entity-tag matching (strong, weak, "*", lists,
 * malformed), HTTP-dates in the three formats and impossible ones, the
 * RFC 9110 §13.2.2 precedence matrix, If-Range, Range parsing against a
 * size, and Accept-Encoding q-values. Table-driven; every input goes
 * through an exact-size heap copy so ASan sees over-reads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "weir/http_cond.h"

/* An exact-size heap copy of s (free with free()). */
static struct wr_str heap(const char *s)
{
    size_t n = strlen(s);
    char *p = malloc(n ? n : 1);
    assert_non_null(p);
    memcpy(p, s, n);
    return (struct wr_str){p, n};
}

static void test_etag_match(void **state)
{
    (void)state;
    static const struct {
        const char *list, *etag;
        bool is_weak, want;
    } cases[] = {
        {"\"abc\"", "\"abc\"", false, true},
        {"\"abc\"", "\"abd\"", false, false},
        {"W/\"abc\"", "\"abc\"", false, false},
        {"W/\"abc\"", "\"abc\"", true, true},
        {"\"abc\"", "W/\"abc\"", true, true},
        {"\"abc\"", "W/\"abc\"", false, false},
        {"*", "\"x\"", false, true},
        {" * ", "\"x\"", true, true},
        {"\"a\", \"b\" ,\"c\"", "\"c\"", false, true},
        {"\"a\",,\"b\"", "\"b\"", false, true},
        {"\"a\", \"b\"", "\"d\"", true, false},
        {"abc", "\"abc\"", false, false},
        {"\"abc", "\"abc\"", false, false},
        {"\"a\" \"b\"", "\"b\"", false, false},
        {"", "\"abc\"", false, false},
        {"\"\"", "\"\"", false, true},
        {"\"a b\"", "\"a b\"", false, false},
        {"W/", "\"a\"", true, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct wr_str list = heap(cases[i].list), etag = heap(cases[i].etag);
        bool got = wr_http_cond_etag_match(list, etag, cases[i].is_weak);
        free((void *)list.ptr);
        free((void *)etag.ptr);
        if (got != cases[i].want)
            fail_msg("case %zu: %s vs %s (weak %d): got %d", i, cases[i].list, cases[i].etag,
                     cases[i].is_weak, got);
    }
}

static void test_dates(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool ok;
        int64_t sec;
    } cases[] = {
        {"Sun, 06 Nov 1994 08:49:37 GMT", true, 784111777},
        {"Sunday, 06-Nov-94 08:49:37 GMT", true, 784111777},
        {"Sun Nov  6 08:49:37 1994", true, 784111777},
        {"Sun Nov 16 08:49:37 1994", true, 784975777},
        {"Thu, 01 Jan 1970 00:00:00 GMT", true, 0},
        {"Mon, 23 Nov 2026 10:00:00 GMT", true, 1795428000},
        {"Tue, 29 Feb 2000 00:00:00 GMT", true, 951782400},
        {"Thursday, 01-Jan-15 00:00:00 GMT", true, 1420070400},
        {"Wed, 29 Feb 2001 00:00:00 GMT", false, 0},
        {"Sun, 31 Apr 1994 08:49:37 GMT", false, 0},
        {"Sun, 06 Nov 1994 24:00:00 GMT", false, 0},
        {"Sun, 06 Nov 1994 08:60:37 GMT", false, 0},
        {"Sun, 06 Nov 1994 08:49:37 UTC", false, 0},
        {"Sun, 06 Nov 1994 08:49:37 GMT junk", false, 0},
        {"Sun, 6 Nov 1994 08:49:37 GMT", false, 0},
        {"Sun, 06 Foo 1994 08:49:37 GMT", false, 0},
        {"06 Nov 1994 08:49:37 GMT", false, 0},
        {"", false, 0},
        {"Sun", false, 0},
        {"Sun,", false, 0},
        {"Sunday, 06-Nov-1994 08:49:37 GMT", false, 0},
        {"Sun Nov  6 08:49:37 94", false, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct wr_str s = heap(cases[i].text);
        int64_t sec = -1;
        bool ok = wr_http_cond_parse_date(s, &sec);
        free((void *)s.ptr);
        if (ok != cases[i].ok || (ok && sec != cases[i].sec))
            fail_msg("\"%s\": got ok=%d sec=%lld, want ok=%d sec=%lld", cases[i].text, ok,
                     (long long)sec, cases[i].ok, (long long)cases[i].sec);
    }
}

#define T0 "Sun, 06 Nov 1994 08:49:37 GMT" /* 784111777 */
#define T_BEFORE "Sun, 06 Nov 1994 08:49:36 GMT"
#define ETAG "\"1f-abc-9\""

static void test_evaluate(void **state)
{
    (void)state;
    /* mtime is 784111777 = T0 throughout */
    static const struct {
        const char *im, *inm, *ims, *ius;
        bool is_get;
        int want;
    } cases[] = {
        {NULL, NULL, NULL, NULL, true, 0},
        {ETAG, NULL, NULL, NULL, true, 0},
        {"\"other\"", NULL, NULL, NULL, true, 412},
        {"*", NULL, NULL, NULL, true, 0},
        {"W/" ETAG, NULL, NULL, NULL, true, 412},       /* If-Match compares strongly */
        {NULL, NULL, NULL, T0, true, 0},
        {NULL, NULL, NULL, T_BEFORE, true, 412},
        {ETAG, NULL, NULL, T_BEFORE, true, 0},          /* If-Match wins over IUS */
        {NULL, NULL, NULL, "garbage", true, 0},         /* bad date ignored */
        {NULL, ETAG, NULL, NULL, true, 304},
        {NULL, "W/" ETAG, NULL, NULL, true, 304},       /* weak compare */
        {NULL, "*", NULL, NULL, true, 304},
        {NULL, ETAG, NULL, NULL, false, 412},
        {NULL, "\"other\"", NULL, NULL, true, 0},
        {NULL, NULL, T0, NULL, true, 304},
        {NULL, NULL, T_BEFORE, NULL, true, 0},
        {NULL, NULL, T0, NULL, false, 0},               /* IMS only for GET/HEAD */
        {NULL, "\"other\"", T0, NULL, true, 0},         /* INM present: IMS ignored */
        {"\"other\"", ETAG, NULL, NULL, true, 412},     /* 412 before 304 */
        {NULL, ETAG, NULL, T_BEFORE, true, 412},
        {ETAG, ETAG, NULL, NULL, true, 304},
    };
    struct wr_str etag = WR_STR(ETAG);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct wr_http_cond c = {
            .if_match = wr_str_from_cstr(cases[i].im),
            .if_none_match = wr_str_from_cstr(cases[i].inm),
            .if_modified_since = wr_str_from_cstr(cases[i].ims),
            .if_unmodified_since = wr_str_from_cstr(cases[i].ius),
            .is_get_or_head = cases[i].is_get,
        };
        int got = wr_http_cond_evaluate(&c, etag, 784111777);
        if (got != cases[i].want)
            fail_msg("case %zu: got %d, want %d", i, got, cases[i].want);
    }
}

static void test_if_range(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        bool want;
    } cases[] = {
        {ETAG, true},         {"W/" ETAG, false}, {"\"other\"", false},
        {T0, true},           {T_BEFORE, false},  {"garbage", false},
        {ETAG ", " ETAG, false}, {"", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct wr_str v = heap(cases[i].value);
        bool got = wr_http_cond_if_range_holds(v, WR_STR(ETAG), 784111777);
        free((void *)v.ptr);
        if (got != cases[i].want)
            fail_msg("If-Range %s: got %d", cases[i].value, got);
    }
}

static void test_range(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        uint64_t size;
        enum wr_http_range_kind want;
        uint64_t first, last;
    } cases[] = {
        {"bytes=0-99", 1000, WR_RANGE_SINGLE, 0, 99},
        {"bytes=100-", 1000, WR_RANGE_SINGLE, 100, 999},
        {"bytes=-100", 1000, WR_RANGE_SINGLE, 900, 999},
        {"bytes=-5000", 1000, WR_RANGE_SINGLE, 0, 999},
        {"bytes=990-5000", 1000, WR_RANGE_SINGLE, 990, 999},
        {"Bytes=0-0", 1000, WR_RANGE_SINGLE, 0, 0},
        {" bytes=5-9 ", 1000, WR_RANGE_SINGLE, 5, 9},
        {"bytes=999-", 1000, WR_RANGE_SINGLE, 999, 999},
        {"bytes=1000-", 1000, WR_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=1000-2000", 1000, WR_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=-0", 1000, WR_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=0-", 0, WR_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=-1", 0, WR_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=0-1,5-9", 1000, WR_RANGE_MULTI, 0, 0},
        {"bytes=0-1, 5-9, -3", 1000, WR_RANGE_MULTI, 0, 0},
        {"bytes=0-1,1-2,2-3,3-4,4-5,5-6,6-7,7-8,8-9,9-10,10-11,11-12,12-13,13-14,14-15,15-16",
         1000, WR_RANGE_MULTI, 0, 0},
        {"bytes=0-1,1-2,2-3,3-4,4-5,5-6,6-7,7-8,8-9,9-10,10-11,11-12,12-13,13-14,14-15,15-16,1-2",
         1000, WR_RANGE_IGNORE, 0, 0},
        {"bytes=9-5", 1000, WR_RANGE_IGNORE, 0, 0},
        {"bytes=", 1000, WR_RANGE_IGNORE, 0, 0},
        {"bytes=-", 1000, WR_RANGE_IGNORE, 0, 0},
        {"bytes=a-b", 1000, WR_RANGE_IGNORE, 0, 0},
        {"bytes=1-2x", 1000, WR_RANGE_IGNORE, 0, 0},
        {"bytes 0-1", 1000, WR_RANGE_IGNORE, 0, 0},
        {"items=0-1", 1000, WR_RANGE_IGNORE, 0, 0},
        {"bytes=99999999999999999999-", 1000, WR_RANGE_IGNORE, 0, 0},
        {"bytes=0-1,x", 1000, WR_RANGE_IGNORE, 0, 0},
        {"", 1000, WR_RANGE_IGNORE, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct wr_str v = heap(cases[i].value);
        struct wr_http_range rg = {0, 0};
        enum wr_http_range_kind got = wr_http_cond_parse_range(v, cases[i].size, &rg);
        free((void *)v.ptr);
        if (got != cases[i].want)
            fail_msg("\"%s\" (size %llu): got kind %d, want %d", cases[i].value,
                     (unsigned long long)cases[i].size, got, cases[i].want);
        if (got == WR_RANGE_SINGLE && (rg.first != cases[i].first || rg.last != cases[i].last))
            fail_msg("\"%s\": got %llu-%llu", cases[i].value, (unsigned long long)rg.first,
                     (unsigned long long)rg.last);
    }
}

static void test_coding_q(void **state)
{
    (void)state;
    static const struct {
        const char *ae, *coding;
        unsigned want;
    } cases[] = {
        {"gzip, deflate, br", "br", 1000},
        {"gzip, deflate, br", "gzip", 1000},
        {"gzip", "br", 0},
        {"br;q=0", "br", 0},
        {"br;q=0.5, gzip;q=0.8", "br", 500},
        {"br ; q=0.25", "br", 250},
        {"BR;Q=1.0", "br", 1000},
        {"*", "br", 1000},
        {"*;q=0.1, gzip", "br", 100},
        {"*, br;q=0", "br", 0},
        {"br;q=2", "br", 0},       /* malformed element skipped */
        {"br;q=0.1234", "br", 0},
        {"br;q=", "br", 0},
        {"identity", "gzip", 0},
        {"", "gzip", 0},
        {",,gzip,,", "gzip", 1000},
        {"gzip;level=9;q=0.3", "gzip", 300},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct wr_str ae = heap(cases[i].ae);
        unsigned got = wr_http_cond_coding_q(ae, wr_str_from_cstr(cases[i].coding));
        free((void *)ae.ptr);
        if (got != cases[i].want)
            fail_msg("\"%s\" for %s: got %u, want %u", cases[i].ae, cases[i].coding, got,
                     cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_etag_match), cmocka_unit_test(test_dates),
        cmocka_unit_test(test_evaluate),   cmocka_unit_test(test_if_range),
        cmocka_unit_test(test_range),      cmocka_unit_test(test_coding_q),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
