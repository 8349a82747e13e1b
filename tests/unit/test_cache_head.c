/*
 * Unit tests for cache_head: which fields a stored response keeps, splitting
 * a stored head back into fields, and a 304's fields merged into it
 * (RFC 9111 §3.1, §3.2).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "weir/cache_head.h"

#define F(n, v) {WR_STR(n), WR_STR(v)}

static void assert_head(char *got, size_t len, const char *want)
{
    assert_non_null(got);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(got, want, len);
    free(got);
}

/* Hop-by-hop fields, those Connection names, Age, Proxy-*, and what each
 * answer gets anew (Date, framing) are not kept; the rest in order. */
static void issue_20_head_store_keeps_end_to_end_fields(void **state)
{
    (void)state;
    const struct wr_http_header h[] = {
        F("Content-Type", "text/html"), F("Connection", "keep-alive, X-Hop"),
        F("Keep-Alive", "timeout=5"), F("X-Hop", "1"), F("Date", "Mon, 30 Nov 2026 10:00:00 GMT"),
        F("Age", "3"), F("Content-Length", "12"), F("Transfer-Encoding", "chunked"),
        F("Proxy-Authenticate", "Basic"), F("ETag", "\"a\""), F("Cache-Control", "max-age=60"),
        F("Set-Cookie", "a=b"),
    };
    size_t len;
    char *got = wr_cache_head_store(h, sizeof(h) / sizeof(h[0]), &len);
    assert_head(got, len,
                "Content-Type: text/html\r\nETag: \"a\"\r\nCache-Control: max-age=60\r\n"
                "Set-Cookie: a=b\r\n");
    got = wr_cache_head_store(NULL, 0, &len);
    assert_head(got, len, "");
}

static void issue_20_head_split_reads_back(void **state)
{
    (void)state;
    const char *head = "A: 1\r\nB:  two words\r\nno colon line\r\nC:\r\nD: x";
    struct wr_http_header out[8];
    size_t n = wr_cache_head_split(wr_str_from_cstr(head), out, 8);
    assert_int_equal(n, 4);
    assert_true(wr_str_eq(out[0].name, WR_STR("A")) && wr_str_eq(out[0].value, WR_STR("1")));
    assert_true(wr_str_eq(out[1].value, WR_STR("two words")));
    assert_true(wr_str_eq(out[2].name, WR_STR("C")) && out[2].value.len == 0);
    assert_true(wr_str_eq(out[3].value, WR_STR("x"))); /* a last line without CRLF */
    assert_int_equal(wr_cache_head_split(wr_str_from_cstr(head), out, 2), 2); /* bounded */
    assert_true(wr_str_eq(wr_cache_head_field(out, 2, "b"), WR_STR("two words")));
    assert_null(wr_cache_head_field(out, 2, "C").ptr);
}

/* §3.2: the 304's fields replace the stored ones of the same names (all
 * lines of a name), the others stay; Content-Length, Content-Encoding,
 * hop-by-hop fields and Date of the 304 do not go in. */
static void issue_20_head_merge_304(void **state)
{
    (void)state;
    const char *stored = "Content-Type: text/html\r\nCache-Control: max-age=1\r\n"
                         "Content-Encoding: gzip\r\nX-V: 1\r\nX-V: 2\r\nETag: \"a\"\r\n";
    const struct wr_http_header h[] = {
        F("Cache-Control", "max-age=60"), F("X-V", "3"), F("Content-Length", "0"),
        F("Content-Encoding", "br"), F("Connection", "close"), F("Date", "x"),
        F("X-New", "n"), F("Age", "5"),
    };
    size_t len;
    char *got = wr_cache_head_merge_304(wr_str_from_cstr(stored), h, sizeof(h) / sizeof(h[0]),
                                        &len);
    assert_head(got, len,
                "Content-Type: text/html\r\nContent-Encoding: gzip\r\nETag: \"a\"\r\n"
                "Cache-Control: max-age=60\r\nX-V: 3\r\nX-New: n\r\n");
}

static void issue_20_head_put_bounded(void **state)
{
    (void)state;
    char buf[12];
    size_t len = 0;
    assert_true(wr_cache_head_put(buf, &len, sizeof(buf), WR_STR("A"), WR_STR("12345")));
    assert_int_equal(len, 10);
    assert_false(wr_cache_head_put(buf, &len, sizeof(buf), WR_STR("B"), WR_STR("")));
    assert_int_equal(len, 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issue_20_head_store_keeps_end_to_end_fields),
        cmocka_unit_test(issue_20_head_split_reads_back),
        cmocka_unit_test(issue_20_head_merge_304),
        cmocka_unit_test(issue_20_head_put_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
