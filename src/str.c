/*
 * str: slice comparisons and list-token search.
 *
 * Deliberately tiny: anything that needs allocation or I/O lives in the
 * module that needs it.
 */
#include "weir/str.h"

bool wr_str_eq_nocase(struct wr_str a, struct wr_str b)
{
    if (a.len != b.len)
        return false;
    for (size_t i = 0; i < a.len; i++) {
        if (wr_str_lower(a.ptr[i]) != wr_str_lower(b.ptr[i]))
            return false;
    }
    return true;
}

bool wr_str_has_prefix(struct wr_str s, struct wr_str prefix)
{
    return s.len >= prefix.len && memcmp(s.ptr, prefix.ptr, prefix.len) == 0;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

size_t wr_str_format_u64(uint64_t v, char *out)
{
    char digits[WR_STR_U64_MAX];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    for (size_t i = 0; i < n; i++)
        out[i] = digits[n - 1 - i];
    return n;
}

size_t wr_str_format_ipv4(const unsigned char a[4], char *out)
{
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        if (i > 0)
            out[n++] = '.';
        n += wr_str_format_u64(a[i], out + n);
    }
    out[n] = '\0';
    return n;
}

struct wr_str wr_str_trim(struct wr_str s)
{
    while (s.len > 0 && is_ows(s.ptr[0])) {
        s.ptr++;
        s.len--;
    }
    while (s.len > 0 && is_ows(s.ptr[s.len - 1]))
        s.len--;
    return s;
}

bool wr_str_list_has_token(struct wr_str value, struct wr_str token)
{
    size_t start = 0;
    for (size_t i = 0; i <= value.len; i++) {
        if (i < value.len && value.ptr[i] != ',')
            continue;
        struct wr_str elem = wr_str_trim((struct wr_str){value.ptr + start, i - start});
        if (wr_str_eq_nocase(elem, token))
            return true;
        start = i + 1;
    }
    return false;
}
