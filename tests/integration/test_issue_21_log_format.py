#!/usr/bin/env python3
"""Issue 21.3: access_log_format templates and json field lists, against
the real binary: every variable in a template (request bytes escaped,
absent values "-"), a json field list that stays valid JSON with UTF-8
kept and control and invalid bytes escaped, request_time with microsecond
precision, a reload switching the format at once, and a bad format refused
by `weir -t` and by a reload with file:line and the variable's name."""

import sys
sys.dont_write_bytecode = True

import calendar
import json
import os
import re
import signal
import time
import unittest

import weirtest
from weirtest import Weir, request_bytes, run_weir
from polling import count_log, wait_log
from test_access_log import INI, wait_lines

TEMPLATE = ('$remote_addr [$time_iso8601] [$time_local] $msec "$request" $request_method '
            '$request_uri $protocol $scheme $host $status $body_bytes_sent $request_time '
            '$upstream_addr $upstream_status $upstream_response_time $route $request_id '
            '$ssl_protocol $stream_id $http_x_trace_id ${status}x $$ $http_user_agent')
JSON = ('json $time_iso8601 $remote_addr $request $status $body_bytes_sent $request_time '
        '$upstream_addr $upstream_response_time $route $http_x_trace_id $http_none')



def reload_with(w, old, new, wait_for):
    """Rewrites old as new in w's ini, sends SIGHUP, and waits for one more
    stderr line containing wait_for than there were before."""
    with open(w.ini_path) as f:
        ini = f.read()
    with open(w.ini_path, "w") as f:
        f.write(ini.replace(old, new))
    pattern = re.escape(wait_for)
    before = count_log(w, pattern)
    w.signal(signal.SIGHUP)
    wait_log(w, pattern, count=before + 1)


