/*
 * stapler: OCSP stapling's moving parts on main's event loop (issue 19
 * point 4). For every certificate of a [tls] section with
 * ocsp_stapling = on (tls.h, wr_tls_set_ocsp_targets) it fetches the
 * response from the responder its Authority Information Access extension
 * names, verifies it against the certificate's issuer (ocsp.h), hands it
 * to the section's context for stapling (wr_tls_set_staple) and fetches
 * again before nextUpdate.
 *
 * - The fetch: one HTTP/1.1 POST (application/ocsp-request, SHA-1 CertID,
 *   no nonce) over a plain stream (stream.h), non-blocking from the lookup
 *   to the last byte, at most 10 s, a bounded response (ocsp.h). http://
 *   URLs only. A name is looked up with libevent's evdns on main's loop
 *   (the hosts file, then /etc/resolv.conf's nameservers), never with a
 *   blocking getaddrinfo; an IP literal is used as it is.
 * - Verified: status good is stapled; revoked is stapled too (it is what
 *   the CA says, and a client that sees it refuses a compromised key)
 *   and logged as an error; unknown and responses that do not verify are
 *   not, and never replace a response still valid.
 * - Refresh at the midpoint of thisUpdate..nextUpdate, within 5 min..1 h
 *   of the fetch; after a failure, retries 1 min doubling to 1 h; the
 *   response stays stapled until its nextUpdate, then goes. A failure is
 *   logged once (WARN), the recovery once (INFO).
 * - A reload keeps the responses (and the schedule) of certificates it
 *   still has (same certificate, issuer and URL): no fetch burst on SIGHUP;
 *   new certificates are fetched at once.
 *
 * Main thread only. Layer 2: libevent, tls, stream, ocsp, log, metrics.
 */
#ifndef WEIR_STAPLER_H
#define WEIR_STAPLER_H

#include "weir/config.h"

struct event_base;
struct wr_metrics;
struct wr_stapler;

/* How long one fetch may take, lookup to last byte. */
#define WR_STAPLER_FETCH_TIMEOUT_S 10

/* A stapler on base, counting into m (borrowed; both outlive it). NULL when
 * out of memory. Nothing is fetched before wr_stapler_set_config. */
struct wr_stapler *wr_stapler_new(struct event_base *base, struct wr_metrics *m);

/*
 * Follows cfg's certificates from now on (start, and every reload before
 * the snapshot is published): keeps a reference on cfg; carries what it
 * fetched for the certificates cfg still has into cfg's TLS set at once;
 * starts fetching for the new ones on the next loop turn; drops the rest.
 * Warns (once per call) about a certificate with stapling on but no
 * responder URL or no issuer in its chain file: nothing is stapled for it.
 * cfg NULL or without TLS: stops everything.
 */
void wr_stapler_set_config(struct wr_stapler *st, struct wr_config *cfg);

/* Stops every fetch and frees st. Before the event base goes. NULL ok. */
void wr_stapler_free(struct wr_stapler *st);

#endif
