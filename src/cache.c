/*
 * cache: the handler of proxy routes with cache = NAME (cache.h).
 *
 * An exchange here (struct cache_x) is in one of these modes:
 *  - HIT: the client reads a stored entry's head and body (the body may
 *    still be filling: it waits for more bytes through the store);
 *  - WAIT: another request holds the key's fill lock; the proxy exchange
 *    is prepared (its start ran while the vars lived) but not started;
 *  - FORWARD: the proxy runs in x->inner, whose sink is the tee below:
 *    the client gets the response, and the store gets it too when this
 *    request is the key's filler and the response is storable.
 * Invariants: store callbacks (struct wr_cache_waiter) run on any thread
 * and only queue x on its worker (on_notify); x is freed on its worker
 * only, and never while queued (is_dead hands it to the queue's reader).
 */
#include "weir/cache.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "weir/cache_policy.h"
#include "weir/cache_store.h"
#include "weir/clock.h"
#include "weir/http_cond.h"
#include "weir/metrics.h"
#include "weir/proxy.h"
#include "weir/timer.h"

#define KEY_MAX 2048
#define ROUTE_FIELDS_MAX 1024
#define MAX_FREE 64

/* What an entry's meta holds: freshness, the body's announced length,
 * the status, then the Vary names (vary_len bytes). */
struct cache_meta {
    struct wr_cache_fresh fresh;
    uint64_t body_len; /* Content-Length; UINT64_MAX: known once complete */
    int32_t status;
    uint32_t vary_len;
};

enum cx_mode { CX_NONE, CX_WAIT, CX_HIT, CX_FORWARD };

struct cache_worker;

struct cache_x {
    struct cache_x *next_free;
    struct cache_x *wnext;           /* on cw->woken */
    struct cache_worker *cw;
    struct wr_exchange *ex;          /* the client's (borrowed) */
    struct wr_cache_store *st;
    enum cx_mode mode;
    atomic_bool is_queued;           /* on cw->woken, not yet taken */
    bool is_dead;                    /* stopped while queued: the reader frees it */
    bool is_waiting_lock, is_waiting_body;
    bool is_match_off;               /* the lookup refuses every variant (revalidation) */
    bool is_filler;                  /* holds the key's fill lock */
    bool is_storing;                 /* fill_body takes the response body */
    bool is_stored;                  /* the response went into the store */
    bool is_collapsed;               /* waited for another request's response */
    bool is_inner_started;
    bool is_discarding;              /* a server error replaced by the stale entry */
    struct wr_cache_waiter waiter;
    struct wr_timer lock_timer;
    struct wr_cache_req creq;
    int64_t request_time;
    enum wr_cache_fwd fwd;
    const char *detail;
    struct wr_cache_entry *entry;    /* the hit being served (a reference) */
    struct wr_cache_cursor cursor;
    struct wr_cache_entry *stale;    /* kept for stale-if-error (a reference) */
    struct wr_cache_body *fill_body; /* a reference while storing */
    struct wr_exchange inner;        /* the proxy's */
    char *hbuf;                      /* hit heads; kept on the free list */
    size_t hbuf_cap;
    size_t key_len;
    size_t fields_len, fields_always_len;
    char key[KEY_MAX];
    char fields[ROUTE_FIELDS_MAX];   /* the route's response rules, expanded at start */
};

struct cache_worker {
    const struct wr_handler_env *henv;
    void *proxy_state;               /* the proxy handler's (inner exchanges) */
    int efd;
    struct event *ev;
    _Atomic(struct cache_x *) woken; /* pushed by on_notify, any thread */
    struct cache_x *free_list;
    size_t n_free;
};

static void on_lock_timeout(struct wr_timer_wheel *w, struct wr_timer *t, uint64_t now_ms);
static const struct wr_exchange_sink tee_sink;

static void count(const struct cache_x *x, enum wr_metrics_cache what)
{
    if (x->cw->henv->metrics)
        wr_metrics_add(&x->cw->henv->metrics->cache[what], 1);
}

static struct wr_str key_of(const struct cache_x *x)
{
    return (struct wr_str){x->key, x->key_len};
}

static void read_meta(const struct wr_cache_entry *e, struct cache_meta *m, struct wr_str *vary)
{
    struct wr_str meta = wr_cache_entry_meta(e);
    memcpy(m, meta.ptr, sizeof(*m));
    *vary = (struct wr_str){meta.ptr + sizeof(*m), m->vary_len};
}

/* ---- exchanges: allocation, the wake-up queue -------------------------- */

