/*
 * admin: accept, read one request head, answer from the metrics, close.
 *
 * Not here: the counters or their formats (metrics), binding rules
 * (listener). Invariants: everything runs on main's thread; a connection
 * owns its fd and its answer buffer and is freed only by admin_close; every
 * connection has an absolute deadline (a client trickling bytes cannot keep
 * a slot) and the number of connections is capped.
 */
#include "weir/admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "weir/auth.h"
#include "weir/cache_disk.h"
#include "weir/cache_store.h"
#include "weir/clock.h"
#include "weir/http_parser.h"
#include "weir/http_resp.h"
#include "weir/log.h"

#define ADMIN_MAX_HEAD 8192
#define ADMIN_MAX_CONNS 32
#define ADMIN_TIMEOUT_MS 10000
#define ADMIN_MAX_ACCEPTS 16 /* per wake-up */

struct admin_conn {
    struct wr_admin *admin; /* borrowed */
    struct admin_conn *prev, *next;
    struct event *ev;       /* owned: read, then write; re-added with the time left */
    int fd;                 /* owned */
    uint64_t deadline_ms;   /* monotonic */
    bool is_writing;
    const char *allow;      /* a 405's Allow line */
    struct wr_metrics_text out; /* head and body, once answered */
    size_t out_off;
    size_t in_len;
    char in[ADMIN_MAX_HEAD];
};

struct wr_admin {
    struct event_base *base;            /* borrowed: main's */
    struct wr_metrics *metrics;         /* borrowed */
    const struct wr_metrics_rate *rate; /* borrowed */
    int fd;                             /* owned listening socket, -1 when none */
    struct wr_listen_addr addr;
    bool is_inherited;
    struct event *accept_ev;            /* owned, NULL when not listening */
    struct admin_conn *conns;           /* open connections (doubly linked) */
    size_t n_conns;
    struct wr_http_request req;         /* scratch: one head is parsed at a time */
    const struct wr_admin_cfg *cfg;     /* borrowed: the current snapshot's [admin] */
    struct wr_auth_cache *auth;         /* owned: Basic auth's cache, made on first use */
    const struct wr_cache_cfg *caches;  /* borrowed: the current snapshot's */
    size_t n_caches;
};

static void on_admin_io(evutil_socket_t fd, short what, void *arg);

static void admin_close(struct admin_conn *ac)
{
    struct wr_admin *a = ac->admin;
    event_free(ac->ev);
    /* Drop what the client sent past its head, so the close is a FIN and
     * not a reset that could destroy the answer before it is read. */
    char sink[4096];
    ssize_t n = read(ac->fd, sink, sizeof(sink));
    (void)n;
    shutdown(ac->fd, SHUT_WR);
    close(ac->fd);
    wr_metrics_text_fini(&ac->out);
    if (ac->prev)
        ac->prev->next = ac->next;
    else
        a->conns = ac->next;
    if (ac->next)
        ac->next->prev = ac->prev;
    a->n_conns--;
    free(ac);
}

/* Waits for the next read or write within the connection's deadline.
 * Returns -1 when the deadline passed (ac is closed). */
static int rearm(struct admin_conn *ac)
{
    uint64_t now = wr_clock_now_ms();
    if (now >= ac->deadline_ms) {
        admin_close(ac);
        return -1;
    }
    uint64_t left = ac->deadline_ms - now;
    struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
    short what = ac->is_writing ? EV_WRITE : EV_READ;
    event_assign(ac->ev, ac->admin->base, ac->fd, what, on_admin_io, ac);
    if (event_add(ac->ev, &tv) < 0) {
        admin_close(ac);
        return -1;
    }
    return 0;
}

