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
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "weir/cache_disk.h"
#include "weir/cache_head.h"
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
#define DISK_READ_PIECE (64u * 1024u)

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
    struct wr_cache_disk *disk;      /* the section's disk tier, or NULL */
    enum cx_mode mode;
    atomic_bool is_queued;           /* on cw->woken, not yet taken */
    bool is_dead;                    /* stopped while queued: the reader frees it */
    bool is_waiting_lock, is_waiting_body;
    bool is_holding;                 /* waits for a body of unknown length to complete
                                        (x->entry) before answering: one that outgrows
                                        max_object_size is dropped, and x then goes
                                        upstream itself instead of being cut */
    bool is_match_off;               /* the lookup refuses every variant (revalidation) */
    bool is_filler;                  /* holds the key's fill lock */
    bool is_storing;                 /* fill_body takes the response body */
    bool is_stored;                  /* the response went into the store */
    bool is_collapsed;               /* waited for another request's response */
    bool is_inner_started;
    bool is_discarding;              /* a server error replaced by the stale entry */
    bool is_revalidating;            /* the request carries x->stale's validators */
    bool is_answer_at_end;           /* the client is answered from the store once the
                                        fill ends (its conditionals, Range, a 304) */
    bool is_background;              /* the fill refreshes the store only (RFC 5861
                                        stale-while-revalidate): the client reads a hit */
    bool is_end_owed;                /* background: the client's end waits for the
                                        refresh's head (then the fill may detach) */
    bool is_detached;                /* the client is gone; the fill goes on, holding
                                        cfg_ref; reaped from the queue when it ends */
    bool is_reap_due;
    bool is_cacheable;               /* the store may answer or keep this request's */
    bool is_unsafe;                  /* an unsafe method: its success invalidates (§4.4) */
    uint64_t skip, send_left;        /* a 206's window over the body being read */
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
    struct wr_cache_entry *fill_entry; /* what the fill published (a reference) */
    struct wr_config *cfg_ref;       /* detached: the snapshot the route lives in */
    struct cache_x *dnext, **dprev;  /* detached: on cw->detached */
    struct wr_exchange inner;        /* the proxy's */
    struct wr_resp inner_resp;       /* the proxy's head (its buffer is the proxy's) */
    char *hbuf;                      /* hit heads; kept on the free list */
    size_t hbuf_cap;
    size_t key_len;
    size_t fields_len, fields_always_len;
    struct wr_tmpl_vars vars;        /* unsafe methods: the vars without captures, to
                                        key the URIs a response invalidates */
    char ufields[512];               /* validators sent up (If-None-Match, ...) */
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
    struct cache_x *detached;        /* fills whose client left */
    struct wr_cache_disk_hit disk_hit; /* a disk tier lookup's header buffer */
    char *disk_buf;                  /* a body read from a disk tier, a piece at a time */
};

static void on_lock_timeout(struct wr_timer_wheel *w, struct wr_timer *t, uint64_t now_ms);
static void on_notify(void *arg);
static const struct wr_exchange_sink tee_sink;

static void count(const struct cache_x *x, enum wr_metrics_cache what)
{
    if (x->cw->henv->metrics)
        wr_metrics_add(&x->cw->henv->metrics->cache[what], 1);
}

/* Freshness is reckoned on the wall clock read each time (a vDSO call),
 * not the worker's cached second: workers' cached seconds differ by up
 * to a tick, and one entry must not be fresh on one worker and stale on
 * the other. */
