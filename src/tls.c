/*
 * tls: OpenSSL contexts from [tls] sections, and TLS record I/O for streams (stream.c).
 *
 * A "site" is one section turned into an SSL_CTX plus what the callbacks
 * need (names, versions, ciphers, ALPN list, handshake_timeout). A set is
 * the sites of one config snapshot, [tls] first. Sites are reference
 * counted so that a reload which cannot read a section's new certificate
 * keeps serving the old site in the new set; an SSL holds its own
 * reference on the SSL_CTX it uses, so nothing a connection uses goes away
 * under it.
 *
 * Every connection starts on [tls]'s context; the ClientHello callback
 * moves it to the section SNI names before the version and cipher are
 * chosen, so each section's protocols and ciphers apply (a servername
 * callback would run too late for the version).
 *
 * Ticket keys are shared by every context and worker: 80 bytes each,
 * stored as atomic words behind a sequence counter (a seqlock), so that
 * main can rotate them while workers read without a lock and without a
 * plain shared write (TSan-clean). Sessions are not cached server-side:
 * tickets carry them.
 *
 * OCSP staples: ocsp_file's response is read with the site; responses
 * main fetches (stapler.c) are handed in with wr_tls_set_staple, one per
 * certificate, and swapped under a per-site lock that only handshakes
 * whose client sent status_request take. A handshake staples the response
 * of the certificate it chose, never another's.
 *
 * Not here: when to read or write (the stream's owner), write staging
 * (stream.c), the 421 decision's consequences (conn answers it). TLS
 * parsing is OpenSSL's; there is no fuzz target.
 */
#include "weir/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <assert.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "weir/log.h"

#define KEY_WORDS 10      /* 80 bytes: name 16, HMAC 32, AES 32 */
#define READ_TRIES 1000   /* a reader gives up (no ticket) rather than spin */
#define MAX_SNI_LEN 253
#define TLS_GOOD_HOST_MAX 63 /* longer Hosts are looked up each time */
#define N_TICKETS 1       /* TLS 1.3 tickets per full handshake: one resumes */

struct ticket_key {
    unsigned char name[16];
    unsigned char hmac[32];
    unsigned char aes[32];
};

struct wr_tls_keys {
    atomic_uint_fast64_t seq;                 /* odd while main rewrites words */
    atomic_uint_fast64_t words[2][KEY_WORDS]; /* [0] current, [1] previous */
};

/* A fetched OCSP response: immutable once made, freed with its last
 * reference (main's slot, or a handshake copying it). */
struct staple {
    atomic_uint refs;
    size_t len;
    unsigned char der[];
};

/* One certificate of a site, for stapling. */
struct site_cert {
    X509 *leaf;             /* one reference */
    X509 *issuer;           /* one reference: the cert of its chain that issued
                               it; NULL when the chain file has none */
    struct staple *fetched; /* one reference; NULL: none. Under staple_lock */
};

struct tls_site {
    atomic_uint refs;
    SSL_CTX *ctx;          /* one reference */
    char *section;         /* owned; NULL for [tls] */
    char **names;          /* owned copies, lower case */
    size_t *name_lens;     /* owned: names[i]'s length, not measured per request */
    size_t n_names;
    int min_version, max_version;
    char *ciphers;         /* owned, TLS 1.2 list */
    bool has_tickets;
    unsigned char alpn[256]; /* server preference, wire format */
    size_t alpn_len;
    uint64_t handshake_timeout_ms;
    unsigned char *ocsp;   /* owned: ocsp_file's DER response, for certs[0]; NULL: none */
    size_t ocsp_len;
    bool is_stapling;      /* ocsp_stapling = on: main fetches responses (stapler.h) */
    struct site_cert certs[WR_TLS_MAX_CERTS]; /* in cert order */
    size_t n_certs;
    /* Guards certs[].fetched: main swaps a response while handshakes of
     * every worker may be copying it. A reference alone is not enough (a
     * worker could load the pointer just before main drops the last
     * reference), and a copy per fetch kept forever grows without bound;
     * the lock is taken only for a handshake whose client sent
     * status_request, for a pointer load and an increment. */
    pthread_mutex_t staple_lock;
};

/* What a client connection to one server of an upstream sends and checks. */
struct client_server {
    char *sni;         /* owned; NULL: none (an IP literal) */
    char *check_name;  /* owned: the name or IP the certificate must carry;
                          NULL when tls_verify = off */
    bool is_check_ip;  /* check_name is an IP literal */
};

struct wr_tls_client {
    SSL_CTX *ctx;      /* one reference; every SSL made from it holds another */
    uint64_t id;
    size_t n_servers;
    struct client_server servers[]; /* same index as the upstream's servers */
};

struct wr_tls_session {
    SSL_SESSION *sess; /* one reference */
};

struct wr_tls_set {
    struct wr_tls_keys *keys; /* borrowed: main's, outlives every set */
    struct wr_tls_client **clients; /* owned, one per upstream (NULL: tls = off) */
    size_t n_clients;
    size_t n_sites;
    struct tls_site *sites[]; /* [0] is [tls] */
};

/* The end of a connection's stream, seen by SSL_read after bytes that
 * wr_tls_recv returned first: it must still be reported, though the socket
 * may never be readable again (close_notify without a FIN yet). */
enum end_state {
    END_NONE = 0,
    END_DEFERRED, /* seen, not returned yet: wr_tls_has_pending says so */
    END_RETURNED, /* returned; every later wr_tls_recv returns it again */
};

struct wr_tls_conn {
    SSL *ssl;
    const struct wr_tls_set *set; /* borrowed: the connection's snapshot holds it;
                                     NULL on a client connection */
    const struct tls_site *site;  /* in set: the section the handshake chose */
    struct wr_tls_session **slot; /* client side: where new sessions go (borrowed) */
    bool is_failed;               /* a fatal TLS error happened: no close_notify */
    enum end_state end;           /* the stream's end, once SSL_read saw it */
    int end_errno;                /* what the end is: 0 close_notify, else an errno */
    int fd;                       /* the socket records are written to */
    char *batch;                  /* between batch_begin and batch_end: records
                                     collect here (borrowed), else NULL */
    size_t batch_len, batch_cap;
    char *rest;                   /* ciphertext the socket did not take: owned
                                     while it waits, else NULL */
    size_t rest_len, rest_cap;
    /* The last Host found to be the chosen section's (wr_tls_is_misdirected):
     * a keep-alive client names the same one in every request. */
    unsigned char good_host_len;
    char good_host[TLS_GOOD_HOST_MAX];
};

const char *wr_tls_library_version(void)
{
    return OpenSSL_version(OPENSSL_VERSION);
}

/* ---- ticket keys ------------------------------------------------------- */

static_assert(sizeof(struct ticket_key) == KEY_WORDS * 8, "ticket key is whole words");

static int random_key(struct ticket_key *k)
{
    return RAND_bytes((unsigned char *)k, sizeof(*k)) == 1 ? 0 : -1;
}

static void store_key(atomic_uint_fast64_t *words, const struct ticket_key *k)
{
    uint64_t w[KEY_WORDS];
    memcpy(w, k, sizeof(w));
    for (int i = 0; i < KEY_WORDS; i++)
        atomic_store_explicit(&words[i], w[i], memory_order_relaxed);
}

/* Copies both keys out; false if main kept rewriting them (no ticket then). */
static bool load_keys(struct wr_tls_keys *keys, struct ticket_key out[2])
{
    for (int tries = 0; tries < READ_TRIES; tries++) {
        uint64_t before = atomic_load_explicit(&keys->seq, memory_order_acquire);
        if (before & 1)
            continue;
        uint64_t w[2][KEY_WORDS];
        for (int k = 0; k < 2; k++) {
            for (int i = 0; i < KEY_WORDS; i++)
                w[k][i] = atomic_load_explicit(&keys->words[k][i], memory_order_relaxed);
        }
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&keys->seq, memory_order_relaxed) == before) {
            memcpy(out, w, sizeof(w));
            OPENSSL_cleanse(w, sizeof(w));
            return true;
        }
    }
    return false;
}