/* Queues the whole answer in ac->out: head, then body unless HEAD. */
static void answer(struct admin_conn *ac, int status, const char *content_type,
                   const struct wr_metrics_text *body, bool is_head)
{
    size_t body_len = body->is_oom ? 0 : body->len;
    if (body->is_oom) {
        status = 500;
        content_type = "text/plain; charset=utf-8";
    }
    wr_metrics_text_printf(&ac->out,
                           "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                           "Cache-Control: no-store\r\n%sConnection: close\r\n\r\n",
                           status, wr_resp_reason(status), content_type, body_len,
                           status == 405 ? ac->allow : "");
    if (!is_head && body_len > 0)
        wr_metrics_text_printf(&ac->out, "%.*s", (int)body_len, body->buf);
    ac->is_writing = true;
}

static void answer_text(struct admin_conn *ac, int status, const char *text, bool is_head)
{
    struct wr_metrics_text body = {0};
    wr_metrics_text_printf(&body, "%s\n", text);
    answer(ac, status, "text/plain; charset=utf-8", &body, is_head);
    wr_metrics_text_fini(&body);
}

/* [admin] auth_basic: whether the request's credentials check. */
static bool is_authorized(struct wr_admin *a, const struct wr_http_request *req)
{
    if (!a->auth)
        a->auth = wr_auth_cache_new(); /* NULL: checks run uncached */
    const struct wr_http_header *h = wr_http_find_header(req, WR_STR("Authorization"));
    const char *user;
    enum wr_auth_result r = wr_auth_basic_check(a->auth, a->cfg->auth_users, a->cfg->n_auth_users,
                                                h ? h->value : (struct wr_str){NULL, 0}, &user,
                                                wr_clock_now_ms());
    if (r == WR_AUTH_BAD)
        wr_log(WR_LOG_INFO, -1, 0, "admin: authentication failed");
    return r == WR_AUTH_OK;
}

