/*
 * Unit tests for static: Content-Type by extension (case, no extension,
 * dotfiles, dots in directory names, unknown extensions), and the private
 * helpers path mapping and ETag (STYLE §10: the test includes static.c to
 * reach them, so static.o is not taken from the library). Issue 13.16: the
 * handler over a real temp root and an open-file cache on a fake clock
 * makes no open for missing precompressed siblings within the
 * revalidation interval, and serves one created later after it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../../src/static.c"
#include "weir/static_cache.h"

/* Looks name up through an exact-size heap copy, so ASan sees over-reads. */
static void expect_mime(const char *name, const char *want)
{
    size_t len = strlen(name);
    char *p = malloc(len ? len : 1);
    assert_non_null(p);
    memcpy(p, name, len);
    struct wr_str got = wr_mime_type((struct wr_str){p, len});
    free(p);
    assert_non_null(got.ptr);
    if (got.len != strlen(want) || memcmp(got.ptr, want, got.len) != 0 || got.ptr[got.len] != '\0')
        fail_msg("\"%s\": got \"%.*s\", want \"%s\"", name, (int)got.len, got.ptr, want);
}

static void test_known(void **state)
{
    (void)state;
    expect_mime("index.html", "text/html; charset=utf-8");
    expect_mime("a.htm", "text/html; charset=utf-8");
    expect_mime("app.js", "text/javascript; charset=utf-8");
    expect_mime("logo.png", "image/png");
    expect_mime("font.woff2", "font/woff2");
    expect_mime("archive.tar.gz", "application/gzip");
    expect_mime("site.webmanifest", "application/manifest+json");
    expect_mime("app.js.map", "application/json");
    expect_mime("font.otf", "font/otf");
    expect_mime("clip.ogg", "audio/ogg");
    expect_mime("notes.md", "text/markdown; charset=utf-8");
    expect_mime("photo.tiff", "image/tiff");
    expect_mime("data.tar", "application/x-tar");
}

static void test_case(void **state)
{
    (void)state;
    expect_mime("STYLE.CSS", "text/css; charset=utf-8");
    expect_mime("style.Css", "text/css; charset=utf-8");
    expect_mime("PHOTO.JPEG", "image/jpeg");
}

static void test_paths(void **state)
{
    (void)state;
    expect_mime("/var/www/site/index.html", "text/html; charset=utf-8");
    expect_mime("assets/v1.2/app.css", "text/css; charset=utf-8");
    /* The dot is in a directory name, not in the file name. */
    expect_mime("assets/v1.css/README", "application/octet-stream");
    expect_mime("dir.html/", "application/octet-stream");
}

static void test_default(void **state)
{
    (void)state;
    expect_mime("README", "application/octet-stream");
    expect_mime("", "application/octet-stream");
    expect_mime(".bashrc", "application/octet-stream");
    expect_mime("dir/.profile", "application/octet-stream");
    expect_mime("file.unknownext", "application/octet-stream");
    expect_mime("file.", "application/octet-stream");
    expect_mime("file.htmlx", "application/octet-stream");
    expect_mime("file.h", "application/octet-stream");
}

/* map_path on a normalised path: relative result, strip_prefix, dotfiles,
 * the two escapes normalisation leaves (%25 decoded, %2F refused). */
