/*
 * router: picks the route for a request from the config snapshot.
 *
 * Routes are tried in file order; the first whose scheme, host, path and
 * method all match wins. When some route matched scheme, host and path but
 * none allowed the method, the answer is 405 with an Allow field listing the
 * methods those routes accept; when none matched at all, 404. A method token
 * weir does not know (RFC 9110 §9.1) and no route of the host takes gets 501
 * instead of either.
 * Regexes were compiled (with JIT) by config; the router only runs them with
 * per-worker match data. Layer 2.
 */
#ifndef WEIR_ROUTER_H
#define WEIR_ROUTER_H

#include <stddef.h>

#include "weir/config.h"
#include "weir/http_parser.h"
#include "weir/str.h"

/* $0..$9 */
#define WR_ROUTER_MAX_CAPTURES 10

/* Per-worker scratch (PCRE2 match data); not shared between threads. */
struct wr_router_scratch;

/* Returns new scratch, or NULL on allocation failure. Any thread. */
struct wr_router_scratch *wr_router_scratch_new(void);
void wr_router_scratch_free(struct wr_router_scratch *s);

struct wr_router_input {
    struct wr_str host;  /* Host as received (port and case ignored); may be empty */
    struct wr_str path;  /* normalised path (wr_path_normalize), or "*" for an
                            asterisk-form target, which only exact:* matches */
    enum wr_http_method method_id;
    struct wr_str method; /* the token, for methods not in the enum */
    bool is_tls;          /* came over TLS: routes with scheme = http skip it,
                             routes with scheme = https take only these */
};

struct wr_router_match {
    const struct wr_route *route; /* borrowed from the snapshot; NULL unless 0 returned */
    unsigned n_captures;          /* pairs set in ovector, $0 included */
    size_t ovector[2 * WR_ROUTER_MAX_CAPTURES]; /* offsets into input path; unset = SIZE_MAX */
    char allow[256]; /* on 405: the Allow field value, NUL-terminated */
};

/*
 * Matches in against cfg's routes. Returns 0 with out->route set, 404 when no
 * route matches scheme, host and path, 405 with out->allow when one did but
 * no matching route accepts the method, 501 (instead of 404 or 405) for an
 * unknown method token that no route serving in's scheme and host names in
 * its methods or takes as any method (a static route without methods takes
 * GET and HEAD only). A route skipped for its scheme or host adds nothing to
 * Allow. Never allocates.
 */
int wr_router_match(const struct wr_config *cfg, struct wr_router_scratch *scratch,
                    const struct wr_router_input *in, struct wr_router_match *out);

/* What one route makes of a request: the first of the router's tests it
 * fails, in the order wr_router_match applies them. */
enum wr_router_verdict {
    WR_ROUTER_TAKES = 0,  /* scheme, host, path and method all match: it answers */
    WR_ROUTER_NOT_SCHEME, /* scheme = http/https, and the connection is the other */
    WR_ROUTER_NOT_HOST,   /* none of its host patterns is the request's host */
    WR_ROUTER_NOT_PATH,   /* its match does not take the normalised path */
    WR_ROUTER_NOT_METHOD, /* all but the method: its methods join a 405's Allow */
};

/*
 * The verdict of route r (of any snapshot) on in, by the very tests
 * wr_router_match runs route by route, for `weir route`, which explains
 * why each route before the answering one did not answer. A regex's
 * captures are left in scratch (not reported). Never allocates; the
 * scratch's thread.
 */
enum wr_router_verdict wr_router_check(const struct wr_route *r, struct wr_router_scratch *scratch,
                                       const struct wr_router_input *in);

/* True when r's match takes the normalised path (exact, prefix, or its
 * regex, which never takes "*"), as wr_router_match decides it. For the
 * shadowed-route lint. The scratch's thread. */
bool wr_router_path_matches(const struct wr_route *r, struct wr_router_scratch *scratch,
                            struct wr_str path);

/*
 * The methods the server offers to in's scheme and host, for OPTIONS * and
 * for the Allow of a 405 to CONNECT: fills out->allow with the union of the
 * methods of every route serving that scheme and host (a route's methods;
 * without them, GET and HEAD for a static route and every method weir knows
 * but CONNECT for the others), OPTIONS always, known methods first in
 * RFC order, then other tokens in file order; methods that do not fit are
 * left out whole. out->route is NULL. in->path and in->method are not used.
 * Never allocates.
 */
void wr_router_server_methods(const struct wr_config *cfg, const struct wr_router_input *in,
                              struct wr_router_match *out);

/*
 * The path req is routed on: its asterisk-form "*" as it is (borrowed from
 * req), else its path normalised by wr_path_normalize into buf, which must
 * hold req->path.len bytes. Returns 0 with *path set, or 400 when the path
 * does not normalise. Pure; conn and `weir route` both call it, so they can
 * never route different paths.
 */
int wr_router_request_path(const struct wr_http_request *req, char *buf, struct wr_str *path);

/*
 * Routes in (in->path from wr_router_request_path) as the data plane does:
 * CONNECT gets 405 with the server's methods (RFC 9110 §9.3.6: weir makes
 * no tunnels); otherwise wr_router_match, except that an OPTIONS * no
 * route takes returns 200 with the server's methods in out->allow (RFC
 * 9110 §9.3.7: weir answers it itself). Returns 0 with out->route, or 200,
 * 404, 405 (out->allow), 501. Never allocates.
 */
int wr_router_route(const struct wr_config *cfg, struct wr_router_scratch *scratch,
                    const struct wr_router_input *in, struct wr_router_match *out);

/*
 * $host: host lower-cased and without its port ("Example.org:8080" ->
 * "example.org", "[::1]:80" -> "[::1]"), copied into buf (cap bytes); when
 * it does not fit, the slice of host without its port, case kept. Pure.
 */
struct wr_str wr_router_host_var(struct wr_str host, char *buf, size_t cap);

/* True when host (port and case ignored) matches pattern ("a.b" or "*.b";
 * a wildcard needs at least one label before the suffix). */
bool wr_router_host_matches(struct wr_str host, const char *pattern);

#endif
