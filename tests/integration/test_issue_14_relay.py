#!/usr/bin/env python3
"""Issue 14: the WebSocket tunnel is a generic two-stream relay (relay.h).
A client that half-closes after its last bytes still gets everything the
server sends back, then the server's end (before, the first end on either
side cut the tunnel and the answer with it); the tunnel's bytes count in
/status both ways; the tunnel still ends when idle."""

import sys
sys.dont_write_bytecode = True

import os
import socket
import time

import weirtest
from polling import status, wait_open_connections
from weirtest import SERVER, free_port, request_bytes
from upstreams import Backend

INI = SERVER + """
[admin]
listen = 127.0.0.1:@ADMIN@

[upstream app]
server = @B1@

[route ws]
match = prefix:/ws
proxy = app
websocket = on
websocket_timeout = 2s
"""

UPGRADE = request_bytes("GET", "/ws", headers=[("Connection", "Upgrade"),
                                               ("Upgrade", "websocket")])


class RelayTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.b1 = Backend("b1", keep_body=False)
        cls.admin_port = free_port()
        return {"B1": cls.b1.addr, "ADMIN": cls.admin_port}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.b1.stop()

    def open_tunnel(self, c):
        c.send(UPGRADE)
        r = c.read_response()
        self.assertEqual(r.status, 101)
        return r

    def test_half_close_keeps_the_answer(self):
        msg = os.urandom(300 * 1024)
        with self.client(timeout=10) as c:
            self.open_tunnel(c)
            c.sock.sendall(msg)
            c.sock.shutdown(socket.SHUT_WR)  # RFC 9112 §9.6: our side is done
            got = c.buf
            c.buf = b""
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                data = c.sock.recv(65536)
                if not data:
                    break
                got += data
            # The echo server closes once it sees our end: all of it came
            # back first, then the end.
            self.assertEqual(len(got), len(msg))
            self.assertEqual(got, msg)
        wait_open_connections(self.admin_port, 0)
        self.assertServes("/ws/plain-after", status=200)

    def test_tunnel_bytes_counted(self):
        wait_open_connections(self.admin_port, 0)
        before = status(self.admin_port)["bytes"]
        msg = os.urandom(50000)
        with self.client(timeout=10) as c:
            head = self.open_tunnel(c)
            c.send(msg)
            echoed = c._read_exact(len(msg), time.monotonic() + 5)
            self.assertEqual(echoed, msg)
        wait_open_connections(self.admin_port, 0)
        after = status(self.admin_port)["bytes"]
        self.assertEqual(after["in"] - before["in"], len(UPGRADE) + len(msg))
        self.assertEqual(after["out"] - before["out"], len(head.raw_head) + len(msg))

    def test_idle_tunnel_ends(self):
        with self.client(timeout=10) as c:
            self.open_tunnel(c)
            start = time.monotonic()
            how, _, _ = c.wait_closed(2 + 3)
            self.assertIsNotNone(how, "an idle tunnel outlived websocket_timeout")
            self.assertGreater(time.monotonic() - start, 1.0)


if __name__ == "__main__":
    weirtest.main()
