#!/usr/bin/env python3
"""weir-demo-app on its own (no weir): every endpoint, its errors, escaping
of user input in JSON and HTML, the bounded team store, the echo and stats
helpers that proxy tests rely on, unix sockets, and a clean exit (no
sanitizer report) on SIGTERM and SIGINT."""

import sys
sys.dont_write_bytecode = True

import hashlib
import json
import os
import signal
import subprocess
import tempfile
import unittest

import weirtest
from weirtest import DemoApp, DEMO_APP, chunked, request_bytes

FORM = ("Content-Type", "application/x-www-form-urlencoded")
JSON = ("Content-Type", "application/json")


def body_json(r):
    return json.loads(r.body.decode("utf-8"))


class DemoAppTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.app = DemoApp(name="alpha")

    @classmethod
    def tearDownClass(cls):
        try:
            cls.app.stop()
        finally:
            cls.app.cleanup()

    def get(self, target, **kw):
        r = self.app.get(target, **kw)
        self.assertEqual(r.header("X-Served-By"), "alpha", "X-Served-By on %s" % target)
        return r

    def assertError(self, r, status, text=None):
        self.assertEqual(r.status, status, r.body)
        self.assertEqual(r.header("Content-Type"), "application/json")
        msg = body_json(r)["error"]
        if text:
            self.assertIn(text, msg)

    # -- /healthz, 404 -------------------------------------------------------

    def test_healthz(self):
        r = self.get("/healthz")
        self.assertEqual((r.status, r.body), (200, b"ok"))
        r = self.get("/healthz", method="HEAD")
        self.assertEqual((r.status, r.body), (200, b""))
        r = self.get("/healthz", method="POST", body="x")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header("Allow"), "GET, HEAD")

    def test_unknown_path(self):
        self.assertError(self.get("/nowhere"), 404)
        self.assertError(self.get("/api/"), 404)

    # -- /api/best -----------------------------------------------------------

    def test_best_json(self):
        r = self.get("/api/best?team=Lions")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), "application/json")
        self.assertEqual(r.header("Vary"), "Accept")
        d = body_json(r)
        self.assertEqual((d["team"], d["show"], len(d["players"])), ("Lions", 5, 5))
        ratings = [p["rating"] for p in d["players"]]
        self.assertEqual(ratings, sorted(ratings, reverse=True))
        self.assertEqual([p["rank"] for p in d["players"]], [1, 2, 3, 4, 5])
        for p in d["players"]:
            self.assertIn(p["position"], ("GK", "DF", "MF", "FW"))
            self.assertTrue(55 <= p["rating"] <= 99 and 1 <= p["number"] <= 99)
            self.assertTrue(p["name"])
        # deterministic from the name; show=N is a prefix of the full lineup
        self.assertEqual(self.get("/api/best?team=Lions").body, r.body)
        full = body_json(self.get("/api/best?show=11&team=Lions"))
        self.assertEqual(full["players"][:5], d["players"])
        self.assertEqual(len(full["players"]), 11)
        one = body_json(self.get("/api/best?team=Lions&show=1"))
        self.assertEqual(one["players"], d["players"][:1])
        other = body_json(self.get("/api/best?team=Tigers"))
        self.assertNotEqual(other["players"], d["players"])
        r = self.get("/api/best?team=Lions", method="HEAD")
        self.assertEqual((r.status, r.body), (200, b""))

    def test_best_errors(self):
        for q in ("", "?show=3", "?team=", "?team&show=2"):
            self.assertError(self.get("/api/best" + q), 400, "team")
        for show in ("0", "12", "-1", "abc", "", "1.5", "99999999999"):
            self.assertError(self.get("/api/best?team=x&show=" + show), 400, "show")
        self.assertError(self.get("/api/best?team=a%zz"), 400, "%")
        self.assertError(self.get("/api/best?team=" + "x" * 101), 400, "100")
        self.assertEqual(self.get("/api/best?team=" + "x" * 100).status, 200)
        self.assertError(self.get("/api/best?team=x&format=xml"), 400, "format")
        r = self.get("/api/best?team=x", method="POST", body="a=b", headers=[FORM])
        self.assertError(r, 405)
        self.assertEqual(r.header("Allow"), "GET, HEAD")

    def test_best_html(self):
        browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        for target, accept in (("/api/best?team=Lions&show=3", browser),
                               ("/api/best?team=Lions&show=3&format=html", "*/*"),
                               ("/api/best?team=Lions&show=3&format=html", None)):
            headers = [("Accept", accept)] if accept else []
            r = self.get(target, headers=headers)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
            text = r.body.decode()
            self.assertIn("<h1>Best 3 of Lions</h1>", text)
            self.assertEqual(text.count("<tr><td>"), 3)
        # format=json wins over a browser's Accept; text/html;q=0 means no
        r = self.get("/api/best?team=Lions&format=json", headers=[("Accept", browser)])
        self.assertEqual(r.header("Content-Type"), "application/json")
        r = self.get("/api/best?team=Lions", headers=[("Accept", "text/html;q=0, */*")])
        self.assertEqual(r.header("Content-Type"), "application/json")

    def test_best_escaping(self):
        evil = '<script>alert("x")</script>&\'\\'
        target = "/api/best?team=%3Cscript%3Ealert(%22x%22)%3C/script%3E%26'%5C"
        r = self.get(target)
        self.assertEqual(body_json(r)["team"], evil)
        self.assertNotIn(b"<", r.body)
        r = self.get(target + "&format=html")
        text = r.body.decode()
        self.assertNotIn("<script>", text)
        self.assertIn("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;\\", text)
        # invalid UTF-8 and control bytes still give valid JSON / HTML
        r = self.get("/api/best?team=a%FF%00%0Ab")
        self.assertEqual(body_json(r)["team"], "a\ufffd\x00\nb")
        r = self.get("/api/best?team=a%FF%00b&format=html")
        self.assertIn("a\ufffd\ufffdb", r.body.decode("utf-8"))
        r = self.get("/api/best?team=Zo%C3%A9+FC")
        self.assertEqual(body_json(r)["team"], "Zo\u00e9 FC")

    # -- /api/teams ----------------------------------------------------------

    def post_team(self, body, ctype=FORM, accept=None):
        headers = [ctype] if ctype else []
        if accept:
            headers.append(("Accept", accept))
        return self.get("/api/teams", method="POST", body=body, headers=headers)

    def test_teams(self):
        # one test, because ids are assigned in order across the store
        r = self.post_team("name=Red+Lions&city=S%C3%A3o+Paulo")
        self.assertEqual(r.status, 201)
        self.assertEqual(r.header("Content-Type"), "application/json")
        first = body_json(r)
        self.assertEqual((first["name"], first["city"]), ("Red Lions", "S\u00e3o Paulo"))
        self.assertEqual(r.header("Location"), "/api/teams/%d" % first["id"])
        self.assertEqual(body_json(self.get(r.header("Location"))), first)

        doc = json.dumps({"city": "Z\u00fcrich <b>", "name": "Blue \ud83d\ude00 \"Owls\"",
                          "extra": [1, {"x": None}]})
        r = self.post_team(doc, ctype=("Content-Type", "application/json; charset=utf-8"))
        self.assertEqual(r.status, 201)
        second = body_json(r)
        self.assertEqual(second["name"], "Blue \U0001F600 \"Owls\"")
        self.assertEqual(second["city"], "Z\u00fcrich <b>")
        self.assertNotIn(b"<b>", r.body)
        self.assertEqual(second["id"], first["id"] + 1)
        r = self.post_team('{"name":"NoCity"}', ctype=JSON)
        self.assertEqual((r.status, body_json(r)["city"]), (201, ""))

        listed = body_json(self.get("/api/teams"))
        self.assertEqual(listed["count"], len(listed["teams"]))
        self.assertEqual(listed["teams"][:2], [first, second])
        r = self.get("/api/teams?format=html")
        self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
        self.assertIn("Z\u00fcrich &lt;b&gt;", r.body.decode())
        self.assertIn("/api/best?team=Red%20Lions&amp;format=html", r.body.decode())
        # a browser posting the home page's form gets the list as a page
        r = self.post_team("name=Form", accept="text/html,*/*;q=0.8")
        self.assertEqual(r.status, 201)
        self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
        self.assertIn(">Form</a>", r.body.decode())
        self.assertTrue(r.header("Location").startswith("/api/teams/"))

    def test_teams_errors(self):
        self.assertError(self.post_team("name=x", ctype=None), 415)
        self.assertError(self.post_team("name=x", ctype=("Content-Type", "text/plain")), 415)
        self.assertError(self.post_team("{}", ctype=("Content-Type", "application/jsonx")), 415)
        for bad in ('{"name":"x"', '{"name":"x",}', "[]", "", "name=x", '{"name":"\\ud800"}',
                    '{"name":"x"} {}', '{"a":' + "[" * 40 + "]" * 40 + ',"name":"x"}'):
            self.assertError(self.post_team(bad, ctype=JSON), 400, "JSON")
        self.assertError(self.post_team('{"name":7}', ctype=JSON), 400, "string")
        self.assertError(self.post_team('{"name":"x","city":[]}', ctype=JSON), 400, "city")
        self.assertError(self.post_team('{"city":"x"}', ctype=JSON), 400, "name")
        self.assertError(self.post_team('{"name":""}', ctype=JSON), 400, "name")
        self.assertError(self.post_team("city=x"), 400, "name")
        self.assertError(self.post_team("name=a%2"), 400, "%")
        self.assertError(self.post_team("name=" + "n" * 101), 400, "100")
        self.assertError(self.post_team("name=a%0Ab"), 400, "name")
        self.assertError(self.post_team("name=a%FF"), 400, "name")
        self.assertError(self.post_team("name=x&city=%01"), 400, "city")
        self.assertError(self.post_team("name=x&pad=" + "p" * 17000), 413)
        self.assertError(self.get("/api/teams", method="PUT", body="x", headers=[FORM]), 405)
        for target in ("/api/teams/999999", "/api/teams/abc", "/api/teams/0",
                       "/api/teams/01", "/api/teams/"):
            self.assertError(self.get(target), 404)

    # -- /api/echo -----------------------------------------------------------

    def test_echo_method_uri_headers(self):
        target = "/api/echo/a%2Fb/../c?x=1&y=%zz&&z=%20+#"
        headers = [("X-One", "1"), ("x-dup", "a"), ("X-DUP", "b"), ("Cookie", "k=v; k2=v2"),
                   ("X-Latin", "caf\xe9")]
        for method in ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            body = b"" if method in ("GET", "DELETE", "OPTIONS") else b"payload"
            r = self.get(target, method=method, headers=headers, body=body)
            self.assertEqual(r.status, 200, method)
            d = body_json(r)
            self.assertEqual(d["method"], method)
            self.assertEqual(d["uri"], target)
            got = [(k, v) for k, v in d["headers"]]
            want = [("Host", "localhost")] + headers
            if body:
                want.append(("Content-Length", str(len(body))))
            self.assertEqual(got, want)
            self.assertEqual(d["body_length"], len(body))
            self.assertEqual(d["body_sha256"], hashlib.sha256(body).hexdigest())
        # exact bytes back: strings are latin-1 code points
        latin = [v for k, v in d["headers"] if k == "X-Latin"]
        self.assertEqual([v.encode("latin-1") for v in latin], [b"caf\xe9"])
        r = self.get("/api/echo", method="HEAD")
        self.assertEqual((r.status, r.body), (200, b""))

    def test_echo_bodies(self):
        big = os.urandom(1 << 20)
        r = self.get("/api/echo/big", method="POST", body=big)
        d = body_json(r)
        self.assertEqual(d["body_length"], len(big))
        self.assertEqual(d["body_sha256"], hashlib.sha256(big).hexdigest())
        r = self.get("/api/echo", method="PUT", headers=[("Transfer-Encoding", "chunked")],
                     body=chunked("hello ", "world"))
        d = body_json(r)
        self.assertEqual((d["body_length"], d["body_sha256"]),
                         (11, hashlib.sha256(b"hello world").hexdigest()))

    def test_keepalive_and_pipelining(self):
        with self.app.client() as c:
            c.send(request_bytes("GET", "/api/echo?1") + request_bytes("GET", "/api/echo?2"))
            a, b = c.read_responses(["GET", "GET"])
            c.send(request_bytes("GET", "/healthz"))
            h = c.read_response()
        self.assertEqual([body_json(a)["uri"], body_json(b)["uri"]], ["/api/echo?1", "/api/echo?2"])
        self.assertEqual(h.body, b"ok")


