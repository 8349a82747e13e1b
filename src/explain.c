/*
 * explain: `weir route METHOD URL`, the data plane's routing run on one
 * synthesised request, with its reasons printed.
 *
 * The steps are conn's, in conn's order, each by the same call: the head
 * is built as a client would send it and parsed by wr_http_parse_request;
 * Content-Length over max_body_size gets 413 before routing;
 * wr_router_request_path normalises; wr_router_route routes (CONNECT,
 * OPTIONS *); wr_router_check gives each route's reason; the route's action
 * runs on a wr_exchange built as dispatch builds it (static with no
 * open-file cache, so every file is opened afresh; proxy stops at the
 * target and the balancer's pick: nothing is sent). What is not the
 * server's: the balancer is a fresh worker's (rotation, least_conn counts
 * and health start anew), and a TLS listener is taken with SNI = Host, so
 * the 421 for a certificate that does not cover the Host never shows.
 *
 * Not here: any decision of its own. When the server's logic changes, this
 * file should not need to.
 */
#include "weir/explain.h"

#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "weir/clock.h"
#include "weir/config.h"
#include "weir/h1_framing.h"
#include "weir/handler.h"
#include "weir/http_parser.h"
#include "weir/http_resp.h"
#include "weir/path.h"
#include "weir/proxy.h"
#include "weir/resolve.h"
#include "weir/router.h"
#include "weir/static.h"
#include "weir/static_cache.h"
#include "weir/upstream.h"

#define DEFAULT_CONFIG "/etc/weir/weir.ini"
#define MAX_HEADERS 64
#define HEAD_CAP (64 * 1024)   /* the synthesised request head */
#define RESP_CAP (16 * 1024)   /* conn's WBUF_CAP: the response head */
#define SCRATCH_CAP (2 * PATH_MAX) /* conn's scratch: path + a static rel behind it */
#define CLIENT_ADDR "127.0.0.1" /* $remote_addr, and the key of balance = hash by client_ip */

struct args {
    const char *config, *listen, *method, *url;
    const char *headers[MAX_HEADERS];
    size_t n_headers;
};

/* One explanation's state: the request and what routing made of it. */
struct explain {
    const struct wr_config *cfg;
    const struct wr_listen_cfg *listen;
    char *head;                     /* HEAD_CAP: the request as sent */
    struct wr_http_request req;
    char host_buf[256];
    struct wr_str host;             /* $host */
    char *scratch;                  /* SCRATCH_CAP: the path, then the handler's */
    struct wr_str path;
    struct wr_router_scratch *router;
    struct wr_router_match match;
    struct wr_resp_clock clock;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: weir route [-c FILE] [--listen ADDR] [--header 'Name: value']... "
                 "METHOD URL\n"
                 "  -c, --config FILE  the configuration (default " DEFAULT_CONFIG ")\n"
                 "  --listen ADDR      the listen the request arrives on (as written)\n"
                 "  -H, --header 'Name: value'  a request field, repeatable\n"
                 "  URL is http://host[:port]/path?query, https://..., /path?query or *\n"
                 "  exit status: 0 a route answers, 3 no route (404), 4 no route takes the\n"
                 "  method (405), 5 weir answers without a route (400, 413, 501, OPTIONS *),\n"
                 "  1 configuration errors, 2 usage\n");
}

/* ---- arguments and the request ---------------------------------------- */

int wr_explain_split_url(const char *url, struct wr_explain_url *out)
{
    *out = (struct wr_explain_url){{NULL, 0}, {NULL, 0}, {NULL, 0}};
    size_t end = strcspn(url, "#"); /* a fragment is never sent (RFC 9110 §7.1) */
    if (url[0] == '/' || strcmp(url, "*") == 0) {
        out->target = (struct wr_str){url, end};
        return 0;
    }
    const char *sep = strstr(url, "://");
    if (sep == NULL)
        return -1;
    out->scheme = (struct wr_str){url, (size_t)(sep - url)};
    if (!wr_str_eq_nocase(out->scheme, WR_STR("http")) &&
        !wr_str_eq_nocase(out->scheme, WR_STR("https")))
        return -1;
    const char *auth = sep + 3;
    size_t auth_len = strcspn(auth, "/?#");
    if (auth_len == 0 || memchr(auth, '@', auth_len) != NULL)
        return -1; /* no host, or userinfo, which HTTP never sends (RFC 9110 §4.2.4) */
    out->authority = (struct wr_str){auth, auth_len};
    const char *rest = auth + auth_len;
    size_t rest_len = (size_t)(url + end - rest);
    if (rest_len == 0 || rest[0] != '/') {
        /* "http://h" and "http://h?q": the path is "/" (RFC 9112 §3.2.1); a
         * query without a path is rare enough to refuse. */
        if (rest_len > 0)
            return -1;
        out->target = WR_STR("/");
        return 0;
    }
    out->target = (struct wr_str){rest, rest_len};
    return 0;
}

