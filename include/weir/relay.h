/*
 * relay: bytes both ways between two connected streams, until both ends
 * are done, one fails, or nothing moves for the idle timeout.
 *
 * A relay is what an HTTP exchange becomes after a 101 (a WebSocket
 * tunnel), but it knows nothing of HTTP, of the proxy or of connections:
 * two struct wr_stream (plain or TLS, stream.h), one bounded buffer per
 * direction, four events of its own, one timer.
 *  - Backpressure: a direction reads its source only while its buffer is
 *    empty; while the buffer waits for the destination, the source is not
 *    read (its own socket buffers fill and its peer slows down).
 *  - Half-close: when a source ends (read returns 0), its direction
 *    finishes writing what it holds, then shuts the destination down
 *    (wr_stream_shutdown: close_notify on TLS, then SHUT_WR); the other
 *    direction goes on. The relay ends when both directions ended so.
 *  - Idle timeout: every byte read re-arms a wr_timer on the worker's
 *    wheel (the lazy pattern: one compare per read); when it fires the
 *    relay ends.
 *  - TLS: records a source's stream already decrypted are read without
 *    waiting for the socket (wr_stream_has_pending); a record a
 *    destination took but has not sent keeps its EV_WRITE armed.
 *  - Bytes are counted each way (read from a side, written to a side),
 *    and optionally added live to counters the owner names (a worker's
 *    metrics).
 *
 * Ownership: the relay borrows both streams (the owner keeps them open
 * until after wr_relay_fini and closes them itself); it owns its buffers,
 * events and timer. Reentrancy: on_end is called at most once, from one
 * of the relay's event or timer callbacks, as the last thing that callback
 * does: the owner may wr_relay_fini (and free) the relay inside it. No
 * other call of the relay calls the owner back. Worker thread only: the
 * base, the wheel and both streams belong to it. Layer 2: stream, timer,
 * metrics' counters, libevent.
 */
#ifndef WEIR_RELAY_H
#define WEIR_RELAY_H

#include <event2/event_struct.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weir/stream.h"
#include "weir/timer.h"

struct event_base;
struct wr_relay;

/* Why a relay ended (on_end's argument). */
enum wr_relay_end {
    WR_RELAY_DONE = 0,  /* both sides ended their direction, both shut down */
    WR_RELAY_ERROR = 1, /* a read or write failed (reset, TLS error) */
    WR_RELAY_IDLE = 2,  /* nothing was read for idle_timeout_ms */
};

typedef void (*wr_relay_end_fn)(struct wr_relay *r, enum wr_relay_end why, void *arg);

struct wr_relay_cfg {
    size_t buf_bytes;          /* per direction (> 0); 32 KiB is plenty */
    uint64_t idle_timeout_ms;  /* 0: none */
    /* Optional (NULL: none), single-writer counters the relay adds to live:
     * bytes read from side i, bytes written to side i. */
    _Atomic uint64_t *read_counter[2];
    _Atomic uint64_t *written_counter[2];
};

/* One direction: side `from` -> the other side. Private to relay.c. */
struct wr_relay_dir {
    char *buf;
    size_t cap, start, len; /* bytes buf[start..len) wait for the destination */
    uint64_t n_read;        /* bytes read from the source */
    uint64_t n_written;     /* bytes the destination took */
    bool is_eof;            /* the source ended (read returned 0) */
    bool is_shut;           /* ... and the destination was shut down after the rest */
};

/* Members are private to relay.c; read them through the functions below. */
struct wr_relay {
    struct wr_stream *side[2];            /* borrowed */
    struct event ev_read[2], ev_write[2]; /* ev_read[i]: direction i's source;
                                             ev_write[i]: side i as a destination */
    bool is_read_on[2], is_write_on[2];   /* the events above are added */
    struct wr_relay_dir dir[2];           /* dir[i]: side i -> side 1 - i */
    struct wr_timer timer;
    struct wr_timer_wheel *wheel;         /* borrowed: the worker's */
    struct wr_relay_cfg cfg;
    uint64_t deadline_ms;                 /* idle deadline; 0: none */
    wr_relay_end_fn on_end;
    void *arg;
    bool is_started;
    bool is_ended;                        /* on_end was called */
};

/*
 * Prepares r to relay between a (side 0) and b (side 1), connected streams
 * (borrowed: they outlive wr_relay_fini), on base and wheel (borrowed).
 * Allocates the two buffers, at least cfg->buf_bytes each and large
 * enough for the pending bytes wr_relay_start will get (max_pending).
 * Nothing moves until wr_relay_start. Returns 0, or -1 (ENOMEM; r then
 * holds nothing, wr_relay_fini is harmless).
 */
int wr_relay_init(struct wr_relay *r, struct event_base *base, struct wr_timer_wheel *wheel,
                  struct wr_stream *a, struct wr_stream *b, const struct wr_relay_cfg *cfg,
                  size_t max_pending, wr_relay_end_fn on_end, void *arg);

/*
 * Starts relaying. pending_a (len_a bytes, <= max_pending) were already
 * read from a and go to b first; pending_b likewise from b to a. They are
 * copied; they count as read. Writes what the destinations take now and
 * arms the events; never calls on_end (a failure shows on the next event).
 */
void wr_relay_start(struct wr_relay *r, const char *pending_a, size_t len_a,
                    const char *pending_b, size_t len_b);

/* Stops every event and the timer and frees the buffers; the streams are
 * left as they are. Safe inside on_end, twice, and after a failed init. */
void wr_relay_fini(struct wr_relay *r);

/* Bytes read from side i so far (pending bytes given to start included). */
uint64_t wr_relay_bytes_read(const struct wr_relay *r, int side);

/* Bytes side i took as a destination so far. */
uint64_t wr_relay_bytes_written(const struct wr_relay *r, int side);

#endif
