/*
 * route_index: candidate routes per first path segment (see route_index.h).
 */
#include "weir/route_index.h"

#include <stdlib.h>
#include <string.h>

#include "weir/config.h"

struct slot {
    const char *key; /* borrowed from a route: NULL for an empty slot */
    size_t len;
    uint32_t *ids;   /* owned: routes filed here, ascending */
    size_t n_ids;
};

struct wr_route_index {
    struct slot *slots; /* n_slots, a power of two, at most half full */
    size_t n_slots, n_keys;
    uint32_t *always;   /* owned: routes tried for every path, ascending */
    size_t n_always;
};

/* Metacharacters outside a class, in PCRE2's default syntax. */
static bool is_meta(char c)
{
    return c != '\0' && strchr(".[]()?*+{}^$|\\", c) != NULL;
}

static bool is_punct(char c)
{
    return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
           (c >= '{' && c <= '~');
}

size_t wr_route_regex_literal(const char *pattern, char *out, size_t cap)
{
    if (pattern[0] != '^' || strchr(pattern, '|') != NULL)
        return 0;
    size_t n = 0;
    const char *p = pattern + 1;
    while (*p != '\0' && n < cap) {
        char lit = p[0];
        size_t step = 1;
        if (lit == '\\') {
            if (!is_punct(p[1]))
                break; /* \d, \x2f, \Q, a back reference: not one literal byte */
            lit = p[1];
            step = 2;
        } else if (is_meta(lit)) {
            break;
        }
        char next = p[step];
        if (next == '?' || next == '*' || next == '{')
            break; /* lit may be absent or bounded: it is not required */
        out[n++] = lit;
        if (next == '+')
            break; /* lit at least once, then who knows */
        p += step;
    }
    return n;
}

/* The first segment of a path: up to the second '/' (the whole path when
 * there is none, or when it does not start with '/', as "*"). */
static struct wr_str first_segment(const char *p, size_t len)
{
    size_t k = 1;
    if (len == 0 || p[0] != '/')
        return (struct wr_str){p, len};
    while (k < len && p[k] != '/')
        k++;
    return (struct wr_str){p, k};
}

/* The segment r is filed under, or {NULL, 0}: r may take other segments. */
static struct wr_str route_key(const struct wr_route *r)
{
    if (r->match_kind == WR_ROUTE_EXACT) /* the path is the pattern */
        return first_segment(r->pattern, r->pattern_len);
    const char *lit = r->match_kind == WR_ROUTE_PREFIX ? r->pattern : r->literal;
    size_t len = r->match_kind == WR_ROUTE_PREFIX ? r->pattern_len : r->literal_len;
    if (len < 2 || lit[0] != '/')
        return (struct wr_str){NULL, 0};
    struct wr_str seg = first_segment(lit, len);
    /* Only a literal that goes past its first segment fixes it. */
    return seg.len < len ? seg : (struct wr_str){NULL, 0};
}

static uint64_t hash(const char *p, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

static struct slot *find_slot(const struct wr_route_index *idx, const char *p, size_t len)
{
    size_t mask = idx->n_slots - 1;
    for (size_t i = (size_t)hash(p, len) & mask;; i = (i + 1) & mask) {
        struct slot *s = &idx->slots[i];
        if (s->key == NULL || (s->len == len && memcmp(s->key, p, len) == 0))
            return s;
    }
}

static int append_id(uint32_t **ids, size_t *n, size_t id)
{
    uint32_t *more = realloc(*ids, (*n + 1) * sizeof(**ids));
    if (more == NULL)
        return -1;
    more[(*n)++] = (uint32_t)id;
    *ids = more;
    return 0;
}

struct wr_route_index *wr_route_index_new(const struct wr_route *routes, size_t n)
{
    struct wr_route_index *idx = calloc(1, sizeof(*idx));
    if (idx == NULL)
        return NULL;
    idx->n_slots = 8;
    while (idx->n_slots < 2 * n)
        idx->n_slots *= 2;
    idx->slots = calloc(idx->n_slots, sizeof(*idx->slots));
    if (idx->slots == NULL) {
        wr_route_index_free(idx);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        struct wr_str key = route_key(&routes[i]);
        int rc;
        if (key.ptr == NULL) {
            rc = append_id(&idx->always, &idx->n_always, i);
        } else {
            struct slot *s = find_slot(idx, key.ptr, key.len);
            if (s->key == NULL) {
                *s = (struct slot){.key = key.ptr, .len = key.len};
                idx->n_keys++;
            }
            rc = append_id(&s->ids, &s->n_ids, i);
        }
        if (rc < 0) {
            wr_route_index_free(idx);
            return NULL;
        }
    }
    return idx;
}

void wr_route_index_free(struct wr_route_index *idx)
{
    if (idx == NULL)
        return;
    for (size_t i = 0; idx->slots != NULL && i < idx->n_slots; i++)
        free(idx->slots[i].ids);
    free(idx->slots);
    free(idx->always);
    free(idx);
}

void wr_route_index_find(const struct wr_route_index *idx, size_t n, struct wr_str path,
                         struct wr_route_cursor *c)
{
    if (idx == NULL) {
        *c = (struct wr_route_cursor){.is_linear = true, .n_linear = n};
        return;
    }
    struct wr_str seg = first_segment(path.ptr, path.len);
    const struct slot *s = seg.len > 0 ? find_slot(idx, seg.ptr, seg.len) : NULL;
    *c = (struct wr_route_cursor){0};
    if (idx->n_always > 0) {
        c->b = idx->always;
        c->b_end = idx->always + idx->n_always;
    }
    if (s != NULL && s->key != NULL) {
        c->a = s->ids;
        c->a_end = s->ids + s->n_ids;
    }
}

size_t wr_route_cursor_next(struct wr_route_cursor *c)
{
    if (c->is_linear)
        return c->linear < c->n_linear ? c->linear++ : SIZE_MAX;
    bool has_a = c->a != c->a_end, has_b = c->b != c->b_end;
    if (has_a && (!has_b || *c->a < *c->b))
        return *c->a++;
    if (has_b)
        return *c->b++;
    return SIZE_MAX;
}

size_t wr_route_index_n_keys(const struct wr_route_index *idx)
{
    return idx->n_keys;
}

size_t wr_route_index_n_always(const struct wr_route_index *idx)
{
    return idx->n_always;
}
