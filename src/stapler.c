/*
 * stapler: OCSP responses fetched, verified, refreshed and handed to the
 * TLS contexts, on main's loop (see stapler.h for the policy).
 *
 * One entry per stapled certificate. An entry runs at most one fetch at a
 * time: RESOLVING (evdns, names only) -> CONNECTING -> SENDING -> READING,
 * then IDLE with its timer armed for the next one. Everything a fetch
 * holds (lookup, socket, buffer, deadline) is given back by end_fetch,
 * whichever way it ends, before the entry's state changes.
 *
 * Not here: the request, the response's framing and its verification
 * (ocsp.c, pure), the staple's hand-over to handshakes (tls.c).
 */
#include "weir/stapler.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "weir/log.h"
#include "weir/metrics.h"
#include "weir/ocsp.h"
#include "weir/stream.h"
#include "weir/tls.h"

#define URL_MAX 512
#define RESPONSE_CAP (WR_OCSP_HEAD_MAX + WR_OCSP_BODY_MAX)

enum step {
    STEP_IDLE = 0,   /* no fetch in flight; the timer says when the next one runs */
    STEP_RESOLVING,  /* evdns lookup of the responder's name */
    STEP_CONNECTING, /* TCP connect in progress */
    STEP_SENDING,    /* writing the POST */
    STEP_READING,    /* reading the response until it is complete */
};

struct entry {
    struct wr_stapler *st;
    const struct wr_tls_set *set;  /* borrowed (st->cfg's): where the response goes */
    size_t site, cert;
    char name[160];                /* "[tls NAME] cert 2" for logs */
    X509 *leaf, *issuer;           /* one reference each: a reload compares them */
    char *url;                     /* owned: the responder URL from the AIA */
    char url_buf[URL_MAX];         /* u.host and u.path point here */
    struct wr_ocsp_url u;
    unsigned char *der;            /* owned: the verified response stapled now, or NULL */
    size_t der_len;
    time_t next_update;            /* der's nextUpdate; 0: none */
    unsigned retry_s;              /* the last retry delay; 0 after a success */
    bool is_failing;               /* the last fetch failed: logged, recovery will be */
    enum step step;
    struct event *timer;           /* the next fetch */
    struct event *expiry;          /* der's nextUpdate passed */
    struct event *deadline;        /* the fetch in flight: WR_STAPLER_FETCH_TIMEOUT_S */
    struct event io;               /* the fetch's socket, one direction at a time */
    bool is_io_assigned;
    struct evdns_getaddrinfo_request *lookup; /* in flight, or NULL */
    struct evutil_addrinfo *addrs; /* owned: the lookup's answer, tried in order */
    struct evutil_addrinfo *next_addr; /* in addrs: the next one to try */
    struct wr_stream s;            /* fd -1 when none */
    char *buf;                     /* owned during a fetch: the request, then the response */
    size_t req_len, sent, got;
};

struct wr_stapler {
    struct event_base *base;    /* borrowed: main's */
    struct evdns_base *dns;     /* owned; made at the first name to look up */
    struct wr_metrics *metrics; /* borrowed */
    struct wr_config *cfg;      /* a reference: keeps the entries' set alive */
    struct entry **entries;     /* owned */
    size_t n_entries;
};

static void count_stapled(struct wr_stapler *st)
{
    uint64_t n = 0, first = 0;
    for (size_t i = 0; i < st->n_entries; i++) {
        const struct entry *e = st->entries[i];
        n += e->der != NULL;
        if (e->der && e->next_update > 0 && (first == 0 || (uint64_t)e->next_update < first))
            first = (uint64_t)e->next_update;
    }
    st->metrics->ocsp_stapled = n;
    st->metrics->ocsp_next_update_s = first;
}

/* ---- the end of a fetch ------------------------------------------------------ */

