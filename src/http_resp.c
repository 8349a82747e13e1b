/*
 * http_resp: serialises response heads and answers `return` and `redirect`.
 *
 * Not here: anything that touches a socket (conn writes), file bodies
 * (static). Invariants: a head is always built in the buffer conn hands to
 * wr_resp_init and never grows past it: a field that does not fit sets
 * is_overflow, and conn then answers 500 instead of sending a cut head.
 * Every response goes out as HTTP/1.1 (RFC 9110 §6.2: a server sends its own
 * highest minor version). The fields weir writes itself are written with
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
    /* Hot path: no printf. "HTTP/1.1 " + three digits + " " + reason + CRLF. */
    if (status < 100 || status > 999)
        status = 500; /* a bug upstream of here; never a malformed status line */
    r->status = status;
    const char *reason = wr_resp_reason(status);
    char line[64] = "HTTP/1.1 ";
    line[9] = (char)('0' + status / 100);
    line[10] = (char)('0' + status / 10 % 10);
    line[11] = (char)('0' + status % 10);
    line[12] = ' ';
    size_t n = strlen(reason);
    memcpy(line + 13, reason, n);
    memcpy(line + 13 + n, "\r\n", 2);
    append(r, line, 15 + n);
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

static bool status_has_body(int status)
{
    return status >= 200 && status != 204 && status != 304;
}

void wr_resp_finish(struct wr_resp *r, bool is_keep_alive, int client_minor_version)
{
    if (!status_has_body(r->status))
        r->is_head_only = true;
    /* RFC 9110 §8.6: a HEAD response may carry the Content-Length the GET
     * would have had; 204 and 304 never carry a body length of their own. */
    if (r->has_length && r->status != 204 && r->status != 304)
        wr_resp_header_u64(r, "Content-Length", r->body_len);
    if (!is_keep_alive)
        append(r, "Connection: close\r\n", 19);
    else if (client_minor_version == 0)
        append(r, "Connection: keep-alive\r\n", 24);
    append(r, "\r\n", 2);
}

int wr_resp_action_return(struct wr_exchange *ex)
{
    const struct wr_route *route = ex->route;
    struct wr_resp *r = ex->resp;
    wr_resp_start(r, route->status, ex->clock);
    if (route->return_body_len > 0)
        wr_resp_field(r, WR_HTTP_FIELD_CONTENT_TYPE, WR_STR("text/plain; charset=utf-8"));
    r->body = route->return_body;
    r->body_len = route->return_body_len;
    r->has_length = true;
    return 0;
}

int wr_resp_action_redirect(struct wr_exchange *ex)
{
    const struct wr_route *route = ex->route;
    struct wr_resp *r = ex->resp;
    wr_resp_start(r, route->status, ex->clock);
    size_t at = r->head_len;
    wr_resp_header_tmpl(r, "Location", &route->redirect_target, ex->vars);
    wr_resp_mark_field(r, WR_HTTP_FIELD_LOCATION, at);
    wr_resp_set_page(r);
    return 0;
}

void wr_resp_set_page(struct wr_resp *r)
{
    wr_resp_field(r, WR_HTTP_FIELD_CONTENT_TYPE, WR_STR("text/html; charset=utf-8"));
    struct wr_str page = wr_resp_page(r->status, r->is_page_signed);
    r->body = page.ptr;
    r->body_len = page.len;
    r->has_length = true;
}
