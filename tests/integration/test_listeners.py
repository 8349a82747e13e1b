#!/usr/bin/env python3
"""Listeners and workers: two TCP listen lines, a unix socket, IPv6 [::1]
(skipped without IPv6), and workers = 2 serving concurrent clients."""

import sys
sys.dont_write_bytecode = True

import os
import socket
import threading
import unittest

import weirtest
from weirtest import Client, HOST, Weir, free_port, have_ipv6, request_bytes

ROUTES = """
[route ping]
match = exact:/healthz
return = 200 ok
"""


class MultiListenTest(weirtest.WeirCase):
    INI = """[server]
listen = 127.0.0.1:@PORT@
listen = 127.0.0.1:@PORT2@
listen = unix:@SOCK@
workers = 2
access_log = off
""" + ROUTES

    @classmethod
    def make_subst(cls, tmp):
        cls.port2 = free_port()
        cls.sock_path = os.path.join(tmp, "weir.sock")
        return {"PORT2": cls.port2, "SOCK": cls.sock_path}

    def ask(self, c):
        with c:
            c.send(request_bytes("GET", "/healthz"))
            r = c.read_response()
            c.send(request_bytes("GET", "/healthz"))
            r2 = c.read_response()
        self.assertEqual((r.status, r.body), (200, b"ok"))
        self.assertEqual((r2.status, r2.body), (200, b"ok"))

    def test_first_port(self):
        self.ask(Client((HOST, self.weir.port)))

    def test_second_port(self):
        self.ask(Client((HOST, self.port2)))

    def test_unix_socket(self):
        self.assertTrue(os.path.exists(self.sock_path))
        self.ask(Client.unix(self.sock_path))

    def test_unix_socket_host_optional_http10(self):
        with Client.unix(self.sock_path) as c:
            c.send(b"GET /healthz HTTP/1.0\r\n\r\n")
            r = c.read_response()
        self.assertEqual(r.status, 200)

    def test_workers_two_concurrent(self):
        results = []
        lock = threading.Lock()

        def one(port):
            try:
                with Client((HOST, port)) as c:
                    for _ in range(5):
                        c.send(request_bytes("GET", "/healthz"))
                        r = c.read_response()
                        with lock:
                            results.append(r.status)
            except Exception as e:  # reported below
                with lock:
                    results.append(repr(e))

        threads = [threading.Thread(target=one, args=(self.weir.port if i % 2 else self.port2,),
                                    daemon=True) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        self.assertEqual(results, [200] * 100)

    def test_many_connections_at_once(self):
        clients = [Client((HOST, self.weir.port)) for _ in range(50)]
        try:
            for c in clients:
                c.send(request_bytes("GET", "/healthz"))
            for c in clients:
                self.assertEqual(c.read_response().status, 200)
        finally:
            for c in clients:
                c.close()


@unittest.skipUnless(have_ipv6(), "no IPv6 loopback on this machine")
class Ipv6Test(weirtest.WeirCase):
    INI = """[server]
listen = [::1]:@PORT6@
workers = 1
access_log = off
""" + ROUTES

    @classmethod
    def setUpClass(cls):
        cls.port6 = free_port(socket.AF_INET6, "::1")
        tmp = weirtest.tempfile.mkdtemp(prefix="weirt-")
        cls.weir = Weir(cls.INI, subst={"PORT6": cls.port6}, tmpdir=tmp, start=False,
                        ready=("tcp", "::1", cls.port6))
        cls.weir.own_tmp = True
        try:
            cls.weir.start()
        except BaseException:
            cls.weir.cleanup()
            raise

    def test_ipv6(self):
        with Client(("::1", self.port6), family=socket.AF_INET6) as c:
            c.send(request_bytes("GET", "/healthz", host="[::1]:%d" % self.port6))
            r = c.read_response()
        self.assertEqual((r.status, r.body), (200, b"ok"))


if __name__ == "__main__":
    weirtest.main()
