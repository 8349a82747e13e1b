#!/usr/bin/env python3
"""Bad input on a TLS port costs only that connection: garbage, plain HTTP
(answered 400 in clear text), a truncated handshake, a silent client
(handshake_timeout); a good client is served right after each, and the
failures are logged at debug level."""

import sys
sys.dont_write_bytecode = True

import os
import socket
import ssl
import time
import unittest

import tlstest
import weirtest
from weirtest import HOST, SERVER, Client

INI = SERVER + """
listen = 127.0.0.1:@TLSPORT@ tls
log_level = debug

[tls]
cert = @CRT@
key = @KEY@
handshake_timeout = 1s

[route ping]
match = exact:/healthz
return = 200 ok
"""


def client_hello(sni="localhost"):
    """The bytes of a real ClientHello (what a client sends first)."""
    ctx = tlstest.client_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


class TlsBadInputTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        crt, key = tlstest.make_cert(tmp, "d", "localhost")
        cls.tls_port = weirtest.free_port()
        return {"TLSPORT": cls.tls_port, "CRT": crt, "KEY": key}

    def raw(self):
        return Client((HOST, self.tls_port), timeout=5.0)

    def assertGoodClientServed(self):
        r = tlstest.tls_get(self.tls_port, "/healthz")
        self.assertEqual((r.status, r.body), (200, b"ok"))

    def test_garbage_then_good_client(self):
        for junk in (b"\x00" * 64, os.urandom(512), b"\x16\x03\x01\xff\xff" + b"A" * 100,
                     b"\x16\x03\x01\x00\x05hello"):
            with self.subTest(junk=junk[:8]):
                with self.raw() as c:
                    c.send(junk)
                    self.assertClosedByWeir(c, timeout=3.0)
                self.assertGoodClientServed()
        self.assertIn("TLS handshake failed", self.weir.stderr())

    def test_plain_http_gets_400(self):
        with self.raw() as c:
            c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 400)
            self.assertIn(b"HTTPS", r.body)
            self.assertEqual(r.header("Connection"), "close")
            self.assertClosedByWeir(c)
        self.assertGoodClientServed()

    def test_truncated_handshake_then_close(self):
        hello = client_hello()
        with self.raw() as c:
            c.send(hello[:len(hello) // 2])
            c.sock.shutdown(socket.SHUT_WR)
            self.assertClosedByWeir(c, timeout=3.0)
        self.assertGoodClientServed()

    def test_truncated_handshake_times_out(self):
        hello = client_hello()
        with self.raw() as c:
            c.send(hello[:20])
            start = time.monotonic()
            how, _, _ = self.assertClosedByWeir(c, timeout=5.0)
            self.assertLess(time.monotonic() - start, 4.0)
        self.assertGoodClientServed()

    def test_silent_client_times_out(self):
        with self.raw() as c:
            start = time.monotonic()
            self.assertClosedByWeir(c, timeout=5.0)
            elapsed = time.monotonic() - start
        self.assertGreater(elapsed, 0.7)
        self.assertLess(elapsed, 4.0)

    def test_many_bad_clients(self):
        socks = []
        try:
            for i in range(30):
                c = self.raw()
                socks.append(c)
                c.send(b"\x16\x03\x03" if i % 2 else b"PRI * HTTP/2.0\r\n\r\n")
            self.assertGoodClientServed()
        finally:
            for c in socks:
                c.close()
        self.assertGoodClientServed()
        self.assertServes()

    def test_client_closes_mid_response(self):
        with tlstest.tls_client(self.tls_port) as c:
            c.send(weirtest.request_bytes("GET", "/healthz") * 50)
        self.assertGoodClientServed()


if __name__ == "__main__":
    weirtest.main()
