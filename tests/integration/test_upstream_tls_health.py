#!/usr/bin/env python3
"""Active health checks over TLS: with tls = on the checker sends its
request over TLS with the upstream's verification, so a server whose
certificate comes from another CA is taken out (logged with OpenSSL's
reason) while the good one is probed over TLS and stays in; requests then
all go to the good server."""

import sys
sys.dont_write_bytecode = True

import time

import tlstest
import weirtest
from weirtest import SERVER
from upstreams import Backend

INI = SERVER + """
[upstream app]
server = 127.0.0.1:@GOOD@
server = 127.0.0.1:@EVIL@
tls = on
tls_ca = @CA@
health_check = GET /healthz
health_interval = 100ms
health_timeout = 1s
max_fails = 0

[route app]
match = prefix:/
proxy = app
"""


def wait_until(pred, seconds=5.0):
    deadline = time.monotonic() + seconds
    for _ in range(1000):
        if pred():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return False


class UpstreamTlsHealthTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        ca = tlstest.make_ca(tmp, "ca", "weir test CA")
        other_ca = tlstest.make_ca(tmp, "otherca", "another CA")
        good = tlstest.make_signed_cert(tmp, "good", "backend.test", ca, ips=["127.0.0.1"])
        evil = tlstest.make_signed_cert(tmp, "evil", "backend.test", other_ca, ips=["127.0.0.1"])
        cls.good = Backend("good", tls=tlstest.server_context(good))
        cls.evil = Backend("evil", tls=tlstest.server_context(evil))
        return {"CA": ca[0], "GOOD": cls.good.port, "EVIL": cls.evil.port}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.good.stop()
        cls.evil.stop()

    def test_wrong_certificate_taken_out(self):
        out = ("upstream app: server 127.0.0.1:%d failed its health check (TLS: certificate "
               "verify failed" % self.evil.port)
        self.assertTrue(wait_until(lambda: out in self.weir.stderr()), self.weir.stderr())
        # The good one answered its probes over TLS, with the checker's request.
        self.assertTrue(wait_until(lambda: any(
            r.target == "/healthz" and r.header("User-Agent") == "weir-health"
            for r in list(self.good.requests))))
        self.assertTrue(self.good.tls_log)
        self.assertGreater(self.evil.tls_failures, 0)
        self.assertNotIn("server 127.0.0.1:%d failed" % self.good.port, self.weir.stderr())
        for i in range(20):
            r = self.get("/x%d" % i)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("X-Served-By"), "good")


if __name__ == "__main__":
    weirtest.main()
