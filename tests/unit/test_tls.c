/*
 * tls: contexts from config (certificates made here with OpenSSL into a
 * temp dir), SNI name selection, bad certificate and key errors, reload
 * keeping a section's old context, and whole handshakes over a socketpair:
 * SNI, ALPN, 421 decisions, ticket resumption across key rotation.
 * TLS parsing itself is OpenSSL's: no fuzz target here.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "weir/config.h"
#include "weir/tls.h"

static char dir[64];

/* dir/stem.crt and dir/stem.key: self-signed for cn, P-256 or RSA. */
static void make_cert(const char *stem, const char *cn, bool is_rsa)
{
    EVP_PKEY *key = is_rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(key);
    assert_non_null(x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    char path[128];
    snprintf(path, sizeof(path), "%s/%s.crt", dir, stem);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    PEM_write_X509(f, x);
    fclose(f);
    snprintf(path, sizeof(path), "%s/%s.key", dir, stem);
    f = fopen(path, "w");
    assert_non_null(f);
    PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
}

static int setup_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/weir-test-tls-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    make_cert("d", "default.test", false);
    make_cert("drsa", "default.test", true);
    make_cert("a", "a.test", false);
    make_cert("b", "b.test", false);
    return 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The config text with every %s replaced by dir. */
static struct wr_config *config(const char *fmt)
{
    char text[4096];
    size_t len = 0;
    for (const char *p = fmt; *p && len + sizeof(dir) < sizeof(text); p++) {
        if (p[0] == '%' && p[1] == 's') {
            len += (size_t)snprintf(text + len, sizeof(text) - len, "%s", dir);
            p++;
        } else {
            text[len++] = *p;
        }
    }
    text[len] = '\0';
    struct wr_config_errors errs = {0};
    struct wr_config *cfg = wr_config_parse_string(text, "t.ini", &errs);
    for (size_t i = 0; i < errs.n_lines; i++)
        fprintf(stderr, "%s\n", errs.lines[i]);
    wr_config_errors_fini(&errs);
    assert_non_null(cfg);
    return cfg;
}

#define SERVER "[server]\nlisten = 127.0.0.1:1 tls\n"
#define THREE SERVER "[tls]\ncert = %s/d.crt\nkey = %s/d.key\n"                         \
                     "[tls a]\nnames = a.test *.a-wild.test\ncert = %s/a.crt\nkey = %s/a.key\n" \
                     "[tls b]\nnames = b.test\nalpn = http/1.1\ncert = %s/b.crt\nkey = %s/b.key\n"

static struct wr_tls_set *build(struct wr_config *cfg, struct wr_tls_keys *keys,
                                const struct wr_tls_set *old, struct wr_config_errors *errs)
{
    return wr_tls_set_new(cfg, keys, old, errs);
}

static size_t sel(const struct wr_tls_set *set, const char *name)
{
    return wr_tls_set_select(set, name, strlen(name));
}

static void test_select(void **state)
{
    (void)state;
    struct wr_config *cfg = config(THREE);
    struct wr_config_errors errs = {0};
    struct wr_tls_set *set = build(cfg, NULL, NULL, &errs);
    assert_non_null(set);
    assert_int_equal(errs.n_lines, 0);
    assert_int_equal(wr_tls_set_count(set), 3);
    assert_int_equal(sel(set, "a.test"), 1);
    assert_int_equal(sel(set, "b.test"), 2);
    assert_int_equal(sel(set, "x.a-wild.test"), 1);
    assert_int_equal(sel(set, "a-wild.test"), 0);     /* a wildcard needs a label */
    assert_int_equal(sel(set, "y.x.a-wild.test"), 0); /* ...exactly one */
    assert_int_equal(sel(set, ".a-wild.test"), 0);
    assert_int_equal(sel(set, "other.test"), 0);
    assert_int_equal(sel(set, ""), 0);
    assert_int_equal(sel(set, "a.tes"), 0);
    assert_int_equal(sel(set, "a.test.evil"), 0);
    wr_tls_set_attach(cfg, set); /* freed with the snapshot */
    wr_config_unref(cfg);
}

/* The set fails with one error starting with want (after "t.ini:"). */
static void expect_error(const char *fmt, const char *want)
{
    struct wr_config *cfg = config(fmt);
    struct wr_config_errors errs = {0};
    assert_null(build(cfg, NULL, NULL, &errs));
    assert_int_equal(errs.n_lines, 1);
    if (strstr(errs.lines[0], want) == NULL)
        fail_msg("got \"%s\", want \"%s\"", errs.lines[0], want);
    wr_config_errors_fini(&errs);
    wr_config_unref(cfg);
}

static void test_bad_files(void **state)
{
    (void)state;
    expect_error(SERVER "[tls]\ncert = %s/none.crt\nkey = %s/d.key\n",
                 "t.ini:3: [tls] cert: ");
    expect_error(SERVER "[tls]\ncert = %s/d.key\nkey = %s/d.key\n", "t.ini:3: [tls] cert: ");
    expect_error(SERVER "[tls]\ncert = %s/d.crt\nkey = %s/none.key\n",
                 "No such file or directory");
    expect_error(SERVER "[tls]\ncert = %s/d.crt\nkey = %s/a.key\n",
                 "[tls] key: ");
    expect_error(SERVER "[tls]\ncert = %s/d.crt\nkey = %s/a.key\n",
                 "does not match its certificate");
    expect_error(SERVER "[tls]\ncert = %s/d.crt\nkey = %s/d.key\ncert = %s/a.crt\nkey = %s/a.key\n",
                 "a second ECDSA certificate (one per key type)");
    expect_error(SERVER "[tls]\ncert = %s/d.crt\nkey = %s/d.key\nciphers = NOTHING-AT-ALL\n",
                 "t.ini:3: [tls] ciphers: \"NOTHING-AT-ALL\": ");
    expect_error(SERVER "[tls]\ncert = %s/d.crt\nkey = %s/d.key\n"
                        "[tls x]\nnames = x.test\ncert = %s/x.crt\nkey = %s/d.key\n",
                 "t.ini:6: [tls x] cert: ");
}

static void test_ecdsa_and_rsa(void **state)
{
    (void)state;
    struct wr_config *cfg = config(SERVER "[tls]\ncert = %s/d.crt\nkey = %s/d.key\n"
                                          "cert = %s/drsa.crt\nkey = %s/drsa.key\n");
    struct wr_config_errors errs = {0};
    struct wr_tls_set *set = build(cfg, NULL, NULL, &errs);
    assert_non_null(set);
    wr_tls_set_free(set);
    wr_config_unref(cfg);
}

static void test_reload_keeps_old_section(void **state)
{
    (void)state;
    struct wr_config *cfg = config(THREE);
    struct wr_config_errors errs = {0};
    struct wr_tls_set *old = build(cfg, NULL, NULL, &errs);
    assert_non_null(old);
    /* [tls a]'s file went bad: the old [tls a] stays, names included. */
    struct wr_config *next = config(SERVER "[tls]\ncert = %s/d.crt\nkey = %s/d.key\n"
                                           "[tls a]\nnames = a.test\n"
                                           "cert = %s/gone.crt\nkey = %s/a.key\n");
    struct wr_tls_set *set = build(next, NULL, old, &errs);
    assert_non_null(set);
    assert_int_equal(errs.n_lines, 0);
    assert_int_equal(wr_tls_set_count(set), 2);
    wr_tls_set_free(old); /* the kept section outlives the old set */
    assert_int_equal(sel(set, "a.test"), 1);
    assert_int_equal(sel(set, "x.a-wild.test"), 1);
    /* A new section that fails has nothing to keep: the reload fails. */
    struct wr_config *bad = config(SERVER "[tls]\ncert = %s/d.crt\nkey = %s/d.key\n"
                                          "[tls c]\nnames = c.test\n"
                                          "cert = %s/gone.crt\nkey = %s/a.key\n");
    assert_null(build(bad, NULL, set, &errs));
    assert_int_equal(errs.n_lines, 1);
    wr_config_errors_fini(&errs);
    wr_tls_set_free(set);
    wr_config_unref(bad);
    wr_config_unref(next);
    wr_config_unref(cfg);
}

/* ---- handshakes over a socketpair -------------------------------------- */

/* pair_open's client asks for the certificate status (status_request). */
static bool wants_status;

struct pair {
    int fds[2];
    SSL_CTX *cctx;
    SSL *client;
    struct wr_tls_conn *server;
};

static void pair_open(struct pair *p, const struct wr_tls_set *set, const char *sni,
                      SSL_SESSION *session)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->fds), 0);
    p->cctx = SSL_CTX_new(TLS_client_method());
    static const unsigned char alpn[] = "\x02h2\x08http/1.1";
    SSL_CTX_set_alpn_protos(p->cctx, alpn, sizeof(alpn) - 1);
    p->client = SSL_new(p->cctx);
    SSL_set_fd(p->client, p->fds[0]);
    if (sni)
        SSL_set_tlsext_host_name(p->client, sni);
    if (session)
        SSL_set_session(p->client, session);
    if (wants_status)
        SSL_set_tlsext_status_type(p->client, TLSEXT_STATUSTYPE_ocsp);
    SSL_set_connect_state(p->client);
    p->server = wr_tls_conn_new(set, p->fds[1]);
    assert_non_null(p->server);
    char why[256] = "";
    bool is_client_done = false, is_server_done = false;
    for (int i = 0; i < 100 && !(is_client_done && is_server_done); i++) {
        if (!is_client_done) {
            int rc = SSL_do_handshake(p->client);
            is_client_done = rc == 1;
            assert_true(rc == 1 || SSL_get_error(p->client, rc) == SSL_ERROR_WANT_READ);
        }
        if (!is_server_done) {
            enum wr_tls_result r = wr_tls_handshake(p->server, why, sizeof(why));
            if (r == WR_TLS_FAILED)
                fail_msg("server handshake: %s", why);
            is_server_done = r == WR_TLS_DONE;
        }
    }
    assert_true(is_client_done && is_server_done);
    /* Application data both ways (the client takes TLS 1.3 tickets here). */
    char buf[64];
    assert_int_equal(wr_tls_send(p->server, "hello", 5), 5);
    int n = 0;
    for (int i = 0; i < 100 && n <= 0; i++)
        n = SSL_read(p->client, buf, sizeof(buf));
    assert_int_equal(n, 5);
    assert_int_equal(SSL_write(p->client, "ping", 4), 4);
    assert_int_equal(wr_tls_recv(p->server, buf, sizeof(buf)), 4);
    assert_memory_equal(buf, "ping", 4);
    assert_int_equal(wr_tls_recv(p->server, buf, sizeof(buf)), -1);
    assert_int_equal(errno, EAGAIN);
}

