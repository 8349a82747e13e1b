#!/usr/bin/env python3
"""Upstream TLS (tls = on): verification against a test CA given as
tls_ca (200), a backend whose certificate comes from another CA refused
with 502 (and the OpenSSL reason logged), tls_verify = off accepting it, a
certificate for another name refused, SNI as tls_sni or the server's host
name and never an IP literal, ALPN http/1.1, an unreadable tls_ca a config error naming file:line,
pooled TLS connections reused
(200 requests over at most keepalive connections), and sessions resumed
on reconnect (keepalive = 0: every request a new connection)."""

import sys
sys.dont_write_bytecode = True

import json
import time

import tlstest
import weirtest
from weirtest import SERVER
from upstreams import Backend

INI = SERVER + """
[upstream good]
server = localhost:@GOOD@
tls = on
tls_ca = @CA@
tls_sni = backend.test
max_fails = 0

[upstream byname]
server = localhost:@GOOD@
tls = on
tls_ca = @CA@
max_fails = 0

[upstream byip]
server = 127.0.0.1:@GOOD@
tls = on
tls_ca = @CA@
max_fails = 0

[upstream wrongca]
server = 127.0.0.1:@EVIL@
tls = on
tls_ca = @CA@
max_fails = 0

[upstream noverify]
server = 127.0.0.1:@EVIL@
tls = on
tls_verify = off
max_fails = 0

[upstream wrongname]
server = localhost:@GOOD@
tls = on
tls_ca = @CA@
tls_sni = other.test
max_fails = 0

[upstream pool]
server = 127.0.0.1:@POOL@
tls = on
tls_ca = @CA@
keepalive = 4

[upstream resume]
server = 127.0.0.1:@RES@
tls = on
tls_ca = @CA@
tls_sni = backend.test
keepalive = 0
""" + "".join("""
[route %s]
match = prefix:/%s/
proxy = %s
""" % (n, n, n) for n in ("good", "byname", "byip", "wrongca", "noverify", "wrongname", "pool",
                          "resume"))


class UpstreamTlsTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        ca = tlstest.make_ca(tmp, "ca", "weir test CA")
        other_ca = tlstest.make_ca(tmp, "otherca", "another CA")
        good = tlstest.make_signed_cert(tmp, "good", "backend.test", ca, dns=["localhost"],
                                        ips=["127.0.0.1"])
        evil = tlstest.make_signed_cert(tmp, "evil", "backend.test", other_ca,
                                        dns=["localhost"], ips=["127.0.0.1"])
        cls.good = Backend("good", tls=tlstest.server_context(good))
        cls.evil = Backend("evil", tls=tlstest.server_context(evil))
        cls.pool = Backend("pool", tls=tlstest.server_context(good))
        cls.res = Backend("res", tls=tlstest.server_context(good))
        return {"CA": ca[0], "GOOD": cls.good.port, "EVIL": cls.evil.port,
                "POOL": cls.pool.port, "RES": cls.res.port}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        for b in (cls.good, cls.evil, cls.pool, cls.res):
            b.stop()

    def echo(self, prefix):
        r = self.get("/%s/echo" % prefix)
        self.assertEqual(r.status, 200, r.body)
        return json.loads(r.body)

    def test_verified_with_tls_sni(self):
        doc = self.echo("good")
        self.assertEqual(doc["name"], "good")
        self.assertEqual(doc["tls"]["sni"], "backend.test")
        self.assertEqual(doc["tls"]["alpn"], "http/1.1")
        self.assertIn(doc["tls"]["version"], ("TLSv1.2", "TLSv1.3"))

    def test_sni_is_the_host_name(self):
        self.assertEqual(self.echo("byname")["tls"]["sni"], "localhost")

    def test_ip_literal_no_sni_verified_by_ip(self):
        doc = self.echo("byip")
        self.assertIsNone(doc["tls"]["sni"])

    def test_other_ca_refused(self):
        before = self.evil.tls_failures
        r = self.get("/wrongca/echo")
        self.assertEqual(r.status, 502)
        deadline = time.monotonic() + 3
        for _ in range(100):
            # the backend's thread counts its failed handshake in its own time
            if "certificate verify failed" in self.weir.stderr() and \
                    self.evil.tls_failures > before:
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.03)
        self.assertGreater(self.evil.tls_failures, before)
        err = self.weir.stderr()
        self.assertIn("upstream wrongca server 127.0.0.1:%d: TLS handshake: certificate verify "
                      "failed" % self.evil.port, err)

    def test_verify_off_accepts(self):
        doc = self.echo("noverify")
        self.assertEqual(doc["name"], "evil")

    def test_wrong_name_refused(self):
        r = self.get("/wrongname/echo")
        self.assertEqual(r.status, 502)

    def test_pooled(self):
        before = self.pool.n_connections
        with self.client() as c:
            for i in range(100):
                c.send(weirtest.request_bytes("GET", "/pool/echo?i=%d" % i))
                r = c.read_response()
                self.assertEqual(r.status, 200)
        for i in range(100):
            self.assertEqual(self.get("/pool/x%d" % i).status, 200)
        self.assertLessEqual(self.pool.n_connections - before, 4)
        self.assertGreaterEqual(len(self.pool.requests), 200)

    def test_resumed_on_reconnect(self):
        for i in range(5):
            doc = self.echo("resume")
            self.assertEqual(doc["conn"], self.res.n_connections)  # a new one each time
        log = self.res.tls_log[-5:]
        self.assertEqual(len(log), 5)
        self.assertFalse(log[0]["reused"], log)  # the first is a full handshake
        self.assertTrue(all(e["reused"] for e in log[1:]), log)

    def test_bad_ca_is_a_config_error(self):
        """A tls_ca that cannot be read stops weir -t and a start, naming
        file:line; with tls_verify = off it is not read at all."""
        ini = SERVER + "\n[upstream u]\nserver = 127.0.0.1:9\ntls = on\ntls_ca = @TMP@/no-ca.pem\n"
        w = weirtest.Weir(ini, start=False)
        self.addCleanup(w.cleanup)
        proc = weirtest.run_weir(["-t", "-c", w.ini_path])
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("%s:10: [upstream u] tls_ca: %s/no-ca.pem: No such file or directory"
                      % (w.ini_path, w.tmp), proc.stderr)
        w2 = weirtest.Weir(ini.replace("tls = on", "tls = on\ntls_verify = off"), start=False)
        self.addCleanup(w2.cleanup)
        proc = weirtest.run_weir(["-t", "-c", w2.ini_path])
        self.assertEqual(proc.returncode, 0, proc.stderr)


if __name__ == "__main__":
    weirtest.main()
