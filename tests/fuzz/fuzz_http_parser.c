/*
 * Fuzz target for wr_http_parse_request (and, behind a complete chunked
 * head, wr_http_chunked_parse). Each input is parsed whole, then fed in
 * pieces whose sizes come from a generator seeded by the input, each piece an
 * exact-size heap copy; every piece's answer must be WR_AGAIN or exactly the
 * whole answer (STYLE §10). Slices must point into the buffer. Runs with the
 * default-sized limit and with a tiny one, so 414 and 431 are reached too.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "weir/http_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct outcome {
    ssize_t result;
    struct wr_http_request req;
    const char *base; /* the buffer req's slices point into */
};

static void check(bool ok)
{
    if (!ok)
        abort();
}

static bool slice_inside(struct wr_str s, const char *base, size_t len)
{
    return s.len == 0 || (s.ptr >= base && s.ptr + s.len <= base + len);
}

static bool same_slice(struct wr_str a, struct wr_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0) &&
           (a.ptr == NULL) == (b.ptr == NULL);
}

static void check_inside(const struct wr_http_request *r, const char *base, size_t len)
{
    check(slice_inside(r->method, base, len) && slice_inside(r->target, base, len));
    check(slice_inside(r->host, base, len) && slice_inside(r->query, base, len));
    /* the one slice that may point at a literal: absolute-form without path */
    check(slice_inside(r->path, base, len) || (r->path.len == 1 && r->path.ptr[0] == '/'));
    check(r->n_headers <= WR_HTTP_MAX_HEADERS);
    for (size_t i = 0; i < r->n_headers; i++) {
        check(slice_inside(r->headers[i].name, base, len) && r->headers[i].name.len > 0);
        check(slice_inside(r->headers[i].value, base, len));
    }
    /* Issue 18: the index of known fields agrees with a scan by name. */
    static const char *const names[WR_HTTP_N_KNOWN] = {
        "Accept-Encoding", "Range", "If-Range", "If-Match", "If-None-Match",
        "If-Modified-Since", "If-Unmodified-Since", "Referer", "User-Agent", "Upgrade"};
    for (int k = 0; k < WR_HTTP_N_KNOWN; k++) {
        const struct wr_http_header *h = wr_http_find_header(r, wr_str_from_cstr(names[k]));
        struct wr_str v = wr_http_known_value(r, (enum wr_http_known)k);
        check(h ? v.ptr == h->value.ptr && v.len == h->value.len : v.ptr == NULL);
    }
}

static void check_same(const struct outcome *a, const struct outcome *b)
{
    check(a->result == b->result);
    if (a->result == WR_ERROR)
        check(a->req.status == b->req.status);
    if (a->result < 0)
        return;
    const struct wr_http_request *x = &a->req, *y = &b->req;
    check(same_slice(x->method, y->method) && x->method_id == y->method_id);
    check(same_slice(x->target, y->target) && same_slice(x->path, y->path));
    check(same_slice(x->query, y->query) && same_slice(x->host, y->host));
    check(x->minor_version == y->minor_version && x->n_headers == y->n_headers);
    check(x->has_content_length == y->has_content_length && x->content_length == y->content_length);
    check(x->is_chunked == y->is_chunked && x->is_keep_alive == y->is_keep_alive);
    check(x->expects_continue == y->expects_continue && x->is_upgrade == y->is_upgrade);
    check(x->is_absolute_form == y->is_absolute_form);
    for (size_t i = 0; i < x->n_headers; i++) {
        check(same_slice(x->headers[i].name, y->headers[i].name));
        check(same_slice(x->headers[i].value, y->headers[i].value));
    }
}

static void check_invariants(const struct outcome *o, size_t len)
{
    if (o->result == WR_ERROR) {
        const int s = o->req.status;
        check(s == 400 || s == 414 || s == 431 || s == 501 || s == 505);
        return;
    }
    check(o->result == WR_AGAIN || (o->result > 0 && (size_t)o->result <= len));
    if (o->result > 0) {
        check(o->req.status == 0 && !(o->req.is_chunked && o->req.has_content_length));
        check_inside(&o->req, o->base, len);
        check(wr_http_find_header(&o->req, WR_STR("host")) != NULL || o->req.minor_version == 0);
    }
}

/* Decodes a chunked body whole and byte by byte; consumed bytes, outcome
 * and data positions must agree (both point into buf). */
static void check_chunked(const char *buf, size_t len)
{
    struct wr_http_chunked whole, bytes;
    struct wr_str d;
    wr_http_chunked_init(&whole);
    wr_http_chunked_init(&bytes);
    size_t off = 0, n_data = 0, pos_sum = 0;
    ssize_t r = 0;
    while (off < len && (r = wr_http_chunked_parse(&whole, buf + off, len - off, &d)) > 0) {
        check(d.len == 0 || (d.ptr >= buf + off && d.ptr + d.len <= buf + off + (size_t)r));
        for (size_t i = 0; i < d.len; i++)
            pos_sum += (size_t)(d.ptr - buf) + i;
        off += (size_t)r;
        n_data += d.len;
    }
    size_t off1 = 0, n_data1 = 0, pos_sum1 = 0;
    ssize_t r1 = 0;
    while (off1 < len && (r1 = wr_http_chunked_parse(&bytes, buf + off1, 1, &d)) == 1) {
        check(d.len == 0 || d.ptr == buf + off1);
        pos_sum1 += d.len ? off1 : 0;
        n_data1 += d.len;
        off1++;
    }
    /* on error the bytes consumed before it depend on the pieces; all else agrees */
    check(whole.is_done == bytes.is_done && (r == WR_ERROR) == (r1 == WR_ERROR));
    check(off == off1 || r == WR_ERROR);
    check(n_data == n_data1 && pos_sum == pos_sum1);
}

/* Parses an exact-size copy of data[0..len) into *o; the copy is freed by
 * the caller through o->base. */
static void parse_copy(const uint8_t *data, size_t len, size_t prev_len, size_t max,
                       struct outcome *o)
{
    char *buf = malloc(len ? len : 1);
    check(buf != NULL);
    if (len > 0)
        memcpy(buf, data, len);
    /* the field-count limit varies with the size limit: 1..WR_HTTP_MAX_HEADERS */
    const struct wr_http_limits limits = {.max_head_bytes = max,
                                          .max_headers = 1 + max % WR_HTTP_MAX_HEADERS};
    o->base = buf;
    o->result = wr_http_parse_request(buf, len, prev_len, &limits, &o->req);
    check_invariants(o, len);
}

static void run(const uint8_t *data, size_t size, size_t max)
{
    static struct outcome whole, piece;
    parse_copy(data, size, 0, max, &whole);
    /* pieces of 1..16 bytes, sizes from a generator seeded by the input */
    uint32_t seed = (uint32_t)size * 2654435761u + (size ? data[size / 2] : 0);
    size_t prev = 0;
    for (size_t k = 0; k < size;) {
        seed = seed * 1103515245u + 12345u;
        k += 1 + (seed >> 16) % 16;
        if (k > size)
            k = size;
        parse_copy(data, k, prev, max, &piece);
        if (piece.result != WR_AGAIN) {
            check_same(&whole, &piece);
            free((void *)piece.base);
            break;
        }
        check(k < size || whole.result == WR_AGAIN);
        free((void *)piece.base);
        prev = k;
    }
    if (whole.result > 0 && whole.req.is_chunked)
        check_chunked(whole.base + whole.result, size - (size_t)whole.result);
    free((void *)whole.base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run(data, size, 8192);
    run(data, size, 48);
    return 0;
}
