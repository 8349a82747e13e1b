/*
 * hash: the one non-cryptographic hash weir uses to spread keys (consistent
 * hashing of upstream servers, per-address limit tables). Not for secrets:
 * where an attacker could aim collisions, callers mix in a random seed.
 * Layer 0: pure, header only.
 */
#ifndef WEIR_HASH_H
#define WEIR_HASH_H

#include <stddef.h>
#include <stdint.h>

/* MurmurHash3's 64-bit finaliser: every input bit reaches every output bit. */
static inline uint64_t wr_hash_mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* FNV-1a over the bytes, finished by wr_hash_mix64 (FNV-1a alone mixes its
 * last bytes poorly into the high bits). */
static inline uint64_t wr_hash_bytes(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return wr_hash_mix64(h ^ len);
}

#endif
