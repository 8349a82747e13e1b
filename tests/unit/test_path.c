/*
 * Unit tests for path.c: wr_path_normalize, table-driven. Every input is
 * copied into an exact-size heap buffer (no NUL after it) and the output
 * buffer is exactly len bytes, so ASan catches a one-byte over-read or
 * over-write on either side.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "weir/path.h"

struct good_case {
    const char *in;
    const char *want;
};

static const struct good_case good_cases[] = {
    {"/", "/"},
    {"/a", "/a"},
    {"/a/", "/a/"},
    {"/a/b/c.html", "/a/b/c.html"},
    /* percent-decoding, hex either case */
    {"/%41", "/A"},
    {"/%61%62c", "/abc"},
    {"/%7e%7E", "/~~"},
    {"/a%20b", "/a b"},
    {"/%3F%23", "/?#"},
    /* %2F and %25 stay encoded, upper-cased */
    {"/%2f", "/%2F"},
    {"/%2F", "/%2F"},
    {"/a%2fb", "/a%2Fb"},
    {"/%25", "/%25"},
    {"/%25%32%46", "/%252F"}, /* decoded once only */
    {"/%252f", "/%252f"},
    {"/..%2f", "/..%2F"},     /* not a dot-segment: the slash is encoded */
    {"/%2e%2e%2f", "/..%2F"},
    /* UTF-8 bytes decoded and kept raw */
    {"/caf%C3%A9", "/caf\xc3\xa9"},
    {"/caf%c3%a9", "/caf\xc3\xa9"},
    {"/\xc3\xa9t\xc3\xa9", "/\xc3\xa9t\xc3\xa9"},
    {"/%ff", "/\xff"},
    /* repeated slashes */
    {"//", "/"},
    {"///", "/"},
    {"/a//b", "/a/b"},
    {"//a///b//", "/a/b/"},
    /* dot-segments */
    {"/.", "/"},
    {"/./", "/"},
    {"/a/./b", "/a/b"},
    {"/a/.", "/a/"},
    {"/a/./", "/a/"},
    {"/a/b/../c", "/a/c"},
    {"/a/b/..", "/a/"},
    {"/a/b/../", "/a/"},
    {"/a/..", "/"},
    {"/a/../", "/"},
    {"/a/b/../../c", "/c"},
    {"/a/./b/./../c/.", "/a/c/"},
    {"/a//..", "/"},
    {"/a/b//../c", "/a/c"},
    {"/%2e", "/"},
    {"/a/%2e%2e", "/"},
    {"/a/%2E%2e/b", "/b"},
    {"/a/.%2e/b", "/b"},
    {"/a/%2e./b", "/b"},
    /* dots that are not dot-segments */
    {"/...", "/..."},
    {"/a/.../b", "/a/.../b"},
    {"/.a", "/.a"},
    {"/a.", "/a."},
    {"/..a/b", "/..a/b"},
    {"/a/b..", "/a/b.."},
    {"/.well-known/x", "/.well-known/x"},
    /* bytes the path keeps as they are */
    {"/a?b", "/a?b"},
    {"/a b", "/a b"},
    {"/~user/+x=y;z", "/~user/+x=y;z"},
};

static const char *const bad_cases[] = {
    "",
    "a",
    "a/b",
    "%2Fa",
    "*",
    "/..",
    "/../",
    "/../a",
    "/a/../..",
    "/a/../../b",
    "/a/b/../../..",
    "/%2e%2e",
    "/%2e%2e/",
    "/%2E%2E/etc/passwd",
    "/a/%2e%2e/%2e%2e/x",
    "/.%2e/",
    "//../",
    "/%00",
    "/a%00b",
    "/%0a",
    "/%0D%0A",
    "/%1f",
    "/%7f",
    "/%7F",
    "/%",
    "/a%",
    "/%4",
    "/a%4",
    "/%zz",
    "/%g0",
    "/%0g",
    "/%%41",
    "/% 41",
    "/a\tb",
    "/a\x7f",
    "/a\rb",
};

/* Runs wr_path_normalize on an exact-size copy of in[0..len). */
static int normalize(const char *in, size_t len, char *want_out, size_t *out_len)
{
    char *raw = malloc(len > 0 ? len : 1);
    char *out = malloc(len > 0 ? len : 1);
    assert_non_null(raw);
    assert_non_null(out);
    memcpy(raw, in, len);
    int rc = wr_path_normalize(raw, len, out, out_len);
    if (rc == 0) {
        assert_true(*out_len <= len);
        memcpy(want_out, out, *out_len);
    }
    free(raw);
    free(out);
    return rc;
}

