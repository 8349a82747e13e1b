/*
 * demo: the pure part of weir-demo-app (see demo.h).
 *
 * Everything that touches user bytes lives here so it can be tested
 * without sockets: the team name in a query, form or JSON body comes back
 * in JSON and HTML, so both escapers must hold for any byte sequence
 * (invalid UTF-8, NUL, quotes, markup). The parsers are strict and bounded:
 * JSON nesting is capped, every loop walks its input once.
 *
 * Deliberately not here: storage, HTTP, the event loop (demo_app.c).
 */
#include "demo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- output buffer ------------------------------------------------------- */

void wr_demo_out_init(struct wr_demo_out *out, size_t max_len)
{
    *out = (struct wr_demo_out){.max_len = max_len};
}

void wr_demo_out_fini(struct wr_demo_out *out)
{
    free(out->data);
    *out = (struct wr_demo_out){0};
}

void wr_demo_out_reset(struct wr_demo_out *out)
{
    out->len = 0;
    out->is_failed = false;
    if (out->data)
        out->data[0] = '\0';
}

void wr_demo_out_add(struct wr_demo_out *out, const void *p, size_t len)
{
    if (out->is_failed)
        return;
    if (len > out->max_len - out->len) {
        out->is_failed = true;
        return;
    }
    if (out->len + len + 1 > out->cap) {
        size_t cap = out->cap ? out->cap : 256;
        while (cap < out->len + len + 1)
            cap *= 2;
        char *more = realloc(out->data, cap);
        if (!more) {
            out->is_failed = true;
            return;
        }
        out->data = more;
        out->cap = cap;
    }
    memcpy(out->data + out->len, p, len);
    out->len += len;
    out->data[out->len] = '\0';
}

void wr_demo_out_str(struct wr_demo_out *out, const char *s)
{
    wr_demo_out_add(out, s, strlen(s));
}

void wr_demo_out_u64(struct wr_demo_out *out, uint64_t v)
{
    char digits[24];
    int n = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)v);
    wr_demo_out_add(out, digits, (size_t)n);
}

/* ---- UTF-8 --------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0], cp, min;
    size_t len;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2, cp = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, cp = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static void add_utf8(struct wr_demo_out *out, unsigned cp)
{
    unsigned char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp, n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xc0 | cp >> 6), b[1] = (unsigned char)(0x80 | (cp & 0x3f)), n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xe0 | cp >> 12);
        b[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        b[2] = (unsigned char)(0x80 | (cp & 0x3f)), n = 3;
    } else {
        b[0] = (unsigned char)(0xf0 | cp >> 18);
        b[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
        b[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        b[3] = (unsigned char)(0x80 | (cp & 0x3f)), n = 4;
    }
    wr_demo_out_add(out, b, n);
}

static bool is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

bool wr_demo_is_clean_text(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_len(p + i, len - i);
        if (n == 0 || (n == 1 && is_control(p[i])))
            return false;
        i += n;
    }
    return true;
}

/* ---- escaping ------------------------------------------------------------ */

static const char HEX[] = "0123456789abcdef";

/* The JSON escape for an ASCII byte, or NULL when it goes out as is.
 * '<', '>' and '&' are escaped so that "</script>" can never appear. */
static const char *json_escape_ascii(unsigned char c, char buf[7])
{
    switch (c) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    case '\b': return "\\b";
    case '\f': return "\\f";
    default: break;
    }
    if (!is_control(c) && c != '<' && c != '>' && c != '&')
        return NULL;
    memcpy(buf, "\\u00", 4);
    buf[4] = HEX[c >> 4], buf[5] = HEX[c & 15], buf[6] = '\0';
    return buf;
}

