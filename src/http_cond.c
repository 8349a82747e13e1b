/*
 * http_cond: entity-tags, HTTP-dates, precondition order, Range and
 * Accept-Encoding, all over borrowed slices (see http_cond.h).
 *
 * Every parser walks its input once with an explicit index and never reads
 * past len; numbers are bounded before they are multiplied.
 */
#include "weir/http_cond.h"

static bool is_ows(char c) { return c == ' ' || c == '\t'; }

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static size_t skip_ows(struct wr_str s, size_t i) {
  while (i < s.len && is_ows(s.ptr[i]))
    i++;
  return i;
}

/* One entity-tag at s[*i]: [W/] DQUOTE *etagc DQUOTE (RFC 9110 §8.8.3).
 * Sets *opaque to the quoted part (quotes included). */
static bool take_etag(struct wr_str s, size_t *i, struct wr_str *opaque,
                      bool *is_weak) {
  size_t k = *i;
  *is_weak = false;
  if (k + 1 < s.len && s.ptr[k] == 'W' && s.ptr[k + 1] == '/') {
    *is_weak = true;
    k += 2;
  }
  if (k >= s.len || s.ptr[k] != '"')
    return false;
  size_t start = k++;
  for (; k < s.len && s.ptr[k] != '"'; k++) {
    unsigned char c = (unsigned char)s.ptr[k];
    if (c < 0x21 || c == 0x7f) /* etagc = %x21 / %x23-7E / obs-text */
      return false;
  }
  if (k >= s.len)
    return false;
  k++;
  *opaque = (struct wr_str){s.ptr + start, k - start};
  *i = k;
  return true;
}

bool wr_http_cond_etag_match(struct wr_str list, struct wr_str etag,
                             bool is_weak) {
  struct wr_str mine;
  bool is_mine_weak;
  size_t j = 0;
  if (!take_etag(etag, &j, &mine, &is_mine_weak))
    return false;
  struct wr_str trimmed = wr_str_trim(list);
  if (trimmed.len == 1 && trimmed.ptr[0] == '*')
    return true;
  size_t i = 0;
  while (i < list.len) {
    i = skip_ows(list, i);
    if (i < list.len && list.ptr[i] == ',') { /* empty list elements (§5.6.1) */
      i++;
      continue;
    }
    if (i >= list.len)
      break;
    struct wr_str theirs;
    bool is_theirs_weak;
    if (!take_etag(list, &i, &theirs, &is_theirs_weak))
      return false;
    bool ok = is_weak || (!is_theirs_weak && !is_mine_weak);
    if (ok && wr_str_eq(theirs, mine))
      return true;
    i = skip_ows(list, i);
    if (i < list.len && list.ptr[i] != ',')
      return false;
  }
  return false;
}

/* ---- HTTP-date (RFC 9110 §5.6.7) -------------------------------------- */

static const char month_names[12][4] = {"Jan", "Feb", "Mar", "Apr",
                                        "May", "Jun", "Jul", "Aug",
                                        "Sep", "Oct", "Nov", "Dec"};
static const char *const day_names[7] = {"Mon", "Tue", "Wed", "Thu",
                                         "Fri", "Sat", "Sun"};
static const char *const long_day_names[7] = {
    "Monday", "Tuesday",  "Wednesday", "Thursday",
    "Friday", "Saturday", "Sunday"};

/* n decimal digits at s[*i] (exactly n); -1 when they are not there. */
static int take_digits(struct wr_str s, size_t *i, int n) {
  int v = 0;
  for (int k = 0; k < n; k++, (*i)++) {
    if (*i >= s.len || !is_digit(s.ptr[*i]))
      return -1;
    v = v * 10 + (s.ptr[*i] - '0');
  }
  return v;
}

static bool take_lit(struct wr_str s, size_t *i, const char *lit) {
  size_t n = strlen(lit);
  if (s.len - *i < n || memcmp(s.ptr + *i, lit, n) != 0)
    return false;
  *i += n;
  return true;
}

static int take_month(struct wr_str s, size_t *i) {
  for (int m = 0; m < 12; m++) {
    if (take_lit(s, i, month_names[m]))
      return m + 1;
  }
  return -1;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static bool make_time(int y, int mon, int d, int h, int mi, int sec,
                      int64_t *out) {
  static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 0 || mon < 1 || d < 1 || d > mdays[mon - 1] || h < 0 || h > 23 ||
      mi < 0 || mi > 59 || sec < 0 || sec > 60)
    return false;
  bool is_leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (mon == 2 && d == 29 && !is_leap)
    return false;
  *out = days_from_civil(y, mon, d) * 86400 + h * 3600 + mi * 60 + sec;
  return true;
}

