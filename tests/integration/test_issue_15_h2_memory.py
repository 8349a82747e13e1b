#!/usr/bin/env python3
"""Issue 15: memory per HTTP/2 connection and per open HTTP/2 stream.

One weir (1 worker, h2c, a static 1 MiB file), RSS from /proc around two
loads (as bench/h2_mem.py measures the release build):
- 200 idle h2c connections, each after one answered request: a
  connection keeps no stream struct for later (they come from the
  worker's free list);
- 3 connections x 100 streams, each a GET of the file whose client never
  reads (windows shut): every stream stays open with its answer started,
  and holds no response head buffer (given back once nghttp2 took the
  head) nor a max_header_size buffer for its fields.
The bounds are for this ASan build (measured 34 and 8.5 KiB; 50 and 17.6
before the per-stream memory was cut).
A head larger than the stream's own 2 KiB moves its fields to a grown
buffer (twice: 2 -> 4 -> 8 KiB): every field, the joined cookie crumbs and the target still reach
the upstream intact."""

import sys
sys.dont_write_bytecode = True

import os
import time
import unittest

import upstreams
import weirtest
from h2test import HAVE_H2, RawH2, get

INI = """[server]
listen = 127.0.0.1:@PORT@ h2c
workers = 1
access_log = off
error_log = stderr

[limits]
max_connections_per_ip = 0
send_timeout = 10m

[http2]
idle_timeout = 10m

[upstream b]
server = @B@

[route up]
match = prefix:/up/
proxy = b

[route files]
match = prefix:/
root = @TMP@/root
"""

N_IDLE = 200
N_STREAM_CONNS = 3
N_STREAMS = 100
IDLE_CONN_KIB = 42    # ASan build: 50 before, 34 after
OPEN_STREAM_KIB = 13  # ASan build: 17.6 before, 8.5 after



@unittest.skipUnless(HAVE_H2, "python3-h2 is not installed")
class MemoryTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def setUpClass(cls):
        # A small ASan quarantine: freed memory is reused, so RSS tracks what
        # weir holds rather than what ASan keeps (as the soak test does).
        opts = os.environ.get("ASAN_OPTIONS",
                              "detect_leaks=1:abort_on_error=1:disable_coredump=1")
        os.environ["ASAN_OPTIONS"] = opts + ":quarantine_size_mb=1"
        super().setUpClass()

    @classmethod
    def make_subst(cls, tmp):
        root = os.path.join(tmp, "root")
        os.mkdir(root)
        weirtest.write_random_file(os.path.join(root, "f.bin"), 1 << 20)
        with open(os.path.join(root, "s.txt"), "wb") as f:
            f.write(b"small\n")
        cls.backend = upstreams.Backend("b")
        return {"B": cls.backend.addr}

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.backend.stop()

    def settle(self):
        """RSS once it stopped moving (free lists trim once a second)."""
        pid = self.weir.pid()
        last = weirtest.rss_kib(pid)
        for _ in range(30):
            time.sleep(0.5)  # sampling pace of a polled value, not a wait for state
            now = weirtest.rss_kib(pid)
            if abs(now - last) < 8:  # KiB
                return now
            last = now
        return last

    def one_request(self):
        c = RawH2(self.weir.port, timeout=10)
        sid = c.request(get(b"/s.txt"))
        self.assertEqual(c.wait_stream(sid), ("response", 200, b"small\n"))
        return c

    # The bounds are the ASan build's (make test); `make tsan` runs with
    # TSAN_OPTIONS set, and ThreadSanitizer's shadow memory costs about
    # three times as much per connection (96 KiB measured), so the figures
    # mean nothing there.
    @unittest.skipIf("TSAN_OPTIONS" in os.environ,
                     "RSS bounds are for the ASan build (make test)")
    def test_idle_connections_and_open_streams(self):
        conns = [self.one_request()]  # warms the worker's lists and the file cache
        try:
            base = self.settle()
            conns += [self.one_request() for _ in range(N_IDLE)]
            with_idle = self.settle()
            per_conn = (with_idle - base) / N_IDLE
            for _ in range(N_STREAM_CONNS):
                c = RawH2(self.weir.port, timeout=10)
                conns.append(c)
                sids = [c.request(get(b"/f.bin")) for _ in range(N_STREAMS)]
                for sid in sids:
                    c.stalled.add(sid)
                c.wait(lambda: all(c.stream(s)["status"] == 200 for s in sids), timeout=20,
                       what="every stream's head")
            with_streams = self.settle()
            per_stream = ((with_streams - with_idle - N_STREAM_CONNS * per_conn)
                          / (N_STREAM_CONNS * N_STREAMS))
            print("\n  idle h2c connection %.1f KiB, open stream %.1f KiB (ASan build)"
                  % (per_conn, per_stream))
            self.assertLess(per_conn, IDLE_CONN_KIB)
            self.assertLess(per_stream, OPEN_STREAM_KIB)
        finally:
            for c in conns:
                c.close()

    def test_large_head_reaches_the_upstream_intact(self):
        crumbs = [b"c%d=%s" % (i, bytes([97 + i]) * 300) for i in range(8)]
        extra = [(b"x-field-%d" % i, b"%d" % i * 200) for i in range(10)]
        target = b"/up/" + b"p" * 500 + b"?q=" + b"z" * 300
        head = get(target, authority=b"m.test")
        head += [(b"cookie", c) for c in crumbs] + extra
        c = RawH2(self.weir.port, timeout=10)
        try:
            got = c.wait_stream(c.request(head))
        finally:
            c.close()
        self.assertEqual(got[:2], ("response", 200))
        r = self.backend.requests[-1]
        self.assertEqual(r.target, target.decode())
        self.assertEqual(r.header_all("cookie"), [b"; ".join(crumbs).decode()])
        for name, value in extra:
            self.assertEqual(r.header_all(name.decode()), [value.decode()])
        self.assertEqual(r.header("host"), "m.test")


if __name__ == "__main__":
    weirtest.main()
