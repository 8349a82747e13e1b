#!/usr/bin/env python3
"""Static files: a directory without index gets an HTML listing with
autoindex = on (names HTML-escaped and percent-encoded in hrefs, sizes,
dates, directories with a trailing '/', dotfiles hidden, sorted by name)
and 403 with autoindex = off."""

import sys
sys.dont_write_bytecode = True

import os
import re

import weirtest
from weirtest import SERVER

INI = SERVER + """
[route off]
match = prefix:/closed/
root = @ROOT@
strip_prefix = /closed

[route site]
match = prefix:/
root = @ROOT@
autoindex = on
"""

EVIL = '<b>&"x\'.txt'


class StaticAutoindexTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        root = os.path.join(tmp, "www")
        os.makedirs(os.path.join(root, "list", "subdir"))
        os.makedirs(os.path.join(root, "withindex"))
        files = {"b.txt": b"bb", "a.txt": b"a" * 1234, EVIL: b"x", "sp ace.txt": b"",
                 ".hidden": b"secret", "javascript:alert(1)": b"j"}
        for name, data in files.items():
            with open(os.path.join(root, "list", name), "wb") as f:
                f.write(data)
        with open(os.path.join(root, "withindex", "index.html"), "wb") as f:
            f.write(b"index!")
        return {"ROOT": root}

    def test_listing(self):
        r = self.get("/list/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
        self.assertEqual(int(r.header("Content-Length")), len(r.body))
        html = r.body.decode()
        hrefs = re.findall(r'href="([^"]*)"', html)
        self.assertEqual(hrefs, ["../", "%3Cb%3E%26%22x%27.txt", "a.txt", "b.txt",
                                 "javascript%3Aalert%281%29", "sp%20ace.txt", "subdir/"])
        self.assertIn("&lt;b&gt;&amp;&quot;x&#39;.txt</a>", html)
        self.assertNotIn("<b>", html)
        self.assertIn(">subdir/</a>", html)
        self.assertIn("<td>1234</td>", html)
        self.assertNotIn("hidden", html)
        self.assertRegex(html, r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")

    def test_listing_head(self):
        r = self.get("/list/", method="HEAD")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")
        self.assertGreater(int(r.header("Content-Length")), 100)

    def test_escaped_entry_served(self):
        r = self.get("/list/%3Cb%3E%26%22x%27.txt")
        self.assertEqual((r.status, r.body), (200, b"x"))

    def test_index_wins(self):
        self.assertEqual(self.get("/withindex/").body, b"index!")

    def test_root_listing(self):
        html = self.get("/").body.decode()
        self.assertIn('href="list/"', html)

    def test_autoindex_off_403(self):
        self.assertEqual(self.get("/closed/list/").status, 403)
        self.assertEqual(self.get("/closed/withindex/").body, b"index!")


if __name__ == "__main__":
    weirtest.main()
