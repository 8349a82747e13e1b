/*
 * handler: one request (struct wr_exchange) between a protocol front end
 * and the handler that answers it.
 *
 * A front end (HTTP/1 today: conn.c; HTTP/2 next) parses a request, picks
 * its route and drives the route's handler (static, return, redirect,
 * proxy) through the vtable below, in the manner of h2o's generators: the
 * handler starts a response, produces body bytes while the sink has room
 * (proceed), takes the request body (recv_body), and is disposed (stop).
 * The handler answers through the sink functions (wr_exchange_respond,
 * _send_head, _send, _body_room, _end, _upgrade), which the front end
 * implements; it never sees a socket, a connection or HTTP/1 framing: the
 * head is struct wr_resp fields, the body is payload bytes. The route's
 * add_header fields are added by the front end to a wr_exchange_respond
 * head; a handler that sends its head later adds them itself (ex->vars
 * die with start).
 *
 * Per worker, each handler keeps its own state (the open-file cache for
 * static, the upstream pool and balancer for proxy) through worker_init,
 * worker_fini, config_changed, snapshots_in_use and tick: the front end
 * holds none of it.
 *
 * Ownership and reentrancy (enforced: asserts in debug builds, and the
 * wr_exchange_* driver functions never call into a disposed exchange):
 *  1. Sink calls never call the handler back synchronously: proceed,
 *     recv_body after body_room, and stop are delivered from the front
 *     end's own next event, never from inside a wr_exchange_* sink call.
 *  2. Only the front end frees (or reuses) an exchange, and only after stop
 *     returned; stop is called exactly once for every started exchange
 *     (also when start returned an error status), and never from inside a
 *     handler callback.
 *  3. After stop the exchange is disposed (is_disposed): no callback runs
 *     on it again and the handler must not touch it; the front end checks
 *     the flag after every callback it makes.
 *  4. After wr_exchange_end (or wr_exchange_respond) the handler makes no
 *     more sink calls; it waits for stop.
 * Everything runs on the worker thread that owns the front end.
 * Layer 3.
 */
#ifndef WEIR_HANDLER_H
#define WEIR_HANDLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "weir/config.h"
#include "weir/http_parser.h"
#include "weir/http_resp.h"
#include "weir/log.h"
#include "weir/router.h"
#include "weir/tmpl.h"

struct event_base;
struct wr_exchange;
struct wr_handler_worker;
struct wr_metrics_worker;
struct wr_stream;
struct wr_timer_wheel;

/* Most iovecs one wr_exchange_send passes. */
#define WR_EXCHANGE_MAX_IOV 4

/* How an exchange ended (wr_exchange_end's how, when not an HTTP status). */
enum wr_exchange_end {
    WR_EXCHANGE_COMPLETE = 0, /* the response is complete; the connection may go on */
    WR_EXCHANGE_BROKEN = 1,   /* started but cannot be completed: the client sees a cut */
};

/* What a worker offers its handlers. Borrowed: lives as long as the worker. */
struct wr_handler_env {
    struct event_base *base;
    struct wr_timer_wheel *wheel;       /* the worker's timers (timer.h) */
    int worker_id;
    const struct wr_resp_clock *clock;  /* Date and Server lines, per second */
    struct wr_metrics_worker *metrics;  /* this worker's counters; NULL in tests */
    const struct wr_config *cfg;        /* the current snapshot (updated before
                                           config_changed is called) */
};

/* One handler's per-worker slot. */
struct wr_handler_worker {
    const struct wr_handler *handler;
    const struct wr_handler_env *env; /* borrowed */
    void *state;                      /* owned by the handler (worker_init/fini) */
    const struct wr_handlers *peers;  /* the worker's other handlers (the cache
                                         runs proxy exchanges); slots before
                                         this one are set up already */
};

/* The client connection's stream after a 101 (wr_exchange_upgrade):
 * borrowed from the front end, which keeps owning it and closes it once
 * the handler ended the exchange and was stopped. */
struct wr_exchange_tunnel {
    struct wr_stream *client;
    const char *pending;      /* bytes already read from the client past the
                                 request head; valid during the call only */
    size_t pending_len;
};

