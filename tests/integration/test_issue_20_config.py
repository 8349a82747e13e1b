#!/usr/bin/env python3
"""Issue 20.1 and 20.6 (reload): the stores of [cache NAME] sections.

Each [cache NAME] gets its memory store when a snapshot is published, and
main logs which at INFO: "cache NAME: store new" or "cache NAME: store
kept". A reload keeps the running store of a section whose name, max_size,
max_object_size and inactive are unchanged (what is cached survives), and
makes a new one otherwise; a reload that fails changes nothing, so the
next good one still finds the running stores. `weir -t` never makes a
store, and a `path` (the disk tier, not built yet) is refused with
file:line. Stores are released with their last snapshot: the sanitizer
build's leak check at the clean exit says none is left behind.

(How the stores serve requests is the cache handler's, tested with it.)"""

import sys
sys.dont_write_bytecode = True

import signal
import unittest

import weirtest
from polling import count_log, wait_log
from weirtest import SERVER, Weir, free_port, run_weir

INI = SERVER + """
[upstream app]
server = 127.0.0.1:@APP@

[cache pages]
max_size = 2m
max_object_size = 64k

[cache api]
max_size = @API_SIZE@
inactive = 1m
@EXTRA_CACHE@
[route api]
match = prefix:/api/
proxy = app
cache = api
cache_valid = 200 10s

[route pages]
match = prefix:/
proxy = app
cache = pages
@EXTRA_ROUTE@"""

EXTRA_CACHE = "\n[cache extra]\n"
EXTRA_ROUTE = "\n[route extra]\nmatch = prefix:/extra/\nproxy = app\ncache = extra\n"


def ini(api_size="4m", extra=False, tail=""):
    return (INI.replace("@API_SIZE@", api_size)
               .replace("@EXTRA_CACHE@", EXTRA_CACHE if extra else "")
               .replace("@EXTRA_ROUTE@", EXTRA_ROUTE if extra else "") + tail)


class CacheStoresTest(unittest.TestCase):
    def setUp(self):
        self.app_port = free_port()
        self.w = Weir(ini(), subst={"APP": self.app_port})
        self.addCleanup(self.w.cleanup)
        self.n_reloads = 0

    def rewrite(self, text):
        with open(self.w.ini_path, "w") as f:
            f.write(text.replace("@PORT@", str(self.w.port))
                        .replace("@APP@", str(self.app_port)))

    def reload(self, text):
        self.rewrite(text)
        self.w.signal(signal.SIGHUP)
        self.n_reloads += 1
        wait_log(self.w, "configuration reloaded", count=self.n_reloads)

    def counts(self, name):
        return (count_log(self.w, r"cache %s: store new$" % name),
                count_log(self.w, r"cache %s: store kept$" % name))

    def test_reload_keeps_unchanged_stores(self):
        w = self.w
        wait_log(w, r"cache pages: store new$")
        wait_log(w, r"cache api: store new$")
        # api's max_size changes and a new section comes: pages is kept.
        self.reload(ini(api_size="8m", extra=True))
        self.assertEqual(self.counts("pages"), (1, 1))
        self.assertEqual(self.counts("api"), (2, 0))
        self.assertEqual(self.counts("extra"), (1, 0))
        # Nothing changes: every store is kept.
        self.reload(ini(api_size="8m", extra=True))
        self.assertEqual(self.counts("pages"), (1, 2))
        self.assertEqual(self.counts("api"), (2, 1))
        self.assertEqual(self.counts("extra"), (1, 1))
        # A failed reload keeps serving on the running stores...
        self.rewrite(ini(api_size="8m", extra=True,
                         tail="\n[cache bad]\npath = /etc/hostname\n"))  # not a directory
        w.signal(signal.SIGHUP)
        wait_log(w, "reload failed")
        self.assertIn("cache bad: path /etc/hostname:", w.stderr())
        # ...which the next good one finds; extra is gone, api's size moves back.
        self.reload(ini())
        self.assertEqual(self.counts("pages"), (1, 3))
        self.assertEqual(self.counts("api"), (3, 1))
        self.assertEqual(self.counts("extra"), (1, 1))
        w.assert_alive()
        w.stop()  # exit 0, no sanitizer (leak) report

    def test_check_makes_no_store(self):
        p = run_weir(["-t", "-c", self.w.ini_path])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("store", p.stdout + p.stderr)

    def test_unusable_path_stops_the_start(self):
        self.rewrite(ini(tail="\n[cache disk]\npath = /etc/hostname\n"))
        p = run_weir(["-c", self.w.ini_path], timeout=20)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("cache disk: path /etc/hostname:", p.stdout + p.stderr)


if __name__ == "__main__":
    weirtest.main()
