/*
 * auth: HTTP Basic authentication (RFC 7617) against a route's users
 * (auth_basic_file: crypt(3) hashes, checked by libcrypt).
 *
 * A check decodes the Authorization field, finds the user and runs
 * crypt_r over the password with the stored hash as its setting; the
 * result is compared with the hash in constant time. An unknown user costs
 * the same hash run (the first user's hash, failing whatever it gives),
 * so timing does not tell
 * which users exist. Hashes made for passwords are slow by design
 * (yescrypt, bcrypt: milliseconds): a per-worker cache remembers, for a
 * minute, credentials that passed, keyed by a SHA-256 of the stored hash
 * and the field (a changed password or file changes the key), so a client
 * sending the same credentials on every request pays the hash once.
 *
 * Not here: the 401 and its challenge, failure throttling (the front
 * ends). Worker thread only (one cache per worker). Layer 2: libcrypt,
 * OpenSSL (base64, SHA-256).
 */
#ifndef WEIR_AUTH_H
#define WEIR_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "weir/config.h"
#include "weir/str.h"

struct wr_auth_cache;

/* A worker's cache; NULL when out of memory (checks then run uncached). */
struct wr_auth_cache *wr_auth_cache_new(void);
void wr_auth_cache_free(struct wr_auth_cache *cache);

enum wr_auth_result {
    WR_AUTH_OK = 0,
    WR_AUTH_MISSING, /* no Authorization field, or not Basic */
    WR_AUTH_BAD,     /* malformed, unknown user or wrong password */
};

/*
 * Checks the Authorization value field (ptr NULL: absent) against users.
 * On WR_AUTH_OK, *user is the user's name (borrowed from users). cache
 * may be NULL.
 */
enum wr_auth_result wr_auth_basic_check(struct wr_auth_cache *cache,
                                        const struct wr_auth_user *users, size_t n,
                                        struct wr_str field, const char **user, uint64_t now_ms);

#endif
