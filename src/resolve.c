/*
 * resolve: upstream names re-resolved in the background; see
 * weir/resolve.h for what and why (the design choice is written there).
 */
#include "weir/resolve.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "weir/log.h"
#include "weir/metrics.h"

#define HOSTS_PATH "/etc/hosts"
#define HOSTS_MAX_BYTES (1u << 20) /* a larger hosts file is not read */
#define HOST_MAX 256
/* resolver keys' nameservers: a try waits this long, and is made this often
 * (resolv.conf's own options apply otherwise) */
#define NS_TIMEOUT_S "2"
#define NS_ATTEMPTS "2"

/* ---- pure helpers ------------------------------------------------------------- */

static bool has_addr(const struct wr_listen_addr *set, size_t n, const struct wr_listen_addr *a)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(set[i].text, a->text) == 0)
            return true;
    }
    return false;
}

bool wr_resolve_same_set(const struct wr_listen_addr *a, size_t n_a,
                         const struct wr_listen_addr *b, size_t n_b)
{
    for (size_t i = 0; i < n_a; i++) {
        if (!has_addr(b, n_b, &a[i]))
            return false;
    }
    for (size_t i = 0; i < n_b; i++) {
        if (!has_addr(a, n_a, &b[i]))
            return false;
    }
    return true;
}

/* Appends to buf (at *len) the addresses of from not in other, ", "-separated;
 * "none" when there is none. */
static void list_missing(const struct wr_listen_addr *from, size_t n_from,
                         const struct wr_listen_addr *other, size_t n_other, char *buf,
                         size_t cap, size_t *len)
{
    bool is_first = true;
    for (size_t i = 0; i < n_from; i++) {
        if (has_addr(other, n_other, &from[i]) || has_addr(from, i, &from[i]))
            continue;
        int n = snprintf(buf + *len, cap - *len, "%s%s", is_first ? "" : ", ", from[i].text);
        *len = n < 0 || (size_t)n >= cap - *len ? cap - 1 : *len + (size_t)n;
        is_first = false;
    }
    if (is_first) {
        int n = snprintf(buf + *len, cap - *len, "none");
        *len = n < 0 || (size_t)n >= cap - *len ? cap - 1 : *len + (size_t)n;
    }
}

const char *wr_resolve_describe(const struct wr_listen_addr *old, size_t n_old,
                                const struct wr_listen_addr *new_addrs, size_t n_new,
                                char *buf, size_t cap)
{
    if (cap == 0)
        return buf;
    size_t len = 0;
    buf[0] = '\0';
    int n = snprintf(buf, cap, "added ");
    len = n < 0 || (size_t)n >= cap ? cap - 1 : (size_t)n;
    list_missing(new_addrs, n_new, old, n_old, buf, cap, &len);
    n = snprintf(buf + len, cap - len, "; removed ");
    len = n < 0 || (size_t)n >= cap - len ? cap - 1 : len + (size_t)n;
    list_missing(old, n_old, new_addrs, n_new, buf, cap, &len);
    return buf;
}

uint64_t wr_resolve_interval_ms(uint64_t resolve_ms, int64_t ttl_s)
{
    uint64_t ms = resolve_ms;
    if (ttl_s >= 0 && (uint64_t)ttl_s * 1000 < ms) /* a 32-bit TTL: no overflow */
        ms = (uint64_t)ttl_s * 1000;
    return ms < WR_RESOLVE_FLOOR_MS ? WR_RESOLVE_FLOOR_MS : ms;
}

/* An address for port from the numeric text num (v4 or v6); false if it is
 * neither (or a scoped v6 address, which the loader does not take either). */
static bool make_addr(const char *num, uint16_t port, struct wr_listen_addr *out)
{
    struct in6_addr a6;
    char text[INET6_ADDRSTRLEN + 16];
    if (strchr(num, ':') != NULL) {
        if (inet_pton(AF_INET6, num, &a6) != 1)
            return false;
        snprintf(text, sizeof(text), "[%s]:%u", num, (unsigned)port);
    } else {
        struct in_addr a4;
        if (inet_pton(AF_INET, num, &a4) != 1)
            return false;
        snprintf(text, sizeof(text), "%s:%u", num, (unsigned)port);
    }
    return wr_units_parse_listen(text, out) == 0;
}

