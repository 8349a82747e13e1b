/*
 * pool: a worker's connections to upstream servers, idle ones kept for
 * reuse.
 *
 * A struct wr_upconn is one socket to one server. While a proxied exchange
 * uses it, the exchange is its owner and gets its events through on_event;
 * while idle, the pool owns it: it sits on its server's idle list (most
 * recently used first), is closed when the server closes it or sends
 * anything unasked, and expires after the upstream's keepalive_timeout.
 * The read event stays registered for the connection's whole life, so
 * taking a pooled connection or giving it back costs no epoll_ctl.
 * Servers are told apart by address and TLS client context, so plain
 * connections survive a reload that keeps the address (TLS ones do not:
 * each snapshot has its own contexts, and its own CA to trust). Each such
 * server has an entry (its idle list and TLS session); the owner reclaims
 * the entries no snapshot in use names any more with wr_pool_keep and
 * wr_pool_sweep, so reloads do not pile them up.
 *
 * TLS: a connection made with a client context (tls.h) handshakes as part
 * of connecting: is_connecting stays true, and the owner hears nothing,
 * until the handshake is done or failed. The socket is a struct wr_stream
 * (stream.h): wr_upconn_read/wr_upconn_writev are its read and writev,
 * plus the events the TLS record layer needs (a record taken but not sent
 * yet, records already decrypted), which the pool arms and serves itself.
 * Each server entry keeps the last TLS session it received, so reconnects
 * resume. A TLS connection holds no plaintext buffer of its own except
 * while a record waits for the socket (the pool's stage is shared).
 * Worker thread only. Layer 2.
 */
#ifndef WEIR_POOL_H
#define WEIR_POOL_H

#include <event2/event_struct.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "weir/stream.h"
#include "weir/units.h"

struct iovec;
struct wr_config;
struct wr_tls_client;

struct event_base;
struct wr_pool;
struct wr_pool_server;
struct wr_upconn;

/* what: EV_READ and/or EV_WRITE. */
typedef void (*wr_upconn_fn)(struct wr_upconn *uc, short what, void *arg);

struct wr_upconn {
    struct wr_stream s;            /* the socket, and its TLS with a client context */
    struct event ev_read, ev_write;
    struct wr_pool *pool;          /* borrowed */
    struct wr_pool_server *server; /* borrowed: the pool's entry for its address */
    struct wr_upconn *next;        /* idle list */
    wr_upconn_fn on_event;         /* the owner's callback; NULL while idle */
    void *arg;
    uint64_t idle_until_ms;        /* while idle: monotonic expiry */
    uint64_t n_requests;           /* exchanges started on it */
    char *why;                     /* owned: why a TLS connect failed; NULL until then */
    int error;                     /* TLS connect or handshake failure (errno); 0: none */
    bool is_connecting;            /* connect() (and TLS handshake) in progress:
                                      the owner's first EV_WRITE tells */
    bool is_handshaking;           /* TLS: TCP connected, handshake under way */
    bool is_handshake_write;       /* TLS: the handshake waits for EV_WRITE */
    bool is_read_paused;           /* ev_read removed (owner's backpressure) */
    bool is_write_wanted;          /* the owner wants EV_WRITE */
    bool is_write_armed;           /* ev_write added (wanted, or TLS needs it) */
    bool is_detached;              /* the owner drives the stream (wr_upconn_detach) */
    uint8_t preamble_len;          /* bytes of preamble not written yet */
    char preamble[108];            /* wr_upconn_set_preamble: before anything else */
};

/* Per-worker counters, read by metrics. */
struct wr_pool_stats {
    uint64_t n_hits;     /* a request got an idle connection */
    uint64_t n_misses;   /* a request had to connect */
    uint64_t n_idle;     /* idle connections now */
    uint64_t n_open;     /* upstream connections now, idle or busy */
    uint64_t n_servers;  /* server entries now (address + TLS context each) */
};

/* A pool on base (borrowed, outlives it); NULL on allocation failure. */
struct wr_pool *wr_pool_new(struct event_base *base);

/* Closes every connection (idle or not: owners must be gone). NULL ok. */
void wr_pool_free(struct wr_pool *pool);

/*
 * An idle connection to addr made with tls (NULL: plain TCP), now owned by
 * the caller with on_event/arg, or NULL when there is none. Counts a hit
 * or a miss.
 */
struct wr_upconn *wr_pool_get(struct wr_pool *pool, const struct wr_listen_addr *addr,
                              const struct wr_tls_client *tls, wr_upconn_fn on_event, void *arg);

/*
 * Starts a non-blocking connect to addr, then, with tls (borrowed: the
 * caller's snapshot holds it; NULL for plain TCP), a TLS handshake to
 * server (the upstream's server index: SNI and the name verified).
 * Returns the connection (owned by the caller; its first EV_WRITE event
 * reports the outcome, see wr_upconn_connect_error) or NULL with errno
 * set when it failed at once.
 */
