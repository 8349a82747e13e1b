/*
 * router: matches a request (host, normalised path, method) against the
 * config snapshot's routes, in file order.
 *
 * Responsible for: the scheme a route takes (http, https or both), host
 * patterns (exact or "*.suffix", port and case ignored), the three path
 * match kinds, method sets, the 404/405/501 decision with its Allow value,
 * and the server-wide method list (OPTIONS *, CONNECT). Deliberately not:
 * compiling anything (config does that, so `weir -t` reports bad regexes)
 * and acting on the route.
 *
 * Invariants: nothing here allocates per call; the only mutable state is the
 * caller's per-worker scratch (PCRE2 match data), so one scratch must never
 * be used by two threads at once. out->route and the offsets in out->ovector
 * borrow from the snapshot and the input path respectively.
 */
#include "weir/router.h"

#include <stdint.h>
#include <stdlib.h>

#include <pcre2.h>

#include "weir/path.h"
#include "weir/route_index.h"

struct wr_router_scratch {
    pcre2_match_data *md; /* room for WR_ROUTER_MAX_CAPTURES pairs */
};

struct wr_router_scratch *wr_router_scratch_new(void)
{
    struct wr_router_scratch *s = malloc(sizeof(*s));
    if (s == NULL)
        return NULL;
    s->md = pcre2_match_data_create(WR_ROUTER_MAX_CAPTURES, NULL);
    if (s->md == NULL) {
        free(s);
        return NULL;
    }
    return s;
}

void wr_router_scratch_free(struct wr_router_scratch *s)
{
    if (s == NULL)
        return;
    pcre2_match_data_free(s->md);
    free(s);
}

/* "example.org:8080" -> "example.org", "[::1]:80" -> "[::1]". */
static struct wr_str host_without_port(struct wr_str host)
{
    size_t end = host.len;
    if (host.len > 0 && host.ptr[0] == '[') {
        const char *close = memchr(host.ptr, ']', host.len);
        if (close != NULL)
            end = (size_t)(close - host.ptr) + 1;
    } else {
        const char *colon = host.len > 0 ? memchr(host.ptr, ':', host.len) : NULL;
        if (colon != NULL)
            end = (size_t)(colon - host.ptr);
    }
    return (struct wr_str){host.ptr, end};
}

/* host has its port removed already. */
static bool bare_host_matches(struct wr_str host, const char *pattern)
{
    if (pattern[0] == '*' && pattern[1] == '.') {
        /* The suffix keeps its dot, so "*.example.org" cannot match
         * "badexample.org"; the byte before it must start a real label. */
        struct wr_str suffix = wr_str_from_cstr(pattern + 1);
        if (host.len <= suffix.len || host.ptr[host.len - suffix.len - 1] == '.')
            return false;
        struct wr_str tail = {host.ptr + host.len - suffix.len, suffix.len};
        return wr_str_eq_nocase(tail, suffix);
    }
    return wr_str_eq_nocase(host, wr_str_from_cstr(pattern));
}

bool wr_router_host_matches(struct wr_str host, const char *pattern)
{
    return bare_host_matches(host_without_port(host), pattern);
}

static bool route_scheme_matches(const struct wr_route *r, bool is_tls)
{
    switch (r->scheme) {
    case WR_ROUTE_SCHEME_HTTP:
        return !is_tls;
    case WR_ROUTE_SCHEME_HTTPS:
        return is_tls;
    default:
        return true;
    }
}

static bool route_host_matches(const struct wr_route *r, struct wr_str bare_host)
{
    if (r->n_hosts == 0)
        return true;
    for (size_t i = 0; i < r->n_hosts; i++) {
        if (bare_host_matches(bare_host, r->hosts[i]))
            return true;
    }
    return false;
}

/* True when r takes requests of this scheme for this host (port removed):
 * a route that does not is skipped as if absent, Allow included. */
static bool route_serves(const struct wr_route *r, bool is_tls, struct wr_str bare_host)
{
    return route_scheme_matches(r, is_tls) && route_host_matches(r, bare_host);
}

/* Normalised paths start with '/': "*" can only be the asterisk-form. */
static bool is_asterisk(struct wr_str path)
{
    return path.len == 1 && path.ptr[0] == '*';
}

/*
 * Runs r's regex on path into md. Returns pcre2's result: > 0 pairs set,
 * 0 when there were more than md holds, < 0 no match or error.
 */
