/*
 * h2: the HTTP/2 front end. One nghttp2 server session per connection,
 * fed from the session's own read buffer (nghttp2_session_mem_recv) and
 * drained into an output queue of memory and file segments
 * (nghttp2_session_mem_send for frames nghttp2 builds, send_data for DATA
 * frames, whose payload is never copied: NGHTTP2_DATA_FLAG_NO_COPY points
 * the queue at the response's memory or file range), written through the
 * connection's wr_stream like HTTP/1 output.
 *
 * The request path, one call per arrow: on_read -> feed
 * (nghttp2_session_mem_recv) -> on_header stores the fields of a stream
 * -> on_frame_recv (the whole head) -> start_request: the same router
 * calls as conn.c, then the route's handler on the stream's struct
 * wr_exchange -> the handler answers through the sink (h2_respond,
 * h2_send_head, h2_send, h2_end) which submits HEADERS and a data
 * provider -> run: fill (mem_send, send_data) and write -> on_stream_close
 * parks the stream as a zombie -> reap (once the queue that may still point
 * at its body has gone out) logs it and stops its exchange.
 *
 * Not here: accepting, TLS, the preface sniffing (conn.c), answering (the
 * handlers). Invariants:
 *  - Sink calls never call a handler back and never close anything: they
 *    submit to nghttp2 and schedule the session's work event (ev_work).
 *  - An exchange is stopped only from reap or wr_h2_free, never from an
 *    nghttp2 callback: a closed stream waits on the zombie list until the
 *    output queue is empty, so a file descriptor or a handler buffer that
 *    queued DATA points at outlives the bytes.
 *  - on_close is the last thing an event of ours does.
 *  - Flow control: automatic WINDOW_UPDATEs are off; request body bytes
 *    are consumed (nghttp2_session_consume) only as the handler takes them,
 *    so an upstream that does not take an upload stalls only its stream;
 *    what the handler did not take waits in the stream's own buffer,
 *    bounded by the stream window we advertised.
 *  - Reading pauses while output is blocked (a client that does not read
 *    cannot make us queue without bound).
 */
#include "weir/h2.h"

#include <errno.h>
#include <stdatomic.h>
#include <assert.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "weir/clock.h"
#include "weir/conn.h"
#include "weir/h2_guard.h"
#include "weir/handler.h"
#include "weir/limits.h"
#include "weir/log.h"
#include "weir/metrics.h"
#include "weir/router.h"
#include "weir/stream.h"
#include "weir/timer.h"
#include "weir/tls.h"

#define RBUF_CAP WR_H2_RBUF_BYTES
#define OUT_SEGS 64
#define WBUF_CAP WR_H2_WBUF_BYTES
/* Free wbuf needed before nghttp2 is asked for another frame: its largest
 * non-DATA output is a header block, and ours fit in RHEAD_CAP. */
#define WBUF_LOW (24 * 1024)
#define WRITE_BUDGET (2 * 1024 * 1024) /* fairness, as conn.c */
#define READS_PER_EVENT 4
#define RHEAD_CAP WR_H2_HEAD_BYTES
/* Request fields kept in the stream struct itself; more grow a buffer. A
 * typical browser head, cookies included, fits (as conn.c's first read
 * buffer); only its first pages are touched for a small one. */
#define HSMALL_CAP 2048
#define MAX_NV 128
#define RUN_ROUNDS 16
/* A stream's receive window: what a client may send ahead of the handler. */
#define STREAM_WINDOW 65535

struct out_seg {
    const char *ptr; /* memory (fd < 0): borrowed (wbuf, a body, a handler's iov) */
    size_t len;
    int fd;          /* >= 0: a range of this file, borrowed from its stream */
    off_t off;
};

enum body_kind {
    BODY_NONE,     /* no DATA follows the HEADERS */
    BODY_MEM,      /* body/left: a whole memory body */
    BODY_FILE,     /* fd/off/left: a whole file range */
    BODY_STREAMED, /* iov: what the handler's last send gave */
};

struct h2_stream {
    struct wr_exchange ex;
    struct wr_resp resp;
    struct wr_http_request req;
    struct wr_log_request subject;
    struct wr_h2 *h;
    struct h2_stream *prev, *next; /* h->streams */
    struct h2_stream *next_zombie;
    int32_t id;
    uint64_t start_ms;
    uint64_t start_us;  /* precise start, taken when the access log is on ($request_time) */
    char request_id[33];
    const struct wr_route *route; /* borrowed from cfg: the route that answered */
    int status;          /* a refusal decided while the head came in (431, 400) */
    int log_status;      /* what was answered (one-shot and error answers) */
    uint64_t log_bytes;
    uint64_t last_out_ms; /* clock when the stream last had DATA queued (or had
                             fresh bytes to send): the zero-window stall clock */
    uint64_t last_in_ms; /* clock of the head or the last request DATA: the
                            body_timeout clock while the body is owed */
    uint32_t close_error; /* nghttp2's error code when the stream closed */
    bool is_closed;      /* nghttp2 closed the stream (on the zombie list) */
    bool is_started;     /* the exchange started: stop is owed */
    bool is_answered;    /* a response (HEADERS) was submitted */
    bool is_end_stream;  /* the client's END_STREAM arrived */
    bool has_body;       /* the request has a body (no END_STREAM on its HEADERS) */
    bool is_body_blocked; /* the handler took less than offered: rb holds the rest */
    bool is_body_room;   /* the handler called body_room: offer rb again */
    bool is_last_owed;   /* is_last not yet given to the handler */
    bool is_proceed_owed; /* the handler's iov memory is borrowed until proceed */
    bool is_final;       /* streamed: no bytes follow what iov holds */
    bool is_streamed;    /* the handler sent its head (h2_send_head) */
    bool is_cut;         /* we answered or reset the stream ourselves: the
                            handler's sink calls do nothing any more */
    bool is_stalled;     /* reset because the client's window stalled it */
    bool is_body_late;   /* body_timeout: answered 408 (then RST_STREAM
                            NO_ERROR) or reset */

    enum body_kind body_kind;
    const char *body;
    int fd;              /* BODY_FILE: owned unless ref */
    off_t off;
    uint64_t left;
    void *ref;           /* owns the body when set (open-file cache entry) */
    wr_resp_unref_fn unref;
    struct iovec iov[WR_EXCHANGE_MAX_IOV];
    int n_iov, i_iov;

    char *rb;            /* request body the handler has not taken; owned */
    size_t rb_off, rb_len, rb_cap;
    uint64_t body_seen;

    struct wr_str authority;
    struct wr_str protocol; /* :protocol (RFC 8441), extended CONNECT only */
    char *rhead;         /* RHEAD_CAP bytes from home->h2_heads while the response
                            head is built or a memory body lives in it; else NULL */
    char *hbuf;          /* hcap bytes: the request's pseudo-fields and fields;
                            hsmall, or owned once they outgrew it */
    size_t hlen, hcap;
    char hsmall[HSMALL_CAP];
};

struct wr_h2 {
    struct wr_conns *home;
    struct wr_stream *s;
    const struct wr_config *cfg;
    char peer[48];       /* the client's address as text (copied: conn keeps none) */
    uint64_t conn_id, peer_key;
    wr_h2_close_fn on_close;
    void *conn;
    bool is_tls;
    nghttp2_session *ng;

    struct event ev_read, ev_write, ev_work;
    struct wr_timer timer;
    uint64_t deadline_ms, last_io_ms;
    bool is_read_paused, is_write_armed, is_draining, is_doomed;
    bool is_cut_off;     /* our own GOAWAY is queued: nothing more from nghttp2 */
    int calm_reason;     /* a defence's wr_metrics_h2_reason that tripped, or -1 */
    uint64_t stall_check_ms; /* next look for stalled streams; 0: none planned */
    struct wr_h2_guard guard;

    struct h2_stream *streams, *zombies;
    size_t n_streams;

    size_t pre_len;      /* rbuf[0..pre_len): handed over by conn, not fed yet */
    char *rbuf;          /* RBUF_CAP bytes from home->h2_rbufs while reading (or
                            holding the preread bytes); NULL otherwise */

    struct out_seg segs[OUT_SEGS];
    size_t seg_first, n_segs;
    size_t wlen;
    char *spill;         /* an nghttp2 output too large for wbuf (rare); owned */
    char *wbuf;          /* WBUF_CAP bytes from home->h2_wbufs while frames wait to
                            be written; NULL once the queue is empty */
};

/* stream_new zeroes around the request's field array: nothing may sit
 * between it and known[] that would be left unset. */
