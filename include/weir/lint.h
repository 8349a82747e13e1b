/*
 * lint: likely mistakes in a loaded configuration that still loads, found
 * by looking at the snapshot as a whole (the loader checks each section as
 * it reads it): a route no request can reach because an earlier route
 * takes every request it would, and an upstream no route proxies to.
 *
 * Sound, not complete: a route is reported shadowed only when one earlier
 * route alone provably covers it (scheme, hosts, methods and path); routes
 * covered only by several earlier ones together, or by a regex whose
 * language cannot be compared, are not reported. Layer 2 (uses the router's
 * own path matching).
 */
#ifndef WEIR_LINT_H
#define WEIR_LINT_H

#include <stdbool.h>

#include "weir/config.h"
#include "weir/router.h"

/*
 * True when every request route b takes, route a takes too (a would answer
 * it first if it comes earlier): a's scheme is b's or any; a's hosts are any
 * or cover each of b's ("*.example.org" covers "www.example.org" and
 * "*.cdn.example.org"); a takes every method b takes (a route without
 * methods takes any but TRACE); and a's match covers b's: prefix:P covers
 * exact:Q and prefix:Q when Q starts with P (prefix:/ covers every path,
 * regexes included); exact:P only exact:P; a regex covers exact:Q when it
 * matches Q, and another regex only when the pattern text is identical.
 * scratch runs a's regex. Pure apart from the scratch; any thread.
 */
bool wr_lint_route_covers(const struct wr_route *a, const struct wr_route *b,
                          struct wr_router_scratch *scratch);

/*
 * Appends a warning to errs for each route of cfg that an earlier route
 * covers (wr_lint_route_covers; the first such earlier route is named, with
 * both file:lines) and for each upstream that no route proxies to. Returns
 * the number of warnings added, or -1 when out of memory (some may be
 * lost). Main thread (or any, on a snapshot nobody mutates).
 */
int wr_lint_config(const struct wr_config *cfg, struct wr_config_errors *errs);

#endif
