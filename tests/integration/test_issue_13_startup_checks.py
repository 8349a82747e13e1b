#!/usr/bin/env python3
"""Issue 13.12: `weir -t` passing means the start gets past what can be
checked without binding, and a start that fails says why on stderr even
when error_log is a file.

Errors (exit 1, `file:line: [section] key: message`): a user or group that
does not exist, a log file that cannot be opened, a user weir cannot
become. Warnings (exit 0, `file:line: warning: [section] key: message`): a
root the user cannot read, a log file the user could not reopen after
rotation, an expired certificate, a certificate that does not cover its
section's names. The file-permission cases need root (to drop to nobody)."""

import sys
sys.dont_write_bytecode = True

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

import tlstest
import weirtest
from weirtest import SERVER, free_port, port_is_listening, run_weir

ROUTE = """
[route ping]
match = exact:/healthz
return = 200 ok
"""
IS_ROOT = os.geteuid() == 0


def has_nobody():
    try:
        pwd.getpwnam("nobody")
        return True
    except KeyError:
        return False


def line_of(text, needle):
    """1-based number of the first line of text that starts with needle."""
    for i, line in enumerate(text.splitlines(), 1):
        if line.startswith(needle):
            return i
    raise AssertionError("no line %r in:\n%s" % (needle, text))


def make_dated_cert(dir_, stem, cn, start, end, sans=()):
    """A self-signed certificate valid from start to end (YYYYMMDDHHMMSSZ),
    made with `openssl ca` (req -x509 cannot date a certificate in the
    past). Returns (cert_path, key_path)."""
    key = os.path.join(dir_, stem + ".key")
    csr = os.path.join(dir_, stem + ".csr")
    crt = os.path.join(dir_, stem + ".crt")
    ca = os.path.join(dir_, stem + "-ca")
    os.mkdir(ca)
    open(os.path.join(ca, "index.txt"), "w").close()
    with open(os.path.join(ca, "serial"), "w") as f:
        f.write("01\n")
    cnf = os.path.join(ca, "ca.cnf")
    with open(cnf, "w") as f:
        f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = %s/index.txt\nnew_certs_dir = %s\n"
                "serial = %s/serial\ndefault_md = sha256\npolicy = p\ncopy_extensions = copy\n"
                "unique_subject = no\n[p]\ncommonName = supplied\n" % (ca, ca, ca))
    names = ",".join("DNS:" + n for n in [cn] + list(sans))
    subprocess.run(["openssl", "req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-subj", "/CN=" + cn, "-addext",
                    "subjectAltName=" + names, "-keyout", key, "-out", csr],
                   check=True, capture_output=True, timeout=60)
    subprocess.run(["openssl", "ca", "-batch", "-config", cnf, "-selfsign", "-keyfile", key,
                    "-in", csr, "-startdate", start, "-enddate", end, "-out", crt],
                   check=True, capture_output=True, timeout=60)
    return crt, key


class StartupChecksTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="weirt-i13-")
        os.chmod(self.tmp, 0o755)  # nobody may look inside, as a real /etc/weir
        self.port = free_port()

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, text, name="w.ini"):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text.replace("@PORT@", str(self.port)).replace("@TMP@", self.tmp))
        os.chmod(path, 0o644)
        return path

    def check(self, text, want_rc):
        path = self.write(text)
        p = run_weir(["-t", "-c", path])
        self.assertEqual(p.returncode, want_rc, p.stdout + p.stderr)
        return path, p

    def assertLine(self, p, path, lineno, section, key, what, is_warning=False):
        pat = r"(?m)^%s:%d: %s\[%s\] %s: .*%s" % (re.escape(path), lineno,
                                                  "warning: " if is_warning else "",
                                                  re.escape(section), key, what)
        self.assertRegex(p.stderr, pat)

    # -- errors --------------------------------------------------------------

    def test_missing_user_fails_check_and_start(self):
        text = SERVER + "user = weir-no-such-user\n" + ROUTE
        path, p = self.check(text, 1)
        self.assertLine(p, path, line_of(text, "user ="), "server", "user",
                        'no such user "weir-no-such-user"')
        self.assertNotIn(": ok", p.stdout)
        # The start stops at the same place, before binding anything.
        r = run_weir(["-c", path])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn('no such user "weir-no-such-user"', r.stderr)
        self.assertFalse(port_is_listening(self.port))

    @unittest.skipUnless(has_nobody(), "no user nobody")
    def test_missing_group(self):
        text = SERVER + "user = nobody\ngroup = weir-no-such-group\n" + ROUTE
        path, p = self.check(text, 1)
        self.assertLine(p, path, line_of(text, "group ="), "server", "group",
                        'no such group "weir-no-such-group"')

    def test_log_that_cannot_be_opened(self):
        text = SERVER.replace("error_log = stderr", "error_log = @TMP@/no/such/dir/err.log") \
            + ROUTE
        path, p = self.check(text, 1)
        self.assertLine(p, path, line_of(text, "error_log ="), "server", "error_log",
                        "cannot be opened for appending: No such file or directory")

    @unittest.skipUnless(IS_ROOT and has_nobody() and shutil.which("setpriv"),
                         "needs root, nobody and setpriv")
    def test_not_root_cannot_become_another_user(self):
        text = SERVER + "user = root\n" + ROUTE
        path = self.write(text)
        p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                            weirtest.WEIR_BIN, "-t", "-c", path], env=weirtest.weir_env(),
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertLine(p, path, line_of(text, "user ="), "server", "user",
                        "not root, so it cannot become root")
        # The right user, another group: the group is what cannot change.
        text = SERVER + "user = nobody\ngroup = root\n" + ROUTE
        path = self.write(text)
        p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                            weirtest.WEIR_BIN, "-t", "-c", path], env=weirtest.weir_env(),
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertLine(p, path, line_of(text, "group ="), "server", "group",
                        "cannot switch to group id 0")
        # Root that may not change ids (no CAP_SETUID/CAP_SETGID): the drop
        # after binding would fail, so the check does.
        text = SERVER + "user = nobody\n" + ROUTE
        path = self.write(text)
        p = subprocess.run(["setpriv", "--bounding-set=-setuid,-setgid", "--inh-caps=-all",
                            weirtest.WEIR_BIN, "-t", "-c", path], env=weirtest.weir_env(),
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertLine(p, path, line_of(text, "user ="), "server", "user",
                        "cannot become user nobody: Operation not permitted")

    # -- warnings ------------------------------------------------------------

    @unittest.skipUnless(IS_ROOT and has_nobody(), "needs root and nobody")
    def test_root_unreadable_by_user_warns(self):
        secret = os.path.join(self.tmp, "secret")
        os.mkdir(secret, 0o700)
        text = SERVER + "user = nobody\n" + ROUTE + \
            "\n[route files]\nmatch = prefix:/files/\nroot = secret\n"
        path, p = self.check(text, 0)
        self.assertLine(p, path, line_of(text, "root ="), "route files", "root",
                        re.escape(secret) + ": user nobody cannot read it", is_warning=True)
        self.assertIn(path + ": ok", p.stdout.splitlines())
        os.chmod(secret, 0o755)
        path, p = self.check(text, 0)
        self.assertNotIn("warning", p.stderr)

    @unittest.skipUnless(IS_ROOT and has_nobody(), "needs root and nobody")
    def test_log_the_user_cannot_reopen_warns(self):
        logs = os.path.join(self.tmp, "logs")
        os.mkdir(logs, 0o755)  # root's: nobody cannot create a file after rotation
        text = SERVER.replace("error_log = stderr", "error_log = logs/err.log") + \
            "user = nobody\n" + ROUTE
        path, p = self.check(text, 0)
        self.assertLine(p, path, line_of(text, "error_log ="), "server", "error_log",
                        "user nobody cannot write it .*SIGUSR1", is_warning=True)

    def test_expired_certificate_warns(self):
        crt, key = make_dated_cert(self.tmp, "old", "old.test", "20200101000000Z",
                                   "20200201000000Z")
        text = SERVER + "listen = 127.0.0.1:@PORT@ tls\n".replace("@PORT@",
                                                                  str(free_port())) + \
            "\n[tls]\ncert = %s\nkey = %s\n" % (crt, key) + ROUTE
        path, p = self.check(text, 0)
        self.assertLine(p, path, line_of(text, "cert ="), "tls", "cert",
                        re.escape(crt) + ": expired on 2020-02-01 00:00:00 UTC",
                        is_warning=True)
        self.assertIn(path + ": ok", p.stdout.splitlines())

    def test_certificate_not_covering_names_warns(self):
        dflt = tlstest.make_cert(self.tmp, "default", "default.test")
        narrow = tlstest.make_cert(self.tmp, "narrow", "a.example.test")
        wide = tlstest.make_cert(self.tmp, "wide", "a.example.test", sans=("*.b.example.test",))
        base = SERVER + "listen = 127.0.0.1:%d tls\n" % free_port() + \
            "\n[tls]\ncert = %s\nkey = %s\n" % dflt + \
            "\n[tls site]\nnames = a.example.test *.b.example.test\ncert = %s\nkey = %s\n" + ROUTE
        text = base % narrow
        path, p = self.check(text, 0)
        self.assertLine(p, path, line_of(text, "cert = " + narrow[0]), "tls site", "cert",
                        re.escape(narrow[0]) + r': does not cover "\*\.b\.example\.test"',
                        is_warning=True)
        self.assertNotIn('"a.example.test"', p.stderr)
        path, p = self.check(base % wide, 0)
        self.assertNotIn("warning", p.stderr)


class StartErrorsReachStderrTest(unittest.TestCase):
    """With error_log set to a file, a start that fails after the logs are
    open (here: the port is taken) still says why on stderr."""

    def test_bind_failure_with_error_log_file(self):
        tmp = tempfile.mkdtemp(prefix="weirt-i13-")
        self.addCleanup(shutil.rmtree, tmp, True)
        blocker = socket.socket()
        self.addCleanup(blocker.close)
        blocker.bind((weirtest.HOST, 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        log = os.path.join(tmp, "error.log")
        ini = os.path.join(tmp, "w.ini")
        with open(ini, "w") as f:
            f.write(SERVER.replace("@PORT@", str(port)).replace("error_log = stderr",
                                                               "error_log = " + log) + ROUTE)
        p = run_weir(["-c", ini])
        self.assertEqual(p.returncode, 1, p.stderr)
        want = "listen 127.0.0.1:%d: Address already in use" % port
        self.assertIn(want, p.stderr, "the failure must reach stderr")
        with open(log) as f:
            self.assertIn(want, f.read(), "and the error log")


if __name__ == "__main__":
    weirtest.main()
