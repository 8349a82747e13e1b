/*
 * cache_head: a stored response's fields as the HTTP cache keeps them
 * (RFC 9111 §3.1, §3.2): "Name: value\r\n" lines, built from a response's
 * parsed fields, read back, and merged with a 304's.
 *
 * Bytes in, bytes out; the only allocation is the returned head. Layer 0
 * (uses cache_policy's field rules).
 */
#ifndef WEIR_CACHE_HEAD_H
#define WEIR_CACHE_HEAD_H

#include <stdbool.h>
#include <stddef.h>

#include "weir/http_parser.h"
#include "weir/str.h"

/* The value of the first field called name (ASCII case-insensitive), ptr
 * NULL when there is none. */
struct wr_str wr_cache_head_field(const struct wr_http_header *h, size_t n, const char *name);

/* Appends "name: value\r\n" to buf[*len..cap); false (nothing written)
 * when it does not fit. */
bool wr_cache_head_put(char *buf, size_t *len, size_t cap, struct wr_str name, struct wr_str value);

/*
 * The fields of a response to store, in malloc'd memory (*len bytes; the
 * caller frees): all but hop-by-hop fields and those its Connection names,
 * Proxy-* and Age (wr_cache_field_stored), and what is written again for
 * each answer (Date, Content-Length, Transfer-Encoding). NULL when out of
 * memory.
 */
char *wr_cache_head_store(const struct wr_http_header *h, size_t n, size_t *len);

/* Splits a stored head into out[0..cap) (slices of head); returns how
 * many. Lines without a colon are skipped. */
size_t wr_cache_head_split(struct wr_str head, struct wr_http_header *out, size_t cap);

/*
 * RFC 9111 §3.2: the stored head updated by a 304's fields (h, n): each
 * stored field the 304 carries and may replace (wr_cache_304_updates) is
 * replaced by the 304's lines of that name, the rest kept in order; Date
 * is never stored. malloc'd (*len bytes), NULL when out of memory.
 */
char *wr_cache_head_merge_304(struct wr_str stored, const struct wr_http_header *h, size_t n,
                              size_t *len);

#endif
