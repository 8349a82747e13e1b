#!/usr/bin/env python3
"""Issue 19 point 4: with `[tls] ocsp_stapling = on`, weir fetches the OCSP
response for its certificate from the responder the certificate's AIA
names (`openssl ocsp` here), verifies it against the issuer, and staples
it (`openssl s_client -status` sees "Cert Status: good"); a reload keeps
it without fetching again, even with the responder gone; a response
signed by a key the issuer never certified is not stapled and handshakes
go on, one signed by a responder the issuer certified is; revoked is
stapled and logged; each of two certificates gets its own response; a
certificate without a responder URL is warned about at load; ocsp_file
wins over fetching."""

import sys
sys.dont_write_bytecode = True

import os
import signal
import time

import ocsptest
import polling
import tlstest
import weirtest

INI = ocsptest.STAPLING_INI


class ResponderCase(weirtest.WeirCase):
    """weir with one certificate of a test CA whose AIA URL names an
    `openssl ocsp` responder the class starts (signed by signer(), the CA
    when None; certificate status STATUS) and stops after weir."""
    INI = INI
    STATUS = "V"

    @classmethod
    def signer(cls, tmp, ca):
        return None

    @classmethod
    def make_subst(cls, tmp):
        cls.ca = tlstest.make_ca(tmp, "ca", "Test CA")
        cls.ocsp_port = weirtest.free_port()
        chain, key, leaf = ocsptest.make_leaf(tmp, "site", cls.ca,
                                              "http://127.0.0.1:%d/" % cls.ocsp_port)
        cls.responder = ocsptest.Responder(tmp, cls.ocsp_port, cls.ca,
                                           ocsptest.write_index(tmp, leaf, cls.STATUS),
                                           signer=cls.signer(tmp, cls.ca)).start()
        cls.admin = weirtest.free_port()
        return {"CRT": chain, "KEY": key, "ADMIN": cls.admin}

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.responder.stop()


class OcspStaplingTest(ResponderCase):

    def test_1_stapled_then_kept_across_reload(self):
        ocsptest.wait_stapled(self.weir.port)
        self.assertEqual(tlstest.tls_get(self.weir.port, "/").status, 200)
        self.assertGreaterEqual(ocsptest.fetches(self.admin, "good"), 1)
        polling.wait_log(self.weir, r"OCSP \[tls\]: response from http://127\.0\.0\.1:\d+/ "
                                    r"stapled \(status good")
        # The responder goes; a reload keeps the response and fetches nothing.
        self.responder.stop()
        good, errors = ocsptest.fetches(self.admin, "good"), ocsptest.fetches(self.admin, "error")
        self.weir.signal(signal.SIGHUP)
        polling.wait_log(self.weir, r"configuration reloaded")
        self.assertTrue(ocsptest.is_stapled_good(self.weir.port),
                        ocsptest.s_client_status(self.weir.port))
        self.assertEqual(ocsptest.fetches(self.admin, "good"), good)
        self.assertEqual(ocsptest.fetches(self.admin, "error"), errors)
        self.assertEqual(polling.metric(self.admin, "weir_ocsp_stapled_certificates"), 1)
        # openssl ocsp -ndays 1: the response's nextUpdate is a day away
        next_update = polling.metric(self.admin, "weir_ocsp_next_update_seconds")
        self.assertLess(abs(next_update - time.time() - 86400), 600)


class WrongSignerTest(ResponderCase):
    """The responder signs with a key of its own, not certified by the CA."""

    @classmethod
    def signer(cls, tmp, ca):
        return tlstest.make_ca(tmp, "rogue", "Rogue Responder")

    def test_not_stapled(self):
        polling.wait_log(self.weir, r"OCSP \[tls\]: fetching from .* failed: invalid response: "
                                    r"signature not from the issuer", timeout=20)
        self.assertEqual(ocsptest.fetches(self.admin, "invalid"), 1)
        self.assertEqual(ocsptest.fetches(self.admin, "good"), 0)
        out = ocsptest.s_client_status(self.weir.port)
        self.assertIn("OCSP response: no response sent", out)
        self.assertEqual(tlstest.tls_get(self.weir.port, "/").status, 200)


class DelegatedResponderTest(ResponderCase):
    """RFC 6960 §4.2.2.2: a responder certificate the CA issued for OCSP
    signing (id-kp-OCSPSigning) signs; its response is stapled."""

    @classmethod
    def signer(cls, tmp, ca):
        return tlstest.make_signed_cert(tmp, "responder", "OCSP Responder", ca,
                                        eku="OCSPSigning")

    def test_stapled(self):
        ocsptest.wait_stapled(self.weir.port)
        self.assertIn("Responder Id: CN = OCSP Responder",
                      ocsptest.s_client_status(self.weir.port))


