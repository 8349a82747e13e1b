/*
 * ocsp: the responder URL from a certificate's AIA extension, the URL
 * split for the POST, refresh and retry times, the request, the response's
 * HTTP framing and its verification (issue 19 point 4).
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "weir/ocsp.h"

/* A cert for cn signed by ca_key as ca (NULL, NULL: self-signed with
 * key), with an AIA extension when aia is non-NULL and the OCSPSigning
 * EKU when ocsp_signer. */
static X509 *make_signed(const char *cn, EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key,
                         const char *aia, bool ocsp_signer, long serial)
{
    X509 *x = X509_new();
    assert_non_null(x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(ca ? ca : x));
    if (aia) {
        X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, NULL, NID_info_access, aia);
        assert_non_null(ext);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    if (ocsp_signer) {
        X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, NULL, NID_ext_key_usage, "OCSPSigning");
        assert_non_null(ext);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(x, ca_key ? ca_key : key, EVP_sha256()) > 0);
    return x;
}

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

struct pki {
    EVP_PKEY *ca_key, *leaf_key, *other_key, *resp_key;
    X509 *ca, *leaf, *other, *responder, *stranger_responder;
};

static struct pki make_pki(void)
{
    struct pki k = {EVP_EC_gen("P-256"), EVP_EC_gen("P-256"), EVP_EC_gen("P-256"),
                    EVP_EC_gen("P-256"), NULL, NULL, NULL, NULL, NULL};
    k.ca = make_signed("ca", k.ca_key, NULL, NULL, NULL, false, 1);
    k.leaf = make_signed("leaf", k.leaf_key, k.ca, k.ca_key, NULL, false, 2);
    k.other = make_signed("other", k.other_key, NULL, NULL, NULL, false, 3);
    k.responder = make_signed("ocsp", k.resp_key, k.ca, k.ca_key, NULL, true, 4);
    /* signed by the CA but without id-kp-OCSPSigning: not a responder */
    k.stranger_responder = make_signed("tls", k.resp_key, k.ca, k.ca_key, NULL, false, 5);
    return k;
}

static void free_pki(struct pki *k)
{
    X509_free(k->ca), X509_free(k->leaf), X509_free(k->other);
    X509_free(k->responder), X509_free(k->stranger_responder);
    EVP_PKEY_free(k->ca_key), EVP_PKEY_free(k->leaf_key);
    EVP_PKEY_free(k->other_key), EVP_PKEY_free(k->resp_key);
}

/* A DER response for cert (id from issuer) with status, valid from
 * now + from_s to now + until_s (0: no nextUpdate), signed by signer. */
static size_t make_resp(unsigned char **der, X509 *cert, X509 *issuer, int status,
                        long from_s, long until_s, X509 *signer, EVP_PKEY *key)
{
    OCSP_BASICRESP *b = OCSP_BASICRESP_new();
    OCSP_CERTID *id = OCSP_cert_to_id(EVP_sha1(), cert, issuer);
    ASN1_TIME *tu = X509_gmtime_adj(NULL, from_s);
    ASN1_TIME *nu = until_s ? X509_gmtime_adj(NULL, until_s) : NULL;
    ASN1_TIME *rev = X509_gmtime_adj(NULL, -86400);
    assert_non_null(OCSP_basic_add1_status(b, id, status, OCSP_REVOKED_STATUS_KEYCOMPROMISE,
                                           status == V_OCSP_CERTSTATUS_REVOKED ? rev : NULL,
                                           tu, nu));
    assert_int_equal(OCSP_basic_sign(b, signer, key, EVP_sha256(), NULL, 0), 1);
    OCSP_RESPONSE *r = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, b);
    *der = NULL;
    int n = i2d_OCSP_RESPONSE(r, der);
    assert_true(n > 0);
    OCSP_RESPONSE_free(r), OCSP_BASICRESP_free(b), OCSP_CERTID_free(id);
    ASN1_TIME_free(tu), ASN1_TIME_free(nu), ASN1_TIME_free(rev);
    return (size_t)n;
}

