/*
 * config: the ini file (inih) turned into one immutable, reference-counted
 * snapshot, struct wr_config. The schema is ../shared/CONFIG.md.
 *
 * Every key is looked up in one table per section; values are parsed by
 * units/tmpl, cross-references (route -> upstream, listen tls -> [tls]) are
 * resolved at load, regexes are compiled (PCRE2 with JIT) here so `weir -t`
 * reports them. Errors are collected, never fatal one by one:
 *   "weir.ini:12: [route api] proxy: no upstream named \"ap\""
 * A snapshot is built by one thread (main), then published and only read;
 * only its reference count changes afterwards. Layer 1: no libevent, no
 * OpenSSL.
 *
 * `include = GLOB` lines read other files in place (README "include"), so
 * every `line` member below is a position: a running count of the lines
 * read, across files, in reading order. Without includes it is the line
 * number; wr_config_where() turns any position into file and line.
 */
#ifndef WEIR_CONFIG_H
#define WEIR_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weir/cache_policy.h"
#include "weir/http_parser.h"
#include "weir/log_format.h"
#include "weir/tmpl.h"
#include "weir/cidr.h"
#include "weir/units.h"

struct pcre2_real_code_8; /* pcre2_code; kept out of this header */
struct wr_tls_client;     /* tls.h: one [upstream]'s TLS client context (layer 2) */
struct wr_route_index;    /* route_index.h: routes by first path segment */
struct wr_tls_set;        /* tls.h: the OpenSSL contexts built from tls[] (layer 2) */

/* Frees what a snapshot holds on behalf of a higher layer (see tls_set). */
typedef void (*wr_config_tls_release_fn)(struct wr_tls_set *set);
struct wr_cache_store;
struct wr_cache_disk;
struct wr_cache_cfg;
/* Lets go of a snapshot's reference on a cache store (cache_store.h). */
typedef void (*wr_config_cache_release_fn)(struct wr_cache_store *store);

enum wr_log_level { WR_LOG_ERROR = 0, WR_LOG_WARN, WR_LOG_INFO, WR_LOG_DEBUG };

struct wr_listen_cfg {
    struct wr_listen_addr addr;
    bool is_tls; /* "tls" flag; requires a [tls] section */
    bool is_h2c; /* "h2c" flag: HTTP/2 with prior knowledge too (plain only) */
    bool is_proxy_protocol; /* "proxy_protocol" flag: a PROXY v1/v2 header comes
                               first, from [server] proxy_protocol_from only */
    unsigned line;
};

/* error_page = CODE... PATH: the page served, through the route table,
 * for an answer of one status (error_page.h). */
struct wr_error_page {
    int status;  /* 300..599 */
    char *path;  /* owned: starts with '/'; a query may follow */
};

/* A [server]'s or a route's error_page lines. A route without any borrows
 * [server]'s list (is_borrowed): a route's own list replaces it whole. */
struct wr_error_pages {
    struct wr_error_page *pages; /* owned unless is_borrowed; one per status */
    size_t n_pages;
    bool is_borrowed;
};

struct wr_server_cfg {
    struct wr_listen_cfg *listens; /* owned, n_listens >= 1 */
    size_t n_listens;
    struct wr_cidr *proxy_from;    /* owned: who may send a PROXY header */
    size_t n_proxy_from;
    unsigned n_workers;       /* resolved: "auto" = online CPUs */
    char *user, *group;       /* owned, NULL when unset */
    uint64_t max_connections; /* whole process */
    char *server_header;      /* owned; NULL when "off" */
    char *access_log;         /* owned path, "stderr", or NULL for off */
    struct wr_log_format access_log_format; /* owned, compiled */
    char *error_log;          /* owned path or "stderr" */
    enum wr_log_level log_level;
    bool underscores_in_headers; /* default of the proxy routes' key (off: dropped) */
    struct wr_listen_addr *resolvers; /* owned: `resolver`, nameservers used instead of
                                         /etc/resolv.conf's (resolve.h); none: the system's */
    size_t n_resolvers;
    struct wr_error_pages error_pages; /* error_page: every route's default */
    /* Lines of user, group, error_log and access_log (0 = not given), for
     * checks made outside the loader (weir -t: users, files). */
    unsigned user_line, group_line, error_log_line, access_log_line;
};

