/*
 * Unit tests for metrics: histogram bucket placement (bounds inclusive),
 * status classes, summing over workers, ids that stay put across reloads,
 * the Prometheus exposition (HELP/TYPE before samples, label escaping,
 * cumulative buckets with +Inf equal to _count), the /status JSON and the
 * request-rate window. Configs are loaded from strings or built by hand
 * where a name the loader refuses is needed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weir/metrics.h"

static struct wr_config *load(const char *text)
{
    struct wr_config_errors errs = {0};
    struct wr_config *cfg = wr_config_parse_string(text, "t.ini", &errs);
    for (size_t i = 0; i < errs.n_lines; i++)
        fprintf(stderr, "%s\n", errs.lines[i]);
    wr_config_errors_fini(&errs);
    assert_non_null(cfg);
    return cfg;
}

static char *prometheus(const struct wr_metrics *m)
{
    struct wr_metrics_text t = {0};
    wr_metrics_format_prometheus(m, &t);
    assert_false(t.is_oom);
    return t.buf; /* the caller frees */
}

/* The value of the sample line starting with prefix (name and labels). */
static unsigned long long sample(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *line = text; line && *line; line = strchr(line, '\n')) {
        if (*line == '\n')
            line++;
        if (strncmp(line, prefix, n) == 0 && line[n] == ' ')
            return strtoull(line + n + 1, NULL, 10);
    }
    fail_msg("no sample %s", prefix);
    return 0;
}

static void test_bucket_bounds_are_inclusive(void **state)
{
    (void)state;
    struct wr_metrics_hist h = {0};
    wr_metrics_observe(&h, 0);
    wr_metrics_observe(&h, 1000);     /* le="0.001" */
    wr_metrics_observe(&h, 1001);     /* le="0.0025" */
    wr_metrics_observe(&h, 10000000); /* le="10" */
    wr_metrics_observe(&h, 10000001); /* +Inf */
    assert_int_equal(h.buckets[0], 2);
    assert_int_equal(h.buckets[1], 1);
    assert_int_equal(h.buckets[WR_METRICS_N_BOUNDS - 1], 1);
    assert_int_equal(h.buckets[WR_METRICS_N_BOUNDS], 1);
    assert_int_equal(h.sum_us, 20000000 + 2002);
}

static void test_status_classes_and_clamping(void **state)
{
    (void)state;
    struct wr_metrics *m = wr_metrics_new(1);
    assert_non_null(m);
    struct wr_metrics_worker *w = wr_metrics_worker(m, 0);
    wr_metrics_count_request(w, 0, 101, 5);
    wr_metrics_count_request(w, 0, 204, 5);
    wr_metrics_count_request(w, 0, 599, 5);
    wr_metrics_count_request(w, 0, 99, 5);  /* out of range: 5xx */
    wr_metrics_count_request(w, 0, 600, 5); /* likewise */
    wr_metrics_count_request(w, 99999, 200, 5); /* id past the table: last slot */
    assert_int_equal(w->requests[0][0], 1);
    assert_int_equal(w->requests[0][1], 1);
    assert_int_equal(w->requests[0][4], 3);
    assert_int_equal(w->requests[WR_METRICS_MAX_ROUTES - 1][1], 1);
    wr_metrics_free(m);
}