/* Whether the words of line (after the address) name host. */
static bool line_names(const char *p, const char *end, const char *host)
{
    size_t host_len = strlen(host);
    while (p < end) {
        while (p < end && isspace((unsigned char)*p))
            p++;
        const char *w = p;
        while (p < end && !isspace((unsigned char)*p))
            p++;
        if ((size_t)(p - w) == host_len && host_len > 0 && strncasecmp(w, host, host_len) == 0)
            return true;
    }
    return false;
}

size_t wr_resolve_hosts_lookup(const char *text, const char *host, uint16_t port,
                               struct wr_listen_addr *out, size_t cap)
{
    size_t n = 0;
    for (const char *line = text; *line != '\0' && n < cap;) {
        const char *nl = strchr(line, '\n');
        const char *end = nl ? nl : line + strlen(line);
        const char *hash = memchr(line, '#', (size_t)(end - line));
        const char *stop = hash ? hash : end;
        const char *p = line;
        while (p < stop && isspace((unsigned char)*p))
            p++;
        const char *a = p;
        while (p < stop && !isspace((unsigned char)*p))
            p++;
        char num[INET6_ADDRSTRLEN + 1];
        size_t a_len = (size_t)(p - a);
        if (a_len > 0 && a_len < sizeof(num) && line_names(p, stop, host)) {
            memcpy(num, a, a_len);
            num[a_len] = '\0';
            if (make_addr(num, port, &out[n]) && !has_addr(out, n, &out[n]))
                n++;
        }
        line = nl ? nl + 1 : end;
    }
    return n;
}

void wr_resolve_servers_free(struct wr_upstream_server_cfg *servers, size_t n)
{
    for (size_t i = 0; servers != NULL && i < n; i++) {
        free(servers[i].label);
        free(servers[i].authority);
    }
    free(servers);
}

static const struct wr_resolve_set *set_of_line(const struct wr_resolve_set *sets, size_t n,
                                                unsigned line)
{
    for (size_t i = 0; i < n; i++) {
        if (sets[i].line == line)
            return &sets[i];
    }
    return NULL;
}

/* Appends a copy of srv with address addr (label "authority (addr)") to
 * out; NULL addr: srv as it is. */
static int push_server(struct wr_upstream_server_cfg *out, size_t *n,
                       const struct wr_upstream_server_cfg *srv,
                       const struct wr_listen_addr *addr)
{
    struct wr_upstream_server_cfg *s = &out[*n];
    *s = *srv;
    s->metrics_id = 0;
    s->authority = strdup(srv->authority);
    if (addr != NULL) {
        s->addr = *addr;
        size_t cap = strlen(srv->authority) + sizeof(addr->text) + 4;
        s->label = malloc(cap);
        if (s->label != NULL)
            snprintf(s->label, cap, "%s (%s)", srv->authority, addr->text);
    } else {
        s->label = strdup(srv->label);
    }
    (*n)++; /* counted half-built too: the caller frees what was copied */
    return s->label != NULL && s->authority != NULL ? 0 : -1;
}

int wr_resolve_servers(const struct wr_upstream_cfg *up, const struct wr_resolve_set *sets,
                       size_t n_sets, struct wr_upstream_server_cfg **out, size_t *n_out)
{
    size_t cap = up->n_servers + 1;
    for (size_t i = 0; i < n_sets; i++)
        cap += sets[i].n_addrs;
    struct wr_upstream_server_cfg *servers = calloc(cap, sizeof(*servers));
    size_t n = 0;
    if (servers == NULL)
        return -1;
    for (size_t i = 0; i < up->n_servers; i++) {
        const struct wr_upstream_server_cfg *srv = &up->servers[i];
        const struct wr_resolve_set *set = srv->is_named ? set_of_line(sets, n_sets, srv->line)
                                                         : NULL;
        if (set == NULL) {
            if (push_server(servers, &n, srv, NULL) < 0)
                goto free_servers;
            continue;
        }
        /* The line's first server stands for the line; the rest of its
         * (old) servers are skipped. */
        if (i > 0 && up->servers[i - 1].is_named && up->servers[i - 1].line == srv->line)
            continue;
        for (size_t k = 0; k < set->n_addrs; k++) {
            if (push_server(servers, &n, srv, &set->addrs[k]) < 0)
                goto free_servers;
        }
    }
    *out = servers;
    *n_out = n;
    return 0;
free_servers:
    wr_resolve_servers_free(servers, n);
    return -1;
}

