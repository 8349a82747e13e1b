/*
 * Unit tests for compress_filter.c through exchange.c: a fake handler
 * streams a body (or answers whole from memory or a file) to a fake front
 * end that keeps what it is sent and, in turns, holds the buffer (send
 * returns false, proceed later). Checked: the body decodes to the original
 * for each coding, the head is rewritten (Content-Encoding, Vary, weak
 * ETag, no length), the handler is told to go on only once its bytes were
 * taken, the exchange ends once after the last bytes, and the cases that
 * stay identity (type, length, status, Content-Encoding, no-transform,
 * Accept-Encoding, HEAD, the memory budget).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <brotli/decode.h>
#include <cmocka.h>
#include <zlib.h>
#include <zstd.h>

#include "weir/compress_filter.h"
#include "weir/handler.h"

/* ---- the fake front end ------------------------------------------------ */

struct front {
    bool hold_every_other;  /* every second send keeps the buffer */
    int n_sends, n_heads, n_responds, n_ends, end;
    bool owes_proceed, saw_final;
    char *got;
    size_t len, cap;
};

static void fe_respond(struct wr_exchange *ex)
{
    struct front *fe = ex->front;
    fe->n_responds++;
    struct wr_resp *r = ex->resp;
    if (r->body_ref)
        r->body_unref(r->body_ref);
}

static void fe_send_head(struct wr_exchange *ex)
{
    ((struct front *)ex->front)->n_heads++;
}

static bool fe_send(struct wr_exchange *ex, const struct iovec *iov, int n, bool is_final)
{
    struct front *fe = ex->front;
    assert_false(fe->owes_proceed); /* never a send while the last is held */
    fe->n_sends++;
    for (int i = 0; i < n; i++) {
        if (fe->len + iov[i].iov_len > fe->cap) {
            fe->cap = (fe->len + iov[i].iov_len) * 2;
            fe->got = realloc(fe->got, fe->cap);
        }
        memcpy(fe->got + fe->len, iov[i].iov_base, iov[i].iov_len);
        fe->len += iov[i].iov_len;
    }
    fe->saw_final |= is_final;
    fe->owes_proceed = fe->hold_every_other && fe->n_sends % 2 == 0;
    return !fe->owes_proceed;
}

static void fe_body_room(struct wr_exchange *ex)
{
    (void)ex;
}

static void fe_end(struct wr_exchange *ex, int how)
{
    struct front *fe = ex->front;
    fe->n_ends++;
    fe->end = how;
}

static const struct wr_exchange_sink sink = {
    .respond = fe_respond, .send_head = fe_send_head, .send = fe_send,
    .body_room = fe_body_room, .end = fe_end,
};

/* ---- the fake handler: streams `body` in 10 KiB sends ------------------ */

static const char *body;
static size_t body_len, body_sent;
static int n_proceeds;
static enum { STREAM, WHOLE_MEM, WHOLE_FILE } mode;
static int body_fd = -1;

static void send_some(struct wr_exchange *ex)
{
    for (;;) {
        size_t n = body_len - body_sent < 10240 ? body_len - body_sent : 10240;
        struct iovec iov[2] = {{(void *)(body + body_sent), n / 2},
                               {(void *)(body + body_sent + n / 2), n - n / 2}};
        body_sent += n;
        bool is_final = body_sent == body_len;
        bool is_taken = wr_exchange_send(ex, iov, 2, false);
        if (is_final) {
            wr_exchange_end(ex, WR_EXCHANGE_COMPLETE); /* after a send: the end call */
            return;
        }
        if (!is_taken)
            return; /* proceed follows */
    }
}

static int h_start(struct wr_exchange *ex)
{
    struct wr_resp *r = ex->resp;
    if (mode == WHOLE_MEM) {
        r->body = body;
        r->body_len = body_len;
        r->has_length = true;
        wr_exchange_respond(ex);
        return 0;
    }
    if (mode == WHOLE_FILE) {
        r->file_fd = body_fd;
        r->file_off = 0;
        r->body_len = body_len;
        r->has_length = true;
        wr_exchange_respond(ex);
        return 0;
    }
    wr_exchange_send_head(ex);
    send_some(ex);
    return 0;
}

