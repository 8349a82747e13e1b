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

import tlstest
import upstreams
import weirtest
from polling import wait_until, metric

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
        ctx = tlstest.server_context(tlstest.make_cert(tmp, "up", "localhost"))
        cls.b1, cls.b2, cls.b3 = (upstreams.Backend(name, proxy_protocol=True, tls=tls)
                                  for name, tls in (("b1", None), ("b2", None), ("b3", ctx)))
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
            a = self.get_json(c, "/one/echo")
            b = self.get_json(c, "/one/echo?y")
        self.assertEqual(a["pp"]["proto"], "TCP4")
        self.assertEqual(a["pp"]["src"], "127.0.0.1")
        self.assertEqual(a["pp"]["sport"], 0)  # weir keeps no client ports
        self.assertEqual(a["pp"]["dport"], int(self.b1.addr.split(":")[1]))
        self.assertNotEqual(a["conn"], b["conn"])  # not pooled: one client each
        self.assertEqual(b["pp"]["src"], "127.0.0.1")

    def test_v2_carries_the_proxy_in_address(self):
        with weirtest.Client(("127.0.0.1", self.pp_port), timeout=5) as c:
            c.sock.sendall(b"PROXY TCP4 192.0.2.77 198.51.100.1 4000 80\r\n")
            got = self.get_json(c, "/two/echo")
        self.assertEqual(got["pp"], {"v": 2, "cmd": "proxy", "fam": 0x11, "src": "192.0.2.77",
                                     "dst": "127.0.0.1",
                                     "dport": int(self.b2.addr.split(":")[1])})
        with weirtest.Client(("127.0.0.1", self.pp_port), timeout=5) as c:
            c.sock.sendall(b"PROXY TCP6 2001:db8::5 2001:db8::1 4000 80\r\n")
            got = self.get_json(c, "/two/echo")
        self.assertEqual(got["pp"]["fam"], 0x21)  # IPv6, the server's address mapped
        self.assertEqual(got["pp"]["src"], "2001:db8::5")

    def test_tls_upstream_header_before_handshake(self):
        with weirtest.Client(("127.0.0.1", self.pp_port), timeout=5) as c:
            c.sock.sendall(b"PROXY TCP4 203.0.113.3 198.51.100.1 4000 80\r\n")
            got = self.get_json(c, "/sec/echo")
        self.assertEqual(got["pp"]["src"], "203.0.113.3")

    def test_health_checks_send_local(self):
        wait_until(lambda: any(h.get("cmd") == "local" for _, h in self.b2.proxy_headers),
                   "a LOCAL header from the health check")
        wait_until(lambda: any(h.get("proto") == "UNKNOWN" for _, h in self.b1.proxy_headers),
                   "an UNKNOWN header from the v1 health check")
        for upstream, b in (("one", self.b1), ("two", self.b2)):
            name = 'weir_upstream_server_up{upstream="%s",server="%s"}' % (upstream, b.addr)
            wait_until(lambda: metric(self.admin_port, name) == 1, "%s up" % upstream)


if __name__ == "__main__":
    weirtest.main()
