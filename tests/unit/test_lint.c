/*
 * Unit tests for lint.c: shadowed routes (pairs that are, pairs that must
 * not be claimed) and unused upstreams, on configs loaded from ini text
 * (no DNS: numeric servers only).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testconfig.h"

#include "weir/lint.h"

#define SERVER "[server]\nlisten = 127.0.0.1:8080\nlisten = 127.0.0.1:8443 tls\n" \
               "[tls]\ncert = /x.crt\nkey = /x.key\n"

static struct wr_config *load(const char *routes)
{
    char text[4096];
    snprintf(text, sizeof(text), "%s%s", SERVER, routes);
    return testconfig_parse(text);
}

/* Whether route a (the first) covers route b (the second) of two [route]
 * sections given as "key = value" lines each. */
static bool covers(const char *a, const char *b)
{
    char routes[2048];
    snprintf(routes, sizeof(routes), "[route a]\n%s\nreturn = 200 a\n[route b]\n%s\n"
                                     "return = 200 b\n", a, b);
    struct wr_config *cfg = load(routes);
    assert_int_equal(cfg->n_routes, 2);
    struct wr_router_scratch *s = wr_router_scratch_new();
    bool is_covered = wr_lint_route_covers(&cfg->routes[0], &cfg->routes[1], s);
    wr_router_scratch_free(s);
    wr_config_unref(cfg);
    return is_covered;
}

#define SHADOWED(a, b) assert_true(covers(a, b))
#define NOT_SHADOWED(a, b) assert_false(covers(a, b))

static void issue_17_lint_paths(void **state)
{
    (void)state;
    SHADOWED("match = prefix:/api/", "match = exact:/api/users");
    SHADOWED("match = prefix:/api/", "match = prefix:/api/v2/");
    SHADOWED("match = prefix:/api", "match = prefix:/api/");
    SHADOWED("match = prefix:/api/", "match = prefix:/api/");
    SHADOWED("match = exact:/x", "match = exact:/x");
    SHADOWED("match = prefix:/", "match = regex:^/anything$");
    SHADOWED("match = prefix:/", "match = exact:/");
    NOT_SHADOWED("match = prefix:/api/", "match = prefix:/api");
    NOT_SHADOWED("match = prefix:/api/", "match = exact:/api");
    NOT_SHADOWED("match = exact:/api/", "match = prefix:/api/");
    NOT_SHADOWED("match = exact:/a", "match = exact:/b");
    NOT_SHADOWED("match = prefix:/a/", "match = prefix:/b/");
    /* OPTIONS * is no path: no prefix takes it, not even prefix:/. */
    NOT_SHADOWED("match = prefix:/", "match = exact:*");
    SHADOWED("match = exact:*", "match = exact:*");
}

static void issue_17_lint_regex(void **state)
{
    (void)state;
    /* Claimed: the same pattern text, or a regex that matches the one path
     * an exact: takes. */
    SHADOWED("match = regex:^/api/(.*)$", "match = regex:^/api/(.*)$");
    SHADOWED("match = regex:^/api/", "match = exact:/api/users");
    SHADOWED("match = regex:\\.php$", "match = exact:/index.php");
    /* Never claimed: a regex against a prefix or another regex, however
     * obvious it looks; a regex that does not match the exact path. */
    NOT_SHADOWED("match = regex:^/api/.*", "match = prefix:/api/");
    NOT_SHADOWED("match = regex:^/api/", "match = regex:^/api/v2/");
    NOT_SHADOWED("match = regex:^/api/(.*)$", "match = regex:^/api/(.+)$");
    NOT_SHADOWED("match = regex:^/api/$", "match = exact:/api/users");
    NOT_SHADOWED("match = prefix:/api/", "match = regex:^/api/");
    NOT_SHADOWED("match = exact:/api/", "match = regex:^/api/$");
    NOT_SHADOWED("match = regex:.*", "match = exact:*");
}

