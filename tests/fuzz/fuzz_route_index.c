/*
 * libFuzzer target, differential (issue 18): the router through the route
 * index answers every request exactly as by trying every route in file
 * order. Each input is lines:
 *   KIND METHODS PATTERN   a route: KIND e(xact) p(refix) r(egex); METHODS
 *                          0 any, 1 GET, 2 POST, 3 GET POST
 *   /PATH or anything else a request path
 * The routes become an ini the real loader reads (a config it refuses is
 * skipped), which builds the index; each path is matched with GET, POST
 * and DELETE, with the snapshot's index and with none, and the answers
 * (status, route, Allow, captures) must be equal. Every path a regex
 * matches must start with the literal the index filed it by (abort
 * otherwise).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcre2.h>

#include "weir/config.h"
#include "weir/route_index.h"
#include "weir/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ROUTES 64
#define MAX_PATHS 16
#define TEXT_CAP 16384

static const char *const METHODS[] = {"", "methods = GET\n", "methods = POST\n",
                                      "methods = GET POST\n"};

/* Appends route line l (kind, methods, pattern) to the ini; false when it
 * is no route line. */
static bool add_route(char *ini, size_t *len, size_t n, const char *l, size_t l_len)
{
    if (l_len < 3 || (l[0] != 'e' && l[0] != 'p' && l[0] != 'r') || l[1] < '0' || l[1] > '3')
        return false;
    const char *kind = l[0] == 'e' ? "exact" : l[0] == 'p' ? "prefix" : "regex";
    int w = snprintf(ini + *len, TEXT_CAP - *len, "[route r%zu]\nmatch = %s:%.*s\n%sreturn = 200 x\n",
                     n, kind, (int)(l_len - 2), l + 2, METHODS[l[1] - '0']);
    if (w > 0 && (size_t)w < TEXT_CAP - *len)
        *len += (size_t)w;
    return true;
}

static void same_answers(struct wr_config *cfg, struct wr_router_scratch *s, struct wr_str path)
{
    static const enum wr_http_method methods[] = {WR_HTTP_GET, WR_HTTP_POST, WR_HTTP_DELETE};
    struct wr_route_index *idx = cfg->route_index;
    for (size_t m = 0; m < 3; m++) {
        struct wr_router_input in = {.path = path, .method_id = methods[m]};
        struct wr_router_match a, b;
        cfg->route_index = idx;
        int ra = wr_router_match(cfg, s, &in, &a);
        cfg->route_index = NULL;
        int rb = wr_router_match(cfg, s, &in, &b);
        cfg->route_index = idx;
        if (ra != rb || a.route != b.route || strcmp(a.allow, b.allow) != 0 ||
            a.n_captures != b.n_captures ||
            memcmp(a.ovector, b.ovector, 2 * a.n_captures * sizeof(a.ovector[0])) != 0)
            abort();
    }
}

/* Every path a regex route matches starts with its literal. */
static void literal_holds(const struct wr_config *cfg, struct wr_str path)
{
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (md == NULL)
        return;
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const struct wr_route *r = &cfg->routes[i];
        if (r->match_kind != WR_ROUTE_REGEX || r->literal_len == 0)
            continue;
        int rc = pcre2_match(r->regex, (PCRE2_SPTR)(path.ptr ? path.ptr : ""), path.len, 0, 0,
                             md, NULL);
        if (rc >= 0 && !wr_str_has_prefix(path, (struct wr_str){r->literal, r->literal_len}))
            abort();
    }
    pcre2_match_data_free(md);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char ini[TEXT_CAP];
    struct wr_str paths[MAX_PATHS];
    size_t len = (size_t)snprintf(ini, sizeof(ini), "[server]\nlisten = 127.0.0.1:8080\n");
    size_t n_routes = 0, n_paths = 0;
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l_len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (memchr(p, '\0', l_len) == NULL) {
            if (n_routes < MAX_ROUTES && add_route(ini, &len, n_routes, p, l_len))
                n_routes++;
            else if (n_paths < MAX_PATHS)
                paths[n_paths++] = (struct wr_str){p, l_len};
        }
        p += l_len + 1;
    }
    const struct wr_config_options opts = {.resolve = NULL};
    struct wr_config_errors errs = {0};
    struct wr_config *cfg = wr_config_parse_string_opts(ini, "fuzz.ini", &opts, &errs);
    wr_config_errors_fini(&errs);
    if (cfg == NULL)
        return 0;
    struct wr_router_scratch *s = wr_router_scratch_new();
    for (size_t i = 0; s != NULL && i < n_paths; i++) {
        /* its own heap copy: ASan sees an over-read */
        char *copy = malloc(paths[i].len + 1);
        if (copy == NULL)
            break;
        memcpy(copy, paths[i].ptr, paths[i].len);
        struct wr_str path = {copy, paths[i].len};
        same_answers(cfg, s, path);
        literal_holds(cfg, path);
        free(copy);
    }
    wr_router_scratch_free(s);
    wr_config_unref(cfg);
    return 0;
}
