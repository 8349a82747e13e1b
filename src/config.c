/*
 * config: the ini file turned into one immutable, reference-counted
 * struct wr_config (schema: CONFIG.md).
 *
 * Responsible for: reading lines (with line numbers and a length check),
 * one key table per section (parser, default, range, which route action a
 * key belongs to), section-level checks when a section ends, cross-references
 * once the whole file is read (route -> upstream, tls listen -> [tls], [tls
 * NAME] inheriting from [tls]), compiling regexes and templates, and every
 * error as "FILE:LINE: [section] key: message", all of them, in line order.
 * Relative paths (root, logs, certificates) are made absolute against the
 * ini file's directory. Upstream server host names are resolved here, at
 * every load (so a reload sees DNS changes), through a replaceable resolver
 * (the fuzz target passes none: it must never do DNS). Deliberately not:
 * opening certificates or log files or binding sockets (other modules do
 * that); the only file-system check is that each root is a directory.
 *
 * How inih is used: our reader hands ini_parse_stream one physical line at a
 * time and tracks the line number, so the key handler knows where it is.
 * The reader also does what inih cannot report well: a line longer than the
 * buffer (inih would split it silently), a line that is neither a comment, a
 * [section] nor key = value (inih only returns the first), and section
 * headers (inih calls no handler for them, and an empty [route x] must still
 * be seen). Leading whitespace is removed from every line before inih sees
 * it, so indentation never makes a line a continuation of the previous
 * key's value (inih's multi-line mode): an indented "key = value" is a key,
 * and an indented word without '=' is an error. That is less surprising than
 * "    workers = 4" under "listen = ..." silently becoming a second listen.
 *
 * Invariants: a snapshot is returned only when no error was found; nothing
 * half-built escapes. While loading, routes, upstreams and tls sections are
 * addressed by index (their arrays grow); pointers between them (route ->
 * upstream) are set only after the last realloc.
 */
#include "weir/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>
#include <pcre2.h>

#include "weir/http_cond.h"
#include "weir/mime.h"
#include "weir/route_index.h"

#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))

#define NO_MAX UINT64_MAX
#define MAX_KEYS 64 /* room in sect_record.seen: most keys in one section */
#define WORD_MAX 256 /* longest word copied out of a value (lines are shorter) */
#define OOM_MSG "out of memory"
/* Bigger input is refused: `weir -t -c /dev/zero` must end, and no real
 * config comes near it. */
#define MAX_INPUT_BYTES (16u << 20)
#define RETURN_FILE_MAX (1u << 20) /* a return_file body */
/* Longest physical line. inih (as Debian builds it) holds only 200 bytes, so
 * a longer key line reaches inih as "key=" LONG_VALUE_MARK and on_key swaps
 * the full value back in: a 1 KiB `return` body or a long redirect target
 * works, and nothing is ever split silently. */
#define LINE_MAX_BYTES (64 * 1024)
#define LONG_VALUE_MARK "\x01"
/* include: nesting deeper than this is an error (a cycle is caught before,
 * by file identity); so is reading more files than MAX_FILES in all. */
#define MAX_INCLUDE_DEPTH 8
#define MAX_FILES 1024
#define ACTION_HINT "a route has exactly one action: root, proxy, redirect or return"

/* Enum fields are written through an int by parse_enum. */
_Static_assert(sizeof(enum wr_log_level) == sizeof(int), "enum size");
_Static_assert(sizeof(enum wr_balance) == sizeof(int), "enum size");

enum sect_kind {
    SECT_NONE = 0, /* before the first header: keys here are errors */
    SECT_SKIP,     /* after a bad or duplicate header: its keys are not checked */
    SECT_SERVER,
    SECT_LIMITS,
    SECT_TLS,
    SECT_UPSTREAM,
    SECT_ROUTE,
    SECT_ADMIN,
    SECT_HTTP2,
    SECT_COMPRESSION,
    SECT_CACHE,    /* [cache NAME] (issue 20) */
    SECT_N
};

/* One section header as read: the object it fills and where each key was given. */
struct sect_record {
    enum sect_kind kind;
    size_t index;            /* into cfg->tls, upstreams, routes or caches; 0 for the others */
    unsigned line;           /* of the header */
    unsigned seen[MAX_KEYS]; /* per key of the section's table: first line given, 0 = not */
};

/* A template in a repeatable route key, checked against the captures when the route ends. */
struct tmpl_use {
    unsigned line;
    const char *key; /* static: the table's name */
    unsigned max_capture;
};

struct pending_error {
    unsigned line; /* sort key; 0 for whole-file problems */
    size_t seq;     /* keeps errors on one line in the order found */
    char *text;     /* owned */
    bool is_warning; /* reported, but the file still loads */
};

/* One file (or the string) being read. */
struct input {
    FILE *fp;         /* a file ... */
    const char *text; /* ... or a string (when fp is NULL) */
    const char *path; /* name in messages (borrowed); its directory anchors relative paths */
    char *dir;        /* owned: that directory made absolute, once needed */
    unsigned line;    /* line number, in this file, of the line last read */
    unsigned file;    /* index into cfg->files */
    bool has_id;      /* dev and ino are set (files only): include cycles */
    dev_t dev;
    ino_t ino;
};

/* One include line being read: its files one after the other, then back. */
struct include_frame {
    struct input parent;  /* the including file, resumed after the last match */
    char **paths;         /* owned: what the line names, sorted */
    size_t n_paths, next; /* next: index of the path to open next */
    unsigned pos;         /* of the include line: where failing to open is reported */
    /* The section the include line stands in, resumed after its files. */
    enum sect_kind kind;
    size_t rec;
    struct tmpl_use *uses; /* owned while the included files are read */
    size_t n_uses;
};

struct loader {
    const char *file; /* the main file's name: whole-file messages name it */
    wr_config_resolve_fn resolve; /* NULL: host names are refused */
    wr_config_resolve_ns_fn resolve_ns; /* with [server] resolver (options) */
    bool allow_include;           /* false: include lines are errors */
    struct wr_config *cfg;
    struct input in;  /* the file being read */
    struct include_frame frames[MAX_INCLUDE_DEPTH]; /* the include lines being read */
    size_t n_frames;
    size_t n_read;    /* bytes taken from the input so far, all files together */
    int read_errno;   /* of a failed read, else 0 */
    unsigned line;    /* position (config.h) of the line last handed to inih */

    enum sect_kind kind; /* current section; a real one means recs[cur_rec] */
    size_t cur_rec;
    struct sect_record *recs;
    size_t n_recs;
    unsigned singleton_line[SECT_N]; /* header line of [server], [limits], [admin], [http2] */
    struct tmpl_use *uses;           /* of the current route */
    size_t n_uses;

    struct pending_error *errors; /* errors and warnings, in the order found */
    size_t n_errors;              /* entries in errors */
    size_t n_warnings;            /* of which warnings */
    bool is_oom;
    char msg[512]; /* room for a parser's formatted message */

    char *line_buf;   /* owned: the physical line being read, any length */
    size_t line_cap;
    char *long_value; /* owned: value of the last line too long for inih */
};

struct key_def;
/* Parses value into obj (the section's struct). Returns NULL, or the error
 * message: a literal or ld->msg. */
typedef const char *(*key_parse_fn)(struct loader *ld, const struct key_def *k, void *obj,
                                    const char *value);

enum key_flag {
    KEY_REPEATABLE = 1u << 0, /* each line adds an item */
    KEY_STATIC = 1u << 1,     /* route key for root routes (checked when the route ends) */
    KEY_PROXY = 1u << 2,      /* route key for proxy routes (checked when the route ends) */
    KEY_ACTION = 1u << 3,     /* route action key: .action says which */
};

struct choice {
    const char *name;
    int value;
};

struct key_def {
    const char *name;
    key_parse_fn parse;
    size_t offset;         /* of the field in obj, for the generic parsers */
    const char *dflt;      /* parsed when the section opens; NULL: field stays zero */
    uint64_t min, max;     /* numeric keys: accepted range (ms, bytes or count) */
    unsigned flags;        /* enum key_flag */
    enum wr_route_action action;   /* KEY_ACTION only */
    const struct choice *choices;  /* parse_enum only; ends with a NULL name */
};

#define FIELD(type, member) .offset = offsetof(type, member)

/* ---- errors ------------------------------------------------------------ */

static void push_message(struct loader *ld, unsigned line, char *text, bool is_warning)
{
    if (text == NULL) {
        ld->is_oom = true;
        return;
    }
    struct pending_error *more = realloc(ld->errors, (ld->n_errors + 1) * sizeof(*more));
    if (more == NULL) {
        free(text);
        ld->is_oom = true;
        return;
    }
    ld->errors = more;
    more[ld->n_errors] = (struct pending_error){line, ld->n_errors, text, is_warning};
    ld->n_errors++;
    ld->n_warnings += is_warning;
}

static void push_error(struct loader *ld, unsigned line, char *text)
{
    push_message(ld, line, text, false);
}