static int run_regex(const struct wr_route *r, struct wr_str path, pcre2_match_data *md)
{
    const pcre2_code *re = r->regex;
    /* pcre2_match rejects a NULL subject even with length 0 before 10.43. */
    PCRE2_SPTR subject = (PCRE2_SPTR)(path.ptr != NULL ? path.ptr : "");
    /* is_regex_jit: config checked that pcre2_jit_match may run it (JIT
     * code there; no UTF validation needed). */
    if (r->is_regex_jit) {
        int rc = pcre2_jit_match(re, subject, path.len, 0, 0, md, NULL);
        if (rc != PCRE2_ERROR_JIT_BADOPTION)
            return rc;
    }
    return pcre2_match(re, subject, path.len, 0, 0, md, NULL);
}

/*
 * True when r's path pattern accepts path. For a regex, the captures are
 * left in md. A regex that fails with an error (match limit, invalid UTF-8
 * in a UTF pattern) counts as no match: the request goes on to later routes
 * and ends in 404 rather than in a 500 an attacker could provoke at will.
 */
static bool route_path_matches(const struct wr_route *r, struct wr_str path,
                               pcre2_match_data *md, int *regex_rc)
{
    struct wr_str pattern = {r->pattern, r->pattern_len};
    switch (r->match_kind) {
    case WR_ROUTE_EXACT: /* "*" (asterisk-form) only equals exact:* */
        return wr_str_eq(path, pattern);
    case WR_ROUTE_PREFIX: /* patterns start with '/': never "*" */
        return wr_str_has_prefix(path, pattern);
    case WR_ROUTE_REGEX:
        /* "*" is no path: a catch-all regex must not send a server-wide
         * OPTIONS to a handler that expects one (RFC 9112 §3.2.4). */
        if (is_asterisk(path))
            return false;
        /* Every path the regex matches starts with its literal: a path
         * that does not is no match, without running it. */
        if (r->literal_len > 0 &&
            !wr_str_has_prefix(path, (struct wr_str){r->literal, r->literal_len}))
            return false;
        *regex_rc = run_regex(r, path, md);
        return *regex_rc >= 0;
    }
    return false;
}

static bool route_method_matches(const struct wr_route *r, const struct wr_router_input *in)
{
    /* A route without methods takes any method but TRACE: TRACE echoes the
     * request back, credentials included (cross-site tracing), so, as with
     * nginx, only a route that names it takes it. */
    if (r->method_mask == 0 && r->n_other_methods == 0)
        return in->method_id != WR_HTTP_TRACE;
    if (in->method_id != WR_HTTP_OTHER) {
        unsigned id = (unsigned)in->method_id;
        return id < WR_HTTP_N_METHODS && (r->method_mask & (1u << id)) != 0;
    }
    for (size_t i = 0; i < r->n_other_methods; i++) {
        if (wr_str_eq(in->method, wr_str_from_cstr(r->other_methods[i])))
            return true;
    }
    return false;
}

/* Copies the winning regex's pairs; the rest of out->ovector stays unset. */
static void copy_captures(const struct wr_route *r, int rc, pcre2_match_data *md,
                          struct wr_router_match *out)
{
    unsigned n = r->n_regex_captures + 1;
    if (n > WR_ROUTER_MAX_CAPTURES)
        n = WR_ROUTER_MAX_CAPTURES;
    /* rc == 0: more groups than md holds, and every pair it holds is valid. */
    unsigned n_set = rc == 0 ? WR_ROUTER_MAX_CAPTURES : (unsigned)rc;
    if (n_set > n)
        n_set = n;
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    for (unsigned i = 0; i < 2 * n_set; i++)
        out->ovector[i] = ov[i];
    out->n_captures = n;
}

/* True when the comma-space list allow[0..len) already holds token. */
static bool allow_has(const char *allow, size_t len, struct wr_str token)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && allow[i] != ',')
            continue;
        if (wr_str_eq((struct wr_str){allow + start, i - start}, token))
            return true;
        start = i + 2; /* past ", " */
    }
    return false;
}

/*
 * Adds the methods of list ("GET, HEAD") to out->allow that it lacks.
 * Method names are case-sensitive (RFC 9110 §9.1), so is the comparison. A
 * method that does not fit is left out whole rather than cut.
 */
