/*
 * lint: whole-snapshot warnings for `weir -t` (and every load): shadowed
 * routes and unused upstreams.
 *
 * Responsible for deciding, pairwise, that one route takes every request
 * another would (wr_lint_route_covers), with the router's own semantics:
 * route order is weir's first-match rule, so a covered later route is dead
 * configuration, and usually a sign that the operator expected it to win.
 * Deliberately not: deciding regex language inclusion (undecidable in
 * general for PCRE2, and a wrong claim would send an operator deleting a
 * route that works), or coverage by a union of earlier routes.
 *
 * Invariants: a claim is made only when provable; every rule below errs
 * towards silence.
 */
#include "weir/lint.h"

#include <stdio.h>
#include <string.h>

/* A byte no host pattern holds (config allows letters, digits, '-', '.'
 * and a leading "*."), standing for "some label" when a wildcard pattern is
 * tested against another as if it were a host. */
#define SOME_LABEL "\x01"

static bool scheme_covers(const struct wr_route *a, const struct wr_route *b)
{
    return a->scheme == WR_ROUTE_SCHEME_ANY || a->scheme == b->scheme;
}

/* True when pattern a (exact or "*.suffix") matches every host that
 * pattern b matches. */
static bool host_pattern_covers(const char *a, const char *b)
{
    bool is_a_wild = a[0] == '*';
    if (!is_a_wild || b[0] != '*')
        return is_a_wild ? wr_router_host_matches(wr_str_from_cstr(b), a) : strcmp(a, b) == 0;
    /* Both wildcards: b's hosts are "L.suffix" for any label L. */
    char host[300];
    int n = snprintf(host, sizeof(host), SOME_LABEL "%s", b + 1);
    return n > 0 && (size_t)n < sizeof(host) &&
           wr_router_host_matches((struct wr_str){host, (size_t)n}, a);
}

static bool hosts_cover(const struct wr_route *a, const struct wr_route *b)
{
    if (a->n_hosts == 0)
        return true; /* any host */
    if (b->n_hosts == 0)
        return false;
    for (size_t j = 0; j < b->n_hosts; j++) {
        bool is_covered = false;
        for (size_t i = 0; i < a->n_hosts && !is_covered; i++)
            is_covered = host_pattern_covers(a->hosts[i], b->hosts[j]);
        if (!is_covered)
            return false;
    }
    return true;
}

static bool has_methods(const struct wr_route *r)
{
    return r->method_mask != 0 || r->n_other_methods != 0;
}

/* The router's rule (router.c route_method_matches): a route without
 * methods takes every method but TRACE, unknown tokens included. */
static bool methods_cover(const struct wr_route *a, const struct wr_route *b)
{
    if (!has_methods(a))
        return !has_methods(b) || (b->method_mask & (1u << WR_HTTP_TRACE)) == 0;
    if (!has_methods(b) || (b->method_mask & ~a->method_mask) != 0)
        return false;
    for (size_t j = 0; j < b->n_other_methods; j++) {
        bool is_listed = false;
        for (size_t i = 0; i < a->n_other_methods && !is_listed; i++)
            is_listed = strcmp(a->other_methods[i], b->other_methods[j]) == 0;
        if (!is_listed)
            return false;
    }
    return true;
}

static bool is_asterisk(const struct wr_route *r)
{
    return r->match_kind == WR_ROUTE_EXACT && strcmp(r->pattern, "*") == 0;
}

