/*
 * http_parser: HTTP/1.1 request heads and chunked bodies (RFC 9112).
 *
 * Zero-copy: every slice in a parsed request points into the caller's
 * buffer, which must stay unchanged while the request is in use. Strict:
 * anything that two implementations could read differently is rejected with
 * the status it deserves, never repaired. No allocation, no I/O.
 * Layer 0: safe to call from any thread; fuzzed by tests/fuzz/.
 */
#ifndef WEIR_HTTP_PARSER_H
#define WEIR_HTTP_PARSER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "weir/str.h"

/* Results of incremental parsers (STYLE §5); >= 0 means bytes consumed. */
#define WR_ERROR ((ssize_t)-1)
#define WR_AGAIN ((ssize_t)-2)

/* Most header fields accepted in one request; 431 beyond. */
#define WR_HTTP_MAX_HEADERS 100

/* Longest method token accepted; 400 beyond. The longest registered method
 * (UPDATEREDIRECTREF) has 17 bytes; a longer token is no method anyone
 * serves, and refusing it at once keeps a client from holding a connection
 * with a request line that can never become valid. */
#define WR_HTTP_METHOD_MAX 32

enum wr_http_method {
    WR_HTTP_OTHER = 0, /* a valid token we do not know; see method slice */
    WR_HTTP_GET,
    WR_HTTP_HEAD,
    WR_HTTP_POST,
    WR_HTTP_PUT,
    WR_HTTP_DELETE,
    WR_HTTP_CONNECT,
    WR_HTTP_OPTIONS,
    WR_HTTP_TRACE,
    WR_HTTP_PATCH,
    WR_HTTP_N_METHODS
};

/* Canonical name of a known method ("GET"); "" for WR_HTTP_OTHER. */
const char *wr_http_method_name(enum wr_http_method m);

/* Known method for a token (exact, case-sensitive per RFC 9110 §9.1). */
enum wr_http_method wr_http_method_from(struct wr_str token);

/*
 * Response fields weir itself writes on answers it makes (static files,
 * return, redirect, error pages; Server and Date on every response). A
 * route's add_header of one of these names replaces weir's field instead of
 * adding a second one: config records which (1u << id in wr_route's
 * replaced_fields), http_resp remembers where each was written. Framing
 * fields (Content-Length, Transfer-Encoding, Connection) are not here:
 * add_header refuses them.
 */
enum wr_http_field {
    WR_HTTP_FIELD_SERVER = 0,
    WR_HTTP_FIELD_DATE,
    WR_HTTP_FIELD_CONTENT_TYPE,
    WR_HTTP_FIELD_CACHE_CONTROL,
    WR_HTTP_FIELD_ETAG,
    WR_HTTP_FIELD_LAST_MODIFIED,
    WR_HTTP_FIELD_VARY,
    WR_HTTP_FIELD_ACCEPT_RANGES,
    WR_HTTP_FIELD_CONTENT_ENCODING,
    WR_HTTP_FIELD_CONTENT_RANGE,
    WR_HTTP_FIELD_LOCATION,
    WR_HTTP_FIELD_ALLOW,
    WR_HTTP_FIELD_RETRY_AFTER,
    WR_HTTP_N_FIELDS
};

/* Canonical name of f ("Content-Type"); "" when f is out of range. */
const char *wr_http_field_name(enum wr_http_field f);

/* The field named name (ASCII case-insensitive, RFC 9110 §5.1), or
 * WR_HTTP_N_FIELDS when weir does not write that name itself. */
enum wr_http_field wr_http_field_from(struct wr_str name);

struct wr_http_header {
    struct wr_str name;  /* as received (case kept) */
    struct wr_str value; /* leading/trailing whitespace removed */
};

/* Request fields weir reads by name on the hot path: the parser notes
 * where the first of each is (wr_http_known_value), so answering a request
 * never scans the fields by name. */
