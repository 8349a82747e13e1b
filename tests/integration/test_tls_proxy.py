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
import ssl
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

[admin]
listen = 127.0.0.1:@ADMIN@

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
        cls.admin_port = weirtest.free_port()
        return {"TLSPORT": cls.tls_port, "CRT": crt, "KEY": key, "B1": cls.backend.addr,
                "ADMIN": cls.admin_port}

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

    def test_forwarded_proto_https(self):
        with tlstest.tls_client(self.tls_port) as c:
            doc = self.echo(c, b"x")
        protos = [v for n, v in doc["headers"] if n == "X-Forwarded-Proto"]
        self.assertEqual(protos, ["https"])
        doc = json.loads(self.get("/echo").body)  # the plain listener
        self.assertEqual([v for n, v in doc["headers"] if n == "X-Forwarded-Proto"], ["http"])

    def tls_counter(self, name):
        with weirtest.Client((weirtest.HOST, self.admin_port)) as c:
            c.send(b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n")
            text = c.read_response().body.decode()
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        self.fail("%s not in /metrics" % name)

    def test_handshakes_and_resumptions_counted(self):
        hs0 = self.tls_counter("weir_tls_handshakes_total")
        res0 = self.tls_counter("weir_tls_resumptions_total")
        ctx = tlstest.client_context(minimum=ssl.TLSVersion.TLSv1_3)
        with tlstest.tls_client(self.tls_port, ctx=ctx) as c:
            c.send(request_bytes("GET", "/echo"))
            self.assertEqual(c.read_response().status, 200)  # tickets come after
            session = c.sock.session
        with tlstest.tls_client(self.tls_port, ctx=ctx, session=session) as c:
            c.send(request_bytes("GET", "/echo"))
            self.assertEqual(c.read_response().status, 200)
            self.assertTrue(c.sock.session_reused)
        self.assertEqual(self.tls_counter("weir_tls_handshakes_total") - hs0, 2)
        self.assertEqual(self.tls_counter("weir_tls_resumptions_total") - res0, 1)

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
