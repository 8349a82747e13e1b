/*
 * metrics: per-worker counters, summed on scrape into the Prometheus text
 * exposition format (0.0.4) and the /status JSON.
 *
 * Each worker writes only its own struct wr_metrics_worker, which starts on
 * a cache line of its own: the request path takes no lock and shares no
 * cache line with another thread. A counter has a single writer, so it is
 * bumped with a relaxed load and store (no locked instruction; measured in
 * bench/metrics_bench.c); readers (main, on scrape) load relaxed and sum.
 *
 * Labels that come from the config (route names, upstream servers) are
 * stable across reloads: main registers every snapshot before publishing
 * it, which gives each route name and each (upstream, server) pair a
 * metrics_id that never changes for the life of the process. A connection
 * that finishes on an old snapshot therefore counts under the same series
 * as one on the new snapshot; a route removed by a reload keeps its last
 * values (it stops growing, as Prometheus expects of a counter).
 *
 * Layer 2. Ownership: main owns struct wr_metrics (and so every worker's
 * block, which must outlive the worker threads because main may scrape
 * while they drain); a worker's wr_conns borrows its block.
 */
#ifndef WEIR_METRICS_H
#define WEIR_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weir/config.h"

/* Status classes 1xx..5xx. */
#define WR_METRICS_N_CLASSES 5
/* Finite histogram bounds (wr_metrics_bucket_us); one more bucket is +Inf. */
#define WR_METRICS_N_BOUNDS 13
/* Distinct route names over the life of the process. Id 0 counts requests
 * no route answered (bad heads, 404); the last id collects names past the
 * cap under route="(overflow)". */
#define WR_METRICS_MAX_ROUTES 1024
/* Distinct (upstream, server) pairs over the life of the process; past the
 * cap a server is not counted (id 0 is never a server). */
#define WR_METRICS_MAX_SERVERS 256

#define WR_METRICS_CACHE_LINE 64

/* Upper bounds of the finite buckets in microseconds (1 ms .. 10 s). */
extern const uint64_t wr_metrics_bucket_us[WR_METRICS_N_BOUNDS];

/* A duration histogram. Buckets are not cumulative here (one increment
 * per observation); the exposition accumulates them. */
struct wr_metrics_hist {
    _Atomic uint64_t buckets[WR_METRICS_N_BOUNDS + 1]; /* last: above every bound */
    _Atomic uint64_t sum_us;
};

/* One upstream server as seen by one worker. */
struct wr_metrics_server {
    _Atomic uint64_t requests;    /* exchanges started with this server */
    _Atomic uint64_t failures;    /* connect errors, resets, timeouts, bad heads */
    _Atomic uint64_t pool_hits;   /* an idle pooled connection was reused */
    _Atomic uint64_t pool_misses; /* a new connection had to be opened */
    struct wr_metrics_hist duration; /* request sent -> response complete */
};

/*
 * Why an HTTP/2 GOAWAY or RST_STREAM was sent (the `reason` label): the
 * RFC 9113 §7 error codes (0x0..0xd, in code order), then weir's own
 * causes, whose wire code is ENHANCE_YOUR_CALM (floods) or CANCEL
 * (send_timeout).
 */
enum wr_metrics_h2_reason {
    WR_METRICS_H2_N_CODES = 14,                    /* error codes 0x0..0xd */
    WR_METRICS_H2_RAPID_RESET = WR_METRICS_H2_N_CODES,
    WR_METRICS_H2_CONTROL_FLOOD,
    WR_METRICS_H2_PRIORITY_FLOOD,
    WR_METRICS_H2_EMPTY_DATA_FLOOD,
    WR_METRICS_H2_WINDOW_UPDATE_FLOOD,
    WR_METRICS_H2_CONTINUATION_FLOOD,
    WR_METRICS_H2_SEND_TIMEOUT,                    /* a stream the client's window stalled */
    WR_METRICS_H2_BODY_TIMEOUT,                    /* a request body that stopped coming */
    WR_METRICS_H2_N_REASONS
};

/* Why a connection on a proxy_protocol listener was closed unserved. */
enum wr_metrics_pp_error {
    WR_METRICS_PP_UNTRUSTED = 0, /* its sender is not in proxy_protocol_from */
    WR_METRICS_PP_MALFORMED,     /* not a valid v1/v2 header (or cut inside it) */
    WR_METRICS_PP_TIMEOUT,       /* no complete header within header_timeout */
};

/* How an OCSP fetch for stapling ended (the `result` label). */
enum wr_metrics_ocsp_result {
    WR_METRICS_OCSP_GOOD = 0, /* verified, status good: stapled */
    WR_METRICS_OCSP_REVOKED,  /* verified, status revoked: stapled, logged as an error */
    WR_METRICS_OCSP_UNKNOWN,  /* verified, the responder does not know the cert */
    WR_METRICS_OCSP_INVALID,  /* a response that did not verify */
    WR_METRICS_OCSP_ERROR,    /* no response: DNS, connect, timeout, HTTP */
    WR_METRICS_OCSP_N_RESULTS
};

