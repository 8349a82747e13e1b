#!/usr/bin/env python3
"""Issue 19 point 6 (address part): per route allow and deny (first match
wins; a list that allows some lets only those in), 403 otherwise; the
client is the PROXY header's address on a proxy_protocol listener; HTTP/2
routes the same; [admin] allow and deny close other clients at once."""

import sys
sys.dont_write_bytecode = True

import shutil
import socket
import subprocess
import unittest

import weirtest

INI = """[server]
listen = 127.0.0.1:@PORT@ h2c
listen = 127.0.0.1:@PPPORT@ proxy_protocol
proxy_protocol_from = 127.0.0.1
workers = 1
error_log = stderr

[route only-loopback]
match = prefix:/lo/
allow = 127.0.0.1 ::1
return = 200 lo

[route not-loopback]
match = prefix:/notlo/
deny = 127.0.0.0/8
return = 200 notlo

[route first-match]
match = prefix:/first/
deny = 10.0.0.0/8
allow = all
return = 200 first

[route office]
match = prefix:/office/
deny = 192.0.2.13
allow = 192.0.2.0/24 2001:db8::/32
return = 200 office
"""


class AccessTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.pp_port = weirtest.free_port()
        return {"PPPORT": cls.pp_port}

    def via_proxy(self, addr, target):
        """One request on the proxy_protocol listener claiming addr."""
        proto = "TCP6" if ":" in addr else "TCP4"
        dst = "2001:db8::1" if ":" in addr else "198.51.100.1"
        with weirtest.Client(("127.0.0.1", self.pp_port), timeout=5) as c:
            c.sock.sendall(("PROXY %s %s %s 1000 80\r\n" % (proto, addr, dst)).encode())
            c.send(weirtest.request_bytes("GET", target))
            return c.read_response()

    def test_direct_clients(self):
        self.assertServes("/lo/x", status=200, body=b"lo")
        self.assertServes("/notlo/x", status=403)
        self.assertServes("/first/x", status=200, body=b"first")
        self.assertServes("/office/x", status=403)  # 127.0.0.1 is not the office

    def test_carried_address_decides(self):
        self.assertEqual(self.via_proxy("192.0.2.7", "/office/x").status, 200)
        self.assertEqual(self.via_proxy("192.0.2.13", "/office/x").status, 403)  # denied first
        self.assertEqual(self.via_proxy("2001:db8::9", "/office/x").status, 200)
        self.assertEqual(self.via_proxy("198.51.100.4", "/office/x").status, 403)
        self.assertEqual(self.via_proxy("10.3.3.3", "/first/x").status, 403)
        self.assertEqual(self.via_proxy("198.51.100.4", "/first/x").status, 200)
        self.assertEqual(self.via_proxy("198.51.100.4", "/lo/x").status, 403)
        self.assertEqual(self.via_proxy("198.51.100.4", "/notlo/x").status, 200)

    @unittest.skipUnless(shutil.which("curl"), "curl is needed")
    def test_http2(self):
        for target, want in (("/lo/x", "200"), ("/notlo/x", "403")):
            p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                "--http2-prior-knowledge",
                                "http://127.0.0.1:%d%s" % (self.weir.port, target)],
                               capture_output=True, timeout=30)
            self.assertEqual(p.stdout.decode(), want, target)


class AdminAccessTest(weirtest.WeirCase):
    INI = """[server]
listen = 127.0.0.1:@PORT@
workers = 1
error_log = stderr

[admin]
listen = 127.0.0.1:@ADMIN@
allow = 10.0.0.0/8

[route ok]
match = prefix:/
return = 200 ok
"""

    @classmethod
    def make_subst(cls, tmp):
        cls.admin_port = weirtest.free_port()
        return {"ADMIN": cls.admin_port}

    def test_admin_closed_to_others(self):
        with weirtest.Client(("127.0.0.1", self.admin_port), timeout=5) as c:
            try:
                c.send(weirtest.request_bytes("GET", "/status"))
            except OSError:
                pass  # closed before our bytes went
            self.assertClosedByWeir(c, what="a client [admin] allow does not list")
        self.assertServes("/", status=200)


if __name__ == "__main__":
    weirtest.main()
