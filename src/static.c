/*
 * static: the `root` action: files under a directory.
 *
 * The request path, in order: method (GET/HEAD, else 405) -> map the
 * normalised path under root (dotfile segments 404 unless `dotfiles = on`)
 * -> open through the worker's open-file cache (openat2 RESOLVE_BENEATH, so
 * no path and, with follow_symlinks = off, no symlink leads outside root,
 * with no check-then-open race) -> directory: 301 to the slash form, the
 * index file, an autoindex listing or 403 -> precompressed variant ->
 * preconditions (RFC 9110 §13.2.2: 412 or 304) -> Range (206 or 416) ->
 * head; the body is handed to the front end as a descriptor and sent
 * with sendfile, never read into memory.
 *
 * Choices:
 *  - Several ranges in one Range field get the whole file with 200:
 *    multipart/byteranges is not implemented, because coalescing and
 *    boundaries cost more than they help (clients that ask for several
 *    ranges accept a 200). More than WR_HTTP_COND_MAX_RANGES ranges, or a
 *    malformed Range, is ignored the same way (RFC 9110 §14.2 allows it).
 *  - A directory without index: the autoindex listing when `autoindex = on`,
 *    else 403, as nginx does.
 *  - The listing is written into a memfd and sent as a file body, so it
 *    costs no memory that outlives the handler.
 *  - The strong ETag is "<size>-<mtime ns>-<inode>" in hex; a precompressed
 *    variant gets its own, with "-br" or "-gz" appended inside the quotes.
 */
#include "weir/static.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "weir/clock.h"
#include "weir/compress.h"
#include "weir/compress_filter.h"
#include "weir/http_cond.h"
#include "weir/metrics.h"
#include "weir/mime.h"
#include "weir/path.h"
#include "weir/static_cache.h"

/* Longest path under root we look up (index name included); longer: 414.
 * the front end guarantees at least PATH_MAX bytes of scratch behind the path. */
#define REL_MAX (PATH_MAX - 16)
/* Most entries an autoindex listing shows. */
#define AUTOINDEX_MAX_ENTRIES 10000

static int status_for_errno(int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
    case EXDEV:  /* RESOLVE_BENEATH: the path tried to leave root */
    case ELOOP:
    case ENAMETOOLONG:
        return 404;
    case EACCES:
    case EPERM:
        return 403;
    default:
        return 500;
    }
}

/* Permission errors worth a line: at most this many per second per worker
 * (any client can repeat the request at will), the rest counted. */
#define FORBIDDEN_LOG_PER_SECOND 10
/* Bytes of a requested path an error line shows. */
#define LOG_PATH_MAX 256

/*
 * The status for a failed open or read of rel under the route's root. A
 * permission error (a file of mode 0600 owned by another user, a directory
 * weir cannot search) is the operator's mistake, and the client's 403 says
 * nothing of it: it gets an error line naming the path, the errno text and
 * the request. rel comes from the request: escaped and bounded.
 */
static int open_failed(const struct wr_exchange *ex, const char *rel, int err)
{
    int status = status_for_errno(err);
    if (status != 403 || !wr_log_is_enabled(WR_LOG_ERROR))
        return status;
    uint64_t n_suppressed = 0;
    struct wr_log_budget *budget =
        ex->worker_state ? wr_static_cache_log_budget(ex->worker_state) : NULL;
    if (budget &&
        !wr_log_budget_take(budget, FORBIDDEN_LOG_PER_SECOND, wr_clock_now_ms(), &n_suppressed))
        return status;
    char path[4 * LOG_PATH_MAX + 4];
    wr_log_escape(path, sizeof(path), wr_str_from_cstr(rel), LOG_PATH_MAX);
    char suppressed[64] = "";
    if (n_suppressed > 0)
        snprintf(suppressed, sizeof(suppressed), " (%llu similar lines not logged)",
                 (unsigned long long)n_suppressed);
    wr_log_request(WR_LOG_ERROR, ex->worker_id, ex->conn_id, ex->log_subject,
                   "open \"%s\" under root %s: %s; 403%s", path, ex->route->root,
                   strerror(err), suppressed);
    return status;
}

/* Maps the normalised path (after strip_prefix) to a path relative to root:
 * no leading '/', "%25" decoded, "%2F" refused, and no dotfile segment
 * unless allow_dot ("." and ".." segments are gone after normalisation). */
