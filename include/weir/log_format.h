/*
 * log_format: an access-log format compiled from its text ([server]
 * access_log_format): the built-in `combined` and `json`, a template of
 * $variables and literal text, or `json $var …` (a JSON object of the
 * variables named, each under its own name). Compiled once at load; the
 * access log (log.c) formats a line from the parts with no allocation.
 * Layer 0: pure.
 */
#ifndef WEIR_LOG_FORMAT_H
#define WEIR_LOG_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weir/http_parser.h"
#include "weir/str.h"

enum wr_log_kind {
    WR_LOG_KIND_COMBINED = 0, /* nginx/Apache combined (the default) */
    WR_LOG_KIND_JSON,         /* weir's fixed JSON object */
    WR_LOG_KIND_TEMPLATE,     /* text with $variables */
    WR_LOG_KIND_JSON_FIELDS,  /* json $a $b: {"a":…,"b":…} */
};

enum wr_log_var {
    WR_LV_LITERAL = 0,
    WR_LV_REMOTE_ADDR,
    WR_LV_TIME_ISO8601,   /* 2026-12-05T13:00:00.123Z (UTC, milliseconds) */
    WR_LV_TIME_LOCAL,     /* 05/Dec/2026:13:00:00 +0000 (combined's) */
    WR_LV_MSEC,           /* Unix time in seconds with milliseconds */
    WR_LV_REQUEST,        /* "GET /x HTTP/1.1" (a bad head: its first line) */
    WR_LV_REQUEST_METHOD,
    WR_LV_REQUEST_URI,    /* the target as received */
    WR_LV_PROTOCOL,       /* HTTP/1.0, HTTP/1.1 or HTTP/2.0 */
    WR_LV_SCHEME,         /* http or https */
    WR_LV_HOST,
    WR_LV_STATUS,
    WR_LV_BODY_BYTES_SENT,
    WR_LV_REQUEST_TIME,   /* milliseconds with microseconds: 12.345 */
    WR_LV_UPSTREAM_ADDR,
    WR_LV_UPSTREAM_STATUS,
    WR_LV_UPSTREAM_RESPONSE_TIME, /* milliseconds, as request_time */
    WR_LV_ROUTE,
    WR_LV_REQUEST_ID,
    WR_LV_SSL_PROTOCOL,   /* TLSv1.3 …; empty without TLS */
    WR_LV_STREAM_ID,      /* the HTTP/2 stream; 0 for HTTP/1 */
    WR_LV_HTTP,           /* $http_NAME: the request's first NAME field */
};

struct wr_log_part {
    enum wr_log_var var;
    struct wr_str lit;  /* literal text; for WR_LV_HTTP the field name
                           ('_' for '-'); in JSON_FIELDS the key */
};

struct wr_log_format {
    enum wr_log_kind kind;
    char *text;               /* owned: the source, which parts point into */
    struct wr_log_part *parts; /* owned; none for the built-in kinds */
    size_t n_parts;
    bool has_msec_time;       /* a part needs the time to the millisecond */
};

/*
 * Compiles text into f. "combined" and "json" are the built-ins. "json"
 * followed by $variables (spaces between) is a JSON object of those; any
 * other text is a template: "$name" or "${name}" is a variable, "$$" a
 * '$', the rest literal. Returns 0, or -1 with a static message in *err
 * and *err_at the offending name (or the text) for the error line; *err_at
 * points into f, so call wr_log_format_fini after using it, on failure
 * too.
 */
int wr_log_format_compile(struct wr_log_format *f, const char *text, const char **err,
                          struct wr_str *err_at);

/* Frees what f owns; f may be zeroed memory. */
void wr_log_format_fini(struct wr_log_format *f);

/* A variable's value is a number in JSON (status, byte counts, times). */
bool wr_log_var_is_number(enum wr_log_var v);

/* ---- formatting ---------------------------------------------------------- */

/* One finished request, as the access log needs it. Slices are borrowed. */
struct wr_access_entry {
    struct wr_str remote_addr;
    struct wr_str method, target, host, referer, user_agent, request_id;
    struct wr_str route;      /* name of the route that answered; empty when none
                                 (404 without a route, 400, 405, 501...) */
    int minor_version;
    bool is_http2;            /* the request came over HTTP/2: "HTTP/2.0" */
    bool is_tls;              /* $scheme https */
    const char *ssl_protocol; /* "TLSv1.3" …; NULL without TLS */
    uint32_t stream_id;       /* HTTP/2: the request's stream (json "stream_id"); 0 else */
    int status;
    uint64_t bytes_sent;      /* body bytes */
    uint64_t request_time_us; /* from the first byte of the head */
    struct wr_str upstream_addr; /* proxied: every server tried, "a, b"; else empty */
    struct wr_str upstream_status; /* proxied: each attempt's status, "502, 200" */
    uint64_t upstream_time_us;   /* proxied: request start -> response head */
    const char *log_time;     /* "23/Nov/2026:10:00:00 +0000" */
    const char *iso_time;     /* "2026-11-23T10:00:00Z" */
    uint64_t unix_ms;         /* now, for $time_iso8601 and $msec (formats with
                                 has_msec_time only; 0 otherwise) */
    const struct wr_http_request *req; /* for $http_NAME; NULL: none */
};

/* A bounded line: appends until cap, then drops the rest. */
struct wr_log_line {
    char *p;
    size_t len, cap;
};

void wr_log_put(struct wr_log_line *l, const char *s, size_t n);
void wr_log_put_cstr(struct wr_log_line *l, const char *s);

/* Request bytes are attacker-controlled: quotes, backslashes, control and
 * non-ASCII bytes go as \xHH, so no field or line can be forged. */
void wr_log_put_escaped(struct wr_log_line *l, struct wr_str s);

/* s as the inside of a JSON string: '"', '\\' and control bytes escaped,
 * valid UTF-8 kept as it is, every byte of an invalid sequence written as
 * \u00HH (its value as a code point), so the line is always valid JSON. */
void wr_log_put_json(struct wr_log_line *l, struct wr_str s);

/* e as one line of f (no newline) into l. */
void wr_log_format_line(const struct wr_log_format *f, const struct wr_access_entry *e,
                        struct wr_log_line *l);

#endif
