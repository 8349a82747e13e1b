/*
 * cache_policy: the rules of a shared HTTP cache (RFC 9111, RFC 5861,
 * RFC 9211) as pure functions over field values and Unix seconds.
 *
 * Not here: the store (entries, eviction, coalescing), the clock, the
 * config, and anything that reads or writes a socket. Everything here is
 * callable from any thread and allocates nothing.
 *
 * Invariants: every delta-seconds value and every age sum is capped at
 * WR_CACHE_DELTA_MAX (RFC 9111 §1.2.2), so the uint32_t fields never wrap
 * and int64_t arithmetic on them never overflows. Field values are slices
 * that are read, never kept.
 */
#include "weir/cache_policy.h"

#include "weir/http_cond.h"

/* ---- Cache-Control (RFC 9111 §5.2, RFC 9110 §5.6) ---------------------- */

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* tchar of RFC 9110 §5.6.2. */
static bool is_tchar(char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Which number a directive carries. */
enum cc_num { NUM_NONE, NUM_MAX_AGE, NUM_S_MAXAGE, NUM_MAX_STALE, NUM_MIN_FRESH, NUM_SWR, NUM_SIE };

struct cc_directive {
    const char *name;
    uint32_t flag;
    enum cc_num num;
    bool is_restrictive; /* still applied when its list element is malformed:
                            ignoring a damaged no-store would store what the
                            origin forbade; a damaged public widens nothing */
};

/* Canonical order of wr_cache_cc_format. */
static const struct cc_directive directives[] = {
    {"no-store", WR_CC_NO_STORE, NUM_NONE, true},
    {"no-cache", WR_CC_NO_CACHE, NUM_NONE, true},
    {"private", WR_CC_PRIVATE, NUM_NONE, true},
    {"public", WR_CC_PUBLIC, NUM_NONE, false},
    {"must-revalidate", WR_CC_MUST_REVALIDATE, NUM_NONE, true},
    {"proxy-revalidate", WR_CC_PROXY_REVALIDATE, NUM_NONE, true},
    {"no-transform", WR_CC_NO_TRANSFORM, NUM_NONE, true},
    {"immutable", WR_CC_IMMUTABLE, NUM_NONE, false},
    {"must-understand", WR_CC_MUST_UNDERSTAND, NUM_NONE, false},
    {"only-if-cached", WR_CC_ONLY_IF_CACHED, NUM_NONE, false},
    {"max-age", WR_CC_MAX_AGE, NUM_MAX_AGE, true},
    {"s-maxage", WR_CC_S_MAXAGE, NUM_S_MAXAGE, true},
    {"max-stale", WR_CC_MAX_STALE, NUM_MAX_STALE, false},
    {"min-fresh", WR_CC_MIN_FRESH, NUM_MIN_FRESH, false},
    {"stale-while-revalidate", WR_CC_SWR, NUM_SWR, false},
    {"stale-if-error", WR_CC_SIE, NUM_SIE, false},
};
#define N_DIRECTIVES (sizeof(directives) / sizeof(directives[0]))

static uint32_t *cc_num_slot(struct wr_cache_cc *cc, enum cc_num num)
{
    switch (num) {
    case NUM_MAX_AGE:
        return &cc->max_age;
    case NUM_S_MAXAGE:
        return &cc->s_maxage;
    case NUM_MAX_STALE:
        return &cc->max_stale;
    case NUM_MIN_FRESH:
        return &cc->min_fresh;
    case NUM_SWR:
        return &cc->stale_while_revalidate;
    case NUM_SIE:
        return &cc->stale_if_error;
    default:
        return NULL;
    }
}

/* delta-seconds (RFC 9111 §1.2.2): 1*DIGIT, capped at 2^31. */
static bool parse_delta(struct wr_str s, uint32_t *out)
{
    if (s.len == 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s.ptr[i] - '0');
        if (v > WR_CACHE_DELTA_MAX)
            v = WR_CACHE_DELTA_MAX; /* stays small: no overflow however long */
    }
    *out = (uint32_t)v;
    return true;
}

void wr_cache_cc_init(struct wr_cache_cc *cc)
{
    memset(cc, 0, sizeof(*cc));
}

/* One list element as parsed: name, argument and whether it was well formed. */
struct cc_elem {
    struct wr_str name;
    struct wr_str arg;  /* quotes removed; ptr NULL when there is none */
    bool has_arg;
    bool is_arg_escaped;/* a quoted-string with a quoted-pair: never a number */
    bool is_malformed;  /* anything but token [ "=" ( token / quoted-string ) ] */
};

/* Applies a directive without a usable value: a flag; max-stale alone
 * ("any staleness"); or max-age / s-maxage with a bad value, which count as
 * 0 because invalid freshness information means stale (§4.2.1). */
static void apply_bare(struct wr_cache_cc *cc, const struct cc_directive *d)
{
    if (d->num == NUM_NONE) {
        cc->flags |= d->flag;
    } else if (d->num == NUM_MAX_STALE) {
        if (!(cc->flags & WR_CC_MAX_STALE)) /* first occurrence wins */
            cc->flags |= WR_CC_MAX_STALE_ANY;
    } else if (!(cc->flags & d->flag)) {
        cc->flags |= d->flag;
        *cc_num_slot(cc, d->num) = 0;
    }
}