static struct cache_x *alloc_x(struct cache_worker *cw)
{
    struct cache_x *x = cw->free_list;
    char *hbuf = NULL;
    size_t hbuf_cap = 0;
    if (x) {
        cw->free_list = x->next_free;
        cw->n_free--;
        hbuf = x->hbuf;
        hbuf_cap = x->hbuf_cap;
    } else {
        x = malloc(sizeof(*x));
        if (!x)
            return NULL;
    }
    /* Only the fields before key[] need clearing: key and fields are
     * written before they are read. */
    memset(x, 0, offsetof(struct cache_x, key));
    x->cw = cw;
    x->hbuf = hbuf;
    x->hbuf_cap = hbuf_cap;
    atomic_init(&x->is_queued, false);
    wr_timer_init(&x->lock_timer, on_lock_timeout);
    return x;
}

static void free_x(struct cache_worker *cw, struct cache_x *x)
{
    if (cw->n_free >= MAX_FREE) {
        free(x->hbuf);
        free(x);
        return;
    }
    x->next_free = cw->free_list;
    cw->free_list = x;
    cw->n_free++;
}

/* A store callback (any thread, under a store lock): queue x on its
 * worker and wake it. Nothing else may happen here (cache_store.h). */
static void on_notify(void *arg)
{
    struct cache_x *x = arg;
    struct cache_worker *cw = x->cw;
    atomic_store_explicit(&x->is_queued, true, memory_order_relaxed);
    struct cache_x *head = atomic_load_explicit(&cw->woken, memory_order_relaxed);
    do {
        x->wnext = head;
    } while (!atomic_compare_exchange_weak_explicit(&cw->woken, &head, x, memory_order_release,
                                                    memory_order_relaxed));
    uint64_t one = 1;
    ssize_t n = write(cw->efd, &one, sizeof(one));
    (void)n; /* EAGAIN: the counter is already non-zero, a wake-up is due */
}

static void on_woken(struct cache_x *x);

/* The worker's eventfd: take every queued exchange, oldest first. */
static void on_efd(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct cache_worker *cw = arg;
    uint64_t n;
    ssize_t k = read(fd, &n, sizeof(n));
    (void)k;
    struct cache_x *list = atomic_exchange_explicit(&cw->woken, NULL, memory_order_acquire);
    struct cache_x *fifo = NULL;
    while (list) {
        struct cache_x *next = list->wnext;
        list->wnext = fifo;
        fifo = list;
        list = next;
    }
    while (fifo) {
        struct cache_x *x = fifo;
        fifo = x->wnext;
        atomic_store_explicit(&x->is_queued, false, memory_order_relaxed);
        if (x->is_dead)
            free_x(cw, x);
        else
            on_woken(x);
    }
}

/* ---- filling the store (the tee) ------------------------------------------ */

/* Gives the key's fill lock back (if held) and ends the body being stored
 * (complete or not). */
static void finish_fill(struct cache_x *x, bool is_complete)
{
    if (x->is_storing) {
        if (is_complete)
            wr_cache_body_end(x->st, x->fill_body);
        else
            wr_cache_body_abandon(x->st, x->fill_body);
        x->is_storing = false;
    }
    if (x->fill_body) {
        wr_cache_body_unref(x->fill_body);
        x->fill_body = NULL;
    }
    if (x->is_filler) {
        wr_cache_unlock(x->st, key_of(x), false, wr_clock_now_ms());
        x->is_filler = false;
    }
}

static struct wr_str find_field(const struct wr_http_header *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (wr_str_eq_nocase(h[i].name, wr_str_from_cstr(name)))
            return h[i].value;
    }
    return (struct wr_str){NULL, 0};
}

/* The response's fields as stored (RFC 9111 §3.1): "Name: value\r\n"
 * lines in malloc'd memory, without hop-by-hop fields, Age, and what
 * weir writes again per answer (Date, framing). */
static char *stored_head(const struct wr_http_response *ur, size_t *len)
{
    struct wr_str connection = find_field(ur->headers, ur->n_headers, "Connection");
    size_t cap = 1;
    for (size_t i = 0; i < ur->n_headers; i++)
        cap += ur->headers[i].name.len + ur->headers[i].value.len + 4;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    size_t at = 0;
    for (size_t i = 0; i < ur->n_headers; i++) {
        const struct wr_http_header *h = &ur->headers[i];
        if (!wr_cache_field_stored(h->name, connection) ||
            wr_str_eq_nocase(h->name, WR_STR("Content-Length")) ||
            wr_str_eq_nocase(h->name, WR_STR("Transfer-Encoding")) ||
            wr_str_eq_nocase(h->name, WR_STR("Date")))
            continue;
        memcpy(buf + at, h->name.ptr, h->name.len);
        at += h->name.len;
        memcpy(buf + at, ": ", 2);
        memcpy(buf + at + 2, h->value.ptr, h->value.len);
        at += 2 + h->value.len;
        memcpy(buf + at, "\r\n", 2);
        at += 2;
    }
    *len = at;
    return buf;
}

/* Reasons that belong to this request, not to the response: another
 * request of the key may well be stored, so no hit-for-miss mark. */
