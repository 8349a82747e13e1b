/*
 * admin: the operator's HTTP endpoint ([admin] listen), served by main on
 * its own event base, away from the workers.
 *
 *   GET /metrics  Prometheus text exposition (format 0.0.4)
 *   GET /status   the essentials as one JSON object
 *
 * HEAD is accepted too; other paths get 404, other methods 405. Requests
 * are parsed by wr_http_parse_request with an 8 KiB head limit; every
 * connection answers one request and closes, and lives at most 10 s; at
 * most 32 are open at once (more are closed at accept). Layer 5: it reads
 * metrics and binds through listener. Main thread only.
 */
#ifndef WEIR_ADMIN_H
#define WEIR_ADMIN_H

#include <stdbool.h>

#include "weir/cidr.h"
#include "weir/metrics.h"
#include "weir/units.h"

struct event_base;
struct wr_admin;

/*
 * A new endpoint on base answering from m and rate (both borrowed: main's,
 * they must outlive it). It listens on nothing until wr_admin_listen_take.
 * Returns NULL on allocation failure.
 */
struct wr_admin *wr_admin_new(struct event_base *base, struct wr_metrics *m,
                              const struct wr_metrics_rate *rate);

/*
 * Starts accepting on fd (a listening socket, taken: the endpoint owns it
 * from now on) bound to addr; fd < 0 stops listening. The socket used
 * before, if any, is closed (removing a unix socket file weir created);
 * connections already accepted finish. Returns 0, or -1 (fd is closed).
 */
int wr_admin_listen_take(struct wr_admin *a, int fd, const struct wr_listen_addr *addr,
                         bool is_inherited);

/* The current snapshot's [admin] (borrowed: main sets it again whenever
 * the snapshot changes): allow and deny (a client they keep out is closed
 * as soon as it is accepted) and auth_basic (401 without the right
 * credentials). */
void wr_admin_set_config(struct wr_admin *a, const struct wr_admin_cfg *cfg);

/* The current snapshot's [cache NAME] sections (borrowed, like the
 * config above): DELETE /cache/NAME?key=KEY or ?prefix=PREFIX purges
 * from their stores, and /metrics shows their sizes. */
void wr_admin_set_caches(struct wr_admin *a, const struct wr_cache_cfg *caches, size_t n);

/* The address it listens on, or NULL when it does not listen. */
const struct wr_listen_addr *wr_admin_address(const struct wr_admin *a);

/* Closes the socket and every connection, frees a. NULL ok. */
void wr_admin_free(struct wr_admin *a);

#endif