static void pair_close(struct pair *p)
{
    wr_tls_conn_free(p->server);
    SSL_shutdown(p->client); /* else OpenSSL marks the session not resumable */
    SSL_free(p->client);
    SSL_CTX_free(p->cctx);
    close(p->fds[0]);
    close(p->fds[1]);
}

static struct wr_str str(const char *s)
{
    return (struct wr_str){s, strlen(s)};
}

static void test_handshake_sni_alpn_421(void **state)
{
    (void)state;
    struct wr_config *cfg = config(THREE);
    struct wr_config_errors errs = {0};
    struct wr_tls_set *set = build(cfg, NULL, NULL, &errs);
    assert_non_null(set);
    struct pair p;
    pair_open(&p, set, "A.test", NULL);
    assert_string_equal(wr_tls_version(p.server), "TLSv1.3");
    /* Issue 15: h2 is offered first by default, and preferred. */
    struct wr_str alpn = wr_tls_alpn(p.server);
    assert_int_equal(alpn.len, 2);
    assert_memory_equal(alpn.ptr, "h2", 2);
    X509 *peer = SSL_get1_peer_certificate(p.client);
    char cn[64] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof(cn));
    assert_string_equal(cn, "a.test");
    X509_free(peer);
    assert_false(wr_tls_is_misdirected(p.server, str("a.test")));
    assert_false(wr_tls_is_misdirected(p.server, str("z.a-wild.test")));
    assert_true(wr_tls_is_misdirected(p.server, str("b.test")));
    assert_true(wr_tls_is_misdirected(p.server, str("other.test")));
    assert_false(wr_tls_is_misdirected(p.server, str(""))); /* HTTP/1.0, no Host */
    /* The last good Host is remembered (keep-alive repeats it); it never
     * lets another one through, and a long one is looked up each time. */
    assert_false(wr_tls_is_misdirected(p.server, str("a.test")));
    assert_false(wr_tls_is_misdirected(p.server, str("a.test")));
    assert_true(wr_tls_is_misdirected(p.server, str("b.test")));
    assert_true(wr_tls_is_misdirected(p.server, str("a.tes")));
    assert_true(wr_tls_is_misdirected(p.server, str("a.testx")));
    assert_false(wr_tls_is_misdirected(p.server, str("a.test")));
    const char *long_host = "a-label-of-sixty-characters-is-long-enough-to-pass-the-memo.a-wild.test";
    assert_true(strlen(long_host) > 63);
    assert_false(wr_tls_is_misdirected(p.server, str(long_host)));
    assert_false(wr_tls_is_misdirected(p.server, str(long_host)));
    assert_true(wr_tls_is_misdirected(p.server, str("b.test")));
    assert_int_equal(wr_tls_handshake_timeout_ms(p.server), 10000);
    pair_close(&p);

    pair_open(&p, set, NULL, NULL);
    assert_false(wr_tls_is_misdirected(p.server, str("other.test")));
    assert_true(wr_tls_is_misdirected(p.server, str("a.test")));
    pair_close(&p);
    wr_tls_set_free(set);
    wr_config_unref(cfg);
}