struct wr_limits_cfg {
    uint64_t header_timeout_ms;
    uint64_t body_timeout_ms;
    uint64_t keepalive_timeout_ms;
    uint64_t send_timeout_ms;
    uint64_t max_header_bytes;
    uint64_t max_body_bytes; /* 0 = unlimited */
    uint64_t max_requests_per_connection; /* 0 = unlimited */
    uint64_t shutdown_timeout_ms;
    uint64_t max_connections_per_ip; /* 0 = off; unix-socket clients exempt */
    uint64_t max_headers;            /* 1..WR_HTTP_MAX_HEADERS; 431 beyond */
};

/* A route's rate_limit: a token bucket per client address ("100r/s burst=200"). */
struct wr_rate_limit {
    uint64_t interval_us; /* one request's worth of refill; 0 = no limit */
    uint64_t burst;       /* bucket size: requests accepted at once */
};

/* One line of an htpasswd file: a user and the crypt(3) hash of its
 * password. */
struct wr_auth_user {
    char *name; /* owned */
    char *hash; /* owned: "$y$...", "$2b$...", "$6$...", "$5$...", "$1$..." */
};

struct wr_header_cfg {
    char *name;         /* owned */
    struct wr_tmpl value;
    /* Response rules (add_header, set_response_header) only: */
    bool is_always;     /* "always": also on answers of status >= 400 */
    bool is_replace;    /* set_response_header, or add_header of a singleton
                           field: an upstream's fields of that name go */
};

#define WR_TLS_MAX_CERTS 4 /* cert/key pairs per [tls] section */

struct wr_tls_cfg {
    char *name;     /* owned; NULL for the default [tls] */
    char **names;   /* owned SNI names (lower-case; "*.x" wildcards) */
    size_t n_names;
    char **certs, **keys; /* owned paths, paired in order (cert i goes with key i):
                             one pair per key type, e.g. an ECDSA and an RSA one */
    size_t n_certs, n_keys; /* equal after a successful load, 1..WR_TLS_MAX_CERTS */
    unsigned cert_lines[WR_TLS_MAX_CERTS], key_lines[WR_TLS_MAX_CERTS]; /* of certs[i], keys[i] */
    char *protocols;  /* owned, as written, e.g. "TLSv1.2 TLSv1.3" */
    char *ciphers;
    bool session_tickets;
    uint64_t handshake_timeout_ms;
    char *alpn;
    char *client_ca;      /* owned path: CAs client certificates must chain to */
    char *ocsp_file;      /* owned path: a DER OCSP response to staple (the
                             first cert's), fetched by another tool; or NULL */
    bool ocsp_stapling;   /* fetch, verify and staple each cert's OCSP response
                             (stapler.h); ocsp_file wins for the first cert */
    int verify_client;    /* 0 off, 1 optional (asked, checked when sent), 2 on (required) */
    uint64_t verify_depth; /* intermediate CAs allowed between a client's
                              certificate and client_ca (OpenSSL's depth) */
    unsigned line;
};

enum wr_balance { WR_BALANCE_ROUND_ROBIN = 0, WR_BALANCE_LEAST_CONN, WR_BALANCE_HASH,
                  WR_BALANCE_RANDOM };

