/*
 * Unit tests for config: one file using every section and key (values
 * checked), a minimal file (every default checked), then a table of broken
 * snippets, each with the exact error lines expected. Snippets are copied
 * into exact-size heap buffers so ASan catches a read past the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ftw.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "weir/config.h"
#include "weir/http_cond.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define BIT(m) (1u << (m))
#define MAX_ERRORS 8

static char root_dir[64]; /* a real directory for root = */

static int make_root(void **state)
{
    (void)state;
    strcpy(root_dir, "/tmp/weir-test-root-XXXXXX");
    return mkdtemp(root_dir) != NULL ? 0 : -1;
}

static int remove_root(void **state)
{
    (void)state;
    return rmdir(root_dir);
}

static struct wr_config *parse(const char *text, struct wr_config_errors *errs)
{
    char *copy = strdup(text);
    assert_non_null(copy);
    struct wr_config *cfg = wr_config_parse_string(copy, "t.ini", errs);
    free(copy);
    return cfg;
}

/* Parses text, which must load; prints the errors when it does not. */
static struct wr_config *parse_ok(const char *text)
{
    struct wr_config_errors errs = {0};
    struct wr_config *cfg = parse(text, &errs);
    for (size_t i = 0; i < errs.n_lines; i++)
        print_error("unexpected: %s\n", errs.lines[i]);
    assert_int_equal(errs.n_lines, 0);
    assert_non_null(cfg);
    wr_config_errors_fini(&errs);
    return cfg;
}

static const char full_fmt[] =
    "; every key of CONFIG.md\n"
    "# both comment styles\n"
    "[server]\n"
    "listen = 0.0.0.0:8080\n"
    "listen = [::1]:8443 tls\n"
    "listen = unix:/run/weir-test.sock\n"
    "workers = 3\n"
    "user = www-data\n"
    "group = www-data\n"
    "max_connections = 500\n"
    "server_header = off\n"
    "access_log = /var/log/weir/access.log\n"
    "access_log_format = json\n"
    "error_log = /var/log/weir/error.log\n"
    "log_level = debug\n"
    "\n"
    "[limits]\n"
    "    header_timeout = 5s          ; indented keys are plain keys\n"
    "    body_timeout = 30s\n"
    "keepalive_timeout = 0\n"
    "send_timeout = 1m\n"
    "max_header_size = 8k\n"
    "max_body_size = 0\n"
    "max_requests_per_connection = 0\n"
    "shutdown_timeout = 250ms\n"
    "\n"
    "[tls example.org]               ; before [tls] on purpose\n"
    "names = example.org WWW.Example.org\n"
    "names = *.example.net\n"
    "cert = /etc/weir/tls/example.crt\n"
    "key = /etc/weir/tls/example.key\n"
    "protocols = TLSv1.3\n"
    "\n"
    "[tls]\n"
    "cert = /etc/weir/tls/site.crt\n"
    "key = /etc/weir/tls/site.key\n"
    "protocols = TLSv1.2 TLSv1.3\n"
    "ciphers = ECDHE+AESGCM\n"
    "session_tickets = off\n"
    "handshake_timeout = 5s\n"
    "alpn = http/1.1\n"
    "\n"
    "[route api]                     ; before its upstream on purpose\n"
    "match = regex:^/api/(v[0-9]+)/(.*)$\n"
    "host = API.example.org *.example.net\n"
    "methods = GET POST PROPFIND\n"
    "proxy = app\n"
    "rewrite = /$1/$2\n"
    "preserve_host = off\n"
    "forwarded_headers = no\n"
    "set_header = X-Env: prod\n"
    "set_header = X-Version: $1\n"
    "websocket = on\n"
    "websocket_timeout = 2h\n"
    "add_header = X-Frame-Options: DENY\n"
    "\n"
    "[upstream app]\n"
    "server = 127.0.0.1:9000\n"
    "server = 127.0.0.1:9001 weight=2\n"
    "server = unix:/run/app.sock\n"
    "server = localhost:9002\n"
    "balance = hash\n"
    "hash_key = header:X-User\n"
    "keepalive = 8\n"
    "keepalive_timeout = 30s\n"
    "connect_timeout = 500ms\n"
    "send_timeout = 10s\n"
    "read_timeout = 20s\n"
    "retries = 2\n"
    "max_fails = 0\n"
    "fail_timeout = 5s\n"
    "health_check = HEAD   /healthz\n"
    "health_interval = 3s\n"
    "health_timeout = 1s\n"
    "tls = on\n"
    "tls_verify = off\n"
    "tls_ca = /etc/ssl/private-ca.pem\n"
    "tls_sni = App.Internal\n"
    "\n"
    "[upstream minimal]\n"
    "server = [::1]:9000\n"
    "\n"
    "[route assets]\n"
    "host = example.org\n"
    "match = prefix:/static/\n"
    "methods = GET\n"
    "root = %s\n"
    "strip_prefix = /static\n"
    "index = home.html\n"
    "autoindex = on\n"
    "precompressed = on\n"
    "expires = 1h\n"
    "follow_symlinks = on\n"
    "dotfiles = on\n"
    "add_header = Cache-Tag: assets\n"
    "add_header = X-Host: $host\n"
    "\n"
    "[route old]\n"
    "match = exact:/old\n"
    "redirect = 301 https://$host/new\n"
    "\n"
    "[route ping]\n"
    "match = exact:/healthz\n"
    "return = 200 ok ; inline comment\n"
    "\n"
    "[route empty]\n"
    "match = exact:/empty\n"
    "return = 204\n"
    "\n"
    "[route fallback]\n"
    "match = prefix:/\n"
    "proxy = minimal\n"
    "\n"
    "[admin]\n"
    "listen = 127.0.0.1:9901\n";

static struct wr_config *load_full(void)
{
    char text[sizeof(full_fmt) + 64];
    snprintf(text, sizeof(text), full_fmt, root_dir);
    return parse_ok(text);
}

static void check_full_server(const struct wr_config *cfg)
{
    const struct wr_server_cfg *s = &cfg->server;
    assert_int_equal(s->n_listens, 3);
    assert_string_equal(s->listens[0].addr.text, "0.0.0.0:8080");
    assert_false(s->listens[0].is_tls);
    assert_int_equal(s->listens[0].line, 4);
    assert_string_equal(s->listens[1].addr.text, "[::1]:8443");
    assert_true(s->listens[1].is_tls);
    assert_string_equal(s->listens[2].addr.text, "unix:/run/weir-test.sock");
    assert_int_equal(s->n_workers, 3);
    assert_string_equal(s->user, "www-data");
    assert_string_equal(s->group, "www-data");
    assert_int_equal(s->max_connections, 500);
    assert_null(s->server_header);
    assert_string_equal(s->access_log, "/var/log/weir/access.log");
    assert_int_equal(s->access_log_format.kind, WR_LOG_KIND_JSON);
    assert_string_equal(s->error_log, "/var/log/weir/error.log");
    assert_int_equal(s->log_level, WR_LOG_DEBUG);

    const struct wr_limits_cfg *l = &cfg->limits;
    assert_int_equal(l->header_timeout_ms, 5000);
    assert_int_equal(l->body_timeout_ms, 30000);
    assert_int_equal(l->keepalive_timeout_ms, 0);
    assert_int_equal(l->send_timeout_ms, 60000);
    assert_int_equal(l->max_header_bytes, 8192);
    assert_int_equal(l->max_body_bytes, 0);
    assert_int_equal(l->max_requests_per_connection, 0);
    assert_int_equal(l->shutdown_timeout_ms, 250);

    assert_true(cfg->admin.is_enabled);
    assert_string_equal(cfg->admin.listen.text, "127.0.0.1:9901");
}

static void check_full_tls(const struct wr_config *cfg)
{
    assert_int_equal(cfg->n_tls, 2);
    assert_true(cfg->has_default_tls);
    const struct wr_tls_cfg *d = &cfg->tls[0];
    assert_null(d->name);
    assert_int_equal(d->n_names, 0);
    assert_int_equal(d->n_certs, 1);
    assert_int_equal(d->n_keys, 1);
    assert_string_equal(d->certs[0], "/etc/weir/tls/site.crt");
    assert_string_equal(d->keys[0], "/etc/weir/tls/site.key");
    assert_string_equal(d->protocols, "TLSv1.2 TLSv1.3");
    assert_string_equal(d->ciphers, "ECDHE+AESGCM");
    assert_false(d->session_tickets);
    assert_int_equal(d->handshake_timeout_ms, 5000);
    assert_string_equal(d->alpn, "http/1.1");
    assert_int_equal(d->line, 34);

    const struct wr_tls_cfg *t = &cfg->tls[1];
    assert_string_equal(t->name, "example.org");
    assert_int_equal(t->n_names, 3);
    assert_string_equal(t->names[0], "example.org");
    assert_string_equal(t->names[1], "www.example.org");
    assert_string_equal(t->names[2], "*.example.net");
    assert_string_equal(t->certs[0], "/etc/weir/tls/example.crt");
    assert_string_equal(t->protocols, "TLSv1.3");      /* given */
    assert_string_equal(t->ciphers, "ECDHE+AESGCM");   /* from [tls] */
    assert_false(t->session_tickets);                  /* from [tls] */
    assert_int_equal(t->handshake_timeout_ms, 5000);   /* from [tls] */
}

static void check_full_upstreams(const struct wr_config *cfg)
{
    assert_int_equal(cfg->n_upstreams, 2);
    const struct wr_upstream_cfg *u = &cfg->upstreams[0];
    assert_string_equal(u->name, "app");
    assert_int_equal(u->n_servers, 4);
    assert_string_equal(u->servers[0].addr.text, "127.0.0.1:9000");
    assert_int_equal(u->servers[0].weight, 1);
    assert_int_equal(u->servers[1].weight, 2);
    assert_string_equal(u->servers[2].addr.text, "unix:/run/app.sock");
    assert_string_equal(u->servers[3].addr.text, "127.0.0.1:9002");
    assert_string_equal(u->servers[3].authority, "localhost:9002");
    assert_string_equal(u->servers[0].label, "127.0.0.1:9000");
    assert_non_null(u->health);
    assert_int_equal(u->balance, WR_BALANCE_HASH);
    assert_string_equal(u->hash_key, "header:X-User");
    assert_int_equal(u->keepalive, 8);
    assert_int_equal(u->keepalive_timeout_ms, 30000);
    assert_int_equal(u->connect_timeout_ms, 500);
    assert_int_equal(u->send_timeout_ms, 10000);
    assert_int_equal(u->read_timeout_ms, 20000);
    assert_int_equal(u->retries, 2);
    assert_int_equal(u->max_fails, 0);
    assert_int_equal(u->fail_timeout_ms, 5000);
    assert_string_equal(u->health_check, "HEAD /healthz");
    assert_int_equal(u->health_interval_ms, 3000);
    assert_int_equal(u->health_timeout_ms, 1000);
    assert_true(u->tls);
    assert_false(u->tls_verify);
    assert_string_equal(u->tls_ca, "/etc/ssl/private-ca.pem");
    assert_int_equal(u->tls_ca_line, u->line + 20); /* for tls.c's errors about the file */
    assert_string_equal(u->tls_sni, "app.internal");
    assert_null(u->tls_client); /* main attaches it with the TLS set */

    /* Every default of [upstream]. */
    const struct wr_upstream_cfg *m = &cfg->upstreams[1];
    assert_string_equal(m->servers[0].addr.text, "[::1]:9000");
    assert_int_equal(m->balance, WR_BALANCE_ROUND_ROBIN);
    assert_string_equal(m->hash_key, "client_ip");
    assert_int_equal(m->keepalive, 32);
    assert_int_equal(m->keepalive_timeout_ms, 60000);
    assert_int_equal(m->connect_timeout_ms, 2000);
    assert_int_equal(m->send_timeout_ms, 30000);
    assert_int_equal(m->read_timeout_ms, 30000);
    assert_int_equal(m->retries, 1);
    assert_int_equal(m->max_fails, 3);
    assert_int_equal(m->fail_timeout_ms, 10000);
    assert_null(m->health_check);
    assert_int_equal(m->health_interval_ms, 5000);
    assert_int_equal(m->health_timeout_ms, 2000);
    assert_false(m->tls);
    assert_true(m->tls_verify);
    assert_string_equal(m->tls_ca, "/etc/ssl/certs/ca-certificates.crt");
    assert_int_equal(m->tls_ca_line, m->line); /* the default: the section's line */
    assert_null(m->tls_sni);
}

static void check_full_api_route(const struct wr_config *cfg)
{
    const struct wr_route *r = &cfg->routes[0];
    assert_string_equal(r->name, "api");
    assert_int_equal(r->line, 43);
    assert_int_equal(r->match_kind, WR_ROUTE_REGEX);
    assert_string_equal(r->pattern, "^/api/(v[0-9]+)/(.*)$");
    assert_int_equal(r->pattern_len, strlen(r->pattern));
    assert_non_null(r->regex);
    assert_int_equal(r->n_regex_captures, 2);
    assert_int_equal(r->n_hosts, 2);
    assert_string_equal(r->hosts[0], "api.example.org");
    assert_string_equal(r->hosts[1], "*.example.net");
    assert_int_equal(r->method_mask, BIT(WR_HTTP_GET) | BIT(WR_HTTP_HEAD) | BIT(WR_HTTP_POST));
    assert_int_equal(r->n_other_methods, 1);
    assert_string_equal(r->other_methods[0], "PROPFIND");
    assert_string_equal(r->allow, "GET, HEAD, POST, PROPFIND");
    assert_int_equal(r->action, WR_ACTION_PROXY);
    assert_string_equal(r->proxy, "app");
    assert_ptr_equal(r->upstream, &cfg->upstreams[0]);
    assert_string_equal(r->rewrite.text, "/$1/$2");
    assert_int_equal(r->rewrite.max_capture, 2);
    assert_false(r->preserve_host);
    assert_false(r->forwarded_headers);
    assert_true(r->websocket);
    assert_int_equal(r->websocket_timeout_ms, 2 * 3600 * 1000);
    assert_int_equal(r->n_set_headers, 2);
    assert_string_equal(r->set_headers[0].name, "X-Env");
    assert_string_equal(r->set_headers[0].value.text, "prod");
    assert_string_equal(r->set_headers[1].name, "X-Version");
    assert_int_equal(r->set_headers[1].value.max_capture, 1);
    assert_int_equal(r->n_add_headers, 1);
    assert_string_equal(r->add_headers[0].name, "X-Frame-Options");
    assert_string_equal(r->add_headers[0].value.text, "DENY");
    assert_null(r->strip_prefix);
}