enum wr_http_known {
    WR_HTTP_KNOWN_ACCEPT_ENCODING = 0,
    WR_HTTP_KNOWN_RANGE,
    WR_HTTP_KNOWN_IF_RANGE,
    WR_HTTP_KNOWN_IF_MATCH,
    WR_HTTP_KNOWN_IF_NONE_MATCH,
    WR_HTTP_KNOWN_IF_MODIFIED_SINCE,
    WR_HTTP_KNOWN_IF_UNMODIFIED_SINCE,
    WR_HTTP_KNOWN_REFERER,
    WR_HTTP_KNOWN_USER_AGENT,
    WR_HTTP_KNOWN_UPGRADE,
    WR_HTTP_N_KNOWN
};

struct wr_http_request {
    struct wr_str method;
    enum wr_http_method method_id;
    struct wr_str target; /* request-target exactly as received */
    struct wr_str path;   /* path part, still percent-encoded; from the
                             absolute-form's path when the target is absolute
                             ("/" when it has none); "*" for asterisk-form */
    struct wr_str query;  /* after '?', without it; ptr NULL when absent */
    struct wr_str host;   /* absolute-form authority, else the Host value;
                             port kept; len 0 when absent (HTTP/1.0) */
    int minor_version;    /* 0 or 1 (HTTP/1.x only) */

    uint64_t content_length; /* valid when has_content_length */
    bool has_content_length;
    bool is_chunked;         /* Transfer-Encoding: chunked (the only one accepted) */
    bool is_keep_alive;      /* version default adjusted by Connection */
    bool expects_continue;   /* Expect: 100-continue */
    bool is_upgrade;         /* Connection: upgrade and an Upgrade field */
    bool is_absolute_form;   /* target was absolute-form */
    bool is_extended_connect; /* HTTP/2 CONNECT with :protocol websocket (RFC
                                 8441): routed and proxied as a WebSocket
                                 GET; method_id is WR_HTTP_GET, method stays
                                 "CONNECT" for the log */

    size_t n_headers;
    struct wr_http_header headers[WR_HTTP_MAX_HEADERS];
    /* When is_indexed (the parser filled req): known[k] is 1 + the index in
     * headers of the first field k, 0 when there is none. A request built
     * otherwise (HTTP/2) leaves is_indexed false: lookups scan. */
    uint8_t known[WR_HTTP_N_KNOWN];
    bool is_indexed;

    int status; /* after WR_ERROR: 400, 414, 431, 501 or 505 */
};

struct wr_http_limits {
    size_t max_head_bytes; /* request line + fields + final CRLF; 414/431 beyond */
    size_t max_headers;    /* field lines; 431 beyond. 0 (or more than
                              WR_HTTP_MAX_HEADERS) means WR_HTTP_MAX_HEADERS */
};

/*
 * Parses one request head at the start of buf[0..len).
 *
 * prev_len is how many of these bytes an earlier call already saw (0 on the
 * first call); it only saves rescanning and never changes the result, so a
 * request split at any byte boundary parses exactly as when whole.
 *
 * Returns the head length (bytes up to and including the blank line) when
 * complete and valid, filling *req; WR_AGAIN when more bytes are needed (and
 * the limit is not yet reached); WR_ERROR with req->status set on a
 * violation:
 *   400  malformed syntax, bare LF, obs-fold, whitespace before ':', CTL/NUL
 *        in a field, missing/duplicate Host on HTTP/1.1, Content-Length with
 *        Transfer-Encoding, differing or invalid Content-Length, bad method,
 *        a method longer than WR_HTTP_METHOD_MAX (a method is not a target:
 *        never 414)
 *   414  the limit reached inside the request-target
 *   431  head longer than the limit, or more fields than limits->max_headers
 *   501  a transfer-coding other than a single final "chunked"
 *   505  a version other than HTTP/1.0 or HTTP/1.1
 * The request line is checked as far as it has arrived: a byte that no valid
 * request line can have at its place (a NUL or other CTL where a method must
 * start, a non-token byte in the method, a CTL in the target, anything but
 * "HTTP/" DIGIT "." DIGIT CRLF after it) gives WR_ERROR 400 on the call that
 * first sees it, without waiting for the rest of the head.
 * Leading empty lines before the request line (RFC 9112 §2.2) are skipped and
 * counted in the returned length.
 * Unknown but valid method tokens are not refused here: routes may accept
 * them (the router answers 501 when none does).
 */
