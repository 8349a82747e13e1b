#!/usr/bin/env python3
"""Issue 21.4: response header rules on every action. add_header appends
(a one-value field replaces instead), set_response_header replaces,
hide_header removes (weir's own fields and the upstream's); without
"always" a rule applies to answers below 400, with it to every answer,
weir's own errors and upstream errors alike; no singleton field is ever
sent twice."""

import sys
sys.dont_write_bytecode = True


import unittest

import weirtest
from h2test import HAVE_H2, RawH2, get as h2_get
from upstreams import RawBackendCase
from weirtest import SERVER

UPSTREAM_OK = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Control: private\r\n"
               b"X-Powered-By: PHP\r\nX-Frame-Options: SAMEORIGIN\r\nX-Keep: 1\r\n"
               b"Content-Length: 2\r\n\r\nok")
UPSTREAM_ERR = (b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
                b"Cache-Control: private\r\nX-Powered-By: PHP\r\nContent-Length: 3\r\n\r\nerr")

RULES = """add_header = X-Frame-Options: DENY
add_header = X-Extra: 1
add_header = X-Always: yes always
set_response_header = Cache-Control: no-store
set_response_header = X-Err: on-error-too always
hide_header = X-Powered-By
hide_header = ETag
"""

INI = SERVER.replace("@PORT@\n", "@PORT@ h2c\n", 1) + """
[upstream app]
server = @BACKEND@

[upstream gone]
server = 127.0.0.1:@DEAD@
max_fails = 0

[route files]
match = prefix:/files/
root = @TMP@/www
strip_prefix = /files
expires = 1h
""" + RULES + """
[route denied]
match = exact:/denied
return = 403 no
""" + RULES + """
[route moved]
match = exact:/moved
redirect = 301 /files/a.txt
""" + RULES + """
[route app]
match = prefix:/app/
proxy = app
""" + RULES + """
[route down]
match = prefix:/down/
proxy = gone
""" + RULES


class HeaderRulesTest(RawBackendCase, weirtest.WeirCase):
    INI = INI
    WWW_FILES = {"a.txt": "a\n"}

    @staticmethod
    def respond(target, n):
        return UPSTREAM_ERR if target.endswith("/err") else UPSTREAM_OK

    @classmethod
    def make_subst(cls, tmp):
        return dict(super().make_subst(tmp), DEAD=weirtest.free_port())

    def assertRules(self, r, is_error, what):
        fields = {k: r.header_all(k) for k in
                  ("X-Frame-Options", "X-Extra", "X-Always", "Cache-Control", "X-Err",
                   "X-Powered-By", "ETag", "Content-Type", "Date", "Server")}
        self.assertEqual(fields["X-Always"], ["yes"], what)
        self.assertEqual(fields["X-Err"], ["on-error-too"], what)
        self.assertEqual(fields["X-Powered-By"], [], what)
        self.assertEqual(fields["ETag"], [], what)
        if is_error:
            self.assertEqual(fields["X-Extra"], [], what)
            self.assertNotIn("DENY", fields["X-Frame-Options"], what)
            self.assertNotIn("no-store", fields["Cache-Control"], what)
        else:
            self.assertEqual(fields["X-Extra"], ["1"], what)
            self.assertEqual(fields["X-Frame-Options"], ["DENY"], what)
            self.assertEqual(fields["Cache-Control"], ["no-store"], what)
        for single in ("X-Frame-Options", "Content-Type", "Date", "Server"):
            self.assertLessEqual(len(fields[single]), 1, "%s: %s twice" % (what, single))

    def test_static(self):
        r = self.get("/files/a.txt")
        self.assertEqual(r.status, 200)
        self.assertRules(r, False, "static 200")
        self.assertIsNotNone(r.header("Last-Modified"))  # only ETag hidden
        r = self.get("/files/missing")
        self.assertEqual(r.status, 404)
        self.assertRules(r, True, "static 404")

    def test_return_and_redirect(self):
        r = self.get("/denied")
        self.assertEqual(r.status, 403)
        self.assertRules(r, True, "return 403")
        r = self.get("/moved")
        self.assertEqual(r.status, 301)
        self.assertRules(r, False, "redirect 301")
        self.assertEqual(r.header_all("Location"), ["/files/a.txt"])

    def test_proxied(self):
        r = self.get("/app/x")
        self.assertEqual((r.status, r.body), (200, b"ok"))
        self.assertRules(r, False, "proxied 200")
        self.assertEqual(r.header_all("X-Keep"), ["1"])  # other upstream fields pass
        self.assertEqual(r.header_all("Content-Type"), ["text/plain"])
        r = self.get("/app/err")
        self.assertEqual((r.status, r.body), (500, b"err"))
        self.assertRules(r, True, "proxied 500")
        self.assertEqual(r.header_all("Cache-Control"), ["private"])  # the upstream's stays
        r = self.get("/down/x")
        self.assertEqual(r.status, 502)
        self.assertRules(r, True, "weir's 502")

    @unittest.skipUnless(HAVE_H2, "python3-h2 is not installed")
    def test_http2(self):
        """The same rules over HTTP/2 (h2c on the same port)."""
        c = RawH2(self.weir.port)
        try:
            for path, status, is_error in ((b"/files/a.txt", 200, False),
                                           (b"/files/missing", 404, True),
                                           (b"/app/x", 200, False), (b"/app/err", 500, True),
                                           (b"/down/x", 502, True)):
                sid = c.request(h2_get(path))
                self.assertEqual(c.wait_stream(sid)[:2], ("response", status), path)
                fields = {}
                for name, value in c.stream(sid)["header_list"]:
                    fields.setdefault(name.decode(), []).append(value.decode())
                self.assertEqual(fields.get("x-always"), ["yes"], path)
                self.assertEqual(fields.get("x-err"), ["on-error-too"], path)
                self.assertNotIn("x-powered-by", fields, path)
                self.assertNotIn("etag", fields, path)
                self.assertEqual(fields.get("x-extra"), None if is_error else ["1"], path)
                for single in ("content-type", "x-frame-options", "date"):
                    self.assertLessEqual(len(fields.get(single, [])), 1, (path, single))
        finally:
            c.close()


if __name__ == "__main__":
    weirtest.main()