static void test_workers_are_summed_on_their_own_lines(void **state)
{
    (void)state;
    struct wr_metrics *m = wr_metrics_new(3);
    assert_non_null(m);
    /* Each worker's block starts a cache line: no false sharing. */
    for (size_t i = 0; i < 3; i++)
        assert_int_equal((uintptr_t)wr_metrics_worker(m, i) % WR_METRICS_CACHE_LINE, 0);
    struct wr_config *cfg = load("[server]\nlisten = 127.0.0.1:1\n"
                                 "[route a]\nmatch = exact:/a\nreturn = 200\n");
    assert_int_equal(wr_metrics_register(m, cfg), 0);
    unsigned a = cfg->routes[0].metrics_id;
    for (size_t i = 0; i < 3; i++) {
        struct wr_metrics_worker *w = wr_metrics_worker(m, i);
        for (size_t k = 0; k <= i; k++)
            wr_metrics_count_request(w, a, 200, 3000); /* le="0.005" */
        wr_metrics_add(&w->bytes_in, 10);
        wr_metrics_set(&w->conns_open, i);
    }
    struct wr_metrics_totals t;
    wr_metrics_sum(m, &t);
    assert_int_equal(t.requests, 6);
    assert_int_equal(t.by_class[1], 6);
    assert_int_equal(t.bytes_in, 30);
    assert_int_equal(t.conns_open, 3);
    char *text = prometheus(m);
    assert_int_equal(sample(text, "weir_http_requests_total{route=\"a\",class=\"2xx\"}"), 6);
    assert_int_equal(sample(text, "weir_http_requests_total{route=\"\",class=\"2xx\"}"), 0);
    assert_int_equal(sample(text, "weir_http_received_bytes_total"), 30);
    assert_int_equal(sample(text, "weir_http_request_duration_seconds_bucket{le=\"0.0025\"}"), 0);
    assert_int_equal(sample(text, "weir_http_request_duration_seconds_bucket{le=\"0.005\"}"), 6);
    assert_int_equal(sample(text, "weir_http_request_duration_seconds_bucket{le=\"+Inf\"}"), 6);
    assert_int_equal(sample(text, "weir_http_request_duration_seconds_count"), 6);
    assert_non_null(strstr(text, "weir_http_request_duration_seconds_sum 0.018000\n"));
    assert_non_null(strstr(text, "weir_workers 3\n"));
    free(text);
    wr_config_unref(cfg);
    wr_metrics_free(m);
}

static const char *const RELOAD_A =
    "[server]\nlisten = 127.0.0.1:1\n"
    "[upstream app]\nserver = 127.0.0.1:9000\nserver = 127.0.0.1:9001\n"
    "[route one]\nmatch = exact:/1\nreturn = 200\n"
    "[route two]\nmatch = exact:/2\nproxy = app\n";
static const char *const RELOAD_B =
    "[server]\nlisten = 127.0.0.1:1\n"
    "[upstream app]\nserver = 127.0.0.1:9001\n"
    "[route new]\nmatch = exact:/n\nreturn = 200\n"
    "[route two]\nmatch = exact:/2\nproxy = app\n"
    "[route one]\nmatch = exact:/1\nreturn = 200\n";

static void test_ids_survive_reloads(void **state)
{
    (void)state;
    struct wr_metrics *m = wr_metrics_new(1);
    struct wr_config *a = load(RELOAD_A), *b = load(RELOAD_B);
    assert_int_equal(wr_metrics_register(m, a), 0);
    assert_int_equal(wr_metrics_register(m, b), 0);
    /* Same names, same ids, whatever the order in the file. */
    assert_int_equal(b->routes[2].metrics_id, a->routes[0].metrics_id); /* one */
    assert_int_equal(b->routes[1].metrics_id, a->routes[1].metrics_id); /* two */
    assert_int_equal(b->routes[0].metrics_id, 3);                       /* new */
    assert_int_not_equal(a->routes[0].metrics_id, 0);
    assert_int_equal(b->upstreams[0].servers[0].metrics_id,
                     a->upstreams[0].servers[1].metrics_id);
    /* A counter of the old snapshot shows under the same series. */
    struct wr_metrics_worker *w = wr_metrics_worker(m, 0);
    wr_metrics_count_request(w, a->routes[0].metrics_id, 302, 1);
    wr_metrics_count_request(w, b->routes[2].metrics_id, 302, 1);
    wr_metrics_add(&w->servers[a->upstreams[0].servers[0].metrics_id].requests, 4);
    wr_metrics_set_server_down(m, b->upstreams[0].servers[0].metrics_id, true);
    char *text = prometheus(m);
    assert_int_equal(sample(text, "weir_http_requests_total{route=\"one\",class=\"3xx\"}"), 2);
    assert_int_equal(sample(text, "weir_http_requests_total{route=\"new\",class=\"3xx\"}"), 0);
    /* A server dropped by the reload keeps its counter, but is not "up". */
    assert_int_equal(sample(text, "weir_upstream_requests_total{upstream=\"app\","
                                  "server=\"127.0.0.1:9000\"}"), 4);
    assert_null(strstr(text, "weir_upstream_server_up{upstream=\"app\",server=\"127.0.0.1:9000\"}"));
    assert_int_equal(sample(text, "weir_upstream_server_up{upstream=\"app\","
                                  "server=\"127.0.0.1:9001\"}"), 0);
    assert_int_equal(sample(text, "weir_upstream_request_duration_seconds_count{upstream=\"app\","
                                  "server=\"127.0.0.1:9001\"}"), 0);
    free(text);
    wr_config_unref(a);
    wr_config_unref(b);
    wr_metrics_free(m);
}

