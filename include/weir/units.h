/*
 * units: pure parsers for the value types of the ini file (CONFIG.md
 * "Values"): durations, sizes, booleans and listen addresses.
 *
 * Each takes a NUL-terminated value already stripped of surrounding
 * whitespace and comments. Layer 0: no I/O, callable from any thread.
 */
#ifndef WEIR_UNITS_H
#define WEIR_UNITS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * The longest duration any key takes: 365 days (31,536,000,000 ms). It
 * covers every sane use, the longest being `expires` (a year is the
 * customary max-age of immutable assets, and RFC 2616 §14.21 told servers
 * not to go further), and it keeps the arithmetic far from any wrap:
 * 35 bits in ms, 45 in us, 55 in ns, so `now + timeout` on a monotonic
 * clock, a timeval, or a conversion to microseconds never overflows. (It
 * is more than 2^31 ms, so a duration never goes through an int.)
 */
#define WR_UNITS_DURATION_MAX_MS (365ull * 24 * 60 * 60 * 1000)

/*
 * "250ms", "10s", "5m", "1h", "2d"; a bare number is seconds; at most
 * WR_UNITS_DURATION_MAX_MS. Returns 0 and sets *out_ms, or -1 with errno
 * EINVAL (empty input, a bad suffix, a sign) or ERANGE (a well-formed value
 * above the maximum, however many digits it has).
 */
int wr_units_parse_duration(const char *text, uint64_t *out_ms);

/*
 * "512", "16k", "10m", "1g" (powers of 1024, either case); a bare number is
 * bytes. Returns 0 and sets *out_bytes, or -1 with errno EINVAL or ERANGE
 * (beyond uint64_t) as for durations.
 */
int wr_units_parse_size(const char *text, uint64_t *out_bytes);

/* on|off, yes|no, true|false (case-insensitive). Returns 0 or -1. */
int wr_units_parse_bool(const char *text, bool *out);

struct wr_listen_addr {
    struct sockaddr_storage addr; /* AF_INET, AF_INET6 or AF_UNIX */
    socklen_t addr_len;
    char text[128]; /* canonical form for logs: "127.0.0.1:8080", "[::1]:80",
                       "unix:/run/weir.sock" */
};

/*
 * "IPv4:port", "[IPv6]:port", "*:port" (all IPv4 addresses) or "unix:/path"
 * (absolute, shorter than sun_path). Numeric addresses only: a listener
 * never depends on DNS. Port 1..65535. Returns 0 or -1.
 */
int wr_units_parse_listen(const char *text, struct wr_listen_addr *out);

#endif
