/*
 * http_resp: response heads under construction (status, fields, body
 * description), the status table, the Date string and small HTML error
 * pages.
 *
 * A head is built as field lines ("Name: value\r\n") behind room kept
 * free for a status line (WR_RESP_STATUS_ROOM): handlers write fields, the
 * protocol front end writes the status line and the framing fields
 * (h1_framing.h), or reads the fields back one by one (wr_resp_each_field)
 * to encode them another way. Handlers never write a status line,
 * Content-Length, Transfer-Encoding or Connection.
 * Layer 2: no sockets; the head is written into memory the caller provides.
 */
#ifndef WEIR_HTTP_RESP_H
#define WEIR_HTTP_RESP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "weir/config.h"
#include "weir/http_parser.h"
#include "weir/tmpl.h"

/* Bytes kept free at the start of a head for its status line, which the
 * front end writes there (right-aligned, wr_resp_set_status_line) once the
 * fields are done; "HTTP/1.1 431 Request Header Fields Too Large\r\n" is
 * the longest weir writes (46). */
#define WR_RESP_STATUS_ROOM 64

/* Bytes a handler that sends its own head (wr_exchange_send_head) leaves
 * free behind its fields for the front end's framing fields and the blank
 * line. */
#define WR_RESP_FRAMING_ROOM 128

/* Drops a body reference (static_cache.h's open-file entries). */
typedef void (*wr_resp_unref_fn)(void *ref);

/* A response under construction. The head is serialised into head[] (memory
 * the caller provides); the body is a borrowed memory range or a file. */
struct wr_resp {
    char *head;       /* borrowed buffer */
    size_t head_start; /* the serialised head is head[head_start..head_len):
                          WR_RESP_STATUS_ROOM until the status line is set */
    size_t head_len;
    size_t head_cap;
    bool is_overflow; /* a header did not fit: the front end answers 500 instead */

    int status;
    bool is_page_signed;  /* error pages name weir (server_header is not off);
                             set by wr_resp_start from the clock */
    bool is_head_only;    /* HEAD request or 1xx/204/304: no body is sent */
    bool has_length;      /* body_len is the Content-Length to announce */
    uint64_t body_len;
    const char *body;     /* borrowed: memory body, must outlive the send
                             (config snapshot, static data, or head[]) */
    int file_fd;          /* file body, -1 when none; ownership passes to
                             the front end with the response */
    off_t file_off;
    void *body_ref;       /* NULL: the front end owns file_fd and closes it.
                             Set: the body belongs to this reference (an
                             open-file cache entry), either as file_fd
                             (borrowed) or, for a small file, as body pointing
                             into its data with file_fd -1; the front end owns
                             the reference and drops it with body_unref once
                             the body is sent or discarded */
    wr_resp_unref_fn body_unref; /* set with body_ref */
    bool is_length_unknown; /* a whole response (HEAD) whose GET would be coded
                               as it goes: no Content-Length announced */
    bool is_coding_decided; /* the handler coded the body itself (a static
                               file's cached copy: Content-Encoding, Vary
                               and ETag written): the compression filter
                               leaves the response alone (compress_filter.h) */

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

/* Prepares r to build a head in buf[0..cap) (the front end calls this). */
void wr_resp_init(struct wr_resp *r, char *buf, size_t cap);

/* Starts the head in r's buffer for status (100..999; anything else is
 * taken as 500): room for the status line, then the clock's common lines
 * (Server and Date, remembered as fields weir writes). Anything written
 * into r before is discarded. */
void wr_resp_start(struct wr_resp *r, int status, const struct wr_resp_clock *clock);

/*
 * The front end's: puts line (a complete status line, CRLF included, at
 * most WR_RESP_STATUS_ROOM bytes) right before the fields, so that
 * head[head_start..head_len) is the whole head. Sets is_overflow when it
 * does not fit or r was not started.
 */
void wr_resp_set_status_line(struct wr_resp *r, const char *line, size_t len);

/* The serialised head so far: head[head_start..head_len) (borrowed). */
struct wr_str wr_resp_bytes(const struct wr_resp *r);

/* Called for each field of a head: return false to stop. */
typedef bool (*wr_resp_field_fn)(void *arg, struct wr_str name, struct wr_str value);

/*
 * Calls fn(arg, name, value) for each field line of r's head, in order,
 * skipping the status line and stopping at the blank line that ends a
 * finished head; value without the blank after the colon. Reads only:
 * slices point into r's buffer. Returns the number of fields fn saw.
 * For front ends that encode a head other than as HTTP/1 text (HPACK).
 */
size_t wr_resp_each_field(const struct wr_resp *r, wr_resp_field_fn fn, void *arg);

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

/* Makes the first ETag field of the head weak ("x" -> W/"x"): a coded
 * body is not the same bytes (RFC 9110 §8.8.1). Returns false when it
 * did not fit (is_overflow set); a weak or absent ETag is left alone. */
bool wr_resp_weaken_etag(struct wr_resp *r);

/* The value of the first field called name in the head (case-insensitive),
 * ptr NULL when there is none. Borrowed from r's buffer. */
struct wr_str wr_resp_field_value(const struct wr_resp *r, struct wr_str name);

/* Appends raw bytes to the head (an already formatted field line). */
void wr_resp_raw(struct wr_resp *r, struct wr_str bytes);

/* Appends value in decimal (part of a field line built with wr_resp_raw). */
void wr_resp_raw_u64(struct wr_resp *r, uint64_t value);

/* A whole response's route fields: the add_header and set_response_header
 * fields of route (NULL: none) that apply to r's status (below 400 all,
 * else those marked always), replacing weir's own fields of the same
 * names, expanded with vars; and weir's own fields hide_header names
 * dropped. Every front end (and `weir route`) applies them the same way. */
void wr_resp_add_route_fields(struct wr_resp *r, const struct wr_route *route,
                              const struct wr_tmpl_vars *vars);

/* Appends "name: " and expands t as the value, then CRLF. */
void wr_resp_header_tmpl(struct wr_resp *r, const char *name, const struct wr_tmpl *t,
                         const struct wr_tmpl_vars *vars);

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

#endif
