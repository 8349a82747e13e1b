#!/usr/bin/env python3
"""Issue 13.6: 100 Continue only once a route has accepted the request.

A client that sends `Expect: 100-continue` and waits (RFC 9110 §10.1.1)
is invited to send its body only by a proxy route whose upstream
connection is ready to take it. A 404, a 405, a 413 (Content-Length over
max_body_size), a 429 (rate_limit) or a redirect is the first thing it
receives, never "HTTP/1.1 100", and the connection closes after that
answer (the body it holds back will never be read). A proxy route with a
live upstream sends 100 Continue, then the body reaches the upstream
whole; with a dead upstream the client gets its 502 without a 100."""

import sys
sys.dont_write_bytecode = True

import hashlib
import json
import os
import socket

import weirtest
from weirtest import SERVER, free_port, request_bytes
from upstreams import Backend

INI = SERVER + """
[limits]
max_body_size = 1k

[upstream live]
server = @LIVE@

[upstream dead]
server = 127.0.0.1:@DEAD@
retries = 0

[route api]
match = prefix:/api/
proxy = live

[route dead]
match = prefix:/dead/
proxy = dead

[route onlyget]
match = exact:/onlyget
methods = GET
return = 200 got

[route limited]
match = exact:/limited
rate_limit = 1r/m burst=1
return = 200 once

[route moved]
match = exact:/moved
redirect = 301 /elsewhere

[route ok]
match = exact:/ok
return = 200 ok
"""


def waiting_request(target, length, method="POST"):
    """A head that announces a body and waits for 100 Continue."""
    return request_bytes(method, target, headers=[("Expect", "100-continue"),
                                                  ("Content-Length", str(length))])


class ContinueTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.live = Backend("live")
        return {"LIVE": cls.live.addr, "DEAD": free_port()}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.live.stop()

    def final_first(self, target, want, method="POST", length=10):
        """Sends a waiting head; the first bytes back are the final status,
        with Connection: close, and weir closes after it."""
        with self.client() as c:
            c.send(waiting_request(target, length, method=method))
            first = c.sock.recv(12)
            self.assertFalse(first.startswith(b"HTTP/1.1 100"),
                             "%s %s: 100 Continue before a %d" % (method, target, want))
            c.buf = first
            r = c.read_response(method=method)
            self.assertEqual(r.status, want, "%s %s" % (method, target))
            self.assertTrue(r.has_token("Connection", "close"),
                            "%s: the body was not read, the connection cannot go on" % target)
            how, _, _ = c.wait_closed(timeout=5)
            self.assertIsNotNone(how, "%s: weir did not close after the answer" % target)
        return r

    def test_404(self):
        self.final_first("/nowhere", 404)

    def test_405(self):
        r = self.final_first("/onlyget", 405)
        self.assertIn("GET", r.header("Allow"))

    def test_413(self):
        self.final_first("/api/echo", 413, length=4096)
        self.final_first("/ok", 413, length=4096)

    def test_429(self):
        self.assertEqual(self.get("/limited").status, 200)  # spends the burst
        self.final_first("/limited", 429)

    def test_redirect(self):
        r = self.final_first("/moved", 301)
        self.assertEqual(r.header("Location"), "/elsewhere")

    def test_body_sent_anyway_keeps_the_connection(self):
        """A client that did not wait: its body is read and discarded, and the
        connection goes on (nothing to close for)."""
        with self.client() as c:
            c.send(request_bytes("POST", "/ok", headers=[("Expect", "100-continue")],
                                 body=b"0123456789"))
            r = c.read_response()
            self.assertEqual((r.status, r.body), (200, b"ok"))
            self.assertFalse(r.has_token("Connection", "close"))
            c.send(request_bytes("GET", "/ok"))
            self.assertEqual(c.read_response().status, 200)

    def test_proxy_live_gets_100_then_the_body(self):
        body = os.urandom(1000)
        with self.client() as c:
            c.send(waiting_request("/api/echo/cont", len(body)))
            r = c.read_response()
            self.assertEqual(r.status, 100)
            c.send(body)
            r = c.read_response()
        self.assertEqual(r.status, 200)
        doc = json.loads(r.body)
        self.assertEqual(doc["body_len"], len(body))
        self.assertEqual(doc["body_sha256"], hashlib.sha256(body).hexdigest())
        self.assertNotIn("expect", [n.lower() for n, _ in doc["headers"]])

    def test_proxy_dead_gets_502_without_100(self):
        with self.client() as c:
            c.send(waiting_request("/dead/x", 10))
            first = c.sock.recv(12)
            self.assertEqual(first, b"HTTP/1.1 502", "dead upstream: %r first" % first)
            c.buf = first
            r = c.read_response()
            self.assertEqual(r.status, 502)
            how, _, _ = c.wait_closed(timeout=5)
            self.assertIsNotNone(how)
        self.assertServes("/ok", body=b"ok")


if __name__ == "__main__":
    weirtest.main()
