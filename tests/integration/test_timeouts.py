#!/usr/bin/env python3
"""Timeouts: header_timeout (whole head, slowloris too), keepalive_timeout,
body_timeout, send_timeout. A 408 before the close is accepted; the bounds
are generous (timeout + 2 s) because this is not a benchmark."""

import sys
sys.dont_write_bytecode = True

import os
import socket
import time

import weirtest
from weirtest import SERVER, request_bytes, write_random_file

INI = SERVER + """
[limits]
header_timeout = 1s
body_timeout = 1s
keepalive_timeout = 1500ms
send_timeout = 1s

[route ping]
match = exact:/healthz
return = 200 ok

[route files]
match = prefix:/
root = @ROOT@
"""

SLACK = 2.0


class TimeoutsTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        root = os.path.join(tmp, "www")
        os.mkdir(root)
        write_random_file(os.path.join(root, "big.bin"), 20 << 20)
        return {"ROOT": root}

    def check_408_or_close(self, c, limit, what):
        start = time.monotonic()
        try:
            r = c.read_response(timeout=limit)
        except weirtest.ProtocolError:
            # closed without a response
            self.assertTrue(c.eof, what)
            return time.monotonic() - start
        except socket.timeout:
            self.fail("%s: no response and no close within %.1fs" % (what, limit))
        self.assertEqual(r.status, 408, "%s: only 408 or a plain close: %r" % (what, r))
        self.assertTrue(r.has_token("Connection", "close"), r.headers)
        left = max(0.5, limit - (time.monotonic() - start))
        how, _, _ = c.wait_closed(left)
        self.assertIsNotNone(how, "%s: 408 sent but the connection stays open" % what)
        return time.monotonic() - start

    def test_header_timeout_partial_line(self):
        with self.client() as c:
            c.send(b"GET /heal")
            elapsed = self.check_408_or_close(c, 1 + SLACK, "half a request line")
            self.assertGreater(elapsed, 0.5, "closed long before header_timeout")
        self.assertServes()

    def test_header_timeout_partial_headers(self):
        with self.client() as c:
            c.send(b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Slow: ")
            self.check_408_or_close(c, 1 + SLACK, "half a header block")

    def test_header_timeout_is_for_the_whole_head(self):
        # Slowloris: one byte every 200 ms never completes a head; the head
        # timeout must not be re-armed by each byte.
        data = b"GET /healthz HTTP/1.1\r\nHost: a\r\n" + b"X-Drip: " + b"d" * 100
        with self.client() as c:
            start = time.monotonic()
            closed = False
            for i in range(len(data)):
                if time.monotonic() - start > 1 + SLACK:
                    break
                try:
                    c.send(data[i:i + 1])
                except OSError:
                    closed = True
                    break
                if not c.nothing_within(0.2):
                    closed = True
                    break
            if not closed:
                how, _, _ = c.wait_closed(0.5)
                closed = how is not None
            self.assertTrue(closed, "a dripping head outlived header_timeout + %.1fs" % SLACK)
            if c.buf:
                self.assertTrue(c.buf.startswith(b"HTTP/1.1 408"), c.buf[:100])

    def test_idle_new_connection_closed(self):
        with self.client() as c:
            self.assertTrue(c.nothing_within(0.4), "closed at once")
            how, _, _ = c.wait_closed(1.5 + SLACK)
            self.assertIsNotNone(how, "a connection that never sends a byte stays open")

    def test_keepalive_timeout(self):
        with self.client() as c:
            c.send(request_bytes("GET", "/healthz"))
            self.assertEqual(c.read_response().status, 200)
            time.sleep(0.5)  # idle, but within keepalive_timeout: the behaviour under test
            c.send(request_bytes("GET", "/healthz"))
            self.assertEqual(c.read_response().status, 200, "still open within the timeout")
            start = time.monotonic()
            how, n, _ = c.wait_closed(1.5 + SLACK)
            self.assertIsNotNone(how, "idle keep-alive connection not closed")
            self.assertEqual(n, 0, "no bytes (no 408) on an idle keep-alive close")
            self.assertGreater(time.monotonic() - start, 0.8, "closed before keepalive_timeout")

    def test_body_timeout(self):
        with self.client() as c:
            c.send(request_bytes("POST", "/healthz", headers=[("Content-Length", "10")]) +
                   b"12345")
            self.check_408_or_close(c, 1 + SLACK, "stalled body")
        self.assertServes()

    def test_body_timeout_is_a_gap(self):
        # A body trickling faster than body_timeout is not cut off.
        with self.client() as c:
            c.send(request_bytes("POST", "/healthz", headers=[("Content-Length", "4")]))
            for b in b"abcd":
                time.sleep(0.4)  # the trickle under test
                c.send(bytes([b]))
            r = c.read_response()
            self.assertEqual(r.status, 200)

    def test_send_timeout(self):
        # The client asks for 20 MB and reads nothing; weir must give up
        # after send_timeout instead of holding the connection forever.
        total = 20 << 20
        with weirtest.Client(("127.0.0.1", self.weir.port), rcvbuf=64 * 1024) as c:
            c.send(request_bytes("GET", "/big.bin"))
            time.sleep(1 + SLACK + 0.5)  # not reading past send_timeout: under test
            how, n, _ = c.wait_closed(8.0, max_bytes=total + (1 << 20))
            self.assertIsNotNone(how, "connection still open after draining %d bytes" % n)
            self.assertLess(n, total, "weir sent the whole file to a client that stopped "
                            "reading for longer than send_timeout")
        self.assertServes()


if __name__ == "__main__":
    weirtest.main()