/* True when every normalised path b's match takes, a's match takes. */
static bool path_covers(const struct wr_route *a, const struct wr_route *b,
                        struct wr_router_scratch *scratch)
{
    struct wr_str bp = {b->pattern, b->pattern_len};
    switch (a->match_kind) {
    case WR_ROUTE_EXACT:
        return b->match_kind == WR_ROUTE_EXACT && strcmp(a->pattern, b->pattern) == 0;
    case WR_ROUTE_PREFIX:
        if (is_asterisk(b))
            return false; /* "*" is no path: no prefix takes it */
        /* Every normalised path starts with '/': prefix:/ takes them all,
         * whatever a regex b matches among them. */
        if (strcmp(a->pattern, "/") == 0)
            return true;
        return b->match_kind != WR_ROUTE_REGEX &&
               wr_str_has_prefix(bp, (struct wr_str){a->pattern, a->pattern_len});
    case WR_ROUTE_REGEX:
        /* One exact path is one string: run the regex on it. Another regex
         * is claimed only when it is the same pattern. */
        if (b->match_kind == WR_ROUTE_EXACT)
            return !is_asterisk(b) && wr_router_path_matches(a, scratch, bp);
        return b->match_kind == WR_ROUTE_REGEX && strcmp(a->pattern, b->pattern) == 0;
    }
    return false;
}

bool wr_lint_route_covers(const struct wr_route *a, const struct wr_route *b,
                          struct wr_router_scratch *scratch)
{
    if (a->pattern == NULL || b->pattern == NULL)
        return false;
    return scheme_covers(a, b) && hosts_cover(a, b) && methods_cover(a, b) &&
           path_covers(a, b, scratch);
}

static bool is_upstream_used(const struct wr_config *cfg, const struct wr_upstream_cfg *u)
{
    for (size_t i = 0; i < cfg->n_routes; i++) {
        if (cfg->routes[i].upstream == u)
            return true;
    }
    return false;
}


static const char *match_kind_name(enum wr_route_match_kind kind)
{
    return kind == WR_ROUTE_EXACT ? "exact" : kind == WR_ROUTE_PREFIX ? "prefix" : "regex";
}

/* Warns about route b if an earlier route covers it. Returns 1, 0, or -1. */
static int lint_route(const struct wr_config *cfg, size_t b, struct wr_router_scratch *scratch,
                      struct wr_config_errors *errs)
{
    const struct wr_route *rb = &cfg->routes[b];
    for (size_t a = 0; a < b; a++) {
        const struct wr_route *ra = &cfg->routes[a];
        if (!wr_lint_route_covers(ra, rb, scratch))
            continue;
        /* Positions count lines across included files: name each file. */
        struct wr_config_where wb = wr_config_where(cfg, rb->line);
        struct wr_config_where wa = wr_config_where(cfg, ra->line);
        return wr_config_errors_add(
                   errs, true,
                   "%s:%u: warning: [route %s] match: never answers: [route %s] (%s:%u, "
                   "match = %s:%s) comes first and takes every request this route would "
                   "(the first matching route wins)",
                   wb.file, wb.line, rb->name, ra->name, wa.file, wa.line,
                   match_kind_name(ra->match_kind), ra->pattern) < 0
                   ? -1
                   : 1;
    }
    return 0;
}

int wr_lint_config(const struct wr_config *cfg, struct wr_config_errors *errs)
{
    struct wr_router_scratch *scratch = wr_router_scratch_new();
    if (scratch == NULL)
        return -1;
    int n = 0;
    bool is_oom = false;
    for (size_t b = 1; b < cfg->n_routes; b++) {
        int rc = lint_route(cfg, b, scratch, errs);
        is_oom |= rc < 0;
        n += rc > 0;
    }
    wr_router_scratch_free(scratch);
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        const struct wr_upstream_cfg *u = &cfg->upstreams[i];
        if (is_upstream_used(cfg, u))
            continue;
        const char *note = u->health_check ? " (its health checks run all the same)" : "";
        struct wr_config_where w = wr_config_where(cfg, u->line);
        if (wr_config_errors_add(errs, true,
                                 "%s:%u: warning: [upstream %s]: no route proxies to it%s",
                                 w.file, w.line, u->name, note) < 0)
            is_oom = true;
        else
            n++;
    }
    return is_oom ? -1 : n;
}