static_assert(offsetof(struct wr_http_request, known) ==
                  offsetof(struct wr_http_request, headers) +
                      sizeof(((struct wr_http_request *)0)->headers),
              "the request's field array is followed by known[]");

/* The head being submitted: nghttp2_submit_response copies it, so one per
 * worker thread serves every connection (no session keeps 13 KiB for it). */
static _Thread_local nghttp2_nv submit_nv[MAX_NV];
static _Thread_local char submit_names[RHEAD_CAP]; /* lower-cased field names */

static void run(struct wr_h2 *h);
static const struct wr_exchange_sink h2_sink;

int wr_h2_preface_match(const char *buf, size_t len)
{
    size_t n = len < WR_H2_PREFACE_LEN ? len : WR_H2_PREFACE_LEN;
    if (memcmp(buf, WR_H2_PREFACE, n) != 0)
        return -1;
    return len >= WR_H2_PREFACE_LEN ? 1 : 0;
}

/* ---- output queue ----------------------------------------------------- */

/* A buffer from one of the worker's HTTP/2 free lists, counted in
 * weir_conn_buffer_bytes; NULL when out of memory. */
static char *take_buf(struct wr_h2 *h, struct wr_buf_pool *pool)
{
    char *b = wr_buf_pool_take(pool);
    if (b)
        h->home->buffer_bytes += pool->block_size;
    return b;
}

static void give_buf(struct wr_h2 *h, struct wr_buf_pool *pool, char **b)
{
    if (!*b)
        return;
    wr_buf_pool_give(pool, *b);
    h->home->buffer_bytes -= pool->block_size;
    *b = NULL;
}

static bool has_room(const struct wr_h2 *h, size_t n_segs, size_t bytes)
{
    return h->n_segs + n_segs <= OUT_SEGS && h->wlen + bytes <= WBUF_CAP;
}

static void push_seg(struct wr_h2 *h, const char *ptr, size_t len, int fd, off_t off)
{
    if (len == 0)
        return;
    /* Frames copied one after another into wbuf (a HEADERS frame, then
     * the DATA frame header after it) are one segment: fewer pieces to
     * assemble per record. */
    struct out_seg *last = h->n_segs > h->seg_first ? &h->segs[h->n_segs - 1] : NULL;
    if (fd < 0 && last && last->fd < 0 && last->ptr + last->len == ptr) {
        last->len += len;
        return;
    }
    h->segs[h->n_segs++] = (struct out_seg){.ptr = ptr, .len = len, .fd = fd, .off = off};
}

/* Copies bytes into wbuf (or, too large for it, a spill buffer) and queues
 * them. Returns -1 when out of memory. */
static int push_copy(struct wr_h2 *h, const void *p, size_t len)
{
    if (h->wlen + len <= WBUF_CAP) {
        if (!h->wbuf && !(h->wbuf = take_buf(h, &h->home->h2_wbufs)))
            return -1;
        memcpy(h->wbuf + h->wlen, p, len);
        push_seg(h, h->wbuf + h->wlen, len, -1, 0);
        h->wlen += len;
        return 0;
    }
    if (h->spill)
        return -1; /* fill stops after a spill: never two at once */
    h->spill = malloc(len);
    if (!h->spill)
        return -1;
    memcpy(h->spill, p, len);
    push_seg(h, h->spill, len, -1, 0);
    return 0;
}

static bool record_waits(const struct wr_h2 *h)
{
    return wr_stream_is_tls(h->s) && wr_stream_wants_write(h->s);
}

static bool has_output(const struct wr_h2 *h)
{
    return h->seg_first < h->n_segs || record_waits(h);
}

static void advance(struct wr_h2 *h, size_t n)
{
    while (n > 0) {
        struct out_seg *s = &h->segs[h->seg_first];
        size_t take = n < s->len ? n : s->len;
        if (s->fd >= 0)
            s->off += (off_t)take;
        else
            s->ptr += take;
        s->len -= take;
        n -= take;
        if (s->len == 0)
            h->seg_first++;
    }
    if (h->seg_first == h->n_segs) {
        h->seg_first = h->n_segs = h->wlen = 0;
        free(h->spill);
        h->spill = NULL;
        give_buf(h, &h->home->h2_wbufs, &h->wbuf); /* idle: nothing to write */
    }
}

/* Asks nghttp2 for frames while the queue has room. Returns -1 on a fatal
 * session error. */
static int fill(struct wr_h2 *h)
{
    if (h->is_cut_off)
        return 0; /* the session failed: its GOAWAY is ours, and last */
    while (has_room(h, 4, WBUF_LOW) && !h->spill) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(h->ng, &data);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        if (push_copy(h, data, (size_t)n) < 0)
            return -1;
    }
    return 0;
}

/* Writes the queue, refilling it from nghttp2, within the budget. Returns
 * -1 when the connection broke. */
static int flush(struct wr_h2 *h)
{
    size_t budget = WRITE_BUDGET;
    if (record_waits(h)) {
        int r = wr_stream_flush(h->s);
        if (r <= 0)
            return r;
    }
    while (budget > 0) {
        if (h->seg_first == h->n_segs) {
            if (fill(h) < 0)
                return -1;
            if (h->n_segs == 0)
                return 0;
        }
        struct wr_stream_seg v[OUT_SEGS];
        size_t k = 0;
        for (size_t i = h->seg_first; i < h->n_segs; i++)
            v[k++] = (struct wr_stream_seg){h->segs[i].ptr, h->segs[i].len, h->segs[i].fd,
                                            h->segs[i].off};
        ssize_t n = wr_stream_send(h->s, v, k, budget);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        h->last_io_ms = wr_clock_now_ms();
        wr_metrics_add(&h->home->metrics->bytes_out, (uint64_t)n);
        advance(h, (size_t)n);
        budget = (size_t)n < budget ? budget - (size_t)n : 0;
    }
    return 0;
}

/* ---- streams ----------------------------------------------------------- */

size_t wr_h2_stream_bytes(void)
{
    return sizeof(struct h2_stream);
}

/* A stream struct from the worker's free list (no malloc per stream once
 * warm); its head buffer and larger field buffer are taken only on need. */
static struct h2_stream *stream_new(struct wr_h2 *h, int32_t id)
{
    size_t max = h->cfg->limits.max_header_bytes;
    struct h2_stream *st = wr_buf_pool_take(&h->home->h2_streams);
    if (!st)
        return NULL;
    /* Zero all but the request's field array (3 KiB: n_headers bounds
     * every read of it) and the head buffer. */
    const size_t fields = offsetof(struct h2_stream, req.headers);
    const size_t after = offsetof(struct h2_stream, req.known);
    memset(st, 0, fields);
    memset((char *)st + after, 0, offsetof(struct h2_stream, hsmall) - after);
    st->h = h;
    st->id = id;
    st->fd = -1;
    st->hbuf = st->hsmall;
    st->hcap = max < HSMALL_CAP ? max : HSMALL_CAP;
    st->start_ms = wr_clock_now_ms();
    st->start_us = h->home->is_logging ? wr_clock_now_us() : 0;
    st->next = h->streams;
    if (h->streams)
        h->streams->prev = st;
    h->streams = st;
    h->n_streams++;
    wr_metrics_add(&h->home->metrics->h2_streams_open, 1);
    return st;
}

/* Lets go of the response body the stream still holds. */
static void release_body(struct h2_stream *st)
{
    if (st->ref)
        st->unref(st->ref);
    else if (st->fd >= 0)
        close(st->fd);
    st->ref = NULL;
    st->fd = -1;
    st->body_kind = BODY_NONE;
}

static struct wr_str find_value(const struct wr_http_request *req, const char *name)
{
    const struct wr_http_header *f = wr_http_find_header(req, wr_str_from_cstr(name));
    return f ? f->value : (struct wr_str){NULL, 0};
}

