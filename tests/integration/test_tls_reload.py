#!/usr/bin/env python3
"""Certificates on reload (SIGHUP): a new certificate is served to new
connections while an open TLS connection keeps working; a bad new
certificate keeps the old one serving (logged) while the rest of the
reload applies; a new section with a bad certificate refuses the reload.
At start and with -t, certificate and key errors name file:line."""

import sys
sys.dont_write_bytecode = True

import os
import shutil
import signal
import time
import unittest

import tlstest
import weirtest
from weirtest import SERVER, Weir, request_bytes

# Two workers: both must switch certificates, and TSan sees the hand-over.
INI = SERVER.replace("workers = 1", "workers = 2") + """
listen = 127.0.0.1:@TLSPORT@ tls

[tls]
cert = @TMP@/site.crt
key = @TMP@/site.key

[route answer]
match = exact:/answer
return = 200 @ANSWER@
"""

EXTRA = """
[tls extra]
names = extra.test
cert = @TMP@/extra.crt
key = @TMP@/extra.key
"""


def wait_for(pred, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


class TlsReloadTest(unittest.TestCase):
    def setUp(self):
        import tempfile
        self.tmp = tempfile.mkdtemp(prefix="weirt-")
        self.one = tlstest.make_cert(self.tmp, "one", "one.test")
        self.two = tlstest.make_cert(self.tmp, "two", "two.test")
        self.install(self.one)
        self.tls_port = weirtest.free_port()
        self.w = Weir(INI, subst={"TLSPORT": self.tls_port, "ANSWER": "one"}, tmpdir=self.tmp)
        self.addCleanup(self.w.cleanup)
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def install(self, pair, stem="site"):
        shutil.copy(pair[0], os.path.join(self.tmp, stem + ".crt"))
        shutil.copy(pair[1], os.path.join(self.tmp, stem + ".key"))

    def rewrite(self, answer, extra=""):
        text = (INI + extra).replace("@TLSPORT@", str(self.tls_port)).replace(
            "@PORT@", str(self.w.port)).replace("@TMP@", self.tmp).replace("@ANSWER@", answer)
        with open(self.w.ini_path, "w") as f:
            f.write(text)

    def reload(self, marker):
        before = self.w.stderr().count(marker)
        self.w.signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: self.w.stderr().count(marker) > before),
                        "no %r after SIGHUP; stderr:\n%s" % (marker, self.w.stderr()))

    def peer_der(self, sni=None):
        s = tlstest.tls_socket(self.tls_port, sni=sni)
        try:
            return s.getpeercert(binary_form=True)
        finally:
            s.close()

    def assertEventually(self, fn, want):
        """Workers take a published snapshot asynchronously: poll (bounded)."""
        wait_for(lambda: fn() == want, 3.0)
        self.assertEqual(fn(), want)

    def answer(self):
        r = tlstest.tls_get(self.tls_port, "/answer")
        return r.status, r.body

    def test_new_certificate_keeps_open_connection(self):
        self.assertEventually(lambda: self.peer_der(), tlstest.cert_der(self.one[0]))
        with tlstest.tls_client(self.tls_port) as old:
            old.send(request_bytes("GET", "/answer"))
            self.assertEqual(old.read_response().body, b"one")
            self.install(self.two)
            self.rewrite("two")
            self.reload("configuration reloaded")
            self.assertEventually(lambda: self.peer_der(), tlstest.cert_der(self.two[0]))
            self.assertEventually(self.answer, (200, b"two"))
            for _ in range(3):  # the old connection is served, on its old snapshot
                old.send(request_bytes("GET", "/answer"))
                r = old.read_response()
                self.assertEqual((r.status, r.body), (200, b"one"))
            self.assertEqual(old.sock.getpeercert(binary_form=True),
                             tlstest.cert_der(self.one[0]))
        self.w.stop()

    def test_bad_certificate_keeps_old_one(self):
        with open(os.path.join(self.tmp, "site.crt"), "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n")
        self.rewrite("two")
        self.reload("configuration reloaded")
        err = self.w.stderr()
        self.assertIn("keeping the previous certificate", err)
        self.assertIn("weir.ini:", err)
        self.assertIn("[tls] cert", err)
        # Old certificate still served; the rest of the reload applied.
        self.assertEventually(lambda: self.peer_der(), tlstest.cert_der(self.one[0]))
        self.assertEventually(self.answer, (200, b"two"))
        # A later good reload takes the new certificate.
        self.install(self.two)
        self.reload("configuration reloaded")
        self.assertEventually(lambda: self.peer_der(), tlstest.cert_der(self.two[0]))
        self.w.stop()

    def test_key_mismatch_keeps_old_one(self):
        shutil.copy(self.two[1], os.path.join(self.tmp, "site.key"))  # cert one, key two
        self.rewrite("two")
        self.reload("configuration reloaded")
        self.assertIn("[tls] key", self.w.stderr())
        self.assertEventually(lambda: self.peer_der(), tlstest.cert_der(self.one[0]))
        self.assertEventually(self.answer, (200, b"two"))
        self.w.stop()

    def test_new_section_with_bad_certificate_refuses_reload(self):
        self.rewrite("two", EXTRA)  # extra.crt does not exist
        self.reload("reload failed")
        self.assertIn("[tls extra] cert", self.w.stderr())
        self.assertEventually(self.answer, (200, b"one"))
        # With the files in place the same file reloads.
        self.install(self.two, "extra")
        self.reload("configuration reloaded")
        self.assertEventually(lambda: self.peer_der("extra.test"), tlstest.cert_der(self.two[0]))
        self.assertEventually(self.answer, (200, b"two"))
        self.w.stop()


class TlsStartErrorsTest(unittest.TestCase):
    def test_check_and_start_report_file_line(self):
        import tempfile
        tmp = tempfile.mkdtemp(prefix="weirt-")
        self.addCleanup(shutil.rmtree, tmp, True)
        crt, key = tlstest.make_cert(tmp, "c", "c.test")
        port = weirtest.free_port()
        ini = os.path.join(tmp, "weir.ini")
        base = SERVER.replace("@PORT@", str(port)) + "listen = 127.0.0.1:%d tls\n" % (port + 1)
        cases = [
            ("[tls]\ncert = %s\nkey = %s/missing.key\n" % (crt, tmp), ":7: [tls] key: "),
            ("[tls]\ncert = %s/missing.crt\nkey = %s\n" % (tmp, key), ":7: [tls] cert: "),
            ("[tls]\ncert = %s\nkey = %s\nciphers = NOPE-NOTHING\n" % (crt, key),
             ":7: [tls] ciphers: "),
            ("[tls]\ncert = %s\nkey = %s\ncert = %s\nkey = %s\n" % (crt, key, crt, key),
             "a second ECDSA certificate"),
        ]
        for text, want in cases:
            with self.subTest(want=want):
                with open(ini, "w") as f:
                    f.write(base + text)
                proc = weirtest.run_weir(["-t", "-c", ini])
                self.assertEqual(proc.returncode, 1)
                self.assertIn(want, proc.stderr)
                proc = weirtest.run_weir(["-c", ini])
                self.assertEqual(proc.returncode, 1)
                self.assertIn(want, proc.stderr)
        with open(ini, "w") as f:
            f.write(base + "[tls]\ncert = %s\nkey = %s\n" % (crt, key))
        proc = weirtest.run_weir(["-t", "-c", ini])
        self.assertEqual((proc.returncode, proc.stdout.strip()), (0, ini + ": ok"))


if __name__ == "__main__":
    weirtest.main()