static void h_proceed(struct wr_exchange *ex)
{
    n_proceeds++;
    send_some(ex);
}

static const struct wr_handler handler = {.name = "fake", .start = h_start, .proceed = h_proceed};

/* ---- one exchange -------------------------------------------------------- */

static struct wr_route route;
static struct wr_compression_cfg ccfg;
static struct wr_zfilter_worker zw;
static struct wr_http_request req;
static struct wr_resp resp;
static char head_buf[4096];

static void set_ae(const char *ae)
{
    memset(&req, 0, sizeof(req));
    req.method_id = WR_HTTP_GET;
    if (ae) {
        req.headers[0] = (struct wr_http_header){WR_STR("Accept-Encoding"), wr_str_from_cstr(ae)};
        req.n_headers = 1;
    }
}

static void defaults(void)
{
    memset(&route, 0, sizeof(route));
    route.action = WR_ACTION_PROXY;
    route.compress_mask = WR_CODINGS_ALL;
    route.compress_min_length = 1024;
    ccfg = (struct wr_compression_cfg){.prefer = {WR_CODING_ZSTD, WR_CODING_BR, WR_CODING_GZIP},
                                       .n_prefer = 3, .gzip_level = 1, .brotli_level = 4,
                                       .zstd_level = 3, .max_memory = 64 << 20};
    set_ae("gzip");
    mode = STREAM;
}

/* Runs one exchange: head fields given (lines), the body from `body`,
 * the front end turning until the exchange ended; fe records it. */
static void drive(struct front *fe, const char *fields, int status, bool has_length,
                  bool hold)
{
    memset(fe, 0, sizeof(*fe));
    fe->hold_every_other = hold;
    body_sent = 0;
    n_proceeds = 0;
    struct wr_exchange ex = {.req = &req, .route = &route, .resp = &resp, .zw = &zw,
                             .compression = &ccfg};
    wr_resp_init(&resp, head_buf, sizeof(head_buf));
    resp.status = status;
    resp.head_start = resp.head_len = WR_RESP_STATUS_ROOM;
    wr_resp_raw(&resp, wr_str_from_cstr(fields));
    resp.has_length = has_length;
    resp.body_len = body_len;
    wr_exchange_init(&ex, &handler, NULL, &sink, fe);
    assert_int_equal(wr_exchange_start(&ex), 0);
    for (int turn = 0; turn < 100000 && !ex.is_ended; turn++) {
        assert_true(fe->owes_proceed); /* else nothing would move */
        fe->owes_proceed = false;
        wr_exchange_proceed(&ex);
    }
    assert_true(ex.is_ended);
    wr_exchange_stop(&ex);
    assert_null(ex.zf);
}

static struct wr_str head_value(const char *name)
{
    return wr_resp_field_value(&resp, wr_str_from_cstr(name));
}

/* Decodes fe's bytes (coding c) and compares with body. */
static void assert_decodes(const struct front *fe, enum wr_coding c)
{
    char *out = malloc(body_len + 1);
    size_t n = body_len + 1;
    if (c == WR_CODING_GZIP) {
        z_stream z = {0};
        assert_int_equal(inflateInit2(&z, 16 + 15), Z_OK);
        z.next_in = (Bytef *)fe->got;
        z.avail_in = (uInt)fe->len;
        z.next_out = (Bytef *)out;
        z.avail_out = (uInt)n;
        assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
        n = z.total_out;
        inflateEnd(&z);
    } else if (c == WR_CODING_BR) {
        assert_int_equal(BrotliDecoderDecompress(fe->len, (const uint8_t *)fe->got, &n,
                                                 (uint8_t *)out),
                         BROTLI_DECODER_RESULT_SUCCESS);
    } else {
        n = ZSTD_decompress(out, n, fe->got, fe->len);
        assert_false(ZSTD_isError(n));
    }
    assert_int_equal(n, body_len);
    assert_memory_equal(out, body, n);
    free(out);
}

