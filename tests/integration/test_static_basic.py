#!/usr/bin/env python3
"""Static files (the core subset): index, Content-Type, 404, a 5 MB file
byte for byte, HEAD, directory redirect with the query kept, no way out of
the root."""

import sys
sys.dont_write_bytecode = True

import hashlib
import os
import urllib.parse

import weirtest
from weirtest import SERVER, request_bytes, write_random_file

INI = SERVER + """
[route ping]
match = exact:/healthz
return = 200 ok

[route site]
match = prefix:/
root = @ROOT@
"""

INDEX = b"<!doctype html><title>weir</title><p>hello</p>\n"
SUB_INDEX = b"<!doctype html><p>sub</p>\n"
CSS = b"body { color: #333; }\n"
BIG_SIZE = 5 << 20


class StaticBasicTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        root = os.path.join(tmp, "www")
        os.makedirs(os.path.join(root, "sub"))
        with open(os.path.join(root, "index.html"), "wb") as f:
            f.write(INDEX)
        with open(os.path.join(root, "style.css"), "wb") as f:
            f.write(CSS)
        with open(os.path.join(root, "sub", "index.html"), "wb") as f:
            f.write(SUB_INDEX)
        with open(os.path.join(root, "empty.txt"), "wb"):
            pass
        cls.big = os.path.join(root, "big.bin")
        write_random_file(cls.big, BIG_SIZE)
        cls.big_sha = weirtest.sha256_file(cls.big)
        # Something outside the root that must never be served.
        with open(os.path.join(tmp, "secret.txt"), "wb") as f:
            f.write(b"secret\n")
        return {"ROOT": root}

    def test_index(self):
        r = self.get("/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, INDEX)
        self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
        self.assertEqual(r.header("Content-Length"), str(len(INDEX)))

    def test_index_by_name(self):
        r = self.get("/index.html")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, INDEX)

    def test_css(self):
        r = self.get("/style.css")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, CSS)
        self.assertEqual((r.header("Content-Type") or "").split(";")[0].strip(), "text/css")

    def test_empty_file(self):
        r = self.get("/empty.txt")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Length"), "0")
        self.assertEqual(r.body, b"")

    def test_missing_404(self):
        r = self.get("/nope.html")
        self.assertEqual(r.status, 404)
        r = self.get("/sub/nope/deeper.css")
        self.assertEqual(r.status, 404)

    def test_return_route_before_static(self):
        self.assertEqual(self.get("/healthz").body, b"ok")

    def test_big_file_sha256(self):
        with self.client(timeout=20) as c:
            c.send(request_bytes("GET", "/big.bin"))
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("Content-Length"), str(BIG_SIZE))
            self.assertEqual(len(r.body), BIG_SIZE)
            self.assertEqual(hashlib.sha256(r.body).hexdigest(), self.big_sha)
            # The connection is reusable after a big body.
            c.send(request_bytes("GET", "/style.css"))
            self.assertEqual(c.read_response().body, CSS)

    def test_head_no_body(self):
        with self.client() as c:
            c.send(request_bytes("HEAD", "/big.bin") + request_bytes("GET", "/style.css"))
            h = c.read_response("HEAD")
            g = c.read_response()
        self.assertEqual(h.status, 200)
        self.assertEqual(h.header("Content-Length"), str(BIG_SIZE))
        self.assertEqual(g.status, 200)
        self.assertEqual(g.body, CSS, "HEAD must not send the file")

    def check_dir_redirect(self, target, want):
        r = self.get(target, host="site.test")
        self.assertEqual(r.status, 301, target)
        loc = r.header("Location")
        self.assertIsNotNone(loc)
        parts = urllib.parse.urlsplit(loc)
        if parts.netloc:
            self.assertEqual(parts.netloc, "site.test", loc)
        got = parts.path + ("?" + parts.query if parts.query else "")
        self.assertEqual(got, want, "Location %r" % loc)

    def test_directory_redirect(self):
        self.check_dir_redirect("/sub", "/sub/")

    def test_directory_redirect_keeps_query(self):
        self.check_dir_redirect("/sub?x=1&y=2", "/sub/?x=1&y=2")

    def test_directory_with_slash(self):
        r = self.get("/sub/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, SUB_INDEX)
        self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")

    def test_dot_segments_resolved_inside_root(self):
        r = self.get("/sub/../style.css")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, CSS)

    def test_no_escape_from_root(self):
        for target in ("/../secret.txt", "/%2e%2e/secret.txt", "/sub/../../secret.txt",
                       "/..%2fsecret.txt", "/%2e%2e%2fsecret.txt"):
            r = self.get(target)
            self.assertIn(r.status, (400, 403, 404), target)
            self.assertNotIn(b"secret", r.body, target)

    def test_percent_encoded_name(self):
        r = self.get("/style%2Ecss")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, CSS)


if __name__ == "__main__":
    weirtest.main()
