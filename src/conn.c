/*
 * conn: the HTTP/1 front end: a client connection's whole life on one
 * worker. It knows framing, keep-alive and pipelining; it drives every
 * route's handler the same way, through the exchange (handler.h), and
 * never knows which handler it drives.
 *
 * The request path, one call per arrow:
 *   accept (worker) -> wr_conn_take -> [TLS: continue_handshake until
 *   done, tls.c] -> on_client_read reads into the
 *   connection's own buffer -> parse_and_answer: wr_http_parse_request gives
 *   a request view -> dispatch: select_route (wr_router_request_path
 *   normalises, wr_router_route picks a route; CONNECT and an OPTIONS * no
 *   route takes are answered from the server's methods) -> start_exchange: the route's
 *   handler (wr_handler_for) starts on a struct wr_exchange ->
 *   a one-shot handler (static, return, redirect) answers at once through
 *   the sink (h1_respond -> commit_response queues head and body) ->
 *   flush_output writes (writev, sendfile) -> the next pipelined request is
 *   parsed, or the connection goes idle -> conn_close.
 * An error answer (dispatch's, a handler's start or end status, a 413)
 * whose route or [server] has an error_page goes through serve_error_page
 * instead: the page's internal request is routed and its route's handler
 * started as above, on an exchange marked with the original status
 * (ex->error, exchange.c); the built-in page when that fails.
 * A handler that answers over time (proxy) instead: ST_EXCHANGE:
 *   forward_body hands body bytes to wr_exchange_recv_body (first inviting
 *   a client that waits for 100 Continue once the handler can take the
 *   body); the handler answers through the sink: h1_send_head (the framing
 *   is chosen here: Content-Length, chunked, or the close for HTTP/1.0,
 *   h1_framing.h), h1_send (payload, framed and written), h1_end ->
 *   end_exchange logs (with what the handler recorded in ex->log) and goes
 *   on like any response; after h1_upgrade (a 101), start_tunnel lends the
 *   connection's stream to the handler, which relays it (relay.h; ST_TUNNEL:
 *   conn only owns the stream until the exchange ends). A client's EOF during the
 *   exchange is judged by exchange_read: a half-close after the whole
 *   request is answered.
 *
 * Not here: parsing (http_parser), choosing routes (router), answering
 * (the handlers: static, redirect, proxy; their per-worker state is theirs,
 * wr_handlers). Invariants:
 *  - Only conn_close frees a connection, and every function that can reach
 *    it returns -1 afterwards; callers stop touching the connection then.
 *  - Request views point into c->rb->data. Bytes of a request head never move
 *    while its request is being answered (its body is read behind it); the
 *    buffer is compacted only between requests.
 *  - An idle keep-alive connection owns its socket and its struct (312
 *    bytes at most, its read event included: static_assert below), nothing
 *    else: io (buffers, the peer's address as text, and the write event,
 *    which only pending output needs) goes back to the worker when the
 *    connection has no input and no output pending.
 *  - Timeouts: c->deadline_ms is the real deadline (0: none), kept after
 *    every event by set_deadline; c->timer, on the worker's wheel
 *    (timer.h), is never later than it and moves only when the deadline
 *    comes earlier (the lazy pattern: one compare per event). A timer that
 *    fires early re-arms at the real deadline (on_conn_timer). The tick
 *    runs the wheel and never walks the connections: an idle one costs
 *    nothing until its deadline, and conns_idle is a count kept on every
 *    change (count_idle).
 *  - I/O goes through the connection's stream (stream.h: plain or TLS, one
 *    implementation): conn_recv, write_some, start_linger, the handshake.
 *    On TLS a record the socket did not take still counts as written (the
 *    queue advances past it); it waits in the stream, and record_waits(c)
 *    counts as output pending wherever the queue does: EV_WRITE, the send
 *    timeout, no linger or close before it has gone.
 *  - Request bodies of one-shot answers are read and discarded before the
 *    response is released (held), so a chunked body that breaks
 *    max_body_size still gets its 413 and framing errors their 400.
 *  - Sink calls (h1_send_head, h1_send, h1_body_room, h1_end, h1_upgrade)
 *    never close or free anything and never call the handler back: they
 *    queue output, set flags and activate ev_read; the connection acts in
 *    its own next event (defer_close, exchange_progress: proceed, then
 *    end_exchange). Only drop_exchange disposes an exchange (stop), from
 *    c's own events, never from inside a callback (handler.h).
 */
#include "weir/conn.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "weir/clock.h"
#include "weir/auth.h"
#include "weir/error_page.h"
#include "weir/h1_framing.h"
#include "weir/proxy_protocol.h"
#include "weir/h2.h"
#include "weir/handler.h"
#include "weir/http_parser.h"
#include "weir/limits.h"
#include "weir/path.h"
#include "weir/stream.h"
#include "weir/tls.h"

#define MAX_SEGS 32
#define WBUF_CAP (16 * 1024)
#define MIN_HEAD_ROOM (4 * 1024)   /* free wbuf needed to answer one more request */
#define RBUF_SLACK 4096            /* room for body bytes behind a maximal head */
#define MAX_PIPELINE_PER_EVENT 32  /* fairness: requests answered per read event */
/* Fairness: bytes written per writable event. 2 MiB (nginx's default
 * sendfile_max_chunk) lets a 1 MiB file and its head go out in one turn; at
 * 1 MiB the last bytes of such a response waited a whole loop turn behind
 * every other connection, halving throughput (measured: 0.56x nginx). */
#define WRITE_BUDGET (2 * 1024 * 1024)
#define LINGER_MS 2000
#define LINGER_MAX_BYTES (64 * 1024)
#define MAX_FREE_CONNS 1024
#define MAX_FREE_IO 256
/* HTTP/2 buffers kept per worker (64 KiB output blocks: at most 1 MiB kept,
 * and less a second after a burst). */
#define MAX_FREE_H2_BUFS 16
/* HTTP/2 stream structs (~5 KiB) and response heads (8 KiB) kept per worker:
 * a few connections' worth of streams, less a second after a burst. */
#define MAX_FREE_H2_STREAMS 256
#define MAX_FREE_H2_HEADS 64
#define MAX_FREE_RBUFS 1024
/* A first read buffer: nginx's client_header_buffer_size is 1 KiB; a
 * typical browser head (cookies included) fits in 2. */
#define RBUF_FIRST_BLOCK 2048
#define MAX_FREE_EXCHANGES 64
/* Error pages' internal requests (3.7 KiB) kept per worker. */
#define MAX_FREE_ERROR_REQS 16
/* Output slots an exchange's response may need at once: its head, a send of
 * WR_EXCHANGE_MAX_IOV payload pieces with a chunk's size line and CRLF, the
 * last chunk, and a 100 Continue in front. */
#define EXCHANGE_SEGS (WR_EXCHANGE_MAX_IOV + 5)

enum conn_state {
    ST_HANDSHAKE, /* TLS: handshake in progress (handshake_timeout) */
    ST_HEAD,    /* waiting for or reading a request head */
    ST_BODY,    /* reading and discarding the body of the request just answered */
    ST_EXCHANGE, /* a handler answers over time (proxy): the body goes to it as it
                    takes it, its response is written as it comes (handler.h) */
    ST_TUNNEL,  /* after 101: the handler relays the socket; we only own it */
    ST_CLOSING, /* last response queued: flush it, then linger */
    ST_LINGER,  /* write side shut: drop input until EOF or the deadline */
    ST_H2,      /* handed to the HTTP/2 front end (c->h2): it owns the events */
    ST_PROXY,   /* reading a PROXY protocol header (header_timeout), then ST_HEAD */
    ST_PROXY_TLS, /* the same on a tls listener, then ST_HANDSHAKE */
};

struct wr_conn_io {
    /* Writable events matter only while output is pending, and output lives
     * here: keeping the event here, not in struct wr_conn, takes 128 bytes
     * off every idle keep-alive connection. */
    struct event ev_write;
    struct wr_http_request req;

    enum { BODY_NONE, BODY_LENGTH, BODY_CHUNKED } body_kind;
    const char *piece;     /* ST_EXCHANGE body: decoded bytes the handler has not taken */
    size_t piece_len;
    bool is_piece_last;    /* piece ends the body */
    bool is_abort_on_eof;  /* the route's abort_on_eof (set at dispatch) */
    bool is_continue_owed; /* proxied: the client waits for 100 Continue to send its body */
    bool is_answer_keep_alive; /* the connection may go on after the answer being built */
    bool is_exchange_keep_alive; /* ST_EXCHANGE: the same, lowered by the framing chosen
                                    (h1_send_head: the close ends an HTTP/1.0 body) */
    bool is_responded;     /* the handler answered at once (h1_respond) */
    bool is_out_ended;     /* ST_EXCHANGE: the body's framing was ended (end_body) */
    enum wr_h1_body out_body; /* ST_EXCHANGE: how the response body is framed */
    uint64_t body_left;    /* BODY_LENGTH: bytes still to read */
    uint64_t body_seen;    /* BODY_CHUNKED: data bytes so far */
    struct wr_http_chunked chunked;

    char request_id[33];   /* $request_id of the request in flight */
    char peer[48];         /* the client's address as text ($remote_addr, logs):
                              formatted from c's compact form when io is taken */
    uint64_t start_us;     /* the request's first bytes, precisely; taken only
                              when the access log is on ($request_time) */
    uint64_t last_io_ms;   /* last read progress (body) or write progress (send):
                              only a connection with a request or output has one */
    int log_status;        /* response of the request in flight, for the log */
    /* The upstream fields of an exchange an error page replaced (a proxy's
     * 502, an intercepted status): the access log keeps naming them. */
    bool has_kept_upstream;
    char kept_upstream_addr[512];
    char kept_upstream_status[160];
    uint64_t kept_upstream_time_us;
    const struct wr_route *route; /* borrowed from c->cfg: the route answering the
                                     request in flight, NULL when none did; names it
                                     in the access log and in metrics alike */
    uint64_t log_bytes;
    size_t held_seg, held_wlen; /* where the held response starts */

    /* The output queue, in the stream's own shape so that a write hands it
     * over as it is: memory (fd < 0; ptr borrowed: wbuf, config, static
     * pages) or a file range (fd owned, closed once sent; off: the next
     * byte), len bytes left either way. refs[i].ref set: segs[i]'s bytes
     * (its fd or its memory) belong to that reference (wr_resp's body_ref,
     * e.g. an open-file cache entry), which we hold instead and drop with
     * refs[i].unref once sent. */
    struct wr_stream_seg segs[MAX_SEGS];
    struct seg_ref {
        void *ref;
        wr_resp_unref_fn unref;
    } refs[MAX_SEGS];
    size_t seg_first, n_segs, n_ready; /* segs[seg_first..n_ready) may be written */
    char wbuf[WBUF_CAP];
    size_t wlen;
};

/*
 * The read buffer: bytes read and not yet consumed. It is all a connection
 * that waits for (the rest of) a head holds: it starts at RBUF_FIRST_BLOCK
 * bytes and grows to the largest head the snapshot allows (plus room for
 * body bytes behind it) only when a head does not fit or a body follows.
 * Growing moves the bytes: only while no request view points into them (the
 * parser keeps offsets across WR_AGAIN: scanned), or right after a parse
 * that is then redone (grow_for_body).
 */
struct wr_conn_rbuf {
    size_t cap;            /* bytes of data[] */
    size_t rstart, rlen;   /* unconsumed input: data[rstart..rlen) */
    size_t pin;            /* while a body is read: bytes [0, pin) hold the head */
    size_t scanned;        /* parser hint: bytes of the pending head already seen */
    char data[];
};

struct wr_conn {
    struct event ev_read;    /* ev_write is in io: output needs io */
    struct wr_conn_rbuf *rb; /* NULL while idle: the input (rbuf_take) */
    struct wr_conns *home;   /* borrowed */
    struct wr_config *cfg;   /* ref held: the snapshot this connection started under */
    struct wr_conn *prev, *next; /* home->live list; next also links the free list */
    struct wr_conn_io *io;   /* NULL while idle */
    struct wr_stream s;      /* owned: the socket, and its TLS on a TLS listener */
    struct wr_timer timer;   /* on home->wheel; never later than deadline_ms */
    uint64_t id;
    uint64_t deadline_ms;    /* monotonic; 0 = none */
    uint64_t phase_ms;       /* when the current head, body read or idle wait began */
    uint64_t n_requests;
    uint32_t ip_slot;        /* max_connections_per_ip slot held, or WR_LIMITS_NO_SLOT */
    uint32_t linger_bytes;   /* at most LINGER_MAX_BYTES + one read */
    enum conn_state state;
    bool is_write_armed;     /* io->ev_write added; cleared when output drains */
    bool is_read_paused;     /* ev_read removed while output is blocked */
    bool is_peer_eof;        /* read returned 0: answer what we have, then close */
    bool is_backlogged;      /* buffered requests wait: the per-event cap or output
                                room stopped us; on_client_read resumes without reading */
    bool is_doomed;          /* a write failed inside a sink call: close on our
                                next event (sink calls never close) */
    bool is_body_blocked;    /* the server is not taking the body: wait for body_room */
    bool is_upgrading;       /* the handler asked for the 101 (h1_upgrade): the tunnel
                                starts once the head is written */
    bool is_proceed_owed;    /* h1_send kept bytes: proceed once they are written */
    bool is_idle_counted;    /* counted in home->n_idle (count_idle) */
    /* Bits (one byte for the three): the 312-byte budget below. */
    bool is_h2c : 1;         /* the listener takes HTTP/2 with prior knowledge */
    bool is_close_asked : 1; /* the last request said close and had no body: once it
                                is answered the client sends nothing more (RFC 9112
                                §9.6), so no lingering close */
    bool is_read_unsure : 1; /* served within its accept: ev_read may be out of
                                epoll though !is_read_paused (on_client_read) */
    uint8_t peer_family;     /* PEER_V4, PEER_V6 or PEER_UNIX (peer_addr) */
    struct wr_h2 *h2;        /* owned: the HTTP/2 session (ST_H2), else NULL */
    struct wr_exchange *ex;  /* owned (a struct conn_exchange): the exchange in
                                flight (ST_EXCHANGE, ST_TUNNEL) */
    /* The client's address, compact: its text (48 bytes) is made only when
     * a request needs it (io->peer, format_peer_text), its limits key only
     * when a rate limit does (peer_key). No port: nothing weir logs or
     * sends names the client's port. */
    uint8_t peer_addr[16];   /* in_addr (first 4) or in6_addr bytes */
};

enum { PEER_UNIX, PEER_V4, PEER_V6 };

/* What an idle keep-alive connection costs (issue 14): this struct is all
 * it owns in user memory besides libevent's state for its descriptor
 * (about 45 bytes); its socket buffers are the kernel's. glibc's malloc
 * adds 8 bytes and rounds to 16: 312 bytes here are a 320-byte chunk
 * (measured: 0.37 KiB per connection, bench/run.py --only idle_10k; 0.42
 * at 360 bytes). The read event (128 bytes) is most of what is left: see
 * the report of issue 14 for the epoll-set variant and its cost. Growing
 * past this needs a reason and a new measurement, not a new number. */
static_assert(sizeof(struct wr_conn) <= 312, "an idle connection's budget (issue 14)");

/* An exchange in flight, with what must outlive dispatch: its response head
 * and the subject its log lines name. From the worker's free list. */