static void apply_elem(struct wr_cache_cc *cc, const struct cc_elem *e)
{
    const struct cc_directive *d = NULL;
    for (size_t i = 0; i < N_DIRECTIVES && !d; i++) {
        if (wr_str_eq_nocase(e->name, wr_str_from_cstr(directives[i].name)))
            d = &directives[i];
    }
    if (!d || (e->is_malformed && !d->is_restrictive))
        return; /* §5.2.3: unknown extensions are ignored */
    if (d->num == NUM_NONE || (d->num == NUM_MAX_STALE && !e->has_arg)) {
        apply_bare(cc, d); /* an argument on a flag changes nothing */
        return;
    }
    uint32_t v = 0;
    bool ok = !e->is_malformed && e->has_arg && !e->is_arg_escaped && parse_delta(e->arg, &v);
    if (!ok) {
        /* max-age, s-maxage: 0 (stale); the others are ignored, so an
         * unreadable max-stale=x never becomes "any staleness". */
        if (d->num == NUM_MAX_AGE || d->num == NUM_S_MAXAGE)
            apply_bare(cc, d);
        return;
    }
    if ((cc->flags & d->flag) || (d->num == NUM_MAX_STALE && (cc->flags & WR_CC_MAX_STALE_ANY)))
        return; /* §4.2.1: the first occurrence is used */
    cc->flags |= d->flag;
    *cc_num_slot(cc, d->num) = v;
}

/* Skips to the comma that ends the element at i (quote-aware); returns its
 * index or s.len. */
static size_t skip_elem(struct wr_str s, size_t i)
{
    bool in_quote = false;
    for (; i < s.len; i++) {
        char c = s.ptr[i];
        if (in_quote && c == '\\')
            i++;
        else if (c == '"')
            in_quote = !in_quote;
        else if (c == ',' && !in_quote)
            return i;
    }
    return s.len;
}

/* A quoted-string at s[*i] == '"' (RFC 9110 §5.6.4): *i past the closing
 * quote. False when it does not close or holds a control byte. */
static bool take_quoted(struct wr_str s, size_t *i, struct cc_elem *e)
{
    size_t start = ++*i;
    for (; *i < s.len; (*i)++) {
        unsigned char c = (unsigned char)s.ptr[*i];
        if (c == '"') {
            e->arg = (struct wr_str){s.ptr + start, *i - start};
            (*i)++;
            return true;
        }
        if (c == '\\') {
            e->is_arg_escaped = true;
            (*i)++;
            if (*i < s.len && (unsigned char)s.ptr[*i] < 0x20 && s.ptr[*i] != '\t')
                return false;
        } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
            return false;
        }
    }
    return false;
}

/* Parses the element starting at s[*i] (OWS already skipped); leaves *i at
 * the comma that ends it or at s.len. */
static void take_elem(struct wr_str s, size_t *i, struct cc_elem *e)
{
    size_t start = *i;
    while (*i < s.len && is_tchar(s.ptr[*i]))
        (*i)++;
    e->name = (struct wr_str){s.ptr + start, *i - start};
    if (*i < s.len && s.ptr[*i] == '=') {
        e->has_arg = true;
        (*i)++;
        if (*i < s.len && s.ptr[*i] == '"') {
            if (!take_quoted(s, i, e))
                e->is_malformed = true;
        } else {
            size_t a = *i;
            while (*i < s.len && is_tchar(s.ptr[*i]))
                (*i)++;
            e->arg = (struct wr_str){s.ptr + a, *i - a};
            if (e->arg.len == 0)
                e->is_malformed = true;
        }
    }
    while (*i < s.len && is_ows(s.ptr[*i]))
        (*i)++;
    if (*i < s.len && s.ptr[*i] != ',')
        e->is_malformed = true;
    if (e->is_malformed)
        *i = skip_elem(s, *i);
}

void wr_cache_cc_parse(struct wr_cache_cc *cc, struct wr_str value)
{
    size_t i = 0;
    while (i < value.len) {
        while (i < value.len && (is_ows(value.ptr[i]) || value.ptr[i] == ','))
            i++; /* RFC 9110 §5.6.1: empty elements are allowed and ignored */
        if (i >= value.len)
            break;
        struct cc_elem e = {0};
        take_elem(value, &i, &e);
        if (e.name.len > 0)
            apply_elem(cc, &e);
    }
}

/* An appender that fails softly: once a write does not fit, ok is false. */
struct out_buf {
    char *out;
    size_t cap, len;
    bool ok;
};

static void put(struct out_buf *b, const char *s, size_t n)
{
    if (n == 0)
        return; /* an empty slice may have a NULL ptr: no memcpy with it */
    if (!b->ok || n > b->cap - b->len) {
        b->ok = false;
        return;
    }
    memcpy(b->out + b->len, s, n);
    b->len += n;
}