/* "HH:MM:SS" */
static bool take_clock(struct wr_str s, size_t *i, int *h, int *mi, int *sec) {
  *h = take_digits(s, i, 2);
  if (!take_lit(s, i, ":"))
    return false;
  *mi = take_digits(s, i, 2);
  if (!take_lit(s, i, ":"))
    return false;
  *sec = take_digits(s, i, 2);
  return *h >= 0 && *mi >= 0 && *sec >= 0;
}

/* Sun, 06 Nov 1994 08:49:37 GMT  (after "Sun") */
static bool parse_imf(struct wr_str s, size_t i, int64_t *out) {
  int h, mi, sec;
  if (!take_lit(s, &i, ", "))
    return false;
  int d = take_digits(s, &i, 2);
  if (!take_lit(s, &i, " "))
    return false;
  int mon = take_month(s, &i);
  if (!take_lit(s, &i, " "))
    return false;
  int y = take_digits(s, &i, 4);
  if (!take_lit(s, &i, " ") || !take_clock(s, &i, &h, &mi, &sec) ||
      !take_lit(s, &i, " GMT"))
    return false;
  return i == s.len && d >= 0 && make_time(y, mon, d, h, mi, sec, out);
}

/* Sunday, 06-Nov-94 08:49:37 GMT  (after "Sunday") */
static bool parse_rfc850(struct wr_str s, size_t i, int64_t *out) {
  int h, mi, sec;
  if (!take_lit(s, &i, ", "))
    return false;
  int d = take_digits(s, &i, 2);
  if (!take_lit(s, &i, "-"))
    return false;
  int mon = take_month(s, &i);
  if (!take_lit(s, &i, "-"))
    return false;
  int y = take_digits(s, &i, 2);
  if (!take_lit(s, &i, " ") || !take_clock(s, &i, &h, &mi, &sec) ||
      !take_lit(s, &i, " GMT"))
    return false;
  if (i != s.len || d < 0 || y < 0)
    return false;
  return make_time(y >= 70 ? 1900 + y : 2000 + y, mon, d, h, mi, sec, out);
}

/* Sun Nov  6 08:49:37 1994  (after "Sun") */
static bool parse_asctime(struct wr_str s, size_t i, int64_t *out) {
  int h, mi, sec;
  if (!take_lit(s, &i, " "))
    return false;
  int mon = take_month(s, &i);
  if (!take_lit(s, &i, " "))
    return false;
  int d;
  if (take_lit(s, &i, " "))
    d = take_digits(s, &i, 1);
  else
    d = take_digits(s, &i, 2);
  if (!take_lit(s, &i, " ") || !take_clock(s, &i, &h, &mi, &sec) ||
      !take_lit(s, &i, " "))
    return false;
  int y = take_digits(s, &i, 4);
  return i == s.len && d >= 0 && make_time(y, mon, d, h, mi, sec, out);
}

bool wr_http_cond_parse_date(struct wr_str s, int64_t *out_sec) {
  s = wr_str_trim(s);
  for (int k = 0; k < 7; k++) {
    size_t i = 0;
    if (take_lit(s, &i, long_day_names[k]))
      return parse_rfc850(s, i, out_sec);
    if (take_lit(s, &i, day_names[k])) {
      if (i < s.len && s.ptr[i] == ',')
        return parse_imf(s, i, out_sec);
      return parse_asctime(s, i, out_sec);
    }
  }
  return false;
}

/* ---- preconditions (RFC 9110 §13.2.2) --------------------------------- */

int wr_http_cond_evaluate(const struct wr_http_cond *c, struct wr_str etag,
                          int64_t mtime_sec) {
  int64_t date;
  if (c->if_match.ptr) {
    if (!wr_http_cond_etag_match(c->if_match, etag, false))
      return 412;
  } else if (c->if_unmodified_since.ptr &&
             wr_http_cond_parse_date(c->if_unmodified_since, &date) &&
             mtime_sec > date) {
    return 412;
  }
  if (c->if_none_match.ptr) {
    if (wr_http_cond_etag_match(c->if_none_match, etag, true))
      return c->is_get_or_head ? 304 : 412;
  } else if (c->is_get_or_head && c->if_modified_since.ptr &&
             wr_http_cond_parse_date(c->if_modified_since, &date) &&
             mtime_sec <= date) {
    return 304;
  }
  return 0;
}