struct wr_conn_exchange {
    struct wr_exchange ex;  /* first: c->ex points here */
    struct wr_resp resp;
    struct wr_log_request subject;
    struct wr_conns_error_req *ereq; /* owned (home->error_reqs): an error page's
                                        internal request, NULL otherwise */
    struct wr_conn_exchange *next_free;
};

static void on_client_read(evutil_socket_t fd, short what, void *arg);
static void on_client_write(evutil_socket_t fd, short what, void *arg);
static int settle(struct wr_conn *c);
static void set_timer(struct wr_conn *c, uint64_t deadline_ms);
static void defer_close(struct wr_conn *c);

static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";

/* ---- the client's address ---------------------------------------------- */

static void format_peer(char *out, size_t cap, const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)cap);
    } else if (sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)cap);
    } else {
        snprintf(out, cap, "unix:");
    }
}

/* Keeps sa's address in c's compact form. */
static void store_peer(struct wr_conn *c, const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        c->peer_family = PEER_V4;
        memcpy(c->peer_addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        c->peer_family = PEER_V6;
        memcpy(c->peer_addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    } else {
        c->peer_family = PEER_UNIX;
    }
}

/* c's key in the limits' tables (wr_limits_peer_key of its address; 0
 * for unix clients): a hash, recomputed rather than kept (8 bytes of every
 * idle connection) since only rate-limited routes and HTTP/2 need it. */
static uint64_t peer_key(const struct wr_conn *c)
{
    struct sockaddr_in6 sa6 = {.sin6_family = AF_INET6};
    struct sockaddr_in sa4 = {.sin_family = AF_INET};
    if (c->peer_family == PEER_V4) {
        memcpy(&sa4.sin_addr, c->peer_addr, 4);
        return wr_limits_peer_key(c->home->limits, (const struct sockaddr *)&sa4);
    }
    if (c->peer_family == PEER_V6) {
        memcpy(&sa6.sin6_addr, c->peer_addr, 16);
        return wr_limits_peer_key(c->home->limits, (const struct sockaddr *)&sa6);
    }
    return 0;
}

/* c's address as text (what format_peer gives for the original sockaddr)
 * into out[cap], cap >= INET6_ADDRSTRLEN. */
static void format_peer_text(const struct wr_conn *c, char *out, size_t cap)
{
    if (c->peer_family == PEER_V4)
        wr_str_format_ipv4(c->peer_addr, out);
    else if (c->peer_family == PEER_V6)
        inet_ntop(AF_INET6, c->peer_addr, out, (socklen_t)cap);
    else
        snprintf(out, cap, "unix:");
}

/* ---- buffers ----------------------------------------------------------- */

/* Bytes of connection buffers held by connections (the gauge
 * weir_conn_buffer_bytes); free lists are not counted. */
static void count_buffer(struct wr_conns *cs, size_t bytes, bool is_taken)
{
    if (is_taken)
        cs->buffer_bytes += bytes;
    else
        cs->buffer_bytes -= bytes;
}

/* Data bytes of c's full-size read buffer: the largest head its snapshot
 * allows and room for body bytes behind it. */
static size_t rbuf_full_cap(const struct wr_conn *c)
{
    return c->cfg->limits.max_header_bytes + RBUF_SLACK;
}

/* The free list that keeps read buffers of cap data bytes, or NULL. */
static struct wr_buf_pool *rbuf_pool(struct wr_conns *cs, size_t cap)
{
    size_t block = sizeof(struct wr_conn_rbuf) + cap;
    if (block == cs->rbuf_first.block_size)
        return &cs->rbuf_first;
    return block == cs->rbuf_full.block_size ? &cs->rbuf_full : NULL;
}

/* An empty read buffer of cap data bytes, or NULL when out of memory. */
static struct wr_conn_rbuf *rbuf_new(struct wr_conns *cs, size_t cap)
{
    struct wr_buf_pool *pool = rbuf_pool(cs, cap);
    size_t block = sizeof(struct wr_conn_rbuf) + cap;
    /* A snapshot other than the current one may allow other heads. */
    struct wr_conn_rbuf *rb = pool ? wr_buf_pool_take(pool) : malloc(block);
    if (!rb)
        return NULL;
    *rb = (struct wr_conn_rbuf){.cap = cap};
    count_buffer(cs, block, true);
    return rb;
}

static void rbuf_free(struct wr_conns *cs, struct wr_conn_rbuf *rb)
{
    struct wr_buf_pool *pool = rbuf_pool(cs, rb->cap);
    count_buffer(cs, sizeof(*rb) + rb->cap, false);
    if (pool)
        wr_buf_pool_give(pool, rb);
    else
        free(rb);
}

/* Gives c's read buffer back (it holds no input any more). */
static void release_rbuf(struct wr_conns *cs, struct wr_conn *c)
{
    if (c->rb)
        rbuf_free(cs, c->rb);
    c->rb = NULL;
}

/* Moves c's input into a read buffer of cap data bytes (cap >= rlen -
 * rstart). Every request view into the old one dies: callers grow only
 * between requests, or parse again. Returns -1 when out of memory (c keeps
 * its buffer). */
static int rbuf_move(struct wr_conn *c, size_t cap)
{
    struct wr_conn_rbuf *old = c->rb;
    struct wr_conn_rbuf *rb = rbuf_new(c->home, cap);
    if (!rb)
        return -1;
    rb->rlen = old->rlen - old->rstart;
    rb->scanned = old->scanned;
    memcpy(rb->data, old->data + old->rstart, rb->rlen);
    rbuf_free(c->home, old);
    c->rb = rb;
    return 0;
}

/* Gives c a first, small read buffer if it has none. Returns -1 when out
 * of memory. */
static int ensure_rbuf(struct wr_conn *c)
{
    size_t full = rbuf_full_cap(c);
    size_t first = RBUF_FIRST_BLOCK - sizeof(struct wr_conn_rbuf);
    if (!c->rb)
        c->rb = rbuf_new(c->home, first < full ? first : full);
    return c->rb ? 0 : -1;
}

static struct wr_conn_io *acquire_io(struct wr_conns *cs, struct wr_conn *c)
{
    struct wr_conn_io *io = wr_buf_pool_take(&cs->io_pool);
    if (!io)
        return NULL;
    count_buffer(cs, sizeof(*io), true);
    io->seg_first = io->n_segs = io->n_ready = io->wlen = 0;
    io->body_kind = BODY_NONE;
    io->is_continue_owed = io->is_abort_on_eof = false;
    io->route = NULL;
    io->has_kept_upstream = false;
    io->request_id[0] = '\0'; /* a head that fails to parse gets none */
    io->last_io_ms = wr_clock_now_ms();
    io->start_us = cs->is_logging ? wr_clock_now_us() : 0;
    format_peer_text(c, io->peer, sizeof(io->peer));
    event_assign(&io->ev_write, cs->base, c->s.fd, EV_WRITE | EV_PERSIST, on_client_write, c);
    return io;
}

/* c's io (output, request state), taken if it has none. Returns -1 when out
 * of memory. */
static int ensure_io(struct wr_conn *c)
{
    if (!c->io)
        c->io = acquire_io(c->home, c);
    return c->io ? 0 : -1;
}

/* Lets go of a body: close an owned fd, or drop a body reference. */
static void release_file(int fd, void *ref, wr_resp_unref_fn unref)
{
    if (ref)
        unref(ref);
    else if (fd >= 0)
        close(fd);
}

static void drop_segs(struct wr_conn_io *io, size_t from)
{
    for (size_t i = from; i < io->n_segs; i++) {
        if (io->segs[i].fd >= 0 || io->refs[i].ref)
            release_file(io->segs[i].fd, io->refs[i].ref, io->refs[i].unref);
    }
    io->n_segs = from;
    if (io->n_ready > from)
        io->n_ready = from;
}

static void release_io(struct wr_conns *cs, struct wr_conn *c)
{
    struct wr_conn_io *io = c->io;
    c->io = NULL;
    if (!io)
        return;
    /* Also when not armed: an activation (proxy callbacks use them) must
     * not outlive the buffers it belongs to. */
    event_del(&io->ev_write);
    c->is_write_armed = false;
    drop_segs(io, io->seg_first);
    count_buffer(cs, sizeof(*io), false);
    wr_buf_pool_give(&cs->io_pool, io);
}

/* ---- life and death ---------------------------------------------------- */

/* c's connection is gone: an old snapshot leaves with its last one, and the
 * handlers may then let go of what only it named (the proxy's pool entries). */
static void forget_snapshot(struct wr_conns *cs, const struct wr_config *cfg)
{
    for (size_t i = 0; i < cs->n_snapshots; i++) {
        struct wr_conns_snapshot *snap = &cs->snapshots[i];
        if (snap->cfg != cfg)
            continue;
        snap->n_conns--;
        if (i > 0 && snap->n_conns == 0) {
            memmove(snap, snap + 1, (cs->n_snapshots - i - 1) * sizeof(*snap));
            cs->n_snapshots--;
            cs->is_snapshots_changed = true;
        }
        return;
    }
}

/* Room for one more snapshot in cs->snapshots. Returns -1 when out of
 * memory (nothing changed). */
static int reserve_snapshot(struct wr_conns *cs)
{
    if (cs->n_snapshots < cs->cap_snapshots)
        return 0;
    size_t cap = cs->cap_snapshots * 2;
    struct wr_conns_snapshot *more = realloc(cs->snapshots, cap * sizeof(*more));
    if (!more)
        return -1;
    cs->snapshots = more;
    cs->cap_snapshots = cap;
    return 0;
}

/* Makes cfg the current snapshot (first); the previous one stays while
 * connections hold it. Needs the room reserve_snapshot made. */
static void track_snapshot(struct wr_conns *cs, const struct wr_config *cfg)
{
    cs->is_snapshots_changed = true;
    if (cs->snapshots[0].n_conns == 0) {
        cs->snapshots[0].cfg = cfg;
        return;
    }
    memmove(cs->snapshots + 1, cs->snapshots, cs->n_snapshots * sizeof(*cs->snapshots));
    cs->snapshots[0] = (struct wr_conns_snapshot){.cfg = cfg};
    cs->n_snapshots++;
}

/* Tells the handlers which snapshots are still in use (a reload, or the
 * last connection of an old one closed). Not from conn_close itself: this
 * may close idle upstream connections, which is the tick's work. */
static void announce_snapshots(struct wr_conns *cs)
{
    const struct wr_config **cfgs = malloc(cs->n_snapshots * sizeof(*cfgs));
    if (!cfgs)
        return; /* is_snapshots_changed stays set: the next tick tries again */
    cs->is_snapshots_changed = false;
    for (size_t i = 0; i < cs->n_snapshots; i++)
        cfgs[i] = cs->snapshots[i].cfg;
    wr_handlers_snapshots_in_use(&cs->handlers, cfgs, cs->n_snapshots);
    free(cfgs);
}

/* conns_idle: a connection that waits for a request and holds no buffer.
 * Kept on every change (after each event, and when buffers come and go),
 * so the tick publishes a count instead of walking every connection. */
static void count_idle(struct wr_conn *c)
{
    bool is_idle = c->state == ST_HEAD && !c->io && !c->rb && c->s.fd >= 0;
    if (is_idle == c->is_idle_counted)
        return;
    c->is_idle_counted = is_idle;
    if (is_idle)
        c->home->n_idle++;
    else
        c->home->n_idle--;
}

/* A fresh exchange struct, or NULL when out of memory. */
static struct wr_conn_exchange *take_exchange(struct wr_conns *cs)
{
    struct wr_conn_exchange *ce = cs->free_exchanges;
    if (ce) {
        cs->free_exchanges = ce->next_free;
        cs->n_free_exchanges--;
        return ce;
    }
    return malloc(sizeof(*ce));
}

/* Disposes c's exchange (the handler's stop) and keeps its struct for reuse.
 * Never from inside a handler callback or a sink call (handler.h rule 2):
 * only from c's own events. */
static void drop_exchange(struct wr_conn *c)
{
    struct wr_conns *cs = c->home;
    struct wr_conn_exchange *ce = (struct wr_conn_exchange *)c->ex;
    if (!ce)
        return;
    wr_exchange_stop(&ce->ex);
    wr_conns_error_req_give(cs, ce->ereq);
    ce->ereq = NULL;
    c->ex = NULL;
    c->is_upgrading = c->is_proceed_owed = false;
    if (cs->n_free_exchanges < MAX_FREE_EXCHANGES) {
        ce->next_free = cs->free_exchanges;
        cs->free_exchanges = ce;
        cs->n_free_exchanges++;
    } else {
        free(ce);
    }
}

static void conn_close(struct wr_conn *c)
{
    struct wr_conns *cs = c->home;
    wr_timer_disarm(&cs->wheel, &c->timer);
    event_del(&c->ev_read);
    wr_h2_free(c->h2); /* its exchanges stop; before the socket closes */
    c->h2 = NULL;
    drop_exchange(c); /* before the socket closes: a tunnel has events on it */
    release_io(cs, c); /* deletes the write event while the fd is still open */
    release_rbuf(cs, c);
    wr_stream_fini(&c->s); /* before the snapshot that holds its TLS contexts */
    count_idle(c);
    forget_snapshot(cs, c->cfg);
    wr_config_unref(c->cfg);
    c->cfg = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        cs->live = c->next;
    if (c->next)
        c->next->prev = c->prev;
    cs->n_live--;
    atomic_fetch_sub_explicit(cs->n_process_conns, 1, memory_order_relaxed);
    wr_limits_conn_release(cs->limits, c->ip_slot);
    /* Published last: once /status shows the connection gone, its slots
     * (max_connections, max_connections_per_ip) are free too. */
    wr_metrics_set(&cs->metrics->conns_open, cs->n_live);
    if (cs->n_free_conns < MAX_FREE_CONNS) {
        c->next = cs->free_conns;
        cs->free_conns = c;
        cs->n_free_conns++;
    } else {
        free(c);
    }
}

/* c's timer fired: a deadline that moved later since it was armed re-arms
 * it (the lazy pattern); one that passed closes c. */
static void on_conn_timer(struct wr_timer_wheel *w, struct wr_timer *t, uint64_t now_ms)
{
    struct wr_conn *c = WR_TIMER_OWNER(t, struct wr_conn, timer);
    if (c->deadline_ms == 0 || wr_timer_rearm_if_early(w, t, c->deadline_ms, now_ms))
        return;
    if (wr_log_is_enabled(WR_LOG_DEBUG))
        wr_log(WR_LOG_DEBUG, c->home->worker_id, c->id, "timeout in state %d", c->state);
    if (c->state == ST_PROXY || c->state == ST_PROXY_TLS)
        wr_metrics_add(&c->home->metrics->proxy_protocol_errors[WR_METRICS_PP_TIMEOUT], 1);
    conn_close(c);
}

/* Logs a refusal an attacker can repeat at will: at most once a second.
 * rq names the refused request, or is NULL for a refused connection. */
static void log_refusal(struct wr_conns *cs, uint64_t conn_id, const char *what,
                        const char *peer, const struct wr_log_request *rq)
{
    uint64_t n_suppressed;
    if (!wr_log_is_enabled(WR_LOG_INFO) || !wr_limits_log_due(cs->limits, wr_clock_now_ms(), &n_suppressed))
        return;
    if (rq)
        wr_log_request(WR_LOG_INFO, cs->worker_id, conn_id, rq,
                       "%s (%llu similar refusals not logged)", what,
                       (unsigned long long)n_suppressed);
    else
        wr_log(WR_LOG_INFO, cs->worker_id, conn_id, "%s: %s (%llu similar refusals not logged)",
               peer, what, (unsigned long long)n_suppressed);
}

/* The request in flight, as error-log lines name it (borrowed from io and c). */
static struct wr_log_request log_subject(const struct wr_conn *c)
{
    const struct wr_conn_io *io = c->io;
    return (struct wr_log_request){.id = wr_str_from_cstr(io->request_id),
                                   .client = wr_str_from_cstr(io->peer),
                                   .method = io->req.method,
                                   .target = io->req.target};
}

/*
 * max_connections_per_ip, checked before anything is allocated: over it,
 * the connection is closed unread (nothing to answer yet, and an answer
 * would cost the buffers the limit exists to protect). Returns false then.
 */
static bool admit_peer(struct wr_conns *cs, int fd, const struct sockaddr *peer,
                       uint64_t *key, uint32_t *slot)
{
    *slot = WR_LIMITS_NO_SLOT;
    *key = wr_limits_peer_key(cs->limits, peer);
    uint64_t max = cs->cfg->limits.max_connections_per_ip;
    if (*key == 0 || max == 0 || wr_limits_conn_acquire(cs->limits, *key, max, slot))
        return true;
    char text[48];
    format_peer(text, sizeof(text), peer);
    log_refusal(cs, 0, "over max_connections_per_ip; closed", text, NULL);
    close(fd);
    atomic_fetch_sub_explicit(cs->n_process_conns, 1, memory_order_relaxed);
    return false;
}

/* A TLS listener's connection: its server side of the handshake starts
 * (ST_HANDSHAKE). Returns 0, or -1 (no [tls], or out of memory). */
static int start_handshake(struct wr_conn *c)
{
    c->state = ST_HANDSHAKE; /* the certificates of the connection's own snapshot */
    return c->cfg->tls_set && wr_stream_tls_server(&c->s, c->cfg->tls_set, c->home->stage) == 0
               ? 0 : -1;
}

/* A PROXY header from an address [server] proxy_protocol_from does not
 * list: anyone could claim any client address, so the connection is
 * closed unread. Returns false then. */
static bool is_proxy_sender(struct wr_conns *cs, int fd, const struct sockaddr *peer)
{
    const struct wr_server_cfg *s = &cs->cfg->server;
    if (wr_cidr_match_any(s->proxy_from, s->n_proxy_from, peer))
        return true;
    char text[48];
    format_peer(text, sizeof(text), peer);
    log_refusal(cs, 0, "not in proxy_protocol_from; closed", text, NULL);
    wr_metrics_add(&cs->metrics->proxy_protocol_errors[WR_METRICS_PP_UNTRUSTED], 1);
    close(fd);
    atomic_fetch_sub_explicit(cs->n_process_conns, 1, memory_order_relaxed);
    return false;
}

void wr_conn_take(struct wr_conns *cs, int fd, const struct sockaddr *peer, socklen_t peer_len,
                  unsigned flags)
{
    (void)peer_len;
    bool is_tls = flags & WR_CONN_TLS, is_h2c = flags & WR_CONN_H2C;
    bool is_pp = flags & WR_CONN_PROXY_PROTOCOL;
    uint64_t peer_key;
    uint32_t ip_slot = WR_LIMITS_NO_SLOT;
    /* Behind a PROXY sender the client is known only from the header: the
     * per-address limit counts it then (read_proxy_header). */
    if (is_pp ? !is_proxy_sender(cs, fd, peer) : !admit_peer(cs, fd, peer, &peer_key, &ip_slot))
        return;
    struct wr_conn *c = cs->free_conns;
    if (c) {
        cs->free_conns = c->next;
        cs->n_free_conns--;
    } else if (!(c = malloc(sizeof(*c)))) {
        close(fd);
        atomic_fetch_sub_explicit(cs->n_process_conns, 1, memory_order_relaxed);
        wr_limits_conn_release(cs->limits, ip_slot);
        wr_log(WR_LOG_ERROR, cs->worker_id, 0, "out of memory accepting a connection");
        return;
    }
    cs->henv.metrics = cs->metrics; /* set by the worker after init */
    cs->zw.metrics = cs->metrics;
    *c = (struct wr_conn){.home = cs, .state = ST_HEAD,
                          .ip_slot = ip_slot, .is_h2c = is_h2c};
    wr_stream_init(&c->s, fd);
    wr_timer_init(&c->timer, on_conn_timer);
    c->cfg = wr_config_ref(cs->cfg);
    cs->snapshots[0].n_conns++; /* the current one: cs->cfg */
    c->id = cs->next_conn_id;
    cs->next_conn_id += 1024;
    store_peer(c, peer); /* TCP_NODELAY came with the socket from its listener */
    event_assign(&c->ev_read, cs->base, fd, EV_READ | EV_PERSIST, on_client_read, c);
    c->next = cs->live;
    if (cs->live)
        cs->live->prev = c;
    cs->live = c;
    cs->n_live++;
    cs->n_accepted++;
    wr_metrics_add(&cs->metrics->conns_accepted, 1);
    wr_metrics_set(&cs->metrics->conns_open, cs->n_live);
    c->phase_ms = wr_clock_now_ms();
    bool is_tls_failed = false;
    if (is_pp)
        c->state = is_tls ? ST_PROXY_TLS : ST_PROXY;
    else if (is_tls)
        is_tls_failed = start_handshake(c) < 0;
    else if (flags & WR_CONN_DATA_FIRST) {
        /* Its request is there: read and answer it now, and let settle
         * watch the socket only if the connection lives on. A client that
         * sends one request and asks to close never costs an epoll_ctl
         * (nor the one that would remove it). */
        c->is_read_paused = true; /* not watched yet */
        c->is_read_unsure = true;
        on_client_read(fd, 0, c); /* what 0: called here, not by the loop */
        return;
    }
    if (is_tls_failed || event_add(&c->ev_read, NULL) < 0) {
        conn_close(c);
        return;
    }
    settle(c);
}

/* ---- output ------------------------------------------------------------ */

static bool has_output_room(const struct wr_conn_io *io)
{
    /* The next request may start an exchange (EXCHANGE_SEGS), behind a 100
     * Continue that is still waiting for a slow reader. */
    return io->wlen + MIN_HEAD_ROOM <= WBUF_CAP && io->n_segs + EXCHANGE_SEGS <= MAX_SEGS;
}

static bool record_waits(const struct wr_conn *c);

/* Queued output (held or ready), or a TLS record the socket has not taken. */
static bool has_output_pending(const struct wr_conn *c)
{
    return (c->io && c->io->seg_first < c->io->n_segs) || record_waits(c);
}

static void push_seg(struct wr_conn_io *io, struct wr_stream_seg seg, void *ref,
                     wr_resp_unref_fn unref)
{
    io->refs[io->n_segs] = (struct seg_ref){ref, unref};
    io->segs[io->n_segs++] = seg;
}

static void push_mem(struct wr_conn_io *io, const char *ptr, size_t len)
{
    if (len > 0)
        push_seg(io, (struct wr_stream_seg){.ptr = ptr, .len = len, .fd = -1}, NULL, NULL);
}

/* A memory body owned by a reference: we hold it until the body is sent. */
static void push_mem_ref(struct wr_conn_io *io, const char *ptr, size_t len, void *ref,
                         wr_resp_unref_fn unref)
{
    if (len == 0) {
        unref(ref);
        return;
    }
    push_seg(io, (struct wr_stream_seg){.ptr = ptr, .len = len, .fd = -1}, ref, unref);
}

static void push_file(struct wr_conn_io *io, int fd, off_t off, size_t len, void *ref,
                      wr_resp_unref_fn unref)
{
    push_seg(io, (struct wr_stream_seg){.len = len, .fd = fd, .off = off}, ref, unref);
}

/* Marks n bytes of the leading segments, memory or file, as written. */
static void advance_out(struct wr_conn_io *io, size_t n)
{
    while (n > 0) {
        size_t i = io->seg_first;
        struct wr_stream_seg *s = &io->segs[i];
        size_t take = n < s->len ? n : s->len;
        if (s->fd < 0)
            s->ptr += take;
        else
            s->off += (off_t)take;
        s->len -= take;
        n -= take;
        if (s->len == 0) {
            if (s->fd >= 0 || io->refs[i].ref)
                release_file(s->fd, io->refs[i].ref, io->refs[i].unref);
            s->fd = -1;
            io->refs[i].ref = NULL;
            io->seg_first++;
        }
    }
}

/* A TLS record was taken but not sent: output is pending even with an
 * empty queue (plain TCP: one compare). */
static bool record_waits(const struct wr_conn *c)
{
    return wr_stream_is_tls(&c->s) && wr_stream_wants_write(&c->s);
}

/*
 * One write of the leading ready segments through the stream: one sendmsg
 * (MSG_MORE before a file) or sendfile on plain TCP, one record on TLS
 * (file bytes pread into it). Advances the queue by what was taken.
 */
static ssize_t write_some(struct wr_conn *c, size_t budget)
{
    struct wr_conn_io *io = c->io;
    ssize_t n = wr_stream_send(&c->s, &io->segs[io->seg_first], io->n_ready - io->seg_first,
                               budget);
    if (n > 0)
        advance_out(io, (size_t)n);
    return n;
}

/* Writes ready output within the per-event budget. Returns -1 if c closed. */
static int flush_output(struct wr_conn *c)
{
    struct wr_conn_io *io = c->io;
    size_t budget = WRITE_BUDGET;
    /* A waiting TLS record goes first, also when the queue is empty (any
     * write would flush it too, but none may follow). */
    int r = record_waits(c) ? wr_stream_flush(&c->s) : 0;
    if (r > 0)
        c->io->last_io_ms = wr_clock_now_ms();
    while (r >= 0 && io->seg_first < io->n_ready && budget > 0) {
        ssize_t n = write_some(c, budget);
        if (n <= 0) {
            r = n < 0 && errno != EAGAIN && errno != EWOULDBLOCK ? -1 : 0;
            break;
        }
        c->io->last_io_ms = wr_clock_now_ms();
        wr_metrics_add(&c->home->metrics->bytes_out, (uint64_t)n);
        budget = (size_t)n < budget ? budget - (size_t)n : 0;
    }
    if (r < 0) {
        wr_log(WR_LOG_DEBUG, c->home->worker_id, c->id, "write: %s", strerror(errno));
        conn_close(c);
        return -1;
    }
    if (io->seg_first == io->n_segs) {
        io->seg_first = io->n_segs = io->n_ready = 0;
        io->wlen = 0;
    }
    bool is_blocked = io->seg_first < io->n_ready || record_waits(c);
    if (is_blocked != c->is_write_armed) {
        if (is_blocked)
            event_add(&io->ev_write, NULL);
        else
            event_del(&io->ev_write);
        c->is_write_armed = is_blocked;
    }
    return 0;
}

/* ---- closing ----------------------------------------------------------- */

/*
 * After the last response: shut our side and read until the client closes,
 * so a client still sending (a body we did not read, pipelined requests)
 * does not turn our close into a reset that destroys the response it has
 * not read yet. Bounded in bytes and time.
 */
static int start_linger(struct wr_conn *c)
{
    /* Nothing left to drain (nginx's rule too): the client asked to close,
     * sent no body and nothing after its request, so our close cannot
     * reset a response it has not read; waiting for its FIN would cost an
     * event and a read per connection. TLS still says close_notify. */
    bool is_drained = !c->rb || c->rb->rstart == c->rb->rlen;
    if (c->is_close_asked && is_drained && !c->is_peer_eof) {
        wr_stream_close_notify(&c->s);
        conn_close(c);
        return -1;
    }
    release_io(c->home, c);
    release_rbuf(c->home, c); /* what comes now is dropped unread (linger_read) */
    /* TLS: close_notify first (settle gets here only once no record waits). */
    if (c->is_peer_eof || wr_stream_shutdown(&c->s) < 0) {
        conn_close(c);
        return -1;
    }
    c->state = ST_LINGER;
    set_timer(c, wr_clock_now_ms() + LINGER_MS);
    if (c->is_read_paused) {
        event_add(&c->ev_read, NULL);
        c->is_read_paused = false;
    }
    return 0;
}

/* Raw reads even on TLS: what arrives now is only dropped, and it need
 * not be decrypted for that. */
static void linger_read(struct wr_conn *c)
{
    char *buf = c->home->scratch;
    ssize_t n = wr_stream_discard(&c->s, buf, c->home->scratch_cap);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0)
        c->linger_bytes += (uint32_t)n; /* n <= scratch_cap, far below 4 GiB */
    if (n <= 0 || c->linger_bytes > LINGER_MAX_BYTES)
        conn_close(c);
}