static char *text(size_t n)
{
    char *p = malloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = "<li>weir compresses this line of text</li>\n"[i % 43] + (char)((i / 4099) % 3);
    return p;
}

static const char *TEXT_FIELDS = "Content-Type: text/html; charset=utf-8\r\nETag: \"abc\"\r\n";

/* Every coding, with and without a front end that holds the buffer. */
static void issue_16_filter_streams_each_coding(void **state)
{
    (void)state;
    defaults();
    body_len = 300 * 1024;
    char *b = text(body_len);
    body = b;
    const char *names[] = {NULL, "gzip", "br", "zstd"};
    for (int c = 1; c <= 3; c++) {
        for (int hold = 0; hold < 2; hold++) {
            set_ae(names[c]);
            struct front fe;
            drive(&fe, TEXT_FIELDS, 200, true, hold);
            assert_true(wr_str_eq(head_value("Content-Encoding"), wr_str_from_cstr(names[c])));
            assert_true(wr_str_eq(head_value("Vary"), WR_STR("Accept-Encoding")));
            assert_true(wr_str_eq(head_value("ETag"), WR_STR("W/\"abc\"")));
            assert_false(resp.has_length);
            assert_int_equal(fe.n_ends, 1);
            assert_int_equal(fe.end, WR_EXCHANGE_COMPLETE);
            assert_true(fe.saw_final);
            assert_true(fe.len < body_len / 4);
            assert_decodes(&fe, (enum wr_coding)c);
            if (hold)
                assert_true(n_proceeds > 0);
            free(fe.got);
        }
    }
    assert_int_equal(zw.mem_in_use, 0); /* every filter gave its memory back */
    free(b);
}

/* A whole response from memory and from a file is read and coded by the
 * filter itself; the front end sees head, sends and one end. */
static void issue_16_filter_whole_responses(void **state)
{
    (void)state;
    defaults();
    body_len = 200 * 1024 + 7;
    char *b = text(body_len);
    body = b;
    set_ae("br, gzip");
    for (int hold = 0; hold < 2; hold++) {
        struct front fe;
        mode = WHOLE_MEM;
        drive(&fe, TEXT_FIELDS, 200, true, hold);
        assert_int_equal(fe.n_responds, 0);
        assert_int_equal(fe.n_heads, 1);
        assert_int_equal(fe.n_ends, 1);
        assert_decodes(&fe, WR_CODING_BR);
        free(fe.got);

        body_fd = memfd_create("body", 0);
        assert_true(write(body_fd, b, body_len) == (ssize_t)body_len);
        mode = WHOLE_FILE;
        drive(&fe, TEXT_FIELDS, 200, true, hold); /* the filter closes body_fd */
        assert_int_equal(fe.n_ends, 1);
        assert_decodes(&fe, WR_CODING_BR);
        free(fe.got);
    }
    free(b);
}

