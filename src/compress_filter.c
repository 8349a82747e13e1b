/*
 * compress_filter: codes response bodies between a handler and its front
 * end (see compress_filter.h).
 *
 * One pump moves input through the encoder into the output buffer and
 * hands the buffer to the sink when it is full or a step of input is done:
 *  - push (a handler's sends): each send is one step, ended by a flush
 *    (or the finish, with is_final); the handler's send returns true only
 *    when the whole step was coded and the sink took the output at once;
 *  - pull (a whole response): the filter reads the memory or file body in
 *    32 KiB steps itself and finishes with the last one.
 * Invariants: while the sink holds the output buffer (is_out_borrowed)
 * nothing is coded; the sink's end is called once, after the finish's
 * bytes were handed over, and the exchange counts as ended only then.
 */
#include "weir/compress_filter.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "weir/handler.h"
#include "weir/http_cond.h"
#include "weir/metrics.h"

#define OUT_CAP (16 * 1024)
#define READ_CAP (32 * 1024)
#define MAX_FREE 16
/* A handler's send shorter than this is flushed at once (a server that
 * answers piece by piece: an event stream, a slow page); a longer one
 * (a full read from a fast server, more to come) is not: a sync flush per
 * 32 KiB read costs a fifth more CPU for the same bytes. */
#define FLUSH_BELOW (16 * 1024)
/* What a filter holds besides its encoder: the struct and both buffers. */
#define BUF_BYTES (OUT_CAP + READ_CAP)

struct wr_zfilter {
    struct wr_zfilter *next_free;
    struct wr_encoder enc;
    uint64_t mem_bytes;       /* counted in zw->mem_in_use */
    char *out;                /* OUT_CAP bytes */
    size_t out_len;
    bool is_out_borrowed;     /* the sink holds out until proceed */

    /* push: the handler's current step (its iov, borrowed until we say) */
    struct iovec in[WR_EXCHANGE_MAX_IOV];
    int n_in, i_in;
    size_t in_off;
    bool is_step_open;        /* a step is not completely coded yet */
    bool is_step_final;       /* the step ends the body (is_final, or end) */
    bool is_step_flush;       /* a short step: flush what it made */
    bool is_handler_owed;     /* the handler's send returned false: proceed owed */

    /* pull: a whole body the filter reads itself */
    bool is_pull;
    const char *mem;          /* memory body (borrowed from the response), or */
    int fd;                   /* a file: fd, off, owned as the response owned it */
    off_t off;
    uint64_t left;            /* body bytes not read yet */
    void *ref;
    wr_resp_unref_fn unref;
    char *rbuf;               /* READ_CAP bytes: file bytes read, not coded yet */
    size_t rlen, roff;

    bool is_end_owed;         /* the handler ended: end the sink once finished */
    bool is_finished;         /* the finish's bytes went to the sink */
    bool is_failed;           /* a coder or read error: the exchange is cut */
    int coding;
    char mem_block[];         /* out, then rbuf */
};

/* ---- the decision ------------------------------------------------------ */

/* The built-in compress_types: text, scripts, data and fonts that are not
 * compressed already (woff and woff2 are). */
static const char *const DEFAULT_TYPES[] = {
    "text/*",
    "application/javascript",
    "application/x-javascript",
    "application/json",
    "application/*+json",
    "application/xml",
    "application/*+xml",
    "application/wasm",
    "application/x-ndjson",
    "application/vnd.ms-fontobject",
    "image/svg+xml",
    "image/x-icon",
    "font/ttf",
    "font/otf",
};

/* Whether the media type t (lower-case, no parameters) matches pattern:
 * "type/subtype", "type/ *" or "type/ *+suffix" (without the blanks). */
static bool type_matches(struct wr_str t, const char *pattern)
{
    const char *star = strchr(pattern, '*');
    if (!star)
        return wr_str_eq_nocase(t, wr_str_from_cstr(pattern));
    size_t head = (size_t)(star - pattern), tail = strlen(star + 1);
    if (t.len < head + tail || strncasecmp(t.ptr, pattern, head) != 0)
        return false;
    if (memchr(t.ptr + head, '/', t.len - head))
        return false;
    return strncasecmp(t.ptr + t.len - tail, star + 1, tail) == 0;
}

