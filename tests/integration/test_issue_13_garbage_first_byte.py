#!/usr/bin/env python3
"""Issue 13.24: a byte no request line can start with is answered 400 at
once, not held until header_timeout.

header_timeout is 30 s and every read waits at most 5 s: an answer that
arrives is the parser's, not the timeout's. Empty lines (CRLF) before the
request line are still skipped (RFC 9112 §2.2)."""

import sys
sys.dont_write_bytecode = True

import time
import unittest

import weirtest
from weirtest import SERVER

INI = SERVER + """
[limits]
header_timeout = 30s

[route health]
match = exact:/healthz
return = 200 ok
"""

WAIT = 5.0  # socket timeout, far below header_timeout


class GarbageFirstByteTest(weirtest.WeirCase):
    INI = INI

    def assert_refused_at_once(self, data, what):
        start = time.monotonic()
        with self.client(timeout=WAIT) as c:
            c.send(data)
            r = c.read_response(timeout=WAIT)
            self.assertEqual(r.status, 400, what)
            self.assertTrue(r.has_token("Connection", "close"), what)
            self.assertClosedByWeir(c, timeout=WAIT, what=what)
        self.assertLess(time.monotonic() - start, 2 * WAIT + 1, what)

    def test_lone_nul(self):
        self.assert_refused_at_once(b"\x00", "a lone NUL")

    def test_control_bytes(self):
        for b in (0x01, 0x07, 0x1b, 0x7f, 0x80, 0xff, 0x20, 0x09):
            self.assert_refused_at_once(bytes([b]), "byte 0x%02x alone" % b)

    def test_after_empty_line(self):
        self.assert_refused_at_once(b"\r\n\x00", "NUL after CRLF")
        self.assert_refused_at_once(b"\r\x00", "NUL after CR")

    def test_tls_client_hello_on_plain_port(self):
        self.assert_refused_at_once(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
                                    "TLS ClientHello")

    def test_bad_byte_later_in_the_line(self):
        self.assert_refused_at_once(b"GET\x00", "NUL in the method")
        self.assert_refused_at_once(b"GET /a\x00", "NUL in the target")
        self.assert_refused_at_once(b"GET / HTTP/1.1 ", "SP after the version")

    def test_empty_lines_still_skipped(self):
        with self.client(timeout=WAIT) as c:
            # not refused: a CRLF may precede a request (RFC 9112 §2.2)
            c.send(b"\r\n")
            c.send(b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
            self.assertEqual(c.read_response(timeout=WAIT).body, b"ok")


if __name__ == "__main__":
    weirtest.main()
