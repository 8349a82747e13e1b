#!/usr/bin/env python3
"""Malformed requests over a real socket. Each gets its status with
`Connection: close`, weir closes the connection after the response, and a
new connection is still served."""

import sys
sys.dont_write_bytecode = True


import weirtest
from weirtest import SERVER

INI = SERVER + """
[limits]
max_header_size = 1k

[route abs]
host = example.org
match = exact:/healthz
return = 200 abs

[route ping]
match = exact:/healthz
return = 200 ok
"""

H = b"Host: a.test\r\n"
FOLLOW = b"GET /healthz HTTP/1.1\r\nHost: a.test\r\n\r\n"

LONG_TARGET = b"/" + b"a" * 2000
MANY_HEADERS = b"".join(b"X-Header-%02d: %s\r\n" % (i, b"v" * 30) for i in range(40))
TOO_MANY_FIELDS = b"".join(b"a: b\r\n" for _ in range(120))

# name -> (raw request, expected status)
CASES = {
    "cl_and_te": (b"POST /healthz HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "te_and_cl": (b"POST /healthz HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n"
                  b"Content-Length: 5\r\n\r\n0\r\n\r\n", 400),
    "two_content_lengths": (b"POST /healthz HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n"
                            b"Content-Length: 6\r\n\r\nhelloo", 400),
    "content_length_list": (b"POST /healthz HTTP/1.1\r\n" + H + b"Content-Length: 5, 6\r\n"
                            b"\r\nhelloo", 400),
    "content_length_plus": (b"POST /healthz HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n"
                            b"\r\nhello", 400),
    "content_length_junk": (b"POST /healthz HTTP/1.1\r\n" + H + b"Content-Length:  5x\r\n"
                            b"\r\nhello", 400),
    "content_length_negative": (b"POST /healthz HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n"
                                b"\r\n", 400),
    "content_length_overflow": (b"POST /healthz HTTP/1.1\r\n" + H +
                                b"Content-Length: 99999999999999999999999\r\n\r\n", 400),
    "bad_chunk_size": (b"POST /healthz HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n"
                       b"\r\nzz\r\nhello\r\n0\r\n\r\n", 400),
    "obs_fold": (b"GET /healthz HTTP/1.1\r\n" + H + b"X-Foo: bar\r\n baz\r\n\r\n", 400),
    "space_before_colon": (b"GET /healthz HTTP/1.1\r\n" + H + b"X-Foo : bar\r\n\r\n", 400),
    "nul_in_value": (b"GET /healthz HTTP/1.1\r\n" + H + b"X-Foo: a\x00b\r\n\r\n", 400),
    "ctl_in_value": (b"GET /healthz HTTP/1.1\r\n" + H + b"X-Foo: a\x01b\r\n\r\n", 400),
    "del_in_value": (b"GET /healthz HTTP/1.1\r\n" + H + b"X-Foo: a\x7fb\r\n\r\n", 400),
    "bad_header_name": (b"GET /healthz HTTP/1.1\r\n" + H + b"X(Foo): a\r\n\r\n", 400),
    "no_host_http11": (b"GET /healthz HTTP/1.1\r\nUser-Agent: t\r\n\r\n", 400),
    "two_hosts": (b"GET /healthz HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n", 400),
    "two_same_hosts": (b"GET /healthz HTTP/1.1\r\nHost: a.test\r\nHost: a.test\r\n\r\n", 400),
    "bad_method": (b"GE(T /healthz HTTP/1.1\r\n" + H + b"\r\n", 400),
    "bad_request_line": (b"GET  /healthz HTTP/1.1\r\n" + H + b"\r\n", 400),
    "long_target": (b"GET " + LONG_TARGET + b" HTTP/1.1\r\n" + H + b"\r\n", 414),
    "big_head": (b"GET /healthz HTTP/1.1\r\n" + H + MANY_HEADERS + b"\r\n", 431),
    "too_many_fields": (b"GET /healthz HTTP/1.1\r\n" + H + TOO_MANY_FIELDS + b"\r\n", 431),
    "te_gzip": (b"POST /healthz HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n", 501),
    "te_gzip_chunked": (b"POST /healthz HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n"
                        b"\r\n0\r\n\r\n", 501),
    "version_2_0": (b"GET /healthz HTTP/2.0\r\n" + H + b"\r\n", 505),
    "version_1_2": (b"GET /healthz HTTP/1.2\r\n" + H + b"\r\n", 505),
    "bare_lf": (b"GET /healthz HTTP/1.1\n" + b"Host: a.test\n\n", 400),
    "bare_lf_in_headers": (b"GET /healthz HTTP/1.1\r\nHost: a.test\nX: y\r\n\r\n", 400),
}


