#!/usr/bin/env python3
"""Persistent connections: HTTP/1.1 keep-alive, Connection: close, HTTP/1.0
default close and keep-alive opt-in, max_requests_per_connection."""

import sys
sys.dont_write_bytecode = True


import polling
import weirtest
from weirtest import SERVER, request_bytes

ROUTES = """
[route ping]
match = exact:/healthz
return = 200 ok
"""


class KeepAliveTest(weirtest.WeirCase):
    INI = SERVER + ROUTES

    def test_http11_several_requests_one_socket(self):
        with self.client() as c:
            for i in range(5):
                c.send(request_bytes("GET", "/healthz" if i % 2 == 0 else "/nope"))
                r = c.read_response()
                self.assertEqual(r.status, 200 if i % 2 == 0 else 404, i)
                self.assertFalse(r.has_token("Connection", "close"), (i, r.headers))
            self.assertTrue(c.nothing_within(0.3), "connection must stay open")

    def test_connection_close_honoured(self):
        with self.client() as c:
            c.send(request_bytes("GET", "/healthz", headers=[("Connection", "close")]))
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertTrue(r.has_token("Connection", "close"), r.headers)
            self.assertClosedByWeir(c, 3.0)

    def test_silent_client_speaks_after_its_accept(self):
        # Listeners defer the accept until bytes come, and answer a first
        # request right where they accept it; a client that stays silent is
        # handed over by the kernel after about a second without bytes.
        # weir then finds nothing to read and must start watching it, so a
        # request sent later is still answered.
        pid = self.weir.pid()
        before = weirtest.fd_count(pid)
        with self.client() as c:
            polling.wait_until(lambda: weirtest.fd_count(pid) > before,
                               "weir accepted the silent connection", timeout=10)
            c.send(request_bytes("GET", "/healthz", headers=[("Connection", "close")]))
            r = c.read_response()
            self.assertEqual((r.status, r.body), (200, b"ok"))
            self.assertClosedByWeir(c, 3.0)

    def test_connection_close_token_case_and_list(self):
        with self.client() as c:
            c.send(request_bytes("GET", "/healthz", headers=[("Connection", "TE, Close")]))
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertTrue(r.has_token("Connection", "close"), r.headers)
            self.assertClosedByWeir(c, 3.0)

    def test_close_on_404_too(self):
        with self.client() as c:
            c.send(request_bytes("GET", "/nope", headers=[("Connection", "close")]))
            r = c.read_response()
            self.assertEqual(r.status, 404)
            self.assertTrue(r.has_token("Connection", "close"))
            self.assertClosedByWeir(c, 3.0)

    def test_http10_closes_by_default(self):
        with self.client() as c:
            c.send(b"GET /healthz HTTP/1.0\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, b"ok")
            self.assertFalse(r.has_token("Connection", "keep-alive"), r.headers)
            self.assertClosedByWeir(c, 3.0)

    def test_http10_keep_alive(self):
        with self.client() as c:
            for i in range(3):
                c.send(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                r = c.read_response()
                self.assertEqual(r.status, 200, i)
                self.assertEqual(r.body, b"ok")
                self.assertTrue(r.has_token("Connection", "keep-alive"), (i, r.headers))
                self.assertIsNotNone(r.header("Content-Length"))
            c.send(b"GET /healthz HTTP/1.0\r\n\r\n")
            self.assertEqual(c.read_response().status, 200)
            self.assertClosedByWeir(c, 3.0)

    def test_response_version_is_11(self):
        with self.client() as c:
            c.send(b"GET /healthz HTTP/1.0\r\n\r\n")
            r = c.read_response()
        self.assertEqual(r.version, "HTTP/1.1")


class MaxRequestsTest(weirtest.WeirCase):
    INI = SERVER + "\n[limits]\nmax_requests_per_connection = 3\n" + ROUTES

    def test_third_response_closes(self):
        with self.client() as c:
            for i in range(2):
                c.send(request_bytes("GET", "/healthz"))
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertFalse(r.has_token("Connection", "close"), (i, r.headers))
            c.send(request_bytes("GET", "/healthz"))
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertTrue(r.has_token("Connection", "close"), r.headers)
            self.assertClosedByWeir(c, 3.0)

    def test_pipelined_past_limit(self):
        with self.client() as c:
            c.send(request_bytes("GET", "/healthz") * 5)
            rs = [c.read_response() for _ in range(3)]
            self.assertEqual([r.status for r in rs], [200, 200, 200])
            self.assertTrue(rs[2].has_token("Connection", "close"))
            how, extra, _ = c.wait_closed(3.0)
            self.assertIsNotNone(how)
            self.assertEqual(extra, 0, "no response after the limit")


if __name__ == "__main__":
    weirtest.main()
