/*
 * ocsp: the pure parts of fetching OCSP responses for stapling (issue 19
 * point 4): the responder URL from a certificate's Authority Information
 * Access extension, that URL split for an HTTP/1.1 POST, and when to
 * refresh or retry, the request, the HTTP response's body, and the
 * verification of what came back. The fetch itself (main's loop, streams,
 * timers) is stapler.c's.
 * Layer 2 (OpenSSL's X509 and OCSP, the HTTP parser); no I/O, no global
 * state, any thread.
 */
#ifndef WEIR_OCSP_H
#define WEIR_OCSP_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

/* Refresh bounds: never sooner than this after a fetch (a responder that
 * returns short-lived responses is not hammered), never later than this
 * (a revocation shows within the hour even with week-long responses). */
#define WR_OCSP_REFRESH_MIN_S 300
#define WR_OCSP_REFRESH_MAX_S 3600
/* Retry after a failed fetch: 1 min doubling up to 1 h. */
#define WR_OCSP_RETRY_MIN_S 60
#define WR_OCSP_RETRY_MAX_S 3600

/* The first OCSP responder URL of cert's AIA extension as a malloc'd
 * string (caller frees), or NULL when the cert has none (or on ENOMEM). */
char *wr_ocsp_aia_url(X509 *cert);

/* One responder URL split for a request. host and path point into buf
 * (caller's, bufsz bytes); port is 80 when the URL names none. Only
 * http:// is accepted (RFC 6960 appendix A: responders are reached over
 * plain HTTP; the response is signed, so TLS adds nothing but a loop).
 * An IPv6 literal is given as [addr] and returned without brackets.
 * Returns false for another scheme, an empty host, a bad port or a URL
 * longer than buf. An empty path becomes "/". */
struct wr_ocsp_url {
    const char *host;
    const char *path;
    unsigned port;
};
bool wr_ocsp_split_url(const char *url, char *buf, size_t bufsz, struct wr_ocsp_url *out);

/* When to fetch again after a verified response fetched at now:
 * the midpoint of [this_update, next_update] (a response without
 * nextUpdate: next_update = 0), clamped to now + REFRESH_MIN..MAX. */
time_t wr_ocsp_refresh_at(time_t now, time_t this_update, time_t next_update);

/* The delay before the next attempt after a failure, given the previous
 * delay (0: first failure): RETRY_MIN doubling up to RETRY_MAX. */
unsigned wr_ocsp_retry_delay(unsigned prev);

/* The DER OCSP request for cert issued by issuer: one CertID with SHA-1
 * (RFC 5019 §2.1.1: what lightweight responders and their caches expect),
 * no nonce (RFC 5019 §2.1.2: responders precompute and ignore it; the
 * response's freshness is checked with thisUpdate/nextUpdate instead).
 * Into *der; returns its length, or 0 (and *der NULL) on failure. */
size_t wr_ocsp_request(X509 *cert, X509 *issuer, unsigned char **der);
/* (*der is OpenSSL-allocated: OPENSSL_free it.) */

/* The most bytes of a response head and body read from a responder (a
 * response is 1-3 KiB; the bound keeps a broken or hostile responder from
 * growing main's memory). */
#define WR_OCSP_HEAD_MAX 4096
#define WR_OCSP_BODY_MAX 16384

/*
 * The body of the HTTP/1.x response to our POST, from the bytes received
 * so far, buf[0..len) (is_closed: the responder closed after them).
 * Returns 1 with *body / *body_len (into buf) when it is complete: a 200
 * with all its Content-Length bytes, or a 200 without framing ended by the
 * close; 0 when more bytes are needed; -1 with why (cap bytes) for a
 * malformed head or one over WR_OCSP_HEAD_MAX, a status other than 200,
 * chunked coding (responders send a length; not supported), a body over
 * WR_OCSP_BODY_MAX, or a close before the end. Bytes after a
 * Content-Length body are ignored.
 */
int wr_ocsp_http_body(const char *buf, size_t len, bool is_closed, const char **body,
                      size_t *body_len, char *why, size_t cap);

/* What a fetched response says about our certificate. */
enum wr_ocsp_verdict {
    WR_OCSP_GOOD,
    WR_OCSP_REVOKED,  /* verified, and the CA says revoked */
    WR_OCSP_UNKNOWN,  /* verified, the responder does not know the cert */
    WR_OCSP_INVALID,  /* not stapled: see *why */
};

/* Checks a DER response for cert (issued by issuer): a successful
 * response, signed by issuer or by a responder cert issuer signed for
 * id-kp-OCSPSigning (RFC 6960 §4.2.2.2; the issuer is the only trust
 * anchor, the system store is not used), a SingleResponse for cert's
 * SHA-1 CertID, thisUpdate/nextUpdate valid at now with 5 minutes' skew.
 * *this_update / *next_update (0: none) are set for a verified response;
 * *why (static string) for WR_OCSP_INVALID. */
enum wr_ocsp_verdict wr_ocsp_verify(const unsigned char *der, size_t len, X509 *cert,
                                    X509 *issuer, time_t *this_update, time_t *next_update,
                                    const char **why);

#endif
