#!/usr/bin/env python3
"""Issue 16: responses compressed on the fly (gzip, br, zstd).

Every coding decodes (Python's gzip, Debian's python3-brotli and
python3-zstandard) to the exact original by SHA-256, for static files
(small: compressed once and kept, the cache fill counted once; large:
streamed) and proxied answers (Content-Length, chunked, close-delimited, a
100 MiB stream with weir's RSS bounded). Negotiation by q-values and the
preference order; every "never compressed" case; Vary, weak ETag and 304
against either form; HEAD has GET's fields; HTTP/1.0 (close-delimited);
HTTP/2 (h2c) and TLS; the metrics."""

import sys
sys.dont_write_bytecode = True

import gzip
import hashlib
import os
import shutil
import socket
import subprocess
import threading
import unittest
import zlib

import tlstest
import upstreams
import weirtest
from polling import admin_get, metric

try:
    import brotli
    import zstandard
except ImportError:  # a python3 that is not Debian's (pyenv, a venv)
    if os.path.exists("/usr/bin/python3") and not os.environ.get("WEIR_CMP_REEXEC"):
        os.environ["WEIR_CMP_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

INI = """[server]
listen = 127.0.0.1:@PORT@ h2c
listen = 127.0.0.1:@TLSPORT@ tls
workers = 1
access_log = off
error_log = stderr

[admin]
listen = 127.0.0.1:@ADMIN@

[tls]
cert = @CRT@
key = @KEY@

[compression]
cache_file_max = 256k

[upstream app]
server = @APP@

[route api]
match = prefix:/api/
strip_prefix = /api
proxy = app
compress = on

[route gzonly]
match = prefix:/gz/
strip_prefix = /gz
proxy = app
compress = gzip
compress_types = text/plain

[route plain]
match = prefix:/plain/
strip_prefix = /plain
proxy = app

[route text]
match = exact:/ret
return = 200 @RETBODY@
compress = on

[route files]
match = prefix:/
root = @TMP@/root
compress = on
add_header = X-Content-Type-Options: nosniff
"""

SMALL = 40 * 1024      # under cache_file_max: compressed once, kept
LARGE = 3 * 1024 * 1024  # over it: compressed as it is sent
STREAM = 100 * 1024 * 1024
RSS_GROWTH_KIB = 48 * 1024
RET_BODY = ("ok " * 600).strip()  # 1799 bytes, text/plain


def text_bytes(n, seed=1):
    """Compressible but not trivial text."""
    words = [b"weir", b"proxy", b"static", b"<p>", b"</p>", b"route", b"json", b"fast", b"\n"]
    out = bytearray()
    x = seed
    while len(out) < n:
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out += words[x % len(words)] + b" "
    return bytes(out[:n])


def decode(coding, data):
    if coding == "gzip":
        return gzip.decompress(data)
    if coding == "br":
        return brotli.decompress(data)
    if coding == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    assert coding is None, coding
    return data


def sha(b):
    return hashlib.sha256(b).hexdigest()


class CompressionTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.app = upstreams.Backend("app", keep_body=False)
        root = os.path.join(tmp, "root")
        os.makedirs(root)
        cls.small = text_bytes(SMALL, 1)
        cls.large = text_bytes(LARGE, 2)
        for name, data in (("small.html", cls.small), ("large.txt", cls.large),
                           ("pic.png", cls.small), ("tiny.css", b"body{}\n"),
                           ("once.html", cls.small)):
            with open(os.path.join(root, name), "wb") as f:
                f.write(data)
        cls.admin_port = weirtest.free_port()
        cls.tls_port = weirtest.free_port()
        crt, key = tlstest.make_cert(tmp, "site", "localhost")
        return {"APP": cls.app.addr, "ADMIN": cls.admin_port, "TLSPORT": cls.tls_port,
                "CRT": crt, "KEY": key, "TMP": tmp, "RETBODY": RET_BODY}

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.app.stop()

    def fetch(self, target, ae=None, method="GET", headers=(), version=None):
        hs = list(headers)
        if ae is not None:
            hs.append(("Accept-Encoding", ae))
        with self.client(timeout=60) as c:
            req = weirtest.request_bytes(method, target, headers=hs)
            if version == "1.0":
                req = req.replace(b" HTTP/1.1\r\n", b" HTTP/1.0\r\n", 1)
            c.send(req)
            return c.read_response(method)

    def counter(self, name, coding):
        return metric(self.admin_port, '%s{coding="%s"}' % (name, coding))

    def assert_coded(self, r, coding, want):
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Content-Encoding"), coding)
        self.assertTrue(r.has_token("Vary", "accept-encoding"), r)
        self.assertEqual(sha(decode(coding, r.body)), sha(want))

    # ---- static ---------------------------------------------------------

    def test_static_small_compressed_once(self):
        for coding in ("gzip", "br", "zstd"):
            fills = self.counter("weir_compress_cache_fills_total", coding)
            for _ in range(3):
                r = self.fetch("/once.html", ae=coding)
                self.assert_coded(r, coding, self.small)
                self.assertEqual(int(r.header("Content-Length")), len(r.body))
                self.assertTrue(r.header("ETag").startswith('W/"'))
            self.assertEqual(self.counter("weir_compress_cache_fills_total", coding), fills + 1)
            self.assertLess(len(r.body), SMALL // 3)

    def test_static_large_streamed(self):
        for coding in ("gzip", "br", "zstd"):
            r = self.fetch("/large.txt", ae=coding)
            self.assert_coded(r, coding, self.large)
            self.assertIsNone(r.header("Content-Length"))
            self.assertEqual(r.header("Transfer-Encoding"), "chunked")
            # the route's add_header, as on every answer of the route
            self.assertEqual(r.header("X-Content-Type-Options"), "nosniff")

    def test_negotiation(self):
        cases = [
            (None, None), ("", None), ("gzip", "gzip"), ("x-gzip", "gzip"),
            ("gzip, br", "br"), ("gzip, br, zstd", "zstd"), ("gzip;q=1, zstd;q=0.5", "gzip"),
            ("*", "zstd"), ("*;q=0.5, zstd;q=0", "br"), ("deflate", None),
            ("gzip;q=0", None), ("identity;q=1, gzip;q=0.5", None),
            ("identity;q=0", None),  # nothing weir makes: identity anyway, never 406
        ]
        for ae, want in cases:
            r = self.fetch("/small.html", ae=ae)
            self.assertEqual(r.status, 200, ae)
            self.assertEqual(r.header("Content-Encoding"), want, ae)
            self.assertTrue(r.has_token("Vary", "accept-encoding"), ae)
            self.assertEqual(decode(want, r.body), self.small, ae)

    def test_static_never_compressed(self):
        # a type not listed, a body under compress_min_length: no Vary either
        for target in ("/pic.png", "/tiny.css"):
            r = self.fetch(target, ae="gzip")
            self.assertIsNone(r.header("Content-Encoding"), target)
            self.assertFalse(r.has_token("Vary", "accept-encoding"), target)
        # a Range request: served byte-exact from the identity file
        r = self.fetch("/large.txt", ae="gzip", headers=[("Range", "bytes=100-199")])
        self.assertEqual(r.status, 206)
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.body, self.large[100:200])
        r = self.fetch("/large.txt", ae="gzip", headers=[("Range", "bytes=0-9, 20-29")])
        self.assertEqual(r.status, 200)  # several ranges: the whole file, identity
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.body, self.large)

    def test_etag_and_304(self):
        plain = self.fetch("/small.html")
        coded = self.fetch("/small.html", ae="gzip")
        strong, weak = plain.header("ETag"), coded.header("ETag")
        self.assertTrue(strong.startswith('"'))
        self.assertEqual(weak, "W/" + strong)
        for tag in (strong, weak):
            for ae in ("gzip", None):
                r = self.fetch("/small.html", ae=ae, headers=[("If-None-Match", tag)])
                self.assertEqual(r.status, 304, (tag, ae))
                self.assertEqual(r.body, b"")
                self.assertEqual(r.header("ETag"), weak if ae else strong)
                self.assertTrue(r.has_token("Vary", "accept-encoding"))
        # If-Match compares strongly: the weak tag never matches
        r = self.fetch("/small.html", ae="gzip", headers=[("If-Match", weak)])
        self.assertEqual(r.status, 412)

    def test_head_matches_get(self):
        for target in ("/small.html", "/large.txt", "/api/big?size=50000&type=text/html"):
            get = self.fetch(target, ae="br")
            head = self.fetch(target, ae="br", method="HEAD")
            self.assertEqual(head.status, 200)
            self.assertEqual(head.body, b"")
            for name in ("Content-Encoding", "Vary", "ETag", "Content-Type"):
                self.assertEqual(head.header(name), get.header(name), (target, name))
            self.assertIsNone(head.header("Content-Length"), target)

    def test_http10_client(self):
        r = self.fetch("/large.txt", ae="gzip", version="1.0")
        self.assertEqual(r.header("Connection"), "close")
        self.assert_coded(r, "gzip", self.large)
        r = self.fetch("/api/chunked?size=200000&n=7&type=text/plain", ae="zstd", version="1.0")
        self.assert_coded(r, "zstd", upstreams.pattern_bytes(200000))

    # ---- proxied ----------------------------------------------------------

    def test_proxied_each_framing(self):
        size = 300000
        want = upstreams.pattern_bytes(size)
        for path in ("big", "chunked", "close"):
            for coding in ("gzip", "br", "zstd"):
                r = self.fetch("/api/%s?size=%d&n=9&type=application/json" % (path, size),
                               ae=coding)
                self.assert_coded(r, coding, want)
                self.assertIsNone(r.header("Content-Length"))

    def test_proxied_never_compressed(self):
        size = 50000
        want = upstreams.pattern_bytes(size)
        for query, why in (("type=image/png", "type"),
                           ("type=text/html&ce=br", "coded already"),
                           ("type=text/html&cc=no-transform", "no-transform")):
            r = self.fetch("/api/big?size=%d&%s" % (size, query), ae="gzip")
            self.assertEqual(r.header("Content-Encoding"), "br" if "ce=" in query else None, why)
            self.assertEqual(r.body, want, why)
            self.assertEqual(int(r.header("Content-Length")), size, why)
        # under compress_min_length
        r = self.fetch("/api/big?size=500&type=text/html", ae="gzip")
        self.assertIsNone(r.header("Content-Encoding"))
        # a route without compress: nothing, no Vary
        r = self.fetch("/plain/big?size=50000&type=text/html", ae="gzip")
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertFalse(r.has_token("Vary", "accept-encoding"))
        # compress = gzip and compress_types = text/plain
        r = self.fetch("/gz/big?size=50000&type=text/plain", ae="br, gzip")
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        r = self.fetch("/gz/big?size=50000&type=text/html", ae="gzip")
        self.assertIsNone(r.header("Content-Encoding"))

    def test_proxied_small_pieces_flushed(self):
        """An event stream's pieces reach the client as they come, each
        decodable at once, not when the stream ends: the upstream sends its
        next piece only once the client decoded the last."""
        self.app.drip_go.clear()
        with socket.create_connection(("127.0.0.1", self.weir.port), timeout=10) as s:
            s.sendall(weirtest.request_bytes(
                "GET", "/api/drip?n=3", headers=[("Accept-Encoding", "gzip")]))
            raw = b""

            def decoded():
                """The chunks received so far, de-chunked and inflated."""
                head, sep, body = raw.partition(b"\r\n\r\n")
                if not sep:
                    return b""
                self.assertIn(b"Content-Encoding: gzip", head)
                d, got = zlib.decompressobj(16 + 15), b""
                for _ in range(100):
                    line, sep, body = body.partition(b"\r\n")
                    if not sep or not line:
                        break
                    size = int(line, 16)
                    got += d.decompress(body[:size])
                    body = body[size + 2:]
                return got

            for i in range(3):
                for _ in range(1000):
                    if b"event %d" % i in decoded():
                        break
                    raw += s.recv(65536)
                self.assertIn(b"data: event %d" % i, decoded())
                self.assertNotIn(b"event %d" % (i + 1), decoded())
                self.app.drip_go.set()  # the next piece

    def test_proxied_etag_made_weak(self):
        r = self.fetch("/api/big?size=50000&type=text/html&etag=v1", ae="gzip")
        self.assertEqual(r.header("ETag"), 'W/"v1"')
        r = self.fetch("/api/big?size=50000&type=text/html&etag=v1")
        self.assertEqual(r.header("ETag"), '"v1"')

    def test_return_body(self):
        r = self.fetch("/ret", ae="gzip")
        self.assert_coded(r, "gzip", RET_BODY.encode())

    def test_proxied_100_mib_streamed(self):
        pid = self.weir.pid()
        before = weirtest.rss_kib(pid)
        peak = [before]
        done = threading.Event()

        def sample():
            for _ in range(12000):
                if done.wait(0.01):
                    return
                peak[0] = max(peak[0], weirtest.rss_kib(pid))

        t = threading.Thread(target=sample, daemon=True)
        t.start()
        try:
            s = socket.create_connection(("127.0.0.1", self.weir.port), timeout=60)
            s.sendall(weirtest.request_bytes(
                "GET", "/api/chunked?size=%d&n=1600&type=text/plain" % STREAM,
                headers=[("Accept-Encoding", "gzip"), ("Connection", "close")]))
            zlib_stream = zlib.decompressobj(16 + 15)
            raw = b""
            h = hashlib.sha256()
            n = 0
            head_done = False
            buf = b""
            for _ in range(10 ** 6):
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                if not head_done:
                    buf += chunk
                    if b"\r\n\r\n" not in buf:
                        continue
                    head, _, chunk = buf.partition(b"\r\n\r\n")
                    self.assertIn(b"Content-Encoding: gzip", head)
                    self.assertIn(b"Connection: close", head)
                    head_done = True
                raw += chunk
                # de-chunk what is complete, then inflate it
                for _ in range(10 ** 6):
                    line_end = raw.find(b"\r\n")
                    if line_end < 0:
                        break
                    size = int(raw[:line_end].split(b";")[0], 16)
                    if len(raw) < line_end + 2 + size + 2:
                        break
                    data = raw[line_end + 2:line_end + 2 + size]
                    raw = raw[line_end + 2 + size + 2:]
                    out = zlib_stream.decompress(data)
                    h.update(out)
                    n += len(out)
                    if size == 0:
                        break
            s.close()
        finally:
            done.set()
            t.join(5)
        self.assertEqual(n, STREAM)
        self.assertEqual(h.hexdigest(), upstreams.pattern_sha256(STREAM))
        print("\n  100 MiB gzip stream: weir RSS %d -> peak %d KiB" % (before, peak[0]))
        self.assertLess(peak[0] - before, RSS_GROWTH_KIB)

    # ---- other front ends, metrics ----------------------------------------

    @unittest.skipUnless(shutil.which("curl"), "curl is needed")
    def test_http2(self):
        for target, want in (("/small.html", self.small), ("/large.txt", self.large),
                             ("/api/chunked?size=300000&type=text/plain",
                              upstreams.pattern_bytes(300000))):
            p = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--max-time", "30",
                                "-H", "Accept-Encoding: br", "-D", "-", "-o",
                                os.path.join(self.tmp, "h2.out"),
                                "http://127.0.0.1:%d%s" % (self.weir.port, target)],
                               capture_output=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            head = p.stdout.decode().lower()
            self.assertIn("http/2 200", head)
            self.assertIn("content-encoding: br", head)
            with open(os.path.join(self.tmp, "h2.out"), "rb") as f:
                self.assertEqual(sha(brotli.decompress(f.read())), sha(want), target)

    def test_tls(self):
        for target, want in (("/large.txt", self.large),
                             ("/api/close?size=300000&type=text/plain",
                              upstreams.pattern_bytes(300000))):
            r = tlstest.tls_get(self.tls_port, target, headers=[("Accept-Encoding", "zstd")])
            self.assert_coded(r, "zstd", want)

    def test_metrics(self):
        before_in = self.counter("weir_compress_in_bytes_total", "gzip")
        before_out = self.counter("weir_compress_out_bytes_total", "gzip")
        before_n = self.counter("weir_compressed_responses_total", "gzip")
        r = self.fetch("/large.txt", ae="gzip")
        self.assertEqual(self.counter("weir_compressed_responses_total", "gzip"), before_n + 1)
        self.assertEqual(self.counter("weir_compress_in_bytes_total", "gzip") - before_in, LARGE)
        self.assertEqual(self.counter("weir_compress_out_bytes_total", "gzip") - before_out,
                         len(r.body))
        text = admin_get(self.admin_port, "/metrics")
        self.assertRegex(text, r"(?m)^weir_compress_memory_bytes \d+$")