static void put_cstr(struct out_buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void put_i64(struct out_buf *b, int64_t v)
{
    char digits[WR_STR_U64_MAX + 1];
    size_t n = 0;
    uint64_t u = (uint64_t)v;
    if (v < 0) {
        digits[n++] = '-';
        u = 0 - u; /* two's complement magnitude, safe for INT64_MIN */
    }
    n += wr_str_format_u64(u, digits + n);
    put(b, digits, n);
}

size_t wr_cache_cc_format(const struct wr_cache_cc *cc, char *out, size_t cap)
{
    struct out_buf b = {out, cap, 0, true};
    struct wr_cache_cc copy = *cc; /* cc_num_slot wants a writable struct */
    for (size_t i = 0; i < N_DIRECTIVES; i++) {
        const struct cc_directive *d = &directives[i];
        bool is_any = d->num == NUM_MAX_STALE && (cc->flags & WR_CC_MAX_STALE_ANY);
        if (!(cc->flags & d->flag) && !is_any)
            continue;
        if (b.len > 0)
            put(&b, ", ", 2);
        put_cstr(&b, d->name);
        if (d->num != NUM_NONE && !is_any) {
            put(&b, "=", 1);
            put_i64(&b, *cc_num_slot(&copy, d->num));
        }
    }
    return b.ok ? b.len : 0;
}

/* ---- Requests and responses -------------------------------------------- */

static bool name_is(struct wr_str name, const char *lit)
{
    return wr_str_eq_nocase(name, wr_str_from_cstr(lit));
}

void wr_cache_req_scan(struct wr_cache_req *r, enum wr_http_method method,
                       const struct wr_http_header *headers, size_t n)
{
    memset(r, 0, sizeof(*r));
    r->method = method;
    bool has_cc = false, has_pragma_no_cache = false;
    for (size_t i = 0; i < n; i++) {
        struct wr_str name = headers[i].name;
        if (name_is(name, "cache-control")) {
            has_cc = true;
            wr_cache_cc_parse(&r->cc, headers[i].value);
        } else if (name_is(name, "authorization")) {
            r->has_authorization = true;
        } else if (name_is(name, "pragma") &&
                   wr_str_list_has_token(headers[i].value, WR_STR("no-cache"))) {
            has_pragma_no_cache = true;
        }
    }
    /* RFC 9111 §5.4: Pragma counts only when Cache-Control is absent. */
    if (!has_cc && has_pragma_no_cache)
        r->cc.flags |= WR_CC_NO_CACHE;
}

/* The first line of a date field wins (§4.2.1); *is_invalid when it does
 * not parse. */
static void scan_date(struct wr_str value, bool *has, bool *is_invalid, int64_t *out)
{
    if (*has)
        return;
    *has = true;
    *is_invalid = !wr_http_cond_parse_date(value, out);
}

/* Which single-valued fields were seen: only their first line counts. */
struct resp_seen {
    bool has_date, is_date_invalid;
    bool has_last_modified, is_lm_invalid;
    bool has_age;
};

static void scan_resp_field(struct wr_cache_resp *r, const struct wr_http_header *h,
                            struct resp_seen *seen)
{
    struct wr_str name = h->name, value = h->value;
    if (name_is(name, "cache-control")) {
        wr_cache_cc_parse(&r->cc, value);
    } else if (name_is(name, "date")) {
        scan_date(value, &seen->has_date, &seen->is_date_invalid, &r->date);
    } else if (name_is(name, "expires")) {
        scan_date(value, &r->has_expires, &r->is_expires_invalid, &r->expires);
    } else if (name_is(name, "last-modified")) {
        scan_date(value, &seen->has_last_modified, &seen->is_lm_invalid, &r->last_modified);
        /* A bad date is nothing to reason on, but its bytes still make an
         * If-Modified-Since the origin may recognise. */
        r->has_last_modified = seen->has_last_modified && !seen->is_lm_invalid;
        r->has_validator = true;
    } else if (name_is(name, "age")) {
        /* §5.1: an invalid Age is ignored. */
        if (!seen->has_age) {
            seen->has_age = true;
            if (!parse_delta(wr_str_trim(value), &r->age))
                r->age = 0;
        }
    } else if (name_is(name, "set-cookie")) {
        r->has_set_cookie = true;
    } else if (name_is(name, "vary")) {
        r->has_vary = true;
        if (wr_str_list_has_token(value, WR_STR("*")))
            r->is_vary_star = true;
    } else if (name_is(name, "etag")) {
        r->has_validator = true;
    }
}

void wr_cache_resp_scan(struct wr_cache_resp *r, int status, const struct wr_http_header *headers,
                        size_t n, int64_t response_time)
{
    memset(r, 0, sizeof(*r));
    r->status = status;
    struct resp_seen seen = {0};
    for (size_t i = 0; i < n; i++)
        scan_resp_field(r, &headers[i], &seen);
    /* RFC 9110 §6.6.1: a cache adds a Date it lacks, from its own clock. */
    if (!seen.has_date || seen.is_date_invalid)
        r->date = response_time;
}

/* ---- Storability (RFC 9111 §3) ------------------------------------------ */

static const char *const reason_names[WR_CACHE_N_REASONS] = {
    [WR_CACHE_OK] = "stored",
    [WR_CACHE_NO_METHOD] = "method",
    [WR_CACHE_NO_STATUS] = "status",
    [WR_CACHE_NO_STORE_REQUEST] = "request-no-store",
    [WR_CACHE_NO_STORE] = "no-store",
    [WR_CACHE_NO_PRIVATE] = "private",
    [WR_CACHE_NO_AUTHORIZATION] = "authorization",
    [WR_CACHE_NO_SET_COOKIE] = "set-cookie",
    [WR_CACHE_NO_VARY_STAR] = "vary-star",
    [WR_CACHE_NO_FRESHNESS] = "no-freshness",
};

const char *wr_cache_reason_name(enum wr_cache_reason r)
{
    return (unsigned)r < WR_CACHE_N_REASONS ? reason_names[r] : "";
}

bool wr_cache_status_heuristic(int status)
{
    switch (status) {
    case 200: case 203: case 204: case 206: case 300: case 301: case 308:
    case 404: case 405: case 410: case 414: case 501:
        return true;
    default:
        return false;
    }
}

/* Final statuses whose semantics weir knows well enough to store a response
 * with them (§3: "understood"). 206 is left out (weir stores whole
 * representations and answers ranges from them), 304 too (it updates an
 * entry, §4.3.4, and is never one), and so is every 1xx. */
static bool status_understood(int status)
{
    if ((status >= 200 && status <= 205) || (status >= 300 && status <= 303) ||
        status == 307 || status == 308)
        return true;
    if ((status >= 400 && status <= 417) || status == 421 || status == 422 || status == 426 ||
        status == 429 || status == 451)
        return true;
    return (status >= 500 && status <= 505) || status == 511;
}

static uint32_t methods_mask(const struct wr_cache_opts *opts)
{
    if (opts && opts->methods_mask)
        return opts->methods_mask;
    return (1u << WR_HTTP_GET) | (1u << WR_HTTP_HEAD);
}

/* The operator's fallback lifetime for status, or false. */
static bool fallback_for(const struct wr_cache_opts *opts, int status, uint32_t *seconds)
{
    for (size_t i = 0; opts && i < opts->n_valid; i++) {
        if (opts->valid[i].status == status || opts->valid[i].status == 0) {
            *seconds = opts->valid[i].seconds;
            return true;
        }
    }
    return false;
}

/* §3's last condition: something says how long the response stays fresh,
 * or the status lets a heuristic say it, or the operator does. */
static bool has_freshness_source(const struct wr_cache_resp *resp,
                                 const struct wr_cache_opts *opts)
{
    uint32_t ignored;
    const uint32_t explicit = WR_CC_PUBLIC | WR_CC_MAX_AGE | WR_CC_S_MAXAGE;
    return (resp->cc.flags & explicit) || resp->has_expires ||
           wr_cache_status_heuristic(resp->status) || fallback_for(opts, resp->status, &ignored);
}

enum wr_cache_reason wr_cache_storable(const struct wr_cache_req *req,
                                       const struct wr_cache_resp *resp,
                                       const struct wr_cache_opts *opts)
{
    const uint32_t rf = resp->cc.flags;
    if ((unsigned)req->method >= 32 || !(methods_mask(opts) & (1u << req->method)))
        return WR_CACHE_NO_METHOD;
    if (!status_understood(resp->status))
        return WR_CACHE_NO_STATUS;
    if (req->cc.flags & WR_CC_NO_STORE)
        return WR_CACHE_NO_STORE_REQUEST;
    /* §5.2.2.3: must-understand with an understood status overrides
     * no-store (it is there for caches that do not know the status). */
    if ((rf & WR_CC_NO_STORE) && !(rf & WR_CC_MUST_UNDERSTAND))
        return WR_CACHE_NO_STORE;
    if (rf & WR_CC_PRIVATE)
        return WR_CACHE_NO_PRIVATE;
    /* §3.5: a shared cache stores an answer to an authenticated request
     * only when the origin said every user may see it. */
    if (req->has_authorization &&
        !(rf & (WR_CC_MUST_REVALIDATE | WR_CC_PUBLIC | WR_CC_S_MAXAGE)))
        return WR_CACHE_NO_AUTHORIZATION;
    /* A cookie handed to one client must not reach the next: not stored
     * unless the operator knows the cookie is the same for everyone. */
    if (resp->has_set_cookie && !(opts && opts->store_set_cookie))
        return WR_CACHE_NO_SET_COOKIE;
    if (resp->is_vary_star)
        return WR_CACHE_NO_VARY_STAR;
    if (!has_freshness_source(resp, opts))
        return WR_CACHE_NO_FRESHNESS;
    return WR_CACHE_OK;
}

/* ---- Freshness and age (RFC 9111 §4.2) ---------------------------------- */

static uint32_t cap_delta(int64_t v)
{
    if (v <= 0)
        return 0;
    return v > (int64_t)WR_CACHE_DELTA_MAX ? WR_CACHE_DELTA_MAX : (uint32_t)v;
}

/* §4.2.2: 10 % of the time since Last-Modified, when a heuristic is
 * allowed at all: no explicit expiry (checked by the caller), a
 * heuristically cacheable status or public (§5.2.2.9), Last-Modified. */
static bool heuristic_lifetime(const struct wr_cache_resp *resp,
                               const struct wr_cache_opts *opts, uint32_t *out)
{
    if (!resp->has_last_modified)
        return false;
    if (!wr_cache_status_heuristic(resp->status) && !(resp->cc.flags & WR_CC_PUBLIC))
        return false;
    uint32_t cap = opts && opts->heuristic_max_sec ? opts->heuristic_max_sec
                                                   : WR_CACHE_HEURISTIC_MAX_DEFAULT;
    /* Both are at most a few 10^11 (year 9999): no overflow. */
    uint32_t v = cap_delta((resp->date - resp->last_modified) / 10);
    *out = v < cap ? v : cap;
    return true;
}

uint32_t wr_cache_lifetime(const struct wr_cache_resp *resp, const struct wr_cache_opts *opts,
                           enum wr_cache_lifetime_source *source)
{
    enum wr_cache_lifetime_source src = WR_CACHE_LIFETIME_NONE;
    uint32_t v = 0;
    if (resp->cc.flags & WR_CC_S_MAXAGE) { /* §4.2.1: shared caches first */
        src = WR_CACHE_LIFETIME_S_MAXAGE;
        v = resp->cc.s_maxage;
    } else if (resp->cc.flags & WR_CC_MAX_AGE) {
        src = WR_CACHE_LIFETIME_MAX_AGE;
        v = resp->cc.max_age;
    } else if (resp->has_expires) {
        /* §5.3: an invalid Expires (e.g. "0") means already expired. */
        src = WR_CACHE_LIFETIME_EXPIRES;
        v = resp->is_expires_invalid ? 0 : cap_delta(resp->expires - resp->date);
    } else if (heuristic_lifetime(resp, opts, &v)) {
        src = WR_CACHE_LIFETIME_HEURISTIC;
    } else if (fallback_for(opts, resp->status, &v)) {
        src = WR_CACHE_LIFETIME_FALLBACK;
    }
    if (source)
        *source = src;
    return v;
}

uint32_t wr_cache_initial_age(const struct wr_cache_resp *resp, int64_t request_time,
                              int64_t response_time)
{
    /* §4.2.3, with a clock that stepped back counted as no delay. */
    int64_t apparent_age = response_time - resp->date;
    int64_t delay = response_time - request_time;
    int64_t corrected_age = (int64_t)resp->age + (delay > 0 ? delay : 0);
    return cap_delta(apparent_age > corrected_age ? apparent_age : corrected_age);
}

void wr_cache_fresh_init(struct wr_cache_fresh *f, const struct wr_cache_resp *resp,
                         const struct wr_cache_opts *opts, int64_t request_time,
                         int64_t response_time)
{
    enum wr_cache_lifetime_source src;
    const struct wr_cache_cc *cc = &resp->cc;
    memset(f, 0, sizeof(*f));
    f->response_time = response_time;
    f->lifetime = wr_cache_lifetime(resp, opts, &src);
    f->source = (uint8_t)src;
    f->initial_age = wr_cache_initial_age(resp, request_time, response_time);
    f->flags = cc->flags & (WR_CC_NO_CACHE | WR_CC_MUST_REVALIDATE | WR_CC_PROXY_REVALIDATE |
                            WR_CC_S_MAXAGE | WR_CC_IMMUTABLE);
    f->stale_while_revalidate = (cc->flags & WR_CC_SWR) ? cc->stale_while_revalidate
                                : opts ? opts->stale_while_revalidate_sec : 0;
    f->stale_if_error = (cc->flags & WR_CC_SIE) ? cc->stale_if_error
                        : opts ? opts->stale_if_error_sec : 0;
}

uint32_t wr_cache_current_age(const struct wr_cache_fresh *f, int64_t now)
{
    int64_t resident = now - f->response_time;
    return cap_delta((int64_t)f->initial_age + (resident > 0 ? resident : 0));
}

int64_t wr_cache_ttl(const struct wr_cache_fresh *f, int64_t now)
{
    return (int64_t)f->lifetime - (int64_t)wr_cache_current_age(f, now);
}

/* ---- The lookup decision (RFC 9111 §4, §5.2.1; RFC 5861) ---------------- */

/* §4.2.4: "A cache MUST NOT generate a stale response if it is prohibited
 * by an explicit in-protocol directive"; s-maxage carries proxy-revalidate's
 * semantics for a shared cache (§5.2.2.10). */
static bool forbids_stale(const struct wr_cache_fresh *f)
{
    return f->flags &
           (WR_CC_NO_CACHE | WR_CC_MUST_REVALIDATE | WR_CC_PROXY_REVALIDATE | WR_CC_S_MAXAGE);
}

/* The verdict for a stale response (d->ttl <= 0) nothing forbids serving. */
static enum wr_cache_verdict decide_stale(const struct wr_cache_fresh *f,
                                          const struct wr_cache_cc *rq,
                                          const struct wr_cache_decision *d)
{
    uint64_t staleness = (uint64_t)(-d->ttl);
    /* min-fresh asks for time left; a stale response has none. */
    if (rq->flags & WR_CC_MIN_FRESH)
        return WR_CACHE_REVALIDATE;
    if ((rq->flags & WR_CC_MAX_STALE_ANY) ||
        ((rq->flags & WR_CC_MAX_STALE) && staleness <= rq->max_stale))
        return WR_CACHE_SERVE_STALE;
    /* RFC 5861 §3: within the window, serve and refresh asynchronously. */
    if (f->stale_while_revalidate > 0 && staleness <= f->stale_while_revalidate)
        return WR_CACHE_SERVE_REFRESH;
    return WR_CACHE_REVALIDATE;
}

struct wr_cache_decision wr_cache_decide(const struct wr_cache_fresh *f,
                                         const struct wr_cache_req *req, int64_t now)
{
    const struct wr_cache_cc *rq = &req->cc;
    struct wr_cache_decision d = {.verdict = WR_CACHE_REVALIDATE};
    d.age = wr_cache_current_age(f, now);
    d.ttl = wr_cache_ttl(f, now);
    bool is_fresh = d.ttl > 0; /* §4.2: fresh when lifetime > current_age */
    /* §5.2.1.1: max-age bounds the age whether or not max-stale is there. */
    bool is_too_old = (rq->flags & WR_CC_MAX_AGE) && d.age > rq->max_age;
    if (f->flags & WR_CC_NO_CACHE) {
        d.verdict = WR_CACHE_REVALIDATE; /* §5.2.2.4: never used unvalidated */
    } else if ((rq->flags & WR_CC_NO_CACHE) || is_too_old) {
        d.is_request_forced = is_fresh; /* §5.2.1.4 */
    } else if (is_fresh) {
        /* §5.2.1.3: min-fresh wants at least that much freshness left. */
        if ((rq->flags & WR_CC_MIN_FRESH) && d.ttl < (int64_t)rq->min_fresh)
            d.is_request_forced = true;
        else
            d.verdict = WR_CACHE_SERVE;
    } else if (!forbids_stale(f)) {
        d.verdict = decide_stale(f, rq, &d);
    }
    /* §5.2.1.7: only-if-cached never goes to the origin: 504 instead. */
    if (d.verdict == WR_CACHE_REVALIDATE && (rq->flags & WR_CC_ONLY_IF_CACHED))
        d.verdict = WR_CACHE_GATEWAY_TIMEOUT;
    return d;
}

bool wr_cache_stale_if_error(const struct wr_cache_fresh *f, const struct wr_cache_req *req,
                             int64_t now)
{
    /* §5.2.2.2: must-revalidate (and its kin) asks for a 504 when the
     * origin cannot be reached, which RFC 5861 §4 does not override. */
    if (forbids_stale(f))
        return false;
    const struct wr_cache_cc *rq = &req->cc;
    uint32_t window = f->stale_if_error;
    if ((rq->flags & WR_CC_SIE) && rq->stale_if_error > window)
        window = rq->stale_if_error; /* RFC 5861 §4: the client may widen it */
    /* A client that demanded validation accepts stale only by saying so. */
    if ((rq->flags & WR_CC_NO_CACHE) && !(rq->flags & WR_CC_SIE))
        return false;
    int64_t ttl = wr_cache_ttl(f, now);
    uint64_t staleness = ttl < 0 ? (uint64_t)(-ttl) : 0;
    return window > 0 && staleness <= window;
}

/* ---- Vary (RFC 9111 §4.1) ------------------------------------------------ */

/* Most distinct field names one Vary may list before weir gives up on it. */
#define VARY_MAX_FIELDS 32

/* ASCII case-insensitive ordering of two names. */
static int cmp_nocase(struct wr_str a, struct wr_str b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    for (size_t i = 0; i < n; i++) {
        int d = (unsigned char)wr_str_lower(a.ptr[i]) - (unsigned char)wr_str_lower(b.ptr[i]);
        if (d != 0)
            return d;
    }
    return (a.len > b.len) - (a.len < b.len);
}

/* Inserts name into the sorted set names[0..*n), once. False when full. */
static bool add_vary_name(struct wr_str *names, size_t *n, struct wr_str name)
{
    size_t i = 0;
    while (i < *n && cmp_nocase(names[i], name) < 0)
        i++;
    if (i < *n && cmp_nocase(names[i], name) == 0)
        return true;
    if (*n == VARY_MAX_FIELDS)
        return false;
    memmove(names + i + 1, names + i, (*n - i) * sizeof(*names));
    names[i] = name;
    (*n)++;
    return true;
}

/* Adds the names of one Vary line; false on "*", a non-token or overflow. */
static bool add_vary_line(struct wr_str *names, size_t *n, struct wr_str value)
{
    size_t start = 0;
    for (size_t i = 0; i <= value.len; i++) {
        if (i < value.len && value.ptr[i] != ',')
            continue;
        struct wr_str elem = wr_str_trim((struct wr_str){value.ptr + start, i - start});
        start = i + 1;
        if (elem.len == 0)
            continue;
        for (size_t k = 0; k < elem.len; k++) {
            if (!is_tchar(elem.ptr[k]) || elem.ptr[k] == '*')
                return false; /* "*" never matches (§4.1); junk can't match safely */
        }
        if (!add_vary_name(names, n, elem))
            return false;
    }
    return true;
}

int wr_cache_vary_names(const struct wr_http_header *headers, size_t n, char *out, size_t cap)
{
    struct wr_str names[VARY_MAX_FIELDS];
    size_t n_names = 0;
    for (size_t i = 0; i < n; i++) {
        if (name_is(headers[i].name, "vary") && !add_vary_line(names, &n_names, headers[i].value))
            return -1;
    }
    struct out_buf b = {out, cap, 0, true};
    for (size_t i = 0; i < n_names; i++) {
        if (i > 0)
            put(&b, ",", 1);
        for (size_t k = 0; k < names[i].len && b.ok; k++) {
            char c = wr_str_lower(names[i].ptr[k]);
            put(&b, &c, 1);
        }
    }
    return b.ok && b.len <= INT32_MAX ? (int)b.len : -1;
}

/* Where wr_cache_vary_values writes, or what it compares against. */
struct key_sink {
    struct out_buf buf;       /* writing: out non-NULL */
    struct wr_str cmp;        /* comparing: cmp.ptr non-NULL */
};

static void sink_put(struct key_sink *s, const char *p, size_t n)
{
    if (n == 0)
        return;
    if (s->cmp.ptr) {
        if (!s->buf.ok || n > s->cmp.len - s->buf.len ||
            memcmp(s->cmp.ptr + s->buf.len, p, n) != 0)
            s->buf.ok = false;
        else
            s->buf.len += n;
        return;
    }
    put(&s->buf, p, n);
}

/*
 * The key for one name: every line's trimmed value joined by ", " then a
 * NUL, or a lone 0x01 for "absent". Field values never hold NUL or 0x01
 * (RFC 9110 §5.5; the parsers refuse CTLs), so keys cannot collide.
 */
static void emit_field(struct key_sink *s, struct wr_str name, const struct wr_http_header *h,
                       size_t n)
{
    bool is_present = false;
    for (size_t i = 0; i < n; i++) {
        if (!wr_str_eq_nocase(h[i].name, name))
            continue;
        if (is_present)
            sink_put(s, ", ", 2);
        struct wr_str v = wr_str_trim(h[i].value);
        sink_put(s, v.ptr, v.len);
        is_present = true;
    }
    sink_put(s, is_present ? "" : "\x01", 1);
}

static void emit_key(struct key_sink *s, struct wr_str names, const struct wr_http_header *h,
                     size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i <= names.len && names.len > 0; i++) {
        if (i < names.len && names.ptr[i] != ',')
            continue;
        emit_field(s, (struct wr_str){names.ptr + start, i - start}, h, n);
        start = i + 1;
    }
}

