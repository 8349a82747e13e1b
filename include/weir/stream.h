/*
 * stream: one connected socket, plain or TLS, behind one set of calls.
 *
 * Every byte weir moves over a socket goes through here: client
 * connections, pooled upstream connections, tunnels and health probes. The
 * caller decides *when* (it owns the events); the stream decides *how*
 * (read or SSL_read, writev or sendfile or a TLS record, close_notify).
 * Plain TCP pays one compare (s->tls == NULL) per call for TLS existing.
 *
 * TLS writes have one staging implementation, here:
 *  - a record holds at most 16 KiB of plaintext; memory is handed to
 *    OpenSSL in place when it is one piece, else assembled in the worker's
 *    stage (struct wr_stream_stage: per worker, not per connection), file
 *    bytes are pread into the stage; a write that makes several records
 *    collects up to four in the stage's batch buffer and sends them with
 *    one write(2);
 *  - ciphertext the socket did not take still counts as *taken*: the
 *    caller advances past it and never offers those bytes again. It waits
 *    in a buffer of the connection's own (tls.c), allocated only while it
 *    waits and freed when it has gone; OpenSSL is never asked to retry.
 *    wr_stream_wants_write says bytes wait; the caller arms EV_WRITE and
 *    calls wr_stream_flush (any write call flushes first, too).
 * So a connection that is not blocked on a TLS write holds no write
 * buffer at all.
 *
 * Reading: wr_stream_read is read(2) or SSL_read. A TLS stream may hold
 * decrypted bytes, whole records or the end of the stream already taken
 * off the socket (wr_stream_has_pending): the socket will not become
 * readable for those, so the caller comes back for them itself. On a
 * client (upstream) TLS stream a TCP EOF without close_notify is an error,
 * WR_TLS_ETRUNCATED (RFC 8446 §6.1), unless the stream is idle
 * (wr_stream_set_idle).
 *
 * Not here: events, timeouts, buffers of the caller's protocol, which TLS
 * context to use (tls.c builds contexts; the caller picks one). Worker (or
 * main, for health probes) thread only: a stream and the stage it borrows
 * belong to one thread. Layer 2: uses tls; no libevent.
 */
#ifndef WEIR_STREAM_H
#define WEIR_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "weir/tls.h"
#include "weir/units.h"

struct iovec;
struct wr_stream_tls; /* a TLS stream's state (stream.c) */

/* Plaintext bytes of one TLS record: the most one TLS write takes. */
#define WR_STREAM_RECORD 16384
/* Most segments wr_stream_send looks at per TLS call. */
#define WR_STREAM_MAX_SEGS 64

struct wr_stream {
    int fd;                    /* owned: closed by wr_stream_fini; -1 when none */
    struct wr_stream_tls *tls; /* owned; NULL on plain TCP */
};

/* One piece of output: memory (fd < 0) or a range of an open file. */
struct wr_stream_seg {
    const char *ptr; /* memory segment (borrowed); unused for a file */
    size_t len;      /* bytes */
    int fd;          /* >= 0: a file range of this descriptor (borrowed) */
    off_t off;       /* file range: offset of its first byte */
};

/* Counters of one stage (so of one worker), for tests and measurements. */
struct wr_stream_stats {
    uint64_t n_pending;       /* streams with ciphertext waiting in a buffer of theirs now */
    uint64_t pending_bytes;   /* ciphertext bytes those buffers hold now */
    uint64_t n_blocked;       /* times a stream's output had to wait for the socket */
    uint64_t n_stage_allocs;  /* times the stage's 16 KiB were allocated (0 or 1) */
    uint64_t n_batch_allocs;  /* times the stage's batch buffer was allocated (0 or 1) */
};

/* ---- the per-worker stage --------------------------------------------------- */

struct wr_stream_stage;

/*
 * The staging buffers TLS streams of one thread share: WR_STREAM_RECORD
 * bytes, allocated the first time a write needs to assemble a record (a
 * thread that never writes TLS from several pieces never pays for it),
 * and a batch of four records' ciphertext (about 65 KiB), allocated the
 * first time one write makes more than one record.
 * NULL on allocation failure. The stage must outlive every stream started
 * with it. One thread only.
 */
struct wr_stream_stage *wr_stream_stage_new(void);

/* Frees st (no stream may still use it). NULL ok. */
void wr_stream_stage_free(struct wr_stream_stage *st);

/* st's counters (never NULL for a valid st). */
const struct wr_stream_stats *wr_stream_stage_stats(const struct wr_stream_stage *st);