/* A ticket from before one rotation resumes; from before two, it does not. */
static void test_tickets_across_rotation(void **state)
{
    (void)state;
    struct wr_config *cfg = config(THREE);
    struct wr_config_errors errs = {0};
    struct wr_tls_keys *keys = wr_tls_keys_new();
    assert_non_null(keys);
    struct wr_tls_set *set = build(cfg, keys, NULL, &errs);
    assert_non_null(set);
    struct pair p;
    pair_open(&p, set, "b.test", NULL);
    /* [tls b] says alpn = http/1.1: h2 off for its names (issue 15). */
    assert_memory_equal(wr_tls_alpn(p.server).ptr, "http/1.1", 8);
    SSL_SESSION *session = SSL_get1_session(p.client);
    assert_non_null(session);
    assert_false(SSL_session_reused(p.client));
    pair_close(&p);

    pair_open(&p, set, "b.test", session);
    assert_true(SSL_session_reused(p.client));
    pair_close(&p);

    assert_int_equal(wr_tls_keys_rotate(keys), 0);
    pair_open(&p, set, "b.test", session);
    assert_true(SSL_session_reused(p.client)); /* the previous key still decrypts */
    pair_close(&p);

    /* Not under another section's name: sessions are per section. */
    pair_open(&p, set, "a.test", session);
    assert_false(SSL_session_reused(p.client));
    pair_close(&p);

    assert_int_equal(wr_tls_keys_rotate(keys), 0);
    pair_open(&p, set, "b.test", session);
    assert_false(SSL_session_reused(p.client));
    pair_close(&p);

    SSL_SESSION_free(session);
    wr_tls_set_free(set);
    wr_tls_keys_free(keys);
    wr_config_unref(cfg);
}