/* The access log line and the request metrics of a finished stream. */
static void account(struct h2_stream *st)
{
    struct wr_h2 *h = st->h;
    struct wr_conns *cs = h->home;
    int status = st->log_status;
    uint64_t bytes = st->log_bytes;
    if (st->is_streamed) /* the handler's own head: what it recorded */
        status = st->ex.log.status, bytes = st->ex.log.body_bytes;
    if (!st->is_answered)
        status = 499; /* the client left (reset, close) before any answer */
    uint64_t us = (wr_clock_now_ms() - st->start_ms) * 1000;
    wr_metrics_count_request(cs->metrics, st->route ? st->route->metrics_id : 0, status, us);
    wr_metrics_add(&cs->metrics->h2_requests, 1);
    struct wr_access_log *al = wr_conns_access_log(cs, st->route);
    if (!al || st->req.method.len == 0)
        return;
    const struct wr_http_request *req = &st->req;
    struct wr_access_entry e = {
        .remote_addr = wr_str_from_cstr(h->peer), .method = req->method,
        .target = req->target, .host = req->host,
        .referer = wr_http_known_value(req, WR_HTTP_KNOWN_REFERER),
        .user_agent = wr_http_known_value(req, WR_HTTP_KNOWN_USER_AGENT),
        .request_id = wr_str_from_cstr(st->request_id),
        .route = st->route ? wr_str_from_cstr(st->route->name) : WR_STR(""),
        .minor_version = 1, .is_http2 = true, .stream_id = (uint32_t)st->id, .status = status, .bytes_sent = bytes,
        .request_time_us = st->start_us ? wr_clock_now_us() - st->start_us : us, .log_time = cs->clock.log_time, .iso_time = cs->clock.iso_time,
        .is_tls = h->is_tls, .req = req,
        .ssl_protocol = h->is_tls ? wr_tls_version(wr_stream_tls(h->s)) : NULL,
    };
    const struct wr_log_format *f = &h->cfg->server.access_log_format;
    if (f->has_msec_time)
        e.unix_ms = wr_log_unix_ms();
    if (st->is_started && st->ex.log.upstream_addr) {
        e.upstream_addr = wr_str_from_cstr(st->ex.log.upstream_addr);
        e.upstream_status = wr_str_from_cstr(st->ex.log.upstream_status);
        e.upstream_time_us = st->ex.log.upstream_time_us;
    }
    wr_access_log_add(al, f, &e);
}

/* Logs st, stops its exchange and frees it. Never from an nghttp2 or
 * handler callback. */
static void stream_finish(struct h2_stream *st)
{
    struct wr_h2 *h = st->h;
    account(st);
    if (st->is_started)
        wr_exchange_stop(&st->ex);
    release_body(st);
    free(st->rb);
    give_buf(h, &h->home->h2_heads, &st->rhead);
    if (st->hbuf != st->hsmall)
        free(st->hbuf);
    if (st->prev)
        st->prev->next = st->next;
    else
        h->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    h->n_streams--;
    wr_metrics_set(&h->home->metrics->h2_streams_open,
                   atomic_load_explicit(&h->home->metrics->h2_streams_open,
                                        memory_order_relaxed) - 1);
    wr_buf_pool_give(&h->home->h2_streams, st);
}

/* Closed streams, once nothing queued can point at their bodies. */
static void reap(struct wr_h2 *h)
{
    while (h->zombies) {
        struct h2_stream *st = h->zombies;
        h->zombies = st->next_zombie;
        stream_finish(st);
    }
}

/* Asks for our own next turn (sink calls act there, never inside). */
static void schedule(struct wr_h2 *h)
{
    event_active(&h->ev_work, EV_TIMEOUT, 0);
}

/* ---- response heads ---------------------------------------------------- */

/* RFC 9113 §8.2.2: connection-specific fields must not be sent. */
static bool is_connection_field(struct wr_str name)
{
    /* Lengths known at compile time: every response field is checked. */
    static const struct wr_str names[] = {
        {"connection", 10},        {"keep-alive", 10}, {"proxy-connection", 16},
        {"transfer-encoding", 17}, {"upgrade", 7},     {"content-length", 14},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (name.len == names[i].len && wr_str_eq_nocase(name, names[i]))
            return true;
    }
    return false;
}

struct nv_build {
    struct wr_h2 *h;
    size_t n, names_len;
    bool is_overflow;
};

static void add_nv(struct nv_build *b, const char *name, size_t name_len, const char *value,
                   size_t value_len)
{
    if (b->n == MAX_NV) {
        b->is_overflow = true;
        return;
    }
    submit_nv[b->n++] = (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, name_len, value_len,
                                    NGHTTP2_NV_FLAG_NONE};
}

/* One field of a wr_resp head: its name lower-cased (RFC 9113 §8.2.1). */
static bool add_field(void *arg, struct wr_str name, struct wr_str value)
{
    struct nv_build *b = arg;
    if (is_connection_field(name))
        return true;
    if (b->names_len + name.len > sizeof(submit_names)) {
        b->is_overflow = true;
        return false;
    }
    char *lower = submit_names + b->names_len;
    for (size_t i = 0; i < name.len; i++) {
        char ch = name.ptr[i];
        lower[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
    }
    b->names_len += name.len;
    add_nv(b, lower, name.len, value.ptr, value.len);
    return true;
}

static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *user);

/* st's response, initialised on a head buffer from the worker's list (taken
 * now unless st holds one). Out of memory, on no buffer at all: the head
 * overflows and the stream is reset (500) instead of answered. */
static struct wr_resp *begin_resp(struct h2_stream *st)
{
    struct wr_h2 *h = st->h;
    if (!st->rhead)
        st->rhead = take_buf(h, &h->home->h2_heads);
    wr_resp_init(&st->resp, st->rhead, st->rhead ? RHEAD_CAP : 0);
    return &st->resp;
}

/* nghttp2 copied st's head when it was submitted: the head buffer goes
 * back to the worker unless the memory body still lives in it (a
 * templated return, an error page). A handler that built its head on its
 * own buffer keeps it. */
static void end_resp(struct h2_stream *st)
{
    if (!st->rhead)
        return;
    uintptr_t b = (uintptr_t)st->body, at = (uintptr_t)st->rhead;
    if (st->body_kind == BODY_MEM && b >= at && b < at + RHEAD_CAP)
        return;
    if (st->resp.head == st->rhead)
        wr_resp_init(&st->resp, NULL, 0); /* nothing may read the old head */
    give_buf(st->h, &st->h->home->h2_heads, &st->rhead);
}

/* 1xx, 204 and 304 carry no content (RFC 9110 §6.4.1). */
static bool status_has_body(int status)
{
    return status >= 200 && status != 204 && status != 304;
}

/* Submits r's head on st with content-length when known; DATA follows
 * from st's body when has_body. Returns 0 or -1. */
static int submit_head(struct h2_stream *st, const struct wr_resp *r, bool has_length,
                       uint64_t len, bool has_body)
{
    struct wr_h2 *h = st->h;
    char status[4], clen[WR_STR_U64_MAX];
    int s = r->status >= 100 && r->status <= 999 ? r->status : 500;
    status[0] = (char)('0' + s / 100), status[1] = (char)('0' + s / 10 % 10);
    status[2] = (char)('0' + s % 10), status[3] = '\0';
    struct nv_build b = {.h = h};
    add_nv(&b, ":status", 7, status, 3);
    wr_resp_each_field(r, add_field, &b);
    if (has_length && status_has_body(s))
        add_nv(&b, "content-length", 14, clen, wr_str_format_u64(len, clen));
    if (b.is_overflow)
        return -1;
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_body};
    st->is_answered = true;
    st->last_out_ms = wr_clock_now_ms();
    return nghttp2_submit_response(h->ng, st->id, submit_nv, b.n, has_body ? &prd : NULL) == 0
               ? 0
               : -1;
}

static bool is_head_request(const struct h2_stream *st)
{
    return st->req.method_id == WR_HTTP_HEAD;
}

/* The stream could not be answered properly: reset it. */
static void reset_stream(struct h2_stream *st, uint32_t code)
{
    nghttp2_submit_rst_stream(st->h->ng, NGHTTP2_FLAG_NONE, st->id, code);
    schedule(st->h);
}

/*
 * A whole response (head and memory or file body) on st: the route's
 * add_header fields as conn.c's commit_response adds them, then HEADERS
 * with content-length and DATA. Takes over r's body.
 */
static void submit_whole(struct h2_stream *st, struct wr_resp *r, const struct wr_route *route,
                         const struct wr_tmpl_vars *vars)
{
    wr_resp_add_route_fields(r, route, vars);
    st->ref = r->body_ref;
    st->unref = r->body_unref;
    st->fd = r->file_fd;
    st->off = r->file_off;
    st->left = r->body_len;
    st->body = r->body;
    bool has_body = !r->is_head_only && !is_head_request(st) && r->body_len > 0 &&
                    status_has_body(r->status);
    st->body_kind = !has_body ? BODY_NONE : st->fd >= 0 ? BODY_FILE : BODY_MEM;
    st->log_status = r->status;
    st->log_bytes = has_body ? r->body_len : 0;
    if (r->is_overflow || submit_head(st, r, !r->is_length_unknown, r->body_len, has_body) < 0) {
        release_body(st);
        reset_stream(st, NGHTTP2_INTERNAL_ERROR);
        st->log_status = 500;
        return;
    }
    if (!has_body)
        release_body(st);
    end_resp(st);
}

