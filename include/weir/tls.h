/*
 * tls: OpenSSL for client connections. SSL_CTX per [tls] / [tls NAME]
 * section, the section chosen by SNI, ALPN, session tickets with keys
 * shared by every worker and rotated by main, and the non-blocking
 * record I/O a TLS stream (stream.h) runs on.
 *
 * Threads: sets and ticket keys are built and rotated by main; workers
 * only read them (OpenSSL locks what it changes inside an SSL_CTX), except
 * the OCSP responses main swaps in (wr_tls_set_staple, behind a lock). A
 * struct wr_tls_conn belongs to the worker that accepted its socket.
 * Layer 2: nothing here knows about requests or routes.
 */
#ifndef WEIR_TLS_H
#define WEIR_TLS_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/types.h>

#include "weir/config.h"
#include "weir/str.h"

struct wr_tls_set;  /* the contexts of one config snapshot */
struct wr_tls_conn; /* one client connection's TLS state */
struct wr_tls_keys; /* session ticket keys: a current and a previous one */
struct wr_tls_client;  /* the client context of one [upstream] with tls = on */
struct wr_tls_session; /* a session an upstream connection may resume */

/* How often main rotates the ticket keys. A ticket stays decryptable for
 * one to two periods (the previous key is still accepted). */
#define WR_TLS_TICKET_ROTATE_MS (12ull * 3600 * 1000)

/* "OpenSSL 3.0.x ..." of the library weir runs with. */
const char *wr_tls_library_version(void);

/* New random ticket keys. NULL on failure. Main thread. */
struct wr_tls_keys *wr_tls_keys_new(void);

/* The current key becomes the previous one (still decrypts, renewed on
 * use); a new random key encrypts from now on. Returns 0, or -1 (keys
 * unchanged) when no randomness was available. Main thread only; workers
 * may read concurrently. */
int wr_tls_keys_rotate(struct wr_tls_keys *keys);

/* Frees keys once no set uses them any more. NULL ok. */
void wr_tls_keys_free(struct wr_tls_keys *keys);

/*
 * Builds one context per cfg->tls[] section (none without [tls]), and one
 * client context per [upstream] with tls = on (see the upstream part
 * below). keys (borrowed, may be NULL: no tickets) must outlive the set.
 * Every certificate, key, cipher list problem is appended to errs as
 * "file:line: [tls NAME] key: message" and NULL returned.
 * With old (a reload): a section whose files fail keeps old's section of
 * the same name (certificate, names and settings), logged as an error
 * naming the reason; only a failing section that old lacks fails the set.
 * Main thread. The result is owned by the caller (wr_tls_set_free), or
 * attached to cfg with wr_tls_set_attach.
 */
struct wr_tls_set *wr_tls_set_new(const struct wr_config *cfg, struct wr_tls_keys *keys,
                                  const struct wr_tls_set *old, struct wr_config_errors *errs);

/*
 * Checks what a certificate that loads can still get wrong, and appends a
 * warning ("file:line: warning: [tls NAME] cert: PATH: message") to errs
 * for each: the leaf of every cert file has expired or is not valid yet,
 * or does not cover every entry of its section's `names` (a wildcard entry
 * needs a wildcard certificate). Files that cannot be read are skipped
 * (wr_tls_set_new reports them). Main thread.
 */
void wr_tls_check_certs(const struct wr_config *cfg, struct wr_config_errors *errs);

/* Hands set to cfg (cfg->tls_set), freed with the snapshot, and points
 * each tls = on upstream's tls_client at its context in set. Main thread,
 * before cfg is published. */
void wr_tls_set_attach(struct wr_config *cfg, struct wr_tls_set *set);

/* Frees set; contexts still used by an SSL stay alive until it goes. NULL ok. */
void wr_tls_set_free(struct wr_tls_set *set);

/*
 * Index of the section answering host name (lower case, no port, len
 * bytes): an exact name first, then the "*.parent" wildcard of its first
 * label; 0 ([tls]) for anything else.
 */
size_t wr_tls_set_select(const struct wr_tls_set *set, const char *name, size_t len);

/* Sections in set (for tests and logs). */
size_t wr_tls_set_count(const struct wr_tls_set *set);

/* ---- OCSP stapling (ocsp_stapling = on; main fetches: stapler.h) ---- */

/* One certificate whose OCSP response main fetches and staples. */
struct wr_tls_ocsp_target {
    const char *section; /* the [tls NAME]'s name; NULL for [tls] (borrowed) */
    X509 *leaf;          /* borrowed: lives as long as the set */
    X509 *issuer;        /* borrowed; NULL when its chain file holds no
                            certificate that issued it */
    size_t site, cert;   /* where wr_tls_set_staple puts its response */
};

