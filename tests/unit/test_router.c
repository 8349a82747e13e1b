/*
 * Unit tests for router.c. Configs are built by hand here (route arrays
 * filled as config.c would fill them: hosts lower-case, GET implies HEAD in
 * method_mask, regexes compiled with JIT, allow set) so these tests do not
 * depend on the config loader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pcre2.h>

#include "weir/router.h"

#define BIT(m) (1u << (m))
#define GET_HEAD (BIT(WR_HTTP_GET) | BIT(WR_HTTP_HEAD))

struct route_spec {
    const char *name;
    enum wr_route_match_kind kind;
    const char *pattern;
    const char *hosts;  /* space-separated, or NULL for any */
    uint32_t mask;      /* as config would set it */
    const char *others; /* space-separated unknown methods, or NULL */
    const char *allow;  /* the Allow value config would compute, or NULL */
};

static char **split_words(const char *s, size_t *n)
{
    *n = 0;
    if (s == NULL)
        return NULL;
    char **words = calloc(16, sizeof(*words));
    assert_non_null(words);
    const char *p = s;
    while (*p != '\0') {
        while (*p == ' ')
            p++;
        size_t len = strcspn(p, " ");
        if (len > 0) {
            assert_true(*n < 16);
            words[(*n)++] = strndup(p, len);
        }
        p += len;
    }
    return words;
}

static void compile_regex(struct wr_route *r)
{
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)r->pattern, r->pattern_len, 0, &err, &off, NULL);
    assert_non_null(re);
    /* JIT may be unavailable on this platform; the router must cope. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    uint32_t n = 0;
    assert_int_equal(pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &n), 0);
    r->regex = re;
    r->n_regex_captures = n;
}

static struct wr_config *make_config(const struct route_spec *specs, size_t n)
{
    struct wr_config *cfg = calloc(1, sizeof(*cfg));
    assert_non_null(cfg);
    cfg->routes = calloc(n, sizeof(*cfg->routes));
    assert_non_null(cfg->routes);
    cfg->n_routes = n;
    for (size_t i = 0; i < n; i++) {
        const struct route_spec *s = &specs[i];
        struct wr_route *r = &cfg->routes[i];
        r->name = strdup(s->name);
        r->line = (unsigned)i + 1;
        r->match_kind = s->kind;
        r->pattern = strdup(s->pattern);
        r->pattern_len = strlen(s->pattern);
        if (s->kind == WR_ROUTE_REGEX)
            compile_regex(r);
        r->hosts = split_words(s->hosts, &r->n_hosts);
        r->method_mask = s->mask;
        r->other_methods = split_words(s->others, &r->n_other_methods);
        r->allow = s->allow != NULL ? strdup(s->allow) : NULL;
        r->action = WR_ACTION_RETURN;
    }
    return cfg;
}

static void free_words(char **words, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(words[i]);
    free(words);
}

static void free_config(struct wr_config *cfg)
{
    for (size_t i = 0; i < cfg->n_routes; i++) {
        struct wr_route *r = &cfg->routes[i];
        free(r->name);
        free(r->pattern);
        pcre2_code_free(r->regex);
        free_words(r->hosts, r->n_hosts);
        free_words(r->other_methods, r->n_other_methods);
        free(r->allow);
    }
    free(cfg->routes);
    free(cfg);
}

struct fixture {
    struct wr_config *cfg;
    struct wr_router_scratch *scratch;
    struct wr_router_match m;
    bool is_tls; /* requests come over TLS */
};

static struct fixture *fixture_new(const struct route_spec *specs, size_t n)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->cfg = make_config(specs, n);
    f->scratch = wr_router_scratch_new();
    assert_non_null(f->scratch);
    return f;
}

static void fixture_free(struct fixture *f)
{
    wr_router_scratch_free(f->scratch);
    free_config(f->cfg);
    free(f);
}

/* Sets what route_spec leaves at its default (any scheme, return). */
static void set_route(struct fixture *f, size_t i, enum wr_route_scheme scheme,
                      enum wr_route_action action)
{
    f->cfg->routes[i].scheme = scheme;
    f->cfg->routes[i].action = action;
}

#define ANY WR_ROUTE_SCHEME_ANY
#define HTTP WR_ROUTE_SCHEME_HTTP
#define HTTPS WR_ROUTE_SCHEME_HTTPS
#define RET WR_ACTION_RETURN

/* The router's input for a request; method_id derived the way the parser
 * does. */