static void check_full_other_routes(const struct wr_config *cfg)
{
    assert_int_equal(cfg->n_routes, 6);
    const struct wr_route *a = &cfg->routes[1];
    assert_string_equal(a->name, "assets");
    assert_int_equal(a->match_kind, WR_ROUTE_PREFIX);
    assert_string_equal(a->pattern, "/static/");
    assert_int_equal(a->method_mask, BIT(WR_HTTP_GET) | BIT(WR_HTTP_HEAD));
    assert_string_equal(a->allow, "GET, HEAD");
    assert_int_equal(a->action, WR_ACTION_STATIC);
    assert_string_equal(a->root, root_dir);
    assert_string_equal(a->strip_prefix, "/static");
    assert_string_equal(a->index, "home.html");
    assert_true(a->autoindex);
    assert_true(a->precompressed);
    assert_true(a->has_expires);
    assert_int_equal(a->expires_ms, 3600000);
    assert_true(a->follow_symlinks);
    assert_true(a->dotfiles);
    assert_int_equal(a->n_add_headers, 2);
    assert_int_equal(a->add_headers[1].value.parts[0].var, WR_TMPL_HOST);

    const struct wr_route *o = &cfg->routes[2];
    assert_int_equal(o->match_kind, WR_ROUTE_EXACT);
    assert_int_equal(o->action, WR_ACTION_REDIRECT);
    assert_int_equal(o->status, 301);
    assert_string_equal(o->redirect_target.text, "https://$host/new");

    const struct wr_route *p = &cfg->routes[3];
    assert_int_equal(p->action, WR_ACTION_RETURN);
    assert_int_equal(p->status, 200);
    assert_string_equal(p->return_body, "ok");
    assert_int_equal(p->return_body_len, 2);
    assert_int_equal(cfg->routes[4].status, 204);
    assert_string_equal(cfg->routes[4].return_body, "");
    assert_int_equal(cfg->routes[4].return_body_len, 0);
}

/* Every default of [route], on the proxy route that sets nothing else. */
static void check_route_defaults(const struct wr_route *f, const struct wr_config *cfg)
{
    assert_int_equal(f->action, WR_ACTION_PROXY);
    assert_ptr_equal(f->upstream, &cfg->upstreams[1]);
    assert_int_equal(f->n_hosts, 0);
    assert_int_equal(f->method_mask, 0);
    assert_int_equal(f->n_other_methods, 0);
    assert_null(f->allow);
    assert_string_equal(f->index, "index.html");
    assert_false(f->autoindex);
    assert_false(f->precompressed);
    assert_false(f->follow_symlinks);
    assert_false(f->dotfiles);
    assert_false(f->has_expires);
    assert_null(f->rewrite.text);
    assert_true(f->preserve_host);
    assert_true(f->forwarded_headers);
    assert_false(f->websocket);
    assert_int_equal(f->websocket_timeout_ms, 3600000);
    assert_int_equal(f->n_set_headers, 0);
    assert_int_equal(f->n_add_headers, 0);
}

static void test_full_file(void **state)
{
    (void)state;
    struct wr_config *cfg = load_full();
    assert_string_equal(cfg->path, "t.ini");
    check_full_server(cfg);
    check_full_tls(cfg);
    check_full_upstreams(cfg);
    check_full_api_route(cfg);
    check_full_other_routes(cfg);
    check_route_defaults(&cfg->routes[5], cfg);
    wr_config_unref(cfg);
}

static void test_full_file_regex_runs(void **state)
{
    (void)state;
    struct wr_config *cfg = load_full();
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    const char *path = "/api/v2/users";
    int rc = pcre2_match(cfg->routes[0].regex, (PCRE2_SPTR)path, strlen(path), 0, 0, md, NULL);
    assert_int_equal(rc, 3);
    pcre2_match_data_free(md);
    wr_config_unref(cfg);
}

static void test_defaults(void **state)
{
    (void)state;
    struct wr_config *cfg = parse_ok("[server]\nlisten = 127.0.0.1:8080\n");
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    const struct wr_server_cfg *s = &cfg->server;
    assert_int_equal(s->n_workers, cpus > 0 ? (unsigned)cpus : 1u);
    assert_null(s->user);
    assert_null(s->group);
    assert_int_equal(s->max_connections, 20000);
    assert_string_equal(s->server_header, "weir");
    assert_null(s->access_log);
    assert_int_equal(s->access_log_format.kind, WR_LOG_KIND_COMBINED);
    assert_string_equal(s->error_log, "stderr");
    assert_int_equal(s->log_level, WR_LOG_INFO);
    const struct wr_limits_cfg *l = &cfg->limits;
    assert_int_equal(l->header_timeout_ms, 10000);
    assert_int_equal(l->body_timeout_ms, 60000);
    assert_int_equal(l->keepalive_timeout_ms, 75000);
    assert_int_equal(l->send_timeout_ms, 60000);
    assert_int_equal(l->max_header_bytes, 16384);
    assert_int_equal(l->max_body_bytes, 10 * 1024 * 1024);
    assert_int_equal(l->max_requests_per_connection, 1000);
    assert_int_equal(l->shutdown_timeout_ms, 30000);
    assert_int_equal(l->max_connections_per_ip, 0);
    assert_int_equal(l->max_headers, 100);
    assert_int_equal(cfg->n_tls, 0);
    assert_false(cfg->has_default_tls);
    assert_int_equal(cfg->n_upstreams, 0);
    assert_int_equal(cfg->n_routes, 0);
    assert_false(cfg->admin.is_enabled);
    wr_config_unref(cfg);
}

static void test_tls_defaults(void **state)
{
    (void)state;
    struct wr_config *cfg = parse_ok("[server]\nlisten = *:443 tls\n"
                                     "[tls]\ncert = /c\nkey = /k\n");
    const struct wr_tls_cfg *t = &cfg->tls[0];
    assert_string_equal(t->protocols, "TLSv1.2 TLSv1.3");
    assert_string_equal(t->ciphers, "ECDHE+AESGCM:ECDHE+CHACHA20");
    assert_true(t->session_tickets);
    assert_int_equal(t->handshake_timeout_ms, 10000);
    assert_string_equal(t->alpn, "h2 http/1.1"); /* issue 15: h2 on by default */
    wr_config_unref(cfg);
}

/* issue 15: "h2c" asks a plain listener for HTTP/2 with prior knowledge too. */
static void issue_15_listen_h2c(void **state)
{
    (void)state;
    struct wr_config *cfg = parse_ok("[server]\nlisten = 127.0.0.1:8080 h2c\n"
                                     "listen = 127.0.0.1:8081\n");
    assert_true(cfg->server.listens[0].is_h2c);
    assert_false(cfg->server.listens[0].is_tls);
    assert_false(cfg->server.listens[1].is_h2c);
    wr_config_unref(cfg);
}

/* cert and key repeat in pairs: an ECDSA and an RSA certificate on one name. */
static void test_tls_two_pairs(void **state)
{
    (void)state;
    struct wr_config *cfg = parse_ok("[server]\nlisten = *:443 tls\n"
                                     "[tls]\ncert = /ec.crt\nkey = /ec.key\n"
                                     "cert = /rsa.crt\nkey = /rsa.key\n");
    const struct wr_tls_cfg *t = &cfg->tls[0];
    assert_int_equal(t->n_certs, 2);
    assert_int_equal(t->n_keys, 2);
    assert_string_equal(t->certs[0], "/ec.crt");
    assert_string_equal(t->keys[0], "/ec.key");
    assert_string_equal(t->certs[1], "/rsa.crt");
    assert_string_equal(t->keys[1], "/rsa.key");
    wr_config_unref(cfg);
}

static void test_values_edge_cases(void **state)
{
    (void)state;
    struct wr_config *cfg = parse_ok(
        "\xEF\xBB\xBF[server]\r\n"           /* BOM and CRLF */
        "listen = 127.0.0.1:8080\r\n"
        "workers = auto\n"
        "server_header = weir/1 (test)\n"
        "access_log = stderr\n"
        "[route m]\n"
        "match = exact:/m\n"
        "methods = DELETE OPTIONS GET FOO FOO\n"
        "return = 200   two  spaces\n"
        "[route h]\n"
        "match = regex:^/h/(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)$\n"
        "host = [::1] LOCALHOST\n"
        "redirect = 308 /x/$9?$$\n");
    assert_string_equal(cfg->server.server_header, "weir/1 (test)");
    assert_string_equal(cfg->server.access_log, "stderr");
    const struct wr_route *m = &cfg->routes[0];
    assert_string_equal(m->allow, "GET, HEAD, DELETE, OPTIONS, FOO");
    assert_int_equal(m->n_other_methods, 1);
    assert_string_equal(m->return_body, "  two  spaces");
    const struct wr_route *h = &cfg->routes[1];
    assert_int_equal(h->n_regex_captures, 10);
    assert_string_equal(h->hosts[0], "[::1]");
    assert_string_equal(h->hosts[1], "localhost");
    assert_int_equal(h->status, 308);
    wr_config_unref(cfg);
}

/* The abuse limits: [limits] max_connections_per_ip, max_headers, and a
 * route's rate_limit (r/s, r/m, burst defaulting to the rate's count). */
static void test_abuse_limits(void **state)
{
    (void)state;
    struct wr_config *cfg = parse_ok("[server]\nlisten = 127.0.0.1:8080\n"
                                     "[limits]\nmax_connections_per_ip = 64\nmax_headers = 20\n"
                                     "[route a]\nmatch = exact:/a\nreturn = 200\n"
                                     "rate_limit = 100r/s burst=200\n"
                                     "[route b]\nmatch = exact:/b\nredirect = 301 /\n"
                                     "rate_limit = 30R/m\n"
                                     "[route c]\nmatch = exact:/c\nreturn = 200\n"
                                     "[route d]\nmatch = exact:/d\nreturn = 200\n"
                                     "rate_limit = 1000000r/s   burst=1\n");
    assert_int_equal(cfg->limits.max_connections_per_ip, 64);
    assert_int_equal(cfg->limits.max_headers, 20);
    assert_int_equal(cfg->routes[0].rate_limit.interval_us, 10000);
    assert_int_equal(cfg->routes[0].rate_limit.burst, 200);
    assert_int_equal(cfg->routes[1].rate_limit.interval_us, 2000000);
    assert_int_equal(cfg->routes[1].rate_limit.burst, 30);
    assert_int_equal(cfg->routes[2].rate_limit.interval_us, 0);
    assert_int_equal(cfg->routes[3].rate_limit.interval_us, 1);
    assert_int_equal(cfg->routes[3].rate_limit.burst, 1);
    wr_config_unref(cfg);
}

static void test_ref_unref(void **state)
{
    (void)state;
    struct wr_config *cfg = parse_ok("[server]\nlisten = 127.0.0.1:8080\n");
    assert_ptr_equal(wr_config_ref(cfg), cfg);
    assert_int_equal(atomic_load(&cfg->refs), 2);
    wr_config_unref(cfg);
    assert_int_equal(atomic_load(&cfg->refs), 1);
    wr_config_unref(cfg); /* frees; ASan reports a leak otherwise */
    wr_config_unref(NULL);
}

struct bad_case {
    const char *what;
    const char *text;
    const char *errors[MAX_ERRORS]; /* expected lines, in order; NULL-terminated */
};

#define SERVER "[server]\nlisten = 127.0.0.1:8080\n" /* lines 1-2 */