/* Makes deadline_ms (0: none) c's real deadline, and its timer no later
 * than that: moved only when the deadline comes earlier (timer.h). */
static void set_timer(struct wr_conn *c, uint64_t deadline_ms)
{
    c->deadline_ms = deadline_ms;
    if (deadline_ms != 0)
        wr_timer_arm_lazy(&c->home->wheel, &c->timer, deadline_ms);
}

/* The deadline that applies now (0: none). */
static uint64_t pick_deadline(const struct wr_conn *c)
{
    const struct wr_limits_cfg *lim = &c->cfg->limits;
    const struct wr_conn_io *io = c->io;
    if (c->state == ST_HANDSHAKE)
        return c->phase_ms + wr_tls_handshake_timeout_ms(wr_stream_tls(&c->s));
    /* Output pending or a body being read: io holds it (a TLS record never
     * waits without io: settle gives io back only once nothing is pending). */
    if (io && (io->seg_first < io->n_ready || record_waits(c)))
        return io->last_io_ms + lim->send_timeout_ms;
    if (c->state == ST_EXCHANGE && io->body_kind != BODY_NONE && !c->is_body_blocked)
        return io->last_io_ms + lim->body_timeout_ms;
    if (c->state == ST_EXCHANGE || c->state == ST_TUNNEL)
        return 0; /* the handler keeps its own deadlines (the proxy's upstream ones) */
    if (c->state == ST_BODY)
        return io->last_io_ms + lim->body_timeout_ms;
    if ((c->rb && c->rb->rstart < c->rb->rlen) || c->n_requests == 0)
        return c->phase_ms + lim->header_timeout_ms;
    return c->phase_ms + lim->keepalive_timeout_ms;
}

/* Picks the deadline that applies now and arms for it. */
static void set_deadline(struct wr_conn *c)
{
    set_timer(c, pick_deadline(c));
}

/*
 * Called after every event: flushes, then decides what the connection waits
 * for next (close, linger, more input, the socket to drain) and its
 * deadline. Returns -1 if c was closed.
 */