static int64_t now_sec(void)
{
    return (int64_t)time(NULL);
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
    memset(x, 0, offsetof(struct cache_x, ufields));
    x->cw = cw;
    x->hbuf = hbuf;
    x->hbuf_cap = hbuf_cap;
    atomic_init(&x->is_queued, false);
    x->waiter.fn = on_notify;
    x->waiter.arg = x;
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
    /* Once on the queue is enough: on_woken acts on x's state as it is
     * then, whatever woke it. */
    if (atomic_exchange_explicit(&x->is_queued, true, memory_order_acq_rel))
        return;
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

/* The stored body is whole: readers are told, and the disk tier (if
 * any) gets the entry to write. */
static void complete_fill(struct cache_x *x)
{
    wr_cache_body_end(x->st, x->fill_body);
    x->is_storing = false;
    if (x->disk && x->fill_entry)
        wr_cache_disk_put(x->disk, x->fill_entry);
}

/* Gives the key's fill lock back (if held) and ends the body being stored
 * (complete or not). */
static void finish_fill(struct cache_x *x, bool is_complete)
{
    if (x->is_storing) {
        if (is_complete)
            complete_fill(x);
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
    int64_t now = now_sec();
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
    char *head = body ? wr_cache_head_store(ur->headers, ur->n_headers, &head_len) : NULL;
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
    x->fill_entry = e;
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
    return wr_cache_stale_if_error(&m.fresh, &x->creq, now_sec());
}

static void serve_stale(struct cache_x *x, int fwd_status);
static int serve_entry(struct cache_x *x, struct wr_cache_entry *e, bool is_hit, int fwd_status);

/* Queues x for its worker's next event (on_woken): from the worker's own
 * thread, where a callback may not do the work itself. */
static void defer(struct cache_x *x)
{
    if (!atomic_load_explicit(&x->is_queued, memory_order_relaxed))
        on_notify(x);
}

/* Whether the client reads what the server sends as it comes. */
static bool is_client_on_tee(const struct cache_x *x)
{
    return x->ex && !x->is_background && !x->is_answer_at_end && !x->is_discarding;
}

/* The client's preconditions or Range are answered from the store. */
static bool wants_store_answer(const struct cache_x *x)
{
    const struct wr_http_request *req = x->ex->req;
    return wr_http_known_value(req, WR_HTTP_KNOWN_IF_NONE_MATCH).ptr ||
           wr_http_known_value(req, WR_HTTP_KNOWN_IF_MODIFIED_SINCE).ptr ||
           wr_http_known_value(req, WR_HTTP_KNOWN_IF_MATCH).ptr ||
           wr_http_known_value(req, WR_HTTP_KNOWN_IF_UNMODIFIED_SINCE).ptr ||
           wr_http_known_value(req, WR_HTTP_KNOWN_RANGE).ptr;
}

/* RFC 9111 §4.3.4: the server's 304 (its head in ur) freshens x->stale:
 * the stored fields the 304 carries are replaced, a new entry shares the
 * stored body. Returns the new entry (a reference), or NULL when the 304
 * does not select the stored response or nothing could be stored. */
static struct wr_cache_entry *freshen(struct cache_x *x, const struct wr_http_response *ur)
{
    struct wr_str head = wr_cache_entry_head(x->stale);
    struct wr_http_header old[WR_HTTP_MAX_HEADERS];
    size_t n_old = wr_cache_head_split(head, old, WR_HTTP_MAX_HEADERS);
    struct wr_str etag = wr_cache_head_field(old, n_old, "ETag");
    struct wr_str lm = wr_cache_head_field(old, n_old, "Last-Modified");
    if (!wr_cache_304_selects(etag, lm, wr_cache_head_field(ur->headers, ur->n_headers, "ETag"),
                              wr_cache_head_field(ur->headers, ur->n_headers, "Last-Modified")))
        return NULL;
    size_t len = 0;
    char *merged = wr_cache_head_merge_304(head, ur->headers, ur->n_headers, &len);
    if (!merged)
        return NULL;
    /* Freshness from the merged fields, with the 304's own Date and Age. */
    struct wr_http_header scan[WR_HTTP_MAX_HEADERS + 2];
    size_t n_scan = wr_cache_head_split((struct wr_str){merged, len}, scan, WR_HTTP_MAX_HEADERS);
    struct wr_str date = wr_cache_head_field(ur->headers, ur->n_headers, "Date");
    struct wr_str age = wr_cache_head_field(ur->headers, ur->n_headers, "Age");
    if (date.ptr)
        scan[n_scan++] = (struct wr_http_header){WR_STR("Date"), date};
    if (age.ptr)
        scan[n_scan++] = (struct wr_http_header){WR_STR("Age"), age};
    int64_t now = now_sec();
    struct cache_meta m;
    struct wr_str vary;
    read_meta(x->stale, &m, &vary);
    struct wr_cache_resp cr;
    wr_cache_resp_scan(&cr, m.status, scan, n_scan, now);
    struct {
        struct cache_meta m;
        char names[WR_CACHE_VARY_NAMES_MAX];
    } meta;
    meta.m = m;
    memcpy(meta.names, vary.ptr, vary.len);
    wr_cache_fresh_init(&meta.m.fresh, &cr, &x->inner.route->cache_opts, x->request_time, now);
    struct wr_cache_entry *e = wr_cache_publish(
        x->st, key_of(x), wr_cache_entry_secondary(x->stale), (struct wr_str){merged, len},
        (struct wr_str){(const char *)&meta, sizeof(meta.m) + vary.len},
        wr_cache_entry_body(x->stale), x->is_filler, wr_clock_now_ms());
    x->is_filler = false;
    free(merged);
    return e;
}

/* Every variant of key goes, from memory and disk. */
static void purge_key(struct cache_x *x, struct wr_str key)
{
    wr_cache_purge_key(x->st, key);
    if (x->disk)
        wr_cache_disk_remove_key(x->disk, key);
}

/* Removes the entries of one URI of the request's origin: the route's
 * cache_key expanded for it. */
static void invalidate_target(struct cache_x *x, struct wr_str uri)
{
    const struct wr_exchange *ex = x->ex;
    struct wr_cache_target t;
    if (!wr_cache_invalidation_target(ex->is_tls ? WR_STR("https") : WR_STR("http"),
                                      ex->req->host, uri, &t))
        return;
    struct wr_tmpl_vars v = x->vars;
    v.scheme = t.scheme;
    v.host = t.host;
    v.request_uri = t.path_query;
    char key[KEY_MAX];
    ssize_t n = wr_tmpl_expand(&ex->route->cache_key, &v, key, sizeof(key));
    if (n > 0)
        purge_key(x, (struct wr_str){key, (size_t)n});
}

/* RFC 9111 §4.4: a non-error answer to an unsafe method invalidates the
 * request's URI and the same-origin Location and Content-Location. */
static void invalidate(struct cache_x *x, int status, const struct wr_http_response *ur)
{
    if (!wr_cache_invalidates(x->ex->req->method_id, status))
        return;
    purge_key(x, key_of(x));
    for (size_t i = 0; ur && i < ur->n_headers; i++) {
        const struct wr_http_header *h = &ur->headers[i];
        if (wr_str_eq_nocase(h->name, WR_STR("Location")) ||
            wr_str_eq_nocase(h->name, WR_STR("Content-Location")))
            invalidate_target(x, h->value);
    }
}

/* The server's head, when the proxy got one it relays. */
static void tee_send_head(struct wr_exchange *in)
{
    struct cache_x *x = in->front;
    struct wr_resp *r = in->resp;
    int status = r->status;
    if (x->is_unsafe)
        invalidate(x, status, in->upstream_resp);
    if (x->ex)
        x->ex->log.upstream_time_us = in->log.upstream_time_us;
    if (status == 304 && x->is_revalidating && in->upstream_resp) {
        x->fill_entry = freshen(x, in->upstream_resp);
        x->detail = x->fill_entry ? NULL : "304-not-stored";
        if (x->disk && x->fill_entry)
            wr_cache_disk_put(x->disk, x->fill_entry); /* the freshened fields */
        count(x, WR_METRICS_CACHE_REVALIDATED);
        finish_fill(x, false);
        x->is_answer_at_end = true;
        if (x->is_background && x->is_end_owed) {
            x->is_end_owed = false;
            wr_exchange_end(x->ex, WR_EXCHANGE_COMPLETE);
        }
        return; /* answered at the end, from the store (tee_end) */
    }
    if (status >= 500 && x->ex && !x->is_background && stale_if_error(x)) {
        /* RFC 5861 §4: the stale response instead of the server's error;
         * the error's body is read and dropped (tee_send). */
        x->is_discarding = true;
        finish_fill(x, false);
        return;
    }
    if (x->is_filler && in->upstream_resp)
        begin_fill(x, status, in->upstream_resp);
    if (x->is_revalidating && x->fill_entry)
        count(x, WR_METRICS_CACHE_REPLACED);
    if (x->is_background && x->is_end_owed) {
        x->is_end_owed = false; /* the refresh may outlive the client now */
        wr_exchange_end(x->ex, WR_EXCHANGE_COMPLETE);
    }
    if (x->is_background || !x->ex)
        return;
    if (x->fill_entry && wants_store_answer(x)) {
        x->is_answer_at_end = true;
        return;
    }
    char value[WR_CACHE_STATUS_MAX + 64];
    size_t n = format_status(x, false, status, false, 0, value, sizeof(value));
    if (n > 0 && r->head_cap - r->head_len > n + 16 + WR_RESP_FRAMING_ROOM)
        wr_resp_header(r, "Cache-Status", (struct wr_str){value, n});
    *x->ex->resp = *r; /* the proxy's head, on its buffer (alive until stop) */
    wr_exchange_send_head(x->ex);
}

static bool tee_send(struct wr_exchange *in, const struct iovec *iov, int n, bool is_final)
{
    struct cache_x *x = in->front;
    for (int i = 0; i < n && x->is_storing; i++) {
        if (wr_cache_body_append(x->st, x->fill_body, iov[i].iov_base, iov[i].iov_len) < 0) {
            x->is_storing = false; /* over max_object_size: the store dropped it */
            x->detail = "too-big";
        }
    }
    if (is_final && x->is_storing)
        complete_fill(x);
    if (!is_client_on_tee(x))
        return true;
    return wr_exchange_send(x->ex, iov, n, is_final);
}

/* The proxy is done: complete, cut, or a status before any head. */
static void tee_end(struct wr_exchange *in, int how)
{
    struct cache_x *x = in->front;
    finish_fill(x, how == WR_EXCHANGE_COMPLETE);
    if (!x->ex) {
        x->is_reap_due = true; /* detached: stopped from the queue */
        defer(x);
        return;
    }
    if (x->is_background) {
        if (x->is_end_owed) {
            x->is_end_owed = false;
            wr_exchange_end(x->ex, WR_EXCHANGE_COMPLETE);
        }
        return;
    }
    if (x->is_answer_at_end) {
        struct wr_cache_entry *e = x->fill_entry;
        if (how != WR_EXCHANGE_COMPLETE || !e) {
            wr_exchange_end(x->ex, how >= 300 ? how : 502);
            return;
        }
        wr_cache_entry_ref(e);
        int fwd_status = in->log.status;
        int status = serve_entry(x, e, false, fwd_status);
        if (status != 0)
            wr_exchange_end(x->ex, status);
        return;
    }
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
    if (x->ex) {
        *x->ex->resp = *in->resp;
        wr_exchange_respond(x->ex);
    }
}

static void tee_body_room(struct wr_exchange *in)
{
    struct cache_x *x = in->front;
    if (x->ex)
        wr_exchange_body_room(x->ex);
}

static void tee_upgrade(struct wr_exchange *in, const struct iovec *iov, int n)
{
    struct cache_x *x = in->front;
    *x->ex->resp = *in->resp;
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

/* x->stale's validators as request fields (RFC 9111 §4.3.1), into
 * x->ufields; false when it has none. */
static bool put_validators(struct cache_x *x)
{
    struct wr_str head = wr_cache_entry_head(x->stale);
    struct wr_http_header h[WR_HTTP_MAX_HEADERS];
    size_t n = wr_cache_head_split(head, h, WR_HTTP_MAX_HEADERS);
    struct wr_str etag = wr_cache_head_field(h, n, "ETag");
    struct wr_str lm = wr_cache_head_field(h, n, "Last-Modified");
    size_t len = 0;
    bool fits = true;
    if (etag.ptr)
        fits = wr_cache_head_put(x->ufields, &len, sizeof(x->ufields), WR_STR("If-None-Match"), etag);
    if (lm.ptr && fits)
        fits = wr_cache_head_put(x->ufields, &len, sizeof(x->ufields), WR_STR("If-Modified-Since"), lm);
    if (!fits || len == 0)
        return false;
    x->inner.upstream_fields = (struct wr_str){x->ufields, len};
    return true;
}

/* Runs the proxy's start on x->inner (during the client's start: the
 * vars live); deferred: no server contacted until wr_proxy_go. A
 * cacheable request asks for the whole representation, with the stale
 * entry's validators when there is one. Returns the proxy's result. */
static int start_inner(struct cache_x *x, bool is_deferred)
{
    struct wr_exchange *ex = x->ex, *in = &x->inner;
    *in = *ex; /* the request's fields; the rest is set below */
    in->zw = NULL; /* the client's exchange compresses, not this one */
    in->compression = NULL;
    in->zf = NULL;
    in->resp = &x->inner_resp;
    x->inner_resp = *ex->resp;
    wr_exchange_init(in, &wr_proxy_handler, x->cw->proxy_state, &tee_sink, x);
    in->is_start_deferred = is_deferred;
    in->is_cache_fill = x->is_cacheable;
    x->is_revalidating = x->is_cacheable && x->stale && put_validators(x);
    x->is_inner_started = true;
    if (x->mode != CX_HIT)
        x->mode = is_deferred ? CX_WAIT : CX_FORWARD;
    int status = wr_exchange_start(in);
    if (!x->is_background) {
        ex->log.upstream_addr = in->log.upstream_addr;
        ex->log.upstream_status = in->log.upstream_status;
    }
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

/* The client's Range against a complete body of size bytes (RFC 9110
 * §14.2, after If-Range): 200 for the whole, 206 with x's window set, or
 * 416. */
static int choose_range(struct cache_x *x, struct wr_str head, uint64_t size)
{
    const struct wr_http_request *req = x->ex->req;
    struct wr_str range = wr_http_known_value(req, WR_HTTP_KNOWN_RANGE);
    if (!range.ptr || req->method_id != WR_HTTP_GET)
        return 200;
    struct wr_str if_range = wr_http_known_value(req, WR_HTTP_KNOWN_IF_RANGE);
    if (if_range.ptr) {
        struct head_build b = {0};
        each_stored_field(head, put_stored_field, &b);
        int64_t mtime = 0;
        if (!b.last_modified.ptr || !wr_http_cond_parse_date(b.last_modified, &mtime))
            mtime = 0;
        if (!wr_http_cond_if_range_holds(if_range, b.etag.ptr ? b.etag : WR_STR(""), mtime))
            return 200;
    }
    struct wr_http_range rg;
    switch (wr_http_cond_parse_range(range, size, &rg)) {
    case WR_RANGE_SINGLE:
        x->skip = rg.first;
        x->send_left = rg.last - rg.first + 1;
        return 206;
    case WR_RANGE_UNSATISFIABLE:
        return 416;
    default:
        return 200; /* ignored, or several ranges: the whole body */
    }
}

/* Serves entry e (the reference passes to x). Returns 0, or a status
 * for the front end (nothing sent). */
static int serve_entry(struct cache_x *x, struct wr_cache_entry *e, bool is_hit, int fwd_status)
{
    struct wr_exchange *ex = x->ex;
    struct cache_meta m;
    struct wr_str vary;
    read_meta(e, &m, &vary);
    if (x->entry)
        wr_cache_entry_unref(x->entry);
    x->entry = e;
    x->mode = CX_HIT;
    memset(&x->cursor, 0, sizeof(x->cursor));
    x->skip = 0;
    x->send_left = UINT64_MAX;
    int64_t now = now_sec();
    struct wr_str head = wr_cache_entry_head(e);
    struct wr_cache_body *body = wr_cache_entry_body(e);
    struct wr_cache_cursor probe = {0};
    struct wr_str first;
    /* The state first: bytes of a complete body never change after. */
    bool is_complete = wr_cache_body_read(body, &probe, &first) == WR_CACHE_BODY_COMPLETE;
    uint64_t have = wr_cache_body_len(body);
    int status = evaluate_conditions(x, head);
    if (status == 412)
        return 412;
    if (status == 0 && m.status == 200 && is_complete)
        status = choose_range(x, head, have); /* a body still filling is sent whole */
    if (status == 416) {
        wr_resp_start(ex->resp, 416, ex->clock);
        char cr[48];
        int n = snprintf(cr, sizeof(cr), "bytes */%llu", (unsigned long long)have);
        wr_resp_field(ex->resp, WR_HTTP_FIELD_CONTENT_RANGE, (struct wr_str){cr, (size_t)n});
        wr_resp_set_page(ex->resp);
        wr_exchange_respond(ex);
        return 0;
    }
    if (status == 0 || status == 200)
        status = m.status;
    char cs[WR_CACHE_STATUS_MAX + 64];
    size_t cs_len = format_status(x, is_hit, fwd_status, true, wr_cache_ttl(&m.fresh, now), cs,
                                  sizeof(cs));
    if (!build_hit_head(x, head, status, wr_cache_current_age(&m.fresh, now), cs, cs_len))
        return 500;
    struct wr_resp *r = ex->resp;
    r->has_length = m.body_len != UINT64_MAX || is_complete;
    r->body_len = m.body_len != UINT64_MAX ? m.body_len : have;
    if (status == 206) {
        char cr[80];
        int n = snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu", (unsigned long long)x->skip,
                         (unsigned long long)(x->skip + x->send_left - 1),
                         (unsigned long long)have);
        wr_resp_field(r, WR_HTTP_FIELD_CONTENT_RANGE, (struct wr_str){cr, (size_t)n});
        r->body_len = x->send_left;
        r->is_coding_decided = true; /* a range of the stored bytes, never coded */
    }
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

/* The next pieces of the body at x's cursor into iov, within x's window
 * (a 206's skip and send_left). Returns how many; *s the body's state. */
static int next_pieces(struct cache_x *x, struct wr_cache_body *body, struct iovec *iov,
                       enum wr_cache_body_state *s)
{
    int n = 0;
    *s = WR_CACHE_BODY_FILLING;
    while (n < WR_EXCHANGE_MAX_IOV && x->send_left > 0) {
        struct wr_str out;
        *s = wr_cache_body_read(body, &x->cursor, &out);
        if (out.len == 0)
            break;
        if (x->skip >= out.len) {
            x->skip -= out.len;
            continue;
        }
        out.ptr += x->skip;
        out.len -= x->skip;
        x->skip = 0;
        if (out.len > x->send_left)
            out.len = (size_t)x->send_left;
        if (x->send_left != UINT64_MAX)
            x->send_left -= out.len;
        iov[n++] = (struct iovec){(void *)out.ptr, out.len};
    }
    return n;
}

/* Sends the stored body from the cursor while the client keeps up; waits
 * for the filler when it has read all there is. */
static void pump(struct cache_x *x)
{
    struct wr_cache_body *body = wr_cache_entry_body(x->entry);
    for (;;) {
        struct iovec iov[WR_EXCHANGE_MAX_IOV];
        enum wr_cache_body_state s;
        int n = next_pieces(x, body, iov, &s);
        bool is_end = x->send_left == 0 || (s == WR_CACHE_BODY_COMPLETE && n < WR_EXCHANGE_MAX_IOV);
        if (s == WR_CACHE_BODY_ABANDONED && n == 0) {
            wr_exchange_end(x->ex, WR_EXCHANGE_BROKEN); /* the fill failed mid-body */
            return;
        }
        bool is_done = n == 0 || wr_exchange_send(x->ex, iov, n, is_end);
        if (is_end) {
            if (x->is_background && x->is_inner_started && !x->inner.is_ended &&
                !x->inner.is_head_sent) {
                x->is_end_owed = true; /* until the refresh has its head (tee_send_head) */
                return;
            }
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

/* RFC 5861 §3: a stale hit within stale-while-revalidate is served while
 * one request (the one that gets the key's fill lock; the others only
 * serve) refreshes it in the background. At start only: the proxy's
 * start needs the vars. */
static void refresh_in_background(struct cache_x *x, struct wr_cache_entry *e)
{
    struct wr_cache_entry *other = NULL;
    x->is_match_off = true;
    enum wr_cache_lookup_result r = wr_cache_lookup(x->st, key_of(x), match_vary, x, true,
                                                    &x->waiter, wr_clock_now_ms(), &other);
    x->is_match_off = false;
    if (r == WR_CACHE_WAIT)
        wr_cache_wait_cancel(x->st, key_of(x), &x->waiter); /* someone refreshes it */
    if (r != WR_CACHE_MISS)
        return;
    wr_cache_entry_ref(e);
    set_stale(x, e); /* its validators go up */
    x->is_filler = x->is_background = true;
    x->fwd = WR_CACHE_FWD_STALE;
    if (start_inner(x, false) != 0) {
        wr_exchange_stop(&x->inner); /* made no sink call */
        x->is_inner_started = x->is_background = false;
        finish_fill(x, false);
    }
}

/* An entry whose body is still filling with no announced length: it may
 * yet outgrow max_object_size and be dropped. */
static bool is_unsure_fill(const struct wr_cache_entry *e)
{
    struct cache_meta m;
    struct wr_str vary;
    read_meta(e, &m, &vary);
    struct wr_cache_cursor c = {0};
    struct wr_str out;
    return m.body_len == UINT64_MAX &&
           wr_cache_body_read(wr_cache_entry_body(e), &c, &out) == WR_CACHE_BODY_FILLING;
}

/* Waits until e's body is complete (then served) or dropped (then x goes
 * upstream with the proxy exchange prepared now, while the vars live). */
static int hold(struct cache_x *x, struct wr_cache_entry *e)
{
    if (!x->is_inner_started) {
        int status = start_inner(x, true);
        if (status != 0) {
            wr_cache_entry_unref(e);
            return status;
        }
    }
    if (x->entry)
        wr_cache_entry_unref(x->entry);
    x->entry = e;
    x->is_holding = true;
    x->mode = CX_WAIT;
    if (!x->is_collapsed) {
        x->is_collapsed = true;
        count(x, WR_METRICS_CACHE_COLLAPSED);
    }
    struct wr_cache_body *body = wr_cache_entry_body(e);
    x->is_waiting_body = wr_cache_body_wait(body, wr_cache_body_len(body), &x->waiter);
    if (!x->is_waiting_body)
        defer(x); /* more came already: look again from the queue */
    return 0;
}

/* on_woken for a held request: the body grew, completed or was dropped. */
static void on_held(struct cache_x *x)
{
    struct wr_cache_body *body = wr_cache_entry_body(x->entry);
    struct wr_cache_cursor c = {0};
    struct wr_str out;
    enum wr_cache_body_state s = wr_cache_body_read(body, &c, &out);
    if (s == WR_CACHE_BODY_FILLING) {
        x->is_waiting_body = wr_cache_body_wait(body, wr_cache_body_len(body), &x->waiter);
        if (!x->is_waiting_body)
            defer(x);
        return;
    }
    struct wr_cache_entry *e = x->entry;
    x->entry = NULL;
    x->is_holding = false;
    if (s == WR_CACHE_BODY_COMPLETE) {
        wr_exchange_stop(&x->inner);
        x->is_inner_started = false;
        count(x, WR_METRICS_CACHE_HIT);
        int status = serve_entry(x, e, true, 0);
        if (status != 0)
            wr_exchange_end(x->ex, status);
        return;
    }
    wr_cache_entry_unref(e);
    x->fwd = WR_CACHE_FWD_MISS;
    x->detail = "too-big";
    forward(x, false); /* the fill was dropped: fetch it ourselves, uncached */
}

/* A stored variant matched: serve it, or forward (revalidation: with
 * the stored validators; a 304 freshens the entry). */
static int on_hit(struct cache_x *x, struct wr_cache_entry *e, bool is_start)
{
    struct cache_meta m;
    struct wr_str vary;
    read_meta(e, &m, &vary);
    struct wr_cache_decision d = wr_cache_decide(&m.fresh, &x->creq, now_sec());
    switch (d.verdict) {
    case WR_CACHE_SERVE:
    case WR_CACHE_SERVE_STALE:
    case WR_CACHE_SERVE_REFRESH:
        if (is_unsure_fill(e) && (x->is_inner_started || is_start))
            return hold(x, e);
        if (x->is_inner_started) {
            wr_exchange_stop(&x->inner); /* prepared while waiting, not needed */
            x->is_inner_started = false;
        }
        count(x, WR_METRICS_CACHE_HIT);
        if (d.verdict == WR_CACHE_SERVE_REFRESH && is_start &&
            !(x->creq.cc.flags & WR_CC_ONLY_IF_CACHED)) /* it asked for no traffic */
            refresh_in_background(x, e);
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

static bool match_disk(struct wr_str secondary, struct wr_str meta, void *arg)
{
    const struct cache_x *x = arg;
    struct cache_meta m;
    if (meta.len < sizeof(m))
        return false;
    memcpy(&m, meta.ptr, sizeof(m));
    if (m.vary_len > meta.len - sizeof(m))
        return false;
    struct wr_str names = {meta.ptr + sizeof(m), m.vary_len};
    return wr_cache_vary_match(names, secondary, x->ex->req->headers, x->ex->req->n_headers);
}

/* Reads hit's body into body; false on a short read or a store refusal. */
static bool read_disk_body(struct cache_x *x, const struct wr_cache_disk_hit *hit,
                           struct wr_cache_body *body)
{
    struct cache_worker *cw = x->cw;
    if (!cw->disk_buf && !(cw->disk_buf = malloc(DISK_READ_PIECE)))
        return false;
    for (uint64_t done = 0; done < hit->body_len;) {
        size_t want = hit->body_len - done < DISK_READ_PIECE ? (size_t)(hit->body_len - done)
                                                              : DISK_READ_PIECE;
        ssize_t n = pread(hit->fd, cw->disk_buf, want, (off_t)(hit->body_off + done));
        if (n <= 0 || wr_cache_body_append(x->st, body, cw->disk_buf, (size_t)n) < 0)
            return false;
        done += (size_t)n;
    }
    return true;
}

/*
 * The filler looks in the disk tier before going upstream: a stored
 * response found there (after a restart, or evicted from memory) is read
 * back into the memory store, published under the fill lock (waiters
 * then find it). Blocking reads on the worker, as static.c's are: the
 * files are small (max_object_size) and usually in the page cache.
 * Returns true when the entry is in memory now.
 */
static bool from_disk(struct cache_x *x)
{
    struct wr_cache_disk_hit *hit = &x->cw->disk_hit;
    if (!wr_cache_disk_get(x->disk, key_of(x), match_disk, x, hit))
        return false;
    struct wr_cache_body *body = wr_cache_body_new(x->st, hit->body_len);
    bool is_read = body && read_disk_body(x, hit, body);
    struct wr_cache_entry *e = NULL;
    if (is_read) {
        wr_cache_body_end(x->st, body);
        e = wr_cache_publish(x->st, key_of(x), hit->secondary, hit->head, hit->meta, body, true,
                             wr_clock_now_ms());
        x->is_filler = false; /* published or not, the lock is given back */
    } else if (body) {
        wr_cache_body_abandon(x->st, body);
    }
    wr_cache_body_unref(body);
    wr_cache_disk_hit_release(hit);
    if (!e)
        return false;
    wr_cache_entry_unref(e);
    count(x, WR_METRICS_CACHE_DISK_HIT);
    return true;
}

/* Looks the key up and acts on the answer. Returns 0, or a status for
 * the front end (start) or to end the exchange with (a wake-up). */
static int lookup(struct cache_x *x, bool is_start)
{
    bool is_only_cached = x->creq.cc.flags & WR_CC_ONLY_IF_CACHED;
    struct wr_cache_entry *e = NULL;
    enum wr_cache_lookup_result r = wr_cache_lookup(
        x->st, key_of(x), match_vary, x, !is_only_cached, &x->waiter, wr_clock_now_ms(), &e);
    switch (r) {
    case WR_CACHE_HIT:
        return on_hit(x, e, is_start);
    case WR_CACHE_MISS:
        x->is_filler = true;
        if (x->disk && !x->stale && !x->is_match_off && from_disk(x))
            return lookup(x, is_start); /* in memory now: a hit */
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

/* ---- fills the client left --------------------------------------------------- */

static void release_refs(struct cache_x *x)
{
    if (x->entry)
        wr_cache_entry_unref(x->entry);
    if (x->stale)
        wr_cache_entry_unref(x->stale);
    if (x->fill_entry)
        wr_cache_entry_unref(x->fill_entry);
    x->entry = x->stale = x->fill_entry = NULL;
}

/* A detached fill ended (or the worker ends): its proxy exchange is
 * stopped and x freed. */
static void reap(struct cache_x *x)
{
    struct cache_worker *cw = x->cw;
    if (!x->inner.is_disposed)
        wr_exchange_stop(&x->inner);
    finish_fill(x, false);
    release_refs(x);
    *x->dprev = x->dnext;
    if (x->dnext)
        x->dnext->dprev = x->dprev;
    wr_config_unref(x->cfg_ref);
    free_x(cw, x);
}

/* The client left while x stores the response it was reading (or a
 * background refresh): the fill goes on for those who come next, holding
 * the snapshot its route lives in. Only once the server's head came: the
 * proxy no longer needs anything of the client's request. */
static bool detach(struct cache_x *x)
{
    struct wr_exchange *ex = x->ex;
    if (!x->is_inner_started || x->inner.is_disposed || x->inner.is_ended || !x->is_storing ||
        !x->inner.is_head_sent || !ex->cfg)
        return false;
    struct cache_worker *cw = x->cw;
    if (x->is_waiting_body)
        wr_cache_body_wait_cancel(wr_cache_entry_body(x->entry), &x->waiter);
    x->is_waiting_body = false;
    if (x->entry)
        wr_cache_entry_unref(x->entry);
    x->entry = NULL;
    x->ex = NULL;
    x->is_detached = true;
    x->mode = CX_FORWARD;
    /* The refcount is the snapshot's one mutable part (atomic). */
    x->cfg_ref = wr_config_ref((struct wr_config *)ex->cfg);
    wr_proxy_detach(&x->inner);
    x->dnext = cw->detached;
    x->dprev = &cw->detached;
    if (cw->detached)
        cw->detached->dprev = &x->dnext;
    cw->detached = x;
    defer(x); /* the proxy may wait for a proceed the client's sink owed */
    return true;
}

/* Queued by on_notify: what x waited for happened (or may have). */
static void on_woken(struct cache_x *x)
{
    if (x->is_detached) {
        if (x->is_reap_due)
            reap(x);
        else
            wr_exchange_proceed(&x->inner);
        return;
    }
    if (x->is_holding) {
        x->is_waiting_body = false;
        on_held(x);
        return;
    }
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

/* RFC 9110 §9.2.1. */
static bool is_safe(enum wr_http_method m)
{
    return m == WR_HTTP_GET || m == WR_HTTP_HEAD || m == WR_HTTP_OPTIONS || m == WR_HTTP_TRACE;
}

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
    x->disk = ex->route->cache ? ex->route->cache->disk : NULL;
    x->request_time = now_sec();
    const struct wr_http_request *req = ex->req;
    wr_cache_req_scan(&x->creq, req->method_id, req->headers, req->n_headers);
    ssize_t key_len = x->st ? wr_tmpl_expand(&ex->route->cache_key, ex->vars, x->key, KEY_MAX) : -1;
    ssize_t fields_len = wr_resp_expand_route_fields(ex->route, ex->vars, x->fields,
                                                     sizeof(x->fields), &x->fields_always_len);
    bool is_cacheable = is_cacheable_request(ex);
    if (key_len < 0 || fields_len < 0 || !is_cacheable) {
        x->fwd = is_cacheable ? WR_CACHE_FWD_BYPASS : WR_CACHE_FWD_METHOD;
        x->is_unsafe = key_len >= 0 && !is_safe(req->method_id);
        if (x->is_unsafe) {
            x->key_len = (size_t)key_len;
            x->vars = *ex->vars;
            x->vars.subject = NULL; /* the match does not outlive start */
            x->vars.ovector = NULL;
            x->vars.n_captures = 0;
        } else {
            x->st = NULL; /* nothing of the store is touched */
        }
        count(x, WR_METRICS_CACHE_BYPASS);
        return start_inner(x, false);
    }
    x->is_cacheable = true;
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
    if (wr_timer_is_armed(&x->lock_timer))
        wr_timer_disarm(cw->henv->wheel, &x->lock_timer);
    if (detach(x))
        return;
    if (x->is_inner_started && !x->inner.is_disposed)
        wr_exchange_stop(&x->inner);
    if (x->is_waiting_lock)
        wr_cache_wait_cancel(x->st, key_of(x), &x->waiter);
    if (x->is_waiting_body)
        wr_cache_body_wait_cancel(wr_cache_entry_body(x->entry), &x->waiter);
    finish_fill(x, false);
    release_refs(x);
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
    wr_cache_disk_hit_init(&cw->disk_hit);
    hw->state = cw;
    return 0;
}

/* Runs before the proxy's (handlers end in reverse): fills still going
 * are cut here, while the proxy's state they use is alive. */
static void cache_worker_fini(struct wr_handler_worker *hw)
{
    struct cache_worker *cw = hw->state;
    if (!cw)
        return;
    on_efd(cw->efd, EV_READ, cw); /* reaps what ended, frees what stopped exchanges left */
    while (cw->detached)
        reap(cw->detached);
    wr_cache_disk_hit_fini(&cw->disk_hit);
    free(cw->disk_buf);
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
