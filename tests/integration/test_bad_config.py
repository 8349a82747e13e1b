#!/usr/bin/env python3
"""A config with any error never starts: `weir -t` names the place and exits
1, `weir -c` exits 1 without listening. One case per kind of error
(CONFIG.md: unknown section, unknown key, bad value, dangling reference,
one action per route)."""

import sys
sys.dont_write_bytecode = True

import os
import re
import shutil
import subprocess
import tempfile
import unittest

import weirtest
from weirtest import SERVER, free_port, port_is_listening, run_weir

ROUTE_OK = """
[route ping]
match = exact:/healthz
return = 200 ok
"""

# name -> (ini text, the line the error must name or None, key or None)
CASES = {
    "unknown_section": (SERVER + "\n[bogus]\nx = 1\n" + ROUTE_OK, "[bogus]", None),
    "unknown_route_key": (SERVER + ROUTE_OK + "colour = blue\n", "colour = blue", "colour"),
    "bad_size": (SERVER + "\n[limits]\nmax_body_size = 10 megabytes\n" + ROUTE_OK,
                 "max_body_size = 10 megabytes", "max_body_size"),
    "bad_duration_unit": (SERVER + "\n[limits]\nbody_timeout = 5fortnights\n" + ROUTE_OK,
                          "body_timeout = 5fortnights", "body_timeout"),
    "bad_boolean": (SERVER + "\n[route s]\nmatch = prefix:/s/\nroot = /tmp\n"
                    "autoindex = maybe\n" + ROUTE_OK, "autoindex = maybe", "autoindex"),
    "dangling_upstream": (SERVER + "\n[route api]\nmatch = prefix:/api/\nproxy = nope\n"
                          + ROUTE_OK, "proxy = nope", "proxy"),
    "tls_listen_without_tls_section": (
        SERVER + "listen = 127.0.0.1:@PORT2@ tls\n" + ROUTE_OK,
        "listen = 127.0.0.1:@PORT2@ tls", "listen"),
    "bad_listen_port": (SERVER + "listen = 127.0.0.1:99999\n" + ROUTE_OK,
                        "listen = 127.0.0.1:99999", "listen"),
    "bad_regex": (SERVER + "\n[route r]\nmatch = regex:^/(a\nreturn = 200 x\n" + ROUTE_OK,
                  "match = regex:^/(a", "match"),
    "bad_match_kind": (SERVER + "\n[route r]\nmatch = glob:/a*\nreturn = 200 x\n" + ROUTE_OK,
                       "match = glob:/a*", "match"),
    "bad_return_status": (SERVER + "\n[route r]\nmatch = exact:/r\nreturn = 2000 x\n"
                          + ROUTE_OK, "return = 2000 x", "return"),
    "unknown_variable": (SERVER + "\n[route r]\nmatch = exact:/r\nredirect = 301 /x/$nope\n"
                         + ROUTE_OK, "redirect = 301 /x/$nope", "redirect"),
    "two_actions": (SERVER + "\n[route r]\nmatch = exact:/r\nreturn = 200 x\n"
                    "redirect = 301 /y\n" + ROUTE_OK, None, None),
    "no_action": (SERVER + "\n[route r]\nmatch = exact:/r\n" + ROUTE_OK, None, None),
    "bad_header": (SERVER + ROUTE_OK + "add_header = no colon here\n",
                   "add_header = no colon here", "add_header"),
}


class BadConfigTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="weirt-badcfg-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def check_case(self, name):
        text, line_text, key = CASES[name]
        port, port2 = free_port(), free_port()
        text = text.replace("@PORT@", str(port)).replace("@PORT2@", str(port2))
        path = os.path.join(self.tmp, name + ".ini")
        with open(path, "w") as f:
            f.write(text)

        p = run_weir(["-t", "-c", path])
        self.assertEqual(p.returncode, 1, "%s: -t exit code; stdout=%r stderr=%r"
                         % (name, p.stdout, p.stderr))
        self.assertNotIn(": ok", p.stdout)
        if line_text is not None:
            line_text = line_text.replace("@PORT2@", str(port2))
            lineno = text.splitlines().index(line_text) + 1
            pat = r"(?m)^%s:%d: \[[^\]]+\]" % (re.escape(path), lineno)
            if key:
                pat += " " + re.escape(key) + ": \\S"
            self.assertRegex(p.stderr, pat, "%s: error must name %s:%d" % (name, path, lineno))
        else:
            self.assertRegex(p.stderr, r"(?m)^%s:\d+: " % re.escape(path))

        proc = subprocess.Popen([weirtest.WEIR_BIN, "-c", path], env=weirtest.weir_env(),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, preexec_fn=weirtest._die_with_parent)
        try:
            try:
                _, err = proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                up = port_is_listening(port)
                self.fail("%s: weir -c kept running on a bad config (listening=%s)" % (name, up))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
        err = err.decode("utf-8", "replace")
        self.assertIsNone(weirtest.sanitizer_report(err), err)
        self.assertEqual(proc.returncode, 1, "%s: weir -c exit code; stderr=%s" % (name, err))
        self.assertFalse(port_is_listening(port), name)


def _add(name):
    setattr(BadConfigTest, "test_" + name, lambda self: self.check_case(name))


for _name in CASES:
    _add(_name)


if __name__ == "__main__":
    weirtest.main()