class LogFormatTest(unittest.TestCase):
    def start(self, fmt):
        w = Weir(INI, subst={"FORMAT": fmt, "LOG": "@TMP@/access.log"})
        self.addCleanup(w.cleanup)
        self.log = os.path.join(w.tmp, "access.log")
        return w

    def test_template_every_variable(self):
        w = self.start(TEMPLATE)
        with w.client() as c:
            c.send(b"GET /healthz?q=caf%C3%A9%22 HTTP/1.1\r\nHost: localhost\r\n"
                   b"X-Trace-Id: t-\xc3\xa9\r\nUser-Agent: ua \"x\" \\\r\n\r\n")
            self.assertEqual(c.read_response().status, 200)
        lines = wait_lines(self.log, 1)
        with w.client() as c:  # a head that does not parse: its raw line, escaped
            c.send(b"GET /\x01\xff HTTP/1.1\r\nHost: localhost\r\n\r\n")
            self.assertEqual(c.read_response().status, 400)
        lines = wait_lines(self.log, 2)
        self.assertEqual(len(lines), 2, lines)
        m = re.fullmatch(
            r'127\.0\.0\.1 \[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\] '
            r'\[(\d\d/\w{3}/\d{4}:[\d:]{8} \+0000)\] (\d+\.\d{3}) '
            r'"GET /healthz\?q=caf%C3%A9%22 HTTP/1\.1" GET /healthz\?q=caf%C3%A9%22 HTTP/1\.1 '
            r'http localhost 200 2 (\d+\.\d{3}) - - - ping [0-9a-f]{32} - 0 t-\\xc3\\xa9 200x \$ '
            r'ua \\x22x\\x22 \\x5c',
            lines[0])
        self.assertIsNotNone(m, lines[0])
        # msec and time_iso8601 name the same moment
        iso, msec = m.group(1), float(m.group(3))
        t = calendar.timegm(time.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S"))
        self.assertAlmostEqual(t + int(iso[20:23]) / 1000, msec, delta=0.002)
        self.assertLess(float(m.group(4)), 1000.0)
        self.assertRegex(lines[1], r' "GET /\\x01\\xff HTTP/1\.1" - - HTTP/1\.\d http - 400 ')

    def test_json_fields_valid_utf8(self):
        w = self.start(JSON + " $http_user_agent")
        with w.client() as c:
            c.send(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n"
                   b"X-Trace-Id: caf\xc3\xa9 \xe2\x82\xac \"q\" \\ \xc0\xaf \xff\r\n\r\n")
            self.assertEqual(c.read_response().status, 200)
        wait_lines(self.log, 1)
        with w.client() as c:
            c.send(b"GET /\x01\xc3\xa9 HTTP/1.1\r\nHost: localhost\r\n\r\n")
            self.assertEqual(c.read_response().status, 400)
        lines = wait_lines(self.log, 2)
        self.assertEqual(len(lines), 2, lines)
        with open(self.log, "rb") as f:
            data = f.read()
        text = data.decode("utf-8")  # valid UTF-8 whatever the client sent
        o, bad = [json.loads(line) for line in text.splitlines()]
        self.assertEqual(o["request"], "GET /healthz HTTP/1.1")
        self.assertEqual(o["http_x_trace_id"], "caf\u00e9 \u20ac \"q\" \\ \u00c0\u00af \u00ff")
        self.assertIn("caf\u00e9 \u20ac".encode("utf-8"), data)  # UTF-8 kept as it is
        self.assertEqual(o["status"], 200)
        self.assertEqual(o["body_bytes_sent"], 2)
        self.assertIsInstance(o["request_time"], float)
        self.assertIsNone(o["upstream_response_time"])
        self.assertEqual((o["upstream_addr"], o["route"], o["http_none"]), ("", "ping", ""))
        self.assertRegex(o["time_iso8601"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual((bad["status"], bad["request"]), (400, "GET /\x01\u00e9 HTTP/1.1"))

    def test_request_time_microseconds(self):
        w = self.start("$request_time")
        with w.client() as c:
            for _ in range(20):
                c.send(request_bytes("GET", "/healthz"))
                self.assertEqual(c.read_response().status, 200)
        lines = wait_lines(self.log, 20)
        self.assertEqual(len(lines), 20)
        values = [float(v) for v in lines]
        # milliseconds with three decimals; a loopback answer takes well
        # under a millisecond, which a millisecond clock would log as 0.000
        self.assertTrue(all(re.fullmatch(r"\d+\.\d{3}", v) for v in lines), lines)
        self.assertTrue(any(0 < v < 1 for v in values), values)

    def test_reload_switches_format(self):
        w = self.start("first $status")
        self.assertEqual(w.get("/healthz").status, 200)
        self.assertEqual(wait_lines(self.log, 1), ["first 200"])
        reload_with(w, "first $status", "json $status $route", "configuration reloaded")
        self.assertEqual(w.get("/healthz").status, 200)
        lines = wait_lines(self.log, 2)
        self.assertEqual(lines[1], '{"status":200,"route":"ping"}')

    def test_bad_format_refused(self):
        w = Weir(INI, subst={"FORMAT": "$remote_addr $bogus", "LOG": "off"}, start=False)
        self.addCleanup(w.cleanup)
        p = run_weir(["-t", "-c", w.ini_path])
        self.assertNotEqual(p.returncode, 0)
        out = p.stdout + p.stderr
        self.assertRegex(out, r'weir\.ini:5: \[server\] access_log_format: unknown variable: "bogus"')
        w2 = self.start("$status")
        reload_with(w2, "access_log_format = $status", "access_log_format = json $status x",
                    "reload failed")
        self.assertIn("a json format lists $variables only", w2.stderr())
        self.assertEqual(w2.get("/healthz").status, 200)
        self.assertEqual(wait_lines(self.log, 1), ["200"])



ROUTES_INI = """[server]
listen = 127.0.0.1:@PORT@
workers = 2
access_log = @SERVER_LOG@
access_log_format = $route $status

[route quiet]
match = exact:/quiet
return = 200 q
access_log = off

[route own]
match = exact:/own
return = 200 o
access_log = @TMP@/own.log

[route shared]
match = exact:/shared
return = 200 s
access_log = @TMP@/own.log

[route default]
match = prefix:/
return = 200 d
"""


class RouteAccessLogTest(unittest.TestCase):
    """Per-route access_log: off, a file of the route's own (shared by the
    routes naming it), or [server]'s."""

    def start(self, server_log):
        w = Weir(ROUTES_INI, subst={"SERVER_LOG": server_log})
        self.addCleanup(w.cleanup)
        return w

    def test_off_own_and_default(self):
        w = self.start("@TMP@/access.log")
        for target in ("/quiet", "/own", "/shared", "/other", "/quiet", "/own"):
            self.assertEqual(w.get(target).status, 200)
        own = wait_lines(os.path.join(w.tmp, "own.log"), 3)
        server = wait_lines(os.path.join(w.tmp, "access.log"), 1)
        self.assertEqual(sorted(own), ["own 200", "own 200", "shared 200"])
        self.assertEqual(server, ["default 200"])

    def test_route_log_without_server_log(self):
        w = self.start("off")
        self.assertEqual(w.get("/other").status, 200)
        self.assertEqual(w.get("/own").status, 200)
        self.assertEqual(wait_lines(os.path.join(w.tmp, "own.log"), 1), ["own 200"])
        self.assertFalse(os.path.exists(os.path.join(w.tmp, "access.log")))

    def test_new_file_on_reload_needs_restart(self):
        w = self.start("@TMP@/access.log")
        reload_with(w, "@TMP@/own.log".replace("@TMP@", w.tmp),
                    os.path.join(w.tmp, "other.log"), "needs a restart")
        self.assertIn("reload: changing the set of routes' access_log files needs a restart",
                      w.stderr())
        self.assertEqual(w.get("/own").status, 200)
        self.assertEqual(wait_lines(os.path.join(w.tmp, "own.log"), 1), ["own 200"])

    def check_refused(self, ini, pattern):
        """weir -t on ini fails with a line matching pattern."""
        w = Weir(ini, subst={"SERVER_LOG": "off"}, start=False)
        self.addCleanup(w.cleanup)
        p = run_weir(["-t", "-c", w.ini_path])
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stdout + p.stderr, pattern)

    def test_config_errors(self):
        extra = "".join("[route r%d]\nmatch = exact:/r%d\nreturn = 200 x\naccess_log = @TMP@/r%d.log\n\n"
                        % (i, i, i) for i in range(5))
        self.check_refused(ROUTES_INI + extra,
                           r"weir\.ini:\d+: \[route r3\] access_log: at most 4 files besides "
                           r"\[server\]'s access_log")
        self.check_refused(ROUTES_INI.replace("@TMP@/own.log", "/nonexistent-dir/own.log"),
                           r"weir\.ini:15: \[route own\] access_log: /nonexistent-dir/own\.log: "
                           r"cannot be opened for appending")


if __name__ == "__main__":
    weirtest.main()
