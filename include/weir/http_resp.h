/*
 * http_resp: response heads (status table, header serialisation, Date
 * string), small HTML error pages, and the two actions that need nothing
 * but a head and a fixed body: `return` and `redirect`.
 *
 * Also defines the exchange, the one view of a request that an action
 * handler (static, proxy, return, redirect) receives from conn. Handlers
 * write a response through struct wr_resp and never see the connection.
 * Layer 2: no sockets; the head is written into memory conn provides.
 */
#ifndef WEIR_HTTP_RESP_H
#define WEIR_HTTP_RESP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "weir/config.h"
#include "weir/http_parser.h"
#include "weir/log.h"
#include "weir/router.h"
#include "weir/tmpl.h"

struct wr_static_cache;
struct wr_static_file;

/* A response under construction. The head is serialised into head[] (memory
 * owned by the connection); the body is a borrowed memory range or a file. */
struct wr_resp {
    char *head;       /* borrowed buffer */
    size_t head_len;
    size_t head_cap;
    bool is_overflow; /* a header did not fit: conn answers 500 instead */

    int status;
    bool is_page_signed;  /* error pages name weir (server_header is not off);
                             set by wr_resp_start from the clock */
    bool is_head_only;    /* HEAD request or 1xx/204/304: no body is sent */
    bool has_length;      /* body_len is the Content-Length to announce */
    uint64_t body_len;
    const char *body;     /* borrowed: memory body, must outlive the send
                             (config snapshot, static data, or head[]) */
    int file_fd;          /* file body, -1 when none; ownership passes to
                             conn once the handler returns 0 */
    off_t file_off;
    struct wr_static_file *file_ref; /* NULL: conn owns file_fd and closes it.
                             Set: the body belongs to this open-file cache
                             entry, either as file_fd (borrowed) or, for a
                             small file, as body pointing into its data with
                             file_fd -1; conn owns one reference, dropped with
                             wr_static_file_unref once the body is sent or
                             discarded (static_cache.h) */

    /* Where the fields weir writes itself are in head (wr_resp_field,
     * wr_resp_mark_field), so a route's add_header of the same name can
     * replace them (wr_resp_drop_fields) without searching the head. */
    uint32_t field_mask;  /* 1u << enum wr_http_field: fields[] entries set */
    struct {
        uint32_t at, len; /* the whole line, CRLF included */
    } fields[WR_HTTP_N_FIELDS];
};

/* Date and Server lines, formatted once a second per worker. */
struct wr_resp_clock {
    time_t sec;
    char common[128];   /* "Server: weir\r\nDate: ...\r\n" (Server omitted when off) */
    size_t common_len;
    size_t server_len;  /* bytes of the Server line at the start of common; 0 when off */
    char log_time[40];  /* "23/Nov/2026:10:00:00 +0000" for the access log */
    char iso_time[40];  /* "2026-11-23T10:00:00Z" for the json access log */
};

/* Reformats clock for now if the second changed. server_header NULL = off. */
void wr_resp_clock_update(struct wr_resp_clock *clock, time_t now, const char *server_header);

/* Reason phrase for status ("Not Found"); "Unknown" for unlisted codes. */
const char *wr_resp_reason(int status);

/* Prepares r to build a head in buf[0..cap) (conn calls this). */
void wr_resp_init(struct wr_resp *r, char *buf, size_t cap);

/* Starts the head in r's buffer: "HTTP/1.1 STATUS REASON" and the clock's
 * common lines (Server and Date, remembered as fields weir writes). Anything
 * written into r before is discarded. */
void wr_resp_start(struct wr_resp *r, int status, const struct wr_resp_clock *clock);

/* Appends "name: value\r\n"; sets is_overflow when it does not fit. */
void wr_resp_header(struct wr_resp *r, const char *name, struct wr_str value);
void wr_resp_header_u64(struct wr_resp *r, const char *name, uint64_t value);

/* Appends "name: value\r\n" for a field weir writes itself and remembers
 * where, so that a route's add_header of the name can replace it. */
void wr_resp_field(struct wr_resp *r, enum wr_http_field f, struct wr_str value);
void wr_resp_field_u64(struct wr_resp *r, enum wr_http_field f, uint64_t value);

/* Remembers head[start..head_len) as field f's line: for a field weir
 * writes with wr_resp_raw or wr_resp_header_tmpl. */
void wr_resp_mark_field(struct wr_resp *r, enum wr_http_field f, size_t start);

/*
 * Removes from the head the lines of every field in mask (1u << enum
 * wr_http_field) that r wrote: the route's add_header then supplies them.
 * Costs nothing when mask and r's fields do not meet (the usual case); a
 * head that overflowed is left alone (conn answers 500 anyway).
 */
void wr_resp_drop_fields(struct wr_resp *r, uint32_t mask);

/* Appends raw bytes to the head (an already formatted field line). */
void wr_resp_raw(struct wr_resp *r, struct wr_str bytes);

/* Appends value in decimal (part of a field line built with wr_resp_raw). */
void wr_resp_raw_u64(struct wr_resp *r, uint64_t value);

/* Appends "name: " and expands t as the value, then CRLF. */
void wr_resp_header_tmpl(struct wr_resp *r, const char *name, const struct wr_tmpl *t,
                         const struct wr_tmpl_vars *vars);

/* Appends Content-Length (when has_length and the status allows a body),
 * the Connection field (close, or keep-alive for an HTTP/1.0 client) and the
 * final blank line. */
void wr_resp_finish(struct wr_resp *r, bool is_keep_alive, int client_minor_version);

/*
 * The small HTML page weir sends as the body of an error or redirect with
 * this status: static storage, valid for the life of the process. Statuses
 * without a page of their own get a generic one. is_signed: the page names
 * weir (server_header on); unsigned pages do not name the server at all.
 */
struct wr_str wr_resp_page(int status, bool is_signed);

/* Makes r's body the page for r->status (signed as the clock given to
 * wr_resp_start says), with its Content-Type field. */
void wr_resp_set_page(struct wr_resp *r);

/* What a handler sees of one request. Everything is borrowed from conn and
 * valid only during the handler call. */
struct wr_exchange {
    const struct wr_http_request *req;
    const struct wr_route *route;
    const struct wr_router_match *match;
    struct wr_str path;          /* normalised path, the router's subject */
    const struct wr_tmpl_vars *vars;
    const struct wr_resp_clock *clock;
    struct wr_resp *resp;        /* initialised by conn; the handler calls
                                    wr_resp_start, then adds fields and a body */
    char *scratch;               /* per-worker scratch for the handler */
    size_t scratch_cap;
    struct wr_static_cache *static_cache; /* the worker's open-file cache */
    const struct wr_log_request *log_subject; /* names the request in error-log lines
                                                 (wr_log_request); valid during the call */
    int worker_id;               /* for wr_log_request */
    uint64_t conn_id;
};

/*
 * An action handler. Returns 0 after starting a response in ex->resp (head
 * fields and body set; conn finishes the head), or an HTTP status (>= 400)
 * for conn to answer with its error page instead.
 */
typedef int (*wr_action_fn)(struct wr_exchange *ex);

/* `return = STATUS BODY`: the configured body as text/plain. */
int wr_resp_action_return(struct wr_exchange *ex);

/* `redirect = STATUS TARGET`: Location from the expanded template. */
int wr_resp_action_redirect(struct wr_exchange *ex);

#endif
