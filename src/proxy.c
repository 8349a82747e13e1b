/*
 * proxy: one proxied exchange, the proxy route's handler (see proxy.h and
 * handler.h for the contract with the front end).
 *
 * Life of an exchange:
 *   proxy_start: build the upstream request head once (hbuf), pick a
 *   server, take a pooled connection or connect -> send head (and body as
 *   the front end hands it over, re-framed for the server) -> read the
 *   response head (ubuf) -> build the client's head as fields in ex->resp
 *   on hbuf (no longer needed for retries) -> relay the body as payload
 *   (wr_exchange_send: the front end frames it for its client) ->
 *   wr_exchange_end. Reentrancy: every sink call may come back only from
 *   the front end's next event (proceed, stop), so p stays valid across
 *   them; stop (free_proxy) is the only way an exchange is freed.
 * Retries: a failed connect, or a failure before any response byte on an
 * idempotent request whose body (if any) was not consumed, moves to another
 * server (the tried set: never the same server twice); a pooled
 * connection that turns out dead is replaced by a fresh one to the same
 * server without counting as a retry. Each attempt is recorded for the
 * access log (attempt_log).
 * Memory: one struct per exchange in flight (with hbuf), from the worker's
 * free list; bodies stream through ubuf (UBUF_CAP), taken from the worker's
 * buf_pool on the first read of a response and given back when the
 * exchange is freed, so an exchange waiting to connect or sending a slow
 * upload holds none. Bodies are never buffered whole.
 */
#include "weir/proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "weir/clock.h"
#include "weir/h1_framing.h"
#include "weir/http_parser.h"
#include "weir/log.h"
#include "weir/metrics.h"
#include "weir/path.h"
#include "weir/relay.h"
#include "weir/timer.h"
#include "weir/tls.h"
#include "weir/proxy_protocol.h"
#include "weir/upstream.h"
#include "weir/websocket.h"

#define UBUF_CAP (32 * 1024)
#define HEAD_EXTRA 4096      /* room for added request fields beyond the client's head */
#define MAX_PIECES 2         /* chunks of an upstream's chunked body relayed per send */
#define MAX_FREE_PROXIES 64

enum px_state {
    PX_CONNECTING,   /* connect() in progress */
    PX_SENDING,      /* head (and maybe body) going up; response not yet started */
    PX_BODY_DOWN,    /* response head relayed; relaying its body */
    PX_TUNNEL,       /* 101 relayed: bytes both ways */
    PX_FINISHED,     /* done() called */
};

enum resp_framing { RF_NONE, RF_LENGTH, RF_CHUNKED, RF_CLOSE };

/* The access log's upstream_addr and upstream_status, as nginx's
 * $upstream_addr and $upstream_status: one entry per attempt in each list,
 * ", "-separated. Bounded: an attempt that does not fit ends both lists
 * with ", ..." and later ones are left out. */
struct attempt_log {
    char addrs[512];
    char statuses[160];       /* >= 5 bytes per entry addrs can hold, + marker */
    size_t addrs_len, statuses_len;
    size_t open_at;           /* statuses_len before the open attempt's entry */
    bool is_open;             /* the last attempt has no status yet ("-") */
    bool is_full;             /* the lists end with the marker */
};

struct wr_proxy {
    struct wr_proxy *next_free;
    /* Kept while the struct sits on the free list: the tried set of an
     * upstream of more than 64 servers, allocated once and reused. */
    uint64_t *tried_heap;
    size_t tried_heap_words;
    struct wr_proxy_env *env;
    struct wr_exchange *ex;   /* borrowed: the exchange this answers (handler.h) */
    const struct wr_upstream_cfg *up;
    enum px_state state;
    uint64_t conn_id;

    /* upstream choice */
    struct wr_upconn *uc;
    int server;
    uint64_t *tried;          /* servers tried: &tried_word, or tried_heap past 64 */
    uint64_t tried_word;
    unsigned n_tries;         /* servers tried, the first included */
    int last_fail_status;     /* 502 or 504: what the last failed attempt deserved */
    bool is_idempotent;
    bool is_reused;           /* uc came from the pool */
    bool is_counted;          /* wr_balancer_begin called for server */
    struct wr_str hash_key;   /* borrowed from the pinned request */

    /* request head and body going up */
    char *hbuf;               /* request head, later the client's response head */
    size_t hbuf_cap, head_len, head_sent;
    size_t head_base_len;     /* head without the Host line (preserve_host = off) */
    size_t max_head_bytes;    /* longest response head accepted ([limits] max_header_size) */
    bool is_host_preserved;
    bool has_body, is_body_chunked, is_body_done;
    bool has_sent_body;       /* a body byte left for the server: no more retries */
    bool is_body_blocked;     /* send_body took less: body_room() owed */
    /* An HTTP/2 client's WebSocket (RFC 8441 extended CONNECT): upstream it
     * is HTTP/1.1's Upgrade with a key of ours; after the 101 the client
     * gets 200 and the tunnel's bytes are the exchange's request body
     * (DATA frames -> the upstream socket, as is) and response body
     * (upstream bytes until it closes -> DATA frames): the front end's
     * flow control is the backpressure both ways. */
    bool is_h2_tunnel;
    bool is_tunnel_open;      /* the upstream's 101 came: bytes flow */
    bool is_shut_owed;        /* the client ended its half: shut the upstream's
                                 once a TLS record waiting went out */
    char ws_key[WR_WS_KEY_LEN + 1];
    uint64_t chunk_left;      /* data bytes owed to the chunk being sent */
    char pend[32];            /* framing bytes not yet written */
    size_t pend_len, pend_off;

    /* response coming down */
    char *ubuf;
    size_t ustart, ulen, scanned;
    struct wr_http_response resp;
    enum resp_framing framing;
    uint64_t resp_left;
    struct wr_http_chunked chunked;
    bool is_head_req, is_upstream_reusable;
    bool is_head_pending;     /* client head built in ex->resp, not yet sent */
    bool is_emit_pending;     /* conn still writing what we emitted */
    bool is_websocket;
    int status;               /* response status relayed */
    int end;                  /* what done() said */

    /* added response fields, expanded at start (the vars die with the call) */
    char add_hdrs[1024];    /* the route's response rules, expanded: the
                               "always" ones first, then the others */
    size_t add_hdrs_len;
    size_t add_hdrs_always_len; /* the "always" ones' bytes */
    const struct wr_route *route; /* borrowed (conn's snapshot): hide_header and
                                     the fields add_header replaces */

    /* tunnel (after 101): the client's stream (side 0, borrowed from the
     * front end) and the upstream connection's (side 1, detached from the pool) */
    struct wr_relay *relay;   /* owned while tunnelling (taken then: an exchange
                                 that never upgrades does not carry it) */

    struct wr_timer timer;    /* on env->wheel; never later than deadline_ms */
    uint64_t deadline_ms;     /* the real deadline (connect, send, read, idle); 0: none */
    uint64_t idle_timeout_ms; /* tunnel */
    uint64_t start_us, head_us;
    struct wr_log_request subject; /* names the request in warnings: slices borrowed
                                      from the pinned head and conn (emptied when
                                      the tunnel starts and conn lets go of them) */
    struct attempt_log log;
};

static void on_upstream(struct wr_upconn *uc, short what, void *arg);
static void start_attempt(struct wr_proxy *p);
static void relay_body(struct wr_proxy *p);
static void on_timer(struct wr_timer_wheel *w, struct wr_timer *t, uint64_t now_ms);

/* This worker's counters for server i of p's upstream, or NULL. */
static struct wr_metrics_server *server_metrics(const struct wr_proxy *p, int i)
{
    unsigned id = p->up->servers[i].metrics_id;
    if (!p->env->henv->metrics || id == 0 || id >= WR_METRICS_MAX_SERVERS)
        return NULL;
    return &p->env->henv->metrics->servers[id];
}

/* The server of the current attempt, for log lines. */
static const char *server_label(const struct wr_proxy *p)
{
    return p->up->servers[p->server].label;
}

/* Upstream trouble is logged at warn, but a dead backend must not turn every
 * request into a log line: at most WARN_PER_SECOND lines per worker per
 * second; the next line that passes says how many were left out. */
#define WARN_PER_SECOND 10

static void upstream_warn(struct wr_proxy *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void upstream_warn(struct wr_proxy *p, const char *fmt, ...)
{
    struct wr_proxy_env *env = p->env;
    uint64_t n_suppressed;
    if (!wr_log_is_enabled(WR_LOG_WARN) ||
        !wr_log_budget_take(&env->warn_budget, WARN_PER_SECOND, wr_clock_now_ms(), &n_suppressed))
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n_suppressed > 0)
        wr_log_request(WR_LOG_WARN, env->worker_id, p->conn_id, &p->subject,
                       "%s (%llu similar lines not logged)", line,
                       (unsigned long long)n_suppressed);
    else
        wr_log_request(WR_LOG_WARN, env->worker_id, p->conn_id, &p->subject, "%s", line);
}

/* ---- writing heads ----------------------------------------------------- */

