#!/usr/bin/env python3
"""Issue 13.5: an upstream of more than 64 servers (the old tried mask had
64 bits). 70 servers that all refuse (127.0.0.1..127.0.0.70 on a port
nobody listens on) and retries = 100: one request tries each server exactly
once, then answers 502; /metrics shows one request and one failure per
server. With the 64-bit mask, servers past the 64th were tried again until
the retries ran out. The json access log's attempt lists (issue 13.8) stay
bounded: distinct addresses, then ", ..." on both lists."""

import sys
sys.dont_write_bytecode = True

import json
import os
import time

import weirtest
from weirtest import SERVER, HOST, Client, free_port
from test_admin import parse_exposition, value_of

N_SERVERS = 70


def upstream_lines(port):
    return "".join("server = 127.0.0.%d:%d\n" % (i, port) for i in range(1, N_SERVERS + 1))


INI = SERVER.replace("access_log = off",
                     "access_log = @TMP@/access.log\naccess_log_format = json") + """
[upstream many]
@SERVERS@retries = 100
max_fails = 0
connect_timeout = 2s

[route many]
match = prefix:/
proxy = many

[admin]
listen = 127.0.0.1:@ADMIN@
"""


class ManyServersTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.dead_port = free_port()
        cls.admin_port = free_port()
        return {"SERVERS": upstream_lines(cls.dead_port), "ADMIN": cls.admin_port}

    def scrape(self):
        with Client((HOST, self.admin_port)) as c:
            c.send(b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n")
            r = c.read_response()
        self.assertEqual(r.status, 200)
        return parse_exposition(r.body.decode())

    def test_each_server_tried_once(self):
        r = self.get("/x")
        self.assertEqual(r.status, 502)
        fams = self.scrape()
        for i in range(1, N_SERVERS + 1):
            labels = {"upstream": "many", "server": "127.0.0.%d:%d" % (i, self.dead_port)}
            self.assertEqual(value_of(fams, "weir_upstream_requests_total", **labels), 1,
                             labels["server"])
            self.assertEqual(value_of(fams, "weir_upstream_failures_total", **labels), 1,
                             labels["server"])
        entry = self.log_entry()
        addrs = entry["upstream_addr"].split(", ")
        statuses = entry["upstream_status"].split(", ")
        self.assertEqual(addrs[-1], "...")
        self.assertEqual(statuses[-1], "...")
        self.assertLess(len(entry["upstream_addr"]), 512)
        self.assertGreater(len(addrs), 10)
        self.assertEqual(len(set(addrs)), len(addrs))
        self.assertEqual(statuses[:-1], ["502"] * (len(addrs) - 1))

    def log_entry(self):
        """The one access-log line (flushed once a tick: polled, bounded)."""
        path = os.path.join(self.weir.tmp, "access.log")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if os.path.exists(path):
                with open(path) as f:
                    lines = [json.loads(l) for l in f if l.strip()]
                if lines:
                    return lines[0]
            time.sleep(0.05)
        self.fail("no access log line")


if __name__ == "__main__":
    weirtest.main()