int wr_cache_vary_values(struct wr_str names, const struct wr_http_header *headers, size_t n,
                         char *out, size_t cap)
{
    struct key_sink s = {.buf = {out, cap, 0, true}};
    emit_key(&s, names, headers, n);
    return s.buf.ok && s.buf.len <= INT32_MAX ? (int)s.buf.len : -1;
}

bool wr_cache_vary_match(struct wr_str names, struct wr_str stored_key,
                         const struct wr_http_header *headers, size_t n)
{
    struct key_sink s = {.buf = {NULL, 0, 0, true}, .cmp = stored_key};
    if (!s.cmp.ptr)
        s.cmp.ptr = ""; /* compare mode even for an empty key */
    emit_key(&s, names, headers, n);
    return s.buf.ok && s.buf.len == stored_key.len;
}

/* ---- Invalidation (RFC 9111 §4.4) ---------------------------------------- */

bool wr_cache_invalidates(enum wr_http_method method, int status)
{
    /* RFC 9110 §9.2.1: GET, HEAD, OPTIONS and TRACE are safe; any other
     * method, known or not, counts as unsafe. */
    switch (method) {
    case WR_HTTP_GET:
    case WR_HTTP_HEAD:
    case WR_HTTP_OPTIONS:
    case WR_HTTP_TRACE:
        return false;
    default:
        return status >= 200 && status < 400; /* "non-error" */
    }
}

