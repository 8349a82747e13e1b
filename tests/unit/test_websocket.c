/* websocket: handshake key and accept value (RFC 6455 §4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "weir/websocket.h"

/* RFC 6455 §1.3's worked example. */
static void test_rfc_example(void **state)
{
    (void)state;
    assert_true(wr_ws_accept_matches(WR_STR("dGhlIHNhbXBsZSBub25jZQ=="),
                                     WR_STR("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")));
    /* one character off, truncated, another key */
    assert_false(wr_ws_accept_matches(WR_STR("dGhlIHNhbXBsZSBub25jZQ=="),
                                      WR_STR("s3pPLMBiTxaQ9kYGzzhZRbK+xOp=")));
    assert_false(wr_ws_accept_matches(WR_STR("dGhlIHNhbXBsZSBub25jZQ=="),
                                      WR_STR("s3pPLMBiTxaQ9kYGzzhZRbK+xO")));
    assert_false(wr_ws_accept_matches(WR_STR("dGhlIHNhbXBsZSBub25jZR=="),
                                      WR_STR("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")));
    assert_false(wr_ws_accept_matches(WR_STR(""), WR_STR("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")));
}

/* Keys are 24 base64 characters, fresh each time. */
static void issue_15_ws_new_key(void **state)
{
    (void)state;
    char a[WR_WS_KEY_LEN + 1], b[WR_WS_KEY_LEN + 1];
    assert_int_equal(wr_ws_new_key(a), 0);
    assert_int_equal(wr_ws_new_key(b), 0);
    assert_int_equal(strlen(a), WR_WS_KEY_LEN);
    assert_string_equal(a + 22, "==");
    for (size_t i = 0; i < 22; i++)
        assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                               a[i]));
    assert_string_not_equal(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_example),
        cmocka_unit_test(issue_15_ws_new_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
