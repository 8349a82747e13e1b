#!/usr/bin/env python3
"""CLI: -t (ok and every error), -V, -h, unknown option, and a broken
config that never starts listening."""

import sys
sys.dont_write_bytecode = True

import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import weirtest
from weirtest import SERVER, free_port, port_is_listening, run_weir

GOOD = SERVER + """
[limits]
header_timeout = 5s

[route ping]
match = exact:/healthz
return = 200 ok
"""

# Line numbers matter: the errors must name them.
BROKEN = """[server]
listen = 127.0.0.1:@PORT@
access_log = off
no_such_key = 1
workers = 1

[limits]
header_timeout = 10 parsecs

[route ping]
match = exact:/healthz
return = 200 ok
"""
BROKEN_LINES = {4: ("server", "no_such_key"), 8: ("limits", "header_timeout")}


class CliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="weirt-cli-")
        self.port = free_port()

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text.replace("@PORT@", str(self.port)))
        return path

    def test_check_good_relative_path(self):
        self.write("good.ini", GOOD)
        p = run_weir(["-t", "-c", "good.ini"], cwd=self.tmp)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = (p.stdout + p.stderr).splitlines()
        self.assertIn("good.ini: ok", out, "want the path as given, then ': ok'")
        self.assertFalse(port_is_listening(self.port), "-t must not leave anything listening")

    def test_check_good_absolute_path(self):
        path = self.write("good.ini", GOOD)
        p = run_weir(["-t", "-c", path])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(path + ": ok", (p.stdout + p.stderr).splitlines())

    def test_check_broken_reports_every_error(self):
        self.write("broken.ini", BROKEN)
        p = run_weir(["-t", "-c", "broken.ini"], cwd=self.tmp)
        self.assertEqual(p.returncode, 1, "stdout=%r stderr=%r" % (p.stdout, p.stderr))
        lines = p.stderr.splitlines()
        for lineno, (section, key) in BROKEN_LINES.items():
            pat = re.compile(r"^broken\.ini:%d: \[%s\] %s: \S.*$" % (lineno, section, key))
            self.assertTrue(any(pat.match(l) for l in lines),
                            "no error line like 'broken.ini:%d: [%s] %s: message' in stderr:\n%s"
                            % (lineno, section, key, p.stderr))
        self.assertNotIn("broken.ini: ok", p.stdout + p.stderr)

    def test_check_route_section_named_in_error(self):
        text = SERVER + """
[route api]
match = regex:^/api/(
return = 200 ok
"""
        self.write("route.ini", text)
        lineno = text.splitlines().index("match = regex:^/api/(") + 1
        p = run_weir(["-t", "-c", "route.ini"], cwd=self.tmp)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertRegex(p.stderr, r"(?m)^route\.ini:%d: \[route api\] match: \S" % lineno)

    def test_issue_13_check_prints_warnings_and_passes(self):
        text = SERVER + """
[upstream app]
server = 127.0.0.1:9

[route api]
match = prefix:/
proxy = app
strip_prefix = /api
"""
        self.write("warn.ini", text)
        lineno = text.splitlines().index("strip_prefix = /api") + 1
        p = run_weir(["-t", "-c", "warn.ini"], cwd=self.tmp)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stderr, r"(?m)^warn\.ini:%d: warning: \[route api\] strip_prefix: \S"
                         % lineno)
        self.assertIn("warn.ini: ok", p.stdout.splitlines())

    def test_check_missing_file(self):
        p = run_weir(["-t", "-c", os.path.join(self.tmp, "nope.ini")])
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("nope.ini", p.stderr)

    def test_version(self):
        p = run_weir(["-V"])
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout + p.stderr
        self.assertIn("weir 0.1.0", out.splitlines(), "a line 'weir 0.1.0'")
        self.assertRegex(out, r"(?i)libevent\D*\d+\.\d+")
        self.assertRegex(out, r"(?i)pcre2?\D*\d+\.\d+")

    def test_help(self):
        p = run_weir(["-h"])
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout + p.stderr
        self.assertRegex(out, r"(?i)usage")
        for opt in ("-c", "-t", "-V", "-h"):
            self.assertIn(opt, out)

    def test_unknown_option(self):
        p = run_weir(["-Z"])
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertRegex(p.stderr, r"(?i)usage", "usage goes to stderr")

    def test_issue_13_long_options(self):
        """--config, --test, --version and --help are -c, -t, -V and -h."""
        self.write("good.ini", GOOD)
        for args in (["--test", "--config", "good.ini"], ["--config=good.ini", "--test"],
                     ["-t", "--config", "good.ini"]):
            p = run_weir(args, cwd=self.tmp)
            self.assertEqual(p.returncode, 0, "%s: %s" % (args, p.stderr))
            self.assertIn("good.ini: ok", p.stdout.splitlines(), args)
        self.write("broken.ini", BROKEN)
        p = run_weir(["--test", "--config", "broken.ini"], cwd=self.tmp)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertRegex(p.stderr, r"broken\.ini:4: \[server\] no_such_key: ")
        self.assertEqual(run_weir(["--version"]).stdout, run_weir(["-V"]).stdout)
        self.assertEqual(run_weir(["--help"]).stdout, run_weir(["-h"]).stdout)
        p = run_weir(["--no-such-option"])
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertRegex(p.stderr, r"(?i)usage")
        p = run_weir(["--config"])
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)

    def test_issue_13_default_config_path(self):
        """Without -c, weir reads /etc/weir/weir.ini (as weir.8 says)."""
        p = run_weir(["-t"])
        out = p.stdout + p.stderr
        self.assertRegex(out, r"(?m)^/etc/weir/weir\.ini:", "the default file is named")
        if not os.path.exists("/etc/weir/weir.ini"):
            self.assertEqual(p.returncode, 1, out)
            self.assertIn("/etc/weir/weir.ini: No such file or directory", out.splitlines())
            p = run_weir([])  # running, not checking: the same file, the same error
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertIn("/etc/weir/weir.ini: No such file or directory",
                          p.stderr.splitlines())

    def test_issue_13_help_matches_man_page(self):
        """weir -h and conf/weir.8 list the same options and default file."""
        with open(os.path.join(weirtest.SOURCE_DIR, "conf", "weir.8")) as f:
            man = f.read()
        options = man.split(".SH OPTIONS", 1)[1].split(".SH ", 1)[0]
        tags = [l.replace("\\-", "-") for l in options.splitlines() if l.startswith(".BR -")
                or l.startswith(".BR \\-")]
        man_opts = set(re.findall(r"--?[A-Za-z][a-z]*", " ".join(tags)))
        help_text = run_weir(["-h"]).stdout
        help_opts = set(re.findall(r"(?<![\w-])--?[A-Za-z][a-z]*", help_text))
        self.assertEqual(man_opts, {"-c", "--config", "-t", "--test", "-V", "--version", "-h",
                                    "--help", "--strict"})
        self.assertEqual(help_opts, man_opts, help_text)
        self.assertIn("/etc/weir/weir.ini", help_text)
        self.assertIn("/etc/weir/weir.ini", options.replace("\\", ""))

    def test_run_broken_never_listens(self):
        path = self.write("broken.ini", BROKEN)
        proc = subprocess.Popen([weirtest.WEIR_BIN, "-c", path], env=weirtest.weir_env(),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, preexec_fn=weirtest._die_with_parent)
        try:
            listened = False
            deadline = time.monotonic() + 5
            for _ in range(500):
                if proc.poll() is not None or time.monotonic() > deadline:
                    break
                if port_is_listening(self.port, timeout=0.1):
                    listened = True
                time.sleep(0.01)
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
                self.fail("weir -c kept running on a config with errors (listened=%s)"
                          % listened)
            out, err = proc.communicate(timeout=5)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
        err = err.decode("utf-8", "replace")
        self.assertIsNone(weirtest.sanitizer_report(err), err)
        self.assertEqual(proc.returncode, 1, err)
        self.assertFalse(listened, "weir listened on a config with errors")
        self.assertFalse(port_is_listening(self.port))
        self.assertRegex(err, r"broken\.ini:4: \[server\] no_such_key: ")


if __name__ == "__main__":
    weirtest.main()
