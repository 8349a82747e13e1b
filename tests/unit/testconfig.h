/*
 * A config snapshot from ini text for unit tests: the real loader, no name
 * resolution; load errors are printed and fail the test. Include after
 * cmocka.h.
 */
#ifndef WEIR_TESTCONFIG_H
#define WEIR_TESTCONFIG_H

#include "weir/config.h"

static inline struct wr_config *testconfig_parse(const char *text)
{
    const struct wr_config_options opts = {.resolve = NULL};
    struct wr_config_errors errs = {0};
    struct wr_config *cfg = wr_config_parse_string_opts(text, "t.ini", &opts, &errs);
    for (size_t i = 0; i < errs.n_lines; i++)
        print_error("%s\n", errs.lines[i]);
    assert_non_null(cfg);
    wr_config_errors_fini(&errs);
    return cfg;
}

#endif