/*
 * The certificates of set's sections with ocsp_stapling = on, in section
 * and cert order, but not a section's first certificate when it has an
 * ocsp_file (that file wins). Fills out[0..cap) and returns how many there
 * are (call with cap 0 to count). set may be NULL (0). Main thread.
 */
size_t wr_tls_set_ocsp_targets(const struct wr_tls_set *set, struct wr_tls_ocsp_target *out,
                               size_t cap);

/*
 * Staples der (len bytes, copied; a verified OCSP response) from now on to
 * the handshakes that choose certificate cert of site site of set and ask
 * for it (status_request); der NULL: nothing stapled any more. Handshakes
 * of every worker may run meanwhile: each sends the response it found
 * (the swap is atomic for them). Returns 0, or -1 (out of memory or an
 * index out of range: nothing changed). Main thread.
 */
int wr_tls_set_staple(const struct wr_tls_set *set, size_t site, size_t cert,
                      const unsigned char *der, size_t len);

/*
 * Starts server-side TLS on the connected socket fd with set (borrowed:
 * must outlive the result, which the snapshot reference of the connection
 * guarantees). Returns NULL on allocation failure. Worker thread.
 */
struct wr_tls_conn *wr_tls_conn_new(const struct wr_tls_set *set, int fd);

/* Frees t without a close_notify (the socket is not closed). NULL ok. */
void wr_tls_conn_free(struct wr_tls_conn *t);

enum wr_tls_result {
    WR_TLS_DONE = 0,   /* handshake complete */
    WR_TLS_WANT_READ,  /* call again when the socket is readable */
    WR_TLS_WANT_WRITE, /* call again when the socket is writable */
    WR_TLS_FAILED,     /* not TLS, or a handshake error: close the connection */
    WR_TLS_PLAIN_HTTP, /* the client spoke plain HTTP: may answer 400 in clear */
};

/* Advances the handshake. On WR_TLS_FAILED and WR_TLS_PLAIN_HTTP, why
 * (cap bytes) says what went wrong, for a debug log line. */
enum wr_tls_result wr_tls_handshake(struct wr_tls_conn *t, char *why, size_t cap);

/* errno of wr_tls_recv on a client connection (upstream side) whose server
 * closed TCP without close_notify: the bytes before may be truncated (RFC
 * 8446 §6.1, RFC 9112 §9.8). No socket read sets it. */
#define WR_TLS_ETRUNCATED ENODATA

/*
 * Decrypted bytes into buf (up to cap, several records if they are there).
 * Returns bytes > 0; 0 at the end of the stream: close_notify, or on a
 * server-side connection a bare EOF too (HTTP framing makes it harmless
 * for a server); -1 with errno EAGAIN (nothing yet), WR_TLS_ETRUNCATED (a
 * client connection's bare EOF, see above), or another errno (EPROTO for a
 * TLS error): close. An end seen after bytes is returned by the next call
 * (wr_tls_has_pending is true meanwhile); once returned, every later call
 * returns it again.
 */
ssize_t wr_tls_recv(struct wr_tls_conn *t, void *buf, size_t cap);

/*
 * Encrypts at most one record of buf and writes it to the socket; what
 * the socket does not take waits in t (wr_tls_waiting) and goes first on
 * the next wr_tls_flush: the bytes count as taken all the same. Returns
 * bytes taken (> 0), or -1 with errno (the connection is broken). Call
 * only while nothing waits (wr_tls_flush returned 1). len must be > 0.
 */
ssize_t wr_tls_send(struct wr_tls_conn *t, const void *buf, size_t len);

/*
 * Batching: between wr_tls_batch_begin and wr_tls_batch_end, the records
 * of wr_tls_send collect in buf (cap bytes, borrowed: the worker's) and
 * leave with one write at the end, so records made in a row cost one
 * system call. Before each wr_tls_send the caller checks that
 * wr_tls_batch_room holds a whole record (WR_TLS_RECORD_MAX).
 * wr_tls_batch_end returns 0 (what the socket did not take waits in t),
 * or -1 with errno when the socket failed.
 */
#define WR_TLS_RECORD_MAX (16384 + 256) /* a record of 16 KiB with its overhead */
void wr_tls_batch_begin(struct wr_tls_conn *t, char *buf, size_t cap);
size_t wr_tls_batch_room(const struct wr_tls_conn *t);
int wr_tls_batch_end(struct wr_tls_conn *t);

