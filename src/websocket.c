/*
 * websocket: the handshake key and its accept value (see websocket.h).
 */
#include "weir/websocket.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <string.h>

/* RFC 6455 §1.3: appended to the key before hashing. */
static const char WS_GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

int wr_ws_new_key(char out[WR_WS_KEY_LEN + 1])
{
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -1;
    /* 16 bytes: 22 base64 characters and "==" */
    return EVP_EncodeBlock((unsigned char *)out, raw, sizeof(raw)) == WR_WS_KEY_LEN ? 0 : -1;
}

bool wr_ws_accept_matches(struct wr_str key, struct wr_str accept)
{
    /* SHA-1 is 20 bytes: base64 makes 28 characters. */
    if (accept.len != 28 || key.len == 0 || key.len > 64)
        return false;
    char in[64 + sizeof(WS_GUID)];
    memcpy(in, key.ptr, key.len);
    memcpy(in + key.len, WS_GUID, sizeof(WS_GUID) - 1);
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)in, key.len + sizeof(WS_GUID) - 1, digest);
    unsigned char want[29];
    EVP_EncodeBlock(want, digest, sizeof(digest));
    return memcmp(want, accept.ptr, 28) == 0;
}
