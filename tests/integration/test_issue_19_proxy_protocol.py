#!/usr/bin/env python3
"""Issue 19 point 1: PROXY protocol in (v1 and v2) on listeners with the
proxy_protocol flag, from [server] proxy_protocol_from only.

The carried address becomes the client everywhere: the access log,
X-Forwarded-For to the upstream, every request of a keep-alive connection,
max_connections_per_ip. Covered: v1 TCP4/TCP6/UNKNOWN, v2 TCP4 with TLVs
and LOCAL (a balancer's health check: the real peer stays the client), a
header split across writes, a TLS listener (the handshake follows the
header), a malformed header, a header that never completes
(header_timeout), a sender not in proxy_protocol_from (closed unread), a
config without proxy_protocol_from (refused at load), and the metrics."""

import sys
sys.dont_write_bytecode = True

import json
import os
import socket
import struct

import tlstest
import upstreams
import weirtest
from polling import metric, wait_until

INI = """[server]
listen = 127.0.0.1:@PORT@ proxy_protocol
listen = 127.0.0.1:@TLSPORT@ tls proxy_protocol
listen = 127.0.0.1:@PLAINPORT@
proxy_protocol_from = 10.9.9.9 127.0.0.0/8
workers = 1
access_log = @TMP@/access.log
error_log = stderr

[limits]
header_timeout = 1s
max_connections_per_ip = 1

[admin]
listen = 127.0.0.1:@ADMIN@

[tls]
cert = @CRT@
key = @KEY@

[upstream app]
server = @APP@

[route api]
match = prefix:/api/
strip_prefix = /api
proxy = app

[route ok]
match = prefix:/
return = 200 ok
"""

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(cmd=0x21, fam=0x11, src="192.0.2.44", dst="198.51.100.1", sport=40000, dport=443,
       tlvs=b""):
    if fam == 0x11:
        addrs = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(">HH", sport, dport)
    elif fam == 0x21:
        addrs = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
                 + struct.pack(">HH", sport, dport))
    else:
        addrs = b""
    body = addrs + tlvs
    return SIG + bytes([cmd, fam]) + struct.pack(">H", len(body)) + body


def v1(src="192.0.2.33", dst="198.51.100.1", proto="TCP4"):
    return ("PROXY %s %s %s 51234 80\r\n" % (proto, src, dst)).encode()


class ProxyProtocolTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.app = upstreams.Backend("app", keep_body=False)
        cls.admin_port = weirtest.free_port()
        cls.tls_port = weirtest.free_port()
        cls.plain_port = weirtest.free_port()
        crt, key = tlstest.make_cert(tmp, "site", "localhost")
        return {"APP": cls.app.addr, "ADMIN": cls.admin_port, "TLSPORT": cls.tls_port,
                "PLAINPORT": cls.plain_port, "CRT": crt, "KEY": key, "TMP": tmp}

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.app.stop()

    def errors(self, reason):
        return metric(self.admin_port, 'weir_proxy_protocol_errors_total{reason="%s"}' % reason)

    def connect(self, header, pieces=1):
        """A connection that sent header, in pieces: each piece is sent once
        weir has taken the last one off the socket (its received-bytes
        counter says so), so weir sees the header in parts."""
        c = weirtest.Client(("127.0.0.1", self.weir.port), timeout=5)
        step = max(1, len(header) // pieces)
        for i in range(0, len(header), step):
            before = metric(self.admin_port, "weir_http_received_bytes_total")
            piece = header[i:i + step]
            c.sock.sendall(piece)
            if pieces > 1:
                wait_until(lambda: metric(self.admin_port, "weir_http_received_bytes_total")
                           >= before + len(piece), "weir to read the piece")
        return c

    def echo_client(self, c, n=1):
        """X-Forwarded-For as the upstream saw it, for n requests on c."""
        seen = []
        for _ in range(n):
            c.send(weirtest.request_bytes("GET", "/api/echo"))
            r = c.read_response()
            self.assertEqual(r.status, 200)
            headers = dict((k.lower(), v) for k, v in json.loads(r.body)["headers"])
            seen.append(headers.get("x-forwarded-for"))
        return seen

    def access_log_has(self, addr):
        path = os.path.join(self.tmp, "access.log")
        if not os.path.exists(path):
            return False
        with open(path) as f:
            return any(line.startswith(addr + " ") for line in f)

    def test_v1_keep_alive(self):
        with self.connect(v1("192.0.2.33")) as c:
            self.assertEqual(self.echo_client(c, 3), ["192.0.2.33"] * 3)
        wait_until(lambda: self.access_log_has("192.0.2.33"), "the carried address logged")

    def test_v1_tcp6_and_unknown(self):
        with self.connect(v1("2001:db8::7", "2001:db8::1", "TCP6")) as c:
            self.assertEqual(self.echo_client(c), ["2001:db8::7"])
        with self.connect(b"PROXY UNKNOWN\r\n") as c:
            self.assertEqual(self.echo_client(c), ["127.0.0.1"])

    def test_v2_with_tlvs_and_split(self):
        tlvs = b"\x01\x00\x02h2" + b"\x04\x00\x03abc"  # ALPN, NOOP
        with self.connect(v2(src="198.51.100.77", tlvs=tlvs), pieces=5) as c:
            self.assertEqual(self.echo_client(c), ["198.51.100.77"])
        with self.connect(v1("192.0.2.99"), pieces=40) as c:  # v1 byte by byte
            self.assertEqual(self.echo_client(c), ["192.0.2.99"])
        with self.connect(v2(fam=0x21, src="2001:db8::99", dst="2001:db8::1")) as c:
            self.assertEqual(self.echo_client(c), ["2001:db8::99"])

    def test_v2_local_keeps_the_peer(self):
        with self.connect(v2(cmd=0x20, fam=0x00)) as c:
            self.assertEqual(self.echo_client(c), ["127.0.0.1"])

    def test_request_in_the_same_write(self):
        with self.connect(v1("192.0.2.5") + weirtest.request_bytes("GET", "/api/echo")) as c:
            r = c.read_response()
            headers = dict((k.lower(), v) for k, v in json.loads(r.body)["headers"])
            self.assertEqual(headers["x-forwarded-for"], "192.0.2.5")

    def test_tls_after_the_header(self):
        raw = socket.create_connection(("127.0.0.1", self.tls_port), timeout=5)
        raw.sendall(v2(src="203.0.113.8"))
        ctx = tlstest.client_context()
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        with weirtest.Client(sock=s, timeout=5) as c:
            self.assertEqual(self.echo_client(c), ["203.0.113.8"])

    def test_malformed_and_timeout(self):
        before = self.errors("malformed")
        for bad in (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", b"GET / HTTP/1.1\r\n\r\n",
                    SIG + b"\x21\x12\x00\x0c" + bytes(12)):
            with self.connect(bad) as c:
                self.assertClosedByWeir(c, what="after %r" % bad)
        wait_until(lambda: self.errors("malformed") >= before + 3, "malformed counted")
        before = self.errors("timeout")
        with self.connect(v1()[:20]) as c:  # never completed: header_timeout (1s)
            self.assertClosedByWeir(c, timeout=4, what="on header_timeout")
        wait_until(lambda: self.errors("timeout") == before + 1, "timeout counted")
        with self.connect(v1("192.0.2.1")) as c:  # still serving
            self.assertEqual(self.echo_client(c), ["192.0.2.1"])

    def test_per_ip_limit_counts_the_carried_address(self):
        # max_connections_per_ip = 1: two clients behind one balancer are
        # two addresses; the same client twice is refused.
        a = self.connect(v1("192.0.2.61"))
        b = self.connect(v1("192.0.2.62"))
        self.assertEqual(self.echo_client(a), ["192.0.2.61"])
        self.assertEqual(self.echo_client(b), ["192.0.2.62"])
        again = self.connect(v1("192.0.2.61"))
        self.assertClosedByWeir(again, what="over max_connections_per_ip")
        for c in (a, b, again):
            c.close()

    def test_plain_listener_unchanged(self):
        with weirtest.Client(("127.0.0.1", self.plain_port), timeout=5) as c:
            self.assertEqual(self.echo_client(c), ["127.0.0.1"])


class UntrustedSenderTest(weirtest.WeirCase):
    INI = """[server]
listen = 127.0.0.1:@PORT@ proxy_protocol
proxy_protocol_from = 10.0.0.0/8
workers = 1
error_log = stderr

[route ok]
match = prefix:/
return = 200 ok
"""

    def test_closed_unread(self):
        with weirtest.Client(("127.0.0.1", self.weir.port), timeout=5) as c:
            c.sock.sendall(v1("192.0.2.1") + weirtest.request_bytes("GET", "/"))
            self.assertClosedByWeir(c, what="a sender not in proxy_protocol_from")

    def test_needs_senders(self):
        path = os.path.join(self.tmp, "bad.ini")
        with open(path, "w") as f:
            f.write("[server]\nlisten = 127.0.0.1:1 proxy_protocol\n\n[route ok]\n"
                    "match = prefix:/\nreturn = 200\n")
        p = weirtest.run_weir(["-t", "-c", path])
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("bad.ini:2: [server] listen: proxy_protocol needs [server] "
                      "proxy_protocol_from", p.stderr + p.stdout)


if __name__ == "__main__":
    weirtest.main()
