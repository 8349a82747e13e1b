/*
 * cache_policy: every decision of a shared HTTP cache (RFC 9111, the
 * stale-* extensions of RFC 5861, the Cache-Status field of RFC 9211) as
 * pure functions: Cache-Control parsing, storability, freshness lifetime,
 * age, the lookup decision, Vary secondary keys, invalidation targets,
 * which fields a 304 replaces, and the Cache-Status value.
 *
 * Bytes and numbers in, results out: no I/O, no allocation, no clock (every
 * time is a Unix second the caller passes), no config (the few operator
 * choices come in struct wr_cache_opts). Layer 0: safe on any thread;
 * fuzzed by tests/fuzz/fuzz_cache_control.c.
 *
 * weir is a shared cache (RFC 9111 §1): s-maxage and proxy-revalidate
 * apply, private responses are never stored. The cache store and the proxy
 * glue call these functions; they never re-derive a rule themselves.
 *
 * The flow for the store and the glue:
 *   miss:   wr_cache_req_scan + wr_cache_resp_scan -> wr_cache_storable ->
 *           wr_cache_fresh_init (kept in the entry) + wr_cache_vary_names /
 *           wr_cache_vary_values (the secondary key, kept with the entry);
 *   hit:    wr_cache_vary_match, then wr_cache_decide -> serve / refresh in
 *           the background / revalidate / 504; Age = wr_cache_current_age;
 *   error:  wr_cache_stale_if_error;
 *   304:    wr_cache_304_selects, wr_cache_304_updates per field, then a
 *           new wr_cache_resp_scan + wr_cache_fresh_init on the merged head
 *           with the revalidation's request and response times (its age
 *           field taken from a scan of the 304 itself: Age is never stored);
 *   unsafe: wr_cache_invalidates + wr_cache_invalidation_target;
 *   always: wr_cache_status_format for the Cache-Status field.
 */
#ifndef WEIR_CACHE_POLICY_H
#define WEIR_CACHE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weir/http_parser.h"
#include "weir/str.h"

/*
 * RFC 9111 §1.2.2: a delta-seconds too large to represent, or a sum that
 * overflows, is taken as 2^31. Every parsed number is capped here.
 */
#define WR_CACHE_DELTA_MAX 2147483648u

/* Cache-Control directives seen (RFC 9111 §5.2, RFC 5861). One set serves
 * requests and responses; each function reads the ones its side defines. */
enum wr_cache_cc_flag {
    WR_CC_NO_STORE = 1u << 0,         /* request or response no-store */
    WR_CC_NO_CACHE = 1u << 1,         /* no-cache, with or without a field
                                         list: the list form is treated as the
                                         whole response (§5.2.2.4 permits) */
    WR_CC_PRIVATE = 1u << 2,          /* private, with or without a list:
                                         never stored (shared cache) */
    WR_CC_PUBLIC = 1u << 3,           /* response public */
    WR_CC_MUST_REVALIDATE = 1u << 4,  /* response must-revalidate */
    WR_CC_PROXY_REVALIDATE = 1u << 5, /* response proxy-revalidate */
    WR_CC_NO_TRANSFORM = 1u << 6,     /* no-transform (either side) */
    WR_CC_IMMUTABLE = 1u << 7,        /* response immutable (RFC 8246) */
    WR_CC_MUST_UNDERSTAND = 1u << 8,  /* response must-understand */
    WR_CC_ONLY_IF_CACHED = 1u << 9,   /* request only-if-cached */
    WR_CC_MAX_AGE = 1u << 10,         /* max_age is set */
    WR_CC_S_MAXAGE = 1u << 11,        /* s_maxage is set */
    WR_CC_MAX_STALE = 1u << 12,       /* max_stale is set (value form) */
    WR_CC_MAX_STALE_ANY = 1u << 13,   /* request max-stale without a value:
                                         any staleness accepted */
    WR_CC_MIN_FRESH = 1u << 14,       /* min_fresh is set */
    WR_CC_SWR = 1u << 15,             /* stale_while_revalidate is set */
    WR_CC_SIE = 1u << 16,             /* stale_if_error is set */
};

/*
 * Parsed directives. Numbers are delta-seconds capped at WR_CACHE_DELTA_MAX
 * and valid only when their flag is set. Rules (RFC 9111 §4.2.1, §5.2):
 *  - names are case-insensitive; arguments may be tokens or quoted-strings
 *    (§5.2: recipients accept both forms);
 *  - a directive given twice keeps its first value (§4.2.1: "the first
 *    occurrence should be used"); flags simply accumulate, so conflicting
 *    directives leave the most restrictive one in force (no-cache next to
 *    max-age still forces revalidation);
 *  - an invalid argument (not digits, empty, negative) makes max-age and
 *    s-maxage 0, i.e. stale (§4.2.1 encourages treating invalid freshness
 *    as stale); the other numeric directives are ignored when invalid (a
 *    client's unreadable max-stale never widens what it gets);
 *  - unknown directives and malformed list elements are skipped (§5.2.3).
 */