struct wr_upstream_server_cfg {
    struct wr_listen_addr addr; /* resolved at load; addr.text is numeric */
    char *label;     /* owned: for logs and metrics: addr.text, or
                        "app.internal:9000 (10.0.0.7:9000)" for a resolved name */
    char *authority; /* owned: the server's own Host value: "app.internal:9000"
                        or "localhost:9000" as written, else addr.text; "localhost"
                        for unix: sockets */
    unsigned weight; /* 1..100 */
    unsigned line;
    bool is_named;   /* from a host name (authority "name:port"), so the upstream's
                        `resolve` re-resolves it; false for IP literals, localhost, unix: */
    unsigned metrics_id;        /* 0 until main registers the snapshot (metrics.h) */
};

/* Active-check verdict of a server (wr_server_health.check). */
enum wr_check_state { WR_CHECK_UNKNOWN = 0, WR_CHECK_UP, WR_CHECK_DOWN };

/*
 * Health of one server, shared by every worker and the health checker: the
 * only mutable part of a snapshot besides refs. Atomics only, relaxed order
 * (each field is a self-contained hint; nothing else is published through
 * them). Written by upstream.c; carried across reloads by
 * wr_upstream_carry_health. Times are CLOCK_MONOTONIC milliseconds.
 */
struct wr_server_health {
    atomic_uint_fast64_t fail_window_start_ms; /* first failure of the current window */
    atomic_uint fails;                         /* failures counted in that window */
    atomic_uint_fast64_t down_until_ms;        /* passive: out until then; 0 = in */
    atomic_int check;                          /* enum wr_check_state */
};

enum wr_hash_key_kind {
    WR_HASH_KEY_CLIENT_IP = 0,
    WR_HASH_KEY_URI,
    WR_HASH_KEY_HEADER,
    WR_HASH_KEY_COOKIE,
};

struct wr_upstream_cfg {
    char *name; /* owned */
    struct wr_upstream_server_cfg *servers; /* owned; a host name gives one per address */
    size_t n_servers;
    struct wr_server_health *health; /* owned: n_servers entries, same index */
    enum wr_balance balance;
    int send_proxy_protocol;  /* 0 off, 1 or 2: a PROXY header of that version
                                 starts every connection to the servers (their
                                 connections are then not pooled) */
    char *hash_key; /* owned: "client_ip", "uri", "header:NAME", "cookie:NAME" */
    enum wr_hash_key_kind hash_kind; /* hash_key, read once (wr_upstream_cfg_compile_hash_key) */
    struct wr_str hash_name;         /* header or cookie NAME, within hash_key */
    uint64_t keepalive;
    uint64_t keepalive_timeout_ms, connect_timeout_ms, send_timeout_ms, read_timeout_ms;
    uint64_t retries, max_fails, fail_timeout_ms;
    char *health_check; /* owned "METHOD /path", NULL when unset */
    uint64_t health_interval_ms, health_timeout_ms;
    uint64_t resolve_ms; /* `resolve`: re-resolve the named servers this often (or at
                            the records' TTL, if sooner); 0 = off */
    bool tls, tls_verify;
    char *tls_ca, *tls_sni;
    unsigned tls_ca_line; /* where tls_ca was set (the section's line for the default) */
    unsigned line;
    /* tls = on: the client context (tls.h), set by wr_tls_set_attach before
     * the snapshot is published; borrowed from tls_set. NULL otherwise. */
    const struct wr_tls_client *tls_client;
};

enum wr_route_match_kind { WR_ROUTE_EXACT = 0, WR_ROUTE_PREFIX, WR_ROUTE_REGEX };
/* The route key scheme: which connections a route takes requests from. */
enum wr_route_scheme {
    WR_ROUTE_SCHEME_ANY = 0, /* unset: plain and TLS listeners alike */
    WR_ROUTE_SCHEME_HTTP,    /* only requests that came over plain TCP (or unix) */
    WR_ROUTE_SCHEME_HTTPS,   /* only requests that came over TLS */
};
enum wr_route_action { WR_ACTION_STATIC = 1, WR_ACTION_PROXY, WR_ACTION_REDIRECT,
                       WR_ACTION_RETURN };

