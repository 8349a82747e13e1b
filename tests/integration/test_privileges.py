#!/usr/bin/env python3
"""Privilege drop, observed from /proc: started as root with user = nobody
and group = nogroup, every thread of weir runs with those ids only, no
supplementary group but the target one, and no effective capability. As
root without `user`, weir warns. (Skipped when the tests do not run as root.)"""

import sys
sys.dont_write_bytecode = True

import grp
import os
import pwd
import unittest

import weirtest
from weirtest import Weir

INI = weirtest.SERVER + """user = nobody
group = nogroup

[route ping]
match = exact:/healthz
return = 200 ok
"""


def status_fields(path):
    fields = {}
    with open(path) as f:
        for line in f:
            name, _, value = line.partition(":")
            fields[name] = value.split()
    return fields


@unittest.skipUnless(os.geteuid() == 0, "needs root to start with privileges")
class PrivilegeDropTest(unittest.TestCase):
    def test_ids_groups_and_capabilities(self):
        try:
            uid = pwd.getpwnam("nobody").pw_uid
            gid = grp.getgrnam("nogroup").gr_gid
        except KeyError:
            self.skipTest("no nobody/nogroup on this system")
        w = Weir(INI)
        self.addCleanup(w.cleanup)
        self.assertEqual(w.get("/healthz").status, 200)
        tasks = os.listdir("/proc/%d/task" % w.pid())
        self.assertGreaterEqual(len(tasks), 2)  # main and the worker
        for tid in tasks:
            st = status_fields("/proc/%d/task/%s/status" % (w.pid(), tid))
            self.assertEqual(st["Uid"], [str(uid)] * 4, tid)
            self.assertEqual(st["Gid"], [str(gid)] * 4, tid)
            self.assertIn(st["Groups"], ([], [str(gid)]), tid)
            self.assertEqual(int(st["CapEff"][0], 16), 0, tid)
            self.assertEqual(int(st["CapPrm"][0], 16), 0, tid)
        self.assertNotIn("running as root", w.stderr())
        w.stop()

    def test_root_without_user_warns(self):
        w = Weir(weirtest.SERVER + "\n[route ping]\nmatch = exact:/healthz\nreturn = 200 ok\n")
        self.addCleanup(w.cleanup)
        self.assertIn("running as root: set [server] user to drop privileges", w.stderr())
        w.stop()


if __name__ == "__main__":
    weirtest.main()