static struct wr_router_input input(const struct fixture *f, const char *host, const char *path,
                                    const char *method)
{
    static const char *const names[] = {"", "GET", "HEAD", "POST", "PUT", "DELETE",
                                        "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    enum wr_http_method id = WR_HTTP_OTHER;
    for (unsigned i = 1; i < WR_HTTP_N_METHODS; i++) {
        if (strcmp(method, names[i]) == 0)
            id = (enum wr_http_method)i;
    }
    return (struct wr_router_input){
        .host = wr_str_from_cstr(host),
        .path = wr_str_from_cstr(path),
        .method_id = id,
        .method = wr_str_from_cstr(method),
        .is_tls = f->is_tls,
    };
}

static int match(struct fixture *f, const char *host, const char *path, const char *method)
{
    struct wr_router_input in = input(f, host, path, method);
    memset(&f->m, 0xA5, sizeof(f->m)); /* the router must set what it returns */
    return wr_router_match(f->cfg, f->scratch, &in, &f->m);
}

static const char *matched(struct fixture *f, const char *host, const char *path,
                           const char *method)
{
    int rc = match(f, host, path, method);
    if (rc != 0)
        return rc == 404 ? "(404)" : rc == 405 ? "(405)" : rc == 501 ? "(501)" : "(?)";
    assert_non_null(f->m.route);
    return f->m.route->name;
}

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static void test_exact(void **state)
{
    (void)state;
    static const struct route_spec specs[] = {
        {"health", WR_ROUTE_EXACT, "/healthz", NULL, 0, NULL, NULL},
        {"root", WR_ROUTE_EXACT, "/", NULL, 0, NULL, NULL},
    };
    struct fixture *f = fixture_new(specs, N_OF(specs));
    assert_string_equal(matched(f, "", "/healthz", "GET"), "health");
    assert_int_equal(f->m.n_captures, 0);
    assert_true(f->m.ovector[0] == SIZE_MAX && f->m.ovector[1] == SIZE_MAX);
    assert_string_equal(matched(f, "x", "/", "BREW"), "root");
    assert_string_equal(matched(f, "", "/healthz/", "GET"), "(404)");
    assert_string_equal(matched(f, "", "/healthzz", "GET"), "(404)");
    assert_string_equal(matched(f, "", "/health", "GET"), "(404)");
    assert_string_equal(matched(f, "", "/HEALTHZ", "GET"), "(404)");
    assert_null(f->m.route);
    fixture_free(f);
}

static void test_prefix(void **state)
{
    (void)state;
    static const struct route_spec specs[] = {
        {"api", WR_ROUTE_PREFIX, "/api/", NULL, 0, NULL, NULL},
        {"static", WR_ROUTE_PREFIX, "/static", NULL, 0, NULL, NULL},
    };
    struct fixture *f = fixture_new(specs, N_OF(specs));
    assert_string_equal(matched(f, "", "/api/", "GET"), "api");
    assert_string_equal(matched(f, "", "/api/v1/users", "GET"), "api");
    assert_string_equal(matched(f, "", "/api", "GET"), "(404)"); /* prefix boundary */
    assert_string_equal(matched(f, "", "/apix/", "GET"), "(404)");
    assert_string_equal(matched(f, "", "/Api/", "GET"), "(404)");
    /* A literal prefix without a slash is just bytes. */
    assert_string_equal(matched(f, "", "/static", "GET"), "static");
    assert_string_equal(matched(f, "", "/staticfoo", "GET"), "static");
    assert_string_equal(matched(f, "", "/stati", "GET"), "(404)");
    fixture_free(f);
}

static void test_regex_captures(void **state)
{
    (void)state;
    static const struct route_spec specs[] = {
        {"user", WR_ROUTE_REGEX, "^/users/([0-9]+)/(\\w+)$", NULL, 0, NULL, NULL},
        {"opt", WR_ROUTE_REGEX, "^/opt/(a)?(b)?(c)$", NULL, 0, NULL, NULL},
        {"many", WR_ROUTE_REGEX, "^/m/(.)(.)(.)(.)(.)(.)(.)(.)(.)(.)(.)(.)$", NULL, 0, NULL,
         NULL},
        {"any", WR_ROUTE_REGEX, "^/any", NULL, 0, NULL, NULL},
    };
    struct fixture *f = fixture_new(specs, N_OF(specs));

    const char *p = "/users/42/profile";
    assert_string_equal(matched(f, "", p, "GET"), "user");
    assert_int_equal(f->m.n_captures, 3);
    assert_int_equal(f->m.ovector[0], 0); /* $0 */
    assert_int_equal(f->m.ovector[1], strlen(p));
    assert_int_equal(f->m.ovector[2], 7); /* $1 = "42" */
    assert_int_equal(f->m.ovector[3], 9);
    assert_int_equal(f->m.ovector[4], 10); /* $2 = "profile" */
    assert_int_equal(f->m.ovector[5], 17);
    for (size_t i = 6; i < 2 * WR_ROUTER_MAX_CAPTURES; i++)
        assert_true(f->m.ovector[i] == SIZE_MAX);
    assert_string_equal(matched(f, "", "/users/x/profile", "GET"), "(404)");

    /* Unset groups in the middle are SIZE_MAX pairs. */
    assert_string_equal(matched(f, "", "/opt/bc", "GET"), "opt");
    assert_int_equal(f->m.n_captures, 4);
    assert_true(f->m.ovector[2] == SIZE_MAX && f->m.ovector[3] == SIZE_MAX);
    assert_int_equal(f->m.ovector[4], 5);
    assert_int_equal(f->m.ovector[6], 6);
    assert_string_equal(matched(f, "", "/opt/c", "GET"), "opt");
    assert_true(f->m.ovector[2] == SIZE_MAX && f->m.ovector[5] == SIZE_MAX);
    assert_int_equal(f->m.ovector[6], 5);

    /* More groups than $0..$9: the first ten pairs, all set. */
    assert_string_equal(matched(f, "", "/m/abcdefghijkl", "GET"), "many");
    assert_int_equal(f->m.n_captures, WR_ROUTER_MAX_CAPTURES);
    for (unsigned i = 1; i < WR_ROUTER_MAX_CAPTURES; i++)
        assert_int_equal(f->m.ovector[2 * i], 2 + i);

    /* No groups: $0 only. */
    assert_string_equal(matched(f, "", "/anything", "GET"), "any");
    assert_int_equal(f->m.n_captures, 1);
    assert_int_equal(f->m.ovector[0], 0);
    assert_int_equal(f->m.ovector[1], 4);
    assert_true(f->m.ovector[2] == SIZE_MAX);
    fixture_free(f);
}

/* Captures come from the route that won, not from an earlier regex route that
 * matched the path but refused the method. */
static void test_regex_captures_of_winner(void **state)
{
    (void)state;
    static const struct route_spec specs[] = {
        {"w", WR_ROUTE_REGEX, "^/(a)/(b)/c$", NULL, BIT(WR_HTTP_POST), NULL, "POST"},
        {"r", WR_ROUTE_REGEX, "^/a/(b)/(c)$", NULL, GET_HEAD, NULL, "GET, HEAD"},
    };
    struct fixture *f = fixture_new(specs, N_OF(specs));
    assert_string_equal(matched(f, "", "/a/b/c", "GET"), "r");
    assert_int_equal(f->m.n_captures, 3);
    assert_int_equal(f->m.ovector[2], 3);
    assert_int_equal(f->m.ovector[4], 5);
    assert_string_equal(matched(f, "", "/a/b/c", "POST"), "w");
    assert_int_equal(f->m.ovector[2], 1);
    assert_int_equal(f->m.ovector[4], 3);
    fixture_free(f);
}

/* A path that is not valid UTF-8 against a UTF pattern is no match, never a
 * crash (pcre2_jit_match does not check UTF). */
static void test_regex_invalid_utf(void **state)
{
    (void)state;
    static const struct route_spec specs[] = {
        {"utf", WR_ROUTE_REGEX, "(*UTF)^/caf.$", NULL, 0, NULL, NULL},
        {"rest", WR_ROUTE_PREFIX, "/", NULL, 0, NULL, NULL},
    };
    struct fixture *f = fixture_new(specs, N_OF(specs));
    assert_string_equal(matched(f, "", "/caf\xc3\xa9", "GET"), "utf");
    assert_int_equal(f->m.ovector[1], 6);
    assert_string_equal(matched(f, "", "/caf\xc3", "GET"), "rest");
    assert_string_equal(matched(f, "", "/caf\xff", "GET"), "rest");
    fixture_free(f);
}

/* A regex compiled without JIT still matches (pcre2_match fallback). */
static void test_regex_without_jit(void **state)
{
    (void)state;
    static const struct route_spec specs[] = {
        {"re", WR_ROUTE_PREFIX, "/x", NULL, 0, NULL, NULL},
    };
    struct fixture *f = fixture_new(specs, N_OF(specs));
    struct wr_route *r = &f->cfg->routes[0];
    int err;
    PCRE2_SIZE off;
    r->match_kind = WR_ROUTE_REGEX;
    r->regex = pcre2_compile((PCRE2_SPTR) "^/x/(\\d+)$", PCRE2_ZERO_TERMINATED, 0, &err, &off,
                             NULL);
    assert_non_null(r->regex);
    r->n_regex_captures = 1;
    assert_string_equal(matched(f, "", "/x/123", "GET"), "re");
    assert_int_equal(f->m.n_captures, 2);
    assert_int_equal(f->m.ovector[2], 3);
    assert_int_equal(f->m.ovector[3], 6);
    assert_string_equal(matched(f, "", "/x/", "GET"), "(404)");
    fixture_free(f);
}

/* A UTF pattern compiled to cope with invalid UTF-8 takes the JIT fast path
 * and still never matches inside a broken sequence. */
static void test_regex_match_invalid_utf(void **state)
{
    (void)state;
    static const struct route_spec specs[] = {
        {"re", WR_ROUTE_PREFIX, "/x", NULL, 0, NULL, NULL},
        {"rest", WR_ROUTE_PREFIX, "/", NULL, 0, NULL, NULL},
    };
    struct fixture *f = fixture_new(specs, N_OF(specs));
    struct wr_route *r = &f->cfg->routes[0];
    int err;
    PCRE2_SIZE off;
    r->match_kind = WR_ROUTE_REGEX;
    r->regex = pcre2_compile((PCRE2_SPTR) "^/caf(.)$", PCRE2_ZERO_TERMINATED,
                             PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &err, &off, NULL);
    assert_non_null(r->regex);
    (void)pcre2_jit_compile(r->regex, PCRE2_JIT_COMPLETE);
    r->n_regex_captures = 1;
    assert_string_equal(matched(f, "", "/caf\xc3\xa9", "GET"), "re");
    assert_int_equal(f->m.ovector[2], 4);
    assert_int_equal(f->m.ovector[3], 6);
    assert_string_equal(matched(f, "", "/caf\xc3", "GET"), "rest");
    assert_string_equal(matched(f, "", "/caf\xa9", "GET"), "rest");
    fixture_free(f);
}

static void test_host_matches(void **state)
{
    (void)state;
    struct {
        const char *host, *pattern;
        bool want;
    } cases[] = {
        {"example.org", "example.org", true},
        {"EXAMPLE.Org", "example.org", true},
        {"example.org", "EXAMPLE.ORG", true},
        {"example.org:8080", "example.org", true},
        {"example.org:", "example.org", true},
        {"example.org.", "example.org", false},
        {"www.example.org", "example.org", false},
        {"example.org", "www.example.org", false},
        {"example.orgx", "example.org", false},
        {"", "example.org", false},
        {"a.example.org", "*.example.org", true},
        {"a.b.example.org", "*.example.org", true},
        {"A.Example.ORG:443", "*.example.org", true},
        {"example.org", "*.example.org", false},
        {".example.org", "*.example.org", false},
        {"a..example.org", "*.example.org", false},
        {"badexample.org", "*.example.org", false},
        {"a.example.org.evil", "*.example.org", false},
        {"[::1]", "[::1]", true},
        {"[::1]:80", "[::1]", true},
        {"[::1]:80", "::1", false},
        {"[::1", "[::1", true},
        {"127.0.0.1:8080", "127.0.0.1", true},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        bool got = wr_router_host_matches(wr_str_from_cstr(cases[i].host), cases[i].pattern);
        if (got != cases[i].want)
            fail_msg("case %zu: \"%s\" vs \"%s\": got %d", i, cases[i].host, cases[i].pattern,
                     got);
    }
}

static void test_host_routes(void **state)
{
    (void)state;
    static const struct route_spec specs[] = {
        {"main", WR_ROUTE_PREFIX, "/", "example.org www.example.org", 0, NULL, NULL},
        {"subs", WR_ROUTE_PREFIX, "/", "*.example.org", 0, NULL, NULL},
        {"v6", WR_ROUTE_PREFIX, "/", "[::1]", 0, NULL, NULL},
        {"other", WR_ROUTE_EXACT, "/fallback", NULL, 0, NULL, NULL},
    };
    struct fixture *f = fixture_new(specs, N_OF(specs));
    assert_string_equal(matched(f, "example.org", "/x", "GET"), "main");
    assert_string_equal(matched(f, "WWW.Example.Org:8080", "/x", "GET"), "main");
    assert_string_equal(matched(f, "api.example.org", "/x", "GET"), "subs");
    assert_string_equal(matched(f, "a.b.example.org:443", "/x", "GET"), "subs");
    assert_string_equal(matched(f, "[::1]:8080", "/x", "GET"), "v6");
    assert_string_equal(matched(f, "example.net", "/x", "GET"), "(404)");
    assert_string_equal(matched(f, "", "/x", "GET"), "(404)");
    assert_string_equal(matched(f, "example.net", "/fallback", "GET"), "other");
    assert_string_equal(matched(f, "", "/fallback", "GET"), "other");
    fixture_free(f);
}

static void test_methods(void **state)
{
    (void)state;
    static const struct route_spec specs[] = {
        {"ro", WR_ROUTE_PREFIX, "/ro/", NULL, GET_HEAD, NULL, "GET, HEAD"},
        {"post", WR_ROUTE_EXACT, "/post", NULL, BIT(WR_HTTP_POST), NULL, "POST"},
        {"dav", WR_ROUTE_PREFIX, "/dav/", NULL, BIT(WR_HTTP_OPTIONS), "PROPFIND MKCOL",
         "OPTIONS, PROPFIND, MKCOL"},
        {"any", WR_ROUTE_EXACT, "/any", NULL, 0, NULL, NULL},
    };
    struct fixture *f = fixture_new(specs, N_OF(specs));
    assert_string_equal(matched(f, "", "/ro/x", "GET"), "ro");
    assert_string_equal(matched(f, "", "/ro/x", "HEAD"), "ro"); /* GET implies HEAD */
    assert_string_equal(matched(f, "", "/ro/x", "POST"), "(405)");
    assert_string_equal(f->m.allow, "GET, HEAD");
    assert_null(f->m.route);
    assert_string_equal(matched(f, "", "/post", "POST"), "post");
    assert_string_equal(matched(f, "", "/post", "GET"), "(405)");
    assert_string_equal(f->m.allow, "POST");
    assert_string_equal(matched(f, "", "/dav/a", "PROPFIND"), "dav");
    assert_string_equal(matched(f, "", "/dav/a", "MKCOL"), "dav");
    assert_string_equal(matched(f, "", "/dav/a", "OPTIONS"), "dav");
    assert_string_equal(matched(f, "", "/dav/a", "propfind"), "(405)"); /* case-sensitive */
    assert_string_equal(matched(f, "", "/dav/a", "GET"), "(405)");
    assert_string_equal(f->m.allow, "OPTIONS, PROPFIND, MKCOL");
    assert_string_equal(matched(f, "", "/any", "BREW"), "any");
    assert_string_equal(matched(f, "", "/any", "DELETE"), "any");
    /* 404 beats nothing: a path no route knows is 404 whatever the method. */
    assert_string_equal(matched(f, "", "/none", "POST"), "(404)");
    assert_string_equal(f->m.allow, "");
    fixture_free(f);
}

/* A route with only unknown methods does not accept known ones. */
static void test_methods_only_other(void **state)
{
    (void)state;
    static const struct route_spec specs[] = {
        {"brew", WR_ROUTE_EXACT, "/pot", NULL, 0, "BREW", "BREW"},
    };
    struct fixture *f = fixture_new(specs, N_OF(specs));
    assert_string_equal(matched(f, "", "/pot", "BREW"), "brew");
    assert_string_equal(matched(f, "", "/pot", "GET"), "(405)");
    assert_string_equal(f->m.allow, "BREW");
    /* issue 13.22: a token no route knows is not implemented, not "not allowed" */
    assert_string_equal(matched(f, "", "/pot", "BREWX"), "(501)");
    assert_string_equal(f->m.allow, "");
    fixture_free(f);
}

static void test_405_allow_union(void **state)
{
    (void)state;
    static const struct route_spec specs[] = {
        {"a", WR_ROUTE_PREFIX, "/x/", NULL, GET_HEAD, NULL, "GET, HEAD"},
        {"b", WR_ROUTE_EXACT, "/x/y", NULL, BIT(WR_HTTP_POST) | GET_HEAD, NULL,
         "GET, HEAD, POST"},
        {"c", WR_ROUTE_REGEX, "^/x/", NULL, BIT(WR_HTTP_DELETE), "PURGE", "DELETE, PURGE"},
        {"other-host", WR_ROUTE_PREFIX, "/x/", "example.org", BIT(WR_HTTP_PUT), NULL, "PUT"},
        {"other-path", WR_ROUTE_PREFIX, "/z/", NULL, BIT(WR_HTTP_PATCH), NULL, "PATCH"},
    };
    struct fixture *f = fixture_new(specs, N_OF(specs));
    assert_string_equal(matched(f, "", "/x/y", "PATCH"), "(405)");
    assert_string_equal(f->m.allow, "GET, HEAD, POST, DELETE, PURGE");
    assert_string_equal(matched(f, "", "/x/q", "PATCH"), "(405)");
    assert_string_equal(f->m.allow, "GET, HEAD, DELETE, PURGE");
    assert_string_equal(matched(f, "example.org", "/x/q", "PATCH"), "(405)");
    assert_string_equal(f->m.allow, "GET, HEAD, DELETE, PURGE, PUT");
    /* A later route that accepts the method wins over the earlier refusals. */
    assert_string_equal(matched(f, "", "/x/y", "POST"), "b");
    assert_string_equal(f->m.allow, "");
    assert_string_equal(matched(f, "", "/x/y", "PURGE"), "c");
    assert_string_equal(matched(f, "example.org", "/x/y", "PUT"), "other-host");
    fixture_free(f);
}

/* Allow lists written oddly, and more methods than fit: whole tokens only. */
static void test_405_allow_truncation(void **state)
{
    (void)state;
    static char big[400];
    size_t len = 0;
    for (int i = 0; len + 16 < sizeof(big); i++)
        len += (size_t)snprintf(big + len, sizeof(big) - len, "%sMETHOD%03d", i ? ", " : "", i);
    struct route_spec specs[] = {
        {"odd", WR_ROUTE_EXACT, "/p", NULL, BIT(WR_HTTP_GET), NULL, " GET ,HEAD,, GET"},
        {"big", WR_ROUTE_EXACT, "/p", NULL, BIT(WR_HTTP_PUT), NULL, big},
        {"late", WR_ROUTE_EXACT, "/p", NULL, BIT(WR_HTTP_POST), NULL, "POST"},
    };
    struct fixture *f = fixture_new(specs, N_OF(specs));
    assert_string_equal(matched(f, "", "/p", "DELETE"), "(405)");
    size_t n = strlen(f->m.allow);
    assert_true(n < sizeof(f->m.allow));
    assert_memory_equal(f->m.allow, "GET, HEAD, METHOD000, METHOD001", 31);
    /* Ends with a complete token, never a cut one or a dangling separator. */
    assert_true(f->m.allow[n - 1] != ' ' && f->m.allow[n - 1] != ',');
    const char *last = strrchr(f->m.allow, ' ');
    assert_non_null(last);
    assert_true(strcmp(last + 1, "POST") == 0 || strlen(last + 1) == strlen("METHOD000"));
    fixture_free(f);
}

static void test_first_match_wins(void **state)
{
    (void)state;
    static const struct route_spec specs[] = {
        {"first", WR_ROUTE_PREFIX, "/a/", NULL, 0, NULL, NULL},
        {"second", WR_ROUTE_EXACT, "/a/b", NULL, 0, NULL, NULL},
        {"third", WR_ROUTE_REGEX, "^/", NULL, 0, NULL, NULL},
    };
    struct fixture *f = fixture_new(specs, N_OF(specs));
    assert_string_equal(matched(f, "", "/a/b", "GET"), "first");
    assert_true(f->m.route == &f->cfg->routes[0]);
    assert_string_equal(matched(f, "", "/b", "GET"), "third");
    assert_true(f->m.route == &f->cfg->routes[2]);
    fixture_free(f);
}

static void test_404_empty_config(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(NULL, 0);
    assert_string_equal(matched(f, "example.org", "/", "GET"), "(404)");
    assert_null(f->m.route);
    assert_int_equal(f->m.n_captures, 0);
    assert_string_equal(f->m.allow, "");
    fixture_free(f);
}

/* Issue 13.11: scheme = http / https routes take only requests from plain
 * or TLS listeners; the one-file HTTP->HTTPS redirect no longer loops. */
static void issue_13_scheme(void **state)
{
    (void)state;
    static const struct route_spec specs[] = {
        {"to-https", WR_ROUTE_PREFIX, "/", NULL, 0, NULL, NULL},
        {"site", WR_ROUTE_PREFIX, "/", NULL, 0, NULL, NULL},
    };
    struct fixture *f = fixture_new(specs, N_OF(specs));
    set_route(f, 0, HTTP, WR_ACTION_REDIRECT);
    set_route(f, 1, HTTPS, WR_ACTION_PROXY);
    assert_string_equal(matched(f, "example.org", "/x?y", "GET"), "to-https");
    assert_string_equal(matched(f, "", "/", "POST"), "to-https");
    f->is_tls = true;
    assert_string_equal(matched(f, "example.org", "/x?y", "GET"), "site");
    assert_string_equal(matched(f, "", "/", "POST"), "site");
    fixture_free(f);

    /* unset = any scheme; a skipped route lets a later one match */
    static const struct route_spec mixed[] = {
        {"tls-only", WR_ROUTE_EXACT, "/a", NULL, 0, NULL, NULL},
        {"plain-only", WR_ROUTE_EXACT, "/b", NULL, 0, NULL, NULL},
        {"both", WR_ROUTE_PREFIX, "/", NULL, 0, NULL, NULL},
    };
    f = fixture_new(mixed, N_OF(mixed));
    set_route(f, 0, HTTPS, RET);
    set_route(f, 1, HTTP, RET);
    assert_string_equal(matched(f, "", "/a", "GET"), "both");
    assert_string_equal(matched(f, "", "/b", "GET"), "plain-only");
    f->is_tls = true;
    assert_string_equal(matched(f, "", "/a", "GET"), "tls-only");
    assert_string_equal(matched(f, "", "/b", "GET"), "both");
    fixture_free(f);
}

/* Issue 13.11: a route skipped for its scheme adds nothing to a 405's Allow,
 * and does not turn a 404 into a 405. */
static void issue_13_scheme_allow(void **state)
{
    (void)state;
    static const struct route_spec specs[] = {
        {"ro", WR_ROUTE_PREFIX, "/x/", NULL, GET_HEAD, NULL, "GET, HEAD"},
        {"plain-post", WR_ROUTE_PREFIX, "/x/", NULL, BIT(WR_HTTP_POST), NULL, "POST"},
        {"tls-put", WR_ROUTE_PREFIX, "/x/", NULL, BIT(WR_HTTP_PUT), NULL, "PUT"},
        {"tls-only", WR_ROUTE_PREFIX, "/y/", NULL, BIT(WR_HTTP_PUT), NULL, "PUT"},
    };
    struct fixture *f = fixture_new(specs, N_OF(specs));
    set_route(f, 1, HTTP, RET);
    set_route(f, 2, HTTPS, RET);
    set_route(f, 3, HTTPS, RET);
    assert_string_equal(matched(f, "", "/x/1", "DELETE"), "(405)");
    assert_string_equal(f->m.allow, "GET, HEAD, POST");
    assert_string_equal(matched(f, "", "/x/1", "PUT"), "(405)");
    assert_string_equal(matched(f, "", "/y/1", "GET"), "(404)");
    assert_string_equal(f->m.allow, "");
    f->is_tls = true;
    assert_string_equal(matched(f, "", "/x/1", "DELETE"), "(405)");
    assert_string_equal(f->m.allow, "GET, HEAD, PUT");
    assert_string_equal(matched(f, "", "/x/1", "POST"), "(405)");
    assert_string_equal(matched(f, "", "/x/1", "PUT"), "tls-put");
    assert_string_equal(matched(f, "", "/y/1", "GET"), "(405)");
    assert_string_equal(f->m.allow, "PUT");
    fixture_free(f);
}

/* Issue 13.22: "*" (OPTIONS *) matches exact:* only, never a prefix or a
 * catch-all regex. */
static void issue_13_asterisk(void **state)
{
    (void)state;
    static const struct route_spec catch_all[] = {
        {"re", WR_ROUTE_REGEX, ".*", NULL, 0, NULL, NULL},
        {"re-star", WR_ROUTE_REGEX, "^\\*$", NULL, 0, NULL, NULL},
        {"root", WR_ROUTE_PREFIX, "/", NULL, 0, NULL, NULL},
    };
    struct fixture *f = fixture_new(catch_all, N_OF(catch_all));
    assert_string_equal(matched(f, "", "*", "OPTIONS"), "(404)");
    assert_string_equal(matched(f, "", "/", "OPTIONS"), "re");
    fixture_free(f);
    static const struct route_spec star[] = {
        {"root", WR_ROUTE_PREFIX, "/", NULL, 0, NULL, NULL},
        {"star", WR_ROUTE_EXACT, "*", NULL, BIT(WR_HTTP_OPTIONS), NULL, "OPTIONS"},
    };
    f = fixture_new(star, N_OF(star));
    assert_string_equal(matched(f, "", "*", "OPTIONS"), "star");
    assert_string_equal(matched(f, "", "/", "OPTIONS"), "root");
    fixture_free(f);
}

/* Issue 13.22: an unknown method token gets 501 when no route of the host
 * and scheme knows it; routes naming it, or taking any method, keep it 404
 * or 405; a static route without methods takes only GET and HEAD. */
static void issue_13_unknown_method_501(void **state)
{
    (void)state;
    static const struct route_spec specs[] = {
        {"files", WR_ROUTE_PREFIX, "/files/", NULL, 0, NULL, NULL},
        {"dav", WR_ROUTE_PREFIX, "/dav/", NULL, 0, "PROPFIND", "PROPFIND"},
        {"api", WR_ROUTE_PREFIX, "/api/", "api.test", 0, NULL, NULL},
        {"tls-any", WR_ROUTE_PREFIX, "/t/", NULL, 0, NULL, NULL},
    };
    struct fixture *f = fixture_new(specs, N_OF(specs));
    set_route(f, 0, ANY, WR_ACTION_STATIC);
    set_route(f, 2, ANY, WR_ACTION_PROXY);
    set_route(f, 3, HTTPS, WR_ACTION_PROXY);
    /* the static route takes the request and answers 405 itself */
    assert_string_equal(matched(f, "", "/files/a", "BREW"), "files");
    assert_string_equal(matched(f, "", "/nope", "BREW"), "(501)");
    assert_string_equal(matched(f, "", "/dav/x", "BREW"), "(501)");
    assert_string_equal(matched(f, "", "/dav/x", "PROPFIND"), "dav");
    assert_string_equal(matched(f, "", "/nope", "PROPFIND"), "(404)");
    assert_string_equal(matched(f, "", "/dav/x", "MKCOL"), "(501)");
    assert_string_equal(matched(f, "", "/dav/x", "propfind"), "(501)"); /* case-sensitive */
    /* a known method stays 404 / 405 */
    assert_string_equal(matched(f, "", "/nope", "PATCH"), "(404)");
    assert_string_equal(matched(f, "", "/dav/x", "GET"), "(405)");
    /* a host with a route that takes any method: BREW is served there */
    assert_string_equal(matched(f, "api.test", "/api/x", "BREW"), "api");
    assert_string_equal(matched(f, "api.test", "/nope", "BREW"), "(404)");
    assert_string_equal(matched(f, "other.test", "/nope", "BREW"), "(501)");
    /* likewise for a scheme */
    assert_string_equal(matched(f, "", "/t/x", "BREW"), "(501)");
    f->is_tls = true;
    assert_string_equal(matched(f, "", "/t/x", "BREW"), "tls-any");
    assert_string_equal(matched(f, "", "/nope", "BREW"), "(404)");
    fixture_free(f);
    f = fixture_new(NULL, 0);
    assert_string_equal(matched(f, "", "/", "BREW"), "(501)");
    fixture_free(f);
}

static const char *server_methods(struct fixture *f, const char *host)
{
    struct wr_router_input in = input(f, host, "*", "OPTIONS");
    memset(&f->m, 0xA5, sizeof(f->m));
    wr_router_server_methods(f->cfg, &in, &f->m);
    assert_null(f->m.route);
    return f->m.allow;
}

/* TRACE echoes a request back, credentials included (cross-site tracing):
 * a route without methods does not take it (405 listing what it takes);
 * only a route that names TRACE does. */
static void issue_13_trace_only_when_named(void **state)
{
    (void)state;
    static const struct route_spec specs[] = {
        {"debug", WR_ROUTE_PREFIX, "/debug/", NULL, BIT(WR_HTTP_TRACE), NULL, "TRACE"},
        {"app", WR_ROUTE_PREFIX, "/", NULL, 0, NULL, NULL},
    };
    struct fixture *f = fixture_new(specs, N_OF(specs));
    set_route(f, 1, ANY, WR_ACTION_PROXY);
    assert_string_equal(matched(f, "", "/x", "GET"), "app");
    assert_string_equal(matched(f, "", "/x", "TRACE"), "(405)");
    assert_string_equal(f->m.allow, "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH");
    assert_string_equal(matched(f, "", "/debug/x", "TRACE"), "debug");
    fixture_free(f);
}

/* Issue 13.22: the methods OPTIONS * and CONNECT's 405 list: the union over
 * the routes of the host and scheme, in RFC order, OPTIONS always. */
static void issue_13_server_methods(void **state)
{
    (void)state;
    static const struct route_spec specs[] = {
        {"files", WR_ROUTE_PREFIX, "/", NULL, 0, NULL, NULL},
        {"dav", WR_ROUTE_PREFIX, "/dav/", NULL, BIT(WR_HTTP_DELETE), "PROPFIND MKCOL",
         "DELETE, PROPFIND, MKCOL"},
        {"api", WR_ROUTE_PREFIX, "/api/", "api.test", 0, NULL, NULL},
        {"upload", WR_ROUTE_EXACT, "/up", NULL, BIT(WR_HTTP_PUT), NULL, "PUT"},
    };
    struct fixture *f = fixture_new(specs, N_OF(specs));
    set_route(f, 0, ANY, WR_ACTION_STATIC);
    set_route(f, 2, ANY, WR_ACTION_PROXY);
    set_route(f, 3, HTTPS, RET);
    assert_string_equal(server_methods(f, "example.org"),
                        "GET, HEAD, DELETE, OPTIONS, PROPFIND, MKCOL");
    assert_string_equal(server_methods(f, "API.test:8080"),
                        "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH, PROPFIND, MKCOL");
    f->is_tls = true;
    assert_string_equal(server_methods(f, ""), "GET, HEAD, PUT, DELETE, OPTIONS, PROPFIND, MKCOL");
    fixture_free(f);
    f = fixture_new(NULL, 0);
    assert_string_equal(server_methods(f, ""), "OPTIONS");
    fixture_free(f);
}

/* Issue 17.7: wr_router_check gives, route by route, the first test a
 * route fails in wr_router_match's order (scheme, host, path, method), and
 * TAKES for the route wr_router_match picks. */
static void issue_17_check_verdicts(void **state)
{
    (void)state;
    static const struct route_spec specs[] = {
        {"tls", WR_ROUTE_PREFIX, "/", NULL, 0, NULL, NULL},
        {"www", WR_ROUTE_PREFIX, "/", "www.example.org", 0, NULL, NULL},
        {"api", WR_ROUTE_PREFIX, "/api/", NULL, 0, NULL, NULL},
        {"ro", WR_ROUTE_PREFIX, "/", NULL, GET_HEAD, NULL, "GET, HEAD"},
        {"any", WR_ROUTE_PREFIX, "/", NULL, 0, NULL, NULL},
    };
    struct fixture *f = fixture_new(specs, N_OF(specs));
    set_route(f, 0, HTTPS, RET);
    struct wr_router_input in = input(f, "Example.org:8080", "/x", "POST");
    static const enum wr_router_verdict want[] = {WR_ROUTER_NOT_SCHEME, WR_ROUTER_NOT_HOST,
                                                  WR_ROUTER_NOT_PATH, WR_ROUTER_NOT_METHOD,
                                                  WR_ROUTER_TAKES};
    for (size_t i = 0; i < N_OF(specs); i++)
        assert_int_equal(wr_router_check(&f->cfg->routes[i], f->scratch, &in), want[i]);
    assert_string_equal(matched(f, "Example.org:8080", "/x", "POST"), "any");
    in = input(f, "WWW.example.org", "/x", "GET");
    assert_int_equal(wr_router_check(&f->cfg->routes[1], f->scratch, &in), WR_ROUTER_TAKES);
    assert_true(wr_router_path_matches(&f->cfg->routes[2], f->scratch, WR_STR("/api/x")));
    assert_false(wr_router_path_matches(&f->cfg->routes[2], f->scratch, WR_STR("/api")));
    fixture_free(f);
}

/* Issue 17.7: the steps conn and weir route share: the path a request is
 * routed on, CONNECT and OPTIONS * around wr_router_match, and $host. */
static void issue_17_request_path_and_route(void **state)
{
    (void)state;
    static const struct route_spec specs[] = {
        {"ro", WR_ROUTE_PREFIX, "/x/", NULL, GET_HEAD, NULL, "GET, HEAD"},
    };
    struct fixture *f = fixture_new(specs, N_OF(specs));
    struct wr_http_request req = {.path = WR_STR("/a/%2e%2e/x/./y")};
    char buf[64];
    struct wr_str path;
    assert_int_equal(wr_router_request_path(&req, buf, &path), 0);
    assert_true(wr_str_eq(path, WR_STR("/x/y")));
    req.path = WR_STR("*");
    assert_int_equal(wr_router_request_path(&req, buf, &path), 0);
    assert_true(path.ptr == req.path.ptr && path.len == 1);
    req.path = WR_STR("/../x");
    assert_int_equal(wr_router_request_path(&req, buf, &path), 400);

    struct wr_router_input in = input(f, "", "/x/y", "POST");
    assert_int_equal(wr_router_route(f->cfg, f->scratch, &in, &f->m), 405);
    assert_string_equal(f->m.allow, "GET, HEAD");
    in = input(f, "", "*", "OPTIONS");
    assert_int_equal(wr_router_route(f->cfg, f->scratch, &in, &f->m), 200);
    assert_string_equal(f->m.allow, "GET, HEAD, OPTIONS");
    in = input(f, "", "", "CONNECT");
    assert_int_equal(wr_router_route(f->cfg, f->scratch, &in, &f->m), 405);
    assert_null(f->m.route);
    in = input(f, "", "/x/y", "GET");
    assert_int_equal(wr_router_route(f->cfg, f->scratch, &in, &f->m), 0);
    assert_string_equal(f->m.route->name, "ro");
    fixture_free(f);

    char host[16];
    assert_true(wr_str_eq(wr_router_host_var(WR_STR("Example.ORG:8080"), host, sizeof(host)),
                          WR_STR("example.org")));
    assert_true(wr_str_eq(wr_router_host_var(WR_STR("[::1]:80"), host, sizeof(host)),
                          WR_STR("[::1]")));
    assert_int_equal(wr_router_host_var(WR_STR(""), host, sizeof(host)).len, 0);
    /* too long for buf: the slice itself, case kept */
    struct wr_str long_host = WR_STR("A-very-long-name.example.org:1");
    struct wr_str got = wr_router_host_var(long_host, host, sizeof(host));
    assert_true(got.ptr == long_host.ptr && got.len == long_host.len - 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact),
        cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_regex_captures),
        cmocka_unit_test(test_regex_captures_of_winner),
        cmocka_unit_test(test_regex_invalid_utf),
        cmocka_unit_test(test_regex_without_jit),
        cmocka_unit_test(test_regex_match_invalid_utf),
        cmocka_unit_test(test_host_matches),
        cmocka_unit_test(test_host_routes),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_methods_only_other),
        cmocka_unit_test(test_405_allow_union),
        cmocka_unit_test(test_405_allow_truncation),
        cmocka_unit_test(test_first_match_wins),
        cmocka_unit_test(test_404_empty_config),
        cmocka_unit_test(issue_13_scheme),
        cmocka_unit_test(issue_13_scheme_allow),
        cmocka_unit_test(issue_13_asterisk),
        cmocka_unit_test(issue_13_unknown_method_501),
        cmocka_unit_test(issue_13_server_methods),
        cmocka_unit_test(issue_13_trace_only_when_named),
        cmocka_unit_test(issue_17_check_verdicts),
        cmocka_unit_test(issue_17_request_path_and_route),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
