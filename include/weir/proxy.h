/*
 * proxy: one proxied exchange — pick a server, get a connection (pooled or
 * new), send the request head and stream the body up, read the response
 * head, stream the response body down, retry when it is safe, and give the
 * connection back to the pool when both sides allow it.
 *
 * conn owns the client socket, proxy the upstream one. They talk through a
 * narrow contract:
 *  - conn -> proxy: wr_proxy_start, wr_proxy_send_body (request body bytes,
 *    already de-chunked), wr_proxy_drained (everything the proxy emitted has
 *    been written to the client), wr_proxy_free.
 *  - the worker's timer wheel -> proxy: an exchange's deadlines (connect,
 *    send, read, tunnel idle) are a timer on env->wheel; when one passes the
 *    exchange ends with done() from inside wr_timer_wheel_run.
 *  - proxy -> conn (struct wr_proxy_ops): emit (queue response bytes, which
 *    stay borrowed from the proxy until drained), body_room (the server can
 *    take more request body), done (the exchange ended: response complete,
 *    an error status to answer instead, or a broken response).
 * Reentrancy: done() is always the last thing a proxy function does before
 * returning, so conn may free the exchange inside it. conn never frees the
 * exchange from inside emit() or body_room().
 * Worker thread only. Layer 3.
 */
#ifndef WEIR_PROXY_H
#define WEIR_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "weir/http_resp.h"
#include "weir/metrics.h"
#include "weir/pool.h"
#include "weir/timer.h"

struct wr_balancer;
struct wr_proxy;

/* Most iovecs one emit passes; conn keeps this many output slots free. */
#define WR_PROXY_MAX_IOV 8

/* How an exchange ended (done's status argument when not an HTTP status). */
enum wr_proxy_end {
    WR_PROXY_COMPLETE = 0, /* response fully relayed; the client connection may go on */
    WR_PROXY_BROKEN = 1,   /* response started but cannot be completed: close the client */
    WR_PROXY_TUNNEL = 2,   /* 101 relayed: conn hands both sockets to wr_proxy_tunnel */
};

struct wr_proxy_ops {
    /* Queue iov (n <= WR_PROXY_MAX_IOV) for the client and write what the
     * socket takes now. Returns true when all of it was written; otherwise
     * the bytes stay borrowed until conn calls wr_proxy_drained. */
    bool (*emit)(void *conn, const struct iovec *iov, int n);
    /* The server accepts request body again after wr_proxy_send_body took less. */
    void (*body_room)(void *conn);
    /* The exchange is over: WR_PROXY_COMPLETE/BROKEN/TUNNEL, or an HTTP
     * status >= 400 to answer with an error page (nothing was emitted). */
    void (*done)(void *conn, int end);
};

/* What a worker's proxies share. */
struct wr_proxy_env {
    struct event_base *base;
    struct wr_timer_wheel *wheel; /* borrowed: the worker's; exchanges' deadlines */
    struct wr_pool *pool;
    struct wr_balancer *balancer; /* for the worker's current snapshot */
    const struct wr_resp_clock *clock;
    int worker_id;
    struct wr_metrics_worker *metrics; /* borrowed: this worker's counters (or NULL) */
    bool is_server_header_on;     /* drop the upstream's Server field */
    struct wr_proxy *free_list;   /* exchanges kept for reuse */
    size_t n_free;
    struct wr_log_budget warn_budget; /* upstream warnings a second (proxy.c) */
};

/* What conn tells the proxy about the request. */
struct wr_proxy_request {
    const struct wr_exchange *ex;  /* request, route, match, vars */
    struct wr_str client_addr;     /* textual peer address */
    bool is_tls;                   /* client side: X-Forwarded-Proto */
    bool has_body;                 /* Content-Length > 0 or chunked */
    bool is_chunked;
    bool is_keep_alive;            /* the client connection may persist */
    uint64_t id;                   /* connection id for logs */
    size_t max_head_bytes;         /* longest response head accepted (502 beyond) */
};

/*
 * Starts an exchange. Returns it (owned by conn, freed with wr_proxy_free)
 * or NULL with *status set (502 no server, 500 out of memory...). The
 * request head view must stay valid until done() (conn pins it).
 */
struct wr_proxy *wr_proxy_start(struct wr_proxy_env *env, const struct wr_proxy_request *pr,
                                const struct wr_proxy_ops *ops, void *conn, int *status);