struct wr_cache_cc {
    uint32_t flags; /* enum wr_cache_cc_flag */
    uint32_t max_age;
    uint32_t s_maxage;
    uint32_t max_stale;
    uint32_t min_fresh;
    uint32_t stale_while_revalidate;
    uint32_t stale_if_error;
};

/* Empties cc (no directive seen). */
void wr_cache_cc_init(struct wr_cache_cc *cc);

/*
 * Adds the directives of one Cache-Control field value (a list, RFC 9110
 * §5.6.1) to cc; call once per field line, in order, after
 * wr_cache_cc_init. value may be empty (ptr NULL allowed when len is 0).
 * Never fails: what is not understood is skipped.
 */
void wr_cache_cc_parse(struct wr_cache_cc *cc, struct wr_str value);

/*
 * Writes cc in canonical form ("no-cache, max-age=60", lower-case, fixed
 * order, numbers in decimal, no quotes) to out[0..cap). Returns the length
 * (0 when cc is empty), or 0 with nothing promised in out when cap is too
 * small (WR_CACHE_CC_FORMAT_MAX always suffices). Parsing the result gives
 * back an equal struct.
 */
#define WR_CACHE_CC_FORMAT_MAX 320
size_t wr_cache_cc_format(const struct wr_cache_cc *cc, char *out, size_t cap);

/* What the cache needs to know about a request. */
struct wr_cache_req {
    enum wr_http_method method;
    struct wr_cache_cc cc;
    bool has_authorization; /* an Authorization field (§3.5) */
};

/*
 * Fills r from a request's method and fields (headers[0..n), any order,
 * names case-insensitive): every Cache-Control line; Pragma: no-cache as
 * no-cache when there is no Cache-Control field (RFC 9111 §5.4);
 * Authorization. headers may be NULL when n is 0. Slices are not kept.
 */
void wr_cache_req_scan(struct wr_cache_req *r, enum wr_http_method method,
                       const struct wr_http_header *headers, size_t n);

/* What the cache needs to know about a response head. */
struct wr_cache_resp {
    int status;
    struct wr_cache_cc cc;
    int64_t date;          /* Date, or response_time when absent/invalid
                              (RFC 9110 §6.6.1: a cache adds one) */
    int64_t expires;       /* valid when has_expires and not is_expires_invalid */
    int64_t last_modified; /* valid when has_last_modified */
    uint32_t age;          /* Age, capped; 0 when absent or invalid */
    bool has_expires;
    bool is_expires_invalid; /* "0" or any bad date: already expired (§5.3) */
    bool has_last_modified;
    bool has_set_cookie;
    bool has_vary;
    bool is_vary_star;     /* Vary lists "*": never matches (§4.1) */
    bool has_validator;    /* ETag or Last-Modified: revalidation possible */
};

/*
 * Fills r from a response's status and fields (headers[0..n)).
 * response_time is when the head arrived (Unix seconds). Repeated Date,
 * Expires, Last-Modified or Age lines: the first is used (§4.2.1); an Age
 * that is not delta-seconds is ignored (§5.1). Slices are not kept.
 */
void wr_cache_resp_scan(struct wr_cache_resp *r, int status, const struct wr_http_header *headers,
                        size_t n, int64_t response_time);

/* An operator's fallback lifetime (nginx's proxy_cache_valid): applies to
 * responses with this status (0: any status) that carry no explicit
 * freshness and get no heuristic. */
struct wr_cache_valid {
    int status;
    uint32_t seconds;
};

/* Default cap of a heuristic lifetime (one day): a page untouched for a
 * year is not trusted for 36 days without asking. */
#define WR_CACHE_HEURISTIC_MAX_DEFAULT 86400u

/* Operator choices: every one defaults to the RFC behaviour when zeroed,
 * except methods_mask (0 means GET and HEAD). */
struct wr_cache_opts {
    uint32_t methods_mask;         /* 1u << wr_http_method stored and served;
                                      0: GET and HEAD */
    bool store_set_cookie;         /* store responses with Set-Cookie */
    const struct wr_cache_valid *valid; /* borrowed; n_valid entries, first
                                           matching status wins */
    size_t n_valid;
    uint32_t heuristic_max_sec;    /* cap of 10 % of Date - Last-Modified;
                                      0: WR_CACHE_HEURISTIC_MAX_DEFAULT */
    uint32_t stale_while_revalidate_sec; /* route default when the response
                                            has none (RFC 5861); 0: none */
    uint32_t stale_if_error_sec;   /* likewise for stale-if-error */
};

