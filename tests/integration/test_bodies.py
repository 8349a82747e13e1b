#!/usr/bin/env python3
"""Request bodies on a return route are read and discarded (Content-Length
and chunked), so the next pipelined request is answered; max_body_size gives
413 and close (Content-Length checked before 100 Continue; chunked counted
as it arrives)."""

import sys
sys.dont_write_bytecode = True

import time

import weirtest
from weirtest import SERVER, chunked, request_bytes

INI = SERVER + """
[limits]
max_body_size = 1k

[route ping]
match = exact:/healthz
return = 200 ok
"""

GET = request_bytes("GET", "/healthz")


class BodiesTest(weirtest.WeirCase):
    INI = INI

    def two_ok(self, c, first_status=200):
        r1 = c.read_response()
        self.assertEqual(r1.status, first_status, r1)
        r2 = c.read_response()
        self.assertEqual(r2.status, 200, r2)
        self.assertEqual(r2.body, b"ok")

    def test_content_length_body_then_pipelined(self):
        with self.client() as c:
            c.send(request_bytes("POST", "/healthz", body=b"hello world") + GET)
            self.two_ok(c)

    def test_body_that_looks_like_a_request(self):
        # The body must be skipped by length, never parsed as a request.
        body = b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
        with self.client() as c:
            c.send(request_bytes("POST", "/healthz", body=body) + GET)
            self.two_ok(c)
            self.assertTrue(c.nothing_within(0.3))

    def test_chunked_body_then_pipelined(self):
        body = chunked(b"hello", b" world", b"GET /nope HTTP/1.1\r\n\r\n")
        with self.client() as c:
            c.send(request_bytes("POST", "/healthz",
                                 headers=[("Transfer-Encoding", "chunked")]) + body + GET)
            self.two_ok(c)
            self.assertTrue(c.nothing_within(0.3))

    def test_chunked_extensions_and_trailer(self):
        body = b"5;name=value\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n"
        with self.client() as c:
            c.send(request_bytes("POST", "/healthz",
                                 headers=[("Transfer-Encoding", "chunked")]) + body + GET)
            self.two_ok(c)

    def test_body_in_slow_pieces(self):
        with self.client() as c:
            # The pauses are the slow client under test: each piece arrives
            # on its own read.
            c.send(request_bytes("POST", "/healthz", headers=[("Content-Length", "10")]))
            time.sleep(0.2)
            c.send(b"12345")
            time.sleep(0.2)
            c.send(b"67890" + GET)
            self.two_ok(c)

    def test_chunked_in_slow_pieces(self):
        data = request_bytes("POST", "/healthz", headers=[("Transfer-Encoding", "chunked")])
        data += chunked(b"a" * 100, b"b" * 200) + GET
        with self.client() as c:
            for off in range(0, len(data), 37):
                c.send(data[off:off + 37])
                time.sleep(0.005)  # pieces on separate reads: the behaviour under test
            self.two_ok(c)

    def test_body_at_limit_ok(self):
        with self.client() as c:
            c.send(request_bytes("POST", "/healthz", body=b"x" * 1024) + GET)
            self.two_ok(c)

    def test_content_length_over_limit_413(self):
        with self.client() as c:
            c.send(request_bytes("POST", "/healthz", headers=[("Content-Length", "2000")]))
            r = c.read_response()
            self.assertEqual(r.status, 413)
            self.assertTrue(r.has_token("Connection", "close"), r.headers)
            self.assertClosedByWeir(c, 3.0)
        self.assertServes()

    def test_content_length_over_limit_with_body_sent(self):
        with self.client() as c:
            c.send(request_bytes("POST", "/healthz", body=b"y" * 2000))
            r = c.read_response()
            self.assertEqual(r.status, 413)
            self.assertTrue(r.has_token("Connection", "close"), r.headers)
            self.assertClosedByWeir(c, 3.0)

    def test_expect_continue_over_limit_no_100(self):
        with self.client() as c:
            c.send(request_bytes("POST", "/healthz", headers=[("Content-Length", "2000"),
                                                              ("Expect", "100-continue")]))
            r = c.read_response()
            self.assertEqual(r.status, 413, "413 must come before (instead of) 100 Continue")
            self.assertTrue(r.has_token("Connection", "close"))
            self.assertClosedByWeir(c, 3.0)

    def test_chunked_over_limit_413(self):
        with self.client() as c:
            c.send(request_bytes("POST", "/healthz", headers=[("Transfer-Encoding", "chunked")]))
            c.send(chunked(*([b"z" * 512] * 4)))
            r = c.read_response()
            self.assertEqual(r.status, 413)
            self.assertTrue(r.has_token("Connection", "close"), r.headers)
            self.assertClosedByWeir(c, 3.0)
        self.assertServes()

    def test_chunked_over_limit_without_end(self):
        # The client never ends the body: the limit alone must stop it.
        with self.client() as c:
            c.send(request_bytes("POST", "/healthz", headers=[("Transfer-Encoding", "chunked")]))
            c.send(b"400\r\n" + b"z" * 1024 + b"\r\n" + b"10\r\n" + b"z" * 16 + b"\r\n")
            r = c.read_response(timeout=3)
            self.assertEqual(r.status, 413)
            self.assertClosedByWeir(c, 3.0)


if __name__ == "__main__":
    weirtest.main()
