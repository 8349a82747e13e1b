#!/usr/bin/env python3
"""redirect routes: Location from $host and $request_uri exactly as
received, regex captures, a small HTML body, add_header on redirects."""

import sys
sys.dont_write_bytecode = True


import weirtest
from weirtest import SERVER, request_bytes

INI = SERVER + """
[route tohttps]
match = prefix:/r/
redirect = 301 https://$host$request_uri
add_header = X-Redirected: yes
add_header = X-Second: 2

[route old]
match = regex:^/old/(.*)$
redirect = 302 /new/$1

[route fixed]
match = exact:/fixed
redirect = 308 https://example.org/new
"""


class RedirectTest(weirtest.WeirCase):
    INI = INI

    def test_host_and_request_uri(self):
        r = self.get("/r/a/b?x=1&y=%20z", host="Example.COM:8080")
        self.assertEqual(r.status, 301)
        # $host is the request host lower-cased without its port (nginx semantics),
        # so the usual HTTP-to-HTTPS redirect never carries the plain-HTTP port.
        self.assertEqual(r.header_all("Location"), ["https://example.com/r/a/b?x=1&y=%20z"])
        self.assertTrue(r.body, "a redirect carries a small body")
        self.assertIn("text/html", r.header("Content-Type") or "")
        self.assertEqual(int(r.header("Content-Length")), len(r.body))
        self.assertLess(len(r.body), 4096)

    def test_request_uri_not_normalised(self):
        r = self.get("/r/./%7Efoo//bar?q", host="h.test")
        self.assertEqual(r.status, 301)
        self.assertEqual(r.header("Location"), "https://h.test/r/./%7Efoo//bar?q")

    def test_add_header_on_redirect(self):
        r = self.get("/r/x", host="h.test")
        self.assertEqual(r.status, 301)
        self.assertEqual(r.header_all("X-Redirected"), ["yes"])
        self.assertEqual(r.header_all("X-Second"), ["2"])

    def test_regex_capture(self):
        r = self.get("/old/a/b.html?q=1")
        self.assertEqual(r.status, 302)
        self.assertEqual(r.header("Location"), "/new/a/b.html")
        self.assertIsNone(r.header("X-Redirected"))

    def test_regex_empty_capture(self):
        r = self.get("/old/")
        self.assertEqual(r.status, 302)
        self.assertEqual(r.header("Location"), "/new/")

    def test_fixed_target(self):
        r = self.get("/fixed")
        self.assertEqual(r.status, 308)
        self.assertEqual(r.header("Location"), "https://example.org/new")

    def test_head_redirect_no_body(self):
        with self.client() as c:
            c.send(request_bytes("HEAD", "/fixed") + request_bytes("GET", "/fixed"))
            h = c.read_response("HEAD")
            g = c.read_response("GET")
        self.assertEqual(h.status, 308)
        self.assertEqual(h.header("Location"), "https://example.org/new")
        self.assertEqual(g.status, 308)
        self.assertEqual(h.header("Content-Length"), g.header("Content-Length"))

    def test_keepalive_after_redirect(self):
        with self.client() as c:
            for _ in range(3):
                c.send(request_bytes("GET", "/fixed"))
                self.assertEqual(c.read_response().status, 308)


if __name__ == "__main__":
    weirtest.main()
