/*
 * Unit tests for log_format: compiling access_log_format texts (built-ins,
 * templates with $var, ${var} and $$, json field lists, and the errors a
 * config line gets), and formatting lines: every variable in a template
 * and in JSON, "-" and null for absent values, $http_NAME lookups, UTF-8
 * kept in JSON and escaped in text, invalid UTF-8 and control bytes
 * escaped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weir/log_format.h"

static struct wr_http_request req = {
    .n_headers = 4,
    .headers = {{.name = WR_STR("Referer"), .value = WR_STR("https://ref.example/")},
                {.name = WR_STR("X-Trace-Id"), .value = WR_STR("t-1")},
                {.name = WR_STR("User-Agent"), .value = WR_STR("curl/8.5")},
                {.name = WR_STR("X-Trace-Id"), .value = WR_STR("t-2")}},
};

static struct wr_access_entry sample(void)
{
    return (struct wr_access_entry){
        .remote_addr = WR_STR("192.0.2.7"), .method = WR_STR("GET"),
        .target = WR_STR("/a?b=c"), .host = WR_STR("example.org"),
        .referer = WR_STR("https://ref.example/"), .user_agent = WR_STR("curl/8.5"),
        .request_id = WR_STR("r-42"), .route = WR_STR("site"), .minor_version = 1,
        .status = 200, .bytes_sent = 1234, .request_time_us = 12345,
        .log_time = "05/Dec/2026:13:00:00 +0000", .iso_time = "2026-12-05T13:00:00Z",
        .unix_ms = 1796475600123ull, /* 2026-12-05T13:00:00.123Z */
        .req = &req,
    };
}

/* Formats e with text and compares with want (a C string). */
static void expect(const char *text, const struct wr_access_entry *e, const char *want)
{
    struct wr_log_format f;
    const char *err = NULL;
    struct wr_str at;
    if (wr_log_format_compile(&f, text, &err, &at) != 0)
        fail_msg("%s: %s", text, err);
    char buf[2048];
    struct wr_log_line l = {buf, 0, sizeof(buf) - 1};
    wr_log_format_line(&f, e, &l);
    buf[l.len] = '\0';
    if (strcmp(buf, want) != 0)
        fail_msg("format %s\n got: %s\nwant: %s", text, buf, want);
    wr_log_format_fini(&f);
}

static void expect_error(const char *text, const char *want_err, const char *want_at)
{
    struct wr_log_format f;
    const char *err = NULL;
    struct wr_str at;
    assert_int_equal(wr_log_format_compile(&f, text, &err, &at), -1);
    assert_string_equal(err, want_err);
    char got_at[64];
    snprintf(got_at, sizeof(got_at), "%.*s", (int)at.len, at.ptr ? at.ptr : "");
    assert_string_equal(got_at, want_at);
    wr_log_format_fini(&f);
}

static void issue_21_compile(void **state)
{
    (void)state;
    struct wr_log_format f;
    const char *err = NULL;
    struct wr_str at;
    assert_int_equal(wr_log_format_compile(&f, "combined", &err, &at), 0);
    assert_int_equal(f.kind, WR_LOG_KIND_COMBINED);
    wr_log_format_fini(&f);
    assert_int_equal(wr_log_format_compile(&f, "json", &err, &at), 0);
    assert_int_equal(f.kind, WR_LOG_KIND_JSON);
    wr_log_format_fini(&f);
    assert_int_equal(wr_log_format_compile(&f, "json $status  $http_x_a", &err, &at), 0);
    assert_int_equal(f.kind, WR_LOG_KIND_JSON_FIELDS);
    assert_int_equal(f.n_parts, 2);
    assert_false(f.has_msec_time);
    wr_log_format_fini(&f);
    assert_int_equal(wr_log_format_compile(&f, "$msec $status", &err, &at), 0);
    assert_int_equal(f.kind, WR_LOG_KIND_TEMPLATE);
    assert_true(f.has_msec_time);
    wr_log_format_fini(&f);

    expect_error("$remote_addr $nope x", "unknown variable", "nope");
    expect_error("cost $", "$ without a variable name (write $$ for a '$')", "$");
    expect_error("a ${status", "unclosed ${ or bad variable name", "${status");
    expect_error("json $status, $route", "a json format lists $variables only", ", $route");
    expect_error("json $status x", "a json format lists $variables only", "x");
    expect_error("json  ", "json lists no variable", "json  ");
    expect_error("json $bad", "unknown variable", "bad");
}