/* An error page for status in st's response (no handler answers it). */
static struct wr_resp *build_error(struct h2_stream *st, int status, const char *allow)
{
    struct wr_resp *r = begin_resp(st);
    wr_resp_start(r, status, &st->h->home->clock);
    if (allow)
        wr_resp_field(r, WR_HTTP_FIELD_ALLOW, wr_str_from_cstr(allow));
    wr_resp_set_page(r);
    return r;
}

/* ---- DATA out ---------------------------------------------------------- */

/* The next bytes of st's body (never copied: send_data queues them). */
static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void)ng, (void)id, (void)buf, (void)user;
    struct h2_stream *st = src->ptr;
    if (st->body_kind != BODY_STREAMED) {
        size_t n = st->left < length ? (size_t)st->left : length;
        *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
        if (n == st->left)
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t)n;
    }
    while (st->i_iov < st->n_iov && st->iov[st->i_iov].iov_len == 0)
        st->i_iov++;
    if (st->i_iov == st->n_iov) {
        if (!st->is_final)
            return NGHTTP2_ERR_DEFERRED; /* h2_send or h2_end resumes */
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        return 0;
    }
    size_t avail = st->iov[st->i_iov].iov_len;
    size_t n = avail < length ? avail : length;
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    bool is_rest_empty = true;
    for (int i = st->i_iov + 1; i < st->n_iov; i++)
        is_rest_empty &= st->iov[i].iov_len == 0;
    if (n == avail && is_rest_empty && st->is_final)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* A DATA frame nghttp2 decided to send: its header copied, its payload
 * queued in place (memory or file range). */
static int send_data(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd,
                     size_t length, nghttp2_data_source *src, void *user)
{
    (void)ng;
    struct wr_h2 *h = user;
    struct h2_stream *st = src->ptr;
    if (frame->data.padlen > 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE; /* we never ask for padding */
    if (!has_room(h, 2, 9))
        return NGHTTP2_ERR_WOULDBLOCK;
    push_copy(h, framehd, 9);
    st->last_out_ms = wr_clock_now_ms();
    /* a client opens windows for what it receives: one stream and one
     * connection WINDOW_UPDATE per DATA frame are fair (h2_guard.c) */
    wr_h2_guard_earn(&h->guard, WR_H2_GUARD_WINDOW_UPDATE, 2);
    if (st->body_kind == BODY_FILE) {
        push_seg(h, NULL, length, st->fd, st->off);
        st->off += (off_t)length;
        st->left -= length;
    } else if (st->body_kind == BODY_MEM) {
        push_seg(h, st->body, length, -1, 0);
        st->body += length;
        st->left -= length;
    } else {
        struct iovec *v = &st->iov[st->i_iov];
        push_seg(h, v->iov_base, length, -1, 0);
        v->iov_base = (char *)v->iov_base + length;
        v->iov_len -= length;
        if (v->iov_len == 0)
            st->i_iov++;
    }
    return 0;
}

/* ---- the sink (handler.h) ---------------------------------------------- */

/* Drops the body a response handed over (a refused one-shot answer). */
static void release_file_of(struct wr_resp *r)
{
    if (r->body_ref)
        r->body_unref(r->body_ref);
    else if (r->file_fd >= 0)
        close(r->file_fd);
}

static void h2_respond(struct wr_exchange *ex)
{
    struct h2_stream *st = ex->front;
    if (st->is_cut) {
        release_file_of(ex->resp);
        return;
    }
    submit_whole(st, ex->resp, ex->route, ex->vars);
    schedule(st->h);
}

static void h2_send_head(struct wr_exchange *ex)
{
    struct h2_stream *st = ex->front;
    struct wr_resp *r = ex->resp;
    if (st->is_cut)
        return;
    st->is_streamed = true;
    bool has_body = !is_head_request(st) && status_has_body(r->status);
    st->body_kind = has_body ? BODY_STREAMED : BODY_NONE;
    if (r->is_overflow || submit_head(st, r, r->has_length, r->body_len, has_body) < 0)
        reset_stream(st, NGHTTP2_INTERNAL_ERROR);
    end_resp(st);
    schedule(st->h);
}

static bool h2_send(struct wr_exchange *ex, const struct iovec *iov, int n, bool is_final)
{
    struct h2_stream *st = ex->front;
    if (st->body_kind != BODY_STREAMED || st->is_closed || st->is_cut)
        return true; /* no body may follow (HEAD, 204, 304), or the client reset it */
    bool has_bytes = false;
    for (int i = 0; i < n; i++) {
        st->iov[i] = iov[i];
        has_bytes |= iov[i].iov_len > 0;
    }
    st->n_iov = n;
    st->i_iov = 0;
    st->is_final |= is_final;
    if (has_bytes)
        st->last_out_ms = wr_clock_now_ms(); /* the stall clock starts now */
    nghttp2_session_resume_data(st->h->ng, st->id);
    schedule(st->h);
    st->is_proceed_owed = has_bytes;
    return !has_bytes;
}

static void h2_body_room(struct wr_exchange *ex)
{
    struct h2_stream *st = ex->front;
    st->is_body_room = true;
    schedule(st->h);
}

static void h2_end(struct wr_exchange *ex, int how)
{
    struct h2_stream *st = ex->front;
    if (st->is_closed) {
        schedule(st->h);
        return;
    }
    if (st->is_cut)
        return;
    if (how >= 400 && !ex->is_head_sent) {
        /* The handler's error: the route's "always" rules apply (conn.c). */
        submit_whole(st, build_error(st, how, NULL), ex->route, ex->vars);
    } else if (how == WR_EXCHANGE_BROKEN) {
        /* Never a forged complete response: the client sees the cut. */
        st->log_status = ex->log.status ? ex->log.status : 502;
        st->is_answered = true;
        reset_stream(st, NGHTTP2_INTERNAL_ERROR);
    } else if (st->body_kind == BODY_STREAMED) {
        st->is_final = true;
        nghttp2_session_resume_data(st->h->ng, st->id);
    }
    schedule(st->h);
}

/* HTTP/2 has no 101 (RFC 9113 §8.6): a handler never upgrades an h2 request
 * (req->is_upgrade is false); refuse if one tried. */
static void h2_upgrade(struct wr_exchange *ex, const struct iovec *iov, int n)
{
    (void)iov, (void)n;
    reset_stream(ex->front, NGHTTP2_INTERNAL_ERROR);
}

static const struct wr_exchange_sink h2_sink = {
    .respond = h2_respond,
    .send_head = h2_send_head,
    .send = h2_send,
    .body_room = h2_body_room,
    .end = h2_end,
    .upgrade = h2_upgrade,
};

/* ---- requests in ------------------------------------------------------ */

/* s points into [from, from + len): make it point at the same bytes in to. */
static void rebase(struct wr_str *s, const char *from, size_t len, char *to)
{
    uintptr_t p = (uintptr_t)s->ptr, at = (uintptr_t)from;
    if (s->ptr && p >= at && p <= at + len) /* the end too: an empty query */
        s->ptr = to + (p - at);
}

/* Room for need bytes of fields in st's head buffer: the fields outgrew
 * the struct's own 2 KiB (a rare, large head), so they move to a buffer
 * twice as large, at most max_header_size. Returns -1 when the head would
 * be over max_header_size (431) or out of memory. */
static int grow_fields(struct h2_stream *st, size_t need)
{
    size_t max = st->h->cfg->limits.max_header_bytes;
    if (need > max)
        return -1;
    size_t cap = st->hcap * 2;
    cap = cap < need ? need : cap > max ? max : cap;
    char *to = malloc(cap);
    if (!to)
        return -1;
    memcpy(to, st->hbuf, st->hlen);
    struct wr_http_request *req = &st->req;
    struct wr_str *one[] = {&req->method, &req->target, &req->host, &req->path,
                            &req->query, &st->authority};
    for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++)
        rebase(one[i], st->hbuf, st->hlen, to);
    for (size_t i = 0; i < req->n_headers; i++) {
        rebase(&req->headers[i].name, st->hbuf, st->hlen, to);
        rebase(&req->headers[i].value, st->hbuf, st->hlen, to);
    }
    if (st->hbuf != st->hsmall)
        free(st->hbuf);
    st->hbuf = to;
    st->hcap = cap;
    return 0;
}

/* Copies bytes into st's head buffer, which has room for them. */
static struct wr_str keep(struct h2_stream *st, const uint8_t *p, size_t len)
{
    char *at = st->hbuf + st->hlen;
    memcpy(at, p, len);
    st->hlen += len;
    return (struct wr_str){at, len};
}