static void end_fetch(struct entry *e)
{
    if (e->lookup) {
        /* Its callback still runs (EVUTIL_EAI_CANCEL) and touches nothing. */
        struct evdns_getaddrinfo_request *r = e->lookup;
        e->lookup = NULL;
        evdns_getaddrinfo_cancel(r);
    }
    if (e->addrs)
        evutil_freeaddrinfo(e->addrs);
    e->addrs = e->next_addr = NULL;
    if (e->is_io_assigned)
        event_del(&e->io);
    e->is_io_assigned = false;
    wr_stream_fini(&e->s);
    free(e->buf);
    e->buf = NULL;
    e->step = STEP_IDLE;
    if (e->deadline)
        evtimer_del(e->deadline);
}

static void schedule(struct event *ev, time_t delay_s)
{
    struct timeval tv = {delay_s > 0 ? delay_s : 0, 0};
    evtimer_add(ev, &tv);
}

/* A fetch that gave no usable response: the response stapled (if any)
 * stays until its nextUpdate; the next try is the backoff's delay away. */
__attribute__((format(printf, 3, 4))) static void fetch_failed(struct entry *e, int result,
                                                               const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    end_fetch(e);
    e->st->metrics->ocsp_fetches[result]++;
    e->retry_s = wr_ocsp_retry_delay(e->retry_s);
    wr_log(e->is_failing ? WR_LOG_DEBUG : WR_LOG_WARN, -1, 0,
           "OCSP %s: fetching from %s failed: %s; %s; next try in %u s", e->name, e->url, why,
           e->der ? "the response stapled stays until its nextUpdate" : "nothing stapled",
           e->retry_s);
    e->is_failing = true;
    schedule(e->timer, e->retry_s);
}

static void time_text(time_t t, char *buf, size_t cap)
{
    struct tm tm;
    if (t == 0 || !gmtime_r(&t, &tm) || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, cap, "none");
}

/* Takes a verified response (copied out of the fetch's buffer first). */
static void staple(struct entry *e, const char *body, size_t len, enum wr_ocsp_verdict v,
                   time_t this_update, time_t next_update)
{
    unsigned char *der = malloc(len);
    if (!der || wr_tls_set_staple(e->set, e->site, e->cert, (const unsigned char *)body,
                                  len) < 0) {
        free(der);
        fetch_failed(e, WR_METRICS_OCSP_ERROR, "out of memory");
        return;
    }
    memcpy(der, body, len);
    end_fetch(e);
    bool was_stapled = e->der != NULL;
    free(e->der);
    e->der = der;
    e->der_len = len;
    e->next_update = next_update;
    time_t now = time(NULL);
    char next[32];
    time_text(next_update, next, sizeof(next));
    if (v == WR_OCSP_REVOKED)
        wr_log(WR_LOG_ERROR, -1, 0, "OCSP %s: the CA says this certificate is REVOKED; the "
               "response is stapled (clients will refuse it): replace the certificate", e->name);
    else
        wr_log(e->is_failing || !was_stapled ? WR_LOG_INFO : WR_LOG_DEBUG, -1, 0,
               "OCSP %s: response from %s stapled (status good, next update %s)", e->name,
               e->url, next);
    e->st->metrics->ocsp_fetches[v == WR_OCSP_REVOKED ? WR_METRICS_OCSP_REVOKED
                                                      : WR_METRICS_OCSP_GOOD]++;
    e->is_failing = false;
    e->retry_s = 0;
    if (next_update)
        schedule(e->expiry, next_update - now);
    else
        evtimer_del(e->expiry);
    schedule(e->timer, wr_ocsp_refresh_at(now, this_update, next_update) - now);
    count_stapled(e->st);
}

/* A complete response body: verified, then stapled or refused. */
static void judge(struct entry *e, const char *body, size_t len)
{
    time_t this_update = 0, next_update = 0;
    const char *why = NULL;
    enum wr_ocsp_verdict v = wr_ocsp_verify((const unsigned char *)body, len, e->leaf,
                                            e->issuer, &this_update, &next_update, &why);
    if (v == WR_OCSP_INVALID)
        fetch_failed(e, WR_METRICS_OCSP_INVALID, "invalid response: %s", why);
    else if (v == WR_OCSP_UNKNOWN)
        fetch_failed(e, WR_METRICS_OCSP_UNKNOWN, "the responder does not know the certificate "
                                                 "(status unknown)");
    else
        staple(e, body, len, v, this_update, next_update);
}