static void *rotate_keys(void *arg)
{
    for (int i = 0; i < 200; i++)
        wr_tls_keys_rotate(arg);
    return NULL;
}

/* Main rotates while a worker seals and opens tickets: no lock, no race
 * (run under make tsan), and every handshake still completes. */
static void test_rotation_while_handshaking(void **state)
{
    (void)state;
    struct wr_config *cfg = config(THREE);
    struct wr_config_errors errs = {0};
    struct wr_tls_keys *keys = wr_tls_keys_new();
    struct wr_tls_set *set = build(cfg, keys, NULL, &errs);
    assert_non_null(set);
    pthread_t rotator;
    assert_int_equal(pthread_create(&rotator, NULL, rotate_keys, keys), 0);
    SSL_SESSION *session = NULL;
    for (int i = 0; i < 10; i++) {
        struct pair p;
        pair_open(&p, set, "b.test", session);
        SSL_SESSION_free(session);
        session = SSL_get1_session(p.client);
        pair_close(&p);
    }
    pthread_join(rotator, NULL);
    SSL_SESSION_free(session);
    wr_tls_set_free(set);
    wr_tls_keys_free(keys);
    wr_config_unref(cfg);
}

/* ---- OCSP stapling: main swaps the response while workers staple ------ */

#define STAPLE_LEN 300

