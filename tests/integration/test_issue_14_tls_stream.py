#!/usr/bin/env python3
"""Issue 14: client connections on the transport stream (stream.h). On TLS
a record the socket did not take counts as written and waits in the
stream: it must still hold the send timeout, keep the connection from
lingering or going idle before it has gone, and the last response before
a close must end with close_notify (stream shutdown), never a bare FIN."""

import sys
sys.dont_write_bytecode = True

import os
import socket
import ssl
import time

import tlstest
import weirtest
from polling import wait_open_connections
from weirtest import SERVER, free_port, request_bytes

INI = SERVER + """
listen = 127.0.0.1:@TLSPORT@ tls

[admin]
listen = 127.0.0.1:@ADMIN@

[tls]
cert = @CRT@
key = @KEY@

[limits]
send_timeout = 1s
keepalive_timeout = 30s

[route ping]
match = exact:/healthz
return = 200 ok

[route files]
match = prefix:/files/
strip_prefix = /files
root = @TMP@/www
"""

BIG = 20 << 20
SLACK = 2.5


class TlsStreamTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        crt, key = tlstest.make_cert(tmp, "d", "default.test")
        www = os.path.join(tmp, "www")
        os.makedirs(www)
        weirtest.write_random_file(os.path.join(www, "big.bin"), BIG)
        cls.tls_port = free_port()
        cls.admin_port = free_port()
        return {"TLSPORT": cls.tls_port, "ADMIN": cls.admin_port, "CRT": crt, "KEY": key}

    def strict_socket(self):
        """A TLS socket on which a bare TCP EOF is an error (SSLEOFError)."""
        raw = socket.create_connection((weirtest.HOST, self.tls_port), timeout=10)
        s = tlstest.client_context().wrap_socket(raw, suppress_ragged_eofs=False)
        s.settimeout(10)
        return s

    def test_send_timeout_over_tls(self):
        wait_open_connections(self.admin_port, 0)
        s = self.strict_socket()
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(request_bytes("GET", "/files/big.bin"))
            # Not reading: the socket fills, a record waits, send_timeout
            # closes the connection.
            wait_open_connections(self.admin_port, 0, timeout=1 + SLACK + 2)
        finally:
            s.close()

    def test_close_ends_with_close_notify(self):
        s = self.strict_socket()
        try:
            s.sendall(request_bytes("GET", "/healthz", headers=[("Connection", "close")]))
            data = b""
            for _ in range(100):
                got = s.recv(65536)  # SSLEOFError on a bare FIN
                if not got:
                    break
                data += got
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:40])
            self.assertTrue(data.endswith(b"ok"), data[-40:])
        finally:
            s.close()

    def test_big_file_then_close_notify(self):
        # Many records, the last ones possibly waiting in the stream when
        # the queue is already empty: all arrive, then close_notify.
        s = self.strict_socket()
        try:
            s.sendall(request_bytes("GET", "/files/big.bin", headers=[("Connection", "close")]))
            n = 0
            deadline = time.monotonic() + 30
            for _ in range(1 << 20):
                got = s.recv(65536)
                if not got or time.monotonic() > deadline:
                    break
                n += len(got)
            self.assertGreater(n, BIG)
            head_len = n - BIG
            self.assertLess(head_len, 1024)
        finally:
            s.close()
        self.assertEqual(tlstest.tls_get(self.tls_port, "/healthz").status, 200)


if __name__ == "__main__":
    weirtest.main()
