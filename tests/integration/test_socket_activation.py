#!/usr/bin/env python3
"""Socket activation (sd_listen_fds) through systemd-socket-activate:
inherited sockets are matched to `listen` and `[admin] listen` entries by
address and shared by every worker; a listen entry with no inherited socket
is bound as usual; an inherited socket no entry claims stops the start."""

import sys
sys.dont_write_bytecode = True

import ctypes
import os
import shutil
import socket
import subprocess
import time
import unittest

import weirtest
from weirtest import HOST, Client, Weir, free_port, request_bytes

TOOL = shutil.which("systemd-socket-activate")

INI = """[server]
listen = 127.0.0.1:@PORT@
listen = 127.0.0.1:@BOUND@
workers = 2
access_log = off
error_log = stderr

[admin]
listen = 127.0.0.1:@ADMIN@

[route ping]
match = exact:/healthz
return = 200 ok
"""


SYS_PIDFD_GETFD = 438  # x86_64 and arm64 alike


def listener_options(pid, port):
    """(TCP_NODELAY, TCP_DEFER_ACCEPT) of pid's socket listening on port,
    read from a copy of its descriptor (pidfd_getfd), or None."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        for name in os.listdir("/proc/%d/fd" % pid):
            try:
                if not os.readlink("/proc/%d/fd/%s" % (pid, name)).startswith("socket:"):
                    continue
            except OSError:
                continue
            fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, int(name), 0)
            if fd < 0:
                continue
            s = socket.socket(fileno=fd)
            try:
                if (s.family == socket.AF_INET and s.type == socket.SOCK_STREAM and
                        s.getsockname() == (HOST, port) and
                        s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)):
                    return (s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY),
                            s.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT))
            finally:
                s.close()
    finally:
        os.close(pidfd)
    return None


@unittest.skipIf(TOOL is None, "systemd-socket-activate not installed")
class SocketActivationTest(unittest.TestCase):
    def test_inherited_and_bound(self):
        admin, bound = free_port(), free_port()
        w = Weir(INI, subst={"ADMIN": admin, "BOUND": bound}, start=False)
        self.addCleanup(w.cleanup)
        w.argv_prefix = [TOOL, "-l", "%s:%d" % (HOST, w.port), "-l", "%s:%d" % (HOST, admin)]
        # The probe's connection is what makes the tool exec weir; it waits
        # in the inherited socket's queue and is accepted by weir.
        w.start()
        for _ in range(10):  # every worker accepts from the one shared socket
            with w.client() as c:
                c.send(request_bytes("GET", "/healthz"))
                self.assertEqual(c.read_response().body, b"ok")
        with Client((HOST, bound)) as c:
            c.send(request_bytes("GET", "/healthz"))
            self.assertEqual(c.read_response().status, 200)
        with Client((HOST, admin)) as c:
            c.send(request_bytes("GET", "/status"))
            self.assertEqual(c.read_response().status, 200)
        err = w.stderr()
        self.assertIn("socket activation: 2 inherited sockets", err)
        self.assertIn("listening on 127.0.0.1:%d (socket activation)" % w.port, err)
        self.assertIn("listening on 127.0.0.1:%d\n" % bound, err)
        # The inherited socket (the tool sets neither) gets what weir sets on
        # its own (main.c): TCP_NODELAY for its connections, and the deferred
        # accept that lets a worker answer a request where it accepts it.
        nodelay, defer = listener_options(w.pid(), w.port)
        self.assertEqual(nodelay, 1)
        self.assertGreater(defer, 0)
        w.stop()

    def test_unclaimed_socket_is_an_error(self):
        stray = free_port()
        w = Weir(INI, subst={"ADMIN": free_port(), "BOUND": free_port()}, start=False)
        self.addCleanup(w.cleanup)
        proc = subprocess.Popen([TOOL, "-l", "%s:%d" % (HOST, stray), weirtest.WEIR_BIN, "-c",
                                 w.ini_path], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=weirtest.weir_env(),
                                preexec_fn=weirtest._die_with_parent)
        try:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not weirtest.port_is_listening(stray):
                time.sleep(0.05)
            _, err = proc.communicate(timeout=10)  # the probe above triggered the exec
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err = err.decode()
        self.assertEqual(proc.returncode, 1, err)
        self.assertIn("socket activation: inherited socket 127.0.0.1:%d matches no [server] "
                      "listen or [admin] listen" % stray, err)
        self.assertIsNone(weirtest.sanitizer_report(err), err)


if __name__ == "__main__":
    weirtest.main()
