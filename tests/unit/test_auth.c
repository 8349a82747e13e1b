/* auth: Basic credentials against crypt(3) hashes, the per-worker cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <crypt.h>

#include "weir/auth.h"

static char *hash_of(const char *password, const char *prefix)
{
    struct crypt_data cd = {0};
    const char *setting = crypt_gensalt_rn(prefix, 0, NULL, 0, cd.setting, sizeof(cd.setting));
    assert_non_null(setting);
    const char *h = crypt_r(password, setting, &cd);
    assert_non_null(h);
    return strdup(h);
}

/* "Basic " + base64("user:password") */
static const char *field(const char *b64)
{
    static char buf[256];
    snprintf(buf, sizeof(buf), "Basic %s", b64);
    return buf;
}

static void issue_19_auth_check(void **state)
{
    (void)state;
    struct wr_auth_user users[2] = {{"ann", hash_of("annpw", "$6$")},
                                    {"bob", hash_of("bobpw", "$y$")}};
    struct wr_auth_cache *cache = wr_auth_cache_new();
    assert_non_null(cache);
    const char *who = NULL;
    /* YW5uOmFubnB3 = ann:annpw, Ym9iOmJvYnB3 = bob:bobpw, YW5uOm5vcGU= = ann:nope */
    assert_int_equal(wr_auth_basic_check(cache, users, 2, wr_str_from_cstr(field("YW5uOmFubnB3")),
                                         &who, 1000), WR_AUTH_OK);
    assert_string_equal(who, "ann");
    assert_int_equal(wr_auth_basic_check(NULL, users, 2, wr_str_from_cstr(field("Ym9iOmJvYnB3")),
                                         &who, 1000), WR_AUTH_OK); /* uncached too */
    assert_string_equal(who, "bob");
    assert_int_equal(wr_auth_basic_check(cache, users, 2, wr_str_from_cstr(field("YW5uOm5vcGU=")),
                                         &who, 1000), WR_AUTH_BAD);
    /* unknown user, no colon, bad base64, not Basic, absent */
    static const char *const bad[] = {"Basic bm9ib2R5OmFubnB3", "Basic bm9jb2xvbg==",
                                      "Basic !!!!", "Basic abc"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(wr_auth_basic_check(cache, users, 2, wr_str_from_cstr(bad[i]), &who, 1000),
                         WR_AUTH_BAD);
    assert_int_equal(wr_auth_basic_check(cache, users, 2, WR_STR("Bearer x"), &who, 1000),
                     WR_AUTH_MISSING);
    assert_int_equal(wr_auth_basic_check(cache, users, 2, WR_STR("Basic "), &who, 1000),
                     WR_AUTH_MISSING); /* the scheme alone: no attempt */
    assert_int_equal(wr_auth_basic_check(cache, users, 2, (struct wr_str){NULL, 0}, &who, 1000),
                     WR_AUTH_MISSING);
    /* case of the scheme ignored, blanks trimmed */
    assert_int_equal(wr_auth_basic_check(cache, users, 2, WR_STR("  basic   YW5uOmFubnB3 "),
                                         &who, 1000), WR_AUTH_OK);
    /* A changed password (a reloaded file): the cached success does not carry over. */
    free(users[0].hash);
    users[0].hash = hash_of("newpw", "$6$");
    assert_int_equal(wr_auth_basic_check(cache, users, 2, wr_str_from_cstr(field("YW5uOmFubnB3")),
                                         &who, 2000), WR_AUTH_BAD);
    /* ann:newpw passes, then again after the cache's minute */
    assert_int_equal(wr_auth_basic_check(cache, users, 2, WR_STR("Basic YW5uOm5ld3B3"), &who,
                                         2000), WR_AUTH_OK);
    assert_int_equal(wr_auth_basic_check(cache, users, 2, WR_STR("Basic YW5uOm5ld3B3"), &who,
                                         200000), WR_AUTH_OK);
    wr_auth_cache_free(cache);
    free(users[0].hash);
    free(users[1].hash);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issue_19_auth_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
