/*
 * cache: the handler of a proxy route with cache = NAME (issue 20). It
 * answers from the route's shared store (cache_store.h) what RFC 9111
 * lets it (cache_policy.h decides), and runs the proxy (proxy.h) for the
 * rest, in an exchange of its own whose sink is a tee: what the server
 * sends goes to the client and, when storable, into the store as it
 * streams, so requests for the same key read it while it arrives.
 *
 * Per request:
 *  - not cacheable here (a method the route does not cache, a request
 *    body, an upgrade): forwarded as is, Cache-Status fwd=method|bypass;
 *  - a stored response the policy serves: answered from the store (Age,
 *    Cache-Status hit; a client's If-None-Match / If-Modified-Since gets
 *    304 from the stored validators);
 *  - a miss: the first request of a key takes its fill lock and forwards
 *    (fwd=uri-miss, "stored" when the response went in); concurrent ones
 *    wait for its head (coalescing; at most cache_lock_timeout, then they
 *    go upstream themselves without storing) and are served from the
 *    store as the body streams in (Cache-Status "collapsed");
 *  - stale: forwarded to the server (fwd=stale); when the server fails
 *    (5xx, or no answer: 502/504) within stale-if-error, the stale
 *    response is served instead;
 *  - only-if-cached and nothing usable: 504.
 * Waiters on other workers are woken through an eventfd per worker: the
 * store's callbacks (any thread) only push the request onto its worker's
 * lock-free list and write the eventfd; everything else runs on the
 * request's own worker.
 * Layer 3 (a handler), beside proxy.
 */
#ifndef WEIR_CACHE_H
#define WEIR_CACHE_H

#include "weir/handler.h"

extern const struct wr_handler wr_cache_handler;

/* The layout of the meta blob entries carry (a disk tier's files record
 * it: files of another layout are not read). */
#define WR_CACHE_META_VERSION 1

#endif
