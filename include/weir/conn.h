/*
 * conn: one client connection from accept to close.
 *
 * struct wr_conns is a worker's set of connections and everything they share
 * on that worker (event base, config snapshot, clock, access log, buffer free
 * lists). Worker owns it and drives it; conn never sees struct wr_worker.
 * Everything here runs on the owning worker's thread only.
 * Layer 4.
 */
#ifndef WEIR_CONN_H
#define WEIR_CONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "weir/buf_pool.h"
#include "weir/config.h"
#include "weir/compress_filter.h"
#include "weir/handler.h"
#include "weir/http_resp.h"
#include "weir/log.h"
#include "weir/metrics.h"
#include "weir/router.h"
#include "weir/timer.h"

struct event_base;
struct wr_conn;
struct wr_stream;
struct wr_conn_io;
struct wr_conn_exchange;
struct wr_stream_stage;
struct wr_limits;

/* A snapshot this worker still serves under, and how many of its open
 * connections hold it (they started under it). */
struct wr_conns_snapshot {
    const struct wr_config *cfg; /* borrowed: its connections (and, for the current
                                    one, cs) hold references */
    uint64_t n_conns;
};


/* An error page's internal request (error_page.h) and the copy of the
 * Allow value its answer keeps: from the worker's pool (error_reqs) while
 * an exchange serves an error page, so that no exchange or stream struct
 * carries a second request for the rare error that has a page. */
struct wr_conns_error_req {
    struct wr_http_request req;
    char allow[256];
    /* HTTP/2: the upstream fields of the exchange the page replaced (a
     * proxy's 502, an intercepted status), for the access log. */
    char upstream_addr[512];
    char upstream_status[160];
};

struct wr_conns {
    int worker_id;
    struct event_base *base;      /* borrowed: the worker's */
    struct wr_config *cfg;        /* ref held: snapshot new connections start under */
    atomic_uint_fast64_t *n_process_conns; /* borrowed: shared, whole process */
    struct wr_limits *limits;     /* borrowed: shared, whole process (per-address
                                     connection counts, request rates) */
    struct wr_metrics_worker *metrics; /* borrowed: this worker's counters; set by the
                                          owner right after wr_conns_init, never NULL
                                          once a connection is taken */

    struct wr_resp_clock clock;
    struct wr_access_log access_log; /* [server]'s */
    struct wr_access_log route_logs[WR_ROUTE_ACCESS_LOGS_MAX]; /* routes' own files */
    size_t n_route_logs;
    bool is_logging;                 /* some access log is open: requests are timed
                                        to the microsecond ($request_time) */
    struct wr_router_scratch *router; /* owned */
    struct wr_handler_env henv;   /* what the handlers get from this worker */
    struct wr_zfilter_worker zw;  /* compression's per-worker state (compress_filter.h) */
    struct wr_auth_cache *auth;   /* owned: Basic auth's cache, made on first use */
    struct wr_handlers handlers;  /* owned: each handler's per-worker state
                                     (open-file cache, upstream pool...) */
    char *scratch;                /* owned: normalised path, handler scratch */
    struct wr_stream_stage *stage; /* owned: TLS write staging of the client streams */
    size_t scratch_cap;
    struct wr_router_match match; /* the request being dispatched */
    struct wr_router_match error_match; /* its error page's, while that is dispatched */
    char host_buf[256];           /* $host: lower-case, port removed */

    /* The snapshots in use, current (cfg) first; an old one leaves with its
     * last connection. Handlers hear of the set (snapshots_in_use: the
     * proxy's pool keeps only the server entries they name). */
    struct wr_conns_snapshot *snapshots; /* owned */
    size_t n_snapshots, cap_snapshots;
    bool is_snapshots_changed;    /* the set changed: tell handlers on the next tick */