struct out {
    char *buf;
    size_t len, cap;
    bool is_overflow;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->is_overflow || n > o->cap - o->len) {
        o->is_overflow = true;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void put_str(struct out *o, struct wr_str s)
{
    put(o, s.ptr, s.len);
}

static void put_field(struct out *o, struct wr_str name, struct wr_str value)
{
    put_str(o, name);
    put(o, ": ", 2);
    put_str(o, value);
    put(o, "\r\n", 2);
}

bool wr_proxy_is_underscore_name(struct wr_str name)
{
    return name.len > 0 && memchr(name.ptr, '_', name.len) != NULL;
}

/* The Connection fields of one message, found once so that filtering its
 * fields is linear (a scan for Connection per field was quadratic in the
 * field count, which the client controls). */
struct hop_set {
    const struct wr_http_header *fields; /* borrowed: the message's */
    size_t n;
    size_t conn[4];   /* indexes of its Connection fields */
    size_t n_conn;
    bool is_many;     /* more than conn holds: scan fields instead */
};

static void hop_set_init(struct hop_set *hs, const struct wr_http_header *fields, size_t n)
{
    *hs = (struct hop_set){.fields = fields, .n = n};
    for (size_t i = 0; i < n; i++) {
        if (!wr_str_eq_nocase(fields[i].name, WR_STR("Connection")))
            continue;
        if (hs->n_conn == sizeof(hs->conn) / sizeof(hs->conn[0])) {
            hs->is_many = true;
            return;
        }
        hs->conn[hs->n_conn++] = i;
    }
}

/* The fixed hop-by-hop names (RFC 9110 §7.6.1), by length first. */
static bool is_fixed_hop(struct wr_str name)
{
    switch (name.len) {
    case 2:
        return wr_str_eq_nocase(name, WR_STR("TE"));
    case 7:
        return wr_str_eq_nocase(name, WR_STR("Trailer")) ||
               wr_str_eq_nocase(name, WR_STR("Upgrade"));
    case 10:
        return wr_str_eq_nocase(name, WR_STR("Connection")) ||
               wr_str_eq_nocase(name, WR_STR("Keep-Alive"));
    case 16:
        return wr_str_eq_nocase(name, WR_STR("Proxy-Connection"));
    case 17:
        return wr_str_eq_nocase(name, WR_STR("Transfer-Encoding"));
    default:
        return false;
    }
}

static bool is_hop(const struct hop_set *hs, struct wr_str name)
{
    if (is_fixed_hop(name))
        return true;
    /* RFC 9110 §7.6.1: every field the Connection field names is hop-by-hop. */
    if (hs->is_many) {
        for (size_t i = 0; i < hs->n; i++) {
            if (wr_str_eq_nocase(hs->fields[i].name, WR_STR("Connection")) &&
                wr_str_list_has_token(hs->fields[i].value, name))
                return true;
        }
        return false;
    }
    for (size_t i = 0; i < hs->n_conn; i++) {
        if (wr_str_list_has_token(hs->fields[hs->conn[i]].value, name))
            return true;
    }
    return false;
}

bool wr_proxy_is_hop_header(struct wr_str name, const struct wr_http_header *fields, size_t n)
{
    struct hop_set hs;
    hop_set_init(&hs, fields, n);
    return is_hop(&hs, name);
}

/* Percent-encodes the bytes of a normalised path that cannot appear raw. */
static void put_path_encoded(struct out *o, struct wr_str path)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < path.len; i++) {
        unsigned char ch = (unsigned char)path.ptr[i];
        bool is_plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                        (ch >= '0' && ch <= '9') || strchr("-._~!$&'()*+,;=:@/%", ch);
        if (is_plain && ch != 0) {
            put(o, (const char *)&ch, 1);
        } else {
            char enc[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            put(o, enc, 3);
        }
    }
}

/* strip_prefix (wr_path_strip_prefix: at a segment boundary): the rest of
 * the raw path when it starts with the prefix (sent as received), else of
 * the normalised path when that does (%2F/%25 kept, the rest re-encoded).
 * Returns false when neither does: the target then goes unchanged. */
static bool put_stripped_path(struct out *o, const struct wr_exchange *ex)
{
    struct wr_str prefix = wr_str_from_cstr(ex->route->strip_prefix);
    struct wr_str rest;
    bool is_raw = wr_path_strip_prefix(ex->req->path, prefix, &rest);
    if (!is_raw && !wr_path_strip_prefix(ex->path, prefix, &rest))
        return false;
    if (rest.len == 0 || rest.ptr[0] != '/')
        put(o, "/", 1);
    if (is_raw)
        put_str(o, rest);
    else
        put_path_encoded(o, rest);
    return true;
}

/* The path as received (origin form for an absolute-form target). */
static void put_received_path(struct out *o, const struct wr_http_request *req)
{
    if (req->is_absolute_form || req->path.ptr[0] != '/') {
        put_str(o, req->path);
        return;
    }
    struct wr_str t = req->target;
    if (req->query.ptr)
        t.len = (size_t)(req->query.ptr - t.ptr) - 1;
    put_str(o, t);
}

/* The request-target sent upstream: rewrite, strip_prefix, or as received
 * (origin form; the query always byte for byte). */
static void put_target(struct out *o, const struct wr_exchange *ex)
{
    const struct wr_http_request *req = ex->req;
    const struct wr_route *route = ex->route;
    if (route->rewrite.text) {
        ssize_t n = wr_tmpl_expand(&route->rewrite, ex->vars, o->buf + o->len, o->cap - o->len);
        if (n < 0)
            o->is_overflow = true;
        else
            o->len += (size_t)n;
    } else if (!route->strip_prefix || !put_stripped_path(o, ex)) {
        put_received_path(o, req);
    }
    if (req->query.ptr) {
        put(o, "?", 1);
        put_str(o, req->query);
    }
}

ssize_t wr_proxy_target(const struct wr_exchange *ex, char *buf, size_t cap)
{
    struct out o = {buf, 0, cap, false};
    put_target(&o, ex);
    return o.is_overflow ? -1 : (ssize_t)o.len;
}

static bool is_field_named(struct wr_str name, const char *lit)
{
    return wr_str_eq_nocase(name, wr_str_from_cstr(lit));
}

static bool is_set_by_route(const struct wr_route *route, struct wr_str name)
{
    for (size_t i = 0; i < route->n_set_headers; i++) {
        if (is_field_named(name, route->set_headers[i].name))
            return true;
    }
    return false;
}

/* Client fields that we replace or must not forward. */
static bool is_dropped_request_field(const struct wr_exchange *ex, const struct hop_set *hs,
                                     struct wr_str name)
{
    const struct wr_route *route = ex->route;
    if (is_hop(hs, name))
        return true;
    if (is_field_named(name, "Host") || is_field_named(name, "Content-Length") ||
        is_field_named(name, "Expect"))
        return true;
    if (ex->req->is_extended_connect && is_field_named(name, "Sec-WebSocket-Key"))
        return true; /* never an HTTP/2 client's: ours goes up */
    if (route->forwarded_headers &&
        (is_field_named(name, "X-Forwarded-For") || is_field_named(name, "X-Forwarded-Proto") ||
         is_field_named(name, "X-Forwarded-Host") || is_field_named(name, "X-Real-IP")))
        return true;
    return is_set_by_route(route, name);
}

static void put_forwarded(struct out *o, const struct wr_exchange *ex)
{
    const struct wr_http_request *req = ex->req;
    put(o, "X-Forwarded-For: ", 17);
    for (size_t i = 0; i < req->n_headers; i++) {
        if (is_field_named(req->headers[i].name, "X-Forwarded-For") &&
            req->headers[i].value.len > 0) {
            put_str(o, req->headers[i].value);
            put(o, ", ", 2);
        }
    }
    put_str(o, ex->client_addr);
    put(o, "\r\n", 2);
    put_field(o, WR_STR("X-Forwarded-Proto"), ex->is_tls ? WR_STR("https") : WR_STR("http"));
    if (req->host.len > 0)
        put_field(o, WR_STR("X-Forwarded-Host"), req->host);
    put_field(o, WR_STR("X-Real-IP"), ex->client_addr);
}

static void put_set_headers(struct out *o, const struct wr_exchange *ex)
{
    const struct wr_route *route = ex->route;
    for (size_t i = 0; i < route->n_set_headers; i++) {
        put_str(o, wr_str_from_cstr(route->set_headers[i].name));
        put(o, ": ", 2);
        ssize_t n = wr_tmpl_expand(&route->set_headers[i].value, ex->vars, o->buf + o->len,
                                   o->cap - o->len);
        if (n < 0)
            o->is_overflow = true;
        else
            o->len += (size_t)n;
        put(o, "\r\n", 2);
    }
}

/* The client's fields that go upstream as they are. Returns true when one
 * of them is X-Request-Id. */