/* ---- one lookup: the hosts file, then A and AAAA ------------------------------ */

/* The answers of one lookup being collected. */
struct lookup {
    uint16_t port;
    struct wr_listen_addr addrs[WR_CONFIG_MAX_ADDRS_PER_NAME];
    size_t n_addrs;
    int64_t ttl_s;  /* smallest TTL of the answers; -1 none */
    int error;      /* DNS_ERR_* of a family that failed (not "no such data"); 0 */
    int n_pending;  /* queries not answered yet */
};

/* Reads the hosts file (its first HOSTS_MAX_BYTES); NULL when it cannot
 * (then DNS is asked). */
static char *read_hosts(void)
{
    FILE *f = fopen(HOSTS_PATH, "re");
    struct stat st;
    if (f == NULL)
        return NULL;
    size_t cap = fstat(fileno(f), &st) == 0 && st.st_size > 0 ? (size_t)st.st_size : 4096;
    if (cap > HOSTS_MAX_BYTES)
        cap = HOSTS_MAX_BYTES;
    char *text = malloc(cap + 1);
    size_t n = text ? fread(text, 1, cap, f) : 0;
    fclose(f);
    if (text != NULL)
        text[n] = '\0';
    return text;
}

static size_t hosts_lookup(const char *host, uint16_t port, struct wr_listen_addr *out,
                           size_t cap)
{
    char *text = read_hosts();
    size_t n = text ? wr_resolve_hosts_lookup(text, host, port, out, cap) : 0;
    free(text);
    return n;
}

/* One family's answer into lk. */
static void take_answer(struct lookup *lk, int result, char type, int count, int ttl,
                        const void *addresses)
{
    lk->n_pending--;
    if (result == DNS_ERR_NOTEXIST || result == DNS_ERR_NODATA)
        return; /* no such name, or none of this family: not a failure by itself */
    if (result != DNS_ERR_NONE) {
        lk->error = result;
        return;
    }
    for (int i = 0; i < count && lk->n_addrs < WR_CONFIG_MAX_ADDRS_PER_NAME; i++) {
        char num[INET6_ADDRSTRLEN];
        int family = type == DNS_IPv4_A ? AF_INET : AF_INET6;
        const char *p = (const char *)addresses + (size_t)i * (family == AF_INET ? 4 : 16);
        struct wr_listen_addr *a = &lk->addrs[lk->n_addrs];
        if (inet_ntop(family, p, num, sizeof(num)) != NULL && make_addr(num, lk->port, a) &&
            !has_addr(lk->addrs, lk->n_addrs, a))
            lk->n_addrs++;
    }
    if (count > 0 && (lk->ttl_s < 0 || ttl < lk->ttl_s))
        lk->ttl_s = ttl < 0 ? 0 : ttl;
}

/* Why lk failed, for logs and load errors; NULL when it did not. */
static const char *lookup_failure(const struct lookup *lk)
{
    if (lk->error != 0)
        return evdns_err_to_string(lk->error);
    return lk->n_addrs == 0 ? "no IPv4 or IPv6 address (NXDOMAIN or an empty answer)" : NULL;
}

/* Asks ns (none: resolv.conf's, as configured already) for A and AAAA of
 * host; cb gets each answer with arg. Returns the queries started. */
static int start_queries(struct evdns_base *dns, const char *host, evdns_callback_type cb,
                         void *arg)
{
    int n = 0;
    n += evdns_base_resolve_ipv4(dns, host, 0, cb, arg) != NULL;
    n += evdns_base_resolve_ipv6(dns, host, 0, cb, arg) != NULL;
    return n;
}

/* Makes ns (n_ns of them) dns's nameservers, with short timeouts; none:
 * /etc/resolv.conf's, with its options and search list. */
