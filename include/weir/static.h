/*
 * static: the `root` action: files under a directory.
 *
 * This is the first cut the core needs for its demo site: path mapping that
 * cannot leave root (openat2 RESOLVE_BENEATH), index files, the
 * trailing-slash redirect, Content-Type, Last-Modified, and a file body that
 * conn sends with sendfile. Layer 3; worker thread only.
 */
#ifndef WEIR_STATIC_H
#define WEIR_STATIC_H

#include "weir/http_resp.h"

/*
 * Answers ex for a route whose action is WR_ACTION_STATIC. Returns 0 with a
 * response started in ex->resp (a file body's fd then belongs to conn), or
 * the error status for conn to answer: 404 (missing, dotfile, outside root),
 * 403 (permission, directory without index), 405 (not GET/HEAD; Allow is set
 * by the handler's own response instead, so 405 is never returned), 500.
 */
int wr_static_handle(struct wr_exchange *ex);

/* Content-Type for a file name by its extension; a default for unknown ones. */
const char *wr_static_mime_type(struct wr_str name);

#endif
