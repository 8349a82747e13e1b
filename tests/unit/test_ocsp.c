/*
 * ocsp: the responder URL from a certificate's AIA extension, the URL
 * split for the POST, refresh and retry times (issue 19 point 4).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "weir/ocsp.h"

/* A self-signed cert, with an AIA extension when aia is non-NULL. */
static X509 *make_cert(const char *aia)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(key);
    assert_non_null(x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"leaf", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    if (aia) {
        X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, NULL, NID_info_access, aia);
        assert_non_null(ext);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    EVP_PKEY_free(key);
    return x;
}

static void issue_19_ocsp_aia_url(void **state)
{
    (void)state;
    X509 *x = make_cert("caIssuers;URI:http://ca.test/ca.crt,OCSP;URI:http://ocsp.test:8080/r");
    char *url = wr_ocsp_aia_url(x);
    assert_string_equal(url, "http://ocsp.test:8080/r"); /* the OCSP one, not caIssuers */
    free(url);
    X509_free(x);
    x = make_cert(NULL);
    assert_null(wr_ocsp_aia_url(x));
    X509_free(x);
    x = make_cert("caIssuers;URI:http://ca.test/ca.crt");
    assert_null(wr_ocsp_aia_url(x));
    X509_free(x);
}

static void issue_19_ocsp_split_url(void **state)
{
    (void)state;
    char buf[128];
    struct wr_ocsp_url u;
    assert_true(wr_ocsp_split_url("http://ocsp.test", buf, sizeof buf, &u));
    assert_string_equal(u.host, "ocsp.test");
    assert_int_equal(u.port, 80);
    assert_string_equal(u.path, "/");
    assert_true(wr_ocsp_split_url("HTTP://127.0.0.1:8888/a/b", buf, sizeof buf, &u));
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 8888);
    assert_string_equal(u.path, "/a/b");
    assert_true(wr_ocsp_split_url("http://[::1]:9/x", buf, sizeof buf, &u));
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 9);
    assert_string_equal(u.path, "/x");
    assert_true(wr_ocsp_split_url("http://[::1]", buf, sizeof buf, &u));
    assert_int_equal(u.port, 80);
    const char *bad[] = {"https://ocsp.test/", "ldap://x/", "http://", "http://:80/",
                         "http://h:0/", "http://h:65536/", "http://h:8a/", "http://h:/",
                         "http://[::1/", "http://[::1]x/", "http://u@h/", "ocsp.test"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(wr_ocsp_split_url(bad[i], buf, sizeof buf, &u));
    char small[12]; /* host NUL path NUL: 9 + 1 + 2 + 1 = 13 > 12 */
    assert_false(wr_ocsp_split_url("http://abcdefghi/p", small, sizeof small, &u));
    assert_true(wr_ocsp_split_url("http://abcdefgh/p", small, sizeof small, &u)); /* 12: fits */
    assert_string_equal(u.host, "abcdefgh");
    assert_string_equal(u.path, "/p");
}

static void issue_19_ocsp_refresh_at(void **state)
{
    (void)state;
    time_t now = 1000000;
    /* 40-minute window fetched at its start: midpoint, 20 min on */
    assert_int_equal(wr_ocsp_refresh_at(now, now, now + 2400), now + 1200);
    /* a week-long response: at least hourly */
    assert_int_equal(wr_ocsp_refresh_at(now, now, now + 7 * 86400), now + WR_OCSP_REFRESH_MAX_S);
    /* short-lived or past its midpoint: not sooner than 5 min */
    assert_int_equal(wr_ocsp_refresh_at(now, now, now + 60), now + WR_OCSP_REFRESH_MIN_S);
    assert_int_equal(wr_ocsp_refresh_at(now, now - 3000, now + 1000), now + WR_OCSP_REFRESH_MIN_S);
    /* no nextUpdate: hourly */
    assert_int_equal(wr_ocsp_refresh_at(now, now, 0), now + WR_OCSP_REFRESH_MAX_S);
}

static void issue_19_ocsp_retry_delay(void **state)
{
    (void)state;
    unsigned d = wr_ocsp_retry_delay(0);
    assert_int_equal(d, 60);
    assert_int_equal(d = wr_ocsp_retry_delay(d), 120);
    for (int i = 0; i < 10; i++)
        d = wr_ocsp_retry_delay(d);
    assert_int_equal(d, 3600);
    assert_int_equal(wr_ocsp_retry_delay(1920), 3600); /* 3840 capped */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issue_19_ocsp_aia_url),
        cmocka_unit_test(issue_19_ocsp_split_url),
        cmocka_unit_test(issue_19_ocsp_refresh_at),
        cmocka_unit_test(issue_19_ocsp_retry_delay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
