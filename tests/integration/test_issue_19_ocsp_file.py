#!/usr/bin/env python3
"""Issue 19 point 4 (its ocsp_file part): a DER OCSP response fetched by
another tool (here made by `openssl ocsp` as the CA's responder) is
stapled for clients that ask (`openssl s_client -status`); a client that
does not ask gets none; an invalid file is left out with a warning and
never breaks handshakes."""

import sys
sys.dont_write_bytecode = True

import datetime
import os
import re
import subprocess

import tlstest
import weirtest

INI = """[server]
listen = 127.0.0.1:@PORT@ tls
workers = 1
error_log = stderr

[tls]
cert = @CRT@
key = @KEY@
ocsp_file = @OCSP@

[route ok]
match = prefix:/
return = 200 ok
"""


def openssl(*args):
    return subprocess.run(["openssl"] + list(args), check=True, capture_output=True,
                          timeout=60).stdout.decode()


def make_ocsp_response(tmp, ca, cert):
    """A 'good' OCSP response for cert, signed by the CA itself."""
    serial = openssl("x509", "-in", cert, "-noout", "-serial").strip().split("=")[1]
    end = openssl("x509", "-in", cert, "-noout", "-enddate").strip().split("=", 1)[1]
    expiry = datetime.datetime.strptime(end, "%b %d %H:%M:%S %Y %Z").strftime("%y%m%d%H%M%SZ")
    index = os.path.join(tmp, "index.txt")
    with open(index, "w") as f:
        f.write("V\t%s\t\t%s\tunknown\t/CN=localhost\n" % (expiry, serial))
    req, resp = os.path.join(tmp, "req.der"), os.path.join(tmp, "resp.der")
    openssl("ocsp", "-issuer", ca[0], "-cert", cert, "-reqout", req, "-no_nonce")
    openssl("ocsp", "-index", index, "-rsigner", ca[0], "-rkey", ca[1], "-CA", ca[0],
            "-reqin", req, "-respout", resp, "-ndays", "1")
    return resp


def s_client_status(port):
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-status",
                        "-servername", "localhost"], input=b"", capture_output=True, timeout=30)
    return p.stdout.decode("utf-8", "replace")


class OcspFileTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        ca = tlstest.make_ca(tmp, "ca", "Test CA")
        crt, key = tlstest.make_signed_cert(tmp, "site", "localhost", ca)
        cls.resp = make_ocsp_response(tmp, ca, crt)
        return {"CRT": crt, "KEY": key, "OCSP": cls.resp}

    def test_stapled_when_asked(self):
        out = s_client_status(self.weir.port)
        self.assertIn("OCSP Response Status: successful", out)
        self.assertRegex(out, r"Cert Status: good")
        # a client that does not ask still connects
        r = tlstest.tls_get(self.weir.port, "/")
        self.assertEqual(r.status, 200)

    def test_invalid_file_never_breaks_handshakes(self):
        bad = os.path.join(self.tmp, "bad.der")
        with open(bad, "wb") as f:
            f.write(b"not an OCSP response")
        ini = INI.replace("@OCSP@", bad)
        w = weirtest.Weir(ini, subst={"CRT": os.path.join(self.tmp, "site.crt"),
                                      "KEY": os.path.join(self.tmp, "site.key")},
                          tmpdir=self.tmp)
        try:
            out = s_client_status(w.port)
            self.assertIn("OCSP response: no response sent", out)
            self.assertEqual(tlstest.tls_get(w.port, "/").status, 200)
            self.assertTrue(re.search(r"ocsp_file .*bad\.der: not a DER OCSP response; "
                                      r"not stapled", w.stderr()), w.stderr())
        finally:
            w.stop()


if __name__ == "__main__":
    weirtest.main()