static const struct bad_case bad_cases[] = {
    {"unknown section", SERVER "[servers]\nworkers = 2\n",
     {"t.ini:3: [servers]: unknown section"}},
    {"unknown key", SERVER "listenn = 1\n", {"t.ini:3: [server] listenn: unknown key"}},
    {"bad duration", SERVER "[limits]\nheader_timeout = 10x\n",
     {"t.ini:4: [limits] header_timeout: \"10x\" is not a duration (e.g. 250ms, 10s, 5m, 1h, "
      "2d)"}},
    {"duration out of range", SERVER "[limits]\nheader_timeout = 0\n",
     {"t.ini:4: [limits] header_timeout: \"0\" is out of range: must be at least 1ms"}},
    {"bad size", SERVER "[limits]\nmax_body_size = 10mb\n",
     {"t.ini:4: [limits] max_body_size: \"10mb\" is not a size (e.g. 512, 16k, 10m, 1g)"}},
    {"size out of range", SERVER "[limits]\nmax_header_size = 512\n",
     {"t.ini:4: [limits] max_header_size: \"512\" is out of range: must be between 1k and 1m"}},
    {"max_headers above the parser's", SERVER "[limits]\nmax_headers = 101\n",
     {"t.ini:4: [limits] max_headers: \"101\" is out of range: must be between 1 and 100"}},
    {"max_headers zero", SERVER "[limits]\nmax_headers = 0\n",
     {"t.ini:4: [limits] max_headers: \"0\" is out of range: must be between 1 and 100"}},
    {"bad max_connections_per_ip", SERVER "[limits]\nmax_connections_per_ip = -1\n",
     {"t.ini:4: [limits] max_connections_per_ip: \"-1\" is not a number"}},
    {"rate_limit without unit", SERVER "[route r]\nmatch = exact:/\nreturn = 200\n"
     "rate_limit = 100\n",
     {"t.ini:6: [route r] rate_limit: \"100\" is not a rate (e.g. 100r/s, 30r/m)"}},
    {"rate_limit per hour", SERVER "[route r]\nmatch = exact:/\nreturn = 200\n"
     "rate_limit = 100r/h\n",
     {"t.ini:6: [route r] rate_limit: \"100r/h\" is not a rate (e.g. 100r/s, 30r/m)"}},
    {"rate_limit zero", SERVER "[route r]\nmatch = exact:/\nreturn = 200\n"
     "rate_limit = 0r/s\n",
     {"t.ini:6: [route r] rate_limit: rate 0 must be between 1 and 1000000 requests"}},
    {"rate_limit too fast", SERVER "[route r]\nmatch = exact:/\nreturn = 200\n"
     "rate_limit = 1000001r/s\n",
     {"t.ini:6: [route r] rate_limit: rate 1000001 must be between 1 and 1000000 requests"}},
    {"rate_limit bad burst", SERVER "[route r]\nmatch = exact:/\nreturn = 200\n"
     "rate_limit = 10r/s burst=x\n",
     {"t.ini:6: [route r] rate_limit: \"burst=x\" should be burst=N"}},
    {"rate_limit burst zero", SERVER "[route r]\nmatch = exact:/\nreturn = 200\n"
     "rate_limit = 10r/s burst=0\n",
     {"t.ini:6: [route r] rate_limit: burst 0 must be between 1 and 1000000"}},
    {"rate_limit trailing word", SERVER "[route r]\nmatch = exact:/\nreturn = 200\n"
     "rate_limit = 10r/s burst=5 nodelay\n",
     {"t.ini:6: [route r] rate_limit: \"10r/s burst=5 nodelay\" must be RATE [burst=N], e.g. "
      "100r/s burst=200"}},
    {"rate_limit twice", SERVER "[route r]\nmatch = exact:/\nreturn = 200\n"
     "rate_limit = 10r/s\nrate_limit = 20r/s\n",
     {"t.ini:7: [route r] rate_limit: given twice, first at line 6"}},
    {"bad bool", SERVER "[upstream a]\nserver = 127.0.0.1:1\ntls = maybe\n",
     {"t.ini:5: [upstream a] tls: \"maybe\" is not on or off (also yes/no, true/false)"}},
    {"bad number", SERVER "max_connections = 0\nworkers = lots\n",
     {"t.ini:3: [server] max_connections: \"0\" is out of range: must be at least 1",
      "t.ini:4: [server] workers: \"lots\" is not a number or auto"}},
    {"bad enum", SERVER "log_level = verbose\n",
     {"t.ini:3: [server] log_level: \"verbose\" is not one of: error, warn, info, debug"}},
    {"bad listen", "[server]\nlisten = 127.0.0.1:99999\n",
     {"t.ini:2: [server] listen: \"127.0.0.1:99999\" is not an address (IPv4:port, "
      "[IPv6]:port, *:port or unix:/path)"}},
    {"listen flag", SERVER "listen = 127.0.0.1:8443 ssl\n",
     {"t.ini:3: [server] listen: unknown flag \"ssl\" (\"tls\", \"h2c\" or \"proxy_protocol\")"}},
    {"issue_15_h2c_on_tls", SERVER "listen = 127.0.0.1:8443 tls h2c\n[tls]\ncert = /c\nkey = /k\n",
     {"t.ini:3: [server] listen: h2c is for plain listeners (a tls listener offers h2 through "
      "[tls] alpn)"}},
    {"issue_15_flag_twice", SERVER "listen = 127.0.0.1:8080 h2c h2c\n",
     {"t.ini:3: [server] listen: flag \"h2c\" given twice"}},
    {"listen twice", SERVER "listen = 127.0.0.1:8080\n",
     {"t.ini:3: [server] listen: 127.0.0.1:8080 is already listed at line 2"}},
    {"duplicate key", SERVER "workers = 2\nworkers = 4\n",
     {"t.ini:4: [server] workers: given twice, first at line 3"}},
    {"duplicate route", SERVER "[route a]\nmatch = exact:/\nreturn = 200\n[route a]\n",
     {"t.ini:6: [route a]: given twice, first at line 3"}},
    {"duplicate server section", SERVER "[server]\nlisten = 127.0.0.1:9\n",
     {"t.ini:3: [server]: given twice, first at line 1"}},
    {"duplicate upstream", SERVER "[upstream x]\nserver = 127.0.0.1:1\n[ upstream  x ]\n",
     {"t.ini:5: [upstream x]: given twice, first at line 3"}},
    {"missing match", SERVER "[route r]\nreturn = 200 ok\n",
     {"t.ini:3: [route r] match: required (exact:PATH, prefix:PATH or regex:PATTERN)"}},
    {"no action", SERVER "[route r]\nmatch = exact:/\n",
     {"t.ini:3: [route r]: has no action; a route has exactly one action: root, proxy, "
      "redirect or return"}},
    {"two actions", SERVER "[route r]\nmatch = exact:/\nroot = /\nreturn = 200\n",
     {"t.ini:3: [route r]: has both root and return; a route has exactly one action: root, "
      "proxy, redirect or return"}},
    {"three actions, named in file order",
     SERVER "[route r]\nmatch = exact:/\nreturn = 200\nproxy = u\nroot = /\n"
            "[upstream u]\nserver = 127.0.0.1:9\n",
     {"t.ini:3: [route r]: has both return and proxy; a route has exactly one action: root, "
      "proxy, redirect or return"}},
    {"dangling proxy",
     SERVER "[route api]\nmatch = prefix:/\nproxy = ap\n[upstream app]\nserver = 127.0.0.1:9\n",
     {"t.ini:5: [route api] proxy: no upstream named \"ap\""}},
    {"bad regex", SERVER "[route r]\nmatch = regex:^/(a\nreturn = 200\n",
     {"t.ini:4: [route r] match: bad regex: missing closing parenthesis at offset 4"}},
    {"capture beyond the regex",
     SERVER "[route r]\nmatch = regex:^/(a)$\nrewrite = /$2\nproxy = u\n"
            "[upstream u]\nserver = 127.0.0.1:9\n",
     {"t.ini:5: [route r] rewrite: uses $2 but the regex has 1 capture group"}},
    {"capture without regex", SERVER "[route r]\nmatch = exact:/\nredirect = 302 /$1\n",
     {"t.ini:5: [route r] redirect: uses $1 but match is not a regex:"}},
    {"capture in a header, match later",
     SERVER "[route r]\nadd_header = X-A: $1\nadd_header = X-B: $3\n"
            "match = regex:^/(a)(b)\nreturn = 200\n",
     {"t.ini:5: [route r] add_header: uses $3 but the regex has 2 capture groups"}},
    {"rewrite with variables and no regex",
     SERVER "[route r]\nmatch = prefix:/a/\nproxy = u\nrewrite = /b$request_uri\n"
            "[upstream u]\nserver = 127.0.0.1:9\n",
     {"t.ini:6: [route r] rewrite: variables need a regex: match; without one, rewrite is a "
      "fixed path"}},
    {"tls listen without [tls]", "[server]\nlisten = 127.0.0.1:8443 tls\n",
     {"t.ini:2: [server] listen: tls needs a [tls] section"}},
    {"static key on a return route", SERVER "[route r]\nmatch = exact:/\nindex = i.html\n"
                                            "return = 200\n",
     {"t.ini:5: [route r] index: only for static routes (root)"}},
    {"proxy key on a static route", SERVER "[route r]\nmatch = prefix:/\nroot = /\n"
                                           "websocket = on\nstrip_prefix = /x\n",
     {"t.ini:6: [route r] websocket: only for proxy routes"}},
    {"static-or-proxy key on a redirect", SERVER "[route r]\nmatch = exact:/\n"
                                                 "strip_prefix = /x\nredirect = 301 /y\n",
     {"t.ini:5: [route r] strip_prefix: only for static and proxy routes"}},
    {"missing root", SERVER "[route r]\nmatch = prefix:/\nroot = /nonexistent-weir-root\n",
     {"t.ini:5: [route r] root: /nonexistent-weir-root: No such file or directory"}},
    {"root is a file", SERVER "[route r]\nmatch = prefix:/\nroot = /dev/null\n",
     {"t.ini:5: [route r] root: /dev/null: Not a directory"}},
    {"unknown variable", SERVER "[route r]\nmatch = exact:/\nreturn = 204\n"
                                "add_header = X-A: $foo\n",
     {"t.ini:6: [route r] add_header: unknown variable $foo"}},
    {"redirect status", SERVER "[route r]\nmatch = exact:/\nredirect = 200 /x\n",
     {"t.ini:5: [route r] redirect: status 200 is not a redirect (301, 302, 303, 307 or 308)"}},
    {"return status", SERVER "[route r]\nmatch = exact:/\nreturn = 99 x\n",
     {"t.ini:5: [route r] return: \"99 x\" must be STATUS [BODY], e.g. 200 ok"}},
    {"204 with a body", SERVER "[route r]\nmatch = exact:/\nreturn = 204 x\n",
     {"t.ini:5: [route r] return: status 204 has no body"}},
    {"match path", SERVER "[route r]\nmatch = prefix:static/\nreturn = 200\n"
                          "[route s]\nmatch = exact:/a/../b\nreturn = 200\n",
     {"t.ini:4: [route r] match: \"static/\" must start with /",
      "t.ini:7: [route s] match: \"/a/../b\" never matches: request paths are normalised (no "
      "//, /./ or /../)"}},
    {"match kind", SERVER "[route r]\nmatch = /x\nreturn = 200\n",
     {"t.ini:4: [route r] match: \"/x\" must be exact:PATH, prefix:PATH or regex:PATTERN"}},
    {"lower-case method", SERVER "[route r]\nmatch = exact:/\nmethods = get\nreturn = 200\n",
     {"t.ini:5: [route r] methods: \"get\": method names are case-sensitive; did you mean "
      "GET?"}},
    {"bad host", SERVER "[route r]\nmatch = exact:/\nhost = example.org:80\nreturn = 200\n",
     {"t.ini:5: [route r] host: \"example.org:80\": a host name here has no port"}},
    {"managed header", SERVER "[route r]\nmatch = exact:/\nreturn = 200\n"
                              "add_header = Content-Length: 5\n",
     {"t.ini:6: [route r] add_header: Content-Length is managed by weir and cannot be set"}},
    {"header without colon", SERVER "[route r]\nmatch = exact:/\nreturn = 200\n"
                                    "add_header = X-Frame-Options DENY\n",
     {"t.ini:6: [route r] add_header: \"X-Frame-Options DENY\" must be \"Name: value\""}},
    {"old TLS", SERVER "[tls]\ncert = /c\nkey = /k\nprotocols = TLSv1.1 TLSv1.2\n",
     {"t.ini:6: [tls] protocols: TLSv1.1 is not supported (use TLSv1.2 and/or TLSv1.3)"}},
    {"issue_15_alpn_h2c", SERVER "[tls]\ncert = /c\nkey = /k\nalpn = h2c http/1.1\n",
     {"t.ini:6: [tls] alpn: h2c is not supported (h2 and/or http/1.1)"}},
    {"tls without cert", SERVER "[tls]\nkey = /k\nnames = a.example\n[tls b]\ncert = /c\n",
     {"t.ini:3: [tls] cert: required",
      "t.ini:5: [tls] names: only for [tls NAME] sections; [tls] answers every other name",
      "t.ini:6: [tls b] key: required",
      "t.ini:6: [tls b] names: required: the server names this certificate answers for"}},
    {"cert without key", SERVER "[tls]\ncert = /a\nkey = /k\ncert = /b\n",
     {"t.ini:5: [tls] key: each cert needs its key, in the same order"}},
    {"five certs",
     SERVER "[tls]\ncert = /a\ncert = /b\ncert = /c\ncert = /d\ncert = /e\nkey = /k\n",
     {"t.ini:8: [tls] cert: at most 4 per section (one per key type)",
      "t.ini:9: [tls] key: each cert needs its key, in the same order"}},
    {"SNI name twice", SERVER "[tls a]\nnames = x.example\ncert = /c\nkey = /k\n"
                              "[tls b]\nnames = X.example\ncert = /c\nkey = /k\n",
     {"t.ini:8: [tls b] names: \"x.example\" is already a name of [tls a]"}},
    {"upstream without server", SERVER "[upstream u]\nbalance = random\nhash_key = uri\n",
     {"t.ini:3: [upstream u] server: at least one server is required",
      "t.ini:5: [upstream u] hash_key: only used with balance = hash"}},
    {"upstream server forms",
     SERVER "[upstream u]\nserver = app.intern@l:9000\nserver = 0.0.0.0:9000\n"
            "server = 127.0.0.1:9000 weight=0\nserver = 127.0.0.1:9000 backup\n"
            "server = app.internal:0\nserver = no-such-host.invalid:80 weight=0\n",
     {"t.ini:4: [upstream u] server: \"app.intern@l:9000\" is not an address (IPv4:port, "
      "[IPv6]:port, name:port or unix:/path)",
      "t.ini:5: [upstream u] server: \"0.0.0.0:9000\" is not a server address",
      "t.ini:6: [upstream u] server: \"weight=0\": weight must be a number from 1 to 100",
      "t.ini:7: [upstream u] server: unknown option \"backup\" (only weight=N)",
      "t.ini:8: [upstream u] server: \"app.internal:0\" is not an address (port 1..65535)",
      /* a bad option is reported before any lookup is made */
      "t.ini:9: [upstream u] server: \"weight=0\": weight must be a number from 1 to 100"}},
    {"health check", SERVER "[upstream u]\nserver = 127.0.0.1:1\nhealth_check = /healthz\n",
     {"t.ini:5: [upstream u] health_check: \"/healthz\" must be METHOD /path, e.g. GET "
      "/healthz"}},
    {"hash key", SERVER "[upstream u]\nserver = 127.0.0.1:1\nbalance = hash\n"
                        "hash_key = header:\n",
     {"t.ini:6: [upstream u] hash_key: \"header:\" is not client_ip, uri, header:NAME or "
      "cookie:NAME"}},
    {"no [server]", "[limits]\n",
     {"t.ini:0: [server] listen: at least one listen is required"}},
    {"[server] without listen", "; hello\n[server]\nworkers = 2\n",
     {"t.ini:2: [server] listen: at least one listen is required"}},
    {"key outside any section", "workers = 2\n" SERVER,
     {"t.ini:1: workers: outside any section"}},
    {"line without =", SERVER "just words\n",
     {"t.ini:3: expected \"key = value\", a [section] or a comment"}},
    {"indented continuation", SERVER "   127.0.0.1:8081\n",
     {"t.ini:3: expected \"key = value\", a [section] or a comment"}},
    {"missing key name", SERVER "= 5\n", {"t.ini:3: missing key before '='"}},
    {"colon instead of =", SERVER "workers: 2\n",
     {"t.ini:3: expected \"key = value\", a [section] or a comment"}},
    {"localhost with a bad port", SERVER "[upstream u]\nserver = localhost:0\n",
     {"t.ini:4: [upstream u] server: \"localhost:0\" is not an address (port 1..65535)"}},
    {"empty value", SERVER "user =\n", {"t.ini:3: [server] user: needs a value"}},
    {"control character", SERVER "user = a\x01z\n",
     {"t.ini:3: [server] user: contains a control character"}},
    {"section headers", SERVER "[route\n[route]\n[server x]\n[route a b]\n[route a] x\n"
                               "[route a/b]\n",
     {"t.ini:3: section header without ]", "t.ini:4: [route]: needs a name: [route NAME]",
      "t.ini:5: [server x]: [server] takes no name",
      "t.ini:6: [route a b]: a section name is one word", "t.ini:7: unexpected text after ]",
      "t.ini:8: [route a/b]: a name uses letters, digits, '.', '_', '-' and '*'"}},
    {"error log off", SERVER "error_log = off\n",
     {"t.ini:3: [server] error_log: cannot be off (a path or stderr)"}},
    {"multiple errors, in line order",
     "[server]\nlisten = 127.0.0.1:8443 tls\nworkers = 0\n"
     "[route a]\nmatch = exact:/\nproxy = nowhere\nindex = x\n"
     "[route b]\nmatch = regex:(\n"
     "[limits]\nbody_timeout = soon\n"
     "[bogus]\n",
     {"t.ini:2: [server] listen: tls needs a [tls] section",
      "t.ini:3: [server] workers: \"0\" is out of range: must be between 1 and 1024, or auto",
      "t.ini:6: [route a] proxy: no upstream named \"nowhere\"",
      "t.ini:7: [route a] index: only for static routes (root)",
      "t.ini:8: [route b]: has no action; a route has exactly one action: root, proxy, "
      "redirect or return",
      "t.ini:9: [route b] match: bad regex: missing closing parenthesis at offset 1",
      "t.ini:11: [limits] body_timeout: \"soon\" is not a duration (e.g. 250ms, 10s, 5m, 1h, "
      "2d)",
      "t.ini:12: [bogus]: unknown section"}},
};