/* name[0..len) is the string literal lit (its length known at compile time). */
#define name_is(name, len, lit) ((len) == sizeof(lit) - 1 && memcmp((name), (lit), (len)) == 0)

/* Stores one pseudo-field (nghttp2 checked which may appear, once, first). */
static void store_pseudo(struct h2_stream *st, const uint8_t *name, size_t len,
                         struct wr_str v)
{
    if (name_is(name, len, ":method"))
        st->req.method = v;
    else if (name_is(name, len, ":path"))
        st->req.target = v;
    else if (name_is(name, len, ":authority"))
        st->authority = v;
    else if (name_is(name, len, ":protocol"))
        st->protocol = v;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t name_len, const uint8_t *value, size_t value_len, uint8_t flags,
                     void *user)
{
    (void)flags, (void)user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* trailers: not forwarded */
    struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    if (!st || st->status != 0)
        return 0;
    /* Room for both first: growing between the two would move the name. */
    size_t len = name_len + value_len;
    if (st->hcap - st->hlen < len && grow_fields(st, st->hlen + len) < 0) {
        st->status = 431; /* over max_header_size, as for HTTP/1.1 */
        return 0;
    }
    struct wr_str n = keep(st, name, name_len), v = keep(st, value, value_len);
    if (name_len > 0 && name[0] == ':') {
        store_pseudo(st, name, name_len, v);
        return 0;
    }
    size_t max = st->h->cfg->limits.max_headers;
    if (st->req.n_headers >= max || st->req.n_headers >= WR_HTTP_MAX_HEADERS) {
        st->status = 431;
        return 0;
    }
    st->req.headers[st->req.n_headers++] = (struct wr_http_header){n, v};
    return 0;
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    struct wr_h2 *h = user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct h2_stream *st = stream_new(h, frame->hd.stream_id);
    if (!st)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* the stream is reset */
    nghttp2_session_set_stream_user_data(ng, frame->hd.stream_id, st);
    return 0;
}

/* RFC 9113 §8.2.3: cookie crumbs are joined with "; " into one field
 * before the request goes to an HTTP/1.1 server. Returns 0, or 431 when
 * the joined field does not fit. */
static int join_cookies(struct h2_stream *st)
{
    struct wr_http_request *req = &st->req;
    size_t first = SIZE_MAX, n = 0, total = 0;
    for (size_t i = 0; i < req->n_headers; i++) {
        if (!wr_str_eq(req->headers[i].name, WR_STR("cookie")))
            continue;
        first = first == SIZE_MAX ? i : first;
        n++;
        total += req->headers[i].value.len + 2;
    }
    if (n < 2)
        return 0;
    if (st->hcap - st->hlen < total && grow_fields(st, st->hlen + total) < 0)
        return 431;
    char *out = st->hbuf + st->hlen, *p = out;
    size_t k = 0;
    for (size_t i = 0; i < req->n_headers; i++) {
        struct wr_http_header *f = &req->headers[i];
        if (!wr_str_eq(f->name, WR_STR("cookie"))) {
            req->headers[k++] = *f;
            continue;
        }
        if (p != out)
            memcpy(p, "; ", 2), p += 2;
        memcpy(p, f->value.ptr, f->value.len);
        p += f->value.len;
        if (i == first)
            req->headers[k++] = *f;
    }
    req->n_headers = k;
    st->hlen += (size_t)(p - out);
    for (size_t i = 0; i < k; i++) {
        if (wr_str_eq(req->headers[i].name, WR_STR("cookie")))
            req->headers[i].value = (struct wr_str){out, (size_t)(p - out)};
    }
    return 0;
}

/* Fills the request view the handlers read from the stored fields. */
static int finish_request_fields(struct h2_stream *st)
{
    struct wr_http_request *req = &st->req;
    req->method_id = wr_http_method_from(req->method);
    req->minor_version = 1;
    req->is_keep_alive = true;
    struct wr_str host = st->authority;
    if (host.len == 0)
        host = find_value(req, "host"); /* RFC 9113 §8.3.1: Host when no :authority */
    req->host = host;
    if (req->method_id == WR_HTTP_CONNECT && st->protocol.ptr) {
        /* RFC 8441 extended CONNECT (nghttp2 let :protocol through only
         * because we offered it, and checked :scheme and :path are there):
         * a WebSocket, routed and proxied as HTTP/1.1's Upgrade GET. Other
         * protocols weir does not tunnel. */
        if (!wr_str_eq_nocase(st->protocol, WR_STR("websocket")))
            return 501;
        req->method_id = WR_HTTP_GET;
        req->is_extended_connect = true;
    } else if (req->method_id == WR_HTTP_CONNECT) {
        req->target = host; /* a forward-proxy CONNECT: refused before routing */
    }
    req->path = req->target;
    const char *q = memchr(req->target.ptr ? req->target.ptr : "", '?', req->target.len);
    if (q) {
        req->path.len = (size_t)(q - req->target.ptr);
        req->query = (struct wr_str){q + 1, req->target.len - req->path.len - 1};
    }
    struct wr_str cl = find_value(req, "content-length");
    if (cl.ptr) {
        /* nghttp2 checked it is one valid number (RFC 9110 §8.6). */
        req->has_content_length = true;
        for (size_t i = 0; i < cl.len; i++)
            req->content_length = req->content_length * 10 + (uint64_t)(cl.ptr[i] - '0');
    }
    /* A body of unknown length goes upstream chunked; a tunnel's bytes go
     * as they are. */
    req->is_chunked = st->has_body && !req->has_content_length && !req->is_extended_connect;
    int status = join_cookies(st);
    if (status == 0)
        wr_http_index_fields(req); /* headers[] is final: lookups by kind from now */
    return status;
}

/* The route for st into cs->match (conn.c's select_route, for h2). */
static int select_route(struct h2_stream *st, struct wr_str host, struct wr_str *path)
{
    struct wr_h2 *h = st->h;
    return wr_conns_select_route(h->home, h->cfg, h->s, &st->req, host, path);
}

/* Starts the route's handler on st. Returns 0, or a status to answer. */
static int start_exchange(struct h2_stream *st, const struct wr_tmpl_vars *vars,
                          struct wr_str path, size_t path_len)
{
    struct wr_h2 *h = st->h;
    struct wr_conns *cs = h->home;
    const struct wr_route *route = cs->match.route;
    st->ex = (struct wr_exchange){
        .req = &st->req, .route = route, .match = &cs->match, .path = path, .vars = vars,
        .clock = &cs->clock, .resp = &st->resp,
        .scratch = cs->scratch + path_len, .scratch_cap = cs->scratch_cap - path_len,
        .log_subject = &st->subject, .worker_id = cs->worker_id, .conn_id = h->conn_id,
        .client_addr = wr_str_from_cstr(h->peer), .is_tls = h->is_tls,
        .has_body = st->has_body, .is_keep_alive = !h->is_draining,
        .max_head_bytes = h->cfg->limits.max_header_bytes,
        .zw = &cs->zw, .compression = &h->cfg->compression,
    };
    begin_resp(st);
    wr_exchange_init(&st->ex, wr_handler_for(route->action),
                     wr_handlers_state(&cs->handlers, route->action), &h2_sink, st);
    st->is_started = true;
    st->is_last_owed = st->has_body;
    return wr_exchange_start(&st->ex);
}

/* A route's rate_limit for this client: 0, or 429 with the seconds to wait. */
static int check_rate(struct wr_h2 *h, const struct wr_route *route, uint64_t *retry_s)
{
    if (h->peer_key == 0 || route->rate_limit.interval_us == 0)
        return 0;
    *retry_s = wr_limits_rate_check(h->home->limits, h->peer_key, route->name,
                                    &route->rate_limit, wr_clock_now_us());
    return *retry_s == 0 ? 0 : 429;
}

/* 200 to an OPTIONS * no route takes: the server's methods. */
static void submit_server_options(struct h2_stream *st, const char *allow)
{
    struct wr_resp *r = begin_resp(st);
    wr_resp_start(r, 200, &st->h->home->clock);
    wr_resp_field(r, WR_HTTP_FIELD_ALLOW, wr_str_from_cstr(allow));
    r->body = "";
    submit_whole(st, r, NULL, NULL);
}