struct wr_route {
    char *name; /* owned: the NAME of [route NAME] */
    unsigned line;
    unsigned metrics_id; /* same name, same id across reloads; set by main before
                            publishing (metrics.h), 0 until then */

    enum wr_route_scheme scheme;
    enum wr_route_match_kind match_kind;
    char *pattern;         /* owned: text after "exact:", "prefix:" or "regex:";
                              exact:* matches only asterisk-form (OPTIONS *) */
    size_t pattern_len;
    struct pcre2_real_code_8 *regex; /* owned, WR_ROUTE_REGEX only, JIT-compiled */
    unsigned n_regex_captures;       /* capture groups in regex */
    bool is_regex_jit;               /* regex has JIT code pcre2_jit_match may run */
    char *literal;                   /* owned, regex only: what every path it
                                        matches starts with (route_index.h); or NULL */
    size_t literal_len;

    char **hosts; /* owned, lower-case; "*.example.org" wildcards; none = any */
    size_t n_hosts;

    uint32_t method_mask; /* 1u << enum wr_http_method; 0 = any method.
                             GET implies HEAD. */
    char **other_methods; /* owned: tokens that are not known methods */
    size_t n_other_methods;
    char *allow;          /* owned: the Allow field value, e.g. "GET, HEAD" */

    enum wr_route_action action;

    int status;           /* return and redirect */
    char *return_body;    /* owned (may be ""), for return; return_file's content */
    size_t return_body_len;
    char *return_type;    /* owned: Content-Type of a return body (return_type, else
                             return_file's by extension); NULL: text/plain */
    char *return_file;    /* owned: return_file's path, read at load into return_body */
    struct wr_tmpl redirect_target; /* for redirect */

    char *root;           /* owned: static */
    unsigned root_line;
    char *strip_prefix;   /* owned or NULL: static and proxy */
    char *index;          /* owned, default "index.html" */
    bool autoindex, precompressed, follow_symlinks;
    bool dotfiles;        /* serve names starting with '.' (default off: 404) */
    bool has_expires;
    uint64_t expires_ms;

    char *proxy;          /* owned upstream name */
    const struct wr_upstream_cfg *upstream; /* borrowed: resolved reference */
    struct wr_tmpl rewrite; /* text NULL when unset */
    bool preserve_host, forwarded_headers, websocket;
    bool underscores_in_headers; /* forward request fields with '_' in the name;
                                    [server]'s value unless the route sets it */
    bool abort_on_eof;    /* a client EOF after the request aborts the exchange (499) */
    uint64_t websocket_timeout_ms;
    struct wr_header_cfg *set_headers; /* owned */
    size_t n_set_headers;

    struct wr_header_cfg *add_headers; /* owned */
    size_t n_add_headers;
    uint32_t replaced_fields; /* 1u << enum wr_http_field for each name weir
                                 itself writes that add_headers sets: weir's
                                 field is dropped, the route's replaces it
                                 (answers below 400) */
    uint32_t replaced_fields_always; /* the same for the "always" rules: what
                                        answers of status >= 400 replace */
    uint32_t hidden_fields;   /* weir's own fields hide_header names: dropped
                                 from every answer of the route */
    char **hide_headers;  /* owned: fields dropped from every answer (upstream's
                             and weir's own) */
    size_t n_hide_headers;
    struct wr_access_rule *access; /* owned: allow and deny, in file order */
    size_t n_access;
    bool require_client_cert; /* 403 without a verified client certificate */
    char *auth_challenge;  /* owned: the WWW-Authenticate value of auth_basic
                              ("Basic realm=\"...\", charset=\"UTF-8\""), NULL: off */
    struct wr_auth_user *auth_users; /* owned: auth_basic_file, read at load */
    size_t n_auth_users;
    unsigned compress_mask;   /* 1u << enum wr_coding allowed; 0: compress = off */
    char **compress_types;    /* owned, lower-case media types; a subtype
                                 may be "*" or "*+suffix"; none: the
                                 built-in list (compress_filter.c) */
    size_t n_compress_types;
    uint64_t compress_min_length;

