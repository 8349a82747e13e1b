/*
 * Unit tests for units: every parser against a table of good values (with
 * the result) and a table of bad ones. Each input is copied into an
 * exact-size heap buffer first, so ASan catches a read past the NUL.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "weir/units.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

struct num_case {
    const char *text;
    uint64_t want;
};

static const struct num_case good_durations[] = {
    {"0", 0},
    {"1", 1000},
    {"250ms", 250},
    {"10s", 10000},
    {"5m", 300000},
    {"1h", 3600000},
    {"2d", 172800000},
    {"007s", 7000},
    {"0ms", 0},
    {"365d", WR_UNITS_DURATION_MAX_MS},
    {"8760h", WR_UNITS_DURATION_MAX_MS},
    {"31536000000ms", WR_UNITS_DURATION_MAX_MS},
    {"31536000", WR_UNITS_DURATION_MAX_MS},
};

static const char *const bad_durations[] = {
    "", "s", "ms", "-1", "+1", " 1s", "1s ", "1 s", "1.5s", "1S", "10M", "1sec", "1x", "1hh",
    "0x10", "1e3", "s10", "10s;",
};

static const struct num_case good_sizes[] = {
    {"0", 0},
    {"512", 512},
    {"16k", 16384},
    {"16K", 16384},
    {"10m", 10485760},
    {"10M", 10485760},
    {"1g", 1073741824},
    {"1G", 1073741824},
    {"18446744073709551615", UINT64_MAX},
    {"17179869183g", 17179869183u * 1073741824u},
};

static const char *const bad_sizes[] = {
    "", "k", "-1", "+1", "1kb", "1 k", "1.5k", "1t", "1b", " 1", "1k ", "17179869184g",
    "18446744073709551616", "18014398509481984k", "0x10",
};

static char *heap_copy(const char *s)
{
    char *copy = strdup(s);
    assert_non_null(copy);
    return copy;
}

static void test_duration_good(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_OF(good_durations); i++) {
        char *text = heap_copy(good_durations[i].text);
        uint64_t ms = 12345;
        if (wr_units_parse_duration(text, &ms) != 0)
            fail_msg("duration \"%s\" refused", text);
        assert_int_equal(ms, good_durations[i].want);
        free(text);
    }
}

static void test_duration_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_OF(bad_durations); i++) {
        char *text = heap_copy(bad_durations[i]);
        uint64_t ms = 12345;
        if (wr_units_parse_duration(text, &ms) != -1)
            fail_msg("duration \"%s\" accepted", text);
        assert_int_equal(ms, 12345); /* untouched on failure */
        free(text);
    }
    uint64_t ms;
    assert_int_equal(wr_units_parse_duration(NULL, &ms), -1);
}

/* Issue 13.14: durations stop at WR_UNITS_DURATION_MAX_MS (365d), so that
 * `now + timeout` can never wrap and make "forever" mean "at once". One past
 * the maximum, in any unit, and numbers of any length fail with ERANGE;
 * junk fails with EINVAL. */
static void issue_13_duration_max(void **state)
{
    (void)state;
    static const char *const too_long[] = {
        "31536000001ms", "31536001", "366d", "8761h", "525601m",
        "18446744073709551615ms", "18446744073709551616ms", "213503982334d",
        "99999999999999999999999999999999999999999999999999999999999999999999d",
        "000000000000000000000000000000000000000000000000000000000000000031536001s",
    };
    for (size_t i = 0; i < N_OF(too_long); i++) {
        char *text = heap_copy(too_long[i]);
        uint64_t ms = 12345;
        errno = 0;
        if (wr_units_parse_duration(text, &ms) != -1)
            fail_msg("duration \"%s\" accepted", text);
        assert_int_equal(errno, ERANGE);
        assert_int_equal(ms, 12345);
        free(text);
    }
    static const char *const junk[] = {"99999999999999999999999x", "1x", "", "d"};
    for (size_t i = 0; i < N_OF(junk); i++) {
        uint64_t ms = 12345;
        errno = 0;
        assert_int_equal(wr_units_parse_duration(junk[i], &ms), -1);
        assert_int_equal(errno, EINVAL);
    }
    /* The leading zeros of a long digit string do not count against it. */
    uint64_t ms = 0;
    assert_int_equal(wr_units_parse_duration("0000000000000000000000000000365d", &ms), 0);
    assert_int_equal(ms, WR_UNITS_DURATION_MAX_MS);
    /* Sizes keep the whole uint64_t range, with the same errno split. */
    errno = 0;
    assert_int_equal(wr_units_parse_size("18446744073709551616", &ms), -1);
    assert_int_equal(errno, ERANGE);
}

static void test_size_good(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_OF(good_sizes); i++) {
        char *text = heap_copy(good_sizes[i].text);
        uint64_t bytes = 12345;
        if (wr_units_parse_size(text, &bytes) != 0)
            fail_msg("size \"%s\" refused", text);
        assert_int_equal(bytes, good_sizes[i].want);
        free(text);
    }
}

static void test_size_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_OF(bad_sizes); i++) {
        char *text = heap_copy(bad_sizes[i]);
        uint64_t bytes = 12345;
        if (wr_units_parse_size(text, &bytes) != -1)
            fail_msg("size \"%s\" accepted", text);
        assert_int_equal(bytes, 12345);
        free(text);
    }
}

