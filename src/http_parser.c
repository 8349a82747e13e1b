/*
 * http_parser: HTTP/1.1 request heads and chunked bodies (RFC 9112, RFC 9110).
 *
 * Responsible for: finding the end of a request head, validating all of it
 * strictly and describing it as slices of the caller's buffer; decoding
 * chunked framing into runs of body bytes. Deliberately not: percent-decoding
 * or normalising paths (path.c), routing, choosing responses, socket I/O or
 * buffering. Nothing here allocates.
 *
 * Invariants:
 * - Never reads outside buf[0..len) and never writes to it.
 * - A head is parsed in three steps: check the request line as far as it has
 *   arrived (so garbage is refused on its first byte), find the head's end
 *   (the first CRLF CRLF, checking on the way that every LF has its CR), then
 *   parse the complete head once. Only buf[0..leading CRLFs +
 *   max_head_bytes) is ever looked at, and each step's verdict on a prefix is
 *   "need more" or its verdict on the whole, so the outcome for a buffer is
 *   fixed by its prefix: feeding a request in any pieces gives the result of
 *   feeding it whole. prev_len only lets the scans resume; no other state
 *   survives a call.
 * - The chunked decoder looks at each framing byte exactly once and keeps
 *   everything it knows in struct wr_http_chunked, so any split of a body
 *   decodes to the same bytes and the same outcome.
 */
#include "weir/http_parser.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

/* Byte classes; one table lookup per byte in the scanning loops. */
enum {
    C_TCHAR = 0x01, /* token character (RFC 9110 §5.6.2) */
    C_VCHAR = 0x02, /* visible ASCII 0x21-0x7E: the only request-target bytes */
    C_FIELD = 0x04, /* field-content byte: HTAB, SP, VCHAR, obs-text (RFC 9110 §5.5) */
    C_HOST = 0x08,  /* reg-name byte: unreserved, sub-delims, '%' (RFC 3986 §3.2.2) */
    C_HEX = 0x10,   /* HEXDIG */
    C_QDTEXT = 0x20 /* qdtext of a quoted-string (RFC 9110 §5.6.4) */
};

/* Row r holds bytes 0xr0..0xrF. Generated from the definitions above. */
static const uint8_t char_class[256] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x24, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x24, 0x2f, 0x06, 0x27, 0x2f, 0x2f, 0x2f, 0x2f, 0x2e, 0x2e, 0x2f, 0x2f, 0x2e, 0x2f, 0x2f, 0x26,
    0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x26, 0x2e, 0x26, 0x2e, 0x26, 0x26,
    0x26, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f,
    0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x26, 0x06, 0x26, 0x27, 0x2f,
    0x27, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f,
    0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x26, 0x27, 0x26, 0x2f, 0x00,
    0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24,
    0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24,
    0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24,
    0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24,
    0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24,
    0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24,
    0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24,
    0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24, 0x24,
};

/* Empty lines tolerated before a request line (RFC 9112 §2.2 asks for at
 * least one, after a POST body's stray CRLF); more is a client holding the
 * connection with bytes that would never count toward the head limit. */
enum { LEADING_EMPTY_LINES_MAX = 4 };

/* Largest Content-Length and chunk size: what an off_t can hold. */
static const uint64_t BODY_BYTES_MAX = INT64_MAX;

/* What the field lines say about framing and the connection, gathered while
 * parsing and judged once the whole head is known. */
struct head_state {
    unsigned n_host;
    bool has_te;            /* a Transfer-Encoding field was seen */
    bool te_has_chunked;    /* chunked was seen (is_te_bad if anything followed) */
    bool is_te_bad;         /* empty coding, or a coding after chunked */
    bool te_has_unknown;    /* a coding other than chunked */
    bool has_close;         /* Connection: close */
    bool has_keep_alive;    /* Connection: keep-alive */
    bool has_conn_upgrade;  /* Connection: upgrade */
    bool has_upgrade_field; /* an Upgrade field */
    size_t max_headers;     /* from the limits: 431 past this many fields */
};

static const struct {
    const char *name;
    size_t len;
} method_names[WR_HTTP_N_METHODS] = {
    [WR_HTTP_OTHER] = {"", 0},          [WR_HTTP_GET] = {"GET", 3},
    [WR_HTTP_HEAD] = {"HEAD", 4},       [WR_HTTP_POST] = {"POST", 4},
    [WR_HTTP_PUT] = {"PUT", 3},         [WR_HTTP_DELETE] = {"DELETE", 6},
    [WR_HTTP_CONNECT] = {"CONNECT", 7}, [WR_HTTP_OPTIONS] = {"OPTIONS", 7},
    [WR_HTTP_TRACE] = {"TRACE", 5},     [WR_HTTP_PATCH] = {"PATCH", 5},
};

const char *wr_http_method_name(enum wr_http_method m)
{
    if ((int)m <= (int)WR_HTTP_OTHER || (int)m >= (int)WR_HTTP_N_METHODS)
        return "";
    return method_names[m].name;
}

enum wr_http_method wr_http_method_from(struct wr_str token)
{
    for (int m = WR_HTTP_GET; m < WR_HTTP_N_METHODS; m++) {
        if (token.len == method_names[m].len &&
            memcmp(token.ptr, method_names[m].name, token.len) == 0)
            return (enum wr_http_method)m;
    }
    return WR_HTTP_OTHER;
}

static const char *const field_names[WR_HTTP_N_FIELDS] = {
    [WR_HTTP_FIELD_SERVER] = "Server",
    [WR_HTTP_FIELD_DATE] = "Date",
    [WR_HTTP_FIELD_CONTENT_TYPE] = "Content-Type",
    [WR_HTTP_FIELD_CACHE_CONTROL] = "Cache-Control",
    [WR_HTTP_FIELD_ETAG] = "ETag",
    [WR_HTTP_FIELD_LAST_MODIFIED] = "Last-Modified",
    [WR_HTTP_FIELD_VARY] = "Vary",
    [WR_HTTP_FIELD_ACCEPT_RANGES] = "Accept-Ranges",
    [WR_HTTP_FIELD_CONTENT_ENCODING] = "Content-Encoding",
    [WR_HTTP_FIELD_CONTENT_RANGE] = "Content-Range",
    [WR_HTTP_FIELD_LOCATION] = "Location",
    [WR_HTTP_FIELD_ALLOW] = "Allow",
    [WR_HTTP_FIELD_RETRY_AFTER] = "Retry-After",
};