static void allow_merge(struct wr_router_match *out, const char *list)
{
    if (list == NULL)
        return;
    size_t cap = sizeof(out->allow);
    size_t len = strlen(out->allow);
    struct wr_str rest = wr_str_from_cstr(list);
    while (rest.len > 0) {
        const char *comma = memchr(rest.ptr, ',', rest.len);
        size_t n = comma != NULL ? (size_t)(comma - rest.ptr) : rest.len;
        struct wr_str token = wr_str_trim((struct wr_str){rest.ptr, n});
        rest = comma != NULL ? (struct wr_str){comma + 1, rest.len - n - 1}
                             : (struct wr_str){NULL, 0};
        if (token.len == 0 || allow_has(out->allow, len, token))
            continue;
        size_t sep = len > 0 ? 2 : 0;
        if (len + sep + token.len >= cap)
            continue;
        if (sep > 0) {
            out->allow[len++] = ',';
            out->allow[len++] = ' ';
        }
        memcpy(out->allow + len, token.ptr, token.len);
        len += token.len;
        out->allow[len] = '\0';
    }
}

static void reset_match(struct wr_router_match *out)
{
    out->route = NULL;
    out->n_captures = 0;
    for (size_t i = 0; i < 2 * WR_ROUTER_MAX_CAPTURES; i++)
        out->ovector[i] = SIZE_MAX;
    out->allow[0] = '\0';
}

/* Every method weir knows but CONNECT (answered 405 before routing) and
 * TRACE (route_method_matches says why): what a proxy, redirect or return
 * route without methods takes. */
static const uint32_t ANY_KNOWN_METHOD = ((1u << WR_HTTP_N_METHODS) - 1) &
                                         ~(1u << WR_HTTP_OTHER) & ~(1u << WR_HTTP_CONNECT) &
                                         ~(1u << WR_HTTP_TRACE);

/* The known methods r takes: its methods, else what its action serves. */
static uint32_t route_method_mask(const struct wr_route *r)
{
    if (r->method_mask != 0 || r->n_other_methods != 0)
        return r->method_mask;
    if (r->action == WR_ACTION_STATIC)
        return 1u << WR_HTTP_GET | 1u << WR_HTTP_HEAD; /* static.c answers 405 otherwise */
    return ANY_KNOWN_METHOD;
}

/* Adds the known methods in mask to out->allow, in the enum's order. */
static void allow_merge_mask(struct wr_router_match *out, uint32_t mask)
{
    for (unsigned m = WR_HTTP_OTHER + 1; m < WR_HTTP_N_METHODS; m++) {
        if (mask & (1u << m))
            allow_merge(out, wr_http_method_name((enum wr_http_method)m));
    }
}

/*
 * True when some route serving in's scheme and host takes in's method
 * token (not in the enum) on some path: it names it in methods, or takes
 * any method. RFC 9110 §9.1: a method the server does not recognise SHOULD
 * get 501, and the routes are what weir recognises.
 */
static bool is_method_served(const struct wr_config *cfg, const struct wr_router_input *in,
                             struct wr_str bare_host)
{
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const struct wr_route *r = &cfg->routes[i];
        if (!route_serves(r, in->is_tls, bare_host))
            continue;
        if (r->method_mask == 0 && r->n_other_methods == 0 ? r->action != WR_ACTION_STATIC
                                                           : route_method_matches(r, in))
            return true;
    }
    return false;
}

void wr_router_server_methods(const struct wr_config *cfg, const struct wr_router_input *in,
                              struct wr_router_match *out)
{
    reset_match(out);
    const struct wr_str host = host_without_port(in->host);
    uint32_t mask = 1u << WR_HTTP_OPTIONS; /* weir answers OPTIONS * itself */
    for (size_t i = 0; i < cfg->n_routes; i++) {
        if (route_serves(&cfg->routes[i], in->is_tls, host))
            mask |= route_method_mask(&cfg->routes[i]);
    }
    allow_merge_mask(out, mask);
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const struct wr_route *r = &cfg->routes[i];
        for (size_t j = 0; j < r->n_other_methods && route_serves(r, in->is_tls, host); j++)
            allow_merge(out, r->other_methods[j]);
    }
}

/* What r makes of in (host without its port): the first test it fails, in
 * the order the router applies them. A regex's captures are left in md. */
