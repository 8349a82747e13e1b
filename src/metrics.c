/*
 * metrics: counters written by one worker each, summed and formatted by
 * main on scrape.
 *
 * Not here: serving the text (admin) or deciding what to count (the module
 * that sees the event bumps the counter). Invariants: a worker block is
 * written only by its worker; the registry of label values (route names,
 * upstream servers) only grows and is touched by main only; ids handed out
 * are never reused for another name.
 */
#include "weir/metrics.h"

#include "weir/clock.h"
#include "weir/log.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const uint64_t wr_metrics_bucket_us[WR_METRICS_N_BOUNDS] = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000,
};

/* The same bounds as Prometheus `le` label values, in seconds. */
static const char *const bucket_le[WR_METRICS_N_BOUNDS + 1] = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
    "1", "2.5", "5", "10", "+Inf",
};

static const char *const class_names[WR_METRICS_N_CLASSES] = {"1xx", "2xx", "3xx", "4xx",
                                                              "5xx"};

#define OVERFLOW_ROUTE_NAME "(overflow)"

/* ---- writers (worker thread) --------------------------------------------- */

void wr_metrics_observe(struct wr_metrics_hist *h, uint64_t us)
{
    size_t i = 0;
    while (i < WR_METRICS_N_BOUNDS && us > wr_metrics_bucket_us[i])
        i++;
    wr_metrics_add(&h->buckets[i], 1);
    wr_metrics_add(&h->sum_us, us);
}

void wr_metrics_count_request(struct wr_metrics_worker *w, unsigned route_id, int status,
                              uint64_t us)
{
    int cls = status / 100 - 1;
    if (cls < 0 || cls >= WR_METRICS_N_CLASSES)
        cls = WR_METRICS_N_CLASSES - 1;
    if (route_id >= WR_METRICS_MAX_ROUTES)
        route_id = WR_METRICS_MAX_ROUTES - 1;
    wr_metrics_add(&w->requests[route_id][cls], 1);
    wr_metrics_observe(&w->duration, us);
}

/* ---- life and registry (main) -------------------------------------------- */

struct wr_metrics *wr_metrics_new(size_t n_workers)
{
    struct wr_metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    size_t size = n_workers * sizeof(struct wr_metrics_worker); /* a multiple of 64 */
    m->workers = aligned_alloc(WR_METRICS_CACHE_LINE, size);
    m->route_names[0] = strdup("");
    if (!m->workers || !m->route_names[0]) {
        wr_metrics_free(m);
        return NULL;
    }
    memset(m->workers, 0, size);
    m->n_workers = n_workers;
    m->n_routes = 1;
    m->n_servers = 1;
    m->start_unix_s = (uint64_t)time(NULL);
    m->start_mono_ms = wr_clock_now_ms();
    return m;
}

void wr_metrics_free(struct wr_metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < WR_METRICS_MAX_ROUTES; i++)
        free(m->route_names[i]);
    for (size_t i = 0; i < WR_METRICS_MAX_SERVERS; i++) {
        free(m->server_upstreams[i]);
        free(m->server_addrs[i]);
    }
    free(m->workers);
    free(m);
}

struct wr_metrics_worker *wr_metrics_worker(struct wr_metrics *m, size_t i)
{
    return &m->workers[i];
}

/* The id of route name, handing out a new one the first time. */
static unsigned route_id(struct wr_metrics *m, const char *name, int *rc)
{
    for (size_t i = 1; i < m->n_routes; i++) {
        if (strcmp(m->route_names[i], name) == 0)
            return (unsigned)i;
    }
    size_t last = WR_METRICS_MAX_ROUTES - 1;
    if (m->n_routes == last) {
        m->route_names[last] = strdup(OVERFLOW_ROUTE_NAME);
        m->n_routes = WR_METRICS_MAX_ROUTES;
    }
    if (m->n_routes == WR_METRICS_MAX_ROUTES)
        return (unsigned)last;
    char *copy = strdup(name);
    if (!copy) {
        *rc = -1;
        return 0;
    }
    m->route_names[m->n_routes] = copy;
    return (unsigned)m->n_routes++;
}