bool wr_http_cond_if_range_holds(struct wr_str value, struct wr_str etag,
                                 int64_t mtime_sec) {
  value = wr_str_trim(value);
  if (value.len > 0 && (value.ptr[0] == '"' || value.ptr[0] == 'W')) {
    size_t i = 0;
    struct wr_str tag;
    bool is_weak;
    if (!take_etag(value, &i, &tag, &is_weak) || i != value.len || is_weak)
      return false;
    return wr_http_cond_etag_match(value, etag, false);
  }
  int64_t date;
  return wr_http_cond_parse_date(value, &date) && date == mtime_sec;
}

/* ---- Range (RFC 9110 §14.1) ------------------------------------------- */

/* 1*DIGIT at s[*i], at most 18 digits so it fits; false when absent. */
static bool take_u64(struct wr_str s, size_t *i, uint64_t *out) {
  size_t start = *i;
  uint64_t v = 0;
  while (*i < s.len && is_digit(s.ptr[*i])) {
    if (*i - start >= 18)
      return false;
    v = v * 10 + (uint64_t)(s.ptr[*i] - '0');
    (*i)++;
  }
  *out = v;
  return *i > start;
}

/* One range-spec at s[*i]; *is_suffix for "-n" (then *first is n). */
static bool take_range_spec(struct wr_str s, size_t *i, uint64_t *first,
                            uint64_t *last, bool *has_last, bool *is_suffix) {
  *is_suffix = *i < s.len && s.ptr[*i] == '-';
  *has_last = false;
  if (*is_suffix) {
    (*i)++;
    return take_u64(s, i, first);
  }
  if (!take_u64(s, i, first) || *i >= s.len || s.ptr[*i] != '-')
    return false;
  (*i)++;
  *has_last = take_u64(s, i, last);
  return !*has_last || *last >= *first;
}

enum wr_http_range_kind wr_http_cond_parse_range(struct wr_str value,
                                                 uint64_t size,
                                                 struct wr_http_range *out) {
  size_t i = 0;
  value = wr_str_trim(value);
  if (value.len < 6 ||
      !wr_str_eq_nocase((struct wr_str){value.ptr, 6}, WR_STR("bytes=")))
    return WR_RANGE_IGNORE;
  i = 6;
  unsigned n = 0;
  uint64_t first = 0, last = 0;
  bool has_last = false, is_suffix = false;
  while (i < value.len) {
    i = skip_ows(value, i);
    if (i < value.len && value.ptr[i] == ',') {
      i++;
      continue;
    }
    if (i >= value.len)
      break;
    if (++n > WR_HTTP_COND_MAX_RANGES ||
        !take_range_spec(value, &i, &first, &last, &has_last, &is_suffix))
      return WR_RANGE_IGNORE;
    i = skip_ows(value, i);
    if (i < value.len && value.ptr[i] != ',')
      return WR_RANGE_IGNORE;
  }
  if (n == 0)
    return WR_RANGE_IGNORE;
  if (n > 1)
    return WR_RANGE_MULTI;
  if (is_suffix) {
    if (first == 0 || size == 0)
      return WR_RANGE_UNSATISFIABLE;
    out->first = first >= size ? 0 : size - first;
    out->last = size - 1;
    return WR_RANGE_SINGLE;
  }
  if (first >= size)
    return WR_RANGE_UNSATISFIABLE;
  out->first = first;
  out->last = has_last && last < size ? last : size - 1;
  return WR_RANGE_SINGLE;
}

/* ---- Accept-Encoding (RFC 9110 §12.5.3) ------------------------------- */

/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), as 0..1000. */
static bool parse_qvalue(struct wr_str v, unsigned *q) {
  if (v.len == 0 || (v.ptr[0] != '0' && v.ptr[0] != '1'))
    return false;
  unsigned whole = (unsigned)(v.ptr[0] - '0'), frac = 0, scale = 100;
  if (v.len > 1) {
    if (v.ptr[1] != '.' || v.len > 5)
      return false;
    for (size_t i = 2; i < v.len; i++, scale /= 10) {
      if (!is_digit(v.ptr[i]))
        return false;
      frac += (unsigned)(v.ptr[i] - '0') * scale;
    }
  }
  if (whole == 1 && frac != 0)
    return false;
  *q = whole * 1000 + frac;
  return true;
}

