/*
 * compress_filter: on-the-fly compression of responses, between a handler
 * and its front end (handler.h's sink calls go through it).
 *
 * Decided once per response, when its head goes out (wr_exchange_respond
 * or _send_head), from the route (compress, compress_types,
 * compress_min_length), the request (Accept-Encoding, Range on a static
 * route, HEAD) and the head (status, Content-Type, Content-Encoding,
 * Cache-Control: no-transform, Content-Range, the length). A response that
 * is compressed gets Content-Encoding, Vary: Accept-Encoding, no
 * Content-Length (chunked on HTTP/1.1, the close on HTTP/1.0, END_STREAM on
 * HTTP/2) and its strong ETag made weak (W/); every other answer of a
 * compressible type on such a route gets Vary too, so caches keep the
 * variants apart. A handler that coded the body itself (a static file's
 * cached copy, see static.c) marks the response (wr_resp.is_coding_decided)
 * and the filter leaves it alone.
 *
 * Bodies: a streamed body (proxy) is coded as the handler sends it, each
 * send flushed so the client sees what the server sent without waiting;
 * a whole response (memory or file, wr_exchange_respond) is read and coded
 * in 32 KiB steps. Backpressure: the filter holds one output buffer
 * (16 KiB); while the front end has not written it, the handler is not
 * told to go on (its send returns false, proceed follows), so memory per
 * compressed response is bounded: the buffers and the encoder state,
 * counted against [compression] max_memory per worker.
 *
 * Worker thread only. Layer 3: exchange, compress, http_resp, metrics.
 */
#ifndef WEIR_COMPRESS_FILTER_H
#define WEIR_COMPRESS_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "weir/compress.h"

struct wr_exchange;
struct wr_metrics_worker;
struct wr_zfilter;

/* A worker's: the encoder memory its responses hold and spare filters. */
struct wr_zfilter_worker {
    struct wr_metrics_worker *metrics; /* borrowed; NULL in tests */
    uint64_t mem_in_use;               /* estimated encoder and buffer bytes */
    struct wr_zfilter *free_list;
    size_t n_free;
};

/* Frees the spare filters (exchanges must all be stopped). */
void wr_zfilter_worker_fini(struct wr_zfilter_worker *zw);

/* Whether content_type (a Content-Type value) is one the route compresses
 * (its compress_types, else the built-in list). */
bool wr_zfilter_is_type(const struct wr_exchange *ex, struct wr_str content_type);

/* The coding ex's client gets among the route's (compress), by its
 * Accept-Encoding and [compression] prefer; identity when none fits. The
 * caller decided the body is worth it (type, length, status). */
enum wr_coding wr_zfilter_negotiate(const struct wr_exchange *ex);

/* The level [compression] sets for coding c. */
int wr_zfilter_level(const struct wr_exchange *ex, enum wr_coding c);

/* ---- exchange.c's hooks ---------------------------------------------- */

/* The head in ex->resp is about to go out (is_respond: with its whole
 * body): decides, rewrites the head, and returns true when the body is
 * coded from now on (ex's filter set). */
bool wr_zfilter_begin(struct wr_exchange *ex, bool is_respond);

/* wr_exchange_respond's body, coded: the head, then the body in steps;
 * the exchange ends (sink end) once the last bytes were handed over. */
void wr_zfilter_respond(struct wr_exchange *ex);

/* wr_exchange_send's contract for a coded body. */
bool wr_zfilter_send(struct wr_exchange *ex, const struct iovec *iov, int n, bool is_final);

/* The handler's end(COMPLETE): the coded stream is finished and the
 * exchange ended, now or once the front end took the last bytes. */
void wr_zfilter_end(struct wr_exchange *ex);

/* The front end wrote what the filter gave it: goes on. Returns true when
 * the handler's own proceed is due now. */
bool wr_zfilter_proceed(struct wr_exchange *ex);

/* Stop: lets go of everything (a file or cache reference included). */
void wr_zfilter_free(struct wr_exchange *ex);

#endif
