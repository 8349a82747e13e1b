#!/usr/bin/env python3
"""Issue 13.23: request header fields with '_' in the name are not
forwarded upstream by default.

Backends that map '-' and '_' to one variable (CGI's HTTP_CONTENT_LENGTH,
many frameworks) could read Content_Length, Transfer_Encoding or
X_Forwarded_For as the real fields. As nginx does by default, weir drops
them when forwarding, and says how many in one debug line per request;
`underscores_in_headers = on` keeps them, in [server] (the default of
every proxy route) or in a [route] (that route only, either way)."""

import sys
sys.dont_write_bytecode = True

import json
import re
import unittest

import weirtest
from weirtest import SERVER, Weir
from upstreams import Backend

ROUTES = """
[upstream app]
server = @APP@

[route plain]
match = prefix:/plain/
proxy = app

[route on]
match = prefix:/on/
proxy = app
underscores_in_headers = on

[route off]
match = prefix:/off/
proxy = app
underscores_in_headers = off
"""

SNEAKY = [("Content_Length", "5"), ("Transfer_Encoding", "chunked"),
          ("X_Forwarded_For", "10.6.6.6")]


class UnderscoresTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.app = Backend("app")

    @classmethod
    def tearDownClass(cls):
        cls.app.stop()

    def start(self, server_extra=""):
        ini = SERVER.replace("error_log = stderr",
                             "error_log = stderr\nlog_level = debug" + server_extra) + ROUTES
        w = Weir(ini, subst={"APP": self.app.addr})
        self.addCleanup(w.cleanup)
        self.addCleanup(w.stop)
        return w

    def forwarded(self, w, target):
        r = w.get(target, headers=SNEAKY + [("X-Fine", "1")])
        self.assertEqual(r.status, 200)
        names = [n for n, _ in json.loads(r.body)["headers"]]
        self.assertIn("X-Fine", names)
        return [n for n in names if "_" in n]

    def debug_lines(self, w):
        return re.findall(r"(\d+) request header fields? with '_' in the name not forwarded",
                          w.stderr())

    def test_default_drops(self):
        w = self.start()
        self.assertEqual(self.forwarded(w, "/plain/echo"), [])
        self.assertEqual(self.forwarded(w, "/off/echo"), [])
        self.assertEqual(self.forwarded(w, "/on/echo"),
                         ["Content_Length", "Transfer_Encoding", "X_Forwarded_For"])
        # One debug line per request that dropped some, with the count.
        self.assertEqual(self.debug_lines(w), ["3", "3"])

    def test_server_on_is_the_routes_default(self):
        w = self.start("\nunderscores_in_headers = on")
        self.assertEqual(self.forwarded(w, "/plain/echo"),
                         ["Content_Length", "Transfer_Encoding", "X_Forwarded_For"])
        self.assertEqual(self.forwarded(w, "/off/echo"), [])
        self.assertEqual(self.debug_lines(w), ["3"])


if __name__ == "__main__":
    weirtest.main()