struct wr_upconn *wr_pool_connect(struct wr_pool *pool, const struct wr_listen_addr *addr,
                                  const struct wr_tls_client *tls, size_t server,
                                  wr_upconn_fn on_event, void *arg);

/* After an EV_WRITE on a connecting connection: 0 when connected (clears
 * is_connecting), else the errno of the failure (EPROTO for a failed TLS
 * handshake) with why (cap bytes) saying it for a log line: "connect:
 * Connection refused", "TLS handshake: certificate verify failed (...)". */
int wr_upconn_connect_error(struct wr_upconn *uc, char *why, size_t cap);

/*
 * Like read(2) on a connected uc (wr_stream_read): bytes (> 0), 0 at the
 * end of the stream, or -1 with errno (EAGAIN: wait for EV_READ;
 * WR_TLS_ETRUNCATED: a TLS server closed without close_notify). On TLS,
 * records already decrypted but not returned bring another EV_READ by
 * themselves.
 */
ssize_t wr_upconn_read(struct wr_upconn *uc, void *buf, size_t cap);

/*
 * Like writev(2) on a connected uc: bytes taken (may be fewer than
 * offered), or -1 with errno (EAGAIN: want EV_WRITE and retry). On TLS at
 * most one record (16 KiB) per call; bytes taken are the pool's to
 * deliver (wr_stream_writev: a record the socket did not take yet waits
 * in the connection and the pool sends it on the next writable event), so
 * a retry may offer different bytes.
 */
ssize_t wr_upconn_writev(struct wr_upconn *uc, const struct iovec *iov, int n);

/* Bytes (at most 108: a PROXY protocol header) that go on a connection
 * wr_pool_connect just made before anything else, before its TLS
 * handshake too; call right after the connect. */
void wr_upconn_set_preamble(struct wr_upconn *uc, const char *p, size_t n);

/* True when uc's TLS handshake resumed a session (false on plain TCP). */
bool wr_upconn_is_resumed(const struct wr_upconn *uc);

/*
 * Gives uc back: kept idle for idle_ms when its server has fewer than
 * max_idle idle connections, or more but no more connections in all than
 * were busy at once within the last one to two seconds (a steady load
 * keeps what it uses); else closed. wr_pool_tick trims the idle ones over
 * max_idle once that demand passed. The caller guarantees the last
 * response was read completely and both sides allow keep-alive.
 */
void wr_pool_put(struct wr_upconn *uc, uint64_t max_idle, uint64_t idle_ms);

/* Ends our direction toward the server (wr_stream_shutdown: a tunnel's
 * half-close): 0, or -1 with errno, EAGAIN when a TLS record still waits
 * (call again once the owner's EV_WRITE came). uc is not reusable after. */
int wr_upconn_shutdown(struct wr_upconn *uc);

/* Closes uc (owned by the caller). */
void wr_upconn_close(struct wr_upconn *uc);

/*
 * The owner drives uc's stream itself from now on (a relay after a 101):
 * the pool's events are removed and the pool arms nothing for uc again;
 * wr_upconn_pause_read and wr_upconn_want_write become no-ops. uc is
 * closed with wr_upconn_close, never given back. Returns the stream,
 * borrowed until then (uc keeps its server entry, and so the TLS session
 * slot the stream writes to, alive).
 */
struct wr_stream *wr_upconn_detach(struct wr_upconn *uc);

/* Owner's flow control: stop or resume EV_READ events; want EV_WRITE. */
void wr_upconn_pause_read(struct wr_upconn *uc, bool is_paused);
void wr_upconn_want_write(struct wr_upconn *uc, bool is_wanted);

/* The worker's tick: closes idle connections past their time and, once a
 * second, half of each server's idle connections over max_idle that the
 * last seconds' demand no longer explains (see wr_pool_put). */
void wr_pool_tick(struct wr_pool *pool, uint64_t now_ms);

/*
 * Reclaiming entries: call wr_pool_keep for every snapshot the worker may
 * still proxy under (its current one, and those its open connections hold;
 * cfg borrowed for the call), then wr_pool_sweep. The sweep frees each entry
 * no keep named since the previous sweep (its TLS session with it) after
 * closing its idle connections; an entry with busy connections is retired
 * instead: they close when given back, and the last one frees the entry. A
 * retired entry a later lookup asks for again (a snapshot in use names it)
 * serves as before. Worker thread.
 */
void wr_pool_keep(struct wr_pool *pool, const struct wr_config *cfg);
void wr_pool_sweep(struct wr_pool *pool);

const struct wr_pool_stats *wr_pool_stats(const struct wr_pool *pool);

/* The counters of the stage the pool's TLS connections write through
 * (records waiting now, ...), for tests and measurements. */
const struct wr_stream_stats *wr_pool_stream_stats(const struct wr_pool *pool);

#endif