static int set_nameservers(struct evdns_base *dns, const struct wr_listen_addr *ns, size_t n_ns)
{
    evdns_base_clear_nameservers_and_suspend(dns);
    evdns_base_search_clear(dns);
    int rc = 0;
    if (n_ns == 0) {
        rc = evdns_base_resolv_conf_parse(dns, DNS_OPTIONS_ALL, "/etc/resolv.conf") == 0 ? 0
                                                                                         : -1;
    } else {
        for (size_t i = 0; i < n_ns && rc == 0; i++)
            rc = evdns_base_nameserver_sockaddr_add(dns, (const struct sockaddr *)&ns[i].addr,
                                                    ns[i].addr_len, 0);
        evdns_base_set_option(dns, "timeout:", NS_TIMEOUT_S);
        evdns_base_set_option(dns, "attempts:", NS_ATTEMPTS);
    }
    evdns_base_resume(dns);
    return rc;
}

/* evdns's own messages ("nameserver ... has failed") go to the error log
 * at debug, not to stderr: the WARN/INFO lines above say what matters. */
static void on_evdns_log(int is_warn, const char *msg)
{
    (void)is_warn;
    wr_log(WR_LOG_DEBUG, -1, 0, "resolve: evdns: %s", msg);
}

/* ---- load time -------------------------------------------------------------------- */

static void on_blocking_answer(int result, char type, int count, int ttl, void *addresses,
                               void *arg)
{
    take_answer(arg, result, type, count, ttl, addresses);
}

int wr_resolve_blocking(const struct wr_listen_addr *ns, size_t n_ns, const char *host,
                        uint16_t port, struct wr_listen_addr *out, size_t cap, const char **why)
{
    size_t n = hosts_lookup(host, port, out, cap);
    if (n > 0)
        return (int)n;
    struct lookup lk = {.port = port, .ttl_s = -1};
    evdns_set_log_fn(on_evdns_log);
    struct event_base *base = event_base_new();
    struct evdns_base *dns = base ? evdns_base_new(base, 0) : NULL;
    *why = "cannot start a DNS client (out of memory)";
    if (dns != NULL && set_nameservers(dns, ns, n_ns) == 0) {
        lk.n_pending = 2;
        int started = start_queries(dns, host, on_blocking_answer, &lk);
        lk.n_pending -= 2 - started;
        while (lk.n_pending > 0 && event_base_loop(base, EVLOOP_ONCE) == 0)
            ;
        *why = lk.n_pending > 0 ? "no answer" : lookup_failure(&lk);
    }
    if (dns != NULL)
        evdns_base_free(dns, 0);
    if (base != NULL)
        event_base_free(base);
    if (lk.n_pending > 0 || lookup_failure(&lk) != NULL)
        return -1;
    for (n = 0; n < lk.n_addrs && n < cap; n++)
        out[n] = lk.addrs[n];
    return (int)n;
}

/* ---- the background resolver ------------------------------------------------------ */

/* One server line given by name, of an upstream with `resolve`. */
struct name {
    struct wr_resolver *r;
    size_t upstream;        /* index into the snapshots' upstreams */
    unsigned line;          /* the server line's position (config.h) */
    char host[HOST_MAX];
    uint16_t port;
    char upstream_name[HOST_MAX];
    uint64_t resolve_ms;
    struct wr_listen_addr addrs[WR_CONFIG_MAX_ADDRS_PER_NAME]; /* the current set */
    size_t n_addrs;
    struct lookup lk;       /* the lookup under way (lk.n_pending > 0) */
    struct event *timer;    /* owned: the next lookup */
    bool is_failing;        /* the last lookup failed (logged once) */
    bool is_orphan;         /* set_config dropped it: freed when its queries end */
    struct name *next_orphan; /* r->orphans list */
};

struct wr_resolver {
    struct event_base *base;
    struct evdns_base *dns; /* owned */
    struct wr_metrics *metrics;
    wr_resolver_changed_fn changed;
    void *arg;
    struct name **names;    /* owned */
    size_t n_names;
    struct name *orphans;   /* owned: dropped names whose queries are in flight */
};

static void name_free(struct name *nm)
{
    if (nm->timer != NULL)
        event_free(nm->timer);
    free(nm);
}

static void schedule(struct name *nm, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    event_add(nm->timer, &tv);
}

/* A lookup of nm ended (lk filled): keep the last good set on a failure,
 * else take the new set and tell main when it differs. */
