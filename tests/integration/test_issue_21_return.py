#!/usr/bin/env python3
"""Issue 21.2: `return` bodies with a type: return_type names the
Content-Type (sent once), return_file gives the body from a file read at
load and at every reload (its type from the extension), add_header's
Content-Type replaces weir's (one field, never two), HEAD gets the length
without the body, and a missing file is a config error naming file:line."""

import sys
sys.dont_write_bytecode = True

import os
import signal
import unittest

import weirtest
from polling import wait_until
from weirtest import Weir, run_weir

INI = """[server]
listen = 127.0.0.1:@PORT@
workers = 1

[route typed]
match = exact:/typed
return = 200 {"ok":true}
return_type = application/json

[route file]
match = exact:/maintenance
return = 503
return_file = @TMP@/maintenance.json

[route header]
match = exact:/header
return = 200 <p>hi</p>
add_header = Content-Type: text/html; charset=utf-8

[route plain]
match = exact:/plain
return = 200 plain
"""


class ReturnTypeTest(unittest.TestCase):
    def setUp(self):
        self.w = Weir(INI, start=False)
        self.addCleanup(self.w.cleanup)
        self.body_path = os.path.join(self.w.tmp, "maintenance.json")
        with open(self.body_path, "w") as f:
            f.write('{"status": "down", "retry": "soon"}\n')
        self.w.start()

    def test_types_and_bodies(self):
        w = self.w
        cases = [("/typed", 200, "application/json", b'{"ok":true}'),
                 ("/maintenance", 503, "application/json",
                  b'{"status": "down", "retry": "soon"}\n'),
                 ("/header", 200, "text/html; charset=utf-8", b"<p>hi</p>"),
                 ("/plain", 200, "text/plain; charset=utf-8", b"plain")]
        for target, status, ctype, body in cases:
            r = w.get(target)
            self.assertEqual((r.status, r.body), (status, body), target)
            self.assertEqual(r.header_all("Content-Type"), [ctype], target)
            h = w.get(target, method="HEAD")
            self.assertEqual((h.status, h.body), (status, b""), target)
            self.assertEqual(h.header("Content-Length"), str(len(body)), target)

    def test_reload_rereads_file(self):
        w = self.w
        with open(self.body_path, "w") as f:
            f.write('{"status": "back"}')
        self.assertEqual(w.get("/maintenance").body,
                         b'{"status": "down", "retry": "soon"}\n')  # read at load only
        w.signal(signal.SIGHUP)
        wait_until(lambda: w.get("/maintenance").body == b'{"status": "back"}',
                   "the reload to re-read return_file")

    def test_missing_file_is_an_error(self):
        os.unlink(self.body_path)
        p = run_weir(["-t", "-c", self.w.ini_path])
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("weir.ini:13: [route file] return_file: %s: No such file or directory"
                      % self.body_path, p.stdout + p.stderr)


if __name__ == "__main__":
    weirtest.main()