/* ---- the fetch's steps ---------------------------------------------------------- */

static int connect_next(struct entry *e);

/* Each step returns the event to wait for (EV_READ, EV_WRITE), or 0 when
 * it moved to the next step or ended the fetch (step IDLE). */

static short step_connect(struct entry *e)
{
    int err = wr_stream_connect_error(&e->s);
    if (err == 0) {
        e->step = STEP_SENDING;
        return 0;
    }
    if (e->is_io_assigned) /* before the close: its descriptor may be reused at once */
        event_del(&e->io);
    e->is_io_assigned = false;
    wr_stream_fini(&e->s);
    if (e->next_addr) /* the name has another address: try it */
        return connect_next(e) < 0 ? 0 : (e->step == STEP_CONNECTING ? EV_WRITE : 0);
    fetch_failed(e, WR_METRICS_OCSP_ERROR, "connect: %s", strerror(err));
    return 0;
}

static short step_send(struct entry *e)
{
    while (e->sent < e->req_len) {
        struct iovec iov = {e->buf + e->sent, e->req_len - e->sent};
        ssize_t w = wr_stream_writev(&e->s, &iov, 1);
        if (w < 0 && errno == EAGAIN)
            return EV_WRITE;
        if (w < 0) {
            fetch_failed(e, WR_METRICS_OCSP_ERROR, "send: %s", strerror(errno));
            return 0;
        }
        e->sent += (size_t)w;
    }
    e->step = STEP_READING;
    return 0;
}

static short step_read(struct entry *e)
{
    char *resp = e->buf + e->req_len;
    for (;;) { /* each turn fills the bounded buffer further, or ends */
        ssize_t n = wr_stream_read(&e->s, resp + e->got, RESPONSE_CAP - e->got);
        if (n < 0 && errno == EAGAIN)
            return EV_READ;
        if (n < 0) {
            fetch_failed(e, WR_METRICS_OCSP_ERROR, "read: %s", strerror(errno));
            return 0;
        }
        e->got += (size_t)n;
        const char *body = NULL;
        size_t len = 0;
        char why[128];
        int rc = wr_ocsp_http_body(resp, e->got, n == 0, &body, &len, why, sizeof(why));
        if (rc > 0) {
            judge(e, body, len);
            return 0;
        }
        if (rc < 0 || e->got == RESPONSE_CAP) {
            fetch_failed(e, WR_METRICS_OCSP_ERROR, "%s",
                         rc < 0 ? why : "response larger than the buffer");
            return 0;
        }
    }
}

static void on_fetch_io(evutil_socket_t fd, short what, void *arg);

/* Runs the steps until one has to wait (then watches the socket for it)
 * or the fetch ended. */
static void advance(struct entry *e)
{
    short wait = 0;
    while (wait == 0 && e->step != STEP_IDLE) {
        switch (e->step) {
        case STEP_CONNECTING:
            wait = step_connect(e);
            break;
        case STEP_SENDING:
            wait = step_send(e);
            break;
        case STEP_READING:
            wait = step_read(e);
            break;
        default:
            return; /* RESOLVING: on_resolved goes on */
        }
    }
    if (wait == 0)
        return;
    if (e->is_io_assigned)
        event_del(&e->io);
    event_assign(&e->io, e->st->base, e->s.fd, wait, on_fetch_io, e);
    e->is_io_assigned = true;
    if (event_add(&e->io, NULL) < 0)
        fetch_failed(e, WR_METRICS_OCSP_ERROR, "cannot watch the socket");
}

static void on_fetch_io(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    advance(arg);
}

/* Connects to the next address of the lookup; 0, or -1 (fetch ended). */
static int connect_next(struct entry *e)
{
    struct evutil_addrinfo *ai = e->next_addr;
    e->next_addr = ai->ai_next;
    struct wr_listen_addr addr = {.addr_len = (socklen_t)ai->ai_addrlen};
    memcpy(&addr.addr, ai->ai_addr, ai->ai_addrlen);
    bool is_connecting = false;
    if (wr_stream_connect(&e->s, &addr, &is_connecting) < 0) {
        if (e->next_addr)
            return connect_next(e);
        fetch_failed(e, WR_METRICS_OCSP_ERROR, "connect: %s", strerror(errno));
        return -1;
    }
    e->step = is_connecting ? STEP_CONNECTING : STEP_SENDING;
    return 0;
}