/* 401 with the challenge. */
static void answer_401(struct admin_conn *ac, const char *challenge, bool is_head)
{
    static const char text[] = "authentication required\n";
    wr_metrics_text_printf(&ac->out,
                           "HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain; charset=utf-8"
                           "\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
                           "WWW-Authenticate: %s\r\nConnection: close\r\n\r\n%s",
                           sizeof(text) - 1, challenge, is_head ? "" : text);
    ac->is_writing = true;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = wr_str_lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes %XX escapes of s into out[0..cap); -1 on a bad escape or no
 * room. */
static ssize_t query_decode(struct wr_str s, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++, n++) {
        if (n >= cap)
            return -1;
        char c = s.ptr[i];
        if (c == '%') {
            int hi = i + 2 < s.len ? hex_value(s.ptr[i + 1]) : -1;
            int lo = hi >= 0 ? hex_value(s.ptr[i + 2]) : -1;
            if (lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        out[n] = c;
    }
    return (ssize_t)n;
}

/* DELETE /cache/NAME?key=KEY (every variant of that key) or
 * ?prefix=PREFIX (every key starting so): {"purged": N}. */
static void purge(struct admin_conn *ac, struct wr_str name)
{
    struct wr_admin *a = ac->admin;
    const struct wr_http_request *req = &a->req;
    const struct wr_cache_cfg *c = NULL;
    for (size_t i = 0; i < a->n_caches && !c; i++) {
        if (wr_str_eq(name, wr_str_from_cstr(a->caches[i].name)) && a->caches[i].store)
            c = &a->caches[i];
    }
    if (!c) {
        answer_text(ac, 404, "no such cache", false);
        return;
    }
    if (req->method_id != WR_HTTP_DELETE) {
        ac->allow = "Allow: DELETE\r\n";
        answer_text(ac, 405, "method not allowed: DELETE purges", false);
        return;
    }
    struct wr_str q = req->query;
    bool is_prefix = wr_str_has_prefix(q, WR_STR("prefix="));
    bool is_key = wr_str_has_prefix(q, WR_STR("key="));
    char text[ADMIN_MAX_HEAD];
    ssize_t n = -1;
    if (is_prefix || is_key) {
        size_t skip = is_key ? 4 : 7;
        n = query_decode((struct wr_str){q.ptr + skip, q.len - skip}, text, sizeof(text));
    }
    if (n < 0 || (is_key && n == 0)) {
        answer_text(ac, 400, "give ?key=KEY or ?prefix=PREFIX (percent-encoded)", false);
        return;
    }
    struct wr_str arg = {text, (size_t)n};
    size_t purged = is_key ? wr_cache_purge_key(c->store, arg) : wr_cache_purge_prefix(c->store, arg);
    size_t files = 0;
    if (c->disk) /* a walk of the tree for a prefix: slow, but on main's thread */
        files = is_key ? wr_cache_disk_remove_key(c->disk, arg)
                       : wr_cache_disk_remove_prefix(c->disk, arg);
    wr_log(WR_LOG_INFO, -1, 0, "admin: cache %s: purged %zu entries and %zu files by %s",
           c->name, purged, files, is_key ? "key" : "prefix");
    struct wr_metrics_text body = {0};
    if (c->disk)
        wr_metrics_text_printf(&body, "{\"purged\": %zu, \"files\": %zu}\n", purged, files);
    else
        wr_metrics_text_printf(&body, "{\"purged\": %zu}\n", purged);
    answer(ac, 200, "application/json", &body, false);
    wr_metrics_text_fini(&body);
}

/* The disk tiers' figures (sections with a path). */
static void format_disks(const struct wr_admin *a, struct wr_metrics_text *t)
{
    static const struct {
        const char *name, *type, *help;
    } families[] = {
        {"weir_cache_disk_bytes", "gauge", "Bytes of the disk tier's files."},
        {"weir_cache_disk_files", "gauge", "Responses the disk tier keeps."},
        {"weir_cache_disk_writes_total", "counter", "Files the disk tier wrote."},
        {"weir_cache_disk_dropped_total", "counter",
         "Entries not written: the writer's queue was full."},
        {"weir_cache_disk_evictions_total", "counter", "Files removed for max_disk_size."},
        {"weir_cache_disk_errors_total", "counter", "Writes that failed, and corrupt files."},
        {"weir_cache_disk_inactive_total", "counter",
         "Files removed as neither written nor hit within inactive."},
    };
    for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
        bool is_named = false;
        for (size_t i = 0; i < a->n_caches; i++) {
            if (!a->caches[i].disk)
                continue;
            if (!is_named)
                wr_metrics_text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", families[f].name,
                                       families[f].help, families[f].name, families[f].type);
            is_named = true;
            struct wr_cache_disk_stats s;
            wr_cache_disk_stats(a->caches[i].disk, &s);
            uint64_t v[] = {s.bytes, s.files, s.writes, s.dropped_puts, s.evictions,
                            s.write_errors + s.corrupt, s.expired};
            wr_metrics_text_printf(t, "%s{cache=\"%s\"} %llu\n", families[f].name,
                                   a->caches[i].name, (unsigned long long)v[f]);
        }
    }
}

/* The stores' own figures, behind the workers' counters in /metrics. */
static void format_caches(const struct wr_admin *a, struct wr_metrics_text *t)
{
    static const struct {
        const char *name, *type, *help;
    } families[] = {
        {"weir_cache_bytes", "gauge", "Bytes the cache stores (keys, heads, bodies)."},
        {"weir_cache_entries", "gauge", "Responses the cache stores."},
        {"weir_cache_evictions_total", "counter", "Entries evicted to make room."},
        {"weir_cache_inactive_total", "counter", "Entries removed as not hit within inactive."},
    };
    if (a->n_caches == 0)
        return;
    struct wr_cache_stats *stats = calloc(a->n_caches, sizeof(*stats));
    if (!stats)
        return;
    for (size_t i = 0; i < a->n_caches; i++) {
        if (a->caches[i].store)
            wr_cache_store_stats(a->caches[i].store, &stats[i]);
    }
    for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
        wr_metrics_text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", families[f].name,
                               families[f].help, families[f].name, families[f].type);
        for (size_t i = 0; i < a->n_caches; i++) {
            const struct wr_cache_stats *s = &stats[i];
            uint64_t v = f == 0 ? s->bytes : f == 1 ? s->entries : f == 2 ? s->evictions
                                                                         : s->inactive;
            wr_metrics_text_printf(t, "%s{cache=\"%s\"} %llu\n", families[f].name,
                                   a->caches[i].name, (unsigned long long)v);
        }
    }
    free(stats);
    format_disks(a, t);
}