static bool is_request_reason(enum wr_cache_reason why)
{
    return why == WR_CACHE_NO_STORE_REQUEST || why == WR_CACHE_NO_AUTHORIZATION ||
           why == WR_CACHE_NO_METHOD;
}

/* Publishes the response the filler's server sent (its head in ur) when
 * the policy allows, giving the fill lock back either way. */
static void begin_fill(struct cache_x *x, int status, const struct wr_http_response *ur)
{
    const struct wr_exchange *ex = x->ex;
    int64_t now = ex->clock->sec;
    struct wr_cache_resp cr;
    wr_cache_resp_scan(&cr, status, ur->headers, ur->n_headers, now);
    enum wr_cache_reason why = wr_cache_storable(&x->creq, &cr, &ex->route->cache_opts);
    if (why == WR_CACHE_OK && ex->req->method_id != WR_HTTP_GET)
        why = WR_CACHE_NO_METHOD; /* a HEAD's answer has no body to keep */
    if (why != WR_CACHE_OK) {
        x->detail = wr_cache_reason_name(why);
        /* A 304 or 206 answers this request's own conditions or range. */
        bool is_mark = !is_request_reason(why) && status != 304 && status != 206;
        wr_cache_unlock(x->st, key_of(x), is_mark, wr_clock_now_ms());
        x->is_filler = false;
        return;
    }
    struct {
        struct cache_meta m;
        char names[WR_CACHE_VARY_NAMES_MAX];
    } meta;
    char secondary[WR_CACHE_VARY_KEY_MAX];
    int names_len = wr_cache_vary_names(ur->headers, ur->n_headers, meta.names,
                                        sizeof(meta.names));
    int sec_len = names_len < 0 ? -1
                                : wr_cache_vary_values((struct wr_str){meta.names, (size_t)names_len},
                                                       ex->req->headers, ex->req->n_headers,
                                                       secondary, sizeof(secondary));
    bool has_body = status >= 200 && status != 204 && status != 304;
    uint64_t expected = !has_body ? 0 : ur->has_content_length ? ur->content_length : UINT64_MAX;
    struct wr_cache_body *body = sec_len < 0 ? NULL : wr_cache_body_new(x->st, expected);
    size_t head_len = 0;
    char *head = body ? stored_head(ur, &head_len) : NULL;
    if (!head) {
        x->detail = sec_len < 0 ? "vary-too-long" : "too-big";
        wr_cache_body_unref(body);
        wr_cache_unlock(x->st, key_of(x), sec_len >= 0, wr_clock_now_ms());
        x->is_filler = false;
        return;
    }
    memset(&meta.m, 0, sizeof(meta.m));
    wr_cache_fresh_init(&meta.m.fresh, &cr, &ex->route->cache_opts, x->request_time, now);
    meta.m.body_len = expected;
    meta.m.status = status;
    meta.m.vary_len = (uint32_t)names_len;
    struct wr_cache_entry *e = wr_cache_publish(
        x->st, key_of(x), (struct wr_str){secondary, (size_t)sec_len},
        (struct wr_str){head, head_len}, (struct wr_str){(const char *)&meta, sizeof(meta.m) + (size_t)names_len},
        body, true, wr_clock_now_ms());
    free(head);
    x->is_filler = false; /* publish gave the lock back, stored or not */
    if (!e) {
        x->detail = "no-room";
        wr_cache_body_unref(body);
        return;
    }
    wr_cache_entry_unref(e);
    x->fill_body = body;
    x->is_storing = x->is_stored = true;
    count(x, WR_METRICS_CACHE_STORED);
}

/* The Cache-Status value (RFC 9211) for what this exchange did. */
static size_t format_status(const struct cache_x *x, bool is_hit, int fwd_status, bool has_ttl,
                            int64_t ttl, char *out, size_t cap)
{
    struct wr_cache_status s = {
        .is_hit = is_hit,
        .fwd = is_hit ? WR_CACHE_FWD_NONE : x->fwd,
        .fwd_status = fwd_status,
        .has_ttl = has_ttl,
        .ttl = ttl,
        .is_stored = x->is_stored,
        .is_collapsed = x->is_collapsed,
        .detail = x->detail,
    };
    return wr_cache_status_format(&s, wr_str_from_cstr(x->ex->route->cache->name), out, cap);
}

static bool stale_if_error(const struct cache_x *x)
{
    if (!x->stale)
        return false;
    struct cache_meta m;
    struct wr_str vary;
    read_meta(x->stale, &m, &vary);
    return wr_cache_stale_if_error(&m.fresh, &x->creq, x->ex->clock->sec);
}

static void serve_stale(struct cache_x *x, int fwd_status);

