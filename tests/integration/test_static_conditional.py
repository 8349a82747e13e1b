#!/usr/bin/env python3
"""Static files: validators (strong ETag from size, mtime ns and inode;
Last-Modified; Accept-Ranges; Cache-Control from expires) and the RFC 9110
§13.2.2 precondition matrix: If-Match / If-Unmodified-Since -> 412,
If-None-Match / If-Modified-Since -> 304 with validators and no body."""

import sys
sys.dont_write_bytecode = True

import email.utils
import os

import weirtest
from weirtest import SERVER

INI = SERVER + """
[route site]
match = prefix:/
root = @ROOT@
expires = 1h
"""

BODY = b"conditional body\n"
MTIME = 1700000000  # Tue, 14 Nov 2023 22:13:20 GMT


def http_date(sec):
    return email.utils.formatdate(sec, usegmt=True)


class StaticConditionalTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        root = os.path.join(tmp, "www")
        os.makedirs(root)
        path = os.path.join(root, "a.txt")
        with open(path, "wb") as f:
            f.write(BODY)
        os.utime(path, ns=(MTIME * 10**9 + 123456789, MTIME * 10**9 + 123456789))
        st = os.stat(path)
        cls.etag = '"%x-%x-%x"' % (st.st_size, st.st_mtime_ns, st.st_ino)
        return {"ROOT": root}

    def test_validators(self):
        r = self.get("/a.txt")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, BODY)
        self.assertEqual(r.header("ETag"), self.etag)
        self.assertEqual(r.header("Last-Modified"), http_date(MTIME))
        self.assertEqual(r.header("Accept-Ranges"), "bytes")
        self.assertEqual(r.header("Cache-Control"), "max-age=3600")
        self.assertIsNone(r.header("Vary"), "Vary only with precompressed = on")

    def check(self, headers, want, method="GET"):
        r = self.get("/a.txt", headers=headers, method=method)
        self.assertEqual(r.status, want, "%s %r" % (method, headers))
        if want == 304:
            self.assertEqual(r.body, b"")
            self.assertIsNone(r.header("Content-Length"))
            self.assertEqual(r.header("ETag"), self.etag)
            self.assertEqual(r.header("Last-Modified"), http_date(MTIME))
            self.assertEqual(r.header("Cache-Control"), "max-age=3600")
        if want == 200 and method == "GET":
            self.assertEqual(r.body, BODY)
        return r

    def test_if_none_match(self):
        self.check([("If-None-Match", self.etag)], 304)
        self.check([("If-None-Match", "W/" + self.etag)], 304)  # weak comparison
        self.check([("If-None-Match", '"x", ' + self.etag)], 304)
        self.check([("If-None-Match", "*")], 304)
        self.check([("If-None-Match", '"other"')], 200)
        self.check([("If-None-Match", self.etag)], 304, method="HEAD")

    def test_if_modified_since(self):
        self.check([("If-Modified-Since", http_date(MTIME))], 304)
        self.check([("If-Modified-Since", http_date(MTIME + 60))], 304)
        self.check([("If-Modified-Since", http_date(MTIME - 1))], 200)
        self.check([("If-Modified-Since", "Tuesday, 14-Nov-23 22:13:20 GMT")], 304)
        self.check([("If-Modified-Since", "Tue Nov 14 22:13:20 2023")], 304)
        self.check([("If-Modified-Since", "not a date")], 200)
        # If-None-Match present: If-Modified-Since is not evaluated.
        self.check([("If-None-Match", '"other"'), ("If-Modified-Since", http_date(MTIME))], 200)

    def test_if_match(self):
        self.check([("If-Match", self.etag)], 200)
        self.check([("If-Match", "*")], 200)
        self.check([("If-Match", '"other"')], 412)
        self.check([("If-Match", "W/" + self.etag)], 412)  # strong comparison

    def test_if_unmodified_since(self):
        self.check([("If-Unmodified-Since", http_date(MTIME))], 200)
        self.check([("If-Unmodified-Since", http_date(MTIME - 1))], 412)
        # If-Match present: If-Unmodified-Since is not evaluated.
        self.check([("If-Match", self.etag), ("If-Unmodified-Since", http_date(MTIME - 1))], 200)

    def test_precedence(self):
        # 412 from If-Match is decided before the 304 of If-None-Match.
        self.check([("If-Match", '"other"'), ("If-None-Match", self.etag)], 412)
        self.check([("If-Unmodified-Since", http_date(MTIME - 1)),
                    ("If-Modified-Since", http_date(MTIME))], 412)
        self.check([("If-Match", self.etag), ("If-None-Match", self.etag)], 304)


if __name__ == "__main__":
    weirtest.main()