struct wr_tls_keys *wr_tls_keys_new(void)
{
    struct wr_tls_keys *keys = malloc(sizeof(*keys));
    struct ticket_key k[2];
    if (!keys || random_key(&k[0]) < 0 || random_key(&k[1]) < 0) {
        free(keys);
        return NULL;
    }
    atomic_init(&keys->seq, 0);
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < KEY_WORDS; j++)
            atomic_init(&keys->words[i][j], 0);
        store_key(keys->words[i], &k[i]);
    }
    OPENSSL_cleanse(k, sizeof(k));
    return keys;
}

int wr_tls_keys_rotate(struct wr_tls_keys *keys)
{
    struct ticket_key fresh, current;
    if (random_key(&fresh) < 0)
        return -1;
    uint64_t seq = atomic_load_explicit(&keys->seq, memory_order_relaxed);
    atomic_store_explicit(&keys->seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release); /* readers see odd before any new word */
    uint64_t w[KEY_WORDS];
    for (int i = 0; i < KEY_WORDS; i++)
        w[i] = atomic_load_explicit(&keys->words[0][i], memory_order_relaxed);
    memcpy(&current, w, sizeof(current));
    store_key(keys->words[1], &current);
    store_key(keys->words[0], &fresh);
    atomic_store_explicit(&keys->seq, seq + 2, memory_order_release);
    OPENSSL_cleanse(&fresh, sizeof(fresh));
    OPENSSL_cleanse(&current, sizeof(current));
    OPENSSL_cleanse(w, sizeof(w));
    return 0;
}

void wr_tls_keys_free(struct wr_tls_keys *keys)
{
    if (keys)
        OPENSSL_cleanse(keys, sizeof(*keys));
    free(keys);
}

static int set_mac_key(EVP_MAC_CTX *hctx, const struct ticket_key *k)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac, sizeof(k->hmac)),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_CTX_set_params(hctx, params) == 1 ? 0 : -1;
}

/* OpenSSL's ticket callback: encrypt with the current key; decrypt with
 * either, asking for a new ticket (2) when the previous key was used.
 * 0: no ticket / not ours (full handshake); -1 only for crypto failures. */
static int on_ticket_key(SSL *ssl, unsigned char name[16], unsigned char *iv,
                         EVP_CIPHER_CTX *ectx, EVP_MAC_CTX *hctx, int enc)
{
    const struct wr_tls_conn *t = SSL_get_app_data(ssl);
    struct ticket_key keys[2];
    if (!t || !t->set->keys || !load_keys(t->set->keys, keys))
        return 0; /* no ticket issued, or a full handshake: never an error */
    int rc = 0;
    if (enc) {
        memcpy(name, keys[0].name, 16);
        rc = RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) == 1 &&
                     EVP_EncryptInit_ex(ectx, EVP_aes_256_cbc(), NULL, keys[0].aes, iv) == 1 &&
                     set_mac_key(hctx, &keys[0]) == 0
                 ? 1
                 : -1;
    } else {
        for (int i = 0; i < 2 && rc == 0; i++) {
            if (memcmp(name, keys[i].name, 16) != 0)
                continue;
            bool ok = EVP_DecryptInit_ex(ectx, EVP_aes_256_cbc(), NULL, keys[i].aes, iv) == 1 &&
                      set_mac_key(hctx, &keys[i]) == 0;
            rc = !ok ? -1 : i == 0 ? 1 : 2;
        }
    }
    OPENSSL_cleanse(keys, sizeof(keys));
    return rc;
}

/* ---- callbacks --------------------------------------------------------- */

/* The host_name of a server_name extension body (RFC 6066 §3), or false. */
static bool parse_sni(const unsigned char *p, size_t len, struct wr_str *name)
{
    if (len < 5 || (size_t)((p[0] << 8) | p[1]) != len - 2 || p[2] != TLSEXT_NAMETYPE_host_name)
        return false;
    size_t n = (size_t)((p[3] << 8) | p[4]);
    if (n == 0 || n > len - 5)
        return false;
    *name = (struct wr_str){(const char *)p + 5, n};
    return true;
}

/* Moves ssl to site's context, and its version range, ciphers and tickets
 * (SSL_set_SSL_CTX changes the certificates only). */
static int use_site(struct wr_tls_conn *t, const struct tls_site *site)
{
    SSL *ssl = t->ssl;
    if (SSL_set_SSL_CTX(ssl, site->ctx) == NULL ||
        !SSL_set_min_proto_version(ssl, site->min_version) ||
        !SSL_set_max_proto_version(ssl, site->max_version) ||
        !SSL_set_cipher_list(ssl, site->ciphers))
        return -1;
    if (site->has_tickets) {
        SSL_clear_options(ssl, SSL_OP_NO_TICKET);
        SSL_set_num_tickets(ssl, N_TICKETS);
    } else {
        SSL_set_options(ssl, SSL_OP_NO_TICKET);
        SSL_set_num_tickets(ssl, 0);
    }
    /* SSL_set_SSL_CTX keeps the first context's verification: the
     * section's own client-certificate rule applies. */
    SSL_set_verify(ssl, SSL_CTX_get_verify_mode(site->ctx), NULL);
    SSL_set_verify_depth(ssl, SSL_CTX_get_verify_depth(site->ctx));
    t->site = site;
    return 0;
}

/* Runs first on a ClientHello: picks the section SNI names. */
static int on_client_hello(SSL *ssl, int *alert, void *arg)
{
    (void)arg;
    struct wr_tls_conn *t = SSL_get_app_data(ssl);
    const unsigned char *ext;
    size_t ext_len;
    struct wr_str sni;
    if (!t || !SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext, &ext_len) ||
        !parse_sni(ext, ext_len, &sni))
        return SSL_CLIENT_HELLO_SUCCESS; /* no usable SNI: [tls] */
    char name[MAX_SNI_LEN + 1];
    size_t n = 0;
    for (; n < sni.len && n < MAX_SNI_LEN; n++)
        name[n] = wr_str_lower(sni.ptr[n]);
    if (n > 0 && name[n - 1] == '.')
        n--; /* an absolute name "example.org." is example.org */
    const struct tls_site *site = t->set->sites[wr_tls_set_select(t->set, name, n)];
    if (site != t->site && use_site(t, site) < 0) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* ALPN with the server's preference order; no overlap: no ALPN at all
 * (the client may still speak HTTP/1.1), as most servers do. */
