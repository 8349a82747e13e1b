#!/usr/bin/env python3
"""Issue 13.3: over TLS, a close-delimited upstream body is complete only
when the server ends it with close_notify (RFC 9112 §9.8). A bare TCP FIN
may be a truncation: weir cuts the client connection without the chunked
terminator, so an HTTP/1.1 client never sees `0\\r\\n\\r\\n`, and logs it at
warn. With close_notify the client gets the complete chunked response and
the connection goes on. Length- and chunk-framed bodies cut by a bare FIN
stay cut too.

Where nothing can be truncated a bare FIN stays harmless: a health check
whose server closes without close_notify after the status passes, and an
idle pooled connection the server closes that way is dropped quietly and
its TLS session still resumes the next connection."""

import sys
sys.dont_write_bytecode = True

import socket
import ssl
import threading
import time

import tlstest
import weirtest
from weirtest import SERVER, request_bytes

INI = SERVER.replace("error_log = stderr", "error_log = stderr\nlog_level = warn") + """
[upstream tlsb]
server = 127.0.0.1:@B@
tls = on
tls_verify = off

[upstream checked]
server = 127.0.0.1:@B@
tls = on
tls_verify = off
health_check = GET /health
health_interval = 100ms
health_timeout = 1s

[route checked]
host = checked.test
match = prefix:/
proxy = checked

[route all]
match = prefix:/
proxy = tlsb
"""

BODY = b"0123456789abcdef" * 2048  # 32 KiB


class TruncatingBackend:
    """A TLS server: one request per connection, answered by path, then
    closed with (unwrap) or without (a bare close) close_notify."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.served = []         # (path, session_reused), one per connection
        self.quiet_closed = 0    # /quiet connections weir closed after our FIN
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def stop(self):
        self.running = False
        self.thread.join(timeout=5)
        self.sock.close()

    def loop(self):
        while self.running:
            try:
                raw, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self.serve, args=(raw,), daemon=True).start()

    def quiet(self, s):
        """A keep-alive response, then a bare FIN while weir pools the
        connection; counted once weir closes its side."""
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nquiet")
        s.shutdown(socket.SHUT_WR)  # drops the TLS layer: no close_notify
        for _ in range(1000):
            if not s.recv(4096):
                break
        with self.lock:
            self.quiet_closed += 1

    def serve(self, raw):
        raw.settimeout(5)
        try:
            s = self.ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        try:
            head = b""
            for _ in range(1000):
                if b"\r\n\r\n" in head:
                    break
                data = s.recv(4096)
                if not data:
                    return
                head += data
            path = head.split(b" ", 2)[1].decode()
            with self.lock:
                self.served.append((path, s.session_reused))
            if path.startswith("/quiet"):
                self.quiet(s)
                return
            if path.startswith("/length-cut"):
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY)
                          + BODY[:1000])
            elif path == "/health":
                # Small, so the bare FIN comes with it: a checker that read
                # the EOF as an error before the status line would fail.
                s.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nok")
            elif path.startswith("/chunk-cut"):
                s.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"3e8\r\n" + BODY[:1000] + b"\r\n")
            else:
                s.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + BODY)
            if path.startswith("/close-notify"):
                try:
                    s = s.unwrap()  # close_notify, then the TCP close below
                except (ssl.SSLError, OSError):
                    pass
        except (ssl.SSLError, OSError):
            pass
        finally:
            s.close()  # on the TLS socket: no close_notify, a bare FIN


class TlsTruncationTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cert = tlstest.make_cert(tmp, "b", "localhost")
        cls.b = TruncatingBackend(tlstest.server_context(cert))
        return {"B": cls.b.port}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.b.stop()

    def read_cut(self, target):
        """One request; everything weir sends until it closes."""
        with self.client() as c:
            c.send(request_bytes("GET", target))
            deadline = time.monotonic() + 5
            try:
                for _ in range(10000):
                    if not c._fill(deadline):
                        break
            except socket.timeout:
                pass
            got = c.buf
            self.assertTrue(c.eof, "weir kept the connection open after %r" % got[-20:])
        head, _, body = got.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
        return head, body

    def test_bare_fin_cuts_the_client(self):
        head, body = self.read_cut("/bare-fin")
        self.assertIn(b"Transfer-Encoding: chunked", head)
        self.assertFalse(body.endswith(b"0\r\n\r\n"), body[-20:])
        self.assertNotIn(b"\r\n0\r\n\r\n", body)
        deadline = time.monotonic() + 5
        while "without TLS close_notify" not in self.weir.stderr():
            self.assertLess(time.monotonic(), deadline, self.weir.stderr())
            time.sleep(0.05)

    def test_close_notify_completes(self):
        with self.client() as c:
            for i in range(2):
                c.send(request_bytes("GET", "/close-notify/%d" % i))
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertEqual(r.header("Transfer-Encoding"), "chunked")
                self.assertEqual(r.body, BODY)

    def test_length_cut(self):
        head, body = self.read_cut("/length-cut")
        self.assertIn(b"Content-Length: %d" % len(BODY), head)
        self.assertLess(len(body), len(BODY))

    def test_chunk_cut(self):
        head, body = self.read_cut("/chunk-cut")
        self.assertFalse(body.endswith(b"0\r\n\r\n"), body[-20:])


    def test_health_check_bare_fin_passes(self):
        """The checker reads the status line; the close without
        close_notify that follows does not fail the check."""
        deadline = time.monotonic() + 10
        while sum(1 for p, _ in self.b.served if p == "/health") < 3:
            self.assertLess(time.monotonic(), deadline, "no health checks seen")
            time.sleep(0.05)
        r = self.get("/close-notify/checked", host="checked.test")
        self.assertEqual(r.status, 200)
        self.assertNotIn("failed its health check", self.weir.stderr())

    def test_idle_bare_fin_keeps_resumption(self):
        r = self.get("/quiet/1")
        self.assertEqual((r.status, r.body), (200, b"quiet"))
        deadline = time.monotonic() + 5
        while self.b.quiet_closed < 1:  # weir saw the FIN and closed its side
            self.assertLess(time.monotonic(), deadline, "weir kept the idle connection")
            time.sleep(0.02)
        r = self.get("/quiet/2")
        self.assertEqual((r.status, r.body), (200, b"quiet"))
        reused = [u for p, u in self.b.served if p == "/quiet/2"]
        self.assertEqual(reused, [True], self.b.served)


if __name__ == "__main__":
    weirtest.main()
