#!/usr/bin/env python3
"""A route's rate_limit: a token bucket per client address shared by all
workers. Within the burst every request is answered; beyond it 429 Too
Many Requests with Retry-After (whole seconds, rounded up) and keep-alive;
other routes and other addresses are unaffected; refusals are logged at
info at most once a second; unix-socket clients are exempt."""

import sys
sys.dont_write_bytecode = True

import os
import socket

import weirtest
from polling import wait_log
from weirtest import Client, HOST, request_bytes

INI = """[server]
listen = 127.0.0.1:@PORT@
listen = unix:@SOCK@
workers = 2
access_log = off
log_level = info

[route slow]
match = exact:/slow
return = 200 slow
rate_limit = 1r/m burst=5
add_header = X-Route: slow always

[route fast]
match = exact:/fast
return = 200 fast
rate_limit = 10r/s burst=300

[route free]
match = exact:/free
return = 200 free
"""


class RateLimitTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.sock_path = os.path.join(tmp, "weir.sock")
        return {"SOCK": cls.sock_path}

    def from_source(self, source):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        s.bind((source, 0))
        s.connect((HOST, self.weir.port))
        return Client(sock=s)

    def test_burst_then_429(self):
        statuses = []
        # fresh connections land on both workers: the bucket is process-wide
        for _ in range(5):
            statuses.append(self.get("/slow").status)
        self.assertEqual(statuses, [200] * 5)
        with self.client() as c:
            for _ in range(3):
                c.send(request_bytes("GET", "/slow"))
                r = c.read_response()
                self.assertEqual(r.status, 429)
                retry = int(r.header("Retry-After"))
                self.assertTrue(55 <= retry <= 60, retry)  # 1r/m: the next token in <= 60 s
                self.assertEqual(r.header("X-Route"), "slow")  # an "always" rule
                self.assertIsNone(r.header("Connection"))  # kept alive
            # other routes on the same connection are unaffected
            c.send(request_bytes("GET", "/free"))
            self.assertEqual(c.read_response().body, b"free")
        # another address has its own bucket
        with self.from_source("127.0.0.3") as other:
            other.send(request_bytes("GET", "/slow"))
            self.assertEqual(other.read_response().status, 200)
        # unix clients are exempt
        for _ in range(8):
            with Client.unix(self.sock_path) as u:
                u.send(request_bytes("GET", "/slow"))
                self.assertEqual(u.read_response().status, 200)

    def test_log_not_flooded(self):
        with self.from_source("127.0.0.4") as c:
            for _ in range(60):
                c.send(request_bytes("GET", "/slow"))
                c.read_response()
        # A refusal is logged before its 429 is sent: the lines are there.
        lines = wait_log(self.weir, "over rate_limit")
        self.assertLessEqual(len(lines), 4, "\n".join(lines))

    def test_generous_limit_pipelined(self):
        # 200 pipelined requests at 10r/s burst=300: all answered
        data = request_bytes("GET", "/fast") * 200
        with self.from_source("127.0.0.5") as c:
            c.send(data)
            for i in range(200):
                self.assertEqual(c.read_response().status, 200, i)
            # then past the burst: about 100 more, then 429s
            c.send(request_bytes("GET", "/fast") * 600)
            statuses = [c.read_response().status for _ in range(600)]
        self.assertEqual(set(statuses), {200, 429})
        self.assertTrue(100 <= statuses.count(200) <= 200, statuses.count(200))


if __name__ == "__main__":
    weirtest.main()