static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *out_len,
                   const unsigned char *in, unsigned int in_len, void *arg)
{
    (void)arg;
    const struct wr_tls_conn *t = SSL_get_app_data(ssl);
    if (!t)
        return SSL_TLSEXT_ERR_NOACK;
    const struct tls_site *site = t->site;
    for (size_t i = 0; i < site->alpn_len; i += 1u + site->alpn[i]) {
        for (unsigned j = 0; j < in_len && j + 1u + in[j] <= in_len; j += 1u + in[j]) {
            if (in[j] == site->alpn[i] && memcmp(in + j + 1, site->alpn + i + 1, in[j]) == 0) {
                *out = in + j + 1;
                *out_len = in[j];
                return SSL_TLSEXT_ERR_OK;
            }
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}

/* ---- building a site --------------------------------------------------- */

/* The oldest queued OpenSSL error as text (its root cause); clears the queue. */
static void ssl_error_text(char *buf, size_t cap)
{
    unsigned long e = ERR_get_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    if (reason)
        snprintf(buf, cap, "%s", reason);
    else if (e && ERR_SYSTEM_ERROR(e))
        snprintf(buf, cap, "%s", strerror(ERR_GET_REASON(e)));
    else if (e)
        ERR_error_string_n(e, buf, cap);
    else
        snprintf(buf, cap, "unknown error");
    ERR_clear_error();
}

/* "file:line: [tls NAME] key: " + message, into why. Returns -1. */
__attribute__((format(printf, 6, 7))) static int
site_fail(char *why, size_t cap, const struct wr_config *cfg, const struct wr_tls_cfg *t,
          const char *key, const char *fmt, ...)
{
    const struct wr_config_where w = wr_config_where(cfg, t->line);
    int n = snprintf(why, cap, "%s:%u: [tls%s%s] %s: ", w.file ? w.file : "-", w.line,
                     t->name ? " " : "", t->name ? t->name : "", key);
    if (n > 0 && (size_t)n < cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why + n, cap - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static const char *key_type_name(int type)
{
    switch (type) {
    case EVP_PKEY_RSA:
        return "RSA";
    case EVP_PKEY_EC:
        return "ECDSA";
    case EVP_PKEY_ED25519:
        return "Ed25519";
    default:
        return "this";
    }
}

/* A daemon has no terminal to ask for a passphrase: encrypted keys fail. */
static int no_passphrase(char *buf, int size, int rwflag, void *arg)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    *(bool *)arg = true;
    return -1;
}

/* The private key in path, or NULL (OpenSSL's reason queued, or
 * *is_encrypted set). */
static EVP_PKEY *read_key(const char *path, bool *is_encrypted)
{
    BIO *bio = BIO_new_file(path, "r");
    if (!bio)
        return NULL;
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, is_encrypted);
    BIO_free(bio);
    return key;
}

/* The certificate just loaded into site->ctx and its issuer (the first
 * cert of its chain that issued it), kept for stapling and for finding
 * which certificate a handshake chose. */
static void record_cert(struct tls_site *site)
{
    struct site_cert *c = &site->certs[site->n_certs++];
    STACK_OF(X509) *chain = NULL;
    c->leaf = SSL_CTX_get0_certificate(site->ctx);
    X509_up_ref(c->leaf);
    SSL_CTX_get0_chain_certs(site->ctx, &chain);
    for (int i = 0; chain && i < sk_X509_num(chain) && !c->issuer; i++) {
        X509 *x = sk_X509_value(chain, i);
        if (X509_check_issued(x, c->leaf) == X509_V_OK && X509_up_ref(x) == 1)
            c->issuer = x;
    }
}

/* Every cert/key pair; each key type once (OpenSSL keeps one per type). */
static int load_pairs(struct tls_site *site, const struct wr_config *cfg,
                      const struct wr_tls_cfg *t, char *why, size_t cap)
{
    SSL_CTX *ctx = site->ctx;
    int types[WR_TLS_MAX_CERTS];
    char err[256];
    for (size_t i = 0; i < t->n_certs && i < t->n_keys; i++) {
        if (SSL_CTX_use_certificate_chain_file(ctx, t->certs[i]) != 1) {
            ssl_error_text(err, sizeof(err));
            return site_fail(why, cap, cfg, t, "cert", "%s: %s", t->certs[i], err);
        }
        record_cert(site);
        const EVP_PKEY *pub = X509_get0_pubkey(SSL_CTX_get0_certificate(ctx));
        types[i] = pub ? EVP_PKEY_get_base_id(pub) : 0;
        for (size_t j = 0; j < i; j++) {
            if (types[j] == types[i])
                return site_fail(why, cap, cfg, t, "cert",
                                 "%s: a second %s certificate (one per key type)", t->certs[i],
                                 key_type_name(types[i]));
        }
        bool is_encrypted = false;
        EVP_PKEY *key = read_key(t->keys[i], &is_encrypted);
        if (!key) {
            ssl_error_text(err, sizeof(err));
            return site_fail(why, cap, cfg, t, "key", "%s: %s", t->keys[i],
                             is_encrypted ? "encrypted; weir needs it without a passphrase"
                                          : err);
        }
        bool is_match = X509_check_private_key(SSL_CTX_get0_certificate(ctx), key) == 1;
        bool is_used = is_match && SSL_CTX_use_PrivateKey(ctx, key) == 1;
        EVP_PKEY_free(key);
        if (!is_used) {
            ssl_error_text(err, sizeof(err));
            return site_fail(why, cap, cfg, t, "key", "%s: %s", t->keys[i],
                             is_match ? err : "does not match its certificate");
        }
    }
    return 0;
}

/* Sessions resume only under the section that issued them. */
static int set_session_context(SSL_CTX *ctx, const struct wr_tls_cfg *t)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    const char *name = t->name ? t->name : "";
    if (EVP_Digest(name, strlen(name), md, &md_len, EVP_sha256(), NULL) != 1)
        return -1;
    if (md_len > SSL_MAX_SID_CTX_LENGTH)
        md_len = SSL_MAX_SID_CTX_LENGTH;
    return SSL_CTX_set_session_id_context(ctx, md, md_len) == 1 ? 0 : -1;
}

static void staple_unref(struct staple *st)
{
    if (st && atomic_fetch_sub_explicit(&st->refs, 1, memory_order_acq_rel) == 1)
        free(st);
}

/* certs[i] of site the handshake chose (SSL_get_certificate is the chosen
 * one when the status callback runs), or n_certs. */
static size_t chosen_cert(const struct tls_site *site, SSL *ssl)
{
    X509 *x = SSL_get_certificate(ssl);
    size_t i = 0;
    while (x && i < site->n_certs && site->certs[i].leaf != x && X509_cmp(site->certs[i].leaf, x))
        i++;
    return x ? i : site->n_certs;
}

/* Hands a copy of der to OpenSSL, which frees it after sending. */
static int staple_copy(SSL *ssl, const unsigned char *der, size_t len)
{
    unsigned char *copy = OPENSSL_malloc(len);
    if (!copy)
        return SSL_TLSEXT_ERR_NOACK;
    memcpy(copy, der, len);
    if (SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)len) != 1) {
        OPENSSL_free(copy);
        return SSL_TLSEXT_ERR_NOACK;
    }
    return SSL_TLSEXT_ERR_OK;
}

/* A client asked for the certificate's status (status_request): the
 * response for the certificate chosen, if there is a valid one: ocsp_file's
 * (first certificate only), else the one main fetched. A response for
 * another of the section's certificates is never sent (a client would
 * take it for a bad staple). */
static int on_status_request(SSL *ssl, void *arg)
{
    (void)arg;
    struct tls_site *site = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    size_t i = site ? chosen_cert(site, ssl) : 0;
    if (!site || i == site->n_certs)
        return SSL_TLSEXT_ERR_NOACK;
    if (i == 0 && site->ocsp)
        return staple_copy(ssl, site->ocsp, site->ocsp_len);
    if (!site->is_stapling)
        return SSL_TLSEXT_ERR_NOACK;
    pthread_mutex_lock(&site->staple_lock);
    struct staple *st = site->certs[i].fetched;
    if (st)
        atomic_fetch_add_explicit(&st->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&site->staple_lock);
    int rc = st ? staple_copy(ssl, st->der, st->len) : SSL_TLSEXT_ERR_NOACK;
    staple_unref(st);
    return rc;
}

/* ocsp_file: read and checked once per load (a response that is not a
 * successful, current one is left out with a warning: handshakes never
 * fail for a missing staple). */
