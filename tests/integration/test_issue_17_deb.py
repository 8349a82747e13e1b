"""The Debian package (issue 17): what `make deb` does (a /usr-prefix
release build of the weir target, then cpack -G DEB) gives a package whose
contents, control fields and maintainer scripts are what README "Install"
says, and that lintian passes without an error.

The build is a fresh one in a temporary directory (the test build is
/usr/local and sanitized, not what a package ships), unoptimised and
limited to what the package holds, so the whole test stays within about a
minute.
"""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import weirtest

# Every file the package holds.
EXPECTED_FILES = {
    "./etc/logrotate.d/weir",
    "./etc/weir/weir.ini",
    "./lib/systemd/system/weir.service",
    "./lib/systemd/system/weir.socket",
    "./lib/systemd/system/weir@.service",
    "./usr/sbin/weir",
    "./usr/share/doc/weir/changelog.Debian.gz",
    "./usr/share/doc/weir/copyright",
    "./usr/share/doc/weir/examples/weir.ini",
    "./usr/share/man/man5/weir.ini.5.gz",
    "./usr/share/man/man8/weir.8.gz",
    "./usr/share/weir/html/index.html",
}


def missing_tools():
    return [t for t in ("cmake", "cpack", "dpkg-deb", "dpkg-shlibdeps")
            if shutil.which(t) is None]


class DebTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.deb = None
        if missing_tools():
            return
        cls.tmp = tempfile.TemporaryDirectory()
        build = os.path.join(cls.tmp.name, "build")
        os.mkdir(build)
        env = dict(os.environ, CC=os.environ.get("CC", "cc"))
        steps = [
            # No optimisation (half the compile time): what the package
            # holds and says does not depend on it; `make deb` builds Release.
            ["cmake", "-S", weirtest.SOURCE_DIR, "-B", build, "-DCMAKE_BUILD_TYPE=None",
             "-DWEIR_TESTS=OFF", "-DCMAKE_INSTALL_PREFIX=/usr", "-DWEIR_DEB=ON",
             # cpack would build every target first; the package needs these.
             "-DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON"],
            ["cmake", "--build", build, "-j", "2", "--target", "weir", "man", "deb_changelog"],
            ["cpack", "-G", "DEB"],
        ]
        for cmd in steps:
            p = subprocess.run(cmd, cwd=build, env=env, capture_output=True, text=True,
                               timeout=240)
            if p.returncode != 0:
                raise AssertionError("%s failed:\n%s%s" % (" ".join(cmd), p.stdout, p.stderr))
        debs = [f for f in os.listdir(build) if f.endswith(".deb")]
        if len(debs) != 1:
            raise AssertionError("expected one .deb, got %r" % debs)
        cls.deb = os.path.join(build, debs[0])

    @classmethod
    def tearDownClass(cls):
        if cls.deb is not None:
            cls.tmp.cleanup()

    def setUp(self):
        if self.deb is None:
            self.skipTest("missing: " + ", ".join(missing_tools()))

    def dpkg_deb(self, *args):
        return subprocess.run(["dpkg-deb"] + list(args) + [self.deb], capture_output=True,
                              text=True, check=True, timeout=60).stdout

    def test_issue_17_contents(self):
        listing = self.dpkg_deb("-c")
        files, owners = set(), set()
        for line in listing.splitlines():
            mode, owner, _size, _date, _time, name = line.split(None, 5)
            owners.add(owner)
            if not mode.startswith("d"):
                files.add(name)
                want = "-rwxr-xr-x" if name == "./usr/sbin/weir" else "-rw-r--r--"
                self.assertEqual(mode, want, name)
        self.assertEqual(files, EXPECTED_FILES)
        self.assertEqual(owners, {"root/root"})
        self.assertIn("./etc/weir/conf.d/", listing.split())
        self.assertEqual(os.path.basename(self.deb), "weir_0.1.0-1_%s.deb" % self.arch())

    def arch(self):
        return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                              check=True).stdout.strip()

    def test_issue_17_control(self):
        control = self.dpkg_deb("-f")
        self.assertRegex(control, r"(?m)^Package: weir$")
        self.assertRegex(control, r"(?m)^Version: 0\.1\.0-1$")
        self.assertRegex(control, r"(?m)^Section: httpd$")
        depends = re.search(r"(?m)^Depends: (.*)$", control).group(1)
        # Computed by dpkg-shlibdeps from what the binary links, plus adduser
        # for the maintainer scripts.
        for lib in ("adduser", "libc6", "libevent-core-2.1-7", "libevent-extra-2.1-7", "libssl3",
                    "libpcre2-8-0", "libinih1", "libsystemd0"):
            self.assertRegex(depends, r"(^|, )%s\b" % re.escape(lib), depends)
        with tempfile.TemporaryDirectory() as d:
            subprocess.run(["dpkg-deb", "-e", self.deb, d], check=True, timeout=60)
            with open(os.path.join(d, "conffiles")) as f:
                self.assertEqual(f.read().split(), ["/etc/weir/weir.ini", "/etc/logrotate.d/weir"])
            with open(os.path.join(d, "postinst")) as f:
                postinst = f.read()
            with open(os.path.join(d, "postrm")) as f:
                postrm = f.read()
            for name in ("postinst", "prerm", "postrm"):
                path = os.path.join(d, name)
                self.assertEqual(os.stat(path).st_mode & 0o777, 0o755, name)
                p = subprocess.run(["sh", "-n", path], capture_output=True, text=True)
                self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(postinst, r"(?s)adduser --system --group .*weir")
        self.assertIn("/var/log/weir", postinst)
        # Nothing is enabled or started by installing; an upgrade restarts
        # only a weir that was running.
        code = "\n".join(l for l in postinst.splitlines() if not l.lstrip().startswith("#"))
        self.assertNotRegex(code, r"\b(enable|start)\b")
        self.assertIn("try-restart", postinst)
        self.assertRegex(postrm, r"(?s)purge\).*rm -rf /var/log/weir")

    def test_issue_17_unit_and_config_paths(self):
        with tempfile.TemporaryDirectory() as d:
            subprocess.run(["dpkg-deb", "-x", self.deb, d], check=True, timeout=60)
            with open(os.path.join(d, "lib/systemd/system/weir.service")) as f:
                service = f.read()
            with open(os.path.join(d, "etc/weir/weir.ini")) as f:
                conf = f.read()
            self.assertIn("\nExecStart=/usr/sbin/weir -c /etc/weir/weir.ini\n", service)
            self.assertIn("\nExecReload=/usr/sbin/weir -t -c /etc/weir/weir.ini\n", service)
            self.assertRegex(conf, r"(?m)^root = /usr/share/weir/html\b")
            # The packaged file passes weir -t, its absolute paths moved into
            # the unpacked image (the logs' directory is made by postinst).
            os.makedirs(os.path.join(d, "var/log/weir"))
            checked = os.path.join(d, "etc/weir/weir.ini")
            with open(checked, "w") as f:
                f.write(conf.replace("/var/log/weir", os.path.join(d, "var/log/weir"))
                        .replace("/usr/share/weir", os.path.join(d, "usr/share/weir")))
            p = weirtest.run_weir(["-t", "-c", checked])
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def run_postinst(self, d, stubs, *args, user_exists):
        """Runs the package's postinst with args, every command it may call
        replaced by a stub that records its arguments (nothing on this
        machine changes). Returns the recorded calls."""
        log = os.path.join(stubs, "calls")
        for cmd in ("adduser", "install", "systemctl", "deb-systemd-invoke"):
            with open(os.path.join(stubs, cmd), "w") as f:
                f.write('#!/bin/sh\necho "%s $*" >> %s\n' % (cmd, log))
            os.chmod(os.path.join(stubs, cmd), 0o755)
        with open(os.path.join(stubs, "getent"), "w") as f:
            f.write("#!/bin/sh\nexit %d\n" % (0 if user_exists else 2))
        os.chmod(os.path.join(stubs, "getent"), 0o755)
        if os.path.exists(log):
            os.unlink(log)
        env = dict(os.environ, PATH=stubs + ":/usr/bin:/bin")
        p = subprocess.run(["sh", os.path.join(d, "postinst")] + list(args), env=env,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        if not os.path.exists(log):
            return []
        with open(log) as f:
            return f.read().splitlines()

    def test_issue_17_postinst(self):
        """A first install creates the user and the log directory and starts
        nothing; an upgrade creates nothing and only restarts a running weir
        (try-restart), under systemd."""
        with tempfile.TemporaryDirectory() as d, tempfile.TemporaryDirectory() as stubs:
            subprocess.run(["dpkg-deb", "-e", self.deb, d], check=True, timeout=60)
            calls = self.run_postinst(d, stubs, "configure", "", user_exists=False)
            self.assertRegex(calls[0], r"^adduser --system --group .*--no-create-home.* weir$")
            if not os.path.isdir("/var/log/weir"):
                self.assertIn("install -d -o weir -g weir -m 0755 /var/log/weir", calls)
            systemd = os.path.isdir("/run/systemd/system")
            self.assertEqual(any(c.startswith("systemctl --system daemon-reload") for c in calls),
                             systemd)
            self.assertFalse(any(re.search(r"\b(enable|start|restart)\b", c) for c in calls),
                             calls)
            calls = self.run_postinst(d, stubs, "configure", "0.0.9-1", user_exists=True)
            self.assertFalse(any(c.startswith("adduser") for c in calls), calls)
            self.assertEqual("deb-systemd-invoke try-restart weir.service" in calls, systemd)
            self.assertFalse(any(re.search(r"\b(enable|start)\b", c) for c in calls), calls)

    def test_issue_17_lintian(self):
        lintian = shutil.which("lintian")
        if lintian is None:
            self.skipTest("lintian not installed (make test installs it)")
        p = subprocess.run([lintian, "--fail-on", "error", self.deb], capture_output=True,
                           text=True, timeout=120)
        errors = [l for l in p.stdout.splitlines() if l.startswith("E:")]
        self.assertEqual(errors, [], p.stdout)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # The warnings left are known and explained in README "Install".
        warnings = {l.split()[2] for l in p.stdout.splitlines() if l.startswith("W:")}
        self.assertLessEqual(warnings, {"initial-upload-closes-no-bugs",
                                        "maintainer-script-calls-systemctl"}, p.stdout)


if __name__ == "__main__":
    # A compile and lintian: ~35 s on an idle 2-core machine, more while
    # `make test` runs other tests beside it (ctest's limit is 300 s).
    weirtest.main(seconds=280)