/* Formats into a new heap string, or NULL. */
PRINTF_LIKE(1, 2) static char *format_new(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* File and line of position pos while loading (see wr_config_where). */
static struct wr_config_where where(const struct loader *ld, unsigned pos)
{
    if (ld->cfg == NULL || pos == 0)
        return (struct wr_config_where){ld->file, pos};
    return wr_config_where(ld->cfg, pos);
}

/* "line N" when pos was read from the file being read now, else "FILE:N":
 * for "first at ..." in messages. Returns buf. */
static const char *where_text(const struct loader *ld, unsigned pos, char *buf, size_t cap)
{
    const struct wr_config_where w = where(ld, pos), now = where(ld, ld->line);
    if (w.file == now.file)
        snprintf(buf, cap, "line %u", w.line);
    else
        snprintf(buf, cap, "%s:%u", w.file, w.line);
    return buf;
}

/* "FILE:LINE: message", FILE:LINE being where position pos was read. */
PRINTF_LIKE(3, 4) static void add_error(struct loader *ld, unsigned pos, const char *fmt, ...)
{
    char body[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    const struct wr_config_where w = where(ld, pos);
    push_error(ld, pos, format_new("%s:%u: %s", w.file, w.line, body));
}

/* "FILE: message", for the file as a whole (cannot open, out of memory). */
static void add_file_error(struct loader *ld, const char *msg)
{
    push_error(ld, 0, format_new("%s: %s", ld->file, msg));
}

static bool has_error_at(const struct loader *ld, unsigned line)
{
    for (size_t i = 0; i < ld->n_errors; i++) {
        if (ld->errors[i].line == line && !ld->errors[i].is_warning)
            return true;
    }
    return false;
}

/* "server", "tls", "tls example.org", "route api". */
static const char *record_label(const struct loader *ld, const struct sect_record *rec,
                                char *buf, size_t cap)
{
    const struct wr_config *cfg = ld->cfg;
    switch (rec->kind) {
    case SECT_SERVER:
        return "server";
    case SECT_LIMITS:
        return "limits";
    case SECT_ADMIN:
        return "admin";
    case SECT_HTTP2:
        return "http2";
    case SECT_COMPRESSION:
        return "compression";
    case SECT_TLS:
        if (cfg->tls[rec->index].name == NULL)
            return "tls";
        snprintf(buf, cap, "tls %s", cfg->tls[rec->index].name);
        return buf;
    case SECT_UPSTREAM:
        snprintf(buf, cap, "upstream %s", cfg->upstreams[rec->index].name);
        return buf;
    case SECT_ROUTE:
        snprintf(buf, cap, "route %s", cfg->routes[rec->index].name);
        return buf;
    case SECT_CACHE:
        snprintf(buf, cap, "cache %s", cfg->caches[rec->index].name);
        return buf;
    default:
        return "?";
    }
}

/* "FILE:LINE: [section] key: message". */
PRINTF_LIKE(5, 6)
static void key_error(struct loader *ld, const struct sect_record *rec, unsigned line,
                      const char *key, const char *fmt, ...)
{
    char body[1024], label[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    add_error(ld, line, "[%s] %s: %s", record_label(ld, rec, label, sizeof(label)), key, body);
}

/* "FILE:LINE: warning: [section] key: message": reported by weir -t and
 * logged at start and reload, but the file still loads. */
PRINTF_LIKE(5, 6)
static void key_warning(struct loader *ld, const struct sect_record *rec, unsigned line,
                        const char *key, const char *fmt, ...)
{
    char body[1024], label[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    const struct wr_config_where w = where(ld, line);
    push_message(ld, line,
                 format_new("%s:%u: warning: [%s] %s: %s", w.file, w.line,
                            record_label(ld, rec, label, sizeof(label)), key, body),
                 true);
}

/* "FILE:LINE: [section]: message", at the section's header. */
PRINTF_LIKE(3, 4)
static void section_error(struct loader *ld, const struct sect_record *rec, const char *fmt, ...)
{
    char body[1024], label[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    add_error(ld, rec->line, "[%s]: %s", record_label(ld, rec, label, sizeof(label)), body);
}

PRINTF_LIKE(2, 3) static const char *fail(struct loader *ld, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ld->msg, sizeof(ld->msg), fmt, ap);
    va_end(ap);
    return ld->msg;
}

/* ---- small helpers ------------------------------------------------------- */

static char *dup_mem(struct loader *ld, const char *s, size_t len)
{
    char *d = malloc(len + 1);
    if (d == NULL) {
        ld->is_oom = true;
        return NULL;
    }
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

/* Replaces *slot (freeing the old string) with a copy of s, or NULL when s is. */
static int set_string(struct loader *ld, char **slot, const char *s)
{
    char *d = s != NULL ? dup_mem(ld, s, strlen(s)) : NULL;
    if (s != NULL && d == NULL)
        return -1;
    free(*slot);
    *slot = d;
    return 0;
}

/* arr grown by one zeroed element at [n]; NULL on failure (arr still valid). */
static void *grow_array(struct loader *ld, void *arr, size_t n, size_t elem)
{
    char *bigger = realloc(arr, (n + 1) * elem);
    if (bigger == NULL) {
        ld->is_oom = true;
        return NULL;
    }
    memset(bigger + n * elem, 0, elem);
    return bigger;
}

static int push_string(struct loader *ld, char ***arr, size_t *n, struct wr_str s)
{
    char **more = grow_array(ld, *arr, *n, sizeof(**arr));
    if (more == NULL)
        return -1;
    *arr = more;
    more[*n] = dup_mem(ld, s.ptr, s.len);
    if (more[*n] == NULL)
        return -1;
    (*n)++;
    return 0;
}

static bool has_string(char *const *arr, size_t n, struct wr_str s)
{
    for (size_t i = 0; i < n; i++) {
        if (wr_str_eq(wr_str_from_cstr(arr[i]), s))
            return true;
    }
    return false;
}

static void free_strings(char **arr, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(arr[i]);
    free(arr);
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* The next space- or tab-separated word of *rest, which moves past it; len 0 at the end. */
static struct wr_str next_word(const char **rest)
{
    const char *p = *rest;
    while (is_blank(*p))
        p++;
    const char *start = p;
    while (*p != '\0' && !is_blank(*p))
        p++;
    *rest = p;
    return (struct wr_str){start, (size_t)(p - start)};
}

/* Copies w into buf as a C string, lower-cased when asked. False when it does not fit. */
static bool word_copy(struct wr_str w, char *buf, size_t cap, bool lower)
{
    if (w.len >= cap)
        return false;
    for (size_t i = 0; i < w.len; i++)
        buf[i] = lower ? wr_str_lower(w.ptr[i]) : w.ptr[i];
    buf[w.len] = '\0';
    return true;
}

/* RFC 9110 §5.6.2 tchar. */
static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool is_token(struct wr_str s)
{
    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        if (!is_tchar((unsigned char)s.ptr[i]))
            return false;
    }
    return true;
}

static bool is_label_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/*
 * NULL when s (already lower case) is a host name: dot-separated labels of
 * [a-z0-9_-], 1..63 bytes each, 253 in all; with allow_wildcard it may start
 * with "*." (the router wants a label before the suffix). "[v6]" is accepted
 * too. Else a message.
 */
static const char *check_host_name(const char *s, bool allow_wildcard)
{
    size_t len = strlen(s);
    if (s[0] == '[') {
        char v6[INET6_ADDRSTRLEN];
        struct in6_addr a;
        if (len < 3 || s[len - 1] != ']' || len - 2 >= sizeof(v6))
            return "not a host name";
        memcpy(v6, s + 1, len - 2);
        v6[len - 2] = '\0';
        return inet_pton(AF_INET6, v6, &a) == 1 ? NULL : "not an IPv6 address";
    }
    if (allow_wildcard && s[0] == '*' && s[1] == '.')
        s += 2;
    if (strchr(s, ':') != NULL)
        return "a host name here has no port";
    if (strlen(s) > 253)
        return "host name longer than 253 bytes";
    size_t label = 0;
    for (const char *p = s;; p++) {
        if (*p == '.' || *p == '\0') {
            if (label == 0 || label > 63)
                return "not a host name (empty label or one longer than 63 bytes)";
            if (*p == '\0')
                return NULL;
            label = 0;
        } else if (is_label_char(*p)) {
            label++;
        } else {
            return allow_wildcard ? "not a host name (letters, digits, '-', '_', dots; "
                                    "\"*.\" may start it)"
                                  : "not a host name (letters, digits, '-', '_' and dots)";
        }
    }
}

static void *field_of(void *obj, const struct key_def *k)
{
    return (char *)obj + k->offset;
}

/* The directory of the file being read, made absolute with the working
 * directory. */
static const char *base_dir(struct loader *ld)
{
    struct input *in = &ld->in;
    if (in->dir != NULL)
        return in->dir;
    const char *slash = strrchr(in->path, '/');
    char cwd[PATH_MAX];
    if (in->path[0] == '/')
        in->dir = dup_mem(ld, in->path, slash == in->path ? 1 : (size_t)(slash - in->path));
    else if (getcwd(cwd, sizeof(cwd)) == NULL)
        return NULL;
    else if (slash == NULL)
        in->dir = dup_mem(ld, cwd, strlen(cwd));
    else
        in->dir = format_new("%s/%.*s", cwd, (int)(slash - in->path), in->path);
    return in->dir;
}

/*
 * path as an absolute path in buf: relative paths are taken from the
 * directory of the ini file that names them (README "Configuration"; an
 * included file's own), so a config and the files next to it can move
 * together, and nothing depends on the daemon's working directory. Returns
 * buf or path, or NULL (message in ld->msg).
 */
static const char *absolute_path(struct loader *ld, const char *path, char *buf, size_t cap)
{
    if (path[0] == '/')
        return path;
    const char *dir = base_dir(ld);
    if (dir == NULL) {
        fail(ld, "\"%s\": cannot make it absolute: %s", path, strerror(errno));
        return NULL;
    }
    int n = snprintf(buf, cap, "%s%s%s", dir, strcmp(dir, "/") == 0 ? "" : "/", path);
    if (n < 0 || (size_t)n >= cap) {
        fail(ld, "\"%s\": path too long", path);
        return NULL;
    }
    return buf;
}

/* ---- generic value parsers ------------------------------------------------ */

static void format_scaled(uint64_t v, const char *const *suffixes, const uint64_t *factors,
                          size_t n, char *buf, size_t cap)
{
    for (size_t i = 0; i < n; i++) {
        if (v != 0 && v % factors[i] == 0) {
            snprintf(buf, cap, "%" PRIu64 "%s", v / factors[i], suffixes[i]);
            return;
        }
    }
    snprintf(buf, cap, "%" PRIu64, v);
}

static void format_duration(uint64_t ms, char *buf, size_t cap)
{
    static const char *const suffixes[] = {"d", "h", "m", "s", "ms"};
    static const uint64_t factors[] = {86400000, 3600000, 60000, 1000, 1};
    format_scaled(ms, suffixes, factors, 5, buf, cap);
}

static void format_size(uint64_t bytes, char *buf, size_t cap)
{
    static const char *const suffixes[] = {"g", "m", "k"};
    static const uint64_t factors[] = {1u << 30, 1u << 20, 1u << 10};
    format_scaled(bytes, suffixes, factors, 3, buf, cap);
}

static void format_count(uint64_t n, char *buf, size_t cap)
{
    snprintf(buf, cap, "%" PRIu64, n);
}

/* Stores v when within k's range; else the message, with bounds written by fmt. */
static const char *store_in_range(struct loader *ld, const struct key_def *k, void *obj,
                                  const char *value, uint64_t v,
                                  void (*fmt)(uint64_t, char *, size_t))
{
    if (v >= k->min && v <= k->max) {
        *(uint64_t *)field_of(obj, k) = v;
        return NULL;
    }
    char lo[32], hi[32];
    fmt(k->min, lo, sizeof(lo));
    if (k->max == NO_MAX)
        return fail(ld, "\"%s\" is out of range: must be at least %s", value, lo);
    fmt(k->max, hi, sizeof(hi));
    return fail(ld, "\"%s\" is out of range: must be between %s and %s", value, lo, hi);
}

static const char *parse_duration(struct loader *ld, const struct key_def *k, void *obj,
                                  const char *value)
{
    uint64_t ms;
    if (wr_units_parse_duration(value, &ms) < 0) {
        if (errno != ERANGE)
            return fail(ld, "\"%s\" is not a duration (e.g. 250ms, 10s, 5m, 1h, 2d)", value);
        char max[32];
        format_duration(WR_UNITS_DURATION_MAX_MS, max, sizeof(max));
        return fail(ld, "\"%s\" is longer than the longest duration, %s", value, max);
    }
    return store_in_range(ld, k, obj, value, ms, format_duration);
}

static const char *parse_size(struct loader *ld, const struct key_def *k, void *obj,
                              const char *value)
{
    uint64_t bytes;
    if (wr_units_parse_size(value, &bytes) < 0)
        return fail(ld, "\"%s\" is not a size (e.g. 512, 16k, 10m, 1g)", value);
    return store_in_range(ld, k, obj, value, bytes, format_size);
}

/* Decimal digits only, no sign; overflow refused. Returns 0 or -1. */
static int parse_number(const char *text, uint64_t *out)
{
    uint64_t v = 0;
    if (*text == '\0')
        return -1;
    for (; *text != '\0'; text++) {
        if (*text < '0' || *text > '9')
            return -1;
        unsigned d = (unsigned)(*text - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static const char *parse_count(struct loader *ld, const struct key_def *k, void *obj,
                               const char *value)
{
    uint64_t n;
    if (parse_number(value, &n) < 0)
        return fail(ld, "\"%s\" is not a number", value);
    return store_in_range(ld, k, obj, value, n, format_count);
}

static const char *parse_bool(struct loader *ld, const struct key_def *k, void *obj,
                              const char *value)
{
    if (wr_units_parse_bool(value, field_of(obj, k)) < 0)
        return fail(ld, "\"%s\" is not on or off (also yes/no, true/false)", value);
    return NULL;
}

static const char *parse_enum(struct loader *ld, const struct key_def *k, void *obj,
                              const char *value)
{
    for (const struct choice *c = k->choices; c->name != NULL; c++) {
        if (strcmp(value, c->name) == 0) {
            int v = c->value;
            memcpy(field_of(obj, k), &v, sizeof(v));
            return NULL;
        }
    }
    size_t len = (size_t)snprintf(ld->msg, sizeof(ld->msg), "\"%s\" is not one of:", value);
    for (const struct choice *c = k->choices; c->name != NULL && len < sizeof(ld->msg); c++)
        len += (size_t)snprintf(ld->msg + len, sizeof(ld->msg) - len, "%s %s",
                                c == k->choices ? "" : ",", c->name);
    return ld->msg;
}

/* Any text (control characters were refused before). */
static const char *parse_string(struct loader *ld, const struct key_def *k, void *obj,
                                const char *value)
{
    return set_string(ld, field_of(obj, k), value) < 0 ? OOM_MSG : NULL;
}

/* One word: user and group names. */
static const char *parse_word(struct loader *ld, const struct key_def *k, void *obj,
                              const char *value)
{
    if (strpbrk(value, " \t") != NULL)
        return fail(ld, "\"%s\" must be one word", value);
    return parse_string(ld, k, obj, value);
}

/* A file path; a relative one is taken from the ini file's directory. */
static const char *parse_path(struct loader *ld, const struct key_def *k, void *obj,
                              const char *value)
{
    char buf[PATH_MAX];
    const char *path = absolute_path(ld, value, buf, sizeof(buf));
    if (path == NULL)
        return ld->msg;
    return set_string(ld, field_of(obj, k), path) < 0 ? OOM_MSG : NULL;
}

/* ---- [server] ------------------------------------------------------------- */

static const char *parse_listen(struct loader *ld, const struct key_def *k, void *obj,
                                const char *value)
{
    (void)k;
    struct wr_server_cfg *s = obj;
    const char *rest = value;
    struct wr_str addr = next_word(&rest);
    char buf[WORD_MAX];
    struct wr_listen_cfg l = {.line = ld->line};
    if (!word_copy(addr, buf, sizeof(buf), false) || wr_units_parse_listen(buf, &l.addr) < 0)
        return fail(ld, "\"%.*s\" is not an address (IPv4:port, [IPv6]:port, *:port or "
                        "unix:/path)", (int)addr.len, addr.ptr);
    for (struct wr_str flag = next_word(&rest); flag.len > 0; flag = next_word(&rest)) {
        bool *is_set = wr_str_eq(flag, WR_STR("tls"))              ? &l.is_tls
                       : wr_str_eq(flag, WR_STR("h2c"))            ? &l.is_h2c
                       : wr_str_eq(flag, WR_STR("proxy_protocol")) ? &l.is_proxy_protocol
                                                                   : NULL;
        if (is_set == NULL)
            return fail(ld, "unknown flag \"%.*s\" (\"tls\", \"h2c\" or \"proxy_protocol\")",
                        (int)flag.len, flag.ptr);
        if (*is_set)
            return fail(ld, "flag \"%.*s\" given twice", (int)flag.len, flag.ptr);
        *is_set = true;
    }
    /* TLS listeners speak HTTP/2 through ALPN ([tls] alpn); h2c is
     * cleartext HTTP/2 with prior knowledge (RFC 9113 §3.3). */
    if (l.is_tls && l.is_h2c)
        return "h2c is for plain listeners (a tls listener offers h2 through [tls] alpn)";
    for (size_t i = 0; i < s->n_listens; i++) {
        char at[PATH_MAX + 32];
        if (strcmp(s->listens[i].addr.text, l.addr.text) == 0)
            return fail(ld, "%s is already listed at %s", l.addr.text,
                        where_text(ld, s->listens[i].line, at, sizeof(at)));
    }
    struct wr_listen_cfg *more = grow_array(ld, s->listens, s->n_listens, sizeof(*more));
    if (more == NULL)
        return OOM_MSG;
    s->listens = more;
    more[s->n_listens++] = l;
    return NULL;
}

/* proxy_protocol_from = CIDR ...: repeatable, space-separated */
static const char *parse_proxy_from(struct loader *ld, const struct key_def *k, void *obj,
                                    const char *value)
{
    (void)k;
    struct wr_server_cfg *s = obj;
    const char *rest = value;
    size_t before = s->n_proxy_from;
    for (struct wr_str w = next_word(&rest); w.len > 0; w = next_word(&rest)) {
        char buf[WORD_MAX];
        struct wr_cidr c;
        if (!word_copy(w, buf, sizeof(buf), false) || wr_cidr_parse(buf, &c) < 0)
            return fail(ld, "\"%.*s\" is not an address or range (192.0.2.7, 10.0.0.0/8, "
                            "2001:db8::/32)", (int)w.len, w.ptr);
        struct wr_cidr *more = grow_array(ld, s->proxy_from, s->n_proxy_from, sizeof(*more));
        if (more == NULL)
            return OOM_MSG;
        s->proxy_from = more;
        more[s->n_proxy_from++] = c;
    }
    return s->n_proxy_from == before ? "no address given" : NULL;
}

static bool is_unspecified(const struct wr_listen_addr *a);

/* resolver = IPv4:PORT | [IPv6]:PORT ...: repeatable, space-separated */
static const char *parse_resolvers(struct loader *ld, const struct key_def *k, void *obj,
                                   const char *value)
{
    (void)k;
    struct wr_server_cfg *s = obj;
    const char *rest = value;
    size_t before = s->n_resolvers;
    for (struct wr_str w = next_word(&rest); w.len > 0; w = next_word(&rest)) {
        char buf[WORD_MAX];
        struct wr_listen_addr a;
        if (!word_copy(w, buf, sizeof(buf), false) || wr_units_parse_listen(buf, &a) < 0 ||
            a.addr.ss_family == AF_UNIX || is_unspecified(&a))
            return fail(ld, "\"%.*s\" is not a nameserver address (IPv4:port or "
                            "[IPv6]:port, e.g. 127.0.0.1:53)", (int)w.len, w.ptr);
        struct wr_listen_addr *more = grow_array(ld, s->resolvers, s->n_resolvers, sizeof(*more));
        if (more == NULL)
            return OOM_MSG;
        s->resolvers = more;
        more[s->n_resolvers++] = a;
    }
    return s->n_resolvers == before ? "no address given" : NULL;
}

static const char *parse_workers(struct loader *ld, const struct key_def *k, void *obj,
                                 const char *value)
{
    struct wr_server_cfg *s = obj;
    uint64_t n;
    if (strcmp(value, "auto") == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        s->n_workers = cpus > 0 ? (unsigned)cpus : 1;
        return NULL;
    }
    if (parse_number(value, &n) < 0)
        return fail(ld, "\"%s\" is not a number or auto", value);
    if (n < k->min || n > k->max)
        return fail(ld, "\"%s\" is out of range: must be between %" PRIu64 " and %" PRIu64
                        ", or auto", value, k->min, k->max);
    s->n_workers = (unsigned)n;
    return NULL;
}

static const char *parse_server_header(struct loader *ld, const struct key_def *k, void *obj,
                                       const char *value)
{
    if (strcasecmp(value, "off") == 0)
        return set_string(ld, field_of(obj, k), NULL) < 0 ? OOM_MSG : NULL;
    return parse_string(ld, k, obj, value);
}

/* "stderr" or a path; "off" is refused: errors must go somewhere. */
static const char *parse_error_log(struct loader *ld, const struct key_def *k, void *obj,
                                   const char *value)
{
    if (strcmp(value, "stderr") == 0)
        return parse_string(ld, k, obj, value);
    if (strcmp(value, "off") == 0)
        return "cannot be off (a path or stderr)";
    return parse_path(ld, k, obj, value);
}

static const char *parse_access_log(struct loader *ld, const struct key_def *k, void *obj,
                                    const char *value)
{
    if (strcmp(value, "off") == 0)
        return set_string(ld, field_of(obj, k), NULL) < 0 ? OOM_MSG : NULL;
    if (strcmp(value, "stderr") == 0)
        return parse_string(ld, k, obj, value);
    return parse_path(ld, k, obj, value);
}

/* A route's access_log: off, or a path (or stderr) resolved like
 * [server]'s; which file it is gets settled by collect_route_logs. */
static const char *parse_route_access_log(struct loader *ld, const struct key_def *k, void *obj,
                                          const char *value)
{
    struct wr_route *r = obj;
    r->access_log_id = strcmp(value, "off") == 0 ? -1 : 0;
    r->access_log_line = ld->line;
    if (r->access_log_id < 0)
        return set_string(ld, field_of(obj, k), NULL) < 0 ? OOM_MSG : NULL;
    return parse_access_log(ld, k, obj, value);
}

/* combined, json, "json $var ..." or a template (log_format.h). */
static const char *parse_log_format(struct loader *ld, const struct key_def *k, void *obj,
                                    const char *value)
{
    struct wr_log_format *f = field_of(obj, k);
    wr_log_format_fini(f); /* the default, or an earlier line */
    const char *err = NULL;
    struct wr_str at;
    if (wr_log_format_compile(f, value, &err, &at) == 0)
        return NULL;
    if (at.len > 0)
        snprintf(ld->msg, sizeof(ld->msg), "%s: \"%.*s\"", err, (int)at.len, at.ptr);
    else
        snprintf(ld->msg, sizeof(ld->msg), "%s", err);
    wr_log_format_fini(f);
    return ld->msg;
}

/* ---- [tls] and [tls NAME] -------------------------------------------------- */

/* Another [tls NAME] already answering name, or NULL. */
static const struct wr_tls_cfg *tls_with_name(const struct wr_config *cfg,
                                              const struct wr_tls_cfg *self, struct wr_str name)
{
    for (size_t i = 0; i < cfg->n_tls; i++) {
        if (&cfg->tls[i] != self && has_string(cfg->tls[i].names, cfg->tls[i].n_names, name))
            return &cfg->tls[i];
    }
    return NULL;
}

static const char *parse_tls_names(struct loader *ld, const struct key_def *k, void *obj,
                                   const char *value)
{
    (void)k;
    struct wr_tls_cfg *t = obj;
    if (t->name == NULL)
        return "only for [tls NAME] sections; [tls] answers every other name";
    const char *rest = value;
    for (struct wr_str w = next_word(&rest); w.len > 0; w = next_word(&rest)) {
        char name[WORD_MAX];
        const char *msg = word_copy(w, name, sizeof(name), true) ? check_host_name(name, true)
                                                                 : "too long";
        if (msg != NULL)
            return fail(ld, "\"%.*s\": %s", (int)w.len, w.ptr, msg);
        struct wr_str lower = wr_str_from_cstr(name);
        const struct wr_tls_cfg *other = tls_with_name(ld->cfg, t, lower);
        if (other != NULL)
            return fail(ld, "\"%s\" is already a name of [tls %s]", name, other->name);
        if (!has_string(t->names, t->n_names, lower) &&
            push_string(ld, &t->names, &t->n_names, lower) < 0)
            return OOM_MSG;
    }
    return NULL;
}

/* cert and key lines: each adds a path; the i-th cert goes with the i-th key. */
static const char *parse_tls_file(struct loader *ld, const struct key_def *k, void *obj,
                                  const char *value)
{
    struct wr_tls_cfg *t = obj;
    bool is_cert = strcmp(k->name, "cert") == 0;
    char ***paths = is_cert ? &t->certs : &t->keys;
    size_t *n = is_cert ? &t->n_certs : &t->n_keys;
    if (*n == WR_TLS_MAX_CERTS)
        return fail(ld, "at most %d per section (one per key type)", WR_TLS_MAX_CERTS);
    char buf[PATH_MAX];
    const char *path = absolute_path(ld, value, buf, sizeof(buf));
    if (path == NULL)
        return ld->msg;
    (is_cert ? t->cert_lines : t->key_lines)[*n] = ld->line;
    return push_string(ld, paths, n, wr_str_from_cstr(path)) < 0 ? OOM_MSG : NULL;
}

/* Each word of value must be one of good; refused[] get "not supported". */
static const char *check_words(struct loader *ld, const char *value, const char *const *good,
                               const char *const *refused, const char *why)
{
    const char *rest = value;
    for (struct wr_str w = next_word(&rest); w.len > 0; w = next_word(&rest)) {
        bool ok = false;
        for (const char *const *g = good; *g != NULL; g++)
            ok = ok || wr_str_eq(w, wr_str_from_cstr(*g));
        for (const char *const *r = refused; *r != NULL && !ok; r++) {
            if (wr_str_eq(w, wr_str_from_cstr(*r)))
                return fail(ld, "%.*s is not supported%s", (int)w.len, w.ptr, why);
        }
        if (!ok)
            return fail(ld, "unknown protocol \"%.*s\"", (int)w.len, w.ptr);
    }
    return NULL;
}

static const char *parse_protocols(struct loader *ld, const struct key_def *k, void *obj,
                                   const char *value)
{
    static const char *const good[] = {"TLSv1.2", "TLSv1.3", NULL};
    /* RFC 8996: TLS 1.0 and 1.1 are deprecated. */
    static const char *const refused[] = {"SSLv3", "TLSv1", "TLSv1.0", "TLSv1.1", NULL};
    const char *msg = check_words(ld, value, good, refused, " (use TLSv1.2 and/or TLSv1.3)");
    return msg != NULL ? msg : parse_string(ld, k, obj, value);
}

static const char *parse_alpn(struct loader *ld, const struct key_def *k, void *obj,
                              const char *value)
{
    static const char *const good[] = {"h2", "http/1.1", NULL};
    /* h2c is never negotiated by ALPN (RFC 9113 §3.2); HTTP/1.0 has no id. */
    static const char *const refused[] = {"h2c", "http/1.0", NULL};
    const char *msg = check_words(ld, value, good, refused, " (h2 and/or http/1.1)");
    return msg != NULL ? msg : parse_string(ld, k, obj, value);
}

/* ---- [upstream NAME] ------------------------------------------------------- */

static bool is_unspecified(const struct wr_listen_addr *a)
{
    if (a->addr.ss_family == AF_INET)
        return ((const struct sockaddr_in *)&a->addr)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (a->addr.ss_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a->addr)->sin6_addr);
    return false;
}

/* "name:port" with a letter in the name (an IPv4 address has none). */
static bool looks_like_host_name(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || s[0] == '[' || strncmp(s, "unix:", 5) == 0)
        return false;
    for (const char *p = s; p < colon; p++) {
        if (isalpha((unsigned char)*p))
            return true;
    }
    return false;
}

/* Appends one server to u; label and authority are copied. */
static int add_server(struct loader *ld, struct wr_upstream_cfg *u,
                      const struct wr_upstream_server_cfg *srv, const char *label,
                      const char *authority)
{
    struct wr_upstream_server_cfg *more = grow_array(ld, u->servers, u->n_servers, sizeof(*more));
    if (more == NULL)
        return -1;
    u->servers = more;
    struct wr_upstream_server_cfg *s = &more[u->n_servers];
    *s = *srv;
    s->label = dup_mem(ld, label, strlen(label));
    s->authority = dup_mem(ld, authority, strlen(authority));
    u->n_servers++; /* counted even half-built, so config_free frees what was copied */
    return s->label != NULL && s->authority != NULL ? 0 : -1;
}

/*
 * "name:port": every address the resolver returns becomes a server with the
 * line's weight, as nginx does. Here the line only leaves a placeholder
 * (is_named, addr_len 0): names are resolved once the whole file is read
 * (resolve_named_servers), when `[server] resolver` is known wherever it
 * stands. Resolution happens at each load, so a reload picks up DNS
 * changes; between loads, the upstream's `resolve` (resolve.h) does.
 */
static const char *add_named_servers(struct loader *ld, struct wr_upstream_cfg *u,
                                     struct wr_upstream_server_cfg *srv, const char *text)
{
    const char *colon = strrchr(text, ':');
    char host[WORD_MAX];
    uint64_t port;
    if (parse_number(colon + 1, &port) < 0 || port < 1 || port > 65535)
        return fail(ld, "\"%s\" is not an address (port 1..65535)", text);
    if (!word_copy((struct wr_str){text, (size_t)(colon - text)}, host, sizeof(host), true) ||
        check_host_name(host, false) != NULL)
        return fail(ld, "\"%s\" is not an address (IPv4:port, [IPv6]:port, name:port or "
                        "unix:/path)", text);
    if (ld->resolve == NULL)
        return fail(ld, "\"%s\": host names are not resolved here; use an IP address, "
                        "localhost or unix:/path", text);
    srv->addr = (struct wr_listen_addr){0};
    srv->is_named = true;
    return add_server(ld, u, srv, text, text) < 0 ? OOM_MSG : NULL;
}

/*
 * A server address: what wr_units_parse_listen takes, "localhost:PORT"
 * (RFC 6761 §6.3: always loopback; taken as 127.0.0.1 without a lookup, so
 * it never turns into two servers, ::1 and 127.0.0.1), or "name:PORT",
 * resolved by ld->resolve.
 */
static const char *add_servers(struct loader *ld, struct wr_upstream_cfg *u,
                               struct wr_upstream_server_cfg *srv, struct wr_str w)
{
    char buf[WORD_MAX];
    if (!word_copy(w, buf, sizeof(buf), false))
        return "address too long";
    if (strncmp(buf, "localhost:", 10) == 0) {
        char v4[WORD_MAX];
        snprintf(v4, sizeof(v4), "127.0.0.1:%s", buf + 10);
        if (wr_units_parse_listen(v4, &srv->addr) < 0)
            return fail(ld, "\"%s\" is not an address (port 1..65535)", buf);
        return add_server(ld, u, srv, srv->addr.text, buf) < 0 ? OOM_MSG : NULL;
    }
    if (wr_units_parse_listen(buf, &srv->addr) == 0) {
        if (is_unspecified(&srv->addr))
            return fail(ld, "\"%s\" is not a server address", buf);
        const char *authority = srv->addr.addr.ss_family == AF_UNIX ? "localhost"
                                                                     : srv->addr.text;
        return add_server(ld, u, srv, srv->addr.text, authority) < 0 ? OOM_MSG : NULL;
    }
    if (looks_like_host_name(buf))
        return add_named_servers(ld, u, srv, buf);
    return fail(ld, "\"%s\" is not an address (IPv4:port, [IPv6]:port, name:port or "
                    "unix:/path)", buf);
}

static const char *parse_upstream_server(struct loader *ld, const struct key_def *k, void *obj,
                                         const char *value)
{
    (void)k;
    struct wr_upstream_cfg *u = obj;
    const char *rest = value;
    struct wr_str addr = next_word(&rest);
    struct wr_upstream_server_cfg srv = {.weight = 1, .line = ld->line};
    /* Options first: a bad one is reported before any lookup is made. */
    for (struct wr_str w = next_word(&rest); w.len > 0; w = next_word(&rest)) {
        char opt[WORD_MAX];
        uint64_t weight;
        if (!word_copy(w, opt, sizeof(opt), false) || strncmp(opt, "weight=", 7) != 0)
            return fail(ld, "unknown option \"%.*s\" (only weight=N)", (int)w.len, w.ptr);
        if (parse_number(opt + 7, &weight) < 0 || weight < 1 || weight > 100)
            return fail(ld, "\"%s\": weight must be a number from 1 to 100", opt);
        srv.weight = (unsigned)weight;
    }
    return add_servers(ld, u, &srv, addr);
}

/* The default resolver: getaddrinfo, TCP, any family; duplicates dropped. */
int wr_config_resolve_getaddrinfo(const char *host, uint16_t port, struct wr_listen_addr *out,
                                  size_t cap, const char **why)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_protocol = IPPROTO_TCP};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        *why = gai_strerror(rc);
        return -1;
    }
    size_t n = 0;
    for (const struct addrinfo *ai = res; ai != NULL && n < cap; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        char num[INET6_ADDRSTRLEN], text[sizeof(num) + 16];
        const void *a = ai->ai_family == AF_INET
                            ? (const void *)&((const struct sockaddr_in *)ai->ai_addr)->sin_addr
                            : (const void *)&((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        if (inet_ntop(ai->ai_family, a, num, sizeof(num)) == NULL)
            continue;
        snprintf(text, sizeof(text), ai->ai_family == AF_INET ? "%s:%u" : "[%s]:%u", num,
                 (unsigned)port);
        if (wr_units_parse_listen(text, &out[n]) < 0)
            continue; /* a scoped v6 address (fe80::1%eth0) is not taken */
        bool is_dup = false;
        for (size_t i = 0; i < n && !is_dup; i++)
            is_dup = strcmp(out[i].text, out[n].text) == 0;
        n += !is_dup;
    }
    freeaddrinfo(res);
    if (n == 0)
        *why = "no IPv4 or IPv6 address";
    return n > 0 ? (int)n : -1;
}

/* resolve = off | DURATION (at least k->min: the floor of resolve.h) */
static const char *parse_resolve(struct loader *ld, const struct key_def *k, void *obj,
                                 const char *value)
{
    if (strcmp(value, "off") == 0) {
        *(uint64_t *)field_of(obj, k) = 0;
        return NULL;
    }
    uint64_t ms;
    if (wr_units_parse_duration(value, &ms) < 0 || ms < k->min)
        return fail(ld, "\"%s\" is not off or a duration of 1s or more (e.g. 30s, 5m)", value);
    *(uint64_t *)field_of(obj, k) = ms;
    return NULL;
}

static const char *parse_hash_key(struct loader *ld, const struct key_def *k, void *obj,
                                  const char *value)
{
    static const char *const prefixes[] = {"header:", "cookie:"};
    bool ok = strcmp(value, "client_ip") == 0 || strcmp(value, "uri") == 0;
    for (size_t i = 0; i < 2 && !ok; i++) {
        size_t n = strlen(prefixes[i]);
        ok = strncmp(value, prefixes[i], n) == 0 && is_token(wr_str_from_cstr(value + n));
    }
    if (!ok)
        return fail(ld, "\"%s\" is not client_ip, uri, header:NAME or cookie:NAME", value);
    const char *why = parse_string(ld, k, obj, value);
    if (why == NULL)
        wr_upstream_cfg_compile_hash_key(obj);
    return why;
}

void wr_upstream_cfg_compile_hash_key(struct wr_upstream_cfg *u)
{
    const char *k = u->hash_key != NULL ? u->hash_key : "client_ip";
    u->hash_name = (struct wr_str){NULL, 0};
    if (strcmp(k, "uri") == 0) {
        u->hash_kind = WR_HASH_KEY_URI;
    } else if (strncmp(k, "header:", 7) == 0 || strncmp(k, "cookie:", 7) == 0) {
        u->hash_kind = k[0] == 'h' ? WR_HASH_KEY_HEADER : WR_HASH_KEY_COOKIE;
        u->hash_name = wr_str_from_cstr(k + 7);
    } else {
        u->hash_kind = WR_HASH_KEY_CLIENT_IP;
    }
}

static const char *parse_health_check(struct loader *ld, const struct key_def *k, void *obj,
                                      const char *value)
{
    (void)k;
    struct wr_upstream_cfg *u = obj;
    const char *rest = value;
    struct wr_str method = next_word(&rest);
    struct wr_str path = next_word(&rest);
    if (!is_token(method) || path.len == 0 || path.ptr[0] != '/' || next_word(&rest).len > 0)
        return fail(ld, "\"%s\" must be METHOD /path, e.g. GET /healthz", value);
    char *text = format_new("%.*s %.*s", (int)method.len, method.ptr, (int)path.len, path.ptr);
    if (text == NULL)
        return OOM_MSG;
    free(u->health_check);
    u->health_check = text;
    return NULL;
}

/* tls_ca: a path; its line goes with it, for the error tls.c may report
 * when the file cannot be used. */
static const char *parse_tls_ca(struct loader *ld, const struct key_def *k, void *obj,
                                const char *value)
{
    ((struct wr_upstream_cfg *)obj)->tls_ca_line = ld->line;
    return parse_path(ld, k, obj, value);
}

static const char *parse_sni(struct loader *ld, const struct key_def *k, void *obj,
                             const char *value)
{
    char name[WORD_MAX];
    const char *msg = word_copy(wr_str_from_cstr(value), name, sizeof(name), true)
                          ? check_host_name(name, false)
                          : "too long";
    if (msg != NULL)
        return fail(ld, "\"%s\": %s", value, msg);
    return parse_string(ld, k, obj, name);
}

/* ---- [route NAME]: match, host, methods ------------------------------------ */

static const char *compile_regex(struct loader *ld, struct wr_route *r, const char *pattern)
{
    int code;
    PCRE2_SIZE offset;
    /* Plain bytes, no UTF: paths are bytes after percent-decoding, and a
     * UTF pattern would reject (or need checks on) invalid UTF-8 subjects. */
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, 0, &code, &offset,
                                   NULL);
    if (re == NULL) {
        PCRE2_UCHAR why[256];
        if (pcre2_get_error_message(code, why, sizeof(why)) < 0)
            snprintf((char *)why, sizeof(why), "error %d", code);
        return fail(ld, "bad regex: %s at offset %zu", (const char *)why, (size_t)offset);
    }
    /* JIT only speeds matching up: where it is unavailable (no JIT support,
     * an SELinux W^X policy) pcre2_match interprets, so failure is fine. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    uint32_t n = 0;
    pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &n);
    r->regex = re;
    r->n_regex_captures = n;
    /* pcre2_jit_match skips pcre2_match's checks: it needs JIT code, and it
     * does not validate UTF-8, which a path may well not be. So the router
     * uses it only for a pattern with JIT code that is not UTF or copes
     * with invalid UTF; decided here, not per request. */
    size_t jit_size = 0;
    uint32_t opts = 0;
    r->is_regex_jit = pcre2_pattern_info(re, PCRE2_INFO_JITSIZE, &jit_size) == 0 && jit_size > 0 &&
                      pcre2_pattern_info(re, PCRE2_INFO_ALLOPTIONS, &opts) == 0 &&
                      ((opts & PCRE2_UTF) == 0 || (opts & PCRE2_MATCH_INVALID_UTF) != 0);
    size_t cap = strlen(pattern);
    r->literal = malloc(cap + 1);
    if (r->literal == NULL)
        return fail(ld, "%s", OOM_MSG);
    r->literal_len = wr_route_regex_literal(pattern, r->literal, cap);
    r->literal[r->literal_len] = '\0';
    return NULL;
}

/* Paths are matched after normalisation (path.c), so these could never match. */
static const char *check_match_path(struct loader *ld, const char *path, bool is_exact)
{
    /* exact:* is the asterisk-form of a server-wide OPTIONS (RFC 9112 §3.2.4). */
    if (is_exact && strcmp(path, "*") == 0)
        return NULL;
    if (path[0] != '/')
        return fail(ld, "\"%s\" must start with /", path);
    size_t len = strlen(path);
    if (strstr(path, "//") != NULL || strstr(path, "/./") != NULL ||
        strstr(path, "/../") != NULL || (len >= 2 && strcmp(path + len - 2, "/.") == 0) ||
        (len >= 3 && strcmp(path + len - 3, "/..") == 0))
        return fail(ld, "\"%s\" never matches: request paths are normalised (no //, /./ or "
                        "/../)", path);
    return NULL;
}

static const char *parse_match(struct loader *ld, const struct key_def *k, void *obj,
                               const char *value)
{
    (void)k;
    static const struct {
        const char *prefix;
        enum wr_route_match_kind kind;
    } kinds[] = {{"exact:", WR_ROUTE_EXACT}, {"prefix:", WR_ROUTE_PREFIX}, {"regex:", WR_ROUTE_REGEX}};
    struct wr_route *r = obj;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        size_t n = strlen(kinds[i].prefix);
        if (strncmp(value, kinds[i].prefix, n) != 0)
            continue;
        const char *pattern = value + n;
        if (*pattern == '\0')
            return "empty pattern";
        const char *msg = kinds[i].kind == WR_ROUTE_REGEX
                              ? compile_regex(ld, r, pattern)
                              : check_match_path(ld, pattern, kinds[i].kind == WR_ROUTE_EXACT);
        if (msg != NULL)
            return msg;
        r->pattern = dup_mem(ld, pattern, strlen(pattern));
        if (r->pattern == NULL)
            return OOM_MSG;
        r->pattern_len = strlen(pattern);
        r->match_kind = kinds[i].kind;
        return NULL;
    }
    return fail(ld, "\"%s\" must be exact:PATH, prefix:PATH or regex:PATTERN", value);
}

static const char *parse_host(struct loader *ld, const struct key_def *k, void *obj,
                              const char *value)
{
    (void)k;
    struct wr_route *r = obj;
    const char *rest = value;
    for (struct wr_str w = next_word(&rest); w.len > 0; w = next_word(&rest)) {
        char name[WORD_MAX];
        const char *msg = word_copy(w, name, sizeof(name), true) ? check_host_name(name, true)
                                                                 : "too long";
        if (msg != NULL)
            return fail(ld, "\"%.*s\": %s", (int)w.len, w.ptr, msg);
        struct wr_str lower = wr_str_from_cstr(name);
        if (!has_string(r->hosts, r->n_hosts, lower) &&
            push_string(ld, &r->hosts, &r->n_hosts, lower) < 0)
            return OOM_MSG;
    }
    return NULL;
}

/* "GET, HEAD, X": known methods in enum order, then the others as given. */
static char *build_allow(struct loader *ld, const struct wr_route *r)
{
    size_t cap = 1;
    for (unsigned m = 1; m < WR_HTTP_N_METHODS; m++)
        cap += strlen(wr_http_method_name((enum wr_http_method)m)) + 2;
    for (size_t i = 0; i < r->n_other_methods; i++)
        cap += strlen(r->other_methods[i]) + 2;
    char *allow = malloc(cap);
    if (allow == NULL) {
        ld->is_oom = true;
        return NULL;
    }
    size_t len = 0;
    allow[0] = '\0';
    for (unsigned m = 1; m < WR_HTTP_N_METHODS; m++) {
        if (r->method_mask & (1u << m))
            len += (size_t)snprintf(allow + len, cap - len, "%s%s", len > 0 ? ", " : "",
                                    wr_http_method_name((enum wr_http_method)m));
    }
    for (size_t i = 0; i < r->n_other_methods; i++)
        len += (size_t)snprintf(allow + len, cap - len, "%s%s", len > 0 ? ", " : "",
                                r->other_methods[i]);
    return allow;
}

/* Method names are case-sensitive (RFC 9110 §9.1): "get" is some other
 * method, which is almost certainly not what was meant. */
static const char *check_method_case(struct loader *ld, struct wr_str w)
{
    char upper[16];
    if (w.len >= sizeof(upper))
        return NULL;
    for (size_t i = 0; i < w.len; i++)
        upper[i] = (char)toupper((unsigned char)w.ptr[i]);
    struct wr_str u = {upper, w.len};
    if (wr_http_method_from(u) == WR_HTTP_OTHER)
        return NULL;
    return fail(ld, "\"%.*s\": method names are case-sensitive; did you mean %.*s?", (int)w.len,
                w.ptr, (int)w.len, upper);
}

static const char *parse_methods(struct loader *ld, const struct key_def *k, void *obj,
                                 const char *value)
{
    (void)k;
    struct wr_route *r = obj;
    const char *rest = value;
    for (struct wr_str w = next_word(&rest); w.len > 0; w = next_word(&rest)) {
        if (!is_token(w))
            return fail(ld, "\"%.*s\" is not a method name", (int)w.len, w.ptr);
        /* The parser refuses longer methods (400): such a route could never match. */
        if (w.len > WR_HTTP_METHOD_MAX)
            return fail(ld, "\"%.*s\": longer than %d bytes, the longest method weir accepts",
                        (int)w.len, w.ptr, WR_HTTP_METHOD_MAX);
        enum wr_http_method m = wr_http_method_from(w);
        /* CONNECT is always answered 405 before routing. */
        if (m == WR_HTTP_CONNECT)
            return fail(ld, "CONNECT: weir is not a forward proxy (CONNECT gets 405)");
        if (m != WR_HTTP_OTHER && (unsigned)m < WR_HTTP_N_METHODS) {
            r->method_mask |= 1u << m;
            /* RFC 9110 §9.3.2: HEAD is GET without the content. */
            if (m == WR_HTTP_GET)
                r->method_mask |= 1u << WR_HTTP_HEAD;
            continue;
        }
        const char *msg = check_method_case(ld, w);
        if (msg != NULL)
            return msg;
        if (!has_string(r->other_methods, r->n_other_methods, w) &&
            push_string(ld, &r->other_methods, &r->n_other_methods, w) < 0)
            return OOM_MSG;
    }
    free(r->allow);
    r->allow = build_allow(ld, r);
    return r->allow == NULL ? OOM_MSG : NULL;
}

/* ---- [route NAME]: actions ------------------------------------------------- */

static const char *parse_root(struct loader *ld, const struct key_def *k, void *obj,
                              const char *value)
{
    (void)k;
    struct wr_route *r = obj;
    struct stat st;
    char buf[PATH_MAX];
    const char *path = absolute_path(ld, value, buf, sizeof(buf));
    if (path == NULL)
        return ld->msg;
    /* Checked at load so a typo fails `weir -t` instead of every request. */
    if (stat(path, &st) != 0)
        return fail(ld, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return fail(ld, "%s: %s", path, strerror(ENOTDIR));
    return set_string(ld, &r->root, path) < 0 ? OOM_MSG : NULL;
}

/* Resolved to an [upstream] once the whole file is read. */
static const char *parse_proxy(struct loader *ld, const struct key_def *k, void *obj,
                               const char *value)
{
    (void)k;
    struct wr_route *r = obj;
    return set_string(ld, &r->proxy, value) < 0 ? OOM_MSG : NULL;
}

/* Largest rate and burst accepted: beyond them a limit means nothing. */
#define RATE_MAX 1000000u

/* "N" of "Nr/s" / "Nr/m" as a number and the period in microseconds. */
static const char *parse_rate_word(struct loader *ld, struct wr_str w, uint64_t *n,
                                   uint64_t *period_us)
{
    char buf[32];
    if (w.len < 4 || !word_copy(w, buf, sizeof(buf), true))
        return fail(ld, "\"%.*s\" is not a rate (e.g. 100r/s, 30r/m)", (int)w.len, w.ptr);
    const char *unit = buf + w.len - 3;
    if (strcmp(unit, "r/s") != 0 && strcmp(unit, "r/m") != 0)
        return fail(ld, "\"%.*s\" is not a rate (e.g. 100r/s, 30r/m)", (int)w.len, w.ptr);
    *period_us = unit[2] == 's' ? 1000000u : 60000000u;
    buf[w.len - 3] = '\0';
    if (parse_number(buf, n) < 0)
        return fail(ld, "\"%.*s\" is not a rate (e.g. 100r/s, 30r/m)", (int)w.len, w.ptr);
    if (*n < 1 || *n > RATE_MAX)
        return fail(ld, "rate %s must be between 1 and %u requests", buf, RATE_MAX);
    return NULL;
}

/* rate_limit = Nr/s|Nr/m [burst=M]: M defaults to N (one period's worth). */
static const char *parse_rate_limit(struct loader *ld, const struct key_def *k, void *obj,
                                    const char *value)
{
    (void)k;
    struct wr_route *r = obj;
    const char *rest = value;
    uint64_t n = 0, period_us = 0;
    const char *msg = parse_rate_word(ld, next_word(&rest), &n, &period_us);
    if (msg)
        return msg;
    uint64_t burst = n;
    struct wr_str w = next_word(&rest);
    if (w.len > 0) {
        char buf[32];
        if (w.len <= 6 || strncmp(w.ptr, "burst=", 6) != 0 ||
            !word_copy((struct wr_str){w.ptr + 6, w.len - 6}, buf, sizeof(buf), false) ||
            parse_number(buf, &burst) < 0)
            return fail(ld, "\"%.*s\" should be burst=N", (int)w.len, w.ptr);
        if (burst < 1 || burst > RATE_MAX)
            return fail(ld, "burst %s must be between 1 and %u", buf, RATE_MAX);
        if (next_word(&rest).len > 0)
            return fail(ld, "\"%s\" must be RATE [burst=N], e.g. 100r/s burst=200", value);
    }
    /* The refill step is whole microseconds: at most 1e6 r/s, so >= 1. */
    r->rate_limit.interval_us = period_us / n;
    r->rate_limit.burst = burst;
    return NULL;
}

/* "NNN" then the end or one blank; *rest is what follows. Returns 0 or -1. */
static int parse_status(const char *value, int *status, const char **rest)
{
    for (int i = 0; i < 3; i++) {
        if (value[i] < '0' || value[i] > '9')
            return -1;
    }
    if (value[3] != '\0' && !is_blank(value[3]))
        return -1;
    *status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
    *rest = value[3] != '\0' ? value + 4 : value + 3;
    return 0;
}

static const char *parse_redirect(struct loader *ld, const struct key_def *k, void *obj,
                                  const char *value)
{
    (void)k;
    struct wr_route *r = obj;
    int status;
    const char *target;
    if (parse_status(value, &status, &target) < 0)
        return fail(ld, "\"%s\" must be STATUS TARGET, e.g. 301 https://example.org/", value);
    if (status != 301 && status != 302 && status != 303 && status != 307 && status != 308)
        return fail(ld, "status %d is not a redirect (301, 302, 303, 307 or 308)", status);
    while (is_blank(*target))
        target++;
    if (*target == '\0')
        return "missing target after the status";
    if (strpbrk(target, " \t") != NULL)
        return "the target must not contain spaces";
    const char *err;
    wr_tmpl_fini(&r->redirect_target);
    if (wr_tmpl_init(&r->redirect_target, target, &err) < 0)
        return fail(ld, "%s", err);
    r->status = status;
    return NULL;
}

/* The body is the rest after one blank, taken literally (no variables, no escapes). */
static const char *parse_return(struct loader *ld, const struct key_def *k, void *obj,
                                const char *value)
{
    (void)k;
    struct wr_route *r = obj;
    int status;
    const char *body;
    if (parse_status(value, &status, &body) < 0)
        return fail(ld, "\"%s\" must be STATUS [BODY], e.g. 200 ok", value);
    if (status < 200 || status > 599)
        return fail(ld, "status %d must be between 200 and 599", status);
    /* RFC 9110 §15.3.5, §15.4.5: these responses cannot carry content. */
    if ((status == 204 || status == 304) && *body != '\0')
        return fail(ld, "status %d has no body", status);
    if (set_string(ld, &r->return_body, body) < 0)
        return OOM_MSG;
    r->return_body_len = strlen(body);
    r->status = status;
    return NULL;
}

/* A Content-Type value: type/subtype, then parameters after ';' (RFC
 * 9110 §8.3.1); control bytes were refused before. */
static const char *parse_media_type(struct loader *ld, const struct key_def *k, void *obj,
                                    const char *value)
{
    size_t n = strcspn(value, ";");
    while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
        n--;
    const char *slash = memchr(value, '/', n);
    bool is_ok = slash && slash > value && slash < value + n - 1 &&
                 !memchr(slash + 1, '/', n - (size_t)(slash + 1 - value)) &&
                 strcspn(value, " \t") >= n;
    if (!is_ok)
        return fail(ld, "\"%s\" is not a media type (type/subtype, e.g. application/json)",
                    value);
    return parse_string(ld, k, obj, value);
}

/* ---- [route NAME]: static and proxy keys ------------------------------------ */

static const char *parse_strip_prefix(struct loader *ld, const struct key_def *k, void *obj,
                                      const char *value)
{
    if (value[0] != '/')
        return fail(ld, "\"%s\" must start with /", value);
    return parse_string(ld, k, obj, value);
}

static const char *parse_index(struct loader *ld, const struct key_def *k, void *obj,
                               const char *value)
{
    if (strchr(value, '/') != NULL || strcmp(value, ".") == 0 || strcmp(value, "..") == 0)
        return fail(ld, "\"%s\" must be a file name, without /", value);
    return parse_string(ld, k, obj, value);
}

static const char *parse_expires(struct loader *ld, const struct key_def *k, void *obj,
                                 const char *value)
{
    struct wr_route *r = obj;
    const char *msg = parse_duration(ld, k, obj, value);
    r->has_expires = msg == NULL;
    return msg;
}

static const char *parse_rewrite(struct loader *ld, const struct key_def *k, void *obj,
                                 const char *value)
{
    (void)k;
    struct wr_route *r = obj;
    const char *err;
    if (value[0] != '/' && value[0] != '$')
        return fail(ld, "\"%s\" must be a path (start with / or a variable)", value);
    wr_tmpl_fini(&r->rewrite);
    if (wr_tmpl_init(&r->rewrite, value, &err) < 0)
        return fail(ld, "%s", err);
    return NULL;
}

/* Hop-by-hop (RFC 9110 §7.6.1) and framing fields: weir writes these itself,
 * and a configured copy could desynchronise the message framing. */
static bool is_managed_header(struct wr_str name)
{
    static const char *const managed[] = {"connection", "content-length", "keep-alive",
                                          "proxy-connection", "te", "trailer",
                                          "transfer-encoding", "upgrade"};
    for (size_t i = 0; i < sizeof(managed) / sizeof(managed[0]); i++) {
        if (wr_str_eq_nocase(name, wr_str_from_cstr(managed[i])))
            return true;
    }
    return false;
}

/* "Name: value" appended to *arr; the value is a template. */
static const char *parse_header(struct loader *ld, const struct key_def *k, const char *value,
                                struct wr_header_cfg **arr, size_t *n)
{
    const char *colon = strchr(value, ':');
    if (colon == NULL)
        return fail(ld, "\"%s\" must be \"Name: value\"", value);
    struct wr_str name = wr_str_trim((struct wr_str){value, (size_t)(colon - value)});
    if (!is_token(name))
        return fail(ld, "\"%.*s\" is not a header name", (int)name.len, name.ptr);
    if (is_managed_header(name))
        return fail(ld, "%.*s is managed by weir and cannot be set", (int)name.len, name.ptr);
    const char *v = colon + 1;
    while (is_blank(*v))
        v++;
    struct wr_header_cfg h = {0};
    const char *err;
    if (wr_tmpl_init(&h.value, v, &err) < 0)
        return fail(ld, "%s", err);
    struct tmpl_use *uses = grow_array(ld, ld->uses, ld->n_uses, sizeof(*uses));
    if (uses != NULL)
        ld->uses = uses;
    struct wr_header_cfg *more = uses != NULL ? grow_array(ld, *arr, *n, sizeof(*more)) : NULL;
    if (more != NULL)
        *arr = more;
    h.name = dup_mem(ld, name.ptr, name.len);
    if (more == NULL || h.name == NULL) {
        free(h.name);
        wr_tmpl_fini(&h.value);
        return OOM_MSG;
    }
    more[(*n)++] = h;
    uses[ld->n_uses++] = (struct tmpl_use){ld->line, k->name, h.value.max_capture};
    return NULL;
}

static const char *parse_set_header(struct loader *ld, const struct key_def *k, void *obj,
                                    const char *value)
{
    struct wr_route *r = obj;
    return parse_header(ld, k, value, &r->set_headers, &r->n_set_headers);
}

/* Fields that carry one value (RFC 9110 and friends): an add_header of one
 * of these replaces the upstream's instead of sending a second. */
static bool is_singleton_field(struct wr_str name)
{
    static const char *const singletons[] = {
        "age", "content-location", "content-range", "content-type", "date", "etag",
        "expires", "last-modified", "location", "retry-after", "server",
        "access-control-allow-origin", "strict-transport-security", "x-frame-options",
        "x-content-type-options", "referrer-policy"};
    for (size_t i = 0; i < sizeof(singletons) / sizeof(singletons[0]); i++) {
        if (wr_str_eq_nocase(name, wr_str_from_cstr(singletons[i])))
            return true;
    }
    return false;
}

/* add_header / set_response_header = "Name: value [always]". Known here,
 * once, so that no response compares names: a field weir writes itself
 * (Content-Type, Cache-Control, Server...) that the route sets is dropped
 * from weir's answer and the route's value replaces it (http_resp.h);
 * "always" extends the rule from answers below 400 to every answer. */
static const char *parse_response_header(struct loader *ld, const struct key_def *k, void *obj,
                                         const char *value, bool is_replace)
{
    struct wr_route *r = obj;
    size_t len = strlen(value);
    bool is_always = len > 7 && strcmp(value + len - 6, "always") == 0 &&
                     is_blank(value[len - 7]);
    if (is_always) {
        len -= 6;
        while (len > 0 && is_blank(value[len - 1]))
            len--;
    }
    char *text = dup_mem(ld, value, len);
    if (!text)
        return OOM_MSG;
    const char *err = parse_header(ld, k, text, &r->add_headers, &r->n_add_headers);
    free(text);
    if (err != NULL)
        return err;
    struct wr_header_cfg *h = &r->add_headers[r->n_add_headers - 1];
    struct wr_str name = wr_str_from_cstr(h->name);
    h->is_always = is_always;
    h->is_replace = is_replace || is_singleton_field(name);
    enum wr_http_field f = wr_http_field_from(name);
    if (f != WR_HTTP_N_FIELDS) {
        r->replaced_fields |= 1u << f;
        if (is_always)
            r->replaced_fields_always |= 1u << f;
    }
    return NULL;
}

static const char *parse_add_header(struct loader *ld, const struct key_def *k, void *obj,
                                    const char *value)
{
    return parse_response_header(ld, k, obj, value, false);
}

static const char *parse_set_response_header(struct loader *ld, const struct key_def *k,
                                             void *obj, const char *value)
{
    return parse_response_header(ld, k, obj, value, true);
}

/* hide_header = NAME: a field the client never sees, the upstream's or
 * weir's own (framing fields excepted: weir needs them). */
static const char *parse_hide_header(struct loader *ld, const struct key_def *k, void *obj,
                                     const char *value)
{
    (void)k;
    struct wr_route *r = obj;
    struct wr_str name = wr_str_trim(wr_str_from_cstr(value));
    if (!is_token(name))
        return fail(ld, "\"%s\" is not a header name", value);
    if (is_managed_header(name))
        return fail(ld, "%.*s is managed by weir and cannot be hidden", (int)name.len, name.ptr);
    if (push_string(ld, &r->hide_headers, &r->n_hide_headers, name) < 0)
        return OOM_MSG;
    enum wr_http_field f = wr_http_field_from(name);
    if (f != WR_HTTP_N_FIELDS)
        r->hidden_fields |= 1u << f;
    return NULL;
}

/* ---- error_page --------------------------------------------------------------- */

/* A status code of error_page: 300..599 (an error or a redirect weir or an
 * upstream may answer), else -1. */
static int error_page_code(struct wr_str w)
{
    if (w.len != 3)
        return -1;
    int code = 0;
    for (size_t i = 0; i < 3; i++) {
        if (w.ptr[i] < '0' || w.ptr[i] > '9')
            return -1;
        code = code * 10 + (w.ptr[i] - '0');
    }
    return code >= 300 && code <= 599 ? code : -1;
}

/* error_page = CODE [CODE...] PATH, repeatable: each code gets PATH. A
 * code given twice in one section is an error rather than "the later
 * wins": a reader of the file should not have to know which line counts. */
static const char *parse_error_page_into(struct loader *ld, struct wr_error_pages *ep,
                                         const char *value)
{
    size_t len = strlen(value);
    while (len > 0 && is_blank(value[len - 1]))
        len--;
    size_t at = len;
    while (at > 0 && !is_blank(value[at - 1]))
        at--;
    struct wr_str path = {value + at, len - at};
    const char *rest = value;
    if (next_word(&rest).len == 0 || rest > value + at || path.len == 0)
        return fail(ld, "expects CODE... PATH (e.g. 404 500 /errors/page.html)");
    if (path.ptr[0] != '/')
        return fail(ld, "\"%.*s\": the page's path must start with /", (int)path.len, path.ptr);
    for (size_t i = 0; i < path.len; i++) {
        /* The path becomes a request-target: no byte a target cannot hold. */
        if ((unsigned char)path.ptr[i] < 0x21 || path.ptr[i] == 0x7f || path.ptr[i] == '#')
            return fail(ld, "\"%.*s\" is not a request path", (int)path.len, path.ptr);
    }
    rest = value;
    for (struct wr_str w = next_word(&rest); w.ptr < path.ptr; w = next_word(&rest)) {
        int code = error_page_code(w);
        if (code < 0)
            return fail(ld, "\"%.*s\" is not a status code from 300 to 599", (int)w.len, w.ptr);
        for (size_t i = 0; i < ep->n_pages; i++) {
            if (ep->pages[i].status == code)
                return fail(ld, "%d has a page already (one page per status)", code);
        }
        struct wr_error_page *more = grow_array(ld, ep->pages, ep->n_pages, sizeof(*more));
        if (more == NULL)
            return OOM_MSG;
        ep->pages = more;
        more[ep->n_pages].status = code;
        if ((more[ep->n_pages].path = dup_mem(ld, path.ptr, path.len)) == NULL)
            return OOM_MSG;
        ep->n_pages++;
    }
    return NULL;
}

static const char *parse_server_error_page(struct loader *ld, const struct key_def *k,
                                           void *obj, const char *value)
{
    (void)k;
    return parse_error_page_into(ld, &((struct wr_server_cfg *)obj)->error_pages, value);
}

static const char *parse_route_error_page(struct loader *ld, const struct key_def *k, void *obj,
                                          const char *value)
{
    (void)k;
    return parse_error_page_into(ld, &((struct wr_route *)obj)->error_pages, value);
}

static void free_error_pages(struct wr_error_pages *ep)
{
    if (ep->is_borrowed)
        return;
    for (size_t i = 0; i < ep->n_pages; i++)
        free(ep->pages[i].path);
    free(ep->pages);
}

/* A route without error_page lines of its own takes [server]'s, which may
 * come later in the file: known only once everything is read. */
static void resolve_error_pages(struct loader *ld)
{
    struct wr_config *cfg = ld->cfg;
    for (size_t i = 0; i < cfg->n_routes; i++) {
        struct wr_error_pages *ep = &cfg->routes[i].error_pages;
        if (ep->n_pages == 0)
            *ep = (struct wr_error_pages){cfg->server.error_pages.pages,
                                          cfg->server.error_pages.n_pages, true};
    }
}

/* ---- compression -------------------------------------------------------------- */

/* The codings named in value (space-separated), as a mask; order into
 * order[] (when not NULL, room for 3). Returns NULL or the error. */
static const char *parse_codings(struct loader *ld, const char *value, unsigned *mask,
                                 uint8_t *order, size_t *n_order)
{
    *mask = 0;
    size_t n = 0;
    const char *p = value;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ' ' && *p != '\t' && *p != ',')
            p++;
        if (p == start)
            break;
        struct wr_str name = {start, (size_t)(p - start)};
        int c = wr_coding_from_name(name);
        if (c <= WR_CODING_IDENTITY)
            return fail(ld, "\"%.*s\" is not a coding weir makes (gzip, br, zstd)",
                        (int)name.len, name.ptr);
        if (*mask & (1u << c))
            return fail(ld, "\"%.*s\" is listed twice", (int)name.len, name.ptr);
        *mask |= 1u << c;
        if (order)
            order[n++] = (uint8_t)c;
    }
    if (*mask == 0)
        return fail(ld, "no coding given (gzip, br, zstd)");
    if (n_order)
        *n_order = n;
    return NULL;
}

/* prefer = zstd br gzip: the server's order among equal q-values; codings
 * left out come last, in weir's default order. */
static const char *parse_prefer(struct loader *ld, const struct key_def *k, void *obj,
                                const char *value)
{
    (void)k;
    struct wr_compression_cfg *c = obj;
    unsigned mask;
    const char *msg = parse_codings(ld, value, &mask, c->prefer, &c->n_prefer);
    if (msg)
        return msg;
    static const uint8_t dflt[] = {WR_CODING_ZSTD, WR_CODING_BR, WR_CODING_GZIP};
    for (size_t i = 0; i < 3; i++) {
        if (!(mask & (1u << dflt[i])))
            c->prefer[c->n_prefer++] = dflt[i];
    }
    return NULL;
}

/* compress = on | off | gzip br zstd (a subset) */
static const char *parse_compress(struct loader *ld, const struct key_def *k, void *obj,
                                  const char *value)
{
    (void)k;
    struct wr_route *r = obj;
    bool is_on;
    if (wr_units_parse_bool(value, &is_on) == 0) {
        r->compress_mask = is_on ? WR_CODINGS_ALL : 0;
        return NULL;
    }
    const char *msg = parse_codings(ld, value, &r->compress_mask, NULL, NULL);
    return msg ? fail(ld, "\"%s\" is not on, off or a list of codings (gzip, br, zstd)", value)
               : NULL;
}

/* compress_types = text/html application/json ... (a subtype may be "*"
 * or "*+suffix", e.g. text/ * and application/ *+xml without the blanks) */
static const char *parse_compress_types(struct loader *ld, const struct key_def *k, void *obj,
                                        const char *value)
{
    (void)k;
    struct wr_route *r = obj;
    const char *p = value;
    size_t before = r->n_compress_types;
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *start = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        if (p == start)
            break;
        char type[128];
        size_t n = (size_t)(p - start);
        const char *slash = memchr(start, '/', n);
        if (n >= sizeof(type) || !slash || slash == start || slash + 1 == p)
            return fail(ld, "\"%.*s\" is not a media type (type/subtype, type/*, "
                            "type/*+suffix)", (int)n, start);
        for (size_t i = 0; i < n; i++)
            type[i] = (char)tolower((unsigned char)start[i]);
        if (push_string(ld, &r->compress_types, &r->n_compress_types,
                        (struct wr_str){type, n}) < 0)
            return OOM_MSG;
    }
    if (r->n_compress_types == before)
        return fail(ld, "no media type given");
    return NULL;
}

/* ---- access lists --------------------------------------------------------------- */

/* allow = / deny = ranges or "all", appended to *rules in file order. */
static const char *parse_access(struct loader *ld, struct wr_access_rule **rules, size_t *n,
                                const char *value, bool is_allow)
{
    const char *rest = value;
    size_t before = *n;
    for (struct wr_str w = next_word(&rest); w.len > 0; w = next_word(&rest)) {
        char buf[WORD_MAX];
        struct wr_access_rule r = {.is_allow = is_allow};
        if (!word_copy(w, buf, sizeof(buf), false))
            return fail(ld, "\"%.*s\" is too long", (int)w.len, w.ptr);
        if (strcmp(buf, "all") == 0)
            r.is_all = true;
        else if (wr_cidr_parse(buf, &r.range) < 0)
            return fail(ld, "\"%s\" is not an address, a range (10.0.0.0/8, 2001:db8::/32) "
                            "or all", buf);
        struct wr_access_rule *more = grow_array(ld, *rules, *n, sizeof(*more));
        if (more == NULL)
            return OOM_MSG;
        *rules = more;
        more[(*n)++] = r;
    }
    return *n == before ? "no address given" : NULL;
}

static const char *parse_route_allow(struct loader *ld, const struct key_def *k, void *obj,
                                     const char *value)
{
    (void)k;
    struct wr_route *r = obj;
    return parse_access(ld, &r->access, &r->n_access, value, true);
}

static const char *parse_route_deny(struct loader *ld, const struct key_def *k, void *obj,
                                    const char *value)
{
    (void)k;
    struct wr_route *r = obj;
    return parse_access(ld, &r->access, &r->n_access, value, false);
}

static const char *parse_admin_allow(struct loader *ld, const struct key_def *k, void *obj,
                                     const char *value)
{
    (void)k;
    struct wr_admin_cfg *a = obj;
    return parse_access(ld, &a->access, &a->n_access, value, true);
}

static const char *parse_admin_deny(struct loader *ld, const struct key_def *k, void *obj,
                                    const char *value)
{
    (void)k;
    struct wr_admin_cfg *a = obj;
    return parse_access(ld, &a->access, &a->n_access, value, false);
}

/* ---- basic authentication -------------------------------------------------- */

/* auth_basic = REALM (off: none): the challenge a 401 carries, into *out. */
static const char *set_challenge(struct loader *ld, char **out, const char *value)
{
    free(*out);
    *out = NULL;
    if (strcmp(value, "off") == 0)
        return NULL;
    if (*value == '\0' || strpbrk(value, "\"\\") != NULL || strlen(value) > 200)
        return fail(ld, "\"%s\" is not a realm (up to 200 characters, no quote or backslash)",
                    value);
    char buf[256];
    snprintf(buf, sizeof(buf), "Basic realm=\"%s\", charset=\"UTF-8\"", value);
    return set_string(ld, out, buf) < 0 ? OOM_MSG : NULL;
}

/* Whether hash is a crypt(3) hash libcrypt checks: yescrypt, bcrypt,
 * SHA-512, SHA-256 or MD5 crypt (Apache's $apr1$ and plain text are not). */
static bool is_known_hash(const char *hash)
{
    static const char *const prefixes[] = {"$y$", "$2b$", "$2a$", "$2y$", "$6$", "$5$", "$1$",
                                           "$7$", "$gy$"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        if (strncmp(hash, prefixes[i], strlen(prefixes[i])) == 0 &&
            strlen(hash) > strlen(prefixes[i]) + 8)
            return true;
    }
    return false;
}

/* auth_basic_file = PATH: an htpasswd file, "user:hash" per line ('#'
 * comments and blank lines skipped), read now (and at every reload). */
static const char *read_htpasswd(struct loader *ld, struct wr_auth_user **users, size_t *n_users,
                                 const char *value)
{
    char buf[PATH_MAX];
    const char *path = absolute_path(ld, value, buf, sizeof(buf));
    if (path == NULL)
        return ld->msg;
    FILE *f = fopen(path, "re");
    if (!f)
        return fail(ld, "cannot read %s: %s", path, strerror(errno));
    char line[1024];
    const char *msg = NULL;
    for (unsigned no = 1; !msg && fgets(line, sizeof(line), f); no++) {
        size_t n = strlen(line);
        if (n > 0 && line[n - 1] != '\n' && !feof(f)) {
            msg = fail(ld, "%s:%u: line longer than 1023 bytes", path, no);
            break;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0 || line[0] == '#')
            continue;
        char *colon = strchr(line, ':');
        if (!colon || colon == line) {
            msg = fail(ld, "%s:%u: not user:hash", path, no);
            break;
        }
        *colon = '\0';
        char *hash = colon + 1;
        char *extra = strchr(hash, ':'); /* htpasswd allows a comment field */
        if (extra)
            *extra = '\0';
        if (!is_known_hash(hash)) {
            msg = fail(ld, "%s:%u: user %s: not a hash libcrypt checks (yescrypt, bcrypt, "
                           "SHA-512 or SHA-256 crypt: htpasswd -B, mkpasswd)", path, no, line);
            break;
        }
        struct wr_auth_user *more = grow_array(ld, *users, *n_users, sizeof(*more));
        if (!more) {
            msg = OOM_MSG;
            break;
        }
        *users = more;
        struct wr_auth_user *u = &more[*n_users];
        *u = (struct wr_auth_user){strdup(line), strdup(hash)};
        if (!u->name || !u->hash) {
            free(u->name);
            free(u->hash);
            msg = OOM_MSG;
            break;
        }
        (*n_users)++;
    }
    fclose(f);
    if (!msg && *n_users == 0)
        msg = fail(ld, "%s has no user", path);
    return msg;
}

static const char *parse_auth_basic(struct loader *ld, const struct key_def *k, void *obj,
                                    const char *value)
{
    (void)k;
    return set_challenge(ld, &((struct wr_route *)obj)->auth_challenge, value);
}

static const char *parse_auth_file(struct loader *ld, const struct key_def *k, void *obj,
                                   const char *value)
{
    (void)k;
    struct wr_route *r = obj;
    return read_htpasswd(ld, &r->auth_users, &r->n_auth_users, value);
}

static const char *parse_admin_auth_basic(struct loader *ld, const struct key_def *k, void *obj,
                                          const char *value)
{
    (void)k;
    return set_challenge(ld, &((struct wr_admin_cfg *)obj)->auth_challenge, value);
}

static const char *parse_admin_auth_file(struct loader *ld, const struct key_def *k, void *obj,
                                         const char *value)
{
    (void)k;
    struct wr_admin_cfg *a = obj;
    return read_htpasswd(ld, &a->auth_users, &a->n_auth_users, value);
}

static void free_auth_users(struct wr_auth_user *users, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(users[i].name);
        free(users[i].hash);
    }
    free(users);
}

