/*
 * Unit tests for static: Content-Type by extension (case, no extension,
 * dotfiles, dots in directory names, unknown extensions).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "weir/static.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known),
        cmocka_unit_test(test_case),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