static bool put_client_fields(struct out *o, const struct wr_proxy *p,
                              const struct wr_exchange *ex)
{
    const struct wr_http_request *req = ex->req;
    bool has_request_id = false;
    size_t n_underscored = 0;
    struct hop_set hs;
    hop_set_init(&hs, req->headers, req->n_headers);
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct wr_http_header *h = &req->headers[i];
        if (is_dropped_request_field(ex, &hs, h->name))
            continue;
        if (!ex->route->underscores_in_headers && wr_proxy_is_underscore_name(h->name)) {
            n_underscored++; /* as nginx's underscores_in_headers off */
            continue;
        }
        has_request_id |= is_field_named(h->name, "X-Request-Id");
        put_field(o, h->name, h->value);
    }
    /* One line per request, not per field: a client controls the count. */
    if (n_underscored > 0 && wr_log_is_enabled(WR_LOG_DEBUG))
        wr_log(WR_LOG_DEBUG, p->env->worker_id, ex->conn_id,
               "%zu request header field%s with '_' in the name not forwarded "
               "(underscores_in_headers = off)", n_underscored, n_underscored == 1 ? "" : "s");
    return has_request_id;
}

/* Builds the request head for the server into p->hbuf. Returns 0 or -1.
 * With preserve_host = off, Host names the server chosen, so the head stops
 * before its last CRLF and set_server_host completes it per attempt. */
static int build_request_head(struct wr_proxy *p, const struct wr_exchange *ex)
{
    const struct wr_http_request *req = ex->req;
    struct out o = {p->hbuf, 0, p->hbuf_cap, false};
    if (req->is_extended_connect)
        put(&o, "GET", 3); /* HTTP/1.1's WebSocket handshake */
    else
        put_str(&o, req->method);
    put(&o, " ", 1);
    put_target(&o, ex);
    put(&o, " HTTP/1.1\r\n", 11);
    if (p->is_host_preserved) {
        put(&o, "Host: ", 6);
        put_str(&o, req->host);
        put(&o, "\r\n", 2);
    }
    bool has_request_id = put_client_fields(&o, p, ex);
    if (ex->route->forwarded_headers) {
        put_forwarded(&o, ex);
        if (!has_request_id)
            put_field(&o, WR_STR("X-Request-Id"), ex->vars->request_id);
    }
    put_set_headers(&o, ex);
    if (p->is_websocket) {
        put(&o, "Connection: upgrade\r\nUpgrade: websocket\r\n", 41);
        if (p->is_h2_tunnel) {
            put(&o, "Sec-WebSocket-Key: ", 19);
            put(&o, p->ws_key, WR_WS_KEY_LEN);
            put(&o, "\r\n", 2);
            if (!wr_http_find_header(req, WR_STR("Sec-WebSocket-Version")))
                put(&o, "Sec-WebSocket-Version: 13\r\n", 27);
        }
    } else if (req->is_chunked) {
        put(&o, "Transfer-Encoding: chunked\r\n", 28);
    } else if (ex->has_body || req->has_content_length) {
        char num[WR_STR_U64_MAX];
        put(&o, "Content-Length: ", 16);
        put(&o, num, wr_str_format_u64(req->content_length, num));
        put(&o, "\r\n", 2);
    }
    if (p->is_host_preserved)
        put(&o, "\r\n", 2);
    else if (o.cap - o.len < 256 + 10)
        o.is_overflow = true; /* room for Host and the final CRLF */
    if (o.is_overflow)
        return -1;
    p->head_len = p->head_base_len = o.len;
    return 0;
}

/* preserve_host = off: "Host: <the server's authority>" ends the head. */
static void set_server_host(struct wr_proxy *p)
{
    if (p->is_host_preserved)
        return;
    const char *authority = p->up->servers[p->server].authority;
    size_t n = strlen(authority);
    if (n > 256)
        n = 256;
    char *at = p->hbuf + p->head_base_len;
    memcpy(at, "Host: ", 6);
    memcpy(at + 6, authority, n);
    memcpy(at + 6 + n, "\r\n\r\n", 4);
    p->head_len = p->head_base_len + 10 + n;
}

/* Expands the route's response rules now (the vars do not outlive start):
 * the "always" ones, which every status gets, then those only answers
 * below 400 get. */
static int expand_add_headers(struct wr_proxy *p, const struct wr_exchange *ex)
{
    struct out o = {p->add_hdrs, 0, sizeof(p->add_hdrs), false};
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < ex->route->n_add_headers; i++) {
            const struct wr_header_cfg *h = &ex->route->add_headers[i];
            if (h->is_always != (pass == 0))
                continue;
            put_str(&o, wr_str_from_cstr(h->name));
            put(&o, ": ", 2);
            ssize_t n = wr_tmpl_expand(&h->value, ex->vars, o.buf + o.len, o.cap - o.len);
            if (n < 0)
                o.is_overflow = true;
            else
                o.len += (size_t)n;
            put(&o, "\r\n", 2);
        }
        if (pass == 0)
            p->add_hdrs_always_len = o.len;
    }
    p->add_hdrs_len = o.len;
    return o.is_overflow ? -1 : 0;
}

/* ---- life -------------------------------------------------------------- */

static struct wr_proxy *alloc_proxy(struct wr_proxy_env *env, size_t hbuf_cap)
{
    struct wr_proxy *p = env->free_list;
    bool is_reused = p && p->hbuf_cap >= hbuf_cap;
    if (is_reused) {
        env->free_list = p->next_free;
        env->n_free--;
        if (env->n_free < env->low_free)
            env->low_free = env->n_free;
    } else {
        p = malloc(sizeof(*p) + hbuf_cap);
        if (!p)
            return NULL;
        p->hbuf_cap = hbuf_cap;
    }
    size_t cap = p->hbuf_cap;
    uint64_t *tried_heap = is_reused ? p->tried_heap : NULL;
    size_t tried_heap_words = is_reused ? p->tried_heap_words : 0;
    char *mem = (char *)(p + 1);
    memset(p, 0, offsetof(struct wr_proxy, resp));
    memset(&p->framing, 0, sizeof(*p) - offsetof(struct wr_proxy, framing));
    p->hbuf_cap = cap;
    p->tried_heap = tried_heap;
    p->tried_heap_words = tried_heap_words;
    p->hbuf = mem;
    p->ubuf = NULL; /* take_ubuf: only once a response is read */
    p->env = env;
    p->server = -1;
    wr_timer_init(&p->timer, on_timer); /* unarmed: free_proxy disarmed it */
    return p;
}

/* An empty tried set for p->up: the inline word up to 64 servers, else
 * the struct's own heap words, grown (rarely: the struct is reused) only
 * when this upstream has more servers than any before. */
static int init_tried(struct wr_proxy *p)
{
    size_t n_words = WR_UPSTREAM_SET_WORDS(p->up->n_servers);
    if (n_words <= 1) {
        p->tried_word = 0;
        p->tried = &p->tried_word;
        return 0;
    }
    if (p->tried_heap_words < n_words) {
        uint64_t *words = realloc(p->tried_heap, n_words * sizeof(*words));
        if (!words)
            return -1;
        p->tried_heap = words;
        p->tried_heap_words = n_words;
    }
    memset(p->tried_heap, 0, n_words * sizeof(*p->tried_heap));
    p->tried = p->tried_heap;
    return 0;
}

static void release_upstream(struct wr_proxy *p, bool is_reusable)
{
    if (p->is_counted) {
        wr_balancer_end(p->env->balancer, p->up, p->server);
        p->is_counted = false;
    }
    if (!p->uc)
        return;
    if (is_reusable && p->up->keepalive > 0)
        wr_pool_put(p->uc, p->up->keepalive, p->up->keepalive_timeout_ms);
    else
        wr_upconn_close(p->uc);
    p->uc = NULL;
}

static void stop_relay(struct wr_proxy *p)
{
    if (p->relay) {
        wr_relay_fini(p->relay);
        free(p->relay);
        p->relay = NULL;
    }
}

/* p's upstream response buffer, taken on the first read of a response:
 * an exchange that waits for a connection, sends a slow upload or sits in
 * the free list holds none. Returns 0, or -1 when out of memory. */
static int take_ubuf(struct wr_proxy *p)
{
    if (p->ubuf)
        return 0;
    p->ubuf = wr_buf_pool_take(&p->env->ubufs);
    if (!p->ubuf)
        return -1;
    p->env->ubuf_bytes += UBUF_CAP;
    return 0;
}

static void give_ubuf(struct wr_proxy *p)
{
    if (!p->ubuf)
        return;
    wr_buf_pool_give(&p->env->ubufs, p->ubuf);
    p->env->ubuf_bytes -= UBUF_CAP;
    p->ubuf = NULL;
}

static void free_proxy(struct wr_proxy *p)
{
    if (!p)
        return;
    stop_relay(p);
    release_upstream(p, false);
    give_ubuf(p);
    struct wr_proxy_env *env = p->env;
    wr_timer_disarm(env->wheel, &p->timer);
    if (env->n_free < MAX_FREE_PROXIES) {
        p->next_free = env->free_list;
        env->free_list = p;
        env->n_free++;
    } else {
        free(p->tried_heap);
        free(p);
    }
}


/* Ends the exchange; the caller returns right after (conn may free p). */
static void finish(struct wr_proxy *p, int end)
{
    p->end = end;
    p->state = PX_FINISHED;
    p->deadline_ms = 0;
    wr_exchange_end(p->ex, end);
}

/* ---- the access log's record of attempts ------------------------------ */

#define LOG_MORE ", ..."

/* Appends ", " (unless first) and item to buf[0..*len), NUL-terminated. The
 * caller checked the room. */