static int parse_args(int argc, char **argv, struct args *a)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"listen", required_argument, NULL, 'l'},
        {"header", required_argument, NULL, 'H'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *a = (struct args){.config = DEFAULT_CONFIG};
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:H:h", opts, NULL)) != -1) {
        if (opt == 'c') {
            a->config = optarg;
        } else if (opt == 'l') {
            a->listen = optarg;
        } else if (opt == 'H' && a->n_headers < MAX_HEADERS) {
            a->headers[a->n_headers++] = optarg;
        } else if (opt == 'h') {
            usage(stdout);
            return 1;
        } else {
            usage(stderr);
            return -1;
        }
    }
    if (argc - optind != 2) {
        usage(stderr);
        return -1;
    }
    a->method = argv[optind];
    a->url = argv[optind + 1];
    return 0;
}

/* The listener the request arrives on: --listen, else the first whose TLS
 * matches the URL's scheme, else the first. NULL when --listen names none. */
static const struct wr_listen_cfg *pick_listener(const struct wr_config *cfg, const char *addr,
                                                 const struct wr_explain_url *u)
{
    const struct wr_server_cfg *s = &cfg->server;
    for (size_t i = 0; addr != NULL && i < s->n_listens; i++) {
        if (strcmp(s->listens[i].addr.text, addr) == 0)
            return &s->listens[i];
    }
    if (addr != NULL)
        return NULL;
    bool want_tls = wr_str_eq_nocase(u->scheme, WR_STR("https"));
    for (size_t i = 0; u->scheme.len > 0 && i < s->n_listens; i++) {
        if (s->listens[i].is_tls == want_tls)
            return &s->listens[i];
    }
    return &s->listens[0];
}

static bool has_header(const struct args *a, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < a->n_headers; i++) {
        if (strncasecmp(a->headers[i], name, n) == 0 && a->headers[i][n] == ':')
            return true;
    }
    return false;
}

/* The head a client would send: request line, Host (the URL's authority,
 * else the listener's address) unless a --header gives one, the headers.
 * Returns its length, or -1 when it does not fit. */
static int build_head(struct explain *x, const struct args *a, const struct wr_explain_url *u)
{
    const char *addr = x->listen->addr.text;
    struct wr_str host = u->authority.len > 0 ? u->authority
                         : strncmp(addr, "unix:", 5) == 0 ? WR_STR("localhost")
                                                           : wr_str_from_cstr(addr);
    int n = snprintf(x->head, HEAD_CAP, "%s %.*s HTTP/1.1\r\n", a->method, (int)u->target.len,
                     u->target.ptr);
    if (!has_header(a, "Host") && n >= 0 && n < HEAD_CAP)
        n += snprintf(x->head + n, HEAD_CAP - (size_t)n, "Host: %.*s\r\n", (int)host.len,
                      host.ptr);
    for (size_t i = 0; i < a->n_headers && n >= 0 && n < HEAD_CAP; i++)
        n += snprintf(x->head + n, HEAD_CAP - (size_t)n, "%s\r\n", a->headers[i]);
    if (n >= 0 && n < HEAD_CAP)
        n += snprintf(x->head + n, HEAD_CAP - (size_t)n, "\r\n");
    return n >= 0 && n < HEAD_CAP ? n : -1;
}

/* ---- what each route made of it ---------------------------------------- */

/* Where a section was read (positions count lines across included files). */
static struct wr_config_where where(const struct explain *x, unsigned pos)
{
    return wr_config_where(x->cfg, pos);
}

