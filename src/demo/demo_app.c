/*
 * weir-demo-app: the small backend that `make run` puts behind weir's
 * [route api], and that integration tests start as a real upstream.
 *
 *   weir-demo-app --listen 127.0.0.1:9000 [--name NAME]
 *   weir-demo-app --listen unix:/path/demo.sock
 *
 * Endpoints (all answers carry X-Served-By: NAME):
 *   GET  /api/best?team=T&show=N[&format=json|html]  a generated lineup
 *   POST /api/teams        form or JSON {name, city}: 201 + Location
 *   GET  /api/teams        the stored teams; GET /api/teams/ID one of them
 *   ANY  /api/echo...      method, raw target, headers in order, body length
 *                          and SHA-256 as JSON (for proxy fidelity tests)
 *   GET  /api/stats        {"connections_accepted": N, "requests": M}
 *   GET  /healthz          200 "ok"
 *
 * One thread, one libevent evhttp server. Everything that handles user
 * bytes (parsing, escaping, rendering) is in demo.c and unit-tested; this
 * file is only HTTP plumbing and the in-memory team store. Not part of the
 * weir binary, never installed.
 *
 * Limits: libevent 2.1's evhttp knows only the methods GET HEAD POST PUT
 * DELETE OPTIONS TRACE CONNECT PATCH (others get its own 405), buffers a
 * request body in memory (bounded by MAX_BODY_BYTES), and answers its own
 * protocol errors (400, 413) without X-Served-By.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/queue.h> /* TAILQ_FOREACH over evhttp headers */
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <openssl/evp.h>

#include "demo.h"

#define MAX_TEAMS 1000
#define MAX_FORM_BYTES (16 * 1024)            /* POST /api/teams; 413 beyond */
#define MAX_BODY_BYTES (128 * 1024 * 1024)    /* any request: echo takes 100 MiB */
#define MAX_HEADER_BYTES (64 * 1024)
#define MAX_PAGE_BYTES (4 * 1024 * 1024)      /* a rendered answer */
#define IDLE_TIMEOUT_S 120

struct app {
    struct event_base *base;
    struct evhttp *http;
    struct event *on_term, *on_int;
    const char *name;        /* borrowed from argv */
    const char *unix_path;   /* borrowed from argv; unlinked at exit */
    uint64_t n_connections;  /* accepted, TCP or unix */
    uint64_t n_requests;     /* answered by on_request, this one included */
    size_t n_teams;
    struct wr_demo_team *teams; /* MAX_TEAMS, owned */
};

/* ---- answers ------------------------------------------------------------- */

static const char *reason_of(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 500: return "Internal Server Error";
    case 507: return "Insufficient Storage";
    default: return "Unknown";
    }
}

static void send_body(struct evhttp_request *req, int status, const char *content_type,
                      const char *body, size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_remove_header(h, "Content-Type");
    evhttp_add_header(h, "Content-Type", content_type);
    evbuffer_add(evhttp_request_get_output_buffer(req), body, len);
    evhttp_send_reply(req, status, reason_of(status), NULL);
}

static void send_error(struct evhttp_request *req, int status, const char *message)
{
    struct wr_demo_out out;
    wr_demo_out_init(&out, MAX_PAGE_BYTES);
    wr_demo_error_json(&out, message);
    if (out.is_failed)
        send_body(req, 500, "text/plain; charset=utf-8", "out of memory\n", 14);
    else
        send_body(req, status, "application/json", out.data, out.len);
    wr_demo_out_fini(&out);
}

/* Sends a rendered page, or 500 when rendering ran out of memory. */
static void send_out(struct evhttp_request *req, int status, bool is_html,
                     struct wr_demo_out *out)
{
    if (out->is_failed)
        send_error(req, 500, "answer too large");
    else
        send_body(req, status, is_html ? "text/html; charset=utf-8" : "application/json",
                  out->data, out->len);
    wr_demo_out_fini(out);
}

static void send_not_allowed(struct evhttp_request *req, const char *allow)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
    send_error(req, 405, "method not allowed");
}

static bool is_get(struct evhttp_request *req)
{
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    return m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD;
}

static const char *query_of(struct evhttp_request *req)
{
    const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    return q ? q : "";
}

