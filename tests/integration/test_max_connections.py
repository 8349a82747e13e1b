#!/usr/bin/env python3
"""max_connections (whole process): with two connections open, a third is
not served; it is served once one of the two closes. Checked with one
worker and with two (the count is process-wide, not per worker)."""

import sys
sys.dont_write_bytecode = True

import weirtest
from weirtest import free_port, request_bytes
from polling import wait_open_connections

INI = """[server]
listen = 127.0.0.1:@PORT@
workers = @WORKERS@
max_connections = 2
access_log = off

[admin]
listen = 127.0.0.1:@ADMIN@

[route ping]
match = exact:/healthz
return = 200 ok
"""


class MaxConnectionsOneWorker(weirtest.WeirCase):
    INI = INI
    SUBST = {"WORKERS": 1}

    @classmethod
    def make_subst(cls, tmp):
        cls.admin_port = free_port()  # the admin endpoint's connections are not counted
        return dict(cls.SUBST, ADMIN=cls.admin_port)

    def setUp(self):
        super().setUp()
        # The readiness probe of the harness, or the previous test's
        # connections, count until weir has seen them close.
        wait_open_connections(self.admin_port, 0)

    def open_served(self):
        c = self.client()
        c.send(request_bytes("GET", "/healthz"))
        r = c.read_response()
        self.assertEqual(r.status, 200)
        return c

    def test_third_waits_until_one_closes(self):
        c1 = self.open_served()
        c2 = self.open_served()
        c3 = None
        try:
            try:
                c3 = self.client()
                c3.send(request_bytes("GET", "/healthz"))
            except OSError:
                # Refused outright is not "served once one closes": the
                # contract is that accepting pauses.
                self.fail("third connection refused instead of waiting")
            # A window for an answer that must not come (it cannot make
            # the test fail when weir is right, only hide a wrong answer).
            self.assertTrue(c3.nothing_within(0.5),
                            "third connection served while two are open: %r" % c3.buf[:80])
            # The first two still work.
            c1.send(request_bytes("GET", "/healthz"))
            self.assertEqual(c1.read_response().status, 200)
            c2.close()
            r = c3.read_response(timeout=3)
            self.assertEqual(r.status, 200, "third served after one closed")
            self.assertEqual(r.body, b"ok")
        finally:
            for c in (c1, c2, c3):
                if c is not None:
                    c.close()

    def test_slot_freed_by_weir_closing(self):
        # A slot is freed when weir ends a connection too (Connection: close).
        c1 = self.open_served()
        c2 = self.client()
        c3 = None
        try:
            c2.send(request_bytes("GET", "/healthz", headers=[("Connection", "close")]))
            self.assertEqual(c2.read_response().status, 200)
            self.assertClosedByWeir(c2, 3.0)
            c3 = self.client()
            c3.send(request_bytes("GET", "/healthz"))
            self.assertEqual(c3.read_response(timeout=3).status, 200)
        finally:
            for c in (c1, c2, c3):
                if c is not None:
                    c.close()

    def test_serves_again_after_all_close(self):
        for _ in range(3):
            a, b = self.open_served(), self.open_served()
            a.close()
            b.close()
            wait_open_connections(self.admin_port, 0)
        self.assertServes()


class MaxConnectionsTwoWorkers(MaxConnectionsOneWorker):
    SUBST = {"WORKERS": 2}


if __name__ == "__main__":
    weirtest.main()