static void finish_lookup(struct name *nm)
{
    struct wr_resolver *r = nm->r;
    const struct lookup *lk = &nm->lk;
    const char *why = lookup_failure(lk);
    r->metrics->dns_resolutions++;
    if (why != NULL) {
        r->metrics->dns_failures++;
        if (!nm->is_failing)
            wr_log(WR_LOG_WARN, -1, 0,
                   "upstream %s: resolving %s failed: %s; keeping its %zu address%s",
                   nm->upstream_name, nm->host, why, nm->n_addrs, nm->n_addrs == 1 ? "" : "es");
        nm->is_failing = true;
        schedule(nm, wr_resolve_interval_ms(nm->resolve_ms, -1));
        return;
    }
    if (nm->is_failing)
        wr_log(WR_LOG_INFO, -1, 0, "upstream %s: resolving %s works again", nm->upstream_name,
               nm->host);
    nm->is_failing = false;
    schedule(nm, wr_resolve_interval_ms(nm->resolve_ms, lk->ttl_s));
    if (wr_resolve_same_set(nm->addrs, nm->n_addrs, lk->addrs, lk->n_addrs))
        return;
    char what[768];
    wr_log(WR_LOG_INFO, -1, 0, "upstream %s: %s changed: %s", nm->upstream_name, nm->host,
           wr_resolve_describe(nm->addrs, nm->n_addrs, lk->addrs, lk->n_addrs, what,
                               sizeof(what)));
    memcpy(nm->addrs, lk->addrs, lk->n_addrs * sizeof(lk->addrs[0]));
    nm->n_addrs = lk->n_addrs;
    r->metrics->dns_changes++;
    r->changed(r->arg);
}

static void on_answer(int result, char type, int count, int ttl, void *addresses, void *arg)
{
    struct name *nm = arg;
    take_answer(&nm->lk, result, type, count, ttl, addresses);
    if (nm->lk.n_pending > 0)
        return;
    if (nm->is_orphan) {
        struct name **pp = &nm->r->orphans;
        while (*pp != nm)
            pp = &(*pp)->next_orphan;
        *pp = nm->next_orphan;
        name_free(nm);
    } else
        finish_lookup(nm);
}

static void on_due(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct name *nm = arg;
    uint16_t port = nm->port;
    nm->lk = (struct lookup){.port = port, .ttl_s = -1};
    nm->lk.n_addrs = hosts_lookup(nm->host, port, nm->lk.addrs, WR_CONFIG_MAX_ADDRS_PER_NAME);
    if (nm->lk.n_addrs > 0) {
        finish_lookup(nm);
        return;
    }
    /* Both counted first, the ones that did not start taken off after: so
     * the count reaches 0 exactly once, in a callback or here. */
    nm->lk.n_pending = 2;
    int started = start_queries(nm->r->dns, nm->host, on_answer, nm);
    nm->lk.n_pending -= 2 - started;
    if (nm->lk.n_pending == 0)
        finish_lookup(nm);
}

/* Drops the names: those with queries in flight are freed when they end. */
static void drop_names(struct wr_resolver *r)
{
    for (size_t i = 0; i < r->n_names; i++) {
        struct name *nm = r->names[i];
        event_del(nm->timer);
        if (nm->lk.n_pending > 0) {
            nm->is_orphan = true;
            nm->next_orphan = r->orphans;
            r->orphans = nm;
        } else
            name_free(nm);
    }
    free(r->names);
    r->names = NULL;
    r->n_names = 0;
}

/* A name for the servers of up (index u) from servers[i] on (its line's
 * first server). NULL when out of memory. */
static struct name *name_new(struct wr_resolver *r, const struct wr_upstream_cfg *up, size_t u,
                             size_t i)
{
    struct name *nm = calloc(1, sizeof(*nm));
    if (nm == NULL)
        return NULL;
    *nm = (struct name){.r = r, .upstream = u, .line = up->servers[i].line,
                        .resolve_ms = up->resolve_ms};
    nm->timer = event_new(r->base, -1, 0, on_due, nm);
    if (nm->timer == NULL ||
        !wr_config_server_name(&up->servers[i], nm->host, sizeof(nm->host), &nm->port)) {
        name_free(nm);
        return NULL;
    }
    snprintf(nm->upstream_name, sizeof(nm->upstream_name), "%s", up->name);
    for (size_t k = i; k < up->n_servers && nm->n_addrs < WR_CONFIG_MAX_ADDRS_PER_NAME; k++) {
        if (!up->servers[k].is_named || up->servers[k].line != nm->line)
            break;
        nm->addrs[nm->n_addrs++] = up->servers[k].addr;
    }
    return nm;
}

