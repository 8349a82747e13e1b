#!/usr/bin/env python3
"""Issue 14 (memory on demand, proxy side): a proxied exchange takes its
32 KiB upstream response buffer only when the response is read, and gives
it back when the exchange ends; weir_proxy_buffer_bytes shows what is held.

A client sending a slow upload holds no response buffer while the server
waits for the body; once the server has sent part of its response (and
holds the rest) the exchange holds one buffer; after the answer, none."""

import sys
sys.dont_write_bytecode = True

import socket
import threading

import weirtest
from polling import wait_until, metric
from weirtest import SERVER, free_port

UBUF = 32 * 1024
BODY_LEN = 4000

INI = SERVER + """
[admin]
listen = 127.0.0.1:@ADMIN@

[upstream app]
server = 127.0.0.1:@APP@

[route p]
match = prefix:/
proxy = app
"""


class HoldingServer:
    """One connection at a time: reads a request head and its
    Content-Length body, answers half its 10-byte body, and sends the rest
    when release is set. Every wait bounded."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        self.got_head = threading.Event()
        self.sent_half = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        s, _ = self.sock.accept()
        s.settimeout(10)
        with s:
            data = b""
            for _ in range(1000):
                if b"\r\n\r\n" in data:
                    break
                data += s.recv(65536)
            self.got_head.set()
            head, _, body = data.partition(b"\r\n\r\n")
            for _ in range(10000):
                if len(body) >= BODY_LEN:
                    break
                chunk = s.recv(65536)
                if not chunk:
                    return
                body += chunk
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345")
            self.sent_half.set()
            self.release.wait(10)
            s.sendall(b"67890")

    def stop(self):
        self.release.set()
        self.thread.join(5)
        self.sock.close()


class ProxyBuffersTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.app = HoldingServer()
        cls.admin_port = free_port()
        return {"APP": cls.app.port, "ADMIN": cls.admin_port}

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.app.stop()

    def gauge(self, name):
        return metric(self.admin_port, name)

    def held(self):
        return self.gauge("weir_proxy_buffer_bytes")

    def test_buffer_taken_with_the_response_and_given_back(self):
        head = (b"POST /up HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n"
                % BODY_LEN)
        with self.client() as c:
            c.send(head + b"x" * 100)
            # The server has the head: the exchange is in flight, waiting
            # for the rest of the upload. The proxy's tick publishes both
            # gauges together: once the pool entry the exchange made shows,
            # the buffer gauge is from after the exchange began too.
            self.assertTrue(self.app.got_head.wait(10), "the server got the request head")
            wait_until(lambda: self.gauge("weir_upstream_pool_entries") >= 1,
                       "a tick after the exchange began")
            self.assertEqual(self.held(), 0, "no response buffer during the upload")
            c.send(b"x" * (BODY_LEN - 100))
            self.assertTrue(self.app.sent_half.wait(10), "the server answered half")
            wait_until(lambda: self.held() == UBUF, "one response buffer while relaying")
            self.app.release.set()
            r = c.read_response()
            self.assertEqual((r.status, r.body), (200, b"1234567890"))
        wait_until(lambda: self.held() == 0, "the buffer given back")


if __name__ == "__main__":
    weirtest.main()
