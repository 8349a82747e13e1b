/*
 * http_resp: builds response heads as field lines.
 *
 * Not here: anything that touches a socket (front ends write), the status
 * line and framing fields (h1_framing), file bodies (static). Invariants: a
 * head is always built in the buffer given to wr_resp_init and never grows
 * past it: a field that does not fit sets is_overflow, and the front end
 * then answers 500 instead of sending a cut head. The first
 * WR_RESP_STATUS_ROOM bytes stay free for the status line, so the finished
 * head is one contiguous run of bytes (one writev with a small body).
 * The fields weir writes itself are written with
 * wr_resp_field (or marked), which records where each line is: a route whose
 * add_header names one (config knows which at load) has weir's line cut out
 * by offset before its own is added, so no response searches its head.
 */
#include "weir/http_resp.h"

#include <stdio.h>
#include <string.h>

/* Pages are signed with weir's name unless server_header = off, which
 * asks for the server not to be named: then the unsigned (PLAIN) ones. */
#define PAGE(code, reason)                                                                 \
    "<!DOCTYPE html>\n<html><head><title>" #code " " reason "</title></head>\n"           \
    "<body><h1>" #code " " reason "</h1><hr><p>weir</p></body></html>\n"
#define PLAIN(code, reason)                                                                \
    "<!DOCTYPE html>\n<html><head><title>" #code " " reason "</title></head>\n"           \
    "<body><h1>" #code " " reason "</h1></body></html>\n"
#define PAGES(code, reason) PAGE(code, reason), PLAIN(code, reason)

struct status_entry {
    int status;
    const char *reason;
    const char *page;  /* signed */
    const char *plain; /* the same without the name */
};

static const struct status_entry statuses[] = {
    {100, "Continue", NULL, NULL},
    {101, "Switching Protocols", NULL, NULL},
    {200, "OK", PAGES(200, "OK")},
    {201, "Created", PAGES(201, "Created")},
    {202, "Accepted", PAGES(202, "Accepted")},
    {204, "No Content", NULL, NULL},
    {206, "Partial Content", NULL, NULL},
    {301, "Moved Permanently", PAGES(301, "Moved Permanently")},
    {302, "Found", PAGES(302, "Found")},
    {303, "See Other", PAGES(303, "See Other")},
    {304, "Not Modified", NULL, NULL},
    {307, "Temporary Redirect", PAGES(307, "Temporary Redirect")},
    {308, "Permanent Redirect", PAGES(308, "Permanent Redirect")},
    {400, "Bad Request", PAGES(400, "Bad Request")},
    {401, "Unauthorized", PAGES(401, "Unauthorized")},
    {403, "Forbidden", PAGES(403, "Forbidden")},
    {404, "Not Found", PAGES(404, "Not Found")},
    {405, "Method Not Allowed", PAGES(405, "Method Not Allowed")},
    {408, "Request Timeout", PAGES(408, "Request Timeout")},
    {409, "Conflict", PAGES(409, "Conflict")},
    {410, "Gone", PAGES(410, "Gone")},
    {411, "Length Required", PAGES(411, "Length Required")},
    {412, "Precondition Failed", PAGES(412, "Precondition Failed")},
    {413, "Content Too Large", PAGES(413, "Content Too Large")},
    {414, "URI Too Long", PAGES(414, "URI Too Long")},
    {415, "Unsupported Media Type", PAGES(415, "Unsupported Media Type")},
    {416, "Range Not Satisfiable", PAGES(416, "Range Not Satisfiable")},
    {417, "Expectation Failed", PAGES(417, "Expectation Failed")},
    {421, "Misdirected Request", PAGES(421, "Misdirected Request")},
    {429, "Too Many Requests", PAGES(429, "Too Many Requests")},
    {431, "Request Header Fields Too Large", PAGES(431, "Request Header Fields Too Large")},
    {500, "Internal Server Error", PAGES(500, "Internal Server Error")},
    {501, "Not Implemented", PAGES(501, "Not Implemented")},
    {502, "Bad Gateway", PAGES(502, "Bad Gateway")},
    {503, "Service Unavailable", PAGES(503, "Service Unavailable")},
    {504, "Gateway Timeout", PAGES(504, "Gateway Timeout")},
    {505, "HTTP Version Not Supported", PAGES(505, "HTTP Version Not Supported")},
};

