/* cidr: address ranges, matching, and allow/deny lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "weir/cidr.h"

static void issue_19_cidr(void **state)
{
    (void)state;
    struct wr_cidr c[3];
    assert_int_equal(wr_cidr_parse("10.0.0.0/8", &c[0]), 0);
    assert_int_equal(wr_cidr_parse("2001:db8::/32", &c[1]), 0);
    assert_int_equal(wr_cidr_parse("192.0.2.7", &c[2]), 0);
    assert_int_equal(c[2].bits, 32);
    struct sockaddr_in in = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET, "10.200.3.4", &in.sin_addr);
    assert_true(wr_cidr_match(&c[0], (struct sockaddr *)&in));
    assert_true(wr_cidr_match_any(c, 3, (struct sockaddr *)&in));
    inet_pton(AF_INET, "11.0.0.1", &in.sin_addr);
    assert_false(wr_cidr_match_any(c, 3, (struct sockaddr *)&in));
    inet_pton(AF_INET, "192.0.2.7", &in.sin_addr);
    assert_true(wr_cidr_match(&c[2], (struct sockaddr *)&in));
    inet_pton(AF_INET6, "2001:db8:ffff::1", &in6.sin6_addr);
    assert_true(wr_cidr_match(&c[1], (struct sockaddr *)&in6));
    inet_pton(AF_INET6, "2001:db9::1", &in6.sin6_addr);
    assert_false(wr_cidr_match(&c[1], (struct sockaddr *)&in6));
    inet_pton(AF_INET6, "::ffff:10.1.2.3", &in6.sin6_addr); /* mapped */
    assert_true(wr_cidr_match(&c[0], (struct sockaddr *)&in6));
    /* host bits cleared, a /0, and errors */
    assert_int_equal(wr_cidr_parse("10.1.2.3/8", &c[0]), 0);
    assert_int_equal(c[0].addr[1], 0);
    assert_int_equal(wr_cidr_parse("0.0.0.0/0", &c[0]), 0);
    inet_pton(AF_INET, "203.0.113.9", &in.sin_addr);
    assert_true(wr_cidr_match(&c[0], (struct sockaddr *)&in));
    static const char *const bad[] = {"10.0.0.0/33", "::/129", "10.0.0/8", "10.0.0.0/", "x",
                                      "", "10.0.0.0/-1", "10.0.0.0/8/8", "example.org/8"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(wr_cidr_parse(bad[i], &c[0]), -1);
}

static struct wr_access_rule rule(const char *range, bool is_allow)
{
    struct wr_access_rule r = {.is_allow = is_allow};
    if (strcmp(range, "all") == 0)
        r.is_all = true;
    else
        assert_int_equal(wr_cidr_parse(range, &r.range), 0);
    return r;
}

/* First match decides; no match: in unless the list allows some. */
static void issue_19_access_lists(void **state)
{
    (void)state;
    assert_true(wr_access_allows(NULL, 0, "192.0.2.1"));
    struct wr_access_rule only[] = {rule("10.0.0.0/8", true), rule("2001:db8::/32", true)};
    assert_true(wr_access_allows(only, 2, "10.1.2.3"));
    assert_true(wr_access_allows(only, 2, "2001:db8::5"));
    assert_false(wr_access_allows(only, 2, "192.0.2.1"));
    assert_false(wr_access_allows(only, 2, "unix:")); /* no address: not allowed */
    struct wr_access_rule but[] = {rule("192.0.2.0/24", false)};
    assert_false(wr_access_allows(but, 1, "192.0.2.9"));
    assert_true(wr_access_allows(but, 1, "198.51.100.1"));
    assert_true(wr_access_allows(but, 1, "unix:"));
    /* nginx's order: the first match wins */
    struct wr_access_rule mixed[] = {rule("10.1.0.0/16", false), rule("10.0.0.0/8", true),
                                     rule("all", false)};
    assert_false(wr_access_allows(mixed, 3, "10.1.5.5"));
    assert_true(wr_access_allows(mixed, 3, "10.2.5.5"));
    assert_false(wr_access_allows(mixed, 3, "192.0.2.1"));
    assert_false(wr_access_allows(mixed, 3, "unix:"));
    struct wr_access_rule all_in[] = {rule("all", true)};
    assert_true(wr_access_allows(all_in, 1, "unix:"));
    assert_true(wr_access_allows(only, 2, "::ffff:10.9.9.9")); /* mapped */
}

/* The IPv4 fast path (a mask and a compare per rule) agrees with
 * wr_cidr_match at the prefix lengths' edges. */
static void issue_19_access_ipv4_edges(void **state)
{
    (void)state;
    struct wr_access_rule zero[] = {rule("0.0.0.0/0", true)};
    assert_true(wr_access_allows(zero, 1, "203.0.113.9"));
    assert_false(wr_access_allows(zero, 1, "2001:db8::1")); /* v4 rules only match v4 */
    struct wr_access_rule host[] = {rule("203.0.113.9/32", true)};
    assert_true(wr_access_allows(host, 1, "203.0.113.9"));
    assert_false(wr_access_allows(host, 1, "203.0.113.8"));
    struct wr_access_rule pair[] = {rule("203.0.113.8/31", true)};
    assert_true(wr_access_allows(pair, 1, "203.0.113.8"));
    assert_true(wr_access_allows(pair, 1, "203.0.113.9"));
    assert_false(wr_access_allows(pair, 1, "203.0.113.10"));
    struct wr_access_rule odd[] = {rule("10.255.255.255/9", true)}; /* 10.128.0.0/9 */
    assert_true(wr_access_allows(odd, 1, "10.128.0.1"));
    assert_true(wr_access_allows(odd, 1, "10.255.0.1"));
    assert_false(wr_access_allows(odd, 1, "10.127.0.1"));
    struct wr_access_rule mapped[] = {rule("::ffff:10.0.0.0/104", true)};
    assert_false(wr_access_allows(mapped, 1, "10.1.1.1")); /* as wr_cidr_match */
    struct wr_cidr c;
    assert_int_equal(wr_cidr_parse("198.51.100.0/22", &c), 0);
    assert_int_equal(c.v4_mask, 0xfffffc00u);
    assert_int_equal(c.v4_net, 0xc6336400u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issue_19_cidr),
        cmocka_unit_test(issue_19_access_lists),
        cmocka_unit_test(issue_19_access_ipv4_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
