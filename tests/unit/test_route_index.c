/*
 * Unit tests for route_index.c (issue 18): the literal a regex requires,
 * and which routes a path's lookup offers, in file order. Configs come
 * from the real loader, which builds the index as a snapshot has it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "testconfig.h"

#include "weir/config.h"
#include "weir/route_index.h"
#include "weir/router.h"

static void expect_literal(const char *pattern, const char *want)
{
    char out[64];
    size_t n = wr_route_regex_literal(pattern, out, sizeof(out));
    out[n] = '\0';
    if (strcmp(out, want) != 0)
        fail_msg("%s: literal \"%s\", want \"%s\"", pattern, out, want);
}

static void issue_18_regex_literal(void **state)
{
    (void)state;
    expect_literal("^/api/v([0-9]+)/(.*)$", "/api/v");
    expect_literal("^/r42/", "/r42/");
    expect_literal("^/x$", "/x");
    expect_literal("^/a\\.b/", "/a.b/");  /* an escaped punctuation character */
    expect_literal("^\\/x/y", "/x/y");
    expect_literal("^/a\\d", "/a");       /* \d is a class, not a byte */
    expect_literal("^/ab?c", "/a");       /* b may be absent */
    expect_literal("^/ab*", "/a");
    expect_literal("^/ab{2}", "/a");
    expect_literal("^/ab+c", "/ab");      /* at least one b, then unknown */
    expect_literal("^/a.c", "/a");
    expect_literal("^/a[bc]", "/a");
    expect_literal("^/a(b)", "/a");
    expect_literal("/x", "");             /* not anchored */
    expect_literal("^/a|^/b", "");        /* an alternative: no anchor to trust */
    expect_literal("^/a/(x|y)", "");      /* any '|' refuses */
    expect_literal("^(?i)/a", "");        /* options first: nothing literal */
    expect_literal("(*UTF)^/a", "");
    expect_literal("^", "");
    /* The output is bounded by cap. */
    char out[3];
    assert_int_equal(wr_route_regex_literal("^/abcdef", out, sizeof(out)), 3);
    assert_memory_equal(out, "/ab", 3);
}

static struct wr_config *load(const char *routes)
{
    char text[4096];
    snprintf(text, sizeof(text), "[server]\nlisten = 127.0.0.1:8080\n%s", routes);
    return testconfig_parse(text);
}

/* The candidates the index offers for path, as "0 3 4". */
static void expect_candidates(const struct wr_config *cfg, const char *path, const char *want)
{
    struct wr_route_cursor c;
    wr_route_index_find(cfg->route_index, cfg->n_routes, (struct wr_str){path, strlen(path)}, &c);
    char got[256] = "";
    size_t len = 0;
    for (size_t i; (i = wr_route_cursor_next(&c)) != SIZE_MAX;)
        len += (size_t)snprintf(got + len, sizeof(got) - len, "%s%zu", len ? " " : "", i);
    if (strcmp(got, want) != 0)
        fail_msg("%s: candidates \"%s\", want \"%s\"", path, got, want);
}

static const char ROUTES[] = "[route r0]\nmatch = exact:/healthz\nreturn = 200 h\n"
                             "[route r1]\nmatch = prefix:/static/\nreturn = 200 s\n"
                             "[route r2]\nmatch = regex:^/api/v1/\nreturn = 200 a\n"
                             "[route r3]\nmatch = prefix:/st\nreturn = 200 t\n"
                             "[route r4]\nmatch = regex:\\.php$\nreturn = 200 p\n"
                             "[route r5]\nmatch = regex:^/r(1|2)/\nreturn = 200 r\n"
                             "[route r6]\nmatch = regex:^/api/v2/x\nreturn = 200 b\n"
                             "[route r7]\nmatch = exact:/a/b\nreturn = 200 e\n"
                             "[route r8]\nmatch = prefix:/\nreturn = 200 any\n";

static void issue_18_index_candidates(void **state)
{
    (void)state;
    struct wr_config *cfg = load(ROUTES);
    assert_non_null(cfg->route_index);
    /* Filed: /healthz, /static, /api (twice), /a; tried always: r3 (its
     * prefix "/st" fixes no segment), r4 (unanchored), r5 ('|'), r8 ("/"). */
    assert_int_equal(wr_route_index_n_keys(cfg->route_index), 4);
    assert_int_equal(wr_route_index_n_always(cfg->route_index), 4);
    expect_candidates(cfg, "/api/v1/users", "2 3 4 5 6 8");
    expect_candidates(cfg, "/healthz", "0 3 4 5 8");
    expect_candidates(cfg, "/static/x.css", "1 3 4 5 8");
    expect_candidates(cfg, "/a/b", "3 4 5 7 8");
    expect_candidates(cfg, "/other/x.php", "3 4 5 8");
    expect_candidates(cfg, "/", "3 4 5 8");
    expect_candidates(cfg, "*", "3 4 5 8");
    expect_candidates(cfg, "", "3 4 5 8");
    /* Without an index: every route, in order. */
    struct wr_route_cursor c;
    wr_route_index_find(NULL, 3, (struct wr_str){"/x", 2}, &c);
    assert_int_equal(wr_route_cursor_next(&c), 0);
    assert_int_equal(wr_route_cursor_next(&c), 1);
    assert_int_equal(wr_route_cursor_next(&c), 2);
    assert_int_equal(wr_route_cursor_next(&c), SIZE_MAX);
    wr_config_unref(cfg);
}

/* The router answers through the index exactly as by trying every route:
 * the first match in file order, regex captures, 405 with the Allow of
 * every route whose path matched. */
static void issue_18_router_same_answers(void **state)
{
    (void)state;
    struct wr_config *cfg = load("[route g]\nmatch = prefix:/api/\nmethods = GET\nreturn = 200 g\n"
                                 "[route p]\nmatch = regex:^/api/(\\w+)$\nmethods = POST\n"
                                 "return = 200 p\n"
                                 "[route any]\nmatch = regex:^/x/(.*)\nreturn = 200 x\n"
                                 "[route last]\nmatch = prefix:/\nmethods = GET\n"
                                 "return = 200 l\n");
    struct wr_router_scratch *s = wr_router_scratch_new();
    const char *paths[] = {"/api/users", "/api/", "/x/1/2", "/y", "/", "*", "/api"};
    const enum wr_http_method methods[] = {WR_HTTP_GET, WR_HTTP_POST, WR_HTTP_PUT};
    struct wr_route_index *idx = cfg->route_index;
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
            struct wr_router_input in = {.path = {paths[i], strlen(paths[i])},
                                         .method_id = methods[m]};
            struct wr_router_match a, b;
            cfg->route_index = idx;
            int ra = wr_router_match(cfg, s, &in, &a);
            cfg->route_index = NULL;
            int rb = wr_router_match(cfg, s, &in, &b);
            assert_int_equal(ra, rb);
            assert_ptr_equal(a.route, b.route);
            assert_string_equal(a.allow, b.allow);
            assert_int_equal(a.n_captures, b.n_captures);
        }
    }
    cfg->route_index = idx;
    wr_router_scratch_free(s);
    wr_config_unref(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issue_18_regex_literal),
        cmocka_unit_test(issue_18_index_candidates),
        cmocka_unit_test(issue_18_router_same_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