static atomic_bool is_swapping_done;

/* Until the handshakes are done (bounded all the same). */
static void *swap_staples(void *arg)
{
    const struct wr_tls_set *set = arg;
    unsigned char blob[STAPLE_LEN];
    for (int i = 0; i < 1000000 && !atomic_load(&is_swapping_done); i++) {
        memset(blob, 'A' + i % 2, sizeof(blob));
        assert_int_equal(wr_tls_set_staple(set, 0, 0, i % 5 == 4 ? NULL : blob, sizeof(blob)), 0);
    }
    return NULL;
}

/* Issue 19 point 4: the certificates main fetches for are listed, and a
 * response swapped by main while handshakes staple it reaches each client
 * whole (one version or the other, or none), with no race (make tsan). */
static void issue_19_ocsp_staple_swap(void **state)
{
    (void)state;
    struct wr_config *cfg = config(SERVER "[tls]\ncert = %s/d.crt\nkey = %s/d.key\n"
                                          "cert = %s/drsa.crt\nkey = %s/drsa.key\n"
                                          "ocsp_stapling = on\n"
                                          "[tls a]\nnames = a.test\ncert = %s/a.crt\n"
                                          "key = %s/a.key\nocsp_stapling = off\n");
    struct wr_config_errors errs = {0};
    struct wr_tls_set *set = build(cfg, NULL, NULL, &errs);
    assert_non_null(set);
    struct wr_tls_ocsp_target t[4];
    assert_int_equal(wr_tls_set_ocsp_targets(set, t, 4), 2); /* [tls a] has it off */
    assert_null(t[0].section);
    assert_int_equal(t[0].site, 0);
    assert_int_equal(t[1].cert, 1);
    assert_null(t[0].issuer); /* self-signed, nothing after it in its file */
    assert_int_equal(wr_tls_set_staple(set, 0, 2, NULL, 0), -1);
    wants_status = true;
    pthread_t swapper;
    atomic_store(&is_swapping_done, false);
    assert_int_equal(pthread_create(&swapper, NULL, swap_staples, set), 0);
    for (int i = 0; i < 20; i++) {
        struct pair p;
        pair_open(&p, set, NULL, NULL);
        const unsigned char *resp = NULL;
        long len = SSL_get_tlsext_status_ocsp_resp(p.client, &resp);
        if (len > 0) {
            assert_int_equal(len, STAPLE_LEN);
            for (long k = 1; k < len; k++)
                assert_int_equal(resp[k], resp[0]);
        }
        pair_close(&p);
    }
    atomic_store(&is_swapping_done, true);
    pthread_join(swapper, NULL);
    wants_status = false;
    assert_int_equal(wr_tls_set_staple(set, 0, 0, (const unsigned char *)"x", 1), 0);
    wr_tls_set_free(set); /* frees the last staple: ASan sees a leak otherwise */
    wr_config_unref(cfg);
}

