#!/usr/bin/env python3
"""Issue 15, points 5 and 7: HTTP/2 flow control and lifecycle.

- A stream whose client stops reading (its window closes) stalls only
  itself: another stream on the same connection is answered meanwhile, and
  the stalled one completes once the client reads again.
- Shutdown (SIGTERM: drain, GOAWAY NO_ERROR) with a proxied stream in
  flight (its head sent, the backend still owes half the body): the stream
  still completes, then weir exits cleanly."""

import sys
sys.dont_write_bytecode = True

import hashlib
import os
import signal
import subprocess
import unittest

import upstreams
import weirtest
from h2test import HAVE_H2, RawH2
from polling import wait_until

INI = """[server]
listen = 127.0.0.1:@PORT@ h2c
workers = 1
access_log = off
error_log = stderr

[limits]
shutdown_timeout = 10s

[upstream slow]
server = @SLOW@

[route slow]
match = prefix:/slow/
proxy = slow

[route ret]
match = exact:/ret
return = 200 ok

[route files]
match = prefix:/
root = @TMP@/root
"""

BIG = 4 * 1024 * 1024


def get(path):
    return [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"l.test"),
            (b":path", path)]


def slow_answer(target, n):
    """The head and half the body now, the rest 0.2 s later."""
    body = b"x" * 2000
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    return head + body[:1000], body[1000:]


@unittest.skipUnless(HAVE_H2, "python3-h2 is not installed")
class LifecycleTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        root = os.path.join(tmp, "root")
        os.mkdir(root)
        cls.big = os.path.join(root, "big.bin")
        weirtest.write_random_file(cls.big, BIG)
        cls.slow = upstreams.RawBackend(respond=slow_answer)
        return {"SLOW": cls.slow.addr}

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.weir is not None and cls.weir.alive():
                super().tearDownClass()
            else:
                cls.weir.cleanup()
        finally:
            cls.slow.stop()

    def test_1_stalled_stream_does_not_stall_others(self):
        c = RawH2(self.weir.port)
        try:
            big = c.request(get(b"/big.bin"))
            c.stalled.add(big)
            st = c.stream(big)
            # Its window (65535 bytes) fills and stays shut.
            c.wait(lambda: len(st["body"]) >= 65535, what="the first window of big.bin")
            self.assertFalse(st["end"])
            small = c.request(get(b"/ret"))
            self.assertEqual(c.wait_stream(small), ("response", 200, b"ok"))
            self.assertLess(len(st["body"]), BIG)
            # Reading again: the rest comes, intact.
            c.stalled.discard(big)
            c.conn.acknowledge_received_data(len(st["body"]), big)
            c.flush()
            got = c.wait_stream(big, timeout=30)
            self.assertEqual(got[:2], ("response", 200))
            self.assertEqual(hashlib.sha256(got[2]).hexdigest(),
                             weirtest.sha256_file(self.big))
        finally:
            c.close()

    def test_2_shutdown_lets_streams_in_flight_finish(self):
        # curl, not python3-h2: h2 refuses DATA that follows a GOAWAY.
        curl = subprocess.Popen(["curl", "-sS", "--max-time", "20", "--http2-prior-knowledge",
                                 "http://127.0.0.1:%d/slow/x" % self.weir.port],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_until(lambda: self.slow.conns and b"\r\n\r\n" in bytes(self.slow.conns[0]),
                   "the request to reach the backend (in flight)")
        self.weir.signal(signal.SIGTERM)
        out, err = curl.communicate(timeout=30)
        self.assertEqual(curl.returncode, 0, err)
        self.assertEqual(out, b"x" * 2000)
        rc = self.weir.wait_exit(10)
        self.weir.check_clean_exit(rc)

if __name__ == "__main__":
    weirtest.main()