static enum wr_ocsp_verdict verify(unsigned char *der, size_t n, struct pki *k, const char **why)
{
    time_t tu = 0, nu = 0;
    enum wr_ocsp_verdict v = wr_ocsp_verify(der, n, k->leaf, k->ca, &tu, &nu, why);
    if (v != WR_OCSP_INVALID)
        assert_true(tu > 0);
    OPENSSL_free(der);
    return v;
}

static void issue_19_ocsp_verify(void **state)
{
    (void)state;
    struct pki k = make_pki();
    unsigned char *der;
    const char *why;
    size_t n;
    n = make_resp(&der, k.leaf, k.ca, V_OCSP_CERTSTATUS_GOOD, -60, 3600, k.ca, k.ca_key);
    assert_int_equal(verify(der, n, &k, &why), WR_OCSP_GOOD);
    /* delegated responder (RFC 6960 §4.2.2.2) */
    n = make_resp(&der, k.leaf, k.ca, V_OCSP_CERTSTATUS_GOOD, -60, 3600, k.responder, k.resp_key);
    assert_int_equal(verify(der, n, &k, &why), WR_OCSP_GOOD);
    n = make_resp(&der, k.leaf, k.ca, V_OCSP_CERTSTATUS_REVOKED, -60, 3600, k.ca, k.ca_key);
    assert_int_equal(verify(der, n, &k, &why), WR_OCSP_REVOKED);
    n = make_resp(&der, k.leaf, k.ca, V_OCSP_CERTSTATUS_UNKNOWN, -60, 3600, k.ca, k.ca_key);
    assert_int_equal(verify(der, n, &k, &why), WR_OCSP_UNKNOWN);
    /* the wrong key: a self-signed stranger, a CA cert without the EKU */
    n = make_resp(&der, k.leaf, k.ca, V_OCSP_CERTSTATUS_GOOD, -60, 3600, k.other, k.other_key);
    assert_int_equal(verify(der, n, &k, &why), WR_OCSP_INVALID);
    n = make_resp(&der, k.leaf, k.ca, V_OCSP_CERTSTATUS_GOOD, -60, 3600, k.stranger_responder,
                  k.resp_key);
    assert_int_equal(verify(der, n, &k, &why), WR_OCSP_INVALID);
    /* another certificate's status */
    n = make_resp(&der, k.responder, k.ca, V_OCSP_CERTSTATUS_GOOD, -60, 3600, k.ca, k.ca_key);
    assert_int_equal(verify(der, n, &k, &why), WR_OCSP_INVALID);
    assert_string_equal(why, "no status for this certificate");
    /* expired, and not yet valid beyond the 5 minutes' skew */
    n = make_resp(&der, k.leaf, k.ca, V_OCSP_CERTSTATUS_GOOD, -7200, -600, k.ca, k.ca_key);
    assert_int_equal(verify(der, n, &k, &why), WR_OCSP_INVALID);
    n = make_resp(&der, k.leaf, k.ca, V_OCSP_CERTSTATUS_GOOD, 900, 3600, k.ca, k.ca_key);
    assert_int_equal(verify(der, n, &k, &why), WR_OCSP_INVALID);
    /* garbage and trailing bytes */
    time_t tu, nu;
    assert_int_equal(wr_ocsp_verify((const unsigned char *)"x", 1, k.leaf, k.ca, &tu, &nu, &why),
                     WR_OCSP_INVALID);
    n = make_resp(&der, k.leaf, k.ca, V_OCSP_CERTSTATUS_GOOD, -60, 3600, k.ca, k.ca_key);
    assert_int_equal(wr_ocsp_verify(der, n - 1, k.leaf, k.ca, &tu, &nu, &why), WR_OCSP_INVALID);
    OPENSSL_free(der);
    free_pki(&k);
}

