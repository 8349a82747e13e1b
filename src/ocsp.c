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
