#!/usr/bin/env python3
"""Issue 15, points 1-3, 7: HTTP/2 front end.

One weir with an h2c plain listener, a plain listener without h2c and a
TLS listener (ALPN h2 preferred). Over HTTP/2 (curl --http2 /
--http2-prior-knowledge, nghttp): a static file by SHA-256, return,
redirect, 404, 405, a proxied GET and POST (body by SHA-256 at the
backend), cookie crumbs joined, many concurrent streams on one
connection; the access log says HTTP/2.0; HTTP/1.1 clients on the h2c
port are still served; [tls] alpn = http/1.1 turns h2 off."""

import sys
sys.dont_write_bytecode = True

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import unittest

import tlstest
import weirtest
from polling import wait_until

NAME = "h2.test"

INI = """[server]
listen = 127.0.0.1:@PORT@ h2c
listen = 127.0.0.1:@PLAINPORT@
listen = 127.0.0.1:@TLSPORT@ tls
workers = 1
access_log = @TMP@/access.log
error_log = stderr

[admin]
listen = 127.0.0.1:@ADMINPORT@

[tls]
cert = @CRT@
key = @KEY@

[upstream app]
server = @APP@

[route api]
match = prefix:/api/
proxy = app

[route ret]
match = exact:/ret
methods = GET HEAD
return = 200 hello over h2

[route moved]
match = exact:/moved
redirect = 302 /ret

[route files]
match = prefix:/
root = @TMP@/root
"""

BIG = 10 * 1024 * 1024


def curl(*args, data=None):
    """curl -sS ARGS: (returncode, stdout bytes, stderr text)."""
    p = subprocess.run(["curl", "-sS", "--max-time", "30"] + list(args), input=data,
                       capture_output=True, timeout=60)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


@unittest.skipUnless(shutil.which("curl") and shutil.which("nghttp"),
                     "curl and nghttp (nghttp2-client) are needed")
