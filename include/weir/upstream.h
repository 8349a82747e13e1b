/*
 * upstream: choosing a server of an [upstream] for a request (balancing),
 * and whether a server is usable (passive health from request outcomes,
 * active health from the checker).
 *
 * Health lives in the snapshot (struct wr_server_health, atomics) and is
 * shared by every worker; balancing state (smooth round-robin weights,
 * active request counts, the hash ring) is per worker, in a struct
 * wr_balancer built for one snapshot. The active checker runs on main's
 * event base only; each probe is a stream (stream.h: plain, or TLS with
 * the upstream's client context) carrying one request. Layer 2: uses
 * libevent, config, log and stream.
 *
 * Server indexes are into up->servers (and up->health). Times are clock.h's
 * monotonic milliseconds (wr_clock_now_ms).
 */
#ifndef WEIR_UPSTREAM_H
#define WEIR_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weir/config.h"
#include "weir/http_parser.h"
#include "weir/str.h"

struct event_base;

/* ---- balancing (per worker) ------------------------------------------------ */

struct wr_balancer;

/*
 * Per-worker balancing state for the upstreams of cfg (borrowed: the caller
 * keeps a reference on cfg for as long as b lives). Builds each hash ring
 * once here, so creation costs O(total weight); picks cost O(n_servers)
 * (hash: O(log points)). Returns NULL on allocation failure. Use b from one
 * thread only.
 */
struct wr_balancer *wr_balancer_new(const struct wr_config *cfg);

/* Frees b; NULL ok. */
void wr_balancer_free(struct wr_balancer *b);

/*
 * A set of servers of one upstream (the servers a request has tried): bit
 * i % 64 of words[i / 64] stands for server i. A set for up holds
 * WR_UPSTREAM_SET_WORDS(up->n_servers) words, owned by the caller.
 */
#define WR_UPSTREAM_SET_WORDS(n_servers) (((size_t)(n_servers) + 63) / 64)

static inline bool wr_upstream_set_has(const uint64_t *set, size_t server)
{
    return (set[server / 64] >> (server % 64) & 1u) != 0;
}

static inline void wr_upstream_set_add(uint64_t *set, size_t server)
{
    set[server / 64] |= (uint64_t)1 << (server % 64);
}

/*
 * A server index into up->servers for a request, or -1 when none is usable:
 * every server is down (passive or active health) or already in tried (a
 * set of WR_UPSTREAM_SET_WORDS(up->n_servers) words, see above; NULL when
 * nothing was tried), so a request never goes to the same server twice,
 * whatever the pool's size. When every server is down there is no
 * fallback: the proxy answers 502 at once, and a passively failed server
 * comes back when its fail_timeout ends (a pool's only server is never
 * taken out).
 *
 * key is the hash input (wr_upstream_hash_key; only used by balance = hash).
 * If up does not belong to b's snapshot (a connection still on an older
 * snapshot), the pick is stateless: weighted random among usable servers,
 * or for hash the highest rendezvous score of key, so still consistent.
 */
int wr_balancer_pick(struct wr_balancer *b, const struct wr_upstream_cfg *up,
                     struct wr_str key, const uint64_t *tried, uint64_t now_ms);

/*
 * least_conn and random (p2c) bookkeeping: a request to server i starts /
 * ends on this worker. Call end exactly once per begin, on the same b;
 * both do nothing when up is not of b's snapshot or server is out of range.
 */
void wr_balancer_begin(struct wr_balancer *b, const struct wr_upstream_cfg *up, int server);
void wr_balancer_end(struct wr_balancer *b, const struct wr_upstream_cfg *up, int server);

/* Requests in flight to server on this worker (begun, not ended); 0 when
 * up is not of b's snapshot. For metrics and tests. */
unsigned wr_balancer_active(const struct wr_balancer *b, const struct wr_upstream_cfg *up,
                            int server);

