#!/usr/bin/env python3
"""Issue 13.8: the json access log lists every upstream attempt, as nginx's
$upstream_addr and $upstream_status do: "upstream_addr":"A, B" and
"upstream_status":"502, 200" when A refused and B answered; "504, 200"
when A timed out; a request answered by its first server has one entry."""

import sys
sys.dont_write_bytecode = True

import json
import os
import socket
import time

import weirtest
from weirtest import SERVER, free_port
from upstreams import Backend

INI = SERVER.replace("access_log = off",
                     "access_log = @TMP@/access.log\naccess_log_format = json") + """
[upstream refused]
server = 127.0.0.1:@DEAD@
server = @B@
max_fails = 0
retries = 1

[upstream silent]
server = 127.0.0.1:@SILENT@
server = @B@
max_fails = 0
retries = 1
read_timeout = 300ms

[route refused]
host = refused.test
match = prefix:/
proxy = refused

[route silent]
host = silent.test
match = prefix:/
proxy = silent
"""


class UpstreamLogTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.b = Backend("b")
        # Accepts connections (the kernel does) and never answers.
        cls.silent = socket.socket()
        cls.silent.bind(("127.0.0.1", 0))
        cls.silent.listen(64)
        cls.dead = free_port()
        return {"B": cls.b.addr, "DEAD": cls.dead, "SILENT": cls.silent.getsockname()[1]}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.b.stop()
        cls.silent.close()

    def entries(self, prefix, n):
        """The json lines of the n requests whose uri starts with prefix
        (the log is flushed once a tick: polled, bounded)."""
        path = os.path.join(self.weir.tmp, "access.log")
        got = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if os.path.exists(path):
                with open(path) as f:
                    got = [json.loads(l) for l in f if l.strip()]
                got = [e for e in got if e["uri"].startswith(prefix)]
                if len(got) >= n:
                    return got
            time.sleep(0.05)
        self.fail("%d log lines for %s, want %d" % (len(got), prefix, n))

    def check_attempts(self, host, prefix, first_status):
        """Round robin alternates: requests whose first pick is the failing
        server log two attempts, the others one."""
        for i in range(4):
            r = self.get("%s%d" % (prefix, i), host=host)
            self.assertEqual(r.status, 200)
        a = "127.0.0.1:%d" % (self.dead if host == "refused.test" else
                              self.silent.getsockname()[1])
        b = self.b.addr
        two = one = 0
        for e in self.entries(prefix, 4):
            self.assertEqual(e["status"], 200)
            if e["upstream_addr"] == b:
                self.assertEqual(e["upstream_status"], "200")
                one += 1
            else:
                self.assertEqual(e["upstream_addr"], "%s, %s" % (a, b))
                self.assertEqual(e["upstream_status"], "%d, 200" % first_status)
                two += 1
            self.assertGreaterEqual(float(e["upstream_time"]), 0.0)
        self.assertGreater(two, 0)
        self.assertGreater(one, 0)

    def test_refused_then_answered(self):
        self.check_attempts("refused.test", "/refused/", 502)

    def test_timed_out_then_answered(self):
        self.check_attempts("silent.test", "/silent/", 504)


if __name__ == "__main__":
    weirtest.main()