class CacheBudgetTest(weirtest.WeirCase):
    """[compression] cache_size too small for a copy: the file is still
    compressed, as it is sent (chunked), and no copy is kept."""
    INI = """[server]
listen = 127.0.0.1:@PORT@
workers = 1
error_log = stderr

[admin]
listen = 127.0.0.1:@ADMIN@

[compression]
cache_size = 1k

[route files]
match = prefix:/
root = @TMP@/root
compress = on
"""

    @classmethod
    def make_subst(cls, tmp):
        os.makedirs(os.path.join(tmp, "root"))
        cls.page = text_bytes(SMALL, 3)
        with open(os.path.join(tmp, "root", "page.html"), "wb") as f:
            f.write(cls.page)
        cls.admin_port = weirtest.free_port()
        return {"ADMIN": cls.admin_port, "TMP": tmp}

    def test_over_budget_streams(self):
        for _ in range(2):
            r = self.get("/page.html", headers=[("Accept-Encoding", "gzip")])
            self.assertEqual(r.header("Content-Encoding"), "gzip")
            self.assertEqual(r.header("Transfer-Encoding"), "chunked")
            self.assertEqual(gzip.decompress(r.body), self.page)
        self.assertEqual(metric(self.admin_port,
                                'weir_compress_cache_fills_total{coding="gzip"}'), 0)


if __name__ == "__main__":
    weirtest.main()
