#!/usr/bin/env python3
"""Issue 13.7: proxied requests count under their route in /metrics, bytes
included.

weir_http_requests_total counts a proxied answer under its route's name
(the 502 weir makes for a dead upstream too), not under route="", and
weir_http_sent_bytes_total / weir_http_received_bytes_total and /status's
bytes.out / bytes.in include what went through the proxy: here they equal,
byte for byte, what the clients received and sent (heads included, and a
WebSocket tunnel's bytes, whose 101 counts under its route)."""

import sys
sys.dont_write_bytecode = True

import json
import os
import time

import weirtest
from weirtest import SERVER, HOST, Client, free_port, request_bytes
from upstreams import Backend
from test_admin import parse_exposition, value_of

INI = SERVER + """
[upstream app]
server = @APP@

[upstream dead]
server = 127.0.0.1:@DEAD@
retries = 0
max_fails = 0

[route api]
match = prefix:/api/
proxy = app

[route big]
match = exact:/big
proxy = app

[route ws]
match = exact:/ws
proxy = app
websocket = on

[route gone]
match = prefix:/gone/
proxy = dead

[admin]
listen = 127.0.0.1:@ADMIN@
"""


class RouteMetricsTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.app = Backend("app")
        cls.admin_port = free_port()
        return {"APP": cls.app.addr, "DEAD": free_port(), "ADMIN": cls.admin_port}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.app.stop()

    def admin(self, target):
        with Client((HOST, self.admin_port)) as c:
            c.send(b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % target.encode())
            r = c.read_response()
        self.assertEqual(r.status, 200)
        return r.body.decode()

    def requests(self, fams, route, cls):
        return value_of(fams, "weir_http_requests_total", route=route, **{"class": cls})

    def exchange(self, raw, method="GET"):
        """Sends raw on a fresh connection; returns (response, bytes received)."""
        with self.client() as c:
            c.send(raw)
            r = c.read_response(method=method)
        return r, len(r.raw_head) + len(r.body)

    def tunnel(self):
        """A WebSocket-style tunnel: 101, then echoed bytes. Returns (bytes
        sent, bytes received)."""
        raw = request_bytes("GET", "/ws", headers=[("Connection", "Upgrade"),
                                                   ("Upgrade", "websocket")])
        msg = os.urandom(50000)
        with self.client() as c:
            c.send(raw)
            r = c.read_response()
            self.assertEqual(r.status, 101)
            got = len(r.raw_head)
            c.send(msg)
            echoed = c._read_exact(len(msg), time.monotonic() + 5)
            self.assertEqual(echoed, msg)
        return len(raw) + len(msg), got + len(echoed)

    def test_proxied_requests_and_bytes(self):
        sent = received = 0
        statuses = []
        body = os.urandom(200 * 1024)  # read by weir in several pieces
        plan = [request_bytes("GET", "/api/a"), request_bytes("GET", "/big?size=70000"),
                request_bytes("POST", "/api/echo", body=body), request_bytes("GET", "/gone/x"),
                request_bytes("GET", "/gone/y")]
        for raw in plan:
            r, n = self.exchange(raw)
            statuses.append(r.status)
            sent += len(raw)
            received += n
        self.assertEqual(statuses, [200, 200, 200, 502, 502])
        s, r = self.tunnel()
        sent += s
        received += r
        # The worker counts a request once its answer is written: poll.
        deadline = time.monotonic() + 5
        for _ in range(100):
            fams = parse_exposition(self.admin("/metrics"))
            got = (self.requests(fams, "api", "2xx") + self.requests(fams, "big", "2xx"),
                   self.requests(fams, "gone", "5xx") + self.requests(fams, "ws", "1xx"),
                   value_of(fams, "weir_http_sent_bytes_total"),
                   value_of(fams, "weir_http_received_bytes_total"))
            if got == (3, 3, received, sent) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(got, (3, 3, received, sent),
                         "(api+big 2xx, gone 5xx + ws 1xx, bytes out, bytes in) want %r" %
                         ((3, 3, received, sent),))
        for cls in ("1xx", "2xx", "3xx", "4xx", "5xx"):
            self.assertEqual(self.requests(fams, "", cls), 0, "route=\"\" class %s" % cls)
        status = json.loads(self.admin("/status"))
        self.assertEqual(status["bytes"], {"in": sent, "out": received})
        self.assertEqual(status["requests"]["2xx"], 3)
        self.assertEqual(status["requests"]["5xx"], 2)


if __name__ == "__main__":
    weirtest.main()
