#!/usr/bin/env python3
"""A directory weir may search but not read (mode 0711, as a home directory
holding a public site often is): its index file and its files are served,
as nginx does; only a listing needs read permission, so autoindex there is
403, logged as a permission error.

As root, weir runs as `user = nobody` (else root reads everything); as
another user, the modes deny that user itself."""

import sys
sys.dont_write_bytecode = True

import os
import pwd
import unittest

import weirtest
from polling import wait_log
from weirtest import SERVER, Client

IS_ROOT = os.geteuid() == 0

INI = SERVER + ("user = nobody\n" if IS_ROOT else "") + """
[route listed]
match = prefix:/listed/
root = @TMP@/www
strip_prefix = /listed
autoindex = on

[route files]
match = prefix:/
root = @TMP@/www
"""


def have_nobody():
    try:
        pwd.getpwnam("nobody")
        return True
    except KeyError:
        return False


def make_www(tmp):
    """www/home (0711) with a readable index.html and page.txt, and
    www/bare (0711) with only page.txt."""
    os.chmod(tmp, 0o755)
    www = os.path.join(tmp, "www")
    os.mkdir(www)
    os.chmod(www, 0o755)
    for d, names in (("home", ("index.html", "page.txt")), ("bare", ("page.txt",))):
        path = os.path.join(www, d)
        os.mkdir(path)
        for name in names:
            with open(os.path.join(path, name), "w") as f:
                f.write("%s/%s\n" % (d, name))
            os.chmod(os.path.join(path, name), 0o644)
        os.chmod(path, 0o711)


@unittest.skipIf(IS_ROOT and not have_nobody(), "root without a user nobody")
class SearchOnlyDirTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        make_www(tmp)
        return {}

    def get(self, target):
        with Client(("127.0.0.1", self.weir.port)) as c:
            c.send(("GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % target).encode())
            return c.read_response()

    def test_index_of_search_only_directory(self):
        r = self.get("/home/")
        self.assertEqual((r.status, r.body), (200, b"home/index.html\n"))

    def test_file_in_search_only_directory(self):
        r = self.get("/home/page.txt")
        self.assertEqual((r.status, r.body), (200, b"home/page.txt\n"))

    def test_slash_redirect_still_works(self):
        r = self.get("/home")
        self.assertEqual(r.status, 301)
        self.assertEqual(r.header("Location"), "/home/")

    def test_listing_needs_read_permission(self):
        self.assertEqual(self.get("/listed/bare/").status, 403)
        wait_log(self.weir, r"\[error\].*bare.*Permission denied; 403")

    def test_no_index_no_autoindex_is_403(self):
        self.assertEqual(self.get("/bare/").status, 403)


if __name__ == "__main__":
    weirtest.main()
