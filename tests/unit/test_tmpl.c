/*
 * Unit tests for tmpl: compiling (parts, captures, every error message) and
 * expanding (variables, captures set, unset and out of range, a buffer that
 * is exactly big enough and one that is one byte short).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "weir/tmpl.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const struct wr_tmpl_vars sample_vars = {
    .host = WR_STR("example.org"),
    .request_uri = WR_STR("/a?b=c"),
    .scheme = WR_STR("https"),
    .remote_addr = WR_STR("192.0.2.7"),
    .request_id = WR_STR("r-42"),
    .ssl_client_s_dn = WR_STR("CN=ann,O=Example"),
    .ssl_client_fingerprint = WR_STR("ab12"),
    .ssl_client_verify = WR_STR("SUCCESS"),
};

/* Expands text with vars into an exact-size heap buffer and compares. */
static void expect_expansion(const char *text, const struct wr_tmpl_vars *vars, const char *want)
{
    struct wr_tmpl t;
    const char *err = NULL;
    if (wr_tmpl_init(&t, text, &err) != 0)
        fail_msg("\"%s\" refused: %s", text, err);
    size_t len = strlen(want);
    char *out = malloc(len + 1);
    assert_non_null(out);
    ssize_t n = wr_tmpl_expand(&t, vars, out, len);
    assert_int_equal(n, (ssize_t)len);
    assert_memory_equal(out, want, len);
    if (len > 0)
        assert_int_equal(wr_tmpl_expand(&t, vars, out, len - 1), -1);
    free(out);
    wr_tmpl_fini(&t);
}

static void test_expand_variables(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"plain", "plain"},
        {"", ""},
        {"$host", "example.org"},
        {"https://$host$request_uri", "https://example.org/a?b=c"},
        {"${host}name", "example.orgname"},
        {"$scheme://$remote_addr/$request_id", "https://192.0.2.7/r-42"},
        {"a$$b", "a$b"},
        {"$$$$", "$$"},
        {"$$host", "$host"},
        {"${request_id}.${scheme}", "r-42.https"},
        {"$ssl_client_s_dn|$ssl_client_fingerprint|$ssl_client_verify",
         "CN=ann,O=Example|ab12|SUCCESS"}, /* issue 19: client certificates */
    };
    for (size_t i = 0; i < N_OF(cases); i++)
        expect_expansion(cases[i].text, &sample_vars, cases[i].want);
}

static void test_expand_captures(void **state)
{
    (void)state;
    const char *subject = "/api/v2/users";
    /* $0 = whole, $1 = "v2", $2 = "users", $3 unset. */
    const size_t ov[] = {0, 13, 5, 7, 8, 13, SIZE_MAX, SIZE_MAX};
    struct wr_tmpl_vars vars = sample_vars;
    vars.subject = subject;
    vars.ovector = ov;
    vars.n_captures = 4;
    expect_expansion("/$1/$2", &vars, "/v2/users");
    expect_expansion("${2}x$1", &vars, "usersxv2");
    expect_expansion("[$3]", &vars, "[]");         /* unset */
    expect_expansion("[$9]", &vars, "[]");         /* beyond n_captures */
    expect_expansion("$12", &vars, "v22");         /* one digit: $1 then "2" */
    vars.n_captures = 2;
    expect_expansion("$1-$2", &vars, "v2-");
    vars.subject = NULL;
    expect_expansion("<$1>", &vars, "<>");
    /* An inverted pair (possible with \K in a lookahead) expands to nothing. */
    const size_t inverted[] = {0, 13, 7, 5};
    vars.subject = subject;
    vars.ovector = inverted;
    expect_expansion("<$1>", &vars, "<>");
    /* No vars at all: every variable is empty. */
    expect_expansion("a$host$1b", NULL, "ab");
}