static uint16_t default_port(struct wr_str scheme)
{
    if (wr_str_eq_nocase(scheme, WR_STR("http")))
        return 80;
    if (wr_str_eq_nocase(scheme, WR_STR("https")))
        return 443;
    return 0;
}

/* Splits authority (host, "[v6]", either with ":port") into host and port
 * (the scheme's default when absent or empty). False on userinfo, a bad
 * port or an empty host. */
static bool split_authority(struct wr_str a, uint16_t def, struct wr_str *host, uint16_t *port)
{
    size_t colon = a.len; /* where ":port" starts, if any */
    if (memchr(a.ptr ? a.ptr : "", '@', a.len))
        return false; /* userinfo: no origin weir would key on */
    if (a.len > 0 && a.ptr[0] == '[') {
        const char *end = memchr(a.ptr, ']', a.len);
        if (!end)
            return false;
        colon = (size_t)(end - a.ptr) + 1;
        if (colon < a.len && a.ptr[colon] != ':')
            return false;
    } else {
        for (size_t i = 0; i < a.len; i++) {
            if (a.ptr[i] == ':')
                colon = i;
        }
    }
    *host = (struct wr_str){a.ptr, colon};
    *port = def;
    if (colon + 1 < a.len) {
        uint32_t v;
        if (!parse_delta((struct wr_str){a.ptr + colon + 1, a.len - colon - 1}, &v) ||
            v == 0 || v > 65535)
            return false;
        *port = (uint16_t)v;
    }
    return host->len > 0;
}