bool wr_zfilter_is_type(const struct wr_exchange *ex, struct wr_str content_type)
{
    if (!content_type.ptr)
        return false;
    struct wr_str t = content_type;
    const char *semi = memchr(t.ptr, ';', t.len);
    if (semi)
        t.len = (size_t)(semi - t.ptr);
    t = wr_str_trim(t);
    const struct wr_route *route = ex->route;
    if (route->n_compress_types > 0) {
        for (size_t i = 0; i < route->n_compress_types; i++) {
            if (type_matches(t, route->compress_types[i]))
                return true;
        }
        return false;
    }
    for (size_t i = 0; i < sizeof(DEFAULT_TYPES) / sizeof(DEFAULT_TYPES[0]); i++) {
        if (type_matches(t, DEFAULT_TYPES[i]))
            return true;
    }
    return false;
}

int wr_zfilter_level(const struct wr_exchange *ex, enum wr_coding c)
{
    const struct wr_compression_cfg *cc = ex->compression;
    switch (c) {
    case WR_CODING_GZIP:
        return (int)cc->gzip_level;
    case WR_CODING_BR:
        return (int)cc->brotli_level;
    default:
        return (int)cc->zstd_level;
    }
}

/* The request's Accept-Encoding, ptr NULL when absent. */
static struct wr_str accept_encoding(const struct wr_http_request *req)
{
    if (req->is_indexed)
        return wr_http_known_value(req, WR_HTTP_KNOWN_ACCEPT_ENCODING);
    const struct wr_http_header *h = wr_http_find_header(req, WR_STR("Accept-Encoding"));
    return h ? h->value : (struct wr_str){NULL, 0};
}

enum wr_coding wr_zfilter_negotiate(const struct wr_exchange *ex)
{
    const struct wr_compression_cfg *cc = ex->compression;
    return wr_coding_choose(accept_encoding(ex->req), ex->route->compress_mask, cc->prefer,
                            cc->n_prefer);
}

/* Adds "Vary: Accept-Encoding" unless a Vary field lists it (or "*"). */
static void add_vary(struct wr_resp *r)
{
    struct wr_str vary = wr_resp_field_value(r, WR_STR("Vary"));
    if (vary.ptr && (wr_str_list_has_token(vary, WR_STR("accept-encoding")) ||
                     wr_str_list_has_token(vary, WR_STR("*"))))
        return;
    wr_resp_header(r, "Vary", WR_STR("Accept-Encoding"));
}

/* Whether the head forbids a transformation or is no full representation. */
static bool is_untouchable(const struct wr_resp *r)
{
    if (wr_resp_field_value(r, WR_STR("Content-Encoding")).ptr ||
        wr_resp_field_value(r, WR_STR("Content-Range")).ptr)
        return true;
    struct wr_str cc = wr_resp_field_value(r, WR_STR("Cache-Control"));
    return cc.ptr && wr_str_list_has_token(cc, WR_STR("no-transform"));
}

/* Whether a body of this status may be coded: 206 is a part (its ranges
 * count bytes of the identity body), 204, 304 and 1xx have none. */
static bool is_codable_status(int status)
{
    return status >= 200 && status != 204 && status != 206 && status != 304;
}

/* ---- filters: taking, giving back ------------------------------------- */

static struct wr_zfilter *take_filter(struct wr_zfilter_worker *zw)
{
    struct wr_zfilter *z = zw->free_list;
    if (z) {
        zw->free_list = z->next_free;
        zw->n_free--;
    } else {
        z = malloc(sizeof(*z) + BUF_BYTES);
        if (!z)
            return NULL;
    }
    memset(z, 0, sizeof(*z));
    z->out = z->mem_block;
    z->rbuf = z->mem_block + OUT_CAP;
    z->fd = -1;
    return z;
}

static void count_memory(struct wr_zfilter_worker *zw, int64_t delta)
{
    zw->mem_in_use = (uint64_t)((int64_t)zw->mem_in_use + delta);
    if (zw->metrics)
        wr_metrics_set(&zw->metrics->compress_memory, zw->mem_in_use);
}

