#!/usr/bin/env python3
"""Upstream connection pooling: 1000 sequential requests (over fresh and
keep-alive client connections) reach a backend over at most `keepalive`
connections per worker; a pooled connection the server closed is replaced
without the client noticing; keepalive = 0 opens one connection per
request; the demo app counts what it accepted."""

import sys
sys.dont_write_bytecode = True

import json
import time

import weirtest
from weirtest import SERVER, request_bytes
from upstreams import Backend

INI = SERVER.replace("workers = 1", "workers = 2") + """
[upstream app]
server = @B1@
keepalive = 2
keepalive_timeout = 60s

[upstream nopool]
server = @B2@
keepalive = 0

[upstream demo]
server = @DEMO@
keepalive = 4

[route nopool]
match = prefix:/nopool/
proxy = nopool

[route api]
match = prefix:/api/
proxy = demo

[route app]
match = prefix:/
proxy = app
"""


class PoolTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.b1 = Backend("b1", keep_body=False)
        cls.b2 = Backend("b2")
        cls.demo = weirtest.DemoApp(port=0, name="demo")
        cls.demo.__enter__()
        return {"B1": cls.b1.addr, "B2": cls.b2.addr, "DEMO": cls.demo.addr}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.b1.stop()
        cls.b2.stop()
        cls.demo.__exit__(None, None, None)

    def test_1000_sequential_requests_reuse(self):
        before = self.b1.n_connections
        # Half on fresh client connections, half on one keep-alive connection.
        for i in range(500):
            r = self.get("/echo/%d" % i)
            self.assertEqual(r.status, 200)
        with self.client() as c:
            for i in range(500):
                c.send(request_bytes("GET", "/echo/k%d" % i))
                self.assertEqual(c.read_response().status, 200)
        opened = self.b1.n_connections - before
        # keepalive = 2 per worker, 2 workers; sequential requests need one.
        self.assertLessEqual(opened, 2 * 2, "backend accepted %d connections" % opened)

    def test_max_body_size_before_upstream(self):
        # max_body_size (10m default) is checked on Content-Length before
        # 100 Continue and before any server is contacted.
        n = len(self.b1.requests)
        with self.client() as c:
            c.send(request_bytes("POST", "/echo/big", headers=[
                ("Content-Length", str(20 << 20)), ("Expect", "100-continue")]))
            r = c.read_response()
        self.assertEqual(r.status, 413)
        # A window for a request that must not reach the backend: it can
        # only hide a failure, never cause one.
        time.sleep(0.2)
        self.assertEqual(len(self.b1.requests), n)

    def test_no_pool_when_keepalive_0(self):
        before = self.b2.n_connections
        for i in range(20):
            self.assertEqual(self.get("/nopool/x").status, 200)
        self.assertEqual(self.b2.n_connections - before, 20)
        deadline = time.monotonic() + 3
        while self.b2.n_open > 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.b2.n_open, 0, "weir kept connections with keepalive = 0")

    def test_stale_pooled_connection_replaced(self):
        # The backend closes a connection it said it would keep: reusing it
        # (if weir has not seen the close yet) fails before any response
        # byte, and weir quietly takes a fresh connection.
        with self.client() as c:
            for i in range(200):
                c.send(request_bytes("GET", "/quietclose" if i % 2 else "/echo/s%d" % i))
                r = c.read_response()
                self.assertEqual(r.status, 200, i)

    def test_demo_app_counts_connections(self):
        c0, _ = self.demo.stats()
        for i in range(200):
            r = self.get("/api/best?team=Pool&show=2")
            self.assertEqual(r.status, 200)
            self.assertEqual(json.loads(r.body)["show"], 2)
        c1, _ = self.demo.stats()
        # the stats request itself opens one connection
        self.assertLessEqual(c1 - c0, 2 * 4 + 1)


if __name__ == "__main__":
    weirtest.main()
