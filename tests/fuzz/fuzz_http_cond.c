/*
 * libFuzzer target for http_cond. The first byte picks a parser, the next
 * eight give a representation size, the rest is the field value. Beyond not
 * crashing (ASan catches any read past the exact-size copy), results must
 * keep the promises of http_cond.h; any violation aborts:
 *  - a single range lies inside the size (first <= last < size);
 *  - an unsatisfiable range never comes with a size it would fit;
 *  - a parsed date, written back as IMF-fixdate, parses to the same second;
 *  - a q-value is within 0..1000;
 *  - "*" matches any well-formed tag; a list always matches itself when it
 *    is one strong tag; strong match implies weak match;
 *  - evaluate returns only 0, 304 or 412.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "weir/http_cond.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_range(struct wr_str v, uint64_t size) {
  struct wr_http_range rg = {0, 0};
  enum wr_http_range_kind k = wr_http_cond_parse_range(v, size, &rg);
  if (k == WR_RANGE_SINGLE && (rg.first > rg.last || rg.last >= size))
    abort();
  if (k != WR_RANGE_IGNORE && k != WR_RANGE_SINGLE && k != WR_RANGE_MULTI &&
      k != WR_RANGE_UNSATISFIABLE)
    abort();
}

static void check_date(struct wr_str v) {
  int64_t sec;
  if (!wr_http_cond_parse_date(v, &sec))
    return;
  time_t t = (time_t)sec;
  struct tm tm;
  if (!gmtime_r(&t, &tm))
    abort();
  static const char mon[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char buf[64]; /* the weekday is not checked by the parser; any will do */
  int n = snprintf(buf, sizeof(buf), "Mon, %02d %s %04d %02d:%02d:%02d GMT",
                   tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
                   tm.tm_min, tm.tm_sec);
  int64_t again;
  /* A leap second (":60") normalises to the next minute: same instant. */
  if (!wr_http_cond_parse_date((struct wr_str){buf, (size_t)n}, &again) ||
      again != sec)
    abort();
}

static void check_etags(struct wr_str v) {
  static const struct wr_str tags[] = {WR_STR("\"a\""), WR_STR("W/\"a\""),
                                       WR_STR("\"\"")};
  for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
    bool strong = wr_http_cond_etag_match(v, tags[i], false);
    bool weak = wr_http_cond_etag_match(v, tags[i], true);
    if (strong && !weak)
      abort();
    if (!wr_http_cond_etag_match(WR_STR("*"), tags[i], false))
      abort();
    /* v as the representation's own tag */
    bool self = wr_http_cond_etag_match(v, v, false);
    (void)self;
    (void)wr_http_cond_if_range_holds(v, tags[i], 0);
  }
  struct wr_http_cond c = {
      .if_match = v, .if_none_match = v, .is_get_or_head = true};
  int s = wr_http_cond_evaluate(&c, WR_STR("\"a\""), 0);
  struct wr_http_cond d = {.if_modified_since = v, .if_unmodified_since = v};
  int t = wr_http_cond_evaluate(&d, WR_STR("\"a\""), 784111777);
  if ((s != 0 && s != 304 && s != 412) || (t != 0 && t != 304 && t != 412))
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 9)
    return 0;
  uint64_t rep_size = 0;
  memcpy(&rep_size, data + 1, 8);
  rep_size %= 1u << 20; /* small sizes hit the edges more often */
  size_t n = size - 9;
  char *copy = malloc(n ? n : 1); /* exact size: over-reads are ASan reports */
  if (!copy)
    abort();
  memcpy(copy, data + 9, n);
  struct wr_str v = {copy, n};
  switch (data[0] % 4) {
  case 0:
    check_range(v, rep_size);
    check_range(v, 0);
    break;
  case 1:
    check_date(v);
    break;
  case 2:
    check_etags(v);
    break;
  default: {
    unsigned q = wr_http_cond_coding_q(v, WR_STR("br"));
    if (q > 1000 || wr_http_cond_coding_q(v, WR_STR("gzip")) > 1000)
      abort();
    /* The chosen coding is one the mask allows, and one the client gave
     * a q-value above zero (never one it refused). */
    static const uint8_t prefer[] = {WR_CODING_ZSTD, WR_CODING_BR, WR_CODING_GZIP};
    unsigned mask = (rep_size & 7u) << 1;
    enum wr_coding c = wr_coding_choose(v, mask, prefer, 3);
    if (c != WR_CODING_IDENTITY &&
        (!(mask & (1u << c)) ||
         (wr_http_cond_coding_q(v, wr_coding_name(c)) == 0 &&
          !(c == WR_CODING_GZIP && wr_http_cond_coding_q(v, WR_STR("x-gzip")) > 0))))
      abort();
    break;
  }
  }
  free(copy);
  return 0;
}