    struct wr_rate_limit rate_limit; /* any action; interval_us 0 = unlimited */
    /* access_log: 0 = [server]'s, -1 = off, k >= 1 = the config's
     * route_access_logs[k - 1] (a file of the route's own) */
    int access_log_id;
    char *access_log;      /* owned: the route's access_log path; NULL: unset or off */
    unsigned access_log_line; /* where access_log was given (weir -t's file checks) */

    /* The HTTP cache (issue 20), proxy routes only. */
    char *cache_name;      /* owned: cache = NAME; NULL: the route does not cache */
    const struct wr_cache_cfg *cache; /* borrowed: the resolved [cache NAME] */
    struct wr_tmpl cache_key; /* default $scheme$host$request_uri; compiled
                                 whenever cache is set (text NULL otherwise) */
    /* cache_methods (GET, HEAD), cache_valid (valid: owned array),
     * cache_set_cookie, cache_stale_while_revalidate / cache_stale_if_error
     * (route defaults, RFC 5861), for cache_policy's decisions. */
    struct wr_cache_opts cache_opts;
    uint64_t cache_lock_timeout_ms; /* a request waiting for another's fetch of
                                       the same key goes upstream itself after */
    struct wr_error_pages error_pages; /* error_page: its own, else [server]'s */
    bool proxy_intercept_errors; /* proxy: an upstream status error_pages lists
                                    gets the error page instead */
};

/* [http2]: the HTTP/2 front end's limits (issue 15). Read when a connection
 * goes HTTP/2: a reload applies to new connections. */
struct wr_http2_cfg {
    uint64_t max_concurrent_streams; /* SETTINGS_MAX_CONCURRENT_STREAMS, 1..1000 */
    uint64_t idle_timeout_ms;        /* no stream open and nothing to send: closed */
    uint64_t hpack_table_bytes;      /* SETTINGS_HEADER_TABLE_SIZE we decode with, 0..64k */
};

/* [compression]: how weir compresses responses on the fly (compress.h). */
struct wr_compression_cfg {
    uint8_t prefer[3];        /* enum wr_coding, most preferred first */
    size_t n_prefer;
    uint64_t gzip_level, brotli_level, zstd_level;
    uint64_t max_memory;      /* per worker: encoder state of responses being compressed */
    uint64_t cache_bytes;     /* per worker: compressed copies of static files */
    uint64_t cache_file_max;  /* larger files are compressed as they are sent */
};

/* [cache NAME]: one response store shared by every worker (issue 20). */
struct wr_cache_cfg {
    char *name;               /* owned */
    unsigned line;
    uint64_t max_size;        /* bytes stored at most (keys, heads, bodies) */
    uint64_t max_object_size; /* larger responses pass through uncached */
    uint64_t inactive_ms;     /* an entry not hit for this long goes */
    char *path;               /* owned or NULL: the disk tier's directory */
    uint64_t max_disk_size;   /* the disk tier's files, in bytes */
    /* Set by main before the snapshot is published: the store, shared with
     * the previous snapshot when the section is unchanged (same name, same
     * sizes), else new. The snapshot holds one reference, released with
     * release_cache when the last reference to the snapshot goes. */
    struct wr_cache_store *store;
    /* With path: the disk tier (cache_disk.h), opened by main with the
     * store and closed when the store goes (wr_cache_store_on_free). */
    struct wr_cache_disk *disk;
};

struct wr_admin_cfg {
    bool is_enabled;
    struct wr_listen_addr listen;
    struct wr_access_rule *access; /* owned: allow and deny, in file order */
    size_t n_access;
    char *auth_challenge;          /* owned: as a route's; NULL: no authentication */
    struct wr_auth_user *auth_users; /* owned */
    size_t n_auth_users;
};

