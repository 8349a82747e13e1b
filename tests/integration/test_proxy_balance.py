#!/usr/bin/env python3
"""Balancing, retries and health through the proxy: weighted round robin
spreads requests by weight; hash on a header keeps a key on one server; a
refused server is retried on the other; an idempotent request whose server
dies before answering is retried, a POST is not; every server down answers
502 at once; the active check takes a failing server out and puts it back."""

import sys
sys.dont_write_bytecode = True

import collections
import re
import socket
import time

import weirtest
from weirtest import SERVER, request_bytes
from polling import count_log, wait_log
from upstreams import Backend


def dead_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


INI = SERVER + """
[upstream rr]
server = @B1@ weight=3
server = @B2@

[upstream hashed]
server = @B1@
server = @B2@
server = @B3@
balance = hash
hash_key = header:X-User

[upstream retry]
server = 127.0.0.1:@DEAD@
server = @B2@
retries = 1
max_fails = 0

[upstream noretry]
server = 127.0.0.1:@DEAD@
server = @B2@
retries = 0
max_fails = 0

[upstream hold]
server = @B3@
server = @B4@
keepalive = 0
retries = 1
max_fails = 0
read_timeout = 5s

[upstream alldown]
server = 127.0.0.1:@DEAD@
server = 127.0.0.1:@DEAD2@
max_fails = 1
fail_timeout = 30s
connect_timeout = 5s

[upstream checked]
server = @B1@
server = @B4@
health_check = GET /healthz
health_interval = 200ms
health_timeout = 500ms
max_fails = 0

[route rr]
match = prefix:/rr/
proxy = rr

[route hashed]
match = prefix:/hash/
proxy = hashed

[route retry]
match = prefix:/retry/
proxy = retry

[route noretry]
match = prefix:/noretry/
proxy = noretry

[route hold]
match = prefix:/hold
proxy = hold

[route alldown]
match = prefix:/alldown/
proxy = alldown

[route checked]
match = prefix:/checked/
proxy = checked
"""


class BalanceTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.b = [Backend("b%d" % i) for i in range(1, 5)]
        return {"B1": cls.b[0].addr, "B2": cls.b[1].addr, "B3": cls.b[2].addr,
                "B4": cls.b[3].addr, "DEAD": str(dead_port()), "DEAD2": str(dead_port())}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        for b in cls.b:
            b.stop()

    def served_by(self, target, **kw):
        r = self.get(target, **kw)
        self.assertEqual(r.status, 200, r)
        return r.header("X-Served-By")

    def test_weighted_round_robin(self):
        n = collections.Counter(self.served_by("/rr/x") for _ in range(40))
        self.assertEqual(n["b1"], 30)
        self.assertEqual(n["b2"], 10)

    def test_hash_keeps_a_key_on_one_server(self):
        seen = {}
        for user in ("alice", "bob", "carol", "dave", "erin", "frank"):
            got = {self.served_by("/hash/x", headers=[("X-User", user)]) for _ in range(5)}
            self.assertEqual(len(got), 1, user)
            seen[user] = got.pop()
        self.assertGreater(len(set(seen.values())), 1, "every key on one server")

    def test_refused_server_retried(self):
        for _ in range(6):
            self.assertEqual(self.served_by("/retry/x"), "b2")

    def test_no_retry_gives_502(self):
        statuses = collections.Counter(self.get("/noretry/x").status for _ in range(6))
        self.assertEqual(statuses[502], 3)
        self.assertEqual(statuses[200], 3)

    def test_idempotent_retried_after_close_post_not(self):
        # b3 answers /hold by closing without a byte; b4 answers it too, so
        # GET ends 502 only if both were tried and failed: count attempts.
        n3, n4 = len(self.b[2].requests), len(self.b[3].requests)
        r = self.get("/hold?ms=10")
        self.assertEqual(r.status, 502)
        self.assertEqual(len(self.b[2].requests) - n3 + len(self.b[3].requests) - n4, 2)
        n3, n4 = len(self.b[2].requests), len(self.b[3].requests)
        r = self.get("/hold?ms=10", method="POST", body=b"x")
        self.assertEqual(r.status, 502)
        self.assertEqual(len(self.b[2].requests) - n3 + len(self.b[3].requests) - n4, 1)

    def test_all_down_502_at_once(self):
        self.get("/alldown/x")  # takes both out (max_fails = 1)
        self.get("/alldown/x")
        t = time.monotonic()
        r = self.get("/alldown/x")
        self.assertEqual(r.status, 502)
        self.assertLess(time.monotonic() - t, 0.5)

    def test_health_check_out_and_back(self):
        # The checker logs each verdict after publishing it: once the line
        # is there, the workers see the server out (or back).
        server = re.escape(self.b[3].addr)
        out = r"upstream checked: server %s failed its health check" % server
        back = r"upstream checked: server %s passed its health check: back in" % server
        n_out, n_back = count_log(self.weir, out), count_log(self.weir, back)
        self.b[3].healthy = False
        wait_log(self.weir, out, count=n_out + 1)
        n = collections.Counter(self.served_by("/checked/x") for _ in range(10))
        self.assertEqual(n["b1"], 10, n)
        self.b[3].healthy = True
        wait_log(self.weir, back, count=n_back + 1)
        # round robin over b1 and b4 again
        n = collections.Counter(self.served_by("/checked/x") for _ in range(4))
        self.assertGreater(n["b4"], 0, "b4 never came back: %r" % n)
        self.assertIn("upstream", self.weir.stderr())

if __name__ == "__main__":
    weirtest.main()