static unsigned server_id(struct wr_metrics *m, const char *upstream, const char *addr, int *rc)
{
    for (size_t i = 1; i < m->n_servers; i++) {
        if (strcmp(m->server_upstreams[i], upstream) == 0 && strcmp(m->server_addrs[i], addr) == 0)
            return (unsigned)i;
    }
    if (m->n_servers == WR_METRICS_MAX_SERVERS)
        return 0;
    char *u = strdup(upstream), *a = strdup(addr);
    if (!u || !a) {
        free(u);
        free(a);
        *rc = -1;
        return 0;
    }
    m->server_upstreams[m->n_servers] = u;
    m->server_addrs[m->n_servers] = a;
    return (unsigned)m->n_servers++;
}

int wr_metrics_register(struct wr_metrics *m, struct wr_config *cfg)
{
    int rc = 0;
    for (size_t i = 0; i < cfg->n_routes; i++)
        cfg->routes[i].metrics_id = route_id(m, cfg->routes[i].name, &rc);
    memset(m->is_server_current, 0, sizeof(m->is_server_current));
    for (size_t u = 0; u < cfg->n_upstreams; u++) {
        struct wr_upstream_cfg *up = &cfg->upstreams[u];
        for (size_t s = 0; s < up->n_servers; s++) {
            unsigned id = server_id(m, up->name, up->servers[s].addr.text, &rc);
            up->servers[s].metrics_id = id;
            if (id != 0)
                m->is_server_current[id] = true;
        }
    }
    return rc;
}

void wr_metrics_set_server_down(struct wr_metrics *m, unsigned server_id, bool is_down)
{
    if (server_id > 0 && server_id < WR_METRICS_MAX_SERVERS)
        m->is_server_down[server_id] = is_down;
}

/* ---- readers ------------------------------------------------------------- */

