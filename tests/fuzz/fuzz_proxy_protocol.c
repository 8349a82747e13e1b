/*
 * libFuzzer target for proxy_protocol (and cidr): the input, copied into an
 * exact-size heap buffer, is a connection's first bytes. Beyond not
 * crashing, any violation aborts:
 *  - a complete header is no longer than the input and WR_PP_MAX, and every
 *    prefix of it parses as "more" (a header is never found early, and a
 *    caller may consume the bytes of an incomplete one);
 *  - a prefix of an input that parsed is never called invalid (the same
 *    bytes arriving in pieces give the same answer);
 *  - an address is IPv4 or IPv6 with the header's own family;
 *  - the input read as a CIDR, if it parses, has a prefix within range and
 *    matches its own network address.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <string.h>

#include "weir/cidr.h"
#include "weir/proxy_protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_cidr(const uint8_t *data, size_t size)
{
    char text[80];
    if (size >= sizeof(text))
        return;
    memcpy(text, data, size);
    text[size] = '\0';
    struct wr_cidr c;
    if (wr_cidr_parse(text, &c) != 0)
        return;
    if ((c.family == AF_INET && c.bits > 32) || c.bits > 128)
        abort();
    struct sockaddr_storage ss = {0};
    if (c.family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        memcpy(&in->sin_addr, c.addr, 4);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        memcpy(&in6->sin6_addr, c.addr, 16);
    }
    if (!wr_cidr_match(&c, (struct sockaddr *)&ss))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1); /* exact size: over-reads are ASan reports */
    if (!copy)
        abort();
    memcpy(copy, data, size);
    struct wr_pp_result r;
    ssize_t n = wr_pp_parse(copy, size, &r);
    if (n > 0) {
        if ((size_t)n > size || n > WR_PP_MAX)
            abort();
        if (r.has_addr && ((r.src.ss_family != AF_INET && r.src.ss_family != AF_INET6) ||
                           r.src.ss_family != r.dst.ss_family))
            abort();
        for (size_t k = 0; k < (size_t)n; k += 1 + k / 8) {
            struct wr_pp_result tmp;
            if (wr_pp_parse(copy, k, &tmp) != 0)
                abort();
        }
    } else if (n == 0 && size > WR_PP_MAX) {
        abort(); /* an incomplete header never outgrows the limit */
    }
    check_cidr(data, size);
    free(copy);
    return 0;
}
