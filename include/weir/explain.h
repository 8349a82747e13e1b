/*
 * explain: `weir route [-c FILE] [--listen ADDR] [--header 'N: v']...
 * METHOD URL`, which says which route answers a request and why.
 *
 * It runs the data plane's own code on a synthesised request: the HTTP
 * parser on the head, wr_router_request_path (normalisation) and
 * wr_router_route (the router, CONNECT, OPTIONS *), wr_router_check for
 * each route tried before the answering one, and then the action itself:
 * wr_static_handle (strip_prefix, index, precompressed variant, the status
 * and head it would send), wr_proxy_target and wr_balancer_pick for a proxy
 * route, wr_resp_action_redirect / _return. So it cannot disagree with the
 * server except where the server's state differs: the balancer's rotation,
 * connection counts and health are those of a fresh process, and files may
 * change. Layer 5 (a command of main); main thread only.
 */
#ifndef WEIR_EXPLAIN_H
#define WEIR_EXPLAIN_H

#include <stdbool.h>

#include "weir/str.h"

/* Exit statuses of `weir route` (README, weir.8). */
enum wr_explain_exit {
    WR_EXPLAIN_ROUTED = 0,        /* a route answers (whatever status its action gives) */
    WR_EXPLAIN_BAD_CONFIG = 1,    /* the configuration has errors (as weir -t) */
    WR_EXPLAIN_USAGE = 2,         /* bad arguments, URL or header */
    WR_EXPLAIN_NOT_FOUND = 3,     /* 404: no route takes this host and path */
    WR_EXPLAIN_NOT_ALLOWED = 4,   /* 405: routes take the path, none the method (or CONNECT) */
    WR_EXPLAIN_NO_ROUTE = 5,      /* weir answers without a route: 400, 413, 501, OPTIONS * */
};

/* A URL as given on the command line, split the way curl sends it. */
struct wr_explain_url {
    struct wr_str scheme;    /* "http" or "https" (as written); empty for "/path" or "*" */
    struct wr_str authority; /* host[:port] of an absolute URL; empty otherwise */
    struct wr_str target;    /* origin-form path and query ("/" when the URL has
                                none), or "*"; the fragment is dropped */
};

/*
 * Splits url: "http://host[:port]/path?query#fragment" (http or https, any
 * case), "/path?query" or "*". Returns 0 with out's slices borrowed from
 * url, or -1 (another scheme, no host, anything else). An absolute URL
 * without a path targets "/" (out->target then points at a static "/").
 * Pure.
 */
int wr_explain_split_url(const char *url, struct wr_explain_url *out);

/*
 * Runs `weir route`: argv[0] is "route", the rest its arguments. Prints
 * the explanation on stdout (problems on stderr) and returns the exit
 * status (enum wr_explain_exit). Main thread, before anything else runs.
 */
int wr_explain_main(int argc, char **argv);

#endif
