/*
 * Unit tests for proxy.c's pure part: which fields are hop-by-hop
 * (RFC 9110 §7.6.1). The streaming itself is covered by the integration
 * tests against real backends (tests/integration/test_proxy*.py).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "weir/proxy.h"

static void test_fixed_names(void **state)
{
    (void)state;
    static const char *const hop[] = {"Connection", "keep-alive", "PROXY-CONNECTION", "TE",
                                      "Trailer", "transfer-encoding", "Upgrade"};
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        assert_true(wr_proxy_is_hop_header(wr_str_from_cstr(hop[i]), NULL, 0));
    static const char *const e2e[] = {"Cookie", "Set-Cookie", "Content-Type", "X-Request-Id",
                                      "Authorization", "Trailers", "TEx"};
    for (size_t i = 0; i < sizeof(e2e) / sizeof(e2e[0]); i++)
        assert_false(wr_proxy_is_hop_header(wr_str_from_cstr(e2e[i]), NULL, 0));
}

static void test_connection_listed(void **state)
{
    (void)state;
    const struct wr_http_header fields[] = {
        {WR_STR("Connection"), WR_STR("keep-alive, X-Secret")},
        {WR_STR("connection"), WR_STR("x-other")},
        {WR_STR("X-Secret"), WR_STR("1")},
    };
    assert_true(wr_proxy_is_hop_header(WR_STR("x-secret"), fields, 3));
    assert_true(wr_proxy_is_hop_header(WR_STR("X-Other"), fields, 3));
    assert_false(wr_proxy_is_hop_header(WR_STR("X-Secret-2"), fields, 3));
    assert_false(wr_proxy_is_hop_header(WR_STR("Secret"), fields, 3));
}

/* Names that CGI-style backends would read as another field are not
 * forwarded by default (issue 13.23). */
static void issue_13_underscore_names(void **state)
{
    (void)state;
    static const char *const with[] = {"Content_Length", "Transfer_Encoding",
                                       "X_Forwarded_For", "_", "X-A_", "_X"};
    static const char *const without[] = {"Content-Length", "X-Forwarded-For", "Host", "X", ""};
    for (size_t i = 0; i < sizeof(with) / sizeof(with[0]); i++)
        assert_true(wr_proxy_is_underscore_name(wr_str_from_cstr(with[i])));
    for (size_t i = 0; i < sizeof(without) / sizeof(without[0]); i++)
        assert_false(wr_proxy_is_underscore_name(wr_str_from_cstr(without[i])));
    /* Only the name's bytes count, not what follows it in the buffer. */
    assert_false(wr_proxy_is_underscore_name((struct wr_str){"X-Y_Z", 3}));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_names),
        cmocka_unit_test(test_connection_listed),
        cmocka_unit_test(issue_13_underscore_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