static void issue_17_lint_hosts(void **state)
{
    (void)state;
    SHADOWED("match = prefix:/", "match = prefix:/\nhost = example.org");
    SHADOWED("match = prefix:/\nhost = example.org", "match = prefix:/\nhost = Example.ORG");
    SHADOWED("match = prefix:/\nhost = *.example.org", "match = prefix:/\nhost = www.example.org");
    SHADOWED("match = prefix:/\nhost = *.example.org",
             "match = prefix:/\nhost = *.cdn.example.org");
    SHADOWED("match = prefix:/\nhost = *.example.org", "match = prefix:/\nhost = *.example.org");
    SHADOWED("match = prefix:/\nhost = a.org b.org c.org", "match = prefix:/\nhost = c.org a.org");
    NOT_SHADOWED("match = prefix:/\nhost = example.org", "match = prefix:/");
    NOT_SHADOWED("match = prefix:/\nhost = *.example.org", "match = prefix:/\nhost = example.org");
    NOT_SHADOWED("match = prefix:/\nhost = www.example.org",
                 "match = prefix:/\nhost = *.example.org");
    NOT_SHADOWED("match = prefix:/\nhost = *.cdn.example.org",
                 "match = prefix:/\nhost = *.example.org");
    NOT_SHADOWED("match = prefix:/\nhost = *.example.org",
                 "match = prefix:/\nhost = badexample.org");
    NOT_SHADOWED("match = prefix:/\nhost = a.org b.org", "match = prefix:/\nhost = a.org c.org");
}

static void issue_17_lint_methods_and_scheme(void **state)
{
    (void)state;
    SHADOWED("match = prefix:/", "match = prefix:/\nmethods = GET POST");
    SHADOWED("match = prefix:/\nmethods = GET POST", "match = prefix:/\nmethods = POST");
    SHADOWED("match = prefix:/\nmethods = GET", "match = prefix:/\nmethods = HEAD");
    SHADOWED("match = prefix:/\nmethods = GET PURGE", "match = prefix:/\nmethods = PURGE");
    /* Without methods a route takes every method but TRACE. */
    NOT_SHADOWED("match = prefix:/", "match = prefix:/\nmethods = TRACE");
    NOT_SHADOWED("match = prefix:/\nmethods = GET", "match = prefix:/\nmethods = GET POST");
    NOT_SHADOWED("match = prefix:/\nmethods = GET", "match = prefix:/");
    NOT_SHADOWED("match = prefix:/\nmethods = GET", "match = prefix:/\nmethods = PURGE");
    NOT_SHADOWED("match = prefix:/\nmethods = HEAD", "match = prefix:/\nmethods = GET");
    SHADOWED("match = prefix:/", "match = prefix:/\nscheme = https");
    SHADOWED("match = prefix:/\nscheme = http", "match = prefix:/\nscheme = http");
    NOT_SHADOWED("match = prefix:/\nscheme = http", "match = prefix:/\nscheme = https");
    NOT_SHADOWED("match = prefix:/\nscheme = https", "match = prefix:/");
}

static bool has_line(const struct wr_config_errors *errs, const char *needle)
{
    for (size_t i = 0; i < errs->n_warnings; i++) {
        if (strstr(errs->warnings[i], needle) != NULL)
            return true;
    }
    return false;
}

/* The warnings name both routes with file:line, only the first earlier
 * route that covers, and the unused upstream. */
static void issue_17_lint_config_warnings(void **state)
{
    (void)state;
    struct wr_config *cfg = load("[upstream app]\nserver = 127.0.0.1:9000\n"   /* line 7 */
                                 "[upstream spare]\nserver = 127.0.0.1:9001\n" /* line 9 */
                                 "[route all]\nmatch = prefix:/\nproxy = app\n" /* line 11 */
                                 "[route api]\nmatch = prefix:/api/\nreturn = 200 x\n"
                                 "[route again]\nmatch = prefix:/api/\nreturn = 200 y\n");
    struct wr_config_errors errs = {0};
    assert_int_equal(wr_lint_config(cfg, &errs), 3);
    for (size_t i = 0; i < errs.n_warnings; i++)
        print_message("%s\n", errs.warnings[i]);
    assert_true(has_line(&errs, "t.ini:14: warning: [route api] match: never answers: "
                                "[route all] (t.ini:11, match = prefix:/)"));
    assert_true(has_line(&errs, "t.ini:17: warning: [route again] match: never answers: "
                                "[route all] (t.ini:11"));
    assert_true(has_line(&errs, "t.ini:9: warning: [upstream spare]: no route proxies to it"));
    assert_false(has_line(&errs, "[upstream app]"));
    wr_config_errors_fini(&errs);
    wr_config_unref(cfg);

    cfg = load("[route a]\nmatch = prefix:/a/\nreturn = 200 a\n"
               "[route b]\nmatch = prefix:/b/\nreturn = 200 b\n");
    assert_int_equal(wr_lint_config(cfg, &errs), 0);
    assert_int_equal(errs.n_warnings, 0);
    wr_config_unref(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issue_17_lint_paths),
        cmocka_unit_test(issue_17_lint_regex),
        cmocka_unit_test(issue_17_lint_hosts),
        cmocka_unit_test(issue_17_lint_methods_and_scheme),
        cmocka_unit_test(issue_17_lint_config_warnings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
