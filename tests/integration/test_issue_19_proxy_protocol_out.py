#!/usr/bin/env python3
"""Issue 19 point 2: PROXY protocol out. An upstream with
send_proxy_protocol = v1 or v2 gets a PROXY header at the start of every
connection, naming the client (the PROXY-in address when weir itself is
behind a balancer); over TLS the header comes before the handshake.
Connections are not pooled (one client each): two requests of one client
make two upstream connections, each with its header. Active health checks
send a LOCAL (v2) or UNKNOWN (v1) header, and the server stays up."""

import sys
sys.dont_write_bytecode = True

import json
import socket
import ssl
import struct
import threading

import tlstest
import weirtest
from polling import wait_until, metric

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


class PPBackend:
    """Reads a PROXY header (v1 or v2) at each connection's start, then
    (optionally TLS, then) HTTP/1.1 requests; answers each with JSON:
    the header as parsed and the connection's number."""

    def __init__(self, tls=None):
        self.tls = tls
        self.headers = []   # (conn number, parsed header) in arrival order
        self.n_conns = 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.running = True
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def stop(self):
        self.running = False
        self.thread.join(5)
        self.sock.close()

    def _loop(self):
        while self.running:
            try:
                s, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.n_conns += 1
                n = self.n_conns
            threading.Thread(target=self._serve, args=(s, n), daemon=True).start()

    @staticmethod
    def _read_exact(s, n):
        data = b""
        for _ in range(1000):
            if len(data) >= n:
                break
            chunk = s.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def _header(self, s):
        first = self._read_exact(s, 12)
        if first == SIG:
            rest = self._read_exact(s, 4)
            cmd, fam, length = rest[0], rest[1], struct.unpack(">H", rest[2:4])[0]
            body = self._read_exact(s, length)
            h = {"v": 2, "cmd": "local" if cmd == 0x20 else "proxy", "fam": fam}
            if fam == 0x11:
                h["src"] = socket.inet_ntoa(body[0:4])
                h["dst"] = socket.inet_ntoa(body[4:8])
                h["dport"] = struct.unpack(">H", body[10:12])[0]
            elif fam == 0x21:
                h["src"] = socket.inet_ntop(socket.AF_INET6, body[0:16])
            return h
        line = first
        for _ in range(200):
            if line.endswith(b"\r\n"):
                break
            line += self._read_exact(s, 1)
        parts = line.decode().split()
        h = {"v": 1, "proto": parts[1]}
        if parts[1] in ("TCP4", "TCP6"):
            h.update(src=parts[2], dst=parts[3], sport=int(parts[4]), dport=int(parts[5]))
        return h

    def _serve(self, s, n):
        s.settimeout(10)
        try:
            h = self._header(s)
            with self.lock:
                self.headers.append((n, h))
            if self.tls is not None:
                s = self.tls.wrap_socket(s, server_side=True)
            buf = b""
            for _ in range(100):
                while b"\r\n\r\n" not in buf:
                    chunk = s.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                body = json.dumps({"pp": h, "conn": n}).encode()
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(body) + body)
        except (EOFError, OSError, ssl.SSLError, ValueError, IndexError):
            return
        finally:
            s.close()


class ProxyProtocolOutTest(weirtest.WeirCase):
    INI = """[server]
listen = 127.0.0.1:@PORT@
listen = 127.0.0.1:@PPPORT@ proxy_protocol
proxy_protocol_from = 127.0.0.1
workers = 1
error_log = stderr

[admin]
listen = 127.0.0.1:@ADMIN@

[upstream one]
server = @B1@
send_proxy_protocol = v1
keepalive = 8
health_check = GET /healthz
health_interval = 200ms

[upstream two]
server = @B2@
send_proxy_protocol = v2
health_check = GET /healthz
health_interval = 200ms

[upstream sec]
server = @B3@
send_proxy_protocol = v2
tls = on
tls_verify = off

[route one]
match = prefix:/one/
proxy = one

[route two]
match = prefix:/two/
proxy = two

[route sec]
match = prefix:/sec/
proxy = sec
"""

    @classmethod
    def make_subst(cls, tmp):
        crt, key = tlstest.make_cert(tmp, "up", "localhost")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        cls.b1, cls.b2, cls.b3 = PPBackend(), PPBackend(), PPBackend(tls=ctx)
        cls.pp_port = weirtest.free_port()
        cls.admin_port = weirtest.free_port()
        return {"B1": cls.b1.addr, "B2": cls.b2.addr, "B3": cls.b3.addr,
                "PPPORT": cls.pp_port, "ADMIN": cls.admin_port}

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            for b in (cls.b1, cls.b2, cls.b3):
                b.stop()

    def get_json(self, c, target):
        c.send(weirtest.request_bytes("GET", target))
        r = c.read_response()
        self.assertEqual(r.status, 200, r)
        return json.loads(r.body)

    def test_v1_names_the_client_on_each_connection(self):
        with self.client() as c:
            a = self.get_json(c, "/one/x")
            b = self.get_json(c, "/one/y")
        self.assertEqual(a["pp"]["proto"], "TCP4")
        self.assertEqual(a["pp"]["src"], "127.0.0.1")
        self.assertEqual(a["pp"]["sport"], 0)  # weir keeps no client ports
        self.assertEqual(a["pp"]["dport"], int(self.b1.addr.split(":")[1]))
        self.assertNotEqual(a["conn"], b["conn"])  # not pooled: one client each
        self.assertEqual(b["pp"]["src"], "127.0.0.1")

    def test_v2_carries_the_proxy_in_address(self):
        with weirtest.Client(("127.0.0.1", self.pp_port), timeout=5) as c:
            c.sock.sendall(b"PROXY TCP4 192.0.2.77 198.51.100.1 4000 80\r\n")
            got = self.get_json(c, "/two/x")
        self.assertEqual(got["pp"], {"v": 2, "cmd": "proxy", "fam": 0x11, "src": "192.0.2.77",
                                     "dst": "127.0.0.1",
                                     "dport": int(self.b2.addr.split(":")[1])})
        with weirtest.Client(("127.0.0.1", self.pp_port), timeout=5) as c:
            c.sock.sendall(b"PROXY TCP6 2001:db8::5 2001:db8::1 4000 80\r\n")
            got = self.get_json(c, "/two/x")
        self.assertEqual(got["pp"]["fam"], 0x21)  # IPv6, the server's address mapped
        self.assertEqual(got["pp"]["src"], "2001:db8::5")

    def test_tls_upstream_header_before_handshake(self):
        with weirtest.Client(("127.0.0.1", self.pp_port), timeout=5) as c:
            c.sock.sendall(b"PROXY TCP4 203.0.113.3 198.51.100.1 4000 80\r\n")
            got = self.get_json(c, "/sec/x")
        self.assertEqual(got["pp"]["src"], "203.0.113.3")

    def test_health_checks_send_local(self):
        wait_until(lambda: any(h.get("cmd") == "local" for _, h in self.b2.headers),
                   "a LOCAL header from the health check")
        wait_until(lambda: any(h.get("proto") == "UNKNOWN" for _, h in self.b1.headers),
                   "an UNKNOWN header from the v1 health check")
        for upstream, b in (("one", self.b1), ("two", self.b2)):
            name = 'weir_upstream_server_up{upstream="%s",server="%s"}' % (upstream, b.addr)
            wait_until(lambda: metric(self.admin_port, name) == 1, "%s up" % upstream)


if __name__ == "__main__":
    weirtest.main()