static void tee_send_head(struct wr_exchange *in)
{
    struct cache_x *x = in->front;
    struct wr_resp *r = in->resp;
    x->ex->log.upstream_time_us = in->log.upstream_time_us;
    if (r->status >= 500 && stale_if_error(x)) {
        /* RFC 5861 §4: the stale response instead of the server's error;
         * the error's body is read and dropped (tee_send). */
        x->is_discarding = true;
        finish_fill(x, false);
        return;
    }
    if (x->is_filler && in->upstream_resp)
        begin_fill(x, r->status, in->upstream_resp);
    char value[WR_CACHE_STATUS_MAX + 64];
    size_t n = format_status(x, false, r->status, false, 0, value, sizeof(value));
    if (n > 0 && r->head_cap - r->head_len > n + 16 + WR_RESP_FRAMING_ROOM)
        wr_resp_header(r, "Cache-Status", (struct wr_str){value, n});
    wr_exchange_send_head(x->ex);
}

static bool tee_send(struct wr_exchange *in, const struct iovec *iov, int n, bool is_final)
{
    struct cache_x *x = in->front;
    if (x->is_discarding)
        return true;
    for (int i = 0; i < n && x->is_storing; i++) {
        if (wr_cache_body_append(x->st, x->fill_body, iov[i].iov_base, iov[i].iov_len) < 0) {
            x->is_storing = false; /* over max_object_size: the store dropped it */
            x->detail = "too-big";
        }
    }
    if (is_final && x->is_storing) {
        wr_cache_body_end(x->st, x->fill_body);
        x->is_storing = false;
    }
    return wr_exchange_send(x->ex, iov, n, is_final);
}

static void tee_end(struct wr_exchange *in, int how)
{
    struct cache_x *x = in->front;
    finish_fill(x, how == WR_EXCHANGE_COMPLETE);
    if (x->is_discarding || (how >= 500 && !x->ex->is_head_sent && stale_if_error(x))) {
        serve_stale(x, x->is_discarding ? in->log.status : how);
        return;
    }
    wr_exchange_end(x->ex, how);
}

static void tee_respond(struct wr_exchange *in)
{
    /* The proxy sends heads and bodies; a whole response is passed on. */
    struct cache_x *x = in->front;
    finish_fill(x, false);
    wr_exchange_respond(x->ex);
}

static void tee_body_room(struct wr_exchange *in)
{
    struct cache_x *x = in->front;
    wr_exchange_body_room(x->ex);
}

static void tee_upgrade(struct wr_exchange *in, const struct iovec *iov, int n)
{
    struct cache_x *x = in->front;
    wr_exchange_upgrade(x->ex, iov, n);
}

static const struct wr_exchange_sink tee_sink = {
    .respond = tee_respond,
    .send_head = tee_send_head,
    .send = tee_send,
    .body_room = tee_body_room,
    .end = tee_end,
    .upgrade = tee_upgrade,
};

/* ---- forwarding -------------------------------------------------------------- */

/* Runs the proxy's start on x->inner (during the client's start: the
 * vars live); deferred: no server contacted until wr_proxy_go. Returns
 * the proxy's result (0 or a status). */
static int start_inner(struct cache_x *x, bool is_deferred)
{
    struct wr_exchange *ex = x->ex, *in = &x->inner;
    *in = *ex; /* the request's fields; the rest is set below */
    in->zw = NULL; /* the client's exchange compresses, not this one */
    in->compression = NULL;
    in->zf = NULL;
    wr_exchange_init(in, &wr_proxy_handler, x->cw->proxy_state, &tee_sink, x);
    in->is_start_deferred = is_deferred;
    x->is_inner_started = true;
    x->mode = is_deferred ? CX_WAIT : CX_FORWARD;
    int status = wr_exchange_start(in);
    ex->log.upstream_addr = in->log.upstream_addr;
    ex->log.upstream_status = in->log.upstream_status;
    return status;
}

/* Goes upstream: from start, the proxy's start; later, the prepared
 * exchange starts its first attempt. Returns 0 or a status (start only). */
static int forward(struct cache_x *x, bool is_start)
{
    count(x, x->fwd == WR_CACHE_FWD_STALE || x->fwd == WR_CACHE_FWD_REQUEST
                 ? WR_METRICS_CACHE_STALE
                 : WR_METRICS_CACHE_MISS);
    if (is_start)
        return start_inner(x, false);
    x->mode = CX_FORWARD;
    wr_proxy_go(&x->inner);
    return 0;
}

/* ---- serving a stored response ------------------------------------------ */

/* RFC 9110 §15.4.5: what a 304 carries of the stored fields. */
static bool is_304_field(struct wr_str name)
{
    static const char *const names[] = {"Cache-Control", "Content-Location", "ETag",
                                        "Expires", "Vary"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (wr_str_eq_nocase(name, wr_str_from_cstr(names[i])))
            return true;
    }
    return false;
}

