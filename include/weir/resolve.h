/*
 * resolve: upstream server names re-resolved in the background (the
 * upstream key `resolve`), on main's event loop with libevent's evdns, so
 * no worker ever waits for DNS.
 *
 * Each server line given by name ("app.internal:9000") of an upstream with
 * `resolve` is one name here. It is asked for its A and AAAA records (the
 * hosts file first, as getaddrinfo at load does: a name listed there takes
 * its addresses from it, and DNS is not asked) every `resolve`, or at the
 * records' TTL when that is sooner, never more often than
 * WR_RESOLVE_FLOOR_MS. The answer is compared with the current set as a
 * set (order and rotation are no change). A failure (timeout, SERVFAIL,
 * NXDOMAIN, an empty answer) keeps the last good set: logged once (WARN)
 * until the name resolves again (INFO).
 *
 * How a change reaches the workers: main derives a new snapshot from the
 * running one (wr_config_derive: only the upstreams' server arrays are
 * new; routes, regexes, TLS contexts, htpasswd users and file names are
 * the loaded snapshot's, so an edit of weir.ini or of a file it names that
 * was not reloaded is never picked up) and publishes it exactly as a
 * reload does. That was chosen over re-running the loader on kept text
 * (which would have to keep every file it reads, htpasswd files too) and
 * over a mutable server table read with atomics (every user of
 * up->servers: balancer rings, tried sets, pool keys, metrics ids, would
 * have to cope with a table changing under it). So: added addresses join
 * the balancer of the new snapshot; requests in flight finish on the old
 * one's servers (draining), and the old snapshot marks vanished addresses
 * down (wr_upstream_retire_vanished) so its keep-alive client connections
 * stop picking them; health moves by address
 * (wr_upstream_carry_health); the pool closes idle connections to an
 * address no snapshot in use names any more (pool.h, wr_pool_sweep).
 *
 * A reload resolves afresh (the loader) and restarts the schedule
 * (wr_resolver_set_config). Main thread only. Layer 2: libevent (evdns),
 * config, log, metrics.
 */
#ifndef WEIR_RESOLVE_H
#define WEIR_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weir/config.h"

struct event_base;
struct wr_metrics;

/* The shortest time between two resolutions of a name, whatever its TTL
 * says: a TTL of 0 must not turn into a query loop. */
#define WR_RESOLVE_FLOOR_MS 1000

/* ---- pure helpers (any thread) ----------------------------------------------- */

/* Whether a[0..n_a) and b[0..n_b) hold the same addresses (by text),
 * whatever their order. Duplicates count once. */
bool wr_resolve_same_set(const struct wr_listen_addr *a, size_t n_a,
                         const struct wr_listen_addr *b, size_t n_b);

/* "added X, Y; removed Z" (or "added none", "removed none") into buf (cap
 * bytes, truncated), what going from old to new changes. Returns buf. */
const char *wr_resolve_describe(const struct wr_listen_addr *old, size_t n_old,
                                const struct wr_listen_addr *new_addrs, size_t n_new,
                                char *buf, size_t cap);

/* When to resolve again: resolve_ms, or the TTL (ttl_s seconds; < 0 when
 * unknown, as for a hosts file entry) when sooner, never under
 * WR_RESOLVE_FLOOR_MS. */
uint64_t wr_resolve_interval_ms(uint64_t resolve_ms, int64_t ttl_s);

/* The addresses hosts-file text (/etc/hosts syntax: "ADDR NAME..." lines,
 * '#' comments) gives host (case-insensitive), with port, in file order,
 * duplicates dropped: up to cap into out. Returns how many (0: not
 * listed). */
size_t wr_resolve_hosts_lookup(const char *text, const char *host, uint16_t port,
                               struct wr_listen_addr *out, size_t cap);

/* One name's current addresses, for wr_resolve_servers: the servers of
 * server line `line` (a position, config.h) are these. */
struct wr_resolve_set {
    unsigned line;
    const struct wr_listen_addr *addrs;
    size_t n_addrs;
};

/*
 * up's servers with those of each named line in sets replaced by one server
 * per address of the set (the line's weight, authority, and a label
 * "name:port (address)"), in up's order. Other servers are copied as they
 * are. *out is owned by the caller (wr_resolve_servers_free). Returns 0, or
 * -1 when out of memory.
 */
int wr_resolve_servers(const struct wr_upstream_cfg *up, const struct wr_resolve_set *sets,
                       size_t n_sets, struct wr_upstream_server_cfg **out, size_t *n_out);

void wr_resolve_servers_free(struct wr_upstream_server_cfg *servers, size_t n);

/* ---- load time ------------------------------------------------------------------ */

/*
 * wr_config_resolve_ns_fn for the loader when `[server] resolver` is set:
 * the hosts file, then A and AAAA asked of ns[0..n_ns) with evdns on an
 * event base of its own, waiting for the answers (2 s per try, 2 tries),
 * as getaddrinfo would block. Main thread, at load.
 */
int wr_resolve_blocking(const struct wr_listen_addr *ns, size_t n_ns, const char *host,
                        uint16_t port, struct wr_listen_addr *out, size_t cap, const char **why);

/* ---- the background resolver (main thread) -------------------------------------- */

struct wr_resolver;

/* Called when a name's set changed: derive and publish (wr_resolver_derive). */
typedef void (*wr_resolver_changed_fn)(void *arg);

/* A resolver on base; counts into m (borrowed, outlives it). NULL when out
 * of memory or evdns cannot start. */
struct wr_resolver *wr_resolver_new(struct event_base *base, struct wr_metrics *m,
                                    wr_resolver_changed_fn changed, void *arg);

/*
 * Follows the names of cfg from now on (start, and every reload): the sets
 * are cfg's (resolved at load), the first re-resolution is one interval
 * away; nameservers are cfg's `[server] resolver`, else /etc/resolv.conf's.
 * Queries in flight for the previous names are ignored when they end.
 * Returns 0, or -1 when out of memory (nothing is re-resolved then).
 */
int wr_resolver_set_config(struct wr_resolver *r, const struct wr_config *cfg);

/* A snapshot of cur (derived from the snapshot last given to
 * wr_resolver_set_config) with every name's current set; NULL when out of
 * memory. */
struct wr_config *wr_resolver_derive(struct wr_resolver *r, struct wr_config *cur);

/* Frees r and every query. Main thread, after the loop stopped; NULL ok. */
void wr_resolver_free(struct wr_resolver *r);

#endif