struct wr_handler {
    const char *name;
    /* Starts answering ex. Returns 0 when a response was started (or
     * completed: a one-shot handler may call wr_exchange_respond here) or
     * will be (async: the handler calls the sink later), else an HTTP
     * status >= 400 for the front end to answer with its error page (the
     * handler then made no sink call). */
    int (*start)(struct wr_exchange *ex);
    /* The sink wrote everything the last wr_exchange_send that returned
     * false gave it: produce more. NULL: never needed. */
    void (*proceed)(struct wr_exchange *ex);
    /* Request body bytes, de-framed (is_last with the final ones, possibly
     * n == 0). Returns bytes taken, or -1 for none; fewer than n means the
     * handler will call wr_exchange_body_room when it can take more. Once
     * the handler does not want the body any more, every byte counts as
     * taken. NULL: the body is read and discarded by the front end. */
    ssize_t (*recv_body)(struct wr_exchange *ex, const char *p, size_t n, bool is_last);
    /* Whether the handler can take body bytes now, so a client waiting for
     * 100 Continue may be invited; when false, wr_exchange_body_room
     * follows once it can. NULL: true. */
    bool (*can_recv_body)(struct wr_exchange *ex);
    /* After wr_exchange_upgrade: the 101 head went out and the front end
     * hands its stream over until the handler ends the exchange. */
    void (*upgraded)(struct wr_exchange *ex, const struct wr_exchange_tunnel *t);
    /* Dispose: the response is complete, or the client went away. Frees
     * everything the handler holds for ex. NULL: nothing to dispose. */
    void (*stop)(struct wr_exchange *ex);

    /* Per worker (all optional): set up hw->state (0, or -1 when out of
     * memory), tear it down, a new current snapshot (0, or -1 to refuse the
     * reload: nothing changed), the snapshots the worker's connections
     * still hold (cfgs[0] the current one; borrowed for the call), and the
     * worker's periodic tick. */
    int (*worker_init)(struct wr_handler_worker *hw);
    void (*worker_fini)(struct wr_handler_worker *hw);
    int (*config_changed)(struct wr_handler_worker *hw, const struct wr_config *cfg);
    void (*snapshots_in_use)(struct wr_handler_worker *hw, const struct wr_config *const *cfgs,
                             size_t n);
    void (*tick)(struct wr_handler_worker *hw, uint64_t now_ms);
};

/* The front end's side of an exchange: what the sink calls do (see the
 * wr_exchange_* functions below for their contracts). */
struct wr_exchange_sink {
    void (*respond)(struct wr_exchange *ex);
    void (*send_head)(struct wr_exchange *ex);
    bool (*send)(struct wr_exchange *ex, const struct iovec *iov, int n, bool is_final);
    void (*body_room)(struct wr_exchange *ex);
    void (*end)(struct wr_exchange *ex, int how);
    void (*upgrade)(struct wr_exchange *ex, const struct iovec *iov, int n);
};

/* What the access log and metrics say about the exchange: the handler
 * fills the upstream fields (strings borrowed from it until stop). */
struct wr_exchange_log {
    const char *upstream_addr;   /* NULL: not proxied */
    const char *upstream_status;
    uint64_t upstream_time_us;
    int status;                  /* the status relayed (0 before a head) */
    uint64_t body_bytes;         /* payload bytes given to the sink so far */
};

/* An exchange that serves an error page (error_page.h): the front end
 * started the page route's handler on the internal request; the answer
 * goes out with the original status. Set by the front end, read by
 * exchange.c and by a handler that builds its own head (proxy). */
struct wr_exchange_error {
    int status;                   /* 0: an ordinary exchange; else the original status */
    const struct wr_route *route; /* borrowed: the route that answered status (NULL: none
                                     matched); its response rules apply, not the page's */
    const char *allow;            /* 405: the Allow value (the front end's copy, valid
                                     until stop), else NULL */
    uint64_t retry_after_s;       /* 429: the Retry-After seconds; 0: none */
};

