/*
 * error_page: which page answers an error (the error_page lines of
 * [server] and the routes), and the internal request that fetches it.
 *
 * When an answer ends in a status the route's list names (weir's own
 * errors; an upstream's with proxy_intercept_errors = on), the front end
 * routes the page's PATH as a GET (HEAD stays HEAD) with the original Host,
 * lets that route's handler answer, and sends the answer with the original
 * status (exchange.c). Not here: routing and answering (router, the front
 * ends, the handlers). Layer 2, pure: no I/O, no allocation.
 */
#ifndef WEIR_ERROR_PAGE_H
#define WEIR_ERROR_PAGE_H

#include <stdbool.h>

#include "weir/config.h"
#include "weir/http_parser.h"

/* The page's PATH for status in ep (borrowed from the snapshot), or NULL
 * when ep names none. ep NULL: none. */
const char *wr_error_page_find(const struct wr_error_pages *ep, int status);

/* Whether the page route's answer of status is the page: 200 only. A
 * redirect, a 304, any other 2xx or the route's own error is not, and the
 * built-in page goes out instead (one internal redirect at most). */
bool wr_error_page_is_served(int status);

/*
 * Fills *out with the internal request for path (a '/' path, a query may
 * follow; borrowed, must outlive out) made from in: GET, or HEAD for a
 * HEAD; target path; in's host, version and keep-alive; no body; in's
 * fields minus those that would make the page's route answer anything but
 * the whole page (conditionals, Range, If-Range) or expect a body
 * (Content-Length, Transfer-Encoding, Expect) or a tunnel (Upgrade). Field
 * views are in's (borrowed); out is not indexed (lookups scan).
 */
void wr_error_page_request(struct wr_http_request *out, const struct wr_http_request *in,
                           const char *path);

#endif
