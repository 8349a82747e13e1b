/*
 * Unit tests for resolve.c's pure parts (issue 19.3): address sets compared
 * as sets, the change described for the log, the interval chosen from
 * `resolve` and the TTL, hosts-file lookups, and an upstream's servers
 * rebuilt with a name's new set. The DNS side is covered by
 * tests/integration/test_issue_19_dns.py against a responder of its own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weir/resolve.h"
#include "weir/units.h"

/* addrs[i] parsed from texts[i] (n of them). */
static void make_set(struct wr_listen_addr *addrs, const char *const *texts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(wr_units_parse_listen(texts[i], &addrs[i]), 0);
}

static void issue_19_same_set(void **state)
{
    (void)state;
    struct wr_listen_addr a[3], b[3], c[2];
    make_set(a, (const char *[]){"10.0.0.1:80", "10.0.0.2:80", "[2001:db8::1]:80"}, 3);
    make_set(b, (const char *[]){"[2001:db8::1]:80", "10.0.0.1:80", "10.0.0.2:80"}, 3);
    make_set(c, (const char *[]){"10.0.0.1:80", "10.0.0.3:80"}, 2);
    assert_true(wr_resolve_same_set(a, 3, b, 3)); /* rotation is no change */
    assert_false(wr_resolve_same_set(a, 3, c, 2));
    assert_false(wr_resolve_same_set(a, 2, a, 3)); /* one more address */
    assert_false(wr_resolve_same_set(a, 3, a, 2)); /* one less */
    assert_true(wr_resolve_same_set(a, 0, b, 0));
    /* a duplicate counts once */
    struct wr_listen_addr d[3];
    make_set(d, (const char *[]){"10.0.0.1:80", "10.0.0.3:80", "10.0.0.1:80"}, 3);
    assert_true(wr_resolve_same_set(c, 2, d, 3));
}

static void issue_19_describe(void **state)
{
    (void)state;
    struct wr_listen_addr old[2], now[2];
    char buf[256];
    make_set(old, (const char *[]){"10.0.0.1:80", "10.0.0.2:80"}, 2);
    make_set(now, (const char *[]){"10.0.0.2:80", "10.0.0.3:80"}, 2);
    assert_string_equal(wr_resolve_describe(old, 2, now, 2, buf, sizeof(buf)),
                        "added 10.0.0.3:80; removed 10.0.0.1:80");
    assert_string_equal(wr_resolve_describe(old, 1, old, 2, buf, sizeof(buf)),
                        "added 10.0.0.2:80; removed none");
    assert_string_equal(wr_resolve_describe(now, 2, now, 1, buf, sizeof(buf)),
                        "added none; removed 10.0.0.3:80");
    /* cut, never overrun */
    char small[12];
    wr_resolve_describe(old, 2, now, 2, small, sizeof(small));
    assert_int_equal(strlen(small), sizeof(small) - 1);
}

static void issue_19_interval(void **state)
{
    (void)state;
    assert_int_equal(wr_resolve_interval_ms(30000, -1), 30000); /* no TTL (hosts file) */
    assert_int_equal(wr_resolve_interval_ms(30000, 300), 30000); /* resolve is sooner */
    assert_int_equal(wr_resolve_interval_ms(30000, 10), 10000);  /* the TTL is sooner */
    assert_int_equal(wr_resolve_interval_ms(30000, 0), WR_RESOLVE_FLOOR_MS); /* floor */
    assert_int_equal(wr_resolve_interval_ms(1000, 0), WR_RESOLVE_FLOOR_MS);
    assert_int_equal(wr_resolve_interval_ms(1500, 1), WR_RESOLVE_FLOOR_MS);
    assert_int_equal(wr_resolve_interval_ms(2500, 2), 2000);
}