/* format=html|json decides; without it, the Accept field does. -1: bad. */
static int wants_html(struct evhttp_request *req, const char *query)
{
    struct wr_demo_out format;
    wr_demo_out_init(&format, 16);
    enum wr_demo_field f = wr_demo_form_field(query, strlen(query), "format", &format);
    int is_html;
    if (f == WR_DEMO_FIELD_ABSENT) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Vary", "Accept");
        is_html = wr_demo_prefers_html(
            evhttp_find_header(evhttp_request_get_input_headers(req), "Accept"));
    } else if (f == WR_DEMO_FIELD_FOUND && !format.is_failed && strcmp(format.data, "html") == 0) {
        is_html = 1;
    } else if (f == WR_DEMO_FIELD_FOUND && !format.is_failed && strcmp(format.data, "json") == 0) {
        is_html = 0;
    } else {
        is_html = -1;
    }
    wr_demo_out_fini(&format);
    return is_html;
}

/* ---- /api/best ----------------------------------------------------------- */

static void handle_best(struct evhttp_request *req)
{
    if (!is_get(req)) {
        send_not_allowed(req, "GET, HEAD");
        return;
    }
    const char *query = query_of(req);
    size_t qlen = strlen(query);
    struct wr_demo_out team, show;
    wr_demo_out_init(&team, WR_DEMO_TEXT_MAX);
    wr_demo_out_init(&show, 8);
    enum wr_demo_field ft = wr_demo_form_field(query, qlen, "team", &team);
    enum wr_demo_field fs = wr_demo_form_field(query, qlen, "show", &show);
    int n = fs == WR_DEMO_FIELD_ABSENT ? WR_DEMO_SHOW_DEFAULT
            : fs == WR_DEMO_FIELD_FOUND && !show.is_failed ? wr_demo_parse_show(show.data, show.len)
            : -1;
    int is_html = wants_html(req, query);
    if (ft == WR_DEMO_FIELD_MALFORMED || fs == WR_DEMO_FIELD_MALFORMED)
        send_error(req, 400, "malformed query: bad %-escape");
    else if (ft != WR_DEMO_FIELD_FOUND || team.len == 0)
        send_error(req, 400, "team: required, e.g. /api/best?team=Lions");
    else if (team.is_failed)
        send_error(req, 400, "team: at most 100 bytes");
    else if (n < 0)
        send_error(req, 400, "show: a whole number from 1 to 11");
    else if (is_html < 0)
        send_error(req, 400, "format: html or json");
    else {
        struct wr_demo_player players[WR_DEMO_SHOW_MAX];
        wr_demo_lineup(team.data, team.len, (unsigned)n, players);
        struct wr_demo_out out;
        wr_demo_out_init(&out, MAX_PAGE_BYTES);
        if (is_html)
            wr_demo_lineup_html(&out, team.data, team.len, players, (unsigned)n);
        else
            wr_demo_lineup_json(&out, team.data, team.len, players, (unsigned)n);
        send_out(req, 200, is_html, &out);
    }
    wr_demo_out_fini(&team);
    wr_demo_out_fini(&show);
}

/* ---- /api/teams ---------------------------------------------------------- */

/* The media type of Content-Type (before ';', spaces trimmed) equals want. */
static bool is_media_type(const char *content_type, const char *want)
{
    size_t len = strcspn(content_type, ";");
    while (len && (content_type[len - 1] == ' ' || content_type[len - 1] == '\t'))
        len--;
    return len == strlen(want) && strncasecmp(content_type, want, len) == 0;
}

static int refuse(const char **why, const char *message)
{
    *why = message;
    return 400;
}

/* Reads name and city from a form or JSON body into team. Returns 0, or
 * the status to answer with *why set. */
static int read_team(const char *content_type, const char *body, size_t len,
                     struct wr_demo_team *team, const char **why)
{
    bool is_json = is_media_type(content_type, "application/json");
    if (!is_json && !is_media_type(content_type, "application/x-www-form-urlencoded")) {
        *why = "Content-Type: application/x-www-form-urlencoded or application/json";
        return 415;
    }
    const char *keys[2] = {"name", "city"};
    char *dst[2] = {team->name, team->city};
    size_t *dst_len[2] = {&team->name_len, &team->city_len};
    for (int i = 0; i < 2; i++) {
        struct wr_demo_out v;
        wr_demo_out_init(&v, WR_DEMO_TEXT_MAX);
        enum wr_demo_field f = is_json ? wr_demo_json_field(body, len, keys[i], &v)
                                       : wr_demo_form_field(body, len, keys[i], &v);
        bool is_ok = f == WR_DEMO_FIELD_FOUND && !v.is_failed && wr_demo_is_clean_text(v.data, v.len);
        if (is_ok) {
            memcpy(dst[i], v.data, v.len + 1);
            *dst_len[i] = v.len;
        }
        wr_demo_out_fini(&v);
        if (f == WR_DEMO_FIELD_MALFORMED)
            return refuse(why, is_json ? "body: not a JSON object" : "body: bad %-escape");
        if (f == WR_DEMO_FIELD_NOT_STRING)
            return refuse(why, i ? "city: must be a string" : "name: must be a string");
        if (f == WR_DEMO_FIELD_FOUND && !is_ok)
            return refuse(why, i ? "city: at most 100 bytes of UTF-8 text"
                                 : "name: at most 100 bytes of UTF-8 text");
    }
    if (team->name_len == 0)
        return refuse(why, "name: required");
    return 0;
}

