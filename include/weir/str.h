/*
 * str: non-owning byte slices and the few helpers the request path needs.
 *
 * A struct wr_str never owns its bytes and is never NUL-terminated by
 * contract; it points into a read buffer, the config snapshot or a literal.
 * Layer 0: no I/O, no libevent, no OpenSSL.
 */
#ifndef WEIR_STR_H
#define WEIR_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct wr_str {
    const char *ptr; /* borrowed; NULL only when len == 0 */
    size_t len;
};

/* A slice of a string literal: WR_STR("GET"). */
#define WR_STR(lit) ((struct wr_str){(lit), sizeof(lit) - 1})

/* Returns a slice of the NUL-terminated s (NULL gives the empty slice). */
static inline struct wr_str wr_str_from_cstr(const char *s)
{
    return (struct wr_str){s, s ? strlen(s) : 0};
}

/* True when a and b hold the same bytes. */
static inline bool wr_str_eq(struct wr_str a, struct wr_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* ASCII lower-casing of one byte; other bytes unchanged. */
static inline char wr_str_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
}

/* True when a and b are equal ignoring ASCII case (header names, hosts). */
bool wr_str_eq_nocase(struct wr_str a, struct wr_str b);

/* True when s starts with prefix (exact bytes). */
bool wr_str_has_prefix(struct wr_str s, struct wr_str prefix);

/*
 * True when the comma-separated list in value contains token, ignoring ASCII
 * case and optional whitespace around elements (Connection: keep-alive, close).
 */
bool wr_str_list_has_token(struct wr_str value, struct wr_str token);

/* Longest decimal form of a uint64_t. */
#define WR_STR_U64_MAX 20

/* Writes v in decimal to out (room for WR_STR_U64_MAX bytes, no NUL) and
 * returns the length. No locale, no printf: used on the request path. */
size_t wr_str_format_u64(uint64_t v, char *out);

/* Writes the IPv4 address a (4 bytes, network order) in dotted decimal
 * with a NUL to out (room for 16 bytes: INET_ADDRSTRLEN) and returns the
 * length without the NUL: inet_ntop's text without its sprintf, since
 * every connection's first request formats its peer. */
size_t wr_str_format_ipv4(const unsigned char a[4], char *out);

/* Removes leading and trailing spaces and tabs. */
struct wr_str wr_str_trim(struct wr_str s);

#endif