    struct wr_timer_wheel wheel;  /* deadlines of connections and proxied exchanges */
    struct wr_conn *live;         /* every open connection (doubly linked) */
    uint64_t n_live;
    uint64_t n_idle;              /* waiting for a request, holding no buffer (conns_idle) */
    struct wr_conn *free_conns;   /* closed structs kept for reuse */
    size_t n_free_conns;
    /* Buffers taken on demand and given back (buf_pool: bounded, trimmed
     * once a second by the tick): a first small read buffer, a full one
     * (a head that did not fit, a body), and the output and request state
     * of a connection that answers. */
    struct wr_buf_pool rbuf_first;
    struct wr_buf_pool rbuf_full; /* blocks for cfg's max_header_size */
    struct wr_buf_pool io_pool;
    struct wr_buf_pool h2_rbufs;  /* HTTP/2 read buffers (WR_H2_RBUF_BYTES), per read event */
    struct wr_buf_pool h2_wbufs;  /* HTTP/2 output buffers (WR_H2_WBUF_BYTES), while
                                     frames wait to be written */
    struct wr_buf_pool h2_streams; /* HTTP/2 stream structs (wr_h2_stream_bytes()) */
    struct wr_buf_pool h2_heads;  /* HTTP/2 response heads (WR_H2_HEAD_BYTES), while
                                     a stream's head is built */
    struct wr_buf_pool error_reqs; /* struct wr_conns_error_req, while an exchange
                                      serves an error page */
    uint64_t buffer_bytes;        /* held by connections now (weir_conn_buffer_bytes) */
    unsigned n_ticks;             /* ticks since the free lists were last trimmed */
    struct wr_conn_exchange *free_exchanges; /* exchange structs kept for reuse */
    size_t n_free_exchanges;

    uint64_t next_conn_id;        /* ids are worker_id + k * 1024: unique per process */
    uint64_t rng[2];              /* xorshift state for request ids */
    bool is_draining;             /* set by wr_conns_drain, never cleared */

    uint64_t n_requests;          /* counters, read by metrics later */
    uint64_t n_accepted;
};

/*
 * The error page for e->status (error_page.h): the page its route's
 * error_page list names (e->route NULL: [server]'s), routed as the
 * internal request made from req (HTTP/1 or HTTP/2) with host ($host) and
 * is_tls. The request goes into a block of cs->error_reqs, its normalised
 * path into cs->scratch + at (*path), its route into cs->error_match; a
 * 405's Allow (e->allow) is copied into the block and e->allow points at
 * the copy. Returns the block (the caller gives it back with
 * wr_conns_error_req_give once the exchange is stopped), or NULL when
 * there is no page, no route takes its path (or it does not normalise or
 * fit the scratch), or no memory: the built-in page answers then.
 */
struct wr_conns_error_req *wr_conns_error_page(struct wr_conns *cs, const struct wr_config *cfg,
                                               const struct wr_http_request *req,
                                               struct wr_exchange_error *e, struct wr_str host,
                                               bool is_tls, size_t at, struct wr_str *path);

/* Gives er (NULL: nothing) back to cs's pool. */
void wr_conns_error_req_give(struct wr_conns *cs, struct wr_conns_error_req *er);

/*
 * Prepares cs for worker_id on base, taking a reference on cfg. logs: the
 * access log descriptors (-1: off). n_process_conns and limits
 * are shared by every worker and outlive cs. Returns 0, or -1 on
 * allocation failure (cs then holds nothing).
 */
int wr_conns_init(struct wr_conns *cs, int worker_id, struct event_base *base,
                  struct wr_config *cfg, const struct wr_access_log_fds *logs,
                  atomic_uint_fast64_t *n_process_conns, struct wr_limits *limits);

/* The access log a request answered by route (NULL: none) goes to:
 * [server]'s, the route's own file, or NULL for access_log = off. */
struct wr_access_log *wr_conns_access_log(struct wr_conns *cs, const struct wr_route *route);

/*
 * Switches cs to cfg, taking over one reference: connections accepted from
 * now on use it; open ones finish on the snapshot they started with.
 */
void wr_conns_set_config(struct wr_conns *cs, struct wr_config *cfg);