/* Why a response is not stored; WR_CACHE_OK when it is. */
enum wr_cache_reason {
    WR_CACHE_OK = 0,
    WR_CACHE_NO_METHOD,        /* method not in methods_mask (§3) */
    WR_CACHE_NO_STATUS,        /* not final, or a status the cache does not
                                  store (206, 304, unknown) */
    WR_CACHE_NO_STORE_REQUEST, /* request no-store (§5.2.1.5) */
    WR_CACHE_NO_STORE,         /* response no-store (§5.2.2.5) */
    WR_CACHE_NO_PRIVATE,       /* response private (§5.2.2.7) */
    WR_CACHE_NO_AUTHORIZATION, /* Authorization without must-revalidate,
                                  public or s-maxage (§3.5) */
    WR_CACHE_NO_SET_COOKIE,    /* Set-Cookie and the route did not opt in */
    WR_CACHE_NO_VARY_STAR,     /* Vary: * would never match (§4.1) */
    WR_CACHE_NO_FRESHNESS,     /* no explicit freshness, not heuristically
                                  cacheable, no operator fallback (§3) */
    WR_CACHE_N_REASONS
};

/* A short token for r ("no-store", "private", ...), for logs and
 * Cache-Status detail; "" when out of range. */
const char *wr_cache_reason_name(enum wr_cache_reason r);

/*
 * Whether a response to req may be stored (RFC 9111 §3, in that order;
 * the first failing rule is returned). must-understand (§5.2.2.3) lets a
 * response with a status the cache understands be stored despite no-store.
 * opts may be NULL (RFC defaults).
 */
enum wr_cache_reason wr_cache_storable(const struct wr_cache_req *req,
                                       const struct wr_cache_resp *resp,
                                       const struct wr_cache_opts *opts);

/* True when status is heuristically cacheable (RFC 9110 §15.1 via RFC
 * 9111 §4.2.2): 200 203 204 206 300 301 308 404 405 410 414 501. */
bool wr_cache_status_heuristic(int status);

/* How a lifetime was found. */
enum wr_cache_lifetime_source {
    WR_CACHE_LIFETIME_NONE = 0, /* nothing: lifetime 0 */
    WR_CACHE_LIFETIME_S_MAXAGE,
    WR_CACHE_LIFETIME_MAX_AGE,
    WR_CACHE_LIFETIME_EXPIRES,
    WR_CACHE_LIFETIME_HEURISTIC,
    WR_CACHE_LIFETIME_FALLBACK, /* opts->valid */
};

/*
 * The freshness lifetime in seconds (RFC 9111 §4.2.1): s-maxage, else
 * max-age, else Expires - Date (0 when invalid or in the past), else 10 %
 * of Date - Last-Modified capped at opts->heuristic_max_sec, only for a
 * heuristically cacheable status or a public response (§4.2.2,
 * §5.2.2.9), else the operator's fallback for the status, else 0.
 * *source (may be NULL) says which. opts may be NULL.
 */
uint32_t wr_cache_lifetime(const struct wr_cache_resp *resp, const struct wr_cache_opts *opts,
                           enum wr_cache_lifetime_source *source);

/*
 * corrected_initial_age of RFC 9111 §4.2.3: the larger of the apparent
 * age (response_time - Date, at least 0) and Age + (response_time -
 * request_time). request_time is when the request was sent upstream,
 * response_time when the head arrived. Capped at WR_CACHE_DELTA_MAX.
 */
uint32_t wr_cache_initial_age(const struct wr_cache_resp *resp, int64_t request_time,
                              int64_t response_time);

/*
 * What a stored entry keeps for its lifetime decisions (small and fixed:
 * the store copies it into each entry; no pointers).
 */
struct wr_cache_fresh {
    int64_t response_time;     /* when the (last validating) head arrived */
    uint32_t lifetime;         /* wr_cache_lifetime */
    uint32_t initial_age;      /* wr_cache_initial_age */
    uint32_t flags;            /* the response's NO_CACHE, MUST_REVALIDATE,
                                  PROXY_REVALIDATE, S_MAXAGE, IMMUTABLE */
    uint32_t stale_while_revalidate; /* response's, else the route default */
    uint32_t stale_if_error;   /* likewise */
    uint8_t source;            /* enum wr_cache_lifetime_source */
};

