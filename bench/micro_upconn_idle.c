/*
 * micro_upconn_idle: heap bytes one idle pooled upstream TLS connection
 * holds on weir's side (issue 14: no 16 KiB plaintext stage per
 * connection any more).
 *
 *   cmake --build build/release --target micro_upconn_idle
 *   build/release/micro_upconn_idle [N]      (default 500)
 *
 * A forked child is the TLS server (a throwaway P-256 certificate made
 * here; it accepts and handshakes N connections and keeps them open). The
 * parent opens N connections through a worker's pool (wr_pool_connect,
 * TLS 1.3, verification off) and gives each back idle (wr_pool_put), after
 * a warm-up connection that creates the pool's server entry and session;
 * then it reports glibc's in-use heap bytes (mallinfo2) per connection:
 * struct wr_upconn, its TLS state and OpenSSL's SSL object (buffers
 * released while idle). Sockets and kernel buffers are not counted.
 * Uses only the pool and tls APIs, so the same file measures older trees.
 */
#include <errno.h>
#include <event2/event.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "weir/config.h"
#include "weir/pool.h"
#include "weir/tls.h"

static int write_cert(const char *dir)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (!key || !x)
        return -1;
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"b.test", -1,
                               -1, 0);
    X509_set_issuer_name(x, name);
    X509_sign(x, key, EVP_sha256());
    char path[128];
    snprintf(path, sizeof(path), "%s/s.crt", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    PEM_write_X509(f, x);
    fclose(f);
    snprintf(path, sizeof(path), "%s/s.key", dir);
    if (!(f = fopen(path, "w")))
        return -1;
    PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
    return 0;
}

/* The child: handshakes every connection (blocking) and keeps it. */
static void serve(int lfd, const struct wr_tls_set *set, int n, int quit_fd)
{
    for (int i = 0; i < n; i++) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            _exit(1);
        struct wr_tls_conn *t = wr_tls_conn_new(set, fd);
        char why[128];
        if (!t || wr_tls_handshake(t, why, sizeof(why)) != WR_TLS_DONE)
            _exit(2);
    }
    char c;
    (void)!read(quit_fd, &c, 1); /* until the parent is done */
    _exit(0);
}

static void on_event(struct wr_upconn *uc, short what, void *arg)
{
    (void)uc;
    (void)what;
    *(int *)arg = 1;
}

/* One connection through the pool, handshaken, then idle. */
static int one(struct event_base *base, struct wr_pool *pool, const struct wr_listen_addr *addr,
               const struct wr_tls_client *client, int n_max)
{
    int is_heard = 0;
    struct wr_upconn *uc = wr_pool_connect(pool, addr, client, 0, on_event, &is_heard);
    if (!uc)
        return -1;
    for (int i = 0; i < 10000 && !is_heard; i++)
        event_base_loop(base, EVLOOP_ONCE);
    char why[192];
    if (!is_heard || wr_upconn_connect_error(uc, why, sizeof(why)) != 0) {
        fprintf(stderr, "connect: %s\n", is_heard ? why : "no answer");
        return -1;
    }
    wr_upconn_want_write(uc, false);
    wr_pool_put(uc, (uint64_t)n_max, 3600 * 1000);
    return 0;
}

static void run_ms(struct event_base *base, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 500;
    signal(SIGPIPE, SIG_IGN);
    char dir[] = "/tmp/weir-micro-upconn-XXXXXX";
    if (n <= 0 || !mkdtemp(dir) || write_cert(dir) < 0)
        return 1;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(lfd, 1024) < 0 ||
        getsockname(lfd, (struct sockaddr *)&sin, &len) < 0)
        return 1;
    char text[1024];
    snprintf(text, sizeof(text),
             "[server]\nlisten = 127.0.0.1:1 tls\n[tls]\ncert = %s/s.crt\nkey = %s/s.key\n"
             "protocols = TLSv1.3\n[upstream u]\nserver = 127.0.0.1:%d\ntls = on\n"
             "tls_verify = off\n",
             dir, dir, ntohs(sin.sin_port));
    struct wr_config_errors errs = {0};
    struct wr_config *cfg = wr_config_parse_string(text, "micro.ini", &errs);
    /* Ticket keys: the server sends a TLS 1.3 session ticket after each
     * full handshake, which an idle connection reads (as most servers do). */
    struct wr_tls_keys *keys = wr_tls_keys_new();
    struct wr_tls_set *set = cfg && keys ? wr_tls_set_new(cfg, keys, NULL, &errs) : NULL;
    if (!set) {
        for (size_t i = 0; i < errs.n_lines; i++)
            fprintf(stderr, "%s\n", errs.lines[i]);
        return 1;
    }
    wr_tls_set_attach(cfg, set);
    int quit[2];
    if (pipe(quit) < 0)
        return 1;
    pid_t child = fork();
    if (child == 0) {
        close(quit[1]); /* EOF on quit[0] once the parent closes its end */
        serve(lfd, set, n + 1, quit[0]);
    }
    struct wr_listen_addr addr = {.addr_len = sizeof(sin)};
    memcpy(&addr.addr, &sin, sizeof(sin));
    const struct wr_tls_client *client = cfg->upstreams[0].tls_client;
    struct event_base *base = event_base_new();
    struct wr_pool *pool = wr_pool_new(base);
    if (one(base, pool, &addr, client, n + 1) < 0) /* warm-up: entry, session, lazy inits */
        return 1;
    run_ms(base, 50);
    size_t before = mallinfo2().uordblks;
    for (int i = 0; i < n; i++) {
        if (one(base, pool, &addr, client, n + 1) < 0)
            return 1;
    }
    run_ms(base, 200); /* late session tickets are read by the idle checks */
    size_t after = mallinfo2().uordblks;
    printf("idle TLS upstream connections: %llu; heap per connection: %.0f bytes\n",
           (unsigned long long)wr_pool_stats(pool)->n_idle,
           (double)(after - before) / (double)n);
    fflush(stdout);
    wr_pool_free(pool);
    event_base_free(base);
    close(quit[1]);
    waitpid(child, NULL, 0);
    wr_config_unref(cfg);
    wr_tls_keys_free(keys);
    snprintf(text, sizeof(text), "rm -rf %s", dir);
    return system(text) == 0 ? 0 : 1;
}
