"""`include = conf.d/*.ini` (issue 17) in the running daemon: routes from
included files answer in file order, a reload reads the directory again (a
new file's routes answer), and a bad included file fails the reload with
its own file:line while weir keeps serving the running configuration.
The loader's rules (order, errors, cycles, depth) are in test_config.c.
"""
import os
import shutil
import signal
import tempfile
import unittest

import weirtest
from polling import wait_log, wait_until
from weirtest import SERVER, Weir

INI = SERVER + """
include = conf.d/*.ini

[route fallback]
match = prefix:/
return = 404 fallback
"""


class IncludeTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="weirt-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.conf_d = os.path.join(self.tmp, "conf.d")
        os.mkdir(self.conf_d)
        self.put("10-a.ini", "[route a]\nmatch = prefix:/a/\nreturn = 200 from a\n")
        # Sorted after 10-a: /a/b is answered by route a, not this one.
        self.put("20-b.ini", "[route b]\nmatch = prefix:/a/b\nreturn = 200 from b\n")
        self.w = Weir(INI, tmpdir=self.tmp)
        self.addCleanup(self.w.cleanup)

    def put(self, name, text):
        with open(os.path.join(self.conf_d, name), "w") as f:
            f.write(text)

    def body(self, target):
        r = self.w.get(target)
        return r.status, r.body

    def test_issue_17_include_routes_and_reload(self):
        self.assertEqual(self.body("/a/x"), (200, b"from a"))
        self.assertEqual(self.body("/a/b"), (200, b"from a"), "file order across includes")
        self.assertEqual(self.body("/c/x"), (404, b"fallback"))

        self.put("05-c.ini", "[route c]\nmatch = prefix:/c/\nreturn = 200 from c\n")
        self.w.signal(signal.SIGHUP)
        wait_until(lambda: self.body("/c/x") == (200, b"from c"), "route c after the reload")

        bad = os.path.join(self.conf_d, "30-bad.ini")
        self.put("30-bad.ini", "[route bad]\nmatch = prefix:/bad/\nreturn = 200\nnope = 1\n")
        self.w.signal(signal.SIGHUP)
        wait_log(self.w, r"%s:4: \[route bad\] nope: unknown key" % bad)
        self.assertEqual(self.body("/c/x"), (200, b"from c"), "still on the running config")
        self.assertEqual(self.body("/bad/x"), (404, b"fallback"))

    def test_issue_17_include_check(self):
        """weir -t names the included file and line."""
        self.put("30-bad.ini", "\n[route bad]\nmatch = regex:(\nreturn = 200\n")
        p = weirtest.run_weir(["-t", "-c", self.w.ini_path])
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        bad = os.path.join(self.conf_d, "30-bad.ini")
        self.assertRegex(p.stdout + p.stderr, r"(?m)^%s:3: \[route bad\] match: " % bad)


if __name__ == "__main__":
    weirtest.main()
