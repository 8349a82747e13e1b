/*
 * auth: Basic authentication against crypt(3) hashes (see auth.h).
 */
#include "weir/auth.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS 256           /* direct-mapped by key */
#define CACHE_TTL_MS (60 * 1000)

struct cache_slot {
    unsigned char key[SHA256_DIGEST_LENGTH];
    uint64_t expires_ms; /* 0: empty */
};

struct wr_auth_cache {
    struct cache_slot slots[CACHE_SLOTS];
    struct crypt_data crypt; /* crypt_r's state (32 KiB): one per worker */
};

struct wr_auth_cache *wr_auth_cache_new(void)
{
    return calloc(1, sizeof(struct wr_auth_cache));
}

void wr_auth_cache_free(struct wr_auth_cache *cache)
{
    if (cache)
        OPENSSL_cleanse(cache, sizeof(*cache));
    free(cache);
}

/* SHA-256 of the stored hash and the field: the cache key. Returns false
 * when it could not be made (out of memory): the check then runs uncached. */
static bool cache_key(const char *hash, struct wr_str field, unsigned char out[32])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int n = 0;
    bool is_made = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
                   EVP_DigestUpdate(c, hash, strlen(hash) + 1) == 1 &&
                   EVP_DigestUpdate(c, field.ptr, field.len) == 1 &&
                   EVP_DigestFinal_ex(c, out, &n) == 1 && n == 32;
    EVP_MD_CTX_free(c);
    return is_made;
}

/* Whether crypt(password, hash) gives hash, in time independent of where
 * they differ. */
static bool hash_matches(struct crypt_data *cd, const char *password, const char *hash)
{
    const char *got = crypt_r(password, hash, cd);
    size_t n = strlen(hash);
    if (!got || got[0] == '*' || strlen(got) != n)
        return false;
    return CRYPTO_memcmp(got, hash, n) == 0;
}

enum wr_auth_result wr_auth_basic_check(struct wr_auth_cache *cache,
                                        const struct wr_auth_user *users, size_t n,
                                        struct wr_str field, const char **user, uint64_t now_ms)
{
    struct wr_str v = wr_str_trim(field);
    if (!v.ptr || v.len < 6 || strncasecmp(v.ptr, "Basic ", 6) != 0)
        return WR_AUTH_MISSING;
    struct wr_str b64 = wr_str_trim((struct wr_str){v.ptr + 6, v.len - 6});
    if (b64.len == 0 || b64.len > 1024 || b64.len % 4 != 0)
        return WR_AUTH_BAD;
    unsigned char decoded[800];
    int len = EVP_DecodeBlock(decoded, (const unsigned char *)b64.ptr, (int)b64.len);
    if (len < 0)
        return WR_AUTH_BAD;
    /* EVP_DecodeBlock counts the padding's zero bytes: take them off. */
    if (b64.ptr[b64.len - 1] == '=')
        len--;
    if (b64.ptr[b64.len - 2] == '=')
        len--;
    decoded[len] = '\0';
    char *colon = memchr(decoded, ':', (size_t)len);
    if (!colon || memchr(decoded, '\0', (size_t)len))
        return WR_AUTH_BAD;
    *colon = '\0';
    const char *name = (const char *)decoded, *password = colon + 1;
    const struct wr_auth_user *u = NULL;
    for (size_t i = 0; i < n && !u; i++) {
        if (strcmp(users[i].name, name) == 0)
            u = &users[i];
    }
    unsigned char key[SHA256_DIGEST_LENGTH];
    struct cache_slot *slot = NULL;
    if (u && cache && cache_key(u->hash, v, key)) {
        slot = &cache->slots[key[0] % CACHE_SLOTS];
        if (slot->expires_ms > now_ms && CRYPTO_memcmp(slot->key, key, sizeof(key)) == 0) {
            OPENSSL_cleanse(decoded, sizeof(decoded));
            *user = u->name;
            return WR_AUTH_OK;
        }
    }
    struct crypt_data *cd = cache ? &cache->crypt : calloc(1, sizeof(*cd));
    bool is_ok = false;
    if (cd) {
        /* An unknown user runs the first user's hash (same method, same
         * cost) and fails whatever it gives: timing tells no names. */
        const char *hash = u ? u->hash : n > 0 ? users[0].hash : NULL;
        is_ok = hash && hash_matches(cd, password, hash) && u != NULL;
        if (!cache)
            free(cd);
    }
    OPENSSL_cleanse(decoded, sizeof(decoded));
    if (!is_ok)
        return WR_AUTH_BAD;
    if (slot) {
        memcpy(slot->key, key, sizeof(key));
        slot->expires_ms = now_ms + CACHE_TTL_MS;
    }
    *user = u->name;
    return WR_AUTH_OK;
}
