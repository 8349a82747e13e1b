/* compress: encoders round-trip through the libraries' decoders, in one
 * piece and in small steps with flushes; Accept-Encoding choices. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <brotli/decode.h>
#include <cmocka.h>
#include <zlib.h>
#include <zstd.h>

#include "weir/compress.h"

/* Text that compresses, with some noise so it is not trivial. */
static char *sample(size_t n)
{
    char *p = malloc(n);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (i % 97 < 80) ? "<p>weir says hello</p>\n"[i % 23] : (char)('a' + (x >> 16) % 26);
    }
    return p;
}

/* Decodes data (coding c) into a new buffer of *n bytes. */
static char *decode(enum wr_coding c, const char *data, size_t len, size_t *n)
{
    size_t cap = 64 << 20;
    char *out = malloc(cap);
    if (c == WR_CODING_GZIP) {
        z_stream z = {0};
        assert_int_equal(inflateInit2(&z, 16 + 15), Z_OK);
        z.next_in = (Bytef *)data;
        z.avail_in = (uInt)len;
        z.next_out = (Bytef *)out;
        z.avail_out = (uInt)cap;
        assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
        *n = z.total_out;
        inflateEnd(&z);
    } else if (c == WR_CODING_BR) {
        *n = cap;
        assert_int_equal(BrotliDecoderDecompress(len, (const uint8_t *)data, n, (uint8_t *)out),
                         BROTLI_DECODER_RESULT_SUCCESS);
    } else {
        size_t k = ZSTD_decompress(out, cap, data, len);
        assert_false(ZSTD_isError(k));
        *n = k;
    }
    return out;
}

static const enum wr_coding ALL[] = {WR_CODING_GZIP, WR_CODING_BR, WR_CODING_ZSTD};

static void test_all_at_once(void **state)
{
    (void)state;
    size_t sizes[] = {0, 1, 1000, 100 * 1024, 3 * 1024 * 1024};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        char *in = sample(sizes[s] ? sizes[s] : 1);
        for (size_t k = 0; k < 3; k++) {
            char *z = NULL;
            size_t zlen = 0, n = 0;
            assert_int_equal(wr_compress_all(ALL[k], k == 1 ? 4 : k == 2 ? 3 : 1, in, sizes[s],
                                             &z, &zlen), 0);
            if (sizes[s] >= 1000)
                assert_true(zlen < sizes[s] / 2);
            char *back = decode(ALL[k], z, zlen, &n);
            assert_int_equal(n, sizes[s]);
            if (n > 0)
                assert_memory_equal(back, in, n);
            free(back);
            free(z);
        }
        free(in);
    }
}

/* Small input steps, a flush after each, a small output buffer: every
 * flush makes what was fed decodable, the end completes the stream. */
static void issue_16_streaming_with_flushes(void **state)
{
    (void)state;
    const size_t total = 300 * 1024;
    char *in = sample(total);
    for (size_t k = 0; k < 3; k++) {
        for (int hinted = 0; hinted < 2; hinted++) {
            struct wr_encoder e;
            assert_int_equal(wr_encoder_init(&e, ALL[k], 3, hinted ? total : 0), 0);
            assert_true(e.mem_bytes > 0);
            size_t cap = total * 2, zlen = 0, off = 0;
            char *z = malloc(cap);
            size_t step = 7000;
            while (off < total) {
                size_t n = total - off < step ? total - off : step;
                enum wr_encode_op op = off + n == total ? WR_ENCODE_FINISH : WR_ENCODE_FLUSH;
                size_t fed = 0;
                int rc;
                do { /* output in pieces of at most 1000 bytes */
                    size_t used, got;
                    rc = wr_encoder_run(&e, in + off + fed, n - fed, &used, z + zlen, 1000, &got,
                                        op);
                    assert_true(rc >= 0);
                    fed += used;
                    zlen += got;
                } while (rc == 0);
                assert_int_equal(fed, n);
                off += n;
                if (op == WR_ENCODE_FLUSH && ALL[k] == WR_CODING_GZIP) {
                    /* what was flushed decodes to everything fed so far */
                    z_stream d = {0};
                    char *tmp = malloc(total);
                    inflateInit2(&d, 16 + 15);
                    d.next_in = (Bytef *)z;
                    d.avail_in = (uInt)zlen;
                    d.next_out = (Bytef *)tmp;
                    d.avail_out = (uInt)total;
                    inflate(&d, Z_SYNC_FLUSH);
                    assert_int_equal(d.total_out, off);
                    inflateEnd(&d);
                    free(tmp);
                }
            }
            wr_encoder_fini(&e);
            wr_encoder_fini(&e); /* twice is harmless */
            size_t n = 0;
            char *back = decode(ALL[k], z, zlen, &n);
            assert_int_equal(n, total);
            assert_memory_equal(back, in, total);
            free(back);
            free(z);
        }
    }
    free(in);
}

