/*
 * cidr: address ranges ("10.0.0.0/8", "2001:db8::/32", a single address)
 * and whether an address falls in a list of them.
 *
 * Bytes in, results out: no I/O, no allocation (a list is the caller's
 * array). IPv4 ranges also match IPv4-mapped IPv6 addresses
 * (::ffff:10.1.2.3), so a dual-stack listener sees the same client either
 * way. Layer 0.
 */
#ifndef WEIR_CIDR_H
#define WEIR_CIDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct wr_cidr {
    uint8_t family;   /* AF_INET or AF_INET6 */
    uint8_t bits;     /* prefix length: 0..32 or 0..128 */
    uint8_t addr[16]; /* network address (4 bytes used for IPv4), host bits zero */
    uint32_t v4_net, v4_mask; /* AF_INET: addr and the prefix's mask, host order,
                                 so that a rule is one AND and one compare */
};

/* Parses "ADDR/BITS" or "ADDR" (all bits). Returns 0, or -1 when text is
 * not a numeric IPv4 or IPv6 address with a prefix in range. Host bits set
 * in ADDR are cleared (10.1.2.3/8 is 10.0.0.0/8). */
int wr_cidr_parse(const char *text, struct wr_cidr *out);

/* Whether sa (AF_INET or AF_INET6; anything else: false) is in c. */
bool wr_cidr_match(const struct wr_cidr *c, const struct sockaddr *sa);

/* Whether sa is in any of the n ranges. */
bool wr_cidr_match_any(const struct wr_cidr *list, size_t n, const struct sockaddr *sa);

/* One allow or deny rule of an access list (a route's, the admin
 * endpoint's), in the order the file gives them. */
struct wr_access_rule {
    struct wr_cidr range;
    bool is_all;   /* "all": every client, unix-socket ones included */
    bool is_allow;
};

/*
 * Whether the client at addr (its text: "192.0.2.7", "2001:db8::1"; any
 * other text, e.g. a unix-socket client's, has no address) may in: the
 * first rule that matches decides; when none does, the client is let in
 * unless the list has an allow rule (a list that allows some lets only
 * those in). An empty list lets everyone in.
 */
bool wr_access_allows(const struct wr_access_rule *rules, size_t n, const char *addr);

#endif