static void load_ocsp(struct tls_site *site, const struct wr_tls_cfg *t)
{
    FILE *f = fopen(t->ocsp_file, "rbe");
    unsigned char buf[16384];
    size_t n = f ? fread(buf, 1, sizeof(buf), f) : 0;
    bool is_whole = f && feof(f);
    if (f)
        fclose(f);
    const char *why = !f ? strerror(errno) : !is_whole ? "larger than 16 KiB" : NULL;
    const unsigned char *p = buf;
    OCSP_RESPONSE *resp = why ? NULL : d2i_OCSP_RESPONSE(NULL, &p, (long)n);
    OCSP_BASICRESP *basic = resp ? OCSP_response_get1_basic(resp) : NULL;
    if (!why && !resp)
        why = "not a DER OCSP response";
    else if (!why && OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL)
        why = "not a successful response";
    else if (!why && !basic)
        why = "no basic response";
    if (!why) {
        /* Every single response must be current (thisUpdate <= now <
         * nextUpdate, 5 minutes of clock skew allowed). */
        for (int i = 0; i < OCSP_resp_count(basic) && !why; i++) {
            ASN1_GENERALIZEDTIME *this_update = NULL, *next_update = NULL;
            OCSP_single_get0_status(OCSP_resp_get0(basic, i), NULL, NULL, &this_update,
                                    &next_update);
            if (!OCSP_check_validity(this_update, next_update, 300, -1))
                why = "outdated (past its nextUpdate, or not yet valid)";
        }
    }
    if (!why && (site->ocsp = malloc(n)) != NULL) {
        memcpy(site->ocsp, buf, n);
        site->ocsp_len = n;
    }
    if (why)
        wr_log(WR_LOG_WARN, -1, 0, "[tls%s%s] ocsp_file %s: %s; not stapled",
               t->name ? " " : "", t->name ? t->name : "", t->ocsp_file, why);
    OCSP_BASICRESP_free(basic);
    OCSP_RESPONSE_free(resp);
    ERR_clear_error();
}

static SSL_CTX *new_ctx(const struct tls_site *site)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, site->min_version);
    SSL_CTX_set_max_proto_version(ctx, site->max_version);
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION |
                                 (site->has_tickets ? 0 : SSL_OP_NO_TICKET));
    /* Partial writes and a movable buffer: records are made one at a time
     * from a per-worker staging buffer (our write BIO never asks for a
     * retry, so the second is only a safety net). Read-ahead: one recv for all the records the socket holds. Released
     * buffers: an idle keep-alive connection keeps no 2 x 16 KiB. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, site->has_tickets ? N_TICKETS : 0);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket_key);
    SSL_CTX_set_client_hello_cb(ctx, on_client_hello, NULL);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);
    SSL_CTX_set_tlsext_status_cb(ctx, on_status_request);
    return ctx;
}

static void site_unref(struct tls_site *site)
{
    if (!site || atomic_fetch_sub_explicit(&site->refs, 1, memory_order_acq_rel) != 1)
        return;
    SSL_CTX_free(site->ctx);
    free(site->ocsp);
    for (size_t i = 0; i < site->n_certs; i++) {
        X509_free(site->certs[i].leaf);
        X509_free(site->certs[i].issuer);
        staple_unref(site->certs[i].fetched);
    }
    pthread_mutex_destroy(&site->staple_lock);
    free(site->section);
    for (size_t i = 0; i < site->n_names; i++)
        free(site->names[i]);
    free(site->names);
    free(site->name_lens);
    free(site->ciphers);
    free(site);
}

/* What the section says, minus files: versions, ALPN, names. */
static int site_settings(struct tls_site *site, const struct wr_tls_cfg *t)
{
    site->min_version = strstr(t->protocols, "TLSv1.2") ? TLS1_2_VERSION : TLS1_3_VERSION;
    site->max_version = strstr(t->protocols, "TLSv1.3") ? TLS1_3_VERSION : TLS1_2_VERSION;
    site->has_tickets = t->session_tickets;
    site->is_stapling = t->ocsp_stapling;
    site->handshake_timeout_ms = t->handshake_timeout_ms;
    const char *rest = t->alpn;
    while (*rest) {
        size_t skip = strspn(rest, " \t"), len = strcspn(rest + skip, " \t");
        if (len == 0)
            break;
        if (len > 255 || site->alpn_len + 1 + len > sizeof(site->alpn))
            return -1;
        site->alpn[site->alpn_len++] = (unsigned char)len;
        memcpy(site->alpn + site->alpn_len, rest + skip, len);
        site->alpn_len += len;
        rest += skip + len;
    }
    site->ciphers = strdup(t->ciphers);
    site->section = t->name ? strdup(t->name) : NULL;
    site->names = calloc(t->n_names + 1, sizeof(*site->names));
    site->name_lens = calloc(t->n_names + 1, sizeof(*site->name_lens));
    if (!site->ciphers || (t->name && !site->section) || !site->names || !site->name_lens)
        return -1;
    for (; site->n_names < t->n_names; site->n_names++) {
        if (!(site->names[site->n_names] = strdup(t->names[site->n_names])))
            return -1;
        site->name_lens[site->n_names] = strlen(t->names[site->n_names]);
    }
    return 0;
}

/* verify_client: the CAs a client certificate must chain to (also named
 * in the CertificateRequest), the mode and the depth. */
static int load_client_ca(SSL_CTX *ctx, const struct wr_config *cfg, const struct wr_tls_cfg *t,
                          char *why, size_t cap)
{
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(t->client_ca);
    if (SSL_CTX_load_verify_locations(ctx, t->client_ca, NULL) != 1 || !names) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        char err[256];
        ssl_error_text(err, sizeof(err));
        return site_fail(why, cap, cfg, t, "client_ca", "%s: %s", t->client_ca,
                         err[0] ? err : "no certificate in it");
    }
    SSL_CTX_set_client_CA_list(ctx, names); /* takes names */
    int mode = SSL_VERIFY_PEER | (t->verify_client == 2 ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
    SSL_CTX_set_verify(ctx, mode, NULL);
    SSL_CTX_set_verify_depth(ctx, (int)t->verify_depth);
    return 0;
}

/* One section's site, or NULL with why filled. */
static struct tls_site *site_new(const struct wr_config *cfg, const struct wr_tls_cfg *t,
                                 char *why, size_t cap)
{
    struct tls_site *site = calloc(1, sizeof(*site));
    if (site) {
        atomic_init(&site->refs, 1);
        pthread_mutex_init(&site->staple_lock, NULL); /* cannot fail on Linux */
    }
    if (!site || site_settings(site, t) < 0 ||
        !(site->ctx = new_ctx(site)) || set_session_context(site->ctx, t) < 0) {
        site_fail(why, cap, cfg, t, "cert", "out of memory");
        goto fail;
    }
    if (SSL_CTX_set_cipher_list(site->ctx, t->ciphers) != 1) {
        char err[256];
        ssl_error_text(err, sizeof(err));
        site_fail(why, cap, cfg, t, "ciphers", "\"%s\": %s", t->ciphers, err);
        goto fail;
    }
    if (load_pairs(site, cfg, t, why, cap) < 0)
        goto fail;
    if (t->verify_client && load_client_ca(site->ctx, cfg, t, why, cap) < 0)
        goto fail;
    if (t->ocsp_file)
        load_ocsp(site, t);
    SSL_CTX_set_app_data(site->ctx, site); /* the status callback finds its staple */
    return site;
fail:
    ERR_clear_error();
    site_unref(site);
    return NULL;
}

/* ---- sets -------------------------------------------------------------- */

static int push_error(struct wr_config_errors *errs, const char *line)
{
    char **more = realloc(errs->lines, (errs->n_lines + 1) * sizeof(*more));
    if (!more)
        return -1;
    errs->lines = more;
    if (!(more[errs->n_lines] = strdup(line)))
        return -1;
    errs->n_lines++;
    return 0;
}

static struct tls_site *old_site(const struct wr_tls_set *old, const char *section)
{
    for (size_t i = 0; old && i < old->n_sites; i++) {
        const char *s = old->sites[i]->section;
        if ((s == NULL && section == NULL) || (s && section && strcmp(s, section) == 0))
            return old->sites[i];
    }
    return NULL;
}