static const char generic_page[] =
    "<!DOCTYPE html>\n<html><head><title>weir</title></head>\n"
    "<body><h1>weir</h1></body></html>\n";
static const char generic_plain[] =
    "<!DOCTYPE html>\n<html><head><title>Error</title></head>\n"
    "<body><h1>Error</h1></body></html>\n";

static const struct status_entry *find_status(int status)
{
    size_t lo = 0, hi = sizeof(statuses) / sizeof(statuses[0]);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (statuses[mid].status == status)
            return &statuses[mid];
        if (statuses[mid].status < status)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *wr_resp_reason(int status)
{
    const struct status_entry *e = find_status(status);
    return e ? e->reason : "Unknown";
}

struct wr_str wr_resp_page(int status, bool is_signed)
{
    const struct status_entry *e = find_status(status);
    if (e && e->page)
        return wr_str_from_cstr(is_signed ? e->page : e->plain);
    if (is_signed)
        return (struct wr_str){generic_page, sizeof(generic_page) - 1};
    return (struct wr_str){generic_plain, sizeof(generic_plain) - 1};
}

void wr_resp_clock_update(struct wr_resp_clock *clock, time_t now, const char *server_header)
{
    if (clock->sec == now && clock->common_len > 0)
        return;
    struct tm tm;
    gmtime_r(&now, &tm);
    char date[64];
    /* RFC 9110 §5.6.7 IMF-fixdate; strftime's %a/%b follow the C locale,
     * which weir never changes. */
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    int k = 0;
    if (server_header)
        k = snprintf(clock->common, sizeof(clock->common), "Server: %s\r\n", server_header);
    size_t date_line = strlen(date) + 8; /* "Date: " ... CRLF */
    if (k < 0 || (size_t)k + date_line >= sizeof(clock->common)) /* server_header too long: */
        k = 0;                                                   /* drop it */
    int n = snprintf(clock->common + k, sizeof(clock->common) - (size_t)k, "Date: %s\r\n", date);
    clock->server_len = (size_t)k;
    clock->common_len = (size_t)k + (size_t)n;
    strftime(clock->log_time, sizeof(clock->log_time), "%d/%b/%Y:%H:%M:%S +0000", &tm);
    strftime(clock->iso_time, sizeof(clock->iso_time), "%Y-%m-%dT%H:%M:%SZ", &tm);
    clock->sec = now;
}

static void append(struct wr_resp *r, const char *p, size_t len)
{
    if (r->is_overflow || len > r->head_cap - r->head_len) {
        r->is_overflow = true;
        return;
    }
    memcpy(r->head + r->head_len, p, len);
    r->head_len += len;
}

static void set_field(struct wr_resp *r, enum wr_http_field f, size_t at, size_t len)
{
    r->fields[f].at = (uint32_t)at;
    r->fields[f].len = (uint32_t)len;
    r->field_mask |= 1u << f;
}

void wr_resp_init(struct wr_resp *r, char *buf, size_t cap)
{
    *r = (struct wr_resp){.head = buf, .head_cap = cap, .file_fd = -1};
}

void wr_resp_start(struct wr_resp *r, int status, const struct wr_resp_clock *clock)
{
    wr_resp_init(r, r->head, r->head_cap);
    if (status < 100 || status > 999)
        status = 500; /* a bug upstream of here; never a malformed status line */
    r->status = status;
    if (r->head_cap < WR_RESP_STATUS_ROOM) {
        r->is_overflow = true;
        return;
    }
    r->head_start = r->head_len = WR_RESP_STATUS_ROOM;
    size_t at = r->head_len;
    append(r, clock->common, clock->common_len);
    r->is_page_signed = clock->server_len > 0;
    if (r->is_overflow)
        return;
    /* common is the Server line (unless off), then the Date line */
    if (clock->server_len > 0)
        set_field(r, WR_HTTP_FIELD_SERVER, at, clock->server_len);
    set_field(r, WR_HTTP_FIELD_DATE, at + clock->server_len,
              clock->common_len - clock->server_len);
}

void wr_resp_set_status_line(struct wr_resp *r, const char *line, size_t len)
{
    if (r->head_len < WR_RESP_STATUS_ROOM || len > WR_RESP_STATUS_ROOM) {
        r->is_overflow = true;
        return;
    }
    r->head_start = WR_RESP_STATUS_ROOM - len;
    memcpy(r->head + r->head_start, line, len);
}

struct wr_str wr_resp_bytes(const struct wr_resp *r)
{
    return (struct wr_str){r->head + r->head_start, r->head_len - r->head_start};
}

size_t wr_resp_each_field(const struct wr_resp *r, wr_resp_field_fn fn, void *arg)
{
    if (r->head_len < WR_RESP_STATUS_ROOM)
        return 0; /* never started */
    const char *p = r->head + WR_RESP_STATUS_ROOM, *end = r->head + r->head_len;
    size_t n = 0;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *next = eol ? eol + 1 : end;
        const char *stop = eol && eol > p && eol[-1] == '\r' ? eol - 1 : (eol ? eol : end);
        if (stop == p)
            break; /* the blank line: the head ends */
        const char *colon = memchr(p, ':', (size_t)(stop - p));
        if (colon) {
            const char *v = colon + 1;
            while (v < stop && (*v == ' ' || *v == '\t'))
                v++;
            n++;
            struct wr_str name = {p, (size_t)(colon - p)}, value = {v, (size_t)(stop - v)};
            if (!fn(arg, name, value))
                break;
        }
        p = next;
    }
    return n;
}