/*
 * The hash input for a request per up->hash_key: client_ip (client_ip
 * itself), uri (the request target as received), header:NAME (the first
 * such field's value), cookie:NAME (the value of the first cookie NAME in
 * the Cookie field(s), in field order; names compare case-sensitively,
 * RFC 6265 §5.4). The empty slice when absent. The result borrows from req
 * or client_ip. Pure; any thread.
 */
struct wr_str wr_upstream_hash_key(const struct wr_upstream_cfg *up,
                                   const struct wr_http_request *req, struct wr_str client_ip);

/* ---- health (any thread) --------------------------------------------------- */

/*
 * Passive health: the outcome of one attempt to use server (any worker).
 * A failure is counted in a window of fail_timeout starting at the first
 * failure; max_fails of them take the server out until now + fail_timeout
 * (logged once, WARN, as "main": the line names upstream and server). A
 * success resets the count but does not end a take-out early (it may be a
 * request that began before the failures). max_fails = 0, or a pool of one
 * server: nothing is counted. Concurrent reports from several workers may
 * miscount by a few near a window boundary; that is accepted (no locks).
 * now_ms must be > 0 (CLOCK_MONOTONIC is, after boot).
 */
void wr_upstream_report(const struct wr_upstream_cfg *up, int server, bool is_ok,
                        uint64_t now_ms);

/* Usable now: not taken out by passive health, not failed by the checker
 * (a server not checked yet counts as up). */
bool wr_upstream_is_up(const struct wr_upstream_cfg *up, int server, uint64_t now_ms);

/*
 * Reload: copies the health of every server of old_cfg to the server of
 * new_cfg in the upstream of the same name with the same address, so a
 * reload neither resurrects a failed server nor forgets a verdict. Servers
 * new to new_cfg start healthy (not checked yet). Main thread, before
 * new_cfg is published; old_cfg may still be in use by workers.
 */
void wr_upstream_carry_health(const struct wr_config *old_cfg, struct wr_config *new_cfg);

/*
 * A DNS change (resolve.h) replaced old_cfg by new_cfg: each server of
 * old_cfg whose address the same upstream of new_cfg no longer has is
 * marked down in old_cfg (its check verdict; nothing checks old_cfg any
 * more), so requests still made under old_cfg (a keep-alive client
 * connection keeps the snapshot it started with) stop picking it too. An
 * upstream of old_cfg none of whose addresses remain is left as it is:
 * its old addresses serve those requests rather than a 502. Main thread,
 * after new_cfg is published.
 */
void wr_upstream_retire_vanished(const struct wr_config *old_cfg,
                                 const struct wr_config *new_cfg);

/* ---- active checks (main thread) ------------------------------------------- */

struct wr_health_checker;

/*
 * One checker for the process, on base (main's). It does nothing until
 * wr_health_checker_set_config. Returns NULL on allocation failure.
 *
 * For each upstream with health_check, every health_interval, for each
 * server (at most one check in flight per server): a non-blocking connect
 * (TCP v4/v6 or unix), "METHOD /path HTTP/1.1" with Host (the server's
 * authority), User-Agent: weir-health and Connection: close, then the status
 * line read within health_timeout: 2xx/3xx = up, anything else (refused,
 * timeout, other status, garbage) = down. The verdict goes to the server's
 * atomic; transitions are logged (WARN down with the reason, INFO up).
 * With tls = on the same request goes over TLS with the upstream's client
 * context (the workers' SNI and verification): a handshake or certificate
 * failure is a failed check, logged with OpenSSL's reason.
 */
struct wr_health_checker *wr_health_checker_new(struct event_base *base);

/* Checks cfg from now on (takes a reference; drops the previous snapshot's)
 * and restarts every check: in-flight probes are cancelled and freed. cfg
 * NULL stops checking. Main thread. */
void wr_health_checker_set_config(struct wr_health_checker *hc, struct wr_config *cfg);

/* Cancels everything, drops the reference, frees hc. NULL ok. Main thread,
 * before base is freed. */
void wr_health_checker_free(struct wr_health_checker *hc);

#endif
