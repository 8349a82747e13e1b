#!/usr/bin/env python3
"""weir raises its open-file soft limit to the hard limit at start-up."""

import sys
sys.dont_write_bytecode = True

import resource
import unittest

import weirtest
from weirtest import SERVER, Weir

INI = SERVER + """
[route ping]
match = exact:/healthz
return = 200 ok
"""


def limits_of(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return soft, hard
    return None


class FdLimitTest(unittest.TestCase):
    def test_soft_limit_raised(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == hard:
            # Start weir with a lower soft limit so there is something to raise.
            if hard < 64:
                self.skipTest("hard limit too low")
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard // 2, hard))
        w = Weir(INI)
        self.addCleanup(w.cleanup)
        self.assertEqual(w.get("/healthz").status, 200)
        got = limits_of(w.pid())
        self.assertIsNotNone(got)
        self.assertEqual(got[0], got[1], "soft limit %s not raised to hard %s" % got)


if __name__ == "__main__":
    weirtest.main()