static void expect_errors(const struct bad_case *c)
{
    struct wr_config_errors errs = {0};
    struct wr_config *cfg = parse(c->text, &errs);
    size_t n_want = 0;
    while (n_want < MAX_ERRORS && c->errors[n_want] != NULL)
        n_want++;
    bool same = cfg == NULL && errs.n_lines == n_want;
    for (size_t i = 0; same && i < n_want; i++)
        same = strcmp(errs.lines[i], c->errors[i]) == 0;
    if (!same) {
        print_error("case \"%s\": got %s and\n", c->what, cfg ? "a config" : "NULL");
        for (size_t i = 0; i < errs.n_lines; i++)
            print_error("  got:  %s\n", errs.lines[i]);
        for (size_t i = 0; i < n_want; i++)
            print_error("  want: %s\n", c->errors[i]);
    }
    wr_config_unref(cfg);
    wr_config_errors_fini(&errs);
    assert_true(same);
}

static void test_bad_snippets(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_OF(bad_cases); i++)
        expect_errors(&bad_cases[i]);
}

/* [http2]: defaults without the section (100 streams, 3m idle, 4k HPACK
 * table), the keys read, and errors naming file:line and key. */
static void issue_15_http2_section(void **state)
{
    (void)state;
    struct wr_config *cfg = parse_ok("[server]\nlisten = 127.0.0.1:8080\n");
    assert_int_equal(cfg->http2.max_concurrent_streams, 100);
    assert_int_equal(cfg->http2.idle_timeout_ms, 180000);
    assert_int_equal(cfg->http2.hpack_table_bytes, 4096);
    wr_config_unref(cfg);
    cfg = parse_ok("[server]\nlisten = 127.0.0.1:8080\n[http2]\nmax_concurrent_streams = 8\n"
                   "idle_timeout = 2s\nhpack_table_size = 0\n");
    assert_int_equal(cfg->http2.max_concurrent_streams, 8);
    assert_int_equal(cfg->http2.idle_timeout_ms, 2000);
    assert_int_equal(cfg->http2.hpack_table_bytes, 0);
    wr_config_unref(cfg);
    static const struct bad_case bad[] = {
        {"streams zero", SERVER "[http2]\nmax_concurrent_streams = 0\n",
         {"t.ini:4: [http2] max_concurrent_streams: \"0\" is out of range: must be between 1 "
          "and 1000"}},
        {"hpack too big", SERVER "[http2]\nhpack_table_size = 1m\n",
         {"t.ini:4: [http2] hpack_table_size: \"1m\" is out of range: must be between 0 and "
          "64k"}},
        {"idle zero", SERVER "[http2]\nidle_timeout = 0\n",
         {"t.ini:4: [http2] idle_timeout: \"0\" is out of range: must be at least 1ms"}},
        {"unknown key", SERVER "[http2]\nmax_streams = 5\n",
         {"t.ini:4: [http2] max_streams: unknown key"}},
        {"twice", SERVER "[http2]\n[http2]\n", {"t.ini:4: [http2]: given twice, first at line 3"}},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_errors(&bad[i]);
}

/* Issue 13.2: a strip_prefix that the prefix:/exact: match does not start
 * with loads, with a warning naming file, line, section and key; one that
 * it starts with, or a regex match, loads without one. */
static void issue_13_strip_prefix_warning(void **state)
{
    (void)state;
    struct wr_config_errors errs = {0};
    struct wr_config *cfg = parse(SERVER "[upstream app]\nserver = 127.0.0.1:9000\n"
                                         "[route a]\nmatch = prefix:/\nproxy = app\n"
                                         "strip_prefix = /api\n",
                                  &errs);
    assert_non_null(cfg);
    assert_int_equal(errs.n_lines, 0);
    assert_int_equal(errs.n_warnings, 1);
    assert_string_equal(errs.warnings[0],
                        "t.ini:8: warning: [route a] strip_prefix: \"/api\" is not a prefix of "
                        "match prefix:/; paths without it are sent unchanged");
    wr_config_errors_fini(&errs);
    wr_config_unref(cfg);
    const char *fine[] = {"match = prefix:/api/\n", "match = exact:/api/x\n",
                          "match = regex:^/(.*)$\n"};
    for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
        char text[512];
        snprintf(text, sizeof(text),
                 SERVER "[upstream app]\nserver = 127.0.0.1:9000\n[route a]\n%s"
                        "proxy = app\nstrip_prefix = /api\n",
                 fine[i]);
        cfg = parse(text, &errs);
        assert_non_null(cfg);
        assert_int_equal(errs.n_warnings, 0);
        wr_config_errors_fini(&errs);
        wr_config_unref(cfg);
    }
}

/* Issue 13.23 and 13.21: underscores_in_headers is off unless [server]
 * turns it on, wherever [server] is in the file; a route's own value
 * wins. abort_on_eof is off by default. Both are proxy-route keys. */
static void issue_13_proxy_route_keys(void **state)
{
    (void)state;
    static const char routes[] = "[upstream app]\nserver = 127.0.0.1:9000\n"
                                 "[route inherit]\nmatch = prefix:/a/\nproxy = app\n"
                                 "[route own]\nmatch = prefix:/b/\nproxy = app\n"
                                 "underscores_in_headers = %s\nabort_on_eof = on\n";
    char text[1024];
    snprintf(text, sizeof(text), "%s", SERVER);
    snprintf(text + strlen(text), sizeof(text) - strlen(text), routes, "on");
    struct wr_config *cfg = parse_ok(text);
    assert_false(cfg->server.underscores_in_headers);
    assert_false(cfg->routes[0].underscores_in_headers);
    assert_false(cfg->routes[0].abort_on_eof);
    assert_true(cfg->routes[1].underscores_in_headers);
    assert_true(cfg->routes[1].abort_on_eof);
    wr_config_unref(cfg);
    /* [server] after the routes still gives their default. */
    snprintf(text, sizeof(text), routes, "off");
    snprintf(text + strlen(text), sizeof(text) - strlen(text),
             SERVER "underscores_in_headers = on\n");
    cfg = parse_ok(text);
    assert_true(cfg->server.underscores_in_headers);
    assert_true(cfg->routes[0].underscores_in_headers);
    assert_false(cfg->routes[1].underscores_in_headers);
    wr_config_unref(cfg);
    static const struct bad_case not_proxy[] = {
        {"underscores_in_headers on a return route",
         SERVER "[route r]\nmatch = exact:/\nreturn = 200\nunderscores_in_headers = on\n",
         {"t.ini:6: [route r] underscores_in_headers: only for proxy routes"}},
        {"abort_on_eof on a static route",
         SERVER "[route r]\nmatch = exact:/\nroot = /\nabort_on_eof = maybe\n",
         {"t.ini:6: [route r] abort_on_eof: \"maybe\" is not on or off (also yes/no, "
          "true/false)",
          "t.ini:6: [route r] abort_on_eof: only for proxy routes"}},
    };
    for (size_t i = 0; i < N_OF(not_proxy); i++)
        expect_errors(&not_proxy[i]);
}

/* Issue 13.14: every duration key takes up to 365d; one millisecond more,
 * or a huge digit string, is an error naming file, line, section and key
 * (a wrapped `now + timeout` would make "forever" mean "at once"). */
static void issue_13_duration_max(void **state)
{
    (void)state;
    struct wr_config *cfg = parse_ok(SERVER "[limits]\nkeepalive_timeout = 365d\n"
                                            "shutdown_timeout = 31536000000ms\n"
                                            "[route s]\nmatch = prefix:/\nroot = /\n"
                                            "expires = 8760h\n");
    assert_int_equal(cfg->limits.keepalive_timeout_ms, WR_UNITS_DURATION_MAX_MS);
    assert_int_equal(cfg->limits.shutdown_timeout_ms, 31536000000u);
    assert_int_equal(cfg->routes[0].expires_ms, WR_UNITS_DURATION_MAX_MS);
    wr_config_unref(cfg);
    const struct bad_case c = {
        "durations past the maximum",
        SERVER "[limits]\nkeepalive_timeout = 31536000001ms\nheader_timeout = 366d\n"
               "[upstream u]\nserver = 127.0.0.1:9\n"
               "read_timeout = 99999999999999999999999999999999999999999s\n"
               "[route s]\nmatch = prefix:/\nroot = /\nexpires = 18446744073709551616ms\n",
        {"t.ini:4: [limits] keepalive_timeout: \"31536000001ms\" is longer than the longest "
         "duration, 365d",
         "t.ini:5: [limits] header_timeout: \"366d\" is longer than the longest duration, 365d",
         "t.ini:8: [upstream u] read_timeout: \"99999999999999999999999999999999999999999s\" "
         "is longer than the longest duration, 365d",
         "t.ini:12: [route s] expires: \"18446744073709551616ms\" is longer than the longest "
         "duration, 365d"}};
    expect_errors(&c);
}

/* Issue 13.11: scheme = http | https; unset is any. A scheme no listen
 * serves loads with a warning (the route never matches). */