static enum wr_router_verdict route_verdict(const struct wr_route *r,
                                            const struct wr_router_input *in,
                                            struct wr_str bare_host, pcre2_match_data *md,
                                            int *regex_rc)
{
    if (!route_scheme_matches(r, in->is_tls))
        return WR_ROUTER_NOT_SCHEME;
    if (!route_host_matches(r, bare_host))
        return WR_ROUTER_NOT_HOST;
    if (!route_path_matches(r, in->path, md, regex_rc))
        return WR_ROUTER_NOT_PATH;
    if (!route_method_matches(r, in))
        return WR_ROUTER_NOT_METHOD;
    return WR_ROUTER_TAKES;
}

enum wr_router_verdict wr_router_check(const struct wr_route *r, struct wr_router_scratch *scratch,
                                       const struct wr_router_input *in)
{
    int rc = 0;
    return route_verdict(r, in, host_without_port(in->host), scratch->md, &rc);
}

bool wr_router_path_matches(const struct wr_route *r, struct wr_router_scratch *scratch,
                            struct wr_str path)
{
    int rc = 0;
    return route_path_matches(r, path, scratch->md, &rc);
}

int wr_router_match(const struct wr_config *cfg, struct wr_router_scratch *scratch,
                    const struct wr_router_input *in, struct wr_router_match *out)
{
    reset_match(out);
    struct wr_str host = host_without_port(in->host);
    bool path_matched = false;
    /* Only the routes that can take this path, in file order. */
    struct wr_route_cursor c;
    wr_route_index_find(cfg->route_index, cfg->n_routes, in->path, &c);
    for (size_t i; (i = wr_route_cursor_next(&c)) != SIZE_MAX;) {
        const struct wr_route *r = &cfg->routes[i];
        int rc = 0;
        enum wr_router_verdict v = route_verdict(r, in, host, scratch->md, &rc);
        if (v != WR_ROUTER_TAKES && v != WR_ROUTER_NOT_METHOD)
            continue;
        if (v == WR_ROUTER_NOT_METHOD) {
            /* A later route may still take this method; if none does, the
             * answer is 405 with what every such route would have taken. */
            path_matched = true;
            if (r->allow)
                allow_merge(out, r->allow);
            else
                allow_merge_mask(out, route_method_mask(r)); /* TRACE to a route
                                                                without methods */
            continue;
        }
        if (r->match_kind == WR_ROUTE_REGEX)
            copy_captures(r, rc, scratch->md, out);
        out->route = r;
        out->allow[0] = '\0';
        return 0;
    }
    if (in->method_id == WR_HTTP_OTHER && !is_method_served(cfg, in, host)) {
        out->allow[0] = '\0';
        return 501;
    }
    return path_matched ? 405 : 404;
}

int wr_router_request_path(const struct wr_http_request *req, char *buf, struct wr_str *path)
{
    /* The parser allows the asterisk-form for OPTIONS only (RFC 9112 §3.2.4). */
    if (is_asterisk(req->path)) {
        *path = req->path;
        return 0;
    }
    size_t len = 0;
    int status = wr_path_normalize(req->path.ptr, req->path.len, buf, &len);
    *path = (struct wr_str){buf, status == 0 ? len : 0};
    return status;
}

int wr_router_route(const struct wr_config *cfg, struct wr_router_scratch *scratch,
                    const struct wr_router_input *in, struct wr_router_match *out)
{
    if (in->method_id == WR_HTTP_CONNECT) {
        /* RFC 9110 §9.3.6: CONNECT asks for a tunnel, which a forward proxy
         * makes and weir does not: 405 with the methods it does serve. */
        wr_router_server_methods(cfg, in, out);
        return 405;
    }
    int status = wr_router_match(cfg, scratch, in, out);
    if (is_asterisk(in->path) && (status == 404 || status == 405)) {
        /* RFC 9110 §9.3.7: OPTIONS * asks about the server as a whole. */
        wr_router_server_methods(cfg, in, out);
        return 200;
    }
    return status;
}

struct wr_str wr_router_host_var(struct wr_str host, char *buf, size_t cap)
{
    struct wr_str bare = host_without_port(host);
    if (bare.len >= cap)
        return bare;
    for (size_t i = 0; i < bare.len; i++)
        buf[i] = wr_str_lower(bare.ptr[i]);
    return (struct wr_str){buf, bare.len};
}