class H2Test(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.app = weirtest.DemoApp(name="app", tmpdir=tmp)
        root = os.path.join(tmp, "root")
        os.mkdir(root)
        cls.big = os.path.join(root, "big.bin")
        weirtest.write_random_file(cls.big, BIG)
        with open(os.path.join(root, "small.txt"), "wb") as f:
            f.write(b"small file\n")
        cls.crt, key = tlstest.make_cert(tmp, "site", NAME)
        cls.plain_port = weirtest.free_port()
        cls.tls_port = weirtest.free_port()
        cls.admin_port = weirtest.free_port()
        return {"ADMINPORT": cls.admin_port, "TLSPORT": cls.tls_port, "PLAINPORT": cls.plain_port, "CRT": cls.crt,
                "KEY": key, "APP": cls.app.addr}

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.app.stop()

    def h2c(self, path, *extra, data=None):
        return curl("--http2-prior-knowledge", *extra,
                    "http://127.0.0.1:%d%s" % (self.weir.port, path), data=data)

    def h2(self, path, *extra):
        return curl("--http2", "--cacert", self.crt, "--resolve",
                    "%s:%d:127.0.0.1" % (NAME, self.tls_port), *extra,
                    "https://%s:%d%s" % (NAME, self.tls_port, path))

    def status_of(self, fn, path, *extra):
        rc, out, err = fn(path, "-o", "/dev/null", "-w", "%{http_version} %{http_code}", *extra)
        self.assertEqual(rc, 0, err)
        return out.decode()

    def access_lines(self, needle, count=1):
        """Access log lines containing needle, polled until count are there
        (the log is flushed once a second)."""
        path = os.path.join(self.tmp, "access.log")

        def probe():
            try:
                with open(path) as f:
                    lines = [l for l in f if needle in l]
            except OSError:
                return None
            return lines if len(lines) >= count else None
        return wait_until(probe, "%d access log lines with %s" % (count, needle))

    # ---- static, return, redirect, errors --------------------------------

    def test_static_file_by_sha256_h2c_and_tls(self):
        want = weirtest.sha256_file(self.big)
        for fn in (self.h2c, self.h2):
            rc, out, err = fn("/big.bin", "-w", "")
            self.assertEqual(rc, 0, err)
            self.assertEqual(len(out), BIG)
            self.assertEqual(hashlib.sha256(out).hexdigest(), want)
        self.assertEqual(self.status_of(self.h2, "/big.bin"), "2 200")
        self.assertEqual(self.status_of(self.h2c, "/big.bin"), "2 200")

    def test_return_redirect_404_405(self):
        rc, out, err = self.h2c("/ret")
        self.assertEqual((rc, out), (0, b"hello over h2"), err)
        rc, out, err = self.h2c("/moved", "-D", "-", "-o", "/dev/null")
        self.assertIn("HTTP/2 302", out.decode())
        self.assertIn("location: /ret", out.decode())
        self.assertEqual(self.status_of(self.h2c, "/nothere"), "2 404")
        self.assertEqual(self.status_of(self.h2, "/nothere"), "2 404")
        rc, out, err = self.h2c("/ret", "-X", "DELETE", "-D", "-", "-o", "/dev/null")
        self.assertIn("HTTP/2 405", out.decode())
        self.assertIn("allow: get, head", out.decode().lower())

    def test_head_has_length_no_body(self):
        rc, out, err = self.h2c("/small.txt", "-I")
        self.assertEqual(rc, 0, err)
        text = out.decode()
        self.assertIn("HTTP/2 200", text)
        self.assertIn("content-length: 11", text)

    def test_static_range_over_h2(self):
        rc, out, err = self.h2c("/small.txt", "-r", "0-4")
        self.assertEqual((rc, out), (0, b"small"), err)

    # ---- proxy -------------------------------------------------------------

    def test_proxied_get_and_post(self):
        rc, out, err = self.h2("/api/echo/x?y=1", "-H", "Cookie: a=1", "-H", "Cookie: b=2")
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual(doc["method"], "GET")
        self.assertEqual(doc["uri"], "/api/echo/x?y=1")
        fields = {}
        for name, value in doc["headers"]:
            fields.setdefault(name.lower(), []).append(value)
        # RFC 9113 §8.2.3: crumbs joined with "; " going to HTTP/1.1.
        self.assertEqual(fields["cookie"], ["a=1; b=2"])
        self.assertEqual(fields["host"], ["%s:%d" % (NAME, self.tls_port)])  # :authority
        self.assertEqual(fields["x-forwarded-proto"], ["https"])
        self.assertEqual(fields["x-forwarded-host"], ["%s:%d" % (NAME, self.tls_port)])
        body = os.urandom(3 * 1024 * 1024 + 17)
        for extra in ((), ("-H", "Transfer-Encoding:")):
            rc, out, err = self.h2c("/api/echo/up", "--data-binary", "@-", *extra, data=body)
            self.assertEqual(rc, 0, err)
            doc = json.loads(out)
            self.assertEqual(doc["method"], "POST")
            self.assertEqual(doc["body_length"], len(body))
            self.assertEqual(doc["body_sha256"], hashlib.sha256(body).hexdigest())

    # ---- multiplexing ------------------------------------------------------

    def test_many_concurrent_streams_on_one_connection(self):
        urls = []
        for i in range(100):
            path = ("/small.txt", "/ret", "/api/echo/%d" % i, "/big.bin")[i % 4]
            # nghttp fetches a URI once: each gets a query of its own.
            urls.append("http://127.0.0.1:%d%s?n=%d" % (self.weir.port, path, i))
        p = subprocess.run(["nghttp", "-n", "-s", "-m", "1", "-t", "30"] + urls[:1],
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        # -a-less nghttp opens one connection for all URIs on the same origin.
        p = subprocess.run(["nghttp", "-n", "-s", "-t", "60"] + urls, capture_output=True,
                           timeout=90)
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 0, p.stderr.decode() + out)
        # The stats table: one row per stream, all answered.
        rows = re.findall(r"^\s*\d+\s+\+\S+\s+\+\S+\s+\S+\s+(\d+)\s", out, re.M)
        self.assertEqual(len(rows), 100, out)
        self.assertEqual(set(rows), {"200"}, out)

    # ---- negotiation ---------------------------------------------------------

    def test_h1_clients_on_h2c_port_still_served(self):
        r = self.get("/ret")
        self.assertEqual((r.status, r.body), (200, b"hello over h2"))
        rc, out, err = curl("--http1.1", "http://127.0.0.1:%d/ret" % self.weir.port)
        self.assertEqual(out, b"hello over h2")

    def test_no_h2c_without_the_flag(self):
        rc, out, err = curl("--http2-prior-knowledge",
                            "http://127.0.0.1:%d/ret" % self.plain_port)
        self.assertNotEqual(out, b"hello over h2")

    def test_alpn_prefers_h2(self):
        ctx = tlstest.client_context(alpn=("http/1.1", "h2"))
        with tlstest.tls_client(self.tls_port, ctx=ctx) as c:
            self.assertEqual(c.sock.selected_alpn_protocol(), "h2")
        self.assertEqual(self.status_of(self.h2, "/ret", "--http1.1"), "1.1 200")

    # ---- access log -----------------------------------------------------------

    def test_access_log_says_http2(self):
        # Referer and User-Agent come from the stream's fields (indexed once
        # the head is complete, issue 18).
        rc, out, err = self.h2c("/ret?logme=1", "-e", "http://ref.test/page", "-A", "ua-h2/1")
        self.assertEqual(rc, 0, err)
        lines = self.access_lines("/ret?logme=1")
        self.assertTrue(lines, "no access log line")
        self.assertIn('"GET /ret?logme=1 HTTP/2.0" 200 13', lines[0])
        self.assertIn('"http://ref.test/page" "ua-h2/1"', lines[0])

    # ---- metrics ----------------------------------------------------------------

    def metric(self, name):
        rc, out, err = curl("http://127.0.0.1:%d/metrics" % self.admin_port)
        self.assertEqual(rc, 0, err)
        m = re.search(r"^%s (\d+)$" % re.escape(name), out.decode(), re.M)
        self.assertIsNotNone(m, "%s missing" % name)
        return int(m.group(1))

    def metric_reaches(self, name, want):
        """Polls name until it equals want (a stream is counted once it is
        written and reaped); returns it."""
        wait_until(lambda: self.metric(name) == want, "%s == %d" % (name, want))
        return want

    def test_metrics_by_protocol(self):
        conns, reqs = (self.metric("weir_http2_connections_total"),
                       self.metric("weir_http2_requests_total"))
        rc, out, err = self.h2c("/ret")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.metric_reaches("weir_http2_connections_total", conns + 1),
                         conns + 1)
        self.assertEqual(self.metric_reaches("weir_http2_requests_total", reqs + 1), reqs + 1)
        self.get("/ret")  # HTTP/1.1: not counted as HTTP/2
        self.assertEqual(self.metric("weir_http2_requests_total"), reqs + 1)
        self.assertEqual(self.metric_reaches("weir_http2_streams_open", 0), 0)