static void issue_13_scheme_key(void **state)
{
    (void)state;
    struct wr_config *cfg =
        parse_ok("[server]\nlisten = 127.0.0.1:8080\nlisten = 127.0.0.1:8443 tls\n"
                 "[tls]\ncert = /c\nkey = /k\n"
                 "[route to-https]\nscheme = http\nmatch = prefix:/\n"
                 "redirect = 301 https://$host$request_uri\n"
                 "[route site]\nscheme = https\nmatch = prefix:/\nreturn = 200 ok\n"
                 "[route any]\nmatch = prefix:/\nreturn = 200\n");
    assert_int_equal(cfg->routes[0].scheme, WR_ROUTE_SCHEME_HTTP);
    assert_int_equal(cfg->routes[1].scheme, WR_ROUTE_SCHEME_HTTPS);
    assert_int_equal(cfg->routes[2].scheme, WR_ROUTE_SCHEME_ANY);
    wr_config_unref(cfg);

    struct wr_config_errors errs = {0};
    cfg = parse(SERVER "[route a]\nscheme = https\nmatch = prefix:/\nreturn = 200\n", &errs);
    assert_non_null(cfg);
    assert_int_equal(errs.n_lines, 0);
    assert_int_equal(errs.n_warnings, 1);
    assert_string_equal(errs.warnings[0],
                        "t.ini:4: warning: [route a] scheme: no listen serves https (a listen "
                        "with tls): this route never matches");
    wr_config_errors_fini(&errs);
    wr_config_unref(cfg);
    cfg = parse("[route a]\nscheme = http\nmatch = prefix:/\nreturn = 200\n"
                "[tls]\ncert = /c\nkey = /k\n[server]\nlisten = 127.0.0.1:8443 tls\n",
                &errs);
    assert_non_null(cfg);
    assert_int_equal(errs.n_warnings, 1);
    assert_string_equal(errs.warnings[0],
                        "t.ini:2: warning: [route a] scheme: no listen serves plain http (a "
                        "listen without tls): this route never matches");
    wr_config_errors_fini(&errs);
    wr_config_unref(cfg);

    static const struct bad_case bad[] = {
        {"scheme other than http or https",
         SERVER "[route a]\nmatch = prefix:/\nscheme = HTTPS\nreturn = 200\n",
         {"t.ini:5: [route a] scheme: \"HTTPS\" is not one of: http, https"}},
    };
    for (size_t i = 0; i < N_OF(bad); i++)
        expect_errors(&bad[i]);
}

/* Issue 13.17: a route's add_header names that weir writes itself are known
 * at load (replaced_fields, case-insensitive), other names are not in it;
 * hide_header is a repeatable proxy-route key taking one field name. */
static void issue_13_replaced_and_hidden_fields(void **state)
{
    (void)state;
    struct wr_config *cfg =
        parse_ok(SERVER "[upstream app]\nserver = 127.0.0.1:9000\n"
                        "[route s]\nmatch = prefix:/s/\nroot = /\nexpires = 1h\n"
                        "add_header = cache-control: public, max-age=60\n"
                        "add_header = X-Frame-Options: DENY\n"
                        "add_header = Content-Type: text/plain\n"
                        "[route r]\nmatch = exact:/r\nreturn = 200 {}\n"
                        "add_header = Server: edge\n"
                        "[route p]\nmatch = prefix:/\nproxy = app\n"
                        "hide_header = X-Powered-By\nhide_header = x-aspnet-version\n");
    assert_int_equal(cfg->routes[0].replaced_fields,
                     (1u << WR_HTTP_FIELD_CACHE_CONTROL) | (1u << WR_HTTP_FIELD_CONTENT_TYPE));
    assert_int_equal(cfg->routes[0].n_add_headers, 3);
    assert_int_equal(cfg->routes[1].replaced_fields, 1u << WR_HTTP_FIELD_SERVER);
    assert_int_equal(cfg->routes[2].replaced_fields, 0);
    assert_int_equal(cfg->routes[2].n_hide_headers, 2);
    assert_string_equal(cfg->routes[2].hide_headers[0], "X-Powered-By");
    assert_string_equal(cfg->routes[2].hide_headers[1], "x-aspnet-version");
    assert_int_equal(cfg->routes[0].n_hide_headers, 0);
    wr_config_unref(cfg);
    static const struct bad_case bad[] = {
        {"hide_header of a framing field",
         SERVER "[route r]\nmatch = exact:/\nroot = /\nhide_header = Content-Length\n",
         {"t.ini:6: [route r] hide_header: Content-Length is managed by weir and cannot be "
          "hidden"}},
        {"set_response_header of a framing field",
         SERVER "[route r]\nmatch = exact:/\nreturn = 200\n"
         "set_response_header = Transfer-Encoding: chunked always\n",
         {"t.ini:6: [route r] set_response_header: Transfer-Encoding is managed by weir and "
          "cannot be set"}},
        {"hide_header that is not a field name",
         SERVER "[upstream app]\nserver = 127.0.0.1:9000\n"
                "[route p]\nmatch = prefix:/\nproxy = app\nhide_header = X Powered\n",
         {"t.ini:8: [route p] hide_header: \"X Powered\" is not a header name"}},
    };
    for (size_t i = 0; i < N_OF(bad); i++)
        expect_errors(&bad[i]);
}

/* Issue 21.4: add_header / set_response_header with "always", which
 * replace what (per status class), and hide_header on any route. */
static void issue_21_response_header_rules(void **state)
{
    (void)state;
    struct wr_config *cfg =
        parse_ok(SERVER "[route s]\nmatch = prefix:/\nroot = /\n"
                        "add_header = Cache-Control: no-cache always\n"
                        "add_header = X-Frame-Options: DENY\n"
                        "set_response_header = X-Id: $request_id always\n"
                        "add_header = X-Note: ends with always   always\n"
                        "add_header = X-Plain: salways\n"
                        "hide_header = ETag\nhide_header = X-Powered-By\n");
    const struct wr_route *r = &cfg->routes[0];
    assert_int_equal(r->n_add_headers, 5);
    const bool always[] = {true, false, true, true, false};
    const bool replace[] = {false, true, true, false, false};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(r->add_headers[i].is_always, always[i]);
        assert_int_equal(r->add_headers[i].is_replace, replace[i]);
    }
    assert_string_equal(r->add_headers[3].value.text, "ends with always");
    assert_string_equal(r->add_headers[4].value.text, "salways");
    assert_int_equal(r->replaced_fields, 1u << WR_HTTP_FIELD_CACHE_CONTROL);
    assert_int_equal(r->replaced_fields_always, 1u << WR_HTTP_FIELD_CACHE_CONTROL);
    assert_int_equal(r->hidden_fields, 1u << WR_HTTP_FIELD_ETAG);
    assert_int_equal(r->n_hide_headers, 2);
    wr_config_unref(cfg);
}

/* Issue 13.22: exact:* takes OPTIONS * (not with root); CONNECT and methods
 * the parser refuses cannot be listed. */
static void issue_13_asterisk_and_methods(void **state)
{
    (void)state;
    struct wr_config *cfg =
        parse_ok(SERVER "[route star]\nmatch = exact:*\nmethods = OPTIONS\nreturn = 204\n"
                        "[route dav]\nmatch = prefix:/dav/\n"
                        "methods = ABCDEFGHIJKLMNOPQRSTUVWXYZ-_.!~+\nreturn = 200\n");
    assert_int_equal(cfg->routes[0].match_kind, WR_ROUTE_EXACT);
    assert_string_equal(cfg->routes[0].pattern, "*");
    assert_int_equal(cfg->routes[1].n_other_methods, 1);
    wr_config_unref(cfg);
    static const struct bad_case bad[] = {
        {"exact:* for files", SERVER "[route a]\nmatch = exact:*\nroot = /\n",
         {"t.ini:4: [route a] match: exact:* (OPTIONS *) names no file; use return, redirect "
          "or proxy"}},
        {"prefix:*", SERVER "[route a]\nmatch = prefix:*\nreturn = 200\n",
         {"t.ini:4: [route a] match: \"*\" must start with /"}},
        {"CONNECT", SERVER "[route a]\nmatch = prefix:/\nmethods = GET CONNECT\nreturn = 200\n",
         {"t.ini:5: [route a] methods: CONNECT: weir is not a forward proxy (CONNECT gets 405)"}},
        {"method past WR_HTTP_METHOD_MAX",
         SERVER "[route a]\nmatch = prefix:/\nmethods = ABCDEFGHIJKLMNOPQRSTUVWXYZ-_.!~+X\n"
                "return = 200\n",
         {"t.ini:5: [route a] methods: \"ABCDEFGHIJKLMNOPQRSTUVWXYZ-_.!~+X\": longer than 32 "
          "bytes, the longest method weir accepts"}},
    };
    for (size_t i = 0; i < N_OF(bad); i++)
        expect_errors(&bad[i]);
}

/* A physical line of 199 bytes is fine; 200 is reported, and only once. */
static void test_long_lines(void **state)
{
    (void)state;
    /* A long comment line is fine. */
    char *text = malloc(80 * 1024);
    assert_non_null(text);
    char comment[260];
    memset(comment, 'x', sizeof(comment));
    comment[0] = ';';
    comment[259] = '\0';
    snprintf(text, 80 * 1024, SERVER "%s\n", comment);
    wr_config_unref(parse_ok(text));

    /* Values longer than inih's 200-byte buffer arrive whole, inline comment
     * cut: a 1 KiB `return` body, then a short key after it still parses. */
    char body[1025];
    memset(body, 'b', 1024);
    body[1024] = '\0';
    snprintf(text, 80 * 1024,
             SERVER "[route big]\nmatch = exact:/big\nreturn = 200 %s   ; comment\n"
                    "[route small]\nmatch = exact:/s\nreturn = 200 ok\n",
             body);
    struct wr_config *cfg = parse_ok(text);
    assert_int_equal(cfg->n_routes, 2);
    assert_int_equal(cfg->routes[0].return_body_len, 1024);
    assert_memory_equal(cfg->routes[0].return_body, body, 1024);
    assert_string_equal(cfg->routes[1].return_body, "ok");
    wr_config_unref(cfg);

    /* A long section header is an error, and its keys are not taken for the
     * previous section's; a short value of \x01 after a long line is not
     * replaced by the long line's value. */
    char header[300];
    memset(header, 'h', sizeof(header));
    memcpy(header, "[route ", 7);
    header[298] = ']';
    header[299] = '\0';
    snprintf(text, 80 * 1024, SERVER "user = %s\n%s\nworkers = 2\ngroup = \x01\n", body,
             header);
    struct wr_config_errors errs = {0};
    assert_null(parse(text, &errs));
    assert_int_equal(errs.n_lines, 1);
    assert_string_equal(errs.lines[0],
                        "t.ini:4: line too long (max 199 bytes) for anything but key = value");
    wr_config_errors_fini(&errs);
    snprintf(text, 80 * 1024, SERVER "user = %s\ngroup = \x01\n", body);
    struct bad_case stale = {"stale long value", text,
                             {"t.ini:4: [server] group: contains a control character"}};
    expect_errors(&stale);

    /* A long line that is not key = value is still an error at its line. */
    char junk[300];
    memset(junk, 'j', sizeof(junk));
    junk[299] = '\0';
    snprintf(text, 80 * 1024, SERVER "%s\n", junk);
    struct bad_case c = {"long junk", text,
                         {"t.ini:3: line too long (max 199 bytes) for anything but key = value"}};
    expect_errors(&c);

    /* Past the hard limit: one error, nothing split. */
    memcpy(text, SERVER, strlen(SERVER));
    size_t n = strlen(SERVER);
    memcpy(text + n, "user = ", 7);
    memset(text + n + 7, 'u', 70 * 1024);
    text[n + 7 + 70 * 1024] = '\0';
    struct bad_case v = {"huge value", text, {"t.ini:3: line too long (max 65535 bytes)"}};
    expect_errors(&v);
    free(text);
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/weir-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char body[] = SERVER "user = a\0b\n[route x]\nmatch = exact:/\nreturn = 200\n";
    assert_int_equal(write(fd, body, sizeof(body) - 1), (ssize_t)sizeof(body) - 1);
    close(fd);
    struct wr_config_errors errs = {0};
    assert_null(wr_config_load(path, &errs));
    assert_int_equal(errs.n_lines, 1);
    char want[128];
    snprintf(want, sizeof(want), "%s:3: line contains a NUL byte", path);
    assert_string_equal(errs.lines[0], want);
    wr_config_errors_fini(&errs);

    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(SERVER "[route x]\r\nmatch = exact:/\r\nreturn = 200 ok\r\n", f);
    fclose(f);
    struct wr_config *cfg = wr_config_load(path, &errs);
    assert_non_null(cfg);
    assert_string_equal(cfg->path, path);
    assert_string_equal(cfg->routes[0].return_body, "ok");
    wr_config_unref(cfg);
    unlink(path);

    assert_null(wr_config_load(path, &errs));
    assert_int_equal(errs.n_lines, 1);
    snprintf(want, sizeof(want), "%s: No such file or directory", path);
    assert_string_equal(errs.lines[0], want);
    wr_config_errors_fini(&errs);

    assert_null(wr_config_load("/tmp", &errs));
    assert_int_equal(errs.n_lines, 2);
    assert_string_equal(errs.lines[0], "/tmp: Is a directory");
    assert_string_equal(errs.lines[1], "/tmp:0: [server] listen: at least one listen is required");
    wr_config_errors_fini(&errs);
}

