#!/usr/bin/env python3
"""Static files through the open-file cache: a file changed on disk (in
place, same size; or replaced by rename) is served fresh within about a
second, a deleted one turns 404, a new one appears; a 10 MiB file arrives
byte for byte (SHA-256), twice on one connection (the cached descriptor is
shared, offsets are not)."""

import sys
sys.dont_write_bytecode = True

import os
import time

import weirtest
from weirtest import SERVER, request_bytes, write_random_file

INI = SERVER + """
[route site]
match = prefix:/
root = @ROOT@
"""

BIG_SIZE = 10 << 20
REVALIDATE_S = 1.0


class StaticCacheTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.root = os.path.join(tmp, "www")
        os.makedirs(cls.root)
        cls.big = os.path.join(cls.root, "big.bin")
        write_random_file(cls.big, BIG_SIZE)
        cls.big_sha = weirtest.sha256_file(cls.big)
        return {"ROOT": cls.root}

    def write(self, name, data):
        with open(os.path.join(self.root, name), "wb") as f:
            f.write(data)

    def wait_for(self, target, pred, what):
        """Polls target until pred(response); bounded by the revalidation
        interval plus slack."""
        deadline = time.monotonic() + REVALIDATE_S + 2.0
        r = None
        for _ in range(200):
            r = self.get(target)
            if pred(r):
                return time.monotonic()
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.fail("%s: still %r after %.1fs" % (what, r, REVALIDATE_S + 2.0))

    def test_changed_in_place(self):
        self.write("c.txt", b"version-1")
        self.assertEqual(self.get("/c.txt").body, b"version-1")
        path = os.path.join(self.root, "c.txt")
        old_ns = os.stat(path).st_mtime_ns
        self.write("c.txt", b"version-2")  # same size, same inode...
        os.utime(path, ns=(old_ns + 10**9, old_ns + 10**9))  # ...a new mtime, for sure
        self.wait_for("/c.txt", lambda r: r.body == b"version-2", "in-place change")

    def test_replaced_by_rename(self):
        self.write("r.txt", b"old")
        self.assertEqual(self.get("/r.txt").body, b"old")
        self.write("r.txt.tmp", b"brand new")
        os.rename(os.path.join(self.root, "r.txt.tmp"), os.path.join(self.root, "r.txt"))
        self.wait_for("/r.txt", lambda r: r.body == b"brand new", "rename")

    def test_deleted_then_404(self):
        self.write("d.txt", b"here")
        self.assertEqual(self.get("/d.txt").status, 200)
        self.assertEqual(self.get("/d.txt").status, 200)
        t0 = time.monotonic()
        os.unlink(os.path.join(self.root, "d.txt"))
        t1 = self.wait_for("/d.txt", lambda r: r.status == 404, "delete")
        self.assertLess(t1 - t0, REVALIDATE_S + 1.0)

    def test_new_file_appears(self):
        self.assertEqual(self.get("/n.txt").status, 404)
        self.write("n.txt", b"new")
        self.assertEqual(self.get("/n.txt").body, b"new")  # misses are not cached

    def test_big_file_sha256_twice(self):
        import hashlib
        with self.client(timeout=30) as c:
            c.send(request_bytes("GET", "/big.bin") + request_bytes("GET", "/big.bin"))
            for _ in range(2):
                r = c.read_response(timeout=30)
                self.assertEqual(r.status, 200)
                self.assertEqual(len(r.body), BIG_SIZE)
                self.assertEqual(hashlib.sha256(r.body).hexdigest(), self.big_sha)


if __name__ == "__main__":
    weirtest.main()