const char *wr_http_field_name(enum wr_http_field f)
{
    if ((int)f < 0 || (int)f >= (int)WR_HTTP_N_FIELDS)
        return "";
    return field_names[f];
}

enum wr_http_field wr_http_field_from(struct wr_str name)
{
    for (int f = 0; f < WR_HTTP_N_FIELDS; f++) {
        if (wr_str_eq_nocase(name, wr_str_from_cstr(field_names[f])))
            return (enum wr_http_field)f;
    }
    return WR_HTTP_N_FIELDS;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static ssize_t fail(struct wr_http_request *req, int status)
{
    req->status = status;
    return WR_ERROR;
}

/* Makes an empty slice that still points into the buffer (never NULL). */
static struct wr_str empty_at(const char *p)
{
    return (struct wr_str){p, 0};
}

/* ---- scanning ---------------------------------------------------------- */

/* Eight bytes at a time (SWAR): requests are mostly long runs of ordinary
 * bytes, and testing a word costs about what testing one byte does. The
 * tests below are exact about whether some byte qualifies (a borrow or carry
 * can only start at a byte that qualifies itself), not about which. */
static const uint64_t ONES = 0x0101010101010101u;
static const uint64_t HIGHS = 0x8080808080808080u;

static uint64_t load_word(const char *p)
{
    uint64_t x;
    memcpy(&x, p, sizeof(x));
    return x;
}

/* Some byte of x is below 0x20 (HTAB included) or is DEL. */
static bool word_has_ctl(uint64_t x)
{
    const uint64_t del = x ^ (ONES * 0x7f);
    return (((x - ONES * 0x20) & ~x) | ((del - ONES) & ~del)) & HIGHS;
}

/* Some byte of x is outside 0x21-0x7E. */
static bool word_has_non_vchar(uint64_t x)
{
    return (((x - ONES * 0x21) & ~x) | x | (x + ONES)) & HIGHS;
}

/* First byte in [p, end) that is not field-content (C_FIELD), or end. */
static const char *skip_field_content(const char *p, const char *end)
{
    for (;;) {
        while (end - p >= 8 && !word_has_ctl(load_word(p)))
            p += 8;
        /* The word that stopped us, byte by byte: it may only hold an HTAB. */
        const char *const word_end = end - p >= 8 ? p + 8 : end;
        while (p < word_end && (char_class[(uint8_t)*p] & C_FIELD))
            p++;
        if (p < word_end || p == end)
            return p;
    }
}

/* First byte in [p, end) that is not visible ASCII, or end. */
static const char *skip_vchars(const char *p, const char *end)
{
    while (end - p >= 8 && !word_has_non_vchar(load_word(p)))
        p += 8;
    while (p < end && (char_class[(uint8_t)*p] & C_VCHAR))
        p++;
    return p;
}

/* ---- request-target ---------------------------------------------------- */

/* Skips a non-empty reg-name at p (pct-encoded triplets checked); NULL if
 * there is none or a '%' is not followed by two hex digits. */
static const char *skip_reg_name(const char *p, const char *end)
{
    const char *const start = p;
    while (p < end && (char_class[(uint8_t)*p] & C_HOST)) {
        if (*p != '%') {
            p++;
            continue;
        }
        if (end - p < 3 || !(char_class[(uint8_t)p[1]] & C_HEX) ||
            !(char_class[(uint8_t)p[2]] & C_HEX))
            return NULL;
        p += 3;
    }
    /* RFC 9110 §4.2.1: an http(s) authority with an empty host is invalid. */
    return p == start ? NULL : p;
}

/* Skips "[" IPv6address "]" at p; NULL when it is not one. IPvFuture and
 * zone identifiers are refused: nothing behind us could route them. */
static const char *skip_ip_literal(const char *p, const char *end)
{
    const char *const close = memchr(p, ']', (size_t)(end - p));
    char text[INET6_ADDRSTRLEN];
    if (close == NULL || (size_t)(close - p - 1) >= sizeof(text))
        return NULL;
    memcpy(text, p + 1, (size_t)(close - p - 1));
    text[close - p - 1] = '\0';
    struct in6_addr addr;
    return inet_pton(AF_INET6, text, &addr) == 1 ? close + 1 : NULL;
}

/*
 * True when s is uri-host [":" port] (RFC 3986 §3.2.2-3): an IPv6 literal or
 * a non-empty reg-name (IPv4 is one), then ':' and 1-5 digits, which are
 * required when need_port. Whitespace, '/', '@' (userinfo, deprecated and to
 * be treated as an error by RFC 9110 §4.2.4) and any other byte fail.
 */
static bool is_valid_authority(struct wr_str s, bool need_port)
{
    const char *p = s.ptr;
    const char *const end = s.ptr + s.len;
    if (s.len == 0)
        return false;
    p = *p == '[' ? skip_ip_literal(p, end) : skip_reg_name(p, end);
    if (p == NULL)
        return false;
    if (p == end)
        return !need_port;
    if (*p != ':' || end - p < 2 || end - p > 6)
        return false;
    for (p++; p < end; p++) {
        if (!is_digit(*p))
            return false;
    }
    return true;
}

/* Splits s at its first '?' into req->path and req->query. */
static void split_path_query(struct wr_http_request *req, struct wr_str s)
{
    const char *const q = memchr(s.ptr, '?', s.len);
    if (q == NULL) {
        req->path = s;
        req->query = (struct wr_str){NULL, 0};
        return;
    }
    req->path = (struct wr_str){s.ptr, (size_t)(q - s.ptr)};
    req->query = (struct wr_str){q + 1, (size_t)(s.ptr + s.len - q - 1)};
}

static bool has_prefix_nocase(struct wr_str s, struct wr_str prefix)
{
    return s.len >= prefix.len && wr_str_eq_nocase((struct wr_str){s.ptr, prefix.len}, prefix);
}

/* absolute-form (RFC 9112 §3.2.2): the authority becomes req->host. */
static int parse_absolute_form(struct wr_http_request *req, struct wr_str t)
{
    size_t scheme_len;
    /* Only http and https name resources an HTTP server can serve (RFC 9110
     * §4.2); the scheme is case-insensitive (RFC 3986 §3.1). */
    if (has_prefix_nocase(t, WR_STR("http://")))
        scheme_len = 7;
    else if (has_prefix_nocase(t, WR_STR("https://")))
        scheme_len = 8;
    else
        return 400;
    const char *const auth = t.ptr + scheme_len;
    const char *const end = t.ptr + t.len;
    const char *p = auth;
    while (p < end && *p != '/' && *p != '?')
        p++;
    const struct wr_str authority = {auth, (size_t)(p - auth)};
    if (!is_valid_authority(authority, false))
        return 400;
    req->host = authority;
    req->is_absolute_form = true;
    if (p < end && *p == '/') {
        split_path_query(req, (struct wr_str){p, (size_t)(end - p)});
        return 0;
    }
    /* RFC 9110 §4.2.3: an empty path is "/" in an http(s) URI. */
    req->path = WR_STR("/");
    req->query = p < end ? (struct wr_str){p + 1, (size_t)(end - p - 1)} : (struct wr_str){NULL, 0};
    return 0;
}

/* Checks the target's form against the method and fills path, query, host. */
static int parse_target(struct wr_http_request *req)
{
    const struct wr_str t = req->target;
    if (req->method_id == WR_HTTP_CONNECT) {
        /* RFC 9112 §3.2.3: CONNECT takes authority-form, host ":" port, only. */
        if (!is_valid_authority(t, true))
            return 400;
        req->host = t;
        req->path = empty_at(t.ptr);
        return 0;
    }
    if (t.ptr[0] == '/') { /* origin-form, RFC 9112 §3.2.1 */
        split_path_query(req, t);
        return 0;
    }
    if (t.len == 1 && t.ptr[0] == '*') {
        /* RFC 9112 §3.2.4: asterisk-form is only for a server-wide OPTIONS. */
        if (req->method_id != WR_HTTP_OPTIONS)
            return 400;
        req->path = t;
        return 0;
    }
    /* Authority-form outside CONNECT and anything else: RFC 9112 §3.2. */
    return parse_absolute_form(req, t);
}

/* ---- request line ------------------------------------------------------ */

/* Parses "HTTP/1.x" CRLF at p. */
static int parse_version(const char *p, const char *end, struct wr_http_request *req)
{
    /* RFC 9112 §2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT, case-sensitive,
     * and the line ends right after it (no trailing whitespace). */
    if (end - p < 10 || memcmp(p, "HTTP/", 5) != 0 || !is_digit(p[5]) || p[6] != '.' ||
        !is_digit(p[7]) || p[8] != '\r' || p[9] != '\n')
        return 400;
    /* RFC 9110 §15.6.6: 505 for a version we do not speak; only 1.0 and 1.1
     * are accepted (no minor-version leniency: a 1.2 client is refused). */
    if (p[5] != '1' || (p[7] != '0' && p[7] != '1'))
        return 505;
    req->minor_version = p[7] - '0';
    return 0;
}

/* Parses method SP request-target SP HTTP-version CRLF at *pp and advances
 * *pp past the CRLF. */
static int parse_request_line(const char **pp, const char *end, struct wr_http_request *req)
{
    const char *p = *pp;
    const char *tok = p;
    while (p < end && (char_class[(uint8_t)*p] & C_TCHAR))
        p++;
    /* RFC 9112 §3: exactly one SP between the three parts; RFC 9110 §9.1:
     * the method is a non-empty token. */
    if (p == tok || p == end || *p != ' ')
        return 400;
    req->method = (struct wr_str){tok, (size_t)(p - tok)};
    req->method_id = wr_http_method_from(req->method);
    tok = ++p;
    /* RFC 9112 §3.2: the target is visible ASCII; a raw space, CTL, DEL or
     * non-ASCII byte is a broken client or an attempt to confuse a parser. */
    p = skip_vchars(p, end);
    if (p == tok || p == end || *p != ' ')
        return 400;
    req->target = (struct wr_str){tok, (size_t)(p - tok)};
    const int status = parse_version(p + 1, end, req);
    if (status != 0)
        return status;
    *pp = p + 11;
    return parse_target(req);
}

/* ---- fields ------------------------------------------------------------ */

/* Content-Length: 1*DIGIT, or a list of identical ones (RFC 9110 §8.6).
 * Accumulates into *len / *has_len across repeated fields. */
static int note_content_length(uint64_t *len, bool *has_len, struct wr_str v)
{
    const char *p = v.ptr;
    const char *const end = v.ptr + v.len;
    for (;;) {
        while (p < end && is_ows(*p))
            p++;
        /* RFC 9112 §6.3 ¶5: an invalid Content-Length is unrecoverable framing;
         * no sign, no inner space, no empty element. */
        if (p == end || !is_digit(*p))
            return 400;
        uint64_t n = 0;
        for (; p < end && is_digit(*p); p++) {
            const unsigned d = (unsigned)(*p - '0');
            if (n > (BODY_BYTES_MAX - d) / 10)
                return 400;
            n = n * 10 + d;
        }
        while (p < end && is_ows(*p))
            p++;
        /* RFC 9110 §8.6: repeated values are one length only when identical. */
        if (*has_len && n != *len)
            return 400;
        *len = n;
        *has_len = true;
        if (p == end)
            return 0;
        if (*p++ != ',')
            return 400;
    }
}

/* Transfer-Encoding: records each coding of the list, in order; judged by
 * finish_head() because the list may continue in a later field. */
static void note_transfer_codings(struct head_state *st, struct wr_str v)
{
    const char *p = v.ptr;
    const char *const end = v.ptr + v.len;
    st->has_te = true;
    for (;;) {
        const char *const comma = memchr(p, ',', (size_t)(end - p));
        const char *const elem_end = comma ? comma : end;
        const struct wr_str coding = wr_str_trim((struct wr_str){p, (size_t)(elem_end - p)});
        /* RFC 9112 §6.1, §7: chunked is applied once and last; a coding after
         * it (chunked again included) hides where the body ends. Empty list
         * elements are refused too: nothing legitimate sends them here. */
        if (st->te_has_chunked || coding.len == 0)
            st->is_te_bad = true;
        else if (wr_str_eq_nocase(coding, WR_STR("chunked")))
            st->te_has_chunked = true;
        else
            st->te_has_unknown = true;
        if (comma == NULL)
            return;
        p = comma + 1;
    }
}

static int note_host(struct wr_http_request *req, struct head_state *st, struct wr_str v)
{
    /* RFC 9112 §3.2: more than one Host, or an invalid one, MUST get 400. An
     * empty value is refused too: RFC 9110 §4.2.1 forbids an empty host in
     * http(s), and "no host" is spelt by leaving the field out (HTTP/1.0). */
    if (++st->n_host > 1 || !is_valid_authority(v, false))
        return 400;
    /* RFC 9112 §3.2.2: with an absolute-form (or CONNECT) target, the target
     * names the host and Host is ignored, though still validated. */
    if (!req->is_absolute_form && req->method_id != WR_HTTP_CONNECT)
        req->host = v;
    return 0;
}

/* Connection options (RFC 9110 §7.6.1), one pass over the list. */
static void note_connection(struct head_state *st, struct wr_str v)
{
    const char *p = v.ptr;
    const char *const end = v.ptr + v.len;
    for (;;) {
        const char *const comma = memchr(p, ',', (size_t)(end - p));
        const char *const elem_end = comma ? comma : end;
        const struct wr_str opt = wr_str_trim((struct wr_str){p, (size_t)(elem_end - p)});
        if (wr_str_eq_nocase(opt, WR_STR("close")))
            st->has_close = true;
        else if (wr_str_eq_nocase(opt, WR_STR("keep-alive")))
            st->has_keep_alive = true;
        else if (wr_str_eq_nocase(opt, WR_STR("upgrade")))
            st->has_conn_upgrade = true;
        if (comma == NULL)
            return;
        p = comma + 1;
    }
}

/* True when name (already known to be as long as lower) equals the
 * lower-case lower; the first byte weeds out most names without a call. */
static bool is_field(struct wr_str name, struct wr_str lower)
{
    return (name.ptr[0] | 0x20) == lower.ptr[0] && wr_str_eq_nocase(name, lower);
}

/* Applies the fields that matter to framing and connection handling. */
static int note_field(struct wr_http_request *req, struct head_state *st,
                      const struct wr_http_header *h)
{
    const struct wr_str n = h->name;
    switch (n.len) {
    case 4:
        return is_field(n, WR_STR("host")) ? note_host(req, st, h->value) : 0;
    case 6:
        /* Other expectations are left for the caller, which may answer 417
         * (RFC 9110 §10.1.1) after looking the field up. The same clause
         * says a 100-continue in an HTTP/1.0 request MUST be ignored. */
        if (is_field(n, WR_STR("expect")) && wr_str_eq_nocase(h->value, WR_STR("100-continue")))
            req->expects_continue = req->minor_version == 1;
        return 0;
    case 7:
        if (is_field(n, WR_STR("upgrade")))
            st->has_upgrade_field = true;
        return 0;
    case 10:
        if (is_field(n, WR_STR("connection")))
            note_connection(st, h->value);
        return 0;
    case 14:
        return is_field(n, WR_STR("content-length"))
                   ? note_content_length(&req->content_length, &req->has_content_length, h->value)
                   : 0;
    case 17:
        if (is_field(n, WR_STR("transfer-encoding")))
            note_transfer_codings(st, h->value);
        return 0;
    default:
        return 0;
    }
}

/* Scans one field line at *pp into *h and advances *pp past its CRLF. */
static int scan_field_line(const char **pp, const char *end, struct wr_http_header *h)
{
    const char *p = *pp;
    const char *const name = p;
    while (p < end && (char_class[(uint8_t)*p] & C_TCHAR))
        p++;
    /* RFC 9110 §5.1: the name is a non-empty token. RFC 9112 §5.1: no
     * whitespace before the colon (MUST 400). RFC 9112 §5.2: obs-fold, a
     * line starting with SP or HTAB, is refused rather than unfolded. */
    if (p == name || p == end || *p != ':')
        return 400;
    const struct wr_str name_s = {name, (size_t)(p - name)};
    for (p++; p < end && is_ows(*p); p++) {
    }
    const char *const value = p;
    p = skip_field_content(p, end);
    /* RFC 9110 §5.5: no CTL but HTAB, no NUL, no DEL in a value; the first
     * such byte must be the CR of the line's CRLF (RFC 9112 §2.2: bare CR). */
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
        return 400;
    const char *value_end = p;
    while (value_end > value && is_ows(value_end[-1]))
        value_end--;
    h->name = name_s;
    h->value = (struct wr_str){value, (size_t)(value_end - value)};
    *pp = p + 2;
    return 0;
}

static const struct wr_str known_names[WR_HTTP_N_KNOWN] = {
    [WR_HTTP_KNOWN_ACCEPT_ENCODING] = {"accept-encoding", 15},
    [WR_HTTP_KNOWN_RANGE] = {"range", 5},
    [WR_HTTP_KNOWN_IF_RANGE] = {"if-range", 8},
    [WR_HTTP_KNOWN_IF_MATCH] = {"if-match", 8},
    [WR_HTTP_KNOWN_IF_NONE_MATCH] = {"if-none-match", 13},
    [WR_HTTP_KNOWN_IF_MODIFIED_SINCE] = {"if-modified-since", 17},
    [WR_HTTP_KNOWN_IF_UNMODIFIED_SINCE] = {"if-unmodified-since", 19},
    [WR_HTTP_KNOWN_REFERER] = {"referer", 7},
    [WR_HTTP_KNOWN_USER_AGENT] = {"user-agent", 10},
    [WR_HTTP_KNOWN_UPGRADE] = {"upgrade", 7},
};

/* Notes the field at index i in req->known when its name is a known one
 * (the first of each counts): a length compare per known name, and a name
 * compare only where the length fits. */
static void index_field(struct wr_http_request *req, size_t i)
{
    const struct wr_str n = req->headers[i].name;
    for (int k = 0; k < WR_HTTP_N_KNOWN; k++) {
        if (n.len == known_names[k].len && req->known[k] == 0 && is_field(n, known_names[k])) {
            req->known[k] = (uint8_t)(i + 1);
            return;
        }
    }
}

/* Parses one field line at *pp, stores it and advances *pp past its CRLF. */
static int parse_field_line(const char **pp, const char *end, struct wr_http_request *req,
                            struct head_state *st)
{
    /* RFC 6585 §5: more fields than allowed (never more than we keep). */
    if (req->n_headers == st->max_headers)
        return 431;
    struct wr_http_header *const h = &req->headers[req->n_headers];
    const int status = scan_field_line(pp, end, h);
    if (status != 0)
        return status;
    index_field(req, req->n_headers);
    req->n_headers++;
    return note_field(req, st, h);
}

/* Parses the field lines from p up to the blank line that ends at end. */
static int parse_fields(const char *p, const char *end, struct wr_http_request *req,
                        struct head_state *st)
{
    for (;;) {
        if (end - p < 2)
            return 400; /* unreachable: the head ends with CRLF CRLF */
        if (*p == '\r') /* the blank line, or a bare CR (RFC 9112 §2.2) */
            return p[1] == '\n' && p + 2 == end ? 0 : 400;
        const int status = parse_field_line(&p, end, req, st);
        if (status != 0)
            return status;
    }
}

/* Judges what the fields said together. */
static int finish_head(struct wr_http_request *req, const struct head_state *st)
{
    /* RFC 9112 §3.2: an HTTP/1.1 request without Host MUST get 400. */
    if (req->minor_version == 1 && st->n_host == 0)
        return 400;
    if (st->has_te) {
        /* RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty
         * framing, even with Content-Length. We refuse it instead of reading a
         * body we would have to guess the end of. */
        if (req->minor_version == 0)
            return 400;
        /* RFC 9112 §6.1: TE with CL is the classic smuggling vector; a server
         * MAY reject it, and a proxy must. */
        if (req->has_content_length)
            return 400;
        /* RFC 9112 §6.3 ¶4: chunked repeated or not final, or a malformed list. */
        if (st->is_te_bad)
            return 400;
        /* RFC 9112 §6.1: a coding we do not implement ("gzip", "gzip, chunked")
         * SHOULD get 501; the connection closes after it either way, so the
         * body's framing never has to be guessed. */
        if (st->te_has_unknown)
            return 501;
        /* RFC 9112 §6.3 ¶4: no chunked at all (e.g. an empty list). */
        if (!st->te_has_chunked)
            return 400;
        req->is_chunked = true;
    }
    /* RFC 9112 §9.3: 1.1 persists unless "close"; 1.0 only with keep-alive. */
    if (req->minor_version == 1)
        req->is_keep_alive = !st->has_close;
    else
        req->is_keep_alive = st->has_keep_alive && !st->has_close;
    /* RFC 9110 §7.8: Upgrade counts only when Connection lists it, and a
     * server MUST ignore it in an HTTP/1.0 request. */
    req->is_upgrade = st->has_conn_upgrade && st->has_upgrade_field && req->minor_version == 1;
    return 0;
}

/* ---- head -------------------------------------------------------------- */

static void reset_request(struct wr_http_request *req)
{
    /* Field by field: clearing headers[] would write 3 KiB per request. */
    req->method = req->target = req->path = req->host = (struct wr_str){NULL, 0};
    req->query = (struct wr_str){NULL, 0};
    req->method_id = WR_HTTP_OTHER;
    req->minor_version = 0;
    req->content_length = 0;
    req->has_content_length = req->is_chunked = req->is_keep_alive = false;
    req->expects_continue = req->is_upgrade = req->is_absolute_form = false;
    req->is_extended_connect = false;
    req->n_headers = 0;
    memset(req->known, 0, sizeof(req->known));
    req->is_indexed = true;
    req->status = 0;
}

/* Parses the complete head p[0..end), which ends with CRLF CRLF. */
static int parse_head(const char *p, const char *end, const struct wr_http_limits *limits,
                      struct wr_http_request *req)
{
    struct head_state st = {.max_headers = limits->max_headers};
    if (st.max_headers == 0 || st.max_headers > WR_HTTP_MAX_HEADERS)
        st.max_headers = WR_HTTP_MAX_HEADERS;
    reset_request(req);
    int status = parse_request_line(&p, end, req);
    if (status == 0)
        status = parse_fields(p, end, req, &st);
    if (status == 0)
        status = finish_head(req, &st);
    return status;
}

/* Returns where the request line starts after up to LEADING_EMPTY_LINES_MAX
 * CRLFs (RFC 9112 §2.2), WR_AGAIN, or WR_ERROR with 400. */
static ssize_t skip_empty_lines(const char *buf, size_t len, struct wr_http_request *req)
{
    size_t i = 0;
    for (int n = 0;; n++) {
        if (i == len || (buf[i] == '\r' && i + 1 == len))
            return WR_AGAIN;
        if (buf[i] != '\r' && buf[i] != '\n')
            return (ssize_t)i;
        /* A bare LF or bare CR is never a line end (RFC 9112 §2.2). */
        if (buf[i] == '\n' || buf[i + 1] != '\n' || n == LEADING_EMPTY_LINES_MAX)
            return fail(req, 400);
        i += 2;
    }
}

/*
 * Scans the LFs of buf[from..stop) for the first CRLF CRLF that starts at or
 * after start (where a byte other than CR and LF sits). Returns the index
 * just past it, 0 when there is none yet, or WR_ERROR on an LF
 * without its CR: RFC 9112 §2.2 lets a recipient accept a bare LF, but a
 * proxy that does lets one request mean two things to two parsers.
 */
static ssize_t find_head_end(const char *buf, size_t start, size_t from, size_t stop)
{
    const char *p = buf + from;
    const char *const p_stop = buf + stop;
    while (p < p_stop) {
        const char *const lf = memchr(p, '\n', (size_t)(p_stop - p));
        if (lf == NULL)
            return 0;
        if (lf[-1] != '\r') /* lf > buf + start: buf[start] is no LF */
            return WR_ERROR;
        if ((size_t)(lf - buf) >= start + 3 && lf[-2] == '\n' && lf[-3] == '\r')
            return lf + 1 - buf;
        p = lf + 1;
    }
    return 0;
}

/*
 * Status for a head that reached the limit without ending, given its first
 * n bytes: 414 while still inside the request-target (RFC 9112 §3: a
 * request-target longer than the server wishes to parse gets 414), 400
 * inside the method (a method is not a target; only a limit below
 * WR_HTTP_METHOD_MAX gets here), else 431 (RFC 6585 §5).
 */
static int limit_status(const char *line, size_t n)
{
    if (memchr(line, '\n', n) != NULL)
        return 431;
    const char *const sp = memchr(line, ' ', n);
    if (sp == NULL)
        return 400;
    const size_t rest = n - (size_t)(sp + 1 - line);
    return memchr(sp + 1, ' ', rest) == NULL ? 414 : 431;
}

/* True when p[0..n) starts "HTTP/" DIGIT "." DIGIT CRLF, as far as it goes
 * (RFC 9112 §2.3); '0' in the pattern stands for any digit. Which version
 * the digits name is parse_version's business (505). */
static bool is_version_prefix(const char *p, size_t n)
{
    static const char pattern[] = "HTTP/0.0\r\n";
    for (size_t i = 0; i < n && i < sizeof(pattern) - 1; i++) {
        if (pattern[i] == '0' ? !is_digit(p[i]) : p[i] != pattern[i])
            return false;
    }
    return true;
}

/*
 * Checks the request line in line[0..n) as far as it has arrived, so that a
 * byte that can never be part of a valid request is refused when it arrives
 * rather than when the head completes: a client sending a NUL or a TLS
 * ClientHello to a plain port would otherwise hold the connection until
 * header_timeout. Returns 0 (valid so far) or 400; the verdict for a prefix
 * is 0 or the verdict for the whole, so pieces never change the outcome.
 *
 * The bytes before seen passed this check in an earlier call. The method is
 * at most WR_HTTP_METHOD_MAX bytes and the version ten, so only the target
 * needs to resume: bytes before seen are not scanned again (memchr finds
 * whether the target already ended among them).
 */
static int check_line_prefix(const char *line, size_t n, size_t seen)
{
    size_t i = 0;
    const size_t method_stop = n < WR_HTTP_METHOD_MAX + 1 ? n : WR_HTTP_METHOD_MAX + 1;
    while (i < method_stop && (char_class[(uint8_t)line[i]] & C_TCHAR))
        i++;
    if (i > WR_HTTP_METHOD_MAX)
        return 400;
    if (i == n)
        return 0;
    /* RFC 9110 §9.1: the method is a non-empty token; RFC 9112 §3: one SP. */
    if (i == 0 || line[i] != ' ')
        return 400;
    const char *const target = line + i + 1;
    const char *const end = line + n;
    const char *p = target;
    if (seen > i + 1 && seen <= n) {
        const char *const sp = memchr(target, ' ', seen - (i + 1));
        if (sp != NULL)
            return is_version_prefix(sp + 1, (size_t)(end - sp - 1)) ? 0 : 400;
        p = line + seen;
    }
    /* RFC 9112 §3.2: the target is a non-empty run of visible ASCII. */
    p = skip_vchars(p, end);
    if (p == end)
        return 0;
    if (p == target || *p != ' ')
        return 400;
    return is_version_prefix(p + 1, (size_t)(end - p - 1)) ? 0 : 400;
}

ssize_t wr_http_parse_request(const char *buf, size_t len, size_t prev_len,
                              const struct wr_http_limits *limits, struct wr_http_request *req)
{
    req->status = 0;
    const ssize_t line_start = skip_empty_lines(buf, len, req);
    if (line_start < 0)
        return line_start;
    const size_t start = (size_t)line_start;
    /* Only the first max_head_bytes after the empty lines are ever looked at,
     * so the outcome depends on a prefix of the input, never on its pieces. */
    const size_t avail = len - start;
    const size_t max = limits->max_head_bytes;
    const size_t stop = start + (avail < max ? avail : max);
    const size_t seen = prev_len > start && prev_len <= stop ? prev_len - start : 0;
    if (check_line_prefix(buf + start, stop - start, seen) != 0)
        return fail(req, 400);
    /* Resume a little before the old end, so a CRLF CRLF split by the last
     * read is still found; LFs before it were already checked. A prev_len
     * past len cannot be true, so it buys a rescan rather than a stall. */
    size_t from = prev_len > 3 && prev_len <= len ? prev_len - 3 : 0;
    from = from < start ? start : from > stop ? stop : from;
    const ssize_t end = find_head_end(buf, start, from, stop);
    if (end < 0)
        return fail(req, 400);
    if (end == 0) {
        if (avail < max)
            return WR_AGAIN;
        return fail(req, limit_status(buf + start, stop - start));
    }
    const int status = parse_head(buf + start, buf + end, limits, req);
    return status == 0 ? end : fail(req, status);
}

static const struct wr_http_header *find_field(const struct wr_http_header *fields, size_t n,
                                              struct wr_str name)
{
    for (size_t i = 0; i < n; i++) {
        if (wr_str_eq_nocase(fields[i].name, name))
            return &fields[i];
    }
    return NULL;
}

const struct wr_http_header *wr_http_find_header(const struct wr_http_request *req,
                                                 struct wr_str name)
{
    return find_field(req->headers, req->n_headers, name);
}

void wr_http_index_fields(struct wr_http_request *req)
{
    memset(req->known, 0, sizeof(req->known));
    for (size_t i = 0; i < req->n_headers; i++)
        index_field(req, i);
    req->is_indexed = true;
}

struct wr_str wr_http_known_value(const struct wr_http_request *req, enum wr_http_known k)
{
    const struct wr_http_header *h;
    if (req->is_indexed)
        h = req->known[k] ? &req->headers[req->known[k] - 1] : NULL;
    else
        h = find_field(req->headers, req->n_headers, known_names[k]);
    return h ? h->value : (struct wr_str){NULL, 0};
}

/* ---- chunked ----------------------------------------------------------- */

/* Decoder states; a size line is "size [ext] CRLF" (RFC 9112 §7.1.1):
 * chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ) */
enum chunk_state {
    CS_SIZE_START = 0,  /* first hex digit of a chunk-size */
    CS_SIZE,            /* more digits, or what may follow a size */
    CS_EXT_BWS,         /* whitespace after a size or value: ';' must follow */
    CS_EXT_NAME_START,  /* after ';' */
    CS_EXT_NAME,        /* inside an extension name */
    CS_EXT_NAME_BWS,    /* whitespace after a name: '=' or ';' must follow */
    CS_EXT_VALUE_START, /* after '=' */
    CS_EXT_TOKEN,       /* inside a token value */
    CS_EXT_QUOTED,      /* inside a quoted-string value */
    CS_EXT_QUOTED_PAIR, /* after '\' in a quoted-string */
    CS_EXT_AFTER_VALUE, /* after the closing '"' */
    CS_SIZE_LF,         /* after the CR of a size line */
    CS_DATA,            /* chunk_left data bytes to hand out */
    CS_DATA_CR,         /* the CRLF after chunk data */
    CS_DATA_LF,
    CS_TRAILER_START, /* start of a trailer line or of the final CRLF */
    CS_TRAILER_NAME,
    CS_TRAILER_VALUE,
    CS_TRAILER_LF,
    CS_FINAL_LF,
    CS_DONE,
    CS_ERROR
};

void wr_http_chunked_init(struct wr_http_chunked *c)
{
    *c = (struct wr_http_chunked){.state = CS_SIZE_START};
}

static unsigned hex_value(uint8_t ch)
{
    return ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10;
}

static enum chunk_state add_hex_digit(struct wr_http_chunked *c, uint8_t ch)
{
    /* Sizes past 2^63-1 or past 16 digits (leading zeros included) are
     * refused before they can wrap anything downstream. line_bytes counts
     * this digit and the ones before it. */
    if (c->line_bytes > 16 || c->chunk_left > (UINT64_MAX >> 5))
        return CS_ERROR;
    c->chunk_left = c->chunk_left << 4 | hex_value(ch);
    return CS_SIZE;
}

/* Next state after byte ch of a chunk-size line in state s. */
static enum chunk_state step_size_line(struct wr_http_chunked *c, enum chunk_state s, uint8_t ch)
{
    const uint8_t cls = char_class[ch];
    const bool ws = ch == ' ' || ch == '\t';
    switch (s) {
    case CS_SIZE_START: /* RFC 9112 §7.1: chunk-size = 1*HEXDIG */
        return (cls & C_HEX) ? add_hex_digit(c, ch) : CS_ERROR;
    case CS_SIZE:
        if (cls & C_HEX)
            return add_hex_digit(c, ch);
        break;
    case CS_EXT_BWS:
        return ws ? s : ch == ';' ? CS_EXT_NAME_START : CS_ERROR;
    case CS_EXT_NAME_START:
        return ws ? s : (cls & C_TCHAR) ? CS_EXT_NAME : CS_ERROR;
    case CS_EXT_NAME:
        if (cls & C_TCHAR)
            return s;
        if (ws)
            return CS_EXT_NAME_BWS;
        if (ch == '=')
            return CS_EXT_VALUE_START;
        break;
    case CS_EXT_NAME_BWS:
        return ws ? s : ch == '=' ? CS_EXT_VALUE_START : ch == ';' ? CS_EXT_NAME_START : CS_ERROR;
    case CS_EXT_VALUE_START:
        return ws ? s : ch == '"' ? CS_EXT_QUOTED : (cls & C_TCHAR) ? CS_EXT_TOKEN : CS_ERROR;
    case CS_EXT_TOKEN:
        if (cls & C_TCHAR)
            return s;
        break;
    case CS_EXT_QUOTED: /* RFC 9110 §5.6.4 */
        if (ch == '"')
            return CS_EXT_AFTER_VALUE;
        return ch == '\\' ? CS_EXT_QUOTED_PAIR : (cls & C_QDTEXT) ? s : CS_ERROR;
    case CS_EXT_QUOTED_PAIR: /* "\" ( HTAB / SP / VCHAR / obs-text ) */
        return (cls & C_FIELD) ? CS_EXT_QUOTED : CS_ERROR;
    default: /* CS_EXT_AFTER_VALUE */
        break;
    }
    /* After a size, a name or a value: another extension, BWS, or the end. */
    if (ch == ';')
        return CS_EXT_NAME_START;
    if (ws)
        return CS_EXT_BWS;
    return ch == '\r' ? CS_SIZE_LF : CS_ERROR;
}

/* Next state after byte ch of the trailer section in state s. Trailer fields
 * are checked like head fields and dropped: nothing here forwards them. */
static enum chunk_state step_trailer(struct wr_http_chunked *c, enum chunk_state s, uint8_t ch)
{
    /* Bounded, or a peer could stream trailer bytes forever. */
    if (++c->trailer_bytes > WR_HTTP_TRAILER_MAX || ++c->line_bytes > WR_HTTP_CHUNK_LINE_MAX)
        return CS_ERROR;
    const uint8_t cls = char_class[ch];
    switch (s) {
    case CS_TRAILER_START:
        if (ch == '\r')
            return CS_FINAL_LF;
        /* A name is a token; a leading SP/HTAB would be obs-fold (RFC 9112 §5.2). */
        return (cls & C_TCHAR) ? CS_TRAILER_NAME : CS_ERROR;
    case CS_TRAILER_NAME: /* no whitespace before ':' (RFC 9112 §5.1) */
        return (cls & C_TCHAR) ? s : ch == ':' ? CS_TRAILER_VALUE : CS_ERROR;
    case CS_TRAILER_VALUE: /* no CTL but HTAB, no DEL (RFC 9110 §5.5) */
        return (cls & C_FIELD) ? s : ch == '\r' ? CS_TRAILER_LF : CS_ERROR;
    case CS_TRAILER_LF:
        c->line_bytes = 0;
        return ch == '\n' ? CS_TRAILER_START : CS_ERROR;
    default: /* CS_FINAL_LF */
        return ch == '\n' ? CS_DONE : CS_ERROR;
    }
}

/* Next state after one framing byte (anything but chunk data). Every line
 * ends in CRLF: a bare CR or LF is an error (RFC 9112 §2.2, §7.1). */
static enum chunk_state step_framing(struct wr_http_chunked *c, uint8_t ch)
{
    const enum chunk_state s = (enum chunk_state)c->state;
    switch (s) {
    case CS_SIZE_LF:
        if (ch != '\n')
            return CS_ERROR;
        c->line_bytes = 0;
        return c->chunk_left > 0 ? CS_DATA : CS_TRAILER_START;
    case CS_DATA_CR:
        return ch == '\r' ? CS_DATA_LF : CS_ERROR;
    case CS_DATA_LF:
        return ch == '\n' ? CS_SIZE_START : CS_ERROR;
    case CS_TRAILER_START:
    case CS_TRAILER_NAME:
    case CS_TRAILER_VALUE:
    case CS_TRAILER_LF:
    case CS_FINAL_LF:
        return step_trailer(c, s, ch);
    default:
        /* Bounded, or extensions could stream forever between two chunks. */
        if (++c->line_bytes > WR_HTTP_CHUNK_LINE_MAX)
            return CS_ERROR;
        return step_size_line(c, s, ch);
    }
}

ssize_t wr_http_chunked_parse(struct wr_http_chunked *c, const char *buf, size_t len,
                              struct wr_str *data)
{
    *data = (struct wr_str){NULL, 0};
    if (c->state == CS_ERROR)
        return WR_ERROR;
    if (len == 0 || c->is_done)
        return WR_AGAIN;
    size_t i = 0;
    while (i < len) {
        if (c->state == CS_DATA) {
            /* Hand out one run of data, in place; framing resumes next call. */
            const size_t run = c->chunk_left < len - i ? (size_t)c->chunk_left : len - i;
            *data = (struct wr_str){buf + i, run};
            c->chunk_left -= run;
            if (c->chunk_left == 0)
                c->state = CS_DATA_CR;
            return (ssize_t)(i + run);
        }
        const enum chunk_state next = step_framing(c, (uint8_t)buf[i++]);
        c->state = next;
        if (next == CS_ERROR) {
            c->status = 400;
            return WR_ERROR;
        }
        if (next == CS_DONE) {
            c->is_done = true;
            return (ssize_t)i;
        }
    }
    return (ssize_t)i;
}

/* ---- responses (from upstream servers) ---------------------------------- */

/* Parses "HTTP/1.x SP 3DIGIT SP [reason] CRLF" at *pp (RFC 9112 §4). */
static int parse_status_line(const char **pp, const char *end, struct wr_http_response *resp)
{
    const char *p = *pp;
    if (end - p < 14 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
        p[8] != ' ' || !is_digit(p[9]) || !is_digit(p[10]) || !is_digit(p[11]) || p[12] != ' ')
        return -1;
    resp->minor_version = p[7] - '0';
    resp->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (resp->status < 100)
        return -1;
    p += 13;
    const char *const reason = p;
    /* reason-phrase = *( HTAB / SP / VCHAR / obs-text ): field content. */
    p = skip_field_content(p, end);
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
        return -1;
    resp->reason = (struct wr_str){reason, (size_t)(p - reason)};
    *pp = p + 2;
    return 0;
}

/* The fields of a response that decide its framing and the connection. */
static int note_response_field(struct wr_http_response *resp, struct head_state *st,
                               const struct wr_http_header *h)
{
    const struct wr_str n = h->name;
    if (n.len == 10 && is_field(n, WR_STR("connection")))
        note_connection(st, h->value);
    else if (n.len == 14 && is_field(n, WR_STR("content-length")))
        return note_content_length(&resp->content_length, &resp->has_content_length, h->value);
    else if (n.len == 17 && is_field(n, WR_STR("transfer-encoding")))
        note_transfer_codings(st, h->value);
    return 0;
}

static int parse_response_fields(const char *p, const char *end, struct wr_http_response *resp,
                                 struct head_state *st)
{
    for (;;) {
        if (end - p < 2)
            return -1;
        if (*p == '\r')
            return p[1] == '\n' && p + 2 == end ? 0 : -1;
        if (resp->n_headers == WR_HTTP_MAX_HEADERS)
            return -1;
        struct wr_http_header *const h = &resp->headers[resp->n_headers];
        if (scan_field_line(&p, end, h) != 0)
            return -1;
        resp->n_headers++;
        if (note_response_field(resp, st, h) != 0)
            return -1;
    }
}

/* Judges the framing fields together (RFC 9112 §6.3), strictly: whatever a
 * server sends ambiguously is refused, never guessed. */
static int finish_response(struct wr_http_response *resp, const struct head_state *st)
{
    if (st->has_te) {
        /* A 1.0 response with TE, TE beside CL, chunked not last or
         * repeated, or a coding we cannot undo: all refused (502). */
        if (resp->minor_version == 0 || resp->has_content_length || st->is_te_bad ||
            st->te_has_unknown || !st->te_has_chunked)
            return -1;
        resp->is_chunked = true;
    }
    if (resp->minor_version == 1)
        resp->is_keep_alive = !st->has_close;
    else
        resp->is_keep_alive = st->has_keep_alive && !st->has_close;
    resp->has_conn_upgrade = st->has_conn_upgrade && st->has_upgrade_field;
    return 0;
}

static void note_upgrade_field(struct head_state *st, const struct wr_http_response *resp)
{
    for (size_t i = 0; i < resp->n_headers; i++) {
        if (resp->headers[i].name.len == 7 && is_field(resp->headers[i].name, WR_STR("upgrade")))
            st->has_upgrade_field = true;
    }
}

ssize_t wr_http_parse_response(const char *buf, size_t len, size_t prev_len,
                               const struct wr_http_limits *limits,
                               struct wr_http_response *resp)
{
    const size_t max = limits->max_head_bytes;
    const size_t stop = len < max ? len : max;
    size_t from = prev_len > 3 && prev_len <= len ? prev_len - 3 : 0;
    from = from > stop ? stop : from;
    if (len > 0 && (buf[0] == '\r' || buf[0] == '\n'))
        return WR_ERROR; /* no empty lines before a status line */
    const ssize_t end = find_head_end(buf, 0, from, stop);
    if (end < 0)
        return WR_ERROR;
    if (end == 0)
        return len < max ? WR_AGAIN : WR_ERROR;
    struct head_state st = {0};
    resp->status = resp->minor_version = 0;
    resp->reason = (struct wr_str){NULL, 0};
    resp->content_length = 0;
    resp->has_content_length = resp->is_chunked = resp->is_keep_alive = false;
    resp->has_conn_upgrade = false;
    resp->n_headers = 0;
    const char *p = buf;
    if (parse_status_line(&p, buf + end, resp) != 0 ||
        parse_response_fields(p, buf + end, resp, &st) != 0)
        return WR_ERROR;
    note_upgrade_field(&st, resp);
    return finish_response(resp, &st) == 0 ? end : WR_ERROR;
}

const struct wr_http_header *wr_http_find_response_header(const struct wr_http_response *resp,
                                                          struct wr_str name)
{
    return find_field(resp->headers, resp->n_headers, name);
}