static const char *kind_name(enum wr_route_match_kind k)
{
    return k == WR_ROUTE_EXACT ? "exact" : k == WR_ROUTE_PREFIX ? "prefix" : "regex";
}

static void print_hosts(const struct wr_route *r)
{
    for (size_t i = 0; i < r->n_hosts; i++)
        printf("%s%s", i ? " " : "", r->hosts[i]);
}

/* Why r did not answer, after "no: ". */
static void print_reason(const struct explain *x, const struct wr_route *r,
                         enum wr_router_verdict v)
{
    switch (v) {
    case WR_ROUTER_NOT_SCHEME:
        printf("scheme: it takes only %s requests; this one came over %s\n",
               r->scheme == WR_ROUTE_SCHEME_HTTPS ? "https" : "http",
               x->listen->is_tls ? "https" : "http");
        break;
    case WR_ROUTER_NOT_HOST:
        printf("host: \"%.*s\" is not one of: ", (int)x->host.len, x->host.ptr);
        print_hosts(r);
        printf("\n");
        break;
    case WR_ROUTER_NOT_PATH:
        printf("path: match = %s:%s does not take %.*s\n", kind_name(r->match_kind), r->pattern,
               (int)x->path.len, x->path.ptr);
        break;
    case WR_ROUTER_NOT_METHOD:
        printf("method: %.*s is not among its methods (%s); host and path match, so its "
               "methods join a 405's Allow\n",
               (int)x->req.method.len, x->req.method.ptr,
               r->allow ? r->allow : "any but TRACE");
        break;
    case WR_ROUTER_TAKES:
        printf("answers\n");
        break;
    }
}

/* Every route up to the answering one (all of them when none answers). */
static void print_tried(struct explain *x)
{
    struct wr_router_input in = {x->host, x->path, x->req.method_id, x->req.method,
                                 x->listen->is_tls};
    printf("routes tried, in file order (the first match wins):\n");
    for (size_t i = 0; i < x->cfg->n_routes; i++) {
        const struct wr_route *r = &x->cfg->routes[i];
        enum wr_router_verdict v = wr_router_check(r, x->router, &in);
        struct wr_config_where w = where(x, r->line);
        printf("  %s:%u [route %s] %s:%s: %s", w.file, w.line, r->name,
               kind_name(r->match_kind), r->pattern, v == WR_ROUTER_TAKES ? "" : "no: ");
        print_reason(x, r, v);
        if (r == x->match.route)
            break;
    }
}

/* ---- what the answering route does ------------------------------------- */

/* The head of r as conn would finish it (the route's add_header applied),
 * printed without its Date line, which changes every second. */
static void print_head(const struct explain *x, struct wr_resp *r, const struct wr_tmpl_vars *v)
{
    const struct wr_route *route = x->match.route;
    wr_resp_add_route_fields(r, route, v);
    r->has_length = true; /* one-shot answers know their length */
    struct wr_h1_framing f = wr_h1_choose_framing(r->status, x->req.method_id == WR_HTTP_HEAD,
                                                  true, x->req.minor_version, true);
    wr_h1_finish_head(r, &f, x->req.minor_version);
    printf("response:\n");
    struct wr_str head = wr_resp_bytes(r);
    const char *p = head.ptr, *end = head.ptr + head.len;
    while (p < end) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        size_t n = eol ? (size_t)(eol - p) : (size_t)(end - p);
        if (n > 0 && strncasecmp(p, "Date:", 5) != 0)
            printf("  %.*s\n", (int)n, p);
        p += n + 2;
    }
}