static void test_route_overflow_shares_one_series(void **state)
{
    (void)state;
    struct wr_metrics *m = wr_metrics_new(1);
    size_t n = WR_METRICS_MAX_ROUTES + 10;
    struct wr_route *routes = calloc(n, sizeof(*routes));
    char (*names)[16] = calloc(n, sizeof(*names));
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof(names[i]), "r%zu", i);
        routes[i].name = names[i];
    }
    struct wr_config cfg = {.routes = routes, .n_routes = n};
    assert_int_equal(wr_metrics_register(m, &cfg), 0);
    assert_int_equal(routes[0].metrics_id, 1);
    assert_int_equal(routes[WR_METRICS_MAX_ROUTES - 3].metrics_id, WR_METRICS_MAX_ROUTES - 2);
    assert_int_equal(routes[WR_METRICS_MAX_ROUTES - 2].metrics_id, WR_METRICS_MAX_ROUTES - 1);
    assert_int_equal(routes[n - 1].metrics_id, WR_METRICS_MAX_ROUTES - 1);
    char *text = prometheus(m);
    assert_non_null(strstr(text, "{route=\"(overflow)\",class=\"2xx\"} 0\n"));
    free(text);
    free(names);
    free(routes);
    wr_metrics_free(m);
}

static void test_label_escaping(void **state)
{
    (void)state;
    struct wr_metrics_text t = {0};
    wr_metrics_text_label(&t, "a\"b\\c\nd");
    assert_string_equal(t.buf, "a\\\"b\\\\c\\nd");
    wr_metrics_text_fini(&t);
    wr_metrics_text_json(&t, "q\"\\\x01\t");
    assert_string_equal(t.buf, "q\\\"\\\\\\u0001\\u0009");
    wr_metrics_text_fini(&t);
    /* Through the exposition, with names the loader would refuse. */
    struct wr_metrics *m = wr_metrics_new(1);
    struct wr_route r = {.name = "we\"ird\\\nname"};
    struct wr_upstream_server_cfg srv = {.addr = {.text = "unix:/run/a\"b.sock"}};
    struct wr_upstream_cfg up = {.name = "u\\p", .servers = &srv, .n_servers = 1};
    struct wr_config cfg = {.routes = &r, .n_routes = 1, .upstreams = &up, .n_upstreams = 1};
    assert_int_equal(wr_metrics_register(m, &cfg), 0);
    char *text = prometheus(m);
    assert_non_null(strstr(text, "{route=\"we\\\"ird\\\\\\nname\",class=\"1xx\"} 0\n"));
    assert_non_null(strstr(text, "weir_upstream_server_up{upstream=\"u\\\\p\","
                                 "server=\"unix:/run/a\\\"b.sock\"} 1\n"));
    free(text);
    struct wr_metrics_text js = {0};
    wr_metrics_format_status(m, NULL, m->start_mono_ms + 5500, &js);
    assert_non_null(strstr(js.buf, "\"uptime_seconds\":5,"));
    assert_non_null(strstr(js.buf, "{\"upstream\":\"u\\\\p\",\"server\":\"unix:/run/a\\\"b.sock\","
                                   "\"up\":true}"));
    wr_metrics_text_fini(&js);
    wr_metrics_free(m);
}