static int add_clients(struct wr_tls_set *set, const struct wr_config *cfg,
                       struct wr_config_errors *errs);

struct wr_tls_set *wr_tls_set_new(const struct wr_config *cfg, struct wr_tls_keys *keys,
                                  const struct wr_tls_set *old, struct wr_config_errors *errs)
{
    size_t n_tls = cfg->has_default_tls ? cfg->n_tls : 0;
    struct wr_tls_set *set = calloc(1, sizeof(*set) + n_tls * sizeof(set->sites[0]));
    if (!set) {
        push_error(errs, "TLS: out of memory");
        return NULL;
    }
    set->keys = keys;
    bool is_ok = true;
    for (size_t i = 0; i < n_tls; i++) {
        char why[1024];
        struct tls_site *site = site_new(cfg, &cfg->tls[i], why, sizeof(why));
        struct tls_site *prev = site ? NULL : old_site(old, cfg->tls[i].name);
        if (prev) {
            /* The reload goes on; this section keeps serving what it had. */
            wr_log(WR_LOG_ERROR, -1, 0, "reload: %s; keeping the previous certificate", why);
            atomic_fetch_add_explicit(&prev->refs, 1, memory_order_relaxed);
            site = prev;
        } else if (!site) {
            push_error(errs, why);
            is_ok = false;
            continue;
        }
        set->sites[set->n_sites++] = site;
    }
    if (add_clients(set, cfg, errs) < 0)
        is_ok = false;
    if (!is_ok) {
        wr_tls_set_free(set);
        return NULL;
    }
    return set;
}

static void release_attached(struct wr_tls_set *set)
{
    wr_tls_set_free(set);
}

void wr_tls_set_attach(struct wr_config *cfg, struct wr_tls_set *set)
{
    cfg->tls_set = set;
    cfg->release_tls_set = release_attached;
    for (size_t i = 0; i < cfg->n_upstreams && i < set->n_clients; i++)
        cfg->upstreams[i].tls_client = set->clients[i];
}

static void client_free(struct wr_tls_client *c);

void wr_tls_set_free(struct wr_tls_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n_sites; i++)
        site_unref(set->sites[i]);
    for (size_t i = 0; i < set->n_clients; i++)
        client_free(set->clients[i]);
    free(set->clients);
    free(set);
}

size_t wr_tls_set_count(const struct wr_tls_set *set)
{
    return set->n_sites;
}

static bool has_name(const struct tls_site *site, const char *name, size_t len)
{
    for (size_t i = 0; i < site->n_names; i++) {
        if (site->name_lens[i] == len && memcmp(site->names[i], name, len) == 0)
            return true;
    }
    return false;
}

size_t wr_tls_set_select(const struct wr_tls_set *set, const char *name, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 1; i < set->n_sites; i++) {
        if (has_name(set->sites[i], name, len))
            return i;
    }
    /* "*.example.net" covers exactly one more label: a.example.net. */
    const char *dot = memchr(name, '.', len);
    if (!dot || dot == name)
        return 0;
    char wild[MAX_SNI_LEN + 2];
    size_t rest = len - (size_t)(dot - name);
    if (rest + 1 > sizeof(wild))
        return 0;
    wild[0] = '*';
    memcpy(wild + 1, dot, rest);
    for (size_t i = 1; i < set->n_sites; i++) {
        if (has_name(set->sites[i], wild, rest + 1))
            return i;
    }
    return 0;
}

/* ---- OCSP stapling: what main fetches for (stapler.c) ------------------ */

size_t wr_tls_set_ocsp_targets(const struct wr_tls_set *set, struct wr_tls_ocsp_target *out,
                               size_t cap)
{
    size_t n = 0;
    for (size_t s = 0; set && s < set->n_sites; s++) {
        const struct tls_site *site = set->sites[s];
        /* ocsp_file wins for the first certificate: it is what the
         * operator chose to staple. */
        for (size_t c = site->ocsp ? 1 : 0; site->is_stapling && c < site->n_certs; c++) {
            if (n < cap)
                out[n] = (struct wr_tls_ocsp_target){.section = site->section,
                                                     .leaf = site->certs[c].leaf,
                                                     .issuer = site->certs[c].issuer,
                                                     .site = s,
                                                     .cert = c};
            n++;
        }
    }
    return n;
}

int wr_tls_set_staple(const struct wr_tls_set *set, size_t site, size_t cert,
                      const unsigned char *der, size_t len)
{
    if (site >= set->n_sites || cert >= set->sites[site]->n_certs)
        return -1;
    struct staple *st = NULL;
    if (der) {
        if (!(st = malloc(sizeof(*st) + len)))
            return -1;
        atomic_init(&st->refs, 1);
        st->len = len;
        memcpy(st->der, der, len);
    }
    struct tls_site *s = set->sites[site];
    pthread_mutex_lock(&s->staple_lock);
    struct staple *old = s->certs[cert].fetched;
    s->certs[cert].fetched = st;
    pthread_mutex_unlock(&s->staple_lock);
    staple_unref(old);
    return 0;
}

/* ---- the write side: records to the socket, or batched ---------------- */

/*
 * OpenSSL writes every record through this BIO. It never asks OpenSSL to
 * retry (no WANT_WRITE, so no plaintext has to be kept for a retry):
 * what the socket does not take waits in t->rest, and everything written
 * later queues behind it until wr_tls_flush sent it. Within a batch the
 * records collect in the caller's buffer and leave with one write(2) at
 * batch_end: many small responses (HTTP/2 streams) cost one system call,
 * not one per 16 KiB record.
 */
static bool keep_rest(struct wr_tls_conn *t, const char *p, size_t len)
{
    if (t->rest_len + len > t->rest_cap) {
        size_t cap = t->rest_cap ? t->rest_cap : 4096;
        while (cap < t->rest_len + len)
            cap *= 2;
        char *more = realloc(t->rest, cap);
        if (!more)
            return false;
        t->rest = more;
        t->rest_cap = cap;
    }
    memcpy(t->rest + t->rest_len, p, len);
    t->rest_len += len;
    return true;
}

/* Writes p to the socket, keeping what it did not take. -1: the socket
 * failed (errno) or out of memory. */