static int settle(struct wr_conn *c)
{
    struct wr_conn_io *io = c->io;
    if (c->state == ST_TUNNEL || c->state == ST_H2 || c->is_doomed)
        return 0;
    if (io && flush_output(c) < 0)
        return -1;
    bool is_pending = has_output_pending(c);
    if (c->state == ST_CLOSING && !is_pending)
        return start_linger(c);
    /* An exchange outlives a half-close (exchange_read decides). */
    if (c->is_peer_eof && !is_pending && c->state != ST_EXCHANGE) {
        conn_close(c);
        return -1;
    }
    /* Waiting for a head with nothing to write: only the input is kept (a
     * slowloris client costs its read buffer, not a response's buffers). */
    bool is_head_wait = c->state == ST_HEAD && !is_pending && !c->is_backlogged;
    bool is_idle = is_head_wait && (!c->rb || c->rb->rstart == c->rb->rlen);
    if (is_idle && c->home->is_draining && c->n_requests > 0) {
        conn_close(c);
        return -1;
    }
    if (is_head_wait && io)
        release_io(c->home, c);
    if (is_idle && c->rb) {
        release_rbuf(c->home, c);
        c->phase_ms = wr_clock_now_ms();
    }
    /* Backpressure: no reading while our answers cannot be written, nor
     * while the server does not take the body, nor into a full buffer. */
    bool should_pause = c->is_write_armed || c->is_peer_eof;
    if (c->state == ST_EXCHANGE)
        should_pause = c->is_peer_eof || c->is_body_blocked || c->rb->rlen == c->rb->cap;
    if (should_pause != c->is_read_paused) {
        if (should_pause)
            event_del(&c->ev_read);
        else
            event_add(&c->ev_read, NULL);
        c->is_read_paused = should_pause;
    }
    /* Requests already read never make the socket readable again: come
     * back to them on the next loop turn, after other connections had theirs. */
    if (c->is_backlogged && !c->is_write_armed)
        event_active(&c->ev_read, EV_READ, 0);
    /* Likewise for records OpenSSL already took off the socket. */
    else if (wr_stream_is_tls(&c->s) && !c->is_read_paused && c->state != ST_LINGER &&
             wr_stream_has_pending(&c->s))
        event_active(&c->ev_read, EV_READ, 0);
    set_deadline(c);
    count_idle(c);
    return 0;
}

/* ---- answering --------------------------------------------------------- */

void wr_conns_request_id(struct wr_conns *cs, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (int half = 0; half < 2; half++) {
        /* xorshift128+: ids must be unique, not secret */
        uint64_t x = cs->rng[0], y = cs->rng[1];
        cs->rng[0] = y;
        x ^= x << 23;
        cs->rng[1] = x ^ y ^ (x >> 17) ^ (y >> 26);
        uint64_t v = cs->rng[1] + y;
        for (int i = 0; i < 16; i++)
            out[half * 16 + i] = hex[(v >> (i * 4)) & 15];
    }
    out[32] = '\0';
}

/* $host: the request's host, lower-cased, without port. */
static struct wr_str host_var(struct wr_conns *cs, struct wr_str host)
{
    return wr_router_host_var(host, cs->host_buf, sizeof(cs->host_buf));
}

static void log_request(struct wr_conn *c)
{
    struct wr_conns *cs = c->home;
    struct wr_access_log *al = wr_conns_access_log(cs, c->io->route);
    if (!al)
        return;
    const struct wr_http_request *req = &c->io->req;
    struct wr_access_entry e = {
        .remote_addr = wr_str_from_cstr(c->io->peer),
        .method = req->method,
        .target = req->target,
        .host = req->host,
        .referer = wr_http_known_value(req, WR_HTTP_KNOWN_REFERER),
        .user_agent = wr_http_known_value(req, WR_HTTP_KNOWN_USER_AGENT),
        .request_id = wr_str_from_cstr(c->io->request_id),
        .route = c->io->route ? wr_str_from_cstr(c->io->route->name) : WR_STR(""),
        .minor_version = req->minor_version,
        .status = c->io->log_status,
        .bytes_sent = c->io->log_bytes,
        .request_time_us = c->io->start_us ? wr_clock_now_us() - c->io->start_us
                                           : (wr_clock_now_ms() - c->phase_ms) * 1000,
        .log_time = cs->clock.log_time,
        .iso_time = cs->clock.iso_time,
        .is_tls = wr_stream_is_tls(&c->s),
        .ssl_protocol = wr_stream_is_tls(&c->s) ? wr_tls_version(wr_stream_tls(&c->s)) : NULL,
        .req = req->method.len > 0 ? req : NULL, /* a head that failed: no fields */
    };
    const struct wr_log_format *f = &c->cfg->server.access_log_format;
    if (f->has_msec_time)
        e.unix_ms = wr_log_unix_ms();
    /* What the handler recorded: the proxy's upstream fields (those of
     * the exchange an error page replaced first). */
    if (c->io->has_kept_upstream) {
        e.upstream_addr = wr_str_from_cstr(c->io->kept_upstream_addr);
        e.upstream_status = wr_str_from_cstr(c->io->kept_upstream_status);
        e.upstream_time_us = c->io->kept_upstream_time_us;
    } else if (c->ex && c->ex->log.upstream_addr) {
        e.upstream_addr = wr_str_from_cstr(c->ex->log.upstream_addr);
        e.upstream_status = wr_str_from_cstr(c->ex->log.upstream_status);
        e.upstream_time_us = c->ex->log.upstream_time_us;
    }
    wr_access_log_add(al, f, &e);
}

/* Starts an error response in r: status line, page, Allow for 405. */
static void build_error(struct wr_conn *c, struct wr_resp *r, int status, const char *allow)
{
    struct wr_conn_io *io = c->io;
    wr_resp_init(r, io->wbuf + io->wlen, WBUF_CAP - io->wlen);
    wr_resp_start(r, status, &c->home->clock);
    if (allow)
        wr_resp_field(r, WR_HTTP_FIELD_ALLOW, wr_str_from_cstr(allow));
    wr_resp_set_page(r);
}

/* Finishes r's head for this client: status line, framing fields (the
 * whole body is known: its length), Connection. */
static void finish_head(struct wr_conn *c, struct wr_resp *r, bool is_keep_alive)
{
    const struct wr_http_request *req = &c->io->req;
    r->has_length = !r->is_length_unknown;
    struct wr_h1_framing f = wr_h1_choose_framing(r->status, req->method_id == WR_HTTP_HEAD,
                                                  r->has_length, req->minor_version,
                                                  is_keep_alive);
    wr_h1_finish_head(r, &f, req->minor_version);
}

/*
 * Finishes the head in r and queues it with its body. The route's
 * add_header fields replace the fields of the same names weir wrote (known
 * at load: route->replaced_fields), else are added. The response is held
 * (not yet written) while the request's body is still to be read.
 */
static void commit_response(struct wr_conn *c, struct wr_resp *r, const struct wr_route *route,
                            const struct wr_tmpl_vars *vars, bool is_keep_alive)
{
    struct wr_conn_io *io = c->io;
    wr_resp_add_route_fields(r, route, vars);
    finish_head(c, r, is_keep_alive);
    if (r->is_overflow) {
        if (r->file_fd >= 0 || r->body_ref)
            release_file(r->file_fd, r->body_ref, r->body_unref);
        struct wr_log_request rq = log_subject(c);
        wr_log_request(WR_LOG_ERROR, c->home->worker_id, c->id, &rq,
                       "response head over %d bytes", WBUF_CAP);
        build_error(c, r, 500, NULL);
        finish_head(c, r, is_keep_alive);
    }
    bool is_bodiless = r->is_head_only;
    io->held_seg = io->n_segs;
    io->held_wlen = io->wlen;
    struct wr_str head = wr_resp_bytes(r);
    push_mem(io, head.ptr, head.len);
    io->wlen += r->head_len; /* the status room before it included */
    bool has_file = r->file_fd >= 0 || r->body_ref;
    if (has_file && (is_bodiless || r->body_len == 0))
        release_file(r->file_fd, r->body_ref, r->body_unref);
    else if (r->file_fd >= 0)
        push_file(io, r->file_fd, r->file_off, r->body_len, r->body_ref, r->body_unref);
    else if (r->body_ref)
        push_mem_ref(io, r->body, r->body_len, r->body_ref, r->body_unref); /* a cached small file */
    else if (!is_bodiless)
        push_mem(io, r->body, r->body_len);
    io->log_status = r->status;
    if (route)
        io->route = route; /* else: the one dispatch chose, or none */
    io->log_bytes = is_bodiless ? 0 : r->body_len;
}

/* A route's rate_limit for this client: 0, or 429 with the seconds to wait. */
static int check_rate(struct wr_conn *c, const struct wr_route *route, uint64_t *retry_after_s,
                      const struct wr_log_request *rq)
{
    uint64_t key = peer_key(c);
    if (key == 0)
        return 0; /* unix clients: no address to tell clients apart */
    uint64_t now_us = wr_clock_now_us();
    *retry_after_s = wr_limits_rate_check(c->home->limits, key, route->name,
                                          &route->rate_limit, now_us);
    if (*retry_after_s == 0)
        return 0;
    char what[160];
    snprintf(what, sizeof(what), "over rate_limit of route %.64s; 429", route->name);
    log_refusal(c->home, c->id, what, c->io->peer, rq);
    return 429;
}

static const struct wr_exchange_sink h1_sink;

/*
 * Starts the route's handler on io->req through a new exchange (c->ex).
 * Returns 0 when the handler took the request: *is_async false when it
 * answered at once (the exchange is disposed again), true when it answers
 * over time (ST_EXCHANGE follows; the end arrives through the sink). Else
 * the status to answer with a page. e and er NULL; for an error page
 * (serve_error_page) e and its internal request er (taken over, also on
 * failure), the page's route in cs->error_match.
 */
static int start_exchange(struct wr_conn *c, const struct wr_tmpl_vars *vars, struct wr_str path,
                          size_t path_len, const struct wr_exchange_error *e,
                          struct wr_conns_error_req *er, bool *is_async)
{
    struct wr_conns *cs = c->home;
    struct wr_conn_io *io = c->io;
    const struct wr_router_match *m = er ? &cs->error_match : &cs->match;
    const struct wr_route *route = m->route;
    const struct wr_http_request *req = er ? &er->req : &io->req;
    *is_async = false;
    struct wr_conn_exchange *ce = take_exchange(cs);
    if (!ce) {
        wr_conns_error_req_give(cs, er);
        return 500;
    }
    ce->subject = log_subject(c);
    ce->ereq = er;
    ce->ex = (struct wr_exchange){
        .req = req, .route = route, .match = m, .path = path, .vars = vars,
        .clock = &cs->clock, .resp = &ce->resp,
        .scratch = cs->scratch + path_len, .scratch_cap = cs->scratch_cap - path_len,
        .log_subject = &ce->subject, .worker_id = cs->worker_id, .conn_id = c->id,
        .client_addr = wr_str_from_cstr(io->peer), .is_tls = wr_stream_is_tls(&c->s),
        .has_body = req->is_chunked || (req->has_content_length && req->content_length > 0),
        .is_keep_alive = io->is_exchange_keep_alive,
        .max_head_bytes = c->cfg->limits.max_header_bytes,
        .error = e ? *e : (struct wr_exchange_error){0},
        .zw = &cs->zw, .compression = &c->cfg->compression, .cfg = c->cfg,
    };
    wr_resp_init(&ce->resp, io->wbuf + io->wlen, WBUF_CAP - io->wlen);
    wr_exchange_init(&ce->ex, wr_handler_for(wr_handler_slot(route)),
                     wr_handlers_state(&cs->handlers, wr_handler_slot(route)), &h1_sink, c);
    c->ex = &ce->ex;
    c->is_body_blocked = false;
    io->is_responded = false;
    int status = wr_exchange_start(&ce->ex);
    *is_async = status == 0 && !io->is_responded;
    if (!*is_async)
        drop_exchange(c);
    return status;
}

/* The request's variables without a route's captures ($host, $scheme...),
 * for answers made after dispatch (the dispatch's own died with it). */
static void request_vars(struct wr_conn *c, struct wr_tmpl_vars *vars)
{
    struct wr_conn_io *io = c->io;
    *vars = (struct wr_tmpl_vars){
        .host = host_var(c->home, io->req.host),
        .request_uri = io->req.target,
        .scheme = wr_stream_is_tls(&c->s) ? WR_STR("https") : WR_STR("http"),
        .remote_addr = wr_str_from_cstr(io->peer),
        .request_id = wr_str_from_cstr(io->request_id),
    };
    struct wr_conns_client_cert cert;
    wr_conns_client_cert(&cert, wr_stream_tls(&c->s), vars);
}

/*
 * Answers e->status with the error page its route (or [server]) names, if
 * there is one (error_page.h): the internal request is routed and the
 * page's route's handler started, vars (the original request's) giving
 * way to the page route's captures; at: the scratch bytes in use. The
 * answer counts under the original route. Returns 0 when the page answers
 * (*is_async as for start_exchange), -1 when the caller answers its
 * built-in page instead.
 */
static int serve_error_page(struct wr_conn *c, struct wr_exchange_error *e,
                            const struct wr_tmpl_vars *vars, size_t at, bool *is_async)
{
    struct wr_conns *cs = c->home;
    struct wr_str path;
    struct wr_conns_error_req *er = wr_conns_error_page(cs, c->cfg, &c->io->req, e, vars->host,
                                                        wr_stream_is_tls(&c->s), at, &path);
    if (!er)
        return -1;
    struct wr_tmpl_vars page_vars = *vars;
    page_vars.subject = path.ptr;
    page_vars.ovector = cs->error_match.ovector;
    page_vars.n_captures = cs->error_match.n_captures;
    size_t used = path.ptr == cs->scratch + at ? at + path.len : at;
    c->io->route = e->route;
    c->io->is_abort_on_eof = false;
    return start_exchange(c, &page_vars, path, used, e, er, is_async) == 0 ? 0 : -1;
}

/*
 * Picks the route for io->req into cs->match, with *path the path it was
 * matched on (normalised into cs->scratch, or the request's "*"). Returns 0
 * with a route, 200 for an OPTIONS * no route takes (weir answers it, with
 * the server's methods in match->allow), or the status to answer. The
 * steps are router.c's, which `weir route` runs too; only the 421 is ours.
 */
int wr_conns_select_route(struct wr_conns *cs, const struct wr_config *cfg,
                          const struct wr_stream *s, const struct wr_http_request *req,
                          struct wr_str host, struct wr_str *path)
{
    const bool is_tls = wr_stream_is_tls(s);
    if (req->method_id != WR_HTTP_CONNECT) {
        int status = wr_router_request_path(req, cs->scratch, path);
        /* A connection's certificate answers only its own section's names. */
        if (status == 0 && is_tls && wr_tls_is_misdirected(wr_stream_tls(s), host))
            status = 421;
        if (status != 0)
            return status;
    }
    struct wr_router_input in = {host, *path, req->method_id, req->method, is_tls};
    return wr_router_route(cfg, cs->router, &in, &cs->match);
}

struct wr_conns_error_req *wr_conns_error_page(struct wr_conns *cs, const struct wr_config *cfg,
                                               const struct wr_http_request *req,
                                               struct wr_exchange_error *e, struct wr_str host,
                                               bool is_tls, size_t at, struct wr_str *path)
{
    const struct wr_error_pages *ep = e->route ? &e->route->error_pages
                                               : &cfg->server.error_pages;
    const char *page = wr_error_page_find(ep, e->status);
    if (!page || at + strlen(page) > cs->scratch_cap)
        return NULL;
    struct wr_conns_error_req *er = wr_buf_pool_take(&cs->error_reqs);
    if (!er)
        return NULL;
    wr_error_page_request(&er->req, req, page);
    struct wr_router_match *m = &cs->error_match;
    m->route = NULL;
    m->n_captures = 0;
    int status = wr_router_request_path(&er->req, cs->scratch + at, path);
    if (status == 0) {
        struct wr_router_input in = {host, *path, er->req.method_id, er->req.method, is_tls};
        status = wr_router_route(cfg, cs->router, &in, m);
    }
    if (status != 0 || !m->route) {
        wr_buf_pool_give(&cs->error_reqs, er);
        return NULL;
    }
    if (e->allow) {
        snprintf(er->allow, sizeof(er->allow), "%s", e->allow);
        e->allow = er->allow;
    }
    return er;
}