struct wr_exchange {
    /* The request, borrowed from the front end. req, route, clock,
     * log_subject and the client facts stay valid until stop; match, path,
     * vars and scratch only during start (copy what must outlive it). */
    const struct wr_http_request *req;
    const struct wr_route *route;
    const struct wr_router_match *match;
    struct wr_str path;          /* normalised path, the router's subject */
    const struct wr_tmpl_vars *vars;
    const struct wr_resp_clock *clock;
    struct wr_resp *resp;        /* initialised by the front end on memory it
                                    owns; a handler may re-init it on its own
                                    buffer (valid until stop) for a long head */
    char *scratch;               /* per-worker scratch, during start only */
    size_t scratch_cap;
    const struct wr_log_request *log_subject; /* names the request in error-log lines */
    int worker_id;               /* for wr_log_request */
    uint64_t conn_id;
    struct wr_str client_addr;   /* textual peer address */
    bool is_tls;                 /* the client's connection is TLS */
    bool has_body;               /* a request body follows the head */
    bool is_keep_alive;          /* the client's connection may go on */
    size_t max_head_bytes;       /* [limits] max_header_size of the snapshot */
    struct wr_exchange_error error; /* status 0 unless this serves an error page */
    /* Compression (compress_filter.h): the worker's filter state and the
     * snapshot's [compression], set by the front end (zw NULL: never
     * compressed); zf is the filter while it codes the body (exchange.c). */
    struct wr_zfilter_worker *zw;
    const struct wr_compression_cfg *compression;
    struct wr_zfilter *zf;
    /* The cache's (cache.h), for the proxy exchange it runs inside its own:
     * with is_start_deferred, the proxy's start prepares the request (while
     * the vars live) but contacts no server until wr_proxy_go; the proxy
     * points upstream_resp at the server's parsed head before send_head
     * (valid until the exchange's next callback). */
    bool is_start_deferred;
    const struct wr_http_response *upstream_resp;
    /* The cache's too: with is_cache_fill the proxy asks for the whole
     * representation to store (the client's conditional and Range fields
     * stay behind: the cache answers them), and upstream_fields (whole
     * field lines, e.g. its validators) go up with the request. */
    bool is_cache_fill;
    struct wr_str upstream_fields;
    /* The snapshot route belongs to (the connection's): a handler whose
     * work outlives the exchange (a cache fill the client left) takes a
     * reference. NULL where there is none (weir route). */
    const struct wr_config *cfg;

    /* The handler's. */
    const struct wr_handler *handler;
    void *worker_state;          /* borrowed: the handler's per-worker state */
    void *state;                 /* the handler's per-exchange state, or NULL */
    struct wr_exchange_log log;

    /* The front end's. */
    const struct wr_exchange_sink *sink;
    void *front;                 /* the front end's context (its connection) */

    /* Life (exchange.c keeps them; the front end and handler read). */
    bool is_started;             /* wr_exchange_start ran */
    bool is_head_sent;           /* respond, send_head or upgrade was called */
    bool is_ended;               /* respond or end was called */
    bool is_disposed;            /* stop ran: nothing may touch the handler side */
    bool is_in_sink;             /* debug: inside a sink call */
    bool is_in_handler;          /* debug: inside a handler callback */
    int end;                     /* what end said (valid once is_ended) */
};

/* ---- the route's handler ---------------------------------------------- */

/* The handler for action (enum wr_route_action), or NULL for none. Static
 * storage. */
const struct wr_handler *wr_handler_for(int action);

/* A worker's handlers: one slot per route action, and the cache's (a proxy
 * route with cache = NAME: cache.h). */
#define WR_HANDLER_SLOTS 8
#define WR_HANDLER_CACHE 6

/* The slot of the handler that answers route's requests. */
int wr_handler_slot(const struct wr_route *route);
struct wr_handlers {
    struct wr_handler_worker slots[WR_HANDLER_SLOTS];
};

/* Runs every handler's worker_init with env (borrowed, outlives hs).
 * Returns 0, or -1 (everything set up so far torn down again). */
int wr_handlers_init(struct wr_handlers *hs, const struct wr_handler_env *env);

/* Runs every handler's worker_fini (exchanges must all be stopped). */
void wr_handlers_fini(struct wr_handlers *hs);

/* A new current snapshot: config_changed for each handler. Returns -1 when
 * one refused (out of memory): the caller keeps the old snapshot. */
int wr_handlers_config_changed(struct wr_handlers *hs, const struct wr_config *cfg);

/* The snapshots still in use changed (cfgs[0] current; borrowed). */
void wr_handlers_snapshots_in_use(struct wr_handlers *hs, const struct wr_config *const *cfgs,
                                  size_t n);

/* The worker's tick, for every handler. */
void wr_handlers_tick(struct wr_handlers *hs, uint64_t now_ms);

/* The per-worker state of action's handler (NULL when none). */
void *wr_handlers_state(const struct wr_handlers *hs, int action);

/* ---- error pages ------------------------------------------------------- */