void wr_resp_mark_field(struct wr_resp *r, enum wr_http_field f, size_t start)
{
    if (!r->is_overflow && start <= r->head_len)
        set_field(r, f, start, r->head_len - start);
}

void wr_resp_field(struct wr_resp *r, enum wr_http_field f, struct wr_str value)
{
    size_t at = r->head_len;
    wr_resp_header(r, wr_http_field_name(f), value);
    wr_resp_mark_field(r, f, at);
}

void wr_resp_field_u64(struct wr_resp *r, enum wr_http_field f, uint64_t value)
{
    char digits[WR_STR_U64_MAX];
    wr_resp_field(r, f, (struct wr_str){digits, wr_str_format_u64(value, digits)});
}

/* Removes field f's line from head; later lines move up by its length. */
static void drop_field(struct wr_resp *r, enum wr_http_field f)
{
    uint32_t at = r->fields[f].at, len = r->fields[f].len;
    memmove(r->head + at, r->head + at + len, r->head_len - at - len);
    r->head_len -= len;
    r->field_mask &= ~(1u << f);
    for (int g = 0; g < WR_HTTP_N_FIELDS; g++) {
        if ((r->field_mask & (1u << g)) && r->fields[g].at > at)
            r->fields[g].at -= len;
    }
}

void wr_resp_drop_fields(struct wr_resp *r, uint32_t mask)
{
    mask &= r->field_mask;
    if (mask == 0 || r->is_overflow)
        return;
    for (int f = 0; f < WR_HTTP_N_FIELDS; f++) {
        if (mask & (1u << f))
            drop_field(r, (enum wr_http_field)f);
    }
}

struct field_find {
    struct wr_str name, value;
};

static bool find_one(void *arg, struct wr_str name, struct wr_str value)
{
    struct field_find *ff = arg;
    if (!wr_str_eq_nocase(name, ff->name))
        return true;
    ff->value = value;
    return false;
}