/* A small known length gets a small window: less state than unknown. */
static void issue_16_small_bodies_small_state(void **state)
{
    (void)state;
    for (size_t k = 0; k < 3; k++) {
        struct wr_encoder small, unknown;
        assert_int_equal(wr_encoder_init(&small, ALL[k], 3, 2000), 0);
        assert_int_equal(wr_encoder_init(&unknown, ALL[k], 3, 0), 0);
        assert_true(small.mem_bytes < unknown.mem_bytes);
        assert_true(unknown.mem_bytes <= 2u << 20);
        wr_encoder_fini(&small);
        wr_encoder_fini(&unknown);
    }
}

static enum wr_coding choose(const char *ae, unsigned mask)
{
    static const uint8_t prefer[] = {WR_CODING_ZSTD, WR_CODING_BR, WR_CODING_GZIP};
    struct wr_str v = ae ? wr_str_from_cstr(ae) : (struct wr_str){NULL, 0};
    return wr_coding_choose(v, mask, prefer, 3);
}

static void issue_16_negotiation(void **state)
{
    (void)state;
    unsigned all = WR_CODINGS_ALL;
    assert_int_equal(choose(NULL, all), WR_CODING_IDENTITY);        /* no field */
    assert_int_equal(choose("", all), WR_CODING_IDENTITY);          /* empty: identity */
    assert_int_equal(choose("gzip", all), WR_CODING_GZIP);
    assert_int_equal(choose("x-gzip", all), WR_CODING_GZIP);
    assert_int_equal(choose("GZIP, br", all), WR_CODING_BR);        /* preference on a tie */
    assert_int_equal(choose("gzip, deflate, br, zstd", all), WR_CODING_ZSTD);
    assert_int_equal(choose("gzip;q=1, br;q=0.5", all), WR_CODING_GZIP); /* q wins */
    assert_int_equal(choose("br;q=0, gzip;q=0.1", all), WR_CODING_GZIP);
    assert_int_equal(choose("*", all), WR_CODING_ZSTD);
    assert_int_equal(choose("*;q=0.5, zstd;q=0", all), WR_CODING_BR);
    assert_int_equal(choose("deflate", all), WR_CODING_IDENTITY);
    assert_int_equal(choose("gzip;q=0", all), WR_CODING_IDENTITY);
    assert_int_equal(choose("gzip, br", 1u << WR_CODING_GZIP), WR_CODING_GZIP); /* route list */
    assert_int_equal(choose("br", 1u << WR_CODING_GZIP), WR_CODING_IDENTITY);
    /* identity preferred by q */
    assert_int_equal(choose("identity;q=1, gzip;q=0.5", all), WR_CODING_IDENTITY);
    assert_int_equal(choose("identity;q=0.5, gzip", all), WR_CODING_GZIP);
    /* identity refused and nothing else: identity anyway (no 406) */
    assert_int_equal(choose("identity;q=0", all), WR_CODING_IDENTITY);
    assert_int_equal(choose("identity;q=0, *;q=0", all), WR_CODING_IDENTITY);
    assert_int_equal(choose("gzip", 0), WR_CODING_IDENTITY);
}

static void test_names(void **state)
{
    (void)state;
    assert_int_equal(wr_coding_from_name(WR_STR("Zstd")), WR_CODING_ZSTD);
    assert_int_equal(wr_coding_from_name(WR_STR("br")), WR_CODING_BR);
    assert_int_equal(wr_coding_from_name(WR_STR("x-gzip")), WR_CODING_GZIP);
    assert_int_equal(wr_coding_from_name(WR_STR("deflate")), -1);
    assert_true(wr_str_eq(wr_coding_name(WR_CODING_GZIP), WR_STR("gzip")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_at_once),
        cmocka_unit_test(issue_16_streaming_with_flushes),
        cmocka_unit_test(issue_16_small_bodies_small_state),
        cmocka_unit_test(issue_16_negotiation),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