/* ---- [admin] ---------------------------------------------------------------- */

static const char *parse_admin_listen(struct loader *ld, const struct key_def *k, void *obj,
                                      const char *value)
{
    (void)k;
    struct wr_admin_cfg *a = obj;
    if (wr_units_parse_listen(value, &a->listen) < 0)
        return fail(ld, "\"%s\" is not an address (IPv4:port, [IPv6]:port, *:port or "
                        "unix:/path)", value);
    a->is_enabled = true;
    return NULL;
}

/* ---- the HTTP cache: [cache NAME] and the routes' cache keys (issue 20) ----- */

/* Cache lifetimes count in whole seconds (RFC 9111 §1.2.2: delta-seconds),
 * so "1500ms" is refused rather than silently rounded. */
static const char *parse_cache_seconds(struct loader *ld, const char *text, uint32_t *out)
{
    uint64_t ms;
    if (wr_units_parse_duration(text, &ms) < 0)
        return fail(ld, "\"%s\" is not a duration (e.g. 30s, 10m, 1h, 1d)", text);
    if (ms % 1000 != 0)
        return fail(ld, "\"%s\": cache lifetimes are whole seconds", text);
    *out = (uint32_t)(ms / 1000); /* at most 365 days: fits */
    return NULL;
}

static bool is_section_name(struct wr_str name);