/* Every sample's family was announced by HELP then TYPE just before its
 * first sample, and each family is announced once. */
static void test_type_precedes_samples(void **state)
{
    (void)state;
    struct wr_metrics *m = wr_metrics_new(2);
    struct wr_config *cfg = load(RELOAD_A);
    wr_metrics_register(m, cfg);
    char *text = prometheus(m);
    char current[128] = "";
    size_t n_families = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char name[128];
        if (strncmp(line, "# HELP ", 7) == 0)
            continue;
        if (sscanf(line, "# TYPE %127s", name) == 1) {
            assert_string_not_equal(name, current);
            snprintf(current, sizeof(current), "%s", name);
            n_families++;
            continue;
        }
        assert_true(sscanf(line, "%127[^{ ]", name) == 1);
        size_t n = strlen(current);
        assert_true(strncmp(name, current, n) == 0);
        const char *suffix = name + n;
        assert_true(*suffix == '\0' || strcmp(suffix, "_bucket") == 0 ||
                    strcmp(suffix, "_sum") == 0 || strcmp(suffix, "_count") == 0);
    }
    assert_true(n_families >= 20);
    free(text);
    wr_config_unref(cfg);
    wr_metrics_free(m);
}

static void test_status_json(void **state)
{
    (void)state;
    struct wr_metrics *m = wr_metrics_new(2);
    wr_metrics_count_request(wr_metrics_worker(m, 1), 0, 404, 1);
    m->reloads = 3;
    m->reload_failures = 1;
    struct wr_metrics_rate rate = {0};
    wr_metrics_rate_add(&rate, 1000, 0);
    wr_metrics_rate_add(&rate, 3000, 50);
    struct wr_metrics_text js = {0};
    wr_metrics_format_status(m, &rate, m->start_mono_ms, &js);
    assert_non_null(strstr(js.buf, "\"workers\":2,"));
    assert_non_null(strstr(js.buf, "\"requests\":{\"total\":1,\"per_second\":25.0,"));
    assert_non_null(strstr(js.buf, "\"4xx\":1"));
    assert_non_null(strstr(js.buf, "\"reloads\":{\"ok\":3,\"failed\":1}"));
    assert_non_null(strstr(js.buf, "\"upstream_servers\":[]}\n"));
    wr_metrics_text_fini(&js);
    wr_metrics_free(m);
}

static void test_rate_window(void **state)
{
    (void)state;
    struct wr_metrics_rate r = {0};
    assert_true(wr_metrics_rate_per_sec(&r, 10000) == 0);
    wr_metrics_rate_add(&r, 0, 0);
    assert_true(wr_metrics_rate_per_sec(&r, 10000) == 0);
    /* 100 req/s for 20 s, then 10 req/s for 10 s: the 10 s window sees 10. */
    uint64_t total = 0;
    for (uint64_t s = 1; s <= 30; s++) {
        total += s <= 20 ? 100 : 10;
        wr_metrics_rate_add(&r, s * 1000, total);
    }
    assert_true(wr_metrics_rate_per_sec(&r, 10000) > 9.99);
    assert_true(wr_metrics_rate_per_sec(&r, 10000) < 10.01);
    /* Wider than the ring: as far back as it remembers (15 s). */
    double wide = wr_metrics_rate_per_sec(&r, 60000);
    assert_true(wide > 39.9 && wide < 40.1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_bounds_are_inclusive),
        cmocka_unit_test(test_status_classes_and_clamping),
        cmocka_unit_test(test_workers_are_summed_on_their_own_lines),
        cmocka_unit_test(test_ids_survive_reloads),
        cmocka_unit_test(test_route_overflow_shares_one_series),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_type_precedes_samples),
        cmocka_unit_test(test_status_json),
        cmocka_unit_test(test_rate_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