static int map_path(struct wr_str path, const char *strip, bool allow_dot, char *out, size_t cap);

int wr_static_map_path(const struct wr_route *route, struct wr_str path, char *out, size_t cap)
{
    return map_path(path, route->strip_prefix, route->dotfiles, out, cap);
}

static int map_path(struct wr_str path, const char *strip, bool allow_dot, char *out, size_t cap)
{
    /* Only at a segment boundary: "/files" maps "/filesx" to "filesx", not
     * to "x" (nginx's alias "off by slash"). */
    if (strip)
        wr_path_strip_prefix(path, wr_str_from_cstr(strip), &path);

    size_t k = 0;
    bool at_segment_start = true;
    for (size_t i = 0; i < path.len; i++) {
        char ch = path.ptr[i];
        if (ch == '/') {
            at_segment_start = true;
            continue;
        }
        if (k > 0 && at_segment_start)
            out[k++] = '/';
        if (at_segment_start && ch == '.' && !allow_dot)
            return 404; /* .git, .env, .htpasswd: not served unless dotfiles = on */
        at_segment_start = false;
        if (ch == '%') {
            /* path.h: only %2F and %25 survive normalisation */
            if (path.ptr[i + 1] == '2' && path.ptr[i + 2] == 'F')
                return 404;
            ch = '%';
            i += 2;
        }
        if (k + 2 >= cap)
            return 414;
        out[k++] = ch;
    }
    out[k] = '\0';
    return 0;
}

/* Value of the request field k; ptr NULL when absent. */
static struct wr_str field(const struct wr_exchange *ex, enum wr_http_known k)
{
    return wr_http_known_value(ex->req, k);
}

static int answer_405(struct wr_exchange *ex)
{
    struct wr_resp *r = ex->resp;
    wr_resp_start(r, 405, ex->clock);
    wr_resp_field(r, WR_HTTP_FIELD_ALLOW, WR_STR("GET, HEAD"));
    wr_resp_set_page(r);
    return 0;
}

/* A directory asked for without its slash: 301 to the slash form, query kept. */
static int answer_slash_redirect(struct wr_exchange *ex)
{
    struct wr_resp *r = ex->resp;
    const struct wr_http_request *req = ex->req;
    wr_resp_start(r, 301, ex->clock);
    size_t at = r->head_len;
    wr_resp_raw(r, WR_STR("Location: "));
    wr_resp_raw(r, req->path);
    wr_resp_raw(r, WR_STR("/"));
    if (req->query.ptr) {
        wr_resp_raw(r, WR_STR("?"));
        wr_resp_raw(r, req->query);
    }
    wr_resp_raw(r, WR_STR("\r\n"));
    wr_resp_mark_field(r, WR_HTTP_FIELD_LOCATION, at);
    wr_resp_set_page(r);
    return 0;
}

/* ---- validators and headers ------------------------------------------- */

/* What one file answer is about: the file sent and its validators. */
struct file_answer {
    struct wr_static_file *f; /* referenced */
    struct wr_str type;       /* Content-Type, from the requested name */
    const char *encoding;     /* "br", "gzip" or NULL */
    char etag[96];
    size_t etag_len;
};

/* The type of f, requested as rel: looked up by extension once per cache
 * entry, not per request (an entry's key is its name, so the name, and
 * the type, of every later answer from it is the same). A precompressed
 * sibling is answered with the type of the name asked for, so this is
 * called on the entry of that name before any swap. */
static struct wr_str file_type(struct wr_static_file *f, const char *rel)
{
    if (f->type.ptr == NULL)
        f->type = wr_mime_type(wr_str_from_cstr(rel));
    return f->type;
}

/* The file's ETag (static_cache formats it at open); a precompressed
 * variant gets "-br" or "-gz" inside the quotes, so it differs per encoding. */
static void make_etag(struct file_answer *a)
{
    const struct wr_static_file *f = a->f;
    size_t n = f->etag_len;
    memcpy(a->etag, f->etag, n);
    if (a->encoding) {
        memcpy(a->etag + n - 1, a->encoding[0] == 'b' ? "-br\"" : "-gz\"", 4);
        n += 3;
    }
    a->etag[n] = '\0';
    a->etag_len = n;
}

/* ETag, Last-Modified, Cache-Control and Vary: every answer about the file
 * carries them, 304 included (RFC 9110 §15.4.5). */