class NoResponderUrlTest(weirtest.WeirCase):
    """A certificate without an AIA responder URL: one warning at load,
    nothing fetched, handshakes as usual."""
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        ca = tlstest.make_ca(tmp, "ca", "Test CA")
        chain, key, _ = ocsptest.make_leaf(tmp, "site", ca, None)
        cls.admin = weirtest.free_port()
        return {"CRT": chain, "KEY": key, "ADMIN": cls.admin}

    def test_warned_not_fetched(self):
        polling.wait_log(self.weir, r"OCSP \[tls\] cert 1: ocsp_stapling is on but the "
                                    r"certificate names no OCSP responder")
        out = ocsptest.s_client_status(self.weir.port)
        self.assertIn("OCSP response: no response sent", out)
        for result in ("good", "error", "invalid"):
            self.assertEqual(ocsptest.fetches(self.admin, result), 0)


class RevokedTest(ResponderCase):
    """The CA says revoked: stapled all the same (clients refuse the
    certificate, as the CA wants), and logged as an error."""
    STATUS = "R"

    def test_revoked_stapled_and_logged(self):
        polling.wait_log(self.weir, r"\[error\] main: OCSP \[tls\]: the CA says this "
                                    r"certificate is REVOKED", timeout=20)
        self.assertIn("Cert Status: revoked", ocsptest.s_client_status(self.weir.port))
        self.assertEqual(ocsptest.fetches(self.admin, "revoked"), 1)


class TwoCertificatesTest(ResponderCase):
    """An ECDSA and an RSA certificate in one section: each handshake gets
    the response for the certificate it chose."""
    INI = INI.replace("key = @KEY@", "key = @KEY@\ncert = @CRT2@\nkey = @KEY2@")

    @classmethod
    def make_subst(cls, tmp):
        ca = tlstest.make_ca(tmp, "ca", "Test CA")
        cls.ocsp_port = weirtest.free_port()
        url = "http://127.0.0.1:%d/" % cls.ocsp_port
        chain, key, cls.ec_leaf = ocsptest.make_leaf(tmp, "ec", ca, url)
        chain2, key2, cls.rsa_leaf = ocsptest.make_leaf(tmp, "rsa", ca, url, kind="rsa")
        index = ocsptest.write_index(tmp, [cls.ec_leaf, cls.rsa_leaf])
        cls.responder = ocsptest.Responder(tmp, cls.ocsp_port, ca, index).start()
        cls.admin = weirtest.free_port()
        return {"CRT": chain, "KEY": key, "CRT2": chain2, "KEY2": key2, "ADMIN": cls.admin}


    def test_each_certificate_its_own_response(self):
        polling.wait_until(lambda: polling.metric(self.admin, "weir_ocsp_stapled_certificates")
                           == 2, "two stapled certificates", timeout=20)
        for sigalgs, leaf in (("ECDSA+SHA256", self.ec_leaf), ("RSA-PSS+SHA256", self.rsa_leaf)):
            out = ocsptest.s_client_status(self.weir.port, ["-sigalgs", sigalgs])
            self.assertIn("Cert Status: good", out)
            self.assertIn("Serial Number: %s" % ocsptest.serial_of(leaf), out)


class OcspFileWinsTest(weirtest.WeirCase):
    """With ocsp_file too, the file is stapled and nothing is fetched."""
    INI = INI.replace("ocsp_stapling = on", "ocsp_stapling = on\nocsp_file = @OCSP@")

    @classmethod
    def make_subst(cls, tmp):
        ca = tlstest.make_ca(tmp, "ca", "Test CA")
        port = weirtest.free_port()  # nobody answers there
        chain, key, leaf = ocsptest.make_leaf(tmp, "site", ca, "http://127.0.0.1:%d/" % port)
        index = ocsptest.write_index(tmp, leaf)
        req, resp = os.path.join(tmp, "req.der"), os.path.join(tmp, "resp.der")
        ocsptest.openssl("ocsp", "-issuer", ca[0], "-cert", leaf, "-reqout", req, "-no_nonce")
        ocsptest.openssl("ocsp", "-index", index, "-rsigner", ca[0], "-rkey", ca[1],
                         "-CA", ca[0], "-reqin", req, "-respout", resp, "-ndays", "1")
        cls.admin = weirtest.free_port()
        return {"CRT": chain, "KEY": key, "ADMIN": cls.admin, "OCSP": resp}

    def test_file_stapled_nothing_fetched(self):
        self.assertTrue(ocsptest.is_stapled_good(self.weir.port))
        self.assertEqual(ocsptest.fetches(self.admin, "error"), 0)
        self.assertEqual(polling.count_log(self.weir, r"OCSP"), 0, self.weir.stderr())


if __name__ == "__main__":
    weirtest.main()
