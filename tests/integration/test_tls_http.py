#!/usr/bin/env python3
"""HTTP over TLS behaves as over TCP: keep-alive, pipelining (one write and
byte-split), request bodies, a 10 MiB static file checked by SHA-256 (and
pipelined file bodies), ranges; 421 when the Host belongs to another
[tls NAME] certificate than the one SNI chose."""

import sys
sys.dont_write_bytecode = True

import hashlib
import os
import time
import unittest

import tlstest
import weirtest
from weirtest import SERVER, request_bytes

INI = SERVER + """
listen = 127.0.0.1:@TLSPORT@ tls

[tls]
cert = @D_CRT@
key = @D_KEY@

[tls a]
names = a.test *.a-wild.test
cert = @A_CRT@
key = @A_KEY@

[route ping]
match = exact:/healthz
return = 200 ok

[route files]
match = prefix:/files/
strip_prefix = /files
root = @TMP@/www
"""

BIG = 10 * 1024 * 1024
MEDIUM = 300 * 1024 + 7


class TlsHttpTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        d = tlstest.make_cert(tmp, "d", "default.test")
        a = tlstest.make_cert(tmp, "a", "a.test", ["*.a-wild.test"])
        www = os.path.join(tmp, "www")
        os.makedirs(www)
        weirtest.write_random_file(os.path.join(www, "big.bin"), BIG)
        weirtest.write_random_file(os.path.join(www, "medium.bin"), MEDIUM)
        with open(os.path.join(www, "small.txt"), "wb") as f:
            f.write(b"small file\n")
        cls.www = www
        cls.tls_port = weirtest.free_port()
        return {"TLSPORT": cls.tls_port, "D_CRT": d[0], "D_KEY": d[1], "A_CRT": a[0],
                "A_KEY": a[1]}

    def tls(self, sni=None, timeout=10.0):
        return tlstest.tls_client(self.tls_port, sni=sni, timeout=timeout)

    def test_keepalive(self):
        with self.tls() as c:
            for i in range(20):
                c.send(request_bytes("GET", "/healthz" if i % 2 else "/files/small.txt"))
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertIsNone(r.header("Connection"))
            c.send(request_bytes("GET", "/healthz", headers=[("Connection", "close")]))
            r = c.read_response()
            self.assertEqual(r.body, b"ok")
            self.assertClosedByWeir(c)

    def test_pipelining_one_write(self):
        seq = [("GET", "/healthz"), ("HEAD", "/files/small.txt"), ("GET", "/nope"),
               ("GET", "/files/small.txt"), ("POST", "/healthz")] * 6
        with self.tls() as c:
            c.send(b"".join(request_bytes(m, t, body=b"x" * 100 if m == "POST" else b"")
                            for m, t in seq))
            rs = c.read_responses([m for m, _ in seq])
        self.assertEqual([r.status for r in rs], [200, 200, 404, 200, 200] * 6)
        self.assertEqual(rs[3].body, b"small file\n")

    def test_pipelining_split_writes(self):
        data = b"".join(request_bytes("GET", "/healthz") for _ in range(5))
        with self.tls() as c:
            for i in range(0, len(data), 7):  # one TLS record per 7 bytes
                c.send(data[i:i + 7])
            rs = c.read_responses(["GET"] * 5)
        self.assertEqual([r.body for r in rs], [b"ok"] * 5)

    def read_body_sha256(self, c, n, seconds=60):
        """Hashes the next n body bytes as they come (no 10 MiB string
        concatenation in the client)."""
        h = hashlib.sha256(c.buf[:n])
        got, c.buf = min(len(c.buf), n), c.buf[n:]
        deadline = time.monotonic() + seconds
        while got < n and time.monotonic() < deadline:
            data = c.sock.recv(min(1 << 16, n - got))
            if not data:
                break
            h.update(data)
            got += len(data)
        self.assertEqual(got, n)
        return h.hexdigest()

    def test_big_file_sha256(self):
        with self.tls(timeout=30.0) as c:
            c.send(request_bytes("GET", "/files/big.bin"))
            head = c._read_until(b"\r\n\r\n", time.monotonic() + 10)
            self.assertIn(b" 200 OK\r\n", head)
            self.assertIn(b"Content-Length: %d\r\n" % BIG, head)
            self.assertEqual(self.read_body_sha256(c, BIG),
                             weirtest.sha256_file(os.path.join(self.www, "big.bin")))
            c.send(request_bytes("GET", "/healthz"))  # still usable afterwards
            self.assertEqual(c.read_response().body, b"ok")

    def test_slow_reader_gets_whole_file(self):
        """The socket fills and drains many times: every partial SSL_write
        retry must resend the same bytes."""
        with self.tls(timeout=30.0) as c:
            c.sock.setsockopt(weirtest.socket.SOL_SOCKET, weirtest.socket.SO_RCVBUF, 4096)
            c.send(request_bytes("GET", "/files/medium.bin"))
            head = c._read_until(b"\r\n\r\n", time.monotonic() + 10)
            self.assertIn(b"200 OK", head)
            body = b""
            deadline = time.monotonic() + 30
            while len(body) < MEDIUM and time.monotonic() < deadline:
                body += c.sock.recv(1500) if not c.buf else c.buf
                c.buf = b""
                time.sleep(0.001)  # a slow reader, so the socket fills: under test
            self.assertEqual(hashlib.sha256(body).hexdigest(),
                             weirtest.sha256_file(os.path.join(self.www, "medium.bin")))

    def test_pipelined_file_bodies(self):
        want = weirtest.sha256_file(os.path.join(self.www, "medium.bin"))
        with self.tls(timeout=30.0) as c:
            c.send(request_bytes("GET", "/files/medium.bin") * 3 +
                   request_bytes("GET", "/files/small.txt"))
            rs = c.read_responses(["GET"] * 4, timeout=30)
        for r in rs[:3]:
            self.assertEqual(hashlib.sha256(r.body).hexdigest(), want)
        self.assertEqual(rs[3].body, b"small file\n")

    def test_range_over_tls(self):
        with self.tls() as c:
            c.send(request_bytes("GET", "/files/medium.bin", headers=[("Range", "bytes=100-199")]))
            r = c.read_response()
        self.assertEqual(r.status, 206)
        with open(os.path.join(self.www, "medium.bin"), "rb") as f:
            f.seek(100)
            self.assertEqual(r.body, f.read(100))

    def test_misdirected_421(self):
        cases = [
            # (SNI, Host, status)
            ("a.test", "a.test", 200),
            ("a.test", "a.test:443", 200),
            ("x.a-wild.test", "y.a-wild.test", 200),  # same certificate
            ("a.test", "other.test", 421),           # [tls] answers other.test
            (None, "a.test", 421),                   # handshake got [tls]
            ("unknown.test", "a.test", 421),
            ("unknown.test", "other.test", 200),     # both [tls]
            (None, "localhost", 200),
        ]
        for sni, host, status in cases:
            with self.subTest(sni=sni, host=host):
                r = tlstest.tls_get(self.tls_port, "/healthz", host=host, sni=sni)
                self.assertEqual(r.status, status)
        # A 421 keeps the connection usable for a request it may serve.
        with self.tls(sni="a.test") as c:
            c.send(request_bytes("GET", "/healthz", host="other.test"))
            self.assertEqual(c.read_response().status, 421)
            c.send(request_bytes("GET", "/healthz", host="a.test"))
            self.assertEqual(c.read_response().status, 200)

    def test_plain_port_unaffected(self):
        r = self.get("/healthz", host="a.test")
        self.assertEqual((r.status, r.body), (200, b"ok"))


if __name__ == "__main__":
    weirtest.main()