/* Relative paths are taken from the directory of the file (its name here). */
static void test_relative_paths(void **state)
{
    (void)state;
    char name[128], site[128], text[512], want[256];
    snprintf(name, sizeof(name), "%s/conf/weir.ini", root_dir);
    snprintf(site, sizeof(site), "%s/conf", root_dir);
    assert_int_equal(mkdir(site, 0700), 0);
    snprintf(site, sizeof(site), "%s/conf/site", root_dir);
    assert_int_equal(mkdir(site, 0700), 0);
    static const char body[] = SERVER "access_log = logs/access.log\nerror_log = /var/log/e\n"
                                      "[tls]\ncert = tls/c.pem\nkey = k.pem\n"
                                      "[route r]\nmatch = prefix:/\nroot = site\n";
    struct wr_config_errors errs = {0};
    struct wr_config *cfg = wr_config_parse_string(body, name, &errs);
    assert_non_null(cfg);
    assert_string_equal(cfg->routes[0].root, site);
    snprintf(want, sizeof(want), "%s/conf/logs/access.log", root_dir);
    assert_string_equal(cfg->server.access_log, want);
    assert_string_equal(cfg->server.error_log, "/var/log/e");
    snprintf(want, sizeof(want), "%s/conf/tls/c.pem", root_dir);
    assert_string_equal(cfg->tls[0].certs[0], want);
    wr_config_unref(cfg);

    snprintf(text, sizeof(text), SERVER "[route r]\nmatch = prefix:/\nroot = nope\n");
    assert_null(wr_config_parse_string(text, name, &errs));
    assert_int_equal(errs.n_lines, 1);
    snprintf(want, sizeof(want),
             "%s:5: [route r] root: %s/conf/nope: No such file or directory", name, root_dir);
    assert_string_equal(errs.lines[0], want);
    wr_config_errors_fini(&errs);
    assert_int_equal(rmdir(site), 0);
    snprintf(site, sizeof(site), "%s/conf", root_dir);
    assert_int_equal(rmdir(site), 0);
}

/* Errors are appended to what errs already holds. */
/* A fake resolver: "two.test" has two addresses, "dup.test" one, others fail. */
static int fake_resolve(const char *host, uint16_t port, struct wr_listen_addr *out, size_t cap,
                        const char **why)
{
    const char *addrs[2] = {"192.0.2.10", "[2001:db8::10]"};
    size_t n = strcmp(host, "two.test") == 0 ? 2 : strcmp(host, "dup.test") == 0 ? 1 : 0;
    if (n == 0) {
        *why = "fake: no such name";
        return -1;
    }
    for (size_t i = 0; i < n && i < cap; i++) {
        char text[64];
        snprintf(text, sizeof(text), "%s:%u", addrs[i], (unsigned)port);
        assert_int_equal(wr_units_parse_listen(text, &out[i]), 0);
    }
    return (int)n;
}

static struct wr_config *parse_opts(const char *text, wr_config_resolve_fn resolve,
                                    struct wr_config_errors *errs)
{
    const struct wr_config_options opts = {.resolve = resolve};
    char *copy = strdup(text);
    assert_non_null(copy);
    struct wr_config *cfg = wr_config_parse_string_opts(copy, "t.ini", &opts, errs);
    free(copy);
    return cfg;
}

/* Every address of a name is one server, same weight and line, in order. */
static void test_resolve_names(void **state)
{
    (void)state;
    struct wr_config_errors errs = {0};
    struct wr_config *cfg = parse_opts(SERVER "[upstream u]\nserver = Two.test:8080 weight=3\n"
                                              "server = localhost:81\nserver = unix:/x.sock\n",
                                       fake_resolve, &errs);
    assert_int_equal(errs.n_lines, 0);
    assert_non_null(cfg);
    const struct wr_upstream_cfg *u = &cfg->upstreams[0];
    assert_int_equal(u->n_servers, 4);
    assert_string_equal(u->servers[0].addr.text, "192.0.2.10:8080");
    assert_string_equal(u->servers[0].label, "Two.test:8080 (192.0.2.10:8080)");
    assert_string_equal(u->servers[0].authority, "Two.test:8080");
    assert_string_equal(u->servers[1].addr.text, "[2001:db8::10]:8080");
    assert_string_equal(u->servers[1].label, "Two.test:8080 ([2001:db8::10]:8080)");
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(u->servers[i].weight, 3);
        assert_int_equal(u->servers[i].line, 4);
    }
    /* localhost: 127.0.0.1 without a lookup, one server, Host as written */
    assert_string_equal(u->servers[2].addr.text, "127.0.0.1:81");
    assert_string_equal(u->servers[2].label, "127.0.0.1:81");
    assert_string_equal(u->servers[2].authority, "localhost:81");
    assert_string_equal(u->servers[3].label, "unix:/x.sock");
    assert_string_equal(u->servers[3].authority, "localhost");
    assert_non_null(u->health);
    assert_int_equal(atomic_load(&u->health[3].check), WR_CHECK_UNKNOWN);
    wr_config_unref(cfg);

    /* A failed lookup names file, line, section, key, the name and why. */
    cfg = parse_opts(SERVER "[upstream u]\nserver = gone.test:80\n", fake_resolve, &errs);
    assert_null(cfg);
    assert_int_equal(errs.n_lines, 1);
    assert_string_equal(errs.lines[0], "t.ini:4: [upstream u] server: cannot resolve "
                                       "\"gone.test\": fake: no such name");
    wr_config_errors_fini(&errs);

    /* No resolver (the fuzz target): names are refused without a lookup. */
    cfg = parse_opts(SERVER "[upstream u]\nserver = two.test:80\nserver = localhost:80\n", NULL,
                     &errs);
    assert_null(cfg);
    assert_int_equal(errs.n_lines, 1);
    assert_string_equal(errs.lines[0], "t.ini:4: [upstream u] server: \"two.test:80\": host "
                                       "names are not resolved here; use an IP address, "
                                       "localhost or unix:/path");
    wr_config_errors_fini(&errs);
}

/* The real resolver (getaddrinfo): /etc/hosts names resolve, .invalid never
 * does (RFC 6761 §6.4), and the error carries gai_strerror's text. */
static void test_resolve_getaddrinfo(void **state)
{
    (void)state;
    struct wr_listen_addr out[WR_CONFIG_MAX_ADDRS_PER_NAME];
    const char *why = NULL;
    int n = wr_config_resolve_getaddrinfo("localhost", 8080, out, WR_CONFIG_MAX_ADDRS_PER_NAME,
                                          &why);
    assert_true(n >= 1);
    for (int i = 0; i < n; i++) {
        assert_true(strcmp(out[i].text, "127.0.0.1:8080") == 0 ||
                    strcmp(out[i].text, "[::1]:8080") == 0);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(out[i].text, out[j].text); /* duplicates dropped */
    }
    struct wr_config_errors errs = {0};
    struct wr_config *cfg = parse(SERVER "[upstream u]\nserver = no-such-host.invalid:80\n", &errs);
    assert_null(cfg);
    assert_int_equal(errs.n_lines, 1);
    const char *want = "t.ini:4: [upstream u] server: cannot resolve \"no-such-host.invalid\": ";
    assert_int_equal(strncmp(errs.lines[0], want, strlen(want)), 0);
    assert_true(strlen(errs.lines[0]) > strlen(want)); /* gai_strerror's text follows */
    wr_config_errors_fini(&errs);
}

static void test_errors_append(void **state)
{
    (void)state;
    struct wr_config_errors errs = {0};
    assert_null(parse("[bogus]\n", &errs));
    assert_null(parse("[server]\n", &errs));
    assert_int_equal(errs.n_lines, 3);
    assert_string_equal(errs.lines[0], "t.ini:0: [server] listen: at least one listen is required");
    assert_string_equal(errs.lines[1], "t.ini:1: [bogus]: unknown section");
    assert_string_equal(errs.lines[2], "t.ini:1: [server] listen: at least one listen is required");
    wr_config_errors_fini(&errs);
    assert_null(errs.lines);
    assert_null(parse("[bogus]\n", NULL)); /* errors may be dropped */
}

/* ---- issue 17: include ------------------------------------------------------ */

/* A scratch directory for include tests, removed with everything in it. */
static char inc_dir[64];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void inc_setup(void)
{
    strcpy(inc_dir, "/tmp/weir-test-include-XXXXXX");
    assert_non_null(mkdtemp(inc_dir));
}