static void add_validators(struct wr_exchange *ex, const struct file_answer *a)
{
    struct wr_resp *r = ex->resp;
    const struct wr_route *route = ex->route;
    wr_resp_field(r, WR_HTTP_FIELD_ETAG, (struct wr_str){a->etag, a->etag_len});
    wr_resp_field(r, WR_HTTP_FIELD_LAST_MODIFIED,
                  (struct wr_str){a->f->last_modified, a->f->last_modified_len});
    if (route->has_expires) {
        size_t at = r->head_len;
        wr_resp_raw(r, WR_STR("Cache-Control: max-age="));
        wr_resp_raw_u64(r, route->expires_ms / 1000);
        wr_resp_raw(r, WR_STR("\r\n"));
        wr_resp_mark_field(r, WR_HTTP_FIELD_CACHE_CONTROL, at);
    }
    if (route->precompressed)
        wr_resp_field(r, WR_HTTP_FIELD_VARY, WR_STR("Accept-Encoding"));
}

/* The representation's fields for a 200 or 206. */
static void add_entity_headers(struct wr_exchange *ex, const struct file_answer *a)
{
    struct wr_resp *r = ex->resp;
    wr_resp_field(r, WR_HTTP_FIELD_CONTENT_TYPE, a->type);
    if (a->encoding)
        wr_resp_field(r, WR_HTTP_FIELD_CONTENT_ENCODING, wr_str_from_cstr(a->encoding));
    wr_resp_field(r, WR_HTTP_FIELD_ACCEPT_RANGES, WR_STR("bytes"));
    add_validators(ex, a);
}

/* ---- precompressed variants ------------------------------------------- */

/* Opens rel + suffix, the variant v of a->f, as a regular file, or returns
 * NULL; an absence is remembered with a->f's cache entry (static_cache.h),
 * so a file without siblings costs no open per request. */
static struct wr_static_file *open_variant(struct wr_exchange *ex, const struct file_answer *a,
                                           const char *rel, const char *suffix,
                                           enum wr_static_variant v)
{
    char name[REL_MAX + 8];
    int n = snprintf(name, sizeof(name), "%s%s", rel, suffix);
    if (n < 0 || (size_t)n >= sizeof(name))
        return NULL;
    const struct wr_route *route = ex->route;
    return wr_static_cache_open_variant(ex->worker_state, a->f, route->root, name,
                                        route->follow_symlinks, v);
}

/* With precompressed = on: swaps a->f for FILE.br or FILE.gz when the
 * client's Accept-Encoding allows it (RFC 9110 §12.5.3: q=0 refuses; br
 * wins a tie). No Accept-Encoding means identity. */
static void pick_precompressed(struct wr_exchange *ex, struct file_answer *a, const char *rel)
{
    struct wr_str ae = field(ex, WR_HTTP_KNOWN_ACCEPT_ENCODING);
    if (!ae.ptr)
        return;
    unsigned q_br = wr_http_cond_coding_q(ae, WR_STR("br"));
    unsigned q_gz = wr_http_cond_coding_q(ae, WR_STR("gzip"));
    if (q_gz == 0)
        q_gz = wr_http_cond_coding_q(ae, WR_STR("x-gzip"));
    static const struct {
        const char *suffix, *encoding;
        enum wr_static_variant variant;
    } order[2] = {{".br", "br", WR_STATIC_VARIANT_BR}, {".gz", "gzip", WR_STATIC_VARIANT_GZ}};
    unsigned qs[2] = {q_br, q_gz};
    int first = q_gz > q_br ? 1 : 0;
    for (int k = 0; k < 2; k++) {
        int i = k == 0 ? first : 1 - first;
        if (qs[i] == 0)
            continue;
        struct wr_static_file *v = open_variant(ex, a, rel, order[i].suffix, order[i].variant);
        if (v) {
            wr_static_file_unref(a->f);
            a->f = v;
            a->encoding = order[i].encoding;
            return;
        }
    }
}

/* ---- one file ---------------------------------------------------------- */

/* 416 with Content-Range: bytes * / size (RFC 9110 §15.5.17). */
static int answer_416(struct wr_exchange *ex, uint64_t size)
{
    struct wr_resp *r = ex->resp;
    wr_resp_start(r, 416, ex->clock);
    char buf[48];
    int n = snprintf(buf, sizeof(buf), "bytes */%llu", (unsigned long long)size);
    wr_resp_field(r, WR_HTTP_FIELD_CONTENT_RANGE, (struct wr_str){buf, (size_t)n});
    wr_resp_set_page(r);
    return 0;
}