/* The whole head of st arrived: route it and start its handler. */
static void start_request(struct h2_stream *st)
{
    struct wr_h2 *h = st->h;
    struct wr_conns *cs = h->home;
    h->home->n_requests++;
    int status = st->status ? st->status : finish_request_fields(st);
    wr_conns_request_id(cs, st->request_id);
    st->subject = (struct wr_log_request){.id = wr_str_from_cstr(st->request_id),
                                          .client = wr_str_from_cstr(h->peer),
                                          .method = st->req.method, .target = st->req.target};
    struct wr_router_match *m = &cs->match;
    m->route = NULL;
    m->n_captures = 0;
    struct wr_str host = wr_router_host_var(st->req.host, cs->host_buf, sizeof(cs->host_buf));
    struct wr_str path = {cs->scratch, 0};
    if (status == 0)
        status = select_route(st, host, &path);
    const size_t path_len = path.ptr == cs->scratch ? path.len : 0;
    struct wr_tmpl_vars vars = {
        .host = host, .request_uri = st->req.target,
        .scheme = h->is_tls ? WR_STR("https") : WR_STR("http"),
        .remote_addr = wr_str_from_cstr(h->peer),
        .request_id = wr_str_from_cstr(st->request_id),
        .subject = path.ptr, .ovector = m->ovector, .n_captures = m->n_captures,
    };
    struct wr_conns_client_cert cert;
    wr_conns_client_cert(&cert, h->is_tls ? wr_stream_tls(h->s) : NULL, &vars);
    if (status == 0 && m->route && m->route->require_client_cert && !cert.is_verified)
        status = 403; /* require_client_cert: no verified client certificate */
    if (status == 200 && !m->route) {
        submit_server_options(st, m->allow);
        return;
    }
    /* Only a proxy route with websocket = on opens a tunnel: any other
     * answer to an extended CONNECT would claim one was opened. */
    if (status == 0 && st->req.is_extended_connect &&
        (m->route->action != WR_ACTION_PROXY || !m->route->websocket))
        status = 501;
    if (status == 0 && !wr_access_allows(m->route->access, m->route->n_access, h->peer))
        status = 403; /* the route's allow and deny */
    uint64_t retry_s = 0;
    if (status == 0 && m->route->auth_challenge)
        status = wr_conns_check_auth(cs, m->route, &st->req, h->peer_key, h->peer, &retry_s);
    if (status == 0 && (status = check_rate(h, m->route, &retry_s)) == 0) {
        st->route = m->route;
        status = start_exchange(st, &vars, path, path_len);
        if (status == 0)
            return;
    }
    struct wr_resp *r = build_error(st, status, status == 405 ? m->allow : NULL);
    if (status == 429)
        wr_resp_field_u64(r, WR_HTTP_FIELD_RETRY_AFTER, retry_s);
    if (status == 401)
        wr_resp_header(r, "WWW-Authenticate", wr_str_from_cstr(m->route->auth_challenge));
    submit_whole(st, r, m->route, &vars);
}

/* Takes the stream's body from the handler's view: consumed bytes open the
 * client's window again. */
static void consume(struct h2_stream *st, size_t n)
{
    if (n > 0)
        nghttp2_session_consume(st->h->ng, st->id, n);
}

/* Keeps body bytes the handler did not take. Returns -1 out of memory. */
static int buffer_body(struct h2_stream *st, const uint8_t *p, size_t n)
{
    if (st->rb_off > 0 && st->rb_off == st->rb_len)
        st->rb_off = st->rb_len = 0;
    if (st->rb_len + n > st->rb_cap) {
        size_t cap = st->rb_cap ? st->rb_cap : 16384;
        while (cap < st->rb_len + n)
            cap *= 2;
        char *more = realloc(st->rb, cap);
        if (!more)
            return -1;
        st->rb = more;
        st->rb_cap = cap;
    }
    memcpy(st->rb + st->rb_len, p, n);
    st->rb_len += n;
    return 0;
}

/* Offers buffered body bytes (and the end) to the handler. */
static void feed_body(struct h2_stream *st)
{
    if (!st->is_started || st->ex.is_disposed)
        return;
    size_t n = st->rb_len - st->rb_off;
    bool is_last = st->is_end_stream;
    if (n == 0 && !(is_last && st->is_last_owed))
        return;
    st->is_body_blocked = false;
    const char *p = st->rb ? st->rb + st->rb_off : "";
    ssize_t k = wr_exchange_recv_body(&st->ex, p, n, is_last);
    if (k < 0 || (size_t)k < n) {
        k = k < 0 ? 0 : k;
        st->is_body_blocked = true;
    }
    consume(st, (size_t)k);
    st->rb_off += (size_t)k;
    if (!st->is_body_blocked && is_last)
        st->is_last_owed = false;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    (void)flags, (void)user;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, id);
    if (!st || !st->is_started || st->is_cut || st->ex.is_disposed || st->ex.is_ended) {
        nghttp2_session_consume(ng, id, len); /* nobody wants it */
        return 0;
    }
    st->body_seen += len;
    st->last_in_ms = wr_clock_now_ms();
    /* A WebSocket tunnel's bytes are no request body: max_body_size does
     * not count them (websocket_timeout bounds the tunnel). */
    uint64_t max_body = st->req.is_extended_connect ? 0 : st->h->cfg->limits.max_body_bytes;
    if (max_body > 0 && st->body_seen > max_body) {
        nghttp2_session_consume(ng, id, len);
        /* As for HTTP/1.1: 413 when no answer went out yet, else the cut. */
        bool is_answered = st->is_answered;
        st->is_cut = true;
        if (is_answered)
            reset_stream(st, NGHTTP2_CANCEL);
        else
            submit_whole(st, build_error(st, 413, NULL), NULL, NULL);
        return 0;
    }
    if (st->is_body_blocked || st->rb_len > st->rb_off)
        return buffer_body(st, data, len) < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
    ssize_t k = wr_exchange_recv_body(&st->ex, (const char *)data, len, false);
    k = k < 0 ? 0 : k;
    consume(st, (size_t)k);
    if ((size_t)k < len) {
        st->is_body_blocked = true;
        if (buffer_body(st, data + k, len - (size_t)k) < 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    (void)user;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    if (!st)
        return 0;
    bool is_end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        st->is_end_stream = is_end;
        st->has_body = !is_end;
        st->last_in_ms = wr_clock_now_ms();
        start_request(st);
        return 0;
    }
    if (is_end && !st->is_end_stream) {
        st->is_end_stream = true;
        if (!st->is_body_blocked)
            feed_body(st);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *user)
{
    struct wr_h2 *h = user;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, id);
    if (!st)
        return 0;
    st->is_closed = true;
    st->close_error = code;
    st->next_zombie = h->zombies;
    h->zombies = st;
    return 0;
}

/* ---- defences (RFC 9113 §10.5) --------------------------------------- */

static void count_reason(_Atomic uint64_t *by_reason, unsigned reason)
{
    wr_metrics_add(&by_reason[reason < WR_METRICS_H2_N_REASONS ? reason
                                                               : NGHTTP2_INTERNAL_ERROR],
                   1);
}

/* The flood budget a frame header spends, or WR_H2_GUARD_N for none. */
static enum wr_h2_guard_kind guard_kind(struct wr_h2 *h, const nghttp2_frame_hd *hd)
{
    switch (hd->type) {
    case NGHTTP2_RST_STREAM: {
        /* Rapid reset (CVE-2023-44487): a stream reset while still open may
         * have started a handler; one already answered costs nothing. */
        struct h2_stream *st = nghttp2_session_get_stream_user_data(h->ng, hd->stream_id);
        return st && !st->is_closed ? WR_H2_GUARD_RESET : WR_H2_GUARD_N;
    }
    case NGHTTP2_PING:
    case NGHTTP2_SETTINGS:
        return hd->flags & NGHTTP2_FLAG_ACK ? WR_H2_GUARD_N : WR_H2_GUARD_CONTROL;
    case NGHTTP2_PRIORITY:
        return WR_H2_GUARD_PRIORITY;
    case NGHTTP2_WINDOW_UPDATE:
        return WR_H2_GUARD_WINDOW_UPDATE;
    case NGHTTP2_DATA:
        return hd->length == 0 && !(hd->flags & NGHTTP2_FLAG_END_STREAM)
                   ? WR_H2_GUARD_EMPTY_DATA
                   : WR_H2_GUARD_N;
    default:
        return WR_H2_GUARD_N;
    }
}

/* Every frame header from the client, before its payload: frames that cost
 * work without carrying a request spend their budget (h2_guard.h). Over it,
 * the session stops here (callback failure) and feed sends our GOAWAY. */
