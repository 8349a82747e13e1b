#!/usr/bin/env python3
"""Issue 13.13: `user` naming the user weir already runs as (what a unit
with User= does) is a no-op, not "Operation not permitted"; and a key only
root can read (certbot's 0600) works when weir starts as root and drops to
`user` itself: it is read before the drop. `weir -t` then warns that a
reload cannot read that key again. (Needs root, nobody and setpriv.)"""

import sys
sys.dont_write_bytecode = True

import os
import pwd
import re
import shutil
import tempfile
import unittest

import tlstest
import weirtest
from weirtest import SERVER, Weir, run_weir

ROUTE = """
[route ping]
match = exact:/healthz
return = 200 ok
"""


def ids_of(pid):
    """(uids, gids) of pid: the four values of Uid: and Gid: in /proc."""
    fields = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            name, _, value = line.partition(":")
            fields[name] = value.split()
    return fields["Uid"], fields["Gid"]


def nobody_ids():
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        return None
    return pw.pw_uid, pw.pw_gid


@unittest.skipUnless(os.geteuid() == 0 and nobody_ids() and shutil.which("setpriv"),
                     "needs root, the user nobody and setpriv")
class PrivilegesTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="weirt-i13p-")
        os.chmod(self.tmp, 0o755)
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_user_is_current_user(self):
        """Started as nobody (setpriv, as systemd's User= would), with
        user = nobody: it serves, as nobody."""
        uid, gid = nobody_ids()
        for extra in ("user = nobody\n", "user = nobody\ngroup = %s\n" % gid_name(gid)):
            w = Weir(SERVER + extra + ROUTE, tmpdir=self.tmp, start=False)
            self.addCleanup(w.kill)
            os.chmod(w.ini_path, 0o644)
            w.argv_prefix = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid,
                             "--clear-groups"]
            w.start()
            self.assertEqual(w.get("/healthz").status, 200)
            self.assertEqual(ids_of(w.pid()), ([str(uid)] * 4, [str(gid)] * 4))
            err = w.stop()
            self.assertNotIn("Operation not permitted", err)
            self.assertNotIn("[error]", err)

    def test_root_only_key_is_read_before_the_drop(self):
        """A 0600 root-owned key (certbot's): weir started as root with
        user = nobody reads it, drops, and serves TLS as nobody."""
        uid, gid = nobody_ids()
        crt, key = tlstest.make_cert(self.tmp, "site", "site.test")
        os.chown(key, 0, 0)
        os.chmod(key, 0o600)
        tls_port = weirtest.free_port()
        text = (SERVER + "listen = 127.0.0.1:%d tls\nuser = nobody\n" % tls_port +
                "\n[tls]\ncert = %s\nkey = %s\n" % (crt, key) + ROUTE)
        w = Weir(text, tmpdir=self.tmp)
        self.addCleanup(w.kill)
        self.assertEqual(ids_of(w.pid())[0], [str(uid)] * 4)
        r = tlstest.tls_get(tls_port, "/healthz", sni="site.test")
        self.assertEqual((r.status, r.body), (200, b"ok"))
        # The start says that reloads will not read the key again.
        self.assertRegex(w.stderr(), r"warning: \[tls\] key: %s: user nobody cannot read it"
                         % re.escape(key))
        w.stop()
        p = run_weir(["-t", "-c", w.ini_path])
        self.assertEqual(p.returncode, 0, p.stderr)
        lineno = text.splitlines().index("key = %s" % key) + 1
        self.assertRegex(p.stderr, r"(?m)^%s:%d: warning: \[tls\] key: %s: user nobody cannot "
                         r"read it \(Permission denied\): .*reload" % (
                             re.escape(w.ini_path), lineno, re.escape(key)))


def gid_name(gid):
    import grp
    return grp.getgrgid(gid).gr_name


if __name__ == "__main__":
    weirtest.main()