class ParserRejectsTest(weirtest.WeirCase):
    INI = INI

    def check_reject(self, name):
        raw, status = CASES[name]
        with self.client() as c:
            # A valid request follows in the same write: after a rejection
            # weir must not parse on (no smuggled second response).
            c.send(raw + FOLLOW)
            r = c.read_response()
            self.assertEqual(r.status, status, "%s: %r -> %r" % (name, raw[:120], r))
            self.assertTrue(r.has_token("Connection", "close"),
                            "%s: %d without Connection: close: %r" % (name, status, r.headers))
            self.assertEqual(int(r.header("Content-Length") or len(r.body)), len(r.body))
            how, extra, _ = self.assertClosedByWeir(c, 3.0, "after %s (%d)" % (name, status))
            self.assertEqual(extra, 0, "%s: bytes after the %d response" % (name, status))
        self.assertServes("/healthz", body=b"ok")

    def test_absolute_form_accepted(self):
        with self.client() as c:
            c.send(b"GET http://example.org/healthz HTTP/1.1\r\nHost: other.test\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, b"abs")
            c.send(b"GET http://other.test/healthz?x HTTP/1.1\r\nHost: example.org\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, b"ok", "absolute-form authority wins over Host")

    def test_chunked_name_case_insensitive(self):
        # RFC 9112 section 7: transfer-coding names are case-insensitive.
        with self.client() as c:
            c.send(b"POST /healthz HTTP/1.1\r\n" + H + b"Transfer-Encoding: Chunked\r\n\r\n"
                   b"5\r\nhello\r\n0\r\n\r\n" + FOLLOW)
            self.assertEqual(c.read_response().status, 200)
            self.assertEqual(c.read_response().status, 200)

    def test_http10_without_host_ok(self):
        with self.client() as c:
            c.send(b"GET /healthz HTTP/1.0\r\n\r\n")
            r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"ok")

    def test_leading_empty_lines_skipped(self):
        with self.client() as c:
            c.send(b"\r\n\r\nGET /healthz HTTP/1.1\r\n" + H + b"\r\n")
            r = c.read_response()
        self.assertEqual(r.status, 200)

    def test_head_just_under_limit_ok(self):
        line = b"GET /healthz HTTP/1.1\r\n" + H
        pad = 1024 - len(line) - len(b"X-Pad: \r\n\r\n") - 10
        with self.client() as c:
            c.send(line + b"X-Pad: " + b"p" * pad + b"\r\n\r\n")
            r = c.read_response()
        self.assertEqual(r.status, 200)

    def test_reject_after_good_request_on_same_connection(self):
        with self.client() as c:
            c.send(b"GET /healthz HTTP/1.1\r\n" + H + b"\r\n")
            self.assertEqual(c.read_response().status, 200)
            c.send(b"GET /healthz HTTP/1.1\r\n" + H + b"X-Foo : bar\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 400)
            self.assertTrue(r.has_token("Connection", "close"))
            self.assertClosedByWeir(c, 3.0)


def _add(name):
    setattr(ParserRejectsTest, "test_" + name, lambda self: self.check_reject(name))


for _name in CASES:
    _add(_name)


if __name__ == "__main__":
    weirtest.main()