static void create_team(struct app *app, struct evhttp_request *req)
{
    const char *ctype = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len > MAX_FORM_BYTES) {
        send_error(req, 413, "body: at most 16 KiB");
        return;
    }
    if (!ctype) {
        send_error(req, 415, "Content-Type: application/x-www-form-urlencoded "
                                    "or application/json");
        return;
    }
    if (app->n_teams == MAX_TEAMS) {
        send_error(req, 507, "the team store is full (1000 teams)");
        return;
    }
    struct wr_demo_team *team = &app->teams[app->n_teams];
    *team = (struct wr_demo_team){.id = (uint32_t)app->n_teams + 1};
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
    const char *why = NULL;
    int status = read_team(ctype, body, len, team, &why);
    if (status) {
        send_error(req, status, why);
        return;
    }
    app->n_teams++;
    char location[48];
    snprintf(location, sizeof(location), "/api/teams/%u", (unsigned)team->id);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Location", location);
    /* a browser posting the demo page's form gets the list, as a page */
    bool is_html = wr_demo_prefers_html(
        evhttp_find_header(evhttp_request_get_input_headers(req), "Accept"));
    struct wr_demo_out out;
    wr_demo_out_init(&out, MAX_PAGE_BYTES);
    if (is_html)
        wr_demo_teams_html(&out, app->teams, app->n_teams);
    else
        wr_demo_team_json(&out, team), wr_demo_out_str(&out, "\n");
    evhttp_add_header(evhttp_request_get_output_headers(req), "Vary", "Accept");
    send_out(req, 201, is_html, &out);
}

static void list_teams(struct app *app, struct evhttp_request *req)
{
    int is_html = wants_html(req, query_of(req));
    if (is_html < 0) {
        send_error(req, 400, "format: html or json");
        return;
    }
    struct wr_demo_out out;
    wr_demo_out_init(&out, MAX_PAGE_BYTES);
    if (is_html)
        wr_demo_teams_html(&out, app->teams, app->n_teams);
    else
        wr_demo_teams_json(&out, app->teams, app->n_teams);
    send_out(req, 200, is_html, &out);
}

static void handle_teams(struct app *app, struct evhttp_request *req)
{
    if (evhttp_request_get_command(req) == EVHTTP_REQ_POST)
        {
        create_team(app, req);
        return;
    }
    if (!is_get(req)) {
        send_not_allowed(req, "GET, HEAD, POST");
        return;
    }
    list_teams(app, req);
}

/* GET /api/teams/ID */
static void handle_team(struct app *app, struct evhttp_request *req, const char *id_text)
{
    if (!is_get(req)) {
        send_not_allowed(req, "GET, HEAD");
        return;
    }
    char *end;
    errno = 0;
    unsigned long id = strtoul(id_text, &end, 10);
    if (*id_text < '1' || *id_text > '9' || *end || errno || id > app->n_teams) {
        send_error(req, 404, "no such team");
        return;
    }
    struct wr_demo_out out;
    wr_demo_out_init(&out, MAX_PAGE_BYTES);
    wr_demo_team_json(&out, &app->teams[id - 1]);
    wr_demo_out_str(&out, "\n");
    send_out(req, 200, false, &out);
}

/* ---- /api/echo, /api/stats, /healthz ------------------------------------- */

static const char *method_name(enum evhttp_cmd_type m)
{
    switch (m) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return "?";
    }
}

/* SHA-256 of the body as lower-case hex, read chain by chain: a 100 MiB
 * body is never copied into one block. 0, or -1 if OpenSSL failed. */
