/*
 * log_format: compiles access_log_format texts (see log_format.h).
 */
#include "weir/log_format.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct {
    const char *name;
    enum wr_log_var var;
} vars[] = {
    {"remote_addr", WR_LV_REMOTE_ADDR},
    {"time_iso8601", WR_LV_TIME_ISO8601},
    {"time_local", WR_LV_TIME_LOCAL},
    {"msec", WR_LV_MSEC},
    {"request", WR_LV_REQUEST},
    {"request_method", WR_LV_REQUEST_METHOD},
    {"request_uri", WR_LV_REQUEST_URI},
    {"protocol", WR_LV_PROTOCOL},
    {"server_protocol", WR_LV_PROTOCOL}, /* nginx's name */
    {"scheme", WR_LV_SCHEME},
    {"host", WR_LV_HOST},
    {"status", WR_LV_STATUS},
    {"body_bytes_sent", WR_LV_BODY_BYTES_SENT},
    {"request_time", WR_LV_REQUEST_TIME},
    {"upstream_addr", WR_LV_UPSTREAM_ADDR},
    {"upstream_status", WR_LV_UPSTREAM_STATUS},
    {"upstream_response_time", WR_LV_UPSTREAM_RESPONSE_TIME},
    {"route", WR_LV_ROUTE},
    {"request_id", WR_LV_REQUEST_ID},
    {"ssl_protocol", WR_LV_SSL_PROTOCOL},
    {"stream_id", WR_LV_STREAM_ID},
};

bool wr_log_var_is_number(enum wr_log_var v)
{
    return v == WR_LV_STATUS || v == WR_LV_BODY_BYTES_SENT || v == WR_LV_REQUEST_TIME ||
           v == WR_LV_UPSTREAM_RESPONSE_TIME || v == WR_LV_STREAM_ID || v == WR_LV_MSEC;
}

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_';
}

/* The variable called name, into *part; false when there is none. */
static bool lookup_var(struct wr_str name, struct wr_log_part *part)
{
    if (name.len > 5 && memcmp(name.ptr, "http_", 5) == 0) {
        part->var = WR_LV_HTTP;
        part->lit = (struct wr_str){name.ptr + 5, name.len - 5};
        return true;
    }
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        if (strlen(vars[i].name) == name.len && memcmp(vars[i].name, name.ptr, name.len) == 0) {
            part->var = vars[i].var;
            part->lit = name;
            return true;
        }
    }
    return false;
}

struct compiler {
    struct wr_log_format *f;
    size_t cap;
    const char **err;
    struct wr_str *err_at;
};

static int push(struct compiler *c, struct wr_log_part part)
{
    struct wr_log_format *f = c->f;
    if (f->n_parts == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        struct wr_log_part *p = realloc(f->parts, cap * sizeof(*p));
        if (!p) {
            *c->err = "out of memory";
            return -1;
        }
        f->parts = p;
        c->cap = cap;
    }
    f->parts[f->n_parts++] = part;
    if (part.var == WR_LV_TIME_ISO8601 || part.var == WR_LV_MSEC)
        f->has_msec_time = true;
    return 0;
}

/* The variable at *p ('$' already passed): "name" or "{name}". Advances
 * *p past it. */
static int take_var(struct compiler *c, const char **p)
{
    const char *s = *p;
    bool is_braced = *s == '{';
    if (is_braced)
        s++;
    const char *start = s;
    while (is_name_char(*s))
        s++;
    struct wr_str name = {start, (size_t)(s - start)};
    if (name.len == 0 || (is_braced && *s != '}')) {
        *c->err = is_braced ? "unclosed ${ or bad variable name" : "$ without a variable name "
                                                                   "(write $$ for a '$')";
        *c->err_at = (struct wr_str){*p - 1, strlen(*p - 1) < 24 ? strlen(*p - 1) : 24};
        return -1;
    }
    struct wr_log_part part = {0};
    if (!lookup_var(name, &part)) {
        *c->err = "unknown variable";
        *c->err_at = name;
        return -1;
    }
    *p = is_braced ? s + 1 : s;
    return push(c, part);
}