/* The request in a->req is complete: pick the answer. */
static void route(struct admin_conn *ac)
{
    struct wr_admin *a = ac->admin;
    const struct wr_http_request *req = &a->req;
    bool is_metrics = wr_str_eq(req->path, WR_STR("/metrics"));
    bool is_status = wr_str_eq(req->path, WR_STR("/status"));
    bool is_cache = wr_str_has_prefix(req->path, WR_STR("/cache/"));
    bool is_head = req->method_id == WR_HTTP_HEAD;
    ac->allow = "Allow: GET, HEAD\r\n";
    if (a->cfg && a->cfg->auth_challenge && !is_authorized(a, req)) {
        answer_401(ac, a->cfg->auth_challenge, is_head);
        return;
    }
    if (is_cache) {
        purge(ac, (struct wr_str){req->path.ptr + 7, req->path.len - 7});
        return;
    }
    if (!is_metrics && !is_status) {
        answer_text(ac, 404, "not found: try /metrics or /status", is_head);
        return;
    }
    if (req->method_id != WR_HTTP_GET && !is_head) {
        answer_text(ac, 405, "method not allowed", false);
        return;
    }
    struct wr_metrics_text body = {0};
    if (is_metrics) {
        wr_metrics_format_prometheus(a->metrics, &body);
        format_caches(a, &body);
        answer(ac, 200, "text/plain; version=0.0.4; charset=utf-8", &body, is_head);
    } else {
        wr_metrics_format_status(a->metrics, a->rate, wr_clock_now_ms(), &body);
        answer(ac, 200, "application/json", &body, is_head);
    }
    wr_metrics_text_fini(&body);
}

/* Reads and parses. Returns -1 if ac was closed. */
static int on_readable(struct admin_conn *ac)
{
    ssize_t n = read(ac->fd, ac->in + ac->in_len, sizeof(ac->in) - ac->in_len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0) {
        admin_close(ac);
        return -1;
    }
    ac->in_len += (size_t)n;
    struct wr_http_limits limits = {.max_head_bytes = ADMIN_MAX_HEAD};
    struct wr_http_request *req = &ac->admin->req;
    ssize_t rc = wr_http_parse_request(ac->in, ac->in_len, 0, &limits, req);
    if (rc == WR_AGAIN && ac->in_len == sizeof(ac->in))
        answer_text(ac, 431, "request head too large", false);
    else if (rc == WR_ERROR)
        answer_text(ac, req->status ? req->status : 400, "bad request", false);
    else if (rc >= 0)
        route(ac);
    return 0;
}

/* Writes what is left. Returns -1 if ac was closed (all sent, or error). */
static int on_writable(struct admin_conn *ac)
{
    while (ac->out_off < ac->out.len) {
        ssize_t n = send(ac->fd, ac->out.buf + ac->out_off, ac->out.len - ac->out_off,
                         MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n <= 0)
            break;
        ac->out_off += (size_t)n;
    }
    admin_close(ac);
    return -1;
}

static void on_admin_io(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct admin_conn *ac = arg;
    if (what & EV_TIMEOUT) {
        admin_close(ac);
        return;
    }
    if (!ac->is_writing && on_readable(ac) < 0)
        return;
    if (ac->is_writing && on_writable(ac) < 0)
        return;
    rearm(ac);
}

