/*
 * Unit tests for http_resp: reason phrases and pages, the per-second clock
 * lines, head serialisation (keep-alive and close for HTTP/1.1 and 1.0,
 * bodiless statuses), overflow into an exact-size buffer at every cap, and
 * the `return` and `redirect` handlers on a hand-built route (heads
 * finished as the HTTP/1 front end does, h1_framing.h). Issue 13.17:
 * fields weir writes are remembered and a route's replaced set drops them
 * (offsets kept right across drops); pages name weir only when signed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weir/h1_framing.h"
#include "weir/http_resp.h"
#include "weir/redirect.h"
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
    struct wr_str head = wr_resp_bytes(r);
    if (head.len != len || memcmp(head.ptr, want, len) != 0)
        fail_msg("head:\n%.*s\nwant:\n%s", (int)head.len, head.ptr, want);
}

/* Finishes r as the HTTP/1 front end does; a head without a body length
 * as for HEAD (these tests are about fields; test_h1_framing has the
 * framing choices). */
static void finish(struct wr_resp *r, bool is_keep_alive, int minor)
{
    struct wr_h1_framing f =
        wr_h1_choose_framing(r->status, !r->has_length, r->has_length, minor, is_keep_alive);
    wr_h1_finish_head(r, &f, minor);
}

/* A front end that only takes one-shot answers: respond is all it does. */
static int n_responds;
static void fake_respond(struct wr_exchange *ex)
{
    (void)ex;
    n_responds++;
}
static const struct wr_exchange_sink one_shot_sink = {.respond = fake_respond};

