#!/usr/bin/env python3
"""Issue 13.10: a listen address another process holds is "address already
in use", at start and on reload, as with nginx, even when that process set
SO_REUSEPORT (which would otherwise let the kernel split the traffic of one
address between two unrelated processes). weir's own workers still share
each address through SO_REUSEPORT, and its own overlapping listens
(0.0.0.0:P and 127.0.0.1:P) still coexist. Unix sockets: a live socket file
is never taken over, a stale one is. And the harness: a Weir that loses its
port to another test picks a fresh one."""

import sys
sys.dont_write_bytecode = True

import os
import re
import shutil
import signal
import socket
import tempfile
import time
import unittest

import weirtest
from weirtest import HOST, Client, Weir, free_port, port_is_listening, request_bytes, run_weir

ROUTE = """
[route ping]
match = exact:/healthz
return = 200 ok
"""


def server(listens, extra=""):
    lines = "".join("listen = %s\n" % l for l in listens)
    return "[server]\n" + lines + "workers = 2\naccess_log = off\nerror_log = stderr\n" + \
        extra + ROUTE


def holder(family=socket.AF_INET, addr=(HOST, 0), reuseport=True):
    """A listening socket of "another process" (this script), with
    SO_REUSEPORT as a careless server would set it."""
    s = socket.socket(family, socket.SOCK_STREAM)
    if reuseport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind(addr)
    s.listen(64)
    s.settimeout(5)
    return s


def wait_until(pred, seconds=5.0):
    deadline = time.monotonic() + seconds
    for _ in range(1000):
        if pred():
            return True
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    return pred()


def ask(port):
    with Client((HOST, port)) as c:
        c.send(request_bytes("GET", "/healthz"))
        r = c.read_response()
        return r.status, r.body


def all_reach(sock, port, n=20):
    """True when n fresh connections to port are all accepted by sock: no
    one else listens there."""
    for _ in range(n):
        c = socket.create_connection((HOST, port), timeout=5)
        try:
            conn, _ = sock.accept()
            conn.close()
        except socket.timeout:
            return False
        finally:
            c.close()
    return True


class PortInUseTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="weirt-i13port-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def run_on(self, text):
        """weir -c on text; it must exit by itself. Returns CompletedProcess."""
        path = os.path.join(self.tmp, "w.ini")
        with open(path, "w") as f:
            f.write(text)
        return run_weir(["-c", path], timeout=15)

    def assertInUse(self, p, addr):
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertRegex(p.stderr.lower(), r"listen %s: address already in use"
                         % re.escape(addr.lower()))

    def test_reuseport_holder_at_start(self):
        h = holder()
        self.addCleanup(h.close)
        port = h.getsockname()[1]
        p = self.run_on(server(["127.0.0.1:%d" % port]))
        self.assertInUse(p, "127.0.0.1:%d" % port)
        self.assertTrue(all_reach(h, port), "the holder still gets every connection")

    def test_wildcard_holder_covers_loopback(self):
        h = holder(addr=("0.0.0.0", 0))
        self.addCleanup(h.close)
        port = h.getsockname()[1]
        p = self.run_on(server(["127.0.0.1:%d" % port]))
        self.assertInUse(p, "127.0.0.1:%d" % port)

    def test_ipv6_holder(self):
        if not weirtest.have_ipv6():
            self.skipTest("no IPv6 loopback")
        h = holder(socket.AF_INET6, ("::1", 0))
        self.addCleanup(h.close)
        port = h.getsockname()[1]
        p = self.run_on(server(["[::1]:%d" % port]))
        self.assertInUse(p, "[::1]:%d" % port)

    def test_second_weir_on_the_same_port(self):
        first = Weir(server(["127.0.0.1:@PORT@"]))
        self.addCleanup(first.cleanup)
        p = self.run_on(server(["127.0.0.1:%d" % first.port]))
        self.assertInUse(p, "127.0.0.1:%d" % first.port)
        for _ in range(20):
            self.assertEqual(ask(first.port), (200, b"ok"))
        first.stop()

    def test_admin_on_a_held_port(self):
        h = holder()
        self.addCleanup(h.close)
        port = h.getsockname()[1]
        p = self.run_on(server(["127.0.0.1:%d" % free_port()],
                               ) + "\n[admin]\nlisten = 127.0.0.1:%d\n" % port)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("[admin] listen 127.0.0.1:%d: Address already in use" % port, p.stderr)

    def test_own_overlapping_listens_still_work(self):
        port = free_port(host="0.0.0.0")
        w = Weir(server(["0.0.0.0:%d" % port, "127.0.0.1:%d" % port]), port=port)
        self.addCleanup(w.cleanup)
        self.assertEqual(ask(port), (200, b"ok"))
        w.stop()

    def test_reload_adding_a_held_address(self):
        w = Weir(server(["127.0.0.1:@PORT@"]))
        self.addCleanup(w.cleanup)
        h = holder()
        self.addCleanup(h.close)
        held = h.getsockname()[1]
        other = free_port()
        with open(w.ini_path, "w") as f:
            f.write(server(["127.0.0.1:%d" % w.port, "127.0.0.1:%d" % other,
                            "127.0.0.1:%d" % held]))
        w.signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: "reload failed" in w.stderr()), w.stderr())
        self.assertRegex(w.stderr().lower(), r"listen 127\.0\.0\.1:%d: address already in use"
                         % held)
        self.assertFalse(port_is_listening(other), "half-applied reload")
        self.assertTrue(all_reach(h, held), "weir must not share the held port")
        for _ in range(10):
            self.assertEqual(ask(w.port), (200, b"ok"))
        w.stop()

    def test_unix_socket_of_a_live_process_is_not_taken(self):
        path = os.path.join(self.tmp, "live.sock")
        h = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(h.close)
        h.bind(path)
        h.listen(8)
        h.settimeout(5)
        p = self.run_on(server(["127.0.0.1:%d" % free_port(), "unix:" + path]))
        self.assertInUse(p, "unix:" + path)
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(5)
        c.connect(path)  # still the holder's file
        conn, _ = h.accept()
        conn.close()
        c.close()

    def test_stale_unix_socket_is_replaced(self):
        path = os.path.join(self.tmp, "stale.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.close()  # the file stays, nobody listens: a crashed run's
        w = Weir(server(["127.0.0.1:@PORT@", "unix:" + path]), ready=("unix", path))
        self.addCleanup(w.cleanup)
        with Client.unix(path) as c:
            c.send(request_bytes("GET", "/healthz"))
            self.assertEqual(c.read_response().status, 200)
        w.stop()

    def test_harness_picks_another_port_when_it_lost_one(self):
        """Two tests that picked the same free port: the weir that loses
        exits with "address already in use", and Weir starts it again on a
        fresh port."""
        h = holder()
        self.addCleanup(h.close)
        held = h.getsockname()[1]
        picks = [held]
        real = weirtest.free_port
        weirtest.free_port = lambda *a, **kw: picks.pop() if picks else real(*a, **kw)
        self.addCleanup(setattr, weirtest, "free_port", real)
        w = Weir(server(["127.0.0.1:@PORT@"]))
        self.addCleanup(w.cleanup)
        self.assertNotEqual(w.port, held)
        self.assertIn("127.0.0.1:%d" % w.port, w.ini_text)
        self.assertEqual(ask(w.port), (200, b"ok"))
        w.stop()
        # A port the test chose itself is not changed behind its back.
        with self.assertRaises(AssertionError):
            Weir(server(["127.0.0.1:@PORT@"]), port=held, tmpdir=self.tmp).cleanup()


if __name__ == "__main__":
    weirtest.main()