/* cache = NAME: resolved to a [cache NAME] once the whole file is read. */
static const char *parse_route_cache(struct loader *ld, const struct key_def *k, void *obj,
                                     const char *value)
{
    if (!is_section_name(wr_str_from_cstr(value)))
        return fail(ld, "\"%s\" is not a cache name (the NAME of a [cache NAME])", value);
    return parse_string(ld, k, obj, value);
}

static const char *parse_cache_key(struct loader *ld, const struct key_def *k, void *obj,
                                   const char *value)
{
    (void)k;
    struct wr_route *r = obj;
    const char *err;
    wr_tmpl_fini(&r->cache_key);
    if (wr_tmpl_init(&r->cache_key, value, &err) < 0)
        return fail(ld, "%s", err);
    return NULL;
}

/* cache_methods = GET HEAD: only safe methods whose responses RFC 9111
 * lets a cache reuse; POST responses are not reusable for a later POST. */
static const char *parse_cache_methods(struct loader *ld, const struct key_def *k, void *obj,
                                       const char *value)
{
    (void)k;
    struct wr_route *r = obj;
    uint32_t mask = 0;
    const char *rest = value;
    for (struct wr_str w = next_word(&rest); w.len > 0; w = next_word(&rest)) {
        enum wr_http_method m = wr_http_method_from(w);
        if (m == WR_HTTP_GET || m == WR_HTTP_HEAD) {
            mask |= 1u << m;
            continue;
        }
        const char *msg = m == WR_HTTP_OTHER ? check_method_case(ld, w) : NULL;
        return msg != NULL ? msg
                           : fail(ld, "\"%.*s\": only GET and HEAD responses are cached",
                                  (int)w.len, w.ptr);
    }
    if (mask == 0)
        return "no method given (GET, HEAD)";
    r->cache_opts.methods_mask = mask;
    return NULL;
}

/* One status word of cache_valid: 200..599, or "any" (0). */
static const char *parse_valid_status(struct loader *ld, struct wr_str w, int *status)
{
    uint64_t n;
    char buf[8];
    if (wr_str_eq(w, WR_STR("any"))) {
        *status = 0;
        return NULL;
    }
    if (!word_copy(w, buf, sizeof(buf), false) || parse_number(buf, &n) < 0 || n < 200 ||
        n > 599)
        return fail(ld, "\"%.*s\" is not a status from 200 to 599 (or any)", (int)w.len, w.ptr);
    *status = (int)n;
    return NULL;
}

/* Appends {status, seconds} to the route's fallback lifetimes; a status
 * already there (or after "any") could never be used: refused. */
static const char *add_cache_valid(struct loader *ld, struct wr_route *r, int status,
                                   uint32_t seconds)
{
    for (size_t i = 0; i < r->cache_opts.n_valid; i++) {
        int had = r->cache_opts.valid[i].status;
        if (had == 0 || had == status)
            return had == status ? fail(ld, "status %d is listed twice (the first wins)", status)
                                 : fail(ld, "status %d comes after any, which already "
                                            "matches it", status);
    }
    /* valid is the route's own array (config.h); const only for readers. */
    struct wr_cache_valid *more = grow_array(ld, (void *)r->cache_opts.valid,
                                             r->cache_opts.n_valid, sizeof(*more));
    if (more == NULL)
        return OOM_MSG;
    more[r->cache_opts.n_valid++] = (struct wr_cache_valid){status, seconds};
    r->cache_opts.valid = more;
    return NULL;
}

/* cache_valid = CODE... DURATION (repeatable): nginx's proxy_cache_valid,
 * used only for a response with no explicit freshness (cache_policy.h). */
static const char *parse_cache_valid(struct loader *ld, const struct key_def *k, void *obj,
                                     const char *value)
{
    (void)k;
    struct wr_route *r = obj;
    struct wr_str words[16];
    size_t n = 0;
    const char *rest = value;
    for (struct wr_str w = next_word(&rest); w.len > 0; w = next_word(&rest)) {
        if (n == sizeof(words) / sizeof(words[0]))
            return fail(ld, "at most %zu statuses per line", n - 1);
        words[n++] = w;
    }
    char dur[WORD_MAX];
    if (n < 2 || !word_copy(words[n - 1], dur, sizeof(dur), false))
        return fail(ld, "\"%s\" must be STATUS... DURATION, e.g. 200 301 10m", value);
    uint32_t seconds = 0;
    const char *msg = parse_cache_seconds(ld, dur, &seconds);
    if (msg == NULL && seconds == 0)
        msg = "a lifetime of 0 stores nothing: leave the status out";
    for (size_t i = 0; msg == NULL && i + 1 < n; i++) {
        int status = 0;
        msg = parse_valid_status(ld, words[i], &status);
        if (msg == NULL)
            msg = add_cache_valid(ld, r, status, seconds);
    }
    return msg;
}

/* cache_stale_while_revalidate, cache_stale_if_error: a uint32_t of
 * seconds at k's offset (inside cache_opts). */
static const char *parse_stale_seconds(struct loader *ld, const struct key_def *k, void *obj,
                                       const char *value)
{
    return parse_cache_seconds(ld, value, field_of(obj, k));
}

/* ---- key tables --------------------------------------------------------------
 * One row per key of CONFIG.md. The default column is parsed like a value
 * when the section opens (for [server], [limits] and [admin], when loading
 * starts, so an absent section still has its defaults). Defaults follow
 * nginx-class servers.
 */

static const struct choice log_levels[] = {{"error", WR_LOG_ERROR},
                                           {"warn", WR_LOG_WARN},
                                           {"info", WR_LOG_INFO},
                                           {"debug", WR_LOG_DEBUG},
                                           {NULL, 0}};
static const struct choice verify_modes[] = {{"off", 0}, {"optional", 1}, {"on", 2}, {NULL, 0}};
static const struct choice proxy_versions[] = {{"off", 0}, {"v1", 1}, {"v2", 2}, {NULL, 0}};
static const struct choice balances[] = {{"round_robin", WR_BALANCE_ROUND_ROBIN},
                                         {"least_conn", WR_BALANCE_LEAST_CONN},
                                         {"hash", WR_BALANCE_HASH},
                                         {"random", WR_BALANCE_RANDOM},
                                         {NULL, 0}};

#define SRV struct wr_server_cfg
static const struct key_def server_keys[] = {
    /* listen: "ADDR" or "ADDR tls", repeatable; no default, one at least */
    {.name = "listen", .parse = parse_listen, .flags = KEY_REPEATABLE},
    /* proxy_protocol_from: unset; the senders a proxy_protocol listener
     * takes a PROXY header from (others are closed) */
    {.name = "proxy_protocol_from", .parse = parse_proxy_from, .flags = KEY_REPEATABLE},
    /* resolver: unset = /etc/resolv.conf's nameservers; else these, for
     * upstream names at load and for `resolve` */
    {.name = "resolver", .parse = parse_resolvers, .flags = KEY_REPEATABLE},
    /* workers: auto = online CPUs, resolved at load; else 1..1024 */
    {.name = "workers", .parse = parse_workers, .dflt = "auto", .min = 1, .max = 1024},
    /* user, group: unset = privileges are not dropped */
    {.name = "user", .parse = parse_word, FIELD(SRV, user)},
    {.name = "group", .parse = parse_word, FIELD(SRV, group)},
    /* max_connections: 20000 for the whole process */
    {.name = "max_connections", .parse = parse_count, FIELD(SRV, max_connections),
     .dflt = "20000", .min = 1, .max = NO_MAX},
    /* server_header: "weir"; off = no Server field (NULL) */
    {.name = "server_header", .parse = parse_server_header, FIELD(SRV, server_header),
     .dflt = "weir"},
    /* access_log: off (NULL); a path or stderr. Paths, here and below (error_log,
     * cert, key, tls_ca, root), are relative to the ini file's directory. */
    {.name = "access_log", .parse = parse_access_log, FIELD(SRV, access_log)},
    /* access_log_format: combined; json; json $var ...; a template */
    {.name = "access_log_format", .parse = parse_log_format, FIELD(SRV, access_log_format),
     .dflt = "combined"},
    /* error_log: stderr (journald picks it up under systemd) */
    {.name = "error_log", .parse = parse_error_log, FIELD(SRV, error_log), .dflt = "stderr"},
    /* log_level: info */
    {.name = "log_level", .parse = parse_enum, FIELD(SRV, log_level), .dflt = "info",
     .choices = log_levels},
    /* underscores_in_headers: off = request fields with '_' in the name are not
     * forwarded upstream (nginx's default); the proxy routes' default */
    {.name = "underscores_in_headers", .parse = parse_bool, FIELD(SRV, underscores_in_headers),
     .dflt = "off"},
    /* error_page: "CODE... PATH", repeatable; every route's unless it has its own */
    {.name = "error_page", .parse = parse_server_error_page, .flags = KEY_REPEATABLE},
};

