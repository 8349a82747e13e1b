/*
 * redirect: the two handlers that answer with nothing but a head and a
 * fixed body: `return = STATUS BODY` and `redirect = STATUS TARGET`.
 * One-shot: each completes its response inside start. Layer 3.
 */
#ifndef WEIR_REDIRECT_H
#define WEIR_REDIRECT_H

#include "weir/handler.h"

/* `return`: the configured body as text/plain (Content-Type only with a
 * body), with the route's status. */
extern const struct wr_handler wr_return_handler;

/* `redirect`: Location from the expanded template, and the status's small
 * HTML page. */
extern const struct wr_handler wr_redirect_handler;

#endif
