/*
 * path: the one function that turns a request's raw path into the form
 * routes match and files are looked up by.
 *
 * Layer 0: pure, fuzzed by tests/fuzz/fuzz_path.c.
 */
#ifndef WEIR_PATH_H
#define WEIR_PATH_H

#include <stdbool.h>
#include <stddef.h>

#include "weir/str.h"

/*
 * Normalises raw[0..len) (a path without query, starting with '/') into out,
 * which must hold at least len bytes (the result is never longer). Steps:
 *  - percent-decoding of every %XX except %2F ('/') and %25 ('%'), which
 *    stay encoded (upper-case hex) so a decoded '/' can never create a
 *    segment and a '%' in the result always starts one of those two escapes;
 *  - repeated slashes merged into one;
 *  - "." and ".." segments removed (RFC 3986 §5.2.4), after decoding, so
 *    "%2e%2e" is a dot-segment too.
 * Returns 0 and sets *out_len, or 400 when the path does not start with '/',
 * holds a malformed escape, decodes to NUL or another control byte, or ".."
 * would climb above the root.
 */
int wr_path_normalize(const char *raw, size_t len, char *out, size_t *out_len);

/*
 * strip_prefix: true when path starts with prefix at a segment boundary,
 * i.e. path is prefix, or continues with '/' after it, or prefix ends with
 * '/'; *rest is then what follows the prefix (borrowed from path: empty,
 * or starting with '/' unless prefix ended with one). False otherwise
 * (*rest untouched): "/api" strips from "/api" and "/api/x", never from
 * "/apix", so a prefix cannot cut a segment in two. nginx replaces the
 * location's prefix textually (`location /api` + `proxy_pass http://b/`
 * sends "/apix" as "/x"); weir leaves such a path alone. Pure.
 */
bool wr_path_strip_prefix(struct wr_str path, struct wr_str prefix, struct wr_str *rest);

#endif