#define LIM struct wr_limits_cfg
static const struct key_def limits_keys[] = {
    /* header_timeout: 10s for the whole request head (slowloris) */
    {.name = "header_timeout", .parse = parse_duration, FIELD(LIM, header_timeout_ms),
     .dflt = "10s", .min = 1, .max = NO_MAX},
    /* body_timeout: 60s between reads of a request body */
    {.name = "body_timeout", .parse = parse_duration, FIELD(LIM, body_timeout_ms),
     .dflt = "60s", .min = 1, .max = NO_MAX},
    /* keepalive_timeout: 75s idle between requests; 0 = no keep-alive */
    {.name = "keepalive_timeout", .parse = parse_duration, FIELD(LIM, keepalive_timeout_ms),
     .dflt = "75s", .min = 0, .max = NO_MAX},
    /* send_timeout: 60s between successful writes to a client */
    {.name = "send_timeout", .parse = parse_duration, FIELD(LIM, send_timeout_ms),
     .dflt = "60s", .min = 1, .max = NO_MAX},
    /* max_header_size: 16k; 1k..1m (one contiguous buffer per connection) */
    {.name = "max_header_size", .parse = parse_size, FIELD(LIM, max_header_bytes),
     .dflt = "16k", .min = 1024, .max = 1024 * 1024},
    /* max_body_size: 10m; 0 = unlimited */
    {.name = "max_body_size", .parse = parse_size, FIELD(LIM, max_body_bytes), .dflt = "10m",
     .min = 0, .max = NO_MAX},
    /* max_requests_per_connection: 1000; 0 = unlimited */
    {.name = "max_requests_per_connection", .parse = parse_count,
     FIELD(LIM, max_requests_per_connection), .dflt = "1000", .min = 0, .max = NO_MAX},
    /* shutdown_timeout: 30s of graceful drain; 0 = close at once */
    {.name = "shutdown_timeout", .parse = parse_duration, FIELD(LIM, shutdown_timeout_ms),
     .dflt = "30s", .min = 0, .max = NO_MAX},
    /* max_connections_per_ip: 0 = off (counted across workers; IPv6 per /64) */
    {.name = "max_connections_per_ip", .parse = parse_count,
     FIELD(LIM, max_connections_per_ip), .dflt = "0", .min = 0, .max = NO_MAX},
    /* max_headers: 100 fields; the parser keeps at most WR_HTTP_MAX_HEADERS */
    {.name = "max_headers", .parse = parse_count, FIELD(LIM, max_headers), .dflt = "100",
     .min = 1, .max = WR_HTTP_MAX_HEADERS},
};

/* A [tls NAME] takes protocols, ciphers, session_tickets, handshake_timeout
 * and alpn from [tls] when it does not give them (see inherit_tls). */
#define TLS struct wr_tls_cfg
static const struct key_def tls_keys[] = {
    /* names: [tls NAME] only, required there; repeatable, several per line */
    {.name = "names", .parse = parse_tls_names, .flags = KEY_REPEATABLE},
    /* cert, key: required */
    /* cert, key: required; repeatable in pairs (an ECDSA and an RSA
     * certificate for the same names), the i-th cert with the i-th key */
    {.name = "cert", .parse = parse_tls_file, .flags = KEY_REPEATABLE},
    {.name = "key", .parse = parse_tls_file, .flags = KEY_REPEATABLE},
    /* protocols: "TLSv1.2 TLSv1.3" (nothing older: RFC 8996) */
    {.name = "protocols", .parse = parse_protocols, FIELD(TLS, protocols),
     .dflt = "TLSv1.2 TLSv1.3"},
    /* ciphers: forward-secret AEAD suites only, for TLS 1.2 */
    {.name = "ciphers", .parse = parse_string, FIELD(TLS, ciphers),
     .dflt = "ECDHE+AESGCM:ECDHE+CHACHA20"},
    /* session_tickets: on */
    {.name = "session_tickets", .parse = parse_bool, FIELD(TLS, session_tickets), .dflt = "on"},
    /* handshake_timeout: 10s */
    {.name = "handshake_timeout", .parse = parse_duration, FIELD(TLS, handshake_timeout_ms),
     .dflt = "10s", .min = 1, .max = NO_MAX},
    /* alpn: "h2 http/1.1" (offered in this order; "http/1.1" alone turns h2 off) */
    {.name = "alpn", .parse = parse_alpn, FIELD(TLS, alpn), .dflt = "h2 http/1.1"},
    /* client certificates: client_ca (PEM bundle, read with the certs),
     * verify_client off | optional | on, verify_depth 1 (nginx's) */
    {.name = "client_ca", .parse = parse_path, FIELD(TLS, client_ca)},
    /* ocsp_file: unset; a DER OCSP response for the section's (first)
     * certificate, stapled when valid, re-read on reload */
    {.name = "ocsp_file", .parse = parse_path, FIELD(TLS, ocsp_file)},
    /* ocsp_stapling: off (nginx's default); on: main fetches, verifies and
     * refreshes each certificate's OCSP response (stapler.h); inherited */
    {.name = "ocsp_stapling", .parse = parse_bool, FIELD(TLS, ocsp_stapling), .dflt = "off"},
    {.name = "verify_client", .parse = parse_enum, FIELD(TLS, verify_client), .dflt = "off",
     .choices = verify_modes},
    {.name = "verify_depth", .parse = parse_count, FIELD(TLS, verify_depth), .dflt = "1",
     .min = 1, .max = 10},
};

#define UPS struct wr_upstream_cfg
static const struct key_def upstream_keys[] = {
    /* server: "ADDR [weight=N]" (N 1..100, default 1), repeatable; one at least */
    {.name = "server", .parse = parse_upstream_server, .flags = KEY_REPEATABLE},
    /* balance: round_robin */
    {.name = "balance", .parse = parse_enum, FIELD(UPS, balance), .dflt = "round_robin",
     .choices = balances},
    /* hash_key: client_ip; only with balance = hash */
    {.name = "hash_key", .parse = parse_hash_key, FIELD(UPS, hash_key), .dflt = "client_ip"},
    /* keepalive: 32 idle connections per worker; 0 = none kept */
    {.name = "keepalive", .parse = parse_count, FIELD(UPS, keepalive), .dflt = "32", .min = 0,
     .max = NO_MAX},
    /* keepalive_timeout: 60s; 0 = idle connections are not kept */
    {.name = "keepalive_timeout", .parse = parse_duration, FIELD(UPS, keepalive_timeout_ms),
     .dflt = "60s", .min = 0, .max = NO_MAX},
    /* connect_timeout: 2s */
    {.name = "connect_timeout", .parse = parse_duration, FIELD(UPS, connect_timeout_ms),
     .dflt = "2s", .min = 1, .max = NO_MAX},
    /* send_timeout, read_timeout: 30s between writes / reads */
    {.name = "send_timeout", .parse = parse_duration, FIELD(UPS, send_timeout_ms),
     .dflt = "30s", .min = 1, .max = NO_MAX},
    {.name = "read_timeout", .parse = parse_duration, FIELD(UPS, read_timeout_ms),
     .dflt = "30s", .min = 1, .max = NO_MAX},
    /* retries: 1 other server when safe */
    {.name = "retries", .parse = parse_count, FIELD(UPS, retries), .dflt = "1", .min = 0,
     .max = NO_MAX},
    /* max_fails: 3 within fail_timeout (10s); 0 = passive health off */
    {.name = "max_fails", .parse = parse_count, FIELD(UPS, max_fails), .dflt = "3", .min = 0,
     .max = NO_MAX},
    {.name = "fail_timeout", .parse = parse_duration, FIELD(UPS, fail_timeout_ms),
     .dflt = "10s", .min = 1, .max = NO_MAX},
    /* health_check: unset (NULL) = no active checks; "METHOD /path" */
    {.name = "health_check", .parse = parse_health_check},
    /* health_interval: 5s; health_timeout: 2s */
    {.name = "health_interval", .parse = parse_duration, FIELD(UPS, health_interval_ms),
     .dflt = "5s", .min = 1, .max = NO_MAX},
    {.name = "health_timeout", .parse = parse_duration, FIELD(UPS, health_timeout_ms),
     .dflt = "2s", .min = 1, .max = NO_MAX},
    /* resolve: off; a duration (1s at least) re-resolves the server names
     * that often in the background (resolve.h) */
    {.name = "resolve", .parse = parse_resolve, FIELD(UPS, resolve_ms), .dflt = "off",
     .min = 1000},
    /* tls: off; tls_verify: on; tls_ca: Debian's bundle; tls_sni: unset (NULL) */
    {.name = "tls", .parse = parse_bool, FIELD(UPS, tls), .dflt = "off"},
    {.name = "tls_verify", .parse = parse_bool, FIELD(UPS, tls_verify), .dflt = "on"},
    {.name = "tls_ca", .parse = parse_tls_ca, FIELD(UPS, tls_ca),
     .dflt = "/etc/ssl/certs/ca-certificates.crt"},
    {.name = "tls_sni", .parse = parse_sni, FIELD(UPS, tls_sni)},
    /* send_proxy_protocol: off; v1 or v2 tells the servers the client's
     * address in a PROXY header (connections then not pooled: one client each) */
    {.name = "send_proxy_protocol", .parse = parse_enum, FIELD(UPS, send_proxy_protocol),
     .dflt = "off", .choices = proxy_versions},
};

static const struct choice schemes[] = {
    {"http", WR_ROUTE_SCHEME_HTTP}, {"https", WR_ROUTE_SCHEME_HTTPS}, {NULL, 0}};

#define RT struct wr_route
static const struct key_def route_keys[] = {
    /* scheme: unset = requests from plain and TLS listeners alike */
    {.name = "scheme", .parse = parse_enum, FIELD(RT, scheme), .choices = schemes},
    /* host: unset = any host; names lower-cased, "*.suffix" wildcards */
    {.name = "host", .parse = parse_host},
    /* match: required */
    {.name = "match", .parse = parse_match},
    /* methods: unset = any method; GET brings HEAD */
    {.name = "methods", .parse = parse_methods},
    /* the action: exactly one of these */
    {.name = "root", .parse = parse_root, .flags = KEY_ACTION, .action = WR_ACTION_STATIC},
    {.name = "proxy", .parse = parse_proxy, .flags = KEY_ACTION, .action = WR_ACTION_PROXY},
    {.name = "redirect", .parse = parse_redirect, .flags = KEY_ACTION,
     .action = WR_ACTION_REDIRECT},
    {.name = "return", .parse = parse_return, .flags = KEY_ACTION, .action = WR_ACTION_RETURN},
    /* return_type: text/plain; charset=utf-8 (return_file: by its extension) */
    {.name = "return_type", .parse = parse_media_type, FIELD(RT, return_type)},
    /* return_file: unset; the return body from a file, read at load and reload */
    {.name = "return_file", .parse = parse_path, FIELD(RT, return_file)},
    /* strip_prefix: unset; static and proxy routes */
    {.name = "strip_prefix", .parse = parse_strip_prefix, FIELD(RT, strip_prefix),
     .flags = KEY_STATIC | KEY_PROXY},
    /* static: index.html, autoindex off, precompressed off, no expires, symlinks off */
    {.name = "index", .parse = parse_index, FIELD(RT, index), .dflt = "index.html",
     .flags = KEY_STATIC},
    {.name = "autoindex", .parse = parse_bool, FIELD(RT, autoindex), .dflt = "off",
     .flags = KEY_STATIC},
    {.name = "precompressed", .parse = parse_bool, FIELD(RT, precompressed), .dflt = "off",
     .flags = KEY_STATIC},
    {.name = "expires", .parse = parse_expires, FIELD(RT, expires_ms), .min = 0, .max = NO_MAX,
     .flags = KEY_STATIC},
    {.name = "follow_symlinks", .parse = parse_bool, FIELD(RT, follow_symlinks), .dflt = "off",
     .flags = KEY_STATIC},
    {.name = "dotfiles", .parse = parse_bool, FIELD(RT, dotfiles), .dflt = "off",
     .flags = KEY_STATIC},
    /* proxy: no rewrite, preserve_host on, forwarded_headers on, websocket off (1h idle) */
    {.name = "rewrite", .parse = parse_rewrite, .flags = KEY_PROXY},
    {.name = "preserve_host", .parse = parse_bool, FIELD(RT, preserve_host), .dflt = "on",
     .flags = KEY_PROXY},
    {.name = "forwarded_headers", .parse = parse_bool, FIELD(RT, forwarded_headers),
     .dflt = "on", .flags = KEY_PROXY},
    {.name = "set_header", .parse = parse_set_header, .flags = KEY_PROXY | KEY_REPEATABLE},
    {.name = "websocket", .parse = parse_bool, FIELD(RT, websocket), .dflt = "off",
     .flags = KEY_PROXY},
    {.name = "websocket_timeout", .parse = parse_duration, FIELD(RT, websocket_timeout_ms),
     .dflt = "1h", .min = 1, .max = NO_MAX, .flags = KEY_PROXY},
    /* underscores_in_headers: unset = [server]'s (resolve_proxies) */
    {.name = "underscores_in_headers", .parse = parse_bool, FIELD(RT, underscores_in_headers),
     .flags = KEY_PROXY},
    /* abort_on_eof: off = a client that half-closes after its request is answered */
    {.name = "abort_on_eof", .parse = parse_bool, FIELD(RT, abort_on_eof), .dflt = "off",
     .flags = KEY_PROXY},
    /* add_header: any action, repeatable; "always": on errors too */
    {.name = "add_header", .parse = parse_add_header, .flags = KEY_REPEATABLE},
    /* set_response_header: any action, repeatable; replaces the field */
    {.name = "set_response_header", .parse = parse_set_response_header,
     .flags = KEY_REPEATABLE},
    /* hide_header: any action, repeatable: the field is never sent */
    {.name = "hide_header", .parse = parse_hide_header, .flags = KEY_REPEATABLE},
    /* rate_limit: unset = unlimited; "Nr/s|Nr/m [burst=M]", any action */
    {.name = "rate_limit", .parse = parse_rate_limit},
    /* require_client_cert: off; on = 403 without a verified client
     * certificate ([tls] verify_client) */
    {.name = "require_client_cert", .parse = parse_bool, FIELD(RT, require_client_cert),
     .dflt = "off"},
    /* access_log: [server]'s; off, or a file of the route's own */
    {.name = "access_log", .parse = parse_route_access_log, FIELD(RT, access_log)},
    /* auth_basic: off; a realm asks for a user of auth_basic_file (read at
     * load and reload) */
    {.name = "auth_basic", .parse = parse_auth_basic},
    {.name = "auth_basic_file", .parse = parse_auth_file},
    /* allow, deny: unset = everyone; ranges or "all", repeatable, first match
     * wins, any action */
    {.name = "allow", .parse = parse_route_allow, .flags = KEY_REPEATABLE},
    {.name = "deny", .parse = parse_route_deny, .flags = KEY_REPEATABLE},
    /* compress: off; on = every coding weir has, or a list of them */
    {.name = "compress", .parse = parse_compress, .dflt = "off"},
    /* compress_types: repeatable lists; none = the built-in list */
    {.name = "compress_types", .parse = parse_compress_types, .flags = KEY_REPEATABLE},
    /* compress_min_length: 1k; shorter bodies are not worth it */
    {.name = "compress_min_length", .parse = parse_size, FIELD(RT, compress_min_length),
     .dflt = "1k", .min = 0, .max = NO_MAX},
    /* The HTTP cache (issue 20), proxy routes; every cache_* key needs cache. */
    /* cache: unset = not cached; the NAME of a [cache NAME] */
    {.name = "cache", .parse = parse_route_cache, FIELD(RT, cache_name), .flags = KEY_PROXY},
    /* cache_key: $scheme$host$request_uri (set by resolve_caches when cache is) */
    {.name = "cache_key", .parse = parse_cache_key, .flags = KEY_PROXY},
    /* cache_methods: GET HEAD (only those two) */
    {.name = "cache_methods", .parse = parse_cache_methods, .dflt = "GET HEAD",
     .flags = KEY_PROXY},
    /* cache_valid: none (RFC 9111 only); "STATUS... DURATION", repeatable,
     * the first line naming a status wins */
    {.name = "cache_valid", .parse = parse_cache_valid, .flags = KEY_PROXY | KEY_REPEATABLE},
    /* cache_set_cookie: off = responses with Set-Cookie are not stored */
    {.name = "cache_set_cookie", .parse = parse_bool, FIELD(RT, cache_opts.store_set_cookie),
     .dflt = "off", .flags = KEY_PROXY},
    /* cache_stale_while_revalidate, cache_stale_if_error: 0; RFC 5861
     * defaults for responses that do not say */
    {.name = "cache_stale_while_revalidate", .parse = parse_stale_seconds,
     FIELD(RT, cache_opts.stale_while_revalidate_sec), .flags = KEY_PROXY},
    {.name = "cache_stale_if_error", .parse = parse_stale_seconds,
     FIELD(RT, cache_opts.stale_if_error_sec), .flags = KEY_PROXY},
    /* cache_lock_timeout: 5s (nginx's proxy_cache_lock_timeout) */
    {.name = "cache_lock_timeout", .parse = parse_duration, FIELD(RT, cache_lock_timeout_ms),
     .dflt = "5s", .min = 1, .max = NO_MAX, .flags = KEY_PROXY},
    /* error_page: "CODE... PATH", repeatable; unset = [server]'s lines */
    {.name = "error_page", .parse = parse_route_error_page, .flags = KEY_REPEATABLE},
    /* proxy_intercept_errors: off = upstream answers pass as they are */
    {.name = "proxy_intercept_errors", .parse = parse_bool, FIELD(RT, proxy_intercept_errors),
     .dflt = "off", .flags = KEY_PROXY},
};

#define H2 struct wr_http2_cfg
static const struct key_def http2_keys[] = {
    /* max_concurrent_streams: 100 (nginx, h2o); SETTINGS_MAX_CONCURRENT_STREAMS.
     * Each stream may hold a handler (an upstream connection): the cap is
     * what one connection can pin. */
    {.name = "max_concurrent_streams", .parse = parse_count,
     FIELD(H2, max_concurrent_streams), .dflt = "100", .min = 1, .max = 1000},
    /* idle_timeout: 3m without a stream open and nothing to send */
    {.name = "idle_timeout", .parse = parse_duration, FIELD(H2, idle_timeout_ms), .dflt = "3m",
     .min = 1, .max = NO_MAX},
    /* hpack_table_size: 4k (RFC 9113 §6.5.2's initial value); the HPACK
     * dynamic table a client may make us keep per connection */
    {.name = "hpack_table_size", .parse = parse_size, FIELD(H2, hpack_table_bytes),
     .dflt = "4k", .min = 0, .max = 64 * 1024},
};

#define CMP struct wr_compression_cfg
static const struct key_def compression_keys[] = {
    /* prefer: the order among codings a client accepts equally */
    {.name = "prefer", .parse = parse_prefer, .dflt = "zstd br gzip"},
    /* levels: fast ones (nginx's gzip_comp_level 1; brotli 4 and zstd 3
     * compress better than gzip 6 for less CPU) */
    {.name = "gzip_level", .parse = parse_count, FIELD(CMP, gzip_level), .dflt = "1", .min = 1,
     .max = 9},
    {.name = "brotli_level", .parse = parse_count, FIELD(CMP, brotli_level), .dflt = "4",
     .min = 0, .max = 11},
    {.name = "zstd_level", .parse = parse_count, FIELD(CMP, zstd_level), .dflt = "3", .min = 1,
     .max = 19},
    /* max_memory: 64m per worker of encoder state; beyond, answers go out
     * uncompressed until streams finish */
    {.name = "max_memory", .parse = parse_size, FIELD(CMP, max_memory), .dflt = "64m",
     .min = 0, .max = NO_MAX},
    /* cache_size: 32m per worker of compressed copies of static files */
    {.name = "cache_size", .parse = parse_size, FIELD(CMP, cache_bytes), .dflt = "32m",
     .min = 0, .max = NO_MAX},
    /* cache_file_max: 1m; larger files are compressed as they are sent */
    {.name = "cache_file_max", .parse = parse_size, FIELD(CMP, cache_file_max), .dflt = "1m",
     .min = 0, .max = 64 * 1024 * 1024},
};

static const struct key_def admin_keys[] = {
    /* listen: unset = no admin endpoint */
    {.name = "listen", .parse = parse_admin_listen},
    /* allow, deny: unset = everyone who reaches the address */
    {.name = "allow", .parse = parse_admin_allow, .flags = KEY_REPEATABLE},
    {.name = "deny", .parse = parse_admin_deny, .flags = KEY_REPEATABLE},
    /* auth_basic, auth_basic_file: off; as a route's */
    {.name = "auth_basic", .parse = parse_admin_auth_basic},
    {.name = "auth_basic_file", .parse = parse_admin_auth_file},
};

#define CCH struct wr_cache_cfg
static const struct key_def cache_keys[] = {
    /* max_size: 64m in all (keys, heads, bodies); 1m at least */
    {.name = "max_size", .parse = parse_size, FIELD(CCH, max_size), .dflt = "64m",
     .min = 1024 * 1024, .max = NO_MAX},
    /* max_object_size: 1m; larger responses pass through uncached (<= max_size) */
    {.name = "max_object_size", .parse = parse_size, FIELD(CCH, max_object_size),
     .dflt = "1m", .min = 1, .max = NO_MAX},
    /* inactive: 10m; an entry not hit for that long goes; 0 = never */
    {.name = "inactive", .parse = parse_duration, FIELD(CCH, inactive_ms), .dflt = "10m",
     .min = 0, .max = NO_MAX},
    /* path: unset = memory only; the disk tier's directory (relative to the
     * config file's), made 0700 when missing, opened at start and reload */
    {.name = "path", .parse = parse_path, FIELD(CCH, path)},
    /* max_disk_size: 1g of files under path (least recently used go first) */
    {.name = "max_disk_size", .parse = parse_size, FIELD(CCH, max_disk_size), .dflt = "1g",
     .min = 1024 * 1024, .max = NO_MAX},
};

enum name_rule { NAME_NONE, NAME_REQUIRED, NAME_OPTIONAL };

struct section_def {
    const char *type;
    enum name_rule names;
    const struct key_def *keys;
    size_t n_keys;
};

#define KEYS(t) (t), sizeof(t) / sizeof((t)[0])
static const struct section_def sections[SECT_N] = {
    [SECT_SERVER] = {"server", NAME_NONE, KEYS(server_keys)},
    [SECT_LIMITS] = {"limits", NAME_NONE, KEYS(limits_keys)},
    [SECT_TLS] = {"tls", NAME_OPTIONAL, KEYS(tls_keys)},
    [SECT_UPSTREAM] = {"upstream", NAME_REQUIRED, KEYS(upstream_keys)},
    [SECT_ROUTE] = {"route", NAME_REQUIRED, KEYS(route_keys)},
    [SECT_ADMIN] = {"admin", NAME_NONE, KEYS(admin_keys)},
    [SECT_HTTP2] = {"http2", NAME_NONE, KEYS(http2_keys)},
    [SECT_COMPRESSION] = {"compression", NAME_NONE, KEYS(compression_keys)},
    [SECT_CACHE] = {"cache", NAME_REQUIRED, KEYS(cache_keys)},
};

_Static_assert(sizeof(route_keys) / sizeof(route_keys[0]) <= MAX_KEYS, "MAX_KEYS");
_Static_assert(sizeof(upstream_keys) / sizeof(upstream_keys[0]) <= MAX_KEYS, "MAX_KEYS");

/* ---- sections ---------------------------------------------------------------- */

