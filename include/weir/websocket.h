/*
 * websocket: the two handshake values weir computes when it opens a
 * WebSocket to an upstream on a client's behalf (RFC 6455 §4.1, §4.2.2).
 *
 * An HTTP/1.1 client's Upgrade carries its own Sec-WebSocket-Key and the
 * upstream's 101 goes back to it untouched: weir checks nothing. An HTTP/2
 * client (RFC 8441's extended CONNECT) sends no key: weir makes one for the
 * HTTP/1.1 request it sends upstream and checks the upstream's
 * Sec-WebSocket-Accept against it before it answers the client 200.
 *
 * Not here: framing of WebSocket messages (weir relays bytes, it never
 * parses frames), the tunnel itself (proxy.c). Any thread. Layer 2: OpenSSL
 * (random bytes, SHA-1, base64).
 */
#ifndef WEIR_WEBSOCKET_H
#define WEIR_WEBSOCKET_H

#include <stdbool.h>

#include "weir/str.h"

/* A key's length: base64 of 16 random bytes. */
#define WR_WS_KEY_LEN 24

/* Writes a fresh random key (WR_WS_KEY_LEN characters and a NUL) to out.
 * Returns 0, or -1 when no random bytes could be had. */
int wr_ws_new_key(char out[WR_WS_KEY_LEN + 1]);

/* Whether accept is the Sec-WebSocket-Accept value that answers key:
 * base64(SHA-1(key "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), compared
 * exactly (surrounding whitespace already trimmed by the parser). */
bool wr_ws_accept_matches(struct wr_str key, struct wr_str accept);

#endif
