/*
 * static: the `root` action.
 *
 * Not here (yet, issue #3): conditional requests, ranges, ETag,
 * precompressed variants, autoindex and the open-file cache. What is here
 * is safe: the file is opened with openat2(RESOLVE_BENEATH) relative to the
 * root directory, so no path and, with follow_symlinks = off, no symlink
 * leads outside root, with no check-then-open race. Dotfile segments are
 * 404. The body is handed to conn as a file descriptor and sent with
 * sendfile, never read into memory.
 */
#include "weir/static.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct mime_entry {
    const char *ext;
    const char *type;
};

static const struct mime_entry mime_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"ico", "image/x-icon"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"pdf", "application/pdf"},
    {"wasm", "application/wasm"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"mp3", "audio/mpeg"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
};

const char *wr_static_mime_type(struct wr_str name)
{
    size_t dot = name.len;
    while (dot > 0 && name.ptr[dot - 1] != '.' && name.ptr[dot - 1] != '/')
        dot--;
    if (dot == 0 || name.ptr[dot - 1] != '.')
        return "application/octet-stream";
    struct wr_str ext = {name.ptr + dot, name.len - dot};
    for (size_t i = 0; i < sizeof(mime_types) / sizeof(mime_types[0]); i++) {
        if (wr_str_eq_nocase(ext, wr_str_from_cstr(mime_types[i].ext)))
            return mime_types[i].type;
    }
    return "application/octet-stream";
}

static int open_beneath(int dir_fd, const char *rel, bool follow_symlinks)
{
    /* RESOLVE_BENEATH: every component, symlink targets included, must stay
     * under dir_fd; the kernel checks it during the walk, so there is no
     * window between a check and the open. follow_symlinks = on is the
     * operator allowing links out of root. */
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK,
                           .resolve = RESOLVE_NO_MAGICLINKS};
    if (!follow_symlinks)
        how.resolve |= RESOLVE_BENEATH;
    return (int)syscall(SYS_openat2, dir_fd, rel, &how, sizeof(how));
}

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

/* Maps the normalised path (after strip_prefix) to a path relative to root:
 * no leading '/', no dotfile segment, "%25" decoded, "%2F" refused. */
static int map_path(struct wr_str path, const char *strip, char *out, size_t cap)
{
    if (strip && wr_str_has_prefix(path, wr_str_from_cstr(strip))) {
        size_t n = strlen(strip);
        path.ptr += n;
        path.len -= n;
    }
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
        if (at_segment_start && ch == '.')
            return 404; /* .git, .env, .htpasswd: never served */
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

static int answer_405(struct wr_exchange *ex)
{
    struct wr_resp *r = ex->resp;
    wr_resp_start(r, 405, ex->clock);
    wr_resp_header(r, "Allow", WR_STR("GET, HEAD"));
    wr_resp_header(r, "Content-Type", WR_STR("text/html; charset=utf-8"));
    struct wr_str page = wr_resp_page(405);
    r->body = page.ptr;
    r->body_len = page.len;
    r->has_length = true;
    return 0;
}

/* A directory asked for without its slash: 301 to the slash form, query kept. */
static int answer_slash_redirect(struct wr_exchange *ex)
{
    struct wr_resp *r = ex->resp;
    const struct wr_http_request *req = ex->req;
    wr_resp_start(r, 301, ex->clock);
    wr_resp_raw(r, WR_STR("Location: "));
    wr_resp_raw(r, req->path);
    wr_resp_raw(r, WR_STR("/"));
    if (req->query.ptr) {
        wr_resp_raw(r, WR_STR("?"));
        wr_resp_raw(r, req->query);
    }
    wr_resp_raw(r, WR_STR("\r\n"));
    wr_resp_header(r, "Content-Type", WR_STR("text/html; charset=utf-8"));
    struct wr_str page = wr_resp_page(301);
    r->body = page.ptr;
    r->body_len = page.len;
    r->has_length = true;
    return 0;
}

static void answer_file(struct wr_exchange *ex, int fd, const struct stat *st, struct wr_str name)
{
    struct wr_resp *r = ex->resp;
    const struct wr_route *route = ex->route;
    wr_resp_start(r, 200, ex->clock);
    wr_resp_header(r, "Content-Type", wr_str_from_cstr(wr_static_mime_type(name)));
    char date[64];
    struct tm tm;
    gmtime_r(&st->st_mtime, &tm);
    size_t n = strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    wr_resp_header(r, "Last-Modified", (struct wr_str){date, n});
    if (route->has_expires) {
        int m = snprintf(date, sizeof(date), "max-age=%llu",
                         (unsigned long long)(route->expires_ms / 1000));
        wr_resp_header(r, "Cache-Control", (struct wr_str){date, (size_t)m});
    }
    r->file_fd = fd;
    r->file_off = 0;
    r->body_len = (uint64_t)st->st_size;
    r->has_length = true;
}

int wr_static_handle(struct wr_exchange *ex)
{
    const struct wr_route *route = ex->route;
    enum wr_http_method method = ex->req->method_id;
    if (method != WR_HTTP_GET && method != WR_HTTP_HEAD)
        return answer_405(ex);
    char *rel = ex->scratch;
    size_t index_len = strlen(route->index);
    if (ex->scratch_cap < index_len + 16)
        return 500;
    int status = map_path(ex->path, route->strip_prefix, rel, ex->scratch_cap - index_len - 2);
    if (status != 0)
        return status;
    /* TODO(#3): the per-worker open-file cache keeps root and hot files open. */
    int root_fd = open(route->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0)
        return status_for_errno(errno);
    int fd = open_beneath(root_fd, rel[0] ? rel : ".", route->follow_symlinks);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) < 0) {
        close(fd);
        fd = -1;
    }
    if (fd >= 0 && S_ISDIR(st.st_mode)) {
        bool has_slash = ex->path.len > 0 && ex->path.ptr[ex->path.len - 1] == '/';
        close(fd);
        fd = -1;
        if (!has_slash) {
            close(root_fd);
            return answer_slash_redirect(ex);
        }
        size_t k = strlen(rel);
        snprintf(rel + k, ex->scratch_cap - k, "%s%s", k ? "/" : "", route->index);
        fd = open_beneath(root_fd, rel, route->follow_symlinks);
        if (fd < 0 && errno == ENOENT)
            errno = EACCES; /* a directory without index: 403, as nginx */
        if (fd >= 0 && fstat(fd, &st) < 0) {
            close(fd);
            fd = -1;
        }
    }
    int err = errno;
    close(root_fd);
    if (fd < 0)
        return status_for_errno(err);
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return 404;
    }
    answer_file(ex, fd, &st, wr_str_from_cstr(rel));
    return 0;
}