static int compile_template(struct compiler *c)
{
    const char *p = c->f->text;
    while (*p) {
        const char *lit = p;
        while (*p && !(p[0] == '$' && p[1] != '$'))
            p += p[0] == '$' ? 2 : 1; /* "$$": two bytes, one '$' below */
        /* Literal runs, with every "$$" split into "$" pieces. */
        for (const char *q = lit; q < p;) {
            const char *d = memchr(q, '$', (size_t)(p - q));
            const char *end = d ? d + 1 : p; /* keep one '$' of "$$" */
            if (push(c, (struct wr_log_part){WR_LV_LITERAL, {q, (size_t)(end - q)}}) < 0)
                return -1;
            q = d ? d + 2 : p;
        }
        if (*p == '$') {
            p++;
            if (take_var(c, &p) < 0)
                return -1;
        }
    }
    return 0;
}

static int compile_json_fields(struct compiler *c, const char *p)
{
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        if (*p != '$') {
            *c->err = "a json format lists $variables only";
            *c->err_at = (struct wr_str){p, strlen(p) < 24 ? strlen(p) : 24};
            return -1;
        }
        p++;
        if (take_var(c, &p) < 0)
            return -1;
        if (*p && *p != ' ' && *p != '\t') {
            *c->err = "a json format lists $variables only";
            *c->err_at = (struct wr_str){p, strlen(p) < 24 ? strlen(p) : 24};
            return -1;
        }
    }
    if (c->f->n_parts == 0) {
        *c->err = "json lists no variable";
        *c->err_at = wr_str_from_cstr(c->f->text);
        return -1;
    }
    return 0;
}

int wr_log_format_compile(struct wr_log_format *f, const char *text, const char **err,
                          struct wr_str *err_at)
{
    *f = (struct wr_log_format){0};
    *err_at = (struct wr_str){NULL, 0};
    if (strcmp(text, "combined") == 0)
        return 0;
    f->text = strdup(text);
    if (!f->text) {
        *err = "out of memory";
        return -1;
    }
    struct compiler c = {.f = f, .err = err, .err_at = err_at};
    int rc;
    if (strcmp(text, "json") == 0) {
        f->kind = WR_LOG_KIND_JSON;
        rc = 0;
    } else if (strncmp(text, "json ", 5) == 0 || strncmp(text, "json\t", 5) == 0) {
        f->kind = WR_LOG_KIND_JSON_FIELDS;
        rc = compile_json_fields(&c, f->text + 5);
    } else {
        f->kind = WR_LOG_KIND_TEMPLATE;
        rc = compile_template(&c);
    }
    if (rc < 0) {
        /* err_at points into f->text: the caller words the error before
         * fini, so keep the text; parts go. */
        free(f->parts);
        f->parts = NULL;
        f->n_parts = 0;
    }
    return rc;
}

void wr_log_format_fini(struct wr_log_format *f)
{
    free(f->text);
    free(f->parts);
    *f = (struct wr_log_format){0};
}

/* ---- lines ------------------------------------------------------------------ */

void wr_log_put(struct wr_log_line *l, const char *s, size_t n)
{
    if (n > l->cap - l->len)
        n = l->cap - l->len;
    memcpy(l->p + l->len, s, n);
    l->len += n;
}

void wr_log_put_cstr(struct wr_log_line *l, const char *s)
{
    wr_log_put(l, s, strlen(s));
}

static void put_u64(struct wr_log_line *l, uint64_t v)
{
    char digits[WR_STR_U64_MAX];
    wr_log_put(l, digits, wr_str_format_u64(v, digits));
}

static const char hex[] = "0123456789abcdef";

void wr_log_put_escaped(struct wr_log_line *l, struct wr_str s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            wr_log_put(l, (const char *)&c, 1);
            continue;
        }
        char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
        wr_log_put(l, esc, 4);
    }
}

/* Length of the valid UTF-8 sequence at s[i] (RFC 3629: no overlong forms,
 * no surrogates, nothing past U+10FFFF), or 0 when it is not one. */
static size_t utf8_len(struct wr_str s, size_t i)
{
    const unsigned char *p = (const unsigned char *)s.ptr + i;
    size_t left = s.len - i;
    unsigned char c = p[0];
    size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (n == 0 || left < n)
        return 0;
    for (size_t k = 1; k < n; k++) {
        if ((p[k] & 0xc0) != 0x80)
            return 0;
    }
    if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) || /* overlong, surrogate */
        (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))   /* overlong, > U+10FFFF */
        return 0;
    return n;
}

