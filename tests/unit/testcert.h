/*
 * A throwaway certificate for unit tests that need a TLS peer: included by
 * the test files that use it (static functions, no object of its own).
 */
#ifndef WEIR_TESTS_TESTCERT_H
#define WEIR_TESTS_TESTCERT_H

#include <stdio.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

/* dir/stem.crt and dir/stem.key: a self-signed P-256 certificate for cn,
 * valid for a day. Returns 0, or -1 when OpenSSL or a file failed. */
static int testcert_make(const char *dir, const char *stem, const char *cn)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    int rc = -1;
    if (!key || !x)
        goto done;
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    if (X509_sign(x, key, EVP_sha256()) <= 0)
        goto done;
    char path[256];
    snprintf(path, sizeof(path), "%s/%s.crt", dir, stem);
    FILE *f = fopen(path, "w");
    if (!f || PEM_write_X509(f, x) != 1 || fclose(f) != 0)
        goto done;
    snprintf(path, sizeof(path), "%s/%s.key", dir, stem);
    f = fopen(path, "w");
    if (!f || PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) != 1 || fclose(f) != 0)
        goto done;
    rc = 0;
done:
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

#endif
