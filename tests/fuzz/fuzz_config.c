/*
 * libFuzzer target for wr_config_parse_string: the input, cut at its first
 * NUL, is a whole ini file. Beyond not crashing or leaking (ASan's leak
 * check runs at exit), the result must keep config.h's promise; any
 * violation aborts:
 *  - a snapshot exactly when there is no error line,
 *  - every error line names the file ("fuzz.ini:" or "fuzz.ini: "),
 *  - a snapshot has at least one listen, every route an action and a
 *    pattern, every proxy route a resolved upstream.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "weir/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct wr_config_errors errs = {0};
    struct wr_config *cfg = wr_config_parse_string(text, "fuzz.ini", &errs);
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
