/*
 * compress: the three content codings weir makes on the fly (gzip with
 * zlib, br with libbrotli, zstd with libzstd) behind one streaming
 * encoder, a one-shot call for whole bodies, and the choice of a coding
 * (the choice of a coding from Accept-Encoding is http_cond's).
 *
 * An encoder is fed input and drains into the caller's buffer; it owns
 * its library state (allocated at init, freed at fini) and nothing else.
 * Sizes: a stream whose length is known ahead gets a window no larger
 * than it needs (small bodies cost small state); the encoder reports its
 * estimated memory so a worker can bound what all of its streams hold.
 *
 * Not here: which responses are compressed and their fields (compress
 * filter, exchange.c), cached copies of files (static). Any thread; an
 * encoder belongs to one. Layer 2: zlib, libbrotlienc, libzstd.
 */
#ifndef WEIR_COMPRESS_H
#define WEIR_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weir/http_cond.h" /* enum wr_coding */
#include "weir/str.h"

/* What a run does after feeding the input. */
enum wr_encode_op {
    WR_ENCODE_MORE,   /* more input follows: output what the coder wants to */
    WR_ENCODE_FLUSH,  /* make everything fed so far decodable (a sync flush) */
    WR_ENCODE_FINISH, /* the input ended: write the stream's end */
};

struct wr_encoder {
    enum wr_coding coding;
    void *state;      /* z_stream *, BrotliEncoderState * or ZSTD_CCtx *; owned */
    size_t mem_bytes; /* estimated memory the state holds */
};

/*
 * Prepares e for coding c at level (clamped to the coding's range) for a
 * body of size_hint bytes (0: unknown, a full window). Returns 0, or -1
 * when out of memory (e holds nothing then; fini is harmless).
 */
int wr_encoder_init(struct wr_encoder *e, enum wr_coding c, int level, uint64_t size_hint);

/*
 * Feeds in[0..in_len) and writes output to out[0..out_cap). *in_used and
 * *out_len say how much of each was used. Returns 1 when op is complete
 * (every input byte taken and, for FLUSH and FINISH, all output written),
 * 0 when out filled first (call again with room: same op, the input not
 * yet used), -1 on a coder error.
 */
int wr_encoder_run(struct wr_encoder *e, const char *in, size_t in_len, size_t *in_used,
                   char *out, size_t out_cap, size_t *out_len, enum wr_encode_op op);

/* Frees e's state. Safe twice and after a failed init. */
void wr_encoder_fini(struct wr_encoder *e);

/*
 * The whole of in[0..len) coded with c at level into a new buffer
 * (*out, malloc'ed, *out_len bytes). Returns 0, or -1 (out of memory or a
 * coder error: nothing allocated).
 */
int wr_compress_all(enum wr_coding c, int level, const char *in, size_t len, char **out,
                    size_t *out_len);

#endif
