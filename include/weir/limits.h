/*
 * limits: the process-wide state behind the abuse limits that count per
 * client address across every worker: connections per address
 * ([limits] max_connections_per_ip) and per-route request rates (a route's
 * rate_limit).
 *
 * Both are fixed-size tables of atomics, allocated once by main and shared
 * by the workers; nothing here locks or allocates after wr_limits_new, so
 * a flood costs no memory. Keys are a keyed hash of the client address
 * (seeded at start, so a client cannot aim at another's slot): IPv4 by the
 * full address, IPv6 by its /64 (one subscriber's usual allocation, which a
 * client can roam freely), an IPv4-mapped IPv6 address as the IPv4 one.
 * Unix-socket clients have no address and are exempt (key 0).
 *
 * Collisions only ever over-count: two addresses in one connection slot
 * share its count; a rate-limit key that finds its set of slots held by
 * other live keys is judged by (and charged to) one of them.
 *
 * Layer 2. Thread-safe: every shared word is an atomic; any worker thread.
 */
#ifndef WEIR_LIMITS_H
#define WEIR_LIMITS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "weir/config.h"

/* Connection counters (one per slot, a power of two). */
#define WR_LIMITS_CONN_SLOTS 65536
/* Rate-limit slots: WR_LIMITS_RATE_SETS sets of WR_LIMITS_RATE_WAYS. */
#define WR_LIMITS_RATE_SETS 16384
#define WR_LIMITS_RATE_WAYS 4
/* "No connection slot held" (unix clients, or the limit off at accept). */
#define WR_LIMITS_NO_SLOT UINT32_MAX

struct wr_limits;

/* The tables, zeroed, with a random hash seed; NULL on allocation failure.
 * Main thread, before workers start. */
struct wr_limits *wr_limits_new(void);

/* Frees l (NULL ok). Main thread, after every worker has stopped. */
void wr_limits_free(struct wr_limits *l);

/* The key of a client address (see the header comment); 0 for unix
 * sockets and unknown families, which no limit applies to. */
uint64_t wr_limits_peer_key(const struct wr_limits *l, const struct sockaddr *sa);

/*
 * Counts one more connection for key unless that would exceed max. Returns
 * true with *slot set (give it back with wr_limits_conn_release when the
 * connection closes), or false (over the limit; nothing counted).
 */
bool wr_limits_conn_acquire(struct wr_limits *l, uint64_t key, uint64_t max, uint32_t *slot);

/* Gives back a slot from wr_limits_conn_acquire (WR_LIMITS_NO_SLOT: no-op). */
void wr_limits_conn_release(struct wr_limits *l, uint32_t slot);

/* Connections currently counted in key's slot (tests, metrics). */
uint64_t wr_limits_conn_count(const struct wr_limits *l, uint64_t key);

/*
 * One request of client key on the route named route_name, limited by rate
 * (rate->interval_us != 0), at now_us (a monotonic clock in microseconds,
 * below 2^48). A token bucket of rate->burst requests refilled one per
 * interval_us, kept as its "theoretical arrival time" in one atomic word
 * (GCRA), so workers update it with a compare-and-swap. Returns 0 when the
 * request may go on (and charges it), else the seconds after which one
 * would be accepted (rounded up, at least 1) for Retry-After. A key whose
 * slot keeps changing under it (64 lost compare-and-swaps in a row, i.e.
 * hammered by several workers at once) is refused with 1.
 */
uint64_t wr_limits_rate_check(struct wr_limits *l, uint64_t key, const char *route_name,
                              const struct wr_rate_limit *rate, uint64_t now_us);

/*
 * Log throttle for refusals an attacker can trigger in a loop: true at most
 * once per second for the whole process, with *n_suppressed set to the
 * refusals not logged since the last true; false otherwise (counted).
 */
bool wr_limits_log_due(struct wr_limits *l, uint64_t now_ms, uint64_t *n_suppressed);

#endif