static void test_good(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]); i++) {
        const struct good_case *c = &good_cases[i];
        size_t len = strlen(c->in);
        char got[256];
        size_t got_len = SIZE_MAX;
        int rc = normalize(c->in, len, got, &got_len);
        if (rc != 0)
            fail_msg("case %zu \"%s\": rc %d, want 0", i, c->in, rc);
        if (got_len != strlen(c->want) || memcmp(got, c->want, got_len) != 0)
            fail_msg("case %zu \"%s\": got \"%.*s\", want \"%s\"", i, c->in, (int)got_len, got,
                     c->want);
    }
}

static void test_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        char got[256];
        size_t got_len = 0;
        int rc = normalize(bad_cases[i], strlen(bad_cases[i]), got, &got_len);
        if (rc != 400)
            fail_msg("case %zu \"%s\": rc %d, want 400", i, bad_cases[i], rc);
    }
}

/* NUL inside the raw bytes (not only decoded) is refused too. */
static void test_raw_nul(void **state)
{
    (void)state;
    char got[8];
    size_t got_len;
    assert_int_equal(normalize("/a\0b", 4, got, &got_len), 400);
}

/* A normalised path is a fixed point: normalising it again changes nothing
 * (so a path that went through the router and then static.c means the same). */
static void test_idempotent(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]); i++) {
        const char *want = good_cases[i].want;
        size_t len = strlen(want);
        char got[256];
        size_t got_len;
        assert_int_equal(normalize(want, len, got, &got_len), 0);
        assert_int_equal(got_len, len);
        assert_memory_equal(got, want, len);
    }
}

/* Long inputs stay linear and exact: many segments, then as many "..". */
static void test_long(void **state)
{
    (void)state;
    enum { N = 5000 };
    char *in = malloc(6 * N + 3);
    assert_non_null(in);
    size_t len = 0;
    for (int i = 0; i < N; i++) {
        memcpy(in + len, "/ab", 3);
        len += 3;
    }
    for (int i = 0; i < N; i++) {
        memcpy(in + len, "/..", 3);
        len += 3;
    }
    char *out = malloc(len);
    assert_non_null(out);
    size_t out_len;
    assert_int_equal(wr_path_normalize(in, len, out, &out_len), 0);
    assert_int_equal(out_len, 1);
    assert_int_equal(out[0], '/');
    /* One more ".." climbs above the root. */
    in[len++] = '/';
    in[len++] = '.';
    in[len++] = '.';
    free(out);
    out = malloc(len);
    assert_non_null(out);
    assert_int_equal(wr_path_normalize(in, len, out, &out_len), 400);
    free(out);
    free(in);
}

/* Issue 13.2: strip_prefix only at a segment boundary. */
static void issue_13_strip_prefix_boundary(void **state)
{
    (void)state;
    static const struct {
        const char *path, *prefix, *rest; /* rest NULL: not stripped */
    } cases[] = {
        {"/api/x", "/api", "/x"},   {"/api", "/api", ""},      {"/api/", "/api", "/"},
        {"/apix", "/api", NULL},    {"/api-v2/x", "/api", NULL}, {"/other/x", "/api", NULL},
        {"/ap", "/api", NULL},      {"/", "/api", NULL},       {"/api/x", "/api/", "x"},
        {"/api", "/api/", NULL},    {"/apix/", "/api/", NULL}, {"/x", "/", "x"},
        {"/a/b/c", "/a/b", "/c"},   {"/a/bc", "/a/b", NULL},   {"/API/x", "/api", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* exact-size copy: ASan sees a read past the path */
        size_t n = strlen(cases[i].path);
        char *copy = malloc(n);
        assert_non_null(copy);
        memcpy(copy, cases[i].path, n);
        struct wr_str rest = WR_STR("untouched");
        bool ok = wr_path_strip_prefix((struct wr_str){copy, n},
                                       wr_str_from_cstr(cases[i].prefix), &rest);
        if (cases[i].rest == NULL) {
            assert_false(ok);
            assert_true(wr_str_eq(rest, WR_STR("untouched")));
        } else {
            assert_true(ok);
            assert_int_equal(rest.len, strlen(cases[i].rest));
            assert_memory_equal(rest.ptr, cases[i].rest, rest.len);
        }
        free(copy);
    }
    struct wr_str rest;
    assert_false(wr_path_strip_prefix(WR_STR("/x"), (struct wr_str){NULL, 0}, &rest));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),       cmocka_unit_test(test_bad),
        cmocka_unit_test(test_raw_nul),    cmocka_unit_test(test_idempotent),
        cmocka_unit_test(test_long),       cmocka_unit_test(issue_13_strip_prefix_boundary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