void wr_log_put_json(struct wr_log_line *l, struct wr_str s)
{
    for (size_t i = 0; i < s.len;) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            wr_log_put(l, (const char *)&c, 1);
            i++;
            continue;
        }
        size_t n = c >= 0x80 ? utf8_len(s, i) : 0;
        if (n > 0) {
            wr_log_put(l, s.ptr + i, n);
            i += n;
            continue;
        }
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            wr_log_put(l, esc, 2);
        } else {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            wr_log_put(l, esc, 6);
        }
        i++;
    }
}

/* ---- the built-in formats ------------------------------------------------------ */

static const char *protocol(const struct wr_access_entry *e)
{
    return e->is_http2 ? "HTTP/2.0" : e->minor_version == 0 ? "HTTP/1.0" : "HTTP/1.1";
}

static void put_or_dash(struct wr_log_line *l, struct wr_str s)
{
    if (s.len == 0)
        wr_log_put(l, "-", 1);
    else
        wr_log_put_escaped(l, s);
}

static void format_combined(struct wr_log_line *l, const struct wr_access_entry *e)
{
    wr_log_put_escaped(l, e->remote_addr);
    wr_log_put_cstr(l, " - - [");
    wr_log_put_cstr(l, e->log_time);
    wr_log_put_cstr(l, "] \"");
    if (e->method.len == 0) {
        /* A head that did not parse: its raw first line, as received. */
        wr_log_put_escaped(l, e->target);
        wr_log_put_cstr(l, "\" ");
    } else {
        wr_log_put_escaped(l, e->method);
        wr_log_put(l, " ", 1);
        wr_log_put_escaped(l, e->target);
        wr_log_put(l, " ", 1);
        wr_log_put_cstr(l, protocol(e));
        wr_log_put_cstr(l, "\" ");
    }
    put_u64(l, (uint64_t)e->status);
    wr_log_put(l, " ", 1);
    put_u64(l, e->bytes_sent);
    wr_log_put_cstr(l, " \"");
    put_or_dash(l, e->referer);
    wr_log_put_cstr(l, "\" \"");
    put_or_dash(l, e->user_agent);
    wr_log_put_cstr(l, "\"");
}

static void put_json_str(struct wr_log_line *l, const char *key, struct wr_str value)
{
    wr_log_put_cstr(l, ",\"");
    wr_log_put_cstr(l, key);
    wr_log_put_cstr(l, "\":\"");
    wr_log_put_json(l, value);
    wr_log_put(l, "\"", 1);
}

static void put_json_u64(struct wr_log_line *l, const char *key, uint64_t value)
{
    wr_log_put_cstr(l, ",\"");
    wr_log_put_cstr(l, key);
    wr_log_put_cstr(l, "\":");
    put_u64(l, value);
}

/* ,"key":S.UUUUUU (seconds with microseconds, as nginx's $request_time) */
static void put_json_seconds(struct wr_log_line *l, const char *key, uint64_t us)
{
    wr_log_put_cstr(l, ",\"");
    wr_log_put_cstr(l, key);
    wr_log_put_cstr(l, "\":");
    put_u64(l, us / 1000000);
    char frac[7];
    us %= 1000000;
    for (int i = 5; i >= 0; i--, us /= 10)
        frac[i + 1] = (char)('0' + us % 10);
    frac[0] = '.';
    wr_log_put(l, frac, sizeof(frac));
}