/* Splits "//authority/path?q" (the leading "//" already skipped) at the
 * end of the authority. */
static void split_hier(struct wr_str s, struct wr_str *authority, struct wr_str *rest)
{
    size_t i = 0;
    while (i < s.len && s.ptr[i] != '/' && s.ptr[i] != '?')
        i++;
    *authority = (struct wr_str){s.ptr, i};
    *rest = (struct wr_str){s.ptr + i, s.len - i};
}

/* The scheme of an absolute URI (RFC 3986 §3.1) and what follows its ':'.
 * False when uri has no scheme (a relative reference). */
static bool take_scheme(struct wr_str uri, struct wr_str *scheme, struct wr_str *rest)
{
    for (size_t i = 0; i < uri.len; i++) {
        char c = wr_str_lower(uri.ptr[i]);
        if (c == ':' && i > 0) {
            *scheme = (struct wr_str){uri.ptr, i};
            *rest = (struct wr_str){uri.ptr + i + 1, uri.len - i - 1};
            return true;
        }
        bool ok = (c >= 'a' && c <= 'z') ||
                  (i > 0 && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'));
        if (!ok)
            return false;
    }
    return false;
}

bool wr_cache_invalidation_target(struct wr_str scheme, struct wr_str authority,
                                  struct wr_str uri, struct wr_cache_target *out)
{
    uint16_t def = default_port(scheme), req_port;
    struct wr_str req_host, host, rest, tgt_scheme = scheme;
    if (def == 0 || !split_authority(authority, def, &req_host, &req_port))
        return false;
    uri = wr_str_trim(uri);
    const char *hash = uri.len ? memchr(uri.ptr, '#', uri.len) : NULL;
    if (hash)
        uri.len = (size_t)(hash - uri.ptr);
    host = req_host;
    uint16_t port = req_port;
    bool has_authority = false;
    if (take_scheme(uri, &tgt_scheme, &rest)) {
        if (!wr_str_has_prefix(rest, WR_STR("//")))
            return false;
        uri = rest;
    }
    if (wr_str_has_prefix(uri, WR_STR("//"))) {
        struct wr_str a;
        split_hier((struct wr_str){uri.ptr + 2, uri.len - 2}, &a, &rest);
        has_authority = true;
        if (!split_authority(a, default_port(tgt_scheme), &host, &port))
            return false;
    } else if (wr_str_has_prefix(uri, WR_STR("/"))) {
        rest = uri;
    } else {
        return false; /* a relative path: resolving it is left out (a MAY) */
    }
    /* §4.4: never invalidate another origin's URI. */
    if (!wr_str_eq_nocase(tgt_scheme, scheme) || port != req_port ||
        (has_authority && !wr_str_eq_nocase(host, req_host)))
        return false;
    if (rest.len > 0 && rest.ptr[0] != '/')
        return false; /* "//host?q": no origin-form path to key on */
    *out = (struct wr_cache_target){scheme, host, port, rest.len ? rest : WR_STR("/")};
    return true;
}

/* ---- 304 and stored fields (RFC 9111 §3.1, §3.2, §4.3.4) ---------------- */

bool wr_cache_304_selects(struct wr_str stored_etag, struct wr_str stored_last_modified,
                          struct wr_str new_etag, struct wr_str new_last_modified)
{
    bool is_strong = new_etag.ptr && !wr_str_has_prefix(wr_str_trim(new_etag), WR_STR("W/"));
    if (is_strong) /* a strong validator identifies the representation alone */
        return stored_etag.ptr && wr_http_cond_etag_match(new_etag, stored_etag, false);
    if (!new_etag.ptr && !new_last_modified.ptr) /* no validator at all */
        return !stored_etag.ptr && !stored_last_modified.ptr;
    /* Weak validators: each one given has to correspond. */
    if (new_etag.ptr && !(stored_etag.ptr && wr_http_cond_etag_match(new_etag, stored_etag, true)))
        return false;
    if (new_last_modified.ptr) {
        int64_t a, b;
        if (!stored_last_modified.ptr)
            return false;
        bool is_same = wr_http_cond_parse_date(new_last_modified, &a) &&
                               wr_http_cond_parse_date(stored_last_modified, &b)
                           ? a == b
                           : wr_str_eq(wr_str_trim(new_last_modified),
                                       wr_str_trim(stored_last_modified));
        if (!is_same)
            return false;
    }
    return true;
}

bool wr_cache_field_stored(struct wr_str name, struct wr_str connection)
{
    /* §3.1: hop-by-hop fields (RFC 9110 §7.6.1) and those Connection
     * names; the proxy-specific Proxy-* fields; Age, which the cache
     * recomputes on every hit (§5.1) rather than replaying. */
    static const char *const never[] = {
        "connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade",
        "proxy-authenticate", "proxy-authentication-info", "proxy-authorization", "age",
    };
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
        if (name_is(name, never[i]))
            return false;
    }
    return !wr_str_list_has_token(connection, name);
}