/* Calls fn for each "Name: value" line of a stored head. */
static void each_stored_field(struct wr_str head, void (*fn)(void *, struct wr_str, struct wr_str,
                                                              struct wr_str),
                              void *arg)
{
    size_t at = 0;
    while (at < head.len) {
        const char *line = head.ptr + at;
        const char *end = memchr(line, '\n', head.len - at);
        size_t len = end ? (size_t)(end - line) + 1 : head.len - at;
        const char *colon = memchr(line, ':', len);
        if (colon && len >= 2) {
            struct wr_str name = {line, (size_t)(colon - line)};
            size_t vstart = (size_t)(colon - line) + 1;
            while (vstart < len && line[vstart] == ' ')
                vstart++;
            struct wr_str value = {line + vstart, len - 2 - vstart};
            fn(arg, name, value, (struct wr_str){line, len});
        }
        at += len;
    }
}

struct head_build {
    struct wr_resp *r;
    const struct wr_route *route;
    bool is_error, is_304, is_server_on;
    struct wr_str etag, last_modified; /* found on the way */
};

static void put_stored_field(void *arg, struct wr_str name, struct wr_str value, struct wr_str line)
{
    struct head_build *b = arg;
    if (wr_str_eq_nocase(name, WR_STR("ETag")))
        b->etag = value;
    else if (wr_str_eq_nocase(name, WR_STR("Last-Modified")))
        b->last_modified = value;
    if (!b->r)
        return;
    if (b->is_304 && !is_304_field(name))
        return;
    if (b->is_server_on && wr_str_eq_nocase(name, WR_STR("Server")))
        return; /* weir's own Server line stands, as on proxied answers */
    if (wr_resp_route_drops_field(b->route, name, b->is_error))
        return;
    wr_resp_raw(b->r, line);
}

/* The client's preconditions against the stored validators: 0, 304 or
 * 412 (http_cond.h). */
static int evaluate_conditions(const struct cache_x *x, struct wr_str head)
{
    const struct wr_http_request *req = x->ex->req;
    struct wr_http_cond cond = {
        .if_match = wr_http_known_value(req, WR_HTTP_KNOWN_IF_MATCH),
        .if_none_match = wr_http_known_value(req, WR_HTTP_KNOWN_IF_NONE_MATCH),
        .if_modified_since = wr_http_known_value(req, WR_HTTP_KNOWN_IF_MODIFIED_SINCE),
        .if_unmodified_since = wr_http_known_value(req, WR_HTTP_KNOWN_IF_UNMODIFIED_SINCE),
        .is_get_or_head = true,
    };
    if (!cond.if_match.ptr && !cond.if_none_match.ptr && !cond.if_modified_since.ptr &&
        !cond.if_unmodified_since.ptr)
        return 0;
    struct head_build b = {0};
    each_stored_field(head, put_stored_field, &b);
    int64_t mtime = 0;
    if (!b.last_modified.ptr || !wr_http_cond_parse_date(b.last_modified, &mtime))
        mtime = 0;
    /* A weak or absent stored ETag never matches If-Match (strong). */
    return wr_http_cond_evaluate(&cond, b.etag.ptr ? b.etag : WR_STR(""), mtime);
}

/* Builds the client's head for entry e with status in ex->resp. Returns
 * false when out of memory or it did not fit. */
static bool build_hit_head(struct cache_x *x, struct wr_str head, int status, uint32_t age,
                           const char *cache_status, size_t cs_len)
{
    struct wr_exchange *ex = x->ex;
    size_t need = WR_RESP_STATUS_ROOM + ex->clock->common_len + head.len + x->fields_len + cs_len +
                  64 + WR_RESP_FRAMING_ROOM;
    if (x->hbuf_cap < need) {
        char *buf = realloc(x->hbuf, need);
        if (!buf)
            return false;
        x->hbuf = buf;
        x->hbuf_cap = need;
    }
    struct wr_resp *r = ex->resp;
    wr_resp_init(r, x->hbuf, x->hbuf_cap);
    wr_resp_start(r, status, ex->clock);
    const struct wr_route *route = ex->route;
    bool is_error = status >= 400;
    wr_resp_drop_fields(r, (is_error ? route->replaced_fields_always : route->replaced_fields) |
                               route->hidden_fields);
    struct head_build b = {.r = r, .route = route, .is_error = is_error, .is_304 = status == 304,
                           .is_server_on = ex->clock->server_len > 0};
    each_stored_field(head, put_stored_field, &b);
    wr_resp_header_u64(r, "Age", age);
    wr_resp_header(r, "Cache-Status", (struct wr_str){cache_status, cs_len});
    wr_resp_raw(r, (struct wr_str){x->fields, is_error ? x->fields_always_len : x->fields_len});
    return !r->is_overflow;
}

static void pump(struct cache_x *x);

/* Serves entry e (the reference passes to x). Returns 0, or a status
 * for the front end (nothing sent). */