static void json_quoted(struct wr_demo_out *out, const char *s, size_t len, bool is_bytes)
{
    const unsigned char *p = (const unsigned char *)s;
    wr_demo_out_add(out, "\"", 1);
    size_t run = 0; /* start of the bytes not yet written */
    for (size_t i = 0; i < len;) {
        char buf[7];
        const char *esc = NULL;
        size_t n = 1;
        if (p[i] < 0x80) {
            esc = json_escape_ascii(p[i], buf);
        } else if (is_bytes) {
            memcpy(buf, "\\u00", 4);
            buf[4] = HEX[p[i] >> 4], buf[5] = HEX[p[i] & 15], buf[6] = '\0';
            esc = buf;
        } else {
            n = utf8_len(p + i, len - i);
            esc = n ? NULL : "\\ufffd";
            n = n ? n : 1;
        }
        if (esc) {
            wr_demo_out_add(out, s + run, i - run);
            wr_demo_out_str(out, esc);
            run = i + n;
        }
        i += n;
    }
    wr_demo_out_add(out, s + run, len - run);
    wr_demo_out_add(out, "\"", 1);
}

void wr_demo_json_str(struct wr_demo_out *out, const char *s, size_t len)
{
    json_quoted(out, s, len, false);
}

void wr_demo_json_bytes(struct wr_demo_out *out, const char *s, size_t len)
{
    json_quoted(out, s, len, true);
}

static const char *html_escape_ascii(unsigned char c)
{
    switch (c) {
    case '&': return "&amp;";
    case '<': return "&lt;";
    case '>': return "&gt;";
    case '"': return "&quot;";
    case '\'': return "&#39;";
    case '\t': case '\n': case '\r': return NULL;
    default: return is_control(c) ? "\xef\xbf\xbd" : NULL;
    }
}

void wr_demo_html(struct wr_demo_out *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t run = 0;
    for (size_t i = 0; i < len;) {
        const char *esc;
        size_t n = 1;
        if (p[i] < 0x80) {
            esc = html_escape_ascii(p[i]);
        } else {
            n = utf8_len(p + i, len - i);
            esc = n ? NULL : "\xef\xbf\xbd"; /* U+FFFD */
            n = n ? n : 1;
        }
        if (esc) {
            wr_demo_out_add(out, s + run, i - run);
            wr_demo_out_str(out, esc);
            run = i + n;
        }
        i += n;
    }
    wr_demo_out_add(out, s + run, len - run);
}

/* Percent-encodes everything but RFC 3986 unreserved characters, for a
 * query value in a link. The result needs no further HTML escaping. */
static void url_component(struct wr_demo_out *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            wr_demo_out_add(out, &c, 1);
        } else {
            char esc[3] = {'%', "0123456789ABCDEF"[c >> 4], "0123456789ABCDEF"[c & 15]};
            wr_demo_out_add(out, esc, 3);
        }
    }
}

/* ---- form fields --------------------------------------------------------- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes one form byte at s[*i] (advancing *i); -1 on a bad %-escape. */
static int form_byte(const char *s, size_t len, size_t *i)
{
    char c = s[*i];
    if (c == '+') {
        *i += 1;
        return ' ';
    }
    if (c != '%') {
        *i += 1;
        return (unsigned char)c;
    }
    if (len - *i < 3)
        return -1;
    int hi = hex_value(s[*i + 1]), lo = hex_value(s[*i + 2]);
    if (hi < 0 || lo < 0)
        return -1;
    *i += 3;
    return hi << 4 | lo;
}

/* 1 when the encoded key equals name once decoded, 0 when not, -1 when the
 * key is malformed. Compares while decoding: nothing to allocate. */
static int form_key_is(const char *key, size_t len, const char *name)
{
    size_t i = 0, j = 0;
    int is_equal = 1;
    while (i < len) {
        int b = form_byte(key, len, &i);
        if (b < 0)
            return -1;
        if (is_equal && (name[j] == '\0' || (unsigned char)name[j] != b))
            is_equal = 0;
        else if (is_equal)
            j++;
    }
    return is_equal && name[j] == '\0';
}

