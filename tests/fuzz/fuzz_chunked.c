/*
 * Fuzz target for wr_http_chunked_parse: any bytes as a chunked body,
 * decoded whole, byte by byte, and in pieces whose sizes come from a
 * generator seeded by the input. Each call sees an exact-size heap copy of
 * the bytes not yet consumed, as a connection would hand them over. All ways
 * must agree on the outcome, the bytes consumed and the data (STYLE §10).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "weir/http_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct decoded {
    ssize_t last;    /* last return value */
    size_t consumed; /* bytes consumed in total */
    bool is_done;
    char *data; /* concatenated data runs, size bytes at most */
    size_t data_len;
};

static void check(bool ok)
{
    if (!ok)
        abort();
}

/* Next piece size: 1 for step 1, input-seeded 1..64 for step 0, else step. */
static size_t next_step(size_t step, uint32_t *seed)
{
    if (step != 0)
        return step;
    *seed = *seed * 1103515245u + 12345u;
    return 1 + (*seed >> 16) % 64;
}

static void decode(const uint8_t *in, size_t size, size_t step, struct decoded *out)
{
    struct wr_http_chunked c;
    wr_http_chunked_init(&c);
    uint32_t seed = (uint32_t)size * 2654435761u + (size ? in[0] : 0);
    size_t arrived = 0;
    *out = (struct decoded){.last = WR_AGAIN, .data = malloc(size ? size : 1)};
    check(out->data != NULL);
    while (!c.is_done) {
        if (out->consumed == arrived) {
            if (arrived == size)
                break;
            const size_t n = next_step(step, &seed);
            arrived = n < size - arrived ? arrived + n : size;
        }
        const size_t n = arrived - out->consumed;
        char *win = malloc(n);
        check(win != NULL);
        memcpy(win, in + out->consumed, n);
        struct wr_str d;
        out->last = wr_http_chunked_parse(&c, win, n, &d);
        if (out->last < 0) {
            check(out->last == WR_ERROR && c.status == 400);
            free(win);
            break;
        }
        check(out->last > 0 && (size_t)out->last <= n);
        check(d.len == 0 || (d.ptr >= win && d.ptr + d.len <= win + out->last));
        if (d.len > 0)
            memcpy(out->data + out->data_len, d.ptr, d.len);
        out->data_len += d.len;
        out->consumed += (size_t)out->last;
        free(win);
    }
    out->is_done = c.is_done;
    check(c.chunk_left <= INT64_MAX && c.trailer_bytes <= WR_HTTP_TRAILER_MAX);
}

static void check_same(const struct decoded *a, const struct decoded *b)
{
    check((a->last == WR_ERROR) == (b->last == WR_ERROR) && a->is_done == b->is_done);
    check(a->consumed == b->consumed || a->last == WR_ERROR);
    check(a->data_len == b->data_len);
    const size_t n = a->data_len < b->data_len ? a->data_len : b->data_len;
    check(n == 0 || memcmp(a->data, b->data, n) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct decoded whole, bytes, pieces;
    decode(data, size, size ? size : 1, &whole);
    decode(data, size, 1, &bytes);
    decode(data, size, 0, &pieces);
    check_same(&whole, &bytes);
    check_same(&whole, &pieces);
    free(whole.data);
    free(bytes.data);
    free(pieces.data);
    return 0;
}