static void print_static_file(const struct explain *x, const struct wr_resp *r)
{
    const struct wr_route *route = x->match.route;
    if (route->strip_prefix) {
        struct wr_str rest;
        if (wr_path_strip_prefix(x->path, wr_str_from_cstr(route->strip_prefix), &rest))
            printf("strip_prefix: %s leaves \"%.*s\"\n", route->strip_prefix, (int)rest.len,
                   rest.ptr);
        else
            printf("strip_prefix: %s does not start the path; the path stays whole\n",
                   route->strip_prefix);
    }
    char mapped[PATH_MAX];
    if (wr_static_map_path(route, x->path, mapped, sizeof(mapped)) == 0)
        printf("looks up: %s/%s\n", route->root, mapped[0] ? mapped : ".");
    else
        printf("looks up: nothing: the path names a dotfile or an encoded '/'\n");
    if (r->body_ref != NULL) {
        struct wr_str rel = wr_static_file_rel(r->body_ref);
        printf("file: %s/%.*s", route->root, (int)rel.len, rel.ptr);
        bool is_variant = (r->field_mask & (1u << WR_HTTP_FIELD_CONTENT_ENCODING)) != 0;
        if (is_variant)
            rel.len -= 3; /* ".br" or ".gz" */
        /* static answers a path ending in '/' with a file only through the index */
        size_t n = strlen(route->index);
        if (x->path.len > 0 && x->path.ptr[x->path.len - 1] == '/' && rel.len >= n &&
            memcmp(rel.ptr + rel.len - n, route->index, n) == 0)
            printf(" (the directory's index)");
        if (is_variant)
            printf(" (precompressed variant, chosen by Accept-Encoding)");
        printf("\n");
    } else if (r->file_fd >= 0) {
        printf("file: none: an autoindex listing of the directory\n");
    } else if (r->status != 301) {
        printf("file: none: the status below says why\n");
    }
}

/* The sink of `weir route`: a one-shot handler's answer stays in ex->resp
 * for print_head; nothing is sent. */
static void capture_respond(struct wr_exchange *ex)
{
    (void)ex;
}

static const struct wr_exchange_sink capture_sink = {.respond = capture_respond};

/* The exchange dispatch would hand the route's handler (without the
 * worker's open-file cache: static opens files directly then). */
static void init_exchange(struct explain *x, struct wr_exchange *ex, struct wr_resp *r,
                          struct wr_tmpl_vars *vars, const struct wr_log_request *subject)
{
    const bool is_tls = x->listen->is_tls;
    *vars = (struct wr_tmpl_vars){
        .host = x->host,
        .request_uri = x->req.target,
        .scheme = is_tls ? WR_STR("https") : WR_STR("http"),
        .remote_addr = WR_STR(CLIENT_ADDR),
        .request_id = WR_STR("0123456789abcdef0123456789abcdef"),
        .subject = x->path.ptr,
        .ovector = x->match.ovector,
        .n_captures = x->match.n_captures,
    };
    const size_t path_len = x->path.ptr == x->scratch ? x->path.len : 0;
    *ex = (struct wr_exchange){
        .req = &x->req, .route = x->match.route, .match = &x->match, .path = x->path,
        .vars = vars, .clock = &x->clock, .resp = r,
        .scratch = x->scratch + path_len, .scratch_cap = SCRATCH_CAP - path_len,
        .log_subject = subject, .worker_id = -1, .conn_id = 0,
        .client_addr = WR_STR(CLIENT_ADDR), .is_tls = is_tls, .is_keep_alive = true,
    };
    wr_exchange_init(ex, wr_handler_for((int)x->match.route->action), NULL, &capture_sink, x);
}

static void print_proxy(struct explain *x, const struct wr_exchange *ex)
{
    const struct wr_upstream_cfg *up = x->match.route->upstream;
    char target[8192];
    ssize_t n = wr_proxy_target(ex, target, sizeof(target));
    static const char *const balances[] = {"round_robin", "least_conn", "hash", "random"};
    struct wr_config_where w = where(x, up->line);
    printf("proxy: [upstream %s] (%s:%u), balance = %s\n", up->name, w.file, w.line,
           balances[up->balance]);
    if (n >= 0)
        printf("target sent upstream: %.*s\n", (int)n, target);
    struct wr_balancer *b = wr_balancer_new(x->cfg);
    if (b == NULL)
        return;
    struct wr_str key = wr_upstream_hash_key(up, &x->req, WR_STR(CLIENT_ADDR));
    int server = wr_balancer_pick(b, up, key, NULL, wr_clock_now_ms());
    if (server < 0)
        printf("server: none usable: weir answers 502\n");
    else
        printf("server: %s (server %d of %zu, line %u), as a fresh worker would pick it%s\n",
               up->servers[server].label, server + 1, up->n_servers,
               where(x, up->servers[server].line).line,
               up->balance == WR_BALANCE_HASH ? "" : "; the running server's rotation, "
                                                     "connection counts and health may differ");
    wr_balancer_free(b);
}