struct wr_str wr_resp_field_value(const struct wr_resp *r, struct wr_str name)
{
    struct field_find ff = {.name = name};
    wr_resp_each_field(r, find_one, &ff);
    return ff.value;
}

bool wr_resp_weaken_etag(struct wr_resp *r)
{
    struct wr_str v = wr_resp_field_value(r, WR_STR("ETag"));
    if (!v.ptr || v.len == 0 || v.ptr[0] != '"')
        return true; /* none, or weak already */
    if (r->head_len + 2 > r->head_cap) {
        r->is_overflow = true;
        return false;
    }
    size_t at = (size_t)(v.ptr - r->head);
    memmove(r->head + at + 2, r->head + at, r->head_len - at);
    memcpy(r->head + at, "W/", 2);
    r->head_len += 2;
    for (int g = 0; g < WR_HTTP_N_FIELDS; g++) {
        if (!(r->field_mask & (1u << g)))
            continue;
        if (r->fields[g].at > at)
            r->fields[g].at += 2;
        else if (r->fields[g].at + r->fields[g].len > at)
            r->fields[g].len += 2; /* the ETag line itself */
    }
    return true;
}

void wr_resp_raw(struct wr_resp *r, struct wr_str bytes)
{
    append(r, bytes.ptr, bytes.len);
}

void wr_resp_header(struct wr_resp *r, const char *name, struct wr_str value)
{
    append(r, name, strlen(name));
    append(r, ": ", 2);
    append(r, value.ptr, value.len);
    append(r, "\r\n", 2);
}

void wr_resp_raw_u64(struct wr_resp *r, uint64_t value)
{
    char digits[WR_STR_U64_MAX];
    append(r, digits, wr_str_format_u64(value, digits));
}

void wr_resp_header_u64(struct wr_resp *r, const char *name, uint64_t value)
{
    char digits[WR_STR_U64_MAX];
    wr_resp_header(r, name, (struct wr_str){digits, wr_str_format_u64(value, digits)});
}

void wr_resp_header_tmpl(struct wr_resp *r, const char *name, const struct wr_tmpl *t,
                         const struct wr_tmpl_vars *vars)
{
    append(r, name, strlen(name));
    append(r, ": ", 2);
    if (r->is_overflow)
        return;
    ssize_t n = wr_tmpl_expand(t, vars, r->head + r->head_len, r->head_cap - r->head_len);
    if (n < 0) {
        r->is_overflow = true;
        return;
    }
    /* A template can pull request bytes ($request_uri, $host) into a field:
     * the parser already refused CR and LF there, but keep the invariant
     * local: no expansion may split the head. */
    for (ssize_t i = 0; i < n; i++) {
        char c = r->head[r->head_len + (size_t)i];
        if (c == '\r' || c == '\n')
            r->head[r->head_len + (size_t)i] = ' ';
    }
    r->head_len += (size_t)n;
    append(r, "\r\n", 2);
}

void wr_resp_set_page(struct wr_resp *r)
{
    wr_resp_field(r, WR_HTTP_FIELD_CONTENT_TYPE, WR_STR("text/html; charset=utf-8"));
    struct wr_str page = wr_resp_page(r->status, r->is_page_signed);
    r->body = page.ptr;
    r->body_len = page.len;
    r->has_length = true;
}

void wr_resp_add_route_fields(struct wr_resp *r, const struct wr_route *route,
                              const struct wr_tmpl_vars *vars)
{
    if (!route)
        return;
    bool is_error = r->status >= 400;
    wr_resp_drop_fields(r, (is_error ? route->replaced_fields_always : route->replaced_fields) |
                               route->hidden_fields);
    for (size_t i = 0; i < route->n_add_headers; i++) {
        const struct wr_header_cfg *h = &route->add_headers[i];
        if (!is_error || h->is_always)
            wr_resp_header_tmpl(r, h->name, &h->value, vars);
    }
}
