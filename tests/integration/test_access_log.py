#!/usr/bin/env python3
"""Access log: combined format, json format (one object per line), flushed
at least once a second, and reopened on SIGUSR1 after a rename."""

import sys
sys.dont_write_bytecode = True

import datetime
import json
import os
import re
import signal
import time
import unittest

import weirtest
from weirtest import request_bytes

INI = """[server]
listen = 127.0.0.1:@PORT@
workers = 1
access_log = @LOG@
access_log_format = @FORMAT@

[route ping]
match = exact:/healthz
return = 200 ok
"""

# host ident user [time] "request" status bytes "referer" "user-agent"
COMBINED = re.compile(r'^(?P<addr>\S+) (?P<ident>\S+) (?P<user>\S+) '
                      r'\[(?P<time>\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] '
                      r'"(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) (?P<bytes>\d+|-) '
                      r'"(?P<referer>(?:[^"\\]|\\.)*)" "(?P<ua>(?:[^"\\]|\\.)*)"$')

JSON_KEYS = ("time", "remote_addr", "method", "uri", "status", "bytes_sent", "request_time",
             "host", "user_agent", "request_id")


def read_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "surrogateescape").splitlines()
    except FileNotFoundError:
        return []


def wait_lines(path, n, timeout=3.0):
    """Polls path until it has at least n lines (logs flush at least once a
    second); returns the lines."""
    deadline = time.monotonic() + timeout
    lines = []
    for _ in range(200):
        lines = read_lines(path)
        if len(lines) >= n or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return lines


class LogCase(weirtest.WeirCase):
    FORMAT = None

    @classmethod
    def make_subst(cls, tmp):
        cls.log = os.path.join(tmp, "access.log")
        return {"LOG": cls.log, "FORMAT": cls.FORMAT}

    def setUp(self):
        super().setUp()
        self.n0 = len(wait_lines(self.log, 0, 0))

    def new_lines(self, n):
        lines = wait_lines(self.log, self.n0 + n)
        self.assertGreaterEqual(len(lines) - self.n0, n,
                                "expected %d new access log lines within 3 s; file has %r"
                                % (n, lines[-5:]))
        return lines[self.n0:]