void wr_zfilter_free(struct wr_exchange *ex)
{
    struct wr_zfilter *z = ex->zf;
    if (!z)
        return;
    ex->zf = NULL;
    wr_encoder_fini(&z->enc);
    if (z->ref)
        z->unref(z->ref);
    else if (z->fd >= 0)
        close(z->fd);
    struct wr_zfilter_worker *zw = ex->zw;
    count_memory(zw, -(int64_t)z->mem_bytes);
    if (zw->n_free < MAX_FREE) {
        z->next_free = zw->free_list;
        zw->free_list = z;
        zw->n_free++;
    } else {
        free(z);
    }
}

void wr_zfilter_worker_fini(struct wr_zfilter_worker *zw)
{
    while (zw->free_list) {
        struct wr_zfilter *z = zw->free_list;
        zw->free_list = z->next_free;
        free(z);
    }
    zw->n_free = 0;
}

/* ---- the head ---------------------------------------------------------- */

/* Rewrites the head for coding c; false when it does not fit. */
static bool code_head(struct wr_resp *r, enum wr_coding c)
{
    wr_resp_header(r, "Content-Encoding", wr_coding_name(c));
    add_vary(r);
    wr_resp_weaken_etag(r);
    r->has_length = false;
    return !r->is_overflow && r->head_cap - r->head_len >= WR_RESP_FRAMING_ROOM;
}

/* The coding for the head in ex->resp, identity when none; adds Vary to
 * every answer whose coding depends on Accept-Encoding. */
static enum wr_coding decide(struct wr_exchange *ex, bool is_respond)
{
    struct wr_resp *r = ex->resp;
    if (r->is_coding_decided)
        return WR_CODING_IDENTITY; /* coded by the handler: nothing to add */
    const struct wr_http_request *req = ex->req;
    if (req->is_extended_connect || !is_codable_status(r->status))
        return WR_CODING_IDENTITY; /* a WebSocket tunnel's bytes; no full body */
    struct wr_str type = wr_resp_field_value(r, WR_STR("Content-Type"));
    if (!wr_zfilter_is_type(ex, type) || is_untouchable(r))
        return WR_CODING_IDENTITY;
    if (r->has_length && r->body_len < ex->route->compress_min_length)
        return WR_CODING_IDENTITY; /* too short to be worth it, now and always */
    add_vary(r); /* the answer depends on Accept-Encoding from here on */
    /* A Range request to a static route gets identity: ranges count
     * identity bytes (a 200 to one means the ranges were not served). */
    bool is_ranged = ex->route->action == WR_ACTION_STATIC &&
                     (req->is_indexed ? wr_http_known_value(req, WR_HTTP_KNOWN_RANGE).ptr != NULL
                                      : wr_http_find_header(req, WR_STR("Range")) != NULL);
    if (is_ranged || (is_respond && r->has_length && r->body_len == 0))
        return WR_CODING_IDENTITY;
    return wr_zfilter_negotiate(ex);
}

bool wr_zfilter_begin(struct wr_exchange *ex, bool is_respond)
{
    struct wr_resp *r = ex->resp;
    if (!ex->zw || !ex->compression || ex->route->compress_mask == 0 || r->is_overflow)
        return false;
    enum wr_coding c = decide(ex, is_respond);
    if (c == WR_CODING_IDENTITY)
        return false;
    if (ex->req->method_id == WR_HTTP_HEAD) {
        /* The fields GET would get; no body to code. */
        code_head(r, c);
        r->has_length = false;
        r->is_length_unknown = true;
        return false;
    }
    struct wr_zfilter_worker *zw = ex->zw;
    uint64_t max = ex->compression->max_memory;
    if (zw->mem_in_use >= max)
        return false; /* over the budget: identity until streams finish */
    struct wr_zfilter *z = take_filter(zw);
    if (!z)
        return false;
    if (wr_encoder_init(&z->enc, c, wr_zfilter_level(ex, c), r->has_length ? r->body_len : 0) < 0 ||
        zw->mem_in_use + z->enc.mem_bytes + BUF_BYTES > max ||
        !code_head(r, c)) {
        wr_encoder_fini(&z->enc);
        z->next_free = zw->free_list; /* back, unused */
        zw->free_list = z;
        zw->n_free++;
        return false;
    }
    r->has_length = false;
    z->coding = c;
    z->mem_bytes = z->enc.mem_bytes + BUF_BYTES;
    count_memory(zw, (int64_t)z->mem_bytes);
    ex->zf = z;
    if (zw->metrics)
        wr_metrics_add(&zw->metrics->compressed_responses[c], 1);
    return true;
}