/*
 * Request body bytes for the server (de-chunked data; is_last with the
 * final bytes, possibly len 0). Returns how many were taken, or -1 when
 * none were; fewer than len (or -1) means the server is not draining yet
 * and body_room() will be called. Once the exchange no longer wants the
 * body (it ended early) every byte counts as taken.
 */
ssize_t wr_proxy_send_body(struct wr_proxy *p, const char *data, size_t len, bool is_last);

/*
 * True when the server connection is ready for request body bytes now
 * (connected, request head written), so that a client waiting for 100
 * Continue can be invited. When false and the exchange still sends its
 * request, body_room() is called once it is ready; false for good once the
 * response has begun or the exchange ended.
 */
bool wr_proxy_can_take_body(struct wr_proxy *p);

/* Everything emitted so far has been written to the client. */
void wr_proxy_drained(struct wr_proxy *p);

/*
 * The request-target the exchange ex would send upstream (rewrite, else
 * strip_prefix, else the target as received in origin form; the query
 * byte for byte), written into buf. Returns its length, or -1 when it does
 * not fit in cap bytes. Pure; for `weir route`, which shows it.
 */
ssize_t wr_proxy_target(const struct wr_exchange *ex, char *buf, size_t cap);

/* Ends the exchange at once (client gone, or after done) and frees it. */
void wr_proxy_free(struct wr_proxy *p);

/* Frees the exchanges kept for reuse. */
void wr_proxy_env_fini(struct wr_proxy_env *env);

/* For the access log, valid until free: every server tried, in order,
 * ", "-separated ("10.0.0.1:80, 10.0.0.2:80"; "" when none was), and the
 * status of each attempt in the same order ("502, 200"): the server's, 502
 * for a refused or reset connection or a bad head, 504 for a timeout, "-"
 * for an attempt still open (the client left). Bounded (512 and 160 bytes):
 * attempts past the room end both lists with ", ...". NUL-terminated. */
const char *wr_proxy_upstream_addr(const struct wr_proxy *p);
const char *wr_proxy_upstream_status(const struct wr_proxy *p);

/* Request start to the response head, in microseconds (0 before it). */
uint64_t wr_proxy_upstream_time_us(const struct wr_proxy *p);

/* Status relayed (0 before a response head). */
int wr_proxy_status(const struct wr_proxy *p);

/* What done() said (valid once it was called). */
int wr_proxy_end(const struct wr_proxy *p);

/* Bytes emitted to the client so far, head included. */
uint64_t wr_proxy_bytes_out(const struct wr_proxy *p);

/* The same without the response head (the access log's bytes sent). */
uint64_t wr_proxy_body_bytes_out(const struct wr_proxy *p);

/* Whether the client connection may go on: the request's is_keep_alive,
 * lowered when the response forces a close (an unframed body for an
 * HTTP/1.0 client, or a tunnel). */
bool wr_proxy_is_keep_alive(const struct wr_proxy *p);

/* True when a field name has '_' in it: such fields are not forwarded unless
 * the route's underscores_in_headers is on (CGI-style backends map '-' and
 * '_' to one variable, so "Content_Length" could pass for Content-Length). */
bool wr_proxy_is_underscore_name(struct wr_str name);

/* True for the fields a proxy must not forward (RFC 9110 §7.6.1): the fixed
 * hop-by-hop names and every name listed by a Connection field in fields. */
bool wr_proxy_is_hop_header(struct wr_str name, const struct wr_http_header *fields, size_t n);

/* After done(WR_PROXY_TUNNEL) and once the 101 head is written (no TLS
 * record of the client's waits either), conn stops its own events on the
 * client socket and calls this: a relay (relay.h) moves bytes both ways
 * between client (borrowed: conn keeps owning and closes it after
 * wr_proxy_free) and the upstream connection's stream, passing a
 * half-close on, with websocket_timeout as its idle timeout; the client's
 * bytes count in the worker's bytes_in/bytes_out as they move. When it
 * ends (both sides closed, an error, idle) the proxy calls
 * done(WR_PROXY_BROKEN), from the relay's event; conn then closes the
 * client connection and frees the exchange. pending: bytes already read
 * (decrypted) from the client after the request head, sent first. */
void wr_proxy_tunnel(struct wr_proxy *p, struct wr_stream *client, const char *pending,
                     size_t pending_len);

#endif
