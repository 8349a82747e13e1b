/*
 * cache_head: a stored response's field lines (cache_head.h).
 *
 * Invariants: a stored head is a run of "Name: value\r\n" lines, nothing
 * else (no status line, no blank line): what wr_cache_head_store and
 * wr_cache_head_merge_304 write, and what wr_cache_head_split reads.
 */
#include "weir/cache_head.h"

#include <stdlib.h>
#include <string.h>

#include "weir/cache_policy.h"

struct wr_str wr_cache_head_field(const struct wr_http_header *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (wr_str_eq_nocase(h[i].name, wr_str_from_cstr(name)))
            return h[i].value;
    }
    return (struct wr_str){NULL, 0};
}

bool wr_cache_head_put(char *buf, size_t *len, size_t cap, struct wr_str name, struct wr_str value)
{
    if (cap - *len < name.len + value.len + 4)
        return false;
    char *at = buf + *len;
    memcpy(at, name.ptr, name.len);
    memcpy(at + name.len, ": ", 2);
    if (value.len > 0)
        memcpy(at + name.len + 2, value.ptr, value.len);
    memcpy(at + name.len + 2 + value.len, "\r\n", 2);
    *len += name.len + value.len + 4;
    return true;
}

static size_t lines_bytes(const struct wr_http_header *h, size_t n)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += h[i].name.len + h[i].value.len + 4;
    return bytes;
}

/* Fields written again for every answer, never kept. */
static bool is_per_answer(struct wr_str name)
{
    return wr_str_eq_nocase(name, WR_STR("Date")) ||
           wr_str_eq_nocase(name, WR_STR("Content-Length")) ||
           wr_str_eq_nocase(name, WR_STR("Transfer-Encoding"));
}

char *wr_cache_head_store(const struct wr_http_header *h, size_t n, size_t *len)
{
    struct wr_str connection = wr_cache_head_field(h, n, "Connection");
    size_t cap = lines_bytes(h, n) + 1;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    *len = 0;
    for (size_t i = 0; i < n; i++) {
        if (wr_cache_field_stored(h[i].name, connection) && !is_per_answer(h[i].name))
            wr_cache_head_put(buf, len, cap, h[i].name, h[i].value);
    }
    return buf;
}

size_t wr_cache_head_split(struct wr_str head, struct wr_http_header *out, size_t cap)
{
    size_t n = 0, at = 0;
    while (at < head.len && n < cap) {
        const char *line = head.ptr + at;
        const char *end = memchr(line, '\n', head.len - at);
        size_t len = end ? (size_t)(end - line) + 1 : head.len - at;
        size_t text = len >= 2 && line[len - 2] == '\r' && line[len - 1] == '\n' ? len - 2 : len;
        const char *colon = memchr(line, ':', text);
        if (colon) {
            size_t v = (size_t)(colon - line) + 1;
            while (v < text && line[v] == ' ')
                v++;
            out[n].name = (struct wr_str){line, (size_t)(colon - line)};
            out[n].value = (struct wr_str){line + v, text - v};
            n++;
        }
        at += len;
    }
    return n;
}

char *wr_cache_head_merge_304(struct wr_str stored, const struct wr_http_header *h, size_t n,
                              size_t *len)
{
    struct wr_http_header old[WR_HTTP_MAX_HEADERS];
    size_t n_old = wr_cache_head_split(stored, old, WR_HTTP_MAX_HEADERS);
    struct wr_str connection = wr_cache_head_field(h, n, "Connection");
    size_t cap = stored.len + lines_bytes(h, n) + 1;
    char *merged = malloc(cap);
    if (!merged)
        return NULL;
    *len = 0;
    for (size_t i = 0; i < n_old; i++) {
        bool is_replaced = false;
        for (size_t j = 0; j < n && !is_replaced; j++)
            is_replaced = wr_str_eq_nocase(old[i].name, h[j].name) &&
                          wr_cache_304_updates(h[j].name, connection);
        if (!is_replaced)
            wr_cache_head_put(merged, len, cap, old[i].name, old[i].value);
    }
    for (size_t j = 0; j < n; j++) {
        if (wr_cache_304_updates(h[j].name, connection) &&
            wr_cache_field_stored(h[j].name, connection) && !is_per_answer(h[j].name))
            wr_cache_head_put(merged, len, cap, h[j].name, h[j].value);
    }
    return merged;
}
