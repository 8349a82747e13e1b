#!/usr/bin/env python3
"""Streaming through the proxy with backpressure: 100 MiB up (Content-Length
and chunked) and 100 MiB down, checked by SHA-256; a client reading a large
response slowly keeps weir's RSS bounded; a client that leaves aborts the
upstream request on a route with abort_on_eof = on (without it, an EOF
after the request is a half-close and the answer is still sent:
test_issue_13_half_close.py); a WebSocket-style upgrade is tunnelled both ways and
idles out; without websocket = on, Upgrade is not forwarded."""

import sys
sys.dont_write_bytecode = True

import hashlib
import http.client
import os
import socket
import time

import weirtest
from polling import wait_until
from weirtest import SERVER, request_bytes
from upstreams import Backend, pattern_sha256

BIG = 100 << 20

INI = SERVER + """
[limits]
max_body_size = 0
send_timeout = 30s

[upstream app]
server = @B1@
read_timeout = 10s

[route ws]
match = prefix:/ws
proxy = app
websocket = on
websocket_timeout = 1s

[route abort]
match = prefix:/abort/
strip_prefix = /abort
proxy = app
abort_on_eof = on

[route nows]
match = prefix:/nows/
rewrite = /ws
proxy = app

[route app]
match = prefix:/
proxy = app
"""


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class StreamTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.b1 = Backend("b1", keep_body=False)
        return {"B1": cls.b1.addr}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.b1.stop()

    def send_body(self, sock, size, is_chunked):
        block = os.urandom(1 << 20)
        h = hashlib.sha256()
        left = size
        while left > 0:
            n = min(left, len(block))
            h.update(block[:n])
            if is_chunked:
                sock.sendall(b"%x\r\n" % n + block[:n] + b"\r\n")
            else:
                sock.sendall(block[:n])
            left -= n
        if is_chunked:
            sock.sendall(b"0\r\n\r\n")
        return h.hexdigest()

    def upload(self, is_chunked):
        with self.client(timeout=60) as c:
            hdr = ("Transfer-Encoding", "chunked") if is_chunked else ("Content-Length", str(BIG))
            c.send(request_bytes("POST", "/echo/up", headers=[hdr]))
            want = self.send_body(c.sock, BIG, is_chunked)
            r = c.read_response(timeout=60)
        self.assertEqual(r.status, 200)
        import json
        doc = json.loads(r.body)
        self.assertEqual(doc["body_len"], BIG)
        self.assertEqual(doc["body_sha256"], want)

    def test_100mib_up_content_length(self):
        self.upload(False)

    def test_100mib_up_chunked(self):
        self.upload(True)

    def test_100mib_down(self):
        for path in ("/big?size=%d" % BIG, "/chunked?size=%d&n=400" % BIG,
                     "/close?size=%d" % BIG):
            conn = http.client.HTTPConnection("127.0.0.1", self.weir.port, timeout=60)
            conn.request("GET", path)
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            h = hashlib.sha256()
            n = 0
            for _ in range(10000):
                block = resp.read(1 << 20)
                if not block:
                    break
                h.update(block)
                n += len(block)
            conn.close()
            self.assertEqual(n, BIG, path)
            self.assertEqual(h.hexdigest(), pattern_sha256(BIG), path)

    def test_many_small_chunks_to_a_slow_reader(self):
        """A chunked body of tiny chunks (more per buffer than one send
        takes) to a client slower than the backend: every byte arrives.
        weir used to drop the buffered chunks it had not parsed yet when
        the client's socket filled ("bad chunked body", a cut client)."""
        size = 4 << 20
        s = socket.create_connection(("127.0.0.1", self.weir.port), timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 10)
        conn = http.client.HTTPConnection("127.0.0.1", self.weir.port, timeout=10)
        conn.sock = s
        conn.request("GET", "/chunked?size=%d&n=%d" % (size, size // 100))
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        h = hashlib.sha256()
        n = 0
        # The sleep is the slow client under test, not a wait for state.
        for i in range(100000):
            block = resp.read(16 << 10)
            if not block:
                break
            h.update(block)
            n += len(block)
            if i % 8 == 0:
                time.sleep(0.002)
        conn.close()
        self.assertEqual(n, size)
        self.assertEqual(h.hexdigest(), pattern_sha256(size))

    def test_slow_reader_memory_bounded(self):
        pid = self.weir.pid()
        self.assertEqual(self.get("/echo/warm").status, 200)
        rss0 = vm_rss_kib(pid)
        s = socket.create_connection(("127.0.0.1", self.weir.port), timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
        s.sendall(request_bytes("GET", "/big?size=%d" % (200 << 20)))
        got = 0
        peak = rss0
        deadline = time.monotonic() + 30
        # Read 20 MiB slowly (the server has 200 MiB to send), watching RSS:
        # the sleep is the slow client under test, not a wait for state.
        while got < (20 << 20) and time.monotonic() < deadline:
            data = s.recv(256 << 10)
            if not data:
                break
            got += len(data)
            time.sleep(0.01)
            peak = max(peak, vm_rss_kib(pid))
        s.close()
        self.assertGreaterEqual(got, 20 << 20)
        self.assertLess(peak - rss0, 16 << 10, "RSS grew %d KiB" % (peak - rss0))

    def test_client_leaving_aborts_upstream(self):
        n = len(self.b1.requests)
        s = socket.create_connection(("127.0.0.1", self.weir.port), timeout=5)
        s.sendall(request_bytes("GET", "/abort/slow?ms=1500"))
        # The backend holds the request (it answers after 1.5 s).
        wait_until(lambda: any("/slow" in r.target for r in self.b1.requests[n:]),
                   "the backend to receive /slow")
        during = self.b1.n_open
        s.close()
        # Had weir waited for the answer, the upstream connection would now
        # sit in its pool, still open; aborted, the backend sees it closed
        # once it answers.
        deadline = time.monotonic() + 5
        while self.b1.n_open >= during and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.b1.n_open, during - 1)

    def test_websocket_tunnel(self):
        with self.client() as c:
            c.send(request_bytes("GET", "/ws", headers=[("Connection", "Upgrade"),
                                                     ("Upgrade", "websocket"),
                                                     ("Sec-WebSocket-Key", "abc")]))
            r = c.read_response()
            self.assertEqual(r.status, 101)
            self.assertEqual(r.header("Upgrade"), "websocket")
            for i in range(50):
                msg = os.urandom(1 + i * 997)
                c.send(msg)
                got = b""
                deadline = time.monotonic() + 5
                while len(got) < len(msg) and time.monotonic() < deadline:
                    got += c.sock.recv(65536)
                self.assertEqual(got, msg)
            # idle beyond websocket_timeout: weir closes the tunnel
            how, _, secs = c.wait_closed(5)
            self.assertIsNotNone(how)
        req = [q for q in self.b1.requests if q.target == "/ws"][-1]
        self.assertEqual(req.header("Upgrade"), "websocket")
        self.assertEqual(req.header("Connection"), "upgrade")
        self.assertServes("/echo/after-ws")

    def test_upgrade_not_forwarded_without_websocket(self):
        r = self.get("/nows/x", headers=[("Connection", "Upgrade"), ("Upgrade", "websocket")])
        # The backend answers /ws with 101 regardless; weir did not ask for
        # an upgrade, so that answer is malformed: 502, never relayed.
        self.assertEqual(r.status, 502)
        req = [q for q in self.b1.requests if q.target == "/ws"][-1]
        self.assertIsNone(req.header("Upgrade"))


if __name__ == "__main__":
    weirtest.main()
