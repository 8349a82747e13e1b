/*
 * proxy: one proxied exchange as a handler (handler.h) — pick a server, get
 * a connection (pooled or new), send the request head and stream the body
 * up, read the response head, stream the response body down, retry when it
 * is safe, and give the connection back to the pool when both sides allow
 * it.
 *
 * The front end owns the client side and drives the exchange through
 * wr_proxy_handler: start, recv_body (request body, already de-framed),
 * can_recv_body (may a client waiting for 100 Continue be invited),
 * proceed (the sink wrote what the last send gave it), upgraded (after a
 * 101: the client's stream for the WebSocket relay), stop. The proxy
 * answers through the exchange's sink: the response head as fields in
 * ex->resp (built on its own buffer), payload bytes, and the end; it never
 * frames for the client (Content-Length vs chunked vs the close is the
 * front end's) and never assumes HTTP/1 on the client side. The upstream
 * side is HTTP/1.1, framed here. The access log's upstream fields reach
 * the front end through ex->log.
 * Worker thread only. Layer 3.
 */
#ifndef WEIR_PROXY_H
#define WEIR_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "weir/buf_pool.h"
#include "weir/handler.h"
#include "weir/http_resp.h"
#include "weir/metrics.h"
#include "weir/pool.h"
#include "weir/timer.h"

struct wr_balancer;
struct wr_proxy;
struct wr_timer_wheel;

/* What a worker's proxies share: the proxy handler's per-worker state
 * (wr_proxy_handler's worker_init makes it). */
struct wr_proxy_env {
    const struct wr_handler_env *henv; /* borrowed: the worker's (metrics, clock) */
    struct event_base *base;
    struct wr_timer_wheel *wheel; /* borrowed: the worker's; exchanges' deadlines */
    struct wr_pool *pool;         /* owned: upstream connections */
    struct wr_balancer *balancer; /* owned: for the worker's current snapshot */
    const struct wr_resp_clock *clock;
    int worker_id;
    bool is_server_header_on;     /* drop the upstream's Server field */
    struct wr_proxy *free_list;   /* exchanges kept for reuse */
    size_t n_free;
    size_t low_free;              /* fewest on free_list since the last trim */
    uint64_t trimmed_ms;          /* when free_list was last trimmed */
    struct wr_buf_pool ubufs;     /* upstream response buffers, taken on the first
                                     read of a response (not at exchange start) */
    uint64_t ubuf_bytes;          /* held by exchanges now (weir_proxy_buffer_bytes) */
    struct wr_log_budget warn_budget; /* upstream warnings a second (proxy.c) */
};

/* The proxy action's handler. Per worker: worker_init makes the env (pool,
 * balancer); config_changed rebuilds the balancer; snapshots_in_use sweeps
 * the pool; tick expires idle pooled connections. */
extern const struct wr_handler wr_proxy_handler;

/* Starts the first attempt of an exchange the proxy's start prepared with
 * ex->is_start_deferred (the cache's waiters): from an event of the
 * worker, never from inside a callback of ex. May end ex at once (no
 * server: 502). Nothing when not deferred, or ended. */
void wr_proxy_go(struct wr_exchange *ex);

/* The client of ex's front end is gone but the exchange goes on (a cache
 * fill others read): forgets what was borrowed from the client's
 * request. Only once the response head came (no retry can follow). */
void wr_proxy_detach(struct wr_exchange *ex);

/*
 * The request-target the exchange ex would send upstream (rewrite, else
 * strip_prefix, else the target as received in origin form; the query
 * byte for byte), written into buf. Returns its length, or -1 when it does
 * not fit in cap bytes. Pure; for `weir route`, which shows it.
 */
ssize_t wr_proxy_target(const struct wr_exchange *ex, char *buf, size_t cap);

/* True when a field name has '_' in it: such fields are not forwarded unless
 * the route's underscores_in_headers is on (CGI-style backends map '-' and
 * '_' to one variable, so "Content_Length" could pass for Content-Length). */
bool wr_proxy_is_underscore_name(struct wr_str name);

/* True for the fields a proxy must not forward (RFC 9110 §7.6.1): the fixed
 * hop-by-hop names and every name listed by a Connection field in fields. */
bool wr_proxy_is_hop_header(struct wr_str name, const struct wr_http_header *fields, size_t n);

#endif
