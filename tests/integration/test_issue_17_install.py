"""`make install` (issue 17): `cmake --install` of the test build into a
temporary DESTDIR puts every file where README "Where things are" says, the
units name the installed binary and configuration and pass `systemd-analyze
verify` (and stay hardened), and the installed configuration passes
`weir -t` with its paths moved into the DESTDIR image.

The test build is configured with the default prefix, /usr/local; the
Debian package (/usr) is test_issue_17_deb.py's.
"""
import os
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

import weirtest

BUILD_DIR = os.path.dirname(weirtest.WEIR_BIN)
PREFIX = "/usr/local"

# Every file the install writes, with its mode; directories are implied.
EXPECTED_FILES = {
    "etc/weir/weir.ini": 0o644,
    "etc/logrotate.d/weir": 0o644,
    "usr/local/sbin/weir": 0o755,
    "usr/local/lib/systemd/system/weir.service": 0o644,
    "usr/local/lib/systemd/system/weir@.service": 0o644,
    "usr/local/lib/systemd/system/weir.socket": 0o644,
    "usr/local/share/man/man8/weir.8.gz": 0o644,
    "usr/local/share/man/man5/weir.ini.5.gz": 0o644,
    "usr/local/share/weir/html/index.html": 0o644,
    "usr/local/share/doc/weir/copyright": 0o644,
    "usr/local/share/doc/weir/examples/weir.ini": 0o644,
}
EXPECTED_EMPTY_DIRS = {"etc/weir/conf.d"}


def default_shutdown_timeout_s():
    """[limits] shutdown_timeout's default, from config.c's key table."""
    with open(os.path.join(weirtest.SOURCE_DIR, "src", "config.c")) as f:
        text = f.read()
    m = re.search(r'"shutdown_timeout".*?\.dflt = "(\d+)s"', text, re.S)
    return int(m.group(1))