/* Everything one worker counts. Written by that worker only. */
/* What the HTTP cache did (cache.c): requests by outcome, and fills. */
enum wr_metrics_cache {
    WR_METRICS_CACHE_HIT,          /* answered from the store */
    WR_METRICS_CACHE_MISS,         /* forwarded: nothing usable stored */
    WR_METRICS_CACHE_STALE,        /* forwarded: the stored one was stale or refused */
    WR_METRICS_CACHE_BYPASS,       /* not cacheable here (method, body, upgrade) */
    WR_METRICS_CACHE_COLLAPSED,    /* waited for another request's response */
    WR_METRICS_CACHE_LOCK_TIMEOUT, /* waited cache_lock_timeout, then went upstream */
    WR_METRICS_CACHE_STALE_IF_ERROR, /* the server failed: a stale response served */
    WR_METRICS_CACHE_STORED,       /* responses that went into the store */
    WR_METRICS_CACHE_REVALIDATED,  /* a stale entry's validators got 304: freshened */
    WR_METRICS_CACHE_REPLACED,     /* ... got a new response instead */
    WR_METRICS_CACHE_DISK_HIT,     /* a miss in memory found on disk (read back) */
    WR_METRICS_CACHE_N
};

struct wr_metrics_worker {
    _Alignas(WR_METRICS_CACHE_LINE) _Atomic uint64_t bytes_in; /* read from clients */
    _Atomic uint64_t bytes_out;       /* written to clients */
    _Atomic uint64_t conns_accepted;
    _Atomic uint64_t conns_open;      /* gauge */
    _Atomic uint64_t conns_idle;      /* gauge: waiting for a request, refreshed per tick */
    _Atomic uint64_t conn_buffer_bytes; /* gauge: bytes of buffers client connections
                                           hold (read, output), refreshed per tick */
    _Atomic uint64_t proxy_buffer_bytes; /* gauge: upstream response buffers proxied
                                            exchanges hold, refreshed per tick */
    _Atomic uint64_t tls_handshakes;  /* completed */
    _Atomic uint64_t tls_resumptions; /* completed by resuming a session */
    _Atomic uint64_t tls_handshake_failures;
    _Atomic uint64_t access_log_dropped_lines; /* its log writer queue was full */
    _Atomic uint64_t pool_entries;    /* gauge: upstream pool server entries, per tick */
    _Atomic uint64_t pool_idle;       /* gauge: idle upstream connections, per tick */
    _Atomic uint64_t h2_conns;        /* connections that went HTTP/2 (ALPN h2 or h2c) */
    _Atomic uint64_t h2_requests;     /* requests (streams) answered over HTTP/2 */
    _Atomic uint64_t h2_streams_open; /* gauge: HTTP/2 streams open now */
    _Atomic uint64_t h2_goaways[WR_METRICS_H2_N_REASONS];      /* GOAWAY sent, by reason */
    _Atomic uint64_t h2_stream_errors[WR_METRICS_H2_N_REASONS]; /* RST_STREAM sent, by reason */
    /* Compression, by enum wr_coding (index 0 unused): responses, payload
     * bytes before and after coding (cached copies count each time they go
     * out); copies made for the static file cache. */
    _Atomic uint64_t compressed_responses[4];
    _Atomic uint64_t compress_in_bytes[4];
    _Atomic uint64_t compress_out_bytes[4];
    _Atomic uint64_t compress_cache_fills[4];
    _Atomic uint64_t compress_memory;   /* gauge: encoder state held now */
    _Atomic uint64_t proxy_protocol_errors[3]; /* enum wr_metrics_pp_error */
    _Atomic uint64_t auth_failures;   /* Basic auth: wrong user or password */
    _Atomic uint64_t cache[WR_METRICS_CACHE_N]; /* cached routes, by enum wr_metrics_cache */
    struct wr_metrics_hist duration;  /* client requests, first byte -> response queued */
    _Atomic uint64_t requests[WR_METRICS_MAX_ROUTES][WR_METRICS_N_CLASSES];
    struct wr_metrics_server servers[WR_METRICS_MAX_SERVERS];
};

/* The `reason` label of r ("protocol_error", "rapid_reset", ...); codes
 * past 0xd and bad values give "unknown". */
const char *wr_metrics_h2_reason_name(unsigned r);

/* Adds n to a counter this thread alone writes. */
static inline void wr_metrics_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* Sets a gauge this thread alone writes. */
static inline void wr_metrics_set(_Atomic uint64_t *g, uint64_t v)
{
    atomic_store_explicit(g, v, memory_order_relaxed);
}

/* Records one duration of us microseconds in h (single writer). */
void wr_metrics_observe(struct wr_metrics_hist *h, uint64_t us);

/*
 * Counts one finished client request: route_id is the route's metrics_id
 * (0 when no route answered), status its response status (100..599; others
 * count as 5xx), us its duration. Worker thread of w.
 */