/* Fills f for a response about to be stored (or re-stored after a 304).
 * opts may be NULL. */
void wr_cache_fresh_init(struct wr_cache_fresh *f, const struct wr_cache_resp *resp,
                         const struct wr_cache_opts *opts, int64_t request_time,
                         int64_t response_time);

/* current_age at now (RFC 9111 §4.2.3): initial age plus the time since
 * response_time (a clock that went back counts as 0). Capped. The value
 * of the Age field on a hit. */
uint32_t wr_cache_current_age(const struct wr_cache_fresh *f, int64_t now);

/* Seconds of freshness left at now: lifetime - current_age, negative when
 * stale. The ttl of Cache-Status. */
int64_t wr_cache_ttl(const struct wr_cache_fresh *f, int64_t now);

/* The lookup verdicts, for a stored response that matched (key, Vary). */
enum wr_cache_verdict {
    WR_CACHE_SERVE = 0,      /* fresh and acceptable: serve it */
    WR_CACHE_SERVE_STALE,    /* stale but the request's max-stale accepts
                                it: serve, no refresh owed (§4.2.4) */
    WR_CACHE_SERVE_REFRESH,  /* stale within stale-while-revalidate: serve
                                and revalidate once in the background */
    WR_CACHE_REVALIDATE,     /* forward a conditional request (§4.3.1) */
    WR_CACHE_GATEWAY_TIMEOUT,/* only-if-cached and nothing usable: 504
                                (§5.2.1.7) */
};

/* The lookup's answer. */
struct wr_cache_decision {
    enum wr_cache_verdict verdict;
    uint32_t age;           /* current age: the Age field when served */
    int64_t ttl;            /* wr_cache_ttl: Cache-Status ttl */
    bool is_request_forced; /* the request's directives (no-cache,
                               max-age, min-fresh) refused a response that
                               was fresh: Cache-Status fwd=request */
};

/*
 * Decides what to do with a stored response f for request req at now
 * (RFC 9111 §4, §4.2.4, §5.2.1; RFC 5861 §3):
 *  - response no-cache, or request no-cache: revalidate (never served
 *    unvalidated);
 *  - fresh, and the request's max-age and min-fresh are satisfied: serve;
 *  - stale: never served when the response forbids it (must-revalidate,
 *    proxy-revalidate, s-maxage: §4.2.4, §5.2.2.10); else served when the
 *    request's max-stale covers the staleness (and max-age, if given, the
 *    age); else served with a background refresh within
 *    stale-while-revalidate; else revalidate;
 *  - only-if-cached turns every "revalidate" into 504.
 */
struct wr_cache_decision wr_cache_decide(const struct wr_cache_fresh *f,
                                         const struct wr_cache_req *req, int64_t now);

/*
 * True when the stale response f may answer req at now because the origin
 * failed (error, 500/502/503/504, timeout): within the response's or the
 * route's stale-if-error, or the request's own stale-if-error (RFC 5861
 * §4), and nothing forbids serving stale (must-revalidate and friends:
 * §5.2.2.2 asks for a 504 then).
 */
bool wr_cache_stale_if_error(const struct wr_cache_fresh *f, const struct wr_cache_req *req,
                             int64_t now);

/* Longest normalised Vary list and secondary key accepted; a response
 * whose Vary needs more is not stored (the store treats -1 as a reason). */
#define WR_CACHE_VARY_NAMES_MAX 256
#define WR_CACHE_VARY_KEY_MAX 2048

/*
 * Normalises the Vary field lines of a response (headers[0..n), only the
 * lines named Vary are read) into out: field names lower-cased, sorted,
 * deduplicated, joined by ",". Returns the length (0: no Vary), -1 when a
 * "*" is listed (never matches, §4.1) or the result exceeds cap.
 */
int wr_cache_vary_names(const struct wr_http_header *headers, size_t n, char *out, size_t cap);

/*
 * The secondary key: for each name of the normalised list names (from
 * wr_cache_vary_names), the request's value (every line of that name
 * combined with ", ", each trimmed of OWS, as §4.1 allows), or a mark for
 * "absent" (absent only matches absent). Writes to out[0..cap) and returns
 * the length, or -1 when it does not fit. Two requests select the same
 * variant exactly when their keys are equal bytes.
 */
int wr_cache_vary_values(struct wr_str names, const struct wr_http_header *headers, size_t n,
                         char *out, size_t cap);

/* True when the request's fields give the stored secondary key (no
 * buffer needed). */
bool wr_cache_vary_match(struct wr_str names, struct wr_str stored_key,
                         const struct wr_http_header *headers, size_t n);