static void log_list_add(char *buf, size_t *len, const char *item, size_t n)
{
    if (*len > 0) {
        memcpy(buf + *len, ", ", 2);
        *len += 2;
    }
    memcpy(buf + *len, item, n);
    *len += n;
    buf[*len] = '\0';
}

/* An attempt on server starts: its address, and "-" until it has a status. */
static void log_attempt_start(struct attempt_log *log, const char *label)
{
    if (log->is_full)
        return;
    size_t n = strlen(label), more = sizeof(LOG_MORE); /* the marker and the NUL */
    if (log->addrs_len + 2 + n + more > sizeof(log->addrs) ||
        log->statuses_len + 2 + 3 + more > sizeof(log->statuses)) {
        log_list_add(log->addrs, &log->addrs_len, "...", 3);
        log_list_add(log->statuses, &log->statuses_len, "...", 3);
        log->is_full = true;
        return;
    }
    log_list_add(log->addrs, &log->addrs_len, label, n);
    log->open_at = log->statuses_len;
    log_list_add(log->statuses, &log->statuses_len, "-", 1);
    log->is_open = true;
}

/* The open attempt ended with status: the server's, or 502 (refused, reset,
 * bad head) or 504 (timeout) when it gave none. */
static void log_attempt_end(struct attempt_log *log, int status)
{
    if (!log->is_open)
        return;
    char num[WR_STR_U64_MAX];
    size_t n = wr_str_format_u64((uint64_t)status, num);
    log->statuses_len = log->open_at;
    log_list_add(log->statuses, &log->statuses_len, num, n);
    log->is_open = false;
}

/* ---- choosing and connecting ------------------------------------------ */

static bool may_retry(const struct wr_proxy *p, bool is_connect_failure)
{
    if (p->n_tries > p->up->retries)
        return false;
    if (is_connect_failure)
        return true;
    return p->is_idempotent && !p->has_sent_body && p->state != PX_BODY_DOWN;
}

/* An attempt on p->server failed before any response byte. status: what to
 * answer if no other server is tried (502, or 504 for a timeout), also when
 * the retry then finds no server left to try. */
static void fail_attempt(struct wr_proxy *p, int status, bool is_connect_failure, const char *why)
{
    const struct wr_upstream_server_cfg *srv = &p->up->servers[p->server];
    log_attempt_end(&p->log, status);
    upstream_warn(p, "upstream %s server %s: %s", p->up->name, srv->label, why);
    wr_upstream_report(p->up, p->server, false, wr_clock_now_ms());
    struct wr_metrics_server *sm = server_metrics(p, p->server);
    if (sm)
        wr_metrics_add(&sm->failures, 1);
    release_upstream(p, false);
    p->last_fail_status = status;
    if (!may_retry(p, is_connect_failure)) {
        finish(p, status);
        return;
    }
    start_attempt(p);
}

/* The deadline timeout_ms from now (0: none) becomes p's; its timer is
 * moved only when that is earlier (timer.h's lazy pattern: the tunnel
 * re-arms on every read, which costs one compare). */
static void arm_deadline(struct wr_proxy *p, uint64_t timeout_ms)
{
    p->deadline_ms = timeout_ms ? wr_clock_now_ms() + timeout_ms : 0;
    if (p->deadline_ms != 0)
        wr_timer_arm_lazy(p->env->wheel, &p->timer, p->deadline_ms);
}

static void send_head_and_body(struct wr_proxy *p);

/* How long the server may stay silent while the response comes: an open
 * tunnel has websocket_timeout instead. */
static uint64_t read_timeout(const struct wr_proxy *p)
{
    return p->is_tunnel_open ? p->idle_timeout_ms : p->up->read_timeout_ms;
}

/* Everything owed is written. read_timeout runs once the whole request is
 * with the server; while the client is still sending its body, its own
 * body_timeout guards the wait (a slow upload is not a slow server). */
static void arm_wait_deadline(struct wr_proxy *p)
{
    if (p->state == PX_BODY_DOWN)
        arm_deadline(p, read_timeout(p)); /* the response's own pace */
    else /* a tunnel's client sends nothing before the 101: the server's turn */
        arm_deadline(p, (p->is_body_done || p->is_h2_tunnel) && p->pend_len == 0
                            ? p->up->read_timeout_ms : 0);
}

/* send_proxy_protocol: the PROXY header that starts the new connection to
 * the server at addr: the client's address (its port is not kept: 0) and
 * the server's. A client without an address (a unix socket) is UNKNOWN. */
static void set_proxy_header(struct wr_proxy *p, const struct wr_listen_addr *addr)
{
    struct sockaddr_storage src = {0};
    char text[64];
    struct wr_str c = p->ex->client_addr;
    bool has_src = false;
    if (c.len > 0 && c.len < sizeof(text)) {
        memcpy(text, c.ptr, c.len);
        text[c.len] = '\0';
        struct sockaddr_in *in = (struct sockaddr_in *)&src;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&src;
        if (inet_pton(AF_INET, text, &in->sin_addr) == 1)
            src.ss_family = AF_INET, has_src = true;
        else if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1)
            src.ss_family = AF_INET6, has_src = true;
    }
    char header[WR_PP_OUT_MAX];
    size_t n = wr_pp_write(header, p->up->send_proxy_protocol,
                           has_src ? (const struct sockaddr *)&src : NULL,
                           (const struct sockaddr *)&addr->addr, false);
    wr_upconn_set_preamble(p->uc, header, n);
}

/* Picks a server not tried yet and gets a connection to it. */
static void start_attempt(struct wr_proxy *p)
{
    uint64_t now = wr_clock_now_ms();
    int server = wr_balancer_pick(p->env->balancer, p->up, p->hash_key, p->tried, now);
    if (server < 0) {
        if (p->n_tries == 0) {
            upstream_warn(p, "upstream %s: no server available", p->up->name);
            finish(p, 502);
            return;
        }
        /* A retry found no untried (or no live) server: the client learns
         * how the last real attempt failed, so a timeout stays a 504. */
        finish(p, p->last_fail_status);
        return;
    }
    p->server = server;
    wr_upstream_set_add(p->tried, (size_t)server);
    p->n_tries++;
    wr_balancer_begin(p->env->balancer, p->up, server);
    p->is_counted = true;
    const struct wr_listen_addr *addr = &p->up->servers[server].addr;
    log_attempt_start(&p->log, p->up->servers[server].label);
    p->head_sent = 0;
    /* A retry after part of a head came from the last server: those bytes
     * are not the next server's (they once made its head unparseable). */
    p->ustart = p->ulen = p->scanned = 0;
    set_server_host(p);
    const struct wr_tls_client *tls = p->up->tls_client;
    if (p->up->tls && !tls) {
        fail_attempt(p, 502, true, "TLS: no client context"); /* main always builds one */
        return;
    }
    /* A connection that told one client's address (send_proxy_protocol)
     * is never another client's: such upstreams are not pooled. */
    bool is_pooled = p->up->keepalive > 0 && p->up->send_proxy_protocol == 0;
    p->uc = is_pooled ? wr_pool_get(p->env->pool, addr, tls, on_upstream, p) : NULL;
    p->is_reused = p->uc != NULL;
    struct wr_metrics_server *sm = server_metrics(p, server);
    if (sm) {
        wr_metrics_add(&sm->requests, 1);
        wr_metrics_add(p->is_reused ? &sm->pool_hits : &sm->pool_misses, 1);
    }
    if (!p->uc) {
        p->uc = wr_pool_connect(p->env->pool, addr, tls, (size_t)server, on_upstream, p);
        if (!p->uc) {
            char why[96];
            snprintf(why, sizeof(why), "connect: %s", strerror(errno));
            fail_attempt(p, 502, true, why);
            return;
        }
        if (p->up->send_proxy_protocol)
            set_proxy_header(p, addr);
    }
    if (p->uc->is_connecting) {
        p->state = PX_CONNECTING;
        arm_deadline(p, p->up->connect_timeout_ms);
        return;
    }
    p->state = PX_SENDING;
    send_head_and_body(p);
}

/* The pooled connection was dead: the server closed it while we reused it.
 * Same server, fresh connection, not a retry. Safe when the server cannot
 * have acted on the request: nothing of it was written (is_unsent), or it
 * is idempotent and no body byte left. Returns false otherwise. */
static bool replace_stale(struct wr_proxy *p, bool is_unsent)
{
    if (!p->is_reused || p->has_sent_body || p->ulen > 0)
        return false;
    if (!is_unsent && !p->is_idempotent)
        return false;
    const struct wr_listen_addr *addr = &p->up->servers[p->server].addr;
    wr_upconn_close(p->uc);
    p->uc = wr_pool_connect(p->env->pool, addr, p->up->tls_client, (size_t)p->server, on_upstream,
                            p);
    p->is_reused = false;
    p->head_sent = 0;
    if (!p->uc)
        return false;
    if (p->uc->is_connecting) {
        p->state = PX_CONNECTING;
        arm_deadline(p, p->up->connect_timeout_ms);
        return true;
    }
    p->state = PX_SENDING;
    send_head_and_body(p);
    return true;
}

/* ---- request going up -------------------------------------------------- */

