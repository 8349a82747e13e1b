#!/usr/bin/env python3
"""Issue 13.2: strip_prefix removes the prefix only from a path that
starts with it, at a segment boundary; any other target goes upstream
unchanged, byte for byte, query kept. With match = prefix:/ and
strip_prefix = /api, GET /other/x used to go up as /er/x.

Segment boundary (weir's choice, unlike nginx's textual location/proxy_pass
replacement, which sends /apix as /x for `location /api`): /api strips from
/api and /api/..., never from /apix. The same rule applies to root routes
(static.c)."""

import sys
sys.dont_write_bytecode = True

import os

import weirtest
from weirtest import SERVER
from upstreams import Backend

INI = SERVER + """
[upstream app]
server = @B@

[route files]
match = prefix:/files
strip_prefix = /files
root = @TMP@/www

[route slash]
host = slash.test
match = prefix:/
strip_prefix = /api/
proxy = app

[route all]
match = prefix:/
strip_prefix = /api
proxy = app
"""

# target sent -> target the backend must receive
CASES = [
    ("/other/x", "/other/x"),
    ("/other/x?a=1&b=%20", "/other/x?a=1&b=%20"),
    ("/oth%65r/x?q", "/oth%65r/x?q"),           # unchanged: raw bytes kept
    ("/ap", "/ap"),
    ("/apix/y", "/apix/y"),                     # not at a segment boundary
    ("/api-v2/y?z=1", "/api-v2/y?z=1"),
    ("/api/x", "/x"),
    ("/api/x?q=1&r=%2F", "/x?q=1&r=%2F"),
    ("/api", "/"),
    ("/api?q=1", "/?q=1"),
    ("/api/", "/"),
    ("/api/a%20b/c", "/a%20b/c"),               # the raw rest, as received
    ("/%61pi/x?k", "/x?k"),                     # prefix only once decoded: rest re-encoded
    ("//api//x", "/x"),
    ("http://example.org/api/x?q", "/x?q"),     # absolute form
    ("http://example.org/other?q", "/other?q"),
]


class StripPrefixTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.b = Backend("b")
        os.makedirs(os.path.join(tmp, "www"))
        for name, body in (("x.txt", "stripped\n"), ("filesx.txt", "unstripped\n")):
            with open(os.path.join(tmp, "www", name), "w") as f:
                f.write(body)
        return {"B": cls.b.addr}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.b.stop()

    def sent_target(self, target, host="localhost"):
        before = len(self.b.requests)
        r = self.get(target, host=host)
        self.assertEqual(r.status, 200, target)
        self.assertEqual(len(self.b.requests), before + 1)
        return self.b.requests[-1].target

    def test_targets(self):
        for target, want in CASES:
            self.assertEqual(self.sent_target(target), want, target)

    def test_prefix_with_slash(self):
        """strip_prefix = /api/: /api/x loses "/api/" (the "/" is put back);
        /api itself does not start with /api/."""
        self.assertEqual(self.sent_target("/api/x?q", host="slash.test"), "/x?q")
        self.assertEqual(self.sent_target("/api", host="slash.test"), "/api")
        self.assertEqual(self.sent_target("/other", host="slash.test"), "/other")

    def test_static_segment_boundary(self):
        r = self.get("/files/x.txt")
        self.assertEqual((r.status, r.body), (200, b"stripped\n"))
        r = self.get("/filesx.txt")
        self.assertEqual((r.status, r.body), (200, b"unstripped\n"))


if __name__ == "__main__":
    weirtest.main()