/* The route whose response rules (add_header, set_response_header,
 * hide_header) ex's answer gets: ex->route, or for an error page the
 * original route (an empty rule set when none matched). Never NULL. */
const struct wr_route *wr_exchange_rules_route(const struct wr_exchange *ex);

/* The status ex's answer of status goes out with: an error page's
 * original status, else status itself. */
int wr_exchange_answer_status(const struct wr_exchange *ex, int status);

/*
 * Adds to r the fields weir gives an error answer of status itself:
 * Allow for 405, Retry-After for 429 (when retry_after_s), and for 401 the
 * route's WWW-Authenticate (route NULL: none). The front ends' built-in
 * pages and error pages alike.
 */
void wr_exchange_error_fields(struct wr_resp *r, const struct wr_exchange_error *e);

/* ---- driving an exchange (the front end) ------------------------------ */

/*
 * Prepares ex (whose request fields the caller set) for handler h with its
 * per-worker state, answering through sink/front. Clears the rest.
 */
void wr_exchange_init(struct wr_exchange *ex, const struct wr_handler *h, void *worker_state,
                      const struct wr_exchange_sink *sink, void *front);

/* Calls the handler's start once. Returns its result (0, or a status). */
int wr_exchange_start(struct wr_exchange *ex);

/* The sink drained what the handler gave it: proceed, unless disposed. */
void wr_exchange_proceed(struct wr_exchange *ex);

/* Request body to the handler (recv_body's contract). A disposed or ended
 * exchange, or a handler without recv_body, takes every byte. */
ssize_t wr_exchange_recv_body(struct wr_exchange *ex, const char *p, size_t n, bool is_last);

/* Whether the handler takes the request body at all (has recv_body). */
bool wr_exchange_wants_body(const struct wr_exchange *ex);

/* can_recv_body's contract; false once ended or disposed. */
bool wr_exchange_can_recv_body(struct wr_exchange *ex);

/* Hands the client stream over after a 101 (upgraded's contract). */
void wr_exchange_upgraded(struct wr_exchange *ex, const struct wr_exchange_tunnel *t);

/* Disposes ex: the handler's stop, once. Never from inside a callback.
 * Afterwards the front end may free or reuse ex. */
void wr_exchange_stop(struct wr_exchange *ex);

/* ---- answering (the handler) ------------------------------------------ */

/*
 * The whole response at once: ex->resp's head and its body (memory or
 * file). The front end takes over the body (file descriptor, reference)
 * and finishes the head; the exchange is then ended (complete). For
 * one-shot handlers, typically from start. On an error page (ex->error),
 * a 200 goes out with the original status and its error fields; any other
 * status is not the page: its body is dropped and the exchange ends with
 * the original status instead (the front end answers its built-in page).
 */
void wr_exchange_respond(struct wr_exchange *ex);

/*
 * The head in ex->resp (status and fields; has_length/body_len when the
 * body's length is known). Body bytes follow with wr_exchange_send; the
 * front end frames them. ex->resp's buffer stays borrowed until stop. On
 * an error page the head must be a 200 (the handler ends with a status
 * otherwise, see wr_exchange_end): it goes out with the original status
 * and its error fields.
 */
void wr_exchange_send_head(struct wr_exchange *ex);

/*
 * Body payload (n <= WR_EXCHANGE_MAX_IOV; is_final: the body ends with
 * these bytes). Returns true when the sink is done with iov's memory
 * already; false: the memory stays borrowed until the front end calls
 * proceed (from its next event, never from inside this call).
 */
bool wr_exchange_send(struct wr_exchange *ex, const struct iovec *iov, int n, bool is_final);

/* The handler can take request body again after recv_body took less. */
void wr_exchange_body_room(struct wr_exchange *ex);

/*
 * The handler is done: WR_EXCHANGE_COMPLETE (a body with no is_final send
 * is ended by the front end), WR_EXCHANGE_BROKEN, or an HTTP status >= 300
 * before any head (the front end answers its page, or the route's
 * error_page; 3xx only for an upstream status proxy_intercept_errors
 * intercepts). stop follows.
 */
void wr_exchange_end(struct wr_exchange *ex, int how);

/*
 * A 101 head in ex->resp (with its Upgrade field), then iov: bytes already
 * received from the server behind its head (borrowed until proceed or
 * upgraded). The front end writes them, then calls upgraded.
 */
void wr_exchange_upgrade(struct wr_exchange *ex, const struct iovec *iov, int n);

#endif