static int on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *user)
{
    (void)ng;
    struct wr_h2 *h = user;
    if (hd->type == NGHTTP2_HEADERS)
        wr_h2_guard_earn(&h->guard, WR_H2_GUARD_PRIORITY, 1); /* nginx: +1 a request */
    enum wr_h2_guard_kind kind = guard_kind(h, hd);
    if (kind == WR_H2_GUARD_N || wr_h2_guard_spend(&h->guard, kind, wr_clock_now_ms()))
        return 0;
    h->calm_reason = WR_METRICS_H2_RAPID_RESET + (int)kind;
    return NGHTTP2_ERR_CALLBACK_FAILURE;
}

/* GOAWAY and RST_STREAM nghttp2 sent, for weir_http2_*_total{reason}. */
static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    struct wr_h2 *h = user;
    struct wr_metrics_worker *m = h->home->metrics;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        count_reason(m->h2_goaways, frame->goaway.error_code);
    } else if (frame->hd.type == NGHTTP2_RST_STREAM) {
        struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
        count_reason(m->h2_stream_errors, st && st->is_stalled     ? WR_METRICS_H2_SEND_TIMEOUT
                                          : st && st->is_body_late ? WR_METRICS_H2_BODY_TIMEOUT
                                                                   : frame->rst_stream.error_code);
    } else if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
               (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA)) {
        /* The 408 of a late body went out whole: end the client's half. */
        struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
        if (st && st->is_body_late && !st->is_closed)
            nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
    }
    return 0;
}

/*
 * The session failed with err (nghttp2_session_mem_recv): when a defence
 * tripped — ours (calm_reason), nghttp2's CONTINUATION limit
 * (CVE-2024-27316) or its unread-ACK limit — queue GOAWAY
 * ENHANCE_YOUR_CALM ourselves (nghttp2 sends none for these) as the last
 * frame; the caller flushes and closes.
 */
static void queue_calm_goaway(struct wr_h2 *h, int err)
{
    int reason = h->calm_reason;
    if (err == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS)
        reason = WR_METRICS_H2_CONTINUATION_FLOOD;
    else if (err == NGHTTP2_ERR_FLOODED)
        reason = WR_METRICS_H2_CONTROL_FLOOD;
    if (reason < 0 || h->is_cut_off)
        return;
    uint32_t last = (uint32_t)nghttp2_session_get_last_proc_stream_id(h->ng) & 0x7fffffffu;
    uint32_t code = NGHTTP2_ENHANCE_YOUR_CALM;
    uint8_t f[17] = {0, 0, 8, NGHTTP2_GOAWAY, 0, 0, 0, 0, 0, /* RFC 9113 §6.8 */
                     (uint8_t)(last >> 24), (uint8_t)(last >> 16), (uint8_t)(last >> 8),
                     (uint8_t)last, (uint8_t)(code >> 24), (uint8_t)(code >> 16),
                     (uint8_t)(code >> 8), (uint8_t)code};
    h->is_cut_off = true;
    if (!has_room(h, 1, sizeof(f)) || push_copy(h, f, sizeof(f)) < 0)
        return;
    count_reason(h->home->metrics->h2_goaways, (unsigned)reason);
    wr_log(WR_LOG_INFO, h->home->worker_id, h->conn_id, "h2: %s from %s: GOAWAY",
           wr_metrics_h2_reason_name((unsigned)reason), h->peer);
}

/* Whether st has response bytes ready that only the client's flow-control
 * window holds back (nghttp2 would send them otherwise). */
static bool has_bytes_waiting(const struct h2_stream *st)
{
    if (st->is_closed || st->is_cut || !st->is_answered)
        return false;
    if (st->body_kind == BODY_FILE || st->body_kind == BODY_MEM)
        return st->left > 0;
    return st->body_kind == BODY_STREAMED && st->is_proceed_owed && st->i_iov < st->n_iov;
}

/* Whether st waits for request body bytes the client could send: not while
 * the handler is not taking them (its window stays shut: our doing, not
 * the client's; the clock restarts when room is offered again). */
static bool awaits_body(const struct h2_stream *st)
{
    return st->has_body && !st->is_end_stream && !st->is_closed && !st->is_cut &&
           !st->is_body_blocked && !st->req.is_extended_connect; /* a tunnel: the
                                             handler's websocket_timeout instead */
}

/*
 * body_timeout ([limits], as for HTTP/1.1): a client that stops sending a
 * body it announced would keep the stream's handler (an upstream
 * connection waiting for the upload) forever, and slowloris over HTTP/2
 * costs a stream, not a connection. Not answered yet: 408, then (once it
 * is sent, on_frame_send) RST_STREAM NO_ERROR, the way RFC 9113 §8.1 lets
 * a server end a request it answered early. Answered: reset (CANCEL).
 */
static void cut_late_body(struct h2_stream *st)
{
    st->is_cut = st->is_body_late = true;
    if (st->is_answered)
        reset_stream(st, NGHTTP2_CANCEL);
    else
        submit_whole(st, build_error(st, 408, NULL), NULL, NULL);
}

/*
 * The per-stream clocks, looked at together: zero-window stalls (a client
 * that never opens a stream's window would keep its handler — a file, an
 * upstream connection — forever: a stream whose bytes waited send_timeout
 * without one DATA frame going out is reset, CANCEL) and late bodies
 * (cut_late_body). Exchanges stop at reap. Plans the next look.
 */
static void watch_streams(struct wr_h2 *h, uint64_t now_ms)
{
    const struct wr_limits_cfg *lim = &h->cfg->limits;
    uint64_t next = 0;
    for (struct h2_stream *st = h->streams; st; st = st->next) {
        uint64_t due = 0;
        if (has_bytes_waiting(st)) {
            due = st->last_out_ms + lim->send_timeout_ms;
            if (now_ms >= due) {
                st->is_cut = st->is_stalled = true;
                reset_stream(st, NGHTTP2_CANCEL);
                continue;
            }
        } else if (awaits_body(st)) {
            due = st->last_in_ms + lim->body_timeout_ms;
            if (now_ms >= due) {
                cut_late_body(st);
                continue;
            }
        }
        if (due != 0 && (next == 0 || due < next))
            next = due;
    }
    h->stall_check_ms = next;
}

/* When to look at the stream clocks next: the shorter of send_timeout and
 * body_timeout after streams exist (watch_streams then plans exactly). */
static uint64_t stall_deadline(struct wr_h2 *h)
{
    if (h->n_streams == 0)
        return h->stall_check_ms = 0;
    if (h->stall_check_ms == 0) {
        const struct wr_limits_cfg *lim = &h->cfg->limits;
        uint64_t wait_ms = lim->send_timeout_ms < lim->body_timeout_ms ? lim->send_timeout_ms
                                                                       : lim->body_timeout_ms;
        h->stall_check_ms = wr_clock_now_ms() + wait_ms;
    }
    return h->stall_check_ms;
}

/* ---- events ------------------------------------------------------------ */

/* Ends the session from one of our events: the connection closes. */
static void finish(struct wr_h2 *h)
{
    h->on_close(h->conn); /* frees h */
}

/* Streams the handler let take more body (body_room). */
static void offer_body_room(struct wr_h2 *h)
{
    for (struct h2_stream *st = h->streams; st; st = st->next) {
        if (!st->is_body_room)
            continue;
        st->is_body_room = false;
        st->last_in_ms = wr_clock_now_ms(); /* body_timeout runs from the invitation */
        if (!st->is_closed)
            feed_body(st);
    }
}

/* Handlers whose sent bytes are all written get proceed. Returns true when
 * one was called (it may have sent more). */
static bool offer_proceed(struct wr_h2 *h)
{
    bool is_called = false;
    for (struct h2_stream *st = h->streams; st; st = st->next) {
        if (!st->is_proceed_owed || st->i_iov < st->n_iov || st->is_closed)
            continue;
        st->is_proceed_owed = false;
        wr_exchange_proceed(&st->ex);
        is_called = true;
    }
    return is_called;
}

static uint64_t pick_deadline(struct wr_h2 *h)
{
    uint64_t d = 0;
    if (has_output(h))
        d = h->last_io_ms + h->cfg->limits.send_timeout_ms;
    else if (h->n_streams == 0)
        d = h->last_io_ms + h->cfg->http2.idle_timeout_ms;
    /* streams in flight: the handlers keep their own deadlines, and the
     * stall check its own */
    uint64_t stall = stall_deadline(h);
    return stall != 0 && (d == 0 || stall < d) ? stall : d;
}

