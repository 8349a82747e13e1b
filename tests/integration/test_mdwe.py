#!/usr/bin/env python3
"""weir under the kernel's memory-deny-write-execute (PR_SET_MDWE, what
systemd's MemoryDenyWriteExecute= enforces): PCRE2's JIT cannot map
executable memory there, and regex routes must still match, through the
interpreter. (Skipped on kernels without PR_SET_MDWE, before 6.3.)"""

import sys
sys.dont_write_bytecode = True

import ctypes
import unittest

import weirtest
from weirtest import Weir

PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1

INI = weirtest.SERVER + """
[route user]
match = regex:^/users/([0-9]+)$
redirect = 302 /u?id=$1
"""


def mdwe_supported():
    # Probed in a child: the flag cannot be cleared once set.
    import subprocess
    code = ("import ctypes,sys;l=ctypes.CDLL(None,use_errno=True);"
            "sys.exit(0 if l.prctl(%d,%d,0,0,0)==0 else 1)" % (PR_SET_MDWE,
                                                           PR_MDWE_REFUSE_EXEC_GAIN))
    return subprocess.run([sys.executable, "-c", code]).returncode == 0


_die_with_parent = weirtest._die_with_parent


def set_mdwe_then_die_with_parent():
    _die_with_parent()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_MDWE)")


@unittest.skipUnless(mdwe_supported(), "kernel without PR_SET_MDWE")
class MdweTest(unittest.TestCase):
    def test_regex_routes_without_jit(self):
        weirtest._die_with_parent = set_mdwe_then_die_with_parent
        try:
            w = Weir(INI)
        finally:
            weirtest._die_with_parent = _die_with_parent
        self.addCleanup(w.cleanup)
        r = w.get("/users/42")
        self.assertEqual((r.status, r.header("Location")), (302, "/u?id=42"))
        self.assertEqual(w.get("/users/x").status, 404)
        w.stop()


if __name__ == "__main__":
    weirtest.main()
