#!/usr/bin/env python3
"""conf/weir.ini, the file `make run` serves, stays valid: `weir -t` accepts
it, and it proxies /api/ to the demo backend's address before the
catch-all site route."""

import sys
sys.dont_write_bytecode = True

import os
import unittest

import weirtest


class BundledConfigTest(unittest.TestCase):
    def test_checks_ok(self):
        path = os.path.join(weirtest.SOURCE_DIR, "conf", "weir.ini")
        p = weirtest.run_weir(["-t", "-c", path])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("ok", p.stdout + p.stderr)
        with open(path) as f:
            text = f.read()
        self.assertIn("[upstream demo]\nserver = 127.0.0.1:9000", text)
        api, site = text.index("[route api]"), text.index("[route site]")
        self.assertLess(api, site)
        self.assertIn("match = prefix:/api/\nproxy = demo", text[api:site])


if __name__ == "__main__":
    weirtest.main()