/* Writes the rest of the head and pending framing. Returns 1 when all went,
 * 0 when the socket is full, -1 on error (errno). */
static int flush_head(struct wr_proxy *p)
{
    while (p->head_sent < p->head_len || p->pend_off < p->pend_len) {
        struct iovec iov[2];
        int n = 0;
        if (p->head_sent < p->head_len)
            iov[n++] = (struct iovec){p->hbuf + p->head_sent, p->head_len - p->head_sent};
        if (p->pend_off < p->pend_len)
            iov[n++] = (struct iovec){p->pend + p->pend_off, p->pend_len - p->pend_off};
        ssize_t w = wr_upconn_writev(p->uc, iov, n);
        if (w < 0)
            return errno == EAGAIN ? 0 : -1;
        size_t k = (size_t)w;
        size_t h = p->head_len - p->head_sent;
        if (k >= h) {
            p->head_sent = p->head_len;
            p->pend_off += k - h;
        } else {
            p->head_sent += k;
        }
    }
    p->pend_len = p->pend_off = 0;
    return 1;
}

static void on_send_error(struct wr_proxy *p)
{
    char why[96];
    snprintf(why, sizeof(why), "send: %s", strerror(errno));
    if (replace_stale(p, p->head_sent == 0))
        return;
    fail_attempt(p, 502, false, why);
}

/* An h2 tunnel's client ended its half (END_STREAM): so does weir toward
 * the server (TLS close_notify, then SHUT_WR), once a waiting TLS record
 * went out; the server's half goes on until it closes. */
static void shut_upstream(struct wr_proxy *p)
{
    p->is_shut_owed = false;
    if (wr_upconn_shutdown(p->uc) < 0 && errno == EAGAIN) {
        p->is_shut_owed = true;
        wr_upconn_want_write(p->uc, true);
    }
}

/* After a connect or a writable event: push what is owed. */
static void send_head_and_body(struct wr_proxy *p)
{
    int r = flush_head(p);
    if (r < 0) {
        on_send_error(p);
        return;
    }
    wr_upconn_want_write(p->uc, r == 0);
    if (r == 0) {
        arm_deadline(p, p->up->send_timeout_ms);
        return;
    }
    arm_wait_deadline(p);
    if (p->is_shut_owed)
        shut_upstream(p);
    if (p->is_body_blocked) {
        p->is_body_blocked = false;
        wr_exchange_body_room(p->ex);
    }
}

static void set_pend(struct wr_proxy *p, const char *s, size_t n)
{
    memcpy(p->pend + p->pend_len, s, n);
    p->pend_len += n;
}


/* An h2 tunnel's client bytes: to the server as they are, once the 101
 * came (the client waits for our 200; bytes it sent early wait in the
 * front end, their window not given back). */
static ssize_t tunnel_recv(struct wr_proxy *p, const char *data, size_t len, bool is_last)
{
    if (!p->is_tunnel_open || !p->uc || p->is_shut_owed) {
        p->is_body_blocked = true;
        return -1;
    }
    size_t taken = 0;
    if (len > 0) {
        struct iovec iov = {(void *)data, len};
        ssize_t w = wr_upconn_writev(p->uc, &iov, 1);
        if (w < 0 && errno != EAGAIN) {
            release_upstream(p, false); /* the server went: so does the tunnel */
            finish(p, WR_EXCHANGE_BROKEN);
            return (ssize_t)len;
        }
        taken = w > 0 ? (size_t)w : 0;
        if (taken > 0 && p->deadline_ms != 0)
            arm_deadline(p, p->idle_timeout_ms); /* bytes either way keep it open */
    }
    if (taken < len) {
        p->is_body_blocked = true;
        wr_upconn_want_write(p->uc, true);
        return (ssize_t)taken;
    }
    if (is_last) {
        p->is_body_done = true;
        shut_upstream(p);
    }
    return (ssize_t)taken;
}

/* The handler's recv_body: request body bytes, framed for the server. */
static ssize_t proxy_recv_body(struct wr_exchange *ex, const char *data, size_t len, bool is_last)
{
    struct wr_proxy *p = ex->state;
    if (p->state == PX_FINISHED || p->state == PX_TUNNEL || p->is_body_done)
        return (ssize_t)len; /* nobody wants it any more: the front end discards it */
    if (p->is_h2_tunnel)
        return tunnel_recv(p, data, len, is_last);
    if (p->state == PX_CONNECTING || !p->uc || p->head_sent < p->head_len || p->pend_len > 0) {
        p->is_body_blocked = true;
        return -1;
    }
    size_t taken = 0;
    char hdr[24];
    size_t hdr_len = 0;
    if (p->is_body_chunked && p->chunk_left == 0 && len > 0) {
        hdr_len = wr_h1_chunk_size_line(hdr, len);
        p->chunk_left = len;
    }
    size_t data_len = p->is_body_chunked ? (len < p->chunk_left ? len : p->chunk_left) : len;
    const char *tail = NULL;
    size_t tail_len = 0;
    bool closes_chunk = p->is_body_chunked && data_len == p->chunk_left && data_len > 0;
    if (p->is_body_chunked && is_last && data_len == len)
        tail = closes_chunk ? "\r\n0\r\n\r\n" : "0\r\n\r\n", tail_len = closes_chunk ? 7 : 5;
    else if (closes_chunk)
        tail = "\r\n", tail_len = 2;
    struct iovec iov[3];
    int n = 0;
    if (hdr_len)
        iov[n++] = (struct iovec){hdr, hdr_len};
    if (data_len)
        iov[n++] = (struct iovec){(void *)data, data_len};
    if (tail_len)
        iov[n++] = (struct iovec){(void *)tail, tail_len};
    if (n == 0) {
        p->is_body_done = is_last;
        return 0;
    }
    ssize_t w = wr_upconn_writev(p->uc, iov, n);
    if (w < 0) {
        if (errno != EAGAIN) {
            p->is_body_blocked = true; /* if a fresh connection takes over, it asks again */
            on_send_error(p);
            return p->state == PX_FINISHED ? (ssize_t)len : -1;
        }
        if (hdr_len)
            p->chunk_left = 0;
        p->is_body_blocked = true;
        wr_upconn_want_write(p->uc, true);
        arm_deadline(p, p->up->send_timeout_ms);
        return -1;
    }
    p->has_sent_body = true;
    size_t k = (size_t)w;
    /* Whatever framing was not written waits in pend; data counts as taken. */
    if (k < hdr_len) {
        set_pend(p, hdr + k, hdr_len - k);
        k = 0;
    } else {
        k -= hdr_len;
    }
    taken = k < data_len ? k : data_len;
    k -= taken;
    if (p->is_body_chunked)
        p->chunk_left -= taken;
    if (taken == data_len && tail_len > k)
        set_pend(p, tail + k, tail_len - k);
    if (taken == len && is_last)
        p->is_body_done = true;
    if (taken < len || p->pend_len > 0) {
        p->is_body_blocked = taken < len;
        wr_upconn_want_write(p->uc, true);
        arm_deadline(p, p->up->send_timeout_ms);
    } else {
        arm_wait_deadline(p);
    }
    return (ssize_t)taken;
}

/* ---- response coming down --------------------------------------------- */

static bool status_has_body(int status)
{
    return status >= 200 && status != 204 && status != 304;
}

/* True when the upstream's field name is not relayed: hop-by-hop and
 * framing fields (weir frames the response itself), Date and Server (weir's
 * own, unless server_header = off), and the route's hide_header names. */
static bool is_dropped_response_field(const struct wr_proxy *p, const struct hop_set *hs,
                                      struct wr_str name, bool is_error)
{
    if (is_hop(hs, name))
        return true;
    if (is_field_named(name, "Content-Length") || is_field_named(name, "Date"))
        return true;
    if (p->is_tunnel_open && is_field_named(name, "Sec-WebSocket-Accept"))
        return true; /* RFC 8441 §5: HTTP/2's handshake has none */
    if (p->env->is_server_header_on && is_field_named(name, "Server"))
        return true;
    const struct wr_route *route = p->route;
    for (size_t i = 0; i < route->n_hide_headers; i++) {
        if (is_field_named(name, route->hide_headers[i]))
            return true;
    }
    /* set_response_header, and add_header of a one-value field: the
     * route's field replaces the upstream's rather than doubling it. */
    for (size_t i = 0; i < route->n_add_headers; i++) {
        const struct wr_header_cfg *h = &route->add_headers[i];
        if (h->is_replace && (!is_error || h->is_always) && is_field_named(name, h->name))
            return true;
    }
    return false;
}

/* Builds the client's head in ex->resp, on hbuf (the request head is no
 * longer needed: no retry once a response began): the upstream's fields
 * weir relays and the route's add_header, and the body's length when the
 * upstream gave one. The front end writes the status line and framing.
 * Returns false when it did not fit (with the room the front end needs). */
