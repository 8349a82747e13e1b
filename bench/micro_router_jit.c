/*
 * Router matching with and without PCRE2's JIT, and whether the JIT works
 * under MemoryDenyWriteExecute.
 *
 *   micro_router_jit          routes compiled as weir compiles them (JIT)
 *   micro_router_jit --mdwe   the same after prctl(PR_SET_MDWE,
 *                             PR_MDWE_REFUSE_EXEC_GAIN): the kernel's
 *                             equivalent of systemd's MemoryDenyWriteExecute
 *                             (no writable+executable mapping, no mprotect
 *                             to executable). PCRE2's JIT then fails and the
 *                             router falls back to the interpreter.
 *
 * Prints ns per wr_router_match over a mix of paths that hit regex, prefix
 * and no routes. Built by `cmake --build build/release --target micro_benches`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include <pcre2.h>

#include "weir/config.h"
#include "weir/router.h"

#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#define PR_MDWE_REFUSE_EXEC_GAIN 1
#endif

static const char ini[] =
    "[server]\nlisten = 127.0.0.1:1\n"
    "[route users]\nmatch = regex:^/api/v[0-9]+/users/([0-9]+)$\nreturn = 200\n"
    "[route orders]\nmatch = regex:^/api/v[0-9]+/orders/([a-z0-9-]{8,40})/items$\nreturn = 200\n"
    "[route img]\nmatch = regex:\\.(png|jpe?g|gif|webp|svg)$\nreturn = 200\n"
    "[route blog]\nmatch = regex:^/blog/([0-9]{4})/([0-9]{2})/([^/]+)/?$\nreturn = 200\n"
    "[route static]\nmatch = prefix:/static/\nreturn = 200\n"
    "[route health]\nmatch = exact:/healthz\nreturn = 200\n"
    "[route rest]\nmatch = regex:^/(docs|help|about)(/.*)?$\nreturn = 200\n";

static const char *const paths[] = {
    "/api/v2/users/123456", "/api/v1/orders/3f2a9c1e-77aa/items", "/img/logo.png",
    "/blog/2026/11/a-post-title/", "/static/app.js", "/healthz", "/docs/install",
    "/nothing/matches/this/path/at/all",
};

int main(int argc, char **argv)
{
    int is_mdwe = argc > 1 && strcmp(argv[1], "--mdwe") == 0;
    if (is_mdwe && prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0) {
        perror("prctl(PR_SET_MDWE)");
        return 1;
    }
    struct wr_config_errors errs = {0};
    struct wr_config *cfg = wr_config_parse_string(ini, "bench.ini", &errs);
    if (!cfg) {
        fprintf(stderr, "%s\n", errs.n_lines ? errs.lines[0] : "config failed");
        return 1;
    }
    size_t n_jit = 0, n_regex = 0;
    for (size_t i = 0; i < cfg->n_routes; i++) {
        size_t jit_size = 0;
        if (cfg->routes[i].match_kind != WR_ROUTE_REGEX)
            continue;
        n_regex++;
        if (pcre2_pattern_info((pcre2_code *)cfg->routes[i].regex, PCRE2_INFO_JITSIZE,
                               &jit_size) == 0 && jit_size > 0)
            n_jit++;
    }
    struct wr_router_scratch *scratch = wr_router_scratch_new();
    struct wr_router_match m;
    const size_t n_paths = sizeof(paths) / sizeof(paths[0]);
    const long rounds = 2000000;
    long n_matched = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long k = 0; k < rounds; k++) {
        const char *p = paths[(size_t)k % n_paths];
        struct wr_router_input in = {.path = {p, strlen(p)}, .method_id = WR_HTTP_GET,
                                     .method = WR_STR("GET")};
        n_matched += wr_router_match(cfg, scratch, &in, &m) == 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) /
                (double)rounds;
    printf("%s: %zu/%zu regex routes JIT-compiled, %.1f ns per match (%ld matched)\n",
           is_mdwe ? "MDWE on " : "MDWE off", n_jit, n_regex, ns, n_matched);
    wr_router_scratch_free(scratch);
    wr_config_unref(cfg);
    return 0;
}