void wr_conns_error_req_give(struct wr_conns *cs, struct wr_conns_error_req *er)
{
    if (er)
        wr_buf_pool_give(&cs->error_reqs, er);
}

static int select_route(struct wr_conn *c, struct wr_str host, struct wr_str *path)
{
    return wr_conns_select_route(c->home, c->cfg, &c->s, &c->io->req, host, path);
}

/* 200 to an OPTIONS * that no route takes: the server's methods, no content
 * (RFC 9110 §9.3.7: Content-Length: 0 then). */
static void build_server_options(struct wr_conn *c, struct wr_resp *r, const char *allow)
{
    struct wr_conn_io *io = c->io;
    wr_resp_init(r, io->wbuf + io->wlen, WBUF_CAP - io->wlen);
    wr_resp_start(r, 200, &c->home->clock);
    wr_resp_field(r, WR_HTTP_FIELD_ALLOW, wr_str_from_cstr(allow));
    r->body = "";
    r->body_len = 0;
    r->has_length = true;
}

/*
 * The request refused with e->status (before its handler, or by its
 * start): its error page (serve_error_page), else the built-in page in r
 * with the route's rules marked always. Returns true when the page
 * answers over time (dispatch's contract).
 */
static bool refuse(struct wr_conn *c, struct wr_resp *r, struct wr_exchange_error *e,
                   const struct wr_tmpl_vars *vars, size_t path_len, bool is_keep_alive)
{
    c->io->is_answer_keep_alive = c->io->is_exchange_keep_alive = is_keep_alive;
    bool is_async;
    if (serve_error_page(c, e, vars, path_len, &is_async) == 0)
        return is_async;
    build_error(c, r, e->status, NULL);
    wr_exchange_error_fields(r, e);
    commit_response(c, r, e->route, vars, is_keep_alive);
    return false;
}

/*
 * Runs the router and the route's handler for the parsed request in io->req.
 * Returns true when the handler answers over time (ST_EXCHANGE; no response
 * queued yet).
 * is_keep_alive: the connection may go on after the exchange; is_body_unsent:
 * a client waits for 100 Continue before sending its body, so any answer
 * other than an exchange's that takes the body closes the connection (the
 * body is never read).
 */
static bool dispatch(struct wr_conn *c, struct wr_resp *r, bool is_keep_alive,
                     bool is_body_unsent)
{
    struct wr_conns *cs = c->home;
    struct wr_conn_io *io = c->io;
    const struct wr_http_request *req = &io->req;
    struct wr_router_match *m = &cs->match;
    m->route = NULL;
    m->n_captures = 0;
    struct wr_str host = host_var(cs, req->host);
    struct wr_str path = {cs->scratch, 0};
    int status = select_route(c, host, &path);
    /* Scratch past the normalised path is free for the action. */
    const size_t path_len = path.ptr == cs->scratch ? path.len : 0;
    wr_conns_request_id(cs, io->request_id);
    struct wr_tmpl_vars vars = {
        .host = host,
        .request_uri = req->target,
        .scheme = wr_stream_is_tls(&c->s) ? WR_STR("https") : WR_STR("http"),
        .remote_addr = wr_str_from_cstr(io->peer),
        .request_id = wr_str_from_cstr(io->request_id),
        .subject = path.ptr,
        .ovector = m->ovector,
        .n_captures = m->n_captures,
    };
    struct wr_conns_client_cert cert;
    wr_conns_client_cert(&cert, wr_stream_tls(&c->s), &vars);
    if (status == 0 && m->route->require_client_cert && !cert.is_verified)
        status = 403; /* require_client_cert: no verified client certificate */
    if (status == 200) {
        build_server_options(c, r, m->allow);
        commit_response(c, r, NULL, &vars, is_keep_alive && !is_body_unsent);
        return false;
    }
    uint64_t retry_after_s = 0;
    struct wr_log_request subject = log_subject(c);
    if (status == 0 && !wr_access_allows(m->route->access, m->route->n_access, io->peer))
        status = 403; /* the route's allow and deny */
    if (status == 0 && m->route->auth_challenge)
        status = wr_conns_check_auth(cs, m->route, req, peer_key(c), io->peer, &retry_after_s);
    if (status == 0 && m->route->rate_limit.interval_us != 0)
        status = check_rate(c, m->route, &retry_after_s, &subject);
    if (status == 0) {
        /* Its answers, 502/504 included, count under the route. */
        io->route = m->route;
        io->is_abort_on_eof = m->route->abort_on_eof;
        io->is_answer_keep_alive = is_keep_alive && !is_body_unsent;
        io->is_exchange_keep_alive = is_keep_alive;
        bool is_async;
        status = start_exchange(c, &vars, path, path_len, NULL, NULL, &is_async);
        if (status == 0)
            return is_async; /* else answered through the sink (h1_respond) */
    }
    struct wr_exchange_error e = {.status = status, .route = m->route,
                                  .allow = status == 405 ? m->allow : NULL,
                                  .retry_after_s = status == 429 ? retry_after_s : 0};
    /* An error page never invites a body it does not want: a client that
     * waits for 100 Continue gets the page, then the close. */
    return refuse(c, r, &e, &vars, path_len, is_keep_alive && !is_body_unsent);
}

/* Logs the request in flight and counts it under its route: every access
 * log line is a request in weir_http_requests_total (aborted and cut
 * proxied exchanges and tunnels included). */
static void account_request(struct wr_conn *c)
{
    struct wr_conn_io *io = c->io;
    log_request(c);
    /* The same duration as the access log's request_time. */
    wr_metrics_count_request(c->home->metrics, io->route ? io->route->metrics_id : 0,
                             io->log_status, (wr_clock_now_ms() - c->phase_ms) * 1000);
}

/* The request (and its body) is complete: log it, release its response. */
static void finish_request(struct wr_conn *c)
{
    struct wr_conn_io *io = c->io;
    account_request(c);
    io->n_ready = io->n_segs;
    io->body_kind = BODY_NONE;
    c->rb->pin = 0;
    if (c->rb->rstart == c->rb->rlen)
        c->rb->rstart = c->rb->rlen = 0;
    else if (io->start_us)
        io->start_us = wr_clock_now_us(); /* a pipelined request starts now */
    c->phase_ms = wr_clock_now_ms();
    if (c->state == ST_BODY)
        c->state = ST_HEAD;
}

/*
 * A 413 (a body over max_body_size) with its error page: the route's, once
 * one answered, else [server]'s. Only a page answered at once (a static
 * file, a return): the connection closes right after it, the body unread,
 * so a page that answers over time (proxied) gets the built-in one.
 * Returns 0 when the page is queued, else -1.
 */
static int serve_closing_page(struct wr_conn *c, int status)
{
    struct wr_conns *cs = c->home;
    struct wr_conn_io *io = c->io;
    struct wr_exchange_error e = {.status = status, .route = io->route};
    struct wr_tmpl_vars vars;
    request_vars(c, &vars);
    struct wr_str path;
    struct wr_conns_error_req *er =
        wr_conns_error_page(cs, c->cfg, &io->req, &e, vars.host, wr_stream_is_tls(&c->s), 0,
                            &path);
    if (!er)
        return -1;
    if (cs->error_match.route->action == WR_ACTION_PROXY) {
        wr_conns_error_req_give(cs, er);
        return -1;
    }
    vars.subject = path.ptr;
    vars.ovector = cs->error_match.ovector;
    vars.n_captures = cs->error_match.n_captures;
    io->is_answer_keep_alive = io->is_exchange_keep_alive = false;
    bool is_async;
    int rc = start_exchange(c, &vars, path, path.ptr == cs->scratch ? path.len : 0, &e, er,
                            &is_async);
    if (is_async)
        drop_exchange(c); /* ended already: the page was not a 200 */
    return rc == 0 && !is_async ? 0 : -1;
}

/*
 * Answers status and closes after the flush (framing errors, 413). Drops
 * the held response of the current request first, if any: a body that
 * broke the rules replaces the answer the handler had prepared.
 */
static void answer_and_close(struct wr_conn *c, int status, bool has_request)
{
    struct wr_conn_io *io = c->io;
    if (c->state == ST_BODY) {
        drop_segs(io, io->held_seg);
        io->wlen = io->held_wlen;
    }
    if (!has_request) {
        /* Log what we can of a head we could not parse: its first line. */
        const char *line = c->rb->data + c->rb->rstart;
        size_t avail = c->rb->rlen - c->rb->rstart, n = 0;
        while (n < avail && n < 256 && line[n] != '\r' && line[n] != '\n')
            n++;
        io->req.method = (struct wr_str){NULL, 0};
        io->req.target = (struct wr_str){line, n};
        io->req.host = (struct wr_str){NULL, 0};
        io->req.n_headers = 0;
        io->req.is_indexed = false; /* known[] may point at fields of the failed parse */
        io->req.minor_version = 1;
        io->req.method_id = WR_HTTP_OTHER;
        io->request_id[0] = '\0';
        io->route = NULL;
    }
    if (!has_request || status != 413 || serve_closing_page(c, status) < 0) {
        struct wr_resp r;
        build_error(c, &r, status, NULL);
        commit_response(c, &r, NULL, NULL, false);
    }
    if (!has_request && wr_log_is_enabled(WR_LOG_DEBUG))
        wr_log(WR_LOG_DEBUG, c->home->worker_id, c->id, "bad request head: %d", status);
    finish_request(c);
    c->state = ST_CLOSING;
}

/* ---- exchanges answered over time ------------------------------------- */

/* Closes c from its own next event: sink calls and the functions they
 * reach never close a connection under the handler's feet. */
static void defer_close(struct wr_conn *c)
{
    c->is_doomed = true;
    event_active(&c->ev_read, EV_READ, 0);
}

/* The body broke the rules (bad chunk, over max_body_size): status, then
 * close; or only the close when the exchange's response is already under
 * way. */
static void reject_body(struct wr_conn *c, int status)
{
    if (c->ex && (c->ex->is_head_sent || c->ex->is_ended)) {
        defer_close(c);
        return;
    }
    drop_exchange(c);
    c->io->body_kind = BODY_NONE;
    answer_and_close(c, status, true);
}

/* Takes the next run of body bytes out of the buffer. Returns false when
 * the buffer holds no more of the body. */
static bool next_piece(struct wr_conn *c)
{
    struct wr_conn_io *io = c->io;
    uint64_t max_body = c->cfg->limits.max_body_bytes;
    while (c->rb->rstart < c->rb->rlen) {
        size_t avail = c->rb->rlen - c->rb->rstart;
        if (io->body_kind == BODY_LENGTH) {
            size_t take = io->body_left < avail ? (size_t)io->body_left : avail;
            io->piece = c->rb->data + c->rb->rstart;
            io->piece_len = take;
            c->rb->rstart += take;
            io->body_left -= take;
            io->is_piece_last = io->body_left == 0;
            return true;
        }
        struct wr_str data;
        ssize_t n = wr_http_chunked_parse(&io->chunked, c->rb->data + c->rb->rstart, avail, &data);
        if (n < 0) {
            reject_body(c, 400);
            return false;
        }
        c->rb->rstart += (size_t)n;
        io->body_seen += data.len;
        if (max_body > 0 && io->body_seen > max_body) {
            reject_body(c, 413);
            return false;
        }
        io->piece = data.ptr;
        io->piece_len = data.len;
        io->is_piece_last = io->chunked.is_done;
        if (data.len > 0 || io->is_piece_last)
            return true;
    }
    /* All consumed: read the next bytes right behind the head. */
    c->rb->rstart = c->rb->rlen = c->rb->pin;
    return false;
}

/*
 * A client waiting for 100 Continue is invited once the server connection
 * is ready for the body (connected, request head written), as nginx does
 * when it starts reading a body: a dead or refused upstream gets its
 * 502/504 before the client uploads anything, and a retry to another
 * server costs the client nothing. Returns false while the server is not
 * ready (body_room() follows, or the exchange ends).
 */
static bool invite_body(struct wr_conn *c)
{
    struct wr_conn_io *io = c->io;
    if (c->rb->rstart == c->rb->rlen && !wr_exchange_can_recv_body(c->ex)) {
        c->is_body_blocked = true;
        return false;
    }
    /* Body bytes already here: the client did not wait, no 100 needed. */
    if (c->rb->rstart == c->rb->rlen) {
        push_mem(io, continue_line, sizeof(continue_line) - 1);
        io->n_ready = io->n_segs;
        c->io->last_io_ms = wr_clock_now_ms(); /* body_timeout runs from the invitation */
    }
    io->is_continue_owed = false;
    return true;
}

/* The handler ended the exchange, or asked for the 101: c acts on it once
 * its output is written. */
static bool is_exchange_due(const struct wr_conn *c)
{
    return c->ex && (c->ex->is_ended || c->is_upgrading);
}

/* Hands the request body in the buffer to the handler, as far as it takes
 * it (a handler that takes no body has it discarded). */
static void forward_body(struct wr_conn *c)
{
    struct wr_conn_io *io = c->io;
    if (io->is_continue_owed && c->ex && c->ex->error.status) {
        /* An error page wants no body: never invite one; the connection
         * closes after the page. */
        io->is_continue_owed = false;
        io->is_exchange_keep_alive = false;
    }
    if (io->is_continue_owed && c->ex && !is_exchange_due(c) && !c->is_doomed &&
        !invite_body(c))
        return;
    while (io->body_kind != BODY_NONE && c->ex && !c->is_doomed && c->state == ST_EXCHANGE) {
        if (io->piece_len == 0 && !io->is_piece_last && !next_piece(c))
            return;
        ssize_t k = wr_exchange_recv_body(c->ex, io->piece, io->piece_len, io->is_piece_last);
        if (k < 0 || (size_t)k < io->piece_len) {
            if (k > 0) {
                io->piece += k;
                io->piece_len -= (size_t)k;
            }
            c->is_body_blocked = true;
            return;
        }
        io->piece_len = 0;
        if (io->is_piece_last) {
            io->is_piece_last = false;
            io->body_kind = BODY_NONE;
        }
        c->io->last_io_ms = wr_clock_now_ms();
    }
}

/* Writes queued output without ever closing c. Returns true when the whole
 * queue went out. */
static bool write_queued(struct wr_conn *c)
{
    struct wr_conn_io *io = c->io;
    bool is_written = true;
    while (io->seg_first < io->n_ready) {
        ssize_t n = write_some(c, WRITE_BUDGET);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            defer_close(c);
            return false;
        }
        if (n <= 0) {
            is_written = false;
            break;
        }
        c->io->last_io_ms = wr_clock_now_ms();
        wr_metrics_add(&c->home->metrics->bytes_out, (uint64_t)n);
    }
    /* The bytes of a TLS record that waits are the stream's own copy: the
     * proxy's buffers are free, but the record needs EV_WRITE. */
    if ((!is_written || record_waits(c)) && !c->is_write_armed) {
        event_add(&io->ev_write, NULL);
        c->is_write_armed = true;
    }
    if (is_written) {
        io->seg_first = io->n_segs = io->n_ready = 0;
        io->wlen = 0;
    }
    return is_written;
}

/* ---- the sink (handler.h): the handler answers through these ---------- */

/* The whole response at once (one-shot handlers, from start). */
static void h1_respond(struct wr_exchange *ex)
{
    struct wr_conn *c = ex->front;
    c->io->is_responded = true;
    /* An error page's answer counts under, and gets the rules of, the
     * route that erred (NULL: none). */
    const struct wr_route *route = ex->error.status ? ex->error.route : ex->route;
    commit_response(c, ex->resp, route, ex->vars, c->io->is_answer_keep_alive);
}