static const struct key_def *find_key(enum sect_kind kind, const char *name)
{
    const struct section_def *sd = &sections[kind];
    for (size_t i = 0; i < sd->n_keys; i++) {
        if (strcmp(sd->keys[i].name, name) == 0)
            return &sd->keys[i];
    }
    return NULL;
}

/* Line where rec's section first gave key name, 0 when it did not. */
static unsigned seen_line(const struct sect_record *rec, const char *name)
{
    const struct key_def *k = find_key(rec->kind, name);
    return k != NULL ? rec->seen[k - sections[rec->kind].keys] : 0;
}

static void *section_object(struct loader *ld, enum sect_kind kind, size_t at)
{
    struct wr_config *cfg = ld->cfg;
    switch (kind) {
    case SECT_SERVER:
        return &cfg->server;
    case SECT_LIMITS:
        return &cfg->limits;
    case SECT_TLS:
        return &cfg->tls[at];
    case SECT_UPSTREAM:
        return &cfg->upstreams[at];
    case SECT_ROUTE:
        return &cfg->routes[at];
    case SECT_ADMIN:
        return &cfg->admin;
    case SECT_HTTP2:
        return &cfg->http2;
    case SECT_COMPRESSION:
        return &cfg->compression;
    case SECT_CACHE:
        return &cfg->caches[at];
    default:
        return NULL;
    }
}

static void apply_defaults(struct loader *ld, enum sect_kind kind, void *obj)
{
    const struct section_def *sd = &sections[kind];
    for (size_t i = 0; i < sd->n_keys; i++) {
        const struct key_def *k = &sd->keys[i];
        const char *msg = k->dflt != NULL ? k->parse(ld, k, obj, k->dflt) : NULL;
        if (msg != NULL) /* a bug in the table, caught by any test */
            add_error(ld, 0, "[%s] %s: bad default \"%s\": %s", sd->type, k->name, k->dflt, msg);
    }
}

/* Index of the section of kind named name, or SIZE_MAX. */
static size_t find_named(const struct wr_config *cfg, enum sect_kind kind, const char *name)
{
    size_t n = kind == SECT_TLS        ? cfg->n_tls
               : kind == SECT_UPSTREAM ? cfg->n_upstreams
               : kind == SECT_CACHE    ? cfg->n_caches
                                       : cfg->n_routes;
    for (size_t i = 0; i < n; i++) {
        const char *other = kind == SECT_TLS        ? cfg->tls[i].name
                            : kind == SECT_UPSTREAM ? cfg->upstreams[i].name
                            : kind == SECT_CACHE    ? cfg->caches[i].name
                                                    : cfg->routes[i].name;
        if ((other == NULL && name == NULL) ||
            (other != NULL && name != NULL && strcmp(other, name) == 0))
            return i;
    }
    return SIZE_MAX;
}

/* Appends a zeroed object for a named section; returns its index or SIZE_MAX. */
static size_t new_named(struct loader *ld, enum sect_kind kind, const char *name,
                        unsigned line)
{
    struct wr_config *cfg = ld->cfg;
    char *copy = name != NULL ? dup_mem(ld, name, strlen(name)) : NULL;
    if (name != NULL && copy == NULL)
        return SIZE_MAX;
    size_t at = SIZE_MAX;
    if (kind == SECT_TLS) {
        struct wr_tls_cfg *more = grow_array(ld, cfg->tls, cfg->n_tls, sizeof(*more));
        if (more != NULL) {
            cfg->tls = more;
            at = cfg->n_tls++;
            more[at].name = copy;
            more[at].line = line;
        }
    } else if (kind == SECT_UPSTREAM) {
        struct wr_upstream_cfg *more = grow_array(ld, cfg->upstreams, cfg->n_upstreams,
                                                  sizeof(*more));
        if (more != NULL) {
            cfg->upstreams = more;
            at = cfg->n_upstreams++;
            more[at].name = copy;
            more[at].line = line;
        }
    } else if (kind == SECT_CACHE) {
        struct wr_cache_cfg *more = grow_array(ld, cfg->caches, cfg->n_caches, sizeof(*more));
        if (more != NULL) {
            cfg->caches = more;
            at = cfg->n_caches++;
            more[at].name = copy;
            more[at].line = line;
        }
    } else {
        struct wr_route *more = grow_array(ld, cfg->routes, cfg->n_routes, sizeof(*more));
        if (more != NULL) {
            cfg->routes = more;
            at = cfg->n_routes++;
            more[at].name = copy;
            more[at].line = line;
        }
    }
    if (at == SIZE_MAX)
        free(copy);
    return at;
}

/*
 * Starts section kind (name NULL when it has none) at line. A duplicate
 * is an error and its keys are skipped: checking them against a section
 * that will not be used would only add noise.
 */
static void open_section(struct loader *ld, enum sect_kind kind, const char *name,
                         const char *label)
{
    unsigned line = ld->line;
    size_t at = 0;
    char first_at[PATH_MAX + 32];
    ld->kind = SECT_SKIP;
    if (sections[kind].names == NAME_NONE) {
        if (ld->singleton_line[kind] != 0) {
            add_error(ld, line, "[%s]: given twice, first at %s", label,
                      where_text(ld, ld->singleton_line[kind], first_at, sizeof(first_at)));
            return;
        }
        ld->singleton_line[kind] = line;
    } else {
        size_t prev = find_named(ld->cfg, kind, name);
        if (prev != SIZE_MAX) {
            unsigned first = kind == SECT_TLS        ? ld->cfg->tls[prev].line
                             : kind == SECT_UPSTREAM ? ld->cfg->upstreams[prev].line
                             : kind == SECT_CACHE    ? ld->cfg->caches[prev].line
                                                     : ld->cfg->routes[prev].line;
            add_error(ld, line, "[%s]: given twice, first at %s", label,
                      where_text(ld, first, first_at, sizeof(first_at)));
            return;
        }
        at = new_named(ld, kind, name, line);
        if (at == SIZE_MAX)
            return;
        apply_defaults(ld, kind, section_object(ld, kind, at));
    }
    struct sect_record *recs = grow_array(ld, ld->recs, ld->n_recs, sizeof(*recs));
    if (recs == NULL)
        return;
    ld->recs = recs;
    ld->cur_rec = ld->n_recs;
    recs[ld->n_recs++] = (struct sect_record){.kind = kind, .index = at, .line = line};
    ld->kind = kind;
}

/* ---- section ends ------------------------------------------------------------ */

static void close_tls(struct loader *ld, const struct sect_record *rec)
{
    const struct wr_tls_cfg *t = &ld->cfg->tls[rec->index];
    if (seen_line(rec, "cert") == 0)
        key_error(ld, rec, rec->line, "cert", "required");
    if (seen_line(rec, "key") == 0)
        key_error(ld, rec, rec->line, "key", "required");
    else if (t->n_certs > 0 && t->n_certs != t->n_keys)
        key_error(ld, rec, seen_line(rec, "key"), "key",
                  "each cert needs its key, in the same order");
    if (t->name != NULL && seen_line(rec, "names") == 0)
        key_error(ld, rec, rec->line, "names",
                  "required: the server names this certificate answers for");
}

static void close_upstream(struct loader *ld, const struct sect_record *rec)
{
    const struct wr_upstream_cfg *u = &ld->cfg->upstreams[rec->index];
    if (seen_line(rec, "server") == 0)
        key_error(ld, rec, rec->line, "server", "at least one server is required");
    unsigned hash_line = seen_line(rec, "hash_key");
    if (hash_line != 0 && u->balance != WR_BALANCE_HASH)
        key_error(ld, rec, hash_line, "hash_key", "only used with balance = hash");
}

/* Sets r->action from the one action key given; else reports and returns -1.
 * With several, the two given first in the file are named. */
static int pick_action(struct loader *ld, const struct sect_record *rec, struct wr_route *r)
{
    const struct key_def *first = NULL, *second = NULL;
    size_t n = 0;
    for (size_t i = 0; i < sections[SECT_ROUTE].n_keys; i++) {
        const struct key_def *k = &route_keys[i];
        unsigned line = rec->seen[i];
        if ((k->flags & KEY_ACTION) == 0 || line == 0)
            continue;
        n++;
        if (first == NULL || line < rec->seen[first - route_keys]) {
            second = first;
            first = k;
        } else if (second == NULL || line < rec->seen[second - route_keys]) {
            second = k;
        }
    }
    r->action = n == 1 ? first->action : 0;
    if (n == 1)
        return 0;
    if (n == 0)
        section_error(ld, rec, "has no action; " ACTION_HINT);
    else
        section_error(ld, rec, "has both %s and %s; " ACTION_HINT, first->name, second->name);
    return -1;
}

/* Keys that belong to another action than the route's. */
static void check_action_keys(struct loader *ld, const struct sect_record *rec,
                              const struct wr_route *r)
{
    unsigned want = r->action == WR_ACTION_STATIC  ? KEY_STATIC
                    : r->action == WR_ACTION_PROXY ? KEY_PROXY
                                                   : 0;
    for (size_t i = 0; i < sections[SECT_ROUTE].n_keys; i++) {
        unsigned flags = route_keys[i].flags & (KEY_STATIC | KEY_PROXY);
        if (rec->seen[i] == 0 || flags == 0 || (flags & want) != 0)
            continue;
        key_error(ld, rec, rec->seen[i], route_keys[i].name, "%s",
                  flags == KEY_STATIC  ? "only for static routes (root)"
                  : flags == KEY_PROXY ? "only for proxy routes"
                                       : "only for static and proxy routes");
    }
}

static void check_capture(struct loader *ld, const struct sect_record *rec, unsigned line,
                          const char *key, unsigned used, const struct wr_route *r)
{
    if (used == 0)
        return;
    if (r->match_kind != WR_ROUTE_REGEX)
        key_error(ld, rec, line, key, "uses $%u but match is not a regex:", used);
    else if (used > r->n_regex_captures)
        key_error(ld, rec, line, key, "uses $%u but the regex has %u capture group%s", used,
                  r->n_regex_captures, r->n_regex_captures == 1 ? "" : "s");
}

static bool has_variables(const struct wr_tmpl *t)
{
    for (size_t i = 0; i < t->n_parts; i++) {
        if (t->parts[i].var != WR_TMPL_LITERAL)
            return true;
    }
    return false;
}

/* $N in templates against the regex's groups; skipped when match itself failed. */
static void check_route_captures(struct loader *ld, const struct sect_record *rec,
                                 const struct wr_route *r)
{
    if (r->pattern == NULL)
        return;
    unsigned line = seen_line(rec, "redirect");
    if (line != 0 && r->redirect_target.text != NULL)
        check_capture(ld, rec, line, "redirect", r->redirect_target.max_capture, r);
    line = seen_line(rec, "rewrite");
    if (line != 0 && r->rewrite.text != NULL) {
        if (r->match_kind != WR_ROUTE_REGEX && has_variables(&r->rewrite))
            key_error(ld, rec, line, "rewrite",
                      "variables need a regex: match; without one, rewrite is a fixed path");
        else
            check_capture(ld, rec, line, "rewrite", r->rewrite.max_capture, r);
    }
    for (size_t i = 0; i < ld->n_uses; i++)
        check_capture(ld, rec, ld->uses[i].line, ld->uses[i].key, ld->uses[i].max_capture, r);
}

/* A strip_prefix that an exact: or prefix: match does not start with can
 * only strip from some of the route's paths: likely a mistake (the paths
 * without it go on unchanged). A regex: match cannot be told. */
static void check_strip_prefix(struct loader *ld, const struct sect_record *rec, unsigned line,
                               const struct wr_route *r)
{
    if (r->match_kind == WR_ROUTE_REGEX || r->pattern == NULL || r->strip_prefix == NULL)
        return;
    size_t n = strlen(r->strip_prefix);
    if (r->pattern_len >= n && memcmp(r->pattern, r->strip_prefix, n) == 0)
        return;
    key_warning(ld, rec, line, "strip_prefix",
                "\"%s\" is not a prefix of match %s:%s; paths without it are sent unchanged",
                r->strip_prefix, r->match_kind == WR_ROUTE_PREFIX ? "prefix" : "exact",
                r->pattern);
}

/* ---- the HTTP cache: section ends (issue 20) --------------------------------- */

static void close_cache(struct loader *ld, const struct sect_record *rec)
{
    const struct wr_cache_cfg *c = &ld->cfg->caches[rec->index];
    /* Two tiers writing one directory would each count and evict the
     * other's files as their own. */
    for (size_t i = 0; c->path && i < rec->index; i++) {
        const struct wr_cache_cfg *o = &ld->cfg->caches[i];
        if (o->path && strcmp(o->path, c->path) == 0)
            key_error(ld, rec, seen_line(rec, "path"), "path",
                      "%s is [cache %s]'s already (one directory per section)", c->path,
                      o->name);
    }
    if (c->max_object_size <= c->max_size)
        return;
    char obj[32], max[32];
    format_size(c->max_object_size, obj, sizeof(obj));
    format_size(c->max_size, max, sizeof(max));
    unsigned line = seen_line(rec, "max_object_size");
    key_error(ld, rec, line != 0 ? line : seen_line(rec, "max_size"), "max_object_size",
              "%s is larger than max_size (%s)", obj, max);
}

/* The cache_* keys tune `cache`: without it they would do nothing, which
 * is surely not what was meant (as hash_key without balance = hash). */
static void check_route_cache(struct loader *ld, const struct sect_record *rec,
                              const struct wr_route *r)
{
    if (r->action != WR_ACTION_PROXY)
        return; /* check_action_keys named them */
    if (r->cache_name == NULL) {
        for (size_t i = 0; i < sections[SECT_ROUTE].n_keys; i++) {
            const char *name = route_keys[i].name;
            if (rec->seen[i] != 0 && strncmp(name, "cache_", 6) == 0)
                key_error(ld, rec, rec->seen[i], name, "needs cache (a [cache NAME] to use)");
        }
        return;
    }
    unsigned line = seen_line(rec, "cache_key");
    if (line != 0 && r->pattern != NULL)
        check_capture(ld, rec, line, "cache_key", r->cache_key.max_capture, r);
}

static void close_route(struct loader *ld, const struct sect_record *rec)
{
    struct wr_route *r = &ld->cfg->routes[rec->index];
    if (seen_line(rec, "match") == 0)
        key_error(ld, rec, rec->line, "match",
                  "required (exact:PATH, prefix:PATH or regex:PATTERN)");
    if (pick_action(ld, rec, r) == 0)
        check_action_keys(ld, rec, r);
    if (r->action == WR_ACTION_STATIC && r->match_kind == WR_ROUTE_EXACT && r->pattern != NULL &&
        strcmp(r->pattern, "*") == 0)
        key_error(ld, rec, seen_line(rec, "match"), "match",
                  "exact:* (OPTIONS *) names no file; use return, redirect or proxy");
    check_route_captures(ld, rec, r);
    unsigned strip_line = seen_line(rec, "strip_prefix");
    if (strip_line != 0 && seen_line(rec, "rewrite") != 0)
        key_error(ld, rec, strip_line, "strip_prefix", "cannot be combined with rewrite");
    else if (strip_line != 0)
        check_strip_prefix(ld, rec, strip_line, r);
    check_route_cache(ld, rec, r);
    ld->n_uses = 0;
}

static void close_section(struct loader *ld)
{
    if (ld->kind == SECT_NONE || ld->kind == SECT_SKIP) {
        ld->kind = SECT_SKIP;
        return;
    }
    const struct sect_record *rec = &ld->recs[ld->cur_rec];
    if (rec->kind == SECT_TLS)
        close_tls(ld, rec);
    else if (rec->kind == SECT_UPSTREAM)
        close_upstream(ld, rec);
    else if (rec->kind == SECT_ROUTE)
        close_route(ld, rec);
    else if (rec->kind == SECT_CACHE)
        close_cache(ld, rec);
    ld->kind = SECT_SKIP;
}

/* ---- reading lines ----------------------------------------------------------- */

/* inih's rule: stops at a byte of chars, or at ';' after whitespace (an inline comment). */
static const char *find_chars_or_comment(const char *s, const char *chars)
{
    bool was_space = false;
    while (*s != '\0' && strchr(chars, *s) == NULL && !(was_space && *s == ';')) {
        was_space = isspace((unsigned char)*s);
        s++;
    }
    return s;
}

/* ---- include ----------------------------------------------------------------- */

/*
 * `include = GLOB` reads other files where the line is, so to inih they are
 * one stream of lines. Files hold whole sections: each included file starts
 * outside any section and its last section ends with it, so a file means
 * the same wherever it is included; the section the include line stands in
 * is suspended meanwhile and resumes after the line (CONFIG.md writes it in
 * [server], with more [server] keys after it).
 * Positions (config.h) count the lines of all files in reading order, so
 * errors sort in reading order and route order is file order across files;
 * cfg->spans maps a position back to file and line.
 */

static const char *check_value_bytes(const char *value);

/* Appends path to cfg->files; returns its index (0, the main file, when
 * out of memory: messages then name the wrong file, nothing worse). */
static unsigned add_file(struct loader *ld, const char *path)
{
    struct wr_config *cfg = ld->cfg;
    char **more = grow_array(ld, cfg->files, cfg->n_files, sizeof(*more));
    if (more == NULL)
        return 0;
    cfg->files = more;
    more[cfg->n_files] = dup_mem(ld, path, strlen(path));
    return more[cfg->n_files] == NULL ? 0 : (unsigned)cfg->n_files++;
}

/* Records that position ld->line is line ld->in.line of file ld->in.file,
 * unless the last span already implies it. */
static void note_span(struct loader *ld)
{
    struct wr_config *cfg = ld->cfg;
    if (cfg->n_spans > 0) {
        const struct wr_config_span *last = &cfg->spans[cfg->n_spans - 1];
        if (last->file == ld->in.file &&
            last->first_line + (ld->line - last->first_pos) == ld->in.line)
            return;
    }
    struct wr_config_span *more = grow_array(ld, cfg->spans, cfg->n_spans, sizeof(*more));
    if (more == NULL)
        return;
    cfg->spans = more;
    more[cfg->n_spans++] = (struct wr_config_span){ld->line, ld->in.line, ld->in.file};
}

/* When line is "include = VALUE" (inline comment cut, as inih would),
 * sets *value and returns true. */
static bool is_include_line(const char *line, struct wr_str *value)
{
    static const char key[] = "include";
    if (strncmp(line, key, sizeof(key) - 1) != 0)
        return false;
    const char *p = line + sizeof(key) - 1;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p++ != '=')
        return false;
    while (isspace((unsigned char)*p))
        p++;
    const char *end = find_chars_or_comment(p, "");
    while (end > p && isspace((unsigned char)end[-1]))
        end--;
    *value = (struct wr_str){p, (size_t)(end - p)};
    return true;
}

static int compare_paths(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Copies n strings into *out (a new owned array). Returns n, or -1 when out
 * of memory. */
static ssize_t copy_paths(struct loader *ld, char *const *src, size_t n, char ***out)
{
    char **dst = calloc(n, sizeof(*dst));
    for (size_t i = 0; dst != NULL && i < n; i++) {
        if ((dst[i] = strdup(src[i])) == NULL) {
            free_strings(dst, i);
            dst = NULL;
        }
    }
    if (dst == NULL) {
        ld->is_oom = true;
        return -1;
    }
    *out = dst;
    return (ssize_t)n;
}

/* glob's error callback: a directory that does not exist matches nothing
 * (conf.d/ removed); one that cannot be read stops the include, rather than
 * silently leaving its files out. */
static int on_glob_error(const char *path, int err)
{
    (void)path;
    return err != ENOENT && err != ENOTDIR;
}

/*
 * The files pattern (absolute) names, sorted bytewise (glob's own order
 * follows the locale), into *paths (owned). Without a wildcard it names one
 * file, which must then exist (checked when opened); with one it may match
 * nothing, as nginx's include: an empty conf.d is not an error. Returns the
 * count, or -1 after reporting.
 */
static ssize_t expand_include(struct loader *ld, const char *pattern, char ***paths)
{
    if (strpbrk(pattern, "*?[") == NULL)
        return copy_paths(ld, (char *const[]){(char *)pattern}, 1, paths);
    glob_t g = {0};
    int rc = glob(pattern, GLOB_NOSORT, on_glob_error, &g);
    ssize_t n = 0;
    if (rc == 0)
        n = copy_paths(ld, g.gl_pathv, g.gl_pathc, paths);
    else if (rc != GLOB_NOMATCH)
        add_error(ld, ld->line, "include: %s: %s", pattern,
                  rc == GLOB_NOSPACE ? OOM_MSG : "a directory on the way cannot be read");
    globfree(&g);
    if (n > 0)
        qsort(*paths, (size_t)n, sizeof(**paths), compare_paths);
    return rc == 0 || rc == GLOB_NOMATCH ? n : -1;
}

/* Whether st is a file an include line being read came from (a cycle). */
static bool is_being_read(const struct loader *ld, const struct stat *st)
{
    for (size_t i = 0; i < ld->n_frames; i++) {
        const struct input *in = &ld->frames[i].parent;
        if (in->has_id && in->dev == st->st_dev && in->ino == st->st_ino)
            return true;
    }
    return false;
}

/* Makes path the input, for the include line f. Returns 0, or -1 after
 * reporting at the include line. */
static int open_included(struct loader *ld, const struct include_frame *f, const char *path)
{
    /* O_NONBLOCK: a FIFO matched by a pattern must not hang the load (it is
     * refused below); a regular file ignores the flag. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    FILE *fp = fd < 0 ? NULL : fdopen(fd, "r");
    struct stat st;
    if (fp == NULL || fstat(fd, &st) < 0) {
        add_error(ld, f->pos, "include: %s: %s", path, strerror(errno));
        if (fp != NULL)
            fclose(fp);
        else if (fd >= 0)
            close(fd);
        return -1;
    }
    const char *problem = NULL;
    if (!S_ISREG(st.st_mode))
        problem = "not a regular file";
    else if (is_being_read(ld, &st))
        problem = "includes itself (an include cycle)";
    else if (ld->cfg->n_files >= MAX_FILES)
        problem = fail(ld, "too many files (at most %d in all)", MAX_FILES);
    if (problem != NULL) {
        add_error(ld, f->pos, "include: %s: %s", path, problem);
        fclose(fp);
        return -1;
    }
    ld->in = (struct input){.fp = fp, .path = path, .has_id = true, .dev = st.st_dev,
                            .ino = st.st_ino, .file = add_file(ld, path)};
    ld->kind = SECT_NONE; /* a file starts outside any section */
    return 0;
}

/* Opens the next file of the innermost include line; when none is left,
 * resumes the including file in the section the include line stands in. */
static void open_next_included(struct loader *ld)
{
    struct include_frame *f = &ld->frames[ld->n_frames - 1];
    while (f->next < f->n_paths) {
        if (open_included(ld, f, f->paths[f->next++]) == 0)
            return;
    }
    ld->in = f->parent;
    free_strings(f->paths, f->n_paths);
    free(ld->uses);
    ld->kind = f->kind;
    ld->cur_rec = f->rec;
    ld->uses = f->uses;
    ld->n_uses = f->n_uses;
    ld->n_frames--;
}

/* An include line (value as written): suspends the current section (the
 * included files hold whole sections of their own), then makes the first
 * file it names the input. */
static void start_include(struct loader *ld, struct wr_str value)
{
    char written[PATH_MAX], buf[PATH_MAX];
    const char *msg = NULL, *pattern = NULL;
    if (!ld->allow_include)
        msg = "not available for a configuration read from memory";
    else if (!word_copy(value, written, sizeof(written), false))
        msg = "path too long";
    else if ((msg = check_value_bytes(written)) != NULL)
        ;
    else if (ld->n_frames == MAX_INCLUDE_DEPTH)
        msg = fail(ld, "nested more than %d deep", MAX_INCLUDE_DEPTH);
    else if ((pattern = absolute_path(ld, written, buf, sizeof(buf))) == NULL)
        msg = ld->msg;
    if (msg != NULL) {
        add_error(ld, ld->line, "include: %s", msg);
        return;
    }
    char **paths = NULL;
    ssize_t n = expand_include(ld, pattern, &paths);
    if (n <= 0)
        return;
    ld->frames[ld->n_frames++] = (struct include_frame){
        .parent = ld->in, .paths = paths, .n_paths = (size_t)n, .pos = ld->line,
        .kind = ld->kind, .rec = ld->cur_rec, .uses = ld->uses, .n_uses = ld->n_uses};
    ld->uses = NULL;
    ld->n_uses = 0;
    open_next_included(ld);
}

/* The included file being read has ended: so has its last section. */
static void end_included(struct loader *ld)
{
    close_section(ld);
    if (ld->read_errno != 0)
        add_error(ld, ld->frames[ld->n_frames - 1].pos, "include: %s: %s", ld->in.path,
                  strerror(ld->read_errno));
    ld->read_errno = 0;
    fclose(ld->in.fp);
    free(ld->in.dir);
    open_next_included(ld);
}

/* Closes what an early stop (inih out of memory) left open. */
static void end_all_includes(struct loader *ld)
{
    while (ld->n_frames > 0) {
        struct include_frame *f = &ld->frames[--ld->n_frames];
        if (ld->in.fp != f->parent.fp) {
            fclose(ld->in.fp);
            free(ld->in.dir);
        }
        ld->in = f->parent;
        free_strings(f->paths, f->n_paths);
        free(f->uses);
    }
}

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-' || c == '*';
}