static int body_sha256(struct evbuffer *body, char hex[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = -1;
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        goto free_ctx;
    struct evbuffer_ptr at;
    evbuffer_ptr_set(body, &at, 0, EVBUFFER_PTR_SET);
    struct evbuffer_iovec vec;
    /* one chain per round; the loop ends at the last chain */
    while (evbuffer_peek(body, -1, &at, &vec, 1) > 0) {
        if (EVP_DigestUpdate(ctx, vec.iov_base, vec.iov_len) != 1)
            goto free_ctx;
        if (evbuffer_ptr_set(body, &at, vec.iov_len, EVBUFFER_PTR_ADD) < 0)
            break;
    }
    unsigned char md[32];
    unsigned md_len = 0;
    if (EVP_DigestFinal_ex(ctx, md, &md_len) != 1 || md_len != 32)
        goto free_ctx;
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    rc = 0;
free_ctx:
    EVP_MD_CTX_free(ctx);
    return rc;
}

static void handle_echo(struct evhttp_request *req)
{
    struct evbuffer *body = evhttp_request_get_input_buffer(req);
    char sha[65];
    if (body_sha256(body, sha) < 0) {
        send_error(req, 500, "sha256 failed");
        return;
    }
    struct wr_demo_out out;
    wr_demo_out_init(&out, MAX_PAGE_BYTES);
    wr_demo_out_str(&out, "{\"method\":\"");
    wr_demo_out_str(&out, method_name(evhttp_request_get_command(req)));
    wr_demo_out_str(&out, "\",\"uri\":");
    const char *uri = evhttp_request_get_uri(req);
    wr_demo_json_bytes(&out, uri, strlen(uri));
    wr_demo_out_str(&out, ",\"headers\":[");
    const struct evkeyval *kv;
    bool is_first = true;
    TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next) {
        wr_demo_out_str(&out, is_first ? "[" : ",[");
        wr_demo_json_bytes(&out, kv->key, strlen(kv->key));
        wr_demo_out_str(&out, ",");
        wr_demo_json_bytes(&out, kv->value, strlen(kv->value));
        wr_demo_out_str(&out, "]");
        is_first = false;
    }
    wr_demo_out_str(&out, "],\"body_length\":");
    wr_demo_out_u64(&out, evbuffer_get_length(body));
    wr_demo_out_str(&out, ",\"body_sha256\":\"");
    wr_demo_out_str(&out, sha);
    wr_demo_out_str(&out, "\"}\n");
    send_out(req, 200, false, &out);
}

static void handle_stats(struct app *app, struct evhttp_request *req)
{
    if (!is_get(req)) {
        send_not_allowed(req, "GET, HEAD");
        return;
    }
    char text[96];
    int n = snprintf(text, sizeof(text), "{\"connections_accepted\":%llu,\"requests\":%llu}\n",
                     (unsigned long long)app->n_connections,
                     (unsigned long long)app->n_requests);
    send_body(req, 200, "application/json", text, (size_t)n);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct app *app = arg;
    app->n_requests++;
    evhttp_add_header(evhttp_request_get_output_headers(req), "X-Served-By", app->name);
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    path = path ? path : "";
    if (strncmp(path, "/api/echo", 9) == 0)
        handle_echo(req);
    else if (strcmp(path, "/api/best") == 0)
        handle_best(req);
    else if (strcmp(path, "/api/teams") == 0)
        handle_teams(app, req);
    else if (strncmp(path, "/api/teams/", 11) == 0)
        handle_team(app, req, path + 11);
    else if (strcmp(path, "/api/stats") == 0)
        handle_stats(app, req);
    else if (strcmp(path, "/healthz") == 0 && is_get(req))
        send_body(req, 200, "text/plain; charset=utf-8", "ok", 2);
    else if (strcmp(path, "/healthz") == 0)
        send_not_allowed(req, "GET, HEAD");
    else
        send_error(req, 404, "no such endpoint");
}

/* evhttp asks for a bufferevent once per accepted connection: the one
 * place that sees every connection, TCP or unix, before any request. */
static struct bufferevent *on_new_connection(struct event_base *base, void *arg)
{
    struct app *app = arg;
    app->n_connections++;
    return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
}

/* ---- listening ----------------------------------------------------------- */

static int listen_unix(struct app *app, const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "weir-demo-app: unix:%s: path too long\n", path);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path); /* a stale socket from an earlier run */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0) {
        fprintf(stderr, "weir-demo-app: unix:%s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!evhttp_accept_socket_with_handle(app->http, fd)) {
        close(fd);
        return -1;
    }
    app->unix_path = path;
    fprintf(stderr, "weir-demo-app: listening on unix:%s\n", path);
    return 0;
}