/* ---- upstream client contexts ----------------------------------------- */

#define UPSTREAM(extra)                                                                 \
    "[server]\nlisten = 127.0.0.1:1\n[upstream u]\nserver = 127.0.0.1:1\ntls = on\n" extra

static void test_client_bad_ca(void **state)
{
    (void)state;
    expect_error(UPSTREAM("tls_ca = %s/none.pem\n"),
                 "t.ini:6: [upstream u] tls_ca: ");
    expect_error(UPSTREAM("tls_ca = %s/none.pem\n"), "none.pem: No such file or directory");
    expect_error(UPSTREAM("tls_sni = a.test\ntls_ca = %s/d.key\n"),
                 "t.ini:7: [upstream u] tls_ca: ");
    /* tls_verify = off reads no CA at all. */
    struct wr_config *cfg = config(UPSTREAM("tls_verify = off\ntls_ca = %s/none.pem\n"
                                            "[upstream plain]\nserver = 127.0.0.1:2\n"));
    struct wr_config_errors errs = {0};
    struct wr_tls_set *set = build(cfg, NULL, NULL, &errs);
    assert_non_null(set);
    assert_int_equal(errs.n_lines, 0);
    assert_int_equal(wr_tls_set_count(set), 0); /* no [tls]: no server context */
    wr_tls_set_attach(cfg, set);
    assert_non_null(cfg->upstreams[0].tls_client);
    assert_null(cfg->upstreams[1].tls_client);
    assert_true(wr_tls_client_id(cfg->upstreams[0].tls_client) > 0);
    wr_config_unref(cfg);
}

/* A weir client connection against a weir server connection over a
 * socketpair. Returns the client's handshake result; why says why. */
static enum wr_tls_result client_pair(const struct wr_tls_set *set,
                                      const struct wr_tls_client *client,
                                      struct wr_tls_session **slot, struct wr_tls_conn **out_client,
                                      struct wr_tls_conn **out_server, int fds[2], char *why)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    struct wr_tls_conn *c = wr_tls_client_conn_new(client, 0, fds[0], slot);
    struct wr_tls_conn *sv = wr_tls_conn_new(set, fds[1]);
    assert_non_null(c);
    assert_non_null(sv);
    char server_why[256];
    enum wr_tls_result rc = WR_TLS_WANT_READ, rs = WR_TLS_WANT_READ;
    for (int i = 0; i < 100 && (rc != WR_TLS_DONE || rs != WR_TLS_DONE); i++) {
        if (rc != WR_TLS_DONE)
            rc = wr_tls_handshake(c, why, 256);
        if (rc == WR_TLS_FAILED)
            break;
        if (rs != WR_TLS_DONE)
            rs = wr_tls_handshake(sv, server_why, sizeof(server_why));
        if (rs == WR_TLS_FAILED)
            break;
    }
    *out_client = c;
    *out_server = sv;
    return rc;
}

static void close_pair(struct wr_tls_conn *c, struct wr_tls_conn *sv, int fds[2])
{
    wr_tls_close_notify(c);
    wr_tls_conn_free(c);
    wr_tls_conn_free(sv);
    close(fds[0]);
    close(fds[1]);
}

/* SNI picks [tls a], the certificate verifies against its CA, ALPN is
 * http/1.1, and a connection resumes the session the one before it
 * stored in the slot. */
