#!/usr/bin/env python3
"""Issue 19 point 6 (authentication part): per route auth_basic and
auth_basic_file (htpasswd with yescrypt, bcrypt and SHA-512 crypt hashes,
checked by libcrypt). No credentials or wrong ones get 401 with
WWW-Authenticate; right ones pass (HTTP/1.1 and HTTP/2); more than 10
failures a minute from one client get 429 with Retry-After; failures are
counted; a reload re-reads the file (a changed password takes effect); a
route with users but no file is refused at load."""

import sys
sys.dont_write_bytecode = True

import base64
import ctypes
import os
import shutil
import signal
import subprocess
import unittest

import weirtest
from polling import metric, wait_until

INI = """[server]
listen = 127.0.0.1:@PORT@ h2c
workers = 1
error_log = stderr

[admin]
listen = 127.0.0.1:@ADMIN@

[route private]
match = prefix:/private/
auth_basic = Staff only
auth_basic_file = @TMP@/htpasswd
return = 200 secret

[route open]
match = prefix:/
return = 200 open
"""


def make_hash(password, prefix):
    """crypt(3) hash of password with libcrypt's own salt for prefix."""
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    setting = lib.crypt_gensalt(prefix.encode(), 5 if prefix == "$2b$" else 0, None, 0)
    return lib.crypt(password.encode(), setting).decode()


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


class BasicAuthTest(weirtest.WeirCase):
    INI = INI

    @classmethod
    def make_subst(cls, tmp):
        cls.admin_port = weirtest.free_port()
        cls.htpasswd = os.path.join(tmp, "htpasswd")
        cls.write_users({"ann": ("annpw", "$y$"), "bob": ("bobpw", "$2b$"),
                         "cy": ("cypw", "$6$")})
        return {"ADMIN": cls.admin_port, "TMP": tmp}

    @classmethod
    def write_users(cls, users):
        with open(cls.htpasswd, "w") as f:
            f.write("# users of the staff pages\n\n")
            for name, (pw, prefix) in users.items():
                f.write("%s:%s\n" % (name, make_hash(pw, prefix)))

    def fetch(self, target, auth=None):
        headers = [("Authorization", auth)] if auth else []
        return self.get(target, headers=headers)

    def test_challenge_and_access(self):
        r = self.fetch("/private/x")
        self.assertEqual(r.status, 401)
        self.assertEqual(r.header("WWW-Authenticate"), 'Basic realm="Staff only", charset="UTF-8"')
        for user, pw in (("ann", "annpw"), ("bob", "bobpw"), ("cy", "cypw")):
            r = self.fetch("/private/x", basic(user, pw))
            self.assertEqual((r.status, r.body), (200, b"secret"), user)
            r = self.fetch("/private/x", basic(user, pw))  # the cached path
            self.assertEqual(r.status, 200, user)
        self.assertEqual(self.fetch("/open", basic("ann", "nope")).status, 200)

    def test_wrong_credentials(self):
        before = metric(self.admin_port, "weir_auth_failures_total")
        for auth in (basic("ann", "wrong"), basic("nobody", "annpw"), basic("ann", ""),
                     "Basic !!!!", "Basic " + base64.b64encode(b"no-colon").decode(),
                     "Bearer abc"):
            r = self.fetch("/private/x", auth)
            self.assertEqual(r.status, 401, auth)
            self.assertIsNotNone(r.header("WWW-Authenticate"))
        # Bearer is no Basic attempt: five failures counted
        wait_until(lambda: metric(self.admin_port, "weir_auth_failures_total") == before + 5,
                   "failures counted")

    @unittest.skipUnless(shutil.which("curl"), "curl is needed")
    def test_http2(self):
        base = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--http2-prior-knowledge"]
        url = "http://127.0.0.1:%d/private/x" % self.weir.port
        p = subprocess.run(base + [url], capture_output=True, timeout=30)
        self.assertEqual(p.stdout, b"401")
        p = subprocess.run(base + ["-u", "cy:cypw", url], capture_output=True, timeout=30)
        self.assertEqual(p.stdout, b"200")

    def test_zz_failures_throttled_then_reload(self):
        # More than 10 failures a minute from one address: 429.
        statuses = [self.fetch("/private/x", basic("bob", "guess%d" % i)).status
                    for i in range(12)]
        self.assertIn(429, statuses)
        r = self.fetch("/private/x", basic("bob", "guess"))
        self.assertEqual(r.status, 429)
        self.assertIsNotNone(r.header("Retry-After"))
        # A reload re-reads the file: the new password is the one that works.
        self.write_users({"dee": ("deepw", "$6$")})
        self.weir.signal(signal.SIGHUP)
        wait_until(lambda: metric(self.admin_port, "weir_config_reloads_total") >= 1,
                   "the reload")
        wait_until(lambda: self.fetch("/private/x", basic("dee", "deepw")).status == 200,
                   "the new user let in")
        self.assertIn(self.fetch("/private/x", basic("ann", "annpw")).status, (401, 429))


class AdminAuthTest(weirtest.WeirCase):
    INI = """[server]
listen = 127.0.0.1:@PORT@
workers = 1
error_log = stderr

[admin]
listen = 127.0.0.1:@ADMIN@
allow = 127.0.0.1
auth_basic = weir admin
auth_basic_file = @TMP@/admins

[route ok]
match = prefix:/
return = 200 ok
"""

    @classmethod
    def make_subst(cls, tmp):
        cls.admin_port = weirtest.free_port()
        with open(os.path.join(tmp, "admins"), "w") as f:
            f.write("ops:%s\n" % make_hash("opspw", "$6$"))
        return {"ADMIN": cls.admin_port, "TMP": tmp}

    def admin(self, auth=None):
        with weirtest.Client(("127.0.0.1", self.admin_port), timeout=5) as c:
            headers = [("Authorization", auth)] if auth else []
            c.send(weirtest.request_bytes("GET", "/status", headers=headers))
            return c.read_response()

    def test_admin_needs_credentials(self):
        r = self.admin()
        self.assertEqual(r.status, 401)
        self.assertEqual(r.header("WWW-Authenticate"), 'Basic realm="weir admin", charset="UTF-8"')
        self.assertEqual(self.admin(basic("ops", "wrong")).status, 401)
        r = self.admin(basic("ops", "opspw"))
        self.assertEqual(r.status, 200)
        self.assertIn(b'"version"', r.body)


class BadAuthConfigTest(unittest.TestCase):
    def test_refused_at_load(self):
        tmp = weirtest.tempfile.mkdtemp(prefix="weirt-")
        try:
            cases = [
                ("auth_basic = x\nreturn = 200\n", "auth_basic: needs auth_basic_file"),
                ("auth_basic = x\nauth_basic_file = missing\nreturn = 200\n",
                 "auth_basic_file: cannot read"),
                ("auth_basic = x\nauth_basic_file = plain\nreturn = 200\n",
                 "plain:1: user ann: not a hash libcrypt checks"),
            ]
            with open(os.path.join(tmp, "plain"), "w") as f:
                f.write("ann:secret\n")
            for body, want in cases:
                path = os.path.join(tmp, "t.ini")
                with open(path, "w") as f:
                    f.write("[server]\nlisten = 127.0.0.1:1\n[route r]\nmatch = prefix:/\n" + body)
                p = weirtest.run_weir(["-t", "-c", path])
                self.assertNotEqual(p.returncode, 0, body)
                self.assertIn(want, p.stderr + p.stdout, body)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    weirtest.main()