/* A run of consecutive positions read from one file (see the file comment). */
struct wr_config_span {
    unsigned first_pos;  /* position of the run's first line */
    unsigned first_line; /* its line number in the file */
    unsigned file;       /* index into wr_config.files */
};

#define WR_ROUTE_ACCESS_LOGS_MAX 4

struct wr_config {
    atomic_uint refs;
    char *path; /* owned: file it came from */
    char **files; /* owned: path, then every included file in reading order */
    size_t n_files;
    struct wr_config_span *spans; /* owned, by first_pos: where each position was read */
    size_t n_spans;

    struct wr_server_cfg server;
    struct wr_limits_cfg limits;
    struct wr_tls_cfg *tls; /* owned; tls[0] is [tls] when has_default_tls */
    size_t n_tls;
    bool has_default_tls;
    struct wr_upstream_cfg *upstreams;
    size_t n_upstreams;
    struct wr_route *routes; /* file order */
    size_t n_routes;
    struct wr_admin_cfg admin;
    struct wr_http2_cfg http2;
    struct wr_compression_cfg compression;
    struct wr_route_index *route_index; /* owned: candidates per path (route_index.h) */
    /* Access log files of routes' own (access_log = PATH on a route, other
     * than [server]'s), sorted, distinct, at most WR_ROUTE_ACCESS_LOGS_MAX;
     * a route's access_log_id k >= 1 names [k - 1]. Owned. */
    char **route_access_logs;
    size_t n_route_access_logs;
    bool has_websocket_route;  /* a proxy route has websocket = on: HTTP/2 offers
                                  extended CONNECT (RFC 8441) */

    /* Built by main from tls[] after the load and before the snapshot is
     * published, so a connection keeps the certificates it started with for
     * as long as it holds the snapshot. NULL without [tls]. Released with
     * release_tls_set when the last reference goes (config cannot call up
     * into tls itself). */
    struct wr_tls_set *tls_set;
    wr_config_tls_release_fn release_tls_set;

    struct wr_cache_cfg *caches; /* owned: [cache NAME] sections, file order */
    size_t n_caches;
    wr_config_cache_release_fn release_cache; /* set by main with the stores */

    /* A snapshot made by wr_config_derive (a DNS change): everything but
     * upstreams and routes is borrowed from this one, the snapshot loaded
     * from the file, on which it holds a reference. NULL when loaded. */
    struct wr_config *derived_from;
};

/* Collected load errors, one line each, in file order. */
/* What loading found. Errors refuse the file; warnings are reported
 * (weir -t prints them, start and reload log them) and the file loads. */
struct wr_config_errors {
    char **lines; /* owned: "file:line: [section] key: message" */
    size_t n_lines;
    char **warnings; /* owned: "file:line: warning: [section] key: message" */
    size_t n_warnings;
};

/*
 * Resolves a server's host name (no brackets, no port) for TCP at load.
 * Fills up to cap distinct addresses (port set to port) into out and returns
 * how many (>= 1), or returns -1 with *why set to a static message (the
 * gai_strerror text). Called on the loading thread only.
 */
typedef int (*wr_config_resolve_fn)(const char *host, uint16_t port, struct wr_listen_addr *out,
                                    size_t cap, const char **why);

/* The resolver wr_config_load uses: getaddrinfo (may block on DNS). */
int wr_config_resolve_getaddrinfo(const char *host, uint16_t port, struct wr_listen_addr *out,
                                  size_t cap, const char **why);

/*
 * As wr_config_resolve_fn, asking the nameservers ns[0..n_ns) (`[server]
 * resolver`) instead of the system resolver.
 */
typedef int (*wr_config_resolve_ns_fn)(const struct wr_listen_addr *ns, size_t n_ns,
                                       const char *host, uint16_t port,
                                       struct wr_listen_addr *out, size_t cap, const char **why);

/* A named server's (srv->is_named) host, lower-cased into host (cap
 * bytes), and port, from its authority. false for other servers. Pure. */
