#!/usr/bin/env python3
"""Issue 15, point 4: HTTP/2 request validation (RFC 9113 §8), raw frames.

A client built on python3-h2 with its own checks off sends malformed
requests on an h2c connection: each is a stream error (RST_STREAM
PROTOCOL_ERROR) or a 400, never forwarded to the backend (its request
count does not move), and the connection keeps serving other streams."""

import sys
sys.dont_write_bytecode = True

import unittest

import weirtest

from h2test import HAVE_H2, RawH2

if HAVE_H2:
    import h2.errors


INI = """[server]
listen = 127.0.0.1:@PORT@ h2c
workers = 1
access_log = off
error_log = stderr

[upstream app]
server = @APP@

[route api]
match = prefix:/api/
proxy = app

[route ret]
match = exact:/ret
return = 200 ok
"""


def base(path=b"/api/echo/x", method=b"GET"):
    return [(b":method", method), (b":scheme", b"http"), (b":authority", b"v.test"),
            (b":path", path)]


@unittest.skipUnless(HAVE_H2, "python3-h2 is not installed")
class ValidationTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.app = weirtest.DemoApp(name="app", tmpdir=tmp)
        return {"APP": cls.app.addr}

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.app.stop()

    def assertRefused(self, headers, body=None, what=""):
        """The request is a stream error or a 400, the backend never saw it,
        and the connection still answers a good request."""
        _, before = self.app.stats()
        c = RawH2(self.weir.port)
        try:
            sid = c.request(headers, body)
            got = c.wait_stream(sid)
            self.assertTrue(got == ("reset", h2.errors.ErrorCodes.PROTOCOL_ERROR) or
                            (got[0] == "response" and got[1] == 400),
                            "%s: %r" % (what, got))
            ok = c.request(base(b"/ret"))
            self.assertEqual(c.wait_stream(ok), ("response", 200, b"ok"), what)
        finally:
            c.close()
        _, after = self.app.stats()
        self.assertEqual(after, before + 1, "%s reached the backend" % what)  # +1: stats itself

    def test_good_request_passes(self):
        c = RawH2(self.weir.port)
        try:
            sid = c.request(base(b"/api/echo/ok", b"POST") + [(b"content-length", b"5")],
                            b"hello")
            got = c.wait_stream(sid)
            self.assertEqual(got[:2], ("response", 200))
            self.assertIn(b'"body_length":5', got[2])
        finally:
            c.close()

    def test_pseudo_fields_required(self):
        for drop in (b":method", b":path", b":scheme"):
            self.assertRefused([h for h in base() if h[0] != drop], what="without " + repr(drop))

    def test_pseudo_field_once_and_first(self):
        self.assertRefused(base() + [(b":path", b"/api/echo/twice")], what="two :path")
        h = base()
        self.assertRefused(h[:2] + [(b"accept", b"*/*")] + h[2:], what="pseudo after regular")
        self.assertRefused(base() + [(b":bogus", b"x")], what="unknown pseudo-field")

    def test_connection_specific_fields(self):
        for name, value in ((b"connection", b"keep-alive"), (b"keep-alive", b"timeout=5"),
                            (b"proxy-connection", b"keep-alive"),
                            (b"transfer-encoding", b"chunked"), (b"upgrade", b"websocket"),
                            (b"te", b"gzip")):
            self.assertRefused(base() + [(name, value)], what=name.decode())

    def test_te_trailers_allowed(self):
        c = RawH2(self.weir.port)
        try:
            got = c.wait_stream(c.request(base(b"/ret") + [(b"te", b"trailers")]))
            self.assertEqual(got, ("response", 200, b"ok"))
        finally:
            c.close()

    def test_upper_case_names(self):
        self.assertRefused(base() + [(b"X-Upper", b"1")], what="upper-case name")

    def test_bad_bytes_in_values(self):
        for bad in (b"a\rb", b"a\nb", b"a\x00b"):
            self.assertRefused(base() + [(b"x-bad", bad)], what=repr(bad))

    def test_content_length_must_match_data(self):
        post = base(b"/api/echo/cl", b"POST")
        self.assertRefused(post + [(b"content-length", b"10")], b"short", what="less DATA")
        self.assertRefused(post + [(b"content-length", b"2")], b"longer", what="more DATA")


if __name__ == "__main__":
    weirtest.main()
