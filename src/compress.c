/*
 * compress: gzip, br and zstd encoders behind one interface (see
 * compress.h).
 *
 * Windows: a body of known length gets the smallest window that covers it
 * (a 2 KiB JSON answer does not pay for a 32 KiB deflate window, nor zstd
 * for 2 MiB); an unknown length gets a moderate one (deflate 32 KiB,
 * brotli 512 KiB, zstd 512 KiB), which keeps a streaming encoder's state
 * near 0.3-1.2 MiB instead of the libraries' largest defaults.
 */
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_estimateCCtxSize_usingCCtxParams */
#include "weir/compress.h"

#include <brotli/encode.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>


/* ---- sizes ------------------------------------------------------------- */

/* The smallest power of two >= n, as log2, within [lo, hi]. */
static int fit_log(uint64_t n, int lo, int hi)
{
    int b = lo;
    while (b < hi && (1ull << b) < n)
        b++;
    return b;
}

static int clamp(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* ---- gzip (zlib) ------------------------------------------------------- */

static int gzip_init(struct wr_encoder *e, int level, uint64_t hint)
{
    z_stream *z = calloc(1, sizeof(*z));
    if (!z)
        return -1;
    int wbits = hint ? fit_log(hint, 9, 15) : 15;
    int mem_level = clamp(wbits - 7, 1, 8);
    /* windowBits + 16: a gzip wrapper (RFC 1952) rather than zlib's. */
    if (deflateInit2(z, clamp(level, 1, 9), Z_DEFLATED, wbits + 16, mem_level,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        free(z);
        return -1;
    }
    e->state = z;
    /* zlib.h's figure for deflate: (1 << (windowBits + 2)) + (1 << (memLevel + 9)). */
    e->mem_bytes = sizeof(*z) + (1u << (wbits + 2)) + (1u << (mem_level + 9)) + 6 * 1024;
    return 0;
}

static int gzip_run(struct wr_encoder *e, const char *in, size_t in_len, size_t *in_used,
                    char *out, size_t out_cap, size_t *out_len, enum wr_encode_op op)
{
    z_stream *z = e->state;
    /* zlib counts in uInt: at most 1 GiB per call (the rest comes next). */
    size_t feed = in_len > (1u << 30) ? (1u << 30) : in_len;
    size_t room = out_cap > (1u << 30) ? (1u << 30) : out_cap;
    int flush = feed < in_len || op == WR_ENCODE_MORE ? Z_NO_FLUSH
                : op == WR_ENCODE_FLUSH                ? Z_SYNC_FLUSH
                                                       : Z_FINISH;
    z->next_in = (Bytef *)in;
    z->avail_in = (uInt)feed;
    z->next_out = (Bytef *)out;
    z->avail_out = (uInt)room;
    int rc = deflate(z, flush); /* as far as the input and the room go */
    *in_used = feed - z->avail_in;
    *out_len = room - z->avail_out;
    if (rc == Z_STREAM_ERROR)
        return -1;
    if (*in_used < in_len)
        return 0;
    if (op == WR_ENCODE_FINISH)
        return rc == Z_STREAM_END ? 1 : 0;
    /* A flush that filled the buffer exactly may owe more (zlib.h). */
    return op == WR_ENCODE_FLUSH && z->avail_out == 0 ? 0 : 1;
}

static void gzip_fini(struct wr_encoder *e)
{
    deflateEnd(e->state);
    free(e->state);
}

/* ---- br (libbrotli) ---------------------------------------------------- */

static int br_init(struct wr_encoder *e, int level, uint64_t hint)
{
    BrotliEncoderState *b = BrotliEncoderCreateInstance(NULL, NULL, NULL);
    if (!b)
        return -1;
    int lgwin = hint ? fit_log(hint, BROTLI_MIN_WINDOW_BITS, 22) : 19;
    BrotliEncoderSetParameter(b, BROTLI_PARAM_QUALITY, (uint32_t)clamp(level, 0, 11));
    BrotliEncoderSetParameter(b, BROTLI_PARAM_LGWIN, (uint32_t)lgwin);
    if (hint)
        BrotliEncoderSetParameter(b, BROTLI_PARAM_SIZE_HINT,
                                  hint > (1u << 30) ? (1u << 30) : (uint32_t)hint);
    e->state = b;
    /* Ring buffer (the window, twice at most) plus the fast qualities'
     * hash tables (at most ~1 MiB; qualities 0-4 use far less). */
    e->mem_bytes = (2u << lgwin) + (level > 4 ? (1u << 20) : (1u << 17));
    return 0;
}

static int br_run(struct wr_encoder *e, const char *in, size_t in_len, size_t *in_used,
                  char *out, size_t out_cap, size_t *out_len, enum wr_encode_op op)
{
    BrotliEncoderOperation bop = op == WR_ENCODE_FINISH  ? BROTLI_OPERATION_FINISH
                                 : op == WR_ENCODE_FLUSH ? BROTLI_OPERATION_FLUSH
                                                         : BROTLI_OPERATION_PROCESS;
    size_t avail_in = in_len, avail_out = out_cap;
    const uint8_t *next_in = (const uint8_t *)in;
    uint8_t *next_out = (uint8_t *)out;
    int done = 0;
    for (;;) {
        if (!BrotliEncoderCompressStream(e->state, bop, &avail_in, &next_in, &avail_out,
                                         &next_out, NULL))
            return -1;
        if (op == WR_ENCODE_FINISH)
            done = BrotliEncoderIsFinished(e->state);
        else if (op == WR_ENCODE_FLUSH)
            done = avail_in == 0 && !BrotliEncoderHasMoreOutput(e->state);
        else
            done = avail_in == 0; /* output it holds comes out on a later call */
        if (done || avail_out == 0)
            break;
    }
    *in_used = in_len - avail_in;
    *out_len = out_cap - avail_out;
    return done;
}

static void br_fini(struct wr_encoder *e)
{
    BrotliEncoderDestroyInstance(e->state);
}

/* ---- zstd -------------------------------------------------------------- */

static int zstd_init(struct wr_encoder *e, int level, uint64_t hint)
{
    ZSTD_CCtx *z = ZSTD_createCCtx();
    if (!z)
        return -1;
    ZSTD_CCtx_setParameter(z, ZSTD_c_compressionLevel, clamp(level, 1, 19));
    /* A known length lets zstd size its window itself; otherwise 512 KiB. */
    if (hint)
        ZSTD_CCtx_setPledgedSrcSize(z, hint);
    else
        ZSTD_CCtx_setParameter(z, ZSTD_c_windowLog, 19);
    e->state = z;
    ZSTD_compressionParameters cp = ZSTD_getCParams(clamp(level, 1, 19), hint ? hint : 0, 0);
    if (!hint && cp.windowLog > 19)
        cp.windowLog = 19;
    e->mem_bytes = ZSTD_estimateCStreamSize_usingCParams(cp);
    return 0;
}

static int zstd_run(struct wr_encoder *e, const char *in, size_t in_len, size_t *in_used,
                    char *out, size_t out_cap, size_t *out_len, enum wr_encode_op op)
{
    ZSTD_EndDirective d = op == WR_ENCODE_FINISH ? ZSTD_e_end
                          : op == WR_ENCODE_FLUSH ? ZSTD_e_flush
                                                  : ZSTD_e_continue;
    ZSTD_inBuffer ib = {in, in_len, 0};
    ZSTD_outBuffer ob = {out, out_cap, 0};
    size_t left = 0;
    for (;;) {
        left = ZSTD_compressStream2(e->state, &ob, &ib, d);
        if (ZSTD_isError(left))
            return -1;
        if (ob.pos == ob.size)
            break;
        if (d == ZSTD_e_continue ? ib.pos == ib.size : left == 0)
            break;
    }
    *in_used = ib.pos;
    *out_len = ob.pos;
    if (ib.pos < ib.size)
        return 0;
    return d == ZSTD_e_continue || left == 0 ? 1 : 0;
}

static void zstd_fini(struct wr_encoder *e)
{
    ZSTD_freeCCtx(e->state);
}

/* ---- the interface ----------------------------------------------------- */

int wr_encoder_init(struct wr_encoder *e, enum wr_coding c, int level, uint64_t size_hint)
{
    *e = (struct wr_encoder){.coding = c};
    int rc = -1;
    switch (c) {
    case WR_CODING_GZIP:
        rc = gzip_init(e, level, size_hint);
        break;
    case WR_CODING_BR:
        rc = br_init(e, level, size_hint);
        break;
    case WR_CODING_ZSTD:
        rc = zstd_init(e, level, size_hint);
        break;
    default:
        errno = EINVAL;
        return -1;
    }
    if (rc < 0) {
        *e = (struct wr_encoder){.coding = WR_CODING_IDENTITY};
        errno = ENOMEM;
    }
    return rc;
}

int wr_encoder_run(struct wr_encoder *e, const char *in, size_t in_len, size_t *in_used,
                   char *out, size_t out_cap, size_t *out_len, enum wr_encode_op op)
{
    *in_used = *out_len = 0;
    if (!e->state)
        return -1;
    int rc;
    switch (e->coding) {
    case WR_CODING_GZIP:
        rc = gzip_run(e, in, in_len, in_used, out, out_cap, out_len, op);
        break;
    case WR_CODING_BR:
        rc = br_run(e, in, in_len, in_used, out, out_cap, out_len, op);
        break;
    case WR_CODING_ZSTD:
        rc = zstd_run(e, in, in_len, in_used, out, out_cap, out_len, op);
        break;
    default:
        return -1;
    }
    return rc;
}

void wr_encoder_fini(struct wr_encoder *e)
{
    if (!e->state)
        return;
    switch (e->coding) {
    case WR_CODING_GZIP:
        gzip_fini(e);
        break;
    case WR_CODING_BR:
        br_fini(e);
        break;
    case WR_CODING_ZSTD:
        zstd_fini(e);
        break;
    default:
        break;
    }
    e->state = NULL;
}

int wr_compress_all(enum wr_coding c, int level, const char *in, size_t len, char **out,
                    size_t *out_len)
{
    struct wr_encoder e;
    if (wr_encoder_init(&e, c, level, len ? len : 1) < 0)
        return -1;
    size_t cap = len / 2 + 1024, n = 0, used_total = 0;
    char *buf = malloc(cap);
    int rc = buf ? 0 : -1;
    while (rc == 0) {
        size_t used, got;
        rc = wr_encoder_run(&e, in + used_total, len - used_total, &used, buf + n, cap - n, &got,
                            WR_ENCODE_FINISH);
        used_total += used;
        n += got;
        if (rc != 0)
            break;
        char *more = realloc(buf, cap * 2);
        if (!more) {
            rc = -1;
            break;
        }
        buf = more;
        cap *= 2;
    }
    wr_encoder_fini(&e);
    if (rc < 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = n;
    return 0;
}
