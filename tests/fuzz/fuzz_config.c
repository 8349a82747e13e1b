/*
 * libFuzzer target for wr_config_parse_string: the input, cut at its first
 * NUL, is a whole ini file. Beyond not crashing or leaking (ASan's leak
 * check runs at exit), the result must keep config.h's promise; any
 * violation aborts:
 *  - a snapshot exactly when there is no error line,
 *  - every error line names the file ("fuzz.ini:" or "fuzz.ini: "),
 *  - a snapshot has at least one listen, every route an action and a
 *    pattern, every proxy route a resolved upstream, every upstream server
 *    a label, an authority and a health record.
 * Host names go to a fake resolver: the fuzzer never does DNS.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weir/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Never DNS: a name starting with "bad" fails, others give one or two
 * loopback addresses (by the name's length), so the expansion of a name into
 * several servers is fuzzed too. */
static int fake_resolve(const char *host, uint16_t port, struct wr_listen_addr *out, size_t cap,
                        const char **why)
{
    if (strncmp(host, "bad", 3) == 0) {
        *why = "fake failure";
        return -1;
    }
    size_t n = strlen(host) % 2 + 1;
    for (size_t i = 0; i < n && i < cap; i++) {
        char text[64];
        snprintf(text, sizeof(text), "127.0.0.%zu:%u", i + 1, (unsigned)port);
        if (wr_units_parse_listen(text, &out[i]) < 0)
            abort();
    }
    return (int)n;
}

static void check_config(const struct wr_config *cfg)
{
    if (cfg->server.n_listens == 0)
        abort();
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const struct wr_route *r = &cfg->routes[i];
        if (r->action < WR_ACTION_STATIC || r->action > WR_ACTION_RETURN || r->pattern == NULL)
            abort();
        if (r->action == WR_ACTION_PROXY && r->upstream == NULL)
            abort();
        if (r->match_kind == WR_ROUTE_REGEX && r->regex == NULL)
            abort();
    }
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        const struct wr_upstream_cfg *u = &cfg->upstreams[i];
        if (u->n_servers == 0 || u->health == NULL)
            abort();
        for (size_t j = 0; j < u->n_servers; j++) {
            if (u->servers[j].label == NULL || u->servers[j].authority == NULL)
                abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct wr_config_errors errs = {0};
    const struct wr_config_options opts = {.resolve = fake_resolve};
    struct wr_config *cfg = wr_config_parse_string_opts(text, "fuzz.ini", &opts, &errs);
    if ((cfg == NULL) != (errs.n_lines > 0))
        abort();
    for (size_t i = 0; i < errs.n_lines; i++) {
        if (strncmp(errs.lines[i], "fuzz.ini:", 9) != 0)
            abort();
    }
    if (cfg != NULL) {
        check_config(cfg);
        wr_config_unref(wr_config_ref(cfg));
    }
    wr_config_unref(cfg);
    wr_config_errors_fini(&errs);
    free(text);
    return 0;
}
