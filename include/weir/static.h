/*
 * static: the `root` action: files under a directory.
 *
 * Path mapping that cannot leave root (openat2 RESOLVE_BENEATH), dotfiles,
 * index files, the trailing-slash redirect, autoindex, validators (strong
 * ETag, Last-Modified), preconditions (304/412), single ranges (206/416),
 * precompressed variants, and a file body that conn sends with sendfile.
 * Files are opened through the worker's open-file cache (static_cache.h),
 * which is the handler's per-worker state (worker_init makes it).
 * Layer 3; worker thread only.
 */
#ifndef WEIR_STATIC_H
#define WEIR_STATIC_H

#include "weir/handler.h"

/* Open files a worker's static cache keeps (static_cache.h). */
#define WR_STATIC_CACHE_ENTRIES 1024

/* The `root` action as a handler: one-shot (wr_static_handle, then
 * wr_exchange_respond, inside start); ex->worker_state is the cache. */
extern const struct wr_handler wr_static_handler;

/*
 * Answers ex for a route whose action is WR_ACTION_STATIC, with
 * ex->worker_state the worker's struct wr_static_cache (NULL: nothing is
 * cached). Returns 0 with a response built in ex->resp, not yet sent (200,
 * 206, 301, 304, 405 with Allow, 416, or an autoindex page; a file body is
 * either an fd the caller owns or, with resp->body_ref set, a cache entry
 * whose reference the caller owns), or the error
 * status to answer: 404 (missing, dotfile, outside root), 403
 * (permission, then also logged at error level, rate-limited per worker;
 * directory without index and autoindex off), 412 (a failed
 * precondition), 414 (path too long), 500 (I/O error).
 */
int wr_static_handle(struct wr_exchange *ex);

/*
 * The path under route's root that the normalised path maps to, as
 * wr_static_handle maps it: strip_prefix (at a segment boundary), no
 * leading '/', "%25" decoded; into out (cap bytes, NUL-terminated; "" is
 * the root itself). Returns 0, 404 for a dotfile segment (dotfiles off) or
 * an encoded '/', 414 when it does not fit. Pure; for `weir route`.
 */
int wr_static_map_path(const struct wr_route *route, struct wr_str path, char *out, size_t cap);

#endif
