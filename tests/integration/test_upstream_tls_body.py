#!/usr/bin/env python3
"""A proxied body over TLS on both sides, checked by SHA-256 (issue 5): a
client on a TLS listener sends 1 MiB (Content-Length and chunked) through
weir to a TLS backend, and downloads 1 MiB (Content-Length and chunked)
back, on one keep-alive connection and on fresh ones; a WebSocket-style
tunnel relays bytes both ways over the TLS upstream, from a plain and from
a TLS client."""

import sys
sys.dont_write_bytecode = True

import hashlib
import json
import os

import tlstest
import weirtest
from weirtest import SERVER, request_bytes
from upstreams import Backend, pattern_sha256

INI = SERVER + """
listen = 127.0.0.1:@TLSPORT@ tls

[tls]
cert = @D_CRT@
key = @D_KEY@

[limits]
max_body_size = 8m

[upstream app]
server = localhost:@B@
tls = on
tls_ca = @CA@
keepalive = 2

[route app]
match = prefix:/
proxy = app
websocket = on
"""

MIB = 1024 * 1024


class UpstreamTlsBodyTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        d = tlstest.make_cert(tmp, "d", "localhost")
        ca = tlstest.make_ca(tmp, "ca", "weir test CA")
        leaf = tlstest.make_signed_cert(tmp, "leaf", "localhost", ca)
        cls.backend = Backend("tlsb", keep_body=False, tls=tlstest.server_context(leaf))
        cls.tls_port = weirtest.free_port()
        return {"TLSPORT": cls.tls_port, "D_CRT": d[0], "D_KEY": d[1], "CA": ca[0],
                "B": cls.backend.port}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.backend.stop()

    def tls(self):
        return tlstest.tls_client(self.tls_port, timeout=20.0)

    def upload(self, c, body, is_chunked):
        if is_chunked:
            pieces = [body[i:i + 100000] for i in range(0, len(body), 100000)]
            c.send(request_bytes("POST", "/echo", headers=[("Transfer-Encoding", "chunked")])
                   + weirtest.chunked(*pieces))
        else:
            c.send(request_bytes("POST", "/echo", body=body))
        r = c.read_response()
        self.assertEqual(r.status, 200, r.body[:200])
        doc = json.loads(r.body)
        self.assertEqual(doc["body_len"], len(body))
        self.assertEqual(doc["body_sha256"], hashlib.sha256(body).hexdigest())

    def download(self, c, target, size):
        c.send(request_bytes("GET", target))
        r = c.read_response(timeout=20.0)
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.body), size)
        self.assertEqual(hashlib.sha256(r.body).hexdigest(), pattern_sha256(size))

    def test_both_ways_keepalive(self):
        body = os.urandom(MIB)
        with self.tls() as c:
            for is_chunked in (False, True):
                self.upload(c, body, is_chunked)
                self.download(c, "/big?size=%d" % MIB, MIB)
                self.download(c, "/chunked?size=%d&n=9" % MIB, MIB)

    def test_fresh_connections(self):
        for i in range(3):
            body = os.urandom(MIB - i * 4097)
            with self.tls() as c:
                self.upload(c, body, i % 2 == 1)
            with self.tls() as c:
                self.download(c, "/big?size=%d" % (MIB + i * 13), MIB + i * 13)

    def tunnel(self, c):
        c.send(request_bytes("GET", "/ws", headers=[("Connection", "Upgrade"),
                                                    ("Upgrade", "websocket")]))
        r = c.read_response()
        self.assertEqual(r.status, 101)
        for size in (1, 200000, 3000):
            data = os.urandom(size)
            c.send(data)
            got = c.buf
            c.buf = b""
            for _ in range(10000):
                if len(got) >= len(data):
                    break
                chunk = c.sock.recv(65536)
                if not chunk:
                    break
                got += chunk
            self.assertEqual(hashlib.sha256(got).hexdigest(), hashlib.sha256(data).hexdigest())

    def test_tunnel_plain_client(self):
        with self.client() as c:
            self.tunnel(c)

    def test_tunnel_tls_client(self):
        """TLS on both sides of the tunnel: the client's records are
        decrypted, not relayed raw."""
        with self.tls() as c:
            self.tunnel(c)

if __name__ == "__main__":
    weirtest.main()
