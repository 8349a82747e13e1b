#!/usr/bin/env python3
"""Issue 13.9: an error-log line about a request can be tied to it. Upstream
warnings and rate-limit refusals carry the client address, the request
(method and target, escaped, cut at 256 bytes) and the request id that the
access log shows for the same request."""

import sys
sys.dont_write_bytecode = True

import json
import os
import re

import weirtest
from polling import wait_log, wait_until
from weirtest import SERVER, Client, free_port

INI = SERVER.replace("access_log = off",
                     "access_log = @TMP@/access.log\naccess_log_format = json") + """
log_level = info

[upstream dead]
server = 127.0.0.1:@DEAD@
retries = 0
max_fails = 0

[route dead]
match = prefix:/dead/
proxy = dead

[route limited]
match = exact:/limited
rate_limit = 1r/m burst=1
return = 200 ok
"""


class RequestLogLinesTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        return {"DEAD": str(free_port())}  # nothing listens there: connect is refused

    def access_entry(self, uri):
        path = os.path.join(self.weir.tmp, "access.log")

        def probe():
            if not os.path.exists(path):
                return None
            with open(path) as f:
                found = [json.loads(l) for l in f if l.strip()]
            return [e for e in found if e["uri"] == uri]
        return wait_until(probe, "the access line of %s" % uri)[-1]

    def test_upstream_warning_names_the_request(self):
        target = '/dead/x?q="1"'
        with Client(("127.0.0.1", self.weir.port)) as c:
            c.send(("GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % target.replace('"', "%22"))
                   .encode())
            self.assertEqual(c.read_response().status, 502)
        uri = target.replace('"', "%22")
        entry = self.access_entry(uri)
        line = wait_log(self.weir, r"\[warn\].*upstream dead")[-1]
        self.assertRegex(line, r", client: 127\.0\.0\.1, request: \"GET %s\", request_id: %s$"
                         % (re.escape(uri), entry["request_id"]))

    def test_long_target_is_cut(self):
        # Escaping is the unit test's (a control byte never passes the parser).
        uri = "/dead/" + "a" * 400
        with Client(("127.0.0.1", self.weir.port)) as c:
            c.send(("GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % uri).encode())
            self.assertEqual(c.read_response().status, 502)
        entry = self.access_entry(uri)
        line = wait_log(self.weir, r"request_id: %s$" % entry["request_id"])[-1]
        self.assertIn('request: "GET %s..."' % uri[:256], line)

    def test_rate_limit_refusal_names_the_request(self):
        statuses = []
        for _ in range(3):
            with Client(("127.0.0.1", self.weir.port)) as c:
                c.send(b"GET /limited HTTP/1.1\r\nHost: a\r\n\r\n")
                statuses.append(c.read_response().status)
        self.assertIn(429, statuses)
        line = wait_log(self.weir, r"over rate_limit of route limited")[-1]
        self.assertRegex(line, r", client: 127\.0\.0\.1, request: \"GET /limited\", "
                               r"request_id: [0-9a-f]{32}$")


if __name__ == "__main__":
    weirtest.main()