/* Writes what waits in t: 1 when nothing waits (any more), 0 when some
 * still waits (call again once writable), -1 with errno on a socket error. */
int wr_tls_flush(struct wr_tls_conn *t);

/* Ciphertext bytes waiting in t for the socket (0: none, no buffer held). */
size_t wr_tls_waiting(const struct wr_tls_conn *t);

/* True when decrypted bytes, received records not yet decrypted, or an
 * end of stream not yet returned wait inside t: the socket will not become
 * readable for them. */
bool wr_tls_has_pending(const struct wr_tls_conn *t);

/* Sends close_notify if the socket takes it now; never blocks or fails. */
void wr_tls_close_notify(struct wr_tls_conn *t);

/* True when host (lower case, no port) is answered by another section's
 * certificate than the one the handshake chose: RFC 9110 §15.5.20, 421. */
bool wr_tls_is_misdirected(struct wr_tls_conn *t, struct wr_str host);

/* handshake_timeout of the section chosen so far ([tls] until SNI). */
uint64_t wr_tls_handshake_timeout_ms(const struct wr_tls_conn *t);

/* The ALPN protocol agreed ("" when none) and the TLS version ("TLSv1.3"),
 * for logs and tests. */
struct wr_str wr_tls_alpn(const struct wr_tls_conn *t);

/*
 * The client's certificate on a server connection ([tls] verify_client),
 * when it sent one and it verified: its subject in RFC 2253 text
 * ("CN=ann,O=Example", cut to cap - 1 bytes) and its SHA-256 fingerprint
 * (64 hex digits), and true; false when there is none (t NULL too).
 */
bool wr_tls_client_cert(const struct wr_tls_conn *t, char *subject, size_t cap, char fp[65]);
const char *wr_tls_version(const struct wr_tls_conn *t);

/* True once a handshake completed by resuming a session (a ticket). */
bool wr_tls_is_resumed(const struct wr_tls_conn *t);

/* ---- upstream TLS (the client side) ----------------------------------------
 *
 * A struct wr_tls_client is one [upstream]'s context: TLS 1.2+, ALPN
 * http/1.1, the certificate verified against tls_ca when tls_verify = on
 * (its name checked against tls_sni, else the server's authority host, an
 * IP literal against the certificate's IP addresses), SNI tls_sni or the
 * authority's host name (never an IP literal). It lives in the snapshot's
 * set; workers only read it. Client connections are struct wr_tls_conn
 * too: wr_tls_handshake, wr_tls_recv, wr_tls_send, wr_tls_has_pending,
 * wr_tls_close_notify and wr_tls_is_resumed work on both sides.
 *
 * Resumption: OpenSSL hands every new session (a TLS 1.3 ticket, or a
 * TLS 1.2 session) to the slot the connection was made with; the next
 * connection made with that slot offers it. Slots belong to a worker's
 * pool (one per server), so nothing is shared between threads.
 */

/* Process-unique number of c (never reused, unlike an address): pools
 * keep connections and sessions of different contexts apart by it. */
uint64_t wr_tls_client_id(const struct wr_tls_client *c);

/*
 * Starts client TLS on the connecting or connected socket fd to server
 * (an index into the upstream's servers) of c. slot (borrowed, must
 * outlive the result; NULL: no resumption) holds the session to offer
 * and receives new ones. NULL on allocation failure. The thread that
 * owns the socket (a worker; main for health probes).
 */
struct wr_tls_conn *wr_tls_client_conn_new(const struct wr_tls_client *c, size_t server, int fd,
                                           struct wr_tls_session **slot);

/* Frees what a slot holds. NULL ok. */
void wr_tls_session_free(struct wr_tls_session *s);

/* Reads and discards what an idle client connection received: true when
 * that was only TLS housekeeping (a late session ticket) and the
 * connection is still fine (OpenSSL's buffers are then given back); false
 * for data, close_notify, EOF or an error (close it). */
bool wr_tls_idle_check(struct wr_tls_conn *t);

/* A client connection goes idle in the pool (true) or back to work
 * (false). While idle, a TCP EOF without close_notify counts as a clean
 * close: no response can be truncated, and the session stays resumable.
 * Going idle gives OpenSSL's buffers back when they hold nothing. */
void wr_tls_set_idle(struct wr_tls_conn *t, bool is_idle);

/* True when the connection is still usable after its last result: no
 * fatal TLS error, so a close_notify may be sent. */
bool wr_tls_is_healthy(const struct wr_tls_conn *t);

#endif
