#!/usr/bin/env python3
"""Issue 21.1: custom error pages. error_page = CODE... PATH on [server]
(every route's default) and per route (its own list replaces [server]'s):
an error weir makes (404, 405, 429, 502...) is answered by an internal GET
of PATH through the route table (a static file, a return, a proxied URL),
sent with the original status, the page's Content-Type and the original
route's "always" rules and error fields (Allow, Retry-After); HEAD gets the
head only; an error while fetching the page gives the built-in page with
the original status (no loops). proxy_intercept_errors = on replaces an
upstream's listed status the same way; off relays it as it is. HTTP/1.1
and HTTP/2 (h2c on the same port) alike. With server_header = off the
built-in pages do not name weir."""

import sys
sys.dont_write_bytecode = True

import os
import unittest

import weirtest
from polling import wait_until
from h2test import HAVE_H2, RawH2, get as h2_get, post as h2_post
from upstreams import RawBackendCase
from weirtest import SERVER

UP_500 = (b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
          b"Content-Length: 12\r\n\r\nupstream-500")
UP_404 = (b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
          b"Content-Length: 12\r\n\r\nupstream-404")
UP_PAGE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
           b"Content-Length: 19\r\n\r\n<p>proxied page</p>")
UP_REDIRECT = b"HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n"

PAGE_404 = "<h1>custom 404</h1>\n"
PAGE_502 = "<h1>custom 502</h1>\n"
PAGE_GENERIC = "<h1>custom generic</h1>\n"
PAGE_OWN = "<h1>the route's own page</h1>\n"
PAGE_UPSTREAM = "<h1>upstream failed</h1>\n"

INI = SERVER.replace("@PORT@\n", "@PORT@ h2c\n", 1).replace(
    "access_log = off\n",
    "access_log = @TMP@/access.log\naccess_log_format = $status $route $upstream_status $request\n", 1) + """
error_page = 404 /errors/404.html
error_page = 405 429 413 /errors/generic.html
error_page = 502 504 /errors/502.html

[limits]
max_body_size = 4k

[upstream app]
server = @BACKEND@

[upstream gone]
server = 127.0.0.1:@DEAD@
max_fails = 0

[route errors]
match = prefix:/errors/
root = @TMP@/www
add_header = X-Page-Route: errors always

[route files]
match = prefix:/files/
root = @TMP@/www
strip_prefix = /files
add_header = X-Always: yes always
add_header = X-Extra: 1

[route own]
match = prefix:/own/
root = @TMP@/www
strip_prefix = /own
error_page = 404 /errors/own.html

[route ret_page]
match = exact:/pages/ret
return = 200 <p>returned page</p>
return_type = text/html

[route uses_ret]
match = prefix:/r/
root = @TMP@/www
error_page = 404 /pages/ret

[route moved_page]
match = exact:/pages/moved
redirect = 301 /elsewhere

[route uses_moved]
match = prefix:/m/
root = @TMP@/www
error_page = 404 /pages/moved

[route app_pages]
match = prefix:/app-pages/
proxy = app

[route uses_proxied]
match = prefix:/p/
root = @TMP@/www
error_page = 404 /app-pages/page.html

[route uses_bad_proxied]
match = prefix:/bp/
root = @TMP@/www
error_page = 404 /app-pages/redirect

[route loop]
match = prefix:/loop/
root = @TMP@/www
error_page = 404 /errors/missing.html

[route loop_noroute]
match = prefix:/loop2/
root = @TMP@/www
error_page = 404 /nowhere/page.html

[route getonly]
match = exact:/getonly
methods = GET
return = 200 ok

[route limited]
match = exact:/limited
return = 200 ok
rate_limit = 1r/m burst=1
add_header = X-Always: yes always

[route down]
match = prefix:/down/
proxy = gone
add_header = X-Always: yes always

[route icpt]
match = prefix:/icpt/
proxy = app
proxy_intercept_errors = on
error_page = 500 404 /errors/upstream.html
add_header = X-Always: yes always

[route noicpt]
match = prefix:/noicpt/
proxy = app
error_page = 500 404 /errors/upstream.html
"""


def respond(target, n):
    if target.endswith("/err500"):
        return UP_500
    if target.endswith("/err404"):
        return UP_404
    if target == "/app-pages/page.html":
        return UP_PAGE
    if target == "/app-pages/redirect":
        return UP_REDIRECT
    return None


