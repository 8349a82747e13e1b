#!/usr/bin/env python3
"""Issue 13.15: a file weir may not read (mode 000, or under a directory it
cannot search) still gets 403, and now also an error line naming the path
(escaped: it comes from the request), "Permission denied", and the request
id the json access log shows for that request. Any client can repeat such a
request, so the lines are rate-limited per worker, and a line after a
refusal says how many were left out.

As root, weir runs as `user = nobody` (else root reads everything); as
another user, the modes deny that user itself."""

import sys
sys.dont_write_bytecode = True

import json
import os
import pwd
import re
import time
import unittest

import weirtest
from polling import wait_log, wait_until
from weirtest import SERVER, Client

IS_ROOT = os.geteuid() == 0
LOG_PER_SECOND = 10  # static.c FORBIDDEN_LOG_PER_SECOND

INI = SERVER.replace("access_log = off",
                     "access_log = @TMP@/access.log\naccess_log_format = json") + \
    ("user = nobody\n" if IS_ROOT else "") + """
[route files]
match = prefix:/
root = @TMP@/www
"""


def have_nobody():
    try:
        pwd.getpwnam("nobody")
        return True
    except KeyError:
        return False


def make_www(tmp):
    """www/ under tmp: one readable file, three of mode 000, and a directory
    nobody (or we) cannot search."""
    os.chmod(tmp, 0o755)
    www = os.path.join(tmp, "www")
    os.mkdir(www)
    os.chmod(www, 0o755)
    with open(os.path.join(www, "open.txt"), "w") as f:
        f.write("open\n")
    for name in ("secret.txt", 'q"x.txt', "flood.txt"):
        with open(os.path.join(www, name), "w") as f:
            f.write("secret\n")
        os.chmod(os.path.join(www, name), 0o000)
    private = os.path.join(www, "private")
    os.mkdir(private)
    with open(os.path.join(private, "x.txt"), "w") as f:
        f.write("x\n")
    os.chmod(private, 0o700 if IS_ROOT else 0o600)


class Base(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        make_www(tmp)
        return {}

    @classmethod
    def tearDownClass(cls):
        private = os.path.join(cls.tmp, "www", "private")
        if os.path.isdir(private):
            os.chmod(private, 0o755)  # removable when not root
        super().tearDownClass()

    def request(self, target):
        with Client(("127.0.0.1", self.weir.port)) as c:
            c.send(("GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % target).encode())
            return c.read_response()

    def access_lines(self):
        path = os.path.join(self.weir.tmp, "access.log")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]

    def access_entry(self, uri):
        found = wait_until(lambda: [e for e in self.access_lines() if e["uri"] == uri],
                           "the access line of %s" % uri)
        return found[-1]


@unittest.skipIf(IS_ROOT and not have_nobody(), "root without a user nobody")
class PermissionLogTest(Base):
    def assertLogged(self, target, shown_path):
        """target gets 403 and an error line naming shown_path, the errno
        text and the access log's request id for it."""
        self.assertEqual(self.request(target).status, 403)
        entry = self.access_entry(target)
        self.assertEqual(entry["status"], 403)
        line = wait_log(self.weir, r"request_id: %s$" % entry["request_id"])[-1]
        self.assertIn("[error]", line)
        self.assertIn('open "%s" under root %s/www: Permission denied; 403'
                      % (shown_path, self.weir.tmp), line)
        self.assertRegex(line, r', client: 127\.0\.0\.1, request: "GET %s", request_id: %s$'
                         % (re.escape(target), entry["request_id"]))

    def test_readable_file_is_served(self):
        r = self.request("/open.txt")
        self.assertEqual((r.status, r.body), (200, b"open\n"))

    def test_mode_000_file(self):
        self.assertLogged("/secret.txt", "secret.txt")

    def test_directory_without_search_permission(self):
        self.assertLogged("/private/x.txt", "private/x.txt")

    def test_path_is_escaped(self):
        # The name has a quote: it must not end the quoted path early.
        self.assertLogged("/q%22x.txt", r"q\x22x.txt")


@unittest.skipIf(IS_ROOT and not have_nobody(), "root without a user nobody")
class FloodTest(Base):
    """Its own weir: the burst spends the second's budget of lines, which
    the other tests' lines must not share."""

    def flood_lines(self):
        return [l for l in self.weir.stderr().splitlines() if '"flood.txt"' in l]

    def test_flood_is_rate_limited(self):
        n = 4 * LOG_PER_SECOND
        start = time.monotonic()
        with Client(("127.0.0.1", self.weir.port)) as c:
            for _ in range(n):
                c.send(b"GET /flood.txt HTTP/1.1\r\nHost: a\r\n\r\n")
                self.assertEqual(c.read_response().status, 403)
        seconds = int(time.monotonic() - start) + 2  # seconds the burst can touch
        # Lines are written before the access log's batch is: once every
        # access line is there, so is every error line.
        wait_until(lambda: len([e for e in self.access_lines()
                                if e["uri"] == "/flood.txt"]) >= n, "%d access lines" % n)
        logged = self.flood_lines()
        self.assertGreaterEqual(len(logged), 1)
        self.assertLessEqual(len(logged), LOG_PER_SECOND * seconds,
                             "%d lines for %d refusals" % (len(logged), n))

        # In a later second, the next refusal's line counts those left out
        # (one request per try, bounded; those may be left out too).
        probes = []

        def probe():
            probes.append(self.request("/flood.txt").status)
            return [l for l in self.flood_lines() if "similar lines not logged" in l]
        line = wait_until(probe, "a line counting the refusals left out")[-1]
        left_out = int(re.search(r"\((\d+) similar lines not logged\)", line).group(1))
        self.assertEqual(set(probes), {403})
        self.assertGreaterEqual(left_out, 1)
        self.assertLessEqual(left_out, n + len(probes) - len(logged))


if __name__ == "__main__":
    weirtest.main()
