#!/usr/bin/env python3
"""Listeners on SIGHUP: added ones open (TCP on every worker, unix), removed
ones close while the connections they accepted keep going, and unchanged
ones keep their sockets: a client loop on the unchanged port, fresh
connections and one keep-alive connection, sees no error through repeated
add/remove reloads. A port below 1024 after the privilege drop fails the
reload with a clear error (old listeners keep serving); with
CAP_NET_BIND_SERVICE kept (as the systemd unit does) it binds."""

import sys
sys.dont_write_bytecode = True

import os
import shutil
import signal
import socket
import threading
import time
import unittest

import weirtest
from weirtest import HOST, Client, Weir, free_port, port_is_listening, request_bytes

ROUTES = """
[route ping]
match = exact:/healthz
return = 200 ok
"""


def server(listens, workers=2, extra=""):
    lines = "".join("listen = %s\n" % l for l in listens)
    return ("[server]\n" + lines + "workers = %d\naccess_log = off\nerror_log = stderr\n"
            % workers + extra + ROUTES)


def ask(c):
    c.send(request_bytes("GET", "/healthz"))
    r = c.read_response()
    return r.status, r.body


def wait_until(pred, seconds=3.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


class ClientLoop(threading.Thread):
    """Asks port again and again (fresh connections and one keep-alive
    connection) until stopped; bounded in count and time."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop_flag = threading.Event()
        self.errors = []
        self.n_ok = 0

    def run(self):
        deadline = time.monotonic() + 60
        keep = None
        for i in range(100000):
            if self.stop_flag.is_set() or time.monotonic() > deadline:
                break
            stage = "connect"
            try:
                if keep is None:
                    keep = Client((HOST, self.port))
                stage = "fresh"
                with Client((HOST, self.port)) as c:
                    got = ask(c)
                if got != (200, b"ok"):
                    self.errors.append("fresh: %r" % (got,))
                stage = "keep-alive"
                keep.send(request_bytes("GET", "/healthz"))
                r = keep.read_response()
                if (r.status, r.body) != (200, b"ok"):
                    self.errors.append("keep-alive: %r" % r)
                if r.has_token("Connection", "close"):  # max_requests_per_connection
                    keep.close()
                    keep = None
                self.n_ok += 2
            except Exception as e:  # reported by the test
                self.errors.append("%s, request %d: %r" % (stage, i, e))
                keep = None
        if keep:
            keep.close()


class ReloadListenersTest(unittest.TestCase):
    def setUp(self):
        self.w = None

    def tearDown(self):
        if self.w:
            self.w.cleanup()

    def start(self, ini, **kw):
        self.w = Weir(ini, **kw)
        return self.w

    def reload_to(self, text, expect="configuration reloaded"):
        w = self.w
        n_before = w.stderr().count(expect)
        with open(w.ini_path, "w") as f:
            f.write(text)
        w.signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: w.stderr().count(expect) > n_before),
                        "no %r after SIGHUP:\n%s" % (expect, w.stderr()))

    def test_add_and_remove_under_traffic(self):
        port_b = free_port()
        w = self.start(server(["127.0.0.1:@PORT@", "127.0.0.1:%d" % port_b]))
        sock_path = os.path.join(w.tmp, "added.sock")
        main = "127.0.0.1:%d" % w.port
        loop = ClientLoop(w.port)
        loop.start()
        try:
            # A connection accepted on B before B goes away.
            on_b = Client((HOST, port_b))
            self.assertEqual(ask(on_b), (200, b"ok"))
            for cycle in range(4):
                port_c = free_port()
                self.reload_to(server([main, "127.0.0.1:%d" % port_c, "unix:" + sock_path]))
                self.assertTrue(wait_until(lambda: not port_is_listening(port_b)),
                                "removed listener still accepts")
                # Every worker got the new TCP port: many connections all answered.
                for _ in range(8):
                    with Client((HOST, port_c)) as c:
                        self.assertEqual(ask(c), (200, b"ok"))
                with Client.unix(sock_path) as c:
                    self.assertEqual(ask(c), (200, b"ok"))
                if cycle == 0:
                    # B's own connection keeps being served after B closed.
                    self.assertEqual(ask(on_b), (200, b"ok"))
                    on_b.close()
                # And back: C and the unix socket go, B comes back.
                self.reload_to(server([main, "127.0.0.1:%d" % port_b]))
                self.assertTrue(wait_until(lambda: not port_is_listening(port_c)))
                self.assertTrue(wait_until(lambda: not os.path.exists(sock_path)),
                                "unix socket file left behind")
                with Client((HOST, port_b)) as c:
                    self.assertEqual(ask(c), (200, b"ok"))
        finally:
            loop.stop_flag.set()
            loop.join(30)
        self.assertEqual(loop.errors, [])
        self.assertGreater(loop.n_ok, 20)
        self.assertIn("reload: no longer listening on 127.0.0.1:%d" % port_b, w.stderr())
        w.stop()

    def test_bind_error_keeps_old_listeners(self):
        """A port another socket holds: the reload fails, nothing changes."""
        blocker = socket.socket()
        blocker.bind((HOST, 0))  # no SO_REUSEPORT: weir's bind must fail
        blocker.listen(1)
        self.addCleanup(blocker.close)
        busy = blocker.getsockname()[1]
        w = self.start(server(["127.0.0.1:@PORT@"]))
        other = free_port()
        self.reload_to(server(["127.0.0.1:%d" % w.port, "127.0.0.1:%d" % other,
                               "127.0.0.1:%d" % busy]), expect="reload failed")
        self.assertIn("listen 127.0.0.1:%d: Address already in use" % busy, w.stderr())
        self.assertFalse(port_is_listening(other), "half-applied reload")
        with w.client() as c:
            self.assertEqual(ask(c), (200, b"ok"))
        w.stop()


def free_privileged_port():
    for port in range(600, 1000):
        s = socket.socket()
        try:
            s.bind((HOST, port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    return None


@unittest.skipUnless(os.geteuid() == 0, "needs root to drop privileges")
class PrivilegedPortTest(unittest.TestCase):
    def setUp(self):
        self.tmp = weirtest.tempfile.mkdtemp(prefix="weirt-")
        os.chmod(self.tmp, 0o755)  # the reload reads the file as nobody
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.w = None

    def tearDown(self):
        if self.w:
            self.w.kill()

    def reload_to(self, text, expect):
        w = self.w
        with open(w.ini_path, "w") as f:
            f.write(text)
        w.signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: expect in w.stderr()), w.stderr())

    def test_without_capability_reload_fails_clearly(self):
        priv = free_privileged_port()
        if priv is None:
            self.skipTest("no free port below 1024")
        extra = "user = nobody\ngroup = nogroup\n"
        self.w = Weir(server(["127.0.0.1:@PORT@"], extra=extra), tmpdir=self.tmp)
        os.chmod(self.w.ini_path, 0o644)
        main = "127.0.0.1:%d" % self.w.port
        self.reload_to(server([main, "127.0.0.1:%d" % priv], extra=extra), "reload failed")
        self.assertIn("listen 127.0.0.1:%d: Permission denied (ports below 1024 need root or "
                      "CAP_NET_BIND_SERVICE)" % priv, self.w.stderr())
        self.assertFalse(port_is_listening(priv))
        with self.w.client() as c:
            self.assertEqual(ask(c), (200, b"ok"))
        self.w.stop()

    def test_with_capability_reload_binds(self):
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            self.skipTest("setpriv (util-linux) not installed")
        priv = free_privileged_port()
        if priv is None:
            self.skipTest("no free port below 1024")
        # What the unit does: never root, CAP_NET_BIND_SERVICE ambient.
        self.w = Weir(server(["127.0.0.1:@PORT@"]), tmpdir=self.tmp, start=False)
        os.chmod(self.w.ini_path, 0o644)
        self.w.argv_prefix = [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                              "--inh-caps=-all,+net_bind_service",
                              "--ambient-caps=-all,+net_bind_service",
                              "--bounding-set=-all,+net_bind_service"]
        self.w.start()
        main = "127.0.0.1:%d" % self.w.port
        self.reload_to(server([main, "127.0.0.1:%d" % priv]), "configuration reloaded")
        with Client((HOST, priv)) as c:
            self.assertEqual(ask(c), (200, b"ok"))
        self.w.stop()


if __name__ == "__main__":
    weirtest.main()
