/*
 * Unit tests for explain.c's pure part: how `weir route` splits the URL it
 * is given into what a client sends (scheme, Host, origin-form target).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "weir/explain.h"

static void expect_split(const char *url, const char *scheme, const char *authority,
                         const char *target)
{
    struct wr_explain_url u;
    assert_int_equal(wr_explain_split_url(url, &u), 0);
    assert_true(wr_str_eq(u.scheme, wr_str_from_cstr(scheme)));
    assert_true(wr_str_eq(u.authority, wr_str_from_cstr(authority)));
    if (!wr_str_eq(u.target, wr_str_from_cstr(target)))
        fail_msg("%s: target \"%.*s\", want \"%s\"", url, (int)u.target.len, u.target.ptr,
                 target);
}

static void issue_17_split_url(void **state)
{
    (void)state;
    expect_split("http://example.org/a/b?c=d", "http", "example.org", "/a/b?c=d");
    expect_split("HTTPS://Example.org:8443/x", "HTTPS", "Example.org:8443", "/x");
    expect_split("http://example.org", "http", "example.org", "/");
    expect_split("http://[::1]:8080/x#frag", "http", "[::1]:8080", "/x");
    expect_split("/path?q=1#frag", "", "", "/path?q=1");
    expect_split("/a%2Fb/../c", "", "", "/a%2Fb/../c");
    expect_split("*", "", "", "*");
}

static void issue_17_split_url_refuses(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "ftp://example.org/", "example.org/x", "http:///x", "http://user@example.org/",
        "http://example.org?q", "", "x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct wr_explain_url u;
        if (wr_explain_split_url(bad[i], &u) != -1)
            fail_msg("\"%s\" accepted", bad[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issue_17_split_url),
        cmocka_unit_test(issue_17_split_url_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
