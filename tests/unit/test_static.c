/*
 * Unit tests for static: Content-Type by extension (case, no extension,
 * dotfiles, dots in directory names, unknown extensions), and the private
 * helpers path mapping and ETag (STYLE §10: the test includes static.c to
 * reach them, so static.o is not taken from the library).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../../src/static.c"

/* Looks name up through an exact-size heap copy, so ASan sees over-reads. */
static void expect_mime(const char *name, const char *want)
{
    size_t len = strlen(name);
    char *p = malloc(len ? len : 1);
    assert_non_null(p);
    memcpy(p, name, len);
    const char *got = wr_static_mime_type((struct wr_str){p, len});
    free(p);
    assert_non_null(got);
    if (strcmp(got, want) != 0)
        fail_msg("\"%s\": got \"%s\", want \"%s\"", name, got, want);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known),
        cmocka_unit_test(test_map_path),
        cmocka_unit_test(test_etag),
        cmocka_unit_test(test_case),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