/* The lookup's answer (possibly before evdns_getaddrinfo returned). */
static void on_resolved(int err, struct evutil_addrinfo *res, void *arg)
{
    if (err == EVUTIL_EAI_CANCEL) { /* end_fetch cancelled it: arg may be gone */
        if (res)
            evutil_freeaddrinfo(res);
        return;
    }
    struct entry *e = arg;
    e->lookup = NULL;
    if (err != 0 || !res) {
        if (res)
            evutil_freeaddrinfo(res);
        fetch_failed(e, WR_METRICS_OCSP_ERROR, "looking up %s: %s", e->u.host,
                     err ? evutil_gai_strerror(err) : "no address");
        return;
    }
    e->addrs = e->next_addr = res;
    if (connect_next(e) < 0)
        return;
    if (e->step == STEP_CONNECTING) {
        e->is_io_assigned = true;
        event_assign(&e->io, e->st->base, e->s.fd, EV_WRITE, on_fetch_io, e);
        if (event_add(&e->io, NULL) < 0)
            fetch_failed(e, WR_METRICS_OCSP_ERROR, "cannot watch the socket");
        return;
    }
    advance(e);
}

/* The responder's addresses: an IP literal at once, a name through evdns. */
static void look_up(struct entry *e)
{
    struct wr_stapler *st = e->st;
    char port[8];
    snprintf(port, sizeof(port), "%u", e->u.port);
    struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                    .ai_protocol = IPPROTO_TCP};
    unsigned char bin[16];
    bool is_literal = inet_pton(AF_INET, e->u.host, bin) == 1 ||
                      inet_pton(AF_INET6, e->u.host, bin) == 1;
    if (is_literal) {
        struct evutil_addrinfo *res = NULL;
        hints.ai_flags = EVUTIL_AI_NUMERICHOST;
        int err = evutil_getaddrinfo(e->u.host, port, &hints, &res);
        on_resolved(err, res, e);
        return;
    }
    /* The hosts file and resolv.conf's nameservers, as getaddrinfo would,
     * without blocking main's loop (signals, admin, health checks). */
    if (!st->dns && !(st->dns = evdns_base_new(st->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                                             EVDNS_BASE_DISABLE_WHEN_INACTIVE))) {
        fetch_failed(e, WR_METRICS_OCSP_ERROR, "cannot start a DNS client");
        return;
    }
    struct evdns_getaddrinfo_request *r =
        evdns_getaddrinfo(st->dns, e->u.host, port, &hints, on_resolved, e);
    if (r) /* NULL: answered already (on_resolved ran) */
        e->lookup = r;
}

/* The POST (RFC 6960 appendix A.1) into a new e->buf, with room after it
 * for the response. 0, or -1. */
static int make_request(struct entry *e)
{
#define OCSP_POST                                                                           \
    "POST %s HTTP/1.1\r\nHost: %s%s%s%s\r\nContent-Type: application/ocsp-request\r\n"     \
    "Accept: application/ocsp-response\r\nContent-Length: %zu\r\nConnection: close\r\n"     \
    "User-Agent: weir\r\n\r\n"
    unsigned char *der = NULL;
    size_t len = wr_ocsp_request(e->leaf, e->issuer, &der);
    if (len == 0)
        return -1;
    bool is_v6 = strchr(e->u.host, ':') != NULL;
    char port[8] = "";
    if (e->u.port != 80)
        snprintf(port, sizeof(port), ":%u", e->u.port);
    const char *open = is_v6 ? "[" : "", *close = is_v6 ? "]" : "";
    int head = snprintf(NULL, 0, OCSP_POST, e->u.path, open, e->u.host, close, port, len);
    if (head < 0 || !(e->buf = malloc((size_t)head + 1 + len + RESPONSE_CAP))) {
        OPENSSL_free(der);
        return -1;
    }
    snprintf(e->buf, (size_t)head + 1, OCSP_POST, e->u.path, open, e->u.host, close, port, len);
#undef OCSP_POST
    memcpy(e->buf + head, der, len);
    OPENSSL_free(der);
    e->req_len = (size_t)head + len;
    e->sent = e->got = 0;
    return 0;
}