static void test_bool(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool want;
    } good[] = {
        {"on", true},    {"off", false},  {"yes", true}, {"no", false},  {"true", true},
        {"false", false}, {"ON", true},   {"Off", false}, {"TRUE", true}, {"No", false},
    };
    static const char *const bad[] = {"", "1", "0", "enable", "onn", " on", "on ", "o", "y", "n"};
    for (size_t i = 0; i < N_OF(good); i++) {
        char *text = heap_copy(good[i].text);
        bool b = !good[i].want;
        if (wr_units_parse_bool(text, &b) != 0)
            fail_msg("bool \"%s\" refused", text);
        assert_int_equal(b, good[i].want);
        free(text);
    }
    for (size_t i = 0; i < N_OF(bad); i++) {
        char *text = heap_copy(bad[i]);
        bool b = true;
        if (wr_units_parse_bool(text, &b) != -1)
            fail_msg("bool \"%s\" accepted", text);
        free(text);
    }
}

struct listen_case {
    const char *text;
    int family;
    int port; /* 0 for unix */
    const char *canonical;
};

static const struct listen_case good_listens[] = {
    {"127.0.0.1:8080", AF_INET, 8080, "127.0.0.1:8080"},
    {"*:80", AF_INET, 80, "0.0.0.0:80"},
    {"0.0.0.0:65535", AF_INET, 65535, "0.0.0.0:65535"},
    {"10.1.2.3:1", AF_INET, 1, "10.1.2.3:1"},
    {"[::1]:443", AF_INET6, 443, "[::1]:443"},
    {"[::]:80", AF_INET6, 80, "[::]:80"},
    {"[2001:DB8:0:0::1]:8080", AF_INET6, 8080, "[2001:db8::1]:8080"},
    {"[::ffff:1.2.3.4]:80", AF_INET6, 80, "[::ffff:1.2.3.4]:80"},
    {"unix:/run/weir.sock", AF_UNIX, 0, "unix:/run/weir.sock"},
};

static const char *const bad_listens[] = {
    "", "8080", ":8080", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
    "127.0.0.1:-1", "127.0.0.1:+80", "127.0.0.1:80 ", " 127.0.0.1:80", "127.0.0.1: 80",
    "localhost:80", "example.org:443", "1.2.3:80", "01.2.3.4:80", "256.1.1.1:80", "::1:80",
    "[::1]", "[::1]80", "[::1]:", "[]:80", "[::1:80", "[1.2.3.4]:80", "[fe80::1%eth0]:80",
    "unix:", "unix:relative.sock", "*:0", "*80", "**:80", "127.0.0.1:8080:1",
    "127.0.0.1:99999999999999999999",
};

static void test_listen_good(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_OF(good_listens); i++) {
        const struct listen_case *c = &good_listens[i];
        char *text = heap_copy(c->text);
        struct wr_listen_addr a;
        if (wr_units_parse_listen(text, &a) != 0)
            fail_msg("listen \"%s\" refused", text);
        assert_int_equal(a.addr.ss_family, c->family);
        assert_string_equal(a.text, c->canonical);
        if (c->family == AF_INET) {
            const struct sockaddr_in *sin = (const struct sockaddr_in *)&a.addr;
            assert_int_equal(ntohs(sin->sin_port), c->port);
            assert_int_equal(a.addr_len, sizeof(*sin));
        } else if (c->family == AF_INET6) {
            const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a.addr;
            assert_int_equal(ntohs(sin6->sin6_port), c->port);
            assert_int_equal(a.addr_len, sizeof(*sin6));
        }
        free(text);
    }
}

static void test_listen_unix(void **state)
{
    (void)state;
    struct sockaddr_un sun;
    char text[sizeof(sun.sun_path) + 16];
    /* "unix:/" + 106 more bytes: 107 in sun_path plus its NUL just fits. */
    strcpy(text, "unix:/");
    memset(text + 6, 'a', sizeof(sun.sun_path) - 2);
    text[6 + sizeof(sun.sun_path) - 2] = '\0';
    struct wr_listen_addr a;
    assert_int_equal(wr_units_parse_listen(text, &a), 0);
    const struct sockaddr_un *got = (const struct sockaddr_un *)&a.addr;
    assert_string_equal(got->sun_path, text + 5);
    assert_int_equal(a.addr_len, offsetof(struct sockaddr_un, sun_path) + strlen(text + 5) + 1);
    assert_string_equal(a.text, text);
    /* One byte more leaves no room for the NUL. */
    strcat(text, "a");
    assert_int_equal(wr_units_parse_listen(text, &a), -1);
}

static void test_listen_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_OF(bad_listens); i++) {
        char *text = heap_copy(bad_listens[i]);
        struct wr_listen_addr a;
        if (wr_units_parse_listen(text, &a) != -1)
            fail_msg("listen \"%s\" accepted", text);
        free(text);
    }
    struct wr_listen_addr a;
    assert_int_equal(wr_units_parse_listen(NULL, &a), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_good), cmocka_unit_test(test_duration_bad),
        cmocka_unit_test(issue_13_duration_max),
        cmocka_unit_test(test_size_good),     cmocka_unit_test(test_size_bad),
        cmocka_unit_test(test_bool),          cmocka_unit_test(test_listen_good),
        cmocka_unit_test(test_listen_unix),   cmocka_unit_test(test_listen_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
