#!/usr/bin/env python3
"""Issue 13.25: a test script whose every test was skipped exits with
weirtest.SKIP_RETURN_CODE, which tests/CMakeLists.txt declares to ctest as
SKIP_RETURN_CODE, so ctest shows it as "Skipped" rather than "Passed". A
script that ran something exits 0 (or 1 on a failure), skips or not.

Each case is a small script on the harness, run as ctest runs scripts."""

import sys
sys.dont_write_bytecode = True

import os
import re
import subprocess
import tempfile
import unittest

import weirtest

HEAD = """import sys
sys.dont_write_bytecode = True
sys.path.insert(0, %r)
import unittest
import weirtest
""" % weirtest.HERE

CASES = {
    "every test skipped": ("""
class A(unittest.TestCase):
    def test_a(self):
        self.skipTest("no IPv6 here")

@unittest.skip("not root")
class B(unittest.TestCase):
    def test_b(self):
        pass

class C(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        raise unittest.SkipTest("tool missing")

    def test_c(self):
        pass
""", weirtest.SKIP_RETURN_CODE),
    "one ran, one skipped": ("""
class A(unittest.TestCase):
    def test_ran(self):
        pass

    def test_skipped(self):
        self.skipTest("no IPv6 here")
""", 0),
    "one failed, one skipped": ("""
class A(unittest.TestCase):
    def test_failed(self):
        self.fail("broken")

    def test_skipped(self):
        self.skipTest("no IPv6 here")
""", 1),
    "no test at all": ("""
class A(unittest.TestCase):
    pass
""", 1),
}


class SkipStatusTest(unittest.TestCase):
    def test_exit_status(self):
        with tempfile.TemporaryDirectory(prefix="weirt-skip-") as d:
            for name, (body, want) in CASES.items():
                with self.subTest(name):
                    path = os.path.join(d, "test_case.py")
                    with open(path, "w") as f:
                        f.write(HEAD + body + "\nweirtest.main()\n")
                    p = subprocess.run([sys.executable, path], capture_output=True, text=True,
                                       timeout=60)
                    self.assertEqual(p.returncode, want, p.stderr)

    def test_ctest_knows_the_code(self):
        with open(os.path.join(weirtest.SOURCE_DIR, "tests", "CMakeLists.txt")) as f:
            text = f.read()
        m = re.search(r"set_tests_properties\(integration/\$\{name\}[^)]*SKIP_RETURN_CODE (\d+)",
                      text)
        self.assertIsNotNone(m, "integration tests declare no SKIP_RETURN_CODE")
        self.assertEqual(int(m.group(1)), weirtest.SKIP_RETURN_CODE)


if __name__ == "__main__":
    weirtest.main()
