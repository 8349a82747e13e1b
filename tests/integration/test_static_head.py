#!/usr/bin/env python3
"""Static files: HEAD sends the GET's head (length, type, validators) and no
body, on a kept-alive connection; other methods get 405 with Allow."""

import sys
sys.dont_write_bytecode = True

import os

import weirtest
from weirtest import SERVER, request_bytes

INI = SERVER + """
[route site]
match = prefix:/
root = @ROOT@
"""

BODY = b"x" * 5000


class StaticHeadTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        root = os.path.join(tmp, "www")
        os.makedirs(root)
        with open(os.path.join(root, "f.html"), "wb") as f:
            f.write(BODY)
        return {"ROOT": root}

    def test_head_headers_only(self):
        with self.client() as c:
            c.send(request_bytes("HEAD", "/f.html") + request_bytes("GET", "/f.html"))
            h = c.read_response("HEAD")
            g = c.read_response()
        self.assertEqual(h.status, 200)
        self.assertEqual(h.body, b"")
        self.assertEqual(h.header("Content-Length"), str(len(BODY)))
        self.assertEqual(h.header("Content-Type"), "text/html; charset=utf-8")
        self.assertEqual(h.header("ETag"), g.header("ETag"))
        self.assertEqual(h.header("Last-Modified"), g.header("Last-Modified"))
        self.assertEqual(h.header("Accept-Ranges"), "bytes")
        self.assertEqual(g.body, BODY)

    def test_head_ignores_range(self):
        r = self.get("/f.html", method="HEAD", headers=[("Range", "bytes=0-9")])
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Length"), str(len(BODY)))

    def test_other_methods_405(self):
        for m in ("POST", "PUT", "DELETE", "OPTIONS"):
            r = self.get("/f.html", method=m)
            self.assertEqual(r.status, 405, m)
            self.assertEqual(r.header("Allow"), "GET, HEAD", m)


if __name__ == "__main__":
    weirtest.main()