/* ---- life ------------------------------------------------------------------- */

/* A plain stream on the connected (or connecting) non-blocking socket fd,
 * which s owns from now on. Never fails. */
void wr_stream_init(struct wr_stream *s, int fd);

/*
 * Opens a non-blocking socket (TCP_NODELAY on TCP) connecting to addr and
 * makes it s's: a plain stream. Returns 0 with *is_connecting set when the
 * connect is still in progress (wait for the socket to be writable, then
 * wr_stream_connect_error), or -1 with errno (s untouched) when it failed
 * at once.
 */
int wr_stream_connect(struct wr_stream *s, const struct wr_listen_addr *addr,
                      bool *is_connecting);

/* After the socket of a connecting stream became writable: 0 when the
 * connect succeeded, else its errno (SO_ERROR). */
int wr_stream_connect_error(const struct wr_stream *s);

/*
 * Server-side TLS on s (plain until now) with set (borrowed: outlives s;
 * the connection's snapshot reference guarantees it), staging in stage
 * (borrowed). 0, or -1 (ENOMEM: s stays plain). The handshake runs with
 * wr_stream_handshake.
 */
int wr_stream_tls_server(struct wr_stream *s, const struct wr_tls_set *set,
                         struct wr_stream_stage *stage);

/*
 * Client-side TLS on s (plain until now) to server (an index into the
 * upstream's servers: SNI and the name verified) of client (borrowed:
 * outlives s), offering the session in slot and storing new ones there
 * (borrowed, outlives s; NULL: no resumption), staging in stage
 * (borrowed). The socket may still be connecting: the handshake starts
 * with the first wr_stream_handshake. 0, or -1 (ENOMEM: s stays plain).
 */
int wr_stream_tls_client(struct wr_stream *s, const struct wr_tls_client *client, size_t server,
                         struct wr_tls_session **slot, struct wr_stream_stage *stage);

/*
 * Advances the TLS handshake of s (see wr_tls_handshake): WR_TLS_DONE,
 * WR_TLS_WANT_READ / WR_TLS_WANT_WRITE (call again when the socket is
 * readable / writable), WR_TLS_FAILED or (server side) WR_TLS_PLAIN_HTTP,
 * with why (cap bytes) saying what failed. s must be a TLS stream.
 */
enum wr_tls_result wr_stream_handshake(struct wr_stream *s, char *why, size_t cap);

/* Drops s's TLS state without a close_notify (a client that spoke plain
 * HTTP to a TLS port gets its answer in clear): s is plain from now on. */
void wr_stream_drop_tls(struct wr_stream *s);

/* Frees s's TLS state (no close_notify: see wr_stream_close_notify) and
 * any waiting record, closes the socket. s is empty afterwards (fd -1);
 * fini again is harmless. */
void wr_stream_fini(struct wr_stream *s);

/* ---- I/O -------------------------------------------------------------------- */

/*
 * Bytes into buf (cap > 0): read(2), or decrypted TLS records (several if
 * they are there). Returns bytes (> 0); 0 at the end of the stream
 * (close_notify; a bare TCP EOF on plain TCP and on server-side TLS); -1
 * with errno EAGAIN (nothing now), WR_TLS_ETRUNCATED (client-side TLS: a
 * TCP EOF without close_notify, not idle), EPROTO (a TLS error) or the
 * socket's errno. TLS: an end seen after bytes comes with the next call
 * (wr_stream_has_pending is true meanwhile), and once returned every later
 * call returns it again; after a failed TLS write, every read fails with
 * that write's errno. EINTR is retried here.
 */
ssize_t wr_stream_read(struct wr_stream *s, void *buf, size_t cap);

/*
 * Like writev(2) on memory: returns bytes taken (> 0, possibly fewer than
 * offered; 0 only when nothing was offered), or -1 with errno (EAGAIN:
 * wait for writable; another errno: the stream is broken). TLS: up to
 * four records per call, written with one write(2); ciphertext the socket
 * did not take yet counts as taken (see the header comment): the caller
 * must watch wr_stream_wants_write. n <= 16 segments are looked at.
 * Plain TCP never raises SIGPIPE.
 */
ssize_t wr_stream_writev(struct wr_stream *s, const struct iovec *iov, int n);

/*
 * Sends up to len bytes of file fd (borrowed, not moved: pread/sendfile
 * with an offset) from off: sendfile(2) on plain TCP; on TLS at most one
 * record read with pread. Returns bytes taken (> 0), or -1 with errno
 * (EAGAIN; EIO when the file ended before off + len: it shrank under us;
 * a read or socket error). len > 0.
 */
