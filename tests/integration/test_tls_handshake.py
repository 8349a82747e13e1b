#!/usr/bin/env python3
"""TLS handshakes: TLS 1.2 and 1.3 accepted, 1.1 refused, SNI picks each
[tls NAME] certificate (exact and wildcard names; [tls] for no or unknown
SNI), per-section protocols, ECDSA and RSA certificates on one name, ALPN
http/1.1, and session resumption by ticket (off with session_tickets = off)."""

import sys
sys.dont_write_bytecode = True

import ssl
import unittest
import warnings

import tlstest
import weirtest
from weirtest import SERVER

INI = SERVER + """
listen = 127.0.0.1:@TLSPORT@ tls

[tls]
cert = @DEF_EC_CRT@
key = @DEF_EC_KEY@
cert = @DEF_RSA_CRT@
key = @DEF_RSA_KEY@

[tls a]
names = a.test *.wild.test
cert = @A_CRT@
key = @A_KEY@

[tls legacy]
names = legacy.test
protocols = TLSv1.2
cert = @L_CRT@
key = @L_KEY@

[tls noticket]
names = nt.test
session_tickets = off
cert = @NT_CRT@
key = @NT_KEY@

[route ping]
match = exact:/healthz
return = 200 ok

[route scheme]
match = exact:/scheme
redirect = 302 $scheme://$host/x
"""


class TlsHandshakeTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.certs = {
            "def_ec": tlstest.make_cert(tmp, "def_ec", "default.test"),
            "def_rsa": tlstest.make_cert(tmp, "def_rsa", "default.test", kind="rsa"),
            "a": tlstest.make_cert(tmp, "a", "a.test", ["*.wild.test"]),
            "legacy": tlstest.make_cert(tmp, "legacy", "legacy.test"),
            "nt": tlstest.make_cert(tmp, "nt", "nt.test"),
        }
        cls.tls_port = weirtest.free_port()
        c = cls.certs
        return {"TLSPORT": cls.tls_port,
                "DEF_EC_CRT": c["def_ec"][0], "DEF_EC_KEY": c["def_ec"][1],
                "DEF_RSA_CRT": c["def_rsa"][0], "DEF_RSA_KEY": c["def_rsa"][1],
                "A_CRT": c["a"][0], "A_KEY": c["a"][1],
                "L_CRT": c["legacy"][0], "L_KEY": c["legacy"][1],
                "NT_CRT": c["nt"][0], "NT_KEY": c["nt"][1]}

    def der(self, name):
        return tlstest.cert_der(self.certs[name][0])

    def handshake(self, **kw):
        return tlstest.tls_socket(self.tls_port, **kw)

    def test_tls13(self):
        ctx = tlstest.client_context(minimum=ssl.TLSVersion.TLSv1_3)
        with tlstest.tls_client(self.tls_port, ctx=ctx) as c:
            self.assertEqual(c.sock.version(), "TLSv1.3")
            self.assertEqual(c.sock.selected_alpn_protocol(), "http/1.1")
            c.send(weirtest.request_bytes("GET", "/healthz"))
            r = c.read_response()
            self.assertEqual((r.status, r.body), (200, b"ok"))

    def test_tls12(self):
        ctx = tlstest.client_context(maximum=ssl.TLSVersion.TLSv1_2)
        with tlstest.tls_client(self.tls_port, ctx=ctx) as c:
            self.assertEqual(c.sock.version(), "TLSv1.2")
            self.assertEqual(c.sock.selected_alpn_protocol(), "http/1.1")
            c.send(weirtest.request_bytes("GET", "/healthz"))
            self.assertEqual(c.read_response().status, 200)

    def test_tls11_refused(self):
        # SECLEVEL=0 lets the client offer TLS 1.1 at all: the refusal is weir's.
        rc, out = tlstest.s_client(self.tls_port, ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"])
        self.assertNotEqual(rc, 0)
        self.assertIn("alert protocol version", out)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx = tlstest.client_context(minimum=ssl.TLSVersion.TLSv1_1,
                                         maximum=ssl.TLSVersion.TLSv1_1,
                                         ciphers="DEFAULT@SECLEVEL=0")
        with self.assertRaises(ssl.SSLError) as cm:
            self.handshake(ctx=ctx).close()
        self.assertIn("PROTOCOL_VERSION", str(cm.exception))
        self.assertServes()

    def test_alpn_with_s_client(self):
        rc, out = tlstest.s_client(self.tls_port, ["-alpn", "http/1.1", "-ign_eof",
                                                   "-servername", "a.test"],
                                   stdin=b"GET /healthz HTTP/1.1\r\nHost: a.test\r\n"
                                         b"Connection: close\r\n\r\n")
        self.assertIn("ALPN protocol: http/1.1", out)
        self.assertIn("HTTP/1.1 200 OK", out)

    def test_alpn_no_overlap_still_serves(self):
        ctx = tlstest.client_context(alpn=("spdy/3.1",))
        with tlstest.tls_client(self.tls_port, ctx=ctx) as c:
            self.assertIsNone(c.sock.selected_alpn_protocol())
            c.send(weirtest.request_bytes("GET", "/healthz"))
            self.assertEqual(c.read_response().status, 200)

    def test_sni_picks_certificate(self):
        cases = [(None, "def_ec"), ("unknown.test", "def_ec"), ("a.test", "a"),
                 ("A.Test", "a"), ("x.wild.test", "a"), ("wild.test", "def_ec"),
                 ("y.x.wild.test", "def_ec"), ("legacy.test", "legacy"), ("nt.test", "nt")]
        for sni, want in cases:
            with self.subTest(sni=sni):
                s = self.handshake(sni=sni)
                try:
                    self.assertEqual(s.getpeercert(binary_form=True), self.der(want))
                finally:
                    s.close()

    def test_section_protocols(self):
        s = self.handshake(sni="legacy.test")
        try:
            self.assertEqual(s.version(), "TLSv1.2")
        finally:
            s.close()
        ctx = tlstest.client_context(minimum=ssl.TLSVersion.TLSv1_3)
        with self.assertRaises(ssl.SSLError):
            self.handshake(ctx=ctx, sni="legacy.test").close()

    def test_ecdsa_and_rsa_on_one_name(self):
        for cipher, want in [("ECDHE-ECDSA-AES128-GCM-SHA256", "def_ec"),
                             ("ECDHE-RSA-AES128-GCM-SHA256", "def_rsa")]:
            with self.subTest(cipher=cipher):
                ctx = tlstest.client_context(maximum=ssl.TLSVersion.TLSv1_2, ciphers=cipher)
                s = self.handshake(ctx=ctx)
                try:
                    self.assertEqual(s.getpeercert(binary_form=True), self.der(want))
                finally:
                    s.close()

    def resume(self, ctx, sni=None):
        """Two connections, the second offering the first one's session."""
        host = sni or "localhost"
        with tlstest.tls_client(self.tls_port, ctx=ctx, sni=sni) as c:
            c.send(weirtest.request_bytes("GET", "/healthz", host=host))
            self.assertEqual(c.read_response().status, 200)  # TLS 1.3 tickets come after
            session = c.sock.session
            self.assertFalse(c.sock.session_reused)
        with tlstest.tls_client(self.tls_port, ctx=ctx, sni=sni, session=session) as c:
            c.send(weirtest.request_bytes("GET", "/healthz", host=host))
            self.assertEqual(c.read_response().status, 200)
            return c.sock.session_reused

    def test_resumption_tls13(self):
        ctx = tlstest.client_context(minimum=ssl.TLSVersion.TLSv1_3)
        self.assertTrue(self.resume(ctx))
        self.assertTrue(self.resume(ctx, sni="a.test"))

    def test_resumption_tls12(self):
        ctx = tlstest.client_context(maximum=ssl.TLSVersion.TLSv1_2)
        self.assertTrue(self.resume(ctx))

    def test_session_tickets_off(self):
        for ctx in (tlstest.client_context(minimum=ssl.TLSVersion.TLSv1_3),
                    tlstest.client_context(maximum=ssl.TLSVersion.TLSv1_2)):
            self.assertFalse(self.resume(ctx, sni="nt.test"))

    def test_scheme_is_https(self):
        r = tlstest.tls_get(self.tls_port, "/scheme", host="example.org")
        self.assertEqual(r.status, 302)
        self.assertEqual(r.header("Location"), "https://example.org/x")
        r = self.get("/scheme", host="example.org")
        self.assertEqual(r.header("Location"), "http://example.org/x")

    def test_version_flag_names_openssl(self):
        proc = weirtest.run_weir(["-V"])
        self.assertEqual(proc.returncode, 0)
        self.assertIn("OpenSSL 3", proc.stdout)


if __name__ == "__main__":
    weirtest.main()