/* ---- the pump ---------------------------------------------------------- */

/* Hands out[0..out_len) to the sink (is_final: the body ends with it). */
static void emit(struct wr_exchange *ex, struct wr_zfilter *z, bool is_final)
{
    struct iovec iov = {z->out, z->out_len};
    struct wr_zfilter_worker *zw = ex->zw;
    if (zw->metrics)
        wr_metrics_add(&zw->metrics->compress_out_bytes[z->coding], z->out_len);
    ex->log.body_bytes += z->out_len;
    bool is_done = ex->sink->send(ex, &iov, z->out_len ? 1 : 0, is_final);
    z->out_len = 0;
    z->is_out_borrowed = !is_done;
}

/* The next input of the step: ptr/len, and whether it is the step's last.
 * Pull mode reads the file when its buffer is empty. Returns -1 on a read
 * error. */
static int next_input(struct wr_zfilter *z, const char **p, size_t *len, bool *is_last)
{
    if (!z->is_pull) {
        while (z->i_in < z->n_in && z->in_off == z->in[z->i_in].iov_len) {
            z->i_in++;
            z->in_off = 0;
        }
        if (z->i_in == z->n_in) {
            *p = NULL, *len = 0, *is_last = true;
            return 0;
        }
        *p = (const char *)z->in[z->i_in].iov_base + z->in_off;
        *len = z->in[z->i_in].iov_len - z->in_off;
        *is_last = z->i_in == z->n_in - 1;
        return 0;
    }
    if (z->mem) {
        *p = z->mem;
        *len = z->left > READ_CAP ? READ_CAP : (size_t)z->left;
        *is_last = *len == z->left;
        return 0;
    }
    if (z->roff == z->rlen && z->left > 0) {
        size_t want = z->left > READ_CAP ? READ_CAP : (size_t)z->left;
        ssize_t n = pread(z->fd, z->rbuf, want, z->off);
        if (n <= 0)
            return -1; /* an error, or the file shrank under us */
        z->off += n;
        z->roff = 0;
        z->rlen = (size_t)n;
    }
    *p = z->rbuf + z->roff;
    *len = z->rlen - z->roff;
    *is_last = z->left == *len;
    return 0;
}

static void consume(struct wr_zfilter *z, size_t n)
{
    if (!z->is_pull) {
        z->in_off += n;
    } else if (z->mem) {
        z->mem += n;
        z->left -= n;
    } else {
        z->roff += n;
        z->left -= n;
    }
}

/*
 * Codes what the current step holds. Returns 1 when the step is done (its
 * output handed over, perhaps still borrowed), 0 while the sink holds the
 * buffer mid-step, -1 on a coder or read error.
 */
static int pump(struct wr_exchange *ex, struct wr_zfilter *z)
{
    struct wr_zfilter_worker *zw = ex->zw;
    for (;;) {
        if (z->is_out_borrowed)
            return 0;
        const char *in;
        size_t len;
        bool is_last;
        if (next_input(z, &in, &len, &is_last) < 0)
            return -1;
        enum wr_encode_op op = WR_ENCODE_MORE;
        if (is_last)
            op = z->is_step_final  ? WR_ENCODE_FINISH
                 : z->is_step_flush ? WR_ENCODE_FLUSH
                                    : WR_ENCODE_MORE;
        size_t used, got;
        int rc = wr_encoder_run(&z->enc, in, len, &used, z->out + z->out_len,
                                OUT_CAP - z->out_len, &got, op);
        if (rc < 0)
            return -1;
        consume(z, used);
        z->out_len += got;
        if (zw->metrics)
            wr_metrics_add(&zw->metrics->compress_in_bytes[z->coding], used);
        if (rc == 1 && is_last) {
            bool is_final = op == WR_ENCODE_FINISH;
            if (z->out_len > 0 || is_final)
                emit(ex, z, is_final);
            z->is_finished = is_final;
            z->is_step_open = false;
            return 1;
        }
        if (z->out_len > 0 && (z->out_len == OUT_CAP || rc == 0))
            emit(ex, z, false); /* full: out it goes, coding goes on after */
    }
}

