/*
 * error_page: the lookup of an error's page and the internal request that
 * fetches it (error_page.h).
 *
 * Not here: the redirect itself (the front ends route the request this
 * builds and start its handler) nor the status the answer goes out with
 * (exchange.c). Invariants: pure; the request built borrows everything.
 */
#include "weir/error_page.h"

#include <string.h>

const char *wr_error_page_find(const struct wr_error_pages *ep, int status)
{
    if (!ep)
        return NULL;
    for (size_t i = 0; i < ep->n_pages; i++) {
        if (ep->pages[i].status == status)
            return ep->pages[i].path;
    }
    return NULL;
}

bool wr_error_page_is_served(int status)
{
    return status == 200;
}

/* Fields the internal request does not carry: a conditional or a range
 * would turn the page into a 304, 412, 206 or 416 (nginx's not-modified and
 * range filters likewise pass only 200s); the body and tunnel fields belong
 * to the original request, whose body the page never receives. */
static bool is_dropped_field(struct wr_str name)
{
    static const char *const dropped[] = {
        "if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "if-range",
        "range", "content-length", "transfer-encoding", "expect", "upgrade"};
    for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++) {
        if (wr_str_eq_nocase(name, wr_str_from_cstr(dropped[i])))
            return true;
    }
    return false;
}

void wr_error_page_request(struct wr_http_request *out, const struct wr_http_request *in,
                           const char *path)
{
    bool is_head = in->method_id == WR_HTTP_HEAD;
    out->method = is_head ? WR_STR("HEAD") : WR_STR("GET");
    out->method_id = is_head ? WR_HTTP_HEAD : WR_HTTP_GET;
    out->target = wr_str_from_cstr(path);
    const char *q = memchr(out->target.ptr, '?', out->target.len);
    out->path = q ? (struct wr_str){out->target.ptr, (size_t)(q - out->target.ptr)}
                  : out->target;
    out->query = q ? (struct wr_str){q + 1, out->target.len - out->path.len - 1}
                   : (struct wr_str){NULL, 0};
    out->host = in->host;
    out->minor_version = in->minor_version;
    out->content_length = 0;
    out->has_content_length = false;
    out->is_chunked = false;
    out->is_keep_alive = in->is_keep_alive;
    out->expects_continue = false;
    out->is_upgrade = false;
    out->is_absolute_form = false;
    out->is_extended_connect = false;
    out->n_headers = 0;
    for (size_t i = 0; i < in->n_headers; i++) {
        if (!is_dropped_field(in->headers[i].name))
            out->headers[out->n_headers++] = in->headers[i];
    }
    memset(out->known, 0, sizeof(out->known));
    out->is_indexed = false;
    out->status = 0;
}