static void take_conn(struct wr_admin *a, int fd)
{
    struct admin_conn *ac = malloc(sizeof(*ac));
    struct event *ev = ac ? event_new(a->base, -1, 0, on_admin_io, ac) : NULL;
    if (!ev) {
        free(ac);
        close(fd);
        return;
    }
    *ac = (struct admin_conn){.admin = a, .ev = ev, .fd = fd,
                              .deadline_ms = wr_clock_now_ms() + ADMIN_TIMEOUT_MS};
    ac->next = a->conns;
    if (a->conns)
        a->conns->prev = ac;
    a->conns = ac;
    a->n_conns++;
    rearm(ac);
}

void wr_admin_set_config(struct wr_admin *a, const struct wr_admin_cfg *cfg)
{
    a->cfg = cfg;
}

void wr_admin_set_caches(struct wr_admin *a, const struct wr_cache_cfg *caches, size_t n)
{
    a->caches = caches;
    a->n_caches = n;
}

/* Whether [admin] allow and deny let the client at peer in. */
static bool is_admitted(const struct wr_admin *a, const struct sockaddr_storage *peer)
{
    char text[INET6_ADDRSTRLEN] = "";
    if (peer->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, text, sizeof(text));
    else if (peer->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)peer)->sin6_addr, text, sizeof(text));
    return wr_access_allows(a->cfg->access, a->cfg->n_access, text);
}

static void on_admin_accept(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct wr_admin *a = arg;
    for (int i = 0; i < ADMIN_MAX_ACCEPTS; i++) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof(peer);
        int cfd = accept4(fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                wr_log(WR_LOG_ERROR, -1, 0, "admin accept: %s", strerror(errno));
            return;
        }
        if (a->cfg && a->cfg->n_access > 0 && !is_admitted(a, &peer)) {
            close(cfd); /* [admin] allow and deny keep it out */
            continue;
        }
        if (a->n_conns >= ADMIN_MAX_CONNS) {
            close(cfd); /* a scraper retries; the endpoint never grows unbounded */
            continue;
        }
        take_conn(a, cfd);
    }
}

struct wr_admin *wr_admin_new(struct event_base *base, struct wr_metrics *m,
                              const struct wr_metrics_rate *rate)
{
    struct wr_admin *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->base = base;
    a->metrics = m;
    a->rate = rate;
    a->fd = -1;
    return a;
}

static void stop_listening(struct wr_admin *a)
{
    if (a->accept_ev)
        event_free(a->accept_ev);
    a->accept_ev = NULL;
    if (a->fd >= 0) {
        if (a->addr.addr.ss_family == AF_UNIX && !a->is_inherited)
            unlink(((const struct sockaddr_un *)&a->addr.addr)->sun_path);
        close(a->fd);
    }
    a->fd = -1;
}

int wr_admin_listen_take(struct wr_admin *a, int fd, const struct wr_listen_addr *addr,
                         bool is_inherited)
{
    stop_listening(a);
    if (fd < 0)
        return 0;
    a->accept_ev = event_new(a->base, fd, EV_READ | EV_PERSIST, on_admin_accept, a);
    if (!a->accept_ev || event_add(a->accept_ev, NULL) < 0) {
        if (a->accept_ev)
            event_free(a->accept_ev);
        a->accept_ev = NULL;
        close(fd);
        return -1;
    }
    a->fd = fd;
    a->addr = *addr;
    a->is_inherited = is_inherited;
    return 0;
}

const struct wr_listen_addr *wr_admin_address(const struct wr_admin *a)
{
    return a->fd >= 0 ? &a->addr : NULL;
}

void wr_admin_free(struct wr_admin *a)
{
    if (!a)
        return;
    stop_listening(a);
    while (a->conns)
        admin_close(a->conns);
    wr_auth_cache_free(a->auth);
    free(a);
}