static void issue_19_hosts_lookup(void **state)
{
    (void)state;
    const char *hosts = "# comment app.test\n"
                        "127.0.0.1\tlocalhost\n"
                        "10.0.0.7 app.test app # comment app2.test\n"
                        "  fe80::1%eth0 app.test\n"
                        "2001:db8::7   other APP.test\n"
                        "10.0.0.7 app.test\n"
                        "not-an-address app.test\n"
                        "10.0.0.8 app2.test";
    struct wr_listen_addr out[4];
    size_t n = wr_resolve_hosts_lookup(hosts, "app.test", 9000, out, 4);
    assert_int_equal(n, 2); /* scoped v6 and the duplicate are left out */
    assert_string_equal(out[0].text, "10.0.0.7:9000");
    assert_string_equal(out[1].text, "[2001:db8::7]:9000");
    assert_int_equal(wr_resolve_hosts_lookup(hosts, "app2.test", 1, out, 4), 1);
    assert_string_equal(out[0].text, "10.0.0.8:1");
    assert_int_equal(wr_resolve_hosts_lookup(hosts, "app", 1, out, 4), 1);
    assert_int_equal(wr_resolve_hosts_lookup(hosts, "ap", 1, out, 4), 0);
    assert_int_equal(wr_resolve_hosts_lookup(hosts, "app.test", 1, out, 1), 1); /* cap */
    assert_int_equal(wr_resolve_hosts_lookup("", "app.test", 1, out, 4), 0);
}

/* The servers of a named line are replaced by the set (weight, line and
 * authority kept), others copied, order kept. */
static void issue_19_servers(void **state)
{
    (void)state;
    struct wr_upstream_server_cfg servers[4] = {
        {.weight = 1, .line = 3, .label = "192.0.2.1:80", .authority = "192.0.2.1:80"},
        {.weight = 5, .line = 4, .is_named = true, .label = "App.test:81 (10.0.0.1:81)",
         .authority = "App.test:81"},
        {.weight = 5, .line = 4, .is_named = true, .label = "App.test:81 (10.0.0.2:81)",
         .authority = "App.test:81"},
        {.weight = 1, .line = 5, .label = "192.0.2.2:80", .authority = "192.0.2.2:80"},
    };
    make_set(&servers[0].addr, (const char *[]){"192.0.2.1:80"}, 1);
    make_set(&servers[1].addr, (const char *[]){"10.0.0.1:81"}, 1);
    make_set(&servers[2].addr, (const char *[]){"10.0.0.2:81"}, 1);
    make_set(&servers[3].addr, (const char *[]){"192.0.2.2:80"}, 1);
    struct wr_upstream_cfg up = {.name = "u", .servers = servers, .n_servers = 4};
    struct wr_listen_addr set[3];
    make_set(set, (const char *[]){"10.0.0.2:81", "10.0.0.3:81", "10.0.0.4:81"}, 3);
    const struct wr_resolve_set sets[1] = {{.line = 4, .addrs = set, .n_addrs = 3}};
    struct wr_upstream_server_cfg *out = NULL;
    size_t n = 0;
    assert_int_equal(wr_resolve_servers(&up, sets, 1, &out, &n), 0);
    assert_int_equal(n, 5);
    assert_string_equal(out[0].label, "192.0.2.1:80");
    for (size_t i = 1; i <= 3; i++) {
        assert_string_equal(out[i].addr.text, set[i - 1].text);
        assert_int_equal(out[i].weight, 5);
        assert_int_equal(out[i].line, 4);
        assert_true(out[i].is_named);
        assert_string_equal(out[i].authority, "App.test:81");
    }
    assert_string_equal(out[2].label, "App.test:81 (10.0.0.3:81)");
    assert_string_equal(out[4].addr.text, "192.0.2.2:80");
    wr_resolve_servers_free(out, n);

    /* no set for the line: everything copied as it is */
    assert_int_equal(wr_resolve_servers(&up, NULL, 0, &out, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(out[2].label, "App.test:81 (10.0.0.2:81)");
    wr_resolve_servers_free(out, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issue_19_same_set),     cmocka_unit_test(issue_19_describe),
        cmocka_unit_test(issue_19_interval),     cmocka_unit_test(issue_19_hosts_lookup),
        cmocka_unit_test(issue_19_servers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