static int write_or_keep(struct wr_tls_conn *t, const char *p, size_t len)
{
    ssize_t w = 0;
    if (t->rest_len == 0) {
        do {
            w = write(t->fd, p, len);
        } while (w < 0 && errno == EINTR);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        w = w < 0 ? 0 : w;
    }
    if ((size_t)w < len && !keep_rest(t, p + w, len - (size_t)w)) {
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

static int out_write(BIO *b, const char *p, size_t len, size_t *written)
{
    struct wr_tls_conn *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (t->batch) {
        if (len > t->batch_cap - t->batch_len)
            return 0; /* the caller checks room per record: never */
        memcpy(t->batch + t->batch_len, p, len);
        t->batch_len += len;
    } else if (write_or_keep(t, p, len) < 0) {
        return 0;
    }
    *written = len;
    return 1;
}

static long out_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b, (void)num, (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static BIO_METHOD *out_method;
static pthread_once_t out_method_once = PTHREAD_ONCE_INIT;

static void make_out_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "weir out");
    if (m && (BIO_meth_set_write_ex(m, out_write) != 1 || BIO_meth_set_ctrl(m, out_ctrl) != 1)) {
        BIO_meth_free(m);
        m = NULL;
    }
    out_method = m;
}

/* Reads from fd through a socket BIO, writes through ours. */
static int attach_fd(struct wr_tls_conn *t, int fd)
{
    pthread_once(&out_method_once, make_out_method);
    if (!out_method || SSL_set_rfd(t->ssl, fd) != 1)
        return -1;
    BIO *w = BIO_new(out_method);
    if (!w)
        return -1;
    BIO_set_data(w, t);
    BIO_set_init(w, 1);
    SSL_set0_wbio(t->ssl, w);
    t->fd = fd;
    return 0;
}

void wr_tls_batch_begin(struct wr_tls_conn *t, char *buf, size_t cap)
{
    t->batch = buf;
    t->batch_len = 0;
    t->batch_cap = cap;
}

size_t wr_tls_batch_room(const struct wr_tls_conn *t)
{
    return t->batch_cap - t->batch_len;
}

int wr_tls_batch_end(struct wr_tls_conn *t)
{
    char *b = t->batch;
    t->batch = NULL;
    if (t->batch_len == 0)
        return 0;
    if (write_or_keep(t, b, t->batch_len) < 0) {
        t->is_failed = true;
        return -1;
    }
    return 0;
}

int wr_tls_flush(struct wr_tls_conn *t)
{
    if (t->rest_len == 0)
        return 1;
    ssize_t w;
    do {
        w = write(t->fd, t->rest, t->rest_len);
    } while (w < 0 && errno == EINTR);
    if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        t->is_failed = true;
        return -1;
    }
    t->rest_len -= (size_t)w;
    if (t->rest_len > 0) {
        memmove(t->rest, t->rest + w, t->rest_len);
        return 0;
    }
    free(t->rest); /* nothing waits: the connection holds no buffer */
    t->rest = NULL;
    t->rest_cap = 0;
    return 1;
}

size_t wr_tls_waiting(const struct wr_tls_conn *t)
{
    return t->rest_len;
}

/* ---- connections ------------------------------------------------------- */

struct wr_tls_conn *wr_tls_conn_new(const struct wr_tls_set *set, int fd)
{
    struct wr_tls_conn *t = malloc(sizeof(*t));
    if (!t)
        return NULL;
    *t = (struct wr_tls_conn){.set = set, .site = set->sites[0]};
    t->ssl = SSL_new(set->sites[0]->ctx);
    if (!t->ssl || attach_fd(t, fd) < 0) {
        ERR_clear_error();
        wr_tls_conn_free(t);
        return NULL;
    }
    SSL_set_app_data(t->ssl, t);
    SSL_set_accept_state(t->ssl);
    return t;
}

void wr_tls_conn_free(struct wr_tls_conn *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    free(t->rest);
    free(t);
}

static void append_verify_error(SSL *ssl, char *why, size_t cap);

/* errno for an SSL error that ends the connection; clears the queue. */
static int fatal_errno(int ssl_err)
{
    int e = ssl_err == SSL_ERROR_SYSCALL && errno != 0 ? errno : EPROTO;
    ERR_clear_error();
    return e;
}

enum wr_tls_result wr_tls_handshake(struct wr_tls_conn *t, char *why, size_t cap)
{
    /* Our last flight first: the peer answers nothing before it has it. */
    int fr = wr_tls_flush(t);
    if (fr == 0)
        return WR_TLS_WANT_WRITE;
    if (fr < 0) {
        snprintf(why, cap, "%s", strerror(errno));
        return WR_TLS_FAILED;
    }
    errno = 0;
    int rc = SSL_do_handshake(t->ssl);
    if (rc == 1)
        return WR_TLS_DONE; /* a flight still waiting goes with the first write */
    int err = SSL_get_error(t->ssl, rc);
    if (err == SSL_ERROR_WANT_READ)
        return t->rest_len > 0 ? WR_TLS_WANT_WRITE : WR_TLS_WANT_READ;
    if (err == SSL_ERROR_WANT_WRITE)
        return WR_TLS_WANT_WRITE;
    unsigned long e = ERR_peek_error();
    int reason = ERR_GET_REASON(e);
    bool is_http = ERR_GET_LIB(e) == ERR_LIB_SSL &&
                   (reason == SSL_R_HTTP_REQUEST || reason == SSL_R_HTTPS_PROXY_REQUEST);
    if (err == SSL_ERROR_SYSCALL && e == 0)
        snprintf(why, cap, "%s", errno ? strerror(errno) : "connection closed mid-handshake");
    else
        ssl_error_text(why, cap);
    if (!t->set)
        append_verify_error(t->ssl, why, cap); /* a client: which certificate check failed */
    ERR_clear_error();
    t->is_failed = true;
    return is_http ? WR_TLS_PLAIN_HTTP : WR_TLS_FAILED;
}

/* The stream's end as wr_tls_recv returns it: 0, or -1 with errno. */
static ssize_t return_end(struct wr_tls_conn *t)
{
    t->end = END_RETURNED;
    if (t->end_errno == 0)
        return 0;
    errno = t->end_errno;
    return -1;
}

/* Records how SSL_read's failure err ends the stream. A client context
 * (upstream side) reports a TCP EOF without close_notify as
 * SSL_R_UNEXPECTED_EOF_WHILE_READING; server contexts ignore it. */
static void note_end(struct wr_tls_conn *t, int err)
{
    unsigned long e = ERR_peek_error();
    t->end = END_DEFERRED;
    if (err == SSL_ERROR_ZERO_RETURN) {
        t->end_errno = 0;
    } else if (err == SSL_ERROR_SSL && ERR_GET_LIB(e) == ERR_LIB_SSL &&
               ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        t->is_failed = true;
        t->end_errno = WR_TLS_ETRUNCATED;
    } else {
        t->is_failed = true;
        t->end_errno = fatal_errno(err);
    }
    ERR_clear_error();
}

ssize_t wr_tls_recv(struct wr_tls_conn *t, void *buf, size_t cap)
{
    if (t->end != END_NONE)
        return return_end(t);
    size_t got = 0;
    while (got < cap) {
        size_t n = 0;
        errno = 0;
        if (SSL_read_ex(t->ssl, (char *)buf + got, cap - got, &n) == 1) {
            got += n;
            if (!SSL_has_pending(t->ssl))
                break; /* the socket tells when more comes; no recv just for EAGAIN */
            continue;
        }
        int err = SSL_get_error(t->ssl, 0);
        /* WANT_WRITE cannot come from our write BIO (an answer to a
         * KeyUpdate waits in t->rest instead); taken as "nothing yet". */
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
            ERR_clear_error();
            if (got > 0)
                break;
            errno = EAGAIN;
            return -1;
        }
        /* The end (clean or not) after bytes: those first, the end on the
         * next call, which wr_tls_has_pending asks for. */
        note_end(t, err);
        if (got > 0)
            break;
        return return_end(t);
    }
    return (ssize_t)got;
}

ssize_t wr_tls_send(struct wr_tls_conn *t, const void *buf, size_t len)
{
    size_t n = 0;
    errno = 0;
    if (SSL_write_ex(t->ssl, buf, len, &n) == 1)
        return (ssize_t)n;
    int err = SSL_get_error(t->ssl, 0);
    /* Our write BIO never asks for a retry (WANT_WRITE), and WANT_READ
     * would need renegotiation, which is off: any failure is fatal. */
    t->is_failed = true;
    errno = fatal_errno(err);
    if (errno == 0)
        errno = EPIPE;
    return -1;
}

bool wr_tls_has_pending(const struct wr_tls_conn *t)
{
    return t->end == END_DEFERRED || SSL_has_pending(t->ssl) == 1;
}

void wr_tls_close_notify(struct wr_tls_conn *t)
{
    if (!t->is_failed && SSL_is_init_finished(t->ssl))
        SSL_shutdown(t->ssl);
    ERR_clear_error();
}