bool wr_config_server_name(const struct wr_upstream_server_cfg *srv, char *host, size_t cap,
                           uint16_t *port);

/* Most addresses one server line may resolve to; the rest are ignored. */
#define WR_CONFIG_MAX_ADDRS_PER_NAME 32

struct wr_config_options {
    /* NULL: host names in `server` are refused with an error and no lookup
     * is made (the fuzz target: it must never do DNS). */
    wr_config_resolve_fn resolve;
    /* When `[server] resolver` is set and resolve is not NULL, names are
     * resolved with this instead (NULL: with resolve). Names are resolved
     * once the whole file is read, so `resolver` may come after the
     * upstreams. */
    wr_config_resolve_ns_fn resolve_ns;
    /* true: `include` reads files (relative to name's directory); false: an
     * include line is an error (the fuzz target: no file system). */
    bool allow_include;
};

/*
 * Loads path. Returns a snapshot with one reference, or NULL with every
 * problem appended to errs (the caller frees errs with
 * wr_config_errors_fini). Main thread only.
 */
struct wr_config *wr_config_load(const char *path, struct wr_config_errors *errs);

/* As wr_config_load, resolving host names as opts says (opts not NULL). */
struct wr_config *wr_config_load_opts(const char *path, const struct wr_config_options *opts,
                                      struct wr_config_errors *errs);

/*
 * A snapshot like cur (a loaded or a derived one; the caller keeps its
 * reference) whose upstream u has the servers servers[u][0..n_servers[u])
 * (copied; servers[u] NULL: cur's kept). Everything read from files (routes'
 * regexes and templates, htpasswd users, TLS contexts, file names) is
 * borrowed from the loaded snapshot, so a DNS change never picks up an
 * edit of the file that was not reloaded. Health starts unknown (carry it
 * with wr_upstream_carry_health) and metrics ids at 0. Returns the new
 * snapshot with one reference, or NULL when out of memory. Main thread.
 */
struct wr_config *wr_config_derive(struct wr_config *cur,
                                   struct wr_upstream_server_cfg *const *servers,
                                   const size_t *n_servers);

/* As wr_config_load, from text in memory; name stands for the file in
 * errors. Host names are resolved with getaddrinfo; include lines read files
 * relative to name's directory. Used by tests. */
struct wr_config *wr_config_parse_string(const char *text, const char *name,
                                         struct wr_config_errors *errs);

/* As wr_config_parse_string, resolving host names with opts->resolve (see
 * struct wr_config_options). opts must not be NULL. */
struct wr_config *wr_config_parse_string_opts(const char *text, const char *name,
                                              const struct wr_config_options *opts,
                                              struct wr_config_errors *errs);

void wr_config_errors_fini(struct wr_config_errors *errs);

/* Appends one formatted line to errs: an error, or a warning. For checks
 * made outside the loader (TLS files, users, directories). Returns 0, or -1
 * when out of memory (the line is lost). Main thread only. */
int wr_config_errors_add(struct wr_config_errors *errs, bool is_warning, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Where position pos (a `line` member of cfg's structs) was read: the file
 * (borrowed from cfg, valid as long as cfg) and the line in it. Position 0
 * (the file as a whole) gives {cfg->path, 0}. Any thread. */
struct wr_config_where {
    const char *file;
    unsigned line;
};
struct wr_config_where wr_config_where(const struct wr_config *cfg, unsigned pos);

/* Takes a reference; any thread. Returns cfg. */
struct wr_config *wr_config_ref(struct wr_config *cfg);

/* Drops a reference; the last one frees the snapshot. Any thread; NULL ok. */
void wr_config_unref(struct wr_config *cfg);

/* Sets u->hash_kind and u->hash_name from u->hash_key (NULL: client_ip),
 * so a request reads its balancer key without parsing the setting; the
 * loader does it for every upstream. */
void wr_upstream_cfg_compile_hash_key(struct wr_upstream_cfg *u);

#endif