static void test_client_handshake_resumes(void **state)
{
    (void)state;
    struct wr_config *cfg = config(THREE "[upstream u]\nserver = 127.0.0.1:1\ntls = on\n"
                                         "tls_sni = a.test\ntls_ca = %s/a.crt\n");
    struct wr_config_errors errs = {0};
    struct wr_tls_keys *keys = wr_tls_keys_new();
    struct wr_tls_set *set = build(cfg, keys, NULL, &errs);
    assert_non_null(set);
    wr_tls_set_attach(cfg, set);
    const struct wr_tls_client *client = cfg->upstreams[0].tls_client;
    struct wr_tls_session *slot = NULL;
    for (int round = 0; round < 4; round++) {
        struct wr_tls_conn *c, *sv;
        int fds[2];
        char why[256] = "";
        if (client_pair(set, client, &slot, &c, &sv, fds, why) != WR_TLS_DONE)
            fail_msg("client handshake: %s", why);
        assert_true(wr_tls_is_misdirected(sv, str("b.test"))); /* SNI chose [tls a] */
        struct wr_str alpn = wr_tls_alpn(c);
        assert_int_equal(alpn.len, 8);
        assert_memory_equal(alpn.ptr, "http/1.1", 8);
        /* A TLS 1.3 ticket is used once, and weir's server sends none on
         * a resumed handshake: every other connection resumes. */
        assert_int_equal(wr_tls_is_resumed(c), round % 2 == 1);
        /* Data both ways; the client takes the TLS 1.3 ticket here. */
        char buf[16];
        assert_int_equal(wr_tls_send(sv, "hello", 5), 5);
        assert_int_equal(wr_tls_recv(c, buf, sizeof(buf)), 5);
        assert_int_equal(wr_tls_send(c, "ping", 4), 4);
        assert_int_equal(wr_tls_recv(sv, buf, sizeof(buf)), 4);
        assert_non_null(slot);
        close_pair(c, sv, fds);
    }
    wr_tls_session_free(slot);
    wr_config_unref(cfg);
    wr_tls_keys_free(keys);
}

/* Another CA, or a name the certificate does not carry: the handshake
 * fails and says which check failed. */
static void test_client_verify_failures(void **state)
{
    (void)state;
    static const struct {
        const char *upstream, *want;
    } cases[] = {
        {"tls_sni = a.test\ntls_ca = %s/b.crt\n", "certificate verify failed"},
        /* No SNI (an IP literal): [tls]'s certificate, checked for 127.0.0.1. */
        {"tls_ca = %s/d.crt\n", "(IP address mismatch)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[1024];
        snprintf(text, sizeof(text), "%s[upstream u]\nserver = 127.0.0.1:1\ntls = on\n%s", THREE,
                 cases[i].upstream);
        struct wr_config *cfg = config(text);
        struct wr_config_errors errs = {0};
        struct wr_tls_set *set = build(cfg, NULL, NULL, &errs);
        assert_non_null(set);
        wr_tls_set_attach(cfg, set);
        struct wr_tls_conn *c, *sv;
        int fds[2];
        char why[256] = "";
        assert_int_equal(client_pair(set, cfg->upstreams[0].tls_client, NULL, &c, &sv, fds, why),
                         WR_TLS_FAILED);
        if (!strstr(why, cases[i].want))
            fail_msg("got \"%s\", want \"%s\"", why, cases[i].want);
        assert_false(wr_tls_is_healthy(c));
        close_pair(c, sv, fds);
        wr_config_unref(cfg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_ecdsa_and_rsa),
        cmocka_unit_test(test_reload_keeps_old_section),
        cmocka_unit_test(test_handshake_sni_alpn_421),
        cmocka_unit_test(test_tickets_across_rotation),
        cmocka_unit_test(test_rotation_while_handshaking),
        cmocka_unit_test(issue_19_ocsp_staple_swap),
        cmocka_unit_test(test_client_bad_ca),
        cmocka_unit_test(test_client_handshake_resumes),
        cmocka_unit_test(test_client_verify_failures),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
