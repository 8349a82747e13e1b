/*
 * cidr: address ranges and matching (see cidr.h).
 */
#include "weir/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

int wr_cidr_parse(const char *text, struct wr_cidr *out)
{
    char addr[64];
    const char *slash = strchr(text, '/');
    size_t n = slash ? (size_t)(slash - text) : strlen(text);
    if (n == 0 || n >= sizeof(addr))
        return -1;
    memcpy(addr, text, n);
    addr[n] = '\0';
    struct wr_cidr c = {0};
    unsigned max;
    if (inet_pton(AF_INET, addr, c.addr) == 1) {
        c.family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, addr, c.addr) == 1) {
        c.family = AF_INET6;
        max = 128;
    } else {
        return -1;
    }
    unsigned bits = max;
    if (slash) {
        const char *p = slash + 1;
        if (*p == '\0' || strlen(p) > 3)
            return -1;
        bits = 0;
        for (; *p; p++) {
            if (*p < '0' || *p > '9')
                return -1;
            bits = bits * 10 + (unsigned)(*p - '0');
        }
        if (bits > max)
            return -1;
    }
    c.bits = (uint8_t)bits;
    for (unsigned i = bits; i < max; i++)
        c.addr[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
    if (c.family == AF_INET) {
        c.v4_mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
        c.v4_net = (uint32_t)c.addr[0] << 24 | (uint32_t)c.addr[1] << 16 |
                   (uint32_t)c.addr[2] << 8 | c.addr[3];
    }
    *out = c;
    return 0;
}

/* Whether the first bits of a and b agree. */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

bool wr_cidr_match(const struct wr_cidr *c, const struct sockaddr *sa)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return c->family == AF_INET && prefix_equal((const uint8_t *)&in->sin_addr, c->addr, c->bits);
    }
    if (sa->sa_family != AF_INET6)
        return false;
    const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    if (c->family == AF_INET6)
        return prefix_equal(a, c->addr, c->bits);
    return memcmp(a, mapped, 12) == 0 && prefix_equal(a + 12, c->addr, c->bits);
}

bool wr_access_allows(const struct wr_access_rule *rules, size_t n, const char *addr)
{
    if (n == 0)
        return true; /* most routes: no address parsed */
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, addr, &in->sin_addr) == 1)
        ss.ss_family = AF_INET;
    else if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1)
        ss.ss_family = AF_INET6;
    bool has_allow = false;
    if (ss.ss_family == AF_INET) {
        /* The usual case, per request: one AND and one compare per rule
         * (an IPv4 client matches IPv4 rules only, as wr_cidr_match). */
        uint32_t a = ntohl(in->sin_addr.s_addr);
        for (size_t i = 0; i < n; i++) {
            const struct wr_access_rule *r = &rules[i];
            has_allow |= r->is_allow;
            if (r->is_all ||
                (r->range.family == AF_INET && (a & r->range.v4_mask) == r->range.v4_net))
                return r->is_allow;
        }
        return !has_allow;
    }
    for (size_t i = 0; i < n; i++) {
        const struct wr_access_rule *r = &rules[i];
        has_allow |= r->is_allow;
        if (r->is_all || (ss.ss_family != 0 && wr_cidr_match(&r->range, (struct sockaddr *)&ss)))
            return r->is_allow;
    }
    return !has_allow;
}

bool wr_cidr_match_any(const struct wr_cidr *list, size_t n, const struct sockaddr *sa)
{
    for (size_t i = 0; i < n; i++) {
        if (wr_cidr_match(&list[i], sa))
            return true;
    }
    return false;
}
