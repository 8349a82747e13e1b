#!/usr/bin/env python3
"""Proxy routes behind a tls listener: request bodies (Content-Length and
chunked, up to 1 MiB, checked by SHA-256 at the backend) arrive decrypted
and the client's TLS stream stays intact for the next request on the same
connection; a WebSocket upgrade over TLS is not tunnelled (the request goes
up as an ordinary one)."""

import sys
sys.dont_write_bytecode = True

import hashlib
import json
import os

import tlstest
import weirtest
from weirtest import SERVER, chunked, request_bytes
from upstreams import Backend

INI = SERVER + """
listen = 127.0.0.1:@TLSPORT@ tls

[tls]
cert = @CRT@
key = @KEY@

[upstream app]
server = @B1@

[route app]
match = prefix:/
proxy = app
websocket = on
"""


class TlsProxyTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        crt, key = tlstest.make_cert(tmp, "site", "tls.test")
        cls.backend = Backend(name="b1")
        cls.tls_port = weirtest.free_port()
        return {"TLSPORT": cls.tls_port, "CRT": crt, "KEY": key, "B1": cls.backend.addr}

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.backend.stop()

    def echo(self, c, body, headers=(), raw_body=None):
        c.send(request_bytes("POST", "/echo", headers=headers,
                             body=raw_body if raw_body is not None else body))
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        doc = json.loads(r.body)
        self.assertEqual(doc["body_len"], len(body))
        self.assertEqual(doc["body_sha256"], hashlib.sha256(body).hexdigest())
        return doc

    def test_issue_7_request_body_over_tls(self):
        """Bodies bigger than what arrives with the head were read from the
        raw socket: ciphertext went up as body, the client got a bad MAC."""
        with tlstest.tls_client(self.tls_port, timeout=15) as c:
            for size in (1, 5000, 70000, 1 << 20, 3):
                with self.subTest(size=size):
                    self.echo(c, os.urandom(size))

    def test_issue_7_chunked_body_over_tls(self):
        body = os.urandom(200000)
        pieces = [body[i:i + 30000] for i in range(0, len(body), 30000)]
        with tlstest.tls_client(self.tls_port, timeout=15) as c:
            for _ in range(2):
                self.echo(c, body, headers=[("Transfer-Encoding", "chunked")],
                          raw_body=chunked(*pieces))

    def test_declined_upgrade_over_tls(self):
        # The upgrade is offered to the server (tunnels work over TLS, see
        # test_upstream_tls_body); a server that answers 200 instead of 101
        # is relayed as an ordinary response and the stream stays usable.
        with tlstest.tls_client(self.tls_port, timeout=15) as c:
            c.send(request_bytes("GET", "/echo/ws", headers=[
                ("Connection", "Upgrade"), ("Upgrade", "websocket"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("Sec-WebSocket-Version", "13")]))
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            names = [n.lower() for n, _ in json.loads(r.body)["headers"]]
            self.assertIn("upgrade", names)
            self.echo(c, b"still TLS")  # the stream is intact


if __name__ == "__main__":
    weirtest.main()