class ErrorPageTest(RawBackendCase, weirtest.WeirCase):
    INI = INI
    WWW_FILES = {"a.txt": "a\n"}

    respond = staticmethod(respond)

    @classmethod
    def make_subst(cls, tmp):
        subst = super().make_subst(tmp)
        os.makedirs(os.path.join(tmp, "www", "errors"))
        for name, text in (("404.html", PAGE_404), ("502.html", PAGE_502),
                           ("generic.html", PAGE_GENERIC), ("own.html", PAGE_OWN),
                           ("upstream.html", PAGE_UPSTREAM)):
            with open(os.path.join(tmp, "www", "errors", name), "w") as f:
                f.write(text)
        cls.log = os.path.join(tmp, "access.log")
        return dict(subst, DEAD=weirtest.free_port())

    @staticmethod
    def exchange(c, method, target):
        """One request on the keep-alive connection c, and its response."""
        c.request(method, target)
        return c.read_response(method=method)

    def assertPage(self, r, status, body, what, ctype="text/html"):
        self.assertEqual(r.status, status, what)
        self.assertEqual(r.body, body.encode() if isinstance(body, str) else body, what)
        self.assertTrue((r.header("Content-Type") or "").startswith(ctype),
                        (what, r.header("Content-Type")))
        self.assertEqual(r.header_all("Content-Type").__len__(), 1, what)

    def assertBuiltin(self, r, status, what):
        self.assertEqual(r.status, status, what)
        self.assertIn(b"<html", r.body.lower(), what)
        for page in (PAGE_404, PAGE_502, PAGE_GENERIC, PAGE_OWN, PAGE_UPSTREAM):
            self.assertNotIn(page.encode(), r.body, what)

    def test_static_404_gets_server_page(self):
        r = self.get("/files/missing")
        self.assertPage(r, 404, PAGE_404, "static 404")
        self.assertEqual(r.header("Content-Length"), str(len(PAGE_404)))
        # the original route's always rules, not its others nor the page route's
        self.assertEqual(r.header_all("X-Always"), ["yes"])
        self.assertEqual(r.header_all("X-Extra"), [])
        self.assertEqual(r.header_all("X-Page-Route"), [])
        # the connection goes on
        with self.client() as c:
            r1 = self.exchange(c, "GET", "/files/missing")
            r2 = self.exchange(c, "GET", "/files/a.txt")
        self.assertPage(r1, 404, PAGE_404, "keep-alive 1")
        self.assertEqual((r2.status, r2.body), (200, b"a\n"))

    def test_no_route_404(self):
        r = self.get("/no/such/route")
        self.assertPage(r, 404, PAGE_404, "no route")

    def test_conditional_and_range_do_not_reach_the_page(self):
        r = self.get("/errors/404.html")
        self.assertEqual(r.status, 200)
        etag = r.header("ETag")
        headers = [("Range", "bytes=0-3")] + ([("If-None-Match", etag)] if etag else [])
        r = self.get("/files/missing", headers=headers)
        self.assertPage(r, 404, PAGE_404, "conditional 404")

    def test_route_overrides_server(self):
        self.assertPage(self.get("/own/missing"), 404, PAGE_OWN, "route's own page")
        # the route's list replaces [server]'s whole: no 502 page there
        r = self.get("/own/a.txt")
        self.assertEqual(r.status, 200)

    def test_page_from_return(self):
        r = self.get("/r/missing")
        self.assertPage(r, 404, "<p>returned page</p>", "return page")

    def test_page_from_proxy(self):
        mark = self.backend.mark()
        r = self.get("/p/missing")
        self.assertPage(r, 404, b"<p>proxied page</p>", "proxied page")
        got = b"".join(self.backend.received(mark).values())
        self.assertTrue(got.startswith(b"GET /app-pages/page.html HTTP/1.1\r\n"), got[:80])

    def test_page_not_200_falls_back(self):
        """A page route that answers anything but 200 (a redirect here,
        from a return route and from an upstream) is not the page."""
        self.assertBuiltin(self.get("/m/missing"), 404, "redirect page")
        self.assertBuiltin(self.get("/bp/missing"), 404, "upstream redirect page")

    def test_loop_falls_back(self):
        """The page itself 404s (its file is missing, or no route takes
        it): the built-in page, with the original status, at once."""
        with self.client() as c:
            r1 = self.exchange(c, "GET", "/loop/missing")
            r2 = self.exchange(c, "GET", "/loop2/missing")
            r3 = self.exchange(c, "GET", "/files/a.txt")
        self.assertBuiltin(r1, 404, "page 404s")
        self.assertBuiltin(r2, 404, "page has no route")
        self.assertEqual((r3.status, r3.body), (200, b"a\n"))

    def test_head(self):
        with self.client() as c:
            r = self.exchange(c, "HEAD", "/files/missing")
            r2 = self.exchange(c, "HEAD", "/p/missing")
            r3 = self.exchange(c, "GET", "/files/a.txt")
        self.assertEqual((r.status, r.body), (404, b""))
        self.assertEqual(r.header("Content-Length"), str(len(PAGE_404)))
        self.assertTrue(r.header("Content-Type").startswith("text/html"))
        self.assertEqual((r2.status, r2.body), (404, b""))
        self.assertEqual((r3.status, r3.body), (200, b"a\n"))

    def test_405_keeps_allow(self):
        r = self.get("/getonly", method="POST", body=b"x=1")
        self.assertPage(r, 405, PAGE_GENERIC, "405")
        self.assertEqual(r.header_all("Allow"), ["GET, HEAD"])

    def test_429_keeps_retry_after(self):
        self.get("/limited")
        r = self.get("/limited")
        self.assertPage(r, 429, PAGE_GENERIC, "429")
        self.assertEqual(len(r.header_all("Retry-After")), 1)
        self.assertEqual(r.header_all("X-Always"), ["yes"])

    def test_413(self):
        """A body over max_body_size: the page, then the close."""
        r = self.get("/files/a.txt", method="POST", body=b"a" * 10000)
        self.assertPage(r, 413, PAGE_GENERIC, "413")
        r = self.get("/no/route", method="PUT", body=b"a" * 10000)
        self.assertPage(r, 413, PAGE_GENERIC, "413 no route")

    def test_502_from_dead_upstream(self):
        r = self.get("/down/x")
        self.assertPage(r, 502, PAGE_502, "502")
        self.assertEqual(r.header_all("X-Always"), ["yes"])
        # with a body sent
        r = self.get("/down/x", method="POST", body=b"a" * 1000)
        self.assertPage(r, 502, PAGE_502, "502 POST")

    def test_intercept_on(self):
        mark = self.backend.mark()
        r = self.get("/icpt/err500")
        self.assertPage(r, 500, PAGE_UPSTREAM, "intercepted 500")
        self.assertEqual(r.header_all("X-Always"), ["yes"])
        # the upstream's connection is closed, its body unread (never pooled)
        mine = [i for i, got in self.backend.received(mark).items()
                if b"GET /icpt/err500 " in got]
        self.assertEqual(len(mine), 1)
        wait_until(lambda: self.backend.closed[mine[0]],
                   "weir to close the intercepted upstream connection")
        r = self.get("/icpt/err404")
        self.assertPage(r, 404, PAGE_UPSTREAM, "intercepted 404")
        with self.client() as c:
            r = self.exchange(c, "HEAD", "/icpt/err500")
            r2 = self.exchange(c, "GET", "/icpt/fine")
        self.assertEqual((r.status, r.body), (500, b""))
        self.assertEqual((r2.status, r2.body), (200, b"raw /icpt/fine"))
        self.assertTrue(self.backend.received(mark))

    def test_intercept_off(self):
        r = self.get("/noicpt/err500")
        self.assertPage(r, 500, "upstream-500", "relayed 500", ctype="text/plain")
        r = self.get("/noicpt/err404")
        self.assertPage(r, 404, "upstream-404", "relayed 404", ctype="text/plain")

    def test_access_log(self):
        """The status sent, and the original route."""
        self.get("/files/logged-missing")
        self.get("/icpt/logged/err500")
        def logged():
            with open(self.log) as f:
                lines = f.read().splitlines()
            done = (any("logged-missing" in l for l in lines) and
                    any("logged/err500" in l for l in lines))
            return lines if done else None
        lines = wait_until(logged, "both requests in the access log")
        mine = [l for l in lines if "logged" in l]
        self.assertIn("404 files - GET /files/logged-missing HTTP/1.1", mine)
        # the upstream's status of the exchange the page replaced
        self.assertIn("500 icpt 500 GET /icpt/logged/err500 HTTP/1.1", mine)

    @unittest.skipUnless(HAVE_H2, "python3-h2 is not installed")
    def test_http2(self):
        c = RawH2(self.weir.port)
        try:
            cases = ((b"/files/missing", 404, PAGE_404), (b"/own/missing", 404, PAGE_OWN),
                     (b"/r/missing", 404, "<p>returned page</p>"),
                     (b"/p/missing", 404, "<p>proxied page</p>"),
                     (b"/down/x", 502, PAGE_502), (b"/icpt/err500", 500, PAGE_UPSTREAM),
                     (b"/noicpt/err500", 500, "upstream-500"),
                     (b"/loop/missing", 404, None), (b"/m/missing", 404, None))
            for path, status, body in cases:
                sid = c.request(h2_get(path))
                self.assertEqual(c.wait_stream(sid)[:2], ("response", status), path)
                st = c.stream(sid)
                fields = {}
                for name, value in st["header_list"]:
                    fields.setdefault(name.decode(), []).append(value.decode())
                if body is None:
                    self.assertIn(b"<html", bytes(st["body"]).lower(), path)
                else:
                    self.assertEqual(bytes(st["body"]), body.encode(), path)
                self.assertEqual(len(fields.get("content-type", [])), 1, path)
            # a body over max_body_size: the 413 page
            sid = c.request(h2_post(b"/app-pages/upload", 10000), body=b"a" * 10000)
            self.assertEqual(c.wait_stream(sid)[:2], ("response", 413))
            self.assertEqual(bytes(c.stream(sid)["body"]), PAGE_GENERIC.encode())
            head = [(b":method", b"HEAD")] + h2_get(b"/files/missing")[1:]
            sid = c.request(head)
            self.assertEqual(c.wait_stream(sid)[:2], ("response", 404))
            self.assertEqual(bytes(c.stream(sid)["body"]), b"")
        finally:
            c.close()