static bool build_client_head(struct wr_proxy *p)
{
    struct wr_resp *r = p->ex->resp;
    wr_resp_init(r, p->hbuf, p->hbuf_cap);
    /* RFC 8441 §5: an HTTP/2 client's tunnel opens with 200, not 101. */
    wr_resp_start(r, p->is_tunnel_open ? 200 : p->resp.status, p->env->clock);
    /* add_header appends to the upstream's fields (as nginx's does), but
     * replaces weir's own Server and Date like on every other route. */
    const struct wr_route *route = p->route;
    bool is_error = r->status >= 400;
    wr_resp_drop_fields(r, (is_error ? route->replaced_fields_always : route->replaced_fields) |
                               route->hidden_fields);
    struct hop_set hs;
    hop_set_init(&hs, p->resp.headers, p->resp.n_headers);
    for (size_t i = 0; i < p->resp.n_headers; i++) {
        const struct wr_http_header *h = &p->resp.headers[i];
        if (is_dropped_response_field(p, &hs, h->name, is_error))
            continue;
        wr_resp_raw(r, h->name);
        wr_resp_raw(r, WR_STR(": "));
        wr_resp_raw(r, h->value);
        wr_resp_raw(r, WR_STR("\r\n"));
    }
    wr_resp_raw(r, (struct wr_str){p->add_hdrs, is_error ? p->add_hdrs_always_len
                                                         : p->add_hdrs_len});
    if (p->state == PX_TUNNEL)
        wr_resp_raw(r, WR_STR("Upgrade: websocket\r\n"));
    r->has_length =
        p->framing == RF_LENGTH || (p->resp.has_content_length && p->framing == RF_NONE);
    r->body_len = p->resp.content_length;
    return !r->is_overflow && r->head_cap - r->head_len >= WR_RESP_FRAMING_ROOM;
}

/* Decides the upstream side's framing once the head is known (the
 * client's is the front end's: h1_framing). */
static void choose_framing(struct wr_proxy *p)
{
    const struct wr_http_response *resp = &p->resp;
    if (p->is_head_req || !status_has_body(resp->status))
        p->framing = RF_NONE;
    else if (resp->is_chunked)
        p->framing = RF_CHUNKED;
    else if (resp->has_content_length)
        p->framing = RF_LENGTH;
    else
        p->framing = RF_CLOSE;
    p->resp_left = resp->content_length;
    wr_http_chunked_init(&p->chunked);
    p->is_upstream_reusable = resp->is_keep_alive && p->framing != RF_CLOSE;
}

/* The response is complete (all body bytes emitted or none due). */
static void complete(struct wr_proxy *p)
{
    struct wr_metrics_server *sm = server_metrics(p, p->server);
    if (sm)
        wr_metrics_observe(&sm->duration, wr_clock_now_us() - p->start_us);
    bool is_reusable = p->is_upstream_reusable && p->ustart == p->ulen && p->is_body_done &&
                       p->up->send_proxy_protocol == 0;
    release_upstream(p, is_reusable);
    finish(p, WR_EXCHANGE_COMPLETE);
}

/* Sends body bytes; returns true when the sink is done with them already
 * (ubuf free again), else proceed (wr_proxy's on_proceed) follows. */
static bool emit(struct wr_proxy *p, const struct iovec *iov, int n, bool is_final)
{
    p->is_emit_pending = !wr_exchange_send(p->ex, iov, n, is_final);
    return !p->is_emit_pending;
}

static bool proxy_can_recv_body(struct wr_exchange *ex)
{
    struct wr_proxy *p = ex->state;
    if (p->is_h2_tunnel) {
        bool is_open = p->is_tunnel_open && p->uc && !p->is_shut_owed;
        p->is_body_blocked |= !is_open;
        return is_open;
    }
    bool is_ready = p->state == PX_SENDING && p->uc && p->head_sent == p->head_len &&
                    p->pend_len == 0;
    /* Still connecting or writing the head: send_head_and_body calls
     * body_room() once the head is out. */
    if (!is_ready && (p->state == PX_CONNECTING || p->state == PX_SENDING))
        p->is_body_blocked = true;
    return is_ready;
}

static void proxy_proceed(struct wr_exchange *ex)
{
    struct wr_proxy *p = ex->state;
    bool was_pending = p->is_emit_pending;
    p->is_emit_pending = false;
    if (!was_pending || p->state != PX_BODY_DOWN || !p->uc)
        return;
    /* Called from the front end's next event: resume relaying. */
    if (p->uc->is_read_paused) {
        p->ustart = p->ulen = 0;
        wr_upconn_pause_read(p->uc, false);
        arm_deadline(p, read_timeout(p));
        relay_body(p);
    }
}

/* Collects the next run of body bytes in ubuf[ustart..ulen) into iov
 * (payload only: the front end frames it). Returns the count; sets *is_end
 * when the response body ends there, *is_bad on a broken chunked body. */
static int collect_body(struct wr_proxy *p, struct iovec *iov, bool *is_end, bool *is_bad)
{
    int n = 0;
    *is_end = *is_bad = false;
    if (p->framing == RF_LENGTH || p->framing == RF_CLOSE) {
        size_t avail = p->ulen - p->ustart;
        size_t take = avail;
        if (p->framing == RF_LENGTH && take > p->resp_left)
            take = (size_t)p->resp_left;
        if (take > 0)
            iov[n++] = (struct iovec){p->ubuf + p->ustart, take};
        p->ustart += take;
        if (p->framing == RF_LENGTH) {
            p->resp_left -= take;
            *is_end = p->resp_left == 0;
        }
        return n;
    }
    while (n < MAX_PIECES && p->ustart < p->ulen && !p->chunked.is_done) {
        struct wr_str data;
        ssize_t k = wr_http_chunked_parse(&p->chunked, p->ubuf + p->ustart, p->ulen - p->ustart,
                                          &data);
        if (k < 0) {
            *is_bad = true;
            return n;
        }
        p->ustart += (size_t)k;
        if (data.len > 0)
            iov[n++] = (struct iovec){(void *)data.ptr, data.len};
    }
    *is_end = p->chunked.is_done;
    return n;
}

/* Relays body bytes in ubuf; reads more while the client keeps up. */
static void relay_body(struct wr_proxy *p)
{
    for (;;) {
        struct iovec iov[MAX_PIECES];
        bool is_end, is_bad;
        int n = collect_body(p, iov, &is_end, &is_bad);
        if (is_bad) {
            upstream_warn(p, "upstream %s: bad chunked body from %s",
                          p->up->name, server_label(p));
            wr_upstream_report(p->up, p->server, false, wr_clock_now_ms());
            release_upstream(p, false);
            /* Nothing reached the client yet (the head was to go out with
             * these body bytes): it can still get a clear 502 instead of a
             * bare close. Otherwise the cut is the only honest signal. */
            finish(p, p->is_head_pending ? 502 : WR_EXCHANGE_BROKEN);
            return;
        }
        if (p->is_head_pending) {
            /* The head goes out with the first body bytes, in one write. */
            p->is_head_pending = false;
            wr_exchange_send_head(p->ex);
        }
        /* The last bytes carry the end (the front end adds its framing's
         * end to the same write); an end with no bytes is the end call. */
        bool is_written = n == 0 || emit(p, iov, n, is_end);
        if (is_end) {
            p->is_body_done = p->is_body_done || !p->has_body;
            complete(p);
            return;
        }
        if (p->ustart < p->ulen && is_written)
            continue; /* more chunks in the buffer */
        if (!is_written) {
            /* The client is slower than the server: stop reading until the
             * front end has written what points into ubuf. */
            wr_upconn_pause_read(p->uc, true);
            p->deadline_ms = 0;
            return;
        }
        p->ustart = p->ulen = 0;
        return; /* wait for the next readable event */
    }
}

static void start_tunnel_head(struct wr_proxy *p, size_t head_end);

/* A final head in ubuf[0..head_end) answers the client with status (its
 * framing chosen): the server counts as working, the client's head is
 * built (502 when it does not fit), the body follows. Returns false when
 * the exchange ended. */
static bool take_response_head(struct wr_proxy *p, int status, size_t head_end)
{
    wr_upstream_report(p->up, p->server, true, wr_clock_now_ms());
    p->head_us = wr_clock_now_us();
    p->status = status;
    p->ex->log.upstream_time_us = p->head_us - p->start_us;
    if (!build_client_head(p)) {
        upstream_warn(p, "upstream %s: response head from %s too large for the client",
                      p->up->name, server_label(p));
        release_upstream(p, false);
        finish(p, 502);
        return false;
    }
    p->state = PX_BODY_DOWN;
    p->ustart = head_end;
    return true;
}

/* The server took an h2 client's WebSocket (a 101 in ubuf[0..head_end)):
 * checked against our key, the client gets 200 now (it sends nothing
 * before), then the tunnel's bytes are the two bodies (is_h2_tunnel). */
