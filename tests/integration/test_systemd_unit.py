"""systemd/weir.service and weir.socket pass `systemd-analyze verify`.

The unit is systemd/weir.service.in, whose @WEIR_BIN@ cmake fills in with
the installed binary (test_issue_17_install.py checks the installed one):
the check runs on a copy rendered with the binary under test, so
everything else in the file is verified as shipped. `--man=no`: the
Documentation= pages are not installed on a test machine.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import weirtest


def rendered_service():
    """systemd/weir.service.in as cmake renders it, with the test binary."""
    with open(os.path.join(weirtest.SOURCE_DIR, "systemd", "weir.service.in")) as f:
        text = f.read()
    return text.replace("@WEIR_BIN@", weirtest.WEIR_BIN).replace("@WEIR_CONFIG@",
                                                                "/etc/weir/weir.ini")


class SystemdUnitTest(unittest.TestCase):
    def test_verify(self):
        tool = shutil.which("systemd-analyze")
        if tool is None:
            self.skipTest("systemd-analyze not installed")
        text = rendered_service()
        self.assertIn("Type=notify", text)
        self.assertIn("AmbientCapabilities=CAP_NET_BIND_SERVICE", text)
        with tempfile.TemporaryDirectory() as d:
            unit = os.path.join(d, "weir.service")
            with open(unit, "w") as f:
                f.write(text)
            p = subprocess.run([tool, "verify", "--man=no", unit], capture_output=True, text=True,
                               timeout=60)
        # Lines about other units on this machine are not ours to judge.
        ours = [l for l in (p.stdout + p.stderr).splitlines() if "weir.service" in l]
        self.assertEqual(ours, [], "\n".join(ours))

    def test_verify_socket(self):
        tool = shutil.which("systemd-analyze")
        if tool is None:
            self.skipTest("systemd-analyze not installed")
        service = rendered_service()
        with open(os.path.join(weirtest.SOURCE_DIR, "systemd", "weir.socket")) as f:
            socket_unit = f.read()
        self.assertIn("ListenStream=", socket_unit)
        with tempfile.TemporaryDirectory() as d:
            # The socket activates the service of the same name next to it.
            for name, text in (("weir.service", service), ("weir.socket", socket_unit)):
                with open(os.path.join(d, name), "w") as f:
                    f.write(text)
            p = subprocess.run([tool, "verify", "--man=no", os.path.join(d, "weir.socket")],
                               capture_output=True, text=True, timeout=60)
        ours = [l for l in (p.stdout + p.stderr).splitlines() if "weir." in l]
        self.assertEqual(ours, [], "\n".join(ours))

    def unit_copy(self, d, extra_service=""):
        """The shipped unit, pointing at the binary under test, written to d
        with extra_service lines appended to [Service]."""
        text = rendered_service().replace("\n[Install]", extra_service + "\n[Install]")
        unit = os.path.join(d, "weir.service")
        with open(unit, "w") as f:
            f.write(text)
        return unit

    def test_issue_13_exposure(self):
        """The unit stays hardened (never root, exposure <= 2.0) with what
        issue 13 added (AF_NETLINK for the shared-address check)."""
        tool = shutil.which("systemd-analyze")
        if tool is None:
            self.skipTest("systemd-analyze not installed")
        with tempfile.TemporaryDirectory() as d:
            unit = self.unit_copy(d)
            p = subprocess.run([tool, "security", "--offline=true", unit],
                               capture_output=True, text=True, timeout=60)
        m = re.search(r"Overall exposure level for weir\.service: (\d+\.\d+)", p.stdout)
        if m is None and "--offline" in p.stderr:
            self.skipTest("systemd-analyze security has no --offline here")
        self.assertIsNotNone(m, p.stdout + p.stderr)
        self.assertLessEqual(float(m.group(1)), 2.0, p.stdout)
        with open(os.path.join(weirtest.SOURCE_DIR, "systemd", "weir.service.in")) as f:
            shipped = f.read()
        self.assertRegex(shipped, r"(?m)^User=\S+")  # weir never starts as root here
        self.assertRegex(shipped, r"(?m)^RestrictAddressFamilies=.*\bAF_NETLINK\b")

    def test_issue_13_load_credential_recipe_verifies(self):
        """The documented way to hand weir a key only root can read."""
        tool = shutil.which("systemd-analyze")
        if tool is None:
            self.skipTest("systemd-analyze not installed")
        with tempfile.TemporaryDirectory() as d:
            unit = self.unit_copy(d, "\nLoadCredential=example.org.key:"
                                     "/etc/letsencrypt/live/example.org/privkey.pem\n")
            p = subprocess.run([tool, "verify", "--man=no", unit], capture_output=True, text=True,
                               timeout=60)
        ours = [l for l in (p.stdout + p.stderr).splitlines() if "weir.service" in l]
        self.assertEqual(ours, [], "\n".join(ours))


if __name__ == "__main__":
    weirtest.main()