/* Queues the handler's head, finished for this client (the framing decided
 * here); the body follows with h1_send, in the same write. */
static void h1_send_head(struct wr_exchange *ex)
{
    struct wr_conn *c = ex->front;
    struct wr_conn_io *io = c->io;
    struct wr_resp *r = ex->resp;
    const struct wr_http_request *req = &io->req;
    struct wr_h1_framing f =
        wr_h1_choose_framing(r->status, req->method_id == WR_HTTP_HEAD, r->has_length,
                             req->minor_version, io->is_exchange_keep_alive);
    io->out_body = f.body;
    io->is_out_ended = false;
    io->is_exchange_keep_alive = f.is_keep_alive;
    wr_h1_finish_head(r, &f, req->minor_version);
    if (r->is_overflow) {
        /* The handler left less than WR_RESP_FRAMING_ROOM: a bug there, and
         * too late for a 500 of ours. */
        io->out_body = WR_H1_BODY_NONE;
        defer_close(c);
        return;
    }
    struct wr_str head = wr_resp_bytes(r);
    push_mem(io, head.ptr, head.len);
    io->n_ready = io->n_segs;
}

/* The body is complete: a chunked one ends with its last chunk. */
static void end_body(struct wr_conn_io *io)
{
    if (io->out_body == WR_H1_BODY_CHUNKED && !io->is_out_ended)
        push_mem(io, "0\r\n\r\n", 5);
    io->is_out_ended = true;
}


/* Body payload: framed (one chunk per call when chunked), queued and
 * written as far as the socket takes it now, never closing c. */
static bool h1_send(struct wr_exchange *ex, const struct iovec *iov, int n, bool is_final)
{
    struct wr_conn *c = ex->front;
    struct wr_conn_io *io = c->io;
    if (io->out_body == WR_H1_BODY_NONE || io->is_out_ended)
        return true; /* no body may follow this head (HEAD, 204, 304) */
    /* Room: has_output_room reserved EXCHANGE_SEGS before the exchange began,
     * and the handler sends again only once this is written (proceed). */
    if (io->n_segs + (size_t)n + 3 > MAX_SEGS || io->wlen + 18 > WBUF_CAP) {
        defer_close(c);
        return false;
    }
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    bool is_chunk = io->out_body == WR_H1_BODY_CHUNKED && total > 0;
    if (is_chunk) {
        size_t k = wr_h1_chunk_size_line(io->wbuf + io->wlen, total);
        push_mem(io, io->wbuf + io->wlen, k);
        io->wlen += k;
    }
    for (int i = 0; i < n; i++)
        push_mem(io, iov[i].iov_base, iov[i].iov_len);
    if (is_chunk)
        push_mem(io, "\r\n", 2);
    if (is_final)
        end_body(io);
    io->n_ready = io->n_segs;
    bool is_written = !c->is_doomed && write_queued(c);
    c->is_proceed_owed = !is_written;
    return is_written;
}

static void h1_body_room(struct wr_exchange *ex)
{
    struct wr_conn *c = ex->front;
    c->is_body_blocked = false;
    event_active(&c->ev_read, EV_READ, 0);
}

static void h1_end(struct wr_exchange *ex, int how)
{
    struct wr_conn *c = ex->front;
    if (how == WR_EXCHANGE_COMPLETE && c->io && ex->is_head_sent && !c->is_upgrading) {
        end_body(c->io);
        c->io->n_ready = c->io->n_segs;
    }
    event_active(&c->ev_read, EV_READ, 0); /* on_client_read hands it on */
}

/* The 101 and the server's first bytes; the tunnel starts once they are
 * written (start_tunnel). */
static void h1_upgrade(struct wr_exchange *ex, const struct iovec *iov, int n)
{
    struct wr_conn *c = ex->front;
    struct wr_conn_io *io = c->io;
    struct wr_resp *r = ex->resp;
    struct wr_h1_framing f = {.is_upgrade = true};
    wr_h1_finish_head(r, &f, io->req.minor_version);
    io->is_exchange_keep_alive = false;
    if (r->is_overflow) {
        defer_close(c);
        return;
    }
    struct wr_str head = wr_resp_bytes(r);
    push_mem(io, head.ptr, head.len);
    for (int i = 0; i < n; i++)
        push_mem(io, iov[i].iov_base, iov[i].iov_len);
    io->n_ready = io->n_segs;
    c->is_upgrading = true;
    if (!c->is_doomed)
        write_queued(c);
    event_active(&c->ev_read, EV_READ, 0);
}

static const struct wr_exchange_sink h1_sink = {
    .respond = h1_respond,
    .send_head = h1_send_head,
    .send = h1_send,
    .body_room = h1_body_room,
    .end = h1_end,
    .upgrade = h1_upgrade,
};

/* After 101 went out: the handler relays the socket from now on. */
static void start_tunnel(struct wr_conn *c)
{
    struct wr_conn_io *io = c->io;
    io->log_status = 101;
    io->log_bytes = 0;
    account_request(c);
    event_del(&c->ev_read);
    event_del(&io->ev_write);
    c->is_write_armed = false;
    c->is_read_paused = true;
    c->state = ST_TUNNEL;
    c->is_upgrading = false;
    set_timer(c, 0);
    struct wr_exchange_tunnel t = {.client = &c->s,
                                   .pending = c->rb->data + c->rb->rstart,
                                   .pending_len = c->rb->rlen - c->rb->rstart};
    wr_exchange_upgraded(c->ex, &t); /* copies pending */
    /* The request's views die with io: the handler was told (handler.h). */
    c->ex->req = NULL;
    c->ex->log_subject = NULL;
    release_io(c->home, c);
    release_rbuf(c->home, c);
}

/* Copies c->ex's upstream log fields into io before the exchange goes:
 * the access log line of the request still names them. */
static void keep_upstream_log(struct wr_conn *c)
{
    struct wr_conn_io *io = c->io;
    const struct wr_exchange_log *l = &c->ex->log;
    if (!l->upstream_addr)
        return;
    snprintf(io->kept_upstream_addr, sizeof(io->kept_upstream_addr), "%s", l->upstream_addr);
    snprintf(io->kept_upstream_status, sizeof(io->kept_upstream_status), "%s",
             l->upstream_status ? l->upstream_status : "");
    io->kept_upstream_time_us = l->upstream_time_us;
    io->has_kept_upstream = true;
}

/*
 * The handler of c->ex ended it with an error status (a proxy's 502 or
 * 504, an intercepted upstream status, an error page that was not one):
 * the route's error page, or the built-in page with the route's rules
 * marked always, as for the route's other errors. An error page's own
 * failure gets the built-in page of the original status (one internal
 * redirect at most). Returns 1 when an error page answers over time (the
 * new exchange in c->ex), else 0 (the answer is queued; c->ex, disposed or
 * not, is dropped by the caller).
 */
static int answer_end_error(struct wr_conn *c, bool is_keep_alive)
{
    const struct wr_exchange *ex = c->ex;
    struct wr_tmpl_vars vars;
    request_vars(c, &vars); /* the dispatch's died with it */
    struct wr_resp r;
    if (ex->error.status) {
        build_error(c, &r, ex->error.status, NULL);
        wr_exchange_error_fields(&r, &ex->error);
        commit_response(c, &r, ex->error.route, &vars, is_keep_alive);
        return 0;
    }
    struct wr_exchange_error e = {.status = ex->end, .route = ex->route};
    if (!wr_error_page_find(&ex->route->error_pages, e.status)) {
        build_error(c, &r, e.status, NULL);
        commit_response(c, &r, e.route, &vars, is_keep_alive);
        return 0;
    }
    keep_upstream_log(c);
    drop_exchange(c); /* the page's exchange takes its place */
    c->io->is_exchange_keep_alive = c->io->is_answer_keep_alive = is_keep_alive;
    bool is_async;
    if (serve_error_page(c, &e, &vars, 0, &is_async) == 0)
        return is_async ? 1 : 0;
    build_error(c, &r, e.status, NULL);
    commit_response(c, &r, e.route, &vars, is_keep_alive);
    return 0;
}

/*
 * The handler ended the exchange (or asked for the 101) and everything it
 * sent is written: log, dispose of the exchange and go on with the
 * connection (or close it). Returns -1 if c was closed.
 */
static int end_exchange(struct wr_conn *c)
{
    struct wr_conn_io *io = c->io;
    if (c->state == ST_TUNNEL) {
        conn_close(c);
        return -1;
    }
    if (c->is_upgrading) {
        start_tunnel(c);
        return 0;
    }
    const struct wr_exchange *ex = c->ex;
    int end = ex->end;
    bool is_body_read = io->body_kind == BODY_NONE;
    /* The exchange started from the client's keep-alive and only ever lowers it. */
    bool is_keep_alive = is_body_read && !c->is_peer_eof && io->is_exchange_keep_alive;
    if (end >= 300) {
        if (answer_end_error(c, is_keep_alive) > 0)
            return 0; /* an error page answers over time: ST_EXCHANGE goes on */
    } else {
        io->log_status = ex->log.status;
        io->log_bytes = ex->log.body_bytes;
    }
    if (end == WR_EXCHANGE_BROKEN) {
        /* Never a forged complete response: the client sees the cut. */
        io->log_status = io->log_status ? io->log_status : 502;
        account_request(c);
        conn_close(c);
        return -1;
    }
    io->body_kind = BODY_NONE;
    c->state = ST_HEAD;
    finish_request(c); /* logs, with what the handler recorded (upstream fields) */
    drop_exchange(c);
    if (!is_keep_alive)
        c->state = ST_CLOSING;
    return 0;
}

/*
 * Drives an exchange after our output drained or the handler ended it.
 * Returns -1 if c was closed, 1 while the exchange goes on (c is settled),
 * 0 when it ended and the connection carries on with buffered input.
 */
static int exchange_progress(struct wr_conn *c)
{
    if (c->io && flush_output(c) < 0)
        return -1;
    if (!has_output_pending(c) && c->is_proceed_owed) {
        c->is_proceed_owed = false;
        wr_exchange_proceed(c->ex); /* may send more, or end the exchange */
    }
    if (c->is_doomed) {
        conn_close(c);
        return -1;
    }
    if (!is_exchange_due(c) || has_output_pending(c)) {
        settle(c);
        return 1;
    }
    if (end_exchange(c) < 0)
        return -1;
    return c->state == ST_TUNNEL ? 1 : 0;
}

/* The one read of request bytes: the socket, or OpenSSL over it. */
static ssize_t conn_recv(struct wr_conn *c, char *buf, size_t cap)
{
    return wr_stream_read(&c->s, buf, cap);
}

/* The client left before its exchange ended: the handler's work (the
 * upstream request) is abandoned at once and logged with 499, as nginx does. */
static void abort_exchange(struct wr_conn *c)
{
    struct wr_conn_io *io = c->io;
    io->log_status = 499;
    io->log_bytes = c->ex->log.body_bytes;
    account_request(c);
    conn_close(c);
}

/*
 * After the client's EOF: true when the exchange must be abandoned. RFC
 * 9112 §9.6 lets a client half-close once its request is sent, so, as
 * HAProxy does, an EOF after the whole request (body included) is not an
 * abort: the response still goes out, then the connection closes (only a
 * failed write is an abort then). An EOF with body bytes still owed is,
 * since the body can never be completed; and abort_on_eof = on takes any
 * EOF for one (nginx's default, for long-polling backends).
 */
static bool is_eof_abort(const struct wr_conn *c)
{
    const struct wr_conn_io *io = c->io;
    if (is_exchange_due(c) || c->is_doomed)
        return false; /* ending anyway: end_exchange closes after the flush */
    if (io->is_abort_on_eof)
        return true;
    /* forward_body stopped for want of input, not because the server is
     * slow to take the body: the rest of the body cannot come any more. */
    return io->body_kind != BODY_NONE && !c->is_body_blocked;
}

/* Client socket readable during an exchange (or, after its EOF, body
 * room: nothing more is read then). */
static void exchange_read(struct wr_conn *c)
{
    if (!c->is_peer_eof && c->rb->rlen < c->rb->cap && !c->is_body_blocked) {
        /* Through conn_recv: on TLS the body arrives in records that only
         * OpenSSL may take off the socket (a raw read sent ciphertext up as
         * body and broke the client's TLS stream). */
        ssize_t n = conn_recv(c, c->rb->data + c->rb->rlen, c->rb->cap - c->rb->rlen);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            abort_exchange(c); /* reset: nobody to answer */
            return;
        }
        if (n == 0)
            c->is_peer_eof = true;
        if (n > 0) {
            c->rb->rlen += (size_t)n;
            c->io->last_io_ms = wr_clock_now_ms();
            wr_metrics_add(&c->home->metrics->bytes_in, (uint64_t)n);
        }
    }
    forward_body(c);
    if (c->is_peer_eof && c->state == ST_EXCHANGE && is_eof_abort(c)) {
        abort_exchange(c);
        return;
    }
    settle(c);
}

/* Reads and discards body bytes in the buffer (routes other than proxy).
 * Returns true when the body is complete. */
static bool discard_body(struct wr_conn *c)
{
    struct wr_conn_io *io = c->io;
    while (next_piece(c)) {
        io->piece_len = 0;
        if (io->is_piece_last) {
            io->is_piece_last = false;
            return true;
        }
    }
    return false;
}

/* Prepares to read the body of the request in io->req (proxied: forwarded;
 * otherwise discarded) and enters state. */
static void start_body(struct wr_conn *c, bool has_body, enum conn_state state)
{
    struct wr_conn_io *io = c->io;
    const struct wr_http_request *req = &io->req;
    io->body_kind = !has_body ? BODY_NONE : req->is_chunked ? BODY_CHUNKED : BODY_LENGTH;
    io->body_left = req->content_length;
    io->body_seen = 0;
    io->piece_len = 0;
    io->is_piece_last = false;
    wr_http_chunked_init(&io->chunked);
    c->rb->pin = c->rb->rstart; /* the head stays put while its body is read */
    c->state = state;
    c->io->last_io_ms = wr_clock_now_ms();
}

/* A complete, valid head of head_len bytes is in io->req: answer it. */
static void answer(struct wr_conn *c, size_t head_len)
{
    struct wr_conns *cs = c->home;
    struct wr_conn_io *io = c->io;
    const struct wr_http_request *req = &io->req;
    uint64_t max_requests = c->cfg->limits.max_requests_per_connection;
    uint64_t max_body = c->cfg->limits.max_body_bytes;
    c->n_requests++;
    cs->n_requests++;
    c->rb->rstart += head_len;
    io->route = NULL; /* until a route answers */
    io->has_kept_upstream = false;
    if (req->has_content_length && max_body > 0 && req->content_length > max_body) {
        /* CONFIG.md: checked before 100 Continue and before any work. */
        wr_conns_request_id(cs, io->request_id); /* the log's, and the page's */
        answer_and_close(c, 413, true);
        return;
    }
    /* After a CONNECT (always refused) a client that did not wait for the
     * answer may already be sending tunnel bytes: never parse them as
     * requests. */
    bool is_keep_alive = req->is_keep_alive && !cs->is_draining && !c->is_peer_eof &&
                         req->method_id != WR_HTTP_CONNECT &&
                         (max_requests == 0 || c->n_requests < max_requests);
    bool has_body = req->is_chunked || (req->has_content_length && req->content_length > 0);
    c->is_close_asked = !req->is_keep_alive && !has_body;
    /* RFC 9110 §10.1.1: the client waits for 100 Continue (or a final
     * answer) before it sends the body. It is invited only by a proxy route
     * that is about to forward the body (forward_body); a 404, 405, 429, a
     * redirect or any other answer goes out without 100, and the
     * connection closes after it, since the body will never come. */
    bool is_body_unsent = has_body && req->expects_continue && c->rb->rstart == c->rb->rlen;
    struct wr_resp r;
    if (dispatch(c, &r, is_keep_alive, is_body_unsent)) {
        start_body(c, has_body, ST_EXCHANGE);
        io->is_continue_owed = is_body_unsent;
        forward_body(c);
        if (c->is_peer_eof && c->state == ST_EXCHANGE)
            event_active(&c->ev_read, EV_READ, 0); /* exchange_read judges the EOF */
        return;
    }
    if (!is_keep_alive || is_body_unsent) {
        /* The client may still be sending a body: lingering close drains it. */
        finish_request(c);
        c->state = ST_CLOSING;
        return;
    }
    if (!has_body) {
        finish_request(c);
        return;
    }
    start_body(c, true, ST_BODY);
    if (discard_body(c))
        finish_request(c);
}