bool wr_tls_is_misdirected(struct wr_tls_conn *t, struct wr_str host)
{
    if (host.len == 0)
        return false;
    if (host.len == t->good_host_len && memcmp(host.ptr, t->good_host, host.len) == 0)
        return false; /* the same Host as the last request's */
    if (t->set->sites[wr_tls_set_select(t->set, host.ptr, host.len)] != t->site)
        return true;
    if (host.len <= sizeof(t->good_host)) {
        memcpy(t->good_host, host.ptr, host.len);
        t->good_host_len = (unsigned char)host.len;
    }
    return false;
}

uint64_t wr_tls_handshake_timeout_ms(const struct wr_tls_conn *t)
{
    return t->site->handshake_timeout_ms;
}

bool wr_tls_client_cert(const struct wr_tls_conn *t, char *subject, size_t cap, char fp[65])
{
    X509 *cert = t && t->ssl ? SSL_get0_peer_certificate(t->ssl) : NULL;
    if (!cert || SSL_get_verify_result(t->ssl) != X509_V_OK)
        return false;
    subject[0] = '\0';
    BIO *b = BIO_new(BIO_s_mem());
    if (b) {
        X509_NAME_print_ex(b, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
        int n = BIO_read(b, subject, (int)cap - 1);
        subject[n > 0 ? n : 0] = '\0';
        BIO_free(b);
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    fp[0] = '\0';
    if (X509_digest(cert, EVP_sha256(), md, &md_len) == 1) {
        static const char hex[] = "0123456789abcdef";
        for (unsigned i = 0; i < md_len && i < 32; i++) {
            fp[2 * i] = hex[md[i] >> 4];
            fp[2 * i + 1] = hex[md[i] & 15];
        }
        fp[2 * (md_len < 32 ? md_len : 32)] = '\0';
    }
    return true;
}

struct wr_str wr_tls_alpn(const struct wr_tls_conn *t)
{
    const unsigned char *p = NULL;
    unsigned int len = 0;
    SSL_get0_alpn_selected(t->ssl, &p, &len);
    return (struct wr_str){(const char *)p, len};
}

bool wr_tls_is_resumed(const struct wr_tls_conn *t)
{
    return SSL_session_reused(t->ssl) == 1;
}

const char *wr_tls_version(const struct wr_tls_conn *t)
{
    return SSL_get_version(t->ssl);
}

/* ---- upstream client contexts ----------------------------------------- */

static atomic_uint_fast64_t next_client_id = 1;

/* Appends "file:line: [upstream NAME] key: message" to errs. Returns -1. */
__attribute__((format(printf, 6, 7))) static int
client_fail(struct wr_config_errors *errs, const struct wr_config *cfg,
            const struct wr_upstream_cfg *up, unsigned line, const char *key, const char *fmt, ...)
{
    char why[1024];
    const struct wr_config_where w = wr_config_where(cfg, line);
    int n = snprintf(why, sizeof(why), "%s:%u: [upstream %s] %s: ", w.file ? w.file : "-",
                     w.line, up->name, key);
    if (n > 0 && (size_t)n < sizeof(why)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why + n, sizeof(why) - (size_t)n, fmt, ap);
        va_end(ap);
    }
    push_error(errs, why);
    return -1;
}

/* OpenSSL's new-session callback: the session (a TLS 1.3 ticket, or the
 * TLS 1.2 session at the handshake's end) replaces the slot's. Returns 1
 * when it kept the reference. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    struct wr_tls_conn *t = SSL_get_app_data(ssl);
    if (!t || !t->slot || !SSL_SESSION_is_resumable(sess))
        return 0;
    if (!*t->slot && !(*t->slot = calloc(1, sizeof(**t->slot))))
        return 0;
    SSL_SESSION_free((*t->slot)->sess);
    (*t->slot)->sess = sess;
    return 1;
}

void wr_tls_session_free(struct wr_tls_session *s)
{
    if (!s)
        return;
    SSL_SESSION_free(s->sess);
    free(s);
}

/* The host of an authority ("name:port", "[v6]:port", "10.0.0.1:80",
 * "localhost") into out, without a trailing dot. True when it is an IP
 * literal. */
static bool authority_host(const char *authority, char *out, size_t cap)
{
    const char *start = authority;
    const char *end = NULL;
    if (*start == '[') {
        start++;
        end = strchr(start, ']');
    } else {
        end = strrchr(start, ':');
    }
    size_t n = end ? (size_t)(end - start) : strlen(start);
    if (n >= cap)
        n = cap - 1;
    memcpy(out, start, n);
    if (n > 0 && out[n - 1] == '.')
        n--;
    out[n] = '\0';
    unsigned char bin[16];
    return inet_pton(AF_INET, out, bin) == 1 || inet_pton(AF_INET6, out, bin) == 1;
}

/* SNI and the name to check for each server of up. */
static int client_servers(struct wr_tls_client *c, const struct wr_upstream_cfg *up)
{
    for (size_t i = 0; i < up->n_servers; i++) {
        struct client_server *cs = &c->servers[i];
        char host[MAX_SNI_LEN + 1];
        bool is_ip = authority_host(up->servers[i].authority, host, sizeof(host));
        const char *name = up->tls_sni ? up->tls_sni : host;
        bool is_name_ip = up->tls_sni ? false : is_ip;
        if (!is_name_ip && name[0] != '\0' && !(cs->sni = strdup(name)))
            return -1;
        if (up->tls_verify && !(cs->check_name = strdup(name)))
            return -1;
        cs->is_check_ip = is_name_ip;
    }
    return 0;
}

/* tls_ca: a PEM bundle, or a directory hashed by c_rehash. */
static int load_ca(SSL_CTX *ctx, const char *path, char *why, size_t cap)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        snprintf(why, cap, "%s", strerror(errno));
        return -1;
    }
    int ok = S_ISDIR(st.st_mode) ? SSL_CTX_load_verify_dir(ctx, path)
                                 : SSL_CTX_load_verify_file(ctx, path);
    if (ok != 1) {
        ssl_error_text(why, cap);
        return -1;
    }
    return 0;
}

static SSL_CTX *new_client_ctx(void)
{
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* No SSL_OP_IGNORE_UNEXPECTED_EOF: a TCP EOF without close_notify is
     * not the end of a response whose end is the close (RFC 9112 §9.8: it
     * may be a truncation), so wr_tls_recv reports it as
     * WR_TLS_ETRUNCATED. Idle pooled connections, where nothing can be
     * truncated, turn the option on for themselves (wr_tls_set_idle); a
     * health probe reads a status line only, and takes either end alike. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    /* Same modes as the server side (one record per SSL_write). */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(ctx, 1);
    /* Sessions go to the connection's slot only: no shared cache to lock. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    if (SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static void client_free(struct wr_tls_client *c)
{
    if (!c)
        return;
    SSL_CTX_free(c->ctx);
    for (size_t i = 0; i < c->n_servers; i++) {
        free(c->servers[i].sni);
        free(c->servers[i].check_name);
    }
    free(c);
}

/* up's client context, or NULL with an error appended. */
static struct wr_tls_client *client_new(const struct wr_config *cfg,
                                        const struct wr_upstream_cfg *up,
                                        struct wr_config_errors *errs)
{
    struct wr_tls_client *c = calloc(1, sizeof(*c) + up->n_servers * sizeof(c->servers[0]));
    if (c) {
        c->n_servers = up->n_servers;
        c->id = atomic_fetch_add_explicit(&next_client_id, 1, memory_order_relaxed);
    }
    if (!c || !(c->ctx = new_client_ctx()) || client_servers(c, up) < 0) {
        client_fail(errs, cfg, up, up->line, "tls", "out of memory");
        goto fail;
    }
    if (!up->tls_verify) {
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
        return c;
    }
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    char why[512];
    if (load_ca(c->ctx, up->tls_ca, why, sizeof(why)) < 0) {
        client_fail(errs, cfg, up, up->tls_ca_line ? up->tls_ca_line : up->line, "tls_ca",
                    "%s: %s", up->tls_ca, why);
        goto fail;
    }
    return c;
fail:
    ERR_clear_error();
    client_free(c);
    return NULL;
}

static int add_clients(struct wr_tls_set *set, const struct wr_config *cfg,
                       struct wr_config_errors *errs)
{
    if (cfg->n_upstreams == 0)
        return 0;
    set->clients = calloc(cfg->n_upstreams, sizeof(*set->clients));
    if (!set->clients) {
        push_error(errs, "TLS: out of memory");
        return -1;
    }
    set->n_clients = cfg->n_upstreams;
    int rc = 0;
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        if (cfg->upstreams[i].tls && !(set->clients[i] = client_new(cfg, &cfg->upstreams[i], errs)))
            rc = -1;
    }
    return rc;
}

