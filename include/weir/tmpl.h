/*
 * tmpl: value templates with variables, for redirect, set_header and
 * add_header (CONFIG.md "Values"): $host, $request_uri, $scheme,
 * $remote_addr, $request_id and $1..$9 from a regex: match. "$$" is a
 * literal '$'; "${name}" may be used where a letter follows.
 *
 * Compiled once at config load; expanded per request without allocation.
 * Layer 0.
 */
#ifndef WEIR_TMPL_H
#define WEIR_TMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "weir/str.h"

enum wr_tmpl_var {
    WR_TMPL_LITERAL = 0,
    WR_TMPL_HOST,
    WR_TMPL_REQUEST_URI,
    WR_TMPL_SCHEME,
    WR_TMPL_REMOTE_ADDR,
    WR_TMPL_REQUEST_ID,
    WR_TMPL_SSL_CLIENT_S_DN,
    WR_TMPL_SSL_CLIENT_FINGERPRINT,
    WR_TMPL_SSL_CLIENT_VERIFY,
    WR_TMPL_CAPTURE,
};

struct wr_tmpl_part {
    enum wr_tmpl_var var;
    unsigned capture;  /* 1..9 for WR_TMPL_CAPTURE */
    struct wr_str lit; /* WR_TMPL_LITERAL: points into the template's text */
};

struct wr_tmpl {
    char *text; /* owned: the source text */
    struct wr_tmpl_part *parts; /* owned */
    size_t n_parts;
    unsigned max_capture; /* highest $N used, 0 when none */
};

/*
 * Compiles text into t (caller-provided memory). Returns 0, or -1 with a
 * static message in *err ("unknown variable", "$ at end of value", ...).
 * On success t owns copies of everything; release with wr_tmpl_fini.
 */
int wr_tmpl_init(struct wr_tmpl *t, const char *text, const char **err);

/* Frees what t owns; t may be zeroed memory. */
void wr_tmpl_fini(struct wr_tmpl *t);

/* True when t holds no variables (its text can be used as is). */
bool wr_tmpl_is_literal(const struct wr_tmpl *t);

struct wr_tmpl_vars {
    struct wr_str host, request_uri, scheme, remote_addr, request_id;
    /* The client certificate ([tls] verify_client): subject, SHA-256
     * fingerprint, "SUCCESS" or "NONE" (empty strings without TLS) */
    struct wr_str ssl_client_s_dn, ssl_client_fingerprint, ssl_client_verify;
    const char *subject;   /* string the regex ran on, or NULL */
    const size_t *ovector; /* PCRE2 pairs: [2*i], [2*i+1]; unset = SIZE_MAX */
    unsigned n_captures;   /* pairs available in ovector (including $0) */
};

/*
 * Expands t into out[0..cap). An unset or missing capture expands to "".
 * Returns the length written, or -1 when cap is too small (out unspecified).
 */
ssize_t wr_tmpl_expand(const struct wr_tmpl *t, const struct wr_tmpl_vars *vars, char *out,
                       size_t cap);

#endif
