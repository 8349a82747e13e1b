/* error_page: the page lookup and the internal request (issue 21.1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testconfig.h"
#include "weir/error_page.h"
#include "weir/http_parser.h"

/* The page a status gets: the list's own entry, none for an unlisted
 * status or an empty (or absent) list. */
static void issue_21_error_page_find(void **state)
{
    (void)state;
    struct wr_error_page pages[] = {{404, "/e/404.html"}, {500, "/e/5xx.html"},
                                    {502, "/e/5xx.html?from=weir"}};
    struct wr_error_pages ep = {pages, 3, false};
    assert_string_equal(wr_error_page_find(&ep, 404), "/e/404.html");
    assert_string_equal(wr_error_page_find(&ep, 502), "/e/5xx.html?from=weir");
    assert_null(wr_error_page_find(&ep, 503));
    assert_null(wr_error_page_find(&ep, 200));
    struct wr_error_pages none = {0};
    assert_null(wr_error_page_find(&none, 404));
    assert_null(wr_error_page_find(NULL, 404));
    assert_true(wr_error_page_is_served(200));
    assert_false(wr_error_page_is_served(206));
    assert_false(wr_error_page_is_served(301));
    assert_false(wr_error_page_is_served(304));
    assert_false(wr_error_page_is_served(404));
}

/* Parses text (a whole head) into *req, in an exact-size heap copy. */
static char *parse(const char *text, struct wr_http_request *req)
{
    size_t len = strlen(text);
    char *buf = malloc(len);
    assert_non_null(buf);
    memcpy(buf, text, len);
    struct wr_http_limits limits = {.max_head_bytes = 8192};
    assert_int_equal(wr_http_parse_request(buf, len, 0, &limits, req), (ssize_t)len);
    return buf;
}

/* The internal request: GET (HEAD stays HEAD), the page's path and query,
 * the original host and fields, but no body, no conditionals or range, no
 * tunnel. */
static void issue_21_error_page_request(void **state)
{
    (void)state;
    static struct wr_http_request in, out;
    char *buf = parse("POST /form?x=1 HTTP/1.1\r\nHost: Example.org:8080\r\n"
                      "Content-Length: 3\r\nIf-None-Match: \"abc\"\r\nRange: bytes=0-1\r\n"
                      "If-Modified-Since: Sat, 05 Dec 2026 10:00:00 GMT\r\n"
                      "Expect: 100-continue\r\nCookie: a=b\r\nUser-Agent: t\r\n\r\n",
                      &in);
    wr_error_page_request(&out, &in, "/errors/405.html?code=405");
    assert_int_equal(out.method_id, WR_HTTP_GET);
    assert_memory_equal(out.method.ptr, "GET", 3);
    assert_int_equal(out.target.len, strlen("/errors/405.html?code=405"));
    assert_memory_equal(out.path.ptr, "/errors/405.html", out.path.len);
    assert_int_equal(out.path.len, 16);
    assert_int_equal(out.query.len, 8);
    assert_memory_equal(out.query.ptr, "code=405", 8);
    assert_memory_equal(out.host.ptr, "Example.org:8080", out.host.len);
    assert_false(out.has_content_length);
    assert_false(out.is_chunked);
    assert_false(out.expects_continue);
    assert_true(out.is_keep_alive);
    assert_false(out.is_indexed);
    assert_int_equal(out.n_headers, 3); /* Host, Cookie, User-Agent */
    assert_null(wr_http_find_header(&out, WR_STR("If-None-Match")));
    assert_null(wr_http_find_header(&out, WR_STR("range")));
    assert_null(wr_http_find_header(&out, WR_STR("Content-Length")));
    assert_non_null(wr_http_find_header(&out, WR_STR("cookie")));
    assert_int_equal(wr_http_known_value(&out, WR_HTTP_KNOWN_IF_NONE_MATCH).len, 0);
    assert_int_equal(wr_http_known_value(&out, WR_HTTP_KNOWN_USER_AGENT).len, 1);
    free(buf);

    buf = parse("HEAD /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                "Connection: close\r\n\r\n", &in);
    wr_error_page_request(&out, &in, "/404.html");
    assert_int_equal(out.method_id, WR_HTTP_HEAD);
    assert_memory_equal(out.method.ptr, "HEAD", 4);
    assert_null(out.query.ptr);
    assert_int_equal(out.path.len, 9);
    assert_int_equal(out.minor_version, 1);
    assert_false(out.is_chunked);
    assert_false(out.is_keep_alive);
    assert_int_equal(out.n_headers, 2); /* Host, Connection */
    free(buf);
}

/* The config side: [server]'s lines are every route's unless the route
 * has its own (which replace them whole). */
static void issue_21_error_page_lists(void **state)
{
    (void)state;
    struct wr_config *cfg = testconfig_parse(
        "[route own]\nmatch = prefix:/own/\nreturn = 200 x\n"
        "error_page = 404 410 /own/gone.html\nerror_page = 500 /own/500.html\n"
        "[route plain]\nmatch = prefix:/\nproxy = app\nproxy_intercept_errors = on\n"
        "[upstream app]\nserver = 127.0.0.1:9000\n"
        "[server]\nlisten = 127.0.0.1:8080\nerror_page = 404 /e/404.html?x=1\n"
        "error_page = 502  503\t504 /e/5xx.html\n");
    const struct wr_error_pages *srv = &cfg->server.error_pages;
    assert_int_equal(srv->n_pages, 4);
    assert_string_equal(wr_error_page_find(srv, 404), "/e/404.html?x=1");
    assert_string_equal(wr_error_page_find(srv, 503), "/e/5xx.html");
    const struct wr_error_pages *own = &cfg->routes[0].error_pages;
    assert_int_equal(own->n_pages, 3);
    assert_false(own->is_borrowed);
    assert_string_equal(wr_error_page_find(own, 410), "/own/gone.html");
    assert_string_equal(wr_error_page_find(own, 500), "/own/500.html");
    assert_null(wr_error_page_find(own, 502)); /* replaced whole */
    assert_false(cfg->routes[0].proxy_intercept_errors);
    const struct wr_error_pages *plain = &cfg->routes[1].error_pages;
    assert_true(plain->is_borrowed);
    assert_string_equal(wr_error_page_find(plain, 504), "/e/5xx.html");
    assert_true(cfg->routes[1].proxy_intercept_errors);
    wr_config_unref(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issue_21_error_page_find),
        cmocka_unit_test(issue_21_error_page_request),
        cmocka_unit_test(issue_21_error_page_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
