/* proxy_protocol: v1 and v2 headers, whole, split at every byte, and
 * malformed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "weir/proxy_protocol.h"

static const char SIG[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* Parses h whole, then every prefix: each must be "more" (0) or, for an
 * invalid h, -1 at some point; returns the whole parse. */
static ssize_t parse_split(const char *h, size_t n, struct wr_pp_result *r)
{
    for (size_t k = 0; k < n; k++) {
        struct wr_pp_result tmp;
        ssize_t got = wr_pp_parse(h, k, &tmp);
        if (got < 0)
            return -1;
        assert_int_equal(got, 0); /* never complete before its end */
    }
    return wr_pp_parse(h, n, r);
}

static void assert_v4(const struct sockaddr_storage *ss, const char *addr, unsigned port)
{
    const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
    char text[INET_ADDRSTRLEN];
    assert_int_equal(in->sin_family, AF_INET);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
    assert_string_equal(text, addr);
    assert_int_equal(ntohs(in->sin_port), port);
}

static void issue_19_pp_v1(void **state)
{
    (void)state;
    struct wr_pp_result r;
    const char *h = "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\nGET / HTTP/1.1\r\n";
    size_t hl = strlen("PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n");
    assert_int_equal(parse_split(h, hl, &r), (ssize_t)hl);
    assert_int_equal(wr_pp_parse(h, strlen(h), &r), (ssize_t)hl); /* what follows is not read */
    assert_true(r.has_addr);
    assert_int_equal(r.version, 1);
    assert_v4(&r.src, "192.0.2.1", 56324);
    assert_v4(&r.dst, "198.51.100.7", 443);

    h = "PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n";
    assert_int_equal(parse_split(h, strlen(h), &r), (ssize_t)strlen(h));
    assert_true(r.has_addr);
    assert_int_equal(((struct sockaddr_in6 *)&r.src)->sin6_family, AF_INET6);

    h = "PROXY UNKNOWN\r\n";
    assert_int_equal(parse_split(h, strlen(h), &r), 15);
    assert_false(r.has_addr);
    h = "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
    assert_int_equal(parse_split(h, strlen(h), &r), (ssize_t)strlen(h));
    assert_false(r.has_addr);

    static const char *const bad[] = {
        "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\n",   /* LF alone */
        "PROXY TCP4 192.0.2.1  198.51.100.7 56324 443\r\n", /* two spaces */
        "PROXY TCP4 192.0.2.1 198.51.100.7 56324\r\n",     /* a field missing */
        "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443 9\r\n", /* one too many */
        "PROXY TCP4 2001:db8::1 198.51.100.7 1 2\r\n",     /* family mismatch */
        "PROXY TCP4 192.0.2.256 198.51.100.7 1 2\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.7 65536 2\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.7 01 2\r\n",      /* leading zero */
        "PROXY UDP4 192.0.2.1 198.51.100.7 1 2\r\n",
        "PROXY tcp4 192.0.2.1 198.51.100.7 1 2\r\n",
        "proxy TCP4 192.0.2.1 198.51.100.7 1 2\r\n",
        "PROXY \r\n",
        "GET / HTTP/1.1\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(parse_split(bad[i], strlen(bad[i]), &r), -1);
    /* no CRLF within 107 bytes */
    char longer[200] = "PROXY UNKNOWN ";
    memset(longer + 14, 'a', 150);
    assert_int_equal(wr_pp_parse(longer, 164, &r), -1);
}

/* A v2 header: family fam, addresses and ports as given, tlv bytes after. */
static size_t make_v2(char *out, unsigned char cmd, unsigned char fam, const void *addrs,
                      size_t addr_len, const void *tlv, size_t tlv_len)
{
    memcpy(out, SIG, 12);
    out[12] = (char)cmd;
    out[13] = (char)fam;
    size_t len = addr_len + tlv_len;
    out[14] = (char)(len >> 8);
    out[15] = (char)(len & 0xff);
    if (addr_len)
        memcpy(out + 16, addrs, addr_len);
    if (tlv_len)
        memcpy(out + 16 + addr_len, tlv, tlv_len);
    return 16 + len;
}

static void issue_19_pp_v2(void **state)
{
    (void)state;
    struct wr_pp_result r;
    char h[WR_PP_MAX + 64];
    unsigned char v4[12] = {192, 0, 2, 1, 198, 51, 100, 7, 0xdc, 0x04, 0x01, 0xbb};
    unsigned char tlv[] = {0x01, 0x00, 0x02, 'h', '2', 0x04, 0x00, 0x00}; /* ALPN, NOOP */
    size_t n = make_v2(h, 0x21, 0x11, v4, sizeof(v4), tlv, sizeof(tlv));
    assert_int_equal(parse_split(h, n, &r), (ssize_t)n);
    assert_true(r.has_addr);
    assert_int_equal(r.version, 2);
    assert_v4(&r.src, "192.0.2.1", 56324);
    assert_v4(&r.dst, "198.51.100.7", 443);

    unsigned char v6[36] = {0x20, 0x01, 0x0d, 0xb8};
    v6[15] = 1;
    v6[32] = 0x12;
    v6[33] = 0x34;
    n = make_v2(h, 0x21, 0x21, v6, sizeof(v6), NULL, 0);
    assert_int_equal(parse_split(h, n, &r), (ssize_t)n);
    assert_int_equal(ntohs(((struct sockaddr_in6 *)&r.src)->sin6_port), 0x1234);

    /* LOCAL (a balancer's health check), unspecified and unix: no address */
    n = make_v2(h, 0x20, 0x00, NULL, 0, NULL, 0);
    assert_int_equal(parse_split(h, n, &r), 16);
    assert_false(r.has_addr);
    n = make_v2(h, 0x20, 0x11, v4, sizeof(v4), NULL, 0);
    assert_int_equal(parse_split(h, n, &r), 28);
    assert_false(r.has_addr);
    unsigned char un[216] = {0};
    n = make_v2(h, 0x21, 0x31, un, sizeof(un), NULL, 0);
    assert_int_equal(parse_split(h, n, &r), (ssize_t)n);
    assert_false(r.has_addr);

    /* refused: UDP, another version or command, short addresses, a TLV
     * running past the end, over WR_PP_MAX, a bad signature */
    n = make_v2(h, 0x21, 0x12, v4, sizeof(v4), NULL, 0);
    assert_int_equal(parse_split(h, n, &r), -1);
    n = make_v2(h, 0x11, 0x11, v4, sizeof(v4), NULL, 0);
    assert_int_equal(parse_split(h, n, &r), -1);
    n = make_v2(h, 0x22, 0x11, v4, sizeof(v4), NULL, 0);
    assert_int_equal(parse_split(h, n, &r), -1);
    n = make_v2(h, 0x21, 0x11, v4, 8, NULL, 0);
    assert_int_equal(parse_split(h, n, &r), -1);
    unsigned char bad_tlv[] = {0x01, 0x00, 0x09, 'x'};
    n = make_v2(h, 0x21, 0x11, v4, sizeof(v4), bad_tlv, sizeof(bad_tlv));
    assert_int_equal(parse_split(h, n, &r), -1);
    char big[WR_PP_MAX] = {0};
    n = make_v2(h, 0x21, 0x11, v4, sizeof(v4), big, WR_PP_MAX - 16 - 12 + 1);
    assert_int_equal(wr_pp_parse(h, 16, &r), -1); /* known from the length alone */
    memcpy(h, SIG, 12);
    h[5] = 0x0e;
    assert_int_equal(wr_pp_parse(h, 12, &r), -1);
}

/* What weir writes upstream reads back as the same addresses and ports. */
static void issue_19_pp_write_round_trip(void **state)
{
    (void)state;
    struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons(51000)};
    struct sockaddr_in d4 = {.sin_family = AF_INET, .sin_port = htons(8080)};
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons(1)};
    inet_pton(AF_INET, "192.0.2.9", &s4.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &d4.sin_addr);
    inet_pton(AF_INET6, "2001:db8::9", &s6.sin6_addr);
    char out[WR_PP_OUT_MAX];
    struct wr_pp_result r;
    for (int v = 1; v <= 2; v++) {
        size_t n = wr_pp_write(out, v, (struct sockaddr *)&s4, (struct sockaddr *)&d4, false);
        assert_int_equal(wr_pp_parse(out, n, &r), (ssize_t)n);
        assert_int_equal(r.version, v);
        assert_true(r.has_addr);
        assert_v4(&r.src, "192.0.2.9", 51000);
        assert_v4(&r.dst, "127.0.0.1", 8080);
        /* mixed families: IPv6 with the IPv4 address mapped */
        n = wr_pp_write(out, v, (struct sockaddr *)&s6, (struct sockaddr *)&d4, false);
        assert_int_equal(wr_pp_parse(out, n, &r), (ssize_t)n);
        assert_int_equal(r.src.ss_family, AF_INET6);
        struct sockaddr_in6 *d = (struct sockaddr_in6 *)&r.dst;
        assert_int_equal(d->sin6_addr.s6_addr[10], 0xff);
        assert_int_equal(d->sin6_addr.s6_addr[12], 127);
        assert_int_equal(ntohs(d->sin6_port), 8080);
        /* no client address; a health check */
        n = wr_pp_write(out, v, NULL, (struct sockaddr *)&d4, false);
        assert_int_equal(wr_pp_parse(out, n, &r), (ssize_t)n);
        assert_false(r.has_addr);
        n = wr_pp_write(out, v, NULL, NULL, true);
        assert_int_equal(wr_pp_parse(out, n, &r), (ssize_t)n);
        assert_false(r.has_addr);
        if (v == 2)
            assert_int_equal((unsigned char)out[12], 0x20); /* LOCAL */
    }
    /* the longest v1 fits */
    struct sockaddr_in6 l6 = {.sin6_family = AF_INET6, .sin6_port = htons(65535)};
    memset(&l6.sin6_addr, 0xab, 16);
    size_t n = wr_pp_write(out, 1, (struct sockaddr *)&l6, (struct sockaddr *)&l6, false);
    assert_true(n > 90 && n <= 107);
    assert_int_equal(wr_pp_parse(out, n, &r), (ssize_t)n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issue_19_pp_v1),
        cmocka_unit_test(issue_19_pp_v2),
        cmocka_unit_test(issue_19_pp_write_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