static void open_h2_tunnel(struct wr_proxy *p, size_t head_end)
{
    const struct wr_http_header *accept = NULL;
    for (size_t i = 0; i < p->resp.n_headers && !accept; i++) {
        if (is_field_named(p->resp.headers[i].name, "Sec-WebSocket-Accept"))
            accept = &p->resp.headers[i];
    }
    if (!accept || !wr_ws_accept_matches(wr_str_from_cstr(p->ws_key), accept->value)) {
        upstream_warn(p, "upstream %s: %s answered the WebSocket handshake without the "
                      "right Sec-WebSocket-Accept", p->up->name, server_label(p));
        release_upstream(p, false);
        finish(p, 502);
        return;
    }
    p->is_tunnel_open = true;
    p->framing = RF_CLOSE; /* the server's bytes, until it closes */
    p->is_upstream_reusable = false;
    if (!take_response_head(p, 200, head_end))
        return;
    arm_deadline(p, p->idle_timeout_ms);
    wr_exchange_send_head(p->ex);
    if (p->is_body_blocked) {
        p->is_body_blocked = false;
        wr_exchange_body_room(p->ex); /* the client's bytes may flow now */
    }
    if (p->state == PX_BODY_DOWN)
        relay_body(p); /* bytes the server sent behind its 101 */
}

/* A complete response head sits in ubuf[0..head_end). */
static void on_response_head(struct wr_proxy *p, size_t head_end)
{
    int status = p->resp.status;
    if (status == 101 || status >= 200)
        log_attempt_end(&p->log, status);
    if (status == 101) {
        if (p->is_h2_tunnel && p->resp.has_conn_upgrade) {
            open_h2_tunnel(p, head_end);
            return;
        }
        if (p->is_websocket && p->resp.has_conn_upgrade) {
            start_tunnel_head(p, head_end);
            return;
        }
        /* A switch we did not ask for: nothing sane can follow. */
        upstream_warn(p, "upstream %s: unrequested 101 from %s", p->up->name, server_label(p));
        release_upstream(p, false);
        finish(p, 502);
        return;
    }
    if (status < 200) {
        /* 100 Continue (we answered the client ourselves) and other 1xx:
         * dropped; the final head follows. */
        memmove(p->ubuf, p->ubuf + head_end, p->ulen - head_end);
        p->ulen -= head_end;
        p->scanned = 0;
        return;
    }
    choose_framing(p);
    if (!take_response_head(p, status, head_end))
        return;
    if (p->framing == RF_NONE) {
        wr_exchange_send_head(p->ex);
        p->is_body_done = p->is_body_done || !p->has_body;
        complete(p);
        return;
    }
    p->is_head_pending = true;
    relay_body(p);
}

/* The server's stream ended during the body: err 0 for a clean end (TCP
 * EOF, or TLS close_notify), else why not. That completes only a body
 * delimited by the close; on TLS a bare TCP EOF does not (RFC 9112 §9.8:
 * without close_notify the response may have been truncated, by the
 * server or by an attacker), so the client is cut, never handed a
 * terminating chunk. */
static void end_body_stream(struct wr_proxy *p, int err)
{
    if (p->framing == RF_CLOSE && err == 0) {
        p->is_upstream_reusable = false;
        p->is_body_done = p->is_body_done || !p->has_body;
        complete(p);
        return;
    }
    if (err == WR_TLS_ETRUNCATED)
        upstream_warn(p, "upstream %s: %s closed the connection without TLS close_notify "
                      "mid-body: the response may be truncated, the client connection is cut",
                      p->up->name, server_label(p));
    else
        upstream_warn(p, "upstream %s: %s closed the connection mid-body",
                      p->up->name, server_label(p));
    release_upstream(p, false);
    finish(p, WR_EXCHANGE_BROKEN);
}

static void read_upstream(struct wr_proxy *p)
{
    if (take_ubuf(p) < 0) {
        release_upstream(p, false);
        finish(p, 503);
        return;
    }
    ssize_t n = wr_upconn_read(p->uc, p->ubuf + p->ulen, UBUF_CAP - p->ulen);
    if (n < 0 && errno == EAGAIN)
        return;
    if (n <= 0) {
        int err = n < 0 ? errno : 0;
        if (p->state == PX_BODY_DOWN) {
            end_body_stream(p, err);
            return;
        }
        char why[96];
        snprintf(why, sizeof(why), "%s before the response head",
                 err == WR_TLS_ETRUNCATED ? "closed without TLS close_notify"
                 : err                    ? strerror(err)
                                          : "closed");
        if (p->ulen == 0 && replace_stale(p, false))
            return;
        fail_attempt(p, 502, false, why);
        return;
    }
    p->ulen += (size_t)n;
    arm_deadline(p, read_timeout(p));
    if (p->state == PX_BODY_DOWN) {
        relay_body(p);
        return;
    }
    struct wr_http_limits limits = {.max_head_bytes = p->max_head_bytes};
    for (;;) {
        ssize_t h = wr_http_parse_response(p->ubuf, p->ulen, p->scanned, &limits, &p->resp);
        if (h == WR_AGAIN) {
            p->scanned = p->ulen;
            return;
        }
        if (h == WR_ERROR) {
            log_attempt_end(&p->log, 502);
            upstream_warn(p, "upstream %s: malformed response head from %s",
                          p->up->name, server_label(p));
            wr_upstream_report(p->up, p->server, false, wr_clock_now_ms());
            release_upstream(p, false);
            finish(p, 502);
            return;
        }
        size_t before = p->ulen;
        on_response_head(p, (size_t)h);
        if (p->ulen == before || p->ulen == 0 || p->state != PX_SENDING)
            return; /* a final head was handled (p may be gone) */
    }
}

static void on_upstream(struct wr_upconn *uc, short what, void *arg)
{
    (void)uc;
    struct wr_proxy *p = arg;
    if (p->state == PX_CONNECTING) {
        char why[192];
        if (wr_upconn_connect_error(p->uc, why, sizeof(why)) != 0) {
            fail_attempt(p, 502, true, why);
            return;
        }
        p->state = PX_SENDING;
        send_head_and_body(p);
        return;
    }
    if (p->state == PX_TUNNEL)
        return; /* never: the relay took the connection's events (wr_upconn_detach) */
    if (what & EV_WRITE) {
        send_head_and_body(p);
        if (p->state == PX_FINISHED)
            return;
    }
    if (what & EV_READ)
        read_upstream(p);
}

/* ---- start, deadlines ------------------------------------------------- */

static bool is_idempotent(enum wr_http_method m)
{
    return m == WR_HTTP_GET || m == WR_HTTP_HEAD || m == WR_HTTP_PUT || m == WR_HTTP_DELETE ||
           m == WR_HTTP_OPTIONS || m == WR_HTTP_TRACE;
}

/* The handler's start: an exchange for ex's proxy route (ex->state). */
static int proxy_start(struct wr_exchange *ex)
{
    struct wr_proxy_env *env = ex->worker_state;
    const struct wr_http_request *req = ex->req;
    size_t head_cap = req->target.len + HEAD_EXTRA;
    for (size_t i = 0; i < req->n_headers; i++)
        head_cap += req->headers[i].name.len + req->headers[i].value.len + 4;
    if (head_cap < ex->max_head_bytes + HEAD_EXTRA)
        head_cap = ex->max_head_bytes + HEAD_EXTRA; /* the response head's room too */
    struct wr_proxy *p = alloc_proxy(env, head_cap);
    if (!p)
        return 500;
    p->ex = ex;
    p->max_head_bytes = ex->max_head_bytes;
    p->up = ex->route->upstream;
    p->conn_id = ex->conn_id;
    if (init_tried(p) < 0) {
        free_proxy(p);
        return 500;
    }
    p->is_idempotent = is_idempotent(req->method_id);
    p->is_head_req = req->method_id == WR_HTTP_HEAD;
    p->has_body = ex->has_body;
    p->is_body_chunked = req->is_chunked;
    p->is_body_done = !ex->has_body;
    const struct wr_http_header *upgrade = wr_http_find_header(req, WR_STR("Upgrade"));
    p->is_websocket = ex->route->websocket &&
                      (req->is_extended_connect ||
                       (req->is_upgrade && upgrade &&
                        wr_str_list_has_token(upgrade->value, WR_STR("websocket"))));
    p->is_h2_tunnel = p->is_websocket && req->is_extended_connect;
    if (p->is_h2_tunnel && wr_ws_new_key(p->ws_key) < 0) {
        free_proxy(p);
        return 500;
    }
    p->idle_timeout_ms = ex->route->websocket_timeout_ms;
    p->hash_key = wr_upstream_hash_key(p->up, req, ex->client_addr);
    p->start_us = wr_clock_now_us();
    if (ex->log_subject)
        p->subject = *ex->log_subject;
    p->is_host_preserved = ex->route->preserve_host && req->host.len > 0;
    p->route = ex->route;
    if (build_request_head(p, ex) < 0 || expand_add_headers(p, ex) < 0) {
        wr_log_request(WR_LOG_ERROR, env->worker_id, ex->conn_id, ex->log_subject,
                       "upstream request head too large");
        free_proxy(p);
        return 500;
    }
    /* The access log's upstream fields: p's lists, valid until stop. */
    ex->log.upstream_addr = p->log.addrs;
    ex->log.upstream_status = p->log.statuses;
    ex->state = p;
    p->state = PX_SENDING;
    start_attempt(p); /* may end the exchange already (no server: 502) */
    return 0;
}