static int serve_entry(struct cache_x *x, struct wr_cache_entry *e, bool is_hit, int fwd_status)
{
    struct wr_exchange *ex = x->ex;
    struct cache_meta m;
    struct wr_str vary;
    read_meta(e, &m, &vary);
    x->entry = e;
    x->mode = CX_HIT;
    memset(&x->cursor, 0, sizeof(x->cursor));
    int64_t now = ex->clock->sec;
    struct wr_str head = wr_cache_entry_head(e);
    int status = evaluate_conditions(x, head);
    if (status == 412)
        return 412;
    if (status == 0)
        status = m.status;
    char cs[WR_CACHE_STATUS_MAX + 64];
    size_t cs_len = format_status(x, is_hit, fwd_status, true, wr_cache_ttl(&m.fresh, now), cs,
                                  sizeof(cs));
    if (!build_hit_head(x, head, status, wr_cache_current_age(&m.fresh, now), cs, cs_len))
        return 500;
    struct wr_resp *r = ex->resp;
    struct wr_cache_body *body = wr_cache_entry_body(e);
    struct wr_cache_cursor probe = {0};
    struct wr_str first;
    /* The state first: bytes of a complete body never change after. */
    bool is_complete = wr_cache_body_read(body, &probe, &first) == WR_CACHE_BODY_COMPLETE;
    uint64_t have = wr_cache_body_len(body);
    r->has_length = m.body_len != UINT64_MAX || is_complete;
    r->body_len = m.body_len != UINT64_MAX ? m.body_len : have;
    if (status == 304 || ex->req->method_id == WR_HTTP_HEAD) {
        r->is_head_only = true;
        r->has_length = r->has_length && status != 304;
        wr_exchange_respond(ex);
        return 0;
    }
    wr_exchange_send_head(ex);
    pump(x);
    return 0;
}

/* Sends the stored body from the cursor while the client keeps up; waits
 * for the filler when it has read all there is. */
static void pump(struct cache_x *x)
{
    struct wr_cache_body *body = wr_cache_entry_body(x->entry);
    for (;;) {
        struct iovec iov[WR_EXCHANGE_MAX_IOV];
        int n = 0;
        enum wr_cache_body_state s = WR_CACHE_BODY_FILLING;
        while (n < WR_EXCHANGE_MAX_IOV) {
            struct wr_str out;
            s = wr_cache_body_read(body, &x->cursor, &out);
            if (out.len == 0)
                break;
            iov[n++] = (struct iovec){(void *)out.ptr, out.len};
        }
        bool is_end = s == WR_CACHE_BODY_COMPLETE && n < WR_EXCHANGE_MAX_IOV;
        if (s == WR_CACHE_BODY_ABANDONED && n == 0) {
            wr_exchange_end(x->ex, WR_EXCHANGE_BROKEN); /* the fill failed mid-body */
            return;
        }
        bool is_done = n == 0 || wr_exchange_send(x->ex, iov, n, is_end);
        if (is_end) {
            wr_exchange_end(x->ex, WR_EXCHANGE_COMPLETE);
            return;
        }
        if (!is_done)
            return; /* proceed follows */
        if (n == 0 && s == WR_CACHE_BODY_FILLING) {
            x->is_waiting_body = true;
            if (wr_cache_body_wait(body, x->cursor.offset, &x->waiter))
                return; /* on_notify when more came */
            x->is_waiting_body = false;
        }
    }
}

/* The server failed and the stale entry may stand in (RFC 5861 §4). */
static void serve_stale(struct cache_x *x, int fwd_status)
{
    struct wr_cache_entry *e = x->stale;
    x->stale = NULL;
    x->is_discarding = false;
    x->fwd = WR_CACHE_FWD_STALE;
    x->detail = NULL;
    count(x, WR_METRICS_CACHE_STALE_IF_ERROR);
    int status = serve_entry(x, e, false, fwd_status);
    if (status != 0)
        wr_exchange_end(x->ex, status);
}

/* ---- lookup ---------------------------------------------------------------- */

static bool match_vary(const struct wr_cache_entry *e, void *arg)
{
    const struct cache_x *x = arg;
    if (x->is_match_off)
        return false;
    struct cache_meta m;
    struct wr_str names;
    read_meta(e, &m, &names);
    return wr_cache_vary_match(names, wr_cache_entry_secondary(e), x->ex->req->headers,
                               x->ex->req->n_headers);
}

static void set_stale(struct cache_x *x, struct wr_cache_entry *e)
{
    if (x->stale)
        wr_cache_entry_unref(x->stale);
    x->stale = e;
}

static int lookup(struct cache_x *x, bool is_start);

/* A stored variant matched: serve it, or forward (revalidation is a
 * plain fetch here: its response replaces the entry). */