/* The sink's end, once: the exchange is over for the front end now. */
static void end_sink(struct wr_exchange *ex, int how)
{
    ex->is_ended = true;
    ex->end = how;
    ex->sink->end(ex, how);
}

/* After a pump: a failure cuts the exchange; a finished body ends it. */
static void settle(struct wr_exchange *ex, struct wr_zfilter *z, int rc)
{
    if (rc < 0) {
        z->is_failed = true;
        if (!ex->is_ended)
            end_sink(ex, WR_EXCHANGE_BROKEN);
        return;
    }
    if (z->is_finished && (z->is_end_owed || z->is_pull) && !ex->is_ended)
        end_sink(ex, WR_EXCHANGE_COMPLETE);
}

void wr_zfilter_respond(struct wr_exchange *ex)
{
    struct wr_zfilter *z = ex->zf;
    struct wr_resp *r = ex->resp;
    /* The body is the filter's now, as it would have been the front end's. */
    z->is_pull = true;
    z->is_step_open = z->is_step_final = true;
    z->left = r->body_len;
    if (r->body) {
        z->mem = r->body;
    } else {
        z->fd = r->file_fd;
        z->off = r->file_off;
    }
    z->ref = r->body_ref;
    z->unref = r->body_unref;
    r->body = NULL;
    r->file_fd = -1;
    r->body_ref = NULL;
    r->body_len = 0;
    /* What the front end does to a whole response's head (handler.h: the
     * route's add_header), done here as a streaming handler would. */
    wr_resp_add_route_fields(r, ex->route, ex->vars);
    ex->sink->send_head(ex);
    settle(ex, z, pump(ex, z));
}

bool wr_zfilter_send(struct wr_exchange *ex, const struct iovec *iov, int n, bool is_final)
{
    struct wr_zfilter *z = ex->zf;
    if (z->is_failed || z->is_finished)
        return true;
    memcpy(z->in, iov, (size_t)n * sizeof(*iov));
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    z->is_step_flush = total < FLUSH_BELOW;
    z->n_in = n;
    z->i_in = 0;
    z->in_off = 0;
    z->is_step_open = true;
    z->is_step_final = is_final;
    int rc = pump(ex, z);
    settle(ex, z, rc);
    bool is_done = rc != 0 && !z->is_out_borrowed;
    z->is_handler_owed = !is_done && rc >= 0;
    return is_done || rc < 0;
}

void wr_zfilter_end(struct wr_exchange *ex)
{
    struct wr_zfilter *z = ex->zf;
    z->is_end_owed = true;
    if (z->is_failed || z->is_finished) {
        settle(ex, z, 0);
        return;
    }
    if (z->is_step_open) {
        /* The last send is still being coded: the finish follows it. */
        return;
    }
    z->n_in = z->i_in = 0;
    z->in_off = 0;
    z->is_step_open = z->is_step_final = true;
    if (z->is_out_borrowed)
        return; /* proceed runs the finish */
    settle(ex, z, pump(ex, z));
}

bool wr_zfilter_proceed(struct wr_exchange *ex)
{
    struct wr_zfilter *z = ex->zf;
    z->is_out_borrowed = false;
    if (z->is_failed)
        return false;
    if (z->is_step_open) {
        int rc = pump(ex, z);
        settle(ex, z, rc);
        if (rc <= 0)
            return false; /* failed, or the sink holds the buffer mid-step */
    }
    if (z->is_out_borrowed)
        return false;
    if (z->is_end_owed && !z->is_finished) {
        /* The handler ended while its last step was being coded: finish. */
        z->n_in = z->i_in = 0;
        z->in_off = 0;
        z->is_step_open = z->is_step_final = true;
        settle(ex, z, pump(ex, z));
        return false;
    }
    if (z->is_finished) {
        settle(ex, z, 0);
        return false;
    }
    if (z->is_handler_owed) {
        z->is_handler_owed = false;
        return true;
    }
    return false;
}
