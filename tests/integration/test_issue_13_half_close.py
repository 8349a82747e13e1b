#!/usr/bin/env python3
"""Issue 13.21: a client that half-closes after a complete request is
answered (RFC 9112 §9.6), as HAProxy does.

After shutdown(SHUT_WR) following a whole request (a GET, or a POST with
its body) to a proxy route whose upstream answers after a short delay,
the full response arrives, then weir closes the connection. With
abort_on_eof = on (nginx's behaviour, for long-polling backends) the same
half-close aborts the upstream request: no response, 499 in the access
log. An EOF in the middle of a body is an abort either way (499). A
half-close after a complete request to a non-proxy route is answered too."""

import sys
sys.dont_write_bytecode = True

import json
import os
import socket
import time

import weirtest
from weirtest import SERVER, request_bytes
from upstreams import Backend

INI = SERVER.replace("access_log = off",
                     "access_log = @TMP@/access.log\naccess_log_format = json") + """
[upstream app]
server = @APP@

[route abort]
match = prefix:/abort/
strip_prefix = /abort
proxy = app
abort_on_eof = on

[route app]
match = prefix:/
proxy = app
host = proxied

[route ok]
match = exact:/ok
return = 200 fine
"""


class HalfCloseTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.app = Backend("app")
        return {"APP": cls.app.addr}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.app.stop()

    def half_close(self, raw, host="proxied"):
        """Sends raw, then shuts the write side; returns the client."""
        c = self.client(timeout=5)
        c.send(raw)
        c.sock.shutdown(socket.SHUT_WR)
        return c

    def log_entry(self, uri):
        """The access log entry for uri (the log is flushed once a tick)."""
        path = os.path.join(self.weir.tmp, "access.log")
        deadline = time.monotonic() + 5
        for _ in range(200):
            if os.path.exists(path):
                with open(path) as f:
                    for line in f:
                        e = json.loads(line)
                        if e["uri"] == uri:
                            return e
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.fail("no access log entry for %s" % uri)

    def assert_answered_then_closed(self, c, body):
        with c:
            r = c.read_response()
            self.assertEqual((r.status, r.body), (200, body))
            how, n, _ = c.wait_closed(timeout=5)
            self.assertEqual((how, n), ("eof", 0))

    def test_get_then_half_close(self):
        c = self.half_close(request_bytes("GET", "/slow?ms=300&n=1", host="proxied"))
        self.assert_answered_then_closed(c, b"slow")
        self.assertEqual(self.log_entry("/slow?ms=300&n=1")["status"], 200)

    def test_post_with_body_then_half_close(self):
        body = os.urandom(100 * 1024)
        c = self.half_close(request_bytes("POST", "/slow?ms=300&n=2", host="proxied", body=body))
        self.assert_answered_then_closed(c, b"slow")
        got = [r for r in self.app.requests if r.target == "/slow?ms=300&n=2"]
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0].body, body)

    def test_abort_on_eof_on(self):
        c = self.half_close(request_bytes("GET", "/abort/slow?ms=500&n=3", host="proxied"))
        with c:
            how, n, _ = c.wait_closed(timeout=5)
            self.assertEqual((how, n), ("eof", 0), "abort_on_eof = on: no response")
        self.assertEqual(self.log_entry("/abort/slow?ms=500&n=3")["status"], 499)

    def test_eof_mid_body_aborts(self):
        raw = request_bytes("POST", "/slow?ms=300&n=4", host="proxied",
                            headers=[("Content-Length", "1000")]) + b"x" * 100
        c = self.half_close(raw)
        with c:
            how, n, _ = c.wait_closed(timeout=5)
            self.assertEqual((how, n), ("eof", 0), "a body that can never complete")
        self.assertEqual(self.log_entry("/slow?ms=300&n=4")["status"], 499)

    def test_eof_mid_chunked_body_aborts(self):
        raw = request_bytes("POST", "/slow?ms=300&n=5", host="proxied",
                            headers=[("Transfer-Encoding", "chunked")]) + b"5\r\nhello\r\n"
        c = self.half_close(raw)
        with c:
            how, n, _ = c.wait_closed(timeout=5)
            self.assertEqual((how, n), ("eof", 0))
        self.assertEqual(self.log_entry("/slow?ms=300&n=5")["status"], 499)

    def test_non_proxy_route_answered(self):
        c = self.half_close(request_bytes("GET", "/ok", host="other"))
        self.assert_answered_then_closed(c, b"fine")


if __name__ == "__main__":
    weirtest.main()
