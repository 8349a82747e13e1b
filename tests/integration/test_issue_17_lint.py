#!/usr/bin/env python3
"""Issue 17.8: `weir -t` warns about a route no request can reach (an
earlier route takes every request it would), naming both routes'
file:line, and about an upstream no route proxies to; the check still
passes. `weir -t --strict` fails (exit 1) on any warning, the strip_prefix
one included, and passes a clean file; --strict without -t is a usage
error. The same warnings go to stderr when weir starts."""

import sys
sys.dont_write_bytecode = True

import os
import re
import shutil
import tempfile
import unittest

import weirtest
from weirtest import SERVER, run_weir

SHADOWED = SERVER + """
[upstream app]
server = 127.0.0.1:9

[upstream spare]
server = 127.0.0.1:10

[route api]
match = prefix:/api/
proxy = app

[route users]
match = exact:/api/users
return = 200 users

[route wild]
host = *.example.org
match = prefix:/
return = 200 wild

[route www]
host = www.example.org
match = prefix:/docs/
methods = GET
return = 200 docs

[route rx]
match = regex:^/api/(v2)/
return = 200 v2

[route php]
match = regex:\\.php$
return = 200 php

[route page]
match = exact:/index.php
return = 200 page
"""

CLEAN = SERVER + """
[upstream app]
server = 127.0.0.1:9

[route users]
match = exact:/api/users
return = 200 users

[route api]
match = prefix:/api/
proxy = app
"""

STRIP = SERVER + """
[route files]
match = prefix:/
root = .
strip_prefix = /static
"""


def line_of(text, line):
    return text.splitlines().index(line) + 1


class LintTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="weirt-lint-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, name, text):
        with open(os.path.join(self.tmp, name), "w") as f:
            f.write(text.replace("@PORT@", str(weirtest.free_port())))

    def check(self, *args):
        return run_weir(["-t"] + list(args), cwd=self.tmp)

    def test_shadowed_routes_and_unused_upstream(self):
        self.write("s.ini", SHADOWED)
        p = self.check("-c", "s.ini")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("s.ini: ok", p.stdout.splitlines())
        warnings = [l for l in p.stderr.splitlines() if ": warning: " in l]
        api, users = line_of(SHADOWED, "[route api]"), line_of(SHADOWED, "[route users]")
        wild, www = line_of(SHADOWED, "[route wild]"), line_of(SHADOWED, "[route www]")
        php, page = line_of(SHADOWED, "[route php]"), line_of(SHADOWED, "[route page]")
        spare = line_of(SHADOWED, "[upstream spare]")
        want = [
            r"^s\.ini:%d: warning: \[route users\] match: never answers: \[route api\] "
            r"\(s\.ini:%d, match = prefix:/api/\)" % (users, api),
            r"^s\.ini:%d: warning: \[route www\] match: never answers: \[route wild\] "
            r"\(s\.ini:%d," % (www, wild),
            r"^s\.ini:%d: warning: \[route page\] match: never answers: \[route php\] "
            r"\(s\.ini:%d," % (page, php),
            r"^s\.ini:%d: warning: \[upstream spare\]: no route proxies to it" % spare,
        ]
        for w in want:
            self.assertTrue(any(re.search(w, l) for l in warnings),
                            "no warning like %r in %r" % (w, warnings))
        # A regex is never claimed covered by a prefix, however obvious.
        self.assertFalse([l for l in warnings if "[route rx]" in l], warnings)
        self.assertEqual(len(warnings), 4, warnings)

        p = self.check("--strict", "-c", "s.ini")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertNotIn("s.ini: ok", p.stdout.splitlines())
        self.assertIn("s.ini: 4 warnings, which --strict counts as errors", p.stderr)

    def test_strict_passes_clean_file(self):
        """A prefix after the exact it would cover is fine: order decides."""
        self.write("c.ini", CLEAN)
        p = self.check("--strict", "-c", "c.ini")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stderr, "")
        self.assertIn("c.ini: ok", p.stdout.splitlines())

    def test_strict_counts_loader_warnings(self):
        self.write("st.ini", STRIP)
        p = self.check("-c", "st.ini")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("warning: [route files] strip_prefix", p.stderr)
        p = self.check("-c", "st.ini", "--strict")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)

    def test_included_files_are_named(self):
        """Routes and upstreams read from included files are named by their
        own file and line, by the lint and by `weir route`."""
        os.mkdir(os.path.join(self.tmp, "conf.d"))
        self.write("main.ini", SERVER + "\n[route api]\nmatch = prefix:/api/\nreturn = 200 api\n"
                   "\ninclude = conf.d/*.ini\n")
        self.write("conf.d/10-users.ini", "; users\n\n[upstream spare]\nserver = 127.0.0.1:10\n"
                   "\n[route users]\nmatch = exact:/api/users\nreturn = 200 users\n")
        api = line_of(open(os.path.join(self.tmp, "main.ini")).read(), "[route api]")
        p = self.check("-c", "main.ini")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        inc = os.path.join("conf.d", "10-users.ini")
        self.assertRegex(p.stderr, r"(?m)^\S*%s:6: warning: \[route users\] match: never "
                         r"answers: \[route api\] \(main\.ini:%d," % (re.escape(inc), api))
        self.assertRegex(p.stderr, r"(?m)^\S*%s:3: warning: \[upstream spare\]: no route"
                         % re.escape(inc))
        r = run_weir(["route", "-c", "main.ini", "GET", "/api/users"], cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"(?m)^route: api \(main\.ini:%d\)$" % api)

    def test_strict_needs_test(self):
        self.write("c.ini", CLEAN)
        p = run_weir(["--strict", "-c", "c.ini"], cwd=self.tmp)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertRegex(p.stderr, r"(?i)usage")


if __name__ == "__main__":
    weirtest.main()
