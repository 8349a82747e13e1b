/*
 * Unit tests for h1_framing: issue 14 moved the framing decision of every
 * response (Content-Length, chunked, or the close for HTTP/1.0) out of the
 * handlers into one pure function the HTTP/1 front end calls, and the
 * status line and framing fields into the front end's head finisher.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "weir/h1_framing.h"

static void expect(struct wr_h1_framing f, enum wr_h1_body body, bool has_length_field,
                   bool is_keep_alive)
{
    assert_int_equal(f.body, body);
    assert_int_equal(f.has_length_field, has_length_field);
    assert_int_equal(f.is_keep_alive, is_keep_alive);
    assert_false(f.is_upgrade);
}

/* Length known: Content-Length, whatever the version. */
static void issue_14_h1_framing_length(void **state)
{
    (void)state;
    expect(wr_h1_choose_framing(200, false, true, 1, true), WR_H1_BODY_LENGTH, true, true);
    expect(wr_h1_choose_framing(200, false, true, 0, true), WR_H1_BODY_LENGTH, true, true);
    expect(wr_h1_choose_framing(404, false, true, 1, false), WR_H1_BODY_LENGTH, true, false);
}

/* Length unknown: chunked for HTTP/1.1; for HTTP/1.0 the close ends the
 * body (RFC 9112 §6.3), so the connection cannot go on. */
static void issue_14_h1_framing_unknown_length(void **state)
{
    (void)state;
    expect(wr_h1_choose_framing(200, false, false, 1, true), WR_H1_BODY_CHUNKED, false, true);
    expect(wr_h1_choose_framing(200, false, false, 1, false), WR_H1_BODY_CHUNKED, false, false);
    expect(wr_h1_choose_framing(200, false, false, 0, true), WR_H1_BODY_CLOSE, false, false);
    expect(wr_h1_choose_framing(502, false, false, 0, false), WR_H1_BODY_CLOSE, false, false);
}

/* No body: 1xx, 204 and 304 never announce a length; a HEAD answer keeps
 * the Content-Length the GET would have had (RFC 9110 §9.3.2, §8.6), and an
 * unknown length costs HEAD nothing (no chunked, no close). */
static void issue_14_h1_framing_bodiless(void **state)
{
    (void)state;
    static const int statuses[] = {100, 101, 204, 304};
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        expect(wr_h1_choose_framing(statuses[i], false, true, 1, true), WR_H1_BODY_NONE, false,
               true);
        expect(wr_h1_choose_framing(statuses[i], true, false, 0, true), WR_H1_BODY_NONE, false,
               true);
    }
    expect(wr_h1_choose_framing(200, true, true, 1, true), WR_H1_BODY_NONE, true, true);
    expect(wr_h1_choose_framing(200, true, false, 1, true), WR_H1_BODY_NONE, false, true);
    expect(wr_h1_choose_framing(200, true, false, 0, true), WR_H1_BODY_NONE, false, true);
}

static void expect_head(struct wr_resp *r, const char *want)
{
    assert_false(r->is_overflow);
    struct wr_str head = wr_resp_bytes(r);
    if (head.len != strlen(want) || memcmp(head.ptr, want, head.len) != 0)
        fail_msg("head:\n%.*s\nwant:\n%s", (int)head.len, head.ptr, want);
}

/* The finisher writes the status line before the handler's fields and the
 * framing fields after them; handlers wrote neither. */
/* The constant lines for 200 and 304 say what the reason table says. */
static void issue_14_h1_status_line_fast_paths(void **state)
{
    (void)state;
    static const int statuses[] = {200, 304, 404, 206, 101, 999, 42};
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        char line[WR_RESP_STATUS_ROOM], want[WR_RESP_STATUS_ROOM];
        size_t n = wr_h1_status_line(line, statuses[i]);
        int st = statuses[i] < 100 || statuses[i] > 999 ? 500 : statuses[i];
        int m = snprintf(want, sizeof(want), "HTTP/1.1 %d %s\r\n", st, wr_resp_reason(st));
        assert_int_equal(n, (size_t)m);
        assert_memory_equal(line, want, n);
    }
}

static void issue_14_h1_chunk_size_line(void **state)
{
    (void)state;
    char out[18];
    assert_int_equal(wr_h1_chunk_size_line(out, 0), 3);
    assert_memory_equal(out, "0\r\n", 3);
    assert_int_equal(wr_h1_chunk_size_line(out, 0x1a2b), 6);
    assert_memory_equal(out, "1a2b\r\n", 6);
    assert_int_equal(wr_h1_chunk_size_line(out, UINT64_MAX), 18);
    assert_memory_equal(out, "ffffffffffffffff\r\n", 18);
}

static void issue_14_h1_finish_head(void **state)
{
    (void)state;
    struct wr_resp_clock clock = {.common = "Date: x\r\n", .common_len = 9};
    char buf[256];
    struct wr_resp r;
    wr_resp_init(&r, buf, sizeof(buf));
    wr_resp_start(&r, 200, &clock);
    wr_resp_header(&r, "X-A", WR_STR("1"));
    struct wr_h1_framing f = wr_h1_choose_framing(200, false, false, 1, true);
    wr_h1_finish_head(&r, &f, 1);
    expect_head(&r, "HTTP/1.1 200 OK\r\nDate: x\r\nX-A: 1\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n");
    assert_false(r.is_head_only);

    wr_resp_start(&r, 200, &clock);
    r.body_len = 0;
    f = wr_h1_choose_framing(200, false, true, 0, true);
    wr_h1_finish_head(&r, &f, 0);
    expect_head(&r, "HTTP/1.1 200 OK\r\nDate: x\r\nContent-Length: 0\r\n"
                    "Connection: keep-alive\r\n\r\n");

    wr_resp_start(&r, 200, &clock);
    f = wr_h1_choose_framing(200, false, false, 0, true);
    wr_h1_finish_head(&r, &f, 0);
    expect_head(&r, "HTTP/1.1 200 OK\r\nDate: x\r\nConnection: close\r\n\r\n");

    wr_resp_start(&r, 101, &clock);
    wr_resp_header(&r, "Upgrade", WR_STR("websocket"));
    f = wr_h1_choose_framing(101, false, false, 1, false);
    f.is_upgrade = true;
    wr_h1_finish_head(&r, &f, 1);
    expect_head(&r, "HTTP/1.1 101 Switching Protocols\r\nDate: x\r\nUpgrade: websocket\r\n"
                    "Connection: upgrade\r\n\r\n");
    assert_true(r.is_head_only);

    /* The longest reason fits the room kept for the line. */
    wr_resp_start(&r, 431, &clock);
    f = wr_h1_choose_framing(431, false, true, 1, false);
    r.body_len = 3;
    wr_h1_finish_head(&r, &f, 1);
    expect_head(&r, "HTTP/1.1 431 Request Header Fields Too Large\r\nDate: x\r\n"
                    "Content-Length: 3\r\nConnection: close\r\n\r\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issue_14_h1_framing_length),
        cmocka_unit_test(issue_14_h1_framing_unknown_length),
        cmocka_unit_test(issue_14_h1_framing_bodiless),
        cmocka_unit_test(issue_14_h1_finish_head),
        cmocka_unit_test(issue_14_h1_status_line_fast_paths),
        cmocka_unit_test(issue_14_h1_chunk_size_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
