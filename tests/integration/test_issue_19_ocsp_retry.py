#!/usr/bin/env python3
"""Issue 19 point 4: with the OCSP responder down when weir starts,
handshakes work and nothing is stapled (one warning); once the responder
is up, the retry (1 minute after the first failure) fetches and staples
the response, and the recovery is logged once. The responder URL is a
name here (localhost), looked up with evdns on main's loop."""

import sys
sys.dont_write_bytecode = True

import ocsptest
import polling
import tlstest
import weirtest

INI = ocsptest.STAPLING_INI.replace("workers = 2", "workers = 1")

RETRY_S = 60  # the first retry delay (ocsp.h WR_OCSP_RETRY_MIN_S)


class OcspRetryTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.ca = tlstest.make_ca(tmp, "ca", "Test CA")
        cls.ocsp_port = weirtest.free_port()
        chain, key, leaf = ocsptest.make_leaf(tmp, "site", cls.ca,
                                              "http://localhost:%d/ocsp" % cls.ocsp_port)
        cls.responder = ocsptest.Responder(tmp, cls.ocsp_port, cls.ca,
                                           ocsptest.write_index(tmp, leaf))
        cls.admin = weirtest.free_port()
        return {"CRT": chain, "KEY": key, "ADMIN": cls.admin}

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.responder.stop()

    def test_staple_appears_once_the_responder_is_up(self):
        polling.wait_log(self.weir, r"\[warn\] main: OCSP \[tls\]: fetching from "
                                    r"http://localhost:\d+/ocsp failed: connect: .*nothing "
                                    r"stapled; next try in 60 s")
        self.assertIn("OCSP response: no response sent", ocsptest.s_client_status(self.weir.port))
        self.assertEqual(tlstest.tls_get(self.weir.port, "/").status, 200)
        self.assertGreaterEqual(ocsptest.fetches(self.admin, "error"), 1)
        self.responder.start()
        # The metric is cheaper to poll for a minute than a handshake.
        polling.wait_until(lambda: ocsptest.fetches(self.admin, "good") == 1,
                           "a good fetch", timeout=RETRY_S + 30)
        ocsptest.wait_stapled(self.weir.port)
        self.assertEqual(polling.count_log(self.weir, r"OCSP \[tls\]: fetching .* failed"), 1,
                         self.weir.stderr())
        polling.wait_log(self.weir, r"\[info\] main: OCSP \[tls\]: response from "
                                    r"http://localhost:\d+/ocsp stapled")


if __name__ == "__main__":
    weirtest.main()
