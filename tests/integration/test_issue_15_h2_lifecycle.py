#!/usr/bin/env python3
"""Issue 15, points 5 and 7: HTTP/2 flow control and lifecycle.

- A stream whose client stops reading (its window closes) stalls only
  itself: another stream on the same connection is answered meanwhile, and
  the stalled one completes once the client reads again.
- Shutdown (SIGTERM: drain, GOAWAY NO_ERROR) with a proxied stream in
  flight (its head sent, the backend still owes half the body): the stream
  still completes, then weir exits cleanly.
- Reload with proxied streams in flight on two listeners, one of which the
  new configuration removes: the connection on the removed listener gets
  GOAWAY NO_ERROR (counted once), both streams finish whole, new requests
  see the new configuration, and the removed port stops accepting."""

import sys
sys.dont_write_bytecode = True

import hashlib
import os
import re
import signal
import socket
import subprocess
import threading
import shutil
import unittest

import upstreams
import weirtest
from h2test import HAVE_H2, RawH2, get
from polling import wait_until, admin_get

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

RELOAD_INI = """[server]
listen = 127.0.0.1:@PORT@ h2c
listen = 127.0.0.1:@PORT2@ h2c
workers = 1
access_log = off
error_log = stderr

[admin]
listen = 127.0.0.1:@ADMIN@

[upstream held]
server = @HELD@

[route held]
match = prefix:/held/
proxy = held

[route ret]
match = exact:/ret
return = 200 old
"""

HELD_BODY = b"y" * 3000


class HeldBackend:
    """Answers each request with its head and half its body, then holds the
    rest until release is set. Every wait bounded."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.release = threading.Event()
        self.n_holding = 0
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while self.running:
            try:
                s, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        s.settimeout(10)
        with s:
            data = b""
            for _ in range(1000):
                if b"\r\n\r\n" in data:
                    break
                data += s.recv(65536)
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(HELD_BODY)
                      + HELD_BODY[:1500])
            with self.lock:
                self.n_holding += 1
            self.release.wait(20)
            s.sendall(HELD_BODY[1500:])
            s.recv(1)  # until weir closes or pools the connection (bounded by timeout)

    def stop(self):
        self.release.set()
        self.running = False
        self.thread.join(5)
        self.sock.close()


@unittest.skipUnless(shutil.which("curl"), "curl is needed")
class ReloadTest(weirtest.WeirCase):
    INI = RELOAD_INI

    @classmethod
    def make_subst(cls, tmp):
        cls.held = HeldBackend()
        cls.port2 = weirtest.free_port()
        cls.admin_port = weirtest.free_port()
        return {"HELD": cls.held.addr, "PORT2": cls.port2, "ADMIN": cls.admin_port}

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.held.stop()

    def metrics(self):
        return admin_get(self.admin_port, "/metrics")

    def goaways(self):
        m = re.search(r'^weir_http2_goaway_total\{reason="no_error"\} (\d+)$', self.metrics(),
                      re.M)
        return int(m.group(1)) if m else 0

    def reloads(self):
        m = re.search(r"^weir_config_reloads_total (\d+)$", self.metrics(), re.M)
        return int(m.group(1)) if m else 0

    def curl(self, port, path):
        return subprocess.Popen(["curl", "-sS", "--max-time", "30", "--http2-prior-knowledge",
                                 "http://127.0.0.1:%d%s" % (port, path)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def test_reload_with_streams_in_flight_and_a_listener_removed(self):
        kept = self.curl(self.weir.port, "/held/a")
        gone = self.curl(self.port2, "/held/b")
        wait_until(lambda: self.held.n_holding == 2, "both streams in flight")
        goaways, reloads = self.goaways(), self.reloads()
        text = self.weir.ini_text.replace("listen = 127.0.0.1:%d h2c\n" % self.port2, "")
        text = text.replace("return = 200 old", "return = 200 new")
        with open(self.weir.ini_path, "w") as f:
            f.write(text)
        self.weir.signal(signal.SIGHUP)
        wait_until(lambda: self.reloads() == reloads + 1, "the reload")
        # Only the connection on the removed listener is told to go.
        wait_until(lambda: self.goaways() == goaways + 1, "GOAWAY to the removed listener's client")
        self.assertEqual(self.get("/ret").body, b"new")
        # Streams in flight finish whole, on their connections' snapshot.
        self.held.release.set()
        for p in (kept, gone):
            out, err = p.communicate(timeout=30)
            self.assertEqual(p.returncode, 0, err)
            self.assertEqual(out, HELD_BODY)
        self.assertEqual(self.goaways(), goaways + 1)

        def refused():
            try:
                socket.create_connection(("127.0.0.1", self.port2), timeout=1).close()
                return False
            except OSError:
                return True
        wait_until(refused, "the removed port closed")


if __name__ == "__main__":
    weirtest.main()
