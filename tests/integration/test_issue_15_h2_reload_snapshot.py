#!/usr/bin/env python3
"""Issue 15, point 7: what a reload means for HTTP/2 connections already open.

weir keeps each connection on the configuration it started with, as nginx
does: on an HTTP/2 connection opened before a reload, a stream opened
after it is still answered from the old snapshot, while a new connection
gets the new one. A connection whose listen the reload removed is told
to go with a GOAWAY (NO_ERROR) naming the last stream weir took, and,
with nothing in flight, is closed.
(test_issue_15_h2_lifecycle covers streams in flight across the reload.)"""

import sys
sys.dont_write_bytecode = True

import re
import signal
import unittest

import weirtest
from h2test import HAVE_H2, RawH2, get
from polling import admin_get, wait_until

INI = """[server]
listen = 127.0.0.1:@PORT@ h2c
listen = 127.0.0.1:@PORT2@ h2c
workers = 1
access_log = off
error_log = stderr

[admin]
listen = 127.0.0.1:@ADMIN@

[route ret]
match = exact:/ret
return = 200 old
"""



@unittest.skipUnless(HAVE_H2, "python3-h2 is not installed")
class ReloadSnapshotTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.port2 = weirtest.free_port()
        cls.admin_port = weirtest.free_port()
        return {"PORT2": cls.port2, "ADMIN": cls.admin_port}

    def reloads(self):
        m = re.search(r"^weir_config_reloads_total (\d+)$",
                      admin_get(self.admin_port, "/metrics"), re.M)
        return int(m.group(1)) if m else 0

    def ask(self, c):
        return c.wait_stream(c.request(get(b"/ret")))

    def test_open_connection_keeps_its_snapshot_removed_listen_gets_goaway(self):
        kept = RawH2(self.weir.port)
        gone = RawH2(self.port2)
        self.addCleanup(kept.close)
        self.addCleanup(gone.close)
        self.assertEqual(self.ask(kept), ("response", 200, b"old"))
        self.assertEqual(self.ask(gone), ("response", 200, b"old"))
        n = self.reloads()
        text = self.weir.ini_text.replace("listen = 127.0.0.1:%d h2c\n" % self.port2, "")
        with open(self.weir.ini_path, "w") as f:
            f.write(text.replace("return = 200 old", "return = 200 new"))
        self.weir.signal(signal.SIGHUP)
        wait_until(lambda: self.reloads() == n + 1, "the reload")
        # A new connection sees the new file ...
        fresh = RawH2(self.weir.port)
        self.addCleanup(fresh.close)
        self.assertEqual(self.ask(fresh), ("response", 200, b"new"))
        # ... a new stream on a connection opened before it, the old one.
        self.assertEqual(self.ask(kept), ("response", 200, b"old"))
        self.assertIsNone(kept.goaway)
        # The removed listen's connection: GOAWAY NO_ERROR, last stream 1
        # (the one it was answered), then the end (nothing in flight).
        gone.wait(lambda: gone.goaway is not None, what="GOAWAY")
        self.assertEqual(gone.goaway, (0, 1))
        gone.wait(lambda: gone.is_closed, timeout=10, what="the connection closed")


if __name__ == "__main__":
    weirtest.main()