uint64_t wr_tls_client_id(const struct wr_tls_client *c)
{
    return c ? c->id : 0;
}

/* A client SSL for server of c: SNI and the name to verify set. */
static SSL *client_ssl_new(const struct wr_tls_client *c, size_t server)
{
    if (server >= c->n_servers)
        return NULL;
    const struct client_server *cs = &c->servers[server];
    SSL *ssl = SSL_new(c->ctx);
    if (!ssl)
        return NULL;
    bool ok = !cs->sni || SSL_set_tlsext_host_name(ssl, cs->sni) == 1;
    if (ok && cs->check_name && cs->is_check_ip) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), cs->check_name) == 1;
    } else if (ok && cs->check_name) {
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set1_host(ssl, cs->check_name) == 1;
    }
    if (!ok) {
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_connect_state(ssl);
    return ssl;
}

struct wr_tls_conn *wr_tls_client_conn_new(const struct wr_tls_client *c, size_t server, int fd,
                                           struct wr_tls_session **slot)
{
    struct wr_tls_conn *t = malloc(sizeof(*t));
    if (!t)
        return NULL;
    *t = (struct wr_tls_conn){.slot = slot};
    t->ssl = client_ssl_new(c, server);
    if (!t->ssl || attach_fd(t, fd) < 0) {
        ERR_clear_error();
        wr_tls_conn_free(t);
        return NULL;
    }
    SSL_set_app_data(t->ssl, t);
    /* OpenSSL uses a TLS 1.3 ticket once (RFC 8446 C.4: no linkable
     * reuse): a spent one stays in the slot until the next ticket. */
    SSL_SESSION *sess = slot && *slot ? (*slot)->sess : NULL;
    if (sess && SSL_SESSION_is_resumable(sess) && SSL_set_session(t->ssl, sess) != 1)
        ERR_clear_error(); /* a full handshake then */
    return t;
}

bool wr_tls_idle_check(struct wr_tls_conn *t)
{
    char byte;
    size_t n = 0;
    if (SSL_read_ex(t->ssl, &byte, 1, &n) == 1)
        return false; /* a response nobody asked for */
    int err = SSL_get_error(t->ssl, 0);
    ERR_clear_error();
    if (err == SSL_ERROR_WANT_READ) {
        /* SSL_MODE_RELEASE_BUFFERS gives the read buffer back after
         * application data only: after a late session ticket it stayed
         * (17 KiB per idle pooled connection that got one; measured with
         * bench/micro_upconn_idle.c). Nothing is in it now. */
        SSL_free_buffers(t->ssl);
        return true;
    }
    t->is_failed = err != SSL_ERROR_ZERO_RETURN;
    return false;
}

bool wr_tls_is_healthy(const struct wr_tls_conn *t)
{
    return !t->is_failed;
}

void wr_tls_set_idle(struct wr_tls_conn *t, bool is_idle)
{
    /* No response is in flight on an idle connection: a server closing it
     * without close_notify truncates nothing, and OpenSSL would otherwise
     * take the EOF for a fatal error and spoil the session for resumption. */
    if (is_idle) {
        SSL_set_options(t->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
        SSL_free_buffers(t->ssl); /* fails, harmlessly, while bytes wait in them */
    } else {
        SSL_clear_options(t->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
    }
}

/* " (certificate verify error)" after why when the peer's certificate
 * failed verification. */
static void append_verify_error(SSL *ssl, char *why, size_t cap)
{
    long v = SSL_get_verify_result(ssl);
    size_t len = strlen(why);
    if (v != X509_V_OK && len < cap)
        snprintf(why + len, cap - len, " (%s)", X509_verify_cert_error_string(v));
}

/* ---- certificate checks (weir -t, start and reload) -------------------- */

/* The leaf (first) certificate of a PEM file, or NULL: a file that cannot
 * be read or parsed is reported by wr_tls_set_new, not here. */
static X509 *read_leaf(const char *path)
{
    BIO *bio = BIO_new_file(path, "r");
    X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    ERR_clear_error();
    return x;
}

static void time_text(const ASN1_TIME *t, char *buf, size_t cap)
{
    struct tm tm;
    if (ASN1_TIME_to_tm(t, &tm) != 1 || strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(buf, cap, "(unreadable date)");
}

/* True when x answers for name, a [tls NAME] `names` entry. A wildcard
 * entry is covered when any one-label name under it is, so it is tried
 * with such a label (a certificate for "*.example.org" covers it, one for
 * "a.example.org" alone does not). */
static bool covers(X509 *x, const char *name)
{
    char probe[MAX_SNI_LEN + 16];
    size_t len = strlen(name);
    if (name[0] == '[' && len > 2 && len - 2 < sizeof(probe)) {
        snprintf(probe, sizeof(probe), "%.*s", (int)(len - 2), name + 1);
        return X509_check_ip_asc(x, probe, 0) == 1;
    }
    if (name[0] == '*')
        snprintf(probe, sizeof(probe), "weir-check%s", name + 1);
    else
        snprintf(probe, sizeof(probe), "%s", name);
    return X509_check_host(x, probe, 0, 0, NULL) == 1;
}

/* The checks of one certificate file; warnings appended to errs. */
static void check_cert(const struct wr_config *cfg, const struct wr_tls_cfg *t, size_t i,
                       X509 *x, struct wr_config_errors *errs)
{
    char where[512], when[64];
    const struct wr_config_where w =
        wr_config_where(cfg, t->cert_lines[i] ? t->cert_lines[i] : t->line);
    snprintf(where, sizeof(where), "%s:%u: warning: [tls%s%s] cert: %s", w.file ? w.file : "-",
             w.line, t->name ? " " : "", t->name ? t->name : "", t->certs[i]);
    if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
        time_text(X509_get0_notAfter(x), when, sizeof(when));
        wr_config_errors_add(errs, true, "%s: expired on %s", where, when);
    } else if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
        time_text(X509_get0_notBefore(x), when, sizeof(when));
        wr_config_errors_add(errs, true, "%s: not valid before %s", where, when);
    }
    char missing[1024] = "";
    size_t len = 0;
    for (size_t k = 0; k < t->n_names && len < sizeof(missing); k++) {
        if (!covers(x, t->names[k]))
            len += (size_t)snprintf(missing + len, sizeof(missing) - len, "%s\"%s\"",
                                    len ? ", " : "", t->names[k]);
    }
    if (len > 0)
        wr_config_errors_add(errs, true,
                             "%s: does not cover %s (a client asking for it gets a "
                             "certificate it rejects)", where, missing);
}

void wr_tls_check_certs(const struct wr_config *cfg, struct wr_config_errors *errs)
{
    for (size_t s = 0; s < cfg->n_tls; s++) {
        const struct wr_tls_cfg *t = &cfg->tls[s];
        for (size_t i = 0; i < t->n_certs; i++) {
            X509 *x = read_leaf(t->certs[i]);
            if (!x)
                continue;
            check_cert(cfg, t, i, x, errs);
            X509_free(x);
        }
    }
}
