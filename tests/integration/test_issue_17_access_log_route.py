#!/usr/bin/env python3
"""Issue 17.9: the json access log names the route that answered ("route"),
the same name /metrics counts the request under (weir_http_requests_total's
route label): a static 404 for a missing file and a 429 count under their
route; a 404 no route takes, a 405 (a route matched the path, none the
method), a 400 for a path that does not normalise, and a head that does not
parse carry route "" in both. So "which route gets the 404s" is one query
over either."""

import sys
sys.dont_write_bytecode = True

import collections
import json
import os
import time

import weirtest
from weirtest import HOST, Client, free_port
from test_access_log import wait_lines
from test_admin import parse_exposition, value_of

INI = """[server]
listen = 127.0.0.1:@PORT@
workers = 2
access_log = @LOG@
access_log_format = json

[route files]
match = prefix:/files/
methods = GET HEAD
root = @ROOT@
strip_prefix = /files

[route ping]
match = exact:/healthz
return = 200 ok

[route limited]
match = exact:/limited
return = 200 limited
rate_limit = 1r/m burst=1

[admin]
listen = 127.0.0.1:@ADMIN@
"""

# (method, target, raw request or None, status, route)
PLAN = [
    ("GET", "/files/a.txt", None, 200, "files"),
    ("GET", "/files/missing.txt", None, 404, "files"),
    ("GET", "/healthz", None, 200, "ping"),
    ("GET", "/limited", None, 200, "limited"),
    ("GET", "/limited", None, 429, "limited"),
    ("GET", "/nowhere", None, 404, ""),
    ("POST", "/files/a.txt", None, 405, ""),
    ("GET", "/a/../../x", None, 400, ""),
    (None, None, b"GET / HTTP/1.1\r\nHost: a\r\nbad header\r\n\r\n", 400, ""),
]


class AccessLogRouteTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        root = os.path.join(tmp, "root")
        os.mkdir(root)
        with open(os.path.join(root, "a.txt"), "w") as f:
            f.write("a\n")
        cls.log = os.path.join(tmp, "access.log")
        cls.admin_port = free_port()
        return {"ROOT": root, "LOG": cls.log, "ADMIN": cls.admin_port}

    def metrics(self):
        with Client((HOST, self.admin_port)) as c:
            c.send(b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n")
            r = c.read_response()
        self.assertEqual(r.status, 200)
        return parse_exposition(r.body.decode())

    def test_route_in_log_and_metrics(self):
        for method, target, raw, status, _ in PLAN:
            with self.client() as c:
                c.send(raw or weirtest.request_bytes(method, target))
                r = c.read_response()
            self.assertEqual(r.status, status, "%s %s" % (method, target))
        lines = wait_lines(self.log, len(PLAN))
        self.assertEqual(len(lines), len(PLAN), lines)
        objs = [json.loads(line) for line in lines]
        got = sorted((o["status"], o["route"]) for o in objs)
        want = sorted((p[3], p[4]) for p in PLAN)
        self.assertEqual(got, want, "(status, route) of each access log line")
        # The query the README shows: 404s by route.
        by_route = collections.Counter(o["route"] for o in objs if o["status"] == 404)
        self.assertEqual(by_route, {"files": 1, "": 1})
        # /metrics counts the same requests under the same names (a request
        # is counted once its answer is written: poll).
        want_counts = collections.Counter((p[4], "%dxx" % (p[3] // 100)) for p in PLAN)
        deadline = time.monotonic() + 5
        for _ in range(100):
            fams = self.metrics()
            counts = {k: value_of(fams, "weir_http_requests_total", route=k[0],
                                  **{"class": k[1]}) for k in want_counts}
            if counts == dict(want_counts) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(counts, dict(want_counts))


if __name__ == "__main__":
    weirtest.main()