static void test_map_path(void **state)
{
    (void)state;
    static const struct {
        const char *path, *strip;
        bool allow_dot;
        int status;
        const char *want;
    } cases[] = {
        {"/", NULL, false, 0, ""},
        {"/index.html", NULL, false, 0, "index.html"},
        {"/a/b/c.txt", NULL, false, 0, "a/b/c.txt"},
        {"/a/b/", NULL, false, 0, "a/b"},
        {"/static/app.js", "/static", false, 0, "app.js"},
        {"/staticx/app.js", "/static/", false, 0, "staticx/app.js"},
        {"/100%25.txt", NULL, false, 0, "100%.txt"},
        {"/a%2Fb", NULL, false, 404, NULL},
        {"/.git/config", NULL, false, 404, NULL},
        {"/a/.env", NULL, false, 404, NULL},
        {"/a/.env", NULL, true, 0, "a/.env"},
        {"/a/b.c/d", NULL, false, 0, "a/b.c/d"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i].path);
        char *in = malloc(len);
        assert_non_null(in);
        memcpy(in, cases[i].path, len);
        char out[256];
        int status = map_path((struct wr_str){in, len}, cases[i].strip, cases[i].allow_dot, out,
                              sizeof(out));
        free(in);
        if (status != cases[i].status)
            fail_msg("%s: status %d, want %d", cases[i].path, status, cases[i].status);
        if (status == 0 && strcmp(out, cases[i].want) != 0)
            fail_msg("%s: \"%s\", want \"%s\"", cases[i].path, out, cases[i].want);
    }
    char tiny[4];
    assert_int_equal(map_path(wr_str_from_cstr("/abcdef"), NULL, false, tiny, sizeof(tiny)), 414);
}

/* A strong ETag from size, mtime in nanoseconds and inode; the encoding of a
 * precompressed variant changes it. */
