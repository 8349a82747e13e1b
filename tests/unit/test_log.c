/*
 * Unit tests for log: access lines in combined and json format read back
 * from a temp file (escaping of quotes, backslashes, control and non-ASCII
 * bytes; the raw-line form for heads that did not parse; the 8 KiB cut;
 * lines never split across a buffer flush), and wr_log_open/reopen/close_all
 * across a rename as logrotate does it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "weir/log.h"

#define LOG_TIME "21/Sep/2026:14:13:20 +0000"
#define ISO_TIME "2026-09-21T14:13:20Z"

static int temp_fd(void)
{
    char path[] = "/tmp/weir_test_log_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    return fd;
}

/* Everything written to fd so far, NUL-terminated; *len_out gets its size. */
static char *read_all(int fd, size_t *len_out)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    size_t len = (size_t)st.st_size;
    char *buf = malloc(len + 1);
    assert_non_null(buf);
    size_t off = 0;
    while (off < len) {
        ssize_t n = pread(fd, buf + off, len - off, (off_t)off);
        assert_true(n > 0);
        off += (size_t)n;
    }
    buf[len] = '\0';
    if (len_out)
        *len_out = len;
    return buf;
}

static struct wr_access_entry sample_entry(void)
{
    return (struct wr_access_entry){
        .remote_addr = WR_STR("192.0.2.7"),
        .method = WR_STR("GET"),
        .target = WR_STR("/a?b=c"),
        .host = WR_STR("example.org"),
        .referer = WR_STR("https://ref.example/"),
        .user_agent = WR_STR("curl/8.5"),
        .request_id = WR_STR("r-42"),
        .minor_version = 1,
        .status = 200,
        .bytes_sent = 1234,
        .request_time_us = 1500,
        .log_time = LOG_TIME,
        .iso_time = ISO_TIME,
    };
}

/* Adds each entry to a fresh access log on a temp file and compares. */
static void expect_lines(enum wr_log_format format, const struct wr_access_entry *e, size_t n,
                         const char *want)
{
    int fd = temp_fd();
    struct wr_access_log al;
    assert_int_equal(wr_access_log_init(&al, fd, format), 0);
    for (size_t i = 0; i < n; i++)
        wr_access_log_add(&al, &e[i]);
    wr_access_log_flush(&al);
    assert_int_equal(al.len, 0);
    char *got = read_all(fd, NULL);
    if (strcmp(got, want) != 0)
        fail_msg("got:\n%s\nwant:\n%s", got, want);
    free(got);
    wr_access_log_fini(&al);
    assert_null(al.buf);
    close(fd);
}

static void test_combined(void **state)
{
    (void)state;
    struct wr_access_entry e[2] = {sample_entry(), sample_entry()};
    e[1].method = WR_STR("POST");
    e[1].minor_version = 0;
    e[1].status = 404;
    e[1].bytes_sent = 0;
    e[1].referer = (struct wr_str){NULL, 0};
    e[1].user_agent = (struct wr_str){NULL, 0};
    expect_lines(WR_LOG_COMBINED, e, 2,
                 "192.0.2.7 - - [" LOG_TIME "] \"GET /a?b=c HTTP/1.1\" 200 1234 "
                 "\"https://ref.example/\" \"curl/8.5\"\n"
                 "192.0.2.7 - - [" LOG_TIME "] \"POST /a?b=c HTTP/1.0\" 404 0 \"-\" \"-\"\n");
}

static void test_json(void **state)
{
    (void)state;
    struct wr_access_entry e[2] = {sample_entry(), sample_entry()};
    e[1].minor_version = 0;
    e[1].request_time_us = 12000001;
    e[1].referer = (struct wr_str){NULL, 0};
    expect_lines(WR_LOG_JSON, e, 2,
                 "{\"time\":\"" ISO_TIME "\",\"remote_addr\":\"192.0.2.7\",\"request_id\":\"r-42\","
                 "\"method\":\"GET\",\"uri\":\"/a?b=c\",\"protocol\":\"HTTP/1.1\","
                 "\"host\":\"example.org\",\"status\":200,\"bytes_sent\":1234,"
                 "\"request_time\":0.001500,\"referer\":\"https://ref.example/\","
                 "\"user_agent\":\"curl/8.5\"}\n"
                 "{\"time\":\"" ISO_TIME "\",\"remote_addr\":\"192.0.2.7\",\"request_id\":\"r-42\","
                 "\"method\":\"GET\",\"uri\":\"/a?b=c\",\"protocol\":\"HTTP/1.0\","
                 "\"host\":\"example.org\",\"status\":200,\"bytes_sent\":1234,"
                 "\"request_time\":12.000001,\"referer\":\"\","
                 "\"user_agent\":\"curl/8.5\"}\n");
}