class StoreBoundTest(unittest.TestCase):
    def test_store_full(self):
        with DemoApp(name="full") as app:
            with app.client(timeout=10) as c:
                for i in range(1000):
                    c.send(request_bytes("POST", "/api/teams", body="name=t%d" % i,
                                         headers=[FORM]))
                    r = c.read_response()
                    self.assertEqual(r.status, 201, r.body)
                c.send(request_bytes("POST", "/api/teams", body="name=one-more", headers=[FORM]))
                r = c.read_response()
            self.assertEqual(r.status, 507)
            self.assertIn("full", body_json(r)["error"])
            self.assertEqual(body_json(app.get("/api/teams"))["count"], 1000)


class StatsTest(unittest.TestCase):
    def test_counts_connections_and_requests(self):
        with DemoApp(name="stats") as app:
            self.assertEqual(app.stats(), (1, 1))
            for _ in range(3):  # 3 connections, 2 requests each
                with app.client() as c:
                    c.send(request_bytes("GET", "/healthz") * 2)
                    c.read_responses(["GET", "GET"])
            self.assertEqual(app.stats(), (5, 8))


class UnixAndSignalsTest(unittest.TestCase):
    def test_unix_socket(self):
        tmp = tempfile.mkdtemp(prefix="weirt-demo-")
        path = os.path.join(tmp, "app.sock")
        with DemoApp(unix=path, name="unixy") as app:
            self.assertEqual(app.addr, "unix:" + path)
            r = app.get("/healthz")
            self.assertEqual((r.status, r.body, r.header("X-Served-By")), (200, b"ok", "unixy"))
            self.assertEqual(app.stats(), (2, 2))
        self.assertFalse(os.path.exists(path), "socket file removed at exit")
        os.rmdir(tmp)

    def test_sigint_exits_clean(self):
        app = DemoApp(name="int")
        try:
            self.assertEqual(app.get("/api/best?team=x").status, 200)
            with app.client() as idle:  # an open keep-alive connection at exit
                idle.send(request_bytes("GET", "/healthz"))
                idle.read_response()
                err = app.stop(signal.SIGINT)
            self.assertIn("SIGINT", err)
        finally:
            app.cleanup()

    def test_bad_arguments(self):
        for args, rc in (([], 2), (["--listen"], 2), (["--listen", "nonsense"], 1),
                         (["--listen", "127.0.0.1:99999"], 1),
                         (["--listen", "127.0.0.1:0", "--name", "a\nb"], 2),
                         (["--listen", "127.0.0.1:0", "extra"], 2)):
            p = subprocess.run([DEMO_APP] + args, capture_output=True, timeout=10,
                               env=weirtest.weir_env(), stdin=subprocess.DEVNULL)
            self.assertEqual(p.returncode, rc, (args, p.stderr))
            self.assertIsNone(weirtest.sanitizer_report(p.stderr.decode("utf-8", "replace")))
        p = subprocess.run([DEMO_APP, "--help"], capture_output=True, timeout=10)
        self.assertEqual(p.returncode, 0)
        self.assertIn(b"usage", p.stdout)


if __name__ == "__main__":
    weirtest.main()