static void on_fetch_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct entry *e = arg;
    if (e->step != STEP_IDLE)
        return;
    if (make_request(e) < 0) {
        fetch_failed(e, WR_METRICS_OCSP_ERROR, "cannot build the request");
        return;
    }
    schedule(e->deadline, WR_STAPLER_FETCH_TIMEOUT_S);
    e->step = STEP_RESOLVING;
    look_up(e);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct entry *e = arg;
    fetch_failed(e, WR_METRICS_OCSP_ERROR, "no complete response within %d s",
                 WR_STAPLER_FETCH_TIMEOUT_S);
}

/* nextUpdate passed without a newer response: a stale one is worse than
 * none (RFC 6960 §4.2.2.1: newer information is available by then). */
static void on_expiry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct entry *e = arg;
    if (!e->der)
        return;
    wr_tls_set_staple(e->set, e->site, e->cert, NULL, 0);
    free(e->der);
    e->der = NULL;
    e->next_update = 0;
    wr_log(WR_LOG_WARN, -1, 0, "OCSP %s: the stapled response passed its nextUpdate with no "
           "newer one: nothing stapled until a fetch succeeds", e->name);
    count_stapled(e->st);
}

/* ---- entries and reloads ------------------------------------------------------ */

static void entry_free(struct entry *e)
{
    if (!e)
        return;
    end_fetch(e);
    if (e->timer)
        event_free(e->timer);
    if (e->expiry)
        event_free(e->expiry);
    if (e->deadline)
        event_free(e->deadline);
    X509_free(e->leaf);
    X509_free(e->issuer);
    free(e->url);
    free(e->der);
    free(e);
}

static struct entry *entry_new(struct wr_stapler *st, const struct wr_tls_ocsp_target *t,
                               char *url)
{
    struct entry *e = calloc(1, sizeof(*e));
    if (!e) {
        free(url);
        return NULL;
    }
    *e = (struct entry){.st = st, .url = url, .s = {.fd = -1}};
    X509_up_ref(t->leaf);
    e->leaf = t->leaf;
    X509_up_ref(t->issuer);
    e->issuer = t->issuer;
    e->timer = evtimer_new(st->base, on_fetch_timer, e);
    e->expiry = evtimer_new(st->base, on_expiry, e);
    e->deadline = evtimer_new(st->base, on_deadline, e);
    if (!e->timer || !e->expiry || !e->deadline ||
        !wr_ocsp_split_url(url, e->url_buf, sizeof(e->url_buf), &e->u)) {
        entry_free(e);
        return NULL;
    }
    return e;
}

/* The running entry for the same certificate, issuer and responder, taken
 * out of st's list (a reload keeps it), or NULL. */
static struct entry *take_entry(struct wr_stapler *st, const struct wr_tls_ocsp_target *t,
                                const char *url)
{
    for (size_t i = 0; i < st->n_entries; i++) {
        struct entry *e = st->entries[i];
        if (e && X509_cmp(e->leaf, t->leaf) == 0 && X509_cmp(e->issuer, t->issuer) == 0 &&
            strcmp(e->url, url) == 0) {
            st->entries[i] = NULL;
            return e;
        }
    }
    return NULL;
}

/* Points e at target t of set; a response it holds that is still valid is
 * stapled there at once. */
static void retarget(struct entry *e, const struct wr_tls_set *set,
                     const struct wr_tls_ocsp_target *t)
{
    e->set = set;
    e->site = t->site;
    e->cert = t->cert;
    snprintf(e->name, sizeof(e->name), "[tls%s%s]", t->section ? " " : "",
             t->section ? t->section : "");
    if (t->cert > 0) {
        size_t n = strlen(e->name);
        snprintf(e->name + n, sizeof(e->name) - n, " cert %zu", t->cert + 1);
    }
    if (e->der && (e->next_update == 0 || time(NULL) < e->next_update) &&
        wr_tls_set_staple(set, t->site, t->cert, e->der, e->der_len) < 0)
        wr_log(WR_LOG_ERROR, -1, 0, "OCSP %s: out of memory: not stapled", e->name);
}

