/*
 * ocsp: responder URL, URL split, refresh and retry times (see ocsp.h).
 */
#include "weir/ocsp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "weir/http_parser.h"

char *wr_ocsp_aia_url(X509 *cert)
{
    STACK_OF(OPENSSL_STRING) *urls = X509_get1_ocsp(cert);
    char *url = NULL;
    if (urls && sk_OPENSSL_STRING_num(urls) > 0)
        url = strdup(sk_OPENSSL_STRING_value(urls, 0));
    X509_email_free(urls); /* frees the stack X509_get1_ocsp made */
    return url;
}

/* "80" .. "65535" as a number; 0 when not a port. */
static unsigned parse_port(const char *s)
{
    unsigned v = 0;
    if (!*s)
        return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || (v = v * 10 + (unsigned)(*s - '0')) > 65535)
            return 0;
    }
    return v;
}

bool wr_ocsp_split_url(const char *url, char *buf, size_t bufsz, struct wr_ocsp_url *out)
{
    static const char scheme[] = "http://";
    if (strncasecmp(url, scheme, sizeof scheme - 1) != 0)
        return false;
    /* buf: host NUL path NUL; no path (or only a query) sends "/". */
    const char *auth = url + sizeof scheme - 1;
    size_t alen = strcspn(auth, "/?#");
    size_t plen = auth[alen] == '/' ? strlen(auth + alen) : 1;
    if (alen + plen + 2 > bufsz)
        return false;
    memcpy(buf, auth, alen);
    buf[alen] = '\0';
    char *path = buf + alen + 1;
    snprintf(path, bufsz - alen - 1, "%s", auth[alen] == '/' ? auth + alen : "/");
    char *host = buf, *colon;
    if (*host == '[') { /* [v6]:port */
        char *close = strchr(host, ']');
        if (!close || (close[1] && close[1] != ':'))
            return false;
        *close = '\0';
        colon = close[1] ? close + 1 : NULL;
        host++;
    } else {
        colon = strchr(host, ':');
    }
    if (strchr(host, '@'))
        return false; /* userinfo: never sent, refuse rather than guess */
    out->port = 80;
    if (colon) {
        *colon = '\0';
        if ((out->port = parse_port(colon + 1)) == 0)
            return false;
    }
    if (!*host)
        return false;
    out->host = host;
    out->path = path;
    return true;
}

time_t wr_ocsp_refresh_at(time_t now, time_t this_update, time_t next_update)
{
    time_t at = now + WR_OCSP_REFRESH_MAX_S;
    if (next_update > this_update)
        at = this_update + (next_update - this_update) / 2;
    if (at < now + WR_OCSP_REFRESH_MIN_S)
        at = now + WR_OCSP_REFRESH_MIN_S;
    if (at > now + WR_OCSP_REFRESH_MAX_S)
        at = now + WR_OCSP_REFRESH_MAX_S;
    return at;
}

unsigned wr_ocsp_retry_delay(unsigned prev)
{
    if (prev < WR_OCSP_RETRY_MIN_S)
        return WR_OCSP_RETRY_MIN_S;
    return prev >= WR_OCSP_RETRY_MAX_S / 2 ? WR_OCSP_RETRY_MAX_S : prev * 2;
}

size_t wr_ocsp_request(X509 *cert, X509 *issuer, unsigned char **der)
{
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    OCSP_CERTID *id = OCSP_cert_to_id(EVP_sha1(), cert, issuer);
    int n = 0;
    *der = NULL;
    if (req && id && OCSP_request_add0_id(req, id) != NULL) {
        id = NULL; /* req owns it now */
        n = i2d_OCSP_REQUEST(req, der);
    }
    OCSP_CERTID_free(id);
    OCSP_REQUEST_free(req);
    if (n <= 0) {
        *der = NULL;
        return 0;
    }
    return (size_t)n;
}