/* What stays identity: the head and body go through untouched. */
static void issue_16_filter_leaves_alone(void **state)
{
    (void)state;
    defaults();
    body_len = 50 * 1024;
    char *b = text(body_len);
    body = b;
    struct {
        const char *fields, *ae;
        int status;
        bool has_vary;
    } cases[] = {
        {"Content-Type: image/png\r\n", "gzip", 200, false},
        {"Content-Type: text/html\r\nContent-Encoding: gzip\r\n", "gzip", 200, false},
        {"Content-Type: text/html\r\nCache-Control: public, no-transform\r\n", "gzip", 200,
         false},
        {"Content-Type: text/html\r\nContent-Range: bytes 0-9/100\r\n", "gzip", 206, false},
        {"Content-Type: text/html\r\n", NULL, 200, true},     /* no Accept-Encoding */
        {"Content-Type: text/html\r\n", "deflate", 200, true}, /* nothing weir makes */
        {"Content-Type: text/html\r\n", "gzip;q=0", 200, true},
        {"Content-Type: text/html\r\nVary: Accept-Encoding\r\n", "identity", 200, true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        set_ae(cases[i].ae);
        struct front fe;
        drive(&fe, cases[i].fields, cases[i].status, true, false);
        if (!strstr(cases[i].fields, "Content-Encoding"))
            assert_null(head_value("Content-Encoding").ptr);
        assert_int_equal(head_value("Vary").ptr != NULL, cases[i].has_vary);
        assert_int_equal(fe.len, body_len);
        assert_memory_equal(fe.got, body, body_len);
        assert_true(resp.has_length);
        free(fe.got);
    }
    /* too short (known length under compress_min_length): no Vary either */
    size_t saved = body_len;
    body_len = 1000;
    set_ae("gzip");
    struct front fe;
    drive(&fe, TEXT_FIELDS, 200, true, false);
    assert_null(head_value("Content-Encoding").ptr);
    assert_null(head_value("Vary").ptr);
    free(fe.got);
    /* compress = off */
    body_len = saved;
    route.compress_mask = 0;
    drive(&fe, TEXT_FIELDS, 200, true, false);
    assert_null(head_value("Vary").ptr);
    free(fe.got);
    free(b);
}

/* Over [compression] max_memory: identity until streams finish. */
static void issue_16_filter_memory_budget(void **state)
{
    (void)state;
    defaults();
    ccfg.max_memory = 1024; /* less than one encoder */
    body_len = 64 * 1024;
    char *b = text(body_len);
    body = b;
    struct front fe;
    drive(&fe, TEXT_FIELDS, 200, false, false);
    assert_null(head_value("Content-Encoding").ptr);
    assert_int_equal(fe.len, body_len);
    free(fe.got);
    free(b);
}

/* HEAD: the fields GET would get, no length, no body to code. */
static void issue_16_filter_head(void **state)
{
    (void)state;
    defaults();
    req.method_id = WR_HTTP_HEAD;
    body_len = 64 * 1024;
    char *b = text(body_len);
    body = b;
    mode = WHOLE_MEM;
    struct front fe;
    drive(&fe, TEXT_FIELDS, 200, true, false);
    assert_int_equal(fe.n_responds, 1);
    assert_true(wr_str_eq(head_value("Content-Encoding"), WR_STR("gzip")));
    assert_true(wr_str_eq(head_value("ETag"), WR_STR("W/\"abc\"")));
    assert_true(resp.is_length_unknown);
    free(fe.got);
    free(b);
}

/* Media type patterns: exact, type/ *, type/ *+suffix, parameters ignored. */
static void issue_16_filter_types(void **state)
{
    (void)state;
    defaults();
    struct wr_exchange ex = {.route = &route};
    assert_true(wr_zfilter_is_type(&ex, WR_STR("text/plain")));
    assert_true(wr_zfilter_is_type(&ex, WR_STR("Text/HTML; charset=utf-8")));
    assert_true(wr_zfilter_is_type(&ex, WR_STR("application/ld+json")));
    assert_true(wr_zfilter_is_type(&ex, WR_STR("image/svg+xml")));
    assert_false(wr_zfilter_is_type(&ex, WR_STR("image/png")));
    assert_false(wr_zfilter_is_type(&ex, WR_STR("font/woff2")));
    assert_false(wr_zfilter_is_type(&ex, (struct wr_str){NULL, 0}));
    char *types[] = {"application/json", "text/*"};
    route.compress_types = types;
    route.n_compress_types = 2;
    assert_true(wr_zfilter_is_type(&ex, WR_STR("application/json")));
    assert_true(wr_zfilter_is_type(&ex, WR_STR("text/css")));
    assert_false(wr_zfilter_is_type(&ex, WR_STR("application/xml")));
    route.compress_types = NULL;
    route.n_compress_types = 0;
}

static int teardown(void **state)
{
    (void)state;
    wr_zfilter_worker_fini(&zw);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issue_16_filter_streams_each_coding),
        cmocka_unit_test(issue_16_filter_whole_responses),
        cmocka_unit_test(issue_16_filter_leaves_alone),
        cmocka_unit_test(issue_16_filter_memory_budget),
        cmocka_unit_test(issue_16_filter_head),
        cmocka_unit_test(issue_16_filter_types),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