static enum sect_kind find_section_kind(struct wr_str type)
{
    for (int k = SECT_SERVER; k < SECT_N; k++) {
        if (wr_str_eq(type, wr_str_from_cstr(sections[k].type)))
            return (enum sect_kind)k;
    }
    return SECT_NONE;
}

static bool is_section_name(struct wr_str name)
{
    for (size_t i = 0; i < name.len; i++) {
        if (!is_name_char(name.ptr[i]))
            return false;
    }
    return true;
}

/*
 * Splits inside ("type name", trimmed) into *kind and *name (NUL-terminated
 * in place; NULL when absent). Reports and returns -1 when bad.
 */
static int parse_header_words(struct loader *ld, char *inside, enum sect_kind *kind,
                              char **name)
{
    const char *rest = inside;
    struct wr_str type = next_word(&rest);
    struct wr_str nm = next_word(&rest);
    const char *problem = NULL;
    *kind = find_section_kind(type);
    if (*kind == SECT_NONE)
        problem = "unknown section";
    else if (next_word(&rest).len > 0)
        problem = "a section name is one word";
    else if (sections[*kind].names == NAME_NONE && nm.len > 0)
        problem = fail(ld, "[%s] takes no name", sections[*kind].type);
    else if (sections[*kind].names == NAME_REQUIRED && nm.len == 0)
        problem = fail(ld, "needs a name: [%s NAME]", sections[*kind].type);
    else if (!is_section_name(nm))
        problem = "a name uses letters, digits, '.', '_', '-' and '*'";
    if (problem != NULL) {
        add_error(ld, ld->line, "[%s]: %s", inside, problem);
        return -1;
    }
    *name = nm.len > 0 ? inside + (nm.ptr - inside) : NULL;
    if (*name != NULL)
        (*name)[nm.len] = '\0';
    return 0;
}

/* A "[...]" line: ends the current section and opens the next. False when bad. */
static bool read_section_header(struct loader *ld, const char *line)
{
    close_section(ld);
    const char *end = find_chars_or_comment(line + 1, "]");
    if (*end != ']') {
        add_error(ld, ld->line, "section header without ]");
        return false;
    }
    const char *after = end + 1;
    while (isspace((unsigned char)*after))
        after++;
    if (*after != '\0' && *after != ';' && *after != '#') {
        add_error(ld, ld->line, "unexpected text after ]");
        return false;
    }
    char inside[WORD_MAX], label[WORD_MAX];
    struct wr_str in = wr_str_trim((struct wr_str){line + 1, (size_t)(end - line - 1)});
    if (!word_copy(in, inside, sizeof(inside), false)) {
        add_error(ld, ld->line, "section header too long");
        return false;
    }
    snprintf(label, sizeof(label), "%s", inside);
    enum sect_kind kind;
    char *name;
    if (parse_header_words(ld, inside, &kind, &name) < 0)
        return false;
    /* The label for messages has single spaces: "[route  a ]" -> "route a". */
    if (name != NULL)
        snprintf(label, sizeof(label), "%s %s", sections[kind].type, name);
    open_section(ld, kind, name, label);
    return ld->kind != SECT_SKIP;
}

/*
 * A line that is not a comment or header must be key = value, split where
 * inih splits it. inih also takes "key: value" (Python configparser style);
 * we do not: it would turn a stray "127.0.0.1:8081" into a key named
 * "127.0.0.1", and CONFIG.md only ever writes '='.
 */
static bool check_key_line(struct loader *ld, const char *line)
{
    const char *end = find_chars_or_comment(line, "=:");
    if (*end != '=') {
        add_error(ld, ld->line, "expected \"key = value\", a [section] or a comment");
        return false;
    }
    if (end == line) {
        add_error(ld, ld->line, "missing key before '='");
        return false;
    }
    return true;
}

/* The next input byte, or EOF at the end, on a read error or past MAX_INPUT_BYTES. */
static int next_byte(struct loader *ld)
{
    if (ld->n_read >= MAX_INPUT_BYTES)
        return EOF;
    ld->n_read++;
    struct input *in = &ld->in;
    if (in->fp == NULL)
        return *in->text != '\0' ? (unsigned char)*in->text++ : EOF;
    int c = getc(in->fp);
    if (c == EOF && ferror(in->fp))
        ld->read_errno = errno != 0 ? errno : EIO;
    return c;
}

/* After a CR: consumes a following LF and says whether there was one. */
static bool take_lf(struct loader *ld)
{
    struct input *in = &ld->in;
    if (in->fp == NULL) {
        if (*in->text != '\n')
            return false;
        in->text++;
        return true;
    }
    int c = getc(in->fp);
    if (c == '\n')
        return true;
    if (c != EOF)
        ungetc(c, in->fp);
    return false;
}

/*
 * Reads one physical line (LF or CRLF ended, the end not kept) into
 * ld->line_buf, NUL-terminated. Returns its length, or -1 at the end of
 * input. Bytes past LINE_MAX_BYTES are consumed, dropped and reported
 * through *is_too_long; a NUL sets *has_nul.
 */
static int read_physical_line(struct loader *ld, bool *is_too_long, bool *has_nul)
{
    size_t n = 0;
    bool any = false;
    for (;;) {
        int c = next_byte(ld);
        if (c == EOF) {
            if (!any)
                return -1;
            break;
        }
        any = true;
        if (c == '\n' || (c == '\r' && take_lf(ld)))
            break;
        *has_nul = *has_nul || c == '\0';
        if (n + 1 >= LINE_MAX_BYTES) {
            *is_too_long = true;
            continue;
        }
        if (n + 1 >= ld->line_cap) {
            size_t cap = ld->line_cap ? ld->line_cap * 2 : 256;
            char *more = realloc(ld->line_buf, cap);
            if (more == NULL) {
                ld->is_oom = true;
                *is_too_long = true;
                continue;
            }
            ld->line_buf = more;
            ld->line_cap = cap;
        }
        ld->line_buf[n++] = (char)c;
    }
    if (ld->line_buf == NULL)
        return 0; /* an empty last line: nothing was stored */
    ld->line_buf[n] = '\0';
    return (int)n;
}

/*
 * A key line longer than inih's buffer: keep its value here and give inih
 * "key=" LONG_VALUE_MARK instead. Inline comments are cut as inih would.
 * Returns false (after reporting) when the line cannot be taken.
 */
static bool stash_long_line(struct loader *ld, char *line, char *buf, size_t cap)
{
    if (*line == ';' || *line == '#') {
        buf[0] = '\0';
        return true;
    }
    const char *eq = find_chars_or_comment(line, "=:");
    if (*line == '[' || *eq != '=' || eq == line) {
        add_error(ld, ld->line, "line too long (max %zu bytes) for anything but key = value",
                  cap - 1);
        if (*line == '[')
            close_section(ld); /* its keys are skipped, not given to the previous section */
        return false;
    }
    size_t key_len = (size_t)(eq - line);
    while (key_len > 0 && isspace((unsigned char)line[key_len - 1]))
        key_len--;
    const char *value = eq + 1;
    while (isspace((unsigned char)*value))
        value++;
    size_t value_len = (size_t)(find_chars_or_comment(value, "") - value);
    while (value_len > 0 && isspace((unsigned char)value[value_len - 1]))
        value_len--;
    if (key_len + sizeof(LONG_VALUE_MARK) + 1 > cap) {
        add_error(ld, ld->line, "key too long");
        return false;
    }
    free(ld->long_value);
    ld->long_value = strndup(value, value_len);
    if (ld->long_value == NULL) {
        ld->is_oom = true;
        return false;
    }
    snprintf(buf, cap, "%.*s=%s", (int)key_len, line, LONG_VALUE_MARK);
    return true;
}

/*
 * inih's reader (fgets-like): one physical line per call, so inih's line
 * numbers and ours agree. Lines we report ourselves reach inih empty, so
 * each problem is reported once, at its line.
 */
static char *read_line(char *buf, int num, void *stream)
{
    struct loader *ld = stream;
    bool is_too_long = false, has_nul = false;
    int len = -1;
    while (num >= 2 && (len = read_physical_line(ld, &is_too_long, &has_nul)) < 0 &&
           ld->n_frames > 0)
        end_included(ld);
    if (len < 0)
        return NULL;
    ld->line++;
    ld->in.line++;
    note_span(ld);
    /* The previous line's stashed value has been handled (inih calls the
     * handler before reading on); a later "key = \x01" must not revive it. */
    free(ld->long_value);
    ld->long_value = NULL;
    if (is_too_long || has_nul) {
        if (is_too_long)
            add_error(ld, ld->line, "line too long (max %d bytes)", LINE_MAX_BYTES - 1);
        else
            add_error(ld, ld->line, "line contains a NUL byte");
        buf[0] = '\0';
        return buf;
    }
    char *start = len > 0 ? ld->line_buf : (char *)"";
    if (ld->in.line == 1 && strncmp(start, "\xEF\xBB\xBF", 3) == 0)
        start += 3; /* UTF-8 byte order mark */
    while (isspace((unsigned char)*start))
        start++; /* see the file comment: indentation never continues a value */
    struct wr_str include;
    if (is_include_line(start, &include)) {
        start_include(ld, include); /* the next line comes from the included file */
        buf[0] = '\0';
        return buf;
    }
    if (strlen(start) + 1 > (size_t)num) {
        if (!stash_long_line(ld, start, buf, (size_t)num))
            buf[0] = '\0';
        return buf;
    }
    memcpy(buf, start, strlen(start) + 1);
    bool is_ok = true;
    if (buf[0] == '[')
        is_ok = read_section_header(ld, buf);
    else if (buf[0] != '\0' && buf[0] != ';' && buf[0] != '#')
        is_ok = check_key_line(ld, buf);
    if (!is_ok)
        buf[0] = '\0';
    return buf;
}

/* ---- keys ------------------------------------------------------------------- */

/* Control bytes have no business in any value (TAB aside); refusing them
 * here keeps them out of paths, headers and log lines alike. */
static const char *check_value_bytes(const char *value)
{
    if (*value == '\0')
        return "needs a value";
    for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++) {
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return "contains a control character";
    }
    return NULL;
}

/* inih's handler; the reader already tracked the section, so inih's is ignored. */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
    struct loader *ld = user;
    (void)section;
    if (ld->kind == SECT_SKIP)
        return 1;
    if (ld->kind == SECT_NONE) {
        add_error(ld, ld->line, "%s: outside any section", name);
        return 1;
    }
    struct sect_record *rec = &ld->recs[ld->cur_rec];
    const struct key_def *k = find_key(rec->kind, name);
    if (k == NULL) {
        key_error(ld, rec, ld->line, name, "unknown key");
        return 1;
    }
    size_t i = (size_t)(k - sections[rec->kind].keys);
    if (rec->seen[i] != 0 && (k->flags & KEY_REPEATABLE) == 0) {
        char at[PATH_MAX + 32];
        key_error(ld, rec, ld->line, name, "given twice, first at %s",
                  where_text(ld, rec->seen[i], at, sizeof(at)));
        return 1;
    }
    if (rec->seen[i] == 0)
        rec->seen[i] = ld->line;
    if (ld->long_value != NULL && strcmp(value, LONG_VALUE_MARK) == 0)
        value = ld->long_value; /* see LINE_MAX_BYTES */
    const char *msg = check_value_bytes(value);
    if (msg == NULL)
        msg = k->parse(ld, k, section_object(ld, rec->kind, rec->index), value);
    if (msg != NULL)
        key_error(ld, rec, ld->line, name, "%s", msg);
    return 1;
}

/* ---- after the last line ----------------------------------------------------- */

static const struct sect_record *find_record(const struct loader *ld, enum sect_kind kind,
                                             size_t index)
{
    for (size_t i = 0; i < ld->n_recs; i++) {
        if (ld->recs[i].kind == kind && ld->recs[i].index == index)
            return &ld->recs[i];
    }
    return NULL;
}

/* Fills what dst's section did not give from [tls]. */
static void inherit_tls(struct loader *ld, struct wr_tls_cfg *dst, const struct wr_tls_cfg *src,
                        const struct sect_record *rec)
{
    if (seen_line(rec, "protocols") == 0)
        set_string(ld, &dst->protocols, src->protocols);
    if (seen_line(rec, "ciphers") == 0)
        set_string(ld, &dst->ciphers, src->ciphers);
    if (seen_line(rec, "session_tickets") == 0)
        dst->session_tickets = src->session_tickets;
    if (seen_line(rec, "handshake_timeout") == 0)
        dst->handshake_timeout_ms = src->handshake_timeout_ms;
    if (seen_line(rec, "alpn") == 0)
        set_string(ld, &dst->alpn, src->alpn);
    if (seen_line(rec, "client_ca") == 0 && src->client_ca)
        set_string(ld, &dst->client_ca, src->client_ca);
    if (seen_line(rec, "verify_client") == 0)
        dst->verify_client = src->verify_client;
    if (seen_line(rec, "verify_depth") == 0)
        dst->verify_depth = src->verify_depth;
    if (seen_line(rec, "ocsp_stapling") == 0)
        dst->ocsp_stapling = src->ocsp_stapling;
}

/* [tls NAME] inherit from [tls], which then moves to tls[0]. */
static void resolve_tls(struct loader *ld)
{
    struct wr_config *cfg = ld->cfg;
    size_t d = find_named(cfg, SECT_TLS, NULL);
    if (d == SIZE_MAX)
        return;
    for (size_t i = 0; i < cfg->n_tls; i++) {
        const struct sect_record *rec = find_record(ld, SECT_TLS, i);
        if (i != d && rec != NULL)
            inherit_tls(ld, &cfg->tls[i], &cfg->tls[d], rec);
    }
    for (size_t i = 0; i < cfg->n_tls; i++) {
        const struct sect_record *rec = find_record(ld, SECT_TLS, i);
        if (cfg->tls[i].verify_client && !cfg->tls[i].client_ca && rec != NULL)
            add_error(ld, seen_line(rec, "verify_client") ? seen_line(rec, "verify_client")
                                                           : cfg->tls[i].line,
                      "[tls%s%s] verify_client: needs client_ca (the CAs client certificates "
                      "chain to)", cfg->tls[i].name ? " " : "",
                      cfg->tls[i].name ? cfg->tls[i].name : "");
    }
    struct wr_tls_cfg dflt = cfg->tls[d];
    memmove(&cfg->tls[1], &cfg->tls[0], d * sizeof(cfg->tls[0]));
    cfg->tls[0] = dflt;
    cfg->has_default_tls = true;
}

static void check_listens(struct loader *ld)
{
    const struct wr_server_cfg *s = &ld->cfg->server;
    const struct sect_record *rec = find_record(ld, SECT_SERVER, 0);
    /* When every listen was bad, those lines were reported already. */
    if (s->n_listens == 0 && (rec == NULL || seen_line(rec, "listen") == 0))
        add_error(ld, ld->singleton_line[SECT_SERVER],
                  "[server] listen: at least one listen is required");
    for (size_t i = 0; i < s->n_listens; i++) {
        if (s->listens[i].is_tls && !ld->cfg->has_default_tls)
            add_error(ld, s->listens[i].line, "[server] listen: tls needs a [tls] section");
        /* Trusting a PROXY header from anyone would let any client claim
         * any address: the senders must be named. */
        if (s->listens[i].is_proxy_protocol && s->n_proxy_from == 0)
            add_error(ld, s->listens[i].line,
                      "[server] listen: proxy_protocol needs [server] proxy_protocol_from "
                      "(the balancers that may send the header)");
    }
}

/* Where the keys that weir -t checks outside the loader were given. */
static void record_key_lines(struct loader *ld)
{
    struct wr_config *cfg = ld->cfg;
    for (size_t i = 0; i < ld->n_recs; i++) {
        const struct sect_record *rec = &ld->recs[i];
        if (rec->kind == SECT_SERVER) {
            cfg->server.user_line = seen_line(rec, "user");
            cfg->server.group_line = seen_line(rec, "group");
            cfg->server.error_log_line = seen_line(rec, "error_log");
            cfg->server.access_log_line = seen_line(rec, "access_log");
        } else if (rec->kind == SECT_ROUTE) {
            cfg->routes[rec->index].root_line = seen_line(rec, "root");
        }
    }
}

/* A route whose scheme no listen serves never matches: likely a mistake (a
 * TLS listen forgotten, or the redirect route of a TLS-only server). */
/* Reads route r's return_file into its return body; its type from the
 * extension unless return_type named one. 1 MiB at most: a page, not a
 * download (that is what root is for). */
static void read_return_file(struct loader *ld, const struct sect_record *rec, struct wr_route *r)
{
    unsigned line = seen_line(rec, "return_file");
    FILE *f = fopen(r->return_file, "re");
    char *body = malloc(RETURN_FILE_MAX + 1);
    size_t n = f && body ? fread(body, 1, RETURN_FILE_MAX + 1, f) : 0;
    if (!f || !body || ferror(f)) {
        add_error(ld, line, "[route %s] return_file: %s: %s", r->name, r->return_file,
                  !body ? "out of memory" : strerror(errno));
    } else if (n > RETURN_FILE_MAX) {
        add_error(ld, line, "[route %s] return_file: %s: larger than 1 MiB", r->name,
                  r->return_file);
    } else {
        free(r->return_body);
        r->return_body = body;
        r->return_body_len = n;
        body = NULL;
        if (!r->return_type) {
            struct wr_str t = wr_mime_type(wr_str_from_cstr(r->return_file));
            if (!(r->return_type = dup_mem(ld, t.ptr, t.len)))
                ld->is_oom = true;
        }
    }
    free(body);
    if (f)
        fclose(f);
}

/* return_type and return_file go with return; return_file replaces its
 * body (a status alone: return = 503). */
static void check_return_bodies(struct loader *ld)
{
    for (size_t i = 0; i < ld->n_recs; i++) {
        const struct sect_record *rec = &ld->recs[i];
        if (rec->kind != SECT_ROUTE)
            continue;
        struct wr_route *r = &ld->cfg->routes[rec->index];
        const char *key = r->return_file ? "return_file" : r->return_type ? "return_type" : NULL;
        if (!key)
            continue;
        if (r->action != WR_ACTION_RETURN)
            add_error(ld, seen_line(rec, key), "[route %s] %s: only with return", r->name, key);
        else if (r->return_file && r->return_body_len > 0)
            add_error(ld, seen_line(rec, key), "[route %s] return_file: return already has a "
                      "body (give the status alone: return = %d)", r->name, r->status);
        else if (r->return_file && (r->status == 204 || r->status == 304))
            add_error(ld, seen_line(rec, key), "[route %s] return_file: status %d has no body",
                      r->name, r->status);
        else if (r->return_file)
            read_return_file(ld, rec, r);
    }
}

/* auth_basic and auth_basic_file go together (routes and [admin]). */
static void check_auth(struct loader *ld)
{
    for (size_t i = 0; i < ld->n_recs; i++) {
        const struct sect_record *rec = &ld->recs[i];
        const char *challenge;
        char label[160];
        if (rec->kind == SECT_ROUTE) {
            challenge = ld->cfg->routes[rec->index].auth_challenge;
            snprintf(label, sizeof(label), "route %s", ld->cfg->routes[rec->index].name);
        } else if (rec->kind == SECT_ADMIN) {
            challenge = ld->cfg->admin.auth_challenge;
            snprintf(label, sizeof(label), "admin");
        } else {
            continue;
        }
        unsigned realm_line = seen_line(rec, "auth_basic");
        unsigned file_line = seen_line(rec, "auth_basic_file");
        if (challenge && file_line == 0)
            add_error(ld, realm_line, "[%s] auth_basic: needs auth_basic_file (the users)", label);
        if (!challenge && file_line != 0 && realm_line == 0)
            add_error(ld, file_line, "[%s] auth_basic_file: needs auth_basic (the realm)", label);
    }
}

static int compare_cstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Gives each route with access_log = PATH its file: [server]'s when the
 * same path, else one of cfg->route_access_logs (distinct, sorted, so a
 * reload naming the same files in another order keeps them). */
static void collect_route_logs(struct loader *ld)
{
    struct wr_config *cfg = ld->cfg;
    for (size_t i = 0; i < ld->n_recs; i++) {
        const struct sect_record *rec = &ld->recs[i];
        const struct wr_route *r = rec->kind == SECT_ROUTE ? &cfg->routes[rec->index] : NULL;
        if (!r || !r->access_log ||
            (cfg->server.access_log && strcmp(r->access_log, cfg->server.access_log) == 0) ||
            has_string(cfg->route_access_logs, cfg->n_route_access_logs,
                       wr_str_from_cstr(r->access_log)))
            continue;
        if (cfg->n_route_access_logs == WR_ROUTE_ACCESS_LOGS_MAX) {
            add_error(ld, seen_line(rec, "access_log"), "[route %s] access_log: at most %d files "
                      "besides [server]'s access_log", r->name, WR_ROUTE_ACCESS_LOGS_MAX);
            return;
        }
        if (push_string(ld, &cfg->route_access_logs, &cfg->n_route_access_logs,
                        wr_str_from_cstr(r->access_log)) < 0)
            return;
    }
    if (cfg->n_route_access_logs > 1)
        qsort(cfg->route_access_logs, cfg->n_route_access_logs, sizeof(char *), compare_cstr);
    for (size_t i = 0; i < cfg->n_routes; i++) {
        struct wr_route *r = &cfg->routes[i];
        for (size_t k = 0; r->access_log && k < cfg->n_route_access_logs; k++) {
            if (strcmp(cfg->route_access_logs[k], r->access_log) == 0)
                r->access_log_id = (int)k + 1;
        }
    }
}

