/*
 * libFuzzer target for wr_router_match and wr_router_server_methods. A small
 * fixed config is built by hand once (as config.c would fill it); each input
 * is split into
 *   method-byte | host '\n' path '\n' method-token
 * where the first byte's low seven bits pick method_id (mod
 * WR_HTTP_N_METHODS) and its high bit says the request came over TLS. Each
 * piece is copied into its own exact-size heap buffer so ASan sees
 * over-reads. The path is matched raw and, when it normalises, normalised.
 *
 * Checked on every result (abort on violation): status is 0, 404, 405 or
 * 501; 0 comes with a route of this config whose scheme, host, path kind and
 * method really accept the request (a "*" path only by exact:*), captures
 * within the path or unset and an empty Allow; 405 comes with a
 * NUL-terminated, non-empty Allow and no route; 501 only for a method token
 * outside the enum, with no route and an empty Allow. The server's method
 * list is NUL-terminated and names OPTIONS.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <pcre2.h>

#include "weir/path.h"
#include "weir/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BIT(m) (1u << (m))

struct spec {
    enum wr_route_match_kind kind;
    const char *pattern;
    const char *host1, *host2; /* NULL: fewer hosts */
    uint32_t mask;
    const char *other; /* one unknown method, or NULL */
    const char *allow;
};

/* Scheme and action per spec (index), where not any and return. */
static const struct {
    size_t index;
    enum wr_route_scheme scheme;
    enum wr_route_action action;
} extras[] = {
    {0, WR_ROUTE_SCHEME_HTTPS, WR_ACTION_RETURN},
    {1, WR_ROUTE_SCHEME_ANY, WR_ACTION_STATIC},
    {7, WR_ROUTE_SCHEME_HTTP, WR_ACTION_REDIRECT},
    {9, WR_ROUTE_SCHEME_ANY, WR_ACTION_PROXY},
};

static const struct spec specs[] = {
    {WR_ROUTE_EXACT, "/healthz", NULL, NULL, BIT(WR_HTTP_GET) | BIT(WR_HTTP_HEAD), NULL,
     "GET, HEAD"},
    {WR_ROUTE_PREFIX, "/static/", "example.org", "*.example.org",
     BIT(WR_HTTP_GET) | BIT(WR_HTTP_HEAD), NULL, "GET, HEAD"},
    {WR_ROUTE_REGEX, "^/api/v([0-9]+)/(.*)$", NULL, NULL, BIT(WR_HTTP_POST) | BIT(WR_HTTP_PUT),
     NULL, "POST, PUT"},
    {WR_ROUTE_REGEX, "^/api/(?:(a)|(b))+(c)?", "[::1]", "localhost", 0, NULL, NULL},
    {WR_ROUTE_REGEX, "(*UTF)^/u/(.)(.)?", NULL, NULL, 0, NULL, NULL},
    {WR_ROUTE_PREFIX, "/dav/", NULL, NULL, BIT(WR_HTTP_OPTIONS), "PROPFIND",
     "OPTIONS, PROPFIND"},
    {WR_ROUTE_PREFIX, "/dav/", NULL, NULL, BIT(WR_HTTP_DELETE), NULL, "DELETE, OPTIONS"},
    {WR_ROUTE_PREFIX, "/", "*.example.net", NULL, 0, NULL, NULL},
    {WR_ROUTE_PREFIX, "/", NULL, NULL, BIT(WR_HTTP_GET) | BIT(WR_HTTP_HEAD), NULL,
     "GET, HEAD"},
    {WR_ROUTE_EXACT, "*", "example.com", NULL, 0, NULL, NULL},
    {WR_ROUTE_REGEX, ".*", NULL, NULL, BIT(WR_HTTP_OPTIONS), NULL, "OPTIONS"},
};

#define N_SPECS (sizeof(specs) / sizeof(specs[0]))

static struct wr_config cfg;
static struct wr_route routes[N_SPECS];
static char *hosts[N_SPECS][2];
static char *others[N_SPECS][1];
static struct wr_router_scratch *scratch;

static void build_config(void)
{
    for (size_t i = 0; i < N_SPECS; i++) {
        const struct spec *s = &specs[i];
        struct wr_route *r = &routes[i];
        r->line = (unsigned)i + 1;
        r->match_kind = s->kind;
        r->pattern = (char *)s->pattern;
        r->pattern_len = strlen(s->pattern);
        if (s->kind == WR_ROUTE_REGEX) {
            int err;
            PCRE2_SIZE off;
            r->regex = pcre2_compile((PCRE2_SPTR)s->pattern, r->pattern_len, 0, &err, &off, NULL);
            if (r->regex == NULL)
                abort();
            (void)pcre2_jit_compile(r->regex, PCRE2_JIT_COMPLETE);
            uint32_t n = 0;
            pcre2_pattern_info(r->regex, PCRE2_INFO_CAPTURECOUNT, &n);
            r->n_regex_captures = n;
        }
        if (s->host1 != NULL)
            hosts[i][r->n_hosts++] = (char *)s->host1;
        if (s->host2 != NULL)
            hosts[i][r->n_hosts++] = (char *)s->host2;
        r->hosts = hosts[i];
        r->method_mask = s->mask;
        if (s->other != NULL)
            others[i][r->n_other_methods++] = (char *)s->other;
        r->other_methods = others[i];
        r->allow = (char *)s->allow;
        r->action = WR_ACTION_RETURN;
    }
    for (size_t i = 0; i < sizeof(extras) / sizeof(extras[0]); i++) {
        routes[extras[i].index].scheme = extras[i].scheme;
        routes[extras[i].index].action = extras[i].action;
    }
    cfg.routes = routes;
    cfg.n_routes = N_SPECS;
    scratch = wr_router_scratch_new();
    if (scratch == NULL)
        abort();
}