static int add_name(struct wr_resolver *r, struct name *nm)
{
    struct name **more = realloc(r->names, (r->n_names + 1) * sizeof(*more));
    if (nm == NULL || more == NULL) {
        if (nm != NULL)
            name_free(nm);
        return -1;
    }
    r->names = more;
    r->names[r->n_names++] = nm;
    schedule(nm, wr_resolve_interval_ms(nm->resolve_ms, -1));
    return 0;
}

int wr_resolver_set_config(struct wr_resolver *r, const struct wr_config *cfg)
{
    drop_names(r);
    if (set_nameservers(r->dns, cfg->server.resolvers, cfg->server.n_resolvers) < 0)
        wr_log(WR_LOG_WARN, -1, 0, "resolve: cannot read the nameservers; names are re-resolved "
                                   "once there are some");
    for (size_t u = 0; u < cfg->n_upstreams; u++) {
        const struct wr_upstream_cfg *up = &cfg->upstreams[u];
        for (size_t i = 0; up->resolve_ms > 0 && i < up->n_servers; i++) {
            bool is_first = up->servers[i].is_named &&
                            (i == 0 || !up->servers[i - 1].is_named ||
                             up->servers[i - 1].line != up->servers[i].line);
            if (is_first && add_name(r, name_new(r, up, u, i)) < 0) {
                drop_names(r);
                return -1;
            }
        }
    }
    return 0;
}

struct wr_config *wr_resolver_derive(struct wr_resolver *r, struct wr_config *cur)
{
    size_t n_up = cur->n_upstreams ? cur->n_upstreams : 1;
    struct wr_upstream_server_cfg **servers = calloc(n_up, sizeof(*servers));
    size_t *n_servers = calloc(n_up, sizeof(*n_servers));
    struct wr_resolve_set *sets = calloc(r->n_names + 1, sizeof(*sets));
    struct wr_config *d = NULL;
    bool is_ok = servers != NULL && n_servers != NULL && sets != NULL;
    for (size_t u = 0; is_ok && u < cur->n_upstreams; u++) {
        size_t n_sets = 0;
        for (size_t i = 0; i < r->n_names; i++) {
            const struct name *nm = r->names[i];
            if (nm->upstream == u)
                sets[n_sets++] = (struct wr_resolve_set){nm->line, nm->addrs, nm->n_addrs};
        }
        if (n_sets > 0)
            is_ok = wr_resolve_servers(&cur->upstreams[u], sets, n_sets, &servers[u],
                                       &n_servers[u]) == 0;
    }
    if (is_ok)
        d = wr_config_derive(cur, servers, n_servers);
    for (size_t u = 0; servers != NULL && u < cur->n_upstreams; u++)
        wr_resolve_servers_free(servers[u], n_servers[u]);
    free(servers);
    free(n_servers);
    free(sets);
    return d;
}

struct wr_resolver *wr_resolver_new(struct event_base *base, struct wr_metrics *m,
                                    wr_resolver_changed_fn changed, void *arg)
{
    struct wr_resolver *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    *r = (struct wr_resolver){.base = base, .metrics = m, .changed = changed, .arg = arg};
    /* DISABLE_WHEN_INACTIVE: with no query in flight, evdns holds no event
     * that would keep main's loop running at shutdown. */
    evdns_set_log_fn(on_evdns_log);
    r->dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (r->dns == NULL) {
        free(r);
        return NULL;
    }
    return r;
}

void wr_resolver_free(struct wr_resolver *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_names; i++)
        r->names[i]->is_orphan = true;
    /* 0: queries in flight are dropped without their callbacks, so the
     * names (orphans included) can go now. */
    evdns_base_free(r->dns, 0);
    for (size_t i = 0; i < r->n_names; i++)
        name_free(r->names[i]);
    for (struct name *nm = r->orphans, *next; nm != NULL; nm = next) {
        next = nm->next_orphan;
        name_free(nm);
    }
    free(r->names);
    free(r);
}
