#!/usr/bin/env python3
"""Issue 13.17: a route's add_header for a name weir writes itself replaces
weir's field instead of sending two (expires + add_header Cache-Control; a
Content-Type on `return`; Server; error pages of the route); on a proxy
route add_header still appends to the upstream's fields, and hide_header
drops upstream fields (case-insensitive) while others pass; with
server_header = off, error pages no longer name weir."""

import sys
sys.dont_write_bytecode = True

import unittest

import weirtest
from upstreams import RawBackendCase
from weirtest import SERVER, Weir

UPSTREAM_HEAD = (b"HTTP/1.1 200 OK\r\nX-Powered-By: PHP/8.2\r\nx-aspnet-version: 4.0\r\n"
                 b"X-Keep: yes\r\nCache-Control: private\r\nServer: backend\r\n"
                 b"Content-Length: 2\r\n\r\nok")

INI = SERVER + """
[upstream app]
server = @BACKEND@

[route assets]
match = prefix:/assets/
root = @TMP@/www
strip_prefix = /assets
expires = 1h
add_header = Cache-Control: public, max-age=60, immutable
add_header = X-Frame-Options: DENY

[route plain]
match = prefix:/plain/
root = @TMP@/www
strip_prefix = /plain
expires = 1h

[route json]
match = exact:/json
return = 200 {"ok":true}
add_header = content-type: application/json

[route edge]
match = exact:/edge
return = 204
add_header = Server: edge

[route moved]
match = exact:/moved
redirect = 302 /elsewhere
add_header = Content-Type: text/plain

[route app]
match = prefix:/app/
proxy = app
hide_header = X-Powered-By
hide_header = X-ASPNET-VERSION
add_header = Cache-Control: no-store
"""


class ResponseFieldsTest(RawBackendCase, weirtest.WeirCase):
    INI = INI
    WWW_FILES = {"app.js": "x = 1;\n"}

    @staticmethod
    def respond(target, n):
        return UPSTREAM_HEAD

    def test_expires_and_cache_control(self):
        r = self.get("/assets/app.js")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header_all("Cache-Control"), ["public, max-age=60, immutable"])
        self.assertEqual(r.header_all("X-Frame-Options"), ["DENY"])
        self.assertEqual(len(r.header_all("Content-Type")), 1)
        # A 304 carries the route's Cache-Control once too.
        r = self.get("/assets/app.js", headers=[("If-None-Match", r.header("ETag"))])
        self.assertEqual(r.status, 304)
        self.assertEqual(r.header_all("Cache-Control"), ["public, max-age=60, immutable"])
        # Without add_header, expires still writes weir's own.
        r = self.get("/plain/app.js")
        self.assertEqual(r.header_all("Cache-Control"), ["max-age=3600"])

    def test_error_page_of_the_route(self):
        # add_header without "always" is for answers below 400 (issue 21.4,
        # as nginx): a 404 is not made cacheable for an hour by it.
        r = self.get("/assets/missing.js")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.header_all("Cache-Control"), [])
        self.assertEqual(r.header_all("X-Frame-Options"), [])
        self.assertEqual(r.header_all("Content-Type"), ["text/html; charset=utf-8"])

    def test_return_content_type(self):
        r = self.get("/json")
        self.assertEqual((r.status, r.body), (200, b'{"ok":true}'))
        self.assertEqual(r.header_all("Content-Type"), ["application/json"])

    def test_server_replaced(self):
        r = self.get("/edge")
        self.assertEqual(r.status, 204)
        self.assertEqual(r.header_all("Server"), ["edge"])
        self.assertEqual(len(r.header_all("Date")), 1)

    def test_redirect_content_type(self):
        r = self.get("/moved")
        self.assertEqual(r.status, 302)
        self.assertEqual(r.header_all("Location"), ["/elsewhere"])
        self.assertEqual(r.header_all("Content-Type"), ["text/plain"])

    def test_hide_header_and_append_on_proxy(self):
        r = self.get("/app/x")
        self.assertEqual((r.status, r.body), (200, b"ok"))
        names = [n.lower() for n, _ in r.headers]
        self.assertNotIn("x-powered-by", names)
        self.assertNotIn("x-aspnet-version", names)
        self.assertEqual(r.header_all("X-Keep"), ["yes"])
        # add_header appends to the upstream's fields on a proxy route.
        self.assertEqual(r.header_all("Cache-Control"), ["private", "no-store"])
        self.assertEqual(r.header_all("Server"), ["weir"])


class ServerHeaderOffTest(unittest.TestCase):
    def test_error_page_does_not_name_weir(self):
        ini = SERVER + "server_header = off\n[route r]\nmatch = exact:/r\nreturn = 200 ok\n"
        w = Weir(ini)
        self.addCleanup(w.cleanup)
        r = w.get("/missing")
        self.assertEqual(r.status, 404)
        self.assertIsNone(r.header("Server"))
        self.assertIn(b"404 Not Found", r.body)
        self.assertNotIn(b"weir", r.body.lower())
        w.stop()

    def test_error_page_names_weir_by_default(self):
        w = Weir(SERVER + "[route r]\nmatch = exact:/r\nreturn = 200 ok\n")
        self.addCleanup(w.cleanup)
        r = w.get("/missing")
        self.assertEqual((r.status, r.header("Server")), (404, "weir"))
        self.assertIn(b"weir", r.body)
        w.stop()


if __name__ == "__main__":
    weirtest.main()