/* The range to send for a GET, after If-Range (RFC 9110 §13.1.5, §14.2):
 * 200 for the whole file, 206 with the range in off and len, or 416. */
static int choose_range(struct wr_exchange *ex, const struct file_answer *a, uint64_t *off,
                        uint64_t *len)
{
    uint64_t size = (uint64_t)a->f->st.st_size;
    *off = 0;
    *len = size;
    struct wr_str range = field(ex, WR_HTTP_KNOWN_RANGE);
    if (!range.ptr || ex->req->method_id != WR_HTTP_GET)
        return 200; /* §14.2: Range is defined for GET only */
    struct wr_str if_range = field(ex, WR_HTTP_KNOWN_IF_RANGE);
    struct wr_str etag = {a->etag, a->etag_len};
    if (if_range.ptr && !wr_http_cond_if_range_holds(if_range, etag, a->f->st.st_mtime))
        return 200;
    struct wr_http_range rg;
    switch (wr_http_cond_parse_range(range, size, &rg)) {
    case WR_RANGE_SINGLE:
        *off = rg.first;
        *len = rg.last - rg.first + 1;
        return 206;
    case WR_RANGE_UNSATISFIABLE:
        return 416;
    default:
        return 200; /* ignored, or several ranges: the whole file (see top) */
    }
}

/* wr_resp_unref_fn for a body owned by a cache entry. */
static void unref_file(void *ref)
{
    wr_static_file_unref(ref);
}

/* The coding a 200 or 304 about a->f would use (compress = on routes):
 * identity when the route, the type, the size, a Range header or the
 * client rule it out. *is_varying: the answer depends on Accept-Encoding
 * (Vary is due), whatever this client gets. */
static enum wr_coding file_coding(const struct wr_exchange *ex, const struct file_answer *a,
                                  bool *is_varying)
{
    *is_varying = false;
    if (ex->route->compress_mask == 0 || a->encoding || !ex->compression)
        return WR_CODING_IDENTITY;
    struct wr_str type = a->type;
    uint64_t size = (uint64_t)a->f->st.st_size;
    if (!wr_zfilter_is_type(ex, type) || size < ex->route->compress_min_length)
        return WR_CODING_IDENTITY;
    *is_varying = true;
    if (field(ex, WR_HTTP_KNOWN_RANGE).ptr)
        return WR_CODING_IDENTITY; /* ranges count identity bytes */
    return wr_zfilter_negotiate(ex);
}

/* a->f's copy coded with c, made now if the file is small enough and the
 * cache's budget allows ([compression] cache_file_max, cache_size), else
 * NULL (the filter then codes the file as it is sent). */
static const char *coded_copy(struct wr_exchange *ex, struct file_answer *a, enum wr_coding c,
                              size_t *len)
{
    struct wr_static_file *f = a->f;
    if (f->coded[c]) {
        *len = f->coded_len[c];
        return f->coded[c];
    }
    const struct wr_compression_cfg *cc = ex->compression;
    uint64_t size = (uint64_t)f->st.st_size;
    struct wr_static_cache *cache = ex->worker_state;
    if (!f->is_cached || size > cc->cache_file_max ||
        wr_static_cache_coded_bytes(cache) + size / 2 > cc->cache_bytes)
        return NULL;
    char *plain = f->data;
    if (!plain) {
        plain = malloc(size ? size : 1);
        if (!plain || pread(f->fd, plain, size, 0) != (ssize_t)size) {
            free(plain);
            return NULL;
        }
    }
    char *out = NULL;
    size_t n = 0;
    int rc = wr_compress_all(c, wr_zfilter_level(ex, c), plain, size, &out, &n);
    if (plain != f->data)
        free(plain);
    if (rc < 0)
        return NULL;
    if (!wr_static_cache_keep_coded(cache, f, c, out, n, cc->cache_bytes)) {
        free(out);
        return NULL;
    }
    if (ex->zw && ex->zw->metrics)
        wr_metrics_add(&ex->zw->metrics->compress_cache_fills[c], 1);
    *len = n;
    return out;
}