bool wr_cache_304_updates(struct wr_str name, struct wr_str connection)
{
    if (!wr_cache_field_stored(name, connection))
        return false;
    /* §3.2: Content-Length is never updated; the stored body depends on
     * its coding and range, which a 304 (no body) cannot change. */
    return !name_is(name, "content-length") && !name_is(name, "content-encoding") &&
           !name_is(name, "content-range");
}

/* ---- Cache-Status (RFC 9211) -------------------------------------------- */

static const char *const fwd_names[] = {
    [WR_CACHE_FWD_NONE] = "",          [WR_CACHE_FWD_BYPASS] = "bypass",
    [WR_CACHE_FWD_METHOD] = "method",  [WR_CACHE_FWD_URI_MISS] = "uri-miss",
    [WR_CACHE_FWD_VARY_MISS] = "vary-miss", [WR_CACHE_FWD_MISS] = "miss",
    [WR_CACHE_FWD_REQUEST] = "request", [WR_CACHE_FWD_STALE] = "stale",
};

/* RFC 8941 §3.3.4 sf-token: ( ALPHA / "*" ) *( tchar / ":" / "/" ). */
static bool is_sf_token(struct wr_str s)
{
    if (s.len == 0)
        return false;
    char c0 = wr_str_lower(s.ptr[0]);
    if (!((c0 >= 'a' && c0 <= 'z') || c0 == '*'))
        return false;
    for (size_t i = 1; i < s.len; i++) {
        if (!is_tchar(s.ptr[i]) && s.ptr[i] != ':' && s.ptr[i] != '/')
            return false;
    }
    return true;
}