/* host:port or [v6]:port; port 0 picks a free one, printed when ready. */
static int listen_tcp(struct app *app, const char *spec)
{
    char host[64];
    const char *colon = strrchr(spec, ':');
    size_t host_len = colon ? (size_t)(colon - spec) : 0;
    char *end;
    unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;
    if (!colon || host_len == 0 || host_len >= sizeof(host) || !colon[1] || *end || port > 65535) {
        fprintf(stderr, "weir-demo-app: --listen %s: want HOST:PORT, [V6]:PORT or unix:PATH\n",
                spec);
        return -1;
    }
    bool is_v6 = spec[0] == '[' && colon[-1] == ']';
    memcpy(host, spec + is_v6, host_len - 2 * is_v6);
    host[host_len - 2 * is_v6] = '\0';
    struct evhttp_bound_socket *bound = evhttp_bind_socket_with_handle(app->http, host,
                                                                       (uint16_t)port);
    if (!bound) {
        fprintf(stderr, "weir-demo-app: --listen %s: %s\n", spec, strerror(errno));
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t ss_len = sizeof(ss);
    getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &ss_len);
    in_port_t real = ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port;
    fprintf(stderr, is_v6 ? "weir-demo-app: listening on [%s]:%u\n"
                          : "weir-demo-app: listening on %s:%u\n",
            host, (unsigned)ntohs(real));
    return 0;
}

/* ---- start and stop ------------------------------------------------------ */

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct app *app = arg;
    fprintf(stderr, "weir-demo-app: %s, exiting\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    event_base_loopbreak(app->base);
}

static void usage(FILE *to)
{
    fprintf(to, "usage: weir-demo-app --listen HOST:PORT|[V6]:PORT|unix:PATH [--name NAME]\n"
                "  a demo backend for weir: GET /api/best?team=NAME&show=N, POST/GET /api/teams,\n"
                "  ANY /api/echo..., GET /api/stats, GET /healthz (see src/demo/demo_app.c)\n");
}

/* The server, its signals and its listener; -1 after printing why. */
static int app_start(struct app *app, const char *listen)
{
    app->base = event_base_new();
    app->http = app->base ? evhttp_new(app->base) : NULL;
    app->teams = calloc(MAX_TEAMS, sizeof(*app->teams));
    app->on_term = app->base ? evsignal_new(app->base, SIGTERM, on_stop_signal, app) : NULL;
    app->on_int = app->base ? evsignal_new(app->base, SIGINT, on_stop_signal, app) : NULL;
    if (!app->http || !app->teams || !app->on_term || !app->on_int ||
        event_add(app->on_term, NULL) < 0 || event_add(app->on_int, NULL) < 0) {
        fprintf(stderr, "weir-demo-app: out of memory\n");
        return -1;
    }
    evhttp_set_allowed_methods(app->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                              EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                              EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                              EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_max_body_size(app->http, MAX_BODY_BYTES);
    evhttp_set_max_headers_size(app->http, MAX_HEADER_BYTES);
    evhttp_set_timeout(app->http, IDLE_TIMEOUT_S);
    evhttp_set_bevcb(app->http, on_new_connection, app);
    evhttp_set_gencb(app->http, on_request, app);
    if (strncmp(listen, "unix:", 5) == 0)
        return listen_unix(app, listen + 5);
    return listen_tcp(app, listen);
}

static void app_stop(struct app *app)
{
    if (app->http)
        evhttp_free(app->http); /* closes the listeners and every connection */
    if (app->on_term)
        event_free(app->on_term);
    if (app->on_int)
        event_free(app->on_int);
    if (app->base)
        event_base_free(app->base);
    if (app->unix_path)
        unlink(app->unix_path);
    free(app->teams);
    *app = (struct app){0};
    libevent_global_shutdown();
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"listen", required_argument, NULL, 'l'},
        {"name", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *listen = NULL, *name = "demo";
    for (int c; (c = getopt_long(argc, argv, "l:n:h", options, NULL)) != -1;) {
        if (c == 'l') {
            listen = optarg;
        } else if (c == 'n') {
            name = optarg;
        } else {
            usage(c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    if (!listen || optind != argc) {
        usage(stderr);
        return 2;
    }
    /* the name goes into a header: no CR, LF or other control byte */
    if (!*name || !wr_demo_is_clean_text(name, strlen(name))) {
        fprintf(stderr, "weir-demo-app: --name: printable text\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a client gone mid-write is an error, not a kill */
    struct app app = {.name = name};
    int rc = app_start(&app, listen) < 0 ? 1 : 0;
    if (rc == 0 && event_base_dispatch(app.base) < 0)
        rc = 1;
    app_stop(&app);
    return rc;
}
