#!/usr/bin/env python3
"""return routes: status, body, fixed headers (Content-Type, Content-Length,
Date, Server), HEAD, add_header, and server_header off / custom."""

import sys
sys.dont_write_bytecode = True

import email.utils
import time

import weirtest
from weirtest import IMF_FIXDATE, SERVER, request_bytes

ROUTES = """
[route ping]
match = exact:/healthz
return = 200 ok

[route denied]
match = exact:/denied
return = 403 denied
add_header = X-A: 1 always
add_header = X-B: two words always
add_header = X-Host: $host always
add_header = X-Uri: $request_uri always
"""


class ReturnTest(weirtest.WeirCase):
    INI = SERVER + ROUTES

    def test_get(self):
        before = time.time()
        r = self.get("/healthz")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.version, "HTTP/1.1")
        self.assertEqual(r.body, b"ok")
        self.assertEqual(r.header("Content-Type"), "text/plain; charset=utf-8")
        self.assertEqual(r.header_all("Content-Length"), ["2"])
        self.assertEqual(r.header_all("Server"), ["weir"])
        dates = r.header_all("Date")
        self.assertEqual(len(dates), 1, r.headers)
        self.assertRegex(dates[0], IMF_FIXDATE)
        when = email.utils.parsedate_to_datetime(dates[0]).timestamp()
        self.assertLess(abs(when - before), 120, "Date %s is not about now" % dates[0])

    def test_head_same_headers_no_body(self):
        with self.client() as c:
            # HEAD then GET on one connection: if HEAD carried a body, the
            # second response would not parse.
            c.send(request_bytes("HEAD", "/healthz") + request_bytes("GET", "/healthz"))
            h = c.read_response("HEAD")
            g = c.read_response("GET")
        self.assertEqual(h.status, 200)
        self.assertEqual(h.header("Content-Length"), "2")
        self.assertEqual(h.header("Content-Type"), "text/plain; charset=utf-8")
        self.assertEqual(h.header("Server"), "weir")
        self.assertIsNotNone(h.header("Date"))
        self.assertEqual(g.status, 200)
        self.assertEqual(g.body, b"ok")

    def test_other_status(self):
        r = self.get("/denied")
        self.assertEqual(r.status, 403)
        self.assertEqual(r.body, b"denied")
        self.assertEqual(r.header("Content-Length"), "6")

    def test_add_header_repeatable_with_variables(self):
        r = self.get("/denied?q=1&r=%7E", host="Example.ORG:8080")
        self.assertEqual(r.status, 403)
        self.assertEqual(r.header_all("X-A"), ["1"])
        self.assertEqual(r.header_all("X-B"), ["two words"])
        self.assertEqual(r.header("X-Host"), "example.org")  # lower-case, no port
        self.assertEqual(r.header("X-Uri"), "/denied?q=1&r=%7E")

    def test_add_header_not_on_other_routes(self):
        r = self.get("/healthz")
        self.assertIsNone(r.header("X-A"))


class ServerHeaderOffTest(weirtest.WeirCase):
    INI = SERVER + "server_header = off\n" + ROUTES

    def test_no_server_header(self):
        r = self.get("/healthz")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"ok")
        self.assertEqual(r.header_all("Server"), [])
        r = self.get("/nope")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.header_all("Server"), [], "no Server on error pages either")


class ServerHeaderCustomTest(weirtest.WeirCase):
    INI = SERVER + "server_header = edge/2 (test)\n" + ROUTES

    def test_custom_server_header(self):
        r = self.get("/healthz")
        self.assertEqual(r.header_all("Server"), ["edge/2 (test)"])
        r = self.get("/nope")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.header_all("Server"), ["edge/2 (test)"])


if __name__ == "__main__":
    weirtest.main()
