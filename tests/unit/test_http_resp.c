/*
 * Unit tests for http_resp: reason phrases and pages, the per-second clock
 * lines, head serialisation (keep-alive and close for HTTP/1.1 and 1.0,
 * bodiless statuses), overflow into an exact-size buffer at every cap, and
 * the `return` and `redirect` actions on a hand-built route.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weir/http_resp.h"
#include "weir/tmpl.h"

#define T_SEC ((time_t)1790000000)
#define T_DATE "Mon, 21 Sep 2026 14:13:20 GMT"
#define COMMON "Server: weir\r\nDate: " T_DATE "\r\n"

static struct wr_resp_clock make_clock(time_t t, const char *server)
{
    struct wr_resp_clock c;
    memset(&c, 0, sizeof(c));
    wr_resp_clock_update(&c, t, server);
    return c;
}

static void expect_head(const struct wr_resp *r, const char *want)
{
    size_t len = strlen(want);
    assert_false(r->is_overflow);
    if (r->head_len != len || memcmp(r->head, want, len) != 0)
        fail_msg("head:\n%.*s\nwant:\n%s", (int)r->head_len, r->head, want);
}

static void test_reason(void **state)
{
    (void)state;
    assert_string_equal(wr_resp_reason(200), "OK");
    assert_string_equal(wr_resp_reason(100), "Continue");
    assert_string_equal(wr_resp_reason(301), "Moved Permanently");
    assert_string_equal(wr_resp_reason(404), "Not Found");
    assert_string_equal(wr_resp_reason(413), "Content Too Large");
    assert_string_equal(wr_resp_reason(505), "HTTP Version Not Supported");
    assert_string_equal(wr_resp_reason(299), "Unknown");
    assert_string_equal(wr_resp_reason(0), "Unknown");
    assert_string_equal(wr_resp_reason(-1), "Unknown");
    assert_string_equal(wr_resp_reason(999), "Unknown");
}

static bool contains(struct wr_str s, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= s.len; i++) {
        if (memcmp(s.ptr + i, needle, n) == 0)
            return true;
    }
    return false;
}

static void test_page(void **state)
{
    (void)state;
    static const int codes[] = {301, 302, 400, 403, 404, 500, 502, 503, 504};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        struct wr_str p = wr_resp_page(codes[i]);
        char code[8];
        snprintf(code, sizeof(code), "%d", codes[i]);
        assert_true(p.len > 0);
        assert_true(wr_str_has_prefix(p, WR_STR("<!DOCTYPE html>")));
        assert_true(contains(p, code));
        assert_true(contains(p, wr_resp_reason(codes[i])));
        assert_int_equal(strlen(p.ptr), p.len); /* static C string */
    }
    /* Unlisted codes and codes without a page of their own: generic page. */
    static const int generic[] = {299, 204, 304, 0};
    for (size_t i = 0; i < sizeof(generic) / sizeof(generic[0]); i++) {
        struct wr_str p = wr_resp_page(generic[i]);
        assert_true(p.len > 0);
        assert_true(wr_str_has_prefix(p, WR_STR("<!DOCTYPE html>")));
        assert_true(contains(p, "</html>"));
    }
}

static void test_clock(void **state)
{
    (void)state;
    struct wr_resp_clock c = make_clock(0, "weir");
    assert_string_equal(c.common, "Server: weir\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n");
    assert_int_equal(c.common_len, strlen(c.common));
    assert_string_equal(c.log_time, "01/Jan/1970:00:00:00 +0000");
    assert_string_equal(c.iso_time, "1970-01-01T00:00:00Z");

    wr_resp_clock_update(&c, T_SEC, "weir");
    assert_string_equal(c.common, COMMON);
    assert_int_equal(c.common_len, strlen(COMMON));
    assert_string_equal(c.log_time, "21/Sep/2026:14:13:20 +0000");
    assert_string_equal(c.iso_time, "2026-09-21T14:13:20Z");

    struct wr_resp_clock off = make_clock(T_SEC, NULL);
    assert_string_equal(off.common, "Date: " T_DATE "\r\n");
    assert_int_equal(off.common_len, strlen(off.common));
    assert_string_equal(off.log_time, "21/Sep/2026:14:13:20 +0000");

    /* A Server value too long for the buffer is dropped, not cut. */
    char long_name[200];
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    struct wr_resp_clock lng = make_clock(T_SEC, long_name);
    assert_string_equal(lng.common, "Date: " T_DATE "\r\n");
    assert_int_equal(lng.common_len, strlen(lng.common));
}

/* Builds a head for status with body length len (or none when len < 0). */
static void build(struct wr_resp *r, int status, long long len, bool keep_alive, int minor)
{
    static struct wr_resp_clock clock;
    clock = make_clock(T_SEC, "weir");
    wr_resp_start(r, status, &clock);
    if (len >= 0) {
        r->has_length = true;
        r->body_len = (uint64_t)len;
    }
    wr_resp_finish(r, keep_alive, minor);
}