static void test_parts(void **state)
{
    (void)state;
    struct wr_tmpl t;
    const char *err;
    assert_int_equal(wr_tmpl_init(&t, "https://$host/v2/$1/$9", &err), 0);
    assert_int_equal(t.n_parts, 6);
    assert_int_equal(t.parts[0].var, WR_TMPL_LITERAL);
    assert_int_equal(t.parts[0].lit.len, 8);
    assert_int_equal(t.parts[1].var, WR_TMPL_HOST);
    assert_int_equal(t.parts[3].var, WR_TMPL_CAPTURE);
    assert_int_equal(t.parts[3].capture, 1);
    assert_int_equal(t.parts[5].capture, 9);
    assert_int_equal(t.max_capture, 9);
    assert_string_equal(t.text, "https://$host/v2/$1/$9");
    assert_false(wr_tmpl_is_literal(&t));
    wr_tmpl_fini(&t);

    assert_int_equal(wr_tmpl_init(&t, "/static/path", &err), 0);
    assert_true(wr_tmpl_is_literal(&t));
    assert_int_equal(t.max_capture, 0);
    wr_tmpl_fini(&t);

    /* "$$" has no variable, but the text is not its own expansion. */
    assert_int_equal(wr_tmpl_init(&t, "a$$b", &err), 0);
    assert_false(wr_tmpl_is_literal(&t));
    wr_tmpl_fini(&t);

    assert_int_equal(wr_tmpl_init(&t, "", &err), 0);
    assert_int_equal(t.n_parts, 0);
    assert_true(wr_tmpl_is_literal(&t));
    wr_tmpl_fini(&t);
    wr_tmpl_fini(&t); /* fini on zeroed memory is fine */
}

static void test_compile_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text, *err;
    } cases[] = {
        {"$foo", "unknown variable $foo"},
        {"/x/$hostname", "unknown variable $hostname"},
        {"${foo}", "unknown variable ${foo}"},
        {"${}", "unknown variable ${}"},
        {"$0", "unknown variable $0"},
        {"${10}", "unknown variable ${10}"},
        {"$", "$ at end of value (write $$ for a literal $)"},
        {"abc$", "$ at end of value (write $$ for a literal $)"},
        {"${host", "unterminated ${"},
        {"${", "unterminated ${"},
        {"$-x", "$ must start a variable (write $$ for a literal $)"},
        {"$ x", "$ must start a variable (write $$ for a literal $)"},
        {"$host$", "$ at end of value (write $$ for a literal $)"},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        struct wr_tmpl t;
        const char *err = NULL;
        if (wr_tmpl_init(&t, cases[i].text, &err) != -1)
            fail_msg("\"%s\" accepted", cases[i].text);
        assert_non_null(err);
        assert_string_equal(err, cases[i].err);
        /* Nothing is left owned after a failure. */
        assert_null(t.text);
        assert_null(t.parts);
        wr_tmpl_fini(&t);
    }
}

static void test_long_unknown_name(void **state)
{
    (void)state;
    char text[200];
    text[0] = '$';
    memset(text + 1, 'x', sizeof(text) - 2);
    text[sizeof(text) - 1] = '\0';
    struct wr_tmpl t;
    const char *err = NULL;
    assert_int_equal(wr_tmpl_init(&t, text, &err), -1);
    assert_true(strncmp(err, "unknown variable $xxx", 21) == 0);
    assert_true(strlen(err) < 96);
}

static void test_cap_zero(void **state)
{
    (void)state;
    struct wr_tmpl t;
    const char *err;
    assert_int_equal(wr_tmpl_init(&t, "$1", &err), 0);
    char out[1];
    /* An empty expansion fits in no room at all. */
    assert_int_equal(wr_tmpl_expand(&t, &sample_vars, out, 0), 0);
    wr_tmpl_fini(&t);
    assert_int_equal(wr_tmpl_init(&t, "x", &err), 0);
    assert_int_equal(wr_tmpl_expand(&t, &sample_vars, out, 0), -1);
    wr_tmpl_fini(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expand_variables), cmocka_unit_test(test_expand_captures),
        cmocka_unit_test(test_parts),            cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_long_unknown_name), cmocka_unit_test(test_cap_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