/* p's deadline passed: connect, send, read or tunnel idle timeout. */
static void time_out(struct wr_proxy *p, uint64_t now)
{
    p->deadline_ms = 0;
    switch (p->state) {
    case PX_CONNECTING:
        fail_attempt(p, 504, true, "connect timed out");
        return;
    case PX_SENDING:
        if (p->ulen == 0 && !p->has_sent_body && !p->is_body_blocked) {
            fail_attempt(p, 504, false, "timed out waiting for the response head");
            return;
        }
        log_attempt_end(&p->log, 504);
        upstream_warn(p, "upstream %s: %s timed out", p->up->name, server_label(p));
        wr_upstream_report(p->up, p->server, false, now);
        release_upstream(p, false);
        finish(p, 504);
        return;
    case PX_BODY_DOWN:
        if (!p->is_tunnel_open) /* an idle tunnel's end is no trouble */
            upstream_warn(p, "upstream %s: %s timed out sending the body",
                          p->up->name, server_label(p));
        release_upstream(p, false);
        finish(p, WR_EXCHANGE_BROKEN);
        return;
    case PX_TUNNEL: /* not armed while the relay runs: it has its own idle timer */
        stop_relay(p); /* before the upstream connection closes: it has events on it */
        release_upstream(p, false);
        finish(p, WR_EXCHANGE_BROKEN);
        return;
    case PX_FINISHED:
        return;
    }
}

/* p's timer fired: early (the deadline moved later) re-arms it. The
 * exchange may end here (done()); conn acts on its own next event. */
static void on_timer(struct wr_timer_wheel *w, struct wr_timer *t, uint64_t now_ms)
{
    struct wr_proxy *p = WR_TIMER_OWNER(t, struct wr_proxy, timer);
    if (p->deadline_ms == 0 || wr_timer_rearm_if_early(w, t, p->deadline_ms, now_ms))
        return;
    time_out(p, now_ms);
}

/* ---- tunnel ------------------------------------------------------------ */

static void start_tunnel_head(struct wr_proxy *p, size_t head_end)
{
    wr_upstream_report(p->up, p->server, true, wr_clock_now_ms());
    p->head_us = wr_clock_now_us();
    p->status = 101;
    p->ex->log.upstream_time_us = p->head_us - p->start_us;
    p->state = PX_TUNNEL;
    if (!build_client_head(p)) {
        release_upstream(p, false);
        finish(p, 502);
        return;
    }
    p->ustart = head_end;
    /* Bytes the server sent behind its head go out behind ours; until the
     * front end hands its stream over (proxy_upgraded) nothing moves. */
    struct iovec iov = {p->ubuf + head_end, p->ulen - head_end};
    wr_upconn_pause_read(p->uc, true);
    p->state = PX_FINISHED;
    p->deadline_ms = 0;
    wr_exchange_upgrade(p->ex, &iov, p->ulen > head_end ? 1 : 0);
}

static void end_tunnel(struct wr_proxy *p)
{
    stop_relay(p);
    release_upstream(p, false);
    finish(p, WR_EXCHANGE_BROKEN);
}

/* The relay ended (both sides closed, an error, or idle): so does the
 * exchange; the front end closes the client connection on its next event. */
static void on_relay_end(struct wr_relay *r, enum wr_relay_end why, void *arg)
{
    (void)r;
    (void)why;
    end_tunnel(arg);
}

/* The handler's upgraded: the 101 went out; a relay (relay.h) moves bytes
 * both ways between the client's stream (borrowed: the front end keeps
 * owning it and closes it after stop) and the upstream connection's,
 * passing a half-close on, with websocket_timeout as its idle timeout. The
 * client's bytes count in the worker's bytes_in/bytes_out as they move. */
static void proxy_upgraded(struct wr_exchange *ex, const struct wr_exchange_tunnel *t)
{
    struct wr_proxy *p = ex->state;
    p->subject = (struct wr_log_request){0}; /* the front end releases the head now */
    p->state = PX_TUNNEL;
    p->deadline_ms = 0; /* the relay keeps the idle timeout */
    struct wr_relay_cfg cfg = {.buf_bytes = UBUF_CAP, .idle_timeout_ms = p->idle_timeout_ms};
    struct wr_metrics_worker *m = p->env->henv->metrics;
    if (m) {
        cfg.read_counter[0] = &m->bytes_in;
        cfg.written_counter[0] = &m->bytes_out;
    }
    if (!p->uc) { /* the upstream failed while the 101 was being written */
        end_tunnel(p);
        return;
    }
    struct wr_stream *up = wr_upconn_detach(p->uc);
    p->relay = malloc(sizeof(*p->relay));
    if (!p->relay || wr_relay_init(p->relay, p->env->base, p->env->wheel, t->client, up, &cfg,
                                   t->pending_len, on_relay_end, p) < 0) {
        end_tunnel(p); /* fini is safe after a failed init */
        return;
    }
    wr_relay_start(p->relay, t->pending, t->pending_len, NULL, 0);
}

/* ---- the handler's per-worker state ----------------------------------- */

static void free_env(struct wr_proxy_env *env)
{
    if (!env)
        return;
    while (env->free_list) {
        struct wr_proxy *p = env->free_list;
        env->free_list = p->next_free;
        free(p->tried_heap);
        free(p);
    }
    wr_pool_free(env->pool); /* after every exchange gave its connection back */
    wr_buf_pool_fini(&env->ubufs);
    wr_balancer_free(env->balancer);
    free(env);
}

static int proxy_worker_init(struct wr_handler_worker *hw)
{
    const struct wr_handler_env *henv = hw->env;
    struct wr_proxy_env *env = calloc(1, sizeof(*env));
    if (!env)
        return -1;
    env->henv = henv;
    env->base = henv->base;
    env->wheel = henv->wheel;
    env->clock = henv->clock;
    env->worker_id = henv->worker_id;
    env->is_server_header_on = henv->cfg->server.server_header != NULL;
    env->pool = wr_pool_new(henv->base);
    wr_buf_pool_init(&env->ubufs, UBUF_CAP, MAX_FREE_PROXIES);
    env->balancer = wr_balancer_new(henv->cfg);
    if (!env->pool || !env->balancer) {
        free_env(env);
        return -1;
    }
    hw->state = env;
    return 0;
}

static void proxy_worker_fini(struct wr_handler_worker *hw)
{
    free_env(hw->state);
    hw->state = NULL;
}

/* The balancer follows the current snapshot; exchanges in flight keep
 * their upstream's config (the balancer is keyed by it). */
static int proxy_config_changed(struct wr_handler_worker *hw, const struct wr_config *cfg)
{
    struct wr_proxy_env *env = hw->state;
    struct wr_balancer *balancer = wr_balancer_new(cfg);
    if (!balancer)
        return -1;
    wr_balancer_free(env->balancer);
    env->balancer = balancer;
    env->is_server_header_on = cfg->server.server_header != NULL;
    return 0;
}

/* The pool keeps the server entries of the snapshots still in use only. */
static void proxy_snapshots_in_use(struct wr_handler_worker *hw,
                                   const struct wr_config *const *cfgs, size_t n)
{
    struct wr_proxy_env *env = hw->state;
    for (size_t i = 0; i < n; i++)
        wr_pool_keep(env->pool, cfgs[i]);
    wr_pool_sweep(env->pool);
}

/* Once a second, frees half of the exchanges that stayed on the free list
 * the whole second (each holds a head buffer; upstream response buffers
 * are a buf_pool of their own, trimmed alike): after a burst
 * the list decays towards what the load uses (as buf_pool.h does). */
static void trim_free_list(struct wr_proxy_env *env, uint64_t now_ms)
{
    if (now_ms - env->trimmed_ms < 1000)
        return;
    env->trimmed_ms = now_ms;
    for (size_t n = (env->low_free + 1) / 2; n > 0 && env->free_list; n--) {
        struct wr_proxy *p = env->free_list;
        env->free_list = p->next_free;
        env->n_free--;
        free(p->tried_heap);
        free(p);
    }
    env->low_free = env->n_free;
    wr_buf_pool_trim(&env->ubufs);
}

static void proxy_tick(struct wr_handler_worker *hw, uint64_t now_ms)
{
    struct wr_proxy_env *env = hw->state;
    wr_pool_tick(env->pool, now_ms);
    trim_free_list(env, now_ms);
    if (hw->env->metrics) {
        const struct wr_pool_stats *ps = wr_pool_stats(env->pool);
        wr_metrics_set(&hw->env->metrics->pool_entries, ps->n_servers);
        wr_metrics_set(&hw->env->metrics->pool_idle, ps->n_idle);
        wr_metrics_set(&hw->env->metrics->proxy_buffer_bytes, env->ubuf_bytes);
    }
}

/* The handler's stop: ends the exchange at once (client gone, or done)
 * and frees it. */
static void proxy_stop(struct wr_exchange *ex)
{
    free_proxy(ex->state);
}

const struct wr_handler wr_proxy_handler = {
    .name = "proxy",
    .start = proxy_start,
    .proceed = proxy_proceed,
    .recv_body = proxy_recv_body,
    .can_recv_body = proxy_can_recv_body,
    .upgraded = proxy_upgraded,
    .stop = proxy_stop,
    .worker_init = proxy_worker_init,
    .worker_fini = proxy_worker_fini,
    .config_changed = proxy_config_changed,
    .snapshots_in_use = proxy_snapshots_in_use,
    .tick = proxy_tick,
};
