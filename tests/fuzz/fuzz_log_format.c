/*
 * libFuzzer target for log_format: the input is a format text, a NUL, then
 * request bytes (values of the entry's fields, split at NULs). Beyond not
 * crashing, any violation aborts:
 *  - a format that compiles formats any entry within the line's bound;
 *  - a JSON format ("json" or "json $var ...") always gives one valid JSON
 *    object in valid UTF-8 (checked by a strict validator below), whatever
 *    bytes the request carried;
 *  - a text format never writes a control byte or a byte over 0x7e that
 *    the format text itself did not hold (request bytes are escaped).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "weir/log_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct json {
    const unsigned char *p, *end;
};

static bool ws(struct json *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
    return true;
}

/* A valid UTF-8 sequence (RFC 3629) at j->p, consumed. */
static bool utf8(struct json *j)
{
    unsigned char c = *j->p;
    size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (n == 0 || (size_t)(j->end - j->p) < n)
        return false;
    for (size_t k = 1; k < n; k++) {
        if ((j->p[k] & 0xc0) != 0x80)
            return false;
    }
    if ((c == 0xe0 && j->p[1] < 0xa0) || (c == 0xed && j->p[1] > 0x9f) ||
        (c == 0xf0 && j->p[1] < 0x90) || (c == 0xf4 && j->p[1] > 0x8f))
        return false;
    j->p += n;
    return true;
}

static bool string(struct json *j)
{
    if (j->p >= j->end || *j->p != '"')
        return false;
    j->p++;
    while (j->p < j->end && *j->p != '"') {
        unsigned char c = *j->p;
        if (c < 0x20)
            return false;
        if (c == '\\') {
            if (j->end - j->p < 2)
                return false;
            unsigned char e = j->p[1];
            if (e == 'u') {
                if (j->end - j->p < 6)
                    return false;
                for (int k = 2; k < 6; k++) {
                    unsigned char h = j->p[k];
                    if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F')))
                        return false;
                }
                j->p += 6;
            } else if (strchr("\"\\/bfnrt", e) && e) {
                j->p += 2;
            } else {
                return false;
            }
        } else if (c >= 0x80) {
            if (!utf8(j))
                return false;
        } else {
            j->p++;
        }
    }
    if (j->p >= j->end)
        return false;
    j->p++;
    return true;
}

static bool number(struct json *j)
{
    const unsigned char *start = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
        j->p++;
    if (j->p == start)
        return false;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        const unsigned char *frac = j->p;
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
        if (j->p == frac)
            return false;
    }
    return true;
}

static bool value(struct json *j)
{
    if (j->p < j->end && *j->p == '"')
        return string(j);
    if ((size_t)(j->end - j->p) >= 4 && memcmp(j->p, "null", 4) == 0) {
        j->p += 4;
        return true;
    }
    return number(j);
}

/* One flat object of string keys and string, number or null values. */
static bool object(struct json *j)
{
    ws(j);
    if (j->p >= j->end || *j->p++ != '{')
        return false;
    ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        return true;
    }
    for (;;) {
        if (!ws(j) || !string(j) || !ws(j) || j->p >= j->end || *j->p++ != ':' || !ws(j) ||
            !value(j) || !ws(j) || j->p >= j->end)
            return false;
        unsigned char c = *j->p++;
        if (c == '}')
            return true;
        if (c != ',')
            return false;
    }
}

/* The next NUL-separated piece of the request bytes, or an empty one. */
static struct wr_str next_piece(const char **p, const char *end)
{
    if (*p >= end)
        return (struct wr_str){NULL, 0};
    const char *nul = memchr(*p, '\0', (size_t)(end - *p));
    const char *stop = nul ? nul : end;
    struct wr_str s = {*p, (size_t)(stop - *p)};
    *p = nul ? nul + 1 : end;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nul = memchr(data, '\0', size);
    if (!nul)
        return 0;
    struct wr_log_format f;
    const char *err = NULL;
    struct wr_str at;
    if (wr_log_format_compile(&f, (const char *)data, &err, &at) != 0) {
        wr_log_format_fini(&f);
        return 0;
    }
    /* Request bytes, in an exact-size copy: over-reads are ASan reports. */
    size_t rest = size - (size_t)(nul + 1 - (const char *)data);
    char *bytes = malloc(rest ? rest : 1);
    if (!bytes)
        abort();
    memcpy(bytes, nul + 1, rest);
    const char *p = bytes, *end = bytes + rest;
    static struct wr_http_request req; /* large: not on the stack */
    req.n_headers = 2;
    struct wr_http_header *fields = req.headers;
    fields[0].name = next_piece(&p, end);
    fields[0].value = next_piece(&p, end);
    fields[1].name = WR_STR("User-Agent");
    fields[1].value = next_piece(&p, end);
    struct wr_access_entry e = {
        .remote_addr = next_piece(&p, end), .method = next_piece(&p, end),
        .target = next_piece(&p, end), .host = next_piece(&p, end),
        .referer = next_piece(&p, end), .user_agent = fields[1].value,
        .request_id = next_piece(&p, end), .route = next_piece(&p, end),
        .upstream_addr = next_piece(&p, end), .upstream_status = next_piece(&p, end),
        .status = 200, .bytes_sent = rest, .request_time_us = rest * 977,
        .upstream_time_us = rest * 13, .unix_ms = 1733400000123u + rest,
        .log_time = "05/Dec/2026:13:00:00 +0000", .iso_time = "2026-12-05T13:00:00Z",
        .ssl_protocol = rest & 1 ? "TLSv1.3" : NULL, .is_tls = rest & 2, .is_http2 = rest & 4,
        .stream_id = (uint32_t)rest, .req = rest & 8 ? NULL : &req,
    };
    enum { CAP = 8192 };
    char *out = malloc(CAP);
    if (!out)
        abort();
    struct wr_log_line l = {out, 0, CAP};
    wr_log_format_line(&f, &e, &l);
    if (l.len > CAP)
        abort();
    if (f.kind == WR_LOG_KIND_JSON || f.kind == WR_LOG_KIND_JSON_FIELDS) {
        struct json j = {(const unsigned char *)out, (const unsigned char *)out + l.len};
        /* A line cut at the bound is not whole: only check lines that fit. */
        if (l.len < CAP && (!object(&j) || (ws(&j), j.p != j.end)))
            abort();
    } else if (f.kind == WR_LOG_KIND_TEMPLATE) {
        bool text_has_raw = false;
        for (const char *t = (const char *)data; *t; t++)
            text_has_raw |= (unsigned char)*t < 0x20 || (unsigned char)*t > 0x7e;
        for (size_t i = 0; i < l.len && !text_has_raw; i++) {
            unsigned char c = (unsigned char)out[i];
            if (c < 0x20 || c > 0x7e)
                abort();
        }
    }
    free(out);
    free(bytes);
    wr_log_format_fini(&f);
    return 0;
}