static void test_head_keep_alive_11(void **state)
{
    (void)state;
    char buf[512];
    struct wr_resp r;
    wr_resp_init(&r, buf, sizeof(buf));
    assert_int_equal(r.file_fd, -1);
    build(&r, 200, 5, true, 1);
    expect_head(&r, "HTTP/1.1 200 OK\r\n" COMMON "Content-Length: 5\r\n\r\n");
    assert_false(r.is_head_only);
}

static void test_head_keep_alive_10(void **state)
{
    (void)state;
    char buf[512];
    struct wr_resp r;
    wr_resp_init(&r, buf, sizeof(buf));
    build(&r, 404, 0, true, 0);
    expect_head(&r, "HTTP/1.1 404 Not Found\r\n" COMMON
                    "Content-Length: 0\r\nConnection: keep-alive\r\n\r\n");
}

static void test_head_close(void **state)
{
    (void)state;
    char buf[512];
    struct wr_resp r;
    wr_resp_init(&r, buf, sizeof(buf));
    build(&r, 500, 12, false, 1);
    expect_head(&r, "HTTP/1.1 500 Internal Server Error\r\n" COMMON
                    "Content-Length: 12\r\nConnection: close\r\n\r\n");
    wr_resp_init(&r, buf, sizeof(buf));
    build(&r, 200, -1, false, 0);
    expect_head(&r, "HTTP/1.1 200 OK\r\n" COMMON "Connection: close\r\n\r\n");
}

static void test_head_fields(void **state)
{
    (void)state;
    char buf[512];
    struct wr_resp r;
    struct wr_resp_clock clock = make_clock(T_SEC, NULL);
    wr_resp_init(&r, buf, sizeof(buf));
    wr_resp_header(&r, "X-Discarded", WR_STR("yes")); /* start discards it */
    wr_resp_start(&r, 200, &clock);
    wr_resp_header(&r, "Content-Type", WR_STR("text/plain"));
    wr_resp_header(&r, "X-Empty", WR_STR(""));
    wr_resp_header_u64(&r, "X-Zero", 0);
    wr_resp_header_u64(&r, "X-Max", UINT64_MAX);
    wr_resp_raw(&r, WR_STR("Vary: Accept\r\n"));
    r.has_length = true;
    r.body_len = 18446744073709551615ull;
    wr_resp_finish(&r, true, 1);
    expect_head(&r, "HTTP/1.1 200 OK\r\nDate: " T_DATE "\r\n"
                    "Content-Type: text/plain\r\nX-Empty: \r\nX-Zero: 0\r\n"
                    "X-Max: 18446744073709551615\r\nVary: Accept\r\n"
                    "Content-Length: 18446744073709551615\r\n\r\n");
}

static void test_head_bodiless(void **state)
{
    (void)state;
    char buf[512];
    struct wr_resp r;
    wr_resp_init(&r, buf, sizeof(buf));
    build(&r, 204, 7, true, 1);
    expect_head(&r, "HTTP/1.1 204 No Content\r\n" COMMON "\r\n");
    assert_true(r.is_head_only);

    wr_resp_init(&r, buf, sizeof(buf));
    build(&r, 304, 99, true, 0);
    expect_head(&r, "HTTP/1.1 304 Not Modified\r\n" COMMON "Connection: keep-alive\r\n\r\n");
    assert_true(r.is_head_only);

    wr_resp_init(&r, buf, sizeof(buf));
    build(&r, 304, 99, false, 1);
    expect_head(&r, "HTTP/1.1 304 Not Modified\r\n" COMMON "Connection: close\r\n\r\n");
}

static void test_overflow_every_cap(void **state)
{
    (void)state;
    const char *want = "HTTP/1.1 200 OK\r\n" COMMON "X-Long: abcdefghijklmnopqrstuvwxyz\r\n"
                       "Content-Length: 123456\r\nConnection: close\r\n\r\n";
    size_t full = strlen(want);
    struct wr_resp_clock clock = make_clock(T_SEC, "weir");
    for (size_t cap = 0; cap <= full; cap++) {
        char *buf = malloc(cap ? cap : 1);
        assert_non_null(buf);
        struct wr_resp r;
        wr_resp_init(&r, buf, cap);
        wr_resp_start(&r, 200, &clock);
        wr_resp_header(&r, "X-Long", WR_STR("abcdefghijklmnopqrstuvwxyz"));
        r.has_length = true;
        r.body_len = 123456;
        wr_resp_finish(&r, false, 1);
        assert_true(r.head_len <= cap);
        if (cap < full) {
            if (!r.is_overflow)
                fail_msg("cap %zu of %zu: no overflow", cap, full);
            /* What was written is a prefix of the real head. */
            assert_memory_equal(buf, want, r.head_len);
        } else {
            expect_head(&r, want);
        }
        free(buf);
    }
}

