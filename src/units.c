/*
 * units: the value types of the ini file (CONFIG.md "Values") as pure
 * parsers: durations, sizes, booleans and listen addresses.
 *
 * Responsible for turning one already-trimmed value into a number or an
 * address, strictly: no sign, no inner whitespace, no junk suffix, no silent
 * wrap-around, no duration above WR_UNITS_DURATION_MAX_MS (units.h says
 * why). Deliberately not: range checks for a particular key (config's key
 * table knows those) and name resolution (a listener never waits on DNS).
 *
 * Invariants: nothing here allocates, reads past the terminating NUL or
 * writes *out unless it returns 0, except wr_units_parse_listen, which
 * clears *out first so padding bytes never carry stale data.
 */
#include "weir/units.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

struct unit {
    const char *suffix;
    uint64_t factor;
};

/* A bare number is seconds; "m" is minutes (never months). Suffixes are
 * lower case only, so "10S" or "5M" are rejected rather than guessed. */
static const struct unit duration_units[] = {
    {"", 1000},      {"ms", 1},        {"s", 1000},
    {"m", 60000},    {"h", 3600000},   {"d", 86400000},
};

/* Powers of 1024, either case; a bare number is bytes. */
static const struct unit size_units[] = {
    {"", 1},
    {"k", 1024},          {"K", 1024},
    {"m", 1024 * 1024},   {"M", 1024 * 1024},
    {"g", 1024u * 1024u * 1024u}, {"G", 1024u * 1024u * 1024u},
};

/*
 * Reads the decimal digits at *p into *out and advances *p past them.
 * Returns 0, or -1 when there is no digit or the number overflows uint64_t
 * (then *p is still moved past every digit, so the caller can tell a
 * too-large number from junk).
 */
static int parse_digits(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    bool is_overflow = false;
    while (*s >= '0' && *s <= '9') {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            is_overflow = true;
        v = v * 10 + d;
        s++;
    }
    if (s == *p)
        return -1;
    *p = s;
    *out = v;
    return is_overflow ? -1 : 0;
}

/*
 * NUMBER SUFFIX with SUFFIX from units; the product must be at most max.
 * Fails with errno EINVAL (not NUMBER SUFFIX) or ERANGE (well formed, but
 * above max or beyond uint64_t, however many digits).
 */
static int parse_scaled(const char *text, const struct unit *units, size_t n_units,
                        uint64_t max, uint64_t *out)
{
    errno = EINVAL;
    if (text == NULL)
        return -1;
    const char *p = text;
    uint64_t n = 0;
    bool is_overflow = parse_digits(&p, &n) < 0;
    if (p == text)
        return -1;
    for (size_t i = 0; i < n_units; i++) {
        if (strcmp(p, units[i].suffix) != 0)
            continue;
        /* Checked before multiplying: "99999999999999999d" must fail, not wrap. */
        if (is_overflow || n > max / units[i].factor) {
            errno = ERANGE;
            return -1;
        }
        *out = n * units[i].factor;
        return 0;
    }
    return -1;
}

int wr_units_parse_duration(const char *text, uint64_t *out_ms)
{
    return parse_scaled(text, duration_units, sizeof(duration_units) / sizeof(duration_units[0]),
                        WR_UNITS_DURATION_MAX_MS, out_ms);
}

int wr_units_parse_size(const char *text, uint64_t *out_bytes)
{
    return parse_scaled(text, size_units, sizeof(size_units) / sizeof(size_units[0]), UINT64_MAX,
                        out_bytes);
}

int wr_units_parse_bool(const char *text, bool *out)
{
    static const struct {
        const char *name;
        bool value;
    } words[] = {
        {"on", true}, {"off", false}, {"yes", true}, {"no", false}, {"true", true}, {"false", false},
    };
    if (text == NULL)
        return -1;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcasecmp(text, words[i].name) == 0) {
            *out = words[i].value;
            return 0;
        }
    }
    return -1;
}

/* "1".."65535", digits only (no sign, no leading space). Returns the port or -1. */
static int parse_port(const char *text)
{
    uint64_t port;
    if (parse_digits(&text, &port) < 0 || *text != '\0' || port < 1 || port > 65535)
        return -1;
    return (int)port;
}

static int parse_unix(const char *path, struct wr_listen_addr *out)
{
    struct sockaddr_un *sun = (struct sockaddr_un *)&out->addr;
    size_t len = strlen(path);
    /* Absolute only: a relative socket path would depend on the working
     * directory at start-up. sun_path needs room for the NUL. */
    if (path[0] != '/' || len >= sizeof(sun->sun_path))
        return -1;
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, len + 1);
    out->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
    snprintf(out->text, sizeof(out->text), "unix:%s", path);
    return 0;
}

/* "[v6]:port". */
static int parse_ipv6(const char *text, struct wr_listen_addr *out)
{
    const char *close = strchr(text, ']');
    char host[INET6_ADDRSTRLEN];
    size_t len = close != NULL ? (size_t)(close - text - 1) : 0;
    if (close == NULL || close[1] != ':' || len == 0 || len >= sizeof(host))
        return -1;
    memcpy(host, text + 1, len);
    host[len] = '\0';
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->addr;
    int port = parse_port(close + 2);
    if (port < 0 || inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
        return -1;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    out->addr_len = sizeof(*sin6);
    char canon[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &sin6->sin6_addr, canon, sizeof(canon));
    snprintf(out->text, sizeof(out->text), "[%s]:%d", canon, port);
    return 0;
}

/* "a.b.c.d:port" or "*:port". */
static int parse_ipv4(const char *text, struct wr_listen_addr *out)
{
    const char *colon = strrchr(text, ':');
    char host[INET_ADDRSTRLEN];
    size_t len = colon != NULL ? (size_t)(colon - text) : 0;
    if (colon == NULL || len == 0 || len >= sizeof(host))
        return -1;
    memcpy(host, text, len);
    host[len] = '\0';
    struct sockaddr_in *sin = (struct sockaddr_in *)&out->addr;
    int port = parse_port(colon + 1);
    if (port < 0)
        return -1;
    if (strcmp(host, "*") == 0)
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
        return -1; /* also refuses "01.2.3.4", "1.2.3" and host names */
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    out->addr_len = sizeof(*sin);
    char canon[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sin->sin_addr, canon, sizeof(canon));
    snprintf(out->text, sizeof(out->text), "%s:%d", canon, port);
    return 0;
}

int wr_units_parse_listen(const char *text, struct wr_listen_addr *out)
{
    if (text == NULL)
        return -1;
    struct wr_listen_addr addr;
    memset(&addr, 0, sizeof(addr));
    int rc;
    if (strncmp(text, "unix:", 5) == 0)
        rc = parse_unix(text + 5, &addr);
    else if (text[0] == '[')
        rc = parse_ipv6(text, &addr);
    else
        rc = parse_ipv4(text, &addr);
    memset(out, 0, sizeof(*out));
    if (rc == 0)
        *out = addr;
    return rc;
}