static int on_hit(struct cache_x *x, struct wr_cache_entry *e, bool is_start)
{
    struct cache_meta m;
    struct wr_str vary;
    read_meta(e, &m, &vary);
    struct wr_cache_decision d = wr_cache_decide(&m.fresh, &x->creq, x->ex->clock->sec);
    switch (d.verdict) {
    case WR_CACHE_SERVE:
    case WR_CACHE_SERVE_STALE:
    case WR_CACHE_SERVE_REFRESH:
        if (x->is_inner_started) {
            wr_exchange_stop(&x->inner); /* prepared while waiting, not needed */
            x->is_inner_started = false;
        }
        count(x, WR_METRICS_CACHE_HIT);
        return serve_entry(x, e, true, 0);
    case WR_CACHE_GATEWAY_TIMEOUT:
        wr_cache_entry_unref(e);
        return 504;
    case WR_CACHE_REVALIDATE:
    default:
        break;
    }
    set_stale(x, e);
    x->fwd = d.is_request_forced ? WR_CACHE_FWD_REQUEST : WR_CACHE_FWD_STALE;
    x->is_match_off = true; /* once more, for the fill lock only */
    int status = lookup(x, is_start);
    x->is_match_off = false;
    return status;
}

/* Looks the key up and acts on the answer. Returns 0, or a status for
 * the front end (start) or to end the exchange with (a wake-up). */
static int lookup(struct cache_x *x, bool is_start)
{
    bool is_only_cached = x->creq.cc.flags & WR_CC_ONLY_IF_CACHED;
    struct wr_cache_entry *e = NULL;
    memset(&x->waiter, 0, sizeof(x->waiter));
    x->waiter.fn = on_notify;
    x->waiter.arg = x;
    enum wr_cache_lookup_result r = wr_cache_lookup(
        x->st, key_of(x), match_vary, x, !is_only_cached, &x->waiter, wr_clock_now_ms(), &e);
    switch (r) {
    case WR_CACHE_HIT:
        return on_hit(x, e, is_start);
    case WR_CACHE_MISS:
        x->is_filler = true;
        if (x->fwd == WR_CACHE_FWD_NONE)
            x->fwd = WR_CACHE_FWD_URI_MISS;
        return forward(x, is_start);
    case WR_CACHE_WAIT:
        x->is_waiting_lock = true;
        x->mode = CX_WAIT;
        if (!x->is_collapsed) {
            x->is_collapsed = true;
            count(x, WR_METRICS_CACHE_COLLAPSED);
            wr_timer_arm(x->cw->henv->wheel, &x->lock_timer,
                         wr_clock_now_ms() + x->ex->route->cache_lock_timeout_ms);
        }
        return is_start ? start_inner(x, true) : 0;
    case WR_CACHE_PASS:
    default:
        if (is_only_cached)
            return 504; /* RFC 9111 §5.2.1.7 */
        if (x->fwd == WR_CACHE_FWD_NONE)
            x->fwd = WR_CACHE_FWD_MISS;
        x->detail = "hit-for-miss";
        return forward(x, is_start);
    }
}

/* Queued by on_notify: what x waited for happened (or may have). */
static void on_woken(struct cache_x *x)
{
    if (x->is_waiting_body) {
        x->is_waiting_body = false;
        pump(x);
        return;
    }
    if (!x->is_waiting_lock)
        return; /* the lock timer went first */
    x->is_waiting_lock = false;
    int status = lookup(x, false);
    if (x->mode != CX_WAIT && wr_timer_is_armed(&x->lock_timer))
        wr_timer_disarm(x->cw->henv->wheel, &x->lock_timer);
    if (status != 0)
        wr_exchange_end(x->ex, status);
}

static void on_lock_timeout(struct wr_timer_wheel *w, struct wr_timer *t, uint64_t now_ms)
{
    (void)w;
    (void)now_ms;
    struct cache_x *x = WR_TIMER_OWNER(t, struct cache_x, lock_timer);
    if (!x->is_waiting_lock)
        return;
    wr_cache_wait_cancel(x->st, key_of(x), &x->waiter);
    x->is_waiting_lock = false; /* a wake-up already queued finds nothing to do */
    count(x, WR_METRICS_CACHE_LOCK_TIMEOUT);
    x->fwd = WR_CACHE_FWD_MISS;
    x->detail = "lock-timeout";
    x->is_collapsed = false;
    forward(x, false);
}

/* ---- the handler ------------------------------------------------------------ */

static bool is_cacheable_request(const struct wr_exchange *ex)
{
    const struct wr_http_request *req = ex->req;
    uint32_t mask = ex->route->cache_opts.methods_mask;
    if (mask == 0)
        mask = (1u << WR_HTTP_GET) | (1u << WR_HTTP_HEAD);
    return (mask & (1u << req->method_id)) && !ex->has_body && !req->is_upgrade &&
           !req->is_extended_connect;
}