static void set_interest(struct wr_h2 *h)
{
    bool is_blocked = has_output(h);
    if (is_blocked != h->is_write_armed) {
        if (is_blocked)
            event_add(&h->ev_write, NULL);
        else
            event_del(&h->ev_write);
        h->is_write_armed = is_blocked;
    }
    bool should_pause = is_blocked;
    if (should_pause != h->is_read_paused) {
        if (should_pause)
            event_del(&h->ev_read);
        else
            event_add(&h->ev_read, NULL);
        h->is_read_paused = should_pause;
    }
    if (!h->is_read_paused && wr_stream_is_tls(h->s) && wr_stream_has_pending(h->s))
        event_active(&h->ev_read, EV_READ, 0);
    h->deadline_ms = pick_deadline(h);
    if (h->deadline_ms != 0)
        wr_timer_arm_lazy(&h->home->wheel, &h->timer, h->deadline_ms);
}

/* After every event: hand out room and proceed, write, reap, decide. */
static void run(struct wr_h2 *h)
{
    if (h->is_doomed) {
        finish(h);
        return;
    }
    for (int round = 0; round < RUN_ROUNDS; round++) {
        offer_body_room(h);
        if (flush(h) < 0) {
            finish(h);
            return;
        }
        if (h->seg_first < h->n_segs)
            break;
        reap(h);
        if (!offer_proceed(h))
            break;
    }
    bool is_over = !nghttp2_session_want_read(h->ng) && !nghttp2_session_want_write(h->ng);
    if (h->is_draining && h->n_streams == 0)
        is_over = true;
    if (is_over && !has_output(h)) {
        finish(h);
        return;
    }
    set_interest(h);
}

/* Bytes from the client into the session. Returns -1 on a fatal error. */
static int feed(struct wr_h2 *h, const char *p, size_t n)
{
    ssize_t r = nghttp2_session_mem_recv(h->ng, (const uint8_t *)p, n);
    if (r < 0) {
        queue_calm_goaway(h, (int)r);
        if (wr_log_is_enabled(WR_LOG_DEBUG))
            wr_log(WR_LOG_DEBUG, h->home->worker_id, h->conn_id, "h2: %s",
                   nghttp2_strerror((int)r));
        return -1;
    }
    return 0;
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct wr_h2 *h = arg;
    if (!h->rbuf && !(h->rbuf = take_buf(h, &h->home->h2_rbufs))) {
        finish(h); /* out of memory */
        return;
    }
    for (int i = 0; i < READS_PER_EVENT && !has_output(h); i++) {
        ssize_t n = wr_stream_read(h->s, h->rbuf, RBUF_CAP);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        if (n <= 0) {
            finish(h); /* EOF or reset: streams in flight are aborted */
            return;
        }
        h->last_io_ms = wr_clock_now_ms();
        wr_metrics_add(&h->home->metrics->bytes_in, (uint64_t)n);
        if (feed(h, h->rbuf, (size_t)n) < 0) {
            flush(h); /* the GOAWAY nghttp2 queued, best effort */
            finish(h);
            return;
        }
        /* Let the output of these frames go before reading more. */
        if (flush(h) < 0) {
            finish(h);
            return;
        }
        /* A short read drained the socket: another would only say EAGAIN
         * (one wasted system call per request of a client that sends one
         * at a time); the next readiness brings us back. */
        if ((size_t)n < RBUF_CAP)
            break;
    }
    if (h->pre_len == 0) /* nghttp2 copied what it keeps: the buffer is free */
        give_buf(h, &h->home->h2_rbufs, &h->rbuf);
    run(h);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    run(arg);
}

static void on_work(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct wr_h2 *h = arg;
    if (h->pre_len > 0) {
        size_t n = h->pre_len;
        h->pre_len = 0;
        if (feed(h, h->rbuf, n) < 0) {
            flush(h);
            finish(h);
            return;
        }
        give_buf(h, &h->home->h2_rbufs, &h->rbuf);
    }
    run(h);
}

static void on_timer(struct wr_timer_wheel *w, struct wr_timer *t, uint64_t now_ms)
{
    struct wr_h2 *h = WR_TIMER_OWNER(t, struct wr_h2, timer);
    if (h->deadline_ms == 0 || wr_timer_rearm_if_early(w, t, h->deadline_ms, now_ms))
        return;
    if (h->deadline_ms == h->stall_check_ms) {
        watch_streams(h, now_ms);
        run(h); /* sends the resets, reaps, picks the next deadline */
        return;
    }
    if (wr_log_is_enabled(WR_LOG_DEBUG))
        wr_log(WR_LOG_DEBUG, h->home->worker_id, h->conn_id, "h2: timeout");
    if (h->n_streams == 0 && !has_output(h)) {
        /* [http2] idle_timeout: say goodbye (RFC 9113 §9.1), best effort */
        nghttp2_submit_goaway(h->ng, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(h->ng), NGHTTP2_NO_ERROR,
                              NULL, 0);
        flush(h);
    }
    finish(h);
}

/* ---- life -------------------------------------------------------------- */

static nghttp2_session *session_new(struct wr_h2 *h)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return NULL;
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        return NULL;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_send_data_callback(cbs, send_data);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, on_begin_frame);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    /* WINDOW_UPDATE only as handlers take request bodies (consume). */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_session *ng = NULL;
    if (nghttp2_session_server_new2(&ng, cbs, h, opt) != 0)
        ng = NULL;
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    if (!ng)
        return NULL;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, (uint32_t)h->cfg->http2.max_concurrent_streams},
        {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, (uint32_t)h->cfg->http2.hpack_table_bytes},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)h->cfg->limits.max_header_bytes},
        /* RFC 8441: WebSockets over HTTP/2, offered when a route takes them. */
        {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1},
    };
    size_t n_iv = sizeof(iv) / sizeof(iv[0]) - (h->cfg->has_websocket_route ? 0 : 1);
    if (nghttp2_submit_settings(ng, NGHTTP2_FLAG_NONE, iv, n_iv) != 0) {
        nghttp2_session_del(ng);
        return NULL;
    }
    return ng;
}

struct wr_h2 *wr_h2_new(const struct wr_h2_front *f)
{
    struct wr_h2 *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->home = f->home;
    h->s = f->s;
    h->cfg = f->cfg;
    snprintf(h->peer, sizeof(h->peer), "%s", f->peer);
    h->conn_id = f->conn_id;
    h->peer_key = f->peer_key;
    h->on_close = f->on_close;
    h->conn = f->conn;
    h->is_tls = wr_stream_is_tls(f->s);
    h->last_io_ms = wr_clock_now_ms();
    h->seg_first = h->n_segs = h->wlen = 0;
    h->spill = NULL;
    h->calm_reason = -1;
    wr_h2_guard_init(&h->guard, f->cfg->http2.max_concurrent_streams, h->last_io_ms);
    if (!(h->ng = session_new(h))) {
        free(h);
        return NULL;
    }
    size_t n = f->preread_len < RBUF_CAP ? f->preread_len : RBUF_CAP;
    if (n > 0) {
        if (!(h->rbuf = take_buf(h, &f->home->h2_rbufs))) {
            nghttp2_session_del(h->ng);
            free(h);
            return NULL;
        }
        memcpy(h->rbuf, f->preread, n);
    }
    h->pre_len = n;
    struct event_base *base = f->home->base;
    event_assign(&h->ev_read, base, f->s->fd, EV_READ | EV_PERSIST, on_read, h);
    event_assign(&h->ev_write, base, f->s->fd, EV_WRITE | EV_PERSIST, on_write, h);
    event_assign(&h->ev_work, base, -1, 0, on_work, h);
    wr_timer_init(&h->timer, on_timer);
    h->is_read_paused = true; /* run adds ev_read */
    wr_metrics_add(&f->home->metrics->h2_conns, 1);
    schedule(h);              /* the preread bytes and our SETTINGS */
    return h;
}

void wr_h2_free(struct wr_h2 *h)
{
    if (!h)
        return;
    event_del(&h->ev_read);
    event_del(&h->ev_write);
    event_del(&h->ev_work);
    wr_timer_disarm(&h->home->wheel, &h->timer);
    reap(h);
    while (h->streams)
        stream_finish(h->streams); /* the exchanges in flight are abandoned */
    nghttp2_session_del(h->ng);
    free(h->spill);
    give_buf(h, &h->home->h2_rbufs, &h->rbuf);
    give_buf(h, &h->home->h2_wbufs, &h->wbuf);
    free(h);
}

void wr_h2_drain(struct wr_h2 *h)
{
    if (h->is_draining)
        return;
    h->is_draining = true;
    nghttp2_submit_goaway(h->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h->ng),
                          NGHTTP2_NO_ERROR, NULL, 0);
    schedule(h);
}
