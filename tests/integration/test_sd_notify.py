#!/usr/bin/env python3
"""sd_notify: READY=1 at start, RELOADING=1/READY=1 around a reload,
STATUS= every few seconds with open connections and req/s, STOPPING=1 on
SIGTERM, read from a datagram socket standing in for systemd's."""

import sys
sys.dont_write_bytecode = True

import os
import re
import signal
import socket
import time
import unittest

import weirtest
from weirtest import Weir, request_bytes

INI = weirtest.SERVER + """
[route ping]
match = exact:/healthz
return = 200 ok
"""


class NotifyTest(unittest.TestCase):
    def test_messages(self):
        tmp = weirtest.tempfile.mkdtemp(prefix="weirt-")
        path = os.path.join(tmp, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(0.5)
        self.addCleanup(sock.close)
        messages = []

        def wait_for(pattern, seconds):
            deadline = time.monotonic() + seconds
            for _ in range(1000):
                for m in messages:
                    if re.search(pattern, m):
                        return m
                if time.monotonic() > deadline:
                    break
                try:
                    messages.append(sock.recv(4096).decode())
                except socket.timeout:
                    pass
            self.fail("no sd_notify message like %r in %r" % (pattern, messages))

        os.environ["NOTIFY_SOCKET"] = path
        try:
            w = Weir(INI, tmpdir=tmp)
        finally:
            del os.environ["NOTIFY_SOCKET"]
        self.addCleanup(w.cleanup)
        wait_for(r"^READY=1", 5)
        with w.client() as c:
            for _ in range(20):
                c.send(request_bytes("GET", "/healthz"))
                self.assertEqual(c.read_response().status, 200)
            # Sent every 5 s; this connection is still open then.
            status = wait_for(r"^STATUS=serving: [1-9]\d* connections, \d+ req/s$", 8)
        self.assertRegex(status, r"connections, [1-9]\d* req/s")
        messages.clear()
        w.signal(signal.SIGHUP)
        wait_for(r"^RELOADING=1", 5)
        wait_for(r"^READY=1", 5)
        w.signal(signal.SIGTERM)
        wait_for(r"^STOPPING=1", 5)
        w.check_clean_exit(w.wait_exit(10))


if __name__ == "__main__":
    weirtest.main()