/* $1..$9 of a regex match, for rewrite and redirect. */
static void print_captures(const struct explain *x)
{
    const struct wr_router_match *m = &x->match;
    for (unsigned i = 1; i < m->n_captures; i++) {
        size_t from = m->ovector[2 * i], to = m->ovector[2 * i + 1];
        if (from == SIZE_MAX || to < from)
            printf("$%u: (unset)\n", i);
        else
            printf("$%u: \"%.*s\"\n", i, (int)(to - from), x->path.ptr + from);
    }
}

/* Runs the route's action as dispatch would and prints what it does. */
static void explain_action(struct explain *x)
{
    const struct wr_route *route = x->match.route;
    char *buf = malloc(RESP_CAP);
    if (buf == NULL)
        return;
    struct wr_resp r;
    struct wr_tmpl_vars vars;
    struct wr_exchange ex;
    const struct wr_log_request subject = {WR_STR(""), WR_STR(CLIENT_ADDR), x->req.method,
                                           x->req.target};
    wr_resp_init(&r, buf, RESP_CAP);
    init_exchange(x, &ex, &r, &vars, &subject);
    int status = 0;
    if (route->action == WR_ACTION_PROXY) {
        print_proxy(x, &ex);
        free(buf);
        return;
    }
    if (route->action == WR_ACTION_STATIC)
        printf("root: %s\n", route->root);
    status = wr_exchange_start(&ex); /* the route's own handler, as dispatch runs it */
    if (route->action == WR_ACTION_STATIC)
        print_static_file(x, &r);
    if (status != 0) {
        /* conn's build_error: the status page instead */
        wr_resp_start(&r, status, &x->clock);
        wr_resp_set_page(&r);
    }
    print_head(x, &r, &vars);
    if (route->action == WR_ACTION_RETURN)
        printf("body: %.*s%s\n", (int)(r.body_len > 200 ? 200 : r.body_len), r.body,
               r.body_len > 200 ? "..." : "");
    if (r.body_ref)
        r.body_unref(r.body_ref);
    else if (r.file_fd >= 0)
        close(r.file_fd);
    wr_exchange_stop(&ex);
    free(buf);
}

/* ---- the request's way through ------------------------------------------ */

/* "route: none: STATUS Reason: why" for an answer no route gives. */
static int no_route(int status, const char *why, const char *allow)
{
    printf("route: none: %d %s: %s", status, wr_resp_reason(status), why);
    if (allow != NULL && allow[0] != '\0')
        printf("; Allow: %s", allow);
    printf("\n");
    return status == 404 ? WR_EXPLAIN_NOT_FOUND
           : status == 405 ? WR_EXPLAIN_NOT_ALLOWED
                           : WR_EXPLAIN_NO_ROUTE;
}

/* Parses the head x->head[0..len) and prints it. Returns 0, or the status
 * weir answers a head it cannot parse with. */
static int parse_head(struct explain *x, size_t len)
{
    const struct wr_http_limits limits = {x->cfg->limits.max_header_bytes,
                                          x->cfg->limits.max_headers};
    ssize_t n = wr_http_parse_request(x->head, len, 0, &limits, &x->req);
    printf("request: %.*s\n", (int)strcspn(x->head, "\r"), x->head);
    printf("listener: %s (%s)\n", x->listen->addr.text, x->listen->is_tls ? "tls" : "plain");
    if (n == WR_AGAIN)
        return 400;
    if (n < 0)
        return x->req.status;
    x->host = wr_router_host_var(x->req.host, x->host_buf, sizeof(x->host_buf));
    printf("host: \"%.*s\"%s\n", (int)x->host.len, x->host.ptr,
           x->listen->is_tls ? " (over TLS, taken as the SNI too)" : "");
    return 0;
}