static void issue_21_template_every_variable(void **state)
{
    (void)state;
    struct wr_access_entry e = sample();
    e.is_tls = true;
    e.ssl_protocol = "TLSv1.3";
    e.upstream_addr = WR_STR("127.0.0.1:9000");
    e.upstream_status = WR_STR("200");
    e.upstream_time_us = 2500;
    expect("$remote_addr [$time_iso8601] [$time_local] $msec \"$request\" $request_method "
           "$request_uri $protocol $server_protocol $scheme $host $status $body_bytes_sent "
           "$request_time $upstream_addr $upstream_status $upstream_response_time $route "
           "$request_id $ssl_protocol $stream_id $http_x_trace_id $http_referer "
           "$http_user_agent ${status}x $$ $$$status",
           &e,
           "192.0.2.7 [2026-12-05T13:00:00.123Z] [05/Dec/2026:13:00:00 +0000] 1796475600.123 "
           "\"GET /a?b=c HTTP/1.1\" GET /a?b=c HTTP/1.1 HTTP/1.1 https example.org 200 1234 "
           "12.345 127.0.0.1:9000 200 2.500 site r-42 TLSv1.3 0 t-1 https://ref.example/ "
           "curl/8.5 200x $ $200");
    /* Absent values are "-" in text; HTTP/2 and HTTP/1.0 protocols. */
    struct wr_access_entry b = sample();
    b.request_id = (struct wr_str){NULL, 0};
    b.is_http2 = true;
    b.stream_id = 7;
    expect("$upstream_addr $upstream_response_time $request_id $ssl_protocol $scheme "
           "$http_x_none $protocol $stream_id",
           &b, "- - - - http - HTTP/2.0 7");
    b.is_http2 = false;
    b.minor_version = 0;
    expect("$request", &b, "GET /a?b=c HTTP/1.0");
    /* A head that did not parse: $request is its raw line, escaped. */
    b.method = (struct wr_str){NULL, 0};
    b.target = WR_STR("BAD \"\x01");
    b.req = NULL;
    expect("\"$request\" $request_uri $http_user_agent", &b, "\"BAD \\x22\\x01\" - curl/8.5");
}

static void issue_21_text_escapes(void **state)
{
    (void)state;
    struct wr_access_entry e = sample();
    e.target = WR_STR("/caf\xc3\xa9\"\\\n\x7f");
    expect("$request_uri", &e, "/caf\\xc3\\xa9\\x22\\x5c\\x0a\\x7f");
}

static void issue_21_json_fields(void **state)
{
    (void)state;
    struct wr_access_entry e = sample();
    expect("json $time_iso8601 $remote_addr $request $status $body_bytes_sent $request_time "
           "$upstream_addr $upstream_response_time $route $http_x_trace_id $http_none $stream_id",
           &e,
           "{\"time_iso8601\":\"2026-12-05T13:00:00.123Z\",\"remote_addr\":\"192.0.2.7\","
           "\"request\":\"GET /a?b=c HTTP/1.1\",\"status\":200,\"body_bytes_sent\":1234,"
           "\"request_time\":12.345,\"upstream_addr\":\"\",\"upstream_response_time\":null,"
           "\"route\":\"site\",\"http_x_trace_id\":\"t-1\",\"http_none\":\"\",\"stream_id\":0}");
    e.upstream_addr = WR_STR("10.0.0.1:80");
    e.upstream_time_us = 1000999;
    expect("json $upstream_response_time", &e, "{\"upstream_response_time\":1000.999}");
}

/* UTF-8 stays UTF-8 in JSON; what JSON requires and invalid bytes are
 * escaped (an overlong form, a surrogate, a lone continuation byte, a cut
 * sequence). */
static void issue_21_json_utf8(void **state)
{
    (void)state;
    struct wr_access_entry e = sample();
    e.target = WR_STR("/caf\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x98\x80\"\\\t\x7f"
                      "\xc0\xaf\xed\xa0\x80\x80\xe2\x82");
    expect("json $request_uri", &e,
           "{\"request_uri\":\"/caf\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x98\x80\\\"\\\\\\u0009\\u007f"
           "\\u00c0\\u00af\\u00ed\\u00a0\\u0080\\u0080\\u00e2\\u0082\"}");
    /* The built-in json keeps UTF-8 too. */
    e.target = WR_STR("/\xc3\xa9");
    e.referer = (struct wr_str){NULL, 0};
    e.user_agent = (struct wr_str){NULL, 0};
    expect("json", &e,
           "{\"time\":\"2026-12-05T13:00:00Z\",\"remote_addr\":\"192.0.2.7\",\"request_id\":\"r-42\","
           "\"method\":\"GET\",\"uri\":\"/\xc3\xa9\",\"protocol\":\"HTTP/1.1\","
           "\"host\":\"example.org\",\"status\":200,\"bytes_sent\":1234,"
           "\"request_time\":0.012345,\"route\":\"site\",\"referer\":\"\",\"user_agent\":\"\"}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issue_21_compile),
        cmocka_unit_test(issue_21_template_every_variable),
        cmocka_unit_test(issue_21_text_escapes),
        cmocka_unit_test(issue_21_json_fields),
        cmocka_unit_test(issue_21_json_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
