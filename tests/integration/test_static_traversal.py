#!/usr/bin/env python3
"""Static files: no request leaves root. Dot-segments, encoded dots and
slashes, NUL, backslashes, double encoding; a symlink to /etc is 404 with
follow_symlinks = off and followed with follow_symlinks = on."""

import sys
sys.dont_write_bytecode = True

import os

import weirtest
from weirtest import SERVER

INI = SERVER + """
[route open]
match = prefix:/follow/
root = @ROOT@
strip_prefix = /follow
follow_symlinks = on

[route site]
match = prefix:/
root = @ROOT@
"""

ATTEMPTS = [
    "/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E/secret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt", "/..%2fsecret.txt", "/%2e%2e%2fsecret.txt",
    "/sub%2f..%2f..%2fsecret.txt", "/secret.txt%00", "/%00", "/sub/%00/../x",
    "/..%5csecret.txt", "/..\\secret.txt", "/%5c..%5csecret.txt",
    "/%252e%252e/secret.txt", "/%252e%252e%252fsecret.txt", "/sub/%252e%252e/%252e%252e/secret.txt",
    "/etc/passwd", "/etclink/passwd", "/etclink/hostname", "/outlink",
]


class StaticTraversalTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        root = os.path.join(tmp, "www")
        os.makedirs(os.path.join(root, "sub"))
        with open(os.path.join(root, "ok.txt"), "wb") as f:
            f.write(b"ok")
        with open(os.path.join(tmp, "secret.txt"), "wb") as f:
            f.write(b"secret\n")
        os.symlink("/etc", os.path.join(root, "etclink"))
        os.symlink(os.path.join(tmp, "secret.txt"), os.path.join(root, "outlink"))
        os.symlink("ok.txt", os.path.join(root, "inlink"))
        return {"ROOT": root}

    def test_attempts_refused(self):
        for target in ATTEMPTS:
            r = self.get(target)
            self.assertIn(r.status, (400, 403, 404), target)
            self.assertNotIn(b"secret", r.body, target)
            self.assertNotIn(b"root:", r.body, target)

    def test_symlink_inside_root_allowed(self):
        self.assertEqual(self.get("/inlink").body, b"ok")

    def test_follow_symlinks_on(self):
        r = self.get("/follow/outlink")
        self.assertEqual((r.status, r.body), (200, b"secret\n"))
        if os.path.exists("/etc/hostname"):
            r = self.get("/follow/etclink/hostname")
            self.assertEqual(r.status, 200)
            with open("/etc/hostname", "rb") as f:
                self.assertEqual(r.body, f.read())

    def test_still_serving(self):
        self.assertServes("/ok.txt", body=b"ok")


if __name__ == "__main__":
    weirtest.main()
