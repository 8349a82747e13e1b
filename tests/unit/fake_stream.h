/*
 * fake_stream: fault injection under the real stream (tests only).
 *
 * The unit tests of the HTTP/1 front end (test_conn.c) and of the proxy
 * handler (test_proxy.c) run the real stream.c over socketpairs and
 * 127.0.0.1 sockets, so libevent sees real readiness and every byte really
 * moves; this shim sits between them and the code under test at link time
 * (ld --wrap=wr_stream_read, ..., see tests/CMakeLists.txt): the production
 * path has no indirect call and no test hook. Per file descriptor, a test
 * scripts what the next reads and writes do:
 *  - the k-th call (counted from fs_track) returns EAGAIN, 0 (end of the
 *    stream), fails with ECONNRESET, or moves at most n bytes;
 *  - every call moves at most max bytes (1: a split at every byte);
 * and counts calls and wr_stream_fini of the descriptor (closed exactly
 * once). Unscripted calls go to the real stream untouched.
 * One thread: the test's.
 */
#ifndef WEIR_TEST_FAKE_STREAM_H
#define WEIR_TEST_FAKE_STREAM_H

#include <stddef.h>

enum fs_kind {
    FS_EAGAIN, /* -1, errno EAGAIN: nothing now (readiness is the socket's) */
    FS_EOF,    /* reads: 0, the peer closed; writes: -1, errno EPIPE */
    FS_RESET,  /* -1, errno ECONNRESET */
    FS_SHORT,  /* at most n bytes this call */
};

/* Starts scripting fd afresh: no rules, counters 0, no limit. */
void fs_track(int fd);

/* Forgets every descriptor's script and counters. */
void fs_reset_all(void);

/* The call-th read (or write) of fd from now, counted from 0 since
 * fs_track, behaves as kind (n: FS_SHORT's bytes). Up to 16 rules per fd. */
void fs_on_read(int fd, unsigned call, enum fs_kind kind, size_t n);
void fs_on_write(int fd, unsigned call, enum fs_kind kind, size_t n);

/* Every read / write of fd moves at most max bytes (0: no limit). */
void fs_max_read(int fd, size_t max);
void fs_max_write(int fd, size_t max);

/* Every write of fd returns EAGAIN while on (a client that stopped reading). */
void fs_block_writes(int fd, int is_on);

/* Calls made on fd since fs_track. */
unsigned fs_n_reads(int fd);
unsigned fs_n_writes(int fd);

/* wr_stream_fini calls on a stream holding fd since fs_track. */
unsigned fs_n_finis(int fd);

/* The descriptor of the last wr_stream_connect that succeeded (tracked
 * from then on), or -1. */
int fs_last_connect_fd(void);

#endif
