/*
 * proxy_protocol: PROXY protocol v1 and v2 headers (see proxy_protocol.h;
 * the format is HAProxy's proxy-protocol.txt).
 */
#include "weir/proxy_protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static const char V2_SIG[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
#define V1_MAX 107

/* A decimal port 0..65535 without leading zeros (but "0"). */
static bool parse_port(const char *s, size_t n, unsigned *out)
{
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return false;
    *out = v;
    return true;
}

/* An address of family af in its canonical text (inet_pton's grammar). */
static bool parse_addr(int af, const char *s, size_t n, void *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return inet_pton(af, buf, out) == 1;
}

static void set_sockaddr(struct sockaddr_storage *ss, int af, const void *addr, unsigned port)
{
    memset(ss, 0, sizeof(*ss));
    if (af == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        memcpy(&in->sin_addr, addr, 4);
        in->sin_port = htons((uint16_t)port);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        memcpy(&in6->sin6_addr, addr, 16);
        in6->sin6_port = htons((uint16_t)port);
    }
}

/* v1: "PROXY " then "TCP4"/"TCP6", source and destination addresses and
 * ports separated by single spaces, or "UNKNOWN" and anything; then CRLF,
 * within 107 bytes. */
static ssize_t parse_v1(const char *p, size_t n, struct wr_pp_result *out)
{
    static const char prefix[] = "PROXY ";
    size_t k = n < 6 ? n : 6;
    if (memcmp(p, prefix, k) != 0)
        return -1;
    size_t len = 0; /* up to the CR */
    for (;;) {
        if (len >= n)
            return n >= V1_MAX ? -1 : 0;
        if (len + 2 > V1_MAX)
            return -1;
        char ch = p[len];
        if (ch == '\r')
            break;
        if (ch == '\n' || ch == '\0')
            return -1;
        len++;
    }
    if (len + 1 >= n)
        return 0; /* the LF is still to come */
    if (p[len + 1] != '\n' || len < 6)
        return -1;
    *out = (struct wr_pp_result){.version = 1};
    const char *f[5];
    size_t fl[5], nf = 0, start = 6;
    for (size_t i = start; i <= len; i++) {
        if (i < len && p[i] != ' ')
            continue;
        if (nf == 5 || i == start) {
            /* UNKNOWN may carry anything after it */
            if (nf >= 1 && fl[0] == 7 && memcmp(f[0], "UNKNOWN", 7) == 0)
                return (ssize_t)(len + 2);
            return -1;
        }
        f[nf] = p + start;
        fl[nf++] = i - start;
        start = i + 1;
    }
    if (nf >= 1 && fl[0] == 7 && memcmp(f[0], "UNKNOWN", 7) == 0)
        return (ssize_t)(len + 2);
    if (nf != 5 || fl[0] != 4 || memcmp(f[0], "TCP", 3) != 0 ||
        (f[0][3] != '4' && f[0][3] != '6'))
        return -1;
    int af = f[0][3] == '4' ? AF_INET : AF_INET6;
    unsigned char src[16], dst[16];
    unsigned sport, dport;
    if (!parse_addr(af, f[1], fl[1], src) || !parse_addr(af, f[2], fl[2], dst) ||
        !parse_port(f[3], fl[3], &sport) || !parse_port(f[4], fl[4], &dport))
        return -1;
    set_sockaddr(&out->src, af, src, sport);
    set_sockaddr(&out->dst, af, dst, dport);
    out->has_addr = true;
    return (ssize_t)(len + 2);
}

/* v2: signature, ver_cmd (0x20 LOCAL, 0x21 PROXY), fam (0x11 TCP4,
 * 0x21 TCP6, 0x31 unix stream, 0x00 unspecified; UDP refused), length,
 * addresses, TLVs (skipped: their length is inside the header's). */