static void test_etag(void **state)
{
    (void)state;
    struct wr_static_file *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->st.st_size = 0x400;
    f->st.st_mtim.tv_sec = 1;
    f->st.st_mtim.tv_nsec = 5;
    f->st.st_ino = 0xab;
    wr_static_file_format_validators(f);
    struct file_answer a = {.f = f};
    make_etag(&a);
    assert_string_equal(a.etag, "\"400-3b9aca05-ab\"");
    assert_int_equal(a.etag_len, strlen(a.etag));
    a.encoding = "br";
    make_etag(&a);
    assert_string_equal(a.etag, "\"400-3b9aca05-ab-br\"");
    a.encoding = "gzip";
    make_etag(&a);
    assert_string_equal(a.etag, "\"400-3b9aca05-ab-gz\"");
    f->st.st_mtim.tv_nsec = 6; /* a write within the same second changes it */
    wr_static_file_format_validators(f);
    a.encoding = NULL;
    make_etag(&a);
    assert_string_equal(a.etag, "\"400-3b9aca06-ab\"");
    /* Last-Modified is the IMF-fixdate of mtime's second. */
    f->st.st_mtime = 784111777;
    wr_static_file_format_validators(f);
    assert_string_equal(f->last_modified, "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_int_equal(f->last_modified_len, strlen(f->last_modified));
    free(f);
}

/* ---- issue 13.16: precompressed siblings' absence is cached ----------- */

static uint64_t fake_now_ms = 1000000;

/* The cache reads clock.h's clock: a fake source (microseconds). */
static uint64_t fake_clock_us(void)
{
    return fake_now_ms * 1000;
}

/* A static route over a temp root, a cache on the fake clock, and what one
 * request needs. */
struct fixture {
    char root[64];
    struct wr_route route;
    struct wr_static_cache *cache;
    struct wr_resp_clock clock;
    char *scratch;
    char head[4096];
};

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void fixture_init(struct fixture *fx)
{
    memset(fx, 0, sizeof(*fx));
    strcpy(fx->root, "/tmp/weir_test_static_XXXXXX");
    assert_non_null(mkdtemp(fx->root));
    fx->route = (struct wr_route){.root = fx->root, .index = "index.html", .precompressed = true};
    fx->cache = wr_static_cache_new(16);
    assert_non_null(fx->cache);
    wr_clock_set_source(fake_clock_us);
    wr_resp_clock_update(&fx->clock, 784111777, "weir");
    fx->scratch = malloc(2 * PATH_MAX);
    assert_non_null(fx->scratch);
}

static void fixture_fini(struct fixture *fx, const char *const *names)
{
    wr_clock_set_source(NULL);
    wr_static_cache_free(fx->cache);
    free(fx->scratch);
    char path[256];
    for (; *names; names++) {
        snprintf(path, sizeof(path), "%s/%s", fx->root, *names);
        unlink(path);
    }
    rmdir(fx->root);
}

/* GET /a.txt with Accept-Encoding: br, gzip. Returns the Content-Encoding
 * sent ("" for identity). */
static const char *get_a(struct fixture *fx)
{
    static const char raw[] = "GET /a.txt HTTP/1.1\r\nHost: a\r\nAccept-Encoding: br, gzip\r\n\r\n";
    char *buf = malloc(sizeof(raw) - 1);
    assert_non_null(buf);
    memcpy(buf, raw, sizeof(raw) - 1);
    struct wr_http_request req;
    struct wr_http_limits limits = {.max_head_bytes = 4096};
    assert_int_equal(wr_http_parse_request(buf, sizeof(raw) - 1, 0, &limits, &req),
                     (ssize_t)(sizeof(raw) - 1));
    struct wr_resp r;
    wr_resp_init(&r, fx->head, sizeof(fx->head));
    struct wr_exchange ex = {
        .req = &req, .route = &fx->route, .path = WR_STR("/a.txt"), .clock = &fx->clock,
        .resp = &r, .scratch = fx->scratch, .scratch_cap = 2 * PATH_MAX,
        .worker_state = fx->cache,
    };
    assert_int_equal(wr_static_handle(&ex), 0);
    assert_int_equal(r.status, 200);
    wr_static_file_unref(r.body_ref);
    free(buf);
    struct wr_str head = wr_resp_bytes(&r);
    if (memmem(head.ptr, head.len, "Content-Encoding: gzip\r\n", 24))
        return "gzip";
    if (memmem(head.ptr, head.len, "Content-Encoding: br\r\n", 22))
        return "br";
    return "";
}

static uint64_t n_opens(const struct fixture *fx)
{
    return wr_static_cache_stats(fx->cache).n_opens;
}

/* A file without .br/.gz siblings: the first request looks for both, the
 * next ones within the revalidation interval open nothing; a .gz created
 * meanwhile is served once the entry is revalidated (about a second). */
static void issue_13_precompressed_absence_cached(void **state)
{
    (void)state;
    struct fixture fx;
    fixture_init(&fx);
    write_file(fx.root, "a.txt", "hello\n");
    assert_string_equal(get_a(&fx), "");
    assert_int_equal(n_opens(&fx), 3); /* a.txt, a.txt.br, a.txt.gz */
    for (int i = 0; i < 50; i++) {
        fake_now_ms += 10; /* 500 ms in all: within the interval */
        assert_string_equal(get_a(&fx), "");
    }
    assert_int_equal(n_opens(&fx), 3);

    write_file(fx.root, "a.txt.gz", "not really gzip");
    assert_string_equal(get_a(&fx), ""); /* remembered absent until revalidation */
    assert_int_equal(n_opens(&fx), 3);
    fake_now_ms += WR_STATIC_CACHE_CHECK_MS;
    assert_string_equal(get_a(&fx), "gzip");
    assert_int_equal(n_opens(&fx), 5); /* a.txt.br again (absent), a.txt.gz */
    for (int i = 0; i < 50; i++) {
        fake_now_ms += 10;
        assert_string_equal(get_a(&fx), "gzip");
    }
    assert_int_equal(n_opens(&fx), 5);
    /* Each interval costs at most one look per missing sibling. */
    fake_now_ms += WR_STATIC_CACHE_CHECK_MS;
    assert_string_equal(get_a(&fx), "gzip");
    assert_int_equal(n_opens(&fx), 6);
    static const char *const names[] = {"a.txt", "a.txt.gz", NULL};
    fixture_fini(&fx, names);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known),
        cmocka_unit_test(test_map_path),
        cmocka_unit_test(test_etag),
        cmocka_unit_test(test_case),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_default),
        cmocka_unit_test(issue_13_precompressed_absence_cached),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