/* True when a response with status to a request with method invalidates
 * the target URI (RFC 9111 §4.4): an unsafe (or unknown) method and a
 * non-error status (2xx, 3xx). */
bool wr_cache_invalidates(enum wr_http_method method, int status);

/* A URI to invalidate, split as a cache key is built; slices borrow from
 * the inputs of wr_cache_invalidation_target. */
struct wr_cache_target {
    struct wr_str scheme;     /* "http" or "https" */
    struct wr_str host;       /* without a default port; case as given */
    uint16_t port;            /* explicit or the scheme's default */
    struct wr_str path_query; /* origin-form: path and "?query" */
};

/*
 * Resolves a Location or Content-Location value against the request's
 * origin (scheme "http"/"https", authority host[:port]) and fills *out
 * when it names the same origin (scheme, host ignoring case, port after
 * defaults: §4.4 forbids any other). Accepts absolute URIs, network-path
 * ("//host/p") and absolute-path ("/p") references; a relative path
 * ("p", "../p") is not resolved and gives false (invalidating it is a
 * MAY). Fragments are dropped. Returns false when not same-origin or not
 * understood.
 */
bool wr_cache_invalidation_target(struct wr_str scheme, struct wr_str authority,
                                  struct wr_str uri, struct wr_cache_target *out);

/*
 * True when a 304 (its strong ETag, weak ETag, Last-Modified as given
 * slices; ptr NULL when absent) selects the stored response with those
 * validators for update (RFC 9111 §4.3.4): same strong ETag; else same
 * weak ETag or Last-Modified; else neither side has a validator.
 */
bool wr_cache_304_selects(struct wr_str stored_etag, struct wr_str stored_last_modified,
                          struct wr_str new_etag, struct wr_str new_last_modified);

/*
 * True when a field named name in a 304 (or a HEAD's 200, §4.3.5)
 * replaces the stored field of that name (RFC 9111 §3.2). False for what
 * §3.1 never stores (hop-by-hop fields of RFC 9110 §7.6.1, every name the
 * 304's Connection value lists, Proxy-Authenticate, Proxy-Authentication-
 * Info, Proxy-Authorization), Content-Length, the fields the stored body
 * depends on (Content-Encoding, Content-Range, Transfer-Encoding: the body
 * was not re-sent), and Age (recomputed from the new times, never copied).
 * connection may be empty.
 */
bool wr_cache_304_updates(struct wr_str name, struct wr_str connection);

/* True when a field of this name is stored with a response (RFC 9111
 * §3.1): not hop-by-hop or listed in the response's connection value, not
 * a Proxy-* field, not Age. */
bool wr_cache_field_stored(struct wr_str name, struct wr_str connection);

/* Cache-Status "fwd" values (RFC 9211 §2.2). */
enum wr_cache_fwd {
    WR_CACHE_FWD_NONE = 0, /* a hit: no fwd parameter */
    WR_CACHE_FWD_BYPASS,   /* the route is not cached for this request */
    WR_CACHE_FWD_METHOD,   /* the method is not cached */
    WR_CACHE_FWD_URI_MISS, /* no stored response for the key */
    WR_CACHE_FWD_VARY_MISS,/* stored ones, none for these Vary values */
    WR_CACHE_FWD_MISS,     /* unspecified miss */
    WR_CACHE_FWD_REQUEST,  /* the request's directives refused a fresh one */
    WR_CACHE_FWD_STALE,    /* the stored one was stale: revalidated */
};

/* One Cache-Status entry. */
struct wr_cache_status {
    bool is_hit;
    enum wr_cache_fwd fwd;
    int fwd_status;   /* the upstream status; 0: not sent */
    bool has_ttl;
    int64_t ttl;      /* may be negative (served stale) */
    bool is_stored;   /* the forwarded response was stored */
    bool is_collapsed;/* waited for another request's response */
    const char *detail; /* NUL-terminated token (a..z, 0..9, "-"), or NULL */
};

/* Longest value wr_cache_status_format writes with a detail of at most
 * 32 bytes. */
#define WR_CACHE_STATUS_MAX 160

/*
 * Writes the Cache-Status value for cache name ("weir" when name.len is
 * 0) to out[0..cap): "weir; hit; ttl=376", "weir; fwd=uri-miss; stored",
 * "weir; fwd=stale; fwd-status=304; ttl=-3"; parameters in RFC 9211 §2
 * order. A detail that is not a token is written as a quoted sf-string
 * with '"' and '\' escaped. Returns the length, or 0 when it does not fit
 * (nothing promised in out).
 */
size_t wr_cache_status_format(const struct wr_cache_status *s, struct wr_str name, char *out,
                              size_t cap);

#endif
