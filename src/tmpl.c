/*
 * tmpl: value templates ("https://$host$request_uri", "/v2/$1") compiled
 * once at config load into a list of parts, expanded per request into a
 * caller's buffer.
 *
 * Responsible for the variable syntax: "$name", "${name}", "$1".."$9" and
 * "$$". As in nginx, "$" followed by a digit takes exactly one digit, so
 * "$12" is capture 1 followed by "2". Deliberately not: escaping what a
 * variable expands to (a caller putting $1 into a Location field decides
 * what is safe there) and any allocation while expanding.
 *
 * Invariants: literal parts point into t->text, which t owns and never
 * changes, so a compiled template may be moved (config reallocates its
 * arrays) but not shallow-copied and then finalised twice.
 */
#include "weir/tmpl.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    enum wr_tmpl_var var;
} known_vars[] = {
    {"host", WR_TMPL_HOST},
    {"request_uri", WR_TMPL_REQUEST_URI},
    {"scheme", WR_TMPL_SCHEME},
    {"remote_addr", WR_TMPL_REMOTE_ADDR},
    {"request_id", WR_TMPL_REQUEST_ID},
    {"ssl_client_s_dn", WR_TMPL_SSL_CLIENT_S_DN},
    {"ssl_client_fingerprint", WR_TMPL_SSL_CLIENT_FINGERPRINT},
    {"ssl_client_verify", WR_TMPL_SSL_CLIENT_VERIFY},
};

/*
 * Error messages naming the offending variable are formatted here. The
 * buffer is per thread, so *err stays valid until the same thread compiles
 * another template; every other message is a string literal.
 */
static _Thread_local char unknown_msg[96];

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/*
 * Sets *part from the variable name[0..len); spelled is how it was written
 * ("$foo", "${foo}") for the error message. Returns 0 or -1 with *err set.
 */
static int lookup_var(const char *name, size_t len, struct wr_str spelled,
                      struct wr_tmpl_part *part, const char **err)
{
    if (len == 1 && name[0] >= '1' && name[0] <= '9') {
        part->var = WR_TMPL_CAPTURE;
        part->capture = (unsigned)(name[0] - '0');
        return 0;
    }
    for (size_t i = 0; i < sizeof(known_vars) / sizeof(known_vars[0]); i++) {
        if (strlen(known_vars[i].name) == len && memcmp(known_vars[i].name, name, len) == 0) {
            part->var = known_vars[i].var;
            return 0;
        }
    }
    int shown = spelled.len > 40 ? 40 : (int)spelled.len;
    snprintf(unknown_msg, sizeof(unknown_msg), "unknown variable %.*s%s", shown, spelled.ptr,
             spelled.len > 40 ? "..." : "");
    *err = unknown_msg;
    return -1;
}

/*
 * Parses the variable starting at text[i] == '$' into *part. Returns the
 * index just past it, or 0 with *err set (0 is never a valid end: i >= 0
 * and a variable has at least two bytes).
 */
static size_t parse_var(const char *text, size_t len, size_t i, struct wr_tmpl_part *part,
                        const char **err)
{
    if (i + 1 >= len) {
        *err = "$ at end of value (write $$ for a literal $)";
        return 0;
    }
    char c = text[i + 1];
    if (c == '{') {
        const char *close = memchr(text + i + 2, '}', len - i - 2);
        if (close == NULL) {
            *err = "unterminated ${";
            return 0;
        }
        size_t end = (size_t)(close - text) + 1;
        struct wr_str spelled = {text + i, end - i};
        if (lookup_var(text + i + 2, end - i - 3, spelled, part, err) < 0)
            return 0;
        return end;
    }
    if (c >= '0' && c <= '9') {
        if (lookup_var(text + i + 1, 1, (struct wr_str){text + i, 2}, part, err) < 0)
            return 0;
        return i + 2;
    }
    if (!is_name_char(c)) {
        *err = "$ must start a variable (write $$ for a literal $)";
        return 0;
    }
    size_t end = i + 1;
    while (end < len && is_name_char(text[end]))
        end++;
    if (lookup_var(text + i + 1, end - i - 1, (struct wr_str){text + i, end - i}, part, err) < 0)
        return 0;
    return end;
}

static void add_literal(struct wr_tmpl *t, const char *start, const char *end)
{
    if (end > start)
        t->parts[t->n_parts++] = (struct wr_tmpl_part){
            .var = WR_TMPL_LITERAL, .lit = {start, (size_t)(end - start)}};
}