static ssize_t parse_v2(const unsigned char *p, size_t n, struct wr_pp_result *out)
{
    if (n < 16)
        return 0;
    unsigned ver_cmd = p[12], fam = p[13];
    size_t len = ((size_t)p[14] << 8) | p[15];
    if ((ver_cmd >> 4) != 2 || (ver_cmd & 0x0f) > 1)
        return -1;
    if (16 + len > WR_PP_MAX)
        return -1;
    bool is_local = (ver_cmd & 0x0f) == 0;
    size_t need = fam == 0x11 ? 12 : fam == 0x21 ? 36 : fam == 0x31 ? 216 : 0;
    if (!is_local && fam != 0x00 && fam != 0x11 && fam != 0x21 && fam != 0x31)
        return -1; /* UDP (0x12, 0x22, 0x32) or an unknown family */
    if (!is_local && len < need)
        return -1;
    if (n < 16 + len)
        return 0;
    *out = (struct wr_pp_result){.version = 2};
    if (is_local || fam == 0x00 || fam == 0x31)
        return (ssize_t)(16 + len); /* the connection's own peer stays the client */
    const unsigned char *a = p + 16;
    if (fam == 0x11) {
        set_sockaddr(&out->src, AF_INET, a, ((unsigned)a[8] << 8) | a[9]);
        set_sockaddr(&out->dst, AF_INET, a + 4, ((unsigned)a[10] << 8) | a[11]);
    } else {
        set_sockaddr(&out->src, AF_INET6, a, ((unsigned)a[32] << 8) | a[33]);
        set_sockaddr(&out->dst, AF_INET6, a + 16, ((unsigned)a[34] << 8) | a[35]);
    }
    /* TLVs: each type, 16-bit length, value; they must fill the rest exactly. */
    size_t at = need;
    while (at < len) {
        if (len - at < 3)
            return -1;
        size_t tl = ((size_t)a[at + 1] << 8) | a[at + 2];
        if (len - at - 3 < tl)
            return -1;
        at += 3 + tl;
    }
    out->has_addr = true;
    return (ssize_t)(16 + len);
}

ssize_t wr_pp_parse(const char *p, size_t n, struct wr_pp_result *out)
{
    if (n == 0)
        return 0;
    if (p[0] == 'P')
        return parse_v1(p, n, out);
    size_t k = n < 12 ? n : 12;
    if (memcmp(p, V2_SIG, k) != 0)
        return -1;
    return parse_v2((const unsigned char *)p, n, out);
}

/* ---- writing ------------------------------------------------------------ */

/* addr's 16 bytes as IPv6 (IPv4 mapped) and its port. */
static void as_v6(const struct sockaddr *sa, unsigned char out[16], unsigned *port)
{
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        memcpy(out, &in6->sin6_addr, 16);
        *port = ntohs(in6->sin6_port);
        return;
    }
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    memcpy(out + 12, &in->sin_addr, 4);
    *port = ntohs(in->sin_port);
}

static bool is_inet(const struct sockaddr *sa)
{
    return sa && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6);
}

size_t wr_pp_write(char *out, int version, const struct sockaddr *src,
                   const struct sockaddr *dst, bool is_local)
{
    bool has_addr = !is_local && is_inet(src) && is_inet(dst);
    bool is_v4 = has_addr && src->sa_family == AF_INET && dst->sa_family == AF_INET;
    if (version == 1) {
        if (!has_addr) {
            memcpy(out, "PROXY UNKNOWN\r\n", 15);
            return 15;
        }
        char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
        unsigned sport, dport;
        if (is_v4) {
            const struct sockaddr_in *s4 = (const struct sockaddr_in *)src;
            const struct sockaddr_in *d4 = (const struct sockaddr_in *)dst;
            inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
            inet_ntop(AF_INET, &d4->sin_addr, b, sizeof(b));
            sport = ntohs(s4->sin_port);
            dport = ntohs(d4->sin_port);
        } else {
            unsigned char s6[16], d6[16];
            as_v6(src, s6, &sport);
            as_v6(dst, d6, &dport);
            inet_ntop(AF_INET6, s6, a, sizeof(a));
            inet_ntop(AF_INET6, d6, b, sizeof(b));
        }
        int n = snprintf(out, WR_PP_OUT_MAX, "PROXY %s %s %s %u %u\r\n", is_v4 ? "TCP4" : "TCP6",
                         a, b, sport, dport);
        return n > 0 && n < WR_PP_OUT_MAX ? (size_t)n : 0;
    }
    unsigned char *o = (unsigned char *)out;
    memcpy(o, V2_SIG, 12);
    o[12] = is_local ? 0x20 : 0x21;
    size_t len = 0;
    if (!has_addr) {
        o[13] = 0x00;
    } else if (is_v4) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)src;
        const struct sockaddr_in *d4 = (const struct sockaddr_in *)dst;
        o[13] = 0x11;
        memcpy(o + 16, &s4->sin_addr, 4);
        memcpy(o + 20, &d4->sin_addr, 4);
        memcpy(o + 24, &s4->sin_port, 2); /* both in network order already */
        memcpy(o + 26, &d4->sin_port, 2);
        len = 12;
    } else {
        unsigned sport, dport;
        o[13] = 0x21;
        as_v6(src, o + 16, &sport);
        as_v6(dst, o + 32, &dport);
        o[48] = (unsigned char)(sport >> 8);
        o[49] = (unsigned char)sport;
        o[50] = (unsigned char)(dport >> 8);
        o[51] = (unsigned char)dport;
        len = 36;
    }
    o[14] = 0;
    o[15] = (unsigned char)len;
    return 16 + len;
}