/* The responder URL of t, or NULL with a warning: nothing to staple. */
static char *target_url(const struct wr_tls_ocsp_target *t)
{
    char where[96], buf[URL_MAX];
    snprintf(where, sizeof(where), "[tls%s%s] cert %zu", t->section ? " " : "",
             t->section ? t->section : "", t->cert + 1);
    char *url = wr_ocsp_aia_url(t->leaf);
    struct wr_ocsp_url u;
    if (!url)
        wr_log(WR_LOG_WARN, -1, 0, "OCSP %s: ocsp_stapling is on but the certificate names no "
               "OCSP responder (Authority Information Access): nothing stapled", where);
    else if (!t->issuer)
        wr_log(WR_LOG_WARN, -1, 0, "OCSP %s: the cert file holds no certificate that issued it "
               "(put the issuer after it): nothing stapled", where);
    else if (!wr_ocsp_split_url(url, buf, sizeof(buf), &u))
        wr_log(WR_LOG_WARN, -1, 0, "OCSP %s: responder URL %s is not http://host[:port]/path: "
               "nothing stapled", where, url);
    else
        return url;
    free(url);
    return NULL;
}

/* The entries for cfg's targets into *out (*n_out of them). */
static void build_entries(struct wr_stapler *st, const struct wr_tls_set *set,
                          struct entry **out, size_t *n_out)
{
    size_t n = wr_tls_set_ocsp_targets(set, NULL, 0);
    struct wr_tls_ocsp_target *targets = n ? calloc(n, sizeof(*targets)) : NULL;
    *n_out = 0;
    if (n && !targets) {
        wr_log(WR_LOG_ERROR, -1, 0, "OCSP: out of memory: nothing stapled");
        return;
    }
    wr_tls_set_ocsp_targets(set, targets, n);
    for (size_t i = 0; i < n; i++) {
        char *url = target_url(&targets[i]);
        if (!url)
            continue;
        struct entry *e = take_entry(st, &targets[i], url);
        if (e) {
            free(url);
        } else if ((e = entry_new(st, &targets[i], url)) != NULL) {
            event_active(e->timer, EV_TIMEOUT, 1); /* the first fetch: next loop turn */
        } else {
            wr_log(WR_LOG_ERROR, -1, 0, "OCSP: out of memory: a certificate is not stapled");
            continue;
        }
        retarget(e, set, &targets[i]);
        out[(*n_out)++] = e;
    }
    free(targets);
}

void wr_stapler_set_config(struct wr_stapler *st, struct wr_config *cfg)
{
    const struct wr_tls_set *set = cfg ? cfg->tls_set : NULL;
    size_t n = wr_tls_set_ocsp_targets(set, NULL, 0), n_new = 0;
    struct entry **next = n ? calloc(n, sizeof(*next)) : NULL;
    if (n && !next)
        wr_log(WR_LOG_ERROR, -1, 0, "OCSP: out of memory: nothing stapled");
    if (next)
        build_entries(st, set, next, &n_new);
    for (size_t i = 0; i < st->n_entries; i++)
        entry_free(st->entries[i]); /* not taken: their certificates are gone */
    free(st->entries);
    st->entries = next;
    st->n_entries = n_new;
    wr_config_unref(st->cfg);
    st->cfg = cfg ? wr_config_ref(cfg) : NULL;
    count_stapled(st);
}

struct wr_stapler *wr_stapler_new(struct event_base *base, struct wr_metrics *m)
{
    struct wr_stapler *st = calloc(1, sizeof(*st));
    if (st) {
        st->base = base;
        st->metrics = m;
    }
    return st;
}

void wr_stapler_free(struct wr_stapler *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n_entries; i++)
        entry_free(st->entries[i]);
    free(st->entries);
    wr_config_unref(st->cfg);
    if (st->dns)
        evdns_base_free(st->dns, 0);
    free(st);
}