int wr_ocsp_http_body(const char *buf, size_t len, bool is_closed, const char **body,
                      size_t *body_len, char *why, size_t cap)
{
    static const struct wr_http_limits limits = {.max_head_bytes = WR_OCSP_HEAD_MAX};
    struct wr_http_response resp;
    ssize_t head = wr_http_parse_response(buf, len, 0, &limits, &resp);
    if (head == WR_AGAIN && !is_closed)
        return 0;
    if (head < 0) {
        snprintf(why, cap, "%s", head == WR_AGAIN ? "closed before the response head ended"
                                                  : "malformed response head");
        return -1;
    }
    size_t have = len - (size_t)head;
    if (resp.status != 200)
        snprintf(why, cap, "HTTP status %d", resp.status);
    else if (resp.is_chunked)
        snprintf(why, cap, "chunked response (not supported)");
    else if (resp.has_content_length && resp.content_length > WR_OCSP_BODY_MAX)
        snprintf(why, cap, "response larger than %d bytes", WR_OCSP_BODY_MAX);
    else if (!resp.has_content_length && have > WR_OCSP_BODY_MAX)
        snprintf(why, cap, "response larger than %d bytes", WR_OCSP_BODY_MAX);
    else if (resp.has_content_length && have < resp.content_length && is_closed)
        snprintf(why, cap, "closed after %zu of %llu body bytes", have,
                 (unsigned long long)resp.content_length);
    else if (resp.has_content_length && have < resp.content_length)
        return 0;
    else if (!resp.has_content_length && !is_closed)
        return 0; /* RFC 9112 §6.3: no length, the close ends the body */
    else {
        *body = buf + head;
        *body_len = resp.has_content_length ? (size_t)resp.content_length : have;
        return 1;
    }
    return -1;
}

/* GeneralizedTime as time_t; 0 for NULL or unparseable. */
static time_t gtime(const ASN1_GENERALIZEDTIME *t)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return timegm(&tm);
}

/* The signature: issuer as the only trusted cert, so a response signed
 * by the issuer itself or by a delegated responder it certified (OpenSSL
 * checks the id-kp-OCSPSigning EKU of a delegate) verifies, and nothing
 * else does. */
static bool signed_by_issuer(OCSP_BASICRESP *basic, X509 *issuer)
{
    X509_STORE *store = X509_STORE_new();
    STACK_OF(X509) *certs = sk_X509_new_null();
    /* PARTIAL_CHAIN: an intermediate issuer is a trust anchor on its own. */
    bool ok = store && certs && X509_STORE_add_cert(store, issuer) == 1 &&
              X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN) == 1 &&
              sk_X509_push(certs, issuer) > 0 &&
              OCSP_basic_verify(basic, certs, store, OCSP_TRUSTOTHER) == 1;
    sk_X509_free(certs); /* borrowed issuer: the stack only */
    X509_STORE_free(store);
    return ok;
}

enum wr_ocsp_verdict wr_ocsp_verify(const unsigned char *der, size_t len, X509 *cert,
                                    X509 *issuer, time_t *this_update, time_t *next_update,
                                    const char **why)
{
    const unsigned char *p = der;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    OCSP_BASICRESP *basic = resp ? OCSP_response_get1_basic(resp) : NULL;
    OCSP_CERTID *id = OCSP_cert_to_id(EVP_sha1(), cert, issuer);
    ASN1_GENERALIZEDTIME *tu = NULL, *nu = NULL;
    int status = -1, reason = 0;
    *why = NULL;
    if (!resp || p != der + len)
        *why = "not a DER OCSP response";
    else if (OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL)
        *why = "the responder answered with an error status";
    else if (!basic || !id)
        *why = "no basic response";
    else if (!signed_by_issuer(basic, issuer))
        *why = "signature not from the issuer or a responder it certified";
    else if (OCSP_resp_find_status(basic, id, &status, &reason, NULL, &tu, &nu) != 1)
        *why = "no status for this certificate";
    else if (OCSP_check_validity(tu, nu, 300, -1) != 1)
        *why = "outside thisUpdate/nextUpdate";
    if (!*why) {
        *this_update = gtime(tu);
        *next_update = gtime(nu);
    }
    OCSP_CERTID_free(id);
    OCSP_BASICRESP_free(basic);
    OCSP_RESPONSE_free(resp);
    if (*why)
        return WR_OCSP_INVALID;
    return status == V_OCSP_CERTSTATUS_GOOD      ? WR_OCSP_GOOD
           : status == V_OCSP_CERTSTATUS_REVOKED ? WR_OCSP_REVOKED
                                                 : WR_OCSP_UNKNOWN;
}