static void check_route_schemes(struct loader *ld)
{
    const struct wr_server_cfg *s = &ld->cfg->server;
    if (s->n_listens == 0)
        return; /* reported by check_listens */
    bool has_tls = false, has_plain = false;
    for (size_t i = 0; i < s->n_listens; i++) {
        has_tls |= s->listens[i].is_tls;
        has_plain |= !s->listens[i].is_tls;
    }
    for (size_t i = 0; i < ld->n_recs; i++) {
        const struct sect_record *rec = &ld->recs[i];
        if (rec->kind != SECT_ROUTE)
            continue;
        const enum wr_route_scheme scheme = ld->cfg->routes[rec->index].scheme;
        if ((scheme == WR_ROUTE_SCHEME_HTTPS && !has_tls) ||
            (scheme == WR_ROUTE_SCHEME_HTTP && !has_plain))
            key_warning(ld, rec, seen_line(rec, "scheme"), "scheme",
                        "no listen serves %s: this route never matches",
                        scheme == WR_ROUTE_SCHEME_HTTPS ? "https (a listen with tls)"
                                                        : "plain http (a listen without tls)");
    }
}

bool wr_config_server_name(const struct wr_upstream_server_cfg *srv, char *host, size_t cap,
                           uint16_t *port)
{
    const char *colon = srv->is_named ? strrchr(srv->authority, ':') : NULL;
    uint64_t p;
    if (colon == NULL || parse_number(colon + 1, &p) < 0 || p < 1 || p > 65535)
        return false;
    *port = (uint16_t)p;
    return word_copy((struct wr_str){srv->authority, (size_t)(colon - srv->authority)}, host,
                     cap, true);
}

/* Appends to built the servers the placeholder srv of u stands for: one per
 * address its name has now (with `[server] resolver`, asked of those
 * nameservers). Returns 0, or -1 after reporting at srv's line. */
static int expand_named(struct loader *ld, const struct wr_upstream_cfg *u,
                        const struct wr_upstream_server_cfg *srv, struct wr_upstream_cfg *built)
{
    char host[WORD_MAX];
    uint16_t port;
    if (!wr_config_server_name(srv, host, sizeof(host), &port))
        return -1; /* add_named_servers checked it */
    const struct wr_server_cfg *sc = &ld->cfg->server;
    struct wr_listen_addr addrs[WR_CONFIG_MAX_ADDRS_PER_NAME];
    const char *why = "no address";
    int n = sc->n_resolvers > 0 && ld->resolve_ns != NULL
                ? ld->resolve_ns(sc->resolvers, sc->n_resolvers, host, port, addrs,
                                 WR_CONFIG_MAX_ADDRS_PER_NAME, &why)
                : ld->resolve(host, port, addrs, WR_CONFIG_MAX_ADDRS_PER_NAME, &why);
    if (n <= 0) {
        add_error(ld, srv->line, "[upstream %s] server: cannot resolve \"%s\": %s", u->name,
                  host, why);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char label[WORD_MAX + sizeof(addrs[i].text) + 4];
        snprintf(label, sizeof(label), "%s (%s)", srv->authority, addrs[i].text);
        struct wr_upstream_server_cfg one = *srv;
        one.addr = addrs[i];
        if (add_server(ld, built, &one, label, srv->authority) < 0) {
            ld->is_oom = true;
            return -1;
        }
    }
    return 0;
}

static void free_servers(struct wr_upstream_server_cfg *servers, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(servers[i].label);
        free(servers[i].authority);
    }
    free(servers);
}

/* Replaces every name placeholder (add_named_servers) by the servers of its
 * addresses, in place, so the servers keep the file's order. */
static void resolve_named_servers(struct loader *ld)
{
    for (size_t i = 0; i < ld->cfg->n_upstreams && !ld->is_oom; i++) {
        struct wr_upstream_cfg *u = &ld->cfg->upstreams[i];
        bool has_named = false;
        for (size_t j = 0; j < u->n_servers; j++)
            has_named |= u->servers[j].is_named;
        if (!has_named)
            continue;
        struct wr_upstream_cfg built = {0};
        for (size_t j = 0; j < u->n_servers && !ld->is_oom; j++) {
            const struct wr_upstream_server_cfg *srv = &u->servers[j];
            if (srv->is_named)
                expand_named(ld, u, srv, &built);
            else if (add_server(ld, &built, srv, srv->label, srv->authority) < 0)
                ld->is_oom = true;
        }
        free_servers(u->servers, u->n_servers);
        u->servers = built.servers;
        u->n_servers = built.n_servers;
    }
}

/* One health record per server, once the server arrays stop growing. */
static void alloc_health(struct loader *ld)
{
    for (size_t i = 0; i < ld->cfg->n_upstreams; i++) {
        struct wr_upstream_cfg *u = &ld->cfg->upstreams[i];
        u->health = calloc(u->n_servers ? u->n_servers : 1, sizeof(*u->health));
        if (u->health == NULL) {
            ld->is_oom = true;
            return;
        }
        for (size_t j = 0; j < u->n_servers; j++) {
            atomic_init(&u->health[j].fail_window_start_ms, 0);
            atomic_init(&u->health[j].fails, 0);
            atomic_init(&u->health[j].down_until_ms, 0);
            atomic_init(&u->health[j].check, WR_CHECK_UNKNOWN);
        }
    }
}

static void resolve_proxies(struct loader *ld)
{
    struct wr_config *cfg = ld->cfg;
    for (size_t i = 0; i < ld->n_recs; i++) {
        const struct sect_record *rec = &ld->recs[i];
        if (rec->kind != SECT_ROUTE || cfg->routes[rec->index].proxy == NULL)
            continue;
        struct wr_route *r = &cfg->routes[rec->index];
        /* [server] may come after the route in the file: known only now. */
        if (seen_line(rec, "underscores_in_headers") == 0)
            r->underscores_in_headers = cfg->server.underscores_in_headers;
        size_t u = find_named(cfg, SECT_UPSTREAM, r->proxy);
        if (u != SIZE_MAX)
            r->upstream = &cfg->upstreams[u];
        else
            key_error(ld, rec, seen_line(rec, "proxy"), "proxy", "no upstream named \"%s\"",
                      r->proxy);
    }
}

/* Routes' cache = NAME to their [cache NAME] (the caches array has stopped
 * growing), and the default cache_key of those that did not give one. A
 * section no route uses gets a warning: it would hold a store for nothing. */
static void resolve_caches(struct loader *ld)
{
    struct wr_config *cfg = ld->cfg;
    bool *is_used = calloc(cfg->n_caches ? cfg->n_caches : 1, sizeof(*is_used));
    if (is_used == NULL) {
        ld->is_oom = true;
        return;
    }
    for (size_t i = 0; i < ld->n_recs; i++) {
        const struct sect_record *rec = &ld->recs[i];
        struct wr_route *r = rec->kind == SECT_ROUTE ? &cfg->routes[rec->index] : NULL;
        if (r == NULL || r->cache_name == NULL || r->action != WR_ACTION_PROXY)
            continue;
        size_t c = find_named(cfg, SECT_CACHE, r->cache_name);
        if (c == SIZE_MAX) {
            key_error(ld, rec, seen_line(rec, "cache"), "cache", "no cache named \"%s\"",
                      r->cache_name);
            continue;
        }
        r->cache = &cfg->caches[c];
        is_used[c] = true;
        const char *err;
        if (r->cache_key.text == NULL &&
            wr_tmpl_init(&r->cache_key, "$scheme$host$request_uri", &err) < 0)
            ld->is_oom = true; /* the default compiles: only memory can fail */
    }
    for (size_t c = 0; c < cfg->n_caches; c++) {
        const struct wr_config_where w = where(ld, cfg->caches[c].line);
        if (!is_used[c])
            push_message(ld, cfg->caches[c].line,
                         format_new("%s:%u: warning: [cache %s]: no route has cache = %s",
                                    w.file, w.line, cfg->caches[c].name, cfg->caches[c].name),
                         true);
    }
    free(is_used);
}

/* ---- freeing ----------------------------------------------------------------- */

static void free_headers(struct wr_header_cfg *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(h[i].name);
        wr_tmpl_fini(&h[i].value);
    }
    free(h);
}

static void free_route(struct wr_route *r)
{
    free(r->name);
    free(r->pattern);
    pcre2_code_free(r->regex);
    free(r->literal);
    free_strings(r->hosts, r->n_hosts);
    free_strings(r->other_methods, r->n_other_methods);
    free(r->allow);
    free(r->return_body);
    free(r->return_type);
    free(r->return_file);
    wr_tmpl_fini(&r->redirect_target);
    free(r->root);
    free(r->strip_prefix);
    free(r->index);
    free(r->proxy);
    wr_tmpl_fini(&r->rewrite);
    free_headers(r->set_headers, r->n_set_headers);
    free_headers(r->add_headers, r->n_add_headers);
    free_strings(r->hide_headers, r->n_hide_headers);
    free_strings(r->compress_types, r->n_compress_types);
    free(r->access);
    free(r->auth_challenge);
    free(r->access_log);
    free_auth_users(r->auth_users, r->n_auth_users);
    free(r->cache_name);
    wr_tmpl_fini(&r->cache_key);
    free((void *)r->cache_opts.valid); /* the route's own (config.h) */
    free_error_pages(&r->error_pages);
}

static void free_upstream(struct wr_upstream_cfg *u)
{
    free(u->name);
    free_servers(u->servers, u->n_servers);
    free(u->health);
    free(u->hash_key);
    free(u->health_check);
    free(u->tls_ca);
    free(u->tls_sni);
}

static void free_tls(struct wr_tls_cfg *t)
{
    free(t->name);
    free_strings(t->names, t->n_names);
    free_strings(t->certs, t->n_certs);
    free_strings(t->keys, t->n_keys);
    free(t->protocols);
    free(t->ciphers);
    free(t->alpn);
    free(t->client_ca);
    free(t->ocsp_file);
}

/* The [cache NAME] sections, and the snapshot's reference on each store
 * (main set them; config cannot call into cache_store itself). */
static void free_caches(struct wr_config *cfg)
{
    for (size_t i = 0; i < cfg->n_caches; i++) {
        struct wr_cache_cfg *c = &cfg->caches[i];
        if (c->store != NULL && cfg->release_cache != NULL)
            cfg->release_cache(c->store);
        free(c->name);
        free(c->path);
    }
    free(cfg->caches);
}

static void free_derived(struct wr_config *cfg);

static void config_free(struct wr_config *cfg)
{
    if (cfg == NULL)
        return;
    if (cfg->derived_from != NULL) {
        free_derived(cfg);
        return;
    }
    free(cfg->server.resolvers);
    if (cfg->tls_set != NULL && cfg->release_tls_set != NULL)
        cfg->release_tls_set(cfg->tls_set);
    free(cfg->path);
    free_strings(cfg->files, cfg->n_files);
    free(cfg->spans);
    free(cfg->server.listens);
    free(cfg->server.user);
    free(cfg->server.group);
    free(cfg->server.server_header);
    free(cfg->server.access_log);
    wr_log_format_fini(&cfg->server.access_log_format);
    free(cfg->server.proxy_from);
    free(cfg->admin.access);
    free(cfg->admin.auth_challenge);
    free_auth_users(cfg->admin.auth_users, cfg->admin.n_auth_users);
    free(cfg->server.error_log);
    free_error_pages(&cfg->server.error_pages);
    for (size_t i = 0; i < cfg->n_tls; i++)
        free_tls(&cfg->tls[i]);
    free(cfg->tls);
    for (size_t i = 0; i < cfg->n_upstreams; i++)
        free_upstream(&cfg->upstreams[i]);
    free(cfg->upstreams);
    wr_route_index_free(cfg->route_index);
    for (size_t i = 0; i < cfg->n_route_access_logs; i++)
        free(cfg->route_access_logs[i]);
    free(cfg->route_access_logs);
    for (size_t i = 0; i < cfg->n_routes; i++)
        free_route(&cfg->routes[i]);
    free(cfg->routes);
    free_caches(cfg);
    free(cfg);
}

/* ---- derived snapshots (wr_config_derive) ---------------------------------------- */

/* A derived snapshot owns its upstreams' server and health arrays and its
 * arrays of upstreams and routes; every pointer inside them but those is
 * the loaded snapshot's. */
static void free_derived(struct wr_config *cfg)
{
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        free_servers(cfg->upstreams[i].servers, cfg->upstreams[i].n_servers);
        free(cfg->upstreams[i].health);
    }
    free(cfg->upstreams);
    free(cfg->routes);
    wr_config_unref(cfg->derived_from);
    free(cfg);
}

/* dst's own copy of src[0..n) (labels and authorities too) and a health
 * array of unknown verdicts. Returns 0 or -1 (dst's arrays then NULL/partial,
 * n_servers counting what free_servers must free). */
static int copy_servers(struct wr_upstream_cfg *dst, const struct wr_upstream_server_cfg *src,
                        size_t n)
{
    dst->servers = calloc(n ? n : 1, sizeof(*dst->servers));
    dst->health = calloc(n ? n : 1, sizeof(*dst->health));
    dst->n_servers = 0;
    if (dst->servers == NULL || dst->health == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        dst->servers[i] = src[i];
        dst->servers[i].metrics_id = 0;
        dst->servers[i].label = strdup(src[i].label);
        dst->servers[i].authority = strdup(src[i].authority);
        dst->n_servers++;
        if (dst->servers[i].label == NULL || dst->servers[i].authority == NULL)
            return -1;
        atomic_init(&dst->health[i].fail_window_start_ms, 0);
        atomic_init(&dst->health[i].fails, 0);
        atomic_init(&dst->health[i].down_until_ms, 0);
        atomic_init(&dst->health[i].check, WR_CHECK_UNKNOWN);
    }
    return 0;
}

struct wr_config *wr_config_derive(struct wr_config *cur,
                                   struct wr_upstream_server_cfg *const *servers,
                                   const size_t *n_servers)
{
    struct wr_config *d = malloc(sizeof(*d));
    if (d == NULL)
        return NULL;
    /* Every member but refs, which workers change as we read (a plain copy
     * of it would race): the scalars and borrowed pointers; the owned
     * arrays are replaced below. */
    _Static_assert(offsetof(struct wr_config, refs) == 0, "refs comes first");
    const size_t skip = offsetof(struct wr_config, path);
    memcpy((char *)d + skip, (const char *)cur + skip, sizeof(*d) - skip);
    atomic_init(&d->refs, 1);
    d->derived_from = wr_config_ref(cur->derived_from ? cur->derived_from : cur);
    d->release_tls_set = NULL; /* the loaded snapshot releases its TLS set */
    /* Caches and their stores are the loaded snapshot's too (routes point
     * into its caches array, copied as they are below); it releases them. */
    d->release_cache = NULL;
    d->upstreams = calloc(cur->n_upstreams ? cur->n_upstreams : 1, sizeof(*d->upstreams));
    d->routes = malloc((cur->n_routes ? cur->n_routes : 1) * sizeof(*d->routes));
    d->n_upstreams = 0;
    bool is_ok = d->upstreams != NULL && d->routes != NULL;
    for (size_t i = 0; is_ok && i < cur->n_upstreams; i++) {
        const struct wr_upstream_cfg *from = &cur->upstreams[i];
        d->upstreams[i] = *from;
        d->n_upstreams++;
        is_ok = copy_servers(&d->upstreams[i], servers[i] ? servers[i] : from->servers,
                             servers[i] ? n_servers[i] : from->n_servers) == 0;
    }
    if (!is_ok) {
        free_derived(d);
        return NULL;
    }
    /* Routes name their upstream by pointer: point them at ours. The
     * route index holds positions, so it is shared as it is. */
    for (size_t i = 0; i < cur->n_routes; i++) {
        d->routes[i] = cur->routes[i];
        if (cur->routes[i].upstream != NULL)
            d->routes[i].upstream = &d->upstreams[cur->routes[i].upstream - cur->upstreams];
    }
    return d;
}

/* ---- entry points ------------------------------------------------------------- */

static int compare_errors(const void *a, const void *b)
{
    const struct pending_error *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Appends text (taken) to *lines; on failure frees it. Returns 0 or -1. */
static int append_line(char ***lines, size_t *n, char *text)
{
    char **more = realloc(*lines, (*n + 1) * sizeof(*more));
    if (more == NULL) {
        free(text);
        return -1;
    }
    *lines = more;
    more[(*n)++] = text;
    return 0;
}

/* Moves ld's errors and warnings, in line order, to the end of errs (or
 * drops them). */
static void hand_over_errors(struct loader *ld, struct wr_config_errors *errs)
{
    if (ld->n_errors == 0)
        return;
    qsort(ld->errors, ld->n_errors, sizeof(ld->errors[0]), compare_errors);
    for (size_t i = 0; i < ld->n_errors; i++) {
        const struct pending_error *e = &ld->errors[i];
        if (errs == NULL)
            free(e->text);
        else if (e->is_warning)
            append_line(&errs->warnings, &errs->n_warnings, e->text);
        else
            append_line(&errs->lines, &errs->n_lines, e->text);
    }
    free(ld->errors);
    ld->errors = NULL;
}

/* Reads everything from ld's input; returns the snapshot or NULL. */
static struct wr_config *run_loader(struct loader *ld, const char *name,
                                    struct wr_config_errors *errs)
{
    ld->cfg = calloc(1, sizeof(*ld->cfg));
    ld->in.path = name;
    if (ld->cfg == NULL || set_string(ld, &ld->cfg->path, name) < 0) {
        add_file_error(ld, OOM_MSG);
    } else {
        atomic_init(&ld->cfg->refs, 1);
        ld->in.file = add_file(ld, name);
        apply_defaults(ld, SECT_SERVER, &ld->cfg->server);
        apply_defaults(ld, SECT_LIMITS, &ld->cfg->limits);
        apply_defaults(ld, SECT_ADMIN, &ld->cfg->admin);
        apply_defaults(ld, SECT_HTTP2, &ld->cfg->http2);
        apply_defaults(ld, SECT_COMPRESSION, &ld->cfg->compression);
        int rc = ini_parse_stream(read_line, ld, on_key, ld);
        end_all_includes(ld);
        close_section(ld);
        if (rc > 0 && !has_error_at(ld, (unsigned)rc))
            add_error(ld, (unsigned)rc, "syntax error");
        else if (rc < 0)
            add_file_error(ld, rc == -2 ? OOM_MSG : "cannot read");
        if (ld->read_errno != 0)
            add_file_error(ld, strerror(ld->read_errno));
        if (ld->n_read >= MAX_INPUT_BYTES)
            add_file_error(ld, "larger than 16 MiB");
        resolve_named_servers(ld);
        resolve_tls(ld);
        check_listens(ld);
        record_key_lines(ld);
        check_route_schemes(ld);
        collect_route_logs(ld);
        check_return_bodies(ld);
        check_auth(ld);
        resolve_proxies(ld);
        resolve_caches(ld);
        resolve_error_pages(ld);
        alloc_health(ld);
        for (size_t i = 0; i < ld->cfg->n_routes; i++)
            ld->cfg->has_websocket_route |= ld->cfg->routes[i].action == WR_ACTION_PROXY &&
                                            ld->cfg->routes[i].websocket;
        if (ld->n_errors == ld->n_warnings && !ld->is_oom &&
            (ld->cfg->route_index = wr_route_index_new(ld->cfg->routes, ld->cfg->n_routes)) == NULL)
            ld->is_oom = true;
        if (ld->is_oom)
            add_file_error(ld, OOM_MSG);
    }
    struct wr_config *cfg = ld->cfg;
    if (ld->n_errors > ld->n_warnings || ld->is_oom) {
        config_free(cfg);
        cfg = NULL;
    }
    hand_over_errors(ld, errs);
    free(ld->recs);
    free(ld->uses);
    free(ld->in.dir);
    free(ld->line_buf);
    free(ld->long_value);
    return cfg;
}

struct wr_config *wr_config_load(const char *path, struct wr_config_errors *errs)
{
    const struct wr_config_options opts = {.resolve = wr_config_resolve_getaddrinfo,
                                           .allow_include = true};
    return wr_config_load_opts(path, &opts, errs);
}

struct wr_config *wr_config_load_opts(const char *path, const struct wr_config_options *opts,
                                      struct wr_config_errors *errs)
{
    struct loader ld = {.file = path, .resolve = opts->resolve, .resolve_ns = opts->resolve_ns,
                        .allow_include = opts->allow_include};
    ld.in.fp = fopen(path, "re");
    struct stat st;
    if (ld.in.fp == NULL) {
        add_file_error(&ld, strerror(errno));
        hand_over_errors(&ld, errs);
        return NULL;
    }
    if (fstat(fileno(ld.in.fp), &st) == 0)
        ld.in = (struct input){.fp = ld.in.fp, .has_id = true, .dev = st.st_dev,
                               .ino = st.st_ino};
    FILE *fp = ld.in.fp;
    struct wr_config *cfg = run_loader(&ld, path, errs);
    fclose(fp);
    return cfg;
}

struct wr_config *wr_config_parse_string(const char *text, const char *name,
                                         struct wr_config_errors *errs)
{
    const struct wr_config_options opts = {.resolve = wr_config_resolve_getaddrinfo,
                                           .allow_include = true};
    return wr_config_parse_string_opts(text, name, &opts, errs);
}

struct wr_config *wr_config_parse_string_opts(const char *text, const char *name,
                                              const struct wr_config_options *opts,
                                              struct wr_config_errors *errs)
{
    struct loader ld = {.file = name, .in.text = text, .resolve = opts->resolve,
                        .resolve_ns = opts->resolve_ns, .allow_include = opts->allow_include};
    return run_loader(&ld, name, errs);
}

void wr_config_errors_fini(struct wr_config_errors *errs)
{
    if (errs == NULL)
        return;
    free_strings(errs->lines, errs->n_lines);
    errs->lines = NULL;
    errs->n_lines = 0;
    free_strings(errs->warnings, errs->n_warnings);
    errs->warnings = NULL;
    errs->n_warnings = 0;
}

int wr_config_errors_add(struct wr_config_errors *errs, bool is_warning, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *text = n < 0 ? NULL : malloc((size_t)n + 1);
    if (text == NULL)
        return -1;
    va_start(ap, fmt);
    vsnprintf(text, (size_t)n + 1, fmt, ap);
    va_end(ap);
    if (is_warning)
        return append_line(&errs->warnings, &errs->n_warnings, text);
    return append_line(&errs->lines, &errs->n_lines, text);
}

struct wr_config_where wr_config_where(const struct wr_config *cfg, unsigned pos)
{
    const struct wr_config_span *span = NULL;
    for (size_t i = 0; i < cfg->n_spans && cfg->spans[i].first_pos <= pos; i++)
        span = &cfg->spans[i];
    if (pos == 0 || span == NULL || span->file >= cfg->n_files)
        return (struct wr_config_where){cfg->path, pos};
    return (struct wr_config_where){cfg->files[span->file],
                                    span->first_line + (pos - span->first_pos)};
}

struct wr_config *wr_config_ref(struct wr_config *cfg)
{
    atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
    return cfg;
}

void wr_config_unref(struct wr_config *cfg)
{
    /* acq_rel: the freeing thread must see every other thread's last reads
     * finished before it frees (release by them, acquire by it). */
    if (cfg != NULL && atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) == 1)
        config_free(cfg);
}