static int cache_start(struct wr_exchange *ex)
{
    struct cache_worker *cw = ex->worker_state;
    struct cache_x *x = alloc_x(cw);
    if (!x)
        return 500;
    x->ex = ex;
    ex->state = x;
    x->st = ex->route->cache ? ex->route->cache->store : NULL;
    x->request_time = ex->clock->sec;
    const struct wr_http_request *req = ex->req;
    wr_cache_req_scan(&x->creq, req->method_id, req->headers, req->n_headers);
    ssize_t key_len = x->st ? wr_tmpl_expand(&ex->route->cache_key, ex->vars, x->key, KEY_MAX) : -1;
    ssize_t fields_len = wr_resp_expand_route_fields(ex->route, ex->vars, x->fields,
                                                     sizeof(x->fields), &x->fields_always_len);
    if (key_len < 0 || fields_len < 0 || !is_cacheable_request(ex)) {
        x->fwd = is_cacheable_request(ex) ? WR_CACHE_FWD_BYPASS : WR_CACHE_FWD_METHOD;
        x->st = NULL; /* nothing of the store is touched */
        count(x, WR_METRICS_CACHE_BYPASS);
        return start_inner(x, false);
    }
    x->key_len = (size_t)key_len;
    x->fields_len = (size_t)fields_len;
    return lookup(x, true);
}

static void cache_proceed(struct wr_exchange *ex)
{
    struct cache_x *x = ex->state;
    if (x->mode == CX_HIT)
        pump(x);
    else if (x->mode == CX_FORWARD)
        wr_exchange_proceed(&x->inner);
}

static ssize_t cache_recv_body(struct wr_exchange *ex, const char *p, size_t n, bool is_last)
{
    struct cache_x *x = ex->state;
    if (x->mode != CX_FORWARD)
        return (ssize_t)n;
    return wr_exchange_recv_body(&x->inner, p, n, is_last);
}

static bool cache_can_recv_body(struct wr_exchange *ex)
{
    struct cache_x *x = ex->state;
    return x->mode != CX_FORWARD || wr_exchange_can_recv_body(&x->inner);
}

static void cache_upgraded(struct wr_exchange *ex, const struct wr_exchange_tunnel *t)
{
    struct cache_x *x = ex->state;
    if (x->mode == CX_FORWARD)
        wr_exchange_upgraded(&x->inner, t);
}

static void cache_stop(struct wr_exchange *ex)
{
    struct cache_x *x = ex->state;
    if (!x)
        return;
    struct cache_worker *cw = x->cw;
    if (x->is_inner_started && !x->inner.is_disposed)
        wr_exchange_stop(&x->inner);
    if (x->is_waiting_lock)
        wr_cache_wait_cancel(x->st, key_of(x), &x->waiter);
    if (x->is_waiting_body)
        wr_cache_body_wait_cancel(wr_cache_entry_body(x->entry), &x->waiter);
    if (wr_timer_is_armed(&x->lock_timer))
        wr_timer_disarm(cw->henv->wheel, &x->lock_timer);
    finish_fill(x, false);
    if (x->entry)
        wr_cache_entry_unref(x->entry);
    if (x->stale)
        wr_cache_entry_unref(x->stale);
    /* A callback that ran before the cancel queued x: the queue's reader
     * frees it (cancel took the store lock the callback held). */
    if (atomic_load_explicit(&x->is_queued, memory_order_relaxed))
        x->is_dead = true;
    else
        free_x(cw, x);
}

static int cache_worker_init(struct wr_handler_worker *hw)
{
    struct cache_worker *cw = calloc(1, sizeof(*cw));
    if (!cw)
        return -1;
    cw->henv = hw->env;
    cw->proxy_state = wr_handlers_state(hw->peers, WR_ACTION_PROXY);
    cw->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    cw->ev = cw->efd < 0 ? NULL : event_new(hw->env->base, cw->efd, EV_READ | EV_PERSIST, on_efd, cw);
    if (!cw->ev || event_add(cw->ev, NULL) < 0) {
        if (cw->ev)
            event_free(cw->ev);
        if (cw->efd >= 0)
            close(cw->efd);
        free(cw);
        return -1;
    }
    atomic_init(&cw->woken, NULL);
    hw->state = cw;
    return 0;
}

static void cache_worker_fini(struct wr_handler_worker *hw)
{
    struct cache_worker *cw = hw->state;
    if (!cw)
        return;
    on_efd(cw->efd, EV_READ, cw); /* frees what stopped exchanges left queued */
    event_free(cw->ev);
    close(cw->efd);
    while (cw->free_list) {
        struct cache_x *x = cw->free_list;
        cw->free_list = x->next_free;
        free(x->hbuf);
        free(x);
    }
    free(cw);
    hw->state = NULL;
}

const struct wr_handler wr_cache_handler = {
    .name = "cache",
    .start = cache_start,
    .proceed = cache_proceed,
    .recv_body = cache_recv_body,
    .can_recv_body = cache_can_recv_body,
    .upgraded = cache_upgraded,
    .stop = cache_stop,
    .worker_init = cache_worker_init,
    .worker_fini = cache_worker_fini,
};