/* RFC 8941 §3.3.3 sf-string; false on bytes it cannot carry. */
static bool put_sf_string(struct out_buf *b, struct wr_str s)
{
    put(b, "\"", 1);
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (c < 0x20 || c > 0x7e)
            return false;
        if (c == '"' || c == '\\')
            put(b, "\\", 1);
        put(b, &c, 1);
    }
    put(b, "\"", 1);
    return true;
}

size_t wr_cache_status_format(const struct wr_cache_status *s, struct wr_str name, char *out,
                              size_t cap)
{
    struct out_buf b = {out, cap, 0, true};
    if (name.len == 0)
        name = WR_STR("weir");
    if (!is_sf_token(name) && !put_sf_string(&b, name))
        return 0;
    if (is_sf_token(name))
        put(&b, name.ptr, name.len);
    if (s->is_hit)
        put_cstr(&b, "; hit");
    if (s->fwd != WR_CACHE_FWD_NONE && (unsigned)s->fwd < sizeof(fwd_names) / sizeof(fwd_names[0])) {
        put_cstr(&b, "; fwd=");
        put_cstr(&b, fwd_names[s->fwd]);
    }
    if (s->fwd_status > 0) {
        put_cstr(&b, "; fwd-status=");
        put_i64(&b, s->fwd_status);
    }
    if (s->has_ttl) {
        put_cstr(&b, "; ttl=");
        put_i64(&b, s->ttl);
    }
    if (s->is_stored)
        put_cstr(&b, "; stored");
    if (s->is_collapsed)
        put_cstr(&b, "; collapsed");
    if (s->detail) {
        struct wr_str d = wr_str_from_cstr(s->detail);
        put_cstr(&b, "; detail=");
        if (is_sf_token(d))
            put(&b, d.ptr, d.len);
        else if (!put_sf_string(&b, d))
            return 0;
    }
    return b.ok ? b.len : 0;
}