/* Parses the pending head in c's read buffer into io->req. */
static ssize_t parse_head(struct wr_conn *c, const struct wr_http_limits *limits)
{
    struct wr_conn_rbuf *rb = c->rb;
    return wr_http_parse_request(rb->data + rb->rstart, rb->rlen - rb->rstart, rb->scanned,
                                 limits, &c->io->req);
}

/*
 * A head that does not fit yet: room by compacting, else by growing the
 * buffer to its full size (the parser answers 431/414 before a head can
 * outgrow that). No request view is live between requests, and the parser
 * keeps only an offset (scanned) across WR_AGAIN: moving is safe. Returns
 * -1 when out of memory.
 */
static int make_head_room(struct wr_conn *c)
{
    struct wr_conn_rbuf *rb = c->rb;
    if (rb->rstart > 0) {
        memmove(rb->data, rb->data + rb->rstart, rb->rlen - rb->rstart);
        rb->rlen -= rb->rstart;
        rb->rstart = 0;
        return 0;
    }
    size_t full = rbuf_full_cap(c);
    return rb->cap < full ? rbuf_move(c, full) : 0;
}

/* A body follows the head_len-byte head just parsed and will not fit
 * behind it in a first-size buffer: read it into a full one (body bytes
 * read a few hundred at a time would cost a syscall each). */
static bool needs_body_room(const struct wr_conn *c, size_t head_len)
{
    const struct wr_conn_rbuf *rb = c->rb;
    const struct wr_http_request *req = &c->io->req;
    size_t full = rbuf_full_cap(c);
    if (rb->cap >= full || (!req->is_chunked && !req->has_content_length))
        return false;
    size_t room = rb->cap - rb->rstart - head_len;
    return req->is_chunked || req->content_length > room;
}

/* Parses the next head in the buffer. Returns true when one was answered. */
static bool parse_and_answer(struct wr_conn *c)
{
    struct wr_conn_io *io = c->io;
    struct wr_http_limits limits = {.max_head_bytes = c->cfg->limits.max_header_bytes,
                                    .max_headers = c->cfg->limits.max_headers};
    ssize_t n = parse_head(c, &limits);
    if (n == WR_AGAIN) {
        c->rb->scanned = c->rb->rlen - c->rb->rstart;
        if (c->rb->rlen == c->rb->cap && make_head_room(c) < 0) {
            wr_log(WR_LOG_ERROR, c->home->worker_id, c->id, "out of memory for a request head");
            defer_close(c);
        }
        return false;
    }
    if (n > 0 && needs_body_room(c, (size_t)n)) {
        /* The views just built die with the move: parse again. */
        if (rbuf_move(c, rbuf_full_cap(c)) == 0)
            n = parse_head(c, &limits);
    }
    c->rb->scanned = 0;
    if (n == WR_ERROR) {
        /* STYLE §5: framing in doubt: answer and close, never guess. */
        answer_and_close(c, io->req.status, false);
        return false;
    }
    answer(c, (size_t)n);
    return true;
}

/*
 * Answers what the buffer holds, within the per-event bounds. Sets
 * is_backlogged when it stopped with complete requests possibly left.
 */
static void process_input(struct wr_conn *c)
{
    c->is_backlogged = false;
    for (int i = 0; i < MAX_PIPELINE_PER_EVENT; i++) {
        struct wr_conn_io *io = c->io;
        if (c->state == ST_EXCHANGE) {
            forward_body(c);
            return;
        }
        if (c->state == ST_BODY) {
            if (!discard_body(c))
                return;
            finish_request(c);
            continue;
        }
        if (c->state != ST_HEAD || c->rb->rstart == c->rb->rlen)
            return;
        if (!has_output_room(io)) {
            c->is_backlogged = true;
            return;
        }
        if (!parse_and_answer(c))
            return;
    }
    c->is_backlogged = c->state == ST_HEAD && c->rb->rstart < c->rb->rlen;
}

/* ---- events ------------------------------------------------------------ */

/* nginx answers plain HTTP on a TLS port in clear text too: a browser
 * then shows why instead of a reset. */
#define PLAIN_HTTP_BODY "This port expects HTTPS (TLS), not HTTP\n"
static_assert(sizeof(PLAIN_HTTP_BODY) - 1 == 40, "Content-Length below");
static const char plain_http_answer[] =
    "HTTP/1.1 400 Bad Request\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 40\r\n"
    "Connection: close\r\n"
    "\r\n" PLAIN_HTTP_BODY;

/* The handshake wants (or no longer wants) writability. The write event
 * lives in io, so a handshake that needs it takes its buffers early (they
 * serve the first request next). Returns -1 if c was closed. */
static int arm_write(struct wr_conn *c, bool should_arm)
{
    if (should_arm == c->is_write_armed)
        return 0;
    if (should_arm && ensure_io(c) < 0) {
        conn_close(c);
        return -1;
    }
    if (should_arm)
        event_add(&c->io->ev_write, NULL);
    else
        event_del(&c->io->ev_write);
    c->is_write_armed = should_arm;
    return 0;
}

/* The HTTP/2 session ended: the connection closes with it. */
static void on_h2_close(void *arg)
{
    conn_close(arg);
}

/*
 * The hand-off to the HTTP/2 front end (h2.h): after ALPN chose h2, or
 * when an h2c listener's client sent the preface (pre: what was read, the
 * preface included). From now on the session owns the socket's events and
 * deadlines; c keeps only what every connection has, until on_h2_close.
 */
static void start_h2(struct wr_conn *c, const char *pre, size_t pre_len)
{
    char peer[48];
    format_peer_text(c, peer, sizeof(peer));
    struct wr_h2_front f = {.home = c->home, .s = &c->s, .cfg = c->cfg, .peer = peer,
                            .conn_id = c->id, .peer_key = peer_key(c), .preread = pre,
                            .preread_len = pre_len, .on_close = on_h2_close, .conn = c};
    c->h2 = wr_h2_new(&f);
    if (!c->h2) {
        wr_log(WR_LOG_ERROR, c->home->worker_id, c->id, "out of memory for an HTTP/2 session");
        conn_close(c);
        return;
    }
    event_del(&c->ev_read);
    release_io(c->home, c);
    release_rbuf(c->home, c); /* pre was copied */
    set_timer(c, 0);
    wr_timer_disarm(&c->home->wheel, &c->timer);
    c->state = ST_H2;
    c->is_read_paused = true;
    count_idle(c);
}

/* h2c listeners: a client that opens with the HTTP/2 preface (RFC 9113
 * §3.3, prior knowledge) goes to the HTTP/2 front end; any other first
 * bytes are HTTP/1. Returns true when c was handed over or must wait for
 * more bytes of a possible preface. */
static bool sniff_h2c(struct wr_conn *c)
{
    struct wr_conn_rbuf *rb = c->rb;
    if (!c->is_h2c || c->n_requests > 0 || c->state != ST_HEAD || rb->rstart != 0)
        return false;
    int m = wr_h2_preface_match(rb->data, rb->rlen);
    if (m < 0)
        return false;
    if (m == 0 && !c->is_peer_eof) {
        settle(c);
        return true;
    }
    if (m == 0)
        return false;
    /* The first read lands in the small starting buffer: far below the
     * session's preread room, so nothing read is ever dropped here. */
    static_assert(RBUF_FIRST_BLOCK <= WR_H2_PREREAD_MAX, "h2c preread");
    if (rb->rlen > WR_H2_PREREAD_MAX)
        return false; /* never: see above */
    start_h2(c, rb->data, rb->rlen);
    return true;
}

/* Runs the TLS handshake on either readiness; ST_HEAD once it is done. */
static void continue_handshake(struct wr_conn *c)
{
    char why[256];
    enum wr_tls_result r = wr_stream_handshake(&c->s, why, sizeof(why));
    if (r == WR_TLS_WANT_READ || r == WR_TLS_WANT_WRITE) {
        if (arm_write(c, r == WR_TLS_WANT_WRITE) < 0)
            return;
        set_deadline(c); /* SNI may have chosen a section with its own timeout */
        return;
    }
    arm_write(c, false); /* disarming never closes */
    struct wr_metrics_worker *m = c->home->metrics;
    if (r != WR_TLS_DONE && m)
        wr_metrics_add(&m->tls_handshake_failures, 1);
    if (r == WR_TLS_DONE && m) {
        wr_metrics_add(&m->tls_handshakes, 1);
        if (wr_tls_is_resumed(wr_stream_tls(&c->s)))
            wr_metrics_add(&m->tls_resumptions, 1);
    }
    if (r != WR_TLS_DONE) {
        if (wr_log_is_enabled(WR_LOG_DEBUG))
            wr_log(WR_LOG_DEBUG, c->home->worker_id, c->id, "TLS handshake failed: %s", why);
        if (r == WR_TLS_PLAIN_HTTP) {
            wr_stream_drop_tls(&c->s); /* the answer goes in clear */
            struct iovec iov = {(void *)plain_http_answer, sizeof(plain_http_answer) - 1};
            ssize_t n = wr_stream_writev(&c->s, &iov, 1);
            (void)n; /* best effort: the socket is fresh, the answer small */
            start_linger(c); /* the request's bytes must not turn close into a reset */
            return;
        }
        conn_close(c);
        return;
    }
    c->state = ST_HEAD;
    c->phase_ms = wr_clock_now_ms(); /* header_timeout starts now */
    if (wr_str_eq(wr_tls_alpn(wr_stream_tls(&c->s)), WR_STR("h2"))) {
        start_h2(c, NULL, 0);
        return;
    }
    settle(c);
}

/* A malformed PROXY header, or a connection that ended inside it. */
static void proxy_header_failed(struct wr_conn *c, const char *why)
{
    char text[48];
    format_peer_text(c, text, sizeof(text));
    log_refusal(c->home, c->id, why, text, NULL);
    wr_metrics_add(&c->home->metrics->proxy_protocol_errors[WR_METRICS_PP_MALFORMED], 1);
    conn_close(c);
}

/*
 * ST_PROXY: the header's bytes are peeked, then exactly those that belong
 * to it consumed (every byte of an incomplete header does; of a complete
 * one, up to its end), so the first byte of TLS or HTTP stays in the
 * socket for the next state and a header split across reads costs no busy
 * loop. The bytes so far wait in the read buffer (unused until the head).
 * Then the carried address becomes the client's (logs, X-Forwarded-For,
 * limits), and the per-address limit counts it.
 */
static void read_proxy_header(struct wr_conn *c)
{
    struct wr_conns *cs = c->home;
    if (ensure_rbuf(c) < 0) {
        conn_close(c);
        return;
    }
    char *pp = c->rb->data;
    size_t have = c->rb->rlen;
    ssize_t n = recv(c->s.fd, pp + have, WR_PP_MAX - have, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        proxy_header_failed(c, n == 0 ? "connection ended inside its PROXY header; closed"
                                      : "read error inside the PROXY header; closed");
        return;
    }
    struct wr_pp_result r;
    ssize_t h = wr_pp_parse(pp, have + (size_t)n, &r);
    if (h < 0) {
        proxy_header_failed(c, "malformed PROXY header; closed");
        return;
    }
    size_t take = h == 0 ? (size_t)n : (size_t)h - have;
    if (recv(c->s.fd, pp + have, take, 0) != (ssize_t)take) {
        conn_close(c);
        return;
    }
    c->rb->rlen += take;
    wr_metrics_add(&cs->metrics->bytes_in, take);
    if (h == 0) {
        settle(c); /* the rest of the header is still to come */
        return;
    }
    c->rb->rstart = c->rb->rlen = 0; /* the header is done with */
    if (r.has_addr)
        store_peer(c, (const struct sockaddr *)&r.src);
    uint64_t max = c->cfg->limits.max_connections_per_ip;
    uint64_t key = max ? peer_key(c) : 0;
    if (key != 0 && !wr_limits_conn_acquire(cs->limits, key, max, &c->ip_slot)) {
        char text[48];
        format_peer_text(c, text, sizeof(text));
        log_refusal(cs, c->id, "over max_connections_per_ip; closed", text, NULL);
        conn_close(c);
        return;
    }
    c->phase_ms = wr_clock_now_ms();
    if (c->state == ST_PROXY) {
        c->state = ST_HEAD;
    } else if (start_handshake(c) < 0) {
        conn_close(c);
        return;
    }
    settle(c); /* what follows the header makes the socket readable again */
}

void wr_conns_client_cert(struct wr_conns_client_cert *cert, const struct wr_tls_conn *tls,
                          struct wr_tmpl_vars *vars)
{
    cert->is_verified = tls && wr_tls_client_cert(tls, cert->subject, sizeof(cert->subject),
                                                  cert->fingerprint);
    if (!cert->is_verified) {
        vars->ssl_client_verify = tls ? WR_STR("NONE") : WR_STR("");
        return;
    }
    vars->ssl_client_s_dn = wr_str_from_cstr(cert->subject);
    vars->ssl_client_fingerprint = wr_str_from_cstr(cert->fingerprint);
    vars->ssl_client_verify = WR_STR("SUCCESS");
}

/* Client failures allowed per address before 429: 10 a minute, in a burst. */
static const struct wr_rate_limit AUTH_FAILURES = {.interval_us = 6000000, .burst = 10};

int wr_conns_check_auth(struct wr_conns *cs, const struct wr_route *route,
                        const struct wr_http_request *req, uint64_t peer_key, const char *peer,
                        uint64_t *retry_after_s)
{
    if (!cs->auth)
        cs->auth = wr_auth_cache_new(); /* NULL: checks run uncached */
    const struct wr_http_header *h = wr_http_find_header(req, WR_STR("Authorization"));
    const char *user = NULL;
    enum wr_auth_result r = wr_auth_basic_check(cs->auth, route->auth_users, route->n_auth_users,
                                                h ? h->value : (struct wr_str){NULL, 0}, &user,
                                                wr_clock_now_ms());
    if (r == WR_AUTH_OK)
        return 0;
    if (r == WR_AUTH_MISSING)
        return 401; /* the usual first request: no credentials yet, not a failure */
    wr_metrics_add(&cs->metrics->auth_failures, 1);
    char what[160];
    snprintf(what, sizeof(what), "authentication failed on route %.64s", route->name);
    log_refusal(cs, 0, what, peer, NULL);
    /* Failures per client address: past the budget, 429 until it refills. */
    if (peer_key != 0) {
        *retry_after_s = wr_limits_rate_check(cs->limits, peer_key, "\x01auth", &AUTH_FAILURES,
                                              wr_clock_now_us());
        if (*retry_after_s != 0)
            return 429;
    }
    return 401;
}