/* Answers with the file in a->f; consumes the reference. */
static int answer_file(struct wr_exchange *ex, struct file_answer *a)
{
    struct wr_resp *r = ex->resp;
    make_etag(a);
    struct wr_http_cond cond = {
        .if_match = field(ex, WR_HTTP_KNOWN_IF_MATCH),
        .if_none_match = field(ex, WR_HTTP_KNOWN_IF_NONE_MATCH),
        .if_modified_since = field(ex, WR_HTTP_KNOWN_IF_MODIFIED_SINCE),
        .if_unmodified_since = field(ex, WR_HTTP_KNOWN_IF_UNMODIFIED_SINCE),
        .is_get_or_head = true, /* only GET and HEAD get here */
    };
    struct wr_str etag = {a->etag, a->etag_len};
    int status = wr_http_cond_evaluate(&cond, etag, a->f->st.st_mtime);
    uint64_t off = 0, len = 0;
    if (status == 0)
        status = choose_range(ex, a, &off, &len);
    if (status == 412 || status == 416) {
        uint64_t size = (uint64_t)a->f->st.st_size;
        wr_static_file_unref(a->f);
        return status == 412 ? 412 : answer_416(ex, size);
    }
    bool is_varying;
    enum wr_coding c = status == 206 ? WR_CODING_IDENTITY : file_coding(ex, a, &is_varying);
    if (c != WR_CODING_IDENTITY) {
        /* The coded variant's validator is weak (RFC 9110 §8.8.1): a 304
         * names the variant this client holds. */
        memmove(a->etag + 2, a->etag, a->etag_len + 1);
        memcpy(a->etag, "W/", 2);
        a->etag_len += 2;
    }
    wr_resp_start(r, status, ex->clock);
    if (status == 304) {
        add_validators(ex, a); /* §15.4.5: no body, no Content-Length of its own */
        if (is_varying && !ex->route->precompressed)
            wr_resp_field(r, WR_HTTP_FIELD_VARY, WR_STR("Accept-Encoding"));
        wr_static_file_unref(a->f);
        return 0;
    }
    add_entity_headers(ex, a);
    size_t coded_len = 0;
    const char *coded = c != WR_CODING_IDENTITY && ex->req->method_id != WR_HTTP_HEAD
                            ? coded_copy(ex, a, c, &coded_len)
                            : NULL;
    if (coded) {
        /* Compressed once, kept with the cache entry: one writev. */
        wr_resp_field(r, WR_HTTP_FIELD_CONTENT_ENCODING, wr_coding_name(c));
        if (!ex->route->precompressed)
            wr_resp_field(r, WR_HTTP_FIELD_VARY, WR_STR("Accept-Encoding"));
        r->is_coding_decided = true; /* the head is final, the body coded */
        r->body_ref = a->f;
        r->body_unref = unref_file;
        r->body = coded;
        r->body_len = coded_len;
        r->has_length = true;
        struct wr_metrics_worker *m = ex->zw ? ex->zw->metrics : NULL;
        if (m) {
            wr_metrics_add(&m->compressed_responses[c], 1);
            wr_metrics_add(&m->compress_in_bytes[c], (uint64_t)a->f->st.st_size);
            wr_metrics_add(&m->compress_out_bytes[c], coded_len);
        }
        return 0;
    }
    if (status == 206) {
        char buf[96];
        int n = snprintf(buf, sizeof(buf), "bytes %llu-%llu/%llu", (unsigned long long)off,
                         (unsigned long long)(off + len - 1),
                         (unsigned long long)a->f->st.st_size);
        wr_resp_field(r, WR_HTTP_FIELD_CONTENT_RANGE, (struct wr_str){buf, (size_t)n});
    }
    r->body_ref = a->f; /* the front end holds our reference until the body is sent */
    r->body_unref = unref_file;
    if (a->f->data) {
        r->body = a->f->data + off; /* one writev with the head */
    } else {
        r->file_fd = a->f->fd;
        r->file_off = (off_t)off;
    }
    r->body_len = len;
    r->has_length = true;
    return 0;
}

/* ---- autoindex --------------------------------------------------------- */

/* A buffered writer into the listing's memfd. */
struct listing {
    int fd;
    bool is_failed;
    size_t len;
    uint64_t total;
    char buf[4096];
};

static void out_flush(struct listing *l)
{
    size_t done = 0;
    while (done < l->len && !l->is_failed) {
        ssize_t n = write(l->fd, l->buf + done, l->len - done);
        if (n < 0 && errno != EINTR)
            l->is_failed = true;
        else if (n > 0)
            done += (size_t)n;
    }
    l->len = 0;
}

