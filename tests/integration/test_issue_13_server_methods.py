#!/usr/bin/env python3
"""Issue 13.22: OPTIONS *, CONNECT, long and unknown methods, over raw
sockets.

- OPTIONS * is answered 200 with Allow (the methods the routes of that host
  take, OPTIONS included) and Content-Length: 0, unless a `match = exact:*`
  route takes it; the connection stays usable.
- CONNECT host:port gets 405 with the same Allow (weir is not a forward
  proxy), and the connection closes: bytes after it may be tunnel data.
- A 100 kB method token is a bad request (400), not a long target (414);
  long targets keep 414 and long heads 431.
- An unknown method no route takes gets 501; a route listing a custom
  method still serves it."""

import sys
sys.dont_write_bytecode = True

import unittest

import weirtest
from weirtest import SERVER, request_bytes

INI = SERVER + """
[route star]
host = star.test
match = exact:*
return = 204

[route health]
match = exact:/healthz
methods = GET
return = 200 ok

[route dav]
match = prefix:/dav/
methods = PROPFIND MKCOL
return = 207 multi

[route api]
host = api.test
match = prefix:/api/
return = 200 api
"""

SERVER_ALLOW = "GET, HEAD, OPTIONS, PROPFIND, MKCOL"


class ServerMethodsTest(weirtest.WeirCase):
    INI = INI

    def exchange(self, data, method="GET", timeout=5.0):
        """Sends raw bytes on a fresh connection; returns (response, client)."""
        c = self.client(timeout=timeout)
        c.send(data)
        return c.read_response(method=method), c

    def test_options_asterisk(self):
        with self.client() as c:
            c.send(b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("Allow"), SERVER_ALLOW)
            self.assertEqual(r.header("Content-Length"), "0")
            self.assertEqual(r.body, b"")
            # keep-alive: the next request on the same connection is answered
            c.send(request_bytes("GET", "/healthz"))
            self.assertEqual(c.read_response().body, b"ok")

    def test_options_asterisk_per_host(self):
        # a host with a route that takes any method offers every method weir knows
        r, c = self.exchange(b"OPTIONS * HTTP/1.1\r\nHost: api.test:8080\r\n\r\n")
        c.close()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Allow"),
                         "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH, PROPFIND, MKCOL")
        # HTTP/1.0 without Host: the routes without host
        r, c = self.exchange(b"OPTIONS * HTTP/1.0\r\n\r\n")
        c.close()
        self.assertEqual((r.status, r.header("Allow")), (200, SERVER_ALLOW))

    def test_options_asterisk_route(self):
        r, c = self.exchange(b"OPTIONS * HTTP/1.1\r\nHost: star.test\r\n\r\n")
        c.close()
        self.assertEqual(r.status, 204)
        self.assertIsNone(r.header("Allow"))
        # a path is not "*": OPTIONS /healthz is refused by its route
        r = self.get("/healthz", method="OPTIONS", host="star.test")
        self.assertEqual((r.status, r.header("Allow")), (405, "GET, HEAD"))

    def test_connect_405(self):
        data = b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n"
        r, c = self.exchange(data + b"\x16\x03\x01\x00\x05hello")
        with c:
            self.assertEqual(r.status, 405)
            self.assertEqual(r.header("Allow"), SERVER_ALLOW)
            self.assertTrue(r.has_token("Connection", "close"))
            # the bytes after CONNECT are never read as a request
            how, n, _ = self.assertClosedByWeir(c)
            self.assertEqual(n, 0)

    def test_long_method_400(self):
        for size in (33, 100 * 1024):
            r, c = self.exchange(b"A" * size + b" / HTTP/1.1\r\nHost: h\r\n\r\n")
            with c:
                self.assertEqual(r.status, 400, "method of %d bytes" % size)
                self.assertClosedByWeir(c)
        # long targets and heads keep their statuses
        r, c = self.exchange(b"GET /" + b"a" * 100 * 1024 + b" HTTP/1.1\r\nHost: h\r\n\r\n")
        c.close()
        self.assertEqual(r.status, 414)
        r, c = self.exchange(b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"a" * 100 * 1024 +
                             b"\r\n\r\n")
        c.close()
        self.assertEqual(r.status, 431)

    def test_unknown_method_501(self):
        self.assertEqual(self.get("/nope", method="BREW").status, 501)
        self.assertEqual(self.get("/healthz", method="BREW").status, 501)
        self.assertEqual(self.get("/dav/x", method="BREW").status, 501)
        # custom methods a route lists keep working; elsewhere they are 404/405
        r = self.get("/dav/x", method="PROPFIND")
        self.assertEqual((r.status, r.body), (207, b"multi"))
        self.assertEqual(self.get("/nope", method="MKCOL").status, 404)
        self.assertEqual(self.get("/healthz", method="MKCOL").status, 405)
        # a host whose route takes any method
        self.assertEqual(self.get("/api/x", method="BREW", host="api.test").body, b"api")
        self.assertEqual(self.get("/nope", method="BREW", host="api.test").status, 404)
        # known methods stay 404 / 405
        self.assertEqual(self.get("/nope", method="PATCH").status, 404)
        self.assertEqual(self.get("/healthz", method="POST").status, 405)


    def test_trace_refused_unless_named(self):
        # The api route has no methods: it takes everything but TRACE.
        r, c = self.exchange(b"TRACE /api/x HTTP/1.1\r\nHost: api.test\r\n\r\n")
        c.close()
        self.assertEqual(r.status, 405)
        self.assertNotIn("TRACE", r.header("Allow"))
        self.assertIn("GET", r.header("Allow"))

if __name__ == "__main__":
    weirtest.main()