static void test_escaping(void **state)
{
    (void)state;
    struct wr_access_entry e = sample_entry();
    e.target = WR_STR("/a\"b\\c\xff\xc3\xa9\x01\x7f\n");
    e.user_agent = WR_STR("x\" \"y");
    e.referer = WR_STR("\t");
    expect_lines(WR_LOG_COMBINED, &e, 1,
                 "192.0.2.7 - - [" LOG_TIME "] "
                 "\"GET /a\\x22b\\x5cc\\xff\\xc3\\xa9\\x01\\x7f\\x0a HTTP/1.1\" 200 1234 "
                 "\"\\x09\" \"x\\x22 \\x22y\"\n");
    expect_lines(WR_LOG_JSON, &e, 1,
                 "{\"time\":\"" ISO_TIME "\",\"remote_addr\":\"192.0.2.7\",\"request_id\":\"r-42\","
                 "\"method\":\"GET\","
                 "\"uri\":\"/a\\\"b\\\\c\\u00ff\\u00c3\\u00a9\\u0001\\u007f\\u000a\","
                 "\"protocol\":\"HTTP/1.1\",\"host\":\"example.org\",\"status\":200,"
                 "\"bytes_sent\":1234,\"request_time\":0.001500,\"referer\":\"\\u0009\","
                 "\"user_agent\":\"x\\\" \\\"y\"}\n");
}

static void test_raw_line(void **state)
{
    (void)state;
    struct wr_access_entry e = sample_entry();
    e.method = (struct wr_str){NULL, 0};
    e.target = WR_STR("GARBAGE \"\x01 HTTP/9");
    e.status = 400;
    e.bytes_sent = 0;
    e.referer = (struct wr_str){NULL, 0};
    e.user_agent = (struct wr_str){NULL, 0};
    expect_lines(WR_LOG_COMBINED, &e, 1,
                 "192.0.2.7 - - [" LOG_TIME "] \"GARBAGE \\x22\\x01 HTTP/9\" 400 0 \"-\" \"-\"\n");
}

static void test_off(void **state)
{
    (void)state;
    struct wr_access_log al;
    assert_int_equal(wr_access_log_init(&al, -1, WR_LOG_COMBINED), 0);
    struct wr_access_entry e = sample_entry();
    wr_access_log_add(&al, &e); /* no buffer, no write, no crash */
    wr_access_log_flush(&al);
    wr_access_log_fini(&al);
}

/* Long lines are cut at 8 KiB plus the newline, and a buffer flush between
 * them never splits one. */
static void test_long_lines(void **state)
{
    (void)state;
    enum { TARGET_LEN = 10000, N_LINES = 20, LINE_LEN = 8 * 1024 + 1 };
    char *target = malloc(TARGET_LEN);
    assert_non_null(target);
    memset(target, 'a', TARGET_LEN);
    struct wr_access_entry e = sample_entry();
    e.target = (struct wr_str){target, TARGET_LEN};
    int fd = temp_fd();
    struct wr_access_log al;
    assert_int_equal(wr_access_log_init(&al, fd, WR_LOG_COMBINED), 0);
    for (int i = 0; i < N_LINES; i++)
        wr_access_log_add(&al, &e);
    wr_access_log_fini(&al);
    size_t len;
    char *got = read_all(fd, &len);
    assert_int_equal(len, (size_t)N_LINES * LINE_LEN);
    const char *prefix = "192.0.2.7 - - [" LOG_TIME "] \"GET aaaa";
    for (int i = 0; i < N_LINES; i++) {
        const char *line = got + (size_t)i * LINE_LEN;
        assert_memory_equal(line, prefix, strlen(prefix));
        assert_int_equal(line[LINE_LEN - 1], '\n');
        assert_null(memchr(line, '\n', LINE_LEN - 1));
    }
    free(got);
    free(target);
    close(fd);
}

static void write_str(int fd, const char *s)
{
    assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

static void expect_file(const char *path, const char *want)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    char *got = read_all(fd, NULL);
    assert_string_equal(got, want);
    free(got);
    close(fd);
}

static void test_open_reopen(void **state)
{
    (void)state;
    char dir[] = "/tmp/weir_test_logdir_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], rotated[128];
    snprintf(path, sizeof(path), "%s/access.log", dir);
    snprintf(rotated, sizeof(rotated), "%s/access.log.1", dir);

    assert_int_equal(wr_log_open("stderr"), 2);
    int fd = wr_log_open(path);
    assert_true(fd > 2);
    assert_int_equal(wr_log_open(path), fd); /* same path, same descriptor */
    write_str(fd, "one\n");

    assert_int_equal(rename(path, rotated), 0);
    write_str(fd, "two\n"); /* still the old file until reopen */
    assert_int_equal(wr_log_reopen(), 0);
    write_str(fd, "three\n"); /* same number, new file */
    expect_file(rotated, "one\ntwo\n");
    expect_file(path, "three\n");

    wr_log_close_all();
    errno = 0;
    assert_int_equal(fcntl(fd, F_GETFD), -1);
    assert_int_equal(errno, EBADF);
    assert_int_equal(wr_log_reopen(), 0); /* nothing left to reopen */

    /* After close_all the path can be opened afresh. */
    int fd2 = wr_log_open(path);
    assert_true(fd2 > 2);
    write_str(fd2, "four\n");
    expect_file(path, "three\nfour\n");
    wr_log_close_all();

    unlink(path);
    unlink(rotated);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_combined),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_raw_line),
        cmocka_unit_test(test_off),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_open_reopen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