enum wr_demo_field wr_demo_form_field(const char *form, size_t len, const char *name,
                                      struct wr_demo_out *value)
{
    for (size_t at = 0; at < len;) {
        const char *amp = memchr(form + at, '&', len - at);
        size_t end = amp ? (size_t)(amp - form) : len;
        const char *eq = memchr(form + at, '=', end - at);
        size_t key_end = eq ? (size_t)(eq - form) : end;
        int is_it = form_key_is(form + at, key_end - at, name);
        if (is_it < 0)
            return WR_DEMO_FIELD_MALFORMED;
        if (is_it) {
            wr_demo_out_reset(value);
            wr_demo_out_add(value, "", 0); /* data is "" even for "name=" */
            for (size_t i = eq ? key_end + 1 : end; i < end;) {
                int b = form_byte(form, end, &i);
                if (b < 0)
                    return WR_DEMO_FIELD_MALFORMED;
                unsigned char c = (unsigned char)b;
                wr_demo_out_add(value, &c, 1);
            }
            return WR_DEMO_FIELD_FOUND;
        }
        at = end + 1;
    }
    return WR_DEMO_FIELD_ABSENT;
}

/* ---- JSON ---------------------------------------------------------------- */

#define JSON_MAX_DEPTH 32

struct json {
    const unsigned char *p, *end;
    unsigned depth;
};