/* Splits t->text into t->parts, which has room for one part per byte plus one. */
static int split_parts(struct wr_tmpl *t, size_t len, const char **err)
{
    const char *text = t->text;
    size_t lit = 0;
    size_t i = 0;
    while (i < len) {
        if (text[i] != '$') {
            i++;
            continue;
        }
        add_literal(t, text + lit, text + i);
        if (i + 1 < len && text[i + 1] == '$') {
            lit = i + 1; /* the second '$' starts the next literal */
            i += 2;
            continue;
        }
        struct wr_tmpl_part part = {0};
        size_t end = parse_var(text, len, i, &part, err);
        if (end == 0)
            return -1;
        t->parts[t->n_parts++] = part;
        if (part.var == WR_TMPL_CAPTURE && part.capture > t->max_capture)
            t->max_capture = part.capture;
        i = lit = end;
    }
    add_literal(t, text + lit, text + len);
    return 0;
}

int wr_tmpl_init(struct wr_tmpl *t, const char *text, const char **err)
{
    static const char *oom = "out of memory";
    memset(t, 0, sizeof(*t));
    size_t len = strlen(text);
    t->text = strdup(text);
    /* Every part but the last consumes at least one byte. */
    t->parts = calloc(len + 1, sizeof(*t->parts));
    if (t->text == NULL || t->parts == NULL) {
        *err = oom;
        wr_tmpl_fini(t);
        return -1;
    }
    if (split_parts(t, len, err) < 0) {
        wr_tmpl_fini(t);
        return -1;
    }
    if (t->n_parts > 0) {
        struct wr_tmpl_part *fit = realloc(t->parts, t->n_parts * sizeof(*t->parts));
        if (fit != NULL)
            t->parts = fit;
    }
    return 0;
}

void wr_tmpl_fini(struct wr_tmpl *t)
{
    free(t->text);
    free(t->parts);
    memset(t, 0, sizeof(*t));
}

bool wr_tmpl_is_literal(const struct wr_tmpl *t)
{
    /* Any '$' left in a compiled text is a variable or a "$$" escape;
     * either way the text is not its own expansion. */
    return t->text == NULL || strchr(t->text, '$') == NULL;
}

/* The bytes of capture n, or "" when unset, out of range or inverted (\K). */
static struct wr_str capture_value(const struct wr_tmpl_vars *vars, unsigned n)
{
    struct wr_str none = {NULL, 0};
    if (vars->subject == NULL || vars->ovector == NULL || n >= vars->n_captures)
        return none;
    size_t start = vars->ovector[2 * n], end = vars->ovector[2 * n + 1];
    if (start == SIZE_MAX || end == SIZE_MAX || end < start)
        return none;
    return (struct wr_str){vars->subject + start, end - start};
}

static struct wr_str part_value(const struct wr_tmpl_part *p, const struct wr_tmpl_vars *vars)
{
    if (p->var == WR_TMPL_LITERAL)
        return p->lit;
    if (vars == NULL)
        return (struct wr_str){NULL, 0};
    switch (p->var) {
    case WR_TMPL_HOST:
        return vars->host;
    case WR_TMPL_REQUEST_URI:
        return vars->request_uri;
    case WR_TMPL_SCHEME:
        return vars->scheme;
    case WR_TMPL_REMOTE_ADDR:
        return vars->remote_addr;
    case WR_TMPL_REQUEST_ID:
        return vars->request_id;
    case WR_TMPL_SSL_CLIENT_S_DN:
        return vars->ssl_client_s_dn;
    case WR_TMPL_SSL_CLIENT_FINGERPRINT:
        return vars->ssl_client_fingerprint;
    case WR_TMPL_SSL_CLIENT_VERIFY:
        return vars->ssl_client_verify;
    case WR_TMPL_CAPTURE:
        return capture_value(vars, p->capture);
    case WR_TMPL_LITERAL:
        break;
    }
    return (struct wr_str){NULL, 0};
}

ssize_t wr_tmpl_expand(const struct wr_tmpl *t, const struct wr_tmpl_vars *vars, char *out,
                       size_t cap)
{
    size_t len = 0;
    for (size_t i = 0; i < t->n_parts; i++) {
        struct wr_str v = part_value(&t->parts[i], vars);
        if (v.len > cap - len)
            return -1;
        if (v.len > 0)
            memcpy(out + len, v.ptr, v.len);
        len += v.len;
    }
    return (ssize_t)len;
}