ALPN_OFF = """[server]
listen = 127.0.0.1:@PORT@ tls
workers = 1
access_log = off
error_log = stderr

[tls]
cert = @CRT@
key = @KEY@
alpn = http/1.1

[route ret]
match = exact:/ret
return = 200 h1 only
"""


@unittest.skipUnless(shutil.which("curl"), "curl is not installed")
@unittest.skipUnless(shutil.which("curl") and shutil.which("nghttp"),
                     "curl and nghttp (nghttp2-client) are needed")
class JsonLogTest(weirtest.WeirCase):
    """The json access log names each HTTP/2 request's stream; HTTP/1.1
    lines have no stream_id."""
    INI = INI.replace("[server]\n", "[server]\naccess_log_format = json\n", 1)

    @classmethod
    def make_subst(cls, tmp):
        return H2Test.make_subst.__func__(cls, tmp)

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.app.stop()

    def lines(self, needle, count):
        path = os.path.join(self.tmp, "access.log")
        def probe():
            try:
                with open(path) as f:
                    found = [json.loads(l) for l in f if needle in l]
            except OSError:
                return None
            return found if len(found) >= count else None
        return wait_until(probe, "%d access log lines with %s" % (count, needle))

    def test_stream_ids_in_json_lines(self):
        # Two requests on one HTTP/2 connection (nghttp opens one for all
        # URIs of an origin), one stream each. (curl 7.88 cannot reuse a
        # prior-knowledge connection: its bug #10634.)
        p = subprocess.run(["nghttp", "-n", "-t", "30",
                            "http://127.0.0.1:%d/ret?j=1" % self.weir.port,
                            "http://127.0.0.1:%d/ret?j=2" % self.weir.port],
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        rc, out, err = curl("--http1.1", "-o", "/dev/null",
                            "http://127.0.0.1:%d/ret?j=3" % self.weir.port)
        self.assertEqual(rc, 0, err)
        docs = self.lines("/ret?j=", 3)
        by_uri = {d["uri"]: d for d in docs}
        self.assertEqual(by_uri["/ret?j=1"]["protocol"], "HTTP/2.0")
        # nghttp numbers its requests after the streams of its priority
        # tree (13, 15 with nghttp 1.52): client streams, odd and distinct.
        ids = [by_uri["/ret?j=1"]["stream_id"], by_uri["/ret?j=2"]["stream_id"]]
        self.assertTrue(all(isinstance(i, int) and i > 0 and i % 2 == 1 for i in ids), ids)
        self.assertEqual(abs(ids[0] - ids[1]), 2, ids)
        self.assertEqual(by_uri["/ret?j=3"]["protocol"], "HTTP/1.1")
        self.assertNotIn("stream_id", by_uri["/ret?j=3"])


class AlpnOffTest(weirtest.WeirCase):
    INI = ALPN_OFF

    @classmethod
    def make_subst(cls, tmp):
        cls.crt, key = tlstest.make_cert(tmp, "site", NAME)
        return {"CRT": cls.crt, "KEY": key}

    def test_alpn_http11_only_turns_h2_off(self):
        ctx = tlstest.client_context(alpn=("h2", "http/1.1"))
        with tlstest.tls_client(self.weir.port, ctx=ctx) as c:
            self.assertEqual(c.sock.selected_alpn_protocol(), "http/1.1")
        rc, out, err = curl("--http2", "--cacert", self.crt, "--resolve",
                            "%s:%d:127.0.0.1" % (NAME, self.weir.port), "-w", " %{http_version}",
                            "https://%s:%d/ret" % (NAME, self.weir.port))
        self.assertEqual((rc, out), (0, b"h1 only 1.1"), err)


if __name__ == "__main__":
    weirtest.main()
