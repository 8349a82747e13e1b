#!/usr/bin/env python3
"""Issue 15 (HTTP/2 proxy cost): an upstream pool under N requests in
flight keeps the N connections it uses, past `keepalive`, so the next burst
reuses them instead of connecting again (HTTP/2 multiplexing makes such
bursts the common case); once the load has passed, the pool shrinks back
to `keepalive` by itself (weir_upstream_pool_idle).

Three bursts of 16 concurrent slow requests through a pool with
keepalive = 2: the server sees at most the first burst's 16 connections
(closing all but 2 after each burst made it 44)."""

import sys
sys.dont_write_bytecode = True

import threading

import weirtest
from polling import wait_until, metric
from upstreams import Backend
from weirtest import SERVER, free_port, request_bytes

CLIENTS = 16
BURSTS = 3

INI = SERVER + """
[admin]
listen = 127.0.0.1:@ADMIN@

[upstream app]
server = @APP@
keepalive = 2

[route p]
match = prefix:/
proxy = app
"""


class PoolBurstTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.app = Backend("app")
        cls.admin_port = free_port()
        return {"APP": cls.app.addr, "ADMIN": cls.admin_port}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.app.stop()

    def idle(self):
        return metric(self.admin_port, "weir_upstream_pool_idle")

    def burst(self):
        """CLIENTS requests in flight at once; every answer checked."""
        statuses = []
        lock = threading.Lock()

        def one(i):
            with self.client() as c:
                c.send(request_bytes("GET", "/slow?ms=300&i=%d" % i))
                r = c.read_response()
            with lock:
                statuses.append((r.status, r.body))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        self.assertEqual(statuses, [(200, b"slow")] * CLIENTS)

    def test_bursts_reuse_their_connections_then_the_pool_shrinks(self):
        for _ in range(BURSTS):
            self.burst()
        with self.app.lock:
            n = self.app.n_connections
        self.assertGreaterEqual(n, CLIENTS // 2, "the bursts were concurrent")
        self.assertLessEqual(n, CLIENTS, "later bursts reused the first one's connections")
        # The demand of the last burst keeps them at least a second; then
        # half the excess goes each second, back to keepalive.
        # (the gauge is refreshed every 100 ms: the first read may be from
        # during the burst, when none was idle)
        wait_until(lambda: self.idle() > 2, "kept past keepalive right after the load")
        wait_until(lambda: self.idle() == 2, "the pool back at keepalive", timeout=20)
        r = self.get("/after")
        self.assertEqual(r.status, 200)


if __name__ == "__main__":
    weirtest.main()
