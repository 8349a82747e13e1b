/*
 * http_cond: the pure half of conditional and partial requests (RFC 9110
 * §8.8, §12.5.3, §13, §14): entity-tag lists, HTTP-dates, the precedence of
 * the four preconditions, If-Range, Range, Accept-Encoding q-values and
 * the content coding to answer with.
 *
 * Bytes in, results out: no I/O, no allocation, no clock. The static action
 * feeds it header values and a file's validators and acts on the answer.
 * Layer 0: fuzzed by tests/fuzz/fuzz_http_cond.c.
 */
#ifndef WEIR_HTTP_COND_H
#define WEIR_HTTP_COND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weir/str.h"

/* Most ranges looked at in one Range field; beyond it Range is ignored. */
#define WR_HTTP_COND_MAX_RANGES 16

/*
 * True when the If-Match/If-None-Match value list ("*" or a comma-separated
 * list of entity-tags) matches etag (a full entity-tag, quotes included).
 * is_weak: weak comparison (§8.8.3.2, W/ ignored on both sides); otherwise
 * strong (neither side weak, same opaque-tag). "*" matches any etag. A
 * malformed list matches nothing.
 */
bool wr_http_cond_etag_match(struct wr_str list, struct wr_str etag,
                             bool is_weak);

/*
 * Parses an HTTP-date (§5.6.7): IMF-fixdate, or the obsolete RFC 850 and
 * asctime forms, which recipients must accept. A two-digit RFC 850 year is
 * 19yy when yy >= 70, else 20yy. Returns true and the Unix time in *out_sec,
 * or false for anything else (including impossible days and times).
 */
bool wr_http_cond_parse_date(struct wr_str s, int64_t *out_sec);

/* The request's precondition fields; ptr NULL when a field is absent. */
struct wr_http_cond {
  struct wr_str if_match;
  struct wr_str if_none_match;
  struct wr_str if_modified_since;
  struct wr_str if_unmodified_since;
  bool is_get_or_head;
};

/*
 * Evaluates the preconditions of c against a representation with this
 * strong etag and last-modified time, in the order of RFC 9110 §13.2.2:
 * If-Match (strong; false -> 412), else If-Unmodified-Since (modified after
 * -> 412); then If-None-Match (weak; true -> 304 for GET/HEAD, else 412),
 * else If-Modified-Since for GET/HEAD (not modified since -> 304). Dates
 * that do not parse are ignored (§13.1.3, §13.1.4). Returns 0 (carry on),
 * 304 or 412.
 */
int wr_http_cond_evaluate(const struct wr_http_cond *c, struct wr_str etag,
                          int64_t mtime_sec);

/*
 * True when If-Range value holds for the representation (§13.1.5): an
 * entity-tag that strongly matches etag, or an HTTP-date equal to
 * mtime_sec. A weak tag or an unparsable value does not hold.
 */
bool wr_http_cond_if_range_holds(struct wr_str value, struct wr_str etag,
                                 int64_t mtime_sec);

enum wr_http_range_kind {
  WR_RANGE_IGNORE, /* no usable Range: answer the whole representation */
  WR_RANGE_SINGLE, /* one satisfiable range in first..last: 206 */
  WR_RANGE_MULTI,  /* 2..WR_HTTP_COND_MAX_RANGES ranges: weir sends 200 */
  WR_RANGE_UNSATISFIABLE, /* one range, none of it inside size: 416 */
};

struct wr_http_range {
  uint64_t first, last; /* inclusive; valid for WR_RANGE_SINGLE only */
};

/*
 * Parses a Range field value (§14.1.2, "bytes=" ranges only) against a
 * representation of size bytes. Syntax errors, another unit, a last-pos
 * before first-pos and more than WR_HTTP_COND_MAX_RANGES ranges give
 * WR_RANGE_IGNORE (§14.2: a recipient may ignore Range). A single range is
 * clamped to the end of the representation; one that starts at or past the
 * end, or a suffix of 0 bytes, is unsatisfiable.
 */
enum wr_http_range_kind wr_http_cond_parse_range(struct wr_str value,
                                                 uint64_t size,
                                                 struct wr_http_range *out);

/*
 * The q-value (0..1000) that the Accept-Encoding value ae gives coding
 * (§12.5.3): its own entry when listed (case-insensitive), else the "*"
 * entry, else 0. Malformed elements are skipped; "q=0" refuses.
 */
unsigned wr_http_cond_coding_q(struct wr_str ae, struct wr_str coding);

/* Content codings, in no particular order; the bit 1u << c is a mask. */
enum wr_coding {
    WR_CODING_IDENTITY = 0,
    WR_CODING_GZIP,
    WR_CODING_BR,
    WR_CODING_ZSTD,
    WR_N_CODINGS
};

#define WR_CODINGS_ALL ((1u << WR_CODING_GZIP) | (1u << WR_CODING_BR) | (1u << WR_CODING_ZSTD))

/* "gzip", "br", "zstd" ("identity" for WR_CODING_IDENTITY). */
struct wr_str wr_coding_name(enum wr_coding c);

/* The coding named name (case-insensitive; "x-gzip" is gzip), or -1. */
int wr_coding_from_name(struct wr_str name);

/*
 * The coding to answer with, given the request's Accept-Encoding value ae
 * (ptr NULL: the field is absent, which means identity, RFC 9110 §12.5.3),
 * the codings the route allows (mask) and the server's order among equal
 * q-values (prefer: n codings, most preferred first). The coding with the
 * highest q-value wins; among equal ones prefer's order; identity only
 * when the client ranked it (its entry, else "*") higher than every
 * allowed coding. Returns WR_CODING_IDENTITY when nothing allowed is
 * acceptable (also when identity itself was refused: weir then sends
 * identity anyway rather than 406, which RFC 9110 lets a server do).
 */
enum wr_coding wr_coding_choose(struct wr_str ae, unsigned mask, const uint8_t *prefer,
                                size_t n_prefer);

#endif
