#!/usr/bin/env python3
"""Issue 13.16: with precompressed = on, a file's entry in the open-file
cache remembers that FILE.br / FILE.gz are missing (so a hot file without
siblings costs no failing open per request), but only until the entry is
revalidated, about once a second: a FILE.gz created after the first
requests is served within about a second, as a changed file is. Polled,
never slept for; the unit test test_static.c counts the opens."""

import sys
sys.dont_write_bytecode = True

import gzip
import os
import time

import weirtest
from polling import wait_until
from weirtest import SERVER

INI = SERVER + """
[route site]
match = prefix:/
root = @TMP@/www
precompressed = on
"""

TEXT = b"hello, weir\n" * 40
SERVED_WITHIN = 3.0  # seconds: one revalidation interval (1 s), with room for a loaded machine


class PrecompressedLaterTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        os.makedirs(os.path.join(tmp, "www"))
        for name in ("a.txt", "b.txt"):
            with open(os.path.join(tmp, "www", name), "wb") as f:
                f.write(TEXT)
        return {}

    def get_gz(self, target):
        return self.get(target, headers=[("Accept-Encoding", "gzip, br")])

    def gz_appears(self, name):
        """Requests name (no sibling yet) a few times, creates name.gz, and
        polls until it is served; returns the seconds that took."""
        target = "/" + name
        for _ in range(20):  # the entry and its remembered absence are hot
            r = self.get_gz(target)
            self.assertEqual((r.status, r.header("Content-Encoding"), r.body),
                             (200, None, TEXT))
        gz = gzip.compress(TEXT)
        path = os.path.join(self.weir.tmp, "www", name + ".gz")
        with open(path + ".tmp", "wb") as f:
            f.write(gz)
        os.rename(path + ".tmp", path)
        created = time.monotonic()

        def probe():
            r = self.get_gz(target)
            self.assertEqual(r.status, 200)
            return r if r.header("Content-Encoding") == "gzip" else None
        r = wait_until(probe, "%s.gz served" % name, timeout=SERVED_WITHIN)
        self.assertEqual(r.body, gz)
        self.assertTrue(r.header("ETag").endswith('-gz"'), r.header("ETag"))
        return time.monotonic() - created

    def test_sibling_created_later_is_served(self):
        self.gz_appears("a.txt")

    def test_identity_still_served_to_others(self):
        self.gz_appears("b.txt")
        r = self.get("/b.txt")  # no Accept-Encoding: identity
        self.assertEqual((r.status, r.header("Content-Encoding"), r.body), (200, None, TEXT))
        self.assertEqual(r.header("Vary"), "Accept-Encoding")


if __name__ == "__main__":
    weirtest.main()
