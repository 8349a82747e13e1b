/*
 * proxy_protocol: the header an L4 load balancer sends before a
 * connection's own bytes to say who the client is (HAProxy's PROXY
 * protocol, versions 1 and 2).
 *
 *   v1: "PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n" (TCP6, UNKNOWN),
 *       at most 107 bytes;
 *   v2: a 12-byte signature, version/command, family/protocol, a 16-bit
 *       length, the addresses, then TLVs (skipped).
 *
 * Strict: anything that is not exactly one of those is an error (the
 * connection is closed, never read as HTTP). Bytes in, results out: the
 * caller feeds what it has read so far, from the connection's first byte.
 * Layer 0: fuzzed by tests/fuzz/fuzz_proxy_protocol.c.
 */
#ifndef WEIR_PROXY_PROTOCOL_H
#define WEIR_PROXY_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Longest header weir accepts: v2's 16 bytes and 1008 of addresses and
 * TLVs (a balancer's TLVs are a few dozen bytes; a longer one is refused). */
#define WR_PP_MAX 1024

struct wr_pp_result {
    bool has_addr;                 /* PROXY with TCP4 or TCP6: src is the client.
                                      False for v1 UNKNOWN and v2 LOCAL or an
                                      unspecified or unix family: the
                                      connection's own peer stays the client */
    struct sockaddr_storage src;   /* the client (port included) */
    struct sockaddr_storage dst;   /* the address the client connected to */
    int version;                   /* 1 or 2 */
};

/*
 * Parses the header at the start of p[0..n). Returns its length (> 0) when
 * complete, filling out; 0 when p is a correct start but the header is not
 * complete yet (every one of the n bytes then belongs to the header, so a
 * caller may consume them all); -1 when p cannot start a valid header (or
 * the header would exceed WR_PP_MAX).
 */
ssize_t wr_pp_parse(const char *p, size_t n, struct wr_pp_result *out);

/* Room for any header wr_pp_write makes (v1's longest is 107 bytes). */
#define WR_PP_OUT_MAX 108

/*
 * Writes a header of version 1 or 2 into out (WR_PP_OUT_MAX bytes) and
 * returns its length: src (the client) connected to dst, both AF_INET or
 * AF_INET6 (mixed families are written as IPv6, IPv4 mapped). src NULL (a
 * client without an address, a unix socket's): v1 "PROXY UNKNOWN", v2 the
 * PROXY command with no address. is_local: v2's LOCAL command (a health
 * check of weir's own, no client), v1 UNKNOWN.
 */
size_t wr_pp_write(char *out, int version, const struct sockaddr *src,
                   const struct sockaddr *dst, bool is_local);

#endif
