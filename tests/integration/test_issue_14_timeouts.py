#!/usr/bin/env python3
"""Issue 14: deadlines on the worker's timer wheel instead of a walk of
every connection per tick. The timeout classes test_timeouts,
test_tls_bad_input (handshake), test_proxy_stream (websocket idle),
test_proxy and test_issue_13_timeout_status (upstream connect and read)
already cover are not repeated; this file adds the ones no test had:
lingering close, a proxied request body that stalls, an upstream that
does not take the request body, and the idle-connections gauge, which is
now a count kept on every change instead of a walk (it must still be
exact both ways). Bounds are generous: this is not a benchmark."""

import sys
sys.dont_write_bytecode = True

import socket
import threading
import time

import weirtest
from polling import admin_get, status, wait_open_connections, wait_until
from weirtest import HOST, SERVER, Client, free_port, request_bytes

INI = SERVER + """
[admin]
listen = 127.0.0.1:@ADMIN@

[limits]
header_timeout = 5s
body_timeout = 1s
keepalive_timeout = 30s
max_body_size = 0

[upstream sink]
server = 127.0.0.1:@SINK@
send_timeout = 1s
read_timeout = 30s

[route ping]
match = exact:/healthz
return = 200 ok

[route up]
match = prefix:/up/
proxy = sink
"""

SLACK = 2.5
LINGER_S = 2.0  # conn.c LINGER_MS


class Sink:
    """An upstream that accepts and never reads: its socket fills up."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.bind((HOST, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.conns = []
        self.is_stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def port(self):
        return self.sock.getsockname()[1]

    def _accept(self):
        for _ in range(100000):
            if self.is_stopping:
                return
            try:
                s, _ = self.sock.accept()
                self.conns.append(s)
            except socket.timeout:
                continue
            except OSError:
                return

    def stop(self):
        self.is_stopping = True
        self.thread.join(5)
        for s in self.conns:
            s.close()
        self.sock.close()


def idle_gauge(admin_port):
    for line in admin_get(admin_port, "/metrics").splitlines():
        if line.startswith("weir_connections_idle "):
            return int(float(line.split()[1]))
    raise AssertionError("no weir_connections_idle in /metrics")


class Issue14TimeoutsTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.sink = Sink()
        cls.admin_port = free_port()
        return {"ADMIN": cls.admin_port, "SINK": cls.sink.port()}

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.sink.stop()

    def test_idle_gauge_counts_both_ways(self):
        wait_open_connections(self.admin_port, 0)
        clients = [self.client() for _ in range(5)]
        try:
            for c in clients:
                c.send(request_bytes("GET", "/healthz"))
                self.assertEqual(c.read_response().status, 200)
            wait_until(lambda: idle_gauge(self.admin_port) == 5, "5 idle connections")
            # Half a head: the connection holds a buffer, so it is not idle.
            clients[0].send(b"GET /healthz HTTP/1.1\r\n")
            wait_until(lambda: idle_gauge(self.admin_port) == 4, "4 idle connections")
            clients[0].send(b"Host: x\r\n\r\n")
            self.assertEqual(clients[0].read_response().status, 200)
            wait_until(lambda: idle_gauge(self.admin_port) == 5, "5 idle again")
            for c in clients[:3]:
                c.close()
            wait_until(lambda: idle_gauge(self.admin_port) == 2, "2 idle connections")
        finally:
            for c in clients:
                c.close()
        wait_until(lambda: idle_gauge(self.admin_port) == 0, "no idle connection")

    def test_linger_ends_on_its_deadline(self):
        # After its last response weir shuts its side and drains what the
        # client still sends, for at most LINGER_MS: a client that keeps
        # sending does not hold the connection open past it. (A request
        # pipelined after the one that asked to close is what makes weir
        # linger: it must not turn its close into a reset.)
        wait_open_connections(self.admin_port, 0)
        with self.client() as c:
            c.send(request_bytes("GET", "/healthz", headers=[("Connection", "close")]) +
                   request_bytes("GET", "/healthz"))
            r = c.read_response()
            self.assertEqual(r.status, 200)
            start = time.monotonic()
            closed_after = None
            for _ in range(int((LINGER_S + SLACK) / 0.1) + 1):
                try:
                    c.sock.send(b"x" * 100)
                except OSError:
                    pass  # reset: weir closed while we were sending
                if status(self.admin_port)["connections"]["open"] == 0:
                    closed_after = time.monotonic() - start
                    break
                time.sleep(0.1)
            self.assertIsNotNone(closed_after, "lingering outlived %.1fs" % (LINGER_S + SLACK))
            self.assertGreater(closed_after, LINGER_S * 0.5, "linger ended long before its time")
        self.assertServes()

    def test_close_asked_closes_at_once(self):
        # Issue 18: a client that asked to close and sent nothing more
        # (RFC 9112 §9.6: it will not) is closed as soon as its answer went,
        # without lingering for its FIN: the client keeps its socket open
        # and sends nothing, yet weir holds no connection well before
        # LINGER_MS; the response arrived whole, then the end.
        wait_open_connections(self.admin_port, 0)
        with self.client() as c:
            c.send(request_bytes("GET", "/healthz", headers=[("Connection", "close")]))
            start = time.monotonic()
            r = c.read_response()
            self.assertEqual(r.status, 200)
            wait_open_connections(self.admin_port, 0, timeout=LINGER_S * 0.5)
            self.assertLess(time.monotonic() - start, LINGER_S * 0.5)
            self.assertEqual(c.wait_closed()[0], "eof")
        self.assertServes()

    def test_proxied_body_timeout(self):
        # A proxied request whose body stops arriving: body_timeout closes
        # the client connection (the proxy's read_timeout has not started:
        # the request is not complete).
        with self.client(timeout=10) as c:
            c.send(request_bytes("POST", "/up/x", headers=[("Content-Length", "1000")])
                   + b"y" * 10)
            start = time.monotonic()
            how, _, _ = c.wait_closed(1 + SLACK + 2)
            elapsed = time.monotonic() - start
            self.assertIsNotNone(how, "a stalled proxied body outlived body_timeout")
            self.assertGreater(elapsed, 0.5, "closed long before body_timeout")
        self.assertServes()

    def test_upstream_send_timeout(self):
        # The server takes nothing: the upstream's send_timeout ends the
        # exchange with 504, or the connection is cut.
        with self.client(timeout=10) as c:
            size = 64 << 20
            c.send(request_bytes("POST", "/up/x", headers=[("Content-Length", str(size))]))
            start = time.monotonic()
            piece = b"z" * 65536
            answered = None
            c.sock.settimeout(0.05)
            for _ in range(2000):
                if time.monotonic() - start > 1 + SLACK + 2:
                    break
                try:
                    c.sock.send(piece)
                except socket.timeout:
                    pass
                except OSError:
                    answered = "reset"
                    break
                try:
                    data = c.sock.recv(4096)
                    answered = data if data else "closed"
                    break
                except socket.timeout:
                    continue
                except OSError:
                    answered = "reset"
                    break
            elapsed = time.monotonic() - start
            self.assertIsNotNone(answered, "an upstream that takes nothing outlived send_timeout")
            if isinstance(answered, bytes):
                self.assertTrue(answered.startswith(b"HTTP/1.1 504"), answered[:40])
            self.assertGreater(elapsed, 0.5, "ended long before send_timeout")
        self.assertServes()


if __name__ == "__main__":
    weirtest.main()