class CombinedTest(LogCase):
    INI = INI
    FORMAT = "combined"

    def test_line_fields(self):
        r = self.get("/healthz?x=1", headers=[("User-Agent", "wt/1.0"),
                                              ("Referer", "http://ref.test/p")])
        self.assertEqual(r.status, 200)
        line = self.new_lines(1)[-1]
        m = COMBINED.match(line)
        self.assertIsNotNone(m, "not combined log format: %r" % line)
        self.assertEqual(m.group("addr"), "127.0.0.1")
        self.assertEqual(m.group("request"), "GET /healthz?x=1 HTTP/1.1")
        self.assertEqual(m.group("status"), "200")
        self.assertEqual(m.group("bytes"), "2", "combined logs the body bytes sent")
        self.assertEqual(m.group("referer"), "http://ref.test/p")
        self.assertEqual(m.group("ua"), "wt/1.0")
        when = datetime.datetime.strptime(m.group("time"), "%d/%b/%Y:%H:%M:%S %z")
        self.assertLess(abs(when.timestamp() - time.time()), 120, line)

    def test_404_and_missing_fields(self):
        with self.client() as c:
            c.send(b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n")
            r = c.read_response()
        self.assertEqual(r.status, 404)
        line = self.new_lines(1)[-1]
        m = COMBINED.match(line)
        self.assertIsNotNone(m, line)
        self.assertEqual(m.group("request"), "GET /nope HTTP/1.1")
        self.assertEqual(m.group("status"), "404")
        self.assertEqual(m.group("bytes"), str(len(r.body)))
        self.assertEqual(m.group("referer"), "-")
        self.assertEqual(m.group("ua"), "-")

    def test_head_logs_zero_bytes(self):
        with self.client() as c:
            c.send(request_bytes("HEAD", "/healthz"))
            self.assertEqual(c.read_response("HEAD").status, 200)
        m = COMBINED.match(self.new_lines(1)[-1])
        self.assertIsNotNone(m)
        self.assertIn(m.group("bytes"), ("0", "-"))

    def test_quote_in_user_agent_escaped(self):
        self.get("/healthz", headers=[("User-Agent", 'evil" 200 1 "x')])
        line = self.new_lines(1)[-1]
        m = COMBINED.match(line)
        self.assertIsNotNone(m, "a quote in User-Agent broke the line: %r" % line)
        self.assertEqual(m.group("request"), "GET /healthz HTTP/1.1")
        self.assertNotIn('evil"', line, "the quote must be escaped")

    def test_rejected_request_logged(self):
        with self.client() as c:
            c.send(b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Bad : 1\r\n\r\n")
            self.assertEqual(c.read_response().status, 400)
        line = self.new_lines(1)[-1]
        m = COMBINED.match(line)
        self.assertIsNotNone(m, line)
        self.assertEqual(m.group("status"), "400")

    def test_reopen_on_sigusr1(self):
        self.assertEqual(self.get("/healthz").status, 200)
        self.new_lines(1)
        rotated = self.log + ".1"
        os.rename(self.log, rotated)
        self.weir.signal(signal.SIGUSR1)
        deadline = time.monotonic() + 3
        for _ in range(100):
            if os.path.exists(self.log) or time.monotonic() > deadline:
                break
            time.sleep(0.03)
        self.assertTrue(os.path.exists(self.log), "SIGUSR1 did not create a new access log")
        self.assertEqual(self.get("/healthz?after=rotate").status, 200)
        lines = wait_lines(self.log, 1)
        self.assertTrue(any("/healthz?after=rotate" in l for l in lines),
                        "new file has %r" % lines)
        old = read_lines(rotated)
        self.assertFalse(any("after=rotate" in l for l in old),
                         "line after reopen went to the renamed file")
        self.weir.assert_alive()
        self.n0 = 0  # later tests in this class look at the new file


class JsonTest(LogCase):
    INI = INI
    FORMAT = "json"

    def parsed(self, n=1):
        out = []
        for line in self.new_lines(n):
            try:
                line.encode("utf-8")
            except UnicodeEncodeError:
                self.fail("access log line is not UTF-8: %r" % line)
            try:
                out.append(json.loads(line))
            except ValueError as e:
                self.fail("not one JSON object per line: %r (%s)" % (line, e))
        for obj in out:
            self.assertIsInstance(obj, dict)
        return out

    def test_keys(self):
        self.get("/healthz?q=1", host="example.test", headers=[("User-Agent", "wt/1.0")])
        obj = self.parsed()[-1]
        for k in JSON_KEYS:
            self.assertIn(k, obj, "key %r missing from %r" % (k, obj))
        self.assertEqual(obj["remote_addr"], "127.0.0.1")
        self.assertEqual(obj["method"], "GET")
        self.assertTrue(str(obj["uri"]).startswith("/healthz"), obj["uri"])
        self.assertEqual(int(obj["status"]), 200)
        self.assertEqual(int(obj["bytes_sent"]) >= 2, True)
        self.assertEqual(obj["host"], "example.test")
        self.assertEqual(obj["user_agent"], "wt/1.0")
        self.assertTrue(obj["request_id"])
        float(obj["request_time"])

    def test_request_ids_differ(self):
        self.get("/healthz")
        self.get("/healthz")
        a, b = self.parsed(2)[-2:]
        self.assertNotEqual(a["request_id"], b["request_id"])

    def test_escaping(self):
        ua = 'wt "quoted" \\ back\tslash'
        self.get("/healthz", headers=[("User-Agent", ua)])
        obj = self.parsed()[-1]
        self.assertEqual(obj["user_agent"], ua)

    def test_non_utf8_bytes_stay_valid_json(self):
        with self.client() as c:
            c.send(b"GET /healthz HTTP/1.1\r\nHost: a\r\nUser-Agent: x\xff\xfey\r\n\r\n")
            self.assertEqual(c.read_response().status, 200)
        # parsed() fails if the line is not UTF-8 JSON.
        obj = self.parsed()[-1]
        self.assertTrue(obj["user_agent"].startswith("x"))


class FlushOnExitTest(unittest.TestCase):
    def test_lines_written_by_sigterm(self):
        w = weirtest.Weir(INI, subst={"LOG": "@TMP@/access.log", "FORMAT": "combined"})
        try:
            for i in range(3):
                self.assertEqual(w.get("/healthz?n=%d" % i).status, 200)
            w.stop()
            lines = read_lines(os.path.join(w.tmp, "access.log"))
            self.assertEqual(len(lines), 3, lines)
            for i, line in enumerate(lines):
                m = COMBINED.match(line)
                self.assertIsNotNone(m, line)
                self.assertEqual(m.group("request"), "GET /healthz?n=%d HTTP/1.1" % i)
        finally:
            w.cleanup()


if __name__ == "__main__":
    weirtest.main()