static void format_json(struct wr_log_line *l, const struct wr_access_entry *e)
{
    wr_log_put_cstr(l, "{\"time\":\"");
    wr_log_put_cstr(l, e->iso_time);
    wr_log_put(l, "\"", 1);
    put_json_str(l, "remote_addr", e->remote_addr);
    put_json_str(l, "request_id", e->request_id);
    put_json_str(l, "method", e->method);
    put_json_str(l, "uri", e->target);
    put_json_str(l, "protocol", wr_str_from_cstr(protocol(e)));
    /* The stream ties the lines of one HTTP/2 connection's requests to the
     * frames a client or packet capture shows; HTTP/1 lines have none. */
    if (e->is_http2)
        put_json_u64(l, "stream_id", e->stream_id);
    put_json_str(l, "host", e->host);
    put_json_u64(l, "status", (uint64_t)e->status);
    put_json_u64(l, "bytes_sent", e->bytes_sent);
    put_json_seconds(l, "request_time", e->request_time_us);
    put_json_str(l, "route", e->route); /* "" when no route answered, as in /metrics */
    if (e->upstream_addr.len > 0) {
        put_json_str(l, "upstream_addr", e->upstream_addr);
        put_json_str(l, "upstream_status", e->upstream_status);
        put_json_seconds(l, "upstream_time", e->upstream_time_us);
    }
    put_json_str(l, "referer", e->referer);
    put_json_str(l, "user_agent", e->user_agent);
    wr_log_put(l, "}", 1);
}


/* ---- templates ------------------------------------------------------------------ */

/* MS.UUU: microseconds as milliseconds with three decimals. */
static void put_ms(struct wr_log_line *l, uint64_t us)
{
    put_u64(l, us / 1000);
    char frac[4] = {'.', (char)('0' + us / 100 % 10), (char)('0' + us / 10 % 10),
                    (char)('0' + us % 10)};
    wr_log_put(l, frac, sizeof(frac));
}

/* UTC time to the millisecond: 2026-12-05T13:00:00.123Z. The calendar part
 * is formatted once a second per thread. */
static void put_iso_ms(struct wr_log_line *l, uint64_t unix_ms)
{
    static _Thread_local time_t second = -1;
    static _Thread_local char text[24];
    static _Thread_local size_t text_len;
    time_t now = (time_t)(unix_ms / 1000);
    if (now != second) {
        struct tm tm;
        gmtime_r(&now, &tm);
        text_len = strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm);
        second = now;
    }
    wr_log_put(l, text, text_len);
    unsigned ms = (unsigned)(unix_ms % 1000);
    char frac[5] = {'.', (char)('0' + ms / 100), (char)('0' + ms / 10 % 10),
                    (char)('0' + ms % 10), 'Z'};
    wr_log_put(l, frac, sizeof(frac));
}

/* The request's first field called name ('_' matching '-', any case). */
static struct wr_str field(const struct wr_access_entry *e, struct wr_str name)
{
    if (!e->req)
        return (struct wr_str){NULL, 0};
    for (size_t i = 0; i < e->req->n_headers; i++) {
        struct wr_str h = e->req->headers[i].name;
        if (h.len != name.len)
            continue;
        size_t k = 0;
        while (k < h.len) {
            if (wr_str_lower(h.ptr[k]) != wr_str_lower(name.ptr[k]) &&
                !(h.ptr[k] == '-' && name.ptr[k] == '_'))
                break;
            k++;
        }
        if (k == h.len)
            return e->req->headers[i].value;
    }
    return (struct wr_str){NULL, 0};
}

/* The value of a text variable; empty slices mean "none". */
static struct wr_str text_value(const struct wr_log_part *p, const struct wr_access_entry *e)
{
    switch (p->var) {
    case WR_LV_REMOTE_ADDR: return e->remote_addr;
    case WR_LV_TIME_LOCAL: return wr_str_from_cstr(e->log_time);
    case WR_LV_REQUEST_METHOD: return e->method;
    case WR_LV_REQUEST_URI: /* a head that did not parse has its raw line there */
        return e->method.len ? e->target : (struct wr_str){NULL, 0};
    case WR_LV_PROTOCOL: return wr_str_from_cstr(protocol(e));
    case WR_LV_SCHEME: return e->is_tls ? WR_STR("https") : WR_STR("http");
    case WR_LV_HOST: return e->host;
    case WR_LV_UPSTREAM_ADDR: return e->upstream_addr;
    case WR_LV_UPSTREAM_STATUS: return e->upstream_status;
    case WR_LV_ROUTE: return e->route;
    case WR_LV_REQUEST_ID: return e->request_id;
    case WR_LV_SSL_PROTOCOL: return e->ssl_protocol ? wr_str_from_cstr(e->ssl_protocol)
                                                    : (struct wr_str){NULL, 0};
    case WR_LV_HTTP:
        if (p->lit.len == 7 && memcmp(p->lit.ptr, "referer", 7) == 0 && !e->req)
            return e->referer;
        if (p->lit.len == 10 && memcmp(p->lit.ptr, "user_agent", 10) == 0 && !e->req)
            return e->user_agent;
        return field(e, p->lit);
    default: return (struct wr_str){NULL, 0};
    }
}

