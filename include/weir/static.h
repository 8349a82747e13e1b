/*
 * static: the `root` action: files under a directory.
 *
 * Path mapping that cannot leave root (openat2 RESOLVE_BENEATH), dotfiles,
 * index files, the trailing-slash redirect, autoindex, validators (strong
 * ETag, Last-Modified), preconditions (304/412), single ranges (206/416),
 * precompressed variants, and a file body that conn sends with sendfile.
 * Files are opened through the worker's open-file cache (static_cache.h).
 * Layer 3; worker thread only.
 */
#ifndef WEIR_STATIC_H
#define WEIR_STATIC_H

#include "weir/http_resp.h"

/*
 * Answers ex for a route whose action is WR_ACTION_STATIC. Returns 0 with a
 * response started in ex->resp (200, 206, 301, 304, 405 with Allow, 416, or
 * an autoindex page; a file body is either an fd conn owns or, with
 * resp->file_ref set, a cache entry whose reference conn owns), or the error
 * status for conn to answer: 404 (missing, dotfile, outside root), 403
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

/* Content-Type for a file name by its extension; a default for unknown ones. */
const char *wr_static_mime_type(struct wr_str name);

#endif