static uint64_t load(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

void wr_metrics_sum(const struct wr_metrics *m, struct wr_metrics_totals *t)
{
    *t = (struct wr_metrics_totals){0};
    for (size_t w = 0; w < m->n_workers; w++) {
        const struct wr_metrics_worker *mw = &m->workers[w];
        t->conns_open += load(&mw->conns_open);
        t->conns_idle += load(&mw->conns_idle);
        t->conns_accepted += load(&mw->conns_accepted);
        t->bytes_in += load(&mw->bytes_in);
        t->bytes_out += load(&mw->bytes_out);
        for (size_t r = 0; r < m->n_routes; r++) {
            for (int c = 0; c < WR_METRICS_N_CLASSES; c++)
                t->by_class[c] += load(&mw->requests[r][c]);
        }
    }
    for (int c = 0; c < WR_METRICS_N_CLASSES; c++)
        t->requests += t->by_class[c];
}

void wr_metrics_rate_add(struct wr_metrics_rate *r, uint64_t now_ms, uint64_t value)
{
    r->at_ms[r->next] = now_ms;
    r->value[r->next] = value;
    r->next = (r->next + 1) % WR_METRICS_RATE_SLOTS;
    if (r->n < WR_METRICS_RATE_SLOTS)
        r->n++;
}

double wr_metrics_rate_per_sec(const struct wr_metrics_rate *r, uint64_t window_ms)
{
    if (r->n < 2)
        return 0;
    size_t newest = (r->next + WR_METRICS_RATE_SLOTS - 1) % WR_METRICS_RATE_SLOTS;
    size_t oldest = newest;
    for (size_t k = 1; k < r->n; k++) {
        size_t i = (newest + WR_METRICS_RATE_SLOTS - k) % WR_METRICS_RATE_SLOTS;
        if (r->at_ms[newest] - r->at_ms[i] > window_ms)
            break;
        oldest = i;
    }
    uint64_t dt = r->at_ms[newest] - r->at_ms[oldest];
    if (dt == 0 || r->value[newest] < r->value[oldest])
        return 0;
    return (double)(r->value[newest] - r->value[oldest]) * 1000.0 / (double)dt;
}

/* ---- text ---------------------------------------------------------------- */

static bool reserve(struct wr_metrics_text *t, size_t more)
{
    if (t->is_oom)
        return false;
    if (t->len + more + 1 <= t->cap)
        return true;
    size_t cap = t->cap ? t->cap : 4096;
    while (cap < t->len + more + 1)
        cap *= 2;
    char *bigger = realloc(t->buf, cap);
    if (!bigger) {
        t->is_oom = true;
        return false;
    }
    t->buf = bigger;
    t->cap = cap;
    return true;
}

void wr_metrics_text_fini(struct wr_metrics_text *t)
{
    free(t->buf);
    *t = (struct wr_metrics_text){0};
}

void wr_metrics_text_printf(struct wr_metrics_text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(t, (size_t)n))
        return;
    if ((size_t)n < sizeof(small)) {
        memcpy(t->buf + t->len, small, (size_t)n + 1);
    } else {
        va_start(ap, fmt);
        vsnprintf(t->buf + t->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    t->len += (size_t)n;
}

static void append(struct wr_metrics_text *t, const char *s, size_t n)
{
    if (!reserve(t, n))
        return;
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

void wr_metrics_text_label(struct wr_metrics_text *t, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            append(t, "\\\\", 2);
        else if (*s == '"')
            append(t, "\\\"", 2);
        else if (*s == '\n')
            append(t, "\\n", 2);
        else
            append(t, s, 1);
    }
}

void wr_metrics_text_json(struct wr_metrics_text *t, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '\\' || ch == '"')
            wr_metrics_text_printf(t, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            wr_metrics_text_printf(t, "\\u%04x", ch);
        else
            append(t, s, 1);
    }
}

/* ---- exposition ---------------------------------------------------------- */

/* Sums, over every worker, the counter found at c's place in worker 0's
 * block: one walker for every field, scalar or array element. */
static uint64_t sum_like(const struct wr_metrics *m, const _Atomic uint64_t *c)
{
    size_t off = (size_t)((const char *)c - (const char *)&m->workers[0]);
    uint64_t total = 0;
    for (size_t w = 0; w < m->n_workers; w++)
        total += load((const _Atomic uint64_t *)((const char *)&m->workers[w] + off));
    return total;
}

static void family(struct wr_metrics_text *t, const char *name, const char *type,
                   const char *help)
{
    wr_metrics_text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One unlabelled sample: a family of one. */
static void scalar(struct wr_metrics_text *t, const char *name, const char *type,
                   const char *help, uint64_t value)
{
    family(t, name, type, help);
    wr_metrics_text_printf(t, "%s %llu\n", name, (unsigned long long)value);
}

/* The samples of one histogram series; labels is "" or 'a="x",b="y"'. */
static void hist_series(struct wr_metrics_text *t, const struct wr_metrics *m, const char *name,
                        const char *labels, const struct wr_metrics_hist *h0)
{
    const char *sep = *labels ? "," : "";
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= WR_METRICS_N_BOUNDS; i++) {
        cumulative += sum_like(m, &h0->buckets[i]);
        wr_metrics_text_printf(t, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels, sep,
                               bucket_le[i], (unsigned long long)cumulative);
    }
    double sum_s = (double)sum_like(m, &h0->sum_us) / 1e6;
    if (*labels) {
        wr_metrics_text_printf(t, "%s_sum{%s} %.6f\n", name, labels, sum_s);
        wr_metrics_text_printf(t, "%s_count{%s} %llu\n", name, labels,
                               (unsigned long long)cumulative);
    } else {
        wr_metrics_text_printf(t, "%s_sum %.6f\n", name, sum_s);
        wr_metrics_text_printf(t, "%s_count %llu\n", name, (unsigned long long)cumulative);
    }
}

static void format_requests(const struct wr_metrics *m, struct wr_metrics_text *t)
{
    const struct wr_metrics_worker *w0 = &m->workers[0];
    family(t, "weir_http_requests_total", "counter",
           "Client requests answered, by route (\"\" = no route) and status class.");
    for (size_t r = 0; r < m->n_routes; r++) {
        for (int c = 0; c < WR_METRICS_N_CLASSES; c++) {
            wr_metrics_text_printf(t, "weir_http_requests_total{route=\"");
            wr_metrics_text_label(t, m->route_names[r]);
            wr_metrics_text_printf(t, "\",class=\"%s\"} %llu\n", class_names[c],
                                   (unsigned long long)sum_like(m, &w0->requests[r][c]));
        }
    }
    family(t, "weir_http_request_duration_seconds", "histogram",
           "Client request duration, first byte of the head to the response queued.");
    hist_series(t, m, "weir_http_request_duration_seconds", "", &w0->duration);
}

static void format_conns(const struct wr_metrics *m, struct wr_metrics_text *t)
{
    const struct wr_metrics_worker *w0 = &m->workers[0];
    scalar(t, "weir_http_received_bytes_total", "counter", "Bytes read from clients.",
           sum_like(m, &w0->bytes_in));
    scalar(t, "weir_http_sent_bytes_total", "counter", "Bytes written to clients.",
           sum_like(m, &w0->bytes_out));
    scalar(t, "weir_connections_accepted_total", "counter", "Client connections accepted.",
           sum_like(m, &w0->conns_accepted));
    scalar(t, "weir_connections_open", "gauge", "Client connections open now.",
           sum_like(m, &w0->conns_open));
    scalar(t, "weir_connections_idle", "gauge",
           "Open client connections waiting for a request (refreshed every 100 ms).",
           sum_like(m, &w0->conns_idle));
    scalar(t, "weir_conn_buffer_bytes", "gauge",
           "Bytes of buffers client connections hold now (read buffers, output and "
           "request state; free lists not counted; refreshed every 100 ms).",
           sum_like(m, &w0->conn_buffer_bytes));
    scalar(t, "weir_proxy_buffer_bytes", "gauge",
           "Bytes of upstream response buffers proxied exchanges hold now (taken when the "
           "response is read, given back when the exchange ends; free lists not counted; "
           "refreshed every 100 ms).",
           sum_like(m, &w0->proxy_buffer_bytes));
    scalar(t, "weir_tls_handshakes_total", "counter", "TLS handshakes completed.",
           sum_like(m, &w0->tls_handshakes));
    scalar(t, "weir_tls_resumptions_total", "counter",
           "TLS handshakes completed by resuming a session.", sum_like(m, &w0->tls_resumptions));
    scalar(t, "weir_tls_handshake_failures_total", "counter", "TLS handshakes that failed.",
           sum_like(m, &w0->tls_handshake_failures));
    scalar(t, "weir_http2_connections_total", "counter",
           "Client connections that went HTTP/2 (ALPN h2 or h2c prior knowledge).",
           sum_like(m, &w0->h2_conns));
    scalar(t, "weir_http2_requests_total", "counter",
           "Requests answered over HTTP/2 (also in weir_http_requests_total).",
           sum_like(m, &w0->h2_requests));
    scalar(t, "weir_http2_streams_open", "gauge", "HTTP/2 streams open now.",
           sum_like(m, &w0->h2_streams_open));
}

const char *wr_metrics_h2_reason_name(unsigned r)
{
    static const char *const names[WR_METRICS_H2_N_REASONS] = {
        "no_error", "protocol_error", "internal_error", "flow_control_error",
        "settings_timeout", "stream_closed", "frame_size_error", "refused_stream", "cancel",
        "compression_error", "connect_error", "enhance_your_calm", "inadequate_security",
        "http_1_1_required", "rapid_reset", "control_flood", "priority_flood",
        "empty_data_flood", "window_update_flood", "continuation_flood", "send_timeout",
        "body_timeout",
    };
    return r < WR_METRICS_H2_N_REASONS ? names[r] : "unknown";
}

/* GOAWAY and RST_STREAM sent by HTTP/2 connections, by reason. */
static void format_h2_errors(const struct wr_metrics *m, struct wr_metrics_text *t)
{
    const struct wr_metrics_worker *w0 = &m->workers[0];
    family(t, "weir_http2_goaway_total", "counter",
           "GOAWAY frames sent to HTTP/2 clients, by reason (error code or defence).");
    for (unsigned r = 0; r < WR_METRICS_H2_N_REASONS; r++)
        wr_metrics_text_printf(t, "weir_http2_goaway_total{reason=\"%s\"} %llu\n",
                               wr_metrics_h2_reason_name(r),
                               (unsigned long long)sum_like(m, &w0->h2_goaways[r]));
    family(t, "weir_http2_stream_errors_total", "counter",
           "RST_STREAM frames sent to HTTP/2 clients, by reason (error code or defence).");
    for (unsigned r = 0; r < WR_METRICS_H2_N_REASONS; r++)
        wr_metrics_text_printf(t, "weir_http2_stream_errors_total{reason=\"%s\"} %llu\n",
                               wr_metrics_h2_reason_name(r),
                               (unsigned long long)sum_like(m, &w0->h2_stream_errors[r]));
}

/* Compression by coding (compress_filter.c, static.c). */
static void format_compression(const struct wr_metrics *m, struct wr_metrics_text *t)
{
    static const char *const names[4] = {"identity", "gzip", "br", "zstd"};
    const struct wr_metrics_worker *w0 = &m->workers[0];
    static const struct {
        const char *name, *help;
        size_t offset;
    } series[] = {
        {"weir_compressed_responses_total", "Responses sent compressed, by coding.",
         offsetof(struct wr_metrics_worker, compressed_responses)},
        {"weir_compress_in_bytes_total",
         "Payload bytes of compressed responses before coding, by coding.",
         offsetof(struct wr_metrics_worker, compress_in_bytes)},
        {"weir_compress_out_bytes_total",
         "Payload bytes of compressed responses as sent, by coding (out / in is the ratio).",
         offsetof(struct wr_metrics_worker, compress_out_bytes)},
        {"weir_compress_cache_fills_total",
         "Compressed copies of static files made for the open-file cache, by coding.",
         offsetof(struct wr_metrics_worker, compress_cache_fills)},
    };
    for (size_t s = 0; s < sizeof(series) / sizeof(series[0]); s++) {
        family(t, series[s].name, "counter", series[s].help);
        for (unsigned c = 1; c < 4; c++) {
            const _Atomic uint64_t *v =
                (const _Atomic uint64_t *)((const char *)w0 + series[s].offset) + c;
            wr_metrics_text_printf(t, "%s{coding=\"%s\"} %llu\n", series[s].name, names[c],
                                   (unsigned long long)sum_like(m, v));
        }
    }
    static const char *const pp_reasons[3] = {"untrusted", "malformed", "timeout"};
    family(t, "weir_proxy_protocol_errors_total", "counter",
           "Connections on proxy_protocol listeners closed unserved, by reason.");
    for (unsigned r = 0; r < 3; r++)
        wr_metrics_text_printf(t, "weir_proxy_protocol_errors_total{reason=\"%s\"} %llu\n",
                               pp_reasons[r],
                               (unsigned long long)sum_like(m, &w0->proxy_protocol_errors[r]));
    scalar(t, "weir_auth_failures_total", "counter",
           "Basic authentication attempts with a wrong user or password.",
           sum_like(m, &w0->auth_failures));
    static const char *const cache_results[WR_METRICS_CACHE_N] = {
        "hit",          "miss",   "stale",       "bypass",  "collapsed",
        "lock_timeout", "stale_if_error", "stored", "revalidated", "replaced",
        "disk_hit"};
    family(t, "weir_cache_requests_total", "counter",
           "Requests of cached routes by what the cache did (collapsed, lock_timeout, "
           "stale_if_error, stored, revalidated (a 304 freshened the entry) and replaced "
           "(a stale entry's revalidation brought a new response) count alongside hit, "
           "miss, stale or bypass).");
    for (unsigned r = 0; r < WR_METRICS_CACHE_N; r++)
        wr_metrics_text_printf(t, "weir_cache_requests_total{result=\"%s\"} %llu\n",
                               cache_results[r], (unsigned long long)sum_like(m, &w0->cache[r]));
    scalar(t, "weir_compress_memory_bytes", "gauge",
           "Estimated bytes of encoder state responses being compressed hold now.",
           sum_like(m, &w0->compress_memory));
}

/* Lines a slow reader of a pipe, FIFO or socket log cost (log.c). */
static void format_log_drops(const struct wr_metrics *m, struct wr_metrics_text *t)
{
    scalar(t, "weir_access_log_dropped_lines_total", "counter",
           "Access log lines dropped: the log's pipe or socket reader was too slow.",
           sum_like(m, &m->workers[0].access_log_dropped_lines));
    scalar(t, "weir_error_log_dropped_lines_total", "counter",
           "Error log lines dropped: the log's pipe or socket reader was too slow.",
           wr_log_error_lines_dropped());
}

/* 'upstream="x",server="y"' for server id into labels (reset first). */
static void server_labels(const struct wr_metrics *m, size_t id, struct wr_metrics_text *labels)
{
    labels->len = 0;
    wr_metrics_text_printf(labels, "upstream=\"");
    wr_metrics_text_label(labels, m->server_upstreams[id]);
    wr_metrics_text_printf(labels, "\",server=\"");
    wr_metrics_text_label(labels, m->server_addrs[id]);
    wr_metrics_text_printf(labels, "\"");
}

/* A counter family with one series per upstream server. */
static void server_counter(const struct wr_metrics *m, struct wr_metrics_text *t,
                           struct wr_metrics_text *labels, const char *name, const char *help,
                           size_t field_off)
{
    family(t, name, "counter", help);
    for (size_t id = 1; id < m->n_servers; id++) {
        const char *field = (const char *)&m->workers[0].servers[id] + field_off;
        server_labels(m, id, labels);
        wr_metrics_text_printf(t, "%s{%s} %llu\n", name, labels->is_oom ? "" : labels->buf,
                               (unsigned long long)sum_like(m, (const _Atomic uint64_t *)field));
    }
}

static void format_upstreams(const struct wr_metrics *m, struct wr_metrics_text *t)
{
    struct wr_metrics_text labels = {0};
    wr_metrics_text_printf(&labels, "%s", ""); /* never NULL below */
    server_counter(m, t, &labels, "weir_upstream_requests_total",
                   "Requests sent to an upstream server.",
                   offsetof(struct wr_metrics_server, requests));
    server_counter(m, t, &labels, "weir_upstream_failures_total",
                   "Upstream exchanges that failed (connect, reset, timeout, bad head).",
                   offsetof(struct wr_metrics_server, failures));
    server_counter(m, t, &labels, "weir_upstream_pool_hits_total",
                   "Upstream requests sent on a reused idle connection.",
                   offsetof(struct wr_metrics_server, pool_hits));
    server_counter(m, t, &labels, "weir_upstream_pool_misses_total",
                   "Upstream requests that needed a new connection.",
                   offsetof(struct wr_metrics_server, pool_misses));
    family(t, "weir_upstream_request_duration_seconds", "histogram",
           "Upstream exchange duration, request sent to response complete.");
    for (size_t id = 1; id < m->n_servers; id++) {
        server_labels(m, id, &labels);
        hist_series(t, m, "weir_upstream_request_duration_seconds",
                    labels.is_oom ? "" : labels.buf, &m->workers[0].servers[id].duration);
    }
    family(t, "weir_upstream_server_up", "gauge",
           "1 when a server of the running configuration is in service, 0 when taken out.");
    for (size_t id = 1; id < m->n_servers; id++) {
        if (!m->is_server_current[id])
            continue;
        server_labels(m, id, &labels);
        wr_metrics_text_printf(t, "weir_upstream_server_up{%s} %d\n",
                               labels.is_oom ? "" : labels.buf, m->is_server_down[id] ? 0 : 1);
    }
    t->is_oom |= labels.is_oom;
    wr_metrics_text_fini(&labels);
    scalar(t, "weir_upstream_pool_entries", "gauge",
           "Upstream pool server entries (address and TLS context) held by the workers "
           "(refreshed every 100 ms).",
           sum_like(m, &m->workers[0].pool_entries));
    scalar(t, "weir_upstream_pool_idle", "gauge",
           "Idle upstream connections in the workers' pools (refreshed every 100 ms).",
           sum_like(m, &m->workers[0].pool_idle));
}

static void format_ocsp(const struct wr_metrics *m, struct wr_metrics_text *t)
{
    static const char *const results[WR_METRICS_OCSP_N_RESULTS] = {"good", "revoked", "unknown",
                                                                   "invalid", "error"};
    family(t, "weir_ocsp_fetches_total", "counter",
           "OCSP responses fetched for stapling (ocsp_stapling), by result.");
    for (int r = 0; r < WR_METRICS_OCSP_N_RESULTS; r++)
        wr_metrics_text_printf(t, "weir_ocsp_fetches_total{result=\"%s\"} %llu\n", results[r],
                               (unsigned long long)m->ocsp_fetches[r]);
    scalar(t, "weir_ocsp_stapled_certificates", "gauge",
           "Certificates whose fetched OCSP response is stapled now.", m->ocsp_stapled);
    scalar(t, "weir_ocsp_next_update_seconds", "gauge",
           "The earliest nextUpdate of the stapled fetched OCSP responses, seconds since the "
           "epoch (0: none); past it, that response is no longer stapled.",
           m->ocsp_next_update_s);
}

void wr_metrics_format_prometheus(const struct wr_metrics *m, struct wr_metrics_text *out)
{
    family(out, "weir_build_info", "gauge", "Always 1; the version is a label.");
    wr_metrics_text_printf(out, "weir_build_info{version=\"%s\"} 1\n", WEIR_VERSION);
    scalar(out, "weir_start_time_seconds", "gauge", "Start time, seconds since the epoch.",
           m->start_unix_s);
    scalar(out, "weir_workers", "gauge", "Worker threads.", m->n_workers);
    format_requests(m, out);
    format_conns(m, out);
    format_compression(m, out);
    format_h2_errors(m, out);
    format_log_drops(m, out);
    scalar(out, "weir_config_reloads_total", "counter", "Configuration reloads that succeeded.",
           m->reloads);
    scalar(out, "weir_config_reload_failures_total", "counter",
           "Configuration reloads refused (invalid file, restart-only change, bind error).",
           m->reload_failures);
    scalar(out, "weir_upstream_resolutions_total", "counter",
           "Background lookups of upstream server names (resolve).", m->dns_resolutions);
    scalar(out, "weir_upstream_resolution_failures_total", "counter",
           "Background lookups that failed (timeout, SERVFAIL, NXDOMAIN, empty answer); "
           "the last good addresses were kept.", m->dns_failures);
    scalar(out, "weir_upstream_resolution_changes_total", "counter",
           "Background lookups that changed a name's address set.", m->dns_changes);
    format_upstreams(m, out);
    format_ocsp(m, out);
}

void wr_metrics_format_status(const struct wr_metrics *m, const struct wr_metrics_rate *rate,
                              uint64_t now_mono_ms, struct wr_metrics_text *out)
{
    struct wr_metrics_totals t;
    wr_metrics_sum(m, &t);
    uint64_t up_ms = now_mono_ms > m->start_mono_ms ? now_mono_ms - m->start_mono_ms : 0;
    double rps = rate ? wr_metrics_rate_per_sec(rate, 10000) : 0;
    wr_metrics_text_printf(
        out,
        "{\"version\":\"%s\",\"uptime_seconds\":%llu,\"workers\":%zu,"
        "\"connections\":{\"open\":%llu,\"idle\":%llu,\"accepted\":%llu},"
        "\"requests\":{\"total\":%llu,\"per_second\":%.1f",
        WEIR_VERSION, (unsigned long long)(up_ms / 1000), m->n_workers,
        (unsigned long long)t.conns_open, (unsigned long long)t.conns_idle,
        (unsigned long long)t.conns_accepted, (unsigned long long)t.requests, rps);
    for (int c = 0; c < WR_METRICS_N_CLASSES; c++)
        wr_metrics_text_printf(out, ",\"%s\":%llu", class_names[c],
                               (unsigned long long)t.by_class[c]);
    wr_metrics_text_printf(out,
                           "},\"bytes\":{\"in\":%llu,\"out\":%llu},"
                           "\"reloads\":{\"ok\":%llu,\"failed\":%llu},\"upstream_servers\":[",
                           (unsigned long long)t.bytes_in, (unsigned long long)t.bytes_out,
                           (unsigned long long)m->reloads, (unsigned long long)m->reload_failures);
    const char *sep = "";
    for (size_t id = 1; id < m->n_servers; id++) {
        if (!m->is_server_current[id])
            continue;
        wr_metrics_text_printf(out, "%s{\"upstream\":\"", sep);
        wr_metrics_text_json(out, m->server_upstreams[id]);
        wr_metrics_text_printf(out, "\",\"server\":\"");
        wr_metrics_text_json(out, m->server_addrs[id]);
        wr_metrics_text_printf(out, "\",\"up\":%s}", m->is_server_down[id] ? "false" : "true");
        sep = ",";
    }
    wr_metrics_text_printf(out, "]}\n");
}
