#!/usr/bin/env python3
"""10,000 idle keep-alive connections (each after one request) held by one
weir, while a new client is still answered promptly (< 1 s); prints weir's
memory per idle connection, (RSS_after - RSS_before) / N from VmRSS.

RSS_before is taken after a warm-up round of the same shape (a batch of
connections served and closed), so buffers weir keeps for reuse are in
both figures and the difference is what idle connections themselves hold.
This build has sanitizers, which inflate every allocation: the figure to
compare with nginx comes from `bench/run.py --only idle_10k` (release)."""

import sys
sys.dont_write_bytecode = True

import socket
import time
import unittest

import weirtest
from weirtest import HOST, free_port, request_bytes, rss_kib
from polling import wait_open_connections, wait_status

N = 10000
BATCH = 250
KIB_PER_CONN_BOUND = 8.0  # sanitizer build; the release figure is ~0.5

INI = """[server]
listen = 127.0.0.1:@PORT@
workers = 2
access_log = off

[limits]
keepalive_timeout = 120s

[admin]
listen = 127.0.0.1:@ADMIN@

[route ping]
match = exact:/healthz
return = 200 ok
"""

REQUEST = request_bytes("GET", "/healthz")
RESPONSE_END = b"\r\n\r\nok"


def open_batch(port, n):
    """n connections, each with one request answered; returns the sockets."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.settimeout(10)
            s.connect((HOST, port))
        for s in socks:
            s.sendall(REQUEST)
        for s in socks:
            buf = b""
            for _ in range(100):
                buf += s.recv(4096)
                if buf.endswith(RESPONSE_END):
                    break
            if not buf.startswith(b"HTTP/1.1 200") or not buf.endswith(RESPONSE_END):
                raise AssertionError("bad answer %r" % buf[:80])
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


class IdleConnectionsTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.admin_port = free_port()
        return {"ADMIN": cls.admin_port}

    @classmethod
    def setUpClass(cls):
        soft = weirtest.raise_nofile(N + 1000)
        if soft < N + 200:
            raise unittest.SkipTest("RLIMIT_NOFILE hard limit %d is below the %d descriptors "
                                    "the test needs" % (soft, N + 200))
        super().setUpClass()

    def test_ten_thousand_idle(self):
        pid = self.weir.pid()
        for s in open_batch(self.weir.port, BATCH):  # warm-up: same shape as below
            s.close()
        wait_open_connections(self.admin_port, 0)  # weir saw every close
        before = rss_kib(pid)
        socks = []
        t0 = time.monotonic()
        try:
            while len(socks) < N:
                socks += open_batch(self.weir.port, min(BATCH, N - len(socks)))
            opened_s = time.monotonic() - t0
            # Every connection idle: waiting for a request, its buffers back
            # with the worker (the gauge is refreshed every 100 ms).
            wait_status(self.admin_port, lambda st: st["connections"]["idle"] == N,
                        "%d idle connections" % N, timeout=10.0)
            after = rss_kib(pid)
            t1 = time.monotonic()
            r = self.get("/healthz")
            new_client_s = time.monotonic() - t1
            self.assertEqual((r.status, r.body), (200, b"ok"))
            per_conn = (after - before) / N
            print("idle_10k: %d idle connections opened in %.1f s; weir RSS %d -> %d KiB: "
                  "%.2f KiB per idle connection (sanitizer build); a new client answered in "
                  "%.1f ms" % (N, opened_s, before, after, per_conn, new_client_s * 1000))
            self.assertLess(new_client_s, 1.0)
            self.assertLess(per_conn, KIB_PER_CONN_BOUND)
            # the idle ones are still usable
            for s in socks[:: N // 10]:
                s.sendall(REQUEST)
                self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 200"))
        finally:
            for s in socks:
                s.close()
        self.weir.assert_alive()


if __name__ == "__main__":
    weirtest.main()