ssize_t wr_stream_sendfile(struct wr_stream *s, int fd, off_t off, size_t len);

/*
 * The general write: segs[0..n) in order, memory and file ranges mixed,
 * at most budget bytes (> 0). Plain: the leading memory segments with one
 * sendmsg (MSG_MORE when a file range follows them, so a response head
 * and its file's first bytes share a TCP segment), or a leading file range
 * with one sendfile. TLS: records assembled from as many segments as fit
 * (a head and the start of its file in one record), up to four of them
 * (64 KiB) leaving with one write(2) while the socket keeps up, one at a
 * time after the socket did not take a whole batch. Returns bytes
 * taken, counted from segs[0] across segments (the caller advances its
 * queue by that), or -1 with errno as wr_stream_writev and
 * wr_stream_sendfile. A file range that ends early is EIO; when bytes
 * before it were taken, they are returned first and the EIO comes with
 * the next call. At most 16 segments are looked at per plain call and
 * WR_STREAM_MAX_SEGS per TLS call.
 */
ssize_t wr_stream_send(struct wr_stream *s, const struct wr_stream_seg *segs, size_t n,
                       size_t budget);

/* Sends the TLS record that waits, if any. Returns 1 when nothing waits
 * (always on plain TCP), 0 when it still waits (EAGAIN: wait for writable),
 * -1 with errno when the stream broke (every later write and read fails). */
int wr_stream_flush(struct wr_stream *s);

/* True when a TLS record was taken but not sent: the caller must wait for
 * writable and call wr_stream_flush (or any write), even when it has
 * nothing more to write itself. Always false on plain TCP. */
bool wr_stream_wants_write(const struct wr_stream *s);

/* True when decrypted bytes, undecrypted records or the end of the stream
 * already came off the socket: the socket will not become readable for
 * them, so the caller reads again without waiting. False on plain TCP. */
bool wr_stream_has_pending(const struct wr_stream *s);

/*
 * Ends our direction: TLS close_notify (when the handshake finished and no
 * TLS error happened; fire and forget), then shutdown(SHUT_WR). Returns 0,
 * or -1 with errno: EAGAIN when a TLS record still waits (nothing done:
 * flush first; a close_notify must not overtake data), else shutdown's.
 */
int wr_stream_shutdown(struct wr_stream *s);

/* Sends close_notify if s is TLS, its handshake finished, no TLS error
 * happened and no record waits; never blocks or fails (what the socket
 * does not take now is dropped). Nothing on plain TCP. Before
 * wr_stream_fini of a connection that ends cleanly: keeps its session
 * resumable, and tells the peer the end is not a truncation. */
void wr_stream_close_notify(struct wr_stream *s);

/* Reads raw socket bytes into buf and drops them, even on TLS (nothing is
 * decrypted: lingering after our last response only drains the socket).
 * Returns as read(2). */
ssize_t wr_stream_discard(struct wr_stream *s, void *buf, size_t cap);

/* ---- state ------------------------------------------------------------------ */

/* True when s is TLS. */
static inline bool wr_stream_is_tls(const struct wr_stream *s)
{
    return s->tls != NULL;
}

/* s's TLS connection (for ALPN, SNI checks, version, resumption), or NULL
 * on plain TCP. Borrowed: lives as long as s's TLS state. */
struct wr_tls_conn *wr_stream_tls(const struct wr_stream *s);

/*
 * A client TLS stream goes idle in a pool (true) or back to work (false).
 * While idle a TCP EOF without close_notify is a clean close (nothing can
 * be truncated; the session stays resumable). Nothing on plain TCP.
 */
void wr_stream_set_idle(struct wr_stream *s, bool is_idle);

/*
 * For an idle stream whose socket became readable: true when that was
 * only TLS housekeeping (a late session ticket), read and dropped, and the
 * stream is still fine; false for data, close_notify, EOF or an error
 * (close it). Plain TCP: false without reading (any readable event on an
 * idle plain connection is data or EOF).
 */
bool wr_stream_idle_check(struct wr_stream *s);

/* True when s owes nothing either way and never failed: no record waits,
 * nothing read but unreturned, no TLS error. A stream may be pooled only
 * then. Plain TCP: always true (the caller knows its own framing). */
bool wr_stream_is_reusable(const struct wr_stream *s);

#endif
