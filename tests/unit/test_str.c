/*
 * Unit tests for str: case-insensitive equality, prefixes, trimming of
 * spaces and tabs, and comma-separated token lists (OWS, empty elements,
 * case, tokens that are only a prefix or suffix of an element).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "weir/str.h"

/* A slice over an exact-size heap copy of s, so ASan sees over-reads. */
static struct wr_str heap_str(const char *s)
{
    size_t len = strlen(s);
    char *p = malloc(len ? len : 1);
    assert_non_null(p);
    memcpy(p, s, len);
    return (struct wr_str){p, len};
}

static void free_str(struct wr_str s)
{
    free((void *)s.ptr);
}

static void test_eq_nocase(void **state)
{
    (void)state;
    assert_true(wr_str_eq_nocase(WR_STR("Content-Length"), WR_STR("content-length")));
    assert_true(wr_str_eq_nocase(WR_STR("HOST"), WR_STR("host")));
    assert_true(wr_str_eq_nocase(WR_STR(""), WR_STR("")));
    assert_true(wr_str_eq_nocase((struct wr_str){NULL, 0}, WR_STR("")));
    assert_false(wr_str_eq_nocase(WR_STR("host"), WR_STR("hosts")));
    assert_false(wr_str_eq_nocase(WR_STR("hosa"), WR_STR("host")));
    /* Only ASCII letters fold: '[' (0x5b) is not '{' (0x7b), '@' not '`'. */
    assert_false(wr_str_eq_nocase(WR_STR("["), WR_STR("{")));
    assert_false(wr_str_eq_nocase(WR_STR("@"), WR_STR("`")));
    assert_false(wr_str_eq_nocase(WR_STR("\xc4"), WR_STR("\xe4")));
    struct wr_str a = heap_str("X-Forwarded-For"), b = heap_str("x-forwarded-for");
    assert_true(wr_str_eq_nocase(a, b));
    free_str(a);
    free_str(b);
}

static void test_has_prefix(void **state)
{
    (void)state;
    assert_true(wr_str_has_prefix(WR_STR("/static/a.css"), WR_STR("/static/")));
    assert_true(wr_str_has_prefix(WR_STR("/static/"), WR_STR("/static/")));
    assert_true(wr_str_has_prefix(WR_STR("abc"), WR_STR("")));
    assert_true(wr_str_has_prefix(WR_STR(""), WR_STR("")));
    assert_false(wr_str_has_prefix(WR_STR("/static"), WR_STR("/static/")));
    assert_false(wr_str_has_prefix(WR_STR("/Static/x"), WR_STR("/static/"))); /* exact bytes */
    assert_false(wr_str_has_prefix(WR_STR(""), WR_STR("a")));
    struct wr_str s = heap_str("/api"), p = heap_str("/api/");
    assert_false(wr_str_has_prefix(s, p));
    free_str(s);
    free_str(p);
}

static void expect_trim(const char *in, const char *want)
{
    struct wr_str s = heap_str(in);
    struct wr_str t = wr_str_trim(s);
    assert_int_equal(t.len, strlen(want));
    if (t.len > 0)
        assert_memory_equal(t.ptr, want, t.len);
    free_str(s);
}

static void test_trim(void **state)
{
    (void)state;
    expect_trim("abc", "abc");
    expect_trim("  abc", "abc");
    expect_trim("abc \t", "abc");
    expect_trim("\t a b \t", "a b");
    expect_trim("   ", "");
    expect_trim("\t", "");
    expect_trim("", "");
    expect_trim("\r\nabc\r\n", "\r\nabc\r\n"); /* only spaces and tabs */
    struct wr_str t = wr_str_trim((struct wr_str){NULL, 0});
    assert_int_equal(t.len, 0);
}

static bool has_token(const char *value, const char *token)
{
    struct wr_str v = heap_str(value), t = heap_str(token);
    bool r = wr_str_list_has_token(v, t);
    free_str(v);
    free_str(t);
    return r;
}

static void test_list_has_token(void **state)
{
    (void)state;
    assert_true(has_token("close", "close"));
    assert_true(has_token("Close", "close"));
    assert_true(has_token("keep-alive, close", "close"));
    assert_true(has_token("keep-alive, close", "KEEP-ALIVE"));
    assert_true(has_token("  keep-alive  ,\tclose\t", "close"));
    assert_true(has_token("a,b,c", "b"));
    assert_true(has_token(",,close,,", "close"));
    assert_true(has_token("upgrade,\t Close ", "close"));
    assert_false(has_token("", "close"));
    assert_false(has_token("closed", "close"));
    assert_false(has_token("unclose", "close"));
    assert_false(has_token("keep-alive", "close"));
    assert_false(has_token("clo se", "close"));
    assert_false(has_token("close;q=1", "close"));
    assert_false(has_token(", ,", "close"));
}

/* Decimal formatting without printf: edges of the range. */
static void test_format_u64(void **state)
{
    (void)state;
    static const struct {
        uint64_t v;
        const char *want;
    } cases[] = {{0, "0"}, {7, "7"}, {10, "10"}, {1024, "1024"},
                 {UINT64_MAX, "18446744073709551615"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = malloc(WR_STR_U64_MAX); /* exact size: ASan sees overruns */
        assert_non_null(out);
        size_t n = wr_str_format_u64(cases[i].v, out);
        assert_int_equal(n, strlen(cases[i].want));
        assert_memory_equal(out, cases[i].want, n);
        free(out);
    }
}

/* The same text as inet_ntop for every octet value, in every position. */
static void issue_18_format_ipv4(void **state)
{
    (void)state;
    for (unsigned v = 0; v < 256; v++) {
        const unsigned char addrs[][4] = {{(unsigned char)v, 0, 0, 1},
                                          {127, (unsigned char)v, 255, (unsigned char)v},
                                          {10, 9, (unsigned char)v, 100},
                                          {255, 255, 255, (unsigned char)v}};
        for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
            char want[INET_ADDRSTRLEN];
            assert_non_null(inet_ntop(AF_INET, addrs[i], want, sizeof(want)));
            char *out = malloc(INET_ADDRSTRLEN); /* exact size: ASan sees overruns */
            assert_non_null(out);
            size_t n = wr_str_format_ipv4(addrs[i], out);
            assert_int_equal(n, strlen(want));
            assert_string_equal(out, want);
            free(out);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_u64),
        cmocka_unit_test(test_eq_nocase),
        cmocka_unit_test(test_has_prefix),
        cmocka_unit_test(test_trim),
        cmocka_unit_test(test_list_has_token),
        cmocka_unit_test(issue_18_format_ipv4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
