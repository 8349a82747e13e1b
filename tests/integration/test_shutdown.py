#!/usr/bin/env python3
"""Graceful shutdown on SIGTERM: stop accepting, finish the request in
flight, close idle keep-alive connections, exit 0; shutdown_timeout bounds
the drain when a client never finishes."""

import sys
sys.dont_write_bytecode = True

import signal
import time
import unittest

import weirtest
from weirtest import HOST, SERVER, Client, Weir, free_port, request_bytes
from polling import wait_status

INI = SERVER + """
[admin]
listen = 127.0.0.1:@ADMIN@

[limits]
shutdown_timeout = @SHUTDOWN@

[route ping]
match = exact:/healthz
return = 200 ok
"""


def new_connection_served(port):
    """True when a new connection gets a response within 1 s."""
    try:
        c = Client((HOST, port), timeout=1)
    except OSError:
        return False
    with c:
        try:
            c.send(request_bytes("GET", "/healthz"))
            r = c.read_response(timeout=1)
        except (OSError, weirtest.ProtocolError):
            return False
        return r.status == 200


def wait_bytes_read(w, n):
    """Waits until weir has read n bytes from clients: a connection whose
    bytes were read holds its request (head parsed, body awaited), so a
    drain that starts now treats it as in flight, not as idle."""
    wait_status(w.admin_port, lambda s: s["bytes"]["in"] >= n, "%d bytes read by weir" % n)


class ShutdownTest(unittest.TestCase):
    def start(self, shutdown):
        admin_port = free_port()
        w = Weir(INI, subst={"SHUTDOWN": shutdown, "ADMIN": admin_port})
        w.admin_port = admin_port
        self.addCleanup(w.cleanup)
        return w

    def test_graceful_drain(self):
        w = self.start("5s")
        inflight = idle = None
        try:
            inflight = w.client()
            partial = request_bytes("POST", "/healthz", headers=[("Content-Length", "10")]) + \
                b"12345"
            inflight.send(partial)
            idle = w.client()
            ask = request_bytes("GET", "/healthz")
            idle.send(ask)
            self.assertEqual(idle.read_response().status, 200)
            wait_bytes_read(w, len(partial) + len(ask))

            w.signal(signal.SIGTERM)
            t0 = time.monotonic()

            how, _, _ = idle.wait_closed(3.0)
            self.assertIsNotNone(how, "idle keep-alive connection not closed on SIGTERM")

            # Listeners are closed (or at least nothing new is served).
            self.assertFalse(new_connection_served(w.port),
                             "a new connection was served after SIGTERM")
            self.assertTrue(w.alive(), "weir exited with a request in flight: stderr:\n%s"
                            % w.stderr())

            inflight.send(b"67890")
            r = inflight.read_response(timeout=3)
            self.assertEqual(r.status, 200, "in-flight request completes during the drain")
            self.assertEqual(r.body, b"ok")
            how, _, _ = inflight.wait_closed(3.0)
            self.assertIsNotNone(how, "connection kept open after its last response in drain")

            rc = w.wait_exit(5.0 + 2.0 - (time.monotonic() - t0))
            w.check_clean_exit(rc)
            self.assertLess(time.monotonic() - t0, 5.0,
                            "weir waited out shutdown_timeout with nothing left to drain")
        finally:
            for c in (inflight, idle):
                if c is not None:
                    c.close()
            w.kill()

    def test_shutdown_timeout_bounds_the_drain(self):
        w = self.start("1s")
        stuck = None
        try:
            stuck = w.client()
            partial = request_bytes("POST", "/healthz", headers=[("Content-Length", "10")]) + \
                b"12345"
            stuck.send(partial)
            wait_bytes_read(w, len(partial))
            w.signal(signal.SIGTERM)
            t0 = time.monotonic()
            rc = w.wait_exit(4.0)
            elapsed = time.monotonic() - t0
            w.check_clean_exit(rc)
            self.assertGreater(elapsed, 0.5, "weir did not wait for the request in flight")
            how, _, _ = stuck.wait_closed(1.0)
            self.assertIsNotNone(how)
        finally:
            if stuck is not None:
                stuck.close()
            w.kill()

    def test_sigterm_idle_exits_promptly(self):
        w = self.start("5s")
        try:
            self.assertEqual(w.get("/healthz").status, 200)
            w.signal(signal.SIGTERM)
            t0 = time.monotonic()
            rc = w.wait_exit(4.0)
            w.check_clean_exit(rc)
            self.assertLess(time.monotonic() - t0, 4.0)
            self.assertFalse(weirtest.port_is_listening(w.port))
        finally:
            w.kill()


if __name__ == "__main__":
    weirtest.main()