static bool host_ok(const struct wr_route *r, struct wr_str host)
{
    if (r->n_hosts == 0)
        return true;
    for (size_t i = 0; i < r->n_hosts; i++) {
        if (wr_router_host_matches(host, r->hosts[i]))
            return true;
    }
    return false;
}

static bool method_ok(const struct wr_route *r, const struct wr_router_input *in)
{
    if (r->method_mask == 0 && r->n_other_methods == 0)
        return true;
    if (in->method_id != WR_HTTP_OTHER)
        return (r->method_mask & BIT(in->method_id)) != 0;
    for (size_t i = 0; i < r->n_other_methods; i++) {
        if (wr_str_eq(in->method, wr_str_from_cstr(r->other_methods[i])))
            return true;
    }
    return false;
}

static void check_result(int rc, const struct wr_router_input *in,
                         const struct wr_router_match *m)
{
    if (memchr(m->allow, '\0', sizeof(m->allow)) == NULL)
        abort();
    if (rc == 501) {
        if (m->route != NULL || m->allow[0] != '\0' || in->method_id != WR_HTTP_OTHER)
            abort();
        return;
    }
    if (rc == 404 || rc == 405) {
        if (m->route != NULL || (rc == 405) != (m->allow[0] != '\0'))
            abort();
        return;
    }
    if (rc != 0 || m->route < routes || m->route >= routes + N_SPECS || m->allow[0] != '\0')
        abort();
    const struct wr_route *r = m->route;
    struct wr_str pattern = {r->pattern, r->pattern_len};
    if (!host_ok(r, in->host) || !method_ok(r, in))
        abort();
    if ((r->scheme == WR_ROUTE_SCHEME_HTTP && in->is_tls) ||
        (r->scheme == WR_ROUTE_SCHEME_HTTPS && !in->is_tls))
        abort();
    if (wr_str_eq(in->path, WR_STR("*")) &&
        (r->match_kind != WR_ROUTE_EXACT || !wr_str_eq(pattern, WR_STR("*"))))
        abort();
    if (r->match_kind == WR_ROUTE_EXACT && !wr_str_eq(in->path, pattern))
        abort();
    if (r->match_kind == WR_ROUTE_PREFIX && !wr_str_has_prefix(in->path, pattern))
        abort();
    if (m->n_captures > WR_ROUTER_MAX_CAPTURES ||
        (r->match_kind == WR_ROUTE_REGEX) != (m->n_captures > 0))
        abort();
    for (unsigned i = 0; i < WR_ROUTER_MAX_CAPTURES; i++) {
        size_t a = m->ovector[2 * i], b = m->ovector[2 * i + 1];
        bool unset = a == SIZE_MAX && b == SIZE_MAX;
        if (i >= m->n_captures && !unset)
            abort();
        if (!unset && (a > b || b > in->path.len))
            abort();
        if (i == 0 && m->n_captures > 0 && unset)
            abort();
    }
}

/* Copies src[0..len) into a fresh exact-size buffer (NULL when empty). */
static char *dup_exact(const uint8_t *src, size_t len)
{
    if (len == 0)
        return NULL;
    char *p = malloc(len);
    if (p == NULL)
        abort();
    memcpy(p, src, len);
    return p;
}

static void run(struct wr_router_input *in)
{
    struct wr_router_match m;
    memset(&m, 0x5A, sizeof(m));
    int rc = wr_router_match(&cfg, scratch, in, &m);
    check_result(rc, in, &m);
    memset(&m, 0x5A, sizeof(m));
    wr_router_server_methods(&cfg, in, &m);
    if (m.route != NULL || memchr(m.allow, '\0', sizeof(m.allow)) == NULL ||
        strstr(m.allow, "OPTIONS") == NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (scratch == NULL)
        build_config();
    if (size < 1)
        return 0;
    enum wr_http_method id = (enum wr_http_method)((data[0] & 0x7f) % WR_HTTP_N_METHODS);
    const bool is_tls = (data[0] & 0x80) != 0;
    data++;
    size--;

    const uint8_t *nl1 = memchr(data, '\n', size);
    size_t host_len = nl1 != NULL ? (size_t)(nl1 - data) : size;
    size_t rest = nl1 != NULL ? size - host_len - 1 : 0;
    const uint8_t *path_start = nl1 != NULL ? nl1 + 1 : data + size;
    const uint8_t *nl2 = memchr(path_start, '\n', rest);
    size_t path_len = nl2 != NULL ? (size_t)(nl2 - path_start) : rest;
    size_t method_len = nl2 != NULL ? rest - path_len - 1 : 0;

    char *host = dup_exact(data, host_len);
    char *path = dup_exact(path_start, path_len);
    char *method = dup_exact(nl2 != NULL ? nl2 + 1 : path_start, method_len);
    struct wr_router_input in = {
        .host = {host, host_len},
        .path = {path, path_len},
        .method_id = id,
        .method = {method, method_len},
        .is_tls = is_tls,
    };
    run(&in);

    char *norm = dup_exact((const uint8_t *)path, path_len);
    size_t norm_len;
    if (norm != NULL && wr_path_normalize(path, path_len, norm, &norm_len) == 0) {
        in.path = (struct wr_str){norm, norm_len};
        run(&in);
    }
    free(norm);
    free(host);
    free(path);
    free(method);
    return 0;
}