/* conn's order: parse, 413, path, route. Returns the exit status. */
static int explain_request(struct explain *x, size_t len)
{
    int status = parse_head(x, len);
    if (status != 0)
        return no_route(status, "the request head does not parse", NULL);
    uint64_t max_body = x->cfg->limits.max_body_bytes;
    if (x->req.has_content_length && max_body > 0 && x->req.content_length > max_body)
        return no_route(413, "Content-Length is over [limits] max_body_size", NULL);
    x->path = (struct wr_str){x->scratch, 0};
    if (x->req.method_id != WR_HTTP_CONNECT) {
        status = wr_router_request_path(&x->req, x->scratch, &x->path);
        if (status != 0)
            return no_route(status, "the path does not normalise", NULL);
        printf("path: %.*s (normalised: percent-decoded, dot-segments removed, no query)\n",
               (int)x->path.len, x->path.ptr);
    }
    const struct wr_router_input in = {x->host, x->path, x->req.method_id, x->req.method,
                                       x->listen->is_tls};
    status = wr_router_route(x->cfg, x->router, &in, &x->match);
    if (x->req.method_id == WR_HTTP_CONNECT)
        return no_route(405, "weir is no forward proxy: CONNECT is refused before routing",
                        x->match.allow);
    print_tried(x);
    switch (status) {
    case 0: {
        struct wr_config_where w = where(x, x->match.route->line);
        printf("route: %s (%s:%u)\n", x->match.route->name, w.file, w.line);
        print_captures(x);
        explain_action(x);
        return WR_EXPLAIN_ROUTED;
    }
    case 200:
        return no_route(200, "weir answers OPTIONS * itself", x->match.allow);
    case 404:
        return no_route(404, "no route takes this host and path", NULL);
    case 405:
        return no_route(405, "routes take this host and path, none this method", x->match.allow);
    default:
        return no_route(status, "no route of this host takes this method", NULL);
    }
}

static void free_explain(struct explain *x)
{
    free(x->head);
    free(x->scratch);
    wr_router_scratch_free(x->router);
    wr_config_unref((struct wr_config *)x->cfg);
}

/* Loads the file as weir -t does (errors on stderr). NULL on errors. */
static struct wr_config *load(const char *path)
{
    struct wr_config_errors errs = {0};
    const struct wr_config_options opts = {.resolve = wr_config_resolve_getaddrinfo,
                                           .resolve_ns = wr_resolve_blocking,
                                           .allow_include = true};
    struct wr_config *cfg = wr_config_load_opts(path, &opts, &errs);
    for (size_t i = 0; i < errs.n_lines; i++)
        fprintf(stderr, "%s\n", errs.lines[i]);
    wr_config_errors_fini(&errs);
    return cfg;
}

int wr_explain_main(int argc, char **argv)
{
    struct args a;
    int rc = parse_args(argc, argv, &a);
    if (rc != 0)
        return rc > 0 ? 0 : WR_EXPLAIN_USAGE;
    struct wr_explain_url u;
    if (strcmp(a.method, "CONNECT") == 0) {
        /* authority-form (RFC 9112 §3.2.3): sent as given, refused before routing */
        u = (struct wr_explain_url){.target = wr_str_from_cstr(a.url)};
    } else if (wr_explain_split_url(a.url, &u) < 0) {
        fprintf(stderr, "weir route: %s: not http://HOST/PATH, https://..., /PATH or *\n",
                a.url);
        return WR_EXPLAIN_USAGE;
    }
    struct explain x = {.cfg = load(a.config)};
    if (x.cfg == NULL)
        return WR_EXPLAIN_BAD_CONFIG;
    x.listen = pick_listener(x.cfg, a.listen, &u);
    x.head = malloc(HEAD_CAP);
    x.scratch = malloc(SCRATCH_CAP);
    x.router = wr_router_scratch_new();
    int len = x.listen && x.head && x.scratch && x.router ? build_head(&x, &a, &u) : -1;
    if (x.listen == NULL)
        fprintf(stderr, "weir route: no [server] listen is %s\n", a.listen);
    else if (len < 0)
        fprintf(stderr, "weir route: out of memory, or a request head over 64 KiB\n");
    wr_resp_clock_update(&x.clock, time(NULL), x.cfg->server.server_header);
    rc = len < 0 ? WR_EXPLAIN_USAGE : explain_request(&x, (size_t)len);
    free_explain(&x);
    return rc;
}