/* A variable's value into l: numbers bare, text escaped for the kind
 * (JSON strings quoted; in text "-" for none). */
static void put_var(struct wr_log_line *l, const struct wr_log_part *p,
                    const struct wr_access_entry *e, bool is_json)
{
    switch (p->var) {
    case WR_LV_STATUS: put_u64(l, (uint64_t)e->status); return;
    case WR_LV_BODY_BYTES_SENT: put_u64(l, e->bytes_sent); return;
    case WR_LV_REQUEST_TIME: put_ms(l, e->request_time_us); return;
    case WR_LV_STREAM_ID: put_u64(l, e->stream_id); return;
    case WR_LV_MSEC:
        put_u64(l, e->unix_ms / 1000);
        wr_log_put(l, ".", 1);
        char ms[3] = {(char)('0' + e->unix_ms % 1000 / 100), (char)('0' + e->unix_ms % 100 / 10),
                      (char)('0' + e->unix_ms % 10)};
        wr_log_put(l, ms, 3);
        return;
    case WR_LV_UPSTREAM_RESPONSE_TIME:
        if (e->upstream_addr.len > 0)
            put_ms(l, e->upstream_time_us);
        else
            wr_log_put_cstr(l, is_json ? "null" : "-");
        return;
    default: break;
    }
    if (is_json)
        wr_log_put(l, "\"", 1);
    if (p->var == WR_LV_TIME_ISO8601) {
        put_iso_ms(l, e->unix_ms);
    } else if (p->var == WR_LV_REQUEST && e->method.len == 0) {
        (is_json ? wr_log_put_json : wr_log_put_escaped)(l, e->target); /* a bad head's line */
    } else if (p->var == WR_LV_REQUEST) {
        (is_json ? wr_log_put_json : wr_log_put_escaped)(l, e->method);
        wr_log_put(l, " ", 1);
        (is_json ? wr_log_put_json : wr_log_put_escaped)(l, e->target);
        wr_log_put(l, " ", 1);
        wr_log_put_cstr(l, protocol(e));
    } else {
        struct wr_str v = text_value(p, e);
        if (is_json)
            wr_log_put_json(l, v);
        else if (v.len == 0)
            wr_log_put(l, "-", 1);
        else
            wr_log_put_escaped(l, v);
    }
    if (is_json)
        wr_log_put(l, "\"", 1);
}

static void format_template(const struct wr_log_format *f, const struct wr_access_entry *e,
                            struct wr_log_line *l)
{
    for (size_t i = 0; i < f->n_parts; i++) {
        const struct wr_log_part *p = &f->parts[i];
        if (p->var == WR_LV_LITERAL)
            wr_log_put(l, p->lit.ptr, p->lit.len);
        else
            put_var(l, p, e, false);
    }
}

static void format_json_fields(const struct wr_log_format *f, const struct wr_access_entry *e,
                               struct wr_log_line *l)
{
    wr_log_put(l, "{", 1);
    for (size_t i = 0; i < f->n_parts; i++) {
        const struct wr_log_part *p = &f->parts[i];
        wr_log_put_cstr(l, i ? ",\"" : "\"");
        if (p->var == WR_LV_HTTP)
            wr_log_put(l, "http_", 5);
        wr_log_put(l, p->lit.ptr, p->lit.len);
        wr_log_put(l, "\":", 2);
        put_var(l, p, e, true);
    }
    wr_log_put(l, "}", 1);
}

void wr_log_format_line(const struct wr_log_format *f, const struct wr_access_entry *e,
                        struct wr_log_line *l)
{
    switch (f->kind) {
    case WR_LOG_KIND_JSON: format_json(l, e); break;
    case WR_LOG_KIND_TEMPLATE: format_template(f, e, l); break;
    case WR_LOG_KIND_JSON_FIELDS: format_json_fields(f, e, l); break;
    default: format_combined(l, e); break;
    }
}