static void json_ws(struct json *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static bool json_eat(struct json *j, char c)
{
    if (j->p < j->end && *j->p == (unsigned char)c) {
        j->p++;
        return true;
    }
    return false;
}

static int json_hex4(struct json *j)
{
    if (j->end - j->p < 4)
        return -1;
    int v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hex_value((char)j->p[k]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    j->p += 4;
    return v;
}

/* After "\u": one code point, a surrogate pair combined (RFC 8259 §7);
 * a lone surrogate cannot be UTF-8, so it is an error. */
static bool json_unicode(struct json *j, struct wr_demo_out *out)
{
    int cp = json_hex4(j);
    if (cp < 0 || (cp >= 0xdc00 && cp <= 0xdfff))
        return false;
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (!json_eat(j, '\\') || !json_eat(j, 'u'))
            return false;
        int lo = json_hex4(j);
        if (lo < 0xdc00 || lo > 0xdfff)
            return false;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    if (out)
        add_utf8(out, (unsigned)cp);
    return true;
}

static bool json_escape(struct json *j, struct wr_demo_out *out)
{
    if (j->p >= j->end)
        return false;
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *at = memchr(from, *j->p, sizeof(from) - 1);
    if (*j->p == 'u') {
        j->p++;
        return json_unicode(j, out);
    }
    if (!at)
        return false;
    j->p++;
    if (out)
        wr_demo_out_add(out, &to[at - from], 1);
    return true;
}

/* A string at j->p (which must be '"'), decoded into out when out is set. */
static bool json_string(struct json *j, struct wr_demo_out *out)
{
    if (!json_eat(j, '"'))
        return false;
    while (j->p < j->end) {
        unsigned char c = *j->p;
        if (c == '"') {
            j->p++;
            return true;
        }
        if (c == '\\') {
            j->p++;
            if (!json_escape(j, out))
                return false;
            continue;
        }
        size_t n = utf8_len(j->p, (size_t)(j->end - j->p));
        if (n == 0 || c < 0x20) /* RFC 8259 §7: controls must be escaped */
            return false;
        if (out)
            wr_demo_out_add(out, j->p, n);
        j->p += n;
    }
    return false;
}

static bool json_digits(struct json *j)
{
    const unsigned char *start = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
        j->p++;
    return j->p > start;
}

static bool json_number(struct json *j)
{
    json_eat(j, '-');
    if (json_eat(j, '0')) {
        /* RFC 8259 §6: no leading zeros */
    } else if (!json_digits(j)) {
        return false;
    }
    if (json_eat(j, '.') && !json_digits(j))
        return false;
    if (json_eat(j, 'e') || json_eat(j, 'E')) {
        if (!json_eat(j, '+'))
            json_eat(j, '-');
        return json_digits(j);
    }
    return true;
}

static bool json_literal(struct json *j, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
        return false;
    j->p += n;
    return true;
}

static bool json_value(struct json *j);

/* Members after '{' (or elements after '['), up to the closing bracket. */
static bool json_container(struct json *j, bool is_object)
{
    char close = is_object ? '}' : ']';
    if (++j->depth > JSON_MAX_DEPTH)
        return false;
    json_ws(j);
    if (json_eat(j, close)) {
        j->depth--;
        return true;
    }
    for (;;) {
        if (is_object) {
            if (!json_string(j, NULL))
                return false;
            json_ws(j);
            if (!json_eat(j, ':'))
                return false;
        }
        if (!json_value(j))
            return false;
        json_ws(j);
        if (json_eat(j, close))
            break;
        if (!json_eat(j, ','))
            return false;
        json_ws(j);
    }
    j->depth--;
    return true;
}

/* One value with the whitespace before it. */
static bool json_value(struct json *j)
{
    json_ws(j);
    if (j->p >= j->end)
        return false;
    switch (*j->p) {
    case '{': j->p++; return json_container(j, true);
    case '[': j->p++; return json_container(j, false);
    case '"': return json_string(j, NULL);
    case 't': return json_literal(j, "true");
    case 'f': return json_literal(j, "false");
    case 'n': return json_literal(j, "null");
    default: return json_number(j);
    }
}

/* One member "key": value of the top-level object; records the field
 * sought when this is its first occurrence. */
static bool json_member(struct json *j, const char *name, struct wr_demo_out *key,
                        struct wr_demo_out *value, enum wr_demo_field *found)
{
    wr_demo_out_reset(key);
    if (!json_string(j, key) || key->is_failed)
        return false;
    json_ws(j);
    if (!json_eat(j, ':'))
        return false;
    json_ws(j);
    bool is_it = *found == WR_DEMO_FIELD_ABSENT && key->len == strlen(name) &&
                 (key->len == 0 || memcmp(key->data, name, key->len) == 0);
    if (!is_it)
        return json_value(j);
    if (j->p < j->end && *j->p == '"') {
        wr_demo_out_reset(value);
        wr_demo_out_add(value, "", 0);
        *found = WR_DEMO_FIELD_FOUND;
        return json_string(j, value);
    }
    *found = WR_DEMO_FIELD_NOT_STRING;
    return json_value(j);
}

enum wr_demo_field wr_demo_json_field(const char *json, size_t len, const char *name,
                                      struct wr_demo_out *value)
{
    struct json j = {(const unsigned char *)json, (const unsigned char *)json + len, 1};
    enum wr_demo_field found = WR_DEMO_FIELD_ABSENT;
    struct wr_demo_out key;
    wr_demo_out_init(&key, len);
    bool is_ok = false;
    json_ws(&j);
    if (!json_eat(&j, '{'))
        goto done;
    json_ws(&j);
    if (!json_eat(&j, '}')) {
        for (;;) {
            if (!json_member(&j, name, &key, value, &found))
                goto done;
            json_ws(&j);
            if (json_eat(&j, '}'))
                break;
            if (!json_eat(&j, ','))
                goto done;
            json_ws(&j);
        }
    }
    json_ws(&j);
    is_ok = j.p == j.end;
done:
    wr_demo_out_fini(&key);
    return is_ok ? found : WR_DEMO_FIELD_MALFORMED;
}

/* ---- the lineup ---------------------------------------------------------- */

int wr_demo_parse_show(const char *s, size_t len)
{
    if (len == 0 || len > 3)
        return -1;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v >= 1 && v <= WR_DEMO_SHOW_MAX ? v : -1;
}

static const char *const FIRST_NAMES[] = {
    "Ada", "Bruno", "Chiara", "Dario", "Elena", "Femi", "Greta", "Hugo", "Ines",
    "Jonas", "Kai", "Lena", "Mateo", "Nora", "Omar", "Pia", "Quentin", "Rosa",
    "Sami", "Tess", "Umar", "Vera", "Wim", "Yara", "Zeno",
};
static const char *const LAST_NAMES[] = {
    "Alves", "Berg", "Costa", "Dahl", "Eze", "Fischer", "Garcia", "Haas", "Ivanov",
    "Jansen", "Kowalski", "Lind", "Moreau", "Novak", "Okafor", "Petit", "Quinn", "Rossi",
    "Silva", "Tanaka", "Ueda", "Varga", "Weber", "Yilmaz", "Zoric",
};
#define N_NAMES (sizeof(FIRST_NAMES) / sizeof(FIRST_NAMES[0]))
_Static_assert(sizeof(LAST_NAMES) == sizeof(FIRST_NAMES), "name tables");

/* splitmix64: a tiny generator whose whole state is the seed, so a team's
 * squad is a pure function of its name. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t fnv1a(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3u;
    return h;
}

static int by_rating_desc(const void *a, const void *b)
{
    const struct wr_demo_player *x = a, *y = b;
    if (x->rating != y->rating)
        return x->rating > y->rating ? -1 : 1;
    return x->number < y->number ? -1 : x->number > y->number;
}

/* Two keepers, six defenders, six midfielders, four forwards. */
static const char *squad_position(unsigned i)
{
    return i < 2 ? "GK" : i < 8 ? "DF" : i < 14 ? "MF" : "FW";
}

void wr_demo_lineup(const char *team, size_t team_len, unsigned n,
                    struct wr_demo_player *players)
{
    struct wr_demo_player squad[WR_DEMO_SQUAD];
    bool is_taken[100] = {false};
    uint64_t state = fnv1a(team, team_len);
    for (unsigned i = 0; i < WR_DEMO_SQUAD; i++) {
        struct wr_demo_player *p = &squad[i];
        const char *first = FIRST_NAMES[next_random(&state) % N_NAMES];
        const char *last = LAST_NAMES[next_random(&state) % N_NAMES];
        snprintf(p->name, sizeof(p->name), "%s %s", first, last);
        p->position = squad_position(i);
        p->rating = 55 + (unsigned)(next_random(&state) % 45);
        /* 18 of 99 numbers: probing to the next free one always ends */
        unsigned number = 1 + (unsigned)(next_random(&state) % 99);
        while (is_taken[number])
            number = number % 99 + 1;
        is_taken[number] = true;
        p->number = number;
    }
    qsort(squad, WR_DEMO_SQUAD, sizeof(squad[0]), by_rating_desc);
    if (n > WR_DEMO_SHOW_MAX)
        n = WR_DEMO_SHOW_MAX;
    memcpy(players, squad, n * sizeof(squad[0]));
}

/* ---- Accept -------------------------------------------------------------- */

/* q-value in thousandths (RFC 9110 §12.4.2: 0, 1, 0.xxx, 1.000), or -1. */
static int parse_qvalue(const char *s, size_t len)
{
    if (len == 0 || (s[0] != '0' && s[0] != '1') || len > 5)
        return -1;
    int v = (s[0] - '0') * 1000, scale = 100;
    if (len == 1)
        return v;
    if (s[1] != '.')
        return -1;
    for (size_t i = 2; i < len; i++, scale /= 10) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v += (s[i] - '0') * scale;
    }
    return v <= 1000 ? v : -1;
}

static bool span_is(const char *s, size_t len, const char *word)
{
    return len == strlen(word) && strncasecmp(s, word, len) == 0;
}

static size_t trim_ows(const char *s, size_t *len)
{
    size_t start = 0;
    while (start < *len && (s[start] == ' ' || s[start] == '\t'))
        start++;
    while (*len > start && (s[*len - 1] == ' ' || s[*len - 1] == '\t'))
        (*len)--;
    *len -= start;
    return start;
}

/* The q of one element "type/sub;p=v;q=0.5"; 1000 without q, -1 if bad. */
static int element_q(const char *s, size_t len, size_t *range_len)
{
    const char *semi = memchr(s, ';', len);
    *range_len = semi ? (size_t)(semi - s) : len;
    int q = 1000;
    for (size_t at = *range_len; at < len;) {
        const char *next = memchr(s + at + 1, ';', len - at - 1);
        size_t end = next ? (size_t)(next - s) : len, plen = end - at - 1;
        const char *param = s + at + 1 + trim_ows(s + at + 1, &plen);
        if (plen >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=')
            q = parse_qvalue(param + 2, plen - 2);
        at = end;
    }
    return q;
}

bool wr_demo_prefers_html(const char *accept)
{
    if (!accept)
        return false;
    /* specificity of the range that decided each q: 3 exact, 2 a type with
     * any subtype, 1 any type */
    int html_q = 0, json_q = 0, html_spec = 0, json_spec = 0;
    size_t len = strlen(accept);
    for (size_t at = 0; at <= len;) {
        const char *comma = memchr(accept + at, ',', len - at);
        size_t end = comma ? (size_t)(comma - accept) : len, elen = end - at, rlen;
        const char *el = accept + at + trim_ows(accept + at, &elen);
        at = end + 1;
        int q = element_q(el, elen, &rlen);
        trim_ows(el, &rlen); /* el starts at no OWS already */
        if (q < 0 || rlen == 0)
            continue;
        int hs = span_is(el, rlen, "text/html") ? 3 : span_is(el, rlen, "text/*") ? 2
                 : span_is(el, rlen, "*/*") ? 1 : 0;
        int js = span_is(el, rlen, "application/json") ? 3
                 : span_is(el, rlen, "application/*") ? 2 : span_is(el, rlen, "*/*") ? 1 : 0;
        if (hs > html_spec)
            html_spec = hs, html_q = q;
        if (js > json_spec)
            json_spec = js, json_q = q;
    }
    return html_q > json_q;
}

/* ---- renderers ----------------------------------------------------------- */

void wr_demo_lineup_json(struct wr_demo_out *out, const char *team, size_t team_len,
                         const struct wr_demo_player *players, unsigned n)
{
    wr_demo_out_str(out, "{\"team\":");
    wr_demo_json_str(out, team, team_len);
    wr_demo_out_str(out, ",\"show\":");
    wr_demo_out_u64(out, n);
    wr_demo_out_str(out, ",\"players\":[");
    for (unsigned i = 0; i < n; i++) {
        const struct wr_demo_player *p = &players[i];
        wr_demo_out_str(out, i ? ",{\"rank\":" : "{\"rank\":");
        wr_demo_out_u64(out, i + 1);
        wr_demo_out_str(out, ",\"number\":");
        wr_demo_out_u64(out, p->number);
        wr_demo_out_str(out, ",\"name\":");
        wr_demo_json_str(out, p->name, strlen(p->name));
        wr_demo_out_str(out, ",\"position\":");
        wr_demo_json_str(out, p->position, strlen(p->position));
        wr_demo_out_str(out, ",\"rating\":");
        wr_demo_out_u64(out, p->rating);
        wr_demo_out_str(out, "}");
    }
    wr_demo_out_str(out, "]}\n");
}

static void page_start(struct wr_demo_out *out, const char *title_a, const char *team,
                       size_t team_len)
{
    wr_demo_out_str(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                         "<title>");
    wr_demo_out_str(out, title_a);
    wr_demo_html(out, team, team_len);
    wr_demo_out_str(out, "</title>\n<link rel=\"stylesheet\" href=\"/style.css\">\n</head>\n"
                         "<body>\n<main>\n<h1>");
    wr_demo_out_str(out, title_a);
    wr_demo_html(out, team, team_len);
    wr_demo_out_str(out, "</h1>\n");
}

static void page_end(struct wr_demo_out *out)
{
    wr_demo_out_str(out, "<p><a href=\"/\">Home</a></p>\n</main>\n</body>\n</html>\n");
}

static void lineup_row(struct wr_demo_out *out, unsigned rank, const struct wr_demo_player *p)
{
    wr_demo_out_str(out, "<tr><td>");
    wr_demo_out_u64(out, rank);
    wr_demo_out_str(out, "</td><td>");
    wr_demo_out_u64(out, p->number);
    wr_demo_out_str(out, "</td><td>");
    wr_demo_html(out, p->name, strlen(p->name));
    wr_demo_out_str(out, "</td><td>");
    wr_demo_out_str(out, p->position);
    wr_demo_out_str(out, "</td><td>");
    wr_demo_out_u64(out, p->rating);
    wr_demo_out_str(out, "</td></tr>\n");
}

void wr_demo_lineup_html(struct wr_demo_out *out, const char *team, size_t team_len,
                         const struct wr_demo_player *players, unsigned n)
{
    char title[32];
    snprintf(title, sizeof(title), "Best %u of ", n);
    page_start(out, title, team, team_len);
    wr_demo_out_str(out, "<table>\n<tr><th>Rank</th><th>No.</th><th>Name</th>"
                         "<th>Position</th><th>Rating</th></tr>\n");
    for (unsigned i = 0; i < n; i++)
        lineup_row(out, i + 1, &players[i]);
    wr_demo_out_str(out, "</table>\n<p><a href=\"/api/best?team=");
    url_component(out, team, team_len);
    wr_demo_out_str(out, "&amp;show=");
    wr_demo_out_u64(out, n);
    wr_demo_out_str(out, "&amp;format=json\">This lineup as JSON</a></p>\n");
    page_end(out);
}

void wr_demo_team_json(struct wr_demo_out *out, const struct wr_demo_team *team)
{
    wr_demo_out_str(out, "{\"id\":");
    wr_demo_out_u64(out, team->id);
    wr_demo_out_str(out, ",\"name\":");
    wr_demo_json_str(out, team->name, team->name_len);
    wr_demo_out_str(out, ",\"city\":");
    wr_demo_json_str(out, team->city, team->city_len);
    wr_demo_out_str(out, "}");
}

void wr_demo_teams_json(struct wr_demo_out *out, const struct wr_demo_team *teams, size_t n)
{
    wr_demo_out_str(out, "{\"count\":");
    wr_demo_out_u64(out, n);
    wr_demo_out_str(out, ",\"teams\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            wr_demo_out_str(out, ",");
        wr_demo_team_json(out, &teams[i]);
    }
    wr_demo_out_str(out, "]}\n");
}

void wr_demo_teams_html(struct wr_demo_out *out, const struct wr_demo_team *teams, size_t n)
{
    page_start(out, "Teams", "", 0);
    if (n == 0)
        wr_demo_out_str(out, "<p>No team yet: add one from the home page.</p>\n");
    wr_demo_out_str(out, n ? "<ul>\n" : "");
    for (size_t i = 0; i < n; i++) {
        wr_demo_out_str(out, "<li><a href=\"/api/best?team=");
        url_component(out, teams[i].name, teams[i].name_len);
        wr_demo_out_str(out, "&amp;format=html\">");
        wr_demo_html(out, teams[i].name, teams[i].name_len);
        wr_demo_out_str(out, "</a>");
        if (teams[i].city_len) {
            wr_demo_out_str(out, " (");
            wr_demo_html(out, teams[i].city, teams[i].city_len);
            wr_demo_out_str(out, ")");
        }
        wr_demo_out_str(out, "</li>\n");
    }
    wr_demo_out_str(out, n ? "</ul>\n" : "");
    page_end(out);
}

void wr_demo_error_json(struct wr_demo_out *out, const char *message)
{
    wr_demo_out_str(out, "{\"error\":");
    wr_demo_json_str(out, message, strlen(message));
    wr_demo_out_str(out, "}\n");
}