static void inc_teardown(void)
{
    assert_int_equal(nftw(inc_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/* Writes text to inc_dir/rel (its directory made when missing); the full
 * path goes to out when not NULL. */
static void put(const char *rel, const char *text, char *out, size_t cap)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", inc_dir, rel);
    for (char *slash = strchr(path + strlen(inc_dir) + 1, '/'); slash != NULL;
         slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        mkdir(path, 0700); /* may exist */
        *slash = '/';
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    if (out != NULL)
        snprintf(out, cap, "%s", path);
}

/* Loads inc_dir/main.ini; errs collects what it found. */
static struct wr_config *load_main(struct wr_config_errors *errs)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/main.ini", inc_dir);
    return wr_config_load(path, errs);
}

static void assert_where(const struct wr_config *cfg, unsigned pos, const char *rel, unsigned line)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", inc_dir, rel);
    const struct wr_config_where w = wr_config_where(cfg, pos);
    assert_string_equal(w.file, path);
    assert_int_equal(w.line, line);
}

/* Routes come in file order across includes (sorted glob), each with the
 * file and line it was written at; relative paths in an included file are
 * taken from that file's directory; the section an include line stands in
 * goes on after it. */
static void issue_17_include_order_and_where(void **state)
{
    (void)state;
    inc_setup();
    put("site/index.html", "x", NULL, 0);
    put("main.ini", SERVER "[route a]\nmatch = exact:/a\n"
                    "include = conf.d/*.ini ; vhosts\n"
                    "return = 200 a\n" /* still [route a] */
                    "[route z]\nmatch = prefix:/\nreturn = 404\n"
                    "[limits]\ninclude = none/*.ini\nmax_body_size = 1k\n", NULL, 0);
    put("conf.d/20-c.ini", "; c\n[route c]\nmatch = exact:/c\nroot = ../site\n", NULL, 0);
    put("conf.d/10-b.ini", "[route b]\nmatch = exact:/b\nreturn = 200\n", NULL, 0);
    put("conf.d/30-d.txt", "not ini: the pattern leaves it out\n", NULL, 0);
    struct wr_config_errors errs = {0};
    struct wr_config *cfg = load_main(&errs);
    for (size_t i = 0; i < errs.n_lines; i++)
        print_error("unexpected: %s\n", errs.lines[i]);
    assert_non_null(cfg);
    assert_int_equal(cfg->n_routes, 4);
    const char *names[] = {"a", "b", "c", "z"};
    for (size_t i = 0; i < N_OF(names); i++)
        assert_string_equal(cfg->routes[i].name, names[i]);
    assert_where(cfg, cfg->routes[0].line, "main.ini", 3);
    assert_where(cfg, cfg->routes[1].line, "conf.d/10-b.ini", 1);
    assert_where(cfg, cfg->routes[2].line, "conf.d/20-c.ini", 2);
    assert_where(cfg, cfg->routes[3].line, "main.ini", 7); /* after the include line */
    assert_string_equal(cfg->routes[0].return_body, "a");
    assert_int_equal(cfg->limits.max_body_bytes, 1024);
    assert_where(cfg, cfg->server.listens[0].line, "main.ini", 2);
    char site[256];
    snprintf(site, sizeof(site), "%s/conf.d/../site", inc_dir);
    assert_string_equal(cfg->routes[2].root, site);
    assert_int_equal(cfg->n_files, 3);
    wr_config_unref(cfg);
    inc_teardown();
}

/* Errors name the included file and its line, in reading order; a section
 * given in two files names the first one's place; a key after an include
 * line belongs to the section the line stands in; a key before an included
 * file's first header belongs to none. */
static void issue_17_include_errors_name_the_file(void **state)
{
    (void)state;
    inc_setup();
    char main_ini[256], b_ini[256], want[8][512];
    put("main.ini", SERVER "include = b.ini\nworkers = 2\n[route z]\nmatch = prefix:/\n",
        main_ini, sizeof(main_ini));
    put("b.ini", "index = x\n[route b]\nmatch = exact:/b\nretrun = 200\n[server]\n"
        "listen = 127.0.0.1:1\n", b_ini, sizeof(b_ini));
    struct wr_config_errors errs = {0};
    assert_null(load_main(&errs));
    snprintf(want[0], sizeof(want[0]), "%s:1: index: outside any section", b_ini);
    snprintf(want[1], sizeof(want[1]),
             "%s:2: [route b]: has no action; a route has exactly one action: root, proxy, "
             "redirect or return", b_ini);
    snprintf(want[2], sizeof(want[2]), "%s:4: [route b] retrun: unknown key", b_ini);
    snprintf(want[3], sizeof(want[3]), "%s:5: [server]: given twice, first at %s:1", b_ini,
             main_ini);
    snprintf(want[4], sizeof(want[4]),
             "%s:5: [route z]: has no action; a route has exactly one action: root, proxy, "
             "redirect or return", main_ini);
    assert_int_equal(errs.n_lines, 5);
    for (size_t i = 0; i < errs.n_lines; i++)
        assert_string_equal(errs.lines[i], want[i]);
    wr_config_errors_fini(&errs);
    inc_teardown();
}

/* A pattern that matches nothing (even in a missing directory) is fine, as
 * in nginx; a literal file that is missing, or a match that is a directory,
 * is an error at the include line. */
static void issue_17_include_missing(void **state)
{
    (void)state;
    inc_setup();
    char main_ini[256], want[3][512];
    put("main.ini", SERVER "[route a]\nmatch = prefix:/\nreturn = 200\n"
                    "include = empty/*.ini\ninclude = none.d/*.ini\n", main_ini, sizeof(main_ini));
    put("empty/README", "no ini here\n", NULL, 0);
    struct wr_config_errors errs = {0};
    struct wr_config *cfg = load_main(&errs);
    assert_non_null(cfg);
    assert_int_equal(cfg->n_routes, 1);
    wr_config_unref(cfg);

    put("main.ini", SERVER "include = nope.ini\ninclude = dirs/*\ninclude = fifo\n", NULL, 0);
    put("dirs/sub/x.ini", "[route x]\n", NULL, 0);
    char fifo[256];
    snprintf(fifo, sizeof(fifo), "%s/fifo", inc_dir);
    assert_int_equal(mkfifo(fifo, 0600), 0); /* refused, never waited on */
    assert_null(load_main(&errs));
    snprintf(want[0], sizeof(want[0]), "%s:3: include: %s/nope.ini: No such file or directory",
             main_ini, inc_dir);
    snprintf(want[1], sizeof(want[1]), "%s:4: include: %s/dirs/sub: not a regular file",
             main_ini, inc_dir);
    snprintf(want[2], sizeof(want[2]), "%s:5: include: %s: not a regular file", main_ini, fifo);
    assert_int_equal(errs.n_lines, 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(errs.lines[i], want[i]);
    wr_config_errors_fini(&errs);
    inc_teardown();
}

/* A file that includes itself, directly or not, is reported once, not read
 * again; nesting deeper than 8 include lines is an error. */
static void issue_17_include_cycle_and_depth(void **state)
{
    (void)state;
    inc_setup();
    char main_ini[256], a_ini[256], want[512];
    put("main.ini", SERVER "include = a.ini\n", main_ini, sizeof(main_ini));
    put("a.ini", "include = main.ini\n[route a]\nmatch = prefix:/\nreturn = 200\n", a_ini,
        sizeof(a_ini));
    struct wr_config_errors errs = {0};
    assert_null(load_main(&errs));
    assert_int_equal(errs.n_lines, 1);
    snprintf(want, sizeof(want), "%s:1: include: %s: includes itself (an include cycle)", a_ini,
             main_ini);
    assert_string_equal(errs.lines[0], want);
    wr_config_errors_fini(&errs);

    put("main.ini", SERVER "include = d1.ini\n", NULL, 0);
    for (int i = 1; i <= 9; i++) {
        char rel[32], text[64];
        snprintf(rel, sizeof(rel), "d%d.ini", i);
        snprintf(text, sizeof(text), "include = d%d.ini\n", i + 1);
        put(rel, text, NULL, 0);
    }
    put("d10.ini", "[route deep]\nmatch = prefix:/\nreturn = 200\n", NULL, 0);
    assert_null(load_main(&errs));
    assert_int_equal(errs.n_lines, 1);
    snprintf(want, sizeof(want), "%s/d8.ini:1: include: nested more than 8 deep", inc_dir);
    assert_string_equal(errs.lines[0], want);
    wr_config_errors_fini(&errs);
    inc_teardown();
}

/* From memory without allow_include (the fuzz target), an include line is
 * an error naming the given name; nothing is read. */
static void issue_17_include_from_memory(void **state)
{
    (void)state;
    struct wr_config_errors errs = {0};
    const struct wr_config_options opts = {.resolve = NULL};
    assert_null(wr_config_parse_string_opts(SERVER "include = /etc/*\n", "fuzz.ini", &opts,
                                            &errs));
    assert_int_equal(errs.n_lines, 1);
    assert_string_equal(errs.lines[0], "fuzz.ini:3: include: not available for a configuration "
                                       "read from memory");
    wr_config_errors_fini(&errs);
    /* "include" is only the key itself: a longer key is an unknown key. */
    assert_null(parse(SERVER "includes = x\n", &errs));
    assert_string_equal(errs.lines[0], "t.ini:3: [server] includes: unknown key");
    wr_config_errors_fini(&errs);
}

/* listen's proxy_protocol flag and [server] proxy_protocol_from: ranges
 * read, the flag needs senders, bad ranges name file:line and key. */
static void issue_19_proxy_protocol_keys(void **state)
{
    (void)state;
    struct wr_config *cfg = parse_ok("[server]\nlisten = 127.0.0.1:8080 tls proxy_protocol\n"
                                     "listen = 127.0.0.1:8081\n"
                                     "proxy_protocol_from = 10.0.0.0/8 192.0.2.7\n"
                                     "proxy_protocol_from = 2001:db8::/32\n"
                                     "[tls]\ncert = /dev/null\nkey = /dev/null\n");
    assert_true(cfg->server.listens[0].is_proxy_protocol);
    assert_true(cfg->server.listens[0].is_tls);
    assert_false(cfg->server.listens[1].is_proxy_protocol);
    assert_int_equal(cfg->server.n_proxy_from, 3);
    assert_int_equal(cfg->server.proxy_from[0].bits, 8);
    assert_int_equal(cfg->server.proxy_from[2].family, AF_INET6);
    wr_config_unref(cfg);
    cfg = parse_ok(SERVER "[admin]\nlisten = 127.0.0.1:9901\nallow = 10.0.0.0/8\n"
                   "[route r]\nmatch = prefix:/\nreturn = 200\ndeny = 10.1.0.0/16\n"
                   "allow = 10.0.0.0/8 ::1\ndeny = all\n");
    assert_int_equal(cfg->admin.n_access, 1);
    assert_int_equal(cfg->routes[0].n_access, 4);
    assert_false(cfg->routes[0].access[0].is_allow);
    assert_true(cfg->routes[0].access[2].is_allow);
    assert_true(cfg->routes[0].access[3].is_all);
    wr_config_unref(cfg);
    cfg = parse_ok(SERVER "[upstream a]\nserver = 127.0.0.1:9000\nsend_proxy_protocol = v2\n"
                   "[upstream b]\nserver = 127.0.0.1:9001\n");
    assert_int_equal(cfg->upstreams[0].send_proxy_protocol, 2);
    assert_int_equal(cfg->upstreams[1].send_proxy_protocol, 0);
    wr_config_unref(cfg);
    static const struct bad_case bad[] = {
        {"no senders", "[server]\nlisten = 127.0.0.1:8080 proxy_protocol\n",
         {"t.ini:2: [server] listen: proxy_protocol needs [server] proxy_protocol_from (the "
          "balancers that may send the header)"}},
        {"bad range", SERVER "proxy_protocol_from = 10.0.0.0/33\n",
         {"t.ini:3: [server] proxy_protocol_from: \"10.0.0.0/33\" is not an address or range "
          "(192.0.2.7, 10.0.0.0/8, 2001:db8::/32)"}},
        {"flag twice", "[server]\nlisten = 127.0.0.1:8080 proxy_protocol proxy_protocol\n",
         {"t.ini:2: [server] listen: flag \"proxy_protocol\" given twice"}},
        {"bad allow", SERVER "[route r]\nmatch = prefix:/\nreturn = 200\nallow = 10.0.0.0/8 x\n",
         {"t.ini:6: [route r] allow: \"x\" is not an address, a range (10.0.0.0/8, "
          "2001:db8::/32) or all"}},
        {"verify_client without client_ca",
         "[server]\nlisten = 127.0.0.1:8443 tls\n[tls]\ncert = a\nkey = b\nverify_client = on\n",
         {"t.ini:6: [tls] verify_client: needs client_ca (the CAs client certificates chain "
          "to)"}},
        {"verify_client value",
         "[server]\nlisten = 127.0.0.1:8443 tls\n[tls]\ncert = a\nkey = b\n"
         "verify_client = maybe\n",
         {"t.ini:6: [tls] verify_client: \"maybe\" is not one of: off, optional, on"}},
        {"realm with a quote", SERVER "[route r]\nmatch = prefix:/\nreturn = 200\n"
         "auth_basic = a\"b\n",
         {"t.ini:6: [route r] auth_basic: \"a\"b\" is not a realm (up to 200 characters, no "
          "quote or backslash)"}},
        {"realm without users", SERVER "[route r]\nmatch = prefix:/\nreturn = 200\n"
         "auth_basic = staff\n",
         {"t.ini:6: [route r] auth_basic: needs auth_basic_file (the users)"}},
        {"bad send_proxy_protocol",
         SERVER "[upstream a]\nserver = 127.0.0.1:9000\nsend_proxy_protocol = v3\n",
         {"t.ini:5: [upstream a] send_proxy_protocol: \"v3\" is not one of: off, v1, v2"}},
        {"bad admin deny", SERVER "[admin]\nlisten = 127.0.0.1:9901\ndeny = 300.0.0.1\n",
         {"t.ini:5: [admin] deny: \"300.0.0.1\" is not an address, a range (10.0.0.0/8, "
          "2001:db8::/32) or all"}},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_errors(&bad[i]);
}

/* access_log_format texts and a route's access_log: off, [server]'s file,
 * or one of the sorted, distinct files of routes; errors name file:line. */
static void issue_21_access_log_keys(void **state)
{
    (void)state;
    struct wr_config *cfg = parse_ok("[server]\nlisten = 127.0.0.1:8080\naccess_log = /var/log/a\n"
                                     "access_log_format = json $status $http_x_a\n"
                                     "[route q]\nmatch = exact:/q\nreturn = 200\naccess_log = off\n"
                                     "[route b]\nmatch = exact:/b\nreturn = 200\naccess_log = /l/b\n"
                                     "[route s]\nmatch = exact:/s\nreturn = 200\naccess_log = /var/log/a\n"
                                     "[route a]\nmatch = exact:/a\nreturn = 200\naccess_log = /l/a\n"
                                     "[route b2]\nmatch = exact:/c\nreturn = 200\naccess_log = /l/b\n"
                                     "[route d]\nmatch = prefix:/\nreturn = 200\n");
    assert_int_equal(cfg->server.access_log_format.kind, WR_LOG_KIND_JSON_FIELDS);
    assert_int_equal(cfg->server.access_log_format.n_parts, 2);
    assert_int_equal(cfg->n_route_access_logs, 2);
    assert_string_equal(cfg->route_access_logs[0], "/l/a");
    assert_string_equal(cfg->route_access_logs[1], "/l/b");
    const int want[] = {-1, 2, 0, 1, 2, 0};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(cfg->routes[i].access_log_id, want[i]);
    wr_config_unref(cfg);
    static const struct bad_case bad[] = {
        {"unknown variable", SERVER "access_log_format = $status $nope\n",
         {"t.ini:3: [server] access_log_format: unknown variable: \"nope\""}},
        {"json with text", SERVER "access_log_format = json $status, $route\n",
         {"t.ini:3: [server] access_log_format: a json format lists $variables only: "
          "\", $route\""}},
        {"five files", SERVER
         "[route a]\nmatch = exact:/a\nreturn = 200\naccess_log = /l/a\n"
         "[route b]\nmatch = exact:/b\nreturn = 200\naccess_log = /l/b\n"
         "[route c]\nmatch = exact:/c\nreturn = 200\naccess_log = /l/c\n"
         "[route d]\nmatch = exact:/d\nreturn = 200\naccess_log = /l/d\n"
         "[route e]\nmatch = exact:/e\nreturn = 200\naccess_log = /l/e\n",
         {"t.ini:22: [route e] access_log: at most 4 files besides [server]'s access_log"}},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_errors(&bad[i]);
}

/* return_type and return_file: the body read at load, its type from the
 * extension unless return_type names one; errors name file:line and key. */
static void issue_21_return_keys(void **state)
{
    (void)state;
    char dir[] = "/tmp/weir-test-return-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], ini[1024];
    snprintf(path, sizeof(path), "%s/down.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"down\": true}\n", f);
    fclose(f);
    snprintf(ini, sizeof(ini),
             SERVER "[route a]\nmatch = exact:/a\nreturn = 200 {\"a\":1}\n"
                    "return_type = application/json; charset=utf-8\n"
                    "[route f]\nmatch = exact:/f\nreturn_file = %s\nreturn = 503\n"
                    "[route g]\nmatch = exact:/g\nreturn = 503\nreturn_file = %s\n"
                    "return_type = text/x-down\n"
                    "[route p]\nmatch = exact:/p\nreturn = 200 plain\n", path, path);
    struct wr_config *cfg = parse_ok(ini);
    assert_string_equal(cfg->routes[0].return_type, "application/json; charset=utf-8");
    assert_int_equal(cfg->routes[1].status, 503);
    assert_int_equal(cfg->routes[1].return_body_len, 15);
    assert_memory_equal(cfg->routes[1].return_body, "{\"down\": true}\n", 15);
    assert_string_equal(cfg->routes[1].return_type, "application/json");
    assert_string_equal(cfg->routes[2].return_type, "text/x-down");
    assert_null(cfg->routes[3].return_type);
    wr_config_unref(cfg);
    unlink(path);
    rmdir(dir);
    static const struct bad_case bad[] = {
        {"type without return", SERVER "[route r]\nmatch = prefix:/\nroot = /srv\n"
         "return_type = text/html\n",
         {"t.ini:6: [route r] return_type: only with return"}},
        {"not a media type", SERVER "[route r]\nmatch = prefix:/\nreturn = 200 x\n"
         "return_type = json\n",
         {"t.ini:6: [route r] return_type: \"json\" is not a media type (type/subtype, e.g. "
          "application/json)"}},
        {"file and body", SERVER "[route r]\nmatch = prefix:/\nreturn = 200 x\n"
         "return_file = /dev/null\n",
         {"t.ini:6: [route r] return_file: return already has a body (give the status alone: "
          "return = 200)"}},
        {"missing file", SERVER "[route r]\nmatch = prefix:/\nreturn = 503\n"
         "return_file = /nonexistent/x.json\n",
         {"t.ini:6: [route r] return_file: /nonexistent/x.json: No such file or directory"}},
        {"file with 204", SERVER "[route r]\nmatch = prefix:/\nreturn = 204\n"
         "return_file = /dev/null\n",
         {"t.ini:6: [route r] return_file: status 204 has no body"}},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_errors(&bad[i]);
}

/* [compression] and the route's compress keys: defaults, values, errors
 * naming file:line and key. */
static void issue_16_compression_keys(void **state)
{
    (void)state;
    struct wr_config *cfg = parse_ok(SERVER "[route r]\nmatch = prefix:/\nreturn = 200\n");
    const struct wr_compression_cfg *c = &cfg->compression;
    assert_int_equal(c->n_prefer, 3);
    assert_int_equal(c->prefer[0], WR_CODING_ZSTD);
    assert_int_equal(c->prefer[1], WR_CODING_BR);
    assert_int_equal(c->prefer[2], WR_CODING_GZIP);
    assert_int_equal(c->gzip_level, 1);
    assert_int_equal(c->brotli_level, 4);
    assert_int_equal(c->zstd_level, 3);
    assert_int_equal(c->max_memory, 64 << 20);
    assert_int_equal(c->cache_bytes, 32 << 20);
    assert_int_equal(c->cache_file_max, 1 << 20);
    assert_int_equal(cfg->routes[0].compress_mask, 0); /* off by default */
    assert_int_equal(cfg->routes[0].compress_min_length, 1024);
    wr_config_unref(cfg);
    cfg = parse_ok(SERVER "[compression]\nprefer = gzip\ngzip_level = 6\nbrotli_level = 0\n"
                   "zstd_level = 19\nmax_memory = 0\ncache_size = 1m\ncache_file_max = 64k\n"
                   "[route a]\nmatch = prefix:/a\nreturn = 200\ncompress = on\n"
                   "[route b]\nmatch = prefix:/b\nreturn = 200\ncompress = br, gzip\n"
                   "compress_types = text/html Application/JSON\ncompress_types = text/*\n"
                   "compress_min_length = 0\n");
    c = &cfg->compression;
    assert_int_equal(c->prefer[0], WR_CODING_GZIP); /* then the default order */
    assert_int_equal(c->prefer[1], WR_CODING_ZSTD);
    assert_int_equal(c->prefer[2], WR_CODING_BR);
    assert_int_equal(c->gzip_level, 6);
    assert_int_equal(c->cache_file_max, 64 * 1024);
    assert_int_equal(cfg->routes[0].compress_mask, WR_CODINGS_ALL);
    assert_int_equal(cfg->routes[1].compress_mask, (1u << WR_CODING_BR) | (1u << WR_CODING_GZIP));
    assert_int_equal(cfg->routes[1].n_compress_types, 3);
    assert_string_equal(cfg->routes[1].compress_types[1], "application/json");
    assert_string_equal(cfg->routes[1].compress_types[2], "text/*");
    assert_int_equal(cfg->routes[1].compress_min_length, 0);
    wr_config_unref(cfg);
    static const struct bad_case bad[] = {
        {"unknown coding", SERVER "[compression]\nprefer = zstd deflate\n",
         {"t.ini:4: [compression] prefer: \"deflate\" is not a coding weir makes (gzip, br, "
          "zstd)"}},
        {"twice", SERVER "[compression]\nprefer = br br\n",
         {"t.ini:4: [compression] prefer: \"br\" is listed twice"}},
        {"level", SERVER "[compression]\ngzip_level = 10\n",
         {"t.ini:4: [compression] gzip_level: \"10\" is out of range: must be between 1 and 9"}},
        {"compress value", SERVER "[route r]\nmatch = prefix:/\nreturn = 200\ncompress = lzma\n",
         {"t.ini:6: [route r] compress: \"lzma\" is not on, off or a list of codings (gzip, "
          "br, zstd)"}},
        {"type", SERVER "[route r]\nmatch = prefix:/\nreturn = 200\ncompress_types = html\n",
         {"t.ini:6: [route r] compress_types: \"html\" is not a media type (type/subtype, "
          "type/*, type/*+suffix)"}},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_errors(&bad[i]);
}

/* Issue 19.3: `resolve` (off or 1s at least) and `[server] resolver`
 * (IPv4:port or [IPv6]:port nameservers) are checked with file:line. */
static void issue_19_resolve_keys(void **state)
{
    (void)state;
    struct wr_config_errors errs = {0};
    struct wr_config *cfg = parse_opts(SERVER "resolver = 127.0.0.1:5353 [::1]:53\n"
                                              "[upstream u]\nserver = 192.0.2.1:80\n"
                                              "resolve = 30s\n[upstream v]\nserver = "
                                              "two.test:80\n", fake_resolve, &errs);
    assert_non_null(cfg);
    assert_int_equal(errs.n_lines, 0);
    assert_int_equal(cfg->server.n_resolvers, 2);
    assert_string_equal(cfg->server.resolvers[1].text, "[::1]:53");
    /* IP literals only: resolve is accepted, and there is nothing to do */
    assert_int_equal(cfg->upstreams[0].resolve_ms, 30000);
    assert_false(cfg->upstreams[0].servers[0].is_named);
    assert_int_equal(cfg->upstreams[1].resolve_ms, 0); /* default: off */
    assert_true(cfg->upstreams[1].servers[0].is_named);
    assert_true(cfg->upstreams[1].servers[1].is_named);
    wr_config_unref(cfg);

    static const struct bad_case bad[] = {
        {"resolve not a duration", SERVER "[upstream u]\nserver = 192.0.2.1:80\nresolve = soon\n",
         {"t.ini:5: [upstream u] resolve: \"soon\" is not off or a duration of 1s or more "
          "(e.g. 30s, 5m)"}},
        {"resolve under the floor", SERVER "[upstream u]\nserver = 192.0.2.1:80\n"
                                           "resolve = 500ms\n",
         {"t.ini:5: [upstream u] resolve: \"500ms\" is not off or a duration of 1s or more "
          "(e.g. 30s, 5m)"}},
        {"resolver not an address", SERVER "resolver = dns.example:53\n",
         {"t.ini:3: [server] resolver: \"dns.example:53\" is not a nameserver address "
          "(IPv4:port or [IPv6]:port, e.g. 127.0.0.1:53)"}},
        {"resolver without port", SERVER "resolver = 127.0.0.1\n",
         {"t.ini:3: [server] resolver: \"127.0.0.1\" is not a nameserver address "
          "(IPv4:port or [IPv6]:port, e.g. 127.0.0.1:53)"}},
        {"resolver unix", SERVER "resolver = unix:/run/dns\n",
         {"t.ini:3: [server] resolver: \"unix:/run/dns\" is not a nameserver address "
          "(IPv4:port or [IPv6]:port, e.g. 127.0.0.1:53)"}},
    };
    for (size_t i = 0; i < N_OF(bad); i++)
        expect_errors(&bad[i]);
}

/* A resolve_ns fake: answers 192.0.2.77 when asked with 127.0.0.1:5353. */
static int fake_resolve_ns(const struct wr_listen_addr *ns, size_t n_ns, const char *host,
                           uint16_t port, struct wr_listen_addr *out, size_t cap,
                           const char **why)
{
    (void)host;
    if (n_ns != 1 || strcmp(ns[0].text, "127.0.0.1:5353") != 0 || cap < 1) {
        *why = "fake: not asked of the resolver key's nameserver";
        return -1;
    }
    char text[64];
    snprintf(text, sizeof(text), "192.0.2.77:%u", (unsigned)port);
    assert_int_equal(wr_units_parse_listen(text, &out[0]), 0);
    return 1;
}

/* Issue 19.3: with `resolver`, names are asked of it, even when the
 * [server] section comes after the upstream (names resolve once the whole
 * file is read); server order is the file's. */
static void issue_19_resolver_used_at_load(void **state)
{
    (void)state;
    struct wr_config_errors errs = {0};
    const struct wr_config_options opts = {.resolve = fake_resolve,
                                           .resolve_ns = fake_resolve_ns};
    struct wr_config *cfg = wr_config_parse_string_opts(
        "[upstream u]\nserver = 192.0.2.1:80\nserver = app.test:81 weight=2\n"
        "server = 192.0.2.2:80\n[server]\nlisten = 127.0.0.1:8080\n"
        "resolver = 127.0.0.1:5353\n", "t.ini", &opts, &errs);
    assert_int_equal(errs.n_lines, 0);
    assert_non_null(cfg);
    const struct wr_upstream_cfg *u = &cfg->upstreams[0];
    assert_int_equal(u->n_servers, 3);
    assert_string_equal(u->servers[0].addr.text, "192.0.2.1:80");
    assert_string_equal(u->servers[1].addr.text, "192.0.2.77:81");
    assert_string_equal(u->servers[1].label, "app.test:81 (192.0.2.77:81)");
    assert_int_equal(u->servers[1].weight, 2);
    assert_int_equal(u->servers[1].line, 3);
    char host[64];
    uint16_t port = 0;
    assert_true(wr_config_server_name(&u->servers[1], host, sizeof(host), &port));
    assert_string_equal(host, "app.test");
    assert_int_equal(port, 81);
    assert_false(wr_config_server_name(&u->servers[0], host, sizeof(host), &port));
    assert_string_equal(u->servers[2].addr.text, "192.0.2.2:80");
    wr_config_unref(cfg);
}

/* Issue 19.3: a derived snapshot has the new servers, its routes point at
 * its own upstreams, and everything read from the file is the loaded
 * snapshot's (kept alive by the derived one). */
static void issue_19_derive(void **state)
{
    (void)state;
    struct wr_config_errors errs = {0};
    struct wr_config *cfg = parse_opts(SERVER "[upstream u]\nserver = two.test:8080\n"
                                              "resolve = 5s\n[upstream w]\nserver = "
                                              "192.0.2.9:80\n[route r]\nmatch = regex:^/a\n"
                                              "proxy = w\n[route s]\nmatch = prefix:/\n"
                                              "proxy = u\n", fake_resolve, &errs);
    assert_non_null(cfg);
    struct wr_upstream_server_cfg one = cfg->upstreams[0].servers[0];
    assert_int_equal(wr_units_parse_listen("192.0.2.11:8080", &one.addr), 0);
    one.label = "two.test:8080 (192.0.2.11:8080)";
    struct wr_upstream_server_cfg *servers[2] = {&one, NULL};
    const size_t n_servers[2] = {1, 0};
    struct wr_config *d = wr_config_derive(cfg, servers, n_servers);
    assert_non_null(d);
    struct wr_config *d2 = wr_config_derive(d, (struct wr_upstream_server_cfg *[2]){0},
                                            n_servers);
    assert_non_null(d2);
    assert_ptr_equal(d->derived_from, cfg);
    assert_ptr_equal(d2->derived_from, cfg); /* always the loaded one */
    const char *name = cfg->upstreams[0].name;
    const struct pcre2_real_code_8 *regex = cfg->routes[0].regex;
    wr_config_unref(cfg); /* d holds it */
    assert_int_equal(d->upstreams[0].n_servers, 1);
    assert_string_equal(d->upstreams[0].servers[0].addr.text, "192.0.2.11:8080");
    assert_ptr_not_equal(d->upstreams[0].servers[0].label, one.label); /* copied */
    assert_int_equal(atomic_load(&d->upstreams[0].health[0].check), WR_CHECK_UNKNOWN);
    assert_ptr_equal(d->upstreams[0].name, name);
    assert_int_equal(d->upstreams[1].n_servers, 1);
    assert_ptr_equal(d->routes[0].upstream, &d->upstreams[1]);
    assert_ptr_equal(d->routes[1].upstream, &d->upstreams[0]);
    assert_ptr_equal(d->routes[0].regex, regex);
    assert_int_equal(d2->upstreams[0].n_servers, 1); /* NULL: d's kept */
    assert_ptr_equal(d2->routes[1].upstream, &d2->upstreams[0]);
    wr_config_unref(d);
    wr_config_unref(d2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_file),     cmocka_unit_test(test_full_file_regex_runs),
        cmocka_unit_test(test_defaults),      cmocka_unit_test(test_tls_defaults),
        cmocka_unit_test(issue_15_listen_h2c),
        cmocka_unit_test(test_tls_two_pairs),
        cmocka_unit_test(test_values_edge_cases), cmocka_unit_test(test_ref_unref),
        cmocka_unit_test(test_abuse_limits),
        cmocka_unit_test(issue_15_http2_section),
        cmocka_unit_test(test_bad_snippets),  cmocka_unit_test(test_long_lines),
        cmocka_unit_test(issue_13_strip_prefix_warning),
        cmocka_unit_test(issue_13_proxy_route_keys),
        cmocka_unit_test(issue_13_duration_max),
        cmocka_unit_test(issue_13_scheme_key),
        cmocka_unit_test(issue_13_asterisk_and_methods),
        cmocka_unit_test(issue_13_replaced_and_hidden_fields),
        cmocka_unit_test(test_load_file),     cmocka_unit_test(test_errors_append),
        cmocka_unit_test(test_relative_paths), cmocka_unit_test(test_resolve_names),
        cmocka_unit_test(test_resolve_getaddrinfo),
        cmocka_unit_test(issue_17_include_order_and_where),
        cmocka_unit_test(issue_17_include_errors_name_the_file),
        cmocka_unit_test(issue_17_include_missing),
        cmocka_unit_test(issue_17_include_cycle_and_depth),
        cmocka_unit_test(issue_17_include_from_memory),
        cmocka_unit_test(issue_16_compression_keys),
        cmocka_unit_test(issue_19_proxy_protocol_keys),
        cmocka_unit_test(issue_21_access_log_keys),
        cmocka_unit_test(issue_21_return_keys),
        cmocka_unit_test(issue_21_response_header_rules),
        cmocka_unit_test(issue_19_resolve_keys),
        cmocka_unit_test(issue_19_resolver_used_at_load),
        cmocka_unit_test(issue_19_derive),
    };
    return cmocka_run_group_tests(tests, make_root, remove_root);
}
