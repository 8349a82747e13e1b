#!/usr/bin/env python3
"""Issue 20: the HTTP cache on a proxied route, against a scripted origin
that counts the requests it gets per path.

A response is stored only as RFC 9111 allows (private, no-store and
Set-Cookie are not), served with Age and Cache-Status, kept apart by Vary,
answered 304 from the stored validators; concurrent misses on one key make
one upstream request; a stale response stands in for a failing server
within stale-if-error; objects over max_object_size pass through; a reload
with the section unchanged keeps what is stored. Everything waits on
/metrics or on the origin's counters, never on a fixed sleep."""

import sys
sys.dont_write_bytecode = True

import http.server
import re
import socket
import shutil
import tempfile
import threading
import time
import unittest

import weirtest
from h2test import HAVE_H2, RawH2, get as h2_get
from polling import admin_get, wait_until
from weirtest import SERVER, request_bytes

BIG = 200 * 1024  # over max_object_size below


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
HUGE = 200 << 20  # the 200 MiB object
CHUNKY = 2 * 1000 * 1000  # a chunked body 30 times max_object_size


class Origin:
    """An HTTP/1.1 origin: counts requests per path; /slow/* answers once
    release is set; /flaky/* answers 500 once failing is set."""

    def __init__(self):
        self.counts = {}
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.release_body = threading.Event()
        self.release_held = threading.Event()
        self.release_chunky = threading.Event()
        self.failing = threading.Event()
        self.seen = {}  # path -> request headers of the last request
        self.killed = False
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self.do_GET()

            def do_GET(self):
                if origin.killed:
                    self.close_connection = True  # killed: no answer, ever
                    return
                with origin.lock:
                    n = origin.counts.get(self.path, 0) + 1
                    origin.counts[self.path] = n
                    origin.seen[self.path] = dict(self.headers)
                if self.path.startswith("/c/halfway"):
                    origin.halfway(self, n)
                    return
                if self.path.startswith("/c/chunky"):
                    origin.chunky(self, n)
                    return
                if self.path.startswith("/c/huge"):
                    origin.huge(self)
                    return
                status, headers, body = origin.answer(self, n)
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_DELETE(self):
                self.do_GET()

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                self.rfile.read(length)
                self.do_GET()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.server.server_address[1]

    def count(self, path):
        with self.lock:
            return self.counts.get(path, 0)

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def halfway(self, h, n):
        """Half the body, then the rest once release_body is set."""
        body = b"h" * 40000
        h.send_response(200)
        h.send_header("Cache-Control", "max-age=60")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body[:20000])
        h.wfile.flush()
        self.release_body.wait(20)
        h.wfile.write(body[20000:])

    def huge(self, h):
        """HUGE bytes with Content-Length, cacheable but over max_object_size."""
        h.send_response(200)
        h.send_header("Cache-Control", "max-age=60")
        h.send_header("Content-Length", str(HUGE))
        h.end_headers()
        block = b"h" * (1 << 20)
        for _ in range(0 if h.command == "HEAD" else HUGE // len(block)):
            h.wfile.write(block)

    def chunky(self, h, n):
        """BIG bytes in chunks, no Content-Length; the first request's body
        waits for release_chunky after its first chunk."""
        h.send_response(200)
        h.send_header("Cache-Control", "max-age=60")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        piece = b"c" * 10000
        for i in range(CHUNKY // len(piece)):
            h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            h.wfile.flush()
            if i == 0 and n == 1:
                self.release_chunky.wait(20)
        h.wfile.write(b"0\r\n\r\n")

    def answer(self, h, n):
        path = h.path
        body = ("%s #%d" % (path, n)).encode()
        fresh = [("Cache-Control", "max-age=60"), ("ETag", '"v%d"' % n),
                 ("Last-Modified", "Mon, 30 Nov 2026 10:00:00 GMT"),
                 ("Content-Type", "text/plain")]
        if path.startswith("/c/private"):
            return 200, [("Cache-Control", "private, max-age=60")], body
        if path.startswith("/c/nostore"):
            return 200, [("Cache-Control", "no-store")], body
        if path.startswith("/c/cookie"):
            return 200, fresh + [("Set-Cookie", "a=b")], body
        if path.startswith("/c/vary"):
            ae = h.headers.get("Accept-Encoding", "-")
            return 200, fresh + [("Vary", "Accept-Encoding")], (ae + " #%d" % n).encode()
        if path.startswith("/c/big"):
            return 200, fresh, b"x" * BIG
        if path.startswith("/s/held"):
            # the first request waits for release_held; later ones answer now
            is_released = n > 1 or self.release_held.wait(20)
            return 200, fresh, (body if is_released else b"never released")
        if path.startswith("/c/slow"):
            origin_wait = self.release.wait(20)
            return 200, fresh, (body if origin_wait else b"never released")
        if path.startswith("/c/flaky"):
            if self.failing.is_set():
                return 500, [("Content-Type", "text/plain")], b"origin down"
            return 200, [("Cache-Control", "max-age=1, stale-if-error=600")], body
        if path.startswith("/c/reval"):
            if h.headers.get("If-None-Match") == '"r1"':
                return 304, [("Cache-Control", "max-age=60"), ("ETag", '"r1"'),
                             ("X-Fresh", "%d" % n)], b""
            return 200, [("Cache-Control", "max-age=1"), ("ETag", '"r1"'),
                         ("X-Fresh", "%d" % n)], body
        if path.startswith("/c/swr"):
            return 200, [("Cache-Control", "max-age=2, stale-while-revalidate=60")], body
        if path.startswith("/c/range"):
            return 200, fresh, b"0123456789" * 10
        if path.startswith("/c/poster") and h.command == "POST":
            return 201, [("Location", "http://localhost/c/target"),
                         ("Content-Location", "http://elsewhere.example/c/kept")], body
        if path.startswith("/c/nothing"):
            return 200, [], body  # no freshness, no validator: not stored
        return 200, fresh, body


INI = SERVER + """
[admin]
listen = 127.0.0.1:@ADMIN@

[cache pages]
max_size = 8m
max_object_size = 64k

[upstream app]
server = @ORIGIN@

[route cached]
match = prefix:/c/
proxy = app
cache = pages
cache_lock_timeout = 30s
add_header = X-Route: cached

[route short]
match = prefix:/s/
proxy = app
cache = pages
cache_lock_timeout = 300ms

[route plain]
match = prefix:/
proxy = app
"""


class CacheTest(weirtest.WeirCase):
    INI = INI.replace("workers = 1", "workers = 2").replace("@PORT@\n", "@PORT@ h2c\n", 1)

    @classmethod
    def setUpClass(cls):
        cls.origin = Origin()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.origin.stop()

    @classmethod
    def make_subst(cls, tmp):
        cls.admin_port = weirtest.free_port()
        return {"ORIGIN": cls.origin.addr, "ADMIN": cls.admin_port}

    def results(self):
        text = admin_get(self.admin_port, "/metrics")
        return {m.group(1): int(m.group(2)) for m in re.finditer(
            r'^weir_cache_requests_total\{result="(\w+)"\} (\d+)$', text, re.M)}

    def test_miss_then_hit(self):
        r1 = self.get("/c/page")
        self.assertEqual(r1.status, 200)
        self.assertEqual(r1.body, b"/c/page #1")
        self.assertIn("fwd=uri-miss", r1.header("Cache-Status"))
        self.assertIn("stored", r1.header("Cache-Status"))
        r2 = self.get("/c/page")
        self.assertEqual(r2.body, b"/c/page #1")
        self.assertEqual(self.origin.count("/c/page"), 1)
        self.assertRegex(r2.header("Cache-Status"), r"^pages; hit; ttl=\d+$")
        self.assertIsNotNone(r2.header("Age"))
        self.assertEqual(r2.header("ETag"), '"v1"')
        self.assertEqual(r2.header("Content-Type"), "text/plain")
        self.assertEqual(r2.header("Content-Length"), str(len(b"/c/page #1")))
        self.assertEqual(r2.header("X-Route"), "cached")  # the route's rules on hits too
        self.assertEqual(len(r2.header_all("Date")), 1)
        self.assertGreaterEqual(self.results()["hit"], 1)

    def test_query_is_part_of_the_key(self):
        self.assertEqual(self.get("/c/q?a=1").body, b"/c/q?a=1 #1")
        self.assertEqual(self.get("/c/q?a=2").body, b"/c/q?a=2 #1")
        self.assertEqual(self.get("/c/q?a=1").body, b"/c/q?a=1 #1")

    def test_not_stored(self):
        for path in ("/c/private", "/c/nostore", "/c/cookie", "/c/nothing"):
            self.get(path)
            r = self.get(path)
            self.assertEqual(r.body, ("%s #2" % path).encode(), path)
            self.assertNotIn("hit", r.header("Cache-Status").split("; ")[1:2], path)
        self.assertIn("detail=", self.get("/c/private").header("Cache-Status"))

    def test_vary_keeps_variants_apart(self):
        g = self.get("/c/vary", headers=[("Accept-Encoding", "gzip")])
        i = self.get("/c/vary", headers=[("Accept-Encoding", "identity")])
        self.assertEqual(g.body, b"gzip #1")
        self.assertEqual(i.body, b"identity #2")
        self.assertEqual(self.get("/c/vary", headers=[("Accept-Encoding", "gzip")]).body,
                         b"gzip #1")
        self.assertEqual(self.get("/c/vary", headers=[("Accept-Encoding", "identity")]).body,
                         b"identity #2")
        self.assertEqual(self.origin.count("/c/vary"), 2)

    def test_conditional_and_head_from_the_store(self):
        self.get("/c/cond")
        r = self.get("/c/cond", headers=[("If-None-Match", '"v1"')])
        self.assertEqual(r.status, 304)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.header("ETag"), '"v1"')
        self.assertIsNone(r.header("Content-Type"))
        r = self.get("/c/cond", headers=[("If-Modified-Since", "Tue, 01 Dec 2026 10:00:00 GMT")])
        self.assertEqual(r.status, 304)
        h = self.get("/c/cond", method="HEAD")
        self.assertEqual(h.status, 200)
        self.assertEqual(h.header("Content-Length"), str(len(b"/c/cond #1")))
        self.assertIn("hit", h.header("Cache-Status"))
        self.assertEqual(self.origin.count("/c/cond"), 1)

    def test_request_directives(self):
        r = self.get("/c/oic", headers=[("Cache-Control", "only-if-cached")])
        self.assertEqual(r.status, 504)
        self.assertEqual(self.origin.count("/c/oic"), 0)
        self.get("/c/nc")
        r = self.get("/c/nc", headers=[("Cache-Control", "no-cache")])
        self.assertEqual(r.body, b"/c/nc #2")
        self.assertIn("fwd=request", r.header("Cache-Status"))
        self.assertEqual(self.get("/c/nc").body, b"/c/nc #2")  # the refetch replaced it

    def test_post_is_not_cached(self):
        r = self.get("/c/post", method="POST", body=b"x")
        self.assertIn("fwd=method", r.header("Cache-Status"))
        self.get("/c/post")
        self.assertEqual(self.get("/c/post").body, b"/c/post #2")

    def test_big_object_passes_through(self):
        for _ in range(2):
            r = self.get("/c/big")
            self.assertEqual(len(r.body), BIG)
        self.assertEqual(self.origin.count("/c/big"), 2)

    def test_cold_burst_makes_one_upstream_request(self):
        n = 100
        before = self.results().get("collapsed", 0)
        out = [None] * n

        def fetch(i):
            try:
                with self.weir.client(timeout=30) as c:
                    c.send(request_bytes("GET", "/c/slow"))
                    out[i] = c.read_response()
            except Exception as e:  # reported below
                out[i] = e
        threads = [threading.Thread(target=fetch, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        wait_until(lambda: self.results().get("collapsed", 0) - before >= n - 1,
                   "%d requests waiting for the first one's response" % (n - 1), timeout=20)
        self.origin.release.set()
        for t in threads:
            t.join(30)
        for r in out:
            self.assertIsInstance(r, weirtest.Response, repr(r))
            self.assertEqual(r.body, b"/c/slow #1")
        self.assertEqual(self.origin.count("/c/slow"), 1)
        self.assertEqual(sum("collapsed" in r.header("Cache-Status") for r in out), n - 1)

    def test_lock_timeout_goes_upstream(self):
        """A request waiting for another's fetch of its key goes upstream
        itself after cache_lock_timeout, and stores nothing."""
        before = self.results().get("lock_timeout", 0)
        first = [None]

        def fetch():
            with self.weir.client(timeout=30) as c:
                c.send(request_bytes("GET", "/s/held"))
                first[0] = c.read_response()
        t = threading.Thread(target=fetch)
        t.start()
        try:
            wait_until(lambda: self.origin.count("/s/held") == 1, "the first request upstream")
            r = self.get("/s/held")  # waits 300 ms, then fetches it itself
            self.assertEqual(r.body, b"/s/held #2")
            self.assertIn("detail=lock-timeout", r.header("Cache-Status"))
            self.assertNotIn("stored", r.header("Cache-Status"))
            self.assertEqual(self.results()["lock_timeout"], before + 1)
        finally:
            self.origin.release_held.set()
            t.join(30)
        self.assertEqual(first[0].body, b"/s/held #1")
        self.assertIn("stored", first[0].header("Cache-Status"))
        self.assertEqual(self.get("/s/held").body, b"/s/held #1")  # the filler's, stored

    def test_stale_if_error(self):
        self.assertEqual(self.get("/c/flaky").body, b"/c/flaky #1")
        # only-if-cached asks the store alone: 504 once the entry is stale
        wait_until(lambda: self.get("/c/flaky",
                                    headers=[("Cache-Control", "only-if-cached")]).status == 504,
                   "the 1 s response to go stale", timeout=5)
        self.origin.failing.set()
        try:
            r = self.get("/c/flaky")
        finally:
            self.origin.failing.clear()
        self.assertEqual(r.status, 200)
        self.assertIn("fwd=stale", r.header("Cache-Status"))
        self.assertIn("fwd-status=500", r.header("Cache-Status"))
        self.assertGreaterEqual(self.results()["stale_if_error"], 1)

    def wait_stale(self, path):
        # only-if-cached asks the store alone: 504 once the entry is stale
        wait_until(lambda: self.get(path, headers=[("Cache-Control", "only-if-cached")])
                   .status == 504, "%s to go stale" % path, timeout=5)

    def test_revalidation_with_304_freshens_the_entry(self):
        self.assertEqual(self.get("/c/reval").header("X-Fresh"), "1")
        self.wait_stale("/c/reval")
        r = self.get("/c/reval")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"/c/reval #1")  # the stored body
        self.assertEqual(r.header("X-Fresh"), "2")  # the 304's fields replaced the stored
        self.assertIn("fwd=stale", r.header("Cache-Status"))
        self.assertIn("fwd-status=304", r.header("Cache-Status"))
        self.assertEqual(self.origin.seen["/c/reval"].get("If-None-Match"), '"r1"')
        self.assertGreaterEqual(self.results()["revalidated"], 1)
        h = self.get("/c/reval")
        self.assertRegex(h.header("Cache-Status"), r"; hit; ttl=\d+")  # fresh again: max-age=60
        self.assertEqual(h.header("X-Fresh"), "2")
        self.assertEqual(self.origin.count("/c/reval"), 2)

    def test_stale_while_revalidate(self):
        self.get("/c/swr")
        # within stale-while-revalidate only-if-cached still gets it: ttl < 0
        wait_until(lambda: "ttl=-" in self.get("/c/swr", headers=[
            ("Cache-Control", "only-if-cached")]).header("Cache-Status"), "/c/swr to go stale",
            timeout=5)
        self.assertEqual(self.origin.count("/c/swr"), 1)
        r = self.get("/c/swr")
        self.assertEqual(r.body, b"/c/swr #1")  # served stale at once
        self.assertIn("hit", r.header("Cache-Status"))
        wait_until(lambda: self.get("/c/swr").body == b"/c/swr #2",
                   "the background refresh to replace the entry", timeout=5)
        self.assertEqual(self.origin.count("/c/swr"), 2)

    def test_range_from_the_store(self):
        r = self.get("/c/range", headers=[("Range", "bytes=10-19")])
        self.assertEqual(r.status, 206)  # a miss too: answered from the stored whole
        self.assertEqual(r.body, b"0123456789")
        self.assertEqual(r.header("Content-Range"), "bytes 10-19/100")
        self.assertNotIn("Range", self.origin.seen["/c/range"])
        r = self.get("/c/range", headers=[("Range", "bytes=-5")])
        self.assertEqual((r.status, r.body), (206, b"56789"))
        r = self.get("/c/range", headers=[("Range", "bytes=95-"), ("If-Range", '"v9"')])
        self.assertEqual((r.status, len(r.body)), (200, 100))  # If-Range fails: the whole
        r = self.get("/c/range", headers=[("Range", "bytes=200-")])
        self.assertEqual(r.status, 416)
        self.assertEqual(r.header("Content-Range"), "bytes */100")
        self.assertEqual(self.origin.count("/c/range"), 1)

    def test_fill_goes_on_when_the_client_leaves(self):
        with self.weir.client() as c:
            c.send(request_bytes("GET", "/c/halfway"))
            c._read_until(b"\r\n\r\n", time.monotonic() + 10)  # the head came
        self.origin.release_body.set()
        r = self.get("/c/halfway")
        self.assertEqual(len(r.body), 40000)
        self.assertEqual(self.origin.count("/c/halfway"), 1)

    def test_unsafe_methods_invalidate(self):
        self.get("/c/inval")
        self.assertIn("hit", self.get("/c/inval").header("Cache-Status"))
        self.assertEqual(self.get("/c/inval", method="POST", body=b"x").status, 200)
        self.assertIn("uri-miss", self.get("/c/inval").header("Cache-Status"))
        for path in ("/c/target", "/c/kept"):
            self.get(path)
        self.assertEqual(self.get("/c/poster", method="POST", body=b"x").status, 201)
        self.assertIn("uri-miss", self.get("/c/target").header("Cache-Status"))  # Location
        self.assertIn("hit", self.get("/c/kept").header("Cache-Status"))  # other origin
        self.assertEqual(self.get("/c/inval", method="DELETE").status, 200)
        self.assertIn("uri-miss", self.get("/c/inval").header("Cache-Status"))

    @unittest.skipUnless(HAVE_H2, "python3-h2 is not installed")
    def test_http2_hits_and_coalesced_misses(self):
        """HTTP/2 streams read the same store: a miss on one stream, hits on
        the next; an HTTP/1.1 client then hits what HTTP/2 stored."""
        c = RawH2(self.weir.port)
        try:
            sid = c.request(h2_get(b"/c/h2", authority=b"localhost"))
            self.assertEqual(c.wait_stream(sid)[:2], ("response", 200))
            self.assertEqual(c.stream(sid)["body"], b"/c/h2 #1")
            sids = [c.request(h2_get(b"/c/h2", authority=b"localhost")) for _ in range(5)]
            for sid in sids:
                self.assertEqual(c.wait_stream(sid)[:2], ("response", 200))
                self.assertEqual(c.stream(sid)["body"], b"/c/h2 #1")
                fields = dict((k.decode(), v.decode()) for k, v in c.stream(sid)["header_list"])
                self.assertIn("hit", fields["cache-status"])
                self.assertIn("age", fields)
        finally:
            c.close()
        self.assertEqual(self.get("/c/h2").body, b"/c/h2 #1")
        self.assertEqual(self.origin.count("/c/h2"), 1)

    def test_200mib_object_streams_with_bounded_memory(self):
        """A 200 MiB response, three clients at once: each gets every byte,
        weir's RSS stays bounded (nothing of it is stored: over
        max_object_size), and a later request is not a hit."""
        pid = self.weir.pid()
        rss0 = vm_rss_kib(pid)
        peak = [rss0]
        got = [0, 0, 0]

        def fetch(i):
            s = socket.create_connection(("127.0.0.1", self.weir.port), timeout=30)
            s.sendall(request_bytes("GET", "/c/huge"))
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(4096)
            n = len(head) - head.index(b"\r\n\r\n") - 4
            for _ in range(1000000):
                if n >= HUGE:
                    break
                data = s.recv(1 << 20)
                if not data:
                    break
                n += len(data)
                if i == 0:
                    peak[0] = max(peak[0], vm_rss_kib(pid))
            s.close()
            got[i] = n
        threads = [threading.Thread(target=fetch, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(got, [HUGE] * 3)
        self.assertLess(peak[0] - rss0, 32 << 10, "RSS grew %d KiB" % (peak[0] - rss0))
        self.assertNotRegex(self.get("/c/huge", method="HEAD").header("Cache-Status"),
                            r"; hit(;|$)")

    def test_unknown_length_over_max_object_size(self):
        """Requests that came while a chunked response of unknown length was
        filling wait for it; when it outgrows max_object_size they fetch it
        themselves: nobody is cut, nothing is stored."""
        out = [None] * 3
        before = self.results().get("collapsed", 0)

        def fetch(i):
            try:
                with self.weir.client(timeout=30) as c:
                    c.send(request_bytes("GET", "/c/chunky"))
                    out[i] = c.read_response()
            except Exception as e:  # reported below
                out[i] = e
        first = threading.Thread(target=fetch, args=(0,))
        first.start()
        wait_until(lambda: self.origin.count("/c/chunky") == 1, "the first request upstream")
        others = [threading.Thread(target=fetch, args=(i,)) for i in (1, 2)]
        for t in others:
            t.start()
        wait_until(lambda: self.results().get("collapsed", 0) - before >= 2,
                   "two requests waiting on the fill", timeout=10)
        self.origin.release_chunky.set()
        for t in [first] + others:
            t.join(30)
        for r in out:
            self.assertIsInstance(r, weirtest.Response, repr(r))
            self.assertEqual(len(r.body), CHUNKY)
        self.assertEqual(self.origin.count("/c/chunky"), 3)
        text = admin_get(self.admin_port, "/metrics")
        stored = int(re.search(r'weir_cache_bytes\{cache="pages"\} (\d+)', text).group(1))
        self.assertLess(stored, 1024 * 1024)  # nothing of it kept
        self.assertNotIn("hit", self.get("/c/chunky").header("Cache-Status"))

    def test_purge(self):
        self.get("/c/purge")
        self.assertIn("hit", self.get("/c/purge").header("Cache-Status"))
        with weirtest.Client(("127.0.0.1", self.admin_port)) as c:
            c.send(request_bytes("DELETE", "/cache/pages?key=httplocalhost%2Fc%2Fpurge"))
            r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b'{"purged": 1}\n')
        self.assertIn("uri-miss", self.get("/c/purge").header("Cache-Status"))
        with weirtest.Client(("127.0.0.1", self.admin_port)) as c:
            c.send(request_bytes("GET", "/cache/pages?key=x"))
            self.assertEqual(c.read_response().status, 405)
        with weirtest.Client(("127.0.0.1", self.admin_port)) as c:
            c.send(request_bytes("DELETE", "/cache/nope?key=x"))
            self.assertEqual(c.read_response().status, 404)
        text = admin_get(self.admin_port, "/metrics")
        self.assertRegex(text, r'weir_cache_entries\{cache="pages"\} [1-9]')


class OriginDownTest(unittest.TestCase):
    """stale-if-error when the backend is gone altogether (connection
    refused: weir's own 502), not just answering 5xx."""

    def test_backend_killed_stale_served(self):
        origin = Origin()
        admin = weirtest.free_port()
        w = weirtest.Weir(INI, subst={"ORIGIN": origin.addr, "ADMIN": admin})
        self.addCleanup(w.cleanup)
        self.assertEqual(w.get("/c/flaky").body, b"/c/flaky #1")
        origin.killed = True  # connections weir pooled close unanswered...
        origin.stop()  # ...and nothing listens there any more
        wait_until(lambda: w.get("/c/flaky", headers=[("Cache-Control", "only-if-cached")])
                   .status == 504, "the 1 s response to go stale", timeout=5)
        r = w.get("/c/flaky")
        self.assertEqual((r.status, r.body), (200, b"/c/flaky #1"))
        self.assertIn("fwd=stale; fwd-status=502", r.header("Cache-Status"))
        r = w.get("/c/nothing-stored")
        self.assertEqual(r.status, 502)  # nothing stale to stand in
        w.stop()


class DiskTierTest(unittest.TestCase):
    """[cache NAME] path: entries written to disk survive a restart and are
    read back lazily; a purge removes the files too."""

    def setUp(self):
        self.origin = Origin()
        self.admin_port = weirtest.free_port()
        self.tmp = tempfile.mkdtemp(prefix="weirt-disk-")
        self.ini = INI.replace("max_object_size = 64k", "max_object_size = 64k\n"
                               "path = %s/cache" % self.tmp)

    def tearDown(self):
        self.origin.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self):
        w = weirtest.Weir(self.ini, subst={"ORIGIN": self.origin.addr, "ADMIN": self.admin_port})
        self.addCleanup(w.cleanup)
        return w

    def disk_files(self):
        m = re.search(r'^weir_cache_disk_files\{cache="pages"\} (\d+)$',
                      admin_get(self.admin_port, "/metrics"), re.M)
        return int(m.group(1)) if m else None

    def test_restart_keeps_what_was_written(self):
        w = self.start()
        r = w.get("/c/disk")
        self.assertIn("stored", r.header("Cache-Status"))
        wait_until(lambda: self.disk_files() == 1, "the entry written to disk")
        w.stop()
        w = self.start()  # a new process: memory empty
        r = w.get("/c/disk")
        self.assertEqual(r.body, b"/c/disk #1")
        self.assertIn("hit", r.header("Cache-Status"))
        self.assertEqual(self.origin.count("/c/disk"), 1)
        m = re.search(r'weir_cache_requests_total\{result="disk_hit"\} (\d+)',
                      admin_get(self.admin_port, "/metrics"))
        self.assertEqual(int(m.group(1)), 1)
        # a purge takes the file too: the next restart finds nothing
        with weirtest.Client(("127.0.0.1", self.admin_port)) as c:
            c.send(request_bytes("DELETE", "/cache/pages?prefix=httplocalhost%2Fc%2F"))
            r = c.read_response()
        self.assertEqual(r.body, b'{"purged": 1, "files": 1}\n')
        self.assertEqual(self.disk_files(), 0)
        w.stop()
        w = self.start()
        self.assertIn("uri-miss", w.get("/c/disk").header("Cache-Status"))
        self.assertEqual(self.origin.count("/c/disk"), 2)
        w.stop()

    def test_inactive_removes_files(self):
        # inactive applies to the disk tier too: a file neither written
        # nor hit for 2 s is removed by the writer (it looks every second)
        self.ini = self.ini.replace("max_object_size = 64k",
                                    "max_object_size = 64k\ninactive = 2s")
        w = self.start()
        self.assertIn("stored", w.get("/c/idle").header("Cache-Status"))
        wait_until(lambda: self.disk_files() == 1, "the entry written to disk")

        def inactive_files():
            m = re.search(r'^weir_cache_disk_inactive_total\{cache="pages"\} (\d+)$',
                          admin_get(self.admin_port, "/metrics"), re.M)
            return int(m.group(1)) if m else None
        wait_until(lambda: inactive_files() == 1 and self.disk_files() == 0,
                   "the inactive file removed", timeout=10)
        # memory swept it too (inactive), and nothing on disk stands in
        self.assertIn("uri-miss", w.get("/c/idle").header("Cache-Status"))
        self.assertEqual(self.origin.count("/c/idle"), 2)
        w.stop()


if __name__ == "__main__":
    unittest.main()