static void issue_19_ocsp_request(void **state)
{
    (void)state;
    struct pki k = make_pki();
    unsigned char *der;
    size_t n = wr_ocsp_request(k.leaf, k.ca, &der);
    assert_true(n > 0);
    const unsigned char *p = der;
    OCSP_REQUEST *req = d2i_OCSP_REQUEST(NULL, &p, (long)n);
    assert_non_null(req);
    assert_int_equal(OCSP_request_onereq_count(req), 1);
    OCSP_CERTID *want = OCSP_cert_to_id(EVP_sha1(), k.leaf, k.ca);
    assert_int_equal(OCSP_id_cmp(OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, 0)), want), 0);
    OCSP_CERTID_free(want);
    OCSP_REQUEST_free(req);
    OPENSSL_free(der);
    free_pki(&k);
}

/* wr_ocsp_http_body on an exact-size heap copy (ASan sees over-reads). */
static int body_of(const char *text, size_t len, bool is_closed, char *out, size_t *out_len,
                   char *why)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, text, len);
    const char *body = NULL;
    int rc = wr_ocsp_http_body(copy, len, is_closed, &body, out_len, why, 128);
    if (rc > 0) {
        assert_true(body >= copy && body + *out_len <= copy + len);
        memcpy(out, body, *out_len);
    }
    free(copy);
    return rc;
}

static void issue_19_ocsp_http_body(void **state)
{
    (void)state;
    char body[64], why[128];
    size_t len = 0;
    static const char ok[] = "HTTP/1.0 200 OK\r\nContent-type: application/ocsp-response\r\n"
                             "Content-Length: 5\r\n\r\nhello";
    /* Split at every offset: more bytes needed until the last one. */
    for (size_t n = 0; n < sizeof(ok) - 1; n++)
        assert_int_equal(body_of(ok, n, false, body, &len, why), 0);
    assert_int_equal(body_of(ok, sizeof(ok) - 1, false, body, &len, why), 1);
    assert_int_equal(len, 5);
    assert_memory_equal(body, "hello", 5);
    /* Bytes past the length are not the body. */
    static const char extra[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiGARBAGE";
    assert_int_equal(body_of(extra, sizeof(extra) - 1, true, body, &len, why), 1);
    assert_int_equal(len, 2);
    /* No length: the close ends the body (RFC 9112 §6.3). */
    static const char close[] = "HTTP/1.0 200 OK\r\n\r\nabc";
    assert_int_equal(body_of(close, sizeof(close) - 1, false, body, &len, why), 0);
    assert_int_equal(body_of(close, sizeof(close) - 1, true, body, &len, why), 1);
    assert_int_equal(len, 3);
    /* Refused: another status, chunked, too large, cut short, malformed. */
    static const char *const bad[][2] = {
        {"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n", "HTTP status 500"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "chunked"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 16385\r\n\r\n", "larger than 16384"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", "closed after 3 of 9"},
        {"HTTP/1.1 200 OK\nContent-Length: 0\n\n", "malformed"},
        {"HTTP/1.1 200 OK\r\nContent-Le", "closed before the response head ended"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        assert_int_equal(body_of(bad[i][0], strlen(bad[i][0]), true, body, &len, why), -1);
        assert_non_null(strstr(why, bad[i][1]));
    }
    /* A head longer than WR_OCSP_HEAD_MAX is refused before it ends. */
    size_t big = WR_OCSP_HEAD_MAX + 64;
    char *head = malloc(big);
    assert_non_null(head);
    memcpy(head, "HTTP/1.1 200 OK\r\nX: ", 20);
    memset(head + 20, 'a', big - 20);
    assert_int_equal(body_of(head, big, false, body, &len, why), -1);
    free(head);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issue_19_ocsp_aia_url),
        cmocka_unit_test(issue_19_ocsp_split_url),
        cmocka_unit_test(issue_19_ocsp_refresh_at),
        cmocka_unit_test(issue_19_ocsp_retry_delay),
        cmocka_unit_test(issue_19_ocsp_verify),
        cmocka_unit_test(issue_19_ocsp_request),
        cmocka_unit_test(issue_19_ocsp_http_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