static void on_client_read(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct wr_conn *c = arg;
    struct wr_conns *cs = c->home;
    /* libevent's event_add does not put an event in epoll while it is
     * active: ev_read activated (an exchange ended at once) before settle
     * ever added it was left out, and the connection was never read again.
     * Its activation has run now, so adding it here does put it in. */
    if (c->is_read_unsure && what != 0) {
        c->is_read_unsure = false;
        if (!c->is_read_paused)
            event_add(&c->ev_read, NULL);
    }
    if (c->state == ST_H2)
        return; /* a stale activation from before the hand-off */
    if (c->is_doomed) {
        conn_close(c);
        return;
    }
    if (c->state == ST_LINGER) {
        linger_read(c);
        return;
    }
    if (c->state == ST_HANDSHAKE) {
        continue_handshake(c);
        return;
    }
    if (c->state == ST_PROXY || c->state == ST_PROXY_TLS) {
        read_proxy_header(c);
        return;
    }
    if (is_exchange_due(c)) {
        on_client_write(fd, EV_WRITE, c); /* done() asked us to finish it */
        return;
    }
    if (c->state == ST_EXCHANGE) {
        exchange_read(c);
        return;
    }
    if (ensure_rbuf(c) < 0 || ensure_io(c) < 0) {
        wr_log(WR_LOG_ERROR, cs->worker_id, c->id, "out of memory for a request buffer");
        conn_close(c);
        return;
    }
    count_idle(c);
    if (c->is_backlogged || c->rb->rlen == c->rb->cap) {
        process_input(c);
        settle(c);
        return;
    }
    bool was_empty = c->rb->rstart == c->rb->rlen;
    ssize_t n = conn_recv(c, c->rb->data + c->rb->rlen, c->rb->cap - c->rb->rlen);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) {
            /* Not watched yet (a deferred accept that came without bytes,
             * after the kernel's timeout): settle starts watching it. */
            if (c->is_read_paused)
                settle(c);
            return;
        }
        wr_log(WR_LOG_DEBUG, cs->worker_id, c->id, "read: %s", strerror(errno));
        conn_close(c);
        return;
    }
    if (n == 0) {
        c->is_peer_eof = true;
    } else {
        c->rb->rlen += (size_t)n;
        c->io->last_io_ms = wr_clock_now_ms();
        wr_metrics_add(&cs->metrics->bytes_in, (uint64_t)n);
        if (was_empty && c->state == ST_HEAD && c->n_requests > 0) {
            c->phase_ms = c->io->last_io_ms; /* header_timeout runs from the first byte */
            if (cs->is_logging)
                c->io->start_us = wr_clock_now_us();
        }
    }
    if (c->state == ST_BODY && c->is_peer_eof) {
        conn_close(c); /* the body can never be completed */
        return;
    }
    if (sniff_h2c(c))
        return;
    process_input(c);
    settle(c);
}

static void on_client_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct wr_conn *c = arg;
    if (c->state == ST_H2)
        return;
    if (c->is_doomed) {
        conn_close(c);
        return;
    }
    if (c->state == ST_HANDSHAKE) {
        continue_handshake(c);
        return;
    }
    if (c->ex) {
        if (exchange_progress(c) != 0)
            return;
    } else if (!c->io) {
        return; /* a stale activation: nothing to write */
    } else if (flush_output(c) < 0) {
        return;
    }
    /* Drained: answer pipelined requests that waited for room. */
    if (!c->is_write_armed && c->io)
        process_input(c);
    settle(c);
}

/* ---- the worker's side ------------------------------------------------- */

static void fini_access_logs(struct wr_conns *cs)
{
    wr_access_log_fini(&cs->access_log);
    for (size_t i = 0; i < cs->n_route_logs; i++)
        wr_access_log_fini(&cs->route_logs[i]);
    cs->n_route_logs = 0;
}

/* [server]'s access log and the routes' own files, each with its buffer
 * (and queue, for a pipe); none when off. */
static int init_access_logs(struct wr_conns *cs, const struct wr_access_log_fds *logs)
{
    if (wr_access_log_init(&cs->access_log, logs->server) < 0)
        return -1;
    cs->is_logging = logs->server >= 0;
    for (size_t i = 0; i < logs->n_routes; i++) {
        if (wr_access_log_init(&cs->route_logs[i], logs->routes[i]) < 0) {
            fini_access_logs(cs);
            return -1;
        }
        cs->n_route_logs = i + 1;
        cs->is_logging = true;
    }
    return 0;
}

struct wr_access_log *wr_conns_access_log(struct wr_conns *cs, const struct wr_route *route)
{
    int id = route ? route->access_log_id : 0;
    if (id < 0)
        return NULL;
    if (id > 0)
        return (size_t)id <= cs->n_route_logs ? &cs->route_logs[id - 1] : NULL;
    return cs->access_log.fd >= 0 ? &cs->access_log : NULL;
}

int wr_conns_init(struct wr_conns *cs, int worker_id, struct event_base *base,
                  struct wr_config *cfg, const struct wr_access_log_fds *logs,
                  atomic_uint_fast64_t *n_process_conns, struct wr_limits *limits)
{
    *cs = (struct wr_conns){.worker_id = worker_id, .base = base,
                            .n_process_conns = n_process_conns, .limits = limits};
    wr_timer_wheel_init(&cs->wheel, wr_clock_now_ms());
    wr_buf_pool_init(&cs->rbuf_first, RBUF_FIRST_BLOCK, MAX_FREE_RBUFS);
    wr_buf_pool_init(&cs->rbuf_full,
                     sizeof(struct wr_conn_rbuf) + cfg->limits.max_header_bytes + RBUF_SLACK,
                     MAX_FREE_IO);
    wr_buf_pool_init(&cs->io_pool, sizeof(struct wr_conn_io), MAX_FREE_IO);
    wr_buf_pool_init(&cs->h2_rbufs, WR_H2_RBUF_BYTES, MAX_FREE_H2_BUFS);
    wr_buf_pool_init(&cs->h2_wbufs, WR_H2_WBUF_BYTES, MAX_FREE_H2_BUFS);
    wr_buf_pool_init(&cs->h2_streams, wr_h2_stream_bytes(), MAX_FREE_H2_STREAMS);
    wr_buf_pool_init(&cs->h2_heads, WR_H2_HEAD_BYTES, MAX_FREE_H2_HEADS);
    wr_buf_pool_init(&cs->error_reqs, sizeof(struct wr_conns_error_req), MAX_FREE_ERROR_REQS);
    cs->next_conn_id = (uint64_t)worker_id + 1024;
    cs->scratch_cap = cfg->limits.max_header_bytes + RBUF_SLACK;
    if (cs->scratch_cap < LINGER_MAX_BYTES)
        cs->scratch_cap = LINGER_MAX_BYTES;
    cs->scratch = malloc(cs->scratch_cap);
    cs->stage = wr_stream_stage_new();
    cs->router = wr_router_scratch_new();
    cs->snapshots = malloc(4 * sizeof(*cs->snapshots));
    cs->henv = (struct wr_handler_env){.base = base, .wheel = &cs->wheel,
                                       .worker_id = worker_id, .clock = &cs->clock, .cfg = cfg};
    bool has_handlers = false;
    if (!cs->scratch || !cs->stage || !cs->router || !cs->snapshots ||
        !(has_handlers = wr_handlers_init(&cs->handlers, &cs->henv) == 0) ||
        init_access_logs(cs, logs) < 0) {
        if (has_handlers)
            wr_handlers_fini(&cs->handlers);
        free(cs->scratch);
        wr_stream_stage_free(cs->stage);
        cs->stage = NULL;
        wr_router_scratch_free(cs->router);
        free(cs->snapshots);
        cs->snapshots = NULL;
        return -1;
    }
    cs->snapshots[0] = (struct wr_conns_snapshot){.cfg = cfg};
    cs->n_snapshots = 1;
    cs->cap_snapshots = 4;
    if (getrandom(cs->rng, sizeof(cs->rng), 0) != sizeof(cs->rng) || (cs->rng[0] | cs->rng[1]) == 0) {
        cs->rng[0] = (uint64_t)time(NULL) ^ ((uint64_t)worker_id << 32);
        cs->rng[1] = 0x9e3779b97f4a7c15u;
    }
    cs->cfg = wr_config_ref(cfg);
    wr_resp_clock_update(&cs->clock, time(NULL), cfg->server.server_header);
    return 0;
}

void wr_conns_set_config(struct wr_conns *cs, struct wr_config *cfg)
{
    /* The scratch holds a normalised path of the largest head any live
     * snapshot allows: it only ever grows. */
    size_t cap = cfg->limits.max_header_bytes + RBUF_SLACK;
    if (cap > cs->scratch_cap) {
        char *bigger = malloc(cap);
        if (!bigger) {
            wr_log(WR_LOG_ERROR, cs->worker_id, 0, "reload: out of memory; keeping the old config");
            wr_config_unref(cfg);
            return;
        }
        free(cs->scratch);
        cs->scratch = bigger;
        cs->scratch_cap = cap;
    }
    /* Room first, so that once the handlers took cfg nothing can fail. */
    if (reserve_snapshot(cs) < 0 || wr_handlers_config_changed(&cs->handlers, cfg) < 0) {
        wr_log(WR_LOG_ERROR, cs->worker_id, 0, "reload: out of memory; keeping the old config");
        wr_config_unref(cfg);
        return;
    }
    track_snapshot(cs, cfg);
    /* Full read buffers of the old size go back to malloc (rbuf_pool). */
    size_t full_block = sizeof(struct wr_conn_rbuf) + cap;
    if (full_block != cs->rbuf_full.block_size)
        wr_buf_pool_resize(&cs->rbuf_full, full_block);
    cs->henv.cfg = cfg;
    wr_config_unref(cs->cfg);
    cs->cfg = cfg;
    cs->clock.common_len = 0; /* Server header may have changed */
    wr_resp_clock_update(&cs->clock, time(NULL), cfg->server.server_header);
}

void wr_conns_tick(struct wr_conns *cs)
{
    wr_resp_clock_update(&cs->clock, time(NULL), cs->cfg->server.server_header);
    if (cs->access_log.len > 0)
        wr_access_log_flush(&cs->access_log);
    for (size_t i = 0; i < cs->n_route_logs; i++) {
        if (cs->route_logs[i].len > 0)
            wr_access_log_flush(&cs->route_logs[i]);
    }
    uint64_t now = wr_clock_now_ms();
    cs->henv.metrics = cs->metrics;
    cs->zw.metrics = cs->metrics;
    wr_handlers_tick(&cs->handlers, now);
    if (cs->is_snapshots_changed)
        announce_snapshots(cs);
    /* Connections and proxied exchanges past their deadlines (a proxy's
     * ends on its connection's next event); nothing else is visited. */
    wr_timer_wheel_run(&cs->wheel, now);
    wr_metrics_set(&cs->metrics->conns_idle, cs->n_idle);
    wr_metrics_set(&cs->metrics->conn_buffer_bytes, cs->buffer_bytes);
    /* Once a second: free lists give back what a burst left unused. */
    if (++cs->n_ticks >= 10) {
        cs->n_ticks = 0;
        wr_buf_pool_trim(&cs->rbuf_first);
        wr_buf_pool_trim(&cs->rbuf_full);
        wr_buf_pool_trim(&cs->io_pool);
        wr_buf_pool_trim(&cs->h2_rbufs);
        wr_buf_pool_trim(&cs->h2_wbufs);
        wr_buf_pool_trim(&cs->h2_streams);
        wr_buf_pool_trim(&cs->h2_heads);
        wr_buf_pool_trim(&cs->error_reqs);
    }
}

/* Whether the socket fd was accepted on the listening address a: its own
 * address is a's (a wildcard listen takes any address on its port). */
static bool is_accepted_on(int fd, const struct wr_listen_addr *a)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 || ss.ss_family != a->addr.ss_family)
        return false;
    if (ss.ss_family == AF_UNIX) {
        const struct sockaddr_un *x = (const void *)&ss, *y = (const void *)&a->addr;
        return strncmp(x->sun_path, y->sun_path, sizeof(x->sun_path)) == 0;
    }
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)&ss, *y = (const void *)&a->addr;
        return x->sin_port == y->sin_port && (y->sin_addr.s_addr == htonl(INADDR_ANY) ||
                                              y->sin_addr.s_addr == x->sin_addr.s_addr);
    }
    const struct sockaddr_in6 *x = (const void *)&ss, *y = (const void *)&a->addr;
    return x->sin6_port == y->sin6_port &&
           (IN6_IS_ADDR_UNSPECIFIED(&y->sin6_addr) ||
            memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0);
}

void wr_conns_listen_removed(struct wr_conns *cs, const struct wr_listen_addr *a)
{
    for (struct wr_conn *c = cs->live; c; c = c->next) {
        if (c->state == ST_H2 && is_accepted_on(c->s.fd, a))
            wr_h2_drain(c->h2); /* GOAWAY; streams in flight finish */
    }
}

void wr_conns_drain(struct wr_conns *cs)
{
    cs->is_draining = true;
    for (struct wr_conn *c = cs->live, *next; c; c = next) {
        next = c->next;
        if (c->state == ST_H2) {
            wr_h2_drain(c->h2); /* GOAWAY; streams in flight finish */
            continue;
        }
        bool is_idle = c->state == ST_HEAD && !has_output_pending(c) &&
                       (!c->rb || c->rb->rstart == c->rb->rlen);
        if (is_idle)
            conn_close(c);
    }
}

void wr_conns_fini(struct wr_conns *cs)
{
    while (cs->live)
        conn_close(cs->live);
    wr_timer_wheel_fini(&cs->wheel); /* after every conn and exchange disarmed */
    while (cs->free_conns) {
        struct wr_conn *c = cs->free_conns;
        cs->free_conns = c->next;
        free(c);
    }
    wr_buf_pool_fini(&cs->io_pool);
    wr_buf_pool_fini(&cs->h2_rbufs);
    wr_buf_pool_fini(&cs->h2_wbufs);
    wr_buf_pool_fini(&cs->h2_streams);
    wr_buf_pool_fini(&cs->h2_heads);
    wr_buf_pool_fini(&cs->error_reqs);
    wr_buf_pool_fini(&cs->rbuf_first);
    wr_buf_pool_fini(&cs->rbuf_full);
    while (cs->free_exchanges) {
        struct wr_conn_exchange *ce = cs->free_exchanges;
        cs->free_exchanges = ce->next_free;
        free(ce);
    }
    cs->n_free_exchanges = 0;
    cs->n_free_conns = 0;
    fini_access_logs(cs);
    wr_router_scratch_free(cs->router);
    cs->router = NULL;
    wr_handlers_fini(&cs->handlers); /* after every conn stopped its exchange and
                                        released its files */
    wr_zfilter_worker_fini(&cs->zw);
    wr_auth_cache_free(cs->auth);
    cs->auth = NULL;
    free(cs->scratch);
    cs->scratch = NULL;
    wr_stream_stage_free(cs->stage); /* after every conn's stream */
    cs->stage = NULL;
    free(cs->snapshots);
    cs->snapshots = NULL;
    cs->n_snapshots = cs->cap_snapshots = 0;
    wr_config_unref(cs->cfg);
    cs->cfg = NULL;
}
