/*
 * route_index: which routes of a snapshot can take a path, so the router
 * tries those and not every route (issue 18: 100 regex routes cost a
 * request about as much as one).
 *
 * Every route has a literal its paths must start with: an exact route's
 * whole pattern, a prefix route's prefix, and for a regex the literal run
 * after a leading ^ (wr_route_regex_literal). When that literal holds the
 * path's whole first segment ("/api/v1" holds "/api"), the route can only
 * take paths with that first segment: it is filed under it. Others (a
 * prefix of "/" or "/st", an unanchored regex) are tried for every path.
 * A lookup is one hash of the path's first segment; the candidates come in
 * file order (two sorted lists merged), so first-match-in-file-order is
 * unchanged; fuzz_route_index checks that against trying every route.
 * Built by config at load, immutable, freed with the snapshot. Layer 1.
 */
#ifndef WEIR_ROUTE_INDEX_H
#define WEIR_ROUTE_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weir/str.h"

struct wr_route;
struct wr_route_index;

/*
 * The literal every subject a regex pattern matches starts with: after a
 * leading '^', characters up to the first metacharacter (an escaped
 * punctuation character counts as itself), less the last one when a '?',
 * '*' or '{' follows it. Nothing for a pattern without a leading '^' or
 * with a '|' anywhere (an alternative could do without the anchor).
 * Writes at most cap bytes to out; returns the literal's length.
 */
size_t wr_route_regex_literal(const char *pattern, char *out, size_t cap);

/* An index of routes[0..n) (file order; their literal fields set), which
 * must outlive it; NULL when out of memory. */
struct wr_route_index *wr_route_index_new(const struct wr_route *routes, size_t n);
void wr_route_index_free(struct wr_route_index *idx);

/* Where a walk over the candidates of one path is. */
struct wr_route_cursor {
    const uint32_t *a, *a_end; /* routes filed under the path's first segment */
    const uint32_t *b, *b_end; /* routes tried for every path */
    size_t linear, n_linear;   /* without an index: every route, in order */
    bool is_linear;
};

/* Starts a walk over the routes that may take path (idx NULL: all n). */
void wr_route_index_find(const struct wr_route_index *idx, size_t n, struct wr_str path,
                         struct wr_route_cursor *c);

/* The next candidate's index into routes, in file order; SIZE_MAX when done. */
size_t wr_route_cursor_next(struct wr_route_cursor *c);

/* Counters of idx, for tests: first segments filed, routes tried always. */
size_t wr_route_index_n_keys(const struct wr_route_index *idx);
size_t wr_route_index_n_always(const struct wr_route_index *idx);

#endif
