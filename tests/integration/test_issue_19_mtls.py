#!/usr/bin/env python3
"""Issue 19 point 5: client certificates (mTLS). [tls] client_ca,
verify_client = optional on the default section, on for [tls strict]
(chosen by SNI); per route require_client_cert; $ssl_client_s_dn,
$ssl_client_fingerprint and $ssl_client_verify forwarded with set_header,
a client's own copy of such a header replaced."""

import sys
sys.dont_write_bytecode = True

import hashlib
import json
import os
import ssl
import subprocess

import tlstest
import upstreams
import weirtest

INI = """[server]
listen = 127.0.0.1:@PORT@ tls
workers = 1
error_log = stderr

[tls]
cert = @CRT@
key = @KEY@
client_ca = @CA@
verify_client = optional

[tls strict]
names = strict.test
cert = @CRT@
key = @KEY@
verify_client = on

[tls deep]
names = deep.test
cert = @CRT@
key = @KEY@
verify_client = on
verify_depth = 2

[upstream app]
server = @APP@

[route api]
match = prefix:/api/
strip_prefix = /api
proxy = app
set_header = X-Client-Cert-Subject: $ssl_client_s_dn
set_header = X-Client-Cert-Verify: $ssl_client_verify
set_header = X-Client-Cert-Fingerprint: $ssl_client_fingerprint

[route members]
match = prefix:/members/
require_client_cert = on
return = 200 members

[route open]
match = prefix:/
return = 200 open
"""


def make_intermediate(tmp, stem, ca):
    """An intermediate CA signed by ca. Returns (cert_path, key_path)."""
    crt, key, csr = (os.path.join(tmp, stem + e) for e in (".crt", ".key", ".csr"))
    ext = os.path.join(tmp, stem + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
    for argv in (["req", "-new", "-nodes", "-subj", "/CN=" + stem, "-newkey", "ec",
                  "-pkeyopt", "ec_paramgen_curve:P-256", "-keyout", key, "-out", csr],
                 ["x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
                  "-days", "2", "-extfile", ext, "-out", crt]):
        subprocess.run(["openssl"] + argv, check=True, capture_output=True, timeout=60)
    return crt, key


class MtlsTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.app = upstreams.Backend("app", keep_body=False)
        ca = tlstest.make_ca(tmp, "ca", "Test Client CA")
        other = tlstest.make_ca(tmp, "other", "Other CA")
        crt, key = tlstest.make_signed_cert(tmp, "site", "localhost", ca,
                                            dns=("strict.test", "deep.test"))
        cls.client = tlstest.make_signed_cert(tmp, "ann", "ann", ca, eku="clientAuth")
        # bob's certificate is two intermediate CAs away from the CA
        inter1 = make_intermediate(tmp, "inter1", ca)
        inter2 = make_intermediate(tmp, "inter2", inter1)
        bob = tlstest.make_signed_cert(tmp, "bob", "bob", inter2, eku="clientAuth")
        chain = os.path.join(tmp, "bob-chain.crt")
        with open(chain, "w") as f:
            for part in (bob[0], inter2[0], inter1[0]):
                with open(part) as g:
                    f.write(g.read())
        cls.chained = (chain, bob[1])
        cls.stranger = tlstest.make_signed_cert(tmp, "eve", "eve", other, eku="clientAuth")
        return {"APP": cls.app.addr, "CRT": crt, "KEY": key, "CA": ca[0]}

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.app.stop()

    def ctx(self, cert=None):
        c = tlstest.client_context()
        if cert:
            c.load_cert_chain(cert[0], cert[1])
        return c

    def get(self, target, cert=None, sni=None, headers=()):
        return tlstest.tls_get(self.weir.port, target, host=sni or "localhost",
                               ctx=self.ctx(cert), sni=sni, headers=headers)

    def test_optional_without_certificate(self):
        self.assertEqual(self.get("/open").status, 200)
        self.assertEqual(self.get("/members/x").status, 403)
        r = self.get("/api/echo", headers=[("X-Client-Cert-Subject", "CN=forged")])
        headers = dict((k.lower(), v) for k, v in json.loads(r.body)["headers"])
        self.assertEqual(headers["x-client-cert-verify"], "NONE")
        self.assertEqual(headers.get("x-client-cert-subject", ""), "")  # the forged one dropped

    def test_with_certificate(self):
        self.assertEqual(self.get("/members/x", cert=self.client).status, 200)
        r = self.get("/api/echo", cert=self.client,
                     headers=[("X-Client-Cert-Subject", "CN=forged")])
        headers = json.loads(r.body)["headers"]
        subjects = [v for k, v in headers if k.lower() == "x-client-cert-subject"]
        self.assertEqual(subjects, ["CN=ann"])
        got = dict((k.lower(), v) for k, v in headers)
        self.assertEqual(got["x-client-cert-verify"], "SUCCESS")
        with open(self.client[0]) as f:
            der = ssl.PEM_cert_to_DER_cert(f.read())
        self.assertEqual(got["x-client-cert-fingerprint"], hashlib.sha256(der).hexdigest())

    def assertRefused(self, **kw):
        """The handshake (or, TLS 1.3, the first read after it) fails."""
        try:
            r = self.get("/open", **kw)
        except (ssl.SSLError, OSError, EOFError, AssertionError):
            return
        self.fail("answered %d" % r.status)

    def test_untrusted_certificate_refused(self):
        self.assertRefused(cert=self.stranger)
        self.assertEqual(self.get("/open").status, 200)  # still serving

    def test_verify_depth(self):
        # [tls] verify_depth = 1: one intermediate CA at most; bob's has two
        self.assertRefused(cert=self.chained)
        # [tls deep] verify_depth = 2 takes it
        r = self.get("/members/x", cert=self.chained, sni="deep.test")
        self.assertEqual(r.status, 200)

    def test_required_by_sni_section(self):
        self.assertRefused(sni="strict.test")
        r = self.get("/open", cert=self.client, sni="strict.test")
        self.assertEqual(r.status, 200)


if __name__ == "__main__":
    weirtest.main()