static void test_overflow_tmpl(void **state)
{
    (void)state;
    struct wr_tmpl t;
    const char *err = NULL;
    assert_int_equal(wr_tmpl_init(&t, "https://$host/", &err), 0);
    struct wr_tmpl_vars vars = {.host = WR_STR("example.org")};
    const char *want = "Location: https://example.org/\r\n";
    size_t full = strlen(want);
    for (size_t cap = 0; cap <= full; cap++) {
        char *buf = malloc(cap ? cap : 1);
        assert_non_null(buf);
        struct wr_resp r;
        wr_resp_init(&r, buf, cap);
        wr_resp_header_tmpl(&r, "Location", &t, &vars);
        assert_true(r.head_len <= cap);
        if (cap < full)
            assert_true(r.is_overflow);
        else
            expect_head(&r, want);
        free(buf);
    }
    wr_tmpl_fini(&t);
}

static void test_action_return(void **state)
{
    (void)state;
    char body[] = "hello\n";
    struct wr_route route;
    memset(&route, 0, sizeof(route));
    route.status = 200;
    route.return_body = body;
    route.return_body_len = 6;
    struct wr_resp_clock clock = make_clock(T_SEC, "weir");
    char buf[512];
    struct wr_resp r;
    wr_resp_init(&r, buf, sizeof(buf));
    struct wr_exchange ex = {.route = &route, .clock = &clock, .resp = &r};
    assert_int_equal(wr_resp_action_return(&ex), 0);
    assert_int_equal(r.status, 200);
    assert_ptr_equal(r.body, body);
    assert_int_equal(r.body_len, 6);
    assert_int_equal(r.file_fd, -1);
    wr_resp_finish(&r, true, 1);
    expect_head(&r, "HTTP/1.1 200 OK\r\n" COMMON
                    "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 6\r\n\r\n");

    /* An empty body: no Content-Type, Content-Length 0. */
    char empty[] = "";
    route.status = 403;
    route.return_body = empty;
    route.return_body_len = 0;
    wr_resp_init(&r, buf, sizeof(buf));
    assert_int_equal(wr_resp_action_return(&ex), 0);
    wr_resp_finish(&r, false, 0);
    expect_head(&r, "HTTP/1.1 403 Forbidden\r\n" COMMON
                    "Content-Length: 0\r\nConnection: close\r\n\r\n");
}

static void test_action_redirect(void **state)
{
    (void)state;
    struct wr_route route;
    memset(&route, 0, sizeof(route));
    route.status = 301;
    const char *err = NULL;
    assert_int_equal(wr_tmpl_init(&route.redirect_target, "https://$host$request_uri", &err), 0);
    struct wr_tmpl_vars vars = {
        .host = WR_STR("example.org"),
        .request_uri = WR_STR("/a?b=c"),
        .scheme = WR_STR("http"),
    };
    struct wr_resp_clock clock = make_clock(T_SEC, "weir");
    char buf[512];
    struct wr_resp r;
    wr_resp_init(&r, buf, sizeof(buf));
    struct wr_exchange ex = {.route = &route, .vars = &vars, .clock = &clock, .resp = &r};
    assert_int_equal(wr_resp_action_redirect(&ex), 0);
    struct wr_str page = wr_resp_page(301);
    assert_ptr_equal(r.body, page.ptr);
    assert_int_equal(r.body_len, page.len);
    wr_resp_finish(&r, true, 1);
    char want[512];
    snprintf(want, sizeof(want),
             "HTTP/1.1 301 Moved Permanently\r\n" COMMON
             "Location: https://example.org/a?b=c\r\n"
             "Content-Type: text/html; charset=utf-8\r\nContent-Length: %zu\r\n\r\n",
             page.len);
    expect_head(&r, want);

    /* CR and LF pulled in through a variable never split the head. */
    vars.host = WR_STR("evil\r\nSet-Cookie: x");
    vars.request_uri = WR_STR("/");
    route.status = 302;
    wr_resp_init(&r, buf, sizeof(buf));
    assert_int_equal(wr_resp_action_redirect(&ex), 0);
    wr_resp_finish(&r, false, 1);
    snprintf(want, sizeof(want),
             "HTTP/1.1 302 Found\r\n" COMMON "Location: https://evil  Set-Cookie: x/\r\n"
             "Content-Type: text/html; charset=utf-8\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n",
             wr_resp_page(302).len);
    expect_head(&r, want);
    wr_tmpl_fini(&route.redirect_target);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reason),
        cmocka_unit_test(test_page),
        cmocka_unit_test(test_clock),
        cmocka_unit_test(test_head_keep_alive_11),
        cmocka_unit_test(test_head_keep_alive_10),
        cmocka_unit_test(test_head_close),
        cmocka_unit_test(test_head_fields),
        cmocka_unit_test(test_head_bodiless),
        cmocka_unit_test(test_overflow_every_cap),
        cmocka_unit_test(test_overflow_tmpl),
        cmocka_unit_test(test_action_return),
        cmocka_unit_test(test_action_redirect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
