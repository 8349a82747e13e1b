#!/usr/bin/env python3
"""Static files: single byte ranges (a-b, a-, -n) -> 206 with Content-Range,
unsatisfiable -> 416 with "bytes */size", If-Range (strong ETag or exact
date) -> whole file when it does not hold, several ranges or a malformed
Range -> the whole file with 200 (weir does not send multipart/byteranges)."""

import sys
sys.dont_write_bytecode = True

import email.utils
import os

import weirtest
from weirtest import SERVER

INI = SERVER + """
[route site]
match = prefix:/
root = @ROOT@
"""

SIZE = 100000
DATA = bytes((i * 7 + i // 256) % 256 for i in range(SIZE))


class StaticRangesTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        root = os.path.join(tmp, "www")
        os.makedirs(root)
        with open(os.path.join(root, "d.bin"), "wb") as f:
            f.write(DATA)
        return {"ROOT": root}

    def rng(self, value, extra=()):
        return self.get("/d.bin", headers=[("Range", value)] + list(extra))

    def check_partial(self, value, first, last):
        r = self.rng(value)
        self.assertEqual(r.status, 206, value)
        self.assertEqual(r.header("Content-Range"), "bytes %d-%d/%d" % (first, last, SIZE), value)
        self.assertEqual(r.header("Content-Length"), str(last - first + 1), value)
        self.assertEqual(r.body, DATA[first:last + 1], value)

    def test_single_ranges(self):
        self.check_partial("bytes=0-0", 0, 0)
        self.check_partial("bytes=0-99", 0, 99)
        self.check_partial("bytes=5000-5999", 5000, 5999)
        self.check_partial("bytes=99000-", 99000, SIZE - 1)
        self.check_partial("bytes=-10", SIZE - 10, SIZE - 1)
        self.check_partial("bytes=-200000", 0, SIZE - 1)
        self.check_partial("bytes=99990-200000", 99990, SIZE - 1)

    def test_ranges_on_one_connection(self):
        with self.client() as c:
            for first in (0, 777, 50000):
                c.request("GET", "/d.bin", headers=[("Range", "bytes=%d-%d" % (first, first + 9))])
                r = c.read_response()
                self.assertEqual(r.status, 206)
                self.assertEqual(r.body, DATA[first:first + 10])

    def test_unsatisfiable(self):
        for value in ("bytes=100000-", "bytes=200000-300000", "bytes=-0"):
            r = self.rng(value)
            self.assertEqual(r.status, 416, value)
            self.assertEqual(r.header("Content-Range"), "bytes */%d" % SIZE, value)

    def test_multi_range_whole_file(self):
        r = self.rng("bytes=0-9,20-29")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, DATA)
        self.assertIsNone(r.header("Content-Range"))

    def test_too_many_ranges_ignored(self):
        r = self.rng("bytes=" + ",".join("%d-%d" % (i, i) for i in range(0, 40, 2)))
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.body), SIZE)

    def test_thousands_of_tiny_ranges(self):
        # The pathological Range of RFC 9110 §14.2 (thousands of overlapping
        # one-byte ranges): the parser stops at WR_HTTP_COND_MAX_RANGES (16)
        # and the whole file goes out with 200, at once, nothing buffered.
        value = "bytes=" + ",".join("0-0" for _ in range(3500))
        self.assertGreater(len(value), 12000)
        r = self.rng(value)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, DATA)
        self.assertIsNone(r.header("Content-Range"))
        # sixteen is still "several ranges", the seventeenth "too many": both 200
        for n in (16, 17):
            r = self.rng("bytes=" + ",".join("%d-%d" % (i * 10, i * 10 + 1) for i in range(n)))
            self.assertEqual((r.status, len(r.body)), (200, SIZE), n)

    def test_invalid_ignored(self):
        for value in ("bytes=9-5", "bytes=abc", "items=0-1", "bytes 0-1", "bytes="):
            r = self.rng(value)
            self.assertEqual(r.status, 200, value)
            self.assertEqual(r.body, DATA, value)

    def test_if_range(self):
        full = self.get("/d.bin")
        etag, lm = full.header("ETag"), full.header("Last-Modified")
        r = self.rng("bytes=0-9", [("If-Range", etag)])
        self.assertEqual((r.status, r.body), (206, DATA[:10]))
        r = self.rng("bytes=0-9", [("If-Range", lm)])
        self.assertEqual((r.status, r.body), (206, DATA[:10]))
        r = self.rng("bytes=0-9", [("If-Range", '"stale"')])
        self.assertEqual((r.status, len(r.body)), (200, SIZE))
        r = self.rng("bytes=0-9", [("If-Range", "W/" + etag)])
        self.assertEqual(r.status, 200, "a weak tag never satisfies If-Range")
        t = email.utils.parsedate_to_datetime(lm).timestamp()
        r = self.rng("bytes=0-9", [("If-Range", email.utils.formatdate(t - 5, usegmt=True))])
        self.assertEqual(r.status, 200)


if __name__ == "__main__":
    weirtest.main()
