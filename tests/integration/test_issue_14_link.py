#!/usr/bin/env python3
"""The weir binary links libevent_core (issue 14) and, since issue 19.3,
libevent_extra for evdns (upstream names re-resolved on main's loop), and
nothing else of libevent: health probes run on weir's own stream
(stream.c), not on libevent's OpenSSL bufferevent, so libevent_openssl is
gone, and so is libevent_pthreads (never used: no event base is shared
between threads). The demo backend is not weir and may link more."""

import sys
sys.dont_write_bytecode = True

import shutil
import subprocess
import unittest

import weirtest


def needed(path):
    """The DT_NEEDED entries of an ELF file, as readelf prints them."""
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True, check=True)
    libs = []
    for line in out.stdout.splitlines():
        if "(NEEDED)" in line and "[" in line:
            libs.append(line[line.index("[") + 1:line.rindex("]")])
    return libs


class LinkTest(unittest.TestCase):
    def test_libevent_core_only(self):
        if shutil.which("readelf") is None:
            self.skipTest("readelf not installed")
        libs = needed(weirtest.WEIR_BIN)
        events = sorted(lib for lib in libs if lib.startswith("libevent"))
        self.assertEqual(len(events), 2, libs)
        self.assertTrue(events[0].startswith("libevent_core-"), libs)
        self.assertTrue(events[1].startswith("libevent_extra-"), libs)
        self.assertTrue(any(lib.startswith("libssl.") for lib in libs), libs)


if __name__ == "__main__":
    weirtest.main()