static void out_bytes(struct listing *l, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (l->len == sizeof(l->buf))
            out_flush(l);
        l->buf[l->len++] = p[i];
    }
    l->total += n;
}

static void out_str(struct listing *l, const char *s)
{
    out_bytes(l, s, strlen(s));
}

/* Text for HTML content and attribute values: & < > " ' escaped. */
static void out_html(struct listing *l, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '&': out_str(l, "&amp;"); break;
        case '<': out_str(l, "&lt;"); break;
        case '>': out_str(l, "&gt;"); break;
        case '"': out_str(l, "&quot;"); break;
        case '\'': out_str(l, "&#39;"); break;
        default: out_bytes(l, s + i, 1);
        }
    }
}

/* A relative href: everything but RFC 3986 unreserved bytes percent-encoded,
 * so a name can be neither a scheme ("javascript:") nor leave the tag. */
static void out_href(struct listing *l, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool is_unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                             (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                             c == '~';
        if (is_unreserved) {
            out_bytes(l, s, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            out_bytes(l, e, 3);
        }
    }
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in the directory (dotfiles only when show_dot), sorted; NULL on error. */
static char **read_names(int dir_fd, bool show_dot, size_t *n_out)
{
    int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    size_t n = 0, cap = 64;
    char **names = malloc(cap * sizeof(*names));
    struct dirent *e;
    while (names && n < AUTOINDEX_MAX_ENTRIES && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && (!show_dot || !e->d_name[1] ||
                                    (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        if (n == cap) {
            char **bigger = realloc(names, 2 * cap * sizeof(*names));
            if (!bigger)
                break;
            names = bigger;
            cap *= 2;
        }
        if ((names[n] = strdup(e->d_name)) == NULL)
            break;
        n++;
    }
    closedir(d);
    if (names)
        qsort(names, n, sizeof(*names), cmp_names);
    *n_out = n;
    return names;
}

static void out_entry(struct listing *l, int dir_fd, const char *name)
{
    struct stat st;
    if (fstatat(dir_fd, name, &st, 0) < 0 && fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return;
    bool is_dir = S_ISDIR(st.st_mode);
    out_str(l, "<tr><td><a href=\"");
    out_href(l, name);
    out_str(l, is_dir ? "/\">" : "\">");
    out_html(l, name, strlen(name));
    out_str(l, is_dir ? "/</a></td><td>" : "</a></td><td>");
    char buf[96];
    struct tm tm;
    gmtime_r(&st.st_mtime, &tm);
    size_t n = strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
    out_bytes(l, buf, n);
    int m = is_dir ? snprintf(buf, sizeof(buf), "</td><td>-</td></tr>\n")
                   : snprintf(buf, sizeof(buf), "</td><td>%llu</td></tr>\n",
                              (unsigned long long)st.st_size);
    out_bytes(l, buf, (size_t)m);
}

/* Writes the HTML listing of dir into l. */
static int write_listing(struct wr_exchange *ex, int dir_fd, const char *rel, struct listing *l)
{
    size_t n = 0;
    char **names = read_names(dir_fd, ex->route->dotfiles, &n);
    if (!names)
        return open_failed(ex, rel, errno);
    out_str(l, "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Index of ");
    out_html(l, ex->path.ptr, ex->path.len);
    out_str(l, "</title></head>\n<body><h1>Index of ");
    out_html(l, ex->path.ptr, ex->path.len);
    out_str(l, "</h1>\n<table>\n<tr><th>Name</th><th>Last modified (UTC)</th><th>Size</th></tr>\n"
               "<tr><td><a href=\"../\">../</a></td><td></td><td>-</td></tr>\n");
    for (size_t i = 0; i < n; i++) {
        out_entry(l, dir_fd, names[i]);
        free(names[i]);
    }
    free(names);
    out_str(l, "</table>\n</body></html>\n");
    out_flush(l);
    return l->is_failed ? 500 : 0;
}

/* autoindex = on: the listing of rel, written into a memfd that the front
 * end sends and closes like any file it owns. */
static int answer_autoindex(struct wr_exchange *ex, int dir_fd, const char *rel)
{
    struct listing *l = malloc(sizeof(*l));
    if (!l)
        return 500;
    *l = (struct listing){.fd = memfd_create("weir-autoindex", MFD_CLOEXEC)};
    if (l->fd < 0) {
        free(l);
        return 500;
    }
    int status = write_listing(ex, dir_fd, rel, l);
    int fd = l->fd;
    uint64_t total = l->total;
    free(l);
    if (status != 0) {
        close(fd);
        return status;
    }
    struct wr_resp *r = ex->resp;
    wr_resp_start(r, 200, ex->clock);
    wr_resp_field(r, WR_HTTP_FIELD_CONTENT_TYPE, WR_STR("text/html; charset=utf-8"));
    wr_resp_field(r, WR_HTTP_FIELD_CACHE_CONTROL, WR_STR("no-cache"));
    r->file_fd = fd;
    r->file_off = 0;
    r->body_len = total;
    r->has_length = true;
    return 0;
}

/* ---- the action -------------------------------------------------------- */

/* Answers for the directory dir (rel in the scratch, room for the index
 * name behind it); consumes the reference. */
static int answer_directory(struct wr_exchange *ex, struct wr_static_file *dir, char *rel)
{
    const struct wr_route *route = ex->route;
    bool has_slash = ex->path.len > 0 && ex->path.ptr[ex->path.len - 1] == '/';
    if (!has_slash) {
        wr_static_file_unref(dir);
        return answer_slash_redirect(ex);
    }
    size_t k = strlen(rel);
    snprintf(rel + k, REL_MAX + 2 - k, "%s%s", k ? "/" : "", route->index);
    struct wr_static_file *f =
        wr_static_cache_open(ex->worker_state, route->root, rel, route->follow_symlinks);
    int err = errno;
    if (f && S_ISREG(f->st.st_mode)) {
        wr_static_file_unref(dir);
        struct file_answer a = {.f = f, .type = file_type(f, rel)};
        if (route->precompressed)
            pick_precompressed(ex, &a, rel);
        return answer_file(ex, &a);
    }
    wr_static_file_unref(f);
    int status = 403; /* a directory without index, autoindex off: 403, as nginx */
    if (!f && err != ENOENT) {
        status = open_failed(ex, rel, err);
    } else if (route->autoindex) {
        rel[k] = '\0'; /* the directory's own name again */
        status = answer_autoindex(ex, dir->fd, k ? rel : ".");
    }
    wr_static_file_unref(dir);
    return status;
}

int wr_static_handle(struct wr_exchange *ex)
{
    const struct wr_route *route = ex->route;
    enum wr_http_method method = ex->req->method_id;
    if (method != WR_HTTP_GET && method != WR_HTTP_HEAD)
        return answer_405(ex);
    /* rel needs room for "/" + index name behind the mapped path */
    size_t index_len = strlen(route->index);
    if (ex->scratch_cap < REL_MAX + 2 || index_len + 2 >= REL_MAX)
        return 414;
    char *rel = ex->scratch;
    int status = map_path(ex->path, route->strip_prefix, route->dotfiles, rel,
                          REL_MAX - index_len - 2);
    if (status != 0)
        return status;
    struct wr_static_file *f = wr_static_cache_open(ex->worker_state, route->root,
                                                    rel[0] ? rel : ".", route->follow_symlinks);
    if (!f)
        return open_failed(ex, rel[0] ? rel : ".", errno);
    if (S_ISDIR(f->st.st_mode))
        return answer_directory(ex, f, rel);
    if (!S_ISREG(f->st.st_mode)) {
        wr_static_file_unref(f);
        return 404;
    }
    struct file_answer a = {.f = f, .type = file_type(f, rel)};
    if (route->precompressed)
        pick_precompressed(ex, &a, rel);
    return answer_file(ex, &a);
}

/* ---- the handler ------------------------------------------------------- */

static int start_static(struct wr_exchange *ex)
{
    int status = wr_static_handle(ex);
    if (status == 0)
        wr_exchange_respond(ex);
    return status;
}

static int static_worker_init(struct wr_handler_worker *hw)
{
    hw->state = wr_static_cache_new(WR_STATIC_CACHE_ENTRIES);
    return hw->state ? 0 : -1;
}

/* After every response released its files (handler.h: exchanges stopped). */
static void static_worker_fini(struct wr_handler_worker *hw)
{
    wr_static_cache_free(hw->state);
    hw->state = NULL;
}

const struct wr_handler wr_static_handler = {
    .name = "static",
    .start = start_static,
    .worker_init = static_worker_init,
    .worker_fini = static_worker_fini,
};