void wr_metrics_count_request(struct wr_metrics_worker *w, unsigned route_id, int status,
                              uint64_t us);

/* The process's metrics. Fields below workers are main's alone. */
struct wr_metrics {
    struct wr_metrics_worker *workers; /* owned, n_workers, cache-line aligned */
    size_t n_workers;
    char *route_names[WR_METRICS_MAX_ROUTES]; /* owned; [0] is "" (no route) */
    size_t n_routes;                  /* ids handed out so far, >= 1 */
    char *server_upstreams[WR_METRICS_MAX_SERVERS]; /* owned; [0] unused */
    char *server_addrs[WR_METRICS_MAX_SERVERS];     /* owned */
    bool is_server_current[WR_METRICS_MAX_SERVERS]; /* in the running snapshot */
    bool is_server_down[WR_METRICS_MAX_SERVERS];    /* set by health checks */
    size_t n_servers;                 /* ids handed out so far, >= 1 */
    uint64_t reloads, reload_failures;
    uint64_t dns_resolutions, dns_failures, dns_changes; /* resolve.h: lookups, failed
                                                            ones, address set changes */
    uint64_t ocsp_fetches[WR_METRICS_OCSP_N_RESULTS]; /* stapler.h: fetches by result */
    uint64_t ocsp_stapled;            /* gauge: certificates stapling a fetched response */
    uint64_t ocsp_next_update_s;      /* gauge: the earliest nextUpdate of those (unix
                                         seconds); 0: none, or none has one */
    uint64_t start_unix_s;            /* wall clock at start */
    uint64_t start_mono_ms;           /* wr_clock_now_ms() at start */
};

/* A new metrics object for n_workers (>= 1) workers, all zero, or NULL.
 * Main thread. */
struct wr_metrics *wr_metrics_new(size_t n_workers);

/* Frees m once no worker runs any more. NULL ok. */
void wr_metrics_free(struct wr_metrics *m);

/* Worker i's block (i < n_workers). */
struct wr_metrics_worker *wr_metrics_worker(struct wr_metrics *m, size_t i);

/*
 * Gives every route and upstream server of cfg its metrics_id (reusing the
 * id of a name seen before) and marks which servers are current. Call on a
 * snapshot before it is published (it writes into it). Returns 0, or -1 on
 * allocation failure (ids past the failure stay 0 or overflow). Main.
 */
int wr_metrics_register(struct wr_metrics *m, struct wr_config *cfg);

/* Marks server id up or down (health checks). Main thread. */
void wr_metrics_set_server_down(struct wr_metrics *m, unsigned server_id, bool is_down);

/* Sums over every worker, for /status and sd_notify STATUS=. */
struct wr_metrics_totals {
    uint64_t requests, conns_open, conns_idle, conns_accepted, bytes_in, bytes_out;
    uint64_t by_class[WR_METRICS_N_CLASSES];
};

/* Fills t from m. Any thread (reads are relaxed). */
void wr_metrics_sum(const struct wr_metrics *m, struct wr_metrics_totals *t);

/* Requests per second over a sliding window: a ring of (time, total)
 * samples that main adds to once a second. */
#define WR_METRICS_RATE_SLOTS 16
struct wr_metrics_rate {
    uint64_t at_ms[WR_METRICS_RATE_SLOTS];
    uint64_t value[WR_METRICS_RATE_SLOTS];
    size_t n, next;
};

/* Adds a sample (now_ms must not go backwards). */
void wr_metrics_rate_add(struct wr_metrics_rate *r, uint64_t now_ms, uint64_t value);

/* Increase per second between the newest sample and the oldest one at most
 * window_ms older; 0 with fewer than two samples. */
double wr_metrics_rate_per_sec(const struct wr_metrics_rate *r, uint64_t window_ms);

/* A growable text buffer for exposition; is_oom sticks once an allocation
 * failed (the text is then incomplete and must not be served). */
struct wr_metrics_text {
    char *buf; /* owned, NUL-terminated while len > 0 */
    size_t len, cap;
    bool is_oom;
};

void wr_metrics_text_fini(struct wr_metrics_text *t);

/* Appends printf-style text. */
void wr_metrics_text_printf(struct wr_metrics_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends s as a Prometheus label value: \ " and newline escaped. */
void wr_metrics_text_label(struct wr_metrics_text *t, const char *s);

/* Appends s as the inside of a JSON string (quotes not included). */
void wr_metrics_text_json(struct wr_metrics_text *t, const char *s);

/* Appends the Prometheus text exposition (format 0.0.4) of m. Main. */
void wr_metrics_format_prometheus(const struct wr_metrics *m, struct wr_metrics_text *out);

/* Appends the /status JSON object (one line) of m; rate may be NULL. Main. */
void wr_metrics_format_status(const struct wr_metrics *m, const struct wr_metrics_rate *rate,
                              uint64_t now_mono_ms, struct wr_metrics_text *out);

#endif
