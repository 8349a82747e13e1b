#!/usr/bin/env python3
"""Issue 14 (memory on demand): a connection starts with a small read
buffer and grows it only when a head does not fit; what it holds shows in
weir_conn_buffer_bytes. A head up to max_header_size arriving in small
pieces is answered (one byte more: 431), pipelined requests survive a
grow, N connections with half a head hold under 4 KiB each and give it all
back once answered, and an idle connection holds nothing after a proxied
request, as after a static one."""

import sys
sys.dont_write_bytecode = True

import re

import weirtest
from polling import wait_until, wait_open_connections
from weirtest import SERVER, HOST, Client, free_port, request_bytes
from upstreams import Backend

MAX_HEAD = 8192

INI = SERVER + """
[admin]
listen = 127.0.0.1:@ADMIN@

[limits]
max_header_size = 8k

[upstream app]
server = @B1@

[route p]
match = prefix:/p/
proxy = app

[route fixed]
match = prefix:/
return = 200 ok
"""


def head_of_size(target, size):
    """A GET head of exactly size bytes (request line to the final CRLF)."""
    start = b"GET %s HTTP/1.1\r\nHost: localhost\r\nX-Pad: " % target.encode()
    pad = size - len(start) - len(b"\r\n\r\n")
    assert pad > 0
    return start + b"a" * pad + b"\r\n\r\n"


def send_in_pieces(c, data, piece=300):
    for i in range(0, len(data), piece):
        c.send(data[i:i + piece])


class MemoryTest(weirtest.WeirCase):
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

    def metric(self, name):
        with Client((HOST, self.admin_port)) as c:
            c.send(request_bytes("GET", "/metrics"))
            r = c.read_response()
        m = re.search(r"^%s (\d+)$" % re.escape(name), r.body.decode(), re.M)
        if not m:
            raise AssertionError("no %s in /metrics" % name)
        return int(m.group(1))

    def buffer_bytes(self):
        return self.metric("weir_conn_buffer_bytes")

    def wait_buffers(self, pred, what):
        return wait_until(lambda: pred(self.buffer_bytes()), what)

    def wait_no_buffers(self):
        wait_until(lambda: self.buffer_bytes() == 0, "weir_conn_buffer_bytes 0")

    def test_head_of_max_size_in_pieces_is_answered(self):
        with self.client() as c:
            send_in_pieces(c, head_of_size("/a", MAX_HEAD))
            r = c.read_response()
            self.assertEqual(r.status, 200)
            # The connection goes on after the grow.
            c.send(request_bytes("GET", "/b"))
            self.assertEqual(c.read_response().status, 200)

    def test_head_one_byte_over_is_431(self):
        with self.client() as c:
            send_in_pieces(c, head_of_size("/a", MAX_HEAD + 1))
            self.assertEqual(c.read_response().status, 431)

    def test_pipelined_requests_across_a_grow(self):
        small = request_bytes("GET", "/one")
        big = head_of_size("/two", 6000)
        with self.client() as c:
            # The big head starts in the first buffer behind a small request
            # and ends past it: compacted, then grown.
            c.send(small + big[:1500])
            c.send(big[1500:] + small + request_bytes("GET", "/three"))
            rs = c.read_responses(["GET", "GET", "GET", "GET"])
            self.assertEqual([r.status for r in rs], [200, 200, 200, 200])

    def test_body_behind_a_small_first_buffer(self):
        body = bytes(range(256)) * 40  # 10 KiB: more than the first buffer
        with self.client() as c:
            c.send(request_bytes("POST", "/p/up", body=body))
            r = c.read_response()
            self.assertEqual(r.status, 200)
            c.send(request_bytes("POST", "/x", body=body) + request_bytes("GET", "/y"))
            self.assertEqual([r.status for r in c.read_responses(["POST", "GET"])], [200, 200])

    def test_half_heads_hold_little_and_give_it_back(self):
        n = 40
        half = b"GET /fixed HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slow"
        self.wait_no_buffers()
        clients = []
        try:
            for _ in range(n):
                c = self.client()
                clients.append(c)
                c.send(half)
            wait_open_connections(self.admin_port, n)
            # Every one has read its bytes: each holds at least a first buffer.
            held = self.wait_buffers(lambda b: b >= n * 1024, "%d read buffers" % n)
            held = self.buffer_bytes()
            self.assertLessEqual(held, n * 4096, "half a head costs under 4 KiB")
            for c in clients:
                c.send(b"\r\n\r\n")
            for c in clients:
                self.assertEqual(c.read_response().status, 200)
            # Answered and idle: nothing held any more.
            self.wait_no_buffers()
        finally:
            for c in clients:
                c.close()

    def test_idle_after_proxied_holds_what_after_static_holds(self):
        with self.client() as s, self.client() as p:
            s.send(request_bytes("GET", "/static"))
            self.assertEqual(s.read_response().status, 200)
            p.send(request_bytes("GET", "/p/x"))
            self.assertEqual(p.read_response().status, 200)
            self.wait_no_buffers()
            wait_until(lambda: self.metric("weir_connections_idle") == 2, "2 idle connections")


if __name__ == "__main__":
    weirtest.main()
