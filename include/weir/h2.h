/*
 * h2: the HTTP/2 front end (RFC 9113, libnghttp2): one client connection
 * that negotiated h2 (ALPN on TLS, or the connection preface on an h2c
 * listener), from the hand-off by conn.c to its close.
 *
 * conn.c accepts, runs the TLS handshake and spots the preface; then it
 * hands the connection's stream over (wr_h2_new) and only keeps the
 * bookkeeping every connection has (live list, snapshot reference, limits
 * slot, metrics), which it releases when the session says it is done
 * (on_close) or when it closes the connection itself (wr_h2_free).
 * Each HTTP/2 stream is one struct wr_exchange driven through the route's
 * handler exactly as HTTP/1 drives it (handler.h).
 * Worker thread only. Layer 4, beside conn.
 */
#ifndef WEIR_H2_H
#define WEIR_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wr_conns;
struct wr_config;
struct wr_stream;
struct wr_h2;

/* The session is over (peer gone, GOAWAY done, timeout, error): the
 * connection must be closed, which frees the session (wr_h2_free). Called
 * last from one of the session's own events: the session touches nothing
 * after it. */
typedef void (*wr_h2_close_fn)(void *conn);

/* What conn.c hands over. Everything borrowed lives until wr_h2_free. */
struct wr_h2_front {
    struct wr_conns *home;        /* borrowed: the worker's connections */
    struct wr_stream *s;          /* borrowed: the connection's stream (plain or TLS) */
    const struct wr_config *cfg;  /* borrowed: the connection's snapshot (conn holds a ref) */
    const char *peer;             /* textual peer address (copied) */
    uint64_t conn_id;
    uint64_t peer_key;            /* wr_limits_peer_key (rate limits); 0: exempt */
    const char *preread;          /* bytes already read from the client (h2c: the
                                     preface onwards); copied; may be NULL */
    size_t preread_len;           /* at most WR_H2_PREREAD_MAX */
    wr_h2_close_fn on_close;
    void *conn;                   /* on_close's argument */
};

/* Most bytes a front end may hand over already read. */
#define WR_H2_PREREAD_MAX 16384

/* The buffers a session takes from its worker's free lists (wr_conns'
 * h2_rbufs, h2_wbufs) only while it reads or has frames to write: an idle
 * HTTP/2 connection holds neither. Counted in weir_conn_buffer_bytes. */
#define WR_H2_RBUF_BYTES 16384
#define WR_H2_WBUF_BYTES (64 * 1024)

/* A stream takes its struct from the worker's free list (wr_conns'
 * h2_streams, blocks of wr_h2_stream_bytes()) when its HEADERS begin, and
 * a response head buffer (h2_heads) only while its head is built: once
 * nghttp2 took the head, the buffer goes back unless the body lives in it.
 * The request's fields live in the struct up to 2 KiB, beyond that in a
 * buffer that grows up to max_header_size. */
#define WR_H2_HEAD_BYTES 8192

/* Bytes of one stream struct (the h2_streams block size). Pure. */
size_t wr_h2_stream_bytes(void);

/* The client connection preface (RFC 9113 §3.4) and its length. */
#define WR_H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define WR_H2_PREFACE_LEN 24

/*
 * Whether buf[0..len) starts the HTTP/2 preface: 1 when it holds the whole
 * preface, 0 when it holds a prefix of it (read more), -1 when it cannot be
 * one (an HTTP/1 request). Pure.
 */
int wr_h2_preface_match(const char *buf, size_t len);

/*
 * Starts an HTTP/2 server session on f's stream: sends our SETTINGS, takes
 * f->preread as the first input, and watches the socket from now on (the
 * caller stops watching it). Returns the session, or NULL when out of
 * memory (nothing started: the caller closes).
 */
struct wr_h2 *wr_h2_new(const struct wr_h2_front *f);

/* Ends the session now: every stream's exchange is stopped, events and
 * timers go. The stream is left to the caller. NULL ok. Never from inside
 * a handler callback or sink call. */
void wr_h2_free(struct wr_h2 *h);

/* Graceful shutdown: GOAWAY (NO_ERROR) with the last stream we took;
 * streams in flight finish, then on_close. */
void wr_h2_drain(struct wr_h2 *h);

#endif
