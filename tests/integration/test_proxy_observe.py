#!/usr/bin/env python3
"""What operators see of proxying: the json access log carries the request
id the backend received, the upstream address and the upstream time; the
admin /metrics exposes per-server requests, failures, pool hits and misses,
the upstream duration histogram and server health (up, then down once the
active check fails)."""

import sys
sys.dont_write_bytecode = True

import json
import os
import time

import weirtest
from polling import wait_until
from weirtest import SERVER, HOST, Client, free_port
from upstreams import Backend
from test_admin import parse_exposition, value_of

INI = SERVER.replace("access_log = off", "access_log = @TMP@/access.log\naccess_log_format = json") + """
[upstream app]
server = @B1@
keepalive = 4
health_check = GET /healthz
health_interval = 200ms
health_timeout = 500ms

[route app]
match = prefix:/
proxy = app

[admin]
listen = 127.0.0.1:@ADMIN@
"""


class ObserveTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.b1 = Backend("b1")
        cls.admin_port = free_port()
        return {"B1": cls.b1.addr, "ADMIN": str(cls.admin_port)}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.b1.stop()

    def scrape(self):
        with Client((HOST, self.admin_port)) as c:
            c.send(b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n")
            r = c.read_response()
        self.assertEqual(r.status, 200)
        return parse_exposition(r.body.decode())

    def log_lines(self):
        path = os.path.join(self.weir.tmp, "access.log")
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if os.path.exists(path):
                with open(path) as f:
                    lines = [json.loads(l) for l in f if l.strip()]
                if lines:
                    return lines
            time.sleep(0.1)
        return []

    def test_access_log_upstream_fields(self):
        r = self.get("/echo/logged")
        self.assertEqual(r.status, 200)
        sent_id = [v for n, v in json.loads(r.body)["headers"] if n == "X-Request-Id"][0]
        # Workers flush the access log every tick (100 ms): poll for the line.
        entry = wait_until(lambda: [e for e in self.log_lines() if e["uri"] == "/echo/logged"],
                           "the access line of /echo/logged")[-1]
        self.assertEqual(entry["request_id"], sent_id)
        self.assertEqual(entry["upstream_addr"], self.b1.addr)
        self.assertGreaterEqual(float(entry["upstream_time"]), 0.0)
        self.assertEqual(int(entry["status"]), 200)
        self.assertEqual(int(entry["bytes_sent"]), len(r.body))  # the body, not the head

    def test_metrics_upstream(self):
        for i in range(10):
            self.assertEqual(self.get("/echo/m%d" % i).status, 200)
        fams = self.scrape()
        labels = {"upstream": "app", "server": self.b1.addr}
        self.assertGreaterEqual(value_of(fams, "weir_upstream_requests_total", **labels), 10)
        hits = value_of(fams, "weir_upstream_pool_hits_total", **labels)
        misses = value_of(fams, "weir_upstream_pool_misses_total", **labels)
        self.assertGreaterEqual(hits, 8)
        self.assertLessEqual(misses, 2)
        self.assertGreaterEqual(value_of(fams, "weir_upstream_request_duration_seconds",
                                         "weir_upstream_request_duration_seconds_count",
                                         **labels), 10)
        self.assertEqual(value_of(fams, "weir_upstream_server_up", **labels), 1)
        self.b1.healthy = False
        try:
            deadline = time.monotonic() + 5
            up = 1
            while time.monotonic() < deadline and up != 0:
                time.sleep(0.3)
                up = value_of(self.scrape(), "weir_upstream_server_up", **labels)
            self.assertEqual(up, 0)
            self.assertEqual(self.get("/echo/down").status, 502)
        finally:
            self.b1.healthy = True


if __name__ == "__main__":
    weirtest.main()