/* Parses one element "coding *( OWS ; OWS param )"; false when malformed. */
static bool parse_coding(struct wr_str elem, struct wr_str *coding,
                         unsigned *q) {
  const char *semi = memchr(elem.ptr, ';', elem.len);
  size_t n = semi ? (size_t)(semi - elem.ptr) : elem.len;
  *coding = wr_str_trim((struct wr_str){elem.ptr, n});
  *q = 1000;
  if (coding->len == 0)
    return false;
  while (semi) {
    size_t at = (size_t)(semi - elem.ptr) + 1;
    struct wr_str rest = {elem.ptr + at, elem.len - at};
    semi = memchr(rest.ptr, ';', rest.len);
    struct wr_str param = wr_str_trim(
        (struct wr_str){rest.ptr, semi ? (size_t)(semi - rest.ptr) : rest.len});
    if (param.len >= 2 && wr_str_lower(param.ptr[0]) == 'q' &&
        param.ptr[1] == '=' &&
        !parse_qvalue((struct wr_str){param.ptr + 2, param.len - 2}, q))
      return false;
  }
  return true;
}

unsigned wr_http_cond_coding_q(struct wr_str ae, struct wr_str coding) {
  unsigned star_q = 0;
  bool has_star = false;
  size_t i = 0;
  while (i < ae.len) {
    const char *comma = memchr(ae.ptr + i, ',', ae.len - i);
    size_t end = comma ? (size_t)(comma - ae.ptr) : ae.len;
    struct wr_str elem = {ae.ptr + i, end - i};
    i = end + 1;
    struct wr_str name;
    unsigned q;
    if (elem.len == 0 || !parse_coding(elem, &name, &q))
      continue;
    if (wr_str_eq_nocase(name, coding))
      return q;
    if (name.len == 1 && name.ptr[0] == '*') {
      has_star = true;
      star_q = q;
    }
  }
  return has_star ? star_q : 0;
}

/* ---- content codings ---------------------------------------------------- */

static const struct wr_str NAMES[WR_N_CODINGS] = {
    [WR_CODING_IDENTITY] = {"identity", 8},
    [WR_CODING_GZIP] = {"gzip", 4},
    [WR_CODING_BR] = {"br", 2},
    [WR_CODING_ZSTD] = {"zstd", 4},
};

struct wr_str wr_coding_name(enum wr_coding c)
{
    return (unsigned)c < WR_N_CODINGS ? NAMES[c] : NAMES[WR_CODING_IDENTITY];
}

int wr_coding_from_name(struct wr_str name)
{
    for (int c = 0; c < WR_N_CODINGS; c++) {
        if (wr_str_eq_nocase(name, NAMES[c]))
            return c;
    }
    return wr_str_eq_nocase(name, WR_STR("x-gzip")) ? WR_CODING_GZIP : -1;
}

/* The q-value ae gives coding c (gzip also under its old name x-gzip). */
static unsigned coding_q(struct wr_str ae, enum wr_coding c)
{
    unsigned q = wr_http_cond_coding_q(ae, NAMES[c]);
    if (c == WR_CODING_GZIP && q == 0)
        q = wr_http_cond_coding_q(ae, WR_STR("x-gzip"));
    return q;
}

enum wr_coding wr_coding_choose(struct wr_str ae, unsigned mask, const uint8_t *prefer,
                                size_t n_prefer)
{
    if (!ae.ptr || mask == 0)
        return WR_CODING_IDENTITY;
    enum wr_coding best = WR_CODING_IDENTITY;
    unsigned best_q = 0;
    for (size_t i = 0; i < n_prefer; i++) {
        enum wr_coding c = prefer[i];
        if (c == WR_CODING_IDENTITY || c >= WR_N_CODINGS || !(mask & (1u << c)))
            continue;
        unsigned q = coding_q(ae, c);
        if (q > best_q) /* strictly higher: an equal q keeps the preferred one */
            best = c, best_q = q;
    }
    if (best == WR_CODING_IDENTITY)
        return best;
    /* Identity competes only when the client ranked it (its entry or "*"):
     * "gzip;q=0.1" still means gzip is welcome. */
    unsigned identity_q = wr_http_cond_coding_q(ae, NAMES[WR_CODING_IDENTITY]);
    return identity_q > best_q ? WR_CODING_IDENTITY : best;
}