ssize_t wr_http_parse_request(const char *buf, size_t len, size_t prev_len,
                              const struct wr_http_limits *limits, struct wr_http_request *req);

/* Value of the first field named name (ASCII case-insensitive), or NULL. */
const struct wr_http_header *wr_http_find_header(const struct wr_http_request *req,
                                                 struct wr_str name);

/* Indexes the known fields of a request built field by field (HTTP/2),
 * once its headers[] are final: lookups by kind need no scan from now. */
void wr_http_index_fields(struct wr_http_request *req);

/* The value of the first field k of req; ptr NULL when there is none.
 * Parsed requests: one array read; others: a scan by name. */
struct wr_str wr_http_known_value(const struct wr_http_request *req, enum wr_http_known k);

/* A response head from an upstream server. */
struct wr_http_response {
    int minor_version;        /* 0 or 1 */
    int status;               /* 100..999 */
    struct wr_str reason;     /* may be empty */
    uint64_t content_length;  /* valid when has_content_length */
    bool has_content_length;
    bool is_chunked;          /* Transfer-Encoding: chunked (only coding accepted) */
    bool is_keep_alive;       /* version default adjusted by Connection */
    bool has_conn_upgrade;    /* Connection: upgrade and an Upgrade field */
    size_t n_headers;
    struct wr_http_header headers[WR_HTTP_MAX_HEADERS];
};

/*
 * Parses one response head at the start of buf[0..len), as strictly as a
 * request: bare LF, obs-fold, bad Content-Length, TE with CL, a coding other
 * than a final chunked, more than WR_HTTP_MAX_HEADERS fields, a head longer
 * than limits->max_head_bytes, or a version other than 1.0/1.1 give
 * WR_ERROR (the proxy answers 502). Returns the head length when complete,
 * WR_AGAIN when more bytes are needed. prev_len as for requests. Which
 * statuses carry a body (1xx, 204, 304, HEAD) is the caller's business.
 */
ssize_t wr_http_parse_response(const char *buf, size_t len, size_t prev_len,
                               const struct wr_http_limits *limits,
                               struct wr_http_response *resp);

/* The first field of resp named name (ASCII case-insensitive), or NULL. */
const struct wr_http_header *wr_http_find_response_header(const struct wr_http_response *resp,
                                                          struct wr_str name);

/* Chunked transfer-coding decoder state (RFC 9112 §7.1). */
struct wr_http_chunked {
    uint64_t chunk_left;   /* data bytes left in the current chunk */
    uint32_t state;        /* private to the decoder */
    uint32_t line_bytes;   /* bytes of the current size or trailer line */
    uint64_t trailer_bytes;/* total trailer bytes seen, bounded */
    bool is_done;          /* the last chunk and trailer section were read */
    int status;            /* after WR_ERROR: 400 */
};

/* Longest chunk-size line (with extensions) and trailer section accepted. */
#define WR_HTTP_CHUNK_LINE_MAX 4096
#define WR_HTTP_TRAILER_MAX 16384

/* Prepares c for a new body. */
void wr_http_chunked_init(struct wr_http_chunked *c);

/*
 * Decodes chunked framing from buf[0..len).
 *
 * Returns the bytes consumed (> 0), with *data set to the body bytes found
 * inside them (a sub-slice of buf, possibly empty: a call stops at the end of
 * a data run so the caller can take it). Call again with the rest of the input.
 * Returns WR_AGAIN when len is 0, or when called after is_done (nothing more
 * to take); WR_ERROR with c->status = 400 on a bad chunk size (non-hex,
 * empty, overflow past 2^63), a malformed chunk extension, a missing CRLF
 * after data, bare LF, or lines/trailers past the limits above. Trailer fields
 * are validated and discarded. Never reads past buf + len.
 */
ssize_t wr_http_chunked_parse(struct wr_http_chunked *c, const char *buf, size_t len,
                              struct wr_str *data);

#endif
