/*
 * h1_framing: what an HTTP/1 response head says about its body and its
 * connection, decided in one place: Content-Length, chunked, or "until the
 * close" (an HTTP/1.0 client and no length), whether the connection may go
 * on, and the serialisation of the status line and those fields.
 *
 * The HTTP/1 front end (conn.c) calls this for every response; handlers
 * never write a status line, Content-Length, Transfer-Encoding or
 * Connection (they describe the body in struct wr_resp: has_length,
 * body_len). Pure: no I/O. Layer 2.
 */
#ifndef WEIR_H1_FRAMING_H
#define WEIR_H1_FRAMING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weir/http_resp.h"

/* How the body of a response is delimited on the wire. */
enum wr_h1_body {
    WR_H1_BODY_NONE = 0, /* no body: 1xx, 204, 304, or an answer to HEAD */
    WR_H1_BODY_LENGTH,   /* Content-Length */
    WR_H1_BODY_CHUNKED,  /* Transfer-Encoding: chunked (HTTP/1.1 client, no length) */
    WR_H1_BODY_CLOSE,    /* the close ends it (HTTP/1.0 client, no length) */
};

struct wr_h1_framing {
    enum wr_h1_body body;
    bool has_length_field; /* write Content-Length: body_len (also for HEAD, RFC 9110 §8.6) */
    bool is_keep_alive;    /* the connection may carry another request */
    bool is_upgrade;       /* 101: "Connection: upgrade" instead (set by the caller) */
};

/*
 * The framing of a response with status to a request (is_head_req: HEAD)
 * from a client speaking HTTP/1.client_minor, when the handler knows the
 * body's length (has_length) or not, and the connection could go on
 * (is_keep_alive). An unknown length is chunked for HTTP/1.1 and ends
 * with the close for HTTP/1.0 (RFC 9112 §6.3: is_keep_alive is then false).
 */
struct wr_h1_framing wr_h1_choose_framing(int status, bool is_head_req, bool has_length,
                                          int client_minor, bool is_keep_alive);

/*
 * Finishes r's head for HTTP/1: the status line ("HTTP/1.1 ..."; RFC 9110
 * §6.2: a server sends its own highest minor version) in r's status room,
 * Content-Length, Transfer-Encoding and the Connection field as f says
 * (keep-alive spelled out for an HTTP/1.0 client), and the blank line. Sets
 * r->is_head_only when no body follows. Sets r->is_overflow when the head
 * does not fit: the caller then answers 500 instead.
 */
void wr_h1_finish_head(struct wr_resp *r, const struct wr_h1_framing *f, int client_minor);

/* Writes "HTTP/1.1 STATUS REASON\r\n" into out (at least
 * WR_RESP_STATUS_ROOM bytes) and returns its length. */
size_t wr_h1_status_line(char *out, int status);

/* A chunk's size line of chunked framing (RFC 9112 §7.1): "<hex n>\r\n"
 * into out (at least 18 bytes). Returns its length. */
size_t wr_h1_chunk_size_line(char *out, uint64_t n);

#endif