class BuiltinPageTest(weirtest.WeirCase):
    """server_header = off: weir's own pages do not name it."""
    INI = SERVER + """server_header = off

[upstream gone]
server = 127.0.0.1:@DEAD@
max_fails = 0

[route down]
match = prefix:/down/
proxy = gone

[route getonly]
match = exact:/getonly
methods = GET
return = 200 ok
"""

    @classmethod
    def make_subst(cls, tmp):
        return {"DEAD": weirtest.free_port()}

    def test_unsigned(self):
        for method, target, status in (("GET", "/nothing", 404), ("GET", "/down/x", 502),
                                       ("POST", "/getonly", 405)):
            r = self.get(target, method=method)
            self.assertEqual(r.status, status)
            self.assertIsNone(r.header("Server"))
            self.assertNotIn(b"weir", r.body.lower(), target)


class ConfigErrorTest(unittest.TestCase):
    def check(self, lines, expect):
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "weir.ini")
            with open(path, "w") as f:
                f.write("[server]\nlisten = 127.0.0.1:1\n" + lines)
            p = weirtest.run_weir(["-t", "-c", path])
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            out = p.stdout + p.stderr
            for e in expect:
                self.assertIn(e, out)

    def test_errors(self):
        self.check("error_page = 200 /x.html\n",
                   ["weir.ini:3: [server] error_page:", "\"200\" is not a status code"])
        self.check("error_page = 404\n", ["weir.ini:3: [server] error_page:", "CODE... PATH"])
        self.check("[route r]\nmatch = prefix:/\nreturn = 200 ok\nerror_page = 404 x.html\n",
                   ["weir.ini:6: [route r] error_page:", "must start with /"])
        self.check("error_page = 404 /a\nerror_page = 404 500 /b\n",
                   ["weir.ini:4: [server] error_page:", "404 has a page already"])
        self.check("[route r]\nmatch = prefix:/\nreturn = 200 ok\nproxy_intercept_errors = on\n",
                   ["weir.ini:6:", "proxy_intercept_errors"])


if __name__ == "__main__":
    weirtest.main()