/* Runs handler h on ex as a front end does; returns start's result. */
static int run_handler(const struct wr_handler *h, struct wr_exchange *ex)
{
    wr_exchange_init(ex, h, NULL, &one_shot_sink, NULL);
    int before = n_responds;
    int status = wr_exchange_start(ex);
    assert_int_equal(n_responds, before + (status == 0));
    wr_exchange_stop(ex);
    return status;
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
        struct wr_str p = wr_resp_page(codes[i], true);
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
        struct wr_str p = wr_resp_page(generic[i], true);
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
    finish(r, keep_alive, minor);
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
    finish(&r, true, 1);
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
    /* The status line goes into the room kept before the fields. */
    size_t need = full - strlen("HTTP/1.1 200 OK\r\n") + WR_RESP_STATUS_ROOM;
    for (size_t cap = 0; cap <= need; cap++) {
        char *buf = malloc(cap ? cap : 1);
        assert_non_null(buf);
        struct wr_resp r;
        wr_resp_init(&r, buf, cap);
        wr_resp_start(&r, 200, &clock);
        wr_resp_header(&r, "X-Long", WR_STR("abcdefghijklmnopqrstuvwxyz"));
        r.has_length = true;
        r.body_len = 123456;
        finish(&r, false, 1);
        assert_true(r.head_len <= cap);
        if (cap < need) {
            if (!r.is_overflow)
                fail_msg("cap %zu of %zu: no overflow", cap, need);
            /* What was written is a prefix of the real head. */
            struct wr_str head = wr_resp_bytes(&r);
            assert_memory_equal(head.ptr, want, head.len);
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
    assert_int_equal(run_handler(&wr_return_handler, &ex), 0);
    assert_int_equal(r.status, 200);
    assert_ptr_equal(r.body, body);
    assert_int_equal(r.body_len, 6);
    assert_int_equal(r.file_fd, -1);
    finish(&r, true, 1);
    expect_head(&r, "HTTP/1.1 200 OK\r\n" COMMON
                    "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 6\r\n\r\n");

    /* An empty body: no Content-Type, Content-Length 0. */
    char empty[] = "";
    route.status = 403;
    route.return_body = empty;
    route.return_body_len = 0;
    wr_resp_init(&r, buf, sizeof(buf));
    assert_int_equal(run_handler(&wr_return_handler, &ex), 0);
    finish(&r, false, 0);
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
    assert_int_equal(run_handler(&wr_redirect_handler, &ex), 0);
    struct wr_str page = wr_resp_page(301, true);
    assert_ptr_equal(r.body, page.ptr);
    assert_int_equal(r.body_len, page.len);
    finish(&r, true, 1);
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
    assert_int_equal(run_handler(&wr_redirect_handler, &ex), 0);
    finish(&r, false, 1);
    snprintf(want, sizeof(want),
             "HTTP/1.1 302 Found\r\n" COMMON "Location: https://evil  Set-Cookie: x/\r\n"
             "Content-Type: text/html; charset=utf-8\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n",
             wr_resp_page(302, true).len);
    expect_head(&r, want);
    wr_tmpl_fini(&route.redirect_target);
}

/* Issue 13.17: unsigned pages (server_header = off) never name weir; signed
 * ones do; the clock says which through wr_resp_start. */
static void issue_13_unsigned_pages(void **state)
{
    (void)state;
    static const int codes[] = {200, 301, 302, 308, 400, 403, 404, 405, 413, 416, 500, 502,
                                503, 504, 299, 204, 304, 0};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        struct wr_str plain = wr_resp_page(codes[i], false);
        assert_true(wr_str_has_prefix(plain, WR_STR("<!DOCTYPE html>")));
        assert_true(contains(plain, "</html>"));
        if (contains(plain, "weir"))
            fail_msg("%d: unsigned page names weir: %s", codes[i], plain.ptr);
        assert_true(contains(wr_resp_page(codes[i], true), "weir"));
    }
    assert_true(contains(wr_resp_page(404, false), "404 Not Found"));

    char buf[512];
    struct wr_resp r;
    struct wr_resp_clock off = make_clock(T_SEC, NULL);
    wr_resp_init(&r, buf, sizeof(buf));
    wr_resp_start(&r, 404, &off);
    wr_resp_set_page(&r);
    assert_false(contains((struct wr_str){r.body, r.body_len}, "weir"));
    struct wr_resp_clock on = make_clock(T_SEC, "Apache");
    wr_resp_start(&r, 404, &on);
    wr_resp_set_page(&r);
    assert_true(contains((struct wr_str){r.body, r.body_len}, "weir"));
    finish(&r, true, 1);
    assert_true(contains(wr_resp_bytes(&r), "Server: Apache\r\n"));
    assert_true(contains(wr_resp_bytes(&r),
                         "Content-Type: text/html; charset=utf-8\r\n"));
}

#define BIT(f) (1u << WR_HTTP_FIELD_##f)

/* Issue 13.17: the fields weir wrote can be dropped by mask, in any order,
 * Server and Date included; fields not in the mask stay, byte for byte. */
static void issue_13_drop_fields(void **state)
{
    (void)state;
    char buf[512];
    struct wr_resp r;
    struct wr_resp_clock clock = make_clock(T_SEC, "weir");
    wr_resp_init(&r, buf, sizeof(buf));
    wr_resp_start(&r, 200, &clock);
    wr_resp_field(&r, WR_HTTP_FIELD_CONTENT_TYPE, WR_STR("text/plain"));
    wr_resp_header(&r, "X-Other", WR_STR("1"));
    size_t at = r.head_len;
    wr_resp_raw(&r, WR_STR("Cache-Control: max-age="));
    wr_resp_raw_u64(&r, 60);
    wr_resp_raw(&r, WR_STR("\r\n"));
    wr_resp_mark_field(&r, WR_HTTP_FIELD_CACHE_CONTROL, at);
    wr_resp_field(&r, WR_HTTP_FIELD_ETAG, WR_STR("\"x\""));
    wr_resp_field_u64(&r, WR_HTTP_FIELD_RETRY_AFTER, 7);
    assert_int_equal(r.field_mask, BIT(SERVER) | BIT(DATE) | BIT(CONTENT_TYPE) |
                                       BIT(CACHE_CONTROL) | BIT(ETAG) | BIT(RETRY_AFTER));

    wr_resp_drop_fields(&r, BIT(VARY) | BIT(LOCATION)); /* none written: nothing moves */
    wr_resp_drop_fields(&r, BIT(CACHE_CONTROL));
    wr_resp_drop_fields(&r, BIT(SERVER) | BIT(RETRY_AFTER));
    wr_resp_drop_fields(&r, BIT(ETAG)); /* its offset moved with the drops above */
    wr_resp_drop_fields(&r, BIT(ETAG)); /* twice: no-op */
    finish(&r, true, 1);
    expect_head(&r, "HTTP/1.1 200 OK\r\nDate: " T_DATE "\r\n"
                    "Content-Type: text/plain\r\nX-Other: 1\r\n\r\n");
    assert_int_equal(r.field_mask, BIT(DATE) | BIT(CONTENT_TYPE));

    /* server_header = off: no Server to drop; Date is still known. */
    struct wr_resp_clock off = make_clock(T_SEC, NULL);
    wr_resp_init(&r, buf, sizeof(buf));
    wr_resp_start(&r, 204, &off);
    assert_int_equal(r.field_mask, BIT(DATE));
    wr_resp_drop_fields(&r, BIT(SERVER) | BIT(DATE));
    finish(&r, true, 1);
    expect_head(&r, "HTTP/1.1 204 No Content\r\n\r\n");
}

/* Issue 13.17: a head that overflowed is left alone (conn answers 500). */
static void issue_13_drop_after_overflow(void **state)
{
    (void)state;
    char buf[40];
    struct wr_resp r;
    struct wr_resp_clock clock = make_clock(T_SEC, "weir");
    wr_resp_init(&r, buf, sizeof(buf));
    wr_resp_start(&r, 200, &clock);
    wr_resp_field(&r, WR_HTTP_FIELD_CONTENT_TYPE, WR_STR("text/plain"));
    assert_true(r.is_overflow);
    size_t len = r.head_len;
    wr_resp_drop_fields(&r, 0xffffffffu);
    assert_int_equal(r.head_len, len);
}

/* Issue 13.17: `return` and `redirect` write Content-Type and Location as
 * weir's fields, which the route's add_header may replace. */
static void issue_13_actions_mark_fields(void **state)
{
    (void)state;
    char body[] = "{}";
    struct wr_route route;
    memset(&route, 0, sizeof(route));
    route.status = 200;
    route.return_body = body;
    route.return_body_len = 2;
    struct wr_resp_clock clock = make_clock(T_SEC, "weir");
    char buf[512];
    struct wr_resp r;
    wr_resp_init(&r, buf, sizeof(buf));
    struct wr_exchange ex = {.route = &route, .clock = &clock, .resp = &r};
    assert_int_equal(run_handler(&wr_return_handler, &ex), 0);
    wr_resp_drop_fields(&r, BIT(CONTENT_TYPE));
    wr_resp_header(&r, "Content-Type", WR_STR("application/json"));
    finish(&r, true, 1);
    expect_head(&r, "HTTP/1.1 200 OK\r\n" COMMON
                    "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n");

    route.status = 302;
    const char *err = NULL;
    assert_int_equal(wr_tmpl_init(&route.redirect_target, "/new", &err), 0);
    struct wr_tmpl_vars vars = {.host = WR_STR("a")};
    ex.vars = &vars;
    wr_resp_init(&r, buf, sizeof(buf));
    assert_int_equal(run_handler(&wr_redirect_handler, &ex), 0);
    assert_true(r.field_mask & BIT(LOCATION));
    assert_true(r.field_mask & BIT(CONTENT_TYPE));
    wr_resp_drop_fields(&r, BIT(LOCATION));
    finish(&r, true, 1);
    assert_false(contains(wr_resp_bytes(&r), "Location"));
    wr_tmpl_fini(&route.redirect_target);
}

/* Names and lookups of weir's fields (http_parser.h), case-insensitive. */
static void issue_13_field_names(void **state)
{
    (void)state;
    for (int f = 0; f < WR_HTTP_N_FIELDS; f++) {
        const char *name = wr_http_field_name((enum wr_http_field)f);
        assert_true(name[0] != '\0');
        assert_int_equal(wr_http_field_from(wr_str_from_cstr(name)), f);
    }
    assert_int_equal(wr_http_field_from(WR_STR("cache-control")), WR_HTTP_FIELD_CACHE_CONTROL);
    assert_int_equal(wr_http_field_from(WR_STR("CONTENT-TYPE")), WR_HTTP_FIELD_CONTENT_TYPE);
    assert_int_equal(wr_http_field_from(WR_STR("X-Frame-Options")), WR_HTTP_N_FIELDS);
    assert_int_equal(wr_http_field_from(WR_STR("Content-Typ")), WR_HTTP_N_FIELDS);
    assert_string_equal(wr_http_field_name(WR_HTTP_N_FIELDS), "");
}

/* Issue 14: the fields of a head, read back one by one (for front ends
 * that encode them otherwise, HPACK), skipping the status line, stopping
 * at the blank line, and early when asked. */
struct seen {
    char names[8][32], values[8][64];
    size_t n, stop_after;
};

static bool collect(void *arg, struct wr_str name, struct wr_str value)
{
    struct seen *s = arg;
    snprintf(s->names[s->n], sizeof(s->names[0]), "%.*s", (int)name.len, name.ptr);
    snprintf(s->values[s->n], sizeof(s->values[0]), "%.*s", (int)value.len, value.ptr);
    s->n++;
    return s->n != s->stop_after;
}

static void issue_14_resp_each_field(void **state)
{
    (void)state;
    char buf[512];
    struct wr_resp r;
    struct wr_resp_clock clock = make_clock(T_SEC, "weir");
    wr_resp_init(&r, buf, sizeof(buf));
    struct seen s = {0};
    assert_int_equal(wr_resp_each_field(&r, collect, &s), 0); /* not started */
    wr_resp_start(&r, 200, &clock);
    wr_resp_field(&r, WR_HTTP_FIELD_CONTENT_TYPE, WR_STR("text/plain"));
    wr_resp_header(&r, "X-Empty", WR_STR(""));
    wr_resp_raw(&r, WR_STR("X-Raw:tight\r\n"));
    wr_resp_drop_fields(&r, BIT(SERVER));
    assert_int_equal(wr_resp_each_field(&r, collect, &s), 4);
    static const char *const names[] = {"Date", "Content-Type", "X-Empty", "X-Raw"};
    static const char *const values[] = {T_DATE, "text/plain", "", "tight"};
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(s.names[i], names[i]);
        assert_string_equal(s.values[i], values[i]);
    }
    /* A finished head: the status line and the blank line are not fields;
     * the framing fields the front end added are. */
    r.has_length = true;
    r.body_len = 5;
    finish(&r, false, 1);
    memset(&s, 0, sizeof(s));
    assert_int_equal(wr_resp_each_field(&r, collect, &s), 6);
    assert_string_equal(s.names[4], "Content-Length");
    assert_string_equal(s.values[4], "5");
    assert_string_equal(s.names[5], "Connection");
    /* Stopping early. */
    memset(&s, 0, sizeof(s));
    s.stop_after = 2;
    assert_int_equal(wr_resp_each_field(&r, collect, &s), 2);
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
        cmocka_unit_test(issue_13_unsigned_pages),
        cmocka_unit_test(issue_13_drop_fields),
        cmocka_unit_test(issue_13_drop_after_overflow),
        cmocka_unit_test(issue_13_actions_mark_fields),
        cmocka_unit_test(issue_13_field_names),
        cmocka_unit_test(issue_14_resp_each_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