class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dest = os.path.join(cls.tmp.name, "dest")
        env = dict(os.environ, DESTDIR=cls.dest)
        p = subprocess.run(["cmake", "--install", BUILD_DIR], env=env, capture_output=True,
                           text=True, timeout=60)
        if p.returncode != 0:
            raise AssertionError("cmake --install failed:\n" + p.stdout + p.stderr)
        cls.install_log = p.stdout

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, rel):
        return os.path.join(self.dest, rel)

    def read(self, rel):
        with open(self.path(rel)) as f:
            return f.read()

    def test_issue_17_layout_file_by_file(self):
        files, empty_dirs = {}, set()
        for root, dirs, names in os.walk(self.dest):
            for n in names:
                full = os.path.join(root, n)
                files[os.path.relpath(full, self.dest)] = stat.S_IMODE(os.lstat(full).st_mode)
            if not dirs and not names:
                empty_dirs.add(os.path.relpath(root, self.dest))
        self.assertEqual(files, EXPECTED_FILES)
        self.assertEqual(empty_dirs, EXPECTED_EMPTY_DIRS)
        with open(weirtest.WEIR_BIN, "rb") as a, open(self.path("usr/local/sbin/weir"), "rb") as b:
            self.assertEqual(a.read(), b.read(), "the built binary is the installed one")

    def test_issue_17_config_never_overwritten(self):
        """A second install keeps an edited /etc/weir/weir.ini."""
        conf = self.path("etc/weir/weir.ini")
        with open(conf, "a") as f:
            f.write("; edited by the admin\n")
        env = dict(os.environ, DESTDIR=self.dest)
        p = subprocess.run(["cmake", "--install", BUILD_DIR], env=env, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("Keeping existing: " + conf, p.stdout)
        self.assertTrue(self.read("etc/weir/weir.ini").endswith("; edited by the admin\n"))

    def test_issue_17_units_name_the_install(self):
        service = self.read("usr/local/lib/systemd/system/weir.service")
        bin_path = PREFIX + "/sbin/weir"
        self.assertNotRegex(service, r"@[A-Z_]+@", "every @VAR@ filled in")
        self.assertIn("\nExecStart=%s -c /etc/weir/weir.ini\n" % bin_path, service)
        self.assertIn("\nExecStartPre=%s -t -c /etc/weir/weir.ini\n" % bin_path, service)
        # Reload checks the file first; a failing check stops the reload.
        reloads = re.findall(r"(?m)^ExecReload=(.*)$", service)
        self.assertEqual(reloads, ["%s -t -c /etc/weir/weir.ini" % bin_path,
                                   "/bin/kill -HUP $MAINPID"])
        self.assertRegex(service, r"(?m)^Documentation=man:weir\(8\) man:weir\.ini\(5\)$")
        stop = int(re.search(r"(?m)^TimeoutStopSec=(\d+)$", service).group(1))
        self.assertGreaterEqual(stop, default_shutdown_timeout_s() + 10,
                                "TimeoutStopSec leaves the drain time to finish")
        self.assertRegex(service, r"(?m)^User=weir$")
        template = self.read("usr/local/lib/systemd/system/weir@.service")
        self.assertIn("\nExecStart=%s -c /etc/weir/%%i.ini\n" % bin_path, template)
        self.assertIn("\nExecReload=%s -t -c /etc/weir/%%i.ini\n" % bin_path, template)
        self.assertRegex(template, r"(?m)^RuntimeDirectory=weir-%i$")
        self.assertRegex(self.read("etc/logrotate.d/weir"), r"SIGUSR1")

    def unit_dir_for_analyze(self, d):
        """The installed units, with the binary path pointing into DESTDIR
        (systemd-analyze checks that ExecStart exists)."""
        src = self.path("usr/local/lib/systemd/system")
        binary = self.path("usr/local/sbin/weir")
        for name in os.listdir(src):
            with open(os.path.join(src, name)) as f:
                text = f.read().replace(PREFIX + "/sbin/weir", binary)
            with open(os.path.join(d, name), "w") as f:
                f.write(text)

    def test_issue_17_units_verify(self):
        tool = shutil.which("systemd-analyze")
        if tool is None:
            self.skipTest("systemd-analyze not installed")
        with tempfile.TemporaryDirectory() as d:
            self.unit_dir_for_analyze(d)
            units = [os.path.join(d, n) for n in ("weir.service", "weir.socket",
                                                  "weir@staging.service")]
            # weir@staging.service: the template, instantiated.
            shutil.copy(os.path.join(d, "weir@.service"), units[2])
            # --man=no: the pages are in DESTDIR, not where man looks.
            p = subprocess.run([tool, "verify", "--man=no"] + units, capture_output=True, text=True,
                               timeout=60)
        ours = [l for l in (p.stdout + p.stderr).splitlines() if "weir" in l]
        self.assertEqual(ours, [], "\n".join(ours))

    def test_issue_17_units_exposure(self):
        """Both services stay at exposure <= 2.0 (README: 1.7)."""
        tool = shutil.which("systemd-analyze")
        if tool is None:
            self.skipTest("systemd-analyze not installed")
        with tempfile.TemporaryDirectory() as d:
            self.unit_dir_for_analyze(d)
            shutil.copy(os.path.join(d, "weir@.service"), os.path.join(d, "weir@staging.service"))
            for name in ("weir.service", "weir@staging.service"):
                p = subprocess.run([tool, "security", "--offline=true", os.path.join(d, name)],
                                   capture_output=True, text=True, timeout=60)
                if "--offline" in p.stderr:
                    self.skipTest("systemd-analyze security has no --offline here")
                m = re.search(r"Overall exposure level for %s: (\d+\.\d+)" % re.escape(name),
                              p.stdout)
                self.assertIsNotNone(m, p.stdout + p.stderr)
                self.assertLessEqual(float(m.group(1)), 2.0, p.stdout)

    def test_issue_17_installed_config_passes_check(self):
        """/etc/weir/weir.ini as installed passes weir -t, its absolute paths
        (logs, the default page) moved into the DESTDIR image."""
        text = self.read("etc/weir/weir.ini")
        self.assertRegex(text, r"(?m)^listen = 0\.0\.0\.0:80\b")
        self.assertRegex(text, r"(?m)^root = %s/share/weir/html\b" % PREFIX)
        self.assertRegex(text, r"(?m)^access_log = /var/log/weir/access\.log\b")
        self.assertRegex(text, r"(?m)^error_log = /var/log/weir/error\.log\b")
        for section in ("[server]", "[limits]", "[tls]", "[upstream", "[route", "[admin]"):
            self.assertIn(section, text, "the file points at every section")
        self.assertIn("weir.ini(5)", text)
        # Outside the DESTDIR image, whose layout another test checks.
        logs = os.path.join(self.tmp.name, "var-log-weir")
        os.makedirs(logs)
        text = text.replace("/var/log/weir", logs)
        text = text.replace(PREFIX + "/share/weir/html", self.path("usr/local/share/weir/html"))
        conf = os.path.join(self.tmp.name, "check.ini")
        with open(conf, "w") as f:
            f.write(text)
        p = weirtest.run_weir(["-t", "-c", conf])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stdout.strip(), conf + ": ok")
        # include = conf.d/*.ini: a site dropped there is read too.
        self.assertRegex(text, r"(?m)^include = conf\.d/\*\.ini$")
        os.mkdir(os.path.join(self.tmp.name, "conf.d"))
        with open(os.path.join(self.tmp.name, "conf.d", "app.ini"), "w") as f:
            f.write("[route app]\nmatch = prefix:/app/\nretrun = 200\n")
        p = weirtest.run_weir(["-t", "-c", conf])
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("conf.d/app.ini:3: [route app] retrun: unknown key", p.stdout + p.stderr)

    def test_issue_17_man_pages(self):
        """Both man pages render without a groff warning."""
        groff = shutil.which("groff")
        if groff is None:
            self.skipTest("groff not installed")
        for rel in ("usr/local/share/man/man8/weir.8.gz", "usr/local/share/man/man5/weir.ini.5.gz"):
            page = subprocess.run(["gzip", "-dc", self.path(rel)], capture_output=True,
                                  check=True).stdout
            p = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z"], input=page,
                               capture_output=True, timeout=60)
            self.assertEqual(p.stderr.decode(), "", rel)
            self.assertEqual(p.returncode, 0, rel)
        weir8 = subprocess.run(["gzip", "-dc", self.path("usr/local/share/man/man8/weir.8.gz")],
                               capture_output=True, check=True, text=True).stdout
        for section in (".SH LOGS", ".SH SIGNALS", ".SH EXIT STATUS", ".SH FILES"):
            self.assertIn(section, weir8)
        logs = weir8.split(".SH LOGS", 1)[1].split(".SH ", 1)[0]
        self.assertIn("journal", logs)
        self.assertIn("/var/log/weir/", logs)
        exits = weir8.split(".SH EXIT STATUS", 1)[1].split(".SH ", 1)[0]
        self.assertEqual(re.findall(r"(?m)^\.B (\d)$", exits), ["0", "1", "2"])
        self.assertIn("/etc/weir/weir.ini", weir8.split(".SH FILES", 1)[1])
        page = subprocess.run(["gzip", "-dc", self.path("usr/local/share/man/man5/weir.ini.5.gz")],
                              capture_output=True, check=True, text=True).stdout
        for heading in (".SH CONFIGURATION", ".SS \\fBinclude\\fR", ".SS \\fB[server]\\fR",
                        ".SS \\fB[route NAME]\\fR", ".SS \\fB[upstream NAME]\\fR", ".SH LIMITS"):
            self.assertIn(heading, page)


if __name__ == "__main__":
    weirtest.main()
