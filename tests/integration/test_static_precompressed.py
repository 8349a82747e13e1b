#!/usr/bin/env python3
"""Static files with precompressed = on: FILE.br / FILE.gz chosen by
Accept-Encoding q-values (q=0 refuses, br wins a tie), sent with
Content-Encoding, Vary: Accept-Encoding (on the identity answer too), an
ETag of its own and the original file's Content-Type."""

import sys
sys.dont_write_bytecode = True

import gzip
import os

import weirtest
from weirtest import SERVER

INI = SERVER + """
[route plain]
match = prefix:/plain/
root = @ROOT@
strip_prefix = /plain

[route site]
match = prefix:/
root = @ROOT@
precompressed = on
"""

JS = b"console.log('hello');\n" * 50
BR = b"fake-brotli-bytes"
GZ = gzip.compress(JS)


class StaticPrecompressedTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        root = os.path.join(tmp, "www")
        os.makedirs(root)
        for name, data in (("app.js", JS), ("app.js.br", BR), ("app.js.gz", GZ),
                           ("only.css", b"a{}"), ("only.css.gz", gzip.compress(b"a{}"))):
            with open(os.path.join(root, name), "wb") as f:
                f.write(data)
        return {"ROOT": root}

    def ae(self, value, target="/app.js"):
        headers = [] if value is None else [("Accept-Encoding", value)]
        return self.get(target, headers=headers)

    def test_br_preferred(self):
        r = self.ae("gzip, deflate, br")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Encoding"), "br")
        self.assertEqual(r.body, BR)
        self.assertEqual(r.header("Content-Type"), "text/javascript; charset=utf-8")
        self.assertEqual(r.header("Vary"), "Accept-Encoding")
        self.assertTrue(r.header("ETag").endswith('-br"'), r.header("ETag"))

    def test_gzip_by_q(self):
        r = self.ae("br;q=0.5, gzip;q=0.9")
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertEqual(gzip.decompress(r.body), JS)
        self.assertTrue(r.header("ETag").endswith('-gz"'))

    def test_q_zero_refuses(self):
        r = self.ae("br;q=0, gzip;q=0")
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.body, JS)
        self.assertEqual(r.header("Vary"), "Accept-Encoding")
        r = self.ae("*;q=0")
        self.assertIsNone(r.header("Content-Encoding"))

    def test_no_accept_encoding_identity(self):
        r = self.ae(None)
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.body, JS)
        self.assertEqual(r.header("Vary"), "Accept-Encoding")

    def test_etags_differ(self):
        tags = {self.ae(v).header("ETag") for v in (None, "br", "gzip")}
        self.assertEqual(len(tags), 3)

    def test_fallback_to_gz(self):
        r = self.ae("br, gzip", "/only.css")
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertEqual(gzip.decompress(r.body), b"a{}")
        self.assertEqual(r.header("Content-Type"), "text/css; charset=utf-8")

    def test_variant_conditional(self):
        tag = self.ae("br").header("ETag")
        r = self.get("/app.js", headers=[("Accept-Encoding", "br"), ("If-None-Match", tag)])
        self.assertEqual(r.status, 304)
        self.assertEqual(r.header("Vary"), "Accept-Encoding")
        r = self.get("/app.js", headers=[("Accept-Encoding", "gzip"), ("If-None-Match", tag)])
        self.assertEqual(r.status, 200)

    def test_off_route_ignores_variants(self):
        r = self.ae("br, gzip", "/plain/app.js")
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertIsNone(r.header("Vary"))
        self.assertEqual(r.body, JS)


if __name__ == "__main__":
    weirtest.main()