/*
 * Routes req for a front end of cs (cfg: the connection's snapshot; s: its
 * stream, whose TLS decides the scheme and the 421 for a host its
 * certificate does not answer): normalises the path into cs->scratch
 * (*path), picks the route into cs->match. Returns 0, or the status to
 * answer (400, 404, 405, 421; 200 for an OPTIONS * no route takes). The
 * same steps `weir route` runs (router.c).
 */
int wr_conns_select_route(struct wr_conns *cs, const struct wr_config *cfg,
                          const struct wr_stream *s, const struct wr_http_request *req,
                          struct wr_str host, struct wr_str *path);

/* A fresh $request_id (32 hex digits and a NUL into out[33]): xorshift128+
 * on the worker's state; unique, not secret. For every front end of cs. */
void wr_conns_request_id(struct wr_conns *cs, char *out);

struct wr_tls_conn;

/* A request's client certificate, for the template variables (the
 * buffers back vars' strings: keep cert alive as long as vars). */
struct wr_conns_client_cert {
    bool is_verified;
    char subject[256];
    char fingerprint[65];
};

/* Fills cert and vars' ssl_client_* from tls (NULL: a plain connection). */
void wr_conns_client_cert(struct wr_conns_client_cert *cert, const struct wr_tls_conn *tls,
                          struct wr_tmpl_vars *vars);

/*
 * A route's auth_basic for a request from peer (its text; peer_key its
 * limits key, 0 for none): 0 when the credentials check, 401 when they are
 * missing or wrong, 429 (with *retry_after_s) when the client failed more
 * than 10 times a minute. Failures are counted and logged (throttled).
 */
int wr_conns_check_auth(struct wr_conns *cs, const struct wr_route *route,
                        const struct wr_http_request *req, uint64_t peer_key, const char *peer,
                        uint64_t *retry_after_s);

/* Closes every connection and frees what cs owns. */
void wr_conns_fini(struct wr_conns *cs);

/* What a listener says about the connections it accepts (flags). */
enum wr_conn_flag {
    WR_CONN_TLS = 1u << 0,            /* a TLS listener (cs->cfg->tls_set is set) */
    WR_CONN_H2C = 1u << 1,            /* HTTP/2 with prior knowledge too */
    WR_CONN_PROXY_PROTOCOL = 1u << 2, /* a PROXY v1/v2 header comes first */
    WR_CONN_DATA_FIRST = 1u << 3,     /* accepted only once bytes came (TCP_DEFER_ACCEPT) */
};

/*
 * Takes ownership of an accepted, non-blocking socket fd and starts serving
 * it as flags (enum wr_conn_flag) say. The process-wide count must already
 * include it (the caller counted it against max_connections); it is
 * decremented when the connection closes. A client over
 * max_connections_per_ip, or a PROXY sender [server] proxy_protocol_from
 * does not list, is closed at once instead (behind a PROXY header, the
 * per-address limit counts the client the header names).
 */
void wr_conn_take(struct wr_conns *cs, int fd, const struct sockaddr *peer, socklen_t peer_len,
                  unsigned flags);

/*
 * Periodic work (the worker calls it every 100 ms or so): runs the timer
 * wheel (connections and proxied exchanges past their deadlines; a
 * timeout fires at most one tick late), refreshes the clock, flushes the
 * access log. Its cost does not grow with connections that are not due.
 */
void wr_conns_tick(struct wr_conns *cs);

/*
 * Starts a graceful drain: idle keep-alive connections close now; busy ones
 * finish their current request, answer with Connection: close and close.
 */
void wr_conns_drain(struct wr_conns *cs);

/*
 * A reload removed the listening address a (the listener's socket closes
 * once every worker let go of it): each HTTP/2 connection accepted on it
 * gets GOAWAY (NO_ERROR) and closes once its streams in flight finished
 * (RFC 9113 §6.8), as on a drain. HTTP/1 connections go on until they end
 * (keepalive_timeout bounds an idle one). Worker thread.
 */
void wr_conns_listen_removed(struct wr_conns *cs, const struct wr_listen_addr *a);

#endif
